/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * tls.h - TLS contexts. Written against the API that BoringSSL and
 * OpenSSL 3 share, so both can be built and compared.
 *
 * Server policy: TLS 1.2 and 1.3 only; forward-secret AEAD suites only
 * (ECDHE); X25519 then P-256; ALPN "h2" preferred, then "http/1.1" (a
 * client offering neither gets no ALPN and speaks HTTP/1.1).
 */
#ifndef PORTICO_L7_TLS_H
#define PORTICO_L7_TLS_H

#include <openssl/ssl.h>
#include <stdbool.h>

/*
 * Build a server context from a PEM certificate chain and private key.
 * Returns it (caller frees with SSL_CTX_free; shared read-only by all
 * workers), or NULL with a malloc'd message in *err.
 */
SSL_CTX *l7_tls_ctx_new(const char *cert_file, const char *key_file, char **err);

/*
 * A client context toward HTTP/2 backends (ALPN "h2"), verifying the peer
 * against ca_file when verify (then sni, if not empty, is the name
 * checked). Returns it or NULL with *err as above.
 */
SSL_CTX *l7_tls_client_ctx_new(const char *ca_file, bool verify, char **err);

/* Per-connection client setup: SNI and the name to verify (may be ""). */
int l7_tls_client_setup(SSL *ssl, const char *sni);

#endif
