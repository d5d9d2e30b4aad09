// SPDX-License-Identifier: GPL-2.0-only
#include "grpc.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

bool grpc_content_type(const char *v, size_t len)
{
	static const char base[] = "application/grpc";
	size_t n = sizeof(base) - 1;

	if (len < n || strncasecmp(v, base, n) != 0)
		return false;
	return len == n || v[n] == '+' || v[n] == ';';
}

int grpc_timeout_parse(const char *v, size_t len, uint64_t *ms)
{
	const uint64_t cap = (uint64_t)1 << 53;
	uint64_t n = 0, num, den;

	/* PROTOCOL-HTTP2: TimeoutValue is at most 8 digits. */
	if (len < 2 || len > 9)
		return -EINVAL;
	for (size_t i = 0; i < len - 1; i++) {
		if (v[i] < '0' || v[i] > '9')
			return -EINVAL;
		n = n * 10 + (uint64_t)(v[i] - '0');
	}
	switch (v[len - 1]) {
	case 'H':
		num = 3600000, den = 1;
		break;
	case 'M':
		num = 60000, den = 1;
		break;
	case 'S':
		num = 1000, den = 1;
		break;
	case 'm':
		num = 1, den = 1;
		break;
	case 'u':
		num = 1, den = 1000;
		break;
	case 'n':
		num = 1, den = 1000000;
		break;
	default:
		return -EINVAL;
	}
	/* n < 10^8 and num <= 3.6e6: the product fits in 64 bits. */
	n = (n * num + den - 1) / den;
	*ms = n > cap ? cap : n;
	return 0;
}

size_t grpc_timeout_format(uint64_t ms, char *out)
{
	static const struct {
		char unit;
		uint64_t ms;
	} units[] = {{'m', 1}, {'S', 1000}, {'M', 60000}, {'H', 3600000}};
	size_t i;

	for (i = 0; i < sizeof(units) / sizeof(units[0]) - 1; i++)
		if (ms / units[i].ms <= 99999999)
			break;
	if (ms / units[i].ms > 99999999)
		ms = 99999999 * units[i].ms;
	return (size_t)snprintf(out, 10, "%llu%c", (unsigned long long)(ms / units[i].ms),
				units[i].unit);
}

enum grpc_status grpc_status_for_http(int http)
{
	switch (http) {
	case 400:
		return GRPC_INTERNAL;
	case 401:
		return GRPC_UNAUTHENTICATED;
	case 403:
		return GRPC_PERMISSION_DENIED;
	case 404:
		return GRPC_UNIMPLEMENTED;
	case 408:
	case 504:
		return GRPC_DEADLINE_EXCEEDED;
	case 413:
	case 429:
	case 431:
		return GRPC_RESOURCE_EXHAUSTED;
	case 502:
	case 503:
		return GRPC_UNAVAILABLE;
	default:
		return http >= 500 ? GRPC_INTERNAL : GRPC_UNKNOWN;
	}
}

size_t grpc_message_encode(const char *msg, char *out, size_t cap)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = 0;

	for (; *msg && n + 4 <= cap; msg++) {
		unsigned char c = (unsigned char)*msg;

		if (c >= 0x20 && c <= 0x7e && c != '%') {
			out[n++] = (char)c;
		} else {
			out[n++] = '%';
			out[n++] = hex[c >> 4];
			out[n++] = hex[c & 15];
		}
	}
	if (cap)
		out[n] = '\0';
	return n;
}
