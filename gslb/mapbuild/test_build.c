// SPDX-License-Identifier: GPL-2.0-only
/*
 * test_build.c - gslb-map from subnets to a map and back: extrapolation to
 * announced prefixes (an agreeing AS, a disagreeing AS with an agreeing
 * prefix, a disagreeing prefix, the agreed PoP first even when another
 * ranks better), the quality score on hand-computed datasets, the held-out
 * choice, and the gdnsd nets export checked against our own lookup.
 */
#include <endian.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "mapbuild.h"
#include "testutil.h"

/* n samples of pop at rtt ms from distinct clients of the /24 net (a.b.c). */
static void rows(FILE *f, const char *net, const char *pop, double rtt, int n)
{
	for (int i = 0; i < n; i++)
		fprintf(f, "%s.%d,%s,%.3f,1\n", net, i + 1, pop, rtt);
}

static void rows6(FILE *f, const char *net56, const char *pop, double rtt, int n)
{
	for (int i = 0; i < n; i++)
		fprintf(f, "%s::%x,%s,%.3f,1\n", net56, i + 1, pop, rtt);
}

struct entries {
	unsigned n, plen[64];
	char pfx[64][48];
};

static int on_entry(void *arg, int family, const uint8_t *prefix, unsigned plen,
		    const uint8_t *list)
{
	(void)list;
	struct entries *e = arg;
	if (e->n < 64) {
		inet_ntop(family, prefix, e->pfx[e->n], sizeof(e->pfx[0]));
		e->plen[e->n] = plen;
	}
	e->n++;
	return 0;
}

static bool has_entry(const struct entries *e, const char *pfx, unsigned plen)
{
	for (unsigned i = 0; i < e->n && i < 64; i++)
		if (!strcmp(e->pfx[i], pfx) && e->plen[i] == plen)
			return true;
	return false;
}

