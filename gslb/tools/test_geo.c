// SPDX-License-Identifier: GPL-2.0-only
/*
 * Unit tests for geo.c against Debian's geoip-database: known addresses,
 * reserved space, the range walk's order and consistency with lookups,
 * and lookups from several threads at once.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "addrnum.h"
#include "geo.h"

static struct geo *geo;

static int setup(void **s)
{
	char *err = NULL;

	(void)s;
	geo = geo_open(NULL, NULL, &err);
	if (!geo) {
		fprintf(stderr, "geo_open: %s\n", err ? err : "?");
		free(err);
		return -1;
	}
	return 0;
}

static int teardown(void **s)
{
	(void)s;
	geo_close(geo);
	return 0;
}

static const char *cc_of(const char *text, unsigned *plen)
{
	uint8_t a[16] = {0};
	int family = strchr(text, ':') ? AF_INET6 : AF_INET;

	if (inet_pton(family, text, a) != 1)
		fail_msg("bad test address %s", text);
	return geo_country(geo, family, a, plen);
}

/*
 * The first and the last address of addr/plen get the same country and
 * the same prefix length: plen really is the extent of the answer.
 */
static void check_extent(int family, const uint8_t *addr, unsigned plen, const char *cc)
{
	unsigned bits = family == AF_INET ? 32 : 128, p1, p2;
	addrnum n = addrnum_get(addr, bits), host = addrnum_low(bits - plen);
	uint8_t first[16] = {0}, last[16] = {0};
	const char *c1, *c2;

	addrnum_put(n & ~host, first, bits);
	addrnum_put(n | host, last, bits);
	c1 = geo_country(geo, family, first, &p1);
	c2 = geo_country(geo, family, last, &p2);
	assert_int_equal(p1, plen);
	assert_int_equal(p2, plen);
	if (cc) {
		assert_non_null(c1);
		assert_non_null(c2);
		assert_string_equal(c1, cc);
		assert_string_equal(c2, cc);
	} else {
		assert_null(c1);
		assert_null(c2);
	}
}

static void test_known(void **s)
{
	/* Looked up in the installed database before writing the test. */
	static const struct {
		const char *addr, *cc;
	} cases[] = {
	    {"8.8.8.8", "US"},
	    {"1.1.1.1", "AU"},
	    {"193.0.0.1", "NL"},
	    {"81.2.69.160", "GB"},
	    {"2001:4860:4860::8888", "US"},
	    {"2a00:1450:4001::1", "DE"},
	};

	(void)s;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		unsigned plen = 999, bits = strchr(cases[i].addr, ':') ? 128 : 32;
		const char *cc = cc_of(cases[i].addr, &plen);
		uint8_t a[16] = {0};
		int family = bits == 32 ? AF_INET : AF_INET6;

		if (!cc || strcmp(cc, cases[i].cc) != 0)
			fail_msg("%s: got %s, want %s", cases[i].addr, cc ? cc : "NULL",
				 cases[i].cc);
		/* A real allocation: no shorter than /8 (v4) or /12 (v6). */
		assert_in_range(plen, bits == 32 ? 8 : 12, bits);
		inet_pton(family, cases[i].addr, a);
		check_extent(family, a, plen, cc);
	}
}

static void test_unknown(void **s)
{
	static const char *const addrs[] = {
	    "0.0.0.0", "10.1.2.3", "127.0.0.1",	  "192.168.1.1", "224.0.0.1", "255.255.255.255",
	    "::",      "::1",	   "2001:db8::1", "fe80::1",	 "fc00::1",
	};
	uint8_t a[16] = {0};
	unsigned plen = 999;

	(void)s;
	for (size_t i = 0; i < sizeof(addrs) / sizeof(addrs[0]); i++) {
		const char *cc = cc_of(addrs[i], &plen);
		unsigned bits = strchr(addrs[i], ':') ? 128 : 32;
		int family = bits == 32 ? AF_INET : AF_INET6;

		if (cc)
			fail_msg("%s: got %s, want no country", addrs[i], cc);
		assert_in_range(plen, 1, bits);
		inet_pton(family, addrs[i], a);
		check_extent(family, a, plen, NULL);
	}
	assert_null(geo_country(geo, AF_UNIX, a, &plen));
	assert_int_equal(plen, 0);
	assert_null(geo_country(NULL, AF_INET, a, &plen));
}

static void test_open_errors(void **s)
{
	char path[] = "/tmp/test_geo_XXXXXX", *err = NULL;
	struct geo *g;
	int fd;

	(void)s;
	g = geo_open("/nonexistent/GeoIP.dat", NULL, &err);
	assert_null(g);
	assert_int_equal(errno, ENOENT);
	assert_non_null(err);
	assert_non_null(strstr(err, "/nonexistent/GeoIP.dat"));
	free(err);

	/* A file that is not a database, and the databases swapped. */
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "not a database\n", 15), 15);
	close(fd);
	g = geo_open(path, NULL, &err);
	unlink(path);
	assert_null(g);
	assert_non_null(strstr(err, "not a GeoIP IPv4 country database"));
	free(err);
	g = geo_open(GEO_DEFAULT_V6, GEO_DEFAULT_V4, &err);
	assert_null(g);
	assert_non_null(strstr(err, GEO_DEFAULT_V6));
	free(err);
}

