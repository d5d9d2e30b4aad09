// SPDX-License-Identifier: GPL-2.0-only
/*
 * l4_role.c - lbd on an L4LB host: load the balancer, program it from the
 * config, keep next hops resolved, and serve the VIP/real/stats API.
 */
#include "bgp/speaker.h"
#include "health.h"
#include "l4lb.h"
#include "lbd.h"
#include "list.h"
#include "log.h"
#include "netlink.h"
#include "vipspec.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <stddef.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <time.h>

/* The role's state: the balancer, its health checks and its BGP speaker. */
struct l4 {
	struct lbd *d;
	struct l4lb *lb;
	struct health *health;
	struct bgp_speaker *bgp;
	struct lb_addr src4, src6; /* this LB's addresses on the interface */
	bool have4, have6;
	bool adopted;		 /* started on a running dataplane */
	bool adopting;		 /* until the first checks are set up */
	struct loop_io nl_io;	 /* route/neighbour events: the next-hop cache (fd owned by lb) */
	struct loop_timer clock; /* the datapath's conn_cache clock */
};

static struct l4 *L4(struct lbd *d)
{
	return d->role_state;
}

static struct l4lb *LB(struct lbd *d)
{
	return L4(d)->lb;
}

static bool vip_key_eq(const struct l4lb_vip_key *a, const struct l4lb_vip_key *b)
{
	return lb_addr_equal(&a->addr, &b->addr) && a->port == b->port && a->proto == b->proto;
}

static const struct lbd_vip_cfg *vip_cfg(const struct lbd_config *c, const struct l4lb_vip_key *k)
{
	for (size_t i = 0; i < c->n_vips; i++)
		if (vip_key_eq(&c->vips[i].key, k))
			return &c->vips[i];
	return NULL;
}

