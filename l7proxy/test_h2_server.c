// SPDX-License-Identifier: GPL-2.0-only
/*
 * Unit tests for the downstream HTTP/2 session (l7proxy/h2_server.c): a
 * real worker loop and session over a socketpair, driven by hand-made
 * frames, with a dispatch that answers or holds requests itself (no
 * backend). Each known attack must end in GOAWAY (or a close) with its
 * counter, while the session's memory stays bounded; a well-behaved
 * client at full speed must never trip a limit.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proxy.h"
#include "worker.h"

/* The listener is never used (connections come from a socketpair); its
 * port only has to be free. */
static const char *conf = "pop = \"t\"; host = \"h2\"; workers = 1; access_log = \"\";\n"
			  "listeners = ( { address = \"127.0.0.1:%d\"; } );\n"
			  "client = { send_timeout_ms = 300; };\n"
			  "http2 = { max_header_list_size = 8192; };\n"
			  "clusters = ( { name = \"none\"; backends = [ \"127.0.0.1:9\" ]; } );\n";

static struct l7_config cfg;
static struct worker w;
static struct l7_upstreams *ups;
static int cfd;		/* the client's end of the socketpair */
static struct conn *sc; /* the server's connection */
static size_t max_mem;	/* the session's peak memory during a test */

/* --- what the "backend" does: answer "/ok" at once, hold the rest ------------- */

static void test_dispatch(struct stream *s)
{
	if (s->path_len >= 3 && memcmp(s->path, "/ok", 3) == 0)
		stream_reply_error(s, 200, NULL);
	else if (s->path_len >= 4 && memcmp(s->path, "/big", 4) == 0) {
		/* A large body the client will not take (zero window). */
		static char chunk[16384];

		s->status = 200;
		s->resp.content_length = 4 * sizeof(chunk);
		stream_resp_head(s);
		for (int i = 0; i < 4; i++)
			stream_resp_body(s, chunk, sizeof(chunk));
		stream_resp_end(s);
		s->us_done = true;
	}
	/* anything else waits, like a slow backend */
}

/* --- frames --------------------------------------------------------------------- */

struct bytes {
	uint8_t *p;
	size_t len, cap;
};

