// SPDX-License-Identifier: GPL-2.0-only
/*
 * katran_anchor.c - load and configure Katran's balancer for the benchmark
 * (see katran_anchor.h and /work/shared/anchors/katran/README.md).
 *
 * The structs below mirror Katran's balancer_structs.h for the object's
 * default build. The map key and value sizes are checked against the
 * object before anything is written, so an object built from another
 * Katran version fails with a message instead of being misconfigured.
 */
#include "katran_anchor.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lb_abi.h"
#include "maglev.h"

/* Katran's compile-time constants (balancer_consts.h, default build). */
#define KATRAN_RING_SIZE	 65537
#define KATRAN_MAX_VIPS		 512
#define KATRAN_MAX_REALS	 4096
#define KATRAN_MAX_CPUS		 128 /* lru_mapping's size: MAX_SUPPORTED_CPUS */
#define KATRAN_F_IPV6		 1
#define KATRAN_NEW_CONN_RATE_CNT 2 /* stats[MAX_VIPS + NEW_CONN_RATE_CNTR] */

/* Addresses: an IPv4 address in the first 4 bytes, network order, like
 * Katran's unions of __be32 and __be32[4] (and like struct lb_addr). */
struct katran_vip_definition {
	uint8_t addr[16];
	uint16_t port; /* network order */
	uint8_t proto;
	uint8_t pad;
};
_Static_assert(sizeof(struct katran_vip_definition) == 20, "vip_definition");

struct katran_vip_meta {
	uint32_t flags;
	uint32_t vip_num;
};
_Static_assert(sizeof(struct katran_vip_meta) == 8, "vip_meta");

struct katran_real_definition {
	uint8_t addr[16];
	uint8_t flags;
	uint8_t pad[3];
};
_Static_assert(sizeof(struct katran_real_definition) == 20, "real_definition");

struct katran_flow_key {
	uint8_t src[16];
	uint8_t dst[16];
	uint16_t port16[2]; /* source, destination; network order */
	uint8_t proto;
	uint8_t pad[3];
};
_Static_assert(sizeof(struct katran_flow_key) == 40, "flow_key");

struct katran_real_pos_lru {
	uint32_t pos;
	uint32_t pad;
	uint64_t atime;
};
_Static_assert(sizeof(struct katran_real_pos_lru) == 16, "real_pos_lru");

struct katran_lb_stats {
	uint64_t v1;
	uint64_t v2;
};

struct katran_ctl_value {
	uint8_t mac[6];
	uint8_t pad[2];
};
_Static_assert(sizeof(struct katran_ctl_value) == 8, "ctl_value");

struct katran_anchor {
	struct bpf_object *obj;
	int prog_fd;
	int stats_fd;
	int ncpus;
	int lru_fd[KATRAN_MAX_CPUS];
	struct katran_lb_stats *zeros; /* ncpus entries, for the flood reset */
};

static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* The map, if its key and value sizes are what we are about to write. */
static struct bpf_map *find_map(struct bpf_object *obj, const char *name, uint32_t key,
				uint32_t value, char *err, size_t errlen)
{
	struct bpf_map *m = bpf_object__find_map_by_name(obj, name);

	if (!m) {
		seterr(err, errlen, "no map %s in the object", name);
		return NULL;
	}
	if (bpf_map__key_size(m) != key || bpf_map__value_size(m) != value) {
		seterr(err, errlen,
		       "map %s: key/value %u/%u bytes, expected %u/%u (another Katran "
		       "version?)",
		       name, bpf_map__key_size(m), bpf_map__value_size(m), key, value);
		return NULL;
	}
	return m;
}

static int lru_create(uint32_t size)
{
	return bpf_map_create(BPF_MAP_TYPE_LRU_HASH, "katran_lru", sizeof(struct katran_flow_key),
			      sizeof(struct katran_real_pos_lru), size, NULL);
}

