// SPDX-License-Identifier: GPL-2.0-only
/*
 * l4_role.c - lbd on an L4LB host: load the balancer, program it from the
 * config, keep next hops resolved, and serve the VIP/real/stats API.
 */
#include "l4lb.h"
#include "lbd.h"
#include "log.h"
#include "netlink.h"
#include "vipspec.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct l4lb *LB(struct lbd *d)
{
	return d->role_state;
}

static bool vip_in(const struct lbd_config *c, const struct l4lb_vip_key *k)
{
	for (size_t i = 0; i < c->n_vips; i++) {
		const struct l4lb_vip_key *o = &c->vips[i].key;

		if (lb_addr_equal(&o->addr, &k->addr) && o->port == k->port && o->proto == k->proto)
			return true;
	}
	return false;
}

struct del_ctx {
	const struct lbd_config *next;
	struct l4lb_vip_key gone[LB_MAX_VIPS_DEFAULT * 4];
	size_t n;
};

static int collect_gone(void *ctx, const struct l4lb_vip_info *v)
{
	struct del_ctx *c = ctx;

	if (!vip_in(c->next, &v->key) && c->n < sizeof(c->gone) / sizeof(c->gone[0]))
		c->gone[c->n++] = v->key;
	return 0;
}

/*
 * Bring the balancer from what it runs now to next: VIPs and reals that
 * went away are removed, new ones added, weights updated. Each VIP's ring
 * is rebuilt only when its reals changed. The config was validated whole
 * before this runs; a failure here is a kernel/map error, reported.
 */
static int l4_sync(struct l4lb *lb, const struct lbd_config *next, char **err)
{
	struct del_ctx *dc = calloc(1, sizeof(*dc));
	char name[96], a[LB_ADDR_STRLEN];
	int rc = 0;

	if (!dc)
		return -ENOMEM;
	dc->next = next;
	l4lb_vip_foreach(lb, collect_gone, dc);
	for (size_t i = 0; i < dc->n && !rc; i++)
		rc = l4lb_vip_del(lb, &dc->gone[i]);
	free(dc);
	for (size_t i = 0; i < next->n_vips && !rc; i++) {
		const struct lbd_vip_cfg *vc = &next->vips[i];
		struct l4lb_vip_info cur;

		vipspec_str(&vc->key, name, sizeof(name));
		if (l4lb_vip_find(lb, &vc->key, &cur)) {
			rc = l4lb_vip_add(lb, &vc->key);
			if (rc)
				break;
			l4lb_vip_find(lb, &vc->key, &cur);
		}
		/* Remove reals not in next (copy first: cur.reals changes). */
		for (size_t j = cur.n_reals; j-- > 0 && !rc;) {
			struct lb_addr ra = cur.reals[j].addr;
			bool keep = false;

			for (size_t k = 0; k < vc->n_reals; k++)
				keep |= lb_addr_equal(&vc->reals[k].addr, &ra);
			if (!keep)
				rc = l4lb_real_del(lb, &vc->key, &ra);
			l4lb_vip_find(lb, &vc->key, &cur);
		}
		for (size_t k = 0; k < vc->n_reals && !rc; k++) {
			const struct lbd_real_cfg *r = &vc->reals[k];
			bool have = false;
			uint32_t w = 0;

			for (size_t j = 0; j < cur.n_reals; j++)
				if (lb_addr_equal(&cur.reals[j].addr, &r->addr)) {
					have = true;
					w = cur.reals[j].weight;
				}
			if (!have)
				rc = l4lb_real_add(lb, &vc->key, &r->addr, r->weight);
			else if (w != r->weight)
				rc = l4lb_real_set_weight(lb, &vc->key, &r->addr, r->weight);
			if (rc && err &&
			    asprintf(err, "vip %s: real %s: %s", name,
				     lb_addr_str(&r->addr, a, sizeof(a)), strerror(-rc)) < 0)
				*err = NULL;
			l4lb_vip_find(lb, &vc->key, &cur);
		}
		if (rc && err && !*err && asprintf(err, "vip %s: %s", name, strerror(-rc)) < 0)
			*err = NULL;
	}
	if (rc && err && !*err && asprintf(err, "programming the balancer: %s", strerror(-rc)) < 0)
		*err = NULL;
	return rc;
}

