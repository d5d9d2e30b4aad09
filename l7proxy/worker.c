// SPDX-License-Identifier: GPL-2.0-only
/*
 * worker.c - one thread per core: its own SO_REUSEPORT listeners (the
 * kernel spreads connections over the workers), its own event loop,
 * buffer pool, upstream pools and access-log buffer.
 *
 * Accepting is bounded: at client.max_connections open connections the
 * listeners leave the loop until one closes, and when accept() runs out
 * of descriptors (EMFILE) they leave it for a moment instead of waking the
 * loop again at once (a full fd table used to spin a core and log 1.4 M
 * lines in 3 s).
 */
#include "listener.h"
#include "log.h"
#include "worker.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/filter.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>
#include <urcu/urcu-memb.h>

#define ACCEPT_BATCH	 64
#define EMFILE_PAUSE_MS	 100
#define POOL_FREE_BLOCKS 256 /* 4 MiB of blocks kept for reuse per worker */

struct listener {
	struct loop_io io;
	struct worker *w;
	bool tls;
	enum l7_client_auth auth;
};

void worker_reqid(struct worker *w, char *out)
{
	static const char hex[] = "0123456789abcdef";

	if (w->rnd_used + 16 > sizeof(w->rnd)) {
		if (getrandom(w->rnd, sizeof(w->rnd), 0) != (ssize_t)sizeof(w->rnd))
			require(!"getrandom failed");
		w->rnd_used = 0;
	}
	for (int i = 0; i < 16; i++) {
		out[2 * i] = hex[w->rnd[w->rnd_used + i] >> 4];
		out[2 * i + 1] = hex[w->rnd[w->rnd_used + i] & 15];
	}
	out[32] = '\0';
	w->rnd_used += 16;
}

uint64_t worker_rand(struct worker *w)
{
	/* xorshift64*: balancing choices, not secrets. */
	w->rng ^= w->rng >> 12;
	w->rng ^= w->rng << 25;
	w->rng ^= w->rng >> 27;
	return w->rng * 2685821657736338717ull;
}

static void log_flush(struct worker *w)
{
	if (w->loglen && w->log_fd >= 0 && write(w->log_fd, w->logbuf, w->loglen) < 0)
		log_warn("worker %d: access log: %s", w->id, strerror(errno));
	w->loglen = 0;
}

void worker_log(struct worker *w, const char *line, size_t len)
{
	if (w->loglen + len > sizeof(w->logbuf))
		log_flush(w);
	if (len > sizeof(w->logbuf))
		return;
	memcpy(w->logbuf + w->loglen, line, len);
	w->loglen += len;
}

static void listeners_watch(struct worker *w, bool on)
{
	for (size_t i = 0; i < w->n_listeners; i++)
		if (w->listeners[i].io.fd >= 0 &&
		    loop_io_watch(&w->loop, &w->listeners[i].io, on ? EPOLLIN : 0) < 0)
			log_warn("worker %d: listener: %s", w->id, strerror(errno));
}

static void backlog_take(struct worker *w);

static void accept_resume(struct loop_timer *t)
{
	struct worker *w = (struct worker *)((char *)t - offsetof(struct worker, accept_timer));

	if (w->accept_paused && w->n_conns < w->cfg->client.max_connections) {
		w->accept_paused = false;
		listeners_watch(w, true);
		/* A queue that emptied meanwhile would never wake us. */
		if (w->backlog_open)
			backlog_take(w);
	}
}

static void accept_pause(struct worker *w, unsigned ms)
{
	if (!w->accept_paused) {
		w->accept_paused = true;
		STAT_INC(w, accept_paused);
		listeners_watch(w, false);
	}
	if (ms)
		loop_timer_in(&w->loop, &w->accept_timer, accept_resume, ms);
}

/* Draining and nothing left: the worker is done. */
static void drain_check(struct worker *w)
{
	if (w->draining && !w->n_conns && !w->backlog_open)
		loop_stop(&w->loop);
}

