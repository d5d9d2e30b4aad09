// SPDX-License-Identifier: GPL-2.0-only
/*
 * conn.c - one client connection: TLS (optional), HTTP/1.1 requests parsed
 * with http-parser, each proxied to a backend over a keepalive connection.
 *
 * Data moves through four bounded buffers:
 *
 *   client --read--> cin --request parser--> upbuf --send--> backend
 *   client <--write-- down <--response parser-- uin <--recv-- backend
 *
 * pump() moves bytes along both chains until nothing moves. Each stage
 * only takes what the next buffer can hold, so a slow reader on either
 * side stops the other side's reads (backpressure) without any buffering
 * beyond 4 x CONN_BUF per connection, whatever the body size.
 *
 * Bodies are re-framed, not copied raw: on_body gives de-chunked bytes,
 * and the proxy writes Content-Length or chunked framing itself.
 * Pipelined requests are answered in order: the request parser pauses at
 * the end of each request until its response is complete.
 */
#include "log.h"
#include "proxy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* Room kept free in an output buffer beyond the input fed to a parser:
 * a response/request head grows by the headers the proxy adds, and chunk
 * framing of a body split across reads by a few bytes per piece. */
#define HEAD_SLACK 1024

struct conn {
	struct ev ev; /* first: the epoll handle is the connection */
	struct worker *w;
	SSL *ssl;
	bool handshake_done;
	bool rd_ready, wr_ready;
	bool client_eof;
	bool closing; /* flush down, then close */
	char peer_ip[INET6_ADDRSTRLEN];
	char *mem; /* the four buffers, one allocation */
	struct buf cin, upbuf, uin, down;
	http_parser req, resp;
	struct h1_head head; /* the request head, then the response head */
	struct uconn *up;
	struct timer timer;

	/* The request in progress. */
	bool in_request, head_done, req_done;
	bool resp_seen;	   /* any byte from the backend for this request */
	bool resp_started; /* response head written to down */
	bool resp_done, resp_interim, up_eof;
	bool head_req, client_keepalive;
	size_t replay_len; /* >0: the request is its head alone, at upbuf[0..] */
	enum h1_framing req_framing, down_framing;
	int status;
	int failed_backend;
	unsigned attempts;
	const char *backend; /* name of the last backend tried, for the log */
	char tls_desc[24];   /* "TLSv1.3/full", "TLSv1.2/resumed" or "-" */
	uint64_t t_start;
	uint64_t bytes_down; /* response bytes queued for the client, for the log */
	char method[16], path[256];
	char reqid[H1_REQID_MAX + 1];
	size_t reqid_len;
};

static void pump(struct conn *c);

static struct conn *of_parser(http_parser *p)
{
	return p->data;
}

static void buf_compact(struct buf *b)
{
	if (b->head) {
		memmove(b->p, b->p + b->head, b->tail - b->head);
		b->tail -= b->head;
		b->head = 0;
	}
}

/*
 * Free space at the tail, moving the data to the front first only when the
 * tail has less than want bytes free: a memmove per read or parse would
 * copy the same bytes over and over on a busy connection.
 */
static size_t buf_room(struct buf *b, size_t want)
{
	if (buf_space(b) < want)
		buf_compact(b);
	return buf_space(b);
}

/* Callers fed the parser no more than the space left minus HEAD_SLACK, so
 * this always fits; a breach is a bug, not input. Returns n. */
static size_t buf_put(struct buf *b, const void *p, size_t n)
{
	require(buf_space(b) >= n);
	memcpy(b->p + b->tail, p, n);
	b->tail += n;
	return n;
}

/* One chunk of chunked transfer coding; returns the bytes written. */
static size_t buf_put_chunk(struct buf *b, const char *at, size_t len)
{
	char hdr[24];
	int n = snprintf(hdr, sizeof(hdr), "%zx\r\n", len);

	return buf_put(b, hdr, (size_t)n) + buf_put(b, at, len) + buf_put(b, "\r\n", 2);
}

static void put_down(struct conn *c, const void *p, size_t n)
{
	c->bytes_down += buf_put(&c->down, p, n);
}

/* --- closing ------------------------------------------------------------ */

