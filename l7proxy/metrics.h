/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * metrics.h - what the proxy counts per request for Prometheus: requests
 * by route and status class, latency histograms per route and per gRPC
 * method, gRPC status codes, requests per client identity.
 *
 * Each worker keeps its own tables (struct l7_metrics), written only by
 * that worker with relaxed atomic stores and read by the admin thread,
 * which sums the workers when it renders /metrics (main.c). Nothing on
 * the request path is shared or locked.
 *
 * Cardinality is bounded whatever clients send: routes come from the
 * config; gRPC methods and client identities fill at most L7M_METHODS /
 * L7M_IDENTITIES slots per worker, the rest count as "other". A method
 * gets a slot only once a backend answered it with something else than
 * UNIMPLEMENTED, so made-up method names cannot take the slots.
 */
#ifndef PORTICO_L7_METRICS_H
#define PORTICO_L7_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "prom.h"

struct worker;
struct stream;
struct l7_config;

/* Latency bucket upper bounds, seconds. */
#define L7M_BUCKETS	   15
#define L7M_GRPC_CODES	   18 /* 0..16, and 17 for "no grpc-status" */
#define L7M_STATUS_CLASSES 6  /* 0: no response (client left), 1xx..5xx */
#define L7M_METHODS	   32
#define L7M_IDENTITIES	   32
#define L7M_NAME	   128

extern const double l7m_bounds[L7M_BUCKETS];

struct l7m_hist {
	uint64_t b[L7M_BUCKETS + 1]; /* per bucket, not cumulative */
	uint64_t sum_us;
};

struct l7m_route {
	uint64_t status[L7M_STATUS_CLASSES];
	uint64_t grpc[L7M_GRPC_CODES];
	struct l7m_hist lat;
};

struct l7m_method {
	char name[L7M_NAME]; /* written once, before n_methods counts it */
	struct l7m_hist lat;
	uint64_t errors; /* grpc-status other than OK */
};

struct l7m_ident {
	char name[L7M_NAME];
	uint64_t requests;
};

struct l7_metrics {
	size_t n_routes;	  /* routes[n_routes] is "no route matched" */
	struct l7m_route *routes; /* n_routes + 1 */
	unsigned n_methods;	  /* release-stored after a slot's name */
	struct l7m_method methods[L7M_METHODS];
	struct l7m_method other_method;
	unsigned n_idents;
	struct l7m_ident idents[L7M_IDENTITIES];
	struct l7m_ident other_ident;
	uint64_t streams_open; /* gauge */
};

/* Tables for cfg's routes. 0 or -ENOMEM. m is caller-owned memory. */
int l7m_init(struct l7_metrics *m, const struct l7_config *cfg);
void l7m_fini(struct l7_metrics *m);

/* A stream was created (stream.c): count it and stamp its start for the
 * latency histograms (s->t_start_us). */
void l7m_stream_new(struct worker *w, struct stream *s);
/* A stream finished: count it where it belongs. */
void l7m_stream_done(struct worker *w, const struct stream *s);

/*
 * Append the request families to b, summing workers[0..n) (another
 * thread's tables, read with atomic loads). cfg names the routes.
 */
void l7m_render(struct prom_buf *b, const struct l7_config *cfg, struct worker *workers,
		unsigned n);

/* The gRPC status code's name ("OK", "UNAVAILABLE"; "none" for 17). */
const char *l7m_grpc_code_name(unsigned code);

#endif