static int l4_start(struct lbd *d)
{
	struct l4lb_opts o = {.ring_size = d->cfg.ring_size,
			      .hash_seed = d->cfg.hash_seed,
			      .conn_max = d->cfg.conn_max};
	struct lb_addr s4, s6;
	bool have4, have6;
	char *err = NULL;
	struct l4lb *lb;
	int rc;

	lb = l4lb_open(&o);
	if (!lb) {
		log_err("loading the balancer: %s", strerror(errno));
		return -errno;
	}
	d->role_state = lb;
	have4 = lb_nl_iface_addr(d->ifindex, LB_AF_INET, &s4) == 0;
	have6 = lb_nl_iface_addr(d->ifindex, LB_AF_INET6, &s6) == 0;
	if (!have4 && !have6) {
		log_err("interface %s has no global address to use as outer source",
			d->cfg.interface);
		return -EADDRNOTAVAIL;
	}
	rc = l4lb_set_source(lb, have4 ? &s4 : NULL, have6 ? &s6 : NULL);
	if (!rc)
		rc = l4_sync(lb, &d->cfg, &err);
	if (rc) {
		log_err("%s", err ? err : strerror(-rc));
		free(err);
		return rc;
	}
	l4lb_refresh_neighbors(lb);
	if (l4lb_wait_neighbors(lb, 2000))
		log_warn("some next hops are still unresolved; their packets count as drop_fib");
	rc = l4lb_attach(lb, d->ifindex, d->cfg.xdp_generic);
	if (rc) {
		log_err("attaching XDP (%s mode) to %s: %s",
			d->cfg.xdp_generic ? "generic" : "native", d->cfg.interface, strerror(-rc));
		return rc;
	}
	log_info("balancer attached to %s (%s XDP), %zu VIPs", d->cfg.interface,
		 d->cfg.xdp_generic ? "generic" : "native", d->cfg.n_vips);
	return 0;
}

static int l4_apply(struct lbd *d, struct lbd_config *next, char **err)
{
	int rc;

	if (next->ring_size != d->cfg.ring_size || next->hash_seed != d->cfg.hash_seed ||
	    next->conn_max != d->cfg.conn_max || strcmp(next->interface, d->cfg.interface) ||
	    next->xdp_generic != d->cfg.xdp_generic) {
		if (asprintf(err,
			     "%s: ring_size, hash_seed, conn_table_size, interface and "
			     "xdp_mode need a restart",
			     d->config_path) < 0)
			*err = NULL;
		return -EINVAL;
	}
	rc = l4_sync(LB(d), next, err);
	if (rc) {
		/* All or nothing: put the running config back. */
		char *rb_err = NULL;

		if (l4_sync(LB(d), &d->cfg, &rb_err)) {
			char *both = NULL;

			if (asprintf(&both,
				     "%s; rolling back failed too (%s): the balancer may "
				     "be between the two configs",
				     *err ? *err : "apply failed", rb_err ? rb_err : "?") >= 0) {
				free(*err);
				*err = both;
			}
			rc = -EIO; /* not "unchanged" */
		}
		free(rb_err);
	}
	return rc;
}

static void l4_tick(struct lbd *d)
{
	l4lb_refresh_neighbors(LB(d));
}

static void l4_stop(struct lbd *d)
{
	l4lb_close(LB(d));
	d->role_state = NULL;
}

/* --- admin API ---------------------------------------------------------- */

static json_t *reals_json(const struct l4lb_vip_info *v)
{
	json_t *arr = json_array();
	char a[LB_ADDR_STRLEN];

	for (size_t i = 0; i < v->n_reals; i++)
		json_array_append_new(arr, json_pack("{s:s,s:i,s:i}", "address",
						     lb_addr_str(&v->reals[i].addr, a, sizeof(a)),
						     "weight", (json_int_t)v->reals[i].weight, "id",
						     (json_int_t)v->reals[i].id));
	return arr;
}

