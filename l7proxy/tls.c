// SPDX-License-Identifier: GPL-2.0-only
#include "tls.h"

#include <openssl/err.h>
#include <stdio.h>
#include <string.h>

static const unsigned char alpn_h1[] = "\x08http/1.1";

static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
		       const unsigned char *in, unsigned int inlen, void *arg)
{
	(void)ssl;
	(void)arg;
	if (SSL_select_next_proto((unsigned char **)out, outlen, alpn_h1, sizeof(alpn_h1) - 1, in,
				  inlen) == OPENSSL_NPN_NEGOTIATED)
		return SSL_TLSEXT_ERR_OK;
	return SSL_TLSEXT_ERR_NOACK;
}

static SSL_CTX *fail(SSL_CTX *ctx, char **err, const char *what, const char *file)
{
	char buf[256];

	ERR_error_string_n(ERR_get_error(), buf, sizeof(buf));
	if (asprintf(err, "%s%s%s: %s", what, file ? " " : "", file ? file : "", buf) < 0)
		*err = NULL;
	SSL_CTX_free(ctx);
	return NULL;
}

SSL_CTX *l7_tls_ctx_new(const char *cert_file, const char *key_file, char **err)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_method());

	if (!ctx)
		return fail(NULL, err, "SSL_CTX_new", NULL);
	if (!SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) ||
	    !SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION))
		return fail(ctx, err, "setting TLS versions", NULL);
	/* TLS 1.2: ECDHE + AEAD only. TLS 1.3 suites are all forward secret. */
	if (!SSL_CTX_set_cipher_list(ctx, "ECDHE-ECDSA-AES128-GCM-SHA256:"
					  "ECDHE-ECDSA-CHACHA20-POLY1305:"
					  "ECDHE-ECDSA-AES256-GCM-SHA384:"
					  "ECDHE-RSA-AES128-GCM-SHA256:"
					  "ECDHE-RSA-CHACHA20-POLY1305:"
					  "ECDHE-RSA-AES256-GCM-SHA384"))
		return fail(ctx, err, "setting ciphers", NULL);
	if (!SSL_CTX_set1_curves_list(ctx, "X25519:P-256"))
		return fail(ctx, err, "setting groups", NULL);
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE);
	/* Partial writes and moving buffers: the proxy retries SSL_write from
	 * a ring-like buffer that may have been compacted in between. */
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
				  SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
	SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
	if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1)
		return fail(ctx, err, "loading certificate", cert_file);
	if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1)
		return fail(ctx, err, "loading private key", key_file);
	if (SSL_CTX_check_private_key(ctx) != 1)
		return fail(ctx, err, "certificate and key do not match", cert_file);
	return ctx;
}
