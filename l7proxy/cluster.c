// SPDX-License-Identifier: GPL-2.0-only
/*
 * cluster.c - a cluster's backends inside one worker: which one takes the
 * next attempt, passive health, and the copy of the current backend set.
 *
 * Backend sets change at run time (upstream.h). Each worker keeps its own
 * struct backend_rt per backend (pools, in-flight counts, health) and, when
 * it sees a new version of the set, matches the new members to the ones it
 * has by their struct l7_upstream: kept backends keep their connections and
 * health; new ones start empty; removed ones leave the balancing at once,
 * close their idle connections, and stay (on cl->retired) until the last
 * stream naming them and the last connection to them are gone, so requests
 * in flight finish on the backend they started on.
 *
 * Balancing: smooth weighted round robin over the healthy backends that are
 * not drained, or least-request with two random choices drawn by weight
 * (take the one with fewer streams in flight per unit of weight: nearly as
 * good as the global minimum at a fraction of the cost, and no herd on one
 * backend when several workers decide at once).
 *
 * Passive health: fail_threshold consecutive failures (connect failures,
 * resets, broken responses; not timeouts of a slow backend) take a backend
 * out for backoff_ms; any response head brings the count back to zero.
 * When every backend is out, requests fail fast with "no healthy backend"
 * rather than queueing behind a dead cluster.
 *
 * Active health (probe.h, the main thread's probes) is a flag per backend
 * read on each pick: a backend the probes have down takes no new request,
 * like a drained one, and its connections stay. A backend is used when
 * active health does not have it down and passive health does not have
 * it out. When active health leaves nothing, it is ignored (fail open).
 */
#include "log.h"
#include "proxy.h"
#include "tls.h"

#include <errno.h>
#include <urcu/urcu-memb.h>
#include <stdlib.h>
#include <string.h>

/* The counters the API reads: this worker's slot, relaxed stores. */
#define PUB(be, field, v) __atomic_store_n(&(be)->st->field, (v), __ATOMIC_RELAXED)

static struct backend_rt *backend_new(struct worker *w, struct cluster_rt *cl,
				      struct l7_upstream *up)
{
	struct backend_rt *be = calloc(1, sizeof(*be));

	if (!be)
		return NULL;
	l7_upstream_get(up);
	be->up = up;
	be->st = &up->st[w->id];
	be->cl = cl;
	dlist_init(&be->idle);
	dlist_init(&be->h2);
	dlist_init(&be->retired);
	return be;
}

static void backend_free(struct backend_rt *be)
{
	if (be->tls_session)
		SSL_SESSION_free(be->tls_session);
	if (be->removed)
		dlist_del(&be->retired);
	l7_upstream_put(be->up);
	free(be);
}

static void maybe_free(struct backend_rt *be)
{
	if (be->removed && !be->refs && !be->n_conns)
		backend_free(be);
}

/* No new requests for be: close what is idle, let the rest finish. */
static void quiesce(struct backend_rt *be)
{
	h1c_pool_fini(be);
	h2c_pool_retire(be);
}

static void retire(struct cluster_rt *cl, struct backend_rt *be)
{
	be->removed = true;
	dlist_push(&cl->retired, &be->retired);
	/* The counters belong to the set now: this worker has nothing more
	 * on it that the API should show as in flight once it is gone. */
	be->refs++; /* quiesce may close connections, which may free it */
	quiesce(be);
	be->refs--;
	maybe_free(be);
}

/* Rebuild cl's backends from set s (inside an RCU read-side section).
 * All or nothing: on -ENOMEM the old copy stays and the next pick retries. */
static int rebuild(struct worker *w, struct cluster_rt *cl, const struct l7_upset *s)
{
	size_t n = s->n ? s->n : 1;
	struct backend_rt **nb = calloc(n, sizeof(*nb));
	uint64_t *cum = calloc(n, sizeof(*cum));
	unsigned *from = calloc(n, sizeof(*from));
	uint64_t total = 0;
	int rc = -ENOMEM;

	if (!nb || !cum || !from)
		goto out;
	/* Match first, allocate what is new, and only then take anything
	 * from the old copy. O(n * m): sets are small and updates rare next
	 * to requests. */
	for (size_t i = 0; i < s->n; i++) {
		from[i] = UINT32_MAX;
		for (unsigned j = 0; j < cl->n_be; j++)
			if (cl->be[j]->up == s->m[i].up) {
				from[i] = j;
				break;
			}
		if (from[i] == UINT32_MAX && !(nb[i] = backend_new(w, cl, s->m[i].up))) {
			for (size_t k = 0; k < i; k++)
				if (from[k] == UINT32_MAX)
					backend_free(nb[k]);
			goto out;
		}
	}
	for (size_t i = 0; i < s->n; i++) {
		struct backend_rt *be = nb[i];
		bool was_taking;

		if (from[i] != UINT32_MAX) {
			be = nb[i] = cl->be[from[i]];
			cl->be[from[i]] = NULL;
		}
		was_taking = be->weight && !be->drain;
		be->weight = s->m[i].weight;
		be->drain = s->m[i].drain;
		if (be->drain && was_taking)
			quiesce(be);
		total += be->drain ? 0 : be->weight;
		cum[i] = total;
	}
	for (unsigned j = 0; j < cl->n_be; j++)
		if (cl->be[j])
			retire(cl, cl->be[j]);
	free(cl->be);
	free(cl->cum);
	cl->be = nb;
	cl->cum = cum;
	nb = NULL;
	cum = NULL;
	cl->n_be = (unsigned)s->n;
	cl->version = s->version;
	rc = 0;
out:
	free(nb);
	free(cum);
	free(from);
	return rc;
}

