// SPDX-License-Identifier: GPL-2.0-only
/*
 * h2_backend - the HTTP/2 cleartext origin behind the proxies being compared
 * (ours, nginx grpc_pass, haproxy proto h2). Benchmarks only.
 *
 *   h2_backend --listen ADDR:PORT [--listen ...] [--threads N]
 *              [--body-size N] [--grpc-size N]
 *
 * h2c with prior knowledge (RFC 9113 §3.3): no HTTP/1.1, no Upgrade, no TLS.
 * A request is answered once its END_STREAM arrives; its body is discarded
 * (nghttp2 hands the flow-control credit back as it is consumed).
 *   content-type application/grpc*: a gRPC unary response, i.e. HEADERS,
 *       one DATA frame holding one length-prefixed message (a
 *       grpc.testing.SimpleResponse whose payload body is --grpc-size bytes,
 *       default 10), trailers grpc-status 0 (gRPC over HTTP/2, "Responses").
 *   anything else: 200, application/octet-stream, --body-size bytes (default
 *       100); a path /bytes/N asks for N bytes instead, so one backend serves
 *       both the small and the 16 KiB benchmarks.
 *
 * Why it is built this way: the backend must cost far less than any proxy
 * in front of it, or it becomes what the benchmark measures. So: N threads,
 * each with its own epoll loop and SO_REUSEPORT listener (no shared state,
 * no locks); per-stream state is one word in nghttp2's stream user data (we
 * allocate nothing per request); bodies come from a static message or a
 * memset, headers are static and passed with NO_COPY; all frames produced
 * by one pass go out in one send. The remaining per-request cost is
 * nghttp2's own bookkeeping and HPACK.
 *
 * On exit (SIGINT/SIGTERM) it prints the requests served and its own CPU
 * time per request, so a benchmark can check the backend was not the limit.
 */
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#define MAX_LISTEN    16
#define MAX_THREADS   256
#define MAX_BODY      (1u << 30) /* /bytes/N and --body-size: fits the stream word */
#define MAX_STREAMS   1000
#define STREAM_WINDOW (1 << 20)
/* Request bodies are dropped on arrival, so a large connection window costs
 * no memory; it only keeps a client's uploads from stalling on WINDOW_UPDATE. */
#define CONN_WINDOW (16 << 20)
#define RBUF_SIZE   (64 * 1024)
/* Staging for one pass of nghttp2 output: a connection's frames go out in
 * one send instead of one per frame. */
#define OUT_SIZE   (64 * 1024)
#define MAX_EVENTS 256
/* Reads per readiness event: a connection streaming uploads yields to the
 * others after this many full buffers (epoll is level-triggered). */
#define READS_PER_EVENT 4

/* Everything registered in epoll starts with this, so data.ptr says what woke. */
enum ev_kind { EV_STOP, EV_LISTEN, EV_CONN };
struct ev_src {
	enum ev_kind kind;
	int fd;
};

struct worker;

struct conn {
	struct ev_src ev;
	struct worker *w;
	nghttp2_session *s;
	struct conn *prev, *next;
	uint32_t events; /* current epoll interest: EPOLLIN, or EPOLLOUT while blocked */
	/* What the kernel did not take: non-empty only while the socket is full.
	 * Nothing is read or generated until it drains (back-pressure). */
	uint8_t *bl;
	size_t bl_off, bl_len, bl_cap;
};

struct worker {
	pthread_t tid;
	int ep;
	struct ev_src lsn[MAX_LISTEN];
	unsigned nlsn;
	struct conn *conns; /* all open connections, to free them on exit */
	unsigned long long requests, accepted;
	uint8_t rbuf[RBUF_SIZE];
	uint8_t out[OUT_SIZE];
};

/* Set once by main() before the workers start; read-only afterwards. */
static struct {
	struct sockaddr_storage addr[MAX_LISTEN];
	socklen_t alen[MAX_LISTEN];
	unsigned naddr;
	unsigned threads;
	uint32_t body_size;
	uint32_t grpc_size;
} cfg = {.threads = 1, .body_size = 100, .grpc_size = 10};

