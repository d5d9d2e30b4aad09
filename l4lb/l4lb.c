// SPDX-License-Identifier: GPL-2.0-only
#include "l4lb.h"
#include "balancer.skel.h"
#include "lb_hash.h"
#include "log.h"
#include "maglev.h"
#include "netlink.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <linux/if_link.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

struct vip {
	bool used;
	bool dirty;	/* changed inside a batch: rebuild at batch end */
	uint32_t half;	/* the ring half packets read now */
	uint32_t flags; /* LB_VIP_F_* */
	struct l4lb_vip_key key;
	struct l4lb_real_info *reals;
	size_t n_reals, cap;
};

/* What an adopted dataplane was doing, kept until the first batch ends. */
struct adopt_vip {
	struct l4lb_vip_key key;
	uint32_t id, half;
	bool claimed;
	uint8_t *live; /* bitmap over real ids: in the live ring */
};

struct adopt {
	struct adopt_vip *vips;
	size_t n;
	struct lb_addr *real_addr; /* by real id; family 0 = slot unused */
};

struct real_slot {
	struct lb_addr addr; /* family 0: never used (no reals_map entry) */
	uint32_t refs;	     /* VIPs using it; 0 = free */
	/* Where its next hop was last resolved (ifindex 0: unknown), to tell
	 * which reals a neighbour event concerns. */
	int nh_ifindex;
	struct lb_addr nh_gw;
};

struct l4lb {
	struct balancer_bpf *skel;
	struct l4lb_opts o;
	struct vip *vips;	 /* indexed by vip id */
	uint32_t next_vip;	 /* where the next free-id search starts */
	struct real_slot *reals; /* indexed by real id; 0 unused */
	uint32_t *free_ids;	 /* FIFO ring of free real ids */
	uint32_t free_head, free_count;
	uint32_t *ring;	     /* scratch table for maglev_build */
	uint32_t *ring_keys; /* scratch keys for the batch update */
	int ifindex;
	uint32_t xdp_flags;
	int hc_ifindex; /* tc egress program attached there (0: none) */
	int ncpus;
	int batch;		   /* inside l4lb_batch_begin/end */
	bool adopted;		   /* the maps were found pinned */
	struct adopt *adopt;	   /* until the first batch ends */
	char pin_dir[300];	   /* pin_root/v<LB_MAPS_VERSION> */
	char pin_root[256];	   /* the configured pin_dir */
	struct lb_nl_monitor *mon; /* route/link/neighbour events (lazy) */
	/* An older layout's dataplane found in pin_root (l4lb_attach takes
	 * over its flows and removes its pins): its version, 0 = none. */
	int old_version;
	int old_conn_fd;
	/* What vip_filter holds (written word by word where it differs). */
	uint64_t filter[LB_VIP_FILTER_WORDS];
};

const char *const lb_counter_names[LB_CNT_MAX] = {
    [LB_CNT_RX] = "rx",
    [LB_CNT_PASS_NON_IP] = "pass_non_ip",
    [LB_CNT_PASS_NON_VIP] = "pass_non_vip",
    [LB_CNT_TX] = "tx",
    [LB_CNT_CONN_HIT] = "conn_hit",
    [LB_CNT_CONN_MISS] = "conn_miss",
    [LB_CNT_DROP_MALFORMED] = "drop_malformed",
    [LB_CNT_DROP_FRAGMENT] = "drop_fragment",
    [LB_CNT_DROP_NO_REAL] = "drop_no_real",
    [LB_CNT_DROP_FIB] = "drop_fib",
    [LB_CNT_DROP_ENCAP] = "drop_encap",
    [LB_CNT_PASS_IPV6_EXT] = "pass_ipv6_ext",
    [LB_CNT_DROP_VIP_UNHANDLED] = "drop_vip_unhandled",
    [LB_CNT_HC_TX] = "hc_tx",
    [LB_CNT_HC_DROP] = "hc_drop",
    [LB_CNT_DROP_FRAG_NEEDED] = "drop_frag_needed",
    [LB_CNT_FIB_FALLBACK] = "fib_fallback",
    [LB_CNT_ICMP_STEERED] = "icmp_steered",
    [LB_CNT_ICMP_ECHO_REPLY] = "icmp_echo_reply",
    [LB_CNT_DROP_ICMP] = "drop_icmp",
};

static void vip_key_to_bpf(const struct l4lb_vip_key *k, struct lb_vip_key *out, bool addr_only)
{
	memset(out, 0, sizeof(*out));
	memcpy(out->addr, k->addr.bytes, 16);
	out->family = k->addr.family;
	if (!addr_only) {
		out->port = htons(k->port);
		out->proto = k->proto;
	}
}

/* --- vip_state and vip_filter: what the datapath reads before vip_map --- */

/* vip_state[id]: key and flags, or all zero (the id is free). */
static int vip_state_write(struct l4lb *lb, uint32_t id, const struct lb_vip_key *key,
			   uint32_t flags)
{
	struct lb_vip_state st = {.flags = flags};

	if (key)
		st.key = *key;
	else
		st.flags = 0;
	if (bpf_map__update_elem(lb->skel->maps.vip_state, &id, sizeof(id), &st, sizeof(st),
				 BPF_ANY))
		return -errno;
	return 0;
}

static int filter_word_write(struct l4lb *lb, uint32_t word, uint64_t v)
{
	if (bpf_map__update_elem(lb->skel->maps.vip_filter, &word, sizeof(word), &v, sizeof(v),
				 BPF_ANY))
		return -errno;
	lb->filter[word] = v;
	return 0;
}

/* vip_state[id] as vip_map has VIP key now (after a failed update): its
 * flags if the entry is there, else free. */
static void vip_state_from_map(struct l4lb *lb, uint32_t id, const struct l4lb_vip_key *key)
{
	struct lb_vip_meta meta;
	struct lb_vip_key bk;

	vip_key_to_bpf(key, &bk, false);
	if (bpf_map__lookup_elem(lb->skel->maps.vip_map, &bk, sizeof(bk), &meta, sizeof(meta), 0))
		vip_state_write(lb, id, NULL, 0);
	else
		vip_state_write(lb, id, &bk, meta.flags);
}

/* Set the filter bit of addr before anything of a VIP on it goes live. */
static int filter_set(struct l4lb *lb, const struct lb_addr *addr)
{
	uint32_t bit = lb_vip_addr_bit(addr->bytes, addr->family);
	uint64_t v = lb->filter[bit >> 6] | 1ull << (bit & 63);

	return v == lb->filter[bit >> 6] ? 0 : filter_word_write(lb, bit >> 6, v);
}

/*
 * Make vip_state and vip_filter say what vip_map says (every VIP and every
 * VIP address in it), from the map itself: after adopting or migrating
 * maps (before the program is attached), and after VIPs were removed
 * (bits are cleared only here). Returns 0 or -errno (logged).
 */
static int vip_derived_sync(struct l4lb *lb, bool state_too)
{
	uint64_t *want = calloc(LB_VIP_FILTER_WORDS, sizeof(*want));
	struct lb_vip_key k, *prev = NULL;
	struct lb_vip_meta meta;
	bool *seen = NULL;
	int err = 0;

	if (!want || (state_too && !(seen = calloc(lb->o.max_vips, sizeof(*seen))))) {
		err = -ENOMEM;
		goto out;
	}
	while (bpf_map__get_next_key(lb->skel->maps.vip_map, prev, &k, sizeof(k)) == 0) {
		uint32_t bit = lb_vip_addr_bit(k.addr, k.family);

		prev = &k;
		want[bit >> 6] |= 1ull << (bit & 63);
		if (!state_too || !k.port ||
		    bpf_map__lookup_elem(lb->skel->maps.vip_map, &k, sizeof(k), &meta, sizeof(meta),
					 0) ||
		    meta.vip_id >= lb->o.max_vips)
			continue;
		if ((err = vip_state_write(lb, meta.vip_id, &k, meta.flags)))
			goto out;
		seen[meta.vip_id] = true;
	}
	for (uint32_t id = 0; state_too && id < lb->o.max_vips; id++)
		if (!seen[id] && (err = vip_state_write(lb, id, NULL, 0)))
			goto out;
	for (uint32_t w = 0; w < LB_VIP_FILTER_WORDS; w++)
		if (want[w] != lb->filter[w] && (err = filter_word_write(lb, w, want[w])))
			goto out;
out:
	if (err)
		log_err("vip_state / vip_filter: %s", strerror(-err));
	free(seen);
	free(want);
	return err;
}

