/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * lb_abi.h - the one header shared by the BPF programs in xdp/ and by
 * userspace (l4lb/, ctl/, tests/).
 *
 * Every struct here crosses the BPF/userspace boundary through a map, so it
 * is made only of fixed-width fields with explicit padding, and its size is
 * pinned by a _Static_assert: a change that moves a field breaks the build
 * instead of silently corrupting a map.
 *
 * Addresses are stored in 16-byte arrays in network byte order. An IPv4
 * address occupies the first 4 bytes; the other 12 are zero. The family field
 * beside it says which (LB_AF_INET / LB_AF_INET6), so no code has to guess
 * from the bytes.
 */
#ifndef PORTICO_LB_ABI_H
#define PORTICO_LB_ABI_H

#include <linux/types.h>

/* Address families, independent of the host's AF_* numbering. */
#define LB_AF_INET  4
#define LB_AF_INET6 6

/* Default Maglev ring size: prime, so every skip value visits every slot. */
#define LB_RING_SIZE_DEFAULT 65537
/* Capacity defaults; the loader may change max_entries before load. */
#define LB_MAX_VIPS_DEFAULT  64
#define LB_MAX_REALS_DEFAULT 4096
#define LB_CONN_MAX_DEFAULT  262144

/*
 * Real id 0 means "no real": an empty ring slot (a VIP without reals) holds
 * 0, so a packet that hits it is dropped and counted rather than sent to
 * whatever real happens to sit at index 0.
 */
#define LB_REAL_NONE 0

/* Encapsulation toward the L7 host. IPIP means IPIP for an IPv4 real and
 * IP6IP6 for an IPv6 one. GUE is chosen per VIP (LB_VIP_F_ENCAP_GUE), not
 * per real: lb_real.encap stays LB_ENCAP_IPIP. */
enum lb_encap {
	LB_ENCAP_IPIP = 0,
	LB_ENCAP_GUE = 1,
};

/*
 * GUE (draft-ietf-intarea-gue, section 4: variant 1, "direct encapsulation
 * of IPv4 or IPv6 in UDP"): outer IP, a UDP header to gue_port whose
 * source port carries the flow's hash (so NICs and ECMP steer by flow),
 * then the client's IP packet itself, no GUE header (variant 1 is told by
 * the first two bits, 01, which every IPv4 and IPv6 header has). The UDP
 * checksum is 0: allowed for IPv4, and for IPv6 tunnels (RFC 6935, 6936),
 * which only our decap receives. 6080 is IANA's port for GUE.
 */
#define LB_GUE_PORT_DEFAULT 6080
#define LB_GUE_SPORT_MIN    0xc000 /* source ports from the ephemeral range */

/*
 * Health-check probes: lbd marks a probe socket with LB_HC_MARK_BASE |
 * real_id (SO_MARK); the balancer's tc egress program encapsulates the
 * probe's packets toward that real exactly as the XDP program does for
 * client packets, so a probe tests the real's decapsulation, its VIP on lo
 * and its proxy, not just that the host answers.
 */
#define LB_HC_MARK_BASE 0x4c420000u /* "LB" */
#define LB_HC_MARK_MASK 0xffff0000u
#define LB_HC_MARK_REAL 0x00007fffu /* the real id (ids stay below 4096) */
#define LB_HC_MARK_GUE	0x00008000u /* the checked VIP encapsulates in GUE */
_Static_assert(LB_MAX_REALS_DEFAULT <= LB_HC_MARK_REAL + 1, "real ids must fit the probe mark");
#define LB_HC_TC_HANDLE 0x1c8 /* the tc filter's handle on the LB's egress */

/* VIP map key: (address, port, protocol). */
struct lb_vip_key {
	__u8 addr[16];
	__be16 port;
	__u8 proto;  /* IPPROTO_TCP or IPPROTO_UDP */
	__u8 family; /* LB_AF_INET or LB_AF_INET6 */
};
_Static_assert(sizeof(struct lb_vip_key) == 20, "lb_vip_key layout");

/*
 * Per-VIP state. Each VIP owns two rings in the ring map; ring_half says
 * which one packets read. Userspace fills the other half and then flips
 * ring_half with one map update, so a table swap is atomic per packet.
 */