struct walk_check {
	int family;
	unsigned bits;
	size_t n, checked;
	addrnum prev_last;
	char prev_cc[3];
	int stop_after;
};

static void expect_cc(int family, unsigned bits, addrnum n, const char *cc)
{
	uint8_t a[16];
	const char *got;

	addrnum_put(n, a, bits);
	got = geo_country(geo, family, a, NULL);
	if (!got || strcmp(got, cc) != 0) {
		char t[INET6_ADDRSTRLEN];
		inet_ntop(family, a, t, sizeof(t));
		fail_msg("%s in a %s range looks up to %s", t, cc, got ? got : "NULL");
	}
}

static int on_range(void *arg, int family, const uint8_t *start, const uint8_t *last,
		    const char *cc)
{
	struct walk_check *w = arg;
	addrnum s = addrnum_get(start, w->bits), l = addrnum_get(last, w->bits);

	assert_int_equal(family, w->family);
	assert_int_equal(strlen(cc), 2);
	assert_true(s <= l);
	if (w->n) {
		assert_true(s > w->prev_last); /* ordered, not overlapping */
		/* Maximal: a neighbouring range is another country. */
		if (s == w->prev_last + 1)
			assert_string_not_equal(cc, w->prev_cc);
	}
	if (family == AF_INET6) /* native space only */
		assert_true(start[0] >= 0x20 && start[0] <= 0x3f &&
			    !(start[0] == 0x20 && start[1] == 0x02) &&
			    !(start[0] == 0x20 && start[1] == 0x01 && !start[2] && !start[3]));
	/* Spot checks: the ends and the middle of every 97th range. */
	if (w->n % 97 == 0) {
		expect_cc(family, w->bits, s, cc);
		expect_cc(family, w->bits, l, cc);
		expect_cc(family, w->bits, s + (l - s) / 2, cc);
		w->checked++;
	}
	w->prev_last = l;
	memcpy(w->prev_cc, cc, 3);
	w->n++;
	if (w->stop_after && (int)w->n == w->stop_after)
		return 42;
	return 0;
}

static void test_ranges(void **s)
{
	struct walk_check v4 = {.family = AF_INET, .bits = 32};
	struct walk_check v6 = {.family = AF_INET6, .bits = 128};
	struct walk_check stop = {.family = AF_INET, .bits = 32, .stop_after = 10};

	(void)s;
	assert_int_equal(geo_each_range(geo, AF_INET, on_range, &v4), 0);
	assert_int_equal(geo_each_range(geo, AF_INET6, on_range, &v6), 0);
	/* The database's size today: ~200k IPv4 and ~57k IPv6 runs. */
	assert_true(v4.n > 50000);
	assert_true(v6.n > 1000);
	assert_true(v4.checked > 500 && v6.checked > 10);
	assert_int_equal(geo_each_range(geo, AF_INET, on_range, &stop), 42);
	assert_int_equal(stop.n, 10);
	assert_int_equal(geo_each_range(geo, AF_UNIX, on_range, &stop), -EAFNOSUPPORT);
}

#define THREADS 4
#define LOOKUPS 50000

struct job {
	const uint8_t (*addr)[16];
	const char **want;
	unsigned *want_plen;
	size_t mismatches;
};

static uint64_t next_rand(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

static void *lookup_all(void *arg)
{
	struct job *j = arg;

	for (size_t i = 0; i < LOOKUPS; i++) {
		int family = i & 1 ? AF_INET6 : AF_INET;
		unsigned plen;
		const char *cc = geo_country(geo, family, j->addr[i], &plen);
		if (cc != j->want[i] || plen != j->want_plen[i])
			j->mismatches++;
	}
	return NULL;
}

static void test_threads(void **s)
{
	uint8_t(*addr)[16] = calloc(LOOKUPS, sizeof(*addr));
	const char **want = calloc(LOOKUPS, sizeof(*want));
	unsigned *want_plen = calloc(LOOKUPS, sizeof(*want_plen));
	struct job jobs[THREADS];
	pthread_t t[THREADS];
	uint64_t x = 88172645463325252ull;
	size_t known = 0;

	(void)s;
	assert_non_null(addr);
	assert_non_null(want);
	assert_non_null(want_plen);
	for (size_t i = 0; i < LOOKUPS; i++) {
		uint64_t r = next_rand(&x);
		memcpy(addr[i], &r, 8);
		r = next_rand(&x);
		memcpy(addr[i] + 8, &r, 8);
		if (i & 1)
			addr[i][0] = 0x20 | (addr[i][0] & 0x0f); /* mostly allocated space */
		want[i] = geo_country(geo, i & 1 ? AF_INET6 : AF_INET, addr[i], &want_plen[i]);
		known += want[i] != NULL;
	}
	assert_true(known > LOOKUPS / 4); /* the comparison means something */
	for (int i = 0; i < THREADS; i++) {
		jobs[i] = (struct job){
		    .addr = (const uint8_t(*)[16])addr, .want = want, .want_plen = want_plen};
		assert_int_equal(pthread_create(&t[i], NULL, lookup_all, &jobs[i]), 0);
	}
	for (int i = 0; i < THREADS; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(jobs[i].mismatches, 0);
	}
	free(addr);
	free(want);
	free(want_plen);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_known),	cmocka_unit_test(test_unknown),
	    cmocka_unit_test(test_open_errors), cmocka_unit_test(test_ranges),
	    cmocka_unit_test(test_threads),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
