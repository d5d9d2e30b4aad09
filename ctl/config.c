// SPDX-License-Identifier: GPL-2.0-only
#include "config.h"
#include "lb_hash.h"
#include "cfgfile.h"
#include "maglev.h"
#include "vipspec.h"

#include <errno.h>
#include <http_parser.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DEFAULT_ADMIN_SOCKET "/run/portico/lbd.sock"
#define DEFAULT_PIN_DIR	     "/sys/fs/bpf/portico/" /* + the interface */
#define MAX_BGP_NEIGHBORS    16
#define DEFAULT_PROXY_SOCKET "/run/portico/l7proxy.sock"

static const char *const hc_kinds[] = {"none", "tcp", "http", "grpc"};

void lbd_health_default(struct lbd_health_cfg *h, const struct l4lb_vip_key *k)
{
	*h = (struct lbd_health_cfg){
	    .kind = k->proto == IPPROTO_TCP ? LBD_HC_TCP : LBD_HC_NONE,
	    .port = k->port,
	    .interval_ms = 1000,
	    .fast_interval_ms = 250,
	    .timeout_ms = 500,
	    .rise = 2,
	    .fall = 2,
	    .expect_status = 200,
	    .path = "/",
	};
}

/*
 * A VIP's health group. Defaults: TCP connect for TCP VIPs, none for UDP
 * ones (probes are TCP: a UDP VIP is checked only through a TCP port its
 * hosts also serve, set explicitly); every 1 s, 500 ms timeout, 2 to rise
 * and 2 to fall; TLS when the port is 443.
 */
static int parse_health(const config_setting_t *vs, struct lbd_vip_cfg *v, const char *vipname,
			const char *file, char **err)
{
	static const char *const keys[] = {
	    "kind", "tls",  "port", "interval_ms",   "fast_interval_ms", "timeout_ms", "rise",
	    "fall", "path", "host", "expect_status", "service",		 NULL};
	const config_setting_t *hs = config_setting_get_member(vs, "health");
	struct lbd_health_cfg *h = &v->health;
	unsigned kind, def = v->key.proto == IPPROTO_TCP ? LBD_HC_TCP : LBD_HC_NONE;
	uint32_t port;
	int rc;

	lbd_health_default(h, &v->key);
	if (!hs)
		return 0;
	if (!config_setting_is_group(hs))
		return cfg_fail(err, file, hs, "vip %s: \"health\" must be a group { ... }",
				vipname);
	if ((rc = cfg_known(hs, keys, "health", file, err)) ||
	    (rc = cfg_enum(hs, "kind", hc_kinds, 4, def, &kind, file, err)) ||
	    (rc = cfg_uint(hs, "port", &port, v->key.port, 1, 65535, file, err)) ||
	    (rc = cfg_uint(hs, "interval_ms", &h->interval_ms, 1000, 20, 3600000, file, err)) ||
	    (rc = cfg_uint(hs, "fast_interval_ms", &h->fast_interval_ms,
			   h->interval_ms / 4 > 20 ? h->interval_ms / 4 : 20, 20, 3600000, file,
			   err)) ||
	    (rc = cfg_uint(hs, "timeout_ms", &h->timeout_ms, 500, 10, 60000, file, err)) ||
	    (rc = cfg_uint(hs, "rise", &h->rise, 2, 1, 100, file, err)) ||
	    (rc = cfg_uint(hs, "fall", &h->fall, 2, 1, 100, file, err)) ||
	    (rc = cfg_uint(hs, "expect_status", &h->expect_status, 200, 100, 599, file, err)) ||
	    (rc = cfg_bool(hs, "tls", &h->tls, port == 443, file, err)) ||
	    (rc = cfg_str_copy(hs, "path", h->path, sizeof(h->path), "/", false, file, err)) ||
	    (rc = cfg_str_copy(hs, "host", h->host, sizeof(h->host), "", false, file, err)) ||
	    (rc =
		 cfg_str_copy(hs, "service", h->service, sizeof(h->service), "", false, file, err)))
		return rc;
	h->kind = kind;
	h->port = (uint16_t)port;
	if (h->path[0] != '/' || strpbrk(h->path, " \r\n\t"))
		return cfg_fail(err, file, config_setting_get_member(hs, "path"),
				"vip %s: health path \"%s\" must start with / and hold no spaces",
				vipname, h->path);
	if (strpbrk(h->host, " \r\n\t/"))
		return cfg_fail(err, file, config_setting_get_member(hs, "host"),
				"vip %s: health host \"%s\" is not a host name", vipname, h->host);
	if (h->tls && h->kind == LBD_HC_TCP)
		return cfg_fail(err, file, config_setting_get_member(hs, "tls"),
				"vip %s: tls needs kind \"http\" or \"grpc\"", vipname);
	return 0;
}

