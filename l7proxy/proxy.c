// SPDX-License-Identifier: GPL-2.0-only
/*
 * proxy.c - policy on streams, between the sessions that speak protocols:
 * route a request to a cluster, enforce gRPC rules (deadlines, HTTP/2
 * only), add the proxy's headers, try a backend, decide on retries, and
 * answer errors in the request's own language (an HTTP status, or a
 * trailers-only gRPC status).
 *
 * Retries: only what the backend cannot have processed goes elsewhere.
 * A failed connect or a stream the backend refused (REFUSED_STREAM, or
 * above a GOAWAY's last stream id) may be tried again, up to three
 * attempts in all; a reused keepalive connection that closed before any
 * response byte may be replayed once, and only for a safe method (GET,
 * HEAD, OPTIONS, TRACE). Nothing is retried after a timeout, after a
 * request body byte left the proxy, or after the response began.
 */
#include "grpc.h"
#include "http1.h"
#include "log.h"
#include "proxy.h"
#include "utf8.h"
#include "router.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_ATTEMPTS 3

static void attempt(struct stream *s, const struct backend_rt *skip);

/* --- errors made here ------------------------------------------------------- */

static void decorate(struct stream *s)
{
	const struct l7_config *cfg = s->w->cfg;
	struct l7_hdrs *h = &s->resp.hdrs;
	uint32_t k = 0;

	/* Ours replace whatever a backend said under these names. */
	for (uint32_t i = 0; i < h->n; i++)
		if (strcmp(h->v[i].name, "x-request-id") != 0 &&
		    strcmp(h->v[i].name, "x-served-by") != 0)
			h->v[k++] = h->v[i];
	h->n = k;
	hdrs_add(h, &s->arena, "x-request-id", 12, s->reqid, s->reqid_len);
	hdrs_add(h, &s->arena, "x-served-by", 11, cfg->served_by, strlen(cfg->served_by));
}

/*
 * A gRPC response already under way that breaks between two messages can
 * still end as gRPC says, with the status in trailers (the client sees
 * UNAVAILABLE or DEADLINE_EXCEEDED, not a reset it maps to INTERNAL or
 * CANCELLED). Returns true if it did.
 */
static bool grpc_trailers(struct stream *s, enum grpc_status gs, const char *msg)
{
	char num[8], enc[256];
	size_t n;

	if (!s->grpc || s->h1_client || s->trailers_only || s->resp.end || s->ds_done ||
	    !stream_grpc_boundary(s))
		return false;
	n = grpc_message_encode(msg ? msg : "", enc, sizeof(enc));
	snprintf(num, sizeof(num), "%d", (int)gs);
	memset(&s->resp.trailers, 0, sizeof(s->resp.trailers));
	if (hdrs_add(&s->resp.trailers, &s->arena, "grpc-status", 11, num, strlen(num)) ||
	    hdrs_add(&s->resp.trailers, &s->arena, "grpc-message", 12, enc, n))
		return false;
	s->error = msg;
	s->resp.end = true;
	s->ds->resp_ready(s);
	return true;
}

static void reply(struct stream *s, int status, enum grpc_status gs, const char *msg)
{
	struct worker *w = s->w;

	loop_timer_cancel(&w->loop, &s->deadline);
	if (s->us && !s->us_done)
		s->us->cancel(s); /* it lets go: stream_us_done */
	if (!s->us_done)
		stream_us_done(s);
	if (s->ds_done)
		return;
	if (s->resp_started) {
		/* Too late for a head of our own: trailers, or a reset. */
		if (!grpc_trailers(s, gs, msg))
			s->ds->abort(s);
		return;
	}
	if (!s->reqid_len) {
		worker_reqid(w, s->reqid);
		s->reqid_len = 32;
	}
	memset(&s->resp.hdrs, 0, sizeof(s->resp.hdrs));
	memset(&s->resp.trailers, 0, sizeof(s->resp.trailers));
	pipe_clear(&s->resp.body, &w->pool);
	s->proxy_reply = true;
	s->error = msg;
	if (s->grpc && !s->h1_client) {
		/* gRPC: HTTP 200 and the status in the only HEADERS frame. */
		char num[8], enc[256];
		const char *text = msg ? msg : h1_reason(status);
		size_t n = grpc_message_encode(text, enc, sizeof(enc));

		s->status = 200;
		s->trailers_only = true;
		s->resp.content_length = -1;
		snprintf(num, sizeof(num), "%d", (int)gs);
		hdrs_add(&s->resp.hdrs, &s->arena, "content-type", 12, "application/grpc", 16);
		hdrs_add(&s->resp.hdrs, &s->arena, "grpc-status", 11, num, strlen(num));
		hdrs_add(&s->resp.hdrs, &s->arena, "grpc-message", 12, enc, n);
	} else {
		char body[256];
		int n = msg ? snprintf(body, sizeof(body), "%d %s: %s\n", status, h1_reason(status),
				       msg)
			    : snprintf(body, sizeof(body), "%d %s\n", status, h1_reason(status));

		if (n < 0 || (size_t)n >= sizeof(body))
			n = snprintf(body, sizeof(body), "%d %s\n", status, h1_reason(status));
		s->status = status;
		s->resp.content_length = n;
		hdrs_add(&s->resp.hdrs, &s->arena, "content-type", 12, "text/plain; charset=utf-8",
			 25);
		pipe_write(&s->resp.body, &w->pool, body, (size_t)n);
		s->resp.body_bytes = (uint64_t)n;
	}
	decorate(s);
	s->resp.head_done = true;
	s->resp.end = true;
	s->ds->resp_ready(s);
}

