/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * placement.h - the engine of gslb-place: where should the next PoPs go?
 *
 * Demand is a weight per cell of an equal-area grid (equal areas, so a
 * cell's weight is a density and no latitude is over-represented by
 * smaller cells). Each demand cell is served by its nearest PoP with the
 * latency geo_model_rtt_ms() (geomath.h), the model gslb-gen samples
 * from. The loss of a set of PoPs is the weighted sum of those latencies
 * (L1: the mean user's latency) or of their squares (L2: punishes the
 * worst-served users more). Sites are added greedily, each the candidate
 * that lowers the loss most given the ones already there: the classic
 * approximation for this facility-location problem, and what a "where do
 * we build next" plan does, one PoP at a time.
 */
#ifndef PORTICO_GSLB_PLACEMENT_H
#define PORTICO_GSLB_PLACEMENT_H

#include <stddef.h>

/*
 * Latitude bands of equal height; a band holds a number of equal cells
 * proportional to its area, so every cell has (nearly) the same area.
 * A 2 degree grid has about 10,300 cells.
 */
struct place_grid {
	double band_deg; /* band height, 180 / nbands */
	unsigned nbands;
	size_t *band_first; /* first cell of each band; [nbands] = ncells */
	size_t ncells;
};

/*
 * Build a grid of cells about cell_deg on a side (0.25..30). Returns 0, or
 * -EINVAL / -ENOMEM; free with place_grid_free().
 */
int place_grid_init(struct place_grid *g, double cell_deg);
void place_grid_free(struct place_grid *g);

/* The cell holding (lat, lon) in degrees; the poles and 180 clamp inward. */
size_t place_cell_of(const struct place_grid *g, double lat, double lon);

/* The centre of cell in degrees. */
void place_cell_centre(const struct place_grid *g, size_t cell, double *lat, double *lon);

/*
 * Add weight to w[ncells], shared equally by the cells whose centres are
 * within radius_km of (lat, lon), or all of it to the point's own cell if
 * there are none (radius 0: always). Spreading a country's weight over
 * the area its users live in keeps one population-centre cell from
 * becoming the only candidate site. O(cells in the bands it touches).
 */
void place_spread(const struct place_grid *g, double *w, double lat, double lon, double weight,
		  double radius_km);

enum place_loss {
	PLACE_L1, /* sum of weight x latency */
	PLACE_L2, /* sum of weight x latency^2 */
};

struct place_point {
	double lat, lon; /* degrees */
	double w;	 /* demand weight; unused for candidates and PoPs */
};

struct place_problem {
	const struct place_point *demand, *cand, *pops;
	size_t ndemand, ncand, npops;
	enum place_loss loss;
};

struct place_step {
	size_t cand; /* index into cand */
	double loss; /* the loss once it is added */
};

/*
 * Add up to count candidates greedily; all arrays are the caller's. Each
 * step tries every candidate not chosen yet against every demand point
 * (O(ncand x ndemand), mostly a dot product per pair: 10k candidates x 1k
 * demand cells take about 15 ms a step) and takes the lowest loss, the
 * lowest index on a tie. *loss0 gets the loss of
 * the existing PoPs alone (INFINITY if there are none). Returns the
 * number of steps filled (fewer than count if the candidates run out),
 * or -ENOMEM.
 */
int place_greedy(const struct place_problem *p, unsigned count, double *loss0,
		 struct place_step *steps);

#endif
