// SPDX-License-Identifier: GPL-2.0-only
#include "h2_util.h"

#include <errno.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

int h2_nvs_init(struct h2_nvs *v, struct arena *a, size_t cap)
{
	v->n = 0;
	v->cap = cap;
	v->nv = arena_alloc(a, cap * sizeof(*v->nv));
	v->overflow = !v->nv;
	return v->nv ? 0 : -ENOMEM;
}

void h2_nvs_add(struct h2_nvs *v, const char *name, size_t nlen, const char *value, size_t vlen)
{
	if (v->n == v->cap || !v->nv) {
		v->overflow = true;
		return;
	}
	v->nv[v->n++] = (nghttp2_nv){
	    .name = (uint8_t *)name, .value = (uint8_t *)value, .namelen = nlen, .valuelen = vlen};
}

void h2_nvs_add_all(struct h2_nvs *v, const struct l7_hdrs *h)
{
	for (uint32_t i = 0; i < h->n; i++)
		h2_nvs_add(v, h->v[i].name, h->v[i].name_len, h->v[i].value, h->v[i].value_len);
}

ssize_t h2_out_write(struct conn *c, const uint8_t *data, size_t len)
{
	if (c->out.len >= CONN_OUT_LIMIT)
		return NGHTTP2_ERR_WOULDBLOCK;
	if (pipe_write(&c->out, &c->w->pool, data, len) != len)
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	return (ssize_t)len;
}

int h2_out_data(struct conn *c, const uint8_t *framehd, struct pipe *src, size_t length)
{
	/* The bytes nghttp2 was promised are gone (the other side let go):
	 * reset this stream, not the whole connection. */
	if (src->len < length)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	if (c->out.len >= CONN_OUT_LIMIT)
		return NGHTTP2_ERR_WOULDBLOCK;
	if (pipe_write(&c->out, &c->w->pool, framehd, 9) != 9 ||
	    pipe_move(&c->out, src, &c->w->pool, length) != length)
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	return 0;
}

ssize_t h2_read_source(nghttp2_session *ng, int32_t id, struct stream_msg *m, struct arena *a,
		       size_t length, uint32_t *flags, bool *deferred)
{
	size_t n = m->body.len < length ? m->body.len : length;
	struct h2_nvs nvs;

	if (n) {
		*flags |= NGHTTP2_DATA_FLAG_NO_COPY;
		if (!m->end || n < m->body.len)
			return (ssize_t)n;
	} else if (!m->end) {
		*deferred = true;
		return NGHTTP2_ERR_DEFERRED;
	}
	*flags |= NGHTTP2_DATA_FLAG_EOF;
	if (m->trailers.n) {
		h2_nvs_init(&nvs, a, m->trailers.n);
		h2_nvs_add_all(&nvs, &m->trailers);
		if (!nvs.overflow && nghttp2_submit_trailer(ng, id, nvs.nv, nvs.n) == 0)
			*flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
	}
	return (ssize_t)n;
}

static void *mem_malloc(size_t size, void *ud)
{
	size_t *count = ud;
	void *p = malloc(size);

	if (p)
		*count += malloc_usable_size(p);
	return p;
}

static void mem_free(void *p, void *ud)
{
	size_t *count = ud;

	if (p)
		*count -= malloc_usable_size(p);
	free(p);
}

static void *mem_calloc(size_t n, size_t size, void *ud)
{
	size_t *count = ud;
	void *p = calloc(n, size);

	if (p)
		*count += malloc_usable_size(p);
	return p;
}

static void *mem_realloc(void *p, size_t size, void *ud)
{
	size_t *count = ud;
	size_t old = p ? malloc_usable_size(p) : 0;
	void *q = realloc(p, size);

	if (q || !size) {
		*count -= old;
		if (q)
			*count += malloc_usable_size(q);
	}
	return q;
}

void h2_mem_init(nghttp2_mem *mem, size_t *counter)
{
	*mem = (nghttp2_mem){.mem_user_data = counter,
			     .malloc = mem_malloc,
			     .free = mem_free,
			     .calloc = mem_calloc,
			     .realloc = mem_realloc};
}
