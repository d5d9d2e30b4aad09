// SPDX-License-Identifier: GPL-2.0-only
/*
 * http_client.c - one HTTP/1.1 exchange in the event loop (http_client.h).
 *
 * A small state machine: CONNECT (a non-blocking connect; writability says
 * it finished), TLS (SSL_do_handshake until it stops asking for I/O), TALK
 * (write the request, feed what arrives to http-parser until the message
 * is complete). One timer bounds the whole exchange; a timer, not a
 * socket, so it fires however the peer trickles.
 */
#include "http_client.h"
#include "list.h"

#include <arpa/inet.h>
#include <errno.h>
#include <http_parser.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <unistd.h>

#define RX_CHUNK 16384
/* What a response may carry on top of its body (heads, 1xx, framing). */
#define RX_OVERHEAD_MAX (256 * 1024)
/* Read at most this much per wake-up, then let the loop run its timers and
 * other descriptors (TLS may hold more already decrypted: see resume). */
#define RX_PER_WAKEUP (256 * 1024)

struct httpc {
	struct loop *loop;
	struct loop_io io;
	struct loop_timer deadline;
	struct loop_timer resume; /* more to read after the per-wake-up budget */
	struct loop_task report;  /* a failure found before httpc_start returned */
	httpc_done_fn fn;
	void *ctx;
	enum httpc_phase phase;
	uint32_t timeout_ms;
	SSL *ssl;
	bool want_write; /* TLS needs the socket writable */
	char *out;	 /* head + body to send */
	size_t out_len, out_off;
	http_parser hp;
	size_t max_body;
	size_t rx_total; /* every byte received: heads, 1xx, chunk framing too */
	char *body;
	size_t body_len, body_cap;
	bool too_big, complete;
	/* The header being parsed: only the ETag's value is kept. */
	char field[8];
	size_t field_len;
	bool field_long, in_value, etag_value, etag_found, etag_long;
	size_t etag_len;
	struct httpc_result res;
};

static void release(struct httpc *c)
{
	loop_timer_cancel(c->loop, &c->deadline);
	loop_timer_cancel(c->loop, &c->resume);
	loop_task_cancel(&c->report);
	loop_io_close(c->loop, &c->io);
	if (c->ssl)
		SSL_free(c->ssl);
	c->ssl = NULL;
	free(c->out);
	free(c->body);
	c->out = c->body = NULL;
	/* An event of this iteration may still name c: free it after. */
	loop_free_later(c->loop, c);
}

/* The end: report c->res to the owner, then free c. */
static void finish(struct httpc *c)
{
	loop_timer_cancel(c->loop, &c->deadline);
	loop_timer_cancel(c->loop, &c->resume);
	loop_io_close(c->loop, &c->io);
	c->res.body = c->body ? c->body : "";
	c->res.body_len = c->body_len;
	c->fn(c->ctx, &c->res);
	release(c);
}

static void fail(struct httpc *c, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void fail(struct httpc *c, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->res.msg, sizeof(c->res.msg), fmt, ap);
	va_end(ap);
	c->res.err = err;
	c->res.phase = c->phase;
	finish(c);
}

static const char *phase_name(enum httpc_phase ph)
{
	return ph == HTTPC_CONNECT ? "connecting"
	       : ph == HTTPC_TLS   ? "in the TLS handshake"
				   : "waiting for the response";
}

static void on_deadline(struct loop_timer *t)
{
	struct httpc *c = container_of(t, struct httpc, deadline);

	fail(c, -ETIMEDOUT, "timeout after %u ms %s", c->timeout_ms, phase_name(c->phase));
}

static void on_report(struct loop_task *t)
{
	finish(container_of(t, struct httpc, report));
}

/* --- the response, through http-parser ------------------------------------ */

static int on_hfield(http_parser *hp, const char *at, size_t len)
{
	struct httpc *c = hp->data;

	if (c->in_value) { /* a new header begins */
		c->in_value = false;
		c->field_len = 0;
		c->field_long = false;
	}
	if (len > sizeof(c->field) - c->field_len) {
		c->field_long = true;
		return 0;
	}
	memcpy(c->field + c->field_len, at, len);
	c->field_len += len;
	return 0;
}

