// SPDX-License-Identifier: GPL-2.0-only
/*
 * health.c - probes through the encapsulation (see health.h).
 *
 * A check owns at most one probe in flight. A probe is its own object: once
 * its verdict is in, it leaves the check and, for HTTP and gRPC, lingers a
 * little to let the server close first (so the server, not this LB, keeps
 * the TIME_WAIT); a TCP-connect probe and any failed probe close at once
 * with a reset, as HAProxy's checks do. Every phase runs under the probe's
 * one deadline.
 */
#include "grpc_health.h"
#include "health.h"
#include "lb_abi.h"
#include "list.h"
#include "log.h"
#include "vipspec.h"

#include <errno.h>
#include <http_parser.h>
#include <stdarg.h>
#include <stddef.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define LINGER_MS 1000 /* most a finished probe waits for the server's close */

const char *hc_state_name(enum hc_state s)
{
	switch (s) {
	case HC_UP:
		return "up";
	case HC_DOWN:
		return "down";
	case HC_UNCHECKED:
		return "unchecked";
	default:
		return "unknown";
	}
}

bool hc_fsm_feed(struct hc_fsm *f, bool ok, uint32_t rise, uint32_t fall)
{
	switch (f->state) {
	case HC_UNKNOWN:
		if (!ok && ++f->streak < fall)
			return false;
		f->state = ok ? HC_UP : HC_DOWN;
		f->streak = 0;
		return true;
	case HC_UP:
	case HC_DOWN: {
		/* A result that agrees with the state breaks any streak;
		 * `fall` (or `rise`) disagreeing ones in a row flip it. */
		bool up = f->state == HC_UP;

		if (ok == up) {
			f->streak = 0;
			return false;
		}
		if (++f->streak < (up ? fall : rise))
			return false;
		f->state = up ? HC_DOWN : HC_UP;
		f->streak = 0;
		return true;
	}
	default:
		return false; /* UNCHECKED: no probes */
	}
}

struct probe;

struct check {
	struct health *h;
	struct hc_target t; /* t.cfg points at cfg below */
	struct lbd_health_cfg cfg;
	struct hc_fsm fsm;
	struct hc_info info;
	struct loop_timer next; /* start of the next probe */
	uint64_t started_ms;	/* of the probe in flight or the last one */
	struct probe *probe;	/* in flight, or NULL */
	bool keep;		/* marker for health_set_targets */
};

struct health {
	struct loop *loop;
	health_change_fn fn;
	void *ctx;
	SSL_CTX *tls;
	struct check **checks;
	size_t n, cap;
	struct dlist probes; /* every live probe, lingering ones included */
	unsigned seed;
};

enum phase { P_CONNECT, P_TLS, P_TALK, P_LINGER };

#define PROBE_RX_MAX (64 * 1024) /* bytes a probe reads per phase */

struct probe {
	struct health *h;
	struct dlist link; /* in h->probes */
	struct check *c;   /* NULL once the verdict is in (lingering) or the check went */
	struct loop_io io;
	struct loop_timer deadline;
	enum phase phase;
	enum lbd_hc_kind kind;
	bool want_write; /* TLS asked for POLLOUT */
	SSL *ssl;
	struct timespec t0;
	/* Bytes to send: an HTTP/1.1 request, or what nghttp2 produced. */
	uint8_t out[2048];
	size_t out_len, out_off;
	size_t rx_bytes; /* read in this phase (talk, then linger) */
	/* HTTP/1.1 */
	http_parser hp;
	int status;
	bool head_done;
	/* gRPC */
	nghttp2_session *h2;
	int32_t stream_id;
	int grpc_status; /* -1: not seen */
	int serving;	 /* HealthCheckResponse.status; -1: no message */
	uint8_t msg[64];
	size_t msg_len;
	bool stream_closed;
	uint8_t req[5 + 2 + 128];
	size_t req_len, req_off;
	char authority[300];
};

static uint64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint32_t elapsed_us(const struct timespec *t0)
{
	struct timespec now;
	int64_t us;

	clock_gettime(CLOCK_MONOTONIC, &now);
	us = (now.tv_sec - t0->tv_sec) * 1000000LL + (now.tv_nsec - t0->tv_nsec) / 1000;
	return us < 0 ? 0 : (uint32_t)us;
}

