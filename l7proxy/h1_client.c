// SPDX-License-Identifier: GPL-2.0-only
/*
 * h1_client.c - the upstream HTTP/1.1 session: one stream at a time per
 * connection, connections kept per worker and backend in a LIFO pool of
 * idle keepalive connections (the most recently used one is the least
 * likely to have been closed by the backend).
 *
 * Pooled connections are dropped after the cluster's idle_timeout_ms,
 * which defaults below the keepalive timeout of common backends (Node's
 * 5 s): a backend closing an idle connection while a request is on its
 * way to it is the reuse race that otherwise ends in a 502. An idle
 * connection that becomes readable was closed (or spoke out of turn) and
 * is dropped at once.
 *
 * Responses are parsed with http-parser and re-framed by the downstream
 * session; only what the stream's response pipe can take is fed to the
 * parser, so a slow client stops the reads from the backend.
 */
#include "http1.h"
#include "log.h"
#include "proxy.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

struct h1c {
	struct conn *c;
	struct worker *w;
	struct backend_rt *be;
	struct stream *s;
	struct dlist idle_link; /* in be->idle while idle */
	bool idle;
	http_parser p;
	struct h1_head *head;
	bool connected;
	bool reused;	    /* taken from the pool for the current stream */
	bool head_sent;	    /* request head serialized */
	bool req_chunked;   /* request body framing */
	bool req_done;	    /* the whole request is in c->out */
	bool resp_seen;	    /* a byte of the response arrived */
	bool resp_complete; /* the response message is complete */
	bool in_trailers;
	bool interim; /* parsing a 1xx */
	bool bad;     /* protocol error from a callback */
	const char *bad_why;
	uint64_t sent_ms, rx_ms, idle_since_ms;
};

static const struct us_ops h1c_us_ops;
static const struct conn_ops h1c_conn_ops;

/* --- the pool ------------------------------------------------------------- */

static void idle_unlink(struct h1c *h)
{
	if (!h->idle)
		return;
	dlist_del(&h->idle_link);
	h->idle = false;
	h->be->n_idle--;
}

static void idle_push(struct h1c *h)
{
	struct backend_rt *be = h->be;

	h->idle = true;
	dlist_push(&be->idle, &h->idle_link);
	be->n_idle++;
	h->idle_since_ms = h->w->loop.now_ms;
	h->c->want_read = true; /* readable while idle = closed by the backend */
	conn_timer_at(h->c, h->idle_since_ms + be->cl->cfg->idle_timeout_ms);
}

void h1c_pool_fini(struct backend_rt *be)
{
	struct dlist *l;

	while ((l = dlist_first(&be->idle))) {
		struct h1c *h = container_of(l, struct h1c, idle_link);

		idle_unlink(h);
		conn_close(h->c);
	}
}

/* --- request serialization ---------------------------------------------------- */

static bool method_has_body(const struct stream *s)
{
	return (s->method_len == 4 && memcmp(s->method, "POST", 4) == 0) ||
	       (s->method_len == 3 && memcmp(s->method, "PUT", 3) == 0) ||
	       (s->method_len == 5 && memcmp(s->method, "PATCH", 5) == 0);
}

static void write_request_head(struct h1c *h)
{
	struct stream *s = h->s;
	struct pipe *out = &h->c->out;
	struct bufpool *pool = &h->w->pool;
	int64_t cl = s->req.content_length;

	pipe_write(out, pool, s->method, s->method_len);
	pipe_write(out, pool, " ", 1);
	pipe_write(out, pool, s->path, s->path_len);
	pipe_write(out, pool, " HTTP/1.1\r\nhost: ", 17);
	if (s->authority)
		pipe_write(out, pool, s->authority, s->authority_len);
	else
		pipe_write(out, pool, h->be->up->name, strlen(h->be->up->name));
	pipe_write(out, pool, "\r\n", 2);
	h1_write_fields(out, pool, &s->req.hdrs);
	/* Framing is ours: a length when it is known (an HTTP/2 request
	 * whose whole body is already here counts), chunked otherwise. */
	if (cl < 0 && s->req.end && s->req.body.len == s->req.body_bytes)
		cl = (int64_t)s->req.body_bytes;
	h->req_chunked = cl < 0;
	if (h->req_chunked)
		pipe_write(out, pool, "transfer-encoding: chunked\r\n", 28);
	else if (cl > 0 || method_has_body(s))
		pipe_printf(out, pool, "content-length: %lld\r\n", (long long)cl);
	pipe_write(out, pool, "\r\n", 2);
	h->head_sent = true;
	h->sent_ms = h->rx_ms = h->w->loop.now_ms;
}

