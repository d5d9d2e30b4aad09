// SPDX-License-Identifier: GPL-2.0-only
/*
 * extrapolate.c - from measured subnets to a map image, reaching past them
 * to the announced prefixes of their ASes.
 *
 * Why extrapolate at all: real-user samples cover a fraction of the /24s
 * that send queries. A client in an unmeasured /24 of an AS whose measured
 * /24s all prefer the same PoP almost certainly shares their path (same
 * network, same transit), so the AS's announced prefixes get that answer.
 * Where the AS's subnets disagree (a national network reaching two PoPs),
 * an announced prefix whose own subnets agree still gets one: it is more
 * specific, so it refines the AS level. A prefix over subnets that disagree
 * gets nothing: the map would be guessing.
 *
 * Cost: one trie walk per measured subnet, then two sorts of (group,
 * subnet) pairs; each group's ranking sorts its subnets' measurements.
 * O(m log m) in the number of measurements.
 */
#include "mapbuild.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

struct vec {
	uint64_t *v;
	size_t n, cap;
};

static int vec_push(struct vec *v, uint64_t x)
{
	if (v->n == v->cap) {
		size_t cap = v->cap ? v->cap * 2 : 1024;
		uint64_t *p = realloc(v->v, cap * sizeof(*p));
		if (!p)
			return -ENOMEM;
		v->v = p;
		v->cap = cap;
	}
	v->v[v->n++] = x;
	return 0;
}

static int cmp_u64(const void *pa, const void *pb)
{
	uint64_t a = *(const uint64_t *)pa, b = *(const uint64_t *)pb;
	return (a > b) - (a < b);
}

/* Per announced prefix: what its measured subnets say. */
struct pstate {
	uint32_t n;    /* measured subnets inside */
	int32_t best;  /* their common best PoP; -1 none yet */
	bool disagree; /* they do not share one */
	bool too_long; /* longer than a subnet (/24, /56) */
	bool added;
};

static uint16_t best_of(const struct mb_data *d, uint32_t i)
{
	return d->meas[d->subnets[i].first].pop;
}

/*
 * The list for a group of subnets (the low 32 bits of pairs[0..n)): per
 * PoP, the median over the subnets that measured it of its median there;
 * PoPs by that, agreed first. Returns how many went into list, or -ENOMEM.
 */
static int rank_group(const struct mb_data *d, const uint64_t *pairs, size_t n, uint16_t agreed,
		      uint8_t list[GMAP_LIST_MAX])
{
	size_t total = 0;
	for (size_t k = 0; k < n; k++)
		total += d->subnets[(uint32_t)pairs[k]].n_meas;
	/* (PoP << 32 | median): sorting groups each PoP's medians in order. */
	uint64_t *pm = malloc(total * sizeof(*pm));
	if (!pm)
		return -ENOMEM;
	size_t m = 0;
	for (size_t k = 0; k < n; k++) {
		const struct mb_subnet *sn = &d->subnets[(uint32_t)pairs[k]];
		for (uint32_t j = 0; j < sn->n_meas; j++) {
			const struct mb_meas *me = &d->meas[sn->first + j];
			pm[m++] = (uint64_t)me->pop << 32 | me->median_us;
		}
	}
	qsort(pm, m, sizeof(*pm), cmp_u64);
	/* Reuse pm's front for (median << 16 | PoP): sorting ranks, ties by name. */
	size_t out = 0;
	for (size_t i = 0; i < m;) {
		size_t j = i;
		while (j < m && pm[j] >> 32 == pm[i] >> 32)
			j++;
		size_t c = j - i;
		uint64_t med =
		    c & 1
			? (uint32_t)pm[i + c / 2]
			: ((uint64_t)(uint32_t)pm[i + c / 2 - 1] + (uint32_t)pm[i + c / 2] + 1) / 2;
		pm[out++] = med << 16 | (pm[i] >> 32);
		i = j;
	}
	qsort(pm, out, sizeof(*pm), cmp_u64);
	unsigned nl = 0;
	list[nl++] = (uint8_t)agreed;
	for (size_t i = 0; i < out && nl < GMAP_LIST_MAX; i++) {
		uint16_t pop = pm[i] & 0xffff;
		if (pop != agreed)
			list[nl++] = (uint8_t)pop;
	}
	free(pm);
	return (int)nl;
}

