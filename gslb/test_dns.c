// SPDX-License-Identifier: GPL-2.0-only
/*
 * test_dns.c - gslbd's answers, query in and response out, with queries
 * built and responses parsed by libknot: the PoP per client (map, ECS,
 * country, default, anycast), RFC 7871 scopes, drained and down PoPs,
 * the negative answers, truncation, EDNS versions, malformed ECS options,
 * every truncation of a query, and a configuration that does not load.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "conf.h"
#include "dns.h"
#include "geo.h"
#include "map.h"

static const char *conf_text =
    "listen = [\"127.0.0.1:5353\", \"[::1]:5353\"];\n"
    "map = \"/nonexistent/map\";\n"
    "zones = ( { name = \"example.test\"; ttl = 30;\n"
    "  soa = { mname = \"ns1\"; rname = \"hostmaster\"; serial = 7; minimum = 60; };\n"
    "  ns = [\"ns1\"]; services = [\"www\"];\n"
    "  records = ( { name = \"ns1\"; a = [\"192.0.2.53\"]; aaaa = [\"2001:db8::53\"]; },\n"
    "              { name = \"many.deep\"; aaaa = [\"2001:db8::1\", \"2001:db8::2\",\n"
    "                \"2001:db8::3\", \"2001:db8::4\", \"2001:db8::5\", \"2001:db8::6\"]; } ); } "
    ");\n"
    "pops = ( { name = \"fra\"; vip4 = \"198.51.100.1\"; vip6 = \"2001:db8:f::1\"; },\n"
    "         { name = \"ams\"; vip4 = \"198.51.100.2\"; vip6 = \"2001:db8:a::1\"; },\n"
    "         { name = \"iad\"; vip4 = \"198.51.100.3\"; } );\n"
    "countries = ( { cc = \"US\"; pops = [\"iad\", \"fra\"]; } );\n"
    "default = [\"ams\"];\n"
    "anycast = { vip4 = \"192.0.2.100\"; vip6 = \"2001:db8::100\"; };\n";

struct fx {
	struct gslb_conf *conf;
	struct gmap *map;
	void *img;
	struct geo *geo;
	struct gslb_states st;
	struct gslb_view view;
	struct dns_arena arena;
};

static void add(struct gmap_builder *b, const char *cidr, const char *const *pops)
{
	char buf[64];
	snprintf(buf, sizeof(buf), "%s", cidr);
	char *sl = strchr(buf, '/');
	*sl = 0;
	uint8_t a[16] = {0}, l[GMAP_LIST_MAX];
	int fam = strchr(buf, ':') ? AF_INET6 : AF_INET;
	assert_int_equal(inet_pton(fam, buf, a), 1);
	unsigned n = 0;
	for (; pops[n]; n++)
		l[n] = (uint8_t)gmap_builder_pop(b, pops[n]);
	assert_int_equal(gmap_builder_add(b, fam, a, atoi(sl + 1), l, n), 0);
}

static void view_refresh(struct fx *f)
{
	f->view = (struct gslb_view){.conf = f->conf, .states = &f->st, .geo = f->geo};
	gslb_view_set_map(&f->view, f->map);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char *err = NULL;
	if (gslb_conf_load("test.conf", conf_text, &f->conf, &err)) {
		fprintf(stderr, "%s\n", err);
		return -1;
	}
	struct gmap_builder *b = gmap_builder_new();
	add(b, "203.0.113.0/24", (const char *const[]){"fra", "ams", NULL});
	add(b, "203.0.113.128/25", (const char *const[]){"ams", "fra", NULL});
	add(b, "2001:db8:1::/48", (const char *const[]){"ams", NULL});
	/* A PoP this configuration does not know: its entries fall through. */
	add(b, "198.18.0.0/15", (const char *const[]){"xyz", "fra", NULL});
	size_t len;
	assert_int_equal(gmap_builder_serialize(b, NULL, true, &f->img, &len), 0);
	gmap_builder_free(b);
	assert_int_equal(gmap_parse(f->img, len, &f->map, &err), 0);
	f->geo = geo_open(NULL, NULL, &err);
	assert_non_null(f->geo);
	assert_int_equal(dns_arena_init(&f->arena, 1 << 20), 0);
	view_refresh(f);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	gslb_conf_free(f->conf);
	gmap_close(f->map);
	free(f->img);
	geo_close(f->geo);
	dns_arena_fini(&f->arena);
	free(f);
	return 0;
}

