// SPDX-License-Identifier: GPL-2.0-only
#include "netlink.h"
#include "lb_abi.h"

#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef NTF_EXT_MANAGED
#define NTF_EXT_MANAGED (1 << 0)
#endif
#ifndef NDA_FLAGS_EXT
#define NDA_FLAGS_EXT 15
#endif

/*
 * One request on a fresh socket; cb (may be NULL) sees every reply message.
 * Returns 0 or -errno (an ACK with an error code included).
 */
static int nl_talk(struct nlmsghdr *nlh, mnl_cb_t cb, void *data)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct mnl_socket *nl;
	unsigned int seq, portid;
	int ret;

	nl = mnl_socket_open(NETLINK_ROUTE);
	if (!nl)
		return -errno;
	if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		ret = -errno;
		goto out;
	}
	portid = mnl_socket_get_portid(nl);
	/* A dump ends with NLMSG_DONE; anything else must ask for the ACK
	 * that ends it, or recvfrom() would wait forever after the reply. */
	if (!(nlh->nlmsg_flags & NLM_F_DUMP))
		nlh->nlmsg_flags |= NLM_F_ACK;
	nlh->nlmsg_seq = seq = (unsigned int)time(NULL);
	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0) {
		ret = -errno;
		goto out;
	}
	while ((ret = mnl_socket_recvfrom(nl, buf, sizeof(buf))) > 0) {
		ret = mnl_cb_run(buf, ret, seq, portid, cb, data);
		if (ret <= MNL_CB_STOP)
			break;
	}
	ret = ret < 0 ? -errno : 0;
out:
	mnl_socket_close(nl);
	return ret;
}

struct link_req {
	int ifindex;
};

static int link_cb(const struct nlmsghdr *nlh, void *data)
{
	struct ifinfomsg *ifm = mnl_nlmsg_get_payload(nlh);

	((struct link_req *)data)->ifindex = ifm->ifi_index;
	return MNL_CB_OK;
}

int lb_nl_ifindex(const char *name)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct link_req req = {.ifindex = 0};
	struct ifinfomsg *ifm;
	int ret;

	if (strlen(name) >= IFNAMSIZ)
		return -ENODEV;
	nlh->nlmsg_type = RTM_GETLINK;
	nlh->nlmsg_flags = NLM_F_REQUEST;
	ifm = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifm));
	ifm->ifi_family = AF_UNSPEC;
	mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
	ret = nl_talk(nlh, link_cb, &req);
	if (ret)
		return ret == -ENOENT || ret == -EINVAL ? -ENODEV : ret;
	return req.ifindex ? req.ifindex : -ENODEV;
}

/* mnl_attr_parse callback filling tb[type] for types up to max. */
struct attr_tb {
	const struct nlattr **tb;
	int max;
};

static int attr_tb_cb(const struct nlattr *attr, void *data)
{
	const struct attr_tb *t = data;

	if (mnl_attr_type_valid(attr, (uint16_t)t->max) >= 0)
		t->tb[mnl_attr_get_type(attr)] = attr;
	return MNL_CB_OK;
}

/* Parse nlh's attributes after a header of hdrlen bytes into tb[0..max]. */
static void attrs_parse(const struct nlmsghdr *nlh, size_t hdrlen, const struct nlattr **tb,
			int max)
{
	struct attr_tb t = {.tb = tb, .max = max};

	mnl_attr_parse(nlh, (unsigned int)hdrlen, attr_tb_cb, &t);
}

struct addr_req {
	int ifindex;
	int family; /* LB_AF_* */
	bool found;
	struct lb_addr out;
};

static int addr_cb(const struct nlmsghdr *nlh, void *data)
{
	struct ifaddrmsg *ifa = mnl_nlmsg_get_payload(nlh);
	const struct nlattr *tb[IFA_MAX + 1] = {};
	struct addr_req *req = data;
	int af = req->family == LB_AF_INET ? AF_INET : AF_INET6;

	if (req->found || (int)ifa->ifa_index != req->ifindex || ifa->ifa_family != af ||
	    ifa->ifa_scope != RT_SCOPE_UNIVERSE || (ifa->ifa_flags & IFA_F_TENTATIVE))
		return MNL_CB_OK;
	attrs_parse(nlh, sizeof(*ifa), tb, IFA_MAX);
	if (!tb[IFA_ADDRESS])
		return MNL_CB_OK;
	req->out.family = req->family;
	memcpy(req->out.bytes, mnl_attr_get_payload(tb[IFA_ADDRESS]), af == AF_INET ? 4 : 16);
	req->found = true;
	return MNL_CB_OK;
}

