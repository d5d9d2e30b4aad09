// SPDX-License-Identifier: GPL-2.0-only
/*
 * gslbd - the GSLB's authoritative DNS server: answers the service names
 * of its zones with the VIP of the best healthy PoP for each client
 * subnet (dns.h says how it chooses).
 *
 * Threads: the main thread runs the admin API, the signals, the map
 * watcher and the configuration; `workers` threads answer queries, each
 * with its own UDP and TCP sockets on every listen address
 * (SO_REUSEPORT: the kernel spreads clients over them) and its own event
 * loop. The workers read one snapshot (configuration, map, PoP states)
 * through RCU: a new map or configuration is swapped in with one pointer
 * and the old one freed once no worker can still see it, so queries never
 * take a lock and never see half of a change.
 *
 * Map updates: the map file is watched with inotify (a publish is a
 * rename into place) and also checked once a second by its inode and
 * mtime, so a missed event or a directory created late still gets picked
 * up. A file that fails its checks is refused and the old map keeps
 * serving.
 *
 * Bounds: UDP is read in batches of DNS_BATCH with a budget per wake-up;
 * TCP connections are capped per worker (TCP_MAX_CONNS), idle ones closed
 * after TCP_IDLE_MS (RFC 7766 section 6.2.3), a connection whose replies
 * are not being read stops being read (its output buffer is bounded by one
 * response). A per-source-prefix token bucket limits UDP responses (the
 * reflection/amplification defence); over TCP the handshake proves the
 * source, so it is not limited.
 */
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <libknot/xdp/eth.h>
#include <libknot/xdp/xdp.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <urcu/urcu-memb.h>

#include "addr.h"
#include "lb_abi.h"
#include "conf.h"
#include "dns.h"
#include "geo.h"
#include "http_admin.h"
#include "log.h"
#include "loop.h"
#include "map.h"
#include "prom.h"
#include "sdnotify.h"
#include "gslb_xdp.h"
#include "xdp_answer.h"

#define DNS_BATCH     64
#define UDP_BUF	      4096
#define UDP_BUDGET    1024 /* datagrams per wake-up before other events run */
#define TCP_MAX_CONNS 512
#define TCP_IDLE_MS   10000
#define TCP_MSG_MS    2000 /* a query to arrive whole, a response to be read */
#define TCP_MAX_MSG   65535
#define ARENA_SIZE    (1 << 20)
#define RRL_SLOTS     16384
#define MAP_CHECK_MS  1000
#define XA_LISTS      65536 /* distinct PoP lists the XDP answer program holds */

#ifndef container_of
#define container_of(p, t, m) ((t *)((char *)(p)-offsetof(t, m)))
#endif

/* ---- the snapshot the workers read ---- */

struct snap {
	struct gslb_view view;
};

static struct snap *g_snap; /* RCU-protected */
static uint64_t g_rrl_seed; /* the rate limiter's hash key, random per start */
static atomic_bool g_stop;

/* ---- counters: one writer (a worker), read by the main thread ---- */

enum { T_UDP, T_TCP, T_XDP, T__N };
#define RCODE_SLOTS 24 /* 0..15 and BADVERS */

struct wstats {
	_Atomic uint64_t queries[T__N];
	_Atomic uint64_t rcode[RCODE_SLOTS];
	_Atomic uint64_t ecs, tc, dropped, rrl_dropped, rrl_slipped, udp_truncated_in;
	_Atomic uint64_t how[GSLB_HOW__N];
	_Atomic uint64_t pop[GMAP_MAX_POPS];
	_Atomic uint64_t tcp_accepted, tcp_evicted, tcp_idle_closed;
	_Atomic uint64_t xdp_bad, xdp_martian, xdp_tx_full, xdp_tx_error;
};

static inline void inc(_Atomic uint64_t *c)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1,
			      memory_order_relaxed);
}

/* ---- workers ---- */

struct rrl_slot {
	uint64_t key;
	uint64_t last_ms;
	uint64_t tokens_milli; /* tokens × 1000 */
	uint32_t limited;
};

struct worker;

struct udp_sock {
	struct loop_io io;
	struct worker *w;
};

struct tcp_listener {
	struct loop_io io;
	struct worker *w;
};

/* One AF_XDP socket: a worker's RX queue of the xdp interface. */
struct xdp_sock {
	struct loop_io io;
	struct loop_timer kick; /* retries a wake-up the kernel cut short */
	unsigned kick_ms;	/* its back-off: 1, 2, 4 ... 128 ms */
	struct worker *w;
	knot_xdp_socket_t *s;
};

struct tcp_conn {
	struct loop_io io;
	struct loop_timer idle;
	struct worker *w;
	struct sockaddr_storage peer;
	uint64_t last_ms;    /* last whole query or response */
	uint64_t busy_since; /* a message half-read or a response unread since; 0 */
	uint8_t in[2 + TCP_MAX_MSG];
	size_t in_len;
	uint8_t out[2 + TCP_MAX_MSG];
	size_t out_len, out_off;
	struct tcp_conn *prev, *next;
};

struct worker {
	unsigned id;
	pthread_t thread;
	struct loop loop;
	struct loop_io wake;
	struct udp_sock udp[GSLB_MAX_LISTEN];
	struct tcp_listener tcp[GSLB_MAX_LISTEN];
	unsigned n_sock;
	struct tcp_conn *conns, *conns_tail; /* newest first */
	unsigned n_conns;
	struct dns_arena arena;
	struct rrl_slot *rrl;
	struct wstats st;
	/* recvmmsg buffers */
	struct mmsghdr msgs[DNS_BATCH], out_msgs[DNS_BATCH];
	struct iovec iov[DNS_BATCH], out_iov[DNS_BATCH];
	struct sockaddr_storage from[DNS_BATCH];
	uint8_t (*bufs)[UDP_BUF];
	uint8_t (*obufs)[UDP_BUF];
	struct xdp_sock xdp; /* .s NULL: no queue for this worker */
	knot_xdp_msg_t xin[DNS_BATCH], xout[DNS_BATCH];
};

static struct worker *g_workers;
static unsigned g_n_workers;

/* The listen addresses (never wildcards with xdp: the configuration
 * refuses them), for what the XDP program hands over: it takes the port on
 * any address of the interface, the kernel would not; and the largest
 * answer a frame can carry (the interface's MTU). */
static struct {
	uint8_t a[GSLB_MAX_LISTEN][16];
	uint8_t fam[GSLB_MAX_LISTEN]; /* AF_INET, AF_INET6 */
	unsigned n;
	size_t max4, max6; /* UDP payload per family */
	uint32_t prog;	   /* the XDP program worker 0 loaded, 0 before */
} g_xdp_dst;

static void xdp_dst_init(const struct gslb_conf *c)
{
	memset(&g_xdp_dst, 0, sizeof(g_xdp_dst));
	for (unsigned i = 0; i < c->n_listen; i++) {
		const struct lb_addr *a = &c->listen_addr[i];
		bool v6 = a->family == LB_AF_INET6;
		memcpy(g_xdp_dst.a[g_xdp_dst.n], a->bytes, 16);
		g_xdp_dst.fam[g_xdp_dst.n++] = v6 ? AF_INET6 : AF_INET;
	}
	/* An answer leaves as one frame: no fragments, so it must fit the
	 * MTU (dns_answer truncates with TC to fit). */
	int mtu = knot_eth_mtu(c->xdp_if);
	if (mtu < 1280)
		mtu = 1280;
	g_xdp_dst.max4 = (size_t)mtu - 28;
	g_xdp_dst.max6 = (size_t)mtu - 48;
}

/*
 * Would the kernel have delivered this datagram to our sockets? To one of
 * the listen addresses, from a unicast source that is not the host's own
 * kind of address: not 0/8, 127/8, multicast, 240/4 or broadcast (IPv4);
 * not ::, ::1, multicast or IPv4-mapped (IPv6); not one of our listen
 * addresses. An answer to those would go somewhere it should not (the
 * kernel drops them as martians).
 */
static bool xdp_plausible(const knot_xdp_msg_t *m)
{
	bool v6 = m->flags & KNOT_XDP_MSG_IPV6;
	const uint8_t *src, *dst;
	/* Sent to a group MAC (broadcast, multicast): the answer's source
	 * MAC would be that group address. */
	if (m->eth_to[0] & 1)
		return false;
	if (v6) {
		src = m->ip_from.sin6_addr.s6_addr;
		dst = m->ip_to.sin6_addr.s6_addr;
		static const uint8_t zero[15], mapped[12] = {[10] = 0xff, [11] = 0xff};
		if (src[0] == 0xff || !memcmp(src, mapped, 12) ||
		    (!memcmp(src, zero, 15) && src[15] <= 1))
			return false;
	} else {
		src = (const uint8_t *)&((const struct sockaddr_in *)&m->ip_from)->sin_addr;
		dst = (const uint8_t *)&((const struct sockaddr_in *)&m->ip_to)->sin_addr;
		if (src[0] == 0 || src[0] == 127 || src[0] >= 224)
			return false;
	}
	/* To a listen address, and not from one (the answer would come back
	 * to us). */
	bool to_us = false;
	for (unsigned i = 0; i < g_xdp_dst.n; i++) {
		if (g_xdp_dst.fam[i] != (v6 ? AF_INET6 : AF_INET))
			continue;
		if (!memcmp(g_xdp_dst.a[i], src, v6 ? 16 : 4))
			return false;
		if (!memcmp(g_xdp_dst.a[i], dst, v6 ? 16 : 4))
			to_us = true;
	}
	return to_us;
}

