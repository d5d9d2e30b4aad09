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
#include "upstream_pull.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#define LO_IFINDEX 1

struct l7_state {
	struct decap_bpf *skel;
	bool hook_created; /* we created clsact: remove it on stop */
	struct bpf_tc_hook hook;
	struct bpf_tc_opts opts;
	int ncpus;
	struct upull *pull; /* the "upstreams" group: backend sets for the proxy */
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

/* Start pulling backend sets if the config asks for it. 0 or -errno. */
static int pull_start(struct lbd *d, struct l7_state *s)
{
	char *err = NULL;

	if (!d->cfg.upstreams.enabled)
		return 0;
	s->pull = upull_new(&d->loop, &d->cfg.upstreams, &err);
	if (!s->pull) {
		int rc = -errno;

		log_err("%s", err ? err : strerror(-rc));
		free(err);
		return rc;
	}
	upull_start(s->pull);
	return 0;
}

/* --- what the decap trusts (lb_abi.h, struct lb_decap_key) ------------------- */

static struct lb_decap_key decap_key(const struct lb_addr *a)
{
	struct lb_decap_key k = {.family = a->family};

	memcpy(k.addr, a->bytes, sizeof(k.addr));
	return k;
}

/*
 * Make map fd hold exactly the n keys: add the new ones first, then remove
 * the ones that left, so a key in both the old and the new set is never
 * missing for a moment (a packet from a kept LB is never dropped). 0 or
 * -errno.
 */
static int keys_sync(int fd, const struct lb_decap_key *keys, size_t n)
{
	struct lb_decap_key cur, next;
	const __u8 one = 1;
	bool more;

	for (size_t i = 0; i < n; i++)
		if (bpf_map_update_elem(fd, &keys[i], &one, BPF_ANY))
			return -errno;
	more = bpf_map_get_next_key(fd, NULL, &cur) == 0;
	while (more) {
		bool keep = false;

		more = bpf_map_get_next_key(fd, &cur, &next) == 0;
		for (size_t i = 0; i < n && !keep; i++)
			keep = memcmp(&keys[i], &cur, sizeof(cur)) == 0;
		if (!keep)
			bpf_map_delete_elem(fd, &cur);
		cur = next;
	}
	return 0;
}

/* This host's addresses on the interface the encapsulated packets come in
 * on: the outer destinations the LBs use. At most max; returns how many. */
static size_t local_keys(const char *ifname, struct lb_decap_key *keys, size_t max)
{
	struct ifaddrs *ifa, *i;
	size_t n = 0;

	if (getifaddrs(&ifa))
		return 0;
	for (i = ifa; i && n < max; i = i->ifa_next) {
		struct lb_decap_key k = {0};

		if (!i->ifa_addr || strcmp(i->ifa_name, ifname))
			continue;
		if (i->ifa_addr->sa_family == AF_INET) {
			k.family = LB_AF_INET;
			memcpy(k.addr, &((struct sockaddr_in *)i->ifa_addr)->sin_addr, 4);
		} else if (i->ifa_addr->sa_family == AF_INET6) {
			k.family = LB_AF_INET6;
			memcpy(k.addr, &((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr, 16);
		} else {
			continue;
		}
		keys[n++] = k;
	}
	freeifaddrs(ifa);
	return n;
}

/*
 * Fill the decap's trust maps from cfg: the LBs (outer sources), this
 * host's addresses on the interface (outer destinations, read now: an
 * address added later takes a reload), the VIPs (inner destinations).
 * Without "lbs" any outer source is taken, as before, and a warning says
 * so. 0 or -errno.
 */
static int decap_sync(struct l7_state *s, const struct lbd_config *cfg)
{
	struct lb_decap_key *keys;
	struct lb_decap_cfg dc = {.check_source = cfg->n_lb_addrs > 0,
				  .gue_port = htons((uint16_t)cfg->gue_port)};
	size_t n, max = cfg->n_vip_addrs + cfg->n_lb_addrs + LB_DECAP_LOCAL_MAX;
	__u32 zero = 0;
	int rc = 0;

	keys = calloc(max, sizeof(*keys));
	if (!keys)
		return -ENOMEM;
	for (n = 0; n < cfg->n_lb_addrs; n++)
		keys[n] = decap_key(&cfg->lb_addrs[n]);
	if ((rc = keys_sync(bpf_map__fd(s->skel->maps.decap_lbs), keys, n)))
		goto out;
	for (n = 0; n < cfg->n_vip_addrs && n < LB_DECAP_VIPS_MAX; n++)
		keys[n] = decap_key(&cfg->vip_addrs[n]);
	if ((rc = keys_sync(bpf_map__fd(s->skel->maps.decap_vips), keys, n)))
		goto out;
	n = local_keys(cfg->interface, keys, LB_DECAP_LOCAL_MAX);
	if (!n)
		log_warn("decap: no address on %s: every encapsulated packet will be dropped",
			 cfg->interface);
	if ((rc = keys_sync(bpf_map__fd(s->skel->maps.decap_local), keys, n)))
		goto out;
	if (bpf_map_update_elem(bpf_map__fd(s->skel->maps.decap_cfg), &zero, &dc, BPF_ANY)) {
		rc = -errno;
		goto out;
	}
	if (!cfg->n_lb_addrs)
		log_warn("decap: no \"lbs\" in the config: encapsulated packets are taken from any "
			 "source (list the PoP's LBs to close that relay)");
out:
	free(keys);
	if (rc)
		log_err("decap: filling its maps: %s", strerror(-rc));
	return rc;
}

/* Compared field by field: a changed group restarts the poller. */
static bool pull_cfg_equal(const struct lbd_upstreams_cfg *a, const struct lbd_upstreams_cfg *b)
{
	return a->enabled == b->enabled && !strcmp(a->url, b->url) &&
	       a->interval_ms == b->interval_ms && a->timeout_ms == b->timeout_ms &&
	       !strcmp(a->proxy_socket, b->proxy_socket) && !strcmp(a->ca_file, b->ca_file);
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
	/* Trust first: attached empty, it would drop every packet. */
	rc = decap_sync(s, &d->cfg);
	if (rc)
		return rc;
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
	return pull_start(d, s);
}

static int l7_apply(struct lbd *d, struct lbd_config *next, char **err)
{
	struct l7_state *s = d->role_state;
	struct upull *pull = NULL;
	bool repull = !pull_cfg_equal(&d->cfg.upstreams, &next->upstreams);
	int rc;

	if (strcmp(next->interface, d->cfg.interface)) {
		if (asprintf(err, "%s: interface needs a restart", d->config_path) < 0)
			*err = NULL;
		return -EINVAL;
	}
	/* The new poller is made (its CA loaded) before anything changes,
	 * so a bad ca_file leaves the running state alone. It starts from
	 * nothing, harmlessly: it asks the proxy its versions before sending
	 * any set. */
	if (repull && next->upstreams.enabled &&
	    !(pull = upull_new(&d->loop, &next->upstreams, err)))
		return -errno;
	rc = lo_sync(&d->cfg, next);
	if (!rc)
		rc = decap_sync(s, next);
	if (rc) {
		upull_free(pull);
		return rc;
	}
	if (repull) {
		upull_free(s->pull);
		s->pull = pull;
		if (pull)
			upull_start(pull);
		else
			log_info("upstreams: no longer pulling");
	}
	return 0;
}

static void l7_stop(struct lbd *d, bool teardown)
{
	struct l7_state *s = d->role_state;

	(void)teardown;
	if (!s)
		return;
	upull_free(s->pull);
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
    [LB_DCNT_DROP_SOURCE] = "drop_untrusted_source",
    [LB_DCNT_DROP_DEST] = "drop_not_local",
    [LB_DCNT_DROP_INNER] = "drop_not_vip",
    [LB_DCNT_DECAP_GUE] = "decap_gue",
    [LB_DCNT_DECAP_MIXED] = "decap_mixed",
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

int lbd_l7_decap_stats(struct lbd *d, struct lb_counter out[LB_DCNT_MAX])
{
	struct l7_state *s = d->role_state;

	for (uint32_t i = 0; i < LB_DCNT_MAX; i++) {
		struct lb_counter vals[s->ncpus];
		int rc = bpf_map__lookup_elem(s->skel->maps.decap_counters, &i, sizeof(i), vals,
					      sizeof(vals), 0);

		if (rc)
			return rc;
		out[i] = (struct lb_counter){0};
		for (int c = 0; c < s->ncpus; c++) {
			out[i].packets += vals[c].packets;
			out[i].bytes += vals[c].bytes;
		}
	}
	return 0;
}

/* GET /v1/upstreams: the pulled backend sets (upstream_pull.h). */
static int api_upstreams(void *ctx, const struct admin_req *req, json_t **out)
{
	struct lbd *d = ctx;
	struct l7_state *s = d->role_state;

	(void)req;
	if (!s->pull)
		return admin_error(out, 404,
				   "not pulling backend sets: no \"upstreams\" group in %s",
				   d->config_path);
	*out = upull_json(s->pull);
	if (!*out)
		return admin_error(out, 500, "cannot render the pull state (out of memory?)");
	return 200;
}

static const struct admin_route l7_routes[] = {
    {"GET", "/v1/status", lbd_api_status},   {"GET", "/metrics", lbd_api_metrics},
    {"POST", "/v1/reload", lbd_api_reload},  {"GET", "/v1/stats", api_stats},
    {"GET", "/v1/upstreams", api_upstreams}, {NULL, NULL, NULL},
};

const struct lbd_role_ops lbd_l7_role = {
    .name = "l7",
    .start = l7_start,
    .apply = l7_apply,
    .stop = l7_stop,
    .routes = l7_routes,
};
