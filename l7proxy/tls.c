// SPDX-License-Identifier: GPL-2.0-only
#include "tls.h"

#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>

/* Server preference: HTTP/2 when the client offers it. */
static const unsigned char alpn_server[] = "\x02h2\x08http/1.1";
static const unsigned char alpn_client[] = "\x02h2";

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

static SSL_CTX *fail(SSL_CTX *ctx, char **err, const char *what, const char *file)
{
	char buf[256];

	ERR_error_string_n(ERR_get_error(), buf, sizeof(buf));
	if (asprintf(err, "%s%s%s: %s", what, file ? " " : "", file ? file : "", buf) < 0)
		*err = NULL;
	SSL_CTX_free(ctx);
	return NULL;
}

static SSL_CTX *base_ctx(char **err)
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
	/* Partial writes from a pipe whose head block may move between
	 * retries; buffers released while a connection is idle, which is
	 * most of an idle keepalive connection's memory. */
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
				  SSL_MODE_RELEASE_BUFFERS);
	return ctx;
}

SSL_CTX *l7_tls_ctx_new(const char *cert_file, const char *key_file, char **err)
{
	SSL_CTX *ctx = base_ctx(err);

	if (!ctx)
		return NULL;
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

SSL_CTX *l7_tls_client_ctx_new(const char *ca_file, bool verify, char **err)
{
	SSL_CTX *ctx = base_ctx(err);

	if (!ctx)
		return NULL;
	if (SSL_CTX_set_alpn_protos(ctx, alpn_client, sizeof(alpn_client) - 1) != 0)
		return fail(ctx, err, "setting ALPN", NULL);
	if (verify) {
		if (SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1)
			return fail(ctx, err, "loading CA bundle", ca_file);
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	} else {
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	}
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
