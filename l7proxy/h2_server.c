// SPDX-License-Identifier: GPL-2.0-only
/*
 * h2_server.c - the downstream HTTP/2 session (RFC 9113), on nghttp2's
 * server session. It speaks frames and knows nothing of clusters: each
 * request becomes a stream handed to the worker's dispatch.
 *
 * Flow control is the backpressure. Automatic WINDOW_UPDATE is off; the
 * bytes of a request body are given back to the client's window
 * (nghttp2_session_consume) only when the upstream side has taken them out
 * of the stream, so a client can never have more than a window of body in
 * the proxy per stream, nor more than the connection window in all.
 * Response bodies leave through a data source that is deferred while the
 * stream's pipe is empty and resumed when the upstream side adds to it;
 * DATA frames are written with NGHTTP2_DATA_FLAG_NO_COPY, moving whole
 * blocks from the stream's pipe to the connection's output.
 *
 * Abuse: rather than a patch per CVE, one leaky bucket per connection
 * ("glitches", as HAProxy calls them) collects points from everything a
 * well-behaved client does rarely: resetting streams it opened (rapid
 * reset, CVE-2023-44487), frames that make the server reset a stream
 * ("MadeYouReset", CVE-2025-8671, which Debian's nghttp2 1.52 does not
 * bound), empty DATA frames, PING, SETTINGS, PRIORITY and tiny
 * WINDOW_UPDATE frames, header lists over the limit (HPACK bombs), frames
 * nghttp2 found invalid. The bucket leaks glitch_limit/10 points a
 * second; past glitch_limit the connection gets GOAWAY(ENHANCE_YOUR_CALM)
 * and is closed. nghttp2's own limits are set explicitly on top: the
 * CONTINUATION cap, the stream-reset rate limit, the outbound ACK queue
 * bound (a peer that floods PING or SETTINGS and never reads), at most 32
 * settings per frame.
 */
#include "grpc.h"
#include "h2_util.h"
#include "http1.h"
#include "log.h"
#include "proxy.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TICK_MS 1000

/* Glitch weights: how rare the event is for a well-behaved client. */
#define G_CLIENT_RESET	 1
#define G_PROVOKED_RESET 5
#define G_EMPTY_DATA	 1
#define G_PING		 1
#define G_SETTINGS	 1
#define G_PRIORITY	 1
#define G_SMALL_WU	 1
#define G_INVALID	 5
#define SMALL_WU_BYTES	 1024
#define WU_CREDIT_MAX	 64

struct h2s {
	struct conn *c;
	struct worker *w;
	nghttp2_session *ng;
	struct dlist streams; /* open streams (stream.ds_link) */
	unsigned n_streams;
	unsigned requests;
	uint64_t glitch_mx; /* bucket content, in milli-points */
	uint64_t glitch_ms; /* last leak */
	bool abusive;	    /* GOAWAY(ENHANCE_YOUR_CALM) sent */
	bool done;	    /* streams cancelled, closing: nghttp2 is not run again */
	bool settings_seen;
	bool draining; /* shutdown notice sent */
	bool final_goaway;
	unsigned wu_credit; /* small WINDOW_UPDATEs our DATA frames account for */
	uint64_t drain_ms;
	uint64_t idle_since_ms, last_rx_ms, ping_sent_ms, hdr_pending_ms, timer_at;
	size_t mem; /* bytes nghttp2 holds for this session */
};

static const struct ds_ops h2s_ds_ops;

/*
 * End the connection gracefully: first a GOAWAY that only announces the
 * end (RFC 9113 §6.8), the final one a tick later (tick()) once requests
 * in flight on the wire have arrived; the connection closes when its
 * streams are done. Used to recycle a connection and to drain the worker.
 */
static void begin_goaway(struct h2s *h)
{
	if (h->draining || h->done)
		return;
	h->draining = true;
	h->drain_ms = h->w->loop.now_ms;
	nghttp2_submit_shutdown_notice(h->ng);
}

static const struct conn_ops h2s_conn_ops;

size_t h2s_mem(const struct conn *c)
{
	const struct h2s *h = c->sess;
	size_t n;

	if (c->ops != &h2s_conn_ops || !h)
		return 0;
	n = sizeof(*h) + h->mem;
	for (const struct dlist *l = h->streams.next; l != &h->streams; l = l->next) {
		const struct stream *s = container_of(l, struct stream, ds_link);

		n += sizeof(*s) + s->arena.total + (s->req.body.len + s->resp.body.len);
	}
	return n;
}

/* --- abuse ------------------------------------------------------------------- */

