// SPDX-License-Identifier: GPL-2.0-only
/*
 * The speaker against a peer played by hand on loopback: the sequences a
 * review found could crash or wedge it (a collision whose first connection
 * dies, a peer that stops reading, a ROUTE-REFRESH flood), hold time 0,
 * and a graceful-restart peer that reconnects while its old session still
 * looks established. The speaker and the peer share this thread: every
 * wait on the peer's side runs the speaker's loop meanwhile.
 */
#include "bgp/fsm.h"
#include "bgp/msg.h"
#include "bgp/speaker.h"
#include "loop.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#define SPEAKER_ID 0x0a000001u /* 10.0.0.1 */
#define PEER_ID	   0x0a000002u
#define PEER_AS	   65001u

static struct loop L;

static void pump(int ms)
{
	uint64_t end = loop_clock_ms() + (uint64_t)ms;

	while (loop_clock_ms() < end)
		loop_run_once(&L, 5);
}

/* A listening socket on 127.0.0.1, any port; rcvbuf > 0 shrinks what
 * accepted connections can buffer (a peer that does not read). */
static int peer_listen(uint16_t *port, int rcvbuf)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;

	assert_true(fd >= 0);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (rcvbuf)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(fd, 8), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	*port = ntohs(a.sin_port);
	return fd;
}

/* A port free a moment ago, for the speaker to listen on. */
static uint16_t free_port(void)
{
	uint16_t port;
	int fd = peer_listen(&port, 0);

	close(fd);
	return port;
}

static int peer_accept(int lfd, int ms)
{
	uint64_t end = loop_clock_ms() + (uint64_t)ms;

	for (;;) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);

		if (fd >= 0 || loop_clock_ms() >= end)
			return fd;
		loop_run_once(&L, 5);
	}
}

static int peer_connect(uint16_t port)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons(port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(fcntl(fd, F_SETFL, O_NONBLOCK), 0);
	return fd;
}

/* The next whole message on fd: its type (and body in body/len), 0 on
 * EOF, -1 after ms without one. */
static int peer_recv(int fd, uint8_t *body, size_t *len, int ms)
{
	static uint8_t buf[BGP_MAX_LEN];
	size_t have = 0, need = BGP_HDR_LEN;
	uint64_t end = loop_clock_ms() + (uint64_t)ms;
	uint16_t mlen = 0;
	uint8_t type = 0;

	while (have < need) {
		ssize_t n = recv(fd, buf + have, need - have, 0);

		if (n == 0)
			return 0;
		if (n < 0) {
			if (errno != EAGAIN || loop_clock_ms() >= end)
				return n < 0 && errno != EAGAIN ? 0 : -1;
			loop_run_once(&L, 5);
			continue;
		}
		have += (size_t)n;
		if (have == BGP_HDR_LEN && need == BGP_HDR_LEN) {
			struct bgp_err e;

			assert_int_equal(bgp_decode_header(buf, have, &type, &mlen, &e), 0);
			need = mlen;
		}
	}
	if (len)
		*len = mlen - BGP_HDR_LEN;
	if (body)
		memcpy(body, buf + BGP_HDR_LEN, mlen - BGP_HDR_LEN);
	return type;
}

static void peer_send_open(int fd, uint16_t hold, bool gr)
{
	struct bgp_open o = {.as = PEER_AS,
			     .hold_time = hold,
			     .bgp_id = PEER_ID,
			     .as4 = true,
			     .mp_v4 = true,
			     .mp_v6 = true,
			     .route_refresh = true,
			     .gr = gr,
			     .gr_time = 120};
	uint8_t buf[256];
	int n = bgp_encode_open(&o, buf, sizeof(buf));

	assert_true(n > 0);
	assert_int_equal(send(fd, buf, (size_t)n, MSG_NOSIGNAL), n);
}

static void peer_send_keepalive(int fd)
{
	uint8_t buf[32];
	int n = bgp_encode_keepalive(buf, sizeof(buf));

	assert_int_equal(send(fd, buf, (size_t)n, MSG_NOSIGNAL), n);
}