static int parse_addr(const config_setting_t *parent, const char *what, struct lb_addr *out,
		      const char *file, char **err)
{
	const char *s = NULL;
	int rc = cfg_str(parent, "address", &s, true, file, err);

	if (rc)
		return rc;
	if (lb_addr_parse(s, out))
		return cfg_fail(err, file, config_setting_get_member(parent, "address"),
				"%s address \"%s\": not an IPv4 or IPv6 address", what, s);
	return 0;
}

static int parse_reals(const config_setting_t *vs, struct lbd_vip_cfg *vip, const char *vipname,
		       const char *file, char **err)
{
	static const char *const real_keys[] = {"address", "weight", NULL};
	config_setting_t *list = config_setting_get_member(vs, "reals");
	int n, rc;

	if (!list)
		return 0;
	if (!config_setting_is_list(list) && !config_setting_is_array(list))
		return cfg_fail(err, file, list, "vip %s: \"reals\" must be a list", vipname);
	n = config_setting_length(list);
	vip->reals = calloc(n ? n : 1, sizeof(*vip->reals));
	if (!vip->reals)
		return -ENOMEM;
	for (int i = 0; i < n; i++) {
		config_setting_t *rs = config_setting_get_elem(list, i);
		struct lbd_real_cfg *r = &vip->reals[i];
		char buf[LB_ADDR_STRLEN];

		if (!config_setting_is_group(rs))
			return cfg_fail(err, file, rs, "vip %s: each real must be a group { ... }",
					vipname);
		rc = cfg_known(rs, real_keys, "real", file, err);
		if (!rc)
			rc = parse_addr(rs, "real", &r->addr, file, err);
		if (rc)
			return rc;
		/* A real of the other family than its VIP's is fine: the
		 * underlay is the real's (IPv4 in IPv6, IPv6 in IPv4). */
		lb_addr_str(&r->addr, buf, sizeof(buf));
		rc = cfg_uint(rs, "weight", &r->weight, 1, 0, LBD_WEIGHT_MAX, file, err);
		if (rc)
			return rc;
		for (int j = 0; j < i; j++)
			if (lb_addr_equal(&vip->reals[j].addr, &r->addr))
				return cfg_fail(err, file, rs, "vip %s: real %s listed twice",
						vipname, buf);
		vip->n_reals++;
	}
	return 0;
}

/* Distinct real addresses over all VIPs (each needs a real id; id 0 is
 * reserved). O(n^2) in reals: fine for configs of thousands. */
static int check_real_count(config_setting_t *list, const struct lbd_config *out, const char *file,
			    char **err)
{
	size_t distinct = 0;

	for (size_t i = 0; i < out->n_vips; i++)
		for (size_t k = 0; k < out->vips[i].n_reals; k++) {
			const struct lb_addr *a = &out->vips[i].reals[k].addr;
			bool seen = false;

			for (size_t j = 0; j <= i && !seen; j++)
				for (size_t m = 0; m < (j < i ? out->vips[j].n_reals : k) && !seen;
				     m++)
					seen = lb_addr_equal(&out->vips[j].reals[m].addr, a);
			distinct += !seen;
		}
	if (distinct > LB_MAX_REALS_DEFAULT - 1)
		return cfg_fail(err, file, list,
				"%zu distinct reals: the balancer holds at most %d", distinct,
				LB_MAX_REALS_DEFAULT - 1);
	return 0;
}

