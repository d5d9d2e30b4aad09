// SPDX-License-Identifier: GPL-2.0-only
/* sites.c - see sites.h. */
#include "sites.h"

#include "csv.h"
#include "geomath.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef GSLB_DATA_DIR
#define GSLB_DATA_DIR "gslb/data"
#endif
#ifndef GSLB_DATA_INSTALL_DIR
#define GSLB_DATA_INSTALL_DIR "/usr/local/share/portico/gslb"
#endif

static const char *const headers[] = {
    [SITE_CITY] = "name,lat,lon",
    [SITE_COUNTRY] = "cc,lat,lon,weight",
    [SITE_POINT] = "lat,lon,weight",
};

static int check_name(struct csv_reader *r, enum site_kind kind, const char *s, char **err)
{
	size_t n = strlen(s);

	if (kind == SITE_COUNTRY) {
		if (n != 2 || s[0] < 'A' || s[0] > 'Z' || s[1] < 'A' || s[1] > 'Z')
			return csv_fail(r, err, "country \"%.32s\": expected two capital letters",
					s);
		return 0;
	}
	if (n == 0 || n > SITE_NAME_MAX)
		return csv_fail(r, err, "name \"%.32s\": 1 to %d characters", s, SITE_NAME_MAX);
	for (const char *p = s; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_' ||
		      *p == '-'))
			return csv_fail(r, err, "name \"%s\": only a-z, 0-9, '_' and '-'", s);
	return 0;
}

static int parse_line(struct csv_reader *r, enum site_kind kind, char **f, int nf, struct site *s,
		      char **err)
{
	int want = kind == SITE_CITY ? 3 : kind == SITE_COUNTRY ? 4 : 3, i = 0, rc;

	if (nf != want)
		return csv_fail(r, err, "%d fields, expected %d (%s)", nf, want, headers[kind]);
	memset(s, 0, sizeof(*s));
	s->weight = 1.0;
	if (kind != SITE_POINT) {
		if ((rc = check_name(r, kind, f[0], err)))
			return rc;
		snprintf(s->name, sizeof(s->name), "%s", f[0]);
		i = 1;
	}
	if (csv_double(f[i], &s->lat) || s->lat < -90.0 || s->lat > 90.0)
		return csv_fail(r, err, "latitude \"%.32s\": expected -90..90", f[i]);
	if (csv_double(f[i + 1], &s->lon) || s->lon < -180.0 || s->lon > 180.0)
		return csv_fail(r, err, "longitude \"%.32s\": expected -180..180", f[i + 1]);
	if (kind != SITE_CITY &&
	    (csv_double(f[i + 2], &s->weight) || s->weight < 0.0 || s->weight > 1e12))
		return csv_fail(r, err, "weight \"%.32s\": expected a number 0..1e12", f[i + 2]);
	return 0;
}

int sites_load(const char *path, enum site_kind kind, struct site_list *out, char **err)
{
	struct csv_reader r;
	size_t cap = 0;
	char *f[5];
	int rc, nf;

	memset(out, 0, sizeof(*out));
	if ((rc = csv_open(&r, path, err)))
		return rc;
	if ((rc = csv_header(&r, headers[kind], err)))
		goto out;
	while ((nf = csv_next(&r, f, 5, err)) > 0) {
		struct site s;

		if ((rc = parse_line(&r, kind, f, nf, &s, err)))
			goto out;
		if (kind != SITE_POINT && sites_find(out, s.name)) {
			rc = csv_fail(&r, err, "\"%s\" listed twice", s.name);
			goto out;
		}
		if (out->n == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			struct site *v = realloc(out->v, ncap * sizeof(*v));
			if (!v) {
				rc = csv_fail(&r, err, "out of memory");
				goto out;
			}
			out->v = v;
			cap = ncap;
		}
		out->v[out->n++] = s;
	}
	if (nf < 0) {
		rc = nf;
		goto out;
	}
	if (out->n == 0)
		rc = csv_fail(&r, err, "no %s lines", headers[kind]);
out:
	csv_close(&r);
	return rc;
}

void sites_free(struct site_list *l)
{
	free(l->v);
	memset(l, 0, sizeof(*l));
}

const struct site *sites_find(const struct site_list *l, const char *name)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->v[i].name, name) == 0)
			return &l->v[i];
	return NULL;
}

const struct site *sites_nearest(const struct site_list *l, double lat, double lon, double *km)
{
	const struct site *best = NULL;
	double bd = 0;

	for (size_t i = 0; i < l->n; i++) {
		double d = geo_dist_km(lat, lon, l->v[i].lat, l->v[i].lon);
		if (!best || d < bd) {
			best = &l->v[i];
			bd = d;
		}
	}
	if (km)
		*km = bd;
	return best;
}

const char *sites_data_path(const char *file, char *buf, size_t cap)
{
	const char *dir = getenv("GSLB_DATA_DIR");

	if (dir && *dir) {
		snprintf(buf, cap, "%s/%s", dir, file);
		return buf;
	}
	snprintf(buf, cap, "%s/%s", GSLB_DATA_DIR, file);
	if (access(buf, R_OK) == 0)
		return buf;
	snprintf(buf, cap, "%s/%s", GSLB_DATA_INSTALL_DIR, file);
	return buf;
}
