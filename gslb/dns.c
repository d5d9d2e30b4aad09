// SPDX-License-Identifier: GPL-2.0-only
/*
 * dns.c - one query in, one response out. The wire format is libknot's
 * (knot_pkt_parse, knot_pkt_put, the EDNS and ECS helpers); what is
 * checked here by hand is the ECS option's content, against RFC 7871
 * section 6 (FAMILY 1 or 2, the ADDRESS exactly ceil(SOURCE/8) octets with
 * no bit set past SOURCE PREFIX-LENGTH: otherwise FORMERR, as section
 * 7.2.1 says for a wrongly formatted option).
 *
 * Response rules (RFC 1034 4.3.2, RFC 2308, RFC 6891, RFC 8482):
 *   - a query for a zone we do not serve: REFUSED, not authoritative;
 *   - a name that does not exist: NXDOMAIN with the zone's SOA (its
 *     MINIMUM as TTL) in the authority section; an existing name without
 *     the type: NOERROR, no answer, the SOA (NODATA);
 *   - ANY gets one RRset (RFC 8482), never everything: no amplification;
 *   - EDNS version other than 0: BADVERS; the response carries OPT only
 *     when the query did, with our payload size;
 *   - ECS: echoed with the scope that decided (0 when the answer does not
 *     depend on the client's address).
 */
#include "dns.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "geo.h"

static void *arena_alloc(void *ctx, size_t len)
{
	struct dns_arena *a = ctx;
	len = (len + 15) & ~(size_t)15;
	if (len > a->cap - a->used)
		return NULL;
	void *p = a->buf + a->used;
	a->used += len;
	return p;
}

static void arena_free(void *p)
{
	(void)p; /* the whole arena is reset per query */
}

int dns_arena_init(struct dns_arena *a, size_t cap)
{
	a->buf = malloc(cap);
	if (!a->buf)
		return -ENOMEM;
	a->cap = cap;
	a->used = 0;
	a->mm = (knot_mm_t){.ctx = a, .alloc = arena_alloc, .free = arena_free};
	return 0;
}

void dns_arena_fini(struct dns_arena *a)
{
	free(a->buf);
	a->buf = NULL;
}

/* ---- choosing the PoP ---- */

static bool can_answer(const struct gslb_view *v, uint8_t p, int qfamily, bool drained_ok)
{
	if (p == GSLB_NO_POP)
		return false;
	const struct gslb_pop *pop = &v->conf->pops[p];
	if (qfamily == AF_INET ? !pop->has4 : !pop->has6)
		return false;
	uint8_t st = atomic_load_explicit(&v->states->eff[p], memory_order_relaxed);
	return st == GSLB_POP_UP || (st == GSLB_POP_DRAINED && drained_ok);
}

static uint8_t first_up(const struct gslb_view *v, const uint8_t *list, unsigned n, bool map,
			int qfamily)
{
	bool drained_ok =
	    atomic_load_explicit(&v->states->drained_ok[qfamily == AF_INET6], memory_order_relaxed);
	for (unsigned i = 0; i < n; i++) {
		if (list[i] == GMAP_NONE)
			break;
		uint8_t p = map ? v->map_pop[list[i]] : list[i];
		if (can_answer(v, p, qfamily, drained_ok))
			return p;
	}
	return GSLB_NO_POP;
}

uint8_t gslb_choose(const struct gslb_view *v, int family, const uint8_t *addr, unsigned bits,
		    int qfamily, enum gslb_how *how, unsigned *scope)
{
	unsigned match = 0, s = 0;
	const uint8_t *list = NULL;
	if (v->map)
		list = gmap_lookup(v->map, family, addr, bits, &match, &s);
	*scope = s;
	if (list) {
		*how = GSLB_HOW_MAP;
		return first_up(v, list, GMAP_LIST_MAX, true, qfamily);
	}
	/* No map entry: the country's list, then the default list. The answer
	 * now also depends on the geoip range, so the scope covers both. */
	const struct gslb_list *l = &v->conf->def;
	*how = GSLB_HOW_DEFAULT;
	if (v->geo) {
		unsigned plen = 0;
		const char *cc = geo_country(v->geo, family, addr, &plen);
		if (plen > *scope)
			*scope = plen;
		for (unsigned i = 0; cc && i < v->conf->n_countries; i++)
			if (v->conf->countries[i].cc[0] == cc[0] &&
			    v->conf->countries[i].cc[1] == cc[1]) {
				l = &v->conf->countries[i].list;
				*how = GSLB_HOW_COUNTRY;
				break;
			}
	}
	return first_up(v, l->pop, l->n, false, qfamily);
}