static bool vip_key_equal(const struct l4lb_vip_key *a, const struct l4lb_vip_key *b)
{
	return lb_addr_equal(&a->addr, &b->addr) && a->port == b->port && a->proto == b->proto;
}

static void adopt_free(struct l4lb *lb)
{
	if (!lb->adopt)
		return;
	for (size_t i = 0; i < lb->adopt->n; i++)
		free(lb->adopt->vips[i].live);
	free(lb->adopt->vips);
	free(lb->adopt->real_addr);
	free(lb->adopt);
	lb->adopt = NULL;
}

static void bit_set(uint8_t *bm, uint32_t i)
{
	bm[i / 8] |= (uint8_t)(1u << (i % 8));
}

static bool bit_get(const uint8_t *bm, uint32_t i)
{
	return bm[i / 8] & (1u << (i % 8));
}

/* The maps of layout version 1 (pinned straight in pin_root), which
 * migrate_v1 reads and l4lb_attach removes. */
static const char *const v1_maps[] = {"vip_map", "ring_map",  "reals_map",  "conn_map",
				      "ctl_map", "vip_stats", "real_stats", "lb_counters"};

/* Version 1's struct lb_real, before the next-hop cache. */
struct lb_real_v1 {
	uint8_t addr[16];
	uint8_t family, encap;
	uint16_t flags;
};

/* Read ctl_map[0] pinned at path into ctl. 0 or -errno. */
static int pinned_ctl(const char *path, struct lb_ctl *ctl)
{
	uint32_t zero = 0;
	int fd = bpf_obj_get(path), err = 0;

	memset(ctl, 0, sizeof(*ctl));
	if (fd < 0 || bpf_map_lookup_elem(fd, &zero, ctl))
		err = -errno;
	if (fd >= 0)
		close(fd);
	if (err)
		log_err("reading pinned %s: %s", path, strerror(-err));
	return err;
}

/*
 * Whether a pinned dataplane's settings (ctl) hash flows as this config
 * would: the same ring size, seed and flow hash version (0 in an older
 * lbd's ctl: version 1). If not, logs which and returns false: adopting
 * it would send the new flows of a running PoP to other reals.
 */
static bool ctl_matches(const struct l4lb *lb, const struct lb_ctl *ctl, const char *where)
{
	uint32_t fh = ctl->flow_hash ? ctl->flow_hash : LB_FLOW_HASH_V1;

	if (ctl->ring_size == lb->o.ring_size && ctl->hash_seed == lb->o.hash_seed &&
	    fh == lb->o.flow_hash)
		return true;
	log_err("the dataplane pinned in %s runs ring_size %u, hash_seed %u, flow_hash %u; this "
		"config says %u, %u, %u: stop it with `lbctl shutdown` first",
		where, ctl->ring_size, ctl->hash_seed, fh, lb->o.ring_size, lb->o.hash_seed,
		lb->o.flow_hash);
	return false;
}

/*
 * An lbd of map layout 1 left its dataplane pinned in pin_root: note it,
 * so the load below starts fresh maps under pin_dir, migrate_v1 copies
 * the state over and l4lb_attach takes over the interface and the flows.
 */
static int pin_find_old(struct l4lb *lb)
{
	char path[600];
	struct lb_ctl ctl;
	int err;

	snprintf(path, sizeof(path), "%s/ctl_map", lb->pin_root);
	if (access(path, F_OK))
		return 0;
	err = pinned_ctl(path, &ctl);
	if (err)
		return err;
	if (!ctl.ring_size)
		return 0; /* never finished starting: nothing to carry */
	if (!ctl_matches(lb, &ctl, lb->pin_root))
		return -EINVAL;
	snprintf(path, sizeof(path), "%s/conn_map", lb->pin_root);
	lb->old_conn_fd = bpf_obj_get(path);
	if (lb->old_conn_fd < 0) {
		log_err("reading pinned %s: %s", path, strerror(errno));
		return -errno;
	}
	lb->old_version = 1;
	return 0;
}

/*
 * Whether a map of the program is pinned: not the internal ones (rodata),
 * and not conn_cache, which holds only copies of conn_map entries made by
 * the program that owns it (a new program starts with an empty one, so a
 * size change needs no migration).
 */
static bool map_pinned(const struct l4lb *lb, const struct bpf_map *m)
{
	return !bpf_map__is_internal(m) && m != lb->skel->maps.conn_cache;
}

/* Remove whatever this layout has pinned in pin_dir, before the load
 * (the maps do not have their pin paths yet). 0 or -errno. */
static int pins_remove(struct l4lb *lb)
{
	struct bpf_map *m;
	char path[600];

	bpf_object__for_each_map(m, lb->skel->obj)
	{
		if (!map_pinned(lb, m))
			continue;
		snprintf(path, sizeof(path), "%s/%s", lb->pin_dir, bpf_map__name(m));
		if (unlink(path) && errno != ENOENT) {
			int err = -errno;

			log_err("removing %s: %s", path, strerror(-err));
			return err;
		}
	}
	return 0;
}

/*
 * Point every map at pin_dir/<name> (pin_dir = pin_root/v<version>). If
 * ctl_map is already pinned there a dataplane of this layout is running:
 * check it was built with this ring size and hash seed (or the rings
 * would differ from the other LBs' and from its own connection table's
 * idea of them) and let libbpf reuse the maps. An older layout's
 * dataplane is noted for migration (pin_find_old).
 */
static int pin_prepare(struct l4lb *lb)
{
	char path[600];
	struct statfs fs;
	struct bpf_map *m;
	int n;

	n = snprintf(lb->pin_root, sizeof(lb->pin_root), "%s", lb->o.pin_dir);
	if (n <= 0 || (size_t)n >= sizeof(lb->pin_root) - 32)
		return -ENAMETOOLONG;
	snprintf(lb->pin_dir, sizeof(lb->pin_dir), "%s/v%d", lb->pin_root, LB_MAPS_VERSION);
	if (statfs(lb->pin_root, &fs)) {
		log_err("pin directory %s: %s", lb->pin_root, strerror(errno));
		return -errno;
	}
	if (fs.f_type != BPF_FS_MAGIC) {
		log_err("pin directory %s is not on a bpf filesystem (mount -t bpf bpf %s)",
			lb->pin_root, lb->pin_root);
		return -EINVAL;
	}
	if (mkdir(lb->pin_dir, 0700) && errno != EEXIST) {
		log_err("pin directory %s: %s", lb->pin_dir, strerror(errno));
		return -errno;
	}
	n = pin_find_old(lb);
	if (n)
		return n;
	if (lb->old_version) {
		/* Layout-1 pins are removed only once this layout's program has
		 * taken the interface over: while they exist they are the live
		 * dataplane, and maps of ours beside them are a migration that
		 * never finished (or predate a downgrade): start it again. */
		n = pins_remove(lb);
		if (n)
			return n;
	}
	snprintf(path, sizeof(path), "%s/ctl_map", lb->pin_dir);
	if (access(path, F_OK) == 0) {
		struct lb_ctl ctl;

		n = pinned_ctl(path, &ctl);
		if (n)
			return n;
		if (!ctl.ring_size) {
			/* The lbd that pinned these died before it wrote the
			 * control map: nothing in them can be trusted (or
			 * checked against this config). Start afresh. */
			log_warn("%s holds the maps of a dataplane that never finished "
				 "starting: removing them",
				 lb->pin_dir);
			n = pins_remove(lb);
			if (n)
				return n;
		} else if (!ctl_matches(lb, &ctl, lb->pin_dir)) {
			return -EINVAL;
		} else {
			lb->adopted = true;
		}
	}
	bpf_object__for_each_map(m, lb->skel->obj)
	{
		if (!map_pinned(lb, m))
			continue;
		snprintf(path, sizeof(path), "%s/%s", lb->pin_dir, bpf_map__name(m));
		if (bpf_map__set_pin_path(m, path))
			return -errno;
	}
	return 0;
}

