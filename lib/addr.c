// SPDX-License-Identifier: GPL-2.0-only
#include "addr.h"
#include "lb_abi.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int lb_addr_parse(const char *s, struct lb_addr *out)
{
	memset(out, 0, sizeof(*out));
	if (!s)
		return -EINVAL;
	if (inet_pton(AF_INET, s, out->bytes) == 1) {
		out->family = LB_AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, s, out->bytes) == 1) {
		out->family = LB_AF_INET6;
		return 0;
	}
	return -EINVAL;
}

const char *lb_addr_str(const struct lb_addr *a, char *buf, size_t len)
{
	if (!inet_ntop(lb_addr_af(a), a->bytes, buf, len))
		snprintf(buf, len, "?");
	return buf;
}

bool lb_addr_equal(const struct lb_addr *a, const struct lb_addr *b)
{
	size_t n = a->family == LB_AF_INET ? 4 : 16;

	return a->family == b->family && memcmp(a->bytes, b->bytes, n) == 0;
}

int lb_addr_af(const struct lb_addr *a)
{
	return a->family == LB_AF_INET ? AF_INET : AF_INET6;
}

int lb_proto_parse(const char *s)
{
	if (s && strcmp(s, "tcp") == 0)
		return IPPROTO_TCP;
	if (s && strcmp(s, "udp") == 0)
		return IPPROTO_UDP;
	return -EINVAL;
}

const char *lb_proto_str(int proto)
{
	return proto == IPPROTO_TCP ? "tcp" : proto == IPPROTO_UDP ? "udp" : "?";
}

int lb_port_parse(const char *s)
{
	char *end;
	long v;

	if (!s || !*s)
		return -EINVAL;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v < 1 || v > 65535)
		return -EINVAL;
	return (int)v;
}

int lb_hostport_split(const char *s, size_t len, char *host, size_t hostcap, char *port,
		      size_t portcap)
{
	const char *hstart = s, *colon;
	size_t hlen, plen;

	if (len && s[0] == '[') {
		const char *close = memchr(s, ']', len);

		if (!close || (size_t)(close - s) + 1 >= len || close[1] != ':')
			return -EINVAL;
		hstart = s + 1;
		hlen = (size_t)(close - hstart);
		colon = close + 1;
	} else {
		colon = NULL;
		for (size_t i = 0; i < len; i++)
			if (s[i] == ':') {
				if (colon)
					return -EINVAL; /* IPv6 must be bracketed */
				colon = s + i;
			}
		if (!colon)
			return -EINVAL;
		hlen = (size_t)(colon - s);
	}
	plen = len - (size_t)(colon + 1 - s);
	if (hlen >= hostcap || plen >= portcap)
		return -E2BIG;
	memcpy(host, hstart, hlen);
	host[hlen] = '\0';
	memcpy(port, colon + 1, plen);
	port[plen] = '\0';
	return 0;
}

unsigned lb_addr_sockaddr(const struct lb_addr *a, uint16_t port, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (a->family == LB_AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		memcpy(&s4->sin_addr, a->bytes, 4);
		return sizeof(*s4);
	}
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

	s6->sin6_family = AF_INET6;
	s6->sin6_port = htons(port);
	memcpy(&s6->sin6_addr, a->bytes, 16);
	return sizeof(*s6);
}

int lb_addr_from_sockaddr(const struct sockaddr_storage *ss, struct lb_addr *a, uint16_t *port)
{
	memset(a, 0, sizeof(*a));
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;

		a->family = LB_AF_INET;
		memcpy(a->bytes, &s4->sin_addr, 4);
		if (port)
			*port = ntohs(s4->sin_port);
		return 0;
	}
	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;

		/* A v4-mapped peer (dual-stack listener) is an IPv4 peer. */
		if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
			a->family = LB_AF_INET;
			memcpy(a->bytes, &s6->sin6_addr.s6_addr[12], 4);
		} else {
			a->family = LB_AF_INET6;
			memcpy(a->bytes, &s6->sin6_addr, 16);
		}
		if (port)
			*port = ntohs(s6->sin6_port);
		return 0;
	}
	return -EAFNOSUPPORT;
}