void worker_conn_closed(struct worker *w)
{
	w->n_conns--;
	STAT_DEC(w, conns_open);
	if (w->draining) {
		/* Not from here: this may run inside a walk of the connections. */
		if (w->backlog_open && w->accept_paused && !loop_timer_armed(&w->accept_timer))
			loop_timer_in(&w->loop, &w->accept_timer, accept_resume, 0);
		drain_check(w);
		return;
	}
	if (w->accept_paused && !loop_timer_armed(&w->accept_timer) &&
	    w->n_conns < w->cfg->client.max_connections) {
		w->accept_paused = false;
		listeners_watch(w, true);
	}
}

enum accept_end {
	ACCEPT_EMPTY,  /* the queue is empty (or accept failed for good) */
	ACCEPT_PAUSED, /* at max_connections or out of descriptors */
	ACCEPT_MORE,   /* max taken; more may wait */
};

/* Accept up to max connections waiting on l. */
static enum accept_end accept_some(struct worker *w, struct listener *l, int max)
{
	static __thread uint64_t last_warn;

	for (int i = 0; i < max; i++) {
		struct sockaddr_storage peer;
		socklen_t len = sizeof(peer);
		int fd;

		if (w->n_conns >= w->cfg->client.max_connections) {
			accept_pause(w, 0);
			return ACCEPT_PAUSED;
		}
		fd =
		    accept4(l->io.fd, (struct sockaddr *)&peer, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			switch (errno) {
			case ECONNABORTED:
			case EINTR:
			case EPROTO:
				continue; /* that one is gone; the next may wait */
			case EAGAIN:
				return ACCEPT_EMPTY;
			case EMFILE:
			case ENFILE:
			case ENOBUFS:
			case ENOMEM:
				/* Out of descriptors or memory: the pending
				 * connection stays in the backlog; try later. */
				if (w->loop.now_ms - last_warn >= 1000) {
					last_warn = w->loop.now_ms;
					log_warn("worker %d: accept: %s (%u connections open); "
						 "pausing accept for %d ms",
						 w->id, strerror(errno), w->n_conns,
						 EMFILE_PAUSE_MS);
				}
				accept_pause(w, EMFILE_PAUSE_MS);
				return ACCEPT_PAUSED;
			default:
				log_warn("worker %d: accept: %s", w->id, strerror(errno));
				return ACCEPT_EMPTY;
			}
		}
		/* A connection cloned from the listener after the stopping
		 * drain's filter went on (its handshake's last ACK passed the
		 * filter just before) inherited it: it would drop all input. */
		if (w->backlog_open)
			setsockopt(fd, SOL_SOCKET, SO_DETACH_FILTER, NULL, 0);
		conn_accept(w, fd, &peer, l->tls, l->auth);
	}
	return ACCEPT_MORE;
}

/* A stopping drain has taken l's backlog: l closes. */
static void backlog_done(struct worker *w, struct listener *l)
{
	loop_io_close(&w->loop, &l->io);
	w->backlog_open--;
	drain_check(w);
}

/*
 * A stopping drain empties l's queue: the filter lets nothing new in, so
 * no readiness event may come after the last batch; take batches until
 * the queue is empty (l closes) or accepting pauses. The queue holds at
 * most the listen backlog; the bound is a way out, not a limit that
 * should ever be reached.
 */
static void backlog_empty(struct worker *w, struct listener *l)
{
	for (int rounds = 0; rounds < 256; rounds++) {
		enum accept_end end = accept_some(w, l, ACCEPT_BATCH);

		if (end == ACCEPT_PAUSED)
			return;
		if (end == ACCEPT_EMPTY)
			break;
	}
	backlog_done(w, l);
}

static void on_accept(struct loop_io *io, uint32_t events)
{
	struct listener *l = (struct listener *)io;

	(void)events;
	/* Closed by a drain earlier in this batch of events. */
	if (io->fd < 0)
		return;
	if (l->w->backlog_open) {
		backlog_empty(l->w, l);
		return;
	}
	/* Bounded per wake-up so one busy listener cannot starve the rest. */
	accept_some(l->w, l, ACCEPT_BATCH);
}

/* The listeners a stopping drain still empties, once more. */
static void backlog_take(struct worker *w)
{
	for (size_t i = 0; i < w->n_listeners; i++)
		if (w->listeners[i].io.fd >= 0)
			backlog_empty(w, &w->listeners[i]);
}

