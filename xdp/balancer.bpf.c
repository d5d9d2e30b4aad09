// SPDX-License-Identifier: GPL-2.0-only
/*
 * balancer.bpf.c - the L4 balancer (XDP).
 *
 * For each packet: parse Ethernet + IPv4/IPv6 + TCP/UDP ports; if the
 * destination (address, port, protocol) is a VIP, pick a real (connection
 * table first, through a per-CPU cache of it; the VIP's Maglev ring on a
 * miss; a TCP SYN goes straight to the ring), encapsulate toward it (IPIP
 * for IPv4, IP6IP6 for IPv6) and send it out through the real's cached
 * next hop (the FIB when there is none). ICMP "fragmentation needed" /
 * "packet too big" to a VIP follows the flow it quotes to that flow's
 * real; an echo request to a VIP is answered here; other ICMP to a VIP is
 * dropped. Everything else goes up the stack untouched. Every decision
 * is counted (lb_counters); nothing is forwarded that was not fully
 * parsed.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/pkt_cls.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "lb_abi.h"
#include "lb_hash.h"

#ifndef AF_INET
#define AF_INET 2
#endif
#ifndef AF_INET6
#define AF_INET6 10
#endif
#define IP_MF	  0x2000
#define IP_OFFSET 0x1fff
#define IP_DF	  0x4000

/* ICMP and ICMPv6 (RFC 792, RFC 4443): <linux/icmp.h> drags in libc
 * headers a BPF build cannot use, and the first 4 bytes are all we need. */
struct icmp_head {
	__u8 type;
	__u8 code;
	__u16 checksum;
	__u32 rest; /* identifier + sequence, unused or MTU */
};
#define TCP_FLAG_FIN	    0x01
#define TCP_FLAG_SYN	    0x02
#define TCP_FLAG_RST	    0x04
#define TCP_FLAG_ACK	    0x10
#define ICMP_ECHOREPLY	    0
#define ICMP_DEST_UNREACH   3
#define ICMP_FRAG_NEEDED    4
#define ICMP_ECHO	    8
#define ICMPV6_PKT_TOOBIG   2
#define ICMPV6_ECHO_REQUEST 128
#define ICMPV6_ECHO_REPLY   129

/* Set by the loader through the skeleton's rodata before load. */
const volatile __u32 ring_size = LB_RING_SIZE_DEFAULT;
const volatile __u32 hash_seed = 0;
const volatile __u32 flow_hash = LB_FLOW_HASH_V1; /* lb_hash.h */

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, LB_MAX_VIPS_DEFAULT * 2);
	__type(key, struct lb_vip_key);
	__type(value, struct lb_vip_meta);
} vip_map SEC(".maps");

/* Two rings per VIP: slot = (vip_id * 2 + half) * ring_size + i. Sized by
 * the loader to max_vips * 2 * ring_size. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, LB_MAX_VIPS_DEFAULT * 2 * LB_RING_SIZE_DEFAULT);
	__type(key, __u32);
	__type(value, __u32);
} ring_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, LB_MAX_REALS_DEFAULT);
	__type(key, __u32);
	__type(value, struct lb_real);
} reals_map SEC(".maps");

/* One common LRU list: with BPF_F_NO_COMMON_LRU each CPU would own a
 * 1/ncpus share of the entries, so a skewed RSS (or lbd copying a table
 * from one CPU) could use only a fraction of conn_table_size. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, LB_CONN_MAX_DEFAULT);
	__type(key, struct lb_flow_key);
	__type(value, struct lb_conn);
} conn_map SEC(".maps");

/* Per-CPU, direct-mapped copies of conn_map entries (lb_abi.h); sized by
 * the loader to a power of two, cache_mask + 1 slots. */
const volatile __u32 cache_mask = LB_CONN_CACHE_SLOTS_DEFAULT - 1;
/* conn_cache's clock: lbd adds one every LB_CONN_CACHE_TICK_MS (through
 * the skeleton's mapping of .bss: no syscall, no helper call here). */
volatile __u32 cache_clock;
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, LB_CONN_CACHE_SLOTS_DEFAULT);
	__type(key, __u32);
	__type(value, struct lb_conn_cache);
} conn_cache SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct lb_ctl);
} ctl_map SEC(".maps");

/* By vip id (lb_abi.h): what an established flow checks instead of
 * looking its VIP up. Sized by the loader to max_vips. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, LB_MAX_VIPS_DEFAULT);
	__type(key, __u32);
	__type(value, struct lb_vip_state);
} vip_state SEC(".maps");

/* A bit per hashed VIP address (lb_abi.h): most non-VIP traffic passes on
 * one array read. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, LB_VIP_FILTER_WORDS);
	__type(key, __u32);
	__type(value, __u64);
} vip_filter SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, LB_MAX_VIPS_DEFAULT);
	__type(key, __u32);
	__type(value, struct lb_counter);
} vip_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, LB_MAX_REALS_DEFAULT);
	__type(key, __u32);
	__type(value, struct lb_counter);
} real_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct lb_counters);
} lb_counters SEC(".maps");

static __always_inline void count_map(void *map, __u32 id, __u64 bytes)
{
	struct lb_counter *c = bpf_map_lookup_elem(map, &id);

	if (c) {
		c->packets++;
		c->bytes += bytes;
	}
}

/* The global counter block of this CPU, looked up once per packet. */
static __always_inline struct lb_counters *counters(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&lb_counters, &zero);
}

/* A global counter (enum lb_counter_id); st may be NULL (never, in
 * practice: a one-element per-CPU array always has its element). */
static __always_inline void count(struct lb_counters *st, __u32 id, __u64 bytes)
{
	if (st && id < LB_CNT_MAX) {
		st->c[id].packets++;
		st->c[id].bytes += bytes;
	}
}

