/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * maglev.h - Maglev consistent hashing (Eisenbud et al., NSDI 2016, §3.4),
 * with weights.
 *
 * A real's preference list (offset, skip) derives from a hash of its
 * address, never from its position in a list: every LB with the same set of
 * reals builds the same table, and removing one of N reals moves about 1/N
 * of the slots.
 */
#ifndef PORTICO_MAGLEV_H
#define PORTICO_MAGLEV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"

struct maglev_real {
	struct lb_addr addr; /* identity: the hash input */
	uint32_t id;	     /* what the table stores */
	uint32_t weight;     /* 0 = drained: no slots */
};

/* True if n is prime (trial division; n is at most a few million). */
bool maglev_is_prime(uint32_t n);

/*
 * Fill table[0..size-1] with real ids (never LB_REAL_NONE). size must be prime and larger than
 * the number of reals. reals (n entries, any order, not modified) with
 * weight 0 get no slots; if every weight is 0 (or n is 0) every slot is
 * LB_REAL_NONE. Each real gets about size * weight / sum(weights) slots.
 * Returns 0, -EINVAL for a non-prime size or too many reals, -ENOMEM.
 *
 * Cost: O(size * max_weight / min_weight) in the worst case; measured
 * (tests/bench/bench_maglev) about 4 ms for 65537 slots and 100 reals,
 * 55 ms for 655373 slots and 1000.
 */
int maglev_build(const struct maglev_real *reals, size_t n, uint32_t *table, uint32_t size);

#endif
