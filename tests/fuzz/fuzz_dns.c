// SPDX-License-Identifier: GPL-2.0-only
/*
 * libFuzzer target for gslbd's query path (gslb/dns.c): the input is one
 * DNS message as a client could send it. Its first byte picks the
 * transport (UDP or TCP) and the source address family; the rest is the
 * message, answered against a fixed configuration and an in-memory map,
 * as the server does.
 *
 * Besides the sanitizers it checks what a client relies on: a message
 * with QR set is never answered (no loops between servers), a response
 * is a response to this query (QR, same ID), it parses as DNS, and over
 * UDP it is never bigger than 512 bytes or the EDNS payload both sides
 * allow (no amplification past what the client asked for). A broken
 * invariant traps.
 *
 * Build and run with tests/fuzz/run_fuzz_dns.sh.
 */
#include <arpa/inet.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "dns.h"
#include "map.h"

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond))                                                                       \
			__builtin_trap();                                                          \
	} while (0)

static const char *conf_text =
    "listen = [\"127.0.0.1:53\"];\n"
    "map = \"/nonexistent\";\n"
    "zones = ( { name = \"example.test\"; soa = { mname = \"ns1\"; rname = \"h\"; };\n"
    "  ns = [\"ns1\", \"ns2.example.net.\"]; services = [\"www\", \"@\"];\n"
    "  records = ( { name = \"ns1\"; a = [\"192.0.2.53\"]; aaaa = [\"2001:db8::53\"]; } ); },\n"
    "  { name = \"sub.example.test\"; soa = { mname = \"ns1\"; rname = \"h\"; }; ns = [\"ns1\"];\n"
    "    services = [\"api\"]; } );\n"
    "pops = ( { name = \"a\"; vip4 = \"198.51.100.1\"; vip6 = \"2001:db8::1\"; },\n"
    "         { name = \"b\"; vip4 = \"198.51.100.2\"; } );\n"
    "default = [\"b\", \"a\"];\n"
    "anycast = { vip4 = \"192.0.2.100\"; };\n";

static struct gslb_conf *conf;
static struct gmap *map;
static struct gslb_states states;
static struct gslb_view view;
static struct dns_arena arena;

static void init(void)
{
	char *err = NULL;
	if (gslb_conf_load("fuzz.conf", conf_text, &conf, &err))
		__builtin_trap();
	struct gmap_builder *b = gmap_builder_new();
	uint8_t l[] = {(uint8_t)gmap_builder_pop(b, "a"), (uint8_t)gmap_builder_pop(b, "b")};
	uint8_t a4[16] = {203, 0, 113, 0}, a6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 1};
	gmap_builder_add(b, AF_INET, a4, 24, l, 2);
	gmap_builder_add(b, AF_INET, a4, 25, l + 1, 1);
	gmap_builder_add(b, AF_INET6, a6, 48, l, 1);
	void *img;
	size_t len;
	if (gmap_builder_serialize(b, NULL, true, &img, &len) || gmap_parse(img, len, &map, &err))
		__builtin_trap();
	gmap_builder_free(b);
	view = (struct gslb_view){.conf = conf, .map = map, .states = &states};
	memset(view.map_pop, GSLB_NO_POP, sizeof(view.map_pop));
	view.map_pop[0] = 0;
	view.map_pop[1] = 1;
	atomic_store(&states.eff[1], GSLB_POP_DRAINED);
	if (dns_arena_init(&arena, 1 << 20))
		__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t q[65536], out[65535];
	if (!conf)
		init();
	if (size < 1 || size > 65536)
		return 0;
	bool tcp = data[0] & 1, v6 = data[0] & 2;
	size_t ql = size - 1;
	memcpy(q, data + 1, ql);
	struct sockaddr_storage from = {0};
	if (v6) {
		struct sockaddr_in6 *s = (void *)&from;
		s->sin6_family = AF_INET6;
		memcpy(&s->sin6_addr, data, size < 17 ? size : 16);
	} else {
		struct sockaddr_in *s = (void *)&from;
		s->sin_family = AF_INET;
		s->sin_addr.s_addr = htonl(0xcb007100 | data[0]);
	}
	struct dns_result r;
	size_t n = dns_answer(&view, &arena, q, ql, out, tcp ? sizeof(out) : 4096, tcp, &from, &r);
	bool was_response = ql >= 3 && (data[1 + 2] & 0x80);
	if (ql < 12 || was_response) {
		CHECK(n == 0);
		return 0;
	}
	if (!n)
		return 0;
	CHECK(n >= 12);
	CHECK(out[2] & 0x80);			       /* QR */
	CHECK(out[0] == data[1] && out[1] == data[2]); /* ID */
	if (!tcp) {
		/* The EDNS payload the client offered bounds it, down to 512. */
		CHECK(n <= 1232);
	}
	/* What we send is DNS. */
	knot_pkt_t *p = knot_pkt_new(out, (uint16_t)n, NULL);
	CHECK(p != NULL);
	if (r.qend > 12)
		CHECK(knot_pkt_parse(p, 0) == KNOT_EOK);
	knot_pkt_free(p);
	/* The truncated form (the rate limiter's slip) is a valid header. */
	size_t t = dns_truncate(out, &r);
	CHECK(t >= 12 && t <= n);
	return 0;
}
