// SPDX-License-Identifier: GPL-2.0-only
/*
 * test_xdp_answer.c - gslbd's XDP answer program (xdp/gslb_answer.bpf.c)
 * against gslbd's own answer (dns.c), through BPF_PROG_TEST_RUN. Needs
 * root.
 *
 * For generated queries (names, types, flags, EDNS, ECS of both families
 * and every length, resolvers of both families) and for mutated and cut
 * ones, over random maps and PoP states: when the program answers
 * (XDP_TX) its DNS message must be byte for byte dns_answer's for the
 * same query and source, in a frame turned round with valid checksums;
 * when it passes, the frame must be untouched. Also: the rate limiter's
 * drops and slips, a map change, a map too big for the program, and that
 * the common shapes really are answered here (not all passed on).
 */
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <errno.h>
#include <linux/bpf.h>
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
#include "gslb_xdp.h"
#include "inet_csum.h"
#include "map.h"
#include "xdp_answer.h"

static const char *conf_text =
    "listen = [\"192.0.2.53:53\", \"[2001:db8::53]:53\"];\n"
    "map = \"/nonexistent/map\";\n"
    "xdp = { interface = \"lo\"; mode = \"answer\"; };\n"
    "zones = ( { name = \"example.test\"; ttl = 30;\n"
    "  soa = { mname = \"ns1\"; rname = \"hostmaster\"; serial = 7; minimum = 60; };\n"
    "  ns = [\"ns1\"]; services = [\"www\", \"api.eu\", \"a.b.c.d.e.f.g.h.i.j.k.l.m.n\"];\n"
    "  records = ( { name = \"ns1\"; a = [\"192.0.2.53\"]; } ); },\n"
    "  { name = \"eu.example.test\"; ttl = 20;\n"
    "  soa = { mname = \"ns1\"; rname = \"hostmaster\"; serial = 7; minimum = 60; };\n"
    "  ns = [\"ns1\"]; services = [\"cdn\"]; } );\n"
    "pops = ( { name = \"fra\"; vip4 = \"198.51.100.1\"; vip6 = \"2001:db8:f::1\"; },\n"
    "         { name = \"ams\"; vip4 = \"198.51.100.2\"; vip6 = \"2001:db8:a::1\"; },\n"
    "         { name = \"iad\"; vip4 = \"198.51.100.3\"; },\n"
    "         { name = \"sin\"; vip6 = \"2001:db8:5::1\"; } );\n"
    "default = [\"ams\"];\n"
    "anycast = { vip4 = \"192.0.2.100\"; vip6 = \"2001:db8::100\"; };\n";

static const char *const pop_names[] = {"fra", "ams", "iad", "sin", "xyz" /* not configured */};

struct fx {
	struct gslb_conf *conf;
	struct gmap *map;
	void *img;
	struct gslb_states st;
	struct gslb_view view;
	struct dns_arena arena;
	struct gslb_xa *xa;
	uint64_t rng;
};

static uint32_t rnd(struct fx *f)
{
	f->rng ^= f->rng << 13;
	f->rng ^= f->rng >> 7;
	f->rng ^= f->rng << 17;
	return (uint32_t)(f->rng >> 11);
}

/* A random map: prefixes of every length, overlapping, lists of 1..4. */
static void make_map(struct fx *f, unsigned n)
{
	struct gmap_builder *b = gmap_builder_new();
	assert_non_null(b);
	for (unsigned i = 0; i < 5; i++)
		assert_int_equal(gmap_builder_pop(b, pop_names[i]), (int)i);
	for (unsigned i = 0; i < n; i++) {
		int v6 = rnd(f) & 1;
		uint8_t a[16];
		for (int j = 0; j < 16; j++)
			a[j] = (uint8_t)rnd(f);
		/* Cluster them so that prefixes nest and clients hit them. */
		a[0] = v6 ? 0x20 : (uint8_t)(rnd(f) % 4 + 1);
		if (v6)
			a[1] = (uint8_t)(rnd(f) % 2);
		unsigned plen = v6 ? 8 + rnd(f) % 121 : 6 + rnd(f) % 27;
		if (rnd(f) % 64 == 0)
			plen = 0;
		uint8_t l[4], used = 0;
		unsigned nl = 1 + rnd(f) % 4;
		for (unsigned k = 0; k < nl;) {
			uint8_t p = (uint8_t)(rnd(f) % 5);
			if (used & (1u << p))
				continue;
			used |= (uint8_t)(1u << p);
			l[k++] = p;
		}
		assert_int_equal(gmap_builder_add(b, v6 ? AF_INET6 : AF_INET, a, plen, l, nl), 0);
	}
	size_t len;
	gmap_close(f->map);
	free(f->img);
	char *err = NULL;
	assert_int_equal(gmap_builder_serialize(b, NULL, true, &f->img, &len), 0);
	gmap_builder_free(b);
	assert_int_equal(gmap_parse(f->img, len, &f->map, &err), 0);
	gslb_view_set_map(&f->view, f->map);
}

