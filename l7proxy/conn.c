// SPDX-License-Identifier: GPL-2.0-only
/*
 * conn.c - the transport under every session: a non-blocking socket, TLS
 * when configured, an input pipe and an output pipe, one timer.
 *
 * conn_run() moves bytes until nothing moves: read (while the session
 * wants input and the input pipe is under CONN_IN_LIMIT), let the session
 * process, write. The epoll interest follows the state: EPOLLIN only while
 * the connection would read, EPOLLOUT only while output is blocked. With
 * level-triggered epoll, asking for an event the code will not act on is
 * a busy loop (a slow reader of a big download used to cost 75% of a core).
 *
 * Downstream connections start without a session: TLS connections pick
 * HTTP/2 or HTTP/1.1 from ALPN after the handshake, plain ones look at the
 * first bytes for the HTTP/2 connection preface (prior-knowledge h2c).
 */
#include "log.h"
#include "proxy.h"
#include "tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <openssl/err.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define MAX_ROUNDS	  16
#define LINGER_MS	  2000
#define LINGER_BYTES	  (256 * 1024)
#define PREFACE		  "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#define PREFACE_LEN	  24
#define DETECT_TIMEOUT_MS 10000

static void conn_run(struct conn *c);

static void on_io(struct loop_io *io, uint32_t events)
{
	struct conn *c = (struct conn *)io;

	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP))
		c->rd_ready = true;
	if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR))
		c->wr_ready = true;
	conn_run(c);
}

static void on_task(struct loop_task *t)
{
	conn_run((struct conn *)((char *)t - offsetof(struct conn, task)));
}

static void on_timer(struct loop_timer *t)
{
	struct conn *c = (struct conn *)((char *)t - offsetof(struct conn, timer));

	if (c->closed)
		return;
	if (c->lingering || c->close_after) {
		conn_close(c);
		return;
	}
	c->ops->timeout(c);
}

void conn_kick(struct conn *c)
{
	if (!c->closed)
		loop_defer(&c->w->loop, &c->task, on_task);
}

void conn_timer_at(struct conn *c, uint64_t at_ms)
{
	if (c->lingering || c->close_after)
		return; /* the close deadline stands */
	if (!at_ms) {
		loop_timer_cancel(&c->w->loop, &c->timer);
		return;
	}
	/* A deadline pushed back by activity keeps the earlier timer: the
	 * session checks its real deadline when it fires and re-arms. Most
	 * events move a deadline later, and this saves a heap operation on
	 * each of them. */
	if (loop_timer_armed(&c->timer) && c->timer.at_ms <= at_ms)
		return;
	loop_timer_at(&c->w->loop, &c->timer, on_timer, at_ms);
}

void conn_set_session(struct conn *c, const struct conn_ops *ops, void *sess)
{
	c->ops = ops;
	c->sess = sess;
}

struct conn *conn_new(struct worker *w, int fd, const struct conn_ops *ops, void *sess, SSL *ssl,
		      bool server, bool connecting)
{
	struct conn *c = calloc(1, sizeof(*c));
	int one = 1;

	if (!c) {
		SSL_free(ssl);
		close(fd);
		return NULL;
	}
	c->io = (struct loop_io){.fd = fd, .fn = on_io};
	c->w = w;
	c->ops = ops;
	c->sess = sess;
	c->server = server;
	c->connecting = connecting;
	c->want_read = true;
	c->wr_ready = !connecting;
	c->last_write_ms = w->loop.now_ms;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (ssl) {
		c->ssl = ssl;
		if (!SSL_set_fd(c->ssl, fd)) {
			SSL_free(c->ssl);
			close(fd);
			free(c);
			return NULL;
		}
		/* Callbacks (tickets, sessions) find the connection here. */
		SSL_set_app_data(c->ssl, c);
		if (server)
			SSL_set_accept_state(c->ssl);
		else
			SSL_set_connect_state(c->ssl);
		c->handshaking = true;
	}
	if (loop_io_watch(&w->loop, &c->io, connecting ? EPOLLOUT : EPOLLIN) < 0) {
		SSL_free(c->ssl);
		close(fd);
		free(c);
		return NULL;
	}
	return c;
}

