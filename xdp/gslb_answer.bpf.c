// SPDX-License-Identifier: GPL-2.0-only
/*
 * gslb_answer.bpf.c - gslbd's answers in XDP.
 *
 * Nearly every query an authoritative GSLB server gets is the same shape:
 * one A or AAAA question for a service name, maybe an OPT record (RFC
 * 6891) with an EDNS Client Subnet option (RFC 7871). This program answers
 * that shape in the driver: it walks the same radix tree gslbd serves
 * from (copied into an array by gslbd), takes the first PoP of the
 * entry's list that is up, writes the answer over the query and sends it
 * back out of the interface it came in on (XDP_TX). Anything else - TCP,
 * another name or type, other EDNS options, a client the map does not
 * hold, no PoP of its list up, an odd packet - goes up the stack to
 * gslbd's sockets untouched (XDP_PASS), where dns.c answers it. An answer
 * from here is byte for byte the one dns.c would give (gslb/test_xdp_answer.c
 * compares the two on generated and mutated queries).
 *
 * The query is copied into a per-CPU buffer, checked and answered there,
 * and only then copied back over the frame, so a query that is passed on
 * reaches the kernel exactly as it came.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "gslb_xdp.h"

/* The name's words are masked as little-endian (its first byte lowest),
 * as gslbd lays them out on the same host. */
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
	       "names are compared as little-endian words");

#define IP_MF	    0x2000
#define IP_OFFSET   0x1fff
#define DNS_HDR	    12
#define T_A	    1
#define T_AAAA	    28
#define T_OPT	    41
#define C_IN	    1
#define OPT_ECS	    8
#define MASK_BUF(x) ((x) & (GX_SCRATCH / 2 - 1)) /* offsets stay in the buffer */

char LICENSE[] SEC("license") = "GPL";

/* Written by gslbd through the skeleton's mapping of .bss. */
volatile struct gx_conf gx_conf;
struct gx_pop gx_pops[GX_MAX_POPS];

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct gx_tab);
	__uint(max_entries, 2); /* gslbd sets 2 x tab_cap before loading */
} gx_tabs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct gx_list);
	__uint(max_entries, 2); /* 2 x list_cap */
} gx_lists SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct gx_name);
	__uint(max_entries, 2 * GX_NAME_SLOTS);
} gx_names SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct gx_rrl_key);
	__type(value, struct gx_rrl_val);
	__uint(max_entries, GX_RRL_SLOTS);
} gx_rrl SEC(".maps");

struct scratch {
	__u8 buf[GX_SCRATCH];
	struct gx_rrl_key rkey;
	__u64 name[GX_NAME_KEY / 8]; /* the question's name, lowercased */
	__u8 addr[16];		     /* the client */
	__u8 vip[16];		     /* the answer */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct scratch);
	__uint(max_entries, 1);
} gx_scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, GX_COUNTERS);
} gx_counters SEC(".maps");

static __always_inline void count(__u32 c)
{
	__u64 *v = bpf_map_lookup_elem(&gx_counters, &c);
	if (v)
		*v += 1;
}

static __always_inline int pass(__u32 why)
{
	count(why);
	return XDP_PASS;
}

/* A rate-limited query: dropped. */
static __always_inline int dropped(void)
{
	count(GX_RRL_DROPPED);
	return XDP_DROP;
}

/* No room to write the answer: the sockets answer it, but a slip is
 * dropped (passed on, it could become a whole answer). */
static __always_inline int no_room(int verdict)
{
	return verdict == 2 ? dropped() : pass(GX_PASS_TAIL);
}

static __always_inline __u16 be16_at(const __u8 *b, __u32 off)
{
	return (__u16)(b[MASK_BUF(off)] << 8 | b[MASK_BUF(off + 1)]);
}

static __always_inline void put16(__u8 *b, __u32 off, __u16 v)
{
	b[MASK_BUF(off)] = (__u8)(v >> 8);
	b[MASK_BUF(off + 1)] = (__u8)v;
}

/* Would the kernel hand this datagram to gslbd, and may it be answered
 * from here? (As gslbd's xdp_plausible: to a listen address, from a
 * unicast source that is not ours.) */