/* PoP states as gslbd's states_apply sets them. */
static void set_states(struct fx *f, const uint8_t *eff)
{
	bool up4 = false, up6 = false;
	for (unsigned i = 0; i < f->conf->n_pops; i++) {
		atomic_store(&f->st.eff[i], eff[i]);
		up4 |= eff[i] == GSLB_POP_UP && f->conf->pops[i].has4;
		up6 |= eff[i] == GSLB_POP_UP && f->conf->pops[i].has6;
	}
	atomic_store(&f->st.drained_ok[0], !up4);
	atomic_store(&f->st.drained_ok[1], !up6);
}

static int setup_caps(void **state, uint32_t nodes, uint32_t lists)
{
	struct fx *f = calloc(1, sizeof(*f));
	char *err = NULL;
	if (gslb_conf_load("test.conf", conf_text, &f->conf, &err)) {
		fprintf(stderr, "%s\n", err);
		return -1;
	}
	f->rng = 0x9e3779b97f4a7c15ULL;
	f->view = (struct gslb_view){.conf = f->conf, .states = &f->st};
	assert_int_equal(dns_arena_init(&f->arena, 1 << 20), 0);
	int rc = gslb_xa_open(nodes, lists, &f->xa, &err);
	if (rc) {
		fprintf(stderr, "%s\n", err ? err : "?");
		free(err);
		return -1;
	}
	make_map(f, 400);
	uint8_t up[GMAP_MAX_POPS] = {0};
	set_states(f, up);
	assert_int_equal(gslb_xa_sync(f->xa, &f->view, &err), 0);
	*state = f;
	return 0;
}

static int setup(void **state)
{
	return setup_caps(state, 1 << 16, 1 << 12);
}

static int teardown(void **state)
{
	struct fx *f = *state;
	gslb_xa_close(f->xa);
	gslb_conf_free(f->conf);
	gmap_close(f->map);
	free(f->img);
	dns_arena_fini(&f->arena);
	free(f);
	return 0;
}

/* ---- frames ---- */

#define ETH 14

struct frame {
	uint8_t b[2048];
	size_t len;
	bool v6;
	uint8_t src[16];
	uint16_t sport;
	size_t dns_off;
};

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