static int parse_vips(config_t *cf, struct lbd_config *out, const char *file, char **err)
{
	static const char *const vip_keys[] = {"address", "port",   "proto",	   "encap", "hash",
					       "reals",	  "health", "min_healthy", NULL};
	config_setting_t *list = config_lookup(cf, "vips");
	int n, rc;

	if (!list)
		return 0;
	if (!config_setting_is_list(list))
		return cfg_fail(err, file, list, "\"vips\" must be a list ( { ... }, ... )");
	n = config_setting_length(list);
	/* The balancer's tables have a fixed size: a config that cannot fit is
	 * refused here, before anything is touched. */
	if (n > LB_MAX_VIPS_DEFAULT)
		return cfg_fail(err, file, list, "%d vips: the balancer holds at most %d", n,
				LB_MAX_VIPS_DEFAULT);
	out->vips = calloc(n ? n : 1, sizeof(*out->vips));
	if (!out->vips)
		return -ENOMEM;
	for (int i = 0; i < n; i++) {
		config_setting_t *vs = config_setting_get_elem(list, i);
		struct lbd_vip_cfg *v = &out->vips[i];
		const char *proto = NULL, *encap = NULL, *hash = NULL;
		char name[LB_ADDR_STRLEN + 16];
		uint32_t port;
		int p;

		if (!config_setting_is_group(vs))
			return cfg_fail(err, file, vs, "each vip must be a group { ... }");
		out->n_vips++;
		rc = cfg_known(vs, vip_keys, "vip", file, err);
		if (rc)
			return rc;
		rc = parse_addr(vs, "vip", &v->key.addr, file, err);
		if (!rc)
			rc = cfg_uint(vs, "port", &port, 0, 1, 65535, file, err);
		if (!rc && !config_setting_get_member(vs, "port"))
			rc = cfg_fail(err, file, vs, "vip: missing setting \"port\"");
		if (!rc)
			rc = cfg_str(vs, "proto", &proto, false, file, err);
		if (rc)
			return rc;
		p = lb_proto_parse(proto ? proto : "tcp");
		if (p < 0)
			return cfg_fail(err, file, config_setting_get_member(vs, "proto"),
					"vip: proto \"%s\": must be \"tcp\" or \"udp\"", proto);
		v->key.port = (uint16_t)port;
		v->key.proto = (uint8_t)p;
		vipspec_str(&v->key, name, sizeof(name));
		rc = cfg_str(vs, "encap", &encap, false, file, err);
		if (rc)
			return rc;
		/* "ipip": IPIP toward IPv4 reals, IP6IP6 toward IPv6 ones;
		 * "gue": IP in UDP to gue_port (lb_abi.h). */
		if (encap && !strcmp(encap, "gue"))
			v->flags |= LB_VIP_F_ENCAP_GUE;
		else if (encap && strcmp(encap, "ipip"))
			return cfg_fail(err, file, config_setting_get_member(vs, "encap"),
					"vip %s: encap \"%s\": must be \"ipip\" (IPIP / IP6IP6) "
					"or \"gue\"",
					name, encap);
		rc = cfg_str(vs, "hash", &hash, false, file, err);
		if (rc)
			return rc;
		if (hash && !strcmp(hash, "3-tuple"))
			v->flags |= LB_VIP_F_HASH_3TUPLE;
		else if (hash && strcmp(hash, "5-tuple"))
			return cfg_fail(err, file, config_setting_get_member(vs, "hash"),
					"vip %s: hash \"%s\": must be \"5-tuple\" or \"3-tuple\"",
					name, hash);
		for (int j = 0; j < i; j++) {
			const struct lbd_vip_cfg *o = &out->vips[j];

			if (lb_addr_equal(&o->key.addr, &v->key.addr) &&
			    o->key.port == v->key.port && o->key.proto == v->key.proto)
				return cfg_fail(err, file, vs, "vip %s defined twice", name);
			/* Fragments carry no port: a 3-tuple VIP takes all of its
			 * address and protocol, so it cannot share them. */
			if (((v->flags | o->flags) & LB_VIP_F_HASH_3TUPLE) &&
			    lb_addr_equal(&o->key.addr, &v->key.addr) &&
			    o->key.proto == v->key.proto)
				return cfg_fail(
				    err, file, vs,
				    "vip %s: a 3-tuple vip takes every fragment to its "
				    "address and protocol, so it cannot share them with "
				    "another vip (port %u)",
				    name, o->key.port);
		}
		rc = parse_reals(vs, v, name, file, err);
		if (!rc)
			rc = parse_health(vs, v, name, file, err);
		if (!rc)
			rc = cfg_uint(vs, "min_healthy", &v->min_healthy, 1, 0, 4096, file, err);
		if (rc)
			return rc;
		/* More than it has: the address would never be announced. */
		if (config_setting_get_member(vs, "min_healthy") && v->min_healthy > v->n_reals)
			return cfg_fail(err, file, config_setting_get_member(vs, "min_healthy"),
					"vip %s: min_healthy %u but only %zu reals: it would never "
					"be announced",
					name, v->min_healthy, v->n_reals);
	}
	return check_real_count(list, out, file, err);
}