static uint8_t *grpc_msg; /* 5-byte prefix + SimpleResponse, sent as is */
static size_t grpc_len;
static char body_len_str[16]; /* content-length for --body-size */
static nghttp2_session_callbacks *h2_cbs;
static nghttp2_option *h2_opt;
static struct ev_src stop_src = {.kind = EV_STOP, .fd = -1};

#define NV(n, v)                                                                                   \
	{                                                                                          \
		.name = (uint8_t *)(n), .value = (uint8_t *)(v), .namelen = sizeof(n) - 1,         \
		.valuelen = sizeof(v) - 1,                                                         \
		.flags = NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE,             \
	}

static const nghttp2_nv grpc_headers[] = {NV(":status", "200"),
					  NV("content-type", "application/grpc")};
static const nghttp2_nv grpc_trailers[] = {NV("grpc-status", "0"), NV("grpc-message", "")};

/*
 * Per-stream state is one word kept in nghttp2's stream user data, so it
 * needs no allocation and disappears with the stream: bit 0 says gRPC, the
 * rest is a byte count. While the request arrives the count is the /bytes/N
 * override plus one (0: none); once the response is submitted it is the
 * number of body bytes still to send.
 */
#define ST_GRPC ((uintptr_t)1)

static void *st_pack(uintptr_t grpc, uint64_t n)
{
	return (void *)(uintptr_t)(n << 1 | grpc);
}

static uintptr_t st_get(nghttp2_session *s, int32_t id)
{
	return (uintptr_t)nghttp2_session_get_stream_user_data(s, id);
}

static ssize_t body_read(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
			 nghttp2_data_source *src, void *user)
{
	uintptr_t st = st_get(s, id);
	size_t left = st >> 1, n = left < len ? left : len;

	(void)src;
	(void)user;
	if (st & ST_GRPC)
		memcpy(buf, grpc_msg + grpc_len - left, n);
	else
		memset(buf, 'x', n);
	left -= n;
	if (left) {
		nghttp2_session_set_stream_user_data(s, id, st_pack(st & ST_GRPC, left));
		return n;
	}
	*flags |= NGHTTP2_DATA_FLAG_EOF;
	if (st & ST_GRPC) {
		/* The status travels in trailers, so the DATA frame must not end
		 * the stream; nghttp2 allows submitting them from here. */
		*flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
		if (nghttp2_submit_trailer(s, id, grpc_trailers, ARRAY_SIZE(grpc_trailers)))
			return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	}
	return n;
}

static int respond(struct conn *c, int32_t id)
{
	nghttp2_data_provider dp = {.read_callback = body_read};
	uintptr_t st = st_get(c->s, id);
	char len_str[16];
	nghttp2_nv hdrs[] = {NV(":status", "200"), NV("content-type", "application/octet-stream"),
			     NV("content-length", "")};
	uint32_t size = cfg.body_size;
	int rv;

	c->w->requests++;
	if (st & ST_GRPC) {
		nghttp2_session_set_stream_user_data(c->s, id, st_pack(ST_GRPC, grpc_len));
		rv = nghttp2_submit_response(c->s, id, grpc_headers, ARRAY_SIZE(grpc_headers), &dp);
		return rv ? NGHTTP2_ERR_CALLBACK_FAILURE : 0;
	}
	if (st >> 1) {
		size = (st >> 1) - 1;
		snprintf(len_str, sizeof(len_str), "%u", size);
		hdrs[2].value = (uint8_t *)len_str;
		hdrs[2].valuelen = strlen(len_str);
		hdrs[2].flags = NGHTTP2_NV_FLAG_NO_COPY_NAME; /* submit copies the value */
	} else {
		hdrs[2].value = (uint8_t *)body_len_str;
		hdrs[2].valuelen = strlen(body_len_str);
	}
	nghttp2_session_set_stream_user_data(c->s, id, st_pack(0, size));
	/* An empty body: HEADERS alone carries END_STREAM. */
	rv = nghttp2_submit_response(c->s, id, hdrs, ARRAY_SIZE(hdrs), size ? &dp : NULL);
	return rv ? NGHTTP2_ERR_CALLBACK_FAILURE : 0;
}

