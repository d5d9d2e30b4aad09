// SPDX-License-Identifier: GPL-2.0-only
/*
 * Health checks: the rise/fall logic alone, then real probes (TCP connect,
 * HTTP/1.1 with expected status, timeouts, refused connections) against
 * small servers on loopback, run by the real event loop. The
 * encapsulation itself (mark -> tc egress) is exercised end to end in the
 * PoP tests; here the mark is 0 and probes go straight to 127.0.0.1.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "health.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* --- rise / fall ----------------------------------------------------------- */

static void test_fsm_unknown(void **s)
{
	struct hc_fsm f = {.state = HC_UNKNOWN};

	(void)s;
	/* The first success is enough to start serving... */
	assert_true(hc_fsm_feed(&f, true, 3, 3));
	assert_int_equal(f.state, HC_UP);
	/* ...but going down takes `fall` failures, as from up. */
	f = (struct hc_fsm){.state = HC_UNKNOWN};
	assert_false(hc_fsm_feed(&f, false, 3, 2));
	assert_int_equal(f.state, HC_UNKNOWN);
	assert_true(hc_fsm_feed(&f, false, 3, 2));
	assert_int_equal(f.state, HC_DOWN);
	/* A failure then a success: up. */
	f = (struct hc_fsm){.state = HC_UNKNOWN};
	assert_false(hc_fsm_feed(&f, false, 3, 2));
	assert_true(hc_fsm_feed(&f, true, 3, 2));
	assert_int_equal(f.state, HC_UP);
	assert_int_equal(f.streak, 0);
}

static void test_fsm_fall_and_rise(void **s)
{
	struct hc_fsm f = {.state = HC_UP};

	(void)s;
	/* fall = 2: one failure is not enough, a success clears it. */
	assert_false(hc_fsm_feed(&f, false, 3, 2));
	assert_int_equal(f.state, HC_UP);
	assert_int_equal(f.streak, 1);
	assert_false(hc_fsm_feed(&f, true, 3, 2));
	assert_int_equal(f.streak, 0);
	assert_false(hc_fsm_feed(&f, false, 3, 2));
	assert_true(hc_fsm_feed(&f, false, 3, 2));
	assert_int_equal(f.state, HC_DOWN);
	assert_int_equal(f.streak, 0);
	/* rise = 3: two successes then a failure start over. */
	assert_false(hc_fsm_feed(&f, true, 3, 2));
	assert_false(hc_fsm_feed(&f, true, 3, 2));
	assert_false(hc_fsm_feed(&f, false, 3, 2));
	assert_int_equal(f.streak, 0);
	assert_false(hc_fsm_feed(&f, true, 3, 2));
	assert_false(hc_fsm_feed(&f, true, 3, 2));
	assert_true(hc_fsm_feed(&f, true, 3, 2));
	assert_int_equal(f.state, HC_UP);
	/* rise = fall = 1: every flip counts at once. */
	assert_true(hc_fsm_feed(&f, false, 1, 1));
	assert_true(hc_fsm_feed(&f, true, 1, 1));
	/* Unchecked never changes. */
	f = (struct hc_fsm){.state = HC_UNCHECKED};
	assert_false(hc_fsm_feed(&f, false, 1, 1));
	assert_int_equal(f.state, HC_UNCHECKED);
}

/* --- probes against loopback servers -------------------------------------- */

enum srv_mode { SRV_ACCEPT_CLOSE, SRV_HTTP, SRV_SILENT, SRV_GARBAGE, SRV_GRPC, SRV_GRPC_BIG };

/* Append one HTTP/2 frame (RFC 9113 §4.1) on stream 1 to buf at *off. */
static void h2_frame(uint8_t *buf, size_t *off, uint8_t type, uint8_t flags, const void *payload,
		     size_t len)
{
	uint8_t *b = buf + *off;

	b[0] = (uint8_t)(len >> 16);
	b[1] = (uint8_t)(len >> 8);
	b[2] = (uint8_t)len;
	b[3] = type;
	b[4] = flags;
	b[5] = b[6] = b[7] = 0;
	b[8] = type == 4 ? 0 : 1; /* SETTINGS on stream 0 */
	if (len)
		memcpy(b + 9, payload, len);
	*off += 9 + len;
}

/*
 * A gRPC health answer by hand: SETTINGS, response HEADERS (:status 200,
 * content-type application/grpc in HPACK, RFC 7541 §6.1 and §6.2.2), the
 * message in DATA frames, then trailers grpc-status 0. SRV_GRPC sends
 * HealthCheckResponse{status: SERVING}; SRV_GRPC_BIG three DATA frames,
 * more than any health answer.
 */
