// SPDX-License-Identifier: GPL-2.0-only
/*
 * Unit tests for the Prometheus text writer: the exact text of a page,
 * escaping, number formatting, cumulative histogram buckets with +Inf,
 * and refusal (a NULL page, errno EINVAL) of what a scraper would reject.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prom.h"

/* Finish b and compare the page with want; frees it. */
static void expect_page(struct prom_buf *b, const char *want)
{
	size_t len = 12345;
	char *text = prom_finish(b, &len);

	assert_non_null(text);
	assert_string_equal(text, want);
	assert_int_equal(len, strlen(want));
	free(text);
}

static void expect_refused(struct prom_buf *b)
{
	size_t len = 12345;

	errno = 0;
	assert_null(prom_finish(b, &len));
	assert_int_equal(errno, EINVAL);
	assert_int_equal(len, 0);
}

static void test_page(void **s)
{
	struct prom_buf b;

	(void)s;
	prom_init(&b);
	prom_family(&b, "portico_x_packets_total", PROM_COUNTER, "Packets.");
	prom_sample_u64(&b, PROM_LABELS("vip", "192.0.2.10:80/tcp", "real", "10.0.0.1"), 42);
	prom_sample_u64(&b, PROM_LABELS("vip", "[2001:db8::1]:443/tcp", "real", "fd00::1"), 7);
	prom_family(&b, "portico_x_up", PROM_GAUGE, "Up.");
	prom_sample_u64(&b, PROM_NO_LABELS, 1);
	expect_page(&b,
		    "# HELP portico_x_packets_total Packets.\n"
		    "# TYPE portico_x_packets_total counter\n"
		    "portico_x_packets_total{vip=\"192.0.2.10:80/tcp\",real=\"10.0.0.1\"} 42\n"
		    "portico_x_packets_total{vip=\"[2001:db8::1]:443/tcp\",real=\"fd00::1\"} 7\n"
		    "# HELP portico_x_up Up.\n"
		    "# TYPE portico_x_up gauge\n"
		    "portico_x_up 1\n");
}

static void test_empty_page(void **s)
{
	struct prom_buf b;

	(void)s;
	prom_init(&b);
	expect_page(&b, "");
}

static void test_escaping(void **s)
{
	struct prom_buf b;

	(void)s;
	prom_init(&b);
	/* Help: backslash and newline escaped, a quote left as it is. */
	prom_family(&b, "m", PROM_GAUGE, "a \\ b\n\"c\"");
	/* Label values: backslash, quote and newline; UTF-8 untouched. */
	prom_sample_u64(&b, PROM_LABELS("l", "x\\y\"z\nw", "u", "caf\xc3\xa9"), 1);
	prom_sample_u64(&b, PROM_LABELS("l", ""), 2);
	expect_page(&b, "# HELP m a \\\\ b\\n\"c\"\n"
			"# TYPE m gauge\n"
			"m{l=\"x\\\\y\\\"z\\nw\",u=\"caf\xc3\xa9\"} 1\n"
			"m{l=\"\"} 2\n");
}

/* Bytes a client sent that are not UTF-8 (a gRPC method, a certificate
 * name) must not make the page unreadable: each becomes U+FFFD. */
static void test_invalid_utf8(void **s)
{
	struct prom_buf b;

	(void)s;
	prom_init(&b);
	prom_family(&b, "m", PROM_GAUGE, "h");
	/* A lone continuation byte, a truncated sequence, an overlong '/',
	 * a surrogate, one above U+10FFFF; then valid 2-, 3- and 4-byte ones. */
	prom_sample_u64(&b,
			PROM_LABELS("l", "a\x80"
					 "b\xc3"),
			1);
	prom_sample_u64(&b, PROM_LABELS("l", "\xc0\xaf\xed\xa0\x80\xf4\x90\x80\x80"), 2);
	prom_sample_u64(&b, PROM_LABELS("l", "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"), 3);
	expect_page(&b, "# HELP m h\n# TYPE m gauge\n"
			"m{l=\"a\xef\xbf\xbd"
			"b\xef\xbf\xbd\"} 1\n"
			"m{l=\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
			"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"} 2\n"
			"m{l=\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"} 3\n");
}

