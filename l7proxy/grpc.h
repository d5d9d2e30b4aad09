/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * grpc.h - the rules gRPC adds to a stream (gRPC over HTTP/2, as the gRPC
 * project's PROTOCOL-HTTP2 document describes it): the grpc-timeout
 * header, status codes, and how an error the proxy makes itself is said.
 */
#ifndef PORTICO_L7_GRPC_H
#define PORTICO_L7_GRPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Status codes used by the proxy (grpc/status.h numbering). */
enum grpc_status {
	GRPC_OK = 0,
	GRPC_CANCELLED = 1,
	GRPC_UNKNOWN = 2,
	GRPC_INVALID_ARGUMENT = 3,
	GRPC_DEADLINE_EXCEEDED = 4,
	GRPC_NOT_FOUND = 5,
	GRPC_PERMISSION_DENIED = 7,
	GRPC_RESOURCE_EXHAUSTED = 8,
	GRPC_UNIMPLEMENTED = 12,
	GRPC_INTERNAL = 13,
	GRPC_UNAVAILABLE = 14,
	GRPC_UNAUTHENTICATED = 16,
};

/* True for a content-type of "application/grpc" or "application/grpc+..."
 * / "application/grpc;...". */
bool grpc_content_type(const char *v, size_t len);

/*
 * Parse a grpc-timeout value: 1 to 8 ASCII digits and a unit (H, M, S, m,
 * u, n). *ms gets the timeout in milliseconds, rounded up (a 1 ns timeout
 * is 1 ms, not 0: it has not expired yet) and capped at 2^53 ms. Returns 0
 * or -EINVAL for anything else (then the header is ignored, as if absent).
 */
int grpc_timeout_parse(const char *v, size_t len, uint64_t *ms);

/*
 * Format ms as a grpc-timeout value in the finest unit that fits in 8
 * digits (so precision is kept for short deadlines), rounding down so the
 * backend never gets more time than the proxy will wait. out needs 10
 * bytes; returns the length.
 */
size_t grpc_timeout_format(uint64_t ms, char *out);

/* The gRPC status for an error the proxy answers with HTTP status http. */
enum grpc_status grpc_status_for_http(int http);

/*
 * Percent-encode msg for grpc-message (the spec's allowed set is printable
 * ASCII except '%'). Writes at most cap-1 bytes and a NUL; returns the
 * length.
 */
size_t grpc_message_encode(const char *msg, char *out, size_t cap);

#endif
