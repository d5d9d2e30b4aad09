// SPDX-License-Identifier: GPL-2.0-only
/* Unit tests for l7proxy's config parser. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

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
	/* The old upstream group is one cluster and a catch-all route. */
	assert_int_equal(c.n_clusters, 1);
	assert_int_equal(c.clusters[0].n_backends, 2);
	assert_int_equal(c.clusters[0].proto, L7_PROTO_HTTP1);
	assert_int_equal(c.clusters[0].connect_timeout_ms, 500);
	assert_int_equal(c.clusters[0].request_timeout_ms, 60000);
	assert_int_equal(c.clusters[0].idle_timeout_ms, 4000);
	assert_int_equal(c.n_routes, 1);
	assert_string_equal(c.routes[0].path_prefix, "/");
	assert_int_equal(c.tls.n_certs, 1);
	assert_string_equal(c.tls.certs[0].cert, "/c.pem");
	assert_int_equal(c.tls.ticket_period_s, 3600);
	assert_int_equal(c.tls.clock_skew_s, 300);
	assert_string_equal(c.tls.identity_header, "x-client-identity");
	assert_int_equal(c.h2.max_concurrent_streams, 100);
	assert_int_equal(c.client.header_timeout_ms, 10000);
	l7_config_free(&c);
}

static const char *clusters =
    "pop = \"demo\"; host = \"l7a\";\n"
    "listeners = ( { address = \"0.0.0.0:80\"; } );\n"
    "http2 = { max_concurrent_streams = 50; initial_window_size = 32768; };\n"
    "client = { header_timeout_ms = 5000; forwarded = \"append\"; };\n"
    "clusters = (\n"
    "  { name = \"web\"; backends = [ \"10.0.5.2:8080\" ]; balance = \"least_request\"; },\n"
    "  { name = \"grpc\"; protocol = \"h2c\"; backends = [ \"[fd00:5::2]:50051\" ]; }\n"
    ");\n"
    "routes = (\n"
    "  { path_prefix = \"/grpc.testing.TestService/\"; cluster = \"grpc\";\n"
    "    grpc_default_timeout_ms = 5000; grpc_max_timeout_ms = 60000; },\n"
    "  { authority = \"*.Example.com\"; cluster = \"web\"; }\n"
    ");\n";

static void test_clusters_routes(void **s)
{
	struct l7_config c;
	char *err = NULL;

	(void)s;
	if (l7_config_parse(clusters, "c.conf", &c, &err))
		fail_msg("%s", err);
	assert_int_equal(c.n_clusters, 2);
	assert_int_equal(c.clusters[0].balance, L7_BALANCE_LEAST_REQUEST);
	assert_int_equal(c.clusters[1].proto, L7_PROTO_H2C);
	assert_int_equal(c.clusters[1].idle_timeout_ms, 60000);
	assert_int_equal(c.n_routes, 2);
	assert_int_equal(c.routes[0].cluster, 1);
	assert_int_equal(c.routes[0].grpc_default_timeout_ms, 5000);
	assert_string_equal(c.routes[1].authority, "*.example.com");
	assert_string_equal(c.routes[1].path_prefix, "/");
	assert_int_equal(c.h2.max_concurrent_streams, 50);
	assert_int_equal(c.client.header_timeout_ms, 5000);
	assert_int_equal(c.client.forwarded, L7_FORWARDED_APPEND);
	l7_config_free(&c);
}

