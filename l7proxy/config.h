/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * config.h - l7proxy's configuration file (libconfig syntax). Parsed whole
 * into a fresh struct before anything uses it; errors name file, line and
 * reason. docs/configuration.md is the reference.
 *
 * The struct is immutable once loaded: workers read it without locks (and
 * a reload will swap whole snapshots).
 */
#ifndef PORTICO_L7_CONFIG_H
#define PORTICO_L7_CONFIG_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* Client certificates on a TLS listener. */
enum l7_client_auth {
	L7_CLIENT_AUTH_NONE,	/* not asked for */
	L7_CLIENT_AUTH_REQUEST, /* asked for; none is fine, a bad one fails */
	L7_CLIENT_AUTH_REQUIRE, /* a verified one or the handshake fails */
};

struct l7_listener_cfg {
	struct sockaddr_storage addr;
	socklen_t addr_len;
	bool tls;
	enum l7_client_auth client_auth;
	char name[64]; /* "0.0.0.0:443" for logs */
};

struct l7_backend_cfg {
	struct sockaddr_storage addr;
	socklen_t addr_len;
	char name[64]; /* "10.0.5.2:8080" */
};

enum l7_proto {
	L7_PROTO_HTTP1, /* HTTP/1.1 keepalive pool */
	L7_PROTO_H2C,	/* HTTP/2 cleartext, prior knowledge */
	L7_PROTO_H2,	/* HTTP/2 over TLS (ALPN h2) */
	L7_PROTO_HTTPS, /* HTTP/1.1 over TLS, keepalive pool */
};

/* Does a cluster of this protocol speak HTTP/1.1 to its backends? */
static inline bool l7_proto_h1(int p)
{
	return p == L7_PROTO_HTTP1 || p == L7_PROTO_HTTPS;
}

/* Does a cluster of this protocol speak TLS to its backends? */
static inline bool l7_proto_tls(int p)
{
	return p == L7_PROTO_H2 || p == L7_PROTO_HTTPS;
}

enum l7_balance {
	L7_BALANCE_ROUND_ROBIN,
	L7_BALANCE_LEAST_REQUEST, /* the less loaded of two random choices */
};

/* Active health checks of a cluster's backends (probe.h). */
enum l7_health_type {
	L7_HEALTH_NONE, /* no probes: passive health only */
	L7_HEALTH_HTTP, /* GET path over the cluster's protocol; the status must be expect */
	L7_HEALTH_GRPC, /* grpc.health.v1.Health/Check(service) must say SERVING */
};

struct l7_health_cfg {
	enum l7_health_type type;
	char path[256];	      /* http: request path, starts with '/' */
	char host[256];	      /* Host / :authority; "" = the backend's address */
	char service[128];    /* grpc: HealthCheckRequest.service ("" = the server) */
	uint32_t expect;      /* http: the status that passes */
	uint32_t interval_ms; /* probe start to probe start */
	uint32_t timeout_ms;  /* < interval_ms: one probe in flight at a time */
	uint32_t rise;	      /* consecutive passes that bring a down backend back */
	uint32_t fall;	      /* consecutive failures that take a backend down */
};

struct l7_cluster_cfg {
	char name[64];
	enum l7_proto proto;
	enum l7_balance balance;
	struct l7_backend_cfg *backends;
	size_t n_backends;
	uint32_t connect_timeout_ms;
	uint32_t idle_timeout_ms;    /* an idle pooled connection is closed after */
	uint32_t request_timeout_ms; /* request sent -> response head (0 = none); not gRPC */
	uint32_t max_connections;    /* per worker and backend */
	uint32_t max_idle;	     /* http1: idle connections kept per worker and backend */
	uint32_t max_streams;	     /* h2: streams per connection (and the peer's limit) */
	uint32_t ping_interval_ms;   /* h2: PING a connection silent this long */
	uint32_t ping_timeout_ms;    /* h2: no answer to a PING: the connection is dead */
	uint32_t fail_threshold;     /* consecutive failures that take a backend out */
	uint32_t backoff_ms;	     /* ... for this long */
	char tls_ca[256];	     /* h2/https: CA bundle for verifying the backends */
	char tls_sni[256];	     /* h2/https: server name sent and verified */
	char tls_cert[256];	     /* h2/https: client certificate (mTLS), "" = none */
	char tls_key[256];
	bool tls_verify;
	struct l7_health_cfg health; /* type L7_HEALTH_NONE without a health group */
};