static void conn_close(struct conn *c)
{
	if (c->ev.dead)
		return;
	timer_cancel(&c->timer);
	if (c->up) {
		upstream_put(c->up, false);
		c->up = NULL;
	}
	if (c->ssl) {
		if (c->handshake_done && !c->client_eof)
			SSL_shutdown(c->ssl);
		SSL_free(c->ssl);
		c->ssl = NULL;
	}
	worker_unwatch(c->w, &c->ev);
	close(c->ev.fd);
	free(c->mem);
	worker_bury(c->w, &c->ev);
}

/* --- access log --------------------------------------------------------- */

static void access_log(struct conn *c)
{
	char line[768], ts[32];
	struct timespec now;
	struct tm tm;
	int n;

	if (c->w->log_fd < 0)
		return;
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	n = snprintf(line, sizeof(line),
		     "%s.%03ldZ %s \"%s %s\" %d %" PRIu64 " %" PRIu64
		     "ms backend=%s id=%.*s tls=%s\n",
		     ts, now.tv_nsec / 1000000, c->peer_ip, c->method, c->path, c->status,
		     c->bytes_down, c->w->now - c->t_start, c->backend ? c->backend : "-",
		     (int)c->reqid_len, c->reqid, c->tls_desc);
	if (n > 0)
		worker_log(c->w, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
}

/* --- proxy-generated responses ------------------------------------------ */

/*
 * Answer the current request with an error of our own and close after it.
 * If a response is already on its way, the only honest signal left is to
 * cut the connection.
 */
static void respond_error(struct conn *c, int status)
{
	char buf[1024];
	int n;

	if (c->up) {
		upstream_put(c->up, false);
		c->up = NULL;
	}
	if (c->resp_started) {
		conn_close(c);
		return;
	}
	if (!c->reqid_len) {
		worker_reqid(c->w, c->reqid);
		c->reqid_len = 32;
	}
	n = h1_write_error(status, c->w->cfg->served_by, c->reqid, c->reqid_len, false, buf,
			   sizeof(buf));
	if (n < 0 || buf_room(&c->down, (size_t)n) < (size_t)n) {
		conn_close(c);
		return;
	}
	put_down(c, buf, (size_t)n);
	c->status = status;
	c->resp_started = c->resp_done = true;
	c->closing = true;
}

/* --- request parser callbacks ------------------------------------------- */

static int req_begin(http_parser *p)
{
	struct conn *c = of_parser(p);

	c->in_request = true;
	c->t_start = c->w->now;
	h1_head_reset(&c->head);
	return 0;
}

static int req_url(http_parser *p, const char *at, size_t len)
{
	return h1_on_url(&of_parser(p)->head, at, len);
}

static int req_field(http_parser *p, const char *at, size_t len)
{
	return h1_on_header_field(&of_parser(p)->head, at, len);
}

static int req_value(http_parser *p, const char *at, size_t len)
{
	return h1_on_header_value(&of_parser(p)->head, at, len);
}

static int req_headers_complete(http_parser *p)
{
	struct conn *c = of_parser(p);
	struct h1_req_out ro = {.client_ip = c->peer_ip, .tls = c->ssl != NULL};
	size_t len, ulen = c->head.url_len;
	const char *v;
	int n;

	c->head_done = true;
	snprintf(c->method, sizeof(c->method), "%s", http_method_str(p->method));
	if (ulen >= sizeof(c->path))
		ulen = sizeof(c->path) - 1;
	memcpy(c->path, c->head.buf + c->head.url_off, ulen);
	c->path[ulen] = '\0';
	c->head_req = p->method == HTTP_HEAD;
	/* HTTP/1.0 clients get one request per connection: simpler framing
	 * rules and they are rare enough at the edge. */
	c->client_keepalive = p->http_major == 1 && p->http_minor >= 1 && http_should_keep_alive(p);

	v = h1_get(&c->head, "x-request-id", &len);
	if (v && h1_reqid_valid(v, len)) {
		memcpy(c->reqid, v, len);
		c->reqid_len = len;
	} else {
		worker_reqid(c->w, c->reqid);
		c->reqid_len = 32;
	}
	ro.reqid = c->reqid;
	ro.reqid_len = c->reqid_len;

	if (p->flags & F_CHUNKED)
		c->req_framing = H1_BODY_CHUNKED;
	else if (p->flags & F_CONTENTLENGTH)
		c->req_framing = H1_BODY_LENGTH;
	else
		c->req_framing = H1_BODY_NONE;
	ro.framing = c->req_framing;
	ro.content_length = p->content_length;

	/* Expect: 100-continue is answered here (RFC 9110 §10.1.1): the
	 * client may send the body, the proxy will take it either way. */
	v = h1_get(&c->head, "expect", &len);
	if (v && len == 12 && strncasecmp(v, "100-continue", 12) == 0 &&
	    c->req_framing != H1_BODY_NONE)
		put_down(c, "HTTP/1.1 100 Continue\r\n\r\n", 25);

	n = h1_write_request(&c->head, p, &ro, c->upbuf.p + c->upbuf.tail, buf_space(&c->upbuf));
	if (n < 0)
		return -1; /* cannot happen with H1_HEAD_MAX < CONN_BUF; fail closed */
	c->upbuf.tail += (size_t)n;
	c->replay_len = c->req_framing == H1_BODY_NONE && c->upbuf.head == 0 ? c->upbuf.tail : 0;
	return 0;
}

static int req_body(http_parser *p, const char *at, size_t len)
{
	struct conn *c = of_parser(p);

	if (c->req_framing == H1_BODY_CHUNKED)
		buf_put_chunk(&c->upbuf, at, len);
	else
		buf_put(&c->upbuf, at, len);
	return 0;
}

static int req_complete(http_parser *p)
{
	struct conn *c = of_parser(p);

	if (c->req_framing == H1_BODY_CHUNKED)
		buf_put(&c->upbuf, "0\r\n\r\n", 5);
	c->req_done = true;
	http_parser_pause(p, 1); /* the next request waits for this response */
	return 0;
}

static const http_parser_settings req_settings = {
    .on_message_begin = req_begin,
    .on_url = req_url,
    .on_header_field = req_field,
    .on_header_value = req_value,
    .on_headers_complete = req_headers_complete,
    .on_body = req_body,
    .on_message_complete = req_complete,
};

/* --- response parser callbacks ------------------------------------------ */

static int resp_begin(http_parser *p)
{
	h1_head_reset(&of_parser(p)->head);
	return 0;
}

static int resp_status(http_parser *p, const char *at, size_t len)
{
	return h1_on_status(&of_parser(p)->head, at, len);
}

static int resp_headers_complete(http_parser *p)
{
	struct conn *c = of_parser(p);
	struct h1_resp_out ro = {
	    .served_by = c->w->cfg->served_by, .reqid = c->reqid, .reqid_len = c->reqid_len};
	int n;

	if (p->status_code / 100 == 1) {
		/* 1xx from the backend: 100 Continue was already answered by
		 * us, and upgrades (101) are not proxied. Skip it. */
		c->resp_interim = true;
		return 0;
	}
	c->status = p->status_code;
	ro.keep_alive = c->client_keepalive && !c->closing;
	ro.head_only = c->head_req || p->status_code == 204 || p->status_code == 304;
	if (ro.head_only)
		c->down_framing = H1_BODY_NONE;
	else if (p->flags & F_CHUNKED)
		c->down_framing = H1_BODY_CHUNKED;
	else if (p->flags & F_CONTENTLENGTH)
		c->down_framing = H1_BODY_LENGTH;
	else if (ro.keep_alive)
		c->down_framing = H1_BODY_CHUNKED; /* backend ends by closing */
	else
		c->down_framing = H1_BODY_CLOSE;
	ro.framing = c->down_framing;
	ro.content_length = p->content_length;
	n = h1_write_response(&c->head, p, &ro, c->down.p + c->down.tail, buf_space(&c->down));
	if (n < 0)
		return -1;
	c->down.tail += (size_t)n;
	c->bytes_down += (uint64_t)n;
	c->resp_started = true;
	return c->head_req ? 1 : 0; /* 1: no body follows (HEAD) */
}

static int resp_field(http_parser *p, const char *at, size_t len)
{
	return h1_on_header_field(&of_parser(p)->head, at, len);
}

static int resp_value(http_parser *p, const char *at, size_t len)
{
	return h1_on_header_value(&of_parser(p)->head, at, len);
}

static int resp_body(http_parser *p, const char *at, size_t len)
{
	struct conn *c = of_parser(p);

	if (c->down_framing == H1_BODY_CHUNKED)
		c->bytes_down += buf_put_chunk(&c->down, at, len);
	else
		put_down(c, at, len);
	return 0;
}

static int resp_complete(http_parser *p)
{
	struct conn *c = of_parser(p);

	if (c->resp_interim) {
		c->resp_interim = false;
		return 0;
	}
	if (c->down_framing == H1_BODY_CHUNKED)
		put_down(c, "0\r\n\r\n", 5);
	c->resp_done = true;
	http_parser_pause(p, 1);
	return 0;
}

static const http_parser_settings resp_settings = {
    .on_message_begin = resp_begin,
    .on_status = resp_status,
    .on_header_field = resp_field,
    .on_header_value = resp_value,
    .on_headers_complete = resp_headers_complete,
    .on_body = resp_body,
    .on_message_complete = resp_complete,
};

/* --- the upstream side -------------------------------------------------- */

static void start_upstream(struct conn *c)
{
	c->up = upstream_get(c->w, c, c->failed_backend);
	if (!c->up) {
		respond_error(c, 502);
		return;
	}
	c->attempts++;
	c->backend = c->w->cfg->backends[c->up->backend].name;
	c->resp_seen = c->up_eof = false;
	http_parser_init(&c->resp, HTTP_RESPONSE);
	c->resp.data = c;
	c->uin.head = c->uin.tail = 0;
}

/*
 * The backend connection failed. A connect that failed sent nothing, so
 * another backend may be tried; a reused keepalive connection that died
 * before answering may be retried once if the request was its head alone
 * (still intact at upbuf[0..replay_len]). Anything else is a 502/504.
 */
static void upstream_failed(struct conn *c, bool timeout)
{
	struct uconn *u = c->up;
	bool connected = u->connected, reused = u->reused;

	c->failed_backend = (int)u->backend;
	upstream_put(u, false);
	c->up = NULL;
	c->w->st.upstream_errors++;
	if (!connected && c->attempts < c->w->cfg->n_backends) {
		start_upstream(c);
		return;
	}
	if (reused && c->replay_len && c->req_done && !c->resp_seen) {
		c->upbuf.head = 0;
		c->upbuf.tail = c->replay_len;
		c->failed_backend = -1;
		start_upstream(c);
		return;
	}
	respond_error(c, timeout ? 504 : 502);
}

void conn_upstream_event(struct uconn *u, uint32_t events)
{
	struct conn *c = u->owner;

	if (!u->connected) {
		int err = 0;
		socklen_t len = sizeof(err);

		if (getsockopt(u->ev.fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
			err = errno;
		if (err) {
			log_debug("backend %s: %s", c->w->cfg->backends[u->backend].name,
				  strerror(err));
			upstream_failed(c, false);
			pump(c);
			return;
		}
		u->connected = true;
		u->wr_ready = true;
		upstream_touch(u);
	}
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP))
		u->rd_ready = true;
	if (events & (EPOLLOUT | EPOLLERR))
		u->wr_ready = true;
	pump(c);
}

void conn_upstream_timeout(struct uconn *u)
{
	struct conn *c = u->owner;

	if (!u->connected || !c->resp_seen) {
		log_warn("backend %s: %s timed out", c->w->cfg->backends[u->backend].name,
			 u->connected ? "response" : "connect");
		upstream_failed(c, u->connected);
	} else {
		conn_close(c); /* the response stalled midway */
	}
	pump(c);
}

static bool upstream_write(struct conn *c)
{
	struct uconn *u = c->up;
	ssize_t n;

	if (!u || !u->connected || !u->wr_ready || !buf_len(&c->upbuf))
		return false;
	n = send(u->ev.fd, c->upbuf.p + c->upbuf.head, buf_len(&c->upbuf), MSG_NOSIGNAL);
	if (n > 0) {
		c->upbuf.head += (size_t)n;
		upstream_touch(u);
		return true;
	}
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
		u->wr_ready = false;
		return false;
	}
	upstream_failed(c, false);
	return true;
}

