// SPDX-License-Identifier: GPL-2.0-only
/*
 * upstream_pull.c - the poller (upstream_pull.h): fetch the document, then
 * bring the proxy up to it, one exchange at a time, all in lbd's loop.
 *
 * A poll walks RESOLVE (names only) -> FETCH -> LIST -> PUT per cluster
 * that needs it -> IDLE, and the next one starts interval_ms after this
 * one started (at once if it overran). A failed fetch still goes on to
 * LIST and PUT with the last good document: that is how a restarted proxy
 * gets its sets back while the source is down. A failed call to the proxy
 * ends the poll there: the proxy is the one thing every later step needs.
 */
#include "upstream_pull.h"
#include "http_admin.h"
#include "http_client.h"
#include "list.h"
#include "log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <openssl/ssl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <time.h>

/* The proxy's admin socket is local and answers from its own loop: two
 * seconds is what lbctl gives it too (ADMIN_IO_TIMEOUT_MS). */
#define PROXY_TIMEOUT_MS 2000
/* GET /v1/clusters lists every backend with its counters: generous. */
#define PROXY_MAX_REPLY (64u << 20)
#define GAI_POLL_MS	5

enum cl_state {
	CL_PENDING,  /* not compared with the proxy yet */
	CL_APPLIED,  /* the proxy has the document's version */
	CL_AHEAD,    /* the proxy has a newer version than the document */
	CL_REJECTED, /* the proxy refused the document's version */
	CL_UNKNOWN,  /* the proxy has no such cluster */
};

static const char *const cl_state_names[] = {"pending", "applied", "proxy_ahead", "rejected",
					     "unknown_cluster"};

struct upull_cl {
	char name[UPULL_NAME_MAX];
	json_t *want; /* the last good document's set (a reference) */
	uint64_t want_version;
	json_t *good; /* the last set the proxy took from us (a reference), or NULL */
	uint64_t good_version;
	uint64_t rejected;     /* a version the proxy refused: not sent again (0: none) */
	int64_t proxy_version; /* in the proxy's last list; -1: not there / not known */
	enum cl_state state;
	char error[256]; /* the proxy's last word on a refusal, or "" */
};

/* A name resolution in flight; glibc's resolver thread writes into it. */
struct gai_req {
	struct gaicb cb;
	struct addrinfo hints;
	char name[256]; /* its own copy: it may outlive the poller */
	char service[8];
};

enum step { ST_IDLE, ST_RESOLVE, ST_FETCH, ST_LIST, ST_PUT };

struct upull {
	struct loop *loop;
	struct lbd_upstreams_cfg cfg;
	SSL_CTX *tls;
	char host_hdr[300]; /* the Host header: [v6]:port, or the name */
	struct sockaddr_storage addr;
	socklen_t addr_len; /* a name is resolved again every poll */
	struct sockaddr_un proxy;
	enum step step;
	struct loop_timer next;	    /* the next poll */
	struct loop_timer gai_poll; /* resolution progress */
	struct gai_req *gai;	    /* in flight, or abandoned but still running */
	struct httpc *x;	    /* the exchange in flight */
	uint64_t started_ms;	    /* of this poll (loop clock) */
	uint64_t deadline_ms;	    /* of its fetch, resolution included */
	bool sent_etag;
	size_t put_idx; /* the cluster being sent */
	uint64_t put_version;
	json_t *put_set;	   /* borrowed from put_idx's want or good */
	bool put_repush;	   /* the proxy had lost our good set */
	char etag[HTTPC_ETAG_MAX]; /* of the last good document ("" = none) */
	struct upull_cl *cl;
	size_t n_cl;
	bool have_doc;
	uint64_t last_fetch_ms, last_success_ms; /* wall clock; 0: never */
	enum upull_reason fetch_state;		 /* outcome of the last fetch */
	char fetch_msg[256];
	enum upull_reason proxy_state; /* UPULL_OK or UPULL_E_PROXY */
	char proxy_msg[256];
	uint64_t fetches, docs, not_modified, applied, repushed, stale;
	uint64_t errors[UPULL_REASON_MAX];
};