static const char *fam_name(uint8_t family)
{
	return family == LB_AF_INET ? "IPv4" : "IPv6";
}

/* An address member that must be of one family (0 if absent). */
static int addr_of_family(const config_setting_t *parent, const char *name, uint8_t family,
			  struct lb_addr *out, const char *what, const char *file, char **err)
{
	int rc = cfg_addr(parent, name, out, file, err);
	char buf[LB_ADDR_STRLEN];

	if (rc || !out->family || out->family == family)
		return rc;
	return cfg_fail(err, file, config_setting_get_member(parent, name),
			"%s %s is an %s address; it must be %s", what,
			lb_addr_str(out, buf, sizeof(buf)), fam_name(out->family),
			fam_name(family));
}

static int check_asn(const config_setting_t *parent, const char *name, uint32_t asn,
		     const char *file, char **err)
{
	/* RFC 7607: AS 0 is never valid; RFC 6793: 23456 (AS_TRANS) only
	 * stands in for a 4-octet AS toward old speakers. */
	if (asn == 0 || asn == 23456)
		return cfg_fail(err, file, config_setting_get_member(parent, name),
				"%s %u is reserved (%s)", name, asn,
				asn ? "AS_TRANS, RFC 6793" : "RFC 7607");
	return 0;
}

static int parse_neighbor(const config_setting_t *ns, struct lbd_bgp_neighbor_cfg *nb,
			  const struct lbd_bgp_cfg *bgp, const char *file, char **err)
{
	static const char *const keys[] = {"address",	    "asn",	   "port",
					   "passive",	    "families",	   "hold_time",
					   "local_address", "description", NULL};
	const config_setting_t *fams = config_setting_get_member(ns, "families");
	char buf[LB_ADDR_STRLEN];
	uint32_t port;
	int rc;

	if (!config_setting_is_group(ns))
		return cfg_fail(err, file, ns, "each bgp neighbor must be a group { ... }");
	if ((rc = cfg_known(ns, keys, "bgp neighbor", file, err)) ||
	    (rc = parse_addr(ns, "bgp neighbor", &nb->addr, file, err)))
		return rc;
	lb_addr_str(&nb->addr, buf, sizeof(buf));
	if (!config_setting_get_member(ns, "asn"))
		return cfg_fail(err, file, ns, "bgp neighbor %s: missing setting \"asn\"", buf);
	if ((rc = cfg_uint(ns, "asn", &nb->asn, 0, 0, UINT32_MAX, file, err)) ||
	    (rc = check_asn(ns, "asn", nb->asn, file, err)) ||
	    (rc = cfg_uint(ns, "port", &port, 179, 1, 65535, file, err)) ||
	    (rc = cfg_bool(ns, "passive", &nb->passive, false, file, err)) ||
	    (rc = cfg_uint(ns, "hold_time", &nb->hold_time, 30, 0, 65535, file, err)) ||
	    (rc = addr_of_family(ns, "local_address", nb->addr.family, &nb->local, "local_address",
				 file, err)) ||
	    (rc = cfg_str_copy(ns, "description", nb->description, sizeof(nb->description), "",
			       false, file, err)))
		return rc;
	nb->port = (uint16_t)port;
	if (nb->hold_time && nb->hold_time < 3) /* RFC 4271 4.2 */
		return cfg_fail(err, file, config_setting_get_member(ns, "hold_time"),
				"bgp neighbor %s: hold_time must be 0 or at least 3 seconds (RFC "
				"4271 4.2)",
				buf);
	if (nb->passive && !bgp->listen_port)
		return cfg_fail(err, file, config_setting_get_member(ns, "passive"),
				"bgp neighbor %s is passive but bgp.listen_port is 0", buf);
	if (!fams) {
		nb->ipv4 = nb->addr.family == LB_AF_INET;
		nb->ipv6 = nb->addr.family == LB_AF_INET6;
		return 0;
	}
	if (!config_setting_is_array(fams) && !config_setting_is_list(fams))
		return cfg_fail(err, file, fams, "bgp neighbor %s: \"families\" must be an array",
				buf);
	for (int i = 0; i < config_setting_length(fams); i++) {
		const config_setting_t *e = config_setting_get_elem(fams, (unsigned)i);
		const char *f = config_setting_get_string(e);

		if (f && strcmp(f, "ipv4") == 0)
			nb->ipv4 = true;
		else if (f && strcmp(f, "ipv6") == 0)
			nb->ipv6 = true;
		else
			return cfg_fail(err, file, e,
					"bgp neighbor %s: family \"%s\": expected \"ipv4\" or "
					"\"ipv6\"",
					buf, f ? f : "(not a string)");
	}
	if (!nb->ipv4 && !nb->ipv6)
		return cfg_fail(err, file, fams, "bgp neighbor %s: no address family", buf);
	return 0;
}