static int on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name,
		     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
		     void *user)
{
	uintptr_t st, n = 0;
	size_t i;

	(void)flags;
	(void)user;
	if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	st = st_get(s, f->hd.stream_id);
	if (namelen == 12 && !memcmp(name, "content-type", 12) && valuelen >= 16 &&
	    !memcmp(value, "application/grpc", 16)) {
		st |= ST_GRPC;
	} else if (namelen == 5 && !memcmp(name, ":path", 5) && valuelen > 7 &&
		   !memcmp(value, "/bytes/", 7)) {
		/* The value is not NUL-terminated; digits up to the first other
		 * byte ("/bytes/100?x" is 100), no digits: no override. */
		for (i = 7; i < valuelen && value[i] >= '0' && value[i] <= '9'; i++) {
			n = n * 10 + (value[i] - '0');
			if (n > MAX_BODY)
				return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* RST_STREAM */
		}
		if (i == 7)
			return 0;
		st = (st & ST_GRPC) | (n + 1) << 1;
	} else {
		return 0;
	}
	nghttp2_session_set_stream_user_data(s, f->hd.stream_id, (void *)st);
	return 0;
}

static int on_frame_recv(nghttp2_session *s, const nghttp2_frame *f, void *user)
{
	(void)s;
	/* END_STREAM on HEADERS (no body, or trailers) or DATA: request complete. */
	if ((f->hd.type == NGHTTP2_HEADERS || f->hd.type == NGHTTP2_DATA) &&
	    (f->hd.flags & NGHTTP2_FLAG_END_STREAM))
		return respond(user, f->hd.stream_id);
	return 0;
}

/*
 * Write @iov; whatever the kernel does not take is copied to the backlog,
 * which is empty on entry (nothing is generated while it is not). Returns 0 if all was sent, 1 if the socket is full (backlog non-empty),
 * -errno on a socket error or allocation failure.
 */
static int conn_write(struct conn *c, struct iovec *iov, int cnt)
{
	struct msghdr mh = {.msg_iov = iov, .msg_iovlen = cnt};
	size_t total = 0, need;
	ssize_t sent;
	int i;

	for (i = 0; i < cnt; i++)
		total += iov[i].iov_len;
	sent = sendmsg(c->ev.fd, &mh, MSG_NOSIGNAL);
	if (sent < 0) {
		if (errno != EAGAIN && errno != EINTR)
			return -errno;
		sent = 0;
	}
	if ((size_t)sent == total)
		return 0;
	need = total - sent;
	if (need > c->bl_cap) {
		uint8_t *nb = realloc(c->bl, need);

		if (!nb)
			return -ENOMEM;
		c->bl = nb;
		c->bl_cap = need;
	}
	for (i = 0; i < cnt; i++) {
		size_t skip = (size_t)sent < iov[i].iov_len ? (size_t)sent : iov[i].iov_len;

		memcpy(c->bl + c->bl_len, (uint8_t *)iov[i].iov_base + skip, iov[i].iov_len - skip);
		c->bl_len += iov[i].iov_len - skip;
		sent -= skip;
	}
	return 1;
}

/*
 * Send the backlog, then everything nghttp2 has to say, staged in the
 * worker's buffer. Returns 0 (all sent, or blocked with a backlog) or
 * -errno. The pointer mem_send returns is valid only until its next call,
 * so a chunk that does not fit the staging buffer is sent at once along
 * with it (and any unsent tail copied) before asking for more.
 */
static int conn_flush(struct conn *c)
{
	uint8_t *out = c->w->out;
	struct iovec iov[2];
	size_t len = 0;
	int rv;

	if (c->bl_len) {
		ssize_t sent = send(c->ev.fd, c->bl + c->bl_off, c->bl_len, MSG_NOSIGNAL);

		if (sent < 0)
			return errno == EAGAIN || errno == EINTR ? 0 : -errno;
		c->bl_off += sent;
		c->bl_len -= sent;
		if (c->bl_len)
			return 0;
		c->bl_off = 0;
	}
	for (;;) {
		const uint8_t *p;
		ssize_t n = nghttp2_session_mem_send(c->s, &p);

		if (n < 0)
			return -EPROTO;
		if (n == 0)
			break;
		if (len + n <= OUT_SIZE) {
			memcpy(out + len, p, n);
			len += n;
			continue;
		}
		iov[0] = (struct iovec){.iov_base = out, .iov_len = len};
		iov[1] = (struct iovec){.iov_base = (void *)p, .iov_len = n};
		len = 0;
		rv = conn_write(c, iov, 2);
		if (rv)
			return rv < 0 ? rv : 0;
	}
	if (!len)
		return 0;
	iov[0] = (struct iovec){.iov_base = out, .iov_len = len};
	rv = conn_write(c, iov, 1);
	return rv < 0 ? rv : 0;
}

