// SPDX-License-Identifier: GPL-2.0-only
/*
 * speaker.c - lbd's BGP sessions (see speaker.h).
 *
 * Structure: a speaker holds the routes (one per VIP address) and the
 * neighbours. A neighbour has a primary connection that follows the FSM
 * (fsm.c) and, during a connection collision (RFC 4271 §6.8), a second
 * one until one of them is chosen. Each connection owns its socket, its
 * input buffer (one message at most 4096 bytes, RFC 4271 §4.1), a bounded
 * output buffer and its hold and keepalive timers. What was sent to each
 * neighbour (its Adj-RIB-Out) is kept per neighbour, so a change becomes
 * an UPDATE with the difference only.
 */
#include "speaker.h"
#include "fsm.h"
#include "log.h"
#include "msg.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HOLD_LARGE_MS	 (240 * 1000)  /* §8: "large value", 4 minutes suggested */
#define OUT_MAX		 (1024 * 1024) /* a peer that reads nothing: Cease */
#define IDLE_HOLD_MAX_MS (60 * 1000)   /* automatic restarts back off up to this */
#define READ_BUDGET	 (64 * 1024)   /* per wake-up, so one peer cannot starve others */
#define SHUTDOWN_TEXT	 "portico lbd shutting down"

enum sent { SENT_NONE = 0, SENT_PLAIN, SENT_GSHUT };

struct route {
	struct lb_addr addr;
	bool healthy;
	bool drain;		 /* drained alone (bgp drain PREFIX) */
	uint64_t drain_since_ms; /* loop time its own drain began */
	enum sent shown;	 /* what it was last logged as */
};

struct adj {
	struct lb_addr addr;
	enum sent sent;
};

struct msg_counts {
	uint64_t open, update, notification, keepalive, route_refresh;
};

struct neighbor;

struct conn {
	struct neighbor *nb;
	struct loop_io io;
	bool outgoing; /* we initiated it (collision resolution) */
	bool connecting;
	enum bgp_state state;
	struct loop_timer hold, keepalive;
	uint8_t in[2 * BGP_MAX_LEN];
	size_t in_len;
	uint8_t *out;
	size_t out_len, out_off, out_cap;
	struct bgp_open peer; /* valid once an OPEN came */
	bool got_open;
};

struct neighbor {
	struct bgp_speaker *sp;
	struct lbd_bgp_neighbor_cfg cfg;
	struct conn *conn;  /* follows the FSM; NULL when there is no socket */
	struct conn *other; /* a colliding connection, until resolved */
	enum bgp_state state;
	struct loop_timer connect_retry, idle_hold;
	struct loop_task later; /* events that must not run inside a callback */
	bool pending_fail;	/* a connect that failed at once */
	uint32_t idle_hold_ms;
	bool stopped;	      /* by the operator or a shutdown: no automatic restart */
	bool refresh_pending; /* a ROUTE-REFRESH waits for the output to drain */
	bool keep;	      /* marker for reconfigure */
	/* Negotiated on the session that reached OpenConfirm. */
	bool v4, v6, as4, gr, ibgp;
	uint16_t hold_s;
	uint32_t remote_id;
	/* History for neighbors / logs. */
	uint64_t state_since_ms; /* wall clock */
	uint64_t established_count;
	struct msg_counts rx, tx;
	uint64_t malformed;
	char last_error[160];
	uint64_t last_error_ms;
	struct adj *adj;
	size_t n_adj, cap_adj;
};

struct bgp_speaker {
	struct loop *loop;
	struct lbd_bgp_cfg cfg; /* cfg.neighbors not kept: see nbs */
	uint32_t router_id;
	struct lb_addr nh4, nh6;
	bool restarted, fwd;
	uint64_t started_ms; /* loop time */
	struct loop_io listener;
	struct neighbor **nbs;
	size_t n_nbs;
	struct route *routes;
	size_t n_routes;
	bool drain_all;
	uint64_t drain_all_since_ms;
	struct loop_timer drain_timer;
	bool stopped;
};

static void nb_event(struct neighbor *nb, enum bgp_event ev, const struct bgp_err *err);
static void nb_sync(struct neighbor *nb);
static void on_later(struct loop_task *t);
static void speaker_sync(struct bgp_speaker *sp);

static uint64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static const char *nb_name(const struct neighbor *nb, char *buf, size_t len)
{
	char a[LB_ADDR_STRLEN];

	snprintf(buf, len, "%s (AS %u)", lb_addr_str(&nb->cfg.addr, a, sizeof(a)), nb->cfg.asn);
	return buf;
}

static void set_error(struct neighbor *nb, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void set_error(struct neighbor *nb, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(nb->last_error, sizeof(nb->last_error), fmt, ap);
	va_end(ap);
	nb->last_error_ms = wall_ms();
}

/* --- connections ----------------------------------------------------------- */

static void conn_free(struct conn *c)
{
	struct loop *l = c->nb->sp->loop;

	loop_timer_cancel(l, &c->hold);
	loop_timer_cancel(l, &c->keepalive);
	loop_io_close(l, &c->io);
	free(c->out);
	c->out = NULL;
	loop_free_later(l, c);
}

/* Write what is buffered; 0, or -errno when the connection is broken. */
static int conn_flush(struct conn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = send(c->io.fd, c->out + c->out_off, c->out_len - c->out_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				break;
			return -errno;
		}
		c->out_off += (size_t)n;
	}
	if (c->out_off == c->out_len) {
		c->out_off = c->out_len = 0;
		/* A ROUTE-REFRESH waited for this (whoever flushed). */
		if (c->nb->refresh_pending && c == c->nb->conn)
			loop_defer(c->nb->sp->loop, &c->nb->later, on_later);
	}
	if (c->io.fd >= 0)
		loop_io_watch(c->nb->sp->loop, &c->io,
			      EPOLLIN | (c->out_len || c->connecting ? EPOLLOUT : 0));
	return 0;
}

/* Queue one message. -ENOBUFS when the peer has not read OUT_MAX bytes. */
static int conn_send(struct conn *c, const uint8_t *msg, size_t len)
{
	if (c->io.fd < 0)
		return -EPIPE;
	if (c->out_off && c->out_len + len > c->out_cap) {
		memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
		c->out_len -= c->out_off;
		c->out_off = 0;
	}
	if (c->out_len + len > c->out_cap) {
		size_t cap = c->out_cap ? c->out_cap : 8192;
		uint8_t *n;

		while (cap < c->out_len + len)
			cap *= 2;
		if (cap > OUT_MAX)
			return -ENOBUFS;
		n = realloc(c->out, cap);
		if (!n)
			return -ENOMEM;
		c->out = n;
		c->out_cap = cap;
	}
	memcpy(c->out + c->out_len, msg, len);
	c->out_len += len;
	switch (msg[18]) {
	case BGP_OPEN:
		c->nb->tx.open++;
		break;
	case BGP_UPDATE:
		c->nb->tx.update++;
		break;
	case BGP_NOTIFICATION:
		c->nb->tx.notification++;
		break;
	case BGP_KEEPALIVE:
		c->nb->tx.keepalive++;
		break;
	default:
		c->nb->tx.route_refresh++;
	}
	return conn_flush(c);
}

static void send_notification(struct conn *c, const struct bgp_err *e)
{
	uint8_t buf[BGP_MAX_LEN];
	char name[96];
	int n = bgp_encode_notification(e, buf, sizeof(buf));

	if (n > 0)
		conn_send(c, buf, (size_t)n);
	set_error(c->nb, "sent %s", bgp_err_str(e->code, e->subcode));
	log_warn("bgp: neighbor %s: sent NOTIFICATION %s", nb_name(c->nb, name, sizeof(name)),
		 bgp_err_str(e->code, e->subcode));
}