static int parse_bgp(config_t *cf, struct lbd_config *out, const char *file, char **err)
{
	static const char *const keys[] = {"asn",
					   "router_id",
					   "next_hop_ipv4",
					   "next_hop_ipv6",
					   "listen_port",
					   "connect_retry_ms",
					   "graceful_restart_time",
					   "drain_delay_ms",
					   "neighbors",
					   NULL};
	config_setting_t *bs = config_lookup(cf, "bgp"), *list;
	struct lbd_bgp_cfg *b = &out->bgp;
	uint32_t port;
	int n, rc;

	if (!bs)
		return 0;
	if (!config_setting_is_group(bs))
		return cfg_fail(err, file, bs, "\"bgp\" must be a group { ... }");
	if (out->role != LBD_ROLE_L4LB)
		return cfg_fail(err, file, bs, "\"bgp\" is for role \"l4lb\"");
	if (!config_setting_get_member(bs, "asn"))
		return cfg_fail(err, file, bs, "bgp: missing setting \"asn\"");
	if ((rc = cfg_known(bs, keys, "bgp", file, err)) ||
	    (rc = cfg_uint(bs, "asn", &b->asn, 0, 0, UINT32_MAX, file, err)) ||
	    (rc = check_asn(bs, "asn", b->asn, file, err)) ||
	    (rc = addr_of_family(bs, "router_id", LB_AF_INET, &b->router_id, "router_id", file,
				 err)) ||
	    (rc = addr_of_family(bs, "next_hop_ipv4", LB_AF_INET, &b->next_hop4, "next_hop_ipv4",
				 file, err)) ||
	    (rc = addr_of_family(bs, "next_hop_ipv6", LB_AF_INET6, &b->next_hop6, "next_hop_ipv6",
				 file, err)) ||
	    (rc = cfg_uint(bs, "listen_port", &port, 179, 0, 65535, file, err)) ||
	    (rc = cfg_uint(bs, "connect_retry_ms", &b->connect_retry_ms, 2000, 100, 600000, file,
			   err)) ||
	    (rc = cfg_uint(bs, "graceful_restart_time", &b->gr_restart_time, 120, 0, 4095, file,
			   err)) ||
	    (rc = cfg_uint(bs, "drain_delay_ms", &b->drain_delay_ms, 5000, 0, 3600000, file, err)))
		return rc;
	b->listen_port = (uint16_t)port;
	b->enabled = true;
	list = config_setting_get_member(bs, "neighbors");
	if (!list)
		return 0;
	if (!config_setting_is_list(list))
		return cfg_fail(err, file, list, "bgp: \"neighbors\" must be a list ( { ... } )");
	n = config_setting_length(list);
	if (n > MAX_BGP_NEIGHBORS)
		return cfg_fail(err, file, list, "bgp: %d neighbors, at most %d", n,
				MAX_BGP_NEIGHBORS);
	b->neighbors = calloc(n ? n : 1, sizeof(*b->neighbors));
	if (!b->neighbors)
		return -ENOMEM;
	for (int i = 0; i < n; i++) {
		const config_setting_t *ns = config_setting_get_elem(list, (unsigned)i);

		rc = parse_neighbor(ns, &b->neighbors[i], b, file, err);
		if (rc)
			return rc;
		for (int j = 0; j < i; j++)
			if (lb_addr_equal(&b->neighbors[j].addr, &b->neighbors[i].addr))
				return cfg_fail(err, file, ns, "bgp neighbor listed twice");
		b->n_neighbors++;
	}
	return 0;
}

/* An array of IP addresses at key ("vip_addresses", "lbs") into *out. */
static int parse_addr_list(config_t *cf, const char *key, struct lb_addr **out, size_t *n_out,
			   const char *file, char **err)
{
	config_setting_t *arr = config_lookup(cf, key);
	int n;

	if (!arr)
		return 0;
	if (!config_setting_is_array(arr) && !config_setting_is_list(arr))
		return cfg_fail(err, file, arr, "\"%s\" must be an array [ \"...\", ... ]", key);
	n = config_setting_length(arr);
	*out = calloc(n ? n : 1, sizeof(**out));
	if (!*out)
		return -ENOMEM;
	for (int i = 0; i < n; i++) {
		config_setting_t *e = config_setting_get_elem(arr, i);
		const char *s = config_setting_get_string(e);

		if (!s || lb_addr_parse(s, &(*out)[i]))
			return cfg_fail(err, file, e, "%s[%d]: \"%s\" is not an IP address", key, i,
					s ? s : "(not a string)");
		(*n_out)++;
	}
	return 0;
}

