// SPDX-License-Identifier: GPL-2.0-only
/*
 * Unit tests for the BGP message codec: exact bytes of known messages
 * (worked out by hand from the RFC layouts), round trips, every error of
 * RFC 4271 §6 the decoders produce, and truncated or mutated messages.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "msg.h"

#define FF16                                                                                       \
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,  \
	    0xff
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Building blocks of UPDATE bodies (RFC 4271 §4.3, §5). */
#define A_ORIGIN     0x40, 1, 1, 0			/* ORIGIN IGP */
#define A_ASPATH4    0x40, 2, 6, 2, 1, 0, 0, 0xfd, 0xe9 /* AS_SEQUENCE [65001], 4-octet */
#define A_ASPATH2    0x40, 2, 4, 2, 1, 0xfd, 0xe9	/* the same, 2-octet */
#define A_NEXTHOP    0x40, 3, 4, 192, 0, 2, 1		/* NEXT_HOP 192.0.2.1 */
#define NLRI_ONE     32, 198, 51, 100, 10		/* 198.51.100.10/32 */
#define A_V4_ALL     A_ORIGIN, A_ASPATH4, A_NEXTHOP
#define A_V4_ALL_LEN 20

/* The OPEN lbd sends: AS 65001, hold 90, id 10.0.0.1, every capability. */
static const struct bgp_open known_open = {
    .as = 65001,
    .hold_time = 90,
    .bgp_id = 0x0a000001,
    .as4 = true,
    .mp_v4 = true,
    .mp_v6 = true,
    .route_refresh = true,
    .gr = true,
    .gr_time = 120,
    .gr_v4 = true,
    .gr_v6 = true,
};

/* clang-format off: one wire field per line */
static const uint8_t known_open_bytes[] = {
    FF16,				/* RFC 4271 §4.1 marker */
    0x00, 0x3f,				/* length 63 */
    0x01,				/* type OPEN */
    0x04,				/* §4.2 version 4 */
    0xfd, 0xe9,				/* My AS 65001 */
    0x00, 0x5a,				/* Hold Time 90 */
    0x0a, 0x00, 0x00, 0x01,		/* BGP Identifier 10.0.0.1 */
    0x22,				/* Opt Parm Len 34 */
    0x02, 0x20,				/* RFC 5492 §4: Capabilities, 32 bytes */
    0x01, 0x04, 0x00, 0x01, 0x00, 0x01, /* RFC 4760 §8: MP IPv4 unicast */
    0x01, 0x04, 0x00, 0x02, 0x00, 0x01, /* MP IPv6 unicast */
    0x02, 0x00,				/* RFC 2918 §2: route refresh */
    0x41, 0x04, 0x00, 0x00, 0xfd, 0xe9, /* RFC 6793 §3: 4-octet AS 65001 */
    0x40, 0x0a,				/* RFC 4724 §3: graceful restart, 10 bytes */
    0x00, 0x78,				/* R=0, restart time 120 */
    0x00, 0x01, 0x01, 0x00,		/* IPv4 unicast, F=0 */
    0x00, 0x02, 0x01, 0x00,		/* IPv6 unicast, F=0 */
};
/* clang-format on */

/* An eBGP announcement of 198.51.100.10/32 tagged GRACEFUL_SHUTDOWN. */
static const struct bgp_prefix vip4 = {.family = 4, .len = 32, .addr = {198, 51, 100, 10}};
static const uint32_t gshut[] = {BGP_COMMUNITY_GRACEFUL_SHUTDOWN};

/* clang-format off */
static const uint8_t known_update_bytes[] = {
	FF16,					/* marker */
	0x00, 0x37,				/* length 55 */
	0x02,					/* type UPDATE */
	0x00, 0x00,				/* §4.3 Withdrawn Routes Length 0 */
	0x00, 0x1b,				/* Total Path Attribute Length 27 */
	0x40, 0x01, 0x01, 0x00,			/* ORIGIN (well-known) IGP */
	0x40, 0x02, 0x06,			/* AS_PATH, 6 bytes: */
	0x02, 0x01, 0x00, 0x00, 0xfd, 0xe9,	/*   AS_SEQUENCE of 1: 65001 */
	0x40, 0x03, 0x04, 0xc0, 0x00, 0x02, 0x01, /* NEXT_HOP 192.0.2.1 */
	0xc0, 0x08, 0x04, 0xff, 0xff, 0x00, 0x00, /* COMMUNITIES (opt. trans.) 65535:0 */
	0x20, 0xc6, 0x33, 0x64, 0x0a,		/* NLRI 198.51.100.10/32 */
};
/* clang-format on */

/* IPv6: announce 2001:db8::10/128 via 2001:db8::1, withdraw 2001:db8:1::/48. */
static const struct bgp_prefix vip6 = {
    .family = 6, .len = 128, .addr = {0x20, 0x01, 0x0d, 0xb8, [15] = 0x10}};
static const struct bgp_prefix old6 = {
    .family = 6, .len = 48, .addr = {0x20, 0x01, 0x0d, 0xb8, 0x00, 0x01}};
static const uint8_t nh6[16] = {0x20, 0x01, 0x0d, 0xb8, [15] = 0x01};

/* clang-format off */
static const uint8_t known_update6_bytes[] = {
	FF16,					/* marker */
	0x00, 0x5a,				/* length 90 */
	0x02,					/* type UPDATE */
	0x00, 0x00,				/* no classic withdrawn routes */
	0x00, 0x43,				/* 67 bytes of attributes */
	0x80, 0x0e, 0x26,			/* RFC 4760 §3 MP_REACH_NLRI, 38 bytes */
	0x00, 0x02, 0x01,			/*   AFI 2, SAFI 1 */
	0x10,					/*   next hop length 16 */
	0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0,	/*   2001:db8::1 */
	0, 0, 0, 0, 0, 0, 0, 0x01,
	0x00,					/*   reserved */
	0x80,					/*   /128 */
	0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0,	/*   2001:db8::10 */
	0, 0, 0, 0, 0, 0, 0, 0x10,
	0x80, 0x0f, 0x0a,			/* §4 MP_UNREACH_NLRI, 10 bytes */
	0x00, 0x02, 0x01,			/*   AFI 2, SAFI 1 */
	0x30, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x01, /*   2001:db8:1::/48 */
	0x40, 0x01, 0x01, 0x00,			/* ORIGIN IGP */
	0x40, 0x02, 0x06,			/* AS_PATH, 6 bytes: */
	0x02, 0x01, 0x00, 0x00, 0xfd, 0xe9,	/*   AS_SEQUENCE of 1: 65001 */
};
/* clang-format on */

static uint8_t buf[BGP_MAX_LEN + 64];
static struct bgp_err err;

/* Decode the header of msg and check it says type and the whole length. */
static void check_header(const uint8_t *msg, size_t len, uint8_t want_type)
{
	uint16_t mlen = 0;
	uint8_t type = 0;

	assert_int_equal(bgp_decode_header(msg, len, &type, &mlen, &err), 0);
	assert_int_equal(type, want_type);
	assert_int_equal(mlen, len);
}

static void assert_err(int rc, uint8_t code, uint8_t subcode)
{
	assert_int_equal(rc, -EINVAL);
	assert_int_equal(err.code, code);
	assert_int_equal(err.subcode, subcode);
}

static void assert_data(const uint8_t *want, size_t len)
{
	assert_int_equal(err.data_len, len);
	if (len)
		assert_memory_equal(err.data, want, len);
}

