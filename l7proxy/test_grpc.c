// SPDX-License-Identifier: GPL-2.0-only
/* Unit tests for the gRPC rules (l7proxy/grpc.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "grpc.h"

static int parse(const char *v, uint64_t *ms)
{
	return grpc_timeout_parse(v, strlen(v), ms);
}

static void test_timeout_units(void **s)
{
	static const struct {
		const char *v;
		uint64_t ms;
	} ok[] = {
	    {"1H", 3600000},
	    {"2M", 120000},
	    {"3S", 3000},
	    {"250m", 250},
	    {"1500u", 2},
	    {"1000u", 1},
	    {"1u", 1},
	    {"1n", 1},
	    {"999999n", 1},
	    {"1000001n", 2},
	    {"0m", 0},
	    {"00000005S", 5000},
	    {"99999999H", 99999999ull * 3600000},
	    {"99999999n", 100},
	};
	uint64_t ms;

	(void)s;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		if (parse(ok[i].v, &ms))
			fail_msg("%s: rejected", ok[i].v);
		if (ms != ok[i].ms)
			fail_msg("%s: %llu ms, want %llu", ok[i].v, (unsigned long long)ms,
				 (unsigned long long)ok[i].ms);
	}
}

static void test_timeout_garbage(void **s)
{
	static const char *const bad[] = {
	    "",	   "S",	    "1",    "1s",  "1h",  "1x",	   "-1S",
	    " 1S", "1S ",   "1.5S", "1 S", "+1S", "0x10m", "123456789S", /* 9 digits */
	    "1SS", "\x00S",
	};
	uint64_t ms = 7;

	(void)s;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (grpc_timeout_parse(bad[i], strlen(bad[i]) ? strlen(bad[i]) : 2, &ms) != -EINVAL)
			fail_msg("\"%s\" accepted", bad[i]);
	assert_int_equal(ms, 7); /* untouched on error */
}

static void test_timeout_format(void **s)
{
	static const struct {
		uint64_t ms;
		const char *want;
	} cases[] = {
	    {0, "0m"},
	    {1, "1m"},
	    {99999999, "99999999m"},
	    {100000000, "100000S"}, /* rounded down: the backend gets no more */
	    {100000999, "100000S"},
	    {99999999ull * 1000 + 999, "99999999S"},
	    {100000000ull * 1000, "1666666M"},
	    {99999999ull * 3600000 * 2, "99999999H"}, /* capped */
	};
	char out[10];
	uint64_t back;

	(void)s;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t n = grpc_timeout_format(cases[i].ms, out);

		assert_int_equal(n, strlen(out));
		assert_true(n <= 9);
		assert_string_equal(out, cases[i].want);
		/* Round trip: what we send parses, and is never longer. */
		assert_int_equal(grpc_timeout_parse(out, n, &back), 0);
		assert_true(back <= cases[i].ms);
	}
}

static void test_status_mapping(void **s)
{
	(void)s;
	assert_int_equal(grpc_status_for_http(404), GRPC_UNIMPLEMENTED);
	assert_int_equal(grpc_status_for_http(502), GRPC_UNAVAILABLE);
	assert_int_equal(grpc_status_for_http(503), GRPC_UNAVAILABLE);
	assert_int_equal(grpc_status_for_http(504), GRPC_DEADLINE_EXCEEDED);
	assert_int_equal(grpc_status_for_http(429), GRPC_RESOURCE_EXHAUSTED);
	assert_int_equal(grpc_status_for_http(431), GRPC_RESOURCE_EXHAUSTED);
	assert_int_equal(grpc_status_for_http(400), GRPC_INTERNAL);
	assert_int_equal(grpc_status_for_http(500), GRPC_INTERNAL);
	assert_int_equal(grpc_status_for_http(401), GRPC_UNAUTHENTICATED);
	assert_int_equal(grpc_status_for_http(403), GRPC_PERMISSION_DENIED);
	assert_int_equal(grpc_status_for_http(418), GRPC_UNKNOWN);
}

static void test_content_type(void **s)
{
	(void)s;
	assert_true(grpc_content_type("application/grpc", 16));
	assert_true(grpc_content_type("application/grpc+proto", 22));
	assert_true(grpc_content_type("Application/GRPC;charset=x", 26));
	assert_false(grpc_content_type("application/grpc-web", 20));
	assert_false(grpc_content_type("application/json", 16));
	assert_false(grpc_content_type("application/grp", 15));
}

static void test_message_encode(void **s)
{
	char out[32];

	(void)s;
	grpc_message_encode("no route", out, sizeof(out));
	assert_string_equal(out, "no route");
	grpc_message_encode("100% \r\n\xc3\xa9", out, sizeof(out));
	assert_string_equal(out, "100%25 %0D%0A%C3%A9");
	/* Truncated whole: never half an escape. */
	grpc_message_encode("%%%%%%%%%%%%%%%%", out, 8);
	assert_string_equal(out, "%25%25");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_timeout_units),  cmocka_unit_test(test_timeout_garbage),
	    cmocka_unit_test(test_timeout_format), cmocka_unit_test(test_status_mapping),
	    cmocka_unit_test(test_content_type),   cmocka_unit_test(test_message_encode),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
