// SPDX-License-Identifier: GPL-2.0-only
#include "maglev.h"
#include "lb_abi.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Fixed seeds: part of the fleet-wide contract, like the table size. */
#define MAGLEV_SEED_OFFSET 0x2545f4914f6cdd1dULL
#define MAGLEV_SEED_SKIP   0x9e3779b97f4a7c15ULL

struct perm {
	uint64_t offset;
	uint64_t skip;
	uint64_t next;	 /* index into the preference list */
	uint64_t credit; /* weight accumulated this round */
	uint32_t id;
	uint32_t weight;
	struct lb_addr addr;
};

/* FNV-1a over the address, then a splitmix64 finaliser for avalanche. */
static uint64_t addr_hash(const struct lb_addr *a, uint64_t seed)
{
	size_t len = a->family == LB_AF_INET ? 4 : 16;
	uint64_t h = 0xcbf29ce484222325ULL ^ seed;

	h ^= a->family;
	h *= 0x100000001b3ULL;
	for (size_t i = 0; i < len; i++) {
		h ^= a->bytes[i];
		h *= 0x100000001b3ULL;
	}
	h ^= h >> 30;
	h *= 0xbf58476d1ce4e5b9ULL;
	h ^= h >> 27;
	h *= 0x94d049bb133111ebULL;
	h ^= h >> 31;
	return h;
}

bool maglev_is_prime(uint32_t n)
{
	if (n < 2)
		return false;
	for (uint32_t d = 2; (uint64_t)d * d <= n; d++)
		if (n % d == 0)
			return false;
	return true;
}

static int perm_cmp(const void *a, const void *b)
{
	const struct perm *x = a, *y = b;

	if (x->addr.family != y->addr.family)
		return x->addr.family - y->addr.family;
	return memcmp(x->addr.bytes, y->addr.bytes, sizeof(x->addr.bytes));
}

int maglev_build(const struct maglev_real *reals, size_t n, uint32_t *table, uint32_t size)
{
	struct perm *p;
	uint64_t max_weight = 0;
	size_t live = 0, filled = 0;

	if (!maglev_is_prime(size) || n >= size)
		return -EINVAL;
	for (uint32_t i = 0; i < size; i++)
		table[i] = LB_REAL_NONE;
	p = calloc(n ? n : 1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		if (!reals[i].weight)
			continue;
		p[live].addr = reals[i].addr;
		p[live].id = reals[i].id;
		p[live].weight = reals[i].weight;
		p[live].offset = addr_hash(&reals[i].addr, MAGLEV_SEED_OFFSET) % size;
		p[live].skip = addr_hash(&reals[i].addr, MAGLEV_SEED_SKIP) % (size - 1) + 1;
		if (reals[i].weight > max_weight)
			max_weight = reals[i].weight;
		live++;
	}
	/* Sort by address so the fill order, and so the table, does not
	 * depend on the order the config listed the reals in. */
	qsort(p, live, sizeof(*p), perm_cmp);

	/*
	 * The paper's round-robin fill, weighted: each round a real earns
	 * its weight in credit and takes one slot per max_weight of credit,
	 * so the heaviest real takes one slot every round and a real of half
	 * the weight one every other round.
	 */
	while (live && filled < size) {
		for (size_t i = 0; i < live && filled < size; i++) {
			p[i].credit += p[i].weight;
			while (p[i].credit >= max_weight && filled < size) {
				uint64_t c;

				p[i].credit -= max_weight;
				do {
					c = (p[i].offset + p[i].next * p[i].skip) % size;
					p[i].next++;
				} while (table[c] != LB_REAL_NONE);
				table[c] = p[i].id;
				filled++;
			}
		}
	}
	free(p);
	return 0;
}
