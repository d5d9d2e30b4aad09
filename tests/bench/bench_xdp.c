// SPDX-License-Identifier: GPL-2.0-only
/*
 * bench_xdp - the balancer's cost per packet, next to Katran's, through
 * BPF_PROG_TEST_RUN.
 *
 * Part 1, one packet per call (repeat = 1: with repeat > 1 the kernel
 * re-runs the program on its own, already encapsulated, output). The
 * figure is the kernel's own per-run duration (ns), so syscall overhead is
 * excluded. Each case runs on our balancer and on Katran (an unmodified
 * build, tests/bench/katran_anchor.c), ROUNDS x CALLS times each,
 * interleaved round by round and with the order of the two balancers
 * alternating, so machine noise hits both alike. Quoted: the median of
 * all samples of each, and the median over rounds of the ratio of the two
 * round medians (this host's speed drifts between rounds; two balancers
 * measured back to back in one round share its state, so the per-round
 * ratio is the steadier figure).
 * Both have 100 reals per VIP and the same 2M-entry connection table (ours
 * shared, Katran's one per CPU, as Katran runs).
 *
 * Cases: established flow (one 5-tuple, ACK: connection-table hit), new
 * flow (a fresh 5-tuple on every call, SYN; and ACK only, which Katran
 * looks up in its LRU first), both for IPv4 and IPv6; non-VIP traffic
 * (XDP_PASS); ICMP "fragmentation needed" and ICMPv6 "packet too big" for
 * an established flow, addressed to the VIP and quoting the flow's reply
 * as a router would; next to the floors: an empty XDP program and
 * parse+IPIP+XDP_TX with no lookups.
 *
 * Part 2, the whole path: live-frames mode (BPF_F_TEST_XDP_LIVE_FRAMES,
 * repeat = N) really transmits what XDP_TX returns on the veth, whose peer
 * runs a counting XDP_DROP program; one established flow; Mpps for the
 * balancer, Katran and the parse+IPIP floor.
 *
 * Usage: bench_xdp [--katran PATH | --no-katran] [--live N] [--live-rounds R]
 *                  [--flow-hash 1|2] [CALLS_PER_ROUND]
 * (--flow-hash: the balancer's flow hash version, lb_hash.h; default 1)
 * (root; runs in a private netns).
 */
/* net/if.h before the linux/ headers: linux/if.h then yields to it. */
#include <net/if.h>
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <limits.h>
#include <linux/icmp.h>
#include <linux/icmpv6.h>
#include <linux/if_ether.h>
#include <linux/if_link.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "floor.skel.h"
#include "inet_csum.h"
#include "katran_anchor.h"
#include "l4lb.h"
#include "lb_hash.h"
#include "pass.skel.h"

#ifndef KATRAN_OBJ_DEFAULT
#define KATRAN_OBJ_DEFAULT "../shared/anchors/katran/balancer.bpf.o"
#endif

#define ROUNDS	 15
#define NREALS	 100
#define CONN_MAX (1u << 21)
/* Katran's flood guard allows 125,000 new flows per second per CPU; its
 * counter is zeroed this often in the new-flow cases (see below). */
#define FLOOD_RESET_EVERY   2000
#define LIVE_ROUNDS_MAX	    101
#define LIVE_ROUNDS_DEFAULT 15
#define LIVE_N_DEFAULT	    1000000u
#define VERDICTS	    5 /* XDP_ABORTED .. XDP_REDIRECT */
#define ANY_VERDICT	    UINT32_MAX

/* bx0 is the LB's side of the veth, bx1 the router's. */
static const uint8_t mac_lb[6] = {0x02, 0, 0, 0, 0, 0xb0}, mac_router[6] = {0x02, 0, 0, 0, 0, 0xb1};

enum bal { PORTICO, KATRAN, NBAL };
static const char *bal_names[NBAL] = {"portico", "Katran"};

enum kind { EST4, EST6, SYN4, SYN6, ACK4, NONVIP, ICMP4, ICMP6, EMPTY, FLOOR, NCASES };
static const struct {
	const char *name;
	uint32_t expect; /* ANY_VERDICT: printed, not checked */
	bool newflow;	 /* a fresh 5-tuple on every call */
	bool katran;	 /* also run on Katran */
} cases[NCASES] = {
    [EST4] = {"IPv4 established flow", XDP_TX, false, true},
    [EST6] = {"IPv6 established flow", XDP_TX, false, true},
    [SYN4] = {"IPv4 new flow (SYN)", XDP_TX, true, true},
    [SYN6] = {"IPv6 new flow (SYN)", XDP_TX, true, true},
    [ACK4] = {"IPv4 new non-SYN flow (ACK)", XDP_TX, true, true},
    [NONVIP] = {"non-VIP (pass)", XDP_PASS, false, true},
    [ICMP4] = {"ICMP frag-needed to VIP", ANY_VERDICT, false, true},
    [ICMP6] = {"ICMPv6 packet-too-big to VIP", ANY_VERDICT, false, true},
    [EMPTY] = {"floor: empty XDP program", XDP_PASS, false, false},
    [FLOOR] = {"floor: parse + IPIP + XDP_TX", XDP_TX, false, false},
};

static const char *verdict_name(uint32_t v)
{
	static const char *n[VERDICTS] = {"ABORTED", "XDP_DROP", "XDP_PASS", "XDP_TX", "REDIRECT"};

	return v < VERDICTS ? n[v] : "?";
}

/* --- packets ----------------------------------------------------------- */

/* Headers are built in aligned structs and copied in: after the 14-byte
 * Ethernet header an iphdr in place would be misaligned. */
struct pkt {
	uint8_t b[192];
	size_t len;
};

struct tuple {
	struct lb_addr src, dst;
	uint16_t sport, dport; /* host order */
};