struct q {
	const char *name;
	uint16_t type, cls;
	bool edns;
	uint8_t version;
	uint16_t payload;
	const uint8_t *opt; /* raw ECS option data */
	uint16_t opt_len;
	bool twice; /* the option twice */
};

static size_t mkquery(const struct q *q, uint8_t *buf)
{
	memset(buf, 0, 1024); /* knot_pkt_new keeps the header's old counts */
	knot_pkt_t *p = knot_pkt_new(buf, 1024, NULL);
	assert_non_null(p);
	knot_wire_set_id(p->wire, 0xbeef);
	knot_wire_set_rd(p->wire);
	knot_dname_t *d = knot_dname_from_str_alloc(q->name);
	assert_non_null(d);
	assert_int_equal(knot_pkt_put_question(p, d, q->cls ? q->cls : KNOT_CLASS_IN, q->type), 0);
	free(d);
	if (q->edns) {
		knot_rrset_t opt;
		assert_int_equal(
		    knot_edns_init(&opt, q->payload ? q->payload : 1232, 0, q->version, NULL), 0);
		for (int i = 0; q->opt && i < (q->twice ? 2 : 1); i++)
			assert_int_equal(knot_edns_add_option(&opt, KNOT_EDNS_OPTION_CLIENT_SUBNET,
							      q->opt_len, q->opt, NULL),
					 0);
		knot_pkt_begin(p, KNOT_ADDITIONAL);
		assert_int_equal(knot_pkt_put(p, 0, &opt, 0), 0);
		knot_rrset_clear(&opt, NULL);
	}
	size_t n = p->size;
	knot_pkt_free(p);
	return n;
}

struct resp {
	int rcode; /* with the extended bits */
	bool aa, tc, has_opt, has_ecs;
	unsigned an, ns;
	uint16_t an_type, ns_type;
	uint8_t addr[16]; /* first answer's rdata */
	uint32_t an_ttl, ns_ttl;
	uint8_t scope, source;
	size_t len;
};

static void from4(struct sockaddr_storage *ss, const char *a)
{
	struct sockaddr_in *s = (void *)ss;
	memset(ss, 0, sizeof(*ss));
	s->sin_family = AF_INET;
	s->sin_port = htons(40000);
	inet_pton(AF_INET, a, &s->sin_addr);
}

static void from6(struct sockaddr_storage *ss, const char *a)
{
	struct sockaddr_in6 *s = (void *)ss;
	memset(ss, 0, sizeof(*ss));
	s->sin6_family = AF_INET6;
	inet_pton(AF_INET6, a, &s->sin6_addr);
}

static struct resp ask_from(struct fx *f, const struct q *q, const struct sockaddr_storage *from,
			    bool tcp, size_t cap)
{
	uint8_t qb[1024], out[65535];
	size_t ql = mkquery(q, qb);
	struct dns_result r;
	struct resp x = {0};
	x.len = dns_answer(&f->view, &f->arena, qb, ql, out, cap, tcp, from, &r);
	assert_true(x.len > 0);
	assert_false(r.drop);
	knot_pkt_t *p = knot_pkt_new(out, x.len, NULL);
	assert_int_equal(knot_pkt_parse(p, 0), 0);
	assert_int_equal(knot_wire_get_id(out), 0xbeef);
	assert_true(knot_wire_get_qr(out));
	assert_true(knot_wire_get_rd(out)); /* copied from the query */
	x.rcode = knot_pkt_ext_rcode(p);
	assert_int_equal(x.rcode, r.rcode);
	x.aa = knot_wire_get_aa(out);
	x.tc = knot_wire_get_tc(out);
	const knot_pktsection_t *an = knot_pkt_section(p, KNOT_ANSWER);
	const knot_pktsection_t *ns = knot_pkt_section(p, KNOT_AUTHORITY);
	x.an = an->count;
	x.ns = ns->count;
	if (x.an) {
		const knot_rrset_t *rr = knot_pkt_rr(an, 0);
		x.an_type = rr->type;
		x.an_ttl = rr->ttl;
		memcpy(x.addr, rr->rrs.rdata->data,
		       rr->rrs.rdata->len < 16 ? rr->rrs.rdata->len : 16);
	}
	if (x.ns) {
		x.ns_type = knot_pkt_rr(ns, 0)->type;
		x.ns_ttl = knot_pkt_rr(ns, 0)->ttl;
	}
	x.has_opt = knot_pkt_has_edns(p);
	uint8_t *o = knot_pkt_edns_option(p, KNOT_EDNS_OPTION_CLIENT_SUBNET);
	if (o) {
		const uint8_t *d = knot_edns_opt_get_data(o);
		x.has_ecs = true;
		x.source = d[2];
		x.scope = d[3];
	}
	knot_pkt_free(p);
	return x;
}

