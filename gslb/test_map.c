// SPDX-License-Identifier: GPL-2.0-only
/*
 * test_map.c - the map file: longest-prefix match over IPv4 and IPv6
 * (with /0, /32, /128 and nested prefixes), the RFC 7871 scope a lookup
 * reports, pruning, and the loader refusing every kind of damaged file.
 * A brute-force matcher over the same prefixes is the reference.
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
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "map.h"

struct pfx {
	int family;
	uint8_t a[16];
	unsigned plen;
	uint8_t list[GMAP_LIST_MAX];
	unsigned n;
};

static void parse(const char *cidr, struct pfx *p)
{
	char buf[64];
	snprintf(buf, sizeof(buf), "%s", cidr);
	char *slash = strchr(buf, '/');
	assert_non_null(slash);
	*slash = 0;
	p->plen = atoi(slash + 1);
	memset(p->a, 0, 16);
	p->family = strchr(buf, ':') ? AF_INET6 : AF_INET;
	assert_int_equal(inet_pton(p->family, buf, p->a), 1);
}

static struct gmap *build(struct gmap_builder *b, bool prune, void **img)
{
	size_t len;
	struct gmap_meta meta = {.created = 1, .samples = 2, .score_ppm = 900000};
	assert_int_equal(gmap_builder_serialize(b, &meta, prune, img, &len), 0);
	struct gmap *m = NULL;
	char *err = NULL;
	assert_int_equal(gmap_parse(*img, len, &m, &err), 0);
	assert_null(err);
	return m;
}

static bool covers(const struct pfx *p, int family, const uint8_t *a, unsigned bits)
{
	if (p->family != family || p->plen > bits)
		return false;
	for (unsigned d = 0; d < p->plen; d++) {
		unsigned x = (p->a[d / 8] >> (7 - d % 8)) & 1, y = (a[d / 8] >> (7 - d % 8)) & 1;
		if (x != y)
			return false;
	}
	return true;
}

/* The reference: the longest covering prefix among ps, or NULL. */
static const struct pfx *brute(const struct pfx *ps, unsigned n, int family, const uint8_t *a,
			       unsigned bits)
{
	const struct pfx *best = NULL;
	for (unsigned i = 0; i < n; i++)
		if (covers(&ps[i], family, a, bits) && (!best || ps[i].plen > best->plen))
			best = &ps[i];
	return best;
}

static void check_list(const uint8_t *got, const struct pfx *want)
{
	assert_non_null(got);
	for (unsigned i = 0; i < GMAP_LIST_MAX; i++)
		assert_int_equal(got[i], i < want->n ? want->list[i] : GMAP_NONE);
}

static void test_longest_match(void **state)
{
	(void)state;
	static const char *const cidrs[] = {
	    "0.0.0.0/0",
	    "10.0.0.0/8",
	    "10.1.0.0/16",
	    "10.1.2.0/24",
	    "10.1.2.3/32",
	    "192.0.2.0/24",
	    "255.255.255.255/32",
	    "::/0",
	    "2001:db8::/32",
	    "2001:db8:1::/48",
	    "2001:db8:1:2::/64",
	    "2001:db8:1:2::1/128",
	    "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128",
	};
	enum { N = sizeof(cidrs) / sizeof(cidrs[0]) };
	struct pfx ps[N];
	struct gmap_builder *b = gmap_builder_new();
	assert_non_null(b);
	const char *names[] = {"fra", "ams", "lhr", "iad"};
	for (int i = 0; i < 4; i++)
		assert_int_equal(gmap_builder_pop(b, names[i]), i);
	assert_int_equal(gmap_builder_pop(b, "ams"), 1); /* known name, same index */
	for (unsigned i = 0; i < N; i++) {
		parse(cidrs[i], &ps[i]);
		/* A different list per prefix, so that any wrong match shows. */
		ps[i].n = 1 + i % 3;
		for (unsigned j = 0; j < ps[i].n; j++)
			ps[i].list[j] = (i + j) % 4;
		assert_int_equal(
		    gmap_builder_add(b, ps[i].family, ps[i].a, ps[i].plen, ps[i].list, ps[i].n), 0);
	}
	void *img;
	struct gmap *m = build(b, false, &img);
	assert_int_equal(gmap_n_pops(m), 4);
	assert_string_equal(gmap_pop_name(m, 2), "lhr");
	assert_int_equal(gmap_header(m)->n_prefixes4, 7);
	assert_int_equal(gmap_header(m)->n_prefixes6, 6);

	static const char *const probes[] = {
	    "10.1.2.3",
	    "10.1.2.4",
	    "10.1.3.1",
	    "10.2.0.0",
	    "11.0.0.0",
	    "192.0.2.200",
	    "255.255.255.255",
	    "255.255.255.254",
	    "0.0.0.0",
	    "2001:db8:1:2::1",
	    "2001:db8:1:2::2",
	    "2001:db8:1:3::",
	    "2001:db8:2::",
	    "2001:db9::",
	    "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
	    "::",
	};
	for (unsigned i = 0; i < sizeof(probes) / sizeof(probes[0]); i++) {
		uint8_t a[16] = {0};
		int fam = strchr(probes[i], ':') ? AF_INET6 : AF_INET;
		assert_int_equal(inet_pton(fam, probes[i], a), 1);
		unsigned max = fam == AF_INET ? 32 : 128;
		for (unsigned bits = 0; bits <= max; bits += (bits < 24 ? 8 : 1)) {
			unsigned match, scope;
			const uint8_t *got = gmap_lookup(m, fam, a, bits, &match, &scope);
			const struct pfx *want = brute(ps, N, fam, a, bits);
			assert_non_null(want); /* /0 covers everything */
			check_list(got, want);
			assert_int_equal(match, want->plen);
			assert_true(scope >= match);
			assert_true(scope <= max);
		}
	}
	gmap_close(m);
	free(img);
	gmap_builder_free(b);
}