static __always_inline __u16 ip_csum(const struct iphdr *iph)
{
	const __u16 *w = (const __u16 *)iph;
	__u32 sum = 0;

#pragma unroll
	for (int i = 0; i < (int)(sizeof(*iph) / 2); i++)
		sum += w[i];
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

/* Outcome of parsing: the flow key and where the L3 header starts. */
struct parsed {
	struct lb_flow_key key __attribute__((aligned(8))); /* flow_key_eq */
	__u16 l3_len;	/* bytes from the L3 header to the packet end */
	__u8 tos;	/* IPv4 TOS / IPv6 traffic class, copied outward */
	__u8 fragment;	/* 1: an IP fragment, ports unknown */
	__u8 syn;	/* 1: a TCP SYN without ACK (a new connection) */
	__u8 gue;	/* 1: the VIP encapsulates in GUE */
	__u8 conn_miss; /* 1: key is known to be absent from conn_map */
	__u8 cslot_set; /* 1: cslot is key's conn_cache slot */
	__u16 l4_off;	/* bytes from the L3 header to the L4 header */
	__u32 cslot;
};

enum parse_rc {
	PARSE_OK = 0,
	PARSE_NOT_IP,
	PARSE_MALFORMED,
	PARSE_NOT_L4, /* IP, but not TCP/UDP (or IPv6 with ext. headers) */
	PARSE_IPV6_EXT,
	PARSE_ICMP, /* ICMP / ICMPv6: key has the addresses, l4_off the header */
};

/*
 * Headers are read within the IP packet, not the frame: bytes past the IP
 * length (an Ethernet trailer, or a lie in the length) are not the
 * packet's. end = the L3 header + its declared length (<= data_end, which
 * is checked too, for the verifier).
 */
static __always_inline int parse_ports(void *l4, void *data_end, void *end, struct parsed *p)
{
	/* TCP and UDP both start with the two ports; that is all we read,
	 * and TCP's flags. */
	struct udphdr *uh = l4;

	if ((void *)(uh + 1) > data_end || (void *)(uh + 1) > end)
		return PARSE_MALFORMED;
	if (p->key.proto == IPPROTO_TCP) {
		struct tcphdr *th = l4;

		if ((void *)(th + 1) > data_end || (void *)(th + 1) > end)
			return PARSE_MALFORMED;
		/* The flags byte (RFC 9293 3.1), not the bitfields: their
		 * order depends on headers a BPF build may see wrongly. */
		p->syn = (((__u8 *)th)[13] & (TCP_FLAG_SYN | TCP_FLAG_ACK | TCP_FLAG_FIN |
					      TCP_FLAG_RST)) == TCP_FLAG_SYN;
	}
	p->key.sport = uh->source;
	p->key.dport = uh->dest;
	return PARSE_OK;
}

static __always_inline int parse_ipv4(void *l3, void *data_end, struct parsed *p)
{
	struct iphdr *iph = l3;
	__u32 ihl;

	if ((void *)(iph + 1) > data_end)
		return PARSE_MALFORMED;
	if (iph->version != 4 || iph->ihl < 5)
		return PARSE_MALFORMED;
	ihl = iph->ihl * 4;
	if (bpf_ntohs(iph->tot_len) < ihl || (void *)l3 + bpf_ntohs(iph->tot_len) > data_end)
		return PARSE_MALFORMED;

	p->key.family = LB_AF_INET;
	__builtin_memcpy(p->key.src, &iph->saddr, 4);
	__builtin_memcpy(p->key.dst, &iph->daddr, 4);
	p->key.proto = iph->protocol;
	p->l3_len = bpf_ntohs(iph->tot_len);
	p->tos = iph->tos;
	if (iph->frag_off & bpf_htons(IP_MF | IP_OFFSET)) {
		p->fragment = 1;
		return PARSE_OK;
	}
	/* ihl is a 4-bit field times 4: at most 60, as the verifier knows;
	 * options are skipped, and tot_len above covers them. */
	p->l4_off = ihl;
	if (iph->protocol == IPPROTO_ICMP)
		return PARSE_ICMP;
	if (iph->protocol != IPPROTO_TCP && iph->protocol != IPPROTO_UDP)
		return PARSE_NOT_L4;
	return parse_ports(l3 + ihl, data_end, l3 + p->l3_len, p);
}

static __always_inline int parse_ipv6(void *l3, void *data_end, struct parsed *p)
{
	struct ipv6hdr *ip6 = l3;

	if ((void *)(ip6 + 1) > data_end)
		return PARSE_MALFORMED;
	if (ip6->version != 6)
		return PARSE_MALFORMED;
	if ((void *)(ip6 + 1) + bpf_ntohs(ip6->payload_len) > data_end)
		return PARSE_MALFORMED;

	p->key.family = LB_AF_INET6;
	__builtin_memcpy(p->key.src, &ip6->saddr, 16);
	__builtin_memcpy(p->key.dst, &ip6->daddr, 16);
	p->key.proto = ip6->nexthdr;
	p->l3_len = sizeof(*ip6) + bpf_ntohs(ip6->payload_len);
	p->tos = (ip6->priority << 4) | (ip6->flow_lbl[0] >> 4);
	if (ip6->nexthdr == IPPROTO_FRAGMENT) {
		/* RFC 8200 4.5: next header, reserved, offset, id. The
		 * protocol is what a 3-tuple VIP needs; ports may not be in
		 * this fragment at all. */
		__u8 *fh = (void *)(ip6 + 1);

		if ((void *)(fh + 8) > data_end || (void *)(fh + 8) > l3 + p->l3_len)
			return PARSE_MALFORMED;
		p->key.proto = fh[0];
		p->fragment = 1;
		return PARSE_OK;
	}
	p->l4_off = sizeof(*ip6);
	if (ip6->nexthdr == IPPROTO_ICMPV6)
		return PARSE_ICMP;
	if (ip6->nexthdr != IPPROTO_TCP && ip6->nexthdr != IPPROTO_UDP) {
		/* Hop-by-hop, routing and destination options would need a
		 * bounded walk; until then such packets are counted and go
		 * up the stack, like other non-VIP traffic. */
		if (ip6->nexthdr == IPPROTO_HOPOPTS || ip6->nexthdr == IPPROTO_ROUTING ||
		    ip6->nexthdr == IPPROTO_DSTOPTS)
			return PARSE_IPV6_EXT;
		return PARSE_NOT_L4;
	}
	return parse_ports(ip6 + 1, data_end, l3 + p->l3_len, p);
}

/* This CPU's conn_cache slot for p's key, hashed once per packet. */
static __always_inline struct lb_conn_cache *cache_slot(struct parsed *p)
{
	if (!p->cslot_set) {
		p->cslot = lb_cache_slot(&p->key) & cache_mask;
		p->cslot_set = 1;
	}
	return bpf_map_lookup_elem(&conn_cache, &p->cslot);
}

/* Whether two flow keys (8-aligned) are equal, as five 64-bit words. */
static __always_inline int flow_key_eq(const struct lb_flow_key *a, const struct lb_flow_key *b)
{
	const __u64 *x = (const __u64 *)a, *y = (const __u64 *)b;

	return !((x[0] ^ y[0]) | (x[1] ^ y[1]) | (x[2] ^ y[2]) | (x[3] ^ y[3]) | (x[4] ^ y[4]));
}

/* Make a slot hold what conn_map now says of k (now: cache_clock). */
static __always_inline void cache_fill(struct lb_conn_cache *ce, const struct lb_flow_key *k,
				       __u32 real_id, __u32 vip_id, __u32 now)
{
	__builtin_memcpy(&ce->key, k, sizeof(*k));
	ce->real_id = real_id;
	ce->vip_id = vip_id;
	ce->uses = 0;
	ce->stamp = now;
}

/*
 * Pick the real for a flow: connection table first, Maglev ring on a miss.
 * A TCP SYN starts a connection, so it skips the table (whatever is there
 * is a stale entry of an old connection on the same 5-tuple) and its
 * choice replaces it. insert 0 (ICMP errors) reads without recording: a
 * forged error must not be able to fill the table. Returns the real id,
 * LB_REAL_NONE when the VIP has no reals.
 */
static __always_inline __u32 pick_real(struct lb_counters *st, struct parsed *p,
				       const struct lb_vip_meta *meta, int insert)
{
	struct lb_conn *conn, fresh = {};
	__u32 slot, *real, hash;

	if (!p->syn && !p->conn_miss) {
		conn = bpf_map_lookup_elem(&conn_map, &p->key);
		if (conn && conn->vip_id == meta->vip_id) {
			count(st, LB_CNT_CONN_HIT, 0);
			return conn->real_id;
		}
	}
	count(st, LB_CNT_CONN_MISS, 0);

	/* Only here: a known flow never pays for the hash. */
	hash = lb_flow_hash_v(&p->key, hash_seed, flow_hash);
	slot = (meta->vip_id * 2 + (meta->ring_half & 1)) * ring_size + hash % ring_size;
	real = bpf_map_lookup_elem(&ring_map, &slot);
	if (!real || *real == LB_REAL_NONE)
		return LB_REAL_NONE;
	fresh.real_id = *real;
	fresh.vip_id = meta->vip_id;
	if (insert) {
		bpf_map_update_elem(&conn_map, &p->key, &fresh, BPF_ANY);
		/* A copy of the entry this replaced (a reused 5-tuple, a
		 * VIP id given to another VIP) must not outlive it; the
		 * flow's next packet caches the new one. A 3-tuple VIP's
		 * key (ports 0) is never cached; after a table miss
		 * (conn_miss) forward_established has already dropped the
		 * copy. */
		if (!p->conn_miss && !(meta->flags & LB_VIP_F_HASH_3TUPLE)) {
			struct lb_conn_cache *ce = cache_slot(p);

			if (ce && flow_key_eq(&ce->key, &p->key))
				ce->key.family = 0;
		}
	}
	return fresh.real_id;
}

/*
 * The outer headers, written the same way for client packets (XDP, below)
 * and for health-check probes (tc egress, lb_hc_encap): a probe crosses
 * exactly the encapsulation a client's packet does.
 */
static __always_inline void fill_ipip(struct iphdr *outer, __u16 l3_len, __u8 tos, __u8 proto,
				      const struct lb_real *real, const struct lb_ctl *cfg)
{
	__be16 tot_len = bpf_htons(l3_len + sizeof(struct iphdr));
	__u32 daddr, sum;

	outer->version = 4;
	outer->ihl = 5;
	outer->tos = tos;
	outer->tot_len = tot_len;
	outer->id = 0;
	/* DF: an oversized packet should fail loudly at the next hop (ICMP to
	 * this LB) rather than be fragmented, which BPF decap cannot undo. */
	outer->frag_off = bpf_htons(IP_DF);
	outer->ttl = 64;
	outer->protocol = proto;
	outer->saddr = cfg->src4;
	__builtin_memcpy(&daddr, real->addr, 4);
	outer->daddr = daddr;
	/* The checksum (RFC 1071) from the values, not read back from the
	 * header: a 16-bit load over two byte stores just made cannot be
	 * forwarded from the store buffer and waits for them to retire (it
	 * was a tenth of an established flow's cost). Each term is a header
	 * word as stored, read in host order: htons(hi << 8 | lo) is the
	 * bytes hi, lo. */
	sum = bpf_htons(0x4500 | tos) + tot_len + bpf_htons(IP_DF) + bpf_htons(64 << 8 | proto) +
	      (cfg->src4 & 0xffff) + (cfg->src4 >> 16) + (daddr & 0xffff) + (daddr >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	outer->check = (__u16)~sum;
}

/* The flow label carries the flow hash so the underlay's ECMP can still
 * tell flows apart. */
static __always_inline void fill_ip6ip6(struct ipv6hdr *outer, __u16 l3_len, __u8 tos, __u32 hash,
					__u8 nexthdr, const struct lb_real *real,
					const struct lb_ctl *cfg)
{
	outer->version = 6;
	outer->priority = tos >> 4;
	outer->flow_lbl[0] = (tos << 4) | ((hash >> 16) & 0x0f);
	outer->flow_lbl[1] = (hash >> 8) & 0xff;
	outer->flow_lbl[2] = hash & 0xff;
	outer->payload_len = bpf_htons(l3_len);
	outer->nexthdr = nexthdr;
	outer->hop_limit = 64;
	__builtin_memcpy(&outer->saddr, cfg->src6, 16);
	__builtin_memcpy(&outer->daddr, real->addr, 16);
}

/* The UDP header of GUE variant 1 (lb_abi.h): the flow's hash in the
 * source port, no checksum, the client's IP packet right after it. */
static __always_inline void fill_gue(struct udphdr *uh, __u16 l3_len, __u32 hash,
				     const struct lb_ctl *cfg)
{
	uh->source = bpf_htons(LB_GUE_SPORT_MIN | (hash & 0x3fff));
	uh->dest = cfg->gue_port;
	uh->len = bpf_htons(l3_len + sizeof(*uh));
	uh->check = 0;
}

/*
 * The outer header's protocol (IPv4) or next header (IPv6): UDP for GUE,
 * else what is inside (4: IPv4, 41: IPv6), whatever the outer family (a
 * VIP over an underlay of the other family).
 */
static __always_inline __u8 tunnel_proto(int gue, __u8 inner_family)
{
	return gue ? IPPROTO_UDP : inner_family == LB_AF_INET ? IPPROTO_IPIP : IPPROTO_IPV6;
}

/* Encapsulate toward an IPv4 real (IPIP, IPv6 in IPv4, or GUE); the packet
 * starts at Ethernet. */
static __always_inline int encap_ipip(struct xdp_md *ctx, const struct parsed *p,
				      const struct lb_real *real, const struct lb_ctl *cfg)
{
	__u16 udp = p->gue ? sizeof(struct udphdr) : 0;
	void *data, *data_end;
	struct iphdr *outer;
	struct udphdr *uh;

	if (bpf_xdp_adjust_head(ctx, 0 - (int)(sizeof(*outer) + udp)))
		return -1;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	outer = data + sizeof(struct ethhdr);
	uh = (void *)(outer + 1);
	if ((void *)(outer + 1) > data_end)
		return -1;
	((struct ethhdr *)data)->h_proto = bpf_htons(ETH_P_IP);
	fill_ipip(outer, p->l3_len + udp, p->tos, tunnel_proto(p->gue, p->key.family), real, cfg);
	if (p->gue) {
		/* Checked here, where it is written: the verifier keeps the
		 * bound only on this path. */
		if ((void *)(uh + 1) > data_end)
			return -1;
		fill_gue(uh, p->l3_len, lb_flow_label(&p->key), cfg);
	}
	return 0;
}

/* Encapsulate toward an IPv6 real (IP6IP6, IPv4 in IPv6, or GUE); the
 * flow label (and GUE's source port) from the flow. */
static __always_inline int encap_ip6ip6(struct xdp_md *ctx, const struct parsed *p,
					const struct lb_real *real, const struct lb_ctl *cfg)
{
	__u16 udp = p->gue ? sizeof(struct udphdr) : 0;
	__u32 label = lb_flow_label(&p->key);
	void *data, *data_end;
	struct ipv6hdr *outer;
	struct udphdr *uh;

	if (bpf_xdp_adjust_head(ctx, 0 - (int)(sizeof(*outer) + udp)))
		return -1;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	outer = data + sizeof(struct ethhdr);
	uh = (void *)(outer + 1);
	if ((void *)(outer + 1) > data_end)
		return -1;
	((struct ethhdr *)data)->h_proto = bpf_htons(ETH_P_IPV6);
	fill_ip6ip6(outer, p->l3_len + udp, p->tos, label, tunnel_proto(p->gue, p->key.family),
		    real, cfg);
	if (p->gue) {
		/* Checked here, where it is written: the verifier keeps the
		 * bound only on this path. */
		if ((void *)(uh + 1) > data_end)
			return -1;
		fill_gue(uh, p->l3_len, label, cfg);
	}
	return 0;
}

/*
 * Fill in the Ethernet header toward the real and pick TX or redirect:
 * from the next hop lbd cached in the real's entry, or from the FIB when
 * there is none. outer_len is the L3 length after encapsulation.
 */
static __always_inline int forward(struct xdp_md *ctx, struct lb_counters *st,
				   const struct lb_real *real, const struct lb_ctl *cfg,
				   __u16 outer_len)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	__u32 ifindex;
	int rc;

	if ((void *)(eth + 1) > data_end)
		return XDP_DROP;
	if (real->nh_ifindex) {
		if (outer_len > real->nh_mtu) {
			count(st, LB_CNT_DROP_FRAG_NEEDED, outer_len);
			return XDP_DROP;
		}
		/* nh_dmac and nh_smac sit side by side as the header wants
		 * them, at offsets 28 and 32 of the entry (a map value, which
		 * the kernel aligns to 8: keep real a map pointer, a stack
		 * copy would be checked for strict alignment): one 4-byte
		 * and one 8-byte copy. struct ethhdr is packed, so a plain
		 * memcpy would move them a byte at a time. The packet side
		 * is unaligned when the frame starts at NET_IP_ALIGN: fine on
		 * x86 and arm64 (efficient unaligned access); a verifier in
		 * strict-alignment mode would refuse these two stores. */
		_Static_assert(__builtin_offsetof(struct lb_real, nh_dmac) == 28 &&
				   __builtin_offsetof(struct lb_real, nh_smac) == 34,
			       "the MAC copy below assumes this layout");
		*(__u32 *)eth = *(const __u32 *)real->nh_dmac;
		*(__u64 *)((__u8 *)eth + 4) = *(const __u64 *)(real->nh_dmac + 4);
		ifindex = real->nh_ifindex;
	} else {
		/* Zeroed here, not for every packet: 64 bytes of stores the
		 * cached next hop does not need. */
		struct bpf_fib_lookup fib = {};

		count(st, LB_CNT_FIB_FALLBACK, 0);
		fib.ifindex = ctx->ingress_ifindex;
		fib.tot_len = outer_len;
		if (real->family == LB_AF_INET) {
			fib.family = AF_INET;
			fib.ipv4_src = cfg->src4;
			__builtin_memcpy(&fib.ipv4_dst, real->addr, 4);
		} else {
			fib.family = AF_INET6;
			__builtin_memcpy(fib.ipv6_src, cfg->src6, 16);
			__builtin_memcpy(fib.ipv6_dst, real->addr, 16);
		}
		rc = bpf_fib_lookup(ctx, &fib, sizeof(fib), 0);
		if (rc == BPF_FIB_LKUP_RET_FRAG_NEEDED) {
			count(st, LB_CNT_DROP_FRAG_NEEDED, outer_len);
			return XDP_DROP;
		}
		if (rc != BPF_FIB_LKUP_RET_SUCCESS) {
			count(st, LB_CNT_DROP_FIB, 0);
			return XDP_DROP;
		}
		__builtin_memcpy(eth->h_dest, fib.dmac, ETH_ALEN);
		__builtin_memcpy(eth->h_source, fib.smac, ETH_ALEN);
		ifindex = fib.ifindex;
	}
	count(st, LB_CNT_TX, outer_len);
	if (ifindex == ctx->ingress_ifindex)
		return XDP_TX;
	return bpf_redirect(ifindex, 0);
}

/* Encapsulate toward real and send; p describes the packet as received. */
static __always_inline int encap_and_forward(struct xdp_md *ctx, struct lb_counters *st,
					     const struct parsed *p, const struct lb_real *real,
					     const struct lb_ctl *cfg, __u64 len)
{
	__u16 gue = p->gue ? sizeof(struct udphdr) : 0;
	__u64 frame = (long)ctx->data_end - (long)ctx->data;
	__u64 want = sizeof(struct ethhdr) + p->l3_len;

	/* Bytes past the IP packet (an Ethernet trailer) are not carried:
	 * the tunnel and the egress MTU see the IP packet only. */
	if (frame > want && bpf_xdp_adjust_tail(ctx, (int)(want - frame))) {
		count(st, LB_CNT_DROP_ENCAP, len);
		return XDP_DROP;
	}
	/* The underlay is the real's family, whatever the VIP's. */
	if (real->family == LB_AF_INET) {
		if (encap_ipip(ctx, p, real, cfg)) {
			count(st, LB_CNT_DROP_ENCAP, len);
			return XDP_DROP;
		}
		return forward(ctx, st, real, cfg, p->l3_len + sizeof(struct iphdr) + gue);
	}
	if (encap_ip6ip6(ctx, p, real, cfg)) {
		count(st, LB_CNT_DROP_ENCAP, len);
		return XDP_DROP;
	}
	return forward(ctx, st, real, cfg, p->l3_len + sizeof(struct ipv6hdr) + gue);
}

/* RFC 1624 eqn. 3: the Internet checksum after one 16-bit word of the
 * covered data changed from old to new (both as stored in the packet). */
static __always_inline __u16 csum_replace16(__u16 check, __u16 old, __u16 new)
{
	__u32 sum = (__u16)~check + (__u32)(__u16)~old + new;

	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	/* Eqn. 3 can give 0x0000 where only 0xffff is right (RFC 1624 3). */
	return (__u16)~sum ? (__u16)~sum : 0xffff;
}

static __always_inline void swap_macs(struct ethhdr *eth)
{
	__u8 tmp[ETH_ALEN];

	__builtin_memcpy(tmp, eth->h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, tmp, ETH_ALEN);
}

/*
 * The quoted header of an ICMP error, as the flow it belongs to. The
 * error was sent to the VIP about a packet the VIP sent (source VIP,
 * destination client), so the client's flow has the addresses and ports
 * swapped back. Only the first 8 bytes of the quoted transport header are
 * read: RFC 792 guarantees no more, and they hold both ports. Returns 0,
 * or -1 if the quote is not a TCP/UDP first fragment from this VIP.
 */
static __always_inline int quoted_flow4(void *quote, void *data_end, void *end, struct parsed *p)
{
	struct iphdr *q = quote;
	struct udphdr *qp;
	__u32 qihl;

	if ((void *)(q + 1) > data_end || (void *)(q + 1) > end || q->version != 4 || q->ihl < 5)
		return -1;
	if (q->frag_off & bpf_htons(IP_OFFSET))
		return -1; /* not the first fragment: no ports */
	if (q->protocol != IPPROTO_TCP && q->protocol != IPPROTO_UDP)
		return -1;
	if (q->saddr != *(__be32 *)p->key.dst)
		return -1; /* about a packet some other address sent */
	qihl = q->ihl * 4;
	qp = quote + qihl;
	if ((void *)(qp + 1) > data_end || (void *)(qp + 1) > end)
		return -1;
	__builtin_memcpy(p->key.src, &q->daddr, 4);
	p->key.proto = q->protocol;
	p->key.sport = qp->dest;
	p->key.dport = qp->source;
	return 0;
}

static __always_inline int quoted_flow6(void *quote, void *data_end, void *end, struct parsed *p)
{
	struct ipv6hdr *q = quote;
	struct udphdr *qp = (void *)(q + 1);
	__u64 a[2];

	if ((void *)(qp + 1) > data_end || (void *)(qp + 1) > end || q->version != 6)
		return -1;
	/* A quote with extension headers would need a walk; TCP and UDP
	 * from a VIP carry none. */
	if (q->nexthdr != IPPROTO_TCP && q->nexthdr != IPPROTO_UDP)
		return -1;
	__builtin_memcpy(a, &q->saddr, 16);
	if (a[0] != ((__u64 *)p->key.dst)[0] || a[1] != ((__u64 *)p->key.dst)[1])
		return -1;
	__builtin_memcpy(p->key.src, &q->daddr, 16);
	p->key.proto = q->nexthdr;
	p->key.sport = qp->dest;
	p->key.dport = qp->source;
	return 0;
}

/* May k's destination be a VIP address? False means certainly not. */
static __always_inline int maybe_vip_address(const struct lb_flow_key *k)
{
	__u32 bit = lb_vip_addr_bit(k->dst, k->family), word = bit >> 6;
	__u64 *w = bpf_map_lookup_elem(&vip_filter, &word);

	return w && (*w >> (bit & 63)) & 1;
}

/* Is vk's address (its port and protocol are cleared) a VIP's? Every VIP
 * address has its address-only entry in vip_map. */
static __always_inline int is_vip_address(struct lb_vip_key *vk)
{
	vk->port = 0;
	vk->proto = 0;
	return bpf_map_lookup_elem(&vip_map, vk) != NULL;
}

/*
 * A flow (p->key: a TCP/UDP packet's, or the one an ICMP error quotes)
 * whose connection-table entry names a VIP id that still holds the VIP the
 * key is addressed to: forwarded to the entry's real with no vip_map
 * lookup and no hash. The entry is read from this CPU's conn_cache when
 * the slot holds the key and its copy is fresh (lb_abi.h: under 32 uses,
 * under a second old); from conn_map otherwise, and the slot takes it.
 * ICMP errors (flow_stats 0) always read conn_map. A 3-tuple VIP's flows are keyed
 * without ports: an entry under the full 5-tuple is a leftover of the
 * VIP's 5-tuple days and must not win over the client's entry. flow_stats: count the packet in
 * the VIP's and the real's counters (not for ICMP, as on the full path).
 * Returns the XDP verdict, or -1: the packet takes the full path, and
 * p->conn_miss says whether the table had no entry at all.
 */
static __always_inline int forward_established(struct xdp_md *ctx, struct lb_counters *st,
					       struct parsed *p, __u64 len, int flow_stats)
{
	/* Not for ICMP errors: RSS hashes their outer header (router to
	 * VIP), so they land on another CPU than their flow, whose slot
	 * there a SYN on the flow's CPU would never clear. */
	struct lb_conn_cache *ce = flow_stats ? cache_slot(p) : NULL;
	struct lb_vip_state *vs;
	struct lb_conn *conn;
	struct lb_real *real;
	struct lb_ctl *cfg;
	__u32 zero = 0, vip_id, real_id;
	int mine = 0;
	__u64 a[2];

	if (ce && flow_key_eq(&ce->key, &p->key)) {
		mine = 1;
		if (++ce->uses % LB_CONN_CACHE_RECHECK &&
		    cache_clock - ce->stamp < LB_CONN_CACHE_MAX_AGE_TICKS) {
			vip_id = ce->vip_id;
			real_id = ce->real_id;
			goto found;
		}
	}
	conn = bpf_map_lookup_elem(&conn_map, &p->key);
	if (!conn) {
		if (ce && mine)
			ce->key.family = 0;
		p->conn_miss = 1;
		return -1;
	}
	/* Copied once: the entry may be replaced under us. */
	vip_id = conn->vip_id;
	real_id = conn->real_id;
	if (ce)
		cache_fill(ce, &p->key, real_id, vip_id, cache_clock);
found:
	vs = bpf_map_lookup_elem(&vip_state, &vip_id);
	if (!vs || vs->key.family != p->key.family || vs->key.port != p->key.dport ||
	    vs->key.proto != p->key.proto || !vs->key.port || (vs->flags & LB_VIP_F_HASH_3TUPLE))
		return -1;
	__builtin_memcpy(a, vs->key.addr, 16);
	if (a[0] != ((__u64 *)p->key.dst)[0] || a[1] != ((__u64 *)p->key.dst)[1])
		return -1;
	real = real_id == LB_REAL_NONE ? NULL : bpf_map_lookup_elem(&reals_map, &real_id);
	cfg = bpf_map_lookup_elem(&ctl_map, &zero);
	if (!real || !real->family || !cfg)
		return -1;
	count(st, LB_CNT_CONN_HIT, 0);
	if (flow_stats) {
		count_map(&vip_stats, vip_id, len);
		count_map(&real_stats, real_id, len);
	}
	p->gue = !!(vs->flags & LB_VIP_F_ENCAP_GUE);
	return encap_and_forward(ctx, st, p, real, cfg, len);
}

enum icmp_kind {
	ICMP_K_MALFORMED,
	ICMP_K_ECHO,  /* an echo request: answered if to a VIP address */
	ICMP_K_QUOTE, /* frag-needed / packet-too-big; p->key is the quoted flow */
	ICMP_K_OTHER, /* anything else, or a quote we cannot use */
};

/*
 * What an ICMP or ICMPv6 packet (p: the outer addresses and l4_off) is.
 * For ICMP_K_QUOTE, p->key becomes the client's flow the error quotes
 * (RFC 792 quotes at least 8 bytes of the transport header, enough for
 * the ports), with the quoted source checked against the outer
 * destination.
 */
static __always_inline int icmp_classify(struct xdp_md *ctx, struct parsed *p)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	void *l3 = data + sizeof(struct ethhdr), *end = l3 + p->l3_len;

	if (p->key.family == LB_AF_INET) {
		struct iphdr *iph = l3;
		struct icmp_head *ic = l3 + (p->l4_off & 0x3f);

		if ((void *)(iph + 1) > data_end || (void *)(ic + 1) > data_end ||
		    (void *)(ic + 1) > end)
			return ICMP_K_MALFORMED;
		if (ic->type == ICMP_ECHO && ic->code == 0 && p->l4_off == sizeof(*iph))
			return ICMP_K_ECHO;
		if (ic->type == ICMP_DEST_UNREACH && ic->code == ICMP_FRAG_NEEDED &&
		    !quoted_flow4(ic + 1, data_end, end, p))
			return ICMP_K_QUOTE;
	} else {
		struct ipv6hdr *ip6 = l3;
		struct icmp_head *ic = (void *)(ip6 + 1);

		if ((void *)(ic + 1) > data_end || (void *)(ic + 1) > end)
			return ICMP_K_MALFORMED;
		if (ic->type == ICMPV6_ECHO_REQUEST && ic->code == 0)
			return ICMP_K_ECHO;
		if (ic->type == ICMPV6_PKT_TOOBIG && ic->code == 0 &&
		    !quoted_flow6(ic + 1, data_end, end, p))
			return ICMP_K_QUOTE;
	}
	return ICMP_K_OTHER;
}

