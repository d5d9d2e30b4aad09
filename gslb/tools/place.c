// SPDX-License-Identifier: GPL-2.0-only
/*
 * place.c - gslb-place: where should the next PoPs go? Builds demand on
 * an equal-area grid from one of three sources, then asks placement.c
 * for the best sites greedily and prints them with the loss after each.
 *
 *   --weights FILE  lat,lon,weight points, each weight into its own cell
 *   --samples FILE  a gslb-gen CSV: its valid rows' distinct client
 *                   subnets (/24, /56), counted per country (GeoIP) and
 *                   spread around the country's point like its weight
 *   (default)       the --countries weights, spread around each point
 *
 * Output: a "#" line describing the problem, the current loss, then one
 * line per chosen site: rank, lat, lon, the candidate's name ("-" for a
 * grid cell), the nearest city within NEAR_CITY_KM ("-" if none), the
 * loss with it, the typical latency (mean for L1, RMS for L2) and the
 * improvement over the previous line, absolute and in percent.
 *
 * Exit status: 0; 2 for a bad option or input file; 1 out of memory.
 */
#include "csv.h"
#include "geo.h"
#include "geomath.h"
#include "placement.h"
#include "sites.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define EXIT_INPUT   2
#define NEAR_CITY_KM 300.0
#define SPREAD_KM    400.0 /* gslb-gen's jitter around a country's point */
#define RTT_MIN_MS   0.001 /* the sample validity bounds gslb-map applies */
#define RTT_MAX_MS   60000.0

struct args {
	const char *weights, *samples, *countries, *pops, *cands, *cities, *geoip, *geoip6;
	bool all_cells;
	enum place_loss loss;
	unsigned count;
	double cell_deg, spread_km;
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: gslb-place [options]\n"
		"  --weights FILE     demand from lat,lon,weight points\n"
		"  --samples FILE     demand from a gslb-gen samples CSV (distinct subnets)\n"
		"  --countries FILE   cc,lat,lon,weight (default countries.csv); the demand\n"
		"                     without --weights/--samples, the points for --samples\n"
		"  --pops FILE        existing PoPs, name,lat,lon (default none)\n"
		"  --candidates FILE  candidate sites, name,lat,lon (default: cells with demand)\n"
		"  --all-cells        every grid cell is a candidate\n"
		"  --cities FILE      names for the sites chosen (default cities.csv)\n"
		"  --loss l1|l2       sum of weight x latency, or x latency^2 (default l1)\n"
		"  --count K          sites to add (default 5)\n"
		"  --cell DEG         grid cell size, 0.25..30 (default 2)\n"
		"  --spread KM        radius a country's weight is spread over (default %g)\n"
		"  --geoip FILE, --geoip6 FILE  country databases for --samples\n",
		SPREAD_KM);
}

static int bad_opt(const char *opt, const char *val, const char *why)
{
	fprintf(stderr, "gslb-place: --%s \"%s\": %s\n", opt, val, why);
	return -EINVAL;
}

