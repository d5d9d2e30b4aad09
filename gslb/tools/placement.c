// SPDX-License-Identifier: GPL-2.0-only
/*
 * placement.c - see placement.h. The inner loop of the greedy search
 * avoids trigonometry: points are unit vectors, and for each demand point
 * the current latency is turned once per step into the smallest cosine of
 * the angle at which a candidate would beat it. A candidate farther than
 * that costs one dot product and a compare; only the few pairs that
 * improve pay for an acos.
 */
#include "placement.h"

#include "geomath.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

int place_grid_init(struct place_grid *g, double cell_deg)
{
	memset(g, 0, sizeof(*g));
	if (!(cell_deg >= 0.25 && cell_deg <= 30.0))
		return -EINVAL;
	g->nbands = (unsigned)lround(180.0 / cell_deg);
	g->band_deg = 180.0 / g->nbands;
	g->band_first = malloc((g->nbands + 1) * sizeof(*g->band_first));
	if (!g->band_first)
		return -ENOMEM;
	/*
	 * A band's area is proportional to the difference of the sines of
	 * its edges; at the equator a band of height h in radians holds
	 * 360 / h_deg cells, so cells = (360 / h_deg) * dsin / h.
	 */
	for (unsigned b = 0; b < g->nbands; b++) {
		double lo = -90.0 + b * g->band_deg, hi = lo + g->band_deg;
		double dsin = sin(geo_rad(hi)) - sin(geo_rad(lo));
		long n = lround(360.0 / g->band_deg * dsin / geo_rad(g->band_deg));

		g->band_first[b] = g->ncells;
		g->ncells += (size_t)(n < 1 ? 1 : n);
	}
	g->band_first[g->nbands] = g->ncells;
	return 0;
}

void place_grid_free(struct place_grid *g)
{
	free(g->band_first);
	memset(g, 0, sizeof(*g));
}

static unsigned band_of(const struct place_grid *g, double lat)
{
	double b = floor((lat + 90.0) / g->band_deg);

	if (b < 0)
		return 0;
	if (b >= g->nbands)
		return g->nbands - 1;
	return (unsigned)b;
}

static size_t band_cells(const struct place_grid *g, unsigned b)
{
	return g->band_first[b + 1] - g->band_first[b];
}

size_t place_cell_of(const struct place_grid *g, double lat, double lon)
{
	unsigned b = band_of(g, lat);
	size_t n = band_cells(g, b);
	double i = floor((lon + 180.0) / 360.0 * (double)n);

	if (i < 0)
		i = 0;
	if (i >= (double)n)
		i = (double)n - 1;
	return g->band_first[b] + (size_t)i;
}

void place_cell_centre(const struct place_grid *g, size_t cell, double *lat, double *lon)
{
	unsigned lo = 0, hi = g->nbands - 1;

	while (lo < hi) { /* the band whose range holds cell */
		unsigned mid = lo + (hi - lo + 1) / 2;
		if (g->band_first[mid] <= cell)
			lo = mid;
		else
			hi = mid - 1;
	}
	*lat = -90.0 + (lo + 0.5) * g->band_deg;
	*lon =
	    -180.0 + ((double)(cell - g->band_first[lo]) + 0.5) * 360.0 / (double)band_cells(g, lo);
}

void place_spread(const struct place_grid *g, double *w, double lat, double lon, double weight,
		  double radius_km)
{
	double dlat = geo_deg(radius_km / GEO_EARTH_RADIUS_KM);
	unsigned b0 = band_of(g, lat - dlat), b1 = band_of(g, lat + dlat);
	size_t n = 0;

	/* Two passes over the same cells: count, then share. */
	for (int pass = 0; pass < 2 && radius_km > 0; pass++) {
		for (unsigned b = b0; b <= b1; b++)
			for (size_t c = g->band_first[b]; c < g->band_first[b + 1]; c++) {
				double clat, clon;
				place_cell_centre(g, c, &clat, &clon);
				if (geo_dist_km(lat, lon, clat, clon) > radius_km)
					continue;
				if (pass == 0)
					n++;
				else
					w[c] += weight / (double)n;
			}
		if (!n)
			break;
	}
	if (!n)
		w[place_cell_of(g, lat, lon)] += weight;
}

