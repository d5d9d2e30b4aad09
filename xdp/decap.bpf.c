// SPDX-License-Identifier: GPL-2.0-only
/*
 * decap.bpf.c - strip IPIP / IP6IP6 / GUE on the L7 hosts (tc ingress).
 *
 * The target kernels have no ipip/ip6tnl modules, and a BPF program also
 * frees operators from tunnel devices. tc rather than XDP because
 * bpf_skb_adjust_room(BPF_ADJ_ROOM_MAC) also handles GRO-merged packets
 * and keeps the skb's metadata right for the stack above. The inner packet
 * then reaches the proxy listening on the VIP (configured on lo), and the
 * reply leaves straight for the client: direct server return.
 *
 * Only the PoP's LBs may use it (lb_abi.h, struct lb_decap_key): a packet
 * whose outer source is not an LB, whose outer destination is not this
 * host, or whose inner destination is not one of its VIPs is dropped and
 * counted. Otherwise anyone reaching the host could have it forward any
 * inner packet: an open relay, and a way around source filters.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/pkt_cls.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "lb_abi.h"

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, LB_DCNT_MAX);
	__type(key, __u32);
	__type(value, struct lb_counter);
} decap_counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, LB_DECAP_LBS_MAX);
	__type(key, struct lb_decap_key);
	__type(value, __u8);
} decap_lbs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, LB_DECAP_LOCAL_MAX);
	__type(key, struct lb_decap_key);
	__type(value, __u8);
} decap_local SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, LB_DECAP_VIPS_MAX);
	__type(key, struct lb_decap_key);
	__type(value, __u8);
} decap_vips SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct lb_decap_cfg);
} decap_cfg SEC(".maps");

static __always_inline void count(__u32 id, __u64 bytes)
{
	struct lb_counter *c = bpf_map_lookup_elem(&decap_counters, &id);

	if (c) {
		c->packets++;
		c->bytes += bytes;
	}
}

/* Linux 6.3's flags for a decap that changes the L3 family (the uapi
 * headers of the build machine may predate them; the values are ABI). */
#ifndef BPF_F_ADJ_ROOM_DECAP_L3_IPV4
#define BPF_F_ADJ_ROOM_DECAP_L3_IPV4 (1ULL << 7)
#define BPF_F_ADJ_ROOM_DECAP_L3_IPV6 (1ULL << 8)
#endif

/*
 * Remove outer_len bytes after Ethernet. When the inner family differs
 * from the outer (an IPv4 VIP over an IPv6 underlay, or the reverse), the
 * skb's protocol and the Ethernet type follow the inner packet.
 */
static __always_inline int strip(struct __sk_buff *skb, __u32 outer_len, __u8 outer_family,
				 __u8 inner_family, __u32 counter)
{
	__u64 flags = 0;

	if (inner_family != outer_family)
		flags = inner_family == LB_AF_INET ? BPF_F_ADJ_ROOM_DECAP_L3_IPV4
						   : BPF_F_ADJ_ROOM_DECAP_L3_IPV6;
	if (bpf_skb_adjust_room(skb, -(__s32)outer_len, BPF_ADJ_ROOM_MAC, flags))
		goto bad;
	if (inner_family != outer_family) {
		__be16 proto = bpf_htons(inner_family == LB_AF_INET ? ETH_P_IP : ETH_P_IPV6);

		if (bpf_skb_store_bytes(skb, __builtin_offsetof(struct ethhdr, h_proto), &proto,
					sizeof(proto), 0))
			goto bad;
	}
	count(counter, skb->len);
	return TC_ACT_OK;
bad:
	count(LB_DCNT_DROP_MALFORMED, skb->len);
	return TC_ACT_SHOT;
}

/* Ethernet + outer IPv6 + UDP + inner IPv6: the most the decap reads. */
#define DECAP_HDRS (14 + 40 + 8 + 40)

/* Is addr (16 bytes, IPv4 zero-padded) of family in map? */
static __always_inline int known(void *map, const void *addr, __u8 family)
{
	struct lb_decap_key k = {.family = family};

	__builtin_memcpy(k.addr, addr, 16);
	return bpf_map_lookup_elem(map, &k) != 0;
}

/*
 * 0 if the outer source, outer destination and inner destination are
 * trusted, else the counter of the first that is not. Addresses are 16
 * bytes, IPv4 zero-padded. cfg may be NULL: every check applies.
 */
static __always_inline __u32 untrusted(const struct lb_decap_cfg *cfg, const void *src,
				       const void *dst, __u8 outer_family, const void *inner_dst,
				       __u8 inner_family)
{
	if ((!cfg || cfg->check_source) && !known(&decap_lbs, src, outer_family))
		return LB_DCNT_DROP_SOURCE;
	if (!known(&decap_local, dst, outer_family))
		return LB_DCNT_DROP_DEST;
	if (!known(&decap_vips, inner_dst, inner_family))
		return LB_DCNT_DROP_INNER;
	return 0;
}

/*
 * Is this UDP header GUE to strip (lb_abi.h: variant 1 to gue_port)?
 * Returns the inner family (LB_AF_INET / LB_AF_INET6), 0 (not GUE: some
 * other UDP, pass it) or -1 (to the GUE port but neither IPv4 nor IPv6
 * follows, or cut short: malformed). cfg may be NULL: no GUE.
 */