/* Answer an echo request to a VIP (icmp_classify said ICMP_K_ECHO). */
static __always_inline int icmp_echo_reply(struct xdp_md *ctx, struct lb_counters *st,
					   struct parsed *p, __u64 len)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	void *l3 = eth + 1;
	__u16 *word, old;

	if (p->key.family == LB_AF_INET) {
		struct iphdr *iph = l3;
		struct icmp_head *ic = l3 + sizeof(*iph);
		__be32 a;

		if ((void *)(ic + 1) > data_end)
			return XDP_DROP; /* checked by icmp_classify */
		a = iph->saddr;
		iph->saddr = iph->daddr;
		iph->daddr = a;
		iph->ttl = 64;
		iph->check = 0;
		iph->check = ip_csum(iph);
		word = (__u16 *)ic;
		old = *word;
		ic->type = ICMP_ECHOREPLY;
		ic->checksum = csum_replace16(ic->checksum, old, *word);
	} else {
		struct ipv6hdr *ip6 = l3;
		struct icmp_head *ic = (void *)(ip6 + 1);
		__u8 a[16];

		if ((void *)(ic + 1) > data_end)
			return XDP_DROP; /* checked by icmp_classify */
		/* The checksum covers the addresses too, but a swap leaves
		 * their sum alone; only the type changes. */
		__builtin_memcpy(a, &ip6->saddr, 16);
		__builtin_memcpy(&ip6->saddr, &ip6->daddr, 16);
		__builtin_memcpy(&ip6->daddr, a, 16);
		ip6->hop_limit = 64;
		word = (__u16 *)ic;
		old = *word;
		ic->type = ICMPV6_ECHO_REPLY;
		ic->checksum = csum_replace16(ic->checksum, old, *word);
	}
	swap_macs(eth);
	count(st, LB_CNT_ICMP_ECHO_REPLY, len);
	return XDP_TX;
}