static void send_cease(struct conn *c, uint8_t subcode)
{
	static struct bgp_err e;

	memset(&e, 0, offsetof(struct bgp_err, data));
	e.code = BGP_ERR_CEASE;
	e.subcode = subcode;
	if (subcode == BGP_CEASE_ADMIN_SHUTDOWN) {
		/* RFC 9003: a short text for the peer's operators. */
		e.data[0] = sizeof(SHUTDOWN_TEXT) - 1;
		memcpy(e.data + 1, SHUTDOWN_TEXT, sizeof(SHUTDOWN_TEXT) - 1);
		e.data_len = sizeof(SHUTDOWN_TEXT);
	}
	send_notification(c, &e);
}

static void send_open(struct conn *c)
{
	struct bgp_speaker *sp = c->nb->sp;
	const struct neighbor *nb = c->nb;
	struct bgp_open o = {.as = sp->cfg.asn,
			     .hold_time = (uint16_t)nb->cfg.hold_time,
			     .bgp_id = sp->router_id,
			     .as4 = true,
			     .mp_v4 = nb->cfg.ipv4,
			     .mp_v6 = nb->cfg.ipv6,
			     .route_refresh = true};
	uint8_t buf[BGP_MAX_LEN];
	int n;

	if (sp->cfg.gr_restart_time) {
		o.gr = true;
		o.gr_time = (uint16_t)sp->cfg.gr_restart_time;
		/* R: we restarted (and may not have our routes in order yet)
		 * for as long as the peer would keep our old ones. */
		o.gr_restarting = sp->restarted && sp->loop->now_ms - sp->started_ms <
						       sp->cfg.gr_restart_time * 1000ull;
		o.gr_v4 = nb->cfg.ipv4;
		o.gr_v6 = nb->cfg.ipv6;
		o.gr_fwd_v4 = o.gr_v4 && sp->fwd;
		o.gr_fwd_v6 = o.gr_v6 && sp->fwd;
	}
	n = bgp_encode_open(&o, buf, sizeof(buf));
	if (n > 0)
		conn_send(c, buf, (size_t)n);
}

static void send_keepalive(struct conn *c)
{
	uint8_t buf[BGP_HDR_LEN];
	int n = bgp_encode_keepalive(buf, sizeof(buf));

	if (n > 0)
		conn_send(c, buf, (size_t)n);
}

static void on_conn_io(struct loop_io *io, uint32_t events);
static void on_hold(struct loop_timer *t);
static void on_keepalive(struct loop_timer *t);

static struct conn *conn_new(struct neighbor *nb, int fd, bool outgoing)
{
	struct conn *c = calloc(1, sizeof(*c));
	int one = 1, tos = IPTOS_PREC_INTERNETCONTROL;

	if (!c) {
		close(fd);
		return NULL;
	}
	c->nb = nb;
	c->outgoing = outgoing;
	c->io = (struct loop_io){.fd = fd, .fn = on_conn_io};
	c->hold.fn = on_hold;
	c->keepalive.fn = on_keepalive;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	/* Routing protocol traffic goes first in queues (CS6), as routers
	 * mark it. */
	if (nb->cfg.addr.family == LB_AF_INET)
		setsockopt(fd, IPPROTO_IP, IP_TOS, &tos, sizeof(tos));
	else
		setsockopt(fd, IPPROTO_IPV6, IPV6_TCLASS, &tos, sizeof(tos));
	return c;
}

/* Start a connection to the neighbour. NULL if it failed at once. */
static struct conn *conn_connect(struct neighbor *nb)
{
	struct sockaddr_storage ss;
	unsigned sl;
	struct conn *c;
	int fd;

	fd = socket(lb_addr_af(&nb->cfg.addr), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		set_error(nb, "socket: %s", strerror(errno));
		return NULL;
	}
	if (nb->cfg.local.family) {
		sl = lb_addr_sockaddr(&nb->cfg.local, 0, &ss);
		if (bind(fd, (struct sockaddr *)&ss, sl)) {
			set_error(nb, "bind to local_address: %s", strerror(errno));
			close(fd);
			return NULL;
		}
	}
	sl = lb_addr_sockaddr(&nb->cfg.addr, nb->cfg.port, &ss);
	if (connect(fd, (struct sockaddr *)&ss, sl) && errno != EINPROGRESS) {
		set_error(nb, "connect: %s", strerror(errno));
		close(fd);
		return NULL;
	}
	c = conn_new(nb, fd, true);
	if (!c)
		return NULL;
	c->connecting = true;
	c->state = BGP_CONNECT;
	loop_io_watch(nb->sp->loop, &c->io, EPOLLOUT);
	return c;
}

/* --- what a neighbour negotiated ----------------------------------------------- */

/*
 * Check the peer's OPEN against this neighbour's settings (RFC 4271 §6.2
 * leaves these to the session) and work out what the session carries.
 * 0, or -EINVAL with *e to send.
 */
static int open_accept(struct neighbor *nb, const struct bgp_open *o, struct bgp_err *e)
{
	struct bgp_speaker *sp = nb->sp;
	bool peer_v4 = o->mp_v4, peer_v6 = o->mp_v6;

	memset(e, 0, offsetof(struct bgp_err, data));
	if (o->as != nb->cfg.asn) {
		e->code = BGP_ERR_OPEN;
		e->subcode = BGP_OPEN_BAD_PEER_AS;
		e->data_len = 2; /* RFC 4271 §6.2: the My AS field is not data; send
				  * the 2-octet AS we expected for the log */
		e->data[0] = (uint8_t)(nb->cfg.asn > 65535 ? BGP_AS_TRANS >> 8 : nb->cfg.asn >> 8);
		e->data[1] = (uint8_t)(nb->cfg.asn > 65535 ? BGP_AS_TRANS & 0xff : nb->cfg.asn);
		return -EINVAL;
	}
	/* RFC 6286 §2.2: an internal peer's BGP Identifier must differ from
	 * ours (external peers only need distinct ASes). */
	if (o->as == sp->cfg.asn && o->bgp_id == sp->router_id) {
		e->code = BGP_ERR_OPEN;
		e->subcode = BGP_OPEN_BAD_BGP_ID;
		return -EINVAL;
	}
	/* RFC 4760 §8: no multiprotocol capability at all means IPv4
	 * unicast only. */
	if (!peer_v4 && !peer_v6)
		peer_v4 = true;
	nb->v4 = nb->cfg.ipv4 && peer_v4 && sp->nh4.family;
	nb->v6 = nb->cfg.ipv6 && peer_v6 && sp->nh6.family;
	if (!nb->v4 && !nb->v6) {
		/* RFC 5492 §3: name the capability we need (MP, AFI/SAFI). */
		e->code = BGP_ERR_OPEN;
		e->subcode = BGP_OPEN_UNSUPPORTED_CAPABILITY;
		e->data[0] = 1;
		e->data[1] = 4;
		e->data[2] = 0;
		e->data[3] = nb->cfg.ipv4 ? BGP_AFI_IPV4 : BGP_AFI_IPV6;
		e->data[4] = 0;
		e->data[5] = BGP_SAFI_UNICAST;
		e->data_len = 6;
		return -EINVAL;
	}
	/* §4.2 lets a peer offer 0 (no keepalives, no hold timer), and §6.2
	 * lets us refuse it: with 0 a peer that vanishes is never noticed,
	 * and its routes' traffic would go on to a dead session. Only an
	 * operator who configured 0 gets 0. */
	if (o->hold_time == 0 && nb->cfg.hold_time != 0) {
		e->code = BGP_ERR_OPEN;
		e->subcode = BGP_OPEN_UNACCEPTABLE_HOLD_TIME;
		return -EINVAL;
	}
	nb->as4 = o->as4;
	nb->gr = o->gr && sp->cfg.gr_restart_time;
	nb->ibgp = o->as == sp->cfg.asn;
	nb->remote_id = o->bgp_id;
	/* §4.2: the smaller of the two; 0 turns keepalives off. */
	nb->hold_s = o->hold_time < nb->cfg.hold_time ? o->hold_time : (uint16_t)nb->cfg.hold_time;
	return 0;
}

