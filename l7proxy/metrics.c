// SPDX-License-Identifier: GPL-2.0-only
#include "metrics.h"
#include "grpc_health.h"
#include "proxy.h"
#include "worker.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* From a cache hit to a slow backend's timeout: 1 ms .. 30 s. */
const double l7m_bounds[L7M_BUCKETS] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
					0.5,   1,      2.5,   5,    10,	   30,	 60};

#define GRPC_NONE	   17
#define GRPC_UNIMPLEMENTED 12

const char *l7m_grpc_code_name(unsigned code)
{
	const char *n = grpc_code_name(code);

	return n ? n : "none";
}

int l7m_init(struct l7_metrics *m, const struct l7_config *cfg)
{
	memset(m, 0, sizeof(*m));
	m->n_routes = cfg->n_routes;
	m->routes = calloc(cfg->n_routes + 1, sizeof(*m->routes));
	return m->routes ? 0 : -ENOMEM;
}

void l7m_fini(struct l7_metrics *m)
{
	free(m->routes);
	m->routes = NULL;
}

/* The one writer's increment, readable from another thread. */
#define BUMP(x, v) __atomic_store_n(&(x), (x) + (uint64_t)(v), __ATOMIC_RELAXED)
#define READ(x)	   __atomic_load_n(&(x), __ATOMIC_RELAXED)

static uint64_t mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static void observe(struct l7m_hist *h, uint64_t us)
{
	size_t i = prom_bucket_index(l7m_bounds, L7M_BUCKETS, (double)us / 1e6);

	BUMP(h->b[i], 1);
	BUMP(h->sum_us, us);
}

void l7m_stream_new(struct worker *w, struct stream *s)
{
	s->t_start_us = mono_us();
	BUMP(w->m.streams_open, 1);
}

/* grpc-status of a finished gRPC stream, GRPC_NONE if it has none. */
static unsigned grpc_code(const struct stream *s)
{
	const struct l7_hdr *gs = stream_grpc_status(s);
	unsigned v = 0;

	if (!gs || !gs->value_len || gs->value_len > 2)
		return GRPC_NONE;
	for (size_t i = 0; i < gs->value_len; i++) {
		if (gs->value[i] < '0' || gs->value[i] > '9')
			return GRPC_NONE;
		v = v * 10 + (unsigned)(gs->value[i] - '0');
	}
	return v <= 16 ? v : GRPC_NONE;
}

/* The slot for name (a method or an identity): found, newly taken while
 * there is room and take is true, or NULL. */
static char *slot(char *base, size_t stride, unsigned *n, unsigned cap, const char *name,
		  size_t len, bool take)
{
	unsigned k = *n;

	if (len >= L7M_NAME)
		return NULL;
	for (unsigned i = 0; i < k; i++) {
		char *e = base + i * stride;

		if (strncmp(e, name, len) == 0 && e[len] == '\0')
			return e;
	}
	if (!take || k >= cap)
		return NULL;
	memcpy(base + k * stride, name, len);
	(base + k * stride)[len] = '\0';
	/* The name is whole before the reader may count the slot. */
	__atomic_store_n(n, k + 1, __ATOMIC_RELEASE);
	return base + k * stride;
}

/* "/package.Service/Method": what a gRPC method looks like; anything else
 * a client makes up is not worth a series of its own. */
static bool method_like(const char *p, size_t len)
{
	size_t slashes = 0;

	if (len < 4 || p[0] != '/' || p[len - 1] == '/')
		return false;
	for (size_t i = 1; i < len; i++) {
		char c = p[i];

		if (c == '/') {
			if (p[i - 1] == '/' || ++slashes > 1)
				return false;
		} else if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			     (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-')) {
			return false;
		}
	}
	return slashes == 1;
}

