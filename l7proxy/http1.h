/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * http1.h - HTTP/1.x message heads: collecting a head from http-parser's
 * callbacks, checking it, and turning it into a stream's header list.
 *
 * The parser is Debian's http-parser 2.9 (nodejs), the one HTTP/1 parser
 * library packaged in bookworm. It frames messages well (Content-Length vs
 * Transfer-Encoding, chunked coding, pipelining) but it is built non-strict
 * and is no longer maintained, so it is not trusted with tokens: every
 * field name must be a token and every value free of control characters
 * (RFC 9110 §5.1, §5.5) before anything is forwarded, which also rejects
 * "Transfer-Encoding : chunked" (RFC 9112 §5.1: no whitespace before the
 * colon). An obs-fold is replaced by a space by http-parser before the
 * value reaches us, which RFC 9112 §5.2 allows. Bodies are never copied raw from one side to the
 * other: the proxy frames what it sends itself, so a framing disagreement
 * cannot pass through (no request smuggling).
 */
#ifndef PORTICO_HTTP1_H
#define PORTICO_HTTP1_H

#include <http_parser.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "stream.h"

#define H1_HEAD_MAX  16384 /* bytes of a head we accept (target + fields) */
#define H1_MAX_HDRS  100
#define H1_URL_MAX   8192
#define H1_REQID_MAX 128

struct h1_hdr {
	uint32_t name_off, name_len, val_off, val_len;
};

/* A message head (or trailer section) as collected from the callbacks. */
struct h1_head {
	char buf[H1_HEAD_MAX];
	size_t len;
	struct h1_hdr h[H1_MAX_HDRS];
	int n;
	bool in_value;
	bool overflow; /* too large or too many fields: reject */
	uint32_t url_off, url_len;
	uint32_t reason_off, reason_len;
};

/* Reset for the next message. */
void h1_head_reset(struct h1_head *hd);

/*
 * A few heads kept for reuse by a worker: a head is ~18 KiB and needed for
 * a moment per message, too much to keep per idle connection and too
 * often to malloc each time.
 */
struct h1_head_cache {
	struct h1_head *free[4];
	unsigned n;
};

/* A reset head (from the cache or malloc), or NULL. */
struct h1_head *h1_head_get(struct h1_head_cache *c);
/* Give hd back (NULL is ignored). */
void h1_head_put(struct h1_head_cache *c, struct h1_head *hd);
void h1_head_cache_fini(struct h1_head_cache *c);

/*
 * http-parser callbacks fill hd; the sessions' own callbacks chain to
 * these. Each returns 0, or 1 (a parser error) once the head overflows.
 */
int h1_on_url(struct h1_head *hd, const char *at, size_t len);
int h1_on_status(struct h1_head *hd, const char *at, size_t len);
int h1_on_header_field(struct h1_head *hd, const char *at, size_t len);
int h1_on_header_value(struct h1_head *hd, const char *at, size_t len);

/* Value of the first field called name (case-insensitive) or NULL; *len
 * gets its length (not NUL-terminated). */
const char *h1_get(const struct h1_head *hd, const char *name, size_t *len);

/* How many fields are called name. */
int h1_count(const struct h1_head *hd, const char *name);

/* RFC 9110 §5.6.2 token: 1*tchar. */
bool h1_token(const char *s, size_t len);

/* RFC 9110 §5.5 field value: no CR, LF, NUL or other controls but HTAB. */
bool h1_field_value(const char *s, size_t len);

/*
 * Check every field of hd: NULL when all names are tokens and all values
 * clean, else a short reason for the log.
 */
const char *h1_head_check(const struct h1_head *hd);

/* True if a request ID is safe to pass on and log: 1..128 bytes of
 * [A-Za-z0-9._:-]. */
bool h1_reqid_valid(const char *id, size_t len);

/*
 * Whether a field never crosses the proxy: hop-by-hop (RFC 9110 §7.6.1:
 * Connection and the fields it names, Keep-Alive, TE, Transfer-Encoding,
 * Upgrade, ...), framing (Content-Length, the proxy frames bodies itself)
 * or Host (carried as the stream's authority).
 */
bool h1_not_forwarded(const struct h1_head *hd, const char *name, size_t len);

/*
 * Append the fields of hd that cross the proxy to out (names lowercased,
 * copies in a), leaving out any name listed in skip (lowercase, NULL-
 * terminated array; may be NULL). Returns 0 or -ENOMEM.
 */
int h1_head_copy(const struct h1_head *hd, struct l7_hdrs *out, struct arena *a,
		 const char *const *skip);

/* Write each field of h as "name: value\r\n" to out. */
void h1_write_fields(struct pipe *out, struct bufpool *pool, const struct l7_hdrs *h);

/*
 * Move up to n bytes of src to out as one chunk of chunked coding (or, if
 * chunked is false, as they are). Returns the bytes of src moved.
 */
size_t h1_write_body(struct pipe *out, struct bufpool *pool, struct pipe *src, size_t n,
		     bool chunked);

/* The last chunk, trailer fields t (may be NULL) and the final CRLF. */
void h1_write_last_chunk(struct pipe *out, struct bufpool *pool, const struct l7_hdrs *t);

/* Reason phrase for a status code. */
const char *h1_reason(int status);

#endif
