// SPDX-License-Identifier: GPL-2.0-only
/*
 * bench_gslb_xdp - what one query costs gslbd's XDP answer program
 * (xdp/gslb_answer.bpf.c), through BPF_PROG_TEST_RUN, next to gslbd's own
 * answer in user space (dns_answer) for the same queries.
 *
 *   bench_gslb_xdp CONF QUERIES [ROUNDS]
 *
 * CONF is a gslbd configuration (its map, zones, PoPs and listen address
 * are used; every PoP is up); QUERIES a file of DNS messages, each behind
 * a 2-byte big-endian length (dnsperf -B's input, as gslb_queries.py
 * writes it). Each query goes in an IPv4 frame from 10.211.0.2 to the
 * first IPv4 listen address, one query per BPF_PROG_TEST_RUN call
 * (repeat 1: with more the program would run again on its own answer),
 * the kernel's duration per call. Every query of the file in each round,
 * in the file's order (as dnsperf sends them). Prints, per round, the
 * median and mean ns per query of the program and of dns_answer, and the
 * share the program answered (XDP_TX); then the medians over rounds.
 * Root. Figures only: exits 0 unless set-up failed.
 */
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <errno.h>
#include <linux/bpf.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "conf.h"
#include "dns.h"
#include "inet_csum.h"
#include "map.h"
#include "xdp_answer.h"

#define ETH_LEN 14
#define MAX_Q	512

struct query {
	uint8_t frame[ETH_LEN + 20 + 8 + MAX_Q];
	uint32_t flen;
	uint8_t dns[MAX_Q];
	uint32_t dlen;
};

static void die(const char *what, const char *why)
{
	fprintf(stderr, "bench_gslb_xdp: %s: %s\n", what, why ? why : "?");
	exit(1);
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		die(path, strerror(errno));
	size_t cap = 1 << 16, n = 0;
	char *b = malloc(cap + 1);
	size_t r;
	while (b && (r = fread(b + n, 1, cap - n, f)) > 0) {
		n += r;
		if (n == cap) {
			cap *= 2;
			b = realloc(b, cap + 1);
		}
	}
	fclose(f);
	if (!b)
		die(path, "out of memory");
	b[n] = 0;
	*len = n;
	return b;
}

