// SPDX-License-Identifier: GPL-2.0-only
/* lbd_api.c - admin handlers and JSON helpers shared by lbd's roles. */
#include "bgp/fsm.h"
#include "bgp/speaker.h"
#include "health.h"
#include "lbd.h"
#include "log.h"
#include "prom.h"
#include "vipspec.h"

#include <errno.h>
#include <stddef.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
	/* The TCP listener is bound once, at start (lbd.c). */
	if (strcmp(next.metrics_listen, d->cfg.metrics_listen)) {
		lbd_config_free(&next);
		if (asprintf(err, "%s: metrics_listen needs a restart", d->config_path) < 0)
			*err = NULL;
		log_err("reload: %s", *err ? *err : "metrics_listen changed");
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

/* --- GET /metrics ------------------------------------------------------------ */

/*
 * The Prometheus page (docs/api.md, "Metrics", lists every family with its
 * labels and cardinality). It reads what /v1/stats, /v1/vips and
 * /v1/bgp/neighbors read, at scrape time; nothing is kept between scrapes.
 * A family's samples must be contiguous, so per-VIP and per-real facts are
 * first gathered in one walk of the VIPs, then written family by family.
 * Cost per scrape: O(VIPs x reals) map lookups, as for /v1/stats.
 */

#define METRICS_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* Wall clock when lbd was loaded (before main), for the start time. */
static double start_time_s;

__attribute__((constructor)) static void note_start_time(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	start_time_s = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/*
 * Global counters of a BPF program, table-driven: each family lists the
 * counters it shows, unlabelled (one) or one per value of its label.
 */
struct counter_family {
	const char *name, *help;
	const char *label; /* NULL: one sample, of c[0] */
	bool bytes;	   /* the byte count, not the packet count */
	struct {
		unsigned id;	   /* index in the program's counter map */
		const char *value; /* the label's value; NULL ends the list */
	} c[10];
};

/* Every LB_CNT_* is shown once (its bytes too where they mean something):
 * a new counter fails this assertion until it has its place here. */
_Static_assert(LB_CNT_MAX == 20, "place the new lb_counter_id in xdp_families");
static const struct counter_family xdp_families[] = {
    {.name = "portico_lbd_xdp_rx_packets_total",
     .help = "Packets the XDP balancer saw.",
     .c = {{LB_CNT_RX}}},
    {.name = "portico_lbd_xdp_rx_bytes_total",
     .help = "Bytes of the packets the XDP balancer saw.",
     .bytes = true,
     .c = {{LB_CNT_RX}}},
    {.name = "portico_lbd_xdp_tx_packets_total",
     .help = "Packets encapsulated and sent toward a real.",
     .c = {{LB_CNT_TX}}},
    {.name = "portico_lbd_xdp_tx_bytes_total",
     .help = "Bytes sent toward reals, outer (encapsulation) headers included.",
     .bytes = true,
     .c = {{LB_CNT_TX}}},
    {.name = "portico_lbd_xdp_dropped_packets_total",
     .help = "Packets the XDP balancer dropped, by reason.",
     .label = "reason",
     .c = {{LB_CNT_DROP_MALFORMED, "malformed"},
	   {LB_CNT_DROP_FRAGMENT, "fragment"},
	   {LB_CNT_DROP_NO_REAL, "no_real"},
	   {LB_CNT_DROP_FIB, "fib"},
	   {LB_CNT_DROP_ENCAP, "encap"},
	   {LB_CNT_DROP_VIP_UNHANDLED, "vip_unhandled"},
	   {LB_CNT_DROP_FRAG_NEEDED, "frag_needed"},
	   {LB_CNT_DROP_ICMP, "icmp"}}},
    {.name = "portico_lbd_xdp_passed_packets_total",
     .help = "Packets the XDP balancer passed to the kernel's stack, by reason.",
     .label = "reason",
     .c = {{LB_CNT_PASS_NON_IP, "non_ip"},
	   {LB_CNT_PASS_NON_VIP, "non_vip"},
	   {LB_CNT_PASS_IPV6_EXT, "ipv6_ext"}}},
    {.name = "portico_lbd_conn_table_lookups_total",
     .help = "Connection-table lookups of packets to a VIP: hit (flow known) or miss (Maglev "
	     "ring; a TCP SYN skips the table and counts here).",
     .label = "result",
     .c = {{LB_CNT_CONN_HIT, "hit"}, {LB_CNT_CONN_MISS, "miss"}}},
    {.name = "portico_lbd_xdp_fib_fallback_packets_total",
     .help = "Packets to a real with no cached next hop, which took a FIB lookup instead (its "
	     "neighbour not resolved yet; a steady rise means the cache is not kept).",
     .c = {{LB_CNT_FIB_FALLBACK}}},
    {.name = "portico_lbd_xdp_icmp_packets_total",
     .help = "ICMP to a VIP handled by the XDP balancer: frag-needed / packet-too-big sent to "
	     "the quoted flow's real, echo requests answered (other ICMP is counted as dropped).",
     .label = "action",
     .c = {{LB_CNT_ICMP_STEERED, "steered"}, {LB_CNT_ICMP_ECHO_REPLY, "echo_reply"}}},
    {.name = "portico_lbd_health_probe_packets_total",
     .help = "Health-check probe packets leaving through the encapsulation (tc egress), by "
	     "result.",
     .label = "result",
     .c = {{LB_CNT_HC_TX, "encapsulated"}, {LB_CNT_HC_DROP, "dropped"}}},
};

_Static_assert(LB_DCNT_MAX == 10, "place the new lb_decap_counter_id in decap_families");
static const struct counter_family decap_families[] = {
    {.name = "portico_lbd_decap_rx_packets_total",
     .help = "Packets the decap program saw (tc ingress).",
     .c = {{LB_DCNT_RX}}},
    {.name = "portico_lbd_decap_rx_bytes_total",
     .help = "Bytes of the packets the decap program saw.",
     .bytes = true,
     .c = {{LB_DCNT_RX}}},
    {.name = "portico_lbd_decap_decapsulated_packets_total",
     .help = "Packets whose outer header was stripped, by encapsulation.",
     .label = "encap",
     .c = {{LB_DCNT_DECAP_IPIP, "ipip"},
	   {LB_DCNT_DECAP_IP6IP6, "ip6ip6"},
	   {LB_DCNT_DECAP_GUE, "gue"},
	   {LB_DCNT_DECAP_MIXED, "mixed"}}},
    {.name = "portico_lbd_decap_decapsulated_bytes_total",
     .help = "Bytes of the packets decapsulated, counted after the outer header is stripped, "
	     "by encapsulation.",
     .label = "encap",
     .bytes = true,
     .c = {{LB_DCNT_DECAP_IPIP, "ipip"},
	   {LB_DCNT_DECAP_IP6IP6, "ip6ip6"},
	   {LB_DCNT_DECAP_GUE, "gue"},
	   {LB_DCNT_DECAP_MIXED, "mixed"}}},
    {.name = "portico_lbd_decap_passed_packets_total",
     .help = "Packets that were not encapsulated, left untouched.",
     .c = {{LB_DCNT_PASS}}},
    {.name = "portico_lbd_decap_dropped_packets_total",
     .help = "Encapsulated packets the decap program dropped, by reason.",
     .label = "reason",
     .c = {{LB_DCNT_DROP_MALFORMED, "malformed"},
	   {LB_DCNT_DROP_SOURCE, "untrusted_source"},
	   {LB_DCNT_DROP_DEST, "not_local"},
	   {LB_DCNT_DROP_INNER, "not_vip"}}},
};

static void write_counter_families(struct prom_buf *b, const struct counter_family *f, size_t n,
				   const struct lb_counter *vals)
{
	for (size_t i = 0; i < n; i++) {
		prom_family(b, f[i].name, PROM_COUNTER, f[i].help);
		for (size_t k = 0; k < sizeof(f[i].c) / sizeof(f[i].c[0]); k++) {
			const struct lb_counter *c = &vals[f[i].c[k].id];
			uint64_t v = f[i].bytes ? c->bytes : c->packets;

			if (!f[i].label) {
				prom_sample_u64(b, PROM_NO_LABELS, v);
				break;
			}
			if (!f[i].c[k].value)
				break;
			prom_sample_u64(b, PROM_LABELS(f[i].label, f[i].c[k].value), v);
		}
	}
}

static void write_process(struct prom_buf *b, const struct lbd *d)
{
	prom_family(b, "portico_build_info", PROM_GAUGE,
		    "Always 1: the labels name the daemon, its version and role.");
	prom_sample_u64(
	    b, PROM_LABELS("daemon", "lbd", "version", PORTICO_VERSION, "role", d->role->name), 1);
	prom_family(b, "portico_lbd_start_time_seconds", PROM_GAUGE,
		    "When this lbd started, in seconds since the Unix epoch.");
	prom_sample_f64(b, PROM_NO_LABELS, start_time_s);
}

/* What one scrape knows of a real of a VIP. */
struct m_real {
	char addr[LB_ADDR_STRLEN];
	uint32_t id, weight;
	bool down;
	bool have_counter;
	struct lb_counter c; /* the real's, over all its VIPs */
	bool checked;	     /* hc holds its check */
	struct hc_info hc;
};

struct m_vip {
	char name[96]; /* the VIP in lbctl's notation: 192.0.2.10:80/tcp */
	bool have_counter;
	struct lb_counter c;
	size_t n_reals;
	struct m_real *reals;
};

struct m_snap {
	struct l4lb *lb;
	struct health *hc;
	struct m_vip *vips;
	size_t n, cap;
	bool oom;
};

static int snap_vip(void *ctx, const struct l4lb_vip_info *v)
{
	struct m_snap *s = ctx;
	struct m_vip *mv;

	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 64;
		struct m_vip *nv = realloc(s->vips, cap * sizeof(*nv));

		if (!nv)
			goto oom;
		s->vips = nv;
		s->cap = cap;
	}
	mv = &s->vips[s->n];
	*mv = (struct m_vip){0};
	vipspec_str(&v->key, mv->name, sizeof(mv->name));
	mv->have_counter = l4lb_stats_vip(s->lb, v->id, &mv->c) == 0;
	mv->reals = calloc(v->n_reals ? v->n_reals : 1, sizeof(*mv->reals));
	if (!mv->reals)
		goto oom;
	s->n++;
	for (size_t i = 0; i < v->n_reals; i++) {
		const struct l4lb_real_info *ri = &v->reals[i];
		struct m_real *r = &mv->reals[mv->n_reals++];

		lb_addr_str(&ri->addr, r->addr, sizeof(r->addr));
		r->id = ri->id;
		r->weight = ri->weight;
		r->down = ri->down;
		r->have_counter = l4lb_stats_real(s->lb, ri->id, &r->c) == 0;
		r->checked = health_get(s->hc, &v->key, &ri->addr, &r->hc) == 0;
	}
	return 0;
oom:
	s->oom = true;
	return 1;
}

static void snap_free(struct m_snap *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->vips[i].reals);
	free(s->vips);
}

