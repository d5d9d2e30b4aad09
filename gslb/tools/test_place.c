// SPDX-License-Identifier: GPL-2.0-only
/*
 * Unit tests for gslb-place's engine: the equal-area grid, spreading
 * weight, and greedy placement on toy demand whose answer is known, with
 * the losses recomputed here from geomath.h rather than trusted.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "geomath.h"
#include "placement.h"
#include "sites.h"

static void test_grid(void **s)
{
	struct place_grid g;
	double min_area = INFINITY, max_area = 0;

	(void)s;
	assert_int_equal(place_grid_init(&g, 0.1), -EINVAL);
	assert_int_equal(place_grid_init(&g, 2.0), 0);
	/* The sphere is 41,253 square degrees: about 10,313 cells of 2x2. */
	assert_in_range(g.ncells, 10000, 10600);
	for (size_t c = 0; c < g.ncells; c++) {
		double lat, lon;
		place_cell_centre(&g, c, &lat, &lon);
		assert_true(lat > -90 && lat < 90 && lon > -180 && lon < 180);
		if (place_cell_of(&g, lat, lon) != c)
			fail_msg("cell %zu's centre %.3f,%.3f maps elsewhere", c, lat, lon);
	}
	/* Equal areas: a band's area over its cells, the same in every band. */
	for (unsigned b = 0; b < g.nbands; b++) {
		double lo = -90.0 + b * g.band_deg, hi = lo + g.band_deg;
		double area = (sin(geo_rad(hi)) - sin(geo_rad(lo))) /
			      (double)(g.band_first[b + 1] - g.band_first[b]);
		min_area = fmin(min_area, area);
		max_area = fmax(max_area, area);
	}
	if (max_area / min_area > 1.12)
		fail_msg("cell areas differ by a factor %.3f", max_area / min_area);
	/* Edges clamp inward. */
	assert_true(place_cell_of(&g, 90, 180) < g.ncells);
	assert_true(place_cell_of(&g, -90, -180) == 0);
	place_grid_free(&g);
}

static void test_spread(void **s)
{
	struct place_grid g;
	double *w, sum = 0, lat, lon;
	size_t cells = 0;

	(void)s;
	assert_int_equal(place_grid_init(&g, 1.0), 0);
	w = calloc(g.ncells, sizeof(*w));
	assert_non_null(w);
	place_spread(&g, w, 48.0, 11.0, 100.0, 300);
	place_spread(&g, w, -70.0, 179.9, 5.0, 0);
	for (size_t c = 0; c < g.ncells; c++) {
		if (!w[c])
			continue;
		sum += w[c];
		cells++;
		place_cell_centre(&g, c, &lat, &lon);
		assert_true(geo_dist_km(48.0, 11.0, lat, lon) <= 300 || w[c] == 5.0);
	}
	assert_true(fabs(sum - 105.0) < 1e-9);
	/* A 300 km disk covers about 23 cells of 111 km; plus the point. */
	assert_in_range(cells, 15, 40);
	place_grid_free(&g);
	free(w);
}

/* The loss of serving every demand point from its nearest site, here. */
static double loss_of(const struct place_point *d, size_t nd, const struct place_point *sites,
		      size_t ns, enum place_loss kind)
{
	double loss = 0;

	for (size_t i = 0; i < nd; i++) {
		double best = INFINITY;
		for (size_t k = 0; k < ns; k++) {
			double ms = geo_model_rtt_ms(
			    geo_dist_km(d[i].lat, d[i].lon, sites[k].lat, sites[k].lon));
			best = fmin(best, ms);
		}
		loss += d[i].w * (kind == PLACE_L2 ? best * best : best);
	}
	return loss;
}

/* Demand cells from a weights file, as gslb-place builds them. */
static size_t demand_from_file(const char *path, double cell, struct place_point **out)
{
	struct site_list pts;
	struct place_grid g;
	char *err = NULL;
	double *w;
	size_t n = 0;

	if (sites_load(path, SITE_POINT, &pts, &err))
		fail_msg("%s", err);
	assert_int_equal(place_grid_init(&g, cell), 0);
	w = calloc(g.ncells, sizeof(*w));
	*out = calloc(g.ncells, sizeof(**out));
	assert_non_null(w);
	assert_non_null(*out);
	for (size_t i = 0; i < pts.n; i++)
		place_spread(&g, w, pts.v[i].lat, pts.v[i].lon, pts.v[i].weight, 0);
	for (size_t c = 0; c < g.ncells; c++)
		if (w[c] > 0) {
			(*out)[n].w = w[c];
			place_cell_centre(&g, c, &(*out)[n].lat, &(*out)[n].lon);
			n++;
		}
	free(w);
	sites_free(&pts);
	place_grid_free(&g);
	return n;
}