static __always_inline int plausible(const __u8 *src, const __u8 *dst, int v6)
{
	if (v6) {
		if (src[0] == 0xff)
			return 0;
		__u32 z = 0;
#pragma unroll
		for (int i = 0; i < 10; i++)
			z |= src[i];
		if (!z && src[10] == 0xff && src[11] == 0xff)
			return 0; /* IPv4-mapped */
		__u32 z15 = z | src[10] | src[11] | src[12] | src[13] | src[14];
		if (!z15 && src[15] <= 1)
			return 0; /* :: and ::1 */
	} else if (src[0] == 0 || src[0] == 127 || src[0] >= 224) {
		return 0;
	}
	int to_us = 0;
	__u32 n = gx_conf.n_listen;
	__u8 fam = v6 ? 6 : 4;
#pragma unroll
	for (int i = 0; i < GX_MAX_LISTEN; i++) {
		if (i >= n || gx_conf.listen_fam[i] != fam)
			continue;
		int same_src = 1, same_dst = 1;
#pragma unroll
		for (int j = 0; j < 16; j++) {
			if (j >= (v6 ? 16 : 4))
				break;
			if (gx_conf.listen[i][j] != src[j])
				same_src = 0;
			if (gx_conf.listen[i][j] != dst[j])
				same_dst = 0;
		}
		if (same_src)
			return 0;
		if (same_dst)
			to_us = 1;
	}
	return to_us;
}

/* One's complement sum folded to 16 bits. */
static __always_inline __u16 fold(__u64 s)
{
	s = (s & 0xffffffff) + (s >> 32);
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (__u16)s;
}

/* The rate limiter (gslbd's rrl_check): 1 answer, 2 answer truncated,
 * 0 drop, 3 pass on to gslbd. Buckets per source prefix in an LRU; updates from several CPUs
 * race, which can only let a little more or less through. */
static __always_inline int rrl(struct scratch *s, const __u8 *src, int v6)
{
	__u32 rate = gx_conf.rrl_rate;
	if (!rate)
		return 1;
	__builtin_memset(&s->rkey, 0, sizeof(s->rkey));
	s->rkey.fam = v6 ? 6 : 4;
	__u32 bits = v6 ? gx_conf.rrl_v6_prefix : gx_conf.rrl_v4_prefix;
#pragma unroll
	for (int i = 0; i < 16; i++) {
		__u32 lo = (__u32)i * 8;
		__u8 m = bits >= lo + 8 ? 0xff : bits <= lo ? 0 : (__u8)(0xff00 >> (bits - lo));
		if (i < (v6 ? 16 : 4))
			s->rkey.addr[i] = src[i] & m;
	}
	__u64 now = bpf_ktime_get_coarse_ns() / 1000000;
	__u64 cap = (__u64)gx_conf.rrl_burst * 1000;
	struct gx_rrl_val *v = bpf_map_lookup_elem(&gx_rrl, &s->rkey);
	if (!v) {
		struct gx_rrl_val nv = {.tokens_milli = cap, .last_ms = now};
		bpf_map_update_elem(&gx_rrl, &s->rkey, &nv, BPF_NOEXIST);
		v = bpf_map_lookup_elem(&gx_rrl, &s->rkey);
		if (!v)
			return 3; /* no bucket: gslbd's own limiter decides */
	}
	__u64 t = v->tokens_milli + (now - v->last_ms) * rate;
	if (now < v->last_ms) /* another CPU's newer clock */
		t = v->tokens_milli;
	v->tokens_milli = t > cap ? cap : t;
	v->last_ms = now;
	if (v->tokens_milli >= 1000) {
		v->tokens_milli -= 1000;
		return 1;
	}
	v->limited++;
	__u32 slip = gx_conf.rrl_slip;
	return slip && v->limited % slip == 0 ? 2 : 0;
}

/* One label of the question's name. */
struct label_ctx {
	__u8 *b;
	__u32 dns_len, pos, named, bad;
};

static long label_step(__u32 i, void *arg)
{
	struct label_ctx *l = arg;
	if (DNS_HDR + l->pos >= l->dns_len) {
		l->bad = 1;
		return 1;
	}
	__u8 c = l->b[MASK_BUF(DNS_HDR + l->pos)];
	if (!c) {
		l->named = 1;
		return 1;
	}
	if (c > 63) { /* a pointer or a reserved label type */
		l->bad = 1;
		return 1;
	}
	l->pos += c + 1;
	return l->pos >= GX_NAME_KEY; /* longer than the program keeps */
}

