// SPDX-License-Identifier: GPL-2.0-only
/*
 * h1_server.c - the downstream HTTP/1.1 session: requests parsed with
 * http-parser become streams, responses come back from the stream and are
 * framed here.
 *
 * One request at a time: pipelined requests wait (the parser pauses at the
 * end of each message) until the response to the one before is complete,
 * which keeps responses in order. Request bodies go into the stream's
 * pipe only while it has room: the parser is fed at most that many input
 * bytes, and body bytes can never outnumber input bytes, so a head split
 * across reads and followed by body bytes cannot overfill anything.
 *
 * Deadlines (client.* in the config): the whole head within
 * header_timeout_ms of its first byte (a byte every few seconds does not
 * keep a head alive), request body progress within body_timeout_ms while
 * the proxy is waiting for it, keepalive idle, and output progress within
 * send_timeout_ms while a response is blocked on the client.
 */
#include "grpc.h"
#include "http1.h"
#include "log.h"
#include "proxy.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum h1s_state {
	H1S_IDLE, /* between requests */
	H1S_HEAD, /* reading a request head */
	H1S_BODY, /* reading the request body */
	H1S_DONE, /* request complete, response in progress */
};

struct h1s {
	struct conn *c;
	struct worker *w;
	http_parser p;
	struct h1_head *head; /* while a head or trailer section is read */
	struct stream *s;
	enum h1s_state state;
	int error_status; /* set by a callback that rejects the request */
	const char *error_msg;
	bool in_trailers;
	bool keepalive; /* the client keeps the connection and we agree */
	bool http10;
	bool resp_head_sent;
	bool resp_chunked;
	bool resp_no_body;
	bool closing;  /* no more requests on this connection */
	bool draining; /* the worker drains: the next response says close */
	uint64_t head_start_ms, body_ms, idle_since_ms;
};

/*
 * While the worker drains, a keepalive connection left idle this long is
 * closed. Not at once: a client that just got a response sends its next
 * request right away, and answering that one with "Connection: close"
 * loses nothing, where closing under it would fail it.
 */
#define DRAIN_IDLE_MS 1000

static const struct ds_ops h1s_ds_ops;

static struct h1s *of_parser(http_parser *p)
{
	return p->data;
}

static struct h1_head *head_get(struct h1s *h)
{
	if (!h->head)
		h->head = h1_head_get(&h->w->heads);
	else
		h1_head_reset(h->head);
	return h->head;
}

static void head_put(struct h1s *h)
{
	h1_head_put(&h->w->heads, h->head);
	h->head = NULL;
}

/* --- request parsing ---------------------------------------------------- */

static int on_begin(http_parser *p)
{
	struct h1s *h = of_parser(p);

	if (!head_get(h))
		return -1;
	h->state = H1S_HEAD;
	h->in_trailers = false;
	h->head_start_ms = h->w->loop.now_ms;
	return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
	return h1_on_url(of_parser(p)->head, at, len);
}

static int on_field(http_parser *p, const char *at, size_t len)
{
	struct h1s *h = of_parser(p);

	if (h->state == H1S_BODY && !h->in_trailers) {
		/* Trailer fields after a chunked body. */
		if (!head_get(h))
			return -1;
		h->in_trailers = true;
	}
	return h1_on_header_field(h->head, at, len);
}

static int on_value(http_parser *p, const char *at, size_t len)
{
	return h1_on_header_value(of_parser(p)->head, at, len);
}

static int reject(struct h1s *h, int status, const char *msg)
{
	h->error_status = status;
	h->error_msg = msg;
	return -1;
}

/* Origin-form target and authority from an absolute-form target
 * (RFC 9112 §3.2.2: the target's authority replaces Host). */
static int split_absolute(struct h1s *h, struct stream *s, const char *url, size_t len)
{
	struct http_parser_url u;
	const char *path = "/";
	size_t plen = 1;

	http_parser_url_init(&u);
	if (http_parser_parse_url(url, len, 0, &u) || !(u.field_set & (1 << UF_HOST)))
		return reject(h, 400, "bad absolute-form request target");
	s->authority = arena_strndup(
	    &s->arena, url + u.field_data[UF_HOST].off,
	    u.field_data[UF_HOST].len +
		((u.field_set & (1 << UF_PORT)) ? (size_t)u.field_data[UF_PORT].len + 1 : 0));
	s->authority_len = u.field_data[UF_HOST].len +
			   ((u.field_set & (1 << UF_PORT)) ? u.field_data[UF_PORT].len + 1u : 0u);
	if (u.field_set & (1 << UF_PATH)) {
		path = url + u.field_data[UF_PATH].off;
		plen = len - u.field_data[UF_PATH].off; /* path, query and all */
		if (u.field_set & (1 << UF_FRAGMENT))
			plen = u.field_data[UF_FRAGMENT].off - 1 - u.field_data[UF_PATH].off;
	}
	s->path = arena_strndup(&s->arena, path, plen);
	s->path_len = (uint32_t)plen;
	return s->path && s->authority ? 0 : -1;
}

