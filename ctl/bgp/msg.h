/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * msg.h - BGP-4 message codec for lbd's announce-only speaker.
 *
 * Encoders build whole messages (19-byte header included) into a caller's
 * buffer; decoders take one message body (what follows the header) and
 * validate it completely, filling a struct bgp_err with the NOTIFICATION
 * the RFCs name when it is malformed. Nothing here allocates, keeps state
 * or reads outside [buf, buf + len): every decoder is safe on any input.
 *
 * Received routes are not stored (the speaker ignores them), so the UPDATE
 * decoder only counts prefixes; it still checks everything RFC 4271 §6.3
 * asks, so that a broken peer is told what is wrong with its message.
 *
 * Covers RFC 4271 (BGP-4), 4760 (multiprotocol: IPv4/IPv6 unicast),
 * 6793 (4-octet AS), 5492 (capabilities), 2918 (route refresh),
 * 4724 (graceful restart, End-of-RIB), 1997 (communities), 8326
 * (GRACEFUL_SHUTDOWN), 7606 (revised UPDATE error handling), 7607 (AS 0)
 * and, on receipt only, 9072 (extended optional parameters length).
 * Not covered: ADD-PATH, extended messages (so 4096 is the limit both
 * ways), extended next hop, enhanced route refresh, ORF.
 */
#ifndef PORTICO_BGP_MSG_H
#define PORTICO_BGP_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BGP_HDR_LEN 19	 /* RFC 4271 §4.1: marker 16, length 2, type 1 */
#define BGP_MAX_LEN 4096 /* RFC 4271 §4.1, without RFC 8654 extended messages */
/* The most a NOTIFICATION can carry after code and subcode (RFC 4271 §4.5). */
#define BGP_ERR_DATA_MAX (BGP_MAX_LEN - BGP_HDR_LEN - 2)

#define BGP_AS_TRANS 23456 /* RFC 6793 §9 */

/* RFC 1997 community as a host-order uint32: high 16 bits AS, low 16 value. */
#define BGP_COMMUNITY(as, val)		((uint32_t)(as) << 16 | (uint16_t)(val))
#define BGP_COMMUNITY_GRACEFUL_SHUTDOWN 0xffff0000u /* 65535:0, RFC 8326 §5 */
#define BGP_COMMUNITY_NO_EXPORT		0xffffff01u /* RFC 1997 */
#define BGP_COMMUNITY_NO_ADVERTISE	0xffffff02u /* RFC 1997 */

/* RFC 4760 §3 / IANA: the only families this codec speaks, with SAFI 1. */
#define BGP_AFI_IPV4	 1
#define BGP_AFI_IPV6	 2
#define BGP_SAFI_UNICAST 1

enum bgp_type {
	BGP_OPEN = 1,
	BGP_UPDATE,
	BGP_NOTIFICATION,
	BGP_KEEPALIVE,
	BGP_ROUTE_REFRESH, /* RFC 2918 §3 */
};

/* NOTIFICATION error codes (RFC 4271 §4.5, RFC 7313 §5). */
enum bgp_err_code {
	BGP_ERR_HEADER = 1,
	BGP_ERR_OPEN = 2,
	BGP_ERR_UPDATE = 3,
	BGP_ERR_HOLD_TIMER = 4,
	BGP_ERR_FSM = 5,
	BGP_ERR_CEASE = 6,
	BGP_ERR_ROUTE_REFRESH = 7,
};

/*
 * A NOTIFICATION's content: what a decoder fills on failure (the error to
 * send the peer) and what bgp_decode_notification() fills from the peer's.
 *
 * data holds up to BGP_ERR_DATA_MAX bytes because RFC 4271 §6.3 puts the
 * whole erroneous attribute (up to ~4 KB) in Data for 3/2, 3/4, 3/5, 3/6,
 * 3/8 and 3/9, and a received NOTIFICATION may carry that much; the struct
 * is ~4 KB, so keep it on the stack or in the session, not in arrays.
 *
 * treat_as_withdraw is set only by bgp_decode_update(): the UPDATE was
 * malformed in a way RFC 7606 handles without closing the session
 * ("treat-as-withdraw" or "attribute discard"). code/subcode/data still say
 * what RFC 4271 §6.3 would send, so a caller may choose either behaviour;
 * an announce-only speaker ignores received routes anyway, so following
 * RFC 7606 means logging the error and carrying on.
 */
struct bgp_err {
	uint8_t code, subcode;
	uint16_t data_len;
	bool treat_as_withdraw;
	uint8_t data[BGP_ERR_DATA_MAX];
};

/*
 * Encode a NOTIFICATION carrying e (code, subcode, data_len bytes of data)
 * into buf. Returns its length, -EINVAL if e->data_len > BGP_ERR_DATA_MAX,
 * -ENOSPC if cap is too small.
 */
int bgp_encode_notification(const struct bgp_err *e, uint8_t *buf, size_t cap);

/*
 * Human-readable name of a NOTIFICATION code/subcode for logs, e.g.
 * "UPDATE Message Error: Malformed AS_PATH". Never NULL; a static string.
 */