/*
 * ICMP whose destination may be a VIP address (the filter said so). p has
 * the outer addresses and l4_off. "Fragmentation needed" (ICMPv4 3/4) and
 * "packet too big" (ICMPv6 2) go to the real that owns the quoted flow, so
 * its path-MTU discovery works: by the connection table alone when the
 * flow is established (the common case, one lookup), else by the VIP and
 * its ring. An echo request to a VIP address is answered from the VIP
 * (documented: a VIP answers ping from whichever LB the router picked);
 * anything else to a VIP address is dropped: the LB's own stack must never
 * see a VIP's packets, it would route them back out. ICMP to other
 * addresses goes up the stack.
 */
static __always_inline int handle_icmp(struct xdp_md *ctx, struct lb_counters *st, struct parsed *p,
				       struct lb_vip_key *vk, __u64 len)
{
	int kind = icmp_classify(ctx, p), rc;
	struct lb_vip_meta *meta;
	struct lb_real *real;
	struct lb_ctl *cfg;
	__u32 zero = 0, real_id;

	/* The quoted flow's entry names a VIP on this very address (the
	 * quote's source is the outer destination): no need to ask. */
	if (kind == ICMP_K_QUOTE) {
		p->syn = 0;
		rc = forward_established(ctx, st, p, len, 0);
		if (rc >= 0)
			goto sent;
	}
	if (!is_vip_address(vk)) {
		count(st, LB_CNT_PASS_NON_VIP, len);
		return XDP_PASS;
	}
	if (kind == ICMP_K_MALFORMED) {
		count(st, LB_CNT_DROP_MALFORMED, len);
		return XDP_DROP;
	}
	if (kind == ICMP_K_ECHO)
		return icmp_echo_reply(ctx, st, p, len);
	if (kind != ICMP_K_QUOTE)
		goto drop;