static void glitch(struct h2s *h, unsigned points, const char *why)
{
	const struct l7_h2_cfg *cfg = &h->w->cfg->h2;
	uint64_t now = h->w->loop.now_ms;
	uint64_t leak = (now - h->glitch_ms) * cfg->glitch_limit / 10; /* milli-points */

	h->glitch_ms = now;
	h->glitch_mx = h->glitch_mx > leak ? h->glitch_mx - leak : 0;
	h->glitch_mx += (uint64_t)points * 1000;
	STAT_ADD(h->w, h2_glitches, points);
	if (!cfg->glitch_limit || h->abusive || h->glitch_mx <= (uint64_t)cfg->glitch_limit * 1000)
		return;
	h->abusive = true;
	STAT_INC(h->w, h2_goaway_abuse);
	log_info("client %s: HTTP/2 abuse (%s, %u glitch points): GOAWAY", h->c->peer_ip, why,
		 (unsigned)(h->glitch_mx / 1000));
	nghttp2_session_terminate_session(h->ng, NGHTTP2_ENHANCE_YOUR_CALM);
}

/* --- streams ---------------------------------------------------------------- */

static void link_stream(struct h2s *h, struct stream *s)
{
	dlist_push(&h->streams, &s->ds_link);
	h->n_streams++;
}

static void unlink_stream(struct h2s *h, struct stream *s)
{
	dlist_del(&s->ds_link);
	h->n_streams--;
	if (!h->n_streams)
		h->idle_since_ms = h->w->loop.now_ms;
}

/* Give the connection window back what s holds that was never taken (the
 * stream is closing: its own window no longer matters). */
static void release_window(struct h2s *h, struct stream *s)
{
	if (s->ds_unconsumed)
		nghttp2_session_consume(h->ng, s->ds_id, s->ds_unconsumed);
	s->ds_unconsumed = 0;
}

static struct stream *get_stream(struct h2s *h, int32_t id)
{
	return nghttp2_session_get_stream_user_data(h->ng, id);
}

static const char *const fwd_headers[] = {"x-forwarded-for", "x-forwarded-proto", "x-real-ip",
					  "forwarded", NULL};

static bool dropped(const struct h2s *h, const uint8_t *name, size_t len)
{
	if (h->w->cfg->client.forwarded != L7_FORWARDED_REPLACE)
		return false;
	for (const char *const *f = fwd_headers; *f; f++)
		if (strlen(*f) == len && memcmp(*f, name, len) == 0)
			return true;
	return false;
}

static int on_begin_headers(nghttp2_session *ng, const nghttp2_frame *frame, void *ud)
{
	struct h2s *h = ud;
	struct stream *s;

	(void)ng;
	if (frame->hd.type != NGHTTP2_HEADERS)
		return 0;
	h->hdr_pending_ms = h->w->loop.now_ms;
	if (frame->headers.cat != NGHTTP2_HCAT_REQUEST) {
		s = get_stream(h, frame->hd.stream_id);
		if (s)
			s->ds_in_trailers = true;
		return 0;
	}
	s = stream_new(h->w, &h2s_ds_ops, h, frame->hd.stream_id);
	if (!s)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	s->peer_ip = h->c->peer_ip;
	s->tls = h->c->ssl != NULL;
	s->tls_desc = h->c->ssl ? h->c->tls_desc : NULL;
	s->identity = h->c->identity;
	s->early = h->c->early;
	s->ds_progress_ms = h->w->loop.now_ms;
	link_stream(h, s);
	nghttp2_session_set_stream_user_data(h->ng, frame->hd.stream_id, s);
	return 0;
}

static const char *pseudo_copy(struct stream *s, const uint8_t *v, size_t len, uint32_t *outlen)
{
	if (outlen)
		*outlen = (uint32_t)len;
	return arena_strndup(&s->arena, (const char *)v, len);
}