/* ---- the ECS option (RFC 7871 section 6) ---- */

struct ecs {
	bool present;
	uint16_t family; /* 1 IPv4, 2 IPv6 */
	uint8_t source, bytes;
	uint8_t addr[16];
};

/* 0, or -1 for a malformed option (FORMERR). */
static int ecs_parse(const uint8_t *data, uint16_t len, struct ecs *e)
{
	if (len < 4)
		return -1;
	e->family = (uint16_t)(data[0] << 8 | data[1]);
	e->source = data[2];
	/* data[3], SCOPE, "MUST be set to 0" in queries; it is not used. */
	unsigned max = e->family == 1 ? 32 : e->family == 2 ? 128 : 0;
	if (!max || e->source > max)
		return -1;
	e->bytes = (e->source + 7) / 8;
	if (len != 4 + e->bytes)
		return -1;
	memset(e->addr, 0, sizeof(e->addr));
	memcpy(e->addr, data + 4, e->bytes);
	if (e->source % 8 && (e->addr[e->bytes - 1] & (0xff >> (e->source % 8))))
		return -1;
	e->present = true;
	return 0;
}

/* ---- the response ---- */

/* One A or AAAA RRset for the question's name. */
static int put_addrs(knot_pkt_t *r, struct dns_arena *a, const knot_dname_t *owner, uint16_t type,
		     uint32_t ttl, const uint8_t *addrs, unsigned n)
{
	knot_rrset_t rr;
	unsigned len = type == KNOT_RRTYPE_A ? 4 : 16;
	knot_rrset_init(&rr, (knot_dname_t *)owner, type, KNOT_CLASS_IN, ttl);
	for (unsigned i = 0; i < n; i++)
		if (knot_rrset_add_rdata(&rr, addrs + i * len, len, &a->mm) != KNOT_EOK)
			return KNOT_ENOMEM;
	return knot_pkt_put(r, KNOT_COMPR_HINT_QNAME, &rr, 0);
}

static const struct gslb_zone *find_zone(const struct gslb_conf *c, const knot_dname_t *qname)
{
	const struct gslb_zone *best = NULL;
	size_t best_len = 0;
	for (unsigned i = 0; i < c->n_zones; i++) {
		const struct gslb_zone *z = &c->zones[i];
		if (knot_dname_in_bailiwick(qname, z->apex) >= 0) {
			size_t l = knot_dname_size(z->apex);
			if (!best || l > best_len) {
				best = z;
				best_len = l;
			}
		}
	}
	return best;
}

/* Is name an ancestor of a configured name (an empty non-terminal)? */
static bool is_ent(const struct gslb_zone *z, const knot_dname_t *name)
{
	for (unsigned i = 0; i < z->n_names; i++)
		if (knot_dname_in_bailiwick(z->names[i].name, name) > 0)
			return true;
	return false;
}

/* The client address for the map: ECS if it says something, else the
 * source (an IPv4-mapped IPv6 source is the IPv4 client it is). */
static void client_of(const struct ecs *e, const struct sockaddr_storage *from, int *family,
		      uint8_t *addr, unsigned *bits)
{
	memset(addr, 0, 16);
	if (e->present && e->source > 0) {
		*family = e->family == 1 ? AF_INET : AF_INET6;
		memcpy(addr, e->addr, 16);
		*bits = e->source;
		return;
	}
	if (from->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const void *)from;
		if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
			*family = AF_INET;
			memcpy(addr, s6->sin6_addr.s6_addr + 12, 4);
			*bits = 32;
		} else {
			*family = AF_INET6;
			memcpy(addr, s6->sin6_addr.s6_addr, 16);
			*bits = 128;
		}
	} else {
		const struct sockaddr_in *s4 = (const void *)from;
		*family = AF_INET;
		memcpy(addr, &s4->sin_addr, 4);
		*bits = 32;
	}
}

