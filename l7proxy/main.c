// SPDX-License-Identifier: GPL-2.0-only
/*
 * l7proxy - the TLS-terminating HTTP/1.1, HTTP/2 and gRPC proxy of the L7
 * hosts.
 *
 * main() loads the config, builds the TLS contexts, makes sure no other
 * process listens on our ports, starts one worker per core, and then
 * serves the admin socket (counters as JSON) until SIGINT/SIGTERM.
 * Everything on the request path is in the workers.
 */
#include "http_admin.h"
#include "list.h"
#include "listener.h"
#include "log.h"
#include "tls.h"
#include "worker.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <getopt.h>
#include <sys/epoll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <urcu/urcu-memb.h>
#include <unistd.h>

struct proxy {
	const struct l7_config *cfg;
	const char *path; /* the config file, read again by a reload */
	SSL_CTX *ssl_ctx; /* downstream TLS base context in service */
	struct worker *workers;
	unsigned n;
	struct l7_upstreams *ups; /* the backend sets the workers read */
	int64_t started;	  /* Unix seconds */
	uint64_t reloads, reload_failures;
	char reload_error[512]; /* why the last reload failed, "" if it did not */
	struct loop loop;	/* the main thread's: signals and the admin API */
	struct loop_io sig_io;
};

static void usage(FILE *f)
{
	fprintf(f, "usage: l7proxy [-c CONFIG] [--check] [-v]\n"
		   "  -c, --config FILE  config file (default /etc/portico/l7proxy.conf)\n"
		   "      --check        validate the config (and load the certificates), exit\n"
		   "  -v, --verbose      debug logging\n");
}

static int open_log(const char *path)
{
	if (!path[0])
		return -1;
	if (strcmp(path, "-") == 0)
		return dup(STDERR_FILENO);
	return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
}

