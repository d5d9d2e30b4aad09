/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * proxy.h - what the proxy's layers share inside one worker thread.
 *
 *   worker.c     the thread: loop, listeners, accept limits, buffer pool
 *   conn.c       a connection's transport: socket, TLS, in/out pipes, timer
 *   h1_server.c  downstream HTTP/1.1 session   h2_server.c  downstream HTTP/2
 *   stream.c     a request/response crossing the proxy (stream.h)
 *   proxy.c      routing and policy: route, cluster, retries, errors, deadlines
 *   cluster.c    backends of a cluster: balancing, passive health
 *   h1_client.c  upstream HTTP/1.1 keepalive pools  h2_client.c  upstream HTTP/2
 *
 * Nothing here is shared between workers except the read-only config and
 * the SSL_CTXs: each worker accepts on its own SO_REUSEPORT listeners and
 * owns its connections and pools, so the request path takes no locks.
 */
#ifndef PORTICO_L7_PROXY_H
#define PORTICO_L7_PROXY_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "buf.h"
#include "config.h"
#include "http1.h"
#include "list.h"
#include "loop.h"
#include "metrics.h"
#include "stream.h"
#include "upstream.h"

struct worker;
struct conn;

/* --- counters ------------------------------------------------------------- */

/*
 * Per-worker counters, written only by their worker and read by the admin
 * thread (relaxed: a reader may see a value one event old).
 */
#define WORKER_COUNTERS(X)                                                                         \
	X(accepted)                                                                                \
	X(accept_paused)                                                                           \
	X(conns_open)                                                                              \
	X(requests)                                                                                \
	X(requests_h2)                                                                             \
	X(requests_grpc)                                                                           \
	X(bad_requests)                                                                            \
	X(tls_handshakes)                                                                          \
	X(tls_resumed)                                                                             \
	X(tls13_full)                                                                              \
	X(tls13_resumed)                                                                           \
	X(tls12_full)                                                                              \
	X(tls12_resumed)                                                                           \
	X(tls_ticket_unknown)                                                                      \
	X(tls_ticket_renewed)                                                                      \
	X(tls_ticket_from_future)                                                                  \
	X(tls_client_cert_expired)                                                                 \
	X(tls_sni_default)                                                                         \
	X(tls_handshake_errors)                                                                    \
	X(tls_client_cert_rejected)                                                                \
	X(tls_client_identities)                                                                   \
	X(tls_identity_unusable)                                                                   \
	X(identity_required)                                                                       \
	X(tls_early_data)                                                                          \
	X(early_data_refused)                                                                      \
	X(upstream_tls_resumed)                                                                    \
	X(client_timeouts)                                                                         \
	X(h2_sessions)                                                                             \
	X(h2_goaway_abuse)                                                                         \
	X(h2_glitches)                                                                             \
	X(h2_client_resets)                                                                        \
	X(h2_protocol_errors)                                                                      \
	X(h2_header_overflow)                                                                      \
	X(h2_flood)                                                                                \
	X(no_route)                                                                                \
	X(no_backend)                                                                              \
	X(upstream_connects)                                                                       \
	X(upstream_reuses)                                                                         \
	X(upstream_errors)                                                                         \
	X(upstream_timeouts)                                                                       \
	X(upstream_retries)                                                                        \
	X(upstream_h2_sessions)                                                                    \
	X(upstream_limit)                                                                          \
	X(backend_ejections)                                                                       \
	X(grpc_deadlines)                                                                          \
	X(streams_cancelled)

struct worker_stats {
#define X(n) uint64_t n;
	WORKER_COUNTERS(X)
#undef X
};

#define STAT_INC(w, n)	  __atomic_store_n(&(w)->st.n, (w)->st.n + 1, __ATOMIC_RELAXED)
#define STAT_DEC(w, n)	  __atomic_store_n(&(w)->st.n, (w)->st.n - 1, __ATOMIC_RELAXED)
#define STAT_ADD(w, n, v) __atomic_store_n(&(w)->st.n, (w)->st.n + (uint64_t)(v), __ATOMIC_RELAXED)

/* --- connections: the transport under every session ----------------------- */

