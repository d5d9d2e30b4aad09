// SPDX-License-Identifier: GPL-2.0-only
/*
 * h2_client.c - the upstream HTTP/2 session (h2c, or h2 over TLS) on
 * nghttp2's client session: per worker and backend, a few multiplexed
 * connections shared by every client connection of the worker.
 *
 * A stream goes on the first connection with room under the backend's
 * SETTINGS_MAX_CONCURRENT_STREAMS (and the cluster's max_streams);
 * another connection opens when all are full, up to max_connections. On a
 * new connection, streams wait (not sent) until the backend's SETTINGS say
 * how many it takes: sending more would only earn REFUSED_STREAM, each a
 * retry. Those that do not fit go on to another connection.
 * GOAWAY stops new streams on a connection; the streams the backend did
 * not process (above its last-stream-id, closed by nghttp2 with
 * REFUSED_STREAM) go back to the policy, which may send them elsewhere.
 * A connection silent for ping_interval_ms with streams open gets a PING
 * and is declared dead without an answer within ping_timeout_ms: that,
 * not an idle timeout, is how a long quiet gRPC stream finds out that its
 * backend went away. Idle connections close after idle_timeout_ms.
 *
 * Response bodies are flow-controlled like requests downstream: nghttp2
 * does not reopen the window by itself; the downstream side consumes.
 */
#include "grpc.h"
#include "h2_util.h"
#include "log.h"
#include "proxy.h"
#include "tls.h"

#include <errno.h>
#include <netinet/in.h>
#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define TICK_MS		1000
#define UPSTREAM_WINDOW 65535 /* per stream: one buffer's worth */
#define MAX_CONN_WINDOW ((1u << 31) - 1)

/*
 * What nghttp2 holds for one of our streams (its stream user data and the
 * request body's data source). It lives until nghttp2 closes the stream,
 * which can be after the proxy let go of the stream (a cancel, a response
 * that ended while the request was still being sent): then s is NULL and
 * nghttp2's late calls find nothing instead of freed memory.
 */
struct h2c_ref {
	struct stream *s;
	struct dlist link; /* every ref of the connection */
};

struct h2c {
	struct conn *c;
	struct worker *w;
	struct backend_rt *be;
	struct dlist link; /* in be->h2 */
	nghttp2_session *ng;
	struct dlist refs;    /* struct h2c_ref: freed with the session */
	struct dlist streams; /* stream.us_link: submitted to nghttp2 */
	struct dlist pending; /* stream.us_link: waiting for the backend's SETTINGS */
	unsigned n_pending;
	bool settings_seen; /* the backend's SETTINGS arrived: its limits are known */
	unsigned n_streams;
	bool connected;
	bool goaway; /* no new streams */
	uint64_t start_ms, idle_since_ms, last_rx_ms, ping_sent_ms, timer_at;
	size_t mem;
};

static const struct us_ops h2c_us_ops;
static void flush_pending(struct h2c *h);

/* --- bookkeeping ---------------------------------------------------------------- */

static void link_stream(struct h2c *h, struct stream *s)
{
	dlist_push(&h->streams, &s->us_link);
	h->n_streams++;
}

static void unlink_stream(struct h2c *h, struct stream *s)
{
	dlist_del(&s->us_link);
	h->n_streams--;
	if (!h->n_streams)
		h->idle_since_ms = h->w->loop.now_ms;
}

static void ref_free(struct h2c_ref *r)
{
	dlist_del(&r->link);
	free(r);
}

/*
 * Let go of s: the connection window gets back what the stream received
 * and nobody will consume through it any more, and nghttp2's reference to
 * the stream goes empty (the ref itself stays until nghttp2 closes it).
 */
static void forget(struct h2c *h, struct stream *s)
{
	if (s->us_unconsumed)
		nghttp2_session_consume(h->ng, s->us_id, s->us_unconsumed);
	s->us_unconsumed = 0;
	if (s->us_ref) {
		((struct h2c_ref *)s->us_ref)->s = NULL;
		s->us_ref = NULL;
	}
	unlink_stream(h, s);
}