int lb_nl_iface_addr(int ifindex, int family, struct lb_addr *out)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct addr_req req = {.ifindex = ifindex, .family = family};
	struct ifaddrmsg *ifa;
	int ret;

	nlh->nlmsg_type = RTM_GETADDR;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));
	ifa->ifa_family = family == LB_AF_INET ? AF_INET : AF_INET6;
	ret = nl_talk(nlh, addr_cb, &req);
	if (ret)
		return ret;
	if (!req.found)
		return -ENOENT;
	*out = req.out;
	return 0;
}

int lb_nl_neigh_ensure(int ifindex, const struct lb_addr *addr)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct ndmsg *ndm;

	/* NTF_EXT_MANAGED (Linux 5.16): the kernel keeps the entry resolved
	 * in the background; NTF_USE asks for resolution right now. */
	nlh->nlmsg_type = RTM_NEWNEIGH;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE;
	ndm = mnl_nlmsg_put_extra_header(nlh, sizeof(*ndm));
	ndm->ndm_family = lb_addr_af(addr);
	ndm->ndm_ifindex = ifindex;
	ndm->ndm_state = NUD_NONE;
	ndm->ndm_flags = NTF_USE;
	mnl_attr_put(nlh, NDA_DST, addr->family == LB_AF_INET ? 4 : 16, addr->bytes);
	mnl_attr_put_u32(nlh, NDA_FLAGS_EXT, NTF_EXT_MANAGED);
	return nl_talk(nlh, NULL, NULL);
}

static int addr_change(int type, int ifindex, const struct lb_addr *addr)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct ifaddrmsg *ifa;
	int ret;

	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	if (type == RTM_NEWADDR)
		nlh->nlmsg_flags |= NLM_F_CREATE | NLM_F_REPLACE;
	ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));
	ifa->ifa_family = lb_addr_af(addr);
	ifa->ifa_prefixlen = addr->family == LB_AF_INET ? 32 : 128;
	ifa->ifa_scope = RT_SCOPE_UNIVERSE;
	ifa->ifa_index = ifindex;
	if (addr->family == LB_AF_INET6)
		ifa->ifa_flags = IFA_F_NODAD;
	mnl_attr_put(nlh, IFA_LOCAL, addr->family == LB_AF_INET ? 4 : 16, addr->bytes);
	mnl_attr_put(nlh, IFA_ADDRESS, addr->family == LB_AF_INET ? 4 : 16, addr->bytes);
	ret = nl_talk(nlh, NULL, NULL);
	if ((type == RTM_NEWADDR && ret == -EEXIST) ||
	    (type == RTM_DELADDR && (ret == -EADDRNOTAVAIL || ret == -ENOENT)))
		ret = 0;
	return ret;
}

int lb_nl_addr_add(int ifindex, const struct lb_addr *addr)
{
	return addr_change(RTM_NEWADDR, ifindex, addr);
}

int lb_nl_addr_del(int ifindex, const struct lb_addr *addr)
{
	return addr_change(RTM_DELADDR, ifindex, addr);
}

/* --- next hops -------------------------------------------------------- */

struct route_info {
	int oif;
	bool has_gw;
	struct lb_addr gw;
	uint32_t mtu; /* RTAX_MTU of the route, 0 = none */
};

static int metrics_cb(const struct nlattr *attr, void *data)
{
	if (mnl_attr_get_type(attr) == RTAX_MTU && mnl_attr_validate(attr, MNL_TYPE_U32) >= 0)
		*(uint32_t *)data = mnl_attr_get_u32(attr);
	return MNL_CB_OK;
}

static int route_cb(const struct nlmsghdr *nlh, void *data)
{
	struct rtmsg *rtm = mnl_nlmsg_get_payload(nlh);
	const struct nlattr *tb[RTA_MAX + 1] = {};
	struct route_info *ri = data;

	attrs_parse(nlh, sizeof(*rtm), tb, RTA_MAX);
	if (tb[RTA_OIF])
		ri->oif = (int)mnl_attr_get_u32(tb[RTA_OIF]);
	if (tb[RTA_GATEWAY]) {
		ri->has_gw = true;
		ri->gw.family = rtm->rtm_family == AF_INET ? LB_AF_INET : LB_AF_INET6;
		memcpy(ri->gw.bytes, mnl_attr_get_payload(tb[RTA_GATEWAY]),
		       rtm->rtm_family == AF_INET ? 4 : 16);
	}
	if (tb[RTA_METRICS])
		mnl_attr_parse_nested(tb[RTA_METRICS], metrics_cb, &ri->mtu);
	return MNL_CB_OK;
}