static int parse_vip_addrs(config_t *cf, struct lbd_config *out, const char *file, char **err)
{
	int rc =
	    parse_addr_list(cf, "vip_addresses", &out->vip_addrs, &out->n_vip_addrs, file, err);

	if (!rc)
		rc = parse_addr_list(cf, "lbs", &out->lb_addrs, &out->n_lb_addrs, file, err);
	if (!rc && out->n_lb_addrs > LB_DECAP_LBS_MAX)
		return cfg_fail(err, file, config_lookup(cf, "lbs"), "at most %d LB addresses",
				LB_DECAP_LBS_MAX);
	return rc;
}

/* A URL field's text, or "" when it is absent. */
static void url_part(const char *url, const struct http_parser_url *u,
		     enum http_parser_url_fields f, char *dst, size_t cap)
{
	size_t n = u->field_set & (1 << f) ? u->field_data[f].len : 0;

	snprintf(dst, cap, "%.*s", (int)n, n ? url + u->field_data[f].off : "");
}

/*
 * Role l7: the "upstreams" group, where lbd pulls the proxy's backend sets
 * from. The URL is split with http-parser's URL parser; only http and
 * https, no credentials in it (they would land in logs and the API).
 */
static int parse_upstreams(config_t *cf, struct lbd_config *out, const char *file, char **err)
{
	static const char *const keys[] = {"url",	   "interval_ms", "timeout_ms",
					   "proxy_socket", "ca_file",	  NULL};
	config_setting_t *g = config_lookup(cf, "upstreams"), *us;
	struct lbd_upstreams_cfg *c = &out->upstreams;
	struct http_parser_url u;
	char scheme[8], query[1024];
	int rc;

	if (!g)
		return 0;
	if (!config_setting_is_group(g))
		return cfg_fail(err, file, g, "\"upstreams\" must be a group { url = ...; }");
	if (out->role != LBD_ROLE_L7)
		return cfg_fail(err, file, g, "\"upstreams\" is for role \"l7\"");
	if ((rc = cfg_known(g, keys, "upstreams", file, err)) ||
	    (rc = cfg_str_copy(g, "url", c->url, sizeof(c->url), "", true, file, err)) ||
	    (rc = cfg_uint(g, "interval_ms", &c->interval_ms, 5000, 100, 3600000, file, err)) ||
	    (rc = cfg_uint(g, "timeout_ms", &c->timeout_ms, 2000, 50, 60000, file, err)) ||
	    (rc = cfg_str_copy(g, "proxy_socket", c->proxy_socket, sizeof(c->proxy_socket),
			       DEFAULT_PROXY_SOCKET, false, file, err)) ||
	    (rc = cfg_str_copy(g, "ca_file", c->ca_file, sizeof(c->ca_file), "", false, file, err)))
		return rc;
	us = config_setting_get_member(g, "url");
	http_parser_url_init(&u);
	if (http_parser_parse_url(c->url, strlen(c->url), 0, &u) ||
	    !(u.field_set & (1 << UF_SCHEMA)) || !(u.field_set & (1 << UF_HOST)))
		return cfg_fail(err, file, us,
				"upstreams: url \"%s\": expected http://HOST[:PORT]/PATH or "
				"https://...",
				c->url);
	url_part(c->url, &u, UF_SCHEMA, scheme, sizeof(scheme));
	if (strcasecmp(scheme, "http") && strcasecmp(scheme, "https"))
		return cfg_fail(err, file, us,
				"upstreams: url \"%s\": the scheme must be http or https", c->url);
	if (u.field_set & (1 << UF_USERINFO))
		return cfg_fail(err, file, us,
				"upstreams: url \"%s\": credentials in the URL are not supported",
				c->url);
	c->https = strcasecmp(scheme, "https") == 0;
	url_part(c->url, &u, UF_HOST, c->host, sizeof(c->host));
	if (!c->host[0] || u.field_data[UF_HOST].len >= sizeof(c->host))
		return cfg_fail(err, file, us, "upstreams: url \"%s\": bad host", c->url);
	c->port = u.field_set & (1 << UF_PORT) ? u.port : c->https ? 443 : 80;
	if (!c->port)
		return cfg_fail(err, file, us, "upstreams: url \"%s\": port 0", c->url);
	url_part(c->url, &u, UF_PATH, c->target, sizeof(c->target));
	url_part(c->url, &u, UF_QUERY, query, sizeof(query));
	if (!c->target[0])
		strcpy(c->target, "/");
	/* Path and query are a piece of the URL, so they fit where it did; the
	 * fragment is for the client alone and never sent (RFC 3986 3.5). */
	if (query[0])
		snprintf(c->target + strlen(c->target), sizeof(c->target) - strlen(c->target),
			 "?%s", query);
	if (c->timeout_ms > c->interval_ms)
		return cfg_fail(err, file, config_setting_get_member(g, "timeout_ms"),
				"upstreams: timeout_ms %u is longer than interval_ms %u",
				c->timeout_ms, c->interval_ms);
	if (c->ca_file[0] && !c->https)
		return cfg_fail(err, file, config_setting_get_member(g, "ca_file"),
				"upstreams: ca_file is for an https url");
	if (!c->proxy_socket[0])
		return cfg_fail(err, file, config_setting_get_member(g, "proxy_socket"),
				"upstreams: proxy_socket must not be empty");
	c->enabled = true;
	return 0;
}

