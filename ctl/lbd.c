// SPDX-License-Identifier: GPL-2.0-only
/*
 * lbd - the PoP control daemon. Reads its config, brings up its role
 * (l4lb or l7), serves the admin API on a Unix socket and reloads on
 * SIGHUP (or POST /v1/reload); SIGINT/SIGTERM tear everything down.
 */
#include "lbd.h"
#include "log.h"
#include "netlink.h"

#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#define TICK_MS 5000

static void usage(FILE *f)
{
	fprintf(f, "usage: lbd [-c CONFIG] [-v] [--check]\n"
		   "  -c, --config FILE  config file (default /etc/portico/lbd.conf)\n"
		   "      --check        validate the config and exit\n"
		   "  -v, --verbose      debug logging\n");
}

static int mkdir_parent(const char *path)
{
	char dir[108];
	char *slash;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return 0;
	*slash = '\0';
	if (mkdir(dir, 0755) && errno != EEXIST)
		return -errno;
	return 0;
}

static int run(struct lbd *d, int admin_fd, int sig_fd)
{
	struct pollfd pfd[2] = {{.fd = admin_fd, .events = POLLIN},
				{.fd = sig_fd, .events = POLLIN}};

	for (;;) {
		int n = poll(pfd, 2, TICK_MS);

		if (n < 0 && errno != EINTR)
			return -errno;
		if (n == 0 && d->role->tick)
			d->role->tick(d);
		if (pfd[1].revents & POLLIN) {
			struct signalfd_siginfo si;
			char *err = NULL;

			if (read(sig_fd, &si, sizeof(si)) != sizeof(si))
				continue;
			if (si.ssi_signo != SIGHUP) {
				log_info("signal %u: shutting down", si.ssi_signo);
				return 0;
			}
			lbd_reload(d, &err);
			free(err);
		}
		if (pfd[0].revents & POLLIN)
			admin_serve_one(admin_fd, d->role->routes, d);
	}
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
	struct lbd d = {.config_path = "/etc/portico/lbd.conf"};
	int c, rc, admin_fd = -1, sig_fd = -1;
	bool check = false;
	char *err = NULL;
	sigset_t mask;

	log_init("lbd", LOG_LVL_INFO);
	while ((c = getopt_long(argc, argv, "c:vh", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			d.config_path = optarg;
			break;
		case 'C':
			check = true;
			break;
		case 'v':
			log_init("lbd", LOG_LVL_DEBUG);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (lbd_config_load(d.config_path, &d.cfg, &err)) {
		fprintf(stderr, "lbd: %s\n", err ? err : "cannot load config");
		free(err);
		return 1;
	}
	if (check) {
		printf("%s: ok\n", d.config_path);
		lbd_config_free(&d.cfg);
		return 0;
	}
	d.role = d.cfg.role == LBD_ROLE_L4LB ? &lbd_l4_role : &lbd_l7_role;
	d.ifindex = lb_nl_ifindex(d.cfg.interface);
	if (d.ifindex < 0) {
		log_err("interface %s: %s", d.cfg.interface, strerror(-d.ifindex));
		rc = 1;
		goto out_cfg;
	}

	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	sig_fd = signalfd(-1, &mask, SFD_CLOEXEC);

	rc = d.role->start(&d);
	if (rc) {
		rc = 1;
		goto out_role;
	}
	mkdir_parent(d.cfg.admin_socket);
	admin_fd = admin_listen(d.cfg.admin_socket);
	if (admin_fd < 0) {
		log_err("admin socket %s: %s", d.cfg.admin_socket, strerror(-admin_fd));
		rc = 1;
		goto out_role;
	}
	log_info("role %s up, admin API on %s", d.role->name, d.cfg.admin_socket);
	rc = run(&d, admin_fd, sig_fd) ? 1 : 0;

	close(admin_fd);
	unlink(d.cfg.admin_socket);
out_role:
	d.role->stop(&d);
	if (sig_fd >= 0)
		close(sig_fd);
out_cfg:
	lbd_config_free(&d.cfg);
	return rc;
}
