// SPDX-License-Identifier: GPL-2.0-only
/*
 * probe.c - active health checks (see probe.h).
 *
 * Two objects: a struct probe per probed backend lives as long as the
 * backend is in its cluster's set (its timer, its reference on the
 * upstream); a struct attempt is one connection, from connect to verdict,
 * and is freed at the end of the loop iteration that ends it (its loop_io
 * may still be named by an event of the same batch). An attempt always
 * ends before the next starts: timeout < interval (config.c).
 *
 * A finished attempt closes with a reset (SO_LINGER 0), as HAProxy's
 * checks do: a probe every couple of seconds per backend would otherwise
 * leave the proxy a TIME_WAIT socket per probe.
 */
#include "probe.h"

#include "grpc_health.h"
#include "list.h"
#include "log.h"
#include "tls.h"

#include <errno.h>
#include <http_parser.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <openssl/err.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define FIRST_SPREAD_MS 1000	    /* a new backend's first probe: within this */
#define ATTEMPT_RX_MAX	(64 * 1024) /* bytes an attempt reads: answers are small */
#define GRPC_MSG_MAX	64	    /* a HealthCheckResponse is a few bytes */

/* --- the state machine (pure) --------------------------------- */

bool l7_active_feed(struct l7_up_active *a, bool ok, uint32_t rise, uint32_t fall)
{
	uint32_t st = __atomic_load_n(&a->state, __ATOMIC_RELAXED), next = st;

	a->probes++;
	if (ok) {
		a->fail_streak = 0;
		if (a->ok_streak < UINT32_MAX)
			a->ok_streak++;
		/* Unchecked is served already: a first pass confirms it. */
		if (st == L7_ACTIVE_UNCHECKED || (st == L7_ACTIVE_DOWN && a->ok_streak >= rise))
			next = L7_ACTIVE_UP;
	} else {
		a->failures++;
		a->ok_streak = 0;
		if (a->fail_streak < UINT32_MAX)
			a->fail_streak++;
		/* Unchecked goes down as up does: one lost probe of a busy
		 * new backend must not take it out. */
		if (st != L7_ACTIVE_DOWN && a->fail_streak >= fall)
			next = L7_ACTIVE_DOWN;
	}
	if (next == st)
		return false;
	__atomic_store_n(&a->state, next, __ATOMIC_RELAXED);
	return true;
}

/* --- objects --------------------------------------------------------------------- */

struct probe_cluster {
	const struct l7_cluster_cfg *cc;
	SSL_CTX *ssl_ctx; /* TLS clusters: the cluster's CA, SNI, client certificate */
	struct dlist probes;
};

struct l7_probes {
	struct loop *loop;
	const struct l7_config *cfg;
	struct l7_upstreams *ups;
	struct probe_cluster *cl; /* one per config cluster (unused without health) */
	uint32_t gen;		  /* sync round */
	unsigned seed;
};

struct attempt;

struct probe {
	struct l7_probes *ps;
	struct probe_cluster *pc;
	struct l7_upstream *up; /* a reference of ours */
	struct dlist link;	/* in pc->probes */
	uint32_t gen;		/* last sync that found up in the set */
	struct loop_timer next;
	struct attempt *at;   /* in flight, or NULL */
	SSL_SESSION *session; /* TLS: the last one, resumed by the next probe */
};

enum phase { P_CONNECT, P_TLS, P_TALK };

struct attempt {
	struct probe *p;
	struct loop_io io;
	struct loop_timer deadline;
	enum phase phase;
	SSL *ssl;
	bool want_write; /* TLS wants the socket writable */
	size_t rx;	 /* bytes read */
	uint8_t out[8192];
	size_t out_len, out_off;
	char authority[300];
	/* HTTP/1.1 */
	http_parser hp;
	/* HTTP/2 */
	nghttp2_session *h2;
	int32_t sid;
	bool closed; /* our stream is closed */
	uint32_t rst_code;
	int grpc_status; /* -1: none seen */
	uint8_t msg[GRPC_MSG_MAX + 1];
	size_t msg_len; /* > GRPC_MSG_MAX: too large */
	uint8_t req[5 + 2 + 127];
	size_t req_len, req_off;
	/* both */
	int status; /* HTTP status, 0 until the head */
	bool head;  /* the response head is in */
};

