/* SPDX-License-Identifier: GPL-2.0-only */
/* worker.h - the lifecycle of a worker, for main.c. */
#ifndef PORTICO_L7_WORKER_H
#define PORTICO_L7_WORKER_H

#include "proxy.h"

/*
 * Prepare w (caller-owned memory) to serve cfg: loop, listeners bound with
 * SO_REUSEPORT, cluster state. The worker takes its own reference on
 * ssl_ctx (may be NULL). cfg, ups (the backend sets, made for at least
 * id + 1 workers) and up_ssl_ctx (one per cluster, NULL entries for
 * clusters without TLS) are borrowed and must outlive the worker; log_fd
 * (-1 for none) too. listen_fds, if not NULL, has one entry per listener
 * of cfg: a listening socket to serve (taken over from a predecessor: the
 * worker owns it and sets the entry to -1) or -1 to open one. Returns 0
 * or -errno (logged); call worker_fini either way.
 */
int worker_init(struct worker *w, int id, const struct l7_config *cfg, struct l7_upstreams *ups,
		SSL_CTX *ssl_ctx, SSL_CTX **up_ssl_ctx, int log_fd, int *listen_fds);

/*
 * Drain w (thread-safe): close its listeners, let every connection finish
 * what it has in flight (HTTP/2 clients get GOAWAY, HTTP/1.1 responses
 * "Connection: close"), cut what is left after cfg->drain_timeout_ms.
 * worker_run returns when no connection is left; worker_finished says so.
 * handover: a successor holds the same listening sockets and accepts what
 * waits in their queues; if false the service stops, and w first shuts
 * its listeners to new handshakes and accepts the connections already
 * queued, which closing would reset.
 */
void worker_drain(struct worker *w, bool handover);

/* The listening socket of w's listener i (i < w->n_listeners), still
 * w's: for handing it over (takeover.h). */
int worker_listen_fd(const struct worker *w, size_t i);

/* Whether w's thread has left worker_run (thread-safe). */
static inline bool worker_finished(const struct worker *w)
{
	return __atomic_load_n(&w->finished, __ATOMIC_ACQUIRE);
}

/* A backend set in ups was replaced: w takes it at once (thread-safe). */
void worker_upstreams_changed(struct worker *w);

/* The thread body: serves until worker_stop(). arg is the worker. */
void *worker_run(void *arg);

/* Ask a running worker to return from worker_run (thread-safe). */
void worker_stop(struct worker *w);

/* Release what worker_init acquired (open connections are dropped). */
void worker_fini(struct worker *w);

/*
 * Hand w a new downstream TLS base context (thread-safe; takes its own
 * reference). The worker switches at its next loop turn: new connections
 * use it, connections in flight keep the one they started with.
 */
void worker_set_tls(struct worker *w, SSL_CTX *ctx);

/* Read one counter of w from another thread. */
#define WORKER_STAT(w, n) __atomic_load_n(&(w)->st.n, __ATOMIC_RELAXED)

#endif