static bool upstream_read(struct conn *c)
{
	struct uconn *u = c->up;
	size_t space;
	ssize_t n;

	if (!u || !u->connected || !u->rd_ready || c->resp_done || c->up_eof)
		return false;
	space = buf_room(&c->uin, 1);
	if (!space)
		return false;
	n = recv(u->ev.fd, c->uin.p + c->uin.tail, space, 0);
	if (n > 0) {
		c->uin.tail += (size_t)n;
		c->resp_seen = true;
		upstream_touch(u);
		return true;
	}
	if (n == 0) {
		c->up_eof = true;
		return true;
	}
	if (errno == EAGAIN || errno == EWOULDBLOCK) {
		u->rd_ready = false;
		return false;
	}
	if (!c->resp_seen) {
		upstream_failed(c, false);
		return true;
	}
	c->up_eof = true; /* reset mid-response: handled as a truncation */
	return true;
}

static bool feed_response(struct conn *c)
{
	size_t space, n, used;
	enum http_errno e;

	if (!c->up || c->resp_done)
		return false;
	if (!buf_len(&c->uin)) {
		if (!c->up_eof)
			return false;
		/* The backend closed. Fine for a close-delimited body; a
		 * retry or a 502 if it said nothing; a cut otherwise. */
		if (c->resp_seen && c->resp_started &&
		    !(c->resp.flags & (F_CHUNKED | F_CONTENTLENGTH)) && !c->head_req) {
			http_parser_execute(&c->resp, &resp_settings, NULL, 0);
			if (!c->resp_done)
				conn_close(c);
		} else if (!c->resp_seen) {
			upstream_failed(c, false);
		} else {
			log_warn("backend %s: response truncated",
				 c->w->cfg->backends[c->up->backend].name);
			if (c->resp_started)
				conn_close(c);
			else
				respond_error(c, 502);
		}
		return true;
	}
	space = buf_room(&c->down, CONN_BUF / 2);
	if (space <= HEAD_SLACK)
		return false;
	n = buf_len(&c->uin);
	if (n > space - HEAD_SLACK)
		n = space - HEAD_SLACK;
	used = http_parser_execute(&c->resp, &resp_settings, c->uin.p + c->uin.head, n);
	c->uin.head += used;
	e = HTTP_PARSER_ERRNO(&c->resp);
	if (e != HPE_OK && e != HPE_PAUSED) {
		log_warn("backend %s: bad response: %s", c->w->cfg->backends[c->up->backend].name,
			 http_errno_description(e));
		respond_error(c, 502);
		return true;
	}
	return used > 0;
}

