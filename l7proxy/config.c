// SPDX-License-Identifier: GPL-2.0-only
/*
 * config.c - parsing and validating l7proxy.conf. Everything is checked
 * here, before a worker sees the struct: addresses, ranges, names that
 * end up in headers (no CR/LF can reach the wire from the config), route
 * to cluster references.
 */
#include "config.h"
#include "addr.h"
#include "cfgfile.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int l7_parse_hostport(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[LB_ADDR_STRLEN], portbuf[8];
	struct lb_addr a;
	int port;

	memset(ss, 0, sizeof(*ss));
	if (lb_hostport_split(s, strlen(s), host, sizeof(host), portbuf, sizeof(portbuf)))
		return -EINVAL;
	/* Digits only: strtol would take " 80" or "\r\n80". */
	if (!portbuf[0] || strspn(portbuf, "0123456789") != strlen(portbuf))
		return -EINVAL;
	port = lb_port_parse(portbuf);
	if (port < 0 || lb_addr_parse(host, &a))
		return -EINVAL;
	if (a.family == 4) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		memcpy(&sin->sin_addr, a.bytes, 4);
		*len = sizeof(*sin);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		memcpy(&sin6->sin6_addr, a.bytes, 16);
		*len = sizeof(*sin6);
	}
	return 0;
}

const char *l7_proto_name(enum l7_proto p)
{
	static const char *const names[] = {"http1", "h2c", "h2", "https"};

	return p <= L7_PROTO_HTTPS ? names[p] : "?";
}

/* Names that go into headers (X-Served-By) or logs: a token-ish subset, so
 * a CR, LF or space in the config can never split a header. */
static bool name_ok(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr("._-", *s))
			return false;
	return true;
}

static int parse_listeners(config_t *cf, struct l7_config *c, const char *file, char **err)
{
	config_setting_t *list = config_lookup(cf, "listeners");
	int n;

	if (!list || !config_setting_is_list(list) || config_setting_length(list) == 0)
		return cfg_fail(
		    err, file, list ? list : config_root_setting(cf),
		    "\"listeners\" must be a non-empty list ( { address = ...; }, ... )");
	n = config_setting_length(list);
	c->listeners = calloc(n, sizeof(*c->listeners));
	if (!c->listeners)
		return -ENOMEM;
	for (int i = 0; i < n; i++) {
		config_setting_t *ls = config_setting_get_elem(list, i);
		struct l7_listener_cfg *l = &c->listeners[i];
		static const char *const auth[] = {"none", "request", "require"};
		const char *a = NULL;
		unsigned ca;
		bool tls;
		int rc;

		if (!config_setting_is_group(ls) ||
		    !config_setting_lookup_string(ls, "address", &a))
			return cfg_fail(err, file, ls, "listener needs address = \"ADDR:PORT\"");
		if (l7_parse_hostport(a, &l->addr, &l->addr_len))
			return cfg_fail(
			    err, file, config_setting_get_member(ls, "address"),
			    "listener address \"%s\": expected ADDR:PORT or [ADDR6]:PORT", a);
		if ((rc = cfg_bool(ls, "tls", &tls, false, file, err)) ||
		    (rc =
			 cfg_enum(ls, "client_auth", auth, 3, L7_CLIENT_AUTH_NONE, &ca, file, err)))
			return rc;
		l->tls = tls;
		l->client_auth = ca;
		if (ca != L7_CLIENT_AUTH_NONE && !tls)
			return cfg_fail(err, file, config_setting_get_member(ls, "client_auth"),
					"listener %s: client_auth needs tls = true", a);
		snprintf(l->name, sizeof(l->name), "%s", a);
		for (size_t j = 0; j < c->n_listeners; j++)
			if (c->listeners[j].addr_len == l->addr_len &&
			    memcmp(&c->listeners[j].addr, &l->addr, l->addr_len) == 0)
				return cfg_fail(err, file, ls, "listener %s appears twice", a);
		c->n_listeners++;
	}
	return 0;
}

static int parse_backends(config_setting_t *grp, struct l7_cluster_cfg *cl, const char *what,
			  const char *file, char **err)
{
	config_setting_t *list = config_setting_get_member(grp, "backends");
	int n;

	if (!list || (!config_setting_is_array(list) && !config_setting_is_list(list)) ||
	    config_setting_length(list) == 0)
		return cfg_fail(err, file, list ? list : grp,
				"%s: \"backends\" must be a non-empty array [\"ADDR:PORT\", ...]",
				what);
	n = config_setting_length(list);
	cl->backends = calloc(n, sizeof(*cl->backends));
	if (!cl->backends)
		return -ENOMEM;
	for (int i = 0; i < n; i++) {
		config_setting_t *e = config_setting_get_elem(list, i);
		const char *s = config_setting_get_string(e);
		struct l7_backend_cfg *b = &cl->backends[i];

		if (!s || l7_parse_hostport(s, &b->addr, &b->addr_len))
			return cfg_fail(err, file, e,
					"%s backend \"%s\": expected ADDR:PORT or [ADDR6]:PORT",
					what, s ? s : "(not a string)");
		snprintf(b->name, sizeof(b->name), "%s", s);
		cl->n_backends++;
	}
	return 0;
}

