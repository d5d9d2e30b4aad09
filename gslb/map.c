// SPDX-License-Identifier: GPL-2.0-only
/*
 * map.c - the GSLB map file: loading with every check a hostile or torn
 * file needs, the lookup gslbd runs per query, and the builder gslb-map
 * writes with. The format is described in map.h.
 */
#include "map.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

_Static_assert(sizeof(struct gmap_header) == GMAP_HEADER_SIZE, "header size");
_Static_assert(sizeof(struct gmap_node) == 12, "node size");

struct gmap {
	const uint8_t *base;
	size_t len;
	bool mapped;
	const struct gmap_header *hdr;
	const char (*pops)[GMAP_POP_NAME];
	const uint8_t (*lists)[GMAP_LIST_MAX];
	const struct gmap_node *nodes[2]; /* [0] IPv4, [1] IPv6 */
	uint32_t n_nodes[2];
	uint32_t n_pops, n_lists;
};

static int fail(char **err, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char **err, int rc, const char *fmt, ...)
{
	if (err) {
		va_list ap;
		va_start(ap, fmt);
		if (vasprintf(err, fmt, ap) < 0)
			*err = NULL;
		va_end(ap);
	}
	return rc;
}

static bool name_ok(const char *s, size_t cap)
{
	size_t n = strnlen(s, cap);
	if (n == 0 || n >= cap)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
			return false;
	}
	/* NUL padding, so that two files with the same content are equal. */
	for (size_t i = n; i < cap; i++)
		if (s[i])
			return false;
	return true;
}

static int check_tree(const struct gmap_node *nodes, uint32_t n, uint32_t n_lists, const char *fam,
		      char **err)
{
	if (n == 0)
		return fail(err, -EINVAL, "map: the %s tree has no root", fam);
	/* Every node but the root has exactly one parent: a tree, not a graph
	 * whose shared branches would make a full walk exponential. */
	uint8_t *seen = calloc(n, 1);
	if (!seen)
		return fail(err, -ENOMEM, "map: out of memory");
	int rc = 0;
	for (uint32_t i = 0; i < n && !rc; i++) {
		for (int b = 0; b < 2 && !rc; b++) {
			uint32_t c = le32toh(nodes[i].child[b]);
			if (!c)
				continue;
			/* Children after their parent: every walk ends. */
			if (c <= i || c >= n)
				rc = fail(err, -EINVAL, "map: %s node %u: child %u out of order",
					  fam, i, c);
			else if (seen[c]++)
				rc = fail(err, -EINVAL, "map: %s node %u has two parents", fam, c);
		}
		if (!rc && i && !seen[i])
			rc = fail(err, -EINVAL, "map: %s node %u has no parent", fam, i);
		if (!rc && le32toh(nodes[i].list) > n_lists)
			rc = fail(err, -EINVAL, "map: %s node %u: list %u past %u lists", fam, i,
				  le32toh(nodes[i].list), n_lists);
	}
	free(seen);
	return rc;
}