/* --- the client side ---------------------------------------------------- */

static bool client_read(struct conn *c)
{
	size_t space;
	int n;

	if (c->client_eof || c->closing || !(c->rd_ready || (c->ssl && SSL_pending(c->ssl))))
		return false;
	space = buf_room(&c->cin, 1);
	if (!space)
		return false;
	if (c->ssl) {
		n = SSL_read(c->ssl, c->cin.p + c->cin.tail, (int)space);
		if (n <= 0) {
			int e = SSL_get_error(c->ssl, n);

			if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
				c->rd_ready = false;
				return false;
			}
			if (e != SSL_ERROR_ZERO_RETURN)
				ERR_clear_error();
			c->client_eof = true;
			return true;
		}
	} else {
		n = (int)recv(c->ev.fd, c->cin.p + c->cin.tail, space, 0);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			c->rd_ready = false;
			return false;
		}
		if (n <= 0) {
			c->client_eof = true;
			return true;
		}
	}
	c->cin.tail += (size_t)n;
	timer_arm(&c->w->t_client, &c->timer, c->timer.fn, c->w->now);
	return true;
}

static bool client_write(struct conn *c)
{
	size_t len = buf_len(&c->down);
	int n;

	if (!c->wr_ready || !len)
		return false;
	if (c->ssl) {
		n = SSL_write(c->ssl, c->down.p + c->down.head, (int)len);
		if (n <= 0) {
			int e = SSL_get_error(c->ssl, n);

			if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
				c->wr_ready = false;
				return false;
			}
			ERR_clear_error();
			conn_close(c);
			return true;
		}
	} else {
		n = (int)send(c->ev.fd, c->down.p + c->down.head, len, MSG_NOSIGNAL);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			c->wr_ready = false;
			return false;
		}
		if (n < 0) {
			conn_close(c);
			return true;
		}
	}
	c->down.head += (size_t)n;
	timer_arm(&c->w->t_client, &c->timer, c->timer.fn, c->w->now);
	return true;
}