static struct resp ask(struct fx *f, const struct q *q, const char *src)
{
	struct sockaddr_storage ss;
	if (strchr(src, ':'))
		from6(&ss, src);
	else
		from4(&ss, src);
	return ask_from(f, q, &ss, false, 4096);
}

/* The ECS option's data for addr/source (RFC 7871 section 6). */
static uint16_t ecs(uint8_t *d, const char *addr, uint8_t source)
{
	int v6 = strchr(addr, ':') != NULL;
	uint8_t a[16] = {0};
	inet_pton(v6 ? AF_INET6 : AF_INET, addr, a);
	d[0] = 0;
	d[1] = v6 ? 2 : 1;
	d[2] = source;
	d[3] = 0;
	unsigned bytes = (source + 7) / 8;
	memcpy(d + 4, a, bytes);
	if (source % 8)
		d[4 + bytes - 1] &= (uint8_t)(0xff00 >> (source % 8));
	return (uint16_t)(4 + bytes);
}

static void expect_a(const struct resp *r, const char *addr)
{
	uint8_t a[16] = {0};
	int v6 = strchr(addr, ':') != NULL;
	inet_pton(v6 ? AF_INET6 : AF_INET, addr, a);
	assert_int_equal(r->rcode, KNOT_RCODE_NOERROR);
	assert_int_equal(r->an, 1);
	assert_int_equal(r->an_type, v6 ? KNOT_RRTYPE_AAAA : KNOT_RRTYPE_A);
	assert_memory_equal(r->addr, a, v6 ? 16 : 4);
	assert_true(r->aa);
}

static void test_map_answers(void **state)
{
	struct fx *f = *state;
	struct q q = {.name = "www.example.test.", .type = KNOT_RRTYPE_A};
	/* No ECS: the resolver's own address decides; no OPT back. */
	struct resp r = ask(f, &q, "203.0.113.7");
	expect_a(&r, "198.51.100.1"); /* fra */
	assert_int_equal(r.an_ttl, 30);
	assert_false(r.has_opt);
	r = ask(f, &q, "203.0.113.200");
	expect_a(&r, "198.51.100.2"); /* ams, the /25 */
	/* Case does not matter. */
	q.name = "WwW.ExAmPlE.TeSt.";
	r = ask(f, &q, "203.0.113.7");
	expect_a(&r, "198.51.100.1");
	/* AAAA from the same entry; an IPv6 resolver in 2001:db8:1::/48. */
	q.name = "www.example.test.";
	q.type = KNOT_RRTYPE_AAAA;
	r = ask(f, &q, "2001:db8:1::99");
	expect_a(&r, "2001:db8:a::1");
	/* An IPv4-mapped source is its IPv4 client. */
	q.type = KNOT_RRTYPE_A;
	r = ask(f, &q, "::ffff:203.0.113.7");
	expect_a(&r, "198.51.100.1");
	/* An unconfigured PoP in the list falls through to the next. */
	r = ask(f, &q, "198.19.1.1");
	expect_a(&r, "198.51.100.1");
}

