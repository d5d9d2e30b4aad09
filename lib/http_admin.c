// SPDX-License-Identifier: GPL-2.0-only
#include "http_admin.h"
#include "addr.h"
#include "list.h"

#include <errno.h>
#include <http_parser.h>
#include <poll.h>
#include <sys/epoll.h>
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
	mode_t old;
	int fd, rc;

	if (strlen(path) >= sizeof(sun.sun_path))
		return -ENAMETOOLONG;
	strcpy(sun.sun_path, path);
	/* The directory (/run/portico) may not exist after a reboot: make
	 * the last level of it, as every daemon here needs. */
	char dir[sizeof(sun.sun_path)];
	strcpy(dir, path);
	char *slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		if (mkdir(dir, 0755) && errno != EEXIST)
			return -errno;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	unlink(path);
	/* bind() creates the file with the umask applied: make it 0660 from
	 * the first moment instead of chmod-ing it after. */
	old = umask(0117);
	rc = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
	umask(old);
	if (rc < 0 || listen(fd, 64) < 0) {
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

void admin_reply_text(const struct admin_req *req, const char *type, char *body, size_t len)
{
	free(req->text->body);
	*req->text = (struct admin_text){.body = body, .len = len, .type = type};
}

/* The whole reply, head and body (the JSON one, or txt's if it has one), in
 * one malloc'd buffer. */
static char *render(int status, json_t *body, const struct admin_text *txt, size_t *len)
{
	char *json = !txt->body && body ? json_dumps(body, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
	const char *type = txt->body ? txt->type : "application/json";
	const char *b = txt->body ? txt->body : json ? json : "";
	size_t blen = txt->body ? txt->len : json ? strlen(json) : 0;
	bool nl = json != NULL;
	char *out = NULL;
	int n;

	n = asprintf(&out,
		     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n"
		     "Content-Length: %zu\r\nConnection: close\r\n\r\n",
		     status, status_text(status), type, blen + nl);
	if (n < 0) {
		free(json);
		return NULL;
	}
	/* The body may hold NULs in principle and is large: append it raw. */
	{
		char *all = realloc(out, (size_t)n + blen + nl + 1);

		if (!all) {
			free(out);
			free(json);
			return NULL;
		}
		memcpy(all + n, b, blen);
		if (nl)
			all[n + blen] = '\n';
		all[n + blen + nl] = '\0';
		out = all;
	}
	free(json);
	*len = (size_t)n + blen + nl;
	return out;
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

/* --- the event-driven server ------------------------------------------------ */

struct admin_client {
	struct loop_io io;
	struct loop_timer deadline;
	struct admin_server *srv;
	struct admin_client *prev, *next;
	http_parser parser;
	struct msg m;
	char *out; /* the reply once the request is complete */
	size_t out_len, out_off;
};

struct admin_server {
	struct loop_io io;
	struct loop *loop;
	char path[108]; /* "" on TCP */
	dev_t dev;	/* the socket file's, to remove only our own */
	ino_t ino;
	const struct admin_route *routes;
	void *ctx;
	struct admin_client *clients;
	unsigned n_clients;
};

static void client_close(struct admin_client *c)
{
	struct admin_server *s = c->srv;

	loop_timer_cancel(s->loop, &c->deadline);
	loop_io_close(s->loop, &c->io);
	if (c->prev)
		c->prev->next = c->next;
	else
		s->clients = c->next;
	if (c->next)
		c->next->prev = c->prev;
	s->n_clients--;
	free(c->m.body);
	free(c->out);
	loop_free_later(s->loop, c);
	/* A slot is free: take the next waiting connection. */
	if (s->n_clients == ADMIN_MAX_CLIENTS - 1)
		loop_io_watch(s->loop, &s->io, EPOLLIN);
}

/* Run the request and queue the reply. */
static void dispatch(struct admin_client *c, int parse_rc)
{
	struct admin_server *s = c->srv;
	struct admin_text txt = {0};
	struct admin_req req = {.text = &txt};
	const struct admin_route *r;
	bool path_known = false;
	json_t *out = NULL;
	int status;

	if (parse_rc == -E2BIG) {
		status = admin_error(&out, 413, "request too large");
		goto reply;
	}
	if (parse_rc) {
		status = admin_error(&out, 400, "malformed HTTP request");
		goto reply;
	}
	req.method = http_method_str(c->parser.method);
	/* The query string is not used by any route; cut it off. */
	strcpy(req.path, c->m.path);
	req.path[strcspn(req.path, "?")] = '\0';
	if (c->m.body_len) {
		json_error_t jerr;

		req.body = json_loadb(c->m.body, c->m.body_len, 0, &jerr);
		if (!req.body) {
			status = admin_error(&out, 400, "invalid JSON body: %s (line %d)",
					     jerr.text, jerr.line);
			goto reply;
		}
	}
	r = route_find(s->routes, req.method, req.path, &req.tail, &path_known);
	if (!r)
		status = path_known ? admin_error(&out, 405, "method not allowed")
				    : admin_error(&out, 404, "no such path: %s", req.path);
	else
		status = r->fn(s->ctx, &req, &out);
reply:
	c->out = render(status, out, &txt, &c->out_len);
	free(txt.body);
	json_decref(out);
	json_decref(req.body);
	if (!c->out) {
		client_close(c);
		return;
	}
	loop_io_watch(s->loop, &c->io, EPOLLOUT);
}

static void client_write(struct admin_client *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = send(c->io.fd, c->out + c->out_off, c->out_len - c->out_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return; /* EPOLLOUT brings us back */
		if (n <= 0)
			break;
		c->out_off += (size_t)n;
	}
	client_close(c);
}

static void client_read(struct admin_client *c)
{
	char buf[8192];

	for (;;) {
		ssize_t n = recv(c->io.fd, buf, sizeof(buf), MSG_DONTWAIT);
		size_t used;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n < 0) {
			client_close(c);
			return;
		}
		used = http_parser_execute(&c->parser, &msg_settings, buf, (size_t)n);
		if (c->m.too_big) {
			dispatch(c, -E2BIG);
			return;
		}
		if (c->parser.http_errno != HPE_OK || (n > 0 && used != (size_t)n)) {
			dispatch(c, -EBADMSG);
			return;
		}
		if (c->m.done) {
			dispatch(c, 0);
			return;
		}
		if (n == 0) {
			client_close(c); /* gone before a whole request */
			return;
		}
	}
}

static void on_client(struct loop_io *io, uint32_t events)
{
	struct admin_client *c = (struct admin_client *)io;

	if (c->out)
		client_write(c);
	else if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
		client_read(c);
}

static void on_deadline(struct loop_timer *t)
{
	struct admin_client *c = container_of(t, struct admin_client, deadline);

	/* The whole exchange has a deadline, however slowly it trickles. */
	client_close(c);
}

static void on_accept(struct loop_io *io, uint32_t events)
{
	struct admin_server *s = (struct admin_server *)io;

	(void)events;
	while (s->n_clients < ADMIN_MAX_CLIENTS) {
		int fd = accept4(io->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct admin_client *c;

		if (fd < 0)
			return;
		c = calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			return;
		}
		c->io = (struct loop_io){.fd = fd, .fn = on_client};
		c->srv = s;
		http_parser_init(&c->parser, HTTP_REQUEST);
		c->parser.data = &c->m;
		if (loop_io_watch(s->loop, &c->io, EPOLLIN)) {
			close(fd);
			free(c);
			return;
		}
		c->next = s->clients;
		if (s->clients)
			s->clients->prev = c;
		s->clients = c;
		s->n_clients++;
		loop_timer_in(s->loop, &c->deadline, on_deadline, ADMIN_IO_TIMEOUT_MS);
	}
	/* Full: leave the rest in the backlog until a client is done. */
	loop_io_watch(s->loop, &s->io, 0);
}

/* A listening TCP socket on "IP:PORT" / "[IPv6]:PORT", or -errno. */
static int listen_tcp(const char *addr)
{
	char host[LB_ADDR_STRLEN + 1], port[8];
	struct sockaddr_storage ss;
	struct lb_addr a;
	unsigned sl;
	int fd, p, one = 1;

	if (lb_hostport_split(addr, strlen(addr), host, sizeof(host), port, sizeof(port)) ||
	    lb_addr_parse(host, &a) || (p = lb_port_parse(port)) < 0)
		return -EINVAL;
	sl = lb_addr_sockaddr(&a, (uint16_t)p, &ss);
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, 64) < 0) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

static struct admin_server *server_new(struct loop *l, const char *path, const char *tcp,
				       const struct admin_route *routes, void *ctx)
{
	struct admin_server *s = calloc(1, sizeof(*s));
	struct stat st;
	int fd;

	if (!s)
		return NULL;
	fd = path ? admin_listen(path) : listen_tcp(tcp);
	if (fd < 0) {
		free(s);
		errno = -fd;
		return NULL;
	}
	s->io = (struct loop_io){.fd = fd, .fn = on_accept};
	s->loop = l;
	if (path) {
		snprintf(s->path, sizeof(s->path), "%s", path);
		if (stat(path, &st) == 0) {
			s->dev = st.st_dev;
			s->ino = st.st_ino;
		}
	}
	s->routes = routes;
	s->ctx = ctx;
	if (loop_io_watch(l, &s->io, EPOLLIN)) {
		int e = errno;

		close(fd);
		free(s);
		errno = e;
		return NULL;
	}
	return s;
}

struct admin_server *admin_server_new(struct loop *l, const char *path,
				      const struct admin_route *routes, void *ctx)
{
	return server_new(l, path, NULL, routes, ctx);
}

struct admin_server *admin_server_new_tcp(struct loop *l, const char *addr,
					  const struct admin_route *routes, void *ctx)
{
	return server_new(l, NULL, addr, routes, ctx);
}

void admin_server_free(struct admin_server *s)
{
	struct stat st;

	if (!s)
		return;
	while (s->clients)
		client_close(s->clients);
	loop_io_close(s->loop, &s->io);
	/* A successor that took over binds its own socket at the same path
	 * before we go: leave its file alone. */
	if (s->path[0] && stat(s->path, &st) == 0 && st.st_dev == s->dev && st.st_ino == s->ino)
		unlink(s->path);
	loop_free_later(s->loop, s);
}

/* One exchange; on success *m holds the reply's body (caller frees). */
static int exchange(const char *sock_path, const char *method, const char *path, json_t *body,
		    int *status, struct msg *m, char **err)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	char *text = NULL, *req = NULL;
	http_parser parser;
	int fd = -1, rc;

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
	rc = read_msg(fd, HTTP_RESPONSE, &parser, m);
	if (rc)
		goto out;
	*status = parser.status_code;
out:
	if (rc && err && asprintf(err, "admin socket %s: %s", sock_path, strerror(-rc)) < 0)
		*err = NULL;
	if (fd >= 0)
		close(fd);
	free(text);
	free(req);
	return rc;
}

int admin_call(const char *sock_path, const char *method, const char *path, json_t *body,
	       int *status, json_t **out, char **err)
{
	struct msg m = {0};
	int rc;

	*out = NULL;
	rc = exchange(sock_path, method, path, body, status, &m, err);
	if (!rc && m.body_len) {
		*out = json_loadb(m.body, m.body_len, 0, NULL);
		if (!*out) {
			rc = -EBADMSG;
			if (err &&
			    asprintf(err, "admin socket %s: the reply is not JSON", sock_path) < 0)
				*err = NULL;
		}
	}
	free(m.body);
	return rc;
}

int admin_get_text(const char *sock_path, const char *path, int *status, char **text, size_t *len,
		   char **err)
{
	struct msg m = {0};
	int rc = exchange(sock_path, "GET", path, NULL, status, &m, err);

	if (rc) {
		free(m.body);
		return rc;
	}
	if (!m.body && !(m.body = calloc(1, 1)))
		return -ENOMEM;
	*text = m.body;
	*len = m.body_len;
	return 0;
}
