// SPDX-License-Identifier: GPL-2.0-only
/* Unit tests: HKDF, ticket key periods, SNI parsing, certificate choice. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proxy.h"
#include "ticket.h"
#include "tls.h"

#include <unistd.h>

static size_t unhex(const char *h, uint8_t *out)
{
	size_t n = 0;

	for (; h[0] && h[1]; h += 2) {
		unsigned v;

		sscanf(h, "%2x", &v);
		out[n++] = (uint8_t)v;
	}
	return n;
}

static void range(uint8_t *p, int from, int to)
{
	for (int i = from; i <= to; i++)
		p[i - from] = (uint8_t)i;
}

/* RFC 5869 Appendix A, test cases 1-3 (the SHA-256 ones). */
static void test_hkdf_rfc5869(void **st)
{
	uint8_t ikm[80], salt[80], info[80], okm[82], want[82];

	(void)st;
	memset(ikm, 0x0b, 22);
	range(salt, 0x00, 0x0c);
	range(info, 0xf0, 0xf9);
	assert_int_equal(hkdf_sha256(okm, 42, ikm, 22, salt, 13, info, 10), 0);
	unhex(
	    "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865",
	    want);
	assert_memory_equal(okm, want, 42);

	range(ikm, 0x00, 0x4f);
	range(salt, 0x60, 0xaf);
	range(info, 0xb0, 0xff);
	assert_int_equal(hkdf_sha256(okm, 82, ikm, 80, salt, 80, info, 80), 0);
	unhex("b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c"
	      "59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71"
	      "cc30c58179ec3e87c14c01d5c1f3434f1d87",
	      want);
	assert_memory_equal(okm, want, 82);

	memset(ikm, 0x0b, 22);
	assert_int_equal(hkdf_sha256(okm, 42, ikm, 22, NULL, 0, NULL, 0), 0);
	unhex(
	    "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8",
	    want);
	assert_memory_equal(okm, want, 42);
}

static struct ticket_keys keys;

static void init_keys(uint8_t fill, uint32_t period, uint32_t lifetime, uint32_t skew)
{
	uint8_t secret[48];

	memset(secret, fill, sizeof(secret));
	assert_int_equal(ticket_keys_init(&keys, secret, sizeof(secret), period, lifetime, skew),
			 0);
}

/* Two hosts with the same secret derive the same key; another secret does not. */
static void test_ticket_same_secret_same_key(void **st)
{
	struct ticket_key a, b, c;
	struct ticket_keys other;
	uint8_t secret[48];

	(void)st;
	init_keys(7, 3600, 3600, 300);
	memset(secret, 7, sizeof(secret));
	assert_int_equal(ticket_keys_init(&other, secret, sizeof(secret), 3600, 3600, 300), 0);
	assert_int_equal(ticket_key_derive(&keys, 490000, &a), 0);
	assert_int_equal(ticket_key_derive(&other, 490000, &b), 0);
	assert_memory_equal(&a, &b, sizeof(a));
	/* The next period is another key, with the same series. */
	assert_int_equal(ticket_key_derive(&keys, 490001, &c), 0);
	assert_memory_not_equal(a.aes, c.aes, 32);
	assert_memory_not_equal(a.hmac, c.hmac, 32);
	assert_memory_equal(a.name, c.name, 8);
	/* A different secret: a different series, keys and all. */
	memset(secret, 8, sizeof(secret));
	assert_int_equal(ticket_keys_init(&other, secret, sizeof(secret), 3600, 3600, 300), 0);
	assert_int_equal(ticket_key_derive(&other, 490000, &b), 0);
	assert_memory_not_equal(a.name, b.name, 8);
	assert_memory_not_equal(a.aes, b.aes, 32);
	assert_int_equal(ticket_key_lookup(&other, a.name, 490000ull * 3600, &c), 0);
}