/* Per-real counters: a real has one pair whatever number of VIPs it
 * serves, so each id is written once (the first VIP that lists it). */
static void write_real_counters(struct prom_buf *b, const struct m_snap *s, bool bytes)
{
	uint8_t seen[LB_MAX_REALS_DEFAULT / 8] = {0};

	for (size_t i = 0; i < s->n; i++)
		for (size_t k = 0; k < s->vips[i].n_reals; k++) {
			const struct m_real *r = &s->vips[i].reals[k];

			if (!r->have_counter || r->id >= LB_MAX_REALS_DEFAULT ||
			    seen[r->id / 8] & (1u << (r->id % 8)))
				continue;
			seen[r->id / 8] |= (uint8_t)(1u << (r->id % 8));
			prom_sample_u64(b, PROM_LABELS("real", r->addr),
					bytes ? r->c.bytes : r->c.packets);
		}
}

/* The facts of a (VIP, real) pair; each is a family of its own. */
enum pair_fact { PAIR_WEIGHT, PAIR_IN_RING, PAIR_HEALTHY, PAIR_PROBES, PAIR_LAST_CHANGE };

static void write_pairs(struct prom_buf *b, const struct m_snap *s, enum pair_fact f)
{
	for (size_t i = 0; i < s->n; i++)
		for (size_t k = 0; k < s->vips[i].n_reals; k++) {
			const struct m_real *r = &s->vips[i].reals[k];
			const char *vip = s->vips[i].name;

			switch (f) {
			case PAIR_WEIGHT:
				prom_sample_u64(b, PROM_LABELS("vip", vip, "real", r->addr),
						r->weight);
				break;
			case PAIR_IN_RING:
				prom_sample_u64(b, PROM_LABELS("vip", vip, "real", r->addr),
						r->weight && !r->down);
				break;
			case PAIR_HEALTHY:
				/* Up, or no check at all (kind "none" counts as up);
				 * one waiting for its first verdict is not. */
				if (r->checked)
					prom_sample_u64(b, PROM_LABELS("vip", vip, "real", r->addr),
							r->hc.state == HC_UP ||
							    r->hc.state == HC_UNCHECKED);
				break;
			case PAIR_PROBES:
				if (!r->checked)
					break;
				prom_sample_u64(
				    b, PROM_LABELS("vip", vip, "real", r->addr, "result", "ok"),
				    r->hc.ok);
				prom_sample_u64(
				    b, PROM_LABELS("vip", vip, "real", r->addr, "result", "failed"),
				    r->hc.failed);
				break;
			case PAIR_LAST_CHANGE:
				if (r->checked && r->hc.last_change_ms)
					prom_sample_f64(b, PROM_LABELS("vip", vip, "real", r->addr),
							(double)r->hc.last_change_ms / 1000.0);
				break;
			}
		}
}

