// SPDX-License-Identifier: GPL-2.0-only
/*
 * msg.c - BGP-4 message codec: see msg.h for what each function accepts.
 *
 * Encoders write through struct wbuf, which stops at its capacity and
 * remembers it overflowed, so a message is built in one pass and rejected
 * at the end instead of checking every field. Decoders never read a byte
 * before checking it lies inside the body they were given.
 */
#include <errno.h>
#include <string.h>

#include "msg.h"

/* RFC 4271 §4.3: Attribute Flags. */
#define ATTR_OPTIONAL	0x80
#define ATTR_TRANSITIVE 0x40
#define ATTR_PARTIAL	0x20
#define ATTR_EXT_LEN	0x10
#define ATTR_WELL_KNOWN ATTR_TRANSITIVE /* well-known: O=0, T=1 */
#define ATTR_OPT_TRANS	(ATTR_OPTIONAL | ATTR_TRANSITIVE)

/* Attribute type codes (RFC 4271 §5, 1997, 4760, 6793). */
enum {
	ATTR_ORIGIN = 1,
	ATTR_AS_PATH = 2,
	ATTR_NEXT_HOP = 3,
	ATTR_MED = 4,
	ATTR_LOCAL_PREF = 5,
	ATTR_ATOMIC_AGGREGATE = 6,
	ATTR_AGGREGATOR = 7,
	ATTR_COMMUNITIES = 8,
	ATTR_MP_REACH = 14,
	ATTR_MP_UNREACH = 15,
	ATTR_AS4_PATH = 17,
	ATTR_AS4_AGGREGATOR = 18,
};

/* AS_PATH segment types: RFC 4271 §4.3, RFC 5065 §3 (confederations). */
#define AS_SET		   1
#define AS_SEQUENCE	   2
#define AS_CONFED_SET	   4
#define ORIGIN_IGP	   0
#define LOCAL_PREF_DEFAULT 100

/* Optional parameter and capability codes (RFC 5492 §4, RFC 9072 §2). */
#define OPT_PARAM_CAPABILITIES 2
#define OPT_PARAM_EXTENDED     255
#define CAP_MP		       1      /* RFC 4760 §8 */
#define CAP_ROUTE_REFRESH      2      /* RFC 2918 §2 */
#define CAP_GRACEFUL_RESTART   64     /* RFC 4724 §3 */
#define CAP_AS4		       65     /* RFC 6793 §3 */
#define GR_FLAG_RESTART	       0x8000 /* R, in the Restart Flags/Time word */
#define GR_TIME_MASK	       0x0fff
#define GR_AF_FORWARDING       0x80 /* F, in the per-AFI/SAFI flags */

/* Minimum message lengths per type (RFC 4271 §4.2-4.5, RFC 2918 §3). */
#define OPEN_MIN_LEN	     29
#define UPDATE_MIN_LEN	     23
#define NOTIFICATION_MIN_LEN 21
#define ROUTE_REFRESH_LEN    23

static inline uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline void put16(uint8_t *p, uint16_t v)
{
	p[0] = v >> 8;
	p[1] = v & 0xff;
}

/* ---- errors ---- */

static void set_err(struct bgp_err *e, uint8_t code, uint8_t subcode, const uint8_t *data,
		    size_t len)
{
	e->code = code;
	e->subcode = subcode;
	e->treat_as_withdraw = false;
	if (len > sizeof(e->data))
		len = sizeof(e->data);
	if (len)
		memcpy(e->data, data, len);
	e->data_len = (uint16_t)len;
}

/* 1/2 or 2/0-style errors whose data is a 2-byte length. */
static void set_err_len(struct bgp_err *e, uint8_t code, uint8_t subcode, size_t msg_len)
{
	uint8_t d[2];

	put16(d, msg_len > 0xffff ? 0xffff : (uint16_t)msg_len);
	set_err(e, code, subcode, d, sizeof(d));
}

struct err_name {
	uint8_t code, subcode;
	const char *str;
};

/* IANA "BGP Error (Notification) Codes" and subcodes. */
static const struct err_name err_names[] = {
    {1, 1, "Message Header Error: Connection Not Synchronized"},
    {1, 2, "Message Header Error: Bad Message Length"},
    {1, 3, "Message Header Error: Bad Message Type"},
    {2, 0, "OPEN Message Error: Unspecific"},
    {2, 1, "OPEN Message Error: Unsupported Version Number"},
    {2, 2, "OPEN Message Error: Bad Peer AS"},
    {2, 3, "OPEN Message Error: Bad BGP Identifier"},
    {2, 4, "OPEN Message Error: Unsupported Optional Parameter"},
    {2, 6, "OPEN Message Error: Unacceptable Hold Time"},
    {2, 7, "OPEN Message Error: Unsupported Capability"},
    {2, 11, "OPEN Message Error: Role Mismatch"},
    {3, 0, "UPDATE Message Error: Unspecific"},
    {3, 1, "UPDATE Message Error: Malformed Attribute List"},
    {3, 2, "UPDATE Message Error: Unrecognized Well-known Attribute"},
    {3, 3, "UPDATE Message Error: Missing Well-known Attribute"},
    {3, 4, "UPDATE Message Error: Attribute Flags Error"},
    {3, 5, "UPDATE Message Error: Attribute Length Error"},
    {3, 6, "UPDATE Message Error: Invalid ORIGIN Attribute"},
    {3, 8, "UPDATE Message Error: Invalid NEXT_HOP Attribute"},
    {3, 9, "UPDATE Message Error: Optional Attribute Error"},
    {3, 10, "UPDATE Message Error: Invalid Network Field"},
    {3, 11, "UPDATE Message Error: Malformed AS_PATH"},
    {5, 0, "Finite State Machine Error: Unspecified Error"},
    {5, 1, "Finite State Machine Error: Unexpected Message in OpenSent State"},
    {5, 2, "Finite State Machine Error: Unexpected Message in OpenConfirm State"},
    {5, 3, "Finite State Machine Error: Unexpected Message in Established State"},
    {6, 1, "Cease: Maximum Number of Prefixes Reached"},
    {6, 2, "Cease: Administrative Shutdown"},
    {6, 3, "Cease: Peer De-configured"},
    {6, 4, "Cease: Administrative Reset"},
    {6, 5, "Cease: Connection Rejected"},
    {6, 6, "Cease: Other Configuration Change"},
    {6, 7, "Cease: Connection Collision Resolution"},
    {6, 8, "Cease: Out of Resources"},
    {6, 9, "Cease: Hard Reset"},
    {6, 10, "Cease: BFD Down"},
    {7, 1, "ROUTE-REFRESH Message Error: Invalid Message Length"},
};

