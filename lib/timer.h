/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * timer.h - timeouts for event loops, O(1) per operation.
 *
 * Every timer in a timer_list has the same duration, so arming a timer
 * (deadline = now + duration) appends it at the tail and the list stays
 * sorted by deadline: expiry only looks at the head. An event loop keeps
 * one list per kind of timeout (client idle, upstream read, ...) and
 * sleeps until the earliest head. This is the trade-off nginx's and
 * HAProxy's per-kind timeouts make too: no arbitrary durations, no heap.
 */
#ifndef PORTICO_TIMER_H
#define PORTICO_TIMER_H

#include <stdbool.h>
#include <stdint.h>

struct timer;
typedef void (*timer_fn)(struct timer *t);

struct timer {
	struct timer *prev, *next;
	uint64_t deadline_ms;
	timer_fn fn;
};

struct timer_list {
	struct timer head; /* sentinel */
	uint64_t duration_ms;
};

/* Monotonic milliseconds. */
uint64_t timer_now_ms(void);

void timer_list_init(struct timer_list *l, uint64_t duration_ms);

/* (Re)arm t on l to fire fn(t) duration_ms from now. */
void timer_arm(struct timer_list *l, struct timer *t, timer_fn fn, uint64_t now_ms);

/* Disarm; a no-op for a timer that is not armed. */
void timer_cancel(struct timer *t);

static inline bool timer_armed(const struct timer *t)
{
	return t->next != 0;
}

/*
 * Fire every expired timer of l (each is disarmed before its fn runs, and
 * fn may re-arm or free it). Returns ms until the next deadline of l, or -1
 * if l is empty.
 */
int64_t timer_run(struct timer_list *l, uint64_t now_ms);

#endif
