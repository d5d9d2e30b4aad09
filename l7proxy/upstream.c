// SPDX-License-Identifier: GPL-2.0-only
/*
 * upstream.c - backend sets as RCU snapshots (see upstream.h).
 *
 * Why synchronize_rcu in the writer rather than call_rcu: updates come from
 * the admin API, one at a time, and waiting out the readers' grace period
 * (the workers' read sections are a few instructions long) bounds the
 * memory held by old sets to one per cluster; a burst of 10,000 updates
 * never piles up sets waiting for a reclaim thread.
 */
#include "upstream.h"

#include "addr.h"

#include <errno.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <urcu/urcu-memb.h>

static void errf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void errf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

void l7_upstream_get(struct l7_upstream *up)
{
	__atomic_add_fetch(&up->refs, 1, __ATOMIC_RELAXED);
}

void l7_upstream_put(struct l7_upstream *up)
{
	if (up && __atomic_sub_fetch(&up->refs, 1, __ATOMIC_ACQ_REL) == 0)
		free(up);
}

/* The canonical spelling of an address: 10.0.5.2:8080, [2001:db8::5]:443
 * (what the API shows and the Host of requests that carry none). */
static void addr_name(const struct sockaddr_storage *ss, char *out, size_t len)
{
	char host[INET6_ADDRSTRLEN] = "?";

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;

		inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
		snprintf(out, len, "%s:%u", host, ntohs(s4->sin_port));
	} else {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;

		inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
		snprintf(out, len, "[%s]:%u", host, ntohs(s6->sin6_port));
	}
}

static struct l7_upstream *upstream_new(const struct sockaddr_storage *ss, socklen_t len,
					unsigned n_workers)
{
	struct l7_upstream *up;

	up = aligned_alloc(64, (sizeof(*up) + n_workers * sizeof(up->st[0]) + 63) / 64 * 64);
	if (!up)
		return NULL;
	memset(up, 0, sizeof(*up) + n_workers * sizeof(up->st[0]));
	up->refs = 1;
	up->addr = *ss;
	up->addr_len = len;
	addr_name(ss, up->name, sizeof(up->name));
	up->n_workers = n_workers;
	return up;
}

static bool same_addr(const struct l7_upstream *up, const struct sockaddr_storage *ss,
		      socklen_t len)
{
	return up->addr_len == len && memcmp(&up->addr, ss, len) == 0;
}

static struct l7_upset *set_alloc(size_t n)
{
	return calloc(1, sizeof(struct l7_upset) + n * sizeof(struct l7_member));
}

void l7_upset_free(struct l7_upset *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++)
		l7_upstream_put(s->m[i].up);
	free(s);
}

const struct l7_upset *l7_upstreams_current(const struct l7_upstreams *u, size_t ci)
{
	/* The writer's own view: it is the only thread that stores here. */
	return __atomic_load_n(&u->cur[ci], __ATOMIC_RELAXED);
}

struct l7_upstreams *l7_upstreams_new(const struct l7_config *cfg, unsigned n_workers)
{
	struct l7_upstreams *u = calloc(1, sizeof(*u));

	if (!u)
		return NULL;
	u->cfg = cfg;
	u->n_workers = n_workers;
	u->n = cfg->n_clusters;
	u->cur = calloc(u->n ? u->n : 1, sizeof(*u->cur));
	if (!u->cur)
		goto fail;
	for (size_t ci = 0; ci < u->n; ci++) {
		const struct l7_cluster_cfg *cc = &cfg->clusters[ci];
		struct l7_upset *s = set_alloc(cc->n_backends);

		if (!s)
			goto fail;
		s->since = (int64_t)time(NULL);
		s->source = "config";
		u->cur[ci] = s;
		for (size_t b = 0; b < cc->n_backends; b++) {
			s->m[b].up = upstream_new(&cc->backends[b].addr, cc->backends[b].addr_len,
						  n_workers);
			if (!s->m[b].up)
				goto fail;
			s->m[b].weight = 1;
			s->n++;
		}
	}
	return u;
fail:
	l7_upstreams_free(u);
	return NULL;
}

void l7_upstreams_free(struct l7_upstreams *u)
{
	if (!u)
		return;
	for (size_t ci = 0; u->cur && ci < u->n; ci++)
		l7_upset_free(u->cur[ci]);
	free(u->cur);
	free(u);
}

int l7_upstreams_find(const struct l7_upstreams *u, const char *name)
{
	for (size_t ci = 0; ci < u->n; ci++)
		if (strcmp(u->cfg->clusters[ci].name, name) == 0)
			return (int)ci;
	return -1;
}

