/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * upstream_pull.h - lbd on an L7 host pulls the proxy's backend sets from
 * an HTTP(S) URL (any control plane can feed a fleet that way) and hands
 * each changed cluster to the local l7proxy through its admin socket, as
 * `PUT /v1/clusters/NAME/backends`. docs/api.md, "Pulled upstream sets",
 * is the document's reference; docs/configuration.md, "upstreams", the
 * settings'.
 *
 * One poll, every interval_ms from the start of the previous one:
 *   1. GET the URL, with If-None-Match: the last good document's ETag. A
 *      200 brings a document, validated whole here (upstream_doc.c); a 304
 *      says nothing changed; anything else (no answer in timeout_ms, a
 *      refused connection, a bad certificate, a 3xx, a 5xx, a body over
 *      UPULL_MAX_DOC, bad JSON, a bad shape) keeps the last good document,
 *      is counted by reason and logged when the outcome changes.
 *   2. GET /v1/clusters from the proxy, then PUT each cluster of the last
 *      good document whose version is newer than the proxy's. So a proxy
 *      that restarted (back to its config's sets, version 0) gets the sets
 *      again at the next poll, even while the URL answers 304 or nothing.
 *      A version the proxy refused (400: a bad backend, say) is not sent
 *      again; the cluster keeps the set the proxy has, the last good one.
 * Every step runs in lbd's event loop with a deadline (http_client.h);
 * names resolve with getaddrinfo_a, polled from the loop.
 */
#ifndef PORTICO_UPSTREAM_PULL_H
#define PORTICO_UPSTREAM_PULL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "loop.h"

#define UPULL_MAX_DOC	   (4u << 20) /* bytes of a document */
#define UPULL_MAX_CLUSTERS 1024
/* The proxy's own limits (l7proxy/upstream.h), checked here too so a
 * document that cannot apply is refused before anything is sent. */
#define UPULL_MAX_BACKENDS 4096
#define UPULL_MAX_VERSION  (1ULL << 53)
#define UPULL_NAME_MAX	   64 /* a cluster name, NUL included */

/* --- the document (upstream_doc.c): pure functions -------------------- */

struct upull_doc_cluster {
	char name[UPULL_NAME_MAX];
	uint64_t version; /* 1 .. 2^53 */
	json_t *set;	  /* {"version", "backends"}: borrowed from the doc */
};

struct upull_doc {
	json_t *root; /* owns every set */
	struct upull_doc_cluster *c;
	size_t n;
};

/*
 * Parse and check a document (text[0..len), no NUL needed):
 *   {"clusters": {"NAME": {"version": N, "backends": [ELEM, ...]}, ...}}
 * ELEM is an object or an "ADDR:PORT" string; what is inside an element
 * (address syntax, weight, drain, duplicates) is the proxy's to judge, and
 * a refusal of it comes back per cluster. Returns 0 with *out filled
 * (upull_doc_free), -EBADMSG when the text is not JSON, or -EINVAL when
 * the shape is wrong (a duplicate key included); both with a message in
 * err naming the field ("clusters.web.version: ..."). On error *out holds
 * nothing to free.
 */
int upull_doc_parse(const char *text, size_t len, struct upull_doc *out, char *err, size_t errlen);

/* Free what upull_doc_parse filled; a zeroed doc is fine. */
void upull_doc_free(struct upull_doc *d);

/* Why a poll, or one cluster of it, went as it did: the API's counters. */
enum upull_reason {
	UPULL_OK = 0,	      /* 200 with a good document */
	UPULL_NOT_MODIFIED,   /* 304 */
	UPULL_E_RESOLVE,      /* the URL's host name did not resolve */
	UPULL_E_CONNECT,      /* refused, reset, closed early */
	UPULL_E_TLS,	      /* handshake or certificate */
	UPULL_E_TIMEOUT,      /* no whole answer within timeout_ms */
	UPULL_E_BAD_RESPONSE, /* not HTTP/1.x */
	UPULL_E_TOO_LARGE,    /* body over UPULL_MAX_DOC */
	UPULL_E_REDIRECT,     /* 3xx: not followed */
	UPULL_E_STATUS,	      /* any other status */
	UPULL_E_BAD_JSON,
	UPULL_E_BAD_DOCUMENT,
	UPULL_E_PROXY,		 /* the proxy's socket: unreachable, timeout, 5xx */
	UPULL_E_REJECTED,	 /* the proxy refused a cluster's set (400) */
	UPULL_E_UNKNOWN_CLUSTER, /* the proxy has no such cluster */
	UPULL_REASON_MAX
};

/* "ok", "not_modified", "timeout", ...: the API's names. Static strings. */
const char *upull_reason_name(enum upull_reason r);

/*
 * What a response status means: 200 UPULL_OK; 304 UPULL_NOT_MODIFIED if
 * the request was conditional (sent_etag), else UPULL_E_STATUS; other 3xx
 * UPULL_E_REDIRECT; anything else UPULL_E_STATUS.
 */
enum upull_reason upull_status_reason(int status, bool sent_etag);

/*
 * Whether an ETag value may be kept and sent back in If-None-Match: an
 * entity-tag per RFC 9110 8.8.3 (optional W/, then a quoted string of
 * visible characters), shorter than HTTPC_ETAG_MAX. A server whose ETags
 * are not gets a full fetch every poll.
 */
bool upull_etag_usable(const char *etag);

/* --- the poller (upstream_pull.c) ------------------------------------ */

struct upull;

/*
 * A poller for cfg (copied) in loop l, not started. With an https URL it
 * loads the trust anchors (cfg->ca_file, or the system store) now.
 * Returns it (upull_free), or NULL with a malloc'd message in *err (the
 * caller frees) and errno set.
 */
struct upull *upull_new(struct loop *l, const struct lbd_upstreams_cfg *cfg, char **err);

/* Poll now, then every interval. */
void upull_start(struct upull *p);

/* Stop (a fetch or a call to the proxy in flight is dropped) and free.
 * The proxy keeps what it has. NULL is fine. */
void upull_free(struct upull *p);

/* The poller's state for the API (a new reference): URL, last fetch and
 * success, ETag, each cluster's versions and state, counters. */
json_t *upull_json(const struct upull *p);

#endif
