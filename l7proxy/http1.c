// SPDX-License-Identifier: GPL-2.0-only
#include "http1.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
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

static bool name_is(const struct h1_head *hd, const struct h1_hdr *h, const char *name)
{
	return h->name_len == strlen(name) &&
	       strncasecmp(hd->buf + h->name_off, name, h->name_len) == 0;
}

const char *h1_get(const struct h1_head *hd, const char *name, size_t *len)
{
	for (int i = 0; i < hd->n; i++)
		if (name_is(hd, &hd->h[i], name)) {
			*len = hd->h[i].val_len;
			return hd->buf + hd->h[i].val_off;
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

/*
 * Hop-by-hop headers (RFC 9110 §7.6.1) and the ones the proxy rewrites:
 * never copied from one side to the other.
 */
static bool hop_by_hop(const struct h1_head *hd, const struct h1_hdr *h)
{
	static const char *const names[] = {
	    "connection",	 "keep-alive", "proxy-connection", "te",     "trailer",
	    "transfer-encoding", "upgrade",    "content-length",   "expect",
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (name_is(hd, h, names[i]))
			return true;
	return false;
}

struct out {
	char *p;
	size_t len, cap;
	bool full;
};

static void put(struct out *o, const char *s, size_t n)
{
	if (o->full || o->len + n > o->cap) {
		o->full = true;
		return;
	}
	memcpy(o->p + o->len, s, n);
	o->len += n;
}

static void putf(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (o->full)
		return;
	va_start(ap, fmt);
	n = vsnprintf(o->p + o->len, o->cap - o->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= o->cap - o->len)
		o->full = true;
	else
		o->len += n;
}

static void copy_headers(struct out *o, const struct h1_head *hd, const char *skip)
{
	for (int i = 0; i < hd->n; i++) {
		const struct h1_hdr *h = &hd->h[i];

		if (hop_by_hop(hd, h) || name_is(hd, h, "x-request-id") ||
		    (skip && name_is(hd, h, skip)))
			continue;
		put(o, hd->buf + h->name_off, h->name_len);
		put(o, ": ", 2);
		put(o, hd->buf + h->val_off, h->val_len);
		put(o, "\r\n", 2);
	}
}

static void put_framing(struct out *o, enum h1_framing f, uint64_t len)
{
	if (f == H1_BODY_LENGTH)
		putf(o, "Content-Length: %llu\r\n", (unsigned long long)len);
	else if (f == H1_BODY_CHUNKED)
		put(o, "Transfer-Encoding: chunked\r\n", 28);
}

int h1_write_request(const struct h1_head *hd, const http_parser *p, const struct h1_req_out *ro,
		     char *buf, size_t cap)
{
	struct out o = {.p = buf, .cap = cap};
	size_t xff_len = 0;
	const char *xff = h1_get(hd, "x-forwarded-for", &xff_len);

	putf(&o, "%s ", http_method_str(p->method));
	put(&o, hd->buf + hd->url_off, hd->url_len);
	put(&o, " HTTP/1.1\r\n", 11);
	copy_headers(&o, hd, "x-forwarded-for");
	/* The client's ID (if valid) or ours: always exactly one. */
	put(&o, "X-Request-Id: ", 14);
	put(&o, ro->reqid, ro->reqid_len);
	put(&o, "\r\n", 2);
	put(&o, "X-Forwarded-For: ", 17);
	if (xff) {
		put(&o, xff, xff_len);
		put(&o, ", ", 2);
	}
	putf(&o, "%s\r\nX-Forwarded-Proto: %s\r\n", ro->client_ip, ro->tls ? "https" : "http");
	put_framing(&o, ro->framing, ro->content_length);
	put(&o, "\r\n", 2);
	return o.full ? -ENOSPC : (int)o.len;
}

int h1_write_response(const struct h1_head *hd, const http_parser *p, const struct h1_resp_out *ro,
		      char *buf, size_t cap)
{
	struct out o = {.p = buf, .cap = cap};
	size_t cl_len;
	const char *cl;

	putf(&o, "HTTP/1.1 %u ", p->status_code);
	if (hd->reason_len)
		put(&o, hd->buf + hd->reason_off, hd->reason_len);
	else
		put(&o, h1_reason(p->status_code), strlen(h1_reason(p->status_code)));
	put(&o, "\r\n", 2);
	copy_headers(&o, hd, NULL);
	put(&o, "X-Request-Id: ", 14);
	put(&o, ro->reqid, ro->reqid_len);
	putf(&o, "\r\nX-Served-By: %s\r\n", ro->served_by);
	if (ro->head_only) {
		cl = h1_get(hd, "content-length", &cl_len);
		if (cl) {
			put(&o, "Content-Length: ", 16);
			put(&o, cl, cl_len);
			put(&o, "\r\n", 2);
		}
	} else {
		put_framing(&o, ro->framing, ro->content_length);
	}
	if (!ro->keep_alive)
		put(&o, "Connection: close\r\n", 19);
	put(&o, "\r\n", 2);
	return o.full ? -ENOSPC : (int)o.len;
}

const char *h1_reason(int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 400:
		return "Bad Request";
	case 404:
		return "Not Found";
	case 408:
		return "Request Timeout";
	case 413:
		return "Content Too Large";
	case 414:
		return "URI Too Long";
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
	default:
		return "Unknown";
	}
}

int h1_write_error(int status, const char *served_by, const char *reqid, size_t reqid_len,
		   bool keep_alive, char *buf, size_t cap)
{
	struct out o = {.p = buf, .cap = cap};
	char body[128];
	int blen = snprintf(body, sizeof(body), "%d %s\n", status, h1_reason(status));

	putf(&o, "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n", status,
	     h1_reason(status), blen);
	put(&o, "X-Request-Id: ", 14);
	put(&o, reqid, reqid_len);
	putf(&o, "\r\nX-Served-By: %s\r\n%s\r\n%s", served_by,
	     keep_alive ? "" : "Connection: close\r\n", body);
	return o.full ? -ENOSPC : (int)o.len;
}