static const char *const code_names[] = {
    [1] = "Message Header Error",	 [2] = "OPEN Message Error",
    [3] = "UPDATE Message Error",	 [4] = "Hold Timer Expired",
    [5] = "Finite State Machine Error",	 [6] = "Cease",
    [7] = "ROUTE-REFRESH Message Error", [8] = "Send Hold Timer Expired",
};

const char *bgp_err_str(uint8_t code, uint8_t subcode)
{
	for (size_t i = 0; i < sizeof(err_names) / sizeof(err_names[0]); i++)
		if (err_names[i].code == code && err_names[i].subcode == subcode)
			return err_names[i].str;
	/* Hold timer (4) and send hold timer (8) have no subcodes. */
	if (code < sizeof(code_names) / sizeof(code_names[0]) && code_names[code])
		return code_names[code];
	return "Unknown error code";
}

/* ---- encoding helpers ---- */

struct wbuf {
	uint8_t *p;
	size_t len, cap;
	bool overflow;
};

static void wbuf_init(struct wbuf *w, uint8_t *buf, size_t cap)
{
	w->p = buf;
	w->len = 0;
	w->cap = cap < BGP_MAX_LEN ? cap : BGP_MAX_LEN;
	w->overflow = false;
}

static void w_bytes(struct wbuf *w, const void *src, size_t n)
{
	if (w->overflow || n > w->cap - w->len) {
		w->overflow = true;
		return;
	}
	memcpy(w->p + w->len, src, n);
	w->len += n;
}

static void w_u8(struct wbuf *w, uint8_t v)
{
	w_bytes(w, &v, 1);
}

static void w_u16(struct wbuf *w, uint16_t v)
{
	uint8_t b[2] = {v >> 8, v & 0xff};

	w_bytes(w, b, 2);
}

static void w_u32(struct wbuf *w, uint32_t v)
{
	uint8_t b[4] = {v >> 24, (v >> 16) & 0xff, (v >> 8) & 0xff, v & 0xff};

	w_bytes(w, b, 4);
}

/* Store v at off, written earlier as a placeholder (so off + 2 <= len). */
static void w_patch16(struct wbuf *w, size_t off, size_t v)
{
	if (!w->overflow)
		put16(w->p + off, (uint16_t)v);
}

/* RFC 4271 §4.1: marker of all ones, length patched by w_finish(). */
static void w_header(struct wbuf *w, enum bgp_type type)
{
	static const uint8_t marker[16] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
					   0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

	w_bytes(w, marker, sizeof(marker));
	w_u16(w, 0);
	w_u8(w, (uint8_t)type);
}

static int w_finish(struct wbuf *w)
{
	if (w->overflow)
		return -ENOSPC;
	put16(w->p + 16, (uint16_t)w->len);
	return (int)w->len;
}

/* RFC 4271 §4.3: attribute header, 2-octet length when it does not fit one. */
static void w_attr_hdr(struct wbuf *w, uint8_t flags, uint8_t type, size_t len)
{
	if (len > 0xff) {
		w_u8(w, flags | ATTR_EXT_LEN);
		w_u8(w, type);
		w_u16(w, len > 0xffff ? 0xffff : (uint16_t)len);
	} else {
		w_u8(w, flags);
		w_u8(w, type);
		w_u8(w, (uint8_t)len);
	}
}

static size_t prefix_bytes(unsigned int bits)
{
	return (bits + 7) / 8;
}

/* RFC 4271 §4.3 <length, prefix>; bits past the length are sent as zero. */
static void w_prefix(struct wbuf *w, const struct bgp_prefix *p)
{
	size_t n = prefix_bytes(p->len);
	uint8_t a[16];

	memcpy(a, p->addr, n);
	if (p->len % 8)
		a[n - 1] &= (uint8_t)(0xff << (8 - p->len % 8));
	w_u8(w, p->len);
	w_bytes(w, a, n);
}

static size_t prefixes_len(const struct bgp_prefix *p, size_t n)
{
	size_t len = 0;

	for (size_t i = 0; i < n; i++)
		len += 1 + prefix_bytes(p[i].len);
	return len;
}

static bool prefixes_ok(const struct bgp_prefix *p, size_t n, uint8_t family)
{
	unsigned int max = family == 4 ? 32 : 128;

	if (n && !p)
		return false;
	for (size_t i = 0; i < n; i++)
		if (p[i].family != family || p[i].len > max)
			return false;
	return true;
}

/* ---- NOTIFICATION, KEEPALIVE, ROUTE-REFRESH ---- */

int bgp_encode_notification(const struct bgp_err *e, uint8_t *buf, size_t cap)
{
	struct wbuf w;

	if (e->data_len > BGP_ERR_DATA_MAX)
		return -EINVAL;
	wbuf_init(&w, buf, cap);
	w_header(&w, BGP_NOTIFICATION); /* RFC 4271 §4.5 */
	w_u8(&w, e->code);
	w_u8(&w, e->subcode);
	w_bytes(&w, e->data, e->data_len);
	return w_finish(&w);
}

