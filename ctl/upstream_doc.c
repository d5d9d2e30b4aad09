// SPDX-License-Identifier: GPL-2.0-only
/*
 * upstream_doc.c - the pulled document and the small verdicts of a poll
 * (upstream_pull.h), apart from any I/O so they are tested alone.
 */
#include "upstream_pull.h"
#include "http_client.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int errf(int rc, char *err, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int errf(int rc, char *err, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
	return rc;
}

/* The proxy's rule for cluster names (l7proxy/config.c): they go in a URL
 * path unescaped, so nothing else is let through either. */
static bool name_ok(const char *s)
{
	size_t n = strlen(s);

	if (!n || n >= UPULL_NAME_MAX)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '.' || *s == '_' || *s == '-'))
			return false;
	return true;
}

static int parse_cluster(const char *name, json_t *cl, struct upull_doc_cluster *out, char *err,
			 size_t errlen)
{
	json_t *v = json_object_get(cl, "version"), *list = json_object_get(cl, "backends"), *e;
	const char *key;
	size_t i;

	if (!json_is_object(cl))
		return errf(-EINVAL, err, errlen,
			    "clusters.%s: expected an object {\"version\": N, \"backends\": [...]}",
			    name);
	json_object_foreach(cl, key, e)
	{
		if (strcmp(key, "version") && strcmp(key, "backends"))
			return errf(-EINVAL, err, errlen, "clusters.%s: unknown field \"%s\"", name,
				    key);
	}
	if (!v)
		return errf(-EINVAL, err, errlen, "clusters.%s.version: required", name);
	/* Version 0 is the proxy's config set: a pulled set must be newer. */
	if (!json_is_integer(v) || json_integer_value(v) < 1 ||
	    (uint64_t)json_integer_value(v) > UPULL_MAX_VERSION)
		return errf(-EINVAL, err, errlen,
			    "clusters.%s.version: expected an integer from 1 to 2^53", name);
	if (!list)
		return errf(-EINVAL, err, errlen, "clusters.%s.backends: required", name);
	if (!json_is_array(list))
		return errf(-EINVAL, err, errlen, "clusters.%s.backends: expected an array", name);
	if (json_array_size(list) > UPULL_MAX_BACKENDS)
		return errf(-EINVAL, err, errlen, "clusters.%s.backends: %zu entries, at most %d",
			    name, json_array_size(list), UPULL_MAX_BACKENDS);
	json_array_foreach(list, i, e)
	{
		if (!json_is_object(e) && !json_is_string(e))
			return errf(-EINVAL, err, errlen,
				    "clusters.%s.backends[%zu]: expected an object or "
				    "\"ADDR:PORT\"",
				    name, i);
	}
	snprintf(out->name, sizeof(out->name), "%s", name);
	out->version = (uint64_t)json_integer_value(v);
	out->set = cl;
	return 0;
}

int upull_doc_parse(const char *text, size_t len, struct upull_doc *out, char *err, size_t errlen)
{
	json_t *root, *clusters, *cl;
	json_error_t je;
	const char *key;
	size_t n;
	int rc;

	memset(out, 0, sizeof(*out));
	/* Two entries for one cluster would leave which one applies to the
	 * parser: refused. */
	root = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
	if (!root) {
		if (json_error_code(&je) == json_error_duplicate_key)
			return errf(-EINVAL, err, errlen, "line %d: %s", je.line, je.text);
		return errf(-EBADMSG, err, errlen, "not JSON: %s (line %d, column %d)", je.text,
			    je.line, je.column);
	}
	if (!json_is_object(root)) {
		rc = errf(-EINVAL, err, errlen, "expected an object {\"clusters\": {...}}");
		goto fail;
	}
	json_object_foreach(root, key, cl)
	{
		if (strcmp(key, "clusters")) {
			rc = errf(-EINVAL, err, errlen, "unknown field \"%s\"", key);
			goto fail;
		}
	}
	clusters = json_object_get(root, "clusters");
	if (!json_is_object(clusters)) {
		rc = errf(-EINVAL, err, errlen,
			  "clusters: %s an object {\"NAME\": {\"version\": N, \"backends\": "
			  "[...]}, ...}",
			  clusters ? "expected" : "required,");
		goto fail;
	}
	n = json_object_size(clusters);
	if (n > UPULL_MAX_CLUSTERS) {
		rc = errf(-EINVAL, err, errlen, "clusters: %zu clusters, at most %d", n,
			  UPULL_MAX_CLUSTERS);
		goto fail;
	}
	out->c = calloc(n ? n : 1, sizeof(*out->c));
	if (!out->c) {
		rc = errf(-ENOMEM, err, errlen, "out of memory");
		goto fail;
	}
	json_object_foreach(clusters, key, cl)
	{
		if (!name_ok(key)) {
			rc = errf(-EINVAL, err, errlen,
				  "clusters: \"%.64s\": a cluster name is 1 to %d letters, digits, "
				  "'.', '_' or '-'",
				  key, UPULL_NAME_MAX - 1);
			goto fail;
		}
		rc = parse_cluster(key, cl, &out->c[out->n], err, errlen);
		if (rc)
			goto fail;
		out->n++;
	}
	out->root = root;
	return 0;
fail:
	free(out->c);
	memset(out, 0, sizeof(*out));
	json_decref(root);
	return rc;
}

void upull_doc_free(struct upull_doc *d)
{
	free(d->c);
	json_decref(d->root);
	memset(d, 0, sizeof(*d));
}

const char *upull_reason_name(enum upull_reason r)
{
	static const char *const names[UPULL_REASON_MAX] = {
	    [UPULL_OK] = "ok",
	    [UPULL_NOT_MODIFIED] = "not_modified",
	    [UPULL_E_RESOLVE] = "resolve",
	    [UPULL_E_CONNECT] = "connect",
	    [UPULL_E_TLS] = "tls",
	    [UPULL_E_TIMEOUT] = "timeout",
	    [UPULL_E_BAD_RESPONSE] = "bad_response",
	    [UPULL_E_TOO_LARGE] = "too_large",
	    [UPULL_E_REDIRECT] = "redirect",
	    [UPULL_E_STATUS] = "status",
	    [UPULL_E_BAD_JSON] = "bad_json",
	    [UPULL_E_BAD_DOCUMENT] = "bad_document",
	    [UPULL_E_PROXY] = "proxy",
	    [UPULL_E_REJECTED] = "rejected",
	    [UPULL_E_UNKNOWN_CLUSTER] = "unknown_cluster",
	};

	return (unsigned)r < UPULL_REASON_MAX ? names[r] : "?";
}

enum upull_reason upull_status_reason(int status, bool sent_etag)
{
	if (status == 200)
		return UPULL_OK;
	/* A 304 answers a conditional request only (RFC 9110 15.4.5). */
	if (status == 304)
		return sent_etag ? UPULL_NOT_MODIFIED : UPULL_E_STATUS;
	if (status >= 300 && status < 400)
		return UPULL_E_REDIRECT;
	return UPULL_E_STATUS;
}

bool upull_etag_usable(const char *etag)
{
	size_t n = strlen(etag);
	const char *s = etag;

	if (n >= HTTPC_ETAG_MAX)
		return false;
	if (strncmp(s, "W/", 2) == 0)
		s += 2;
	n = strlen(s);
	if (n < 2 || s[0] != '"' || s[n - 1] != '"')
		return false;
	/* etagc = %x21 / %x23-7E / obs-text: no quote, space or control. */
	for (size_t i = 1; i < n - 1; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch == '"' || ch <= 0x20 || ch == 0x7f)
			return false;
	}
	return true;
}
