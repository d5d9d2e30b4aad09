// SPDX-License-Identifier: GPL-2.0-only
#include "tls.h"
#include "proxy.h"
#include "ticket.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#ifdef OPENSSL_IS_BORINGSSL
#include <openssl/aead.h>
#endif
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifndef OPENSSL_IS_BORINGSSL
#include <openssl/core_names.h>
#include <openssl/params.h>
#endif

/* Server preference: HTTP/2 when the client offers it. */
static const unsigned char alpn_server[] = "\x02h2\x08http/1.1";
static const unsigned char alpn_h2[] = "\x02h2";
static const unsigned char alpn_h1[] = "\x08http/1.1";

#define MAX_FILE (1 << 20) /* OCSP responses and CA bundles we read whole */

/* One certificate and its key, in a context of its own. */
struct cert_entry {
	SSL_CTX *ctx;
	bool ec;
};

/* What a base context owns (its ex_data, freed with it). */
struct tls_server {
	struct cert_entry *certs;
	size_t n_certs;
	struct l7_cert_name *names; /* sorted by name */
	size_t n_names;
	struct l7_cert_name deflt; /* no SNI, or no certificate for it */
	uint8_t ca_digest[32];	   /* of the client CA bundle, in the session context */
	struct ticket_keys keys;
};

/* ex_data: the base context owns its tls_server (freed with it); each
 * server SSL points at it (borrowed: the SSL holds the base, its session
 * context, for as long as it lives); OpenSSL's staples hang on their
 * certificate's context. */
static int srv_idx = -1, ssl_idx = -1, ocsp_idx = -1;
static pthread_once_t idx_once = PTHREAD_ONCE_INIT;

struct blob {
	uint8_t *p;
	size_t n;
};

static void srv_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int index, long argl, void *argp)
{
	struct tls_server *s = ptr;

	(void)parent, (void)ad, (void)index, (void)argl, (void)argp;
	if (!s)
		return;
	for (size_t i = 0; i < s->n_certs; i++)
		SSL_CTX_free(s->certs[i].ctx);
	free(s->certs);
	free(s->names);
	ticket_keys_wipe(&s->keys);
	free(s);
}

static void blob_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int index, long argl, void *argp)
{
	struct blob *b = ptr;

	(void)parent, (void)ad, (void)index, (void)argl, (void)argp;
	if (b)
		free(b->p);
	free(b);
}

static void idx_init(void)
{
	srv_idx = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, srv_free);
	ssl_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
	ocsp_idx = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, blob_free);
}

static struct tls_server *server_of(const SSL *ssl)
{
	return SSL_get_ex_data(ssl, ssl_idx);
}

static struct conn *conn_of(const SSL *ssl)
{
	return SSL_get_app_data(ssl);
}

#define CONN_STAT(ssl, n)                                                                          \
	do {                                                                                       \
		struct conn *c_ = conn_of(ssl);                                                    \
		if (c_)                                                                            \
			STAT_INC(c_->w, n);                                                        \
	} while (0)

/* --- errors -------------------------------------------------------------------- */

static int failf(char **err, const char *what, const char *file, const char *why)
{
	char buf[256];

	if (!why) {
		ERR_error_string_n(ERR_get_error(), buf, sizeof(buf));
		why = buf;
	}
	ERR_clear_error();
	if (asprintf(err, "%s%s%s: %s", what, file ? " " : "", file ? file : "", why) < 0)
		*err = NULL;
	return -1;
}

static SSL_CTX *fail(SSL_CTX *ctx, char **err, const char *what, const char *file)
{
	failf(err, what, file, NULL);
	SSL_CTX_free(ctx);
	return NULL;
}

/* Read a whole (small) file. 0 with *out malloc'd, or -1 with *why. */
static int read_file(const char *path, uint8_t **out, size_t *len, const char **why)
{
	size_t cap = 4096, n = 0;
	uint8_t *buf = malloc(cap);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t r;

	*out = NULL;
	if (!buf || fd < 0) {
		*why = buf ? strerror(errno) : "out of memory";
		free(buf);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	for (;;) {
		if (n == cap) {
			uint8_t *nb = cap < MAX_FILE ? realloc(buf, cap * 2) : NULL;

			if (!nb) {
				*why = cap < MAX_FILE ? "out of memory" : "larger than 1 MiB";
				goto fail;
			}
			buf = nb;
			cap *= 2;
		}
		r = read(fd, buf + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			*why = strerror(errno);
			goto fail;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	*out = buf;
	*len = n;
	return 0;
fail:
	close(fd);
	free(buf);
	return -1;
}

/* --- the shared policy ----------------------------------------------------------- */

static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
		       const unsigned char *in, unsigned int inlen, void *arg)
{
	(void)ssl;
	(void)arg;
	if (SSL_select_next_proto((unsigned char **)out, outlen, alpn_server,
				  sizeof(alpn_server) - 1, in, inlen) == OPENSSL_NPN_NEGOTIATED)
		return SSL_TLSEXT_ERR_OK;
	return SSL_TLSEXT_ERR_NOACK;
}

static SSL_CTX *base_ctx(char **err)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_method());

	if (!ctx)
		return fail(NULL, err, "SSL_CTX_new", NULL);
	if (!SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) ||
	    !SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION))
		return fail(ctx, err, "setting TLS versions", NULL);
		/*
	 * TLS 1.2: ECDHE + AEAD only (TLS 1.3 suites are all forward secret).
	 * BoringSSL takes equal-preference groups: within one, the client's
	 * order wins, so a phone without AES instructions that lists ChaCha20
	 * first gets it. OpenSSL has no groups; PRIORITIZE_CHACHA does the
	 * same for clients that put ChaCha20 first.
	 */