/* --- verdicts -------------------------------------------------------------------- */

/* End a's connection and free it after this iteration. */
static void attempt_free(struct attempt *a)
{
	struct loop *loop = a->p->ps->loop;

	if (a->io.fd >= 0) {
		struct linger lg = {.l_onoff = 1, .l_linger = 0};

		setsockopt(a->io.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	}
	loop_timer_cancel(loop, &a->deadline);
	loop_io_close(loop, &a->io);
	if (a->ssl)
		SSL_free(a->ssl);
	if (a->h2)
		nghttp2_session_del(a->h2);
	a->ssl = NULL;
	a->h2 = NULL;
	a->p->at = NULL;
	loop_free_later(loop, a);
}

static void verdict(struct attempt *a, bool ok, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * The probe could not even be made, for a reason of the proxy's own (no
 * descriptor, no memory, no local port): say so, but give no verdict: a
 * proxy short of descriptors must not take healthy backends out.
 */
static void no_verdict(struct attempt *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void no_verdict(struct attempt *a, const char *fmt, ...)
{
	struct l7_up_active *st = &a->p->up->active;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(st->last_error, sizeof(st->last_error), fmt, ap);
	va_end(ap);
	attempt_free(a);
}

/* Errors that are the proxy's, not the backend's. */
static bool local_error(int err)
{
	return err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM ||
	       err == EADDRNOTAVAIL;
}
static void verdict(struct attempt *a, bool ok, const char *fmt, ...)
{
	struct probe *p = a->p;
	const struct l7_health_cfg *h = &p->pc->cc->health;
	struct l7_up_active *st = &p->up->active;
	va_list ap;

	if (!ok) {
		va_start(ap, fmt);
		vsnprintf(st->last_error, sizeof(st->last_error), fmt, ap);
		va_end(ap);
	}
	st->last_check_ms = p->ps->loop->now_ms;
	/* A probe every interval per backend would be a full handshake
	 * each time: resume instead, as the workers do. After a failure the
	 * next probe verifies the certificate again (a full handshake). */
	if (!ok && p->session) {
		SSL_SESSION_free(p->session);
		p->session = NULL;
	} else if (ok && a->ssl) {
		SSL_SESSION *sess = SSL_get1_session(a->ssl);

		if (sess && SSL_SESSION_is_resumable(sess)) {
			SSL_SESSION_free(p->session);
			p->session = sess;
		} else {
			SSL_SESSION_free(sess);
		}
	}
	attempt_free(a);
	if (!l7_active_feed(st, ok, h->rise, h->fall))
		return;
	if (st->state == L7_ACTIVE_DOWN)
		log_warn("cluster %s: backend %s down by active health after %u failed probes "
			 "(%s)",
			 p->pc->cc->name, p->up->name, h->fall, st->last_error);
	else
		log_info("cluster %s: backend %s up by active health", p->pc->cc->name,
			 p->up->name);
}

static void on_deadline(struct loop_timer *t)
{
	struct attempt *a = container_of(t, struct attempt, deadline);
	static const char *const phases[] = {"connecting", "in the TLS handshake",
					     "waiting for the answer"};

	verdict(a, false, "timeout after %u ms %s", a->p->pc->cc->health.timeout_ms,
		phases[a->phase]);
}

/* --- transport ------------------------------------------------------------------- */

/* Read: > 0 bytes, 0 end of stream, -EAGAIN, another -errno; -EMSGSIZE past
 * ATTEMPT_RX_MAX (a server streaming at us must not hold the main loop). */
static ssize_t rx(struct attempt *a, void *buf, size_t len)
{
	ssize_t n;

	if (a->rx >= ATTEMPT_RX_MAX)
		return -EMSGSIZE;
	if (!a->ssl) {
		n = recv(a->io.fd, buf, len, 0);
		if (n < 0)
			return errno == EAGAIN || errno == EINTR ? -EAGAIN : -errno;
	} else {
		ERR_clear_error();
		errno = 0;
		n = SSL_read(a->ssl, buf, (int)len);
		if (n <= 0) {
			switch (SSL_get_error(a->ssl, (int)n)) {
			case SSL_ERROR_WANT_READ:
				return -EAGAIN;
			case SSL_ERROR_WANT_WRITE:
				a->want_write = true;
				return -EAGAIN;
			case SSL_ERROR_ZERO_RETURN:
				return 0;
			case SSL_ERROR_SYSCALL:
				return errno && errno != EAGAIN ? -errno : 0;
			default:
				return -EPROTO;
			}
		}
	}
	a->rx += (size_t)n;
	return n;
}

/* Write: bytes taken (0 when the socket is full), or -errno. */
static ssize_t tx(struct attempt *a, const void *buf, size_t len)
{
	ssize_t n;

	if (!a->ssl) {
		n = send(a->io.fd, buf, len, MSG_NOSIGNAL);
		if (n < 0)
			return errno == EAGAIN || errno == EINTR ? 0 : -errno;
		return n;
	}
	ERR_clear_error();
	errno = 0;
	n = SSL_write(a->ssl, buf, (int)len);
	if (n > 0)
		return n;
	switch (SSL_get_error(a->ssl, (int)n)) {
	case SSL_ERROR_WANT_WRITE:
		a->want_write = true;
		return 0;
	case SSL_ERROR_WANT_READ:
		return 0;
	default:
		return errno && errno != EAGAIN ? -errno : -EPROTO;
	}
}

/* Send what is buffered, and (HTTP/2) what nghttp2 has; 0 or -errno. */
static int flush(struct attempt *a)
{
	for (;;) {
		ssize_t n;

		if (a->out_off == a->out_len && a->h2 && nghttp2_session_want_write(a->h2)) {
			const uint8_t *d;
			ssize_t m = nghttp2_session_mem_send(a->h2, &d);

			if (m < 0)
				return -EPROTO;
			if (m == 0) /* nothing it may send yet (flow control) */
				return 0;
			/* Our frames are a preface, SETTINGS, one small request
			 * and acknowledgements: never near this. */
			if ((size_t)m > sizeof(a->out))
				return -EMSGSIZE;
			memcpy(a->out, d, (size_t)m);
			a->out_len = (size_t)m;
			a->out_off = 0;
		}
		if (a->out_off == a->out_len)
			return 0;
		n = tx(a, a->out + a->out_off, a->out_len - a->out_off);
		if (n <= 0)
			return (int)n;
		a->out_off += (size_t)n;
	}
}

/* --- HTTP/1.1 ------------------------------------------------------------------- */

static int h1_on_head(http_parser *hp)
{
	struct attempt *a = hp->data;

	/* An interim response (103 Early Hints, 100) is not the answer: the
	 * parser goes on to the final one. */
	if (hp->status_code >= 100 && hp->status_code < 200 && hp->status_code != 101)
		return 0;
	a->status = (int)hp->status_code;
	a->head = true;
	return 1; /* no body wanted: the head decides */
}

static const http_parser_settings h1_settings = {.on_headers_complete = h1_on_head};

static void h1_start(struct attempt *a)
{
	const struct l7_health_cfg *h = &a->p->pc->cc->health;
	int n = snprintf((char *)a->out, sizeof(a->out),
			 "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: portico-l7proxy-health\r\n"
			 "Accept: */*\r\nConnection: close\r\n\r\n",
			 h->path, a->authority);

	/* path and host are at most 255 bytes each: it fits. */
	a->out_len = n > 0 && (size_t)n < sizeof(a->out) ? (size_t)n : 0;
	http_parser_init(&a->hp, HTTP_RESPONSE);
	a->hp.data = a;
}

/*
 * Progress; returns once waiting for the socket or after the verdict.
 * Reads until the socket is empty (TLS may hold decrypted bytes that no
 * epoll event would announce); ATTEMPT_RX_MAX bounds it.
 */
static void h1_step(struct attempt *a)
{
	const struct l7_health_cfg *h = &a->p->pc->cc->health;
	char buf[4096];
	ssize_t n;
	int rc;

	if ((rc = flush(a)) < 0) {
		verdict(a, false, "send: %s", strerror(-rc));
		return;
	}
	while ((n = rx(a, buf, sizeof(buf))) != -EAGAIN) {
		if (n <= 0) {
			verdict(a, false, "%s before the response head",
				n ? strerror((int)-n) : "connection closed");
			return;
		}
		http_parser_execute(&a->hp, &h1_settings, buf, (size_t)n);
		if (a->head) {
			if ((uint32_t)a->status == h->expect)
				verdict(a, true, "HTTP %d", a->status);
			else
				verdict(a, false, "HTTP %d, expected %u", a->status, h->expect);
			return;
		}
		if (HTTP_PARSER_ERRNO(&a->hp) != HPE_OK) {
			verdict(a, false, "bad HTTP response: %s",
				http_errno_description(HTTP_PARSER_ERRNO(&a->hp)));
			return;
		}
	}
}

/* --- HTTP/2: GET path, or gRPC Health/Check ------------------------------------------ */

static ssize_t h2_body(nghttp2_session *s, int32_t sid, uint8_t *buf, size_t len, uint32_t *flags,
		       nghttp2_data_source *src, void *ud)
{
	struct attempt *a = ud;
	size_t n = a->req_len - a->req_off;

	(void)s;
	(void)sid;
	(void)src;
	if (n > len)
		n = len;
	memcpy(buf, a->req + a->req_off, n);
	a->req_off += n;
	if (a->req_off == a->req_len)
		*flags |= NGHTTP2_DATA_FLAG_EOF;
	return (ssize_t)n;
}

static int h2_on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name,
			size_t nlen, const uint8_t *value, size_t vlen, uint8_t flags, void *ud)
{
	struct attempt *a = ud;
	char v[8];

	(void)s;
	(void)flags;
	if (f->hd.stream_id != a->sid || vlen >= sizeof(v))
		return 0;
	memcpy(v, value, vlen);
	v[vlen] = '\0';
	/* grpc-status comes in the trailers, or in the only HEADERS of a
	 * trailers-only answer: take it from any. */
	if (nlen == 7 && memcmp(name, ":status", 7) == 0)
		a->status = atoi(v);
	else if (nlen == 11 && memcmp(name, "grpc-status", 11) == 0)
		a->grpc_status = atoi(v);
	return 0;
}

static int h2_on_frame(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
	struct attempt *a = ud;

	(void)s;
	if (f->hd.type == NGHTTP2_HEADERS && f->hd.stream_id == a->sid && a->status >= 200)
		a->head = true;
	return 0;
}

static int h2_on_data(nghttp2_session *s, uint8_t flags, int32_t sid, const uint8_t *data,
		      size_t len, void *ud)
{
	struct attempt *a = ud;

	(void)s;
	(void)flags;
	if (sid != a->sid)
		return 0;
	/* Past GRPC_MSG_MAX is not a health answer; msg_len stays past it. */
	if (a->msg_len > GRPC_MSG_MAX || len > GRPC_MSG_MAX - a->msg_len) {
		a->msg_len = GRPC_MSG_MAX + 1;
		return 0;
	}
	memcpy(a->msg + a->msg_len, data, len);
	a->msg_len += len;
	return 0;
}

static int h2_on_close(nghttp2_session *s, int32_t sid, uint32_t code, void *ud)
{
	struct attempt *a = ud;

	(void)s;
	if (sid == a->sid) {
		a->closed = true;
		a->rst_code = code;
	}
	return 0;
}

static nghttp2_session_callbacks *h2_callbacks(void)
{
	static nghttp2_session_callbacks *cbs; /* main thread only */

	if (!cbs && nghttp2_session_callbacks_new(&cbs) == 0) {
		nghttp2_session_callbacks_set_on_header_callback(cbs, h2_on_header);
		nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, h2_on_frame);
		nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, h2_on_data);
		nghttp2_session_callbacks_set_on_stream_close_callback(cbs, h2_on_close);
	}
	return cbs;
}

