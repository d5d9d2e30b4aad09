/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * map.h - the GSLB map file: client prefixes (IPv4 and IPv6) -> an ordered
 * list of PoPs, as a binary radix tree that gslbd loads with one read into
 * read-only memory and uses in place, without parsing into other
 * structures.
 *
 * Layout (little-endian, every offset derived from the header's counts):
 *
 *   struct gmap_header                 GMAP_HEADER_SIZE bytes
 *   char pops[n_pops][GMAP_POP_NAME]   NUL-padded PoP names
 *   uint8_t lists[n_lists][GMAP_LIST_MAX]   PoP indices, best first,
 *                                      GMAP_NONE-padded
 *   struct gmap_node nodes4[n_nodes4]  IPv4 tree, root first
 *   struct gmap_node nodes6[n_nodes6]  IPv6 tree, root first
 *
 * A node has two children (0 = none) and a list (0 = no entry here, else
 * list index + 1). Nodes are stored in pre-order, so every child's index is
 * greater than its parent's: the loader checks it, which makes any walk of
 * a file that loaded finite whatever its bytes. The CRC-32 covers
 * everything after the header and the header is checked field by field, so
 * a truncated or corrupt file is refused before it serves a query.
 *
 * Why a plain binary tree: a lookup is at most 32 (or 128) steps over
 * 12-byte nodes, far below the cost of the DNS packet around it, and it
 * gives the RFC 7871 scope of an answer for free (how deep the walk went).
 * A builder prunes entries that repeat their covering entry, which keeps
 * the tree small.
 */
#ifndef PORTICO_GSLB_MAP_H
#define PORTICO_GSLB_MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GMAP_MAGIC	 "PGSLBMAP"
#define GMAP_VERSION	 1
#define GMAP_HEADER_SIZE 128
#define GMAP_POP_NAME	 16 /* with the NUL: names are 1..15 of [a-z0-9_-] */
#define GMAP_LIST_MAX	 8  /* PoPs per entry: the first choice and fallbacks */
#define GMAP_MAX_POPS	 250
#define GMAP_NONE	 0xff /* padding of a list */
#define GMAP_NOT_SCORED	 UINT32_MAX

struct gmap_header {
	char magic[8];
	uint32_t version;
	uint32_t header_size;
	uint64_t file_size;
	uint32_t crc32; /* of bytes [header_size, file_size) */
	uint32_t n_pops;
	uint32_t n_lists;
	uint32_t n_nodes4;
	uint32_t n_nodes6;
	uint32_t n_prefixes4; /* entries in each tree (informational) */
	uint32_t n_prefixes6;
	uint32_t score_ppm; /* held-out subnets whose first choice is their measured
			       best, parts per million; GMAP_NOT_SCORED */
	uint64_t created;   /* Unix seconds */
	uint64_t samples;   /* samples the map was built from */
	uint32_t regret_us; /* mean extra latency over held-out subnets, µs */
	uint32_t holdout;   /* held-out subnets scored */
	uint8_t reserved[GMAP_HEADER_SIZE - 80];
};

struct gmap_node {
	uint32_t child[2];
	uint32_t list;
};

/* What the builder records in the header besides the tree. */
struct gmap_meta {
	uint64_t created, samples;
	uint32_t score_ppm, regret_us, holdout;
};

/* ---- reading ---- */

struct gmap;

/*
 * Read the file at path into read-only private memory and check it (header, sizes, CRC, names,
 * lists, tree order). Returns 0 and *out (free with gmap_close), or -errno
 * with a malloc'd reason in *err (caller frees): -EINVAL for a bad file.
 */
int gmap_open(const char *path, struct gmap **out, char **err);

/*
 * As gmap_open, and if id is not NULL, the fstat of the file that was read
 * (also when it is refused, once it could be opened): what a watcher
 * compares to notice a newer file, without racing a rename.
 */
struct stat;
int gmap_open_stat(const char *path, struct gmap **out, struct stat *id, char **err);

/*
 * Check buf (len bytes) as gmap_open checks a file. The map borrows buf:
 * it must outlive the map. Same returns as gmap_open.
 */
int gmap_parse(const void *buf, size_t len, struct gmap **out, char **err);

/* Unmap (if mapped) and free. NULL is fine. */
void gmap_close(struct gmap *m);

const struct gmap_header *gmap_header(const struct gmap *m);
unsigned gmap_n_pops(const struct gmap *m);
/* Name of PoP i (< gmap_n_pops), NUL-terminated, borrowed from the map. */
const char *gmap_pop_name(const struct gmap *m, unsigned i);

/*
 * The tree of one family (v6 false: IPv4), root first, as stored
 * (little-endian fields; every child index greater than its parent's and
 * below *n, as the loader checked). Borrowed from the map. For copying the
 * tree elsewhere (gslbd's XDP program); lookups use gmap_lookup.
 */
const struct gmap_node *gmap_nodes(const struct gmap *m, bool v6, uint32_t *n);

/* Number of lists, and list i (< gmap_n_lists; GMAP_LIST_MAX entries). */
unsigned gmap_n_lists(const struct gmap *m);
const uint8_t *gmap_list(const struct gmap *m, unsigned i);

/*
 * Longest-prefix match of the first bits bits of addr (network order; 4
 * bytes for AF_INET, 16 for AF_INET6; bits is capped at 32 / 128).
 *
 * Returns the entry's list (GMAP_LIST_MAX PoP indices, best first,
 * GMAP_NONE-padded, borrowed from the map) or NULL when no prefix covers
 * addr. *match is the matching entry's prefix length (0 on a miss).
 * *scope is the number of leading bits of addr that decided the result
 * (the RFC 7871 scope prefix length): when *scope <= bits, every address
 * sharing those bits gets the same result. When the map holds more
 * specific prefixes than the client revealed, *scope is bits + 1, "more
 * bits would have mattered" (a resolver then caches the answer for its
 * source prefix only, RFC 7871 section 7.3.1).
 */
const uint8_t *gmap_lookup(const struct gmap *m, int family, const uint8_t *addr, unsigned bits,
			   unsigned *match, unsigned *scope);

/*
 * Call fn for every entry (family, prefix bytes, length, list), IPv4 first,
 * in address order. A non-zero return from fn stops the walk and is
 * returned.
 */
typedef int (*gmap_each_fn)(void *arg, int family, const uint8_t *prefix, unsigned plen,
			    const uint8_t *list);
int gmap_each(const struct gmap *m, gmap_each_fn fn, void *arg);

/* ---- building ---- */

struct gmap_builder;

/* An empty builder, or NULL (ENOMEM). */
struct gmap_builder *gmap_builder_new(void);
void gmap_builder_free(struct gmap_builder *b);

/*
 * Index of the PoP called name, added if new. Returns the index, -EINVAL
 * for a bad name (1..15 of [a-z0-9_-]), -ENOSPC past GMAP_MAX_POPS.
 */
int gmap_builder_pop(struct gmap_builder *b, const char *name);

/*
 * Map the prefix addr/plen to pops[0..n) (indices from gmap_builder_pop,
 * best first, 1 <= n <= GMAP_LIST_MAX, no repeats); replaces an earlier
 * list of the same prefix. Bits of addr past plen are ignored. Returns 0,
 * -EINVAL or -ENOMEM.
 */
int gmap_builder_add(struct gmap_builder *b, int family, const uint8_t *addr, unsigned plen,
		     const uint8_t *pops, unsigned n);

/*
 * The file image in a malloc'd *buf (caller frees) of *len bytes. With
 * prune, an entry whose list equals that of the nearest shorter prefix
 * covering it is left out (its answers are the same), and so are branches
 * left without entries. Returns 0 or -ENOMEM / -E2BIG (over 2^32 nodes).
 */
int gmap_builder_serialize(struct gmap_builder *b, const struct gmap_meta *meta, bool prune,
			   void **buf, size_t *len);

/*
 * Write buf to path atomically: a temporary file in the same directory,
 * fsync, rename over path, fsync of the directory. A reader sees the old
 * file or the new one, never a part. Returns 0 or -errno with *err set.
 */
int gmap_write_file(const char *path, const void *buf, size_t len, char **err);

#endif