struct lb_vip_meta {
	__u32 vip_id;	 /* index into vip_stats and the ring map */
	__u32 ring_half; /* 0 or 1 */
	__u32 flags;	 /* LB_VIP_F_* */
	__u32 pad;
};

/*
 * Hash (and track in the connection table) by source, destination and
 * protocol only: every flow of a client goes to one real, and IP fragments,
 * which carry no ports after the first, can be balanced. Such a VIP also
 * owns the port-less entry (address, port 0, its protocol) of vip_map,
 * which fragments look up; one VIP per address and protocol may have it.
 */
#define LB_VIP_F_HASH_3TUPLE 0x1
/* Encapsulate this VIP's packets in GUE (above) instead of IPIP/IP6IP6. */
#define LB_VIP_F_ENCAP_GUE 0x2
_Static_assert(sizeof(struct lb_vip_meta) == 16, "lb_vip_meta layout");

/*
 * The VIP behind each id (vip_state array, indexed by vip id). An
 * established flow is forwarded from its connection-table entry alone: the
 * entry names its VIP by id, and the packet goes to the entry's real when
 * that id still holds the VIP the packet is addressed to, with no vip_map
 * lookup. key.family 0: the id is free. lbd writes a VIP's state before
 * its vip_map entry goes live and clears it before the entry goes; a state
 * that lags (an older lbd's pins) only costs speed: the packet then takes
 * the vip_map path.
 */
struct lb_vip_state {
	struct lb_vip_key key;
	__u32 flags; /* LB_VIP_F_*, as in the VIP's lb_vip_meta */
};
_Static_assert(sizeof(struct lb_vip_state) == 24, "lb_vip_state layout");

/*
 * vip_filter: LB_VIP_FILTER_WORDS 64-bit words, one bit per 16-bit hash
 * of an address (lb_vip_addr_bit), set for every VIP address. A packet
 * whose destination's bit is clear is no VIP's and passes with no hash
 * lookup; a set bit only says "maybe" (the maps decide). lbd sets a bit
 * before the VIP's entries go live and clears it after the last VIP on
 * that bit is gone, so a bit is never clear for a live VIP.
 */
#define LB_VIP_FILTER_WORDS 1024

/*
 * A real (an L7 host), indexed by real id in the reals array.
 *
 * The next hop toward it (egress interface, MACs, MTU) is cached here by
 * lbd, which follows route, link and neighbour changes through netlink:
 * the datapath then writes the Ethernet header with no FIB lookup, which
 * was half the cost of a packet. nh_ifindex 0 means "not known" (no
 * resolved neighbour yet, or lbd could not tell): the packet takes
 * bpf_fib_lookup instead and is counted as fib_fallback. The entry is
 * rewritten in place, so a packet racing an update may read a torn MAC
 * once; the neighbour it replaced was being changed anyway.
 */
struct lb_real {
	__u8 addr[16];
	__u8 family;	  /* LB_AF_INET or LB_AF_INET6; 0 = slot unused */
	__u8 encap;	  /* enum lb_encap */
	__u16 flags;	  /* reserved, 0 */
	__u32 nh_ifindex; /* 0: no cached next hop, use the FIB */
	__u16 nh_mtu;	  /* the egress MTU: a larger outer packet is frag_needed */
	__u16 nh_pad;	  /* 0 */
	__u8 nh_dmac[6];  /* the next hop's MAC */
	__u8 nh_smac[6];  /* the egress interface's MAC */
};
_Static_assert(sizeof(struct lb_real) == 40, "lb_real layout");

/* Connection-table key: the client's 5-tuple as seen on the wire. */
struct lb_flow_key {
	__u8 src[16];
	__u8 dst[16];
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 family;
	__u16 pad; /* always 0: the key is hashed byte by byte */
};
_Static_assert(sizeof(struct lb_flow_key) == 40, "lb_flow_key layout");

/* Connection-table value. */
struct lb_conn {
	__u32 real_id;
	__u32 vip_id;
};
_Static_assert(sizeof(struct lb_conn) == 8, "lb_conn layout");