/* ---- header ---- */

static int hdr(const uint8_t *m, size_t len)
{
	uint16_t mlen;
	uint8_t type;

	return bgp_decode_header(m, len, &type, &mlen, &err);
}

static void test_header(void **st)
{
	uint8_t m[BGP_HDR_LEN] = {FF16, 0x00, 0x13, BGP_KEEPALIVE};
	struct {
		uint8_t type;
		uint16_t len;
		int subcode; /* 0: valid */
	} cases[] = {
	    {BGP_OPEN, 28, 2},
	    {BGP_OPEN, 29, 0},
	    {BGP_UPDATE, 22, 2},
	    {BGP_UPDATE, 23, 0},
	    {BGP_NOTIFICATION, 20, 2},
	    {BGP_NOTIFICATION, 21, 0},
	    {BGP_KEEPALIVE, 20, 2},
	    {BGP_KEEPALIVE, 19, 0},
	    {BGP_ROUTE_REFRESH, 22, 2},
	    {BGP_ROUTE_REFRESH, 23, 0},
	    {BGP_UPDATE, 18, 2},
	    {BGP_UPDATE, 4096, 0},
	    {BGP_UPDATE, 4097, 2},
	    {6, 19, 3},
	    {0, 19, 3},
	    {255, 4096, 3},
	};

	(void)st;
	for (size_t i = 0; i < BGP_HDR_LEN; i++)
		assert_int_equal(hdr(m, i), -EAGAIN);
	check_header(m, sizeof(m), BGP_KEEPALIVE);

	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		m[16] = cases[i].len >> 8;
		m[17] = cases[i].len & 0xff;
		m[18] = cases[i].type;
		if (!cases[i].subcode) {
			assert_int_equal(hdr(m, sizeof(m)), 0);
			continue;
		}
		/* §6.1: 1/2 carries the length field, 1/3 the type. */
		assert_err(hdr(m, sizeof(m)), 1, cases[i].subcode);
		if (cases[i].subcode == 2)
			assert_data(m + 16, 2);
		else
			assert_data(m + 18, 1);
	}

	/* §6.1: any marker byte not all ones -> 1/1, before anything else. */
	for (int i = 0; i < 16; i++) {
		m[i] = 0xfe;
		assert_err(hdr(m, sizeof(m)), 1, 1);
		assert_int_equal(err.data_len, 0);
		m[i] = 0xff;
	}
}

/* ---- OPEN ---- */

static void test_open_known_bytes(void **st)
{
	struct bgp_open o;
	int n;

	(void)st;
	n = bgp_encode_open(&known_open, buf, sizeof(buf));
	assert_int_equal(n, sizeof(known_open_bytes));
	assert_memory_equal(buf, known_open_bytes, sizeof(known_open_bytes));
	check_header(buf, n, BGP_OPEN);
	assert_int_equal(bgp_decode_open(buf + BGP_HDR_LEN, n - BGP_HDR_LEN, &o, &err), 0);
	assert_memory_equal(&o, &known_open, sizeof(o));

	assert_int_equal(bgp_encode_open(&known_open, buf, sizeof(known_open_bytes) - 1), -ENOSPC);
	assert_int_equal(bgp_encode_open(&known_open, buf, 0), -ENOSPC);
}

static void roundtrip_open(const struct bgp_open *in)
{
	struct bgp_open out;
	int n;

	n = bgp_encode_open(in, buf, sizeof(buf));
	assert_true(n >= 29);
	check_header(buf, n, BGP_OPEN);
	assert_int_equal(bgp_decode_open(buf + BGP_HDR_LEN, n - BGP_HDR_LEN, &out, &err), 0);
	assert_memory_equal(&out, in, sizeof(out));
}

static void test_open_roundtrip(void **st)
{
	struct bgp_open o = known_open;

	(void)st;
	/* RFC 6793 §4.1: a 4-byte AS travels as AS_TRANS plus capability 65. */
	o.as = 4200000001u;
	o.gr_restarting = true;
	o.gr_fwd_v6 = true;
	o.gr_time = 4095;
	o.hold_time = 0;
	roundtrip_open(&o);
	assert_int_equal(buf[20], 23456 >> 8);
	assert_int_equal(buf[21], 23456 & 0xff);

	/* No capabilities at all: Opt Parm Len 0, 29 bytes. */
	o = (struct bgp_open){.as = 64512, .hold_time = 3, .bgp_id = 1};
	roundtrip_open(&o);
	assert_int_equal(bgp_encode_open(&o, buf, sizeof(buf)), 29);

	o = (struct bgp_open){.as = 65000, .hold_time = 180, .bgp_id = 2, .gr = true};
	roundtrip_open(&o); /* GR with no families: capability length 2 */
	o = (struct bgp_open){.as = 65000, .hold_time = 180, .bgp_id = 2, .mp_v6 = true};
	roundtrip_open(&o);

	/* Values the wire cannot carry are refused. */
	o = known_open;
	o.as = 70000;
	o.as4 = false;
	assert_int_equal(bgp_encode_open(&o, buf, sizeof(buf)), -EINVAL);
	o = known_open;
	o.as = 0;
	assert_int_equal(bgp_encode_open(&o, buf, sizeof(buf)), -EINVAL);
	o = known_open;
	o.hold_time = 2;
	assert_int_equal(bgp_encode_open(&o, buf, sizeof(buf)), -EINVAL);
	o = known_open;
	o.bgp_id = 0;
	assert_int_equal(bgp_encode_open(&o, buf, sizeof(buf)), -EINVAL);
	o = known_open;
	o.gr_time = 4096;
	assert_int_equal(bgp_encode_open(&o, buf, sizeof(buf)), -EINVAL);
}

/* Decode known_open_bytes after f() edited a copy of its body. */
static int open_edit(void (*f)(uint8_t *b, size_t *len), struct bgp_open *o)
{
	uint8_t b[256];
	size_t len = sizeof(known_open_bytes) - BGP_HDR_LEN;

	memcpy(b, known_open_bytes + BGP_HDR_LEN, len);
	f(b, &len);
	return bgp_decode_open(b, len, o, &err);
}

