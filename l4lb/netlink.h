/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * netlink.h - what the dataplane needs from the kernel, through rtnetlink
 * (libmnl): interface indexes, this host's addresses, the next hop toward a
 * real (lb_nl_nexthop), neighbour entries kept resolved, and addresses on lo.
 *
 * All calls are synchronous request/response on a private socket; they run
 * on configuration changes and a slow timer, never per packet.
 */
#ifndef PORTICO_NETLINK_H
#define PORTICO_NETLINK_H

#include <stdbool.h>
#include <stdint.h>

#include "addr.h"

/* Interface index of name, or -ENODEV / -errno. */
int lb_nl_ifindex(const char *name);

/*
 * First global-scope, non-tentative address of the given family
 * (LB_AF_INET / LB_AF_INET6) on ifindex. Returns 0 or -ENOENT / -errno.
 */
int lb_nl_iface_addr(int ifindex, int family, struct lb_addr *out);

/*
 * Make sure the kernel keeps a resolved neighbour entry for addr on
 * ifindex: XDP cannot trigger ARP/ND itself, and bpf_fib_lookup fails on a
 * missing entry. Creates a "managed" entry (the kernel re-resolves it on
 * its own) and asks for resolution now. Returns 0 or -errno.
 */
int lb_nl_neigh_ensure(int ifindex, const struct lb_addr *addr);

/* Add / remove addr (host prefix) on ifindex; v6 is added nodad. Adding an
 * existing address or removing an absent one is not an error. */
int lb_nl_addr_add(int ifindex, const struct lb_addr *addr);
int lb_nl_addr_del(int ifindex, const struct lb_addr *addr);

/* The next hop toward a destination as the XDP program needs it. */
struct lb_nl_nexthop {
	int ifindex;	   /* egress interface */
	uint32_t mtu;	   /* the route's MTU if it has one, else the interface's */
	uint8_t smac[6];   /* the interface's MAC */
	uint8_t dmac[6];   /* the neighbour's MAC */
	struct lb_addr gw; /* the neighbour: the gateway, or dst when on-link */
};

/*
 * Resolve dst's next hop: route, egress interface and its MAC, and the
 * neighbour's MAC. Returns 0; -EAGAIN when the neighbour has no usable
 * entry yet (out->ifindex and out->gw are filled: watch for it);
 * -EOPNOTSUPP when the interface is not Ethernet; or -errno.
 */
int lb_nl_nexthop(const struct lb_addr *dst, struct lb_nl_nexthop *out);

/*
 * A socket subscribed to link, route and neighbour changes (non-blocking).
 * lb_nl_monitor_read reads what is pending and returns a mask of
 * LB_NL_EV_*, or -errno; neigh (may be NULL) is called for each neighbour
 * event. ROUTE also means "events were lost: resolve everything again".
 */
#define LB_NL_EV_ROUTE 1
#define LB_NL_EV_NEIGH 2
struct lb_nl_monitor;
struct lb_nl_monitor *lb_nl_monitor_open(void);
void lb_nl_monitor_close(struct lb_nl_monitor *m);
int lb_nl_monitor_fd(const struct lb_nl_monitor *m);
int lb_nl_monitor_read(struct lb_nl_monitor *m,
		       void (*neigh)(void *ctx, int ifindex, const struct lb_addr *addr),
		       void *ctx);

#endif