static void test_extrapolation(void **state)
{
	(void)state;
	char *csv = NULL;
	size_t len;
	FILE *f = open_memstream(&csv, &len);
	fprintf(f, "%s\n", MB_CSV_HEADER);
	/*
	 * AS 64500 agrees on fra. Per PoP, the median over its subnets of the
	 * subnet medians: fra median(10, 50, 60) = 50, ams median(11, 70) =
	 * 40.5, so ams would rank first: the agreed PoP goes first anyway.
	 */
	rows(f, "10.0.1", "fra", 10, 3);
	rows(f, "10.0.1", "ams", 11, 3);
	rows(f, "10.0.2", "fra", 50, 3);
	rows(f, "10.1.5", "fra", 60, 3);
	rows(f, "10.1.5", "ams", 70, 3);
	/* AS 64501 disagrees, but each of its prefixes agrees. */
	rows(f, "20.0.1", "ams", 5, 3);
	rows(f, "20.0.2", "ams", 6, 3);
	rows(f, "20.0.2", "lon", 9, 3);
	rows(f, "20.1.1", "lon", 5, 3);
	rows(f, "20.1.2", "lon", 7, 3);
	/* AS 64502: one prefix disagrees, the other has a single subnet. */
	rows(f, "30.0.1", "fra", 5, 3);
	rows(f, "30.0.2", "ams", 5, 3);
	rows(f, "30.1.1", "fra", 5, 3);
	/* AS 64503 has one measured subnet: too few to speak for it. */
	rows(f, "40.0.1", "fra", 5, 3);
	/*
	 * AS 64505 agrees on fra, but its 50.0/16 holds 50.0.128/17 of AS
	 * 64506, whose subnets disagree: 50.0/16 gets nothing, 50.1/16 fra.
	 */
	rows(f, "50.1.1", "fra", 5, 3);
	rows(f, "50.1.2", "fra", 6, 3);
	rows(f, "50.0.200", "ams", 5, 3);
	rows(f, "50.0.201", "lon", 5, 3);
	/* AS 64504 (IPv6) agrees on lon across two /56s. */
	rows6(f, "2001:db8:0:100", "lon", 8, 3);
	rows6(f, "2001:db8:1:200", "lon", 9, 3);
	rows6(f, "2001:db8:1:200", "fra", 12, 3);
	fclose(f);
	const char *samples = tu_write("ext.csv", csv);
	free(csv);
	const char *asn = tu_write("ext.asn", "# prefix AS\n"
					      "10.0.0.0/16 64500\n"
					      "10.1.0.0/16 64500\n"
					      "10.9.0.0/16 64500\n"
					      "10.0.1.128/25 64500\n" /* inside a measured /24 */
					      "10.9.7.128/25 64500\n" /* finer than a subnet */
					      "20.0.0.0/16 64501\n"
					      "20.1.0.0/16 64501\n"
					      "30.0.0.0/16 64502\n"
					      "30.1.0.0/16 64502\n"
					      "40.0.0.0/16 64503\n"
					      "2001:db8::/32 64504\n"
					      "50.0.0.0/16 64505\n"
					      "50.1.0.0/16 64505\n"
					      "50.0.128.0/17 64506\n"
					      "10.0.0.0/16 64999\n" /* listed again */
					      "10.2.0.1/16 64500\n" /* host bits: malformed */
					      "bogus\n");
	struct mb_run r = {.o = {.samples = samples, .asn = asn, .min_samples = 3, .prune = true}};
	char *err = NULL, buf[128];
	assert_int_equal(mb_run_build(&r, &err), 0);
	assert_int_equal(r.asn.n, 14);
	assert_int_equal(r.asn.duplicates, 1);
	assert_int_equal(r.asn.malformed, 2);

	/* The agreeing AS: every prefix, measured or not, agreed PoP first. */
	assert_string_equal(tu_lookup(r.map, "10.9.200.1", buf, sizeof(buf)), "fra,ams");
	assert_string_equal(tu_lookup(r.map, "10.1.200.1", buf, sizeof(buf)), "fra,ams");
	assert_string_equal(tu_lookup(r.map, "10.0.200.1", buf, sizeof(buf)), "fra,ams");
	/* Measured subnets keep their own list. */
	assert_string_equal(tu_lookup(r.map, "10.0.2.9", buf, sizeof(buf)), "fra");
	assert_string_equal(tu_lookup(r.map, "10.0.1.200", buf, sizeof(buf)), "fra,ams");
	/* The disagreeing AS: nothing at AS level, each agreeing prefix its own. */
	assert_string_equal(tu_lookup(r.map, "20.0.99.1", buf, sizeof(buf)), "ams,lon");
	assert_string_equal(tu_lookup(r.map, "20.1.99.1", buf, sizeof(buf)), "lon");
	/* A prefix over disagreeing subnets, a lone subnet, a lone-subnet AS. */
	assert_string_equal(tu_lookup(r.map, "30.0.99.1", buf, sizeof(buf)), "-");
	assert_string_equal(tu_lookup(r.map, "30.1.99.1", buf, sizeof(buf)), "-");
	assert_string_equal(tu_lookup(r.map, "40.0.99.1", buf, sizeof(buf)), "-");
	assert_string_equal(tu_lookup(r.map, "30.0.1.1", buf, sizeof(buf)), "fra");
	/* An agreeing AS, but a prefix of it holds another AS that disagrees. */
	assert_string_equal(tu_lookup(r.map, "50.1.99.1", buf, sizeof(buf)), "fra");
	assert_string_equal(tu_lookup(r.map, "50.0.5.1", buf, sizeof(buf)), "-");
	assert_string_equal(tu_lookup(r.map, "50.0.130.1", buf, sizeof(buf)), "-");
	/* IPv6 the same way. */
	assert_string_equal(tu_lookup(r.map, "2001:db8:ffff::1", buf, sizeof(buf)), "lon,fra");

	/* 10.0/16, 10.1/16, 10.9/16, 20.0/16, 20.1/16, 50.1/16, 2001:db8::/32. */
	assert_int_equal(r.extrapolated, 7);
	struct entries e = {0};
	assert_int_equal(gmap_each(r.map, on_entry, &e), 0);
	assert_true(has_entry(&e, "10.9.0.0", 16));
	assert_true(has_entry(&e, "20.0.0.0", 16));
	assert_false(has_entry(&e, "30.0.0.0", 16));
	assert_false(has_entry(&e, "10.0.1.128", 25));
	assert_false(has_entry(&e, "10.9.7.128", 25));
	for (unsigned i = 0; i < e.n; i++)
		assert_true(e.plen[i] == 16 || e.plen[i] == 24 || e.plen[i] == 32 ||
			    e.plen[i] == 56);
	/* Pruning: 10.0.2.0/24 (fra) differs from 10.0/16 (fra,ams), so it stays; */
	assert_true(has_entry(&e, "10.0.2.0", 24));
	/* 20.1.1.0/24 (lon) says what 20.1/16 says, so it goes. */
	assert_false(has_entry(&e, "20.1.1.0", 24));
	assert_true(has_entry(&e, "20.1.0.0", 16));
	mb_run_free(&r);

	/* Without the AS file, nothing is extrapolated. */
	struct mb_run r2 = {.o = {.samples = samples, .min_samples = 3, .prune = true}};
	assert_int_equal(mb_run_build(&r2, &err), 0);
	assert_int_equal(r2.extrapolated, 0);
	assert_string_equal(tu_lookup(r2.map, "10.9.200.1", buf, sizeof(buf)), "-");
	mb_run_free(&r2);
}