static bool vip_in(const struct lbd_config *c, const struct l4lb_vip_key *k)
{
	return vip_cfg(c, k) != NULL;
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
 * went away are removed, new ones added, weights updated (health verdicts
 * stay). The config was validated whole before this runs; a failure here
 * is a kernel/map error, reported.
 */
static int l4_sync_ops(struct l4lb *lb, const struct lbd_config *next, char **err)
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
	/* Flags first taken away, then given: a 3-tuple role moving from one
	 * VIP of an address to another must not meet itself (-EBUSY). */
	for (size_t i = 0; i < next->n_vips && !rc; i++) {
		struct l4lb_vip_info cur;

		if (!l4lb_vip_find(lb, &next->vips[i].key, &cur) &&
		    cur.flags & ~next->vips[i].flags)
			rc = l4lb_vip_set_flags(lb, &next->vips[i].key,
						cur.flags & next->vips[i].flags);
	}
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
		rc = l4lb_vip_set_flags(lb, &vc->key, vc->flags);
		if (rc)
			break;
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
			/* A new real waits outside the ring for its first
			 * good probe (health_sync, on_health_change). */
			if (!have && !(rc = l4lb_real_add(lb, &vc->key, &r->addr, r->weight)) &&
			    vc->health.kind != LBD_HC_NONE)
				rc = l4lb_real_set_down(lb, &vc->key, &r->addr, true);
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

/*
 * l4_sync_ops inside one batch: each changed VIP's ring is rebuilt once.
 * adopting: the first sync after adopting a running dataplane; reals that
 * are configured with a weight but were not in the live ring were down
 * when lbd stopped, and stay down until their checks say otherwise, so the
 * rings built now equal the ones packets read.
 */
static int l4_sync(struct l4 *l4, const struct lbd_config *next, bool adopting, char **err)
{
	int rc, rc2;

	l4lb_batch_begin(l4->lb);
	rc = l4_sync_ops(l4->lb, next, err);
	for (size_t i = 0; adopting && !rc && i < next->n_vips; i++) {
		const struct lbd_vip_cfg *vc = &next->vips[i];

		/* What was in the live ring was up: keep it there. */
		for (size_t k = 0; k < vc->n_reals; k++)
			if (vc->reals[k].weight &&
			    l4lb_adopted_live(l4->lb, &vc->key, &vc->reals[k].addr))
				l4lb_real_set_down(l4->lb, &vc->key, &vc->reals[k].addr, false);
	}
	rc2 = l4lb_batch_end(l4->lb);
	if (!rc && rc2) {
		rc = rc2;
		if (err && !*err && asprintf(err, "building the rings: %s", strerror(-rc)) < 0)
			*err = NULL;
	}
	return rc;
}

/* --- health checks ---------------------------------------------------------- */

/* Health settings of a VIP: its config, or the defaults for one added
 * through the API. */
static void vip_health(const struct lbd_config *c, const struct l4lb_vip_key *k,
		       struct lbd_health_cfg *out, uint32_t *min_healthy)
{
	const struct lbd_vip_cfg *vc = vip_cfg(c, k);

	if (vc) {
		*out = vc->health;
		*min_healthy = vc->min_healthy;
		return;
	}
	lbd_health_default(out, k);
	*min_healthy = 1;
}

struct targets {
	struct l4 *l4;
	struct hc_target *t;
	struct lbd_health_cfg *cfgs;
	size_t n, cap;
	bool oom;
};

static int collect_targets(void *ctx, const struct l4lb_vip_info *v)
{
	struct targets *ts = ctx;
	struct lbd_health_cfg hc;
	uint32_t min;

	vip_health(&ts->l4->d->cfg, &v->key, &hc, &min);
	for (size_t i = 0; i < v->n_reals; i++) {
		struct hc_target *t;

		if (ts->n == ts->cap) {
			size_t cap = ts->cap ? ts->cap * 2 : 64;
			struct hc_target *nt = realloc(ts->t, cap * sizeof(*nt));
			struct lbd_health_cfg *nc = realloc(ts->cfgs, cap * sizeof(*nc));

			if (nt)
				ts->t = nt;
			if (nc)
				ts->cfgs = nc;
			if (!nt || !nc) {
				ts->oom = true;
				return 1;
			}
			ts->cap = cap;
		}
		t = &ts->t[ts->n];
		ts->cfgs[ts->n] = hc;
		*t = (struct hc_target){.vip = v->key, .real = v->reals[i].addr};
		t->mark = LB_HC_MARK_BASE | v->reals[i].id |
			  (v->flags & LB_VIP_F_ENCAP_GUE ? LB_HC_MARK_GUE : 0);
		/* Adopting a dataplane, a check starts where the ring had its
		 * real (down: out, else up); otherwise it starts unknown, and
		 * its real, added out of the ring, waits for a good probe. */
		t->initial = !ts->l4->adopting ? HC_UNKNOWN : v->reals[i].down ? HC_DOWN : HC_UP;
		ts->n++;
	}
	return 0;
}

/* In the ring: up, or not checked at all. */
static bool serving(enum hc_state s)
{
	return s == HC_UP || s == HC_UNCHECKED;
}

/*
 * Point the checks at exactly the (VIP, real) pairs the balancer has, then
 * put each ring in line with the verdicts (a check whose kind changed to
 * or from "none" changes its real's place). Unknown reals keep theirs:
 * out when new, in while a reconfigured check gets its first verdict.
 */
static void health_sync(struct l4 *l4)
{
	struct targets ts = {.l4 = l4};

	l4lb_vip_foreach(l4->lb, collect_targets, &ts);
	for (size_t i = 0; i < ts.n; i++)
		ts.t[i].cfg = &ts.cfgs[i];
	if (ts.oom || health_set_targets(l4->health, ts.t, ts.n)) {
		log_err("health: out of memory updating the checks; they keep the old set");
	} else {
		l4lb_batch_begin(l4->lb);
		for (size_t i = 0; i < ts.n; i++) {
			struct hc_info hi;

			if (health_get(l4->health, &ts.t[i].vip, &ts.t[i].real, &hi) == 0 &&
			    hi.state != HC_UNKNOWN)
				l4lb_real_set_down(l4->lb, &ts.t[i].vip, &ts.t[i].real,
						   !serving(hi.state));
		}
		if (l4lb_batch_end(l4->lb))
			log_err("health: rebuilding rings after a change of checks failed");
	}
	free(ts.t);
	free(ts.cfgs);
}

/* --- what BGP may announce ---------------------------------------------------- */

struct announce {
	struct l4 *l4;
	struct lb_addr *pfx; /* addresses seen, and whether each is healthy */
	bool *ok;
	size_t n;
};

static int collect_announce(void *ctx, const struct l4lb_vip_info *v)
{
	struct announce *a = ctx;
	struct lbd_health_cfg hc;
	uint32_t min, healthy = 0;
	size_t i;

	vip_health(&a->l4->d->cfg, &v->key, &hc, &min);
	for (size_t r = 0; r < v->n_reals; r++) {
		struct hc_info info;

		if (!v->reals[r].weight || v->reals[r].down)
			continue;
		if (health_get(a->l4->health, &v->key, &v->reals[r].addr, &info) == 0 &&
		    (info.state == HC_UP || info.state == HC_UNCHECKED))
			healthy++;
	}
	for (i = 0; i < a->n; i++)
		if (lb_addr_equal(&a->pfx[i], &v->key.addr))
			break;
	if (i == a->n) {
		a->pfx[a->n] = v->key.addr;
		a->ok[a->n++] = true;
	}
	/* Every VIP on an address must be able to serve for the address to
	 * be announced: a route cannot be withdrawn for one port only. */
	if (healthy < min)
		a->ok[i] = false;
	return 0;
}

/* Tell the speaker which VIP addresses have enough healthy reals. */
static void l4_announce(struct l4 *l4)
{
	struct announce a = {.l4 = l4};
	struct bgp_vip_prefix *p;

	if (!l4->bgp)
		return;
	a.pfx = calloc(LB_MAX_VIPS_DEFAULT * 2, sizeof(*a.pfx));
	a.ok = calloc(LB_MAX_VIPS_DEFAULT * 2, sizeof(*a.ok));
	p = calloc(LB_MAX_VIPS_DEFAULT * 2, sizeof(*p));
	if (a.pfx && a.ok && p) {
		l4lb_vip_foreach(l4->lb, collect_announce, &a);
		for (size_t i = 0; i < a.n; i++)
			p[i] = (struct bgp_vip_prefix){.addr = a.pfx[i], .healthy = a.ok[i]};
		bgp_speaker_set_prefixes(l4->bgp, p, a.n);
	}
	free(a.pfx);
	free(a.ok);
	free(p);
}

static void on_health_change(void *ctx, const struct l4lb_vip_key *vip, const struct lb_addr *real,
			     enum hc_state from, enum hc_state to)
{
	struct l4 *l4 = ctx;
	int rc;

	(void)from;
	rc = l4lb_real_set_down(l4->lb, vip, real, !serving(to));
	if (rc && rc != -ENOENT) {
		char name[96], a[LB_ADDR_STRLEN];

		log_err("vip %s real %s: updating the ring: %s",
			vipspec_str(vip, name, sizeof(name)), lb_addr_str(real, a, sizeof(a)),
			strerror(-rc));
	}
	l4_announce(l4);
}

/* Everything a change of VIPs or reals implies, after the balancer has it. */
static void l4_changed(struct l4 *l4)
{
	health_sync(l4);
	l4_announce(l4);
}

/* --- BGP ------------------------------------------------------------------ */

static int bgp_params(struct l4 *l4, const struct lbd_config *c, struct bgp_speaker_params *p,
		      char **err)
{
	*p = (struct bgp_speaker_params){
	    .cfg = &c->bgp, .restarted = l4->adopted, .forwarding_preserved = c->pin_dir[0] != 0};
	if (c->bgp.router_id.family) {
		memcpy(&p->router_id, c->bgp.router_id.bytes, 4);
	} else if (l4->have4) {
		memcpy(&p->router_id, l4->src4.bytes, 4);
	} else {
		if (asprintf(err, "bgp: %s has no IPv4 address to use as router_id; set one",
			     c->interface) < 0)
			*err = NULL;
		return -EINVAL;
	}
	p->router_id = ntohl(p->router_id);
	p->next_hop4 = c->bgp.next_hop4.family ? c->bgp.next_hop4
		       : l4->have4	       ? l4->src4
					       : (struct lb_addr){0};
	p->next_hop6 = c->bgp.next_hop6.family ? c->bgp.next_hop6
		       : l4->have6	       ? l4->src6
					       : (struct lb_addr){0};
	return 0;
}

/* Start, reconfigure or stop the speaker to match c. */
static int bgp_apply(struct l4 *l4, const struct lbd_config *c, char **err)
{
	struct bgp_speaker_params p;
	int rc;

	if (!c->bgp.enabled) {
		if (l4->bgp) {
			bgp_speaker_stop(l4->bgp, true);
			bgp_speaker_free(l4->bgp);
			l4->bgp = NULL;
			log_info("bgp: no bgp section any more: sessions closed");
		}
		return 0;
	}
	rc = bgp_params(l4, c, &p, err);
	if (rc)
		return rc;
	if (l4->bgp)
		return bgp_speaker_reconfigure(l4->bgp, &p, err);
	l4->bgp = bgp_speaker_new(&l4->d->loop, &p, err);
	return l4->bgp ? 0 : -EINVAL;
}

/* --- the role -------------------------------------------------------------- */

/* A route, link or neighbour changed: refresh the next hops it concerns,
 * so the datapath follows a router's new MAC without a FIB lookup. */
static void on_netlink(struct loop_io *io, uint32_t events)
{
	struct l4 *l4 = (struct l4 *)((char *)io - offsetof(struct l4, nl_io));
	int n;

	(void)events;
	n = l4lb_netlink_process(l4->lb);
	if (n < 0)
		log_warn("netlink events: %s", strerror(-n));
}

/* Has this LB an outer source address of the family (the underlay toward
 * a real is the real's family, whatever its VIP's)? */
static bool src_for(const struct l4 *l4, uint8_t family)
{
	return family == LB_AF_INET ? l4->have4 : l4->have6;
}

/*
 * Every real must be reachable from one of this LB's addresses (the
 * underlay is its family), and a checked VIP's probes, sockets of the
 * VIP's family, need one of the VIP's.
 */
static int check_sources(const struct l4 *l4, const struct lbd_config *c, char **err)
{
	char buf[LB_ADDR_STRLEN];

	for (size_t i = 0; i < c->n_vips; i++) {
		const struct lbd_vip_cfg *v = &c->vips[i];
		const struct lb_addr *va = &v->key.addr;
		struct lbd_health_cfg hc;
		uint32_t min;

		vip_health(c, &v->key, &hc, &min);
		if (v->n_reals && hc.kind != LBD_HC_NONE && !src_for(l4, va->family)) {
			if (asprintf(err,
				     "vip %s: this LB has no %s address on %s for its health "
				     "checks",
				     lb_addr_str(va, buf, sizeof(buf)),
				     va->family == LB_AF_INET ? "IPv4" : "IPv6", c->interface) < 0)
				*err = NULL;
			return -EINVAL;
		}
		for (size_t j = 0; j < v->n_reals; j++) {
			const struct lb_addr *a = &v->reals[j].addr;

			if (src_for(l4, a->family))
				continue;
			if (asprintf(err,
				     "real %s: this LB has no %s address on %s to send to it from",
				     lb_addr_str(a, buf, sizeof(buf)),
				     a->family == LB_AF_INET ? "IPv4" : "IPv6", c->interface) < 0)
				*err = NULL;
			return -EINVAL;
		}
	}
	return 0;
}

/* Read this LB's outer source addresses from the interface again (one
 * added since the start counts at a reload). 0 or -errno. */
static int read_sources(struct l4 *l4, const struct lbd_config *c)
{
	int ifindex = lb_nl_ifindex(c->interface);

	if (ifindex < 0)
		return ifindex;
	l4->have4 = lb_nl_iface_addr(ifindex, LB_AF_INET, &l4->src4) == 0;
	l4->have6 = lb_nl_iface_addr(ifindex, LB_AF_INET6, &l4->src6) == 0;
	return l4lb_set_source(l4->lb, l4->have4 ? &l4->src4 : NULL, l4->have6 ? &l4->src6 : NULL);
}

/* The pin directory exists, on a bpffs (created under its parent). */
static int pin_dir_ready(const char *dir)
{
	if (mkdir(dir, 0700) && errno != EEXIST) {
		log_err("pin directory %s: %s (is a bpf filesystem mounted above it? "
			"set pin_dir = \"\" to run without pinning)",
			dir, strerror(errno));
		return -errno;
	}
	return 0;
}

static void on_clock(struct loop_timer *t)
{
	struct l4 *l4 = container_of(t, struct l4, clock);

	l4lb_clock_tick(l4->lb);
	loop_timer_in(&l4->d->loop, &l4->clock, on_clock, LB_CONN_CACHE_TICK_MS);
}

static int l4_start(struct lbd *d)
{
	struct l4lb_opts o = {.ring_size = d->cfg.ring_size,
			      .hash_seed = d->cfg.hash_seed,
			      .flow_hash = d->cfg.flow_hash,
			      .gue_port = (uint16_t)d->cfg.gue_port,
			      .conn_max = d->cfg.conn_max,
			      .conn_cache_slots = d->cfg.conn_cache_slots,
			      .pin_dir = d->cfg.pin_dir[0] ? d->cfg.pin_dir : NULL};
	char *err = NULL;
	struct l4 *l4;
	int rc;

	l4 = calloc(1, sizeof(*l4));
	if (!l4)
		return -ENOMEM;
	l4->d = d;
	d->role_state = l4;
	if (o.pin_dir && (rc = pin_dir_ready(o.pin_dir)))
		return rc;
	l4->lb = l4lb_open(&o);
	if (!l4->lb) {
		log_err("loading the balancer: %s", strerror(errno));
		return -errno;
	}
	l4->adopted = l4->adopting = l4lb_adopted(l4->lb);
	l4->have4 = lb_nl_iface_addr(d->ifindex, LB_AF_INET, &l4->src4) == 0;
	l4->have6 = lb_nl_iface_addr(d->ifindex, LB_AF_INET6, &l4->src6) == 0;
	if (!l4->have4 && !l4->have6) {
		log_err("interface %s has no global address to use as outer source",
			d->cfg.interface);
		return -EADDRNOTAVAIL;
	}
	l4->health = health_new(&d->loop, on_health_change, l4);
	if (!l4->health) {
		log_err("health checks: %s", strerror(errno));
		return -ENOMEM;
	}
	rc = check_sources(l4, &d->cfg, &err);
	if (!rc)
		rc = l4lb_set_source(l4->lb, l4->have4 ? &l4->src4 : NULL,
				     l4->have6 ? &l4->src6 : NULL);
	if (!rc)
		rc = l4_sync(l4, &d->cfg, l4->adopted, &err);
	if (rc) {
		log_err("%s", err ? err : strerror(-rc));
		free(err);
		return rc;
	}
	/* Listen before resolving, so no change between the two is missed. */
	l4->nl_io = (struct loop_io){.fd = l4lb_netlink_fd(l4->lb), .fn = on_netlink};
	if (l4->nl_io.fd < 0 || loop_io_watch(&d->loop, &l4->nl_io, EPOLLIN)) {
		log_err("netlink events (the next-hop cache): %s", strerror(errno));
		l4->nl_io.fd = -1;
		return -EIO;
	}
	l4lb_refresh_neighbors(l4->lb);
	rc = l4lb_wait_neighbors(l4->lb, 2000);
	if (rc)
		log_warn("%d reals' next hops are still unresolved; their packets take the FIB "
			 "(fib_fallback) and count as drop_fib until they resolve",
			 rc);
	/* Attaching replaces an adopted program in one step: packets never
	 * meet an empty interface. */
	rc = l4lb_attach(l4->lb, d->ifindex, d->cfg.xdp_generic);
	if (rc) {
		log_err("attaching XDP (%s mode) to %s: %s",
			d->cfg.xdp_generic ? "generic" : "native", d->cfg.interface, strerror(-rc));
		return rc;
	}
	rc = l4lb_attach_hc(l4->lb, d->ifindex);
	if (rc) {
		log_err("attaching the health-check encapsulation (tc egress) to %s: %s",
			d->cfg.interface, strerror(-rc));
		return rc;
	}
	loop_timer_in(&d->loop, &l4->clock, on_clock, LB_CONN_CACHE_TICK_MS);
	health_sync(l4);
	l4->adopting = false;
	rc = bgp_apply(l4, &d->cfg, &err);
	if (rc) {
		log_err("%s", err ? err : strerror(-rc));
		free(err);
		return rc;
	}
	l4_announce(l4);
	log_info("balancer %s %s (%s XDP), %zu VIPs", l4->adopted ? "adopted on" : "attached to",
		 d->cfg.interface, d->cfg.xdp_generic ? "generic" : "native", d->cfg.n_vips);
	return 0;
}

static int l4_apply(struct lbd *d, struct lbd_config *next, char **err)
{
	struct l4 *l4 = L4(d);
	struct lbd_config prev;
	int rc;

	if (next->ring_size != d->cfg.ring_size || next->hash_seed != d->cfg.hash_seed ||
	    next->flow_hash != d->cfg.flow_hash || next->conn_max != d->cfg.conn_max ||
	    next->conn_cache_slots != d->cfg.conn_cache_slots ||
	    strcmp(next->interface, d->cfg.interface) || next->xdp_generic != d->cfg.xdp_generic ||
	    strcmp(next->pin_dir, d->cfg.pin_dir)) {
		if (asprintf(
			err,
			"%s: ring_size, hash_seed, flow_hash, conn_table_size, conn_cache_slots, "
			"interface, xdp_mode and pin_dir need a restart",
			d->config_path) < 0)
			*err = NULL;
		return -EINVAL;
	}
	if (next->bgp.enabled) {
		struct bgp_speaker_params p;

		rc = bgp_params(l4, next, &p, err);
		if (rc)
			return rc;
	}
	rc = read_sources(l4, next);
	if (!rc)
		rc = check_sources(l4, next, err);
	if (rc)
		return rc;
	rc = l4_sync(l4, next, false, err);
	if (rc) {
		/* All or nothing: put the running config back. */
		char *rb_err = NULL;

		if (l4_sync(l4, &d->cfg, false, &rb_err)) {
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
		return rc;
	}
	rc = bgp_apply(l4, next, err);
	if (rc) {
		l4_sync(l4, &d->cfg, false, NULL);
		return rc;
	}
	/* The checks and the announcements read d->cfg: swap it in for
	 * them (lbd_reload does the same right after). */
	prev = d->cfg;
	d->cfg = *next;
	l4_changed(l4);
	d->cfg = prev;
	return 0;
}

static void l4_tick(struct lbd *d)
{
	l4lb_refresh_neighbors(LB(d));
}

/*
 * Before a teardown: Cease to every peer now, then keep forwarding for a
 * moment, so the routers have moved this LB's flows elsewhere before the
 * XDP program goes (their flows would otherwise meet a bare interface).
 */
#define SHUTDOWN_LINGER_MS 500

static uint32_t l4_shutdown_begin(struct lbd *d)
{
	struct l4 *l4 = L4(d);

	if (!l4->bgp)
		return 0;
	bgp_speaker_stop(l4->bgp, true);
	return SHUTDOWN_LINGER_MS;
}

static void l4_stop(struct lbd *d, bool teardown)
{
	struct l4 *l4 = L4(d);

	if (!l4)
		return;
	if (l4->bgp) {
		/* A restart keeps the routes at the peers (graceful restart)
		 * while the pinned dataplane forwards; a teardown drops them. */
		bool keep = !teardown && d->cfg.pin_dir[0];

		bgp_speaker_stop(l4->bgp, !keep);
		bgp_speaker_free(l4->bgp);
	}
	health_free(l4->health);
	loop_timer_cancel(&d->loop, &l4->clock);
	if (l4->nl_io.interest)
		loop_io_watch(&d->loop, &l4->nl_io, 0);
	if (teardown || !d->cfg.pin_dir[0]) {
		l4lb_close(l4->lb);
	} else {
		l4lb_release(l4->lb);
		log_info("dataplane left running (pinned in %s) for the next lbd to adopt",
			 d->cfg.pin_dir);
	}
	free(l4);
	d->role_state = NULL;
}

/* --- admin API ---------------------------------------------------------- */

static json_t *time_json(uint64_t wall_ms)
{
	char buf[64];
	time_t t = (time_t)(wall_ms / 1000);
	struct tm tm;

	if (!wall_ms)
		return json_null();
	gmtime_r(&t, &tm);
	snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		 (unsigned)(wall_ms % 1000));
	return json_string(buf);
}

static json_t *health_json(struct l4 *l4, const struct l4lb_vip_key *vip,
			   const struct l4lb_real_info *r)
{
	struct hc_info hi;
	struct timespec now;

	if (health_get(l4->health, vip, &r->addr, &hi))
		return json_pack("{s:s}", "state", "unknown");
	clock_gettime(CLOCK_REALTIME, &now);
	return json_pack(
	    "{s:s,s:b,s:s,s:o,s:o,s:I,s:f,s:I,s:I}", "state", hc_state_name(hi.state), "last_ok",
	    hi.last_ok, "last_result", hi.last_result, "last_probe", time_json(hi.last_probe_ms),
	    "last_change", time_json(hi.last_change_ms), "last_change_ms_ago",
	    hi.last_change_ms ? (json_int_t)((uint64_t)now.tv_sec * 1000 +
					     (uint64_t)now.tv_nsec / 1000000 - hi.last_change_ms)
			      : (json_int_t)-1,
	    "latency_ms", hi.latency_us / 1000.0, "probes_ok", (json_int_t)hi.ok, "probes_failed",
	    (json_int_t)hi.failed);
}

static json_t *reals_json(struct l4 *l4, const struct l4lb_vip_info *v)
{
	json_t *arr = json_array();
	char a[LB_ADDR_STRLEN];

	for (size_t i = 0; i < v->n_reals; i++) {
		const struct l4lb_real_info *r = &v->reals[i];

		json_array_append_new(arr, json_pack("{s:s,s:i,s:i,s:b,s:o}", "address",
						     lb_addr_str(&r->addr, a, sizeof(a)), "weight",
						     (json_int_t)r->weight, "id", (json_int_t)r->id,
						     "in_ring", r->weight && !r->down, "health",
						     health_json(l4, &v->key, r)));
	}
	return arr;
}

struct list_ctx {
	struct l4 *l4;
	json_t *arr;
};

static int vip_list_cb(void *ctx, const struct l4lb_vip_info *v)
{
	struct list_ctx *lc = ctx;
	json_t *o = lbd_vip_json(&v->key);

	json_object_set_new(o, "id", json_integer(v->id));
	json_object_set_new(o, "hash",
			    json_string(v->flags & LB_VIP_F_HASH_3TUPLE ? "3-tuple" : "5-tuple"));
	json_object_set_new(o, "encap",
			    json_string(v->flags & LB_VIP_F_ENCAP_GUE ? "gue" : "ipip"));
	json_object_set_new(o, "reals", reals_json(lc->l4, v));
	json_array_append_new(lc->arr, o);
	return 0;
}

static int api_vip_list(void *ctx, const struct admin_req *req, json_t **out)
{
	struct lbd *d = ctx;
	struct list_ctx lc = {.l4 = L4(d), .arr = json_array()};

	(void)req;
	l4lb_vip_foreach(LB(d), vip_list_cb, &lc);
	*out = lc.arr;
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
	l4_changed(L4(d));
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
		struct lbd_health_cfg hc;
		uint32_t min;

		struct l4lb_vip_info vi;

		if (l4lb_vip_find(LB(d), &k, &vi))
			return admin_error(out, 404, "no vip %s", name);
		if (!src_for(L4(d), a.family))
			return admin_error(out, 400,
					   "real %s: this LB has no %s address on %s to send to it "
					   "from",
					   as, a.family == LB_AF_INET ? "IPv4" : "IPv6",
					   d->cfg.interface);
		/* Out of the ring until its first good probe, as from a reload. */
		vip_health(&d->cfg, &k, &hc, &min);
		l4lb_batch_begin(LB(d));
		rc = l4lb_real_add(LB(d), &k, &a, w < 0 ? 1 : (uint32_t)w);
		if (!rc && hc.kind != LBD_HC_NONE)
			l4lb_real_set_down(LB(d), &k, &a, true);
		if (!rc)
			rc = l4lb_batch_end(LB(d));
		else
			l4lb_batch_end(LB(d));
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
	if (rc)
		return admin_error(out, 500, "vip %s real %s: %s", name, as, strerror(-rc));
	l4_changed(L4(d));
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

static int api_bgp_get(void *ctx, const struct admin_req *req, json_t **out)
{
	struct l4 *l4 = L4((struct lbd *)ctx);

	if (!l4->bgp)
		return admin_error(out, 409, "bgp is not configured (no bgp section)");
	*out = strcmp(req->path, "/v1/bgp/routes") == 0 ? bgp_speaker_routes_json(l4->bgp)
							: bgp_speaker_neighbors_json(l4->bgp);
	return 200;
}

/* Body {"prefix": "192.0.2.10"} for one VIP address, {} for all of them. */
static int api_bgp_drain(void *ctx, const struct admin_req *req, json_t **out)
{
	struct l4 *l4 = L4((struct lbd *)ctx);
	json_t *p = json_object_get(req->body, "prefix");
	bool on = strcmp(req->method, "POST") == 0;
	struct lb_addr a;
	int rc;

	if (!l4->bgp)
		return admin_error(out, 409, "bgp is not configured (no bgp section)");
	if (p && (!json_is_string(p) || lb_addr_parse(json_string_value(p), &a)))
		return admin_error(out, 400, "\"prefix\" must be a VIP address");
	rc = bgp_speaker_drain(l4->bgp, p ? &a : NULL, on);
	if (rc == -ENOENT)
		return admin_error(out, 404, "%s is not a VIP address of this LB",
				   json_string_value(p));
	if (rc)
		return admin_error(out, 500, "drain: %s", strerror(-rc));
	log_info("api: bgp %s %s", on ? "drain" : "undrain", p ? json_string_value(p) : "all");
	*out = json_pack("{s:s,s:s}", "result", on ? "draining" : "undrained", "prefix",
			 p ? json_string_value(p) : "all");
	return 200;
}

void lbd_l4_parts(struct lbd *d, struct l4lb **lb, struct health **hc, struct bgp_speaker **bgp)
{
	*lb = LB(d);
	*hc = L4(d)->health;
	*bgp = L4(d)->bgp;
}

static const struct admin_route l4_routes[] = {
    {"GET", "/v1/status", lbd_api_status},
    {"GET", "/metrics", lbd_api_metrics},
    {"POST", "/v1/reload", lbd_api_reload},
    {"POST", "/v1/shutdown", lbd_api_shutdown},
    {"GET", "/v1/vips", api_vip_list},
    {"POST", "/v1/vips", api_vip_change},
    {"DELETE", "/v1/vips", api_vip_change},
    {"POST", "/v1/reals", api_real_change},
    {"DELETE", "/v1/reals", api_real_change},
    {"PUT", "/v1/reals", api_real_change},
    {"GET", "/v1/stats", api_stats},
    {"GET", "/v1/bgp/neighbors", api_bgp_get},
    {"GET", "/v1/bgp/routes", api_bgp_get},
    {"POST", "/v1/bgp/drain", api_bgp_drain},
    {"DELETE", "/v1/bgp/drain", api_bgp_drain},
    {NULL, NULL, NULL},
};

const struct lbd_role_ops lbd_l4_role = {
    .name = "l4lb",
    .start = l4_start,
    .apply = l4_apply,
    .tick = l4_tick,
    .stop = l4_stop,
    .shutdown_begin = l4_shutdown_begin,
    .routes = l4_routes,
};