/* Four bits down the radix tree (four turns of gmap_lookup's loop). */
struct walk_ctx {
	struct scratch *s;
	__u32 base, n_tabs, bits;
	__u32 tab;  /* the table reached, + 1 */
	__u32 stop; /* the entry the walk stopped at (0: not yet) */
	__u32 depth, bad;
};

static long walk_step(__u32 k, void *arg)
{
	struct walk_ctx *w = arg;
	__u32 d = k * 4;
	if (d >= w->bits || w->tab - 1 >= w->n_tabs) {
		w->bad = 1;
		return 1;
	}
	__u32 rem = w->bits - d, r = rem < 4 ? rem : 4;
	__u32 idx = w->base + w->tab - 1;
	struct gx_tab *t = bpf_map_lookup_elem(&gx_tabs, &idx);
	if (!t) {
		w->bad = 1;
		return 1;
	}
	__u32 nib = (w->s->addr[(d >> 3) & 15] >> (d & 4 ? 0 : 4)) & 0xf;
	__u32 e = t->e[(((1u << r) - 2) + (nib >> (4 - r))) & (GX_TAB_ENTS - 1)];
	if (e & GX_ENT_NEXT) {
		w->tab = e & ~GX_ENT_NEXT;
		w->depth = d + 4;
		return 0;
	}
	w->stop = e;
	w->depth = d + ((e >> GX_ENT_STEPS) & 7);
	return 1;
}

SEC("xdp")
int gslb_answer(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	count(GX_RX);
	if (!gx_conf.enabled)
		return pass(GX_PASS_BUSY);

	/* ---- Ethernet, IP, UDP ---- */
	struct ethhdr *eth = data;
	/* Group addresses either way: the answer would go to a group. */
	if ((void *)(eth + 1) > end || (eth->h_dest[0] & 1) || (eth->h_source[0] & 1))
		return pass(GX_PASS_OTHER);
	int v6;
	__u32 l4off, l4len;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);
		if ((void *)(ip + 1) > end || ip->version != 4 || ip->ihl != 5 ||
		    (ip->frag_off & bpf_htons(IP_MF | IP_OFFSET)) || ip->protocol != IPPROTO_UDP)
			return pass(GX_PASS_OTHER);
		/* A bad header checksum: the kernel drops it (ip_rcv). */
		__u32 *iw = (void *)ip;
		if (fold((__u64)iw[0] + iw[1] + iw[2] + iw[3] + iw[4]) != 0xffff)
			return pass(GX_PASS_OTHER);
		__u32 tot = bpf_ntohs(ip->tot_len);
		if (tot < sizeof(*ip) + sizeof(struct udphdr))
			return pass(GX_PASS_OTHER);
		v6 = 0;
		l4off = sizeof(*eth) + sizeof(*ip);
		l4len = tot - sizeof(*ip);
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);
		if ((void *)(ip6 + 1) > end || ip6->version != 6 || ip6->nexthdr != IPPROTO_UDP)
			return pass(GX_PASS_OTHER);
		v6 = 1;
		l4off = sizeof(*eth) + sizeof(*ip6);
		l4len = bpf_ntohs(ip6->payload_len);
	} else {
		return pass(GX_PASS_OTHER);
	}
	struct udphdr *udp = data + l4off;
	if ((void *)(udp + 1) > end || udp->dest != gx_conf.port || !udp->source)
		return pass(GX_PASS_OTHER);
	__u32 ulen = bpf_ntohs(udp->len);
	if (ulen != l4len || ulen < sizeof(*udp) || data + l4off + ulen > end)
		return pass(GX_PASS_OTHER);
	__u8 src[16] = {}, dst[16] = {};
	if (v6) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);
		__builtin_memcpy(src, &ip6->saddr, 16);
		__builtin_memcpy(dst, &ip6->daddr, 16);
	} else {
		struct iphdr *ip = (void *)(eth + 1);
		__builtin_memcpy(src, &ip->saddr, 4);
		__builtin_memcpy(dst, &ip->daddr, 4);
	}
	if (!plausible(src, dst, v6))
		return pass(GX_PASS_OTHER);

	/* ---- the query, in the per-CPU buffer ---- */
	__u32 dns_len = ulen - sizeof(*udp);
	if (dns_len < DNS_HDR + 5 || dns_len > GX_MAX_QUERY)
		return pass(GX_PASS_SHAPE);
	__u32 zero = 0;
	struct scratch *s = bpf_map_lookup_elem(&gx_scratch, &zero);
	if (!s)
		return pass(GX_PASS_SHAPE);
	/* The message at offset 4, so that the name (at 12) starts on an
	 * 8-byte boundary and is read in words. */
	__u8 *b = s->buf + 4;
	if (bpf_xdp_load_bytes(ctx, l4off + sizeof(*udp), b, dns_len))
		return pass(GX_PASS_SHAPE);
	/* A query (QR 0, opcode QUERY), one question, nothing in the answer
	 * and authority sections, at most the OPT record in additional. */
	if ((b[2] & 0xf8) || be16_at(b, 4) != 1 || be16_at(b, 6) || be16_at(b, 8))
		return pass(GX_PASS_SHAPE);
	__u16 ar = be16_at(b, 10);
	if (ar > 1)
		return pass(GX_PASS_SHAPE);

	/* QNAME (RFC 1035 section 4.1.2): labels of at most 63 bytes up to
	 * the root label, uncompressed (a pointer is left to gslbd). */
	struct label_ctx lc = {.b = b, .dns_len = dns_len};
	bpf_loop(GX_NAME_LABELS + 1, label_step, &lc, 0); /* + the root label */
	if (lc.bad)
		return pass(GX_PASS_SHAPE);
	if (!lc.named)
		return pass(GX_PASS_NAME); /* longer, or more labels, than kept here */
	__u32 pos = lc.pos;
	__u32 nlen = pos + 1;
	__u32 q = DNS_HDR + nlen;
	if (q + 4 > dns_len)
		return pass(GX_PASS_SHAPE);
	__u16 qtype = be16_at(b, q), qclass = be16_at(b, q + 2);
	__u32 qend = q + 4;
	if ((qtype != T_A && qtype != T_AAAA) || qclass != C_IN)
		return pass(GX_PASS_SHAPE);
	/* Trailing bytes after the question are a FORMERR, gslbd's. */
	if (!ar && qend != dns_len)
		return pass(GX_PASS_SHAPE);

	/* Everything from gslbd's copy is read between here and the second
	 * look at seq (xdp_answer.c). */
	__u32 seq = gx_conf.seq;
	__u32 set = seq & 1;
	if (!gx_conf.set[set].loaded)
		return pass(GX_PASS_BUSY);

	/* The name, lowercased a word at a time ('A'-'Z' only: a label's
	 * length byte is below 64, never a letter), hashed to its slot and
	 * compared word for word with the name gslbd put there. */
	__u64 *words = (__u64 *)(b + DNS_HDR);
	__u64 h = 0, diff = 0;
