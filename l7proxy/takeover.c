// SPDX-License-Identifier: GPL-2.0-only
#include "takeover.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define HEADER "portico-takeover 1 "

static int send_msg(int sock, const char *data, size_t len, const int *fds, size_t n)
{
	char ctl[CMSG_SPACE(sizeof(int) * TAKEOVER_CHUNK)] = {0};
	struct iovec iov = {.iov_base = (void *)data, .iov_len = len};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	ssize_t rc;

	if (n) {
		struct cmsghdr *cm;

		mh.msg_control = ctl;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * n);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int) * n);
		memcpy(CMSG_DATA(cm), fds, sizeof(int) * n);
	}
	do
		rc = sendmsg(sock, &mh, MSG_NOSIGNAL);
	while (rc < 0 && errno == EINTR);
	return rc < 0 ? -errno : 0;
}

int takeover_send(int sock, const int *fds, size_t n)
{
	char head[64];
	int rc;

	if (n > TAKEOVER_MAX)
		return -E2BIG;
	snprintf(head, sizeof(head), HEADER "%zu", n);
	if ((rc = send_msg(sock, head, strlen(head), NULL, 0)))
		return rc;
	for (size_t off = 0; off < n; off += TAKEOVER_CHUNK) {
		size_t k = n - off < TAKEOVER_CHUNK ? n - off : TAKEOVER_CHUNK;

		if ((rc = send_msg(sock, "fds", 3, fds + off, k)))
			return rc;
	}
	return 0;
}

/* One message: its bytes into buf, its descriptors appended to fds. */
static int recv_msg(int sock, int timeout_ms, char *buf, size_t cap, size_t *len, int *fds,
		    size_t *n, size_t max)
{
	char ctl[CMSG_SPACE(sizeof(int) * TAKEOVER_CHUNK)];
	struct iovec iov = {.iov_base = buf, .iov_len = cap - 1};
	struct msghdr mh = {
	    .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof(ctl)};
	struct pollfd pfd = {.fd = sock, .events = POLLIN};
	ssize_t rc;
	int bad = 0;

	do
		rc = poll(&pfd, 1, timeout_ms);
	while (rc < 0 && errno == EINTR);
	if (rc == 0)
		return -ETIMEDOUT;
	if (rc < 0)
		return -errno;
	do
		rc = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
	while (rc < 0 && errno == EINTR);
	if (rc < 0)
		return -errno;
	if (rc == 0)
		return -ECONNRESET;
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
		size_t k;

		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < k; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
			if (*n < max)
				fds[(*n)++] = fd;
			else {
				close(fd); /* more than announced */
				bad = -EPROTO;
			}
		}
	}
	if (mh.msg_flags & (MSG_CTRUNC | MSG_TRUNC))
		bad = -EPROTO;
	buf[rc] = '\0';
	*len = (size_t)rc;
	return bad;
}

int takeover_recv(int sock, int timeout_ms, int **fdsp, size_t *np, char *err, size_t errlen)
{
	char buf[128];
	size_t len, n = 0, want;
	char *end;
	int *fds = NULL, rc;

	rc = recv_msg(sock, timeout_ms, buf, sizeof(buf), &len, NULL, &n, 0);
	if (rc) {
		snprintf(err, errlen, "takeover: no header from the running proxy: %s",
			 strerror(-rc));
		return rc;
	}
	if (strncmp(buf, HEADER, strlen(HEADER)) != 0) {
		snprintf(err, errlen, "takeover: unexpected header \"%.40s\"", buf);
		return -EPROTO;
	}
	errno = 0;
	want = strtoul(buf + strlen(HEADER), &end, 10);
	if (errno || *end || want == 0 || want > TAKEOVER_MAX) {
		snprintf(err, errlen, "takeover: bad socket count in \"%.40s\"", buf);
		return -EPROTO;
	}
	fds = calloc(want, sizeof(*fds));
	if (!fds)
		return -ENOMEM;
	while (n < want) {
		size_t before = n;

		rc = recv_msg(sock, timeout_ms, buf, sizeof(buf), &len, fds, &n, want);
		if (!rc && n == before)
			rc = -EPROTO; /* a message without descriptors */
		if (rc) {
			snprintf(err, errlen, "takeover: receiving sockets (%zu of %zu): %s", n,
				 want, strerror(-rc));
			for (size_t i = 0; i < n; i++)
				close(fds[i]);
			free(fds);
			return rc;
		}
	}
	*fdsp = fds;
	*np = n;
	return 0;
}

static bool same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;

		return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	if (a->ss_family == AF_INET6) {
		const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;

		return x->sin6_port == y->sin6_port &&
		       memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
	}
	return false;
}

/* Whether fd is a listening TCP socket. */
static bool is_listener(int fd)
{
	int v = 0, type = 0;
	socklen_t l = sizeof(v), tl = sizeof(type);

	return getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &l) == 0 && v &&
	       getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) == 0 && type == SOCK_STREAM;
}

int takeover_assign(const struct l7_config *cfg, int *fds, size_t n, int **matrixp, char *err,
		    size_t errlen)
{
	size_t nl = cfg->n_listeners, k = 0;
	size_t *count = calloc(nl ? nl : 1, sizeof(*count));
	int *matrix = NULL, rc = 0;

	if (!count)
		goto nomem;
	/* First pass: how many sockets each listener gets. */
	for (size_t i = 0; i < n; i++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		bool used = false;

		if (!is_listener(fds[i]) || getsockname(fds[i], (struct sockaddr *)&ss, &sl) < 0) {
			close(fds[i]);
			fds[i] = -1;
			continue;
		}
		for (size_t j = 0; j < nl && !used; j++)
			if (same_addr(&ss, &cfg->listeners[j].addr)) {
				count[j]++;
				used = true;
			}
		if (!used) { /* a listener the new config dropped */
			close(fds[i]);
			fds[i] = -1;
		}
	}
	for (size_t j = 0; j < nl; j++) {
		if (!count[j])
			continue;
		if (k && count[j] != k) {
			snprintf(err, errlen,
				 "takeover: listener %s came with %zu sockets, another with %zu",
				 cfg->listeners[j].name, count[j], k);
			rc = -EPROTO;
			goto fail;
		}
		k = count[j];
	}
	if (!k) {
		snprintf(err, errlen,
			 "takeover: none of the sockets handed over is a listener "
			 "of this config");
		rc = -ENOENT;
		goto fail;
	}
	matrix = malloc(k * (nl ? nl : 1) * sizeof(*matrix));
	if (!matrix)
		goto nomem;
	for (size_t i = 0; i < k * nl; i++)
		matrix[i] = -1;
	/* Second pass: deal them out, worker by worker. */
	memset(count, 0, nl * sizeof(*count));
	for (size_t i = 0; i < n; i++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);

		if (fds[i] < 0 || getsockname(fds[i], (struct sockaddr *)&ss, &sl) < 0)
			continue;
		for (size_t j = 0; j < nl; j++)
			if (same_addr(&ss, &cfg->listeners[j].addr)) {
				matrix[count[j]++ * nl + j] = fds[i];
				fds[i] = -1;
				break;
			}
	}
	free(count);
	*matrixp = matrix;
	return (int)k;
nomem:
	snprintf(err, errlen, "takeover: out of memory");
	rc = -ENOMEM;
fail:
	for (size_t i = 0; i < n; i++)
		if (fds[i] >= 0) {
			close(fds[i]);
			fds[i] = -1;
		}
	free(count);
	free(matrix);
	return rc;
}