/*
 * The scope is honest: every address that shares the reported scope bits
 * with the probe gets the same answer, checked on random addresses.
 */
static void test_scope_is_sound(void **state)
{
	(void)state;
	srandom(7);
	struct gmap_builder *b = gmap_builder_new();
	gmap_builder_pop(b, "a");
	gmap_builder_pop(b, "b");
	gmap_builder_pop(b, "c");
	enum { N = 400 };
	static struct pfx ps[N];
	for (unsigned i = 0; i < N; i++) {
		ps[i].family = i % 2 ? AF_INET6 : AF_INET;
		for (int j = 0; j < 16; j++)
			ps[i].a[j] = random();
		/* Clustered so that prefixes nest: a shared first byte. */
		ps[i].a[0] = 10 + random() % 2;
		ps[i].plen = ps[i].family == AF_INET ? 4 + random() % 29 : 8 + random() % 121;
		ps[i].n = 1;
		ps[i].list[0] = random() % 3;
		assert_int_equal(
		    gmap_builder_add(b, ps[i].family, ps[i].a, ps[i].plen, ps[i].list, 1), 0);
	}
	void *img;
	struct gmap *m = build(b, false, &img);
	for (int t = 0; t < 20000; t++) {
		int fam = t % 2 ? AF_INET6 : AF_INET;
		unsigned max = fam == AF_INET ? 32 : 128;
		uint8_t a[16], c[16];
		/* Probe near the prefixes, where the answers change. */
		memcpy(a, ps[random() % N].a, 16);
		for (int j = (int)(random() % 16); j < 16; j++)
			a[j] = random();
		unsigned bits = t % 3 ? max : random() % (max + 1);
		unsigned match, scope;
		const uint8_t *got = gmap_lookup(m, fam, a, bits, &match, &scope);
		/* A neighbour sharing the first min(scope, bits) bits... */
		unsigned keep = scope < bits ? scope : bits;
		memcpy(c, a, 16);
		for (unsigned d = keep; d < max; d++)
			if (random() & 1)
				c[d / 8] ^= 0x80 >> (d % 8);
		/* ...revealing as many bits gets the same answer. */
		unsigned m2, s2;
		const uint8_t *got2 = gmap_lookup(m, fam, c, bits, &m2, &s2);
		if (scope <= bits) {
			assert_ptr_equal(got, got2);
			assert_int_equal(match, m2);
		}
		/* The reference agrees with the lookup. */
		const struct pfx *want = brute(ps, N, fam, a, bits);
		if (want) {
			/* Several prefixes may share a (family, plen, bits):
			 * the later add replaced the earlier. */
			assert_non_null(got);
			assert_int_equal(match, want->plen);
		} else {
			assert_null(got);
			assert_int_equal(match, 0);
		}
	}
	gmap_close(m);
	free(img);
	gmap_builder_free(b);
}

static unsigned count_nodes(const struct gmap *m)
{
	return gmap_header(m)->n_nodes4 + gmap_header(m)->n_nodes6;
}