/* Write rows so that subnet /24 net has medians as given ("pop=ms" pairs). */
static void subnet(FILE *f, const char *net, const char *pops)
{
	char copy[128];
	snprintf(copy, sizeof(copy), "%s", pops);
	for (char *save = NULL, *t = strtok_r(copy, " ", &save); t;
	     t = strtok_r(NULL, " ", &save)) {
		char *eq = strchr(t, '=');
		*eq = 0;
		for (int i = 0; i < 3; i++)
			fprintf(f, "%s.%d,%s,%s,1\n", net, i + 1, t, eq + 1);
	}
}

static void test_score_by_hand(void **state)
{
	(void)state;
	char *csv = NULL;
	size_t len;
	FILE *f = open_memstream(&csv, &len);
	fprintf(f, "%s\n", MB_CSV_HEADER);
	subnet(f, "192.0.2", "fra=10 ams=20");		 /* 0: map says fra: correct */
	subnet(f, "198.51.100", "ams=10 fra=15 lon=40"); /* 1: map says fra: +5 ms */
	subnet(f, "198.51.101", "ams=10");		 /* 2: map says nothing */
	subnet(f, "198.51.102", "lon=10");		 /* 3: map says fra, unmeasured */
	subnet(f, "203.0.113", "lon=30 ams=31");	 /* 4: not held out */
	fclose(f);
	const char *path = tu_write("score.csv", csv);
	free(csv);
	struct mb_samples s = {0};
	struct mb_data d = {0};
	char *err = NULL;
	assert_int_equal(mb_samples_read(path, &s, NULL, &err), 0);
	assert_int_equal(mb_aggregate(&s, 3, &d), 0);
	assert_int_equal(d.n_subnets, 5);

	/* A map by hand: subnets 0 and 1 under fra,lon, 3 under fra, 4 under lon. */
	struct gmap_builder *b = gmap_builder_new();
	int lon = gmap_builder_pop(b, "lon"), fra = gmap_builder_pop(b, "fra");
	uint8_t a[16], lf[] = {(uint8_t)fra, (uint8_t)lon}, ll[] = {(uint8_t)lon};
	tu_addr("192.0.0.0", a);
	assert_int_equal(gmap_builder_add(b, AF_INET, a, 8, lf, 2), 0);
	tu_addr("198.51.100.0", a);
	assert_int_equal(gmap_builder_add(b, AF_INET, a, 24, lf, 2), 0);
	tu_addr("198.51.102.0", a);
	assert_int_equal(gmap_builder_add(b, AF_INET, a, 24, lf, 1), 0);
	tu_addr("203.0.113.0", a);
	assert_int_equal(gmap_builder_add(b, AF_INET, a, 24, ll, 1), 0);
	void *img;
	size_t ilen;
	assert_int_equal(gmap_builder_serialize(b, NULL, true, &img, &ilen), 0);
	gmap_builder_free(b);
	struct gmap *m;
	assert_int_equal(gmap_parse(img, ilen, &m, &err), 0);

	uint8_t held[5] = {1, 1, 1, 1, 0};
	struct mb_score sc;
	mb_score_map(m, &s, &d, held, &sc);
	/* 4 scored, 3 covered, 1 correct; regret over 0 and 1: (0 + 5000) / 2. */
	assert_int_equal(sc.scored, 4);
	assert_int_equal(sc.covered, 3);
	assert_int_equal(sc.correct, 1);
	assert_int_equal(sc.regret_n, 2);
	assert_int_equal(mb_score_regret_us(&sc), 2500);
	assert_true(mb_score_correct(&sc) == 0.25);
	assert_true(mb_score_coverage(&sc) == 0.75);

	/* Held-out subnet 4 instead of 0: lon is its best, correct. */
	uint8_t held2[5] = {0, 0, 0, 0, 1};
	mb_score_map(m, &s, &d, held2, &sc);
	assert_int_equal(sc.scored, 1);
	assert_int_equal(sc.correct, 1);
	assert_int_equal(mb_score_regret_us(&sc), 0);
	gmap_close(m);
	free(img);
	mb_data_free(&d);
	mb_samples_free(&s);
}