static bool write_request_body(struct h1c *h)
{
	struct stream *s = h->s;
	struct pipe *out = &h->c->out;
	struct bufpool *pool = &h->w->pool;
	bool moved = false;

	while (s->req.body.len && out->len < CONN_OUT_LIMIT) {
		size_t n = h1_write_body(out, pool, &s->req.body, CONN_OUT_LIMIT, h->req_chunked);

		stream_req_consumed(s, n);
		moved = true;
		h->rx_ms = h->w->loop.now_ms; /* an upload in progress is activity */
		if (!h->s)
			return true; /* the downstream let go meanwhile */
	}
	if (s->req.end && !s->req.body.len && !h->req_done) {
		if (h->req_chunked)
			h1_write_last_chunk(out, pool, &s->req.trailers);
		h->req_done = true;
		moved = true;
	}
	return moved;
}

/* --- response parsing --------------------------------------------------------- */

static struct h1c *of_parser(http_parser *p)
{
	return p->data;
}

static int protocol_error(struct h1c *h, const char *why)
{
	h->bad = true;
	h->bad_why = why;
	return -1;
}

static int on_begin(http_parser *p)
{
	struct h1c *h = of_parser(p);

	if (!h->head && !(h->head = h1_head_get(&h->w->heads)))
		return -1;
	h1_head_reset(h->head);
	h->in_trailers = false;
	return 0;
}

static int on_status(http_parser *p, const char *at, size_t len)
{
	return h1_on_status(of_parser(p)->head, at, len);
}

static int on_field(http_parser *p, const char *at, size_t len)
{
	struct h1c *h = of_parser(p);

	if (h->s && h->s->resp.head_done && !h->in_trailers) {
		h1_head_reset(h->head);
		h->in_trailers = true;
	}
	return h1_on_header_field(h->head, at, len);
}

static int on_value(http_parser *p, const char *at, size_t len)
{
	return h1_on_header_value(of_parser(p)->head, at, len);
}

static const char *const not_ours[] = {"x-served-by", NULL};

static int on_headers_complete(http_parser *p)
{
	struct h1c *h = of_parser(p);
	struct stream *s = h->s;
	const char *why;

	if (!s)
		return protocol_error(h, "a response nobody asked for");
	if ((why = h1_head_check(h->head)))
		return protocol_error(h, why);
	if (p->status_code < 100 || p->status_code > 999)
		return protocol_error(h, "bad status code");
	if (p->status_code / 100 == 1) {
		/* 1xx: interim, never forwarded (100 Continue was answered by
		 * the proxy already). It cannot have a body, and 101 means a
		 * protocol switch nobody asked for. */
		if (p->status_code == 101)
			return protocol_error(h, "101 Switching Protocols without an Upgrade");
		if (h1_count(h->head, "content-length") || h1_count(h->head, "transfer-encoding"))
			return protocol_error(h, "a 1xx response with a body");
		h->interim = true;
		return 1;
	}
	s->status = p->status_code;
	if (h1_head_copy(h->head, &s->resp.hdrs, &s->arena, not_ours))
		return -1;
	if ((p->flags & F_CONTENTLENGTH) && !(p->flags & F_CHUNKED))
		s->resp.content_length = (int64_t)p->content_length;
	stream_resp_head(s);
	/* RFC 9112 §6.3: no body after HEAD, 204 or 304, whatever the
	 * fields say (a 204 with Content-Length must not stall the pool). */
	if (s->head_req || p->status_code == 204 || p->status_code == 304)
		return 1;
	return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
	struct h1c *h = of_parser(p);

	return stream_resp_body(h->s, at, len) == len ? 0 : -1;
}