static void put(struct bytes *b, const void *p, size_t n)
{
	if (b->len + n > b->cap) {
		b->cap = (b->len + n) * 2 + 4096;
		b->p = realloc(b->p, b->cap);
		assert_non_null(b->p);
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
}

static void frame(struct bytes *b, uint8_t type, uint8_t flags, uint32_t sid, const void *payload,
		  size_t len)
{
	uint8_t h[9] = {(uint8_t)(len >> 16),
			(uint8_t)(len >> 8),
			(uint8_t)len,
			type,
			flags,
			(uint8_t)(sid >> 24) & 0x7f,
			(uint8_t)(sid >> 16),
			(uint8_t)(sid >> 8),
			(uint8_t)sid};

	put(b, h, 9);
	if (len)
		put(b, payload, len);
}

static void preface(struct bytes *b, uint32_t initial_window)
{
	uint8_t settings[6] = {0,
			       4,
			       (uint8_t)(initial_window >> 24),
			       (uint8_t)(initial_window >> 16),
			       (uint8_t)(initial_window >> 8),
			       (uint8_t)initial_window};

	put(b, NGHTTP2_CLIENT_MAGIC, NGHTTP2_CLIENT_MAGIC_LEN);
	frame(b, NGHTTP2_SETTINGS, 0, 0, settings, initial_window == 65535 ? 0 : 6);
}

static nghttp2_hd_deflater *deflater;

/* A HEADERS frame for a GET of path on stream sid. */
static void get(struct bytes *b, uint32_t sid, const char *path, uint8_t flags)
{
	nghttp2_nv nv[] = {
	    {(uint8_t *)":method", (uint8_t *)"GET", 7, 3, 0},
	    {(uint8_t *)":scheme", (uint8_t *)"http", 7, 4, 0},
	    {(uint8_t *)":authority", (uint8_t *)"t", 10, 1, 0},
	    {(uint8_t *)":path", (uint8_t *)path, 5, strlen(path), 0},
	};
	uint8_t block[256];
	ssize_t n = nghttp2_hd_deflate_hd(deflater, block, sizeof(block), nv, 4);

	assert_true(n > 0);
	frame(b, NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS | flags, sid, block, (size_t)n);
}

static void send_all(struct bytes *b)
{
	size_t off = 0;

	while (off < b->len) {
		ssize_t n = write(cfd, b->p + off, b->len - off);

		if (n < 0 && errno == EAGAIN) {
			loop_run_once(&w.loop, 0);
			continue;
		}
		if (n <= 0)
			break; /* the server closed */
		off += (size_t)n;
		loop_run_once(&w.loop, 0);
	}
	b->len = 0;
}

/* --- what the server said ----------------------------------------------------------- */

struct seen {
	int goaways, rsts, headers, data;
	uint32_t goaway_error, last_rst_error;
	uint32_t goaway_last[4]; /* last-stream-id of the first GOAWAYs */
	bool closed;
};

static struct bytes inbuf;

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Run the loop for ms and read what the server sent (or not, to play a
 * client that never reads). */
static void run(struct seen *s, int ms, bool read_it)
{
	uint64_t end = loop_clock_ms() + (uint64_t)ms;
	uint8_t tmp[65536];

	do {
		loop_run_once(&w.loop, 10);
		if (!sc->closed) {
			size_t m = h2s_mem(sc);

			if (m > max_mem)
				max_mem = m;
		}
		while (read_it) {
			ssize_t n = read(cfd, tmp, sizeof(tmp));

			if (n == 0)
				s->closed = true;
			if (n <= 0)
				break;
			put(&inbuf, tmp, (size_t)n);
		}
	} while (loop_clock_ms() < end);
	/* Parse whole frames. */
	size_t off = 0;

	while (inbuf.len - off >= 9) {
		const uint8_t *h = inbuf.p + off;
		size_t len = (size_t)h[0] << 16 | (size_t)h[1] << 8 | h[2];

		if (inbuf.len - off < 9 + len)
			break;
		switch (h[3]) {
		case NGHTTP2_GOAWAY:
			if (s->goaways < 4)
				s->goaway_last[s->goaways] = be32(h + 9) & 0x7fffffff;
			s->goaways++;
			s->goaway_error = be32(h + 9 + 4);
			break;
		case NGHTTP2_RST_STREAM:
			s->rsts++;
			s->last_rst_error = be32(h + 9);
			break;
		case NGHTTP2_HEADERS:
			s->headers++;
			break;
		case NGHTTP2_DATA:
			s->data++;
			break;
		}
		off += 9 + len;
	}
	memmove(inbuf.p, inbuf.p + off, inbuf.len - off);
	inbuf.len -= off;
}

static int setup(void **state)
{
	char *err = NULL;
	int sv[2];
	struct sockaddr_storage peer = {0};
	struct sockaddr_in *sin = (struct sockaddr_in *)&peer;

	(void)state;
	if (!cfg.n_listeners) {
		char text[1024];

		snprintf(text, sizeof(text), conf, 40000 + getpid() % 20000);
		if (l7_config_parse(text, "h2.conf", &cfg, &err))
			fail_msg("%s", err);
	}
	ups = l7_upstreams_new(&cfg, 1);
	assert_non_null(ups);
	assert_int_equal(worker_init(&w, 0, &cfg, ups, NULL, NULL, -1, NULL), 0);
	w.dispatch = test_dispatch;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	cfd = sv[1];
	sin->sin_family = AF_INET;
	inet_pton(AF_INET, "192.0.2.1", &sin->sin_addr);
	sc = conn_accept(&w, sv[0], &peer, false, L7_CLIENT_AUTH_NONE);
	assert_non_null(sc);
	assert_int_equal(nghttp2_hd_deflate_new(&deflater, 4096), 0);
	inbuf.len = 0;
	max_mem = 0;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	free(inbuf.p);
	inbuf = (struct bytes){0};
	close(cfd);
	loop_run_once(&w.loop, 10);
	worker_fini(&w);
	l7_upstreams_free(ups);
	ups = NULL;
	nghttp2_hd_deflate_del(deflater);
	return 0;
}

/* The preface, and the server's SETTINGS read. */
static void start(struct bytes *b, uint32_t initial_window)
{
	struct seen s = {0};

	preface(b, initial_window);
	send_all(b);
	run(&s, 20, true);
	assert_false(s.closed);
	assert_true(h2s_mem(sc) > 0); /* an HTTP/2 session now */
}

#define STAT(n) (w.st.n)

/* --- a well-behaved client at full speed never trips a limit ------------------- */

static void test_good_client(void **state)
{
	struct bytes b = {0};
	struct seen s = {0};
	uint32_t sid = 1;

	(void)state;
	start(&b, 65535);
	/* 2000 requests, 100 in flight at a time (the limit), read as they
	 * come, with the WINDOW_UPDATEs a client sends while reading. */
	for (int round = 0; round < 20; round++) {
		for (int i = 0; i < 100; i++, sid += 2)
			get(&b, sid, "/ok", NGHTTP2_FLAG_END_STREAM);
		send_all(&b);
		run(&s, 5, true);
	}
	run(&s, 50, true);
	assert_int_equal(s.goaways, 0);
	assert_int_equal(s.rsts, 0);
	assert_int_equal(s.headers, 2000);
	assert_int_equal(STAT(h2_goaway_abuse), 0);
	assert_false(s.closed);
	free(b.p);
}

/* --- CVE-2023-44487: HEADERS then RST_STREAM, again and again ------------------- */

static void test_rapid_reset(void **state)
{
	struct bytes b = {0};
	struct seen s = {0};
	uint8_t cancel[4] = {0, 0, 0, NGHTTP2_CANCEL};

	(void)state;
	start(&b, 65535);
	for (uint32_t sid = 1; sid < 2 * 3000 && !s.closed; sid += 2) {
		get(&b, sid, "/slow", NGHTTP2_FLAG_END_STREAM);
		frame(&b, NGHTTP2_RST_STREAM, 0, sid, cancel, 4);
		if (sid % 200 == 1) {
			send_all(&b);
			run(&s, 1, true);
		}
	}
	send_all(&b);
	run(&s, 50, true);
	assert_int_equal(s.goaways, 1);
	assert_int_equal(s.goaway_error, NGHTTP2_ENHANCE_YOUR_CALM);
	assert_true(STAT(h2_client_resets) >= 1000);
	assert_int_equal(STAT(h2_goaway_abuse), 1);
	assert_true(max_mem < 512 * 1024);
	free(b.p);
}

/* --- CONTINUATION flood: a header block that never ends ------------------------- */

static void test_continuation_flood(void **state)
{
	struct bytes b = {0};
	struct seen s = {0};
	uint8_t frag[64];

	(void)state;
	start(&b, 65535);
	get(&b, 1, "/ok", NGHTTP2_FLAG_END_STREAM);
	/* Re-frame: HEADERS without END_HEADERS, then endless CONTINUATIONs
	 * of a literal header's bytes. */
	b.p[b.len - 0] = 0;
	b.len = 0;
	{
		nghttp2_nv nv[] = {{(uint8_t *)":method", (uint8_t *)"GET", 7, 3, 0},
				   {(uint8_t *)":path", (uint8_t *)"/", 5, 1, 0}};
		uint8_t block[64];
		ssize_t n = nghttp2_hd_deflate_hd(deflater, block, sizeof(block), nv, 2);

		frame(&b, NGHTTP2_HEADERS, NGHTTP2_FLAG_END_STREAM, 3, block, (size_t)n);
	}
	memset(frag, 0x40, sizeof(frag));
	for (int i = 0; i < 5000 && !s.closed; i++) {
		/* literal, new name: "x-a..." with empty pieces */
		uint8_t lit[8] = {0x00, 0x01, 'x', 0x01, 'y', 0x00, 0x01, 'z'};

		frame(&b, NGHTTP2_CONTINUATION, 0, 3, lit, sizeof(lit));
		if (i % 100 == 0) {
			send_all(&b);
			run(&s, 1, true);
		}
	}
	send_all(&b);
	run(&s, 50, true);
	assert_true(s.closed);
	assert_true(s.goaways >= 1);
	assert_int_equal(STAT(h2_flood), 1);
	assert_true(max_mem < 512 * 1024);
	free(b.p);
}

/* --- HPACK bomb: a few bytes on the wire, a huge header list -------------------- */

static void test_hpack_bomb(void **state)
{
	struct bytes b = {0};
	struct seen s = {0};
	uint8_t block[16384];

	(void)state;
	start(&b, 65535);
	for (uint32_t sid = 1; sid < 2 * 200 && !s.closed; sid += 2) {
		size_t n = 0;

		/* :method GET, :scheme http, :path / (static table). */
		block[n++] = 0x82;
		block[n++] = 0x86;
		block[n++] = 0x84;
		if (sid == 1) {
			/* Insert "x-bomb: 4000 x" into the dynamic table. */
			block[n++] = 0x40;
			block[n++] = 6;
			memcpy(block + n, "x-bomb", 6);
			n += 6;
			block[n++] = 0x7f; /* length 4000 = 127 + 3873 */
			block[n++] = (uint8_t)(0x80 | ((4000 - 127) & 0x7f));
			block[n++] = (uint8_t)((4000 - 127) >> 7);
			memset(block + n, 'x', 4000);
			n += 4000;
		}
		/* ... and refer to it 8000 times: 8000 bytes, 32 MB decoded. */
		while (n < sizeof(block) - 8)
			block[n++] = 0x80 | 62;
		frame(&b, NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS | NGHTTP2_FLAG_END_STREAM, sid,
		      block, 16384 - 16);
		send_all(&b);
		run(&s, 1, true);
	}
	run(&s, 50, true);
	assert_true(STAT(h2_header_overflow) >= 1);
	assert_int_equal(s.goaways, 1);
	assert_int_equal(s.goaway_error, NGHTTP2_ENHANCE_YOUR_CALM);
	/* Nothing of the decoded list was kept. */
	assert_true(max_mem < 512 * 1024);
	free(b.p);
}

/* --- SETTINGS / PING floods from a client that never reads ----------------------- */

static void flood(uint8_t type, size_t len)
{
	struct bytes b = {0};
	struct seen s = {0};
	uint8_t payload[8] = {0};

	start(&b, 65535);
	for (int i = 0; i < 20000 && !s.closed; i++) {
		frame(&b, type, 0, 0, payload, len);
		if (i % 500 == 0) {
			send_all(&b);
			run(&s, 1, false);
		}
	}
	send_all(&b);
	run(&s, 50, true);
	assert_true(s.goaways >= 1 || s.closed);
	assert_true(STAT(h2_goaway_abuse) + STAT(h2_flood) >= 1);
	assert_true(max_mem < 512 * 1024);
	free(b.p);
}

static void test_settings_flood(void **state)
{
	(void)state;
	flood(NGHTTP2_SETTINGS, 0);
}

static void test_ping_flood(void **state)
{
	(void)state;
	flood(NGHTTP2_PING, 8);
}

/* --- MadeYouReset: frames that make the server reset, again and again ---------- */

static void test_made_you_reset(void **state)
{
	struct bytes b = {0};
	struct seen s = {0};
	(void)state;
	start(&b, 65535);
	for (uint32_t sid = 1; sid < 2 * 1000 && !s.closed; sid += 2) {
		/* A request with a connection-specific field: malformed, a
		 * stream error (RFC 9113 §8.2.2), so the server resets it.
		 * (nghttp2 1.52 answers WINDOW_UPDATE 0 or HEADERS on a
		 * half-closed stream with GOAWAY already.) */
		nghttp2_nv nv[] = {
		    {(uint8_t *)":method", (uint8_t *)"GET", 7, 3, 0},
		    {(uint8_t *)":scheme", (uint8_t *)"http", 7, 4, 0},
		    {(uint8_t *)":path", (uint8_t *)"/slow", 5, 5, 0},
		    {(uint8_t *)"connection", (uint8_t *)"close", 10, 5, 0},
		};
		uint8_t block[128];
		ssize_t n = nghttp2_hd_deflate_hd(deflater, block, sizeof(block), nv, 4);

		frame(&b, NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS | NGHTTP2_FLAG_END_STREAM, sid,
		      block, (size_t)n);
		if (sid % 100 == 1) {
			send_all(&b);
			run(&s, 1, true);
		}
	}
	send_all(&b);
	run(&s, 50, true);
	assert_true(s.rsts >= 100); /* the server did reset them */
	assert_int_equal(s.goaways, 1);
	assert_int_equal(s.goaway_error, NGHTTP2_ENHANCE_YOUR_CALM);
	assert_int_equal(STAT(h2_goaway_abuse), 1);
	free(b.p);
}

/* --- empty DATA frames and tiny WINDOW_UPDATEs ------------------------------------- */

static void test_empty_data_flood(void **state)
{
	struct bytes b = {0};
	struct seen s = {0};

	(void)state;
	start(&b, 65535);
	get(&b, 1, "/slow", 0); /* a POST-like stream left open */
	for (int i = 0; i < 5000 && !s.closed; i++) {
		frame(&b, NGHTTP2_DATA, 0, 1, NULL, 0);
		if (i % 500 == 0) {
			send_all(&b);
			run(&s, 1, true);
		}
	}
	send_all(&b);
	run(&s, 50, true);
	assert_int_equal(s.goaways, 1);
	assert_int_equal(s.goaway_error, NGHTTP2_ENHANCE_YOUR_CALM);
	free(b.p);
}

static void test_window_update_flood(void **state)
{
	struct bytes b = {0};
	struct seen s = {0};
	uint8_t one[4] = {0, 0, 0, 1};

	(void)state;
	start(&b, 65535);
	for (int i = 0; i < 5000 && !s.closed; i++) {
		frame(&b, NGHTTP2_WINDOW_UPDATE, 0, 0, one, 4);
		if (i % 500 == 0) {
			send_all(&b);
			run(&s, 1, true);
		}
	}
	send_all(&b);
	run(&s, 50, true);
	assert_int_equal(s.goaways, 1);
	assert_int_equal(s.goaway_error, NGHTTP2_ENHANCE_YOUR_CALM);
	free(b.p);
}

/* --- a zero window holding a response: the stream is reset, not kept ------------- */

static void test_zero_window_stall(void **state)
{
	struct bytes b = {0};
	struct seen s = {0};

	(void)state;
	start(&b, 0); /* SETTINGS_INITIAL_WINDOW_SIZE = 0, never opened */
	get(&b, 1, "/big", NGHTTP2_FLAG_END_STREAM);
	send_all(&b);
	run(&s, 100, true);
	assert_int_equal(s.headers, 1);
	assert_int_equal(s.data, 0);
	/* send_timeout_ms is 300 here; the session looks once a second. */
	run(&s, 1600, true);
	assert_int_equal(s.rsts, 1);
	assert_int_equal(s.last_rst_error, NGHTTP2_CANCEL);
	assert_true(STAT(client_timeouts) >= 1);
	assert_false(s.closed); /* the connection itself lives on */
	free(b.p);
}

/* --- connection recycling: a graceful two-step GOAWAY, never a cut --------------- */

static void test_recycling(void **state)
{
	struct bytes b = {0};
	struct seen s = {0};
	uint32_t sid;

	(void)state;
	cfg.h2.max_requests = 10;
	start(&b, 65535);
	for (sid = 1; sid <= 19; sid += 2)
		get(&b, sid, "/ok", NGHTTP2_FLAG_END_STREAM);
	get(&b, 21, "/slow", NGHTTP2_FLAG_END_STREAM); /* still in flight */
	send_all(&b);
	run(&s, 100, true);
	/* RFC 9113 §6.8: first a GOAWAY with the largest id, which refuses
	 * nothing; requests already on the wire are still served. */
	assert_int_equal(s.goaways, 1);
	assert_int_equal(s.goaway_last[0], 0x7fffffff);
	assert_int_equal(s.goaway_error, NGHTTP2_NO_ERROR);
	assert_int_equal(s.headers, 10);
	get(&b, 23, "/ok", NGHTTP2_FLAG_END_STREAM);
	send_all(&b);
	/* About a second later the real one, naming the last stream. */
	run(&s, 1300, true);
	assert_int_equal(s.goaways, 2);
	assert_int_equal(s.goaway_last[1], 23);
	assert_int_equal(s.goaway_error, NGHTTP2_NO_ERROR);
	assert_int_equal(s.headers, 11);
	assert_false(s.closed); /* stream 21 still waits: not cut */
	assert_int_equal(s.rsts, 0);
	cfg.h2.max_requests = 0;
	free(b.p);
}

/* --- malformed frames are connection errors, never a crash ----------------------- */

static void test_malformed(void **state)
{
	struct bytes b = {0};
	struct seen s = {0};
	uint8_t junk[32];

	(void)state;
	start(&b, 65535);
	memset(junk, 0xff, sizeof(junk));
	/* DATA on stream 0 (RFC 9113 §6.1: PROTOCOL_ERROR). */
	frame(&b, NGHTTP2_DATA, 0, 0, junk, 8);
	send_all(&b);
	run(&s, 50, true);
	assert_int_equal(s.goaways, 1);
	assert_int_equal(s.goaway_error, NGHTTP2_PROTOCOL_ERROR);
	assert_true(STAT(h2_protocol_errors) >= 1);
	free(b.p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_good_client, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rapid_reset, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_continuation_flood, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_hpack_bomb, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_settings_flood, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ping_flood, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_made_you_reset, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_empty_data_flood, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_window_update_flood, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_zero_window_stall, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_recycling, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_malformed, setup, teardown),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);

	l7_config_free(&cfg);
	return rc;
}