/* Settings shared by a cluster and the legacy upstream group. */
static int parse_cluster_limits(config_setting_t *g, struct l7_cluster_cfg *cl, const char *file,
				char **err)
{
	bool h2 = !l7_proto_h1(cl->proto);
	int rc;

	if ((rc = cfg_uint(g, "connect_timeout_ms", &cl->connect_timeout_ms, 2000, 1, 600000, file,
			   err)) ||
	    /* Below the 5 s keepalive of Node and many others, so the pool
	     * drops a connection before the backend does (reuse races). */
	    (rc = cfg_uint(g, "idle_timeout_ms", &cl->idle_timeout_ms, h2 ? 60000 : 4000, 1,
			   3600000, file, err)) ||
	    (rc = cfg_uint(g, "request_timeout_ms", &cl->request_timeout_ms, 60000, 0, 86400000,
			   file, err)) ||
	    (rc = cfg_uint(g, "max_connections", &cl->max_connections, h2 ? 16 : 1024, 1, 100000,
			   file, err)) ||
	    (rc = cfg_uint(g, "max_idle", &cl->max_idle, 256, 0, 100000, file, err)) ||
	    (rc = cfg_uint(g, "max_streams", &cl->max_streams, 100, 1, 1u << 20, file, err)) ||
	    /* gRPC servers allow one PING per 5 minutes without data and
	     * GOAWAY a peer that pings more often ("too many pings"), which
	     * would cut exactly the quiet long-lived streams PING protects. */
	    (rc = cfg_uint(g, "ping_interval_ms", &cl->ping_interval_ms, 300000, 100, 3600000, file,
			   err)) ||
	    (rc = cfg_uint(g, "ping_timeout_ms", &cl->ping_timeout_ms, 10000, 10, 600000, file,
			   err)) ||
	    (rc = cfg_uint(g, "fail_threshold", &cl->fail_threshold, 5, 0, 1000, file, err)) ||
	    (rc = cfg_uint(g, "backoff_ms", &cl->backoff_ms, 5000, 0, 3600000, file, err)))
		return rc;
	return 0;
}

static int parse_cluster_tls(config_setting_t *g, struct l7_cluster_cfg *cl, const char *file,
			     char **err)
{
	static const char *const keys[] = {"ca", "sni", "verify", "certificate", "key", NULL};
	config_setting_t *t = config_setting_get_member(g, "tls");
	int rc;

	cl->tls_verify = true;
	if (!t) {
		if (l7_proto_tls(cl->proto))
			return cfg_fail(err, file, g,
					"cluster \"%s\": protocol \"%s\" needs tls = { ca = "
					"\"FILE\"; } (or verify = false to skip verification)",
					cl->name, l7_proto_name(cl->proto));
		return 0;
	}
	if (!l7_proto_tls(cl->proto))
		return cfg_fail(
		    err, file, t,
		    "cluster \"%s\": tls only applies to protocols \"h2\" and \"https\"", cl->name);
	if ((rc = cfg_known(t, keys, "cluster tls", file, err)) ||
	    (rc = cfg_str_copy(t, "ca", cl->tls_ca, sizeof(cl->tls_ca), "", false, file, err)) ||
	    (rc = cfg_str_copy(t, "sni", cl->tls_sni, sizeof(cl->tls_sni), "", false, file, err)) ||
	    (rc = cfg_str_copy(t, "certificate", cl->tls_cert, sizeof(cl->tls_cert), "", false,
			       file, err)) ||
	    (rc = cfg_str_copy(t, "key", cl->tls_key, sizeof(cl->tls_key), "", false, file, err)) ||
	    (rc = cfg_bool(t, "verify", &cl->tls_verify, true, file, err)))
		return rc;
	if (!cl->tls_cert[0] != !cl->tls_key[0])
		return cfg_fail(err, file, t,
				"cluster \"%s\": a client certificate needs both tls.certificate "
				"and tls.key",
				cl->name);
	if (cl->tls_verify && !cl->tls_ca[0])
		return cfg_fail(err, file, t,
				"cluster \"%s\": tls.verify needs tls.ca (a CA bundle file)",
				cl->name);
	/* Without a name, any certificate of the CA would do for any backend. */
	if (cl->tls_verify && !cl->tls_sni[0])
		return cfg_fail(err, file, t,
				"cluster \"%s\": tls.verify needs tls.sni (the name the backends' "
				"certificates must carry)",
				cl->name);
	return 0;
}

static bool authority_ok(const char *a);

/* A path or a gRPC service name we put on the wire: visible ASCII only, so
 * no space, CR or LF can end the request line or a header early. */
static bool visible_ascii(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s <= ' ' || (unsigned char)*s >= 0x7f)
			return false;
	return true;
}

/* interval_ms / timeout_ms, also spelt interval / timeout; not both. */
static int health_ms(config_setting_t *h, const char *name, const char *alias, uint32_t *out,
		     uint32_t def, uint32_t min, uint32_t max, const char *file, char **err)
{
	config_setting_t *a = config_setting_get_member(h, alias);

	if (a && config_setting_get_member(h, name))
		return cfg_fail(err, file, a, "health: %s and %s are the same setting: keep one",
				name, alias);
	return cfg_uint(h, a ? alias : name, out, def, min, max, file, err);
}