static void write_vips(struct prom_buf *b, const struct m_snap *s)
{
	prom_family(b, "portico_lbd_vip_packets_total", PROM_COUNTER,
		    "Packets the XDP balancer received for the VIP (dropped ones included).");
	for (size_t i = 0; i < s->n; i++)
		if (s->vips[i].have_counter)
			prom_sample_u64(b, PROM_LABELS("vip", s->vips[i].name),
					s->vips[i].c.packets);
	prom_family(b, "portico_lbd_vip_bytes_total", PROM_COUNTER,
		    "Bytes of the packets the XDP balancer received for the VIP.");
	for (size_t i = 0; i < s->n; i++)
		if (s->vips[i].have_counter)
			prom_sample_u64(b, PROM_LABELS("vip", s->vips[i].name), s->vips[i].c.bytes);
	prom_family(b, "portico_lbd_real_packets_total", PROM_COUNTER,
		    "Packets the XDP balancer steered to the real, over all its VIPs (counted "
		    "before encapsulation: those then dropped for fib or encap are in).");
	write_real_counters(b, s, false);
	prom_family(b, "portico_lbd_real_bytes_total", PROM_COUNTER,
		    "Bytes of the packets the XDP balancer steered to the real, over all its VIPs, "
		    "before encapsulation.");
	write_real_counters(b, s, true);
	prom_family(b, "portico_lbd_real_weight", PROM_GAUGE,
		    "The real's configured weight in the VIP (0: drained).");
	write_pairs(b, s, PAIR_WEIGHT);
	prom_family(b, "portico_lbd_real_in_ring", PROM_GAUGE,
		    "1 if the real takes new flows of the VIP (weight > 0 and not down), else 0.");
	write_pairs(b, s, PAIR_IN_RING);
	prom_family(b, "portico_lbd_real_healthy", PROM_GAUGE,
		    "1 if the real's health check for the VIP says up (or the VIP has no check), "
		    "0 if down or not known yet.");
	write_pairs(b, s, PAIR_HEALTHY);
	prom_family(b, "portico_lbd_health_probes_total", PROM_COUNTER,
		    "Health-check probes of the real for the VIP, by result.");
	write_pairs(b, s, PAIR_PROBES);
	prom_family(b, "portico_lbd_health_last_change_timestamp_seconds", PROM_GAUGE,
		    "When the real's health state for the VIP last changed (Unix time); absent "
		    "before the first change.");
	write_pairs(b, s, PAIR_LAST_CHANGE);
}

