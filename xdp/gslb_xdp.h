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
 * byte for byte what gslbd would send (gslb/test_xdp_answer.c checks it).
 */
#ifndef PORTICO_GSLB_XDP_H
#define PORTICO_GSLB_XDP_H

#include <linux/types.h>

#define GX_MAX_LISTEN  8
#define GX_MAX_POPS    256    /* indexed by gslbd's configured PoP (a __u8) */
#define GX_LIST_MAX    8      /* = GMAP_LIST_MAX */
#define GX_NONE	       0xff   /* list padding, = GMAP_NONE */
#define GX_NAME_KEY    128    /* a lowercase wire name, zero padded; longer: passed */
#define GX_NAME_SLOTS  1024   /* name slots per set (a hash of the name picks one) */
#define GX_NAME_LABELS 16     /* names of more labels are passed */
#define GX_MAX_QUERY   512    /* longer queries are passed */
#define GX_SCRATCH     1024   /* per-CPU work buffer: query in, answer out */
#define GX_RRL_SLOTS   131072 /* sources the program's rate limiter tracks */

/*
 * The radix tree, as tables of 4-bit strides: a table stands for a node
 * at a depth that is a multiple of 4 and has children, and says what the
 * next 1 to 4 bits of an address do below it, so a walk takes one step
 * per 4 bits instead of one per bit. Entry (1 << r) - 2 + v of a table is
 * the walk of the r bits v (r = 1..4; fewer than 4 only where the
 * client's prefix ends inside the stride). Either it went down all 4 bits
 * to a node with children (GX_ENT_NEXT: that node's table), or it
 * stopped: after how many bits (a missing child, a leaf, or the client's
 * bits ran out), whether the node it stopped at is a leaf, and the
 * deepest list on the whole path from the root (so the walk carries
 * nothing). Entry GX_ENT_HERE is that list at the table's own node.
 */
#define GX_TAB_ENTS  32 /* 30 walks (2 + 4 + 8 + 16), GX_ENT_HERE, 1 unused */
#define GX_ENT_HERE  30
#define GX_ENT_NEXT  0x80000000u /* low 31 bits: the next table's index + 1 */
#define GX_ENT_LIST  0x00ffffffu /* list + 1 (0: no entry on the path) */
#define GX_ENT_STEPS 24		 /* bits 24..26: bits gone down (0..4) */
#define GX_ENT_LEAF  (1u << 27)	 /* stopped at a node without children */

struct gx_tab {
	__u32 e[GX_TAB_ENTS];
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

/*
 * A service name the program answers, in slot gx_name_slot(...) of its
 * set: the lowercase wire name in 64-bit words as they lie in memory
 * (zero past len), so the program compares words, not bytes. Two names
 * on one slot: the second is left to gslbd's sockets.
 */
struct gx_name {
	__u32 len; /* wire length; 0: an empty slot */
	__u32 ttl; /* the zone's service TTL */
	__u64 w[GX_NAME_KEY / 8];
};

/* The slot of a name from all its words, mixed in turn from h = 0: the
 * same arithmetic in the program and in gslbd, on the same host. */
static inline __u64 gx_name_mix(__u64 h, __u64 w)
{
	h = (h ^ w) * 0x9e3779b97f4a7c15ULL;
	return h ^ (h >> 29);
}

static inline __u32 gx_name_slot(__u64 h)
{
	return (__u32)(h ^ (h >> 32)) & (GX_NAME_SLOTS - 1);
}

/*
 * The tables and lists live in two sets in the arrays (set s uses entries
 * [s * cap, s * cap + n)). gslbd writes the set the program is not
 * reading, then bumps seq; seq's low bit names the set in use. The program
 * reads seq before and after its walk and passes the query on if it
 * changed, so a walk over a set being rewritten never answers.
 */
struct gx_set {
	__u32 n_tabs; /* both families' tables */
	__u32 n_lists;
	__u32 loaded; /* 0: no map in this set, pass everything */
	__u32 pad;
	/* [0] IPv4, [1] IPv6: the root's table + 1 (0: the root has no
	 * children) and the root's own list + 1 (a /0 entry; 0: none) */
	__u32 root_tab[2];
	__u32 root_list[2];
};

struct gx_conf {
	__u32 seq;
	__u32 enabled; /* 0: pass everything */
	__u32 tab_cap, list_cap;
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