/*
 * The service stops: closing l would reset every connection the kernel
 * already completed and queued, though their clients count them as open
 * and may have sent a request. So a socket filter that drops everything
 * keeps new handshakes from completing (a SYN dropped here is retried by
 * the client and refused once l is closed); then the queue is taken
 * (backlog_empty), and those connections drain like the others. At
 * max_connections (or out of descriptors) l stays open, filtered, and is
 * emptied as connections close; the drain deadline closes it at the
 * latest. Returns 0, or -errno if the filter could not be attached.
 */
static int listener_shut(struct worker *w, struct listener *l)
{
	struct sock_filter drop = BPF_STMT(BPF_RET | BPF_K, 0);
	struct sock_fprog prog = {.len = 1, .filter = &drop};

	if (setsockopt(l->io.fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog)) < 0) {
		log_warn("worker %d: drain: filter on listener: %s", w->id, strerror(errno));
		return -errno;
	}
	return 0;
}

static void on_tls(struct loop_io *io, uint32_t events)
{
	struct worker *w = (struct worker *)((char *)io - offsetof(struct worker, tls_io));
	uint64_t v;
	SSL_CTX *ctx;

	(void)events;
	if (read(io->fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		log_warn("worker %d: tls eventfd: %s", w->id, strerror(errno));
	ctx = __atomic_exchange_n(&w->ssl_ctx_next, NULL, __ATOMIC_ACQ_REL);
	if (ctx) {
		/* Connections in flight hold their own references. */
		SSL_CTX_free(w->ssl_ctx);
		w->ssl_ctx = ctx;
	}
}

void worker_set_tls(struct worker *w, SSL_CTX *ctx)
{
	uint64_t one = 1;
	SSL_CTX *old;

	SSL_CTX_up_ref(ctx);
	old = __atomic_exchange_n(&w->ssl_ctx_next, ctx, __ATOMIC_ACQ_REL);
	if (old)
		SSL_CTX_free(old); /* never picked up: superseded */
	if (write(w->tls_io.fd, &one, sizeof(one)) < 0)
		log_warn("worker %d: tls eventfd: %s", w->id, strerror(errno));
}

/* A backend set changed: take it now, so removed backends close their
 * idle connections even on a worker that gets no request. */
static void on_ups(struct loop_io *io, uint32_t events)
{
	struct worker *w = (struct worker *)((char *)io - offsetof(struct worker, ups_io));
	uint64_t v;

	(void)events;
	if (read(io->fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		log_warn("worker %d: upstream eventfd: %s", w->id, strerror(errno));
	clusters_sync(w);
}

void worker_upstreams_changed(struct worker *w)
{
	uint64_t one = 1;

	if (write(w->ups_io.fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_warn("worker %d: upstream eventfd: %s", w->id, strerror(errno));
}

/* The drain's deadline: whatever is still open is cut. */
static void drain_deadline(struct loop_timer *t)
{
	struct worker *w = container_of(t, struct worker, drain_timer);
	struct dlist *l, *tmp;
	unsigned cut = w->n_conns;

	dlist_each(l, tmp, &w->conns) conn_close(container_of(l, struct conn, w_link));
	if (cut)
		log_warn("worker %d: drain deadline: closed %u connections still open", w->id, cut);
	loop_stop(&w->loop);
}

static void on_drain(struct loop_io *io, uint32_t events)
{
	struct worker *w = container_of(io, struct worker, drain_io);
	struct dlist *l, *tmp;
	uint64_t v;

	(void)events;
	if (read(io->fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		log_warn("worker %d: drain eventfd: %s", w->id, strerror(errno));
	if (w->draining)
		return;
	w->draining = true;
	w->drain_ms = w->loop.now_ms;
	dlist_each(l, tmp, &w->conns)
	{
		struct conn *c = container_of(l, struct conn, w_link);

		/* One still in its handshake drains when its session starts. */
		if (c->ops->drain)
			c->ops->drain(c);
	}
	/* Accept no more. Connections waiting in the kernel's queue belong to
	 * the socket: a successor holding it (upgrade) accepts them; when the
	 * service stops, this worker takes them (they start draining) before
	 * the close would reset them. */
	if (__atomic_load_n(&w->drain_refuse, __ATOMIC_ACQUIRE)) {
		/* Counted before any is taken: a connection accepted and
		 * closed at once must not find the worker with nothing left. */
		for (size_t i = 0; i < w->n_listeners; i++) {
			struct listener *ls = &w->listeners[i];

			if (ls->io.fd >= 0 && !listener_shut(w, ls))
				w->backlog_open++;
			else
				loop_io_close(&w->loop, &ls->io);
		}
		backlog_take(w);
	} else {
		for (size_t i = 0; i < w->n_listeners; i++)
			loop_io_close(&w->loop, &w->listeners[i].io);
		w->n_listeners = 0;
		loop_timer_cancel(&w->loop, &w->accept_timer);
	}
	loop_timer_in(&w->loop, &w->drain_timer, drain_deadline, w->cfg->drain_timeout_ms);
	drain_check(w);
}

int worker_listen_fd(const struct worker *w, size_t i)
{
	return w->listeners[i].io.fd;
}

void worker_drain(struct worker *w, bool handover)
{
	uint64_t one = 1;

	if (!handover)
		__atomic_store_n(&w->drain_refuse, true, __ATOMIC_RELEASE);

	if (write(w->drain_io.fd, &one, sizeof(one)) < 0)
		log_warn("worker %d: drain: %s", w->id, strerror(errno));
}

static void on_stop(struct loop_io *io, uint32_t events)
{
	struct worker *w = (struct worker *)((char *)io - offsetof(struct worker, stop_io));

	(void)events;
	loop_stop(&w->loop);
}

int worker_init(struct worker *w, int id, const struct l7_config *cfg, struct l7_upstreams *ups,
		SSL_CTX *ssl_ctx, SSL_CTX **up_ssl_ctx, int log_fd, int *listen_fds)
{
	int rc;

	memset(w, 0, sizeof(*w));
	w->loop.epfd = -1; /* loop_fini is safe even if init fails early */
	w->id = id;
	w->cfg = cfg;
	w->ups = ups;
	w->ups_io.fd = -1;
	if (ssl_ctx && SSL_CTX_up_ref(ssl_ctx))
		w->ssl_ctx = ssl_ctx;
	w->up_ssl_ctx = up_ssl_ctx;
	w->log_fd = log_fd;
	w->rnd_used = sizeof(w->rnd);
	w->stop_io.fd = -1;
	w->tls_io.fd = -1;
	w->drain_io.fd = -1;
	dlist_init(&w->conns);
	w->dispatch = proxy_dispatch;
	bufpool_init(&w->pool, POOL_FREE_BLOCKS);
	if (getrandom(&w->rng, sizeof(w->rng), 0) != sizeof(w->rng) || !w->rng)
		w->rng = 0x9e3779b97f4a7c15ull + (uint64_t)id;
	if ((rc = loop_init(&w->loop)))
		return rc;
	w->stop_io = (struct loop_io){.fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK), .fn = on_stop};
	if (w->stop_io.fd < 0)
		return -errno;
	if ((rc = loop_io_watch(&w->loop, &w->stop_io, EPOLLIN)))
		return rc;
	w->tls_io = (struct loop_io){.fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK), .fn = on_tls};
	if (w->tls_io.fd < 0)
		return -errno;
	if ((rc = loop_io_watch(&w->loop, &w->tls_io, EPOLLIN)))
		return rc;
	w->ups_io = (struct loop_io){.fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK), .fn = on_ups};
	if (w->ups_io.fd < 0)
		return -errno;
	if ((rc = loop_io_watch(&w->loop, &w->ups_io, EPOLLIN)))
		return rc;
	w->drain_io =
	    (struct loop_io){.fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK), .fn = on_drain};
	if (w->drain_io.fd < 0)
		return -errno;
	if ((rc = loop_io_watch(&w->loop, &w->drain_io, EPOLLIN)))
		return rc;
	if ((rc = l7m_init(&w->m, cfg)) || (rc = clusters_init(w)) || (rc = h2s_worker_init(w)) ||
	    (rc = h2c_worker_init(w)))
		return rc;
	w->listeners = calloc(cfg->n_listeners, sizeof(*w->listeners));
	if (!w->listeners)
		return -ENOMEM;
	for (size_t i = 0; i < cfg->n_listeners; i++) {
		struct listener *l = &w->listeners[i];
		int fd = listen_fds && listen_fds[i] >= 0 ? listen_fds[i]
							  : listener_open(&cfg->listeners[i]);

		if (listen_fds && listen_fds[i] >= 0)
			listen_fds[i] = -1; /* ours now */
		if (fd < 0) {
			log_err("listen on %s: %s", cfg->listeners[i].name, strerror(-fd));
			return fd;
		}
		*l = (struct listener){.io = {.fd = fd, .fn = on_accept},
				       .w = w,
				       .tls = cfg->listeners[i].tls,
				       .auth = cfg->listeners[i].client_auth};
		w->n_listeners++;
		if ((rc = loop_io_watch(&w->loop, &l->io, EPOLLIN)))
			return rc;
	}
	return 0;
}

void *worker_run(void *arg)
{
	struct worker *w = arg;

	/* A reader of the backend sets (upstream.h). */
	urcu_memb_register_thread();
	w->loop.now_ms = loop_clock_ms();
	while (!w->loop.stop) {
		int rc = loop_run_once(&w->loop, 1000);

		if (rc < 0)
			log_warn("worker %d: epoll_wait: %s", w->id, strerror(-rc));
		log_flush(w);
		__atomic_store_n(&w->heartbeat_ms, w->loop.now_ms, __ATOMIC_RELAXED);
	}
	log_flush(w);
	log_info("worker %d: accepted %" PRIu64 ", requests %" PRIu64 " (h2 %" PRIu64
		 ", grpc %" PRIu64 "), bad requests %" PRIu64 ", h2 abuse GOAWAYs %" PRIu64
		 ", upstream connects %" PRIu64 ", reuses %" PRIu64 ", errors %" PRIu64
		 ", timeouts %" PRIu64 ", retries %" PRIu64,
		 w->id, w->st.accepted, w->st.requests, w->st.requests_h2, w->st.requests_grpc,
		 w->st.bad_requests, w->st.h2_goaway_abuse, w->st.upstream_connects,
		 w->st.upstream_reuses, w->st.upstream_errors, w->st.upstream_timeouts,
		 w->st.upstream_retries);
	urcu_memb_unregister_thread();
	__atomic_store_n(&w->finished, true, __ATOMIC_RELEASE);
	return NULL;
}

void worker_stop(struct worker *w)
{
	uint64_t one = 1;

	if (write(w->stop_io.fd, &one, sizeof(one)) < 0)
		log_warn("worker %d: stop: %s", w->id, strerror(errno));
}

void worker_fini(struct worker *w)
{
	w->stopping = true;
	for (size_t i = 0; i < w->n_listeners; i++)
		loop_io_close(&w->loop, &w->listeners[i].io);
	free(w->listeners);
	w->listeners = NULL;
	clusters_fini(w);
	loop_io_close(&w->loop, &w->stop_io);
	if (w->drain_io.fd >= 0)
		loop_io_close(&w->loop, &w->drain_io);
	loop_timer_cancel(&w->loop, &w->drain_timer);
	if (w->tls_io.fd >= 0)
		loop_io_close(&w->loop, &w->tls_io);
	if (w->ups_io.fd >= 0)
		loop_io_close(&w->loop, &w->ups_io);
	h2s_worker_fini(w);
	h2c_worker_fini(w);
	/* No more iterations (objects may name the freed clusters); the frees
	 * the closes above requested happen in loop_fini. */
	loop_fini(&w->loop);
	bufpool_fini(&w->pool);
	h1_head_cache_fini(&w->heads);
	l7m_fini(&w->m);
	SSL_CTX_free(w->ssl_ctx);
	SSL_CTX_free(w->ssl_ctx_next);
	w->ssl_ctx = w->ssl_ctx_next = NULL;
}