void stream_reply_error(struct stream *s, int status, const char *message)
{
	reply(s, status, grpc_status_for_http(status), message);
}

/* --- upstream outcomes ------------------------------------------------------- */

void proxy_resp_head(struct stream *s)
{
	decorate(s);
}

void stream_upstream_failed(struct stream *s, enum us_fail why, const char *detail)
{
	struct worker *w = s->w;
	struct backend_rt *be = s->backend;
	bool retry;

	if (why == US_FAIL_TIMEOUT)
		STAT_INC(w, upstream_timeouts);
	else
		STAT_INC(w, upstream_errors);
	if (be && (why == US_FAIL_CONNECT || why == US_FAIL_RESET || why == US_FAIL_RESET_EARLY ||
		   why == US_FAIL_PROTOCOL))
		backend_report(w, be, false);
	if (be)
		log_debug("backend %s: %s (attempt %u, %s)", be->up->name,
			  detail ? detail : "failed", s->attempts,
			  s->resp.head_done ? "after the response head" : "before a response");
	if (s->ds_done) {
		stream_us_done(s);
		return;
	}
	if (s->resp.head_done) {
		/* The response was under way: the stream is broken (a gRPC
		 * call between messages still gets a status). */
		stream_us_done(s);
		if (!grpc_trailers(s, GRPC_UNAVAILABLE, detail))
			s->ds->abort(s);
		return;
	}
	retry = !s->req_body_sent && s->attempts < MAX_ATTEMPTS &&
		(!s->deadline_ms || s->deadline_ms > w->loop.now_ms) &&
		(why == US_FAIL_CONNECT || why == US_FAIL_REFUSED ||
		 (why == US_FAIL_RESET_EARLY && s->safe && s->attempts == 1));
	if (retry) {
		STAT_INC(w, upstream_retries);
		/* A reused connection that died is no reason to leave a
		 * backend; a refused connect is. */
		attempt(s, why == US_FAIL_RESET_EARLY ? NULL : be);
		return;
	}
	reply(s, why == US_FAIL_TIMEOUT ? 504 : 502,
	      why == US_FAIL_TIMEOUT ? GRPC_DEADLINE_EXCEEDED : GRPC_UNAVAILABLE, detail);
}

static void attempt(struct stream *s, const struct backend_rt *skip)
{
	struct worker *w = s->w;
	struct cluster_rt *cl = s->cluster;
	struct backend_rt *be = w->stopping ? NULL : cluster_pick(w, cl, skip);
	int rc;

	if (!be) {
		STAT_INC(w, no_backend);
		reply(s, 503, GRPC_UNAVAILABLE, "no healthy backend");
		return;
	}
	/* The stream names be until it is freed (the log reads its name);
	 * a retry names the next one. */
	backend_hold(be);
	if (s->backend)
		backend_release(s->backend);
	s->backend = be;
	s->backend_name = be->up->name;
	s->attempts++;
	rc = l7_proto_h1(cl->cfg->proto) ? h1c_attach(s, be) : h2c_attach(s, be);
	if (rc == 0) {
		backend_active(be, 1);
		return;
	}
	if (rc == -EAGAIN) {
		STAT_INC(w, upstream_limit);
		reply(s, 503, GRPC_RESOURCE_EXHAUSTED, "backend connection limit reached");
		return;
	}
	if (rc == -E2BIG || rc == -ENOMEM) {
		/* The request could not be put on the wire: not the backend's
		 * fault, and no other backend would do better. */
		reply(s, 500, GRPC_RESOURCE_EXHAUSTED, "request cannot be forwarded");
		return;
	}
	stream_upstream_failed(s, US_FAIL_CONNECT, strerror(-rc));
}