/* Period 3600, lifetime 3600, skew 300: which tickets open when. */
static void test_ticket_window(void **st)
{
	const uint64_t p = 1000, t0 = p * 3600; /* start of period p */
	struct ticket_key issued, opened;

	(void)st;
	init_keys(1, 3600, 3600, 300);
	assert_int_equal(ticket_key_derive(&keys, p, &issued), 0);
	/* Same period: opens, no renewal. */
	assert_int_equal(ticket_key_lookup(&keys, issued.name, t0, &opened), 1);
	assert_memory_equal(&issued, &opened, sizeof(issued));
	assert_int_equal(ticket_key_lookup(&keys, issued.name, t0 + 3599, &opened), 1);
	/* Across the boundary: still opens (within the lifetime), renewed. */
	assert_int_equal(ticket_key_lookup(&keys, issued.name, t0 + 3600, &opened), 2);
	assert_memory_equal(&issued, &opened, sizeof(issued));
	/* A ticket made at the end of p is good for lifetime + skew after. */
	assert_int_equal(ticket_key_lookup(&keys, issued.name, t0 + 3600 + 3600 + 299, &opened), 2);
	/* Beyond that the whole of p is older than lifetime + skew. */
	assert_int_equal(ticket_key_lookup(&keys, issued.name, t0 + 3600 + 3600 + 300, &opened), 0);
	/* A host whose clock is up to 5 min behind sees a ticket of its next
	 * period (issued by a host ahead of it): accepted. */
	assert_int_equal(ticket_key_lookup(&keys, issued.name, t0 - 300, &opened), 2);
	assert_int_equal(ticket_key_lookup(&keys, issued.name, t0 - 1, &opened), 2);
	/* ... but not from further in the future. */
	assert_int_equal(ticket_key_lookup(&keys, issued.name, t0 - 301, &opened), 0);
}

/* Short periods (as in the end-to-end test): several past periods open. */
static void test_ticket_short_period(void **st)
{
	struct ticket_key k, o;

	(void)st;
	init_keys(2, 10, 60, 300);
	assert_int_equal(ticket_key_derive(&keys, 100, &k), 0);
	assert_int_equal(ticket_key_lookup(&keys, k.name, 1000, &o), 1);
	assert_int_equal(ticket_key_lookup(&keys, k.name, 1000 + 10 + 60 + 299, &o), 2);
	assert_int_equal(ticket_key_lookup(&keys, k.name, 1000 + 10 + 60 + 300, &o), 0);
	/* skew of 300 s is 30 periods ahead */
	assert_int_equal(ticket_key_lookup(&keys, k.name, 1000 - 300, &o), 2);
	assert_int_equal(ticket_key_lookup(&keys, k.name, 1000 - 301, &o), 0);
}

static void test_ticket_bad_secret(void **st)
{
	uint8_t s[TICKET_SECRET_MAX + 1] = {0};
	struct ticket_keys k;
	char *err = NULL;

	(void)st;
	assert_int_equal(ticket_keys_init(&k, s, TICKET_SECRET_MIN - 1, 3600, 0, 0), -1);
	assert_int_equal(ticket_keys_init(&k, s, TICKET_SECRET_MAX + 1, 3600, 0, 0), -1);
	assert_int_equal(ticket_keys_init(&k, s, TICKET_SECRET_MIN, 0, 0, 0), -1);
	assert_int_equal(ticket_keys_load(&k, "/nonexistent/secret", 3600, 0, 0, &err), -1);
	assert_non_null(strstr(err, "/nonexistent/secret"));
	assert_non_null(strstr(err, "No such file"));
	free(err);
	assert_int_equal(ticket_keys_load(&k, "/dev/null", 3600, 0, 0, &err), -1);
	assert_non_null(strstr(err, "not a regular file"));
	free(err);
	{
		char path[] = "/tmp/test-secret-XXXXXX";
		int fd = mkstemp(path);

		assert_true(fd >= 0);
		assert_int_equal(write(fd, "short", 5), 5);
		close(fd);
		assert_int_equal(ticket_keys_load(&k, path, 3600, 0, 0, &err), -1);
		assert_non_null(strstr(err, "too short"));
		free(err);
		unlink(path);
	}
}