static int vip_list_cb(void *ctx, const struct l4lb_vip_info *v)
{
	json_t *o = lbd_vip_json(&v->key);

	json_object_set_new(o, "id", json_integer(v->id));
	json_object_set_new(o, "reals", reals_json(v));
	json_array_append_new(ctx, o);
	return 0;
}

static int api_vip_list(void *ctx, const struct admin_req *req, json_t **out)
{
	struct lbd *d = ctx;

	(void)req;
	*out = json_array();
	l4lb_vip_foreach(LB(d), vip_list_cb, *out);
	return 200;
}

static int api_vip_change(void *ctx, const struct admin_req *req, json_t **out)
{
	struct lbd *d = ctx;
	struct l4lb_vip_key k;
	char msg[256], name[96];
	bool add = strcmp(req->method, "POST") == 0;
	int rc;

	if (lbd_vip_from_json(req->body, &k, msg, sizeof(msg)))
		return admin_error(out, 400, "%s", msg);
	vipspec_str(&k, name, sizeof(name));
	rc = add ? l4lb_vip_add(LB(d), &k) : l4lb_vip_del(LB(d), &k);
	if (rc == -EEXIST)
		return admin_error(out, 409, "vip %s already exists", name);
	if (rc == -ENOENT)
		return admin_error(out, 404, "no vip %s", name);
	if (rc == -ENOSPC)
		return admin_error(out, 409, "vip table full");
	if (rc)
		return admin_error(out, 500, "vip %s: %s", name, strerror(-rc));
	log_info("api: vip %s %s", name, add ? "added" : "deleted");
	*out = lbd_vip_json(&k);
	return add ? 201 : 200;
}

/* Body: {"vip": {...}, "address": "...", "weight": N}. */
static int real_args(const struct admin_req *req, struct l4lb_vip_key *k, struct lb_addr *a,
		     int64_t *weight, char *msg, size_t len)
{
	json_t *addr = json_object_get(req->body, "address");
	json_t *w = json_object_get(req->body, "weight");

	if (lbd_vip_from_json(json_object_get(req->body, "vip"), k, msg, len))
		return -EINVAL;
	if (!json_is_string(addr)) {
		snprintf(msg, len, "missing \"address\" of the real");
		return -EINVAL;
	}
	if (lb_addr_parse(json_string_value(addr), a)) {
		snprintf(msg, len, "real address \"%s\": not an IPv4 or IPv6 address",
			 json_string_value(addr));
		return -EINVAL;
	}
	*weight = -1;
	if (w) {
		if (!json_is_integer(w) || json_integer_value(w) < 0 ||
		    json_integer_value(w) > LBD_WEIGHT_MAX) {
			snprintf(msg, len, "\"weight\" must be an integer in [0, %d]",
				 LBD_WEIGHT_MAX);
			return -EINVAL;
		}
		*weight = json_integer_value(w);
	}
	return 0;
}

