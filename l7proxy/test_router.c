// SPDX-License-Identifier: GPL-2.0-only
/* Unit tests for route matching (l7proxy/router.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "router.h"

static const char *conf =
    "host = \"t\";\n"
    "listeners = ( { address = \"127.0.0.1:80\"; } );\n"
    "clusters = ( { name = \"a\"; backends = [\"10.0.0.1:80\"]; },\n"
    "             { name = \"b\"; backends = [\"10.0.0.2:80\"]; },\n"
    "             { name = \"c\"; backends = [\"10.0.0.3:80\"]; },\n"
    "             { name = \"d\"; backends = [\"10.0.0.4:80\"]; } );\n"
    "routes = (\n"
    "  { authority = \"api.example.com\"; path_prefix = \"/v1/\"; cluster = \"a\"; },\n"
    "  { authority = \"*.example.com\"; path_prefix = \"/\"; cluster = \"b\"; },\n"
    "  { path_prefix = \"/grpc.testing.TestService/\"; cluster = \"c\"; },\n"
    "  { authority = \"static.test\"; cluster = \"d\"; }\n"
    ");\n";

static struct l7_config cfg;

static int setup(void **s)
{
	char *err = NULL;

	(void)s;
	if (l7_config_parse(conf, "router.conf", &cfg, &err))
		fail_msg("%s", err);
	return 0;
}

static int teardown(void **s)
{
	(void)s;
	l7_config_free(&cfg);
	return 0;
}

/* The cluster name a request goes to, or "-" for no route. */
static const char *route(const char *authority, const char *path)
{
	const struct l7_route_cfg *r =
	    router_match(&cfg, authority, authority ? strlen(authority) : 0, path, strlen(path));

	return r ? cfg.clusters[r->cluster].name : "-";
}

static void test_first_match_wins(void **s)
{
	(void)s;
	assert_string_equal(route("api.example.com", "/v1/users"), "a");
	assert_string_equal(route("api.example.com", "/v2/users"), "b"); /* prefix differs */
	assert_string_equal(route("API.Example.COM:443", "/v1/x"), "a"); /* case, port */
	assert_string_equal(route("api.example.com.", "/v1/x"), "a");	 /* trailing dot */
	assert_string_equal(route("www.example.com", "/anything"), "b");
	assert_string_equal(route("a.b.example.com", "/"), "b");
}

static void test_wildcard_needs_a_label(void **s)
{
	(void)s;
	/* "*.example.com" is not example.com itself, nor badexample.com. */
	assert_string_equal(route("example.com", "/x"), "-");
	assert_string_equal(route("badexample.com", "/x"), "-");
	assert_string_equal(route(".example.com", "/x"), "-");
}

static void test_any_authority(void **s)
{
	(void)s;
	assert_string_equal(route("whatever", "/grpc.testing.TestService/EmptyCall"), "c");
	assert_string_equal(route(NULL, "/grpc.testing.TestService/UnaryCall"), "c");
	assert_string_equal(route("[2001:db8::10]:443", "/grpc.testing.TestService/X"), "c");
	assert_string_equal(route("static.test", "/"), "d");
	assert_string_equal(route("static.test:8080", "/img/a.png"), "d");
	assert_string_equal(route(NULL, "/"), "-");
	assert_string_equal(route("other.test", "/grpc.testing.TestServic"), "-");
}

static void test_host_len(void **s)
{
	(void)s;
	assert_int_equal(router_host_len("[::1]:443", 9), 5);
	assert_int_equal(router_host_len("[::1]", 5), 5);
	assert_int_equal(router_host_len("a.b:80", 6), 3);
	assert_int_equal(router_host_len("a.b", 3), 3);
	assert_int_equal(router_host_len("", 0), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_first_match_wins),
	    cmocka_unit_test(test_wildcard_needs_a_label),
	    cmocka_unit_test(test_any_authority),
	    cmocka_unit_test(test_host_len),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
