/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * proxy.h - internals shared by the proxy's files: the worker (one thread
 * and one epoll per core), client connections (conn.c), upstream
 * connections and their keepalive pools (upstream.c).
 *
 * Nothing here is shared between workers except the read-only config and
 * the SSL_CTX: each worker accepts on its own SO_REUSEPORT listeners and
 * owns its connections and pools, so the request path takes no locks.
 */
#ifndef PORTICO_L7_PROXY_H
#define PORTICO_L7_PROXY_H

#include <http_parser.h>
#include <openssl/ssl.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "http1.h"
#include "timer.h"

struct worker;

/* Anything registered with epoll starts with this. */
struct ev {
	int fd;
	void (*cb)(struct worker *w, struct ev *ev, uint32_t events);
	uint32_t interest; /* current epoll mask, to skip no-op epoll_ctl */
	bool dead;	   /* closed: ignore its events, free after the batch */
	struct ev *grave_next;
};

/* A byte buffer: valid data in [head, tail). */
struct buf {
	char *p;
	size_t cap, head, tail;
};

static inline size_t buf_len(const struct buf *b)
{
	return b->tail - b->head;
}

/* Free space at the tail (an empty buffer starts again at the front). */
static inline size_t buf_space(struct buf *b)
{
	if (b->head == b->tail)
		b->head = b->tail = 0;
	return b->cap - b->tail;
}

#define CONN_BUF 32768 /* each of a client connection's four buffers */

struct upstream_pool;
struct uconn;

struct worker_stats {
	uint64_t accepted, requests, tls_handshakes, tls_resumed, bad_requests;
	uint64_t upstream_connects, upstream_reuses, upstream_errors, upstream_timeouts;
};

struct worker {
	int id;
	int epfd;
	int stop_fd; /* eventfd: the main thread asks the worker to stop */
	const struct l7_config *cfg;
	SSL_CTX *ssl_ctx;
	uint64_t now;
	struct timer_list t_client, t_connect, t_upstream, t_idle;
	struct upstream_pool *pools; /* one per backend */
	unsigned rr;		     /* round-robin position */
	void *listeners;	     /* struct listener[], worker.c */
	size_t n_listeners;
	int log_fd;
	char logbuf[65536];
	size_t loglen;
	unsigned char rnd[4096]; /* request-ID randomness, refilled by getrandom */
	size_t rnd_used;
	struct worker_stats st;
	struct ev *graveyard;
};

/* epoll helpers: register or change ev's interest (no-op if unchanged). */
int worker_watch(struct worker *w, struct ev *ev, uint32_t events);
void worker_unwatch(struct worker *w, struct ev *ev);

/*
 * Free ev's memory (it must be the start of a malloc'd block) after the
 * current epoll batch: a later event of the same batch may still name it.
 */
void worker_bury(struct worker *w, struct ev *ev);

/* 32 hex chars of fresh randomness into out (33 bytes, NUL-terminated). */
void worker_reqid(struct worker *w, char *out);

/* Append one access-log line (flushed after each epoll batch). */
void worker_log(struct worker *w, const char *line, size_t len);

/* Start serving a freshly accepted socket (conn.c). */
void conn_accept(struct worker *w, int fd, const struct sockaddr_storage *peer, bool tls);

/* --- upstream.c --- */

struct uconn {
	struct ev ev;
	struct worker *w;
	void *owner; /* the client connection, NULL while idle */
	unsigned backend;
	bool connected;
	bool reused; /* came from the idle pool */
	bool rd_ready, wr_ready;
	struct timer timer;
	struct uconn *idle_prev, *idle_next;
};

/* Callbacks from upstream.c into conn.c. */
void conn_upstream_event(struct uconn *u, uint32_t events);
void conn_upstream_timeout(struct uconn *u);

int upstream_init(struct worker *w);
void upstream_fini(struct worker *w);

/*
 * Get a connection to the next backend in round-robin order (an idle one
 * if the pool has one, else a new non-blocking connect), owned by owner.
 * skip is a backend to avoid (the one that just failed) or -1. Returns
 * NULL (errno set) if no backend could even be tried.
 */
struct uconn *upstream_get(struct worker *w, void *owner, int skip);

/* Give a connection back: to the idle pool if reusable, else closed. */
void upstream_put(struct uconn *u, bool reusable);

/* Arm u's inactivity timer (connect or I/O timeout, by state). */
void upstream_touch(struct uconn *u);

#endif