void conn_close(struct conn *c)
{
	struct worker *w = c->w;

	if (c->closed)
		return;
	c->closed = true;
	loop_timer_cancel(&w->loop, &c->timer);
	loop_task_cancel(&c->task);
	if (c->ops && c->ops->destroy)
		c->ops->destroy(c);
	if (c->ssl) {
		SSL_free(c->ssl);
		c->ssl = NULL;
	}
	free(c->identity);
	c->identity = NULL;
	pipe_clear(&c->in, &w->pool);
	pipe_clear(&c->out, &w->pool);
	loop_io_close(&w->loop, &c->io);
	if (c->counted) {
		dlist_del(&c->w_link);
		worker_conn_closed(w);
	}
	loop_free_later(&w->loop, c);
}

void conn_close_gracefully(struct conn *c)
{
	if (c->closed || c->close_after)
		return;
	c->close_after = true;
	c->want_read = false;
	/* A client that never reads its last response does not keep us. */
	loop_timer_in(&c->w->loop, &c->timer, on_timer, c->w->cfg->client.send_timeout_ms);
	conn_kick(c);
}

const char *conn_alpn(const struct conn *c, unsigned *len)
{
	const unsigned char *p = NULL;

	*len = 0;
	if (c->ssl)
		SSL_get0_alpn_selected(c->ssl, &p, len);
	return (const char *)p;
}

static void fail(struct conn *c, int err)
{
	if (!c->closed)
		c->ops->error(c, err);
}

/* A read that brought nothing must not leave an idle connection holding
 * the block it reserved. */
static void drop_empty(struct conn *c)
{
	if (!c->in.len)
		pipe_clear(&c->in, &c->w->pool);
}

/* Read what is there into c->in (or discard it when lingering). Returns
 * true if anything happened (bytes, EOF or an error). */
static bool do_read(struct conn *c)
{
	bool pending = c->ssl && SSL_pending(c->ssl) > 0;
	size_t room;
	char *p;
	int n;

	if (c->rd_eof || !(c->want_read || c->lingering) || !(c->rd_ready || pending))
		return false;
	if (c->in.len >= CONN_IN_LIMIT && !c->lingering)
		return false;
	p = pipe_reserve(&c->in, &c->w->pool, &room);
	if (!p) {
		fail(c, ENOMEM);
		return true;
	}
	if (c->ssl) {
#ifdef OPENSSL_IS_BORINGSSL
		/* Early data ends once the handshake is confirmed and the
		 * session has taken every byte that came before: until then
		 * whatever is parsed counts as early (the safe side). */
		if (c->early && !c->in.len && !SSL_in_early_data(c->ssl))
			c->early = false;
#endif
		ERR_clear_error();
		errno = 0;
		n = SSL_read(c->ssl, p, (int)room);
		if (n <= 0) {
			int e = SSL_get_error(c->ssl, n);

			drop_empty(c);
			if (e == SSL_ERROR_WANT_READ) {
				c->rd_ready = false;
				return false;
			}
			if (e == SSL_ERROR_WANT_WRITE) {
				c->wr_ready = false;
				c->rd_ready = false;
				return false;
			}
			if (e == SSL_ERROR_ZERO_RETURN) {
				c->rd_eof = true;
				return true;
			}
			/* A TCP FIN without close_notify is an EOF too (many
			 * clients do it); anything else is a TLS error. */
			if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0 && errno == 0) {
				c->rd_eof = true;
				return true;
			}
			ERR_clear_error();
			fail(c, e == SSL_ERROR_SYSCALL && errno ? errno : EPROTO);
			return true;
		}
	} else {
		ssize_t r = recv(c->io.fd, p, room, 0);

		if (r <= 0)
			drop_empty(c);
		if (r < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				c->rd_ready = false;
				return false;
			}
			if (errno == EINTR)
				return true;
			fail(c, errno);
			return true;
		}
		if (r == 0) {
			c->rd_eof = true;
			return true;
		}
		/* Less than asked for: the socket is drained for now, and
		 * level-triggered epoll says when more comes. This saves the
		 * recv that would only return EAGAIN (one per response). */
		if ((size_t)r < room)
			c->rd_ready = false;
		n = (int)r;
	}
	if (c->lingering) {
		pipe_clear(&c->in, &c->w->pool);
		return true;
	}
	pipe_commit(&c->in, (size_t)n);
	return true;
}