/* --- the FSM's actions ---------------------------------------------------------- */

static void on_connect_retry(struct loop_timer *t)
{
	struct neighbor *nb =
	    (struct neighbor *)((char *)t - offsetof(struct neighbor, connect_retry));

	nb_event(nb, BGP_EV_CONNECT_RETRY_EXPIRES, NULL);
}

static void on_idle_hold(struct loop_timer *t)
{
	struct neighbor *nb = (struct neighbor *)((char *)t - offsetof(struct neighbor, idle_hold));

	if (!nb->stopped && !nb->sp->stopped)
		nb_event(nb, BGP_EV_START, NULL);
}

static void on_hold(struct loop_timer *t)
{
	struct conn *c = (struct conn *)((char *)t - offsetof(struct conn, hold));

	if (c == c->nb->conn)
		nb_event(c->nb, BGP_EV_HOLD_EXPIRES, NULL);
	else if (c == c->nb->other) {
		c->nb->other = NULL;
		conn_free(c);
	}
}

static void on_keepalive(struct loop_timer *t)
{
	struct conn *c = (struct conn *)((char *)t - offsetof(struct conn, keepalive));

	if (c == c->nb->conn)
		nb_event(c->nb, BGP_EV_KEEPALIVE_EXPIRES, NULL);
}

/* Send the whole table again (a new session, or the peer asked). */
static void nb_resend_all(struct neighbor *nb)
{
	nb->refresh_pending = false;
	nb->n_adj = 0;
	nb_sync(nb);
}

static void on_later(struct loop_task *t)
{
	struct neighbor *nb = (struct neighbor *)((char *)t - offsetof(struct neighbor, later));

	if (nb->pending_fail) {
		nb->pending_fail = false;
		nb_event(nb, BGP_EV_TCP_FAILS, NULL);
		return;
	}
	if (nb->refresh_pending && nb->conn && !nb->conn->out_len && nb->state == BGP_ESTABLISHED)
		nb_resend_all(nb);
}

static void keepalive_arm(struct conn *c)
{
	struct neighbor *nb = c->nb;

	if (nb->hold_s)
		loop_timer_in(nb->sp->loop, &c->keepalive, on_keepalive, nb->hold_s * 1000u / 3);
}

static void hold_arm(struct conn *c)
{
	struct neighbor *nb = c->nb;

	if (nb->hold_s)
		loop_timer_in(nb->sp->loop, &c->hold, on_hold, nb->hold_s * 1000u);
	else
		loop_timer_cancel(nb->sp->loop, &c->hold);
}

static void nb_event(struct neighbor *nb, enum bgp_event ev, const struct bgp_err *err);

/*
 * Queue msg on the neighbour's session. A peer that has left OUT_MAX bytes
 * unread (or no memory) loses the session: Cease/Out of Resources, then the
 * automatic restart. Returns false when the session is gone.
 */
static bool nb_send(struct neighbor *nb, const uint8_t *msg, size_t len)
{
	static struct bgp_err e;
	char name[96];
	int rc;

	if (!nb->conn)
		return false;
	rc = conn_send(nb->conn, msg, len);
	if (rc != -ENOBUFS && rc != -ENOMEM)
		return true; /* a send error shows as EPOLLERR and TCP_FAILS */
	set_error(nb, "the peer does not read: %s", strerror(-rc));
	log_warn("bgp: neighbor %s: %s", nb_name(nb, name, sizeof(name)), nb->last_error);
	memset(&e, 0, offsetof(struct bgp_err, data));
	e.code = BGP_ERR_CEASE;
	e.subcode = BGP_CEASE_OUT_OF_RESOURCES;
	/* The Cease itself rarely fits behind what is queued. */
	nb_event(nb, BGP_EV_BAD_MSG, &e);
	set_error(nb, "the peer does not read: %s", strerror(-rc));
	return false;
}

static void send_eor(struct neighbor *nb)
{
	uint8_t buf[64];
	int n;

	if (nb->v4 && (n = bgp_encode_eor(4, buf, sizeof(buf))) > 0 && !nb_send(nb, buf, (size_t)n))
		return;
	if (nb->v6 && (n = bgp_encode_eor(6, buf, sizeof(buf))) > 0)
		nb_send(nb, buf, (size_t)n);
}

static void nb_set_state(struct neighbor *nb, enum bgp_state next)
{
	char name[96];

	if (nb->state == next)
		return;
	if (next == BGP_ESTABLISHED || nb->state == BGP_ESTABLISHED)
		log_info("bgp: neighbor %s: %s -> %s", nb_name(nb, name, sizeof(name)),
			 bgp_state_name(nb->state), bgp_state_name(next));
	else
		log_debug("bgp: neighbor %s: %s -> %s", nb_name(nb, name, sizeof(name)),
			  bgp_state_name(nb->state), bgp_state_name(next));
	nb->state = next;
	nb->state_since_ms = wall_ms();
	if (nb->conn)
		nb->conn->state = next;
}

/*
 * Feed ev to the neighbour's FSM and carry out the actions. err: the
 * NOTIFICATION to send when the event is a bad message.
 */