int bgp_decode_notification(const uint8_t *body, size_t len, struct bgp_err *e_out)
{
	memset(e_out, 0, sizeof(*e_out));
	if (len < 2 || len > BGP_MAX_LEN - BGP_HDR_LEN)
		return -EINVAL;
	set_err(e_out, body[0], body[1], body + 2, len - 2);
	return 0;
}

int bgp_encode_keepalive(uint8_t *buf, size_t cap)
{
	struct wbuf w;

	wbuf_init(&w, buf, cap);
	w_header(&w, BGP_KEEPALIVE); /* RFC 4271 §4.4: header only */
	return w_finish(&w);
}

int bgp_decode_keepalive(const uint8_t *body, size_t len, struct bgp_err *e)
{
	(void)body;
	if (len) {
		/* RFC 4271 §6.1: a KEEPALIVE is exactly 19 octets. */
		set_err_len(e, BGP_ERR_HEADER, 2, len + BGP_HDR_LEN);
		return -EINVAL;
	}
	return 0;
}

int bgp_encode_route_refresh(uint16_t afi, uint8_t safi, uint8_t *buf, size_t cap)
{
	struct wbuf w;

	wbuf_init(&w, buf, cap);
	w_header(&w, BGP_ROUTE_REFRESH); /* RFC 2918 §3: AFI, Reserved, SAFI */
	w_u16(&w, afi);
	w_u8(&w, 0);
	w_u8(&w, safi);
	return w_finish(&w);
}

int bgp_decode_route_refresh(const uint8_t *body, size_t len, uint16_t *afi, uint8_t *safi,
			     struct bgp_err *e)
{
	if (len != 4) {
		/*
		 * RFC 7313 §5: 7/1 with the complete message as data. Rebuild
		 * the header in front of the body; a message of more than
		 * BGP_ERR_DATA_MAX bytes is cut short (the RFC's data field
		 * cannot hold a maximum-size message plus code and subcode).
		 */
		size_t n;

		if (len > BGP_MAX_LEN - BGP_HDR_LEN)
			len = BGP_MAX_LEN - BGP_HDR_LEN;
		memset(e->data, 0xff, 16);
		put16(e->data + 16, (uint16_t)(len + BGP_HDR_LEN));
		e->data[18] = BGP_ROUTE_REFRESH;
		if (len > BGP_ERR_DATA_MAX - BGP_HDR_LEN)
			n = BGP_ERR_DATA_MAX - BGP_HDR_LEN;
		else
			n = len;
		if (n)
			memcpy(e->data + BGP_HDR_LEN, body, n);
		e->code = BGP_ERR_ROUTE_REFRESH;
		e->subcode = 1;
		e->treat_as_withdraw = false;
		e->data_len = (uint16_t)(BGP_HDR_LEN + n);
		return -EINVAL;
	}
	*afi = get16(body);
	*safi = body[3];
	return 0;
}

/* ---- header ---- */

int bgp_decode_header(const uint8_t *buf, size_t len, uint8_t *type, uint16_t *msg_len,
		      struct bgp_err *e)
{
	uint16_t l;
	uint8_t t;
	bool ok;

	if (len < BGP_HDR_LEN)
		return -EAGAIN;
	for (int i = 0; i < 16; i++) {
		if (buf[i] != 0xff) {
			set_err(e, BGP_ERR_HEADER, 1, NULL, 0); /* RFC 4271 §6.1 */
			return -EINVAL;
		}
	}
	l = get16(buf + 16);
	t = buf[18];
	if (l < BGP_HDR_LEN || l > BGP_MAX_LEN) {
		set_err(e, BGP_ERR_HEADER, 2, buf + 16, 2);
		return -EINVAL;
	}
	switch (t) {
	case BGP_OPEN:
		ok = l >= OPEN_MIN_LEN;
		break;
	case BGP_UPDATE:
		ok = l >= UPDATE_MIN_LEN;
		break;
	case BGP_NOTIFICATION:
		ok = l >= NOTIFICATION_MIN_LEN;
		break;
	case BGP_KEEPALIVE:
		ok = l == BGP_HDR_LEN;
		break;
	case BGP_ROUTE_REFRESH:
		ok = l >= ROUTE_REFRESH_LEN;
		break;
	default:
		set_err(e, BGP_ERR_HEADER, 3, buf + 18, 1);
		return -EINVAL;
	}
	if (!ok) {
		set_err(e, BGP_ERR_HEADER, 2, buf + 16, 2);
		return -EINVAL;
	}
	*type = t;
	*msg_len = l;
	return 0;
}

/* ---- OPEN ---- */

