// SPDX-License-Identifier: GPL-2.0-only
/*
 * l7proxy - the TLS-terminating HTTP/1.1, HTTP/2 and gRPC proxy of the L7
 * hosts.
 *
 * main() loads the config, builds the TLS contexts, makes sure no other
 * process listens on our ports (or takes the listening sockets over from
 * the process it upgrades, takeover.h), starts one worker per core, and
 * then serves the admin socket and signals: SIGHUP reloads, SIGTERM and
 * SIGINT drain (a second one stops at once), SIGUSR2 starts a binary
 * upgrade. Everything on the request path is in the workers.
 */
#include "http_admin.h"
#include "list.h"
#include "listener.h"
#include "log.h"
#include "probe.h"
#include "prom.h"
#include "sdnotify.h"
#include "takeover.h"
#include "tls.h"
#include "worker.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <getopt.h>
#include <limits.h>
#include <sys/epoll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
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
	struct l7_probes *probes; /* active health checks of ups, run in loop */
	int64_t started;	  /* Unix seconds */
	uint64_t reloads, reload_failures;
	char reload_error[512]; /* why the last reload failed, "" if it did not */
	struct loop loop;	/* the main thread's: signals and the admin API */
	struct loop_io sig_io;
	char exe[PATH_MAX]; /* this binary's path as started: an upgrade runs what is there now */
	char cfg_abs[PATH_MAX]; /* the config's absolute path, for the successor */
	char *fingerprint;	/* l7_config_fingerprint of the config in service */
	bool verbose;
	int log_fd; /* the access log the workers write, -1 if none */
	uint64_t log_reopens;
	int takeover_fd;     /* started by an upgrade: the predecessor's end, else -1 */
	bool took_over;	     /* ... and so it was */
	bool upgrade_reaped; /* the successor exited (SIGCHLD): never kill its pid */
	bool draining;	     /* SIGTERM or handed over: workers finish and stop */
	uint64_t drain_started_ms;
	struct loop_timer drain_timer; /* polls the workers while they drain */
	pid_t upgrade_pid;	       /* a successor starting, 0 if none */
	struct loop_io upgrade_io;     /* its answer comes here */
	struct loop_timer upgrade_timer;
	uint64_t upgrades;
	char upgrade_error[256];	 /* why the last upgrade failed, "" if it did not */
	uint64_t watchdog_ms;		 /* systemd's watchdog interval, 0 if none */
	struct admin_server *metrics;	 /* GET /metrics over TCP (metrics_listen) */
	struct loop_timer metrics_retry; /* binding it again, while a predecessor holds it */
	struct loop_timer watchdog_timer;
};

/* How long a successor may take to say it serves. */
#define UPGRADE_TIMEOUT_MS 30000

static void usage(FILE *f)
{
	fprintf(f, "usage: l7proxy [-c CONFIG] [--check] [-v]\n"
		   "  -c, --config FILE  config file (default /etc/portico/l7proxy.conf)\n"
		   "      --check        validate the config (and load the certificates), exit\n"
		   "  -v, --verbose      debug logging\n"
		   "(--takeover-fd N is for the proxy's own upgrade: see docs/operations.md)\n");
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
	    "{s:s,s:s,s:s,s:s,s:i,s:I,s:I,s:i,s:s,s:I,s:I,s:I,s:s?,s:b,s:i,s:I,s:s?}", "role",
	    "l7proxy", "version", PORTICO_VERSION, "tls_library", OpenSSL_version(OPENSSL_VERSION),
	    "served_by", p->cfg->served_by, "pid", (int)getpid(), "started", (json_int_t)p->started,
	    "uptime_s", (json_int_t)(time(NULL) - p->started), "workers", (int)p->n, "config",
	    p->path, "reloads", (json_int_t)p->reloads, "reload_failures",
	    (json_int_t)p->reload_failures, "upstream_updates", (json_int_t)p->ups->updates,
	    "last_reload_error", p->reload_error[0] ? p->reload_error : NULL, "draining",
	    p->draining, "upgrade_pid", (int)p->upgrade_pid, "upgrades", (json_int_t)p->upgrades,
	    "last_upgrade_error", p->upgrade_error[0] ? p->upgrade_error : NULL);
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
	l7_probes_sync(p->probes); /* new backends get probes, removed ones lose theirs */
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

static int start_upgrade(struct proxy *p);
static int tls_setup(const struct l7_config *cfg, SSL_CTX **server, SSL_CTX ***clients,
		     char **errp);