static void nb_event(struct neighbor *nb, enum bgp_event ev, const struct bgp_err *err)
{
	struct bgp_speaker *sp = nb->sp;
	struct loop *l = sp->loop;
	struct bgp_fsm_out o;
	struct conn *c = nb->conn, *promote = NULL;

	bgp_fsm_step(nb->state, ev, nb->cfg.passive, &o);
	if ((o.actions & BGP_ACT_SEND_NOTIFICATION) && c && c->io.fd >= 0) {
		static struct bgp_err e;

		if (o.code) {
			if (o.code == BGP_ERR_CEASE) {
				send_cease(c, o.subcode);
			} else {
				memset(&e, 0, offsetof(struct bgp_err, data));
				e.code = o.code;
				e.subcode = o.subcode;
				send_notification(c, &e);
			}
		} else if (err) {
			send_notification(c, err);
		}
	}
	if (o.actions & BGP_ACT_CLOSE) {
		if (c) {
			conn_free(c);
			nb->conn = c = NULL;
		}
		if (nb->other &&
		    (ev == BGP_EV_STOP || ev == BGP_EV_STOP_QUIET || nb->stopped || sp->stopped)) {
			conn_free(nb->other);
			nb->other = NULL;
		} else if (nb->other) {
			/* Our connection failed (closed, reset, or refused by
			 * a NOTIFICATION: a peer with DelayOpen resolves the
			 * collision so) while the peer's colliding one waits
			 * for its OPEN (§6.8): that one carries on, once this
			 * step is done with the failed one. */
			promote = nb->other;
			nb->other = NULL;
		}
		/* Everything we announced is gone with the session. */
		nb->n_adj = 0;
	}
	if (o.actions & BGP_ACT_STOP_TIMERS && c) {
		loop_timer_cancel(l, &c->hold);
		loop_timer_cancel(l, &c->keepalive);
	}
	if (o.actions & BGP_ACT_STOP_CONNECT_RETRY)
		loop_timer_cancel(l, &nb->connect_retry);
	if (o.actions & BGP_ACT_CONNECT_RETRY)
		loop_timer_in(l, &nb->connect_retry, on_connect_retry, sp->cfg.connect_retry_ms);
	if (o.actions & BGP_ACT_CONNECT) {
		nb->conn = c = conn_connect(nb);
		if (!c) {
			/* Fails at once (no route, say): the FSM hears it
			 * after this step, not inside it. */
			nb->pending_fail = true;
			loop_defer(l, &nb->later, on_later);
		}
	}
	nb_set_state(nb, o.next);
	if (o.actions & BGP_ACT_SEND_OPEN && c)
		send_open(c);
	if (o.actions & BGP_ACT_HOLD_LARGE && c)
		loop_timer_in(l, &c->hold, on_hold, HOLD_LARGE_MS);
	if (o.actions & BGP_ACT_SEND_KEEPALIVE && c)
		send_keepalive(c);
	if (o.actions & BGP_ACT_HOLD_NEGOTIATED && c) {
		hold_arm(c);
		keepalive_arm(c);
	}
	if (o.actions & BGP_ACT_RESTART_HOLD && c)
		hold_arm(c);
	if (o.actions & BGP_ACT_RESTART_KEEPALIVE && c)
		keepalive_arm(c);
	if (o.actions & BGP_ACT_ESTABLISHED && c) {
		char name[96];

		nb->established_count++;
		nb->idle_hold_ms = 0;
		log_info("bgp: neighbor %s: established (hold %us%s%s%s%s)",
			 nb_name(nb, name, sizeof(name)), nb->hold_s, nb->v4 ? ", ipv4" : "",
			 nb->v6 ? ", ipv6" : "", nb->gr ? ", graceful restart" : "",
			 nb->as4 ? ", 4-octet AS" : "");
		nb_resend_all(nb);
		send_eor(nb);
		c = nb->conn; /* a peer that does not read may have lost it */
	}
	if (o.actions & BGP_ACT_REFRESH && c) {
		/* Send everything again, but with one copy of the table in
		 * flight at most: a refresh asked while output is queued
		 * waits for it to drain (a peer cannot make us queue a table
		 * per 23-byte request). */
		if (c->out_len > c->out_off) {
			nb->refresh_pending = true;
		} else {
			nb_resend_all(nb);
			c = nb->conn;
		}
	}
	if (o.actions & BGP_ACT_IDLE_HOLD && !nb->stopped && !sp->stopped) {
		/* Automatic restart, backing off while the session keeps
		 * failing (§8.1.1 IdleHoldTime, without damping). */
		nb->idle_hold_ms =
		    nb->idle_hold_ms ? nb->idle_hold_ms * 2 : sp->cfg.connect_retry_ms;
		if (nb->idle_hold_ms > IDLE_HOLD_MAX_MS)
			nb->idle_hold_ms = IDLE_HOLD_MAX_MS;
		loop_timer_in(l, &nb->idle_hold, on_idle_hold, nb->idle_hold_ms);
	}
	if (promote) {
		loop_timer_cancel(l, &nb->connect_retry);
		loop_timer_cancel(l, &nb->idle_hold);
		nb->conn = promote;
		nb_set_state(nb, BGP_OPENSENT);
	}
}

/* --- collisions (RFC 4271 §6.8) --------------------------------------------------- */

/*
 * An OPEN came on c while the neighbour has two connections: keep the one
 * the speaker with the higher BGP Identifier opened, close the other with
 * a Cease (Connection Collision Resolution). Returns the connection that
 * stays.
 */
static struct conn *resolve_collision(struct neighbor *nb, uint32_t remote_id)
{
	struct conn *a = nb->conn, *b = nb->other, *keep, *drop;
	bool keep_ours = nb->sp->router_id > remote_id;

	if (!a) { /* never left so by nb_event; the one there is stays */
		nb->conn = b;
		nb->other = NULL;
		return b;
	}
	keep = (a->outgoing == keep_ours) ? a : b;
	drop = keep == a ? b : a;
	send_cease(drop, BGP_CEASE_COLLISION);
	conn_free(drop);
	nb->other = NULL;
	if (keep != nb->conn) {
		/* The other connection carries on from OpenSent. */
		nb->conn = keep;
		loop_timer_cancel(nb->sp->loop, &nb->connect_retry);
		nb->state = BGP_OPENSENT;
		keep->state = BGP_OPENSENT;
	}
	return keep;
}

/* --- receiving ----------------------------------------------------------------- */

static void count_rx(struct neighbor *nb, uint8_t type)
{
	switch (type) {
	case BGP_OPEN:
		nb->rx.open++;
		break;
	case BGP_UPDATE:
		nb->rx.update++;
		break;
	case BGP_NOTIFICATION:
		nb->rx.notification++;
		break;
	case BGP_KEEPALIVE:
		nb->rx.keepalive++;
		break;
	default:
		nb->rx.route_refresh++;
	}
}

/* The bad message of a secondary connection: tell it and drop it. */
static void other_fail(struct neighbor *nb, const struct bgp_err *e)
{
	if (e)
		send_notification(nb->other, e);
	conn_free(nb->other);
	nb->other = NULL;
}

/*
 * Handle one whole message on c. Returns false if c is gone (closed by the
 * message's consequences).
 */
static bool handle_msg(struct conn *c, uint8_t type, const uint8_t *body, size_t len)
{
	struct neighbor *nb = c->nb;
	bool primary = c == nb->conn;
	static struct bgp_err e; /* ~4 KB: not on the stack of every call */
	char name[96];

	count_rx(nb, type);
	switch (type) {
	case BGP_OPEN: {
		struct bgp_open o;

		if (bgp_decode_open(body, len, &o, &e) || open_accept(nb, &o, &e)) {
			nb->malformed++;
			log_warn("bgp: neighbor %s: bad OPEN: %s", nb_name(nb, name, sizeof(name)),
				 bgp_err_str(e.code, e.subcode));
			if (!primary) {
				other_fail(nb, &e);
				return false;
			}
			nb_event(nb, BGP_EV_BAD_MSG, &e);
			return false;
		}
		c->peer = o;
		c->got_open = true;
		if (nb->other) {
			struct conn *keep = resolve_collision(nb, o.bgp_id);

			if (keep != c)
				return false; /* c was dropped */
					      /* open_accept ran for c: its negotiation stands. */
		} else if (!primary) {
			return true; /* cannot happen: a lone conn is primary */
		}
		nb_event(nb, BGP_EV_OPEN, NULL);
		return nb->conn == c;
	}
	case BGP_NOTIFICATION:
		if (bgp_decode_notification(body, len, &e) == 0) {
			set_error(nb, "received %s", bgp_err_str(e.code, e.subcode));
			log_warn("bgp: neighbor %s: received NOTIFICATION %s",
				 nb_name(nb, name, sizeof(name)), bgp_err_str(e.code, e.subcode));
		}
		if (!primary) {
			other_fail(nb, NULL);
			return false;
		}
		nb_event(nb, BGP_EV_NOTIFICATION, NULL);
		return false;
	default:
		break;
	}
	if (!primary) {
		/* Before its OPEN, a colliding connection has nothing to say. */
		memset(&e, 0, offsetof(struct bgp_err, data));
		e.code = BGP_ERR_FSM;
		e.subcode = BGP_FSM_UNEXPECTED_IN_OPENSENT;
		other_fail(nb, &e);
		return false;
	}
	switch (type) {
	case BGP_KEEPALIVE:
		if (bgp_decode_keepalive(body, len, &e)) {
			nb->malformed++;
			nb_event(nb, BGP_EV_BAD_MSG, &e);
			return false;
		}
		nb_event(nb, BGP_EV_KEEPALIVE, NULL);
		break;
	case BGP_UPDATE: {
		struct bgp_update_in u;

		if (nb->state != BGP_ESTABLISHED) {
			nb_event(nb, BGP_EV_UPDATE, NULL); /* an FSM error */
			return false;
		}
		if (bgp_decode_update(body, len, nb->as4, &u, &e)) {
			nb->malformed++;
			if (e.treat_as_withdraw) {
				/* RFC 7606: the session stays; we install
				 * nothing from peers anyway. */
				log_warn("bgp: neighbor %s: malformed UPDATE (%s), treated as "
					 "withdraw (RFC 7606)",
					 nb_name(nb, name, sizeof(name)),
					 bgp_err_str(e.code, e.subcode));
				set_error(nb,
					  "received a malformed UPDATE (%s), treated as withdraw",
					  bgp_err_str(e.code, e.subcode));
				nb_event(nb, BGP_EV_UPDATE, NULL);
				break;
			}
			log_warn("bgp: neighbor %s: malformed UPDATE: %s",
				 nb_name(nb, name, sizeof(name)), bgp_err_str(e.code, e.subcode));
			nb_event(nb, BGP_EV_BAD_UPDATE, &e);
			return false;
		}
		nb_event(nb, BGP_EV_UPDATE, NULL);
		break;
	}
	case BGP_ROUTE_REFRESH: {
		uint16_t afi;
		uint8_t safi;

		if (bgp_decode_route_refresh(body, len, &afi, &safi, &e)) {
			nb->malformed++;
			nb_event(nb, BGP_EV_BAD_MSG, &e);
			return false;
		}
		nb_event(nb, BGP_EV_ROUTE_REFRESH, NULL);
		break;
	}
	default:
		break;
	}
	return nb->conn == c;
}

