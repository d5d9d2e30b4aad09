/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * health.h - health checks of the reals, through the encapsulation.
 *
 * A probe leaves this LB addressed to the VIP, like a client's packet,
 * from a socket marked LB_HC_MARK_BASE | real id; the balancer's tc egress
 * program (lb_hc_encap) encapsulates it toward that real exactly as XDP
 * does for clients, and the real answers from the VIP straight back (DSR).
 * So a real whose decap, VIP-on-lo or proxy is broken fails its check, as
 * it would fail clients.
 *
 * Kinds (struct lbd_health_cfg): a TCP connect; an HTTP/1.1 GET expecting
 * a status, optionally over TLS; a gRPC grpc.health.v1.Health/Check over
 * HTTP/2 (h2c, or TLS with ALPN h2) expecting SERVING.
 *
 * Each (VIP, real) pair is one check with one probe in flight at most, a
 * deadline per probe and rise/fall counting (struct hc_fsm). Everything
 * runs in the caller's event loop and never blocks it.
 */
#ifndef PORTICO_HEALTH_H
#define PORTICO_HEALTH_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "loop.h"

enum hc_state {
	HC_UNKNOWN = 0, /* no verdict yet: not in the ring, not counted by BGP */
	HC_UP,
	HC_DOWN,
	HC_UNCHECKED, /* kind "none": counts as up */
};

const char *hc_state_name(enum hc_state s);

/*
 * Rise and fall counting, apart from any I/O so it can be tested alone.
 * UNKNOWN (a new real, or a fresh lbd) comes UP on its first success, so
 * a starting LB serves as soon as it can, and goes DOWN after `fall`
 * consecutive failures, so one lost SYN at start is not a verdict; UP
 * goes DOWN after `fall` consecutive failures, DOWN comes UP after `rise`
 * consecutive successes; a result that agrees with the state clears the
 * streak.
 */
struct hc_fsm {
	enum hc_state state;
	uint32_t streak; /* consecutive results against the state */
};

/* Feed one result (ok or not); true if the state changed. */
bool hc_fsm_feed(struct hc_fsm *f, bool ok, uint32_t rise, uint32_t fall);

/* What one check is asked to do (health_set_targets copies it). */
struct hc_target {
	struct l4lb_vip_key vip;
	struct lb_addr real;
	uint32_t mark;	       /* SO_MARK of the probe socket */
	enum hc_state initial; /* state of a new check (UNKNOWN, or UP/DOWN adopted) */
	const struct lbd_health_cfg *cfg;
};

/* What a check knows (health_get). */
struct hc_info {
	enum hc_state state;
	bool last_ok;
	char last_result[128];	 /* "ok", "HTTP 503", "connect: Connection refused", ... */
	uint64_t last_probe_ms;	 /* wall clock, ms since the epoch; 0 = never */
	uint64_t last_change_ms; /* wall clock of the last state change; 0 = never */
	uint32_t latency_us;	 /* of the last probe that got an answer */
	uint64_t ok, failed;	 /* probes so far */
};

struct health;

/* Called on every state change of a check (UNKNOWN -> UP included). */
typedef void (*health_change_fn)(void *ctx, const struct l4lb_vip_key *vip,
				 const struct lb_addr *real, enum hc_state from, enum hc_state to);

/*
 * A checker running in loop, reporting changes to fn(ctx, ...). Returns it
 * (caller frees with health_free) or NULL with errno set.
 */
struct health *health_new(struct loop *loop, health_change_fn fn, void *ctx);

/* Stop every probe (sockets closed at once) and free. NULL is fine. */
void health_free(struct health *h);

/*
 * Make the set of checks exactly t[0..n): a pair already checked keeps its
 * state and history (its config and mark are updated; a changed config
 * restarts its probing but not its state), new pairs start in
 * t->initial, pairs not in t stop. Reports no changes. 0 or -ENOMEM (then
 * nothing changed).
 */
int health_set_targets(struct health *h, const struct hc_target *t, size_t n);

/* The state of one pair: 0, or -ENOENT if it is not checked. */
int health_get(const struct health *h, const struct l4lb_vip_key *vip, const struct lb_addr *real,
	       struct hc_info *out);

#endif