static void put(struct pkt *p, const void *h, size_t n)
{
	memcpy(p->b + p->len, h, n);
	p->len += n;
}

/* The checksum to store, in network order, of a sum. */
static uint16_t fold(uint32_t sum)
{
	return htons((uint16_t)~inet_fold(sum));
}

static void put_eth(struct pkt *p, uint16_t proto)
{
	struct ethhdr e = {.h_proto = htons(proto)};

	memcpy(e.h_dest, mac_lb, 6);
	memcpy(e.h_source, mac_router, 6);
	put(p, &e, sizeof(e));
}

static struct iphdr ip4(const struct lb_addr *s, const struct lb_addr *d, uint8_t proto,
			uint16_t tot_len)
{
	struct iphdr ip = {.version = 4, .ihl = 5, .ttl = 64, .protocol = proto};

	ip.tot_len = htons(tot_len);
	memcpy(&ip.saddr, s->bytes, 4);
	memcpy(&ip.daddr, d->bytes, 4);
	ip.check = fold(inet_sum16(&ip, sizeof(ip), 0));
	return ip;
}

static struct ipv6hdr ip6(const struct lb_addr *s, const struct lb_addr *d, uint8_t nexthdr,
			  uint16_t payload_len)
{
	struct ipv6hdr ip = {.version = 6, .nexthdr = nexthdr, .hop_limit = 64};

	ip.payload_len = htons(payload_len);
	memcpy(&ip.saddr, s->bytes, 16);
	memcpy(&ip.daddr, d->bytes, 16);
	return ip;
}

static struct tcphdr tcp(uint16_t sport, uint16_t dport, bool syn)
{
	struct tcphdr th = {.doff = 5, .window = htons(65535)};

	th.source = htons(sport);
	th.dest = htons(dport);
	th.syn = syn;
	th.ack = !syn;
	return th;
}

static struct pkt mk_tcp(const struct tuple *t, bool syn)
{
	struct pkt p = {0};
	struct tcphdr th = tcp(t->sport, t->dport, syn);

	if (t->src.family == LB_AF_INET) {
		struct iphdr ip = ip4(&t->src, &t->dst, IPPROTO_TCP, 40);

		put_eth(&p, ETH_P_IP);
		put(&p, &ip, sizeof(ip));
	} else {
		struct ipv6hdr ip = ip6(&t->src, &t->dst, IPPROTO_TCP, 20);

		put_eth(&p, ETH_P_IPV6);
		put(&p, &ip, sizeof(ip));
	}
	put(&p, &th, sizeof(th));
	return p;
}

/*
 * ICMP "fragmentation needed" from a router, to the VIP, about the flow's
 * reply (VIP:443 -> client, which the real sent straight to the client):
 * the quote is that packet's IPv4 header, with its original length, and
 * its full 20-byte TCP header (Katran drops a quote of only 8 bytes).
 */
static struct pkt mk_icmp4(const struct tuple *t, const struct lb_addr *router)
{
	struct pkt p = {0};
	struct icmphdr ic = {.type = ICMP_DEST_UNREACH, .code = ICMP_FRAG_NEEDED};
	struct iphdr outer = ip4(router, &t->dst, IPPROTO_ICMP, 20 + 8 + 20 + 20);
	struct iphdr quoted = ip4(&t->dst, &t->src, IPPROTO_TCP, 1480);
	struct tcphdr qt = tcp(t->dport, t->sport, false);
	size_t icmp_off;

	quoted.frag_off = htons(0x4000); /* DF: why the router could not fragment */
	quoted.check = 0;
	quoted.check = fold(inet_sum16(&quoted, sizeof(quoted), 0));
	ic.un.frag.mtu = htons(1400);
	put_eth(&p, ETH_P_IP);
	put(&p, &outer, sizeof(outer));
	icmp_off = p.len;
	put(&p, &ic, sizeof(ic));
	put(&p, &quoted, sizeof(quoted));
	put(&p, &qt, sizeof(qt));
	ic.checksum = fold(inet_sum16(p.b + icmp_off, p.len - icmp_off, 0));
	memcpy(p.b + icmp_off, &ic, sizeof(ic));
	return p;
}

/* ICMPv6 "packet too big", the same shape for the IPv6 flow. */
static struct pkt mk_icmp6(const struct tuple *t, const struct lb_addr *router)
{
	struct pkt p = {0};
	struct icmp6hdr ic = {.icmp6_type = ICMPV6_PKT_TOOBIG};
	struct ipv6hdr outer = ip6(router, &t->dst, IPPROTO_ICMPV6, 8 + 40 + 20);
	struct ipv6hdr quoted = ip6(&t->dst, &t->src, IPPROTO_TCP, 1440);
	struct tcphdr qt = tcp(t->dport, t->sport, false);
	uint32_t sum, plen = htonl(8 + 40 + 20), nh = htonl(IPPROTO_ICMPV6);
	size_t icmp_off;

	ic.icmp6_mtu = htonl(1280);
	put_eth(&p, ETH_P_IPV6);
	put(&p, &outer, sizeof(outer));
	icmp_off = p.len;
	put(&p, &ic, sizeof(ic));
	put(&p, &quoted, sizeof(quoted));
	put(&p, &qt, sizeof(qt));
	/* Pseudo-header: addresses, upper-layer length, next header. */
	sum = inet_sum16(&outer.saddr, 32, 0);
	sum = inet_sum16(&plen, 4, sum);
	sum = inet_sum16(&nh, 4, sum);
	ic.icmp6_cksum = fold(inet_sum16(p.b + icmp_off, p.len - icmp_off, sum));
	memcpy(p.b + icmp_off, &ic, sizeof(ic));
	return p;
}