/* A header-only error response when the question itself did not parse. */
static size_t bare_error(const uint8_t *q, uint8_t *out, size_t cap, int rcode,
			 struct dns_result *res)
{
	if (cap < KNOT_WIRE_HEADER_SIZE)
		return 0;
	memset(out, 0, KNOT_WIRE_HEADER_SIZE);
	memcpy(out, q, 4); /* id, flags */
	knot_wire_set_qr(out);
	knot_wire_clear_aa(out);
	knot_wire_clear_tc(out);
	knot_wire_clear_ra(out);
	knot_wire_clear_ad(out);
	knot_wire_clear_z(out);
	knot_wire_set_rcode(out, rcode);
	res->rcode = rcode;
	res->qend = KNOT_WIRE_HEADER_SIZE;
	return KNOT_WIRE_HEADER_SIZE;
}

size_t dns_answer(const struct gslb_view *v, struct dns_arena *a, uint8_t *q, size_t qlen,
		  uint8_t *out, size_t out_cap, bool tcp, const struct sockaddr_storage *from,
		  struct dns_result *res)
{
	*res = (struct dns_result){.pop = GSLB_NO_POP};
	/* Too short to name a query, or a response: never answer (answering
	 * responses is how two servers are made to loop). */
	if (qlen < KNOT_WIRE_HEADER_SIZE || knot_wire_get_qr(q) || qlen > UINT16_MAX) {
		res->drop = true;
		return 0;
	}
	a->used = 0;
	knot_pkt_t *qp = knot_pkt_new(q, (uint16_t)qlen, &a->mm);
	if (!qp) {
		res->drop = true;
		return 0;
	}
	if (knot_wire_get_opcode(q) != KNOT_OPCODE_QUERY) {
		/* No question parsing for opcodes we do not speak. */
		return bare_error(q, out, out_cap, KNOT_RCODE_NOTIMPL, res);
	}
	if (knot_wire_get_qdcount(q) != 1 || knot_pkt_parse(qp, 0) != KNOT_EOK)
		return bare_error(q, out, out_cap, KNOT_RCODE_FORMERR, res);

	struct ecs ecs = {0};
	int rcode = KNOT_RCODE_NOERROR;
	bool badvers = false;
	uint16_t limit = tcp ? UINT16_MAX : KNOT_WIRE_MIN_PKTSIZE;
	if (knot_pkt_has_edns(qp)) {
		res->edns = true;
		if (knot_edns_get_version(qp->opt_rr) != KNOT_EDNS_VERSION) {
			badvers = true;
		} else {
			uint8_t *o =
			    knot_edns_get_option(qp->opt_rr, KNOT_EDNS_OPTION_CLIENT_SUBNET, NULL);
			/* One ECS option, well formed (RFC 7871 section 6);
			 * two would leave "which subnet" to chance. */
			if (o &&
			    (ecs_parse(knot_edns_opt_get_data(o), knot_edns_opt_get_length(o),
				       &ecs) ||
			     knot_edns_get_option(qp->opt_rr, KNOT_EDNS_OPTION_CLIENT_SUBNET, o)))
				rcode = KNOT_RCODE_FORMERR;
			res->ecs = ecs.present;
		}
		if (!tcp) {
			uint16_t cl = knot_edns_get_payload(qp->opt_rr);
			limit = cl < v->conf->max_udp ? cl : v->conf->max_udp;
			if (limit < KNOT_WIRE_MIN_PKTSIZE)
				limit = KNOT_WIRE_MIN_PKTSIZE;
		}
	}
	if (limit > out_cap)
		limit = (uint16_t)(out_cap < UINT16_MAX ? out_cap : UINT16_MAX);

	knot_pkt_t *r = knot_pkt_new(out, limit, &a->mm);
	if (!r || knot_pkt_init_response(r, qp) != KNOT_EOK) {
		res->drop = true;
		return 0;
	}
	knot_wire_clear_ra(r->wire);
	knot_wire_clear_ad(r->wire);
	/* Counts from what is put here only, whatever the buffer held. */
	knot_wire_set_ancount(r->wire, 0);
	knot_wire_set_nscount(r->wire, 0);
	knot_wire_set_arcount(r->wire, 0);
	res->qend = (uint16_t)r->size;