/*
 * The optional health = { type = "http"|"grpc"; ... } group of a cluster:
 * active probes (probe.h). Ranges: a probe must end before the next one
 * starts (timeout < interval), so a backend never has two in flight.
 */
static int parse_cluster_health(config_setting_t *g, struct l7_cluster_cfg *cl, const char *file,
				char **err)
{
	static const char *const keys[] = {"type",    "path",	     "expect",	 "host",
					   "service", "interval_ms", "interval", "timeout_ms",
					   "timeout", "rise",	     "fall",	 NULL};
	static const char *const types[] = {"http", "grpc"};
	config_setting_t *h = config_setting_get_member(g, "health");
	struct l7_health_cfg *k = &cl->health;
	unsigned type;
	int rc;

	k->type = L7_HEALTH_NONE;
	if (!h)
		return 0;
	if (!config_setting_is_group(h))
		return cfg_fail(err, file, h,
				"cluster \"%s\": health must be a group { type = \"http\"; ... }",
				cl->name);
	if (!config_setting_get_member(h, "type"))
		return cfg_fail(err, file, h,
				"cluster \"%s\": health needs type = \"http\" or \"grpc\"",
				cl->name);
	if ((rc = cfg_known(h, keys, "health", file, err)) ||
	    (rc = cfg_enum(h, "type", types, 2, 0, &type, file, err)) ||
	    (rc = cfg_str_copy(h, "path", k->path, sizeof(k->path), "/", false, file, err)) ||
	    (rc = cfg_uint(h, "expect", &k->expect, 200, 100, 599, file, err)) ||
	    (rc = cfg_str_copy(h, "host", k->host, sizeof(k->host), "", false, file, err)) ||
	    (rc = cfg_str_copy(h, "service", k->service, sizeof(k->service), "", false, file,
			       err)) ||
	    (rc = health_ms(h, "interval_ms", "interval", &k->interval_ms, 2000, 100, 3600000, file,
			    err)) ||
	    (rc = health_ms(h, "timeout_ms", "timeout", &k->timeout_ms, 1000, 10, 600000, file,
			    err)) ||
	    (rc = cfg_uint(h, "rise", &k->rise, 2, 1, 100, file, err)) ||
	    (rc = cfg_uint(h, "fall", &k->fall, 3, 1, 100, file, err)))
		return rc;
	k->type = type == 0 ? L7_HEALTH_HTTP : L7_HEALTH_GRPC;
	if (k->timeout_ms >= k->interval_ms)
		return cfg_fail(err, file, h,
				"cluster \"%s\": health timeout (%u ms) must be below the interval "
				"(%u ms)",
				cl->name, k->timeout_ms, k->interval_ms);
	if (k->host[0] && (k->host[0] == '*' || !authority_ok(k->host)))
		return cfg_fail(err, file, config_setting_get_member(h, "host"),
				"cluster \"%s\": health host \"%s\": expected a host name or "
				"ADDR[:PORT]",
				cl->name, k->host);
	if (k->type == L7_HEALTH_HTTP) {
		if (config_setting_get_member(h, "service"))
			return cfg_fail(err, file, config_setting_get_member(h, "service"),
					"cluster \"%s\": health service is for type \"grpc\"",
					cl->name);
		if (k->path[0] != '/' || !visible_ascii(k->path))
			return cfg_fail(err, file, config_setting_get_member(h, "path"),
					"cluster \"%s\": health path \"%s\" must start with '/' "
					"and have no space or control character",
					cl->name, k->path);
		return 0;
	}
	if (config_setting_get_member(h, "path") || config_setting_get_member(h, "expect"))
		return cfg_fail(err, file,
				config_setting_get_member(h, "path")
				    ? config_setting_get_member(h, "path")
				    : config_setting_get_member(h, "expect"),
				"cluster \"%s\": health path and expect are for type \"http\" "
				"(grpc must answer SERVING)",
				cl->name);
	if (!visible_ascii(k->service))
		return cfg_fail(err, file, config_setting_get_member(h, "service"),
				"cluster \"%s\": health service \"%s\" has a space or control "
				"character",
				cl->name, k->service);
	/* gRPC is HTTP/2 only (gRPC's PROTOCOL-HTTP2). */
	if (l7_proto_h1(cl->proto))
		return cfg_fail(err, file, config_setting_get_member(h, "type"),
				"cluster \"%s\": health type \"grpc\" needs protocol \"h2c\" or "
				"\"h2\", not \"%s\"",
				cl->name, l7_proto_name(cl->proto));
	return 0;
}