static void test_ecs(void **state)
{
	struct fx *f = *state;
	uint8_t o[20];
	struct q q = {.name = "www.example.test.", .type = KNOT_RRTYPE_A, .edns = true, .opt = o};
	/* The ECS subnet decides, not the resolver (in another entry). */
	q.opt_len = ecs(o, "203.0.113.0", 24);
	struct resp r = ask(f, &q, "2001:db8:1::1");
	expect_a(&r, "198.51.100.1");
	assert_true(r.has_ecs);
	assert_int_equal(r.source, 24);
	/* 203.0.113.0/24 holds a more specific /25: the answer is for the
	 * lower /25 only. */
	assert_int_equal(r.scope, 25);
	q.opt_len = ecs(o, "203.0.113.128", 25);
	r = ask(f, &q, "2001:db8:1::1");
	expect_a(&r, "198.51.100.2");
	assert_int_equal(r.scope, 25);
	/* A /16 reveals too little for the map: the /24 is not matched, and
	 * the scope says more bits would change the answer. */
	q.opt_len = ecs(o, "203.0.0.0", 16);
	r = ask(f, &q, "2001:db8:1::1");
	assert_true(r.scope > 16);
	/* IPv6 subnet for an A query. */
	q.opt_len = ecs(o, "2001:db8:1:ff00::", 56);
	r = ask(f, &q, "192.0.2.1");
	expect_a(&r, "198.51.100.2");
	assert_int_equal(r.scope, 48);
	/* Source 0: no tailoring wanted; the resolver decides, scope 0. */
	q.opt_len = ecs(o, "0.0.0.0", 0);
	r = ask(f, &q, "203.0.113.7");
	expect_a(&r, "198.51.100.1");
	assert_int_equal(r.source, 0);
	assert_int_equal(r.scope, 0);
	/* Answers that do not depend on the subnet: scope 0. */
	q.opt_len = ecs(o, "203.0.113.0", 24);
	q.name = "example.test.";
	q.type = KNOT_RRTYPE_SOA;
	r = ask(f, &q, "192.0.2.1");
	assert_int_equal(r.an, 1);
	assert_int_equal(r.scope, 0);
	q.name = "nope.example.test.";
	r = ask(f, &q, "192.0.2.1");
	assert_int_equal(r.rcode, KNOT_RCODE_NXDOMAIN);
	assert_int_equal(r.scope, 0);
}

static void test_bad_ecs(void **state)
{
	struct fx *f = *state;
	uint8_t o[40];
	struct q q = {.name = "www.example.test.", .type = KNOT_RRTYPE_A, .edns = true, .opt = o};
	struct resp r;
	/* Family 3. */
	q.opt_len = ecs(o, "203.0.113.0", 24);
	o[1] = 3;
	r = ask(f, &q, "192.0.2.1");
	assert_int_equal(r.rcode, KNOT_RCODE_FORMERR);
	/* Source past 32 for IPv4. */
	q.opt_len = ecs(o, "203.0.113.0", 24);
	o[2] = 33;
	r = ask(f, &q, "192.0.2.1");
	assert_int_equal(r.rcode, KNOT_RCODE_FORMERR);
	/* Too many address octets, too few. */
	q.opt_len = ecs(o, "203.0.113.0", 24) + 1;
	o[q.opt_len - 1] = 0;
	r = ask(f, &q, "192.0.2.1");
	assert_int_equal(r.rcode, KNOT_RCODE_FORMERR);
	q.opt_len = ecs(o, "203.0.113.0", 24) - 1;
	r = ask(f, &q, "192.0.2.1");
	assert_int_equal(r.rcode, KNOT_RCODE_FORMERR);
	/* A bit set past the source prefix. */
	q.opt_len = ecs(o, "203.0.113.0", 23);
	o[6] |= 1;
	r = ask(f, &q, "192.0.2.1");
	assert_int_equal(r.rcode, KNOT_RCODE_FORMERR);
	/* Two ECS options: which subnet would be chance. */
	q.opt_len = ecs(o, "203.0.113.0", 24);
	q.twice = true;
	r = ask(f, &q, "192.0.2.1");
	assert_int_equal(r.rcode, KNOT_RCODE_FORMERR);
	q.twice = false;
	/* Shorter than the fixed part. */
	q.opt_len = 3;
	r = ask(f, &q, "192.0.2.1");
	assert_int_equal(r.rcode, KNOT_RCODE_FORMERR);
	/* EDNS version 1: BADVERS, with an OPT. */
	q.opt = NULL;
	q.version = 1;
	r = ask(f, &q, "192.0.2.1");
	assert_int_equal(r.rcode, KNOT_RCODE_BADVERS);
	assert_true(r.has_opt);
	assert_int_equal(r.an, 0);
}