static int parse_args(int argc, char **argv, struct args *a)
{
	enum {
		O_WEIGHTS = 256,
		O_SAMPLES,
		O_COUNTRIES,
		O_POPS,
		O_CANDS,
		O_ALL,
		O_CITIES,
		O_LOSS,
		O_COUNT,
		O_CELL,
		O_SPREAD,
		O_GEOIP,
		O_GEOIP6
	};
	static const struct option opts[] = {
	    {"weights", required_argument, NULL, O_WEIGHTS},
	    {"samples", required_argument, NULL, O_SAMPLES},
	    {"countries", required_argument, NULL, O_COUNTRIES},
	    {"pops", required_argument, NULL, O_POPS},
	    {"candidates", required_argument, NULL, O_CANDS},
	    {"all-cells", no_argument, NULL, O_ALL},
	    {"cities", required_argument, NULL, O_CITIES},
	    {"loss", required_argument, NULL, O_LOSS},
	    {"count", required_argument, NULL, O_COUNT},
	    {"cell", required_argument, NULL, O_CELL},
	    {"spread", required_argument, NULL, O_SPREAD},
	    {"geoip", required_argument, NULL, O_GEOIP},
	    {"geoip6", required_argument, NULL, O_GEOIP6},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int c, rc = 0;
	double v;

	while (!rc && (c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		const char *name = c >= O_WEIGHTS ? opts[c - O_WEIGHTS].name : "";
		switch (c) {
		case O_WEIGHTS:
			a->weights = optarg;
			break;
		case O_SAMPLES:
			a->samples = optarg;
			break;
		case O_COUNTRIES:
			a->countries = optarg;
			break;
		case O_POPS:
			a->pops = optarg;
			break;
		case O_CANDS:
			a->cands = optarg;
			break;
		case O_ALL:
			a->all_cells = true;
			break;
		case O_CITIES:
			a->cities = optarg;
			break;
		case O_LOSS:
			if (strcmp(optarg, "l1") == 0)
				a->loss = PLACE_L1;
			else if (strcmp(optarg, "l2") == 0)
				a->loss = PLACE_L2;
			else
				rc = bad_opt(name, optarg, "expected l1 or l2");
			break;
		case O_COUNT:
			if (csv_double(optarg, &v) || v < 1 || v > 1000 || v != floor(v))
				rc = bad_opt(name, optarg, "expected a whole number 1..1000");
			else
				a->count = (unsigned)v;
			break;
		case O_CELL:
			if (csv_double(optarg, &a->cell_deg) || a->cell_deg < 0.25 ||
			    a->cell_deg > 30)
				rc = bad_opt(name, optarg, "expected degrees, 0.25..30");
			break;
		case O_SPREAD:
			if (csv_double(optarg, &a->spread_km) || a->spread_km < 0 ||
			    a->spread_km > 5000)
				rc = bad_opt(name, optarg, "expected km, 0..5000");
			break;
		case O_GEOIP:
			a->geoip = optarg;
			break;
		case O_GEOIP6:
			a->geoip6 = optarg;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return -EINVAL;
		}
	}
	if (!rc && optind < argc) {
		fprintf(stderr, "gslb-place: unexpected argument \"%s\"\n", argv[optind]);
		rc = -EINVAL;
	}
	if (!rc && a->weights && a->samples) {
		fprintf(stderr, "gslb-place: --weights and --samples exclude each other\n");
		rc = -EINVAL;
	}
	if (!rc && a->cands && a->all_cells) {
		fprintf(stderr, "gslb-place: --candidates and --all-cells exclude each other\n");
		rc = -EINVAL;
	}
	return rc;
}

/* ---- demand from a samples file ---- */

/* Distinct subnets: /24 keys are < 2^24, /56 keys have bit 62 set; 0 is empty. */
struct keyset {
	uint64_t *v;
	size_t n, cap;
};

static int keyset_add(struct keyset *s, uint64_t key)
{
	uint64_t k = key + 1;
	size_t i;

	if (2 * (s->n + 1) > s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 4096;
		uint64_t *v = calloc(cap, sizeof(*v));
		if (!v)
			return -ENOMEM;
		for (size_t j = 0; j < s->cap; j++) {
			if (!s->v[j])
				continue;
			for (i = (s->v[j] * 0x9e3779b97f4a7c15ull) >> 20 & (cap - 1); v[i];
			     i = (i + 1) & (cap - 1))
				;
			v[i] = s->v[j];
		}
		free(s->v);
		s->v = v;
		s->cap = cap;
	}
	for (i = (k * 0x9e3779b97f4a7c15ull) >> 20 & (s->cap - 1); s->v[i];
	     i = (i + 1) & (s->cap - 1))
		if (s->v[i] == k)
			return 0;
	s->v[i] = k;
	s->n++;
	return 1;
}

struct sample_counts {
	unsigned long rows, malformed, failed, range, unlocated, subnets;
};

/* A row as gslb-map would keep it: its client's subnet key and family. */
static bool valid_row(char **f, int nf, uint64_t *key, int *family, uint8_t *a,
		      struct sample_counts *n)
{
	double rtt;

	if (nf != 4 || !*f[1] || csv_double(f[2], &rtt) ||
	    (strcmp(f[3], "0") != 0 && strcmp(f[3], "1") != 0)) {
		n->malformed++;
		return false;
	}
	if (inet_pton(AF_INET, f[0], a) == 1) {
		*family = AF_INET;
		*key = (uint64_t)a[0] << 16 | (uint64_t)a[1] << 8 | a[2];
	} else if (inet_pton(AF_INET6, f[0], a) == 1) {
		*family = AF_INET6;
		*key = 1ull << 62;
		for (int i = 0; i < 7; i++)
			*key |= (uint64_t)a[i] << (8 * (6 - i));
	} else {
		n->malformed++;
		return false;
	}
	if (strcmp(f[3], "1") != 0) {
		n->failed++;
		return false;
	}
	if (rtt < RTT_MIN_MS || rtt > RTT_MAX_MS) {
		n->range++;
		return false;
	}
	return true;
}

/*
 * Count each valid row's subnet once, for the country its client is in.
 * Bad rows are expected and only counted (the summary goes to stderr);
 * an unreadable file or a wrong header is an error.
 */
static int samples_demand(const struct args *a, const struct site_list *countries,
			  double *per_country, char **err)
{
	struct sample_counts n = {0};
	struct keyset seen = {0};
	struct csv_reader r;
	struct geo *geo;
	char *f[5];
	int rc, nf;

	geo = geo_open(a->geoip, a->geoip6, err);
	if (!geo)
		return -EINVAL;
	if ((rc = csv_open(&r, a->samples, err)))
		goto out_geo;
	if ((rc = csv_header(&r, "client,pop,rtt_ms,ok", err)))
		goto out_csv;
	while ((nf = csv_next(&r, f, 5, err)) > 0) {
		uint8_t addr[16];
		uint64_t key;
		int family;
		const char *cc;
		const struct site *s;

		n.rows++;
		if (!valid_row(f, nf, &key, &family, addr, &n))
			continue;
		cc = geo_country(geo, family, addr, NULL);
		s = cc ? sites_find(countries, cc) : NULL;
		if (!s) {
			n.unlocated++;
			continue;
		}
		if ((rc = keyset_add(&seen, key)) < 0) {
			csv_fail(&r, err, "out of memory");
			goto out_csv;
		}
		if (rc) {
			per_country[s - countries->v] += 1.0;
			n.subnets++;
		}
	}
	rc = nf < 0 ? nf : 0;
	if (!rc && !n.subnets)
		rc = csv_fail(&r, err, "no valid sample from a listed country");
	fprintf(stderr,
		"gslb-place: %s: %lu rows, %lu distinct subnets; skipped %lu malformed, %lu "
		"failed, %lu out of range, %lu not in a listed country\n",
		a->samples, n.rows, n.subnets, n.malformed, n.failed, n.range, n.unlocated);
out_csv:
	csv_close(&r);
out_geo:
	geo_close(geo);
	free(seen.v);
	return rc;
}

/* Fill w[ncells] from the chosen source. */
static int build_demand(const struct args *a, const struct place_grid *g, double *w, char **err)
{
	struct site_list countries = {0}, pts = {0};
	char buf[PATH_MAX];
	const char *cpath =
	    a->countries ? a->countries : sites_data_path("countries.csv", buf, sizeof(buf));
	double *per = NULL;
	int rc;

	if (a->weights) {
		if (!(rc = sites_load(a->weights, SITE_POINT, &pts, err)))
			for (size_t i = 0; i < pts.n; i++)
				place_spread(g, w, pts.v[i].lat, pts.v[i].lon, pts.v[i].weight, 0);
		sites_free(&pts);
		return rc;
	}
	if ((rc = sites_load(cpath, SITE_COUNTRY, &countries, err)))
		goto out;
	per = calloc(countries.n, sizeof(*per));
	if (!per) {
		rc = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < countries.n; i++)
		per[i] = countries.v[i].weight;
	if (a->samples) {
		memset(per, 0, countries.n * sizeof(*per));
		if ((rc = samples_demand(a, &countries, per, err)))
			goto out;
	}
	for (size_t i = 0; i < countries.n; i++)
		if (per[i] > 0)
			place_spread(g, w, countries.v[i].lat, countries.v[i].lon, per[i],
				     a->spread_km);
out:
	free(per);
	sites_free(&countries);
	return rc;
}

/* ---- output ---- */

static void print_step(unsigned rank, const struct place_point *c, const char *name,
		       const struct site_list *cities, double loss, double prev, double total_w,
		       enum place_loss kind)
{
	double km = 0, typ = loss / total_w;
	const struct site *near = sites_nearest(cities, c->lat, c->lon, &km);
	const char *nname = near && km <= NEAR_CITY_KM ? near->name : "-";

	if (kind == PLACE_L2)
		typ = sqrt(typ);
	printf("%4u %8.2f %8.2f  %-15s %-15s %14.1f %8.2f", rank, c->lat, c->lon, name, nname, loss,
	       typ);
	if (isinf(prev))
		printf(" %14s %7s\n", "-", "-");
	else
		printf(" %14.1f %6.2f%%\n", prev - loss,
		       prev > 0 ? 100.0 * (prev - loss) / prev : 0);
}

static int run(const struct args *a, char **err)
{
	struct site_list pops = {0}, cands = {0}, cities = {0};
	struct place_point *dem = NULL, *cp = NULL, *pp = NULL;
	struct place_problem p = {.loss = a->loss};
	struct place_step *steps = NULL;
	struct place_grid g;
	double *w = NULL, total = 0, loss0, prev;
	char buf[PATH_MAX];
	int rc, n;

	if ((rc = place_grid_init(&g, a->cell_deg)))
		return rc;
	w = calloc(g.ncells, sizeof(*w));
	if (!w) {
		rc = -ENOMEM;
		goto out;
	}
	if ((rc = build_demand(a, &g, w, err)))
		goto out;
	if ((a->pops && (rc = sites_load(a->pops, SITE_CITY, &pops, err))) ||
	    (a->cands && (rc = sites_load(a->cands, SITE_CITY, &cands, err))) ||
	    (rc =
		 sites_load(a->cities ? a->cities : sites_data_path("cities.csv", buf, sizeof(buf)),
			    SITE_CITY, &cities, err)))
		goto out;

	dem = calloc(g.ncells, sizeof(*dem));
	cp = calloc(a->cands ? cands.n : g.ncells, sizeof(*cp));
	pp = calloc(pops.n ? pops.n : 1, sizeof(*pp));
	steps = calloc(a->count, sizeof(*steps));
	if (!dem || !cp || !pp || !steps) {
		rc = -ENOMEM;
		goto out;
	}
	for (size_t c = 0; c < g.ncells; c++) {
		struct place_point pt = {.w = w[c]};
		place_cell_centre(&g, c, &pt.lat, &pt.lon);
		if (w[c] > 0) {
			dem[p.ndemand++] = pt;
			total += w[c];
		}
		if (!a->cands && (a->all_cells || w[c] > 0))
			cp[p.ncand++] = pt;
	}
	if (!p.ndemand) {
		if (asprintf(err, "no demand: every weight is 0") < 0)
			*err = NULL;
		rc = -EINVAL;
		goto out;
	}
	for (size_t i = 0; a->cands && i < cands.n; i++)
		cp[p.ncand++] = (struct place_point){.lat = cands.v[i].lat, .lon = cands.v[i].lon};
	for (size_t i = 0; i < pops.n; i++)
		pp[p.npops++] = (struct place_point){.lat = pops.v[i].lat, .lon = pops.v[i].lon};
	p.demand = dem;
	p.cand = cp;
	p.pops = pp;

	n = place_greedy(&p, a->count, &loss0, steps);
	if (n < 0) {
		rc = n;
		goto out;
	}
	printf("# gslb-place: loss %s, %zu cells of %.2f deg, %zu with demand (weight %.1f), "
	       "%zu candidates, %zu PoPs\n",
	       a->loss == PLACE_L2 ? "l2" : "l1", g.ncells, g.band_deg, p.ndemand, total, p.ncand,
	       p.npops);
	if (isinf(loss0))
		printf("current loss: - (no PoPs)\n");
	else
		printf("current loss: %.1f (%s %.2f ms)\n", loss0,
		       a->loss == PLACE_L2 ? "rms" : "mean",
		       a->loss == PLACE_L2 ? sqrt(loss0 / total) : loss0 / total);
	printf("rank      lat      lon  site            near                      loss %8s %14s "
	       "%7s\n",
	       a->loss == PLACE_L2 ? "rms_ms" : "mean_ms", "gain", "gain%");
	prev = loss0;
	for (int i = 0; i < n; i++) {
		const struct place_point *c = &cp[steps[i].cand];
		print_step((unsigned)i + 1, c, a->cands ? cands.v[steps[i].cand].name : "-",
			   &cities, steps[i].loss, prev, total, a->loss);
		prev = steps[i].loss;
	}
out:
	free(dem);
	free(cp);
	free(pp);
	free(steps);
	free(w);
	sites_free(&pops);
	sites_free(&cands);
	sites_free(&cities);
	place_grid_free(&g);
	return rc;
}

int main(int argc, char **argv)
{
	struct args a = {.loss = PLACE_L1, .count = 5, .cell_deg = 2.0, .spread_km = SPREAD_KM};
	char *err = NULL;
	int rc;

	if (parse_args(argc, argv, &a))
		return EXIT_INPUT;
	rc = run(&a, &err);
	if (rc) {
		if (err)
			fprintf(stderr, "gslb-place: %s\n", err);
		else
			fprintf(stderr, "gslb-place: %s\n", strerror(-rc));
	}
	free(err);
	return rc == -ENOMEM ? 1 : rc ? EXIT_INPUT : 0;
}