static int on_header(nghttp2_session *ng, const nghttp2_frame *frame, const uint8_t *name,
		     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags, void *ud)
{
	struct h2s *h = ud;
	struct stream *s = get_stream(h, frame->hd.stream_id);
	int rc = 0;

	(void)ng;
	(void)flags;
	if (!s || s->ds_too_big)
		return 0;
	/* RFC 9113 §6.5.2: the size of a field is name + value + 32. An HPACK
	 * bomb (a small block decoding to a huge list) stops here: nothing
	 * more is kept, and the request is answered 431. */
	s->ds_hdr_bytes += (uint32_t)(namelen + valuelen + 32);
	if (s->ds_hdr_bytes > h->w->cfg->h2.max_header_list_size) {
		s->ds_too_big = true;
		STAT_INC(h->w, h2_header_overflow);
		/* A tenth of the limit: nghttp2 must still decode the rest of
		 * the block (HPACK state), so a bomb costs CPU even when
		 * nothing is kept; ten of them end the connection. */
		glitch(h, h->w->cfg->h2.glitch_limit / 10 + 1, "header list over the limit");
		return 0;
	}
	if (s->ds_in_trailers && proxy_reserved_field(h->w->cfg, (const char *)name, namelen))
		return 0; /* ours alone, even in trailers */
	if (s->ds_in_trailers)
		return hdrs_add(&s->req.trailers, &s->arena, (const char *)name, namelen,
				(const char *)value, valuelen)
			   ? NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE
			   : 0;
	/* nghttp2 has checked the pseudo-headers (RFC 9113 §8.3), refused
	 * connection-specific fields, and checked names and values. */
	if (namelen && name[0] == ':') {
		if (namelen == 7 && memcmp(name, ":method", 7) == 0)
			s->method = pseudo_copy(s, value, valuelen, &s->method_len);
		else if (namelen == 7 && memcmp(name, ":scheme", 7) == 0)
			s->scheme = pseudo_copy(s, value, valuelen, NULL);
		else if (namelen == 10 && memcmp(name, ":authority", 10) == 0)
			s->authority = pseudo_copy(s, value, valuelen, &s->authority_len);
		else if (namelen == 5 && memcmp(name, ":path", 5) == 0)
			s->path = pseudo_copy(s, value, valuelen, &s->path_len);
		return 0;
	}
	if (namelen == 4 && memcmp(name, "host", 4) == 0) {
		if (!s->authority)
			s->authority = pseudo_copy(s, value, valuelen, &s->authority_len);
		return 0;
	}
	if (namelen == 2 && memcmp(name, "te", 2) == 0) {
		s->te_trailers = true; /* nghttp2 allows only "trailers" */
		return 0;
	}
	if (namelen == 14 && memcmp(name, "content-length", 14) == 0) {
		int64_t n = 0;

		for (size_t i = 0; i < valuelen; i++)
			n = n * 10 + (value[i] - '0'); /* digits only: nghttp2 checked */
		s->req.content_length = n;
		return 0;
	}
	if (namelen == 12 && memcmp(name, "x-request-id", 12) == 0) {
		if (valuelen <= 128 && h1_reqid_valid((const char *)value, valuelen)) {
			memcpy(s->reqid, value, valuelen);
			s->reqid_len = (uint32_t)valuelen;
		}
		return 0;
	}
	if (namelen == 12 && memcmp(name, "content-type", 12) == 0)
		s->grpc = grpc_content_type((const char *)value, valuelen);
	if (dropped(h, name, namelen))
		return 0;
	rc = hdrs_add(&s->req.hdrs, &s->arena, (const char *)name, namelen, (const char *)value,
		      valuelen);
	return rc ? NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE : 0;
}

/* RFC 9113 §8.2.3: cookies split into several fields are joined with
 * "; " before going to HTTP/1.1 (and it does not hurt HTTP/2). */
static int join_cookies(struct stream *s)
{
	struct l7_hdrs *h = &s->req.hdrs;
	size_t total = 0, n = 0;
	uint32_t first = UINT32_MAX, k = 0;
	char *v, *p;

	for (uint32_t i = 0; i < h->n; i++)
		if (strcmp(h->v[i].name, "cookie") == 0) {
			total += h->v[i].value_len + 2;
			if (first == UINT32_MAX)
				first = i;
			n++;
		}
	if (n < 2)
		return 0;
	v = p = arena_alloc(&s->arena, total);
	if (!v)
		return -ENOMEM;
	for (uint32_t i = 0; i < h->n; i++) {
		if (strcmp(h->v[i].name, "cookie") == 0) {
			if (p != v) {
				memcpy(p, "; ", 2);
				p += 2;
			}
			memcpy(p, h->v[i].value, h->v[i].value_len);
			p += h->v[i].value_len;
			if (i != first)
				continue;
		}
		h->v[k++] = h->v[i];
	}
	h->n = k;
	h->v[first].value = v;
	h->v[first].value_len = (uint32_t)(p - v);
	return 0;
}

/* A complete request head: hand it over. */
static void request_head(struct h2s *h, struct stream *s, bool end)
{
	h->requests++;
	STAT_INC(h->w, requests);
	STAT_INC(h->w, requests_h2);
	s->req.head_done = true;
	if (end) {
		s->req.end = true;
		if (s->req.content_length < 0)
			s->req.content_length = 0;
	}
	s->head_req = s->method_len == 4 && memcmp(s->method, "HEAD", 4) == 0;
	s->safe = s->head_req || (s->method_len == 3 && memcmp(s->method, "GET", 3) == 0) ||
		  (s->method_len == 7 && memcmp(s->method, "OPTIONS", 7) == 0) ||
		  (s->method_len == 5 && memcmp(s->method, "TRACE", 5) == 0);
	if (s->ds_too_big) {
		stream_reply_error(s, 431, "request header list too large");
		return;
	}
	if (!s->path || !s->method) {
		/* CONNECT (no :path): not proxied. */
		if (!s->path)
			s->path = "-", s->path_len = 1;
		stream_reply_error(s, 501, "CONNECT is not proxied");
		return;
	}
	if (join_cookies(s)) {
		stream_reply_error(s, 500, "out of memory");
		return;
	}
	h->w->dispatch(s);
	if (h->w->cfg->h2.max_requests && h->requests >= h->w->cfg->h2.max_requests)
		begin_goaway(h);
}

