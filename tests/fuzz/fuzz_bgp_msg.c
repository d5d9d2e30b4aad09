// SPDX-License-Identifier: GPL-2.0-only
/*
 * libFuzzer target for ctl/bgp/msg.c. The input is what a peer could write
 * on the TCP session: messages back to back. Each complete message goes
 * through the header decoder and the body decoder of its type (UPDATE with
 * and without 4-octet AS), as the session will do. Then the bytes after a
 * header are also decoded as a body whatever the length field says, so
 * mutations that grow or shrink a message still reach the body decoders.
 *
 * Besides the sanitizers, it checks invariants that the unit tests only
 * sample: every error can be sent back as a NOTIFICATION, a decoded OPEN
 * re-encodes to one that decodes the same, a NOTIFICATION and a
 * ROUTE-REFRESH re-encode to the bytes received, and an UPDATE built by the
 * encoder from the input's bytes decodes to what was put in. A broken
 * invariant traps.
 *
 * Build and run with tests/fuzz/run_fuzz.sh.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "msg.h"

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond))                                                                       \
			__builtin_trap();                                                          \
	} while (0)

static uint8_t out[BGP_MAX_LEN];

/* A decoder's error: -EINVAL, a defined code, and it fits a NOTIFICATION. */
static void check_err(int rc, const struct bgp_err *e)
{
	if (!rc)
		return;
	CHECK(rc == -EINVAL);
	CHECK(e->code >= BGP_ERR_HEADER && e->code <= BGP_ERR_ROUTE_REFRESH);
	CHECK(e->data_len <= BGP_ERR_DATA_MAX);
	CHECK(bgp_encode_notification(e, out, sizeof(out)) == BGP_HDR_LEN + 2 + e->data_len);
	CHECK(bgp_err_str(e->code, e->subcode) != NULL);
	CHECK(!e->treat_as_withdraw || e->code == BGP_ERR_UPDATE);
}

static void open_body(const uint8_t *b, size_t len)
{
	struct bgp_open o, o2;
	struct bgp_err e;
	int rc, n;

	rc = bgp_decode_open(b, len, &o, &e);
	check_err(rc, &e);
	if (rc)
		return;
	/* What we accept we could have sent: encode, decode, compare. */
	n = bgp_encode_open(&o, out, sizeof(out));
	CHECK(n >= 29);
	CHECK(bgp_decode_open(out + BGP_HDR_LEN, (size_t)n - BGP_HDR_LEN, &o2, &e) == 0);
	CHECK(memcmp(&o, &o2, sizeof(o)) == 0); /* both memset by the decoder */
}

static void update_body(const uint8_t *b, size_t len)
{
	for (int as4 = 0; as4 < 2; as4++) {
		struct bgp_update_in u;
		struct bgp_err e;
		int rc;

		rc = bgp_decode_update(b, len, as4, &u, &e);
		check_err(rc, &e);
		if (rc)
			continue;
		/* Every prefix takes at least one byte. */
		CHECK(u.n_announce + u.n_withdraw <= len);
		CHECK(!u.eor || !(u.n_announce + u.n_withdraw));
		CHECK(u.eor_family == 0 || u.eor_family == 4 || u.eor_family == 6);
	}
}

/* msg is the whole message when known (its header matches), else NULL. */
static void body(uint8_t type, const uint8_t *msg, const uint8_t *b, size_t len)
{
	struct bgp_err e;
	uint16_t afi;
	uint8_t safi;
	int rc;

	switch (type) {
	case BGP_OPEN:
		open_body(b, len);
		break;
	case BGP_UPDATE:
		update_body(b, len);
		break;
	case BGP_NOTIFICATION:
		rc = bgp_decode_notification(b, len, &e);
		if (rc) {
			CHECK(len < 2);
			break;
		}
		if (msg)
			CHECK(bgp_encode_notification(&e, out, sizeof(out)) ==
				  (int)(BGP_HDR_LEN + len) &&
			      !memcmp(out, msg, BGP_HDR_LEN + len));
		break;
	case BGP_KEEPALIVE:
		rc = bgp_decode_keepalive(b, len, &e);
		check_err(rc, &e);
		CHECK(!rc == !len);
		break;
	case BGP_ROUTE_REFRESH:
		rc = bgp_decode_route_refresh(b, len, &afi, &safi, &e);
		check_err(rc, &e);
		CHECK(!rc == (len == 4));
		if (!rc && msg && !b[2])
			CHECK(bgp_encode_route_refresh(afi, safi, out, sizeof(out)) == 23 &&
			      !memcmp(out, msg, 23));
		break;
	}
}

