/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * l4lb.h - the library behind the XDP balancer: loads the program, keeps
 * the VIP and real tables, builds and swaps Maglev rings, reads stats.
 *
 * Not thread-safe: one owner (lbd's main loop) calls it. The datapath never
 * waits on it: a ring change is written into the VIP's idle half and made
 * live with one map update (see struct lb_vip_meta).
 *
 * Real ids: a real (an address) has one id however many VIPs use it. When
 * the last VIP drops it, the id goes to the tail of a FIFO free list and
 * its reals_map entry stays, so connection-table entries that still point
 * at it keep forwarding there until the id is reused, as late as possible.
 */
#ifndef PORTICO_L4LB_H
#define PORTICO_L4LB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "lb_abi.h"

struct l4lb;

struct l4lb_opts {
	uint32_t ring_size; /* prime; 0 = LB_RING_SIZE_DEFAULT */
	uint32_t max_vips;  /* 0 = LB_MAX_VIPS_DEFAULT */
	uint32_t max_reals; /* 0 = LB_MAX_REALS_DEFAULT */
	uint32_t conn_max;  /* 0 = LB_CONN_MAX_DEFAULT */
	/* conn_cache slots per CPU: a power of two, LB_CONN_CACHE_SLOTS_MIN
	 * to _MAX; 0 = LB_CONN_CACHE_SLOTS_DEFAULT. */
	uint32_t conn_cache_slots;
	uint32_t hash_seed; /* must be equal on every LB of a PoP */
	/* LB_FLOW_HASH_V1 or _V2 (lb_hash.h), equal on every LB of a PoP
	 * too; anything else is version 1. */
	uint32_t flow_hash;
	uint16_t gue_port; /* GUE's UDP destination port; 0 = LB_GUE_PORT_DEFAULT */
	/*
	 * A directory on a bpffs mount (NULL: no pinning). The maps are
	 * pinned there; if they are already there (lbd restarted or crashed
	 * while the dataplane kept forwarding), they are adopted: the
	 * connection table, counters and live rings carry on, and the first
	 * batch (l4lb_batch_begin/end) reuses the VIP and real ids it finds,
	 * so the rings it builds equal the ones packets are reading.
	 */
	const char *pin_dir;
};

struct l4lb_vip_key {
	struct lb_addr addr;
	uint16_t port; /* host order */
	uint8_t proto; /* IPPROTO_TCP / IPPROTO_UDP */
};

struct l4lb_real_info {
	struct lb_addr addr;
	uint32_t weight;
	uint32_t id;
	bool down; /* failed its health checks: out of the ring, weight kept */
};

struct l4lb_vip_info {
	struct l4lb_vip_key key;
	uint32_t id;
	uint32_t flags; /* LB_VIP_F_* */
	size_t n_reals;
	const struct l4lb_real_info *reals; /* borrowed; valid until the next change */
};

/*
 * Open and load the balancer with opts (NULL = defaults). Returns a handle
 * owned by the caller (l4lb_close), or NULL with errno set.
 */
struct l4lb *l4lb_open(const struct l4lb_opts *opts);

/* True if l4lb_open found pinned maps and adopted them. */
bool l4lb_adopted(const struct l4lb *lb);

/*
 * Tear the dataplane down: detach the XDP and tc programs this handle
 * attached, unpin its maps, free everything. NULL is fine.
 */
void l4lb_close(struct l4lb *lb);

/*
 * Free the userspace side only: the programs stay attached and the pinned
 * maps stay, so packets keep flowing until a new lbd adopts them (restart,
 * upgrade). Without pin_dir the kernel keeps the attached programs and
 * their maps alive, but nothing can adopt them. NULL is fine.
 */
void l4lb_release(struct l4lb *lb);

/*
 * Attach the balancer to ifindex in native (driver) mode, or generic (skb)
 * mode if generic is true, replacing a program of the same mode already
 * there (an adopted dataplane's) in one step. Returns 0 or -errno.
 */
int l4lb_attach(struct l4lb *lb, int ifindex, bool generic);

/*
 * Attach the health-check encapsulation (tc egress, clsact) to ifindex,
 * replacing an earlier instance. Probe sockets marked with
 * LB_HC_MARK_BASE | real id then leave encapsulated toward that real.
 * Returns 0 or -errno.
 */
int l4lb_attach_hc(struct l4lb *lb, int ifindex);

/*
 * Batch changes: between begin and end, ring rebuilds are deferred and
 * each changed VIP is rebuilt once at end (a reload touching many reals
 * swaps each ring once). The first batch after an adoption also reuses
 * the adopted VIP and real ids; end then removes the adopted VIPs the
 * batch did not claim. end returns 0 or the first rebuild error (-errno);
 * the VIPs that failed stay dirty and are retried by the next end.
 */
void l4lb_batch_begin(struct l4lb *lb);
int l4lb_batch_end(struct l4lb *lb);

/*
 * After an adoption, until the first batch ends: whether real addr was in
 * VIP vk's live ring (it was up then), so health starts from what the
 * dataplane was doing rather than from scratch.
 */
bool l4lb_adopted_live(const struct l4lb *lb, const struct l4lb_vip_key *vk,
		       const struct lb_addr *addr);

/* Outer source addresses; either may be NULL to leave it unset. */
int l4lb_set_source(struct l4lb *lb, const struct lb_addr *src4, const struct lb_addr *src6);

/* VIPs. Return 0 or -EEXIST / -ENOENT / -ENOSPC / -EINVAL / -errno. */
int l4lb_vip_add(struct l4lb *lb, const struct l4lb_vip_key *key);
int l4lb_vip_del(struct l4lb *lb, const struct l4lb_vip_key *key);

/*
 * Set a VIP's LB_VIP_F_* flags (LB_VIP_F_HASH_3TUPLE: hash by source,
 * destination and protocol, and take its address's fragments). Rebuilds
 * its ring (now, or at the end of the batch). Returns 0, -ENOENT, -EINVAL
 * (unknown flag), -EBUSY (3-tuple asked while another VIP has this
 * address and protocol: fragments could not tell them apart) or -errno.
 * l4lb_vip_add likewise refuses (-EBUSY) a VIP beside a 3-tuple one.
 */
int l4lb_vip_set_flags(struct l4lb *lb, const struct l4lb_vip_key *key, uint32_t flags);

/*
 * Reals of a VIP. The real's family must be the VIP's (-EAFNOSUPPORT).
 * Each call rebuilds the VIP's ring and swaps it in. weight 0 drains the
 * real (no new flows; established ones stay through the conn table).
 */
int l4lb_real_add(struct l4lb *lb, const struct l4lb_vip_key *vip, const struct lb_addr *real,
		  uint32_t weight);
int l4lb_real_del(struct l4lb *lb, const struct l4lb_vip_key *vip, const struct lb_addr *real);
int l4lb_real_set_weight(struct l4lb *lb, const struct l4lb_vip_key *vip,
			 const struct lb_addr *real, uint32_t weight);
/*
 * Health: a real marked down keeps its weight and its established flows
 * (connection table) but leaves the VIP's ring; marked up it comes back.
 * Rebuilds the ring only when the state changes. 0 or -ENOENT / -errno.
 */
int l4lb_real_set_down(struct l4lb *lb, const struct l4lb_vip_key *vip, const struct lb_addr *real,
		       bool down);

/* The id a real address has (for probe marks), or LB_REAL_NONE. */
uint32_t l4lb_real_id(const struct l4lb *lb, const struct lb_addr *real);

/* Call fn for each VIP in id order; stops and returns fn's non-zero value. */
int l4lb_vip_foreach(struct l4lb *lb, int (*fn)(void *ctx, const struct l4lb_vip_info *vip),
		     void *ctx);
/* Look one VIP up; 0 or -ENOENT. */
int l4lb_vip_find(struct l4lb *lb, const struct l4lb_vip_key *key, struct l4lb_vip_info *out);

/*
 * The real the VIP's live ring gives a flow (flow: the client's 5-tuple as
 * the datapath keys it; ports 0 for a 3-tuple VIP), hashed with this
 * lb's seed and flow hash version: where its SYN goes, the connection
 * table aside. Fills *real; returns 0, -ENOENT (no such VIP), -ENODATA
 * (an empty ring) or -errno.
 */
int l4lb_ring_pick(struct l4lb *lb, const struct l4lb_vip_key *vip, const struct lb_flow_key *flow,
		   struct lb_addr *real);

/* Stats, summed over CPUs. Return 0 or -errno. */
int l4lb_stats_global(struct l4lb *lb, struct lb_counter out[LB_CNT_MAX]);
int l4lb_stats_vip(struct l4lb *lb, uint32_t vip_id, struct lb_counter *out);
int l4lb_stats_real(struct l4lb *lb, uint32_t real_id, struct lb_counter *out);
/* Names of the global counters, indexed by enum lb_counter_id. */
extern const char *const lb_counter_names[LB_CNT_MAX];

/*
 * Make sure every real's next hop has a usable neighbour entry (XDP cannot
 * resolve one). Returns the number of reals that could not be prepared.
 */
int l4lb_refresh_neighbors(struct l4lb *lb);

/*
 * Wait up to timeout_ms for every real's next hop to be resolved and
 * cached (call after l4lb_refresh_neighbors, before attaching, so the
 * first packets do not meet an unresolved next hop). Returns the number
 * still waiting for their neighbour.
 */
int l4lb_wait_neighbors(struct l4lb *lb, int timeout_ms);

/*
 * The next-hop cache: each real's egress interface, MACs and MTU, written
 * into its reals_map entry so the datapath needs no FIB lookup (see struct
 * lb_real). Adding a real resolves it; l4lb_refresh_neighbors (the slow
 * timer) resolves every real again.
 *
 * l4lb_nexthops_refresh resolves every real now; returns how many reals in
 * use have no cached next hop (their packets take the FIB).
 *
 * l4lb_netlink_fd returns a descriptor (owned by lb) that becomes readable
 * on route, link and neighbour changes, or -errno; when it does, call
 * l4lb_netlink_process, which reads the events and resolves again the
 * reals they concern (all of them for a route or link change). Returns the
 * number of reals resolved again, or -errno.
 */
int l4lb_nexthops_refresh(struct l4lb *lb);
int l4lb_netlink_fd(struct l4lb *lb);
int l4lb_netlink_process(struct l4lb *lb);

/*
 * Advance the datapath's conn_cache clock by one tick. Call it every
 * LB_CONN_CACHE_TICK_MS: a cached copy of a conn-table entry is read
 * again from the table once it is LB_CONN_CACHE_MAX_AGE_TICKS old.
 */
void l4lb_clock_tick(struct l4lb *lb);

/* For tests and benchmarks: the program and conn-table fds. */
int l4lb_prog_fd(const struct l4lb *lb);
int l4lb_hc_prog_fd(const struct l4lb *lb); /* the tc probe encapsulation */
int l4lb_conn_map_fd(const struct l4lb *lb);
uint32_t l4lb_ring_size(const struct l4lb *lb);

#endif