/* A cluster "w" (http1) with health = { body } opening on line 3. */
#define X16 "xxxxxxxxxxxxxxxx"
#define HEALTH(body)                                                                               \
	"host = \"a\";\nlisteners = ( { address = \"0.0.0.0:80\"; } );\n"                          \
	"clusters = ( { name = \"w\"; backends = [\"10.0.0.1:80\"]; health = {\n " body " }; } );"

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
	    {"host = \"a\\r\\nX-Evil: 1\";\nlisteners = ( { address = \"0.0.0.0:80\"; } );\n"
	     "upstream = { backends = [\"10.0.0.1:80\"]; };",
	     "bad.conf:1: host \"a"},
	    {"host = \"a\"; pop = \"p q\";\nlisteners = ( { address = \"0.0.0.0:80\"; } );\n"
	     "upstream = { backends = [\"10.0.0.1:80\"]; };",
	     "bad.conf:1: pop \"p q\": use letters"},
	    {"host = \"a\";\nlisteners = ( { address = \"0.0.0.0:80\"; } );\n"
	     "clusters = ( { name = \"w\"; backends = [\"10.0.0.1:80\"]; } );\n"
	     "routes = ( { path_prefix = \"/\";\n cluster = \"nope\"; } );",
	     "bad.conf:5: route: no cluster named \"nope\""},
	    {"host = \"a\";\nlisteners = ( { address = \"0.0.0.0:80\"; } );\n"
	     "clusters = ( { name = \"w\"; backends = [\"10.0.0.1:80\"]; } );\n"
	     "routes = ( { path_prefix = \"api\"; cluster = \"w\"; } );",
	     "bad.conf:4: route path_prefix \"api\" must start with '/'"},
	    {"host = \"a\";\nlisteners = ( { address = \"0.0.0.0:80\"; } );\n"
	     "clusters = ( { name = \"w\"; backends = [\"10.0.0.1:80\"]; },\n"
	     "             { name = \"w\"; backends = [\"10.0.0.2:80\"]; } );",
	     "bad.conf:4: cluster \"w\" is defined twice"},
	    {"host = \"a\";\nlisteners = ( { address = \"0.0.0.0:80\"; } );\n"
	     "clusters = ( { name = \"w\"; protocol = \"spdy\";\n backends = [\"10.0.0.1:80\"]; } "
	     ");",
	     "bad.conf:3: protocol \"spdy\": expected one of \"http1\", \"h2c\", \"h2\""},
	    {"host = \"a\";\nlisteners = ( { address = \"0.0.0.0:80\"; } );\n"
	     "clusters = ( { name = \"w\"; protocol = \"h2\"; backends = [\"10.0.0.1:80\"]; } );",
	     "bad.conf:3: cluster \"w\": protocol \"h2\" needs tls"},
	    {"host = \"a\";\nlisteners = ( { address = \"0.0.0.0:80\"; } );\n"
	     "upstream = { backends = [\"10.0.0.1:80\"]; };\n"
	     "clusters = ( { name = \"w\"; backends = [\"10.0.0.1:80\"]; } );",
	     "bad.conf:3: \"upstream\" is the old form"},
	    {"host = \"a\";\nlisteners = ( { address = \"0.0.0.0:80\"; } );\n"
	     "clusters = ( { name = \"w\"; backends = [\"10.0.0.1:80\"]; } );\n"
	     "routes = ( { cluster = \"w\"; grpc_default_timeout_ms = 10;\n"
	     " grpc_max_timeout_ms = 5; } );",
	     "bad.conf:4: route: grpc_default_timeout_ms (10) is above grpc_max_timeout_ms (5)"},
	    {"host = \"a\";\nlisteners = ( { address = \"0.0.0.0:80\"; } );\n"
	     "http2 = { initial_window_size = 1000000; };\n"
	     "upstream = { backends = [\"10.0.0.1:80\"]; };",
	     "bad.conf:3: http2.initial_window_size (1000000) is above client.buffer_size"},
	    {"host = \"a\";\nlisteners = ( { address = \"0.0.0.0:80\"; } );\n"
	     "client = { forwarded = \"trust\"; };\n"
	     "upstream = { backends = [\"10.0.0.1:80\"]; };",
	     "bad.conf:3: forwarded \"trust\": expected one of \"replace\", \"append\""},
	    {"host = \"a\";\nlisteners = ( { address = \"0.0.0.0:80\"; } );\n",
	     "missing \"clusters\""},
	    /* TLS */
	    {"host = \"a\";\nlisteners = ( { address = \"0.0.0.0:443\"; tls = true;\n"
	     " client_auth = \"require\"; } );\ntls = { certificate = \"c\"; key = \"k\"; };\n"
	     "upstream = { backends = [\"10.0.0.1:80\"]; };",
	     "tls.client_ca (a CA bundle) is needed"},
	    {"host = \"a\";\nlisteners = ( { address = \"0.0.0.0:80\"; client_auth = \"require\"; "
	     "} );\n"
	     "upstream = { backends = [\"10.0.0.1:80\"]; };",
	     "bad.conf:2: listener 0.0.0.0:80: client_auth needs tls = true"},
	    {"host = \"a\";\nlisteners = ( { address = \"0.0.0.0:443\"; tls = true; } );\n"
	     "tls = { certificate = \"c\"; key = \"k\";\n identity_header = \"content-length\"; "
	     "};\n"
	     "upstream = { backends = [\"10.0.0.1:80\"]; };",
	     "bad.conf:4: tls.identity_header \"content-length\" is a field the proxy"},
	    {"host = \"a\";\nlisteners = ( { address = \"0.0.0.0:443\"; tls = true; } );\n"
	     "tls = { certificate = \"c\"; key = \"k\"; ticket_secrets = \"s\"; };\n"
	     "upstream = { backends = [\"10.0.0.1:80\"]; };",
	     "bad.conf:3: unknown setting \"ticket_secrets\""},
	    {"host = \"a\";\nlisteners = ( { address = \"0.0.0.0:443\"; tls = true; } );\n"
	     "tls = { certificate = \"c\"; key = \"k\"; };\n"
	     "clusters = ( { name = \"w\"; backends = [\"10.0.0.1:80\"]; } );\n"
	     "routes = ( { cluster = \"w\"; require_client_identity = true; } );",
	     "route 1 requires a client identity but no listener has client_auth"},
	    {"host = \"a\";\nlisteners = ( { address = \"0.0.0.0:80\"; } );\n"
	     "clusters = ( { name = \"w\"; protocol = \"https\"; backends = [\"10.0.0.1:443\"];\n"
	     " tls = { ca = \"ca.pem\"; }; } );",
	     "bad.conf:4: cluster \"w\": tls.verify needs tls.sni"},
	    {"host = \"a\";\nlisteners = ( { address = \"0.0.0.0:80\"; } );\n"
	     "clusters = ( { name = \"w\"; protocol = \"https\"; backends = [\"10.0.0.1:443\"];\n"
	     " tls = { verify = false; certificate = \"c\"; }; } );",
	     "a client certificate needs both tls.certificate and tls.key"},
	    /* Active health */
	    {HEALTH("type = \"http\";\n interval = 1000; timeout = 1000;"),
	     "bad.conf:3: cluster \"w\": health timeout (1000 ms) must be below the interval "
	     "(1000 ms)"},
	    {HEALTH("interval = 1000;"), "bad.conf:3: cluster \"w\": health needs type"},
	    {HEALTH("type = \"tcp\";"), "bad.conf:4: type \"tcp\": expected one of \"http\""},
	    {HEALTH("type = \"http\";\n rise = 0;"), "bad.conf:5: \"rise\" = 0 is out of range"},
	    {HEALTH("type = \"http\";\n fall = 101;"),
	     "bad.conf:5: \"fall\" = 101 is out of range"},
	    {HEALTH("type = \"http\";\n interval = 50;"),
	     "bad.conf:5: \"interval\" = 50 is out of range"},
	    {HEALTH("type = \"http\";\n timeout = 5;"),
	     "bad.conf:5: \"timeout\" = 5 is out of range"},
	    {HEALTH("type = \"http\";\n expect = 99;"),
	     "bad.conf:5: \"expect\" = 99 is out of range"},
	    {HEALTH("type = \"http\";\n path = \"healthz\";"),
	     "bad.conf:5: cluster \"w\": health path \"healthz\" must start with '/'"},
	    {HEALTH("type = \"http\";\n path = \"/a b\";"), "health path \"/a b\" must start"},
	    {HEALTH("type = \"http\";\n host = \"a\\r\\nX: y\";"),
	     "bad.conf:5: cluster \"w\": health host"},
	    {HEALTH("type = \"http\";\n service = \"x\";"),
	     "bad.conf:5: cluster \"w\": health service is for type \"grpc\""},
	    {HEALTH("type = \"http\";\n intervall = 1000;"),
	     "bad.conf:5: unknown setting \"intervall\""},
	    {HEALTH("type = \"http\";\n interval = 1000; interval_ms = 1000;"),
	     "bad.conf:5: health: interval_ms and interval are the same setting"},
	    {HEALTH("type = \"grpc\";"),
	     "bad.conf:4: cluster \"w\": health type \"grpc\" needs protocol \"h2c\" or \"h2\", "
	     "not \"http1\""},
	    {"host = \"a\";\nlisteners = ( { address = \"0.0.0.0:80\"; } );\n"
	     "clusters = ( { name = \"g\"; protocol = \"h2c\"; backends = [\"10.0.0.1:80\"];\n"
	     " health = { type = \"grpc\";\n path = \"/x\"; }; } );",
	     "bad.conf:5: cluster \"g\": health path and expect are for type \"http\""},
	    {"host = \"a\";\nlisteners = ( { address = \"0.0.0.0:80\"; } );\n"
	     "clusters = ( { name = \"g\"; protocol = \"h2c\"; backends = [\"10.0.0.1:80\"];\n"
	     " health = { type = \"grpc\";\n service = \"a b\"; }; } );",
	     "bad.conf:5: cluster \"g\": health service \"a b\" has a space"},
	    {"host = \"a\";\nlisteners = ( { address = \"0.0.0.0:80\"; } );\n"
	     "clusters = ( { name = \"g\"; protocol = \"h2c\"; backends = [\"10.0.0.1:80\"];\n"
	     " health = { type = \"grpc\";\n service = \"" X16 X16 X16 X16 X16 X16 X16 X16
	     "\"; }; } );",
	     "bad.conf:5: service \"xxx"},
	    {"host = \"a\";\nlisteners = ( { address = \"0.0.0.0:80\"; } );\n"
	     "clusters = ( { name = \"w\"; backends = [\"10.0.0.1:80\"];\n health = 5; } );",
	     "bad.conf:4: cluster \"w\": health must be a group"},
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

