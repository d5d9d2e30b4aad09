// SPDX-License-Identifier: GPL-2.0-only
/*
 * lbctl - drive lbd, and the proxy of an L7 host, through their admin APIs
 * (HTTP/JSON on Unix sockets).
 *
 * Every subcommand is one row of the table at the bottom; the help text and
 * the dispatch both come from it. Tables by default, --json for scripts.
 * Arguments are validated here too, so a typo names itself before anything
 * is sent, and lbd validates again (the API is also used with curl).
 */
#include "http_admin.h"
#include "lb_abi.h"
#include "vipspec.h"

#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_SOCKET	     "/run/portico/lbd.sock"
#define DEFAULT_PROXY_SOCKET "/run/portico/l7proxy.sock"
#define DEFAULT_GSLB_SOCKET  "/run/portico/gslbd.sock"

struct lbctl {
	const char *socket;
	const char *proxy_socket; /* upstream and proxy commands */
	const char *gslb_socket;  /* gslb commands */
	bool json;
	int argc;
	char **argv;
};

struct command {
	const char *group, *verb, *args, *help;
	int (*fn)(struct lbctl *c);
	int nargs;  /* positional arguments required */
	int opt;    /* and how many more may follow */
	bool proxy; /* talks to the proxy's socket */
	bool gslb;  /* talks to gslbd's socket */
};

static int die(const char *fmt, const char *arg)
{
	fprintf(stderr, "lbctl: ");
	fprintf(stderr, fmt, arg);
	fputc('\n', stderr);
	return 1;
}

/* Call the API; prints the server's error and returns non-zero on failure. */
static int call(struct lbctl *c, const char *method, const char *path, json_t *body, json_t **out)
{
	char *err = NULL;
	int status, rc;

	rc = admin_call(c->socket, method, path, body, &status, out, &err);
	json_decref(body);
	if (rc) {
		fprintf(stderr,
			"lbctl: %s: %s (is it running? -s/LBCTL_SOCKET, -p/LBCTL_PROXY_SOCKET, "
			"-g/LBCTL_GSLB_SOCKET)\n",
			c->socket, err ? err : "?");
		free(err);
		return 1;
	}
	if (status >= 300) {
		json_t *e = json_object_get(*out, "error");

		fprintf(stderr, "lbctl: %s (HTTP %d)\n",
			e ? json_string_value(e) : "request failed", status);
		json_decref(*out);
		*out = NULL;
		return 1;
	}
	return 0;
}

static int print_json(json_t *o)
{
	char *s = json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS);

	puts(s ? s : "null");
	free(s);
	json_decref(o);
	return 0;
}

static int vip_arg(const char *s, json_t **vip)
{
	struct l4lb_vip_key k;
	char msg[256], a[LB_ADDR_STRLEN];

	if (vipspec_parse(s, &k, msg, sizeof(msg)))
		return die("%s", msg);
	*vip = json_pack("{s:s,s:i,s:s}", "address", lb_addr_str(&k.addr, a, sizeof(a)), "port",
			 (int)k.port, "proto", lb_proto_str(k.proto));
	return 0;
}

static int real_arg(const char *s)
{
	struct lb_addr a;

	if (lb_addr_parse(s, &a))
		return die("real address \"%s\": not an IPv4 or IPv6 address", s);
	return 0;
}

static int weight_arg(const char *s, int *w)
{
	char *end;
	long v = strtol(s, &end, 10);

	if (!*s || *end || v < 0 || v > 10000)
		return die("weight \"%s\": must be an integer 0-10000", s);
	*w = (int)v;
	return 0;
}

static const char *vip_row(json_t *v, char *buf, size_t len)
{
	const char *a = json_string_value(json_object_get(v, "address"));
	bool v6 = a && strchr(a, ':');

	snprintf(buf, len, "%s%s%s:%lld/%s", v6 ? "[" : "", a ? a : "?", v6 ? "]" : "",
		 json_integer_value(json_object_get(v, "port")),
		 json_string_value(json_object_get(v, "proto")));
	return buf;
}

/* "3.2s", "14m", "2h" for a duration in ms. */
static const char *ago_str(long long ms, char *buf, size_t len)
{
	if (ms < 60000)
		snprintf(buf, len, "%.1fs", ms / 1000.0);
	else if (ms < 3600000)
		snprintf(buf, len, "%lldm", ms / 60000);
	else if (ms < 86400000)
		snprintf(buf, len, "%lldh", ms / 3600000);
	else
		snprintf(buf, len, "%lldd", ms / 86400000);
	return buf;
}

static int cmd_vip_list(struct lbctl *c)
{
	json_t *out, *v;
	size_t i;
	char buf[96];

	if (call(c, "GET", "/v1/vips", NULL, &out))
		return 1;
	if (c->json)
		return print_json(out);
	printf("%-32s %5s %6s\n", "VIP", "ID", "REALS");
	json_array_foreach(out, i, v) printf("%-32s %5lld %6zu\n", vip_row(v, buf, sizeof(buf)),
					     json_integer_value(json_object_get(v, "id")),
					     json_array_size(json_object_get(v, "reals")));
	json_decref(out);
	return 0;
}

