// SPDX-License-Identifier: GPL-2.0-only
/*
 * Unit tests for gslb-gen's engine: determinism, rows a consumer accepts,
 * every kind of bad row at the rate asked, clients inside the database's
 * ranges and the announced prefixes, latency that grows with distance,
 * and the client model: clients concentrated in a few ASes per country,
 * an AS's subnets near each other and mostly agreeing on their nearest
 * and their measured best PoP. The world is built once (it walks both
 * databases).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "addrnum.h"
#include "csv.h"
#include "gensamp.h"
#include "geo.h"
#include "geomath.h"
#include "sites.h"

struct fx {
	struct geo *geo;
	struct site_list countries, pops;
	struct gen_world *w;
};

static struct fx fx;

static int setup(void **s)
{
	char buf[PATH_MAX], *err = NULL;

	(void)s;
	if (sites_load(sites_data_path("countries.csv", buf, sizeof(buf)), SITE_COUNTRY,
		       &fx.countries, &err) ||
	    sites_load(sites_data_path("cities.csv", buf, sizeof(buf)), SITE_CITY, &fx.pops,
		       &err) ||
	    !(fx.geo = geo_open(NULL, NULL, &err)) ||
	    gen_world_new(&fx.w, fx.geo, &fx.countries, &fx.pops, &err)) {
		fprintf(stderr, "setup: %s\n", err ? err : "?");
		free(err);
		return -1;
	}
	return 0;
}

static int teardown(void **s)
{
	(void)s;
	gen_world_free(fx.w);
	geo_close(fx.geo);
	sites_free(&fx.pops);
	sites_free(&fx.countries);
	return 0;
}

/* Run the generator into a malloc'd string (caller frees). */
static char *generate(const struct gen_opts *o, struct gen_stats *st)
{
	char *buf = NULL, *err = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	if (gen_write_samples(fx.w, o, f, st, &err))
		fail_msg("gen_write_samples: %s", err ? err : "?");
	fclose(f);
	return buf;
}

/* The next line of *p (NUL-terminated in place) or NULL at the end. */
static char *next_line(char **p)
{
	char *s = *p, *nl;

	if (!s || !*s)
		return NULL;
	nl = strchr(s, '\n');
	if (nl) {
		*nl = 0;
		*p = nl + 1;
	} else {
		*p = NULL;
	}
	return s;
}

enum kind { K_VALID, K_MALFORMED, K_FAILED, K_NEGATIVE, K_TINY, K_ABSURD, K_DUPLICATE, K__N };

struct row {
	int family;
	uint8_t addr[16];
	const struct site *pop;
	double rtt;
};

/* Classify a line as a consumer would (gslb-map's order of checks). */
static enum kind classify(char *line, struct row *r)
{
	char *f[6], *end, *s = line;
	int n = 0;

	for (char *c; n < 6; s = c + 1) {
		f[n++] = s;
		if (!(c = strchr(s, ',')))
			break;
		*c = 0;
	}
	if (n != 4)
		return K_MALFORMED;
	r->family = strchr(f[0], ':') ? AF_INET6 : AF_INET;
	if (inet_pton(r->family, f[0], r->addr) != 1)
		return K_MALFORMED;
	r->pop = sites_find(&fx.pops, f[1]);
	if (!r->pop || csv_double(f[2], &r->rtt))
		return K_MALFORMED;
	/* Three decimals, always. */
	end = strchr(f[2], '.');
	if (!end || strlen(end) != 4)
		return K_MALFORMED;
	if (strcmp(f[3], "0") == 0)
		return K_FAILED;
	if (strcmp(f[3], "1") != 0)
		return K_MALFORMED;
	if (r->rtt < 0)
		return K_NEGATIVE;
	if (r->rtt < 0.001)
		return K_TINY;
	if (r->rtt > 60000)
		return K_ABSURD;
	return K_VALID;
}

/* A set of whole lines, to find exact duplicates. */
struct lineset {
	char **v;
	size_t cap, n;
};