static int add_prefix(struct gmap_builder *b, const struct mb_prefix *p, const uint8_t *list,
		      unsigned n)
{
	return gmap_builder_add(b, p->v6 ? AF_INET6 : AF_INET, p->addr, p->plen, list, n);
}

/* Whether the subnets of pairs[0..n) (at least 2) share one best PoP. */
static bool agree(const struct mb_data *d, const uint64_t *pairs, size_t n)
{
	if (n < 2)
		return false;
	for (size_t k = 1; k < n; k++)
		if (best_of(d, (uint32_t)pairs[k]) != best_of(d, (uint32_t)pairs[0]))
			return false;
	return true;
}

static int cmp_asn_idx(const void *pa, const void *pb, void *arg)
{
	const struct mb_asn *a = arg;
	uint32_t x = *(const uint32_t *)pa, y = *(const uint32_t *)pb;
	if (a->v[x].asn != a->v[y].asn)
		return a->v[x].asn < a->v[y].asn ? -1 : 1;
	return (x > y) - (x < y);
}

static int extrapolate(struct gmap_builder *b, const struct mb_data *d, const struct mb_asn *a,
		       const uint8_t *held, size_t *n_added)
{
	int rc = 0;
	struct vec in_prefix = {0}, in_as = {0};
	struct pstate *ps = calloc(a->n ? a->n : 1, sizeof(*ps));
	uint32_t *by_asn = malloc((a->n ? a->n : 1) * sizeof(*by_asn));
	if (!ps || !by_asn) {
		rc = -ENOMEM;
		goto out;
	}

	/* Who holds whom: (prefix, subnet) and (AS of the longest, subnet). */
	for (size_t i = 0; i < d->n_subnets; i++) {
		if (held && held[i])
			continue;
		int family;
		uint8_t addr[16];
		unsigned plen;
		int32_t cov[129];
		mb_subnet_addr(d->subnets[i].key, &family, addr, &plen);
		unsigned nc = mb_asn_covering(a, family == AF_INET6, addr, plen, cov, 129);
		for (unsigned k = 0; k < nc && !rc; k++)
			rc = vec_push(&in_prefix, (uint64_t)cov[k] << 32 | i);
		if (nc && !rc)
			rc = vec_push(&in_as, (uint64_t)a->v[cov[nc - 1]].asn << 32 | i);
		if (rc)
			goto out;
	}
	/*
	 * A prefix longer than a subnet gets no entry: the map never singles
	 * out fewer clients than a /24 or /56, and inside a measured subnet it
	 * would override a measurement by guesswork.
	 */
	for (size_t p = 0; p < a->n; p++)
		ps[p].too_long = a->v[p].plen > (a->v[p].v6 ? MB_SUBNET6 : MB_SUBNET4);
	qsort(in_prefix.v, in_prefix.n, sizeof(uint64_t), cmp_u64);
	for (size_t k = 0; k < in_prefix.n; k++) {
		struct pstate *st = &ps[in_prefix.v[k] >> 32];
		int32_t best = best_of(d, (uint32_t)in_prefix.v[k]);
		if (st->n++ == 0)
			st->best = best;
		else if (st->best != best)
			st->disagree = true;
	}

	/* AS level: each agreeing AS's prefixes, unless a prefix disagrees inside. */
	for (size_t p = 0; p < a->n; p++)
		by_asn[p] = (uint32_t)p;
	qsort_r(by_asn, a->n, sizeof(*by_asn), cmp_asn_idx, (void *)a);
	qsort(in_as.v, in_as.n, sizeof(uint64_t), cmp_u64);
	size_t pa = 0;
	for (size_t i = 0; i < in_as.n;) {
		size_t j = i;
		while (j < in_as.n && in_as.v[j] >> 32 == in_as.v[i] >> 32)
			j++;
		uint32_t asn = (uint32_t)(in_as.v[i] >> 32);
		if (agree(d, &in_as.v[i], j - i)) {
			uint8_t list[GMAP_LIST_MAX];
			int nl = rank_group(d, &in_as.v[i], j - i, best_of(d, (uint32_t)in_as.v[i]),
					    list);
			if (nl < 0) {
				rc = nl;
				goto out;
			}
			while (pa < a->n && a->v[by_asn[pa]].asn < asn)
				pa++;
			for (size_t q = pa; q < a->n && a->v[by_asn[q]].asn == asn; q++) {
				struct pstate *st = &ps[by_asn[q]];
				if (st->too_long || st->disagree)
					continue;
				if ((rc = add_prefix(b, &a->v[by_asn[q]], list, (unsigned)nl)))
					goto out;
				st->added = true;
			}
		}
		i = j;
	}

	/* Prefix level, after the AS level so that it replaces it. */
	for (size_t i = 0; i < in_prefix.n;) {
		size_t j = i;
		while (j < in_prefix.n && in_prefix.v[j] >> 32 == in_prefix.v[i] >> 32)
			j++;
		uint32_t p = (uint32_t)(in_prefix.v[i] >> 32);
		if (agree(d, &in_prefix.v[i], j - i)) {
			uint8_t list[GMAP_LIST_MAX];
			int nl = rank_group(d, &in_prefix.v[i], j - i,
					    best_of(d, (uint32_t)in_prefix.v[i]), list);
			if (nl < 0) {
				rc = nl;
				goto out;
			}
			if ((rc = add_prefix(b, &a->v[p], list, (unsigned)nl)))
				goto out;
			ps[p].added = true;
		}
		i = j;
	}
	*n_added = 0;
	for (size_t p = 0; p < a->n; p++)
		*n_added += ps[p].added;
out:
	free(in_prefix.v);
	free(in_as.v);
	free(ps);
	free(by_asn);
	return rc;
}