	__builtin_memcpy(vk->addr, p->key.dst, 16);
	vk->family = p->key.family;
	vk->port = p->key.dport;
	vk->proto = p->key.proto;
	meta = bpf_map_lookup_elem(&vip_map, vk);
	if (!meta || !vk->port)
		goto drop; /* no service on the quoted port (0: no VIP's) */
	p->gue = !!(meta->flags & LB_VIP_F_ENCAP_GUE);
	if (meta->flags & LB_VIP_F_HASH_3TUPLE) {
		p->key.sport = 0;
		p->key.dport = 0;
		p->conn_miss = 0;
		p->cslot_set = 0;
	}
	real_id = pick_real(st, p, meta, 0);
	real = real_id == LB_REAL_NONE ? NULL : bpf_map_lookup_elem(&reals_map, &real_id);
	cfg = bpf_map_lookup_elem(&ctl_map, &zero);
	if (!real || !real->family || !cfg) {
		count(st, LB_CNT_DROP_NO_REAL, len);
		return XDP_DROP;
	}
	rc = encap_and_forward(ctx, st, p, real, cfg, len);
sent:
	/* Counted as steered only when it left (tx counts it too); a drop
	 * on the way is counted by its reason alone. */
	if (rc == XDP_TX || rc == XDP_REDIRECT)
		count(st, LB_CNT_ICMP_STEERED, len);
	return rc;
drop:
	count(st, LB_CNT_DROP_ICMP, len);
	return XDP_DROP;
}

