/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * ticket.h - session-ticket keys every L7 host of a PoP derives alike,
 * without talking to the others.
 *
 * key(period) = HKDF-SHA256 (RFC 5869) of the PoP-wide secret file, with
 * the period number (wall-clock seconds / period length) in the info. A
 * ticket's 16-byte key name is the secret's series id (8 bytes, itself
 * derived from the secret) and the period number (8 bytes, big endian),
 * so any host can tell which key sealed a ticket and whether it belongs
 * to the current secret at all.
 *
 * Tickets are sealed with the key of the current period and opened with
 * any period from (now - lifetime - skew) to (now + skew): the previous
 * periods a live ticket may come from, and the next one for a host whose
 * clock runs ahead. A new secret is a new series: its hosts open none of
 * the old tickets, which become full handshakes.
 *
 * Whoever holds the secret can decrypt every ticket of every period it
 * was used for (and so the sessions' resumption secrets): it protects
 * what a long-lived key would, so rotate it as one (docs/operations.md).
 */
#ifndef PORTICO_L7_TICKET_H
#define PORTICO_L7_TICKET_H

#include <stddef.h>
#include <stdint.h>

#define TICKET_SECRET_MIN 32   /* bytes of secret file, at least */
#define TICKET_SECRET_MAX 4096 /* and at most */

struct ticket_keys {
	uint8_t secret[TICKET_SECRET_MAX];
	size_t secret_len;
	uint8_t series[8];   /* first half of every key name */
	uint32_t period_s;   /* rotation period */
	uint32_t lifetime_s; /* a ticket is accepted this long after its period */
	uint32_t skew_s;     /* tolerated clock difference between hosts */
};

/* One period's key: what the ticket callback feeds AES-256-CBC and HMAC. */
struct ticket_key {
	uint8_t name[16];
	uint8_t aes[32];
	uint8_t hmac[32];
};

/*
 * HKDF-SHA256 (RFC 5869 §2): extract with salt, expand with info into
 * out_len bytes (at most 255 * 32). salt may be NULL (then zeros, as the
 * RFC says). Returns 0 or -1.
 */
int hkdf_sha256(uint8_t *out, size_t out_len, const uint8_t *ikm, size_t ikm_len,
		const uint8_t *salt, size_t salt_len, const uint8_t *info, size_t info_len);

/*
 * Set k up from a secret held in memory (secret_len in [TICKET_SECRET_MIN,
 * TICKET_SECRET_MAX]) and the timing: period_s >= 1, lifetime_s and
 * skew_s may be 0. Returns 0 or -1.
 */
int ticket_keys_init(struct ticket_keys *k, const uint8_t *secret, size_t secret_len,
		     uint32_t period_s, uint32_t lifetime_s, uint32_t skew_s);

/*
 * Read the secret from path into k (as ticket_keys_init). Returns 0, or
 * -1 with a malloc'd message naming the file and the reason in *err.
 */
int ticket_keys_load(struct ticket_keys *k, const char *path, uint32_t period_s,
		     uint32_t lifetime_s, uint32_t skew_s, char **err);

/* The period wall-clock second now_s falls in. */
uint64_t ticket_period(const struct ticket_keys *k, uint64_t now_s);

/* The key of a period (for sealing: ticket_period(k, now)). 0 or -1. */
int ticket_key_derive(const struct ticket_keys *k, uint64_t period, struct ticket_key *out);

/*
 * The key that opens a ticket named name at now_s. Returns 1 (the current
 * period's key), 2 (an accepted other period's: the caller issues a fresh
 * ticket), or 0: not this secret's, or outside the accepted window (a
 * full handshake, never an error).
 */
int ticket_key_lookup(const struct ticket_keys *k, const uint8_t name[16], uint64_t now_s,
		      struct ticket_key *out);

/* Wipe k's secret. */
void ticket_keys_wipe(struct ticket_keys *k);

#endif
