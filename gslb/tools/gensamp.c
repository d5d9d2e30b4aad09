// SPDX-License-Identifier: GPL-2.0-only
/*
 * gensamp.c - see gensamp.h. What makes the samples look like real-user
 * measurements, and why each part is there:
 *
 * - Clients sit in real address space and in real networks. Every
 *   database prefix of a country belongs to one of its synthetic ASes
 *   (assign_ases); the ASes of a country are ranked by the IPv4 space
 *   they hold, and clients concentrate in the big ones: Zipf popularity
 *   (exponent ZIPF_AS) by that rank, so the largest holds about 60% of a
 *   country's subnets and the top three over 80%, as users concentrate in a
 *   few access networks. A pool subnet is drawn as a country by its
 *   weight, an AS of that country by popularity, one of the AS's prefixes
 *   of the family by size, then a /24 (IPv4) or /56 (IPv6) inside it. A
 *   map builder that aggregates by prefix or AS then meets the same
 *   fragmentation, and the same concentration, it meets in production.
 * - An AS is a network somewhere. A regional AS has a home, its country's
 *   point moved once per AS by up to COUNTRY_KM, and all its prefixes'
 *   clients live within METRO_KM of it. The NATIONAL_ASES largest of a
 *   country span it: 2 to METROS_MAX metros spread over the same disk,
 *   each of their prefixes homed to one metro (ISPs number by region).
 *   A subnet's clients are within SUBNET_KM of their prefix's site.
 * - An AS's subnets share its routing: every path to a PoP runs from the
 *   subnet to one of the AS's gateways (a regional AS's home; one or two
 *   of a national AS's metros, each metro using its nearest) and from
 *   there to the PoP, with one path inflation per AS (1.5-2, geomath.h)
 *   and the AS's penalty toward some PoPs (bad peering). So the nearest
 *   PoP is not always the best, consistently so inside an AS, which is
 *   what a latency map is for, and an AS's subnets mostly agree on their
 *   best PoP. The exceptions are the real ones: a national AS whose two
 *   gateways lie on either side of the line between two PoPs' areas (its
 *   prefixes still agree), a gateway near that line, where the noise
 *   decides subnet by subnet, and a penalty that makes two PoPs even.
 * - A share of the ASes (MOBILE_AS) are mobile networks: their clients
 *   break out at the AS's gateways (one or two), so the subnets sit there
 *   whatever the handset's place; the radio adds 15-40 ms to the access
 *   RTT and half as much again to the per-sample noise.
 * - Samples per subnet are skewed (Zipf over the pool, exponent ZIPF_S):
 *   a few subnets send many, most a handful, some none. The national
 *   access networks' subnets are dense (residential pools, carrier NAT);
 *   the other ASes' (businesses, hosting, small ISPs) send SPARSE_USE as
 *   much, so most of them stay below a map builder's sample threshold.
 * - A sample row is one PoP of a beacon: a page view measures the client's
 *   NEAR_POPS nearest PoPs and, P_EXPLORE of the time, one other at
 *   random, as RUM beacons that test a few candidates do. Its rows are
 *   consecutive and share the host address.
 * - RTT = access RTT of the subnet + (subnet-to-gateway + gateway-to-PoP
 *   great-circle distance) times the AS's path inflation + the AS's
 *   penalty toward the PoP + lognormal noise per sample (median 0.35 ms
 *   plus 1.4% of the RTT, long tail).
 * - Bad rows at the requested rate, of every kind a consumer must drop.
 *   They come on top of the beacons' good rows, never instead of one, so
 *   the good rows are the same for every bad rate.
 *
 * The world's ASes and their ranks do not depend on the seed; what each
 * AS's network is like (mobile, inflation, metros, gateways) and where
 * its metros and prefixes are is a function of (seed, AS) and (seed,
 * prefix), hashed, no table; so is the penalty of (seed, AS, PoP).
 * Every other random choice comes from one seeded splitmix64 stream (bad
 * rows from a second one), consumed in a fixed order: same seed, same
 * bytes.
 */
#include "gensamp.h"

