// SPDX-License-Identifier: GPL-2.0-only
/*
 * stream.c - the stream's memory (arena, header lists, body pipes) and the
 * hand-offs between its two sides. Policy (routing, retries, errors,
 * deadlines) is proxy.c's.
 */
#include "log.h"
#include "proxy.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* --- arena ----------------------------------------------------------------- */

struct arena_chunk {
	struct arena_chunk *next;
	size_t size;
	char data[];
};

#define ARENA_INLINE 1024 /* in the stream's own allocation: most requests fit */
#define ARENA_FIRST  2048
#define ARENA_MAX    16384

void *arena_alloc(struct arena *a, size_t n)
{
	void *p;

	n = (n + 7) & ~(size_t)7;
	if (n > a->left) {
		size_t size = a->chunks ? a->chunks->size * 2 : ARENA_FIRST;
		struct arena_chunk *c;

		if (size > ARENA_MAX)
			size = ARENA_MAX;
		if (size < n)
			size = n;
		c = malloc(sizeof(*c) + size);
		if (!c)
			return NULL;
		c->next = a->chunks;
		c->size = size;
		a->chunks = c;
		a->cur = c->data;
		a->left = size;
		a->total += sizeof(*c) + size;
	}
	p = a->cur;
	a->cur += n;
	a->left -= n;
	return p;
}

char *arena_strndup(struct arena *a, const char *s, size_t n)
{
	char *p = arena_alloc(a, n + 1);

	if (p) {
		memcpy(p, s, n);
		p[n] = '\0';
	}
	return p;
}

void arena_free(struct arena *a)
{
	while (a->chunks) {
		struct arena_chunk *c = a->chunks;

		a->chunks = c->next;
		free(c);
	}
	a->cur = NULL;
	a->left = 0;
}

/* --- headers ------------------------------------------------------------------ */