/* Is this UDP response allowed (1), to be sent truncated (2), or dropped (0)? */
static int rrl_check(struct worker *w, const struct gslb_rrl *c,
		     const struct sockaddr_storage *from, uint64_t now)
{
	if (!c->rate)
		return 1;
	uint64_t key;
	if (from->ss_family == AF_INET6) {
		const uint8_t *a = ((const struct sockaddr_in6 *)from)->sin6_addr.s6_addr;
		uint8_t p[16] = {0};
		unsigned bits = c->v6_prefix;
		memcpy(p, a, (bits + 7) / 8);
		if (bits % 8)
			p[bits / 8] &= (uint8_t)(0xff00 >> (bits % 8));
		uint64_t h0, h1;
		memcpy(&h0, p, 8);
		memcpy(&h1, p + 8, 8);
		key = (h0 ^ (h1 * 0x9e3779b97f4a7c15ULL)) | 1;
	} else {
		uint32_t a = ntohl(((const struct sockaddr_in *)from)->sin_addr.s_addr);
		a &= c->v4_prefix ? ~0u << (32 - c->v4_prefix) : 0;
		key = ((uint64_t)a << 1) | 0x8000000000000000ULL;
	}
	/* Keyed with a secret drawn at start: nobody can aim a prefix at
	 * another's slot. */
	uint64_t h = key ^ g_rrl_seed;
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	struct rrl_slot *s = &w->rrl[h % RRL_SLOTS];
	uint64_t cap = (uint64_t)c->burst * 1000;
	if (s->key != key) {
		/*
		 * Another prefix had the slot. A slot idle for a second is
		 * taken with a full bucket; a busy one is shared as it is, so
		 * two prefixes meeting in a slot (by chance: the hash is
		 * keyed) can only limit each other, never refill each other.
		 */
		if (now - s->last_ms >= 1000 || !s->key)
			s->tokens_milli = cap;
		s->key = key;
		s->limited = 0;
	}
	uint64_t t = s->tokens_milli + (now - s->last_ms) * c->rate;
	s->tokens_milli = t > cap ? cap : t;
	s->last_ms = now;
	if (s->tokens_milli >= 1000) {
		s->tokens_milli -= 1000;
		return 1;
	}
	s->limited++;
	return c->slip && s->limited % c->slip == 0 ? 2 : 0;
}

static uint16_t port_of(const struct sockaddr_storage *ss)
{
	return ss->ss_family == AF_INET6 ? ((const struct sockaddr_in6 *)ss)->sin6_port
					 : ((const struct sockaddr_in *)ss)->sin_port;
}

static void count(struct worker *w, const struct dns_result *r, int t)
{
	inc(&w->st.queries[t]);
	if (r->drop) {
		inc(&w->st.dropped);
		return;
	}
	inc(&w->st.rcode[r->rcode < RCODE_SLOTS ? r->rcode : RCODE_SLOTS - 1]);
	if (r->ecs)
		inc(&w->st.ecs);
	if (r->tc)
		inc(&w->st.tc);
	if (r->how != GSLB_HOW_NONE)
		inc(&w->st.how[r->how]);
	if (r->pop != GSLB_NO_POP)
		inc(&w->st.pop[r->pop]);
}

/*
 * What both UDP paths do after dns_answer: count the query, then let the
 * rate limiter pass the response (len bytes at out), drop it or slip it
 * (truncated to a TC response in place). Returns the length to send, 0 for
 * nothing.
 */
static size_t udp_finish(struct worker *w, const struct snap *s, const struct dns_result *r,
			 const struct sockaddr_storage *from, uint8_t *out, size_t len,
			 uint64_t now, int transport)
{
	count(w, r, transport);
	if (!len)
		return 0;
	int verdict = rrl_check(w, &s->view.conf->rrl, from, now);
	if (verdict == 0) {
		inc(&w->st.rrl_dropped);
		return 0;
	}
	if (verdict == 2) {
		inc(&w->st.rrl_slipped);
		len = dns_truncate(out, r);
	}
	return len;
}

static void on_udp(struct loop_io *io, uint32_t events)
{
	struct udp_sock *us = container_of(io, struct udp_sock, io);
	struct worker *w = us->w;
	(void)events;
	for (unsigned budget = 0; budget < UDP_BUDGET;) {
		for (int i = 0; i < DNS_BATCH; i++) {
			w->iov[i] = (struct iovec){w->bufs[i], UDP_BUF};
			w->msgs[i].msg_hdr = (struct msghdr){.msg_name = &w->from[i],
							     .msg_namelen = sizeof(w->from[i]),
							     .msg_iov = &w->iov[i],
							     .msg_iovlen = 1};
		}
		int n = recvmmsg(io->fd, w->msgs, DNS_BATCH, MSG_DONTWAIT, NULL);
		if (n <= 0)
			return;
		budget += n;
		uint64_t now = w->loop.now_ms;
		int nout = 0;
		urcu_memb_read_lock();
		const struct snap *s = rcu_dereference(g_snap);
		for (int i = 0; i < n; i++) {
			struct dns_result r;
			size_t len = 0;
			if (w->msgs[i].msg_hdr.msg_flags & MSG_TRUNC) {
				/* Bigger than any query we answer: not parsed. */
				inc(&w->st.udp_truncated_in);
				r = (struct dns_result){.drop = true};
			} else if (port_of(&w->from[i]) == 0) {
				/* Spoofed: nothing can be sent back to port 0. */
				r = (struct dns_result){.drop = true};
			} else {
				len =
				    dns_answer(&s->view, &w->arena, w->bufs[i], w->msgs[i].msg_len,
					       w->obufs[nout], UDP_BUF, false, &w->from[i], &r);
			}
			len = udp_finish(w, s, &r, &w->from[i], w->obufs[nout], len, now, T_UDP);
			if (!len)
				continue;
			w->out_iov[nout] = (struct iovec){w->obufs[nout], len};
			w->out_msgs[nout].msg_hdr =
			    (struct msghdr){.msg_name = &w->from[i],
					    .msg_namelen = w->msgs[i].msg_hdr.msg_namelen,
					    .msg_iov = &w->out_iov[nout],
					    .msg_iovlen = 1};
			nout++;
		}
		urcu_memb_read_unlock();
		/* A full socket buffer drops the rest: UDP, the client retries. */
		for (int sent = 0; sent < nout;) {
			int k = sendmmsg(io->fd, w->out_msgs + sent, nout - sent, MSG_DONTWAIT);
			if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
				break;
			/* One bad destination fails its own message only: skip it,
			 * the rest of the batch still goes. */
			sent += k > 0 ? k : 1;
		}
		if (n < DNS_BATCH)
			return;
	}
}

static void xdp_kick(struct loop_timer *t);

/*
 * Wake the kernel to send the queued answers. In copy mode one wake-up
 * sends at most 32 frames and says EAGAIN while more wait, so a burst
 * takes a few; what is still queued after them (the device is busy) gets
 * another try in a millisecond rather than waiting for the next query,
 * which may never come.
 */
static void xdp_flush(struct xdp_sock *xs)
{
	int rc = knot_xdp_send_finish(xs->s);
	for (int i = 0; i < 2 * DNS_BATCH / 32 && rc == KNOT_EAGAIN; i++)
		rc = knot_xdp_send_finish(xs->s);
	if (rc == KNOT_EAGAIN) {
		/* Backing off: a device that stays busy (a link down) costs
		 * a few wake-ups a second, not a core. */
		if (!loop_timer_armed(&xs->kick)) {
			xs->kick_ms = xs->kick_ms ? xs->kick_ms : 1;
			loop_timer_in(&xs->w->loop, &xs->kick, xdp_kick, xs->kick_ms);
		}
	} else {
		if (rc != KNOT_EOK)
			inc(&xs->w->st.xdp_tx_error); /* the answers queued are lost */
		xs->kick_ms = 0;
		loop_timer_cancel(&xs->w->loop, &xs->kick);
	}
}

static void xdp_kick(struct loop_timer *t)
{
	struct xdp_sock *xs = container_of(t, struct xdp_sock, kick);
	xs->kick_ms = xs->kick_ms < 128 ? 2 * xs->kick_ms : 128;
	knot_xdp_send_prepare(xs->s);
	xdp_flush(xs);
}

/*
 * AF_XDP: the same answers as on_udp, from frames the XDP program handed
 * over. The query is read in its RX frame and the response written
 * straight into a TX frame; libknot builds the Ethernet, IP and UDP
 * headers (addresses and MACs swapped) and the checksums.
 */