static void check_schedule(struct check *c);

/* Close the socket and free the probe after this loop iteration. */
static void probe_free(struct probe *p, bool reset)
{
	if (p->io.fd >= 0 && reset) {
		/* A reset, not a FIN: no TIME_WAIT left on this LB. */
		struct linger lg = {.l_onoff = 1, .l_linger = 0};

		setsockopt(p->io.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	}
	loop_timer_cancel(p->h->loop, &p->deadline);
	loop_io_close(p->h->loop, &p->io);
	if (p->ssl)
		SSL_free(p->ssl);
	if (p->h2)
		nghttp2_session_del(p->h2);
	p->ssl = NULL;
	p->h2 = NULL;
	if (p->c)
		p->c->probe = NULL;
	p->c = NULL;
	if (dlist_linked(&p->link))
		dlist_del(&p->link);
	loop_free_later(p->h->loop, p);
}

static void report(struct check *c, bool ok, const char *result, uint32_t latency_us)
{
	struct health *h = c->h;
	enum hc_state from = c->fsm.state;
	char vip[96], real[LB_ADDR_STRLEN];

	c->info.last_ok = ok;
	snprintf(c->info.last_result, sizeof(c->info.last_result), "%s", result);
	c->info.last_probe_ms = wall_ms();
	if (ok)
		c->info.ok++;
	else
		c->info.failed++;
	if (latency_us)
		c->info.latency_us = latency_us;
	if (!hc_fsm_feed(&c->fsm, ok, c->cfg.rise, c->cfg.fall))
		return;
	c->info.state = c->fsm.state;
	c->info.last_change_ms = c->info.last_probe_ms;
	vipspec_str(&c->t.vip, vip, sizeof(vip));
	lb_addr_str(&c->t.real, real, sizeof(real));
	if (c->fsm.state == HC_DOWN)
		log_warn("health: vip %s real %s: %s -> down (%s)", vip, real, hc_state_name(from),
			 result);
	else
		log_info("health: vip %s real %s: %s -> %s (%s)", vip, real, hc_state_name(from),
			 hc_state_name(c->fsm.state), result);
	h->fn(h->ctx, &c->t.vip, &c->t.real, from, c->fsm.state);
}

/*
 * The verdict of p. The check learns it and schedules its next probe; the
 * probe then lingers for the server's close (success of HTTP/gRPC) or
 * closes with a reset.
 */
static void verdict(struct probe *p, bool ok, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void verdict(struct probe *p, bool ok, const char *fmt, ...)
{
	struct check *c = p->c;
	char msg[128];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (c) {
		p->c = NULL;
		c->probe = NULL;
		report(c, ok, msg, ok || p->phase > P_CONNECT ? elapsed_us(&p->t0) : 0);
		check_schedule(c);
	}
	if (!ok || p->kind == LBD_HC_TCP || p->io.fd < 0) {
		probe_free(p, true);
		return;
	}
	p->phase = P_LINGER;
	p->rx_bytes = 0;
	if (p->h2) {
		nghttp2_session_terminate_session(p->h2, NGHTTP2_NO_ERROR);
		p->out_len = p->out_off = 0;
	}
	loop_timer_in(p->h->loop, &p->deadline, p->deadline.fn, LINGER_MS);
}

static const char *phase_name(enum phase ph)
{
	static const char *const n[] = {"connecting", "in the TLS handshake",
					"waiting for the answer", "closing"};

	return n[ph];
}

static void on_deadline(struct loop_timer *t)
{
	struct probe *p = (struct probe *)((char *)t - offsetof(struct probe, deadline));

	if (p->phase == P_LINGER || !p->c) {
		probe_free(p, true);
		return;
	}
	verdict(p, false, "timeout after %u ms %s", p->c->cfg.timeout_ms, phase_name(p->phase));
}

/* --- transport: plain or TLS ------------------------------------------- */

static const char *tls_error(char *buf, size_t len)
{
	unsigned long e = ERR_peek_last_error();

	if (!e)
		return "connection closed";
	ERR_error_string_n(e, buf, len);
	return buf;
}

/*
 * Read: >0 bytes, 0 EOF, -EAGAIN nothing yet, other -errno; -EMSGSIZE once
 * the probe has read PROBE_RX_MAX bytes in this phase. A health answer is
 * small: a server that streams at us must not hold lbd's one thread (the
 * probe's deadline is a timer, and timers wait for this loop).
 */
static ssize_t p_read(struct probe *p, void *buf, size_t len)
{
	ssize_t n;

	if (p->rx_bytes >= PROBE_RX_MAX)
		return -EMSGSIZE;
	if (!p->ssl) {
		n = recv(p->io.fd, buf, len, 0);
		if (n < 0)
			return errno == EAGAIN || errno == EINTR ? -EAGAIN : -errno;
		p->rx_bytes += (size_t)n;
		return n;
	}
	ERR_clear_error();
	errno = 0; /* SSL_ERROR_SYSCALL leaves it alone on EOF */
	n = SSL_read(p->ssl, buf, (int)len);
	if (n > 0) {
		p->rx_bytes += (size_t)n;
		return n;
	}
	switch (SSL_get_error(p->ssl, (int)n)) {
	case SSL_ERROR_WANT_READ:
		return -EAGAIN;
	case SSL_ERROR_WANT_WRITE:
		p->want_write = true;
		return -EAGAIN;
	case SSL_ERROR_ZERO_RETURN:
		return 0;
	case SSL_ERROR_SYSCALL:
		/* EOF without close_notify, or a socket error: never "wait". */
		return errno && errno != EAGAIN && errno != EINTR ? -errno : 0;
	default:
		return -EPROTO;
	}
}

/* Write: bytes written (maybe 0 when the socket is full), or -errno. */
static ssize_t p_write(struct probe *p, const void *buf, size_t len)
{
	ssize_t n;

	if (!len)
		return 0;
	if (!p->ssl) {
		n = send(p->io.fd, buf, len, MSG_NOSIGNAL);
		if (n < 0)
			return errno == EAGAIN || errno == EINTR ? 0 : -errno;
		return n;
	}
	ERR_clear_error();
	errno = 0;
	n = SSL_write(p->ssl, buf, (int)len);
	if (n > 0)
		return n;
	switch (SSL_get_error(p->ssl, (int)n)) {
	case SSL_ERROR_WANT_WRITE:
		p->want_write = true;
		return 0;
	case SSL_ERROR_WANT_READ:
		return 0;
	default:
		return errno && errno != EAGAIN && errno != EINTR ? -errno : -EPROTO;
	}
}

/* Send what is buffered; 0 (maybe not all of it) or -errno. */
static int flush_out(struct probe *p)
{
	while (p->out_off < p->out_len) {
		ssize_t n = p_write(p, p->out + p->out_off, p->out_len - p->out_off);

		if (n < 0)
			return (int)n;
		if (n == 0)
			return 0;
		p->out_off += (size_t)n;
	}
	p->out_len = p->out_off = 0;
	return 0;
}

/* --- HTTP/1.1 ---------------------------------------------------------- */

static int on_headers_complete(http_parser *hp)
{
	struct probe *p = hp->data;

	p->status = (int)hp->status_code;
	p->head_done = true;
	return 2; /* stop here: no body follows that we want (see http_parser.h) */
}

static const http_parser_settings resp_settings = {.on_headers_complete = on_headers_complete};

static void http_start(struct probe *p)
{
	const struct lbd_health_cfg *cfg = &p->c->cfg;
	int n;

	n = snprintf((char *)p->out, sizeof(p->out),
		     "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: portico-lbd-health\r\n"
		     "Accept: */*\r\nConnection: close\r\n\r\n",
		     cfg->path, p->authority);
	p->out_len = n > 0 && (size_t)n < sizeof(p->out) ? (size_t)n : 0;
	http_parser_init(&p->hp, HTTP_RESPONSE);
	p->hp.data = p;
}

/* Progress an HTTP probe; returns once it waits for the socket. */
static void http_step(struct probe *p)
{
	uint8_t buf[4096];
	ssize_t n;
	int rc;

	if ((rc = flush_out(p)) < 0) {
		verdict(p, false, "send: %s", strerror(-rc));
		return;
	}
	for (;;) {
		n = p_read(p, buf, sizeof(buf));
		if (n == -EAGAIN)
			return;
		if (p->phase == P_LINGER) {
			if (n <= 0) /* the server closed (or reset): done */
				probe_free(p, n < 0);
			if (n <= 0)
				return;
			continue;
		}
		if (n < 0) {
			verdict(p, false, "receive: %s", strerror((int)-n));
			return;
		}
		if (n == 0) {
			verdict(p, false, "connection closed before a response");
			return;
		}
		http_parser_execute(&p->hp, &resp_settings, (const char *)buf, (size_t)n);
		if (p->head_done) {
			if ((uint32_t)p->status == p->c->cfg.expect_status)
				verdict(p, true, "HTTP %d", p->status);
			else
				verdict(p, false, "HTTP %d, expected %u", p->status,
					p->c->cfg.expect_status);
			return;
		}
		if (HTTP_PARSER_ERRNO(&p->hp) != HPE_OK) {
			verdict(p, false, "bad response: %s",
				http_errno_description(HTTP_PARSER_ERRNO(&p->hp)));
			return;
		}
	}
}

/* --- gRPC health over HTTP/2 ------------------------------------------- */

static ssize_t req_read(nghttp2_session *s, int32_t sid, uint8_t *buf, size_t len, uint32_t *flags,
			nghttp2_data_source *src, void *ud)
{
	struct probe *p = ud;
	size_t n = p->req_len - p->req_off;

	(void)s;
	(void)sid;
	(void)src;
	if (n > len)
		n = len;
	memcpy(buf, p->req + p->req_off, n);
	p->req_off += n;
	if (p->req_off == p->req_len)
		*flags |= NGHTTP2_DATA_FLAG_EOF;
	return (ssize_t)n;
}

static int on_h2_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name,
			size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
			void *ud)
{
	struct probe *p = ud;
	char v[16];

	(void)s;
	(void)flags;
	if (f->hd.stream_id != p->stream_id || valuelen >= sizeof(v))
		return 0;
	memcpy(v, value, valuelen);
	v[valuelen] = 0;
	if (namelen == 7 && !memcmp(name, ":status", 7))
		p->status = atoi(v);
	else if (namelen == 11 && !memcmp(name, "grpc-status", 11))
		p->grpc_status = atoi(v);
	return 0;
}

static int on_h2_data(nghttp2_session *s, uint8_t flags, int32_t sid, const uint8_t *data,
		      size_t len, void *ud)
{
	struct probe *p = ud;

	(void)s;
	(void)flags;
	if (sid != p->stream_id)
		return 0;
	/* The answer is a few bytes; more than fits is not a health answer.
	 * msg_len past the buffer marks that, and stays marked: the room
	 * must never be computed from it. */
	if (p->msg_len > sizeof(p->msg) || len > sizeof(p->msg) - p->msg_len) {
		p->msg_len = sizeof(p->msg) + 1;
		return 0;
	}
	memcpy(p->msg + p->msg_len, data, len);
	p->msg_len += len;
	return 0;
}

static int on_h2_close(nghttp2_session *s, int32_t sid, uint32_t code, void *ud)
{
	struct probe *p = ud;

	(void)s;
	(void)code;
	if (sid == p->stream_id)
		p->stream_closed = true;
	return 0;
}

static nghttp2_session_callbacks *h2_callbacks(void)
{
	static nghttp2_session_callbacks *cbs;

	if (!cbs && nghttp2_session_callbacks_new(&cbs) == 0) {
		nghttp2_session_callbacks_set_on_header_callback(cbs, on_h2_header);
		nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_h2_data);
		nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_h2_close);
	}
	return cbs;
}