/*
 * The encoders, driven by the input: whatever UPDATE bgp_encode_update()
 * agrees to build must decode, on a session of the same kind, to the
 * counts it was given. Layout: flags (bit 0 IPv6, 1 as4, 2 iBGP), local AS
 * (4), number of communities (1), next hop tail (2), communities (4 each),
 * then prefixes as <withdraw flag, length, bytes>.
 */
static void encode_roundtrip(const uint8_t *d, size_t n)
{
	struct bgp_prefix ann[64], wd[64];
	struct bgp_update_out u = {0};
	struct bgp_update_in in;
	unsigned int max_bits;
	uint32_t comm[16];
	struct bgp_err e;
	size_t i = 8;
	int len;

	for (uint8_t f = 4; f <= 6; f += 2) {
		len = bgp_encode_eor(f, out, sizeof(out));
		CHECK(len > 0);
		CHECK(!bgp_decode_update(out + BGP_HDR_LEN, len - BGP_HDR_LEN, false, &in, &e));
		CHECK(in.eor && in.eor_family == f);
	}
	if (n < i)
		return;
	u.family = d[0] & 1 ? 6 : 4;
	u.as4 = d[0] & 2;
	u.ibgp = d[0] & 4;
	u.local_as = (uint32_t)d[1] << 24 | (uint32_t)d[2] << 16 | d[3] << 8 | d[4];
	max_bits = u.family == 4 ? 32 : 128;
	if (u.family == 4) {
		/* 10/8: a next hop the decoder accepts (no 0/8, 127/8, 224/3). */
		u.next_hop[0] = 10;
		u.next_hop[1] = d[6];
		u.next_hop[2] = d[7];
	} else {
		u.next_hop[0] = 0x20;
		u.next_hop[14] = d[6];
		u.next_hop[15] = d[7];
	}
	for (size_t k = 0; k < d[5] % 17u && n - i >= 4; k++, i += 4)
		comm[u.n_communities++] =
		    (uint32_t)d[i] << 24 | (uint32_t)d[i + 1] << 16 | d[i + 2] << 8 | d[i + 3];
	u.communities = comm;
	while (n - i >= 2 && u.n_announce < 64 && u.n_withdraw < 64) {
		struct bgp_prefix *p = d[i] & 1 ? &wd[u.n_withdraw++] : &ann[u.n_announce++];
		size_t bytes;

		*p = (struct bgp_prefix){.family = u.family, .len = d[i + 1] % (max_bits + 1)};
		i += 2;
		bytes = (p->len + 7u) / 8;
		if (bytes > n - i)
			bytes = n - i;
		memcpy(p->addr, d + i, bytes);
		i += bytes;
	}
	u.announce = ann;
	u.withdraw = wd;

	len = bgp_encode_update(&u, out, sizeof(out));
	if (len == -ENOSPC)
		return;
	if (!u.n_announce && !u.n_withdraw) {
		CHECK(len == -EINVAL);
		return;
	}
	if (u.n_announce && !u.ibgp && !u.local_as) {
		CHECK(len == -EINVAL);
		return;
	}
	CHECK(len > 0 && len <= BGP_MAX_LEN);
	CHECK(!bgp_decode_update(out + BGP_HDR_LEN, len - BGP_HDR_LEN, u.as4, &in, &e));
	CHECK(in.n_announce == u.n_announce && in.n_withdraw == u.n_withdraw && !in.eor);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	encode_roundtrip(data, size);

	/* The bytes after the first header as a body of its type, any length. */
	if (size >= BGP_HDR_LEN && size <= BGP_MAX_LEN)
		body(data[18] % 5 + 1, NULL, data + BGP_HDR_LEN, size - BGP_HDR_LEN);

	/* The byte stream, message by message, as the session reads it. */
	while (size) {
		struct bgp_err e;
		uint16_t mlen;
		uint8_t type;
		int rc;

		rc = bgp_decode_header(data, size, &type, &mlen, &e);
		if (rc == -EAGAIN) {
			CHECK(size < BGP_HDR_LEN);
			break;
		}
		check_err(rc, &e);
		if (rc)
			break;
		CHECK(type >= BGP_OPEN && type <= BGP_ROUTE_REFRESH);
		CHECK(mlen >= BGP_HDR_LEN && mlen <= BGP_MAX_LEN);
		if (mlen > size)
			break; /* incomplete: the session would wait for more */
		body(type, data, data + BGP_HDR_LEN, mlen - BGP_HDR_LEN);
		data += mlen;
		size -= mlen;
	}
	return 0;
}