/* Read and handle what c has; false if c is gone. */
static bool conn_read(struct conn *c)
{
	struct neighbor *nb = c->nb;
	static struct bgp_err e;
	size_t budget = READ_BUDGET;

	while (budget) {
		ssize_t n =
		    recv(c->io.fd, c->in + c->in_len, sizeof(c->in) - c->in_len, MSG_DONTWAIT);

		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return true;
		if (n <= 0) {
			char name[96];

			set_error(nb, "connection %s", n ? strerror(errno) : "closed by the peer");
			log_info("bgp: neighbor %s: connection %s", nb_name(nb, name, sizeof(name)),
				 n ? strerror(errno) : "closed by the peer");
			if (c != nb->conn) {
				other_fail(nb, NULL);
				return false;
			}
			nb_event(nb, BGP_EV_TCP_FAILS, NULL);
			return false;
		}
		c->in_len += (size_t)n;
		budget = budget > (size_t)n ? budget - (size_t)n : 0;
		/* Every whole message in the buffer, in order. */
		for (;;) {
			uint8_t type;
			uint16_t mlen;
			int rc = bgp_decode_header(c->in, c->in_len, &type, &mlen, &e);

			if (rc == -EAGAIN)
				break;
			if (rc) {
				nb->malformed++;
				if (c != nb->conn) {
					other_fail(nb, &e);
					return false;
				}
				nb_event(nb, BGP_EV_BAD_MSG, &e);
				return false;
			}
			if (c->in_len < mlen)
				break;
			if (!handle_msg(c, type, c->in + BGP_HDR_LEN, mlen - BGP_HDR_LEN))
				return false;
			memmove(c->in, c->in + mlen, c->in_len - mlen);
			c->in_len -= mlen;
		}
	}
	return true;
}

static void on_conn_io(struct loop_io *io, uint32_t events)
{
	struct conn *c = (struct conn *)((char *)io - offsetof(struct conn, io));
	struct neighbor *nb = c->nb;

	if (c->connecting) {
		int err = 0;
		socklen_t len = sizeof(err);

		if (getsockopt(io->fd, SOL_SOCKET, SO_ERROR, &err, &len) || err) {
			set_error(nb, "connect: %s", strerror(err ? err : errno));
			nb_event(nb, BGP_EV_TCP_FAILS, NULL);
			return;
		}
		if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
			return;
		c->connecting = false;
		nb_event(nb, BGP_EV_TCP_CONNECTED, NULL);
		if (nb->conn == c)
			conn_flush(c);
		return;
	}
	if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) {
		int rc = conn_flush(c);

		if (rc) {
			set_error(nb, "send: %s", strerror(-rc));
			if (c != nb->conn)
				other_fail(nb, NULL);
			else
				nb_event(nb, BGP_EV_TCP_FAILS, NULL);
			return;
		}
	}
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
		conn_read(c);
}

/* --- passive side ---------------------------------------------------------------- */

static struct neighbor *nb_find(struct bgp_speaker *sp, const struct lb_addr *a)
{
	for (size_t i = 0; i < sp->n_nbs; i++)
		if (lb_addr_equal(&sp->nbs[i]->cfg.addr, a))
			return sp->nbs[i];
	return NULL;
}

static void on_accept(struct loop_io *io, uint32_t events)
{
	struct bgp_speaker *sp =
	    (struct bgp_speaker *)((char *)io - offsetof(struct bgp_speaker, listener));
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	struct lb_addr peer;
	struct neighbor *nb;
	struct conn *c;
	char name[96], a[LB_ADDR_STRLEN];
	int fd;

	(void)events;
	for (int i = 0; i < 16; i++) {
		struct linger lg = {.l_onoff = 1, .l_linger = 0};

		sl = sizeof(ss);
		fd = accept4(io->fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		nb = lb_addr_from_sockaddr(&ss, &peer, NULL) ? NULL : nb_find(sp, &peer);
		if (!nb || nb->stopped || nb->state == BGP_IDLE) {
			/* Not a configured peer (or not now): refuse, with a
			 * reset rather than a session. */
			log_debug("bgp: connection from %s refused (%s)",
				  lb_addr_str(&peer, a, sizeof(a)),
				  nb ? "session stopped or waiting to restart" : "not a neighbor");
			setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
			close(fd);
			continue;
		}
		c = conn_new(nb, fd, false);
		if (!c)
			continue;
		if (nb->state == BGP_ESTABLISHED && nb->gr) {
			/* RFC 4724 §4.2: a new connection from a peer that
			 * negotiated graceful restart while its session looks
			 * established means the peer restarted: the old
			 * session is dead, the new one takes over (else the
			 * peer would be refused until our hold timer ran out). */
			log_info("bgp: neighbor %s: new connection while established: "
				 "the peer restarted, old session closed",
				 nb_name(nb, name, sizeof(name)));
			set_error(nb, "the peer restarted (new connection while established)");
			nb_event(nb, BGP_EV_TCP_FAILS, NULL);
			loop_timer_cancel(sp->loop, &nb->idle_hold);
			nb->idle_hold_ms = 0;
			nb_event(nb, BGP_EV_START, NULL);
		}
		switch (nb->state) {
		case BGP_CONNECT:
		case BGP_ACTIVE:
			/* Take the peer's connection instead of ours (and
			 * forget that ours failed, if it did). */
			if (nb->conn)
				conn_free(nb->conn);
			nb->pending_fail = false;
			nb->conn = c;
			c->state = nb->state;
			loop_io_watch(sp->loop, &c->io, EPOLLIN);
			nb_event(nb, BGP_EV_TCP_CONNECTED, NULL);
			break;
		case BGP_OPENSENT:
		case BGP_OPENCONFIRM:
			if (nb->other) {
				conn_free(c);
				break;
			}
			/* Both sides connected at once (§6.8): keep it until
			 * an OPEN tells which connection stays. */
			nb->other = c;
			c->state = BGP_OPENSENT;
			loop_io_watch(sp->loop, &c->io, EPOLLIN);
			send_open(c);
			loop_timer_in(sp->loop, &c->hold, on_hold, HOLD_LARGE_MS);
			if (nb->state == BGP_OPENCONFIRM && nb->conn->got_open)
				resolve_collision(nb, nb->conn->peer.bgp_id);
			break;
		default:
			/* Established: the new connection loses (§6.8). */
			log_info("bgp: neighbor %s: second connection while established: "
				 "closed (collision)",
				 nb_name(nb, name, sizeof(name)));
			send_cease(c, BGP_CEASE_COLLISION);
			conn_free(c);
			break;
		}
	}
}

static int listener_open(struct bgp_speaker *sp, uint16_t port, char **err)
{
	struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_port = htons(port)};
	int fd, one = 1, zero = 0;

	fd = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	/* One socket for both families (IPv4 peers as v4-mapped). */
	setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) || listen(fd, 16))
		goto fail;
	sp->listener = (struct loop_io){.fd = fd, .fn = on_accept};
	if (loop_io_watch(sp->loop, &sp->listener, EPOLLIN))
		goto fail;
	return 0;