static void test_zone_answers(void **state)
{
	struct fx *f = *state;
	struct q q = {.name = "example.test.", .type = KNOT_RRTYPE_SOA};
	struct resp r = ask(f, &q, "192.0.2.1");
	assert_int_equal(r.an, 1);
	assert_int_equal(r.an_type, KNOT_RRTYPE_SOA);
	q.type = KNOT_RRTYPE_NS;
	r = ask(f, &q, "192.0.2.1");
	assert_int_equal(r.an_type, KNOT_RRTYPE_NS);
	assert_true(r.aa);
	/* Static glue. */
	q.name = "ns1.example.test.";
	q.type = KNOT_RRTYPE_AAAA;
	r = ask(f, &q, "192.0.2.1");
	expect_a(&r, "2001:db8::53");
	/* NODATA: the name exists, not the type; SOA with MINIMUM as TTL. */
	q.name = "www.example.test.";
	q.type = KNOT_RRTYPE_TXT;
	r = ask(f, &q, "192.0.2.1");
	assert_int_equal(r.rcode, KNOT_RCODE_NOERROR);
	assert_int_equal(r.an, 0);
	assert_int_equal(r.ns, 1);
	assert_int_equal(r.ns_type, KNOT_RRTYPE_SOA);
	assert_int_equal(r.ns_ttl, 60);
	assert_true(r.aa);
	/* An empty non-terminal is NODATA too, not NXDOMAIN. */
	q.name = "deep.example.test.";
	q.type = KNOT_RRTYPE_A;
	r = ask(f, &q, "192.0.2.1");
	assert_int_equal(r.rcode, KNOT_RCODE_NOERROR);
	assert_int_equal(r.ns, 1);
	/* NXDOMAIN, below a service name too. */
	q.name = "x.www.example.test.";
	r = ask(f, &q, "192.0.2.1");
	assert_int_equal(r.rcode, KNOT_RCODE_NXDOMAIN);
	assert_int_equal(r.ns_type, KNOT_RRTYPE_SOA);
	assert_true(r.aa);
	/* Not ours: REFUSED, not authoritative; other classes too. */
	q.name = "www.example.com.";
	r = ask(f, &q, "192.0.2.1");
	assert_int_equal(r.rcode, KNOT_RCODE_REFUSED);
	assert_false(r.aa);
	q.name = "example.test.";
	q.cls = KNOT_CLASS_CH;
	r = ask(f, &q, "192.0.2.1");
	assert_int_equal(r.rcode, KNOT_RCODE_REFUSED);
	q.cls = 0;
	/* No zone transfers. */
	q.type = KNOT_RRTYPE_AXFR;
	r = ask(f, &q, "192.0.2.1");
	assert_int_equal(r.rcode, KNOT_RCODE_REFUSED);
	/* ANY: one RRset (RFC 8482). */
	q.name = "www.example.test.";
	q.type = KNOT_RRTYPE_ANY;
	r = ask(f, &q, "203.0.113.7");
	assert_int_equal(r.an, 1);
	assert_int_equal(r.an_type, KNOT_RRTYPE_A);
}

static void set_state(struct fx *f, const char *pop, uint8_t st)
{
	atomic_store(&f->st.eff[gslb_conf_pop(f->conf, pop)], st);
	bool up4 = false, up6 = false;
	for (unsigned i = 0; i < f->conf->n_pops; i++) {
		bool up = atomic_load(&f->st.eff[i]) == GSLB_POP_UP;
		up4 |= up && f->conf->pops[i].has4;
		up6 |= up && f->conf->pops[i].has6;
	}
	atomic_store(&f->st.drained_ok[0], !up4);
	atomic_store(&f->st.drained_ok[1], !up6);
}

