// SPDX-License-Identifier: GPL-2.0-only
/*
 * test_clean.c - gslb-map's input side: every kind of bad row counted under
 * its own kind and reported at its own line, good rows kept (edge values
 * included), clients grouped by /24 and /56 with no address kept, and the
 * per-subnet choice (medians, the min-samples rule, ties) on a hand-made
 * dataset.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "mapbuild.h"
#include "testutil.h"

/* Read path into s with malformed reports captured in *report (caller frees). */
static int read_capture(const char *path, struct mb_samples *s, char **report)
{
	size_t len;
	FILE *f = open_memstream(report, &len);
	assert_non_null(f);
	char *err = NULL;
	int rc = mb_samples_read(path, s, f, &err);
	fclose(f);
	free(err);
	return rc;
}

/* The line numbers in "PATH:N: reason" report lines, in order; returns how many. */
static unsigned reported_lines(const char *report, const char *path, unsigned *out, unsigned max)
{
	unsigned n = 0;
	size_t pl = strlen(path);
	for (const char *p = report; *p;) {
		const char *eol = strchr(p, '\n');
		if (!eol)
			eol = p + strlen(p);
		if (!strncmp(p, path, pl) && p[pl] == ':' && p[pl + 1] >= '0' && p[pl + 1] <= '9' &&
		    n < max)
			out[n++] = (unsigned)strtoul(p + pl + 1, NULL, 10);
		p = *eol ? eol + 1 : eol;
	}
	return n;
}

static bool has_rtt(const struct mb_samples *s, uint32_t us)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->v[i].rtt_us == us)
			return true;
	return false;
}

static void test_cleaning(void **state)
{
	(void)state;
	char longline[1200];
	snprintf(longline, sizeof(longline), "198.51.100.13,ams,5,1%1100s", " ");
	char csv[4096];
	snprintf(csv, sizeof(csv),
		 "client,pop,rtt_ms,ok\n"	    /* 1 header */
		 "# a comment\n"		    /* 2 */
		 "198.51.100.7,fra,23.412,1\n"	    /* 3 good */
		 "\n"				    /* 4 blank */
		 "198.51.100.8,fra,-1.5,1\n"	    /* 5 negative */
		 "198.51.100.9,fra,0.0005,1\n"	    /* 6 sub-microsecond */
		 "198.51.100.10,fra,60000.5,1\n"    /* 7 absurd */
		 "198.51.100.11,fra,12.0,0\n"	    /* 8 failed */
		 "198.51.100.7,fra,23.412,1\n"	    /* 9 duplicate of 3 */
		 "198.51.100.12,ams\n"		    /* 10 malformed: fields */
		 "198.51.100.300,ams,10,1\n"	    /* 11 malformed: address */
		 "garbage\n"			    /* 12 malformed */
		 "%s\n"				    /* 13 malformed: too long */
		 "198.51.100.14,AMS,5,1\n"	    /* 14 malformed: PoP name */
		 "198.51.100.15,ams,1e3,1\n"	    /* 15 malformed: rtt */
		 "198.51.100.16,ams,5,2\n"	    /* 16 malformed: ok */
		 "2001:db8::1,lon,0.001,1\n"	    /* 17 good: the smallest kept */
		 "198.51.100.17,ams,60000,1\r\n"    /* 18 good: the largest kept, CRLF */
		 "::ffff:198.51.100.18,ams,7.5,1\n" /* 19 good: IPv4 in IPv6 */
		 "198.51.100.7,fra,23.4120,1\n"	    /* 20 duplicate: same value */
		 "198.51.100.7,fra,23.413,1\n"	    /* 21 good: another rtt */
		 "198.51.100.19,ams,-3,0\n"	    /* 22 failed (before negative) */
		 "198.51.100.20,ams,5,1,extra\n"    /* 23 malformed: fields */
		 "198.51.100.21, ams ,5,1",	    /* 24 good, spaces, no newline */
		 longline);
	const char *path = tu_write("clean.csv", csv);
	struct mb_samples s = {0};
	char *report = NULL;
	assert_int_equal(read_capture(path, &s, &report), 0);

	assert_int_equal(s.rows, 21);
	assert_int_equal(s.drops[MB_DROP_MALFORMED], 8);
	assert_int_equal(s.drops[MB_DROP_FAILED], 2);
	assert_int_equal(s.drops[MB_DROP_NEGATIVE], 1);
	assert_int_equal(s.drops[MB_DROP_TINY], 1);
	assert_int_equal(s.drops[MB_DROP_ABSURD], 1);
	assert_int_equal(s.drops[MB_DROP_DUPLICATE], 2);
	assert_int_equal(s.n, 6);
	assert_int_equal(s.mapped, 1);
	uint64_t total = s.n;
	for (int d = 0; d < MB_DROP__N; d++)
		total += s.drops[d];
	assert_int_equal(total, s.rows);

	unsigned lines[16], want[] = {10, 11, 12, 13, 14, 15, 16, 23};
	unsigned n = reported_lines(report, path, lines, 16);
	assert_int_equal(n, sizeof(want) / sizeof(want[0]));
	for (unsigned i = 0; i < n; i++)
		assert_int_equal(lines[i], want[i]);
	assert_non_null(strstr(report, ":13: line longer than 1024 bytes"));
	/* The client field is never echoed, even a broken one. */
	assert_null(strstr(report, "198.51.100"));

	/* The good rows, with their RTTs in µs. */
	const uint32_t kept[] = {23412, 1, 60000000, 7500, 23413, 5000};
	for (unsigned i = 0; i < 6; i++)
		assert_true(has_rtt(&s, kept[i]));
	assert_int_equal(s.n_pops, 3);
	assert_string_equal(s.pops[0], "ams");
	assert_string_equal(s.pops[1], "fra");
	assert_string_equal(s.pops[2], "lon");
	for (size_t i = 0; i < s.n; i++) {
		if (s.v[i].rtt_us == 7500) /* ::ffff:198.51.100.18 is 198.51.100.0/24 */
			assert_int_equal(s.v[i].subnet, 0xc63364);
		if (s.v[i].rtt_us == 1)
			assert_true(s.v[i].subnet & MB_SUBNET_V6);
		assert_true(s.v[i].pop < s.n_pops);
	}
	free(report);
	mb_samples_free(&s);
}