static void e_version(uint8_t *b, size_t *len)
{
	(void)len;
	b[0] = 3;
}
static void e_my_as0(uint8_t *b, size_t *len)
{
	(void)len;
	b[1] = b[2] = 0;
}
static void e_cap_as0(uint8_t *b, size_t *len)
{
	(void)len;
	memset(b + 10 + 2 + 14 + 2, 0, 4); /* value of capability 65 */
}
static void e_hold1(uint8_t *b, size_t *len)
{
	(void)len;
	b[4] = 1;
	b[3] = 0;
}
static void e_hold2(uint8_t *b, size_t *len)
{
	(void)len;
	b[4] = 2;
	b[3] = 0;
}
static void e_hold3(uint8_t *b, size_t *len)
{
	(void)len;
	b[4] = 3;
	b[3] = 0;
}
static void e_id0(uint8_t *b, size_t *len)
{
	(void)len;
	memset(b + 5, 0, 4);
}
static void e_optlen_long(uint8_t *b, size_t *len)
{
	(void)len;
	b[9]++;
}
static void e_optlen_short(uint8_t *b, size_t *len)
{
	(void)len;
	b[9]--;
}
static void e_param_overrun(uint8_t *b, size_t *len)
{
	(void)len;
	b[11]++; /* parameter length 33 in a 34-byte area of which 2 are header */
}
static void e_cap_overrun(uint8_t *b, size_t *len)
{
	(void)len;
	b[10 + 2 + 12 + 2 + 6 + 1] = 11; /* GR says 11 bytes, 10 remain */
}
static void e_mp_len(uint8_t *b, size_t *len)
{
	/* MP capability of 3 bytes: shrink it and every length around it. */
	memmove(b + 12 + 5, b + 12 + 6, *len - 18);
	(*len)--;
	b[12 + 1] = 3;
	b[11]--;
	b[9]--;
}
static void e_as4_len(uint8_t *b, size_t *len)
{
	(void)len;
	b[10 + 2 + 14 + 1] = 2; /* capability 65 of length 2 */
}
static void e_gr_len(uint8_t *b, size_t *len)
{
	/* GR capability of 9 bytes (not 2 + 4n). */
	(*len)--;
	b[10 + 2 + 20 + 1] = 9;
	b[11]--;
	b[9]--;
}
static void e_param_type(uint8_t *b, size_t *len)
{
	(void)len;
	b[10] = 3; /* not Capabilities */
}
static void e_auth_param(uint8_t *b, size_t *len)
{
	(void)len;
	b[10] = 1; /* deprecated Authentication */
}
static void e_unknown_cap(uint8_t *b, size_t *len)
{
	(void)len;
	b[10 + 2 + 12] = 70; /* route refresh becomes enhanced RR: ignored */
}

static void test_open_errors(void **st)
{
	static const uint8_t four[2] = {0, 4};
	struct bgp_open o;

	(void)st;
	/* RFC 4271 §6.2: unsupported version -> 2/1, data the version we speak. */
	assert_err(open_edit(e_version, &o), 2, 1);
	assert_data(four, 2);
	assert_err(open_edit(e_my_as0, &o), 2, 2); /* RFC 7607 */
	assert_err(open_edit(e_cap_as0, &o), 2, 2);
	assert_err(open_edit(e_hold1, &o), 2, 6);
	assert_err(open_edit(e_hold2, &o), 2, 6);
	assert_int_equal(open_edit(e_hold3, &o), 0);
	assert_int_equal(o.hold_time, 3);
	assert_err(open_edit(e_id0, &o), 2, 3);
	assert_int_equal(err.data_len, 0);

	/* Opt Parm Len disagreeing with the message: 1/2, the message length. */
	assert_err(open_edit(e_optlen_long, &o), 1, 2);
	assert_data(known_open_bytes + 16, 2);
	assert_err(open_edit(e_optlen_short, &o), 1, 2);

	/* Malformed parameters and capabilities: 2/0 (§6.2, "recognized"). */
	assert_err(open_edit(e_param_overrun, &o), 2, 0);
	assert_err(open_edit(e_cap_overrun, &o), 2, 0);
	assert_err(open_edit(e_mp_len, &o), 2, 0);
	assert_err(open_edit(e_as4_len, &o), 2, 0);
	assert_err(open_edit(e_gr_len, &o), 2, 0);

	/* Unsupported optional parameter -> 2/4; unknown capability ignored. */
	assert_err(open_edit(e_param_type, &o), 2, 4);
	assert_err(open_edit(e_auth_param, &o), 2, 4);
	assert_int_equal(open_edit(e_unknown_cap, &o), 0);
	assert_false(o.route_refresh);
	assert_true(o.as4 && o.mp_v4 && o.mp_v6 && o.gr);

	/* Shorter than the fixed part: 1/2. */
	assert_err(bgp_decode_open(known_open_bytes + BGP_HDR_LEN, 9, &o, &err), 1, 2);
}

static void test_open_peer_variants(void **st)
{
	/* A 2-octet peer: no capability 65, My AS is the AS. */
	static const uint8_t plain[] = {4, 0xfc, 0x00, 0, 90, 192, 0, 2, 254, 0};
	/* clang-format off */
	/* RFC 9072 §2: extended parameters (255, 255, then 2-byte lengths). */
	static const uint8_t ext[] = {
		4, 0x5b, 0xa0,			/* version 4, My AS = AS_TRANS */
		0, 90,				/* hold time */
		192, 0, 2, 254,			/* BGP Identifier */
		255, 255, 0x00, 0x15,		/* extended: 21 bytes of parameters */
		2, 0x00, 0x12,			/* Capabilities, 18 bytes: */
		65, 4, 0xfa, 0x56, 0xea, 0x01,	/*   4-octet AS 4200000001 */
		64, 10, 0x81, 0x2c,		/*   GR: R=1, restart time 300 */
		0x00, 0x02, 0x01, 0x80,		/*     IPv6 unicast, F=1 */
		0x00, 0x01, 0x80, 0x80,		/*     IPv4 SAFI 128: not ours */
	};
	/* Capabilities split over two parameters (RFC 5492 §4 allows it). */
	static const uint8_t split[] = {
		4, 0xfd, 0xe9, 0, 90, 10, 0, 0, 2, /* AS 65001, hold 90, 10.0.0.2 */
		16,				/* Opt Parm Len */
		2, 6, 1, 4, 0, 2, 0, 1,		/* Capabilities: MP IPv6 unicast */
		2, 6, 65, 4, 0, 0, 0xfd, 0xe9,	/* Capabilities: 4-octet AS 65001 */
	};
	/* clang-format on */
	struct bgp_open o;

	(void)st;
	assert_int_equal(bgp_decode_open(plain, sizeof(plain), &o, &err), 0);
	assert_int_equal(o.as, 64512);
	assert_false(o.as4 || o.mp_v4 || o.mp_v6 || o.gr || o.route_refresh);
	assert_int_equal(o.bgp_id, 0xc00002fe);

	assert_int_equal(bgp_decode_open(ext, sizeof(ext), &o, &err), 0);
	assert_int_equal(o.as, 4200000001u);
	assert_true(o.as4 && o.gr && o.gr_restarting && o.gr_v6 && o.gr_fwd_v6);
	assert_false(o.gr_v4);
	assert_int_equal(o.gr_time, 300);

	assert_int_equal(bgp_decode_open(split, sizeof(split), &o, &err), 0);
	assert_true(o.mp_v6 && o.as4);
	assert_int_equal(o.as, 65001);
}

/* ---- UPDATE ---- */

static int decode_update_msg(const uint8_t *m, size_t len, bool as4, struct bgp_update_in *u)
{
	check_header(m, len, BGP_UPDATE);
	return bgp_decode_update(m + BGP_HDR_LEN, len - BGP_HDR_LEN, as4, u, &err);
}

static void test_update_known_bytes(void **st)
{
	struct bgp_update_out out = {
	    .family = 4,
	    .announce = &vip4,
	    .n_announce = 1,
	    .local_as = 65001,
	    .as4 = true,
	    .next_hop = {192, 0, 2, 1},
	    .communities = gshut,
	    .n_communities = 1,
	};
	struct bgp_update_out out6 = {
	    .family = 6,
	    .announce = &vip6,
	    .n_announce = 1,
	    .withdraw = &old6,
	    .n_withdraw = 1,
	    .local_as = 65001,
	    .as4 = true,
	};
	struct bgp_update_in in;
	int n;

	(void)st;
	n = bgp_encode_update(&out, buf, sizeof(buf));
	assert_int_equal(n, sizeof(known_update_bytes));
	assert_memory_equal(buf, known_update_bytes, sizeof(known_update_bytes));
	assert_int_equal(decode_update_msg(buf, n, true, &in), 0);
	assert_int_equal(in.n_announce, 1);
	assert_int_equal(in.n_withdraw, 0);
	assert_false(in.eor);
	/* The same bytes on a 2-octet session are a malformed AS_PATH. */
	assert_err(decode_update_msg(buf, n, false, &in), 3, 11);
	assert_int_equal(bgp_encode_update(&out, buf, n - 1), -ENOSPC);

	memcpy(out6.next_hop, nh6, 16);
	n = bgp_encode_update(&out6, buf, sizeof(buf));
	assert_int_equal(n, sizeof(known_update6_bytes));
	assert_memory_equal(buf, known_update6_bytes, sizeof(known_update6_bytes));
	assert_int_equal(decode_update_msg(buf, n, true, &in), 0);
	assert_int_equal(in.n_announce, 1);
	assert_int_equal(in.n_withdraw, 1);
}

