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
	struct gx_tab *tabs;
	struct gx_list *lists;
	struct gx_name *names;
	size_t tabs_len, lists_len, names_len;
	uint32_t tab_cap, list_cap;
	int link_fd; /* -1: not attached */
	unsigned ifindex;
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

int gslb_xa_open(uint32_t tab_cap, uint32_t list_cap, struct gslb_xa **out, char **err)
{
	if (!tab_cap || !list_cap || tab_cap > (1u << 26) || list_cap >= GX_ENT_LIST)
		return fail(err, -EINVAL, "xdp answer: capacities out of range");
	struct gslb_xa *x = calloc(1, sizeof(*x));
	if (!x)
		return fail(err, -ENOMEM, "out of memory");
	x->tab_cap = tab_cap;
	x->list_cap = list_cap;
	x->link_fd = -1;
	int rc;
	x->skel = gslb_answer_bpf__open();
	if (!x->skel) {
		rc = -errno;
		free(x);
		return fail(err, rc, "xdp answer: open: %s", strerror(-rc));
	}
	if ((rc = bpf_map__set_max_entries(x->skel->maps.gx_tabs, 2 * tab_cap)) ||
	    (rc = bpf_map__set_max_entries(x->skel->maps.gx_lists, 2 * list_cap)) ||
	    (rc = gslb_answer_bpf__load(x->skel))) {
		gslb_xa_close(x);
		return fail(err, rc, "xdp answer: load: %s", strerror(-rc));
	}
	x->tabs = map_mmap(x->skel->maps.gx_tabs, &x->tabs_len);
	x->lists = map_mmap(x->skel->maps.gx_lists, &x->lists_len);
	x->names = map_mmap(x->skel->maps.gx_names, &x->names_len);
	if (!x->tabs || !x->lists || !x->names) {
		rc = -errno;
		gslb_xa_close(x);
		return fail(err, rc, "xdp answer: mmap: %s", strerror(-rc));
	}
	volatile struct gx_conf *c = &x->skel->bss->gx_conf;
	c->tab_cap = tab_cap;
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

uint32_t gslb_xa_tables(const struct gslb_xa *x)
{
	const volatile struct gx_conf *c = &x->skel->bss->gx_conf;
	return c->set[c->seq & 1].loaded ? c->set[c->seq & 1].n_tabs : 0;
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

/* The service names gslbd answers from the map, into set s's slots
 * (gx_name). Names longer than the program keeps, of more labels than
 * it walks, owned by another zone, or on a slot already taken are left
 * to the sockets. */
static void names_sync(struct gslb_xa *x, const struct gslb_conf *c, unsigned s)
{
	struct gx_name *slots = x->names + (size_t)s * GX_NAME_SLOTS;
	memset(slots, 0, GX_NAME_SLOTS * sizeof(*slots));
	for (unsigned zi = 0; zi < c->n_zones; zi++) {
		const struct gslb_zone *z = &c->zones[zi];
		for (unsigned i = 0; i < z->n_names; i++) {
			const struct gslb_name *nm = &z->names[i];
			size_t len = knot_dname_size(nm->name);
			if (nm->kind != GSLB_NAME_SERVICE || len > GX_NAME_KEY ||
			    knot_dname_labels(nm->name, NULL) > GX_NAME_LABELS ||
			    !zone_of(c, z, nm->name))
				continue;
			struct gx_name n = {.len = (uint32_t)len, .ttl = z->ttl};
			memcpy(n.w, nm->name, len); /* lowercase already (conf.c) */
			uint64_t h = 0;
			for (size_t w = 0; w < GX_NAME_KEY / 8; w++)
				h = gx_name_mix(h, n.w[w]);
			struct gx_name *slot = &slots[gx_name_slot(h)];
			if (!slot->len)
				*slot = n;
		}
	}
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

/* Turning one family's radix tree into 4-bit stride tables (gx_tab). */
struct tab_build {
	const struct gmap_node *t;
	struct gx_tab *out; /* the set's tables */
	uint32_t n, cap;
};

static bool has_kids(const struct gmap_node *n)
{
	return n->child[0] || n->child[1];
}

/*
 * The table for node (which has children, at depth bits of a family of
 * max bits; here is the deepest list on the path to it, itself included),
 * and below it the tables of the nodes 4 bits down: its index + 1, or 0
 * when they do not fit. The loader checked that the nodes form a tree; no
 * walk goes past max bits, so neither does this (it recurses once per 4
 * bits, at most 32 deep).
 */
static uint32_t tab_build(struct tab_build *b, uint32_t node, unsigned depth, unsigned max,
			  uint32_t here)
{
	if (b->n >= b->cap)
		return 0;
	uint32_t ti = b->n++;
	b->out[ti].e[GX_ENT_HERE] = here;
	b->out[ti].e[GX_ENT_HERE + 1] = 0;
	for (unsigned r = 1; r <= 4; r++) {
		for (unsigned v = 0; v < 1u << r; v++) {
			uint32_t i = node, best = here, steps = 0;
			for (unsigned k = 0; k < r; k++) {
				uint32_t c = le32toh(b->t[i].child[(v >> (r - 1 - k)) & 1]);
				if (!c)
					break;
				i = c;
				steps++;
				uint32_t l = le32toh(b->t[i].list);
				if (l)
					best = l;
			}
			uint32_t e = best | steps << GX_ENT_STEPS;
			if (!has_kids(&b->t[i])) {
				e |= GX_ENT_LEAF;
			} else if (r == 4 && steps == 4 && depth + 4 < max) {
				uint32_t next = tab_build(b, i, depth + 4, max, best);
				if (!next)
					return 0;
				e = GX_ENT_NEXT | next;
			}
			b->out[ti].e[(1u << r) - 2 + v] = e;
		}
	}
	return ti + 1;
}

/* Copy v's map into set s. 0, or -E2BIG when it does not fit. */
static int map_copy(struct gslb_xa *x, const struct gslb_view *v, unsigned s, char **err)
{
	volatile struct gx_set *set = &x->skel->bss->gx_conf.set[s];
	set->loaded = 0;
	if (!v->map)
		return 0;
	unsigned nl = gmap_n_lists(v->map);
	if (nl > x->list_cap)
		return fail(err, -E2BIG,
			    "xdp answer: the map has %u lists, the program room for %u; gslbd "
			    "answers every query itself",
			    nl, x->list_cap);
	struct tab_build b = {.out = x->tabs + (size_t)s * x->tab_cap, .cap = x->tab_cap};
	uint32_t root_tab[2], root_list[2];
	for (int f = 0; f < 2; f++) {
		uint32_t n;
		b.t = gmap_nodes(v->map, f, &n);
		root_list[f] = le32toh(b.t[0].list);
		root_tab[f] = 0;
		if (has_kids(&b.t[0]) &&
		    !(root_tab[f] = tab_build(&b, 0, 0, f ? 128 : 32, root_list[f])))
			return fail(err, -E2BIG,
				    "xdp answer: the map needs more than the program's %u tables "
				    "(xdp.max_nodes / 2); gslbd answers every query itself",
				    x->tab_cap);
	}
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
	set->n_tabs = b.n;
	for (int f = 0; f < 2; f++) {
		set->root_tab[f] = root_tab[f];
		set->root_list[f] = root_list[f];
	}
	set->n_lists = nl;
	set->loaded = 1;
	return 0;
}

int gslb_xa_sync(struct gslb_xa *x, const struct gslb_view *v, char **err)
{
	volatile struct gx_conf *g = &x->skel->bss->gx_conf;
	/*
	 * The names and the map go into the idle set while the program
	 * still answers from the other (building the tables takes some
	 * 20 ms for a big map): a walk that is still in the idle set began
	 * before the last flip, so it sees seq moved and passes its query
	 * on. Only the rest (listen, PoPs, rate limit: written in place)
	 * needs the program off, for a moment.
	 */
	unsigned next = (g->seq & 1) ^ 1;
	names_sync(x, v->conf, next);
	int rc = map_copy(x, v, next, err);
	__atomic_store_n(&g->enabled, 0, __ATOMIC_SEQ_CST);
	__atomic_add_fetch(&g->seq, 2, __ATOMIC_SEQ_CST); /* same set, a new number */
	conf_sync(x, v);
	__atomic_add_fetch(&g->seq, 1, __ATOMIC_SEQ_CST); /* the other set */
	__atomic_store_n(&g->enabled, 1, __ATOMIC_SEQ_CST);
	return rc;
}

int gslb_xa_attach(struct gslb_xa *x, const char *ifname, char **err)
{
	unsigned idx = if_nametoindex(ifname);
	if (!idx)
		return fail(err, -ENODEV, "xdp answer: no interface %s", ifname);
	if (x->link_fd >= 0)
		return fail(err, -EALREADY, "xdp answer: already attached");
	/*
	 * A BPF link, not a netlink attach: the kernel takes the program off
	 * the interface when the link's last fd closes, so a gslbd that dies
	 * (kill -9, a crash) leaves no program answering from frozen PoP
	 * states, and the next start is not refused. The driver's native
	 * hook first; where the driver has none or refuses the program (a
	 * virtio_net with offloads on, an MTU too big for its XDP), the
	 * generic one. A link never replaces another program (-EBUSY).
	 */
	int fd = gslb_xa_prog_fd(x);
	LIBBPF_OPTS(bpf_link_create_opts, o);
	int lfd = bpf_link_create(fd, (int)idx, BPF_XDP, &o);
	if (lfd == -EOPNOTSUPP || lfd == -EINVAL) {
		o.flags = XDP_FLAGS_SKB_MODE;
		lfd = bpf_link_create(fd, (int)idx, BPF_XDP, &o);
	}
	if (lfd < 0)
		return fail(err, lfd, "xdp answer: attach to %s: %s%s", ifname, strerror(-lfd),
			    lfd == -EBUSY ? " (another XDP program is attached)" : "");
	x->link_fd = lfd;
	x->ifindex = idx;
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
	if (x->link_fd >= 0)
		close(x->link_fd); /* detaches: the link is ours alone */
	if (x->tabs)
		munmap(x->tabs, x->tabs_len);
	if (x->lists)
		munmap(x->lists, x->lists_len);
	if (x->names)
		munmap(x->names, x->names_len);
	gslb_answer_bpf__destroy(x->skel);
	free(x);
}