/*
 * conn_cache: a per-CPU, direct-mapped copy of the conn_map entries this
 * CPU used last (slot = lb_cache_slot(key) & (slots - 1)). An established
 * flow's packet reads one slot of an array, with no hash-table walk. A
 * slot is filled when conn_map is read for its key and dropped when the
 * datapath writes conn_map for it; conn_map is read again on every
 * LB_CONN_CACHE_RECHECK-th use and once the copy is
 * LB_CONN_CACHE_MAX_AGE_TICKS of lbd's clock old (about a second; the
 * program's cache_clock, which lbd advances every LB_CONN_CACHE_TICK_MS),
 * so an entry replaced on another CPU or evicted is followed, and a cached
 * flow is still touched in conn_map's LRU. With no lbd running the clock
 * stands still and only the use count applies. Not pinned: it starts
 * empty with each program and holds nothing conn_map does not.
 */
struct lb_conn_cache {
	struct lb_flow_key key __attribute__((aligned(8))); /* family 0: empty */
	__u32 real_id;
	__u32 vip_id;
	__u32 uses;   /* packets served from this slot since it was filled */
	__u32 stamp;  /* cache_clock when filled */
	__u32 pad[2]; /* one 64-byte line per slot */
};
_Static_assert(sizeof(struct lb_conn_cache) == 64, "lb_conn_cache layout");
#define LB_CONN_CACHE_SLOTS_DEFAULT 4096
#define LB_CONN_CACHE_SLOTS_MIN	    64
#define LB_CONN_CACHE_SLOTS_MAX	    (1u << 18)
#define LB_CONN_CACHE_TICK_MS	    250
#define LB_CONN_CACHE_MAX_AGE_TICKS 4
#define LB_CONN_CACHE_RECHECK	    32

/* Packet and byte counter, one per CPU in the per-CPU stats maps. */
struct lb_counter {
	__u64 packets;
	__u64 bytes;
};
_Static_assert(sizeof(struct lb_counter) == 16, "lb_counter layout");

/*
 * The layout of the balancer's maps. Raise it whenever a map's type, flags,
 * key, value or meaning changes: the maps are pinned under
 * pin_dir/v<LB_MAPS_VERSION>, and an lbd that finds an older version's
 * maps copies what it can convert (VIPs, rings, reals, connection table)
 * into its own before it takes the interface over (l4lb.c, migrate_*).
 *   1: maps directly in pin_dir (before versioning).
 *   2: next hop in lb_real; one per-CPU counter block; per-CPU LRU lists.
 */
#define LB_MAPS_VERSION 2

/*
 * Runtime settings of the balancer (one element at index 0 of lb_ctl_map).
 * The outer source addresses are this LB's own addresses on the egress
 * side; userspace reads them from the interface through netlink.
 */
struct lb_ctl {
	__u8 src6[16];
	__be32 src4;
	__u32 maps_version; /* LB_MAPS_VERSION of the lbd that wrote it (0 = 1) */
	/* Not read by the datapath: what the rings were built with, so a
	 * restarted lbd that adopts pinned maps can refuse a mismatch. */
	__u32 ring_size;
	__u32 hash_seed;
	__be16 gue_port; /* GUE's UDP destination port (network order) */
	/* Not read by the datapath either: the flow hash version
	 * (LB_FLOW_HASH_V*, lb_hash.h); 0 from an lbd older than the
	 * setting, which hashed with version 1. */
	__u16 flow_hash;
	/* 1 once an lbd attached this layout's program (l4lb_attach): until
	 * then an older layout's pins beside it are the live dataplane. */
	__u32 live;
};
_Static_assert(sizeof(struct lb_ctl) == 40, "lb_ctl layout");

/*
 * Global counters (lb_counters map, indexed by this enum). The names in
 * lb_counter_names[] (l4lb/stats.c) follow the same order.
 */