static void test_update_variants(void **st)
{
	/* 192.0.2.0/24, 10.1.240.0/20 with junk past the length, 0.0.0.0/0 */
	const struct bgp_prefix v4[] = {
	    {.family = 4, .len = 24, .addr = {192, 0, 2}},
	    {.family = 4, .len = 20, .addr = {10, 1, 0xff, 3}},
	    {.family = 4, .len = 0},
	};
	struct bgp_update_out u = {
	    .family = 4,
	    .announce = v4,
	    .n_announce = 3,
	    .withdraw = &vip4,
	    .n_withdraw = 1,
	    .local_as = 64512,
	    .next_hop = {192, 0, 2, 1},
	};
	/* iBGP: empty AS_PATH and LOCAL_PREF 100 (RFC 4271 §5.1.2, §5.1.5). */
	static const uint8_t ibgp_attrs[] = {0x40, 1, 1, 0,    0x40, 2, 0, 0x40, 3, 4,	192,
					     0,	   2, 1, 0x40, 5,    4, 0, 0,	 0, 100};
	/* RFC 6793 §4.2.2: AS_TRANS in AS_PATH, the real AS in AS4_PATH. */
	static const uint8_t trans_path[] = {0x40, 2, 4, 2, 1, 0x5b, 0xa0};
	static const uint8_t as4_path[] = {0xc0, 17, 6, 2, 1, 0xfa, 0x56, 0xea, 0x01};
	struct bgp_update_in in;
	int n;

	(void)st;
	/* 2-octet eBGP, withdraw and announce in one message. */
	n = bgp_encode_update(&u, buf, sizeof(buf));
	assert_true(n > 0);
	assert_int_equal(decode_update_msg(buf, n, false, &in), 0);
	assert_int_equal(in.n_announce, 3);
	assert_int_equal(in.n_withdraw, 1);
	/* NLRI 18 c0 00 02, 14 0a 01 f0 (bits past /20 cleared), 00 (default). */
	assert_memory_equal(buf + n - 9, ((uint8_t[]){24, 192, 0, 2, 20, 10, 1, 0xf0, 0}), 9);

	u.ibgp = true;
	u.withdraw = NULL;
	u.n_withdraw = 0;
	n = bgp_encode_update(&u, buf, sizeof(buf));
	assert_int_equal(buf[BGP_HDR_LEN + 3], sizeof(ibgp_attrs));
	assert_memory_equal(buf + BGP_HDR_LEN + 4, ibgp_attrs, sizeof(ibgp_attrs));
	assert_int_equal(decode_update_msg(buf, n, true, &in), 0);

	u.ibgp = false;
	u.local_as = 4200000001u;
	n = bgp_encode_update(&u, buf, sizeof(buf));
	assert_memory_equal(buf + BGP_HDR_LEN + 4 + 4, trans_path, sizeof(trans_path));
	assert_memory_equal(buf + BGP_HDR_LEN + 4 + 4 + 7 + 7, as4_path, sizeof(as4_path));
	assert_int_equal(decode_update_msg(buf, n, false, &in), 0);
	assert_int_equal(in.n_announce, 3);

	/* Withdraw-only: no path attributes (IPv4), only MP_UNREACH (IPv6). */
	u = (struct bgp_update_out){.family = 4, .withdraw = v4, .n_withdraw = 2};
	n = bgp_encode_update(&u, buf, sizeof(buf));
	assert_int_equal(n, BGP_HDR_LEN + 2 + 4 + 4 + 2); /* /24 and /20 */
	assert_int_equal(decode_update_msg(buf, n, true, &in), 0);
	assert_int_equal(in.n_withdraw, 2);
	assert_false(in.eor);
	u = (struct bgp_update_out){.family = 6, .withdraw = &vip6, .n_withdraw = 1};
	n = bgp_encode_update(&u, buf, sizeof(buf));
	assert_int_equal(n, BGP_HDR_LEN + 4 + 3 + 3 + 17);
	assert_int_equal(decode_update_msg(buf, n, true, &in), 0);
	assert_int_equal(in.n_withdraw, 1);
	assert_int_equal(in.n_announce, 0);
}

static void test_update_encode_limits(void **st)
{
	static struct bgp_prefix many[1000];
	static uint32_t comms[100];
	struct bgp_update_out u = {
	    .family = 4, .announce = many, .local_as = 65001, .next_hop = {192, 0, 2, 1}};
	struct bgp_update_in in;
	int n;

	(void)st;
	for (size_t i = 0; i < ARRAY_LEN(many); i++)
		many[i] =
		    (struct bgp_prefix){.family = 4, .len = 32, .addr = {10, 0, i >> 8, i & 0xff}};
	/* 23 + 4 + 7 + 7 + 5n <= 4096: 811 /32s fit, 812 do not. */
	u.n_announce = 811;
	n = bgp_encode_update(&u, buf, sizeof(buf));
	assert_true(n > 4090 && n <= BGP_MAX_LEN);
	assert_int_equal(decode_update_msg(buf, n, false, &in), 0);
	assert_int_equal(in.n_announce, 811);
	u.n_announce = 812;
	assert_int_equal(bgp_encode_update(&u, buf, sizeof(buf)), -ENOSPC);

	/* 100 communities need an extended-length attribute (400 > 255). */
	u.n_announce = 1;
	u.communities = comms;
	u.n_communities = ARRAY_LEN(comms);
	n = bgp_encode_update(&u, buf, sizeof(buf));
	assert_true(n > 400);
	assert_int_equal(decode_update_msg(buf, n, false, &in), 0);

	/* Arguments the encoder refuses. */
	u.n_communities = 0;
	u.family = 6;
	assert_int_equal(bgp_encode_update(&u, buf, sizeof(buf)), -EINVAL); /* v4 prefix */
	u.family = 5;
	assert_int_equal(bgp_encode_update(&u, buf, sizeof(buf)), -EINVAL);
	u.family = 4;
	many[0].len = 33;
	assert_int_equal(bgp_encode_update(&u, buf, sizeof(buf)), -EINVAL);
	many[0].len = 32;
	memset(u.next_hop, 0, 4);
	assert_int_equal(bgp_encode_update(&u, buf, sizeof(buf)), -EINVAL);
	u.next_hop[0] = 192;
	u.local_as = 0;
	assert_int_equal(bgp_encode_update(&u, buf, sizeof(buf)), -EINVAL); /* RFC 7607 */
	u.ibgp = true;
	assert_true(bgp_encode_update(&u, buf, sizeof(buf)) > 0); /* no AS in iBGP paths */
	u.n_announce = 0;
	assert_int_equal(bgp_encode_update(&u, buf, sizeof(buf)), -EINVAL); /* use EoR */
}