int mb_build_image(const struct mb_samples *s, const struct mb_data *d, const struct mb_asn *asn,
		   const uint8_t *held, bool prune, const struct gmap_meta *meta, void **buf,
		   size_t *len, size_t *n_extrapolated)
{
	*n_extrapolated = 0;
	struct gmap_builder *b = gmap_builder_new();
	if (!b)
		return -ENOMEM;
	int rc = 0;
	/* Every PoP, in s's (name) order: the same indices in every map of a run. */
	for (unsigned i = 0; i < s->n_pops && !rc; i++)
		if (gmap_builder_pop(b, s->pops[i]) != (int)i)
			rc = -EINVAL;
	if (!rc && asn && asn->n)
		rc = extrapolate(b, d, asn, held, n_extrapolated);
	/* Measured subnets last: their own entry wins over any announced one. */
	for (size_t i = 0; i < d->n_subnets && !rc; i++) {
		if (held && held[i])
			continue;
		const struct mb_subnet *sn = &d->subnets[i];
		uint8_t list[GMAP_LIST_MAX], addr[16];
		unsigned n = sn->n_meas < GMAP_LIST_MAX ? sn->n_meas : GMAP_LIST_MAX;
		for (unsigned k = 0; k < n; k++)
			list[k] = (uint8_t)d->meas[sn->first + k].pop;
		int family;
		unsigned plen;
		mb_subnet_addr(sn->key, &family, addr, &plen);
		rc = gmap_builder_add(b, family, addr, plen, list, n);
	}
	if (!rc)
		rc = gmap_builder_serialize(b, meta, prune, buf, len);
	gmap_builder_free(b);
	return rc;
}