struct rig {
	struct lbd_bgp_neighbor_cfg nc;
	struct lbd_bgp_cfg bc;
	struct bgp_speaker *sp;
	int lfd;	      /* the peer's listener */
	uint16_t listen_port; /* the speaker's, 0: none */
};

static void rig_start(struct rig *r, bool listen, int rcvbuf, uint32_t retry_ms)
{
	struct bgp_speaker_params p = {.cfg = &r->bc, .router_id = SPEAKER_ID};
	char *err = NULL;
	uint16_t peer_port;

	memset(r, 0, sizeof(*r));
	assert_int_equal(loop_init(&L), 0);
	r->lfd = peer_listen(&peer_port, rcvbuf);
	r->listen_port = listen ? free_port() : 0;
	assert_int_equal(lb_addr_parse("127.0.0.1", &r->nc.addr), 0);
	r->nc.port = peer_port;
	r->nc.asn = PEER_AS;
	r->nc.ipv4 = r->nc.ipv6 = true;
	r->nc.hold_time = 30;
	r->bc = (struct lbd_bgp_cfg){.enabled = true,
				     .asn = 65000,
				     .listen_port = r->listen_port,
				     .connect_retry_ms = retry_ms,
				     .gr_restart_time = 120,
				     .neighbors = &r->nc,
				     .n_neighbors = 1};
	assert_int_equal(lb_addr_parse("10.0.0.1", &p.next_hop4), 0);
	assert_int_equal(lb_addr_parse("2001:db8::1", &p.next_hop6), 0);
	r->sp = bgp_speaker_new(&L, &p, &err);
	if (!r->sp)
		fail_msg("bgp_speaker_new: %s", err ? err : "?");
}

static void rig_stop(struct rig *r)
{
	bgp_speaker_free(r->sp);
	close(r->lfd);
	loop_run_once(&L, 0);
	loop_fini(&L);
}

/* One field of the only neighbour's JSON, as a string ("" if absent). */
static const char *nb_str(struct rig *r, const char *key, char *out, size_t cap)
{
	json_t *a = bgp_speaker_neighbors_json(r->sp);
	json_t *v = json_object_get(json_array_get(a, 0), key);

	snprintf(out, cap, "%s", json_is_string(v) ? json_string_value(v) : "");
	json_decref(a);
	return out;
}

static long long nb_int(struct rig *r, const char *key, const char *sub)
{
	json_t *a = bgp_speaker_neighbors_json(r->sp);
	json_t *v = json_object_get(json_array_get(a, 0), key);
	long long n;

	if (sub)
		v = json_object_get(v, sub);
	n = json_integer_value(v);
	json_decref(a);
	return n;
}

static bool established(struct rig *r)
{
	char s[32];

	return strcmp(nb_str(r, "state", s, sizeof(s)), "Established") == 0;
}

/* The speaker connects to the peer; bring that session up. Returns the
 * peer's end. */
static int establish(struct rig *r, bool gr)
{
	int fd = peer_accept(r->lfd, 2000);

	assert_true(fd >= 0);
	assert_int_equal(peer_recv(fd, NULL, NULL, 2000), BGP_OPEN);
	peer_send_open(fd, 30, gr);
	peer_send_keepalive(fd);
	for (int i = 0; i < 200 && !established(r); i++)
		pump(10);
	assert_true(established(r));
	return fd;
}

/* 200 IPv4 and 200 IPv6 VIP addresses, healthy or not. */
static void set_prefixes(struct rig *r, bool healthy)
{
	static struct bgp_vip_prefix p[400];

	for (int i = 0; i < 400; i++) {
		char a[64];

		if (i < 200)
			snprintf(a, sizeof(a), "192.0.%d.%d", i / 100, i % 100 + 1);
		else
			snprintf(a, sizeof(a), "2001:db8:1::%x", i);
		assert_int_equal(lb_addr_parse(a, &p[i].addr), 0);
		p[i].healthy = healthy;
	}
	bgp_speaker_set_prefixes(r->sp, p, 400);
}