static uint64_t str_hash(const char *s)
{
	uint64_t h = 1469598103934665603ull;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

/* true if s was there already; s is borrowed and must outlive the set. */
static bool lineset_seen(struct lineset *ls, char *s)
{
	size_t i;

	if (!ls->cap) {
		ls->cap = 1 << 17;
		ls->v = calloc(ls->cap, sizeof(*ls->v));
		assert_non_null(ls->v);
	}
	assert_true(2 * ls->n < ls->cap);
	for (i = str_hash(s) & (ls->cap - 1); ls->v[i]; i = (i + 1) & (ls->cap - 1))
		if (strcmp(ls->v[i], s) == 0)
			return true;
	ls->v[i] = s;
	ls->n++;
	return false;
}

struct tally {
	size_t rows, kinds[K__N], v6, unknown_country, unlisted_country;
};

/*
 * Walk buf (modified in place): check the header, classify every row,
 * and for valid ones call fn. Duplicates are counted among rows that are
 * otherwise valid.
 */
static void walk(char *buf, struct tally *t, void (*fn)(void *, const struct row *), void *arg)
{
	struct lineset seen = {0};
	char *p = buf, *line = next_line(&p);

	memset(t, 0, sizeof(*t));
	assert_non_null(line);
	assert_string_equal(line, "client,pop,rtt_ms,ok");
	while ((line = next_line(&p))) {
		char copy[512];
		struct row r;
		enum kind k;

		t->rows++;
		snprintf(copy, sizeof(copy), "%s", line);
		k = classify(copy, &r);
		if (k == K_VALID && lineset_seen(&seen, line))
			k = K_DUPLICATE;
		t->kinds[k]++;
		if (k != K_VALID)
			continue;
		const char *cc = geo_country(fx.geo, r.family, r.addr, NULL);
		if (!cc)
			t->unknown_country++;
		else if (!sites_find(&fx.countries, cc))
			t->unlisted_country++;
		t->v6 += r.family == AF_INET6;
		if (fn)
			fn(arg, &r);
	}
	free(seen.v);
}

static void test_deterministic(void **s)
{
	struct gen_opts o = {.seed = 42, .samples = 3000, .bad_rate = 0.05, .v6_share = 0.3};
	char *a, *b, *c;

	(void)s;
	a = generate(&o, NULL);
	b = generate(&o, NULL);
	o.seed = 43;
	c = generate(&o, NULL);
	assert_true(strlen(a) > 3000 * 10);
	assert_string_equal(a, b);
	assert_string_not_equal(a, c);
	free(a);
	free(b);
	free(c);
}

static void test_clean(void **s)
{
	struct gen_opts o = {.seed = 7, .samples = 8000, .v6_share = 0.3};
	struct gen_stats st;
	struct tally t;
	char *buf;

	(void)s;
	buf = generate(&o, &st);
	walk(buf, &t, NULL, NULL);
	assert_int_equal(t.rows, 8000);
	assert_int_equal(st.rows, 8000);
	assert_int_equal(st.bad, 0);
	/* Every row valid and unique, every client in a listed country. */
	assert_int_equal(t.kinds[K_VALID], 8000);
	assert_int_equal(t.unknown_country, 0);
	assert_int_equal(t.unlisted_country, 0);
	/* The pool default is samples / 20, and most of it is sampled. */
	assert_int_equal(st.subnets, 400);
	assert_true(st.sampled > 300);
	/* The v6 share is of subnets; rows follow it roughly. */
	assert_int_equal(st.v6_rows, t.v6);
	assert_true(t.v6 > 8000 / 10 && t.v6 < 8000 / 2);
	free(buf);

	o.v6_share = 0;
	buf = generate(&o, &st);
	walk(buf, &t, NULL, NULL);
	assert_int_equal(t.v6, 0);
	free(buf);
	o.v6_share = 1;
	buf = generate(&o, &st);
	walk(buf, &t, NULL, NULL);
	assert_true(t.v6 > 8000 * 9 / 10); /* a country without IPv6 falls back */
	assert_int_equal(t.unknown_country, 0);
	free(buf);
}

static void test_bad_rows(void **s)
{
	struct gen_opts o = {.seed = 11, .samples = 20000, .bad_rate = 0.2, .v6_share = 0.3};
	struct gen_stats st;
	struct tally t;
	size_t invalid;
	char *buf;

	(void)s;
	buf = generate(&o, &st);
	walk(buf, &t, NULL, NULL);
	invalid = t.rows - t.kinds[K_VALID];
	/* Each bad row is bad in some way, and no good row is. */
	assert_int_equal(invalid, st.bad);
	/* 0.2 of 20000 = 4000, sigma 57. */
	assert_in_range(st.bad, 3700, 4300);
	for (int k = K_MALFORMED; k < K__N; k++)
		if (t.kinds[k] < 20)
			fail_msg("only %zu rows of kind %d", t.kinds[k], k);
	assert_int_equal(t.unknown_country, 0);
	free(buf);

	/*
	 * The good rows do not depend on the bad rate: the bad rows come on
	 * top of them, so a run without its bad rows is the start of the
	 * same seed's run at rate 0.
	 */
	char *clean;
	size_t bad;
	o.bad_rate = 0;
	clean = generate(&o, &st);
	assert_int_equal(st.bad, 0);
	o.bad_rate = 0.2;
	buf = generate(&o, &st);
	bad = st.bad;
	{
		char *p = buf, *q = clean, *a, *b, *prev = NULL;
		size_t good = 0;
		assert_string_equal(next_line(&p), next_line(&q));
		while ((a = next_line(&p))) {
			char copy[512];
			struct row r;
			snprintf(copy, sizeof(copy), "%s", a);
			/* A bad duplicate repeats the last good row. */
			if (classify(copy, &r) != K_VALID || (prev && strcmp(a, prev) == 0))
				continue;
			b = next_line(&q);
			assert_non_null(b);
			assert_string_equal(a, b);
			prev = a;
			good++;
		}
		assert_int_equal(good, 20000 - bad);
	}
	free(buf);
	free(clean);
}

struct dist_acc {
	double sum_near, sum_far, sx, sy, sxx, sxy;
	size_t n_near, n_far, n;
};

static void add_dist(void *arg, const struct row *r)
{
	struct dist_acc *a = arg;
	const char *cc = geo_country(fx.geo, r->family, r->addr, NULL);
	const struct site *c = sites_find(&fx.countries, cc);
	double km = geo_dist_km(c->lat, c->lon, r->pop->lat, r->pop->lon);

	if (km < 1000) {
		a->sum_near += r->rtt;
		a->n_near++;
	} else if (km > 8000) {
		a->sum_far += r->rtt;
		a->n_far++;
	}
	a->sx += km;
	a->sy += r->rtt;
	a->sxx += km * km;
	a->sxy += km * r->rtt;
	a->n++;
}

static void test_latency_grows_with_distance(void **s)
{
	struct gen_opts o = {.seed = 3, .samples = 30000, .v6_share = 0.3};
	struct dist_acc a = {0};
	struct tally t;
	double slope, near, far;
	char *buf;

	(void)s;
	buf = generate(&o, NULL);
	walk(buf, &t, add_dist, &a);
	free(buf);
	assert_true(a.n_near > 500 && a.n_far > 500);
	near = a.sum_near / a.n_near;
	far = a.sum_far / a.n_far;
	/* 8000 km at 1 ms per 100 km times 1.5-2 is 120-160 ms more. */
	if (!(far > near + 80))
		fail_msg("mean RTT %.1f ms under 1000 km, %.1f ms over 8000 km", near, far);
	/* Least squares: ms per 100 km, from the country points (jitter blurs). */
	slope = (a.n * a.sxy - a.sx * a.sy) / (a.n * a.sxx - a.sx * a.sx) * 100;
	if (slope < 1.0 || slope > 2.5)
		fail_msg("RTT grows %.2f ms per 100 km, want 1.0-2.5", slope);
}

struct pfx {
	addrnum start, last;
	uint32_t asn;
};

struct asn_table {
	struct pfx *v[2];
	size_t n[2];
};

static void parse_asn(char *buf, struct asn_table *t)
{
	char *p = buf, *line;
	size_t cap[2] = {0}, asns = 0;
	uint32_t *seen = calloc(gen_world_ases(fx.w) + 1, sizeof(*seen));

	assert_non_null(seen);
	memset(t, 0, sizeof(*t));
	while ((line = next_line(&p))) {
		char *slash, *sp, *end;
		uint8_t a[16] = {0};
		unsigned long plen, asn;
		int f;

		if (line[0] == '#')
			continue;
		slash = strchr(line, '/');
		sp = strchr(line, ' ');
		assert_non_null(slash);
		assert_non_null(sp);
		*slash = *sp = 0;
		f = strchr(line, ':') != NULL;
		assert_int_equal(inet_pton(f ? AF_INET6 : AF_INET, line, a), 1);
		plen = strtoul(slash + 1, &end, 10);
		assert_true(end == sp && plen <= (f ? 128u : 32u));
		asn = strtoul(sp + 1, &end, 10);
		assert_true(*end == 0);
		assert_true((asn >= GEN_ASN_FIRST && asn <= GEN_ASN_LAST16) ||
			    (asn >= GEN_ASN_FIRST32 && asn < 4294967295ul));
		unsigned bits = f ? 128 : 32;
		addrnum s = addrnum_get(a, bits), host = addrnum_low(bits - (unsigned)plen);
		assert_true((s & host) == 0); /* CIDR: no host bits */
		if (t->n[f] == cap[f]) {
			cap[f] = cap[f] ? 2 * cap[f] : 1 << 16;
			t->v[f] = realloc(t->v[f], cap[f] * sizeof(*t->v[f]));
			assert_non_null(t->v[f]);
		}
		/* Ordered, never overlapping. */
		if (t->n[f])
			assert_true(s > t->v[f][t->n[f] - 1].last);
		t->v[f][t->n[f]++] =
		    (struct pfx){.start = s, .last = s | host, .asn = (uint32_t)asn};
		size_t ord = asn <= GEN_ASN_LAST16
				 ? asn - GEN_ASN_FIRST
				 : asn - GEN_ASN_FIRST32 + (GEN_ASN_LAST16 - GEN_ASN_FIRST + 1);
		assert_true(ord < gen_world_ases(fx.w));
		if (!seen[ord]++)
			asns++;
	}
	/* Many ASes, and several prefixes for a typical one. */
	assert_true(asns > 500);
	assert_true(t->n[0] + t->n[1] > 4 * asns);
	free(seen);
}

static const struct pfx *covering(const struct asn_table *t, const struct row *r)
{
	int f = r->family == AF_INET6;
	addrnum a = addrnum_get(r->addr, f ? 128 : 32);
	size_t lo = 0, hi = t->n[f];

	while (lo < hi) { /* the last prefix starting at or before a */
		size_t mid = lo + (hi - lo) / 2;
		if (t->v[f][mid].start <= a)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0 || t->v[f][lo - 1].last < a)
		return NULL;
	return &t->v[f][lo - 1];
}

struct cover_acc {
	const struct asn_table *t;
	size_t uncovered, rows;
};

static void check_covered(void *arg, const struct row *r)
{
	struct cover_acc *c = arg;

	c->rows++;
	if (!covering(c->t, r))
		c->uncovered++;
}

static void test_asn_table(void **s)
{
	struct gen_opts o = {.seed = 5, .samples = 5000, .v6_share = 0.3};
	char *buf = NULL, *again = NULL;
	size_t len = 0, len2 = 0;
	struct asn_table t;
	struct cover_acc c = {.t = &t};
	struct tally tl;
	FILE *f = open_memstream(&buf, &len);

	(void)s;
	assert_int_equal(gen_write_asn(fx.w, f), 0);
	fclose(f);
	f = open_memstream(&again, &len2);
	assert_int_equal(gen_write_asn(fx.w, f), 0);
	fclose(f);
	assert_string_equal(buf, again);
	free(again);
	parse_asn(buf, &t);
	assert_int_equal(t.n[0] + t.n[1], gen_world_prefixes(fx.w));
	assert_true(t.n[0] > 100000 && t.n[1] > 1000);
	free(buf);

	/* Every client is inside an announced prefix. */
	buf = generate(&o, NULL);
	walk(buf, &tl, check_covered, &c);
	assert_int_equal(c.rows, 5000);
	assert_int_equal(c.uncovered, 0);
	free(buf);
	free(t.v[0]);
	free(t.v[1]);
}

/* Residuals per (AS, PoP) pair: RTT minus the plain model's RTT. */
#define QUIRK_MAX_PAIRS 65536

struct quirk_acc {
	const struct asn_table *t;
	struct qpair {
		uint32_t asn;
		uint16_t pop;
		size_t n, cap;
		double *res;
	} * v;
	size_t n;
};

static void add_residual(void *arg, const struct row *r)
{
	struct quirk_acc *q = arg;
	const struct pfx *p = covering(q->t, r);
	const struct site *c =
	    sites_find(&fx.countries, geo_country(fx.geo, r->family, r->addr, NULL));
	double km = geo_dist_km(c->lat, c->lon, r->pop->lat, r->pop->lon);
	uint16_t pop = (uint16_t)(r->pop - fx.pops.v);
	size_t i;

	assert_non_null(p);
	/* Near PoPs only: far away the subnets' path inflation blurs it. */
	if (km > 3000)
		return;
	for (i = 0; i < q->n && !(q->v[i].asn == p->asn && q->v[i].pop == pop); i++)
		;
	if (i == q->n) {
		assert_true(q->n < QUIRK_MAX_PAIRS);
		q->v[q->n++] = (struct qpair){.asn = p->asn, .pop = pop};
	}
	struct qpair *e = &q->v[i];
	if (e->n == e->cap) {
		e->cap = e->cap ? 2 * e->cap : 16;
		e->res = realloc(e->res, e->cap * sizeof(*e->res));
		assert_non_null(e->res);
	}
	e->res[e->n++] = r->rtt - geo_model_rtt_ms(km);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, size_t n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/*
 * Bad peering: some ASes are much slower toward some PoPs than toward
 * the AS's other PoPs at a similar distance, so the nearest PoP is not
 * always the best. Look for (AS, PoP) pairs whose median residual stands
 * 15 ms above the same AS's typical residual.
 */
static void test_as_quirks(void **s)
{
	struct gen_opts o = {.seed = 13, .samples = 60000, .v6_share = 0.3};
	char *buf = NULL;
	size_t len = 0, pairs = 0, elevated = 0;
	struct asn_table t;
	struct quirk_acc q = {.t = &t};
	struct tally tl;
	FILE *f = open_memstream(&buf, &len);

	(void)s;
	assert_int_equal(gen_write_asn(fx.w, f), 0);
	fclose(f);
	parse_asn(buf, &t);
	free(buf);
	q.v = calloc(QUIRK_MAX_PAIRS, sizeof(*q.v));
	assert_non_null(q.v);
	buf = generate(&o, NULL);
	walk(buf, &tl, add_residual, &q);
	free(buf);
	for (size_t i = 0; i < q.n; i++) {
		double mine, typical, all[64];
		size_t na = 0;

		if (q.v[i].n < 10)
			continue;
		mine = median(q.v[i].res, q.v[i].n);
		for (size_t j = 0; j < q.n && na < 64; j++)
			if (q.v[j].asn == q.v[i].asn && q.v[j].n >= 10)
				all[na++] = median(q.v[j].res, q.v[j].n);
		if (na < 2)
			continue;
		typical = median(all, na);
		pairs++;
		elevated += mine > typical + 15;
	}
	for (size_t i = 0; i < q.n; i++)
		free(q.v[i].res);
	free(q.v);
	free(t.v[0]);
	free(t.v[1]);
	/* 20% of ASes are quirky toward 30% of PoPs: about 6% of pairs. */
	if (pairs < 200 || elevated < pairs / 50 || elevated > pairs / 5)
		fail_msg("%zu of %zu (AS, PoP) pairs stand out", elevated, pairs);
}

/* ---- the client model ---- */

static uint64_t subnet_key(int family, const uint8_t *a)
{
	uint64_t k = 0;

	if (family == AF_INET)
		return (uint64_t)a[0] << 16 | (uint64_t)a[1] << 8 | a[2];
	for (int i = 0; i < 7; i++)
		k = k << 8 | a[i];
	return 1ull << 63 | k;
}

static struct gen_subnet *pool_of(const struct gen_world *w, uint64_t seed, uint64_t subnets,
				  size_t *n)
{
	struct gen_opts o = {.seed = seed, .subnets = subnets, .v6_share = 0.3};
	struct gen_subnet *v;
	char *err = NULL;

	if (gen_pool(w, &o, &v, n, &err))
		fail_msg("gen_pool: %s", err ? err : "?");
	assert_int_equal(*n, subnets);
	return v;
}

/* (group, value) pairs, to count values per group after sorting. */
struct gv {
	uint64_t group, value;
};

static int cmp_gv(const void *pa, const void *pb)
{
	const struct gv *a = pa, *b = pb;

	if (a->group != b->group)
		return a->group < b->group ? -1 : 1;
	return (a->value > b->value) - (a->value < b->value);
}

/*
 * Over the groups of v (sorted here) with at least min members: the
 * members whose value is their group's commonest, and all members.
 * *top3 (may be NULL): members with one of the group's three commonest.
 */
static void modal(struct gv *v, size_t n, size_t min, size_t *agree, size_t *total, size_t *top3)
{
	qsort(v, n, sizeof(*v), cmp_gv);
	*agree = *total = 0;
	if (top3)
		*top3 = 0;
	for (size_t i = 0; i < n;) {
		size_t j = i, best[3] = {0};
		while (j < n && v[j].group == v[i].group) {
			size_t k = j;
			while (k < n && v[k].group == v[j].group && v[k].value == v[j].value)
				k++;
			size_t c = k - j;
			for (int b = 0; b < 3; b++)
				if (c > best[b]) {
					for (int m = 2; m > b; m--)
						best[m] = best[m - 1];
					best[b] = c;
					break;
				}
			j = k;
		}
		if (j - i >= min) {
			*agree += best[0];
			*total += j - i;
			if (top3)
				*top3 += best[0] + best[1] + best[2];
		}
		i = j;
	}
}

static int country_of(const struct gen_subnet *g)
{
	const char *cc = geo_country(fx.geo, g->family, g->addr, NULL);

	assert_non_null(cc);
	assert_non_null(sites_find(&fx.countries, cc));
	return (cc[0] - 'A') * 26 + (cc[1] - 'A');
}

/*
 * The pool: the same for the same seed, another for another seed;
 * subnets in their country's address space; and clients concentrated in
 * a few ASes per country, the big ones holding many subnets.
 */
static void test_pool(void **s)
{
	size_t n, n2, differ = 0, agree, total, top3, ases = 0;
	struct gen_subnet *a = pool_of(fx.w, 21, 20000, &n), *b = pool_of(fx.w, 21, 20000, &n2);
	struct gv *v = calloc(n, sizeof(*v));

	(void)s;
	assert_non_null(v);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(a[i].family, b[i].family);
		assert_memory_equal(a[i].addr, b[i].addr, sizeof(a[i].addr));
		assert_int_equal(a[i].plen, b[i].plen);
		assert_int_equal(a[i].asn, b[i].asn);
		assert_true(a[i].lat == b[i].lat && a[i].lon == b[i].lon);
		assert_int_equal(a[i].nearest, b[i].nearest);
	}
	free(b);
	b = pool_of(fx.w, 22, 20000, &n2);
	for (size_t i = 0; i < n; i++)
		differ += a[i].asn != b[i].asn || a[i].lat != b[i].lat;
	assert_true(differ > n * 9 / 10);
	free(b);

	for (size_t i = 0; i < n; i++) {
		const struct gen_subnet *g = &a[i];
		assert_true(g->family == AF_INET ? g->plen >= 24 && g->plen <= 32
						 : g->plen >= 56 && g->plen <= 128);
		assert_true(g->nearest < fx.pops.n);
		v[i] = (struct gv){.group = (uint64_t)country_of(g), .value = g->asn};
	}
	/* Countries with many subnets: the largest AS has about 60%, the
	 * top three over 80% (Zipf, exponent 2). */
	{
		struct gv *big = calloc(n, sizeof(*big));
		size_t nb = 0;
		assert_non_null(big);
		qsort(v, n, sizeof(*v), cmp_gv);
		for (size_t i = 0; i < n;) {
			size_t j = i;
			while (j < n && v[j].group == v[i].group)
				j++;
			if (j - i >= 500)
				for (size_t k = i; k < j; k++)
					big[nb++] = v[k];
			i = j;
		}
		modal(big, nb, 500, &agree, &total, &top3);
		free(big);
	}
	if (total < n / 2 || agree < total * 45 / 100 || agree > total * 75 / 100 ||
	    top3 < total * 75 / 100)
		fail_msg("largest ASes hold %zu, top three %zu of %zu subnets", agree, top3, total);
	/* Many fewer ASes than subnets. */
	for (size_t i = 0; i < n; i++)
		v[i] = (struct gv){.group = a[i].asn};
	qsort(v, n, sizeof(*v), cmp_gv);
	for (size_t i = 0; i < n; i++)
		ases += !i || v[i].group != v[i - 1].group;
	if (ases < 100 || ases > n / 5)
		fail_msg("%zu ASes among %zu subnets", ases, n);
	free(v);
	free(a);
}

/*
 * An AS is a network somewhere. A regional AS's subnets sit within 55 km
 * of its home (METRO_KM + SUBNET_KM), so they share their nearest PoP
 * but for the few homes near the line between two PoPs' areas; the
 * national ones span their country. Over all, an AS's subnets mostly
 * share their nearest PoP.
 */
static void test_as_locality(void **s)
{
	size_t n, agree, total, ragree, rtotal, nr = 0, spread = 0, nat = 0;
	struct gen_subnet *a = pool_of(fx.w, 23, 20000, &n);
	struct gv *v = calloc(n, sizeof(*v)), *r = calloc(n, sizeof(*r));

	(void)s;
	assert_non_null(v);
	assert_non_null(r);
	for (size_t i = 0; i < n; i++) {
		v[i] = (struct gv){.group = a[i].asn, .value = i};
		if (!a[i].national)
			r[nr++] = (struct gv){.group = a[i].asn, .value = a[i].nearest};
	}
	/* Distances inside each AS, from its first subnet in pool order. */
	qsort(v, n, sizeof(*v), cmp_gv);
	for (size_t i = 0; i < n;) {
		const struct gen_subnet *g = &a[v[i].value];
		double far = 0;
		size_t j = i;
		for (; j < n && v[j].group == v[i].group; j++) {
			const struct gen_subnet *h = &a[v[j].value];
			double km = geo_dist_km(g->lat, g->lon, h->lat, h->lon);
			assert_int_equal(h->national, g->national);
			if (!g->national && km > 110.5)
				fail_msg("AS %u: subnets %.0f km apart", g->asn, km);
			if (km > far)
				far = km;
		}
		if (g->national && !g->mobile && j - i >= 20) {
			nat++;
			spread += far > 200;
		}
		i = j;
	}
	for (size_t i = 0; i < n; i++)
		v[i] = (struct gv){.group = a[i].asn, .value = a[i].nearest};
	modal(v, n, 5, &agree, &total, NULL);
	modal(r, nr, 5, &ragree, &rtotal, NULL);
	if (nat < 20 || spread < nat * 3 / 4)
		fail_msg("%zu of %zu national ASes span over 200 km", spread, nat);
	if (total < n / 2 || agree < total * 8 / 10 || rtotal < 500 || ragree < rtotal * 9 / 10)
		fail_msg("%zu of %zu subnets share their AS's commonest nearest PoP, %zu of %zu "
			 "of the regional ASes'",
			 agree, total, ragree, rtotal);
	free(v);
	free(r);
	free(a);
}

struct meas_acc {
	struct meas {
		uint64_t key;
		size_t pop;
		double rtt;
	} * v;
	size_t n, cap;
};

static void add_meas(void *arg, const struct row *r)
{
	struct meas_acc *m = arg;

	if (m->n == m->cap) {
		m->cap = m->cap ? 2 * m->cap : 1 << 16;
		m->v = realloc(m->v, m->cap * sizeof(*m->v));
		assert_non_null(m->v);
	}
	m->v[m->n++] = (struct meas){.key = subnet_key(r->family, r->addr),
				     .pop = (size_t)(r->pop - fx.pops.v),
				     .rtt = r->rtt};
}

static int cmp_meas(const void *pa, const void *pb)
{
	const struct meas *a = pa, *b = pb;

	if (a->key != b->key)
		return a->key < b->key ? -1 : 1;
	if (a->pop != b->pop)
		return a->pop < b->pop ? -1 : 1;
	return (a->rtt > b->rtt) - (a->rtt < b->rtt);
}

/*
 * What a map builder relies on, from the samples: measure each subnet's
 * best PoP as gslb-map does (median RTT, at least 3 samples per PoP);
 * the measured subnets of an AS mostly agree on it, and it is not always
 * the nearest PoP (bad peering, gateways).
 */
static void test_as_best(void **s)
{
	struct gen_opts o = {.seed = 25, .samples = 60000, .v6_share = 0.3};
	struct meas_acc m = {0};
	struct gen_subnet *pool;
	size_t np, nv = 0, measured = 0, not_nearest = 0, agree, total;
	struct gv *byk, *v;
	struct tally t;
	char *buf, *err = NULL;

	(void)s;
	if (gen_pool(fx.w, &o, &pool, &np, &err))
		fail_msg("gen_pool: %s", err ? err : "?");
	byk = calloc(np, sizeof(*byk));
	v = calloc(np, sizeof(*v));
	assert_non_null(byk);
	assert_non_null(v);
	for (size_t i = 0; i < np; i++)
		byk[i] = (struct gv){.group = subnet_key(pool[i].family, pool[i].addr), .value = i};
	qsort(byk, np, sizeof(*byk), cmp_gv);
	buf = generate(&o, NULL);
	walk(buf, &t, add_meas, &m);
	free(buf);
	qsort(m.v, m.n, sizeof(*m.v), cmp_meas);
	for (size_t i = 0; i < m.n;) {
		size_t j = i, best = SIZE_MAX;
		double best_ms = INFINITY;
		while (j < m.n && m.v[j].key == m.v[i].key) {
			size_t k = j;
			while (k < m.n && m.v[k].key == m.v[j].key && m.v[k].pop == m.v[j].pop)
				k++;
			if (k - j >= 3) {
				size_t c = k - j;
				double med =
				    c % 2 ? m.v[j + c / 2].rtt
					  : (m.v[j + c / 2 - 1].rtt + m.v[j + c / 2].rtt) / 2;
				if (med < best_ms) {
					best_ms = med;
					best = m.v[j].pop;
				}
			}
			j = k;
		}
		if (best != SIZE_MAX) {
			size_t lo = 0, hi = np;
			while (lo < hi) { /* the first pool subnet with this key */
				size_t mid = lo + (hi - lo) / 2;
				if (byk[mid].group < m.v[i].key)
					lo = mid + 1;
				else
					hi = mid;
			}
			assert_true(lo < np && byk[lo].group == m.v[i].key);
			const struct gen_subnet *g = &pool[byk[lo].value];
			measured++;
			not_nearest += g->nearest != best;
			v[nv++] = (struct gv){.group = g->asn, .value = best};
		}
		i = j;
	}
	modal(v, nv, 3, &agree, &total, NULL);
	if (measured < np / 4 || total < measured / 2 || agree < total * 85 / 100)
		fail_msg("%zu of %zu measured subnets of ASes with 3 or more agree with their AS",
			 agree, total);
	if (not_nearest < measured / 50 || not_nearest > measured / 3)
		fail_msg("%zu of %zu measured subnets' best PoP is not their nearest", not_nearest,
			 measured);
	free(m.v);
	free(v);
	free(byk);
	free(pool);
}

static void test_bad_options_and_files(void **s)
{
	struct gen_opts o = {.seed = 1, .samples = 10, .bad_rate = 1.5};
	char path[] = "/tmp/test_gen_XXXXXX", *err = NULL, *buf = NULL;
	struct site_list l;
	size_t len;
	FILE *f;
	int fd;

	(void)s;
	f = open_memstream(&buf, &len);
	assert_int_equal(gen_write_samples(fx.w, &o, f, NULL, &err), -EINVAL);
	fclose(f);
	free(buf);
	assert_non_null(err);
	free(err);

	fd = mkstemp(path);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	fputs("cc,lat,lon,weight\nDE,50.8,9.8,78\nFR,147.0,2.5,60\n", f);
	fclose(f);
	assert_int_equal(sites_load(path, SITE_COUNTRY, &l, &err), -EINVAL);
	sites_free(&l);
	{
		char want[64];
		snprintf(want, sizeof(want), "%s:3: latitude", path);
		if (!strstr(err, want))
			fail_msg("got \"%s\", want \"%s...\"", err, want);
	}
	free(err);
	assert_int_equal(sites_load(path, SITE_CITY, &l, &err), -EINVAL);
	sites_free(&l);
	assert_non_null(strstr(err, ":1: expected the header \"name,lat,lon\""));
	free(err);
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_deterministic),
	    cmocka_unit_test(test_clean),
	    cmocka_unit_test(test_bad_rows),
	    cmocka_unit_test(test_latency_grows_with_distance),
	    cmocka_unit_test(test_asn_table),
	    cmocka_unit_test(test_as_quirks),
	    cmocka_unit_test(test_pool),
	    cmocka_unit_test(test_as_locality),
	    cmocka_unit_test(test_as_best),
	    cmocka_unit_test(test_bad_options_and_files),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