static const char *const fwd_headers[] = {"x-forwarded-for", "x-forwarded-proto", "x-real-ip",
					  "forwarded",	     "x-request-id",	  NULL};
static const char *const reqid_only[] = {"x-request-id", NULL};

static int on_headers_complete(http_parser *p)
{
	struct h1s *h = of_parser(p);
	struct h1_head *hd = h->head;
	const char *url = hd->buf + hd->url_off, *v, *why;
	struct stream *s;
	size_t len;

	h->http10 = p->http_major == 1 && p->http_minor == 0;
	/* HTTP/1.0 clients get one request per connection: simpler framing
	 * rules, and they are rare enough at the edge. */
	h->keepalive = !h->http10 && http_should_keep_alive(p) && !h->closing && !h->draining;
	if (p->http_major != 1)
		return reject(h, 505, NULL);
	if ((why = h1_head_check(hd)))
		return reject(h, 400, why);
	if (p->method == HTTP_CONNECT)
		return reject(h, 501, "CONNECT is not proxied");
	/* RFC 9112 §3.2: exactly one Host in HTTP/1.1. */
	if (h1_count(hd, "host") > 1 || (!h->http10 && h1_count(hd, "host") == 0))
		return reject(h, 400, "HTTP/1.1 needs exactly one Host field");
	if ((v = h1_get(hd, "transfer-encoding", &len)) &&
	    !(len == 7 && strncasecmp(v, "chunked", 7) == 0))
		return reject(h, 501, "transfer coding other than chunked");

	s = stream_new(h->w, &h1s_ds_ops, h, 0);
	if (!s)
		return -1;
	h->s = s;
	s->h1_client = true;
	s->tls = h->c->ssl != NULL;
	s->peer_ip = h->c->peer_ip;
	s->tls_desc = h->c->ssl ? h->c->tls_desc : NULL;
	s->identity = h->c->identity;
	s->early = h->c->early;
	s->scheme = s->tls ? "https" : "http";
	s->method = http_method_str(p->method);
	s->method_len = (uint32_t)strlen(s->method);
	s->head_req = p->method == HTTP_HEAD;
	s->safe = p->method == HTTP_GET || p->method == HTTP_HEAD || p->method == HTTP_OPTIONS ||
		  p->method == HTTP_TRACE;
	if (hd->url_len && url[0] != '/' && !(hd->url_len == 1 && url[0] == '*')) {
		if (split_absolute(h, s, url, hd->url_len))
			return -1;
	} else {
		s->path = arena_strndup(&s->arena, url, hd->url_len);
		s->path_len = hd->url_len;
		if ((v = h1_get(hd, "host", &len))) {
			while (len && (*v == ' ' || *v == '\t'))
				v++, len--;
			while (len && (v[len - 1] == ' ' || v[len - 1] == '\t'))
				len--;
			s->authority = arena_strndup(&s->arena, v, len);
			s->authority_len = (uint32_t)len;
		}
		if (!s->path || (v && !s->authority))
			return -1;
	}
	if (s->authority && memchr(s->authority, ' ', s->authority_len))
		return reject(h, 400, "bad Host");
	if ((v = h1_get(hd, "x-request-id", &len)) && h1_reqid_valid(v, len)) {
		memcpy(s->reqid, v, len);
		s->reqid_len = (uint32_t)len;
	}
	if ((v = h1_get(hd, "content-type", &len)))
		s->grpc = grpc_content_type(v, len);
	if (h1_head_copy(hd, &s->req.hdrs, &s->arena,
			 h->w->cfg->client.forwarded == L7_FORWARDED_REPLACE ? fwd_headers
									     : reqid_only))
		return -1;
	if (p->flags & F_CONTENTLENGTH)
		s->req.content_length = (int64_t)p->content_length;
	else if (!(p->flags & F_CHUNKED))
		s->req.content_length = 0; /* RFC 9112 §6.3: no framing, no body */
	s->req.head_done = true;
	h->state = H1S_BODY;
	h->body_ms = h->w->loop.now_ms;
	/* RFC 9110 §10.1.1: the proxy takes the body either way, so it says
	 * so at once instead of waiting for the backend's word. */
	v = h1_get(hd, "expect", &len);
	if (v && len == 12 && strncasecmp(v, "100-continue", 12) == 0 &&
	    s->req.content_length != 0 && !h->http10)
		pipe_write(&h->c->out, &h->w->pool, "HTTP/1.1 100 Continue\r\n\r\n", 25);
	head_put(h);
	STAT_INC(h->w, requests);
	h->w->dispatch(s);
	return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
	struct h1s *h = of_parser(p);

	h->body_ms = h->w->loop.now_ms;
	if (h->s->us_done)
		return 0; /* the response is complete: the rest is discarded */
	return stream_req_body(h->s, at, len) == len ? 0 : -1;
}

