// SPDX-License-Identifier: GPL-2.0-only
/*
 * upstream.c - connections to the backends: per worker, per backend, a
 * LIFO pool of idle keepalive connections (the most recently used one is
 * the least likely to have been closed by the backend), round-robin choice
 * of backend, non-blocking connects with a timeout.
 */
#include "log.h"
#include "proxy.h"

#include <errno.h>
#include <netinet/in.h>
#include <stddef.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

struct upstream_pool {
	struct uconn *idle; /* head of the idle list */
	uint32_t n_idle;
};

int upstream_init(struct worker *w)
{
	w->pools = calloc(w->cfg->n_backends, sizeof(*w->pools));
	return w->pools ? 0 : -ENOMEM;
}

static void idle_unlink(struct uconn *u)
{
	struct upstream_pool *p = &u->w->pools[u->backend];

	if (u->idle_prev)
		u->idle_prev->idle_next = u->idle_next;
	else
		p->idle = u->idle_next;
	if (u->idle_next)
		u->idle_next->idle_prev = u->idle_prev;
	u->idle_prev = u->idle_next = NULL;
	p->n_idle--;
}

static void uconn_close(struct uconn *u)
{
	timer_cancel(&u->timer);
	worker_unwatch(u->w, &u->ev);
	close(u->ev.fd);
	worker_bury(u->w, &u->ev);
}

void upstream_fini(struct worker *w)
{
	for (size_t b = 0; w->pools && b < w->cfg->n_backends; b++)
		while (w->pools[b].idle) {
			struct uconn *u = w->pools[b].idle;

			idle_unlink(u);
			uconn_close(u);
		}
	free(w->pools);
	w->pools = NULL;
}

static void on_event(struct worker *w, struct ev *ev, uint32_t events)
{
	struct uconn *u = (struct uconn *)ev;

	(void)w;
	if (!u->owner) {
		/* An idle connection became readable: the backend closed it
		 * (or sent garbage). Either way it is no longer reusable. */
		idle_unlink(u);
		uconn_close(u);
		return;
	}
	conn_upstream_event(u, events);
}

static void on_timer(struct timer *t)
{
	struct uconn *u = (struct uconn *)((char *)t - offsetof(struct uconn, timer));

	if (!u->owner) {
		idle_unlink(u);
		uconn_close(u);
		return;
	}
	u->w->st.upstream_timeouts++;
	conn_upstream_timeout(u);
}

void upstream_touch(struct uconn *u)
{
	timer_arm(u->connected ? &u->w->t_upstream : &u->w->t_connect, &u->timer, on_timer,
		  u->w->now);
}

/* An idle connection the backend closed while we were not looking. */
static bool still_open(struct uconn *u)
{
	char c;
	ssize_t n = recv(u->ev.fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);

	return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

static struct uconn *from_pool(struct worker *w, unsigned b, void *owner)
{
	struct upstream_pool *p = &w->pools[b];

	while (p->idle) {
		struct uconn *u = p->idle;

		idle_unlink(u);
		timer_cancel(&u->timer);
		if (!still_open(u)) {
			uconn_close(u);
			continue;
		}
		u->owner = owner;
		u->reused = true;
		u->rd_ready = false;
		u->wr_ready = true;
		w->st.upstream_reuses++;
		upstream_touch(u);
		return u;
	}
	return NULL;
}

static struct uconn *connect_new(struct worker *w, unsigned b, void *owner)
{
	const struct l7_backend_cfg *be = &w->cfg->backends[b];
	struct uconn *u;
	int fd, one = 1;

	fd = socket(be->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return NULL;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (const struct sockaddr *)&be->addr, be->addr_len) < 0 &&
	    errno != EINPROGRESS) {
		int e = errno;

		close(fd);
		errno = e;
		return NULL;
	}
	u = calloc(1, sizeof(*u));
	if (!u) {
		close(fd);
		errno = ENOMEM;
		return NULL;
	}
	u->ev.fd = fd;
	u->ev.cb = on_event;
	u->w = w;
	u->owner = owner;
	u->backend = b;
	w->st.upstream_connects++;
	if (worker_watch(w, &u->ev, EPOLLOUT)) {
		uconn_close(u);
		return NULL;
	}
	upstream_touch(u);
	return u;
}

struct uconn *upstream_get(struct worker *w, void *owner, int skip)
{
	size_t n = w->cfg->n_backends;

	for (size_t i = 0; i < n; i++) {
		unsigned b = (unsigned)((w->rr + i) % n);
		struct uconn *u;

		if ((int)b == skip && n > 1)
			continue;
		w->rr = b + 1;
		u = from_pool(w, b, owner);
		if (!u)
			u = connect_new(w, b, owner);
		if (u)
			return u;
		w->st.upstream_errors++;
		log_warn("worker %d: backend %s: connect: %s", w->id, w->cfg->backends[b].name,
			 strerror(errno));
	}
	return NULL;
}

void upstream_put(struct uconn *u, bool reusable)
{
	struct worker *w = u->w;
	struct upstream_pool *p = &w->pools[u->backend];

	if (!reusable || !u->connected || p->n_idle >= w->cfg->max_idle_per_backend ||
	    worker_watch(w, &u->ev, EPOLLIN | EPOLLRDHUP)) {
		uconn_close(u);
		return;
	}
	u->owner = NULL;
	u->idle_prev = NULL;
	u->idle_next = p->idle;
	if (p->idle)
		p->idle->idle_prev = u;
	p->idle = u;
	p->n_idle++;
	timer_arm(&w->t_idle, &u->timer, on_timer, w->now);
}
