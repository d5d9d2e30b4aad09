/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * lb_hash.h - the flow hash, shared by the balancer and by userspace.
 *
 * Userspace needs the exact function too: the datapath fixtures predict which
 * ring slot (and so which real) a packet must go to, and the benchmark builds
 * flows that hit or miss on purpose. Every LB of a PoP must hash a flow to
 * the same slot, so the seed is a fleet-wide setting, not a per-boot random.
 *
 * The mixer is a 32-bit multiply-xorshift over the words of the 5-tuple
 * (the murmur3 finaliser constants), cheap in BPF (no loops over bytes, no
 * tables) and good enough to spread 5-tuples over a 65537-slot ring.
 */
#ifndef PORTICO_LB_HASH_H
#define PORTICO_LB_HASH_H

#include <linux/types.h>
#include "lb_abi.h"

static inline __u32 lb_mix32(__u32 h)
{
	h ^= h >> 16;
	h *= 0x85ebca6bU;
	h ^= h >> 13;
	h *= 0xc2b2ae35U;
	h ^= h >> 16;
	return h;
}

static inline __u32 lb_combine(__u32 h, __u32 w)
{
	/* Order-dependent combine so (a,b) and (b,a) hash apart. */
	return lb_mix32(h ^ (w + 0x9e3779b9U + (h << 6) + (h >> 2)));
}

static inline __u32 lb_word(const __u8 *p)
{
	return (__u32)p[0] | (__u32)p[1] << 8 | (__u32)p[2] << 16 | (__u32)p[3] << 24;
}

/*
 * Hash a flow key. Accepts a fully initialised key (pad zeroed); returns a
 * 32-bit hash. For IPv4 only the first word of each address is mixed.
 */
static inline __u32 lb_flow_hash(const struct lb_flow_key *k, __u32 seed)
{
	__u32 h = seed;

	h = lb_combine(h, lb_word(k->src));
	h = lb_combine(h, lb_word(k->dst));
	if (k->family == LB_AF_INET6) {
		h = lb_combine(h, lb_word(k->src + 4));
		h = lb_combine(h, lb_word(k->src + 8));
		h = lb_combine(h, lb_word(k->src + 12));
		h = lb_combine(h, lb_word(k->dst + 4));
		h = lb_combine(h, lb_word(k->dst + 8));
		h = lb_combine(h, lb_word(k->dst + 12));
	}
	h = lb_combine(h, (__u32)k->sport << 16 | k->dport);
	h = lb_combine(h, k->proto);
	return h;
}

/*
 * Flow hash versions (the lbd setting flow_hash; every LB of a PoP must
 * run the same one, like the seed, or flows that move between LBs change
 * reals). Version 1 is the chain above: ten serial mixing steps for
 * IPv6, which is most of an IPv6 SYN's extra cost. Version 2 hashes the
 * source and destination words in two independent lanes of one
 * multiply each and mixes once at the end: about a third of version 1's
 * latency for IPv6, half for IPv4. Both are seeded; neither is meant to
 * resist a client choosing its ports to aim at one real.
 */
#define LB_FLOW_HASH_V1 1
#define LB_FLOW_HASH_V2 2

/* One lane step of version 2: fold the word in, rotate, multiply. */
static inline __u32 lb_lane(__u32 h, __u32 w)
{
	h ^= w;
	h = h << 13 | h >> 19;
	return h * 0x9e3779b1U;
}

/* Version 2 of the flow hash (see above); the same inputs as
 * lb_flow_hash. */
static inline __u32 lb_flow_hash2(const struct lb_flow_key *k, __u32 seed)
{
	__u32 a = lb_lane(seed ^ 0x243f6a88U, lb_word(k->src));
	__u32 b = lb_lane(seed ^ 0x85a308d3U, lb_word(k->dst));

	if (k->family == LB_AF_INET6) {
		a = lb_lane(a, lb_word(k->src + 4));
		b = lb_lane(b, lb_word(k->dst + 4));
		a = lb_lane(a, lb_word(k->src + 8));
		b = lb_lane(b, lb_word(k->dst + 8));
		a = lb_lane(a, lb_word(k->src + 12));
		b = lb_lane(b, lb_word(k->dst + 12));
	}
	return lb_mix32(a ^ (b << 16 | b >> 16) ^ ((__u32)k->sport << 16 | k->dport) * 0xcc9e2d51U ^
			k->proto);
}

/* The flow hash of the given version (LB_FLOW_HASH_V1 or _V2; anything
 * else is version 1). */
static inline __u32 lb_flow_hash_v(const struct lb_flow_key *k, __u32 seed, __u32 version)
{
	return version == LB_FLOW_HASH_V2 ? lb_flow_hash2(k, seed) : lb_flow_hash(k, seed);
}

/* The client's side of a flow, one word: its address folded with the
 * ports. */
static inline __u32 lb_client_fold(const struct lb_flow_key *k)
{
	return lb_word(k->src) ^ lb_word(k->src + 4) ^ lb_word(k->src + 8) ^ lb_word(k->src + 12) ^
	       ((__u32)k->sport << 16 | k->dport);
}

/*
 * The IPv6 outer flow label (RFC 6438: the same for every packet of a
 * flow, so the underlay's ECMP keeps a flow on one path and tells flows
 * apart). Cheaper than lb_flow_hash, which only a new flow pays for: the
 * client's side mixed once. 20 bits are used.
 */
static inline __u32 lb_flow_label(const struct lb_flow_key *k)
{
	return lb_mix32(lb_client_fold(k)) & 0xfffff;
}

/*
 * The conn_cache slot of a flow (before the mask): the client's side
 * folded with the VIP's first and last words and the protocol, mixed
 * once. Many flows share a VIP, so the client side carries the spread.
 */
static inline __u32 lb_cache_slot(const struct lb_flow_key *k)
{
	return lb_mix32(lb_client_fold(k) ^ lb_word(k->dst) ^ lb_word(k->dst + 12) ^ k->proto);
}

/*
 * The vip_filter bit of an address (lb_abi.h): 16 bits, the word is
 * bit >> 6. An IPv6 address is folded to one word first (one mix for
 * every packet, whatever the family); a collision only sends a non-VIP
 * packet through the map lookups.
 */
static inline __u32 lb_vip_addr_bit(const __u8 *addr, __u8 family)
{
	__u32 w = lb_word(addr);

	if (family == LB_AF_INET6)
		w ^= lb_word(addr + 4) ^ lb_word(addr + 8) ^ lb_word(addr + 12);
	return lb_mix32(w ^ family) >> 16;
}

#endif /* PORTICO_LB_HASH_H */