static int on_hvalue(http_parser *hp, const char *at, size_t len)
{
	struct httpc *c = hp->data;

	if (!c->in_value) {
		c->in_value = true;
		c->etag_value =
		    !c->field_long && c->field_len == 4 && strncasecmp(c->field, "etag", 4) == 0;
		if (c->etag_value) { /* a repeated ETag: the last one counts */
			c->etag_found = true;
			c->etag_long = false;
			c->etag_len = 0;
			c->res.etag[0] = '\0';
		}
	}
	if (!c->etag_value || c->etag_long)
		return 0;
	if (len >= sizeof(c->res.etag) - c->etag_len) {
		c->etag_long = true; /* not kept: the next fetch is a full one */
		return 0;
	}
	memcpy(c->res.etag + c->etag_len, at, len);
	c->etag_len += len;
	c->res.etag[c->etag_len] = '\0';
	return 0;
}

static int on_headers_complete(http_parser *hp)
{
	struct httpc *c = hp->data;

	c->res.status = (int)hp->status_code;
	c->res.etag_seen = c->etag_found && !c->etag_long;
	/* Refuse a declared oversize body before reading any of it. */
	if ((hp->flags & F_CONTENTLENGTH) && hp->content_length > c->max_body) {
		c->too_big = true;
		return -1;
	}
	return 0;
}

static int on_body(http_parser *hp, const char *at, size_t len)
{
	struct httpc *c = hp->data;

	if (len > c->max_body - c->body_len) {
		c->too_big = true;
		return -1;
	}
	if (c->body_len + len + 1 > c->body_cap) {
		size_t cap = c->body_cap ? c->body_cap : 16384;
		char *nb;

		while (cap < c->body_len + len + 1)
			cap *= 2;
		if (cap > c->max_body + 1)
			cap = c->max_body + 1;
		nb = realloc(c->body, cap);
		if (!nb)
			return -1; /* reported as a bad message: rare enough */
		c->body = nb;
		c->body_cap = cap;
	}
	memcpy(c->body + c->body_len, at, len);
	c->body_len += len;
	c->body[c->body_len] = '\0';
	return 0;
}

static int on_message_complete(http_parser *hp)
{
	struct httpc *c = hp->data;

	/* An interim 1xx response is not the answer: the real one follows. */
	if (hp->status_code < 200) {
		c->etag_found = c->etag_long = false;
		c->body_len = 0;
		return 0;
	}
	c->complete = true;
	http_parser_pause(hp, 1); /* whatever follows is not ours */
	return 0;
}

