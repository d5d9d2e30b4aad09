/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * lbd.h - state shared by lbd's main loop and its roles.
 *
 * lbd runs on every host of a PoP in the role its config names: "l4lb"
 * (loads and programs the XDP balancer) or "l7" (attaches the decap
 * program, keeps the VIPs on lo). Each role is a table of callbacks.
 */
#ifndef PORTICO_LBD_H
#define PORTICO_LBD_H

#include <stdbool.h>

#include "config.h"
#include "http_admin.h"
#include "loop.h"

struct lbd;

struct lbd_role_ops {
	const char *name;
	/* Bring the role up with d->cfg. 0 or -errno (message logged). */
	int (*start)(struct lbd *d);
	/* Move the running state to next (valid, parsed). The role takes
	 * over next's contents on success. All or nothing: on failure the
	 * running state is put back and -errno returned with err set; -EIO
	 * only if even that failed. */
	int (*apply)(struct lbd *d, struct lbd_config *next, char **err);
	/* Periodic upkeep (neighbour entries and the like), every
	 * LBD_TICK_MS by elapsed time, whatever else the loop is doing. */
	void (*tick)(struct lbd *d);
	/* Stop. teardown: remove the dataplane too (lbctl shutdown);
	 * otherwise an l4lb with pinned maps leaves it forwarding for the
	 * next lbd to adopt (a restart). */
	void (*stop)(struct lbd *d, bool teardown);
	/* Optional: lbctl shutdown is coming; tell the world (BGP Cease)
	 * and return how long to keep forwarding while it listens (ms). */
	uint32_t (*shutdown_begin)(struct lbd *d);
	const struct admin_route *routes;
};

struct lbd {
	const char *config_path;
	struct lbd_config cfg;
	const struct lbd_role_ops *role;
	int ifindex;
	void *role_state;
	struct loop loop;	/* everything runs in it */
	struct loop_io sig_io;	/* signalfd: SIGHUP, SIGINT, SIGTERM */
	struct loop_timer tick; /* the role's periodic upkeep */
	uint64_t last_tick_ms;	/* when it last ran (0: not yet) */
	struct admin_server *admin;
	struct loop_timer quit; /* lbctl shutdown: stop once the reply is out */
	bool teardown;		/* stop with teardown (see lbd_role_ops.stop) */
};

#define LBD_TICK_MS 5000

extern const struct lbd_role_ops lbd_l4_role;
extern const struct lbd_role_ops lbd_l7_role;

/* Admin handlers every role serves (status, reload). */
int lbd_api_status(void *ctx, const struct admin_req *req, json_t **out);
int lbd_api_reload(void *ctx, const struct admin_req *req, json_t **out);
/* POST /v1/shutdown: answer, then stop and tear the dataplane down. */
int lbd_api_shutdown(void *ctx, const struct admin_req *req, json_t **out);
/* GET /metrics: the Prometheus text exposition of the role's state
 * (docs/api.md, "Metrics"); on the admin socket and metrics_listen. */
int lbd_api_metrics(void *ctx, const struct admin_req *req, json_t **out);

/* What the metrics read of the roles' private state. l4lb: its balancer,
 * checks and BGP speaker (borrowed; *bgp NULL without a bgp section). */
struct health;
struct bgp_speaker;
void lbd_l4_parts(struct lbd *d, struct l4lb **lb, struct health **hc, struct bgp_speaker **bgp);
/* l7: the decap program's counters summed over CPUs; 0 or -errno. */
int lbd_l7_decap_stats(struct lbd *d, struct lb_counter out[LB_DCNT_MAX]);

/* Reload the config file; keeps the running config on any error. 0, or
 * -errno with a malloc'd message in *err (-EIO: the rollback failed too,
 * the running state is between the two configs). */
int lbd_reload(struct lbd *d, char **err);

/* JSON helpers shared by the role APIs. */
json_t *lbd_counter_json(const struct lb_counter *c);
int lbd_vip_from_json(json_t *o, struct l4lb_vip_key *k, char *msg, size_t len);
json_t *lbd_vip_json(const struct l4lb_vip_key *k);

#endif