/* Read ring half `half` of VIP id into lb->ring. */
static int ring_read(struct l4lb *lb, uint32_t id, uint32_t half)
{
	int fd = bpf_map__fd(lb->skel->maps.ring_map);
	uint32_t base = (id * 2 + half) * lb->o.ring_size, done = 0;
	uint32_t in = base - 1, out;

	/* A batch lookup goes on after in_batch (the last key it returned):
	 * start after base - 1, or from the map's start for base 0. */
	while (done < lb->o.ring_size) {
		DECLARE_LIBBPF_OPTS(bpf_map_batch_opts, bo);
		uint32_t count = lb->o.ring_size - done;
		int err;

		err = bpf_map_lookup_batch(fd, (base + done) ? &in : NULL, &out,
					   lb->ring_keys + done, lb->ring + done, &count, &bo);
		if ((err && errno != ENOENT) || !count)
			break;
		done += count;
		in = out;
		if (err)
			break;
	}
	if (done == lb->o.ring_size)
		return 0;
	for (uint32_t i = 0; i < lb->o.ring_size; i++) { /* no batch ops: slowly */
		uint32_t k = base + i;

		if (bpf_map_lookup_elem(fd, &k, &lb->ring[i]))
			return -errno;
	}
	return 0;
}

/*
 * Learn what the adopted dataplane runs: each VIP's id, live half and the
 * real ids in its live ring, and each real id's address. Ids found in
 * reals_map go to the back of the free list: connection-table entries may
 * still name them.
 */
static int adopt_read(struct l4lb *lb)
{
	struct lb_vip_key k, *prev = NULL;
	struct lb_vip_meta meta;
	struct adopt *a;
	uint32_t nfree = 0, ntail = 0, *tail;
	int err = -ENOMEM;

	a = lb->adopt = calloc(1, sizeof(*a));
	tail = calloc(lb->o.max_reals, sizeof(*tail));
	if (!a || !tail)
		goto out;
	a->real_addr = calloc(lb->o.max_reals, sizeof(*a->real_addr));
	a->vips = calloc(lb->o.max_vips, sizeof(*a->vips));
	if (!a->real_addr || !a->vips)
		goto out;
	for (uint32_t id = 1; id < lb->o.max_reals; id++) {
		struct lb_real r;

		if (bpf_map__lookup_elem(lb->skel->maps.reals_map, &id, sizeof(id), &r, sizeof(r),
					 0) == 0 &&
		    (r.family == LB_AF_INET || r.family == LB_AF_INET6)) {
			a->real_addr[id].family = r.family;
			memcpy(a->real_addr[id].bytes, r.addr, 16);
			/* Unclaimed, but its flows still go there: keep its
			 * next hop followed (refs 0, on the free list). */
			lb->reals[id].addr = a->real_addr[id];
			tail[ntail++] = id;
		} else {
			lb->free_ids[nfree++] = id;
		}
	}
	memcpy(lb->free_ids + nfree, tail, ntail * sizeof(*tail));
	while (bpf_map__get_next_key(lb->skel->maps.vip_map, prev, &k, sizeof(k)) == 0) {
		struct adopt_vip *av;

		prev = &k;
		if (!k.port) /* an address-only entry */
			continue;
		if (bpf_map__lookup_elem(lb->skel->maps.vip_map, &k, sizeof(k), &meta, sizeof(meta),
					 0) ||
		    meta.vip_id >= lb->o.max_vips || meta.ring_half > 1 || a->n == lb->o.max_vips)
			continue;
		av = &a->vips[a->n];
		av->key.addr.family = k.family;
		memcpy(av->key.addr.bytes, k.addr, 16);
		av->key.port = ntohs(k.port);
		av->key.proto = k.proto;
		av->id = meta.vip_id;
		av->half = meta.ring_half;
		av->live = calloc((lb->o.max_reals + 7) / 8, 1);
		if (!av->live)
			goto out;
		a->n++;
		err = ring_read(lb, av->id, av->half);
		if (err)
			goto out;
		for (uint32_t i = 0; i < lb->o.ring_size; i++)
			if (lb->ring[i] < lb->o.max_reals)
				bit_set(av->live, lb->ring[i]);
	}
	err = 0;
	log_info("adopted the dataplane pinned in %s: %zu VIPs, %u real ids", lb->pin_dir, a->n,
		 ntail);
out:
	free(tail);
	if (err)
		adopt_free(lb);
	return err;
}

/*
 * Copy the entries of hash map from into to (same key and value sizes, at
 * most 64 bytes each) with update flags (BPF_NOEXIST: what to already has
 * wins). Bounded: a table that churns while it is read cannot keep this
 * going for ever. Returns the number copied or -errno.
 */
static long hash_copy(int from, int to, size_t ksz, size_t vsz, uint64_t flags, long bound)
{
	uint8_t key[64], next[64], val[64];
	void *prev = NULL;
	long n = 0;

	if (ksz > sizeof(key) || vsz > sizeof(val))
		return -EINVAL;
	for (long i = 0; i < bound && bpf_map_get_next_key(from, prev, next) == 0; i++) {
		memcpy(key, next, ksz);
		prev = key;
		if (bpf_map_lookup_elem(from, key, val))
			continue; /* evicted meanwhile */
		if (bpf_map_update_elem(to, key, val, flags) == 0)
			n++;
		else if (errno != EEXIST)
			return -errno;
	}
	return n;
}

static int pinned_fd(const struct l4lb *lb, const char *name)
{
	char path[600];

	snprintf(path, sizeof(path), "%s/%s", lb->pin_root, name);
	return bpf_obj_get(path);
}

/*
 * Carry a layout-1 dataplane's state into the fresh maps: VIPs (same ids
 * and live halves), both ring halves of each, reals (same ids; their next
 * hops are resolved anew) and the connection table. Counters start from
 * zero. Afterwards the maps look adopted, and adopt_read learns from them
 * as from a restart of the same version.
 */
static int migrate_v1(struct l4lb *lb)
{
	int vip_fd = pinned_fd(lb, "vip_map"), ring_fd = pinned_fd(lb, "ring_map"),
	    reals_fd = pinned_fd(lb, "reals_map"), ctl_fd = pinned_fd(lb, "ctl_map");
	int new_ring = bpf_map__fd(lb->skel->maps.ring_map);
	struct lb_vip_key k, *prev = NULL;
	struct lb_vip_meta meta;
	struct lb_ctl ctl = {0};
	uint32_t zero = 0, nvips = 0, nreals = 0;
	long flows;
	int err = 0;

	if (vip_fd < 0 || ring_fd < 0 || reals_fd < 0 || ctl_fd < 0) {
		err = -errno;
		goto out;
	}
	for (uint32_t id = 1; id < lb->o.max_reals; id++) {
		struct lb_real_v1 o;
		struct lb_real r = {0};

		if (bpf_map_lookup_elem(reals_fd, &id, &o) || !o.family)
			continue;
		memcpy(r.addr, o.addr, 16);
		r.family = o.family;
		r.encap = o.encap;
		if (bpf_map__update_elem(lb->skel->maps.reals_map, &id, sizeof(id), &r, sizeof(r),
					 BPF_ANY)) {
			err = -errno;
			goto out;
		}
		nreals++;
	}
	while (bpf_map_get_next_key(vip_fd, prev, &k) == 0) {
		prev = &k;
		if (bpf_map_lookup_elem(vip_fd, &k, &meta))
			continue;
		if (k.port && meta.vip_id >= lb->o.max_vips) {
			log_err("the dataplane pinned in %s has VIP id %u; this config allows %u "
				"VIPs",
				lb->pin_root, meta.vip_id, lb->o.max_vips);
			err = -ERANGE;
			goto out;
		}
		if (bpf_map__update_elem(lb->skel->maps.vip_map, &k, sizeof(k), &meta, sizeof(meta),
					 BPF_ANY)) {
			err = -errno;
			goto out;
		}
		if (!k.port) /* an address-only entry: no ring */
			continue;
		nvips++;
		for (uint32_t i = 0; i < 2 * lb->o.ring_size; i++) {
			uint32_t slot = meta.vip_id * 2 * lb->o.ring_size + i, v;

			if (bpf_map_lookup_elem(ring_fd, &slot, &v) ||
			    bpf_map_update_elem(new_ring, &slot, &v, BPF_ANY)) {
				err = -errno;
				goto out;
			}
		}
	}
	if (bpf_map_lookup_elem(ctl_fd, &zero, &ctl)) {
		err = -errno;
		goto out;
	}
	ctl.maps_version = LB_MAPS_VERSION;
	if (bpf_map__update_elem(lb->skel->maps.ctl_map, &zero, sizeof(zero), &ctl, sizeof(ctl),
				 BPF_ANY)) {
		err = -errno;
		goto out;
	}
	flows = hash_copy(lb->old_conn_fd, bpf_map__fd(lb->skel->maps.conn_map),
			  sizeof(struct lb_flow_key), sizeof(struct lb_conn), BPF_ANY,
			  4L * lb->o.conn_max);
	if (flows < 0) {
		err = (int)flows;
		goto out;
	}
	lb->adopted = true;
	log_info("migrating the dataplane pinned in %s (map layout 1) to layout %d: %u VIPs, "
		 "%u reals, %ld flows",
		 lb->pin_root, LB_MAPS_VERSION, nvips, nreals, flows);
out:
	if (err)
		log_err("migrating the dataplane pinned in %s: %s", lb->pin_root, strerror(-err));
	if (vip_fd >= 0)
		close(vip_fd);
	if (ring_fd >= 0)
		close(ring_fd);
	if (reals_fd >= 0)
		close(reals_fd);
	if (ctl_fd >= 0)
		close(ctl_fd);
	return err;
}