/* --- drain, upgrade, systemd ---------------------------------------------- */

static void drain_poll(struct loop_timer *t)
{
	struct proxy *p = container_of(t, struct proxy, drain_timer);
	unsigned left = 0;

	for (unsigned i = 0; i < p->n; i++)
		left += !worker_finished(&p->workers[i]);
	/* Workers cut what is left at the deadline themselves; the margin is
	 * for one that cannot even do that. */
	if (!left || loop_clock_ms() > p->drain_started_ms + p->cfg->drain_timeout_ms + 5000) {
		if (left)
			log_warn("drain: %u workers did not finish in time; stopping them", left);
		loop_stop(&p->loop);
		return;
	}
	loop_timer_in(&p->loop, &p->drain_timer, drain_poll, 50);
}

static void upgrade_end(struct proxy *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * Stop accepting and let the workers finish what is in flight, then
 * leave the main loop (main() stops and joins the workers). why is for
 * the log; handover: a successor serves the same listening sockets.
 */
static void start_drain(struct proxy *p, const char *why, bool handover)
{
	if (p->draining)
		return;
	p->draining = true;
	/* Stopping wins over a successor still starting (it has copies of
	 * the listening sockets and would serve on). */
	if (p->upgrade_pid)
		upgrade_end(p, "cancelled: this process was asked to stop");
	p->drain_started_ms = loop_clock_ms();
	log_info("draining (%s): no new connections; requests in flight get up to %u ms", why,
		 p->cfg->drain_timeout_ms);
	for (unsigned i = 0; i < p->n; i++)
		worker_drain(&p->workers[i], handover);
	loop_timer_in(&p->loop, &p->drain_timer, drain_poll, 50);
}

/* The upgrade is over, with an error (fmt) or not (NULL). */
static void upgrade_end(struct proxy *p, const char *fmt, ...)
{
	loop_timer_cancel(&p->loop, &p->upgrade_timer);
	if (p->upgrade_io.fd >= 0)
		loop_io_close(&p->loop, &p->upgrade_io);
	p->upgrade_io.fd = -1;
	if (fmt) {
		va_list ap;

		va_start(ap, fmt);
		vsnprintf(p->upgrade_error, sizeof(p->upgrade_error), fmt, ap);
		va_end(ap);
		log_err("upgrade: %s%s", p->upgrade_error,
			p->draining ? "" : "; this process keeps serving");
		/* Reaped by the SIGCHLD handler once it is gone. */
		if (p->upgrade_pid > 0 && !p->upgrade_reaped)
			kill(p->upgrade_pid, SIGKILL);
	}
	p->upgrade_pid = 0;
	p->upgrade_reaped = false;
}

static void on_upgrade_reply(struct loop_io *io, uint32_t events)
{
	struct proxy *p = container_of(io, struct proxy, upgrade_io);
	char buf[64];
	ssize_t n;

	(void)events;
	n = recv(io->fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n > 0) {
		buf[n] = '\0';
		if (strncmp(buf, "ready ", 6) == 0) {
			pid_t pid = p->upgrade_pid;

			p->upgrades++;
			p->upgrade_error[0] = '\0';
			upgrade_end(p, NULL);
			log_info("upgrade: pid %d serves now; this process drains", (int)pid);
			/* The successor binds the metrics port once we let go. */
			loop_timer_cancel(&p->loop, &p->metrics_retry);
			admin_server_free(p->metrics);
			p->metrics = NULL;
			start_drain(p, "handed over to the new process", true);
			return;
		}
	}
	upgrade_end(p, "the new process (pid %d) exited before it served; see its log",
		    (int)p->upgrade_pid);
}

static void on_upgrade_timeout(struct loop_timer *t)
{
	struct proxy *p = container_of(t, struct proxy, upgrade_timer);

	upgrade_end(p, "the new process (pid %d) was not ready within %d ms; killed it",
		    (int)p->upgrade_pid, UPGRADE_TIMEOUT_MS);
}

/*
 * Start the binary at p->exe (the installed one: a package upgrade has
 * replaced it) with our config, and hand it every listening socket. It
 * answers once it serves; then we drain. Returns 0 (started) or an HTTP
 * status with the reason in p->upgrade_error.
 */
static int start_upgrade(struct proxy *p)
{
	char fdarg[16];
	char *argv[8];
	int sp[2], *fds, argc = 0, rc;
	size_t n = 0;
	sigset_t none;
	pid_t pid;

	if (p->draining || p->upgrade_pid) {
		snprintf(p->upgrade_error, sizeof(p->upgrade_error), "%s",
			 p->draining ? "draining already" : "an upgrade is in progress");
		return 409;
	}
	fds = calloc((size_t)p->n * p->cfg->n_listeners + 1, sizeof(*fds));
	if (!fds || socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0) {
		snprintf(p->upgrade_error, sizeof(p->upgrade_error), "%s", strerror(errno));
		free(fds);
		return 500;
	}
	/* Workers close listeners only when draining, which we are not. */
	for (unsigned i = 0; i < p->n; i++)
		for (size_t j = 0; j < p->workers[i].n_listeners; j++)
			fds[n++] = worker_listen_fd(&p->workers[i], j);
	snprintf(fdarg, sizeof(fdarg), "%d", sp[1]);
	argv[argc++] = p->exe;
	argv[argc++] = "-c";
	argv[argc++] = p->cfg_abs;
	if (p->verbose)
		argv[argc++] = "-v";
	argv[argc++] = "--takeover-fd";
	argv[argc++] = fdarg;
	argv[argc] = NULL;
	sigemptyset(&none);
	pid = fork();
	if (pid == 0) {
		/* Only async-signal-safe calls until exec. The successor must
		 * not start with our blocked signals or without its end. */
		sigprocmask(SIG_SETMASK, &none, NULL);
		fcntl(sp[1], F_SETFD, 0);
		execv(argv[0], argv);
		_exit(127);
	}
	close(sp[1]);
	if (pid < 0) {
		snprintf(p->upgrade_error, sizeof(p->upgrade_error), "fork: %s", strerror(errno));
		close(sp[0]);
		free(fds);
		return 500;
	}
	p->upgrade_pid = pid;
	p->upgrade_io = (struct loop_io){.fd = sp[0], .fn = on_upgrade_reply};
	rc = takeover_send(sp[0], fds, n);
	free(fds);
	if (rc || loop_io_watch(&p->loop, &p->upgrade_io, EPOLLIN)) {
		upgrade_end(p, "handing over the sockets: %s", strerror(rc ? -rc : errno));
		return 500;
	}
	loop_timer_in(&p->loop, &p->upgrade_timer, on_upgrade_timeout, UPGRADE_TIMEOUT_MS);
	log_info("upgrade: started %s as pid %d with %zu listening sockets", p->exe, (int)pid, n);
	return 0;
}

/*
 * SIGHUP, POST /v1/reload: read the config file again and apply all of it,
 * or none. A file whose only changes are in the downstream TLS material
 * (certificates, keys, OCSP staples, client CA bundle, ticket secret) is
 * applied in place: a new base context goes to the workers, connections
 * in flight keep theirs. Any other change (routes, clusters, listeners,
 * timeouts, ...) is applied by handing the listening sockets to a new
 * process with the new config, as an upgrade does: no request fails, and
 * nothing of two configs is ever mixed. Either way the file is validated
 * first (parsed, every TLS context built) and a bad one changes nothing.
 * Returns 0 (applied in place), 1 (handover started) or -1
 * (p->reload_error says why).
 */
static int reload(struct proxy *p)
{
	struct l7_config nc;
	char *err = NULL, *fp = NULL;
	SSL_CTX *ctx = NULL, **cctx = NULL;
	const char *why = NULL;
	int rc = -1, status;

	if (l7_config_load(p->path, &nc, &err) != 0)
		goto out;
	fp = l7_config_fingerprint(p->path);
	if (!fp || !p->fingerprint || strcmp(fp, p->fingerprint) != 0)
		why = "settings beyond the TLS material changed";
	else
		why = tls_reload_blocker(p->cfg, &nc);
	if (tls_setup(&nc, &ctx, &cctx, &err))
		goto out_cfg;
	if (why) {
		status = start_upgrade(p);
		if (status) {
			if (asprintf(&err, "%s: %s; a new process would apply it, but: %s", p->path,
				     why, p->upgrade_error) < 0)
				err = NULL;
			goto out_cfg;
		}
		log_info("reload: %s: %s; handing over to pid %d, which applies all of it", p->path,
			 why, (int)p->upgrade_pid);
		rc = 1;
		goto out_cfg;
	}
	if (ctx) {
		for (unsigned i = 0; i < p->n; i++)
			worker_set_tls(&p->workers[i], ctx);
		SSL_CTX_free(p->ssl_ctx);
		p->ssl_ctx = ctx;
		ctx = NULL;
	}
	log_info("reload: TLS certificates, keys and ticket secret reloaded in place");
	rc = 0;
out_cfg:
	for (size_t i = 0; cctx && i < nc.n_clusters; i++)
		SSL_CTX_free(cctx[i]);
	free(cctx);
	l7_config_free(&nc);
out:
	SSL_CTX_free(ctx);
	free(fp);
	if (rc < 0) {
		p->reload_failures++;
		snprintf(p->reload_error, sizeof(p->reload_error), "%s",
			 err ? err : "the new config cannot be applied");
		log_err("reload: %s; the running config stays in service", p->reload_error);
	} else {
		p->reloads++;
		p->reload_error[0] = '\0';
	}
	free(err);
	return rc;
}

/* POST /v1/upgrade: as SIGUSR2. 202: the new process starts; GET
 * /v1/status on the socket answers from it once it serves. */
static int api_upgrade(void *ctx, const struct admin_req *req, json_t **out)
{
	struct proxy *p = ctx;
	int status;

	(void)req;
	status = start_upgrade(p);
	if (status)
		return admin_error(out, status, "%s", p->upgrade_error);
	*out = json_pack("{s:i,s:i}", "old_pid", (int)getpid(), "new_pid", (int)p->upgrade_pid);
	return 202;
}

/* systemd's watchdog: alive means every worker still turns its loop
 * (each does at least once a second) or has finished. */
static void watchdog_tick(struct loop_timer *t)
{
	struct proxy *p = container_of(t, struct proxy, watchdog_timer);
	uint64_t now = loop_clock_ms(), stale = p->watchdog_ms > 5000 ? p->watchdog_ms : 5000;
	bool alive = true;

	for (unsigned i = 0; i < p->n; i++) {
		uint64_t hb = __atomic_load_n(&p->workers[i].heartbeat_ms, __ATOMIC_RELAXED);

		if (!worker_finished(&p->workers[i]) && hb + stale < now) {
			log_err("watchdog: worker %u has not turned its loop for %llu ms", i,
				(unsigned long long)(now - hb));
			alive = false;
		}
	}
	if (alive)
		sd_notifyf("WATCHDOG=1");
	loop_timer_in(&p->loop, &p->watchdog_timer, watchdog_tick, p->watchdog_ms / 2);
}

/* POST /v1/reload: as SIGHUP, and says how it went. */
static int api_reload(void *ctx, const struct admin_req *req, json_t **out)
{
	struct proxy *p = ctx;

	(void)req;
	switch (reload(p)) {
	case 0:
		*out = json_pack("{s:b,s:s}", "ok", 1, "reloaded", "tls");
		return 200;
	case 1:
		*out = json_pack("{s:b,s:s,s:i,s:i}", "ok", 1, "reloaded", "handover", "old_pid",
				 (int)getpid(), "new_pid", (int)p->upgrade_pid);
		return 202;
	default:
		return admin_error(out, 422, "%s", p->reload_error);
	}
}

/* --- Prometheus ------------------------------------------------------------ */

/* Counters that have families of their own below, or are gauges. */
static bool counter_has_family(const char *name)
{
	static const char *const own[] = {"conns_open",	     "tls13_full",	"tls13_resumed",
					  "tls12_full",	     "tls12_resumed",	"upstream_connects",
					  "upstream_reuses", "upstream_errors", NULL};

	for (size_t i = 0; own[i]; i++)
		if (strcmp(name, own[i]) == 0)
			return true;
	return false;
}

/* Each backend of each cluster's current set (the API thread is the sets'
 * only writer, so it reads them without a read-side section). */
static void metrics_backends(struct proxy *p, struct prom_buf *b)
{
	static const struct {
		const char *name, *help;
		enum prom_type type;
	} fam[] = {
	    {"portico_l7_backend_requests_total", "Attempts sent to the backend.", PROM_COUNTER},
	    {"portico_l7_backend_failures_total",
	     "Attempts to the backend that failed (connect, reset, timeout, protocol).",
	     PROM_COUNTER},
	    {"portico_l7_backend_active_requests", "Requests in flight on the backend.",
	     PROM_GAUGE},
	    {"portico_l7_backend_connections", "Open connections to the backend.", PROM_GAUGE},
	    {"portico_l7_backend_up",
	     "1 if the backend takes new requests: not drained, not down by active or passive "
	     "health on any worker.",
	     PROM_GAUGE},
	    {"portico_l7_backend_weight", "The backend's weight in its cluster's set.", PROM_GAUGE},
	};
	uint64_t now = loop_clock_ms();

	for (size_t f = 0; f < sizeof(fam) / sizeof(fam[0]); f++) {
		prom_family(b, fam[f].name, fam[f].type, fam[f].help);
		for (size_t ci = 0; ci < p->ups->n; ci++) {
			const struct l7_upset *set = l7_upstreams_current(p->ups, ci);
			const char *cl = p->cfg->clusters[ci].name;

			for (size_t i = 0; set && i < set->n; i++) {
				const struct l7_member *mb = &set->m[i];
				const struct l7_upstream *up = mb->up;
				uint64_t v = 0;
				bool down = mb->drain || !l7_upstream_active_ok(up);

				for (unsigned w = 0; w < up->n_workers; w++) {
					const struct l7_up_wstat *st = &up->st[w];

					switch (f) {
					case 0:
						v += __atomic_load_n(&st->requests,
								     __ATOMIC_RELAXED);
						break;
					case 1:
						v += __atomic_load_n(&st->failures,
								     __ATOMIC_RELAXED);
						break;
					case 2:
						v += __atomic_load_n(&st->active, __ATOMIC_RELAXED);
						break;
					case 3:
						v += __atomic_load_n(&st->conns, __ATOMIC_RELAXED);
						break;
					default:
						down |= __atomic_load_n(&st->down_until,
									__ATOMIC_RELAXED) > now;
					}
				}
				if (f == 4)
					v = !down;
				else if (f == 5)
					v = mb->weight;
				prom_sample_u64(b, PROM_LABELS("cluster", cl, "backend", up->name),
						v);
			}
		}
	}
	prom_family(b, "portico_l7_backend_set_version", PROM_GAUGE,
		    "Version of the cluster's backend set in service.");
	for (size_t ci = 0; ci < p->ups->n; ci++) {
		const struct l7_upset *set = l7_upstreams_current(p->ups, ci);

		prom_sample_u64(b, PROM_LABELS("cluster", p->cfg->clusters[ci].name),
				set ? set->version : 0);
	}
}

/* GET /metrics: the Prometheus text exposition (docs/api.md, "Metrics"). */
static int api_metrics(void *ctx, const struct admin_req *req, json_t **out)
{
	struct proxy *p = ctx;
	struct prom_buf b;
	size_t buffered = 0, len;
	uint64_t conns = 0;
	char *text;

	prom_init(&b);
	prom_family(&b, "portico_build_info", PROM_GAUGE,
		    "The running build: always 1, the facts are in the labels.");
	prom_sample_u64(&b,
			PROM_LABELS("daemon", "l7proxy", "version", PORTICO_VERSION, "tls_library",
				    OpenSSL_version(OPENSSL_VERSION)),
			1);
	prom_family(&b, "portico_l7_start_time_seconds", PROM_GAUGE,
		    "When the process started (Unix seconds).");
	prom_sample_u64(&b, PROM_NO_LABELS, (uint64_t)p->started);
	prom_family(&b, "portico_l7_draining", PROM_GAUGE,
		    "1 while the process drains (SIGTERM, or handed over by an upgrade).");
	prom_sample_u64(&b, PROM_NO_LABELS, p->draining);
	prom_family(&b, "portico_l7_reloads_total", PROM_COUNTER, "Reloads by outcome.");
	prom_sample_u64(&b, PROM_LABELS("result", "ok"), p->reloads);
	prom_sample_u64(&b, PROM_LABELS("result", "failed"), p->reload_failures);
	prom_family(&b, "portico_l7_upstream_updates_total", PROM_COUNTER,
		    "Backend-set updates by outcome (API and pulled).");
	prom_sample_u64(&b, PROM_LABELS("result", "applied"), p->ups->updates);
	prom_sample_u64(&b, PROM_LABELS("result", "refused"), p->ups->refused);

	for (unsigned i = 0; i < p->n; i++) {
		conns += WORKER_STAT(&p->workers[i], conns_open);
		buffered +=
		    __atomic_load_n(&p->workers[i].pool.in_use, __ATOMIC_RELAXED) * BLK_SIZE;
	}
	prom_family(&b, "portico_l7_connections_open", PROM_GAUGE, "Client connections open.");
	prom_sample_u64(&b, PROM_NO_LABELS, conns);
	prom_family(&b, "portico_l7_buffered_bytes", PROM_GAUGE,
		    "Bytes of buffer blocks in use (request and response bodies in flight).");
	prom_sample_u64(&b, PROM_NO_LABELS, buffered);

	prom_family(&b, "portico_l7_tls_handshakes_total", PROM_COUNTER,
		    "Completed TLS handshakes by protocol version and full/resumed.");
#define SUM(name)                                                                                  \
	({                                                                                         \
		uint64_t s_ = 0;                                                                   \
		for (unsigned i_ = 0; i_ < p->n; i_++)                                             \
			s_ += WORKER_STAT(&p->workers[i_], name);                                  \
		s_;                                                                                \
	})
	prom_sample_u64(&b, PROM_LABELS("version", "TLSv1.3", "resumption", "full"),
			SUM(tls13_full));
	prom_sample_u64(&b, PROM_LABELS("version", "TLSv1.3", "resumption", "resumed"),
			SUM(tls13_resumed));
	prom_sample_u64(&b, PROM_LABELS("version", "TLSv1.2", "resumption", "full"),
			SUM(tls12_full));
	prom_sample_u64(&b, PROM_LABELS("version", "TLSv1.2", "resumption", "resumed"),
			SUM(tls12_resumed));
	prom_family(&b, "portico_l7_upstream_connections_total", PROM_COUNTER,
		    "Backend connections by what became of an attempt: opened, reused (a pooled "
		    "one), failed.");
	prom_sample_u64(&b, PROM_LABELS("result", "opened"), SUM(upstream_connects));
	prom_sample_u64(&b, PROM_LABELS("result", "reused"), SUM(upstream_reuses));
	prom_sample_u64(&b, PROM_LABELS("result", "failed"), SUM(upstream_errors));
	prom_family(&b, "portico_l7_events_total", PROM_COUNTER,
		    "Everything else the workers count, by event (docs/api.md lists them).");
#define X(name)                                                                                    \
	if (!counter_has_family(#name))                                                            \
		prom_sample_u64(&b, PROM_LABELS("event", #name), SUM(name));
	WORKER_COUNTERS(X)
#undef X
#undef SUM
	metrics_backends(p, &b);
	l7m_render(&b, p->cfg, p->workers, p->n);
	text = prom_finish(&b, &len);
	if (!text)
		return admin_error(out, 500, "metrics: %s", strerror(errno));
	admin_reply_text(req, "text/plain; version=0.0.4; charset=utf-8", text, len);
	return 200;
}

/* What a scraper reaches over TCP (metrics_listen): nothing that changes
 * anything. */
static const struct admin_route metrics_routes[] = {
    {"GET", "/metrics", api_metrics},
    {NULL, NULL, NULL},
};

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
    {"POST", "/v1/upgrade", api_upgrade},
    {"GET", "/metrics", api_metrics},
    {NULL, NULL, NULL},
};

/*
 * Build every TLS context the config needs. 0, or -1 with the reason in
 * *errp (malloc'd) if errp is not NULL, else printed. On failure what was
 * built is left in *server / *clients for the caller to free.
 */
static int tls_setup(const struct l7_config *cfg, SSL_CTX **server, SSL_CTX ***clients, char **errp)
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
	if (errp) {
		*errp = err ? err : strdup("TLS setup failed");
		return -1;
	}
	fprintf(stderr, "l7proxy: %s\n", err ? err : "TLS setup failed");
	free(err);
	return -1;
}

/*
 * SIGUSR1 (logrotate): open the access log's path again and put the new
 * file under the descriptor number the workers write to. dup2 swaps it
 * atomically, so no worker needs telling and no line is split or lost;
 * lines written before land in the old (renamed) file.
 */
static void reopen_log(struct proxy *p)
{
	int fd;

	if (p->log_fd < 0 || strcmp(p->cfg->access_log, "-") == 0)
		return;
	fd = open_log(p->cfg->access_log);
	if (fd < 0) {
		log_err("reopening the access log %s: %s; still writing the old file",
			p->cfg->access_log, strerror(errno));
		return;
	}
	if (dup2(fd, p->log_fd) < 0)
		log_err("reopening the access log: dup2: %s", strerror(errno));
	else
		p->log_reopens++;
	close(fd);
	log_info("access log %s reopened", p->cfg->access_log);
}

static void on_signal(struct loop_io *io, uint32_t events)
{
	struct proxy *p = container_of(io, struct proxy, sig_io);
	struct signalfd_siginfo si;

	(void)events;
	if (read(io->fd, &si, sizeof(si)) != sizeof(si))
		return;
	switch (si.ssi_signo) {
	case SIGHUP:
		reload(p);
		return;
	case SIGUSR2:
		start_upgrade(p);
		return;
	case SIGUSR1:
		reopen_log(p);
		return;
	case SIGCHLD: {
		pid_t pid;

		/* A successor that failed (its own log says why). Its pid may
		 * be reused from now on: upgrade_end must not signal it. */
		while ((pid = waitpid(-1, NULL, WNOHANG)) > 0)
			if (pid == p->upgrade_pid)
				p->upgrade_reaped = true;
		return;
	}
	}
	if (p->draining) {
		log_info("signal %u while draining: stopping now", si.ssi_signo);
		loop_stop(&p->loop);
		return;
	}
	sd_notifyf("STOPPING=1");
	start_drain(p, si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT", false);
}

/*
 * Serve GET /metrics on metrics_listen. After an upgrade the predecessor
 * holds the port until it has drained: until then, try again every second
 * (its scrapes go on meanwhile, ours start when it is gone).
 */
static void metrics_bind(struct loop_timer *t)
{
	struct proxy *p = container_of(t, struct proxy, metrics_retry);

	p->metrics = admin_server_new_tcp(&p->loop, p->cfg->metrics_listen, metrics_routes, p);
	if (p->metrics)
		return;
	if (errno == EADDRINUSE && !p->draining) {
		if (!p->metrics_retry.fn)
			log_warn("metrics_listen %s: in use; trying again every second",
				 p->cfg->metrics_listen);
		loop_timer_in(&p->loop, &p->metrics_retry, metrics_bind, 1000);
		return;
	}
	log_warn("metrics_listen %s: %s", p->cfg->metrics_listen, strerror(errno));
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
	p->probes = l7_probes_new(&p->loop, p->cfg, p->ups); /* NULL: logged, no probes */
	if (p->takeover_fd >= 0) {
		char msg[32];
		int n = snprintf(msg, sizeof(msg), "ready %d", (int)getpid());

		/* Serving: the predecessor may drain. Said before the admin
		 * socket is bound anew, so that a successor that fails before
		 * this point leaves the predecessor's socket in place. */
		if (send(p->takeover_fd, msg, (size_t)n, MSG_NOSIGNAL) < 0)
			log_warn("takeover: telling the old process: %s", strerror(errno));
		close(p->takeover_fd);
		p->takeover_fd = -1;
		/* Under systemd the unit's main process is now this one
		 * (NotifyAccess=all lets a child say so). */
		sd_notifyf("MAINPID=%d\nREADY=1\nSTATUS=serving (took over)", (int)getpid());
	}
	if (p->cfg->admin_socket[0]) {
		admin = admin_server_new(&p->loop, p->cfg->admin_socket, routes, p);
		if (!admin)
			log_warn("admin socket %s: %s", p->cfg->admin_socket, strerror(errno));
	}
	if (p->cfg->metrics_listen[0])
		metrics_bind(&p->metrics_retry);
	if (!p->took_over)
		sd_notifyf("READY=1\nSTATUS=serving");
	p->watchdog_ms = sd_watchdog_ms();
	if (p->watchdog_ms)
		loop_timer_in(&p->loop, &p->watchdog_timer, watchdog_tick, p->watchdog_ms / 2);
	loop_run(&p->loop);
	loop_timer_cancel(&p->loop, &p->drain_timer);
	loop_timer_cancel(&p->loop, &p->watchdog_timer);
	if (p->upgrade_pid)
		upgrade_end(p, "this process is stopping");
	admin_server_free(admin);
	loop_timer_cancel(&p->loop, &p->metrics_retry);
	admin_server_free(p->metrics);
out:
	l7_probes_free(p->probes);
	p->probes = NULL;
	loop_io_close(&p->loop, &p->sig_io);
	loop_fini(&p->loop);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'}, {"check", no_argument, NULL, 'C'},
	    {"verbose", no_argument, NULL, 'v'},      {"takeover-fd", required_argument, NULL, 'T'},
	    {"help", no_argument, NULL, 'h'},	      {NULL, 0, NULL, 0},
	};
	const char *path = "/etc/portico/l7proxy.conf";
	struct l7_config cfg;
	struct proxy px = {.cfg = &cfg, .takeover_fd = -1, .log_fd = -1, .upgrade_io = {.fd = -1}};
	int *matrix = NULL; /* takeover: listening sockets, one row per worker */
	ssize_t exe_len;
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
			px.verbose = true;
			break;
		case 'T': {
			char *end;
			long fd = strtol(optarg, &end, 10);

			if (*end || fd < 3 || fd > INT_MAX) {
				fprintf(stderr, "l7proxy: --takeover-fd: bad descriptor \"%s\"\n",
					optarg);
				return 2;
			}
			px.takeover_fd = (int)fd;
			px.took_over = true;
			fcntl(px.takeover_fd, F_SETFD, FD_CLOEXEC);
			/* systemd's watchdog names the predecessor; we become the
			 * unit's main process (MAINPID=) and feed it from now on. */
			unsetenv("WATCHDOG_PID");
			break;
		}
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	px.path = path;
	/* The path as started, symlinks and all: an upgrade that repoints a
	 * symlink must run what it points to now. /proc/self/exe would give
	 * the file this process runs, resolved. */
	if (argv[0][0] == '/') {
		snprintf(px.exe, sizeof(px.exe), "%s", argv[0]);
	} else if (strchr(argv[0], '/') && getcwd(px.exe, sizeof(px.exe))) {
		size_t l = strlen(px.exe);

		snprintf(px.exe + l, sizeof(px.exe) - l, "/%s", argv[0]);
	} else {
		exe_len = readlink("/proc/self/exe", px.exe, sizeof(px.exe) - 1);
		if (exe_len > 0)
			px.exe[exe_len] = '\0';
	}
	if (!realpath(path, px.cfg_abs))
		snprintf(px.cfg_abs, sizeof(px.cfg_abs), "%s", path);
	if (l7_config_load(path, &cfg, &err)) {
		fprintf(stderr, "l7proxy: %s\n", err ? err : "cannot load config");
		free(err);
		return 1;
	}
	if (tls_setup(&cfg, &ctx, &up_ctx, NULL))
		goto out_ctx;
	px.fingerprint = l7_config_fingerprint(path);
	if (check) {
		printf("%s: ok\n", path);
		rc = 0;
		goto out_ctx;
	}
	if (px.takeover_fd >= 0) {
		int *fds = NULL, k;
		size_t nfds = 0;

		if (takeover_recv(px.takeover_fd, 5000, &fds, &nfds, msg, sizeof(msg)) ||
		    (k = takeover_assign(&cfg, fds, nfds, &matrix, msg, sizeof(msg))) < 0) {
			free(fds);
			fprintf(stderr, "l7proxy: %s\n", msg);
			goto out_ctx;
		}
		free(fds);
		/* The sockets are the old process's workers' SO_REUSEPORT
		 * group: so many workers serve them. */
		if (cfg.workers && cfg.workers != (unsigned)k)
			log_warn("takeover: %d workers as before; workers = %u takes a restart", k,
				 cfg.workers);
		cfg.workers = (unsigned)k;
		for (size_t j = 0; j < cfg.n_listeners; j++)
			if (matrix[j] < 0)
				log_info("takeover: listener %s is new: opening it",
					 cfg.listeners[j].name);
	} else if (listeners_check_free(&cfg, msg, sizeof(msg))) {
		fprintf(stderr, "l7proxy: %s\n", msg);
		goto out_ctx;
	}
	log_fd = open_log(cfg.access_log);
	if (cfg.access_log[0] && log_fd < 0) {
		log_err("access log %s: %s", cfg.access_log, strerror(errno));
		goto out_ctx;
	}
	px.log_fd = log_fd;

	/* Workers inherit this mask: only the main thread takes signals. */
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGUSR1);
	sigaddset(&mask, SIGUSR2);
	sigaddset(&mask, SIGCHLD);
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
		if (worker_init(&px.workers[i], (int)i, &cfg, px.ups, ctx, up_ctx, log_fd,
				matrix ? matrix + i * cfg.n_listeners : NULL)) {
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
	/* After a takeover the count includes the predecessor's sockets of
	 * listeners this config dropped (it closes them as it drains), and
	 * the sockets are the ones that were verified when they were opened. */
	if (!px.took_over && listeners_verify(&cfg, n, msg, sizeof(msg))) {
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
	/* Sockets handed over that no worker took (cfg.workers rows). */
	for (size_t i = 0; matrix && i < (size_t)cfg.workers * cfg.n_listeners; i++)
		if (matrix[i] >= 0)
			close(matrix[i]);
	free(matrix);
	if (px.takeover_fd >= 0)
		close(px.takeover_fd); /* the old process learns we failed */
	for (size_t i = 0; up_ctx && i < cfg.n_clusters; i++)
		SSL_CTX_free(up_ctx[i]);
	free(up_ctx);
	SSL_CTX_free(ctx);
	SSL_CTX_free(px.ssl_ctx);
	free(px.fingerprint);
	l7_config_free(&cfg);
	return rc;
}
