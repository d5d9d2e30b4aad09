/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * speaker.h - lbd's BGP speaker: announces this LB's VIP prefixes (/32,
 * /128) to its routers and withdraws them, nothing more. It never installs
 * what peers send (an LB has no use for it) but checks every message.
 *
 * One session per configured neighbour, each an RFC 4271 §8 state machine
 * (session.c) running in lbd's event loop: active connects and passive
 * accepts (collisions resolved per §6.8), OPEN with capabilities for
 * IPv4/IPv6 unicast (RFC 4760), 4-octet AS (RFC 6793), route refresh
 * (RFC 2918) and graceful restart (RFC 4724) with the forwarding bit set:
 * the XDP dataplane keeps forwarding while lbd restarts.
 *
 * The owner says which prefixes are healthy (bgp_speaker_set_prefixes);
 * the speaker announces those, minus drained ones: a drained prefix is
 * first announced with the GRACEFUL_SHUTDOWN community (RFC 8326) so the
 * routers move traffic away, and withdrawn drain_delay_ms later.
 */
#ifndef PORTICO_BGP_SPEAKER_H
#define PORTICO_BGP_SPEAKER_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "loop.h"

struct bgp_speaker;

struct bgp_speaker_params {
	const struct lbd_bgp_cfg *cfg;	     /* copied */
	uint32_t router_id;		     /* host order, non-zero */
	struct lb_addr next_hop4, next_hop6; /* family 0: that family has no next hop */
	bool restarted; /* lbd adopted a running dataplane: OPEN says R (RFC 4724 3) */
	/* The dataplane outlives lbd (pinned): graceful restart's F bit. */
	bool forwarding_preserved;
};

/* A VIP address and whether it may be announced (enough healthy reals). */
struct bgp_vip_prefix {
	struct lb_addr addr;
	bool healthy;
};

/*
 * Start a speaker in loop with p. Returns it (caller frees) or NULL with a
 * malloc'd message in *err (e.g. the listening port is taken).
 */
struct bgp_speaker *bgp_speaker_new(struct loop *loop, const struct bgp_speaker_params *p,
				    char **err);

/*
 * Apply new parameters (reload): neighbours that went away get a Cease
 * (Peer De-configured), new ones start, those whose settings changed are
 * reset with a Cease (Other Configuration Change); the rest are untouched.
 * Returns 0, or -errno with *err (then nothing changed).
 */
int bgp_speaker_reconfigure(struct bgp_speaker *sp, const struct bgp_speaker_params *p, char **err);

/*
 * Every VIP address of the LB (host routes; copied), each with whether it
 * may be announced now. Sessions get UPDATEs for the difference only; an
 * address no longer listed is withdrawn and forgotten (its drain too).
 */
void bgp_speaker_set_prefixes(struct bgp_speaker *sp, const struct bgp_vip_prefix *p, size_t n);

/*
 * Drain (on) or undrain one prefix, or all of them when pfx is NULL
 * (the whole LB). A drain marks the routes GRACEFUL_SHUTDOWN at once and
 * withdraws them after drain_delay_ms; undrain announces them again.
 * Returns 0 or -ENOENT (a prefix this speaker does not know).
 */
int bgp_speaker_drain(struct bgp_speaker *sp, const struct lb_addr *pfx, bool on);

/*
 * Close every session. cease: send a Cease (Administrative Shutdown,
 * RFC 4486) first, so peers drop the routes at once; otherwise just close
 * the connections, so peers that negotiated graceful restart keep the
 * routes for the restart time while the dataplane forwards (a restart).
 */
void bgp_speaker_stop(struct bgp_speaker *sp, bool cease);

/* Free (stop with cease=false first if not yet stopped). NULL is fine. */
void bgp_speaker_free(struct bgp_speaker *sp);

/* For the admin API: new JSON values owned by the caller. */
json_t *bgp_speaker_neighbors_json(struct bgp_speaker *sp);
json_t *bgp_speaker_routes_json(struct bgp_speaker *sp);

#endif
