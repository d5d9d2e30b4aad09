// SPDX-License-Identifier: GPL-2.0-only
/*
 * export.c - a map as a gdnsd 3 geoip plugin "nets" file, so that a
 * benchmark can run gdnsd on exactly the data gslbd serves.
 *
 * gdnsd's nets differ from our map in three ways that change answers if
 * ignored (gdnsd-plugin-geoip(8) and its nets normalisation):
 *
 *  1. It merges sibling nets with equal lists into their parent; when the
 *     result equals a net listed with another list, it keeps one of the two
 *     arbitrarily (and warns). That can only happen to an entry entirely
 *     covered by more specific ones, which never answers for a whole
 *     address, so such entries are left out.
 *  2. It stores IPv4 as ::/96 (v4compat) in one IPv6 tree: an IPv6 entry
 *     covering ::/96 would answer IPv4 clients our map does not answer. It
 *     is written as the pieces of itself around ::/96. IPv6 entries inside
 *     ::/96 would collide with IPv4 ones and are left out.
 *  3. It refuses (the whole file) IPv6 nets inside its other IPv4-like
 *     spaces: v4mapped, SIIT, WKP, Teredo, 6to4. Those are left out.
 *
 * Everything else is one line per entry; nesting is fine, since gdnsd
 * lets the more specific net win as our lookup does.
 */
#include "mapbuild.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

struct enode {
	uint32_t child[2];
	const uint8_t *list; /* borrowed from the map; NULL: no entry */
	bool full;	     /* every address below is covered by an entry */
};

struct etree {
	struct enode *n;
	size_t len, cap;
};

struct ex {
	const struct gmap *m;
	struct etree t[2];
	FILE *out;
	size_t skipped;
	int rc;
};

/* IPv6 spaces gdnsd refuses nets in (gdnsd-plugin-geoip(8), IPv4 Compatible Addresses). */
static const struct {
	uint8_t addr[16];
	unsigned plen;
} v4like[] = {
    {{0}, 96},					      /* ::/96 v4compat: IPv4 itself */
    {{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff}, 96}, /* ::ffff:0:0/96 v4mapped */
    {{0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff}, 96},	      /* ::ffff:0:0:0/96 SIIT */
    {{0, 0x64, 0xff, 0x9b}, 96},		      /* 64:ff9b::/96 WKP */
    {{0x20, 0x01}, 32},				      /* 2001::/32 Teredo */
    {{0x20, 0x02}, 16},				      /* 2002::/16 6to4 */
};

static inline unsigned bit_at(const uint8_t *a, unsigned d)
{
	return (a[d >> 3] >> (7 - (d & 7))) & 1;
}

/* Whether a/plen lies inside (or is) b/blen. */
static bool inside(const uint8_t *a, unsigned plen, const uint8_t *b, unsigned blen)
{
	if (plen < blen)
		return false;
	for (unsigned d = 0; d < blen; d++)
		if (bit_at(a, d) != bit_at(b, d))
			return false;
	return true;
}