struct link_info {
	bool found;
	uint32_t mtu;
	uint8_t mac[6];
	bool mac_ok; /* an Ethernet-like 6-byte address */
};

static int link_info_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct nlattr *tb[IFLA_MAX + 1] = {};
	struct link_info *li = data;

	attrs_parse(nlh, sizeof(struct ifinfomsg), tb, IFLA_MAX);
	li->found = true;
	if (tb[IFLA_MTU] && mnl_attr_validate(tb[IFLA_MTU], MNL_TYPE_U32) >= 0)
		li->mtu = mnl_attr_get_u32(tb[IFLA_MTU]);
	if (tb[IFLA_ADDRESS] && mnl_attr_get_payload_len(tb[IFLA_ADDRESS]) == 6) {
		memcpy(li->mac, mnl_attr_get_payload(tb[IFLA_ADDRESS]), 6);
		li->mac_ok = true;
	}
	return MNL_CB_OK;
}

struct neigh_info {
	bool valid;
	bool mac_ok;
	uint8_t mac[6];
};

static int neigh_info_cb(const struct nlmsghdr *nlh, void *data)
{
	struct ndmsg *ndm = mnl_nlmsg_get_payload(nlh);
	const struct nlattr *tb[NDA_MAX + 1] = {};
	struct neigh_info *ni = data;

	/* The kernel's NUD_VALID, which uapi does not export. */
	ni->valid = (ndm->ndm_state & (NUD_PERMANENT | NUD_NOARP | NUD_REACHABLE | NUD_PROBE |
				       NUD_STALE | NUD_DELAY)) != 0;
	attrs_parse(nlh, sizeof(*ndm), tb, NDA_MAX);
	if (tb[NDA_LLADDR] && mnl_attr_get_payload_len(tb[NDA_LLADDR]) == 6) {
		memcpy(ni->mac, mnl_attr_get_payload(tb[NDA_LLADDR]), 6);
		ni->mac_ok = true;
	}
	return MNL_CB_OK;
}

int lb_nl_nexthop(const struct lb_addr *dst, struct lb_nl_nexthop *out)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct route_info rt = {0};
	struct link_info li = {0};
	struct neigh_info ni = {0};
	struct ifinfomsg *ifm;
	struct ndmsg *ndm;
	struct rtmsg *rtm;
	int ret;

	memset(out, 0, sizeof(*out));
	nlh->nlmsg_type = RTM_GETROUTE;
	nlh->nlmsg_flags = NLM_F_REQUEST;
	rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));
	rtm->rtm_family = lb_addr_af(dst);
	rtm->rtm_dst_len = dst->family == LB_AF_INET ? 32 : 128;
	mnl_attr_put(nlh, RTA_DST, dst->family == LB_AF_INET ? 4 : 16, dst->bytes);
	ret = nl_talk(nlh, route_cb, &rt);
	if (ret)
		return ret;
	if (!rt.oif)
		return -ENETUNREACH;
	out->ifindex = rt.oif;
	out->gw = rt.has_gw ? rt.gw : *dst;

	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = RTM_GETLINK;
	nlh->nlmsg_flags = NLM_F_REQUEST;
	ifm = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifm));
	ifm->ifi_family = AF_UNSPEC;
	ifm->ifi_index = out->ifindex;
	ret = nl_talk(nlh, link_info_cb, &li);
	if (ret)
		return ret;
	if (!li.found || !li.mac_ok)
		return -EOPNOTSUPP; /* not Ethernet: leave it to the FIB */
	memcpy(out->smac, li.mac, 6);
	out->mtu = rt.mtu && rt.mtu < li.mtu ? rt.mtu : li.mtu;

	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = RTM_GETNEIGH;
	nlh->nlmsg_flags = NLM_F_REQUEST;
	ndm = mnl_nlmsg_put_extra_header(nlh, sizeof(*ndm));
	ndm->ndm_family = lb_addr_af(&out->gw);
	ndm->ndm_ifindex = out->ifindex;
	mnl_attr_put(nlh, NDA_DST, out->gw.family == LB_AF_INET ? 4 : 16, out->gw.bytes);
	ret = nl_talk(nlh, neigh_info_cb, &ni);
	if (ret)
		return ret == -ENOENT ? -EAGAIN : ret;
	if (!ni.valid || !ni.mac_ok)
		return -EAGAIN;
	memcpy(out->dmac, ni.mac, 6);
	return 0;
}

