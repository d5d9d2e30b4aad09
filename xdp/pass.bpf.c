// SPDX-License-Identifier: GPL-2.0-only
/*
 * pass.bpf.c - XDP_PASS, two uses:
 *  - on the router-side peer of an LB's veth: native XDP_TX on veth only
 *    delivers frames when the receiving peer runs NAPI, which an attached
 *    XDP program turns on (see docs/operations.md);
 *  - the "empty program" floor in the balancer benchmark.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int xdp_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
