// SPDX-License-Identifier: GPL-2.0-only
/*
 * tls_resume_load - many TLS clients at once, each reconnecting again and
 * again and offering each session ticket once, as browsers do. Benchmarks
 * only (tests/bench/bench_tls.sh).
 *
 *   tls_resume_load --connect IP:PORT --ca FILE [--sni NAME] [--path P]
 *                   [--count N] [--concurrency C] [--timeout-ms MS]
 *
 * Each of C slots is one "browser": it opens a connection, does the TLS
 * handshake offering the newest ticket it holds (and forgets it: a ticket
 * is offered once, RFC 8446 §C.4), sends one GET with Connection: close,
 * reads to the end, keeps the newest ticket the server sent, and starts
 * again, until N connections have been made in all. It prints one JSON
 * line with the same keys as tests/e2e/tls_resume.py:
 *
 *   {"connections": N, "resumed": R, "errors": E, "statuses": {...},
 *    "seconds": S, "first_error": "..."}
 *
 * Why not the Python client: it waits for each connection before the next,
 * so a proxy is woken for every packet of every handshake and the figure
 * measures wake-ups and loopback TCP more than handshakes. Full handshakes
 * are measured with h2load, which keeps many connections going; this does
 * the same for resumptions, so the two columns compare.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_SLOTS 1024

struct slot {
	int fd;
	SSL *ssl;
	SSL_SESSION *ticket; /* newest session the server gave; offered once */
	size_t wrote;	     /* request bytes written */
	char head[16];	     /* the first bytes of the response: the status */
	size_t head_len;
	uint64_t deadline_ms;
	uint32_t events; /* current epoll interest */
};

static struct {
	struct sockaddr_storage addr;
	socklen_t addr_len;
	const char *sni, *path;
	char request[512];
	size_t request_len;
	long count, started, done, resumed, errors;
	long status[6]; /* 1xx..5xx, [0] = no status */
	int timeout_ms, epfd;
	char first_error[200];
} g = {.sni = "localhost", .path = "/", .count = 1000, .timeout_ms = 10000};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void error(const char *what)
{
	unsigned long e = ERR_peek_last_error();

	g.errors++;
	if (!g.first_error[0])
		snprintf(g.first_error, sizeof(g.first_error), "%s: %s (errno %d)", what,
			 e ? ERR_reason_error_string(e) : "-", errno);
	ERR_clear_error();
}

/* Keep the newest ticket; the library hands over its reference (return 1). */
static int on_new_session(SSL *ssl, SSL_SESSION *sess)
{
	struct slot *s = SSL_get_app_data(ssl);

	if (s->ticket)
		SSL_SESSION_free(s->ticket);
	s->ticket = sess;
	return 1;
}

static void finish(struct slot *s, bool ok)
{
	if (ok) {
		g.done++;
		if (SSL_session_reused(s->ssl))
			g.resumed++;
		if (s->head_len >= 12 && s->head[9] >= '1' && s->head[9] <= '5')
			g.status[s->head[9] - '0']++;
		else
			g.status[0]++;
	}
	epoll_ctl(g.epfd, EPOLL_CTL_DEL, s->fd, NULL);
	SSL_free(s->ssl);
	close(s->fd);
	s->ssl = NULL;
	s->fd = -1;
}