fail:
	if (asprintf(err, "bgp: listening on port %u: %s", port, strerror(errno)) < 0)
		*err = NULL;
	if (fd >= 0)
		close(fd);
	sp->listener.fd = -1;
	return -EADDRINUSE;
}

/* --- routes ------------------------------------------------------------------------ */

static bool route_draining(const struct bgp_speaker *sp, const struct route *r, uint64_t *since)
{
	if (!sp->drain_all && !r->drain)
		return false;
	if (sp->drain_all && r->drain)
		*since = sp->drain_all_since_ms < r->drain_since_ms ? sp->drain_all_since_ms
								    : r->drain_since_ms;
	else
		*since = sp->drain_all ? sp->drain_all_since_ms : r->drain_since_ms;
	return true;
}

/* What the route should look like at the peers now. */
static enum sent route_want(const struct bgp_speaker *sp, const struct route *r)
{
	uint64_t since;

	if (!r->healthy)
		return SENT_NONE;
	if (!route_draining(sp, r, &since))
		return SENT_PLAIN;
	return sp->loop->now_ms >= since + sp->cfg.drain_delay_ms ? SENT_NONE : SENT_GSHUT;
}

static struct adj *adj_find(struct neighbor *nb, const struct lb_addr *a)
{
	for (size_t i = 0; i < nb->n_adj; i++)
		if (lb_addr_equal(&nb->adj[i].addr, a))
			return &nb->adj[i];
	return NULL;
}

static void prefix_of(const struct lb_addr *a, struct bgp_prefix *p)
{
	memset(p, 0, sizeof(*p));
	p->family = a->family == LB_AF_INET ? 4 : 6;
	p->len = a->family == LB_AF_INET ? 32 : 128;
	memcpy(p->addr, a->bytes, a->family == LB_AF_INET ? 4 : 16);
}

/* Send one UPDATE kind (announce plain / with GRACEFUL_SHUTDOWN, or
 * withdraw) for the prefixes of one family, in messages that fit. */
static bool send_updates(struct neighbor *nb, uint8_t family, enum sent kind,
			 const struct bgp_prefix *p, size_t n)
{
	static const uint32_t gshut = BGP_COMMUNITY_GRACEFUL_SHUTDOWN;
	struct bgp_speaker *sp = nb->sp;
	uint8_t buf[BGP_MAX_LEN];
	const size_t chunk = 200; /* 200 /128s and the attributes fit 4096 */

	for (size_t off = 0; off < n; off += chunk) {
		size_t k = n - off < chunk ? n - off : chunk;
		struct bgp_update_out u = {
		    .family = family, .local_as = sp->cfg.asn, .as4 = nb->as4, .ibgp = nb->ibgp};
		int len;

		if (kind == SENT_NONE) {
			u.withdraw = p + off;
			u.n_withdraw = k;
		} else {
			u.announce = p + off;
			u.n_announce = k;
			memcpy(u.next_hop, family == 4 ? sp->nh4.bytes : sp->nh6.bytes,
			       family == 4 ? 4 : 16);
			if (kind == SENT_GSHUT) {
				u.communities = &gshut;
				u.n_communities = 1;
			}
		}
		len = bgp_encode_update(&u, buf, sizeof(buf));
		if (len > 0 && !nb_send(nb, buf, (size_t)len))
			return false;
	}
	return true;
}

/* Bring an established neighbour's Adj-RIB-Out to what the routes want. */
static void nb_sync(struct neighbor *nb)
{
	struct bgp_speaker *sp = nb->sp;
	size_t cap = sp->n_routes + nb->n_adj + 1;
	struct bgp_prefix *lists[3];
	size_t counts[3];

	if (nb->state != BGP_ESTABLISHED || !nb->conn)
		return;
	for (int k = 0; k < 3; k++)
		lists[k] = calloc(cap, sizeof(struct bgp_prefix));
	if (!lists[0] || !lists[1] || !lists[2])
		goto out;
	for (uint8_t fam = 4; fam <= 6; fam += 2) {
		bool on = fam == 4 ? nb->v4 : nb->v6;

		memset(counts, 0, sizeof(counts));
		if (!on)
			continue;
		/* Routes that changed. */
		for (size_t i = 0; i < sp->n_routes; i++) {
			const struct route *r = &sp->routes[i];
			enum sent want = route_want(sp, r);
			struct adj *a = adj_find(nb, &r->addr);
			enum sent have = a ? a->sent : SENT_NONE;

			if ((r->addr.family == LB_AF_INET ? 4 : 6) != fam || want == have)
				continue;
			prefix_of(&r->addr, &lists[want][counts[want]++]);
			if (!a && nb->n_adj == nb->cap_adj) {
				size_t nc = nb->cap_adj ? nb->cap_adj * 2 : 16;
				struct adj *na = realloc(nb->adj, nc * sizeof(*na));

				if (!na)
					continue;
				nb->adj = na;
				nb->cap_adj = nc;
			}
			if (!a) {
				a = &nb->adj[nb->n_adj++];
				a->addr = r->addr;
			}
			a->sent = want;
		}
		/* Routes that are gone altogether. */
		for (size_t i = 0; i < nb->n_adj; i++) {
			struct adj *a = &nb->adj[i];
			bool known = false;

			if ((a->addr.family == LB_AF_INET ? 4 : 6) != fam || a->sent == SENT_NONE)
				continue;
			for (size_t j = 0; j < sp->n_routes && !known; j++)
				known = lb_addr_equal(&sp->routes[j].addr, &a->addr);
			if (!known) {
				prefix_of(&a->addr, &lists[SENT_NONE][counts[SENT_NONE]++]);
				a->sent = SENT_NONE;
			}
		}
		if (!send_updates(nb, fam, SENT_NONE, lists[SENT_NONE], counts[SENT_NONE]) ||
		    !send_updates(nb, fam, SENT_PLAIN, lists[SENT_PLAIN], counts[SENT_PLAIN]) ||
		    !send_updates(nb, fam, SENT_GSHUT, lists[SENT_GSHUT], counts[SENT_GSHUT]))
			goto out; /* the session is gone, and its Adj-RIB-Out with it */
	}
	/* Forget what is withdrawn. */
	for (size_t i = 0; i < nb->n_adj;)
		if (nb->adj[i].sent == SENT_NONE)
			nb->adj[i] = nb->adj[--nb->n_adj];
		else
			i++;
out:
	for (int k = 0; k < 3; k++)
		free(lists[k]);
}

static void on_drain_timer(struct loop_timer *t)
{
	struct bgp_speaker *sp =
	    (struct bgp_speaker *)((char *)t - offsetof(struct bgp_speaker, drain_timer));

	speaker_sync(sp);
}

/* Log route changes, sync every neighbour, arm the next drain deadline. */
static void speaker_sync(struct bgp_speaker *sp)
{
	uint64_t next = 0;

	for (size_t i = 0; i < sp->n_routes; i++) {
		struct route *r = &sp->routes[i];
		enum sent want = route_want(sp, r);
		uint64_t since;
		char a[LB_ADDR_STRLEN];

		if (want != r->shown) {
			static const char *const what[] = {"withdrawn", "announced",
							   "announced with GRACEFUL_SHUTDOWN"};
			const char *why = !r->healthy	      ? " (not enough healthy reals)"
					  : want == SENT_NONE ? " (drained)"
							      : "";

			log_info("bgp: %s/%u %s%s", lb_addr_str(&r->addr, a, sizeof(a)),
				 r->addr.family == LB_AF_INET ? 32 : 128, what[want], why);
			r->shown = want;
		}
		if (want == SENT_GSHUT && route_draining(sp, r, &since)) {
			uint64_t at = since + sp->cfg.drain_delay_ms;

			if (!next || at < next)
				next = at;
		}
	}
	for (size_t i = 0; i < sp->n_nbs; i++)
		nb_sync(sp->nbs[i]);
	if (next)
		loop_timer_at(sp->loop, &sp->drain_timer, on_drain_timer, next);
	else
		loop_timer_cancel(sp->loop, &sp->drain_timer);
}