static bool feed_request(struct conn *c)
{
	size_t space, n, used;
	enum http_errno e;

	if (c->closing || (c->req_done && !c->resp_done))
		return false;
	if (!buf_len(&c->cin)) {
		if (!c->client_eof)
			return false;
		if (!c->in_request) {
			c->closing = true; /* clean close between requests */
			return true;
		}
		if (!c->req_done) {
			/* The client went away mid-request. */
			conn_close(c);
			return true;
		}
		return false;
	}
	space = buf_room(&c->upbuf, CONN_BUF / 2);
	if (space <= HEAD_SLACK || buf_space(&c->down) < 64)
		return false;
	n = buf_len(&c->cin);
	if (n > space - HEAD_SLACK)
		n = space - HEAD_SLACK;
	used = http_parser_execute(&c->req, &req_settings, c->cin.p + c->cin.head, n);
	c->cin.head += used;
	e = HTTP_PARSER_ERRNO(&c->req);
	if (e != HPE_OK && e != HPE_PAUSED) {
		c->w->st.bad_requests++;
		if (!c->in_request)
			snprintf(c->method, sizeof(c->method), "-");
		respond_error(c, c->head.overflow ? 431 : 400);
		return true;
	}
	if (c->req.upgrade) {
		respond_error(c, 501); /* CONNECT / Upgrade are not proxied */
		return true;
	}
	if (c->head_done && !c->up && !c->resp_started)
		start_upstream(c);
	return used > 0;
}