static int parse_clusters(config_t *cf, struct l7_config *c, const char *file, char **err)
{
	static const char *const protos[] = {"http1", "h2c", "h2", "https"};
	static const char *const balances[] = {"round_robin", "least_request"};
	config_setting_t *list = config_lookup(cf, "clusters");
	int n, rc;

	if (!config_setting_is_list(list) || config_setting_length(list) == 0)
		return cfg_fail(err, file, list,
				"\"clusters\" must be a non-empty list ( { name = ...; backends = "
				"[...]; }, ... )");
	n = config_setting_length(list);
	c->clusters = calloc(n, sizeof(*c->clusters));
	if (!c->clusters)
		return -ENOMEM;
	for (int i = 0; i < n; i++) {
		config_setting_t *g = config_setting_get_elem(list, i);
		struct l7_cluster_cfg *cl = &c->clusters[i];
		unsigned proto, bal;
		char what[96];

		if (!config_setting_is_group(g))
			return cfg_fail(err, file, g, "a cluster is a group { name = ...; }");
		c->n_clusters++;
		if ((rc = cfg_str_copy(g, "name", cl->name, sizeof(cl->name), "", true, file, err)))
			return rc;
		if (!name_ok(cl->name))
			return cfg_fail(err, file, config_setting_get_member(g, "name"),
					"cluster name \"%s\": use letters, digits, '.', '_', '-'",
					cl->name);
		for (int j = 0; j < i; j++)
			if (strcmp(c->clusters[j].name, cl->name) == 0)
				return cfg_fail(err, file, g, "cluster \"%s\" is defined twice",
						cl->name);
		snprintf(what, sizeof(what), "cluster \"%s\":", cl->name);
		if ((rc = cfg_enum(g, "protocol", protos, 4, L7_PROTO_HTTP1, &proto, file, err)) ||
		    (rc = cfg_enum(g, "balance", balances, 2, L7_BALANCE_ROUND_ROBIN, &bal, file,
				   err)))
			return rc;
		cl->proto = proto;
		cl->balance = bal;
		what[strlen(what) - 1] = '\0';
		if ((rc = parse_backends(g, cl, what, file, err)) ||
		    (rc = parse_cluster_limits(g, cl, file, err)) ||
		    (rc = parse_cluster_tls(g, cl, file, err)) ||
		    (rc = parse_cluster_health(g, cl, file, err)))
			return rc;
	}
	return 0;
}

/* The old single-upstream form: one cluster and one catch-all route. */
static int parse_legacy_upstream(config_setting_t *up, struct l7_config *c, const char *file,
				 char **err)
{
	struct l7_cluster_cfg *cl;
	uint32_t max_idle_old;
	int rc;

	c->clusters = calloc(1, sizeof(*c->clusters));
	c->routes = calloc(1, sizeof(*c->routes));
	if (!c->clusters || !c->routes)
		return -ENOMEM;
	c->n_clusters = 1;
	cl = &c->clusters[0];
	strcpy(cl->name, "default");
	cl->proto = L7_PROTO_HTTP1;
	if ((rc = parse_backends(up, cl, "upstream", file, err)) ||
	    (rc = parse_cluster_limits(up, cl, file, err)) ||
	    /* Old names: timeout_ms (inactivity) and max_idle_per_backend. */
	    (rc = cfg_uint(up, "timeout_ms", &cl->request_timeout_ms, cl->request_timeout_ms, 0,
			   86400000, file, err)) ||
	    (rc = cfg_uint(up, "max_idle_per_backend", &max_idle_old, cl->max_idle, 0, 100000, file,
			   err)))
		return rc;
	cl->max_idle = max_idle_old;
	cl->tls_verify = true;
	c->n_routes = 1;
	strcpy(c->routes[0].path_prefix, "/");
	return 0;
}

static bool authority_ok(const char *a)
{
	const char *p = a;

	if (a[0] == '*') {
		if (a[1] != '.' || !a[2])
			return false;
		p = a + 2;
	}
	for (; *p; p++)
		if (!isalnum((unsigned char)*p) && !strchr(".-:[]_", *p))
			return false;
	return true;
}