void bgp_speaker_set_prefixes(struct bgp_speaker *sp, const struct bgp_vip_prefix *p, size_t n)
{
	struct route *next = calloc(n ? n : 1, sizeof(*next));

	if (!next) {
		log_err("bgp: out of memory updating routes");
		return;
	}
	for (size_t i = 0; i < n; i++) {
		next[i].addr = p[i].addr;
		next[i].healthy = p[i].healthy;
		/* Keep the drain and log state of a route we had. */
		for (size_t j = 0; j < sp->n_routes; j++)
			if (lb_addr_equal(&sp->routes[j].addr, &p[i].addr)) {
				next[i].drain = sp->routes[j].drain;
				next[i].drain_since_ms = sp->routes[j].drain_since_ms;
				next[i].shown = sp->routes[j].shown;
			}
	}
	free(sp->routes);
	sp->routes = next;
	sp->n_routes = n;
	speaker_sync(sp);
}

int bgp_speaker_drain(struct bgp_speaker *sp, const struct lb_addr *pfx, bool on)
{
	struct route *r = NULL;

	if (!pfx) {
		if (on && !sp->drain_all)
			sp->drain_all_since_ms = sp->loop->now_ms;
		sp->drain_all = on;
		if (!on)
			for (size_t i = 0; i < sp->n_routes; i++)
				sp->routes[i].drain = false;
		speaker_sync(sp);
		return 0;
	}
	for (size_t i = 0; i < sp->n_routes && !r; i++)
		if (lb_addr_equal(&sp->routes[i].addr, pfx))
			r = &sp->routes[i];
	if (!r)
		return -ENOENT;
	if (on && !r->drain)
		r->drain_since_ms = sp->loop->now_ms;
	r->drain = on;
	speaker_sync(sp);
	return 0;
}

/* --- neighbours: life cycle ---------------------------------------------------------- */

static struct neighbor *nb_new(struct bgp_speaker *sp, const struct lbd_bgp_neighbor_cfg *cfg)
{
	struct neighbor *nb = calloc(1, sizeof(*nb));

	if (!nb)
		return NULL;
	nb->sp = sp;
	nb->cfg = *cfg;
	nb->state = BGP_IDLE;
	nb->state_since_ms = wall_ms();
	return nb;
}

static void nb_free(struct neighbor *nb)
{
	struct loop *l = nb->sp->loop;

	loop_timer_cancel(l, &nb->connect_retry);
	loop_timer_cancel(l, &nb->idle_hold);
	loop_task_cancel(&nb->later);
	if (nb->conn)
		conn_free(nb->conn);
	if (nb->other)
		conn_free(nb->other);
	free(nb->adj);
	free(nb);
}

/* Stop a neighbour with a Cease of subcode (0: close quietly). */
static void nb_stop(struct neighbor *nb, uint8_t subcode)
{
	nb->stopped = true;
	loop_timer_cancel(nb->sp->loop, &nb->idle_hold);
	if (subcode && nb->conn && nb->state >= BGP_OPENSENT) {
		send_cease(nb->conn, subcode);
		nb_event(nb, BGP_EV_STOP_QUIET, NULL);
	} else {
		nb_event(nb, subcode ? BGP_EV_STOP : BGP_EV_STOP_QUIET, NULL);
	}
}

static bool nb_cfg_same(const struct lbd_bgp_neighbor_cfg *a, const struct lbd_bgp_neighbor_cfg *b)
{
	return a->port == b->port && a->asn == b->asn && a->passive == b->passive &&
	       a->ipv4 == b->ipv4 && a->ipv6 == b->ipv6 && a->hold_time == b->hold_time &&
	       lb_addr_equal(&a->local, &b->local);
}

static void params_take(struct bgp_speaker *sp, const struct bgp_speaker_params *p)
{
	sp->cfg = *p->cfg;
	sp->cfg.neighbors = NULL;
	sp->cfg.n_neighbors = 0;
	sp->router_id = p->router_id;
	sp->nh4 = p->next_hop4;
	sp->nh6 = p->next_hop6;
	sp->restarted = p->restarted;
	sp->fwd = p->forwarding_preserved;
}

struct bgp_speaker *bgp_speaker_new(struct loop *loop, const struct bgp_speaker_params *p,
				    char **err)
{
	struct bgp_speaker *sp = calloc(1, sizeof(*sp));

	*err = NULL;
	if (!sp)
		return NULL;
	sp->loop = loop;
	sp->listener.fd = -1;
	sp->started_ms = loop->now_ms ? loop->now_ms : loop_clock_ms();
	params_take(sp, p);
	if (p->cfg->listen_port && listener_open(sp, p->cfg->listen_port, err)) {
		free(sp);
		return NULL;
	}
	sp->nbs = calloc(p->cfg->n_neighbors ? p->cfg->n_neighbors : 1, sizeof(*sp->nbs));
	if (!sp->nbs) {
		bgp_speaker_free(sp);
		return NULL;
	}
	for (size_t i = 0; i < p->cfg->n_neighbors; i++) {
		struct neighbor *nb = nb_new(sp, &p->cfg->neighbors[i]);

		if (!nb) {
			bgp_speaker_free(sp);
			return NULL;
		}
		sp->nbs[sp->n_nbs++] = nb;
		nb_event(nb, BGP_EV_START, NULL);
	}
	log_info("bgp: AS %u, router id %u.%u.%u.%u, %zu neighbors%s", sp->cfg.asn,
		 sp->router_id >> 24, (sp->router_id >> 16) & 0xff, (sp->router_id >> 8) & 0xff,
		 sp->router_id & 0xff, sp->n_nbs, sp->restarted ? " (graceful restart)" : "");
	return sp;
}

int bgp_speaker_reconfigure(struct bgp_speaker *sp, const struct bgp_speaker_params *p, char **err)
{
	struct neighbor **nbs = calloc(p->cfg->n_neighbors ? p->cfg->n_neighbors : 1, sizeof(*nbs));
	bool reset_all = p->cfg->asn != sp->cfg.asn || p->router_id != sp->router_id ||
			 p->cfg->gr_restart_time != sp->cfg.gr_restart_time;
	bool new_nh =
	    !lb_addr_equal(&p->next_hop4, &sp->nh4) || !lb_addr_equal(&p->next_hop6, &sp->nh6);
	size_t n = 0;

	*err = NULL;
	if (!nbs)
		return -ENOMEM;
	if (p->cfg->listen_port != sp->cfg.listen_port) {
		struct loop_io old = sp->listener;

		if (p->cfg->listen_port && listener_open(sp, p->cfg->listen_port, err)) {
			sp->listener = old;
			free(nbs);
			return -EADDRINUSE;
		}
		if (!p->cfg->listen_port)
			sp->listener.fd = -1;
		if (old.fd >= 0)
			loop_io_close(sp->loop, &old);
	}
	for (size_t i = 0; i < sp->n_nbs; i++)
		sp->nbs[i]->keep = false;
	/* Neighbours that stay (possibly reset), and new ones. */
	for (size_t i = 0; i < p->cfg->n_neighbors; i++) {
		const struct lbd_bgp_neighbor_cfg *nc = &p->cfg->neighbors[i];
		struct neighbor *nb = nb_find(sp, &nc->addr);

		if (nb && (reset_all || !nb_cfg_same(&nb->cfg, nc))) {
			nb->keep = false; /* replaced below */
			nb_stop(nb, BGP_CEASE_OTHER_CONFIG_CHANGE);
			nb_free(nb);
			for (size_t j = 0; j < sp->n_nbs; j++)
				if (sp->nbs[j] == nb)
					sp->nbs[j] = NULL;
			nb = NULL;
		}
		if (nb) {
			nb->keep = true;
			snprintf(nb->cfg.description, sizeof(nb->cfg.description), "%s",
				 nc->description);
			nbs[n++] = nb;
			continue;
		}
		nb = nb_new(sp, nc);
		if (!nb)
			continue; /* out of memory: this one stays down */
		nb->keep = true;
		nbs[n++] = nb;
	}
	for (size_t i = 0; i < sp->n_nbs; i++) {
		struct neighbor *nb = sp->nbs[i];

		if (nb && !nb->keep) {
			nb_stop(nb, BGP_CEASE_PEER_DECONFIGURED);
			nb_free(nb);
		}
	}
	free(sp->nbs);
	sp->nbs = nbs;
	sp->n_nbs = n;
	params_take(sp, p);
	for (size_t i = 0; i < n; i++) {
		if (nbs[i]->state == BGP_IDLE && !loop_timer_armed(&nbs[i]->idle_hold))
			nb_event(nbs[i], BGP_EV_START, NULL);
		else if (new_nh && nbs[i]->state == BGP_ESTABLISHED)
			nbs[i]->n_adj = 0; /* announce again with the new next hop */
	}
	speaker_sync(sp);
	return 0;
}

