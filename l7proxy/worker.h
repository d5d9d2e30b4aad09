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
 * (-1 for none) too. Returns 0 or -errno (logged); call worker_fini
 * either way.
 */
int worker_init(struct worker *w, int id, const struct l7_config *cfg, struct l7_upstreams *ups,
		SSL_CTX *ssl_ctx, SSL_CTX **up_ssl_ctx, int log_fd);

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