#define NV(n, v)                                                                                   \
	{                                                                                          \
		.name = (uint8_t *)(n), .value = (uint8_t *)(v), .namelen = sizeof(n) - 1,         \
		.valuelen = strlen(v), .flags = NGHTTP2_NV_FLAG_NONE                               \
	}

static int h2_start(struct attempt *a)
{
	const struct l7_health_cfg *h = &a->p->pc->cc->health;
	const char *scheme = a->ssl ? "https" : "http";
	nghttp2_settings_entry no_push = {.settings_id = NGHTTP2_SETTINGS_ENABLE_PUSH, .value = 0};
	char timeout[16];

	/* The server may give up when we do. */
	snprintf(timeout, sizeof(timeout), "%um", h->timeout_ms);
	a->grpc_status = -1;
	if (!h2_callbacks() || nghttp2_session_client_new(&a->h2, h2_callbacks(), a))
		return -ENOMEM;
	nghttp2_submit_settings(a->h2, NGHTTP2_FLAG_NONE, &no_push, 1);
	if (h->type == L7_HEALTH_HTTP) {
		const nghttp2_nv hdrs[] = {
		    NV(":method", "GET"),
		    NV(":scheme", scheme),
		    NV(":path", h->path),
		    NV(":authority", a->authority),
		    NV("user-agent", "portico-l7proxy-health"),
		};

		a->sid = nghttp2_submit_request(a->h2, NULL, hdrs, sizeof(hdrs) / sizeof(hdrs[0]),
						NULL, a);
	} else {
		nghttp2_data_provider body = {.read_callback = h2_body};
		const nghttp2_nv hdrs[] = {
		    NV(":method", "POST"),
		    NV(":scheme", scheme),
		    NV(":path", "/grpc.health.v1.Health/Check"),
		    NV(":authority", a->authority),
		    NV("content-type", "application/grpc"),
		    NV("te", "trailers"),
		    NV("grpc-timeout", timeout),
		    NV("user-agent", "portico-l7proxy-health"),
		};

		a->req_len = grpc_health_request(h->service, a->req, sizeof(a->req));
		if (!a->req_len)
			return -EINVAL;
		a->sid = nghttp2_submit_request(a->h2, NULL, hdrs, sizeof(hdrs) / sizeof(hdrs[0]),
						&body, a);
	}
	return a->sid < 0 ? -EIO : 0;
}

