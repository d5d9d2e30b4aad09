// SPDX-License-Identifier: GPL-2.0-only
#include "config.h"
#include "addr.h"
#include "cfgfile.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int l7_parse_hostport(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[LB_ADDR_STRLEN], portbuf[8];
	struct lb_addr a;
	int port;

	memset(ss, 0, sizeof(*ss));
	if (lb_hostport_split(s, strlen(s), host, sizeof(host), portbuf, sizeof(portbuf)))
		return -EINVAL;
	port = lb_port_parse(portbuf);
	if (port < 0 || lb_addr_parse(host, &a))
		return -EINVAL;
	if (a.family == 4) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		memcpy(&sin->sin_addr, a.bytes, 4);
		*len = sizeof(*sin);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		memcpy(&sin6->sin6_addr, a.bytes, 16);
		*len = sizeof(*sin6);
	}
	return 0;
}

static int parse_listeners(config_t *cf, struct l7_config *c, const char *file, char **err)
{
	config_setting_t *list = config_lookup(cf, "listeners");
	int n;

	if (!list || !config_setting_is_list(list) || config_setting_length(list) == 0)
		return cfg_fail(
		    err, file, list ? list : config_root_setting(cf),
		    "\"listeners\" must be a non-empty list ( { address = ...; }, ... )");
	n = config_setting_length(list);
	c->listeners = calloc(n, sizeof(*c->listeners));
	if (!c->listeners)
		return -ENOMEM;
	for (int i = 0; i < n; i++) {
		config_setting_t *ls = config_setting_get_elem(list, i);
		struct l7_listener_cfg *l = &c->listeners[i];
		const char *a = NULL;
		int tls = 0;

		if (!config_setting_is_group(ls) ||
		    !config_setting_lookup_string(ls, "address", &a))
			return cfg_fail(err, file, ls, "listener needs address = \"ADDR:PORT\"");
		if (l7_parse_hostport(a, &l->addr, &l->addr_len))
			return cfg_fail(
			    err, file, config_setting_get_member(ls, "address"),
			    "listener address \"%s\": expected ADDR:PORT or [ADDR6]:PORT", a);
		config_setting_lookup_bool(ls, "tls", &tls);
		l->tls = tls;
		snprintf(l->name, sizeof(l->name), "%s", a);
		c->n_listeners++;
	}
	return 0;
}

static int parse_upstream(config_t *cf, struct l7_config *c, const char *file, char **err)
{
	config_setting_t *up = config_lookup(cf, "upstream"), *list;
	int n, rc;

	if (!up || !config_setting_is_group(up))
		return cfg_fail(err, file, up ? up : config_root_setting(cf),
				"missing group \"upstream\" { backends = [...]; }");
	list = config_setting_get_member(up, "backends");
	if (!list || (!config_setting_is_array(list) && !config_setting_is_list(list)) ||
	    config_setting_length(list) == 0)
		return cfg_fail(
		    err, file, list ? list : up,
		    "upstream: \"backends\" must be a non-empty array [\"ADDR:PORT\", ...]");
	n = config_setting_length(list);
	c->backends = calloc(n, sizeof(*c->backends));
	if (!c->backends)
		return -ENOMEM;
	for (int i = 0; i < n; i++) {
		config_setting_t *e = config_setting_get_elem(list, i);
		const char *s = config_setting_get_string(e);

		if (!s || l7_parse_hostport(s, &c->backends[i].addr, &c->backends[i].addr_len))
			return cfg_fail(
			    err, file, e,
			    "upstream backend \"%s\": expected ADDR:PORT or [ADDR6]:PORT",
			    s ? s : "(not a string)");
		snprintf(c->backends[i].name, sizeof(c->backends[i].name), "%s", s);
		c->n_backends++;
	}
	if ((rc = cfg_uint(up, "connect_timeout_ms", &c->connect_timeout_ms, 2000, 1, 600000, file,
			   err)) ||
	    (rc = cfg_uint(up, "timeout_ms", &c->upstream_timeout_ms, 60000, 1, 3600000, file,
			   err)) ||
	    (rc = cfg_uint(up, "max_idle_per_backend", &c->max_idle_per_backend, 32, 0, 100000,
			   file, err)))
		return rc;
	return 0;
}

static int parse(config_t *cf, const char *file, struct l7_config *c, char **err)
{
	config_setting_t *root = config_root_setting(cf), *tls;
	bool need_tls = false;
	int rc;

	if ((rc = cfg_str_copy(root, "pop", c->pop, sizeof(c->pop), "pop", false, file, err)) ||
	    (rc = cfg_str_copy(root, "host", c->host, sizeof(c->host), "", true, file, err)) ||
	    (rc = cfg_str_copy(root, "access_log", c->access_log, sizeof(c->access_log), "-", false,
			       file, err)) ||
	    (rc = cfg_uint(root, "workers", &c->workers, 0, 0, 1024, file, err)) ||
	    (rc = cfg_uint(root, "client_timeout_ms", &c->client_timeout_ms, 60000, 1, 3600000,
			   file, err)) ||
	    (rc = parse_listeners(cf, c, file, err)) || (rc = parse_upstream(cf, c, file, err)))
		return rc;
	snprintf(c->served_by, sizeof(c->served_by), "%s/%s", c->pop, c->host);
	for (size_t i = 0; i < c->n_listeners; i++)
		need_tls |= c->listeners[i].tls;
	tls = config_lookup(cf, "tls");
	if (need_tls && !tls)
		return cfg_fail(
		    err, file, root,
		    "a listener has tls = true but there is no tls { certificate; key; }");
	if (tls) {
		if ((rc = cfg_str_copy(tls, "certificate", c->cert_file, sizeof(c->cert_file), "",
				       true, file, err)) ||
		    (rc = cfg_str_copy(tls, "key", c->key_file, sizeof(c->key_file), "", true, file,
				       err)))
			return rc;
	}
	return 0;
}

static int parse_root(config_t *cf, const char *file, void *out, char **err)
{
	struct l7_config *c = out;

	memset(c, 0, sizeof(*c));
	return parse(cf, file, c, err);
}

static int load(const char *path, const char *text, struct l7_config *out, char **err)
{
	int rc;

	memset(out, 0, sizeof(*out));
	rc = cfg_load(path, text, parse_root, out, err);
	if (rc)
		l7_config_free(out);
	return rc;
}

int l7_config_load(const char *path, struct l7_config *out, char **err)
{
	return load(path, NULL, out, err);
}

int l7_config_parse(const char *text, const char *name, struct l7_config *out, char **err)
{
	return load(name, text, out, err);
}

void l7_config_free(struct l7_config *c)
{
	free(c->listeners);
	free(c->backends);
	memset(c, 0, sizeof(*c));
}
