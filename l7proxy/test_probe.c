// SPDX-License-Identifier: GPL-2.0-only
/*
 * Unit tests: active health (probe.c). The rise/fall state machine, the
 * HealthCheckRequest / HealthCheckResponse encodings, and HTTP/1.1 probes
 * against a scripted server on 127.0.0.1 (an ephemeral port) run by the
 * same event loop: pass, wrong status, silence (timeout), refused
 * connection, and a backend removed from the set losing its probe.
 */
#include "grpc_health.h"
#include "probe.h"

#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

/* --- the state machine ------------------------------------------------------------ */

static uint32_t state(const struct l7_up_active *a)
{
	return __atomic_load_n(&a->state, __ATOMIC_RELAXED);
}

static void test_fsm(void **s)
{
	struct l7_up_active a = {0};

	(void)s;
	/* A new backend is unchecked (and served); a pass makes it up. */
	assert_int_equal(state(&a), L7_ACTIVE_UNCHECKED);
	assert_true(l7_active_feed(&a, true, 2, 3));
	assert_int_equal(state(&a), L7_ACTIVE_UP);
	assert_int_equal(a.ok_streak, 1);
	/* fall - 1 failures, then a pass: still up, the streak is broken. */
	assert_false(l7_active_feed(&a, false, 2, 3));
	assert_false(l7_active_feed(&a, false, 2, 3));
	assert_int_equal(a.fail_streak, 2);
	assert_false(l7_active_feed(&a, true, 2, 3));
	assert_int_equal(a.fail_streak, 0);
	assert_int_equal(state(&a), L7_ACTIVE_UP);
	/* fall in a row: down. */
	assert_false(l7_active_feed(&a, false, 2, 3));
	assert_false(l7_active_feed(&a, false, 2, 3));
	assert_true(l7_active_feed(&a, false, 2, 3));
	assert_int_equal(state(&a), L7_ACTIVE_DOWN);
	assert_false(l7_active_feed(&a, false, 2, 3));
	assert_int_equal(a.fail_streak, 4);
	/* rise - 1 passes and a failure: still down; rise in a row: up. */
	assert_false(l7_active_feed(&a, true, 2, 3));
	assert_false(l7_active_feed(&a, false, 2, 3));
	assert_false(l7_active_feed(&a, true, 2, 3));
	assert_true(l7_active_feed(&a, true, 2, 3));
	assert_int_equal(state(&a), L7_ACTIVE_UP);
	assert_int_equal(a.probes, 12);
	assert_int_equal(a.failures, 7);
}

static void test_fsm_unchecked_falls(void **s)
{
	struct l7_up_active a = {0};

	(void)s;
	/* An unchecked backend needs `fall` failures too, as an up one. */
	assert_false(l7_active_feed(&a, false, 1, 2));
	assert_int_equal(state(&a), L7_ACTIVE_UNCHECKED);
	assert_true(l7_active_feed(&a, false, 1, 2));
	assert_int_equal(state(&a), L7_ACTIVE_DOWN);
	/* rise = 1: one pass brings it back. */
	assert_true(l7_active_feed(&a, true, 1, 2));
	assert_int_equal(state(&a), L7_ACTIVE_UP);
	/* fall = 1: one failure takes it out. */
	assert_true(l7_active_feed(&a, false, 1, 1));
	assert_int_equal(state(&a), L7_ACTIVE_DOWN);
}

/* --- gRPC health messages ----------------------------------------------------------- */

static void test_grpc_request(void **s)
{
	uint8_t b[200];
	char longname[129];

	(void)s;
	/* proto3 omits an empty string: an empty message. */
	assert_int_equal(grpc_health_request("", b, sizeof(b)), 5);
	assert_memory_equal(b, "\0\0\0\0\0", 5);
	assert_int_equal(grpc_health_request("grpc.testing.TestService", b, sizeof(b)), 5 + 26);
	assert_memory_equal(b, "\0\0\0\0\x1a\x0a\x18grpc.testing.TestService", 31);
	assert_int_equal(grpc_health_request("svc", b, 7), 0); /* no room */
	memset(longname, 'x', 128);
	longname[128] = '\0';
	assert_int_equal(grpc_health_request(longname, b, sizeof(b)), 0);
	longname[127] = '\0';
	assert_int_equal(grpc_health_request(longname, b, sizeof(b)), 5 + 2 + 127);
}