/* Wrap a DNS message in Ethernet, IP and UDP to the listen address. */
static void wrap(struct frame *fr, const uint8_t *dns, size_t dlen, bool v6, const uint8_t *src,
		 uint16_t sport)
{
	memset(fr, 0, sizeof(*fr));
	uint8_t *b = fr->b;
	static const uint8_t mac_us[6] = {2, 0, 0, 0, 0, 1}, mac_peer[6] = {2, 0, 0, 0, 0, 2};
	memcpy(b, mac_us, 6);
	memcpy(b + 6, mac_peer, 6);
	size_t ip = ETH, udp;
	uint8_t dst[16];
	if (v6) {
		put16(b + 12, 0x86dd);
		b[ip] = 0x60;
		put16(b + ip + 4, (uint16_t)(8 + dlen));
		b[ip + 6] = 17;
		b[ip + 7] = 64;
		memcpy(b + ip + 8, src, 16);
		inet_pton(AF_INET6, "2001:db8::53", dst);
		memcpy(b + ip + 24, dst, 16);
		udp = ip + 40;
	} else {
		put16(b + 12, 0x0800);
		b[ip] = 0x45;
		put16(b + ip + 2, (uint16_t)(28 + dlen));
		b[ip + 8] = 64;
		b[ip + 9] = 17;
		memcpy(b + ip + 12, src, 4);
		inet_pton(AF_INET, "192.0.2.53", dst);
		memcpy(b + ip + 16, dst, 4);
		put16(b + ip + 10, (uint16_t)~inet_fold(inet_sum16(b + ip, 20, 0)));
		udp = ip + 20;
	}
	put16(b + udp, sport);
	put16(b + udp + 2, 53);
	put16(b + udp + 4, (uint16_t)(8 + dlen));
	memcpy(b + udp + 8, dns, dlen);
	fr->len = udp + 8 + dlen;
	fr->v6 = v6;
	memcpy(fr->src, src, v6 ? 16 : 4);
	fr->sport = sport;
	fr->dns_off = udp + 8;
}

/* ---- queries ---- */

struct qspec {
	const char *name; /* dotted, no final dot */
	uint16_t type;
	uint8_t flags2, flags3;
	int edns; /* 0 none, 1 OPT */
	uint8_t version;
	int ecs_fam; /* 0 none */
	unsigned ecs_src;
	uint8_t ecs_addr[16];
	bool other_opt;
	bool upper; /* some letters upper case */
};

static size_t build_query(struct fx *f, const struct qspec *q, uint8_t *out)
{
	size_t n = 0;
	put16(out, (uint16_t)rnd(f));
	out[2] = q->flags2;
	out[3] = q->flags3;
	put16(out + 4, 1);
	put16(out + 6, 0);
	put16(out + 8, 0);
	put16(out + 10, q->edns ? 1 : 0);
	n = 12;
	const char *s = q->name;
	while (*s) {
		const char *dot = strchr(s, '.');
		size_t l = dot ? (size_t)(dot - s) : strlen(s);
		out[n++] = (uint8_t)l;
		for (size_t i = 0; i < l; i++) {
			char c = s[i];
			if (q->upper && (rnd(f) & 1) && c >= 'a' && c <= 'z')
				c = (char)(c - 32);
			out[n++] = (uint8_t)c;
		}
		s += l + (dot ? 1 : 0);
	}
	out[n++] = 0;
	put16(out + n, q->type);
	put16(out + n + 2, 1);
	n += 4;
	if (q->edns) {
		out[n] = 0;
		put16(out + n + 1, 41);
		put16(out + n + 3, (uint16_t)(512 + rnd(f) % 4000));
		out[n + 5] = 0;
		out[n + 6] = q->version;
		put16(out + n + 7, (rnd(f) & 1) ? 0x8000 : 0); /* DO sometimes */
		size_t rd = n + 9;
		n += 11;
		if (q->ecs_fam) {
			unsigned bytes = (q->ecs_src + 7) / 8;
			put16(out + n, 8);
			put16(out + n + 2, (uint16_t)(4 + bytes));
			put16(out + n + 4, (uint16_t)q->ecs_fam);
			out[n + 6] = (uint8_t)q->ecs_src;
			out[n + 7] = 0;
			memcpy(out + n + 8, q->ecs_addr, bytes);
			n += 8 + bytes;
		}
		if (q->other_opt) {
			put16(out + n, 10); /* COOKIE */
			put16(out + n + 2, 8);
			memset(out + n + 4, 0x5a, 8);
			n += 12;
		}
		put16(out + rd, (uint16_t)(n - rd - 2));
	}
	return n;
}