static int on_frame_recv(nghttp2_session *ng, const nghttp2_frame *frame, void *ud)
{
	struct h2s *h = ud;
	struct stream *s = frame->hd.stream_id ? get_stream(h, frame->hd.stream_id) : NULL;
	bool end = frame->hd.flags & NGHTTP2_FLAG_END_STREAM;

	(void)ng;
	switch (frame->hd.type) {
	case NGHTTP2_HEADERS:
		h->hdr_pending_ms = 0;
		if (!s)
			break;
		if (frame->headers.cat == NGHTTP2_HCAT_REQUEST)
			request_head(h, s, end);
		else if (end && !s->req.end)
			stream_req_end(s); /* trailers */
		break;
	case NGHTTP2_DATA:
		if (!end && frame->hd.length == 0)
			glitch(h, G_EMPTY_DATA, "empty DATA frames");
		if (s && end && !s->req.end)
			stream_req_end(s);
		break;
	case NGHTTP2_RST_STREAM:
		if (s && !(s->resp.end && !s->resp.body.len)) {
			s->ds_client_reset = true;
			STAT_INC(h->w, h2_client_resets);
			glitch(h, G_CLIENT_RESET, "streams reset by the client");
		}
		break;
	case NGHTTP2_SETTINGS:
		if (frame->hd.flags & NGHTTP2_FLAG_ACK)
			break;
		if (h->settings_seen)
			glitch(h, G_SETTINGS, "SETTINGS frames");
		h->settings_seen = true;
		break;
	case NGHTTP2_PING:
		if (frame->hd.flags & NGHTTP2_FLAG_ACK)
			h->ping_sent_ms = 0;
		else
			glitch(h, G_PING, "PING frames");
		break;
	case NGHTTP2_PRIORITY:
		glitch(h, G_PRIORITY, "PRIORITY frames");
		break;
	case NGHTTP2_WINDOW_UPDATE: {
		int32_t inc = frame->window_update.window_size_increment;
		int32_t win =
		    frame->hd.stream_id
			? nghttp2_session_get_stream_remote_window_size(ng, frame->hd.stream_id)
			: nghttp2_session_get_remote_window_size(ng);

		if (inc >= SMALL_WU_BYTES)
			break;
		/* gRPC clients acknowledge each small message with a small
		 * increment while the window stays wide open: free, as long
		 * as DATA we sent accounts for it. Costly are increments that
		 * reopen a window kept nearly shut (we would cut tiny DATA
		 * frames) and ones acknowledging nothing (a flood). */
		if (h->wu_credit && !(win >= 0 && win - inc < SMALL_WU_BYTES)) {
			h->wu_credit--;
			break;
		}
		glitch(h, G_SMALL_WU, "tiny WINDOW_UPDATE frames");
		break;
	}
	default:
		break;
	}
	return 0;
}

static int on_data_chunk(nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *data,
			 size_t len, void *ud)
{
	struct h2s *h = ud;
	struct stream *s = get_stream(h, id);

	(void)flags;
	if (!s || s->us_done || s->ds_done) {
		/* Nobody will read it: give the window back at once. */
		nghttp2_session_consume(ng, id, len);
		return 0;
	}
	s->ds_unconsumed += len;
	if (stream_req_body(s, data, len) != len)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	return 0;
}

static int on_stream_close(nghttp2_session *ng, int32_t id, uint32_t error_code, void *ud)
{
	struct h2s *h = ud;
	struct stream *s = get_stream(h, id);

	(void)error_code;
	if (!s)
		return 0;
	nghttp2_session_set_stream_user_data(ng, id, NULL);
	unlink_stream(h, s);
	if (h->hdr_pending_ms && !s->req.head_done)
		h->hdr_pending_ms = 0; /* its header block was refused */
	if (!(s->resp.end && !s->resp.body.len && s->resp_started))
		stream_cancel(s); /* reset before the response was complete */
	release_window(h, s);
	stream_ds_done(s);
	return 0;
}