#pragma clang loop unroll(disable)
	for (int i = 0; i < GX_NAME_KEY / 8; i++) {
		/* Keep the name's bytes of this word, no branch (the
		 * verifier walks one path): l = clamp(nlen - 8i, 0, 8). */
		__s64 left = (__s64)nlen - i * 8;
		left &= ~(left >> 63);
		__s64 over = left - 8;
		left = 8 + (over & (over >> 63));
		__u64 w = words[i] & (((1ULL << (4 * left)) << (4 * left)) - 1);
		__u64 low7 = w & 0x7f7f7f7f7f7f7f7fULL;
		__u64 ge_a = low7 + 0x3f3f3f3f3f3f3f3fULL; /* high bit: >= 'A' */
		__u64 gt_z = low7 + 0x2525252525252525ULL; /* high bit: > 'Z' */
		w |= (ge_a & ~gt_z & ~w & 0x8080808080808080ULL) >> 2;
		s->name[i] = w;
		h = gx_name_mix(h, w);
	}
	__u32 slot = set * GX_NAME_SLOTS + gx_name_slot(h);
	struct gx_name *name = bpf_map_lookup_elem(&gx_names, &slot);
	if (!name || name->len != nlen)
		return pass(GX_PASS_NAME);
#pragma clang loop unroll(disable)
	for (int i = 0; i < GX_NAME_KEY / 8; i++)
		diff |= name->w[i] ^ s->name[i];
	if (diff)
		return pass(GX_PASS_NAME);
	__u32 ttl = name->ttl;

	/* ---- EDNS (RFC 6891 section 6.1.2) and ECS (RFC 7871 section 6) ---- */
	int edns = 0, ecs = 0;
	__u16 efam = 0;
	__u32 esrc = 0, ebytes = 0;
	__builtin_memset(s->addr, 0, sizeof(s->addr));
	if (ar) {
		__u32 o = qend;
		if (o + 11 > dns_len || b[MASK_BUF(o)] != 0 || be16_at(b, o + 1) != T_OPT ||
		    b[MASK_BUF(o + 6)] != 0 /* version */)
			return pass(GX_PASS_SHAPE);
		__u32 rdlen = be16_at(b, o + 9);
		if (o + 11 + rdlen != dns_len)
			return pass(GX_PASS_SHAPE);
		edns = 1;
		if (rdlen) {
			__u32 e = o + 11;
			if (rdlen < 8 || be16_at(b, e) != OPT_ECS || be16_at(b, e + 2) + 4 != rdlen)
				return pass(GX_PASS_SHAPE);
			efam = be16_at(b, e + 4);
			esrc = b[MASK_BUF(e + 6)];
			if ((efam != 1 || esrc > 32) && (efam != 2 || esrc > 128))
				return pass(GX_PASS_SHAPE);
			ebytes = (esrc + 7) / 8;
			if (rdlen != 8 + ebytes)
				return pass(GX_PASS_SHAPE);
#pragma unroll
			for (__u32 i = 0; i < 16; i++)
				if (i < ebytes)
					s->addr[i] = b[MASK_BUF(e + 8 + i)];
			if ((esrc & 7) && (s->addr[(ebytes - 1) & 15] & (0xff >> (esrc & 7))))
				return pass(GX_PASS_SHAPE); /* FORMERR, gslbd's */
			ecs = 1;
		}
	}

	/* ---- the client: the ECS subnet, else the resolver ---- */
	int cv6;
	__u32 bits;
	if (ecs && esrc) {
		cv6 = efam == 2;
		bits = esrc;
	} else {
		cv6 = v6;
		bits = v6 ? 128 : 32;
		__builtin_memcpy(s->addr, src, 16);
	}

	/* ---- the map: gmap_lookup over gslbd's copy of the tree ---- */
	/* A walk stops where a child is missing, at a leaf or after the
	 * client's bits; it stands for all the addresses below that node
	 * when it is a leaf, else one bit more (gmap_lookup). */
	struct walk_ctx wc = {.s = s,
			      .base = set * gx_conf.tab_cap,
			      .n_tabs = gx_conf.set[set].n_tabs,
			      .bits = bits,
			      .tab = gx_conf.set[set].root_tab[cv6]};
	__u32 best, leaf;
	if (!wc.tab) { /* a root without children */
		best = gx_conf.set[set].root_list[cv6];
		leaf = 1;
	} else {
		if (bits)
			bpf_loop((bits + 3) / 4, walk_step, &wc, 0);
		if (wc.bad)
			return pass(GX_PASS_BUSY);
		if (wc.stop) {
			best = wc.stop & GX_ENT_LIST;
			leaf = !!(wc.stop & GX_ENT_LEAF);
		} else {
			/* Every bit down, to a node with children: its own
			 * table has the list. */
			if (wc.tab - 1 >= wc.n_tabs)
				return pass(GX_PASS_BUSY);
			__u32 ti = wc.base + wc.tab - 1;
			struct gx_tab *t = bpf_map_lookup_elem(&gx_tabs, &ti);
			if (!t)
				return pass(GX_PASS_BUSY);
			best = t->e[GX_ENT_HERE] & GX_ENT_LIST;
			leaf = 0;
		}
	}
	__u32 scope = leaf ? wc.depth : wc.depth + 1;
	__u32 max = cv6 ? 128 : 32;
	if (scope > max)
		scope = max;
	if (!best)
		return pass(GX_PASS_MAP); /* the country and default lists are gslbd's */
	if (best - 1 >= gx_conf.set[set].n_lists)
		return pass(GX_PASS_BUSY);
	__u32 idx = set * gx_conf.list_cap + best - 1;
	struct gx_list *l = bpf_map_lookup_elem(&gx_lists, &idx);
	if (!l)
		return pass(GX_PASS_BUSY);
	int want6 = qtype == T_AAAA;
	__u32 pop = GX_NONE;