/* What a session on top of a connection provides. */
struct conn_ops {
	/*
	 * Consume c->in and/or produce into c->out (up to CONN_OUT_LIMIT).
	 * Called after reads, after writes made room, and when kicked.
	 * Returns true if anything moved (it is then called again). The
	 * session may close the connection here (conn_close).
	 */
	bool (*process)(struct conn *c);
	/* The transport failed (read/write error, TLS error, EOF handled by
	 * process via c->rd_eof): the session must clean up and conn_close. */
	void (*error)(struct conn *c, int err);
	/* The timer armed with conn_timer_at fired. */
	void (*timeout)(struct conn *c);
	/* Connected (upstream) or TLS handshake done: the session may start. */
	void (*ready)(struct conn *c);
	/* Free the session's state; the conn is freed after this returns. */
	void (*destroy)(struct conn *c);
	/* The worker drains (SIGTERM, upgrade): finish what is in flight,
	 * tell the client to go elsewhere, close. Optional; downstream only. */
	void (*drain)(struct conn *c);
};

#define CONN_IN_LIMIT  (64 * 1024) /* raw input read ahead of the session */
#define CONN_OUT_LIMIT (64 * 1024) /* a session stops producing above this */

struct conn {
	struct loop_io io;
	struct worker *w;
	const struct conn_ops *ops;
	void *sess; /* the session on top (h1s, h2s, h1c, h2c) */
	SSL *ssl;
	struct pipe in, out;
	struct loop_task task; /* conn_kick */
	struct dlist w_link;   /* downstream: in worker.conns */
	struct loop_timer timer;
	uint64_t last_write_ms; /* progress of a stalled writer */
	bool server;		/* accepted (downstream), else upstream */
	bool connecting;	/* upstream connect in progress */
	bool handshaking;	/* TLS handshake in progress */
	bool rd_ready, wr_ready;
	bool rd_eof;			/* peer closed its side (or close_notify) */
	bool want_read;			/* the session takes input now */
	bool closed;			/* conn_close done; memory freed after the iteration */
	bool close_after;		/* conn_close_gracefully: once out is flushed */
	bool lingering;			/* output flushed, write side shut, draining input */
	bool in_process;		/* inside conn_run: defer re-entry */
	bool counted;			/* downstream: counted in the worker's open connections */
	char peer_ip[46];		/* downstream: the client address */
	char tls_desc[24];		/* downstream: "TLSv1.3/full", "TLSv1.2/resumed" */
	char *identity;			/* downstream: the verified client identity, or NULL */
	bool early;			/* downstream: input may still be TLS 0-RTT early data */
	SSL_SESSION **tls_session_slot; /* upstream: where new TLS sessions go */
};

/*
 * Take over an accepted or connecting non-blocking fd: a new connection
 * with TLS over ssl if not NULL (server or client side; the connection
 * owns it), registered with the loop, driving session sess through ops
 * (sess may be set later with conn_set_session). Returns the connection
 * (freed by conn_close), or NULL with the fd closed and ssl freed.
 */
struct conn *conn_new(struct worker *w, int fd, const struct conn_ops *ops, void *sess, SSL *ssl,
		      bool server, bool connecting);

/* Put another session on top (protocol chosen after ALPN or a peek). */
void conn_set_session(struct conn *c, const struct conn_ops *ops, void *sess);

/* Schedule process() (and a flush) in this loop iteration. */
void conn_kick(struct conn *c);

/*
 * Arm (or cancel, at 0) the session's single timer for at_ms. An armed
 * earlier timer is kept: sessions re-check their deadline in ops->timeout
 * and call this again, so a deadline may move later without a heap
 * operation on every read.
 */
void conn_timer_at(struct conn *c, uint64_t at_ms);

/* Close now: cancel timers and tasks, free TLS and pipes, close the fd,
 * call ops->destroy, free memory at the end of the iteration. */
void conn_close(struct conn *c);

/*
 * Close after the output is flushed: shut the write side (TLS close_notify
 * first) and read-and-discard for a while, so a client that is still
 * sending does not get a reset that destroys the response in flight.
 */
void conn_close_gracefully(struct conn *c);

/* TLS: the negotiated ALPN protocol ("h2", "http/1.1", NULL). */
const char *conn_alpn(const struct conn *c, unsigned *len);

/* --- clusters: per-worker runtime of each configured cluster --------------- */

struct h1c;
struct h2c;

