// SPDX-License-Identifier: GPL-2.0-only
/*
 * geo.c - libGeoIP behind geo.h. Only the *_gl lookups are used: they
 * return the netmask in the caller's GeoIPLookup instead of the shared
 * handle, and with GEOIP_MEMORY_CACHE (and without GEOIP_CHECK_CACHE,
 * which would re-read the file under our feet) a lookup only reads the
 * in-memory tree, which is what makes geo_country() thread-safe.
 */
#include "geo.h"

#include "addrnum.h"

#include <GeoIP.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

struct geo {
	GeoIP *v4, *v6;
};

static int fail(char **err, int e, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char **err, int e, const char *fmt, ...)
{
	va_list ap;

	if (err) {
		va_start(ap, fmt);
		if (vasprintf(err, fmt, ap) < 0)
			*err = NULL;
		va_end(ap);
	}
	return -e;
}

/*
 * libGeoIP reports a missing file only on stderr and takes any non-empty
 * file for a country database, so check both ourselves: the file must be
 * readable and carry the database-info trailer real databases have.
 */
static GeoIP *open_db(const char *path, int edition, const char *what, char **err)
{
	struct stat st;
	GeoIP *db;
	char *info;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		fail(err, e, "%s: %s", path, strerror(e));
		errno = e;
		return NULL;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size == 0) {
		close(fd);
		fail(err, EINVAL, "%s: not a GeoIP %s database (empty or not a file)", path, what);
		errno = EINVAL;
		return NULL;
	}
	close(fd);
	db = GeoIP_open(path, GEOIP_MEMORY_CACHE);
	if (!db) {
		fail(err, EINVAL, "%s: not a GeoIP %s database (libGeoIP cannot read it)", path,
		     what);
		errno = EINVAL;
		return NULL;
	}
	info = GeoIP_database_info(db);
	if (!info || GeoIP_database_edition(db) != edition) {
		free(info);
		GeoIP_delete(db);
		fail(err, EINVAL, "%s: not a GeoIP %s database", path, what);
		errno = EINVAL;
		return NULL;
	}
	free(info);
	return db;
}

struct geo *geo_open(const char *v4_path, const char *v6_path, char **err)
{
	struct geo *g;

	if (err)
		*err = NULL;
	g = calloc(1, sizeof(*g));
	if (!g) {
		fail(err, ENOMEM, "out of memory");
		errno = ENOMEM;
		return NULL;
	}
	g->v4 =
	    open_db(v4_path ? v4_path : GEO_DEFAULT_V4, GEOIP_COUNTRY_EDITION, "IPv4 country", err);
	if (!g->v4)
		goto out_free;
	g->v6 = open_db(v6_path ? v6_path : GEO_DEFAULT_V6, GEOIP_COUNTRY_EDITION_V6,
			"IPv6 country", err);
	if (!g->v6)
		goto out_v4;
	return g;

out_v4:
	GeoIP_delete(g->v4);
out_free : {
	int e = errno;
	free(g);
	errno = e;
}
	return NULL;
}

void geo_close(struct geo *g)
{
	if (!g)
		return;
	GeoIP_delete(g->v4);
	GeoIP_delete(g->v6);
	free(g);
}

static unsigned family_bits(int family)
{
	return family == AF_INET ? 32 : family == AF_INET6 ? 128 : 0;
}

/* One lookup: the database's country id for n, and its leaf's netmask. */
static int lookup_raw(const struct geo *g, unsigned bits, addrnum n, int *netmask)
{
	GeoIPLookup gl = {.netmask = 0};
	int id;

	if (bits == 32) {
		id = GeoIP_id_by_ipnum_gl(g->v4, (unsigned long)n, &gl);
	} else {
		struct in6_addr a;
		addrnum_put(n, a.s6_addr, 128);
		id = GeoIP_id_by_ipnum_v6_gl(g->v6, a, &gl);
	}
	*netmask = gl.netmask;
	return id;
}

/*
 * The country id of n and the prefix length of its leaf. libGeoIP refuses
 * the IPv4 address 0 without walking the tree (netmask left at 0); the
 * leaf holding 0 is the one holding 1 unless that leaf is a single
 * address, so ask for 1 instead.
 */