static int grpc_start(struct probe *p)
{
	const struct lbd_health_cfg *cfg = &p->c->cfg;
	nghttp2_data_provider dp = {.read_callback = req_read};
	const char *scheme = cfg->tls ? "https" : "http";
	nghttp2_nv hdrs[] = {
#define NV(n, v) {(uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, strlen(v), NGHTTP2_NV_FLAG_NONE}
	    NV(":method", "POST"),
	    NV(":scheme", scheme),
	    NV(":path", "/grpc.health.v1.Health/Check"),
	    NV(":authority", p->authority),
	    NV("content-type", "application/grpc"),
	    NV("te", "trailers"),
	    NV("user-agent", "portico-lbd-health"),
	    NV("grpc-timeout", "1S"),
#undef NV
	};
	char timeout[16];

	/* The server may stop waiting when our deadline passes too. */
	snprintf(timeout, sizeof(timeout), "%um", cfg->timeout_ms);
	hdrs[7].value = (uint8_t *)timeout;
	hdrs[7].valuelen = strlen(timeout);
	p->req_len = grpc_health_request(cfg->service, p->req, sizeof(p->req));
	if (!p->req_len)
		return -EINVAL;
	p->grpc_status = -1;
	if (nghttp2_session_client_new(&p->h2, h2_callbacks(), p))
		return -ENOMEM;
	nghttp2_submit_settings(p->h2, NGHTTP2_FLAG_NONE, NULL, 0);
	p->stream_id =
	    nghttp2_submit_request(p->h2, NULL, hdrs, sizeof(hdrs) / sizeof(hdrs[0]), &dp, p);
	return p->stream_id < 0 ? -EIO : 0;
}