enum lb_counter_id {
	LB_CNT_RX = 0,	       /* every packet the program saw */
	LB_CNT_PASS_NON_IP,    /* not IPv4/IPv6: passed to the stack */
	LB_CNT_PASS_NON_VIP,   /* IP but not to a VIP: passed */
	LB_CNT_TX,	       /* encapsulated and sent (TX or redirect) */
	LB_CNT_CONN_HIT,       /* conn-table hit */
	LB_CNT_CONN_MISS,      /* conn-table miss: Maglev ring consulted */
	LB_CNT_DROP_MALFORMED, /* truncated or invalid headers */
	LB_CNT_DROP_FRAGMENT,  /* IP fragment to a VIP: ports unknown */
	LB_CNT_DROP_NO_REAL,   /* VIP has no reals (empty ring slot) */
	LB_CNT_DROP_FIB,       /* no route / no neighbour toward the real */
	LB_CNT_DROP_ENCAP,     /* adjust_head failed or packet too big */
	LB_CNT_PASS_IPV6_EXT,  /* IPv6 with extension headers: passed */
	LB_CNT_DROP_VIP_UNHANDLED, /* to a VIP address but not TCP/UDP it can hash (ICMP, ext. headers) */
	LB_CNT_HC_TX,		   /* health-check probe packets encapsulated (tc egress) */
	LB_CNT_HC_DROP,		   /* probe packets that could not be encapsulated */
	LB_CNT_DROP_FRAG_NEEDED, /* the encapsulated packet exceeds the egress MTU */
	LB_CNT_FIB_FALLBACK,	 /* no cached next hop: bpf_fib_lookup used */
	LB_CNT_ICMP_STEERED,	 /* of tx: frag-needed / packet-too-big sent to the flow's real */
	LB_CNT_ICMP_ECHO_REPLY,	 /* echo request to a VIP answered by the LB */
	LB_CNT_DROP_ICMP,	 /* other ICMP to a VIP, or an unusable quote */
	LB_CNT_MAX,
};

/* The whole set of global counters: one per-CPU element (lb_counters[0]),
 * so a packet looks the block up once however many it bumps. */
struct lb_counters {
	struct lb_counter c[LB_CNT_MAX];
};
_Static_assert(sizeof(struct lb_counters) == LB_CNT_MAX * 16, "lb_counters layout");

/* Counters of the decap program on the L7 hosts (decap_counters map). */
enum lb_decap_counter_id {
	LB_DCNT_RX = 0,		/* every packet the program saw */
	LB_DCNT_DECAP_IPIP,	/* IPIP stripped */
	LB_DCNT_DECAP_IP6IP6,	/* IP6IP6 stripped */
	LB_DCNT_PASS,		/* not encapsulated: untouched */
	LB_DCNT_DROP_MALFORMED, /* encapsulated but truncated or mismatched */
	LB_DCNT_DROP_SOURCE,	/* outer source is not one of the PoP's LBs */
	LB_DCNT_DROP_DEST,	/* outer destination is not this host */
	LB_DCNT_DROP_INNER,	/* inner destination is not one of this host's VIPs */
	LB_DCNT_DECAP_GUE,	/* GUE (IPv4 or IPv6 in UDP to gue_port) stripped */
	LB_DCNT_DECAP_MIXED,	/* IPv4 in IPv6 or IPv6 in IPv4 stripped */
	LB_DCNT_MAX,
};

/*
 * The decap's trust (decap_lbs, decap_local, decap_vips maps: lbd fills
 * them): an encapsulated packet is stripped only if its outer source is
 * one of the PoP's LBs, its outer destination one of this host's
 * addresses and its inner destination one of its VIPs. Anything else
 * would make the host a relay for whoever can reach it.
 */
struct lb_decap_key {
	__u8 addr[16]; /* IPv4 in the first 4 bytes, the rest zero */
	__u8 family;   /* LB_AF_INET or LB_AF_INET6 */
	__u8 pad[3];   /* zero */
};
_Static_assert(sizeof(struct lb_decap_key) == 20, "lb_decap_key layout");

#define LB_DECAP_LBS_MAX   256
#define LB_DECAP_LOCAL_MAX 256
#define LB_DECAP_VIPS_MAX  4096

/* decap_cfg[0]. */
struct lb_decap_cfg {
	__u32 check_source; /* 0: no LB list configured, any outer source (logged) */
	__be16 gue_port;    /* GUE's UDP port (network order); 0: GUE is not stripped */
	__u16 pad;
};

#endif /* PORTICO_LB_ABI_H */