static int api_real_change(void *ctx, const struct admin_req *req, json_t **out)
{
	struct lbd *d = ctx;
	struct l4lb_vip_key k;
	struct lb_addr a;
	char msg[256], name[96], as[LB_ADDR_STRLEN];
	int64_t w;
	int rc;

	if (real_args(req, &k, &a, &w, msg, sizeof(msg)))
		return admin_error(out, 400, "%s", msg);
	vipspec_str(&k, name, sizeof(name));
	lb_addr_str(&a, as, sizeof(as));
	if (strcmp(req->method, "POST") == 0) {
		rc = l4lb_real_add(LB(d), &k, &a, w < 0 ? 1 : (uint32_t)w);
		if (!rc)
			l4lb_refresh_neighbors(LB(d));
	} else if (strcmp(req->method, "DELETE") == 0) {
		rc = l4lb_real_del(LB(d), &k, &a);
	} else {
		if (w < 0)
			return admin_error(out, 400, "missing \"weight\"");
		rc = l4lb_real_set_weight(LB(d), &k, &a, (uint32_t)w);
	}
	if (rc == -EEXIST)
		return admin_error(out, 409, "vip %s already has real %s", name, as);
	if (rc == -ENOENT)
		return admin_error(out, 404, "no vip %s with real %s", name, as);
	if (rc == -EAFNOSUPPORT)
		return admin_error(out, 400, "real %s: address family differs from vip %s", as,
				   name);
	if (rc)
		return admin_error(out, 500, "vip %s real %s: %s", name, as, strerror(-rc));
	log_info("api: vip %s real %s %s%s", name, as, req->method, w >= 0 ? " (weight set)" : "");
	*out = json_pack("{s:o,s:s}", "vip", lbd_vip_json(&k), "address", as);
	return strcmp(req->method, "POST") == 0 ? 201 : 200;
}

struct stats_ctx {
	struct l4lb *lb;
	json_t *vips, *reals;
	bool seen[LB_MAX_REALS_DEFAULT];
};

static int stats_cb(void *ctx, const struct l4lb_vip_info *v)
{
	struct stats_ctx *s = ctx;
	struct lb_counter c;
	char a[LB_ADDR_STRLEN];
	json_t *o;

	if (l4lb_stats_vip(s->lb, v->id, &c) == 0) {
		o = lbd_vip_json(&v->key);
		json_object_set_new(o, "counters", lbd_counter_json(&c));
		json_array_append_new(s->vips, o);
	}
	for (size_t i = 0; i < v->n_reals; i++) {
		uint32_t id = v->reals[i].id;

		if (id >= LB_MAX_REALS_DEFAULT || s->seen[id] || l4lb_stats_real(s->lb, id, &c))
			continue;
		s->seen[id] = true;
		json_array_append_new(s->reals,
				      json_pack("{s:s,s:o}", "address",
						lb_addr_str(&v->reals[i].addr, a, sizeof(a)),
						"counters", lbd_counter_json(&c)));
	}
	return 0;
}

static int api_stats(void *ctx, const struct admin_req *req, json_t **out)
{
	struct lbd *d = ctx;
	struct lb_counter g[LB_CNT_MAX];
	struct stats_ctx *s;
	json_t *global;

	(void)req;
	if (l4lb_stats_global(LB(d), g))
		return admin_error(out, 500, "reading counters: %s", strerror(errno));
	global = json_object();
	for (int i = 0; i < LB_CNT_MAX; i++)
		json_object_set_new(global, lb_counter_names[i], lbd_counter_json(&g[i]));
	s = calloc(1, sizeof(*s));
	if (!s)
		return admin_error(out, 500, "out of memory");
	s->lb = LB(d);
	s->vips = json_array();
	s->reals = json_array();
	l4lb_vip_foreach(LB(d), stats_cb, s);
	*out = json_pack("{s:s,s:s,s:o,s:o,s:o}", "role", "l4lb", "host", d->cfg.host, "global",
			 global, "vips", s->vips, "reals", s->reals);
	free(s);
	return 200;
}

static const struct admin_route l4_routes[] = {
    {"GET", "/v1/status", lbd_api_status},    {"POST", "/v1/reload", lbd_api_reload},
    {"GET", "/v1/vips", api_vip_list},	      {"POST", "/v1/vips", api_vip_change},
    {"DELETE", "/v1/vips", api_vip_change},   {"POST", "/v1/reals", api_real_change},
    {"DELETE", "/v1/reals", api_real_change}, {"PUT", "/v1/reals", api_real_change},
    {"GET", "/v1/stats", api_stats},	      {NULL, NULL, NULL},
};

const struct lbd_role_ops lbd_l4_role = {
    .name = "l4lb",
    .start = l4_start,
    .apply = l4_apply,
    .tick = l4_tick,
    .stop = l4_stop,
    .routes = l4_routes,
};