struct vec {
	double x, y, z;
};

static struct vec unit_vec(double lat, double lon)
{
	double p = geo_rad(lat), l = geo_rad(lon);

	return (struct vec){cos(p) * cos(l), cos(p) * sin(l), sin(p)};
}

static double vdot(struct vec a, struct vec b)
{
	return a.x * b.x + a.y * b.y + a.z * b.z;
}

static double cost(enum place_loss loss, double ms)
{
	return loss == PLACE_L2 ? ms * ms : ms;
}

/* Latency between two unit vectors: the same as geo_model_rtt_ms(dist). */
static double vec_rtt(double dot)
{
	if (dot > 1.0)
		dot = 1.0;
	if (dot < -1.0)
		dot = -1.0;
	return geo_model_rtt_ms(acos(dot) * GEO_EARTH_RADIUS_KM);
}

/*
 * The cosine below which a site is too far to beat latency ms: the angle
 * at which the model reaches ms. Beyond half the globe nothing is too far
 * (-2); below the access RTT nothing is near enough (2).
 */
static double beat_cos(double ms)
{
	double km = (ms - GEO_LAST_MILE_MS) / (GEO_RTT_MS_PER_KM * GEO_PATH_INFLATION);

	if (isinf(ms) || km / GEO_EARTH_RADIUS_KM >= M_PI)
		return -2.0;
	if (km < 0)
		return 2.0;
	return cos(km / GEO_EARTH_RADIUS_KM);
}

int place_greedy(const struct place_problem *p, unsigned count, double *loss0,
		 struct place_step *steps)
{
	size_t nd = p->ndemand, nc = p->ncand;
	struct vec *dv = malloc((nd ? nd : 1) * sizeof(*dv));
	struct vec *cv = malloc((nc ? nc : 1) * sizeof(*cv));
	double *cur = malloc((nd ? nd : 1) * sizeof(*cur));
	double *thr = malloc((nd ? nd : 1) * sizeof(*thr));
	double *wcur = malloc((nd ? nd : 1) * sizeof(*wcur));
	bool *used = calloc(nc ? nc : 1, sizeof(*used));
	int done = -ENOMEM;
	double loss = 0;

	if (!dv || !cv || !cur || !thr || !wcur || !used)
		goto out;
	for (size_t d = 0; d < nd; d++) {
		dv[d] = unit_vec(p->demand[d].lat, p->demand[d].lon);
		cur[d] = INFINITY;
		for (size_t k = 0; k < p->npops; k++) {
			double ms = vec_rtt(vdot(dv[d], unit_vec(p->pops[k].lat, p->pops[k].lon)));
			if (ms < cur[d])
				cur[d] = ms;
		}
		loss += p->demand[d].w * cost(p->loss, cur[d]);
	}
	for (size_t c = 0; c < nc; c++)
		cv[c] = unit_vec(p->cand[c].lat, p->cand[c].lon);
	*loss0 = p->npops || !nd ? loss : INFINITY;

	for (done = 0; done < (int)count; done++) {
		size_t best = nc;
		double best_loss = INFINITY;

		for (size_t d = 0; d < nd; d++) {
			thr[d] = beat_cos(cur[d]);
			wcur[d] = p->demand[d].w * cost(p->loss, cur[d]);
		}
		for (size_t c = 0; c < nc; c++) {
			double l = 0;
			if (used[c])
				continue;
			for (size_t d = 0; d < nd; d++) {
				double dot = vdot(cv[c], dv[d]);
				if (dot <= thr[d]) {
					l += wcur[d];
				} else {
					double ms = vec_rtt(dot);
					l += p->demand[d].w *
					     cost(p->loss, ms < cur[d] ? ms : cur[d]);
				}
			}
			if (best == nc || l < best_loss) {
				best = c;
				best_loss = l;
			}
		}
		if (best == nc)
			break;
		used[best] = true;
		for (size_t d = 0; d < nd; d++) {
			double ms = vec_rtt(vdot(cv[best], dv[d]));
			if (ms < cur[d])
				cur[d] = ms;
		}
		steps[done] = (struct place_step){.cand = best, .loss = best_loss};
	}
out:
	free(dv);
	free(cv);
	free(cur);
	free(thr);
	free(wcur);
	free(used);
	return done;
}
