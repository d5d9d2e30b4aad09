// SPDX-License-Identifier: GPL-2.0-only
/*
 * xdp_answer.c - gslbd's side of its XDP answer program: the program's
 * copy of what gslbd answers from, kept in step (see xdp_answer.h and
 * xdp/gslb_answer.bpf.c).
 *
 * How a change reaches the program without a wrong answer in between:
 * gslbd first clears `enabled` and moves `seq` on (every query now goes
 * to the sockets, and a walk that started before sees seq move and
 * passes its query on too), rewrites the names, the PoPs and the map set
 * the program is not using, then flips seq's low bit to that set and sets
 * `enabled` again. A program that read the old seq passes its query on.
 */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <endian.h>
#include <errno.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "addr.h"
#include "lb_abi.h"
/* The skeleton names the shared structs: their header first. */
#include "gslb_xdp.h"
#include "gslb_answer.skel.h"
#include "xdp_answer.h"

/* A list entry for a map PoP this configuration does not know: a PoP
 * slot that is never up, so the program skips it as dns.c does. */
#define GX_SKIP 254

struct gslb_xa {
	struct gslb_answer_bpf *skel;
	struct gx_node *nodes;
	struct gx_list *lists;
	size_t nodes_len, lists_len;
	uint32_t node_cap, list_cap;
	unsigned ifindex;
	uint32_t attach_flags; /* 0: not attached */
};

static int fail(char **err, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char **err, int rc, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	if (err && vasprintf(err, fmt, ap) < 0)
		*err = NULL;
	va_end(ap);
	return rc;
}

static void *map_mmap(struct bpf_map *m, size_t *len)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t stride = (bpf_map__value_size(m) + 7) & ~(size_t)7;
	*len = ((size_t)bpf_map__max_entries(m) * stride + page - 1) & ~(page - 1);
	void *p = mmap(NULL, *len, PROT_READ | PROT_WRITE, MAP_SHARED, bpf_map__fd(m), 0);
	return p == MAP_FAILED ? NULL : p;
}

int gslb_xa_open(uint32_t node_cap, uint32_t list_cap, struct gslb_xa **out, char **err)
{
	if (!node_cap || !list_cap || node_cap > (1u << 27) || list_cap > (1u << 24))
		return fail(err, -EINVAL, "xdp answer: capacities out of range");
	struct gslb_xa *x = calloc(1, sizeof(*x));
	if (!x)
		return fail(err, -ENOMEM, "out of memory");
	x->node_cap = node_cap;
	x->list_cap = list_cap;
	int rc;
	x->skel = gslb_answer_bpf__open();
	if (!x->skel) {
		rc = -errno;
		free(x);
		return fail(err, rc, "xdp answer: open: %s", strerror(-rc));
	}
	if ((rc = bpf_map__set_max_entries(x->skel->maps.gx_nodes, 2 * node_cap)) ||
	    (rc = bpf_map__set_max_entries(x->skel->maps.gx_lists, 2 * list_cap)) ||
	    (rc = gslb_answer_bpf__load(x->skel))) {
		gslb_xa_close(x);
		return fail(err, rc, "xdp answer: load: %s", strerror(-rc));
	}
	x->nodes = map_mmap(x->skel->maps.gx_nodes, &x->nodes_len);
	x->lists = map_mmap(x->skel->maps.gx_lists, &x->lists_len);
	if (!x->nodes || !x->lists) {
		rc = -errno;
		gslb_xa_close(x);
		return fail(err, rc, "xdp answer: mmap: %s", strerror(-rc));
	}
	volatile struct gx_conf *c = &x->skel->bss->gx_conf;
	c->node_cap = node_cap;
	c->list_cap = list_cap;
	for (unsigned i = 0; i < GX_MAX_POPS; i++)
		x->skel->bss->gx_pops[i].state = GSLB_POP_DOWN;
	*out = x;
	return 0;
}

int gslb_xa_prog_fd(const struct gslb_xa *x)
{
	return bpf_program__fd(x->skel->progs.gslb_answer);
}

bool gslb_xa_loaded(const struct gslb_xa *x)
{
	const volatile struct gx_conf *c = &x->skel->bss->gx_conf;
	return c->enabled && c->set[c->seq & 1].loaded;
}

void gslb_xa_states(struct gslb_xa *x, const struct gslb_view *v)
{
	struct gx_pop *pops = x->skel->bss->gx_pops;
	for (unsigned i = 0; i < v->conf->n_pops && i < GX_MAX_POPS; i++)
		__atomic_store_n(&pops[i].state,
				 atomic_load_explicit(&v->states->eff[i], memory_order_relaxed),
				 __ATOMIC_RELAXED);
}