static int on_complete(http_parser *p)
{
	struct h1s *h = of_parser(p);

	if (h->in_trailers && h->head) {
		const char *why = h1_head_check(h->head);

		if (why)
			return reject(h, 400, why);
		if (h1_head_copy(h->head, &h->s->req.trailers, &h->s->arena, NULL))
			return -1;
		proxy_strip_reserved(h->w->cfg, &h->s->req.trailers);
	}
	head_put(h);
	h->state = H1S_DONE;
	stream_req_end(h->s);
	http_parser_pause(p, 1); /* the next request waits for this response */
	return 0;
}

static const http_parser_settings req_settings = {
    .on_message_begin = on_begin,
    .on_url = on_url,
    .on_header_field = on_field,
    .on_header_value = on_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_complete,
};

/* A request we reject ourselves (bad syntax, limits) gets a stream too, so
 * it is answered and logged like every other. */
static void fail_request(struct h1s *h, int status, const char *why)
{
	struct stream *s = h->s;

	STAT_INC(h->w, bad_requests);
	h->closing = true;
	h->keepalive = false;
	head_put(h);
	if (why)
		log_debug("client %s: %d: %s", h->c->peer_ip, status, why);
	if (!s) {
		s = stream_new(h->w, &h1s_ds_ops, h, 0);
		if (!s) {
			conn_close(h->c);
			return;
		}
		h->s = s;
		s->h1_client = true;
		s->peer_ip = h->c->peer_ip;
		s->method = "-";
		s->path = "-";
		s->method_len = s->path_len = 1;
	}
	h->state = H1S_DONE;
	stream_cancel(s);
	stream_reply_error(s, status, why);
}

static bool parse(struct h1s *h)
{
	struct conn *c = h->c;
	bool moved = false;

	while (c->in.len && !h->closing && h->state != H1S_DONE) {
		size_t len, room = SIZE_MAX, n;
		const char *at = pipe_peek(&c->in, &len);
		enum http_errno e;

		if (h->state == H1S_BODY && h->s && !h->s->us_done) {
			room = stream_body_room(h->s, &h->s->req);
			if (!room)
				break; /* backpressure: the upstream side is behind */
		}
		if (len > room)
			len = room;
		n = http_parser_execute(&h->p, &req_settings, at, len);
		pipe_consume(&c->in, &h->w->pool, n);
		moved |= n > 0;
		if (c->closed)
			return true;
		e = HTTP_PARSER_ERRNO(&h->p);
		if (e == HPE_PAUSED)
			break;
		if (e != HPE_OK) {
			int status = h->error_status ? h->error_status : 400;

			if (h->head && h->head->overflow)
				status = h->head->url_len > H1_URL_MAX ? 414 : 431;
			fail_request(h, status,
				     h->error_msg ? h->error_msg : http_errno_description(e));
			return true;
		}
		if (n < len)
			break;
	}
	return moved;
}

/* --- response writing --------------------------------------------------- */

static bool write_head(struct h1s *h, struct stream *s)
{
	struct conn *c = h->c;
	struct bufpool *pool = &h->w->pool;
	int status = s->status;

	h->resp_no_body = s->head_req || status / 100 == 1 || status == 204 || status == 304;
	h->resp_chunked = false;
	if (!h->resp_no_body && s->resp.content_length < 0) {
		if (h->http10)
			h->keepalive = false; /* close-delimited */
		else
			h->resp_chunked = true;
	}
	if (h->closing || h->draining)
		h->keepalive = false;
	if (pipe_printf(&c->out, pool, "HTTP/1.1 %d %s\r\n", status, h1_reason(status)) < 0)
		return false;
	h1_write_fields(&c->out, pool, &s->resp.hdrs);
	/* A HEAD or 304 response tells the length the full one would have;
	 * a 1xx or 204 never has one (RFC 9110 §8.6). */
	if (s->resp.content_length >= 0 && status != 204 && status / 100 != 1 &&
	    (!h->resp_no_body || s->head_req || status == 304))
		pipe_printf(&c->out, pool, "content-length: %lld\r\n",
			    (long long)s->resp.content_length);
	if (h->resp_chunked)
		pipe_write(&c->out, pool, "transfer-encoding: chunked\r\n", 28);
	if (!h->keepalive)
		pipe_write(&c->out, pool, "connection: close\r\n", 19);
	pipe_write(&c->out, pool, "\r\n", 2);
	h->resp_head_sent = true;
	s->resp_started = true;
	if (h->resp_no_body) {
		/* Whatever a backend sent as a body here is not one. */
		pipe_clear(&s->resp.body, pool);
	}
	return true;
}