static int64_t node(struct etree *t)
{
	if (t->len == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 1024;
		struct enode *n = realloc(t->n, cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		t->n = n;
		t->cap = cap;
	}
	t->n[t->len] = (struct enode){0};
	return (int64_t)t->len++;
}

static int collect(void *arg, int family, const uint8_t *prefix, unsigned plen, const uint8_t *list)
{
	struct ex *x = arg;
	int f = family == AF_INET6;
	if (f)
		for (size_t k = 0; k < sizeof(v4like) / sizeof(v4like[0]); k++)
			if (inside(prefix, plen, v4like[k].addr, v4like[k].plen)) {
				x->skipped++;
				return 0;
			}
	struct etree *t = &x->t[f];
	if (!t->len && node(t) < 0)
		return -ENOMEM;
	uint32_t i = 0;
	for (unsigned d = 0; d < plen; d++) {
		unsigned b = bit_at(prefix, d);
		if (!t->n[i].child[b]) {
			int64_t c = node(t);
			if (c < 0)
				return -ENOMEM;
			t->n[i].child[b] = (uint32_t)c;
		}
		i = t->n[i].child[b];
	}
	t->n[i].list = list;
	return 0;
}

static bool mark_full(struct etree *t, uint32_t i)
{
	struct enode *n = &t->n[i];
	bool full = n->child[0] && n->child[1];
	for (int b = 0; b < 2; b++)
		if (n->child[b] && !mark_full(t, n->child[b]))
			full = false;
	t->n[i].full = full || n->list;
	return t->n[i].full;
}

static bool shadowed(const struct etree *t, const struct enode *n)
{
	return n->child[0] && n->child[1] && t->n[n->child[0]].full && t->n[n->child[1]].full;
}

static void line(struct ex *x, int f, const uint8_t *prefix, unsigned plen, const uint8_t *list)
{
	char a[INET6_ADDRSTRLEN];
	inet_ntop(f ? AF_INET6 : AF_INET, prefix, a, sizeof(a));
	fprintf(x->out, "%s/%u => [ ", a, plen);
	for (unsigned i = 0; i < GMAP_LIST_MAX && list[i] != GMAP_NONE; i++)
		fprintf(x->out, "%s%s", i ? ", " : "", gmap_pop_name(x->m, list[i]));
	fprintf(x->out, " ]\n");
}

/*
 * The IPv6 entry at node i (depth d, all-zero prefix so far) covers ::/96:
 * write its list on each branch leaving the path to ::/96, down to ::/96
 * or to the next entry on the path (which does the same for the rest).
 */
static void carve(struct ex *x, uint32_t i, unsigned d, const uint8_t *list)
{
	const struct etree *t = &x->t[1];
	bool on_path = true; /* node i exists (i may be 0: the root) */
	for (; d < 96; d++) {
		uint32_t sib = on_path ? t->n[i].child[1] : 0;
		if (!sib || !(t->n[sib].list || t->n[sib].full)) {
			uint8_t piece[16] = {0};
			piece[d >> 3] = (uint8_t)(0x80 >> (d & 7));
			line(x, 1, piece, d + 1, list);
		}
		if (on_path) {
			i = t->n[i].child[0];
			on_path = i != 0;
		}
		if (on_path && t->n[i].list)
			return;
	}
}

static void emit(struct ex *x, int f, uint32_t i, uint8_t *prefix, unsigned depth)
{
	const struct etree *t = &x->t[f];
	const struct enode *n = &t->n[i];
	if (n->list && !shadowed(t, n)) {
		static const uint8_t zero[16];
		if (f && depth <= 96 && inside(zero, 96, prefix, depth))
			carve(x, i, depth, n->list);
		else
			line(x, f, prefix, depth, n->list);
	}
	for (int b = 0; b < 2; b++) {
		if (!n->child[b])
			continue;
		uint8_t mask = (uint8_t)(0x80 >> (depth & 7));
		if (b)
			prefix[depth >> 3] |= mask;
		emit(x, f, n->child[b], prefix, depth + 1);
		prefix[depth >> 3] &= (uint8_t)~mask;
	}
}

int mb_write_gdnsd(const struct gmap *m, FILE *out, size_t *skipped)
{
	struct ex x = {.m = m, .out = out};
	int rc = gmap_each(m, collect, &x);
	if (rc)
		goto out;
	fprintf(out, "# gdnsd geoip nets, written by gslb-map; the map's datacenters:\n"
		     "# datacenters => [ ");
	for (unsigned i = 0; i < gmap_n_pops(m); i++)
		fprintf(out, "%s%s", i ? ", " : "", gmap_pop_name(m, i));
	fprintf(out, " ]\n");
	for (int f = 0; f < 2; f++) {
		if (!x.t[f].len)
			continue;
		uint8_t prefix[16] = {0};
		mark_full(&x.t[f], 0);
		emit(&x, f, 0, prefix, 0);
	}
	rc = ferror(out) || fflush(out) ? -EIO : 0;
out:
	free(x.t[0].n);
	free(x.t[1].n);
	*skipped = x.skipped;
	return rc;
}