int hdrs_add(struct l7_hdrs *h, struct arena *a, const char *name, size_t nlen, const char *value,
	     size_t vlen)
{
	char *n, *v;

	if (h->n == h->cap) {
		uint32_t cap = h->cap ? h->cap * 2 : 16;
		struct l7_hdr *nv = arena_alloc(a, cap * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		if (h->n)
			memcpy(nv, h->v, h->n * sizeof(*nv));
		h->v = nv;
		h->cap = cap;
	}
	n = arena_alloc(a, nlen + 1);
	v = arena_strndup(a, value, vlen);
	if (!n || !v)
		return -ENOMEM;
	for (size_t i = 0; i < nlen; i++)
		n[i] = (char)tolower((unsigned char)name[i]);
	n[nlen] = '\0';
	h->v[h->n++] = (struct l7_hdr){
	    .name = n, .value = v, .name_len = (uint32_t)nlen, .value_len = (uint32_t)vlen};
	h->bytes += nlen + vlen + 32;
	return 0;
}

const struct l7_hdr *hdrs_get(const struct l7_hdrs *h, const char *name)
{
	size_t len = strlen(name);

	for (uint32_t i = 0; i < h->n; i++)
		if (h->v[i].name_len == len && memcmp(h->v[i].name, name, len) == 0)
			return &h->v[i];
	return NULL;
}

/* --- the stream ------------------------------------------------------------- */

/* The inline arena follows the struct: keep it 8-byte aligned. */
_Static_assert(sizeof(struct stream) % 8 == 0, "struct stream size must keep the arena aligned");

struct stream *stream_new(struct worker *w, const struct ds_ops *ds, void *sess, int32_t id)
{
	/* The arena starts in the same allocation as the stream. */
	struct stream *s = calloc(1, sizeof(*s) + ARENA_INLINE);

	if (!s)
		return NULL;
	s->arena.cur = (char *)(s + 1);
	s->arena.left = ARENA_INLINE;
	s->w = w;
	s->ds = ds;
	s->ds_sess = sess;
	s->ds_id = id;
	s->us_id = -1;
	dlist_init(&s->ds_link);
	dlist_init(&s->us_link);
	s->req.content_length = s->resp.content_length = -1;
	s->t_start = w->loop.now_ms;
	l7m_stream_new(w, s);
	return s;
}

const struct l7_hdr *stream_grpc_status(const struct stream *s)
{
	const struct l7_hdr *gs;

	if (!s->grpc)
		return NULL;
	gs = hdrs_get(&s->resp.trailers, "grpc-status");
	return gs ? gs : hdrs_get(&s->resp.hdrs, "grpc-status");
}

size_t stream_body_limit(const struct stream *s)
{
	return s->w->cfg->client.buffer_size;
}

static bool us_live(const struct stream *s)
{
	return s->us && !s->us_done;
}

static bool ds_live(const struct stream *s)
{
	return !s->ds_done;
}

size_t stream_req_body(struct stream *s, const void *p, size_t n)
{
	size_t k = pipe_write(&s->req.body, &s->w->pool, p, n);

	s->req.body_bytes += k;
	if (k && us_live(s))
		s->us->req_ready(s);
	return k;
}

void stream_req_end(struct stream *s)
{
	s->req.end = true;
	if (us_live(s))
		s->us->req_ready(s);
}

void stream_req_consumed(struct stream *s, size_t n)
{
	if (n)
		s->req_body_sent = true;
	if (ds_live(s))
		s->ds->req_consumed(s, n);
}

void stream_resp_consumed(struct stream *s, size_t n)
{
	s->bytes_out += n;
	if (us_live(s))
		s->us->resp_consumed(s, n);
}

void stream_resp_head(struct stream *s)
{
	s->resp.head_done = true;
	proxy_resp_head(s);
	if (s->backend)
		backend_report(s->w, s->backend, true);
	if (ds_live(s))
		s->ds->resp_ready(s);
}

/* Follow the length-prefixed messages of a gRPC body (PROTOCOL-HTTP2:
 * a compressed flag and a 4-byte big-endian length, then the message). */
static void grpc_track(struct stream *s, const uint8_t *p, size_t n)
{
	while (n) {
		if (s->grpc_left) {
			size_t k = n < s->grpc_left ? n : s->grpc_left;

			s->grpc_left -= (uint32_t)k;
			p += k;
			n -= k;
			continue;
		}
		s->grpc_hdr[s->grpc_hdr_n++] = *p++;
		n--;
		if (s->grpc_hdr_n == 5) {
			s->grpc_left = (uint32_t)s->grpc_hdr[1] << 24 |
				       (uint32_t)s->grpc_hdr[2] << 16 |
				       (uint32_t)s->grpc_hdr[3] << 8 | s->grpc_hdr[4];
			s->grpc_hdr_n = 0;
		}
	}
}

size_t stream_resp_body(struct stream *s, const void *p, size_t n)
{
	size_t k = pipe_write(&s->resp.body, &s->w->pool, p, n);

	if (s->grpc)
		grpc_track(s, p, k);
	s->resp.body_bytes += k;
	if (k && ds_live(s))
		s->ds->resp_ready(s);
	return k;
}

void stream_resp_end(struct stream *s)
{
	/* The whole response is here: a deadline has nothing left to cut
	 * (a backend answering DEADLINE_EXCEEDED itself races with ours). */
	loop_timer_cancel(&s->w->loop, &s->deadline);
	s->resp.end = true;
	if (ds_live(s))
		s->ds->resp_ready(s);
}

void stream_us_detach(struct stream *s)
{
	if (s->backend && s->us)
		backend_active(s->backend, -1);
	s->us = NULL;
	s->us_conn = NULL;
	s->us_id = -1;
}

static void finish(struct stream *s)
{
	struct worker *w = s->w;

	if (s->freed)
		return;
	s->freed = true;
	loop_timer_cancel(&w->loop, &s->deadline);
	l7m_stream_done(w, s);
	proxy_log(s);
	if (s->backend) {
		backend_release(s->backend);
		s->backend = NULL;
	}
	pipe_clear(&s->req.body, &w->pool);
	pipe_clear(&s->resp.body, &w->pool);
	arena_free(&s->arena);
	/* A task queued this iteration may still name the stream. */
	loop_free_later(&w->loop, s);
}

void stream_cancel(struct stream *s)
{
	loop_timer_cancel(&s->w->loop, &s->deadline);
	if (us_live(s)) {
		STAT_INC(s->w, streams_cancelled);
		s->us->cancel(s);
	}
}

void stream_ds_done(struct stream *s)
{
	if (s->ds_done)
		return;
	s->ds_done = true;
	if (us_live(s))
		s->us->cancel(s); /* it calls stream_us_done */
	else
		s->us_done = true;
	if (s->us_done)
		finish(s);
}

void stream_us_done(struct stream *s)
{
	if (s->us_done)
		return;
	size_t dropped = s->req.body.len;

	stream_us_detach(s);
	s->us_done = true;
	/* Request bytes nobody will send on: gone, and the downstream side
	 * hears of them as consumed (an HTTP/2 client gets its window back). */
	pipe_clear(&s->req.body, &s->w->pool);
	if (dropped && !s->ds_done)
		s->ds->req_consumed(s, dropped);
	if (s->ds_done)
		finish(s);
}
