/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * probe.h - active health checks of the backends of clusters that have a
 * health = { ... } group (config.h struct l7_health_cfg).
 *
 * The probes run in the main thread's event loop, beside the admin API,
 * never in a worker: each backend gets one probe every interval_ms, on a
 * new connection, in the cluster's own protocol (HTTP/1.1 for http1 and
 * https clusters, HTTP/2 for h2c and h2; TLS with the cluster's CA, SNI
 * and client certificate when the cluster uses TLS), ended by a deadline
 * of timeout_ms. Type "http" sends GET path and passes on the expected
 * status; type "grpc" calls grpc.health.v1.Health/Check and passes on
 * SERVING.
 *
 * Verdicts go into the backend's struct l7_up_active (upstream.h):
 *   unchecked --pass--> up          (a new backend takes traffic at once)
 *   unchecked/up --`fall` failures in a row--> down
 *   down --`rise` passes in a row--> up
 * and the workers skip a backend that is down when they pick (cluster.c),
 * unless no backend is left (fail open).
 *
 * The probes follow the backend sets: l7_probes_sync, called after every
 * published set, gives new backends a probe and stops those of removed
 * ones; a kept backend keeps its probe and its state. A probe holds a
 * reference on its struct l7_upstream.
 */
#ifndef PORTICO_L7_PROBE_H
#define PORTICO_L7_PROBE_H

#include "loop.h"
#include "upstream.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct l7_probes;

/*
 * Probes for every cluster of cfg with active health, run in loop, over
 * the current sets of ups (a first l7_probes_sync is done here). loop, cfg
 * and ups are borrowed and must outlive the result; call only from the
 * thread that runs loop and publishes the sets. Returns the probes (free
 * with l7_probes_free), or NULL with errno set and the reason logged (no
 * memory; a cluster's TLS context could not be built).
 */
struct l7_probes *l7_probes_new(struct loop *loop, const struct l7_config *cfg,
				struct l7_upstreams *ups);

/*
 * Bring the probes in line with the current sets (after
 * l7_upstreams_publish): new backends get a probe (their first within a
 * second), removed ones lose theirs (a probe in flight is dropped without
 * a verdict and its reference released). O(backends). ps may be NULL.
 * Returns 0, or -ENOMEM if some new backend got no probe (it stays
 * unchecked, taking traffic; the next sync tries again).
 */
int l7_probes_sync(struct l7_probes *ps);

/* Stop every probe and free ps (NULL is fine), before loop_fini. */
void l7_probes_free(struct l7_probes *ps);

/*
 * The rise/fall state machine: count one verdict (ok or not) in a and move
 * its state (stored atomically for the workers). rise and fall are >= 1.
 * Returns true if the state changed.
 */
bool l7_active_feed(struct l7_up_active *a, bool ok, uint32_t rise, uint32_t fall);

#endif
