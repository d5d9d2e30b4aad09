// SPDX-License-Identifier: GPL-2.0-only
/* Unit tests: backend sets (upstream.c): parsing and validation of update
 * documents, single-backend edits, version ordering, and that a kept
 * address keeps its struct l7_upstream (and so its counters). */
#include "upstream.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static struct l7_config cfg;
static struct l7_upstreams *u;

static int setup(void **state)
{
	static const char text[] =
	    "pop = \"t\"; host = \"a\"; listeners = ( { address = \"127.0.0.1:1\"; } );\n"
	    "clusters = ( { name = \"web\"; backends = [ \"10.0.0.1:80\", \"10.0.0.2:80\" ]; },\n"
	    "             { name = \"api\"; backends = [ \"[2001:db8::1]:443\" ]; } );\n"
	    "routes = ( { path_prefix = \"/\"; cluster = \"web\"; } );\n";
	char *err = NULL;

	(void)state;
	if (l7_config_parse(text, "t.conf", &cfg, &err))
		fail_msg("%s", err);
	u = l7_upstreams_new(&cfg, 2);
	assert_non_null(u);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	l7_upstreams_free(u);
	l7_config_free(&cfg);
	return 0;
}

static struct l7_upset *parse(const char *doc, char *err, size_t len)
{
	json_error_t je;
	json_t *j = json_loads(doc, 0, &je);
	struct l7_upset *s;

	assert_non_null(j);
	s = l7_upset_parse(u, 0, j, err, len);
	json_decref(j);
	return s;
}

static void test_initial_sets(void **state)
{
	const struct l7_upset *s;

	(void)state;
	assert_int_equal(l7_upstreams_find(u, "web"), 0);
	assert_int_equal(l7_upstreams_find(u, "api"), 1);
	assert_int_equal(l7_upstreams_find(u, "nope"), -1);
	s = l7_upstreams_current(u, 0);
	assert_int_equal(s->version, 0);
	assert_int_equal(s->n, 2);
	assert_string_equal(s->m[1].up->name, "10.0.0.2:80");
	assert_int_equal(s->m[1].weight, 1);
	assert_false(s->m[1].drain);
	assert_int_equal(l7_upstreams_current(u, 1)->n, 1);
}

static void test_parse_and_publish(void **state)
{
	struct l7_upstream *kept = l7_upstreams_current(u, 0)->m[1].up;
	const struct l7_upset *cur;
	struct l7_upset *s;
	char err[256];

	(void)state;
	s = parse("{\"version\": 3, \"backends\": [\"10.0.0.3:80\", {\"address\": \"10.0.0.2:80\", "
		  "\"weight\": 5, \"drain\": true}]}",
		  err, sizeof(err));
	assert_non_null(s);
	assert_int_equal(s->n, 2);
	/* The kept address keeps its object; the new one gets a fresh one. */
	assert_ptr_equal(s->m[1].up, kept);
	assert_int_equal(s->m[1].weight, 5);
	assert_true(s->m[1].drain);
	assert_int_equal(l7_upstreams_publish(u, 0, s, "test", err, sizeof(err)), 0);
	cur = l7_upstreams_current(u, 0);
	assert_int_equal(cur->version, 3);
	assert_string_equal(cur->source, "test");
	assert_ptr_equal(cur->m[1].up, kept);

	/* Not newer: refused, the current set stays. */
	s = parse("{\"version\": 3, \"backends\": []}", err, sizeof(err));
	assert_non_null(s);
	assert_int_equal(l7_upstreams_publish(u, 0, s, "test", err, sizeof(err)), -ESTALE);
	assert_non_null(strstr(err, "not newer than the current 3"));
	s = parse("{\"version\": 2, \"backends\": []}", err, sizeof(err));
	assert_int_equal(l7_upstreams_publish(u, 0, s, "test", err, sizeof(err)), -ESTALE);
	assert_ptr_equal(l7_upstreams_current(u, 0), cur);

	/* An empty set is a valid set (every request gets 503). */
	s = parse("{\"version\": 4, \"backends\": []}", err, sizeof(err));
	assert_int_equal(l7_upstreams_publish(u, 0, s, "test", err, sizeof(err)), 0);
	assert_int_equal(l7_upstreams_current(u, 0)->n, 0);
}