static int parse_routes(config_t *cf, struct l7_config *c, const char *file, char **err)
{
	config_setting_t *list = config_lookup(cf, "routes");
	int n, rc;

	if (!list) {
		/* Clusters without routes: everything goes to the first one. */
		c->routes = calloc(1, sizeof(*c->routes));
		if (!c->routes)
			return -ENOMEM;
		c->n_routes = 1;
		strcpy(c->routes[0].path_prefix, "/");
		return 0;
	}
	if (!config_setting_is_list(list) || config_setting_length(list) == 0)
		return cfg_fail(err, file, list,
				"\"routes\" must be a non-empty list ( { path_prefix = \"/\"; "
				"cluster = \"...\"; }, ... )");
	n = config_setting_length(list);
	c->routes = calloc(n, sizeof(*c->routes));
	if (!c->routes)
		return -ENOMEM;
	for (int i = 0; i < n; i++) {
		config_setting_t *g = config_setting_get_elem(list, i);
		struct l7_route_cfg *r = &c->routes[i];
		const char *cname;
		size_t k;

		if (!config_setting_is_group(g))
			return cfg_fail(err, file, g, "a route is a group { cluster = ...; }");
		c->n_routes++;
		if ((rc = cfg_str_copy(g, "authority", r->authority, sizeof(r->authority), "",
				       false, file, err)) ||
		    (rc = cfg_str_copy(g, "path_prefix", r->path_prefix, sizeof(r->path_prefix),
				       "/", false, file, err)) ||
		    (rc = cfg_str(g, "cluster", &cname, true, file, err)) ||
		    (rc = cfg_uint(g, "grpc_default_timeout_ms", &r->grpc_default_timeout_ms, 0, 0,
				   86400000, file, err)) ||
		    (rc = cfg_uint(g, "grpc_max_timeout_ms", &r->grpc_max_timeout_ms, 0, 0,
				   86400000, file, err)) ||
		    (rc = cfg_bool(g, "require_client_identity", &r->require_identity, false, file,
				   err)) ||
		    (rc = cfg_bool(g, "early_data", &r->early_data, false, file, err)))
			return rc;
		for (char *p = r->authority; *p; p++)
			*p = (char)tolower((unsigned char)*p);
		if (r->authority[0] && !authority_ok(r->authority))
			return cfg_fail(err, file, config_setting_get_member(g, "authority"),
					"route authority \"%s\": expected a host name, "
					"\"*.suffix\" or nothing",
					r->authority);
		if (r->path_prefix[0] != '/')
			return cfg_fail(err, file, config_setting_get_member(g, "path_prefix"),
					"route path_prefix \"%s\" must start with '/'",
					r->path_prefix);
		for (const char *p = r->path_prefix; *p; p++)
			if ((unsigned char)*p <= ' ' || *p == 0x7f)
				return cfg_fail(
				    err, file, config_setting_get_member(g, "path_prefix"),
				    "route path_prefix has a space or control character");
		for (k = 0; k < c->n_clusters; k++)
			if (strcmp(c->clusters[k].name, cname) == 0)
				break;
		if (k == c->n_clusters)
			return cfg_fail(err, file, config_setting_get_member(g, "cluster"),
					"route: no cluster named \"%s\"", cname);
		r->cluster = (unsigned)k;
		if (r->grpc_max_timeout_ms && r->grpc_default_timeout_ms > r->grpc_max_timeout_ms)
			return cfg_fail(err, file, g,
					"route: grpc_default_timeout_ms (%u) is above "
					"grpc_max_timeout_ms (%u)",
					r->grpc_default_timeout_ms, r->grpc_max_timeout_ms);
	}
	return 0;
}

/*
 * The group called name, or (absent) an empty one added to the parsed file
 * so the getters below return their defaults. NULL with *err set if name is
 * not a group.
 */
static config_setting_t *group_or_empty(config_t *cf, const char *name, const char *file,
					char **err)
{
	config_setting_t *g = config_lookup(cf, name);

	if (g && !config_setting_is_group(g)) {
		cfg_fail(err, file, g, "\"%s\" must be a group { ... }", name);
		return NULL;
	}
	if (!g) {
		g = config_setting_add(config_root_setting(cf), name, CONFIG_TYPE_GROUP);
		if (!g && asprintf(err, "%s: out of memory", file) < 0)
			*err = NULL;
	}
	return g;
}

static int parse_client(config_t *cf, struct l7_config *c, const char *file, char **err)
{
	static const char *const fwd[] = {"replace", "append"};
	config_setting_t *root = config_root_setting(cf), *g;
	struct l7_client_cfg *k = &c->client;
	uint32_t legacy_idle;
	unsigned f;
	int rc;

	/* client_timeout_ms at the top level is the old name of the idle timeout. */
	if ((rc = cfg_uint(root, "client_timeout_ms", &legacy_idle, 60000, 1, 3600000, file, err)))
		return rc;
	if (!(g = group_or_empty(cf, "client", file, err)))
		return -EINVAL;
	if ((rc = cfg_uint(g, "header_timeout_ms", &k->header_timeout_ms, 10000, 1, 600000, file,
			   err)) ||
	    (rc = cfg_uint(g, "body_timeout_ms", &k->body_timeout_ms, 30000, 1, 3600000, file,
			   err)) ||
	    (rc = cfg_uint(g, "idle_timeout_ms", &k->idle_timeout_ms, legacy_idle, 1, 3600000, file,
			   err)) ||
	    (rc = cfg_uint(g, "send_timeout_ms", &k->send_timeout_ms, 60000, 1, 3600000, file,
			   err)) ||
	    (rc = cfg_uint(g, "max_connections", &k->max_connections, 20000, 1, 10000000, file,
			   err)) ||
	    (rc = cfg_uint(g, "buffer_size", &k->buffer_size, 65536, 16384, 16 << 20, file, err)) ||
	    (rc = cfg_enum(g, "forwarded", fwd, 2, L7_FORWARDED_REPLACE, &f, file, err)))
		return rc;
	k->forwarded = f;
	return 0;
}

