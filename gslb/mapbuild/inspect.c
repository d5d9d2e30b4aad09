// SPDX-License-Identifier: GPL-2.0-only
/*
 * inspect.c - reading a map back: its header (`gslb-map info`) and its
 * answer for an address (`gslb-map lookup`). End-to-end tests use lookup to
 * learn what gslbd must answer, so it goes through the same gmap_lookup.
 */
#include "mapbuild.h"

#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

void mb_print_info(const struct gmap *m, FILE *out)
{
	const struct gmap_header *h = gmap_header(m);
	fprintf(out, "version %u\n", le32toh(h->version));
	fprintf(out, "file_size %llu\n", (unsigned long long)le64toh(h->file_size));
	fprintf(out, "pops %u\n", gmap_n_pops(m));
	fprintf(out, "pop_names ");
	for (unsigned i = 0; i < gmap_n_pops(m); i++)
		fprintf(out, "%s%s", i ? "," : "", gmap_pop_name(m, i));
	fprintf(out, "\n");
	fprintf(out, "lists %u\n", le32toh(h->n_lists));
	fprintf(out, "nodes4 %u\n", le32toh(h->n_nodes4));
	fprintf(out, "nodes6 %u\n", le32toh(h->n_nodes6));
	fprintf(out, "entries4 %u\n", le32toh(h->n_prefixes4));
	fprintf(out, "entries6 %u\n", le32toh(h->n_prefixes6));
	fprintf(out, "samples %llu\n", (unsigned long long)le64toh(h->samples));
	uint32_t ppm = le32toh(h->score_ppm);
	if (ppm == GMAP_NOT_SCORED)
		fprintf(out, "score not_scored\n");
	else
		fprintf(out, "score %.6f\n", ppm / 1e6);
	fprintf(out, "score_ppm %u\n", ppm);
	fprintf(out, "regret_us %u\n", le32toh(h->regret_us));
	fprintf(out, "holdout %u\n", le32toh(h->holdout));
	time_t created = (time_t)le64toh(h->created);
	struct tm tm;
	char when[32] = "?";
	if (gmtime_r(&created, &tm))
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	fprintf(out, "created %llu\n", (unsigned long long)le64toh(h->created));
	fprintf(out, "created_utc %s\n", when);
}

int mb_print_lookup(const struct gmap *m, const char *arg, FILE *out, char **err)
{
	char buf[64];
	if (snprintf(buf, sizeof(buf), "%s", arg) >= (int)sizeof(buf))
		return mb_fail(err, -EINVAL, "\"%.64s...\": not an address", arg);
	char *slash = strchr(buf, '/');
	if (slash)
		*slash = 0;
	int family = strchr(buf, ':') ? AF_INET6 : AF_INET;
	unsigned max = family == AF_INET6 ? 128 : 32, bits = max;
	uint8_t addr[16] = {0};
	if (inet_pton(family, buf, addr) != 1)
		return mb_fail(err, -EINVAL, "\"%s\": not an IPv4 or IPv6 address", arg);
	if (slash) {
		char *end;
		unsigned long v = strtoul(slash + 1, &end, 10);
		if (!slash[1] || *end || slash[1] == '-' || slash[1] == '+' || v > max)
			return mb_fail(err, -EINVAL, "\"%s\": bad prefix length (0..%u)", arg, max);
		bits = (unsigned)v;
	}
	unsigned match, scope;
	const uint8_t *list = gmap_lookup(m, family, addr, bits, &match, &scope);
	fprintf(out, "%s/%u pops=", buf, bits);
	if (!list)
		fprintf(out, "-");
	for (unsigned i = 0; list && i < GMAP_LIST_MAX && list[i] != GMAP_NONE; i++)
		fprintf(out, "%s%s", i ? "," : "", gmap_pop_name(m, list[i]));
	fprintf(out, " match=%u scope=%u\n", match, scope);
	return 0;
}