static void grpc_finish(struct probe *p)
{
	static const char *const serving[] = {"UNKNOWN", "SERVING", "NOT_SERVING",
					      "SERVICE_UNKNOWN"};
	int st;

	if (p->status != 200) {
		verdict(p, false, "HTTP %d", p->status);
		return;
	}
	if (p->grpc_status != 0) {
		if (p->grpc_status > 0 && grpc_code_name((unsigned)p->grpc_status))
			verdict(p, false, "grpc-status %s",
				grpc_code_name((unsigned)p->grpc_status));
		else
			verdict(p, false, "grpc-status %s", p->grpc_status < 0 ? "missing" : "?");
		return;
	}
	st = p->msg_len > sizeof(p->msg) ? -1 : grpc_health_status(p->msg, p->msg_len);
	if (st == 1)
		verdict(p, true, "SERVING");
	else if (st < 0)
		verdict(p, false, "malformed health response");
	else
		verdict(p, false, "%s", st <= 3 ? serving[st] : "status not SERVING");
}

static void grpc_step(struct probe *p)
{
	uint8_t buf[8192];
	ssize_t n;
	int rc;

	for (;;) {
		/* Out: what nghttp2 has, through our small buffer. */
		while (p->out_len == 0 && nghttp2_session_want_write(p->h2)) {
			const uint8_t *d;
			ssize_t m = nghttp2_session_mem_send(p->h2, &d);

			if (m <= 0)
				break;
			if ((size_t)m > sizeof(p->out)) {
				/* Only our preface + one small request: never this big. */
				verdict(p, false, "internal: HTTP/2 output too large");
				return;
			}
			memcpy(p->out, d, (size_t)m);
			p->out_len = (size_t)m;
			p->out_off = 0;
			if ((rc = flush_out(p)) < 0) {
				if (p->phase == P_LINGER)
					probe_free(p, true);
				else
					verdict(p, false, "send: %s", strerror(-rc));
				return;
			}
			if (p->out_len)
				break; /* socket full: wait for POLLOUT */
		}
		if (p->out_len && (rc = flush_out(p)) < 0) {
			verdict(p, false, "send: %s", strerror(-rc));
			return;
		}
		n = p_read(p, buf, sizeof(buf));
		if (n == -EAGAIN)
			return;
		if (n <= 0) {
			if (p->phase == P_LINGER)
				probe_free(p, n < 0);
			else
				verdict(p, false, "%s before the answer",
					n ? strerror((int)-n) : "connection closed");
			return;
		}
		if (p->phase == P_LINGER)
			continue; /* discard until the server closes */
		if (nghttp2_session_mem_recv(p->h2, buf, (size_t)n) < 0) {
			verdict(p, false, "bad HTTP/2 from the server");
			return;
		}
		if (p->stream_closed) {
			grpc_finish(p);
			return;
		}
	}
}

