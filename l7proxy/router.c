// SPDX-License-Identifier: GPL-2.0-only
#include "router.h"

#include <string.h>
#include <strings.h>

size_t router_host_len(const char *a, size_t len)
{
	if (len && a[0] == '[') {
		const char *end = memchr(a, ']', len);

		return end ? (size_t)(end - a) + 1 : len;
	}
	for (size_t i = len; i > 0; i--)
		if (a[i - 1] == ':')
			return i - 1;
	return len;
}

static int host_matches(const char *pattern, const char *host, size_t hlen)
{
	size_t plen = strlen(pattern);

	if (pattern[0] == '*') {
		/* "*.example.com": at least one label before ".example.com". */
		size_t slen = plen - 1;

		return hlen > slen && strncasecmp(host + hlen - slen, pattern + 1, slen) == 0;
	}
	return hlen == plen && strncasecmp(host, pattern, plen) == 0;
}

const struct l7_route_cfg *router_match(const struct l7_config *cfg, const char *authority,
					size_t authority_len, const char *path, size_t path_len)
{
	size_t hlen = authority ? router_host_len(authority, authority_len) : 0;

	/* A trailing dot names the same host (RFC 1034 §3.1). */
	if (hlen && authority[hlen - 1] == '.')
		hlen--;
	for (size_t i = 0; i < cfg->n_routes; i++) {
		const struct l7_route_cfg *r = &cfg->routes[i];
		size_t plen = strlen(r->path_prefix);

		if (r->authority[0] && (!authority || !host_matches(r->authority, authority, hlen)))
			continue;
		if (path_len < plen || memcmp(path, r->path_prefix, plen) != 0)
			continue;
		return r;
	}
	return NULL;
}