static int on_invalid_frame(nghttp2_session *ng, const nghttp2_frame *frame, int lib_error,
			    void *ud)
{
	struct h2s *h = ud;

	(void)ng;
	(void)lib_error;
	if (frame->hd.type == NGHTTP2_HEADERS)
		h->hdr_pending_ms = 0; /* the block is over, refused */
	STAT_INC(h->w, h2_protocol_errors);
	glitch(h, G_INVALID, "invalid frames");
	return 0;
}

static int on_frame_send(nghttp2_session *ng, const nghttp2_frame *frame, void *ud)
{
	struct h2s *h = ud;
	struct stream *s;

	switch (frame->hd.type) {
	case NGHTTP2_RST_STREAM:
		/* The proxy's own resets use CANCEL, INTERNAL_ERROR or
		 * NO_ERROR; anything else was provoked by the client. */
		if (frame->rst_stream.error_code != NGHTTP2_CANCEL &&
		    frame->rst_stream.error_code != NGHTTP2_INTERNAL_ERROR &&
		    frame->rst_stream.error_code != NGHTTP2_NO_ERROR)
			glitch(h, G_PROVOKED_RESET, "resets provoked by the client");
		break;
	case NGHTTP2_GOAWAY:
		if (frame->goaway.error_code != NGHTTP2_NO_ERROR &&
		    frame->goaway.error_code != NGHTTP2_ENHANCE_YOUR_CALM)
			STAT_INC(h->w, h2_protocol_errors);
		break;
	case NGHTTP2_HEADERS:
	case NGHTTP2_DATA:
		/* Up to a stream and a connection WINDOW_UPDATE per frame. */
		if (frame->hd.type == NGHTTP2_DATA && frame->hd.length &&
		    h->wu_credit < WU_CREDIT_MAX)
			h->wu_credit += 2;
		/* A complete response while the client still sends: ask it to
		 * stop (RFC 9113 §8.1), and stop buffering what comes. */
		if ((frame->hd.flags & NGHTTP2_FLAG_END_STREAM) &&
		    (s = get_stream(h, frame->hd.stream_id)) && !s->req.end)
			nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, frame->hd.stream_id,
						  NGHTTP2_NO_ERROR);
		break;
	default:
		break;
	}
	return 0;
}

static ssize_t on_send(nghttp2_session *ng, const uint8_t *data, size_t len, int flags, void *ud)
{
	struct h2s *h = ud;

	(void)ng;
	(void)flags;
	return h2_out_write(h->c, data, len);
}

/* A DATA frame: its header, then the bytes moved out of the stream. */
static int on_send_data(nghttp2_session *ng, nghttp2_frame *frame, const uint8_t *framehd,
			size_t length, nghttp2_data_source *source, void *ud)
{
	struct h2s *h = ud;
	struct stream *s = source->ptr;
	int rc;

	(void)ng;
	(void)frame;
	rc = h2_out_data(h->c, framehd, &s->resp.body, length);
	if (rc == 0) {
		s->ds_progress_ms = h->w->loop.now_ms;
		stream_resp_consumed(s, length);
	}
	return rc;
}

static ssize_t read_body(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t length,
			 uint32_t *flags, nghttp2_data_source *source, void *ud)
{
	struct stream *s = source->ptr;

	(void)buf;
	(void)ud;
	return h2_read_source(ng, id, &s->resp, &s->arena, length, flags, &s->ds_deferred);
}

static int h2s_worker_cbs(nghttp2_session_callbacks **out)
{
	nghttp2_session_callbacks *cb;

	if (nghttp2_session_callbacks_new(&cb))
		return -ENOMEM;
	nghttp2_session_callbacks_set_send_callback(cb, on_send);
	nghttp2_session_callbacks_set_send_data_callback(cb, on_send_data);
	nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
	nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
	nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
	nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(cb, on_invalid_frame);
	nghttp2_session_callbacks_set_on_frame_send_callback(cb, on_frame_send);
	*out = cb;
	return 0;
}

int h2s_worker_init(struct worker *w)
{
	nghttp2_option *opt;

	if (h2s_worker_cbs((nghttp2_session_callbacks **)&w->h2s_cbs))
		return -ENOMEM;
	if (nghttp2_option_new(&opt))
		return -ENOMEM;
	w->h2s_opt = opt;
	nghttp2_option_set_no_auto_window_update(opt, 1);
	nghttp2_option_set_max_outbound_ack(opt, 1000);
	nghttp2_option_set_max_settings(opt, 32);
	/* nghttp2's own rapid-reset bound, looser than the glitch bucket so
	 * that the bucket (which also counts what nghttp2 does not) speaks
	 * first and is what the counters show; this one stays as a backstop. */
	nghttp2_option_set_stream_reset_rate_limit(opt, 4000, 100);
	nghttp2_option_set_max_continuations(opt, 8);
	return 0;
}