/* Make an UPDATE message from its three parts into buf; returns its length. */
static size_t mk_update(const uint8_t *wd, size_t wd_len, const uint8_t *at, size_t at_len,
			const uint8_t *nlri, size_t nlri_len)
{
	size_t len = BGP_HDR_LEN + 4 + wd_len + at_len + nlri_len;
	uint8_t *p = buf;

	memset(p, 0xff, 16);
	p[16] = len >> 8;
	p[17] = len & 0xff;
	p[18] = BGP_UPDATE;
	p += BGP_HDR_LEN;
	*p++ = wd_len >> 8;
	*p++ = wd_len & 0xff;
	if (wd_len)
		memcpy(p, wd, wd_len);
	p += wd_len;
	*p++ = at_len >> 8;
	*p++ = at_len & 0xff;
	if (at_len)
		memcpy(p, at, at_len);
	p += at_len;
	if (nlri_len)
		memcpy(p, nlri, nlri_len);
	return len;
}

static const uint8_t one_nlri[] = {NLRI_ONE};

/* Decode attributes at + 198.51.100.10/32 (as4) and expect code 3/subcode. */
static void upd_attrs_err(const uint8_t *at, size_t at_len, uint8_t subcode, bool soft)
{
	struct bgp_update_in in;
	size_t n = mk_update(NULL, 0, at, at_len, one_nlri, sizeof(one_nlri));

	assert_err(decode_update_msg(buf, n, true, &in), 3, subcode);
	assert_int_equal(err.treat_as_withdraw, soft);
}

#define UPD_ERR(subcode, soft, ...)                                                                \
	do {                                                                                       \
		static const uint8_t at_[] = {__VA_ARGS__};                                        \
		upd_attrs_err(at_, sizeof(at_), subcode, soft);                                    \
	} while (0)

/* Expect the error data to be the attribute at offset off of the list. */
#define UPD_ERR_DATA(subcode, soft, off, alen, ...)                                                \
	do {                                                                                       \
		static const uint8_t at_[] = {__VA_ARGS__};                                        \
		upd_attrs_err(at_, sizeof(at_), subcode, soft);                                    \
		assert_data(at_ + (off), alen);                                                    \
	} while (0)

