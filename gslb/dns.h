/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * dns.h - gslbd's answer to one DNS query: parse it (libknot), pick the
 * PoP for the client, and write the response. No I/O and no allocation
 * beyond a caller-owned arena, so the same function serves UDP, TCP, the
 * unit tests and the fuzz target.
 *
 * Which client: the EDNS Client Subnet of the query when it carries one
 * with a non-zero source prefix (RFC 7871), else the address the query
 * came from (the resolver). Which PoP: the map's list for the client's
 * longest matching prefix, else the configured list of the client's
 * country (geoip), else the default list; the first PoP of the list that
 * is up and has a VIP of the asked family answers. A drained PoP answers
 * only while no PoP at all is up; when no PoP of the list can answer, the
 * anycast VIP does (fail open, the unicast/anycast hybrid).
 */
#ifndef PORTICO_GSLB_DNS_H
#define PORTICO_GSLB_DNS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "conf.h"
#include "map.h"

struct geo;

enum gslb_pop_state { GSLB_POP_UP = 0, GSLB_POP_DRAINED = 1, GSLB_POP_DOWN = 2 };

/* What the workers read of the PoPs' states: written by the main thread. */
struct gslb_states {
	_Atomic uint8_t eff[GMAP_MAX_POPS]; /* per configured PoP */
	/* [0] IPv4, [1] IPv6: no PoP with a VIP of the family is up, so
	 * drained ones answer for it */
	_Atomic bool drained_ok[2];
};

/* Everything one answer reads; the server swaps it whole under RCU. */
struct gslb_view {
	const struct gslb_conf *conf;
	const struct gmap *map;		/* NULL until a map loads */
	uint8_t map_pop[GMAP_MAX_POPS]; /* map PoP index -> conf index / GSLB_NO_POP */
	struct gslb_states *states;
	const struct geo *geo; /* NULL: no country fallback */
};

enum gslb_how {
	GSLB_HOW_NONE,	  /* not a service answer */
	GSLB_HOW_MAP,	  /* the map's list for the client */
	GSLB_HOW_COUNTRY, /* the country's list */
	GSLB_HOW_DEFAULT, /* the default list */
	GSLB_HOW_ANYCAST, /* no PoP of the list could answer */
	GSLB_HOW_NOVIP,	  /* ...and no anycast VIP of the family: SERVFAIL */
	GSLB_HOW__N
};

struct dns_result {
	int rcode; /* of the response (BADVERS = 16) */
	bool drop; /* no response (not a query, or too short to answer) */
	bool ecs;  /* the query carried a usable ECS option */
	bool tc;   /* the response was truncated */
	bool edns; /* the query carried EDNS */
	enum gslb_how how;
	uint8_t pop;   /* configured PoP that answered, or GSLB_NO_POP */
	uint8_t scope; /* ECS scope sent */
	uint16_t qend; /* offset after the question in the response */
};

/* Scratch memory for libknot's parse and the response: one per worker. */
struct dns_arena {
	uint8_t *buf;
	size_t cap, used;
	knot_mm_t mm;
};

/* Prepare an arena of cap bytes (caller-owned struct). 0 or -ENOMEM. */
int dns_arena_init(struct dns_arena *a, size_t cap);
void dns_arena_fini(struct dns_arena *a);

/*
 * Answer the query q (qlen bytes, modified in place by the parse) from
 * `from` over UDP or TCP into out (out_cap bytes: 65535 for TCP). Over
 * UDP the response is kept to 512 bytes, or to the smaller of the
 * client's and our EDNS payload sizes, setting TC when the answer does
 * not fit. Returns the response length, or 0 with res->drop to send
 * nothing. res describes the answer for counters.
 */
size_t dns_answer(const struct gslb_view *v, struct dns_arena *a, uint8_t *q, size_t qlen,
		  uint8_t *out, size_t out_cap, bool tcp, const struct sockaddr_storage *from,
		  struct dns_result *res);

/*
 * Cut a response down to its header and question with TC set (the rate
 * limiter's "slip": a client that really is there retries over TCP).
 * Returns the new length.
 */
size_t dns_truncate(uint8_t *resp, const struct dns_result *res);

/*
 * Point v at map m (NULL: none) and translate m's PoP numbers into v's
 * configured ones (v->conf must be set; m's PoPs it does not know become
 * GSLB_NO_POP). m stays the caller's.
 */
void gslb_view_set_map(struct gslb_view *v, const struct gmap *m);

/*
 * The PoP list and answer for a client address without DNS around it
 * (the admin API's "explain" and the tests): fills *how, the chosen
 * configured PoP (or GSLB_NO_POP) and the scope. family is AF_INET or
 * AF_INET6 for the client; qfamily the family of the VIP wanted.
 */
uint8_t gslb_choose(const struct gslb_view *v, int family, const uint8_t *addr, unsigned bits,
		    int qfamily, enum gslb_how *how, unsigned *scope);

#endif
