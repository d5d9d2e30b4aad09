/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * gslb_xdp.h - what gslbd and its XDP answer program (gslb_answer.bpf.c)
 * share: the layout of the maps gslbd fills and the program reads, and
 * the counters. Included by the BPF program and by gslbd, so only fixed
 * width types.
 *
 * The program answers the common query (one A or AAAA question for a
 * service name, with at most an OPT record carrying at most an ECS
 * option) when the map decides it and a PoP of the list is up; everything
 * else goes up to gslbd's sockets unchanged (XDP_PASS). Its answers are
 * byte for byte what gslbd would send (tests/gslb_xdp_test.c checks it).
 */
#ifndef PORTICO_GSLB_XDP_H
#define PORTICO_GSLB_XDP_H

#include <linux/types.h>

#define GX_MAX_LISTEN 8
#define GX_MAX_POPS   256    /* indexed by gslbd's configured PoP (a __u8) */
#define GX_LIST_MAX   8	     /* = GMAP_LIST_MAX */
#define GX_NONE	      0xff   /* list padding, = GMAP_NONE */
#define GX_NAME_KEY   128    /* a lowercase wire name, zero padded; longer: passed */
#define GX_MAX_NAMES  256    /* service names the program answers */
#define GX_MAX_QUERY  512    /* longer queries are passed */
#define GX_SCRATCH    1024   /* per-CPU work buffer: query in, answer out */
#define GX_RRL_SLOTS  131072 /* sources the program's rate limiter tracks */

/* One radix node: the map file's gmap_node with the list index kept
 * (0 = no entry, else list + 1), padded to the array's 8-byte stride. */
struct gx_node {
	__u32 child[2];
	__u32 list;
	__u32 pad;
};

/* One list: gslbd's configured PoP indices (already translated from the
 * map file's own PoP numbers), best first, GX_NONE padded. */
struct gx_list {
	__u8 pop[GX_LIST_MAX];
};

enum { GX_POP_UP = 0 }; /* anything else is not answered here */

struct gx_pop {
	__u8 state; /* gslbd's effective state; only GX_POP_UP answers */
	__u8 has4, has6;
	__u8 pad;
	__u8 vip4[4];
	__u8 vip6[16];
};

/* The value of a service name in `names` (its key: struct gx_name_key). */
struct gx_name_key {
	__u8 name[GX_NAME_KEY];
};
struct gx_name_val {
	__u32 ttl; /* the zone's service TTL */
};

/*
 * The nodes and lists live in two sets in the arrays (set s uses entries
 * [s * cap, s * cap + n)). gslbd writes the set the program is not
 * reading, then bumps seq; seq's low bit names the set in use. The program
 * reads seq before and after its walk and passes the query on if it
 * changed, so a walk over a set being rewritten never answers.
 */
struct gx_set {
	__u32 n_nodes4, n_nodes6; /* IPv6 nodes follow the IPv4 ones */
	__u32 n_lists;
	__u32 loaded; /* 0: no map in this set, pass everything */
};

struct gx_conf {
	__u32 seq;
	__u32 enabled; /* 0: pass everything */
	__u32 node_cap, list_cap;
	struct gx_set set[2];
	__u16 port;    /* UDP port, network order */
	__u16 max_udp; /* our EDNS payload size */
	__u32 n_listen;
	__u8 listen[GX_MAX_LISTEN][16];
	__u8 listen_fam[GX_MAX_LISTEN]; /* 4 or 6 */
	/* The rate limiter, as gslbd's rate_limit (rate 0: off). */
	__u32 rrl_rate, rrl_burst, rrl_slip;
	__u8 rrl_v4_prefix, rrl_v6_prefix;
	__u8 pad[2];
};

struct gx_rrl_key {
	__u8 fam;
	__u8 pad[3];
	__u8 addr[16]; /* masked to the configured prefix */
};

struct gx_rrl_val {
	__u64 tokens_milli; /* tokens x 1000 */
	__u64 last_ms;
	__u64 limited;
};

/* Counters (a per-CPU array; gslbd sums the CPUs). */
enum gx_counter {
	GX_RX,		/* packets the program saw */
	GX_ANSWERED,	/* answered here (XDP_TX) */
	GX_ECS,		/* ...of which carried an ECS option */
	GX_RRL_DROPPED, /* over the rate limit: dropped */
	GX_RRL_SLIPPED, /* over the rate limit: answered truncated (TC) */
	GX_PASS_OTHER,	/* not UDP to our port on a listen address (the kernel's) */
	GX_PASS_SHAPE,	/* a query we do not answer here (gslbd does) */
	GX_PASS_NAME,	/* not a service name */
	GX_PASS_MAP,	/* no map entry, or no PoP of the list up */
	GX_PASS_BUSY,	/* the map changed during the walk, or no map */
	GX_PASS_TAIL,	/* the frame could not be grown for the answer */
	GX__N
};

/* Per-PoP answers ride after the counters in the same array. */
#define GX_COUNTERS (GX__N + GX_MAX_POPS)

#endif
