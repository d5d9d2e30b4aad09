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

struct addr_req {
	int ifindex;
	int family; /* LB_AF_* */
	bool found;
	struct lb_addr out;
};

static int addr_attr_cb(const struct nlattr *attr, void *data)
{
	const struct nlattr **tb = data;
	int type = mnl_attr_get_type(attr);

	if (mnl_attr_type_valid(attr, IFA_MAX) >= 0)
		tb[type] = attr;
	return MNL_CB_OK;
}

static int addr_cb(const struct nlmsghdr *nlh, void *data)
{
	struct ifaddrmsg *ifa = mnl_nlmsg_get_payload(nlh);
	const struct nlattr *tb[IFA_MAX + 1] = {};
	struct addr_req *req = data;
	int af = req->family == LB_AF_INET ? AF_INET : AF_INET6;

	if (req->found || (int)ifa->ifa_index != req->ifindex || ifa->ifa_family != af ||
	    ifa->ifa_scope != RT_SCOPE_UNIVERSE || (ifa->ifa_flags & IFA_F_TENTATIVE))
		return MNL_CB_OK;
	mnl_attr_parse(nlh, sizeof(*ifa), addr_attr_cb, tb);
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

struct route_req {
	struct lb_addr nexthop;
	bool has_gw;
	int oif;
};

static int route_attr_cb(const struct nlattr *attr, void *data)
{
	const struct nlattr **tb = data;

	if (mnl_attr_type_valid(attr, RTA_MAX) >= 0)
		tb[mnl_attr_get_type(attr)] = attr;
	return MNL_CB_OK;
}

static int route_cb(const struct nlmsghdr *nlh, void *data)
{
	struct rtmsg *rtm = mnl_nlmsg_get_payload(nlh);
	const struct nlattr *tb[RTA_MAX + 1] = {};
	struct route_req *req = data;

	mnl_attr_parse(nlh, sizeof(*rtm), route_attr_cb, tb);
	if (tb[RTA_OIF])
		req->oif = mnl_attr_get_u32(tb[RTA_OIF]);
	if (tb[RTA_GATEWAY]) {
		req->has_gw = true;
		req->nexthop.family = rtm->rtm_family == AF_INET ? LB_AF_INET : LB_AF_INET6;
		memcpy(req->nexthop.bytes, mnl_attr_get_payload(tb[RTA_GATEWAY]),
		       rtm->rtm_family == AF_INET ? 4 : 16);
	}
	return MNL_CB_OK;
}

int lb_nl_route_get(const struct lb_addr *dst, struct lb_addr *nexthop, int *oif)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct route_req req = {0};
	struct rtmsg *rtm;
	int ret;

	nlh->nlmsg_type = RTM_GETROUTE;
	nlh->nlmsg_flags = NLM_F_REQUEST;
	rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));
	rtm->rtm_family = lb_addr_af(dst);
	rtm->rtm_dst_len = dst->family == LB_AF_INET ? 32 : 128;
	mnl_attr_put(nlh, RTA_DST, dst->family == LB_AF_INET ? 4 : 16, dst->bytes);
	ret = nl_talk(nlh, route_cb, &req);
	if (ret)
		return ret;
	if (!req.oif)
		return -ENETUNREACH;
	*nexthop = req.has_gw ? req.nexthop : *dst;
	*oif = req.oif;
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

static int neigh_cb(const struct nlmsghdr *nlh, void *data)
{
	struct ndmsg *ndm = mnl_nlmsg_get_payload(nlh);

	/* The kernel's NUD_VALID, which uapi does not export. */
	*(bool *)data = (ndm->ndm_state & (NUD_PERMANENT | NUD_NOARP | NUD_REACHABLE | NUD_PROBE |
					   NUD_STALE | NUD_DELAY)) != 0;
	return MNL_CB_OK;
}

bool lb_nl_neigh_valid(int ifindex, const struct lb_addr *addr)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct ndmsg *ndm;
	bool valid = false;

	nlh->nlmsg_type = RTM_GETNEIGH;
	nlh->nlmsg_flags = NLM_F_REQUEST;
	ndm = mnl_nlmsg_put_extra_header(nlh, sizeof(*ndm));
	ndm->ndm_family = lb_addr_af(addr);
	ndm->ndm_ifindex = ifindex;
	mnl_attr_put(nlh, NDA_DST, addr->family == LB_AF_INET ? 4 : 16, addr->bytes);
	if (nl_talk(nlh, neigh_cb, &valid))
		return false;
	return valid;
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