#ifdef OPENSSL_IS_BORINGSSL
	if (!SSL_CTX_set_strict_cipher_list(ctx, "[ECDHE-ECDSA-AES128-GCM-SHA256|"
						 "ECDHE-ECDSA-CHACHA20-POLY1305]:"
						 "ECDHE-ECDSA-AES256-GCM-SHA384:"
						 "[ECDHE-RSA-AES128-GCM-SHA256|"
						 "ECDHE-RSA-CHACHA20-POLY1305]:"
						 "ECDHE-RSA-AES256-GCM-SHA384"))
		return fail(ctx, err, "setting ciphers", NULL);
#else
	if (!SSL_CTX_set_cipher_list(ctx, "ECDHE-ECDSA-AES128-GCM-SHA256:"
					  "ECDHE-ECDSA-CHACHA20-POLY1305:"
					  "ECDHE-ECDSA-AES256-GCM-SHA384:"
					  "ECDHE-RSA-AES128-GCM-SHA256:"
					  "ECDHE-RSA-CHACHA20-POLY1305:"
					  "ECDHE-RSA-AES256-GCM-SHA384"))
		return fail(ctx, err, "setting ciphers", NULL);
	SSL_CTX_set_options(ctx, SSL_OP_PRIORITIZE_CHACHA);
#endif
	if (!SSL_CTX_set1_curves_list(ctx, "X25519:P-256"))
		return fail(ctx, err, "setting groups", NULL);
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE);
	/* Partial writes from a pipe whose head block may move between
	 * retries; buffers released while a connection is idle, which is
	 * most of an idle keepalive connection's memory. */
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
				  SSL_MODE_RELEASE_BUFFERS);
	return ctx;
}

/* --- session tickets ----------------------------------------------------------------- */

#ifndef OPENSSL_IS_BORINGSSL
/*
 * OpenSSL: its ticket format (AES-256-CBC + HMAC-SHA256) under the keys
 * of ticket.h. Seal with the current period's key; open with any key of
 * the accepted window; one that is not ours is a full handshake.
 *
 * Every ticket that opens is answered with a fresh one (return 2), not
 * only those of an older period: OpenSSL sends a TLS 1.3 resumption a new
 * ticket only when asked to renew, or when the ClientHello also carries
 * the TLS 1.2 session_ticket extension. OpenSSL clients send it, so they
 * kept resuming; BoringSSL clients (Chrome) do not, and got no ticket on
 * a resumed connection: every other connection was a full handshake.
 * Tickets are single-use (RFC 8446 §C.4); a resumption must leave the
 * client one to offer next time.
 */
static int ticket_cb(SSL *ssl, unsigned char *name, unsigned char *iv, EVP_CIPHER_CTX *ectx,
		     EVP_MAC_CTX *hctx, int enc)
{
	struct tls_server *s = server_of(ssl);
	struct ticket_key k;
	uint64_t now = (uint64_t)time(NULL);
	int rc = 1, ok;

	/* Encrypting, 0 sends no ticket (-1 would fail the handshake). */
	if (!s)
		return 0;
	if (enc) {
		if (ticket_key_derive(&s->keys, ticket_period(&s->keys, now), &k) ||
		    RAND_bytes(iv, 16) != 1)
			return 0;
		memcpy(name, k.name, 16);
	} else {
		rc = ticket_key_lookup(&s->keys, name, now, &k);
		if (rc == 0) {
			CONN_STAT(ssl, tls_ticket_unknown);
			return 0;
		}
		if (rc == 2)
			CONN_STAT(ssl, tls_ticket_renewed);
	}
	{
		OSSL_PARAM p[] = {
		    OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, k.hmac, sizeof(k.hmac)),
		    OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
		    OSSL_PARAM_construct_end(),
		};
		ok = EVP_MAC_CTX_set_params(hctx, p) == 1;
	}
	if (ok)
		ok = enc ? EVP_EncryptInit_ex(ectx, EVP_aes_256_cbc(), NULL, k.aes, iv) == 1
			 : EVP_DecryptInit_ex(ectx, EVP_aes_256_cbc(), NULL, k.aes, iv) == 1;
	OPENSSL_cleanse(&k, sizeof(k));
	if (!ok)
		return 0;
	return enc ? 1 : 2;
}
#else
/*
 * BoringSSL: tickets sealed with AES-256-GCM-SIV (a repeated random nonce
 * does not break it) under the period's key, laid out as
 * ciphertext | tag | tail, the tail being issue time (8 bytes, this
 * host's clock) | nonce | key name and authenticated with the rest, so
 * sealing works in place.
 *
 * Opening also mends one thing: BoringSSL refuses a session made "in the
 * future", which is what a ticket from a host whose clock runs ahead
 * looks like. Only such a ticket (its issue time says so) is parsed and
 * its session's time brought back to now (the lifetime grows by at most
 * the clock difference, which the key window bounds).
 */