/* One VIP: its vip_map entry, its reals (ids first_id..), its ring. */
static int add_vip(int vip_fd, int reals_fd, int rings_fd, uint32_t vip_num,
		   const struct lb_addr *vip, uint16_t port, uint8_t proto,
		   const struct lb_addr *reals, size_t n, uint32_t first_id, char *err,
		   size_t errlen)
{
	struct katran_vip_definition vd = {.port = htons(port), .proto = proto};
	struct katran_vip_meta meta = {.flags = 0, .vip_num = vip_num};
	struct maglev_real *mr = calloc(n ? n : 1, sizeof(*mr));
	uint32_t *ring = calloc(KATRAN_RING_SIZE, sizeof(*ring));
	uint32_t *keys = calloc(KATRAN_RING_SIZE, sizeof(*keys));
	uint32_t count = KATRAN_RING_SIZE;
	int rc = -ENOMEM;

	if (!mr || !ring || !keys)
		goto out;
	memcpy(vd.addr, vip->bytes, sizeof(vd.addr));
	if (bpf_map_update_elem(vip_fd, &vd, &meta, BPF_ANY)) {
		rc = -errno;
		seterr(err, errlen, "vip_map: %s", strerror(errno));
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		struct katran_real_definition rd = {
		    .flags = reals[i].family == LB_AF_INET6 ? KATRAN_F_IPV6 : 0};
		uint32_t id = first_id + (uint32_t)i;

		memcpy(rd.addr, reals[i].bytes, sizeof(rd.addr));
		if (bpf_map_update_elem(reals_fd, &id, &rd, BPF_ANY)) {
			rc = -errno;
			seterr(err, errlen, "reals[%u]: %s", id, strerror(errno));
			goto out;
		}
		mr[i] = (struct maglev_real){.addr = reals[i], .id = id, .weight = 1};
	}
	rc = maglev_build(mr, n, ring, KATRAN_RING_SIZE);
	if (rc) {
		seterr(err, errlen, "maglev_build: %s", strerror(-rc));
		goto out;
	}
	for (uint32_t i = 0; i < KATRAN_RING_SIZE; i++)
		keys[i] = vip_num * KATRAN_RING_SIZE + i;
	/* One batch call instead of 65537 syscalls; element by element if
	 * the kernel refuses batches on this map. */
	if (bpf_map_update_batch(rings_fd, keys, ring, &count, NULL)) {
		for (uint32_t i = 0; i < KATRAN_RING_SIZE; i++) {
			if (bpf_map_update_elem(rings_fd, &keys[i], &ring[i], BPF_ANY)) {
				rc = -errno;
				seterr(err, errlen, "ch_rings: %s", strerror(errno));
				goto out;
			}
		}
	}
	rc = 0;
out:
	free(mr);
	free(ring);
	free(keys);
	return rc;
}

