/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * tls.h - the server-side TLS context. Written against the API that
 * BoringSSL and OpenSSL 3 share, so both can be built and compared.
 *
 * Policy: TLS 1.2 and 1.3 only; forward-secret AEAD suites only (ECDHE);
 * X25519 then P-256; ALPN "http/1.1" (a client offering only h2 gets no
 * ALPN and speaks HTTP/1.1, which is what it would get from us anyway).
 */
#ifndef PORTICO_L7_TLS_H
#define PORTICO_L7_TLS_H

#include <openssl/ssl.h>

/*
 * Build a context from a PEM certificate chain and private key. Returns it
 * (caller frees with SSL_CTX_free; shared read-only by all workers), or
 * NULL with a malloc'd message in *err.
 */
SSL_CTX *l7_tls_ctx_new(const char *cert_file, const char *key_file, char **err);

#endif
