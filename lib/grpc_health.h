/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * grpc_health.h - the bytes of grpc.health.v1.Health/Check, for the two
 * prober families that speak it (lbd's checks of the L7 hosts through
 * the VIP, ctl/health.c; the proxy's checks of its backends,
 * l7proxy/probe.c), and the names of the gRPC status codes. Pure.
 */
#ifndef PORTICO_GRPC_HEALTH_H
#define PORTICO_GRPC_HEALTH_H

#include <stddef.h>
#include <stdint.h>

/* "OK" .. "UNAUTHENTICATED" for codes 0..16, NULL for any other. */
const char *grpc_code_name(unsigned code);

/*
 * A gRPC message holding grpc.health.v1.HealthCheckRequest{service}: the
 * 5-byte gRPC prefix (uncompressed, length) and the protobuf. service is
 * at most 127 bytes (a one-byte length; the configs enforce it). Writes
 * into out (cap bytes) and returns the length, or 0 if it does not fit.
 */
size_t grpc_health_request(const char *service, uint8_t *out, size_t cap);

/*
 * The status of a gRPC message (5-byte prefix and protobuf, exactly one
 * message, uncompressed) holding grpc.health.v1.HealthCheckResponse:
 * 0 UNKNOWN (also when the field is absent), 1 SERVING, 2 NOT_SERVING,
 * 3 SERVICE_UNKNOWN, or another value a newer server sends (capped at
 * 1000); -1 if the message is malformed or compressed.
 */
int grpc_health_status(const uint8_t *msg, size_t len);

#endif