static void fail_stream(struct h2c *h, struct stream *s, enum us_fail why, const char *detail)
{
	forget(h, s);
	stream_us_detach(s);
	stream_upstream_failed(s, why, detail);
}

/* A stream that was never sent leaves its connection's wait list. */
static void unpend(struct h2c *h, struct stream *s)
{
	dlist_del(&s->us_link);
	h->n_pending--;
	s->us_pending = false;
}

static void fail_all(struct h2c *h, enum us_fail why, const char *detail)
{
	struct dlist *l;

	while ((l = dlist_first(&h->pending))) {
		struct stream *s = container_of(l, struct stream, us_link);

		/* Never sent: whatever broke, the backend did not see it. */
		unpend(h, s);
		stream_us_detach(s);
		stream_upstream_failed(s, US_FAIL_CONNECT, detail);
	}
	while ((l = dlist_first(&h->streams)))
		fail_stream(h, container_of(l, struct stream, us_link), why, detail);
}

static struct stream *get_stream(struct h2c *h, int32_t id)
{
	struct h2c_ref *r = nghttp2_session_get_stream_user_data(h->ng, id);

	return r ? r->s : NULL;
}

/* --- nghttp2 callbacks ------------------------------------------------------------- */

static int on_begin_headers(nghttp2_session *ng, const nghttp2_frame *frame, void *ud)
{
	struct stream *s = get_stream(ud, frame->hd.stream_id);

	(void)ng;
	if (s && frame->hd.type == NGHTTP2_HEADERS && s->resp.head_done)
		s->us_in_trailers = true;
	return 0;
}

static int on_header(nghttp2_session *ng, const nghttp2_frame *frame, const uint8_t *name,
		     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags, void *ud)
{
	struct h2c *h = ud;
	struct stream *s = get_stream(h, frame->hd.stream_id);

	(void)ng;
	(void)flags;
	if (!s)
		return 0;
	s->us_hdr_bytes += (uint32_t)(namelen + valuelen + 32);
	if (s->us_hdr_bytes > h->w->cfg->h2.max_header_list_size)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* reset: a broken backend */
	if (s->us_in_trailers)
		return hdrs_add(&s->resp.trailers, &s->arena, (const char *)name, namelen,
				(const char *)value, valuelen)
			   ? NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE
			   : 0;
	if (namelen == 7 && memcmp(name, ":status", 7) == 0) {
		/* nghttp2 checked: three digits. */
		s->status = (value[0] - '0') * 100 + (value[1] - '0') * 10 + (value[2] - '0');
		if (s->status < 200) {
			/* Interim (1xx): dropped, the final head follows. */
			s->us_interim = true;
			s->us_hdr_bytes = 0;
		}
		return 0;
	}
	if (s->us_interim)
		return 0;
	if (namelen == 14 && memcmp(name, "content-length", 14) == 0) {
		int64_t n = 0;

		for (size_t i = 0; i < valuelen; i++)
			n = n * 10 + (value[i] - '0');
		s->resp.content_length = n;
		return 0;
	}
	return hdrs_add(&s->resp.hdrs, &s->arena, (const char *)name, namelen, (const char *)value,
			valuelen)
		   ? NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE
		   : 0;
}

/*
 * The backend finished the response: the stream goes on without us. If
 * the request is still being sent, the backend does not want the rest
 * (RFC 9113 §8.1): the stream is reset so it does not keep one of the
 * backend's concurrent-stream slots.
 */
static void complete(struct h2c *h, struct stream *s)
{
	if (!nghttp2_session_get_stream_local_close(h->ng, s->us_id))
		nghttp2_submit_rst_stream(h->ng, NGHTTP2_FLAG_NONE, s->us_id, NGHTTP2_CANCEL);
	forget(h, s);
	stream_resp_end(s);
	stream_us_done(s);
}

