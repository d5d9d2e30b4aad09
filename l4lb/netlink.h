/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * netlink.h - what the dataplane needs from the kernel, through rtnetlink
 * (libmnl): interface indexes, this host's addresses, the next hop toward a
 * real, neighbour entries the XDP FIB lookup can use, and addresses on lo.
 *
 * All calls are synchronous request/response on a private socket; they run
 * on configuration changes and a slow timer, never per packet.
 */
#ifndef PORTICO_NETLINK_H
#define PORTICO_NETLINK_H

#include <stdbool.h>

#include "addr.h"

/* Interface index of name, or -ENODEV / -errno. */
int lb_nl_ifindex(const char *name);

/*
 * First global-scope, non-tentative address of the given family
 * (LB_AF_INET / LB_AF_INET6) on ifindex. Returns 0 or -ENOENT / -errno.
 */
int lb_nl_iface_addr(int ifindex, int family, struct lb_addr *out);

/*
 * Route lookup (as `ip route get`): the next hop toward dst (the gateway,
 * or dst itself when on-link) and the egress ifindex. Returns 0 or -errno.
 */
int lb_nl_route_get(const struct lb_addr *dst, struct lb_addr *nexthop, int *oif);

/*
 * Make sure the kernel keeps a resolved neighbour entry for addr on
 * ifindex: XDP cannot trigger ARP/ND itself, and bpf_fib_lookup fails on a
 * missing entry. Creates a "managed" entry (the kernel re-resolves it on
 * its own) and asks for resolution now. Returns 0 or -errno.
 */
int lb_nl_neigh_ensure(int ifindex, const struct lb_addr *addr);

/*
 * True if the kernel has a usable (NUD_VALID: reachable, stale, delay,
 * probe, permanent) neighbour entry for addr on ifindex.
 */
bool lb_nl_neigh_valid(int ifindex, const struct lb_addr *addr);

/* Add / remove addr (host prefix) on ifindex; v6 is added nodad. Adding an
 * existing address or removing an absent one is not an error. */
int lb_nl_addr_add(int ifindex, const struct lb_addr *addr);
int lb_nl_addr_del(int ifindex, const struct lb_addr *addr);

#endif
