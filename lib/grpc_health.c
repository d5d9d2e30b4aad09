// SPDX-License-Identifier: GPL-2.0-only
#include "grpc_health.h"

#include <string.h>

static const char *const codes[] = {
    "OK",	 "CANCELLED",	   "UNKNOWN",		"INVALID_ARGUMENT",   "DEADLINE_EXCEEDED",
    "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
    "ABORTED",	 "OUT_OF_RANGE",   "UNIMPLEMENTED",	"INTERNAL",	      "UNAVAILABLE",
    "DATA_LOSS", "UNAUTHENTICATED"};

const char *grpc_code_name(unsigned code)
{
	return code < sizeof(codes) / sizeof(codes[0]) ? codes[code] : NULL;
}

size_t grpc_health_request(const char *service, uint8_t *out, size_t cap)
{
	size_t sl = strlen(service), body = sl ? 2 + sl : 0;

	/* proto3 leaves an empty string out: the message is then empty. */
	if (sl > 127 || 5 + body > cap)
		return 0;
	out[0] = 0; /* not compressed */
	out[1] = out[2] = out[3] = 0;
	out[4] = (uint8_t)body;
	if (sl) {
		out[5] = 1 << 3 | 2; /* field 1 (service), length-delimited */
		out[6] = (uint8_t)sl;
		memcpy(out + 7, service, sl);
	}
	return 5 + body;
}

/* A protobuf varint from m[*i..len), advancing *i; 0 or -1 (cut or > 10 bytes). */
static int varint(const uint8_t *m, size_t len, size_t *i, uint64_t *v)
{
	*v = 0;
	for (unsigned shift = 0; shift < 70; shift += 7) {
		uint8_t b;

		if (*i >= len)
			return -1;
		b = m[(*i)++];
		*v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80))
			return 0;
	}
	return -1;
}

int grpc_health_status(const uint8_t *msg, size_t len)
{
	uint64_t status = 0;
	size_t i = 5;

	/* gRPC's PROTOCOL-HTTP2: Compressed-Flag, 4-byte big-endian length. */
	if (len < 5 || msg[0] != 0 ||
	    ((size_t)msg[1] << 24 | (size_t)msg[2] << 16 | (size_t)msg[3] << 8 | msg[4]) != len - 5)
		return -1;
	while (i < len) {
		uint64_t key, v;

		if (varint(msg, len, &i, &key))
			return -1;
		switch (key & 7) {
		case 0:
			if (varint(msg, len, &i, &v))
				return -1;
			if (key >> 3 == 1)
				status = v;
			break;
		case 1:
			if (len - i < 8)
				return -1;
			i += 8;
			break;
		case 2:
			if (varint(msg, len, &i, &v) || v > len - i)
				return -1;
			i += v;
			break;
		case 5:
			if (len - i < 4)
				return -1;
			i += 4;
			break;
		default:
			return -1;
		}
		/* HealthCheckResponse.status (1) is an enum: a varint. */
		if (key >> 3 == 1 && (key & 7) != 0)
			return -1;
	}
	return status > 1000 ? 1000 : (int)status;
}
