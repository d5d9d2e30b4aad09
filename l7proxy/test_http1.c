// SPDX-License-Identifier: GPL-2.0-only
/* Unit tests for the proxy's message-head handling (l7proxy/http1.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "http1.h"

static struct h1_head hd;
static int complete;

static int cb_url(http_parser *p, const char *at, size_t len)
{
	(void)p;
	return h1_on_url(&hd, at, len);
}
static int cb_status(http_parser *p, const char *at, size_t len)
{
	(void)p;
	return h1_on_status(&hd, at, len);
}
static int cb_field(http_parser *p, const char *at, size_t len)
{
	(void)p;
	return h1_on_header_field(&hd, at, len);
}
static int cb_value(http_parser *p, const char *at, size_t len)
{
	(void)p;
	return h1_on_header_value(&hd, at, len);
}
static int cb_done(http_parser *p)
{
	(void)p;
	complete = 1;
	return 0;
}

static const http_parser_settings settings = {
    .on_url = cb_url,
    .on_status = cb_status,
    .on_header_field = cb_field,
    .on_header_value = cb_value,
    .on_headers_complete = cb_done,
};

/* Feed text in pieces of step bytes, as reads would deliver it. */
static enum http_errno parse(http_parser *p, enum http_parser_type t, const char *text, size_t step)
{
	size_t len = strlen(text);

	http_parser_init(p, t);
	h1_head_reset(&hd);
	complete = 0;
	for (size_t off = 0; off < len && !complete; off += step) {
		size_t n = len - off < step ? len - off : step;

		http_parser_execute(p, &settings, text + off, n);
		if (HTTP_PARSER_ERRNO(p) != HPE_OK)
			break;
	}
	return HTTP_PARSER_ERRNO(p);
}

/* A head split at every offset collects to the same fields. */
static void test_split_everywhere(void **s)
{
	const char *req = "POST /upload?x=1 HTTP/1.1\r\nHost: www.example\r\n"
			  "Connection: keep-alive, x-foo\r\nTransfer-Encoding: chunked\r\n"
			  "X-Foo: secret\r\nX-Request-Id: abc\r\nAccept:  text/html \r\n\r\n";
	http_parser p;

	(void)s;
	for (size_t step = 1; step <= strlen(req); step++) {
		size_t len;
		const char *v;

		assert_int_equal(parse(&p, HTTP_REQUEST, req, step), HPE_OK);
		assert_true(complete);
		assert_int_equal(hd.n, 6);
		assert_int_equal(hd.url_len, 11);
		assert_memory_equal(hd.buf + hd.url_off, "/upload?x=1", 11);
		v = h1_get(&hd, "host", &len);
		assert_non_null(v);
		assert_int_equal(len, 11);
		assert_null(h1_head_check(&hd));
	}
}

/* What crosses the proxy: not hop-by-hop fields, not those Connection
 * names, not framing, not Host; values trimmed; names lowercased. */
static void test_copy_drops_hop_by_hop(void **s)
{
	const char *req = "POST / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, X-Foo\r\n"
			  "Transfer-Encoding: chunked\r\nX-Foo: secret\r\nKeep-Alive: 5\r\n"
			  "TE: trailers\r\nUpgrade: h2c\r\nHTTP2-Settings: AAA\r\n"
			  "Content-Length: 5\r\nAccept:  text/html \r\nX-Request-Id: abc\r\n\r\n";
	static const char *const skip[] = {"x-request-id", NULL};
	struct arena a = {0};
	struct l7_hdrs out = {0};
	http_parser p;

	(void)s;
	/* Content-Length with chunked is rejected by the parser; the copy is
	 * tested on the collected head regardless. */
	parse(&p, HTTP_REQUEST, req, 7);
	assert_int_equal(h1_head_copy(&hd, &out, &a, skip), 0);
	assert_int_equal(out.n, 1);
	assert_string_equal(out.v[0].name, "accept");
	assert_string_equal(out.v[0].value, "text/html");
	arena_free(&a);
}

static void test_tokens_and_values(void **s)
{
	static const struct {
		const char *req;
		bool ok;
	} cases[] = {
	    {"GET / HTTP/1.1\r\nHost: a\r\nX-Ok: v\tw\r\n\r\n", true},
	    /* RFC 9112 §5.1: no whitespace between name and colon. */
	    {"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n", false},
	    {"GET / HTTP/1.1\r\nHost: a\r\nX(bad): v\r\n\r\n", false},
	    {"GET / HTTP/1.1\r\nHost: a\r\nX-Bad: a\x01z\r\n\r\n", false},
	    {"GET / HTTP/1.1\r\nHost: a\r\nX-Bad: a\x7fz\r\n\r\n", false},
	};
	http_parser p;

	(void)s;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		enum http_errno e = parse(&p, HTTP_REQUEST, cases[i].req, 3);
		bool ok = e == HPE_OK && complete && h1_head_check(&hd) == NULL;

		if (ok != cases[i].ok)
			fail_msg("case %zu: parser %s, check %s", i, http_errno_name(e),
				 h1_head_check(&hd) ? h1_head_check(&hd) : "ok");
	}
	assert_true(h1_token("x-foo", 5));
	assert_false(h1_token("", 0));
	assert_false(h1_token("a b", 3));
	assert_true(h1_field_value("", 0));
	assert_false(h1_field_value("a\r\nb", 4));
}

static void test_overflow(void **s)
{
	char req[40000];
	http_parser p;
	int n = snprintf(req, sizeof(req), "GET / HTTP/1.1\r\nHost: a\r\n");

	(void)s;
	for (int i = 0; i < 120; i++)
		n += snprintf(req + n, sizeof(req) - (size_t)n, "X-H%d: v\r\n", i);
	snprintf(req + n, sizeof(req) - (size_t)n, "\r\n");
	assert_int_not_equal(parse(&p, HTTP_REQUEST, req, 100), HPE_OK);
	assert_true(hd.overflow);
}

static void test_reqid(void **s)
{
	(void)s;
	assert_true(h1_reqid_valid("abc-DEF_1.2:3", 13));
	assert_false(h1_reqid_valid("", 0));
	assert_false(h1_reqid_valid("a b", 3));
	assert_false(h1_reqid_valid("a\r\nX-Evil: 1", 12));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_split_everywhere),
	    cmocka_unit_test(test_copy_drops_hop_by_hop),
	    cmocka_unit_test(test_tokens_and_values),
	    cmocka_unit_test(test_overflow),
	    cmocka_unit_test(test_reqid),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