static int cmd_vip_change(struct lbctl *c, const char *method)
{
	json_t *vip, *out;

	if (vip_arg(c->argv[0], &vip) || call(c, method, "/v1/vips", vip, &out))
		return 1;
	if (c->json)
		return print_json(out);
	json_decref(out);
	printf("vip %s %s\n", c->argv[0], strcmp(method, "POST") ? "deleted" : "added");
	return 0;
}

static int cmd_vip_add(struct lbctl *c)
{
	return cmd_vip_change(c, "POST");
}

static int cmd_vip_del(struct lbctl *c)
{
	return cmd_vip_change(c, "DELETE");
}

static int cmd_real_list(struct lbctl *c)
{
	json_t *out, *v, *r;
	size_t i, j;
	char buf[96];

	if (call(c, "GET", "/v1/vips", NULL, &out))
		return 1;
	if (c->json) {
		json_t *flat = json_array();

		json_array_foreach(out, i, v) json_array_foreach(json_object_get(v, "reals"), j, r)
		{
			json_t *o = json_deep_copy(r);

			json_object_set_new(o, "vip",
					    json_pack("{s:O,s:O,s:O}", "address",
						      json_object_get(v, "address"), "port",
						      json_object_get(v, "port"), "proto",
						      json_object_get(v, "proto")));
			json_array_append_new(flat, o);
		}
		json_decref(out);
		return print_json(flat);
	}
	printf("%-26s %-22s %6s %-9s %-7s %10s %8s  %s\n", "VIP", "REAL", "WEIGHT", "HEALTH",
	       "RING", "CHANGED", "LATENCY", "LAST RESULT");
	json_array_foreach(out, i, v) json_array_foreach(json_object_get(v, "reals"), j, r)
	{
		json_t *h = json_object_get(r, "health");
		json_int_t ago = json_integer_value(json_object_get(h, "last_change_ms_ago"));
		const char *res = json_string_value(json_object_get(h, "last_result"));
		char changed[32] = "-", lat[32] = "-";

		if (json_object_get(h, "last_change_ms_ago") && ago >= 0)
			snprintf(changed, sizeof(changed), "%s ago",
				 ago_str(ago, buf, sizeof(buf)));
		if (json_real_value(json_object_get(h, "latency_ms")) > 0)
			snprintf(lat, sizeof(lat), "%.1fms",
				 json_real_value(json_object_get(h, "latency_ms")));
		printf("%-26s %-22s %6lld %-9s %-7s %10s %8s  %s\n", vip_row(v, buf, sizeof(buf)),
		       json_string_value(json_object_get(r, "address")),
		       json_integer_value(json_object_get(r, "weight")),
		       json_string_value(json_object_get(h, "state")),
		       json_is_true(json_object_get(r, "in_ring")) ? "in" : "out", changed, lat,
		       res ? res : "");
	}
	json_decref(out);
	return 0;
}

static int real_change(struct lbctl *c, const char *method, int weight)
{
	json_t *vip, *body, *out;

	if (vip_arg(c->argv[0], &vip))
		return 1;
	if (real_arg(c->argv[1])) {
		json_decref(vip);
		return 1;
	}
	body = json_pack("{s:o,s:s}", "vip", vip, "address", c->argv[1]);
	if (weight >= 0)
		json_object_set_new(body, "weight", json_integer(weight));
	if (call(c, method, "/v1/reals", body, &out))
		return 1;
	if (c->json)
		return print_json(out);
	json_decref(out);
	printf("vip %s real %s: %s\n", c->argv[0], c->argv[1],
	       !strcmp(method, "POST")	   ? "added"
	       : !strcmp(method, "DELETE") ? "deleted"
					   : "weight set");
	return 0;
}

static int cmd_real_add(struct lbctl *c)
{
	int w = 1;

	if (c->argc == 3 && weight_arg(c->argv[2], &w))
		return 1;
	return real_change(c, "POST", w);
}

static int cmd_real_del(struct lbctl *c)
{
	return real_change(c, "DELETE", -1);
}

static int cmd_real_weight(struct lbctl *c)
{
	int w;

	if (weight_arg(c->argv[2], &w))
		return 1;
	return real_change(c, "PUT", w);
}

static void counters_row(const char *name, json_t *cnt)
{
	printf("  %-40s %14lld %16lld\n", name, json_integer_value(json_object_get(cnt, "packets")),
	       json_integer_value(json_object_get(cnt, "bytes")));
}

static int cmd_stats(struct lbctl *c)
{
	json_t *out, *v;
	const char *k;
	size_t i;
	char buf[96];

	if (call(c, "GET", "/v1/stats", NULL, &out))
		return 1;
	if (c->json)
		return print_json(out);
	printf("%s %s\n  %-40s %14s %16s\n", json_string_value(json_object_get(out, "role")),
	       json_string_value(json_object_get(out, "host")), "COUNTER", "PACKETS", "BYTES");
	json_object_foreach(json_object_get(out, "global"), k, v) counters_row(k, v);
	if (json_array_size(json_object_get(out, "vips")))
		printf("  %-40s\n", "VIP");
	json_array_foreach(json_object_get(out, "vips"), i, v)
	    counters_row(vip_row(v, buf, sizeof(buf)), json_object_get(v, "counters"));
	if (json_array_size(json_object_get(out, "reals")))
		printf("  %-40s\n", "REAL");
	json_array_foreach(json_object_get(out, "reals"), i, v) counters_row(
	    json_string_value(json_object_get(v, "address")), json_object_get(v, "counters"));
	json_decref(out);
	return 0;
}