/* --- deadlines --------------------------------------------------------------- */

static void on_deadline(struct loop_timer *t)
{
	struct stream *s = (struct stream *)((char *)t - offsetof(struct stream, deadline));

	STAT_INC(s->w, grpc_deadlines);
	s->deadline_hit = true;
	reply(s, 504, GRPC_DEADLINE_EXCEEDED, "deadline exceeded");
}

/* The deadline of a gRPC call: its grpc-timeout, or the route's default,
 * capped by the route's maximum. 0 = none. */
static uint64_t grpc_deadline(struct stream *s)
{
	const struct l7_hdr *h = hdrs_get(&s->req.hdrs, "grpc-timeout");
	const struct l7_route_cfg *r = s->route;
	uint64_t ms = 0;

	if (h && grpc_timeout_parse(h->value, h->value_len, &ms))
		ms = 0; /* unparseable: as if absent (and it is not forwarded) */
	if (!ms)
		ms = r->grpc_default_timeout_ms;
	if (r->grpc_max_timeout_ms && (!ms || ms > r->grpc_max_timeout_ms))
		ms = r->grpc_max_timeout_ms;
	return ms;
}

/* --- dispatch ----------------------------------------------------------------- */

/* name (lowercase) equals want, '_' counting as '-': CGI, WSGI, PHP and
 * Rack turn both into the same HTTP_X_... variable. */
static bool same_field(const char *name, size_t len, const char *want)
{
	size_t i;

	for (i = 0; i < len && want[i]; i++)
		if (name[i] != want[i] && !(name[i] == '_' && want[i] == '-'))
			return false;
	return i == len && !want[i];
}

bool proxy_reserved_field(const struct l7_config *cfg, const char *name, size_t len)
{
	return same_field(name, len, cfg->tls.identity_header) ||
	       same_field(name, len, "early-data");
}

void proxy_strip_reserved(const struct l7_config *cfg, struct l7_hdrs *h)
{
	uint32_t k = 0;

	for (uint32_t i = 0; i < h->n; i++)
		if (!proxy_reserved_field(cfg, h->v[i].name, h->v[i].name_len))
			h->v[k++] = h->v[i];
	h->n = k;
}

static int add_forwarding(struct stream *s)
{
	const struct l7_config *cfg = s->w->cfg;
	struct l7_hdrs *h = &s->req.hdrs;
	const char *idh = cfg->tls.identity_header;
	size_t idlen = strlen(idh);
	char buf[1024];
	int rc = 0;

	/* The identity header is ours alone, whatever the client sent under
	 * that name (and Early-Data, RFC 8470 §5.1, is for us to say);
	 * trailers are stripped as they come (h1_server.c, h2_server.c). */
	proxy_strip_reserved(cfg, h);
	if (s->identity)
		rc |= hdrs_add(h, &s->arena, idh, idlen, s->identity, strlen(s->identity));
	if (s->early)
		rc |= hdrs_add(h, &s->arena, "early-data", 10, "1", 1);

	rc |= hdrs_add(h, &s->arena, "x-request-id", 12, s->reqid, s->reqid_len);
	if (cfg->client.forwarded == L7_FORWARDED_APPEND) {
		const struct l7_hdr *x = hdrs_get(h, "x-forwarded-for");

		if (x) {
			/* Appended in place: the header keeps its position. */
			int n = snprintf(buf, sizeof(buf), "%s, %s", x->value, s->peer_ip);

			if (n > 0 && (size_t)n < sizeof(buf)) {
				struct l7_hdr *m = (struct l7_hdr *)x;

				m->value = arena_strndup(&s->arena, buf, (size_t)n);
				m->value_len = (uint32_t)n;
				rc |= m->value ? 0 : -ENOMEM;
			}
		} else {
			rc |= hdrs_add(h, &s->arena, "x-forwarded-for", 15, s->peer_ip,
				       strlen(s->peer_ip));
		}
		if (!hdrs_get(h, "x-forwarded-proto"))
			rc |= hdrs_add(h, &s->arena, "x-forwarded-proto", 17, s->scheme,
				       strlen(s->scheme));
		if (!hdrs_get(h, "x-real-ip"))
			rc |=
			    hdrs_add(h, &s->arena, "x-real-ip", 9, s->peer_ip, strlen(s->peer_ip));
	} else {
		rc |= hdrs_add(h, &s->arena, "x-forwarded-for", 15, s->peer_ip, strlen(s->peer_ip));
		rc |= hdrs_add(h, &s->arena, "x-forwarded-proto", 17, s->scheme, strlen(s->scheme));
		rc |= hdrs_add(h, &s->arena, "x-real-ip", 9, s->peer_ip, strlen(s->peer_ip));
	}
	return rc ? -ENOMEM : 0;
}