int bgp_encode_open(const struct bgp_open *o, uint8_t *buf, size_t cap)
{
	struct wbuf w;
	size_t param_len_off, caps_off;

	if (!o->as || (o->as > 0xffff && !o->as4) || o->hold_time == 1 || o->hold_time == 2 ||
	    !o->bgp_id || o->gr_time > GR_TIME_MASK)
		return -EINVAL;
	wbuf_init(&w, buf, cap);
	w_header(&w, BGP_OPEN);
	/* RFC 4271 §4.2 */
	w_u8(&w, 4);
	w_u16(&w, o->as > 0xffff ? BGP_AS_TRANS : (uint16_t)o->as); /* RFC 6793 §4.1 */
	w_u16(&w, o->hold_time);
	w_u32(&w, o->bgp_id);
	param_len_off = w.len;
	w_u8(&w, 0);
	/* One Capabilities parameter holding them all (RFC 5492 §4). */
	w_u8(&w, OPT_PARAM_CAPABILITIES);
	w_u8(&w, 0);
	caps_off = w.len;
	if (o->mp_v4) { /* RFC 4760 §8: AFI, Reserved, SAFI */
		w_u8(&w, CAP_MP);
		w_u8(&w, 4);
		w_u16(&w, BGP_AFI_IPV4);
		w_u8(&w, 0);
		w_u8(&w, BGP_SAFI_UNICAST);
	}
	if (o->mp_v6) {
		w_u8(&w, CAP_MP);
		w_u8(&w, 4);
		w_u16(&w, BGP_AFI_IPV6);
		w_u8(&w, 0);
		w_u8(&w, BGP_SAFI_UNICAST);
	}
	if (o->route_refresh) {
		w_u8(&w, CAP_ROUTE_REFRESH);
		w_u8(&w, 0);
	}
	if (o->as4) {
		w_u8(&w, CAP_AS4);
		w_u8(&w, 4);
		w_u32(&w, o->as);
	}
	if (o->gr) { /* RFC 4724 §3: flags+time, then AFI, SAFI, AF flags each */
		w_u8(&w, CAP_GRACEFUL_RESTART);
		w_u8(&w, 2 + 4 * (o->gr_v4 + o->gr_v6));
		w_u16(&w, (o->gr_restarting ? GR_FLAG_RESTART : 0) | o->gr_time);
		if (o->gr_v4) {
			w_u16(&w, BGP_AFI_IPV4);
			w_u8(&w, BGP_SAFI_UNICAST);
			w_u8(&w, o->gr_fwd_v4 ? GR_AF_FORWARDING : 0);
		}
		if (o->gr_v6) {
			w_u16(&w, BGP_AFI_IPV6);
			w_u8(&w, BGP_SAFI_UNICAST);
			w_u8(&w, o->gr_fwd_v6 ? GR_AF_FORWARDING : 0);
		}
	}
	if (w.overflow)
		return -ENOSPC;
	if (w.len == caps_off) {
		w.len = param_len_off + 1; /* no capabilities: no parameter */
	} else {
		/* At most 6+6+2+6+10 = 30 bytes: always a one-octet length. */
		w.p[caps_off - 1] = (uint8_t)(w.len - caps_off);
		w.p[param_len_off] = (uint8_t)(w.len - param_len_off - 1);
	}
	return w_finish(&w);
}

/* RFC 5492 §4: a Capabilities parameter's <code, length, value> triples. */
static int parse_caps(const uint8_t *p, size_t len, struct bgp_open *o, uint32_t *as4_val,
		      struct bgp_err *e)
{
	size_t off = 0;

	while (off < len) {
		uint8_t code, cl;
		const uint8_t *v;

		if (len - off < 2 || len - off - 2 < p[off + 1])
			goto malformed;
		code = p[off];
		cl = p[off + 1];
		v = p + off + 2;
		off += 2 + (size_t)cl;
		switch (code) {
		case CAP_MP: {
			uint16_t afi;

			if (cl != 4)
				goto malformed;
			afi = get16(v);
			if (v[3] == BGP_SAFI_UNICAST && afi == BGP_AFI_IPV4)
				o->mp_v4 = true;
			else if (v[3] == BGP_SAFI_UNICAST && afi == BGP_AFI_IPV6)
				o->mp_v6 = true;
			break;
		}
		case CAP_ROUTE_REFRESH:
			if (cl != 0)
				goto malformed;
			o->route_refresh = true;
			break;
		case CAP_AS4:
			if (cl != 4)
				goto malformed;
			o->as4 = true;
			*as4_val = get32(v);
			break;
		case CAP_GRACEFUL_RESTART: {
			uint16_t ft;

			if (cl < 2 || (cl - 2) % 4)
				goto malformed;
			/* A repeated capability replaces the earlier one. */
			o->gr = true;
			ft = get16(v);
			o->gr_restarting = ft & GR_FLAG_RESTART;
			o->gr_time = ft & GR_TIME_MASK;
			o->gr_v4 = o->gr_v6 = o->gr_fwd_v4 = o->gr_fwd_v6 = false;
			for (size_t i = 2; i < cl; i += 4) {
				uint16_t afi = get16(v + i);
				bool fwd = v[i + 3] & GR_AF_FORWARDING;

				if (v[i + 2] != BGP_SAFI_UNICAST)
					continue;
				if (afi == BGP_AFI_IPV4) {
					o->gr_v4 = true;
					o->gr_fwd_v4 = fwd;
				} else if (afi == BGP_AFI_IPV6) {
					o->gr_v6 = true;
					o->gr_fwd_v6 = fwd;
				}
			}
			break;
		}
		default:
			break; /* RFC 5492 §4: ignore what we do not know */
		}
	}
	return 0;
malformed:
	/* RFC 4271 §6.2: a recognized parameter that is malformed -> 2/0. */
	set_err(e, BGP_ERR_OPEN, 0, NULL, 0);
	return -EINVAL;
}