/* The first /24 10.k.1.0 (k >= *next) that is (held) or is not (!held) held out. */
static unsigned pick(unsigned *next, uint64_t seed, double share, bool held)
{
	for (unsigned k = *next; k < 256; k++)
		if (mb_held_out((uint64_t)10 << 16 | k << 8 | 1, seed, share) == held) {
			*next = k + 1;
			return k;
		}
	fail_msg("no subnet found");
	return 0;
}

static void test_score_in_build(void **state)
{
	(void)state;
	const uint64_t seed = 7;
	const double share = 0.5;
	/* Pick the subnets by the same hash the build uses. */
	unsigned next = 1, t[3], h[2];
	for (int i = 0; i < 3; i++)
		t[i] = pick(&next, seed, share, false);
	for (int i = 0; i < 2; i++)
		h[i] = pick(&next, seed, share, true);
	char *csv = NULL, net[32];
	size_t len;
	FILE *f = open_memstream(&csv, &len);
	fprintf(f, "%s\n", MB_CSV_HEADER);
	/* Training subnets all prefer fra: AS 64500 (10/8) gets fra,ams. */
	for (int i = 0; i < 3; i++) {
		snprintf(net, sizeof(net), "10.%u.1", t[i]);
		subnet(f, net, "fra=10 ams=20");
	}
	/* Held out: one prefers fra (correct), one ams with fra 5 ms behind. */
	snprintf(net, sizeof(net), "10.%u.1", h[0]);
	subnet(f, net, "fra=12 ams=30");
	snprintf(net, sizeof(net), "10.%u.1", h[1]);
	subnet(f, net, "ams=10 fra=15");
	/* 11.0.1.0/24: held out or not, no announced prefix covers it. */
	bool lone_held = mb_held_out((uint64_t)11 << 16 | 1, seed, share);
	subnet(f, "11.0.1", "lon=10");
	fclose(f);
	const char *samples = tu_write("score2.csv", csv);
	free(csv);
	const char *asn = tu_write("score2.asn", "10.0.0.0/8 64500\n");

	struct mb_run r = {.o = {.samples = samples,
				 .asn = asn,
				 .min_samples = 3,
				 .prune = true,
				 .seed = seed,
				 .holdout = share,
				 .created = 12345}};
	char *err = NULL;
	assert_int_equal(mb_run_build(&r, &err), 0);
	unsigned scored = 2 + lone_held;
	assert_int_equal(r.score.scored, scored);
	assert_int_equal(r.score.covered, 2);
	assert_int_equal(r.score.correct, 1);
	assert_int_equal(mb_score_regret_us(&r.score), 2500);
	const struct gmap_header *hd = gmap_header(r.map);
	assert_int_equal(le32toh(hd->score_ppm), (uint32_t)(1e6 / scored + 0.5));
	assert_int_equal(le32toh(hd->regret_us), 2500);
	assert_int_equal(le32toh(hd->holdout), scored);
	assert_int_equal(le64toh(hd->samples), 3 * 2 * 3 + 2 * 2 * 3 + 3);
	assert_int_equal(le64toh(hd->created), 12345);
	/* The final map has every subnet, held out or not. */
	char buf[64];
	snprintf(net, sizeof(net), "10.%u.1.1", h[1]);
	assert_string_equal(tu_lookup(r.map, net, buf, sizeof(buf)), "ams,fra");
	mb_run_free(&r);
}

