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

static void test_request_rewrite(void **s)
{
	const char *req = "POST /upload?x=1 HTTP/1.1\r\nHost: www.example\r\n"
			  "Connection: keep-alive, x-foo\r\nTransfer-Encoding: chunked\r\n"
			  "X-Forwarded-For: 203.0.113.1\r\nX-Request-Id: abc\r\n"
			  "Keep-Alive: timeout=5\r\nAccept: */*\r\n\r\n";
	struct h1_req_out ro = {.reqid = "abc",
				.reqid_len = 3,
				.client_ip = "198.51.100.7",
				.tls = true,
				.framing = H1_BODY_CHUNKED};
	char out[2048];
	http_parser p;
	int n;

	(void)s;
	/* Byte by byte: every element split across calls. */
	assert_int_equal(parse(&p, HTTP_REQUEST, req, 1), HPE_OK);
	assert_true(complete);
	n = h1_write_request(&hd, &p, &ro, out, sizeof(out));
	assert_true(n > 0);
	out[n] = '\0';
	assert_string_equal(out, "POST /upload?x=1 HTTP/1.1\r\n"
				 "Host: www.example\r\n"
				 "Accept: */*\r\n"
				 "X-Request-Id: abc\r\n"
				 "X-Forwarded-For: 203.0.113.1, 198.51.100.7\r\n"
				 "X-Forwarded-Proto: https\r\n"
				 "Transfer-Encoding: chunked\r\n\r\n");
	/* Too small an output: -ENOSPC, never a truncated head. */
	assert_int_equal(h1_write_request(&hd, &p, &ro, out, 40), -ENOSPC);
}

static void test_response_rewrite(void **s)
{
	const char *resp = "HTTP/1.1 404 Not Found\r\nServer: nginx\r\nContent-Length: 9\r\n"
			   "Connection: keep-alive\r\nX-Request-Id: spoofed\r\n\r\n";
	struct h1_resp_out ro = {.served_by = "demo/l7a",
				 .reqid = "r1",
				 .reqid_len = 2,
				 .framing = H1_BODY_LENGTH,
				 .content_length = 9,
				 .keep_alive = false};
	char out[1024];
	http_parser p;
	int n;

	(void)s;
	assert_int_equal(parse(&p, HTTP_RESPONSE, resp, 7), HPE_OK);
	n = h1_write_response(&hd, &p, &ro, out, sizeof(out));
	assert_true(n > 0);
	out[n] = '\0';
	assert_string_equal(out, "HTTP/1.1 404 Not Found\r\nServer: nginx\r\n"
				 "X-Request-Id: r1\r\nX-Served-By: demo/l7a\r\n"
				 "Content-Length: 9\r\nConnection: close\r\n\r\n");
}

static void test_head_only_keeps_length(void **s)
{
	const char *resp = "HTTP/1.1 200 OK\r\nContent-Length: 12345\r\n\r\n";
	struct h1_resp_out ro = {.served_by = "p/h",
				 .reqid = "r",
				 .reqid_len = 1,
				 .keep_alive = true,
				 .head_only = true};
	char out[512];
	http_parser p;
	int n;

	(void)s;
	assert_int_equal(parse(&p, HTTP_RESPONSE, resp, 100), HPE_OK);
	n = h1_write_response(&hd, &p, &ro, out, sizeof(out));
	out[n] = '\0';
	assert_non_null(strstr(out, "Content-Length: 12345\r\n"));
	assert_null(strstr(out, "Connection: close"));
}

static void test_overflow_and_malformed(void **s)
{
	static char big[H1_HEAD_MAX + 200];
	http_parser p;
	size_t off;

	(void)s;
	off = (size_t)snprintf(big, sizeof(big), "GET / HTTP/1.1\r\nX-Big: ");
	memset(big + off, 'a', sizeof(big) - off - 5);
	memcpy(big + sizeof(big) - 5, "\r\n\r\n", 5);
	assert_int_not_equal(parse(&p, HTTP_REQUEST, big, 4096), HPE_OK);
	assert_true(hd.overflow);

	assert_int_not_equal(parse(&p, HTTP_REQUEST, "GET / HTTP/1.1\r\nBad Header\r\n\r\n", 64),
			     HPE_OK);
	assert_int_not_equal(parse(&p, HTTP_REQUEST, "G@T / HTTP/1.1\r\n\r\n", 64), HPE_OK);
	/* Content-Length together with chunked: refused, not guessed. */
	assert_int_not_equal(parse(&p, HTTP_REQUEST,
				   "POST / HTTP/1.1\r\nContent-Length: 5\r\n"
				   "Transfer-Encoding: chunked\r\n\r\n",
				   64),
			     HPE_OK);
}

static void test_reqid_validation(void **s)
{
	(void)s;
	assert_true(h1_reqid_valid("0af7651916cd43dd8448eb211c80319c", 32));
	assert_true(h1_reqid_valid("a-b_c.d:e", 9));
	assert_false(h1_reqid_valid("", 0));
	assert_false(h1_reqid_valid("has space", 9));
	assert_false(h1_reqid_valid("new\r\nline", 9));
	{
		char longid[200];

		memset(longid, 'a', sizeof(longid));
		assert_false(h1_reqid_valid(longid, sizeof(longid)));
	}
}

static void test_error_response(void **s)
{
	char out[512];
	int n;

	(void)s;
	n = h1_write_error(502, "demo/l7a", "rid", 3, false, out, sizeof(out));
	assert_true(n > 0);
	out[n] = '\0';
	assert_string_equal(out, "HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/plain\r\n"
				 "Content-Length: 16\r\nX-Request-Id: rid\r\n"
				 "X-Served-By: demo/l7a\r\nConnection: close\r\n\r\n"
				 "502 Bad Gateway\n");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_request_rewrite),
	    cmocka_unit_test(test_response_rewrite),
	    cmocka_unit_test(test_head_only_keeps_length),
	    cmocka_unit_test(test_overflow_and_malformed),
	    cmocka_unit_test(test_reqid_validation),
	    cmocka_unit_test(test_error_response),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