/* Pruning drops entries equal to their cover; lookups are unchanged. */
static void test_prune(void **state)
{
	(void)state;
	struct gmap_builder *b = gmap_builder_new();
	gmap_builder_pop(b, "x");
	gmap_builder_pop(b, "y");
	const uint8_t x[] = {0}, y[] = {1}, xy[] = {0, 1};
	struct pfx p;
	parse("10.0.0.0/8", &p);
	gmap_builder_add(b, AF_INET, p.a, p.plen, x, 1);
	for (int i = 0; i < 200; i++) {
		uint8_t a[4] = {10, (uint8_t)i, 7, 0};
		/* /24s with the /8's answer, except every tenth. */
		gmap_builder_add(b, AF_INET, a, 24, i % 10 ? x : y, 1);
	}
	parse("10.5.0.0/16", &p);
	gmap_builder_add(b, AF_INET, p.a, p.plen, xy, 2); /* different list: kept */
	void *i1, *i2;
	struct gmap *full = build(b, false, &i1), *pruned = build(b, true, &i2);
	assert_int_equal(gmap_header(full)->n_prefixes4, 202);
	/* The /8, the /16, the 20 /24s answering y, and 10.5.7.0/24 (x under
	 * the /16's x,y list differs from its cover). */
	assert_int_equal(gmap_header(pruned)->n_prefixes4, 1 + 1 + 20 + 1);
	assert_true(count_nodes(pruned) < count_nodes(full) / 4);
	for (int i = 0; i < 256; i++)
		for (int j = 0; j < 256; j += 17) {
			uint8_t a[4] = {10, (uint8_t)i, (uint8_t)j, 1};
			unsigned m1, s1, m2, s2;
			const uint8_t *l1 = gmap_lookup(full, AF_INET, a, 32, &m1, &s1);
			const uint8_t *l2 = gmap_lookup(pruned, AF_INET, a, 32, &m2, &s2);
			assert_non_null(l1);
			assert_non_null(l2);
			assert_memory_equal(l1, l2, GMAP_LIST_MAX);
		}
	gmap_close(full);
	gmap_close(pruned);
	free(i1);
	free(i2);
	gmap_builder_free(b);
}

static void test_builder_refuses(void **state)
{
	(void)state;
	struct gmap_builder *b = gmap_builder_new();
	assert_int_equal(gmap_builder_pop(b, ""), -EINVAL);
	assert_int_equal(gmap_builder_pop(b, "UPPER"), -EINVAL);
	assert_int_equal(gmap_builder_pop(b, "sixteen-chars-xx"), -EINVAL);
	assert_int_equal(gmap_builder_pop(b, "a b"), -EINVAL);
	assert_int_equal(gmap_builder_pop(b, "ok"), 0);
	uint8_t a[16] = {0}, l[GMAP_LIST_MAX + 1] = {0};
	assert_int_equal(gmap_builder_add(b, AF_INET, a, 33, l, 1), -EINVAL);
	assert_int_equal(gmap_builder_add(b, AF_INET6, a, 129, l, 1), -EINVAL);
	assert_int_equal(gmap_builder_add(b, AF_INET, a, 8, l, 0), -EINVAL);
	assert_int_equal(gmap_builder_add(b, AF_INET, a, 8, l, GMAP_LIST_MAX + 1), -EINVAL);
	l[0] = 1; /* no such PoP */
	assert_int_equal(gmap_builder_add(b, AF_INET, a, 8, l, 1), -EINVAL);
	l[0] = 0;
	l[1] = 0; /* repeated */
	assert_int_equal(gmap_builder_add(b, AF_INET, a, 8, l, 2), -EINVAL);
	assert_int_equal(gmap_builder_add(b, 99, a, 8, l, 1), -EINVAL);
	for (int i = 1; i < GMAP_MAX_POPS; i++) {
		char n[16];
		snprintf(n, sizeof(n), "p%d", i);
		assert_int_equal(gmap_builder_pop(b, n), i);
	}
	assert_int_equal(gmap_builder_pop(b, "onemore"), -ENOSPC);
	gmap_builder_free(b);
}

static void *small_image(size_t *len)
{
	struct gmap_builder *b = gmap_builder_new();
	gmap_builder_pop(b, "fra");
	gmap_builder_pop(b, "ams");
	const uint8_t l[] = {1, 0};
	uint8_t a[16] = {192, 0, 2, 0};
	gmap_builder_add(b, AF_INET, a, 24, l, 2);
	memset(a, 0, 16);
	a[0] = 0x20;
	gmap_builder_add(b, AF_INET6, a, 8, l, 1);
	void *img;
	assert_int_equal(gmap_builder_serialize(b, NULL, true, &img, len), 0);
	gmap_builder_free(b);
	return img;
}

static void expect_refused(const void *img, size_t len, const char *why)
{
	struct gmap *m = NULL;
	char *err = NULL;
	int rc = gmap_parse(img, len, &m, &err);
	if (rc != -EINVAL)
		fail_msg("%s: accepted (rc %d)", why, rc);
	assert_null(m);
	assert_non_null(err);
	free(err);
}

/* Fix the CRC after an edit, so the check behind it is what refuses. */
#include <zlib.h>
static void recrc(uint8_t *img, size_t len)
{
	struct gmap_header *h = (void *)img;
	h->crc32 = (uint32_t)crc32(0, img + GMAP_HEADER_SIZE, len - GMAP_HEADER_SIZE);
}