static void test_held_out(void **state)
{
	(void)state;
	unsigned n = 0, same = 0;
	for (uint64_t k = 0; k < 20000; k++) {
		uint64_t key = k * 2654435761u % 16777216u;
		bool h = mb_held_out(key, 42, 0.2);
		n += h;
		same += h == mb_held_out(key, 42, 0.2);
		assert_false(mb_held_out(key, 42, 0));
	}
	assert_int_equal(same, 20000);
	assert_in_range(n, 3700, 4300);
	/* Another seed, other subnets. */
	unsigned differ = 0;
	for (uint64_t k = 0; k < 1000; k++)
		differ += mb_held_out(k, 1, 0.5) != mb_held_out(k, 2, 0.5);
	assert_in_range(differ, 400, 600);
}

/* ---- gdnsd nets ---- */

struct net {
	uint8_t a[16]; /* gdnsd's space: IPv4 at ::/96 */
	unsigned plen;
	char list[96];
};

static inline unsigned bit(const uint8_t *a, unsigned d)
{
	return (a[d >> 3] >> (7 - (d & 7))) & 1;
}

static unsigned parse_nets(char *text, struct net *out, unsigned max)
{
	unsigned n = 0;
	for (char *save = NULL, *l = strtok_r(text, "\n", &save); l;
	     l = strtok_r(NULL, "\n", &save)) {
		if (*l == '#')
			continue;
		assert_true(n < max);
		struct net *x = &out[n++];
		char pfx[64], rest[128];
		assert_int_equal(sscanf(l, "%63s => [ %127[^]]", pfx, rest), 2);
		char *slash = strchr(pfx, '/');
		*slash = 0;
		x->plen = (unsigned)atoi(slash + 1);
		uint8_t a[16];
		if (tu_addr(pfx, a) == AF_INET) {
			memset(x->a, 0, 16);
			memcpy(x->a + 12, a, 4);
			x->plen += 96;
		} else {
			memcpy(x->a, a, 16);
		}
		size_t k = 0;
		for (char *p = rest; *p; p++)
			if (*p != ' ')
				x->list[k++] = *p;
		x->list[k] = 0;
	}
	return n;
}

/* gdnsd's answer: the longest net holding a, or "-". Duplicates fail. */
static const char *nets_lookup(const struct net *v, unsigned n, const uint8_t *a)
{
	const struct net *best = NULL;
	for (unsigned i = 0; i < n; i++) {
		unsigned d = 0;
		while (d < v[i].plen && bit(v[i].a, d) == bit(a, d))
			d++;
		if (d < v[i].plen)
			continue;
		assert_true(!best || best->plen != v[i].plen);
		if (!best || v[i].plen > best->plen)
			best = &v[i];
	}
	return best ? best->list : "-";
}

