/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * gensamp.h - the engine of gslb-gen: a synthetic but realistic world of
 * client subnets, autonomous systems and real-user latency samples, laid
 * over the real address-to-country map of the GeoIP databases. The CLI
 * (gen.c) only parses options and opens files; the tests drive this
 * directly.
 *
 * The world (gen_world_new) depends only on the databases and the
 * country list: every range of a known country is cut into CIDR prefixes
 * and each prefix is given to one of that country's synthetic ASes,
 * always the same way, so the prefix-to-AS table is the same for every
 * seed, and so is each AS's popularity rank in its country. Where an AS's
 * network sits (its home, its metros) and how it peers are drawn from
 * the seed; so are the client subnets and the samples (gen_write_samples),
 * which for given options and world are identical on every run.
 */
#ifndef PORTICO_GSLB_GENSAMP_H
#define PORTICO_GSLB_GENSAMP_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct geo;
struct site_list;
struct gen_world;

#define GEN_SAMPLES_DEFAULT  100000
#define GEN_BAD_RATE_DEFAULT 0.01
#define GEN_V6_SHARE_DEFAULT 0.3
#define GEN_ASN_FIRST	     64512u	 /* RFC 6996 private 16-bit ASNs ... */
#define GEN_ASN_LAST16	     65534u	 /* ... up to here, then ... */
#define GEN_ASN_FIRST32	     4200000000u /* ... the private 32-bit ones */

struct gen_opts {
	uint64_t seed;
	uint64_t samples; /* rows after the header, bad ones included */
	uint64_t subnets; /* client subnet pool; 0: samples / 20 (at least 1) */
	double bad_rate;  /* [0, 1]: share of rows made bad on purpose */
	double v6_share;  /* [0, 1]: share of subnets that are IPv6 /56s */
};

struct gen_stats {
	uint64_t rows;	  /* sample rows written */
	uint64_t bad;	  /* of which bad on purpose */
	uint64_t subnets; /* pool size */
	uint64_t sampled; /* subnets with at least one row */
	uint64_t v6_rows; /* rows from IPv6 subnets */
};

/*
 * Build the world from geo (read during this call only; it may be closed
 * afterwards), countries (SITE_COUNTRY list) and pops (SITE_CITY list),
 * both borrowed and required to outlive the world.
 * Countries the databases have no ranges for are ignored; at least one
 * must have some. Returns 0 and *out (free with gen_world_free), or
 * -EINVAL / -ENOMEM with a malloc'd message in *err (caller frees).
 */
int gen_world_new(struct gen_world **out, const struct geo *geo, const struct site_list *countries,
		  const struct site_list *pops, char **err);

void gen_world_free(struct gen_world *w);

/* Announced prefixes (IPv4 and IPv6) and distinct ASes in the world. */
size_t gen_world_prefixes(const struct gen_world *w);
size_t gen_world_ases(const struct gen_world *w);

/*
 * Write the prefix-to-AS table to f: "#" comment lines, then one
 * "PREFIX/LEN ASN" line per announced prefix, IPv4 then IPv6, each in
 * address order, prefixes never overlapping. 0 or -EIO.
 */
int gen_write_asn(const struct gen_world *w, FILE *f);

/* One client subnet of the pool, as gen_pool reports it. */
struct gen_subnet {
	int family;	  /* AF_INET or AF_INET6 */
	uint8_t addr[16]; /* network order, host bits zero */
	unsigned plen;	  /* 24 or 56, or the announced prefix's if longer */
	uint32_t asn;
	double lat, lon; /* where its clients are, degrees */
	size_t nearest;	 /* index in the world's PoP list of the nearest PoP */
	int mobile;	 /* 1: a mobile network's subnet */
	int national;	 /* 1: its AS is one of its country's largest, which span it */
};

/*
 * The client subnet pool that gen_write_samples draws its rows from for
 * the same options (*o), in pool order: *out (*n entries, free with
 * free()). For tests and diagnostics. Returns 0, or -EINVAL / -ENOMEM
 * with *err set (caller frees).
 */
int gen_pool(const struct gen_world *w, const struct gen_opts *o, struct gen_subnet **out,
	     size_t *n, char **err);

/*
 * Write the header "client,pop,rtt_ms,ok" and o->samples rows to f, and
 * fill *st (may be NULL). Returns 0; -EINVAL (bad options) or -ENOMEM
 * with *err set (caller frees); -EIO if writing failed.
 */
int gen_write_samples(const struct gen_world *w, const struct gen_opts *o, FILE *f,
		      struct gen_stats *st, char **err);

#endif