static bool start(SSL_CTX *ctx, struct slot *s)
{
	struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = s};
	int one = 1;

	g.started++; /* an attempt: it ends as one done or one error */
	s->fd = socket(g.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->fd < 0) {
		error("socket");
		return false;
	}
	setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(s->fd, (struct sockaddr *)&g.addr, g.addr_len) < 0 && errno != EINPROGRESS) {
		error("connect");
		close(s->fd);
		s->fd = -1;
		return false;
	}
	s->ssl = SSL_new(ctx);
	if (!s->ssl || !SSL_set_fd(s->ssl, s->fd) || !SSL_set_tlsext_host_name(s->ssl, g.sni) ||
	    !X509_VERIFY_PARAM_set1_host(SSL_get0_param(s->ssl), g.sni, strlen(g.sni))) {
		error("SSL_new");
		SSL_free(s->ssl);
		close(s->fd);
		s->ssl = NULL;
		s->fd = -1;
		return false;
	}
	SSL_set_app_data(s->ssl, s);
	SSL_set_connect_state(s->ssl);
	if (s->ticket) {
		SSL_set_session(s->ssl, s->ticket); /* takes its own reference */
		SSL_SESSION_free(s->ticket);
		s->ticket = NULL;
	}
	s->wrote = 0;
	s->head_len = 0;
	s->deadline_ms = now_ms() + (uint64_t)g.timeout_ms;
	s->events = ev.events;
	if (epoll_ctl(g.epfd, EPOLL_CTL_ADD, s->fd, &ev) < 0) {
		error("epoll_ctl");
		finish(s, false);
		return false;
	}
	return true;
}

static void want(struct slot *s, uint32_t events)
{
	struct epoll_event ev = {.events = events, .data.ptr = s};

	if (s->events != events && epoll_ctl(g.epfd, EPOLL_CTL_MOD, s->fd, &ev) == 0)
		s->events = events;
}

/* Move one connection as far as it goes. Returns true when it has ended. */
static bool step(struct slot *s)
{
	char buf[16384];
	int r;

	if (!s->ssl)
		return true;
	r = SSL_do_handshake(s->ssl);
	if (r != 1)
		goto blocked;
	while (s->wrote < g.request_len) {
		r = SSL_write(s->ssl, g.request + s->wrote, (int)(g.request_len - s->wrote));
		if (r <= 0)
			goto blocked;
		s->wrote += (size_t)r;
	}
	for (;;) {
		r = SSL_read(s->ssl, buf, sizeof(buf));
		if (r <= 0)
			break;
		if (s->head_len < sizeof(s->head)) {
			size_t n = sizeof(s->head) - s->head_len;

			if (n > (size_t)r)
				n = (size_t)r;
			memcpy(s->head + s->head_len, buf, n);
			s->head_len += n;
		}
	}
blocked:
	switch (SSL_get_error(s->ssl, r)) {
	case SSL_ERROR_WANT_READ:
		want(s, EPOLLIN);
		return false;
	case SSL_ERROR_WANT_WRITE:
		want(s, EPOLLOUT);
		return false;
	case SSL_ERROR_ZERO_RETURN:
		finish(s, s->head_len > 0);
		return true;
	case SSL_ERROR_SYSCALL:
		/* A close without close_notify after the whole answer (the
		 * request said Connection: close) is the end, not an error. */
		if (s->head_len > 0 && ERR_peek_error() == 0) {
			finish(s, true);
			return true;
		}
		/* fall through */
	default:
		error(s->head_len ? "read" : "handshake");
		finish(s, false);
		return true;
	}
}

