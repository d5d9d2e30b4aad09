/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * http_admin.h - the admin API transport: HTTP/1.1 with JSON bodies on a Unix
 * socket (as Docker and Envoy do), so `lbctl` and `curl --unix-socket` can
 * both speak it. Requests are parsed with http-parser.
 *
 * The server runs in the daemon's event loop and never blocks it: each
 * client is read incrementally and must send its whole request within
 * ADMIN_IO_TIMEOUT_MS (a byte every second does not keep it), the reply is
 * written as the socket takes it, at most ADMIN_MAX_CLIENTS are served at
 * once (more wait in the listen backlog), one request per connection,
 * bodies up to ADMIN_MAX_BODY. Handlers run in the loop and must be quick.
 */
#ifndef PORTICO_HTTP_ADMIN_H
#define PORTICO_HTTP_ADMIN_H

#include <jansson.h>
#include <stddef.h>

#include "loop.h"

#define ADMIN_MAX_BODY	    (1 << 20)
#define ADMIN_MAX_PATH	    512
#define ADMIN_IO_TIMEOUT_MS 2000
#define ADMIN_MAX_CLIENTS   16

/* A reply that is not JSON (the Prometheus exposition, say). */
struct admin_text {
	char *body; /* malloc'd; the server frees it */
	size_t len;
	const char *type; /* Content-Type, a static string */
};

struct admin_req {
	const char *method; /* "GET", "POST", "PUT", "DELETE" */
	char path[ADMIN_MAX_PATH];
	const char *tail;	 /* path after a prefix route's '*', else "" */
	json_t *body;		 /* parsed JSON body or NULL; borrowed */
	struct admin_text *text; /* see admin_reply_text */
};

/*
 * A handler fills *out with a JSON reply (ownership passes to the caller,
 * which frees it) and returns the HTTP status. For errors, reply with
 * admin_error() so every error body has the same shape.
 */
typedef int (*admin_handler_fn)(void *ctx, const struct admin_req *req, json_t **out);

struct admin_route {
	const char *method;
	const char *path; /* exact, or a prefix ending in '*' */
	admin_handler_fn fn;
};

/*
 * Reply with body (malloc'd, ownership passes to the server) as content
 * type instead of JSON; the handler returns the status and leaves *out
 * NULL. Replaces an earlier text reply of the same request.
 */
void admin_reply_text(const struct admin_req *req, const char *type, char *body, size_t len);

/* {"error": msg}; returns status so handlers can `return admin_error(...)`. */
int admin_error(json_t **out, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Create a listening Unix socket at path (an existing socket file is
 * replaced; a missing parent directory is created, mode 0755). It is created with mode 0660 from the start (under a umask
 * that allows no more), never wider for a moment. Returns the fd or -errno.
 */
int admin_listen(const char *path);

struct admin_server;

/*
 * Serve the admin API on a new socket at path in loop l, dispatching
 * through routes (terminated by a {NULL} entry) with ctx. Returns the
 * server (admin_server_free) or NULL with errno set.
 */
struct admin_server *admin_server_new(struct loop *l, const char *path,
				      const struct admin_route *routes, void *ctx);

/*
 * The same server on a TCP socket bound to addr ("IP:PORT", "[IPv6]:PORT"),
 * for what a scraper must reach over the network: give it read-only routes
 * only, since TCP has no file permissions. NULL with errno set on failure.
 */
struct admin_server *admin_server_new_tcp(struct loop *l, const char *addr,
					  const struct admin_route *routes, void *ctx);

/*
 * Close the socket and every client, and remove the socket's file unless
 * another process has bound a new socket there since (a successor taking
 * over). NULL is fine.
 */
void admin_server_free(struct admin_server *s);

/*
 * Client side: send one request to the socket at sock_path. body may be
 * NULL. On success returns 0, sets *status and *reply (caller frees with
 * json_decref; NULL if the reply had no JSON body). On failure returns
 * -errno and, if err is not NULL, a malloc'd message in *err.
 */
int admin_call(const char *sock_path, const char *method, const char *path, json_t *body,
	       int *status, json_t **reply, char **err);

/*
 * As admin_call for a GET whose reply is not JSON: *text is the body
 * (malloc'd, NUL-terminated, caller frees), *len its length.
 */
int admin_get_text(const char *sock_path, const char *path, int *status, char **text, size_t *len,
		   char **err);

#endif
