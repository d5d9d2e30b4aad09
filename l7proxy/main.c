// SPDX-License-Identifier: GPL-2.0-only
/*
 * l7proxy - the TLS-terminating HTTP proxy of the L7 hosts.
 *
 * main() loads the config, builds the TLS context, starts one worker per
 * core and waits for SIGINT/SIGTERM. Everything else is in the workers.
 */
#include "log.h"
#include "tls.h"
#include "worker.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void usage(FILE *f)
{
	fprintf(f, "usage: l7proxy [-c CONFIG] [--check] [-v]\n"
		   "  -c, --config FILE  config file (default /etc/portico/l7proxy.conf)\n"
		   "      --check        validate the config (and load the certificate), exit\n"
		   "  -v, --verbose      debug logging\n");
}

static int open_log(const char *path)
{
	if (!path[0])
		return -1;
	if (strcmp(path, "-") == 0)
		return dup(STDERR_FILENO);
	return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
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
	const char *path = "/etc/portico/l7proxy.conf";
	struct l7_config cfg;
	struct worker *workers = NULL;
	pthread_t *threads = NULL;
	SSL_CTX *ctx = NULL;
	unsigned n = 0, started = 0;
	int c, sig, log_fd = -1, rc = 1;
	bool check = false;
	char *err = NULL;
	sigset_t mask;

	log_init("l7proxy", LOG_LVL_INFO);
	while ((c = getopt_long(argc, argv, "c:vh", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			path = optarg;
			break;
		case 'C':
			check = true;
			break;
		case 'v':
			log_init("l7proxy", LOG_LVL_DEBUG);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (l7_config_load(path, &cfg, &err)) {
		fprintf(stderr, "l7proxy: %s\n", err ? err : "cannot load config");
		free(err);
		return 1;
	}
	if (cfg.cert_file[0]) {
		ctx = l7_tls_ctx_new(cfg.cert_file, cfg.key_file, &err);
		if (!ctx) {
			fprintf(stderr, "l7proxy: %s\n", err ? err : "TLS setup failed");
			free(err);
			goto out_cfg;
		}
	}
	if (check) {
		printf("%s: ok\n", path);
		rc = 0;
		goto out_ctx;
	}
	log_fd = open_log(cfg.access_log);
	if (cfg.access_log[0] && log_fd < 0) {
		log_err("access log %s: %s", cfg.access_log, strerror(errno));
		goto out_ctx;
	}

	/* Workers inherit this mask: only the main thread takes signals. */
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);

	n = cfg.workers ? cfg.workers : (unsigned)sysconf(_SC_NPROCESSORS_ONLN);
	workers = calloc(n, sizeof(*workers));
	threads = calloc(n, sizeof(*threads));
	if (!workers || !threads)
		goto out_workers;
	for (unsigned i = 0; i < n; i++) {
		if (worker_init(&workers[i], (int)i, &cfg, ctx, log_fd)) {
			worker_fini(&workers[i]);
			goto out_workers;
		}
		if (pthread_create(&threads[i], NULL, worker_run, &workers[i])) {
			worker_fini(&workers[i]);
			goto out_workers;
		}
		started++;
	}
	log_info("%u workers serving %zu listeners for %s, %zu backends", n, cfg.n_listeners,
		 cfg.served_by, cfg.n_backends);
	sigwait(&mask, &sig);
	log_info("signal %d: shutting down", sig);
	rc = 0;
out_workers:
	for (unsigned i = 0; i < started; i++)
		worker_stop(&workers[i]);
	for (unsigned i = 0; i < started; i++) {
		pthread_join(threads[i], NULL);
		worker_fini(&workers[i]);
	}
	free(workers);
	free(threads);
	if (log_fd >= 0)
		close(log_fd);
out_ctx:
	SSL_CTX_free(ctx);
out_cfg:
	l7_config_free(&cfg);
	return rc;
}
