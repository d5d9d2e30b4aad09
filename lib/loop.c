// SPDX-License-Identifier: GPL-2.0-only
#include "loop.h"
#include "log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#define MAX_EVENTS  256
#define TASK_ROUNDS 4 /* generations of tasks run per iteration */
#define HEAP_ARITY  4

uint64_t loop_clock_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int loop_init(struct loop *l)
{
	memset(l, 0, sizeof(*l));
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd < 0)
		return -errno;
	l->tasks.prev = l->tasks.next = &l->tasks;
	l->now_ms = loop_clock_ms();
	return 0;
}

static void free_graves(struct loop *l)
{
	for (size_t i = 0; i < l->n_graves; i++)
		free(l->graves[i]);
	l->n_graves = 0;
}

void loop_fini(struct loop *l)
{
	free_graves(l);
	free(l->graves);
	free(l->heap);
	if (l->epfd >= 0)
		close(l->epfd);
	l->epfd = -1;
	l->graves = NULL;
	l->heap = NULL;
}

int loop_io_watch(struct loop *l, struct loop_io *io, uint32_t events)
{
	struct epoll_event e = {.events = events, .data.ptr = io};
	int op;

	if (io->fd < 0)
		return -EBADF;
	if (io->interest == events)
		return 0;
	if (!events)
		op = EPOLL_CTL_DEL;
	else
		op = io->interest ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
	if (epoll_ctl(l->epfd, op, io->fd, &e) < 0)
		return -errno;
	io->interest = events;
	return 0;
}

void loop_io_close(struct loop *l, struct loop_io *io)
{
	if (io->fd < 0)
		return;
	if (io->interest)
		epoll_ctl(l->epfd, EPOLL_CTL_DEL, io->fd, NULL);
	close(io->fd);
	io->fd = -1;
	io->interest = 0;
}

/* --- timers: a 4-ary min-heap on at_ms -------------------------------- */

static void heap_set(struct loop *l, uint32_t i, struct loop_timer *t)
{
	l->heap[i] = t;
	t->slot = i + 1;
}

static void sift_up(struct loop *l, uint32_t i)
{
	struct loop_timer *t = l->heap[i];

	while (i > 0) {
		uint32_t parent = (i - 1) / HEAP_ARITY;

		if (l->heap[parent]->at_ms <= t->at_ms)
			break;
		heap_set(l, i, l->heap[parent]);
		i = parent;
	}
	heap_set(l, i, t);
}

static void sift_down(struct loop *l, uint32_t i)
{
	struct loop_timer *t = l->heap[i];

	for (;;) {
		uint32_t first = i * HEAP_ARITY + 1, best = i;
		uint64_t best_at = t->at_ms;

		for (uint32_t c = first; c < first + HEAP_ARITY && c < l->n_timers; c++)
			if (l->heap[c]->at_ms < best_at) {
				best = c;
				best_at = l->heap[c]->at_ms;
			}
		if (best == i)
			break;
		heap_set(l, i, l->heap[best]);
		i = best;
	}
	heap_set(l, i, t);
}

void loop_timer_cancel(struct loop *l, struct loop_timer *t)
{
	uint32_t i;
	struct loop_timer *last;

	if (!t->slot)
		return;
	i = t->slot - 1;
	require(i < l->n_timers && l->heap[i] == t);
	t->slot = 0;
	last = l->heap[--l->n_timers];
	if (last == t)
		return;
	heap_set(l, i, last);
	if (i > 0 && l->heap[(i - 1) / HEAP_ARITY]->at_ms > last->at_ms)
		sift_up(l, i);
	else
		sift_down(l, i);
}

