// SPDX-License-Identifier: GPL-2.0-only
/* Unit tests for l7proxy's config parser. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

static const char *good = "pop = \"demo\"; host = \"l7a\"; workers = 2;\n"
			  "listeners = ( { address = \"0.0.0.0:443\"; tls = true; },\n"
			  "              { address = \"[::]:80\"; } );\n"
			  "tls = { certificate = \"/c.pem\"; key = \"/k.pem\"; };\n"
			  "upstream = { backends = [ \"10.0.5.2:8080\", \"[fd00:5::2]:8080\" ];\n"
			  "             connect_timeout_ms = 500; };\n";

static void test_good(void **s)
{
	struct l7_config c;
	char *err = NULL;

	(void)s;
	assert_int_equal(l7_config_parse(good, "good.conf", &c, &err), 0);
	assert_string_equal(c.served_by, "demo/l7a");
	assert_int_equal(c.n_listeners, 2);
	assert_true(c.listeners[0].tls);
	assert_false(c.listeners[1].tls);
	assert_int_equal(c.listeners[1].addr.ss_family, AF_INET6);
	assert_int_equal(c.n_backends, 2);
	assert_int_equal(c.connect_timeout_ms, 500);
	assert_int_equal(c.upstream_timeout_ms, 60000);
	assert_string_equal(c.cert_file, "/c.pem");
	l7_config_free(&c);
}

static void test_bad(void **s)
{
	static const struct {
		const char *text, *want;
	} bad[] = {
	    {"host = \"a\";\nlisteners = ( { address = \"0.0.0.0:99999\"; } );\n"
	     "upstream = { backends = [\"10.0.0.1:80\"]; };",
	     "bad.conf:2: listener address \"0.0.0.0:99999\""},
	    {"host = \"a\";\nlisteners = ( { address = \"0.0.0.0:80\"; } );\n"
	     "upstream = { backends = [\"10.0.0.300:80\"]; };",
	     "bad.conf:3: upstream backend \"10.0.0.300:80\""},
	    {"host = \"a\";\nlisteners = ( { address = \"0.0.0.0:80\"; } );\n"
	     "upstream = { backends = []; };",
	     "bad.conf:3: upstream: \"backends\" must be a non-empty array"},
	    {"host = \"a\";\nlisteners = ( { address = \"0.0.0.0:443\"; tls = true; } );\n"
	     "upstream = { backends = [\"10.0.0.1:80\"]; };",
	     "a listener has tls = true but there is no tls"},
	    {"listeners = ( { address = \"0.0.0.0:80\"; } );\n"
	     "upstream = { backends = [\"10.0.0.1:80\"]; };",
	     "missing setting \"host\""},
	    {"host = \"a\"; workers = -1;\nlisteners = ( { address = \"0.0.0.0:80\"; } );\n"
	     "upstream = { backends = [\"10.0.0.1:80\"]; };",
	     "bad.conf:1: \"workers\" = -1 is out of range"},
	    {"host = \"a\"\nlisteners = ( { address = \"0.0.0.0:80\" } ;\n",
	     "bad.conf:2: syntax error"},
	};

	(void)s;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct l7_config c;
		char *err = NULL;

		assert_int_equal(l7_config_parse(bad[i].text, "bad.conf", &c, &err), -EINVAL);
		if (!err || !strstr(err, bad[i].want))
			fail_msg("case %zu: got \"%s\", want \"%s\"", i, err ? err : "(null)",
				 bad[i].want);
		free(err);
	}
}

/* The shipped example must parse (its certificate paths are the operator's). */
static void test_example(void **s)
{
	struct l7_config c;
	char *err = NULL;

	(void)s;
	if (l7_config_load(EXAMPLE_CONF, &c, &err))
		fail_msg("%s", err);
	assert_int_equal(c.n_listeners, 4);
	assert_int_equal(c.n_backends, 2);
	l7_config_free(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_good),
	    cmocka_unit_test(test_bad),
	    cmocka_unit_test(test_example),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
