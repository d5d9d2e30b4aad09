// SPDX-License-Identifier: GPL-2.0-only
/*
 * bench_maglev - how long maglev_build (l4lb/maglev.c) takes to fill a
 * ring, next to the Maglev paper's figures (Eisenbud et al., NSDI 2016:
 * 1.8 ms for a 65537-slot table, 22.9 ms for 655373 slots).
 *
 * A ring is rebuilt on every change to a VIP's reals (a health flap, a
 * weight change), on the control plane's single thread, so this bounds how
 * fast lbd can follow churn. Each configuration runs RUNS times; the median
 * is quoted, with the fastest and slowest run. The time includes what a
 * rebuild really pays: building the preference lists and sorting them.
 *
 * Usage: bench_maglev [RUNS] (no privileges needed).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lb_abi.h"
#include "maglev.h"

#define RUNS_DEFAULT 9

static const struct config {
	uint32_t slots;
	uint32_t reals;
	bool mixed; /* weights 1..4 instead of all 1 */
	const char *paper;
} configs[] = {
    {65537, 100, false, "1.8"},	   {65537, 100, true, "1.8"},	 {65537, 1000, false, "1.8"},
    {655373, 1000, false, "22.9"}, {655373, 1000, true, "22.9"},
};

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

int main(int argc, char **argv)
{
	int runs = argc > 1 ? atoi(argv[1]) : RUNS_DEFAULT;

	if (runs < 1) {
		fprintf(stderr, "usage: bench_maglev [RUNS]\n");
		return 2;
	}
	printf("# bench_maglev: maglev_build, median of %d runs (min, max); paper: Maglev, NSDI "
	       "2016\n",
	       runs);
	printf("%8s %6s %-8s %10s %10s %10s %10s\n", "slots", "reals", "weights", "median ms",
	       "min ms", "max ms", "paper ms");
	for (size_t c = 0; c < sizeof(configs) / sizeof(configs[0]); c++) {
		const struct config *cf = &configs[c];
		struct maglev_real *r = calloc(cf->reals, sizeof(*r));
		uint32_t *table = calloc(cf->slots, sizeof(*table));
		double *ms = calloc((size_t)runs, sizeof(*ms));

		if (!r || !table || !ms) {
			fprintf(stderr, "bench_maglev: out of memory\n");
			return 1;
		}
		/* Distinct IPv4 addresses 10.0.0.1.. as ids 1..n: what the
		 * hash sees is the address, as in lbd. */
		for (uint32_t i = 0; i < cf->reals; i++) {
			uint32_t a = 0x0a000001u + i;

			r[i].addr.family = LB_AF_INET;
			r[i].addr.bytes[0] = (uint8_t)(a >> 24);
			r[i].addr.bytes[1] = (uint8_t)(a >> 16);
			r[i].addr.bytes[2] = (uint8_t)(a >> 8);
			r[i].addr.bytes[3] = (uint8_t)a;
			r[i].id = i + 1;
			r[i].weight = cf->mixed ? 1 + i % 4 : 1;
		}
		for (int k = 0; k < runs; k++) {
			double t0 = now_ms();
			int rc = maglev_build(r, cf->reals, table, cf->slots);

			ms[k] = now_ms() - t0;
			if (rc) {
				fprintf(stderr, "bench_maglev: maglev_build(%u, %u): %s\n",
					cf->slots, cf->reals, strerror(-rc));
				return 1;
			}
		}
		/* A full table is the contract; a hole would make the timing
		 * meaningless. */
		for (uint32_t i = 0; i < cf->slots; i++) {
			if (table[i] == LB_REAL_NONE) {
				fprintf(stderr, "bench_maglev: slot %u left empty\n", i);
				return 1;
			}
		}
		qsort(ms, (size_t)runs, sizeof(*ms), cmp_double);
		printf("%8u %6u %-8s %10.2f %10.2f %10.2f %10s\n", cf->slots, cf->reals,
		       cf->mixed ? "1..4" : "equal", ms[runs / 2], ms[0], ms[runs - 1], cf->paper);
		free(r);
		free(table);
		free(ms);
	}
	return 0;
}