static void add(struct gmap_builder *b, const char *cidr, const char *pops)
{
	char buf[64];
	snprintf(buf, sizeof(buf), "%s", cidr);
	char *slash = strchr(buf, '/');
	*slash = 0;
	uint8_t a[16], l[GMAP_LIST_MAX];
	int family = tu_addr(buf, a);
	unsigned n = 0;
	for (const char *p = pops; *p; p++)
		l[n++] = (uint8_t)gmap_builder_pop(b, (char[]){*p, 0});
	assert_int_equal(gmap_builder_add(b, family, a, (unsigned)atoi(slash + 1), l, n), 0);
}

static void test_gdnsd_nets(void **state)
{
	(void)state;
	struct gmap_builder *b = gmap_builder_new();
	/* PoPs named a, b, c, d. */
	add(b, "10.0.0.0/8", "ab");
	add(b, "10.1.0.0/16", "b");
	add(b, "10.2.0.0/23", "c"); /* covered by the two /24s below: shadowed */
	add(b, "10.2.0.0/24", "a");
	add(b, "10.2.1.0/24", "a");
	add(b, "0.0.0.0/1", "d");
	add(b, "::/0", "c");		  /* covers ::/96: must not answer IPv4 */
	add(b, "::/64", "d");		  /* ditto, more specific */
	add(b, "::1:0:0/96", "a");	  /* a piece it is carved into */
	add(b, "::5/128", "a");		  /* inside ::/96: left out */
	add(b, "2001:0:1::/48", "a");	  /* Teredo: left out */
	add(b, "2002:102:304::/48", "b"); /* 6to4: left out */
	add(b, "2001:db8::/32", "bd");
	add(b, "2001:db8:1::/48", "a");
	void *img;
	size_t len;
	assert_int_equal(gmap_builder_serialize(b, NULL, false, &img, &len), 0);
	gmap_builder_free(b);
	struct gmap *m;
	char *err = NULL;
	assert_int_equal(gmap_parse(img, len, &m, &err), 0);

	char *text = NULL;
	size_t tlen, skipped = 0;
	FILE *f = open_memstream(&text, &tlen);
	assert_int_equal(mb_write_gdnsd(m, f, &skipped), 0);
	fclose(f);
	assert_int_equal(skipped, 3);
	assert_non_null(strstr(text, "\n10.0.0.0/8 => [ a, b ]\n"));
	assert_null(strstr(text, "10.2.0.0/23"));
	assert_null(strstr(text, "::/0 "));
	assert_null(strstr(text, "2001:0:1::"));
	assert_null(strstr(text, "2002:"));

	struct net nets[256];
	unsigned n = parse_nets(text, nets, 256);
	/* Every address we ask answers as our lookup does (IPv4 as ::/96). */
	const char *probe[] = {"10.2.0.7",	"10.2.1.7",	"10.1.2.3",	"10.200.0.1",
			       "9.9.9.9",	"200.1.1.1",	"::1:0:5",	"::2:0:0",
			       "::8000:0:0:0",	"1::",		"8000::1",	"2001:db8:1::9",
			       "2001:db8:2::9", "2001:dead::1", "::ffff:0:0:1", "2003::1"};
	for (unsigned i = 0; i < sizeof(probe) / sizeof(probe[0]); i++) {
		uint8_t a[16], g[16] = {0};
		char want[64];
		int family = tu_addr(probe[i], a);
		tu_lookup(m, probe[i], want, sizeof(want));
		if (family == AF_INET)
			memcpy(g + 12, a, 4);
		else
			memcpy(g, a, 16);
		assert_string_equal(nets_lookup(nets, n, g), want);
	}
	/* An IPv4 address no IPv4 entry covers is not answered by an IPv6 one. */
	uint8_t g[16] = {0};
	g[12] = 200;
	assert_string_equal(nets_lookup(nets, n, g), "-");
	free(text);
	gmap_close(m);
	free(img);
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
	    cmocka_unit_test(test_extrapolation),  cmocka_unit_test(test_score_by_hand),
	    cmocka_unit_test(test_score_in_build), cmocka_unit_test(test_held_out),
	    cmocka_unit_test(test_gdnsd_nets),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
