/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * upstream.h - the backends of every cluster as immutable snapshots that
 * the admin API replaces while the workers serve (no reload).
 *
 * One writer (the main thread's admin loop) builds a new set, checks its
 * version, publishes it with rcu_assign_pointer and frees the old one after
 * a grace period (liburcu, memb flavour). Workers read the current set
 * inside an RCU read-side section, and only to notice a new version and
 * copy what they need into their own per-backend state (cluster.c): the
 * request path takes no lock and shares no writable cache line.
 *
 * A backend address is a refcounted, immutable struct l7_upstream shared by
 * every set that lists it and by each worker's state for it, so its
 * counters survive updates that keep it, and a worker that still has
 * requests or connections on a removed backend keeps it alive.
 */
#ifndef PORTICO_L7_UPSTREAM_H
#define PORTICO_L7_UPSTREAM_H

#include "config.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#define L7_UP_MAX_BACKENDS 4096
#define L7_UP_MAX_WEIGHT   10000
/* Versions stay exact in any JSON reader (2^53), and leave room above. */
#define L7_UP_MAX_VERSION (1ULL << 53)

/* One worker's counters for one backend, written by that worker only
 * (relaxed atomics: the API reads them from another thread). A cache line
 * each, so workers never write the same line. */
struct l7_up_wstat {
	uint64_t requests;   /* attempts sent to it */
	uint64_t failures;   /* attempts that failed (connect, reset, protocol) */
	uint64_t down_until; /* passive health: out until then (CLOCK_MONOTONIC ms) */
	uint32_t active;     /* streams in flight */
	uint32_t conns;	     /* open connections */
} __attribute__((aligned(64)));

/* A backend's active health (probe.h). */
enum l7_active_state {
	L7_ACTIVE_UNCHECKED = 0, /* no verdict yet, or no probes: takes traffic */
	L7_ACTIVE_UP,
	L7_ACTIVE_DOWN, /* out of the balancing (unless no backend is left) */
};

/*
 * What the probes know of a backend. state is the one field the workers
 * read (a relaxed atomic load on every pick: a flag, nothing is published
 * through it). The rest is the main thread's alone: the probes write it
 * and the admin API, which runs in the same loop, reads it. A write there
 * once per probe interval costs the workers one cache miss per interval,
 * nothing next to their picks. Living in struct l7_upstream, the state
 * stays with a backend that a new set keeps, and a re-added backend
 * starts afresh.
 */
struct l7_up_active {
	uint32_t state;		/* enum l7_active_state; atomic */
	uint32_t ok_streak;	/* consecutive passes */
	uint32_t fail_streak;	/* consecutive failures */
	uint64_t last_check_ms; /* CLOCK_MONOTONIC ms of the last verdict; 0 = none */
	uint64_t probes;	/* verdicts */
	uint64_t failures;	/* failed verdicts */
	char last_error[96];	/* why the last failed probe failed ("" = none yet) */
	void *probe;		/* probe.c's handle (main thread), NULL when unprobed */
};

struct l7_upstream {
	unsigned refs; /* atomic */
	struct sockaddr_storage addr;
	socklen_t addr_len;
	char name[64]; /* canonical: "10.0.5.2:8080", "[2001:db8::5]:443" */
	unsigned n_workers;
	struct l7_up_active active;
	struct l7_up_wstat st[]; /* one per worker */
};

/*
 * May active health send new requests to up? True unless its probes have
 * it down. Any thread; no lock (the request path calls it on each pick).
 */
static inline bool l7_upstream_active_ok(const struct l7_upstream *up)
{
	return __atomic_load_n(&up->active.state, __ATOMIC_RELAXED) != L7_ACTIVE_DOWN;
}

struct l7_member {
	struct l7_upstream *up; /* a reference of the set's */
	uint32_t weight;	/* 1..L7_UP_MAX_WEIGHT */
	bool drain;		/* no new requests; in-flight ones finish */
};

/* A cluster's backend set. Immutable once published. */
struct l7_upset {
	uint64_t version; /* strictly increasing per cluster */
	int64_t since;	  /* when it was published (Unix seconds) */
	const char *source;
	size_t n;
	struct l7_member m[];
};

/* Every cluster's current set: one per process, shared with the workers. */
struct l7_upstreams {
	const struct l7_config *cfg; /* borrowed: the cluster names and order */
	unsigned n_workers;
	size_t n;	       /* = cfg->n_clusters */
	struct l7_upset **cur; /* RCU pointers, one per cluster */
	uint64_t updates;      /* sets published */
	uint64_t refused;      /* updates refused (stale, invalid) */
};

/*
 * The process's sets, each cluster at version 0 with its configured
 * backends (weight 1). cfg is borrowed and must outlive the result.
 * Returns NULL on allocation failure.
 */
struct l7_upstreams *l7_upstreams_new(const struct l7_config *cfg, unsigned n_workers);

/* Free everything (after the workers stopped). NULL is fine. */
void l7_upstreams_free(struct l7_upstreams *u);

/* A cluster's index by name, or -1. */
int l7_upstreams_find(const struct l7_upstreams *u, const char *name);

/* Take / drop a reference on up (thread-safe). The last drop frees it. */
void l7_upstream_get(struct l7_upstream *up);
void l7_upstream_put(struct l7_upstream *up);

/*
 * Writer side (one thread). The current set of cluster ci, readable
 * without a read lock by the only thread that replaces it.
 */
const struct l7_upset *l7_upstreams_current(const struct l7_upstreams *u, size_t ci);

/*
 * Build the set that doc describes, for cluster ci:
 *   {"version": N, "backends": [{"address": "ADDR:PORT", "weight": W,
 *                                "drain": false}, ...]}
 * weight defaults to 1 and drain to false; a bare "ADDR:PORT" string is
 * accepted for an element. version is required. Addresses already in the
 * current set keep their struct l7_upstream (and counters).
 * Returns the new set (the caller owns it: l7_upstreams_publish or
 * l7_upset_free), or NULL with a message naming the field in err.
 */
struct l7_upset *l7_upset_parse(const struct l7_upstreams *u, size_t ci, const json_t *doc,
				char *err, size_t errlen);

/*
 * A copy of the current set with one backend changed: added (when absent)
 * or updated with weight (0 = keep, or 1 for a new one) and drain (-1 =
 * keep, 0, 1); or removed when remove is true (it must exist). version 0
 * means current + 1. NULL with err on a bad address, an unknown backend
 * to remove, a bad weight or a full set.
 */
struct l7_upset *l7_upset_edit(const struct l7_upstreams *u, size_t ci, const char *addr,
			       uint32_t weight, int drain, bool remove, uint64_t version, char *err,
			       size_t errlen);

/* Release a set that was never published (or NULL). */
void l7_upset_free(struct l7_upset *s);

/*
 * Make next (owned by the caller until then) the current set of cluster ci
 * if its version is greater than the current one; then wait for the
 * readers of the old set (synchronize_rcu) and free it. source names who
 * sent it (static string). Returns 0, or -ESTALE with a message (next is
 * freed either way).
 */
int l7_upstreams_publish(struct l7_upstreams *u, size_t ci, struct l7_upset *next,
			 const char *source, char *err, size_t errlen);

/*
 * Cluster ci as JSON for the API: name, protocol, balance, version, since,
 * source and each backend with weight, drain, health (workers that have it
 * out by passive health), active streams, connections, requests and
 * failures summed over the workers, and active_health (the probes' state,
 * streaks, last check and error, counts). Writer thread only (the probes'
 * fields are that thread's). Returns a new reference.
 */
json_t *l7_upstreams_cluster_json(const struct l7_upstreams *u, size_t ci, uint64_t now_ms);

#endif