int bgp_decode_open(const uint8_t *body, size_t len, struct bgp_open *o, struct bgp_err *e)
{
	static const uint8_t version_data[2] = {0, 4};
	uint32_t as4_val = 0;
	size_t off, end, plen_size;
	uint16_t my_as;

	memset(o, 0, sizeof(*o));
	if (len < OPEN_MIN_LEN - BGP_HDR_LEN)
		goto bad_length;
	/*
	 * RFC 4271 §6.2. Data of 2/1 is the largest version we support below
	 * the peer's bid, or our smallest above it: 4 either way.
	 */
	if (body[0] != 4) {
		set_err(e, BGP_ERR_OPEN, 1, version_data, 2);
		return -EINVAL;
	}
	my_as = get16(body + 1);
	o->hold_time = get16(body + 3);
	o->bgp_id = get32(body + 5);

	/* RFC 9072 §2: Non-Ext OP Len 255 and Non-Ext OP Type 255. */
	if (body[9] == 255 && len > 10 && body[10] == OPT_PARAM_EXTENDED) {
		if (len < 13)
			goto bad_length;
		off = 13;
		end = off + get16(body + 11);
		plen_size = 2;
	} else {
		off = 10;
		end = off + body[9];
		plen_size = 1;
	}
	/* The parameters must fill the message exactly (BIRD agrees: 1/2). */
	if (end != len)
		goto bad_length;

	while (off < end) {
		uint8_t type;
		size_t pl;

		if (end - off < 1 + plen_size)
			goto malformed;
		type = body[off];
		pl = plen_size == 2 ? get16(body + off + 1) : body[off + 1];
		off += 1 + plen_size;
		if (pl > end - off)
			goto malformed;
		if (type != OPT_PARAM_CAPABILITIES) {
			/* Includes deprecated Authentication (1), RFC 5492 §3. */
			set_err(e, BGP_ERR_OPEN, 4, NULL, 0);
			return -EINVAL;
		}
		if (parse_caps(body + off, pl, o, &as4_val, e))
			return -EINVAL;
		off += pl;
	}

	/* RFC 7607 §2: AS 0 in My AS or in the 4-octet AS capability. */
	if (!my_as || (o->as4 && !as4_val)) {
		set_err(e, BGP_ERR_OPEN, 2, NULL, 0);
		return -EINVAL;
	}
	o->as = o->as4 ? as4_val : my_as;
	/* RFC 4271 §4.2: zero, or at least three seconds. */
	if (o->hold_time == 1 || o->hold_time == 2) {
		set_err(e, BGP_ERR_OPEN, 6, NULL, 0);
		return -EINVAL;
	}
	/* RFC 6286 §2.2: any non-zero 32-bit value. */
	if (!o->bgp_id) {
		set_err(e, BGP_ERR_OPEN, 3, NULL, 0);
		return -EINVAL;
	}
	return 0;

bad_length:
	set_err_len(e, BGP_ERR_HEADER, 2, len + BGP_HDR_LEN);
	return -EINVAL;
malformed:
	set_err(e, BGP_ERR_OPEN, 0, NULL, 0);
	return -EINVAL;
}

/* ---- UPDATE out ---- */

/* AS_PATH [as] (RFC 4271 §4.3), width 2 or 4. */
static void w_as_path(struct wbuf *w, uint8_t type, uint32_t as, bool four)
{
	w_attr_hdr(w, type == ATTR_AS_PATH ? ATTR_WELL_KNOWN : ATTR_OPT_TRANS, type,
		   2 + (four ? 4 : 2));
	w_u8(w, AS_SEQUENCE);
	w_u8(w, 1);
	if (four)
		w_u32(w, as);
	else
		w_u16(w, (uint16_t)as);
}

/* Path attributes of an announcement other than NEXT_HOP and MP_*. */
static void w_common_attrs(struct wbuf *w, const struct bgp_update_out *u, bool ipv4)
{
	bool trans = !u->as4 && u->local_as > 0xffff;

	w_attr_hdr(w, ATTR_WELL_KNOWN, ATTR_ORIGIN, 1);
	w_u8(w, ORIGIN_IGP);
	if (u->ibgp) {
		/* RFC 4271 §5.1.2: an empty AS_PATH towards internal peers. */
		w_attr_hdr(w, ATTR_WELL_KNOWN, ATTR_AS_PATH, 0);
	} else {
		/* RFC 6793 §4.2.2: AS_TRANS for a 2-octet peer, real AS in AS4_PATH. */
		w_as_path(w, ATTR_AS_PATH, trans ? BGP_AS_TRANS : u->local_as, u->as4);
	}
	if (ipv4) {
		w_attr_hdr(w, ATTR_WELL_KNOWN, ATTR_NEXT_HOP, 4);
		w_bytes(w, u->next_hop, 4);
	}
	if (u->ibgp) { /* RFC 4271 §5.1.5 */
		w_attr_hdr(w, ATTR_WELL_KNOWN, ATTR_LOCAL_PREF, 4);
		w_u32(w, LOCAL_PREF_DEFAULT);
	}
	if (u->n_communities) { /* RFC 1997 */
		w_attr_hdr(w, ATTR_OPT_TRANS, ATTR_COMMUNITIES, 4 * u->n_communities);
		for (size_t i = 0; i < u->n_communities; i++)
			w_u32(w, u->communities[i]);
	}
	if (trans && !u->ibgp)
		w_as_path(w, ATTR_AS4_PATH, u->local_as, true);
}

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

