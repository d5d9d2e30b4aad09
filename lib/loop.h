/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * loop.h - the event loop every daemon runs: epoll for descriptors, a heap
 * of timers, a queue of deferred tasks and deferred frees.
 *
 * One iteration (loop_run_once):
 *   1. epoll_wait, until the earliest timer at the latest;
 *   2. the callbacks of ready descriptors (a descriptor closed earlier in
 *      the same batch is skipped: its loop_io has fd -1);
 *   3. expired timers, earliest first;
 *   4. deferred tasks, in the order they were queued (a task queued by a
 *      task runs in the same iteration, up to a bound, so a chain of
 *      wake-ups settles before the loop sleeps);
 *   5. the frees requested during the iteration (loop_free_later): memory
 *      an event of this batch or a queued task might still name.
 *
 * Timers are a 4-ary min-heap indexed from the timer itself: arm and cancel
 * are O(log n), the next deadline is O(1). Thousands of connections each
 * re-arming an idle timer on every read would make that the hot path, so
 * such timers should be armed lazily: keep a "last activity" time and, when
 * the timer fires early, re-arm it for the remaining time (what nginx and
 * HAProxy do with their timeouts).
 *
 * Not thread-safe: one loop per thread, touched only by that thread.
 */
#ifndef PORTICO_LOOP_H
#define PORTICO_LOOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct loop;
struct loop_io;
struct loop_timer;
struct loop_task;

typedef void (*loop_io_fn)(struct loop_io *io, uint32_t events);
typedef void (*loop_timer_fn)(struct loop_timer *t);
typedef void (*loop_task_fn)(struct loop_task *t);

/* A descriptor watched by the loop; embed it in the object that owns fd. */
struct loop_io {
	int fd;		   /* -1 once closed: late events of the batch are dropped */
	uint32_t interest; /* current epoll mask (0 = not registered) */
	loop_io_fn fn;
};

/* A one-shot timer; embed it. Zero-initialised means "not armed". */
struct loop_timer {
	uint64_t at_ms;
	uint32_t slot; /* heap index + 1; 0 = not armed */
	loop_timer_fn fn;
};

/* A deferred call; embed it. Zero-initialised means "not queued". */
struct loop_task {
	struct loop_task *prev, *next;
	loop_task_fn fn;
	uint32_t gen; /* the round it was queued in */
	bool queued;
};

struct loop {
	int epfd;
	uint64_t now_ms; /* CLOCK_MONOTONIC ms, refreshed after every wait */
	bool stop;
	struct loop_timer **heap;
	uint32_t n_timers, cap_timers;
	struct loop_task tasks; /* sentinel of the task queue */
	uint32_t task_gen;
	void **graves;
	size_t n_graves, cap_graves;
};

/* Prepare l (caller-owned memory). Returns 0 or -errno. */
int loop_init(struct loop *l);

/* Release what loop_init acquired and free pending graves. Watched
 * descriptors are not closed (their owners close them). */
void loop_fini(struct loop *l);

/* Monotonic milliseconds, read from the clock (l->now_ms is the cached
 * value of this iteration). */
uint64_t loop_clock_ms(void);

/*
 * Watch io->fd for events (EPOLLIN, EPOLLOUT, ...; level-triggered). 0
 * stops watching. A no-op when the mask is unchanged. Returns 0 or -errno.
 */
int loop_io_watch(struct loop *l, struct loop_io *io, uint32_t events);

/* Stop watching, close the descriptor and set io->fd = -1 so events of the
 * current batch that name it are dropped. Safe to call twice. */
void loop_io_close(struct loop *l, struct loop_io *io);

/* Arm t to fire fn(t) at absolute time at_ms (re-arming moves it). */
void loop_timer_at(struct loop *l, struct loop_timer *t, loop_timer_fn fn, uint64_t at_ms);

/* Arm t to fire ms from now. */
static inline void loop_timer_in(struct loop *l, struct loop_timer *t, loop_timer_fn fn,
				 uint64_t ms)
{
	loop_timer_at(l, t, fn, l->now_ms + ms);
}

/* Disarm t; a no-op if it is not armed. */
void loop_timer_cancel(struct loop *l, struct loop_timer *t);

static inline bool loop_timer_armed(const struct loop_timer *t)
{
	return t->slot != 0;
}

/* Queue t to run fn(t) later in this iteration; a no-op if queued. */
void loop_defer(struct loop *l, struct loop_task *t, loop_task_fn fn);

/* Unqueue t (before freeing its owner); a no-op if not queued. */
void loop_task_cancel(struct loop_task *t);

/*
 * Free p (from malloc) at the end of this iteration, after every event and
 * task that could still name it. NULL is ignored.
 */
void loop_free_later(struct loop *l, void *p);

/*
 * One iteration, sleeping at most max_wait_ms (-1: until an event or the
 * next timer). Returns the number of descriptor events handled, or -errno
 * if epoll_wait failed (EINTR is not a failure: 0).
 */
int loop_run_once(struct loop *l, int max_wait_ms);

/* Run iterations until loop_stop() is called (from a callback). */
void loop_run(struct loop *l);

static inline void loop_stop(struct loop *l)
{
	l->stop = true;
}

#endif
