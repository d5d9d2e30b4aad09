/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * geo.h - the country of an IP address, from the legacy GeoIP country
 * databases (Debian's geoip-database). gslbd uses it to fall back to a
 * per-country PoP list for subnets its map does not hold, and answers
 * with the database range's prefix length as the RFC 7871 scope; the
 * tools use it to place synthetic clients in real address space.
 *
 * Both databases are read into memory at open and never change, so any
 * number of threads may look addresses up at once.
 */
#ifndef PORTICO_GSLB_GEO_H
#define PORTICO_GSLB_GEO_H

#include <stdint.h>

#define GEO_DEFAULT_V4 "/usr/share/GeoIP/GeoIP.dat"
#define GEO_DEFAULT_V6 "/usr/share/GeoIP/GeoIPv6.dat"

struct geo;

/*
 * Open the IPv4 and IPv6 country databases (NULL: GEO_DEFAULT_V4 /
 * GEO_DEFAULT_V6). Returns a handle the caller frees with geo_close(), or
 * NULL with errno set and a malloc'd message naming the file in *err
 * (caller frees): missing or unreadable file, not a country database of
 * that family.
 */
struct geo *geo_open(const char *v4_path, const char *v6_path, char **err);

/* Free g and both databases (NULL is fine). */
void geo_close(struct geo *g);

/*
 * The ISO 3166 two-letter country of addr (family AF_INET or AF_INET6;
 * 4 or 16 bytes in network order). Returns a static string, or NULL if
 * the database does not know the country: not in it, or one of its
 * pseudo-countries ("--", "A1" anonymous proxy, "A2" satellite, "AP" and
 * "EU" continents, "O1" other). *plen (if not NULL) gets the prefix
 * length of the database range that decided, known or not, so that
 * every address in addr/plen gets the same answer; 0 for an unknown
 * family. Thread-safe.
 */
const char *geo_country(const struct geo *g, int family, const uint8_t *addr, unsigned *plen);

/*
 * One range of addresses of one country: start and last (inclusive) in
 * network order (4 or 16 bytes), cc a static string as geo_country()
 * returns. The pointers are valid during the call only.
 */
typedef int (*geo_range_fn)(void *arg, int family, const uint8_t *start, const uint8_t *last,
			    const char *cc);

/*
 * Call cb for every maximal range of consecutive addresses of family that
 * the database gives the same known country, in address order. IPv6 walks
 * native space only (2000::/3 without Teredo 2001::/32 and 6to4
 * 2002::/16): the database also maps the IPv4 table into those and into
 * ::/96 and ::ffff:0:0/96, copies a walk would repeat billions of times.
 * A non-zero return from cb stops the walk and is returned; otherwise 0
 * (or -EAFNOSUPPORT for an unknown family). O(number of database leaves):
 * about 350k lookups for IPv4 and 300k for IPv6, a fraction of a second.
 */
int geo_each_range(const struct geo *g, int family, geo_range_fn cb, void *arg);

#endif
