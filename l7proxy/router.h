/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * router.h - which route (and so which cluster) a request goes to.
 *
 * Routes are tried in config order and the first match wins. A route
 * matches when its authority matches (empty: any; "*.example.com": any
 * subdomain of example.com, not example.com itself; otherwise the exact
 * name, case-insensitively, with the request's port ignored) and the
 * request path starts with its path_prefix (byte-wise). Linear in the
 * number of routes: fine for the tens a PoP has; a trie is the next step
 * if configs grow to thousands.
 */
#ifndef PORTICO_L7_ROUTER_H
#define PORTICO_L7_ROUTER_H

#include <stddef.h>

#include "config.h"

/*
 * The first route of cfg matching authority (may be NULL: HTTP/1.0 with no
 * Host) and path, or NULL when none does. Borrowed from cfg.
 */
const struct l7_route_cfg *router_match(const struct l7_config *cfg, const char *authority,
					size_t authority_len, const char *path, size_t path_len);

/* The host part of an authority: "[::1]:443" -> "[::1]", "a.b:80" -> "a.b".
 * Returns its length. */
size_t router_host_len(const char *authority, size_t len);

#endif