SEC("xdp")
int lb_balancer(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct lb_counters *st = counters();
	struct ethhdr *eth = data;
	struct lb_vip_key vk = {};
	struct lb_vip_meta *meta;
	struct lb_real *real;
	struct lb_ctl *cfg;
	/* 8-aligned: the addresses in its key are compared as __u64. */
	struct parsed p __attribute__((aligned(8))) = {};
	__u32 zero = 0, real_id;
	__u64 len = data_end - data;
	int rc;

	count(st, LB_CNT_RX, len);
	if ((void *)(eth + 1) > data_end) {
		count(st, LB_CNT_DROP_MALFORMED, len);
		return XDP_DROP;
	}
	if (eth->h_proto == bpf_htons(ETH_P_IP))
		rc = parse_ipv4(eth + 1, data_end, &p);
	else if (eth->h_proto == bpf_htons(ETH_P_IPV6))
		rc = parse_ipv6(eth + 1, data_end, &p);
	else
		rc = PARSE_NOT_IP;

	switch (rc) {
	case PARSE_OK:
	case PARSE_NOT_L4:
	case PARSE_IPV6_EXT:
	case PARSE_ICMP:
		break;
	case PARSE_NOT_IP:
		count(st, LB_CNT_PASS_NON_IP, len);
		return XDP_PASS;
	default:
		count(st, LB_CNT_DROP_MALFORMED, len);
		return XDP_DROP;
	}

	if (!maybe_vip_address(&p.key)) {
		count(st, rc == PARSE_IPV6_EXT ? LB_CNT_PASS_IPV6_EXT : LB_CNT_PASS_NON_VIP, len);
		return XDP_PASS;
	}
	if (rc == PARSE_OK && !p.fragment && !p.syn) {
		int verdict = forward_established(ctx, st, &p, len, 1);

		if (verdict >= 0)
			return verdict;
	}
	__builtin_memcpy(vk.addr, p.key.dst, 16);
	vk.family = p.key.family;
	if (rc == PARSE_ICMP)
		return handle_icmp(ctx, st, &p, &vk, len);
	if (rc != PARSE_OK) {
		/* Not TCP/UDP we can hash. To a VIP address (the address-only
		 * entry) it must not go up this LB's stack, which would route
		 * it straight back toward the router. */
		if (is_vip_address(&vk)) {
			count(st, LB_CNT_DROP_VIP_UNHANDLED, len);
			return XDP_DROP;
		}
		count(st, rc == PARSE_IPV6_EXT ? LB_CNT_PASS_IPV6_EXT : LB_CNT_PASS_NON_VIP, len);
		return XDP_PASS;
	}
	if (p.fragment) {
		/* A fragment may carry no ports: only a 3-tuple VIP (its
		 * port-less entry) can balance it. To another VIP address
		 * (the address-only entry) it is dropped and counted rather
		 * than let the stack route it back out. */
		vk.proto = p.key.proto;
		meta = bpf_map_lookup_elem(&vip_map, &vk);
		if (!meta || !(meta->flags & LB_VIP_F_HASH_3TUPLE)) {
			if (is_vip_address(&vk)) {
				count(st, LB_CNT_DROP_FRAGMENT, len);
				return XDP_DROP;
			}
			count(st, LB_CNT_PASS_NON_VIP, len);
			return XDP_PASS;
		}
	} else {
		vk.port = p.key.dport;
		vk.proto = p.key.proto;
		/* Port 0 is no VIP's: (address, 0, protocol) is a 3-tuple
		 * VIP's entry for fragments only. */
		meta = vk.port ? bpf_map_lookup_elem(&vip_map, &vk) : NULL;
		if (!meta) {
			/* A VIP address, but no service on this port: up
			 * this LB's stack it would be routed back to the
			 * router, which sends it here again until its TTL
			 * runs out. */
			if (is_vip_address(&vk)) {
				count(st, LB_CNT_DROP_VIP_UNHANDLED, len);
				return XDP_DROP;
			}
			count(st, LB_CNT_PASS_NON_VIP, len);
			return XDP_PASS;
		}
	}
	count_map(&vip_stats, meta->vip_id, len);
	p.gue = !!(meta->flags & LB_VIP_F_ENCAP_GUE);
	if (meta->flags & LB_VIP_F_HASH_3TUPLE) {
		/* One entry per client in the table, whatever its ports;
		 * a SYN is no new client. Another key: look it up. */
		p.key.sport = 0;
		p.key.dport = 0;
		p.cslot_set = 0;
		p.syn = 0;
		p.conn_miss = 0;
	}

	real_id = pick_real(st, &p, meta, 1);
	real = real_id == LB_REAL_NONE ? NULL : bpf_map_lookup_elem(&reals_map, &real_id);
	cfg = bpf_map_lookup_elem(&ctl_map, &zero);
	if (!real || !real->family || !cfg) {
		count(st, LB_CNT_DROP_NO_REAL, len);
		return XDP_DROP;
	}
	count_map(&real_stats, real_id, len);
	return encap_and_forward(ctx, st, &p, real, cfg, len);
}