/* The gRPC verdict once our stream is closed. */
static void grpc_verdict(struct attempt *a)
{
	static const char *const serving[] = {"UNKNOWN", "SERVING", "NOT_SERVING",
					      "SERVICE_UNKNOWN"};
	int st;

	if (a->status != 200) {
		if (a->status)
			verdict(a, false, "HTTP %d", a->status);
		else
			verdict(a, false, "stream reset (HTTP/2 error %u) before an answer",
				a->rst_code);
		return;
	}
	if (a->grpc_status != 0) {
		if (a->grpc_status > 0 && grpc_code_name((unsigned)a->grpc_status))
			verdict(a, false, "grpc-status %d %s", a->grpc_status,
				grpc_code_name((unsigned)a->grpc_status));
		else
			verdict(a, false, "grpc-status %s",
				a->grpc_status < 0 ? "missing" : "out of range");
		return;
	}
	st = a->msg_len > GRPC_MSG_MAX ? -1 : grpc_health_status(a->msg, a->msg_len);
	if (st == 1)
		verdict(a, true, "SERVING");
	else if (st < 0)
		verdict(a, false, "malformed HealthCheckResponse");
	else
		verdict(a, false, "%s", st <= 3 ? serving[st] : "status not SERVING");
}

/* As h1_step: until the socket is empty or the verdict. */
static void h2_step(struct attempt *a)
{
	uint8_t buf[4096];
	ssize_t n;
	int rc;

	for (;;) {
		if ((rc = flush(a)) < 0) {
			verdict(a, false, "send: %s", strerror(-rc));
			return;
		}
		n = rx(a, buf, sizeof(buf));
		if (n == -EAGAIN)
			return;
		if (n <= 0) {
			verdict(a, false, "%s before the answer",
				n ? strerror((int)-n) : "connection closed");
			return;
		}
		if (nghttp2_session_mem_recv(a->h2, buf, (size_t)n) < 0) {
			verdict(a, false, "bad HTTP/2 from the backend");
			return;
		}
		if (a->p->pc->cc->health.type == L7_HEALTH_HTTP && (a->head || a->closed)) {
			const uint32_t want = a->p->pc->cc->health.expect;

			if (a->head && (uint32_t)a->status == want)
				verdict(a, true, "HTTP %d", a->status);
			else if (a->head)
				verdict(a, false, "HTTP %d, expected %u", a->status, want);
			else
				verdict(a, false, "stream reset (HTTP/2 error %u) before an answer",
					a->rst_code);
			return;
		}
		if (a->closed) {
			grpc_verdict(a);
			return;
		}
		/* GOAWAY covering our stream, or a session error: nothing more
		 * will come; say so now rather than at the timeout. */
		if (!nghttp2_session_want_read(a->h2) && !nghttp2_session_want_write(a->h2)) {
			verdict(a, false, "the backend ended the HTTP/2 session before an answer");
			return;
		}
	}
}