static void test_health(void **s)
{
	static const char text[] =
	    "host = \"a\";\nlisteners = ( { address = \"0.0.0.0:80\"; } );\n"
	    "clusters = (\n"
	    "  { name = \"web\"; backends = [\"10.0.0.1:80\"];\n"
	    "    health = { type = \"http\"; path = \"/healthz\"; expect = 204;\n"
	    "               host = \"web.example\"; interval = 2000; timeout = 1000;\n"
	    "               rise = 2; fall = 3; }; },\n"
	    "  { name = \"grpc\"; protocol = \"h2c\"; backends = [\"10.0.0.2:50051\"];\n"
	    "    health = { type = \"grpc\"; service = \"grpc.testing.TestService\";\n"
	    "               interval_ms = 500; timeout_ms = 200; }; },\n"
	    "  { name = \"plain\"; backends = [\"10.0.0.3:80\"]; },\n"
	    "  { name = \"dflt\"; backends = [\"10.0.0.4:80\"]; health = { type = \"http\"; }; }\n"
	    ");\n";
	const struct l7_health_cfg *h;
	struct l7_config c;
	char *err = NULL;

	(void)s;
	if (l7_config_parse(text, "h.conf", &c, &err))
		fail_msg("%s", err);
	h = &c.clusters[0].health;
	assert_int_equal(h->type, L7_HEALTH_HTTP);
	assert_string_equal(h->path, "/healthz");
	assert_string_equal(h->host, "web.example");
	assert_int_equal(h->expect, 204);
	assert_int_equal(h->interval_ms, 2000);
	assert_int_equal(h->timeout_ms, 1000);
	assert_int_equal(h->rise, 2);
	assert_int_equal(h->fall, 3);
	h = &c.clusters[1].health;
	assert_int_equal(h->type, L7_HEALTH_GRPC);
	assert_string_equal(h->service, "grpc.testing.TestService");
	assert_int_equal(h->interval_ms, 500);
	assert_int_equal(h->timeout_ms, 200);
	assert_int_equal(c.clusters[2].health.type, L7_HEALTH_NONE);
	/* Defaults. */
	h = &c.clusters[3].health;
	assert_string_equal(h->path, "/");
	assert_string_equal(h->host, "");
	assert_int_equal(h->expect, 200);
	assert_int_equal(h->interval_ms, 2000);
	assert_int_equal(h->timeout_ms, 1000);
	assert_int_equal(h->rise, 2);
	assert_int_equal(h->fall, 3);
	l7_config_free(&c);
}