struct lb_nl_monitor {
	struct mnl_socket *nl;
};

struct lb_nl_monitor *lb_nl_monitor_open(void)
{
	struct lb_nl_monitor *m = calloc(1, sizeof(*m));
	int err = -ENOMEM;

	if (!m)
		goto fail;
	m->nl = mnl_socket_open2(NETLINK_ROUTE, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (!m->nl) {
		err = -errno;
		goto fail;
	}
	/* An overflow is reported as ENOBUFS on the next read (the default):
	 * lb_nl_monitor_read turns it into a full resync. */
	if (mnl_socket_bind(m->nl,
			    RTMGRP_LINK | RTMGRP_NEIGH | RTMGRP_IPV4_ROUTE | RTMGRP_IPV6_ROUTE,
			    MNL_SOCKET_AUTOPID) < 0) {
		err = -errno;
		goto fail;
	}
	return m;
fail:
	if (m && m->nl)
		mnl_socket_close(m->nl);
	free(m);
	errno = -err;
	return NULL;
}

void lb_nl_monitor_close(struct lb_nl_monitor *m)
{
	if (!m)
		return;
	mnl_socket_close(m->nl);
	free(m);
}

int lb_nl_monitor_fd(const struct lb_nl_monitor *m)
{
	return mnl_socket_get_fd(m->nl);
}

struct monitor_ctx {
	int events;
	void (*neigh)(void *ctx, int ifindex, const struct lb_addr *addr);
	void *ctx;
};

static int monitor_cb(const struct nlmsghdr *nlh, void *data)
{
	struct monitor_ctx *mc = data;

	switch (nlh->nlmsg_type) {
	case RTM_NEWNEIGH:
	case RTM_DELNEIGH: {
		struct ndmsg *ndm = mnl_nlmsg_get_payload(nlh);
		const struct nlattr *tb[NDA_MAX + 1] = {};
		struct lb_addr a = {0};
		size_t len;

		if (nlh->nlmsg_len < NLMSG_LENGTH(sizeof(*ndm)))
			break;
		attrs_parse(nlh, sizeof(*ndm), tb, NDA_MAX);
		if (!tb[NDA_DST] || (ndm->ndm_family != AF_INET && ndm->ndm_family != AF_INET6))
			break;
		len = ndm->ndm_family == AF_INET ? 4 : 16;
		if (mnl_attr_get_payload_len(tb[NDA_DST]) != len)
			break;
		a.family = ndm->ndm_family == AF_INET ? LB_AF_INET : LB_AF_INET6;
		memcpy(a.bytes, mnl_attr_get_payload(tb[NDA_DST]), len);
		mc->events |= LB_NL_EV_NEIGH;
		if (mc->neigh)
			mc->neigh(mc->ctx, ndm->ndm_ifindex, &a);
		break;
	}
	case RTM_NEWROUTE:
	case RTM_DELROUTE:
	case RTM_NEWLINK:
	case RTM_DELLINK:
		mc->events |= LB_NL_EV_ROUTE;
		break;
	default:
		break;
	}
	return MNL_CB_OK;
}

int lb_nl_monitor_read(struct lb_nl_monitor *m,
		       void (*neigh)(void *ctx, int ifindex, const struct lb_addr *addr), void *ctx)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct monitor_ctx mc = {.neigh = neigh, .ctx = ctx};
	int n;

	/* Bounded: a host that churns neighbours faster than we read is
	 * served a full resync (ROUTE) instead of an endless drain. */
	for (int i = 0; i < 256; i++) {
		n = (int)mnl_socket_recvfrom(m->nl, buf, sizeof(buf));
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
				return mc.events;
			/* ENOBUFS (overrun), ENOSPC (a message cut short)
			 * or worse: events were lost, resolve everything. */
			return mc.events | LB_NL_EV_ROUTE;
		}
		mnl_cb_run(buf, (size_t)n, 0, 0, monitor_cb, &mc);
	}
	return mc.events | LB_NL_EV_ROUTE;
}