static void test_numbers(void **s)
{
	static const struct {
		double v;
		const char *want;
	} cases[] = {
	    {0, "0"},
	    {1, "1"},
	    {-2.5, "-2.5"},
	    {0.1, "0.1"},
	    {1.0 / 3, "0.3333333333333333"},
	    {1e21, "1e+21"},
	    {1e-7, "1e-07"},
	    {1700000000.123, "1700000000.123"},
	    {9007199254740992.0, "9007199254740992"}, /* 2^53 */
	};
	char want[4096] = "# HELP f F.\n# TYPE f gauge\n", line[128];
	struct prom_buf b;

	(void)s;
	prom_init(&b);
	prom_family(&b, "f", PROM_GAUGE, "F.");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		prom_sample_f64(&b, PROM_NO_LABELS, cases[i].v);
		snprintf(line, sizeof(line), "f %s\n", cases[i].want);
		strcat(want, line);
		/* Whatever is printed reads back as the same double. */
		assert_true(strtod(cases[i].want, NULL) == cases[i].v);
	}
	prom_sample_f64(&b, PROM_NO_LABELS, NAN);
	prom_sample_f64(&b, PROM_NO_LABELS, INFINITY);
	prom_sample_f64(&b, PROM_NO_LABELS, -INFINITY);
	strcat(want, "f NaN\nf +Inf\nf -Inf\n");
	/* Integers are exact at any size (a double would round these). */
	prom_family(&b, "i_total", PROM_COUNTER, "I.");
	prom_sample_u64(&b, PROM_NO_LABELS, 0);
	prom_sample_u64(&b, PROM_NO_LABELS, 9007199254740993ULL);
	prom_sample_u64(&b, PROM_NO_LABELS, UINT64_MAX);
	strcat(want, "# HELP i_total I.\n# TYPE i_total counter\n"
		     "i_total 0\ni_total 9007199254740993\ni_total 18446744073709551615\n");
	expect_page(&b, want);
}

static void test_histogram(void **s)
{
	static const double bounds[] = {0.005, 0.1, 1};
	/* Per bucket: 1 <= 0.005, 2 in (0.005, 0.1], 0 in (0.1, 1], 3 above. */
	static const uint64_t counts[] = {1, 2, 0, 3};
	static const uint64_t none[] = {0, 0, 0, 0};
	struct prom_buf b;

	(void)s;
	prom_init(&b);
	prom_family(&b, "lat_seconds", PROM_HISTOGRAM, "Latency.");
	prom_sample_histogram(&b, PROM_LABELS("route", "api"), bounds, 3, counts, 7.25);
	prom_sample_histogram(&b, PROM_NO_LABELS, bounds, 3, none, 0);
	expect_page(&b, "# HELP lat_seconds Latency.\n"
			"# TYPE lat_seconds histogram\n"
			"lat_seconds_bucket{route=\"api\",le=\"0.005\"} 1\n"
			"lat_seconds_bucket{route=\"api\",le=\"0.1\"} 3\n"
			"lat_seconds_bucket{route=\"api\",le=\"1\"} 3\n"
			"lat_seconds_bucket{route=\"api\",le=\"+Inf\"} 6\n"
			"lat_seconds_sum{route=\"api\"} 7.25\n"
			"lat_seconds_count{route=\"api\"} 6\n"
			"lat_seconds_bucket{le=\"0.005\"} 0\n"
			"lat_seconds_bucket{le=\"0.1\"} 0\n"
			"lat_seconds_bucket{le=\"1\"} 0\n"
			"lat_seconds_bucket{le=\"+Inf\"} 0\n"
			"lat_seconds_sum 0\n"
			"lat_seconds_count 0\n");

	/* No finite bounds at all: just +Inf. */
	prom_init(&b);
	prom_family(&b, "h", PROM_HISTOGRAM, "H.");
	prom_sample_histogram(&b, PROM_NO_LABELS, NULL, 0, (const uint64_t[]){4}, 2);
	expect_page(&b, "# HELP h H.\n# TYPE h histogram\n"
			"h_bucket{le=\"+Inf\"} 4\nh_sum 2\nh_count 4\n");
}

static void test_bucket_index(void **s)
{
	static const double bounds[] = {0.005, 0.1, 1};

	(void)s;
	assert_int_equal(prom_bucket_index(bounds, 3, 0), 0);
	assert_int_equal(prom_bucket_index(bounds, 3, 0.005), 0); /* le: inclusive */
	assert_int_equal(prom_bucket_index(bounds, 3, 0.0051), 1);
	assert_int_equal(prom_bucket_index(bounds, 3, 0.1), 1);
	assert_int_equal(prom_bucket_index(bounds, 3, 0.5), 2);
	assert_int_equal(prom_bucket_index(bounds, 3, 1), 2);
	assert_int_equal(prom_bucket_index(bounds, 3, 1.5), 3);
	assert_int_equal(prom_bucket_index(bounds, 3, INFINITY), 3);
	assert_int_equal(prom_bucket_index(bounds, 3, NAN), 3);
	assert_int_equal(prom_bucket_index(NULL, 0, 7), 0);
}

