// SPDX-License-Identifier: GPL-2.0-only
#include "config.h"
#include "cfgfile.h"
#include "maglev.h"
#include "vipspec.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_ADMIN_SOCKET "/run/portico/lbd.sock"

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
		rc = parse_addr(rs, "real", &r->addr, file, err);
		if (rc)
			return rc;
		lb_addr_str(&r->addr, buf, sizeof(buf));
		if (r->addr.family != vip->key.addr.family)
			return cfg_fail(err, file, rs,
					"vip %s: real %s: address family differs from the VIP's "
					"(mixed families are not supported yet)",
					vipname, buf);
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
		const char *proto = NULL, *encap = NULL;
		char name[LB_ADDR_STRLEN + 16];
		uint32_t port;
		int p;

		if (!config_setting_is_group(vs))
			return cfg_fail(err, file, vs, "each vip must be a group { ... }");
		out->n_vips++;
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
		/* "ipip": IPIP toward IPv4 reals, IP6IP6 toward IPv6 ones. */
		if (encap && strcmp(encap, "ipip"))
			return cfg_fail(err, file, config_setting_get_member(vs, "encap"),
					"vip %s: encap \"%s\": only \"ipip\" (IPIP / IP6IP6) is "
					"supported so far",
					name, encap);
		for (int j = 0; j < i; j++) {
			const struct l4lb_vip_key *o = &out->vips[j].key;

			if (lb_addr_equal(&o->addr, &v->key.addr) && o->port == v->key.port &&
			    o->proto == v->key.proto)
				return cfg_fail(err, file, vs, "vip %s defined twice", name);
		}
		rc = parse_reals(vs, v, name, file, err);
		if (rc)
			return rc;
	}
	return check_real_count(list, out, file, err);
}

static int parse_vip_addrs(config_t *cf, struct lbd_config *out, const char *file, char **err)
{
	config_setting_t *arr = config_lookup(cf, "vip_addresses");
	int n;

	if (!arr)
		return 0;
	if (!config_setting_is_array(arr) && !config_setting_is_list(arr))
		return cfg_fail(err, file, arr,
				"\"vip_addresses\" must be an array [ \"...\", ... ]");
	n = config_setting_length(arr);
	out->vip_addrs = calloc(n ? n : 1, sizeof(*out->vip_addrs));
	if (!out->vip_addrs)
		return -ENOMEM;
	for (int i = 0; i < n; i++) {
		config_setting_t *e = config_setting_get_elem(arr, i);
		const char *s = config_setting_get_string(e);

		if (!s || lb_addr_parse(s, &out->vip_addrs[i]))
			return cfg_fail(err, file, e,
					"vip_addresses[%d]: \"%s\" is not an IP address", i,
					s ? s : "(not a string)");
		out->n_vip_addrs++;
	}
	return 0;
}

static int parse(config_t *cf, const char *file, struct lbd_config *out, char **err)
{
	config_setting_t *root = config_root_setting(cf);
	const char *role = NULL, *mode = NULL;
	int rc;

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
	    (rc = cfg_str(root, "xdp_mode", &mode, false, file, err)))
		return rc;
	if (mode && strcmp(mode, "native") && strcmp(mode, "generic"))
		return cfg_fail(err, file, config_lookup(cf, "xdp_mode"),
				"xdp_mode \"%s\": must be \"native\" or \"generic\"", mode);
	out->xdp_generic = mode && strcmp(mode, "generic") == 0;
	if ((rc = cfg_uint(root, "ring_size", &out->ring_size, LB_RING_SIZE_DEFAULT, 3, 16777213,
			   file, err)) ||
	    (rc = cfg_uint(root, "hash_seed", &out->hash_seed, 0, 0, UINT32_MAX, file, err)) ||
	    (rc = cfg_uint(root, "conn_table_size", &out->conn_max, LB_CONN_MAX_DEFAULT, 1024,
			   1u << 26, file, err)))
		return rc;
	if (!maglev_is_prime(out->ring_size))
		return cfg_fail(err, file, config_lookup(cf, "ring_size"),
				"ring_size %u is not prime", out->ring_size);
	if ((rc = parse_vips(cf, out, file, err)) || (rc = parse_vip_addrs(cf, out, file, err)))
		return rc;
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
	memset(cfg, 0, sizeof(*cfg));
}
