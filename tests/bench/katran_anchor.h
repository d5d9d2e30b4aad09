/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * katran_anchor.h - Katran's XDP balancer (an unmodified build of
 * katran/lib/bpf/balancer.bpf.c, see /work/shared/anchors/katran/README.md)
 * loaded and configured with plain libbpf, as the anchor the XDP benchmark
 * compares our balancer with in the same run.
 *
 * Only what a cost comparison needs: one gateway MAC, one IPv4 and one IPv6
 * VIP, their reals, their rings (filled with our maglev_build: any fill that
 * uses the reals costs the same per packet), one LRU per possible CPU.
 * Benchmark code, not a Katran control plane.
 */
#ifndef PORTICO_KATRAN_ANCHOR_H
#define PORTICO_KATRAN_ANCHOR_H

#include <stddef.h>
#include <stdint.h>

#include "addr.h"

struct katran_anchor;

struct katran_anchor_cfg {
	uint8_t gw_mac[6];	      /* ctl_array[0]: where every encapsulated packet goes */
	struct lb_addr vip4, vip6;    /* both on port/proto below */
	uint16_t port;		      /* host order */
	uint8_t proto;		      /* IPPROTO_TCP / IPPROTO_UDP */
	const struct lb_addr *reals4; /* IPv4 reals of vip4 */
	size_t n4;
	const struct lb_addr *reals6; /* IPv6 reals of vip6 (flagged F_IPV6) */
	size_t n6;
	uint32_t lru_size; /* entries of each per-CPU LRU */
};

/*
 * Load the object at path and configure it. Returns a handle, or NULL with
 * errno set (ENOENT: no object at path) and a reason in err.
 */
struct katran_anchor *katran_anchor_open(const char *path, const struct katran_anchor_cfg *cfg,
					 char *err, size_t errlen);
void katran_anchor_close(struct katran_anchor *k);

int katran_anchor_prog_fd(const struct katran_anchor *k);

/*
 * Zero the flood guard's new-connection rate counter (stats[MAX_VIPS + 2])
 * on every CPU. Katran stops inserting new flows into its LRU above 125,000
 * new flows per second per CPU; a benchmark sending new flows faster than
 * that must call this every few thousand new flows to measure the insert
 * path. Returns 0 or -errno.
 */
int katran_anchor_reset_flood(struct katran_anchor *k);

/*
 * Whether the LRU of cpu holds the flow (ports in host order): 1, 0, or
 * -errno. Proves which path (insert or not) a benchmark measured.
 */
int katran_anchor_has_flow(const struct katran_anchor *k, int cpu, const struct lb_addr *src,
			   const struct lb_addr *dst, uint16_t sport, uint16_t dport,
			   uint8_t proto);

#endif
