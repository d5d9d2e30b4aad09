/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * vipspec.h - lbctl's VIP notation: ADDR:PORT[/PROTO], with IPv6 in
 * brackets: 192.0.2.10:443, [2001:db8::10]:443/tcp, 192.0.2.10:53/udp.
 */
#ifndef PORTICO_VIPSPEC_H
#define PORTICO_VIPSPEC_H

#include <stddef.h>

#include "l4lb.h"

/*
 * Parse s into *k. Returns 0, or -EINVAL with a message naming the bad
 * part in msg (len bytes).
 */
int vipspec_parse(const char *s, struct l4lb_vip_key *k, char *msg, size_t len);

/* Format k as a VIP spec into buf; returns buf. */
const char *vipspec_str(const struct l4lb_vip_key *k, char *buf, size_t len);

#endif