static int parse_h2(config_t *cf, struct l7_config *c, const char *file, char **err)
{
	config_setting_t *g = group_or_empty(cf, "http2", file, err);
	struct l7_h2_cfg *h = &c->h2;
	int rc;

	if (!g)
		return -EINVAL;
	/* RFC 9113 §6.5.2 bounds: window 2^31-1, frame size 2^14..2^24-1. */
	if ((rc = cfg_uint(g, "max_concurrent_streams", &h->max_concurrent_streams, 100, 1, 10000,
			   file, err)) ||
	    (rc = cfg_uint(g, "initial_window_size", &h->initial_window_size, 65535, 1024, 16 << 20,
			   file, err)) ||
	    (rc = cfg_uint(g, "connection_window_size", &h->connection_window_size, 1 << 20, 65535,
			   (1u << 31) - 1, file, err)) ||
	    (rc = cfg_uint(g, "max_frame_size", &h->max_frame_size, 16384, 16384, (1 << 24) - 1,
			   file, err)) ||
	    (rc = cfg_uint(g, "max_header_list_size", &h->max_header_list_size, 65536, 1024,
			   1 << 24, file, err)) ||
	    (rc = cfg_uint(g, "glitch_limit", &h->glitch_limit, 1000, 0, 1000000, file, err)) ||
	    (rc = cfg_uint(g, "max_requests", &h->max_requests, 0, 0, 1u << 30, file, err)) ||
	    (rc = cfg_uint(g, "ping_interval_ms", &h->ping_interval_ms, 60000, 100, 3600000, file,
			   err)) ||
	    (rc =
		 cfg_uint(g, "ping_timeout_ms", &h->ping_timeout_ms, 20000, 10, 600000, file, err)))
		return rc;
	if (h->initial_window_size > c->client.buffer_size)
		return cfg_fail(err, file, g,
				"http2.initial_window_size (%u) is above client.buffer_size (%u): "
				"a stream's window must fit its buffer",
				h->initial_window_size, c->client.buffer_size);
	return 0;
}

/* Fields whose meaning the proxy or HTTP owns: no identity under these. */
static const char *const proxy_fields[] = {"host",
					   "content-length",
					   "transfer-encoding",
					   "connection",
					   "te",
					   "trailer",
					   "upgrade",
					   "keep-alive",
					   "proxy-connection",
					   "content-type",
					   "x-forwarded-for",
					   "x-forwarded-proto",
					   "x-real-ip",
					   "forwarded",
					   "x-request-id",
					   "x-served-by",
					   "early-data",
					   "cookie",
					   "authorization",
					   NULL};

/* Header names we write: lower-case tokens, so no CR/LF or ':' reaches the wire. */
static bool header_name_ok(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!(islower((unsigned char)*s) || isdigit((unsigned char)*s) || *s == '-'))
			return false;
	return true;
}

static int parse_cert(config_setting_t *g, struct l7_cert_cfg *k, const char *file, char **err)
{
	config_setting_t *names = config_setting_get_member(g, "names");
	int rc;

	if ((rc = cfg_str_copy(g, "certificate", k->cert, sizeof(k->cert), "", true, file, err)) ||
	    (rc = cfg_str_copy(g, "key", k->key, sizeof(k->key), "", true, file, err)) ||
	    (rc = cfg_str_copy(g, "ocsp", k->ocsp, sizeof(k->ocsp), "", false, file, err)))
		return rc;
	if (!names)
		return 0;
	if ((!config_setting_is_array(names) && !config_setting_is_list(names)) ||
	    config_setting_length(names) == 0)
		return cfg_fail(err, file, names,
				"certificate names must be a non-empty array [\"example.com\", "
				"\"*.example.com\"]");
	k->names = calloc((size_t)config_setting_length(names), sizeof(*k->names));
	if (!k->names)
		return -ENOMEM;
	for (int i = 0; i < config_setting_length(names); i++) {
		config_setting_t *e = config_setting_get_elem(names, i);
		const char *n = config_setting_get_string(e);
		char *d = k->names[i];

		if (!n || !authority_ok(n) || strlen(n) >= sizeof(k->names[0]))
			return cfg_fail(err, file, e,
					"certificate name \"%s\": expected a host name or "
					"\"*.suffix\"",
					n ? n : "(not a string)");
		for (size_t j = 0; n[j]; j++)
			d[j] = (char)tolower((unsigned char)n[j]);
		k->n_names++;
	}
	return 0;
}