void h2s_worker_fini(struct worker *w)
{
	nghttp2_session_callbacks_del(w->h2s_cbs);
	nghttp2_option_del(w->h2s_opt);
	w->h2s_cbs = w->h2s_opt = NULL;
}

/* --- responses ------------------------------------------------------------------ */

static void submit_response(struct h2s *h, struct stream *s)
{
	struct h2_nvs nvs;
	char status[8], clen[24];
	nghttp2_data_provider prd = {.source.ptr = s, .read_callback = read_body};
	bool no_body = s->trailers_only || s->head_req || s->status == 204 || s->status == 304 ||
		       (s->resp.end && !s->resp.body.len && !s->resp.trailers.n);
	int rc = -1;

	h2_nvs_init(&nvs, &s->arena, s->resp.hdrs.n + 2); /* :status, content-length */
	snprintf(status, sizeof(status), "%03d", s->status % 1000);
	h2_nvs_add(&nvs, ":status", 7, status, 3);
	h2_nvs_add_all(&nvs, &s->resp.hdrs);
	/* The length a HEAD or 304 response describes is worth keeping. */
	if (s->resp.content_length >= 0 && !s->trailers_only && s->status != 204 &&
	    (!no_body || s->head_req || s->status == 304 || s->resp.content_length == 0))
		h2_nvs_add(&nvs, "content-length", 14, clen,
			   (size_t)snprintf(clen, sizeof(clen), "%lld",
					    (long long)s->resp.content_length));
	if (no_body)
		pipe_clear(&s->resp.body, &h->w->pool);
	if (!nvs.overflow)
		rc = nghttp2_submit_response(h->ng, s->ds_id, nvs.nv, nvs.n, no_body ? NULL : &prd);
	s->resp_started = true;
	if (rc)
		nghttp2_submit_rst_stream(h->ng, NGHTTP2_FLAG_NONE, s->ds_id,
					  NGHTTP2_INTERNAL_ERROR);
}

static void ds_resp_ready(struct stream *s)
{
	struct h2s *h = s->ds_sess;

	if (s->ds_done)
		return;
	if (!s->resp_started) {
		if (s->resp.head_done)
			submit_response(h, s);
	} else if (s->ds_deferred && (s->resp.body.len || s->resp.end)) {
		s->ds_deferred = false;
		nghttp2_session_resume_data(h->ng, s->ds_id);
	}
	conn_kick(h->c);
}

static void ds_req_consumed(struct stream *s, size_t n)
{
	struct h2s *h = s->ds_sess;

	/* The bytes left the proxy: the client may send as many again. */
	if (n > s->ds_unconsumed)
		n = s->ds_unconsumed;
	s->ds_unconsumed -= n;
	nghttp2_session_consume(h->ng, s->ds_id, n);
	conn_kick(h->c);
}

static void ds_abort(struct stream *s)
{
	struct h2s *h = s->ds_sess;

	nghttp2_submit_rst_stream(h->ng, NGHTTP2_FLAG_NONE, s->ds_id,
				  s->deadline_hit ? NGHTTP2_CANCEL : NGHTTP2_INTERNAL_ERROR);
	conn_kick(h->c);
}

static const struct ds_ops h2s_ds_ops = {
    .resp_ready = ds_resp_ready,
    .req_consumed = ds_req_consumed,
    .abort = ds_abort,
};

/* --- the connection ---------------------------------------------------------------- */

/* Every stream ends here; nghttp2 is not run again after this (it would
 * still name the streams in its queue). */
static void cancel_all(struct h2s *h)
{
	struct dlist *l;

	h->done = true;
	while ((l = dlist_first(&h->streams))) {
		struct stream *s = container_of(l, struct stream, ds_link);

		nghttp2_session_set_stream_user_data(h->ng, s->ds_id, NULL);
		unlink_stream(h, s);
		stream_cancel(s);
		stream_ds_done(s);
	}
}

/* Once a tick while streams are open: stalled streams, dead clients, the
 * second GOAWAY of a graceful drain. */