#define TICKET_NONCE 12
#define TICKET_TAIL  (8 + TICKET_NONCE + 16)

static size_t ticket_overhead(SSL *ssl)
{
	(void)ssl;
	return EVP_AEAD_max_overhead(EVP_aead_aes_256_gcm_siv()) + TICKET_TAIL;
}

static int ticket_seal(SSL *ssl, uint8_t *out, size_t *out_len, size_t max_out, const uint8_t *in,
		       size_t in_len)
{
	struct tls_server *s = server_of(ssl);
	const EVP_AEAD *aead = EVP_aead_aes_256_gcm_siv();
	uint64_t now = (uint64_t)time(NULL);
	uint8_t tail[TICKET_TAIL];
	struct ticket_key k;
	EVP_AEAD_CTX a;
	size_t n = 0;
	int ok;

	if (!s || max_out < TICKET_TAIL ||
	    ticket_key_derive(&s->keys, ticket_period(&s->keys, now), &k) ||
	    RAND_bytes(tail + 8, TICKET_NONCE) != 1)
		return 0;
	for (int i = 0; i < 8; i++)
		tail[i] = (uint8_t)(now >> (56 - 8 * i));
	memcpy(tail + 8 + TICKET_NONCE, k.name, sizeof(k.name));
	ok = EVP_AEAD_CTX_init(&a, aead, k.aes, 32, EVP_AEAD_DEFAULT_TAG_LENGTH, NULL) == 1;
	if (ok) {
		ok = EVP_AEAD_CTX_seal(&a, out, &n, max_out - TICKET_TAIL, tail + 8, TICKET_NONCE,
				       in, in_len, tail, sizeof(tail)) == 1;
		EVP_AEAD_CTX_cleanup(&a);
	}
	if (ok) {
		memcpy(out + n, tail, sizeof(tail));
		*out_len = n + TICKET_TAIL;
	}
	OPENSSL_cleanse(&k, sizeof(k));
	return ok;
}

/* The session in out[0..*out_len) was issued in our future: make it now. */
static void ticket_unfuture(SSL *ssl, uint8_t *out, size_t *out_len, size_t max_out, uint64_t now)
{
	SSL_SESSION *sess = SSL_SESSION_from_bytes(out, *out_len, SSL_get_SSL_CTX(ssl));
	uint8_t *b = NULL;
	size_t blen = 0;

	if (sess && SSL_SESSION_get_time(sess) > now) {
		SSL_SESSION_set_time(sess, now);
		if (SSL_SESSION_to_bytes_for_ticket(sess, &b, &blen) && blen <= max_out) {
			memcpy(out, b, blen);
			*out_len = blen;
			CONN_STAT(ssl, tls_ticket_from_future);
		}
		OPENSSL_free(b);
	}
	SSL_SESSION_free(sess);
	ERR_clear_error();
}

static enum ssl_ticket_aead_result_t ticket_open(SSL *ssl, uint8_t *out, size_t *out_len,
						 size_t max_out, const uint8_t *in, size_t in_len)
{
	struct tls_server *s = server_of(ssl);
	const EVP_AEAD *aead = EVP_aead_aes_256_gcm_siv();
	uint64_t now = (uint64_t)time(NULL), issued = 0;
	uint8_t tail[TICKET_TAIL];
	struct ticket_key k;
	EVP_AEAD_CTX a;
	size_t n = 0;
	int r, ok;

	if (!s || in_len < TICKET_TAIL + EVP_AEAD_max_overhead(aead))
		return ssl_ticket_aead_ignore_ticket;
	memcpy(tail, in + in_len - TICKET_TAIL, sizeof(tail));
	r = ticket_key_lookup(&s->keys, tail + 8 + TICKET_NONCE, now, &k);
	if (r == 0) {
		CONN_STAT(ssl, tls_ticket_unknown);
		return ssl_ticket_aead_ignore_ticket;
	}
	ok = EVP_AEAD_CTX_init(&a, aead, k.aes, 32, EVP_AEAD_DEFAULT_TAG_LENGTH, NULL) == 1;
	if (ok) {
		ok = EVP_AEAD_CTX_open(&a, out, &n, max_out, tail + 8, TICKET_NONCE, in,
				       in_len - TICKET_TAIL, tail, sizeof(tail)) == 1;
		EVP_AEAD_CTX_cleanup(&a);
	}
	OPENSSL_cleanse(&k, sizeof(k));
	if (!ok) {
		ERR_clear_error();
		CONN_STAT(ssl, tls_ticket_unknown);
		return ssl_ticket_aead_ignore_ticket;
	}
	if (r == 2)
		CONN_STAT(ssl, tls_ticket_renewed);
	*out_len = n;
	/* A session is never younger than its ticket: only a ticket issued
	 * in our future can hold a session from it. */
	for (int i = 0; i < 8; i++)
		issued = issued << 8 | tail[i];
	if (issued > now)
		ticket_unfuture(ssl, out, out_len, max_out, now);
	return ssl_ticket_aead_success;
}

static const SSL_TICKET_AEAD_METHOD ticket_aead = {
    .max_overhead = ticket_overhead,
    .seal = ticket_seal,
    .open = ticket_open,
};
#endif

/* --- choosing a certificate ------------------------------------------------------------ */

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