static int parse_tls(config_setting_t *t, struct l7_config *c, const char *file, char **err)
{
	static const char *const keys[] = {"certificate",
					   "key",
					   "ocsp",
					   "certificates",
					   "ticket_secret",
					   "ticket_period_s",
					   "session_lifetime_s",
					   "clock_skew_s",
					   "session_cache_size",
					   "client_ca",
					   "identity_header",
					   NULL};
	config_setting_t *list = config_setting_get_member(t, "certificates");
	struct l7_tls_cfg *k = &c->tls;
	int rc;

	if (!config_setting_is_group(t))
		return cfg_fail(err, file, t, "\"tls\" must be a group { certificate; key; }");
	if ((rc = cfg_known(t, keys, "tls", file, err)))
		return rc;
	if (list && config_setting_get_member(t, "certificate"))
		return cfg_fail(err, file, list,
				"tls: use either certificate/key or certificates = ( ... ), not "
				"both");
	if (list) {
		int n = config_setting_length(list);

		if (!config_setting_is_list(list) || n == 0)
			return cfg_fail(err, file, list,
					"tls.certificates must be a non-empty list ( { certificate "
					"= ...; key = ...; }, ... )");
		k->certs = calloc((size_t)n, sizeof(*k->certs));
		if (!k->certs)
			return -ENOMEM;
		for (int i = 0; i < n; i++) {
			config_setting_t *g = config_setting_get_elem(list, i);
			static const char *const ckeys[] = {"certificate", "key", "ocsp", "names",
							    NULL};

			if (!config_setting_is_group(g))
				return cfg_fail(err, file, g,
						"a certificate is a group { certificate; key; }");
			k->n_certs++;
			if ((rc = cfg_known(g, ckeys, "certificate", file, err)) ||
			    (rc = parse_cert(g, &k->certs[i], file, err)))
				return rc;
		}
	} else {
		k->certs = calloc(1, sizeof(*k->certs));
		if (!k->certs)
			return -ENOMEM;
		k->n_certs = 1;
		if ((rc = parse_cert(t, &k->certs[0], file, err)))
			return rc;
	}
	/* RFC 8446 §4.6.1: a ticket lives at most 7 days. */
	if ((rc = cfg_str_copy(t, "ticket_secret", k->ticket_secret, sizeof(k->ticket_secret), "",
			       false, file, err)) ||
	    (rc = cfg_uint(t, "ticket_period_s", &k->ticket_period_s, 3600, 1, 7 * 86400, file,
			   err)) ||
	    (rc = cfg_uint(t, "session_lifetime_s", &k->session_lifetime_s, 3600, 1, 7 * 86400,
			   file, err)) ||
	    (rc = cfg_uint(t, "clock_skew_s", &k->clock_skew_s, 300, 0, 3600, file, err)) ||
	    (rc = cfg_uint(t, "session_cache_size", &k->session_cache_size, 20480, 0, 10000000,
			   file, err)) ||
	    (rc = cfg_str_copy(t, "client_ca", k->client_ca, sizeof(k->client_ca), "", false, file,
			       err)) ||
	    (rc = cfg_str_copy(t, "identity_header", k->identity_header, sizeof(k->identity_header),
			       "x-client-identity", false, file, err)))
		return rc;
	if (!header_name_ok(k->identity_header))
		return cfg_fail(
		    err, file, config_setting_get_member(t, "identity_header"),
		    "tls.identity_header \"%s\": use lower-case letters, digits and '-'",
		    k->identity_header);
	for (const char *const *r = proxy_fields; *r; r++)
		if (strcmp(k->identity_header, *r) == 0 ||
		    strncmp(k->identity_header, "grpc-", 5) == 0)
			return cfg_fail(err, file, config_setting_get_member(t, "identity_header"),
					"tls.identity_header \"%s\" is a field the proxy or HTTP "
					"itself uses: pick a name of its own (x-client-identity)",
					k->identity_header);
	return 0;
}

static int parse(config_t *cf, const char *file, struct l7_config *c, char **err)
{
	config_setting_t *root = config_root_setting(cf), *tls, *up, *cls;
	bool need_tls = false, asks = false; /* a TLS listener; one asking for client certs */
	int rc;

	if ((rc = cfg_str_copy(root, "pop", c->pop, sizeof(c->pop), "pop", false, file, err)) ||
	    (rc = cfg_str_copy(root, "host", c->host, sizeof(c->host), "", true, file, err)) ||
	    (rc = cfg_str_copy(root, "access_log", c->access_log, sizeof(c->access_log), "-", false,
			       file, err)) ||
	    (rc = cfg_str_copy(root, "admin_socket", c->admin_socket, sizeof(c->admin_socket), "",
			       false, file, err)) ||
	    (rc = cfg_uint(root, "workers", &c->workers, 0, 0, 1024, file, err)) ||
	    (rc = cfg_uint(root, "drain_timeout_ms", &c->drain_timeout_ms, 30000, 0, 3600000, file,
			   err)) ||
	    (rc = cfg_str_copy(root, "metrics_listen", c->metrics_listen, sizeof(c->metrics_listen),
			       "", false, file, err)))
		return rc;
	{
		char fmt[8];

		if ((rc = cfg_str_copy(root, "access_log_format", fmt, sizeof(fmt), "text", false,
				       file, err)))
			return rc;
		if (strcmp(fmt, "text") && strcmp(fmt, "json"))
			return cfg_fail(
			    err, file, config_setting_get_member(root, "access_log_format"),
			    "access_log_format \"%s\": expected \"text\" or \"json\"", fmt);
		c->access_log_json = strcmp(fmt, "json") == 0;
	}
	if (c->metrics_listen[0]) {
		struct sockaddr_storage ss;
		socklen_t sl;

		if (l7_parse_hostport(c->metrics_listen, &ss, &sl))
			return cfg_fail(err, file,
					config_setting_get_member(root, "metrics_listen"),
					"metrics_listen \"%s\": expected IP:PORT or [IPv6]:PORT",
					c->metrics_listen);
	}
	if (!name_ok(c->pop))
		return cfg_fail(err, file, config_setting_get_member(root, "pop"),
				"pop \"%s\": use letters, digits, '.', '_', '-' (it goes into "
				"the X-Served-By header)",
				c->pop);
	if (!name_ok(c->host))
		return cfg_fail(err, file, config_setting_get_member(root, "host"),
				"host \"%s\": use letters, digits, '.', '_', '-' (it goes into "
				"the X-Served-By header)",
				c->host);
	if ((rc = parse_listeners(cf, c, file, err)) || (rc = parse_client(cf, c, file, err)) ||
	    (rc = parse_h2(cf, c, file, err)))
		return rc;
	up = config_lookup(cf, "upstream");
	cls = config_lookup(cf, "clusters");
	if (up && (cls || config_lookup(cf, "routes")))
		return cfg_fail(err, file, up,
				"\"upstream\" is the old form of one cluster and a catch-all "
				"route: with \"clusters\"/\"routes\", move its backends into a "
				"cluster and remove it");
	if (up) {
		if (!config_setting_is_group(up))
			return cfg_fail(err, file, up,
					"\"upstream\" must be a group { backends = [...]; }");
		rc = parse_legacy_upstream(up, c, file, err);
	} else if (cls) {
		if ((rc = parse_clusters(cf, c, file, err)) == 0)
			rc = parse_routes(cf, c, file, err);
	} else {
		rc = cfg_fail(err, file, root,
			      "missing \"clusters\" (and \"routes\"): where should requests go?");
	}
	if (rc)
		return rc;
	snprintf(c->served_by, sizeof(c->served_by), "%s/%s", c->pop, c->host);
	for (size_t i = 0; i < c->n_listeners; i++)
		need_tls |= c->listeners[i].tls;
	tls = config_lookup(cf, "tls");
	if (need_tls && !tls)
		return cfg_fail(
		    err, file, root,
		    "a listener has tls = true but there is no tls { certificate; key; }");
	if (tls && (rc = parse_tls(tls, c, file, err)))
		return rc;
	for (size_t i = 0; i < c->n_listeners; i++) {
		if (c->listeners[i].client_auth == L7_CLIENT_AUTH_NONE)
			continue;
		asks = true;
		if (!c->tls.client_ca[0])
			return cfg_fail(err, file, tls ? tls : root,
					"listener %s asks for client certificates: tls.client_ca "
					"(a CA bundle) is needed to verify them",
					c->listeners[i].name);
	}
	for (size_t i = 0; i < c->n_routes; i++) {
		if (c->routes[i].require_identity && !asks)
			return cfg_fail(err, file, config_lookup(cf, "routes"),
					"route %zu requires a client identity but no listener has "
					"client_auth = \"request\" or \"require\"",
					i + 1);
		if (c->routes[i].early_data && !need_tls)
			return cfg_fail(err, file, config_lookup(cf, "routes"),
					"route %zu allows early_data but no listener has tls",
					i + 1);
	}
	return 0;
}

