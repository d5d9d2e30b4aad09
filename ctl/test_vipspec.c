// SPDX-License-Identifier: GPL-2.0-only
/* Unit tests for lbctl's VIP notation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <netinet/in.h>
#include <string.h>

#include "vipspec.h"

static void test_good(void **s)
{
	struct l4lb_vip_key k;
	char msg[256], out[96];

	(void)s;
	assert_int_equal(vipspec_parse("192.0.2.10:443", &k, msg, sizeof(msg)), 0);
	assert_int_equal(k.port, 443);
	assert_int_equal(k.proto, IPPROTO_TCP);
	assert_string_equal(vipspec_str(&k, out, sizeof(out)), "192.0.2.10:443/tcp");
	assert_int_equal(vipspec_parse("[2001:db8::10]:53/udp", &k, msg, sizeof(msg)), 0);
	assert_int_equal(k.addr.family, LB_AF_INET6);
	assert_int_equal(k.proto, IPPROTO_UDP);
	assert_string_equal(vipspec_str(&k, out, sizeof(out)), "[2001:db8::10]:53/udp");
}

static void test_bad(void **s)
{
	static const struct {
		const char *in, *want;
	} cases[] = {
	    {"192.0.2.300:443", "VIP address \"192.0.2.300\""},
	    {"192.0.2.10", "expected ADDR:PORT"},
	    {"192.0.2.10:0", "VIP port \"0\""},
	    {"192.0.2.10:99999", "VIP port \"99999\""},
	    {"192.0.2.10:80/sctp", "VIP protocol \"sctp\""},
	    {"2001:db8::10:443", "expected ADDR:PORT"},
	    {"[2001:db8::10]443", "expected [IPv6]:PORT"},
	    {"[2001:db8::zz]:443", "VIP address \"2001:db8::zz\""},
	    {":443", "bad address"},
	    {"192.0.2.10:", "bad port"},
	};
	struct l4lb_vip_key k;
	char msg[256];

	(void)s;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(vipspec_parse(cases[i].in, &k, msg, sizeof(msg)), -EINVAL);
		if (!strstr(msg, cases[i].want))
			fail_msg("%s: got \"%s\", want \"%s\"", cases[i].in, msg, cases[i].want);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_good),
	    cmocka_unit_test(test_bad),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
