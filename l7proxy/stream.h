/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * stream.h - one request and its response as they cross the proxy, in
 * whatever protocol each side speaks.
 *
 * A downstream session (h1_server.c, h2_server.c) creates the stream when a
 * request head has arrived, fills stream->req and hands it to the router
 * (proxy.c); the router picks a route and a cluster, the cluster a backend,
 * and an upstream session (h1_client.c, h2_client.c) takes the stream. From
 * then on the two sessions talk only through the stream:
 *
 *   downstream ── req.body pipe, req.end, req.trailers ──► upstream
 *   downstream ◄── resp head, resp.body pipe, resp.trailers, resp.end ── upstream
 *
 * Each side tells the other that something changed through the ops below;
 * the receiving session only marks the stream and schedules its own work
 * (a loop task), so no call chain runs through both sessions at once.
 *
 * Bodies are bounded: a producer adds to a pipe only while it holds less
 * than stream_body_limit(); an HTTP/1 producer then stops reading its
 * socket, an HTTP/2 producer stops reopening the flow-control window
 * (nghttp2_session_consume() is called only for bytes the other side has
 * taken). Nothing is buffered whole.
 *
 * Memory: header names and values live in the stream's arena, freed with
 * the stream. A stream is freed when both sides have let go of it
 * (stream_ds_done and stream_us_done), and its memory only at the end of
 * the loop iteration, since a queued task may still name it.
 */
#ifndef PORTICO_L7_STREAM_H
#define PORTICO_L7_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "list.h"
#include "loop.h"

struct worker;
struct stream;
struct l7_route_cfg;
struct cluster_rt;
struct backend_rt;

/* --- arena: bump allocation in chunks, freed in one call ----------------- */

struct arena_chunk;
struct arena {
	struct arena_chunk *chunks;
	char *cur;
	size_t left;
	size_t total; /* bytes allocated from malloc, for limits and tests */
};

/* NULL when out of memory. Memory is 8-byte aligned. */
void *arena_alloc(struct arena *a, size_t n);
/* A NUL-terminated copy of s[0..n), or NULL. */
char *arena_strndup(struct arena *a, const char *s, size_t n);
void arena_free(struct arena *a);

/* --- header lists --------------------------------------------------------- */

struct l7_hdr {
	const char *name; /* lowercase, NUL-terminated, in the arena */
	const char *value;
	uint32_t name_len, value_len;
};

struct l7_hdrs {
	struct l7_hdr *v;
	uint32_t n, cap;
	size_t bytes; /* sum of name + value lengths (+32 each, as RFC 9113 §6.5.2) */
};

/*
 * Append a header (copies name, lowercased, and value into a). Returns 0 or
 * -ENOMEM.
 */
int hdrs_add(struct l7_hdrs *h, struct arena *a, const char *name, size_t nlen, const char *value,
	     size_t vlen);

/* The first header called name (lowercase), or NULL. */
const struct l7_hdr *hdrs_get(const struct l7_hdrs *h, const char *name);

/* --- the stream ----------------------------------------------------------- */

/* What the upstream side asks of the downstream side. */
struct ds_ops {
	/* The response head, body bytes, trailers or the end arrived. */
	void (*resp_ready)(struct stream *s);
	/* The upstream side took n request body bytes out of req.body. */
	void (*req_consumed)(struct stream *s, size_t n);
	/* The response broke after its head went out: reset or close. */
	void (*abort)(struct stream *s);
};

/* What the downstream side asks of the upstream side. */
struct us_ops {
	/* More request body, trailers or the end are in the stream. */
	void (*req_ready)(struct stream *s);
	/* The downstream side took n response body bytes out of resp.body. */
	void (*resp_consumed)(struct stream *s, size_t n);
	/* The downstream side gave up: stop and let go (stream_us_done). */
	void (*cancel)(struct stream *s);
};

/* Why an upstream attempt ended without a response. */
enum us_fail {
	US_FAIL_CONNECT,     /* refused, unreachable, connect timeout: never sent */
	US_FAIL_REFUSED,     /* HTTP/2 REFUSED_STREAM or above GOAWAY's last id */
	US_FAIL_RESET_EARLY, /* reused connection closed before any response byte */
	US_FAIL_RESET,	     /* reset / closed / bad response after it was sent */
	US_FAIL_CANCELLED,   /* the backend gave the stream up (RST_STREAM CANCEL or
			      * NO_ERROR, e.g. a gRPC deadline): as RESET, but no
			      * fault of the backend's for passive health */
	US_FAIL_TIMEOUT,     /* no response in time: never retried */
	US_FAIL_PROTOCOL,    /* the backend broke the protocol */
};

struct stream_msg {
	struct l7_hdrs hdrs;
	struct l7_hdrs trailers;
	struct pipe body;
	int64_t content_length; /* -1: unknown */
	uint64_t body_bytes;	/* bytes that entered body so far */
	bool head_done;		/* request: head parsed; response: head ready */
	bool end;		/* no more body: END_STREAM / message complete */
};

struct stream {
	struct worker *w;
	struct arena arena;

	/* Request: pseudo-headers apart, everything else in req.hdrs. */
	const char *method, *scheme, *authority, *path;
	uint32_t method_len, authority_len, path_len;
	struct stream_msg req;
	bool h1_client;	  /* HTTP/1.x downstream (for errors and framing) */
	bool head_req;	  /* HEAD: a response has no body */
	bool grpc;	  /* content-type application/grpc... */
	bool safe;	  /* GET, HEAD, OPTIONS, TRACE: may be replayed */
	bool tls;	  /* downstream is TLS (X-Forwarded-Proto) */
	bool te_trailers; /* the client said "te: trailers" */
	const char *peer_ip;
	const char *tls_desc; /* "TLSv1.3/full", "TLSv1.2/resumed" or NULL */
	const char *identity; /* verified client certificate identity or NULL */
	bool early;	      /* the head came (maybe) in TLS 0-RTT early data */

