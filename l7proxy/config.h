/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * config.h - l7proxy's configuration file (libconfig syntax). Parsed whole
 * into a fresh struct before anything uses it; errors name file, line and
 * reason. docs/configuration.md is the reference.
 */
#ifndef PORTICO_L7_CONFIG_H
#define PORTICO_L7_CONFIG_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct l7_listener_cfg {
	struct sockaddr_storage addr;
	socklen_t addr_len;
	bool tls;
	char name[64]; /* "0.0.0.0:443" for logs */
};

struct l7_backend_cfg {
	struct sockaddr_storage addr;
	socklen_t addr_len;
	char name[64]; /* "10.0.5.2:8080" */
};

struct l7_config {
	char pop[64];
	char host[64];
	char served_by[130];  /* "pop/host", the X-Served-By value */
	unsigned workers;     /* 0 = one per online CPU */
	char access_log[256]; /* path, "-" for stderr, "" for none */
	char cert_file[256];
	char key_file[256];
	struct l7_listener_cfg *listeners;
	size_t n_listeners;
	struct l7_backend_cfg *backends;
	size_t n_backends;
	uint32_t connect_timeout_ms;
	uint32_t upstream_timeout_ms; /* read/write inactivity toward a backend */
	uint32_t client_timeout_ms;   /* head read and keepalive idle */
	uint32_t max_idle_per_backend;
};

/* Parse path into *out. 0, or -EINVAL with a malloc'd "file:line: reason"
 * in *err (caller frees). Nothing to free in *out on error. */
int l7_config_load(const char *path, struct l7_config *out, char **err);
int l7_config_parse(const char *text, const char *name, struct l7_config *out, char **err);
void l7_config_free(struct l7_config *c);

/*
 * Parse "ADDR:PORT" / "[ADDR6]:PORT" into a sockaddr. 0 or -EINVAL.
 */
int l7_parse_hostport(const char *s, struct sockaddr_storage *ss, socklen_t *len);

#endif