static int on_frame_recv(nghttp2_session *ng, const nghttp2_frame *frame, void *ud)
{
	struct h2c *h = ud;
	struct stream *s = frame->hd.stream_id ? get_stream(h, frame->hd.stream_id) : NULL;
	bool end = frame->hd.flags & NGHTTP2_FLAG_END_STREAM;

	(void)ng;
	switch (frame->hd.type) {
	case NGHTTP2_HEADERS:
		if (!s)
			break;
		if (s->us_interim) {
			s->us_interim = false;
			break;
		}
		if (!s->resp.head_done) {
			/* A head that ends the stream is a gRPC trailers-only
			 * response (or a body-less one): one HEADERS frame. */
			s->trailers_only = end && s->grpc;
			stream_resp_head(s);
		}
		if (end)
			complete(h, s);
		break;
	case NGHTTP2_DATA:
		if (s && end)
			complete(h, s);
		break;
	case NGHTTP2_SETTINGS:
		if (!(frame->hd.flags & NGHTTP2_FLAG_ACK) && !h->settings_seen) {
			h->settings_seen = true;
			conn_kick(h->c); /* the waiting streams go out in process */
		}
		break;
	case NGHTTP2_GOAWAY:
		/* Streams above last_stream_id are closed as REFUSED_STREAM by
		 * nghttp2: never processed, so the policy may retry them. */
		h->goaway = true;
		log_debug("backend %s: GOAWAY (error %u, last stream %d)", h->be->up->name,
			  frame->goaway.error_code, frame->goaway.last_stream_id);
		break;
	case NGHTTP2_PING:
		if (frame->hd.flags & NGHTTP2_FLAG_ACK)
			h->ping_sent_ms = 0;
		break;
	default:
		break;
	}
	return 0;
}

static int on_data_chunk(nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *data,
			 size_t len, void *ud)
{
	struct stream *s = get_stream(ud, id);

	(void)flags;
	if (!s || s->ds_done) {
		nghttp2_session_consume(ng, id, len);
		return 0;
	}
	s->us_unconsumed += len;
	if (stream_resp_body(s, data, len) != len)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	return 0;
}

static int on_stream_close(nghttp2_session *ng, int32_t id, uint32_t error_code, void *ud)
{
	struct h2c *h = ud;
	struct h2c_ref *r = nghttp2_session_get_stream_user_data(ng, id);
	struct stream *s = r ? r->s : NULL;
	char why[64];

	if (r) {
		nghttp2_session_set_stream_user_data(ng, id, NULL);
		ref_free(r); /* nghttp2 is done with it */
	}
	if (!s)
		return 0;
	s->us_ref = NULL;
	if (s->resp.end) {
		forget(h, s);
		stream_us_done(s);
		return 0;
	}
	snprintf(why, sizeof(why), "backend reset the stream (%s)",
		 nghttp2_http2_strerror(error_code));
	fail_stream(h, s,
		    error_code == NGHTTP2_REFUSED_STREAM ? US_FAIL_REFUSED
		    : error_code == NGHTTP2_CANCEL || error_code == NGHTTP2_NO_ERROR
			? US_FAIL_CANCELLED
			: US_FAIL_RESET,
		    why);
	return 0;
}

static ssize_t on_send(nghttp2_session *ng, const uint8_t *data, size_t len, int flags, void *ud)
{
	struct h2c *h = ud;

	(void)ng;
	(void)flags;
	return h2_out_write(h->c, data, len);
}

static int on_send_data(nghttp2_session *ng, nghttp2_frame *frame, const uint8_t *framehd,
			size_t length, nghttp2_data_source *source, void *ud)
{
	struct h2c *h = ud;
	struct stream *s = ((struct h2c_ref *)source->ptr)->s;
	int rc;

	(void)ng;
	(void)frame;
	if (!s)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* we let go: reset it */
	rc = h2_out_data(h->c, framehd, &s->req.body, length);
	if (rc == 0)
		stream_req_consumed(s, length);
	return rc;
}