static const http_parser_settings resp_settings = {
    .on_header_field = on_hfield,
    .on_header_value = on_hvalue,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* --- transport: plain or TLS ----------------------------------------------- */

/* >0 bytes, 0 the peer closed cleanly, -EAGAIN nothing yet, else -errno. */
static ssize_t rx(struct httpc *c, void *buf, size_t len)
{
	ssize_t n;

	if (!c->ssl) {
		n = recv(c->io.fd, buf, len, 0);
		if (n < 0)
			return errno == EAGAIN || errno == EINTR ? -EAGAIN : -errno;
		return n;
	}
	ERR_clear_error();
	errno = 0; /* SSL_ERROR_SYSCALL leaves it alone on EOF */
	n = SSL_read(c->ssl, buf, (int)len);
	if (n > 0)
		return n;
	switch (SSL_get_error(c->ssl, (int)n)) {
	case SSL_ERROR_WANT_READ:
		return -EAGAIN;
	case SSL_ERROR_WANT_WRITE:
		c->want_write = true;
		return -EAGAIN;
	case SSL_ERROR_ZERO_RETURN:
		return 0;
	case SSL_ERROR_SYSCALL:
		/* EOF without close_notify could be a truncation: never
		 * accepted as the end of a body. */
		return errno && errno != EAGAIN && errno != EINTR ? -errno : -ECONNRESET;
	default:
		return -EPROTO;
	}
}

/* Bytes written (0 when the socket is full), or -errno. */
static ssize_t tx(struct httpc *c, const void *buf, size_t len)
{
	ssize_t n;

	if (!c->ssl) {
		n = send(c->io.fd, buf, len, MSG_NOSIGNAL);
		if (n < 0)
			return errno == EAGAIN || errno == EINTR ? 0 : -errno;
		return n;
	}
	ERR_clear_error();
	errno = 0;
	n = SSL_write(c->ssl, buf, (int)len);
	if (n > 0)
		return n;
	switch (SSL_get_error(c->ssl, (int)n)) {
	case SSL_ERROR_WANT_WRITE:
		c->want_write = true;
		return 0;
	case SSL_ERROR_WANT_READ:
		return 0;
	default:
		return errno && errno != EAGAIN && errno != EINTR ? -errno : -EPROTO;
	}
}

static void watch(struct httpc *c)
{
	uint32_t ev = EPOLLIN;

	if (c->io.fd < 0)
		return;
	if (c->phase == HTTPC_CONNECT || c->want_write || c->out_off < c->out_len)
		ev |= EPOLLOUT;
	loop_io_watch(c->loop, &c->io, ev);
}

static void on_resume(struct loop_timer *t);

static void talk(struct httpc *c)
{
	char buf[RX_CHUNK];
	size_t got = 0;

	while (c->out_off < c->out_len) {
		ssize_t n = tx(c, c->out + c->out_off, c->out_len - c->out_off);

		if (n < 0) {
			fail(c, (int)n, "send: %s", strerror((int)-n));
			return;
		}
		if (n == 0)
			break;
		c->out_off += (size_t)n;
	}
	while (got < RX_PER_WAKEUP) {
		ssize_t n = rx(c, buf, sizeof(buf));
		enum http_errno he;

		if (n == -EAGAIN)
			return;
		if (n < 0) {
			fail(c, (int)n, "receive: %s", strerror((int)-n));
			return;
		}
		got += (size_t)n;
		/* A bound on everything, not only the body: endless 1xx
		 * heads or chunk extensions never grow the body. */
		c->rx_total += (size_t)n;
		if (c->rx_total > c->max_body + RX_OVERHEAD_MAX) {
			fail(c, -EMSGSIZE, "response over %zu bytes",
			     c->max_body + RX_OVERHEAD_MAX);
			return;
		}
		/* Length 0 tells the parser the peer closed: that ends a body
		 * that runs to the close. */
		http_parser_execute(&c->hp, &resp_settings, buf, (size_t)n);
		he = HTTP_PARSER_ERRNO(&c->hp);
		if (c->too_big) {
			fail(c, -EMSGSIZE, "response body over %zu bytes", c->max_body);
			return;
		}
		if (c->complete) {
			c->res.err = 0;
			finish(c);
			return;
		}
		if (n == 0) {
			fail(c, -ECONNRESET, "connection closed before the whole response");
			return;
		}
		if (he != HPE_OK) {
			fail(c, -EBADMSG, "bad HTTP response: %s", http_errno_description(he));
			return;
		}
	}
	/* Budget spent; TLS may hold decrypted bytes epoll cannot see. A
	 * millisecond, not 0: a timer due now would run again in this same
	 * pass of the loop, which would then never reach epoll_wait (nor
	 * the exchange's deadline). */
	loop_timer_in(c->loop, &c->resume, on_resume, 1);
}

static void on_resume(struct loop_timer *t)
{
	struct httpc *c = container_of(t, struct httpc, resume);

	talk(c);
	watch(c);
}

static void tls_step(struct httpc *c)
{
	char buf[160];
	unsigned long e;
	long v;
	int rc;

	ERR_clear_error();
	rc = SSL_do_handshake(c->ssl);
	if (rc == 1) {
		c->phase = HTTPC_TALK;
		talk(c);
		return;
	}
	switch (SSL_get_error(c->ssl, rc)) {
	case SSL_ERROR_WANT_READ:
		return;
	case SSL_ERROR_WANT_WRITE:
		c->want_write = true;
		return;
	default:
		break;
	}
	v = SSL_get_verify_result(c->ssl);
	if (v != X509_V_OK) {
		fail(c, -EPROTO, "TLS: the server's certificate: %s",
		     X509_verify_cert_error_string(v));
		return;
	}
	e = ERR_peek_last_error();
	if (e)
		ERR_error_string_n(e, buf, sizeof(buf));
	fail(c, -EPROTO, "TLS handshake: %s", e ? buf : "connection closed");
}

static void on_io(struct loop_io *io, uint32_t events)
{
	struct httpc *c = container_of(io, struct httpc, io);
	socklen_t len = sizeof(int);
	int err = 0;

	c->want_write = false;
	switch (c->phase) {
	case HTTPC_CONNECT:
		if (getsockopt(io->fd, SOL_SOCKET, SO_ERROR, &err, &len) || err) {
			err = err ? err : errno;
			fail(c, -err, "connect: %s", strerror(err));
			return;
		}
		if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
			break;
		if (c->ssl) {
			c->phase = HTTPC_TLS;
			tls_step(c);
		} else {
			c->phase = HTTPC_TALK;
			talk(c);
		}
		break;
	case HTTPC_TLS:
		tls_step(c);
		break;
	case HTTPC_TALK:
		talk(c);
		break;
	}
	watch(c); /* a no-op once c is finished (its fd is -1) */
}

/* --- starting --------------------------------------------------------------- */

/* Report a failure from the loop, not from inside httpc_start. */
static struct httpc *fail_later(struct httpc *c, int err, const char *what)
{
	snprintf(c->res.msg, sizeof(c->res.msg), "%s: %s", what, strerror(-err));
	c->res.err = err;
	c->res.phase = c->phase;
	loop_defer(c->loop, &c->report, on_report);
	return c;
}

static int tls_setup(struct httpc *c, const struct httpc_req *req)
{
	struct in6_addr a6;
	struct in_addr a4;
	bool literal;

	c->ssl = SSL_new(req->tls);
	if (!c->ssl || !SSL_set_fd(c->ssl, c->io.fd))
		return -ENOMEM;
	SSL_set_connect_state(c->ssl);
	if (!req->tls_name || !req->tls_name[0])
		return 0;
	literal = inet_pton(AF_INET, req->tls_name, &a4) == 1 ||
		  inet_pton(AF_INET6, req->tls_name, &a6) == 1;
	/* SNI carries names only (RFC 6066 3); an address is checked
	 * against the certificate's IP entries instead (RFC 6125 does not
	 * match addresses to DNS names). */
	if (literal)
		return X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), req->tls_name) == 1
			   ? 0
			   : -EINVAL;
	if (!SSL_set_tlsext_host_name(c->ssl, req->tls_name) ||
	    X509_VERIFY_PARAM_set1_host(SSL_get0_param(c->ssl), req->tls_name,
					strlen(req->tls_name)) != 1)
		return -EINVAL;
	return 0;
}

