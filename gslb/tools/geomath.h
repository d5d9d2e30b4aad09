/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * geomath.h - distances on the Earth and the distance-to-RTT model that
 * gslb-gen draws samples from and gslb-place optimises against. One model
 * in one place: if the two drifted apart, gslb-place would be choosing
 * sites for a network gslb-gen does not simulate.
 *
 * The model: light in fibre covers about 200,000 km/s, so a round trip
 * costs 1 ms per 100 km of path; real paths are longer than the great
 * circle (fibre follows roads, coasts and peering points), by a factor
 * of about 1.5 to 2; and the access network adds a few milliseconds
 * whatever the distance.
 */
#ifndef PORTICO_GSLB_GEOMATH_H
#define PORTICO_GSLB_GEOMATH_H

#include <math.h>

#define GEO_EARTH_RADIUS_KM 6371.0
#define GEO_RTT_MS_PER_KM   0.01 /* round trip in fibre, straight path */
#define GEO_PATH_INFLATION  1.7	 /* typical path length / great circle */
#define GEO_LAST_MILE_MS    5.0	 /* typical access-network RTT */

static inline double geo_rad(double deg)
{
	return deg * (M_PI / 180.0);
}

static inline double geo_deg(double rad)
{
	return rad * (180.0 / M_PI);
}

/*
 * Great-circle distance in km between two points given in degrees
 * (haversine: well conditioned for short distances, where the spherical
 * law of cosines loses precision).
 */
static inline double geo_dist_km(double lat1, double lon1, double lat2, double lon2)
{
	double dlat = geo_rad(lat2 - lat1), dlon = geo_rad(lon2 - lon1);
	double s1 = sin(dlat / 2), s2 = sin(dlon / 2);
	double h = s1 * s1 + cos(geo_rad(lat1)) * cos(geo_rad(lat2)) * s2 * s2;

	if (h > 1.0)
		h = 1.0; /* rounding at antipodes */
	return 2.0 * GEO_EARTH_RADIUS_KM * asin(sqrt(h));
}

/*
 * The point km away from (lat, lon) along the initial bearing (radians,
 * clockwise from north), in degrees, longitude normalised to [-180, 180).
 */
static inline void geo_offset(double lat, double lon, double bearing, double km, double *olat,
			      double *olon)
{
	double d = km / GEO_EARTH_RADIUS_KM, p1 = geo_rad(lat), l1 = geo_rad(lon);
	double sp = sin(p1) * cos(d) + cos(p1) * sin(d) * cos(bearing);
	double p2 = asin(sp > 1.0 ? 1.0 : sp < -1.0 ? -1.0 : sp);
	double l2 = l1 + atan2(sin(bearing) * sin(d) * cos(p1), cos(d) - sin(p1) * sp);

	*olat = geo_deg(p2);
	*olon = fmod(geo_deg(l2) + 540.0, 360.0) - 180.0;
}

/* RTT in ms over km of great circle with a path inflation and an access RTT. */
static inline double geo_rtt_ms(double km, double inflation, double last_mile_ms)
{
	return last_mile_ms + km * GEO_RTT_MS_PER_KM * inflation;
}

/* The typical RTT for a distance: what gslb-place assumes for every user. */
static inline double geo_model_rtt_ms(double km)
{
	return geo_rtt_ms(km, GEO_PATH_INFLATION, GEO_LAST_MILE_MS);
}

#endif