static void test_damaged_files(void **state)
{
	(void)state;
	size_t len;
	uint8_t *img = small_image(&len);
	struct gmap *m;
	char *err = NULL;
	assert_int_equal(gmap_parse(img, len, &m, &err), 0);
	gmap_close(m);

	/* Every truncation. */
	for (size_t l = 0; l < len; l++)
		expect_refused(img, l, "truncated");
	/* Every single bit flipped after the header (the CRC) and in it. */
	uint8_t *c = malloc(len);
	for (size_t i = 0; i < len * 8; i++) {
		memcpy(c, img, len);
		c[i / 8] ^= 1 << (i % 8);
		/* From the entry counts on, the header is informational. */
		if (i / 8 >= offsetof(struct gmap_header, n_prefixes4) && i / 8 < GMAP_HEADER_SIZE)
			continue;
		expect_refused(c, len, "bit flip");
	}
	/* Damage that keeps a valid CRC: what the structural checks catch. */
	struct gmap_header *h = (void *)c;
	size_t pops = GMAP_HEADER_SIZE, lists = pops + 2 * GMAP_POP_NAME;
	size_t nodes = lists + h->n_lists * GMAP_LIST_MAX;
	memcpy(c, img, len);
	c[pops] = 'X'; /* bad PoP name */
	recrc(c, len);
	expect_refused(c, len, "bad name");
	memcpy(c, img, len);
	c[lists] = 7; /* PoP past n_pops */
	recrc(c, len);
	expect_refused(c, len, "list names unknown PoP");
	memcpy(c, img, len);
	c[lists + 1] = c[lists]; /* repeat */
	recrc(c, len);
	expect_refused(c, len, "list repeats");
	memcpy(c, img, len);
	c[lists] = GMAP_NONE; /* a hole before an entry */
	recrc(c, len);
	expect_refused(c, len, "list hole");
	memcpy(c, img, len);
	struct gmap_node *n = (void *)(c + nodes);
	n[1].child[0] = 1; /* a loop */
	n[1].child[1] = 0;
	recrc(c, len);
	expect_refused(c, len, "child loop");
	memcpy(c, img, len);
	/* Shared branches: a graph whose full walk would be exponential. */
	n[1].child[n[1].child[0] ? 1 : 0] = n[1].child[0] ? n[1].child[0] : n[1].child[1];
	recrc(c, len);
	expect_refused(c, len, "a node with two parents");
	memcpy(c, img, len);
	n[0].list = 99;
	recrc(c, len);
	expect_refused(c, len, "list out of range");
	memcpy(c, img, len);
	n[0].child[1] = 5000;
	recrc(c, len);
	expect_refused(c, len, "child past the end");
	free(c);
	free(img);
}

static void test_file_roundtrip(void **state)
{
	(void)state;
	size_t len;
	void *img = small_image(&len);
	char dir[] = "/tmp/gmapXXXXXX";
	assert_non_null(mkdtemp(dir));
	char path[128];
	snprintf(path, sizeof(path), "%s/map.bin", dir);
	char *err = NULL;
	assert_int_equal(gmap_write_file(path, img, len, &err), 0);
	struct gmap *m = NULL;
	assert_int_equal(gmap_open(path, &m, &err), 0);
	uint8_t a[16] = {192, 0, 2, 77};
	unsigned match, scope;
	const uint8_t *l = gmap_lookup(m, AF_INET, a, 32, &match, &scope);
	assert_non_null(l);
	assert_string_equal(gmap_pop_name(m, l[0]), "ams");
	assert_int_equal(match, 24);
	assert_int_equal(scope, 24); /* a leaf: the whole /24 answers alike */
	a[2] = 3;
	assert_null(gmap_lookup(m, AF_INET, a, 32, &match, &scope));
	assert_int_equal(scope, 24); /* all of 192.0.3/24 misses alike */
	/* Replaced on disk: the mapping keeps serving the old bytes. */
	FILE *f = fopen(path, "w");
	fputs("garbage", f);
	fclose(f);
	assert_non_null(gmap_lookup(m, AF_INET, (uint8_t[16]){192, 0, 2, 1}, 32, &match, &scope));
	gmap_close(m);
	assert_int_equal(gmap_open(path, &m, &err), -EINVAL);
	assert_non_null(strstr(err, path));
	free(err);
	err = NULL;
	assert_int_equal(gmap_open("/nonexistent/map", &m, &err), -ENOENT);
	free(err);
	unlink(path);
	rmdir(dir);
	free(img);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_longest_match), cmocka_unit_test(test_scope_is_sound),
	    cmocka_unit_test(test_prune),	  cmocka_unit_test(test_builder_refuses),
	    cmocka_unit_test(test_damaged_files), cmocka_unit_test(test_file_roundtrip),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