static void test_update_errors(void **st)
{
	static const uint8_t all[] = {A_V4_ALL};
	struct bgp_update_in in;
	size_t n;

	(void)st;
	/* Valid baseline. */
	n = mk_update(NULL, 0, all, sizeof(all), one_nlri, sizeof(one_nlri));
	assert_int_equal(decode_update_msg(buf, n, true, &in), 0);

	/* 3/1: the two length fields overrunning the message. */
	n = mk_update(NULL, 0, all, sizeof(all), one_nlri, sizeof(one_nlri));
	buf[BGP_HDR_LEN + 1] = 200; /* Withdrawn Routes Length */
	assert_err(decode_update_msg(buf, n, true, &in), 3, 1);
	assert_false(err.treat_as_withdraw);
	n = mk_update(NULL, 0, all, sizeof(all), one_nlri, sizeof(one_nlri));
	buf[BGP_HDR_LEN + 3] = A_V4_ALL_LEN + 6; /* Total Path Attribute Length */
	assert_err(decode_update_msg(buf, n, true, &in), 3, 1);
	assert_int_equal(err.data_len, 0);
	/* 3/1: an attribute running past the list (RFC 7606 §4: soft). */
	UPD_ERR(1, true, A_ORIGIN, A_ASPATH4, 0x40, 3, 5, 192, 0, 2, 1);
	UPD_ERR(1, true, A_V4_ALL, 0x50, 8); /* extended-length header cut short */
	/* 3/1: a repeated attribute (RFC 7606 §3(g): discard). */
	UPD_ERR(1, true, A_V4_ALL, A_ORIGIN);

	/* 3/2: unrecognized well-known attribute; data is the attribute. */
	UPD_ERR_DATA(2, true, 20, 5, A_V4_ALL, 0x40, 99, 2, 0xab, 0xcd);
	/* ... while unknown optional ones are passed over. */
	n = mk_update(NULL, 0, (uint8_t[]){A_V4_ALL, 0xc0, 99, 1, 0}, 24, one_nlri, 5);
	assert_int_equal(decode_update_msg(buf, n, true, &in), 0);

	/* 3/3: missing well-known attribute; data is its type code. */
	UPD_ERR(3, true, A_ASPATH4, A_NEXTHOP);
	assert_data((uint8_t[]){1}, 1);
	UPD_ERR(3, true, A_ORIGIN, A_NEXTHOP);
	assert_data((uint8_t[]){2}, 1);
	UPD_ERR(3, true, A_ORIGIN, A_ASPATH4);
	assert_data((uint8_t[]){3}, 1);
	/* MP_REACH_NLRI needs ORIGIN and AS_PATH but no NEXT_HOP (RFC 4760 §3). */
	UPD_ERR(3, true, 0x80, 14, 22, 0, 2, 1, 16, 0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0,
		0, 0, 1, 0, 0, A_ASPATH4);
	assert_data((uint8_t[]){1}, 1);
	/* ... but none are needed without NLRI. */
	n = mk_update(NULL, 0, (uint8_t[]){A_ORIGIN}, 4, NULL, 0);
	assert_int_equal(decode_update_msg(buf, n, true, &in), 0);

	/* 3/4: flags conflicting with the type; data is the attribute. */
	UPD_ERR_DATA(4, true, 0, 4, 0xc0, 1, 1, 0, A_ASPATH4, A_NEXTHOP);     /* ORIGIN O=1 */
	UPD_ERR_DATA(4, true, 0, 4, 0x60, 1, 1, 0, A_ASPATH4, A_NEXTHOP);     /* ORIGIN P=1 */
	UPD_ERR_DATA(4, true, 20, 7, A_V4_ALL, 0x40, 8, 4, 0xff, 0xff, 0, 0); /* COMM. O=0 */
	UPD_ERR(4, false, 0x40, 15, 3, 0, 2, 1, A_V4_ALL);		      /* MP_UNREACH T=1 */

	/* 3/5: a known attribute of the wrong length; data is the attribute. */
	UPD_ERR_DATA(5, true, 0, 5, 0x40, 1, 2, 0, 0, A_ASPATH4, A_NEXTHOP);
	UPD_ERR_DATA(5, true, 13, 8, A_ORIGIN, A_ASPATH4, 0x40, 3, 5, 192, 0, 2, 1, 1);
	UPD_ERR_DATA(5, true, 20, 6, A_V4_ALL, 0x40, 5, 3, 0, 0, 100);	   /* LOCAL_PREF */
	UPD_ERR_DATA(5, true, 20, 8, A_V4_ALL, 0x80, 4, 5, 0, 0, 0, 1, 0); /* MED */
	UPD_ERR_DATA(5, true, 20, 4, A_V4_ALL, 0x40, 6, 1, 0);		   /* ATOMIC_AGGR */
	UPD_ERR_DATA(5, true, 20, 10, A_V4_ALL, 0xc0, 7, 7, 0, 1, 0, 0, 0, 0, 1);
	UPD_ERR_DATA(5, true, 20, 8, A_V4_ALL, 0xc0, 8, 5, 0, 0, 0, 0, 1); /* COMMUNITIES */
	UPD_ERR_DATA(5, true, 20, 3, A_V4_ALL, 0xc0, 8, 0);		   /* empty too */

	/* 3/6: ORIGIN beyond INCOMPLETE. */
	UPD_ERR_DATA(6, true, 0, 4, 0x40, 1, 1, 3, A_ASPATH4, A_NEXTHOP);

	/* 3/8: a NEXT_HOP that cannot be a host. */
	UPD_ERR_DATA(8, true, 13, 7, A_ORIGIN, A_ASPATH4, 0x40, 3, 4, 0, 0, 0, 0);
	UPD_ERR_DATA(8, true, 13, 7, A_ORIGIN, A_ASPATH4, 0x40, 3, 4, 127, 0, 0, 1);
	UPD_ERR_DATA(8, true, 13, 7, A_ORIGIN, A_ASPATH4, 0x40, 3, 4, 224, 0, 0, 5);
	UPD_ERR_DATA(8, true, 13, 7, A_ORIGIN, A_ASPATH4, 0x40, 3, 4, 255, 255, 255, 255);

	/* 3/9: broken MP_REACH/MP_UNREACH (RFC 4760 §7), a session reset. */
	UPD_ERR_DATA(9, false, 0, 8, 0x80, 14, 5, 0, 2, 1, 5, 0, A_V4_ALL);    /* nh overruns */
	UPD_ERR_DATA(9, false, 0, 9, 0x80, 14, 6, 0, 2, 1, 1, 9, 0, A_V4_ALL); /* nh len 1 */
	UPD_ERR_DATA(9, false, 0, 5, 0x80, 15, 2, 0, 2, A_V4_ALL);
	UPD_ERR_DATA(9, false, 0, 7, 0x80, 15, 4, 0, 2, 1, 129, A_V4_ALL);	/* /129 */
	UPD_ERR_DATA(9, false, 0, 8, 0x80, 15, 5, 0, 2, 1, 64, 0x20, A_V4_ALL); /* cut */
	UPD_ERR_DATA(9, false, 0, 13, 0x80, 14, 10, 0, 1, 1, 4, 10, 0, 0, 1, 0, 33, A_V4_ALL);
	UPD_ERR(1, false, 0x80, 15, 3, 0, 2, 1, 0x80, 15, 3, 0, 2, 1, A_V4_ALL); /* twice */
	/* 3/9: AGGREGATOR with AS 0 (RFC 7607), attribute discard. */
	UPD_ERR_DATA(9, true, 20, 11, A_V4_ALL, 0xc0, 7, 8, 0, 0, 0, 0, 10, 0, 0, 1);
	/* AGGREGATOR is 6 bytes on a 2-octet session (RFC 6793 §4), 8 with as4. */
	n = mk_update(
	    NULL, 0,
	    (uint8_t[]){A_ORIGIN, A_ASPATH2, A_NEXTHOP, 0xc0, 7, 6, 0xfd, 0xe9, 10, 0, 0, 1}, 27,
	    one_nlri, 5);
	assert_int_equal(decode_update_msg(buf, n, false, &in), 0);
	n = mk_update(
	    NULL, 0,
	    (uint8_t[]){A_ORIGIN, A_ASPATH2, A_NEXTHOP, 0xc0, 7, 8, 0, 0, 0xfd, 0xe9, 10, 0, 0, 1},
	    29, one_nlri, 5);
	assert_err(decode_update_msg(buf, n, false, &in), 3, 5);
	assert_data(buf + BGP_HDR_LEN + 4 + 18, 11);
	/* MP attributes of families we do not speak are ignored. */
	n = mk_update(NULL, 0,
		      (uint8_t[]){0x80, 14, 7, 0, 25, 70, 1, 0xaa, 0, 0x80, A_ORIGIN, A_ASPATH4},
		      23, NULL, 0);
	assert_int_equal(decode_update_msg(buf, n, true, &in), 0);
	assert_int_equal(in.n_announce, 0);

	/* 3/10: a bad prefix in NLRI or Withdrawn Routes; session reset. */
	n = mk_update(NULL, 0, all, sizeof(all), (uint8_t[]){33, 1, 2, 3, 4, 5}, 6);
	assert_err(decode_update_msg(buf, n, true, &in), 3, 10);
	assert_false(err.treat_as_withdraw);
	n = mk_update(NULL, 0, all, sizeof(all), (uint8_t[]){NLRI_ONE, 24, 10, 0}, 8);
	assert_err(decode_update_msg(buf, n, true, &in), 3, 10);
	n = mk_update((uint8_t[]){40, 1, 2, 3, 4, 5}, 6, NULL, 0, NULL, 0);
	assert_err(decode_update_msg(buf, n, true, &in), 3, 10);
	/* ... even when an attribute error came first (RFC 7606 §3: the worse wins). */
	n = mk_update(NULL, 0, (uint8_t[]){0x40, 1, 1, 7, A_ASPATH4, A_NEXTHOP}, 20,
		      (uint8_t[]){33, 1, 2, 3, 4, 5}, 6);
	assert_err(decode_update_msg(buf, n, true, &in), 3, 10);

	/* 3/11: malformed AS_PATH: segment type, empty segment, overrun, AS 0. */
	UPD_ERR(11, true, A_ORIGIN, 0x40, 2, 6, 5, 1, 0, 0, 0xfd, 0xe9, A_NEXTHOP);
	UPD_ERR(11, true, A_ORIGIN, 0x40, 2, 2, 2, 0, A_NEXTHOP);
	UPD_ERR(11, true, A_ORIGIN, 0x40, 2, 6, 2, 2, 0, 0, 0xfd, 0xe9, A_NEXTHOP);
	UPD_ERR(11, true, A_ORIGIN, 0x40, 2, 6, 2, 1, 0, 0, 0, 0, A_NEXTHOP);
	UPD_ERR(11, true, A_ORIGIN, 0x40, 2, 1, 2, A_NEXTHOP);
	assert_int_equal(err.data_len, 0);
	/* AS_SET, confederation segments and an empty path are fine. */
	n = mk_update(NULL, 0, (uint8_t[]){A_ORIGIN, 0x40, 2, 18, 3, 1, 0, 0, 0, 1, 1,	      1,
					   0,	     0,	   0, 2,  2, 1, 0, 0, 0, 3, A_NEXTHOP},
		      4 + 21 + 7, one_nlri, 5);
	assert_int_equal(decode_update_msg(buf, n, true, &in), 0);

	/* AS4_PATH from an old speaker is not ours to judge (RFC 6793 §6). */
	n = mk_update(NULL, 0, (uint8_t[]){A_ORIGIN, A_ASPATH2, A_NEXTHOP, 0xc0, 17, 1, 9}, 22,
		      one_nlri, 5);
	assert_int_equal(decode_update_msg(buf, n, false, &in), 0);
	/* NEXT_HOP without classic NLRI is ignored (RFC 4760 §3), even bad. */
	n = mk_update(NULL, 0, (uint8_t[]){A_ORIGIN, A_ASPATH4, 0x40, 3, 1, 0}, 17, NULL, 0);
	assert_int_equal(decode_update_msg(buf, n, true, &in), 0);

	/* RFC 7606 §5.2: treat-as-withdraw without reachable NLRI resets. */
	n = mk_update(NULL, 0, (uint8_t[]){0x40, 1, 1, 9}, 4, NULL, 0);
	assert_err(decode_update_msg(buf, n, true, &in), 3, 6);
	assert_false(err.treat_as_withdraw);
	/* ... while attribute discard does not care. */
	n = mk_update(NULL, 0, (uint8_t[]){A_ORIGIN, 0x40, 6, 1, 0}, 8, NULL, 0);
	assert_err(decode_update_msg(buf, n, true, &in), 3, 5);
	assert_true(err.treat_as_withdraw);

	/* Shorter than its two length fields. */
	assert_err(bgp_decode_update(buf + BGP_HDR_LEN, 3, true, &in, &err), 1, 2);
}