/* Returns 0, or -1 when the connection is finished (EOF, error, bad h2). */
static int conn_read(struct conn *c)
{
	uint8_t *rbuf = c->w->rbuf;
	int i;

	for (i = 0; i < READS_PER_EVENT; i++) {
		ssize_t n = recv(c->ev.fd, rbuf, RBUF_SIZE, 0);

		if (n == 0)
			return -1;
		if (n < 0)
			return errno == EAGAIN || errno == EINTR ? 0 : -1;
		if (nghttp2_session_mem_recv(c->s, rbuf, n) < 0)
			return -1;
		if (n < RBUF_SIZE)
			break; /* most likely drained: spare the EAGAIN round trip */
	}
	return 0;
}

static void conn_close(struct conn *c)
{
	struct worker *w = c->w;

	if (c->prev)
		c->prev->next = c->next;
	else
		w->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	nghttp2_session_del(c->s);
	close(c->ev.fd); /* also leaves the epoll set: the fd is never dup'ed */
	free(c->bl);
	free(c);
}

/*
 * Match the epoll interest to the state: EPOLLOUT while a backlog waits,
 * EPOLLIN otherwise. Returns 0, or -1 when the connection should close.
 */
static int conn_update(struct conn *c)
{
	uint32_t want = c->bl_len ? EPOLLOUT : EPOLLIN;
	struct epoll_event ev = {.events = want, .data.ptr = c};

	/* After GOAWAY (either way) nghttp2 wants nothing more. */
	if (!c->bl_len && !nghttp2_session_want_read(c->s) && !nghttp2_session_want_write(c->s))
		return -1;
	if (want == c->events)
		return 0;
	if (epoll_ctl(c->w->ep, EPOLL_CTL_MOD, c->ev.fd, &ev))
		return -1;
	c->events = want;
	return 0;
}

static void conn_event(struct conn *c)
{
	if (c->bl_len) {
		/* Blocked on a full socket: only writability matters here;
		 * EPOLLERR/EPOLLHUP show up as a send error. */
		if (conn_flush(c) < 0)
			goto close;
	} else if (conn_read(c) < 0 || conn_flush(c) < 0) {
		goto close;
	}
	if (conn_update(c))
		goto close;
	return;
close:
	conn_close(c);
}

static int conn_open(struct worker *w, int fd)
{
	static const nghttp2_settings_entry iv[] = {
	    {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, MAX_STREAMS},
	    {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, STREAM_WINDOW},
	    /* RFC 9218 §2.1: skip the RFC 7540 priority tree nobody here uses. */
	    {NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES, 1},
	};
	struct epoll_event ev = {.events = EPOLLIN};
	struct conn *c;
	int one = 1, rv = -ENOMEM;

	c = calloc(1, sizeof(*c));
	if (!c)
		goto out_fd;
	c->ev = (struct ev_src){.kind = EV_CONN, .fd = fd};
	c->w = w;
	c->events = EPOLLIN;
	/* Responses are small and already coalesced per pass: send them now. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (nghttp2_session_server_new2(&c->s, h2_cbs, c, h2_opt))
		goto out_free;
	if (nghttp2_submit_settings(c->s, NGHTTP2_FLAG_NONE, iv, ARRAY_SIZE(iv)) ||
	    nghttp2_session_set_local_window_size(c->s, NGHTTP2_FLAG_NONE, 0, CONN_WINDOW))
		goto out_session;
	ev.data.ptr = c;
	if (epoll_ctl(w->ep, EPOLL_CTL_ADD, fd, &ev)) {
		rv = -errno;
		goto out_session;
	}
	c->next = w->conns;
	if (w->conns)
		w->conns->prev = c;
	w->conns = c;
	w->accepted++;
	/* Our SETTINGS go out now; a full socket here is handled by the loop. */
	rv = conn_flush(c);
	if (rv < 0 || conn_update(c)) {
		conn_close(c);
		return rv < 0 ? rv : -EIO;
	}
	return 0;
out_session:
	nghttp2_session_del(c->s);
out_free:
	free(c);
out_fd:
	close(fd);
	return rv;
}