/*
 * §6.8: our connection reaches OpenSent, the peer's own connection
 * arrives (kept aside), then ours dies without a NOTIFICATION. The peer's
 * OPEN on its connection must carry the session on (it used to find no
 * primary connection and crash).
 */
static void test_collision_first_connection_dies(void **s)
{
	struct rig r;
	int ours, theirs;

	(void)s;
	/* A long ConnectRetry: no new attempt of ours hides the bug. */
	rig_start(&r, true, 0, 60000);
	ours = peer_accept(r.lfd, 2000);
	assert_true(ours >= 0);
	assert_int_equal(peer_recv(ours, NULL, NULL, 2000), BGP_OPEN);
	theirs = peer_connect(r.listen_port);
	assert_int_equal(peer_recv(theirs, NULL, NULL, 2000), BGP_OPEN);
	close(ours);
	pump(100);
	peer_send_open(theirs, 30, false);
	peer_send_keepalive(theirs);
	for (int i = 0; i < 200 && !established(&r); i++)
		pump(10);
	assert_true(established(&r));
	close(theirs);
	rig_stop(&r);
}

/* The same collision, resolved by a peer with DelayOpen: it refuses our
 * connection with Cease/Connection Collision Resolution instead of an
 * OPEN. Its own connection must carry on. */
static void test_collision_refused_by_notification(void **s)
{
	static struct bgp_err e;
	struct rig r;
	uint8_t buf[64];
	int ours, theirs, n;

	(void)s;
	rig_start(&r, true, 0, 60000);
	ours = peer_accept(r.lfd, 2000);
	assert_true(ours >= 0);
	assert_int_equal(peer_recv(ours, NULL, NULL, 2000), BGP_OPEN);
	theirs = peer_connect(r.listen_port);
	assert_int_equal(peer_recv(theirs, NULL, NULL, 2000), BGP_OPEN);
	e.code = BGP_ERR_CEASE;
	e.subcode = BGP_CEASE_COLLISION;
	n = bgp_encode_notification(&e, buf, sizeof(buf));
	assert_true(n > 0);
	assert_int_equal(send(ours, buf, (size_t)n, MSG_NOSIGNAL), n);
	pump(100);
	peer_send_open(theirs, 30, false);
	peer_send_keepalive(theirs);
	for (int i = 0; i < 200 && !established(&r); i++)
		pump(10);
	assert_true(established(&r));
	close(ours);
	close(theirs);
	rig_stop(&r);
}

/* A peer that stops reading while routes keep changing: the session goes
 * (Cease, Out of Resources) once a bounded amount is queued, and comes back
 * by itself, never a crash or a neighbour stuck down. */
static void test_peer_that_does_not_read(void **s)
{
	struct rig r;
	char err[256];
	int fd, again, i;

	(void)s;
	rig_start(&r, false, 4096, 100);
	set_prefixes(&r, true);
	fd = establish(&r, false);
	for (i = 0; i < 5000 && established(&r); i++) {
		set_prefixes(&r, i % 2);
		loop_run_once(&L, 0);
	}
	assert_false(established(&r));
	nb_str(&r, "last_error", err, sizeof(err));
	print_message("last error: %s\n", err);
	assert_true(strstr(err, "does not read") || strstr(err, "Out of Resources"));
	/* Automatic restart: a new connection to the peer. */
	again = peer_accept(r.lfd, 3000);
	assert_true(again >= 0);
	close(again);
	close(fd);
	rig_stop(&r);
}

/* ROUTE-REFRESH flood from a peer that does not read: at most one copy of
 * the table is queued at a time, the session stays. */
