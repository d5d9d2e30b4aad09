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

static __always_inline int strip(struct __sk_buff *skb, __u32 outer_len, __u32 counter)
{
	if (bpf_skb_adjust_room(skb, -(__s32)outer_len, BPF_ADJ_ROOM_MAC, 0)) {
		count(LB_DCNT_DROP_MALFORMED, skb->len);
		return TC_ACT_SHOT;
	}
	count(counter, skb->len);
	return TC_ACT_OK;
}

/*
 * 0 if the outer source, outer destination and inner destination are
 * trusted, else the counter of the first that is not. k is all zero on
 * entry; the addresses are copied in (16 bytes for IPv6, 4 for IPv4).
 */
static __always_inline __u32 untrusted(struct lb_decap_key *k, const void *src, const void *dst,
				       const void *inner_dst, __u32 len)
{
	__u32 zero = 0;
	struct lb_decap_cfg *cfg = bpf_map_lookup_elem(&decap_cfg, &zero);

	if (!cfg || cfg->check_source) {
		__builtin_memcpy(k->addr, src, len);
		if (!bpf_map_lookup_elem(&decap_lbs, k))
			return LB_DCNT_DROP_SOURCE;
	}
	__builtin_memcpy(k->addr, dst, len);
	if (!bpf_map_lookup_elem(&decap_local, k))
		return LB_DCNT_DROP_DEST;
	__builtin_memcpy(k->addr, inner_dst, len);
	if (!bpf_map_lookup_elem(&decap_vips, k))
		return LB_DCNT_DROP_INNER;
	return 0;
}

/*
 * Is this UDP header GUE to strip (lb_abi.h: variant 1 to gue_port)?
 * Returns 1 (yes), 0 (not GUE: some other UDP, pass it) or -1 (to the GUE
 * port but not variant 1 or cut short: malformed). want_version is the
 * outer family's: an IPv4 packet in IPv6 GUE (or the reverse) is not
 * something the balancer sends.
 */
static __always_inline int is_gue(struct udphdr *uh, void *data_end, __u8 want_version)
{
	__u32 zero = 0;
	struct lb_decap_cfg *cfg = bpf_map_lookup_elem(&decap_cfg, &zero);
	__u8 *first = (void *)(uh + 1);

	if (!cfg || !cfg->gue_port)
		return 0;
	if ((void *)(uh + 1) > data_end)
		return 0;
	if (uh->dest != cfg->gue_port)
		return 0;
	if ((void *)(first + 1) > data_end || (*first >> 4) != want_version)
		return -1;
	return 1;
}

SEC("tc")
int lb_decap(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;

	count(LB_DCNT_RX, skb->len);
	if ((void *)(eth + 1) > data_end)
		goto pass;

	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *outer = (void *)(eth + 1);
		__u32 outer_len = sizeof(*outer), counter = LB_DCNT_DECAP_IPIP;
		struct iphdr *inner;

		if ((void *)(outer + 1) > data_end)
			goto pass;
		if (outer->protocol == IPPROTO_UDP && outer->ihl == 5) {
			struct udphdr *uh = (void *)(outer + 1);
			int gue = is_gue(uh, data_end, 4);

			if (!gue)
				goto pass;
			if (gue < 0) {
				count(LB_DCNT_DROP_MALFORMED, skb->len);
				return TC_ACT_SHOT;
			}
			outer_len += sizeof(*uh);
			counter = LB_DCNT_DECAP_GUE;
		} else if (outer->protocol != IPPROTO_IPIP) {
			goto pass;
		}
		/* Only the 20-byte outer header the balancer writes; options
		 * or fragments mean the packet is not ours to strip. */
		if (outer->ihl != 5 || (outer->frag_off & bpf_htons(0x3fff))) {
			count(LB_DCNT_DROP_MALFORMED, skb->len);
			return TC_ACT_SHOT;
		}
		inner = (void *)outer + outer_len;
		if ((void *)(inner + 1) > data_end || inner->version != 4) {
			count(LB_DCNT_DROP_MALFORMED, skb->len);
			return TC_ACT_SHOT;
		}
		{
			struct lb_decap_key k = {.family = LB_AF_INET};
			__u32 why = untrusted(&k, &outer->saddr, &outer->daddr, &inner->daddr, 4);

			if (why) {
				count(why, skb->len);
				return TC_ACT_SHOT;
			}
		}
		return strip(skb, outer_len, counter);
	}
	if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *outer = (void *)(eth + 1);
		__u32 outer_len = sizeof(*outer), counter = LB_DCNT_DECAP_IP6IP6;
		struct ipv6hdr *inner;

		if ((void *)(outer + 1) > data_end)
			goto pass;
		if (outer->nexthdr == IPPROTO_UDP) {
			struct udphdr *uh = (void *)(outer + 1);
			int gue = is_gue(uh, data_end, 6);

			if (!gue)
				goto pass;
			if (gue < 0) {
				count(LB_DCNT_DROP_MALFORMED, skb->len);
				return TC_ACT_SHOT;
			}
			outer_len += sizeof(*uh);
			counter = LB_DCNT_DECAP_GUE;
		} else if (outer->nexthdr != IPPROTO_IPV6) {
			goto pass;
		}
		inner = (void *)outer + outer_len;
		if ((void *)(inner + 1) > data_end || inner->version != 6) {
			count(LB_DCNT_DROP_MALFORMED, skb->len);
			return TC_ACT_SHOT;
		}
		{
			struct lb_decap_key k = {.family = LB_AF_INET6};
			__u32 why = untrusted(&k, &outer->saddr, &outer->daddr, &inner->daddr, 16);

			if (why) {
				count(why, skb->len);
				return TC_ACT_SHOT;
			}
		}
		return strip(skb, outer_len, counter);
	}
pass:
	count(LB_DCNT_PASS, skb->len);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