static void test_grpc_status(void **s)
{
	static const struct {
		const char *m;
		size_t len;
		int want;
	} cases[] = {
	    {"\0\0\0\0\x02\x08\x01", 7, 1},		 /* SERVING */
	    {"\0\0\0\0\x02\x08\x02", 7, 2},		 /* NOT_SERVING */
	    {"\0\0\0\0\x00", 5, 0},			 /* empty: UNKNOWN */
	    {"\0\0\0\0\x02\x08\x03", 7, 3},		 /* SERVICE_UNKNOWN */
	    {"\0\0\0\0\x06\x12\x02hi\x08\x01", 11, 1},	 /* an unknown string field first */
	    {"\0\0\0\0\x07\x15\0\0\0\0\x08\x01", 12, 1}, /* a fixed32 field */
	    {"\0\0\0\0\x03\x08\x81\x01", 8, 129},	 /* a two-byte varint */
	    {"\x01\0\0\0\x02\x08\x01", 7, -1},		 /* compressed */
	    {"\0\0\0\0\x03\x08\x01", 7, -1},		 /* length says more */
	    {"\0\0\0\0\x01\x08", 6, -1},		 /* value cut */
	    {"\0\0\0\0\x02\x08\x81", 7, -1},		 /* varint cut */
	    {"\0\0\0\0\x02\x0a\x01", 7, -1},		 /* status not a varint */
	    {"\0\0\0\0\x02\x12\x05", 7, -1},		 /* string past the end */
	    {"\0\0\0\0\x02\x0b\x01", 7, -1},		 /* wire type 3 */
	    {"\0\0\0", 3, -1},				 /* no prefix */
	    {"\0\0\0\0\x0b\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 16, 1000}, /* capped */
	};

	(void)s;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int got = grpc_health_status((const uint8_t *)cases[i].m, cases[i].len);

		if (got != cases[i].want)
			fail_msg("case %zu: got %d, want %d", i, got, cases[i].want);
	}
}

/* --- probes against a scripted HTTP/1.1 server ------------------------------------ */

enum answer { A_200, A_503, A_SILENT };

struct server {
	struct loop *loop;
	struct loop_io lis;
	enum answer answer;
	unsigned accepted;
	int held[64]; /* silent mode: accepted and left unanswered */
	unsigned n_held;
};

/* One accepted connection: answers once the request is in. */
struct sconn {
	struct loop_io io;
	struct server *sv;
};

static void on_request(struct loop_io *io, uint32_t events)
{
	struct sconn *c = (struct sconn *)((char *)io - offsetof(struct sconn, io));
	static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
	static const char bad[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n";
	char buf[2048];
	ssize_t n;

	(void)events;
	n = read(io->fd, buf, sizeof(buf));
	/* The probe's request is a few hundred bytes: one read on loopback. */
	if (n > 0 && c->sv->answer == A_200)
		assert_true(write(io->fd, ok, sizeof(ok) - 1) > 0);
	else if (n > 0)
		assert_true(write(io->fd, bad, sizeof(bad) - 1) > 0);
	loop_io_close(c->sv->loop, io);
	loop_free_later(c->sv->loop, c);
}

static void on_accept(struct loop_io *io, uint32_t events)
{
	struct server *sv = (struct server *)((char *)io - offsetof(struct server, lis));
	struct sconn *c;
	int fd;

	(void)events;
	fd = accept4(io->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd < 0)
		return;
	sv->accepted++;
	if (sv->answer == A_SILENT && sv->n_held < 64) {
		sv->held[sv->n_held++] = fd;
		return;
	}
	c = calloc(1, sizeof(*c));
	assert_non_null(c);
	c->sv = sv;
	c->io = (struct loop_io){.fd = fd, .fn = on_request};
	assert_int_equal(loop_io_watch(sv->loop, &c->io, EPOLLIN), 0);
}

static int listen_any(uint16_t *port)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(fd, 64), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	*port = ntohs(sin.sin_port);
	return fd;
}

/* Run l until the backend's state is want (true) or ms pass (false). */
static bool run_until(struct loop *l, const struct l7_upstream *up, uint32_t want, uint64_t ms)
{
	uint64_t end = loop_clock_ms() + ms;

	while (loop_clock_ms() < end) {
		if (state(&up->active) == want)
			return true;
		loop_run_once(l, 10);
	}
	return state(&up->active) == want;
}