static int on_complete(http_parser *p)
{
	struct h1c *h = of_parser(p);
	struct stream *s = h->s;

	if (h->interim) {
		h->interim = false;
		return 0;
	}
	if (h->in_trailers) {
		const char *why = h1_head_check(h->head);

		if (why)
			return protocol_error(h, why);
		if (h1_head_copy(h->head, &s->resp.trailers, &s->arena, NULL))
			return -1;
	}
	h->resp_complete = true;
	http_parser_pause(p, 1); /* anything after this is not ours */
	return 0;
}

static const http_parser_settings resp_settings = {
    .on_message_begin = on_begin,
    .on_status = on_status,
    .on_header_field = on_field,
    .on_header_value = on_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_complete,
};

/* --- outcomes ----------------------------------------------------------------- */

/* The attempt failed: give the stream back to the policy, drop the conn. */
static void fail(struct h1c *h, enum us_fail why, const char *detail)
{
	struct stream *s = h->s;

	h->s = NULL;
	if (s) {
		stream_us_detach(s);
		stream_upstream_failed(s, why, detail);
	}
	conn_close(h->c);
}

/* The failure of a connection that was sending or waiting: was the
 * request possibly processed? */
static enum us_fail failure_kind(struct h1c *h)
{
	if (!h->connected)
		return US_FAIL_CONNECT;
	if (h->resp_seen)
		return US_FAIL_RESET;
	return h->reused ? US_FAIL_RESET_EARLY : US_FAIL_RESET;
}

static void release(struct h1c *h)
{
	struct stream *s = h->s;
	struct conn *c = h->c;
	bool reusable = h->req_done && !c->out.len && !c->in.len && !c->rd_eof &&
			http_should_keep_alive(&h->p) && h->be->n_idle < h->be->cl->cfg->max_idle &&
			!h->be->removed && !h->be->drain;

	h->s = NULL;
	stream_resp_end(s);
	stream_us_done(s);
	h1_head_put(&h->w->heads, h->head);
	h->head = NULL;
	if (!reusable) {
		conn_close(c);
		return;
	}
	idle_push(h);
}

static bool parse(struct h1c *h)
{
	struct conn *c = h->c;
	struct stream *s = h->s;
	bool moved = false;

	while (c->in.len && !h->resp_complete) {
		size_t len, n, room = SIZE_MAX;
		const char *at = pipe_peek(&c->in, &len);
		enum http_errno e;

		if (s->resp.head_done) {
			room = stream_body_room(s, &s->resp);
			if (!room)
				break; /* the client is behind: stop reading */
		}
		if (len > room)
			len = room;
		h->resp_seen = true;
		h->rx_ms = h->w->loop.now_ms;
		n = http_parser_execute(&h->p, &resp_settings, at, len);
		pipe_consume(&c->in, &h->w->pool, n);
		moved |= n > 0;
		e = HTTP_PARSER_ERRNO(&h->p);
		if (e != HPE_OK && e != HPE_PAUSED) {
			log_warn("backend %s: bad response: %s", h->be->up->name,
				 h->bad_why ? h->bad_why : http_errno_description(e));
			fail(h, US_FAIL_PROTOCOL, "bad response from the backend");
			return true;
		}
		if (n < len && e != HPE_PAUSED)
			break;
	}
	if (!h->resp_complete && c->rd_eof && !c->in.len) {
		/* The backend closed: the end of a close-delimited body, or a
		 * truncation. http-parser knows which. */
		if (h->resp_seen && s->resp.head_done) {
			http_parser_execute(&h->p, &resp_settings, NULL, 0);
			if (!h->resp_complete) {
				fail(h, US_FAIL_RESET, "response truncated");
				return true;
			}
		} else {
			fail(h, failure_kind(h), "backend closed the connection");
			return true;
		}
	}
	if (h->resp_complete) {
		release(h);
		return true;
	}
	return moved;
}