/* A neighbour's integer member (group.key for nested ones); 0 if absent. */
static uint64_t nb_int(json_t *nb, const char *group, const char *key)
{
	json_t *o = group ? json_object_get(nb, group) : nb;
	json_int_t v = json_integer_value(json_object_get(o, key));

	return v > 0 ? (uint64_t)v : 0;
}

static const char *nb_addr(json_t *nb)
{
	const char *a = json_string_value(json_object_get(nb, "address"));

	return a ? a : "";
}

static bool nb_in_state(json_t *nb, enum bgp_state s)
{
	const char *st = json_string_value(json_object_get(nb, "state"));

	return st && strcmp(st, bgp_state_name(s)) == 0;
}

/*
 * BGP, per neighbour. The speaker keeps its sessions private and its one
 * read interface is the JSON of /v1/bgp/neighbors, so the page is written
 * from that (at most 16 neighbours: cheap). The state is one-hot over the
 * RFC 4271 §8.2.2 states, the usual form of an enum in Prometheus.
 */
static void write_bgp(struct prom_buf *b, struct bgp_speaker *sp)
{
	static const char *const states[] = {
	    [BGP_IDLE] = "idle",
	    [BGP_CONNECT] = "connect",
	    [BGP_ACTIVE] = "active",
	    [BGP_OPENSENT] = "opensent",
	    [BGP_OPENCONFIRM] = "openconfirm",
	    [BGP_ESTABLISHED] = "established",
	};
	static const char *const types[] = {"open", "update", "notification", "keepalive",
					    "route_refresh"};
	json_t *nbs = bgp_speaker_neighbors_json(sp);
	size_t n = json_array_size(nbs);

	prom_family(b, "portico_lbd_bgp_session_up", PROM_GAUGE,
		    "1 if the BGP session with the neighbor is Established, else 0.");
	for (size_t i = 0; i < n; i++)
		prom_sample_u64(b, PROM_LABELS("neighbor", nb_addr(json_array_get(nbs, i))),
				nb_in_state(json_array_get(nbs, i), BGP_ESTABLISHED));
	prom_family(b, "portico_lbd_bgp_session_state", PROM_GAUGE,
		    "1 for the state the BGP session with the neighbor is in, 0 for the others.");
	for (size_t i = 0; i < n; i++)
		for (int st = BGP_IDLE; st <= BGP_ESTABLISHED; st++)
			prom_sample_u64(b,
					PROM_LABELS("neighbor", nb_addr(json_array_get(nbs, i)),
						    "state", states[st]),
					nb_in_state(json_array_get(nbs, i), st));
	prom_family(b, "portico_lbd_bgp_established_transitions_total", PROM_COUNTER,
		    "Times the BGP session with the neighbor reached Established.");
	for (size_t i = 0; i < n; i++)
		prom_sample_u64(b, PROM_LABELS("neighbor", nb_addr(json_array_get(nbs, i))),
				nb_int(json_array_get(nbs, i), NULL, "established_count"));
	prom_family(b, "portico_lbd_bgp_messages_received_total", PROM_COUNTER,
		    "BGP messages received from the neighbor, by type.");
	for (size_t i = 0; i < n; i++)
		for (size_t t = 0; t < sizeof(types) / sizeof(types[0]); t++)
			prom_sample_u64(b,
					PROM_LABELS("neighbor", nb_addr(json_array_get(nbs, i)),
						    "type", types[t]),
					nb_int(json_array_get(nbs, i), "received", types[t]));
	prom_family(b, "portico_lbd_bgp_messages_sent_total", PROM_COUNTER,
		    "BGP messages sent to the neighbor, by type.");
	for (size_t i = 0; i < n; i++)
		for (size_t t = 0; t < sizeof(types) / sizeof(types[0]); t++)
			prom_sample_u64(b,
					PROM_LABELS("neighbor", nb_addr(json_array_get(nbs, i)),
						    "type", types[t]),
					nb_int(json_array_get(nbs, i), "sent", types[t]));
	prom_family(b, "portico_lbd_bgp_malformed_messages_received_total", PROM_COUNTER,
		    "Malformed BGP messages received from the neighbor.");
	for (size_t i = 0; i < n; i++)
		prom_sample_u64(b, PROM_LABELS("neighbor", nb_addr(json_array_get(nbs, i))),
				nb_int(json_array_get(nbs, i), NULL, "malformed_received"));
	prom_family(b, "portico_lbd_bgp_prefixes_announced", PROM_GAUGE,
		    "VIP prefixes currently announced to the neighbor.");
	for (size_t i = 0; i < n; i++)
		prom_sample_u64(b, PROM_LABELS("neighbor", nb_addr(json_array_get(nbs, i))),
				nb_int(json_array_get(nbs, i), NULL, "prefixes_announced"));
	json_decref(nbs);
}