/* --- driving a probe ---------------------------------------------------- */

static void app_step(struct probe *p)
{
	if (p->kind == LBD_HC_HTTP)
		http_step(p);
	else
		grpc_step(p);
}

/* Wait for what the probe needs next (if it still exists). */
static void probe_watch(struct probe *p)
{
	uint32_t ev = EPOLLIN;

	if (p->io.fd < 0)
		return;
	if (p->phase == P_CONNECT || p->want_write || p->out_len ||
	    (p->h2 && nghttp2_session_want_write(p->h2)))
		ev |= EPOLLOUT;
	loop_io_watch(p->h->loop, &p->io, ev);
}

static void app_start(struct probe *p)
{
	p->phase = P_TALK;
	if (p->kind == LBD_HC_HTTP) {
		http_start(p);
	} else if (grpc_start(p)) {
		verdict(p, false, "internal: cannot start an HTTP/2 session");
		return;
	}
	app_step(p);
}

static void tls_step(struct probe *p)
{
	const uint8_t *alpn;
	unsigned alpn_len;
	char buf[160];
	int rc;

	ERR_clear_error();
	rc = SSL_do_handshake(p->ssl);
	if (rc != 1) {
		switch (SSL_get_error(p->ssl, rc)) {
		case SSL_ERROR_WANT_READ:
			return;
		case SSL_ERROR_WANT_WRITE:
			p->want_write = true;
			return;
		default:
			verdict(p, false, "TLS handshake: %s", tls_error(buf, sizeof(buf)));
			return;
		}
	}
	SSL_get0_alpn_selected(p->ssl, &alpn, &alpn_len);
	if (p->kind == LBD_HC_GRPC && !(alpn_len == 2 && !memcmp(alpn, "h2", 2))) {
		verdict(p, false, "TLS: the server did not select ALPN h2");
		return;
	}
	app_start(p);
}