static void finish_request(struct h1s *h)
{
	struct stream *s = h->s;
	bool early = h->state != H1S_DONE; /* the request body is still coming */

	h->s = NULL;
	h->resp_head_sent = false;
	stream_ds_done(s);
	if (early || !h->keepalive || h->closing) {
		h->closing = true;
		conn_close_gracefully(h->c);
		return;
	}
	h->state = H1S_IDLE;
	h->error_status = 0;
	h->error_msg = NULL;
	h->idle_since_ms = h->w->loop.now_ms;
	http_parser_init(&h->p, HTTP_REQUEST); /* also forgets an ignored Upgrade */
	h->p.data = h;
}

static bool write_response(struct h1s *h)
{
	struct stream *s = h->s;
	struct conn *c = h->c;
	bool moved = false;

	if (!s || !s->resp.head_done)
		return false;
	if (!h->resp_head_sent) {
		if (!write_head(h, s)) {
			conn_close(c);
			return true;
		}
		moved = true;
	}
	while (s->resp.body.len && c->out.len < CONN_OUT_LIMIT) {
		size_t n = h1_write_body(&c->out, &h->w->pool, &s->resp.body, CONN_OUT_LIMIT,
					 h->resp_chunked);

		stream_resp_consumed(s, n);
		moved = true;
	}
	if (s->resp.end && !s->resp.body.len) {
		if (h->resp_chunked)
			h1_write_last_chunk(&c->out, &h->w->pool, &s->resp.trailers);
		finish_request(h);
		moved = true;
	}
	return moved;
}

/* --- the session -------------------------------------------------------- */

/* When an idle keepalive connection is closed. */
static uint64_t idle_deadline(const struct h1s *h)
{
	uint64_t at = h->idle_since_ms + h->w->cfg->client.idle_timeout_ms;

	if (h->draining) {
		uint64_t from =
		    h->idle_since_ms > h->w->drain_ms ? h->idle_since_ms : h->w->drain_ms;

		if (from + DRAIN_IDLE_MS < at)
			at = from + DRAIN_IDLE_MS;
	}
	return at;
}

static void set_timer(struct h1s *h)
{
	const struct l7_client_cfg *k = &h->w->cfg->client;
	struct conn *c = h->c;
	uint64_t at = 0;

	if (c->out.len && !c->wr_ready)
		at = c->last_write_ms + k->send_timeout_ms;
	else if (h->state == H1S_IDLE && !c->in.len)
		at = idle_deadline(h);
	else if (h->state == H1S_HEAD || (h->state == H1S_IDLE && c->in.len))
		at = h->head_start_ms + k->header_timeout_ms;
	else if (h->state == H1S_BODY && h->s && stream_body_room(h->s, &h->s->req))
		at = h->body_ms + k->body_timeout_ms;
	conn_timer_at(c, at);
}

static bool h1s_process(struct conn *c)
{
	struct h1s *h = c->sess;
	bool moved = false;

	if (h->state == H1S_IDLE && c->in.len && !h->closing)
		h->head_start_ms = h->w->loop.now_ms;
	moved |= parse(h);
	if (c->closed)
		return true;
	if (c->out.len < CONN_OUT_LIMIT)
		moved |= write_response(h);
	if (c->closed || c->close_after)
		return true;
	if (c->rd_eof && !c->in.len) {
		if (h->state == H1S_IDLE) {
			conn_close(c); /* a clean close between requests */
			return true;
		}
		if (h->state != H1S_DONE || !h->s || !h->s->resp.end) {
			/* The client went away mid-request, or gave up
			 * waiting: nobody will read the response. */
			if (h->s) {
				stream_cancel(h->s);
				stream_ds_done(h->s);
				h->s = NULL;
			}
			conn_close(c);
			return true;
		}
	}
	/* Read while a request can make progress, or to notice the client
	 * leaving while its response is prepared; the input pipe bounds it. */
	c->want_read = !h->closing;
	set_timer(h);
	return moved;
}