const char *bgp_err_str(uint8_t code, uint8_t subcode);

/*
 * Check the header at buf (len bytes available, possibly more than one
 * message or less than one). Returns 0 with *type and *msg_len (the whole
 * message, header included; the message is complete once len >= *msg_len)
 * when the header is valid; -EAGAIN if len < BGP_HDR_LEN; -EINVAL with *e
 * set per RFC 4271 §6.1: marker not all ones -> 1/1; length outside
 * 19..4096 or below the type's minimum (OPEN 29, UPDATE 23, KEEPALIVE 19
 * exactly, NOTIFICATION 21, ROUTE-REFRESH 23) -> 1/2 with the length field
 * as data; unknown type -> 1/3 with the type as data.
 */
int bgp_decode_header(const uint8_t *buf, size_t len, uint8_t *type, uint16_t *msg_len,
		      struct bgp_err *e);

/*
 * OPEN (RFC 4271 §4.2) with the capabilities lbd uses (RFC 5492).
 *
 * as is the speaker's real AS: encoding puts AS_TRANS in My AS when it is
 * above 65535 (RFC 6793 §4.1); decoding returns the capability 65 value
 * when present, else My AS. as4, mp_v4, mp_v6, route_refresh and gr say
 * which capabilities are (to be) present: 65 (RFC 6793), 1 with AFI 1/2
 * SAFI 1 (RFC 4760 §8; a peer sending no MP capability at all speaks IPv4
 * unicast only), 2 (RFC 2918) and 64 (RFC 4724 §3). For graceful restart:
 * gr_time is the 12-bit Restart Time in seconds, gr_restarting the R flag,
 * gr_v4/gr_v6 whether IPv4/IPv6 unicast is listed, gr_fwd_v4/gr_fwd_v6
 * its F (forwarding state preserved) bit.
 */
struct bgp_open {
	uint32_t as;
	uint16_t hold_time;
	uint32_t bgp_id; /* host order: 10.0.0.1 is 0x0a000001 */
	bool as4, mp_v4, mp_v6, route_refresh, gr;
	uint16_t gr_time;
	bool gr_restarting;
	bool gr_fwd_v4, gr_fwd_v6, gr_v4, gr_v6;
};

/*
 * Encode an OPEN from o into buf: one Capabilities optional parameter with
 * MP (IPv4, IPv6 unicast as asked), route refresh, 4-octet AS and graceful
 * restart. Returns its length, -ENOSPC if cap is too small, -EINVAL if o
 * could not be valid on the wire (as 0, as > 65535 without as4, hold time
 * 1 or 2, BGP Identifier 0, gr_time > 4095).
 */
int bgp_encode_open(const struct bgp_open *o, uint8_t *buf, size_t cap);

/*
 * Decode an OPEN body (len bytes after the header) into *o. Returns 0, or
 * -EINVAL with *e per RFC 4271 §6.2: version != 4 -> 2/1 with data 00 04;
 * My AS 0 or capability 65 AS 0 -> 2/2 (RFC 7607 §2); hold time 1 or 2 ->
 * 2/6; BGP Identifier 0 -> 2/3 (RFC 6286 §2.2); Optional Parameters Length
 * inconsistent with the message length -> 1/2 with the message length as
 * data (the message, not a parameter, is the wrong size); a parameter or
 * capability overrunning its container, or a known capability with a bad
 * length -> 2/0 ("recognized but malformed", §6.2); an optional parameter
 * other than Capabilities -> 2/4. Unknown capabilities are ignored (RFC
 * 5492 §4); for repeated ones the last wins. Accepts the RFC 9072 extended
 * parameter encoding. Does not compare against configuration (peer AS,
 * own BGP Identifier, required capabilities): that is the session's job.
 */
int bgp_decode_open(const uint8_t *body, size_t len, struct bgp_open *o, struct bgp_err *e);

/* A prefix: family 4 or 6, len in bits, addr in network order. */
struct bgp_prefix {
	uint8_t family;
	uint8_t len;
	uint8_t addr[16];
};

/*
 * What one outgoing UPDATE carries; all prefixes of one family. Announced
 * prefixes get ORIGIN IGP, AS_PATH [local_as] (empty when ibgp; 2-octet
 * ASes unless as4, with AS_TRANS and an AS4_PATH when local_as does not fit,
 * RFC 6793 §4.2.2), LOCAL_PREF 100 when ibgp, COMMUNITIES when
 * n_communities, and next_hop (4 bytes for IPv4, 16 for IPv6). IPv4 uses
 * the classic Withdrawn Routes / NEXT_HOP / NLRI fields; IPv6 uses
 * MP_REACH_NLRI and MP_UNREACH_NLRI (RFC 4760 §3, §4), placed first as
 * RFC 7606 §5.1 asks. The pointed-to arrays are only read.
 */
struct bgp_update_out {
	uint8_t family;
	const struct bgp_prefix *announce;
	size_t n_announce;
	const struct bgp_prefix *withdraw;
	size_t n_withdraw;
	uint32_t local_as;
	bool as4;
	bool ibgp;
	uint8_t next_hop[16]; /* IPv4: first 4 bytes */
	const uint32_t *communities;
	size_t n_communities;
};

