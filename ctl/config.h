/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * config.h - lbd's configuration file (libconfig syntax), parsed into a
 * fresh struct lbd_config that the caller applies only if it is complete
 * and valid: a bad file never touches the running state.
 * docs/configuration.md is the reference.
 */
#ifndef PORTICO_LBD_CONFIG_H
#define PORTICO_LBD_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "l4lb.h"

enum lbd_role { LBD_ROLE_L4LB, LBD_ROLE_L7 };

struct lbd_real_cfg {
	struct lb_addr addr;
	uint32_t weight;
};

/* How the reals of a VIP are checked (docs/configuration.md, "health"). */
enum lbd_hc_kind {
	LBD_HC_NONE = 0, /* no checks: every real counts as up */
	LBD_HC_TCP,	 /* a TCP connect */
	LBD_HC_HTTP,	 /* GET path, expect a status (over TLS if tls) */
	LBD_HC_GRPC,	 /* grpc.health.v1.Health/Check over HTTP/2 (TLS if tls) */
};

struct lbd_health_cfg {
	enum lbd_hc_kind kind;
	bool tls;
	uint16_t port; /* where probes go on the VIP; defaults to the VIP's port */
	uint32_t interval_ms;
	uint32_t fast_interval_ms; /* between probes while a state change is pending */
	uint32_t timeout_ms;
	uint32_t rise, fall;
	uint32_t expect_status; /* kind http */
	char path[256];		/* kind http */
	char host[256];		/* Host / :authority and TLS SNI ("" = the VIP) */
	char service[128];	/* kind grpc: HealthCheckRequest.service */
};

struct lbd_vip_cfg {
	struct l4lb_vip_key key;
	uint32_t flags; /* LB_VIP_F_* (hash = "3-tuple", encap = "gue") */
	struct lbd_real_cfg *reals;
	size_t n_reals;
	struct lbd_health_cfg health;
	/* BGP: the VIP's address is announced while every VIP on it has at
	 * least this many reals that are up with a non-zero weight. */
	uint32_t min_healthy;
};

struct lbd_bgp_neighbor_cfg {
	struct lb_addr addr;
	struct lb_addr local; /* family 0: chosen by the kernel */
	uint16_t port;
	uint32_t asn;
	bool passive;	    /* wait for the peer to connect */
	bool ipv4, ipv6;    /* address families to negotiate and announce */
	uint32_t hold_time; /* seconds we propose: 0 or >= 3 (RFC 4271 4.2) */
	char description[64];
};

struct lbd_bgp_cfg {
	bool enabled;
	uint32_t asn;
	struct lb_addr router_id;	     /* IPv4; family 0: the interface's IPv4 address */
	struct lb_addr next_hop4, next_hop6; /* family 0: the interface's */
	uint16_t listen_port;		     /* passive accept; 0: none */
	uint32_t connect_retry_ms;
	uint32_t gr_restart_time; /* seconds (RFC 4724), 0: no graceful restart */
	uint32_t drain_delay_ms;  /* GRACEFUL_SHUTDOWN before a drain's withdraw */
	struct lbd_bgp_neighbor_cfg *neighbors;
	size_t n_neighbors;
};

/*
 * Role l7: where lbd pulls the proxy's backend sets from, the "upstreams"
 * group (docs/configuration.md). The URL is split here, at load time, so a
 * bad one is a config error naming its line.
 */
struct lbd_upstreams_cfg {
	bool enabled;
	char url[1024]; /* as written: for messages and the API */
	bool https;
	char host[256];		/* a name, or an address literal without brackets */
	uint16_t port;		/* the URL's, or 80 / 443 */
	char target[1024];	/* path and query: what the GET asks for */
	uint32_t interval_ms;	/* from the start of one poll to the next */
	uint32_t timeout_ms;	/* for the whole fetch: resolve, connect, TLS, answer */
	char proxy_socket[108]; /* the l7proxy's admin socket */
	char ca_file[256];	/* https: trust anchors ("" = the system store) */
};

struct lbd_config {
	enum lbd_role role;
	char pop[64];
	char host[64];
	char interface[16];
	char admin_socket[108];
	/* "IP:PORT" where GET /metrics is also served, over TCP ("" = none) */
	char metrics_listen[64];
	int xdp_generic; /* 1: generic (skb) XDP instead of native */
	uint32_t ring_size;
	uint32_t hash_seed;
	uint32_t flow_hash; /* LB_FLOW_HASH_V1 or _V2 (lb_hash.h) */
	uint32_t gue_port;  /* GUE's UDP port: the l4lb encapsulates to it, the l7 decap takes it */
	uint32_t conn_max;
	uint32_t conn_cache_slots; /* role l4lb: conn_cache slots per CPU */
	char pin_dir[256];	   /* role l4lb: bpffs directory ("" = no pinning) */
	struct lbd_bgp_cfg bgp;	   /* role l4lb */
	struct lbd_vip_cfg *vips;  /* role l4lb */
	size_t n_vips;
	struct lb_addr *vip_addrs; /* role l7: addresses to serve on lo */
	size_t n_vip_addrs;
	struct lb_addr *lb_addrs; /* role l7: the PoP's LBs, the only outer sources decap takes */
	size_t n_lb_addrs;
	struct lbd_upstreams_cfg upstreams; /* role l7 */
};

#define LBD_WEIGHT_MAX 10000

/*
 * Parse the file at path into *out (zeroed first). Returns 0, or -EINVAL
 * (also for I/O errors) with a malloc'd message "path:line: reason" in
 * *err that the caller frees. On error *out holds nothing to free.
 */
int lbd_config_load(const char *path, struct lbd_config *out, char **err);

/* Same, from a string; name is used in messages. */
int lbd_config_parse(const char *text, const char *name, struct lbd_config *out, char **err);

/* The health settings a VIP gets when its config says nothing. */
void lbd_health_default(struct lbd_health_cfg *h, const struct l4lb_vip_key *k);

/* Free what a successful load allocated. */
void lbd_config_free(struct lbd_config *cfg);

#endif