int bgp_encode_update(const struct bgp_update_out *u, uint8_t *buf, size_t cap)
{
	bool v4 = u->family == 4;
	size_t attr_len_off, wd_len_off;
	struct wbuf w;

	if ((u->family != 4 && u->family != 6) || (!u->n_announce && !u->n_withdraw) ||
	    !prefixes_ok(u->announce, u->n_announce, u->family) ||
	    !prefixes_ok(u->withdraw, u->n_withdraw, u->family) ||
	    (u->n_communities && !u->communities) || (u->n_announce && !u->ibgp && !u->local_as))
		return -EINVAL; /* AS 0 never goes on the wire (RFC 7607 §2) */
	if (u->n_announce && all_zero(u->next_hop, v4 ? 4 : 16))
		return -EINVAL;
	/* Anything this big cannot fit, and the sums below cannot overflow. */
	if (u->n_announce > BGP_MAX_LEN || u->n_withdraw > BGP_MAX_LEN ||
	    u->n_communities > BGP_MAX_LEN)
		return -ENOSPC;

	wbuf_init(&w, buf, cap);
	w_header(&w, BGP_UPDATE);
	/* RFC 4271 §4.3: Withdrawn Routes Length, Withdrawn Routes. */
	wd_len_off = w.len;
	w_u16(&w, 0);
	if (v4) {
		for (size_t i = 0; i < u->n_withdraw; i++)
			w_prefix(&w, &u->withdraw[i]);
		w_patch16(&w, wd_len_off, w.len - wd_len_off - 2);
	}
	attr_len_off = w.len;
	w_u16(&w, 0);
	if (!v4 && u->n_announce) {
		/* RFC 4760 §3; RFC 2545 §3: a 16-byte global next hop. */
		w_attr_hdr(&w, ATTR_OPTIONAL, ATTR_MP_REACH,
			   5 + 16 + prefixes_len(u->announce, u->n_announce));
		w_u16(&w, BGP_AFI_IPV6);
		w_u8(&w, BGP_SAFI_UNICAST);
		w_u8(&w, 16);
		w_bytes(&w, u->next_hop, 16);
		w_u8(&w, 0); /* Reserved */
		for (size_t i = 0; i < u->n_announce; i++)
			w_prefix(&w, &u->announce[i]);
	}
	if (!v4 && u->n_withdraw) { /* RFC 4760 §4 */
		w_attr_hdr(&w, ATTR_OPTIONAL, ATTR_MP_UNREACH,
			   3 + prefixes_len(u->withdraw, u->n_withdraw));
		w_u16(&w, BGP_AFI_IPV6);
		w_u8(&w, BGP_SAFI_UNICAST);
		for (size_t i = 0; i < u->n_withdraw; i++)
			w_prefix(&w, &u->withdraw[i]);
	}
	if (u->n_announce)
		w_common_attrs(&w, u, v4);
	w_patch16(&w, attr_len_off, w.len - attr_len_off - 2);
	if (v4) {
		for (size_t i = 0; i < u->n_announce; i++)
			w_prefix(&w, &u->announce[i]);
	}
	return w_finish(&w);
}

int bgp_encode_eor(uint8_t family, uint8_t *buf, size_t cap)
{
	struct wbuf w;

	if (family != 4 && family != 6)
		return -EINVAL;
	wbuf_init(&w, buf, cap);
	w_header(&w, BGP_UPDATE);
	w_u16(&w, 0); /* no withdrawn routes */
	if (family == 4) {
		w_u16(&w, 0); /* RFC 4724 §2: nothing at all */
	} else {
		w_u16(&w, 6); /* RFC 4724 §2: only an empty MP_UNREACH_NLRI */
		w_attr_hdr(&w, ATTR_OPTIONAL, ATTR_MP_UNREACH, 3);
		w_u16(&w, BGP_AFI_IPV6);
		w_u8(&w, BGP_SAFI_UNICAST);
	}
	return w_finish(&w);
}

/* ---- UPDATE in ---- */

/*
 * Decoding state. RFC 7606 §3 sorts errors into "session reset" (returned
 * at once: set_err() and return) and two softer kinds recorded here while
 * parsing goes on, because a later error may still need a reset: "attribute
 * discard" (the attribute is dropped) and "treat-as-withdraw" (the routes
 * are). The first soft error is what *e reports.
 */
struct upd {
	const uint8_t *nlri;
	size_t nlri_len;
	bool as4;
	bool have_soft, soft_withdraw;
	size_t n_attrs;
	size_t mp_reach_count;
	bool mp_unreach_empty;
	uint16_t mp_unreach_afi;
	uint8_t mp_unreach_safi;
	uint8_t seen[256 / 8];
	struct bgp_update_in *u;
	struct bgp_err *e;
};

enum soft_kind { DISCARD, WITHDRAW };

static void soft_err(struct upd *s, enum soft_kind kind, uint8_t subcode, const uint8_t *data,
		     size_t len)
{
	if (kind == WITHDRAW)
		s->soft_withdraw = true;
	if (s->have_soft)
		return;
	s->have_soft = true;
	set_err(s->e, BGP_ERR_UPDATE, subcode, data, len);
}

/*
 * Count RFC 4271 §4.3 <length, prefix> pairs filling p[0..len). Returns 0,
 * or -1 if a length exceeds max_bits or a prefix runs past the end.
 */
static int count_prefixes(const uint8_t *p, size_t len, unsigned int max_bits, size_t *count)
{
	size_t off = 0;

	while (off < len) {
		unsigned int bits = p[off++];

		if (bits > max_bits || prefix_bytes(bits) > len - off)
			return -1;
		off += prefix_bytes(bits);
		(*count)++;
	}
	return 0;
}

/* The prefix width of a family this codec speaks, or 0. */
static unsigned int family_bits(uint16_t afi, uint8_t safi)
{
	if (safi != BGP_SAFI_UNICAST)
		return 0;
	if (afi == BGP_AFI_IPV4)
		return 32;
	if (afi == BGP_AFI_IPV6)
		return 128;
	return 0;
}

/* RFC 4271 §4.3 path segments; RFC 7606 §7.2 and RFC 7607 §2 tighten it. */
static bool as_path_ok(const uint8_t *p, size_t len, size_t as_size)
{
	size_t off = 0;

	while (off < len) {
		uint8_t type, n;

		if (len - off < 2)
			return false;
		type = p[off];
		n = p[off + 1];
		off += 2;
		if (type < AS_SET || type > AS_CONFED_SET || !n || (size_t)n * as_size > len - off)
			return false;
		for (size_t i = 0; i < n; i++, off += as_size)
			if (as_size == 4 ? !get32(p + off) : !get16(p + off))
				return false;
	}
	return true;
}

/*
 * RFC 4760 §3, §4 and §7: a malformed MP attribute is 3/9, and RFC 7606
 * §5.3/§7.11 make it a session reset (its NLRI cannot be trusted).
 */