static void worker_accept(struct worker *w, int lfd)
{
	for (;;) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == ECONNABORTED || errno == EINTR)
				continue;
			if (errno != EAGAIN)
				perror("h2_backend: accept");
			return;
		}
		conn_open(w, fd);
	}
}

static void *worker_run(void *arg)
{
	struct epoll_event evs[MAX_EVENTS];
	struct worker *w = arg;
	int i, n;

	for (;;) {
		n = epoll_wait(w->ep, evs, MAX_EVENTS, -1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			perror("h2_backend: epoll_wait");
			kill(getpid(), SIGTERM); /* main() tears everything down */
			break;
		}
		for (i = 0; i < n; i++) {
			struct ev_src *src = evs[i].data.ptr;

			if (src->kind == EV_STOP)
				goto out;
			if (src->kind == EV_LISTEN)
				worker_accept(w, src->fd);
			else
				conn_event((struct conn *)src);
		}
	}
out:
	while (w->conns)
		conn_close(w->conns);
	return NULL;
}

/*
 * One listener per worker and address: the kernel spreads connections over
 * the SO_REUSEPORT group. Port 0 is resolved by the first worker's bind and
 * written back to cfg so the others join the same group. Returns 0 or -errno.
 */
static int worker_init(struct worker *w)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &stop_src};
	unsigned i;
	int one = 1;

	w->ep = epoll_create1(EPOLL_CLOEXEC);
	if (w->ep < 0)
		return -errno;
	if (epoll_ctl(w->ep, EPOLL_CTL_ADD, stop_src.fd, &ev))
		return -errno;
	for (i = 0; i < cfg.naddr; i++) {
		struct sockaddr *sa = (struct sockaddr *)&cfg.addr[i];
		int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

		if (fd < 0)
			return -errno;
		w->lsn[w->nlsn++] = (struct ev_src){.kind = EV_LISTEN, .fd = fd};
		ev.data.ptr = &w->lsn[i];
		if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
		    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) ||
		    bind(fd, sa, cfg.alen[i]) || listen(fd, 4096) ||
		    getsockname(fd, sa, &cfg.alen[i]) || epoll_ctl(w->ep, EPOLL_CTL_ADD, fd, &ev))
			return -errno;
	}
	return 0;
}

/*
 * SO_REUSEPORT would let us join the group of a forgotten earlier instance
 * and get only part of the connections, silently. A plain bind fails on a
 * port held by anyone, so try one first. Returns 0 or -errno.
 */
static int port_free(const struct sockaddr *sa, socklen_t len)
{
	int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1, rv = 0;

	if (fd < 0)
		return -errno;
	/* ...but not on our own TIME_WAIT leftovers from the previous run. */
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) || bind(fd, sa, len))
		rv = -errno;
	close(fd);
	return rv;
}

static void worker_fini(struct worker *w)
{
	unsigned i;

	for (i = 0; i < w->nlsn; i++)
		close(w->lsn[i].fd);
	if (w->ep >= 0)
		close(w->ep);
}

/* "ADDR:PORT", "[V6ADDR]:PORT" or ":PORT" (any address). Returns 0 or -EINVAL. */
static int parse_listen(const char *arg, struct sockaddr_storage *ss, socklen_t *len)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE};
	struct addrinfo *ai;
	char buf[128], *host = buf, *port;

	if (snprintf(buf, sizeof(buf), "%s", arg) >= (int)sizeof(buf))
		return -EINVAL;
	if (buf[0] == '[') {
		host = buf + 1;
		port = strstr(host, "]:");
		if (!port)
			return -EINVAL;
		*port = '\0';
		port += 2;
	} else {
		port = strrchr(buf, ':');
		if (!port)
			return -EINVAL;
		*port++ = '\0';
	}
	if (getaddrinfo(*host ? host : NULL, port, &hints, &ai))
		return -EINVAL;
	memcpy(ss, ai->ai_addr, ai->ai_addrlen);
	*len = ai->ai_addrlen;
	freeaddrinfo(ai);
	return 0;
}

