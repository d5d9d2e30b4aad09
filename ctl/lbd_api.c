// SPDX-License-Identifier: GPL-2.0-only
/* lbd_api.c - admin handlers and JSON helpers shared by lbd's roles. */
#include "lbd.h"
#include "log.h"

#include <errno.h>
#include <stddef.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

json_t *lbd_counter_json(const struct lb_counter *c)
{
	return json_pack("{s:I,s:I}", "packets", (json_int_t)c->packets, "bytes",
			 (json_int_t)c->bytes);
}

json_t *lbd_vip_json(const struct l4lb_vip_key *k)
{
	char a[LB_ADDR_STRLEN];

	return json_pack("{s:s,s:i,s:s}", "address", lb_addr_str(&k->addr, a, sizeof(a)), "port",
			 (int)k->port, "proto", lb_proto_str(k->proto));
}

int lbd_vip_from_json(json_t *o, struct l4lb_vip_key *k, char *msg, size_t len)
{
	json_t *addr = json_object_get(o, "address"), *port = json_object_get(o, "port");
	json_t *proto = json_object_get(o, "proto");
	int p;

	memset(k, 0, sizeof(*k));
	if (!json_is_object(o)) {
		snprintf(msg, len, "missing vip object {\"address\", \"port\", \"proto\"}");
		return -EINVAL;
	}
	if (!json_is_string(addr) || lb_addr_parse(json_string_value(addr), &k->addr)) {
		snprintf(msg, len, "vip address \"%s\": not an IPv4 or IPv6 address",
			 json_is_string(addr) ? json_string_value(addr) : "(missing)");
		return -EINVAL;
	}
	if (!json_is_integer(port) || json_integer_value(port) < 1 ||
	    json_integer_value(port) > 65535) {
		snprintf(msg, len, "vip port must be an integer in [1, 65535]");
		return -EINVAL;
	}
	p = proto ? lb_proto_parse(json_string_value(proto)) : IPPROTO_TCP;
	if (p < 0) {
		snprintf(msg, len, "vip proto must be \"tcp\" or \"udp\"");
		return -EINVAL;
	}
	k->port = (uint16_t)json_integer_value(port);
	k->proto = (uint8_t)p;
	return 0;
}

int lbd_api_status(void *ctx, const struct admin_req *req, json_t **out)
{
	struct lbd *d = ctx;

	(void)req;
	*out = json_pack("{s:s,s:s,s:s,s:s,s:s,s:I}", "role", d->role->name, "pop", d->cfg.pop,
			 "host", d->cfg.host, "interface", d->cfg.interface, "config",
			 d->config_path, "last_tick_ms_ago",
			 d->last_tick_ms ? (json_int_t)(loop_clock_ms() - d->last_tick_ms)
					 : (json_int_t)-1);
	return 200;
}

int lbd_api_reload(void *ctx, const struct admin_req *req, json_t **out)
{
	struct lbd *d = ctx;
	char *err = NULL;
	int status, rc;

	(void)req;
	if ((rc = lbd_reload(d, &err))) {
		status = rc == -EIO ? admin_error(out, 500, "%s", err ? err : "reload failed")
				    : admin_error(out, 400, "%s; running config unchanged",
						  err ? err : "reload failed");
		free(err);
		return status;
	}
	*out = json_pack("{s:s}", "result", "reloaded");
	return 200;
}

static void on_quit(struct loop_timer *t)
{
	struct lbd *d = (struct lbd *)((char *)t - offsetof(struct lbd, quit));

	loop_stop(&d->loop);
}

int lbd_api_shutdown(void *ctx, const struct admin_req *req, json_t **out)
{
	struct lbd *d = ctx;
	uint32_t linger = 0;

	(void)req;
	log_info("api: shutdown: closing BGP sessions and removing the dataplane");
	d->teardown = true;
	if (d->role->shutdown_begin)
		linger = d->role->shutdown_begin(d);
	/* Let the reply leave, and the peers move their traffic, before the
	 * loop stops and the dataplane goes. */
	loop_timer_in(&d->loop, &d->quit, on_quit, linger > 50 ? linger : 50);
	*out = json_pack("{s:s}", "result", "shutting down");
	return 200;
}

int lbd_reload(struct lbd *d, char **err)
{
	struct lbd_config next;
	int rc;

	rc = lbd_config_load(d->config_path, &next, err);
	if (rc) {
		log_err("reload: %s; running config unchanged", *err ? *err : "?");
		return rc;
	}
	if (next.role != d->cfg.role) {
		lbd_config_free(&next);
		if (asprintf(err, "%s: role cannot change without a restart", d->config_path) < 0)
			*err = NULL;
		log_err("reload: %s", *err ? *err : "role changed");
		return -EINVAL;
	}
	rc = d->role->apply(d, &next, err);
	if (rc) {
		log_err("reload: %s", *err ? *err : strerror(-rc));
		lbd_config_free(&next);
		return rc;
	}
	lbd_config_free(&d->cfg);
	d->cfg = next;
	log_info("reload: %s applied", d->config_path);
	return 0;
}