/* GET /v1/stats: every counter summed over the workers. */
static int api_stats(void *ctx, const struct admin_req *req, json_t **out)
{
	struct proxy *p = ctx;
	json_t *o = json_object(), *per = json_array();
	size_t buffered = 0;

	(void)req;
#define X(name)                                                                                    \
	do {                                                                                       \
		uint64_t sum = 0;                                                                  \
		for (unsigned i = 0; i < p->n; i++)                                                \
			sum += WORKER_STAT(&p->workers[i], name);                                  \
		json_object_set_new(o, #name, json_integer((json_int_t)sum));                      \
	} while (0);
	WORKER_COUNTERS(X)
#undef X
	for (unsigned i = 0; i < p->n; i++) {
		/* A gauge read across threads: a moment's value, not exact. */
		size_t blocks = __atomic_load_n(&p->workers[i].pool.in_use, __ATOMIC_RELAXED);

		buffered += blocks * BLK_SIZE;
		json_array_append_new(
		    per, json_pack("{s:i,s:I,s:I,s:I}", "worker", (int)i, "conns_open",
				   (json_int_t)WORKER_STAT(&p->workers[i], conns_open), "requests",
				   (json_int_t)WORKER_STAT(&p->workers[i], requests),
				   "buffered_bytes", (json_int_t)(blocks * BLK_SIZE)));
	}
	json_object_set_new(o, "buffered_bytes", json_integer((json_int_t)buffered));
	json_object_set_new(o, "workers", per);
	*out = o;
	return 200;
}

/* GET /v1/config: what this process serves (clusters, routes). */
static int api_config(void *ctx, const struct admin_req *req, json_t **out)
{
	struct proxy *p = ctx;
	const struct l7_config *cfg = p->cfg;
	json_t *cl = json_array(), *rt = json_array();

	(void)req;
	for (size_t i = 0; i < cfg->n_clusters; i++) {
		json_t *be = json_array();

		for (size_t b = 0; b < cfg->clusters[i].n_backends; b++)
			json_array_append_new(be, json_string(cfg->clusters[i].backends[b].name));
		json_array_append_new(
		    cl, json_pack("{s:s,s:s,s:o}", "name", cfg->clusters[i].name, "protocol",
				  l7_proto_name(cfg->clusters[i].proto), "backends", be));
	}
	for (size_t i = 0; i < cfg->n_routes; i++)
		json_array_append_new(rt, json_pack("{s:s,s:s,s:s}", "authority",
						    cfg->routes[i].authority, "path_prefix",
						    cfg->routes[i].path_prefix, "cluster",
						    cfg->clusters[cfg->routes[i].cluster].name));
	*out = json_pack("{s:s,s:i,s:o,s:o}", "served_by", cfg->served_by, "workers", (int)p->n,
			 "clusters", cl, "routes", rt);
	return 200;
}

/* GET /v1/status: what runs here. */
static int api_status(void *ctx, const struct admin_req *req, json_t **out)
{
	struct proxy *p = ctx;

	(void)req;
	*out = json_pack(
	    "{s:s,s:s,s:s,s:s,s:i,s:I,s:I,s:i,s:s,s:I,s:I,s:I,s:s?}", "role", "l7proxy", "version",
	    PORTICO_VERSION, "tls_library", OpenSSL_version(OPENSSL_VERSION), "served_by",
	    p->cfg->served_by, "pid", (int)getpid(), "started", (json_int_t)p->started, "uptime_s",
	    (json_int_t)(time(NULL) - p->started), "workers", (int)p->n, "config", p->path,
	    "reloads", (json_int_t)p->reloads, "reload_failures", (json_int_t)p->reload_failures,
	    "upstream_updates", (json_int_t)p->ups->updates, "last_reload_error",
	    p->reload_error[0] ? p->reload_error : NULL);
	return 200;
}

/* GET /v1/routes: in match order. */
static int api_routes(void *ctx, const struct admin_req *req, json_t **out)
{
	struct proxy *p = ctx;
	const struct l7_config *cfg = p->cfg;
	json_t *rt = json_array();

	(void)req;
	for (size_t i = 0; i < cfg->n_routes; i++) {
		const struct l7_route_cfg *r = &cfg->routes[i];

		json_array_append_new(rt, json_pack("{s:s,s:s,s:s,s:b,s:b}", "authority",
						    r->authority[0] ? r->authority : "*",
						    "path_prefix", r->path_prefix, "cluster",
						    cfg->clusters[r->cluster].name,
						    "require_client_identity", r->require_identity,
						    "early_data", r->early_data));
	}
	*out = json_pack("{s:o}", "routes", rt);
	return 200;
}

/*
 * /v1/clusters[/NAME[/backends]]: show clusters, replace a backend set
 * (PUT), add or change one backend (POST), remove one (DELETE). Every
 * change is a new versioned set (upstream.h), handed to the workers.
 */
static int api_clusters(void *ctx, const struct admin_req *req, json_t **out)
{
	struct proxy *p = ctx;
	char name[64], err[256];
	const char *tail = req->tail, *slash;
	bool backends = false;
	struct l7_upset *next = NULL;
	const struct l7_upset *cur;
	int ci;

	if (!tail[0] || strcmp(tail, "/") == 0) {
		json_t *all = json_array();

		if (strcmp(req->method, "GET") != 0)
			return admin_error(out, 405, "only GET on /v1/clusters");
		for (size_t i = 0; i < p->ups->n; i++)
			json_array_append_new(
			    all, l7_upstreams_cluster_json(p->ups, i, loop_clock_ms()));
		*out = json_pack("{s:o}", "clusters", all);
		return 200;
	}
	if (tail[0] == '/')
		tail++;
	slash = strchr(tail, '/');
	if ((size_t)(slash ? slash - tail : (ptrdiff_t)strlen(tail)) >= sizeof(name))
		return admin_error(out, 404, "no such cluster");
	snprintf(name, sizeof(name), "%.*s", (int)(slash ? slash - tail : (ptrdiff_t)strlen(tail)),
		 tail);
	if (slash) {
		if (strcmp(slash, "/backends") != 0)
			return admin_error(out, 404, "no such path");
		backends = true;
	}
	ci = l7_upstreams_find(p->ups, name);
	if (ci < 0)
		return admin_error(out, 404, "no such cluster: %s", name);
	if (strcmp(req->method, "GET") == 0) {
		*out = l7_upstreams_cluster_json(p->ups, (size_t)ci, loop_clock_ms());
		return 200;
	}
	if (!backends)
		return admin_error(out, 405, "changes go to /v1/clusters/%s/backends", name);
	if (!req->body)
		return admin_error(out, 400, "a JSON body is required");
	if (strcmp(req->method, "PUT") == 0) {
		next = l7_upset_parse(p->ups, (size_t)ci, req->body, err, sizeof(err));
	} else {
		const json_t *a = json_object_get(req->body, "address");
		const json_t *w = json_object_get(req->body, "weight");
		const json_t *d = json_object_get(req->body, "drain");
		const json_t *v = json_object_get(req->body, "version");
		bool del = strcmp(req->method, "DELETE") == 0;
		const char *key;
		json_t *val;

		json_object_foreach((json_t *)req->body, key, val)
		{
			if (strcmp(key, "address") && strcmp(key, "version") &&
			    (del || (strcmp(key, "weight") && strcmp(key, "drain"))))
				return admin_error(out, 400, "unknown field \"%s\"", key);
		}
		if (!json_is_string(a))
			return admin_error(out, 400, "address: expected \"ADDR:PORT\"");
		if (w && (!json_is_integer(w) || json_integer_value(w) < 1 ||
			  json_integer_value(w) > L7_UP_MAX_WEIGHT))
			return admin_error(out, 400, "weight: expected an integer from 1 to %d",
					   L7_UP_MAX_WEIGHT);
		if (d && !json_is_boolean(d))
			return admin_error(out, 400, "drain: expected true or false");
		if (v && (!json_is_integer(v) || json_integer_value(v) < 1 ||
			  (uint64_t)json_integer_value(v) > L7_UP_MAX_VERSION))
			return admin_error(out, 400, "version: expected an integer from 1 to 2^53");
		next =
		    l7_upset_edit(p->ups, (size_t)ci, json_string_value(a),
				  w ? (uint32_t)json_integer_value(w) : 0, d ? json_is_true(d) : -1,
				  del, v ? (uint64_t)json_integer_value(v) : 0, err, sizeof(err));
		if (!next && del && strstr(err, "is not in cluster")) {
			p->ups->refused++;
			return admin_error(out, 404, "%s", err);
		}
	}
	if (!next) {
		p->ups->refused++;
		return admin_error(out, 400, "%s", err);
	}
	if (l7_upstreams_publish(p->ups, (size_t)ci, next, "api", err, sizeof(err)))
		return admin_error(out, 409, "%s", err);
	for (unsigned i = 0; i < p->n; i++)
		worker_upstreams_changed(&p->workers[i]);
	cur = l7_upstreams_current(p->ups, (size_t)ci);
	log_info("cluster %s: backend set version %llu (%zu backends) from the API", name,
		 (unsigned long long)cur->version, cur->n);
	*out = json_pack("{s:s,s:I,s:i}", "cluster", name, "version", (json_int_t)cur->version,
			 "backends", (int)cur->n);
	return 200;
}

/*
 * What in a new config a TLS reload cannot apply to the running proxy
 * (listeners, routes and the identity header stay as they started), or
 * NULL. Applying the material while the rest stays would mix two configs.
 */
static const char *tls_reload_blocker(const struct l7_config *run, const struct l7_config *nc)
{
	bool ca_run = run->tls.client_ca[0], ca_new = nc->tls.client_ca[0];

	if (run->n_listeners != nc->n_listeners)
		return "the listeners changed";
	for (size_t i = 0; i < nc->n_listeners; i++)
		if (run->listeners[i].tls != nc->listeners[i].tls ||
		    run->listeners[i].client_auth != nc->listeners[i].client_auth ||
		    run->listeners[i].addr_len != nc->listeners[i].addr_len ||
		    memcmp(&run->listeners[i].addr, &nc->listeners[i].addr,
			   nc->listeners[i].addr_len))
			return "the listeners changed";
	if (ca_run != ca_new)
		return "tls.client_ca was added or removed";
	if (strcmp(run->tls.identity_header, nc->tls.identity_header) != 0)
		return "tls.identity_header changed";
	if (run->n_routes != nc->n_routes)
		return "the routes changed";
	for (size_t i = 0; i < nc->n_routes; i++)
		if (run->routes[i].early_data != nc->routes[i].early_data ||
		    run->routes[i].require_identity != nc->routes[i].require_identity)
			return "a route's early_data or require_client_identity changed";
	return NULL;
}

/*
 * Reload the TLS material (certificates, keys, OCSP staples, client CA,
 * ticket secret) from the config file: parse it, build a new base context,
 * hand it to the workers. Anything wrong keeps the running material and
 * says why, and so does a file that changes what only a restart applies
 * (tls_reload_blocker); other settings are ignored for now. 0 or -1.
 */
static int reload_tls(struct proxy *p)
{
	struct l7_config nc;
	char *err = NULL;
	SSL_CTX *ctx = NULL;

	if (l7_config_load(p->path, &nc, &err) == 0) {
		const char *why = tls_reload_blocker(p->cfg, &nc);

		if (why && asprintf(&err, "%s: %s; restart to apply it", p->path, why) < 0)
			err = strdup(why);
		else if (!why && nc.tls.n_certs)
			ctx = l7_tls_server_new(&nc, &err);
		l7_config_free(&nc);
	}
	if (err || (p->ssl_ctx && !ctx)) {
		p->reload_failures++;
		snprintf(p->reload_error, sizeof(p->reload_error), "%s",
			 err ? err : "TLS setup failed");
		log_err("reload: %s; the running TLS material stays in service", p->reload_error);
		free(err);
		SSL_CTX_free(ctx);
		return -1;
	}
	p->reloads++;
	p->reload_error[0] = '\0';
	if (ctx) {
		for (unsigned i = 0; i < p->n; i++)
			worker_set_tls(&p->workers[i], ctx);
		SSL_CTX_free(p->ssl_ctx);
		p->ssl_ctx = ctx;
	}
	log_info("reload: TLS certificates, keys and ticket secret reloaded (other settings "
		 "take a restart)");
	return 0;
}

/* POST /v1/reload: as SIGHUP, and says how it went. */
static int api_reload(void *ctx, const struct admin_req *req, json_t **out)
{
	struct proxy *p = ctx;

	(void)req;
	if (reload_tls(p))
		return admin_error(out, 422, "%s", p->reload_error);
	*out = json_pack("{s:b,s:s}", "ok", 1, "reloaded", "tls");
	return 200;
}

static const struct admin_route routes[] = {
    {"GET", "/v1/status", api_status},
    {"GET", "/v1/routes", api_routes},
    {"GET", "/v1/clusters", api_clusters},
    {"GET", "/v1/clusters/*", api_clusters},
    {"PUT", "/v1/clusters/*", api_clusters},
    {"POST", "/v1/clusters/*", api_clusters},
    {"DELETE", "/v1/clusters/*", api_clusters},
    {"GET", "/v1/stats", api_stats},
    {"GET", "/v1/config", api_config},
    {"POST", "/v1/reload", api_reload},
    {NULL, NULL, NULL},
};

/* Build every TLS context the config needs. 0 or -1 (message printed). */
static int tls_setup(const struct l7_config *cfg, SSL_CTX **server, SSL_CTX ***clients)
{
	char *err = NULL;

	if (cfg->tls.n_certs) {
		*server = l7_tls_server_new(cfg, &err);
		if (!*server)
			goto fail;
	}
	*clients = calloc(cfg->n_clusters, sizeof(**clients));
	if (!*clients)
		return -1;
	for (size_t i = 0; i < cfg->n_clusters; i++) {
		const struct l7_cluster_cfg *cl = &cfg->clusters[i];

		if (!l7_proto_tls(cl->proto))
			continue;
		(*clients)[i] = l7_tls_client_ctx_new(cl, &err);
		if (!(*clients)[i])
			goto fail;
	}
	return 0;
fail:
	fprintf(stderr, "l7proxy: %s\n", err ? err : "TLS setup failed");
	free(err);
	return -1;
}

static void on_signal(struct loop_io *io, uint32_t events)
{
	struct proxy *p = container_of(io, struct proxy, sig_io);
	struct signalfd_siginfo si;

	(void)events;
	if (read(io->fd, &si, sizeof(si)) != sizeof(si))
		return;
	if (si.ssi_signo == SIGHUP) {
		reload_tls(p);
		return;
	}
	log_info("signal %u: shutting down", si.ssi_signo);
	loop_stop(&p->loop);
}

/* The main thread's loop: signals and the admin socket. Workers never
 * wait on it. */
static void serve_admin(struct proxy *p, const sigset_t *mask)
{
	struct admin_server *admin = NULL;

	if (loop_init(&p->loop)) {
		log_err("event loop: %s", strerror(errno));
		return;
	}
	p->sig_io =
	    (struct loop_io){.fd = signalfd(-1, mask, SFD_CLOEXEC | SFD_NONBLOCK), .fn = on_signal};
	if (p->sig_io.fd < 0 || loop_io_watch(&p->loop, &p->sig_io, EPOLLIN)) {
		log_err("signalfd: %s", strerror(errno));
		goto out;
	}
	if (p->cfg->admin_socket[0]) {
		admin = admin_server_new(&p->loop, p->cfg->admin_socket, routes, p);
		if (!admin)
			log_warn("admin socket %s: %s", p->cfg->admin_socket, strerror(errno));
	}
	loop_run(&p->loop);
	admin_server_free(admin);
out:
	loop_io_close(&p->loop, &p->sig_io);
	loop_fini(&p->loop);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"check", no_argument, NULL, 'C'},
	    {"verbose", no_argument, NULL, 'v'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *path = "/etc/portico/l7proxy.conf";
	struct l7_config cfg;
	struct proxy px = {.cfg = &cfg};
	pthread_t *threads = NULL;
	SSL_CTX *ctx = NULL, **up_ctx = NULL;
	unsigned n = 0, started = 0;
	int c, log_fd = -1, rc = 1;
	bool check = false, rcu_registered = false;
	char *err = NULL, msg[512];
	sigset_t mask;

	log_init("l7proxy", LOG_LVL_INFO);
	while ((c = getopt_long(argc, argv, "c:vh", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			path = optarg;
			break;
		case 'C':
			check = true;
			break;
		case 'v':
			log_init("l7proxy", LOG_LVL_DEBUG);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	px.path = path;
	if (l7_config_load(path, &cfg, &err)) {
		fprintf(stderr, "l7proxy: %s\n", err ? err : "cannot load config");
		free(err);
		return 1;
	}
	if (tls_setup(&cfg, &ctx, &up_ctx))
		goto out_ctx;
	if (check) {
		printf("%s: ok\n", path);
		rc = 0;
		goto out_ctx;
	}
	if (listeners_check_free(&cfg, msg, sizeof(msg))) {
		fprintf(stderr, "l7proxy: %s\n", msg);
		goto out_ctx;
	}
	log_fd = open_log(cfg.access_log);
	if (cfg.access_log[0] && log_fd < 0) {
		log_err("access log %s: %s", cfg.access_log, strerror(errno));
		goto out_ctx;
	}

	/* Workers inherit this mask: only the main thread takes signals. */
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);

	n = cfg.workers ? cfg.workers : (unsigned)sysconf(_SC_NPROCESSORS_ONLN);
	px.started = (int64_t)time(NULL);
	px.ups = l7_upstreams_new(&cfg, n);
	px.workers = calloc(n, sizeof(*px.workers));
	threads = calloc(n, sizeof(*threads));
	if (!px.workers || !threads || !px.ups)
		goto out_workers;
	/* worker_init copies the sets inside RCU read sections. */
	urcu_memb_register_thread();
	rcu_registered = true;
	for (unsigned i = 0; i < n; i++) {
		if (worker_init(&px.workers[i], (int)i, &cfg, px.ups, ctx, up_ctx, log_fd)) {
			worker_fini(&px.workers[i]);
			goto out_workers;
		}
		if (pthread_create(&threads[i], NULL, worker_run, &px.workers[i])) {
			worker_fini(&px.workers[i]);
			goto out_workers;
		}
		started++;
	}
	urcu_memb_unregister_thread();
	rcu_registered = false;
	px.n = started;
	px.ssl_ctx = ctx;
	ctx = NULL; /* px owns it now; the workers hold references of their own */
	if (listeners_verify(&cfg, n, msg, sizeof(msg))) {
		log_err("%s", msg);
		goto out_workers;
	}
	log_info("%u workers serving %zu listeners for %s: %zu clusters, %zu routes", n,
		 cfg.n_listeners, cfg.served_by, cfg.n_clusters, cfg.n_routes);
	serve_admin(&px, &mask);
	rc = 0;
out_workers:
	if (rcu_registered)
		urcu_memb_unregister_thread();
	for (unsigned i = 0; i < started; i++)
		worker_stop(&px.workers[i]);
	for (unsigned i = 0; i < started; i++) {
		pthread_join(threads[i], NULL);
		worker_fini(&px.workers[i]);
	}
	free(px.workers);
	free(threads);
	l7_upstreams_free(px.ups);
	if (log_fd >= 0)
		close(log_fd);
out_ctx:
	for (size_t i = 0; up_ctx && i < cfg.n_clusters; i++)
		SSL_CTX_free(up_ctx[i]);
	free(up_ctx);
	SSL_CTX_free(ctx);
	SSL_CTX_free(px.ssl_ctx);
	l7_config_free(&cfg);
	return rc;
}