void l7m_stream_done(struct worker *w, const struct stream *s)
{
	struct l7_metrics *m = &w->m;
	size_t ri = s->route ? (size_t)(s->route - w->cfg->routes) : m->n_routes;
	struct l7m_route *r = &m->routes[ri < m->n_routes ? ri : m->n_routes];
	uint64_t us = mono_us() - s->t_start_us;
	unsigned cls = s->status >= 100 && s->status < 600 ? (unsigned)s->status / 100 : 0;

	BUMP(m->streams_open, -1);
	BUMP(r->status[cls], 1);
	observe(&r->lat, us);
	if (s->grpc) {
		unsigned code = grpc_code(s);
		struct l7m_method *mm = NULL;

		BUMP(r->grpc[code], 1);
		/* A slot only for a method a backend answered (the proxy's own
		 * replies, e.g. UNAUTHENTICATED or UNAVAILABLE, say nothing of
		 * whether it exists) and that is not UNIMPLEMENTED. */
		if (s->path && s->status && method_like(s->path, s->path_len))
			mm = (struct l7m_method *)slot(
			    (char *)m->methods, sizeof(m->methods[0]), &m->n_methods, L7M_METHODS,
			    s->path, s->path_len,
			    !s->proxy_reply && code != GRPC_UNIMPLEMENTED && code != GRPC_NONE);
		if (!mm)
			mm = &m->other_method;
		observe(&mm->lat, us);
		if (code != 0)
			BUMP(mm->errors, 1);
	}
	if (s->identity) {
		struct l7m_ident *id = (struct l7m_ident *)slot(
		    (char *)m->idents, sizeof(m->idents[0]), &m->n_idents, L7M_IDENTITIES,
		    s->identity, strlen(s->identity), true);

		BUMP((id ? id : &m->other_ident)->requests, 1);
	}
}

/* --- rendering (the admin thread) ------------------------------------------- */

static void route_label(const struct l7_config *cfg, size_t ri, char *buf, size_t len)
{
	if (ri >= cfg->n_routes) {
		snprintf(buf, len, "none");
		return;
	}
	snprintf(buf, len, "%s%s", cfg->routes[ri].authority[0] ? cfg->routes[ri].authority : "*",
		 cfg->routes[ri].path_prefix);
}

static void hist_sum(struct l7m_hist *acc, const struct l7m_hist *h)
{
	for (size_t i = 0; i <= L7M_BUCKETS; i++)
		acc->b[i] += READ(h->b[i]);
	acc->sum_us += READ(h->sum_us);
}

/* A name's slots summed over the workers, "other" last. */
struct named {
	char name[L7M_NAME];
	struct l7m_hist lat;
	uint64_t a; /* errors or requests */
};

static size_t named_add(struct named *v, size_t n, size_t cap, const char *name,
			const struct l7m_hist *lat, uint64_t a)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(v[i].name, name) == 0)
			break;
	if (i == n) {
		if (n == cap) /* cannot happen: cap is every worker's slots */
			return n;
		snprintf(v[n++].name, L7M_NAME, "%s", name);
	}
	if (lat)
		hist_sum(&v[i].lat, lat);
	v[i].a += a;
	return n;
}