/* One "key value" line per string or integer member of o. */
static void print_scalars(json_t *o)
{
	const char *k;
	json_t *v;

	json_object_foreach(o, k, v)
	{
		if (json_is_string(v))
			printf("%-18s %s\n", k, json_string_value(v));
		else if (json_is_integer(v))
			printf("%-18s %lld\n", k, (long long)json_integer_value(v));
	}
}

/* lbd's or the proxy's /v1/status: one "key value" line per scalar. */
static int cmd_status(struct lbctl *c)
{
	json_t *out;

	if (call(c, "GET", "/v1/status", NULL, &out))
		return 1;
	if (c->json)
		return print_json(out);
	print_scalars(out);
	json_decref(out);
	return 0;
}

static uint64_t now_ms(void);
static int follow_handover(struct lbctl *c, int old_pid, int new_pid, uint64_t t0,
			   const char *what);

/* lbd's or the proxy's reload; a proxy reload that changes more than its
 * TLS material hands over to a new process: follow it. */
static int cmd_reload(struct lbctl *c)
{
	uint64_t t0 = now_ms();
	json_t *out, *np;

	if (call(c, "POST", "/v1/reload", NULL, &out))
		return 1;
	np = json_object_get(out, "new_pid");
	if (json_is_integer(np)) {
		int old_pid = (int)json_integer_value(json_object_get(out, "old_pid"));
		int new_pid = (int)json_integer_value(np);

		json_decref(out);
		return follow_handover(c, old_pid, new_pid, t0, "reload");
	}
	if (c->json)
		return print_json(out);
	json_decref(out);
	puts("reloaded");
	return 0;
}

static int cmd_bgp_neighbors(struct lbctl *c)
{
	json_t *out, *n;
	size_t i;
	char buf[32], up[32];

	if (call(c, "GET", "/v1/bgp/neighbors", NULL, &out))
		return 1;
	if (c->json)
		return print_json(out);
	printf("%-26s %8s %-12s %9s %7s %-10s  %s\n", "NEIGHBOR", "AS", "STATE", "UP/DOWN", "PFX",
	       "FAMILIES", "LAST ERROR");
	json_array_foreach(out, i, n)
	{
		json_t *fam = json_object_get(n, "families"), *f;
		char fams[32] = "";
		const char *err = json_string_value(json_object_get(n, "last_error"));
		size_t k;

		json_array_foreach(fam, k, f)
		    snprintf(fams + strlen(fams), sizeof(fams) - strlen(fams), "%s%s", k ? "," : "",
			     json_string_value(f));
		snprintf(up, sizeof(up), "%s",
			 ago_str(json_integer_value(json_object_get(n, "state_for_s")) * 1000, buf,
				 sizeof(buf)));
		printf("%-26s %8lld %-12s %9s %7lld %-10s  %s\n",
		       json_string_value(json_object_get(n, "address")),
		       json_integer_value(json_object_get(n, "asn")),
		       json_string_value(json_object_get(n, "state")), up,
		       json_integer_value(json_object_get(n, "prefixes_announced")), fams,
		       err ? err : "");
	}
	json_decref(out);
	return 0;
}

static int cmd_bgp_routes(struct lbctl *c)
{
	json_t *out, *r;
	size_t i;

	if (call(c, "GET", "/v1/bgp/routes", NULL, &out))
		return 1;
	if (c->json)
		return print_json(out);
	printf("%-24s %-22s %-12s %-38s %s\n", "PREFIX", "NEXT HOP", "COMMUNITIES", "STATE",
	       "SENT TO");
	json_array_foreach(out, i, r)
	{
		json_t *to = json_object_get(r, "sent_to"), *x;
		char sent[128] = "", state[64];
		size_t k;

		json_array_foreach(to, k, x)
		    snprintf(sent + strlen(sent), sizeof(sent) - strlen(sent), "%s%s", k ? "," : "",
			     json_string_value(x));
		if (json_object_get(r, "withdraw_in_ms"))
			snprintf(state, sizeof(state), "%s (withdraw in %.1fs)",
				 json_string_value(json_object_get(r, "state")),
				 json_integer_value(json_object_get(r, "withdraw_in_ms")) / 1000.0);
		else
			snprintf(state, sizeof(state), "%s",
				 json_string_value(json_object_get(r, "state")));
		printf("%-24s %-22s %-12s %-38s %s\n",
		       json_string_value(json_object_get(r, "prefix")),
		       json_is_string(json_object_get(r, "next_hop"))
			   ? json_string_value(json_object_get(r, "next_hop"))
			   : "-",
		       json_array_size(json_object_get(r, "communities")) ? "65535:0" : "-", state,
		       *sent ? sent : "-");
	}
	json_decref(out);
	return 0;
}

static int bgp_drain(struct lbctl *c, const char *method)
{
	json_t *body = json_object(), *out;
	struct lb_addr a;

	if (c->argc == 1) {
		if (lb_addr_parse(c->argv[0], &a)) {
			json_decref(body);
			return die("\"%s\" is not a VIP address", c->argv[0]);
		}
		json_object_set_new(body, "prefix", json_string(c->argv[0]));
	}
	if (call(c, method, "/v1/bgp/drain", body, &out))
		return 1;
	if (c->json)
		return print_json(out);
	printf("%s: %s\n", c->argc ? c->argv[0] : "all VIPs",
	       json_string_value(json_object_get(out, "result")));
	json_decref(out);
	return 0;
}