/*
 * Encode one UPDATE from u into buf. Withdraw-only messages carry no path
 * attributes (except MP_UNREACH_NLRI for IPv6). Returns its length;
 * -ENOSPC if it exceeds cap or BGP_MAX_LEN (split the prefixes and call
 * again: a 4096-byte UPDATE holds ~800 IPv4 /32s or ~230 IPv6 /128s);
 * -EINVAL for a bad family, a prefix of another family or too long, an
 * all-zero next hop or (eBGP) local_as 0 when announcing, or nothing to
 * announce or withdraw (use bgp_encode_eor() for End-of-RIB).
 */
int bgp_encode_update(const struct bgp_update_out *u, uint8_t *buf, size_t cap);

/*
 * Encode the End-of-RIB marker for family 4 or 6 (RFC 4724 §2): an empty
 * UPDATE for IPv4 unicast, an UPDATE holding only an empty MP_UNREACH_NLRI
 * for IPv6 unicast. Returns its length, -ENOSPC, or -EINVAL (family).
 */
int bgp_encode_eor(uint8_t family, uint8_t *buf, size_t cap);

/* Encode a KEEPALIVE (RFC 4271 §4.4). Returns 19 or -ENOSPC. */
int bgp_encode_keepalive(uint8_t *buf, size_t cap);

/* Encode a ROUTE-REFRESH for afi/safi (RFC 2918 §3). Returns 23 or -ENOSPC. */
int bgp_encode_route_refresh(uint16_t afi, uint8_t safi, uint8_t *buf, size_t cap);

/*
 * What a received UPDATE held, counted over both families. eor is set for
 * an End-of-RIB marker (RFC 4724 §2), with eor_family 4 or 6, or 0 for a
 * family this codec does not speak.
 */
struct bgp_update_in {
	bool eor;
	uint8_t eor_family;
	size_t n_announce, n_withdraw;
};

/*
 * Validate an UPDATE body (len bytes after the header) received on a
 * session where 4-octet AS was negotiated (as4) or not, and count its
 * prefixes into *u. Returns 0, or -EINVAL with *e per RFC 4271 §6.3:
 *   3/1  Withdrawn Routes Length or Total Path Attribute Length overrun the
 *        message, an attribute overruns the list, an attribute repeats
 *   3/2  unrecognized well-known attribute (data: the attribute)
 *   3/3  ORIGIN, AS_PATH or (for classic NLRI) NEXT_HOP missing while
 *        routes are announced (data: the missing type code)
 *   3/4  flags conflicting with a known type (data: the attribute)
 *   3/5  a known attribute of the wrong length (data: the attribute)
 *   3/6  ORIGIN not 0..2 (data: the attribute)
 *   3/8  NEXT_HOP in 0/8, 127/8 or 224/3 (data: the attribute)
 *   3/9  MP_REACH_NLRI/MP_UNREACH_NLRI malformed, including their prefixes
 *        (RFC 4760 §7), AGGREGATOR with AS 0 (data: the attribute)
 *   3/10 a Withdrawn Routes or NLRI prefix longer than 32 or truncated
 *   3/11 AS_PATH with a bad segment type, an empty or overrunning
 *        segment, or AS 0 (RFC 7607 §2)
 * and e->treat_as_withdraw set when RFC 7606 lets the session continue.
 * AS4_PATH and AS4_AGGREGATOR are ignored (RFC 6793 §6 discards bad ones)
 * and so is NEXT_HOP in an UPDATE without classic NLRI (RFC 4760 §3).
 * MP attributes of other AFI/SAFIs are ignored (not counted). *u is valid
 * only when 0 is returned.
 */
int bgp_decode_update(const uint8_t *body, size_t len, bool as4, struct bgp_update_in *u,
		      struct bgp_err *e);

/*
 * Decode a received NOTIFICATION body into *e_out (code, subcode, data).
 * Returns 0, or -EINVAL if len < 2 or len > BGP_MAX_LEN - BGP_HDR_LEN
 * (*e_out then zeroed). Never answer a NOTIFICATION with one (§6.4).
 */
int bgp_decode_notification(const uint8_t *body, size_t len, struct bgp_err *e_out);

/* Check a KEEPALIVE body: 0, or -EINVAL with 1/2 unless len is 0 (§6.1). */
int bgp_decode_keepalive(const uint8_t *body, size_t len, struct bgp_err *e);

/*
 * Decode a ROUTE-REFRESH body into *afi, *safi (RFC 2918 §3; the reserved
 * octet, RFC 7313's subtype, is ignored as RFC 2918 asks). Returns 0, or
 * -EINVAL with *e: 7/1 (RFC 7313 §5, data: the whole message as far as it
 * fits) if the body is not 4 bytes, since no ORF (RFC 5291) is negotiated.
 */
int bgp_decode_route_refresh(const uint8_t *body, size_t len, uint16_t *afi, uint8_t *safi,
			     struct bgp_err *e);

#endif