/* --- the session ---------------------------------------------------------------- */

static void set_timer(struct h1c *h)
{
	const struct l7_cluster_cfg *cc = h->be->cl->cfg;
	struct stream *s = h->s;
	uint64_t at = 0;

	if (!s)
		return;
	if (!h->connected)
		at = h->sent_ms + cc->connect_timeout_ms;
	else if (cc->request_timeout_ms && h->head_sent &&
		 (!s->resp.head_done || stream_body_room(s, &s->resp)))
		/* Waiting on the backend: for the head, or for body bytes
		 * the client could take. */
		at = h->rx_ms + cc->request_timeout_ms;
	conn_timer_at(h->c, at);
}

static bool h1c_process(struct conn *c)
{
	struct h1c *h = c->sess;
	bool moved = false;

	if (h->idle) {
		if (c->in.len || c->rd_eof) {
			/* Closed (or talking out of turn) while idle. */
			idle_unlink(h);
			conn_close(c);
			return true;
		}
		return false;
	}
	if (!h->s || !h->connected)
		return false;
	if (!h->head_sent) {
		write_request_head(h);
		moved = true;
	}
	if (!h->req_done && c->out.len < CONN_OUT_LIMIT)
		moved |= write_request_body(h);
	if (!h->s || c->closed)
		return true;
	moved |= parse(h);
	if (c->closed || !h->s)
		return true;
	/* Stop reading while the client is behind: what is not read stays in
	 * the backend's socket, not in our memory. EOF and resets are still
	 * seen once there is room again. */
	c->want_read = !h->s->resp.head_done || stream_body_room(h->s, &h->s->resp) > 0;
	set_timer(h);
	return moved;
}

static void h1c_error(struct conn *c, int err)
{
	struct h1c *h = c->sess;

	if (h->idle) {
		idle_unlink(h);
		conn_close(c);
		return;
	}
	if (!h->connected)
		log_debug("backend %s: connect: %s", h->be->up->name, strerror(err));
	fail(h, failure_kind(h), strerror(err));
}

static void h1c_timeout(struct conn *c)
{
	struct h1c *h = c->sess;
	uint64_t now = h->w->loop.now_ms;

	if (h->idle) {
		/* An earlier deadline may have fired (timers are only moved
		 * earlier): the idle one is what counts here. */
		if (now < h->idle_since_ms + h->be->cl->cfg->idle_timeout_ms) {
			conn_timer_at(c, h->idle_since_ms + h->be->cl->cfg->idle_timeout_ms);
			return;
		}
		idle_unlink(h);
		conn_close(c);
		return;
	}
	if (!h->s)
		return;
	if (!h->connected) {
		fail(h, US_FAIL_CONNECT, "connect timed out");
		return;
	}
	if (!h->be->cl->cfg->request_timeout_ms ||
	    now < h->rx_ms + h->be->cl->cfg->request_timeout_ms ||
	    (h->s->resp.head_done && !stream_body_room(h->s, &h->s->resp))) {
		set_timer(h); /* not due, or the client is the slow one */
		return;
	}
	log_warn("backend %s: no response in %u ms", h->be->up->name,
		 h->be->cl->cfg->request_timeout_ms);
	fail(h, US_FAIL_TIMEOUT, "backend timed out");
}

static void h1c_ready(struct conn *c)
{
	struct h1c *h = c->sess;

	h->connected = true;
	conn_kick(c);
}

static void h1c_destroy(struct conn *c)
{
	struct h1c *h = c->sess;

	idle_unlink(h);
	if (h->s) {
		struct stream *s = h->s;

		h->s = NULL;
		stream_us_detach(s);
		stream_upstream_failed(s, US_FAIL_RESET, "connection closed");
	}
	h1_head_put(&h->w->heads, h->head);
	backend_conn_closed(h->be); /* may free be */
	free(h);
}

