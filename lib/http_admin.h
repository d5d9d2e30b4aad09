/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * http_admin.h - the admin API transport: HTTP/1.1 with JSON bodies on a Unix
 * socket (as Docker and Envoy do), so `lbctl` and `curl --unix-socket` can
 * both speak it. Requests are parsed with http-parser.
 *
 * The server side is deliberately serial: one connection at a time, one
 * request per connection, each bounded in size and time (ADMIN_MAX_BODY,
 * ADMIN_IO_TIMEOUT_MS). Admin traffic is a handful of calls a minute; a
 * stuck client costs at most the timeout.
 */
#ifndef PORTICO_HTTP_ADMIN_H
#define PORTICO_HTTP_ADMIN_H

#include <jansson.h>
#include <stddef.h>

#define ADMIN_MAX_BODY	    (1 << 20)
#define ADMIN_MAX_PATH	    512
#define ADMIN_IO_TIMEOUT_MS 2000

struct admin_req {
	const char *method; /* "GET", "POST", "PUT", "DELETE" */
	char path[ADMIN_MAX_PATH];
	const char *tail; /* path after a prefix route's '*', else "" */
	json_t *body;	  /* parsed JSON body or NULL; borrowed */
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

/* {"error": msg}; returns status so handlers can `return admin_error(...)`. */
int admin_error(json_t **out, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Create a listening Unix socket at path (an existing socket file is
 * replaced; the mode is 0660). Returns the fd or -errno.
 */
int admin_listen(const char *path);

/*
 * Accept one connection on lfd and answer one request, dispatching through
 * routes (terminated by a {NULL} entry). Returns 0, or -errno when accept
 * failed; a bad request is answered (400/404/405/413) and returns 0.
 */
int admin_serve_one(int lfd, const struct admin_route *routes, void *ctx);

/*
 * Client side: send one request to the socket at sock_path. body may be
 * NULL. On success returns 0, sets *status and *reply (caller frees with
 * json_decref; NULL if the reply had no JSON body). On failure returns
 * -errno and, if err is not NULL, a malloc'd message in *err.
 */
int admin_call(const char *sock_path, const char *method, const char *path, json_t *body,
	       int *status, json_t **reply, char **err);

#endif
