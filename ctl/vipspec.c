// SPDX-License-Identifier: GPL-2.0-only
#include "vipspec.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

int vipspec_parse(const char *s, struct l4lb_vip_key *k, char *msg, size_t len)
{
	char addr[LB_ADDR_STRLEN], portbuf[8];
	const char *slash = strchr(s, '/');
	const char *proto = slash ? slash + 1 : "tcp";
	int port, p, rc;

	memset(k, 0, sizeof(*k));
	rc = lb_hostport_split(s, slash ? (size_t)(slash - s) : strlen(s), addr, sizeof(addr),
			       portbuf, sizeof(portbuf));
	if (rc == -EINVAL) {
		snprintf(msg, len, "VIP \"%s\": expected %s", s,
			 *s == '[' ? "[IPv6]:PORT" : "ADDR:PORT[/PROTO] (IPv6 in [ ])");
		return -EINVAL;
	}
	if (rc || !addr[0]) {
		snprintf(msg, len, "VIP \"%s\": bad address", s);
		return -EINVAL;
	}
	if (lb_addr_parse(addr, &k->addr)) {
		snprintf(msg, len, "VIP address \"%s\": not an IPv4 or IPv6 address", addr);
		return -EINVAL;
	}
	if (!portbuf[0]) {
		snprintf(msg, len, "VIP \"%s\": bad port", s);
		return -EINVAL;
	}
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