static void tick(struct h2s *h)
{
	const struct l7_client_cfg *k = &h->w->cfg->client;
	const struct l7_h2_cfg *cfg = &h->w->cfg->h2;
	uint64_t now = h->w->loop.now_ms;
	struct dlist *l, *tmp;

	dlist_each(l, tmp, &h->streams)
	{
		struct stream *s = container_of(l, struct stream, ds_link);

		/* Response bytes waiting and none sent for send_timeout: a
		 * zero window or a reader that stopped. A quiet stream (no
		 * bytes waiting) is never cut. */
		if (s->resp_started && s->resp.body.len &&
		    now - s->ds_progress_ms >= k->send_timeout_ms) {
			STAT_INC(h->w, client_timeouts);
			nghttp2_submit_rst_stream(h->ng, NGHTTP2_FLAG_NONE, s->ds_id,
						  NGHTTP2_CANCEL);
			s->ds_progress_ms = now; /* once */
		}
	}
	if (h->n_streams && !h->ping_sent_ms && now - h->last_rx_ms >= cfg->ping_interval_ms) {
		/* Silent with streams open: is anyone there? */
		nghttp2_submit_ping(h->ng, NGHTTP2_FLAG_NONE, NULL);
		h->ping_sent_ms = now;
	}
	if (h->draining && !h->final_goaway && now - h->drain_ms >= TICK_MS) {
		h->final_goaway = true;
		nghttp2_submit_goaway(h->ng, NGHTTP2_FLAG_NONE,
				      nghttp2_session_get_last_proc_stream_id(h->ng),
				      NGHTTP2_NO_ERROR, NULL, 0);
	}
}

static void set_timer(struct h2s *h)
{
	const struct l7_client_cfg *k = &h->w->cfg->client;
	struct conn *c = h->c;
	uint64_t at = UINT64_MAX;

	if (c->out.len && !c->wr_ready)
		at = c->last_write_ms + k->send_timeout_ms;
	if (h->hdr_pending_ms && h->hdr_pending_ms + k->header_timeout_ms < at)
		at = h->hdr_pending_ms + k->header_timeout_ms;
	if (h->ping_sent_ms && h->ping_sent_ms + h->w->cfg->h2.ping_timeout_ms < at)
		at = h->ping_sent_ms + h->w->cfg->h2.ping_timeout_ms;
	if (!h->n_streams && h->idle_since_ms + k->idle_timeout_ms < at)
		at = h->idle_since_ms + k->idle_timeout_ms;
	if ((h->n_streams || h->draining) && h->w->loop.now_ms + TICK_MS < at)
		at = h->w->loop.now_ms + TICK_MS;
	/* Re-arming costs a heap operation: only move it earlier, or set it
	 * once the old one has passed. */
	if (at < h->timer_at || h->timer_at <= h->w->loop.now_ms) {
		h->timer_at = at;
		conn_timer_at(c, at == UINT64_MAX ? 0 : at);
	}
}

static void close_now(struct h2s *h)
{
	cancel_all(h);
	conn_close(h->c);
}

static bool h2s_process(struct conn *c)
{
	struct h2s *h = c->sess;
	bool moved = false;
	int rv;

	if (h->done) {
		pipe_clear(&c->in, &h->w->pool);
		return false;
	}

	while (c->in.len) {
		size_t len;
		const uint8_t *p = (const uint8_t *)pipe_peek(&c->in, &len);
		ssize_t n;

		if (h->abusive) {
			/* GOAWAY is on its way: nothing more is worth parsing. */
			pipe_clear(&c->in, &h->w->pool);
			break;
		}
		n = nghttp2_session_mem_recv(h->ng, p, len);

		if (n < 0) {
			if (n == NGHTTP2_ERR_FLOODED || n == NGHTTP2_ERR_TOO_MANY_CONTINUATIONS) {
				STAT_INC(h->w, h2_flood);
				STAT_INC(h->w, h2_goaway_abuse);
				log_info("client %s: HTTP/2 flood (%s): GOAWAY", c->peer_ip,
					 nghttp2_strerror((int)n));
				nghttp2_session_terminate_session(h->ng, NGHTTP2_ENHANCE_YOUR_CALM);
			} else {
				STAT_INC(h->w, h2_protocol_errors);
				log_debug("client %s: HTTP/2: %s", c->peer_ip,
					  nghttp2_strerror((int)n));
				nghttp2_session_terminate_session(h->ng, NGHTTP2_PROTOCOL_ERROR);
			}
			/* Send the GOAWAY (and what was queued before it, within
			 * the output bound), then close. */
			pipe_clear(&c->in, &h->w->pool);
			nghttp2_session_send(h->ng);
			cancel_all(h);
			conn_close_gracefully(c);
			return true;
		}
		pipe_consume(&c->in, &h->w->pool, (size_t)n);
		h->last_rx_ms = h->w->loop.now_ms;
		h->ping_sent_ms = 0; /* any byte proves the peer alive */
		moved = true;
		if (c->closed)
			return true;
	}
	if (c->rd_eof) {
		close_now(h);
		return true;
	}
	if (c->out.len < CONN_OUT_LIMIT) {
		size_t before = c->out.len;

		rv = nghttp2_session_send(h->ng);
		if (rv) {
			log_debug("client %s: HTTP/2 send: %s", c->peer_ip, nghttp2_strerror(rv));
			close_now(h);
			return true;
		}
		moved |= c->out.len != before;
	}
	if (!nghttp2_session_want_read(h->ng) && !nghttp2_session_want_write(h->ng) &&
	    !c->out.len) {
		/* GOAWAY sent and every stream done (or a fatal error). */
		cancel_all(h);
		conn_close_gracefully(c);
		return true;
	}
	/* Always read (bounded by the input pipe): WINDOW_UPDATE, PING and
	 * RST_STREAM must get through while a download fills the output. What
	 * reading can make the proxy queue is bounded elsewhere: responses by
	 * the concurrent-stream limit, DATA by the windows, control-frame
	 * answers by nghttp2's outbound ACK limit. */
	c->want_read = !h->abusive;
	set_timer(h);
	return moved;
}