static void test_report_limit(void **state)
{
	(void)state;
	char csv[2048] = "client,pop,rtt_ms,ok\n";
	for (int i = 0; i < 15; i++)
		strcat(csv, "nonsense,,\n");
	strcat(csv, "192.0.2.1,fra,10,1\n");
	const char *path = tu_write("limit.csv", csv);
	struct mb_samples s = {0};
	char *report = NULL;
	assert_int_equal(read_capture(path, &s, &report), 0);
	assert_int_equal(s.drops[MB_DROP_MALFORMED], 15);
	assert_int_equal(s.n, 1);
	unsigned lines[32];
	unsigned n = reported_lines(report, path, lines, 32);
	assert_int_equal(n, MB_REPORT_MAX);
	for (unsigned i = 0; i < n; i++)
		assert_int_equal(lines[i], i + 2);
	assert_non_null(strstr(report, ": 5 more malformed lines not shown"));
	free(report);
	mb_samples_free(&s);

	/* A file that cannot be read is an error naming it. */
	struct mb_samples t = {0};
	char *err = NULL;
	assert_int_equal(mb_samples_read(tu_path("absent.csv"), &t, NULL, &err), -ENOENT);
	assert_non_null(err);
	assert_non_null(strstr(err, "absent.csv"));
	free(err);
	mb_samples_free(&t);
}

struct walk {
	unsigned n, plen[16];
};

static int on_entry(void *arg, int family, const uint8_t *prefix, unsigned plen,
		    const uint8_t *list)
{
	(void)family, (void)prefix, (void)list;
	struct walk *w = arg;
	if (w->n < 16)
		w->plen[w->n] = plen;
	w->n++;
	return 0;
}

static void test_aggregation(void **state)
{
	(void)state;
	const char *path = tu_write("agg.csv", "client,pop,rtt_ms,ok\n"
					       "10.1.2.3,fra,10,1\n"
					       "10.1.2.77,fra,11,1\n"
					       "10.1.2.200,fra,12,1\n"
					       "10.1.3.1,fra,10,1\n"
					       "10.1.3.2,fra,10,1\n"
					       "2001:db8:0:100::1,lon,30,1\n"
					       "2001:db8:0:1ff::2,lon,31,1\n"
					       "2001:db8:0:1ab:1::3,lon,32,1\n"
					       "2001:db8:0:200::1,lon,30,1\n");
	struct mb_run r = {.o = {.samples = path, .min_samples = 3, .prune = true, .seed = 1}};
	char *err = NULL;
	assert_int_equal(mb_run_build(&r, &err), 0);
	assert_null(err);
	/* Three IPv4 addresses make one /24, three IPv6 ones one /56. */
	assert_int_equal(r.data.n_subnets, 2);
	assert_int_equal(r.data.n4, 1);
	assert_int_equal(r.data.n6, 1);
	assert_int_equal(r.data.subnets[0].key, 0x0a0102);
	assert_int_equal(r.data.subnets[1].key, MB_SUBNET_V6 | 0x20010db8000001ULL);
	assert_int_equal(r.data.meas[r.data.subnets[0].first].median_us, 11000);
	/* 10.1.3.0/24 and 2001:db8:0:200::/56 have two samples and one. */
	assert_int_equal(r.data.unmeasured, 2);

	struct walk w = {0};
	assert_int_equal(gmap_each(r.map, on_entry, &w), 0);
	assert_int_equal(w.n, 2);
	for (unsigned i = 0; i < w.n; i++) {
		assert_true(w.plen[i] == MB_SUBNET4 || w.plen[i] == MB_SUBNET6);
		assert_true(w.plen[i] != 32 && w.plen[i] != 128);
	}
	char buf[128];
	assert_string_equal(tu_lookup(r.map, "10.1.2.99", buf, sizeof(buf)), "fra");
	assert_string_equal(tu_lookup(r.map, "2001:db8:0:1ee::5", buf, sizeof(buf)), "lon");
	assert_string_equal(tu_lookup(r.map, "10.1.3.1", buf, sizeof(buf)), "-");
	assert_string_equal(tu_lookup(r.map, "2001:db8:0:200::1", buf, sizeof(buf)), "-");
	mb_run_free(&r);
}