/* --- driving an attempt ---------------------------------------------------------- */

static bool uses_h2(const struct attempt *a)
{
	return !l7_proto_h1(a->p->pc->cc->proto);
}

static void app_step(struct attempt *a)
{
	if (uses_h2(a))
		h2_step(a);
	else
		h1_step(a);
}

static void app_start(struct attempt *a)
{
	a->phase = P_TALK;
	if (!uses_h2(a)) {
		h1_start(a);
	} else if (h2_start(a)) {
		no_verdict(a, "internal: cannot start an HTTP/2 session");
		return;
	}
	app_step(a);
}

static void tls_step(struct attempt *a)
{
	const uint8_t *alpn;
	unsigned alpn_len;
	char buf[160];
	unsigned long e;
	int rc;

	ERR_clear_error();
	rc = SSL_do_handshake(a->ssl);
	if (rc != 1) {
		switch (SSL_get_error(a->ssl, rc)) {
		case SSL_ERROR_WANT_READ:
			return;
		case SSL_ERROR_WANT_WRITE:
			a->want_write = true;
			return;
		default:
			/* The verification result says more than the error
			 * queue's "certificate verify failed". */
			if (SSL_get_verify_result(a->ssl) != X509_V_OK) {
				verdict(
				    a, false, "TLS handshake: certificate: %s",
				    X509_verify_cert_error_string(SSL_get_verify_result(a->ssl)));
				return;
			}
			e = ERR_peek_last_error();
			if (e)
				ERR_error_string_n(e, buf, sizeof(buf));
			verdict(a, false, "TLS handshake: %s", e ? buf : "connection closed");
			return;
		}
	}
	SSL_get0_alpn_selected(a->ssl, &alpn, &alpn_len);
	if (uses_h2(a) && !(alpn_len == 2 && memcmp(alpn, "h2", 2) == 0)) {
		verdict(a, false, "TLS: the backend did not select ALPN h2");
		return;
	}
	app_start(a);
}