static int cmd_bgp_drain(struct lbctl *c)
{
	return bgp_drain(c, "POST");
}

static int cmd_bgp_undrain(struct lbctl *c)
{
	return bgp_drain(c, "DELETE");
}

static int cmd_shutdown(struct lbctl *c)
{
	json_t *out;

	if (call(c, "POST", "/v1/shutdown", NULL, &out))
		return 1;
	if (c->json)
		return print_json(out);
	json_decref(out);
	puts("lbd is shutting down (BGP sessions closed, dataplane removed)");
	return 0;
}

/* The Prometheus page as lbd serves it, unchanged (also with --json: it
 * is text, for promtool or a look by eye). */
static int cmd_metrics(struct lbctl *c)
{
	char *err = NULL, *text = NULL;
	size_t len;
	int status, rc;

	rc = admin_get_text(c->socket, "/metrics", &status, &text, &len, &err);
	if (rc) {
		fprintf(stderr, "lbctl: %s: %s (is it running? -s/LBCTL_SOCKET)\n", c->socket,
			err ? err : "?");
		free(err);
		return 1;
	}
	if (status != 200) {
		fprintf(stderr, "lbctl: metrics: HTTP %d: %s\n", status, text);
		free(text);
		return 1;
	}
	fwrite(text, 1, len, stdout);
	free(text);
	return 0;
}

/* An integer member as text, "-" when it is null or absent. */
static const char *int_or_dash(json_t *o, const char *key, char *buf, size_t len)
{
	json_t *v = json_object_get(o, key);

	if (!json_is_integer(v))
		return "-";
	snprintf(buf, len, "%lld", (long long)json_integer_value(v));
	return buf;
}

/* What lbd pulls for the proxy (GET /v1/upstreams): the poller, then one
 * row per cluster; --json adds the counters. */
static int cmd_pull(struct lbctl *c)
{
	char b1[24], b2[24], b3[24];
	json_t *out, *v;
	const char *k;

	if (call(c, "GET", "/v1/upstreams", NULL, &out))
		return 1;
	if (c->json)
		return print_json(out);
	print_scalars(out);
	printf("\n%-24s %10s %10s %10s  %-16s %s\n", "CLUSTER", "DOCUMENT", "APPLIED", "PROXY",
	       "STATE", "ERROR");
	json_object_foreach(json_object_get(out, "clusters"), k, v)
	{
		const char *e = json_string_value(json_object_get(v, "error"));

		printf("%-24s %10s %10s %10s  %-16s %s\n", k,
		       int_or_dash(v, "document_version", b1, sizeof(b1)),
		       int_or_dash(v, "applied_version", b2, sizeof(b2)),
		       int_or_dash(v, "proxy_version", b3, sizeof(b3)),
		       json_string_value(json_object_get(v, "state")), e ? e : "");
	}
	json_decref(out);
	return 0;
}

/* --- the proxy of an L7 host ---------------------------------------------- */

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/*
 * Follow a handover to the process new_pid (an upgrade, or a reload that
 * needs a new process): the socket answers from it once it serves (it
 * binds the socket anew), or the old one says why it failed. Bounded: the
 * proxy gives a successor 30 s. what names the operation in messages.
 */
static int follow_handover(struct lbctl *c, int old_pid, int new_pid, uint64_t t0, const char *what)
{
	while (now_ms() - t0 < 35000) {
		int status, pid, up;
		json_t *st = NULL;

		usleep(20000);
		if (admin_call(c->socket, "GET", "/v1/status", NULL, &status, &st, NULL) ||
		    status != 200) {
			json_decref(st);
			continue; /* between the two sockets */
		}
		pid = (int)json_integer_value(json_object_get(st, "pid"));
		up = (int)json_integer_value(json_object_get(st, "upgrade_pid"));
		if (pid == new_pid) {
			if (c->json)
				print_json(st);
			else
				printf(
				    "%s: pid %d took over from pid %d in %llu ms; pid %d drains\n",
				    what, new_pid, old_pid, (unsigned long long)(now_ms() - t0),
				    old_pid);
			json_decref(st);
			return 0;
		}
		/* The old process answers until the new one has bound the
		 * socket: still starting (upgrade_pid), or handed over and
		 * draining (the new one binds in a moment), or failed (it
		 * says why). */
		if (pid == old_pid && up != new_pid &&
		    !json_is_true(json_object_get(st, "draining"))) {
			json_t *e = json_object_get(st, "last_upgrade_error");

			if (json_is_string(e)) {
				fprintf(stderr, "lbctl: %s failed: %s\n", what,
					json_string_value(e));
				json_decref(st);
				return 1;
			}
		}
		json_decref(st);
	}
	fprintf(stderr, "lbctl: %s: pid %d did not take over in 35 s\n", what, new_pid);
	return 1;
}

