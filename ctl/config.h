/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * config.h - lbd's configuration file (libconfig syntax), parsed into a
 * fresh struct lbd_config that the caller applies only if it is complete
 * and valid: a bad file never touches the running state.
 * docs/configuration.md is the reference.
 */
#ifndef PORTICO_LBD_CONFIG_H
#define PORTICO_LBD_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "l4lb.h"

enum lbd_role { LBD_ROLE_L4LB, LBD_ROLE_L7 };

struct lbd_real_cfg {
	struct lb_addr addr;
	uint32_t weight;
};

struct lbd_vip_cfg {
	struct l4lb_vip_key key;
	struct lbd_real_cfg *reals;
	size_t n_reals;
};

struct lbd_config {
	enum lbd_role role;
	char pop[64];
	char host[64];
	char interface[16];
	char admin_socket[108];
	int xdp_generic; /* 1: generic (skb) XDP instead of native */
	uint32_t ring_size;
	uint32_t hash_seed;
	uint32_t conn_max;
	struct lbd_vip_cfg *vips; /* role l4lb */
	size_t n_vips;
	struct lb_addr *vip_addrs; /* role l7: addresses to serve on lo */
	size_t n_vip_addrs;
};

#define LBD_WEIGHT_MAX 10000

/*
 * Parse the file at path into *out (zeroed first). Returns 0, or -EINVAL
 * (also for I/O errors) with a malloc'd message "path:line: reason" in
 * *err that the caller frees. On error *out holds nothing to free.
 */
int lbd_config_load(const char *path, struct lbd_config *out, char **err);

/* Same, from a string; name is used in messages. */
int lbd_config_parse(const char *text, const char *name, struct lbd_config *out, char **err);

/* Free what a successful load allocated. */
void lbd_config_free(struct lbd_config *cfg);

#endif