/* Wait for what a needs next. Every step ends with a flush, so what
 * nghttp2 still holds then waits for the peer (flow control), not for
 * the socket: no EPOLLOUT for it. */
static void attempt_watch(struct attempt *a)
{
	uint32_t ev = EPOLLIN;

	if (a->phase == P_CONNECT || a->want_write || a->out_off < a->out_len)
		ev |= EPOLLOUT;
	loop_io_watch(a->p->ps->loop, &a->io, ev);
}

static void on_io(struct loop_io *io, uint32_t events)
{
	struct attempt *a = container_of(io, struct attempt, io);
	socklen_t len = sizeof(int);
	int err = 0;

	a->want_write = false;
	switch (a->phase) {
	case P_CONNECT:
		if (getsockopt(io->fd, SOL_SOCKET, SO_ERROR, &err, &len) || err) {
			verdict(a, false, "connect: %s", strerror(err ? err : errno));
			return;
		}
		if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
			break;
		if (a->ssl) {
			a->phase = P_TLS;
			tls_step(a);
		} else {
			app_start(a);
		}
		break;
	case P_TLS:
		tls_step(a);
		break;
	case P_TALK:
		app_step(a);
		break;
	}
	/* After a verdict a is freed later and io->fd is -1: leave it. */
	if (io->fd >= 0)
		attempt_watch(a);
}