/* Start a binary upgrade and follow it. */
static int cmd_proxy_upgrade(struct lbctl *c)
{
	uint64_t t0 = now_ms();
	json_t *out;
	int old_pid, new_pid;

	if (call(c, "POST", "/v1/upgrade", NULL, &out))
		return 1;
	old_pid = (int)json_integer_value(json_object_get(out, "old_pid"));
	new_pid = (int)json_integer_value(json_object_get(out, "new_pid"));
	json_decref(out);
	return follow_handover(c, old_pid, new_pid, t0, "upgrade");
}

static int cmd_proxy_stats(struct lbctl *c)
{
	json_t *out, *v;
	const char *k;

	if (call(c, "GET", "/v1/stats", NULL, &out))
		return 1;
	if (c->json)
		return print_json(out);
	printf("%-32s %14s\n", "COUNTER", "VALUE");
	json_object_foreach(out, k, v) if (json_is_integer(v))
	    printf("%-32s %14lld\n", k, (long long)json_integer_value(v));
	json_decref(out);
	return 0;
}

static int cmd_proxy_routes(struct lbctl *c)
{
	json_t *out, *v;
	size_t i;

	if (call(c, "GET", "/v1/routes", NULL, &out))
		return 1;
	if (c->json)
		return print_json(out);
	printf("%-4s %-28s %-24s %-16s %s\n", "#", "AUTHORITY", "PATH PREFIX", "CLUSTER", "FLAGS");
	json_array_foreach(json_object_get(out, "routes"), i, v)
	{
		printf("%-4zu %-28s %-24s %-16s %s%s\n", i,
		       json_string_value(json_object_get(v, "authority")),
		       json_string_value(json_object_get(v, "path_prefix")),
		       json_string_value(json_object_get(v, "cluster")),
		       json_is_true(json_object_get(v, "require_client_identity")) ? "mtls " : "",
		       json_is_true(json_object_get(v, "early_data")) ? "0rtt" : "");
	}
	json_decref(out);
	return 0;
}

static void cluster_rows(json_t *cl)
{
	json_t *b;
	size_t i;

	json_array_foreach(json_object_get(cl, "backends"), i, b)
	{
		const char *health = json_string_value(json_object_get(b, "health"));
		/* Active health (probes), when the cluster has them. */
		const char *probe = json_string_value(
		    json_object_get(json_object_get(b, "active_health"), "state"));

		printf("%-16s %8lld %-28s %6lld %-10s %-9s %7lld %6lld %12lld %9lld\n",
		       json_string_value(json_object_get(cl, "name")),
		       (long long)json_integer_value(json_object_get(cl, "version")),
		       json_string_value(json_object_get(b, "address")),
		       (long long)json_integer_value(json_object_get(b, "weight")),
		       json_is_true(json_object_get(b, "drain")) ? "drained" : health,
		       probe && json_object_get(cl, "health_check") &&
			       !json_is_null(json_object_get(cl, "health_check"))
			   ? probe
			   : "-",
		       (long long)json_integer_value(json_object_get(b, "active")),
		       (long long)json_integer_value(json_object_get(b, "connections")),
		       (long long)json_integer_value(json_object_get(b, "requests")),
		       (long long)json_integer_value(json_object_get(b, "failures")));
	}
	if (!json_array_size(json_object_get(cl, "backends")))
		printf("%-16s %8lld (no backends)\n",
		       json_string_value(json_object_get(cl, "name")),
		       (long long)json_integer_value(json_object_get(cl, "version")));
}

static int cluster_path(const char *name, const char *suffix, char *buf, size_t len)
{
	if (!*name || strchr(name, '/') || strchr(name, '?') || strchr(name, ' ') ||
	    (size_t)snprintf(buf, len, "/v1/clusters/%s%s", name, suffix) >= len)
		return die("cluster \"%s\": not a cluster name", name);
	return 0;
}

static int cmd_upstream_list(struct lbctl *c)
{
	char path[160];
	json_t *out, *cl;
	size_t i;

	if (c->argc && cluster_path(c->argv[0], "", path, sizeof(path)))
		return 1;
	if (call(c, "GET", c->argc ? path : "/v1/clusters", NULL, &out))
		return 1;
	if (c->json)
		return print_json(out);
	printf("%-16s %8s %-28s %6s %-10s %-9s %7s %6s %12s %9s\n", "CLUSTER", "VERSION", "BACKEND",
	       "WEIGHT", "STATE", "PROBES", "ACTIVE", "CONNS", "REQUESTS", "FAILURES");
	if (c->argc)
		cluster_rows(out);
	else
		json_array_foreach(json_object_get(out, "clusters"), i, cl) cluster_rows(cl);
	json_decref(out);
	return 0;
}

static int print_version(struct lbctl *c, json_t *out)
{
	if (c->json)
		return print_json(out);
	printf("cluster %s: version %lld, %lld backends\n",
	       json_string_value(json_object_get(out, "cluster")),
	       (long long)json_integer_value(json_object_get(out, "version")),
	       (long long)json_integer_value(json_object_get(out, "backends")));
	json_decref(out);
	return 0;
}

static int cmd_upstream_set(struct lbctl *c)
{
	char path[160];
	json_error_t je;
	json_t *doc, *out;

	if (strcmp(c->argv[1], "-f") != 0)
		return die("usage: lbctl upstream set CLUSTER -f FILE (%s)", "FILE - reads stdin");
	if (cluster_path(c->argv[0], "/backends", path, sizeof(path)))
		return 1;
	doc = strcmp(c->argv[2], "-") == 0 ? json_loadf(stdin, 0, &je)
					   : json_load_file(c->argv[2], 0, &je);
	if (!doc) {
		fprintf(stderr, "lbctl: %s:%d: %s\n", c->argv[2], je.line, je.text);
		return 1;
	}
	if (call(c, "PUT", path, doc, &out))
		return 1;
	return print_version(c, out);
}

