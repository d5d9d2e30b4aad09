/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * utf8.h - is this UTF-8? For output formats that require it (Prometheus
 * label values, JSON), when the bytes come from a client.
 */
#ifndef PORTICO_UTF8_H
#define PORTICO_UTF8_H

#include <stddef.h>

/*
 * The length (2 to 4) of the well-formed UTF-8 sequence starting at s
 * (RFC 3629 section 4: no overlong forms, no surrogates, nothing above
 * U+10FFFF), or 0 if s[0] does not start one within n bytes. s[0] must
 * be >= 0x80 (ASCII is the caller's).
 */
static inline size_t utf8_seq_len(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	size_t len;
	unsigned char lo = 0x80, hi = 0xbf;

	if (c >= 0xc2 && c <= 0xdf)
		len = 2;
	else if (c >= 0xe0 && c <= 0xef)
		len = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		len = 4;
	else
		return 0;
	if (n < len)
		return 0;
	/* The second byte's range excludes overlongs and surrogates. */
	if (c == 0xe0)
		lo = 0xa0;
	else if (c == 0xed)
		hi = 0x9f;
	else if (c == 0xf0)
		lo = 0x90;
	else if (c == 0xf4)
		hi = 0x8f;
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return len;
}

#endif