/* The current set's upstream for this address, or NULL. */
static struct l7_upstream *find_up(const struct l7_upset *cur, const struct sockaddr_storage *ss,
				   socklen_t len, size_t *idx)
{
	for (size_t i = 0; i < cur->n; i++)
		if (same_addr(cur->m[i].up, ss, len)) {
			if (idx)
				*idx = i;
			return cur->m[i].up;
		}
	return NULL;
}

/* Parse one backend element into m (taking a reference). 0 or -1 + err. */
static int parse_member(const struct l7_upstreams *u, const struct l7_upset *cur,
			const struct l7_upset *next, size_t i, const json_t *e, struct l7_member *m,
			char *err, size_t errlen)
{
	const char *addr = json_is_string(e) ? json_string_value(e) : NULL;
	const json_t *w = NULL, *d = NULL;
	struct sockaddr_storage ss;
	struct l7_upstream *up;
	socklen_t len;
	json_int_t weight = 1;

	if (json_is_object(e)) {
		const char *key;
		json_t *v;

		json_object_foreach((json_t *)e, key, v)
		{
			if (strcmp(key, "address") && strcmp(key, "weight") &&
			    strcmp(key, "drain")) {
				errf(err, errlen, "backends[%zu]: unknown field \"%s\"", i, key);
				return -1;
			}
		}
		addr = json_string_value(json_object_get(e, "address"));
		w = json_object_get(e, "weight");
		d = json_object_get(e, "drain");
	} else if (!addr) {
		errf(err, errlen, "backends[%zu]: expected an object or \"ADDR:PORT\"", i);
		return -1;
	}
	if (!addr || l7_parse_hostport(addr, &ss, &len)) {
		errf(err, errlen,
		     "backends[%zu].address: expected \"ADDR:PORT\" or \"[ADDR6]:PORT\"", i);
		return -1;
	}
	if (strlen(addr) >= sizeof(up->name)) {
		errf(err, errlen, "backends[%zu].address: too long", i);
		return -1;
	}
	if (w) {
		if (!json_is_integer(w) || json_integer_value(w) < 1 ||
		    json_integer_value(w) > L7_UP_MAX_WEIGHT) {
			errf(err, errlen,
			     "backends[%zu].weight: expected an integer from 1 to %d (drain a "
			     "backend to stop its traffic)",
			     i, L7_UP_MAX_WEIGHT);
			return -1;
		}
		weight = json_integer_value(w);
	}
	if (d && !json_is_boolean(d)) {
		errf(err, errlen, "backends[%zu].drain: expected true or false", i);
		return -1;
	}
	if (find_up(next, &ss, len, NULL)) {
		errf(err, errlen, "backends[%zu].address: %s is listed twice", i, addr);
		return -1;
	}
	up = find_up(cur, &ss, len, NULL);
	if (up)
		l7_upstream_get(up);
	else if (!(up = upstream_new(&ss, len, u->n_workers))) {
		errf(err, errlen, "out of memory");
		return -1;
	}
	*m =
	    (struct l7_member){.up = up, .weight = (uint32_t)weight, .drain = d && json_is_true(d)};
	return 0;
}

static int parse_version(const json_t *v, uint64_t *out, char *err, size_t errlen)
{
	if (!json_is_integer(v) || json_integer_value(v) < 0 ||
	    (uint64_t)json_integer_value(v) > L7_UP_MAX_VERSION) {
		errf(err, errlen, "version: expected an integer from 0 to 2^53");
		return -1;
	}
	*out = (uint64_t)json_integer_value(v);
	return 0;
}

struct l7_upset *l7_upset_parse(const struct l7_upstreams *u, size_t ci, const json_t *doc,
				char *err, size_t errlen)
{
	const struct l7_upset *cur = l7_upstreams_current(u, ci);
	const json_t *list = json_object_get(doc, "backends");
	const char *key;
	struct l7_upset *s;
	json_t *v;
	size_t n;

	if (!json_is_object(doc)) {
		errf(err, errlen, "expected a JSON object {\"version\": N, \"backends\": [...]}");
		return NULL;
	}
	json_object_foreach((json_t *)doc, key, v)
	{
		if (strcmp(key, "version") && strcmp(key, "backends") && strcmp(key, "cluster")) {
			errf(err, errlen, "unknown field \"%s\"", key);
			return NULL;
		}
	}
	/* A document that names its cluster must be applied to that one
	 * (a file for web sent to api by mistake changes nothing). */
	if (json_object_get(doc, "cluster") &&
	    (!json_is_string(json_object_get(doc, "cluster")) ||
	     strcmp(json_string_value(json_object_get(doc, "cluster")),
		    u->cfg->clusters[ci].name))) {
		errf(err, errlen, "cluster: the document is for another cluster than %s",
		     u->cfg->clusters[ci].name);
		return NULL;
	}
	if (!json_is_array(list)) {
		errf(err, errlen, "backends: expected an array");
		return NULL;
	}
	n = json_array_size(list);
	if (n > L7_UP_MAX_BACKENDS) {
		errf(err, errlen, "backends: %zu entries, at most %d", n, L7_UP_MAX_BACKENDS);
		return NULL;
	}
	s = set_alloc(n);
	if (!s) {
		errf(err, errlen, "out of memory");
		return NULL;
	}
	if (!json_object_get(doc, "version")) {
		errf(err, errlen, "version: required (an integer greater than the current %llu)",
		     (unsigned long long)cur->version);
		goto fail;
	}
	if (parse_version(json_object_get(doc, "version"), &s->version, err, errlen))
		goto fail;
	for (size_t i = 0; i < n; i++) {
		if (parse_member(u, cur, s, i, json_array_get(list, i), &s->m[i], err, errlen))
			goto fail;
		s->n++;
	}
	return s;
fail:
	l7_upset_free(s);
	return NULL;
}

