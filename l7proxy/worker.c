// SPDX-License-Identifier: GPL-2.0-only
/*
 * worker.c - one thread per core: its own SO_REUSEPORT listeners (the
 * kernel spreads connections over the workers), its own epoll, timers,
 * upstream pools and access-log buffer.
 */
#include "log.h"
#include "proxy.h"
#include "worker.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_EVENTS	 256
#define IDLE_UPSTREAM_MS 30000

int worker_watch(struct worker *w, struct ev *ev, uint32_t events)
{
	struct epoll_event e = {.events = events, .data.ptr = ev};
	int op;

	if (ev->interest == events && events)
		return 0;
	if (!events) {
		worker_unwatch(w, ev);
		return 0;
	}
	op = ev->interest ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
	if (epoll_ctl(w->epfd, op, ev->fd, &e) < 0)
		return -errno;
	ev->interest = events;
	return 0;
}

void worker_unwatch(struct worker *w, struct ev *ev)
{
	if (ev->interest) {
		epoll_ctl(w->epfd, EPOLL_CTL_DEL, ev->fd, NULL);
		ev->interest = 0;
	}
}

void worker_bury(struct worker *w, struct ev *ev)
{
	ev->dead = true;
	ev->grave_next = w->graveyard;
	w->graveyard = ev;
}

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

struct listener {
	struct ev ev;
	bool tls;
};

static void on_accept(struct worker *w, struct ev *ev, uint32_t events)
{
	struct listener *l = (struct listener *)ev;

	(void)events;
	/* Bounded per wake-up so one busy listener cannot starve the rest. */
	for (int i = 0; i < 64; i++) {
		struct sockaddr_storage peer;
		socklen_t len = sizeof(peer);
		int fd =
		    accept4(ev->fd, (struct sockaddr *)&peer, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != ECONNABORTED)
				log_warn("worker %d: accept: %s", w->id, strerror(errno));
			return;
		}
		conn_accept(w, fd, &peer, l->tls);
	}
}

static int listen_on(const struct l7_listener_cfg *lc)
{
	int fd, one = 1;

	fd = socket(lc->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	/* The VIP may be added to lo after the proxy starts. */
	setsockopt(fd, IPPROTO_IP, IP_FREEBIND, &one, sizeof(one));
	if (lc->addr.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (const struct sockaddr *)&lc->addr, lc->addr_len) < 0 ||
	    listen(fd, 4096) < 0) {
		int e = -errno;

		close(fd);
		return e;
	}
	return fd;
}

int worker_init(struct worker *w, int id, const struct l7_config *cfg, SSL_CTX *ssl_ctx, int log_fd)
{
	struct epoll_event e;
	int rc;

	memset(w, 0, sizeof(*w));
	w->id = id;
	w->cfg = cfg;
	w->ssl_ctx = ssl_ctx;
	w->log_fd = log_fd;
	w->rnd_used = sizeof(w->rnd);
	timer_list_init(&w->t_client, cfg->client_timeout_ms);
	timer_list_init(&w->t_connect, cfg->connect_timeout_ms);
	timer_list_init(&w->t_upstream, cfg->upstream_timeout_ms);
	timer_list_init(&w->t_idle, IDLE_UPSTREAM_MS);
	w->epfd = epoll_create1(EPOLL_CLOEXEC);
	w->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (w->epfd < 0 || w->stop_fd < 0)
		return -errno;
	e = (struct epoll_event){.events = EPOLLIN, .data.ptr = NULL};
	if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->stop_fd, &e) < 0)
		return -errno;
	rc = upstream_init(w);
	if (rc)
		return rc;
	w->listeners = calloc(cfg->n_listeners, sizeof(struct listener));
	if (!w->listeners)
		return -ENOMEM;
	for (size_t i = 0; i < cfg->n_listeners; i++) {
		struct listener *l = &((struct listener *)w->listeners)[i];
		int fd = listen_on(&cfg->listeners[i]);

		if (fd < 0) {
			log_err("listen on %s: %s", cfg->listeners[i].name, strerror(-fd));
			return fd;
		}
		l->ev.fd = fd;
		l->ev.cb = on_accept;
		l->tls = cfg->listeners[i].tls;
		w->n_listeners++;
		rc = worker_watch(w, &l->ev, EPOLLIN);
		if (rc)
			return rc;
	}
	return 0;
}

static int next_timeout(struct worker *w)
{
	struct timer_list *lists[] = {&w->t_client, &w->t_connect, &w->t_upstream, &w->t_idle};
	int64_t best = -1;

	for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++) {
		int64_t t = timer_run(lists[i], w->now);

		if (t >= 0 && (best < 0 || t < best))
			best = t;
	}
	return best < 0 ? 1000 : (int)(best > 1000 ? 1000 : best);
}

void *worker_run(void *arg)
{
	struct worker *w = arg;
	struct epoll_event ev[MAX_EVENTS];

	w->now = timer_now_ms();
	for (;;) {
		int n = epoll_wait(w->epfd, ev, MAX_EVENTS, next_timeout(w));

		w->now = timer_now_ms();
		for (int i = 0; i < n; i++) {
			struct ev *e = ev[i].data.ptr;

			if (!e)
				goto out; /* stop_fd */
			if (!e->dead)
				e->cb(w, e, ev[i].events);
		}
		while (w->graveyard) {
			struct ev *e = w->graveyard;

			w->graveyard = e->grave_next;
			free(e);
		}
		log_flush(w);
	}
out:
	log_flush(w);
	/* Until the proxy has an admin API, its counters are reported here. */
	log_info("worker %d: accepted %" PRIu64 ", requests %" PRIu64 ", bad requests %" PRIu64
		 ", TLS handshakes %" PRIu64 " (%" PRIu64 " resumed), upstream connects %" PRIu64
		 ", reuses %" PRIu64 ", errors %" PRIu64 ", timeouts %" PRIu64,
		 w->id, w->st.accepted, w->st.requests, w->st.bad_requests, w->st.tls_handshakes,
		 w->st.tls_resumed, w->st.upstream_connects, w->st.upstream_reuses,
		 w->st.upstream_errors, w->st.upstream_timeouts);
	return NULL;
}

void worker_stop(struct worker *w)
{
	uint64_t one = 1;

	if (write(w->stop_fd, &one, sizeof(one)) < 0)
		log_warn("worker %d: stop: %s", w->id, strerror(errno));
}

void worker_fini(struct worker *w)
{
	for (size_t i = 0; i < w->n_listeners; i++)
		close(((struct listener *)w->listeners)[i].ev.fd);
	free(w->listeners);
	upstream_fini(w);
	while (w->graveyard) {
		struct ev *e = w->graveyard;

		w->graveyard = e->grave_next;
		free(e);
	}
	if (w->epfd >= 0)
		close(w->epfd);
	if (w->stop_fd >= 0)
		close(w->stop_fd);
}