/*
 * lb_hc_encap (tc egress on the LB's interface): a health-check probe's
 * packets (skb->mark = LB_HC_MARK_BASE | real id, set by lbd with SO_MARK
 * on the probe's socket) leave this LB addressed to the VIP, like a
 * client's; this encapsulates them toward the real under test with the
 * same outer header as the XDP path (GUE for a GUE VIP) and lets the
 * kernel's FIB and
 * neighbour table pick the next hop (bpf_redirect_neigh). The real answers
 * from the VIP straight to this LB (direct server return), to a plain
 * socket. Everything else leaves untouched.
 */
SEC("tc")
int lb_hc_encap(struct __sk_buff *skb)
{
	__u32 real_id = skb->mark & LB_HC_MARK_REAL, zero = 0, flags;
	/* lbd sets the GUE bit from the checked VIP's encapsulation: the
	 * probe's own destination may be another port (health.port) or
	 * protocol (a UDP VIP checked over TCP). */
	int gue = !!(skb->mark & LB_HC_MARK_GUE);
	__u8 tos, inner_family;
	struct lb_real *real;
	struct lb_ctl *cfg;
	__u16 l3_len, olen;
	__be16 eth_proto;

	if ((skb->mark & LB_HC_MARK_MASK) != LB_HC_MARK_BASE)
		return TC_ACT_OK;
	real = bpf_map_lookup_elem(&reals_map, &real_id);
	cfg = bpf_map_lookup_elem(&ctl_map, &zero);
	if (!real || !real->family || !cfg)
		goto drop;
	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		struct iphdr inner;

		if (bpf_skb_load_bytes(skb, sizeof(struct ethhdr), &inner, sizeof(inner)))
			goto drop;
		inner_family = LB_AF_INET;
		l3_len = bpf_ntohs(inner.tot_len);
		tos = inner.tos;
	} else if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr inner;

		if (bpf_skb_load_bytes(skb, sizeof(struct ethhdr), &inner, sizeof(inner)))
			goto drop;
		inner_family = LB_AF_INET6;
		l3_len = sizeof(inner) + bpf_ntohs(inner.payload_len);
		tos = (inner.priority << 4) | (inner.flow_lbl[0] >> 4);
	} else {
		goto drop; /* not IP: a bug, counted */
	}

	/* The underlay is the real's family, as in the XDP path; adjust_room
	 * turns skb->protocol into the outer one when they differ. */
	if (real->family == LB_AF_INET) {
		struct {
			struct iphdr ip;
			struct udphdr uh;
		} hdr = {};

		olen = sizeof(hdr.ip) + (gue ? sizeof(hdr.uh) : 0);
		flags = BPF_F_ADJ_ROOM_ENCAP_L3_IPV4 | (gue ? BPF_F_ADJ_ROOM_ENCAP_L4_UDP : 0);
		if (bpf_skb_adjust_room(skb, olen, BPF_ADJ_ROOM_MAC, flags))
			goto drop;
		fill_ipip(&hdr.ip, l3_len + olen - sizeof(hdr.ip), tos,
			  tunnel_proto(gue, inner_family), real, cfg);
		fill_gue(&hdr.uh, l3_len, skb->hash, cfg);
		if (bpf_skb_store_bytes(skb, sizeof(struct ethhdr), &hdr, olen & 0x3f, 0))
			goto drop;
		eth_proto = bpf_htons(ETH_P_IP);
	} else {
		struct {
			struct ipv6hdr ip;
			struct udphdr uh;
		} hdr = {};

		olen = sizeof(hdr.ip) + (gue ? sizeof(hdr.uh) : 0);
		flags = BPF_F_ADJ_ROOM_ENCAP_L3_IPV6 | (gue ? BPF_F_ADJ_ROOM_ENCAP_L4_UDP : 0);
		if (bpf_skb_adjust_room(skb, olen, BPF_ADJ_ROOM_MAC, flags))
			goto drop;
		fill_ip6ip6(&hdr.ip, l3_len + olen - sizeof(hdr.ip), tos, skb->hash,
			    tunnel_proto(gue, inner_family), real, cfg);
		fill_gue(&hdr.uh, l3_len, skb->hash, cfg);
		if (bpf_skb_store_bytes(skb, sizeof(struct ethhdr), &hdr, olen & 0x3f, 0))
			goto drop;
		eth_proto = bpf_htons(ETH_P_IPV6);
	}
	if (inner_family != real->family &&
	    bpf_skb_store_bytes(skb, __builtin_offsetof(struct ethhdr, h_proto), &eth_proto,
				sizeof(eth_proto), 0))
		goto drop;
	count(counters(), LB_CNT_HC_TX, skb->len);
	/* The redirect passes this hook again: unmarked, it goes through. */
	skb->mark = 0;
	return bpf_redirect_neigh(skb->ifindex, NULL, 0, 0);
drop:
	count(counters(), LB_CNT_HC_DROP, skb->len);
	return TC_ACT_SHOT;
}

char LICENSE[] SEC("license") = "GPL";