static void random_spec(struct fx *f, struct qspec *q)
{
	static const char *const names[] = {
	    "www.example.test", "api.eu.example.test", "cdn.eu.example.test", "ns1.example.test",
	    "example.test",	"nope.example.test",   "www.other.test"};
	memset(q, 0, sizeof(*q));
	unsigned r = rnd(f) % 16;
	q->name = r < 10 ? names[0] : names[rnd(f) % 7];
	static const uint16_t types[] = {1, 28, 1, 28, 255, 2, 6, 16};
	q->type = types[rnd(f) % 8];
	q->flags2 = (rnd(f) % 4 == 0) ? (uint8_t)rnd(f) : (rnd(f) & 1);
	q->flags3 = (rnd(f) % 4 == 0) ? (uint8_t)rnd(f) : 0;
	q->edns = rnd(f) % 5 != 0;
	q->version = rnd(f) % 20 == 0;
	q->upper = rnd(f) % 4 == 0;
	if (q->edns && rnd(f) % 4 != 0) {
		q->ecs_fam = rnd(f) % 2 ? 1 : 2;
		unsigned max = q->ecs_fam == 1 ? 32 : 128;
		q->ecs_src = rnd(f) % 6 == 0 ? 0 : rnd(f) % (max + 1);
		for (int i = 0; i < 16; i++)
			q->ecs_addr[i] = (uint8_t)rnd(f);
		q->ecs_addr[0] = q->ecs_fam == 1 ? (uint8_t)(rnd(f) % 4 + 1) : 0x20;
		if (q->ecs_fam == 2)
			q->ecs_addr[1] = (uint8_t)(rnd(f) % 2);
		/* Trailing bits zero, as RFC 7871 wants - mostly. */
		if (q->ecs_src % 8 && rnd(f) % 10)
			q->ecs_addr[q->ecs_src / 8] &= (uint8_t)(0xff00 >> (q->ecs_src % 8));
		for (unsigned i = (q->ecs_src + 7) / 8; i < 16; i++)
			q->ecs_addr[i] = 0;
	}
	q->other_opt = q->edns && rnd(f) % 10 == 0;
}

static void random_source(struct fx *f, bool v6, uint8_t *src)
{
	for (int i = 0; i < 16; i++)
		src[i] = (uint8_t)rnd(f);
	if (v6) {
		src[0] = 0x20;
		src[1] = (uint8_t)(rnd(f) % 2);
	} else {
		src[0] = (uint8_t)(rnd(f) % 4 + 1);
	}
}

/* ---- running and checking ---- */

struct tally {
	unsigned tx, pass, drop;
};

static int run(struct fx *f, const struct frame *in, struct frame *out)
{
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = in->b, .data_size_in = (uint32_t)in->len,
		    .data_out = out->b, .data_size_out = sizeof(out->b), .repeat = 1);
	assert_int_equal(bpf_prog_test_run_opts(gslb_xa_prog_fd(f->xa), &o), 0);
	out->len = o.data_size_out;
	return (int)o.retval;
}

/* What gslbd's socket path would send for this frame's query. */
static size_t user_answer_res(struct fx *f, const struct frame *in, uint8_t *resp,
			      struct dns_result *r)
{
	struct sockaddr_storage from = {0};
	if (in->v6) {
		struct sockaddr_in6 *s6 = (void *)&from;
		s6->sin6_family = AF_INET6;
		memcpy(&s6->sin6_addr, in->src, 16);
		s6->sin6_port = htons(in->sport);
	} else {
		struct sockaddr_in *s4 = (void *)&from;
		s4->sin_family = AF_INET;
		memcpy(&s4->sin_addr, in->src, 4);
		s4->sin_port = htons(in->sport);
	}
	uint8_t q[2048];
	size_t qlen = in->len - in->dns_off;
	memcpy(q, in->b + in->dns_off, qlen);
	return dns_answer(&f->view, &f->arena, q, qlen, resp, 4096, false, &from, r);
}

static size_t user_answer(struct fx *f, const struct frame *in, uint8_t *resp, bool *drop)
{
	struct dns_result r;
	size_t n = user_answer_res(f, in, resp, &r);
	*drop = r.drop;
	return n;
}

/* An answered frame: turned round, lengths and checksums right; returns
 * the DNS message's offset. */