static const struct conn_ops h1c_conn_ops = {
    .process = h1c_process,
    .error = h1c_error,
    .timeout = h1c_timeout,
    .ready = h1c_ready,
    .destroy = h1c_destroy,
};

/* --- what the stream asks of us ------------------------------------------------ */

static void us_req_ready(struct stream *s)
{
	struct h1c *h = s->us_conn;

	conn_kick(h->c);
}

static void us_resp_consumed(struct stream *s, size_t n)
{
	struct h1c *h = s->us_conn;

	(void)n;
	conn_kick(h->c); /* parsing may have stopped for room */
}

static void us_cancel(struct stream *s)
{
	struct h1c *h = s->us_conn;

	/* Mid-request or mid-response: the connection cannot be reused. */
	h->s = NULL;
	stream_us_done(s);
	conn_close(h->c);
}

static const struct us_ops h1c_us_ops = {
    .req_ready = us_req_ready,
    .resp_consumed = us_resp_consumed,
    .cancel = us_cancel,
};

static void bind_stream(struct h1c *h, struct stream *s)
{
	h->s = s;
	h->head_sent = h->req_done = h->resp_seen = h->resp_complete = false;
	h->interim = h->bad = false;
	h->bad_why = NULL;
	http_parser_init(&h->p, HTTP_RESPONSE);
	h->p.data = h;
	s->us = &h1c_us_ops;
	s->us_conn = h;
	h->sent_ms = h->rx_ms = h->w->loop.now_ms;
	set_timer(h);
	conn_kick(h->c);
}

/*
 * An idle connection the backend closed while nobody was looking: its FIN
 * may be in the socket before the loop has seen the event. Backends close
 * idle connections after their keepalive timeout, seconds of idleness, so
 * a connection idle for less than PEEK_AFTER_MS is taken without the
 * syscall (it cost 2% of the proxy's CPU at high request rates).
 */
#define PEEK_AFTER_MS 200

static bool still_open(struct h1c *h)
{
	char ch;
	ssize_t n;

	if (h->w->loop.now_ms - h->idle_since_ms < PEEK_AFTER_MS)
		return true;
	n = recv(h->c->io.fd, &ch, 1, MSG_PEEK | MSG_DONTWAIT);
	return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

int h1c_attach(struct stream *s, struct backend_rt *be)
{
	struct worker *w = s->w;
	const struct l7_upstream *bc = be->up;
	struct h1c *h;
	SSL *ssl;
	int fd;

	struct dlist *l;

	while ((l = dlist_first(&be->idle))) {
		h = container_of(l, struct h1c, idle_link);
		idle_unlink(h);
		if (!still_open(h) || h->c->in.len || h->c->rd_eof) {
			conn_close(h->c);
			continue;
		}
		h->reused = true;
		STAT_INC(w, upstream_reuses);
		bind_stream(h, s);
		return 0;
	}
	if (be->n_conns >= be->cl->cfg->max_connections)
		return -EAGAIN;
	fd = socket(bc->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (const struct sockaddr *)&bc->addr, bc->addr_len) < 0 &&
	    errno != EINPROGRESS) {
		int e = -errno;

		close(fd);
		return e;
	}
	h = calloc(1, sizeof(*h));
	if (!h) {
		close(fd);
		return -ENOMEM;
	}
	h->w = w;
	h->be = be;
	dlist_init(&h->idle_link);
	ssl = backend_ssl(be);
	if (be->cl->ssl_ctx && !ssl) {
		free(h);
		close(fd);
		return -ENOMEM;
	}
	h->c = conn_new(w, fd, &h1c_conn_ops, h, ssl, false, true);
	if (!h->c) {
		free(h);
		return -ENOMEM;
	}
	h->c->tls_session_slot = &be->tls_session;
	backend_conn_opened(be);
	STAT_INC(w, upstream_connects);
	bind_stream(h, s);
	return 0;
}