static struct adopt_vip *adopt_vip_find(const struct l4lb *lb, const struct l4lb_vip_key *key)
{
	if (!lb->adopt)
		return NULL;
	for (size_t i = 0; i < lb->adopt->n; i++)
		if (vip_key_equal(&lb->adopt->vips[i].key, key))
			return &lb->adopt->vips[i];
	return NULL;
}

static void unpin_all(struct l4lb *lb);

struct l4lb *l4lb_open(const struct l4lb_opts *opts)
{
	struct l4lb *lb = calloc(1, sizeof(*lb));
	int err = -ENOMEM;

	if (!lb)
		goto out_err;
	/* Before any check can jump to out_free, which closes it. */
	lb->old_conn_fd = -1;
	if (opts)
		lb->o = *opts;
	if (!lb->o.ring_size)
		lb->o.ring_size = LB_RING_SIZE_DEFAULT;
	if (lb->o.flow_hash != LB_FLOW_HASH_V2)
		lb->o.flow_hash = LB_FLOW_HASH_V1;
	if (!lb->o.max_vips)
		lb->o.max_vips = LB_MAX_VIPS_DEFAULT;
	if (!lb->o.max_reals)
		lb->o.max_reals = LB_MAX_REALS_DEFAULT;
	if (!lb->o.conn_max)
		lb->o.conn_max = LB_CONN_MAX_DEFAULT;
	if (!lb->o.conn_cache_slots)
		lb->o.conn_cache_slots = LB_CONN_CACHE_SLOTS_DEFAULT;
	if (lb->o.conn_cache_slots < LB_CONN_CACHE_SLOTS_MIN ||
	    lb->o.conn_cache_slots > LB_CONN_CACHE_SLOTS_MAX ||
	    (lb->o.conn_cache_slots & (lb->o.conn_cache_slots - 1))) {
		err = -EINVAL;
		goto out_free;
	}
	/* Real ids also travel in probe marks (LB_HC_MARK_REAL). */
	if (!maglev_is_prime(lb->o.ring_size) || lb->o.max_reals < 2 ||
	    lb->o.max_reals > LB_HC_MARK_REAL + 1) {
		err = -EINVAL;
		goto out_free;
	}
	lb->ifindex = -1;
	lb->ncpus = libbpf_num_possible_cpus();
	lb->vips = calloc(lb->o.max_vips, sizeof(*lb->vips));
	lb->reals = calloc(lb->o.max_reals, sizeof(*lb->reals));
	lb->free_ids = calloc(lb->o.max_reals, sizeof(*lb->free_ids));
	lb->ring = calloc(lb->o.ring_size, sizeof(*lb->ring));
	lb->ring_keys = calloc(lb->o.ring_size, sizeof(*lb->ring_keys));
	if (lb->ncpus <= 0 || !lb->vips || !lb->reals || !lb->free_ids || !lb->ring ||
	    !lb->ring_keys)
		goto out_free;
	for (uint32_t id = 1; id < lb->o.max_reals; id++)
		lb->free_ids[lb->free_count++] = id;

	lb->skel = balancer_bpf__open();
	if (!lb->skel) {
		err = -errno;
		goto out_free;
	}
	lb->skel->rodata->ring_size = lb->o.ring_size;
	lb->skel->rodata->hash_seed = lb->o.hash_seed;
	lb->skel->rodata->flow_hash = lb->o.flow_hash;
	lb->skel->rodata->cache_mask = lb->o.conn_cache_slots - 1;
	/* A VIP, its address-only entry and, for a 3-tuple VIP, the
	 * port-less one. */
	bpf_map__set_max_entries(lb->skel->maps.vip_map, lb->o.max_vips * 3);
	bpf_map__set_max_entries(lb->skel->maps.ring_map, lb->o.max_vips * 2 * lb->o.ring_size);
	bpf_map__set_max_entries(lb->skel->maps.reals_map, lb->o.max_reals);
	bpf_map__set_max_entries(lb->skel->maps.real_stats, lb->o.max_reals);
	bpf_map__set_max_entries(lb->skel->maps.vip_stats, lb->o.max_vips);
	bpf_map__set_max_entries(lb->skel->maps.vip_state, lb->o.max_vips);
	bpf_map__set_max_entries(lb->skel->maps.conn_map, lb->o.conn_max);
	bpf_map__set_max_entries(lb->skel->maps.conn_cache, lb->o.conn_cache_slots);
	if (lb->o.pin_dir) {
		err = pin_prepare(lb);
		if (err)
			goto out_skel;
	}
	err = balancer_bpf__load(lb->skel);
	if (err) {
		if (lb->adopted)
			log_err("the maps pinned in %s do not fit this configuration (max VIPs, "
				"reals or conn_table_size changed?): stop the old dataplane with "
				"`lbctl shutdown` first",
				lb->pin_dir);
		goto out_skel;
	}
	if (lb->old_version && !lb->adopted) {
		err = migrate_v1(lb);
		if (err)
			goto out_unpin;
	}
	if (lb->adopted) {
		err = adopt_read(lb);
		if (err)
			goto out_skel;
	}
	/* Adopted or migrated VIPs are live in vip_map: the filter and the
	 * state the datapath reads first must agree before it is attached.
	 * The filter's pinned words are read back so that only what differs
	 * is written. */
	for (uint32_t w = 0; lb->adopted && w < LB_VIP_FILTER_WORDS; w++)
		bpf_map__lookup_elem(lb->skel->maps.vip_filter, &w, sizeof(w), &lb->filter[w],
				     sizeof(lb->filter[w]), 0);
	if ((lb->adopted || lb->old_version) && (err = vip_derived_sync(lb, true)))
		goto out_skel;
	return lb;

out_unpin:
	/* The half-made maps of a failed migration would be adopted as if
	 * complete by the next start. */
	unpin_all(lb);

out_skel:
	balancer_bpf__destroy(lb->skel);
out_free:
	if (lb->old_conn_fd >= 0)
		close(lb->old_conn_fd);
	free(lb->vips);
	free(lb->reals);
	free(lb->free_ids);
	free(lb->ring);
	free(lb->ring_keys);
	free(lb);
out_err:
	errno = -err;
	return NULL;
}

/* Remove this layout's pins and its directory (teardown). */
static void unpin_all(struct l4lb *lb)
{
	struct bpf_map *m;

	if (!lb->pin_dir[0])
		return;
	bpf_object__for_each_map(m, lb->skel->obj)
	{
		if (map_pinned(lb, m))
			bpf_map__unpin(m, NULL);
	}
	rmdir(lb->pin_dir);
}

/*
 * After this lbd's program took the interface over from an older layout's:
 * copy the flows the old program made since migrate_v1 read its table
 * (what the new one made since wins), then remove the old pins, which
 * frees its maps once its tc program is replaced too.
 */