static void on_xdp(struct loop_io *io, uint32_t events)
{
	struct xdp_sock *xs = container_of(io, struct xdp_sock, io);
	struct worker *w = xs->w;
	(void)events;
	for (unsigned budget = 0; budget < UDP_BUDGET;) {
		/* Take back the TX frames the kernel has sent. */
		knot_xdp_send_prepare(xs->s);
		/* libknot sets vlan_tci for tagged frames only and a reply is
		 * tagged when it is non-zero: clear what the last batch left,
		 * or one tagged query would tag every later answer. */
		for (int i = 0; i < DNS_BATCH; i++)
			w->xin[i].vlan_tci = 0;
		uint32_t n = 0;
		if (knot_xdp_recv(xs->s, w->xin, DNS_BATCH, &n, NULL) != KNOT_EOK || !n)
			return;
		budget += n;
		uint64_t now = w->loop.now_ms;
		uint32_t nout = 0;
		/* libknot sleeps a little before it gives up on a TX frame:
		 * after one miss the rest of the batch does not ask. */
		bool tx_full = false;
		urcu_memb_read_lock();
		const struct snap *s = rcu_dereference(g_snap);
		for (uint32_t i = 0; i < n; i++) {
			const knot_xdp_msg_t *m = &w->xin[i];
			struct sockaddr_storage from = {0};
			struct dns_result r;
			/*
			 * The program checked the lengths against the frame, but
			 * an IP length shorter than the headers still reaches us
			 * as a wrapped payload length: bound it ourselves.
			 */
			if ((m->flags & KNOT_XDP_MSG_TCP) || m->payload.iov_len > UDP_BUF ||
			    m->payload.iov_len == 0) {
				inc(&w->st.xdp_bad);
				continue;
			}
			if (!xdp_plausible(m)) {
				inc(&w->st.xdp_martian);
				continue;
			}
			memcpy(&from, &m->ip_from, sizeof(m->ip_from)); /* in or in6 */
			knot_xdp_msg_t *o = &w->xout[nout];
			size_t len = 0;
			if (port_of(&from) == 0) {
				r = (struct dns_result){.drop = true};
			} else if (tx_full || knot_xdp_reply_alloc(xs->s, m, o) != KNOT_EOK) {
				tx_full = true;
				/* Every TX frame in flight: drop, the client retries. */
				inc(&w->st.xdp_tx_full);
				r = (struct dns_result){.drop = true};
			} else {
				size_t cap =
				    m->flags & KNOT_XDP_MSG_IPV6 ? g_xdp_dst.max6 : g_xdp_dst.max4;
				if (cap > o->payload.iov_len)
					cap = o->payload.iov_len;
				len = dns_answer(&s->view, &w->arena, m->payload.iov_base,
						 m->payload.iov_len, o->payload.iov_base, cap,
						 false, &from, &r);
				/* Counted, queued or not, so the frame goes back. */
				nout++;
			}
			/* 0: knot_xdp_send frees the frame unsent */
			o->payload.iov_len =
			    udp_finish(w, s, &r, &from, o->payload.iov_base, len, now, T_XDP);
		}
		urcu_memb_read_unlock();
		uint32_t sent = 0;
		knot_xdp_send(xs->s, w->xout, nout, &sent);
		xdp_flush(xs);
		knot_xdp_recv_finish(xs->s, w->xin, n);
		if (n < DNS_BATCH)
			return;
	}
}

/* ---- TCP (RFC 7766): two-byte length framing, pipelining ---- */

static void tcp_close(struct tcp_conn *c)
{
	struct worker *w = c->w;
	loop_timer_cancel(&w->loop, &c->idle);
	loop_io_close(&w->loop, &c->io);
	if (c->prev)
		c->prev->next = c->next;
	else
		w->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	else
		w->conns_tail = c->prev;
	w->n_conns--;
	loop_free_later(&w->loop, c);
}

static void tcp_idle(struct loop_timer *t)
{
	struct tcp_conn *c = container_of(t, struct tcp_conn, idle);
	uint64_t due = c->busy_since ? c->busy_since + TCP_MSG_MS : c->last_ms + TCP_IDLE_MS;
	if (c->w->loop.now_ms < due) {
		loop_timer_at(&c->w->loop, &c->idle, tcp_idle, due);
		return;
	}
	inc(&c->w->st.tcp_idle_closed);
	tcp_close(c);
}

/* Write what is pending; 1 if all of it went, 0 if some waits, -1 on error. */
static int tcp_flush(struct tcp_conn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t k = send(c->io.fd, c->out + c->out_off, c->out_len - c->out_off,
				 MSG_DONTWAIT | MSG_NOSIGNAL);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (k <= 0)
			return -1;
		c->out_off += k;
	}
	c->out_off = c->out_len = 0;
	return 1;
}

/*
 * Deadlines (what keeps a slow client from holding a slot): an idle
 * connection lives TCP_IDLE_MS after its last whole message; a query half
 * received, or a response the client is not reading, must complete within
 * TCP_MSG_MS of when it began. Bytes trickling in or out extend neither.
 * completed: a whole query was answered or a whole response sent.
 */
static void tcp_deadline(struct tcp_conn *c, bool completed)
{
	uint64_t now = c->w->loop.now_ms;
	if (completed)
		c->last_ms = now;
	if (!c->in_len && !c->out_len) {
		c->busy_since = 0;
	} else if (!c->busy_since || completed) {
		c->busy_since = now;
		loop_timer_at(&c->w->loop, &c->idle, tcp_idle, now + TCP_MSG_MS);
	}
}

/* Answer every whole query in the input buffer while output is free.
 * Returns the number answered, or -1 to close the connection. */
static int tcp_process(struct tcp_conn *c)
{
	struct worker *w = c->w;
	size_t off = 0;
	int rc = 0;
	while (c->in_len - off >= 2 && c->out_len == 0) {
		size_t ql = (size_t)c->in[off] << 8 | c->in[off + 1];
		if (c->in_len - off - 2 < ql)
			break;
		struct dns_result r;
		urcu_memb_read_lock();
		const struct snap *s = rcu_dereference(g_snap);
		size_t len = dns_answer(&s->view, &w->arena, c->in + off + 2, ql, c->out + 2,
					TCP_MAX_MSG, true, &c->peer, &r);
		urcu_memb_read_unlock();
		count(w, &r, T_TCP);
		off += 2 + ql;
		if (!len) {
			/* Garbage on a stream: nothing after it can be trusted. */
			rc = -1;
			break;
		}
		c->out[0] = (uint8_t)(len >> 8);
		c->out[1] = (uint8_t)len;
		c->out_len = len + 2;
		c->out_off = 0;
		rc++;
		int f = tcp_flush(c);
		if (f < 0) {
			rc = -1;
			break;
		}
	}
	memmove(c->in, c->in + off, c->in_len - off);
	c->in_len -= off;
	return rc;
}

static void tcp_update_interest(struct tcp_conn *c)
{
	/* Pending output: wait for the client to read before reading more. */
	loop_io_watch(&c->w->loop, &c->io, c->out_len ? EPOLLOUT : EPOLLIN);
}