static size_t grpc_answer(enum srv_mode mode, uint8_t *buf)
{
	static const uint8_t head[] = "\x88\x0f\x10\x10"
				      "application/grpc";
	static const uint8_t trailers[] = "\x00\x0bgrpc-status\x01"
					  "0";
	static const uint8_t serving[] = {0, 0, 0, 0, 2, 0x08, 0x01};
	static const uint8_t zeros[4000];
	size_t off = 0;

	h2_frame(buf, &off, 4, 0, NULL, 0);
	h2_frame(buf, &off, 1, 0x4, head, sizeof(head) - 1);
	if (mode == SRV_GRPC) {
		h2_frame(buf, &off, 0, 0, serving, sizeof(serving));
	} else {
		/* Past the 64-byte message buffer by the third frame, and
		 * that one long enough to leave the probe's allocation. */
		h2_frame(buf, &off, 0, 0, zeros, 50);
		h2_frame(buf, &off, 0, 0, zeros, 50);
		h2_frame(buf, &off, 0, 0, zeros, sizeof(zeros));
	}
	h2_frame(buf, &off, 1, 0x5, trailers, sizeof(trailers) - 1);
	return off;
}

struct server {
	int lfd;
	uint16_t port;
	enum srv_mode mode;
	volatile int status; /* SRV_HTTP: the status to answer */
	volatile int stop;
	volatile int requests;
	char last_request[512];
	pthread_t th;
};

static void *serve(void *arg)
{
	struct server *sv = arg;

	while (!sv->stop) {
		int fd = accept(sv->lfd, NULL, NULL);
		char buf[512];
		ssize_t n, got = 0;

		if (fd < 0)
			continue;
		if (sv->mode == SRV_ACCEPT_CLOSE) {
			close(fd);
			continue;
		}
		/* Read the request head (small, one or two reads). */
		while (got < (ssize_t)sizeof(buf) - 1 &&
		       (n = recv(fd, buf + got, sizeof(buf) - 1 - got, 0)) > 0) {
			got += n;
			buf[got] = 0;
			if (strstr(buf, "\r\n\r\n"))
				break;
		}
		if (got > 0) {
			memcpy(sv->last_request, buf, (size_t)got + 1);
			sv->requests++;
		}
		if (sv->mode == SRV_HTTP) {
			char resp[128];
			int len = snprintf(resp, sizeof(resp),
					   "HTTP/1.1 %d X\r\nContent-Length: 2\r\nConnection: "
					   "close\r\n\r\nok",
					   sv->status);

			send(fd, resp, (size_t)len, MSG_NOSIGNAL);
		} else if (sv->mode == SRV_GRPC || sv->mode == SRV_GRPC_BIG) {
			static uint8_t resp[8192];
			size_t len = grpc_answer(sv->mode, resp);

			/* Frame by frame would be closer to a real server;
			 * one write still reaches nghttp2 as separate DATA
			 * chunks, which is what matters. */
			send(fd, resp, len, MSG_NOSIGNAL);
			usleep(50 * 1000);
		} else if (sv->mode == SRV_GARBAGE) {
			send(fd, "SSH-2.0-nope\r\n\r\n", 16, MSG_NOSIGNAL);
		} else {
			usleep(400 * 1000); /* SRV_SILENT: say nothing for a while */
		}
		close(fd);
	}
	return NULL;
}

