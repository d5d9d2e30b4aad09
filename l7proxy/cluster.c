// SPDX-License-Identifier: GPL-2.0-only
/*
 * cluster.c - a cluster's backends inside one worker: which one takes the
 * next attempt, and passive health.
 *
 * Balancing: round robin over the healthy backends, or least-request with
 * two random choices (pick two healthy backends at random, take the one
 * with fewer streams in flight: nearly as good as the global minimum at a
 * fraction of the cost, and no herd on one backend when several workers
 * decide at once).
 *
 * Passive health: fail_threshold consecutive failures (connect failures,
 * resets, broken responses; not timeouts of a slow backend) take a backend
 * out for backoff_ms; any response head brings the count back to zero.
 * When every backend is out, requests fail fast with "no healthy backend"
 * rather than queueing behind a dead cluster.
 */
#include "log.h"
#include "proxy.h"
#include "tls.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int clusters_init(struct worker *w)
{
	const struct l7_config *cfg = w->cfg;

	w->clusters = calloc(cfg->n_clusters, sizeof(*w->clusters));
	if (!w->clusters)
		return -ENOMEM;
	for (size_t i = 0; i < cfg->n_clusters; i++) {
		struct cluster_rt *cl = &w->clusters[i];

		cl->cfg = &cfg->clusters[i];
		cl->ssl_ctx = w->up_ssl_ctx ? w->up_ssl_ctx[i] : NULL;
		cl->be = calloc(cl->cfg->n_backends, sizeof(*cl->be));
		if (!cl->be)
			return -ENOMEM;
		cl->n_be = (unsigned)cl->cfg->n_backends;
		/* Workers start at different backends. */
		cl->rr = (unsigned)w->id % cl->n_be;
		for (unsigned b = 0; b < cl->n_be; b++) {
			cl->be[b].cfg = &cl->cfg->backends[b];
			cl->be[b].cl = cl;
			dlist_init(&cl->be[b].idle);
			dlist_init(&cl->be[b].h2);
		}
	}
	return 0;
}

void clusters_fini(struct worker *w)
{
	for (size_t i = 0; w->clusters && i < w->cfg->n_clusters; i++) {
		struct cluster_rt *cl = &w->clusters[i];

		for (unsigned b = 0; cl->be && b < cl->n_be; b++) {
			h1c_pool_fini(&cl->be[b]);
			h2c_pool_fini(&cl->be[b]);
			if (cl->be[b].tls_session)
				SSL_SESSION_free(cl->be[b].tls_session);
		}
		free(cl->be);
	}
	free(w->clusters);
	w->clusters = NULL;
}

SSL *backend_ssl(struct backend_rt *be)
{
	SSL *ssl;

	if (!be->cl->ssl_ctx)
		return NULL;
	ssl = SSL_new(be->cl->ssl_ctx);
	if (!ssl)
		return NULL;
	if (l7_tls_client_setup(ssl, be->cl->cfg->tls_sni)) {
		SSL_free(ssl);
		return NULL;
	}
	/* Resume the last session with this backend: a reconnect costs one
	 * round trip and no signature. */
	if (be->tls_session)
		SSL_set_session(ssl, be->tls_session);
	return ssl;
}

static bool healthy(const struct worker *w, const struct backend_rt *be)
{
	return be->down_until <= w->loop.now_ms;
}

struct backend_rt *cluster_pick(struct worker *w, struct cluster_rt *cl,
				const struct backend_rt *skip)
{
	unsigned n = cl->n_be, cand[2], k = 0;

	if (cl->cfg->balance == L7_BALANCE_LEAST_REQUEST && n > 1) {
		/* Two random draws among the healthy ones (skip avoided while
		 * there is another choice). */
		for (unsigned tries = 0; tries < 4 * n && k < 2; tries++) {
			unsigned b = (unsigned)(worker_rand(w) % n);

			if (!healthy(w, &cl->be[b]) || (&cl->be[b] == skip) || (k && cand[0] == b))
				continue;
			cand[k++] = b;
		}
		if (k == 2)
			return cl->be[cand[0]].active <= cl->be[cand[1]].active ? &cl->be[cand[0]]
										: &cl->be[cand[1]];
		if (k == 1)
			return &cl->be[cand[0]];
		/* Few healthy backends: the round-robin scan finds them. */
	}
	for (int pass = 0; pass < 2; pass++) {
		for (unsigned i = 0; i < n; i++) {
			unsigned b = (cl->rr + i) % n;
			struct backend_rt *be = &cl->be[b];

			if (!healthy(w, be) || (pass == 0 && be == skip && n > 1))
				continue;
			cl->rr = b + 1;
			return be;
		}
	}
	return NULL;
}

void backend_report(struct worker *w, struct backend_rt *be, bool ok)
{
	const struct l7_cluster_cfg *cc = be->cl->cfg;

	if (ok) {
		be->fails = 0;
		return;
	}
	be->fails++;
	if (cc->fail_threshold && be->fails >= cc->fail_threshold && cc->backoff_ms) {
		be->down_until = w->loop.now_ms + cc->backoff_ms;
		be->fails = 0;
		STAT_INC(w, backend_ejections);
		log_warn("worker %d: cluster %s: backend %s out for %u ms after %u consecutive "
			 "failures",
			 w->id, cc->name, be->cfg->name, cc->backoff_ms, cc->fail_threshold);
	}
}