struct katran_anchor *katran_anchor_open(const char *path, const struct katran_anchor_cfg *cfg,
					 char *err, size_t errlen)
{
	struct bpf_map *ctl, *vips, *reals, *rings, *lrus, *stats;
	struct katran_ctl_value mac = {0};
	struct bpf_program *prog;
	struct katran_anchor *k;
	int tpl = -1, rc, zero = 0;

	if (access(path, R_OK)) {
		rc = errno;
		seterr(err, errlen, "%s: %s", path, strerror(rc));
		errno = rc;
		return NULL;
	}
	if (cfg->n4 + cfg->n6 + 1 > KATRAN_MAX_REALS) {
		seterr(err, errlen, "too many reals for Katran's MAX_REALS");
		errno = EINVAL;
		return NULL;
	}
	k = calloc(1, sizeof(*k));
	if (!k) {
		seterr(err, errlen, "out of memory");
		return NULL;
	}
	for (int i = 0; i < KATRAN_MAX_CPUS; i++)
		k->lru_fd[i] = -1;
	k->ncpus = libbpf_num_possible_cpus();
	if (k->ncpus <= 0 || k->ncpus > KATRAN_MAX_CPUS) {
		seterr(err, errlen, "%d possible CPUs: Katran's lru_mapping holds %d", k->ncpus,
		       KATRAN_MAX_CPUS);
		rc = -EINVAL;
		goto fail;
	}
	k->zeros = calloc((size_t)k->ncpus, sizeof(*k->zeros));
	if (!k->zeros) {
		rc = -ENOMEM;
		seterr(err, errlen, "out of memory");
		goto fail;
	}
	k->obj = bpf_object__open_file(path, NULL);
	if (!k->obj) {
		rc = -errno;
		seterr(err, errlen, "opening %s: %s", path, strerror(-rc));
		goto fail;
	}
	prog = bpf_object__find_program_by_name(k->obj, "balancer_ingress");
	ctl = find_map(k->obj, "ctl_array", 4, sizeof(struct katran_ctl_value), err, errlen);
	vips = find_map(k->obj, "vip_map", sizeof(struct katran_vip_definition),
			sizeof(struct katran_vip_meta), err, errlen);
	reals = find_map(k->obj, "reals", 4, sizeof(struct katran_real_definition), err, errlen);
	rings = find_map(k->obj, "ch_rings", 4, 4, err, errlen);
	lrus = find_map(k->obj, "lru_mapping", 4, 4, err, errlen);
	stats = find_map(k->obj, "stats", 4, sizeof(struct katran_lb_stats), err, errlen);
	if (!prog || !ctl || !vips || !reals || !rings || !lrus || !stats) {
		if (!prog)
			seterr(err, errlen, "no program balancer_ingress in the object");
		rc = -ENOENT;
		goto fail;
	}
	if (bpf_map__max_entries(rings) != (uint32_t)KATRAN_MAX_VIPS * KATRAN_RING_SIZE) {
		seterr(err, errlen, "ch_rings has %u entries, expected MAX_VIPS * %u",
		       bpf_map__max_entries(rings), KATRAN_RING_SIZE);
		rc = -EINVAL;
		goto fail;
	}
	/*
	 * The per-CPU LRUs are created here, not by the object, so the map
	 * of maps needs an inner map to check them against at load. The
	 * object also describes one in BTF (its __array(values, ...): an
	 * LRU of 1000 entries, flags 0), which libbpf would create by itself;
	 * setting ours replaces it, so the template and the LRUs are
	 * created by the same call and cannot disagree.
	 */
	tpl = lru_create(1024);
	if (tpl < 0 || bpf_map__set_inner_map_fd(lrus, tpl)) {
		rc = -errno;
		seterr(err, errlen, "LRU template: %s", strerror(errno));
		goto fail;
	}
	rc = bpf_object__load(k->obj);
	close(tpl);
	tpl = -1;
	if (rc) {
		seterr(err, errlen, "loading %s: %s", path, strerror(-rc));
		goto fail;
	}
	k->prog_fd = bpf_program__fd(prog);
	k->stats_fd = bpf_map__fd(stats);

	/* Katran does no FIB lookup: every packet leaves toward this MAC. */
	memcpy(mac.mac, cfg->gw_mac, 6);
	if (bpf_map_update_elem(bpf_map__fd(ctl), &zero, &mac, BPF_ANY)) {
		rc = -errno;
		seterr(err, errlen, "ctl_array: %s", strerror(errno));
		goto fail;
	}
	/* Real index 0 means "none" to Katran, as LB_REAL_NONE does to us. */
	rc = add_vip(bpf_map__fd(vips), bpf_map__fd(reals), bpf_map__fd(rings), 0, &cfg->vip4,
		     cfg->port, cfg->proto, cfg->reals4, cfg->n4, 1, err, errlen);
	if (!rc)
		rc = add_vip(bpf_map__fd(vips), bpf_map__fd(reals), bpf_map__fd(rings), 1,
			     &cfg->vip6, cfg->port, cfg->proto, cfg->reals6, cfg->n6,
			     1 + (uint32_t)cfg->n4, err, errlen);
	if (rc)
		goto fail;
	for (int cpu = 0; cpu < k->ncpus; cpu++) {
		k->lru_fd[cpu] = lru_create(cfg->lru_size);
		if (k->lru_fd[cpu] < 0 ||
		    bpf_map_update_elem(bpf_map__fd(lrus), &cpu, &k->lru_fd[cpu], BPF_ANY)) {
			rc = -errno;
			seterr(err, errlen, "LRU for CPU %d: %s", cpu, strerror(errno));
			goto fail;
		}
	}
	return k;

fail:
	if (tpl >= 0)
		close(tpl);
	katran_anchor_close(k);
	errno = -rc;
	return NULL;
}

void katran_anchor_close(struct katran_anchor *k)
{
	if (!k)
		return;
	for (int i = 0; i < KATRAN_MAX_CPUS; i++)
		if (k->lru_fd[i] >= 0)
			close(k->lru_fd[i]);
	bpf_object__close(k->obj);
	free(k->zeros);
	free(k);
}

int katran_anchor_prog_fd(const struct katran_anchor *k)
{
	return k->prog_fd;
}

int katran_anchor_reset_flood(struct katran_anchor *k)
{
	uint32_t key = KATRAN_MAX_VIPS + KATRAN_NEW_CONN_RATE_CNT;

	/* v1 = 0 new flows in a quantum that started at v2 = 0: the next new
	 * flow opens a fresh one-second quantum and counts 1. */
	return bpf_map_update_elem(k->stats_fd, &key, k->zeros, BPF_ANY) ? -errno : 0;
}

int katran_anchor_has_flow(const struct katran_anchor *k, int cpu, const struct lb_addr *src,
			   const struct lb_addr *dst, uint16_t sport, uint16_t dport, uint8_t proto)
{
	struct katran_flow_key key = {.port16 = {htons(sport), htons(dport)}, .proto = proto};
	struct katran_real_pos_lru v;

	if (cpu < 0 || cpu >= k->ncpus)
		return -EINVAL;
	memcpy(key.src, src->bytes, sizeof(key.src));
	memcpy(key.dst, dst->bytes, sizeof(key.dst));
	if (bpf_map_lookup_elem(k->lru_fd[cpu], &key, &v))
		return errno == ENOENT ? 0 : -errno;
	return 1;
}