struct backend_rt {
	struct l7_upstream *up; /* address and name; a reference of ours */
	struct l7_up_wstat *st; /* this worker's counters in up (the API reads them) */
	struct cluster_rt *cl;
	uint32_t weight;
	bool drain;	     /* in the set, but takes no new requests */
	bool removed;	     /* gone from the set: freed once refs and n_conns are 0 */
	int64_t cw;	     /* smooth weighted round robin: current weight */
	unsigned refs;	     /* streams naming it (stream.backend) */
	unsigned active;     /* streams in flight (least-request) */
	unsigned n_conns;    /* open connections (the limit) */
	unsigned fails;	     /* consecutive failures */
	uint64_t down_until; /* passive health: out until then */
	struct dlist idle;   /* http1: LIFO of idle keepalive connections (h1c) */
	unsigned n_idle;
	struct dlist h2;	  /* h2: its connections (h2c) */
	SSL_SESSION *tls_session; /* the newest TLS session with it, to resume */
	struct dlist retired;	  /* in cluster_rt.retired once removed */
};

/*
 * A cluster inside one worker: a private copy of the current backend set
 * (upstream.h), brought up to date when the worker sees a new version.
 */
struct cluster_rt {
	const struct l7_cluster_cfg *cfg;
	size_t idx;	  /* in the config and in struct l7_upstreams */
	uint64_t version; /* of the set copied into be[] */
	struct backend_rt **be;
	unsigned n_be;
	uint64_t *cum;	      /* cumulative weights, drained ones counting 0 */
	struct dlist retired; /* removed backends still in use */
	SSL_CTX *ssl_ctx;     /* h2 / https: TLS toward the backends, shared by all workers */
};

/* --- the worker -------------------------------------------------------------- */

struct listener;

struct worker {
	struct loop loop;
	int id;
	const struct l7_config *cfg;
	SSL_CTX *ssl_ctx;      /* downstream TLS base context (a reference of ours) */
	SSL_CTX *ssl_ctx_next; /* a reloaded one, handed over by worker_set_tls */
	struct loop_io tls_io; /* ... which rings this */
	SSL_CTX **up_ssl_ctx;  /* per cluster, NULL if not TLS */
	struct bufpool pool;
	struct h1_head_cache heads;
	struct cluster_rt *clusters;
	struct l7_upstreams *ups; /* the backend sets, shared (RCU) */
	struct loop_io ups_io;	  /* rung after a set changed */
	uint64_t log_sec;	  /* the second log_ts was formatted for */
	char log_ts[24];	  /* "2026-11-21T20:48:35" */
	struct listener *listeners;
	size_t n_listeners;
	unsigned n_conns;	       /* downstream connections open */
	struct dlist conns;	       /* ... and the connections themselves */
	bool stopping;		       /* shutting down: no new upstream attempts */
	bool draining;		       /* listeners closed, connections finishing (worker_drain) */
	uint64_t drain_ms;	       /* when the drain began */
	struct loop_timer drain_timer; /* the drain's deadline */
	struct loop_io drain_io;       /* rung by worker_drain */
	bool drain_refuse;	       /* the drain stops the service: take the backlog (atomic) */
	unsigned backlog_open;	       /* listeners a stopping drain still empties */
	bool finished;		       /* worker_run returned (read by main: atomic) */
	uint64_t heartbeat_ms;	       /* loop time of the last turn (main reads: watchdog) */
	bool accept_paused;
	struct loop_timer accept_timer; /* resume after EMFILE */
	struct loop_io stop_io;
	uint64_t rng;
	/* Where a new stream goes: proxy_dispatch (tests put their own). */
	void (*dispatch)(struct stream *s);
	/* HTTP/2: callbacks and options built once per worker. */
	void *h2s_cbs, *h2s_opt, *h2c_cbs, *h2c_opt;
	int log_fd;
	char logbuf[65536];
	size_t loglen;
	unsigned char rnd[4096]; /* request-ID randomness, refilled by getrandom */
	size_t rnd_used;
	struct worker_stats st;
	struct l7_metrics m;
};

/* 32 hex chars of fresh randomness into out (33 bytes, NUL-terminated). */
void worker_reqid(struct worker *w, char *out);

/* A pseudo-random number (xorshift; not for secrets). */
uint64_t worker_rand(struct worker *w);

/* Append one access-log line (flushed after each loop iteration). */
void worker_log(struct worker *w, const char *line, size_t len);

/* A downstream connection closed: count it, resume accepting if paused. */
void worker_conn_closed(struct worker *w);