#pragma unroll
	for (int i = 0; i < GX_LIST_MAX; i++) {
		__u8 p = l->pop[i];
		if (p == GX_NONE)
			break;
		struct gx_pop *pp = &gx_pops[p];
		if (pp->state == GX_POP_UP && (want6 ? pp->has6 : pp->has4)) {
			pop = p;
			break;
		}
	}
	/* None up: drained ones or the anycast VIP answer, gslbd's rules. */
	if (pop == GX_NONE)
		return pass(GX_PASS_MAP);
	struct gx_pop *pp = &gx_pops[pop & (GX_MAX_POPS - 1)];
	__builtin_memcpy(s->vip, pp->vip6, 16);
	if (!want6)
		__builtin_memcpy(s->vip, pp->vip4, 4);
	__u16 max_udp = gx_conf.max_udp;
	/* Read after everything the answer takes from gslbd's copy: a
	 * change that overlapped moved seq on. enabled first: gslbd sets
	 * it last, after the flip, so seen set, the flip is seen too. (x86
	 * keeps loads in order; weaker CPUs would need a load-acquire.) */
	asm volatile("" ::: "memory");
	if (!gx_conf.enabled || gx_conf.seq != seq)
		return pass(GX_PASS_BUSY);
	if (!ecs || !esrc)
		scope = 0;

	/* ---- the rate limiter ---- */
	int verdict = rrl(s, src, v6);
	if (!verdict)
		return dropped();
	if (verdict == 3)
		return pass(GX_PASS_BUSY);

	/* ---- the answer, written over the query in the buffer ---- */
	b[2] = 0x84 | (b[2] & 0x01); /* QR, AA, RD as asked */
	b[3] &= 0x10;		     /* CD as asked; RA, Z, AD 0; NOERROR */
	__u32 w = qend;
	if (verdict == 2) {
		b[2] |= 0x02; /* TC: header and question only */
		put16(b, 6, 0);
		put16(b, 10, 0);
	} else {
		put16(b, 6, 1);
		put16(b, 10, edns);
		b[MASK_BUF(w)] = 0xc0; /* the question's name (offset 12) */
		b[MASK_BUF(w + 1)] = DNS_HDR;
		put16(b, w + 2, qtype);
		put16(b, w + 4, C_IN);
		put16(b, w + 6, (__u16)(ttl >> 16));
		put16(b, w + 8, (__u16)ttl);
		put16(b, w + 10, want6 ? 16 : 4);
		w += 12;
#pragma unroll
		for (int i = 0; i < 16; i++)
			if (i < (want6 ? 16 : 4))
				b[MASK_BUF(w + i)] = s->vip[i];
		w += want6 ? 16 : 4;
		if (edns) {
			b[MASK_BUF(w)] = 0; /* root */
			put16(b, w + 1, T_OPT);
			put16(b, w + 3, max_udp);
			put16(b, w + 5, 0); /* extended RCODE, version */
			put16(b, w + 7, 0); /* flags */
			put16(b, w + 9, ecs ? 8 + ebytes : 0);
			w += 11;
			if (ecs) {
				put16(b, w, OPT_ECS);
				put16(b, w + 2, 4 + ebytes);
				put16(b, w + 4, efam);
				b[MASK_BUF(w + 6)] = (__u8)esrc;
				b[MASK_BUF(w + 7)] = (__u8)scope;
				w += 8;
#pragma unroll
				for (__u32 i = 0; i < 16; i++)
					if (i < ebytes)
						b[MASK_BUF(w + i)] = s->addr[i];
				w += ebytes;
			}
		}
	}
	__u32 resp_len = w;
	if (resp_len < DNS_HDR || resp_len > GX_MAX_QUERY)
		return no_room(verdict);
	/* Zero the bytes up to the next multiple of 4 for the checksum. */
	b[MASK_BUF(w)] = 0;
	b[MASK_BUF(w + 1)] = 0;
	b[MASK_BUF(w + 2)] = 0;
	__u32 len4 = (resp_len + 3) & ~3u;
	if (len4 < DNS_HDR || len4 > GX_MAX_QUERY)
		return no_room(verdict);
	__s64 sum = bpf_csum_diff(0, 0, (__be32 *)b, len4, 0);
	if (sum < 0)
		return no_room(verdict);

	/*
	 * ---- the frame: grown or cut to the answer, headers written anew ----
	 * An answer grows at the head: a driver's XDP frame keeps 256 bytes
	 * of headroom, while its tailroom may be only what aligning the
	 * query left (a veth's copy of an skb). Every header byte is then
	 * written here, from what was saved of the query.
	 */
	__u32 new_ulen = sizeof(*udp) + resp_len;
	int delta = (int)(l4off + new_ulen) - (int)(end - data);
	__u16 sport = udp->source, dport = udp->dest;
	__u8 smac[ETH_ALEN], dmac[ETH_ALEN];
	__builtin_memcpy(smac, eth->h_source, ETH_ALEN);
	__builtin_memcpy(dmac, eth->h_dest, ETH_ALEN);
	__be16 proto = eth->h_proto;
	if (delta > 0 ? bpf_xdp_adjust_head(ctx, -delta) : delta && bpf_xdp_adjust_tail(ctx, delta))
		return no_room(verdict);
	if (bpf_xdp_store_bytes(ctx, l4off + sizeof(*udp), b, resp_len))
		return XDP_DROP; /* the frame is already changed: not a query any more */
	if (verdict == 2) {
		count(GX_RRL_SLIPPED);
	} else {
		count(GX_ANSWERED);
		count(GX__N + pop);
		if (ecs)
			count(GX_ECS);
	}
	data = (void *)(long)ctx->data;
	end = (void *)(long)ctx->data_end;
	eth = data;
	if ((void *)(eth + 1) > end)
		return XDP_DROP;
	__builtin_memcpy(eth->h_dest, smac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, dmac, ETH_ALEN);
	eth->h_proto = proto;
	/*
	 * The UDP checksum in host order: the pseudo-header (RFC 768; RFC
	 * 8200 section 8.1: addresses, protocol, length), the UDP header
	 * (ports and length; the addresses and ports swap places, which
	 * leaves their sum alone) and the answer. bpf_csum_diff summed the
	 * answer as it lies in memory, so its folded sum is byte-swapped
	 * into host order (a one's complement sum commutes with the swap).
	 */
	__u64 acc = IPPROTO_UDP + new_ulen + new_ulen + bpf_ntohs(sport) + bpf_ntohs(dport) +
		    bpf_ntohs(fold((__u64)(__u32)sum));
