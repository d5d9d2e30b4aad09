// SPDX-License-Identifier: GPL-2.0-only
/*
 * bench_xdp - the balancer's cost per packet through BPF_PROG_TEST_RUN.
 *
 * One packet per call (repeat = 1): with repeat > 1 the kernel re-runs the
 * program on its own output, i.e. on an already encapsulated packet. The
 * figure is the kernel's own per-run duration (ns), so syscall overhead is
 * excluded; each case runs ROUNDS x CALLS times, interleaved round by
 * round so machine noise hits every case alike, and the median is quoted.
 *
 * Cases: new TCP flow (a fresh 5-tuple every call: conn-table miss, Maglev
 * lookup, LRU insert), established flow (same 5-tuple: conn-table hit),
 * both for IPv4 and IPv6, non-VIP traffic (XDP_PASS); next to the floors:
 * an empty XDP program and parse+IPIP+XDP_TX with no lookups.
 *
 * Usage: bench_xdp [CALLS_PER_ROUND] (root; runs in a private netns).
 */
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <errno.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "floor.skel.h"
#include "l4lb.h"
#include "pass.skel.h"

#define ROUNDS 5

struct pkt {
	uint16_t align_pad;
	uint8_t b[128];
	size_t len;
} __attribute__((aligned(8)));

enum kind { NEW4, EST4, NEW6, EST6, NONVIP, EMPTY, FLOOR, NCASES };
static const char *names[NCASES] = {
    [NEW4] = "balancer: new TCP flow, IPv4",   [EST4] = "balancer: established flow, IPv4",
    [NEW6] = "balancer: new TCP flow, IPv6",   [EST6] = "balancer: established flow, IPv6",
    [NONVIP] = "balancer: non-VIP (XDP_PASS)", [EMPTY] = "floor: empty XDP program",
    [FLOOR] = "floor: parse + IPIP + XDP_TX",
};

static struct pkt mk4(const char *dst)
{
	struct pkt p = {.len = ETH_HLEN + 20 + 20};
	struct iphdr *ip = (void *)(p.b + ETH_HLEN);
	struct tcphdr *th = (void *)(ip + 1);

	*(uint16_t *)(p.b + 12) = htons(ETH_P_IP);
	ip->version = 4;
	ip->ihl = 5;
	ip->tot_len = htons(40);
	ip->ttl = 64;
	ip->protocol = IPPROTO_TCP;
	inet_pton(AF_INET, "198.51.100.1", &ip->saddr);
	inet_pton(AF_INET, dst, &ip->daddr);
	th->source = htons(1024);
	th->dest = htons(443);
	th->doff = 5;
	th->syn = 1;
	return p;
}

static struct pkt mk6(void)
{
	struct pkt p = {.len = ETH_HLEN + 40 + 20};
	struct ipv6hdr *ip6 = (void *)(p.b + ETH_HLEN);
	struct tcphdr *th = (void *)(ip6 + 1);

	*(uint16_t *)(p.b + 12) = htons(ETH_P_IPV6);
	ip6->version = 6;
	ip6->payload_len = htons(20);
	ip6->nexthdr = IPPROTO_TCP;
	ip6->hop_limit = 64;
	inet_pton(AF_INET6, "2001:db8:f::1", &ip6->saddr);
	inet_pton(AF_INET6, "2001:db8::10", &ip6->daddr);
	th->source = htons(1024);
	th->dest = htons(443);
	th->doff = 5;
	th->syn = 1;
	return p;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static int run(int fd, int ifindex, const struct pkt *p, uint32_t *ns, uint32_t *ret)
{
	uint8_t out[256];
	struct xdp_md ctx = {.data_end = p->len, .ingress_ifindex = ifindex};
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = p->b, .data_size_in = p->len, .data_out = out,
		    .data_size_out = sizeof(out), .ctx_in = &ctx, .ctx_size_in = sizeof(ctx),
		    .repeat = 1);

	if (bpf_prog_test_run_opts(fd, &o))
		return -errno;
	*ns = o.duration;
	*ret = o.retval;
	return 0;
}