/* Is z the zone dns.c's find_zone picks for name (the longest apex)? */
static bool zone_of(const struct gslb_conf *c, const struct gslb_zone *z, const knot_dname_t *name)
{
	size_t len = knot_dname_size(z->apex);
	for (unsigned i = 0; i < c->n_zones; i++) {
		const struct gslb_zone *o = &c->zones[i];
		if (o != z && knot_dname_in_bailiwick(name, o->apex) >= 0 &&
		    knot_dname_size(o->apex) > len)
			return false;
	}
	return true;
}

static int names_sync(struct gslb_xa *x, const struct gslb_conf *c)
{
	int fd = bpf_map__fd(x->skel->maps.gx_names);
	struct gx_name_key k, next;
	/* Empty it: delete the first key until there is none. */
	while (!bpf_map_get_next_key(fd, NULL, &next))
		if (bpf_map_delete_elem(fd, &next))
			return -errno;
	unsigned n = 0;
	for (unsigned zi = 0; zi < c->n_zones; zi++) {
		const struct gslb_zone *z = &c->zones[zi];
		for (unsigned i = 0; i < z->n_names; i++) {
			const struct gslb_name *nm = &z->names[i];
			size_t len = knot_dname_size(nm->name);
			/* Longer names, and names another zone owns, are left
			 * to gslbd. */
			if (nm->kind != GSLB_NAME_SERVICE || len > GX_NAME_KEY ||
			    !zone_of(c, z, nm->name) || n >= GX_MAX_NAMES)
				continue;
			memset(&k, 0, sizeof(k));
			memcpy(k.name, nm->name, len);
			struct gx_name_val val = {.ttl = z->ttl};
			if (bpf_map_update_elem(fd, &k, &val, BPF_ANY))
				return -errno;
			n++;
		}
	}
	return 0;
}

static void conf_sync(struct gslb_xa *x, const struct gslb_view *v)
{
	const struct gslb_conf *c = v->conf;
	volatile struct gx_conf *g = &x->skel->bss->gx_conf;
	g->port = htobe16(c->xdp_port);
	g->max_udp = c->max_udp;
	unsigned n = c->n_listen < GX_MAX_LISTEN ? c->n_listen : GX_MAX_LISTEN;
	for (unsigned i = 0; i < n; i++) {
		for (int j = 0; j < 16; j++)
			g->listen[i][j] = c->listen_addr[i].bytes[j];
		g->listen_fam[i] = c->listen_addr[i].family == LB_AF_INET6 ? 6 : 4;
	}
	g->n_listen = n;
	g->rrl_rate = c->rrl.rate;
	g->rrl_burst = c->rrl.burst;
	g->rrl_slip = c->rrl.slip;
	g->rrl_v4_prefix = c->rrl.v4_prefix;
	g->rrl_v6_prefix = c->rrl.v6_prefix;
	struct gx_pop *pops = x->skel->bss->gx_pops;
	for (unsigned i = 0; i < GX_MAX_POPS; i++) {
		struct gx_pop p = {.state = GSLB_POP_DOWN};
		if (i < c->n_pops) {
			const struct gslb_pop *cp = &c->pops[i];
			p.state = atomic_load(&v->states->eff[i]);
			p.has4 = cp->has4;
			p.has6 = cp->has6;
			memcpy(p.vip4, cp->vip4, 4);
			memcpy(p.vip6, cp->vip6, 16);
		}
		pops[i] = p;
	}
}