void loop_timer_at(struct loop *l, struct loop_timer *t, loop_timer_fn fn, uint64_t at_ms)
{
	t->fn = fn;
	if (t->slot) {
		uint64_t old = t->at_ms;

		t->at_ms = at_ms;
		if (at_ms < old)
			sift_up(l, t->slot - 1);
		else if (at_ms > old)
			sift_down(l, t->slot - 1);
		return;
	}
	if (l->n_timers == l->cap_timers) {
		uint32_t cap = l->cap_timers ? l->cap_timers * 2 : 64;
		struct loop_timer **h = realloc(l->heap, cap * sizeof(*h));

		/* Out of memory for a timer: memory is already short and a
		 * silently lost timeout would leak its owner forever. */
		require(h != NULL);
		l->heap = h;
		l->cap_timers = cap;
	}
	t->at_ms = at_ms;
	heap_set(l, l->n_timers++, t);
	sift_up(l, l->n_timers - 1);
}

static void run_timers(struct loop *l)
{
	while (l->n_timers && l->heap[0]->at_ms <= l->now_ms) {
		struct loop_timer *t = l->heap[0];

		loop_timer_cancel(l, t);
		t->fn(t);
	}
}

/* --- tasks ------------------------------------------------------------- */

void loop_defer(struct loop *l, struct loop_task *t, loop_task_fn fn)
{
	t->fn = fn;
	if (t->queued)
		return;
	t->queued = true;
	t->gen = l->task_gen;
	t->prev = l->tasks.prev;
	t->next = &l->tasks;
	l->tasks.prev->next = t;
	l->tasks.prev = t;
}

void loop_task_cancel(struct loop_task *t)
{
	if (!t->queued)
		return;
	t->prev->next = t->next;
	t->next->prev = t->prev;
	t->prev = t->next = NULL;
	t->queued = false;
}

/*
 * Tasks run in generations: those queued when a generation starts run in
 * it; what they queue runs in the next. A few generations let a chain of
 * wake-ups between two sessions settle in one iteration, while a task that
 * keeps queueing itself (a busy connection taking its fair share) waits
 * for the next iteration, after the other descriptors and the timers.
 */
static void run_tasks(struct loop *l)
{
	for (int round = 0; round < TASK_ROUNDS && l->tasks.next != &l->tasks; round++) {
		if (round)
			l->now_ms = loop_clock_ms();
		l->task_gen++; /* tasks queued from now on wait for the next round */
		while (l->tasks.next != &l->tasks && l->tasks.next->gen != l->task_gen) {
			struct loop_task *t = l->tasks.next;

			loop_task_cancel(t);
			t->fn(t);
		}
	}
}

void loop_free_later(struct loop *l, void *p)
{
	if (!p)
		return;
	if (l->n_graves == l->cap_graves) {
		size_t cap = l->cap_graves ? l->cap_graves * 2 : 64;
		void **g = realloc(l->graves, cap * sizeof(*g));

		/* Freeing now could leave a dangling pointer in this batch;
		 * without memory for the list there is no safe choice. */
		require(g != NULL);
		l->graves = g;
		l->cap_graves = cap;
	}
	l->graves[l->n_graves++] = p;
}

int loop_run_once(struct loop *l, int max_wait_ms)
{
	struct epoll_event ev[MAX_EVENTS];
	int wait = max_wait_ms, n;

	if (l->tasks.next != &l->tasks)
		wait = 0; /* tasks left over by the bound run first */
	if (l->n_timers) {
		uint64_t at = l->heap[0]->at_ms;
		int64_t d = at > l->now_ms ? (int64_t)(at - l->now_ms) : 0;

		if (wait < 0 || d < wait)
			wait = d > 60000 ? 60000 : (int)d;
	}
	n = epoll_wait(l->epfd, ev, MAX_EVENTS, wait);
	l->now_ms = loop_clock_ms();
	if (n < 0) {
		if (errno != EINTR)
			return -errno;
		n = 0;
	}
	for (int i = 0; i < n; i++) {
		struct loop_io *io = ev[i].data.ptr;

		if (io->fd >= 0)
			io->fn(io, ev[i].events);
	}
	run_timers(l);
	run_tasks(l);
	free_graves(l);
	return n;
}

void loop_run(struct loop *l)
{
	l->stop = false;
	while (!l->stop) {
		int rc = loop_run_once(l, -1);

		if (rc < 0)
			log_warn("epoll_wait: %s", strerror(-rc));
	}
}