int main(int argc, char **argv)
{
	long calls = argc > 1 ? atol(argv[1]) : 40000;
	struct l4lb_opts opts = {.conn_max = 1 << 21};
	struct lb_addr s4, s6, r;
	struct l4lb_vip_key v4 = {.port = 443, .proto = IPPROTO_TCP},
			    v6 = {.port = 443, .proto = IPPROTO_TCP};
	struct pass_bpf *pass;
	struct floor_bpf *floor;
	struct l4lb *lb;
	uint32_t *samples[NCASES],
	    expect[NCASES] = {XDP_TX, XDP_TX, XDP_TX, XDP_TX, XDP_PASS, XDP_PASS, XDP_TX};
	struct pkt pk[NCASES];
	int fds[NCASES], ifindex;
	uint64_t flow = 0;

	if (geteuid() != 0) {
		fprintf(stderr, "bench_xdp: needs root\n");
		return 77;
	}
	if (unshare(CLONE_NEWNET) ||
	    system(
		"ip link add bx0 type veth peer name bx1 && ip link set bx0 up && "
		"ip link set bx1 up && sysctl -qw net.ipv4.ip_forward=1 && "
		"sysctl -qw net.ipv6.conf.all.forwarding=1 && ip addr add 10.1.0.1/24 dev bx0 && "
		"ip -6 addr add fd00:1::1/64 dev bx0 nodad && "
		"for i in 2 3 4 5; do ip neigh add 10.1.0.$i lladdr 02:00:00:00:00:0$i dev bx0 "
		"nud permanent && ip -6 neigh add fd00:1::$i lladdr 02:00:00:00:00:0$i dev bx0 "
		"nud permanent; done")) {
		fprintf(stderr, "bench_xdp: netns setup failed\n");
		return 1;
	}
	ifindex = (int)if_nametoindex("bx0");
	lb = l4lb_open(&opts);
	pass = pass_bpf__open_and_load();
	floor = floor_bpf__open_and_load();
	if (!lb || !pass || !floor) {
		fprintf(stderr, "bench_xdp: loading programs: %s\n", strerror(errno));
		return 1;
	}
	lb_addr_parse("10.1.0.1", &s4);
	lb_addr_parse("fd00:1::1", &s6);
	lb_addr_parse("192.0.2.10", &v4.addr);
	lb_addr_parse("2001:db8::10", &v6.addr);
	l4lb_set_source(lb, &s4, &s6);
	l4lb_vip_add(lb, &v4);
	l4lb_vip_add(lb, &v6);
	for (int i = 2; i <= 5; i++) {
		char a[32];

		snprintf(a, sizeof(a), "10.1.0.%d", i);
		lb_addr_parse(a, &r);
		l4lb_real_add(lb, &v4, &r, 1);
		snprintf(a, sizeof(a), "fd00:1::%d", i);
		lb_addr_parse(a, &r);
		l4lb_real_add(lb, &v6, &r, 1);
	}
	pk[NEW4] = pk[EST4] = pk[EMPTY] = pk[FLOOR] = mk4("192.0.2.10");
	pk[NEW6] = pk[EST6] = mk6();
	pk[NONVIP] = mk4("198.51.100.99");
	for (int c = 0; c < NCASES; c++) {
		fds[c] = c == EMPTY   ? bpf_program__fd(pass->progs.xdp_pass)
			 : c == FLOOR ? bpf_program__fd(floor->progs.xdp_floor)
				      : l4lb_prog_fd(lb);
		samples[c] = calloc((size_t)calls * ROUNDS, sizeof(uint32_t));
	}

	for (int round = 0; round < ROUNDS; round++) {
		for (int c = 0; c < NCASES; c++) {
			for (long i = 0; i < calls; i++) {
				uint32_t ns = 0, ret = 0;

				if (c == NEW4 || c == NEW6) {
					/* A 5-tuple never seen before: vary the
					 * source port and the source address. */
					flow++;
					*(uint16_t *)(pk[c].b + ETH_HLEN + (c == NEW4 ? 20 : 40)) =
					    htons((uint16_t)flow);
					*(uint32_t *)(pk[c].b + ETH_HLEN + (c == NEW4 ? 12 : 8)) =
					    htonl((uint32_t)(flow >> 16) | 0xc6000000);
				}
				if (run(fds[c], ifindex, &pk[c], &ns, &ret) || ret != expect[c]) {
					fprintf(stderr, "bench_xdp: %s: unexpected verdict %u\n",
						names[c], ret);
					return 1;
				}
				samples[c][round * calls + i] = ns;
			}
		}
	}

	printf("# BPF_PROG_TEST_RUN, 1 packet per call, %d rounds x %ld calls per case\n", ROUNDS,
	       calls);
	printf("%-36s %10s %10s %10s %12s\n", "case", "median ns", "p10 ns", "p90 ns", "vs empty");
	{
		double empty = 0;

		qsort(samples[EMPTY], (size_t)calls * ROUNDS, sizeof(uint32_t), cmp_u32);
		empty = samples[EMPTY][calls * ROUNDS / 2];
		for (int c = 0; c < NCASES; c++) {
			size_t n = (size_t)calls * ROUNDS;

			qsort(samples[c], n, sizeof(uint32_t), cmp_u32);
			printf("%-36s %10u %10u %10u %11.2fx\n", names[c], samples[c][n / 2],
			       samples[c][n / 10], samples[c][n * 9 / 10],
			       empty ? samples[c][n / 2] / empty : 0);
		}
	}
	floor_bpf__destroy(floor);
	pass_bpf__destroy(pass);
	l4lb_close(lb);
	return 0;
}