static __always_inline int is_gue(struct udphdr *uh, void *data_end, const struct lb_decap_cfg *cfg)
{
	__u8 *first = (void *)(uh + 1);

	if (!cfg || !cfg->gue_port)
		return 0;
	if ((void *)(uh + 1) > data_end)
		return 0;
	if (uh->dest != cfg->gue_port)
		return 0;
	if ((void *)(first + 1) > data_end)
		return -1;
	if ((*first >> 4) == 4)
		return LB_AF_INET;
	if ((*first >> 4) == 6)
		return LB_AF_INET6;
	return -1;
}

SEC("tc")
int lb_decap(struct __sk_buff *skb)
{
	void *data, *data_end;
	__u8 src[16] = {}, dst[16] = {}, idst[16] = {};
	__u8 outer_family, inner_family, next;
	struct lb_decap_cfg *cfg;
	struct ethhdr *eth;
	__u32 zero = 0;
	__u32 outer_len, counter, why;
	void *l4, *inner;

	count(LB_DCNT_RX, skb->len);
	/* Every header read below (Ethernet, outer IPv6, UDP, inner IPv6 at
	 * most) must be in the linear part: some drivers leave only
	 * Ethernet, IP and UDP there for a UDP packet, which would make
	 * every GUE packet look cut short. */
	if (skb->data_end - skb->data < DECAP_HDRS && skb->len > skb->data_end - skb->data)
		bpf_skb_pull_data(skb, skb->len < DECAP_HDRS ? skb->len : DECAP_HDRS);
	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;
	eth = data;
	if ((void *)(eth + 1) > data_end)
		goto pass;

	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *outer = (void *)(eth + 1);

		if ((void *)(outer + 1) > data_end)
			goto pass;
		next = outer->protocol;
		if (next != IPPROTO_IPIP && next != IPPROTO_IPV6 && next != IPPROTO_UDP)
			goto pass;
		if (next == IPPROTO_UDP &&
		    (outer->ihl != 5 || (outer->frag_off & bpf_htons(0x3fff))))
			goto pass; /* not the balancer's GUE: it writes no options
				    * and never fragments */
		/* Only the 20-byte outer header the balancer writes; options
		 * or fragments mean the packet is not ours to strip. */
		if (outer->ihl != 5 || (outer->frag_off & bpf_htons(0x3fff)))
			goto malformed;
		outer_family = LB_AF_INET;
		outer_len = sizeof(*outer);
		__builtin_memcpy(src, &outer->saddr, 4);
		__builtin_memcpy(dst, &outer->daddr, 4);
		l4 = outer + 1;
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *outer = (void *)(eth + 1);

		if ((void *)(outer + 1) > data_end)
			goto pass;
		next = outer->nexthdr;
		if (next != IPPROTO_IPIP && next != IPPROTO_IPV6 && next != IPPROTO_UDP)
			goto pass;
		outer_family = LB_AF_INET6;
		outer_len = sizeof(*outer);
		__builtin_memcpy(src, &outer->saddr, 16);
		__builtin_memcpy(dst, &outer->daddr, 16);
		l4 = outer + 1;
	} else {
		goto pass;
	}

	cfg = bpf_map_lookup_elem(&decap_cfg, &zero);
	if (next == IPPROTO_UDP) {
		int gue = is_gue(l4, data_end, cfg);

		if (!gue)
			goto pass;
		if (gue < 0)
			goto malformed;
		inner_family = (__u8)gue;
		outer_len += sizeof(struct udphdr);
		counter = LB_DCNT_DECAP_GUE;
	} else {
		/* Protocol 4: IPv4 inside; 41: IPv6 inside, whatever the
		 * outer family (a VIP of one family over an underlay of the
		 * other). */
		inner_family = next == IPPROTO_IPIP ? LB_AF_INET : LB_AF_INET6;
		counter = outer_family == LB_AF_INET && inner_family == LB_AF_INET
			      ? LB_DCNT_DECAP_IPIP
			  : outer_family == LB_AF_INET6 && inner_family == LB_AF_INET6
			      ? LB_DCNT_DECAP_IP6IP6
			      : LB_DCNT_DECAP_MIXED;
	}
	inner = (void *)eth + sizeof(*eth) + outer_len;
	if (inner_family == LB_AF_INET) {
		struct iphdr *ip = inner;

		if ((void *)(ip + 1) > data_end || ip->version != 4)
			goto malformed;
		__builtin_memcpy(idst, &ip->daddr, 4);
	} else {
		struct ipv6hdr *ip6 = inner;

		if ((void *)(ip6 + 1) > data_end || ip6->version != 6)
			goto malformed;
		__builtin_memcpy(idst, &ip6->daddr, 16);
	}
	why = untrusted(cfg, src, dst, outer_family, idst, inner_family);
	if (why) {
		count(why, skb->len);
		return TC_ACT_SHOT;
	}
	return strip(skb, outer_len, outer_family, inner_family, counter);
malformed:
	count(LB_DCNT_DROP_MALFORMED, skb->len);
	return TC_ACT_SHOT;
pass:
	count(LB_DCNT_PASS, skb->len);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