void bgp_speaker_stop(struct bgp_speaker *sp, bool cease)
{
	if (sp->stopped)
		return;
	sp->stopped = true;
	for (size_t i = 0; i < sp->n_nbs; i++)
		nb_stop(sp->nbs[i], cease ? BGP_CEASE_ADMIN_SHUTDOWN : 0);
	if (sp->listener.fd >= 0)
		loop_io_close(sp->loop, &sp->listener);
	loop_timer_cancel(sp->loop, &sp->drain_timer);
}

void bgp_speaker_free(struct bgp_speaker *sp)
{
	if (!sp)
		return;
	bgp_speaker_stop(sp, false);
	for (size_t i = 0; i < sp->n_nbs; i++)
		nb_free(sp->nbs[i]);
	free(sp->nbs);
	free(sp->routes);
	free(sp);
}

/* --- admin API ------------------------------------------------------------------------ */

static json_t *counts_json(const struct msg_counts *m)
{
	return json_pack("{s:I,s:I,s:I,s:I,s:I}", "open", (json_int_t)m->open, "update",
			 (json_int_t)m->update, "notification", (json_int_t)m->notification,
			 "keepalive", (json_int_t)m->keepalive, "route_refresh",
			 (json_int_t)m->route_refresh);
}

json_t *bgp_speaker_neighbors_json(struct bgp_speaker *sp)
{
	json_t *arr = json_array();
	uint64_t now = wall_ms();

	for (size_t i = 0; i < sp->n_nbs; i++) {
		const struct neighbor *nb = sp->nbs[i];
		bool est = nb->state == BGP_ESTABLISHED;
		char a[LB_ADDR_STRLEN], id[16];
		json_t *fam = json_array(), *o;
		size_t announced = 0;

		for (size_t k = 0; k < nb->n_adj; k++)
			announced += nb->adj[k].sent != SENT_NONE;
		if (est ? nb->v4 : nb->cfg.ipv4)
			json_array_append_new(fam, json_string("ipv4"));
		if (est ? nb->v6 : nb->cfg.ipv6)
			json_array_append_new(fam, json_string("ipv6"));
		snprintf(id, sizeof(id), "%u.%u.%u.%u", nb->remote_id >> 24,
			 (nb->remote_id >> 16) & 0xff, (nb->remote_id >> 8) & 0xff,
			 nb->remote_id & 0xff);
		o = json_pack("{s:s,s:i,s:I,s:s,s:s,s:I,s:b}", "address",
			      lb_addr_str(&nb->cfg.addr, a, sizeof(a)), "port", (int)nb->cfg.port,
			      "asn", (json_int_t)nb->cfg.asn, "description", nb->cfg.description,
			      "state", bgp_state_name(nb->state), "state_for_s",
			      (json_int_t)((now - nb->state_since_ms) / 1000), "passive",
			      nb->cfg.passive);
		json_object_set_new(
		    o, "uptime_s",
		    est ? json_integer((json_int_t)((now - nb->state_since_ms) / 1000))
			: json_null());
		json_object_set_new(o, "families", fam);
		json_object_set_new(o, "router_id", est ? json_string(id) : json_null());
		json_object_set_new(o, "hold_time_s", est ? json_integer(nb->hold_s) : json_null());
		json_object_set_new(o, "graceful_restart", json_boolean(est && nb->gr));
		json_object_set_new(o, "four_octet_as", json_boolean(est && nb->as4));
		json_object_set_new(o, "prefixes_announced", json_integer((json_int_t)announced));
		json_object_set_new(o, "established_count",
				    json_integer((json_int_t)nb->established_count));
		json_object_set_new(o, "malformed_received",
				    json_integer((json_int_t)nb->malformed));
		json_object_set_new(o, "received", counts_json(&nb->rx));
		json_object_set_new(o, "sent", counts_json(&nb->tx));
		json_object_set_new(o, "last_error",
				    nb->last_error[0] ? json_string(nb->last_error) : json_null());
		json_object_set_new(
		    o, "last_error_s_ago",
		    nb->last_error_ms ? json_integer((json_int_t)((now - nb->last_error_ms) / 1000))
				      : json_null());
		json_array_append_new(arr, o);
	}
	return arr;
}

json_t *bgp_speaker_routes_json(struct bgp_speaker *sp)
{
	json_t *arr = json_array();

	for (size_t i = 0; i < sp->n_routes; i++) {
		const struct route *r = &sp->routes[i];
		enum sent want = route_want(sp, r);
		bool v4 = r->addr.family == LB_AF_INET;
		char a[LB_ADDR_STRLEN], nh[LB_ADDR_STRLEN], pfx[LB_ADDR_STRLEN + 8];
		json_t *to = json_array(), *o;
		uint64_t since;
		const char *state;

		snprintf(pfx, sizeof(pfx), "%s/%u", lb_addr_str(&r->addr, a, sizeof(a)),
			 v4 ? 32 : 128);
		for (size_t k = 0; k < sp->n_nbs; k++) {
			struct neighbor *nb = sp->nbs[k];
			struct adj *ad = adj_find(nb, &r->addr);

			if (ad && ad->sent != SENT_NONE && nb->state == BGP_ESTABLISHED)
				json_array_append_new(
				    to, json_string(lb_addr_str(&nb->cfg.addr, nh, sizeof(nh))));
		}
		state = !r->healthy	     ? "withdrawn: not enough healthy reals"
			: want == SENT_PLAIN ? "announced"
			: want == SENT_GSHUT ? "draining"
					     : "withdrawn: drained";
		o = json_pack("{s:s,s:s,s:o}", "prefix", pfx, "state", state, "sent_to", to);
		json_object_set_new(
		    o, "next_hop",
		    (v4 ? sp->nh4.family : sp->nh6.family)
			? json_string(lb_addr_str(v4 ? &sp->nh4 : &sp->nh6, nh, sizeof(nh)))
			: json_null());
		json_object_set_new(o, "communities",
				    want == SENT_GSHUT ? json_pack("[s]", "65535:0")
						       : json_array());
		if (want == SENT_GSHUT && route_draining(sp, r, &since))
			json_object_set_new(
			    o, "withdraw_in_ms",
			    json_integer(
				(json_int_t)(since + sp->cfg.drain_delay_ms - sp->loop->now_ms)));
		json_array_append_new(arr, o);
	}
	return arr;
}
