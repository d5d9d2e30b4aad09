// SPDX-License-Identifier: GPL-2.0-only
/* Unit tests for the per-kind timer lists. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "timer.h"

static int fired[4];

static void on_fire(struct timer *t)
{
	fired[t->deadline_ms / 1000 % 4]++;
}

static void test_order_rearm_cancel(void **s)
{
	struct timer_list l;
	struct timer a = {0}, b = {0}, c = {0};

	(void)s;
	timer_list_init(&l, 1000);
	timer_arm(&l, &a, on_fire, 0);	  /* deadline 1000 */
	timer_arm(&l, &b, on_fire, 1000); /* 2000 */
	timer_arm(&l, &c, on_fire, 2000); /* 3000 */
	assert_int_equal(timer_run(&l, 500), 500);
	timer_arm(&l, &a, on_fire, 2500);	     /* re-armed: 3500, moves to the tail */
	assert_int_equal(timer_run(&l, 2000), 1000); /* b fires at 2000 exactly; c next */
	assert_int_equal(fired[2], 1);
	assert_false(timer_armed(&b));
	timer_cancel(&c);
	timer_cancel(&c); /* double cancel is fine */
	assert_int_equal(timer_run(&l, 3000), 500);
	assert_int_equal(fired[3], 0);
	assert_int_equal(timer_run(&l, 4000), -1);
	assert_int_equal(fired[3], 1); /* a at 3500 */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_order_rearm_cancel),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