int gmap_parse(const void *buf, size_t len, struct gmap **out, char **err)
{
	const struct gmap_header *h = buf;
	*out = NULL;
	if (len < GMAP_HEADER_SIZE)
		return fail(err, -EINVAL, "map: %zu bytes, shorter than its header", len);
	if (memcmp(h->magic, GMAP_MAGIC, 8) != 0)
		return fail(err, -EINVAL, "map: not a GSLB map (bad magic)");
	if (le32toh(h->version) != GMAP_VERSION)
		return fail(err, -EINVAL, "map: version %u, this build reads %u",
			    le32toh(h->version), GMAP_VERSION);
	if (le32toh(h->header_size) != GMAP_HEADER_SIZE)
		return fail(err, -EINVAL, "map: header size %u", le32toh(h->header_size));
	if (le64toh(h->file_size) != len)
		return fail(err, -EINVAL, "map: %zu bytes, the header says %llu (truncated?)", len,
			    (unsigned long long)le64toh(h->file_size));

	uint32_t n_pops = le32toh(h->n_pops), n_lists = le32toh(h->n_lists);
	uint32_t n4 = le32toh(h->n_nodes4), n6 = le32toh(h->n_nodes6);
	if (n_pops == 0 || n_pops > GMAP_MAX_POPS)
		return fail(err, -EINVAL, "map: %u PoPs (1..%u)", n_pops, GMAP_MAX_POPS);
	/* 64-bit sums of 32-bit counts cannot overflow. */
	uint64_t need = (uint64_t)GMAP_HEADER_SIZE + (uint64_t)n_pops * GMAP_POP_NAME +
			(uint64_t)n_lists * GMAP_LIST_MAX +
			((uint64_t)n4 + n6) * sizeof(struct gmap_node);
	if (need != len)
		return fail(err, -EINVAL, "map: counts need %llu bytes, the file has %zu",
			    (unsigned long long)need, len);
	const uint8_t *p = (const uint8_t *)buf + GMAP_HEADER_SIZE;
	uLong crc = crc32(0L, Z_NULL, 0);
	/* zlib takes uInt lengths: feed big files in pieces. */
	for (size_t off = 0, left = len - GMAP_HEADER_SIZE; left;) {
		uInt step = left > (1u << 30) ? (1u << 30) : (uInt)left;
		crc = crc32(crc, p + off, step);
		off += step;
		left -= step;
	}
	if ((uint32_t)crc != le32toh(h->crc32))
		return fail(err, -EINVAL, "map: checksum mismatch (corrupt or partly written)");

	struct gmap *m = calloc(1, sizeof(*m));
	if (!m)
		return fail(err, -ENOMEM, "map: out of memory");
	m->base = buf;
	m->len = len;
	m->hdr = h;
	m->n_pops = n_pops;
	m->n_lists = n_lists;
	m->pops = (const void *)p;
	p += (size_t)n_pops * GMAP_POP_NAME;
	m->lists = (const void *)p;
	p += (size_t)n_lists * GMAP_LIST_MAX;
	m->nodes[0] = (const void *)p;
	m->n_nodes[0] = n4;
	p += (size_t)n4 * sizeof(struct gmap_node);
	m->nodes[1] = (const void *)p;
	m->n_nodes[1] = n6;

	int rc = 0;
	for (uint32_t i = 0; i < n_pops && !rc; i++)
		if (!name_ok(m->pops[i], GMAP_POP_NAME))
			rc = fail(err, -EINVAL, "map: PoP %u has a bad name", i);
	for (uint32_t i = 0; i < n_lists && !rc; i++) {
		const uint8_t *l = m->lists[i];
		unsigned n = 0;
		while (n < GMAP_LIST_MAX && l[n] != GMAP_NONE)
			n++;
		if (n == 0)
			rc = fail(err, -EINVAL, "map: list %u is empty", i);
		for (unsigned j = 0; j < GMAP_LIST_MAX && !rc; j++) {
			if (j >= n && l[j] != GMAP_NONE)
				rc = fail(err, -EINVAL, "map: list %u has a hole", i);
			else if (j < n && l[j] >= n_pops)
				rc = fail(err, -EINVAL, "map: list %u names PoP %u of %u", i, l[j],
					  n_pops);
			for (unsigned k = 0; k < j && j < n && !rc; k++)
				if (l[k] == l[j])
					rc = fail(err, -EINVAL, "map: list %u repeats a PoP", i);
		}
	}
	if (!rc)
		rc = check_tree(m->nodes[0], n4, n_lists, "IPv4", err);
	if (!rc)
		rc = check_tree(m->nodes[1], n6, n_lists, "IPv6", err);
	if (rc) {
		free(m);
		return rc;
	}
	*out = m;
	return 0;
}

int gmap_open(const char *path, struct gmap **out, char **err)
{
	return gmap_open_stat(path, out, NULL, err);
}