static void test_states(void **state)
{
	struct fx *f = *state;
	struct q q = {.name = "www.example.test.", .type = KNOT_RRTYPE_A};
	set_state(f, "fra", GSLB_POP_DRAINED);
	struct resp r = ask(f, &q, "203.0.113.7");
	expect_a(&r, "198.51.100.2"); /* next in the list: ams */
	set_state(f, "ams", GSLB_POP_DOWN);
	r = ask(f, &q, "203.0.113.7");
	expect_a(&r, "192.0.2.100"); /* list exhausted: anycast */
	/* Every PoP drained or down: drained ones answer again. */
	set_state(f, "iad", GSLB_POP_DRAINED);
	r = ask(f, &q, "203.0.113.7");
	expect_a(&r, "198.51.100.1");
	/* All down: anycast; an AAAA too. */
	set_state(f, "fra", GSLB_POP_DOWN);
	set_state(f, "iad", GSLB_POP_DOWN);
	r = ask(f, &q, "203.0.113.7");
	expect_a(&r, "192.0.2.100");
	q.type = KNOT_RRTYPE_AAAA;
	r = ask(f, &q, "203.0.113.7");
	expect_a(&r, "2001:db8::100");
	/* No anycast of the family: SERVFAIL, not a wrong answer. */
	f->conf->any6 = false;
	r = ask(f, &q, "203.0.113.7");
	assert_int_equal(r.rcode, KNOT_RCODE_SERVFAIL);
	assert_int_equal(r.an, 0);
	f->conf->any6 = true;
	for (const char *const *p = (const char *const[]){"fra", "ams", "iad", NULL}; *p; p++)
		set_state(f, *p, GSLB_POP_UP);
	/* Drained per family: with only iad (IPv4 only) up, drained PoPs
	 * answer AAAA rather than nobody. */
	set_state(f, "fra", GSLB_POP_DRAINED);
	set_state(f, "ams", GSLB_POP_DRAINED);
	q.type = KNOT_RRTYPE_AAAA;
	r = ask(f, &q, "203.0.113.7");
	expect_a(&r, "2001:db8:f::1");
	q.type = KNOT_RRTYPE_A;
	r = ask(f, &q, "203.0.113.7");
	expect_a(&r, "192.0.2.100"); /* A: iad is up but not in this list */
	set_state(f, "fra", GSLB_POP_UP);
	set_state(f, "ams", GSLB_POP_UP);
	q.type = KNOT_RRTYPE_AAAA;
	/* A PoP without an IPv6 VIP is skipped for AAAA. */
	uint8_t o[20];
	q.edns = true;
	q.opt = o;
	q.opt_len = ecs(o, "8.8.8.0", 24); /* US: iad (v4 only), then fra */
	r = ask(f, &q, "192.0.2.1");
	expect_a(&r, "2001:db8:f::1");
}

static void test_fallbacks(void **state)
{
	struct fx *f = *state;
	uint8_t o[20];
	struct q q = {.name = "www.example.test.", .type = KNOT_RRTYPE_A, .edns = true, .opt = o};
	unsigned plen = 0;
	uint8_t a[16] = {8, 8, 8, 8};
	const char *cc = geo_country(f->geo, AF_INET, a, &plen);
	assert_non_null(cc);
	assert_string_equal(cc, "US");
	/* Not in the map, a US subnet: the country's list. */
	q.opt_len = ecs(o, "8.8.8.0", 24);
	struct resp r = ask(f, &q, "192.0.2.1");
	expect_a(&r, "198.51.100.3");
	/* The scope covers the geoip range that decided. */
	assert_true(r.scope >= plen || r.scope == 24);
	assert_true(r.scope <= 24 || r.scope == plen);
	/* Private space: no country, the default list. */
	q.opt_len = ecs(o, "10.1.2.0", 24);
	r = ask(f, &q, "192.0.2.1");
	expect_a(&r, "198.51.100.2");
	/* No map at all (none loaded yet): the same fallbacks. */
	const struct gmap *m = f->view.map;
	f->view.map = NULL;
	q.opt_len = ecs(o, "203.0.113.0", 24);
	r = ask(f, &q, "192.0.2.1");
	assert_int_equal(r.rcode, KNOT_RCODE_NOERROR);
	assert_int_equal(r.an, 1);
	f->view.map = m;
}