static int lookup(const struct geo *g, unsigned bits, addrnum n, unsigned *plen)
{
	int nm, id = lookup_raw(g, bits, n, &nm);

	if ((nm <= 0 || nm > (int)bits) && n == 0) {
		id = lookup_raw(g, bits, 1, &nm);
		if (nm <= 0 || nm >= (int)bits) {
			nm = (int)bits;
			id = 0;
		}
	}
	if (nm <= 0 || nm > (int)bits) {
		/* A damaged tree: claim nothing beyond this address. */
		nm = (int)bits;
		id = 0;
	}
	*plen = (unsigned)nm;
	return id;
}

static const char *known_code(int id)
{
	static const char *const pseudo[] = {"--", "A1", "A2", "AP", "EU", "O1"};
	const char *cc;

	if (id <= 0)
		return NULL;
	cc = GeoIP_code_by_id(id);
	if (!cc || strlen(cc) != 2)
		return NULL;
	for (size_t i = 0; i < sizeof(pseudo) / sizeof(pseudo[0]); i++)
		if (strcmp(cc, pseudo[i]) == 0)
			return NULL;
	return cc;
}

const char *geo_country(const struct geo *g, int family, const uint8_t *addr, unsigned *plen)
{
	unsigned bits = family_bits(family), p = 0;
	const char *cc = NULL;

	if (g && addr && bits)
		cc = known_code(lookup(g, bits, addrnum_get(addr, bits), &p));
	if (plen)
		*plen = p;
	return cc;
}

struct walk {
	const struct geo *g;
	int family;
	unsigned bits;
	geo_range_fn cb;
	void *arg;
	/* The run being extended: [start, last] of country id (0: none). */
	addrnum start, last;
	int id;
};

static int flush(struct walk *w)
{
	uint8_t s[16], l[16];
	const char *cc = known_code(w->id);
	int rc = 0;

	if (cc) {
		addrnum_put(w->start, s, w->bits);
		addrnum_put(w->last, l, w->bits);
		rc = w->cb(w->arg, w->family, s, l, cc);
	}
	w->id = 0;
	return rc;
}

/* Walk [lo, hi] leaf by leaf, merging neighbouring leaves of one country. */
static int walk_span(struct walk *w, addrnum lo, addrnum hi)
{
	addrnum cur = lo;
	int rc;

	for (;;) {
		unsigned plen;
		int id = lookup(w->g, w->bits, cur, &plen);
		addrnum end = cur | addrnum_low(w->bits - plen);

		if (end > hi)
			end = hi;
		if (!known_code(id))
			id = 0;
		if (w->id && (id != w->id || w->last + 1 != cur)) {
			if ((rc = flush(w)))
				return rc;
		}
		if (id && w->id == id) {
			w->last = end;
		} else if (id) {
			w->id = id;
			w->start = cur;
			w->last = end;
		}
		if (end == hi)
			break;
		cur = end + 1;
	}
	return flush(w);
}

int geo_each_range(const struct geo *g, int family, geo_range_fn cb, void *arg)
{
	struct walk w = {
	    .g = g, .family = family, .bits = family_bits(family), .cb = cb, .arg = arg};
	int rc;

	if (!w.bits)
		return -EAFNOSUPPORT;
	if (w.bits == 32)
		return walk_span(&w, 0, 0xffffffffu);
	/* 2000::/3 in three pieces around 2001::/32 and 2002::/16. */
	static const struct {
		uint64_t lo, hi; /* top 64 bits; low 64 bits 0 and all-ones */
	} spans[] = {
	    {0x2000000000000000ull, 0x2000ffffffffffffull},
	    {0x2001000100000000ull, 0x2001ffffffffffffull},
	    {0x2003000000000000ull, 0x3fffffffffffffffull},
	};
	for (size_t i = 0; i < sizeof(spans) / sizeof(spans[0]); i++) {
		addrnum lo = (addrnum)spans[i].lo << 64,
			hi = (addrnum)spans[i].hi << 64 | ~(uint64_t)0;
		if ((rc = walk_span(&w, lo, hi)))
			return rc;
	}
	return 0;
}
