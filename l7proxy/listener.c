// SPDX-License-Identifier: GPL-2.0-only
/*
 * listener.c - listening sockets, and making sure they are ours alone.
 *
 * Each worker binds its own socket per listener with SO_REUSEPORT and the
 * kernel spreads connections over them. The catch: any process of the
 * same user can join the group and silently take a share of the traffic (a
 * stale proxy did exactly that to a benchmark). So before binding, a probe
 * without SO_REUSEPORT must be able to bind the address (it cannot while
 * anyone listens on it), and after binding the number of listening sockets
 * on the port must be the number of workers.
 */
#include "listener.h"
#include "log.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void set_common(int fd, int family)
{
	int one = 1;

	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	/* The VIP may be added to lo after the proxy starts. */
	if (family == AF_INET)
		setsockopt(fd, IPPROTO_IP, IP_FREEBIND, &one, sizeof(one));
	else
		setsockopt(fd, IPPROTO_IPV6, IPV6_FREEBIND, &one, sizeof(one));
	if (family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
}

int listener_open(const struct l7_listener_cfg *lc)
{
	int fd, one = 1;

	fd = socket(lc->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	set_common(fd, lc->addr.ss_family);
	setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	if (bind(fd, (const struct sockaddr *)&lc->addr, lc->addr_len) < 0 ||
	    listen(fd, 4096) < 0) {
		int e = -errno;

		close(fd);
		return e;
	}
	return fd;
}

static uint16_t port_of(const struct l7_listener_cfg *lc)
{
	return ntohs(lc->addr.ss_family == AF_INET
			 ? ((const struct sockaddr_in *)&lc->addr)->sin_port
			 : ((const struct sockaddr_in6 *)&lc->addr)->sin6_port);
}

/*
 * Inodes of the sockets listening on port (any address of the family's
 * table), from /proc/net/tcp or tcp6. Returns how many (at most max).
 */
static int listening_inodes(int family, uint16_t port, unsigned long *inodes, int max)
{
	FILE *f = fopen(family == AF_INET ? "/proc/net/tcp" : "/proc/net/tcp6", "r");
	char line[512];
	int n = 0;

	if (!f)
		return 0;
	if (!fgets(line, sizeof(line), f)) { /* header */
		fclose(f);
		return 0;
	}
	while (fgets(line, sizeof(line), f)) {
		char local[64];
		unsigned st, lport;
		unsigned long inode;
		char *colon;

		/* sl local rem st tx:rx tr:tm retr uid timeout inode */
		if (sscanf(line, "%*s %63s %*s %x %*s %*s %*s %*s %*s %lu", local, &st, &inode) !=
		    3)
			continue;
		colon = strrchr(local, ':');
		if (!colon || sscanf(colon + 1, "%x", &lport) != 1)
			continue;
		if (st == 0x0A /* TCP_LISTEN */ && lport == port && n < max)
			inodes[n++] = inode;
	}
	fclose(f);
	return n;
}

/* "pid 123 (nginx)" for the process holding socket inode, if visible. */
static void owner_of(unsigned long inode, char *out, size_t len)
{
	char want[64], path[64], link[64], comm[64];
	DIR *proc = opendir("/proc");
	struct dirent *de;

	snprintf(out, len, "another process");
	if (!proc)
		return;
	snprintf(want, sizeof(want), "socket:[%lu]", inode);
	while ((de = readdir(proc))) {
		char *end;
		long pid = strtol(de->d_name, &end, 10);
		DIR *fds;
		struct dirent *fe;

		if (*end || pid <= 0)
			continue;
		snprintf(path, sizeof(path), "/proc/%ld/fd", pid);
		fds = opendir(path);
		if (!fds)
			continue;
		while ((fe = readdir(fds))) {
			char fdpath[400];
			ssize_t k;

			snprintf(fdpath, sizeof(fdpath), "%s/%s", path, fe->d_name);
			k = readlink(fdpath, link, sizeof(link) - 1);
			if (k <= 0)
				continue;
			link[k] = '\0';
			if (strcmp(link, want) == 0) {
				FILE *cf;

				snprintf(path, sizeof(path), "/proc/%ld/comm", pid);
				comm[0] = '\0';
				cf = fopen(path, "r");
				if (cf) {
					if (fgets(comm, sizeof(comm), cf))
						comm[strcspn(comm, "\n")] = '\0';
					fclose(cf);
				}
				snprintf(out, len, "pid %ld (%s)", pid, comm);
				closedir(fds);
				closedir(proc);
				return;
			}
		}
		closedir(fds);
	}
	closedir(proc);
}

int listeners_check_free(const struct l7_config *cfg, char *msg, size_t len)
{
	for (size_t i = 0; i < cfg->n_listeners; i++) {
		const struct l7_listener_cfg *lc = &cfg->listeners[i];
		int fd = socket(lc->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		unsigned long inodes[4];
		char who[128];
		int e;

		if (fd < 0)
			return -errno;
		set_common(fd, lc->addr.ss_family);
		e = bind(fd, (const struct sockaddr *)&lc->addr, lc->addr_len) < 0 ? errno : 0;
		close(fd);
		if (e == 0)
			continue;
		if (e != EADDRINUSE) {
			snprintf(msg, len, "listener %s: %s", lc->name, strerror(e));
			return -e;
		}
		who[0] = '\0';
		if (listening_inodes(lc->addr.ss_family, port_of(lc), inodes, 4) > 0)
			owner_of(inodes[0], who, sizeof(who));
		snprintf(msg, len,
			 "listener %s: the port is already in use by %s; refusing to share it "
			 "(SO_REUSEPORT would hand that process part of the connections)",
			 lc->name, who[0] ? who : "another process");
		return -EADDRINUSE;
	}
	return 0;
}

int listeners_verify(const struct l7_config *cfg, unsigned workers, char *msg, size_t len)
{
	for (size_t i = 0; i < cfg->n_listeners; i++) {
		const struct l7_listener_cfg *lc = &cfg->listeners[i];
		unsigned long inodes[256];
		unsigned same = 0;
		int n = listening_inodes(lc->addr.ss_family, port_of(lc), inodes, 256);

		/* Sockets of other listeners of ours on the same port (another
		 * address) are expected too. */
		for (size_t j = 0; j < cfg->n_listeners; j++)
			if (cfg->listeners[j].addr.ss_family == lc->addr.ss_family &&
			    port_of(&cfg->listeners[j]) == port_of(lc))
				same++;
		if ((unsigned)n > same * workers) {
			snprintf(msg, len,
				 "listener %s: %d sockets listen on port %u, %u expected: "
				 "another process joined the port",
				 lc->name, n, port_of(lc), same * workers);
			return -EADDRINUSE;
		}
	}
	return 0;
}