struct l7_upset *l7_upset_edit(const struct l7_upstreams *u, size_t ci, const char *addr,
			       uint32_t weight, int drain, bool remove, uint64_t version, char *err,
			       size_t errlen)
{
	const struct l7_upset *cur = l7_upstreams_current(u, ci);
	struct sockaddr_storage ss;
	struct l7_upset *s;
	socklen_t len;
	size_t at = 0, o = 0;
	bool found;

	if (l7_parse_hostport(addr, &ss, &len) || strlen(addr) >= sizeof(cur->m[0].up->name)) {
		errf(err, errlen, "address: expected \"ADDR:PORT\" or \"[ADDR6]:PORT\", not \"%s\"",
		     addr);
		return NULL;
	}
	if (weight > L7_UP_MAX_WEIGHT) {
		errf(err, errlen, "weight: expected an integer from 1 to %d", L7_UP_MAX_WEIGHT);
		return NULL;
	}
	if (version > L7_UP_MAX_VERSION || (!version && cur->version >= L7_UP_MAX_VERSION)) {
		errf(err, errlen, "version: at most 2^53");
		return NULL;
	}
	found = find_up(cur, &ss, len, &at) != NULL;
	if (remove && !found) {
		errf(err, errlen, "backend %s is not in cluster %s", addr,
		     u->cfg->clusters[ci].name);
		return NULL;
	}
	if (!found && cur->n >= L7_UP_MAX_BACKENDS) {
		errf(err, errlen, "cluster %s has %d backends already", u->cfg->clusters[ci].name,
		     L7_UP_MAX_BACKENDS);
		return NULL;
	}
	s = set_alloc(cur->n + 1);
	if (!s) {
		errf(err, errlen, "out of memory");
		return NULL;
	}
	s->version = version ? version : cur->version + 1;
	for (size_t i = 0; i < cur->n; i++) {
		if (remove && i == at)
			continue;
		s->m[o] = cur->m[i];
		l7_upstream_get(s->m[o].up);
		if (found && i == at) {
			if (weight)
				s->m[o].weight = weight;
			if (drain >= 0)
				s->m[o].drain = drain;
		}
		o++;
	}
	if (!found) {
		s->m[o].up = upstream_new(&ss, len, u->n_workers);
		if (!s->m[o].up) {
			s->n = o;
			l7_upset_free(s);
			errf(err, errlen, "out of memory");
			return NULL;
		}
		s->m[o].weight = weight ? weight : 1;
		s->m[o].drain = drain > 0;
		o++;
	}
	s->n = o;
	return s;
}

int l7_upstreams_publish(struct l7_upstreams *u, size_t ci, struct l7_upset *next,
			 const char *source, char *err, size_t errlen)
{
	struct l7_upset *old = u->cur[ci];

	if (next->version <= old->version) {
		errf(err, errlen,
		     "version %llu is not newer than the current %llu of cluster %s; nothing "
		     "changed",
		     (unsigned long long)next->version, (unsigned long long)old->version,
		     u->cfg->clusters[ci].name);
		l7_upset_free(next);
		u->refused++;
		return -ESTALE;
	}
	next->since = (int64_t)time(NULL);
	next->source = source;
	rcu_assign_pointer(u->cur[ci], next);
	/* Every worker that may still be reading old is done after this. */
	urcu_memb_synchronize_rcu();
	l7_upset_free(old);
	u->updates++;
	return 0;
}

static const char *active_state_name(uint32_t st)
{
	return st == L7_ACTIVE_UP ? "up" : st == L7_ACTIVE_DOWN ? "down" : "unchecked";
}