	/* The OPT record goes last, but its room is kept from the start so
	 * that truncation leaves space for it. */
	knot_rrset_t opt;
	bool with_opt = res->edns;
	uint16_t reserved = 0;
	if (with_opt) {
		if (knot_edns_init(&opt, v->conf->max_udp, 0, KNOT_EDNS_VERSION, &a->mm) !=
		    KNOT_EOK) {
			res->drop = true;
			return 0;
		}
		if (ecs.present) {
			/* Same FAMILY, SOURCE and ADDRESS; SCOPE set at the end. */
			if (knot_edns_reserve_option(&opt, KNOT_EDNS_OPTION_CLIENT_SUBNET,
						     4 + ecs.bytes, NULL, &a->mm) != KNOT_EOK) {
				res->drop = true;
				return 0;
			}
		}
		reserved = (uint16_t)knot_edns_wire_size(&opt);
		if (knot_pkt_reserve(r, reserved) != KNOT_EOK) {
			res->drop = true;
			return 0;
		}
	}

	const knot_dname_t *qname = knot_pkt_qname(qp);
	uint16_t qtype = knot_pkt_qtype(qp);
	const struct gslb_zone *z = NULL;
	bool aa = false, soa_auth = false;
	unsigned scope = 0;
	int ret = KNOT_EOK;

	if (badvers || rcode != KNOT_RCODE_NOERROR) {
		/* error already chosen */
	} else if (knot_pkt_qclass(qp) != KNOT_CLASS_IN) {
		rcode = KNOT_RCODE_REFUSED;
	} else if (!(z = find_zone(v->conf, qname))) {
		rcode = KNOT_RCODE_REFUSED;
	} else if (qtype == KNOT_RRTYPE_AXFR || qtype == KNOT_RRTYPE_IXFR) {
		rcode = KNOT_RCODE_REFUSED; /* no zone transfers */
		z = NULL;
	} else {
		aa = true;
		knot_pkt_begin(r, KNOT_ANSWER);
		const struct gslb_name *n = NULL;
		for (unsigned i = 0; i < z->n_names; i++)
			if (knot_dname_is_equal(z->names[i].name, qname)) {
				n = &z->names[i];
				break;
			}
		bool apex = knot_dname_is_equal(qname, z->apex);
		uint16_t t = qtype;
		if (t == KNOT_RRTYPE_ANY) /* RFC 8482: one RRset */
			t = n ? (n->kind == GSLB_NAME_STATIC && !n->n4 && n->n6 ? KNOT_RRTYPE_AAAA
										: KNOT_RRTYPE_A)
			      : KNOT_RRTYPE_SOA;
		if (apex && t == KNOT_RRTYPE_SOA) {
			ret = knot_pkt_put(r, KNOT_COMPR_HINT_QNAME, &z->soa, 0);
		} else if (apex && t == KNOT_RRTYPE_NS) {
			ret = knot_pkt_put(r, KNOT_COMPR_HINT_QNAME, &z->ns, 0);
		} else if (n && n->kind == GSLB_NAME_STATIC &&
			   (t == KNOT_RRTYPE_A	    ? n->n4
			    : t == KNOT_RRTYPE_AAAA ? n->n6
						    : 0)) {
			if (t == KNOT_RRTYPE_A)
				ret = put_addrs(r, a, qname, t, z->static_ttl, n->a4[0], n->n4);
			else
				ret = put_addrs(r, a, qname, t, z->static_ttl, n->a6[0], n->n6);
		} else if (n && n->kind == GSLB_NAME_SERVICE &&
			   (t == KNOT_RRTYPE_A || t == KNOT_RRTYPE_AAAA)) {
			int fam, qfam = t == KNOT_RRTYPE_A ? AF_INET : AF_INET6;
			uint8_t addr[16];
			unsigned bits;
			client_of(&ecs, from, &fam, addr, &bits);
			uint8_t p = gslb_choose(v, fam, addr, bits, qfam, &res->how, &scope);
			const uint8_t *vip = NULL;
			if (p != GSLB_NO_POP) {
				res->pop = p;
				vip =
				    qfam == AF_INET ? v->conf->pops[p].vip4 : v->conf->pops[p].vip6;
			} else if (qfam == AF_INET ? v->conf->any4 : v->conf->any6) {
				res->how = GSLB_HOW_ANYCAST;
				vip = qfam == AF_INET ? v->conf->anycast4 : v->conf->anycast6;
			} else {
				res->how = GSLB_HOW_NOVIP;
				rcode = KNOT_RCODE_SERVFAIL;
				aa = false;
			}
			if (vip)
				ret = put_addrs(r, a, qname, t, z->ttl, vip, 1);
			/* Source 0: the client asked for no tailoring; the answer
			 * (made for the resolver) is valid for everyone. */
			if (!ecs.present || ecs.source == 0)
				scope = 0;
		} else if (n || apex || is_ent(z, qname)) {
			soa_auth = true; /* NODATA */
		} else {
			rcode = KNOT_RCODE_NXDOMAIN;
			soa_auth = true;
		}
		if (soa_auth && ret == KNOT_EOK) {
			knot_pkt_begin(r, KNOT_AUTHORITY);
			/* RFC 2308 section 3: the SOA's MINIMUM bounds the
			 * negative answer's TTL. */
			ret = knot_pkt_put(r, KNOT_COMPR_HINT_NONE, &z->soa, KNOT_PF_SOAMINTTL);
		}
	}
	if (ret == KNOT_ESPACE) {
		/* It did not fit: header, question and OPT, with TC. */
		res->tc = true;
		knot_wire_set_tc(r->wire);
	} else if (ret != KNOT_EOK) {
		rcode = KNOT_RCODE_SERVFAIL;
	}
	if (res->tc || ret != KNOT_EOK) {
		/* Drop what was put: a partial RRset must not go out. */
		r->size = res->qend;
		knot_wire_set_ancount(r->wire, 0);
		knot_wire_set_nscount(r->wire, 0);
		knot_wire_set_arcount(r->wire, 0);
		for (int s = 0; s < KNOT_PKT_SECTIONS; s++)
			r->sections[s].count = 0;
		r->rrset_count = 0;
	}
	if (aa)
		knot_wire_set_aa(r->wire);
	else
		knot_wire_clear_aa(r->wire);
	knot_wire_set_rcode(r->wire, badvers ? 0 : rcode);
	res->rcode = badvers ? KNOT_RCODE_BADVERS : rcode;