/* ---- End-of-RIB ---- */

static void test_eor(void **st)
{
	static const uint8_t eor4[] = {FF16, 0, 23, 2, 0, 0, 0, 0};
	static const uint8_t eor6[] = {FF16, 0, 29, 2, 0, 0, 0, 6, 0x80, 15, 3, 0, 2, 1};
	struct bgp_update_in in;
	size_t n;

	(void)st;
	assert_int_equal(bgp_encode_eor(4, buf, sizeof(buf)), sizeof(eor4));
	assert_memory_equal(buf, eor4, sizeof(eor4));
	assert_int_equal(decode_update_msg(eor4, sizeof(eor4), true, &in), 0);
	assert_true(in.eor);
	assert_int_equal(in.eor_family, 4);
	assert_int_equal(in.n_announce + in.n_withdraw, 0);

	assert_int_equal(bgp_encode_eor(6, buf, sizeof(buf)), sizeof(eor6));
	assert_memory_equal(buf, eor6, sizeof(eor6));
	assert_int_equal(decode_update_msg(eor6, sizeof(eor6), false, &in), 0);
	assert_true(in.eor);
	assert_int_equal(in.eor_family, 6);

	assert_int_equal(bgp_encode_eor(5, buf, sizeof(buf)), -EINVAL);
	assert_int_equal(bgp_encode_eor(6, buf, sizeof(eor6) - 1), -ENOSPC);

	/* IPv4 EoR in MP form, and one of a family we do not speak. */
	n = mk_update(NULL, 0, (uint8_t[]){0x80, 15, 3, 0, 1, 1}, 6, NULL, 0);
	assert_int_equal(decode_update_msg(buf, n, true, &in), 0);
	assert_true(in.eor);
	assert_int_equal(in.eor_family, 4);
	n = mk_update(NULL, 0, (uint8_t[]){0x80, 15, 3, 0, 25, 70}, 6, NULL, 0);
	assert_int_equal(decode_update_msg(buf, n, true, &in), 0);
	assert_true(in.eor);
	assert_int_equal(in.eor_family, 0);

	/* Not EoR: an MP_UNREACH with a prefix, or beside another attribute. */
	n = mk_update(NULL, 0, (uint8_t[]){0x80, 15, 4, 0, 2, 1, 0}, 7, NULL, 0);
	assert_int_equal(decode_update_msg(buf, n, true, &in), 0);
	assert_false(in.eor);
	assert_int_equal(in.n_withdraw, 1);
	n = mk_update(NULL, 0, (uint8_t[]){0x80, 15, 3, 0, 2, 1, A_ORIGIN}, 10, NULL, 0);
	assert_int_equal(decode_update_msg(buf, n, true, &in), 0);
	assert_false(in.eor);
}

/* ---- KEEPALIVE, NOTIFICATION, ROUTE-REFRESH ---- */

static void test_keepalive(void **st)
{
	static const uint8_t ka[] = {FF16, 0, 19, 4};
	static const uint8_t len20[] = {0, 20};

	(void)st;
	assert_int_equal(bgp_encode_keepalive(buf, sizeof(buf)), 19);
	assert_memory_equal(buf, ka, sizeof(ka));
	check_header(buf, 19, BGP_KEEPALIVE);
	assert_int_equal(bgp_decode_keepalive(buf + 19, 0, &err), 0);
	assert_err(bgp_decode_keepalive(buf + 19, 1, &err), 1, 2);
	assert_data(len20, 2);
	assert_int_equal(bgp_encode_keepalive(buf, 18), -ENOSPC);
}

static void test_notification(void **st)
{
	/* RFC 8203/9003 Administrative Shutdown with a message. */
	struct bgp_err e = {
	    .code = 6, .subcode = 2, .data_len = 5, .data = {4, 'b', 'y', 'e', '!'}};
	static const uint8_t bytes[] = {FF16, 0, 26, 3, 6, 2, 4, 'b', 'y', 'e', '!'};
	struct bgp_err big = {.code = 3, .subcode = 5, .data_len = BGP_ERR_DATA_MAX};
	struct bgp_err got;
	int n;

	(void)st;
	n = bgp_encode_notification(&e, buf, sizeof(buf));
	assert_int_equal(n, sizeof(bytes));
	assert_memory_equal(buf, bytes, sizeof(bytes));
	check_header(buf, n, BGP_NOTIFICATION);
	assert_int_equal(bgp_decode_notification(buf + 19, n - 19, &got), 0);
	assert_int_equal(got.code, 6);
	assert_int_equal(got.subcode, 2);
	assert_int_equal(got.data_len, 5);
	assert_memory_equal(got.data, e.data, 5);

	/* The largest NOTIFICATION is exactly 4096 bytes. */
	n = bgp_encode_notification(&big, buf, sizeof(buf));
	assert_int_equal(n, BGP_MAX_LEN);
	check_header(buf, n, BGP_NOTIFICATION);
	assert_int_equal(bgp_decode_notification(buf + 19, n - 19, &got), 0);
	assert_int_equal(got.data_len, BGP_ERR_DATA_MAX);
	big.data_len++;
	assert_int_equal(bgp_encode_notification(&big, buf, sizeof(buf)), -EINVAL);
	assert_int_equal(bgp_encode_notification(&e, buf, 25), -ENOSPC);

	assert_int_equal(bgp_decode_notification(buf + 19, 1, &got), -EINVAL);
	assert_int_equal(bgp_decode_notification(buf + 19, 0, &got), -EINVAL);
	assert_int_equal(bgp_decode_notification(buf + 19, 2, &got), 0);
	assert_int_equal(got.data_len, 0);

	assert_string_equal(bgp_err_str(3, 11), "UPDATE Message Error: Malformed AS_PATH");
	assert_string_equal(bgp_err_str(1, 2), "Message Header Error: Bad Message Length");
	assert_string_equal(bgp_err_str(6, 2), "Cease: Administrative Shutdown");
	assert_string_equal(bgp_err_str(4, 0), "Hold Timer Expired");
	assert_string_equal(bgp_err_str(2, 99), "OPEN Message Error");
	assert_string_equal(bgp_err_str(99, 1), "Unknown error code");
	assert_string_equal(bgp_err_str(0, 0), "Unknown error code");
}

static void test_route_refresh(void **st)
{
	static const uint8_t rr6[] = {FF16, 0, 23, 5, 0, 2, 0, 1};
	uint16_t afi = 0;
	uint8_t safi = 0;

	(void)st;
	assert_int_equal(bgp_encode_route_refresh(2, 1, buf, sizeof(buf)), 23);
	assert_memory_equal(buf, rr6, sizeof(rr6));
	check_header(buf, 23, BGP_ROUTE_REFRESH);
	assert_int_equal(bgp_decode_route_refresh(buf + 19, 4, &afi, &safi, &err), 0);
	assert_int_equal(afi, 2);
	assert_int_equal(safi, 1);
	assert_int_equal(bgp_encode_route_refresh(1, 1, buf, 22), -ENOSPC);

	/* RFC 7313 §5: 7/1, the data being the whole message. */
	memcpy(buf, rr6, sizeof(rr6));
	buf[17] = 24;
	buf[23] = 0xee;
	assert_err(bgp_decode_route_refresh(buf + 19, 5, &afi, &safi, &err), 7, 1);
	assert_data(buf, 24);
	assert_err(bgp_decode_route_refresh(buf + 19, 3, &afi, &safi, &err), 7, 1);
	assert_int_equal(err.data_len, 22);
}