static void server_start(struct server *sv, enum srv_mode mode)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	struct timeval tv = {.tv_usec = 100 * 1000};
	int one = 1;

	memset(sv, 0, sizeof(*sv));
	sv->mode = mode;
	sv->status = 200;
	sv->lfd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(sv->lfd >= 0);
	setsockopt(sv->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	/* accept() wakes up now and then to see stop. */
	setsockopt(sv->lfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	assert_int_equal(bind(sv->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(sv->lfd, 64), 0);
	assert_int_equal(getsockname(sv->lfd, (struct sockaddr *)&a, &len), 0);
	sv->port = ntohs(a.sin_port);
	assert_int_equal(pthread_create(&sv->th, NULL, serve, sv), 0);
}

static void server_stop(struct server *sv)
{
	sv->stop = 1;
	pthread_join(sv->th, NULL);
	close(sv->lfd);
}

/* A port nothing listens on (bound, never listening: refused). */
static int closed_port(uint16_t *port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	bind(fd, (struct sockaddr *)&a, sizeof(a));
	getsockname(fd, (struct sockaddr *)&a, &len);
	*port = ntohs(a.sin_port);
	return fd;
}

struct changes {
	int n;
	enum hc_state last;
};

static void on_change(void *ctx, const struct l4lb_vip_key *vip, const struct lb_addr *real,
		      enum hc_state from, enum hc_state to)
{
	struct changes *ch = ctx;

	(void)vip;
	(void)real;
	(void)from;
	ch->n++;
	ch->last = to;
}

struct fixture {
	struct loop loop;
	struct health *h;
	struct changes ch;
	struct lbd_health_cfg cfg;
	struct hc_target t;
};

static void fixture_init(struct fixture *f, enum lbd_hc_kind kind, uint16_t port)
{
	memset(f, 0, sizeof(*f));
	assert_int_equal(loop_init(&f->loop), 0);
	f->h = health_new(&f->loop, on_change, &f->ch);
	assert_non_null(f->h);
	f->cfg = (struct lbd_health_cfg){.kind = kind,
					 .port = port,
					 .interval_ms = 100,
					 .fast_interval_ms = 30,
					 .timeout_ms = 150,
					 .rise = 2,
					 .fall = 2,
					 .expect_status = 200};
	strcpy(f->cfg.path, "/healthz");
	assert_int_equal(lb_addr_parse("127.0.0.1", &f->t.vip.addr), 0);
	f->t.vip.port = port;
	f->t.vip.proto = IPPROTO_TCP;
	assert_int_equal(lb_addr_parse("10.9.9.9", &f->t.real), 0);
	f->t.cfg = &f->cfg;
	f->t.initial = HC_UNKNOWN;
	assert_int_equal(health_set_targets(f->h, &f->t, 1), 0);
}

/* Run the loop until the check's state is want (and at least `changes`
 * changes were reported) or ms pass; returns the state. */
static enum hc_state run_until(struct fixture *f, enum hc_state want, int changes, int ms)
{
	uint64_t end = loop_clock_ms() + (uint64_t)ms;
	struct hc_info info;

	for (;;) {
		assert_int_equal(health_get(f->h, &f->t.vip, &f->t.real, &info), 0);
		if ((info.state == want && f->ch.n >= changes) || loop_clock_ms() >= end)
			return info.state;
		loop_run_once(&f->loop, 20);
	}
}

static void fixture_fini(struct fixture *f)
{
	health_free(f->h);
	loop_run_once(&f->loop, 0); /* deferred frees */
	loop_fini(&f->loop);
}

static void test_tcp_up_then_down(void **s)
{
	struct fixture f;
	struct server sv;
	struct hc_info info;

	(void)s;
	server_start(&sv, SRV_ACCEPT_CLOSE);
	fixture_init(&f, LBD_HC_TCP, sv.port);
	assert_int_equal(run_until(&f, HC_UP, 1, 2000), HC_UP);
	assert_int_equal(health_get(f.h, &f.t.vip, &f.t.real, &info), 0);
	assert_true(info.last_ok);
	assert_true(info.ok >= 1);
	assert_true(info.last_change_ms > 0);
	/* Nothing listens any more: refused, down after `fall` failures. */
	server_stop(&sv);
	assert_int_equal(run_until(&f, HC_DOWN, 2, 2000), HC_DOWN);
	assert_int_equal(health_get(f.h, &f.t.vip, &f.t.real, &info), 0);
	assert_non_null(strstr(info.last_result, "refused"));
	assert_true(info.failed >= 2);
	fixture_fini(&f);
}

static void test_http_status_decides(void **s)
{
	struct fixture f;
	struct server sv;
	struct hc_info info;

	(void)s;
	server_start(&sv, SRV_HTTP);
	fixture_init(&f, LBD_HC_HTTP, sv.port);
	assert_int_equal(run_until(&f, HC_UP, 1, 2000), HC_UP);
	assert_non_null(strstr(sv.last_request, "GET /healthz HTTP/1.1\r\n"));
	assert_non_null(strstr(sv.last_request, "\r\nHost: 127.0.0.1:"));
	/* A 503 is a failure: down after two of them. */
	sv.status = 503;
	assert_int_equal(run_until(&f, HC_DOWN, 2, 2000), HC_DOWN);
	assert_int_equal(health_get(f.h, &f.t.vip, &f.t.real, &info), 0);
	assert_string_equal(info.last_result, "HTTP 503, expected 200");
	/* Back to 200: up again after `rise` successes. */
	sv.status = 200;
	assert_int_equal(run_until(&f, HC_UP, 3, 2000), HC_UP);
	assert_int_equal(f.ch.n, 3);
	fixture_fini(&f);
	server_stop(&sv);
}

static void test_silent_server_times_out(void **s)
{
	struct fixture f;
	struct server sv;
	struct hc_info info;

	(void)s;
	server_start(&sv, SRV_SILENT);
	fixture_init(&f, LBD_HC_HTTP, sv.port);
	assert_int_equal(run_until(&f, HC_DOWN, 1, 2000), HC_DOWN);
	assert_int_equal(health_get(f.h, &f.t.vip, &f.t.real, &info), 0);
	assert_non_null(strstr(info.last_result, "timeout after 150 ms"));
	assert_int_equal(info.failed, 2); /* fall = 2, from unknown too */
	fixture_fini(&f);
	server_stop(&sv);
}

static void test_garbage_answer_fails(void **s)
{
	struct fixture f;
	struct server sv;
	struct hc_info info;

	(void)s;
	server_start(&sv, SRV_GARBAGE);
	fixture_init(&f, LBD_HC_HTTP, sv.port);
	assert_int_equal(run_until(&f, HC_DOWN, 1, 2000), HC_DOWN);
	assert_int_equal(health_get(f.h, &f.t.vip, &f.t.real, &info), 0);
	assert_false(info.last_ok);
	fixture_fini(&f);
	server_stop(&sv);
}

static void test_grpc_serving_is_up(void **s)
{
	struct fixture f;
	struct server sv;
	struct hc_info info;

	(void)s;
	server_start(&sv, SRV_GRPC);
	fixture_init(&f, LBD_HC_GRPC, sv.port);
	assert_int_equal(run_until(&f, HC_UP, 1, 2000), HC_UP);
	assert_int_equal(health_get(f.h, &f.t.vip, &f.t.real, &info), 0);
	assert_string_equal(info.last_result, "SERVING");
	/* The request the probe sent was HTTP/2 (the client preface). */
	assert_memory_equal(sv.last_request, "PRI * HTTP/2.0\r\n", 16);
	fixture_fini(&f);
	server_stop(&sv);
}

/* A body longer than any health answer, in several DATA frames: a failed
 * probe, and (under ASan) not a write past the probe's message buffer. */
static void test_grpc_oversized_answer_fails(void **s)
{
	struct fixture f;
	struct server sv;
	struct hc_info info;

	(void)s;
	server_start(&sv, SRV_GRPC_BIG);
	fixture_init(&f, LBD_HC_GRPC, sv.port);
	assert_int_equal(run_until(&f, HC_DOWN, 1, 2000), HC_DOWN);
	assert_int_equal(health_get(f.h, &f.t.vip, &f.t.real, &info), 0);
	assert_string_equal(info.last_result, "malformed health response");
	assert_true(sv.requests >= 2);
	fixture_fini(&f);
	server_stop(&sv);
}

static void test_refused_is_down_and_targets_sync(void **s)
{
	struct fixture f;
	struct hc_info info;
	struct hc_target t2[2];
	uint16_t port;
	int hold = closed_port(&port);

	(void)s;
	fixture_init(&f, LBD_HC_TCP, port);
	assert_int_equal(run_until(&f, HC_DOWN, 1, 2000), HC_DOWN);
	/* A second target joins; the first keeps its verdict and history. */
	t2[0] = f.t;
	t2[1] = f.t;
	assert_int_equal(lb_addr_parse("10.9.9.10", &t2[1].real), 0);
	t2[1].initial = HC_UP; /* as an adopted dataplane would say */
	assert_int_equal(health_set_targets(f.h, t2, 2), 0);
	assert_int_equal(health_get(f.h, &f.t.vip, &f.t.real, &info), 0);
	assert_int_equal(info.state, HC_DOWN);
	assert_int_equal(health_get(f.h, &t2[1].vip, &t2[1].real, &info), 0);
	assert_int_equal(info.state, HC_UP);
	/* Dropping the first: it is gone, the other stays. */
	assert_int_equal(health_set_targets(f.h, &t2[1], 1), 0);
	assert_int_equal(health_get(f.h, &f.t.vip, &f.t.real, &info), -ENOENT);
	assert_int_equal(health_get(f.h, &t2[1].vip, &t2[1].real, &info), 0);
	/* kind none: unchecked, never probed. */
	f.cfg.kind = LBD_HC_NONE;
	assert_int_equal(health_set_targets(f.h, &t2[1], 1), 0);
	assert_int_equal(health_get(f.h, &t2[1].vip, &t2[1].real, &info), 0);
	assert_int_equal(info.state, HC_UNCHECKED);
	fixture_fini(&f);
	close(hold);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_fsm_unknown),
	    cmocka_unit_test(test_fsm_fall_and_rise),
	    cmocka_unit_test(test_tcp_up_then_down),
	    cmocka_unit_test(test_http_status_decides),
	    cmocka_unit_test(test_silent_server_times_out),
	    cmocka_unit_test(test_garbage_answer_fails),
	    cmocka_unit_test(test_grpc_serving_is_up),
	    cmocka_unit_test(test_grpc_oversized_answer_fails),
	    cmocka_unit_test(test_refused_is_down_and_targets_sync),
	};

	if (geteuid() != 0) {
		fprintf(stderr, "skipped: probes set SO_MARK, which needs CAP_NET_ADMIN\n");
		return 77;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