void proxy_dispatch(struct stream *s)
{
	struct worker *w = s->w;
	const struct l7_route_cfg *r;

	if (!s->reqid_len) {
		worker_reqid(w, s->reqid);
		s->reqid_len = 32;
	}
	if (s->grpc)
		STAT_INC(w, requests_grpc);
	if (s->grpc && s->h1_client) {
		/* gRPC is HTTP/2 only; say so in plain HTTP. */
		s->grpc = false;
		reply(s, 426, GRPC_INTERNAL, "gRPC needs HTTP/2 (ALPN h2, or prior-knowledge h2c)");
		return;
	}
	r = router_match(w->cfg, s->authority, s->authority_len, s->path, s->path_len);
	if (!r) {
		STAT_INC(w, no_route);
		reply(s, 404, GRPC_UNIMPLEMENTED, "no route");
		return;
	}
	s->route = r;
	s->cluster = &w->clusters[r->cluster];
	if (r->require_identity && !s->identity) {
		STAT_INC(w, identity_required);
		reply(s, 403, GRPC_UNAUTHENTICATED, "this route needs a client certificate");
		return;
	}
	/* RFC 8470: 0-RTT can be replayed, so only where the route allows
	 * it and only for methods that are safe to run twice; 425 asks the
	 * client to send it again after the handshake. */
	if (s->early && (!r->early_data || !s->safe)) {
		STAT_INC(w, early_data_refused);
		reply(s, 425, GRPC_UNAVAILABLE, "retry after the TLS handshake");
		return;
	}
	if (s->grpc) {
		uint64_t ms;

		if (l7_proto_h1(s->cluster->cfg->proto)) {
			reply(s, 500, GRPC_UNIMPLEMENTED,
			      "the route's cluster speaks HTTP/1.1; gRPC needs HTTP/2");
			return;
		}
		ms = grpc_deadline(s);
		if (ms) {
			s->deadline_ms = s->t_start + ms;
			loop_timer_at(&w->loop, &s->deadline, on_deadline, s->deadline_ms);
		}
	}
	if (add_forwarding(s)) {
		reply(s, 500, GRPC_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	attempt(s, NULL);
}

/* --- the access log ------------------------------------------------------------ */

/*
 * One line per request, built by hand: snprintf and strftime for every
 * line were a tenth of the proxy's CPU on small gRPC calls. The date part
 * is formatted once a second.
 */
struct line {
	char *p;
	size_t n, cap;
};

static void put(struct line *l, const char *s, size_t len)
{
	if (len > l->cap - l->n)
		len = l->cap - l->n;
	memcpy(l->p + l->n, s, len);
	l->n += len;
}

static void puts_(struct line *l, const char *s)
{
	put(l, s, strlen(s));
}

static void putu(struct line *l, uint64_t v)
{
	char b[24];
	size_t i = sizeof(b);

	do
		b[--i] = (char)('0' + v % 10);
	while ((v /= 10));
	put(l, b + i, sizeof(b) - i);
}

/* A JSON string value: UTF-8 as it is, other bytes outside printable
 * ASCII as \u00XX (one per byte, so the line stays valid JSON whatever a
 * client sent); at most max bytes of s. */
static void put_jstr(struct line *l, const char *s, size_t len, size_t max)
{
	static const char hex[] = "0123456789abcdef";

	if (len > max)
		len = max;
	put(l, "\"", 1);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		size_t seq = c >= 0x80 ? utf8_seq_len((const unsigned char *)s + i, len - i) : 0;

		if (seq) {
			put(l, s + i, seq);
			i += seq - 1;
		} else if (c == '"' || c == '\\') {
			put(l, "\\", 1);
			put(l, (const char *)&c, 1);
		} else if (c < 0x20 || c >= 0x7f) {
			put(l, (char[]){'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]}, 6);
		} else {
			put(l, (const char *)&c, 1);
		}
	}
	put(l, "\"", 1);
}

static void put_jfield(struct line *l, const char *key, const char *s, size_t len, size_t max)
{
	put(l, ",\"", 2);
	puts_(l, key);
	put(l, "\":", 2);
	if (s)
		put_jstr(l, s, len, max);
	else
		put(l, "null", 4);
}

/* access_log_format = "json": one object per line (docs/operations.md). */
static void log_json(struct stream *s, struct line *l, unsigned ms)
{
	struct worker *w = s->w;
	const struct l7_hdr *gs = stream_grpc_status(s);

	put(l, "{\"ts\":\"", 7);
	puts_(l, w->log_ts);
	put(l, ".", 1);
	put(l, (char[]){(char)('0' + ms / 100), (char)('0' + ms / 10 % 10), (char)('0' + ms % 10)},
	    3);
	put(l, "Z\"", 2);
	put_jfield(l, "client", s->peer_ip, s->peer_ip ? strlen(s->peer_ip) : 0, 64);
	put_jfield(l, "method", s->method, s->method_len, 32);
	put_jfield(l, "path", s->path, s->path_len, 256);
	put(l, ",\"status\":", 10);
	if (s->status)
		putu(l, (uint64_t)s->status);
	else
		put(l, "null", 4);
	put(l, ",\"bytes\":", 9);
	putu(l, s->bytes_out);
	put(l, ",\"duration_ms\":", 15);
	putu(l, w->loop.now_ms - s->t_start);
	put_jfield(l, "backend", s->backend_name, s->backend_name ? strlen(s->backend_name) : 0,
		   64);
	put_jfield(l, "id", s->reqid, s->reqid_len, 128);
	put_jfield(l, "tls", s->tls_desc, s->tls_desc ? strlen(s->tls_desc) : 0, 32);
	put_jfield(l, "client_identity", s->identity, s->identity ? strlen(s->identity) : 0, 256);
	put_jfield(l, "proto", s->h1_client ? "h1" : "h2", 2, 2);
	put_jfield(l, "grpc_status", gs ? gs->value : NULL, gs ? gs->value_len : 0, 4);
	put_jfield(l, "error", s->error, s->error ? strlen(s->error) : 0, 200);
}

void proxy_log(struct stream *s)
{
	struct worker *w = s->w;
	/* Room for every capped field escaped 6:1 (about 6 KiB). */
	char buf[8192];
	struct line l = {.p = buf, .cap = sizeof(buf) - 2};
	const struct l7_hdr *gs;
	struct timespec now;
	unsigned ms;

	if (w->log_fd < 0)
		return;
	clock_gettime(CLOCK_REALTIME, &now);
	if ((uint64_t)now.tv_sec != w->log_sec) {
		struct tm tm;

		gmtime_r(&now.tv_sec, &tm);
		strftime(w->log_ts, sizeof(w->log_ts), "%Y-%m-%dT%H:%M:%S", &tm);
		w->log_sec = (uint64_t)now.tv_sec;
	}
	ms = (unsigned)(now.tv_nsec / 1000000);
	if (w->cfg->access_log_json) {
		log_json(s, &l, ms);
		buf[l.n++] = '}'; /* cap left room for it and the newline */
		buf[l.n++] = '\n';
		worker_log(w, buf, l.n);
		return;
	}
	puts_(&l, w->log_ts);
	put(&l, ".", 1);
	put(&l, (char[]){(char)('0' + ms / 100), (char)('0' + ms / 10 % 10), (char)('0' + ms % 10)},
	    3);
	put(&l, "Z ", 2);
	puts_(&l, s->peer_ip ? s->peer_ip : "-");
	put(&l, " \"", 2);
	put(&l, s->method ? s->method : "-", s->method ? s->method_len : 1);
	put(&l, " ", 1);
	put(&l, s->path ? s->path : "-", s->path ? (s->path_len > 256 ? 256 : s->path_len) : 1);
	put(&l, "\" ", 2);
	if (s->status)
		putu(&l, (uint64_t)s->status);
	else
		put(&l, "-", 1); /* the client left before a response */
	put(&l, " ", 1);
	putu(&l, s->bytes_out);
	put(&l, " ", 1);
	putu(&l, w->loop.now_ms - s->t_start);
	put(&l, "ms backend=", 11);
	puts_(&l, s->backend_name ? s->backend_name : "-");
	put(&l, " id=", 4);
	put(&l, s->reqid, s->reqid_len);
	put(&l, " tls=", 5);
	puts_(&l, s->tls_desc ? s->tls_desc : "-");
	put(&l, " client=", 8);
	puts_(&l, s->identity ? s->identity : "-");
	puts_(&l, s->h1_client ? " proto=h1" : " proto=h2");
	gs = stream_grpc_status(s);
	if (gs) {
		put(&l, " grpc=", 6);
		put(&l, gs->value, gs->value_len < 4 ? gs->value_len : 4);
	}
	if (s->error) {
		put(&l, " error=\"", 8);
		puts_(&l, s->error);
		put(&l, "\"", 1);
	}
	buf[l.n++] = '\n'; /* cap left room for it */
	worker_log(w, buf, l.n);
}
