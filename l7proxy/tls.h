/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * tls.h - TLS contexts. Written against the API that BoringSSL and
 * OpenSSL 3 share (with small #ifdef'd branches where they differ), so
 * both can be built and compared.
 *
 * Server policy: TLS 1.2 and 1.3 only; forward-secret AEAD suites only
 * (ECDHE), AES-GCM and ChaCha20 of equal preference so a client without
 * AES hardware gets ChaCha20; X25519 then P-256; ALPN "h2" preferred,
 * then "http/1.1" (a client offering neither speaks HTTP/1.1).
 *
 * The server side is one "base" SSL_CTX per configuration, which owns
 * everything the handshakes need (certificates by name, ticket keys, the
 * TLS 1.2 session-ID cache, the client CA): a connection's SSL keeps its
 * base alive, so a reload that makes a new base never pulls material
 * from under a handshake in flight.
 *
 * Per connection, before the resumption decision (BoringSSL's
 * select_certificate callback, OpenSSL's client_hello callback), the
 * ClientHello's SNI picks the certificate (exact name, then "*.parent",
 * then the first certificate) and its key type (ECDSA if the client can
 * verify it, else RSA), and the session-ID context is set to a digest of
 * the server name and the client-certificate policy: a session issued
 * under one name or policy never resumes under another.
 */
#ifndef PORTICO_L7_TLS_H
#define PORTICO_L7_TLS_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

/*
 * Build the server base context for cfg->tls: load every certificate,
 * key, OCSP response, the client CA and the ticket secret. Returns it
 * with one reference for the caller (SSL_CTX_free), or NULL with a
 * malloc'd message naming the file and the reason in *err.
 */
SSL_CTX *l7_tls_server_new(const struct l7_config *cfg, char **err);

/* A server SSL from base for a listener with the given client-cert policy. */
SSL *l7_tls_server_ssl(SSL_CTX *base, enum l7_client_auth auth);

/*
 * A client context toward a cluster's TLS backends (ALPN "h2" or
 * "http/1.1" by its protocol), verifying them against its CA when
 * tls_verify, presenting its client certificate if it has one, and
 * caching sessions for resumption (l7_tls_client_session_*). Returns it
 * or NULL with *err as above.
 */
SSL_CTX *l7_tls_client_ctx_new(const struct l7_cluster_cfg *cl, char **err);

/* Per-connection client setup: SNI and the name to verify (may be ""). */
int l7_tls_client_setup(SSL *ssl, const char *sni);

/*
 * The verified client identity of a finished server handshake: the first
 * URI SAN (a SPIFFE ID, say), else the subject CN. Writes it NUL-ended to
 * out and returns its length; 0 when there is no verified certificate;
 * -1 when the name does not fit cap or has bytes that cannot go into a
 * header; -2 when the certificate (of a resumed session) is no longer
 * within its validity (no identity in either case).
 */
int l7_tls_peer_identity(SSL *ssl, char *out, size_t cap);

/* "TLSv1.3" / "TLSv1.2" handshakes, for counters: 3, 2 or 0. */
int l7_tls_version_minor(const SSL *ssl);

/* --- pieces exposed for the unit tests ---------------------------------------- */

/*
 * The host_name of a ClientHello server_name extension body (RFC 6066
 * §3), lower-cased, trailing dot removed, into out. Returns 1; 0 if the
 * list has no host_name or it is not a host name that fits cap (an IP
 * literal, say: the default certificate serves it); -1 if malformed.
 */
int l7_tls_sni_parse(const uint8_t *ext, size_t len, char *out, size_t cap);

/*
 * Can this client verify an ECDSA P-256 certificate? From its cipher
 * suites, signature_algorithms and supported_versions extension bodies
 * (NULL when absent).
 */
bool l7_tls_client_ecdsa(const uint8_t *ciphers, size_t ciphers_len, const uint8_t *sigalgs,
			 size_t sigalgs_len, const uint8_t *versions, size_t versions_len);

/* A served name and its certificates by key type (indexes, -1 = none). */
struct l7_cert_name {
	char name[256];
	int ec, rsa;
};

/*
 * The entry for sni in v (sorted by name, n entries): an exact match,
 * else the "*.parent" wildcard of sni's first label, else NULL.
 */
const struct l7_cert_name *l7_cert_lookup(const struct l7_cert_name *v, size_t n, const char *sni);

#endif