static void cluster_sync(struct worker *w, struct cluster_rt *cl)
{
	const struct l7_upset *s;

	urcu_memb_read_lock();
	s = rcu_dereference(w->ups->cur[cl->idx]);
	if (s->version != cl->version && rebuild(w, cl, s))
		log_warn("worker %d: cluster %s: out of memory taking backend set version %llu",
			 w->id, cl->cfg->name, (unsigned long long)s->version);
	urcu_memb_read_unlock();
}

void clusters_sync(struct worker *w)
{
	for (size_t i = 0; i < w->cfg->n_clusters; i++)
		cluster_sync(w, &w->clusters[i]);
}

int clusters_init(struct worker *w)
{
	const struct l7_config *cfg = w->cfg;

	w->clusters = calloc(cfg->n_clusters ? cfg->n_clusters : 1, sizeof(*w->clusters));
	if (!w->clusters)
		return -ENOMEM;
	for (size_t i = 0; i < cfg->n_clusters; i++)
		dlist_init(&w->clusters[i].retired); /* clusters_fini walks them all */
	for (size_t i = 0; i < cfg->n_clusters; i++) {
		struct cluster_rt *cl = &w->clusters[i];
		int rc;

		cl->cfg = &cfg->clusters[i];
		cl->idx = i;
		cl->ssl_ctx = w->up_ssl_ctx ? w->up_ssl_ctx[i] : NULL;
		cl->version = UINT64_MAX; /* no set copied yet */
		urcu_memb_read_lock();
		rc = rebuild(w, cl, rcu_dereference(w->ups->cur[i]));
		urcu_memb_read_unlock();
		if (rc)
			return rc;
		/* Workers start at different backends. */
		for (unsigned b = 0; b < cl->n_be; b++)
			cl->be[b]->cw = (int64_t)((b + (unsigned)w->id) % cl->n_be);
	}
	return 0;
}

void clusters_fini(struct worker *w)
{
	for (size_t i = 0; w->clusters && i < w->cfg->n_clusters; i++) {
		struct cluster_rt *cl = &w->clusters[i];

		/* Closing a pool may free a removed backend (its last
		 * connection): hold every one until all are closed. */
		for (unsigned b = 0; b < cl->n_be; b++)
			cl->be[b]->refs++;
		for (struct dlist *l = cl->retired.next; l && l != &cl->retired; l = l->next)
			container_of(l, struct backend_rt, retired)->refs++;
		for (unsigned b = 0; b < cl->n_be; b++) {
			h1c_pool_fini(cl->be[b]);
			h2c_pool_fini(cl->be[b]);
		}
		for (struct dlist *l = cl->retired.next; l && l != &cl->retired; l = l->next) {
			struct backend_rt *be = container_of(l, struct backend_rt, retired);

			h1c_pool_fini(be);
			h2c_pool_fini(be);
		}
		/* Connections are closed (their frees happen in loop_fini, but
		 * they no longer name the backends): free every backend now. */
		for (unsigned b = 0; b < cl->n_be; b++)
			backend_free(cl->be[b]);
		while (cl->retired.next && !dlist_empty(&cl->retired))
			backend_free(container_of(cl->retired.next, struct backend_rt, retired));
		free(cl->be);
		free(cl->cum);
	}
	free(w->clusters);
	w->clusters = NULL;
}

void backend_hold(struct backend_rt *be)
{
	be->refs++;
}

void backend_release(struct backend_rt *be)
{
	be->refs--;
	maybe_free(be);
}

void backend_conn_opened(struct backend_rt *be)
{
	be->n_conns++;
	PUB(be, conns, be->n_conns);
}