static int parse_mp(struct upd *s, uint8_t type, const uint8_t *attr, size_t attr_size,
		    const uint8_t *v, size_t len)
{
	unsigned int bits;
	size_t count = 0, nlri_off;
	uint16_t afi;
	uint8_t safi;

	if (len < 3)
		goto bad;
	afi = get16(v);
	safi = v[2];
	bits = family_bits(afi, safi);
	if (type == ATTR_MP_REACH) {
		uint8_t nh_len;

		if (len < 5 || (size_t)v[3] + 5 > len)
			goto bad;
		nh_len = v[3];
		nlri_off = 5 + (size_t)nh_len;
		/* RFC 4760 §3 (IPv4: 4), RFC 2545 §3 (IPv6: global [+ link-local]). */
		if ((bits == 32 && nh_len != 4) || (bits == 128 && nh_len != 16 && nh_len != 32))
			goto bad;
	} else {
		nlri_off = 3;
		/* Remembered for End-of-RIB, which any family may send. */
		s->mp_unreach_empty = len == nlri_off;
		s->mp_unreach_afi = afi;
		s->mp_unreach_safi = safi;
	}
	if (!bits)
		return 0; /* not negotiated, so not ours to judge: ignore */
	if (count_prefixes(v + nlri_off, len - nlri_off, bits, &count))
		goto bad;
	if (type == ATTR_MP_REACH) {
		s->mp_reach_count = count;
		s->u->n_announce += count;
	} else {
		s->u->n_withdraw += count;
	}
	return 0;
bad:
	set_err(s->e, BGP_ERR_UPDATE, 9, attr, attr_size);
	return -EINVAL;
}

/*
 * RFC 4271 §5: O and T bits as the type defines them, and no Partial bit
 * on well-known attributes. RFC 7606 §3(c) checks only O and T; checking P
 * as RFC 4271 §4.3 states it costs nothing since both are soft errors.
 */
static bool flags_ok(uint8_t flags, uint8_t want)
{
	if ((flags & ATTR_OPT_TRANS) != want)
		return false;
	return (want & ATTR_OPTIONAL) || !(flags & ATTR_PARTIAL);
}

/* Validate one attribute; attr is its whole encoding, v its value. */
static int parse_attr(struct upd *s, uint8_t flags, uint8_t type, const uint8_t *attr,
		      size_t attr_size, const uint8_t *v, size_t len)
{
	uint8_t want;

	switch (type) {
	case ATTR_ORIGIN:
	case ATTR_AS_PATH:
	case ATTR_NEXT_HOP:
	case ATTR_LOCAL_PREF:
	case ATTR_ATOMIC_AGGREGATE:
		want = ATTR_WELL_KNOWN;
		break;
	case ATTR_MED:
	case ATTR_MP_REACH:
	case ATTR_MP_UNREACH:
		want = ATTR_OPTIONAL;
		break;
	case ATTR_AGGREGATOR:
	case ATTR_COMMUNITIES:
		want = ATTR_OPT_TRANS;
		break;
	case ATTR_AS4_PATH:
	case ATTR_AS4_AGGREGATOR:
		/*
		 * RFC 6793 §6: a NEW speaker ignores them from a NEW peer and
		 * discards malformed ones from an OLD peer; we keep no paths.
		 */
		return 0;
	default:
		/* RFC 4271 §6.3: 3/2 for an unknown well-known attribute. */
		if (!(flags & ATTR_OPTIONAL))
			soft_err(s, WITHDRAW, 2, attr, attr_size);
		return 0; /* unknown optional attributes are passed over */
	}

	/* RFC 4760 §3: without classic NLRI, NEXT_HOP is to be ignored. */
	if (type == ATTR_NEXT_HOP && !s->nlri_len)
		return 0;
	if (!flags_ok(flags, want)) {
		if (type == ATTR_MP_REACH || type == ATTR_MP_UNREACH) {
			set_err(s->e, BGP_ERR_UPDATE, 4, attr, attr_size);
			return -EINVAL;
		}
		soft_err(s, WITHDRAW, 4, attr, attr_size); /* RFC 7606 §3(c) */
		return 0;
	}

	switch (type) {
	case ATTR_ORIGIN: /* RFC 7606 §7.1 */
		if (len != 1)
			soft_err(s, WITHDRAW, 5, attr, attr_size);
		else if (v[0] > 2)
			soft_err(s, WITHDRAW, 6, attr, attr_size);
		break;
	case ATTR_AS_PATH: /* RFC 7606 §7.2 */
		if (!as_path_ok(v, len, s->as4 ? 4 : 2))
			soft_err(s, WITHDRAW, 11, NULL, 0);
		break;
	case ATTR_NEXT_HOP: /* RFC 7606 §7.3; 0/8, 127/8, 224/3 are no hosts */
		if (len != 4)
			soft_err(s, WITHDRAW, 5, attr, attr_size);
		else if (v[0] == 0 || v[0] == 127 || v[0] >= 224)
			soft_err(s, WITHDRAW, 8, attr, attr_size);
		break;
	case ATTR_MED:	      /* RFC 7606 §7.4 */
	case ATTR_LOCAL_PREF: /* RFC 7606 §7.5 */
		if (len != 4)
			soft_err(s, WITHDRAW, 5, attr, attr_size);
		break;
	case ATTR_ATOMIC_AGGREGATE: /* RFC 7606 §7.6 */
		if (len != 0)
			soft_err(s, DISCARD, 5, attr, attr_size);
		break;
	case ATTR_AGGREGATOR: /* RFC 7606 §7.7, RFC 6793 §4, RFC 7607 §2 */
		if (len != (s->as4 ? 8u : 6u))
			soft_err(s, DISCARD, 5, attr, attr_size);
		else if (s->as4 ? !get32(v) : !get16(v))
			soft_err(s, DISCARD, 9, attr, attr_size);
		break;
	case ATTR_COMMUNITIES: /* RFC 7606 §7.8 */
		if (!len || len % 4)
			soft_err(s, WITHDRAW, 5, attr, attr_size);
		break;
	case ATTR_MP_REACH:
	case ATTR_MP_UNREACH:
		return parse_mp(s, type, attr, attr_size, v, len);
	}
	return 0;
}