static size_t check_turned(const struct frame *in, const struct frame *out)
{
	const uint8_t *a = in->b, *b = out->b;
	assert_memory_equal(b, a + 6, 6);
	assert_memory_equal(b + 6, a, 6);
	size_t udp;
	uint32_t ps;
	if (in->v6) {
		assert_memory_equal(b + ETH + 8, a + ETH + 24, 16);
		assert_memory_equal(b + ETH + 24, a + ETH + 8, 16);
		udp = ETH + 40;
		assert_int_equal(get16(b + ETH + 4), out->len - udp);
		ps = inet_sum16(b + ETH + 8, 32, 0) + 17 + (uint32_t)(out->len - udp);
	} else {
		assert_memory_equal(b + ETH + 12, a + ETH + 16, 4);
		assert_memory_equal(b + ETH + 16, a + ETH + 12, 4);
		assert_int_equal(inet_fold(inet_sum16(b + ETH, 20, 0)), 0xffff);
		udp = ETH + 20;
		assert_int_equal(get16(b + ETH + 2), out->len - ETH);
		ps = inet_sum16(b + ETH + 12, 8, 0) + 17 + (uint32_t)(out->len - udp);
	}
	assert_int_equal(get16(b + udp), get16(a + in->dns_off - 6));
	assert_int_equal(get16(b + udp + 2), get16(a + in->dns_off - 8));
	assert_int_equal(get16(b + udp + 4), out->len - udp);
	assert_int_not_equal(get16(b + udp + 6), 0);
	assert_int_equal(inet_fold(ps + inet_sum16(b + udp, out->len - udp, 0)), 0xffff);
	return udp + 8;
}

/* Run one frame and hold the program to gslbd's answer. */
static int check_frame(struct fx *f, const struct frame *in, struct tally *t)
{
	struct frame out;
	int rc = run(f, in, &out);
	if (rc == XDP_PASS) {
		assert_int_equal(out.len, in->len);
		assert_memory_equal(out.b, in->b, in->len);
		t->pass++;
		return rc;
	}
	assert_int_equal(rc, XDP_TX);
	t->tx++;
	size_t off = check_turned(in, &out);
	uint8_t resp[4096];
	bool drop;
	size_t n = user_answer(f, in, resp, &drop);
	assert_false(drop);
	if (out.len - off != n || memcmp(out.b + off, resp, n)) {
		fprintf(stderr, "program (%zu bytes) and gslbd (%zu bytes) differ:\n",
			out.len - off, n);
		for (size_t i = 0; i < (n > out.len - off ? n : out.len - off); i++)
			fprintf(stderr, "%3zu %02x %02x%s\n", i,
				i < out.len - off ? out.b[off + i] : 0, i < n ? resp[i] : 0,
				(i < n && i < out.len - off && resp[i] == out.b[off + i]) ? ""
											  : " <");
		fail();
	}
	return rc;
}

/* The shape the program is for: must it have answered this query? */
static bool common_shape(const struct qspec *q)
{
	return !strcmp(q->name, "www.example.test") && (q->type == 1 || q->type == 28) &&
	       q->flags2 <= 1 && !(q->flags3 & 0x0f) && !q->version && !q->other_opt;
}

static void random_states(struct fx *f)
{
	uint8_t eff[GMAP_MAX_POPS] = {0};
	for (unsigned i = 0; i < f->conf->n_pops; i++) {
		unsigned r = rnd(f) % 6;
		eff[i] = r < 4 ? GSLB_POP_UP : r == 4 ? GSLB_POP_DRAINED : GSLB_POP_DOWN;
	}
	set_states(f, eff);
	gslb_xa_states(f->xa, &f->view);
}