/*
 * metrics_listen: "IP:PORT" or "[IPv6]:PORT" where GET /metrics is also
 * served over TCP (absent or "": only on the admin socket). An address,
 * never a name: checked here so a typo is an error naming its line, not
 * a failed bind at start.
 */
static int parse_metrics_listen(const config_setting_t *root, struct lbd_config *out,
				const char *file, char **err)
{
	char host[LB_ADDR_STRLEN + 1], port[8];
	const char *s = out->metrics_listen;
	struct lb_addr a;
	int rc = cfg_str_copy(root, "metrics_listen", out->metrics_listen,
			      sizeof(out->metrics_listen), "", false, file, err);

	if (rc || !*s)
		return rc;
	if (lb_hostport_split(s, strlen(s), host, sizeof(host), port, sizeof(port)) ||
	    lb_addr_parse(host, &a) || lb_port_parse(port) < 0)
		return cfg_fail(err, file, config_setting_get_member(root, "metrics_listen"),
				"metrics_listen \"%s\": expected IP:PORT or [IPv6]:PORT", s);
	return 0;
}

static int parse(config_t *cf, const char *file, struct lbd_config *out, char **err)
{
	/* In rows (clang-format lays a list this long out one per line). */
	/* clang-format off */
	static const char *const keys[] = {
	    "role",	"pop",		 "host",      "interface", "admin_socket",
	    "xdp_mode", "ring_size",	 "hash_seed", "pin_dir",   "conn_table_size",
	    "vips",	"vip_addresses", "bgp",	      "upstreams", "metrics_listen",
	    "lbs",	"gue_port",	 "conn_cache_slots", "flow_hash", NULL};
	/* clang-format on */
	config_setting_t *root = config_root_setting(cf);
	const char *role = NULL, *mode = NULL;
	int rc;

	rc = cfg_known(root, keys, "the top level", file, err);
	if (!rc)
		rc = cfg_str(root, "role", &role, true, file, err);
	if (rc)
		return rc;
	if (strcmp(role, "l4lb") == 0)
		out->role = LBD_ROLE_L4LB;
	else if (strcmp(role, "l7") == 0)
		out->role = LBD_ROLE_L7;
	else
		return cfg_fail(err, file, config_lookup(cf, "role"),
				"role \"%s\": must be \"l4lb\" or \"l7\"", role);
	if ((rc = cfg_str_copy(root, "interface", out->interface, sizeof(out->interface), "", true,
			       file, err)) ||
	    (rc = cfg_str_copy(root, "admin_socket", out->admin_socket, sizeof(out->admin_socket),
			       DEFAULT_ADMIN_SOCKET, false, file, err)) ||
	    (rc = cfg_str_copy(root, "pop", out->pop, sizeof(out->pop), "pop", false, file, err)) ||
	    (rc = cfg_str_copy(root, "host", out->host, sizeof(out->host), "", false, file, err)) ||
	    (rc = cfg_str_copy(root, "pin_dir", out->pin_dir, sizeof(out->pin_dir), "", false, file,
			       err)) ||
	    (rc = cfg_str(root, "xdp_mode", &mode, false, file, err)) ||
	    (rc = parse_metrics_listen(root, out, file, err)))
		return rc;
	/* One dataplane per interface: pins default to a directory named
	 * after it. "" turns pinning off. */
	if (!config_setting_get_member(root, "pin_dir"))
		snprintf(out->pin_dir, sizeof(out->pin_dir), "%s%s", DEFAULT_PIN_DIR,
			 out->interface);
	if (mode && strcmp(mode, "native") && strcmp(mode, "generic"))
		return cfg_fail(err, file, config_lookup(cf, "xdp_mode"),
				"xdp_mode \"%s\": must be \"native\" or \"generic\"", mode);
	out->xdp_generic = mode && strcmp(mode, "generic") == 0;
	if ((rc = cfg_uint(root, "ring_size", &out->ring_size, LB_RING_SIZE_DEFAULT, 3, 16777213,
			   file, err)) ||
	    (rc = cfg_uint(root, "hash_seed", &out->hash_seed, 0, 0, UINT32_MAX, file, err)) ||
	    (rc = cfg_uint(root, "flow_hash", &out->flow_hash, LB_FLOW_HASH_V1, LB_FLOW_HASH_V1,
			   LB_FLOW_HASH_V2, file, err)) ||
	    (rc = cfg_uint(root, "conn_table_size", &out->conn_max, LB_CONN_MAX_DEFAULT, 1024,
			   1u << 26, file, err)) ||
	    (rc = cfg_uint(root, "gue_port", &out->gue_port, LB_GUE_PORT_DEFAULT, 1, 65535, file,
			   err)) ||
	    (rc = cfg_uint(root, "conn_cache_slots", &out->conn_cache_slots,
			   LB_CONN_CACHE_SLOTS_DEFAULT, LB_CONN_CACHE_SLOTS_MIN,
			   LB_CONN_CACHE_SLOTS_MAX, file, err)))
		return rc;
	if (out->conn_cache_slots & (out->conn_cache_slots - 1))
		return cfg_fail(err, file, config_lookup(cf, "conn_cache_slots"),
				"conn_cache_slots %u is not a power of two", out->conn_cache_slots);
	if (!maglev_is_prime(out->ring_size))
		return cfg_fail(err, file, config_lookup(cf, "ring_size"),
				"ring_size %u is not prime", out->ring_size);
	if ((rc = parse_vips(cf, out, file, err)) || (rc = parse_vip_addrs(cf, out, file, err)) ||
	    (rc = parse_bgp(cf, out, file, err)) || (rc = parse_upstreams(cf, out, file, err)))
		return rc;
	if (out->role == LBD_ROLE_L4LB && out->n_lb_addrs)
		return cfg_fail(err, file, config_lookup(cf, "lbs"),
				"\"lbs\" is for role \"l7\" (the LBs its decap accepts)");
	if (out->role == LBD_ROLE_L4LB && out->n_vip_addrs)
		return cfg_fail(err, file, config_lookup(cf, "vip_addresses"),
				"\"vip_addresses\" is for role \"l7\"; an l4lb lists \"vips\"");
	if (out->role == LBD_ROLE_L7 && out->n_vips)
		return cfg_fail(
		    err, file, config_lookup(cf, "vips"),
		    "\"vips\" is for role \"l4lb\"; an l7 host lists \"vip_addresses\"");
	return 0;
}

static int parse_root(config_t *cf, const char *file, void *out, char **err)
{
	struct lbd_config *c = out;

	memset(c, 0, sizeof(*c));
	return parse(cf, file, c, err);
}

static int load(const char *path, const char *text, struct lbd_config *out, char **err)
{
	int rc;

	memset(out, 0, sizeof(*out));
	rc = cfg_load(path, text, parse_root, out, err);
	if (rc)
		lbd_config_free(out);
	return rc;
}

int lbd_config_load(const char *path, struct lbd_config *out, char **err)
{
	return load(path, NULL, out, err);
}

int lbd_config_parse(const char *text, const char *name, struct lbd_config *out, char **err)
{
	return load(name, text, out, err);
}

void lbd_config_free(struct lbd_config *cfg)
{
	for (size_t i = 0; i < cfg->n_vips; i++)
		free(cfg->vips[i].reals);
	free(cfg->vips);
	free(cfg->vip_addrs);
	free(cfg->lb_addrs);
	free(cfg->bgp.neighbors);
	memset(cfg, 0, sizeof(*cfg));
}