static ssize_t read_body(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t length,
			 uint32_t *flags, nghttp2_data_source *source, void *ud)
{
	struct stream *s = ((struct h2c_ref *)source->ptr)->s;

	(void)buf;
	(void)ud;
	if (!s)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	return h2_read_source(ng, id, &s->req, &s->arena, length, flags, &s->us_deferred);
}

int h2c_worker_init(struct worker *w)
{
	nghttp2_session_callbacks *cb;
	nghttp2_option *opt;

	if (nghttp2_session_callbacks_new(&cb))
		return -ENOMEM;
	w->h2c_cbs = cb;
	nghttp2_session_callbacks_set_send_callback(cb, on_send);
	nghttp2_session_callbacks_set_send_data_callback(cb, on_send_data);
	nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
	nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
	nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
	if (nghttp2_option_new(&opt))
		return -ENOMEM;
	w->h2c_opt = opt;
	nghttp2_option_set_no_auto_window_update(opt, 1);
	nghttp2_option_set_max_outbound_ack(opt, 1000);
	nghttp2_option_set_max_settings(opt, 32);
	nghttp2_option_set_max_continuations(opt, 8);
	/* A backend's SETTINGS_MAX_CONCURRENT_STREAMS is respected; before
	 * it arrives, the cluster's max_streams is the limit. */
	nghttp2_option_set_peer_max_concurrent_streams(opt, 100);
	return 0;
}

void h2c_worker_fini(struct worker *w)
{
	nghttp2_session_callbacks_del(w->h2c_cbs);
	nghttp2_option_del(w->h2c_opt);
	w->h2c_cbs = w->h2c_opt = NULL;
}

/* --- submitting a request ----------------------------------------------------- */

static int submit(struct h2c *h, struct stream *s)
{
	const struct l7_cluster_cfg *cc = h->be->cl->cfg;
	struct h2_nvs nvs;
	struct h2c_ref *ref;
	nghttp2_data_provider prd = {.read_callback = read_body};
	bool no_body = s->req.end && !s->req.body.len && !s->req.trailers.n;
	char clen[24], tmo[10];
	int32_t id;

	/* The pseudo-headers, te, content-length and grpc-timeout: 8 more. */
	h2_nvs_init(&nvs, &s->arena, s->req.hdrs.n + 8);
	h2_nvs_add(&nvs, ":method", 7, s->method, s->method_len);
	h2_nvs_add(&nvs, ":scheme", 7, cc->proto == L7_PROTO_H2 ? "https" : "http",
		   cc->proto == L7_PROTO_H2 ? 5 : 4);
	if (s->authority)
		h2_nvs_add(&nvs, ":authority", 10, s->authority, s->authority_len);
	else
		h2_nvs_add(&nvs, ":authority", 10, h->be->up->name, strlen(h->be->up->name));
	h2_nvs_add(&nvs, ":path", 5, s->path, s->path_len);
	for (uint32_t i = 0; i < s->req.hdrs.n; i++) {
		const struct l7_hdr *x = &s->req.hdrs.v[i];

		if (s->grpc && strcmp(x->name, "grpc-timeout") == 0)
			continue; /* replaced by what is left of the deadline */
		h2_nvs_add(&nvs, x->name, x->name_len, x->value, x->value_len);
	}
	if (s->grpc || s->te_trailers)
		h2_nvs_add(&nvs, "te", 2, "trailers", 8);
	if (s->req.content_length >= 0 && (s->req.content_length > 0 || !no_body))
		h2_nvs_add(
		    &nvs, "content-length", 14, clen,
		    (size_t)snprintf(clen, sizeof(clen), "%lld", (long long)s->req.content_length));
	if (s->deadline_ms) {
		/* The backend gets the time left, not the time asked for. */
		uint64_t now = h->w->loop.now_ms;

		h2_nvs_add(
		    &nvs, "grpc-timeout", 12, tmo,
		    grpc_timeout_format(s->deadline_ms > now ? s->deadline_ms - now : 0, tmo));
	}
	if (nvs.overflow)
		return -E2BIG;
	ref = calloc(1, sizeof(*ref));
	if (!ref)
		return -ENOMEM;
	ref->s = s;
	prd.source.ptr = ref;
	id = nghttp2_submit_request(h->ng, NULL, nvs.nv, nvs.n, no_body ? NULL : &prd, ref);
	if (id < 0) {
		free(ref);
		return id == NGHTTP2_ERR_STREAM_ID_NOT_AVAILABLE ? -EAGAIN : -ENOMEM;
	}
	dlist_push(&h->refs, &ref->link);
	s->us_ref = ref;
	s->us = &h2c_us_ops;
	s->us_conn = h;
	s->us_id = id;
	s->us_submitted = true;
	s->us_start_ms = h->w->loop.now_ms;
	s->us_hdr_bytes = 0;
	s->us_interim = s->us_in_trailers = s->us_deferred = false;
	link_stream(h, s);
	conn_kick(h->c);
	return 0;
}