int l7_tls_sni_parse(const uint8_t *ext, size_t len, char *out, size_t cap)
{
	size_t list, off;

	if (cap)
		out[0] = '\0'; /* nothing usable unless we return 1 */
	/* RFC 6066 §3: ServerNameList <1..2^16-1> of { NameType; opaque
	 * HostName<1..2^16-1> }. */
	if (len < 2 || (list = get16(ext)) != len - 2 || list == 0)
		return -1;
	for (off = 2; off < len;) {
		uint8_t type;
		size_t n;

		if (len - off < 3)
			return -1;
		type = ext[off];
		n = get16(ext + off + 1);
		off += 3;
		if (n == 0 || n > len - off)
			return -1;
		if (type == 0) { /* host_name */
			const uint8_t *h = ext + off;

			if (off + n != len)
				return -1; /* one name, and it ends the list */
			if (h[n - 1] == '.')
				n--; /* a fully qualified name is the same name */
			/* An IP literal (some clients send one, RFC 6066
			 * forbids it) or anything else that is no host name
			 * picks no certificate: the default serves it. */
			if (n == 0 || n >= cap)
				return 0;
			for (size_t i = 0; i < n; i++)
				if (!isalnum(h[i]) && h[i] != '-' && h[i] != '.' && h[i] != '_')
					return 0;
			for (size_t i = 0; i < n; i++)
				out[i] = (char)tolower(h[i]);
			out[n] = '\0';
			return 1;
		}
		off += n;
	}
	return 0;
}

bool l7_tls_client_ecdsa(const uint8_t *ciphers, size_t ciphers_len, const uint8_t *sigalgs,
			 size_t sigalgs_len, const uint8_t *versions, size_t versions_len)
{
	bool tls13 = false, suite = false, alg = false;

	/* RFC 8446 §4.2.1: supported_versions, a u8-length list of u16. */
	if (versions && versions_len >= 1 && versions[0] == versions_len - 1)
		for (size_t i = 1; i + 1 < versions_len; i += 2)
			tls13 |= get16(versions + i) == 0x0304;
	/* ECDHE-ECDSA with AES-GCM or ChaCha20 (RFC 5289, RFC 7905). */
	for (size_t i = 0; i + 1 < ciphers_len; i += 2) {
		uint16_t c = get16(ciphers + i);

		suite |= c == 0xc02b || c == 0xc02c || c == 0xcca9;
	}
	/* RFC 8446 §4.2.3: ecdsa_secp256r1_sha256 = 0x0403. Without the
	 * extension a TLS 1.2 client that offers ECDSA suites takes ECDSA
	 * with SHA-1 (RFC 5246 §7.4.1.4.1), which BoringSSL still signs. */
	if (!sigalgs)
		return suite && !tls13;
	if (sigalgs_len >= 2 && get16(sigalgs) == sigalgs_len - 2)
		for (size_t i = 2; i + 1 < sigalgs_len; i += 2)
			alg |= get16(sigalgs + i) == 0x0403;
	return alg && (tls13 || suite);
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(((const struct l7_cert_name *)a)->name,
		      ((const struct l7_cert_name *)b)->name);
}

const struct l7_cert_name *l7_cert_lookup(const struct l7_cert_name *v, size_t n, const char *sni)
{
	struct l7_cert_name key;
	const struct l7_cert_name *hit;
	const char *dot;

	if (!sni[0] || strlen(sni) >= sizeof(key.name))
		return NULL;
	strcpy(key.name, sni);
	if ((hit = bsearch(&key, v, n, sizeof(*v), name_cmp)))
		return hit;
	/* RFC 6125 §6.4.3: "*" stands for exactly one left-most label. */
	dot = strchr(sni, '.');
	if (!dot || dot == sni || !dot[1] ||
	    snprintf(key.name, sizeof(key.name), "*%s", dot) >= (int)sizeof(key.name))
		return NULL;
	return bsearch(&key, v, n, sizeof(*v), name_cmp);
}

static int pick(const struct l7_cert_name *n, bool ecdsa)
{
	if (ecdsa && n->ec >= 0)
		return n->ec;
	return n->rsa >= 0 ? n->rsa : n->ec;
}

/* The session-ID context: the server name and the client-cert policy. */
static void session_context(const struct tls_server *s, const char *sni, int verify_mode,
			    uint8_t out[32])
{
	uint8_t buf[16 + 256 + 4 + 32];
	size_t n = 0, l = strlen(sni);
	unsigned int mdlen = 32;

	memcpy(buf, "portico sid v1", 14);
	n = 14;
	buf[n++] = (uint8_t)verify_mode;
	memcpy(buf + n, sni, l);
	n += l;
	buf[n++] = 0;
	memcpy(buf + n, s->ca_digest, 32);
	n += 32;
	EVP_Digest(buf, n, out, &mdlen, EVP_sha256(), NULL);
}