/* RFC 6066 §3 server_name bodies. */
static void test_sni_parse(void **st)
{
	static const uint8_t ok[] = {0,	  16,  0,   0,	 13,  'W', 'w', 'W', '.',
				     'e', 'x', 'a', 'm', 'p', 'l', 'e', '.', '.'};
	static const uint8_t dot[] = {0,   15,	0,   0,	  12,  'a', '.', 'e', 'x',
				      'a', 'm', 'p', 'l', 'e', '.', 'o', 'r'};
	static const uint8_t short_list[] = {0, 10, 0, 0, 3, 'a', 'b', 'c'};
	static const uint8_t zero_len[] = {0, 3, 0, 0, 0};
	static const uint8_t bad_char[] = {0, 6, 0, 0, 3, 'a', ' ', 'c'};
	static const uint8_t other_type[] = {0, 6, 1, 0, 3, 'a', 'b', 'c'};
	static const uint8_t nul[] = {0, 6, 0, 0, 3, 'a', 0, 'c'};
	static const uint8_t ip6[] = {0, 8, 0, 0, 5, '2', '0', '0', ':', ':'};
	char out[256];

	(void)st;
	/* "WwW.example.." : lower-cased, one trailing dot dropped, the other
	 * makes it an empty label, which we still take as a (bad) name. */
	assert_int_equal(l7_tls_sni_parse(ok, sizeof(ok), out, sizeof(out)), 1);
	assert_string_equal(out, "www.example.");
	assert_int_equal(l7_tls_sni_parse(dot, sizeof(dot), out, sizeof(out)), 1);
	assert_string_equal(out, "a.example.or");
	assert_int_equal(l7_tls_sni_parse(short_list, sizeof(short_list), out, sizeof(out)), -1);
	assert_int_equal(l7_tls_sni_parse(zero_len, sizeof(zero_len), out, sizeof(out)), -1);
	assert_int_equal(l7_tls_sni_parse(bad_char, sizeof(bad_char), out, sizeof(out)), 0);
	assert_int_equal(l7_tls_sni_parse(nul, sizeof(nul), out, sizeof(out)), 0);
	assert_int_equal(l7_tls_sni_parse(ip6, sizeof(ip6), out, sizeof(out)), 0);
	assert_int_equal(l7_tls_sni_parse(other_type, sizeof(other_type), out, sizeof(out)), 0);
	assert_int_equal(l7_tls_sni_parse(ok, 1, out, sizeof(out)), -1);
	assert_int_equal(l7_tls_sni_parse(ok, sizeof(ok), out, 5), 0);
}

/* Every truncation of a valid body is refused, never read past. */
static void test_sni_parse_truncated(void **st)
{
	static const uint8_t ok[] = {0, 8, 0, 0, 5, 'a', '.', 'b', 'c', 'd'};
	char out[64];

	(void)st;
	for (size_t n = 0; n < sizeof(ok); n++) {
		uint8_t *copy = malloc(n ? n : 1);

		memcpy(copy, ok, n);
		assert_int_equal(l7_tls_sni_parse(copy, n, out, sizeof(out)), -1);
		free(copy);
	}
	assert_int_equal(l7_tls_sni_parse(ok, sizeof(ok), out, sizeof(out)), 1);
	assert_string_equal(out, "a.bcd");
}

static void test_client_ecdsa(void **st)
{
	static const uint8_t ecdsa_suites[] = {0xc0, 0x2b, 0xc0, 0x2f};
	static const uint8_t rsa_suites[] = {0xc0, 0x2f, 0xcc, 0xa8};
	static const uint8_t tls13_suites[] = {0x13, 0x01};
	static const uint8_t sig_both[] = {0, 4, 0x04, 0x03, 0x08, 0x04};
	static const uint8_t sig_rsa[] = {0, 4, 0x08, 0x04, 0x04, 0x01};
	static const uint8_t v13[] = {4, 0x03, 0x04, 0x03, 0x03};
	static const uint8_t v12[] = {2, 0x03, 0x03};

	(void)st;
	/* TLS 1.3 client with ecdsa_secp256r1_sha256: ECDSA. */
	assert_true(
	    l7_tls_client_ecdsa(tls13_suites, 2, sig_both, sizeof(sig_both), v13, sizeof(v13)));
	/* TLS 1.3 client that cannot verify ECDSA: RSA. */
	assert_false(
	    l7_tls_client_ecdsa(tls13_suites, 2, sig_rsa, sizeof(sig_rsa), v13, sizeof(v13)));
	/* TLS 1.2: needs an ECDSA suite as well. */
	assert_true(
	    l7_tls_client_ecdsa(ecdsa_suites, 4, sig_both, sizeof(sig_both), v12, sizeof(v12)));
	assert_false(
	    l7_tls_client_ecdsa(rsa_suites, 4, sig_both, sizeof(sig_both), v12, sizeof(v12)));
	assert_false(l7_tls_client_ecdsa(rsa_suites, 4, sig_both, sizeof(sig_both), NULL, 0));
	/* No signature_algorithms (an old TLS 1.2 client): by its suites. */
	assert_true(l7_tls_client_ecdsa(ecdsa_suites, 4, NULL, 0, NULL, 0));
	assert_false(l7_tls_client_ecdsa(rsa_suites, 4, NULL, 0, NULL, 0));
	/* Malformed lengths read nothing. */
	assert_false(l7_tls_client_ecdsa(tls13_suites, 2, sig_both, 3, v13, sizeof(v13)));
}