static int parse_uint(const char *s, unsigned long max, uint32_t *out)
{
	unsigned long v;
	char *end;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v > max || s[0] == '-')
		return -EINVAL;
	*out = v;
	return 0;
}

static size_t varint_len(uint64_t v)
{
	size_t n = 1;

	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

static size_t put_varint(uint8_t *p, uint64_t v)
{
	size_t n = 0;

	while (v >= 0x80) {
		p[n++] = (uint8_t)v | 0x80;
		v >>= 7;
	}
	p[n++] = v;
	return n;
}

/*
 * The one gRPC message every unary call gets (gRPC over HTTP/2,
 * "Length-Prefixed-Message"): flag 0, a 4-byte big-endian length, then
 * grpc.testing.SimpleResponse { payload (1) = Payload { body (2) = @body
 * bytes } }, hand-encoded so any SimpleResponse parser accepts it.
 */
static int grpc_msg_build(uint32_t body)
{
	size_t plen = 1 + varint_len(body) + body;
	size_t mlen = 1 + varint_len(plen) + plen;
	uint8_t *p;

	grpc_msg = malloc(5 + mlen);
	if (!grpc_msg)
		return -ENOMEM;
	p = grpc_msg;
	*p++ = 0;
	*p++ = mlen >> 24;
	*p++ = mlen >> 16;
	*p++ = mlen >> 8;
	*p++ = mlen;
	*p++ = 1 << 3 | 2; /* field 1, length-delimited */
	p += put_varint(p, plen);
	*p++ = 2 << 3 | 2; /* field 2, length-delimited */
	p += put_varint(p, body);
	memset(p, 'x', body);
	grpc_len = 5 + mlen;
	return 0;
}

static int h2_init(void)
{
	if (nghttp2_session_callbacks_new(&h2_cbs) || nghttp2_option_new(&h2_opt))
		return -ENOMEM;
	nghttp2_session_callbacks_set_on_header_callback(h2_cbs, on_header);
	nghttp2_session_callbacks_set_on_frame_recv_callback(h2_cbs, on_frame_recv);
	/* Closed streams are kept only to place RFC 7540 priorities. */
	nghttp2_option_set_no_closed_streams(h2_opt, 1);
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: h2_backend --listen ADDR:PORT [--listen ...] [--threads N]\n"
		"                  [--body-size N] [--grpc-size N]\n"
		"  --listen     h2c (prior knowledge) address, [V6]:PORT for IPv6 (max %d)\n"
		"  --threads    worker threads, each with its own listeners (default 1)\n"
		"  --body-size  bytes in a plain response (default 100; /bytes/N: N)\n"
		"  --grpc-size  bytes of SimpleResponse.payload.body (default 10)\n",
		MAX_LISTEN);
}

static int parse_args(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"listen", required_argument, NULL, 'l'},
	    {"threads", required_argument, NULL, 't'},
	    {"body-size", required_argument, NULL, 'b'},
	    {"grpc-size", required_argument, NULL, 'g'},
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	int o, rv;

	while ((o = getopt_long(argc, argv, "l:t:b:g:h", opts, NULL)) != -1) {
		switch (o) {
		case 'l':
			if (cfg.naddr == MAX_LISTEN) {
				fprintf(stderr, "h2_backend: more than %d --listen\n", MAX_LISTEN);
				return -EINVAL;
			}
			rv = parse_listen(optarg, &cfg.addr[cfg.naddr], &cfg.alen[cfg.naddr]);
			cfg.naddr++;
			break;
		case 't':
			rv = parse_uint(optarg, MAX_THREADS, &cfg.threads);
			if (!rv && !cfg.threads)
				rv = -EINVAL;
			break;
		case 'b':
			rv = parse_uint(optarg, MAX_BODY, &cfg.body_size);
			break;
		case 'g':
			rv = parse_uint(optarg, MAX_BODY, &cfg.grpc_size);
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return -EINVAL;
		}
		if (rv) {
			const struct option *opt = opts;

			while (opt->val != o)
				opt++;
			fprintf(stderr, "h2_backend: --%s \"%s\": invalid\n", opt->name, optarg);
			return rv;
		}
	}
	if (!cfg.naddr || optind != argc) {
		usage(stderr);
		return -EINVAL;
	}
	return 0;
}