static bool do_flush(struct conn *c)
{
	ssize_t n;

	if (!c->out.len || !c->wr_ready)
		return false;
	if (c->ssl) {
		size_t len;
		const char *p = pipe_peek(&c->out, &len);
		int r;

		ERR_clear_error();
		r = SSL_write(c->ssl, p, (int)len);
		if (r <= 0) {
			int e = SSL_get_error(c->ssl, r);

			if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
				c->wr_ready = false;
				return false;
			}
			ERR_clear_error();
			fail(c, e == SSL_ERROR_SYSCALL && errno ? errno : EPROTO);
			return true;
		}
		n = r;
	} else {
		struct iovec iov[16];
		int cnt = pipe_iov(&c->out, iov, 16);

		n = writev(c->io.fd, iov, cnt);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				c->wr_ready = false;
				return false;
			}
			if (errno == EINTR)
				return true;
			fail(c, errno);
			return true;
		}
	}
	pipe_consume(&c->out, &c->w->pool, (size_t)n);
	c->last_write_ms = c->w->loop.now_ms;
	return true;
}

/* After the last response byte is written: the lingering close. */
static void start_linger(struct conn *c)
{
	if (c->ssl) {
		ERR_clear_error();
		SSL_shutdown(c->ssl); /* close_notify, best effort */
		ERR_clear_error();
	}
	shutdown(c->io.fd, SHUT_WR);
	c->lingering = true;
	c->close_after = false;
	if (c->rd_eof) {
		conn_close(c);
		return;
	}
	loop_timer_in(&c->w->loop, &c->timer, on_timer, LINGER_MS);
}