static void h1s_error(struct conn *c, int err)
{
	struct h1s *h = c->sess;

	(void)err;
	if (h->s) {
		stream_cancel(h->s);
		stream_ds_done(h->s);
		h->s = NULL;
	}
	conn_close(c);
}

static void h1s_timeout(struct conn *c)
{
	struct h1s *h = c->sess;
	uint64_t now = h->w->loop.now_ms;
	const struct l7_client_cfg *k = &h->w->cfg->client;

	if (c->out.len && !c->wr_ready) {
		if (now < c->last_write_ms + k->send_timeout_ms)
			goto rearm;
		STAT_INC(h->w, client_timeouts);
		h1s_error(c, ETIMEDOUT); /* the client stopped reading */
		return;
	}
	switch (h->state) {
	case H1S_IDLE:
		if (!c->in.len) {
			if (now < idle_deadline(h))
				goto rearm;
			conn_close(c);
			return;
		}
		/* Bytes of a head are waiting: the head deadline applies. */
		__attribute__((fallthrough));
	case H1S_HEAD:
		if (now < h->head_start_ms + k->header_timeout_ms)
			goto rearm;
		STAT_INC(h->w, client_timeouts);
		fail_request(h, 408, "request head not complete in time");
		conn_kick(c);
		return;
	case H1S_BODY:
		/* Only a client that keeps us waiting: a full pipe means the
		 * backend is the slow one. */
		if (!h->s || !stream_body_room(h->s, &h->s->req) ||
		    now < h->body_ms + k->body_timeout_ms)
			goto rearm;
		STAT_INC(h->w, client_timeouts);
		if (h->s && h->s->resp_started) {
			h1s_error(c, ETIMEDOUT);
			return;
		}
		fail_request(h, 408, "request body stalled");
		conn_kick(c);
		return;
	case H1S_DONE:
		break;
	}
rearm:
	set_timer(h);
}

static void h1s_destroy(struct conn *c)
{
	struct h1s *h = c->sess;

	if (h->s) {
		stream_cancel(h->s);
		stream_ds_done(h->s);
	}
	head_put(h);
	free(h);
}

static void h1s_ready(struct conn *c)
{
	(void)c;
}

/* The request in progress (if any) completes with "Connection: close"; a
 * response whose head already promised keepalive leaves the connection
 * idle, closed after DRAIN_IDLE_MS unless a request comes first. */
static void h1s_drain(struct conn *c)
{
	struct h1s *h = c->sess;

	h->draining = true;
	if (h->state == H1S_HEAD || h->state == H1S_BODY ||
	    (h->state == H1S_DONE && !h->resp_head_sent))
		h->keepalive = false;
	set_timer(h);
	conn_kick(c);
}

static const struct conn_ops h1s_conn_ops = {
    .process = h1s_process,
    .error = h1s_error,
    .timeout = h1s_timeout,
    .ready = h1s_ready,
    .destroy = h1s_destroy,
    .drain = h1s_drain,
};

/* --- what the stream asks of us ------------------------------------------ */

static void ds_resp_ready(struct stream *s)
{
	struct h1s *h = s->ds_sess;

	conn_kick(h->c);
}

static void ds_req_consumed(struct stream *s, size_t n)
{
	struct h1s *h = s->ds_sess;

	(void)n;
	if (h->c->in.len)
		conn_kick(h->c); /* parsing may have stopped for room */
}

static void ds_abort(struct stream *s)
{
	struct h1s *h = s->ds_sess;

	/* The response broke after its head went out: the only honest
	 * signal left in HTTP/1.1 is to cut the connection. */
	h->s = NULL;
	stream_ds_done(s);
	conn_close(h->c);
}

static const struct ds_ops h1s_ds_ops = {
    .resp_ready = ds_resp_ready,
    .req_consumed = ds_req_consumed,
    .abort = ds_abort,
};

void h1s_start(struct conn *c)
{
	struct h1s *h = calloc(1, sizeof(*h));

	if (!h) {
		conn_close(c);
		return;
	}
	h->c = c;
	h->w = c->w;
	h->idle_since_ms = h->head_start_ms = c->w->loop.now_ms;
	h->draining = c->w->draining; /* it finished its handshake during a drain */
	http_parser_init(&h->p, HTTP_REQUEST);
	h->p.data = h;
	conn_set_session(c, &h1s_conn_ops, h);
	conn_kick(c);
}