/* A backend's active_health object (main thread: the probes' fields). */
static json_t *active_json(const struct l7_up_active *a, uint64_t now_ms)
{
	uint32_t st = __atomic_load_n(&a->state, __ATOMIC_RELAXED);
	uint64_t ago = now_ms > a->last_check_ms ? now_ms - a->last_check_ms : 0;

	return json_pack(
	    "{s:s,s:o,s:i,s:i,s:o,s:I,s:I}", "state", active_state_name(st), "last_check_ms_ago",
	    a->last_check_ms ? json_integer((json_int_t)ago) : json_null(), "consecutive_ok",
	    (int)a->ok_streak, "consecutive_fail", (int)a->fail_streak, "last_error",
	    a->last_error[0] ? json_string(a->last_error) : json_null(), "probes",
	    (json_int_t)a->probes, "failures", (json_int_t)a->failures);
}

/* The cluster's health_check object: its settings and how many backends
 * are in each state; null without active checks. */
static json_t *health_check_json(const struct l7_cluster_cfg *cc, const struct l7_upset *s)
{
	static const char *const types[] = {"none", "http", "grpc"};
	const struct l7_health_cfg *h = &cc->health;
	unsigned n[3] = {0}, taking = 0, usable = 0;
	json_t *o;

	if (h->type == L7_HEALTH_NONE)
		return json_null();
	for (size_t i = 0; i < s->n; i++) {
		uint32_t st = __atomic_load_n(&s->m[i].up->active.state, __ATOMIC_RELAXED);

		n[st <= L7_ACTIVE_DOWN ? st : 0]++;
		if (!s->m[i].drain) {
			taking++;
			usable += st != L7_ACTIVE_DOWN;
		}
	}
	o = json_pack("{s:s,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:b}", "type", types[h->type],
		      "interval_ms", (int)h->interval_ms, "timeout_ms", (int)h->timeout_ms, "rise",
		      (int)h->rise, "fall", (int)h->fall, "up", (int)n[L7_ACTIVE_UP], "down",
		      (int)n[L7_ACTIVE_DOWN], "unchecked", (int)n[L7_ACTIVE_UNCHECKED],
		      /* cluster.c then balances ignoring active health (fail open) */
		      "panic", taking && !usable);
	if (h->type == L7_HEALTH_HTTP) {
		json_object_set_new(o, "path", json_string(h->path));
		json_object_set_new(o, "expect", json_integer(h->expect));
	} else {
		json_object_set_new(o, "service", json_string(h->service));
	}
	return o;
}

json_t *l7_upstreams_cluster_json(const struct l7_upstreams *u, size_t ci, uint64_t now_ms)
{
	const struct l7_cluster_cfg *cc = &u->cfg->clusters[ci];
	const struct l7_upset *s = l7_upstreams_current(u, ci);
	json_t *be = json_array();

	for (size_t i = 0; i < s->n; i++) {
		const struct l7_upstream *up = s->m[i].up;
		uint64_t req = 0, fail = 0, active = 0, conns = 0;
		unsigned out = 0;

		for (unsigned w = 0; w < up->n_workers; w++) {
			req += __atomic_load_n(&up->st[w].requests, __ATOMIC_RELAXED);
			fail += __atomic_load_n(&up->st[w].failures, __ATOMIC_RELAXED);
			active += __atomic_load_n(&up->st[w].active, __ATOMIC_RELAXED);
			conns += __atomic_load_n(&up->st[w].conns, __ATOMIC_RELAXED);
			out += __atomic_load_n(&up->st[w].down_until, __ATOMIC_RELAXED) > now_ms;
		}
		json_array_append_new(
		    be, json_pack("{s:s,s:i,s:b,s:s,s:i,s:I,s:I,s:I,s:I,s:o}", "address", up->name,
				  "weight", (int)s->m[i].weight, "drain", s->m[i].drain, "health",
				  out == 0		 ? "healthy"
				  : out == up->n_workers ? "out"
							 : "partly out",
				  "out_in_workers", (int)out, "active", (json_int_t)active,
				  "connections", (json_int_t)conns, "requests", (json_int_t)req,
				  "failures", (json_int_t)fail, "active_health",
				  active_json(&up->active, now_ms)));
	}
	return json_pack("{s:s,s:s,s:s,s:I,s:I,s:s,s:o,s:o}", "name", cc->name, "protocol",
			 l7_proto_name(cc->proto), "balance",
			 cc->balance == L7_BALANCE_LEAST_REQUEST ? "least_request" : "round_robin",
			 "version", (json_int_t)s->version, "since", (json_int_t)s->since, "source",
			 s->source, "health_check", health_check_json(cc, s), "backends", be);
}