static void on_io(struct loop_io *io, uint32_t events)
{
	struct probe *p = (struct probe *)((char *)io - offsetof(struct probe, io));
	int err = 0;
	socklen_t len = sizeof(err);

	p->want_write = false;
	switch (p->phase) {
	case P_CONNECT:
		if (getsockopt(io->fd, SOL_SOCKET, SO_ERROR, &err, &len) || err) {
			verdict(p, false, "connect: %s", strerror(err ? err : errno));
			return;
		}
		if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
			break;
		if (p->kind == LBD_HC_TCP) {
			verdict(p, true, "connected");
			return;
		}
		if (p->ssl) {
			p->phase = P_TLS;
			tls_step(p);
		} else {
			app_start(p);
		}
		break;
	case P_TLS:
		tls_step(p);
		break;
	case P_TALK:
	case P_LINGER:
		app_step(p);
		break;
	}
	/* p may be gone (freed later): only touch it if it is still live. */
	if (io->fd >= 0)
		probe_watch(p);
}

static void authority(const struct check *c, char *buf, size_t len)
{
	char a[LB_ADDR_STRLEN];
	bool v6 = c->t.vip.addr.family == LB_AF_INET6;
	bool dflt = c->cfg.port == (c->cfg.tls ? 443 : 80);

	if (c->cfg.host[0]) {
		snprintf(buf, len, "%s", c->cfg.host);
		return;
	}
	lb_addr_str(&c->t.vip.addr, a, sizeof(a));
	if (dflt)
		snprintf(buf, len, "%s%s%s", v6 ? "[" : "", a, v6 ? "]" : "");
	else
		snprintf(buf, len, "%s%s%s:%u", v6 ? "[" : "", a, v6 ? "]" : "", c->cfg.port);
}

