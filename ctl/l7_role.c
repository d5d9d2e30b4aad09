// SPDX-License-Identifier: GPL-2.0-only
/*
 * l7_role.c - lbd on an L7 host: attach the decap program (tc ingress) to
 * the interface the encapsulated traffic arrives on, and keep the VIPs on
 * lo so the proxy can listen on them and reply from them (DSR).
 *
 * Host settings the role relies on but does not change (they are the
 * operator's, see docs/operations.md): arp_ignore=1 and arp_announce=2 so
 * the host never answers ARP for a VIP, rp_filter 0 or 2.
 */
#include "decap.skel.h"
#include "lbd.h"
#include "log.h"
#include "netlink.h"

#include <bpf/libbpf.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define LO_IFINDEX 1

struct l7_state {
	struct decap_bpf *skel;
	bool hook_created; /* we created clsact: remove it on stop */
	struct bpf_tc_hook hook;
	struct bpf_tc_opts opts;
	int ncpus;
};

static int lo_sync(const struct lbd_config *cur, const struct lbd_config *next)
{
	char a[LB_ADDR_STRLEN];
	int rc;

	for (size_t i = 0; cur && i < cur->n_vip_addrs; i++) {
		bool keep = false;

		for (size_t j = 0; next && j < next->n_vip_addrs; j++)
			keep |= lb_addr_equal(&cur->vip_addrs[i], &next->vip_addrs[j]);
		if (!keep && (rc = lb_nl_addr_del(LO_IFINDEX, &cur->vip_addrs[i])))
			log_warn("removing VIP %s from lo: %s",
				 lb_addr_str(&cur->vip_addrs[i], a, sizeof(a)), strerror(-rc));
	}
	for (size_t j = 0; next && j < next->n_vip_addrs; j++) {
		rc = lb_nl_addr_add(LO_IFINDEX, &next->vip_addrs[j]);
		if (rc) {
			log_err("adding VIP %s to lo: %s",
				lb_addr_str(&next->vip_addrs[j], a, sizeof(a)), strerror(-rc));
			return rc;
		}
	}
	return 0;
}

static int l7_start(struct lbd *d)
{
	struct l7_state *s = calloc(1, sizeof(*s));
	int rc;

	if (!s)
		return -ENOMEM;
	d->role_state = s;
	s->ncpus = libbpf_num_possible_cpus();
	s->skel = decap_bpf__open_and_load();
	if (!s->skel) {
		rc = -errno;
		log_err("loading the decap program: %s", strerror(-rc));
		return rc;
	}
	s->hook = (struct bpf_tc_hook){
	    .sz = sizeof(s->hook), .ifindex = d->ifindex, .attach_point = BPF_TC_INGRESS};
	rc = bpf_tc_hook_create(&s->hook);
	if (rc && rc != -EEXIST) {
		log_err("creating the clsact qdisc on %s: %s", d->cfg.interface, strerror(-rc));
		return rc;
	}
	s->hook_created = rc == 0;
	s->opts = (struct bpf_tc_opts){.sz = sizeof(s->opts),
				       .handle = 0x1c7,
				       .priority = 1,
				       .prog_fd = bpf_program__fd(s->skel->progs.lb_decap)};
	rc = bpf_tc_attach(&s->hook, &s->opts);
	if (rc) {
		log_err("attaching decap to %s ingress: %s", d->cfg.interface, strerror(-rc));
		return rc;
	}
	rc = lo_sync(NULL, &d->cfg);
	if (rc)
		return rc;
	log_info("decap attached to %s ingress, %zu VIP addresses on lo", d->cfg.interface,
		 d->cfg.n_vip_addrs);
	return 0;
}

static int l7_apply(struct lbd *d, struct lbd_config *next, char **err)
{
	if (strcmp(next->interface, d->cfg.interface)) {
		if (asprintf(err, "%s: interface needs a restart", d->config_path) < 0)
			*err = NULL;
		return -EINVAL;
	}
	return lo_sync(&d->cfg, next);
}

static void l7_stop(struct lbd *d, bool teardown)
{
	struct l7_state *s = d->role_state;

	(void)teardown;
	if (!s)
		return;
	lo_sync(&d->cfg, NULL);
	if (s->opts.prog_fd) {
		s->opts.prog_fd = 0;
		s->opts.prog_id = 0;
		s->opts.flags = 0;
		bpf_tc_detach(&s->hook, &s->opts);
	}
	if (s->hook_created)
		bpf_tc_hook_destroy(&s->hook);
	decap_bpf__destroy(s->skel);
	free(s);
	d->role_state = NULL;
}

static const char *const decap_names[LB_DCNT_MAX] = {
    [LB_DCNT_RX] = "rx",
    [LB_DCNT_DECAP_IPIP] = "decap_ipip",
    [LB_DCNT_DECAP_IP6IP6] = "decap_ip6ip6",
    [LB_DCNT_PASS] = "pass",
    [LB_DCNT_DROP_MALFORMED] = "drop_malformed",
};

static int api_stats(void *ctx, const struct admin_req *req, json_t **out)
{
	struct lbd *d = ctx;
	struct l7_state *s = d->role_state;
	json_t *global = json_object();

	(void)req;
	for (uint32_t i = 0; i < LB_DCNT_MAX; i++) {
		struct lb_counter vals[s->ncpus], sum = {0};

		if (bpf_map__lookup_elem(s->skel->maps.decap_counters, &i, sizeof(i), vals,
					 sizeof(vals), 0))
			continue;
		for (int c = 0; c < s->ncpus; c++) {
			sum.packets += vals[c].packets;
			sum.bytes += vals[c].bytes;
		}
		json_object_set_new(global, decap_names[i], lbd_counter_json(&sum));
	}
	*out = json_pack("{s:s,s:s,s:o}", "role", "l7", "host", d->cfg.host, "global", global);
	return 200;
}

static const struct admin_route l7_routes[] = {
    {"GET", "/v1/status", lbd_api_status},
    {"POST", "/v1/reload", lbd_api_reload},
    {"GET", "/v1/stats", api_stats},
    {NULL, NULL, NULL},
};

const struct lbd_role_ops lbd_l7_role = {
    .name = "l7",
    .start = l7_start,
    .apply = l7_apply,
    .stop = l7_stop,
    .routes = l7_routes,
};