#include "addrnum.h"
#include "geo.h"
#include "geomath.h"
#include "sites.h"

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define CC_SLOTS      (26 * 26)
#define NEAR_POPS     3	    /* a beacon measures its 3 nearest PoPs ... */
#define P_EXPLORE     0.4   /* ... and, this often, one other at random */
#define ZIPF_S	      0.8   /* popularity exponent of the subnet pool */
#define ZIPF_AS	      2.0   /* popularity exponent of a country's ASes, by size */
#define NATIONAL_ASES 3	    /* a country's largest ASes span it */
#define METROS_MAX    5	    /* a national AS serves from 2..5 metros */
#define COUNTRY_KM    400.0 /* AS homes and metros: a disk around the country's point */
#define METRO_KM      40.0  /* a prefix's site around its AS's home or metro */
#define SUBNET_KM     15.0  /* a subnet's clients around its prefix's site */
#define MOBILE_AS     0.15  /* share of ASes that are mobile networks */
#define SPARSE_USE    0.15  /* samples per subnet outside the national ASes, relative */
#define AS_QUIRKY     20    /* % of ASes with bad peering ... */
#define AS_QUIRK_POP  30    /* ... toward this % of the PoPs */
#define RUN_MEAN      6	    /* mean consecutive prefixes of one AS */
/* The AS table is a property of the world, not of --seed. */
#define WORLD_SEED 0x676c736277726c64ull
#define BAD_SEED   0x6261642d726f7773ull
/* Salts of the hashed per-AS, per-metro and per-prefix draws. */
#define AS_SALT	    0x61732d6e6574776bull
#define METRO_SALT  0x6d6574726f706f6cull
#define PREFIX_SALT 0x7072656669787369ull

struct unit {
	addrnum start;
	uint32_t as; /* ordinal: asn_of() */
	uint16_t cc; /* cc_key() */
	uint8_t plen;
};

struct as_info {
	uint32_t first[2], n[2]; /* its prefixes: au[f][first[f] .. + n[f]) */
	double size4;		 /* IPv4 addresses it holds */
	uint32_t rank;		 /* 0: its country's largest */
};

/* A country's ASes with prefixes of one family, cumulative popularity. */
struct cas {
	uint32_t *as;
	double *cum;
	size_t n;
};

struct gen_world {
	const struct site_list *countries, *pops;
	struct unit *u[2]; /* [0] IPv4, [1] IPv6; address order */
	size_t nu[2], cap[2];
	struct as_info *as; /* by ordinal */
	size_t nases;
	uint32_t cc_base[CC_SLOTS], cc_nas[CC_SLOTS]; /* a country's AS ordinals */
	uint32_t *au[2];     /* unit indices grouped by AS, address order inside */
	double *acum[2];     /* their cumulative sizes, restarting at each AS */
	struct cas (*ca)[2]; /* per listed country */
	size_t *elig;	     /* countries with weight and IPv4 prefixes */
	double *elig_cum;
	size_t nelig;
};

/* What an AS's network is like, for one seed. */
struct as_net {
	double inflation;
	unsigned metros;   /* 1: a regional AS, its home is metro 0 */
	unsigned gateways; /* metros 0 .. gateways - 1 are where it meets the world */
	bool mobile;
};

struct subnet {
	addrnum base;
	double lat, lon;   /* where its clients are */
	double glat, glon; /* its AS's gateway that it reaches the PoPs through */
	double backhaul_km, last_mile, inflation, noise_mul;
	uint32_t as;
	uint8_t v6, plen, nnear, sampled, mobile;
	uint16_t near[NEAR_POPS];
};

/* ---- randomness ---- */

struct rng {
	uint64_t s;
};

static uint64_t mix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* splitmix64: a Weyl sequence through a mixer; fast and plenty for this. */
static uint64_t rng_next(struct rng *r)
{
	r->s += 0x9e3779b97f4a7c15ull;
	return mix64(r->s);
}

/* Uniform in [0, 1). */
static double rng_unit(struct rng *r)
{
	return (double)(rng_next(r) >> 11) * 0x1.0p-53;
}

/* Uniform in [0, n), n > 0 (multiply-shift; its bias is below 2^-64 * n). */
static uint64_t rng_below(struct rng *r, uint64_t n)
{
	return (uint64_t)(((unsigned __int128)rng_next(r) * n) >> 64);
}