static void old_layout_retire(struct l4lb *lb)
{
	char path[600];
	long flows;

	if (lb->old_conn_fd < 0)
		return;
	flows = hash_copy(lb->old_conn_fd, bpf_map__fd(lb->skel->maps.conn_map),
			  sizeof(struct lb_flow_key), sizeof(struct lb_conn), BPF_NOEXIST,
			  4L * lb->o.conn_max);
	if (flows < 0)
		log_warn("copying the last flows of the layout-%d dataplane: %s", lb->old_version,
			 strerror((int)-flows));
	else
		log_info("took over from the layout-%d dataplane: %ld more flows; removing its "
			 "pins from %s",
			 lb->old_version, flows, lb->pin_root);
	close(lb->old_conn_fd);
	lb->old_conn_fd = -1;
	for (size_t i = 0; i < sizeof(v1_maps) / sizeof(v1_maps[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", lb->pin_root, v1_maps[i]);
		if (unlink(path) && errno != ENOENT)
			log_warn("removing %s: %s", path, strerror(errno));
	}
	lb->old_version = 0;
}

/* ctl.live = 1: this layout's program has been attached (diagnostics). */
static void mark_live(struct l4lb *lb)
{
	struct lb_ctl ctl;
	uint32_t zero = 0;

	if (bpf_map__lookup_elem(lb->skel->maps.ctl_map, &zero, sizeof(zero), &ctl, sizeof(ctl),
				 0) == 0 &&
	    !ctl.live) {
		ctl.live = 1;
		bpf_map__update_elem(lb->skel->maps.ctl_map, &zero, sizeof(zero), &ctl, sizeof(ctl),
				     BPF_ANY);
	}
}

static void lb_free(struct l4lb *lb)
{
	lb_nl_monitor_close(lb->mon);
	if (lb->old_conn_fd >= 0)
		close(lb->old_conn_fd);
	balancer_bpf__destroy(lb->skel);
	adopt_free(lb);
	for (uint32_t i = 0; i < lb->o.max_vips; i++)
		free(lb->vips[i].reals);
	free(lb->vips);
	free(lb->reals);
	free(lb->free_ids);
	free(lb->ring);
	free(lb->ring_keys);
	free(lb);
}

static void hc_detach(struct l4lb *lb)
{
	DECLARE_LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = lb->hc_ifindex,
			    .attach_point = BPF_TC_EGRESS);
	DECLARE_LIBBPF_OPTS(bpf_tc_opts, opts, .handle = LB_HC_TC_HANDLE, .priority = 1);

	bpf_tc_detach(&hook, &opts);
	lb->hc_ifindex = 0;
}

void l4lb_close(struct l4lb *lb)
{
	if (!lb)
		return;
	if (lb->ifindex > 0)
		bpf_xdp_detach(lb->ifindex, lb->xdp_flags, NULL);
	if (lb->hc_ifindex > 0)
		hc_detach(lb);
	unpin_all(lb);
	lb_free(lb);
}

void l4lb_release(struct l4lb *lb)
{
	if (lb)
		lb_free(lb);
}

bool l4lb_adopted(const struct l4lb *lb)
{
	return lb->adopted;
}

int l4lb_attach(struct l4lb *lb, int ifindex, bool generic)
{
	uint32_t flags = generic ? XDP_FLAGS_SKB_MODE : XDP_FLAGS_DRV_MODE;
	int err;

	err = bpf_xdp_attach(ifindex, bpf_program__fd(lb->skel->progs.lb_balancer), flags, NULL);
	if (err)
		return err;
	lb->ifindex = ifindex;
	lb->xdp_flags = flags;
	mark_live(lb);
	old_layout_retire(lb);
	return 0;
}

int l4lb_attach_hc(struct l4lb *lb, int ifindex)
{
	DECLARE_LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = BPF_TC_EGRESS);
	DECLARE_LIBBPF_OPTS(bpf_tc_opts, opts, .handle = LB_HC_TC_HANDLE, .priority = 1,
			    .prog_fd = bpf_program__fd(lb->skel->progs.lb_hc_encap),
			    .flags = BPF_TC_F_REPLACE);
	libbpf_print_fn_t print;
	int err;

	/* The clsact qdisc may be there already (an adopted dataplane's, or
	 * another tool's): -EEXIST is fine, and libbpf's kernel message
	 * about it is noise. */
	print = libbpf_set_print(NULL);
	err = bpf_tc_hook_create(&hook);
	libbpf_set_print(print);
	if (err && err != -EEXIST)
		return err;
	err = bpf_tc_attach(&hook, &opts);
	if (err)
		return err;
	lb->hc_ifindex = ifindex;
	return 0;
}

int l4lb_set_source(struct l4lb *lb, const struct lb_addr *src4, const struct lb_addr *src6)
{
	struct lb_ctl ctl = {0};
	uint32_t zero = 0;

	if (bpf_map__lookup_elem(lb->skel->maps.ctl_map, &zero, sizeof(zero), &ctl, sizeof(ctl), 0))
		return -errno;
	if (src4)
		memcpy(&ctl.src4, src4->bytes, 4);
	if (src6)
		memcpy(ctl.src6, src6->bytes, 16);
	ctl.ring_size = lb->o.ring_size;
	ctl.hash_seed = lb->o.hash_seed;
	ctl.flow_hash = (uint16_t)lb->o.flow_hash;
	ctl.maps_version = LB_MAPS_VERSION;
	ctl.gue_port = htons(lb->o.gue_port ? lb->o.gue_port : LB_GUE_PORT_DEFAULT);
	if (bpf_map__update_elem(lb->skel->maps.ctl_map, &zero, sizeof(zero), &ctl, sizeof(ctl),
				 BPF_ANY))
		return -errno;
	return 0;
}

static struct vip *vip_lookup(struct l4lb *lb, const struct l4lb_vip_key *key, uint32_t *id)
{
	for (uint32_t i = 0; i < lb->o.max_vips; i++) {
		if (lb->vips[i].used && vip_key_equal(&lb->vips[i].key, key)) {
			if (id)
				*id = i;
			return &lb->vips[i];
		}
	}
	return NULL;
}

/*
 * Build the VIP's ring into its idle half and make that half live. Packets
 * in flight read either the old or the new ring, both complete.
 */
static void portless_drop(struct l4lb *lb, const struct l4lb_vip_key *key, uint32_t self);

static int vip_rebuild(struct l4lb *lb, uint32_t id)
{
	struct vip *v = &lb->vips[id];
	struct maglev_real *mr = NULL;
	uint32_t half = v->half ^ 1, base, count;
	struct lb_vip_key bk;
	struct lb_vip_meta meta = {.vip_id = id, .ring_half = half, .flags = v->flags};
	int fd = bpf_map__fd(lb->skel->maps.ring_map);
	int err;

	if (v->n_reals) {
		mr = calloc(v->n_reals, sizeof(*mr));
		if (!mr)
			return -ENOMEM;
	}
	for (size_t i = 0; i < v->n_reals; i++) {
		mr[i].addr = v->reals[i].addr;
		mr[i].id = v->reals[i].id;
		mr[i].weight = v->reals[i].down ? 0 : v->reals[i].weight;
	}
	err = maglev_build(mr, v->n_reals, lb->ring, lb->o.ring_size);
	free(mr);
	if (err)
		return err;

	base = (id * 2 + half) * lb->o.ring_size;
	for (uint32_t i = 0; i < lb->o.ring_size; i++)
		lb->ring_keys[i] = base + i;
	count = lb->o.ring_size;
	if (bpf_map_update_batch(fd, lb->ring_keys, lb->ring, &count, NULL)) {
		/* Older kernels lack batch ops on arrays: one by one. */
		for (uint32_t i = 0; i < lb->o.ring_size; i++)
			if (bpf_map_update_elem(fd, &lb->ring_keys[i], &lb->ring[i], BPF_ANY))
				return -errno;
	}
	/* The port-less entry (fragments read it) first: if it cannot be
	 * written nothing has gone live and the VIP keeps its half. Then the
	 * VIP's own entry, after which the new half is the live one. */
	vip_key_to_bpf(&v->key, &bk, false);
	bk.port = 0;
	if ((v->flags & LB_VIP_F_HASH_3TUPLE) &&
	    bpf_map__update_elem(lb->skel->maps.vip_map, &bk, sizeof(bk), &meta, sizeof(meta),
				 BPF_ANY))
		return -errno;
	vip_key_to_bpf(&v->key, &bk, false);
	/* The state before the entry: an established flow of this VIP may
	 * be forwarded from its conn-table entry as soon as the VIP is live,
	 * and with the flags (GUE) the entry goes live with. */
	if ((err = vip_state_write(lb, id, &bk, v->flags)))
		return err;
	if (bpf_map__update_elem(lb->skel->maps.vip_map, &bk, sizeof(bk), &meta, sizeof(meta),
				 BPF_ANY)) {
		err = -errno;
		vip_state_from_map(lb, id, &v->key); /* what is live, not what failed */
		return err;
	}
	v->half = half;
	v->dirty = false;
	if (!(v->flags & LB_VIP_F_HASH_3TUPLE))
		portless_drop(lb, &v->key, id);
	return 0;
}