/* Each case alone on a fresh page must be refused. */
static void test_refusals(void **s)
{
	static const double bad_bounds[] = {1, 0.5};
	static const uint64_t c[] = {0, 0, 0};
	struct prom_buf b;

	(void)s;
	prom_init(&b); /* a sample before any family */
	prom_sample_u64(&b, PROM_NO_LABELS, 1);
	expect_refused(&b);

	prom_init(&b); /* a family started twice: its samples would split */
	prom_family(&b, "a_total", PROM_COUNTER, "A.");
	prom_family(&b, "b", PROM_GAUGE, "B.");
	prom_family(&b, "a_total", PROM_COUNTER, "A.");
	expect_refused(&b);

	const char *bad_names[] = {"", "1abc", "a-b", "a b", "caf\xc3\xa9"};
	for (size_t i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++) {
		prom_init(&b);
		prom_family(&b, bad_names[i], PROM_GAUGE, "X.");
		expect_refused(&b);
	}

	prom_init(&b); /* colons are fine in metric names, not in label names */
	prom_family(&b, "a:b", PROM_GAUGE, "X.");
	prom_sample_u64(&b, PROM_LABELS("c:d", "x"), 1);
	expect_refused(&b);

	prom_init(&b); /* reserved label name */
	prom_family(&b, "a", PROM_GAUGE, "X.");
	prom_sample_u64(&b, PROM_LABELS("__name__", "x"), 1);
	expect_refused(&b);

	prom_init(&b); /* a label name twice */
	prom_family(&b, "a", PROM_GAUGE, "X.");
	prom_sample_u64(&b, PROM_LABELS("x", "1", "x", "2"), 1);
	expect_refused(&b);

	prom_init(&b); /* a name without a value */
	prom_family(&b, "a", PROM_GAUGE, "X.");
	prom_sample_u64(&b, PROM_LABELS("x", "1", "y"), 1);
	expect_refused(&b);

	prom_init(&b); /* le is the writer's in a histogram */
	prom_family(&b, "h", PROM_HISTOGRAM, "H.");
	prom_sample_histogram(&b, PROM_LABELS("le", "1"), bad_bounds, 0, c, 0);
	expect_refused(&b);

	prom_init(&b); /* bounds out of order */
	prom_family(&b, "h", PROM_HISTOGRAM, "H.");
	prom_sample_histogram(&b, PROM_NO_LABELS, bad_bounds, 2, c, 0);
	expect_refused(&b);

	prom_init(&b); /* a plain sample in a histogram family, and back */
	prom_family(&b, "h", PROM_HISTOGRAM, "H.");
	prom_sample_u64(&b, PROM_NO_LABELS, 1);
	expect_refused(&b);
	prom_init(&b);
	prom_family(&b, "g", PROM_GAUGE, "G.");
	prom_sample_histogram(&b, PROM_NO_LABELS, NULL, 0, c, 0);
	expect_refused(&b);

	/* Errors are sticky: what follows is ignored, and prom_free after
	 * an abandoned page frees everything (ASan/valgrind would say). */
	prom_init(&b);
	prom_family(&b, "1bad", PROM_GAUGE, "X.");
	prom_family(&b, "good", PROM_GAUGE, "X.");
	prom_sample_u64(&b, PROM_NO_LABELS, 1);
	assert_null(b.data);
	prom_free(&b);
	prom_init(&b);
	prom_family(&b, "good", PROM_GAUGE, "X.");
	prom_free(&b);
}

/* A page much larger than the first allocation grows without loss. */
static void test_large_page(void **s)
{
	struct prom_buf b;
	char label[32], *text, *last;
	size_t len, lines = 0;

	(void)s;
	prom_init(&b);
	prom_family(&b, "big_total", PROM_COUNTER, "Big.");
	for (unsigned i = 0; i < 20000; i++) {
		snprintf(label, sizeof(label), "10.0.%u.%u", i / 256, i % 256);
		prom_sample_u64(&b, PROM_LABELS("real", label), i);
	}
	text = prom_finish(&b, &len);
	assert_non_null(text);
	assert_int_equal(strlen(text), len);
	for (size_t i = 0; i < len; i++)
		lines += text[i] == '\n';
	assert_int_equal(lines, 20002);
	text[len - 1] = '\0';
	last = strrchr(text, '\n') + 1;
	assert_string_equal(last, "big_total{real=\"10.0.78.31\"} 19999");
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_page),	 cmocka_unit_test(test_empty_page),
	    cmocka_unit_test(test_escaping),	 cmocka_unit_test(test_invalid_utf8),
	    cmocka_unit_test(test_numbers),	 cmocka_unit_test(test_histogram),
	    cmocka_unit_test(test_bucket_index), cmocka_unit_test(test_refusals),
	    cmocka_unit_test(test_large_page),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
