// SPDX-License-Identifier: GPL-2.0-only
#include "http_admin.h"

#include <errno.h>
#include <http_parser.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* Accumulates one HTTP message (request or response) from http-parser. */
struct msg {
	char path[ADMIN_MAX_PATH];
	size_t path_len;
	char *body;
	size_t body_len;
	bool too_big;
	bool done;
};

static int on_url(http_parser *p, const char *at, size_t len)
{
	struct msg *m = p->data;

	if (m->path_len + len >= sizeof(m->path)) {
		m->too_big = true;
		return 1;
	}
	memcpy(m->path + m->path_len, at, len);
	m->path_len += len;
	m->path[m->path_len] = '\0';
	return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
	struct msg *m = p->data;
	char *nb;

	if (m->body_len + len > ADMIN_MAX_BODY) {
		m->too_big = true;
		return 1;
	}
	nb = realloc(m->body, m->body_len + len + 1);
	if (!nb)
		return 1;
	m->body = nb;
	memcpy(m->body + m->body_len, at, len);
	m->body_len += len;
	m->body[m->body_len] = '\0';
	return 0;
}

static int on_complete(http_parser *p)
{
	((struct msg *)p->data)->done = true;
	return 0;
}

static const http_parser_settings msg_settings = {
    .on_url = on_url,
    .on_body = on_body,
    .on_message_complete = on_complete,
};

/* Read and parse one message from fd within the I/O timeout. */
static int read_msg(int fd, enum http_parser_type type, http_parser *parser, struct msg *m)
{
	char buf[8192];

	http_parser_init(parser, type);
	parser->data = m;
	while (!m->done) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		ssize_t n;
		size_t used;

		if (poll(&pfd, 1, ADMIN_IO_TIMEOUT_MS) <= 0)
			return -ETIMEDOUT;
		n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		used = http_parser_execute(parser, &msg_settings, buf, n);
		if (m->too_big)
			return -E2BIG;
		if (parser->http_errno != HPE_OK || (n > 0 && used != (size_t)n))
			return -EBADMSG;
		if (n == 0 && !m->done)
			return -ECONNRESET;
	}
	return 0;
}

static int write_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = write(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		buf += n;
		len -= n;
	}
	return 0;
}

int admin_error(json_t **out, int status, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	*out = json_pack("{s:s}", "error", msg);
	return status;
}

int admin_listen(const char *path)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	int fd;

	if (strlen(path) >= sizeof(sun.sun_path))
		return -ENAMETOOLONG;
	strcpy(sun.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	unlink(path);
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 || chmod(path, 0660) < 0 ||
	    listen(fd, 16) < 0) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

static const char *status_text(int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 201:
		return "Created";
	case 400:
		return "Bad Request";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 409:
		return "Conflict";
	case 413:
		return "Payload Too Large";
	case 500:
		return "Internal Server Error";
	case 503:
		return "Service Unavailable";
	default:
		return "Status";
	}
}

static void reply(int fd, int status, json_t *body)
{
	char *text = body ? json_dumps(body, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
	char head[256];
	size_t blen = text ? strlen(text) + 1 : 0;
	int hlen;

	hlen = snprintf(head, sizeof(head),
			"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
			"Content-Length: %zu\r\nConnection: close\r\n\r\n",
			status, status_text(status), blen);
	if (write_all(fd, head, hlen) == 0 && text) {
		text[blen - 1] = '\n';
		write_all(fd, text, blen);
	}
	free(text);
}

static const struct admin_route *route_find(const struct admin_route *routes, const char *method,
					    const char *path, const char **tail, bool *path_known)
{
	for (const struct admin_route *r = routes; r->method; r++) {
		size_t n = strlen(r->path);
		bool match;

		if (n && r->path[n - 1] == '*')
			match = strncmp(path, r->path, n - 1) == 0 && path[n - 1] != '\0';
		else
			match = strcmp(path, r->path) == 0;
		if (!match)
			continue;
		*path_known = true;
		if (strcmp(r->method, method) == 0) {
			*tail = r->path[n - 1] == '*' ? path + n - 1 : "";
			return r;
		}
	}
	return NULL;
}

int admin_serve_one(int lfd, const struct admin_route *routes, void *ctx)
{
	struct msg m = {0};
	http_parser parser;
	struct admin_req req = {0};
	const struct admin_route *r;
	bool path_known = false;
	json_t *out = NULL;
	int fd, rc, status;

	fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		return -errno;
	rc = read_msg(fd, HTTP_REQUEST, &parser, &m);
	if (rc == -E2BIG) {
		status = admin_error(&out, 413, "request too large");
		goto out_reply;
	}
	if (rc) {
		status = admin_error(&out, 400, "malformed HTTP request");
		goto out_reply;
	}
	req.method = http_method_str(parser.method);
	/* The query string is not used by any route; cut it off. */
	strcpy(req.path, m.path);
	req.path[strcspn(req.path, "?")] = '\0';
	if (m.body_len) {
		json_error_t jerr;

		req.body = json_loadb(m.body, m.body_len, 0, &jerr);
		if (!req.body) {
			status = admin_error(&out, 400, "invalid JSON body: %s (line %d)",
					     jerr.text, jerr.line);
			goto out_reply;
		}
	}
	r = route_find(routes, req.method, req.path, &req.tail, &path_known);
	if (!r)
		status = path_known ? admin_error(&out, 405, "method not allowed")
				    : admin_error(&out, 404, "no such path: %s", req.path);
	else
		status = r->fn(ctx, &req, &out);
out_reply:
	reply(fd, status, out);
	json_decref(out);
	json_decref(req.body);
	free(m.body);
	close(fd);
	return 0;
}

int admin_call(const char *sock_path, const char *method, const char *path, json_t *body,
	       int *status, json_t **out, char **err)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	char *text = NULL, *req = NULL;
	struct msg m = {0};
	http_parser parser;
	int fd = -1, rc;

	*out = NULL;
	if (strlen(sock_path) >= sizeof(sun.sun_path)) {
		rc = -ENAMETOOLONG;
		goto out;
	}
	strcpy(sun.sun_path, sock_path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		rc = -errno;
		goto out;
	}
	text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	if (asprintf(&req,
		     "%s %s HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
		     "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
		     method, path, text ? strlen(text) : 0, text ? text : "") < 0) {
		req = NULL;
		rc = -ENOMEM;
		goto out;
	}
	rc = write_all(fd, req, strlen(req));
	if (rc)
		goto out;
	rc = read_msg(fd, HTTP_RESPONSE, &parser, &m);
	if (rc)
		goto out;
	*status = parser.status_code;
	if (m.body_len) {
		*out = json_loadb(m.body, m.body_len, 0, NULL);
		if (!*out)
			rc = -EBADMSG;
	}
out:
	if (rc && err && asprintf(err, "admin socket %s: %s", sock_path, strerror(-rc)) < 0)
		*err = NULL;
	if (fd >= 0)
		close(fd);
	free(text);
	free(req);
	free(m.body);
	return rc;
}
