/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * h2_util.h - what both HTTP/2 sessions (h2_server.c, h2_client.c) do the
 * same way with nghttp2: header lists for submits, frames into the
 * connection's output, body data sources over a stream's pipe, and an
 * allocator that counts a session's memory.
 */
#ifndef PORTICO_L7_H2_UTIL_H
#define PORTICO_L7_H2_UTIL_H

#include <nghttp2/nghttp2.h>
#include <stdbool.h>
#include <stddef.h>

#include "proxy.h"

/* A header list for nghttp2_submit_*; values are copied by nghttp2. */
struct h2_nvs {
	nghttp2_nv *nv;
	size_t n, cap;
	bool overflow; /* more fields than cap, or no memory: the submit must fail */
};

/*
 * Room for cap fields, from arena a (freed with the stream). Returns 0 or
 * -ENOMEM (then overflow is set).
 */
int h2_nvs_init(struct h2_nvs *v, struct arena *a, size_t cap);

void h2_nvs_add(struct h2_nvs *v, const char *name, size_t nlen, const char *value, size_t vlen);

/* Add every field of h. */
void h2_nvs_add_all(struct h2_nvs *v, const struct l7_hdrs *h);

/*
 * nghttp2's send callback: serialized frames into c->out. Returns len, or
 * NGHTTP2_ERR_WOULDBLOCK while the output is at its bound.
 */
ssize_t h2_out_write(struct conn *c, const uint8_t *data, size_t len);

/*
 * nghttp2's send-data callback (NGHTTP2_DATA_FLAG_NO_COPY): the 9-byte
 * frame header, then length bytes moved out of src. 0, or an nghttp2
 * error code.
 */
int h2_out_data(struct conn *c, const uint8_t *framehd, struct pipe *src, size_t length);

/*
 * A data source over m's body: up to length bytes (sent without copying),
 * EOF at m->end, trailers submitted from m->trailers (their list built in
 * a). Sets *deferred and
 * returns NGHTTP2_ERR_DEFERRED while the pipe is empty and more will come.
 */
ssize_t h2_read_source(nghttp2_session *ng, int32_t id, struct stream_msg *m, struct arena *a,
		       size_t length, uint32_t *flags, bool *deferred);

/* An allocator that keeps *counter at the bytes the session holds. */
void h2_mem_init(nghttp2_mem *mem, size_t *counter);

#endif