/*
 * New flow number n: a source in 198.18.0.0/15 or 2001:db8:e::/48 (never
 * the established clients) and a source port. Written into the packet in
 * place; the IPv4 header checksum goes stale, which neither balancer reads.
 */
static void set_new_flow(struct pkt *p, uint64_t n, struct tuple *t)
{
	uint16_t sport = (uint16_t)(1024 + n % 60000);
	uint32_t host = htonl((uint32_t)(n / 60000));
	uint16_t nsport = htons(sport);
	bool v4 = t->src.family == LB_AF_INET;
	uint32_t a4 = htonl(0xc6120000u + (uint32_t)(n / 60000)); /* 198.18.0.0 + */

	if (v4) {
		memcpy(p->b + ETH_HLEN + 12, &a4, 4);
		memcpy(p->b + ETH_HLEN + 20, &nsport, 2);
		memcpy(t->src.bytes, &a4, 4);
	} else {
		memcpy(p->b + ETH_HLEN + 8 + 12, &host, 4);
		memcpy(p->b + ETH_HLEN + 40, &nsport, 2);
		memcpy(t->src.bytes + 12, &host, 4);
	}
	t->sport = sport;
}

/* --- running ----------------------------------------------------------- */

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static int run(int fd, int ifindex, const struct pkt *p, uint32_t *ns, uint32_t *ret)
{
	struct xdp_md ctx = {.data_end = (uint32_t)p->len, .ingress_ifindex = (uint32_t)ifindex};
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = p->b, .data_size_in = (uint32_t)p->len,
		    .ctx_in = &ctx, .ctx_size_in = sizeof(ctx), .repeat = 1);

	if (bpf_prog_test_run_opts(fd, &o))
		return -errno;
	*ns = o.duration;
	*ret = o.retval;
	return 0;
}

static int pin_to_one_cpu(void)
{
	cpu_set_t set;
	int cpu = -1;

	/* Katran keeps one LRU per CPU: a benchmark that migrated would
	 * meet an empty LRU and measure misses as hits. */
	if (sched_getaffinity(0, sizeof(set), &set))
		return -1;
	for (int i = CPU_SETSIZE - 1; i >= 0 && cpu < 0; i--)
		if (CPU_ISSET(i, &set))
			cpu = i;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return sched_setaffinity(0, sizeof(set), &set) ? -1 : cpu;
}

static int setup_netns(void)
{
	FILE *f;

	if (unshare(CLONE_NEWNET) ||
	    system(
		"ip link add bx0 address 02:00:00:00:00:b0 type veth peer name bx1 "
		"address 02:00:00:00:00:b1 && ip link set bx0 up && ip link set bx1 up && "
		"sysctl -qw net.ipv4.ip_forward=1 && sysctl -qw net.ipv6.conf.all.forwarding=1 && "
		"ip addr add 10.1.0.1/24 dev bx0 && ip -6 addr add fd00:1::1/64 dev bx0 nodad"))
		return -1;
	/* XDP cannot resolve a neighbour: each real needs a usable entry.
	 * One ip process for all 200 rather than 200 processes. */
	f = popen("ip -batch -", "w");
	if (!f)
		return -1;
	for (int i = 0; i < NREALS; i++) {
		fprintf(f, "neigh add 10.1.0.%d lladdr 02:00:00:00:04:%02x dev bx0 nud permanent\n",
			i + 2, i + 2);
		fprintf(f,
			"neigh add fd00:1::%x lladdr 02:00:00:00:06:%02x dev bx0 nud permanent\n",
			i + 2, i + 2);
	}
	return pclose(f) ? -1 : 0;
}

static void addr_fmt(struct lb_addr *a, const char *fmt, int i)
{
	char s[64];

	snprintf(s, sizeof(s), fmt, i);
	lb_addr_parse(s, a);
}

/* --- whole path: live frames ------------------------------------------- */

/*
 * Two tiny XDP programs are assembled here rather than compiled, so the
 * benchmark needs nothing beyond the tree's BPF objects.
 */
struct insns {
	struct bpf_insn v[96];
	int n;
};

static int emit(struct insns *p, uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm)
{
	if (p->n >= (int)(sizeof(p->v) / sizeof(p->v[0])))
		abort();
	p->v[p->n] =
	    (struct bpf_insn){.code = code, .dst_reg = dst, .src_reg = src, .off = off, .imm = imm};
	return p->n++;
}

static void emit_ld64(struct insns *p, uint8_t dst, uint8_t pseudo, uint64_t v)
{
	emit(p, BPF_LD | BPF_DW | BPF_IMM, dst, pseudo, 0, (int32_t)(uint32_t)v);
	emit(p, 0, 0, 0, 0, (int32_t)(uint32_t)(v >> 32));
}

/* Point the jump at index at to the next instruction emitted. */
static void land(struct insns *p, int at)
{
	p->v[at].off = (int16_t)(p->n - at - 1);
}

/* counters[key]++ on this CPU; key is a constant. */
static void emit_count(struct insns *p, int map_fd, int32_t key)
{
	int j;

	emit(p, BPF_ST | BPF_MEM | BPF_W, BPF_REG_10, 0, -4, key);
	emit(p, BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_2, BPF_REG_10, 0, 0);
	emit(p, BPF_ALU64 | BPF_ADD | BPF_K, BPF_REG_2, 0, 0, -4);
	emit_ld64(p, BPF_REG_1, BPF_PSEUDO_MAP_FD, (uint32_t)map_fd);
	emit(p, BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_map_lookup_elem);
	j = emit(p, BPF_JMP | BPF_JEQ | BPF_K, BPF_REG_0, 0, 0, 0);
	emit(p, BPF_LDX | BPF_MEM | BPF_DW, BPF_REG_1, BPF_REG_0, 0, 0);
	emit(p, BPF_ALU64 | BPF_ADD | BPF_K, BPF_REG_1, 0, 0, 1);
	emit(p, BPF_STX | BPF_MEM | BPF_DW, BPF_REG_0, BPF_REG_1, 0, 0);
	land(p, j);
}