static int parse_root(config_t *cf, const char *file, void *out, char **err)
{
	struct l7_config *c = out;

	memset(c, 0, sizeof(*c));
	return parse(cf, file, c, err);
}

static int load(const char *path, const char *text, struct l7_config *out, char **err)
{
	int rc;

	memset(out, 0, sizeof(*out));
	rc = cfg_load(path, text, parse_root, out, err);
	if (rc)
		l7_config_free(out);
	return rc;
}

int l7_config_load(const char *path, struct l7_config *out, char **err)
{
	return load(path, NULL, out, err);
}

int l7_config_parse(const char *text, const char *name, struct l7_config *out, char **err)
{
	return load(name, text, out, err);
}

void l7_config_free(struct l7_config *c)
{
	for (size_t i = 0; i < c->tls.n_certs; i++)
		free(c->tls.certs[i].names);
	free(c->tls.certs);
	for (size_t i = 0; i < c->n_clusters; i++)
		free(c->clusters[i].backends);
	free(c->clusters);
	free(c->routes);
	free(c->listeners);
	memset(c, 0, sizeof(*c));
}

/* FNV-1a 64 of a file's bytes, or 0 if it cannot be read. */
static uint64_t file_hash(const char *path)
{
	uint64_t h = 0xcbf29ce484222325ull;
	unsigned char buf[8192];
	size_t n;
	FILE *f = fopen(path, "rb");

	if (!f)
		return 0;
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		for (size_t i = 0; i < n; i++)
			h = (h ^ buf[i]) * 0x100000001b3ull;
	fclose(f);
	return h;
}

char *l7_config_fingerprint(const char *path)
{
	config_setting_t *cls;
	config_t cf;
	char *text = NULL;
	size_t len = 0;
	FILE *f;

	config_init(&cf);
	if (config_read_file(&cf, path) != CONFIG_TRUE) {
		config_destroy(&cf);
		return NULL;
	}
	/* The downstream TLS material is what a reload swaps in place. */
	config_setting_remove(config_root_setting(&cf), "tls");
	f = open_memstream(&text, &len);
	if (f) {
		config_write(&cf, f);
		/* A cluster's CA, certificate or key replaced under the same
		 * name is a change too: its contexts are built at start. */
		cls = config_lookup(&cf, "clusters");
		for (int i = 0; cls && i < config_setting_length(cls); i++) {
			config_setting_t *t = config_setting_get_member(
			    config_setting_get_elem(cls, (unsigned)i), "tls");
			static const char *const files[] = {"ca", "certificate", "key", NULL};

			for (size_t k = 0; t && files[k]; k++) {
				const char *fp = NULL;

				if (config_setting_lookup_string(t, files[k], &fp) == CONFIG_TRUE)
					fprintf(f, "# %d %s %016llx\n", i, files[k],
						(unsigned long long)file_hash(fp));
			}
		}
		if (fclose(f) != 0) {
			free(text);
			text = NULL;
		}
	}
	config_destroy(&cf);
	return text;
}