/* add / remove / drain / undrain / weight: one backend. */
static int backend_change(struct lbctl *c, const char *method, int weight, int drain)
{
	char path[160];
	json_t *body, *out;

	if (cluster_path(c->argv[0], "/backends", path, sizeof(path)))
		return 1;
	body = json_pack("{s:s}", "address", c->argv[1]);
	if (weight > 0)
		json_object_set_new(body, "weight", json_integer(weight));
	if (drain >= 0)
		json_object_set_new(body, "drain", json_boolean(drain));
	if (call(c, method, path, body, &out))
		return 1;
	return print_version(c, out);
}

static int up_weight_arg(const char *s, int *w)
{
	if (weight_arg(s, w))
		return 1;
	if (*w < 1)
		return die("weight \"%s\": must be 1-10000 (drain a backend to stop its traffic)",
			   s);
	return 0;
}

static int cmd_upstream_add(struct lbctl *c)
{
	int w = 0; /* none given: 1 for a new backend, an existing one keeps its own */

	if (c->argc > 2 && up_weight_arg(c->argv[2], &w))
		return 1;
	return backend_change(c, "POST", w, -1);
}

static int cmd_upstream_remove(struct lbctl *c)
{
	return backend_change(c, "DELETE", 0, -1);
}

static int cmd_upstream_drain(struct lbctl *c)
{
	return backend_change(c, "POST", 0, 1);
}

static int cmd_upstream_undrain(struct lbctl *c)
{
	return backend_change(c, "POST", 0, 0);
}

static int cmd_upstream_weight(struct lbctl *c)
{
	int w;

	if (up_weight_arg(c->argv[2], &w))
		return 1;
	return backend_change(c, "POST", w, -1);
}

/* gslbd: PoPs with their states, one row each. */
static int gslb_pop_list(struct lbctl *c)
{
	json_t *out, *p;
	size_t i;

	if (call(c, "GET", "/v1/pops", NULL, &out))
		return 1;
	if (c->json)
		return print_json(out);
	printf("%-16s %-8s %-8s %-8s %-16s %-24s %s\n", "POP", "STATE", "ADMIN", "HEALTH", "VIP4",
	       "VIP6", "ANSWERS");
	json_array_foreach(json_object_get(out, "pops"), i, p)
	{
		const char *v4 = json_string_value(json_object_get(p, "vip4"));
		const char *v6 = json_string_value(json_object_get(p, "vip6"));

		printf("%-16s %-8s %-8s %-8s %-16s %-24s %lld\n",
		       json_string_value(json_object_get(p, "name")),
		       json_string_value(json_object_get(p, "state")),
		       json_string_value(json_object_get(p, "admin")),
		       json_string_value(json_object_get(p, "health")), v4 ? v4 : "-",
		       v6 ? v6 : "-", json_integer_value(json_object_get(p, "answers")));
	}
	if (json_is_true(json_object_get(out, "drained_answer")))
		puts("(no PoP is up: drained PoPs answer)");
	json_decref(out);
	return 0;
}

/* lbctl gslb pop list | drain NAME | undrain NAME | down NAME | up NAME */
static int cmd_gslb_pop(struct lbctl *c)
{
	const char *verb = c->argv[0];
	char path[128];
	json_t *out, *body = NULL;
	const char *method = "POST";

	if (!strcmp(verb, "list") && c->argc == 1)
		return gslb_pop_list(c);
	if (c->argc != 2)
		return die("usage: lbctl gslb pop %s", "list | drain|undrain|down|up NAME");
	if (!strcmp(verb, "drain") || !strcmp(verb, "undrain")) {
		snprintf(path, sizeof(path), "/v1/pops/%s/%s", c->argv[1], verb);
	} else if (!strcmp(verb, "down") || !strcmp(verb, "up")) {
		/* What a health feed says; an operator's word is drain. */
		snprintf(path, sizeof(path), "/v1/pops/%s/health", c->argv[1]);
		method = "PUT";
		body = json_pack("{s:b}", "up", !strcmp(verb, "up"));
	} else {
		return die("gslb pop: unknown verb \"%s\" (list, drain, undrain, down, up)", verb);
	}
	if (strlen(c->argv[1]) > 15 || strchr(c->argv[1], '/'))
		return die("PoP name \"%s\": at most 15 of [a-z0-9_-]", c->argv[1]);
	if (call(c, method, path, body, &out))
		return 1;
	if (c->json)
		return print_json(out);
	printf("%s: %s\n", c->argv[1], json_string_value(json_object_get(out, "state")));
	json_decref(out);
	return 0;
}