/* --- the connection ----------------------------------------------------------------- */

static unsigned room(const struct h2c *h)
{
	uint32_t peer =
	    nghttp2_session_get_remote_settings(h->ng, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
	uint32_t lim = h->be->cl->cfg->max_streams < peer ? h->be->cl->cfg->max_streams : peer;

	return h->n_streams < lim ? lim - h->n_streams : 0;
}

static void tick(struct h2c *h)
{
	const struct l7_cluster_cfg *cc = h->be->cl->cfg;
	uint64_t now = h->w->loop.now_ms;

	struct dlist *l, *tmp;

	dlist_each(l, tmp, &h->streams)
	{
		struct stream *s = container_of(l, struct stream, us_link);

		/* Plain HTTP waits request_timeout_ms for a response head;
		 * gRPC calls have their deadlines instead, and a long-lived
		 * stream is never cut for being quiet. */
		if (!s->grpc && cc->request_timeout_ms && !s->resp.head_done &&
		    now - s->us_start_ms >= cc->request_timeout_ms) {
			nghttp2_submit_rst_stream(h->ng, NGHTTP2_FLAG_NONE, s->us_id,
						  NGHTTP2_CANCEL);
			fail_stream(h, s, US_FAIL_TIMEOUT, "backend timed out");
		}
	}
	/* Silent for ping_interval_ms: is the backend still there? Idle
	 * connections too, so a dead one is dropped before a stream is put
	 * on it (where its failure could no longer be retried). */
	if (!h->ping_sent_ms && now - h->last_rx_ms >= cc->ping_interval_ms) {
		nghttp2_submit_ping(h->ng, NGHTTP2_FLAG_NONE, NULL);
		h->ping_sent_ms = now;
	}
}

static void set_timer(struct h2c *h)
{
	const struct l7_cluster_cfg *cc = h->be->cl->cfg;
	uint64_t now = h->w->loop.now_ms, at = UINT64_MAX;

	if (!h->connected || !h->settings_seen)
		at = h->start_ms + cc->connect_timeout_ms; /* and its SETTINGS */
	else if (!h->n_streams)
		at = h->idle_since_ms + cc->idle_timeout_ms;
	else
		at = now + TICK_MS;
	if (h->connected && !h->ping_sent_ms && h->last_rx_ms + cc->ping_interval_ms < at)
		at = h->last_rx_ms + cc->ping_interval_ms;
	if (h->ping_sent_ms && h->ping_sent_ms + cc->ping_timeout_ms < at)
		at = h->ping_sent_ms + cc->ping_timeout_ms;
	if (at < h->timer_at || h->timer_at <= now) {
		h->timer_at = at;
		conn_timer_at(h->c, at);
	}
}

static void close_conn(struct h2c *h, enum us_fail why, const char *detail)
{
	h->goaway = true;
	fail_all(h, why, detail);
	conn_close(h->c);
}

static bool h2c_process(struct conn *c)
{
	struct h2c *h = c->sess;
	bool moved = false;
	int rv;

	if (!h->connected)
		return false;
	while (c->in.len) {
		size_t len;
		const uint8_t *p = (const uint8_t *)pipe_peek(&c->in, &len);
		ssize_t n = nghttp2_session_mem_recv(h->ng, p, len);

		if (n < 0) {
			log_warn("backend %s: HTTP/2: %s", h->be->up->name,
				 nghttp2_strerror((int)n));
			close_conn(h, US_FAIL_PROTOCOL, "HTTP/2 protocol error from the backend");
			return true;
		}
		pipe_consume(&c->in, &h->w->pool, (size_t)n);
		h->last_rx_ms = h->w->loop.now_ms;
		h->ping_sent_ms = 0;
		moved = true;
	}
	if (c->rd_eof) {
		close_conn(h, US_FAIL_RESET, "backend closed the connection");
		return true;
	}
	if (h->settings_seen && h->n_pending)
		flush_pending(h);
	if (c->out.len < CONN_OUT_LIMIT) {
		size_t before = c->out.len;

		rv = nghttp2_session_send(h->ng);
		if (rv) {
			close_conn(h, US_FAIL_RESET, nghttp2_strerror(rv));
			return true;
		}
		moved |= c->out.len != before;
	}
	if (h->goaway && !h->n_streams && !h->n_pending) {
		conn_close(c);
		return true;
	}
	if (!nghttp2_session_want_read(h->ng) && !nghttp2_session_want_write(h->ng) &&
	    !c->out.len) {
		close_conn(h, US_FAIL_RESET, "HTTP/2 session ended");
		return true;
	}
	c->want_read = true;
	set_timer(h);
	return moved;
}

static void h2c_error(struct conn *c, int err)
{
	struct h2c *h = c->sess;

	if (!h->connected)
		log_debug("backend %s: connect: %s", h->be->up->name, strerror(err));
	close_conn(h, h->connected ? US_FAIL_RESET : US_FAIL_CONNECT, strerror(err));
}

static void h2c_timeout(struct conn *c)
{
	struct h2c *h = c->sess;
	const struct l7_cluster_cfg *cc = h->be->cl->cfg;
	uint64_t now = h->w->loop.now_ms;

	h->timer_at = 0;
	if (!h->connected || !h->settings_seen) {
		if (now >= h->start_ms + cc->connect_timeout_ms)
			close_conn(h, US_FAIL_CONNECT,
				   h->connected ? "no SETTINGS from the backend"
						: "connect timed out");
		else
			set_timer(h);
		return;
	}
	if (h->ping_sent_ms && now >= h->ping_sent_ms + cc->ping_timeout_ms) {
		log_warn("backend %s: no answer to PING in %u ms: connection dead", h->be->up->name,
			 cc->ping_timeout_ms);
		close_conn(h, US_FAIL_RESET, "backend connection dead (PING unanswered)");
		return;
	}
	if (!h->n_streams && now >= h->idle_since_ms + cc->idle_timeout_ms) {
		h->goaway = true;
		nghttp2_session_terminate_session(h->ng, NGHTTP2_NO_ERROR);
		nghttp2_session_send(h->ng);
		conn_close_gracefully(c);
		return;
	}
	tick(h);
	conn_kick(c);
}

static void h2c_ready(struct conn *c)
{
	struct h2c *h = c->sess;
	unsigned len;
	const char *alpn;

	if (c->ssl) {
		alpn = conn_alpn(c, &len);
		if (!alpn || len != 2 || memcmp(alpn, "h2", 2) != 0) {
			log_warn("backend %s: TLS without ALPN h2", h->be->up->name);
			close_conn(h, US_FAIL_CONNECT, "backend did not agree to HTTP/2 (ALPN)");
			return;
		}
	}
	h->connected = true;
	h->last_rx_ms = h->idle_since_ms = h->w->loop.now_ms;
	conn_kick(c);
}

static void h2c_destroy(struct conn *c)
{
	struct h2c *h = c->sess;

	dlist_del(&h->link);
	fail_all(h, h->connected ? US_FAIL_RESET : US_FAIL_CONNECT, "connection closed");
	nghttp2_session_del(h->ng);
	while (!dlist_empty(&h->refs))
		ref_free(container_of(h->refs.next, struct h2c_ref, link));
	backend_conn_closed(h->be); /* may free be */
	free(h);
}

static const struct conn_ops h2c_conn_ops = {
    .process = h2c_process,
    .error = h2c_error,
    .timeout = h2c_timeout,
    .ready = h2c_ready,
    .destroy = h2c_destroy,
};

void h2c_pool_fini(struct backend_rt *be)
{
	struct dlist *l;

	while ((l = dlist_first(&be->h2)))
		close_conn(container_of(l, struct h2c, link), US_FAIL_RESET, "shutting down");
}

void h2c_pool_retire(struct backend_rt *be)
{
	for (struct dlist *l = be->h2.next; l != &be->h2; l = l->next) {
		struct h2c *h = container_of(l, struct h2c, link);

		if (h->goaway)
			continue;
		/* No new streams here; close once the open ones are done. A
		 * GOAWAY says so to the backend (last stream id 0: it opens
		 * none toward us); ours in flight are not affected. */
		h->goaway = true;
		if (h->connected)
			nghttp2_submit_goaway(h->ng, NGHTTP2_FLAG_NONE, 0, NGHTTP2_NO_ERROR, NULL,
					      0);
		conn_kick(h->c);
	}
}

/* --- what the stream asks of us ---------------------------------------------------- */

static void us_req_ready(struct stream *s)
{
	struct h2c *h = s->us_conn;

	if (s->us_pending)
		return; /* sent with what it has when SETTINGS come */
	if (s->us_deferred) {
		s->us_deferred = false;
		nghttp2_session_resume_data(h->ng, s->us_id);
	}
	conn_kick(h->c);
}

static void us_resp_consumed(struct stream *s, size_t n)
{
	struct h2c *h = s->us_conn;

	if (s->us_pending)
		return;
	s->us_unconsumed -= n;
	nghttp2_session_consume(h->ng, s->us_id, n);
	conn_kick(h->c);
}

static void us_cancel(struct stream *s)
{
	struct h2c *h = s->us_conn;

	if (s->us_pending) {
		unpend(h, s); /* never sent: nothing to reset */
		stream_us_done(s);
		return;
	}
	/* RFC 9113 §8.7: CANCEL, the client no longer wants it. */
	nghttp2_submit_rst_stream(h->ng, NGHTTP2_FLAG_NONE, s->us_id, NGHTTP2_CANCEL);
	forget(h, s);
	stream_us_done(s);
	conn_kick(h->c);
}

static const struct us_ops h2c_us_ops = {
    .req_ready = us_req_ready,
    .resp_consumed = us_resp_consumed,
    .cancel = us_cancel,
};

static struct h2c *connect_new(struct worker *w, struct backend_rt *be, int *err)
{
	const struct l7_upstream *bc = be->up;
	const struct l7_cluster_cfg *cc = be->cl->cfg;
	nghttp2_settings_entry iv[] = {
	    {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
	    {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, UPSTREAM_WINDOW},
	    {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, w->cfg->h2.max_header_list_size},
	};
	uint64_t win = (uint64_t)cc->max_streams * UPSTREAM_WINDOW;
	nghttp2_mem mem;
	SSL *ssl;
	struct h2c *h;
	int fd;

	fd = socket(bc->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		*err = -errno;
		return NULL;
	}
	if (connect(fd, (const struct sockaddr *)&bc->addr, bc->addr_len) < 0 &&
	    errno != EINPROGRESS) {
		*err = -errno;
		close(fd);
		return NULL;
	}
	h = calloc(1, sizeof(*h));
	if (!h) {
		close(fd);
		*err = -ENOMEM;
		return NULL;
	}
	h->w = w;
	h->be = be;
	dlist_init(&h->link);
	dlist_init(&h->refs);
	dlist_init(&h->streams);
	dlist_init(&h->pending);
	h->start_ms = h->idle_since_ms = w->loop.now_ms;
	h2_mem_init(&mem, &h->mem);
	if (nghttp2_session_client_new3(&h->ng, w->h2c_cbs, h, w->h2c_opt, &mem) ||
	    nghttp2_submit_settings(h->ng, NGHTTP2_FLAG_NONE, iv, sizeof(iv) / sizeof(iv[0])) ||
	    nghttp2_session_set_local_window_size(
		h->ng, NGHTTP2_FLAG_NONE, 0,
		(int32_t)(win > MAX_CONN_WINDOW ? MAX_CONN_WINDOW : win))) {
		if (h->ng)
			nghttp2_session_del(h->ng);
		free(h);
		close(fd);
		*err = -ENOMEM;
		return NULL;
	}
	ssl = backend_ssl(be);
	if (be->cl->ssl_ctx && !ssl) {
		nghttp2_session_del(h->ng);
		free(h);
		close(fd);
		*err = -ENOMEM;
		return NULL;
	}
	h->c = conn_new(w, fd, &h2c_conn_ops, h, ssl, false, true);
	if (!h->c) {
		nghttp2_session_del(h->ng);
		free(h);
		*err = -ENOMEM;
		return NULL;
	}
	h->c->tls_session_slot = &be->tls_session;
	backend_conn_opened(be);
	dlist_push(&be->h2, &h->link);
	STAT_INC(w, upstream_connects);
	STAT_INC(w, upstream_h2_sessions);
	/* Connect and TLS handshake share the connect deadline. */
	set_timer(h);
	return h;
}

/* Put s on h's wait list until the backend's SETTINGS arrive. */
static void hold(struct h2c *h, struct stream *s)
{
	s->us = &h2c_us_ops;
	s->us_conn = h;
	s->us_id = -1;
	s->us_pending = true;
	dlist_push(&h->pending, &s->us_link);
	h->n_pending++;
}

int h2c_attach(struct stream *s, struct backend_rt *be)
{
	struct worker *w = s->w;
	struct h2c *wait = NULL;
	struct dlist *l;
	int rc = 0;

	for (l = be->h2.next; l != &be->h2; l = l->next) {
		struct h2c *h = container_of(l, struct h2c, link);

		if (h->goaway)
			continue;
		if (h->settings_seen && room(h)) {
			STAT_INC(w, upstream_reuses);
			rc = submit(h, s);
			if (rc != -EAGAIN)
				return rc;
			h->goaway = true; /* stream ids exhausted: a fresh connection */
		} else if (!h->settings_seen && !wait && h->n_pending < be->cl->cfg->max_streams) {
			wait = h;
		}
	}
	if (!wait) {
		if (be->n_conns >= be->cl->cfg->max_connections)
			return -EAGAIN;
		wait = connect_new(w, be, &rc);
		if (!wait)
			return rc;
	}
	hold(wait, s);
	return 0;
}

/*
 * The backend's SETTINGS are known: send the waiting streams it has room
 * for, in the order they came; the rest look for another connection.
 */
static void flush_pending(struct h2c *h)
{
	struct dlist *l;

	while ((l = h->pending.prev) != &h->pending) {
		struct stream *s = container_of(l, struct stream, us_link);
		int rc;

		unpend(h, s);
		/* No room here: another connection, but never a new one to a
		 * backend that left the set or is drained (the stream is
		 * retried on another backend instead). */
		rc = room(h)			      ? submit(h, s)
		     : h->be->removed || h->be->drain ? -ESHUTDOWN
						      : h2c_attach(s, h->be);
		if (rc == 0)
			continue;
		stream_us_detach(s);
		stream_upstream_failed(s, rc == -E2BIG ? US_FAIL_PROTOCOL : US_FAIL_REFUSED,
				       rc == -EAGAIN ? "backend connection limit reached"
						     : "request cannot be sent");
	}
}