/* Remove the port-less entry of key's address and protocol unless another
 * 3-tuple VIP than self owns it. */
static void portless_drop(struct l4lb *lb, const struct l4lb_vip_key *key, uint32_t self)
{
	struct lb_vip_key bk;

	for (uint32_t i = 0; i < lb->o.max_vips; i++)
		if (i != self && lb->vips[i].used && (lb->vips[i].flags & LB_VIP_F_HASH_3TUPLE) &&
		    lb->vips[i].key.proto == key->proto &&
		    lb_addr_equal(&lb->vips[i].key.addr, &key->addr))
			return;
	vip_key_to_bpf(key, &bk, false);
	bk.port = 0;
	bpf_map__delete_elem(lb->skel->maps.vip_map, &bk, sizeof(bk), 0);
}

static bool addr_in_other_vip(struct l4lb *lb, const struct l4lb_vip_key *key, uint32_t self)
{
	for (uint32_t i = 0; i < lb->o.max_vips; i++)
		if (i != self && lb->vips[i].used &&
		    lb_addr_equal(&lb->vips[i].key.addr, &key->addr))
			return true;
	return false;
}

/* A VIP's reals changed: rebuild now, or at the end of the batch. */
static int vip_changed(struct l4lb *lb, uint32_t id)
{
	if (lb->batch) {
		lb->vips[id].dirty = true;
		return 0;
	}
	return vip_rebuild(lb, id);
}

int l4lb_vip_set_flags(struct l4lb *lb, const struct l4lb_vip_key *key, uint32_t flags)
{
	struct vip *v;
	uint32_t id;

	if (flags & ~(LB_VIP_F_HASH_3TUPLE | LB_VIP_F_ENCAP_GUE))
		return -EINVAL;
	v = vip_lookup(lb, key, &id);
	if (!v)
		return -ENOENT;
	if (v->flags == flags)
		return 0;
	/* A 3-tuple VIP takes every fragment to its address and protocol:
	 * no other VIP may share them, or their fragments would be its. */
	if (flags & LB_VIP_F_HASH_3TUPLE)
		for (uint32_t i = 0; i < lb->o.max_vips; i++)
			if (i != id && lb->vips[i].used && lb->vips[i].key.proto == key->proto &&
			    lb_addr_equal(&lb->vips[i].key.addr, &key->addr))
				return -EBUSY;
	v->flags = flags;
	return vip_changed(lb, id);
}

void l4lb_batch_begin(struct l4lb *lb)
{
	lb->batch++;
}

/* The adopted VIPs nobody claimed: out of vip_map (ids were held back). */
static void adopt_finish(struct l4lb *lb)
{
	struct lb_vip_key bk;

	for (size_t i = 0; i < lb->adopt->n; i++) {
		const struct adopt_vip *av = &lb->adopt->vips[i];
		char name[LB_ADDR_STRLEN];

		if (av->claimed)
			continue;
		vip_state_write(lb, av->id, NULL, 0);
		vip_key_to_bpf(&av->key, &bk, false);
		bpf_map__delete_elem(lb->skel->maps.vip_map, &bk, sizeof(bk), 0);
		if (!addr_in_other_vip(lb, &av->key, UINT32_MAX)) {
			vip_key_to_bpf(&av->key, &bk, true);
			bpf_map__delete_elem(lb->skel->maps.vip_map, &bk, sizeof(bk), 0);
		}
		portless_drop(lb, &av->key, UINT32_MAX);
		log_info("adopted VIP %s port %u is not configured any more: removed",
			 lb_addr_str(&av->key.addr, name, sizeof(name)), av->key.port);
	}
	/* The unclaimed ones' state and bits (their ids are free now). */
	vip_derived_sync(lb, true);
	adopt_free(lb);
}

int l4lb_batch_end(struct l4lb *lb)
{
	int first = 0;

	if (!lb->batch || --lb->batch)
		return 0;
	for (uint32_t i = 0; i < lb->o.max_vips; i++) {
		int err;

		if (!lb->vips[i].used || !lb->vips[i].dirty)
			continue;
		err = vip_rebuild(lb, i);
		if (err && !first)
			first = err;
	}
	if (lb->adopt && !first)
		adopt_finish(lb);
	return first;
}

bool l4lb_adopted_live(const struct l4lb *lb, const struct l4lb_vip_key *vk,
		       const struct lb_addr *addr)
{
	const struct adopt_vip *av = adopt_vip_find(lb, vk);

	if (!av)
		return false;
	for (uint32_t id = 1; id < lb->o.max_reals; id++)
		if (lb_addr_equal(&lb->adopt->real_addr[id], addr))
			return bit_get(av->live, id);
	return false;
}

/* An unclaimed adopted VIP's id: still live until the batch ends. */
static bool adopt_id_held(const struct l4lb *lb, uint32_t id)
{
	if (!lb->adopt)
		return false;
	for (size_t i = 0; i < lb->adopt->n; i++)
		if (lb->adopt->vips[i].id == id && !lb->adopt->vips[i].claimed)
			return true;
	return false;
}

int l4lb_vip_add(struct l4lb *lb, const struct l4lb_vip_key *key)
{
	struct lb_vip_meta addr_meta = {0};
	struct adopt_vip *av;
	struct lb_vip_key bk;
	uint32_t id;
	int err;

	if ((key->proto != IPPROTO_TCP && key->proto != IPPROTO_UDP) || !key->port ||
	    (key->addr.family != LB_AF_INET && key->addr.family != LB_AF_INET6))
		return -EINVAL;
	if (vip_lookup(lb, key, NULL))
		return -EEXIST;
	for (id = 0; id < lb->o.max_vips; id++)
		if (lb->vips[id].used && (lb->vips[id].flags & LB_VIP_F_HASH_3TUPLE) &&
		    lb->vips[id].key.proto == key->proto &&
		    lb_addr_equal(&lb->vips[id].key.addr, &key->addr))
			return -EBUSY; /* its fragments would be the 3-tuple VIP's */
	av = lb->batch ? adopt_vip_find(lb, key) : NULL;
	if (av && !av->claimed && !lb->vips[av->id].used) {
		/* Adopted: keep its id and live half; the batch's end builds
		 * the same ring into the other half. */
		av->claimed = true;
		lb->vips[av->id] =
		    (struct vip){.used = true, .dirty = true, .half = av->half, .key = *key};
		return 0;
	}
	/* Round-robin search for a free id, so a deleted VIP's id (and any
	 * conn-table entries naming it) is reused as late as possible. */
	for (id = 0; id < lb->o.max_vips; id++) {
		uint32_t cand = (lb->next_vip + id) % lb->o.max_vips;

		if (!lb->vips[cand].used && !adopt_id_held(lb, cand)) {
			id = cand;
			break;
		}
	}
	if (id == lb->o.max_vips)
		return -ENOSPC;
	/* The filter bit first: until it is set the datapath passes packets
	 * to this address without looking at vip_map. */
	if ((err = filter_set(lb, &key->addr)))
		return err;
	lb->next_vip = (id + 1) % lb->o.max_vips;
	lb->vips[id] = (struct vip){.used = true, .half = 1, .key = *key};

	/* An empty ring (all LB_REAL_NONE) goes live first: a recycled id must
	 * not expose the previous owner's ring. In a batch nothing goes live
	 * before the batch's end builds the full ring. */
	err = vip_changed(lb, id);
	if (err)
		goto out_unuse;
	/* The address-only entry lets the datapath recognise fragments to a
	 * VIP address; its meta is never read. */
	vip_key_to_bpf(key, &bk, true);
	if (bpf_map__update_elem(lb->skel->maps.vip_map, &bk, sizeof(bk), &addr_meta,
				 sizeof(addr_meta), BPF_ANY)) {
		err = -errno;
		vip_key_to_bpf(key, &bk, false);
		bpf_map__delete_elem(lb->skel->maps.vip_map, &bk, sizeof(bk), 0);
		goto out_unuse;
	}
	return 0;
out_unuse:
	vip_state_from_map(lb, id, key); /* the entry is gone (or never was) */
	lb->vips[id].used = false;
	return err;
}

