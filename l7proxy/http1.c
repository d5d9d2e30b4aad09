// SPDX-License-Identifier: GPL-2.0-only
#include "http1.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void h1_head_reset(struct h1_head *hd)
{
	hd->len = 0;
	hd->n = 0;
	hd->in_value = false;
	hd->overflow = false;
	hd->url_off = hd->url_len = 0;
	hd->reason_off = hd->reason_len = 0;
}

struct h1_head *h1_head_get(struct h1_head_cache *c)
{
	struct h1_head *hd = c->n ? c->free[--c->n] : malloc(sizeof(*hd));

	if (hd)
		h1_head_reset(hd);
	return hd;
}

void h1_head_put(struct h1_head_cache *c, struct h1_head *hd)
{
	if (!hd)
		return;
	if (c->n < sizeof(c->free) / sizeof(c->free[0]))
		c->free[c->n++] = hd;
	else
		free(hd);
}

void h1_head_cache_fini(struct h1_head_cache *c)
{
	while (c->n)
		free(c->free[--c->n]);
}

static int append(struct h1_head *hd, const char *at, size_t len)
{
	if (hd->len + len > sizeof(hd->buf)) {
		hd->overflow = true;
		return 1;
	}
	memcpy(hd->buf + hd->len, at, len);
	hd->len += len;
	return 0;
}

/* The parser hands pieces of one element across reads; they are appended
 * contiguously, so an element's start offset is set on its first piece. */
int h1_on_url(struct h1_head *hd, const char *at, size_t len)
{
	if (!hd->url_len)
		hd->url_off = (uint32_t)hd->len;
	hd->url_len += (uint32_t)len;
	if (hd->url_len > H1_URL_MAX) {
		hd->overflow = true;
		return 1;
	}
	return append(hd, at, len);
}

int h1_on_status(struct h1_head *hd, const char *at, size_t len)
{
	if (!hd->reason_len)
		hd->reason_off = (uint32_t)hd->len;
	hd->reason_len += (uint32_t)len;
	return append(hd, at, len);
}

int h1_on_header_field(struct h1_head *hd, const char *at, size_t len)
{
	if (hd->in_value || hd->n == 0) {
		if (hd->n == H1_MAX_HDRS) {
			hd->overflow = true;
			return 1;
		}
		hd->h[hd->n++] = (struct h1_hdr){.name_off = (uint32_t)hd->len};
		hd->in_value = false;
	}
	hd->h[hd->n - 1].name_len += (uint32_t)len;
	return append(hd, at, len);
}

int h1_on_header_value(struct h1_head *hd, const char *at, size_t len)
{
	struct h1_hdr *h;

	if (hd->n == 0)
		return 1;
	h = &hd->h[hd->n - 1];
	if (!hd->in_value) {
		h->val_off = (uint32_t)hd->len;
		hd->in_value = true;
	}
	h->val_len += (uint32_t)len;
	return append(hd, at, len);
}

static bool name_is(const struct h1_head *hd, const struct h1_hdr *h, const char *name, size_t len)
{
	return h->name_len == len && strncasecmp(hd->buf + h->name_off, name, len) == 0;
}

const char *h1_get(const struct h1_head *hd, const char *name, size_t *len)
{
	size_t nlen = strlen(name);

	for (int i = 0; i < hd->n; i++)
		if (name_is(hd, &hd->h[i], name, nlen)) {
			*len = hd->h[i].val_len;
			return hd->buf + hd->h[i].val_off;
		}
	return NULL;
}

int h1_count(const struct h1_head *hd, const char *name)
{
	size_t nlen = strlen(name);
	int n = 0;

	for (int i = 0; i < hd->n; i++)
		n += name_is(hd, &hd->h[i], name, nlen);
	return n;
}

bool h1_token(const char *s, size_t len)
{
	if (!len)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      strchr("!#$%&'*+-.^_`|~", c)) ||
		    c == 0)
			return false;
	}
	return true;
}

bool h1_field_value(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return false;
	}
	return true;
}

const char *h1_head_check(const struct h1_head *hd)
{
	for (int i = 0; i < hd->n; i++) {
		const struct h1_hdr *h = &hd->h[i];

		if (!h1_token(hd->buf + h->name_off, h->name_len))
			return "a field name is not a token (whitespace before ':' or a control "
			       "character)";
		if (!h1_field_value(hd->buf + h->val_off, h->val_len))
			return "a field value has a control character";
	}
	return NULL;
}