/* gslbd's status: its scalars, the listeners, then the serving map's. */
static int cmd_gslb_status(struct lbctl *c)
{
	json_t *out, *v;
	const char *k;
	size_t i;

	if (call(c, "GET", "/v1/status", NULL, &out))
		return 1;
	if (c->json)
		return print_json(out);
	print_scalars(out);
	json_array_foreach(json_object_get(out, "listen"), i, v)
	    printf("%-18s %s\n", "listen", json_string_value(v));
	json_object_foreach(json_object_get(out, "map"), k, v)
	{
		char key[64];

		snprintf(key, sizeof(key), "map_%s", k);
		if (json_is_string(v))
			printf("%-18s %s\n", key, json_string_value(v));
		else if (json_is_integer(v))
			printf("%-18s %lld\n", key, (long long)json_integer_value(v));
		else if (json_is_real(v))
			printf("%-18s %.4f\n", key, json_real_value(v));
	}
	json_decref(out);
	return 0;
}

static int cmd_gslb_reload(struct lbctl *c)
{
	json_t *out;

	if (call(c, "POST", "/v1/map/reload", NULL, &out))
		return 1;
	if (c->json)
		return print_json(out);
	printf("map %s loaded: %lld+%lld prefixes\n",
	       json_string_value(json_object_get(out, "path")),
	       json_integer_value(json_object_get(out, "prefixes4")),
	       json_integer_value(json_object_get(out, "prefixes6")));
	json_decref(out);
	return 0;
}

static int cmd_gslb_lookup(struct lbctl *c)
{
	char path[160];
	json_t *out;

	if (strlen(c->argv[0]) > 60)
		return die("\"%s\": not ADDR[/LEN]", c->argv[0]);
	snprintf(path, sizeof(path), "/v1/lookup/%s", c->argv[0]);
	if (call(c, "GET", path, NULL, &out))
		return 1;
	if (c->json)
		return print_json(out);
	for (int f = 0; f < 2; f++) {
		json_t *r = json_object_get(out, f ? "aaaa" : "a");
		const char *pop = json_string_value(json_object_get(r, "pop"));

		printf("%-4s pop=%s by=%s scope=%lld\n", f ? "AAAA" : "A", pop ? pop : "-",
		       json_string_value(json_object_get(r, "how")),
		       json_integer_value(json_object_get(r, "scope")));
	}
	json_decref(out);
	return 0;
}

static const struct command commands[] = {
    {"vip", "list", "", "list VIPs", cmd_vip_list, 0},
    {"vip", "add", "VIP", "add a VIP (no reals yet)", cmd_vip_add, 1},
    {"vip", "del", "VIP", "delete a VIP and its reals", cmd_vip_del, 1},
    {"real", "list", "", "reals of every VIP with their health", cmd_real_list, 0},
    {"real", "add", "VIP ADDR [WEIGHT]", "add a real (weight 1 by default)", cmd_real_add, 2, 1},
    {"real", "del", "VIP ADDR", "remove a real; its established flows stay", cmd_real_del, 2},
    {"real", "set-weight", "VIP ADDR WEIGHT", "0 drains: no new flows", cmd_real_weight, 3},
    {"stats", NULL, "", "packet/byte counters: global, per VIP, per real", cmd_stats, 0},
    {"status", NULL, "", "role, PoP, host and interface of this lbd", cmd_status, 0},
    {"reload", NULL, "", "re-read lbd's config file (kept if invalid)", cmd_reload, 0},
    {"bgp", "neighbors", "", "BGP sessions: state, uptime, prefixes, errors", cmd_bgp_neighbors, 0},
    {"bgp", "routes", "", "VIP prefixes and what is announced", cmd_bgp_routes, 0},
    {"bgp", "drain", "[VIPADDR]", "GRACEFUL_SHUTDOWN, then withdraw (all VIPs, or one address)",
     cmd_bgp_drain, 0, 1},
    {"bgp", "undrain", "[VIPADDR]", "announce again after a drain", cmd_bgp_undrain, 0, 1},
    {"shutdown", NULL, "", "stop lbd: Cease to peers, remove the dataplane", cmd_shutdown, 0},
    {"metrics", NULL, "", "lbd's Prometheus metrics, as a scraper gets them", cmd_metrics, 0},
    {"pull", NULL, "", "l7: backend sets lbd pulls for the proxy: URL, versions, state", cmd_pull,
     0},
    {"proxy", "status", "", "the proxy: version, workers, uptime, reloads", cmd_status, 0, 0, true},
    {"proxy", "stats", "", "the proxy's counters, summed over its workers", cmd_proxy_stats, 0, 0,
     true},
    {"proxy", "routes", "", "routes in match order", cmd_proxy_routes, 0, 0, true},
    {"proxy", "upgrade", "",
     "start the installed binary; it takes the sockets over, this one drains", cmd_proxy_upgrade, 0,
     0, true},
    {"proxy", "reload", "", "apply the proxy's config file (all or nothing; no request fails)",
     cmd_reload, 0, 0, true},
    {"upstream", "list", "[CLUSTER]", "backends: weight, health, in flight, version",
     cmd_upstream_list, 0, 1, true},
    {"upstream", "set", "CLUSTER -f FILE", "replace a cluster's backend set (JSON, docs/api.md)",
     cmd_upstream_set, 3, 0, true},
    {"upstream", "add", "CLUSTER ADDR:PORT [WEIGHT]",
     "add a backend (weight 1 if new and none given)", cmd_upstream_add, 2, 1, true},
    {"upstream", "remove", "CLUSTER ADDR:PORT", "remove a backend; requests on it finish",
     cmd_upstream_remove, 2, 0, true},
    {"upstream", "drain", "CLUSTER ADDR:PORT", "no new requests; in-flight ones finish",
     cmd_upstream_drain, 2, 0, true},
    {"upstream", "undrain", "CLUSTER ADDR:PORT", "take requests again", cmd_upstream_undrain, 2, 0,
     true},
    {"upstream", "weight", "CLUSTER ADDR:PORT WEIGHT", "set a backend's weight (1-10000)",
     cmd_upstream_weight, 3, 0, true},
    {"gslb", "status", "", "gslbd: listeners, workers, the serving map and its score",
     cmd_gslb_status, 0, 0, false, true},
    {"gslb", "pop", "list | drain|undrain|down|up NAME",
     "PoPs and their states; drain (operator) or down/up (health feed)", cmd_gslb_pop, 1, 1, false,
     true},
    {"gslb", "reload", "", "load the map file now (kept if the new one is refused)",
     cmd_gslb_reload, 0, 0, false, true},
    {"gslb", "reload-config", "", "re-read gslbd's config file (kept if invalid)", cmd_reload, 0, 0,
     false, true},
    {"gslb", "lookup", "ADDR[/LEN]", "which PoP a client subnet is answered with, and why",
     cmd_gslb_lookup, 1, 0, false, true},
    {"gslb", "metrics", "", "gslbd's Prometheus metrics", cmd_metrics, 0, 0, false, true},
    {NULL, NULL, NULL, NULL, NULL, 0, 0, false, false},
};