static void test_truncation(void **state)
{
	struct fx *f = *state;
	struct q q = {.name = "many.deep.example.test.", .type = KNOT_RRTYPE_AAAA};
	struct sockaddr_storage ss;
	from4(&ss, "192.0.2.1");
	struct resp r = ask_from(f, &q, &ss, false, 4096);
	assert_int_equal(r.an, 6);
	assert_false(r.tc);
	/* Smaller room than the answer: TC, no partial answer. */
	r = ask_from(f, &q, &ss, false, 100);
	assert_true(r.tc);
	assert_int_equal(r.an, 0);
	assert_true(r.len <= 100);
	/* With EDNS the OPT still fits. */
	q.edns = true;
	r = ask_from(f, &q, &ss, false, 100);
	assert_true(r.tc);
	assert_true(r.has_opt);
	/* Over TCP the same answer is whole. */
	r = ask_from(f, &q, &ss, true, 65535);
	assert_false(r.tc);
	assert_int_equal(r.an, 6);
}

/* Every prefix of valid queries, and bytes flipped: an answer or a drop,
 * never a crash (ASan and UBSan watch), and never an answer to a response. */
static void test_garbage(void **state)
{
	struct fx *f = *state;
	uint8_t o[20], qb[1024], copy[1024], out[4096];
	struct q qs[] = {
	    {.name = "www.example.test.", .type = KNOT_RRTYPE_A},
	    {.name = "www.example.test.", .type = KNOT_RRTYPE_AAAA, .edns = true, .opt = o},
	};
	qs[1].opt_len = ecs(o, "203.0.113.0", 24);
	struct sockaddr_storage ss;
	from4(&ss, "192.0.2.1");
	struct dns_result r;
	srandom(3);
	for (unsigned k = 0; k < 2; k++) {
		size_t ql = mkquery(&qs[k], qb);
		for (size_t l = 0; l < ql; l++) {
			memcpy(copy, qb, ql);
			size_t n = dns_answer(&f->view, &f->arena, copy, l, out, sizeof(out), false,
					      &ss, &r);
			if (l < 12) {
				assert_int_equal(n, 0);
				continue;
			}
			/* A prefix of the question or the OPT: FORMERR. */
			assert_true(n >= 12);
			assert_int_equal(r.rcode, KNOT_RCODE_FORMERR);
		}
		for (int t = 0; t < 20000; t++) {
			memcpy(copy, qb, ql);
			for (int b = 0; b < 1 + t % 4; b++)
				copy[random() % ql] ^= (uint8_t)(1 + random() % 255);
			bool resp = copy[2] & 0x80;
			size_t n = dns_answer(&f->view, &f->arena, copy, ql, out, sizeof(out),
					      false, &ss, &r);
			if (resp)
				assert_int_equal(n, 0);
			if (n) {
				assert_true(n <= 1232 || n <= ql + 512);
				assert_true(out[2] & 0x80);
			}
		}
	}
	/* QR set: never answered. Opcode UPDATE: NOTIMP. Two questions: FORMERR. */
	size_t ql = mkquery(&qs[0], qb);
	memcpy(copy, qb, ql);
	copy[2] |= 0x80;
	assert_int_equal(
	    dns_answer(&f->view, &f->arena, copy, ql, out, sizeof(out), false, &ss, &r), 0);
	memcpy(copy, qb, ql);
	copy[2] = (uint8_t)((copy[2] & 0x87) | (5 << 3));
	assert_true(dns_answer(&f->view, &f->arena, copy, ql, out, sizeof(out), false, &ss, &r));
	assert_int_equal(r.rcode, KNOT_RCODE_NOTIMPL);
	memcpy(copy, qb, ql);
	copy[5] = 2;
	assert_true(dns_answer(&f->view, &f->arena, copy, ql, out, sizeof(out), false, &ss, &r));
	assert_int_equal(r.rcode, KNOT_RCODE_FORMERR);
}

static void expect_conf_error(const char *text, const char *want)
{
	struct gslb_conf *c = NULL;
	char *err = NULL;
	assert_int_equal(gslb_conf_load("bad.conf", text, &c, &err), -EINVAL);
	assert_null(c);
	assert_non_null(err);
	if (!strstr(err, want))
		fail_msg("error \"%s\" does not say \"%s\"", err, want);
	free(err);
}