/* Standard normal (Box-Muller, one of the pair). */
static double rng_normal(struct rng *r)
{
	double u1 = 1.0 - rng_unit(r), u2 = rng_unit(r);

	return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

/* First i with cum[i] > x * cum[n - 1]: a draw weighted by the increments. */
static size_t pick_cum(const double *cum, size_t n, double x)
{
	double t = x * cum[n - 1];
	size_t lo = 0, hi = n - 1;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (cum[mid] > t)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

/* ---- the world ---- */

static int cc_key(const char *cc)
{
	if (cc[0] < 'A' || cc[0] > 'Z' || cc[1] < 'A' || cc[1] > 'Z' || cc[2])
		return -1;
	return (cc[0] - 'A') * 26 + (cc[1] - 'A');
}

static int fail(char **err, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char **err, int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (vasprintf(err, fmt, ap) < 0)
		*err = NULL;
	va_end(ap);
	return rc;
}

static int push_unit(struct gen_world *w, int f, addrnum start, unsigned plen, int cc)
{
	if (w->nu[f] == w->cap[f]) {
		size_t cap = w->cap[f] ? w->cap[f] * 2 : 65536;
		struct unit *u = realloc(w->u[f], cap * sizeof(*u));
		if (!u)
			return -ENOMEM;
		w->u[f] = u;
		w->cap[f] = cap;
	}
	w->u[f][w->nu[f]++] =
	    (struct unit){.start = start, .plen = (uint8_t)plen, .cc = (uint16_t)cc};
	return 0;
}

/* geo_each_range callback: cut [start, last] into the fewest CIDR prefixes. */
static int on_range(void *arg, int family, const uint8_t *start, const uint8_t *last,
		    const char *cc)
{
	struct gen_world *w = arg;
	int f = family == AF_INET6, key = cc_key(cc), rc;
	unsigned bits = f ? 128 : 32;
	addrnum s = addrnum_get(start, bits), l = addrnum_get(last, bits);

	if (key < 0)
		return 0;
	for (;;) {
		unsigned h = addrnum_ctz(s, bits);
		while (h > 0 && addrnum_low(h) > l - s)
			h--;
		if ((rc = push_unit(w, f, s, bits - h, key)))
			return rc;
		if (l - s <= addrnum_low(h))
			return 0;
		s += addrnum_low(h) + 1;
	}
}

static uint32_t asn_of(size_t ordinal)
{
	size_t n16 = GEN_ASN_LAST16 - GEN_ASN_FIRST + 1;

	return ordinal < n16 ? GEN_ASN_FIRST + (uint32_t)ordinal
			     : GEN_ASN_FIRST32 + (uint32_t)(ordinal - n16);
}

/*
 * Give every prefix an AS. A country with n prefixes has 1 + sqrt(n) / 2
 * ASes (a few hundred for the largest); its prefixes, in address order,
 * go in runs of about RUN_MEAN to one AS drawn with a skew toward the
 * first ones, so a few big ISPs hold most of a country, as they do.
 * IPv6 continues the same runs: the ISPs are dual-stack.
 */
static void assign_ases(struct gen_world *w)
{
	size_t count[CC_SLOTS] = {0}, ord = 0;
	uint32_t idx[CC_SLOTS] = {0}, left[CC_SLOTS] = {0};
	struct rng r = {WORLD_SEED};

	for (int f = 0; f < 2; f++)
		for (size_t i = 0; i < w->nu[f]; i++)
			count[w->u[f][i].cc]++;
	for (int k = 0; k < CC_SLOTS; k++) {
		w->cc_nas[k] = count[k] ? 1 + (uint32_t)sqrt((double)count[k]) / 2 : 0;
		w->cc_base[k] = (uint32_t)ord;
		ord += w->cc_nas[k];
	}
	w->nases = ord;
	for (int f = 0; f < 2; f++)
		for (size_t i = 0; i < w->nu[f]; i++) {
			struct unit *u = &w->u[f][i];
			if (!left[u->cc]) {
				double x = rng_unit(&r);
				idx[u->cc] = (uint32_t)(w->cc_nas[u->cc] * x * x);
				left[u->cc] = 1;
				while (rng_unit(&r) < 1.0 - 1.0 / RUN_MEAN)
					left[u->cc]++;
			}
			u->as = w->cc_base[u->cc] + idx[u->cc];
			left[u->cc]--;
		}
}

/* Largest first, then by ordinal. */
static int cmp_as_size(const void *pa, const void *pb, void *arg)
{
	const struct as_info *as = arg;
	uint32_t x = *(const uint32_t *)pa, y = *(const uint32_t *)pb;

	if (as[x].size4 != as[y].size4)
		return as[x].size4 > as[y].size4 ? -1 : 1;
	return (x > y) - (x < y);
}

/*
 * Each AS's prefixes per family (address order) with cumulative sizes
 * for drawing one, and each AS's size rank in its country.
 */
static int index_ases(struct gen_world *w)
{
	uint32_t *order;

	w->as = calloc(w->nases ? w->nases : 1, sizeof(*w->as));
	if (!w->as)
		return -ENOMEM;
	for (int f = 0; f < 2; f++) {
		uint32_t off = 0;
		for (size_t i = 0; i < w->nu[f]; i++) {
			const struct unit *u = &w->u[f][i];
			w->as[u->as].n[f]++;
			if (!f)
				w->as[u->as].size4 += ldexp(1.0, 32 - u->plen);
		}
		for (size_t a = 0; a < w->nases; a++) {
			w->as[a].first[f] = off;
			off += w->as[a].n[f];
			w->as[a].n[f] = 0; /* counted again while filling */
		}
		w->au[f] = malloc((w->nu[f] ? w->nu[f] : 1) * sizeof(*w->au[f]));
		w->acum[f] = malloc((w->nu[f] ? w->nu[f] : 1) * sizeof(*w->acum[f]));
		if (!w->au[f] || !w->acum[f])
			return -ENOMEM;
		for (size_t i = 0; i < w->nu[f]; i++) {
			const struct unit *u = &w->u[f][i];
			struct as_info *ai = &w->as[u->as];
			uint32_t k = ai->first[f] + ai->n[f]++;
			w->au[f][k] = (uint32_t)i;
			w->acum[f][k] = (k > ai->first[f] ? w->acum[f][k - 1] : 0.0) +
					ldexp(1.0, (f ? 128 : 32) - u->plen);
		}
	}
	order = malloc((w->nases ? w->nases : 1) * sizeof(*order));
	if (!order)
		return -ENOMEM;
	for (int k = 0; k < CC_SLOTS; k++) {
		uint32_t *o = order + w->cc_base[k];
		for (uint32_t i = 0; i < w->cc_nas[k]; i++)
			o[i] = w->cc_base[k] + i;
		qsort_r(o, w->cc_nas[k], sizeof(*o), cmp_as_size, w->as);
		for (uint32_t i = 0; i < w->cc_nas[k]; i++)
			w->as[o[i]].rank = i;
	}
	free(order);
	return 0;
}

static int cas_push(struct cas *c, uint32_t as, double weight)
{
	if ((c->n & (c->n - 1)) == 0) { /* grow at powers of two */
		size_t cap = c->n ? c->n * 2 : 16;
		uint32_t *v = realloc(c->as, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		c->as = v;
		double *cum = realloc(c->cum, cap * sizeof(*cum));
		if (!cum)
			return -ENOMEM;
		c->cum = cum;
	}
	c->as[c->n] = as;
	c->cum[c->n] = (c->n ? c->cum[c->n - 1] : 0.0) + weight;
	c->n++;
	return 0;
}

/* Each listed country's ASes by popularity, and the countries clients come from. */
static int index_countries(struct gen_world *w)
{
	const struct site_list *cl = w->countries;
	double sum = 0;

	w->ca = calloc(cl->n, sizeof(*w->ca));
	w->elig = calloc(cl->n, sizeof(*w->elig));
	w->elig_cum = calloc(cl->n, sizeof(*w->elig_cum));
	if (!w->ca || !w->elig || !w->elig_cum)
		return -ENOMEM;
	for (size_t c = 0; c < cl->n; c++) {
		int k = cc_key(cl->v[c].name);
		if (k < 0)
			continue;
		for (uint32_t a = w->cc_base[k]; a < w->cc_base[k] + w->cc_nas[k]; a++) {
			double pop = pow(w->as[a].rank + 1.0, -ZIPF_AS);
			for (int f = 0; f < 2; f++)
				if (w->as[a].n[f] && cas_push(&w->ca[c][f], a, pop))
					return -ENOMEM;
		}
		if (cl->v[c].weight > 0 && w->ca[c][0].n) {
			sum += cl->v[c].weight;
			w->elig[w->nelig] = c;
			w->elig_cum[w->nelig++] = sum;
		}
	}
	return 0;
}

int gen_world_new(struct gen_world **out, const struct geo *geo, const struct site_list *countries,
		  const struct site_list *pops, char **err)
{
	struct gen_world *w;
	int rc;

	*out = NULL;
	if (!pops->n || !countries->n)
		return fail(err, -EINVAL, "no PoPs or no countries");
	if (pops->n > UINT16_MAX)
		return fail(err, -EINVAL, "%zu PoPs: at most %u", pops->n, UINT16_MAX);
	w = calloc(1, sizeof(*w));
	if (!w)
		return fail(err, -ENOMEM, "out of memory");
	w->countries = countries;
	w->pops = pops;
	if ((rc = geo_each_range(geo, AF_INET, on_range, w)) ||
	    (rc = geo_each_range(geo, AF_INET6, on_range, w))) {
		fail(err, rc, "walking the GeoIP ranges: %s", strerror(-rc));
		goto out_free;
	}
	assign_ases(w);
	if ((rc = index_ases(w)) || (rc = index_countries(w))) {
		fail(err, rc, "out of memory");
		goto out_free;
	}
	if (!w->nelig) {
		rc = fail(err, -EINVAL,
			  "none of the %zu countries has a weight and IPv4 ranges in the GeoIP "
			  "database",
			  countries->n);
		goto out_free;
	}
	*out = w;
	return 0;

out_free:
	gen_world_free(w);
	return rc;
}

void gen_world_free(struct gen_world *w)
{
	if (!w)
		return;
	for (size_t c = 0; w->ca && c < w->countries->n; c++)
		for (int f = 0; f < 2; f++) {
			free(w->ca[c][f].as);
			free(w->ca[c][f].cum);
		}
	free(w->ca);
	free(w->elig);
	free(w->elig_cum);
	for (int f = 0; f < 2; f++) {
		free(w->au[f]);
		free(w->acum[f]);
		free(w->u[f]);
	}
	free(w->as);
	free(w);
}

size_t gen_world_prefixes(const struct gen_world *w)
{
	return w->nu[0] + w->nu[1];
}

size_t gen_world_ases(const struct gen_world *w)
{
	return w->nases;
}

int gen_write_asn(const struct gen_world *w, FILE *f)
{
	fprintf(f,
		"# Prefix-to-AS table written by gslb-gen (synthetic ASes over the GeoIP\n"
		"# country ranges). One announced prefix per line: PREFIX/LEN ASN.\n"
		"# %zu prefixes, %zu ASes, all private ASNs (RFC 6996).\n",
		gen_world_prefixes(w), w->nases);
	for (int fam = 0; fam < 2; fam++) {
		unsigned bits = fam ? 128 : 32;
		for (size_t i = 0; i < w->nu[fam]; i++) {
			const struct unit *u = &w->u[fam][i];
			char s[INET6_ADDRSTRLEN];
			uint8_t a[16];
			addrnum_put(u->start, a, bits);
			inet_ntop(fam ? AF_INET6 : AF_INET, a, s, sizeof(s));
			fprintf(f, "%s/%u %u\n", s, u->plen, asn_of(u->as));
		}
	}
	return ferror(f) ? -EIO : 0;
}

/* ---- the samples ---- */

/* A point uniformly in the disk of radius km around (lat, lon). */
static void in_disk(struct rng *r, double lat, double lon, double km, double *olat, double *olon)
{
	double bearing = 2.0 * M_PI * rng_unit(r);

	geo_offset(lat, lon, bearing, km * sqrt(rng_unit(r)), olat, olon);
}

/* A generator of its own for one hashed draw: (seed, salt, x). */
static struct rng hashed(uint64_t seed, uint64_t salt, uint64_t x)
{
	return (struct rng){mix64(seed ^ mix64(salt ^ mix64(x)))};
}

static void as_net(const struct gen_world *w, uint64_t seed, uint32_t as, struct as_net *n)
{
	struct rng r = hashed(seed, AS_SALT, as);
	bool national = w->as[as].rank < NATIONAL_ASES;

	n->mobile = rng_unit(&r) < MOBILE_AS;
	n->inflation = 1.5 + 0.5 * rng_unit(&r);
	/* A national mobile network has one or two gateways, and no more metros. */
	if (!national)
		n->metros = 1;
	else if (n->mobile)
		n->metros = 1 + (unsigned)rng_below(&r, 2);
	else
		n->metros = 2 + (unsigned)rng_below(&r, METROS_MAX - 1);
	/* Where it meets the world: one or two of its metros; each metro's
	 * traffic leaves through the nearest of them. */
	n->gateways = n->mobile ? n->metros : 1 + (unsigned)rng_below(&r, n->metros < 2 ? 1 : 2);
}

static void metro_point(uint64_t seed, const struct site *country, uint32_t as, uint64_t m,
			double *lat, double *lon)
{
	struct rng mr = hashed(seed, METRO_SALT, (uint64_t)as << 8 | m);

	in_disk(&mr, country->lat, country->lon, COUNTRY_KM, lat, lon);
}

/*
 * Where the clients of prefix u[f][ui] of AS as are, (*lat, *lon): near
 * its metro (a regional AS's home is its only one), which is somewhere
 * in COUNTRY_KM of the country's point; within METRO_KM of it, or right
 * there for a mobile network. (*glat, *glon): the AS's gateway nearest
 * the metro, which the prefix's traffic leaves through.
 */
static void prefix_site(uint64_t seed, const struct site *country, uint32_t as,
			const struct as_net *n, int f, uint32_t ui, double *lat, double *lon,
			double *glat, double *glon)
{
	struct rng pr = hashed(seed, PREFIX_SALT, (uint64_t)f << 32 | ui);
	uint64_t m = rng_below(&pr, n->metros);
	double best = INFINITY;

	metro_point(seed, country, as, m, lat, lon);
	for (unsigned g = 0; g < n->gateways; g++) {
		double a, b, km;
		metro_point(seed, country, as, g, &a, &b);
		km = geo_dist_km(*lat, *lon, a, b);
		if (km < best) {
			best = km;
			*glat = a;
			*glon = b;
		}
	}
	if (!n->mobile)
		in_disk(&pr, *lat, *lon, METRO_KM, lat, lon);
}

static void make_subnet(const struct gen_world *w, const struct gen_opts *o, struct rng *r,
			struct subnet *s)
{
	size_t c = w->elig[pick_cum(w->elig_cum, w->nelig, rng_unit(r))];
	const struct site *cs = &w->countries->v[c];
	int f = w->ca[c][1].n && rng_unit(r) < o->v6_share;
	const struct cas *ca = &w->ca[c][f];
	uint32_t as = ca->as[pick_cum(ca->cum, ca->n, rng_unit(r))];
	const struct as_info *ai = &w->as[as];
	uint32_t k =
	    ai->first[f] + (uint32_t)pick_cum(&w->acum[f][ai->first[f]], ai->n[f], rng_unit(r));
	uint32_t ui = w->au[f][k];
	const struct unit *u = &w->u[f][ui];
	unsigned bits = f ? 128 : 32, sub = f ? 56 : 24;
	const struct site_list *pl = w->pops;
	double d[NEAR_POPS] = {0}, lat, lon, jitter;
	struct as_net net;

	memset(s, 0, sizeof(*s));
	s->v6 = (uint8_t)f;
	s->as = as;
	if (u->plen >= sub) {
		s->base = u->start;
		s->plen = u->plen;
	} else {
		unsigned kb = sub - u->plen; /* below 64: no database prefix is that short */
		uint64_t x = kb < 64 ? rng_below(r, (uint64_t)1 << kb) : rng_next(r);
		s->base = u->start + ((addrnum)x << (bits - sub));
		s->plen = (uint8_t)sub;
	}
	as_net(w, o->seed, as, &net);
	prefix_site(o->seed, cs, as, &net, f, ui, &lat, &lon, &s->glat, &s->glon);
	jitter = net.mobile ? 0.0 : SUBNET_KM;
	in_disk(r, lat, lon, jitter, &s->lat, &s->lon);
	s->backhaul_km = geo_dist_km(s->lat, s->lon, s->glat, s->glon);
	s->last_mile = 2.0 + exp(log(3.0) + 0.5 * rng_normal(r));
	s->inflation = net.inflation;
	s->noise_mul = 1.0;
	if (net.mobile) {
		s->mobile = 1;
		s->last_mile += 15.0 + 25.0 * rng_unit(r);
		s->noise_mul = 1.5; /* radio: queueing and retransmission */
	}
	/* The nearest PoPs, by insertion into a short sorted list. */
	for (size_t p = 0; p < pl->n; p++) {
		double km = geo_dist_km(s->lat, s->lon, pl->v[p].lat, pl->v[p].lon);
		unsigned j = s->nnear < NEAR_POPS ? s->nnear++ : NEAR_POPS;
		if (j == NEAR_POPS && km >= d[NEAR_POPS - 1])
			continue;
		if (j == NEAR_POPS)
			j--;
		for (; j > 0 && d[j - 1] > km; j--) {
			d[j] = d[j - 1];
			s->near[j] = s->near[j - 1];
		}
		d[j] = km;
		s->near[j] = (uint16_t)p;
	}
}

/* Bad peering: a deterministic function of (seed, AS, PoP), no table. */
static double as_penalty(uint64_t seed, uint32_t asn, size_t pop)
{
	uint64_t h = mix64(seed ^ mix64(asn));

	if (h % 100 >= AS_QUIRKY)
		return 0;
	h = mix64(h ^ ((pop + 1) * 0x9e3779b97f4a7c15ull));
	if (h % 100 >= AS_QUIRK_POP)
		return 0;
	return 20.0 + 100.0 * (double)(h >> 11) * 0x1.0p-53;
}

static double sample_rtt(const struct gen_world *w, uint64_t seed, const struct subnet *s, size_t p,
			 struct rng *r)
{
	const struct site *pop = &w->pops->v[p];
	double km = s->backhaul_km + geo_dist_km(s->glat, s->glon, pop->lat, pop->lon);
	double det =
	    geo_rtt_ms(km, s->inflation, s->last_mile) + as_penalty(seed, asn_of(s->as), p);

	/* Queueing and radio noise: median grows with the path, long tail. */
	return det + exp(log(s->noise_mul * (0.35 + 0.014 * det)) + 0.8 * rng_normal(r));
}

static void host_addr(const struct subnet *s, struct rng *r, char *out, size_t cap)
{
	unsigned bits = s->v6 ? 128 : 32, hb = bits - s->plen;
	addrnum off = 0;
	uint8_t a[16];

	if (!s->v6 && hb == 8)
		off = 1 + rng_below(r, 254); /* no .0 or .255 in a whole /24 */
	else if (hb) {
		off = (addrnum)rng_next(r) << 64;
		off = (off | rng_next(r)) & addrnum_low(hb);
	}
	addrnum_put(s->base + off, a, bits);
	inet_ntop(s->v6 ? AF_INET6 : AF_INET, a, out, (socklen_t)cap);
}

enum bad_kind {
	BAD_NEGATIVE,
	BAD_TINY,
	BAD_ABSURD,
	BAD_FAILED,
	BAD_DUPLICATE,
	BAD_FIELDS,
	BAD_ADDRESS,
	BAD_NUMBER,
	BAD_GARBAGE,
	BAD__N
};

/* Relative frequencies: mostly plausible-looking values, a few broken lines. */
static const unsigned bad_weight[BAD__N] = {
    [BAD_NEGATIVE] = 2, [BAD_TINY] = 2,	   [BAD_ABSURD] = 2, [BAD_FAILED] = 4,	[BAD_DUPLICATE] = 3,
    [BAD_FIELDS] = 1,	[BAD_ADDRESS] = 1, [BAD_NUMBER] = 1, [BAD_GARBAGE] = 1,
};

/* A bad row in line (cap bytes) built from a good one's parts; its length. */
static int bad_row(struct rng *r, char *line, size_t cap, const char *addr, const char *pop,
		   double rtt, const char *prev)
{
	unsigned total = 0, x;
	int k;

	for (k = 0; k < BAD__N; k++)
		total += bad_weight[k];
	x = (unsigned)rng_below(r, total);
	for (k = 0; x >= bad_weight[k]; k++)
		x -= bad_weight[k];
	if (k == BAD_DUPLICATE && !*prev)
		k = BAD_FAILED;
	switch ((enum bad_kind)k) {
	case BAD_NEGATIVE:
		return snprintf(line, cap, "%s,%s,%.3f,1\n", addr, pop, -0.001 - 50 * rng_unit(r));
	case BAD_TINY:
		return snprintf(line, cap, "%s,%s,%.3f,1\n", addr, pop, 0.0004 * rng_unit(r));
	case BAD_ABSURD:
		return snprintf(line, cap, "%s,%s,%.3f,1\n", addr, pop,
				60001.0 + 1e6 * rng_unit(r));
	case BAD_FAILED:
		/* Beacons report a timeout as 0 or as the time they waited. */
		return snprintf(line, cap, "%s,%s,%.3f,0\n", addr, pop,
				rng_unit(r) < 0.5 ? 0.0 : rtt);
	case BAD_DUPLICATE:
		return snprintf(line, cap, "%s", prev);
	case BAD_FIELDS:
		if (rng_unit(r) < 0.5)
			return snprintf(line, cap, "%s,%s,%.3f\n", addr, pop, rtt);
		return snprintf(line, cap, "%s,%s\n", addr, pop);
	case BAD_ADDRESS: {
		/* Each has a character no address has, so that even a consumer
		 * that pre-filters lines by character class sees them as bad. */
		static const char *const bad[] = {"198.51.%u.x", "1.2.%u.4/33", "2001:db8::%uzz",
						  "client-%u", "[2001:db8::%u]"};
		char a[48];
		snprintf(a, sizeof(a), bad[rng_below(r, 5)], (unsigned)rng_below(r, 256));
		return snprintf(line, cap, "%s,%s,%.3f,1\n", a, pop, rtt);
	}
	case BAD_NUMBER: {
		static const char *const fmt[] = {"%s,%s,fast,1\n", "%s,%s,12.3.4,1\n",
						  "%s,%s,,1\n", "%s,%s,nan,1\n"};
		const char *f = fmt[rng_below(r, 4)];
		if (rng_unit(r) < 0.25)
			return snprintf(line, cap, "%s,%s,%.3f,yes\n", addr, pop, rtt);
		return snprintf(line, cap, f, addr, pop);
	}
	case BAD_GARBAGE:
	default:
		switch (rng_below(r, 4)) {
		case 0:
			return snprintf(line, cap, "%s;%s;%.3f;1\n", addr, pop, rtt);
		case 1:
			return snprintf(line, cap, "%s,%s,%.3f,1,extra\n", addr, pop, rtt);
		case 2:
			return snprintf(line, cap, ",,,\n");
		default:
			return snprintf(line, cap, "GET /beacon?pop=%s HTTP/1.1\n", pop);
		}
	}
}

static int check_opts(const struct gen_opts *o, uint64_t *n, char **err)
{
	if (!(o->bad_rate >= 0 && o->bad_rate <= 1) || !(o->v6_share >= 0 && o->v6_share <= 1))
		return fail(err, -EINVAL, "bad-rate and v6-share must be within 0..1");
	*n = o->subnets ? o->subnets : o->samples / 20;
	if (*n == 0)
		*n = 1;
	if (*n > 100000000)
		return fail(err, -EINVAL, "%llu subnets: at most 100000000",
			    (unsigned long long)*n);
	return 0;
}

/* The pool of n subnets, the first draws of r. NULL if out of memory. */
static struct subnet *make_pool(const struct gen_world *w, const struct gen_opts *o, uint64_t n,
				struct rng *r)
{
	struct subnet *pool = calloc(n, sizeof(*pool));

	for (uint64_t i = 0; pool && i < n; i++)
		make_subnet(w, o, r, &pool[i]);
	return pool;
}

int gen_pool(const struct gen_world *w, const struct gen_opts *o, struct gen_subnet **out,
	     size_t *n_out, char **err)
{
	struct rng r = {mix64(o->seed)};
	struct subnet *pool;
	struct gen_subnet *v;
	uint64_t n;
	int rc;

	*out = NULL;
	*n_out = 0;
	if ((rc = check_opts(o, &n, err)))
		return rc;
	pool = make_pool(w, o, n, &r);
	v = calloc(n, sizeof(*v));
	if (!pool || !v) {
		free(pool);
		free(v);
		return fail(err, -ENOMEM, "out of memory for %llu subnets", (unsigned long long)n);
	}
	for (uint64_t i = 0; i < n; i++) {
		const struct subnet *s = &pool[i];
		v[i] = (struct gen_subnet){
		    .family = s->v6 ? AF_INET6 : AF_INET,
		    .plen = s->plen,
		    .asn = asn_of(s->as),
		    .lat = s->lat,
		    .lon = s->lon,
		    .nearest = s->near[0],
		    .mobile = s->mobile,
		    .national = w->as[s->as].rank < NATIONAL_ASES,
		};
		addrnum_put(s->base, v[i].addr, s->v6 ? 128 : 32);
	}
	free(pool);
	*out = v;
	*n_out = n;
	return 0;
}

int gen_write_samples(const struct gen_world *w, const struct gen_opts *o, FILE *f,
		      struct gen_stats *st, char **err)
{
	struct rng r = {mix64(o->seed)}, rb = {mix64(o->seed ^ BAD_SEED)};
	struct gen_stats stats = {0};
	size_t npops = w->pops->n;
	struct subnet *pool;
	double *zcum;
	char prev[256] = "";
	uint64_t n;
	int rc;

	if ((rc = check_opts(o, &n, err)))
		return rc;
	pool = make_pool(w, o, n, &r);
	zcum = malloc(n * sizeof(*zcum));
	if (!pool || !zcum) {
		free(pool);
		free(zcum);
		return fail(err, -ENOMEM, "out of memory for %llu subnets", (unsigned long long)n);
	}
	for (uint64_t i = 0; i < n; i++)
		zcum[i] = (i ? zcum[i - 1] : 0.0) +
			  pow((double)(i + 1), -ZIPF_S) *
			      (w->as[pool[i].as].rank < NATIONAL_ASES ? 1.0 : SPARSE_USE);
	stats.subnets = n;

	fputs("client,pop,rtt_ms,ok\n", f);
	while (stats.rows < o->samples) {
		struct subnet *s = &pool[pick_cum(zcum, n, rng_unit(&r))];
		size_t beacon[NEAR_POPS + 1], nb = 0;
		char addr[INET6_ADDRSTRLEN];

		/* One beacon: the nearest PoPs, sometimes one more of the others. */
		host_addr(s, &r, addr, sizeof(addr));
		for (unsigned j = 0; j < s->nnear; j++)
			beacon[nb++] = s->near[j];
		if (npops > s->nnear && rng_unit(&r) < P_EXPLORE) {
			uint64_t x = rng_below(&r, npops - s->nnear);
			for (size_t p = 0; p < npops; p++) {
				bool near = false;
				for (unsigned j = 0; j < s->nnear; j++)
					near |= s->near[j] == p;
				if (!near && x-- == 0) {
					beacon[nb++] = p;
					break;
				}
			}
		}
		for (size_t j = 0; j < nb && stats.rows < o->samples; j++) {
			const char *pop = w->pops->v[beacon[j]].name;
			double rtt = sample_rtt(w, o->seed, s, beacon[j], &r);
			char line[256];
			int len;

			/* Bad rows come on top of the beacon's good ones (junk, retried
			 * probes), so that no PoP of a beacon goes missing. */
			while (stats.rows < o->samples && o->bad_rate > 0 &&
			       rng_unit(&rb) < o->bad_rate) {
				len = bad_row(&rb, line, sizeof(line), addr, pop, rtt, prev);
				fwrite(line, 1, (size_t)len, f);
				stats.bad++;
				stats.v6_rows += s->v6;
				stats.rows++;
			}
			if (stats.rows == o->samples)
				break;
			len = snprintf(line, sizeof(line), "%s,%s,%.3f,1\n", addr, pop, rtt);
			memcpy(prev, line, (size_t)len + 1);
			fwrite(line, 1, (size_t)len, f);
			stats.v6_rows += s->v6;
			stats.rows++;
		}
		stats.sampled += !s->sampled;
		s->sampled = 1;
	}
	free(pool);
	free(zcum);
	if (st)
		*st = stats;
	return ferror(f) ? -EIO : 0;
}