static void probe_start(struct check *c)
{
	struct health *h = c->h;
	struct sockaddr_storage ss;
	struct probe *p;
	unsigned sl;
	int fd, one = 1;

	c->started_ms = h->loop->now_ms;
	p = calloc(1, sizeof(*p));
	if (!p) {
		report(c, false, "internal: out of memory", 0);
		check_schedule(c);
		return;
	}
	p->h = h;
	p->c = c;
	dlist_push(&h->probes, &p->link);
	p->kind = c->cfg.kind;
	p->io.fd = -1;
	p->io.fn = on_io;
	p->deadline.fn = on_deadline;
	c->probe = p;
	clock_gettime(CLOCK_MONOTONIC, &p->t0);
	authority(c, p->authority, sizeof(p->authority));
	loop_timer_in(h->loop, &p->deadline, on_deadline, c->cfg.timeout_ms);

	fd = socket(lb_addr_af(&c->t.vip.addr), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		verdict(p, false, "socket: %s", strerror(errno));
		return;
	}
	p->io.fd = fd;
	/* The mark is what sends this probe through the encapsulation to
	 * this one real (lb_hc_encap); without it the probe would go to the
	 * router and come back balanced to any real. */
	if (setsockopt(fd, SOL_SOCKET, SO_MARK, &c->t.mark, sizeof(c->t.mark))) {
		verdict(p, false, "SO_MARK: %s", strerror(errno));
		return;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (c->cfg.tls) {
		static const uint8_t alpn_h2[] = "\x02h2", alpn_h1[] = "\x08http/1.1";
		struct lb_addr tmp;

		p->ssl = SSL_new(h->tls);
		if (!p->ssl || !SSL_set_fd(p->ssl, fd)) {
			verdict(p, false, "internal: TLS setup failed");
			return;
		}
		SSL_set_connect_state(p->ssl);
		if (p->kind == LBD_HC_GRPC)
			SSL_set_alpn_protos(p->ssl, alpn_h2, sizeof(alpn_h2) - 1);
		else
			SSL_set_alpn_protos(p->ssl, alpn_h1, sizeof(alpn_h1) - 1);
		/* SNI is a host name, never an address (RFC 6066 3). */
		if (c->cfg.host[0] && lb_addr_parse(c->cfg.host, &tmp))
			SSL_set_tlsext_host_name(p->ssl, c->cfg.host);
	}
	sl = lb_addr_sockaddr(&c->t.vip.addr, c->cfg.port, &ss);
	if (connect(fd, (struct sockaddr *)&ss, sl) && errno != EINPROGRESS) {
		verdict(p, false, "connect: %s", strerror(errno));
		return;
	}
	p->phase = P_CONNECT;
	probe_watch(p);
}

static void on_next(struct loop_timer *t)
{
	struct check *c = (struct check *)((char *)t - offsetof(struct check, next));

	if (!c->probe)
		probe_start(c);
}

/* After a verdict: the next probe, sooner while a change is pending. */
static void check_schedule(struct check *c)
{
	uint64_t gap = c->fsm.streak ? c->cfg.fast_interval_ms : c->cfg.interval_ms;
	uint64_t at = c->started_ms + gap;

	if (at < c->h->loop->now_ms)
		at = c->h->loop->now_ms;
	loop_timer_at(c->h->loop, &c->next, on_next, at);
}

/* --- the set of checks --------------------------------------------------- */

struct health *health_new(struct loop *loop, health_change_fn fn, void *ctx)
{
	struct health *h = calloc(1, sizeof(*h));

	if (!h)
		return NULL;
	h->loop = loop;
	h->fn = fn;
	h->ctx = ctx;
	h->seed = (unsigned)getpid() ^ (unsigned)wall_ms();
	dlist_init(&h->probes);
	/* Probes check that a real answers, not who it is: no verification
	 * (the LB holds no CA for the service names), TLS 1.2 at least. */
	h->tls = SSL_CTX_new(TLS_client_method());
	if (!h->tls || !SSL_CTX_set_min_proto_version(h->tls, TLS1_2_VERSION) || !h2_callbacks()) {
		SSL_CTX_free(h->tls);
		free(h);
		errno = ENOMEM;
		return NULL;
	}
	SSL_CTX_set_verify(h->tls, SSL_VERIFY_NONE, NULL);
	SSL_CTX_set_session_cache_mode(h->tls, SSL_SESS_CACHE_OFF);
	return h;
}

static void check_free(struct check *c)
{
	loop_timer_cancel(c->h->loop, &c->next);
	if (c->probe) {
		struct probe *p = c->probe;

		p->c = NULL;
		c->probe = NULL;
		probe_free(p, true);
	}
	free(c);
}

void health_free(struct health *h)
{
	if (!h)
		return;
	for (size_t i = 0; i < h->n; i++)
		check_free(h->checks[i]);
	while (!dlist_empty(&h->probes)) /* the lingering ones */
		probe_free(container_of(dlist_first(&h->probes), struct probe, link), true);
	free(h->checks);
	SSL_CTX_free(h->tls);
	free(h);
}

static bool same_pair(const struct check *c, const struct l4lb_vip_key *vip,
		      const struct lb_addr *real)
{
	return lb_addr_equal(&c->t.vip.addr, &vip->addr) && c->t.vip.port == vip->port &&
	       c->t.vip.proto == vip->proto && lb_addr_equal(&c->t.real, real);
}

static struct check *find(const struct health *h, const struct l4lb_vip_key *vip,
			  const struct lb_addr *real)
{
	/* Linear: a PoP has tens of VIPs and reals; thousands of checks cost
	 * a few ms per change. */
	for (size_t i = 0; i < h->n; i++)
		if (same_pair(h->checks[i], vip, real))
			return h->checks[i];
	return NULL;
}

/* (Re)start probing c: the first probe soon, spread so that checks
 * started together do not probe in lockstep. */
static void check_kick(struct check *c)
{
	struct health *h = c->h;
	uint32_t spread = c->cfg.fast_interval_ms < 200 ? c->cfg.fast_interval_ms : 200;

	loop_timer_cancel(h->loop, &c->next);
	if (c->cfg.kind == LBD_HC_NONE)
		return;
	loop_timer_in(h->loop, &c->next, on_next, spread ? rand_r(&h->seed) % spread : 0);
}

int health_set_targets(struct health *h, const struct hc_target *t, size_t n)
{
	struct check **next = calloc(n ? n : 1, sizeof(*next));
	size_t m = 0;

	if (!next)
		return -ENOMEM;
	/* Allocate every new check first: on ENOMEM nothing has changed. */
	for (size_t i = 0; i < n; i++) {
		if (find(h, &t[i].vip, &t[i].real))
			continue;
		next[i] = calloc(1, sizeof(**next));
		if (!next[i]) {
			for (size_t j = 0; j < i; j++)
				free(next[j]);
			free(next);
			return -ENOMEM;
		}
	}
	for (size_t i = 0; i < h->n; i++)
		h->checks[i]->keep = false;
	for (size_t i = 0; i < n; i++) {
		struct check *c = next[i];

		if (c) {
			c->h = h;
			c->t = t[i];
			c->cfg = *t[i].cfg;
			c->t.cfg = &c->cfg;
			c->fsm.state = c->cfg.kind == LBD_HC_NONE ? HC_UNCHECKED : t[i].initial;
			c->info.state = c->fsm.state;
			c->keep = true;
			next[m++] = c;
			check_kick(c);
			continue;
		}
		c = find(h, &t[i].vip, &t[i].real);
		if (c->keep)
			continue; /* listed twice: once is enough */
		c->keep = true;
		next[m++] = c;
		if (!memcmp(&c->cfg, t[i].cfg, sizeof(c->cfg)) && c->t.mark == t[i].mark)
			continue;
		/* New settings: drop the probe in flight, keep the verdict. */
		c->cfg = *t[i].cfg;
		c->t.mark = t[i].mark;
		if (c->probe) {
			struct probe *p = c->probe;

			p->c = NULL;
			c->probe = NULL;
			probe_free(p, true);
		}
		if (c->cfg.kind == LBD_HC_NONE)
			c->fsm = (struct hc_fsm){.state = HC_UNCHECKED};
		else if (c->fsm.state == HC_UNCHECKED)
			/* It was serving unchecked: it stays up until the new
			 * probes say otherwise (`fall` of them), so turning
			 * checks on does not withdraw the VIP meanwhile. */
			c->fsm = (struct hc_fsm){.state = HC_UP};
		c->info.state = c->fsm.state;
		check_kick(c);
	}
	for (size_t i = 0; i < h->n; i++)
		if (!h->checks[i]->keep)
			check_free(h->checks[i]);
	free(h->checks);
	h->checks = next;
	h->n = m;
	h->cap = n;
	return 0;
}

int health_get(const struct health *h, const struct l4lb_vip_key *vip, const struct lb_addr *real,
	       struct hc_info *out)
{
	const struct check *c = find(h, vip, real);

	if (!c)
		return -ENOENT;
	*out = c->info;
	out->state = c->fsm.state;
	return 0;
}