static int load_xdp(const struct insns *p, const char *name)
{
	static char log[16384];
	LIBBPF_OPTS(bpf_prog_load_opts, o, .expected_attach_type = BPF_XDP, .log_buf = log,
		    .log_size = sizeof(log));
	int fd = bpf_prog_load(BPF_PROG_TYPE_XDP, name, "GPL", p->v, (size_t)p->n, &o);

	if (fd < 0)
		fprintf(stderr, "bench_xdp: loading %s: %s\n%s", name, strerror(errno), log);
	return fd;
}

/*
 * On the router's side of the veth: count every frame (counter 0) and the
 * IPv4-in-IPv4 ones (counter 1), then drop. An XDP program on the peer is
 * also what makes veth take XDP_TX frames at speed (it runs NAPI).
 */
static int load_peer(int map_fd)
{
	struct insns p = {0};
	int j[3];

	emit(&p, BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_6, BPF_REG_1, 0, 0);
	emit_count(&p, map_fd, 0);
	emit(&p, BPF_LDX | BPF_MEM | BPF_W, BPF_REG_2, BPF_REG_6, 0, 0); /* data */
	emit(&p, BPF_LDX | BPF_MEM | BPF_W, BPF_REG_3, BPF_REG_6, 4, 0); /* data_end */
	emit(&p, BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_4, BPF_REG_2, 0, 0);
	emit(&p, BPF_ALU64 | BPF_ADD | BPF_K, BPF_REG_4, 0, 0, ETH_HLEN + 20);
	j[0] = emit(&p, BPF_JMP | BPF_JGT | BPF_X, BPF_REG_4, BPF_REG_3, 0, 0);
	emit(&p, BPF_LDX | BPF_MEM | BPF_H, BPF_REG_4, BPF_REG_2, 12, 0);
	j[1] = emit(&p, BPF_JMP | BPF_JNE | BPF_K, BPF_REG_4, 0, 0, htons(ETH_P_IP));
	emit(&p, BPF_LDX | BPF_MEM | BPF_B, BPF_REG_4, BPF_REG_2, ETH_HLEN + 9, 0);
	j[2] = emit(&p, BPF_JMP | BPF_JNE | BPF_K, BPF_REG_4, 0, 0, IPPROTO_IPIP);
	emit_count(&p, map_fd, 1);
	for (int i = 0; i < 3; i++)
		land(&p, j[i]);
	emit(&p, BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, XDP_DROP);
	emit(&p, BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
	return load_xdp(&p, "bench_peer");
}

/* The prologue's own cost, and the harness's: nothing is transmitted. */
static int load_drop(void)
{
	struct insns p = {0};

	emit(&p, BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, XDP_DROP);
	emit(&p, BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
	return load_xdp(&p, "bench_drop");
}

/*
 * Live-frames mode copies the packet into a page once, when the page pool
 * first hands the page out; a recycled page comes back with its pointers
 * reset but with the bytes the last run left there. An encapsulating
 * program overwrote its Ethernet header with the outer IP header, so on
 * every later run it would parse garbage. This prologue writes the
 * packet's headers back and tail-calls the program under test (slot of
 * prog_array): a few stores, the same for every program measured.
 */
static int load_restore(const struct pkt *tpl, int prog_array, int slot)
{
	struct insns p = {0};
	size_t off = 0;
	int j;

	emit(&p, BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_6, BPF_REG_1, 0, 0);
	emit(&p, BPF_LDX | BPF_MEM | BPF_W, BPF_REG_2, BPF_REG_6, 0, 0);
	emit(&p, BPF_LDX | BPF_MEM | BPF_W, BPF_REG_3, BPF_REG_6, 4, 0);
	emit(&p, BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_4, BPF_REG_2, 0, 0);
	emit(&p, BPF_ALU64 | BPF_ADD | BPF_K, BPF_REG_4, 0, 0, (int32_t)tpl->len);
	j = emit(&p, BPF_JMP | BPF_JGT | BPF_X, BPF_REG_4, BPF_REG_3, 0, 0);
	for (; off + 8 <= tpl->len; off += 8) {
		uint64_t v;

		memcpy(&v, tpl->b + off, 8);
		emit_ld64(&p, BPF_REG_5, 0, v);
		emit(&p, BPF_STX | BPF_MEM | BPF_DW, BPF_REG_2, BPF_REG_5, (int16_t)off, 0);
	}
	for (size_t w = 4; w; w /= 2) {
		static const uint8_t size[5] = {[1] = BPF_B, [2] = BPF_H, [4] = BPF_W};
		uint32_t v = 0;

		if (off + w > tpl->len)
			continue;
		memcpy(&v, tpl->b + off, w);
		emit(&p, BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_5, 0, 0, (int32_t)v);
		emit(&p, BPF_STX | BPF_MEM | size[w], BPF_REG_2, BPF_REG_5, (int16_t)off, 0);
		off += w;
	}
	/* A locked add (x86: a full barrier) drains the stores above from
	 * the store buffer before the program runs. A received frame's
	 * bytes were written long before by the NIC or the sender's copy;
	 * without this, a program whose first read of a header field spans
	 * two of these 8-byte stores (the IPv4 destination address at
	 * offset 30 does) waits for them to retire: a stall the harness
	 * makes and no real packet has. */
	emit(&p, BPF_ST | BPF_MEM | BPF_DW, BPF_REG_10, 0, -8, 0);
	emit(&p, BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_5, 0, 0, 1);
	emit(&p, BPF_STX | BPF_ATOMIC | BPF_DW, BPF_REG_10, BPF_REG_5, -8, BPF_ADD);
	emit(&p, BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_1, BPF_REG_6, 0, 0);
	emit_ld64(&p, BPF_REG_2, BPF_PSEUDO_MAP_FD, (uint32_t)prog_array);
	emit(&p, BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_3, 0, 0, slot);
	emit(&p, BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_tail_call);
	land(&p, j);
	emit(&p, BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, XDP_DROP);
	emit(&p, BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
	return load_xdp(&p, "bench_restore");
}

static uint64_t percpu_sum(int map_fd, uint32_t key, int ncpus)
{
	uint64_t v[ncpus], s = 0;

	if (bpf_map_lookup_elem(map_fd, &key, v))
		return 0;
	for (int i = 0; i < ncpus; i++)
		s += v[i];
	return s;
}

/*
 * One live run of n frames; *ns is the kernel's time per frame. It covers
 * the program, the transmit on bx0 and the peer's XDP program (which runs
 * in the softirq when the run re-enables bottom halves after each batch),
 * but not the page pool's setup and teardown: those cost a fixed 15-40 ms
 * per call here (grace periods, in 4 ms jiffies), which a wall clock
 * would spread over the frames.
 */
static int run_live(int fd, int ifindex, const struct pkt *p, uint32_t n, uint32_t *ns)
{
	struct xdp_md ctx = {.data_end = (uint32_t)p->len, .ingress_ifindex = (uint32_t)ifindex};
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = p->b, .data_size_in = (uint32_t)p->len,
		    .ctx_in = &ctx, .ctx_size_in = sizeof(ctx), .repeat = n,
		    .flags = BPF_F_TEST_XDP_LIVE_FRAMES);

	if (bpf_prog_test_run_opts(fd, &o))
		return -errno;
	*ns = o.duration;
	return 0;
}

enum live_target { L_DROP, L_FLOOR, L_PORTICO, L_KATRAN, NLIVE };

/* target_fd[L_DROP] is made here; the others are the programs measured. */
static void live_section(int ifindex, const struct pkt *flow, uint32_t n, int rounds,
			 int target_fd[NLIVE], struct l4lb *lb)
{
	static const char *names[NLIVE] = {"harness: prologue + XDP_DROP",
					   "floor: parse + IPIP + XDP_TX", "portico", "Katran"};
	int ncpus = libbpf_num_possible_cpus(), peer_if = (int)if_nametoindex("bx1");
	int cnt, peer, arr, wrap[NLIVE] = {-1, -1, -1, -1}, rc;
	double mpps[NLIVE][LIVE_ROUNDS_MAX] = {{0}}, med[NLIVE] = {0}, rmed[NLIVE] = {0};
	uint64_t got[NLIVE] = {0}, ipip[NLIVE] = {0};
	struct lb_counter c0[LB_CNT_MAX], c1[LB_CNT_MAX];
	const char *skip[NLIVE] = {0};

	printf("\n# Whole path: live frames (BPF_F_TEST_XDP_LIVE_FRAMES), repeat = %u, one IPv4 "
	       "established flow;\n"
	       "# XDP_TX really leaves bx0; the peer bx1 counts and drops (native XDP). Each "
	       "program runs\n"
	       "# behind a prologue that rewrites the packet's %zu header bytes and tail-calls it "
	       "(live mode\n"
	       "# recycles pages without restoring their bytes; see below). Median of %d "
	       "interleaved rounds.\n",
	       n, flow->len, rounds);
	cnt = bpf_map_create(BPF_MAP_TYPE_PERCPU_ARRAY, "bench_peer_cnt", 4, 8, 2, NULL);
	arr = bpf_map_create(BPF_MAP_TYPE_PROG_ARRAY, "bench_targets", 4, 4, NLIVE, NULL);
	peer = cnt >= 0 ? load_peer(cnt) : -1;
	target_fd[L_DROP] = load_drop();
	if (cnt < 0 || arr < 0 || peer < 0) {
		printf(
		    "# live frames: not measured: creating the helper maps/programs failed: %s\n",
		    strerror(errno));
		goto out;
	}
	rc = bpf_xdp_attach(peer_if, peer, XDP_FLAGS_DRV_MODE, NULL);
	if (rc) {
		printf("# live frames: not measured: attaching XDP to bx1: %s\n", strerror(-rc));
		goto out;
	}
	for (int t = 0; t < NLIVE; t++) {
		uint32_t key = (uint32_t)t;

		if (target_fd[t] < 0) {
			skip[t] = "not loaded";
			continue;
		}
		if (bpf_map_update_elem(arr, &key, &target_fd[t], BPF_ANY)) {
			skip[t] = strerror(errno);
			continue;
		}
		wrap[t] = load_restore(flow, arr, t);
		if (wrap[t] < 0)
			skip[t] = "prologue did not load";
	}

	for (int r = 0; r < rounds; r++) {
		for (int i = 0; i < NLIVE; i++) {
			int t = (i + r) % NLIVE;
			uint64_t a0, a1, i0, i1;
			uint32_t ns;

			if (skip[t])
				continue;
			a0 = percpu_sum(cnt, 0, ncpus);
			i0 = percpu_sum(cnt, 1, ncpus);
			rc = run_live(wrap[t], ifindex, flow, n, &ns);
			if (rc) {
				/* EINVAL/EOPNOTSUPP here would mean no live mode. */
				printf("# live frames: %s: BPF_PROG_TEST_RUN failed: %s\n",
				       names[t], strerror(-rc));
				skip[t] = "test run failed";
				continue;
			}
			a1 = percpu_sum(cnt, 0, ncpus);
			i1 = percpu_sum(cnt, 1, ncpus);
			got[t] += a1 - a0;
			ipip[t] += i1 - i0;
			mpps[t][r] = ns ? 1e3 / ns : 0;
		}
	}
	printf("%-30s %8s %8s %9s %7s %22s\n", "program", "Mpps", "ns/pkt", "rate/floor", "rounds",
	       "at peer (IPIP) / sent");
	/* Per round, each program's rate over the floor's in that round:
	 * both ran back to back on the same host state, so the median of
	 * these ratios is steadier than the ratio of the two medians. */
	for (int t = 0; t < NLIVE; t++) {
		double r[LIVE_ROUNDS_MAX];

		if (skip[t] || skip[L_FLOOR])
			continue;
		for (int i = 0; i < rounds; i++)
			r[i] = mpps[L_FLOOR][i] > 0 ? mpps[t][i] / mpps[L_FLOOR][i] : 0;
		qsort(r, rounds, sizeof(double), cmp_double);
		rmed[t] = r[rounds / 2];
	}
	for (int t = 0; t < NLIVE; t++) {
		if (skip[t])
			continue;
		qsort(mpps[t], rounds, sizeof(double), cmp_double);
		med[t] = mpps[t][rounds / 2];
	}
	for (int t = 0; t < NLIVE; t++) {
		double sent = (double)n * rounds;

		if (skip[t]) {
			printf("%-30s %8s   (%s)\n", names[t], "-", skip[t]);
			continue;
		}
		printf("%-30s %8.2f %8.1f %8.2fx %6.2fx %10.1f%% (%5.1f%%)\n", names[t], med[t],
		       1e3 / med[t], med[L_FLOOR] > 0 ? med[t] / med[L_FLOOR] : 0, rmed[t],
		       100.0 * (double)got[t] / sent, 100.0 * (double)ipip[t] / sent);
	}

	/* Why the prologue: the balancer alone, same flow, same mode. */
	if (target_fd[L_PORTICO] >= 0 && !l4lb_stats_global(lb, c0)) {
		uint32_t nd = n / 10 > 1000 ? n / 10 : 1000;
		uint64_t i0 = percpu_sum(cnt, 1, ncpus);
		uint32_t ns;

		if (!run_live(target_fd[L_PORTICO], ifindex, flow, nd, &ns) &&
		    !l4lb_stats_global(lb, c1))
			printf(
			    "# without the prologue, portico alone (%u frames): %.1f%% reach the "
			    "peer as IPIP; it counted\n"
			    "#   TX %llu, non-IP pass %llu, non-VIP pass %llu, malformed %llu: "
			    "recycled pages hold its own output\n",
			    nd, 100.0 * (double)(percpu_sum(cnt, 1, ncpus) - i0) / nd,
			    (unsigned long long)(c1[LB_CNT_TX].packets - c0[LB_CNT_TX].packets),
			    (unsigned long long)(c1[LB_CNT_PASS_NON_IP].packets -
						 c0[LB_CNT_PASS_NON_IP].packets),
			    (unsigned long long)(c1[LB_CNT_PASS_NON_VIP].packets -
						 c0[LB_CNT_PASS_NON_VIP].packets),
			    (unsigned long long)(c1[LB_CNT_DROP_MALFORMED].packets -
						 c0[LB_CNT_DROP_MALFORMED].packets));
	}
	bpf_xdp_detach(peer_if, XDP_FLAGS_DRV_MODE, NULL);
out:
	for (int t = 0; t < NLIVE; t++)
		if (wrap[t] >= 0)
			close(wrap[t]);
	if (peer >= 0)
		close(peer);
	if (target_fd[L_DROP] >= 0)
		close(target_fd[L_DROP]);
	if (arr >= 0)
		close(arr);
	if (cnt >= 0)
		close(cnt);
}

/* --- main -------------------------------------------------------------- */

static int usage(void)
{
	fprintf(stderr, "usage: bench_xdp [--katran PATH | --no-katran] [--live N] "
			"[--live-rounds R] [--flow-hash 1|2] [CALLS_PER_ROUND]\n");
	return 2;
}

int main(int argc, char **argv)
{
	const char *katran_path = KATRAN_OBJ_DEFAULT;
	long calls = 15000;
	uint32_t live_n = LIVE_N_DEFAULT;
	int live_rounds = LIVE_ROUNDS_DEFAULT;
	struct l4lb_opts opts = {.conn_max = CONN_MAX};
	struct lb_addr s4, s6, router4, router6, reals4[NREALS], reals6[NREALS];
	struct l4lb_vip_key v4 = {.port = 443, .proto = IPPROTO_TCP},
			    v6 = {.port = 443, .proto = IPPROTO_TCP};
	struct tuple est4, est6, new4, new6, nonvip, cur[NCASES], last_new[NCASES] = {0};
	struct katran_anchor *katran = NULL;
	char kerr[256] = "", kpath[PATH_MAX];
	struct pass_bpf *pass;
	struct floor_bpf *floor;
	struct l4lb *lb;
	uint32_t *samples[NCASES][NBAL] = {{0}}, seen[NCASES][NBAL] = {{0}};
	struct pkt pk[NCASES];
	int fds[NCASES][NBAL], ifindex, cpu, rc = 0;
	uint64_t flow = 0;
	struct utsname un;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--katran") && i + 1 < argc)
			katran_path = argv[++i];
		else if (!strcmp(argv[i], "--no-katran"))
			katran_path = NULL;
		else if (!strcmp(argv[i], "--live") && i + 1 < argc)
			live_n = (uint32_t)strtoul(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--live-rounds") && i + 1 < argc &&
			 atoi(argv[i + 1]) > 0 && atoi(argv[i + 1]) <= LIVE_ROUNDS_MAX)
			live_rounds = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--flow-hash") && i + 1 < argc &&
			 (atoi(argv[i + 1]) == LB_FLOW_HASH_V1 ||
			  atoi(argv[i + 1]) == LB_FLOW_HASH_V2))
			opts.flow_hash = (uint32_t)atoi(argv[++i]);
		else if (argv[i][0] != '-' && atol(argv[i]) > 0)
			calls = atol(argv[i]);
		else
			return usage();
	}
	if (geteuid() != 0) {
		fprintf(stderr, "bench_xdp: needs root\n");
		return 77;
	}
	cpu = pin_to_one_cpu();
	if (cpu < 0 || setup_netns()) {
		fprintf(stderr, "bench_xdp: %s failed\n", cpu < 0 ? "pinning" : "netns setup");
		return 1;
	}
	ifindex = (int)if_nametoindex("bx0");

	lb_addr_parse("10.1.0.1", &s4);
	lb_addr_parse("fd00:1::1", &s6);
	lb_addr_parse("192.0.2.10", &v4.addr);
	lb_addr_parse("2001:db8::10", &v6.addr);
	lb_addr_parse("203.0.113.1", &router4);
	lb_addr_parse("2001:db8:ffff::1", &router6);
	for (int i = 0; i < NREALS; i++) {
		addr_fmt(&reals4[i], "10.1.0.%d", i + 2);
		addr_fmt(&reals6[i], "fd00:1::%x", i + 2);
	}

	lb = l4lb_open(&opts);
	pass = pass_bpf__open_and_load();
	floor = floor_bpf__open_and_load();
	if (!lb || !pass || !floor) {
		fprintf(stderr, "bench_xdp: loading programs: %s\n", strerror(errno));
		return 1;
	}
	l4lb_set_source(lb, &s4, &s6);
	/* One ring build per VIP, not one per real. */
	l4lb_batch_begin(lb);
	rc = l4lb_vip_add(lb, &v4);
	if (!rc)
		rc = l4lb_vip_add(lb, &v6);
	for (int i = 0; i < NREALS && !rc; i++) {
		rc = l4lb_real_add(lb, &v4, &reals4[i], 1);
		if (!rc)
			rc = l4lb_real_add(lb, &v6, &reals6[i], 1);
	}
	if (l4lb_batch_end(lb) || rc) {
		fprintf(stderr, "bench_xdp: configuring the balancer: %s\n", strerror(-rc));
		return 1;
	}

	if (katran_path) {
		struct katran_anchor_cfg kc = {.vip4 = v4.addr,
					       .vip6 = v6.addr,
					       .port = 443,
					       .proto = IPPROTO_TCP,
					       .reals4 = reals4,
					       .n4 = NREALS,
					       .reals6 = reals6,
					       .n6 = NREALS,
					       .lru_size = CONN_MAX};

		memcpy(kc.gw_mac, mac_router, 6);
		if (!realpath(katran_path, kpath))
			snprintf(kpath, sizeof(kpath), "%s", katran_path);
		katran = katran_anchor_open(kpath, &kc, kerr, sizeof(kerr));
		if (!katran && errno != ENOENT) {
			/* Present but unusable: say why, never fall back silently. */
			fprintf(stderr, "bench_xdp: Katran: %s\n", kerr);
			return 1;
		}
	}

	est4 = (struct tuple){.dst = v4.addr, .sport = 1024, .dport = 443};
	lb_addr_parse("198.51.100.1", &est4.src);
	est6 = (struct tuple){.dst = v6.addr, .sport = 1024, .dport = 443};
	lb_addr_parse("2001:db8:f::1", &est6.src);
	new4 = est4;
	lb_addr_parse("198.18.0.0", &new4.src);
	new6 = est6;
	lb_addr_parse("2001:db8:e::", &new6.src);
	nonvip = est4;
	lb_addr_parse("198.51.100.99", &nonvip.dst);
	pk[EST4] = pk[EMPTY] = pk[FLOOR] = mk_tcp(&est4, false);
	pk[EST6] = mk_tcp(&est6, false);
	pk[SYN4] = mk_tcp(&new4, true);
	pk[SYN6] = mk_tcp(&new6, true);
	pk[ACK4] = mk_tcp(&new4, false);
	pk[NONVIP] = mk_tcp(&nonvip, false);
	pk[ICMP4] = mk_icmp4(&est4, &router4);
	pk[ICMP6] = mk_icmp6(&est6, &router6);
	for (int c = 0; c < NCASES; c++) {
		cur[c] = c == SYN4 || c == ACK4 ? new4 : c == SYN6 ? new6 : c == EST6 ? est6 : est4;
		fds[c][PORTICO] = c == EMPTY   ? bpf_program__fd(pass->progs.xdp_pass)
				  : c == FLOOR ? bpf_program__fd(floor->progs.xdp_floor)
					       : l4lb_prog_fd(lb);
		fds[c][KATRAN] = katran && cases[c].katran ? katran_anchor_prog_fd(katran) : -1;
		for (int b = 0; b < NBAL; b++)
			if (fds[c][b] >= 0)
				samples[c][b] = calloc((size_t)calls * ROUNDS, sizeof(uint32_t));
	}

	for (int round = 0; round < ROUNDS; round++) {
		for (int c = 0; c < NCASES; c++) {
			for (int o = 0; o < NBAL; o++) {
				/* Odd rounds run Katran first. */
				int b = round % 2 ? NBAL - 1 - o : o;
				uint32_t ns = 0, ret = 0;

				if (fds[c][b] < 0)
					continue;
				/* One untimed call: it creates the established
				 * flows' entries (and re-creates them in Katran's
				 * per-CPU LRU, should they have been evicted). */
				if (!cases[c].newflow) {
					if (b == KATRAN)
						katran_anchor_reset_flood(katran);
					run(fds[c][b], ifindex, &pk[c], &ns, &ret);
				}
				for (long i = 0; i < calls; i++) {
					if (cases[c].newflow) {
						set_new_flow(&pk[c], flow++, &cur[c]);
						if (b == KATRAN && i % FLOOD_RESET_EVERY == 0)
							katran_anchor_reset_flood(katran);
					}
					if (run(fds[c][b], ifindex, &pk[c], &ns, &ret)) {
						fprintf(
						    stderr, "bench_xdp: %s on %s: test run: %s\n",
						    cases[c].name, bal_names[b], strerror(errno));
						return 1;
					}
					if (cases[c].expect != ANY_VERDICT &&
					    ret != cases[c].expect) {
						fprintf(stderr,
							"bench_xdp: %s on %s: verdict %s, expected "
							"%s\n",
							cases[c].name, bal_names[b],
							verdict_name(ret),
							verdict_name(cases[c].expect));
						return 1;
					}
					seen[c][b] |= 1u << (ret < VERDICTS ? ret : VERDICTS);
					samples[c][b][round * calls + i] = ns;
				}
				if (b == KATRAN && cases[c].newflow)
					last_new[c] = cur[c];
			}
		}
	}

	uname(&un);
	printf("# bench_xdp: BPF_PROG_TEST_RUN, 1 packet per call, %d rounds x %ld calls per case "
	       "and balancer,\n"
	       "# interleaved (odd rounds run Katran first); %d reals per VIP; pinned to CPU %d; "
	       "kernel %s;\n# portico's flow hash version %u\n",
	       ROUNDS, calls, NREALS, cpu, un.release,
	       opts.flow_hash ? opts.flow_hash : LB_FLOW_HASH_V1);
	if (katran) {
		bool held = true;

		for (int c = 0; c < NCASES; c++)
			if (cases[c].newflow)
				held = held &&
				       katran_anchor_has_flow(katran, cpu, &last_new[c].src,
							      &last_new[c].dst, last_new[c].sport,
							      last_new[c].dport, IPPROTO_TCP) == 1;
		printf(
		    "# Katran: %s\n"
		    "# Katran's flood guard (stats[MAX_VIPS + 2]) zeroed on every CPU every %d "
		    "calls in the new-flow cases,\n"
		    "# so its LRU insert path is measured (last new flows found in its LRU: %s)\n",
		    kpath, FLOOD_RESET_EVERY, held ? "yes" : "NO");
	} else if (katran_path) {
		printf("# Katran: not measured, no object: %s (--katran PATH)\n", kerr);
	} else {
		printf("# Katran: not measured (--no-katran)\n");
	}
	printf("# ICMP verdicts are printed, not checked; every other verdict is checked\n");
	printf("%-30s %11s %10s %7s %7s  %-9s %-9s\n", "case", "portico ns", "Katran ns", "ratio",
	       "rounds", "portico", "Katran");
	for (int c = 0; c < NCASES; c++) {
		size_t n = (size_t)calls * ROUNDS;
		uint32_t med[NBAL] = {0};
		double rr[ROUNDS], rmed = 0;
		char vs[NBAL][32];

		/* Per round first: sorting a round's slice in place leaves the
		 * whole array's median (below) unchanged. */
		if (samples[c][PORTICO] && samples[c][KATRAN]) {
			for (int r = 0; r < ROUNDS; r++) {
				uint32_t *sp = samples[c][PORTICO] + (size_t)r * calls,
					 *sk = samples[c][KATRAN] + (size_t)r * calls;

				qsort(sp, calls, sizeof(uint32_t), cmp_u32);
				qsort(sk, calls, sizeof(uint32_t), cmp_u32);
				rr[r] = sk[calls / 2] ? (double)sp[calls / 2] / sk[calls / 2] : 0;
			}
			qsort(rr, ROUNDS, sizeof(double), cmp_double);
			rmed = rr[ROUNDS / 2];
		}
		for (int b = 0; b < NBAL; b++) {
			snprintf(vs[b], sizeof(vs[b]), "-");
			if (!samples[c][b])
				continue;
			qsort(samples[c][b], n, sizeof(uint32_t), cmp_u32);
			med[b] = samples[c][b][n / 2];
			vs[b][0] = 0;
			for (uint32_t v = 0; v <= VERDICTS; v++)
				if (seen[c][b] & (1u << v))
					snprintf(vs[b] + strlen(vs[b]),
						 sizeof(vs[b]) - strlen(vs[b]), "%s%s",
						 vs[b][0] ? "+" : "", verdict_name(v));
		}
		if (samples[c][KATRAN])
			printf("%-30s %11u %10u %7.2f %7.2f  %-9s %-9s\n", cases[c].name,
			       med[PORTICO], med[KATRAN],
			       med[KATRAN] ? (double)med[PORTICO] / med[KATRAN] : 0, rmed,
			       vs[PORTICO], vs[KATRAN]);
		else
			printf("%-30s %11u %10s %7s %7s  %-9s %-9s\n", cases[c].name, med[PORTICO],
			       "-", "-", "-", vs[PORTICO], vs[KATRAN]);
	}
	fflush(stdout);

	if (live_n) {
		int t[NLIVE] = {-1, bpf_program__fd(floor->progs.xdp_floor), l4lb_prog_fd(lb),
				katran ? katran_anchor_prog_fd(katran) : -1};

		live_section(ifindex, &pk[EST4], live_n, live_rounds, t, lb);
	}

	for (int c = 0; c < NCASES; c++)
		for (int b = 0; b < NBAL; b++)
			free(samples[c][b]);
	katran_anchor_close(katran);
	floor_bpf__destroy(floor);
	pass_bpf__destroy(pass);
	l4lb_close(lb);
	return 0;
}