static void h2s_error(struct conn *c, int err)
{
	(void)err;
	close_now(c->sess);
}

static void h2s_timeout(struct conn *c)
{
	struct h2s *h = c->sess;
	const struct l7_client_cfg *k = &h->w->cfg->client;
	uint64_t now = h->w->loop.now_ms;

	h->timer_at = 0;
	if (h->done)
		return;
	if (c->out.len && !c->wr_ready && now >= c->last_write_ms + k->send_timeout_ms) {
		STAT_INC(h->w, client_timeouts);
		close_now(h); /* the client stopped reading altogether */
		return;
	}
	if (h->hdr_pending_ms && now >= h->hdr_pending_ms + k->header_timeout_ms) {
		STAT_INC(h->w, client_timeouts);
		close_now(h); /* a header block dripping in */
		return;
	}
	if (h->ping_sent_ms && now >= h->ping_sent_ms + h->w->cfg->h2.ping_timeout_ms) {
		log_info("client %s: no answer to PING: closing", c->peer_ip);
		close_now(h);
		return;
	}
	if (!h->n_streams && now >= h->idle_since_ms + k->idle_timeout_ms) {
		nghttp2_session_terminate_session(h->ng, NGHTTP2_NO_ERROR);
		conn_kick(c);
		return;
	}
	tick(h);
	conn_kick(c);
}

static void h2s_destroy(struct conn *c)
{
	struct h2s *h = c->sess;

	cancel_all(h);
	nghttp2_session_del(h->ng);
	free(h);
}

static void h2s_ready(struct conn *c)
{
	(void)c;
}

static void h2s_drain(struct conn *c)
{
	begin_goaway(c->sess);
	conn_kick(c);
}

static const struct conn_ops h2s_conn_ops = {
    .process = h2s_process,
    .error = h2s_error,
    .timeout = h2s_timeout,
    .ready = h2s_ready,
    .destroy = h2s_destroy,
    .drain = h2s_drain,
};

int h2s_start(struct conn *c)
{
	struct worker *w = c->w;
	const struct l7_h2_cfg *cfg = &w->cfg->h2;
	struct h2s *h = calloc(1, sizeof(*h));
	nghttp2_mem mem;
	nghttp2_settings_entry iv[] = {
	    {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, cfg->max_concurrent_streams},
	    {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, cfg->initial_window_size},
	    {NGHTTP2_SETTINGS_MAX_FRAME_SIZE, cfg->max_frame_size},
	    {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, cfg->max_header_list_size},
	};

	if (!h)
		return -ENOMEM;
	h->c = c;
	h->w = w;
	dlist_init(&h->streams);
	h->idle_since_ms = h->last_rx_ms = h->glitch_ms = w->loop.now_ms;
	h2_mem_init(&mem, &h->mem);
	if (nghttp2_session_server_new3(&h->ng, w->h2s_cbs, h, w->h2s_opt, &mem)) {
		free(h);
		return -ENOMEM;
	}
	if (nghttp2_submit_settings(h->ng, NGHTTP2_FLAG_NONE, iv, sizeof(iv) / sizeof(iv[0])) ||
	    nghttp2_session_set_local_window_size(h->ng, NGHTTP2_FLAG_NONE, 0,
						  (int32_t)cfg->connection_window_size)) {
		nghttp2_session_del(h->ng);
		free(h);
		return -ENOMEM;
	}
	/* Keep unsent bytes in our output, not the kernel's: a stream's
	 * response is then not queued behind megabytes of another stream's
	 * data in the socket buffer of a slow client. */
	setsockopt(c->io.fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &(int){64 * 1024}, sizeof(int));
	STAT_INC(w, h2_sessions);
	conn_set_session(c, &h2s_conn_ops, h);
	if (w->draining)
		begin_goaway(h); /* it finished its handshake during a drain */
	conn_kick(c);
	return 0;
}