static void test_parse_errors(void **state)
{
	static const struct {
		const char *doc, *err;
	} cases[] = {
	    {"[]", "expected a JSON object"},
	    {"{\"backends\": []}", "version: required"},
	    {"{\"version\": -1, \"backends\": []}", "version: expected"},
	    {"{\"version\": \"7\", \"backends\": []}", "version: expected"},
	    {"{\"version\": 9}", "backends: expected an array"},
	    {"{\"version\": 9, \"backends\": [], \"extra\": 1}", "unknown field \"extra\""},
	    {"{\"version\": 9, \"backends\": [7]}", "backends[0]: expected an object"},
	    {"{\"version\": 9, \"backends\": [\"10.0.0.1\"]}", "backends[0].address"},
	    {"{\"version\": 9, \"backends\": [\"10.0.0.1:99999\"]}", "backends[0].address"},
	    {"{\"version\": 9, \"backends\": [\"1.2.3.4:80\", {\"address\": \"1.2.3.4:81\", "
	     "\"weight\": 0}]}",
	     "backends[1].weight"},
	    {"{\"version\": 9, \"backends\": [{\"address\": \"1.2.3.4:81\", \"weight\": 10001}]}",
	     "backends[0].weight"},
	    {"{\"version\": 9, \"backends\": [{\"address\": \"1.2.3.4:81\", \"weight\": 1.5}]}",
	     "backends[0].weight"},
	    {"{\"version\": 9, \"backends\": [{\"address\": \"1.2.3.4:81\", \"drain\": 1}]}",
	     "backends[0].drain"},
	    {"{\"version\": 9, \"backends\": [{\"address\": \"1.2.3.4:81\", \"port\": 1}]}",
	     "backends[0]: unknown field \"port\""},
	    {"{\"version\": 9, \"backends\": [\"[2001:db8::1]:80\", \"[2001:db8:0::1]:80\"]}",
	     "listed twice"},
	    {"{\"version\": 9007199254740993, \"backends\": []}", "version: expected"},
	    {"{\"cluster\": \"api\", \"version\": 9, \"backends\": []}", "another cluster"},
	    {"{\"cluster\": 7, \"version\": 9, \"backends\": []}", "another cluster"},
	    {"{\"version\": 9, \"backends\": [\"10.0.0.1: 80\"]}", "backends[0].address"},
	};
	char err[256];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		err[0] = 0;
		assert_null(parse(cases[i].doc, err, sizeof(err)));
		if (!strstr(err, cases[i].err))
			fail_msg("%s: \"%s\" does not say \"%s\"", cases[i].doc, err, cases[i].err);
	}
}

static void test_canonical_names(void **state)
{
	struct l7_upset *s;
	char err[256];

	(void)state;
	s = parse(
	    "{\"cluster\": \"web\", \"version\": 99, \"backends\": [\"[2001:DB8:0::7]:080\"]}", err,
	    sizeof(err));
	if (!s)
		fail_msg("%s", err);
	assert_string_equal(s->m[0].up->name, "[2001:db8::7]:80");
	l7_upset_free(s);
}

static void test_edit(void **state)
{
	const struct l7_upset *cur = l7_upstreams_current(u, 1);
	struct l7_upstream *first = cur->m[0].up;
	uint64_t v = cur->version;
	struct l7_upset *s;
	char err[256];

	(void)state;
	/* Add, version current + 1. */
	s = l7_upset_edit(u, 1, "[2001:db8::2]:443", 7, -1, false, 0, err, sizeof(err));
	assert_non_null(s);
	assert_int_equal(s->version, v + 1);
	assert_int_equal(s->n, 2);
	assert_int_equal(s->m[1].weight, 7);
	assert_ptr_equal(s->m[0].up, first);
	assert_int_equal(l7_upstreams_publish(u, 1, s, "api", err, sizeof(err)), 0);
	/* Drain the first; its weight stays. */
	s = l7_upset_edit(u, 1, "[2001:db8::1]:443", 0, 1, false, 0, err, sizeof(err));
	assert_non_null(s);
	assert_true(s->m[0].drain);
	assert_int_equal(s->m[0].weight, 1);
	assert_int_equal(l7_upstreams_publish(u, 1, s, "api", err, sizeof(err)), 0);
	/* Remove it. */
	s = l7_upset_edit(u, 1, "[2001:db8::1]:443", 0, -1, true, 0, err, sizeof(err));
	assert_non_null(s);
	assert_int_equal(s->n, 1);
	assert_string_equal(s->m[0].up->name, "[2001:db8::2]:443");
	assert_int_equal(l7_upstreams_publish(u, 1, s, "api", err, sizeof(err)), 0);
	assert_int_equal(l7_upstreams_current(u, 1)->version, v + 3);
	/* Errors. */
	assert_null(l7_upset_edit(u, 1, "[2001:db8::1]:443", 0, -1, true, 0, err, sizeof(err)));
	assert_non_null(strstr(err, "is not in cluster api"));
	assert_null(l7_upset_edit(u, 1, "example.com:443", 0, -1, false, 0, err, sizeof(err)));
	assert_non_null(strstr(err, "address"));
	assert_null(
	    l7_upset_edit(u, 1, "[2001:db8::3]:443", 10001, -1, false, 0, err, sizeof(err)));
	assert_non_null(strstr(err, "weight"));
	/* An explicit version that is not newer is refused at publish. */
	s = l7_upset_edit(u, 1, "[2001:db8::3]:443", 0, -1, false, v + 3, err, sizeof(err));
	assert_non_null(s);
	assert_int_equal(l7_upstreams_publish(u, 1, s, "api", err, sizeof(err)), -ESTALE);
	assert_int_equal(l7_upstreams_current(u, 1)->n, 1);
}

static void test_json(void **state)
{
	json_t *j = l7_upstreams_cluster_json(u, 0, 0);
	char *s = json_dumps(j, JSON_SORT_KEYS);

	(void)state;
	assert_non_null(strstr(s, "\"name\": \"web\""));
	assert_non_null(strstr(s, "\"version\": 4"));
	free(s);
	json_decref(j);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_initial_sets), cmocka_unit_test(test_parse_and_publish),
	    cmocka_unit_test(test_parse_errors), cmocka_unit_test(test_canonical_names),
	    cmocka_unit_test(test_edit),	 cmocka_unit_test(test_json),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