static void on_tcp(struct loop_io *io, uint32_t events)
{
	struct tcp_conn *c = container_of(io, struct tcp_conn, io);
	if (events & (EPOLLERR | EPOLLHUP) && !(events & EPOLLIN)) {
		tcp_close(c);
		return;
	}
	if (c->out_len) {
		int f = tcp_flush(c);
		if (f < 0) {
			tcp_close(c);
			return;
		}
		if (f == 0) {
			tcp_update_interest(c);
			return;
		}
		int n = tcp_process(c);
		if (n < 0) {
			tcp_close(c);
			return;
		}
		tcp_deadline(c, true);
		tcp_update_interest(c);
		return;
	}
	ssize_t k = recv(io->fd, c->in + c->in_len, sizeof(c->in) - c->in_len, MSG_DONTWAIT);
	if (k < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (k <= 0) {
		tcp_close(c);
		return;
	}
	c->in_len += k;
	int n = tcp_process(c);
	if (n < 0) {
		tcp_close(c);
		return;
	}
	tcp_deadline(c, n > 0);
	tcp_update_interest(c);
}

static void on_accept(struct loop_io *io, uint32_t events)
{
	struct tcp_listener *l = container_of(io, struct tcp_listener, io);
	struct worker *w = l->w;
	(void)events;
	for (int i = 0; i < 64; i++) {
		struct sockaddr_storage peer;
		socklen_t pl = sizeof(peer);
		int fd =
		    accept4(io->fd, (struct sockaddr *)&peer, &pl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		/* At the cap the oldest connection makes room: a crowd of
		 * idle or slow clients cannot lock new ones out. */
		if (w->n_conns >= TCP_MAX_CONNS && w->conns_tail) {
			inc(&w->st.tcp_evicted);
			tcp_close(w->conns_tail);
		}
		struct tcp_conn *c = malloc(sizeof(*c));
		if (!c) {
			close(fd);
			continue;
		}
		c->io = (struct loop_io){.fd = fd, .fn = on_tcp};
		c->idle = (struct loop_timer){0};
		c->w = w;
		c->peer = peer;
		c->in_len = c->out_len = c->out_off = 0;
		c->last_ms = w->loop.now_ms;
		c->busy_since = 0;
		c->prev = NULL;
		c->next = w->conns;
		if (w->conns)
			w->conns->prev = c;
		else
			w->conns_tail = c;
		w->conns = c;
		w->n_conns++;
		inc(&w->st.tcp_accepted);
		if (loop_io_watch(&w->loop, &c->io, EPOLLIN)) {
			tcp_close(c);
			continue;
		}
		loop_timer_in(&w->loop, &c->idle, tcp_idle, TCP_IDLE_MS);
	}
}

static void on_wake(struct loop_io *io, uint32_t events)
{
	struct worker *w = container_of(io, struct worker, wake);
	uint64_t v;
	(void)events;
	if (read(io->fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		log_warn("worker %u: eventfd: %s", w->id, strerror(errno));
	if (atomic_load(&g_stop))
		loop_stop(&w->loop);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	urcu_memb_register_thread();
	loop_run(&w->loop);
	while (w->conns)
		tcp_close(w->conns);
	urcu_memb_unregister_thread();
	return NULL;
}

static int open_sock(const char *where, int type)
{
	char host[64], port[8];
	struct lb_addr a;
	struct sockaddr_storage ss;
	if (lb_hostport_split(where, strlen(where), host, sizeof(host), port, sizeof(port)) ||
	    lb_addr_parse(host, &a))
		return -EINVAL;
	socklen_t sl = lb_addr_sockaddr(&a, (uint16_t)lb_port_parse(port), &ss);
	int fd = socket(ss.ss_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	if (ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (type == SOCK_STREAM) {
		/* No data-less connection wakes us: a handshake alone costs
		 * nothing (TCP_DEFER_ACCEPT, seconds). */
		int secs = 3;
		setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &secs, sizeof(secs));
	}
	if (bind(fd, (struct sockaddr *)&ss, sl) < 0 ||
	    (type == SOCK_STREAM && listen(fd, 1024) < 0)) {
		int e = errno;
		close(fd);
		return -e;
	}
	return fd;
}

static uint32_t xdp_prog_id(const char *ifname);

static int worker_init(struct worker *w, unsigned id, const struct gslb_conf *c)
{
	w->id = id;
	if (loop_init(&w->loop) || dns_arena_init(&w->arena, ARENA_SIZE))
		return -ENOMEM;
	w->rrl = calloc(RRL_SLOTS, sizeof(*w->rrl));
	w->bufs = calloc(DNS_BATCH, UDP_BUF);
	w->obufs = calloc(DNS_BATCH, UDP_BUF);
	if (!w->rrl || !w->bufs || !w->obufs)
		return -ENOMEM;
	w->wake = (struct loop_io){.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC), .fn = on_wake};
	if (w->wake.fd < 0 || loop_io_watch(&w->loop, &w->wake, EPOLLIN))
		return -errno;
	for (unsigned i = 0; i < c->n_listen; i++) {
		int u = open_sock(c->listen[i], SOCK_DGRAM),
		    t = open_sock(c->listen[i], SOCK_STREAM);
		if (u < 0 || t < 0) {
			log_err("listen %s: %s", c->listen[i], strerror(-(u < 0 ? u : t)));
			if (u >= 0)
				close(u);
			if (t >= 0)
				close(t);
			return -EADDRNOTAVAIL;
		}
		int buf = 4 << 20;
		setsockopt(u, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
		/*
		 * Ignore path-MTU updates for UDP (as Knot DNS does): a forged
		 * ICMP "too big" could otherwise make the kernel fragment our
		 * responses, and fragments are what cache-poisoning attacks on
		 * resolvers splice. Responses stay under max_udp anyway.
		 */
		int omit4 = IP_PMTUDISC_OMIT, omit6 = IPV6_PMTUDISC_OMIT;
		if (strchr(c->listen[i], '['))
			setsockopt(u, IPPROTO_IPV6, IPV6_MTU_DISCOVER, &omit6, sizeof(omit6));
		else
			setsockopt(u, IPPROTO_IP, IP_MTU_DISCOVER, &omit4, sizeof(omit4));
		w->udp[i] = (struct udp_sock){.io = {.fd = u, .fn = on_udp}, .w = w};
		w->tcp[i] = (struct tcp_listener){.io = {.fd = t, .fn = on_accept}, .w = w};
		w->n_sock++;
		if (loop_io_watch(&w->loop, &w->udp[i].io, EPOLLIN) ||
		    loop_io_watch(&w->loop, &w->tcp[i].io, EPOLLIN))
			return -errno;
	}
	if (id < (c->xdp_if[0] && c->xdp_mode == GSLB_XDP_AFXDP ? c->xdp_queues : 0)) {
		/*
		 * The first queue (re)loads libknot's XDP program, replacing
		 * whatever a previous run left attached; the others join it.
		 * It redirects UDP to xdp_port only (and drops fragments of
		 * it); TCP and the rest go on to the kernel and the sockets
		 * above.
		 */
		int rc = knot_xdp_init(
		    &w->xdp.s, c->xdp_if, (int)id, KNOT_XDP_FILTER_ON | KNOT_XDP_FILTER_UDP,
		    c->xdp_port, 0,
		    id == 0 ? KNOT_XDP_LOAD_BPF_ALWAYS_UNLOAD : KNOT_XDP_LOAD_BPF_NEVER, NULL);
		if (rc != KNOT_EOK) {
			w->xdp.s = NULL;
			if (!if_nametoindex(c->xdp_if))
				log_err("xdp: no interface %s", c->xdp_if);
			else
				log_err("xdp: interface %s queue %u: %s%s", c->xdp_if, id,
					knot_strerror(rc),
					id ? " (xdp.queues must not exceed its RX queues)" : "");
			return -ENODEV;
		}
		if (id == 0)
			g_xdp_dst.prog = xdp_prog_id(c->xdp_if); /* ours to remove */
		w->xdp.w = w;
		w->xdp.io = (struct loop_io){.fd = knot_xdp_socket_fd(w->xdp.s), .fn = on_xdp};
		if (loop_io_watch(&w->loop, &w->xdp.io, EPOLLIN))
			return -errno;
	}
	return 0;
}

static void worker_fini(struct worker *w)
{
	if (w->xdp.s) {
		/* The socket's fd belongs to libknot: unwatched, not closed. */
		loop_io_watch(&w->loop, &w->xdp.io, 0);
		loop_timer_cancel(&w->loop, &w->xdp.kick);
		knot_xdp_deinit(w->xdp.s);
		w->xdp.s = NULL;
	}
	for (unsigned i = 0; i < w->n_sock; i++) {
		loop_io_close(&w->loop, &w->udp[i].io);
		loop_io_close(&w->loop, &w->tcp[i].io);
	}
	if (w->wake.fd >= 0)
		loop_io_close(&w->loop, &w->wake);
	loop_fini(&w->loop);
	dns_arena_fini(&w->arena);
	free(w->rrl);
	free(w->bufs);
	free(w->obufs);
}

/*
 * One gslbd per interface takes XDP: a second one would replace the
 * program under the first before failing to bind its queues, leaving the
 * first without. An exclusive lock named after the network namespace and
 * the interface, held for the process's life (the kernel drops it at any
 * exit, kill -9 included), keeps the second one off. Returns the lock's
 * descriptor or -errno (-EWOULDBLOCK: held by another).
 */
static int xdp_lock(const char *ifname, char *path, size_t cap)
{
	struct stat ns;
	if (stat("/proc/self/ns/net", &ns))
		ns.st_ino = 0;
	snprintf(path, cap, "/run/portico/gslbd-xdp-%lu-%s.lock", (unsigned long)ns.st_ino, ifname);
	if (mkdir("/run/portico", 0755) && errno != EEXIST)
		return -errno;
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	if (flock(fd, LOCK_EX | LOCK_NB)) {
		int e = errno;
		close(fd);
		return -e;
	}
	return fd;
}

/* The id of the XDP program attached to ifname, 0 if none or unknown. */
static uint32_t xdp_prog_id(const char *ifname)
{
	unsigned idx = if_nametoindex(ifname);
	uint32_t id = 0;
	if (!idx || bpf_xdp_query_id((int)idx, 0, &id))
		return 0;
	return id;
}

/*
 * Take our XDP program off the interface at exit, unless something else
 * has replaced it since (then it is not ours to remove). Left attached,
 * it would keep taking the port's UDP into a socket nobody reads.
 */
static void xdp_detach(const char *ifname, uint32_t ours)
{
	unsigned idx = if_nametoindex(ifname);
	if (!ours || !idx || xdp_prog_id(ifname) != ours)
		return;
	/* Replace-or-fail: if another program took the interface since the
	 * check above, the kernel refuses rather than remove it. */
	int pfd = bpf_prog_get_fd_by_id(ours);
	if (pfd < 0)
		return;
	LIBBPF_OPTS(bpf_xdp_attach_opts, o, .old_prog_fd = pfd);
	int rc = bpf_xdp_detach((int)idx, XDP_FLAGS_REPLACE, &o);
	close(pfd);
	if (rc)
		log_warn("xdp: detaching from %s: %s", ifname, strerror(-rc));
}

/* ---- the main thread: state, map, config, admin API ---- */

struct pop_admin {
	bool drained; /* by an operator */
	bool down;    /* by health */
};

struct gslbd {
	const char *config_path;
	struct loop loop;
	struct loop_io sig_io, ino_io;
	struct loop_timer map_timer;
	struct admin_server *admin;
	struct gslb_conf *conf;
	struct geo *geo;
	struct gmap *map;
	struct gslb_states *states;
	struct pop_admin pops[GMAP_MAX_POPS]; /* per configured PoP */
	int ino_wd;
	/* the loaded map file, to notice a replaced one */
	dev_t map_dev;
	ino_t map_ino;
	struct timespec map_mtime;
	off_t map_size;
	time_t map_loaded_at;
	char map_error[512];
	uint64_t map_reloads, map_failures, conf_reloads, conf_failures;
	/* AF_XDP as started (a reload does not change it); xdp_if "" = off */
	char xdp_if[16];
	unsigned xdp_queues;
	uint16_t xdp_port; /* its program: g_xdp_dst.prog */
	/* xdp mode "answer": the answer program, or NULL */
	struct gslb_xa *xa;
	char xa_if[16];
	char xa_error[256];
};

static struct gslbd G;

static void states_apply(struct gslbd *d, struct gslb_states *st)
{
	bool up4 = false, up6 = false;
	for (unsigned i = 0; i < d->conf->n_pops; i++) {
		uint8_t e = d->pops[i].down	 ? GSLB_POP_DOWN
			    : d->pops[i].drained ? GSLB_POP_DRAINED
						 : GSLB_POP_UP;
		atomic_store(&st->eff[i], e);
		up4 |= e == GSLB_POP_UP && d->conf->pops[i].has4;
		up6 |= e == GSLB_POP_UP && d->conf->pops[i].has6;
	}
	/* Per family: an IPv4-only PoP that is up must not keep drained
	 * PoPs from answering AAAA. */
	atomic_store(&st->drained_ok[0], !up4);
	atomic_store(&st->drained_ok[1], !up6);
}

/* Give the XDP answer program (if any) what the workers now answer from.
 * A failure only costs speed: the program passes everything on. */
static void xa_sync(struct gslbd *d, const struct gslb_view *v)
{
	if (!d->xa)
		return;
	char *err = NULL;
	if (gslb_xa_sync(d->xa, v, &err)) {
		log_warn("%s", err ? err : "xdp answer: sync failed");
		snprintf(d->xa_error, sizeof(d->xa_error), "%s", err ? err : "sync failed");
	} else {
		d->xa_error[0] = 0;
	}
	free(err);
}

/* Build a snapshot of d's current conf, map and states and publish it. */
static int publish(struct gslbd *d)
{
	struct snap *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->view.conf = d->conf;
	s->view.states = d->states;
	s->view.geo = d->geo;
	gslb_view_set_map(&s->view, d->map);
	struct snap *old = rcu_xchg_pointer(&g_snap, s);
	if (old) {
		urcu_memb_synchronize_rcu();
		free(old);
	}
	xa_sync(d, &s->view);
	return 0;
}

static int map_load(struct gslbd *d, char **why)
{
	struct gmap *m = NULL;
	struct stat st = {0};
	int rc = gmap_open_stat(d->conf->map_path, &m, &st, why);
	/*
	 * Remember the file that was read (its own fstat, not a later stat of
	 * the path, which a rename may already have replaced): loaded or
	 * refused, it is not read again, and any newer file is.
	 */
	if (st.st_ino) {
		d->map_dev = st.st_dev;
		d->map_ino = st.st_ino;
		d->map_mtime = st.st_mtim;
		d->map_size = st.st_size;
	}
	if (rc) {
		d->map_failures++;
		snprintf(d->map_error, sizeof(d->map_error), "%s", *why ? *why : "?");
		return rc;
	}
	/* PoPs of the map this configuration does not know are skipped. */
	for (unsigned i = 0; i < gmap_n_pops(m); i++)
		if (gslb_conf_pop(d->conf, gmap_pop_name(m, i)) < 0)
			log_warn("map: PoP \"%s\" is not configured; its entries fall through "
				 "to the next PoP",
				 gmap_pop_name(m, i));
	struct gmap *old = d->map;
	d->map = m;
	rc = publish(d);
	if (rc) {
		d->map = old;
		gmap_close(m);
		return rc;
	}
	gmap_close(old); /* after publish: no worker can see it any more */
	d->map_reloads++;
	d->map_loaded_at = time(NULL);
	d->map_error[0] = 0;
	const struct gmap_header *h = gmap_header(m);
	log_info("map %s loaded: %u PoPs, %u+%u prefixes, score %.3f", d->conf->map_path,
		 gmap_n_pops(m), h->n_prefixes4, h->n_prefixes6,
		 h->score_ppm == GMAP_NOT_SCORED ? -1.0 : h->score_ppm / 1e6);
	return 0;
}

static void map_reload(struct gslbd *d)
{
	char *why = NULL;
	if (map_load(d, &why)) {
		log_err("map not loaded, %s: %s",
			d->map ? "the previous map keeps serving"
			       : "answering from countries and the default",
			why ? why : "?");
	}
	free(why);
}

static bool map_changed(struct gslbd *d)
{
	struct stat st;
	if (stat(d->conf->map_path, &st) < 0)
		return false;
	return st.st_ino != d->map_ino || st.st_dev != d->map_dev || st.st_size != d->map_size ||
	       st.st_mtim.tv_sec != d->map_mtime.tv_sec ||
	       st.st_mtim.tv_nsec != d->map_mtime.tv_nsec;
}

static void ino_watch(struct gslbd *d)
{
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s", d->conf->map_path);
	if (d->ino_wd >= 0)
		inotify_rm_watch(d->ino_io.fd, d->ino_wd);
	d->ino_wd =
	    inotify_add_watch(d->ino_io.fd, dirname(dir), IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE);
}

static void on_inotify(struct loop_io *io, uint32_t events)
{
	struct gslbd *d = container_of(io, struct gslbd, ino_io);
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	char base[PATH_MAX];
	bool hit = false;
	(void)events;
	snprintf(base, sizeof(base), "%s", d->conf->map_path);
	const char *name = basename(base);
	for (;;) {
		ssize_t n = read(io->fd, buf, sizeof(buf));
		if (n <= 0)
			break;
		for (char *p = buf; p < buf + n;) {
			struct inotify_event *e = (void *)p;
			if (e->len && !strcmp(e->name, name) && !(e->mask & IN_CREATE))
				hit = true;
			p += sizeof(*e) + e->len;
		}
	}
	if (hit && map_changed(d))
		map_reload(d);
}

static void on_map_timer(struct loop_timer *t)
{
	struct gslbd *d = container_of(t, struct gslbd, map_timer);
	if (d->ino_wd < 0)
		ino_watch(d);
	if (map_changed(d))
		map_reload(d);
	loop_timer_in(&d->loop, t, on_map_timer, MAP_CHECK_MS);
}

static int conf_reload(struct gslbd *d, char **err)
{
	struct gslb_conf *nc;
	int rc = gslb_conf_load(d->config_path, NULL, &nc, err);
	if (rc) {
		d->conf_failures++;
		log_err("reload refused, the running configuration stays: %s", *err);
		return rc;
	}
	if (nc->n_listen != d->conf->n_listen || nc->workers != d->conf->workers ||
	    memcmp(nc->listen, d->conf->listen, sizeof(nc->listen)) ||
	    strcmp(nc->admin_socket, d->conf->admin_socket) ||
	    strcmp(nc->xdp_if, d->xa ? d->xa_if : d->xdp_if) || nc->xdp_mode != d->conf->xdp_mode ||
	    (nc->xdp_if[0] && nc->xdp_mode == GSLB_XDP_AFXDP && nc->xdp_queues != d->xdp_queues)) {
		log_warn("reload: listen, workers, admin_socket and xdp apply at the next start");
	}
	/* Those keep their running values until then, so nothing follows the
	 * file early (the XDP program's listen addresses and port would). */
	memcpy(nc->listen, d->conf->listen, sizeof(nc->listen));
	memcpy(nc->listen_addr, d->conf->listen_addr, sizeof(nc->listen_addr));
	memcpy(nc->listen_port, d->conf->listen_port, sizeof(nc->listen_port));
	nc->n_listen = d->conf->n_listen;
	nc->workers = d->conf->workers;
	memcpy(nc->admin_socket, d->conf->admin_socket, sizeof(nc->admin_socket));
	memcpy(nc->xdp_if, d->conf->xdp_if, sizeof(nc->xdp_if));
	nc->xdp_mode = d->conf->xdp_mode;
	nc->xdp_max_nodes = d->conf->xdp_max_nodes;
	nc->xdp_queues = d->conf->xdp_queues;
	nc->xdp_port = d->conf->xdp_port;
	/* PoP states follow the PoPs by name. */
	struct pop_admin np[GMAP_MAX_POPS] = {0};
	for (unsigned i = 0; i < nc->n_pops; i++) {
		int o = gslb_conf_pop(d->conf, nc->pops[i].name);
		if (o >= 0)
			np[i] = d->pops[o];
	}
	struct gslb_states *ns = calloc(1, sizeof(*ns));
	if (!ns) {
		gslb_conf_free(nc);
		*err = strdup("out of memory");
		return -ENOMEM;
	}
	struct gslb_conf *oc = d->conf;
	struct gslb_states *os = d->states;
	bool map_moved = strcmp(nc->map_path, oc->map_path) != 0;
	struct pop_admin op[GMAP_MAX_POPS];
	memcpy(op, d->pops, sizeof(op));
	d->conf = nc;
	memcpy(d->pops, np, sizeof(np));
	states_apply(d, ns);
	d->states = ns;
	if (publish(d)) { /* waits until no worker sees oc / os */
		d->conf = oc;
		d->states = os;
		memcpy(d->pops, op, sizeof(op));
		gslb_conf_free(nc);
		free(ns);
		*err = strdup("out of memory");
		return -ENOMEM;
	}
	gslb_conf_free(oc);
	free(os);
	d->conf_reloads++;
	if (map_moved) {
		ino_watch(d);
		map_reload(d);
	}
	log_info("configuration reloaded: %u zones, %u PoPs", nc->n_zones, nc->n_pops);
	return 0;
}

static void on_signal(struct loop_io *io, uint32_t events)
{
	struct gslbd *d = container_of(io, struct gslbd, sig_io);
	struct signalfd_siginfo si;
	(void)events;
	while (read(io->fd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGHUP) {
			char *err = NULL;
			conf_reload(d, &err);
			free(err);
			continue;
		}
		log_info("signal %u: shutting down", si.ssi_signo);
		loop_stop(&d->loop);
		return;
	}
}

/* ---- admin API ---- */

static const char *const state_names[] = {"up", "drained", "down"};
static const char *const how_names[] = {"none", "map", "country", "default", "anycast", "novip"};

static json_t *pop_json(struct gslbd *d, unsigned i)
{
	const struct gslb_pop *p = &d->conf->pops[i];
	char a4[INET_ADDRSTRLEN] = "", a6[INET6_ADDRSTRLEN] = "";
	if (p->has4)
		inet_ntop(AF_INET, p->vip4, a4, sizeof(a4));
	if (p->has6)
		inet_ntop(AF_INET6, p->vip6, a6, sizeof(a6));
	uint64_t answers = 0;
	for (unsigned w = 0; w < g_n_workers; w++)
		answers += atomic_load(&g_workers[w].st.pop[i]);
	return json_pack(
	    "{s:s,s:s?,s:s?,s:s,s:s,s:s,s:I}", "name", p->name, "vip4", p->has4 ? a4 : NULL, "vip6",
	    p->has6 ? a6 : NULL, "admin", d->pops[i].drained ? "drained" : "active", "health",
	    d->pops[i].down ? "down" : "up", "state", state_names[atomic_load(&d->states->eff[i])],
	    "answers", (json_int_t)answers);
}

static int api_pops(void *ctx, const struct admin_req *req, json_t **out)
{
	struct gslbd *d = ctx;
	(void)req;
	json_t *a = json_array();
	for (unsigned i = 0; i < d->conf->n_pops; i++)
		json_array_append_new(a, pop_json(d, i));
	*out = json_pack("{s:o,s:b}", "pops", a, "drained_answer",
			 atomic_load(&d->states->drained_ok[0]) ||
			     atomic_load(&d->states->drained_ok[1]));
	return 200;
}

/* POST /v1/pops/NAME/drain|undrain, PUT /v1/pops/NAME/health {"up": bool} */
static int api_pop_change(void *ctx, const struct admin_req *req, json_t **out)
{
	struct gslbd *d = ctx;
	char name[GMAP_POP_NAME + 1];
	const char *slash = strchr(req->tail, '/');
	if (!slash || (size_t)(slash - req->tail) >= sizeof(name))
		return admin_error(out, 404, "use /v1/pops/NAME/drain|undrain|health");
	memcpy(name, req->tail, slash - req->tail);
	name[slash - req->tail] = 0;
	int p = gslb_conf_pop(d->conf, name);
	if (p < 0)
		return admin_error(out, 404, "no PoP \"%s\"", name);
	const char *verb = slash + 1;
	if (!strcmp(req->method, "POST") && !strcmp(verb, "drain"))
		d->pops[p].drained = true;
	else if (!strcmp(req->method, "POST") && !strcmp(verb, "undrain"))
		d->pops[p].drained = false;
	else if (!strcmp(req->method, "PUT") && !strcmp(verb, "health")) {
		json_t *up = req->body ? json_object_get(req->body, "up") : NULL;
		if (!json_is_boolean(up))
			return admin_error(out, 400, "body: {\"up\": true|false}");
		d->pops[p].down = !json_is_true(up);
	} else
		return admin_error(out, 404, "use POST .../drain|undrain or PUT .../health");
	/* The workers read the states directly: effective at once. */
	states_apply(d, d->states);
	if (d->xa)
		gslb_xa_states(d->xa, &(struct gslb_view){.conf = d->conf, .states = d->states});
	log_info("PoP %s: %s", name, state_names[atomic_load(&d->states->eff[p])]);
	*out = pop_json(d, p);
	return 200;
}

static json_t *map_json(struct gslbd *d)
{
	json_t *m = json_pack("{s:s,s:I,s:I,s:s?}", "path", d->conf->map_path, "reloads",
			      (json_int_t)d->map_reloads, "failures", (json_int_t)d->map_failures,
			      "last_error", d->map_error[0] ? d->map_error : NULL);
	if (d->map) {
		const struct gmap_header *h = gmap_header(d->map);
		json_object_set_new(m, "loaded_at", json_integer(d->map_loaded_at));
		json_object_set_new(m, "created", json_integer((json_int_t)h->created));
		json_object_set_new(m, "prefixes4", json_integer(h->n_prefixes4));
		json_object_set_new(m, "prefixes6", json_integer(h->n_prefixes6));
		json_object_set_new(m, "pops", json_integer(h->n_pops));
		json_object_set_new(m, "samples", json_integer((json_int_t)h->samples));
		if (h->score_ppm != GMAP_NOT_SCORED) {
			json_object_set_new(m, "score", json_real(h->score_ppm / 1e6));
			json_object_set_new(m, "regret_ms", json_real(h->regret_us / 1e3));
		}
	}
	return m;
}

static int api_status(void *ctx, const struct admin_req *req, json_t **out)
{
	struct gslbd *d = ctx;
	(void)req;
	json_t *l = json_array();
	for (unsigned i = 0; i < d->conf->n_listen; i++)
		json_array_append_new(l, json_string(d->conf->listen[i]));
	json_t *x = d->xdp_if[0] ? json_pack("{s:s,s:i,s:i,s:I}", "interface", d->xdp_if, "queues",
					     (int)d->xdp_queues, "port", (int)d->xdp_port,
					     "program", (json_int_t)g_xdp_dst.prog)
				 : json_null();
	if (d->xa)
		x = json_pack("{s:s,s:s,s:i,s:b,s:s?}", "interface", d->xa_if, "mode", "answer",
			      "port", (int)d->conf->xdp_port, "map_loaded", gslb_xa_loaded(d->xa),
			      "error", d->xa_error[0] ? d->xa_error : NULL);
	*out =
	    json_pack("{s:s,s:s,s:o,s:i,s:o,s:o,s:i,s:I,s:I}", "version", PORTICO_VERSION, "config",
		      d->config_path, "listen", l, "workers", (int)g_n_workers, "xdp", x, "map",
		      map_json(d), "zones", (int)d->conf->n_zones, "reloads",
		      (json_int_t)d->conf_reloads, "reload_failures", (json_int_t)d->conf_failures);
	return 200;
}

static int api_map_reload(void *ctx, const struct admin_req *req, json_t **out)
{
	struct gslbd *d = ctx;
	char *why = NULL;
	(void)req;
	if (map_load(d, &why)) {
		int st = admin_error(out, 422, "%s", why ? why : "map refused");
		free(why);
		return st;
	}
	*out = map_json(d);
	return 200;
}

static int api_reload(void *ctx, const struct admin_req *req, json_t **out)
{
	struct gslbd *d = ctx;
	char *err = NULL;
	(void)req;
	if (conf_reload(d, &err)) {
		int st = admin_error(out, 422, "%s", err ? err : "reload failed");
		free(err);
		return st;
	}
	*out = json_pack("{s:s}", "result", "reloaded");
	return 200;
}

/* GET /v1/lookup/ADDR[/LEN]: what a client there is answered, and why. */
static int api_lookup(void *ctx, const struct admin_req *req, json_t **out)
{
	struct gslbd *d = ctx;
	char buf[80];
	snprintf(buf, sizeof(buf), "%s", req->tail);
	char *slash = strchr(buf, '/');
	unsigned bits = 128;
	if (slash) {
		*slash = 0;
		char *end;
		long v = strtol(slash + 1, &end, 10);
		if (*end || v < 0 || v > 128)
			return admin_error(out, 400, "prefix length \"%s\"", slash + 1);
		bits = (unsigned)v;
	}
	uint8_t a[16] = {0};
	int fam = strchr(buf, ':') ? AF_INET6 : AF_INET;
	if (inet_pton(fam, buf, a) != 1)
		return admin_error(out, 400, "\"%s\" is not an address", buf);
	if (fam == AF_INET && bits > 32)
		bits = 32;
	json_t *res = json_object();
	urcu_memb_read_lock();
	const struct snap *s = rcu_dereference(g_snap);
	for (int f = 0; f < 2; f++) {
		enum gslb_how how;
		unsigned scope;
		uint8_t p =
		    gslb_choose(&s->view, fam, a, bits, f ? AF_INET6 : AF_INET, &how, &scope);
		json_object_set_new(res, f ? "aaaa" : "a",
				    json_pack("{s:s?,s:s,s:i}", "pop",
					      p == GSLB_NO_POP ? NULL : d->conf->pops[p].name,
					      "how", p == GSLB_NO_POP ? "anycast" : how_names[how],
					      "scope", (int)scope));
	}
	urcu_memb_read_unlock();
	*out = res;
	return 200;
}

static int api_metrics(void *ctx, const struct admin_req *req, json_t **out)
{
	struct gslbd *d = ctx;
	struct prom_buf b;
	(void)out;
	prom_init(&b);
	uint64_t q[T__N] = {0}, rc[RCODE_SLOTS] = {0}, how[GSLB_HOW__N] = {0};
	uint64_t ecs = 0, tc = 0, dropped = 0, rrld = 0, rrls = 0, trunc_in = 0, acc = 0, ref = 0,
		 idle = 0, xbad = 0, xmart = 0, xfull = 0, xerr = 0;
	for (unsigned i = 0; i < g_n_workers; i++) {
		struct wstats *s = &g_workers[i].st;
		for (int t = 0; t < T__N; t++)
			q[t] += atomic_load(&s->queries[t]);
		for (int r = 0; r < RCODE_SLOTS; r++)
			rc[r] += atomic_load(&s->rcode[r]);
		for (int h = 0; h < GSLB_HOW__N; h++)
			how[h] += atomic_load(&s->how[h]);
		ecs += atomic_load(&s->ecs);
		tc += atomic_load(&s->tc);
		dropped += atomic_load(&s->dropped);
		rrld += atomic_load(&s->rrl_dropped);
		rrls += atomic_load(&s->rrl_slipped);
		trunc_in += atomic_load(&s->udp_truncated_in);
		acc += atomic_load(&s->tcp_accepted);
		ref += atomic_load(&s->tcp_evicted);
		idle += atomic_load(&s->tcp_idle_closed);
		xbad += atomic_load(&s->xdp_bad);
		xmart += atomic_load(&s->xdp_martian);
		xfull += atomic_load(&s->xdp_tx_full);
		xerr += atomic_load(&s->xdp_tx_error);
	}
	/* The XDP answer program's answers count as the sockets' would. */
	uint64_t xa[GX_COUNTERS] = {0};
	if (d->xa && !gslb_xa_counters(d->xa, xa)) {
		rc[0] += xa[GX_ANSWERED] + xa[GX_RRL_SLIPPED];
		how[GSLB_HOW_MAP] += xa[GX_ANSWERED];
		ecs += xa[GX_ECS];
		rrld += xa[GX_RRL_DROPPED];
		rrls += xa[GX_RRL_SLIPPED];
	}
	prom_family(&b, "gslbd_queries_total", PROM_COUNTER, "DNS queries received, by transport");
	prom_sample_u64(&b, PROM_LABELS("transport", "udp"), q[T_UDP]);
	prom_sample_u64(&b, PROM_LABELS("transport", "tcp"), q[T_TCP]);
	prom_sample_u64(&b, PROM_LABELS("transport", "xdp"), q[T_XDP]);
	if (d->xa)
		prom_sample_u64(&b, PROM_LABELS("transport", "xdp_answer"),
				xa[GX_ANSWERED] + xa[GX_RRL_SLIPPED] + xa[GX_RRL_DROPPED]);
	prom_family(&b, "gslbd_responses_total", PROM_COUNTER, "responses, by rcode");
	static const char *const rnames[RCODE_SLOTS] = {
	    [0] = "NOERROR", [1] = "FORMERR", [2] = "SERVFAIL", [3] = "NXDOMAIN",
	    [4] = "NOTIMP",  [5] = "REFUSED", [16] = "BADVERS",
	};
	for (int r = 0; r < RCODE_SLOTS; r++)
		if (rnames[r])
			prom_sample_u64(&b, PROM_LABELS("rcode", rnames[r]), rc[r]);
	prom_family(&b, "gslbd_dropped_total", PROM_COUNTER,
		    "queries not answered: malformed beyond a reply, or responses");
	prom_sample_u64(&b, PROM_NO_LABELS, dropped + trunc_in + xbad + xmart);
	prom_family(&b, "gslbd_ecs_queries_total", PROM_COUNTER,
		    "queries with an EDNS Client Subnet option");
	prom_sample_u64(&b, PROM_NO_LABELS, ecs);
	prom_family(&b, "gslbd_truncated_total", PROM_COUNTER, "responses sent with TC (too big)");
	prom_sample_u64(&b, PROM_NO_LABELS, tc);
	prom_family(&b, "gslbd_rate_limited_total", PROM_COUNTER,
		    "UDP responses over the per-source rate: dropped, or slipped (sent with TC)");
	prom_sample_u64(&b, PROM_LABELS("action", "dropped"), rrld);
	prom_sample_u64(&b, PROM_LABELS("action", "slipped"), rrls);
	prom_family(&b, "gslbd_answers_total", PROM_COUNTER,
		    "service answers, by what decided them");
	for (int h = GSLB_HOW_MAP; h < GSLB_HOW__N; h++)
		prom_sample_u64(&b, PROM_LABELS("by", how_names[h]), how[h]);
	prom_family(&b, "gslbd_pop_answers_total", PROM_COUNTER, "service answers per PoP");
	for (unsigned p = 0; p < d->conf->n_pops; p++) {
		uint64_t n = 0;
		for (unsigned i = 0; i < g_n_workers; i++)
			n += atomic_load(&g_workers[i].st.pop[p]);
		n += xa[GX__N + p];
		prom_sample_u64(&b, PROM_LABELS("pop", d->conf->pops[p].name), n);
	}
	prom_family(&b, "gslbd_pop_state", PROM_GAUGE, "0 up, 1 drained, 2 down");
	for (unsigned p = 0; p < d->conf->n_pops; p++)
		prom_sample_u64(&b, PROM_LABELS("pop", d->conf->pops[p].name),
				atomic_load(&d->states->eff[p]));
	prom_family(
	    &b, "gslbd_tcp_connections_total", PROM_COUNTER,
	    "TCP connections: accepted, evicted (the oldest, at the cap), closed by a deadline");
	prom_sample_u64(&b, PROM_LABELS("event", "accepted"), acc);
	prom_sample_u64(&b, PROM_LABELS("event", "evicted"), ref);
	prom_sample_u64(&b, PROM_LABELS("event", "timed_out"), idle);
	if (d->xa) {
		static const char *const xnames[GX__N] = {
		    [GX_RX] = "seen",
		    [GX_ANSWERED] = "answered",
		    [GX_RRL_DROPPED] = "rate_limited",
		    [GX_RRL_SLIPPED] = "slipped",
		    [GX_PASS_OTHER] = "pass_other",
		    [GX_PASS_SHAPE] = "pass_shape",
		    [GX_PASS_NAME] = "pass_name",
		    [GX_PASS_MAP] = "pass_map",
		    [GX_PASS_BUSY] = "pass_busy",
		    [GX_PASS_TAIL] = "pass_tail",
		};
		prom_family(&b, "gslbd_xdp_answer_packets_total", PROM_COUNTER,
			    "packets the XDP answer program saw, answered, rate limited, or "
			    "passed to the sockets (other: not a query to us; shape: not the "
			    "common query; name: not a service name; map: no map entry or no PoP "
			    "of its list up; busy: no map, one being changed, or no rate-limit "
			    "bucket; tail: no room)");
		for (int i = 0; i < GX__N; i++)
			if (xnames[i])
				prom_sample_u64(&b, PROM_LABELS("result", xnames[i]), xa[i]);
		prom_family(&b, "gslbd_xdp_answer_map_loaded", PROM_GAUGE,
			    "1 when the XDP answer program holds the map (else gslbd answers all)");
		prom_sample_u64(&b, PROM_NO_LABELS, gslb_xa_loaded(d->xa));
	}
	if (d->xdp_if[0]) {
		prom_family(&b, "gslbd_xdp_dropped_total", PROM_COUNTER,
			    "AF_XDP frames not answered: malformed (a bad length), martian (a "
			    "source the kernel would drop, or not to a listen address), or no "
			    "free TX frame");
		prom_sample_u64(&b, PROM_LABELS("reason", "malformed"), xbad);
		prom_sample_u64(&b, PROM_LABELS("reason", "martian"), xmart);
		prom_sample_u64(&b, PROM_LABELS("reason", "tx_full"), xfull);
		prom_family(&b, "gslbd_xdp_send_errors_total", PROM_COUNTER,
			    "wake-ups of the AF_XDP send that failed (not just busy)");
		prom_sample_u64(&b, PROM_NO_LABELS, xerr);
	}
	prom_family(&b, "gslbd_map_loads_total", PROM_COUNTER, "map files loaded or refused");
	prom_sample_u64(&b, PROM_LABELS("result", "loaded"), d->map_reloads);
	prom_sample_u64(&b, PROM_LABELS("result", "refused"), d->map_failures);
	prom_family(&b, "gslbd_map_loaded_seconds", PROM_GAUGE,
		    "Unix time the serving map was loaded (0: none)");
	prom_sample_u64(&b, PROM_NO_LABELS, d->map ? (uint64_t)d->map_loaded_at : 0);
	if (d->map && gmap_header(d->map)->score_ppm != GMAP_NOT_SCORED) {
		prom_family(&b, "gslbd_map_score", PROM_GAUGE,
			    "held-out subnets whose first choice is their measured best");
		prom_sample_f64(&b, PROM_NO_LABELS, gmap_header(d->map)->score_ppm / 1e6);
	}
	size_t len;
	char *text = prom_finish(&b, &len);
	if (!text)
		return admin_error(out, 500, "out of memory");
	admin_reply_text(req, "text/plain; version=0.0.4", text, len);
	return 200;
}

static const struct admin_route routes[] = {
    {"GET", "/v1/status", api_status},
    {"GET", "/v1/pops", api_pops},
    {"POST", "/v1/pops/*", api_pop_change},
    {"PUT", "/v1/pops/*", api_pop_change},
    {"POST", "/v1/map/reload", api_map_reload},
    {"POST", "/v1/reload", api_reload},
    {"GET", "/v1/lookup/*", api_lookup},
    {"GET", "/metrics", api_metrics},
    {NULL, NULL, NULL},
};

static void usage(FILE *f)
{
	fprintf(f, "usage: gslbd [-c CONFIG] [--check] [-v]\n"
		   "  -c, --config FILE  configuration (default /etc/portico/gslbd.conf)\n"
		   "      --check        check the configuration and exit\n"
		   "  -v, --verbose      debug logging\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"check", no_argument, NULL, 'C'},
	    {"verbose", no_argument, NULL, 'v'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct gslbd *d = &G;
	bool check = false;
	char *err = NULL;
	int c, rc = 1;
	d->config_path = "/etc/portico/gslbd.conf";
	d->ino_wd = -1;
	log_init("gslbd", LOG_LVL_INFO);
	urcu_memb_register_thread(); /* the admin API reads snapshots too */
	if (getrandom(&g_rrl_seed, sizeof(g_rrl_seed), 0) != sizeof(g_rrl_seed))
		g_rrl_seed = (uint64_t)time(NULL) * 0x9e3779b97f4a7c15ULL ^ (uint64_t)getpid();
	while ((c = getopt_long(argc, argv, "c:vh", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			d->config_path = optarg;
			break;
		case 'C':
			check = true;
			break;
		case 'v':
			log_init("gslbd", LOG_LVL_DEBUG);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (gslb_conf_load(d->config_path, NULL, &d->conf, &err)) {
		fprintf(stderr, "gslbd: %s\n", err ? err : "cannot load config");
		free(err);
		return 1;
	}
	if (check) {
		printf("%s: ok\n", d->config_path);
		gslb_conf_free(d->conf);
		return 0;
	}
	d->geo = geo_open(d->conf->geoip4, d->conf->geoip6, &err);
	if (!d->geo) {
		log_warn("geoip: %s; subnets not in the map get the default PoPs", err ? err : "?");
		free(err);
		err = NULL;
	}
	d->states = calloc(1, sizeof(*d->states));
	if (!d->states || loop_init(&d->loop))
		return 1;
	states_apply(d, d->states);
	if (publish(d))
		return 1;
	map_reload(d); /* a missing or bad map is not fatal: countries answer */

	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL); /* inherited by the workers */
	signal(SIGPIPE, SIG_IGN);
	d->sig_io = (struct loop_io){.fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK),
				     .fn = on_signal};
	d->ino_io =
	    (struct loop_io){.fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC), .fn = on_inotify};
	if (d->sig_io.fd < 0 || loop_io_watch(&d->loop, &d->sig_io, EPOLLIN) || d->ino_io.fd < 0 ||
	    loop_io_watch(&d->loop, &d->ino_io, EPOLLIN)) {
		log_err("signalfd/inotify: %s", strerror(errno));
		return 1;
	}
	ino_watch(d);
	loop_timer_in(&d->loop, &d->map_timer, on_map_timer, MAP_CHECK_MS);

	if (d->conf->xdp_if[0]) {
		char lock[PATH_MAX];
		int lfd = xdp_lock(d->conf->xdp_if, lock, sizeof(lock));
		if (lfd < 0) {
			log_err("xdp: %s: %s", lock,
				lfd == -EWOULDBLOCK ? "another gslbd serves this interface"
						    : strerror(-lfd));
			return 1;
		}
		if (d->conf->xdp_mode == GSLB_XDP_ANSWER) {
			char *err = NULL;
			const struct snap *sn = g_snap; /* the main thread is its only writer */
			/* A 4-bit table stands for a node with a child that
			 * is no table's: at most one per 2 nodes, whatever
			 * the tree (about one per 5.5 from gslb-map). */
			if (gslb_xa_open(d->conf->xdp_max_nodes / 2, XA_LISTS, &d->xa, &err) ||
			    (xa_sync(d, &sn->view), gslb_xa_attach(d->xa, d->conf->xdp_if, &err))) {
				log_err("%s", err ? err : "xdp answer: cannot start");
				free(err);
				gslb_xa_close(d->xa);
				d->xa = NULL;
				return 1;
			}
			snprintf(d->xa_if, sizeof(d->xa_if), "%s", d->conf->xdp_if);
			log_info("xdp answer: UDP port %u on %s (common queries answered in XDP%s)",
				 d->conf->xdp_port, d->xa_if,
				 gslb_xa_loaded(d->xa) ? ""
						       : "; no map yet, all go to the sockets");
		} else {
			xdp_dst_init(d->conf);
		}
	}
	g_n_workers = d->conf->workers;
	g_workers = calloc(g_n_workers, sizeof(*g_workers));
	if (!g_workers)
		return 1;
	for (unsigned i = 0; i < g_n_workers; i++) {
		g_workers[i].wake.fd = -1;
		if (worker_init(&g_workers[i], i, d->conf)) {
			log_err("worker %u: cannot start", i);
			for (unsigned j = 0; j <= i; j++)
				worker_fini(&g_workers[j]);
			if (d->conf->xdp_if[0] && !d->xa)
				xdp_detach(d->conf->xdp_if, g_xdp_dst.prog);
			gslb_xa_close(d->xa);
			return 1;
		}
	}
	if (d->conf->xdp_if[0] && !d->xa) {
		snprintf(d->xdp_if, sizeof(d->xdp_if), "%s", d->conf->xdp_if);
		d->xdp_queues = d->conf->xdp_queues;
		d->xdp_port = d->conf->xdp_port;
		log_info("xdp: UDP port %u on %s, %u queues (program %u)", d->xdp_port, d->xdp_if,
			 d->xdp_queues, g_xdp_dst.prog);
	}
	unsigned started = 0;
	for (; started < g_n_workers; started++)
		if (pthread_create(&g_workers[started].thread, NULL, worker_main,
				   &g_workers[started])) {
			log_err("pthread_create failed");
			atomic_store(&g_stop, true);
			break;
		}
	if (!atomic_load(&g_stop)) {
		d->admin = admin_server_new(&d->loop, d->conf->admin_socket, routes, d);
		if (!d->admin) {
			log_err("admin socket %s: %s", d->conf->admin_socket, strerror(errno));
		} else {
			log_info(
			    "serving %u zones on %u addresses with %u workers, admin API on %s",
			    d->conf->n_zones, d->conf->n_listen, g_n_workers,
			    d->conf->admin_socket);
			sd_notifyf("READY=1\nSTATUS=serving");
			loop_run(&d->loop);
			sd_notifyf("STOPPING=1");
			rc = 0;
		}
	}
	atomic_store(&g_stop, true);
	for (unsigned i = 0; i < started; i++) {
		uint64_t one = 1;
		if (write(g_workers[i].wake.fd, &one, sizeof(one)) < 0)
			log_warn("wake worker %u: %s", i, strerror(errno));
	}
	for (unsigned i = 0; i < started; i++)
		pthread_join(g_workers[i].thread, NULL);
	for (unsigned i = 0; i < g_n_workers; i++)
		worker_fini(&g_workers[i]);
	if (d->xdp_if[0])
		xdp_detach(d->xdp_if, g_xdp_dst.prog);
	gslb_xa_close(d->xa); /* detaches: queries go to the sockets, which are closing too */
	free(g_workers);
	admin_server_free(d->admin);
	loop_timer_cancel(&d->loop, &d->map_timer);
	loop_io_close(&d->loop, &d->sig_io);
	loop_io_close(&d->loop, &d->ino_io);
	loop_fini(&d->loop);
	free(rcu_xchg_pointer(&g_snap, NULL));
	gmap_close(d->map);
	geo_close(d->geo);
	gslb_conf_free(d->conf);
	free(d->states);
	return rc;
}