static void test_two_clusters(void **s)
{
	/* Europe around Frankfurt and the Sydney area; one PoP, in Frankfurt. */
	static const char toy[] = "lat,lon,weight\n"
				  "50.1,8.7,40\n51.5,-0.1,30\n48.9,2.4,30\n52.4,4.9,20\n"
				  "-33.9,151.2,25\n-37.8,145.0,20\n-27.5,153.0,10\n";
	const struct place_point pop = {.lat = 50.11, .lon = 8.68};
	char path[] = "/tmp/test_place_XXXXXX";
	struct place_point *dem;
	size_t nd;
	int fd;

	(void)s;
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, toy, sizeof(toy) - 1), (ssize_t)sizeof(toy) - 1);
	close(fd);
	nd = demand_from_file(path, 2.0, &dem);
	unlink(path);
	assert_int_equal(nd, 7);

	for (int kind = PLACE_L1; kind <= PLACE_L2; kind++) {
		struct place_problem p = {.demand = dem,
					  .ndemand = nd,
					  .cand = dem, /* the cells with demand */
					  .ncand = nd,
					  .pops = &pop,
					  .npops = 1,
					  .loss = (enum place_loss)kind};
		struct place_step st[7];
		struct place_point sites[8] = {pop};
		double loss0;
		int n = place_greedy(&p, 7, &loss0, st);

		/* Nothing left to add after every candidate: stops at nd. */
		assert_int_equal(n, 7);
		assert_true(fabs(loss0 - loss_of(dem, nd, &pop, 1, p.loss)) < 1e-6 * loss0);
		/* The first site is in the other cluster, near Sydney or Melbourne. */
		const struct place_point *c = &dem[st[0].cand];
		if (geo_dist_km(c->lat, c->lon, -33.9, 151.2) > 1000)
			fail_msg("loss %d: first site at %.1f,%.1f, not in Australia", kind, c->lat,
				 c->lon);
		/* It takes a big bite; then the loss never rises, to 0 distance. */
		assert_true(st[0].loss < 0.5 * loss0);
		for (int i = 0; i < n; i++) {
			sites[i + 1] = dem[st[i].cand];
			double want = loss_of(dem, nd, sites, (size_t)i + 2, p.loss);
			if (fabs(st[i].loss - want) > 1e-6 * want)
				fail_msg("step %d: loss %f, recomputed %f", i, st[i].loss, want);
			assert_true(st[i].loss <= (i ? st[i - 1].loss : loss0));
		}
		/* With a site on every demand cell, each pays the access RTT only. */
		double floor_ms = 0;
		for (size_t i = 0; i < nd; i++)
			floor_ms +=
			    dem[i].w * (kind == PLACE_L2 ? GEO_LAST_MILE_MS * GEO_LAST_MILE_MS
							 : GEO_LAST_MILE_MS);
		assert_true(fabs(st[n - 1].loss - floor_ms) < 1e-6 * floor_ms);
	}
	free(dem);
}

/*
 * L1 and L2 disagree: a heavy cluster 1500 km from the PoP and a light one
 * 15000 km away. Summing latency, serving the heavy one saves more; summing
 * squares, the far one's latency dominates.
 */
static void test_l1_vs_l2(void **s)
{
	const struct place_point pop = {.lat = 0, .lon = 0};
	struct place_point d[2] = {{.w = 100}, {.w = 2}};
	struct place_step st[1];
	double loss0;

	(void)s;
	geo_offset(0, 0, M_PI / 2, 1500, &d[0].lat, &d[0].lon);
	geo_offset(0, 0, M_PI / 2, 15000, &d[1].lat, &d[1].lon);
	struct place_problem p = {
	    .demand = d, .ndemand = 2, .cand = d, .ncand = 2, .pops = &pop, .npops = 1};
	p.loss = PLACE_L1;
	assert_int_equal(place_greedy(&p, 1, &loss0, st), 1);
	assert_int_equal(st[0].cand, 0);
	p.loss = PLACE_L2;
	assert_int_equal(place_greedy(&p, 1, &loss0, st), 1);
	assert_int_equal(st[0].cand, 1);
}

static void test_no_pops(void **s)
{
	struct place_point d[3] = {{10, 10, 1}, {10, 12, 1}, {-40, -60, 3}};
	struct place_problem p = {.demand = d, .ndemand = 3, .cand = d, .ncand = 3};
	struct place_step st[3];
	double loss0;

	(void)s;
	assert_int_equal(place_greedy(&p, 3, &loss0, st), 3);
	assert_true(isinf(loss0));
	/* From nothing, the first site goes to the heaviest point. */
	assert_int_equal(st[0].cand, 2);
	assert_true(isfinite(st[0].loss));
	assert_true(st[1].loss < st[0].loss);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_grid),	 cmocka_unit_test(test_spread),
	    cmocka_unit_test(test_two_clusters), cmocka_unit_test(test_l1_vs_l2),
	    cmocka_unit_test(test_no_pops),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