	/* Response. */
	int status;
	struct stream_msg resp;
	bool trailers_only; /* a gRPC error with no body: one HEADERS frame */
	/* gRPC message framing of the response body so far (5-byte prefix,
	 * then the message): at a boundary the proxy can still end the call
	 * with a status in trailers instead of a reset. */
	uint32_t grpc_left;
	uint8_t grpc_hdr[5], grpc_hdr_n;
	bool proxy_reply; /* generated here, not by a backend */

	/* The two sides. */
	const struct ds_ops *ds;
	void *ds_sess;
	int32_t ds_id;
	const struct us_ops *us;
	void *us_conn;
	int32_t us_id;
	bool ds_done, us_done, freed;

	/* Session-private state of an HTTP/2 side (h2_server.c, h2_client.c). */
	struct dlist ds_link; /* in the downstream session's streams */
	struct dlist us_link; /* in the upstream session's streams */
	uint32_t ds_hdr_bytes, us_hdr_bytes;
	uint64_t ds_progress_ms;       /* last response DATA sent to the client */
	bool ds_deferred, us_deferred; /* data provider waiting for bytes */
	bool ds_too_big;	       /* request header list over the limit */
	bool ds_in_trailers, us_in_trailers;
	bool ds_client_reset; /* the client sent RST_STREAM */
	size_t ds_unconsumed; /* request bytes not yet back in the client's window */
	bool us_submitted;    /* the request went to nghttp2 */
	bool us_interim;      /* reading a 1xx head */
	void *us_ref;	      /* h2_client.c: what nghttp2 holds of this stream */
	bool us_pending;      /* h2_client.c: waiting for a connection's SETTINGS */
	size_t us_unconsumed; /* received, not yet given back to the window */
	uint64_t us_start_ms; /* request submitted */

	/* Routing and policy (proxy.c). */
	const struct l7_route_cfg *route;
	struct cluster_rt *cluster;
	struct backend_rt *backend;
	unsigned attempts;
	bool req_body_sent;	       /* a body byte left req.body toward a backend */
	bool resp_started;	       /* the response head went to the client */
	uint64_t t_start, deadline_ms; /* gRPC deadline (0 = none) */
	uint64_t t_start_us;	       /* CLOCK_MONOTONIC, for the latency metrics */
	bool deadline_hit;
	struct loop_timer deadline;
	char reqid[129];
	uint32_t reqid_len;
	const char *backend_name; /* for the log */
	uint64_t bytes_out;	  /* response bytes sent to the client */
	const char *error;	  /* why the proxy answered itself, for logs */
};

/*
 * A new stream for downstream session sess (ops ds, stream id id). Returns
 * it (owned jointly by both sides until both call *_done), or NULL.
 */
struct stream *stream_new(struct worker *w, const struct ds_ops *ds, void *sess, int32_t id);

/* The grpc-status a gRPC response ended with (trailers, else the head of
 * a trailers-only response), or NULL (none yet, or not gRPC). */
const struct l7_hdr *stream_grpc_status(const struct stream *s);

/* Largest req/resp body a side may buffer in the stream before it stops. */
size_t stream_body_limit(const struct stream *s);

/* Room left in a body pipe under the limit. */
static inline size_t stream_body_room(const struct stream *s, const struct stream_msg *m)
{
	size_t lim = stream_body_limit(s);

	return m->body.len < lim ? lim - m->body.len : 0;
}

/* Downstream side: append request body bytes / mark the end. Returns bytes
 * taken (short only when out of memory). */
size_t stream_req_body(struct stream *s, const void *p, size_t n);
void stream_req_end(struct stream *s);

/* Downstream side: n response body bytes have been taken from resp.body
 * (already consumed there); tells the upstream side. */
void stream_resp_consumed(struct stream *s, size_t n);

/* Upstream side: the response head is complete in s->status/resp.hdrs. */
void stream_resp_head(struct stream *s);
/* True when the gRPC response body so far ends between two messages. */
static inline bool stream_grpc_boundary(const struct stream *s)
{
	return s->grpc_left == 0 && s->grpc_hdr_n == 0;
}

/* Upstream side: append response body bytes; the end. */
size_t stream_resp_body(struct stream *s, const void *p, size_t n);
void stream_resp_end(struct stream *s);
/* Upstream side: n request body bytes were taken from req.body. */
void stream_req_consumed(struct stream *s, size_t n);

/*
 * Upstream side: the attempt failed (why). Before the response head this
 * retries (when why says the backend cannot have processed it and the
 * policy allows) or answers with an error; after it, the downstream side
 * aborts the stream. The upstream side must already have let go of the
 * stream's upstream fields (stream_us_detach).
 */
void stream_upstream_failed(struct stream *s, enum us_fail why, const char *detail);

/* Upstream side: forget the upstream connection without ending the stream
 * (before a retry or a failure report). */
void stream_us_detach(struct stream *s);

/* The downstream side gave up (client reset, connection closed). */
void stream_cancel(struct stream *s);

/* Each side lets go of the stream exactly once; the second frees it. */
void stream_ds_done(struct stream *s);
void stream_us_done(struct stream *s);

/*
 * Answer the request here with status (HTTP) and message: an HTTP error
 * with a small text body, or for gRPC a trailers-only response with the
 * grpc-status the HTTP status maps to. Drops any upstream attempt.
 */
void stream_reply_error(struct stream *s, int status, const char *message);

#endif