/* SNI and key type -> certificate and session context. 0 or -1. */
static int choose(SSL *ssl, const uint8_t *sni_ext, size_t sni_len, bool ecdsa)
{
	struct tls_server *s = server_of(ssl);
	const struct l7_cert_name *n = NULL;
	char sni[256] = "";
	uint8_t sid[32];
	int e;

	if (!s)
		return -1;
	if (sni_ext) {
		int r = l7_tls_sni_parse(sni_ext, sni_len, sni, sizeof(sni));

		if (r < 0)
			return -1;
		if (r == 0)
			sni[0] = '\0';
	}
	if (sni[0])
		n = l7_cert_lookup(s->names, s->n_names, sni);
	if (!n) {
		CONN_STAT(ssl, tls_sni_default);
		n = &s->deflt;
	}
	e = pick(n, ecdsa);
	if (e < 0 || !SSL_set_SSL_CTX(ssl, s->certs[e].ctx))
		return -1;
	/* After the switch: BoringSSL keeps the context with the certificate. */
	session_context(s, sni, SSL_get_verify_mode(ssl), sid);
	return SSL_set_session_id_context(ssl, sid, sizeof(sid)) == 1 ? 0 : -1;
}

#ifdef OPENSSL_IS_BORINGSSL
static enum ssl_select_cert_result_t select_cb(const SSL_CLIENT_HELLO *ch)
{
	const uint8_t *sni = NULL, *sig = NULL, *ver = NULL;
	size_t sni_len = 0, sig_len = 0, ver_len = 0;
	bool ecdsa;

	if (!SSL_early_callback_ctx_extension_get(ch, TLSEXT_TYPE_server_name, &sni, &sni_len))
		sni = NULL;
	if (!SSL_early_callback_ctx_extension_get(ch, TLSEXT_TYPE_signature_algorithms, &sig,
						  &sig_len))
		sig = NULL;
	if (!SSL_early_callback_ctx_extension_get(ch, TLSEXT_TYPE_supported_versions, &ver,
						  &ver_len))
		ver = NULL;
	ecdsa = l7_tls_client_ecdsa(ch->cipher_suites, ch->cipher_suites_len, sig, sig_len, ver,
				    ver_len);
	return choose(ch->ssl, sni, sni_len, ecdsa) == 0 ? ssl_select_cert_success
							 : ssl_select_cert_error;
}
#else
static int hello_cb(SSL *ssl, int *al, void *arg)
{
	const unsigned char *sni = NULL, *sig = NULL, *ver = NULL, *ciphers = NULL;
	size_t sni_len = 0, sig_len = 0, ver_len = 0, c_len;
	bool ecdsa;

	(void)arg;
	if (!SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_server_name, &sni, &sni_len))
		sni = NULL;
	if (!SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_signature_algorithms, &sig, &sig_len))
		sig = NULL;
	if (!SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_supported_versions, &ver, &ver_len))
		ver = NULL;
	c_len = SSL_client_hello_get0_ciphers(ssl, &ciphers);
	ecdsa = l7_tls_client_ecdsa(ciphers, c_len, sig, sig_len, ver, ver_len);
	if (choose(ssl, sni, sni_len, ecdsa) == 0)
		return SSL_CLIENT_HELLO_SUCCESS;
	*al = SSL_AD_UNRECOGNIZED_NAME;
	return SSL_CLIENT_HELLO_ERROR;
}

/* OpenSSL asks the current context for the staple at handshake time. */
static int status_cb(SSL *ssl, void *arg)
{
	const struct blob *b = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ocsp_idx);
	uint8_t *copy;

	(void)arg;
	if (!b || !b->n)
		return SSL_TLSEXT_ERR_NOACK;
	copy = OPENSSL_malloc(b->n);
	if (!copy)
		return SSL_TLSEXT_ERR_NOACK;
	memcpy(copy, b->p, b->n);
	if (SSL_set_tlsext_status_ocsp_resp(ssl, copy, (long)b->n) != 1) {
		OPENSSL_free(copy);
		return SSL_TLSEXT_ERR_NOACK;
	}
	return SSL_TLSEXT_ERR_OK;
}
#endif

/* --- building the server side ------------------------------------------------------- */

/* Everything a context of ours does alike, base or per-certificate. */
static SSL_CTX *server_ctx(const struct l7_config *cfg, X509_STORE *ca, char **err)
{
	const struct l7_tls_cfg *t = &cfg->tls;
	const char *ca_file = t->client_ca;
	SSL_CTX *ctx = base_ctx(err);

	if (!ctx)
		return NULL;
#ifdef OPENSSL_IS_BORINGSSL
	/* 0-RTT only when some route takes it (proxy.c then checks each
	 * request). OpenSSL's early data API is another flow: not built. */
	for (size_t i = 0; i < cfg->n_routes; i++)
		if (cfg->routes[i].early_data)
			SSL_CTX_set_early_data_enabled(ctx, 1);
#endif
	SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
	SSL_CTX_set_timeout(ctx, t->session_lifetime_s);
#ifdef OPENSSL_IS_BORINGSSL
	/* TLS 1.3 resumption lives as long as a TLS 1.2 one. */
	SSL_CTX_set_session_psk_dhe_timeout(ctx, t->session_lifetime_s);
#endif
#ifdef OPENSSL_IS_BORINGSSL
	SSL_CTX_set_ticket_aead_method(ctx, &ticket_aead);
#else
	/* Not the old macro: it casts the callback to the HMAC_CTX kind. */
	if (!SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_cb)) {
		SSL_CTX_free(ctx);
		failf(err, "setting the ticket callback", NULL, NULL);
		return NULL;
	}
#endif
	if (ca) {
		STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(ca_file);

		X509_STORE_up_ref(ca);
		SSL_CTX_set_cert_store(ctx, ca);
		if (names) /* the CA names in CertificateRequest, to help clients choose */
			SSL_CTX_set_client_CA_list(ctx, names);
	}
	return ctx;
}

