// SPDX-License-Identifier: GPL-2.0-only
/* Unit tests for the event loop: timer heap order under random arm/cancel,
 * task ordering and re-queueing, descriptors closed mid-batch. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "loop.h"

#define N 2000

static struct loop_timer timers[N];
static uint64_t fired_at[N];
static int fired_order[N], n_fired;
static struct loop *cur;

static void on_timer(struct loop_timer *t)
{
	int i = (int)(t - timers);

	fired_at[i] = t->at_ms;
	fired_order[n_fired++] = i;
}

static void test_timer_heap_random(void **state)
{
	struct loop l;
	uint64_t want[N];
	unsigned seed = 12345;

	(void)state;
	assert_int_equal(loop_init(&l), 0);
	cur = &l;
	l.now_ms = 0;
	for (int i = 0; i < N; i++)
		want[i] = 0;
	/* Arm every timer at a random time, re-arm a third of them, cancel a
	 * tenth: the survivors must fire in deadline order, each once. */
	for (int i = 0; i < N; i++) {
		want[i] = 1 + rand_r(&seed) % 100000;
		loop_timer_at(&l, &timers[i], on_timer, want[i]);
	}
	for (int i = 0; i < N; i += 3) {
		want[i] = 1 + rand_r(&seed) % 100000;
		loop_timer_at(&l, &timers[i], on_timer, want[i]);
	}
	for (int i = 0; i < N; i += 10) {
		loop_timer_cancel(&l, &timers[i]);
		assert_false(loop_timer_armed(&timers[i]));
		want[i] = 0;
	}
	n_fired = 0;
	/* Fire everything by pretending the clock is far ahead. */
	while (l.n_timers) {
		struct loop_timer *t = l.heap[0];

		loop_timer_cancel(&l, t);
		t->fn(t);
	}
	for (int k = 1; k < n_fired; k++)
		assert_true(fired_at[fired_order[k - 1]] <= fired_at[fired_order[k]]);
	for (int i = 0; i < N; i++) {
		if (want[i])
			assert_int_equal(fired_at[i], want[i]);
	}
	assert_int_equal(n_fired, N - N / 10);
	loop_fini(&l);
}

static int task_log[8], n_task;
static struct loop_task tasks[3];

static void on_task(struct loop_task *t)
{
	int i = (int)(t - tasks);

	task_log[n_task++] = i;
	if (i == 0 && n_task == 1)
		loop_defer(cur, &tasks[0], on_task); /* re-queue itself once: runs last */
}

static void test_tasks_in_order(void **state)
{
	struct loop l;

	(void)state;
	assert_int_equal(loop_init(&l), 0);
	cur = &l;
	n_task = 0;
	loop_defer(&l, &tasks[0], on_task);
	loop_defer(&l, &tasks[1], on_task);
	loop_defer(&l, &tasks[1], on_task); /* already queued: no-op */
	loop_defer(&l, &tasks[2], on_task);
	loop_task_cancel(&tasks[2]);
	assert_int_equal(loop_run_once(&l, 0), 0);
	assert_int_equal(n_task, 3);
	assert_int_equal(task_log[0], 0);
	assert_int_equal(task_log[1], 1);
	assert_int_equal(task_log[2], 0);
	loop_fini(&l);
}

static struct loop_io ios[2];
static int io_calls;

/* The first callback closes the other descriptor: its event in the same
 * batch must be dropped, not delivered to a closed (or freed) object. */
static void on_io(struct loop_io *io, uint32_t ev)
{
	(void)ev;
	io_calls++;
	loop_io_close(cur, io == &ios[0] ? &ios[1] : &ios[0]);
	loop_io_close(cur, io);
}

static void test_closed_mid_batch(void **state)
{
	struct loop l;
	int p[2][2];

	(void)state;
	assert_int_equal(loop_init(&l), 0);
	cur = &l;
	for (int i = 0; i < 2; i++) {
		assert_int_equal(pipe(p[i]), 0);
		assert_int_equal(write(p[i][1], "x", 1), 1);
		ios[i] = (struct loop_io){.fd = p[i][0], .fn = on_io};
		assert_int_equal(loop_io_watch(&l, &ios[i], EPOLLIN), 0);
	}
	io_calls = 0;
	assert_int_equal(loop_run_once(&l, 100), 2); /* both were ready */
	assert_int_equal(io_calls, 1);
	loop_free_later(&l, malloc(16));
	loop_run_once(&l, 0);
	close(p[0][1]);
	close(p[1][1]);
	loop_fini(&l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_timer_heap_random),
	    cmocka_unit_test(test_tasks_in_order),
	    cmocka_unit_test(test_closed_mid_batch),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