static void attempt_start(struct probe *p)
{
	const struct l7_health_cfg *h = &p->pc->cc->health;
	struct loop *loop = p->ps->loop;
	struct attempt *a = calloc(1, sizeof(*a));
	int one = 1, fd;

	if (!a) {
		snprintf(p->up->active.last_error, sizeof(p->up->active.last_error),
			 "internal: out of memory");
		/* No verdict: the proxy's memory is not the backend's health. */
		return;
	}
	a->p = p;
	a->io.fd = -1;
	a->io.fn = on_io;
	p->at = a;
	snprintf(a->authority, sizeof(a->authority), "%s", h->host[0] ? h->host : p->up->name);
	loop_timer_in(loop, &a->deadline, on_deadline, h->timeout_ms);
	fd = socket(p->up->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		no_verdict(a, "internal: socket: %s", strerror(errno));
		return;
	}
	a->io.fd = fd;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (p->pc->ssl_ctx) {
		a->ssl = SSL_new(p->pc->ssl_ctx);
		if (!a->ssl || !SSL_set_fd(a->ssl, fd) ||
		    l7_tls_client_setup(a->ssl, p->pc->cc->tls_sni)) {
			no_verdict(a, "internal: TLS setup failed");
			return;
		}
		SSL_set_connect_state(a->ssl);
		if (p->session)
			SSL_set_session(a->ssl, p->session);
	}
	if (connect(fd, (const struct sockaddr *)&p->up->addr, p->up->addr_len) &&
	    errno != EINPROGRESS) {
		if (local_error(errno))
			no_verdict(a, "internal: connect: %s", strerror(errno));
		else
			verdict(a, false, "connect: %s", strerror(errno));
		return;
	}
	a->phase = P_CONNECT;
	attempt_watch(a);
}

static void on_next(struct loop_timer *t)
{
	struct probe *p = container_of(t, struct probe, next);
	struct loop *loop = p->ps->loop;

	/* Start to start, so the period does not stretch by the latency. */
	loop_timer_in(loop, &p->next, on_next, p->pc->cc->health.interval_ms);
	if (p->at) /* cannot happen while timeout < interval; be sure */
		verdict(p->at, false, "timeout after %u ms", p->pc->cc->health.timeout_ms);
	attempt_start(p);
}

/* --- the set of probes ------------------------------------------------------------ */

static struct probe *probe_new(struct l7_probes *ps, struct probe_cluster *pc,
			       struct l7_upstream *up)
{
	uint32_t spread = pc->cc->health.interval_ms < FIRST_SPREAD_MS ? pc->cc->health.interval_ms
								       : FIRST_SPREAD_MS;
	struct probe *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->ps = ps;
	p->pc = pc;
	l7_upstream_get(up);
	p->up = up;
	up->active.probe = p;
	dlist_push(&pc->probes, &p->link);
	/* Spread the first probes so that a cluster's do not go in step. */
	loop_timer_in(ps->loop, &p->next, on_next, (uint64_t)rand_r(&ps->seed) % spread);
	return p;
}

