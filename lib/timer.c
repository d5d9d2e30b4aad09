// SPDX-License-Identifier: GPL-2.0-only
#include "timer.h"

#include <time.h>

uint64_t timer_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void timer_list_init(struct timer_list *l, uint64_t duration_ms)
{
	l->head.prev = l->head.next = &l->head;
	l->duration_ms = duration_ms;
}

void timer_cancel(struct timer *t)
{
	if (!t->next)
		return;
	t->prev->next = t->next;
	t->next->prev = t->prev;
	t->prev = t->next = 0;
}

void timer_arm(struct timer_list *l, struct timer *t, timer_fn fn, uint64_t now_ms)
{
	timer_cancel(t);
	t->fn = fn;
	t->deadline_ms = now_ms + l->duration_ms;
	t->prev = l->head.prev;
	t->next = &l->head;
	l->head.prev->next = t;
	l->head.prev = t;
}

int64_t timer_run(struct timer_list *l, uint64_t now_ms)
{
	while (l->head.next != &l->head) {
		struct timer *t = l->head.next;

		if (t->deadline_ms > now_ms)
			return (int64_t)(t->deadline_ms - now_ms);
		timer_cancel(t);
		t->fn(t);
	}
	return -1;
}