/* RFC 4271 §4.3 path attributes in p[0..len). */
static int parse_attrs(struct upd *s, const uint8_t *p, size_t len)
{
	size_t off = 0;

	while (off < len) {
		uint8_t flags = p[off], type;
		size_t hdr, alen;

		/*
		 * RFC 7606 §4: an attribute header or value running past the
		 * list is treat-as-withdraw; Total Path Attribute Length
		 * still locates the NLRI, but nothing after can be parsed.
		 */
		hdr = (flags & ATTR_EXT_LEN) ? 4 : 3;
		if (len - off < hdr) {
			soft_err(s, WITHDRAW, 1, NULL, 0);
			return 0;
		}
		type = p[off + 1];
		alen = hdr == 4 ? get16(p + off + 2) : p[off + 2];
		if (alen > len - off - hdr) {
			soft_err(s, WITHDRAW, 1, NULL, 0);
			return 0;
		}
		s->n_attrs++;
		if (s->seen[type / 8] & (1u << (type % 8))) {
			/* RFC 7606 §3(g): MP repeats reset, others are dropped. */
			if (type == ATTR_MP_REACH || type == ATTR_MP_UNREACH) {
				set_err(s->e, BGP_ERR_UPDATE, 1, NULL, 0);
				return -EINVAL;
			}
			soft_err(s, DISCARD, 1, NULL, 0);
		} else {
			s->seen[type / 8] |= (uint8_t)(1u << (type % 8));
			if (parse_attr(s, flags, type, p + off, hdr + alen, p + off + hdr, alen))
				return -EINVAL;
		}
		off += hdr + alen;
	}
	return 0;
}

static bool seen(const struct upd *s, uint8_t type)
{
	return s->seen[type / 8] & (1u << (type % 8));
}

int bgp_decode_update(const uint8_t *body, size_t len, bool as4, struct bgp_update_in *u,
		      struct bgp_err *e)
{
	struct upd s = {.as4 = as4, .u = u, .e = e};
	size_t wd_len, attr_len, count = 0;
	const uint8_t *attrs;
	bool reach;

	memset(u, 0, sizeof(*u));
	e->treat_as_withdraw = false;
	if (len < UPDATE_MIN_LEN - BGP_HDR_LEN) {
		set_err_len(e, BGP_ERR_HEADER, 2, len + BGP_HDR_LEN);
		return -EINVAL;
	}
	/* RFC 4271 §6.3: the two length fields must fit in the message. */
	wd_len = get16(body);
	if (wd_len > len - 4) {
		set_err(e, BGP_ERR_UPDATE, 1, NULL, 0);
		return -EINVAL;
	}
	attr_len = get16(body + 2 + wd_len);
	if (attr_len > len - 4 - wd_len) {
		set_err(e, BGP_ERR_UPDATE, 1, NULL, 0);
		return -EINVAL;
	}
	attrs = body + 4 + wd_len;
	s.nlri = attrs + attr_len;
	s.nlri_len = len - 4 - wd_len - attr_len;

	if (parse_attrs(&s, attrs, attr_len))
		return -EINVAL;

	/* RFC 4271 §6.3 and RFC 7606 §5.3: bad prefixes reset the session. */
	if (count_prefixes(body + 2, wd_len, 32, &count)) {
		set_err(e, BGP_ERR_UPDATE, 10, NULL, 0);
		return -EINVAL;
	}
	u->n_withdraw += count;
	count = 0;
	if (count_prefixes(s.nlri, s.nlri_len, 32, &count)) {
		set_err(e, BGP_ERR_UPDATE, 10, NULL, 0);
		return -EINVAL;
	}
	u->n_announce += count;

	/*
	 * RFC 4271 §6.3 (3/3, data: the type code); NEXT_HOP only for classic
	 * NLRI (RFC 4760 §3). RFC 7606 §3(d): treat-as-withdraw.
	 */
	reach = s.nlri_len || s.mp_reach_count;
	if (reach) {
		static const uint8_t mandatory[] = {ATTR_ORIGIN, ATTR_AS_PATH, ATTR_NEXT_HOP};

		for (size_t i = 0; i < sizeof(mandatory); i++) {
			if (mandatory[i] == ATTR_NEXT_HOP && !s.nlri_len)
				continue;
			if (!seen(&s, mandatory[i]))
				soft_err(&s, WITHDRAW, 3, &mandatory[i], 1);
		}
	}

	if (s.have_soft) {
		/*
		 * RFC 7606 §5.2 (as BIRD reads it): treat-as-withdraw needs
		 * routes to withdraw; with no reachable NLRI the session is
		 * reset instead. Attribute discard needs nothing.
		 */
		e->treat_as_withdraw = !s.soft_withdraw || reach;
		return -EINVAL;
	}

	/* RFC 4724 §2: End-of-RIB markers. */
	if (!wd_len && !s.nlri_len) {
		if (!attr_len) {
			u->eor = true;
			u->eor_family = 4;
		} else if (s.n_attrs == 1 && seen(&s, ATTR_MP_UNREACH) && s.mp_unreach_empty) {
			unsigned int bits = family_bits(s.mp_unreach_afi, s.mp_unreach_safi);

			u->eor = true;
			u->eor_family = bits == 32 ? 4 : bits == 128 ? 6 : 0;
		}
	}
	return 0;
}
