/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * addr.h - IP addresses as the balancer stores them: 16 bytes in network
 * order plus a family (LB_AF_INET / LB_AF_INET6, see xdp/lb_abi.h); an
 * IPv4 address fills the first 4 bytes, the rest are zero.
 */
#ifndef PORTICO_ADDR_H
#define PORTICO_ADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct lb_addr {
	uint8_t bytes[16];
	uint8_t family; /* LB_AF_INET or LB_AF_INET6 */
};

#define LB_ADDR_STRLEN 46 /* INET6_ADDRSTRLEN */

/*
 * Parse a textual IPv4 or IPv6 address (no port, no prefix). Returns 0 and
 * fills *out, or -EINVAL for anything else.
 */
int lb_addr_parse(const char *s, struct lb_addr *out);

/* Format into buf (at least LB_ADDR_STRLEN bytes); returns buf. */
const char *lb_addr_str(const struct lb_addr *a, char *buf, size_t len);

/* Field-by-field equality (family and the bytes that family uses). */
bool lb_addr_equal(const struct lb_addr *a, const struct lb_addr *b);

/* Host AF_INET / AF_INET6 for the address's family. */
int lb_addr_af(const struct lb_addr *a);

/*
 * Fill *ss with a and port (host order); returns the length to pass to
 * connect/bind. from_sockaddr does the reverse (0, or -EAFNOSUPPORT).
 */
struct sockaddr_storage;
unsigned lb_addr_sockaddr(const struct lb_addr *a, uint16_t port, struct sockaddr_storage *ss);
int lb_addr_from_sockaddr(const struct sockaddr_storage *ss, struct lb_addr *a, uint16_t *port);

/*
 * Parse "proto" names: "tcp" / "udp". Returns IPPROTO_TCP / IPPROTO_UDP, or
 * -EINVAL.
 */
int lb_proto_parse(const char *s);
const char *lb_proto_str(int proto);

/*
 * Parse a port "1".."65535". Returns the port (host order) or -EINVAL.
 */
int lb_port_parse(const char *s);

/*
 * Split the first len bytes of s, "HOST:PORT" or "[HOST6]:PORT", into
 * NUL-terminated host and port strings (either may come out empty; the
 * caller validates them). Returns 0, -EINVAL if the shape is wrong (no
 * port separator, an unbracketed IPv6 address), -E2BIG if a part does not
 * fit its buffer.
 */
int lb_hostport_split(const char *s, size_t len, char *host, size_t hostcap, char *port,
		      size_t portcap);

#endif