/* The (first) subject CN of x, borrowed from it, or NULL. */
static const ASN1_STRING *subject_cn(X509 *x)
{
	X509_NAME *sub = X509_get_subject_name(x);
	int i = sub ? X509_NAME_get_index_by_NID(sub, NID_commonName, -1) : -1;

	return i >= 0 ? X509_NAME_ENTRY_get_data(X509_NAME_get_entry(sub, i)) : NULL;
}

/* The DNS names a certificate is for (SAN, else CN), as config names would be. */
static int cert_names(X509 *x, char (**out)[256], size_t *n)
{
	GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	char(*v)[256] = NULL;
	size_t k = 0;

	*n = 0;
	if (gens) {
		int m = sk_GENERAL_NAME_num(gens);

		v = calloc(m > 0 ? (size_t)m : 1, sizeof(*v));
		for (int i = 0; v && i < m; i++) {
			const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
			const unsigned char *d;
			int len;

			if (g->type != GEN_DNS)
				continue;
			d = ASN1_STRING_get0_data(g->d.dNSName);
			len = ASN1_STRING_length(g->d.dNSName);
			if (len <= 0 || len >= 256 || memchr(d, 0, (size_t)len))
				continue;
			for (int j = 0; j < len; j++)
				v[k][j] = (char)tolower(d[j]);
			k++;
		}
		GENERAL_NAMES_free(gens);
	}
	if (!k) {
		const ASN1_STRING *cn = subject_cn(x);

		if (cn) {
			int len = ASN1_STRING_length(cn);
			const unsigned char *d = ASN1_STRING_get0_data(cn);

			free(v);
			v = calloc(1, sizeof(*v));
			if (v && len > 0 && len < 256 && !memchr(d, 0, (size_t)len)) {
				for (int j = 0; j < len; j++)
					v[0][j] = (char)tolower(d[j]);
				k = 1;
			}
		}
	}
	*out = v;
	*n = k;
	return v ? 0 : -1;
}

/* Add (name -> entry e) to the index, one EC and one RSA per name. */
static int index_name(struct tls_server *s, const char *name, int e)
{
	struct l7_cert_name *n = NULL;

	for (size_t i = 0; i < s->n_names; i++)
		if (strcmp(s->names[i].name, name) == 0)
			n = &s->names[i];
	if (!n) {
		struct l7_cert_name *nv = realloc(s->names, (s->n_names + 1) * sizeof(*nv));

		if (!nv)
			return -1;
		s->names = nv;
		n = &s->names[s->n_names++];
		memset(n, 0, sizeof(*n));
		snprintf(n->name, sizeof(n->name), "%s", name);
		n->ec = n->rsa = -1;
	}
	/* The first certificate listed for a name and key type wins. */
	if (s->certs[e].ec && n->ec < 0)
		n->ec = e;
	else if (!s->certs[e].ec && n->rsa < 0)
		n->rsa = e;
	return 0;
}

static int load_cert(struct tls_server *s, const struct l7_config *cfg, const struct l7_cert_cfg *k,
		     X509_STORE *ca, char **err)
{
	struct cert_entry *e = &s->certs[s->n_certs];
	char(*names)[256] = NULL;
	size_t n_names = 0;
	EVP_PKEY *pk;
	X509 *x;
	int rc = -1;

	e->ctx = server_ctx(cfg, ca, err);
	if (!e->ctx)
		return -1;
	s->n_certs++;
	if (SSL_CTX_use_certificate_chain_file(e->ctx, k->cert) != 1)
		return failf(err, "loading certificate", k->cert, NULL);
	if (SSL_CTX_use_PrivateKey_file(e->ctx, k->key, SSL_FILETYPE_PEM) != 1)
		return failf(err, "loading private key", k->key, NULL);
	if (SSL_CTX_check_private_key(e->ctx) != 1)
		return failf(err, "certificate and key do not match:", k->cert, NULL);
	x = SSL_CTX_get0_certificate(e->ctx);
	pk = x ? X509_get_pubkey(x) : NULL;
	if (!pk)
		return failf(err, "certificate", k->cert, "no public key");
	e->ec = EVP_PKEY_id(pk) == EVP_PKEY_EC;
	if (!e->ec && EVP_PKEY_id(pk) != EVP_PKEY_RSA) {
		EVP_PKEY_free(pk);
		return failf(err, "certificate", k->cert, "key is neither ECDSA nor RSA");
	}
	EVP_PKEY_free(pk);
	if (k->ocsp[0]) {
		uint8_t *der;
		size_t len;
		const char *why;

		if (read_file(k->ocsp, &der, &len, &why))
			return failf(err, "OCSP response", k->ocsp, why);
		if (!len) {
			free(der);
			return failf(err, "OCSP response", k->ocsp, "empty file");
		}
#ifdef OPENSSL_IS_BORINGSSL
		rc = SSL_CTX_set_ocsp_response(e->ctx, der, len) == 1 ? 0 : -1;
		free(der);
		if (rc)
			return failf(err, "OCSP response", k->ocsp, NULL);
#else
		{
			struct blob *b = malloc(sizeof(*b));

			if (!b || !SSL_CTX_set_ex_data(e->ctx, ocsp_idx, b)) {
				free(b);
				free(der);
				return failf(err, "OCSP response", k->ocsp, "out of memory");
			}
			b->p = der;
			b->n = len;
			SSL_CTX_set_tlsext_status_cb(e->ctx, status_cb);
		}
#endif
	}
	if (k->n_names) {
		for (size_t i = 0; i < k->n_names; i++)
			if (index_name(s, k->names[i], (int)(e - s->certs)))
				return failf(err, "certificate", k->cert, "out of memory");
		return 0;
	}
	if (cert_names(x, &names, &n_names))
		return failf(err, "certificate", k->cert, "out of memory");
	rc = 0;
	for (size_t i = 0; i < n_names && !rc; i++)
		rc = index_name(s, names[i], (int)(e - s->certs));
	free(names);
	if (rc)
		return failf(err, "certificate", k->cert, "out of memory");
	if (!n_names)
		return failf(err, "certificate", k->cert,
			     "names no DNS name (SAN or CN): give it names = [ ... ]");
	return 0;
}