/* Copy v's map into set s. 0, or -E2BIG when it does not fit. */
static int map_copy(struct gslb_xa *x, const struct gslb_view *v, unsigned s, char **err)
{
	volatile struct gx_set *set = &x->skel->bss->gx_conf.set[s];
	set->loaded = 0;
	if (!v->map)
		return 0;
	uint32_t n4, n6;
	const struct gmap_node *t4 = gmap_nodes(v->map, false, &n4);
	const struct gmap_node *t6 = gmap_nodes(v->map, true, &n6);
	unsigned nl = gmap_n_lists(v->map);
	if ((uint64_t)n4 + n6 > x->node_cap || nl > x->list_cap)
		return fail(err, -E2BIG,
			    "xdp answer: the map has %u nodes and %u lists, the program room for "
			    "%u and %u (xdp.max_nodes); gslbd answers every query itself",
			    n4 + n6, nl, x->node_cap, x->list_cap);
	struct gx_node *d = x->nodes + (size_t)s * x->node_cap;
	for (uint32_t i = 0; i < n4; i++)
		d[i] = (struct gx_node){.child = {le32toh(t4[i].child[0]), le32toh(t4[i].child[1])},
					.list = le32toh(t4[i].list)};
	for (uint32_t i = 0; i < n6; i++)
		d[n4 + i] =
		    (struct gx_node){.child = {le32toh(t6[i].child[0]), le32toh(t6[i].child[1])},
				     .list = le32toh(t6[i].list)};
	struct gx_list *l = x->lists + (size_t)s * x->list_cap;
	for (unsigned i = 0; i < nl; i++) {
		const uint8_t *src = gmap_list(v->map, i);
		for (int j = 0; j < GX_LIST_MAX; j++) {
			uint8_t p = src[j];
			l[i].pop[j] = p == GMAP_NONE		     ? GX_NONE
				      : v->map_pop[p] == GSLB_NO_POP ? GX_SKIP
								     : v->map_pop[p];
		}
	}
	set->n_nodes4 = n4;
	set->n_nodes6 = n6;
	set->n_lists = nl;
	set->loaded = 1;
	return 0;
}

int gslb_xa_sync(struct gslb_xa *x, const struct gslb_view *v, char **err)
{
	volatile struct gx_conf *g = &x->skel->bss->gx_conf;
	__atomic_store_n(&g->enabled, 0, __ATOMIC_SEQ_CST);
	__atomic_add_fetch(&g->seq, 2, __ATOMIC_SEQ_CST); /* same set, a new number */
	conf_sync(x, v);
	int rc = names_sync(x, v->conf);
	if (rc)
		return fail(err, rc, "xdp answer: names: %s", strerror(-rc));
	unsigned next = (g->seq & 1) ^ 1;
	rc = map_copy(x, v, next, err);
	__atomic_add_fetch(&g->seq, 1, __ATOMIC_SEQ_CST); /* the other set */
	__atomic_store_n(&g->enabled, 1, __ATOMIC_SEQ_CST);
	return rc;
}

int gslb_xa_attach(struct gslb_xa *x, const char *ifname, char **err)
{
	unsigned idx = if_nametoindex(ifname);
	if (!idx)
		return fail(err, -ENODEV, "xdp answer: no interface %s", ifname);
	int fd = gslb_xa_prog_fd(x);
	uint32_t flags = XDP_FLAGS_UPDATE_IF_NOEXIST | XDP_FLAGS_DRV_MODE;
	int rc = bpf_xdp_attach((int)idx, fd, flags, NULL);
	if (rc == -EOPNOTSUPP || rc == -EINVAL) {
		/* No native XDP in the driver: the generic hook still
		 * answers before the socket path, for less gain. */
		flags = XDP_FLAGS_UPDATE_IF_NOEXIST | XDP_FLAGS_SKB_MODE;
		rc = bpf_xdp_attach((int)idx, fd, flags, NULL);
	}
	if (rc)
		return fail(err, rc, "xdp answer: attach to %s: %s%s", ifname, strerror(-rc),
			    rc == -EBUSY ? " (another XDP program is attached)" : "");
	x->ifindex = idx;
	x->attach_flags = flags;
	return 0;
}

int gslb_xa_counters(struct gslb_xa *x, uint64_t *out)
{
	int ncpu = libbpf_num_possible_cpus();
	if (ncpu <= 0)
		return -EINVAL;
	uint64_t *v = calloc((size_t)ncpu, sizeof(*v));
	if (!v)
		return -ENOMEM;
	int fd = bpf_map__fd(x->skel->maps.gx_counters);
	for (uint32_t k = 0; k < GX_COUNTERS; k++) {
		out[k] = 0;
		if (bpf_map_lookup_elem(fd, &k, v))
			continue;
		for (int c = 0; c < ncpu; c++)
			out[k] += v[c];
	}
	free(v);
	return 0;
}

void gslb_xa_close(struct gslb_xa *x)
{
	if (!x)
		return;
	if (x->attach_flags) {
		/* Only if it is still ours: never take down a program someone
		 * put there since. */
		LIBBPF_OPTS(bpf_xdp_attach_opts, o, .old_prog_fd = gslb_xa_prog_fd(x));
		bpf_xdp_detach((int)x->ifindex,
			       (x->attach_flags & ~XDP_FLAGS_UPDATE_IF_NOEXIST) | XDP_FLAGS_REPLACE,
			       &o);
	}
	if (x->nodes)
		munmap(x->nodes, x->nodes_len);
	if (x->lists)
		munmap(x->lists, x->lists_len);
	gslb_answer_bpf__destroy(x->skel);
	free(x);
}