/* The PoP names of subnet i's list, "a,b,c", in buf. */
static const char *choice(const struct mb_samples *s, const struct mb_data *d, size_t i, char *buf,
			  size_t cap)
{
	size_t n = 0;
	buf[0] = 0;
	for (uint32_t k = 0; k < d->subnets[i].n_meas; k++)
		n += (size_t)snprintf(buf + n, cap - n, "%s%s", k ? "," : "",
				      s->pops[d->meas[d->subnets[i].first + k].pop]);
	return buf;
}

static uint32_t median_of(const struct mb_samples *s, const struct mb_data *d, size_t i,
			  const char *pop)
{
	for (uint32_t k = 0; k < d->subnets[i].n_meas; k++) {
		const struct mb_meas *m = &d->meas[d->subnets[i].first + k];
		if (!strcmp(s->pops[m->pop], pop))
			return m->median_us;
	}
	return UINT32_MAX;
}

static void test_choice(void **state)
{
	(void)state;
	const char *path = tu_write("choice.csv", "client,pop,rtt_ms,ok\n"
						  "192.0.2.1,fra,10,1\n"
						  "192.0.2.2,fra,30,1\n"
						  "192.0.2.3,fra,20,1\n"
						  "192.0.2.4,ams,15,1\n"
						  "192.0.2.5,ams,16,1\n"
						  "192.0.2.6,lon,28,1\n"
						  "192.0.2.7,lon,25,1\n"
						  "192.0.2.8,lon,27,1\n"
						  "192.0.2.9,lon,26,1\n"
						  "192.0.2.10,zrh,20,1\n"
						  "192.0.2.11,zrh,20,1\n"
						  "192.0.2.12,zrh,20,1\n"
						  "192.0.3.1,ams,5,1\n"
						  "192.0.3.2,ams,6,1\n");
	struct mb_samples s = {0};
	char *err = NULL, buf[128];
	assert_int_equal(mb_samples_read(path, &s, NULL, &err), 0);

	/* At least 3 samples: ams (2) does not count, nor does 192.0.3.0/24. */
	struct mb_data d = {0};
	assert_int_equal(mb_aggregate(&s, 3, &d), 0);
	assert_int_equal(d.n_subnets, 1);
	assert_int_equal(d.unmeasured, 1);
	assert_string_equal(choice(&s, &d, 0, buf, sizeof(buf)), "fra,zrh,lon");
	assert_int_equal(median_of(&s, &d, 0, "fra"), 20000);
	assert_int_equal(median_of(&s, &d, 0, "zrh"), 20000); /* a tie: by name */
	assert_int_equal(median_of(&s, &d, 0, "lon"), 26500); /* even: mean of the middle */
	mb_data_free(&d);

	/* At least 2: ams leads with 15.5 ms and 192.0.3.0/24 counts. */
	assert_int_equal(mb_aggregate(&s, 2, &d), 0);
	assert_int_equal(d.n_subnets, 2);
	assert_int_equal(d.unmeasured, 0);
	assert_string_equal(choice(&s, &d, 0, buf, sizeof(buf)), "ams,fra,zrh,lon");
	assert_int_equal(median_of(&s, &d, 0, "ams"), 15500);
	assert_string_equal(choice(&s, &d, 1, buf, sizeof(buf)), "ams");
	assert_int_equal(median_of(&s, &d, 1, "ams"), 5500);
	assert_int_equal(d.meas[d.subnets[0].first].n, 2);
	mb_data_free(&d);
	mb_samples_free(&s);
}

static int setup(void **state)
{
	(void)state;
	tu_setup_dir();
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	tu_cleanup_dir();
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_cleaning),
	    cmocka_unit_test(test_report_limit),
	    cmocka_unit_test(test_aggregation),
	    cmocka_unit_test(test_choice),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