static int nexthop_update(struct l4lb *lb, uint32_t id);

static uint32_t real_get(struct l4lb *lb, const struct lb_addr *addr, int *err)
{
	struct lb_real r = {0};
	uint32_t id;

	for (id = 1; id < lb->o.max_reals; id++)
		if (lb->reals[id].refs && lb_addr_equal(&lb->reals[id].addr, addr)) {
			lb->reals[id].refs++;
			return id;
		}
	if (!lb->free_count) {
		*err = -ENOSPC;
		return LB_REAL_NONE;
	}
	id = lb->free_ids[lb->free_head];
	if (lb->adopt) {
		/* Keep the id the adopted dataplane knows this address by: its
		 * rings and connection table name it. */
		for (uint32_t i = 0; i < lb->free_count; i++) {
			uint32_t pos = (lb->free_head + i) % lb->o.max_reals;
			uint32_t cand = lb->free_ids[pos];

			if (!lb_addr_equal(&lb->adopt->real_addr[cand], addr))
				continue;
			/* Take it out: the head moves into its place. */
			lb->free_ids[pos] = lb->free_ids[lb->free_head];
			id = cand;
			break;
		}
	}
	memcpy(r.addr, addr->bytes, 16);
	r.family = addr->family;
	r.encap = LB_ENCAP_IPIP;
	if (bpf_map__update_elem(lb->skel->maps.reals_map, &id, sizeof(id), &r, sizeof(r),
				 BPF_ANY)) {
		*err = -errno;
		return LB_REAL_NONE;
	}
	lb->free_head = (lb->free_head + 1) % lb->o.max_reals;
	lb->free_count--;
	lb->reals[id] = (struct real_slot){.addr = *addr, .refs = 1};
	/* Not fatal: without a cached next hop packets take the FIB. */
	nexthop_update(lb, id);
	return id;
}

/*
 * Resolve real id's next hop (netlink) and write it into its reals_map
 * entry if it changed; an unresolved one clears the cache, so packets take
 * the FIB. Returns 0 when a next hop is cached, else -errno (-EAGAIN: the
 * neighbour is not resolved yet).
 */
static int nexthop_update(struct l4lb *lb, uint32_t id)
{
	struct real_slot *rs = &lb->reals[id];
	struct lb_nl_nexthop nh;
	struct lb_real r, want;
	int err;

	err = lb_nl_nexthop(&rs->addr, &nh);
	rs->nh_ifindex = nh.ifindex; /* 0 when there was no route */
	rs->nh_gw = nh.gw;
	if (bpf_map__lookup_elem(lb->skel->maps.reals_map, &id, sizeof(id), &r, sizeof(r), 0))
		return -errno;
	want = r;
	want.nh_ifindex = 0;
	want.nh_mtu = 0;
	want.nh_pad = 0;
	memset(want.nh_dmac, 0, sizeof(want.nh_dmac));
	memset(want.nh_smac, 0, sizeof(want.nh_smac));
	if (!err) {
		want.nh_ifindex = (uint32_t)nh.ifindex;
		want.nh_mtu = nh.mtu > 0xffff ? 0xffff : (uint16_t)nh.mtu;
		memcpy(want.nh_dmac, nh.dmac, 6);
		memcpy(want.nh_smac, nh.smac, 6);
	}
	if (memcmp(&want, &r, sizeof(r)) &&
	    bpf_map__update_elem(lb->skel->maps.reals_map, &id, sizeof(id), &want, sizeof(want),
				 BPF_EXIST))
		return -errno;
	return err;
}

static void real_put(struct l4lb *lb, uint32_t id)
{
	if (--lb->reals[id].refs)
		return;
	/* Leave reals_map[id] in place: established flows still use it. */
	lb->free_ids[(lb->free_head + lb->free_count) % lb->o.max_reals] = id;
	lb->free_count++;
}

int l4lb_vip_del(struct l4lb *lb, const struct l4lb_vip_key *key)
{
	struct lb_vip_key bk;
	struct vip *v;
	uint32_t id;
	int err;

	v = vip_lookup(lb, key, &id);
	if (!v)
		return -ENOENT;
	/* No established flow is forwarded past vip_map once it is gone. */
	if ((err = vip_state_write(lb, id, NULL, 0)))
		return err;
	vip_key_to_bpf(key, &bk, false);
	if (bpf_map__delete_elem(lb->skel->maps.vip_map, &bk, sizeof(bk), 0) && errno != ENOENT)
		return -errno;
	if (!addr_in_other_vip(lb, key, id)) {
		vip_key_to_bpf(key, &bk, true);
		bpf_map__delete_elem(lb->skel->maps.vip_map, &bk, sizeof(bk), 0);
	}
	if (v->flags & LB_VIP_F_HASH_3TUPLE)
		portless_drop(lb, key, id);
	for (size_t i = 0; i < v->n_reals; i++)
		real_put(lb, v->reals[i].id);
	free(v->reals);
	*v = (struct vip){0};
	vip_derived_sync(lb, false); /* its address's bit, if no VIP is left on it */
	return 0;
}

static ssize_t vip_real_index(const struct vip *v, const struct lb_addr *addr)
{
	for (size_t i = 0; i < v->n_reals; i++)
		if (lb_addr_equal(&v->reals[i].addr, addr))
			return (ssize_t)i;
	return -1;
}