static void test_generated_queries(void **state)
{
	struct fx *f = *state;
	struct tally t = {0};
	unsigned must = 0;
	uint8_t dns[1024], src[16];
	for (unsigned round = 0; round < 8; round++) {
		if (round) {
			make_map(f, 200 + rnd(f) % 800);
			char *err = NULL;
			assert_int_equal(gslb_xa_sync(f->xa, &f->view, &err), 0);
		}
		random_states(f);
		for (unsigned i = 0; i < 4000; i++) {
			struct qspec q;
			random_spec(f, &q);
			size_t n = build_query(f, &q, dns);
			bool v6 = rnd(f) & 1;
			random_source(f, v6, src);
			struct frame fr;
			wrap(&fr, dns, n, v6, src, (uint16_t)(1024 + rnd(f) % 60000));
			int rc = check_frame(f, &fr, &t);
			/* A query of the common shape that the map answers with a
			 * PoP that is up must be answered here, not passed on. */
			uint8_t resp[4096];
			struct dns_result r;
			user_answer_res(f, &fr, resp, &r);
			if (common_shape(&q) && r.how == GSLB_HOW_MAP && r.pop != GSLB_NO_POP &&
			    f->st.eff[r.pop] == GSLB_POP_UP && r.rcode == 0) {
				must++;
				assert_int_equal(rc, XDP_TX);
			}
		}
	}
	fprintf(stderr, "generated: %u answered by the program (%u had to be), %u passed on\n",
		t.tx, must, t.pass);
	assert_true(must > 2000);
	assert_true(t.pass > 32000 / 10);
}

static void test_mutated_queries(void **state)
{
	struct fx *f = *state;
	struct tally t = {0};
	uint8_t dns[1024], src[16];
	for (unsigned i = 0; i < 40000; i++) {
		struct qspec q;
		random_spec(f, &q);
		q.name = "www.example.test";
		size_t n = build_query(f, &q, dns);
		unsigned m = rnd(f) % 6;
		if (m == 0 && n > 1) {
			n = rnd(f) % n; /* cut */
		} else if (m == 4) {
			for (unsigned k = 1 + rnd(f) % 8; k; k--) /* bytes after the message */
				dns[n++] = (uint8_t)rnd(f);
		} else if (m == 5) {
			put16(dns + 10, (uint16_t)(rnd(f) % 3)); /* ARCOUNT 0 to 2 */
		} else {
			for (unsigned k = 0; k < m; k++) /* flip 1 to 3 bytes */
				dns[rnd(f) % n] ^= (uint8_t)(1 + rnd(f) % 255);
		}
		bool v6 = rnd(f) & 1;
		random_source(f, v6, src);
		struct frame fr;
		wrap(&fr, dns, n, v6, src, 5353);
		if (rnd(f) % 8 == 0) { /* lie in the IP or UDP length */
			size_t at = v6 ? ETH + 4 : ETH + 2;
			if (rnd(f) & 1)
				at = fr.dns_off - 4;
			put16(fr.b + at, (uint16_t)(get16(fr.b + at) + (rnd(f) % 9) - 4));
			if (!v6 && at == ETH + 2) { /* a lie with a good header checksum */
				put16(fr.b + ETH + 10, 0);
				put16(fr.b + ETH + 10,
				      (uint16_t)~inet_fold(inet_sum16(fr.b + ETH, 20, 0)));
			}
			/* Lengths that disagree: never answered, passed untouched. */
			if (get16(fr.b + at) !=
			    (at == fr.dns_off - 4 ? n + 8 : n + 8 + (v6 ? 0 : 20))) {
				struct frame out;
				assert_int_equal(run(f, &fr, &out), XDP_PASS);
				assert_int_equal(out.len, fr.len);
				assert_memory_equal(out.b, fr.b, fr.len);
				t.pass++;
				continue;
			}
		}
		check_frame(f, &fr, &t);
	}
	fprintf(stderr, "mutated: %u answered by the program, %u passed on\n", t.tx, t.pass);
	assert_true(t.tx > 500);
}

static struct frame common_query(struct fx *f, const char *ecs_net, unsigned src_len)
{
	struct qspec q = {
	    .name = "www.example.test", .type = 1, .edns = 1, .ecs_fam = 1, .ecs_src = src_len};
	inet_pton(AF_INET, ecs_net, q.ecs_addr);
	uint8_t dns[512], src[4] = {192, 0, 2, 77};
	size_t n = build_query(f, &q, dns);
	struct frame fr;
	wrap(&fr, dns, n, false, src, 4444);
	return fr;
}

static void map_with_default(struct fx *f, uint8_t first);

/* Frames the kernel would drop or that would be answered to a group: a
 * bad IPv4 header checksum, a group source MAC, a byte after the
 * question. All passed untouched; the well-made one is answered. */