static void test_http_probes(void **s)
{
	char text[1024], *err = NULL, e2[256];
	struct server sv = {.answer = A_200};
	struct l7_config cfg;
	struct l7_upstreams *ups;
	struct l7_probes *ps;
	struct l7_upstream *up;
	struct l7_upset *next;
	struct loop loop;
	uint16_t port, dead_port;
	int dead;

	(void)s;
	assert_int_equal(loop_init(&loop), 0);
	sv.loop = &loop;
	sv.lis = (struct loop_io){.fd = listen_any(&port), .fn = on_accept};
	assert_int_equal(loop_io_watch(&loop, &sv.lis, EPOLLIN), 0);
	/* A port nothing listens on: bound, then closed. */
	dead = listen_any(&dead_port);
	close(dead);
	snprintf(text, sizeof(text),
		 "pop = \"t\"; host = \"a\"; listeners = ( { address = \"127.0.0.1:1\"; } );\n"
		 "clusters = ( { name = \"web\"; backends = [ \"127.0.0.1:%u\", "
		 "\"127.0.0.1:%u\" ];\n"
		 "  health = { type = \"http\"; path = \"/healthz\"; host = \"web.test\";\n"
		 "             interval = 100; timeout = 50; rise = 2; fall = 2; }; } );\n",
		 port, dead_port);
	if (l7_config_parse(text, "t.conf", &cfg, &err))
		fail_msg("%s", err);
	ups = l7_upstreams_new(&cfg, 1);
	assert_non_null(ups);
	ps = l7_probes_new(&loop, &cfg, ups);
	assert_non_null(ps);
	up = l7_upstreams_current(ups, 0)->m[0].up;
	assert_non_null(up->active.probe);
	assert_int_equal(state(&up->active), L7_ACTIVE_UNCHECKED);

	/* 200: up at the first pass. */
	assert_true(run_until(&loop, up, L7_ACTIVE_UP, 2000));
	assert_int_equal(up->active.failures, 0);
	assert_true(up->active.last_check_ms > 0);
	/* The other backend refuses: down after two probes, saying why. */
	assert_true(run_until(&loop, l7_upstreams_current(ups, 0)->m[1].up, L7_ACTIVE_DOWN, 2000));
	assert_non_null(
	    strstr(l7_upstreams_current(ups, 0)->m[1].up->active.last_error, "connect: "));

	/* 503: down after `fall` (2) failures, and says which status. */
	sv.answer = A_503;
	assert_true(run_until(&loop, up, L7_ACTIVE_DOWN, 2000));
	assert_int_equal(up->active.fail_streak, 2);
	assert_string_equal(up->active.last_error, "HTTP 503, expected 200");

	/* 200 again: back after `rise` (2) passes. */
	sv.answer = A_200;
	assert_true(run_until(&loop, up, L7_ACTIVE_UP, 2000));
	assert_int_equal(up->active.ok_streak, 2);

	/* Silence: the deadline fails the probes. */
	sv.answer = A_SILENT;
	assert_true(run_until(&loop, up, L7_ACTIVE_DOWN, 2000));
	assert_non_null(strstr(up->active.last_error, "timeout after 50 ms"));
	for (unsigned i = 0; i < sv.n_held; i++)
		close(sv.held[i]);
	sv.n_held = 0;
	sv.answer = A_200;

	/* The API shows it. */
	{
		json_t *j = l7_upstreams_cluster_json(ups, 0, loop_clock_ms());
		char *d = json_dumps(j, JSON_SORT_KEYS);

		assert_non_null(strstr(d, "\"active_health\": {"));
		assert_non_null(strstr(d, "\"state\": \"down\""));
		assert_non_null(strstr(d, "\"panic\": true")); /* both down */
		assert_non_null(strstr(d, "\"type\": \"http\""));
		free(d);
		json_decref(j);
	}

	/* A set without the first backend: its probe stops, its reference
	 * goes; the kept one keeps its probe and its state. */
	l7_upstream_get(up);
	next = l7_upset_edit(ups, 0, l7_upstreams_current(ups, 0)->m[0].up->name, 0, -1, true, 0,
			     e2, sizeof(e2));
	assert_non_null(next);
	assert_int_equal(l7_upstreams_publish(ups, 0, next, "test", e2, sizeof(e2)), 0);
	assert_int_equal(l7_probes_sync(ps), 0);
	assert_null(up->active.probe);
	assert_int_equal(__atomic_load_n(&up->refs, __ATOMIC_RELAXED), 1); /* ours only */
	assert_non_null(l7_upstreams_current(ups, 0)->m[0].up->active.probe);
	assert_int_equal(state(&l7_upstreams_current(ups, 0)->m[0].up->active), L7_ACTIVE_DOWN);
	l7_upstream_put(up);

	/* Added back: a new object, unchecked, probed again. */
	next = l7_upset_edit(ups, 0, "127.0.0.1:1", 0, -1, false, 0, e2, sizeof(e2));
	assert_non_null(next);
	assert_int_equal(l7_upstreams_publish(ups, 0, next, "test", e2, sizeof(e2)), 0);
	assert_int_equal(l7_probes_sync(ps), 0);
	assert_non_null(l7_upstreams_current(ups, 0)->m[1].up->active.probe);
	assert_int_equal(state(&l7_upstreams_current(ups, 0)->m[1].up->active),
			 L7_ACTIVE_UNCHECKED);

	l7_probes_free(ps);
	loop_run_once(&loop, 0); /* the deferred frees */
	l7_upstreams_free(ups);
	loop_io_close(&loop, &sv.lis);
	loop_fini(&loop);
	l7_config_free(&cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_fsm),		 cmocka_unit_test(test_fsm_unchecked_falls),
	    cmocka_unit_test(test_grpc_request), cmocka_unit_test(test_grpc_status),
	    cmocka_unit_test(test_http_probes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