static int write_l4(struct prom_buf *b, struct lbd *d)
{
	struct lb_counter g[LB_CNT_MAX];
	struct m_snap s = {0};
	struct bgp_speaker *bgp;
	int rc;

	lbd_l4_parts(d, &s.lb, &s.hc, &bgp);
	if (l4lb_stats_global(s.lb, g))
		return -errno;
	write_counter_families(b, xdp_families, sizeof(xdp_families) / sizeof(xdp_families[0]), g);
	prom_family(b, "portico_lbd_conn_table_capacity", PROM_GAUGE,
		    "Flows the connection table holds (conn_table_size; the least recently "
		    "used go first).");
	prom_sample_u64(b, PROM_NO_LABELS, d->cfg.conn_max);
	l4lb_vip_foreach(s.lb, snap_vip, &s);
	rc = s.oom ? -ENOMEM : 0;
	if (!rc)
		write_vips(b, &s);
	snap_free(&s);
	if (!rc && bgp)
		write_bgp(b, bgp);
	return rc;
}

static int write_l7(struct prom_buf *b, struct lbd *d)
{
	struct lb_counter c[LB_DCNT_MAX];
	int rc = lbd_l7_decap_stats(d, c);

	if (rc)
		return rc;
	write_counter_families(b, decap_families,
			       sizeof(decap_families) / sizeof(decap_families[0]), c);
	return 0;
}

int lbd_api_metrics(void *ctx, const struct admin_req *req, json_t **out)
{
	struct lbd *d = ctx;
	struct prom_buf b;
	char *text;
	size_t len;
	int rc;

	prom_init(&b);
	write_process(&b, d);
	rc = d->cfg.role == LBD_ROLE_L4LB ? write_l4(&b, d) : write_l7(&b, d);
	if (rc) {
		prom_free(&b);
		return admin_error(out, 500, "reading counters: %s", strerror(-rc));
	}
	text = prom_finish(&b, &len);
	if (!text) {
		/* EINVAL is a bad name here: a bug, caught by test_admin_api. */
		log_err("metrics: %s", strerror(errno));
		return admin_error(out, 500, "writing metrics: %s", strerror(errno));
	}
	admin_reply_text(req, METRICS_TYPE, text, len);
	return 200;
}