/* The shipped example must parse (its certificate paths are the operator's). */
static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

/* What decides whether a reload is applied in place (TLS material only)
 * or by a handover (everything else). */
static void test_fingerprint(void **s)
{
	char dir[] = "/tmp/portico-fp.XXXXXX", conf[64], ca[64], text[1024];
	char *a, *b;
	const char *fmt =
	    "pop = \"p\"; host = \"h\";\n"
	    "listeners = ( { address = \"127.0.0.1:1\"; } );\n"
	    "tls = { ticket_period_s = %d; };  # comments do not count\n"
	    "clusters = ( { name = \"c\"; protocol = \"https\"; backends = [ \"127.0.0.1:2\" ];\n"
	    "               tls = { ca = \"%s\"; sni = \"x\"; }; } );\n"
	    "routes = ( { path_prefix = \"%s\"; cluster = \"c\"; } );\n";

	(void)s;
	assert_non_null(mkdtemp(dir));
	snprintf(conf, sizeof(conf), "%s/l7.conf", dir);
	snprintf(ca, sizeof(ca), "%s/ca.pem", dir);
	write_file(ca, "one CA");
	snprintf(text, sizeof(text), fmt, 3600, ca, "/");
	write_file(conf, text);
	a = l7_config_fingerprint(conf);
	assert_non_null(a);
	/* Only the downstream tls group changed: the same. */
	snprintf(text, sizeof(text), fmt, 60, ca, "/");
	write_file(conf, text);
	b = l7_config_fingerprint(conf);
	assert_string_equal(a, b);
	free(b);
	/* A route changed: different. */
	snprintf(text, sizeof(text), fmt, 3600, ca, "/api");
	write_file(conf, text);
	b = l7_config_fingerprint(conf);
	assert_string_not_equal(a, b);
	free(b);
	/* The cluster's CA file replaced under the same name: different. */
	snprintf(text, sizeof(text), fmt, 3600, ca, "/");
	write_file(conf, text);
	write_file(ca, "another CA");
	b = l7_config_fingerprint(conf);
	assert_string_not_equal(a, b);
	free(b);
	/* Not parseable: none. */
	write_file(conf, "pop = ;");
	assert_null(l7_config_fingerprint(conf));
	free(a);
	unlink(conf);
	unlink(ca);
	rmdir(dir);
}

static void test_example(void **s)
{
	struct l7_config c;
	char *err = NULL;

	(void)s;
	if (l7_config_load(EXAMPLE_CONF, &c, &err))
		fail_msg("%s", err);
	assert_int_equal(c.n_listeners, 4);
	assert_true(c.n_clusters >= 1);
	l7_config_free(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_good),    cmocka_unit_test(test_clusters_routes),
	    cmocka_unit_test(test_bad),	    cmocka_unit_test(test_health),
	    cmocka_unit_test(test_example), cmocka_unit_test(test_fingerprint),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
