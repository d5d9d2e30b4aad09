// SPDX-License-Identifier: GPL-2.0-only
/* Unit tests for lbd's config parser: good files and every kind of bad one.
 * A bad file must name the file, the line and the reason. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>

#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "lb_hash.h"

static const char *good =
    "role = \"l4lb\";\n"
    "pop = \"demo\";\n"
    "host = \"lb1\";\n"
    "interface = \"eth0\";\n"
    "vips = (\n"
    "  { address = \"192.0.2.10\"; port = 443; proto = \"tcp\"; encap = \"ipip\";\n"
    "    reals = ( { address = \"10.0.3.2\"; weight = 2; },\n"
    "              { address = \"10.0.4.2\"; } ); },\n"
    "  { address = \"2001:db8::10\"; port = 443;\n"
    "    reals = ( { address = \"fd00:3::2\"; } ); }\n"
    ");\n";

static void test_good(void **s)
{
	struct lbd_config c;
	char *err = NULL;

	(void)s;
	assert_int_equal(lbd_config_parse(good, "good.conf", &c, &err), 0);
	assert_int_equal(c.role, LBD_ROLE_L4LB);
	assert_string_equal(c.pop, "demo");
	assert_string_equal(c.interface, "eth0");
	assert_string_equal(c.admin_socket, "/run/portico/lbd.sock");
	assert_int_equal(c.ring_size, 65537);
	assert_int_equal(c.conn_cache_slots, LB_CONN_CACHE_SLOTS_DEFAULT);
	assert_int_equal(c.flow_hash, LB_FLOW_HASH_V1);
	assert_int_equal(c.n_vips, 2);
	assert_int_equal(c.vips[0].key.port, 443);
	assert_int_equal(c.vips[0].key.proto, IPPROTO_TCP);
	assert_int_equal(c.vips[0].n_reals, 2);
	assert_int_equal(c.vips[0].reals[0].weight, 2);
	assert_int_equal(c.vips[0].reals[1].weight, 1);
	assert_int_equal(c.vips[1].key.addr.family, LB_AF_INET6);
	lbd_config_free(&c);
}

static void test_l7(void **s)
{
	struct lbd_config c;
	char *err = NULL;

	(void)s;
	assert_int_equal(lbd_config_parse("role = \"l7\"; interface = \"eth0\";\n"
					  "vip_addresses = [\"192.0.2.10\", \"2001:db8::10\"];\n",
					  "l7.conf", &c, &err),
			 0);
	assert_int_equal(c.role, LBD_ROLE_L7);
	assert_int_equal(c.n_vip_addrs, 2);
	lbd_config_free(&c);
}

/* Each bad config and the text its error must contain (file:line: reason). */
static const struct {
	const char *text, *want;
} bad[] = {
    {"role = \"l4lb\";\ninterface = ;", "bad.conf:2: syntax error"},
    {"interface = \"eth0\";", "bad.conf:0: missing setting \"role\""},
    {"role = \"router\"; interface = \"eth0\";", "bad.conf:1: role \"router\""},
    {"role = \"l4lb\";", "missing setting \"interface\""},
    {"role = \"l4lb\"; interface = \"eth0\";\nvips = ( { address = \"192.0.2.300\"; port = 80; } "
     ");",
     "bad.conf:2: vip address \"192.0.2.300\": not an IPv4 or IPv6 address"},
    {"role = \"l4lb\"; interface = \"eth0\";\nvips = ( { address = \"192.0.2.1\"; port = 70000; } "
     ");",
     "bad.conf:2: \"port\" = 70000 is out of range"},
    {"role = \"l4lb\"; interface = \"eth0\";\nvips = ( { address = \"192.0.2.1\"; } );",
     "missing setting \"port\""},
    {"role = \"l4lb\"; interface = \"eth0\";\nvips = ( { address = \"192.0.2.1\"; port = 80; proto "
     "= \"sctp\"; } );",
     "bad.conf:2: vip: proto \"sctp\""},
    {"role = \"l4lb\"; interface = \"eth0\";\nvips = ( { address = \"192.0.2.1\"; port = 80;\n"
     "reals = ( { address = \"10.0.0.1\"; }, { address = \"10.0.0.x\"; } ); } );",
     "bad.conf:3: real address \"10.0.0.x\""},
    {"role = \"l4lb\"; interface = \"eth0\";\nvips = ( { address = \"192.0.2.1\"; port = 80;\n"
     "reals = ( { address = \"10.0.0.1\"; weight = -1; } ); } );",
     "bad.conf:3: \"weight\" = -1 is out of range"},
    {"role = \"l4lb\"; interface = \"eth0\";\nvips = ( { address = \"192.0.2.1\"; port = 80;\n"
     "reals = ( { address = \"10.0.0.1\"; }, { address = \"10.0.0.1\"; } ); } );",
     "real 10.0.0.1 listed twice"},
    {"role = \"l4lb\"; interface = \"eth0\";\nvips = ( { address = \"192.0.2.1\"; port = 80; },\n"
     "{ address = \"192.0.2.1\"; port = 80; } );",
     "bad.conf:3: vip 192.0.2.1:80/tcp defined twice"},
    {"role = \"l4lb\"; interface = \"eth0\";\nvips = ( { address = \"192.0.2.1\"; port = 53; proto "
     "= \"udp\";\nhash = \"4-tuple\"; } );",
     "bad.conf:3: vip 192.0.2.1:53/udp: hash \"4-tuple\": must be \"5-tuple\" or \"3-tuple\""},
    {"role = \"l4lb\"; interface = \"eth0\";\nvips = ( { address = \"192.0.2.1\"; port = 53; proto "
     "= \"udp\"; hash = \"3-tuple\"; },\n{ address = \"192.0.2.1\"; port = 443; proto = "
     "\"udp\"; hash = \"3-tuple\"; } );",
     "bad.conf:3: vip 192.0.2.1:443/udp: a 3-tuple vip takes every fragment to its address and "
     "protocol, so it cannot share them with another vip (port 53)"},
    {"role = \"l4lb\"; interface = \"eth0\";\nvips = ( { address = \"192.0.2.1\"; port = 53; proto "
     "= \"udp\"; },\n{ address = \"192.0.2.1\"; port = 443; proto = \"udp\"; hash = "
     "\"3-tuple\"; } );",
     "bad.conf:3: vip 192.0.2.1:443/udp: a 3-tuple vip takes every fragment"},
    {"role = \"l4lb\"; interface = \"eth0\";\nvips = ( { address = \"192.0.2.1\"; port = 443; "
     "encap = \"vxlan\"; } );",
     "bad.conf:2: vip 192.0.2.1:443/tcp: encap \"vxlan\": must be \"ipip\""},
    {"role = \"l4lb\"; interface = \"eth0\"; gue_port = 0;", "\"gue_port\" = 0 is out of range"},
    {"role = \"l4lb\"; interface = \"eth0\"; ring_size = 65536;", "ring_size 65536 is not prime"},
    {"role = \"l4lb\"; interface = \"eth0\"; flow_hash = 3;", "\"flow_hash\" = 3 is out of range"},
    {"role = \"l4lb\"; interface = \"eth0\";\nconn_cache_slots = 3000;",
     "bad.conf:2: conn_cache_slots 3000 is not a power of two"},
    {"role = \"l4lb\"; interface = \"eth0\"; conn_cache_slots = 32;",
     "\"conn_cache_slots\" = 32 is out of range"},
    {"role = \"l4lb\"; interface = \"eth0\"; xdp_mode = \"fast\";", "xdp_mode \"fast\""},
    {"role = \"l4lb\"; interface = \"eth0\"; vip_addresses = [\"192.0.2.1\"];",
     "\"vip_addresses\" is for role \"l7\""},
    {"role = \"l7\"; interface = \"eth0\"; vip_addresses = [\"nope\"];",
     "vip_addresses[0]: \"nope\" is not an IP address"},
    {"role = \"l4lb\"; interface = \"an-interface-name-too-long\";", "interface \"an-interface"},
    {"role = 5; interface = \"eth0\";", "\"role\" must be a string"},
};