/* ---- robustness ---- */

/* Run every decoder on m[0..len) as a message and as a body. */
static int decode_any(const uint8_t *m, size_t len, uint8_t type)
{
	struct bgp_update_in u;
	struct bgp_open o;
	uint16_t afi;
	uint8_t safi;
	int rc = 0;

	switch (type) {
	case BGP_OPEN:
		rc = bgp_decode_open(m, len, &o, &err);
		break;
	case BGP_UPDATE:
		if (bgp_decode_update(m, len, false, &u, &err)) {
			assert_int_not_equal(err.code, 0);
			assert_true(bgp_encode_notification(&err, buf, sizeof(buf)) > 0);
		}
		rc = bgp_decode_update(m, len, true, &u, &err);
		break;
	case BGP_NOTIFICATION:
		rc = bgp_decode_notification(m, len, &err);
		break;
	case BGP_KEEPALIVE:
		rc = bgp_decode_keepalive(m, len, &err);
		break;
	case BGP_ROUTE_REFRESH:
		rc = bgp_decode_route_refresh(m, len, &afi, &safi, &err);
		break;
	}
	if (rc && type != BGP_NOTIFICATION) {
		/* Whatever went wrong can be told to the peer. */
		assert_int_not_equal(err.code, 0);
		assert_true(bgp_encode_notification(&err, buf, sizeof(buf)) > 0);
	}
	return rc;
}

struct sample {
	const char *name;
	uint8_t m[128];
	size_t len;
};

static size_t samples(struct sample *s)
{
	static const struct bgp_err shut = {.code = 6, .subcode = 2};
	struct bgp_update_out u = {
	    .family = 4,
	    .announce = &vip4,
	    .n_announce = 1,
	    .local_as = 65001,
	    .as4 = true,
	    .next_hop = {192, 0, 2, 1},
	    .communities = gshut,
	    .n_communities = 1,
	};
	size_t n = 0;

	memcpy(s[n].m, known_open_bytes, sizeof(known_open_bytes));
	s[n++].len = sizeof(known_open_bytes);
	memcpy(s[n].m, known_update_bytes, sizeof(known_update_bytes));
	s[n++].len = sizeof(known_update_bytes);
	memcpy(s[n].m, known_update6_bytes, sizeof(known_update6_bytes));
	s[n++].len = sizeof(known_update6_bytes);
	u.ibgp = true;
	s[n].len = bgp_encode_update(&u, s[n].m, sizeof(s[n].m));
	n++;
	s[n].len = bgp_encode_eor(4, s[n].m, sizeof(s[n].m));
	n++;
	s[n].len = bgp_encode_eor(6, s[n].m, sizeof(s[n].m));
	n++;
	s[n].len = bgp_encode_keepalive(s[n].m, sizeof(s[n].m));
	n++;
	s[n].len = bgp_encode_notification(&shut, s[n].m, sizeof(s[n].m));
	n++;
	s[n].len = bgp_encode_route_refresh(1, 1, s[n].m, sizeof(s[n].m));
	n++;
	return n;
}

/*
 * Every truncation of every sample: too short for a header -> -EAGAIN;
 * otherwise the header says more is coming; decoding the shortened body
 * (as if the length field had said so) fails, except where a shorter
 * message is itself valid: fewer NLRI prefixes (then the counts differ),
 * or a NOTIFICATION with less data.
 */
static void test_truncation(void **st)
{
	struct sample s[16];
	size_t ns = samples(s);

	(void)st;
	for (size_t i = 0; i < ns; i++) {
		uint8_t type = s[i].m[18];
		struct bgp_update_in full = {0};

		assert_true(s[i].len >= 19);
		check_header(s[i].m, s[i].len, type);
		assert_int_equal(decode_any(s[i].m + 19, s[i].len - 19, type), 0);
		if (type == BGP_UPDATE)
			assert_int_equal(
			    bgp_decode_update(s[i].m + 19, s[i].len - 19, true, &full, &err), 0);
		for (size_t k = 0; k < s[i].len; k++) {
			uint8_t *t = test_malloc(k ? k : 1); /* ASan sees reads past k */
			uint16_t mlen;
			uint8_t ty;
			int rc;

			memcpy(t, s[i].m, k);
			rc = bgp_decode_header(t, k, &ty, &mlen, &err);
			if (k < 19) {
				assert_int_equal(rc, -EAGAIN);
				test_free(t);
				continue;
			}
			assert_int_equal(rc, 0);
			assert_true(mlen > k);
			rc = decode_any(t + 19, k - 19, type);
			if (type == BGP_NOTIFICATION) {
				assert_int_equal(rc, k - 19 < 2 ? -EINVAL : 0);
			} else if (type == BGP_UPDATE && !rc) {
				struct bgp_update_in part;

				bgp_decode_update(t + 19, k - 19, true, &part, &err);
				assert_true(part.n_announce < full.n_announce ||
					    part.n_withdraw < full.n_withdraw ||
					    part.eor != full.eor);
			} else {
				assert_int_equal(rc, -EINVAL);
			}
			test_free(t);
		}
	}
}

/* Every byte of every sample set to a few values: no crash, sane errors. */
static void test_mutation(void **st)
{
	static const uint8_t vals[] = {0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff};
	struct sample s[16];
	size_t ns = samples(s);

	(void)st;
	for (size_t i = 0; i < ns; i++) {
		for (size_t k = 0; k < s[i].len; k++) {
			for (size_t v = 0; v < sizeof(vals) + 2; v++) {
				uint8_t *t = test_malloc(s[i].len);
				uint16_t mlen;
				uint8_t ty;

				memcpy(t, s[i].m, s[i].len);
				t[k] = v < sizeof(vals) ? vals[v] : t[k] ^ (1u << (v & 7));
				if (!bgp_decode_header(t, s[i].len, &ty, &mlen, &err) &&
				    mlen <= s[i].len)
					decode_any(t + 19, mlen - 19, ty);
				/* and as a body of every type, whatever the header says */
				for (uint8_t ty2 = 1; ty2 <= 5; ty2++)
					decode_any(t + 19, s[i].len - 19, ty2);
				test_free(t);
			}
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_header),
	    cmocka_unit_test(test_open_known_bytes),
	    cmocka_unit_test(test_open_roundtrip),
	    cmocka_unit_test(test_open_errors),
	    cmocka_unit_test(test_open_peer_variants),
	    cmocka_unit_test(test_update_known_bytes),
	    cmocka_unit_test(test_update_variants),
	    cmocka_unit_test(test_update_encode_limits),
	    cmocka_unit_test(test_update_errors),
	    cmocka_unit_test(test_eor),
	    cmocka_unit_test(test_keepalive),
	    cmocka_unit_test(test_notification),
	    cmocka_unit_test(test_route_refresh),
	    cmocka_unit_test(test_truncation),
	    cmocka_unit_test(test_mutation),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