void backend_conn_closed(struct backend_rt *be)
{
	be->n_conns--;
	PUB(be, conns, be->n_conns);
	maybe_free(be);
}

void backend_active(struct backend_rt *be, int delta)
{
	be->active += (unsigned)delta;
	PUB(be, active, be->active);
	if (delta > 0)
		PUB(be, requests, be->st->requests + 1);
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

/* Healthy and not drained: may take a new request. Active health counts
 * unless panic (no backend passes it and the rest: see cluster_pick). */
static bool takes(const struct worker *w, const struct backend_rt *be, bool panic)
{
	return !be->drain && be->down_until <= w->loop.now_ms &&
	       (panic || l7_upstream_active_ok(be->up));
}

/* A backend drawn at random in proportion to its weight (drained ones
 * weigh 0), or NULL when none weighs anything. */
static struct backend_rt *draw(struct worker *w, const struct cluster_rt *cl)
{
	uint64_t total = cl->cum[cl->n_be - 1], r;
	unsigned lo = 0, hi = cl->n_be - 1;

	if (!total)
		return NULL;
	r = worker_rand(w) % total;
	while (lo < hi) {
		unsigned mid = lo + (hi - lo) / 2;

		if (cl->cum[mid] > r)
			hi = mid;
		else
			lo = mid + 1;
	}
	return cl->be[lo];
}

static struct backend_rt *pick(struct worker *w, struct cluster_rt *cl,
			       const struct backend_rt *skip, bool panic)
{
	unsigned n = cl->n_be, k = 0;
	struct backend_rt *cand[2];

	if (!n)
		return NULL;
	if (cl->cfg->balance == L7_BALANCE_LEAST_REQUEST && n > 1) {
		/* Two draws among those taking requests (skip avoided while
		 * there is another choice). */
		for (unsigned tries = 0; tries < 4 * n && k < 2; tries++) {
			struct backend_rt *be = draw(w, cl);

			if (!be)
				break;
			if (!takes(w, be, panic) || be == skip || (k && cand[0] == be))
				continue;
			cand[k++] = be;
		}
		/* Fewer in flight per unit of weight wins. */
		if (k == 2)
			return (uint64_t)cand[0]->active * cand[1]->weight <=
				       (uint64_t)cand[1]->active * cand[0]->weight
				   ? cand[0]
				   : cand[1];
		if (k == 1)
			return cand[0];
		/* Few takers: the scan below finds them. */
	}
	/* Smooth weighted round robin (as nginx): each taker gains its
	 * weight, the richest is chosen and pays the total back. Weights
	 * 5,1,1 give a a b a c a a, not a a a a a b c. */
	for (int pass = 0; pass < 2; pass++) {
		struct backend_rt *best = NULL;
		int64_t total = 0;

		for (unsigned i = 0; i < n; i++) {
			struct backend_rt *be = cl->be[i];

			if (!takes(w, be, panic) || (pass == 0 && be == skip && n > 1))
				continue;
			be->cw += be->weight;
			total += be->weight;
			if (!best || be->cw > best->cw)
				best = be;
		}
		if (best) {
			best->cw -= total;
			return best;
		}
	}
	return NULL;
}

struct backend_rt *cluster_pick(struct worker *w, struct cluster_rt *cl,
				const struct backend_rt *skip)
{
	struct backend_rt *be;

	cluster_sync(w, cl);
	be = pick(w, cl, skip, false);
	/* Fail open, as Envoy's panic mode: when active health leaves no
	 * backend, balance as if there were no probes (drain and passive
	 * health still apply). Probes that fail everywhere at once more
	 * often mean a broken check, or a network problem between this
	 * proxy and the backends, than a whole cluster down; and if it is
	 * down, the requests fail as they would have anyway. The second
	 * scan costs only when nothing was found. */
	if (!be)
		be = pick(w, cl, skip, true);
	return be;
}

void backend_report(struct worker *w, struct backend_rt *be, bool ok)
{
	const struct l7_cluster_cfg *cc = be->cl->cfg;

	if (ok) {
		be->fails = 0;
		return;
	}
	PUB(be, failures, be->st->failures + 1);
	be->fails++;
	if (cc->fail_threshold && be->fails >= cc->fail_threshold && cc->backoff_ms) {
		be->down_until = w->loop.now_ms + cc->backoff_ms;
		PUB(be, down_until, be->down_until);
		be->fails = 0;
		STAT_INC(w, backend_ejections);
		log_warn("worker %d: cluster %s: backend %s out for %u ms after %u consecutive "
			 "failures",
			 w->id, cc->name, be->up->name, cc->backoff_ms, cc->fail_threshold);
	}
}