static void usage(FILE *f)
{
	fprintf(f, "usage: lbctl [-s SOCKET] [-p PROXY_SOCKET] [-g GSLB_SOCKET] [--json] COMMAND "
		   "[ARGS]\n\n"
		   "commands:\n");
	for (const struct command *c = commands; c->group; c++) {
		char left[64];

		snprintf(left, sizeof(left), "%s%s%s %s", c->group, c->verb ? " " : "",
			 c->verb ? c->verb : "", c->args);
		fprintf(f, "  %-40s %s\n", left, c->help);
	}
	fprintf(f,
		"\nVIP is ADDR:PORT[/tcp|/udp], IPv6 in brackets: [2001:db8::10]:443/tcp\n"
		"SOCKET (lbd) defaults to $LBCTL_SOCKET or " DEFAULT_SOCKET "\n"
		"PROXY_SOCKET (proxy, upstream) defaults to $LBCTL_PROXY_SOCKET or "
		"" DEFAULT_PROXY_SOCKET "\n"
		"GSLB_SOCKET (gslb) defaults to $LBCTL_GSLB_SOCKET or " DEFAULT_GSLB_SOCKET "\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"socket", required_argument, NULL, 's'},
	    {"proxy-socket", required_argument, NULL, 'p'},
	    {"gslb-socket", required_argument, NULL, 'g'},
	    {"json", no_argument, NULL, 'j'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct lbctl c = {.socket = getenv("LBCTL_SOCKET"),
			  .proxy_socket = getenv("LBCTL_PROXY_SOCKET"),
			  .gslb_socket = getenv("LBCTL_GSLB_SOCKET")};
	int o;

	if (!c.socket)
		c.socket = DEFAULT_SOCKET;
	if (!c.proxy_socket)
		c.proxy_socket = DEFAULT_PROXY_SOCKET;
	if (!c.gslb_socket)
		c.gslb_socket = DEFAULT_GSLB_SOCKET;
	while ((o = getopt_long(argc, argv, "+s:p:g:jh", opts, NULL)) != -1) {
		switch (o) {
		case 's':
			c.socket = optarg;
			break;
		case 'p':
			c.proxy_socket = optarg;
			break;
		case 'g':
			c.gslb_socket = optarg;
			break;
		case 'j':
			c.json = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	argc -= optind;
	argv += optind;
	/* Allow --json after the command too (lbctl vip list --json). */
	for (int i = 0; i < argc; i++)
		if (strcmp(argv[i], "--json") == 0) {
			c.json = true;
			memmove(&argv[i], &argv[i + 1], (argc - i - 1) * sizeof(*argv));
			argc--;
			i--;
		}
	if (argc < 1) {
		usage(stderr);
		return 2;
	}
	for (const struct command *cmd = commands; cmd->group; cmd++) {
		int skip = cmd->verb ? 2 : 1;
		int min = cmd->nargs, max = cmd->nargs + cmd->opt;

		if (strcmp(argv[0], cmd->group) ||
		    (cmd->verb && (argc < 2 || strcmp(argv[1], cmd->verb))))
			continue;
		c.argc = argc - skip;
		c.argv = argv + skip;
		if (cmd->proxy)
			c.socket = c.proxy_socket;
		if (cmd->gslb)
			c.socket = c.gslb_socket;
		if (c.argc < min || c.argc > max) {
			fprintf(stderr, "usage: lbctl %s%s%s %s\n", cmd->group,
				cmd->verb ? " " : "", cmd->verb ? cmd->verb : "", cmd->args);
			return 2;
		}
		return cmd->fn(&c);
	}
	fprintf(stderr, "lbctl: unknown command \"%s%s%s\"\n", argv[0], argc > 1 ? " " : "",
		argc > 1 ? argv[1] : "");
	usage(stderr);
	return 2;
}
