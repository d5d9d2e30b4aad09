// SPDX-License-Identifier: GPL-2.0-only
/*
 * lbd - the PoP control daemon. Reads its config, brings up its role
 * (l4lb or l7), serves the admin API on a Unix socket (and GET /metrics
 * on a TCP address if metrics_listen says so) and reloads on
 * SIGHUP (or POST /v1/reload). SIGINT/SIGTERM stop lbd: an l4lb with a
 * pin_dir leaves its pinned dataplane forwarding (and its BGP routes held
 * by graceful restart) for the next lbd to adopt; without one, and on POST
 * /v1/shutdown, everything is torn down.
 */
#include "lbd.h"
#include "list.h"
#include "log.h"
#include "sdnotify.h"
#include "netlink.h"

#include <errno.h>
#include <getopt.h>
#include <sys/epoll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

static void usage(FILE *f)
{
	fprintf(f, "usage: lbd [-c CONFIG] [-v] [--check]\n"
		   "  -c, --config FILE  config file (default /etc/portico/lbd.conf)\n"
		   "      --check        validate the config and exit\n"
		   "  -v, --verbose      debug logging\n");
}

/* What a scraper reaches over TCP (metrics_listen): the metrics only,
 * since TCP has no file permissions to guard the rest of the API. */
static const struct admin_route metrics_routes[] = {
    {"GET", "/metrics", lbd_api_metrics},
    {NULL, NULL, NULL},
};

static void on_tick(struct loop_timer *t)
{
	struct lbd *d = container_of(t, struct lbd, tick);

	d->role->tick(d);
	d->last_tick_ms = loop_clock_ms();
	loop_timer_in(&d->loop, &d->tick, on_tick, LBD_TICK_MS);
}

static void on_signal(struct loop_io *io, uint32_t events)
{
	struct lbd *d = container_of(io, struct lbd, sig_io);
	struct signalfd_siginfo si;
	char *err = NULL;

	(void)events;
	while (read(io->fd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGHUP) {
			lbd_reload(d, &err);
			free(err);
			err = NULL;
			continue;
		}
		log_info("signal %u: shutting down", si.ssi_signo);
		loop_stop(&d->loop);
		return;
	}
}

/* systemd's watchdog: fed from the loop itself, so a loop that stopped
 * turning (a handler stuck) stops feeding it. */
static struct loop_timer watchdog;
static uint64_t watchdog_ms;
static struct loop *watchdog_loop;

static void watchdog_tick(struct loop_timer *t)
{
	sd_notifyf("WATCHDOG=1");
	loop_timer_in(watchdog_loop, t, watchdog_tick, watchdog_ms / 2);
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
	struct admin_server *metrics = NULL;
	int c, rc;
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

	if ((rc = loop_init(&d.loop))) {
		log_err("event loop: %s", strerror(-rc));
		rc = 1;
		goto out_cfg;
	}
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	d.sig_io = (struct loop_io){.fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK),
				    .fn = on_signal};
	if (d.sig_io.fd < 0 || loop_io_watch(&d.loop, &d.sig_io, EPOLLIN)) {
		log_err("signalfd: %s", strerror(errno));
		rc = 1;
		goto out_loop;
	}

	rc = d.role->start(&d);
	if (rc) {
		rc = 1;
		goto out_role;
	}
	d.admin = admin_server_new(&d.loop, d.cfg.admin_socket, d.role->routes, &d);
	if (!d.admin) {
		log_err("admin socket %s: %s", d.cfg.admin_socket, strerror(errno));
		rc = 1;
		goto out_role;
	}
	if (d.cfg.metrics_listen[0]) {
		metrics = admin_server_new_tcp(&d.loop, d.cfg.metrics_listen, metrics_routes, &d);
		if (!metrics) {
			log_err("metrics_listen %s: %s", d.cfg.metrics_listen, strerror(errno));
			rc = 1;
			goto out_admin;
		}
		log_info("metrics on http://%s/metrics", d.cfg.metrics_listen);
	}
	if (d.role->tick)
		loop_timer_in(&d.loop, &d.tick, on_tick, LBD_TICK_MS);
	log_info("role %s up, admin API on %s", d.role->name, d.cfg.admin_socket);
	sd_notifyf("READY=1\nSTATUS=role %s up", d.role->name);
	watchdog_loop = &d.loop;
	watchdog_ms = sd_watchdog_ms();
	if (watchdog_ms)
		loop_timer_in(&d.loop, &watchdog, watchdog_tick, watchdog_ms / 2);
	loop_run(&d.loop);
	sd_notifyf("STOPPING=1");
	loop_timer_cancel(&d.loop, &watchdog);
	rc = 0;
	admin_server_free(metrics);
out_admin:
	admin_server_free(d.admin);
out_role:
	loop_timer_cancel(&d.loop, &d.tick);
	loop_timer_cancel(&d.loop, &d.quit);
	d.role->stop(&d, d.teardown);
out_loop:
	loop_io_close(&d.loop, &d.sig_io);
	loop_fini(&d.loop);
out_cfg:
	lbd_config_free(&d.cfg);
	return rc;
}