/* The response is complete: log it, recycle, and get ready for the next. */
static void finish_request(struct conn *c)
{
	bool reusable;

	c->w->st.requests++;
	access_log(c);
	if (c->up) {
		reusable = c->req_done && !buf_len(&c->upbuf) && !buf_len(&c->uin) && !c->up_eof &&
			   http_should_keep_alive(&c->resp);
		upstream_put(c->up, reusable);
		c->up = NULL;
	}
	if (!c->req_done || !c->client_keepalive)
		c->closing = true;
	c->in_request = c->head_done = c->req_done = false;
	c->resp_seen = c->resp_started = c->resp_done = c->resp_interim = c->up_eof = false;
	c->head_req = false;
	c->replay_len = 0;
	c->status = 0;
	c->failed_backend = -1;
	c->attempts = 0;
	c->backend = NULL;
	c->bytes_down = 0;
	c->reqid_len = 0;
	c->upbuf.head = c->upbuf.tail = 0;
	if (!c->closing)
		http_parser_pause(&c->req, 0);
}

static void update_interest(struct conn *c)
{
	uint32_t m = 0;

	if (c->ssl && !c->handshake_done)
		return; /* set by the handshake step */
	if (!c->client_eof && !c->closing)
		m |= EPOLLIN;
	if (buf_len(&c->down))
		m |= EPOLLOUT;
	if (worker_watch(c->w, &c->ev, m)) {
		conn_close(c);
		return;
	}
	if (c->up) {
		struct uconn *u = c->up;

		m = u->connected ? 0 : EPOLLOUT;
		if (u->connected && !c->resp_done && !c->up_eof)
			m |= EPOLLIN | EPOLLRDHUP;
		if (u->connected && buf_len(&c->upbuf))
			m |= EPOLLOUT;
		if (worker_watch(c->w, &u->ev, m))
			upstream_failed(c, false);
	}
}