#pragma unroll
	for (int i = 0; i < 16; i += 2)
		if (i < (v6 ? 16 : 4))
			acc +=
			    (__u32)(src[i] << 8 | src[i + 1]) + (__u32)(dst[i] << 8 | dst[i + 1]);
	if (v6) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);
		if ((void *)(ip6 + 1) > end)
			return XDP_DROP;
		*(__be32 *)ip6 = bpf_htonl(0x60000000);
		ip6->payload_len = bpf_htons(new_ulen);
		ip6->nexthdr = IPPROTO_UDP;
		ip6->hop_limit = 64;
		__builtin_memcpy(&ip6->saddr, dst, 16);
		__builtin_memcpy(&ip6->daddr, src, 16);
		udp = (void *)(ip6 + 1);
	} else {
		struct iphdr *ip = (void *)(eth + 1);
		if ((void *)(ip + 1) > end)
			return XDP_DROP;
		*(__u8 *)ip = 0x45; /* version 4, 20 bytes */
		ip->tos = 0;
		ip->tot_len = bpf_htons(sizeof(*ip) + new_ulen);
		ip->id = 0;
		ip->frag_off = bpf_htons(0x4000); /* DF */
		ip->ttl = 64;
		ip->protocol = IPPROTO_UDP;
		__builtin_memcpy(&ip->saddr, dst, 4);
		__builtin_memcpy(&ip->daddr, src, 4);
		ip->check = 0;
		__s64 ics = bpf_csum_diff(0, 0, (__be32 *)ip, sizeof(*ip), 0);
		ip->check = (__u16)~fold((__u64)(__u32)ics); /* memory order, as summed */
		udp = (void *)(ip + 1);
	}
	if ((void *)(udp + 1) > end)
		return XDP_DROP;
	udp->source = dport;
	udp->dest = sport;
	udp->len = bpf_htons(new_ulen);
	__u16 ck = ~fold(acc);
	udp->check = bpf_htons(ck ? ck : 0xffff);
	return XDP_TX;
}
