// SPDX-License-Identifier: GPL-2.0-only
/*
 * ecmp_rehash.bpf.c - tc ingress program for a Linux router in front of the
 * LBs (the popbox and e2e router namespaces).
 *
 * A veth carries the sending socket's skb hash across namespaces and the
 * router's multipath selection reuses it, so a retransmission (which gets a
 * new socket hash) can hop to the other LB. Invalidating the hash makes the
 * kernel recompute a real 5-tuple hash (fib_multipath_hash_policy=1), as a
 * hardware router would.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

SEC("tc")
int ecmp_rehash(struct __sk_buff *skb)
{
	bpf_set_hash_invalid(skb);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