struct httpc *httpc_start(struct loop *l, const struct httpc_req *req, httpc_done_fn fn, void *ctx)
{
	size_t hl = strlen(req->head);
	struct httpc *c = calloc(1, sizeof(*c));
	int fd, rc;

	if (!c)
		return NULL;
	*c = (struct httpc){.loop = l,
			    .io = {.fd = -1, .fn = on_io},
			    .fn = fn,
			    .ctx = ctx,
			    .phase = HTTPC_CONNECT,
			    .timeout_ms = req->timeout_ms,
			    .max_body = req->max_body};
	c->out = malloc(hl + req->body_len + 1);
	if (!c->out) {
		free(c);
		errno = ENOMEM;
		return NULL;
	}
	memcpy(c->out, req->head, hl);
	if (req->body_len)
		memcpy(c->out + hl, req->body, req->body_len);
	c->out_len = hl + req->body_len;
	http_parser_init(&c->hp, HTTP_RESPONSE);
	c->hp.data = c;
	fd = socket(req->addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		rc = errno;
		free(c->out);
		free(c);
		errno = rc;
		return NULL;
	}
	c->io.fd = fd;
	loop_timer_in(l, &c->deadline, on_deadline, req->timeout_ms);
	if (req->tls && (rc = tls_setup(c, req))) {
		c->phase = HTTPC_TLS;
		return fail_later(c, rc, "TLS setup");
	}
	if (connect(fd, req->addr, req->addr_len) == 0) {
		/* A Unix socket connects at once: go straight to talking (or
		 * the handshake), when the loop says the socket is writable. */
		c->phase = c->ssl ? HTTPC_TLS : HTTPC_TALK;
		c->want_write = true;
	} else if (errno != EINPROGRESS) {
		return fail_later(c, -errno, "connect");
	}
	watch(c);
	return c;
}

void httpc_cancel(struct httpc *c)
{
	if (c)
		release(c);
}