static int parse_addr(const char *arg)
{
	char host[128];
	const char *colon = strrchr(arg, ':');
	struct sockaddr_in *in4 = (struct sockaddr_in *)&g.addr;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&g.addr;
	long port;

	if (!colon || (size_t)(colon - arg) >= sizeof(host))
		return -1;
	port = strtol(colon + 1, NULL, 10);
	if (port <= 0 || port > 65535)
		return -1;
	memcpy(host, arg, (size_t)(colon - arg));
	host[colon - arg] = 0;
	if (host[0] == '[' && host[strlen(host) - 1] == ']') {
		memmove(host, host + 1, strlen(host));
		host[strlen(host) - 1] = 0;
	}
	if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
		in4->sin_port = htons((uint16_t)port);
		g.addr_len = sizeof(*in4);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)port);
		g.addr_len = sizeof(*in6);
		return 0;
	}
	return -1;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: tls_resume_load --connect IP:PORT --ca FILE [--sni NAME] [--path P]\n"
		"                       [--count N] [--concurrency C] [--timeout-ms MS]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"connect", required_argument, NULL, 'c'},
	    {"ca", required_argument, NULL, 'a'},
	    {"sni", required_argument, NULL, 's'},
	    {"path", required_argument, NULL, 'p'},
	    {"count", required_argument, NULL, 'n'},
	    {"concurrency", required_argument, NULL, 'k'},
	    {"timeout-ms", required_argument, NULL, 't'},
	    {NULL, 0, NULL, 0},
	};
	static struct slot slots[MAX_SLOTS];
	struct epoll_event evs[64];
	const char *ca = NULL;
	long conc = 16;
	uint64_t t0, last_scan = 0;
	SSL_CTX *ctx;
	int o, i, n;

	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case 'c':
			if (parse_addr(optarg) < 0)
				usage();
			break;
		case 'a':
			ca = optarg;
			break;
		case 's':
			g.sni = optarg;
			break;
		case 'p':
			g.path = optarg;
			break;
		case 'n':
			g.count = strtol(optarg, NULL, 10);
			break;
		case 'k':
			conc = strtol(optarg, NULL, 10);
			break;
		case 't':
			g.timeout_ms = (int)strtol(optarg, NULL, 10);
			break;
		default:
			usage();
		}
	}
	if (!g.addr_len || !ca || g.count <= 0 || conc <= 0 || conc > MAX_SLOTS ||
	    g.timeout_ms <= 0)
		usage();
	n = snprintf(g.request, sizeof(g.request),
		     "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", g.path, g.sni);
	if (n < 0 || (size_t)n >= sizeof(g.request))
		usage();
	g.request_len = (size_t)n;

	ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx || !SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) ||
	    !SSL_CTX_load_verify_locations(ctx, ca, NULL)) {
		fprintf(stderr, "tls_resume_load: cannot set up TLS with CA %s\n", ca);
		return 1;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL);
	SSL_CTX_sess_set_new_cb(ctx, on_new_session);

	g.epfd = epoll_create1(EPOLL_CLOEXEC);
	if (g.epfd < 0) {
		perror("epoll_create1");
		return 1;
	}
	for (i = 0; i < conc; i++)
		slots[i].fd = -1;
	t0 = now_ms();
	/* The loop ends: every attempt (at most count) ends as exactly one
	 * done or one error, each connection has a deadline, and each pass
	 * waits at most 100 ms. */
	while (g.done + g.errors < g.count) {
		for (i = 0; i < conc; i++)
			if (slots[i].fd < 0 && g.started < g.count && start(ctx, &slots[i]))
				step(&slots[i]);
		n = epoll_wait(g.epfd, evs, 64, 100);
		for (i = 0; i < n; i++)
			step(evs[i].data.ptr);
		if (now_ms() - last_scan >= 100) {
			uint64_t now = now_ms();

			last_scan = now;
			for (i = 0; i < conc; i++)
				if (slots[i].fd >= 0 && now > slots[i].deadline_ms) {
					errno = ETIMEDOUT;
					error("timeout");
					finish(&slots[i], false);
				}
		}
	}
	printf("{\"connections\": %ld, \"resumed\": %ld, \"errors\": %ld, \"statuses\": {\"1xx\": "
	       "%ld, "
	       "\"2xx\": %ld, \"3xx\": %ld, \"4xx\": %ld, \"5xx\": %ld, \"none\": %ld}, "
	       "\"seconds\": %.3f, "
	       "\"first_error\": \"%s\"}\n",
	       g.done, g.resumed, g.errors, g.status[1], g.status[2], g.status[3], g.status[4],
	       g.status[5], g.status[0], (double)(now_ms() - t0) / 1000.0, g.first_error);
	for (i = 0; i < conc; i++)
		if (slots[i].ticket)
			SSL_SESSION_free(slots[i].ticket);
	SSL_CTX_free(ctx);
	close(g.epfd);
	return g.done ? 0 : 1;
}