void l7m_render(struct prom_buf *b, const struct l7_config *cfg, struct worker *workers, unsigned n)
{
	static const char *const cls_names[L7M_STATUS_CLASSES] = {"none", "1xx", "2xx",
								  "3xx",  "4xx", "5xx"};
	size_t nr = cfg->n_routes + 1, cap = (size_t)n * L7M_METHODS + 1;
	struct l7m_route *acc = calloc(nr, sizeof(*acc));
	struct named *meth = calloc(cap, sizeof(*meth));
	struct named *ids = calloc((size_t)n * L7M_IDENTITIES + 1, sizeof(*ids));
	size_t n_meth = 0, n_ids = 0;
	uint64_t open = 0;
	char route[600];

	if (!acc || !meth || !ids) {
		b->err = ENOMEM; /* sticky: prom_finish fails, no partial page */
		goto out;
	}
	for (unsigned wi = 0; wi < n; wi++) {
		struct l7_metrics *m = &workers[wi].m;
		unsigned k;

		open += READ(m->streams_open);
		for (size_t ri = 0; ri < nr; ri++) {
			for (size_t c = 0; c < L7M_STATUS_CLASSES; c++)
				acc[ri].status[c] += READ(m->routes[ri].status[c]);
			for (size_t c = 0; c < L7M_GRPC_CODES; c++)
				acc[ri].grpc[c] += READ(m->routes[ri].grpc[c]);
			hist_sum(&acc[ri].lat, &m->routes[ri].lat);
		}
		k = __atomic_load_n(&m->n_methods, __ATOMIC_ACQUIRE);
		for (unsigned i = 0; i < k; i++)
			n_meth = named_add(meth, n_meth, cap - 1, m->methods[i].name,
					   &m->methods[i].lat, READ(m->methods[i].errors));
		k = __atomic_load_n(&m->n_idents, __ATOMIC_ACQUIRE);
		for (unsigned i = 0; i < k; i++)
			n_ids = named_add(ids, n_ids, (size_t)n * L7M_IDENTITIES, m->idents[i].name,
					  NULL, READ(m->idents[i].requests));
	}
	/* "other" last; it also takes what found no slot in any worker. */
	snprintf(meth[n_meth].name, L7M_NAME, "other");
	snprintf(ids[n_ids].name, L7M_NAME, "other");
	for (unsigned wi = 0; wi < n; wi++) {
		hist_sum(&meth[n_meth].lat, &workers[wi].m.other_method.lat);
		meth[n_meth].a += READ(workers[wi].m.other_method.errors);
		ids[n_ids].a += READ(workers[wi].m.other_ident.requests);
	}

	prom_family(b, "portico_l7_streams_open", PROM_GAUGE,
		    "Requests (HTTP/1.1 requests and HTTP/2 streams) in progress.");
	prom_sample_u64(b, PROM_NO_LABELS, open);

	prom_family(b, "portico_l7_requests_total", PROM_COUNTER,
		    "Finished requests by route and status class (none: the client left before "
		    "a response).");
	for (size_t ri = 0; ri < nr; ri++) {
		const char *cl =
		    ri < cfg->n_routes ? cfg->clusters[cfg->routes[ri].cluster].name : "none";

		route_label(cfg, ri, route, sizeof(route));
		for (size_t c = 0; c < L7M_STATUS_CLASSES; c++)
			prom_sample_u64(
			    b,
			    PROM_LABELS("route", route, "cluster", cl, "code_class", cls_names[c]),
			    acc[ri].status[c]);
	}

	prom_family(b, "portico_l7_request_duration_seconds", PROM_HISTOGRAM,
		    "Time from the request's start to its end, by route.");
	for (size_t ri = 0; ri < nr; ri++) {
		const char *cl =
		    ri < cfg->n_routes ? cfg->clusters[cfg->routes[ri].cluster].name : "none";

		route_label(cfg, ri, route, sizeof(route));
		prom_sample_histogram(b, PROM_LABELS("route", route, "cluster", cl), l7m_bounds,
				      L7M_BUCKETS, acc[ri].lat.b, (double)acc[ri].lat.sum_us / 1e6);
	}

	prom_family(b, "portico_l7_grpc_responses_total", PROM_COUNTER,
		    "Finished gRPC calls by route and grpc-status (codes seen so far).");
	for (size_t ri = 0; ri < nr; ri++) {
		const char *cl =
		    ri < cfg->n_routes ? cfg->clusters[cfg->routes[ri].cluster].name : "none";

		route_label(cfg, ri, route, sizeof(route));
		for (unsigned c = 0; c < L7M_GRPC_CODES; c++)
			if (acc[ri].grpc[c])
				prom_sample_u64(b,
						PROM_LABELS("route", route, "cluster", cl,
							    "grpc_code", l7m_grpc_code_name(c)),
						acc[ri].grpc[c]);
	}

	prom_family(b, "portico_l7_grpc_method_duration_seconds", PROM_HISTOGRAM,
		    "gRPC call time by method (at most 32 methods per worker, then \"other\").");
	for (size_t i = 0; i <= n_meth; i++)
		prom_sample_histogram(b, PROM_LABELS("method", meth[i].name), l7m_bounds,
				      L7M_BUCKETS, meth[i].lat.b, (double)meth[i].lat.sum_us / 1e6);

	prom_family(b, "portico_l7_grpc_method_errors_total", PROM_COUNTER,
		    "gRPC calls by method that ended with a grpc-status other than OK.");
	for (size_t i = 0; i <= n_meth; i++)
		prom_sample_u64(b, PROM_LABELS("method", meth[i].name), meth[i].a);

	prom_family(b, "portico_l7_client_identity_requests_total", PROM_COUNTER,
		    "Requests by verified client certificate identity (at most 32 per worker, "
		    "then \"other\").");
	for (size_t i = 0; i <= n_ids; i++)
		prom_sample_u64(b, PROM_LABELS("identity", ids[i].name), ids[i].a);
out:
	free(acc);
	free(meth);
	free(ids);
}