SSL_CTX *l7_tls_server_new(const struct l7_config *cfg, char **err)
{
	const struct l7_tls_cfg *t = &cfg->tls;
	struct tls_server *s;
	X509_STORE *ca = NULL;
	SSL_CTX *base;

	*err = NULL;
	pthread_once(&idx_once, idx_init);
	if (srv_idx < 0 || !t->n_certs) {
		failf(err, "TLS", NULL, srv_idx < 0 ? "no ex_data index" : "no certificate");
		return NULL;
	}
	s = calloc(1, sizeof(*s));
	if (!s || !(s->certs = calloc(t->n_certs, sizeof(*s->certs)))) {
		free(s);
		failf(err, "TLS", NULL, "out of memory");
		return NULL;
	}
	if (t->client_ca[0]) {
		uint8_t *pem;
		size_t len;
		const char *why;
		unsigned int mdlen = 32;

		if (read_file(t->client_ca, &pem, &len, &why)) {
			failf(err, "client CA bundle", t->client_ca, why);
			goto fail;
		}
		EVP_Digest(pem, len, s->ca_digest, &mdlen, EVP_sha256(), NULL);
		free(pem);
		ca = X509_STORE_new();
		if (!ca || X509_STORE_load_locations(ca, t->client_ca, NULL) != 1) {
			failf(err, "client CA bundle", t->client_ca, NULL);
			goto fail;
		}
	}
	for (size_t i = 0; i < t->n_certs; i++)
		if (load_cert(s, cfg, &t->certs[i], ca, err))
			goto fail;
	qsort(s->names, s->n_names, sizeof(*s->names), name_cmp);
	/* The default: the first certificate, with its other-type twin. */
	s->deflt.ec = s->deflt.rsa = -1;
	if (s->certs[0].ec)
		s->deflt.ec = 0;
	else
		s->deflt.rsa = 0;
	for (size_t i = 0; i < s->n_names; i++)
		if (s->names[i].ec == 0 || s->names[i].rsa == 0) {
			if (s->deflt.ec < 0)
				s->deflt.ec = s->names[i].ec;
			if (s->deflt.rsa < 0)
				s->deflt.rsa = s->names[i].rsa;
		}
	if (t->ticket_secret[0]) {
		if (ticket_keys_load(&s->keys, t->ticket_secret, t->ticket_period_s,
				     t->session_lifetime_s, t->clock_skew_s, err))
			goto fail;
	} else {
		/* No PoP secret: a key series of this process alone. */
		uint8_t rnd[64];

		if (RAND_bytes(rnd, sizeof(rnd)) != 1 ||
		    ticket_keys_init(&s->keys, rnd, sizeof(rnd), t->ticket_period_s,
				     t->session_lifetime_s, t->clock_skew_s)) {
			failf(err, "ticket keys", NULL, "no randomness");
			goto fail;
		}
		OPENSSL_cleanse(rnd, sizeof(rnd));
	}
	base = server_ctx(cfg, ca, err);
	if (!base)
		goto fail;
	/* TLS 1.2 session IDs: one cache for every worker of the process,
	 * bounded, entries expire with the session lifetime. */
	if (t->session_cache_size) {
		SSL_CTX_set_session_cache_mode(base, SSL_SESS_CACHE_SERVER);
		SSL_CTX_sess_set_cache_size(base, t->session_cache_size);
	} else {
		SSL_CTX_set_session_cache_mode(base, SSL_SESS_CACHE_OFF);
	}
#ifdef OPENSSL_IS_BORINGSSL
	SSL_CTX_set_select_certificate_cb(base, select_cb);
#else
	SSL_CTX_set_client_hello_cb(base, hello_cb, NULL);
#endif
	if (!SSL_CTX_set_ex_data(base, srv_idx, s)) {
		SSL_CTX_free(base);
		failf(err, "TLS", NULL, "ex_data");
		goto fail;
	}
	X509_STORE_free(ca);
	return base;
fail:
	X509_STORE_free(ca);
	srv_free(NULL, s, NULL, 0, 0, NULL);
	return NULL;
}