static void test_cert_lookup(void **st)
{
	/* Sorted as the server sorts them (strcmp). */
	static const struct l7_cert_name v[] = {
	    {"*.example.com", 1, 2},
	    {"api.example.com", 3, -1},
	    {"example.com", 0, -1},
	    {"other.test", -1, 4},
	};
	const size_t n = sizeof(v) / sizeof(v[0]);
	const struct l7_cert_name *hit;

	(void)st;
	hit = l7_cert_lookup(v, n, "api.example.com");
	assert_non_null(hit);
	assert_int_equal(hit->ec, 3); /* exact beats the wildcard */
	hit = l7_cert_lookup(v, n, "www.example.com");
	assert_non_null(hit);
	assert_string_equal(hit->name, "*.example.com");
	hit = l7_cert_lookup(v, n, "example.com");
	assert_non_null(hit);
	assert_int_equal(hit->ec, 0);
	/* "*" is one label: not two, not none. */
	assert_null(l7_cert_lookup(v, n, "a.b.example.com"));
	assert_null(l7_cert_lookup(v, n, ".example.com"));
	assert_null(l7_cert_lookup(v, n, "com"));
	assert_null(l7_cert_lookup(v, n, ""));
	assert_null(l7_cert_lookup(v, n, "other.test."));
	hit = l7_cert_lookup(v, n, "other.test");
	assert_non_null(hit);
	assert_int_equal(hit->rsa, 4);
}

/* The identity header and Early-Data are the proxy's alone, in any spelling. */
static void test_reserved_fields(void **st)
{
	struct l7_config cfg;
	struct arena a = {0};
	struct l7_hdrs h;
	static const char *const in[] = {
	    "x-client-identity", "x_client_identity",  "x-client_identity", "early-data",
	    "early_data",	 "x-client-identityx", "x-client-identit",  "accept"};

	(void)st;
	memset(&cfg, 0, sizeof(cfg));
	memset(&h, 0, sizeof(h));
	strcpy(cfg.tls.identity_header, "x-client-identity");
	for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++)
		assert_int_equal(hdrs_add(&h, &a, in[i], strlen(in[i]), "v", 1), 0);
	proxy_strip_reserved(&cfg, &h);
	assert_int_equal(h.n, 3);
	assert_string_equal(h.v[0].name, "x-client-identityx");
	assert_string_equal(h.v[1].name, "x-client-identit");
	assert_string_equal(h.v[2].name, "accept");
	assert_true(proxy_reserved_field(&cfg, "x_client_identity", 17));
	assert_false(proxy_reserved_field(&cfg, "x-client-identity", 16));
	arena_free(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_hkdf_rfc5869),
	    cmocka_unit_test(test_ticket_same_secret_same_key),
	    cmocka_unit_test(test_ticket_window),
	    cmocka_unit_test(test_ticket_short_period),
	    cmocka_unit_test(test_ticket_bad_secret),
	    cmocka_unit_test(test_sni_parse),
	    cmocka_unit_test(test_sni_parse_truncated),
	    cmocka_unit_test(test_client_ecdsa),
	    cmocka_unit_test(test_cert_lookup),
	    cmocka_unit_test(test_reserved_fields),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