	if (with_opt) {
		if (badvers)
			knot_edns_set_ext_rcode(&opt, KNOT_RCODE_BADVERS >> 4);
		if (ecs.present) {
			uint8_t *o =
			    knot_edns_get_option(&opt, KNOT_EDNS_OPTION_CLIENT_SUBNET, NULL);
			unsigned max = ecs.family == 1 ? 32 : 128;
			res->scope = (uint8_t)(scope > max ? max : scope);
			if (o) {
				uint8_t *d = knot_edns_opt_get_data(o);
				d[0] = (uint8_t)(ecs.family >> 8);
				d[1] = (uint8_t)ecs.family;
				d[2] = ecs.source;
				d[3] = res->scope;
				memcpy(d + 4, ecs.addr, ecs.bytes);
			}
		}
		knot_pkt_begin(r, KNOT_ADDITIONAL);
		knot_pkt_reclaim(r, reserved);
		if (knot_pkt_put(r, KNOT_COMPR_HINT_NONE, &opt, 0) != KNOT_EOK) {
			res->drop = true;
			return 0;
		}
	}
	return r->size;
}

void gslb_view_set_map(struct gslb_view *v, const struct gmap *m)
{
	v->map = m;
	memset(v->map_pop, GSLB_NO_POP, sizeof(v->map_pop));
	for (unsigned i = 0; m && i < gmap_n_pops(m); i++) {
		int p = gslb_conf_pop(v->conf, gmap_pop_name(m, i));
		v->map_pop[i] = p < 0 ? GSLB_NO_POP : (uint8_t)p;
	}
}

size_t dns_truncate(uint8_t *resp, const struct dns_result *res)
{
	knot_wire_set_tc(resp);
	knot_wire_set_ancount(resp, 0);
	knot_wire_set_nscount(resp, 0);
	knot_wire_set_arcount(resp, 0);
	return res->qend;
}