static bool handshake(struct conn *c)
{
	int r = SSL_do_handshake(c->ssl), e;

	if (r == 1) {
		c->handshake_done = true;
		c->w->st.tls_handshakes++;
		if (SSL_session_reused(c->ssl))
			c->w->st.tls_resumed++;
		snprintf(c->tls_desc, sizeof(c->tls_desc), "%s/%s", SSL_get_version(c->ssl),
			 SSL_session_reused(c->ssl) ? "resumed" : "full");
		return true;
	}
	e = SSL_get_error(c->ssl, r);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
		if (worker_watch(c->w, &c->ev, e == SSL_ERROR_WANT_READ ? EPOLLIN : EPOLLOUT))
			conn_close(c);
		return false;
	}
	ERR_clear_error();
	conn_close(c);
	return false;
}

static void pump(struct conn *c)
{
	bool moved;

	if (c->ev.dead)
		return;
	if (c->ssl && !c->handshake_done && !handshake(c))
		return;
	do {
		moved = false;
		moved |= client_read(c);
		if (!c->ev.dead)
			moved |= feed_request(c);
		if (!c->ev.dead)
			moved |= upstream_write(c);
		if (!c->ev.dead)
			moved |= upstream_read(c);
		if (!c->ev.dead)
			moved |= feed_response(c);
		if (!c->ev.dead)
			moved |= client_write(c);
		if (!c->ev.dead && c->resp_done) {
			finish_request(c);
			moved = true;
		}
		if (!c->ev.dead && c->closing && !buf_len(&c->down)) {
			conn_close(c);
		}
	} while (moved && !c->ev.dead);
	if (!c->ev.dead)
		update_interest(c);
}

static void on_client_event(struct worker *w, struct ev *ev, uint32_t events)
{
	struct conn *c = (struct conn *)ev;

	(void)w;
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
		c->rd_ready = true;
	if (events & (EPOLLOUT | EPOLLERR))
		c->wr_ready = true;
	pump(c);
}

static void on_client_timer(struct timer *t)
{
	struct conn *c = (struct conn *)((char *)t - offsetof(struct conn, timer));

	/* Only a client that keeps us waiting times out here; a request
	 * waiting on its backend is the upstream timer's business. */
	if (c->req_done && c->up && !buf_len(&c->down)) {
		timer_arm(&c->w->t_client, &c->timer, on_client_timer, c->w->now);
		return;
	}
	conn_close(c);
}

void conn_accept(struct worker *w, int fd, const struct sockaddr_storage *peer, bool tls)
{
	struct conn *c = calloc(1, sizeof(*c));
	int one = 1;

	if (!c) {
		close(fd);
		return;
	}
	c->mem = malloc(4 * CONN_BUF);
	if (!c->mem) {
		free(c);
		close(fd);
		return;
	}
	c->cin = (struct buf){.p = c->mem, .cap = CONN_BUF};
	c->upbuf = (struct buf){.p = c->mem + CONN_BUF, .cap = CONN_BUF};
	c->uin = (struct buf){.p = c->mem + 2 * CONN_BUF, .cap = CONN_BUF};
	c->down = (struct buf){.p = c->mem + 3 * CONN_BUF, .cap = CONN_BUF};
	c->ev.fd = fd;
	c->ev.cb = on_client_event;
	c->w = w;
	c->failed_backend = -1;
	c->wr_ready = true;
	strcpy(c->tls_desc, "-");
	if (peer->ss_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)peer)->sin_addr, c->peer_ip,
			  sizeof(c->peer_ip));
	else
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)peer)->sin6_addr, c->peer_ip,
			  sizeof(c->peer_ip));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	http_parser_init(&c->req, HTTP_REQUEST);
	c->req.data = c;
	w->st.accepted++;
	timer_arm(&w->t_client, &c->timer, on_client_timer, w->now);
	if (tls) {
		c->ssl = SSL_new(w->ssl_ctx);
		if (!c->ssl || !SSL_set_fd(c->ssl, fd)) {
			c->ev.interest = 0;
			conn_close(c);
			return;
		}
		SSL_set_accept_state(c->ssl);
	}
	if (worker_watch(w, &c->ev, EPOLLIN)) {
		conn_close(c);
		return;
	}
	c->rd_ready = false;
	pump(c);
}
