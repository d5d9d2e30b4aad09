// SPDX-License-Identifier: GPL-2.0-only
#include "buf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void bufpool_init(struct bufpool *p, size_t max_free)
{
	p->free = NULL;
	p->n_free = 0;
	p->max_free = max_free;
	p->in_use = 0;
}

void bufpool_fini(struct bufpool *p)
{
	while (p->free) {
		struct blk *b = p->free;

		p->free = b->next;
		free(b);
	}
	p->n_free = 0;
}

struct blk *blk_get(struct bufpool *p)
{
	struct blk *b = p->free;

	if (b) {
		p->free = b->next;
		p->n_free--;
	} else {
		b = malloc(sizeof(*b));
		if (!b)
			return NULL;
	}
	b->next = NULL;
	b->start = b->end = 0;
	__atomic_store_n(&p->in_use, p->in_use + 1, __ATOMIC_RELAXED);
	return b;
}

void blk_put(struct bufpool *p, struct blk *b)
{
	__atomic_store_n(&p->in_use, p->in_use - 1, __ATOMIC_RELAXED);
	if (p->n_free >= p->max_free) {
		free(b);
		return;
	}
	b->next = p->free;
	p->free = b;
	p->n_free++;
}

char *pipe_reserve(struct pipe *q, struct bufpool *p, size_t *len)
{
	struct blk *b = q->tail;

	if (!b || b->end == BLK_SIZE) {
		b = blk_get(p);
		if (!b) {
			*len = 0;
			return NULL;
		}
		if (q->tail)
			q->tail->next = b;
		else
			q->head = b;
		q->tail = b;
	}
	*len = BLK_SIZE - b->end;
	return b->data + b->end;
}

void pipe_commit(struct pipe *q, size_t n)
{
	q->tail->end += (uint32_t)n;
	q->len += n;
}

size_t pipe_write(struct pipe *q, struct bufpool *p, const void *data, size_t n)
{
	const char *s = data;
	size_t done = 0;

	while (done < n) {
		size_t room;
		char *dst = pipe_reserve(q, p, &room);

		if (!dst)
			break;
		if (room > n - done)
			room = n - done;
		memcpy(dst, s + done, room);
		pipe_commit(q, room);
		done += room;
	}
	return done;
}

int pipe_printf(struct pipe *q, struct bufpool *p, const char *fmt, ...)
{
	char small[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(small))
		return -1;
	return pipe_write(q, p, small, (size_t)n) == (size_t)n ? n : -1;
}

int pipe_iov(const struct pipe *q, struct iovec *iov, int max)
{
	int n = 0;

	for (struct blk *b = q->head; b && n < max; b = b->next) {
		if (b->end == b->start)
			continue;
		iov[n].iov_base = b->data + b->start;
		iov[n].iov_len = b->end - b->start;
		n++;
	}
	return n;
}

size_t pipe_copy_out(const struct pipe *q, void *dst, size_t n)
{
	char *d = dst;
	size_t done = 0;

	for (struct blk *b = q->head; b && done < n; b = b->next) {
		size_t k = b->end - b->start;

		if (k > n - done)
			k = n - done;
		memcpy(d + done, b->data + b->start, k);
		done += k;
	}
	return done;
}

void pipe_consume(struct pipe *q, struct bufpool *p, size_t n)
{
	if (n > q->len)
		n = q->len;
	q->len -= n;
	while (q->head) {
		struct blk *b = q->head;
		size_t k = b->end - b->start;

		if (n < k) {
			b->start += (uint32_t)n;
			return;
		}
		n -= k;
		/* An emptied block goes back to the pool at once, the tail
		 * too: an empty pipe may stay idle for a long time. */
		q->head = b->next;
		if (!q->head)
			q->tail = NULL;
		blk_put(p, b);
	}
}

size_t pipe_move(struct pipe *dst, struct pipe *src, struct bufpool *p, size_t n)
{
	size_t moved = 0;

	while (moved < n && src->head) {
		struct blk *b = src->head;
		size_t k = b->end - b->start, w;

		if (k == 0) {
			pipe_consume(src, p, 0);
			if (src->head == b)
				break;
			continue;
		}
		if (k <= n - moved &&
		    (!dst->tail || dst->tail->end == BLK_SIZE || BLK_SIZE - dst->tail->end < k)) {
			/* Hand the whole block over. */
			src->head = b->next;
			if (!src->head)
				src->tail = NULL;
			src->len -= k;
			b->next = NULL;
			if (dst->tail)
				dst->tail->next = b;
			else
				dst->head = b;
			dst->tail = b;
			dst->len += k;
			moved += k;
			continue;
		}
		if (k > n - moved)
			k = n - moved;
		w = pipe_write(dst, p, b->data + b->start, k);
		pipe_consume(src, p, w);
		moved += w;
		if (w != k)
			break; /* out of memory */
	}
	return moved;
}

void pipe_clear(struct pipe *q, struct bufpool *p)
{
	while (q->head) {
		struct blk *b = q->head;

		q->head = b->next;
		blk_put(p, b);
	}
	q->tail = NULL;
	q->len = 0;
}