SSL *l7_tls_server_ssl(SSL_CTX *base, enum l7_client_auth auth)
{
	SSL *ssl = SSL_new(base);

	if (!ssl)
		return NULL;
	if (!SSL_set_ex_data(ssl, ssl_idx, SSL_CTX_get_ex_data(base, srv_idx))) {
		SSL_free(ssl);
		return NULL;
	}
	if (auth == L7_CLIENT_AUTH_REQUIRE)
		SSL_set_verify(ssl, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	else if (auth == L7_CLIENT_AUTH_REQUEST)
		SSL_set_verify(ssl, SSL_VERIFY_PEER, NULL);
	return ssl;
}

/* --- identity ------------------------------------------------------------------------ */

static int copy_identity(const unsigned char *d, int len, char *out, size_t cap)
{
	if (len <= 0)
		return 0;
	if ((size_t)len >= cap)
		return -1;
	for (int i = 0; i < len; i++)
		if (d[i] <= 0x20 || d[i] >= 0x7f || d[i] == '"' || d[i] == '\\' || d[i] == ',')
			return -1;
	memcpy(out, d, (size_t)len);
	out[len] = '\0';
	return len;
}

int l7_tls_peer_identity(SSL *ssl, char *out, size_t cap)
{
#ifdef OPENSSL_IS_BORINGSSL
	X509 *x = SSL_get_peer_certificate(ssl);
#else
	X509 *x = SSL_get1_peer_certificate(ssl);
#endif
	GENERAL_NAMES *gens;
	int rc = 0;

	out[0] = '\0';
	if (!x)
		return 0;
	if (SSL_get_verify_result(ssl) != X509_V_OK) {
		X509_free(x);
		return 0;
	}
	/* A resumed session carries the certificate verified when it began:
	 * one that has expired since gives no identity any more. */
	if (X509_cmp_current_time(X509_get0_notAfter(x)) <= 0 ||
	    X509_cmp_current_time(X509_get0_notBefore(x)) >= 0) {
		X509_free(x);
		return -2;
	}
	gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	for (size_t i = 0; gens && i < (size_t)sk_GENERAL_NAME_num(gens); i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);

		if (g->type != GEN_URI)
			continue;
		rc = copy_identity(ASN1_STRING_get0_data(g->d.uniformResourceIdentifier),
				   ASN1_STRING_length(g->d.uniformResourceIdentifier), out, cap);
		break;
	}
	GENERAL_NAMES_free(gens);
	if (rc == 0) {
		const ASN1_STRING *cn = subject_cn(x);

		if (cn)
			rc = copy_identity(ASN1_STRING_get0_data(cn), ASN1_STRING_length(cn), out,
					   cap);
	}
	X509_free(x);
	if (rc < 0)
		out[0] = '\0';
	return rc;
}

int l7_tls_version_minor(const SSL *ssl)
{
	switch (SSL_version(ssl)) {
	case TLS1_3_VERSION:
		return 3;
	case TLS1_2_VERSION:
		return 2;
	default:
		return 0;
	}
}

/* --- the client side ---------------------------------------------------------------- */

/*
 * A new session from a backend (TLS 1.3 tickets arrive after the
 * handshake): kept in the slot the connection names, one per backend and
 * worker, for the next connection to resume.
 */
static int client_new_session(SSL *ssl, SSL_SESSION *sess)
{
	struct conn *c = conn_of(ssl);

	if (!c || !c->tls_session_slot)
		return 0;
	if (*c->tls_session_slot)
		SSL_SESSION_free(*c->tls_session_slot);
	*c->tls_session_slot = sess;
	return 1; /* we own it now */
}

SSL_CTX *l7_tls_client_ctx_new(const struct l7_cluster_cfg *cl, char **err)
{
	SSL_CTX *ctx = base_ctx(err);
	bool h2 = cl->proto == L7_PROTO_H2;

	if (!ctx)
		return NULL;
	if (SSL_CTX_set_alpn_protos(ctx, h2 ? alpn_h2 : alpn_h1,
				    (unsigned)(h2 ? sizeof(alpn_h2) : sizeof(alpn_h1)) - 1) != 0)
		return fail(ctx, err, "setting ALPN", NULL);
	if (cl->tls_verify) {
		if (SSL_CTX_load_verify_locations(ctx, cl->tls_ca, NULL) != 1)
			return fail(ctx, err, "loading CA bundle", cl->tls_ca);
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	} else {
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	}
	if (cl->tls_cert[0]) {
		if (SSL_CTX_use_certificate_chain_file(ctx, cl->tls_cert) != 1)
			return fail(ctx, err, "loading client certificate", cl->tls_cert);
		if (SSL_CTX_use_PrivateKey_file(ctx, cl->tls_key, SSL_FILETYPE_PEM) != 1)
			return fail(ctx, err, "loading client key", cl->tls_key);
		if (SSL_CTX_check_private_key(ctx) != 1)
			return fail(ctx, err,
				    "client certificate and key do not match:", cl->tls_cert);
	}
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL);
	SSL_CTX_sess_set_new_cb(ctx, client_new_session);
	return ctx;
}

int l7_tls_client_setup(SSL *ssl, const char *sni)
{
	if (!sni[0])
		return 0;
	if (!SSL_set_tlsext_host_name(ssl, sni))
		return -1;
	/* The certificate must name the backend we meant to reach. */
	return X509_VERIFY_PARAM_set1_host(SSL_get0_param(ssl), sni, strlen(sni)) == 1 ? 0 : -1;
}