/* flow_hash 2 is taken as written (version 1 is the default, above). */
static void test_flow_hash(void **s)
{
	struct lbd_config c;
	char *err = NULL;

	(void)s;
	assert_int_equal(lbd_config_parse("role = \"l4lb\"; interface = \"eth0\"; flow_hash = 2;",
					  "fh.conf", &c, &err),
			 0);
	assert_int_equal(c.flow_hash, LB_FLOW_HASH_V2);
	lbd_config_free(&c);
}

static void test_bad(void **s)
{
	(void)s;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct lbd_config c;
		char *err = NULL;

		assert_int_equal(lbd_config_parse(bad[i].text, "bad.conf", &c, &err), -EINVAL);
		assert_non_null(err);
		if (!strstr(err, bad[i].want))
			fail_msg("case %zu: got \"%s\", want \"%s\"", i, err, bad[i].want);
		assert_int_equal(c.n_vips, 0);
		free(err);
	}
}

/* A config bigger than the balancer's tables is refused before anything
 * is touched (a reload used to delete and add up to the limit, then fail). */
static void test_capacity(void **s)
{
	char *text = malloc(65 * 128 + 256), *err = NULL;
	struct lbd_config c;
	size_t n = 0;

	(void)s;
	n += (size_t)sprintf(text, "role = \"l4lb\"; host = \"a\"; interface = \"eth0\";\n"
				   "vips = (\n");
	for (int i = 0; i < 65; i++)
		n += (size_t)sprintf(text + n, "%s{ address = \"192.0.2.%d\"; port = 80; }\n",
				     i ? "," : "", i + 1);
	sprintf(text + n, ");\n");
	assert_int_equal(lbd_config_parse(text, "big.conf", &c, &err), -EINVAL);
	assert_non_null(strstr(err, "big.conf:2: 65 vips: the balancer holds at most 64"));
	free(err);
	free(text);
}

static void test_file(void **s)
{
	char path[] = "/tmp/lbdconf-XXXXXX";
	struct lbd_config c;
	char *err = NULL;
	int fd = mkstemp(path);

	(void)s;
	assert_true(fd >= 0);
	assert_true(write(fd, good, strlen(good)) == (ssize_t)strlen(good));
	assert_true(write(fd, "vips2 = ( ;\n", 12) == 12);
	close(fd);
	assert_int_equal(lbd_config_load(path, &c, &err), -EINVAL);
	assert_non_null(strstr(err, path));
	assert_non_null(strstr(err, ":12: syntax error"));
	free(err);
	unlink(path);
	err = NULL;
	assert_int_equal(lbd_config_load("/nonexistent/lbd.conf", &c, &err), -EINVAL);
	assert_non_null(strstr(err, "/nonexistent/lbd.conf: No such file"));
	free(err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_good),      cmocka_unit_test(test_l7),
	    cmocka_unit_test(test_bad),	      cmocka_unit_test(test_capacity),
	    cmocka_unit_test(test_flow_hash), cmocka_unit_test(test_file),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