static void test_route_refresh_flood(void **s)
{
	struct rig r;
	uint8_t rr[64];
	int fd, n, sent = 0;
	long long updates0, updates;

	(void)s;
	rig_start(&r, false, 4096, 100);
	set_prefixes(&r, true);
	fd = establish(&r, false);
	pump(50);
	updates0 = nb_int(&r, "sent", "update");
	n = bgp_encode_route_refresh(1, 1, rr, sizeof(rr));
	assert_true(n > 0);
	for (int i = 0; i < 20000; i++) {
		if (send(fd, rr, (size_t)n, MSG_NOSIGNAL) == n)
			sent++;
		if (i % 50 == 0)
			loop_run_once(&L, 0);
	}
	pump(200);
	updates = nb_int(&r, "sent", "update") - updates0;
	print_message("%d ROUTE-REFRESH sent, %lld UPDATEs queued in answer\n", sent, updates);
	assert_true(sent > 1000);
	assert_true(established(&r));
	/* Two UPDATEs (one per family) per copy of the table. */
	assert_true(updates < (long long)sent / 4);
	/* Once the peer has read everything, a refresh gets the whole
	 * table again: nothing is left stuck waiting. */
	while (peer_recv(fd, NULL, NULL, 50) > 0)
		;
	assert_int_equal(send(fd, rr, (size_t)n, MSG_NOSIGNAL), n);
	updates = 0;
	for (int type; (type = peer_recv(fd, NULL, NULL, 300)) > 0;)
		updates += type == BGP_UPDATE;
	assert_true(updates >= 2);
	assert_true(established(&r));
	close(fd);
	rig_stop(&r);
}

/* A peer offering hold time 0 (no keepalives, never noticed if it dies)
 * is refused: OPEN Message Error / Unacceptable Hold Time (§6.2). */
static void test_hold_time_zero_refused(void **s)
{
	struct rig r;
	uint8_t body[BGP_MAX_LEN];
	size_t len;
	int fd, type;

	(void)s;
	rig_start(&r, false, 0, 100);
	fd = peer_accept(r.lfd, 2000);
	assert_true(fd >= 0);
	assert_int_equal(peer_recv(fd, NULL, NULL, 2000), BGP_OPEN);
	peer_send_open(fd, 0, false);
	type = peer_recv(fd, body, &len, 2000);
	assert_int_equal(type, BGP_NOTIFICATION);
	assert_true(len >= 2);
	assert_int_equal(body[0], BGP_ERR_OPEN);
	assert_int_equal(body[1], BGP_OPEN_UNACCEPTABLE_HOLD_TIME);
	assert_false(established(&r));
	close(fd);
	rig_stop(&r);
}

/* RFC 4724 §4.2: a graceful-restart peer that reconnects while its old
 * session looks established has restarted; the new connection takes over
 * at once instead of being refused until the hold timer. */
static void test_restarted_peer_takes_over(void **s)
{
	struct rig r;
	int old, fresh;

	(void)s;
	rig_start(&r, true, 0, 100);
	old = establish(&r, true);
	fresh = peer_connect(r.listen_port);
	assert_int_equal(peer_recv(fresh, NULL, NULL, 2000), BGP_OPEN);
	peer_send_open(fresh, 30, true);
	peer_send_keepalive(fresh);
	for (int i = 0; i < 200 && nb_int(&r, "established_count", NULL) < 2; i++)
		pump(10);
	assert_true(established(&r));
	assert_int_equal(nb_int(&r, "established_count", NULL), 2);
	/* The old session's connection is closed (no NOTIFICATION needed). */
	for (;;) {
		int type = peer_recv(old, NULL, NULL, 1000);

		if (type <= 0) {
			assert_int_equal(type, 0); /* closed, not just quiet */
			break;
		}
		assert_int_not_equal(type, BGP_OPEN);
	}
	close(old);
	close(fresh);
	rig_stop(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_collision_first_connection_dies),
	    cmocka_unit_test(test_collision_refused_by_notification),
	    cmocka_unit_test(test_peer_that_does_not_read),
	    cmocka_unit_test(test_route_refresh_flood),
	    cmocka_unit_test(test_hold_time_zero_refused),
	    cmocka_unit_test(test_restarted_peer_takes_over),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