bool h1_reqid_valid(const char *id, size_t len)
{
	if (len == 0 || len > H1_REQID_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = id[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_' || c == '.' || c == ':'))
			return false;
	}
	return true;
}

/* Is name one of the comma-separated tokens of a Connection field? */
static bool in_connection(const struct h1_head *hd, const char *name, size_t len)
{
	for (int i = 0; i < hd->n; i++) {
		const struct h1_hdr *h = &hd->h[i];
		const char *v = hd->buf + h->val_off, *end = v + h->val_len;

		if (!name_is(hd, h, "connection", 10))
			continue;
		while (v < end) {
			const char *tok, *tend;

			while (v < end && (*v == ' ' || *v == '\t' || *v == ','))
				v++;
			tok = v;
			while (v < end && *v != ',')
				v++;
			tend = v;
			while (tend > tok && (tend[-1] == ' ' || tend[-1] == '\t'))
				tend--;
			if ((size_t)(tend - tok) == len && strncasecmp(tok, name, len) == 0)
				return true;
		}
	}
	return false;
}

bool h1_not_forwarded(const struct h1_head *hd, const char *name, size_t len)
{
	static const char *const names[] = {
	    "connection",
	    "keep-alive",
	    "proxy-connection",
	    "te",
	    "trailer",
	    "transfer-encoding",
	    "upgrade",
	    "content-length",
	    "host",
	    "expect",
	    "http2-settings",
	    "proxy-authorization",
	    "proxy-authenticate",
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strlen(names[i]) == len && strncasecmp(names[i], name, len) == 0)
			return true;
	return in_connection(hd, name, len);
}

int h1_head_copy(const struct h1_head *hd, struct l7_hdrs *out, struct arena *a,
		 const char *const *skip)
{
	for (int i = 0; i < hd->n; i++) {
		const struct h1_hdr *h = &hd->h[i];
		const char *name = hd->buf + h->name_off;
		const char *v = hd->buf + h->val_off;
		size_t vlen = h->val_len;
		bool skipped = false;

		if (h1_not_forwarded(hd, name, h->name_len))
			continue;
		for (const char *const *s = skip; s && *s && !skipped; s++)
			skipped = name_is(hd, h, *s, strlen(*s));
		if (skipped)
			continue;
		/* RFC 9110 §5.5: leading and trailing whitespace is not part
		 * of the value. */
		while (vlen && (*v == ' ' || *v == '\t'))
			v++, vlen--;
		while (vlen && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
			vlen--;
		if (hdrs_add(out, a, name, h->name_len, v, vlen))
			return -ENOMEM;
	}
	return 0;
}

void h1_write_fields(struct pipe *out, struct bufpool *pool, const struct l7_hdrs *h)
{
	for (uint32_t i = 0; i < h->n; i++) {
		const struct l7_hdr *x = &h->v[i];

		pipe_write(out, pool, x->name, x->name_len);
		pipe_write(out, pool, ": ", 2);
		pipe_write(out, pool, x->value, x->value_len);
		pipe_write(out, pool, "\r\n", 2);
	}
}

size_t h1_write_body(struct pipe *out, struct bufpool *pool, struct pipe *src, size_t n,
		     bool chunked)
{
	if (n > src->len)
		n = src->len;
	if (chunked)
		pipe_printf(out, pool, "%zx\r\n", n);
	n = pipe_move(out, src, pool, n);
	if (chunked)
		pipe_write(out, pool, "\r\n", 2);
	return n;
}

void h1_write_last_chunk(struct pipe *out, struct bufpool *pool, const struct l7_hdrs *t)
{
	pipe_write(out, pool, "0\r\n", 3);
	if (t)
		h1_write_fields(out, pool, t);
	pipe_write(out, pool, "\r\n", 2);
}

const char *h1_reason(int status)
{
	switch (status) {
	case 100:
		return "Continue";
	case 200:
		return "OK";
	case 201:
		return "Created";
	case 202:
		return "Accepted";
	case 204:
		return "No Content";
	case 206:
		return "Partial Content";
	case 301:
		return "Moved Permanently";
	case 302:
		return "Found";
	case 303:
		return "See Other";
	case 304:
		return "Not Modified";
	case 307:
		return "Temporary Redirect";
	case 308:
		return "Permanent Redirect";
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 408:
		return "Request Timeout";
	case 409:
		return "Conflict";
	case 411:
		return "Length Required";
	case 412:
		return "Precondition Failed";
	case 413:
		return "Content Too Large";
	case 414:
		return "URI Too Long";
	case 415:
		return "Unsupported Media Type";
	case 416:
		return "Range Not Satisfiable";
	case 425:
		return "Too Early";
	case 426:
		return "Upgrade Required";
	case 429:
		return "Too Many Requests";
	case 431:
		return "Request Header Fields Too Large";
	case 500:
		return "Internal Server Error";
	case 501:
		return "Not Implemented";
	case 502:
		return "Bad Gateway";
	case 503:
		return "Service Unavailable";
	case 504:
		return "Gateway Timeout";
	case 505:
		return "HTTP Version Not Supported";
	default:
		if (status >= 500)
			return "Server Error";
		if (status >= 400)
			return "Client Error";
		if (status >= 300)
			return "Redirection";
		if (status >= 200)
			return "Success";
		return "Informational";
	}
}