static void probe_free(struct probe *p)
{
	if (p->at)
		attempt_free(p->at);
	loop_timer_cancel(p->ps->loop, &p->next);
	SSL_SESSION_free(p->session);
	dlist_del(&p->link);
	p->up->active.probe = NULL;
	l7_upstream_put(p->up);
	free(p);
}

int l7_probes_sync(struct l7_probes *ps)
{
	int rc = 0;

	if (!ps)
		return 0;
	ps->gen++;
	for (size_t ci = 0; ci < ps->cfg->n_clusters; ci++) {
		struct probe_cluster *pc = &ps->cl[ci];
		const struct l7_upset *s;
		struct dlist *l, *tmp;

		if (pc->cc->health.type == L7_HEALTH_NONE)
			continue;
		s = l7_upstreams_current(ps->ups, ci);
		for (size_t i = 0; i < s->n; i++) {
			struct l7_upstream *up = s->m[i].up;
			struct probe *p = up->active.probe;

			if (!p && !(p = probe_new(ps, pc, up))) {
				log_warn("cluster %s: backend %s: no memory for its health probe",
					 pc->cc->name, up->name);
				rc = -ENOMEM;
				continue;
			}
			p->gen = ps->gen;
		}
		dlist_each(l, tmp, &pc->probes)
		{
			struct probe *p = container_of(l, struct probe, link);

			if (p->gen != ps->gen)
				probe_free(p);
		}
	}
	return rc;
}

struct l7_probes *l7_probes_new(struct loop *loop, const struct l7_config *cfg,
				struct l7_upstreams *ups)
{
	struct l7_probes *ps = calloc(1, sizeof(*ps));
	char *err = NULL;

	if (!ps)
		goto fail;
	ps->loop = loop;
	ps->cfg = cfg;
	ps->ups = ups;
	ps->seed = (unsigned)getpid() ^ (unsigned)loop_clock_ms();
	ps->cl = calloc(cfg->n_clusters ? cfg->n_clusters : 1, sizeof(*ps->cl));
	if (!ps->cl)
		goto fail;
	for (size_t ci = 0; ci < cfg->n_clusters; ci++) {
		struct probe_cluster *pc = &ps->cl[ci];

		pc->cc = &cfg->clusters[ci];
		dlist_init(&pc->probes);
		if (pc->cc->health.type == L7_HEALTH_NONE || !l7_proto_tls(pc->cc->proto))
			continue;
		/* The probes' own context, built as the workers' is: a probe
		 * passes only if a request could (CA, name, client cert). */
		pc->ssl_ctx = l7_tls_client_ctx_new(pc->cc, &err);
		if (!pc->ssl_ctx) {
			log_err("cluster %s: health probes: %s", pc->cc->name,
				err ? err : "TLS setup failed");
			free(err);
			errno = EINVAL;
			l7_probes_free(ps);
			return NULL;
		}
	}
	if (l7_probes_sync(ps))
		log_warn("health probes: some backends got none (out of memory)");
	return ps;
fail:
	log_err("health probes: out of memory");
	l7_probes_free(ps);
	errno = ENOMEM;
	return NULL;
}

void l7_probes_free(struct l7_probes *ps)
{
	if (!ps)
		return;
	for (size_t ci = 0; ps->cl && ci < ps->cfg->n_clusters; ci++) {
		struct probe_cluster *pc = &ps->cl[ci];

		if (!pc->cc)
			continue; /* l7_probes_new stopped before it */
		while (!dlist_empty(&pc->probes))
			probe_free(container_of(dlist_first(&pc->probes), struct probe, link));
		SSL_CTX_free(pc->ssl_ctx);
	}
	free(ps->cl);
	free(ps);
}
