// SPDX-License-Identifier: GPL-2.0-only
#include "vipspec.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

int vipspec_parse(const char *s, struct l4lb_vip_key *k, char *msg, size_t len)
{
	char addr[LB_ADDR_STRLEN + 2], portbuf[8];
	const char *colon, *slash, *proto = "tcp", *astart = s;
	size_t alen, plen;
	int port, p;

	memset(k, 0, sizeof(*k));
	slash = strchr(s, '/');
	if (slash)
		proto = slash + 1;
	if (*s == '[') {
		const char *close = strchr(s, ']');

		if (!close || close[1] != ':') {
			snprintf(msg, len, "VIP \"%s\": expected [IPv6]:PORT", s);
			return -EINVAL;
		}
		astart = s + 1;
		alen = close - astart;
		colon = close + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon || (slash && colon > slash) || memchr(s, ':', colon - s)) {
			snprintf(msg, len, "VIP \"%s\": expected ADDR:PORT[/PROTO] (IPv6 in [ ])",
				 s);
			return -EINVAL;
		}
		alen = colon - s;
	}
	if (alen == 0 || alen >= sizeof(addr)) {
		snprintf(msg, len, "VIP \"%s\": bad address", s);
		return -EINVAL;
	}
	memcpy(addr, astart, alen);
	addr[alen] = '\0';
	if (lb_addr_parse(addr, &k->addr)) {
		snprintf(msg, len, "VIP address \"%s\": not an IPv4 or IPv6 address", addr);
		return -EINVAL;
	}
	plen = slash ? (size_t)(slash - colon - 1) : strlen(colon + 1);
	if (plen == 0 || plen >= sizeof(portbuf)) {
		snprintf(msg, len, "VIP \"%s\": bad port", s);
		return -EINVAL;
	}
	memcpy(portbuf, colon + 1, plen);
	portbuf[plen] = '\0';
	port = lb_port_parse(portbuf);
	if (port < 0) {
		snprintf(msg, len, "VIP port \"%s\": must be 1-65535", portbuf);
		return -EINVAL;
	}
	p = lb_proto_parse(proto);
	if (p < 0) {
		snprintf(msg, len, "VIP protocol \"%s\": must be tcp or udp", proto);
		return -EINVAL;
	}
	k->port = (uint16_t)port;
	k->proto = (uint8_t)p;
	return 0;
}

const char *vipspec_str(const struct l4lb_vip_key *k, char *buf, size_t len)
{
	char a[LB_ADDR_STRLEN];
	int v6 = k->addr.family == LB_AF_INET6;

	snprintf(buf, len, "%s%s%s:%u/%s", v6 ? "[" : "", lb_addr_str(&k->addr, a, sizeof(a)),
		 v6 ? "]" : "", k->port, lb_proto_str(k->proto));
	return buf;
}