static void test_bad_config(void **state)
{
	(void)state;
	char buf[4096];
	/* Each line of damage names the file and its line. */
	expect_conf_error("listen = [\"nowhere\"];\n", "bad.conf:1: listen \"nowhere\"");
	snprintf(buf, sizeof(buf), "%s\nbogus = 1;\n", conf_text);
	expect_conf_error(buf, "bogus");
	snprintf(buf, sizeof(buf), "%s", conf_text);
	char *p = strstr(buf, "default = [\"ams\"]");
	memcpy(p, "default = [\"zzz\"]", 17);
	expect_conf_error(buf, "unknown PoP \"zzz\"");
	snprintf(buf, sizeof(buf), "%s", conf_text);
	p = strstr(buf, "198.51.100.3");
	memcpy(p, "198.51.100.x", 12);
	expect_conf_error(buf, "bad.conf:11: vip4");
	snprintf(buf, sizeof(buf), "%s", conf_text);
	p = strstr(buf, "cc = \"US\"");
	memcpy(p, "cc = \"us\"", 9);
	expect_conf_error(buf, "cc \"us\"");
	expect_conf_error("listen = [\"127.0.0.1:53\"]\nmap = ", "bad.conf:");
}

static void test_xdp_config(void **state)
{
	(void)state;
	char buf[4096];
	struct gslb_conf *c = NULL;
	char *err = NULL;
	/* The XDP program takes the port every listen address shares. */
	snprintf(buf, sizeof(buf), "%sxdp = { interface = \"eth0\"; };\n", conf_text);
	assert_int_equal(gslb_conf_load("x.conf", buf, &c, &err), 0);
	assert_string_equal(c->xdp_if, "eth0");
	assert_int_equal(c->xdp_queues, 1);
	assert_int_equal(c->xdp_port, 5353);
	gslb_conf_free(c);
	c = NULL;
	assert_int_equal(gslb_conf_load("x.conf", conf_text, &c, &err), 0);
	assert_string_equal(c->xdp_if, "");
	gslb_conf_free(c);
	/* Each queue is a worker's. */
	snprintf(buf, sizeof(buf), "%sxdp = { interface = \"eth0\"; queues = 2; };\n", conf_text);
	expect_conf_error(buf, "2 queues need as many workers (workers = 1)");
	snprintf(buf, sizeof(buf), "workers = 2;\n%sxdp = { interface = \"eth0\"; queues = 2; };\n",
		 conf_text);
	assert_int_equal(gslb_conf_load("x.conf", buf, &c, &err), 0);
	assert_int_equal(c->xdp_queues, 2);
	gslb_conf_free(c);
	/* conf_text's first line is its listen: a later one replaces it */
	snprintf(buf, sizeof(buf), "%s", strchr(conf_text, '\n') + 1);
	strcat(buf, "listen = [\"127.0.0.1:5353\", \"[::1]:53\"];\n"
		    "xdp = { interface = \"eth0\"; };\n");
	expect_conf_error(buf, "share one port (5353 and 53)");
	snprintf(buf, sizeof(buf), "%s", strchr(conf_text, '\n') + 1);
	strcat(buf, "listen = [\"0.0.0.0:5353\"];\nxdp = { interface = \"eth0\"; };\n");
	expect_conf_error(buf, "xdp: listen \"0.0.0.0:5353\" is a wildcard");
	snprintf(buf, sizeof(buf), "%s", strchr(conf_text, '\n') + 1);
	strcat(buf, "listen = [\"[::]:5353\"];\nxdp = { interface = \"eth0\"; };\n");
	expect_conf_error(buf, "is a wildcard");
	snprintf(buf, sizeof(buf), "%sxdp = { interface = \"a-name-far-too-long-for-linux\"; };\n",
		 conf_text);
	expect_conf_error(buf, "bad.conf:");
	snprintf(buf, sizeof(buf), "%sxdp = { interface = \"\"; };\n", conf_text);
	expect_conf_error(buf, "is not an interface name");
	snprintf(buf, sizeof(buf), "%sxdp = { ifname = \"eth0\"; };\n", conf_text);
	expect_conf_error(buf, "ifname");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_map_answers), cmocka_unit_test(test_ecs),
	    cmocka_unit_test(test_bad_ecs),	cmocka_unit_test(test_zone_answers),
	    cmocka_unit_test(test_states),	cmocka_unit_test(test_fallbacks),
	    cmocka_unit_test(test_truncation),	cmocka_unit_test(test_garbage),
	    cmocka_unit_test(test_bad_config),	cmocka_unit_test(test_xdp_config),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