int gmap_open_stat(const char *path, struct gmap **out, struct stat *id, char **err)
{
	*out = NULL;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fail(err, -errno, "%s: %s", path, strerror(errno));
	struct stat st;
	if (fstat(fd, &st) < 0) {
		int e = errno;
		close(fd);
		return fail(err, -e, "%s: %s", path, strerror(e));
	}
	if (id)
		*id = st; /* of the very file read, whatever is renamed in later */
	if (!S_ISREG(st.st_mode) || st.st_size < GMAP_HEADER_SIZE) {
		close(fd);
		return fail(err, -EINVAL, "%s: not a map file (%lld bytes)", path,
			    (long long)st.st_size);
	}
	/*
	 * Read the file into private anonymous memory rather than mapping the
	 * file: a mapping of the file changes under the reader when someone
	 * rewrites it in place (cp over it truncates the same inode), which
	 * would crash the server (SIGBUS) or walk a tree that is no longer the
	 * one checked. The copy is what was checked, then made read-only.
	 */
	size_t size = st.st_size;
	void *base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (base == MAP_FAILED) {
		int e = errno;
		close(fd);
		return fail(err, -e, "%s: mmap: %s", path, strerror(e));
	}
	size_t got = 0;
	while (got < size) {
		ssize_t r = read(fd, (uint8_t *)base + got, size - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += r;
	}
	close(fd);
	if (got != size) {
		munmap(base, size);
		return fail(err, -EINVAL, "%s: read %zu of %zu bytes (changed while read?)", path,
			    got, size);
	}
	mprotect(base, size, PROT_READ);
	char *why = NULL;
	int rc = gmap_parse(base, size, out, err ? &why : NULL);
	if (rc) {
		munmap(base, size);
		if (err) {
			fail(err, rc, "%s: %s", path, why ? why : "bad map");
			free(why);
		}
		return rc;
	}
	(*out)->mapped = true;
	return 0;
}

void gmap_close(struct gmap *m)
{
	if (!m)
		return;
	if (m->mapped)
		munmap((void *)m->base, m->len);
	free(m);
}

const struct gmap_header *gmap_header(const struct gmap *m)
{
	return m->hdr;
}

unsigned gmap_n_pops(const struct gmap *m)
{
	return m->n_pops;
}

const char *gmap_pop_name(const struct gmap *m, unsigned i)
{
	return i < m->n_pops ? m->pops[i] : NULL;
}

static inline unsigned bit_at(const uint8_t *a, unsigned d)
{
	return (a[d >> 3] >> (7 - (d & 7))) & 1;
}

const struct gmap_node *gmap_nodes(const struct gmap *m, bool v6, uint32_t *n)
{
	*n = m->n_nodes[v6];
	return m->nodes[v6];
}

unsigned gmap_n_lists(const struct gmap *m)
{
	return m->n_lists;
}

const uint8_t *gmap_list(const struct gmap *m, unsigned i)
{
	return m->lists[i];
}

const uint8_t *gmap_lookup(const struct gmap *m, int family, const uint8_t *addr, unsigned bits,
			   unsigned *match, unsigned *scope)
{
	int f = family == AF_INET6;
	unsigned max = f ? 128 : 32;
	if (bits > max)
		bits = max;
	const struct gmap_node *nodes = m->nodes[f];
	uint32_t i = 0, best = le32toh(nodes[0].list);
	unsigned depth = 0, best_len = 0;
	while (depth < bits) {
		uint32_t c = le32toh(nodes[i].child[bit_at(addr, depth)]);
		if (!c)
			break;
		i = c;
		depth++;
		uint32_t l = le32toh(nodes[i].list);
		if (l) {
			best = l;
			best_len = depth;
		}
	}
	/*
	 * The walk stopped at node i after depth bits. A leaf decides for the
	 * whole prefix it stands for; otherwise the next bit matters too (the
	 * branch not taken, or the bits the client did not reveal, may hold
	 * a more specific entry).
	 */
	bool leaf = !nodes[i].child[0] && !nodes[i].child[1];
	unsigned s = leaf ? depth : depth + 1;
	*scope = s > max ? max : s;
	*match = best ? best_len : 0;
	return best ? m->lists[best - 1] : NULL;
}

static int each_walk(const struct gmap *m, int f, uint32_t i, uint8_t *prefix, unsigned depth,
		     gmap_each_fn fn, void *arg)
{
	const struct gmap_node *n = &m->nodes[f][i];
	uint32_t l = le32toh(n->list);
	if (l) {
		int rc = fn(arg, f ? AF_INET6 : AF_INET, prefix, depth, m->lists[l - 1]);
		if (rc)
			return rc;
	}
	for (int b = 0; b < 2; b++) {
		uint32_t c = le32toh(n->child[b]);
		if (!c || depth >= (f ? 128u : 32u))
			continue;
		uint8_t mask = 0x80 >> (depth & 7);
		if (b)
			prefix[depth >> 3] |= mask;
		else
			prefix[depth >> 3] &= ~mask;
		int rc = each_walk(m, f, c, prefix, depth + 1, fn, arg);
		prefix[depth >> 3] &= ~mask;
		if (rc)
			return rc;
	}
	return 0;
}

int gmap_each(const struct gmap *m, gmap_each_fn fn, void *arg)
{
	for (int f = 0; f < 2; f++) {
		uint8_t prefix[16] = {0};
		int rc = each_walk(m, f, 0, prefix, 0, fn, arg);
		if (rc)
			return rc;
	}
	return 0;
}

/* ---- builder ---- */

struct bnode {
	uint32_t child[2];
	int32_t list; /* -1: no entry */
};

struct btree {
	struct bnode *n;
	uint32_t len, cap;
};

struct gmap_builder {
	char pops[GMAP_MAX_POPS][GMAP_POP_NAME];
	unsigned n_pops;
	struct btree tree[2];
	uint64_t *lists; /* 8 PoP bytes packed, for hashing */
	uint32_t n_lists, cap_lists;
	uint32_t *slots; /* open addressing: list index + 1 */
	uint32_t n_slots;
	uint32_t n_prefixes[2];
};

static int64_t tree_node(struct btree *t)
{
	if (t->len == t->cap) {
		uint32_t cap = t->cap ? t->cap * 2 : 1024;
		struct bnode *n = realloc(t->n, (size_t)cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		t->n = n;
		t->cap = cap;
	}
	t->n[t->len] = (struct bnode){.list = -1};
	return t->len++;
}

struct gmap_builder *gmap_builder_new(void)
{
	struct gmap_builder *b = calloc(1, sizeof(*b));
	if (!b)
		return NULL;
	for (int f = 0; f < 2; f++)
		if (tree_node(&b->tree[f]) < 0) {
			gmap_builder_free(b);
			return NULL;
		}
	return b;
}

void gmap_builder_free(struct gmap_builder *b)
{
	if (!b)
		return;
	free(b->tree[0].n);
	free(b->tree[1].n);
	free(b->lists);
	free(b->slots);
	free(b);
}

int gmap_builder_pop(struct gmap_builder *b, const char *name)
{
	char padded[GMAP_POP_NAME] = {0};
	size_t n = strlen(name);
	if (n == 0 || n >= GMAP_POP_NAME)
		return -EINVAL;
	memcpy(padded, name, n);
	if (!name_ok(padded, GMAP_POP_NAME))
		return -EINVAL;
	for (unsigned i = 0; i < b->n_pops; i++)
		if (!strcmp(b->pops[i], name))
			return i;
	if (b->n_pops == GMAP_MAX_POPS)
		return -ENOSPC;
	memcpy(b->pops[b->n_pops], padded, GMAP_POP_NAME);
	return b->n_pops++;
}

static uint32_t hash64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	return (uint32_t)x;
}

/* Index of list key, added if new; -ENOMEM. */
static int64_t list_index(struct gmap_builder *b, uint64_t key)
{
	if ((uint64_t)(b->n_lists + 1) * 2 > b->n_slots) {
		uint32_t ns = b->n_slots ? b->n_slots * 2 : 256;
		uint32_t *slots = calloc(ns, sizeof(*slots));
		if (!slots)
			return -ENOMEM;
		for (uint32_t i = 0; i < b->n_lists; i++) {
			uint32_t h = hash64(b->lists[i]) & (ns - 1);
			while (slots[h])
				h = (h + 1) & (ns - 1);
			slots[h] = i + 1;
		}
		free(b->slots);
		b->slots = slots;
		b->n_slots = ns;
	}
	uint32_t h = hash64(key) & (b->n_slots - 1);
	while (b->slots[h]) {
		if (b->lists[b->slots[h] - 1] == key)
			return b->slots[h] - 1;
		h = (h + 1) & (b->n_slots - 1);
	}
	if (b->n_lists == b->cap_lists) {
		uint32_t cap = b->cap_lists ? b->cap_lists * 2 : 64;
		uint64_t *l = realloc(b->lists, (size_t)cap * sizeof(*l));
		if (!l)
			return -ENOMEM;
		b->lists = l;
		b->cap_lists = cap;
	}
	b->lists[b->n_lists] = key;
	b->slots[h] = b->n_lists + 1;
	return b->n_lists++;
}

int gmap_builder_add(struct gmap_builder *b, int family, const uint8_t *addr, unsigned plen,
		     const uint8_t *pops, unsigned n)
{
	if (family != AF_INET && family != AF_INET6)
		return -EINVAL;
	int f = family == AF_INET6;
	if (plen > (f ? 128u : 32u) || n == 0 || n > GMAP_LIST_MAX)
		return -EINVAL;
	uint8_t l[GMAP_LIST_MAX];
	memset(l, GMAP_NONE, sizeof(l));
	for (unsigned i = 0; i < n; i++) {
		if (pops[i] >= b->n_pops)
			return -EINVAL;
		for (unsigned j = 0; j < i; j++)
			if (pops[j] == pops[i])
				return -EINVAL;
		l[i] = pops[i];
	}
	uint64_t key;
	memcpy(&key, l, sizeof(key));
	int64_t li = list_index(b, key);
	if (li < 0)
		return (int)li;

	struct btree *t = &b->tree[f];
	uint32_t i = 0;
	for (unsigned d = 0; d < plen; d++) {
		unsigned bit = bit_at(addr, d);
		if (!t->n[i].child[bit]) {
			int64_t c = tree_node(t);
			if (c < 0)
				return (int)c;
			t->n[i].child[bit] = (uint32_t)c;
		}
		i = t->n[i].child[bit];
	}
	if (t->n[i].list < 0)
		b->n_prefixes[f]++;
	t->n[i].list = (int32_t)li;
	return 0;
}

/* Serialisation state: which nodes survive pruning, and their new indices. */
struct emit {
	struct gmap_builder *b;
	bool prune;
	uint8_t *live; /* per builder node of the tree being written */
	struct gmap_node *out;
	uint32_t n_out;
	int32_t *list_map; /* builder list -> file list + 1, 0 = not yet */
	uint32_t n_lists_out;
	uint8_t (*lists_out)[GMAP_LIST_MAX];
	uint32_t n_entries;
};

static bool entry_kept(const struct emit *e, const struct bnode *n, int32_t inherited)
{
	return n->list >= 0 && !(e->prune && n->list == inherited);
}

/* Post-order: does the subtree of node i hold an entry that is written? */
static bool mark_live(struct emit *e, const struct btree *t, uint32_t i, int32_t inherited)
{
	const struct bnode *n = &t->n[i];
	bool live = entry_kept(e, n, inherited);
	int32_t inh = n->list >= 0 ? n->list : inherited;
	for (int b = 0; b < 2; b++)
		if (n->child[b] && mark_live(e, t, n->child[b], inh))
			live = true;
	e->live[i] = live;
	return live;
}

static uint32_t emit_node(struct emit *e, const struct btree *t, uint32_t i, int32_t inherited)
{
	const struct bnode *n = &t->n[i];
	uint32_t me = e->n_out++;
	struct gmap_node *o = &e->out[me];
	*o = (struct gmap_node){0};
	if (entry_kept(e, n, inherited)) {
		if (!e->list_map[n->list]) {
			memcpy(e->lists_out[e->n_lists_out], &e->b->lists[n->list], GMAP_LIST_MAX);
			e->list_map[n->list] = (int32_t)++e->n_lists_out;
		}
		o->list = htole32((uint32_t)e->list_map[n->list]);
		e->n_entries++;
	}
	int32_t inh = n->list >= 0 ? n->list : inherited;
	for (int b = 0; b < 2; b++)
		if (n->child[b] && e->live[n->child[b]]) {
			uint32_t c = emit_node(e, t, n->child[b], inh);
			/* e->out may not move: it was sized for the whole tree. */
			e->out[me].child[b] = htole32(c);
		}
	return me;
}

int gmap_builder_serialize(struct gmap_builder *b, const struct gmap_meta *meta, bool prune,
			   void **buf, size_t *len)
{
	*buf = NULL;
	*len = 0;
	struct gmap_node *nodes[2] = {NULL, NULL};
	uint32_t n_nodes[2] = {0, 0}, n_entries[2] = {0, 0};
	struct emit e = {.b = b, .prune = prune};
	int rc = -ENOMEM;
	e.list_map = calloc(b->n_lists ? b->n_lists : 1, sizeof(*e.list_map));
	e.lists_out = calloc(b->n_lists ? b->n_lists : 1, GMAP_LIST_MAX);
	if (!e.list_map || !e.lists_out)
		goto out;
	for (int f = 0; f < 2; f++) {
		const struct btree *t = &b->tree[f];
		e.live = calloc(t->len, 1);
		nodes[f] = calloc(t->len, sizeof(struct gmap_node));
		if (!e.live || !nodes[f]) {
			free(e.live);
			goto out;
		}
		mark_live(&e, t, 0, -1);
		e.live[0] = 1; /* the root is always written */
		e.out = nodes[f];
		e.n_out = 0;
		e.n_entries = 0;
		emit_node(&e, t, 0, -1);
		n_nodes[f] = e.n_out;
		n_entries[f] = e.n_entries;
		free(e.live);
		e.live = NULL;
	}
	size_t size = GMAP_HEADER_SIZE + (size_t)b->n_pops * GMAP_POP_NAME +
		      (size_t)e.n_lists_out * GMAP_LIST_MAX +
		      ((size_t)n_nodes[0] + n_nodes[1]) * sizeof(struct gmap_node);
	uint8_t *img = calloc(1, size);
	if (!img)
		goto out;
	struct gmap_header *h = (void *)img;
	memcpy(h->magic, GMAP_MAGIC, 8);
	h->version = htole32(GMAP_VERSION);
	h->header_size = htole32(GMAP_HEADER_SIZE);
	h->file_size = htole64(size);
	h->n_pops = htole32(b->n_pops);
	h->n_lists = htole32(e.n_lists_out);
	h->n_nodes4 = htole32(n_nodes[0]);
	h->n_nodes6 = htole32(n_nodes[1]);
	h->n_prefixes4 = htole32(n_entries[0]);
	h->n_prefixes6 = htole32(n_entries[1]);
	h->score_ppm = htole32(meta ? meta->score_ppm : GMAP_NOT_SCORED);
	h->regret_us = htole32(meta ? meta->regret_us : 0);
	h->holdout = htole32(meta ? meta->holdout : 0);
	h->created = htole64(meta ? meta->created : 0);
	h->samples = htole64(meta ? meta->samples : 0);
	uint8_t *p = img + GMAP_HEADER_SIZE;
	memcpy(p, b->pops, (size_t)b->n_pops * GMAP_POP_NAME);
	p += (size_t)b->n_pops * GMAP_POP_NAME;
	memcpy(p, e.lists_out, (size_t)e.n_lists_out * GMAP_LIST_MAX);
	p += (size_t)e.n_lists_out * GMAP_LIST_MAX;
	for (int f = 0; f < 2; f++) {
		memcpy(p, nodes[f], (size_t)n_nodes[f] * sizeof(struct gmap_node));
		p += (size_t)n_nodes[f] * sizeof(struct gmap_node);
	}
	uLong crc = crc32(0L, Z_NULL, 0);
	for (size_t off = GMAP_HEADER_SIZE; off < size;) {
		uInt step = size - off > (1u << 30) ? (1u << 30) : (uInt)(size - off);
		crc = crc32(crc, img + off, step);
		off += step;
	}
	h->crc32 = htole32((uint32_t)crc);
	*buf = img;
	*len = size;
	rc = 0;
out:
	free(nodes[0]);
	free(nodes[1]);
	free(e.list_map);
	free(e.lists_out);
	return rc;
}

int gmap_write_file(const char *path, const void *buf, size_t len, char **err)
{
	char tmp[PATH_MAX];
	if (snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid()) >= (int)sizeof(tmp))
		return fail(err, -ENAMETOOLONG, "%s: path too long", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return fail(err, -errno, "%s: %s", tmp, strerror(errno));
	const uint8_t *p = buf;
	size_t left = len;
	while (left) {
		ssize_t w = write(fd, p, left);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			int e = w < 0 ? errno : EIO;
			close(fd);
			unlink(tmp);
			return fail(err, -e, "%s: write: %s", tmp, strerror(e));
		}
		p += w;
		left -= w;
	}
	int synced = fsync(fd), e = errno;
	if (close(fd) < 0 && synced == 0) {
		synced = -1;
		e = errno;
	}
	if (synced < 0) {
		unlink(tmp);
		return fail(err, -e, "%s: %s", tmp, strerror(e));
	}
	if (rename(tmp, path) < 0) {
		int e = errno;
		unlink(tmp);
		return fail(err, -e, "rename %s: %s", path, strerror(e));
	}
	/* The rename itself is durable only once the directory is synced. */
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s", path);
	int dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	return 0;
}