static bool check_connected(struct conn *c)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (!c->wr_ready)
		return false;
	if (getsockopt(c->io.fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (err) {
		fail(c, err);
		return false;
	}
	c->connecting = false;
	c->last_write_ms = c->w->loop.now_ms;
	if (!c->ssl)
		c->ops->ready(c);
	return true;
}

static void server_handshake_done(struct conn *c)
{
	bool resumed = SSL_session_reused(c->ssl);
	char id[256];
	int n;

	STAT_INC(c->w, tls_handshakes);
	if (resumed)
		STAT_INC(c->w, tls_resumed);
	switch (l7_tls_version_minor(c->ssl)) {
	case 3:
		if (resumed)
			STAT_INC(c->w, tls13_resumed);
		else
			STAT_INC(c->w, tls13_full);
		break;
	case 2:
		if (resumed)
			STAT_INC(c->w, tls12_resumed);
		else
			STAT_INC(c->w, tls12_full);
		break;
	}
#ifdef OPENSSL_IS_BORINGSSL
	/* With 0-RTT the handshake "finishes" at the ClientHello: what
	 * follows may be early data until the client's Finished. */
	c->early = SSL_in_early_data(c->ssl);
	if (c->early)
		STAT_INC(c->w, tls_early_data);
#endif
	snprintf(c->tls_desc, sizeof(c->tls_desc), "%s/%s%s", SSL_get_version(c->ssl),
		 resumed ? "resumed" : "full", c->early ? "/0rtt" : "");
	n = l7_tls_peer_identity(c->ssl, id, sizeof(id));
	if (n > 0) {
		c->identity = strdup(id);
		STAT_INC(c->w, tls_client_identities);
	} else if (n == -2) {
		STAT_INC(c->w, tls_client_cert_expired);
	} else if (n < 0) {
		STAT_INC(c->w, tls_identity_unusable);
	}
}

static bool handshake(struct conn *c)
{
	int r, e;

	ERR_clear_error();
	r = SSL_do_handshake(c->ssl);
	if (r == 1) {
		c->handshaking = false;
		c->rd_ready = c->wr_ready = true;
		if (c->server)
			server_handshake_done(c);
		else if (SSL_session_reused(c->ssl))
			STAT_INC(c->w, upstream_tls_resumed);
		c->ops->ready(c);
		return !c->closed;
	}
	e = SSL_get_error(c->ssl, r);
	if (e == SSL_ERROR_WANT_READ) {
		c->rd_ready = false;
		return false;
	}
	if (e == SSL_ERROR_WANT_WRITE) {
		c->wr_ready = false;
		return false;
	}
	if (c->server) {
		unsigned long why = ERR_GET_REASON(ERR_peek_error());

		/* A client certificate that is missing or does not verify is
		 * refused with its alert, and counted apart from the rest. */
		if (SSL_get_verify_result(c->ssl) != X509_V_OK ||
		    why == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE ||
		    why == SSL_R_CERTIFICATE_VERIFY_FAILED)
			STAT_INC(c->w, tls_client_cert_rejected);
		else
			STAT_INC(c->w, tls_handshake_errors);
	}
	ERR_clear_error();
	fail(c, EPROTO);
	return false;
}

static void update_interest(struct conn *c)
{
	uint32_t ev = 0;

	if (c->connecting) {
		ev = EPOLLOUT;
	} else if (c->handshaking) {
		ev = c->wr_ready ? EPOLLIN : EPOLLOUT;
	} else {
		if (!c->rd_eof && (c->lingering || (c->want_read && c->in.len < CONN_IN_LIMIT)))
			ev |= EPOLLIN | EPOLLRDHUP;
		if (c->out.len && !c->wr_ready)
			ev |= EPOLLOUT;
		/* Bytes TLS already decrypted do not wake epoll. */
		if (c->ssl && c->want_read && c->in.len < CONN_IN_LIMIT && SSL_pending(c->ssl) > 0)
			conn_kick(c);
	}
	if (loop_io_watch(&c->w->loop, &c->io, ev) < 0)
		fail(c, errno ? errno : EIO);
}

static void conn_run(struct conn *c)
{
	if (c->closed)
		return;
	if (c->in_process) {
		conn_kick(c);
		return;
	}
	c->in_process = true;
	if (c->connecting && !check_connected(c))
		goto out;
	if (c->handshaking && !handshake(c))
		goto out;
	for (int round = 0; round < MAX_ROUNDS && !c->closed; round++) {
		bool moved = false;

		moved |= do_read(c);
		if (c->closed)
			break;
		if (c->lingering) {
			if (c->rd_eof || c->in.len > LINGER_BYTES)
				conn_close(c);
			if (!moved)
				break;
			continue;
		}
		moved |= c->ops->process(c);
		if (c->closed)
			break;
		moved |= do_flush(c);
		if (c->closed)
			break;
		if (c->close_after && !c->out.len) {
			start_linger(c);
			continue;
		}
		if (!moved)
			break;
		if (round == MAX_ROUNDS - 1)
			conn_kick(c); /* a fair share: let others run */
	}
out:
	if (!c->closed)
		update_interest(c);
	c->in_process = false;
}

/* --- downstream: accept and pick the protocol -------------------------- */

static bool detect_process(struct conn *c)
{
	char head[PREFACE_LEN];
	size_t n = pipe_copy_out(&c->in, head, sizeof(head));

	if (n < PREFACE_LEN && memcmp(head, PREFACE, n) == 0 && !c->rd_eof)
		return false; /* could still be the preface */
	conn_timer_at(c, 0);
	if (n == PREFACE_LEN && memcmp(head, PREFACE, n) == 0) {
		if (h2s_start(c))
			conn_close(c);
	} else {
		h1s_start(c);
	}
	return true;
}

static void detect_error(struct conn *c, int err)
{
	(void)err;
	conn_close(c);
}

static void detect_timeout(struct conn *c)
{
	STAT_INC(c->w, client_timeouts);
	conn_close(c);
}

/* TLS done: ALPN says which session. */
static void detect_ready(struct conn *c)
{
	unsigned len;
	const char *alpn = conn_alpn(c, &len);

	conn_timer_at(c, 0);
	if (alpn && len == 2 && memcmp(alpn, "h2", 2) == 0) {
		if (h2s_start(c))
			conn_close(c);
	} else {
		h1s_start(c);
	}
}

static const struct conn_ops detect_ops = {
    .process = detect_process,
    .error = detect_error,
    .timeout = detect_timeout,
    .ready = detect_ready,
};

struct conn *conn_accept(struct worker *w, int fd, const struct sockaddr_storage *peer, bool tls,
			 enum l7_client_auth auth)
{
	SSL *ssl = NULL;
	struct conn *c;

	if (tls && !(ssl = l7_tls_server_ssl(w->ssl_ctx, auth))) {
		close(fd);
		return NULL;
	}
	c = conn_new(w, fd, &detect_ops, NULL, ssl, true, false);
	if (!c)
		return NULL;
	c->counted = true;
	dlist_push(&w->conns, &c->w_link);
	w->n_conns++;
	STAT_INC(w, accepted);
	STAT_INC(w, conns_open);
	if (peer->ss_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)peer)->sin_addr, c->peer_ip,
			  sizeof(c->peer_ip));
	else
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)peer)->sin6_addr, c->peer_ip,
			  sizeof(c->peer_ip));
	/* The handshake and the first bytes share the head deadline. */
	conn_timer_at(c, w->loop.now_ms + (w->cfg->client.header_timeout_ms < DETECT_TIMEOUT_MS
					       ? w->cfg->client.header_timeout_ms
					       : DETECT_TIMEOUT_MS));
	c->rd_ready = true; /* data may already be there */
	conn_run(c);
	return c;
}
