// SPDX-License-Identifier: GPL-2.0-only
#include "ticket.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifdef OPENSSL_IS_BORINGSSL
#include <openssl/hkdf.h>
#else
#include <openssl/kdf.h>
#endif

/* Labels keep these keys apart from anything else derived from the secret. */
static const uint8_t salt_label[] = "portico session tickets v1";
static const uint8_t series_info[] = "series";
static const uint8_t key_info[] = "ticket key";

int hkdf_sha256(uint8_t *out, size_t out_len, const uint8_t *ikm, size_t ikm_len,
		const uint8_t *salt, size_t salt_len, const uint8_t *info, size_t info_len)
{
	static const uint8_t zero[32];

	if (!salt || !salt_len) {
		salt = zero;
		salt_len = sizeof(zero);
	}
#ifdef OPENSSL_IS_BORINGSSL
	return HKDF(out, out_len, EVP_sha256(), ikm, ikm_len, salt, salt_len, info, info_len) == 1
		   ? 0
		   : -1;
#else
	EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, NULL);
	size_t n = out_len;
	int ok = pc && EVP_PKEY_derive_init(pc) > 0 &&
		 EVP_PKEY_CTX_set_hkdf_md(pc, EVP_sha256()) > 0 &&
		 EVP_PKEY_CTX_set1_hkdf_salt(pc, salt, (int)salt_len) > 0 &&
		 EVP_PKEY_CTX_set1_hkdf_key(pc, ikm, (int)ikm_len) > 0 &&
		 (!info_len || EVP_PKEY_CTX_add1_hkdf_info(pc, info, (int)info_len) > 0) &&
		 EVP_PKEY_derive(pc, out, &n) > 0 && n == out_len;

	EVP_PKEY_CTX_free(pc);
	return ok ? 0 : -1;
#endif
}

int ticket_keys_init(struct ticket_keys *k, const uint8_t *secret, size_t secret_len,
		     uint32_t period_s, uint32_t lifetime_s, uint32_t skew_s)
{
	memset(k, 0, sizeof(*k));
	if (secret_len < TICKET_SECRET_MIN || secret_len > TICKET_SECRET_MAX || !period_s)
		return -1;
	memcpy(k->secret, secret, secret_len);
	k->secret_len = secret_len;
	k->period_s = period_s;
	k->lifetime_s = lifetime_s;
	k->skew_s = skew_s;
	return hkdf_sha256(k->series, sizeof(k->series), k->secret, k->secret_len, salt_label,
			   sizeof(salt_label) - 1, series_info, sizeof(series_info) - 1);
}

int ticket_keys_load(struct ticket_keys *k, const char *path, uint32_t period_s,
		     uint32_t lifetime_s, uint32_t skew_s, char **err)
{
	uint8_t buf[TICKET_SECRET_MAX + 1];
	const char *why = NULL;
	ssize_t n = 0, r;
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);

	*err = NULL;
	if (fd < 0) {
		why = strerror(errno);
		goto fail;
	}
	/* A FIFO or a device would block or never end: files only. */
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		why = "not a regular file";
		close(fd);
		goto fail;
	}
	/* Read to the end (bounded): a secret is whole or refused. */
	while ((size_t)n < sizeof(buf) && (r = read(fd, buf + n, sizeof(buf) - (size_t)n)) != 0) {
		if (r < 0) {
			if (errno == EINTR)
				continue;
			why = strerror(errno);
			break;
		}
		n += r;
	}
	close(fd);
	if (!why && n < TICKET_SECRET_MIN)
		why = "too short: at least 32 bytes (e.g. head -c 64 /dev/urandom)";
	else if (!why && n > TICKET_SECRET_MAX)
		why = "too long: at most 4096 bytes";
	else if (!why && ticket_keys_init(k, buf, (size_t)n, period_s, lifetime_s, skew_s))
		why = "key derivation failed";
	OPENSSL_cleanse(buf, sizeof(buf));
	if (!why)
		return 0;
fail:
	if (asprintf(err, "ticket secret %s: %s", path, why) < 0)
		*err = NULL;
	ticket_keys_wipe(k);
	return -1;
}

uint64_t ticket_period(const struct ticket_keys *k, uint64_t now_s)
{
	return now_s / k->period_s;
}

int ticket_key_derive(const struct ticket_keys *k, uint64_t period, struct ticket_key *out)
{
	uint8_t info[sizeof(key_info) - 1 + 8], okm[64];
	int rc;

	memcpy(info, key_info, sizeof(key_info) - 1);
	for (int i = 0; i < 8; i++)
		info[sizeof(key_info) - 1 + i] = (uint8_t)(period >> (56 - 8 * i));
	rc = hkdf_sha256(okm, sizeof(okm), k->secret, k->secret_len, salt_label,
			 sizeof(salt_label) - 1, info, sizeof(info));
	memcpy(out->name, k->series, 8);
	memcpy(out->name + 8, info + sizeof(key_info) - 1, 8);
	memcpy(out->aes, okm, 32);
	memcpy(out->hmac, okm + 32, 32);
	OPENSSL_cleanse(okm, sizeof(okm));
	return rc;
}

int ticket_key_lookup(const struct ticket_keys *k, const uint8_t name[16], uint64_t now_s,
		      struct ticket_key *out)
{
	uint64_t period = 0, lo, hi, back = (uint64_t)k->lifetime_s + k->skew_s;

	if (CRYPTO_memcmp(name, k->series, 8) != 0)
		return 0;
	for (int i = 0; i < 8; i++)
		period = period << 8 | name[8 + i];
	lo = ticket_period(k, now_s > back ? now_s - back : 0);
	hi = ticket_period(k, now_s + k->skew_s);
	if (period < lo || period > hi)
		return 0;
	if (ticket_key_derive(k, period, out))
		return 0;
	return period == ticket_period(k, now_s) ? 1 : 2;
}

void ticket_keys_wipe(struct ticket_keys *k)
{
	OPENSSL_cleanse(k, sizeof(*k));
}