static void test_odd_frames(void **state)
{
	struct fx *f = *state;
	map_with_default(f, 0);
	uint8_t up[GMAP_MAX_POPS] = {0};
	set_states(f, up);
	char *err = NULL;
	assert_int_equal(gslb_xa_sync(f->xa, &f->view, &err), 0);
	struct frame good = common_query(f, "10.1.2.0", 24), out;
	assert_int_equal(run(f, &good, &out), XDP_TX);
	struct frame bad[3];
	bad[0] = good;
	bad[0].b[ETH + 10] ^= 0x40; /* header checksum */
	bad[1] = good;
	bad[1].b[6] |= 1; /* source MAC: a group */
	/* The question then one byte, no OPT record: FORMERR, gslbd's. */
	struct qspec q = {.name = "www.example.test", .type = 1};
	uint8_t dns[512], src[4] = {192, 0, 2, 77};
	size_t n = build_query(f, &q, dns);
	dns[n++] = 0;
	wrap(&bad[2], dns, n, false, src, 4444);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(run(f, &bad[i], &out), XDP_PASS);
		assert_int_equal(out.len, bad[i].len);
		assert_memory_equal(out.b, bad[i].b, bad[i].len);
	}
	/* A service name of 16 labels, the most the program walks, is its. */
	q.name = "a.b.c.d.e.f.g.h.i.j.k.l.m.n.example.test";
	n = build_query(f, &q, dns);
	struct frame deep;
	wrap(&deep, dns, n, false, src, 4444);
	struct tally t = {0};
	assert_int_equal(check_frame(f, &deep, &t), XDP_TX);
}

/* A /0 entry makes every client a map client: the answer is the map's. */
static void map_with_default(struct fx *f, uint8_t first)
{
	struct gmap_builder *b = gmap_builder_new();
	for (unsigned i = 0; i < 5; i++)
		gmap_builder_pop(b, pop_names[i]);
	uint8_t a[16] = {0}, l[2] = {first, (uint8_t)(first == 0 ? 1 : 0)};
	assert_int_equal(gmap_builder_add(b, AF_INET, a, 0, l, 2), 0);
	size_t len;
	char *err = NULL;
	gmap_close(f->map);
	free(f->img);
	assert_int_equal(gmap_builder_serialize(b, NULL, true, &f->img, &len), 0);
	gmap_builder_free(b);
	assert_int_equal(gmap_parse(f->img, len, &f->map, &err), 0);
	f->view.map = f->map;
	for (unsigned i = 0; i < 5; i++)
		f->view.map_pop[i] = (uint8_t)(i < 4 ? i : GSLB_NO_POP);
	assert_int_equal(gslb_xa_sync(f->xa, &f->view, &err), 0);
}

static const uint8_t *answer_vip(const struct frame *out)
{
	/* IPv4, www.example.test, A: header 12 + name 18 + 4, then the RR. */
	return out->b + ETH + 28 + 12 + 18 + 4 + 12;
}

static void test_map_change_and_drain(void **state)
{
	struct fx *f = *state;
	uint8_t up[GMAP_MAX_POPS] = {0};
	set_states(f, up);
	gslb_xa_states(f->xa, &f->view);
	struct tally t = {0};
	map_with_default(f, 0); /* fra first */
	struct frame fr = common_query(f, "10.1.2.0", 24), out;
	check_frame(f, &fr, &t);
	assert_int_equal(run(f, &fr, &out), XDP_TX);
	assert_memory_equal(answer_vip(&out), ((uint8_t[]){198, 51, 100, 1}), 4);
	map_with_default(f, 1); /* ams first */
	assert_int_equal(run(f, &fr, &out), XDP_TX);
	assert_memory_equal(answer_vip(&out), ((uint8_t[]){198, 51, 100, 2}), 4);
	check_frame(f, &fr, &t);
	/* ams drained: fra, the next of the list, answers. */
	up[1] = GSLB_POP_DRAINED;
	set_states(f, up);
	gslb_xa_states(f->xa, &f->view);
	assert_int_equal(run(f, &fr, &out), XDP_TX);
	assert_memory_equal(answer_vip(&out), ((uint8_t[]){198, 51, 100, 1}), 4);
	check_frame(f, &fr, &t);
	/* Both down: gslbd's anycast fail-open, not the program's. */
	up[0] = GSLB_POP_DOWN;
	set_states(f, up);
	gslb_xa_states(f->xa, &f->view);
	assert_int_equal(run(f, &fr, &out), XDP_PASS);
	assert_int_equal(t.tx, 3);
}

