/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * inet_csum.h - the Internet checksum (RFC 1071) for the tests and
 * benchmarks that build or check packets by hand.
 */
#ifndef PORTICO_INET_CSUM_H
#define PORTICO_INET_CSUM_H

#include <stddef.h>
#include <stdint.h>

/* s plus the n bytes at p summed as big-endian 16-bit words (an odd last
 * byte padded with a zero); unfolded, so sums can be chained (a pseudo
 * header, then the payload). */
static inline uint32_t inet_sum16(const void *p, size_t n, uint32_t s)
{
	const uint8_t *b = p;

	for (size_t i = 0; i + 1 < n; i += 2)
		s += (uint32_t)(b[i] << 8 | b[i + 1]);
	if (n & 1)
		s += (uint32_t)b[n - 1] << 8;
	return s;
}

/* A sum folded to 16 bits, not complemented: ~ of it is the checksum to
 * store (host order), and a packet whose sum folds to 0xffff checks. */
static inline uint16_t inet_fold(uint32_t s)
{
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)s;
}

#endif /* PORTICO_INET_CSUM_H */