struct l7_route_cfg {
	char authority[256]; /* "" = any; "*.example.com" = any subdomain */
	char path_prefix[256];
	unsigned cluster;		  /* index into l7_config.clusters */
	uint32_t grpc_default_timeout_ms; /* deadline of calls that carry none (0 = none) */
	uint32_t grpc_max_timeout_ms;	  /* cap on any call's deadline (0 = none) */
	bool require_identity;		  /* 403 / UNAUTHENTICATED without a client cert */
	bool early_data;		  /* idempotent requests may come in TLS 0-RTT */
};

enum l7_forwarded {
	L7_FORWARDED_REPLACE, /* drop the client's X-Forwarded-* / Forwarded / X-Real-IP */
	L7_FORWARDED_APPEND,  /* trust them: append to X-Forwarded-For, keep the rest */
};

struct l7_client_cfg {
	uint32_t header_timeout_ms; /* the whole request head */
	uint32_t body_timeout_ms;   /* no request body progress */
	uint32_t idle_timeout_ms;   /* keepalive idle (h1) / no open stream (h2) */
	uint32_t send_timeout_ms;   /* output pending and no write progress */
	uint32_t max_connections;   /* per worker; accept pauses at the cap */
	uint32_t buffer_size;	    /* per stream and direction */
	enum l7_forwarded forwarded;
};

struct l7_h2_cfg {
	uint32_t max_concurrent_streams;
	uint32_t initial_window_size;
	uint32_t connection_window_size;
	uint32_t max_frame_size;
	uint32_t max_header_list_size;
	uint32_t glitch_limit;	   /* abuse points before GOAWAY; 0 = off */
	uint32_t max_requests;	   /* per connection, then a graceful GOAWAY; 0 = none */
	uint32_t ping_interval_ms; /* PING a client silent this long with open streams */
	uint32_t ping_timeout_ms;
};

/* One certificate (chain + key); served for its names (or the given ones). */
struct l7_cert_cfg {
	char cert[256];
	char key[256];
	char ocsp[256];	    /* DER OCSP response to staple, "" = none */
	char (*names)[256]; /* NULL: the certificate's own DNS names */
	size_t n_names;
};

struct l7_tls_cfg {
	struct l7_cert_cfg *certs; /* the first is the default (no or unknown SNI) */
	size_t n_certs;
	char ticket_secret[256];     /* PoP-wide secret file; "" = a random per-process key */
	uint32_t ticket_period_s;    /* ticket key rotation period */
	uint32_t session_lifetime_s; /* ticket / session-ID lifetime */
	uint32_t clock_skew_s;	     /* tolerated clock difference between hosts */
	uint32_t session_cache_size; /* TLS 1.2 session-ID cache entries (0 = off) */
	char client_ca[256];	     /* CA bundle for client certificates */
	char identity_header[64];    /* carries the verified client identity */
};

struct l7_config {
	char pop[64];
	char host[64];
	char served_by[130];  /* "pop/host", the X-Served-By value */
	unsigned workers;     /* 0 = one per online CPU */
	char access_log[256]; /* path, "-" for stderr, "" for none */
	bool access_log_json; /* access_log_format = "json" (else "text") */
	char admin_socket[108];
	uint32_t drain_timeout_ms; /* SIGTERM / upgrade: in-flight work gets this long */
	char metrics_listen[64];   /* "IP:PORT" serving GET /metrics over TCP, "" = none */
	struct l7_tls_cfg tls;
	struct l7_listener_cfg *listeners;
	size_t n_listeners;
	struct l7_cluster_cfg *clusters;
	size_t n_clusters;
	struct l7_route_cfg *routes;
	size_t n_routes;
	struct l7_client_cfg client;
	struct l7_h2_cfg h2;
};

/* Parse path into *out. 0, or -EINVAL with a malloc'd "file:line: reason"
 * in *err (caller frees). Nothing to free in *out on error. */
int l7_config_load(const char *path, struct l7_config *out, char **err);
int l7_config_parse(const char *text, const char *name, struct l7_config *out, char **err);
void l7_config_free(struct l7_config *c);

/*
 * The config file at path in libconfig's canonical form (no comments, one
 * spelling per value) without its "tls" group, plus a hash of each file a
 * cluster's tls group names (CA, certificate, key): two files with the
 * same fingerprint differ at most in the downstream TLS material, which a
 * reload swaps in place. malloc'd (caller frees), or NULL if the file
 * cannot be read or parsed.
 */
char *l7_config_fingerprint(const char *path);

/*
 * Parse "ADDR:PORT" / "[ADDR6]:PORT" into a sockaddr. 0 or -EINVAL.
 */
int l7_parse_hostport(const char *s, struct sockaddr_storage *ss, socklen_t *len);

const char *l7_proto_name(enum l7_proto p);

#endif
