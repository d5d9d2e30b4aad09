/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * addrnum.h - IPv4 and IPv6 addresses as 128-bit unsigned numbers, so that
 * walking ranges, cutting them into prefixes and picking an address inside
 * a subnet is ordinary arithmetic for both families. gnu11 on every target
 * we build for (x86-64, arm64) has unsigned __int128.
 */
#ifndef PORTICO_GSLB_ADDRNUM_H
#define PORTICO_GSLB_ADDRNUM_H

#include <stdint.h>

typedef unsigned __int128 addrnum;

/* The first bits / 8 bytes of a (network order) as a number. */
static inline addrnum addrnum_get(const uint8_t *a, unsigned bits)
{
	addrnum n = 0;

	for (unsigned i = 0; i < bits / 8; i++)
		n = n << 8 | a[i];
	return n;
}

/* Store the low bits of n into bits / 8 bytes of a, network order. */
static inline void addrnum_put(addrnum n, uint8_t *a, unsigned bits)
{
	for (unsigned i = bits / 8; i-- > 0; n >>= 8)
		a[i] = (uint8_t)n;
}

/* The number with the low h bits set (h in 0..128). */
static inline addrnum addrnum_low(unsigned h)
{
	return h >= 128 ? ~(addrnum)0 : ((addrnum)1 << h) - 1;
}

/* Trailing zero bits of n, at most bits (bits when n is 0). */
static inline unsigned addrnum_ctz(addrnum n, unsigned bits)
{
	uint64_t lo = (uint64_t)n, hi = (uint64_t)(n >> 64);
	unsigned z = lo	  ? (unsigned)__builtin_ctzll(lo)
		     : hi ? 64 + (unsigned)__builtin_ctzll(hi)
			  : 128;

	return z < bits ? z : bits;
}

#endif