static uint64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void fetch_start(struct upull *p);
static void list_start(struct upull *p);
static void put_next(struct upull *p);

/* --- the outcome of a poll: counted always, logged on change -------------- */

/* Messages quote the document and the proxy: whatever is not printable
 * ASCII becomes '?', so a key cannot forge log lines, and a message cut
 * in the middle of a character cannot make the API's JSON unwritable. */
static void sanitize(char *m)
{
	for (; *m; m++)
		if ((unsigned char)*m < 0x20 || (unsigned char)*m >= 0x7f)
			*m = '?';
}

static void fetch_outcome(struct upull *p, enum upull_reason r, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void fetch_outcome(struct upull *p, enum upull_reason r, const char *fmt, ...)
{
	bool was_ok = p->fetch_state == UPULL_OK || p->fetch_state == UPULL_NOT_MODIFIED;
	bool ok = r == UPULL_OK || r == UPULL_NOT_MODIFIED;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(p->fetch_msg, sizeof(p->fetch_msg), fmt, ap);
	va_end(ap);
	sanitize(p->fetch_msg);
	if (ok && r == UPULL_OK)
		p->docs++;
	else if (ok)
		p->not_modified++;
	else
		p->errors[r]++;
	/* Once per change of reason, not once per poll: a source down for a
	 * day is one line, and one more when it is back. */
	if (!ok && r != p->fetch_state)
		log_warn("upstreams: %s: %s; keeping the last good sets", p->cfg.url, p->fetch_msg);
	else if (ok && !was_ok)
		log_info("upstreams: %s answers again (%s)", p->cfg.url, p->fetch_msg);
	p->fetch_state = r;
}

static void proxy_outcome(struct upull *p, bool ok, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void proxy_outcome(struct upull *p, bool ok, const char *fmt, ...)
{
	enum upull_reason r = ok ? UPULL_OK : UPULL_E_PROXY;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(p->proxy_msg, sizeof(p->proxy_msg), fmt, ap);
	va_end(ap);
	sanitize(p->proxy_msg);
	if (!ok) {
		p->errors[UPULL_E_PROXY]++;
		if (p->proxy_state != r)
			log_warn("upstreams: proxy %s: %s; will retry every poll",
				 p->cfg.proxy_socket, p->proxy_msg);
	} else if (p->proxy_state != r) {
		log_info("upstreams: proxy %s answers again", p->cfg.proxy_socket);
	}
	p->proxy_state = r;
}

/* Set a cluster's state; log when it changes (a refusal: per version). */
static void cl_set(struct upull *p, struct upull_cl *c, enum cl_state st, const char *raw)
{
	char msg[sizeof(c->error)];
	bool changed;

	snprintf(msg, sizeof(msg), "%s", raw);
	sanitize(msg);
	changed = c->state != st || strcmp(c->error, msg);

	if (changed && st == CL_REJECTED)
		log_warn("upstreams: cluster %s: the proxy refused version %llu: %s; it keeps "
			 "version %lld",
			 c->name, (unsigned long long)c->want_version, msg,
			 (long long)c->proxy_version);
	else if (changed && st == CL_UNKNOWN)
		log_warn("upstreams: cluster %s: %s", c->name, msg);
	else if (changed && st == CL_AHEAD)
		log_info("upstreams: cluster %s: %s", c->name, msg);
	/* Counted on entering the state (refusals: per PUT, in on_put). */
	if (st == CL_UNKNOWN && c->state != CL_UNKNOWN)
		p->errors[UPULL_E_UNKNOWN_CLUSTER]++;
	c->state = st;
	snprintf(c->error, sizeof(c->error), "%s", msg);
}

static void poll_start(struct loop_timer *t);

static void cycle_end(struct upull *p)
{
	uint64_t at = p->started_ms + p->cfg.interval_ms;

	p->step = ST_IDLE;
	loop_timer_at(p->loop, &p->next, poll_start, at > p->loop->now_ms ? at : p->loop->now_ms);
}

/* --- 1. the document ------------------------------------------------------ */

static void cl_release(struct upull_cl *c)
{
	json_decref(c->want);
	json_decref(c->good);
}

static struct upull_cl *cl_find(struct upull *p, const char *name)
{
	/* Linear: a document holds tens of clusters; 1024 at most. */
	for (size_t i = 0; i < p->n_cl; i++)
		if (strcmp(p->cl[i].name, name) == 0)
			return &p->cl[i];
	return NULL;
}

/* Make doc the last good document; a cluster it keeps keeps its history.
 * -ENOMEM (nothing changed) or 0. */
static int adopt(struct upull *p, const struct upull_doc *doc)
{
	struct upull_cl *next = calloc(doc->n ? doc->n : 1, sizeof(*next));

	if (!next)
		return -ENOMEM;
	for (size_t i = 0; i < doc->n; i++) {
		struct upull_cl *old = cl_find(p, doc->c[i].name), *c = &next[i];

		if (old) {
			*c = *old;
			json_decref(c->want);
			old->want = old->good = NULL; /* moved */
			old->name[0] = '\0';
		} else {
			snprintf(c->name, sizeof(c->name), "%s", doc->c[i].name);
			c->proxy_version = -1;
		}
		c->want = json_incref(doc->c[i].set);
		if (c->want_version != doc->c[i].version) {
			c->state = CL_PENDING;
			c->error[0] = '\0';
		}
		c->want_version = doc->c[i].version;
	}
	for (size_t i = 0; i < p->n_cl; i++) {
		if (p->cl[i].name[0])
			log_info("upstreams: cluster %s left the document; the proxy keeps its set",
				 p->cl[i].name);
		cl_release(&p->cl[i]);
	}
	free(p->cl);
	p->cl = next;
	p->n_cl = doc->n;
	return 0;
}

static enum upull_reason failure_reason(const struct httpc_result *r)
{
	if (r->err == -ETIMEDOUT)
		return UPULL_E_TIMEOUT;
	if (r->err == -EMSGSIZE)
		return UPULL_E_TOO_LARGE;
	if (r->err == -EBADMSG)
		return UPULL_E_BAD_RESPONSE;
	return r->phase == HTTPC_TLS ? UPULL_E_TLS : UPULL_E_CONNECT;
}

static void on_fetch(void *ctx, const struct httpc_result *r)
{
	struct upull *p = ctx;
	struct upull_doc doc;
	enum upull_reason why;
	char err[256];
	int rc;

	p->x = NULL;
	if (r->err) {
		fetch_outcome(p, failure_reason(r), "%s", r->msg);
		list_start(p);
		return;
	}
	why = upull_status_reason(r->status, p->sent_etag);
	if (why == UPULL_NOT_MODIFIED) {
		p->last_success_ms = wall_ms();
		fetch_outcome(p, why, "not modified");
	} else if (why == UPULL_E_REDIRECT) {
		fetch_outcome(p, why, "HTTP %d: redirects are not followed", r->status);
	} else if (why != UPULL_OK) {
		fetch_outcome(p, why, "HTTP %d", r->status);
	} else if ((rc = upull_doc_parse(r->body, r->body_len, &doc, err, sizeof(err)))) {
		/* Its ETag is not kept: the next poll fetches it again, and
		 * counts it again, until the source serves a good one. */
		fetch_outcome(p, rc == -EBADMSG ? UPULL_E_BAD_JSON : UPULL_E_BAD_DOCUMENT,
			      "bad document: %s", err);
	} else {
		rc = adopt(p, &doc);
		upull_doc_free(&doc);
		if (rc) {
			fetch_outcome(p, UPULL_E_BAD_DOCUMENT, "out of memory");
		} else {
			p->have_doc = true;
			p->last_success_ms = wall_ms();
			snprintf(p->etag, sizeof(p->etag), "%s",
				 r->etag_seen && upull_etag_usable(r->etag) ? r->etag : "");
			fetch_outcome(p, why, "%zu clusters", p->n_cl);
		}
	}
	list_start(p);
}

static void fetch_start(struct upull *p)
{
	uint64_t now = p->loop->now_ms;
	char head[2048 + HTTPC_ETAG_MAX];
	struct httpc_req req = {
	    .addr = (const struct sockaddr *)&p->addr,
	    .addr_len = p->addr_len,
	    .tls = p->tls,
	    .tls_name = p->cfg.host,
	    .head = head,
	    .max_body = UPULL_MAX_DOC,
	    .timeout_ms = p->deadline_ms > now ? (uint32_t)(p->deadline_ms - now) : 1,
	};

	p->sent_etag = p->etag[0] != '\0';
	snprintf(head, sizeof(head),
		 "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: portico-lbd/" PORTICO_VERSION
		 "\r\nAccept: application/json\r\n%s%s%sConnection: close\r\n\r\n",
		 p->cfg.target, p->host_hdr, p->sent_etag ? "If-None-Match: " : "", p->etag,
		 p->sent_etag ? "\r\n" : "");
	p->step = ST_FETCH;
	p->x = httpc_start(p->loop, &req, on_fetch, p);
	if (!p->x) {
		fetch_outcome(p, UPULL_E_CONNECT, "%s", strerror(errno));
		list_start(p);
	}
}

/* --- resolving the URL's host name ---------------------------------------- */

static void gai_release(struct gai_req *g)
{
	if (g->cb.ar_result)
		freeaddrinfo(g->cb.ar_result);
	free(g);
}

static void on_gai_poll(struct loop_timer *t)
{
	struct upull *p = container_of(t, struct upull, gai_poll);
	struct gai_req *g = p->gai;
	int rc = gai_error(&g->cb);

	if (rc == EAI_INPROGRESS) {
		if (p->loop->now_ms < p->deadline_ms) {
			loop_timer_in(p->loop, &p->gai_poll, on_gai_poll, GAI_POLL_MS);
			return;
		}
		/* glibc may not let go of a lookup already being run: then
		 * keep it until it ends (resolve_start checks). */
		if (gai_cancel(&g->cb) != EAI_NOTCANCELED) {
			gai_release(g);
			p->gai = NULL;
		}
		fetch_outcome(p, UPULL_E_TIMEOUT, "timeout after %u ms resolving %s",
			      p->cfg.timeout_ms, p->cfg.host);
		list_start(p);
		return;
	}
	p->gai = NULL;
	if (rc || !g->cb.ar_result || g->cb.ar_result->ai_addrlen > sizeof(p->addr)) {
		fetch_outcome(p, UPULL_E_RESOLVE, "resolving %s: %s", p->cfg.host,
			      rc ? gai_strerror(rc) : "no address");
		gai_release(g);
		list_start(p);
		return;
	}
	/* The first address only: a control plane behind several has them
	 * behind one name that its DNS rotates. */
	memcpy(&p->addr, g->cb.ar_result->ai_addr, g->cb.ar_result->ai_addrlen);
	p->addr_len = g->cb.ar_result->ai_addrlen;
	gai_release(g);
	fetch_start(p);
}

static void resolve_start(struct upull *p)
{
	struct gaicb *list[1];
	struct gai_req *g;
	int rc;

	if (p->gai) {
		if (gai_error(&p->gai->cb) == EAI_INPROGRESS) {
			fetch_outcome(p, UPULL_E_TIMEOUT,
				      "resolving %s: the previous lookup is still running",
				      p->cfg.host);
			list_start(p);
			return;
		}
		gai_release(p->gai);
		p->gai = NULL;
	}
	g = calloc(1, sizeof(*g));
	if (!g) {
		fetch_outcome(p, UPULL_E_RESOLVE, "resolving %s: out of memory", p->cfg.host);
		list_start(p);
		return;
	}
	g->hints = (struct addrinfo){.ai_socktype = SOCK_STREAM};
	snprintf(g->name, sizeof(g->name), "%s", p->cfg.host);
	snprintf(g->service, sizeof(g->service), "%u", p->cfg.port);
	g->cb =
	    (struct gaicb){.ar_name = g->name, .ar_service = g->service, .ar_request = &g->hints};
	list[0] = &g->cb;
	rc = getaddrinfo_a(GAI_NOWAIT, list, 1, NULL);
	if (rc) {
		free(g);
		fetch_outcome(p, UPULL_E_RESOLVE, "resolving %s: %s", p->cfg.host,
			      gai_strerror(rc));
		list_start(p);
		return;
	}
	p->gai = g;
	p->step = ST_RESOLVE;
	loop_timer_in(p->loop, &p->gai_poll, on_gai_poll, GAI_POLL_MS);
}

static bool host_literal(struct upull *p)
{
	struct sockaddr_in *in = (struct sockaddr_in *)&p->addr;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&p->addr;

	memset(&p->addr, 0, sizeof(p->addr));
	if (inet_pton(AF_INET, p->cfg.host, &in->sin_addr) == 1) {
		in->sin_family = AF_INET;
		in->sin_port = htons(p->cfg.port);
		p->addr_len = sizeof(*in);
		return true;
	}
	if (inet_pton(AF_INET6, p->cfg.host, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(p->cfg.port);
		p->addr_len = sizeof(*in6);
		return true;
	}
	return false;
}

static void poll_start(struct loop_timer *t)
{
	struct upull *p = container_of(t, struct upull, next);

	p->started_ms = p->loop->now_ms;
	p->deadline_ms = p->started_ms + p->cfg.timeout_ms;
	p->fetches++;
	p->last_fetch_ms = wall_ms();
	if (host_literal(p))
		fetch_start(p);
	else
		resolve_start(p);
}

/* --- 2. the proxy ---------------------------------------------------------- */

static struct httpc *proxy_call(struct upull *p, const char *method, const char *path,
				const char *body, httpc_done_fn fn)
{
	char head[512];
	struct httpc_req req = {
	    .addr = (const struct sockaddr *)&p->proxy,
	    .addr_len = sizeof(p->proxy),
	    .head = head,
	    .body = body,
	    .body_len = body ? strlen(body) : 0,
	    .max_body = PROXY_MAX_REPLY,
	    .timeout_ms = PROXY_TIMEOUT_MS,
	};

	snprintf(head, sizeof(head),
		 "%s %s HTTP/1.1\r\nHost: localhost\r\nUser-Agent: portico-lbd/" PORTICO_VERSION
		 "\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
		 "Connection: close\r\n\r\n",
		 method, path, req.body_len);
	return httpc_start(p->loop, &req, fn, p);
}

/* The proxy's {"error": "..."} of a reply, or a stand-in. */
static void reply_error(const struct httpc_result *r, char *buf, size_t len)
{
	json_t *j = json_loadb(r->body, r->body_len, 0, NULL);
	const char *e = json_string_value(json_object_get(j, "error"));

	snprintf(buf, len, "%s", e ? e : "(no message)");
	json_decref(j);
}

static void on_list(void *ctx, const struct httpc_result *r)
{
	struct upull *p = ctx;
	json_t *j, *list, *e;
	size_t i;

	p->x = NULL;
	if (r->err || r->status != 200) {
		if (r->err)
			proxy_outcome(p, false, "GET /v1/clusters: %s", r->msg);
		else
			proxy_outcome(p, false, "GET /v1/clusters: HTTP %d", r->status);
		cycle_end(p);
		return;
	}
	j = json_loadb(r->body, r->body_len, 0, NULL);
	list = json_object_get(j, "clusters");
	if (!json_is_array(list)) {
		json_decref(j);
		proxy_outcome(p, false, "GET /v1/clusters: no \"clusters\" array in the reply");
		cycle_end(p);
		return;
	}
	for (size_t k = 0; k < p->n_cl; k++)
		p->cl[k].proxy_version = -1;
	json_array_foreach(list, i, e)
	{
		const char *name = json_string_value(json_object_get(e, "name"));
		json_t *v = json_object_get(e, "version");
		struct upull_cl *c = name ? cl_find(p, name) : NULL;

		if (c && json_is_integer(v) && json_integer_value(v) >= 0)
			c->proxy_version = json_integer_value(v);
	}
	json_decref(j);
	proxy_outcome(p, true, "ok");
	p->put_idx = 0;
	put_next(p);
}

static void list_start(struct upull *p)
{
	if (!p->have_doc) {
		cycle_end(p);
		return;
	}
	p->step = ST_LIST;
	p->x = proxy_call(p, "GET", "/v1/clusters", NULL, on_list);
	if (!p->x) {
		proxy_outcome(p, false, "GET /v1/clusters: %s", strerror(errno));
		cycle_end(p);
	}
}

static void on_put(void *ctx, const struct httpc_result *r)
{
	struct upull *p = ctx;
	struct upull_cl *c = &p->cl[p->put_idx];
	char msg[256];

	p->x = NULL;
	if (r->err || (r->status >= 500 || r->status == 405)) {
		if (r->err)
			proxy_outcome(p, false, "PUT /v1/clusters/%s/backends: %s", c->name,
				      r->msg);
		else
			proxy_outcome(p, false, "PUT /v1/clusters/%s/backends: HTTP %d", c->name,
				      r->status);
		cycle_end(p);
		return;
	}
	proxy_outcome(p, true, "ok");
	if (r->status == 200) {
		json_incref(p->put_set);
		json_decref(c->good);
		c->good = p->put_set;
		c->good_version = p->put_version;
		c->proxy_version = (int64_t)p->put_version;
		p->applied++;
		p->repushed += p->put_repush;
		log_info("upstreams: cluster %s: version %llu applied%s", c->name,
			 (unsigned long long)p->put_version,
			 p->put_repush ? " again (the proxy had lost it: restarted?)" : "");
		/* The last good set sent again leaves a refused newer one
		 * refused. */
		if (p->put_version == c->want_version)
			cl_set(p, c, CL_APPLIED, "");
	} else if (r->status == 409) {
		/* Someone gave the proxy this version or a newer one since
		 * it listed its versions: what we wanted is there or
		 * superseded. Not an error; the next poll's list says which. */
		reply_error(r, msg, sizeof(msg));
		log_debug("upstreams: cluster %s: %s", c->name, msg);
		p->stale++;
	} else if (r->status == 404) {
		snprintf(msg, sizeof(msg), "the proxy has no cluster %s", c->name);
		cl_set(p, c, CL_UNKNOWN, msg);
	} else {
		/* 400 or 413: this set is bad, whatever we do. Keep the last
		 * good one; try this version never again. */
		reply_error(r, msg, sizeof(msg));
		p->errors[UPULL_E_REJECTED]++;
		if (p->put_set == c->want) {
			c->rejected = p->put_version;
			cl_set(p, c, CL_REJECTED, msg);
		} else { /* even the last good set: forget it */
			log_warn("upstreams: cluster %s: the proxy refused version %llu, "
				 "taken before: %s",
				 c->name, (unsigned long long)p->put_version, msg);
			json_decref(c->good);
			c->good = NULL;
			c->good_version = 0;
		}
	}
	p->put_idx++;
	put_next(p);
}

/* Send the next cluster the proxy is behind on, or end the poll. */
static void put_next(struct upull *p)
{
	for (; p->put_idx < p->n_cl; p->put_idx++) {
		struct upull_cl *c = &p->cl[p->put_idx];
		bool use_want = c->want_version != c->rejected;
		json_t *set = use_want ? c->want : c->good;
		uint64_t v = use_want ? c->want_version : c->good_version;
		char path[UPULL_NAME_MAX + 32], msg[128], *body;
		json_t *b;

		if (c->proxy_version < 0) {
			snprintf(msg, sizeof(msg), "the proxy has no cluster %s", c->name);
			cl_set(p, c, CL_UNKNOWN, msg);
			continue;
		}
		if (!set || v <= (uint64_t)c->proxy_version) {
			if (c->want_version == (uint64_t)c->proxy_version) {
				/* There already (an lbd restarted, say): ours now,
				 * to send again if the proxy loses it. */
				if (c->good != c->want) {
					json_decref(c->good);
					c->good = json_incref(c->want);
					c->good_version = c->want_version;
				}
				cl_set(p, c, CL_APPLIED, "");
			} else if (c->want_version < (uint64_t)c->proxy_version) {
				snprintf(
				    msg, sizeof(msg),
				    "the proxy has version %lld, newer than the document's %llu",
				    (long long)c->proxy_version,
				    (unsigned long long)c->want_version);
				cl_set(p, c, CL_AHEAD, msg);
			}
			continue;
		}
		/* The body names the cluster: the proxy refuses it if the
		 * path were ever to point at another. */
		b = json_copy(set);
		if (!b || json_object_set_new(b, "cluster", json_string(c->name)) ||
		    !(body = json_dumps(b, JSON_COMPACT))) {
			json_decref(b);
			proxy_outcome(p, false, "out of memory");
			break;
		}
		json_decref(b);
		if (strlen(body) > ADMIN_MAX_BODY && set == c->want) {
			/* The proxy would refuse it (413) and close before it
			 * reads it all: refuse it here, and go on with the next
			 * cluster instead of failing the whole poll. */
			free(body);
			snprintf(msg, sizeof(msg), "version %llu is over the proxy's %d-byte limit",
				 (unsigned long long)v, ADMIN_MAX_BODY);
			p->errors[UPULL_E_REJECTED]++;
			c->rejected = v;
			cl_set(p, c, CL_REJECTED, msg);
			continue;
		}
		snprintf(path, sizeof(path), "/v1/clusters/%s/backends", c->name);
		p->put_set = set;
		p->put_version = v;
		p->put_repush = c->good && c->proxy_version < (int64_t)c->good_version;
		if (p->put_repush)
			log_warn(
			    "upstreams: cluster %s: the proxy has version %lld, older than the "
			    "%llu it took (restarted?): sending it again",
			    c->name, (long long)c->proxy_version,
			    (unsigned long long)c->good_version);
		p->step = ST_PUT;
		p->x = proxy_call(p, "PUT", path, body, on_put);
		free(body);
		if (p->x)
			return;
		proxy_outcome(p, false, "PUT %s: %s", path, strerror(errno));
		break;
	}
	cycle_end(p);
}

/* --- life cycle and the API --------------------------------------------------- */

struct upull *upull_new(struct loop *l, const struct lbd_upstreams_cfg *cfg, char **err)
{
	struct upull *p = calloc(1, sizeof(*p));
	bool v6 = strchr(cfg->host, ':') != NULL;
	bool dflt = cfg->port == (cfg->https ? 443 : 80);
	const char *what = NULL;

	*err = NULL;
	if (!p) {
		errno = ENOMEM;
		return NULL;
	}
	p->loop = l;
	p->cfg = *cfg;
	p->proxy.sun_family = AF_UNIX;
	snprintf(p->proxy.sun_path, sizeof(p->proxy.sun_path), "%s", cfg->proxy_socket);
	snprintf(p->host_hdr, sizeof(p->host_hdr), dflt ? "%s%s%s" : "%s%s%s:%u", v6 ? "[" : "",
		 cfg->host, v6 ? "]" : "", cfg->port);
	if (cfg->https) {
		p->tls = SSL_CTX_new(TLS_client_method());
		if (!p->tls || !SSL_CTX_set_min_proto_version(p->tls, TLS1_2_VERSION))
			what = "creating a TLS context";
		else if (cfg->ca_file[0] &&
			 SSL_CTX_load_verify_locations(p->tls, cfg->ca_file, NULL) != 1)
			what = "loading ca_file";
		else if (!cfg->ca_file[0] && SSL_CTX_set_default_verify_paths(p->tls) != 1)
			what = "loading the system's trust store";
		if (what) {
			if (asprintf(err, "upstreams: %s%s%s", what, cfg->ca_file[0] ? " " : "",
				     cfg->ca_file) < 0)
				*err = NULL;
			SSL_CTX_free(p->tls);
			free(p);
			errno = EINVAL;
			return NULL;
		}
		/* The source decides what this host serves: it must prove
		 * it is the one the URL names (tls_name, http_client.c). */
		SSL_CTX_set_verify(p->tls, SSL_VERIFY_PEER, NULL);
	}
	return p;
}

void upull_start(struct upull *p)
{
	log_info("upstreams: polling %s every %u ms for %s", p->cfg.url, p->cfg.interval_ms,
		 p->cfg.proxy_socket);
	loop_timer_in(p->loop, &p->next, poll_start, 0);
}

void upull_free(struct upull *p)
{
	if (!p)
		return;
	loop_timer_cancel(p->loop, &p->next);
	loop_timer_cancel(p->loop, &p->gai_poll);
	httpc_cancel(p->x);
	/* A lookup glibc cannot cancel still writes into its request: that
	 * one is left behind (a few hundred bytes, at shutdown or reload). */
	if (p->gai && gai_cancel(&p->gai->cb) != EAI_NOTCANCELED)
		gai_release(p->gai);
	for (size_t i = 0; i < p->n_cl; i++)
		cl_release(&p->cl[i]);
	free(p->cl);
	SSL_CTX_free(p->tls);
	free(p);
}

static json_t *ms_or_null(uint64_t ms)
{
	return ms ? json_integer((json_int_t)ms) : json_null();
}

json_t *upull_json(const struct upull *p)
{
	json_t *clusters = json_object(), *errors = json_object();
	static const char *const steps[] = {"idle", "resolving", "fetching", "listing", "applying"};
	uint64_t now = wall_ms();

	for (size_t i = 0; i < p->n_cl; i++) {
		const struct upull_cl *c = &p->cl[i];

		json_object_set_new(
		    clusters, c->name,
		    json_pack("{s:I,s:o,s:o,s:s,s:o}", "document_version",
			      (json_int_t)c->want_version, "applied_version",
			      c->good ? json_integer((json_int_t)c->good_version) : json_null(),
			      "proxy_version",
			      c->proxy_version >= 0 ? json_integer(c->proxy_version) : json_null(),
			      "state", cl_state_names[c->state], "error",
			      c->error[0] ? json_string(c->error) : json_null()));
	}
	for (int r = UPULL_E_RESOLVE; r < UPULL_REASON_MAX; r++)
		json_object_set_new(errors, upull_reason_name(r),
				    json_integer((json_int_t)p->errors[r]));
	return json_pack(
	    "{s:s,s:s,s:i,s:i,s:s,s:o,s:o,s:o,s:s,s:s,s:o,s:o,s:s,s:{s:I,s:I,s:I,s:I,s:I,s:I,s:o}}",
	    "url", p->cfg.url, "proxy_socket", p->cfg.proxy_socket, "interval_ms",
	    (int)p->cfg.interval_ms, "timeout_ms", (int)p->cfg.timeout_ms, "step", steps[p->step],
	    "last_fetch_ms", ms_or_null(p->last_fetch_ms), "last_fetch_ms_ago",
	    p->last_fetch_ms ? json_integer((json_int_t)(now - p->last_fetch_ms)) : json_null(),
	    "last_success_ms", ms_or_null(p->last_success_ms), "last_result",
	    upull_reason_name(p->fetch_state), "last_message", p->fetch_msg, "etag",
	    p->etag[0] ? json_string(p->etag) : json_null(), "clusters", clusters, "proxy",
	    p->proxy_state == UPULL_OK ? "ok" : p->proxy_msg, "counters", "fetches",
	    (json_int_t)p->fetches, "documents", (json_int_t)p->docs, "not_modified",
	    (json_int_t)p->not_modified, "applied", (json_int_t)p->applied, "repushed",
	    (json_int_t)p->repushed, "stale", (json_int_t)p->stale, "errors", errors);
}
