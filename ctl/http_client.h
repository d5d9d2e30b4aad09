/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * http_client.h - one HTTP/1.1 exchange (request, then the whole response)
 * driven by lbd's event loop: a non-blocking connect over TCP, optionally
 * TLS, or a Unix socket; the response parsed with http-parser.
 *
 * Nothing here waits: every phase (connect, TLS handshake, sending,
 * receiving) runs from the loop under one deadline for the whole exchange,
 * the response body is capped, and a single event reads a bounded number
 * of bytes before giving the loop back. One connection per exchange
 * ("Connection: close"); no redirects are followed (a 3xx is a response
 * like any other, for the caller to judge).
 */
#ifndef PORTICO_HTTP_CLIENT_H
#define PORTICO_HTTP_CLIENT_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "loop.h"

#define HTTPC_ETAG_MAX 256 /* longest ETag kept, quotes included */

/* Where a failed exchange stopped. */
enum httpc_phase {
	HTTPC_CONNECT,
	HTTPC_TLS,  /* handshake, certificate verification included */
	HTTPC_TALK, /* sending the request, reading the response */
};

struct httpc_req {
	const struct sockaddr *addr; /* AF_INET, AF_INET6 or AF_UNIX; copied */
	socklen_t addr_len;
	/* TLS when not NULL: borrowed, must outlive the exchange. Its verify
	 * mode is the caller's; tls_name (copied) is the SNI when it is a
	 * name, and what the certificate must match, name or address. */
	SSL_CTX *tls;
	const char *tls_name;
	/* The request as bytes: head ("GET / HTTP/1.1\r\n...\r\n\r\n") and
	 * an optional body, both copied. */
	const char *head;
	const char *body;
	size_t body_len;
	size_t max_body;     /* a longer response body fails with -EMSGSIZE */
	uint32_t timeout_ms; /* for the whole exchange */
};

struct httpc_result {
	/* 0: a whole response arrived (any status). Otherwise -errno:
	 * -ETIMEDOUT (the deadline passed), -EMSGSIZE (body over max_body),
	 * -EBADMSG (not HTTP/1.x), -EPROTO (TLS), or the socket's error. */
	int err;
	enum httpc_phase phase; /* of the failure */
	char msg[192];		/* the failure for a log line */
	int status;
	bool etag_seen;		   /* an ETag header came, and fits etag */
	char etag[HTTPC_ETAG_MAX]; /* its value as sent (quotes, W/ included) */
	const char *body;	   /* NUL-terminated; valid during the callback only */
	size_t body_len;
};

struct httpc;

/*
 * Called once per exchange, from the loop, with the result (borrowed). The
 * exchange is over: the callback may start another one but must forget c
 * (it is freed after the callback returns).
 */
typedef void (*httpc_done_fn)(void *ctx, const struct httpc_result *r);

/*
 * Start an exchange in loop l; fn(ctx, ...) reports its end, never before
 * httpc_start has returned (even a failed connect is reported from the
 * loop). Returns the exchange, or NULL with errno set when it cannot even
 * start (no memory, no socket): then fn is never called.
 */
struct httpc *httpc_start(struct loop *l, const struct httpc_req *req, httpc_done_fn fn, void *ctx);

/* Abandon an exchange whose callback has not run: the socket closes at
 * once, the callback never runs. NULL is fine. */
void httpc_cancel(struct httpc *c);

#endif
