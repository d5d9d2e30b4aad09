// SPDX-License-Identifier: GPL-2.0-only
/* Unit tests for maglev_build: balance, weights, disruption, determinism. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <errno.h>

#include "lb_abi.h"
#include "maglev.h"

#define M 65537

static struct maglev_real mk(int i, uint32_t weight)
{
	struct maglev_real r = {.id = (uint32_t)i + 1, .weight = weight};
	char buf[32];

	snprintf(buf, sizeof(buf), "10.0.%d.%d", i / 250, i % 250 + 1);
	assert_int_equal(lb_addr_parse(buf, &r.addr), 0);
	return r;
}

static void counts(const uint32_t *t, uint32_t *c, size_t nids)
{
	memset(c, 0, nids * sizeof(*c));
	for (uint32_t i = 0; i < M; i++) {
		assert_true(t[i] < nids);
		c[t[i]]++;
	}
}

static void test_balance(void **state)
{
	struct maglev_real r[10];
	uint32_t *t = malloc(M * sizeof(*t)), c[11];

	(void)state;
	for (int i = 0; i < 10; i++)
		r[i] = mk(i, 1);
	assert_int_equal(maglev_build(r, 10, t, M), 0);
	counts(t, c, 11);
	assert_int_equal(c[LB_REAL_NONE], 0);
	/* Maglev's guarantee: every real within a few % of M/N. */
	for (int i = 1; i <= 10; i++) {
		assert_true(c[i] > M / 10 * 0.97);
		assert_true(c[i] < M / 10 * 1.03);
	}
	free(t);
}

static void test_weights(void **state)
{
	struct maglev_real r[3] = {mk(0, 1), mk(1, 2), mk(2, 0)};
	uint32_t *t = malloc(M * sizeof(*t)), c[4];

	(void)state;
	assert_int_equal(maglev_build(r, 3, t, M), 0);
	counts(t, c, 4);
	assert_int_equal(c[3], 0); /* weight 0: drained */
	assert_true(c[1] > M / 3 * 0.97 && c[1] < M / 3 * 1.03);
	assert_true(c[2] > 2 * M / 3 * 0.97 && c[2] < 2 * M / 3 * 1.03);
	free(t);
}

static void test_empty(void **state)
{
	struct maglev_real r[1] = {mk(0, 0)};
	uint32_t *t = malloc(M * sizeof(*t)), c[2];

	(void)state;
	assert_int_equal(maglev_build(NULL, 0, t, M), 0);
	counts(t, c, 2);
	assert_int_equal(c[LB_REAL_NONE], M);
	assert_int_equal(maglev_build(r, 1, t, M), 0);
	counts(t, c, 2);
	assert_int_equal(c[LB_REAL_NONE], M);
	free(t);
}

static void test_bad_size(void **state)
{
	uint32_t t[100];

	(void)state;
	assert_int_equal(maglev_build(NULL, 0, t, 100), -EINVAL);
	assert_true(maglev_is_prime(65537));
	assert_false(maglev_is_prime(65536));
}

/* Removing one of N moves about 1/N of the slots: only the removed real's
 * slots must move, plus a small fraction of churn. */
static void test_disruption_remove(void **state)
{
	struct maglev_real r[10];
	uint32_t *a = malloc(M * sizeof(*a)), *b = malloc(M * sizeof(*b));
	uint32_t moved = 0, moved_other = 0;

	(void)state;
	for (int i = 0; i < 10; i++)
		r[i] = mk(i, 1);
	assert_int_equal(maglev_build(r, 10, a, M), 0);
	assert_int_equal(maglev_build(r, 9, b, M), 0); /* drop id 10 */
	for (uint32_t i = 0; i < M; i++) {
		if (a[i] != b[i])
			moved++;
		if (a[i] != b[i] && a[i] != 10)
			moved_other++;
		assert_int_not_equal(b[i], 10);
	}
	/* ~1/10 must move; Maglev allows some extra churn (paper: small). */
	assert_true(moved >= M / 10 * 0.97);
	assert_true(moved < M / 10 * 1.25);
	assert_true(moved_other < M / 10 * 0.25);
	free(a);
	free(b);
}

static void test_disruption_add(void **state)
{
	struct maglev_real r[11];
	uint32_t *a = malloc(M * sizeof(*a)), *b = malloc(M * sizeof(*b));
	uint32_t moved = 0;

	(void)state;
	for (int i = 0; i < 11; i++)
		r[i] = mk(i, 1);
	assert_int_equal(maglev_build(r, 10, a, M), 0);
	assert_int_equal(maglev_build(r, 11, b, M), 0);
	for (uint32_t i = 0; i < M; i++)
		moved += a[i] != b[i];
	assert_true(moved >= M / 11 * 0.97);
	assert_true(moved < M / 11 * 1.25);
	free(a);
	free(b);
}

/* Two LBs with the same reals listed in a different order build the same
 * table: identity comes from addresses, not positions. */
static void test_identical(void **state)
{
	struct maglev_real r[8], rev[8];
	uint32_t *a = malloc(M * sizeof(*a)), *b = malloc(M * sizeof(*b));

	(void)state;
	for (int i = 0; i < 8; i++) {
		r[i] = mk(i, (uint32_t)(i % 3 + 1));
		rev[7 - i] = r[i];
	}
	assert_int_equal(maglev_build(r, 8, a, M), 0);
	assert_int_equal(maglev_build(rev, 8, b, M), 0);
	assert_memory_equal(a, b, M * sizeof(*a));
	free(a);
	free(b);
}

/* IPv6 reals work and differ from IPv4 ones. */
static void test_ipv6(void **state)
{
	struct maglev_real r[2] = {{.id = 1, .weight = 1}, {.id = 2, .weight = 1}};
	uint32_t *t = malloc(M * sizeof(*t)), c[3];

	(void)state;
	assert_int_equal(lb_addr_parse("2001:db8::1", &r[0].addr), 0);
	assert_int_equal(lb_addr_parse("2001:db8::2", &r[1].addr), 0);
	assert_int_equal(maglev_build(r, 2, t, M), 0);
	counts(t, c, 3);
	assert_true(c[1] > M / 2 * 0.97 && c[2] > M / 2 * 0.97);
	free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_balance),
	    cmocka_unit_test(test_weights),
	    cmocka_unit_test(test_empty),
	    cmocka_unit_test(test_bad_size),
	    cmocka_unit_test(test_disruption_remove),
	    cmocka_unit_test(test_disruption_add),
	    cmocka_unit_test(test_identical),
	    cmocka_unit_test(test_ipv6),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