/* An Ethernet + IPv4 + UDP frame around dns from src:sport to dst:port. */
static void wrap(struct query *q, const uint8_t *src, const uint8_t *dst, uint16_t sport,
		 uint16_t port)
{
	uint8_t *b = q->frame;
	memset(b, 0, ETH_LEN + 28);
	static const uint8_t mac_us[6] = {2, 0, 0, 0, 0, 1}, mac_peer[6] = {2, 0, 0, 0, 0, 2};
	memcpy(b, mac_us, 6);
	memcpy(b + 6, mac_peer, 6);
	b[12] = 0x08;
	uint8_t *ip = b + ETH_LEN;
	ip[0] = 0x45;
	uint16_t tot = (uint16_t)(28 + q->dlen);
	ip[2] = (uint8_t)(tot >> 8);
	ip[3] = (uint8_t)tot;
	ip[8] = 64;
	ip[9] = 17;
	memcpy(ip + 12, src, 4);
	memcpy(ip + 16, dst, 4);
	uint16_t ck = (uint16_t)~inet_fold(inet_sum16(ip, 20, 0));
	ip[10] = (uint8_t)(ck >> 8);
	ip[11] = (uint8_t)ck;
	uint8_t *udp = ip + 20;
	udp[0] = (uint8_t)(sport >> 8);
	udp[1] = (uint8_t)sport;
	udp[2] = (uint8_t)(port >> 8);
	udp[3] = (uint8_t)port;
	uint16_t ulen = (uint16_t)(8 + q->dlen);
	udp[4] = (uint8_t)(ulen >> 8);
	udp[5] = (uint8_t)ulen;
	memcpy(udp + 8, q->dns, q->dlen);
	q->flen = ETH_LEN + 28 + q->dlen;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static int cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

int main(int argc, char **argv)
{
	if (argc < 3 || argc > 4) {
		fprintf(stderr, "usage: bench_gslb_xdp CONF QUERIES [ROUNDS]\n");
		return 2;
	}
	int rounds = argc == 4 ? atoi(argv[3]) : 9;
	if (rounds < 1 || rounds > 1000)
		die("ROUNDS", "1..1000");

	char *err = NULL;
	struct gslb_conf *conf;
	if (gslb_conf_load(argv[1], NULL, &conf, &err))
		die(argv[1], err);
	struct gmap *map;
	if (gmap_open(conf->map_path, &map, &err))
		die(conf->map_path, err);
	static struct gslb_states st; /* zeroed: every PoP up */
	struct gslb_view view = {.conf = conf, .states = &st};
	gslb_view_set_map(&view, map);
	const struct gmap_header *h = gmap_header(map);
	struct gslb_xa *xa;
	if (gslb_xa_open((h->n_nodes4 + h->n_nodes6) / 2 + 16, h->n_lists + 16, &xa, &err) ||
	    gslb_xa_sync(xa, &view, &err))
		die("XDP answer program", err);
	int fd = gslb_xa_prog_fd(xa);

	uint8_t dst[4] = {0}, src[4];
	int have_dst = 0;
	for (unsigned i = 0; i < conf->n_listen && !have_dst; i++) {
		if (conf->listen_addr[i].family == 4 /* LB_AF_INET */) {
			memcpy(dst, conf->listen_addr[i].bytes, 4);
			have_dst = 1;
		}
	}
	if (!have_dst)
		die(argv[1], "no IPv4 listen address");
	inet_pton(AF_INET, "10.211.0.2", src);
	uint16_t port = conf->xdp_port ? conf->xdp_port : conf->listen_port[0];

	size_t len;
	uint8_t *raw = (uint8_t *)slurp(argv[2], &len);
	size_t nq = 0, cap = 1024;
	struct query *qs = malloc(cap * sizeof(*qs));
	for (size_t o = 0; o + 2 <= len;) {
		uint32_t ql = (uint32_t)(raw[o] << 8 | raw[o + 1]);
		o += 2;
		if (ql > MAX_Q || o + ql > len)
			die(argv[2], "a query longer than 512 bytes or cut short");
		if (nq == cap)
			qs = realloc(qs, (cap *= 2) * sizeof(*qs));
		if (!qs)
			die(argv[2], "out of memory");
		memcpy(qs[nq].dns, raw + o, ql);
		qs[nq].dlen = ql;
		wrap(&qs[nq], src, dst, (uint16_t)(20000 + nq % 40000), port);
		nq++;
		o += ql;
	}
	free(raw);
	if (!nq)
		die(argv[2], "no queries");

	struct dns_arena arena;
	if (dns_arena_init(&arena, 1 << 20))
		die("arena", "out of memory");
	struct sockaddr_storage from = {0};
	struct sockaddr_in *sin = (struct sockaddr_in *)&from;
	sin->sin_family = AF_INET;
	memcpy(&sin->sin_addr, src, 4);
	sin->sin_port = htons(20000);

	uint32_t *ns = malloc(nq * sizeof(*ns));
	double *r_med = malloc(rounds * sizeof(double)), *r_mean = malloc(rounds * sizeof(double));
	double *r_user = malloc(rounds * sizeof(double)), *r_tx = malloc(rounds * sizeof(double));
	if (!ns || !r_med || !r_mean || !r_user || !r_tx)
		die("memory", "out of memory");
	static uint8_t out[2048], ans[4096], qcopy[MAX_Q];
	printf("# %zu queries; map %u IPv4 + %u IPv6 nodes, %u tables in the program; %d rounds\n",
	       nq, h->n_nodes4, h->n_nodes6, gslb_xa_tables(xa), rounds);
	printf("# round  xdp_median_ns  xdp_mean_ns  xdp_answered  user_mean_ns\n");
	for (int r = 0; r < rounds; r++) {
		size_t tx = 0;
		double sum = 0;
		for (size_t i = 0; i < nq; i++) {
			LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = qs[i].frame,
				    .data_size_in = qs[i].flen, .data_out = out,
				    .data_size_out = sizeof(out), .repeat = 1);
			if (bpf_prog_test_run_opts(fd, &o))
				die("BPF_PROG_TEST_RUN", strerror(errno));
			ns[i] = o.duration;
			sum += o.duration;
			tx += o.retval == XDP_TX;
		}
		qsort(ns, nq, sizeof(*ns), cmp_u32);
		r_med[r] = ns[nq / 2];
		r_mean[r] = sum / (double)nq;
		r_tx[r] = (double)tx / (double)nq;
		/* gslbd's answer in user space: the message only (no socket). */
		double t0 = now_ns();
		for (size_t i = 0; i < nq; i++) {
			struct dns_result res;
			memcpy(qcopy, qs[i].dns, qs[i].dlen);
			if (!dns_answer(&view, &arena, qcopy, qs[i].dlen, ans, sizeof(ans), false,
					&from, &res))
				die("dns_answer", "no answer");
		}
		r_user[r] = (now_ns() - t0) / (double)nq;
		printf("  %5d  %13.0f  %11.1f  %11.1f%%  %12.1f\n", r + 1, r_med[r], r_mean[r],
		       100 * r_tx[r], r_user[r]);
	}
	qsort(r_med, rounds, sizeof(double), cmp_dbl);
	qsort(r_mean, rounds, sizeof(double), cmp_dbl);
	qsort(r_user, rounds, sizeof(double), cmp_dbl);
	qsort(r_tx, rounds, sizeof(double), cmp_dbl);
	printf("xdp answer program: median %.0f ns, mean %.1f ns per query (%.1f%% answered); "
	       "dns_answer in user space: %.1f ns per query (medians over rounds)\n",
	       r_med[rounds / 2], r_mean[rounds / 2], 100 * r_tx[rounds / 2], r_user[rounds / 2]);
	free(ns);
	free(r_med);
	free(r_mean);
	free(r_user);
	free(r_tx);
	free(qs);
	dns_arena_fini(&arena);
	gslb_xa_close(xa);
	gmap_close(map);
	gslb_conf_free(conf);
	return 0;
}
