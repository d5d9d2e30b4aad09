// SPDX-License-Identifier: GPL-2.0-only
/*
 * score.c - how good is a map, measured rather than assumed. A share of the
 * measured subnets is held out of a build, and the map built from the rest
 * is asked for them: is its first choice their measured best (correct), how
 * much slower is its choice when it is not (regret), and does it answer at
 * all (coverage). The held-out subnets are exactly the ones the map could
 * not copy, so the score says how well it will do for clients nobody
 * measured, which is most of them.
 */
#include "mapbuild.h"

#include <stdlib.h>
#include <string.h>

static uint64_t mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	x ^= x >> 31;
	return x;
}

bool mb_held_out(uint64_t key, uint64_t seed, double share)
{
	uint64_t h = mix64(key ^ mix64(seed + 0x9e3779b97f4a7c15ULL));
	/* The top 53 bits as a uniform double in [0, 1). */
	return (double)(h >> 11) * (1.0 / 9007199254740992.0) < share;
}

static int cmp_name(const void *a, const void *b)
{
	return strcmp(a, b);
}

void mb_score_map(const struct gmap *m, const struct mb_samples *s, const struct mb_data *d,
		  const uint8_t *held, struct mb_score *out)
{
	*out = (struct mb_score){0};
	/* The map's PoP indices -> ours, by name; -1 for a PoP we never measured. */
	int xlate[GMAP_MAX_POPS];
	for (unsigned i = 0; i < gmap_n_pops(m) && i < GMAP_MAX_POPS; i++) {
		const char *hit =
		    bsearch(gmap_pop_name(m, i), s->pops, s->n_pops, GMAP_POP_NAME, cmp_name);
		xlate[i] = hit ? (int)((hit - s->pops[0]) / GMAP_POP_NAME) : -1;
	}
	for (size_t i = 0; i < d->n_subnets; i++) {
		if (!held[i])
			continue;
		const struct mb_subnet *sn = &d->subnets[i];
		int family;
		uint8_t addr[16];
		unsigned plen, match, scope;
		mb_subnet_addr(sn->key, &family, addr, &plen);
		out->scored++;
		const uint8_t *list = gmap_lookup(m, family, addr, plen, &match, &scope);
		if (!list)
			continue;
		out->covered++;
		int chosen = xlate[list[0]];
		const struct mb_meas *best = &d->meas[sn->first];
		if (chosen == best->pop)
			out->correct++;
		for (uint32_t k = 0; k < sn->n_meas; k++) {
			const struct mb_meas *me = &d->meas[sn->first + k];
			if (me->pop == chosen) {
				out->regret_sum_us += me->median_us - best->median_us;
				out->regret_n++;
				break;
			}
		}
	}
}

double mb_score_correct(const struct mb_score *sc)
{
	return sc->scored ? (double)sc->correct / sc->scored : 0;
}

double mb_score_coverage(const struct mb_score *sc)
{
	return sc->scored ? (double)sc->covered / sc->scored : 0;
}

uint32_t mb_score_regret_us(const struct mb_score *sc)
{
	if (!sc->regret_n)
		return 0;
	return (uint32_t)((sc->regret_sum_us + sc->regret_n / 2) / sc->regret_n);
}