int l4lb_real_add(struct l4lb *lb, const struct l4lb_vip_key *vk, const struct lb_addr *addr,
		  uint32_t weight)
{
	uint32_t vid, rid;
	struct vip *v;
	int err = 0;

	v = vip_lookup(lb, vk, &vid);
	if (!v)
		return -ENOENT;
	if (addr->family != LB_AF_INET && addr->family != LB_AF_INET6)
		return -EINVAL;
	if (vip_real_index(v, addr) >= 0)
		return -EEXIST;
	if (v->n_reals == v->cap) {
		size_t cap = v->cap ? v->cap * 2 : 8;
		struct l4lb_real_info *n = realloc(v->reals, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		v->reals = n;
		v->cap = cap;
	}
	rid = real_get(lb, addr, &err);
	if (rid == LB_REAL_NONE)
		return err;
	v->reals[v->n_reals++] =
	    (struct l4lb_real_info){.addr = *addr, .weight = weight, .id = rid};
	err = vip_changed(lb, vid);
	if (err) {
		v->n_reals--;
		real_put(lb, rid);
	}
	return err;
}

/* The entry of real addr in VIP vk (and the VIP's id), or NULL. */
static struct l4lb_real_info *vip_real_find(struct l4lb *lb, const struct l4lb_vip_key *vk,
					    const struct lb_addr *addr, uint32_t *vid)
{
	struct vip *v = vip_lookup(lb, vk, vid);
	ssize_t i = v ? vip_real_index(v, addr) : -1;

	return i < 0 ? NULL : &v->reals[i];
}

int l4lb_real_del(struct l4lb *lb, const struct l4lb_vip_key *vk, const struct lb_addr *addr)
{
	struct l4lb_real_info *r, gone;
	struct vip *v;
	uint32_t vid;
	int err;

	r = vip_real_find(lb, vk, addr, &vid);
	if (!r)
		return -ENOENT;
	v = &lb->vips[vid];
	gone = *r;
	*r = v->reals[--v->n_reals];
	err = vip_changed(lb, vid);
	if (err) {
		v->reals[v->n_reals++] = gone;
		return err;
	}
	real_put(lb, gone.id);
	return 0;
}

int l4lb_real_set_weight(struct l4lb *lb, const struct l4lb_vip_key *vk, const struct lb_addr *addr,
			 uint32_t weight)
{
	struct l4lb_real_info *r;
	uint32_t vid, old;
	int err;

	r = vip_real_find(lb, vk, addr, &vid);
	if (!r)
		return -ENOENT;
	old = r->weight;
	r->weight = weight;
	err = vip_changed(lb, vid);
	if (err)
		r->weight = old;
	return err;
}

int l4lb_real_set_down(struct l4lb *lb, const struct l4lb_vip_key *vk, const struct lb_addr *addr,
		       bool down)
{
	struct l4lb_real_info *r;
	uint32_t vid;
	int err;

	r = vip_real_find(lb, vk, addr, &vid);
	if (!r)
		return -ENOENT;
	if (r->down == down)
		return 0;
	r->down = down;
	err = vip_changed(lb, vid);
	if (err)
		r->down = !down;
	return err;
}

uint32_t l4lb_real_id(const struct l4lb *lb, const struct lb_addr *addr)
{
	for (uint32_t id = 1; id < lb->o.max_reals; id++)
		if (lb->reals[id].refs && lb_addr_equal(&lb->reals[id].addr, addr))
			return id;
	return LB_REAL_NONE;
}

static void vip_info(struct l4lb *lb, uint32_t id, struct l4lb_vip_info *out)
{
	out->key = lb->vips[id].key;
	out->id = id;
	out->flags = lb->vips[id].flags;
	out->n_reals = lb->vips[id].n_reals;
	out->reals = lb->vips[id].reals;
}

int l4lb_vip_foreach(struct l4lb *lb, int (*fn)(void *ctx, const struct l4lb_vip_info *vip),
		     void *ctx)
{
	for (uint32_t i = 0; i < lb->o.max_vips; i++) {
		struct l4lb_vip_info info;
		int rc;

		if (!lb->vips[i].used)
			continue;
		vip_info(lb, i, &info);
		rc = fn(ctx, &info);
		if (rc)
			return rc;
	}
	return 0;
}

int l4lb_vip_find(struct l4lb *lb, const struct l4lb_vip_key *key, struct l4lb_vip_info *out)
{
	uint32_t id;

	if (!vip_lookup(lb, key, &id))
		return -ENOENT;
	vip_info(lb, id, out);
	return 0;
}

int l4lb_ring_pick(struct l4lb *lb, const struct l4lb_vip_key *vip, const struct lb_flow_key *flow,
		   struct lb_addr *real)
{
	uint32_t id, slot, real_id;
	struct vip *v = vip_lookup(lb, vip, &id);

	if (!v)
		return -ENOENT;
	slot = (id * 2 + v->half) * lb->o.ring_size +
	       lb_flow_hash_v(flow, lb->o.hash_seed, lb->o.flow_hash) % lb->o.ring_size;
	if (bpf_map__lookup_elem(lb->skel->maps.ring_map, &slot, sizeof(slot), &real_id,
				 sizeof(real_id), 0))
		return -errno;
	if (real_id == LB_REAL_NONE || real_id >= lb->o.max_reals ||
	    !lb->reals[real_id].addr.family)
		return -ENODATA;
	*real = lb->reals[real_id].addr;
	return 0;
}

static int percpu_sum(struct l4lb *lb, struct bpf_map *map, uint32_t key, struct lb_counter *out)
{
	struct lb_counter vals[lb->ncpus];

	memset(out, 0, sizeof(*out));
	if (bpf_map__lookup_elem(map, &key, sizeof(key), vals, sizeof(vals), 0))
		return -errno;
	for (int c = 0; c < lb->ncpus; c++) {
		out->packets += vals[c].packets;
		out->bytes += vals[c].bytes;
	}
	return 0;
}

int l4lb_stats_global(struct l4lb *lb, struct lb_counter out[LB_CNT_MAX])
{
	struct lb_counters *vals = calloc(lb->ncpus, sizeof(*vals));
	uint32_t zero = 0;
	int err = 0;

	if (!vals)
		return -ENOMEM;
	if (bpf_map__lookup_elem(lb->skel->maps.lb_counters, &zero, sizeof(zero), vals,
				 lb->ncpus * sizeof(*vals), 0)) {
		err = -errno;
		goto out;
	}
	memset(out, 0, LB_CNT_MAX * sizeof(*out));
	for (int c = 0; c < lb->ncpus; c++) {
		for (uint32_t i = 0; i < LB_CNT_MAX; i++) {
			out[i].packets += vals[c].c[i].packets;
			out[i].bytes += vals[c].c[i].bytes;
		}
	}
out:
	free(vals);
	return err;
}

int l4lb_stats_vip(struct l4lb *lb, uint32_t vip_id, struct lb_counter *out)
{
	return percpu_sum(lb, lb->skel->maps.vip_stats, vip_id, out);
}

int l4lb_stats_real(struct l4lb *lb, uint32_t real_id, struct lb_counter *out)
{
	return percpu_sum(lb, lb->skel->maps.real_stats, real_id, out);
}

int l4lb_refresh_neighbors(struct l4lb *lb)
{
	int failed = 0;

	for (uint32_t id = 1; id < lb->o.max_reals; id++) {
		struct real_slot *rs = &lb->reals[id];
		char buf[LB_ADDR_STRLEN];
		int err;

		if (!rs->addr.family)
			continue;
		/* A free id too: established flows may still go there. */
		err = nexthop_update(lb, id);
		if (!rs->refs)
			continue;
		/* The route is known (nexthop_update recorded where it leads)
		 * even while the neighbour is not: have it resolved. */
		if (rs->nh_ifindex)
			err = lb_nl_neigh_ensure(rs->nh_ifindex, &rs->nh_gw);
		if (err) {
			log_warn("real %s: cannot prepare next hop: %s",
				 lb_addr_str(&rs->addr, buf, sizeof(buf)), strerror(-err));
			failed++;
		}
	}
	return failed;
}

/* Resolve every real's next hop again. Returns how many reals in use have
 * none cached; *pending (may be NULL) gets how many of them wait for
 * their neighbour. */
static int nexthops_update(struct l4lb *lb, int *pending)
{
	int uncached = 0, err;

	if (pending)
		*pending = 0;
	for (uint32_t id = 1; id < lb->o.max_reals; id++) {
		if (!lb->reals[id].addr.family)
			continue;
		err = nexthop_update(lb, id);
		if (!err || !lb->reals[id].refs)
			continue;
		uncached++;
		if (pending && err == -EAGAIN)
			(*pending)++;
	}
	return uncached;
}

int l4lb_nexthops_refresh(struct l4lb *lb)
{
	return nexthops_update(lb, NULL);
}

int l4lb_netlink_fd(struct l4lb *lb)
{
	if (!lb->mon) {
		lb->mon = lb_nl_monitor_open();
		if (!lb->mon)
			return -errno;
	}
	return lb_nl_monitor_fd(lb->mon);
}

struct neigh_hit {
	struct l4lb *lb;
	uint8_t *mark; /* bitmap over real ids */
};

static void neigh_event(void *ctx, int ifindex, const struct lb_addr *addr)
{
	struct neigh_hit *h = ctx;

	for (uint32_t id = 1; id < h->lb->o.max_reals; id++)
		if (h->lb->reals[id].nh_ifindex == ifindex &&
		    lb_addr_equal(&h->lb->reals[id].nh_gw, addr))
			bit_set(h->mark, id);
}

int l4lb_netlink_process(struct l4lb *lb)
{
	struct neigh_hit h = {.lb = lb};
	int ev, n = 0;

	if (!lb->mon)
		return -EINVAL;
	h.mark = calloc((lb->o.max_reals + 7) / 8, 1);
	if (!h.mark)
		return -ENOMEM;
	ev = lb_nl_monitor_read(lb->mon, neigh_event, &h);
	if (ev < 0) {
		free(h.mark);
		return ev;
	}
	for (uint32_t id = 1; id < lb->o.max_reals; id++) {
		if (!lb->reals[id].addr.family || !((ev & LB_NL_EV_ROUTE) || bit_get(h.mark, id)))
			continue;
		nexthop_update(lb, id);
		n++;
	}
	free(h.mark);
	return n;
}

int l4lb_wait_neighbors(struct l4lb *lb, int timeout_ms)
{
	int pending = 0;

	for (int waited = 0; waited <= timeout_ms; waited += 20) {
		nexthops_update(lb, &pending);
		if (!pending)
			break;
		usleep(20000);
	}
	return pending;
}

int l4lb_prog_fd(const struct l4lb *lb)
{
	return bpf_program__fd(lb->skel->progs.lb_balancer);
}

int l4lb_hc_prog_fd(const struct l4lb *lb)
{
	return bpf_program__fd(lb->skel->progs.lb_hc_encap);
}

void l4lb_clock_tick(struct l4lb *lb)
{
	/* One writer (lbd's loop); an aligned 32-bit store is atomic. */
	lb->skel->bss->cache_clock++;
}

int l4lb_conn_map_fd(const struct l4lb *lb)
{
	return bpf_map__fd(lb->skel->maps.conn_map);
}

uint32_t l4lb_ring_size(const struct l4lb *lb)
{
	return lb->o.ring_size;
}