/*
 * Start serving a freshly accepted socket (conn.c picks the protocol).
 * Returns the connection (it may already be closed: c->closed; memory
 * stays valid until the end of the loop iteration), or NULL.
 */
struct conn *conn_accept(struct worker *w, int fd, const struct sockaddr_storage *peer, bool tls,
			 enum l7_client_auth auth);

/* Downstream sessions, started by conn_accept once the protocol is known. */
void h1s_start(struct conn *c);
int h2s_start(struct conn *c);

/* nghttp2 callbacks and options of a worker (h2_server.c, h2_client.c).
 * 0 or -ENOMEM; fini is safe after a failed init. */
int h2s_worker_init(struct worker *w);
void h2s_worker_fini(struct worker *w);
int h2c_worker_init(struct worker *w);
void h2c_worker_fini(struct worker *w);

/* Bytes an HTTP/2 downstream session holds (nghttp2's own memory, the
 * session, its streams and their buffers); 0 if c is not HTTP/2. */
size_t h2s_mem(const struct conn *c);

/* --- proxy.c: routing and policy -------------------------------------------- */

/*
 * The downstream session has the request head in s: route it, enforce
 * gRPC rules, pick a backend and hand s to an upstream session. Errors
 * are answered on the stream (stream_reply_error).
 */
void proxy_dispatch(struct stream *s);

/* Write the access-log line of a finished stream. */
void proxy_log(struct stream *s);

/* The response head came from a backend: add the proxy's headers. */
void proxy_resp_head(struct stream *s);

/* --- cluster.c -------------------------------------------------------------- */

/*
 * Fields only the proxy may send to a backend: the client identity header
 * and Early-Data, in any spelling that a backend could take for them
 * ('_' for '-'). proxy_reserved_field tells one (name lowercase);
 * proxy_strip_reserved removes them all from h (request headers or
 * trailers) in place.
 */
bool proxy_reserved_field(const struct l7_config *cfg, const char *name, size_t len);
void proxy_strip_reserved(const struct l7_config *cfg, struct l7_hdrs *h);

int clusters_init(struct worker *w);

/*
 * A client SSL toward be when its cluster speaks TLS (SNI, the name to
 * verify, the session to resume), for conn_new; NULL when it does not
 * or on failure (check be->cl->ssl_ctx to tell them apart).
 */
SSL *backend_ssl(struct backend_rt *be);
void clusters_fini(struct worker *w);

/* Copy every cluster's current backend set if it changed (the worker's
 * own thread; also done by cluster_pick). */
void clusters_sync(struct worker *w);

/* A backend for a new attempt, avoiding skip (may be NULL), or NULL when
 * none is healthy and taking requests. */
struct backend_rt *cluster_pick(struct worker *w, struct cluster_rt *cl,
				const struct backend_rt *skip);

/* Passive health: the outcome of an attempt on be. */
void backend_report(struct worker *w, struct backend_rt *be, bool ok);

/* A stream names be / stops naming it. The last release of a removed
 * backend with no connections left frees it. */
void backend_hold(struct backend_rt *be);
void backend_release(struct backend_rt *be);

/* A connection to be opened / closed (counts toward the limit; the last
 * close of a removed backend may free it: do not touch be after). */
void backend_conn_opened(struct backend_rt *be);
void backend_conn_closed(struct backend_rt *be);

/* The in-flight count of be changed by delta (+1 / -1). */
void backend_active(struct backend_rt *be, int delta);

/* --- upstream sessions ----------------------------------------------------- */

/*
 * Hand s to an upstream session toward be (a pooled or new connection).
 * Returns 0, or -EAGAIN when be's connection limit is reached, or -errno
 * when no connection could even be started. On success the upstream side
 * owns the attempt and reports through the stream.
 */
int h1c_attach(struct stream *s, struct backend_rt *be);
int h2c_attach(struct stream *s, struct backend_rt *be);

/* Close every pooled connection of be (worker shutdown). */
void h1c_pool_fini(struct backend_rt *be);
void h2c_pool_fini(struct backend_rt *be);

/* be left the set or is drained: HTTP/2 connections take no new streams
 * and close once their streams are done. (HTTP/1.1: h1c_pool_fini closes
 * the idle ones; busy ones are not pooled again, see h1c.) */
void h2c_pool_retire(struct backend_rt *be);

#endif