static void report(struct worker *ws, unsigned n)
{
	unsigned long long reqs = 0, conns = 0;
	struct rusage ru;
	double user, sys;
	unsigned i;

	for (i = 0; i < n; i++) {
		reqs += ws[i].requests;
		conns += ws[i].accepted;
	}
	getrusage(RUSAGE_SELF, &ru);
	user = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6;
	sys = ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
	fprintf(stderr,
		"h2_backend: %llu requests on %llu connections; cpu %.3fs user + %.3fs sys"
		" = %.2f us/request\n",
		reqs, conns, user, sys, reqs ? (user + sys) * 1e6 / reqs : 0.0);
}

/* cfg.addr[@i] as ADDR:PORT or [ADDR]:PORT, in @buf (64 bytes). */
static const char *addr_str(unsigned i, char *buf)
{
	char host[48], port[8];

	if (getnameinfo((struct sockaddr *)&cfg.addr[i], cfg.alen[i], host, sizeof(host), port,
			sizeof(port), NI_NUMERICHOST | NI_NUMERICSERV))
		return "?";
	snprintf(buf, 64, cfg.addr[i].ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s", host, port);
	return buf;
}

static void print_listening(void)
{
	char buf[64];
	unsigned i;

	fprintf(stderr, "h2_backend: %u thread(s), listening on", cfg.threads);
	for (i = 0; i < cfg.naddr; i++)
		fprintf(stderr, " %s", addr_str(i, buf));
	fprintf(stderr, "\n");
}

int main(int argc, char **argv)
{
	struct worker *ws = NULL;
	unsigned i, started = 0;
	struct rlimit rl;
	sigset_t sigs;
	int rv, sig;

	if (parse_args(argc, argv))
		return 2;
	rv = grpc_msg_build(cfg.grpc_size);
	if (!rv)
		rv = h2_init();
	if (rv)
		goto out_h2;
	snprintf(body_len_str, sizeof(body_len_str), "%u", cfg.body_size);
	/* One fd per connection: thousands of benchmark connections must fit. */
	if (!getrlimit(RLIMIT_NOFILE, &rl)) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}

	/* Signals go to main() only (sigwait); the workers inherit the mask. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	/* Never read: once written it stays readable and wakes every worker. */
	stop_src.fd = eventfd(0, EFD_CLOEXEC);
	ws = calloc(cfg.threads, sizeof(*ws));
	if (stop_src.fd < 0 || !ws) {
		rv = -ENOMEM;
		goto out_workers;
	}
	for (i = 0; i < cfg.threads; i++)
		ws[i].ep = -1;
	for (i = 0; i < cfg.naddr; i++) {
		rv = port_free((struct sockaddr *)&cfg.addr[i], cfg.alen[i]);
		if (rv) {
			char buf[64];

			fprintf(stderr, "h2_backend: %s: %s\n", addr_str(i, buf), strerror(-rv));
			goto out_workers;
		}
	}
	for (i = 0; i < cfg.threads; i++) {
		rv = worker_init(&ws[i]);
		if (rv) {
			fprintf(stderr, "h2_backend: listen: %s\n", strerror(-rv));
			goto out_workers;
		}
	}
	print_listening();
	for (; started < cfg.threads; started++) {
		rv = -pthread_create(&ws[started].tid, NULL, worker_run, &ws[started]);
		if (rv)
			goto out_stop;
	}
	sigwait(&sigs, &sig);
out_stop:
	if (eventfd_write(stop_src.fd, 1))
		rv = -errno;
	for (i = 0; i < started; i++)
		pthread_join(ws[i].tid, NULL);
	report(ws, started);
out_workers:
	for (i = 0; ws && i < cfg.threads; i++)
		worker_fini(&ws[i]);
	free(ws);
	if (stop_src.fd >= 0)
		close(stop_src.fd);
out_h2:
	nghttp2_option_del(h2_opt);
	nghttp2_session_callbacks_del(h2_cbs);
	free(grpc_msg);
	return rv ? 1 : 0;
}