static void test_rate_limit(void **state)
{
	struct fx *f = *state;
	uint8_t up[GMAP_MAX_POPS] = {0};
	set_states(f, up);
	map_with_default(f, 0);
	f->conf->rrl =
	    (struct gslb_rrl){.rate = 1, .burst = 5, .slip = 2, .v4_prefix = 24, .v6_prefix = 56};
	char *err = NULL;
	assert_int_equal(gslb_xa_sync(f->xa, &f->view, &err), 0);
	struct frame fr = common_query(f, "10.9.9.0", 24), out;
	unsigned full = 0, tc = 0, dropped = 0;
	for (int i = 0; i < 25; i++) {
		int rc = run(f, &fr, &out);
		if (rc == XDP_DROP) {
			dropped++;
			continue;
		}
		assert_int_equal(rc, XDP_TX);
		size_t off = check_turned(&fr, &out);
		if (out.b[off + 2] & 0x02) {
			/* A slip: the header and question of gslbd's answer. */
			uint8_t resp[4096];
			bool drop;
			size_t n = user_answer(f, &fr, resp, &drop);
			/* header 12 + www.example.test 18 + type and class 4 */
			struct dns_result r = {.qend = 34};
			(void)n;
			size_t tl = dns_truncate(resp, &r);
			assert_int_equal(out.len - off, tl);
			assert_memory_equal(out.b + off, resp, tl);
			tc++;
		} else {
			full++;
		}
	}
	fprintf(stderr, "rate limit: %u answered, %u slipped, %u dropped\n", full, tc, dropped);
	/* The burst, then every second limited query slips. (One more token
	 * may come in while the test runs: rate 1/s.) */
	assert_true(full >= 5 && full <= 6);
	assert_true(tc >= 9 && dropped >= 9);
	/* Another /24 has its own bucket. */
	struct frame other = common_query(f, "10.9.9.0", 24);
	other.b[ETH + 12 + 2] = 3; /* source 192.0.3.77 */
	other.b[ETH + 10] = other.b[ETH + 11] = 0;
	put16(other.b + ETH + 10, (uint16_t)~inet_fold(inet_sum16(other.b + ETH, 20, 0)));
	assert_int_equal(run(f, &other, &out), XDP_TX);
	f->conf->rrl.rate = 0;
	assert_int_equal(gslb_xa_sync(f->xa, &f->view, &err), 0);
}

static void test_map_too_big(void **state)
{
	(void)state;
	void *st = NULL;
	assert_int_equal(setup_caps(&st, 1 << 16, 1 << 12), 0);
	struct fx *f = st;
	gslb_xa_close(f->xa);
	char *err = NULL;
	assert_int_equal(gslb_xa_open(8, 1 << 12, &f->xa, &err), 0);
	make_map(f, 400);
	assert_int_equal(gslb_xa_sync(f->xa, &f->view, &err), -E2BIG);
	assert_non_null(strstr(err, "tables"));
	free(err);
	assert_false(gslb_xa_loaded(f->xa));
	struct frame fr = common_query(f, "1.2.3.0", 24), out;
	assert_int_equal(run(f, &fr, &out), XDP_PASS);
	uint64_t c[GX_COUNTERS];
	assert_int_equal(gslb_xa_counters(f->xa, c), 0);
	assert_true(c[GX_PASS_BUSY] >= 1);
	assert_int_equal(c[GX_ANSWERED], 0);
	teardown(&st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_generated_queries, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_mutated_queries, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_map_change_and_drain, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rate_limit, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_odd_frames, setup, teardown),
	    cmocka_unit_test(test_map_too_big),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
