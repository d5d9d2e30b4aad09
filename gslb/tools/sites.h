/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * sites.h - the small point files the GSLB tools share: cities and PoPs
 * ("name,lat,lon"), countries ("cc,lat,lon,weight": a population centre
 * and a weight such as internet users in millions) and weighted points
 * ("lat,lon,weight"). Each has that header line; a bad line is an error
 * that names the file and the line, never a silently skipped point.
 */
#ifndef PORTICO_GSLB_SITES_H
#define PORTICO_GSLB_SITES_H

#include <stddef.h>

#define SITE_NAME_MAX 15

enum site_kind {
	SITE_CITY,    /* name,lat,lon; name 1..15 chars of [a-z0-9_-], unique */
	SITE_COUNTRY, /* cc,lat,lon,weight; cc two capital letters, unique */
	SITE_POINT,   /* lat,lon,weight; name left empty */
};

struct site {
	char name[SITE_NAME_MAX + 1];
	double lat, lon; /* degrees, [-90, 90] and [-180, 180] */
	double weight;	 /* >= 0; 1 for cities */
};

struct site_list {
	struct site *v;
	size_t n;
};

/*
 * Read path ("-" is stdin) as kind into *out, which the caller frees
 * with sites_free() (also after a failure). Returns 0; -EINVAL with a
 * malloc'd "path:line: reason" in *err (caller frees) for a bad header,
 * a bad line or an empty list; -errno for I/O errors.
 */
int sites_load(const char *path, enum site_kind kind, struct site_list *out, char **err);

void sites_free(struct site_list *l);

/* The site named name, or NULL (linear: these lists are short). */
const struct site *sites_find(const struct site_list *l, const char *name);

/* The site nearest (lat, lon) and its distance in km; NULL if l is empty. */
const struct site *sites_nearest(const struct site_list *l, double lat, double lon, double *km);

/*
 * Where a data file named file (say "countries.csv") is by default:
 * $GSLB_DATA_DIR if set, else the source tree's gslb/data if the file is
 * there (so the tools work from a build directory), else the installed
 * data directory. Writes into buf (cap bytes) and returns buf.
 */
const char *sites_data_path(const char *file, char *buf, size_t cap);

#endif
