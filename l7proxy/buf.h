/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * buf.h - the proxy's memory for bytes in flight: fixed-size blocks from a
 * per-worker pool, and pipes (byte queues made of a chain of blocks).
 *
 * A connection or stream holds blocks only while bytes are waiting in
 * them: an empty pipe has no block, so an idle keepalive connection costs
 * its small state, not its peak. Blocks go back to the worker's free list
 * (up to a bound, then to malloc) so a busy worker does not call malloc per
 * read. A pipe has no capacity of its own: whoever writes into it checks
 * the bound that applies (a stream's body limit, a connection's output
 * limit) before writing, so overfilling is a policy decision, never a
 * memory error.
 */
#ifndef PORTICO_L7_BUF_H
#define PORTICO_L7_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define BLK_SIZE 16384 /* one TLS record of plaintext */

struct blk {
	struct blk *next;
	uint32_t start, end; /* valid bytes: data[start, end) */
	char data[BLK_SIZE];
};

struct bufpool {
	struct blk *free;
	size_t n_free, max_free;
	size_t in_use; /* blocks handed out and not returned: the gauge
			* (written by its worker, read by the admin thread) */
};

/* A pool that keeps at most max_free blocks on its free list. */
void bufpool_init(struct bufpool *p, size_t max_free);
void bufpool_fini(struct bufpool *p);

/* A block with start = end = 0, or NULL (errno ENOMEM). */
struct blk *blk_get(struct bufpool *p);
void blk_put(struct bufpool *p, struct blk *b);

struct pipe {
	struct blk *head, *tail;
	size_t len; /* bytes queued */
};

static inline bool pipe_empty(const struct pipe *q)
{
	return q->len == 0;
}

/*
 * Append n bytes. Returns n, or fewer if a block could not be allocated
 * (the caller treats a short write as out of memory).
 */
size_t pipe_write(struct pipe *q, struct bufpool *p, const void *data, size_t n);

/* printf into the pipe; returns bytes written or -1. */
int pipe_printf(struct pipe *q, struct bufpool *p, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Contiguous free space at the tail, allocating a block if the tail has
 * none: *len gets its size. Commit what was written with pipe_commit().
 * NULL when out of memory.
 */
char *pipe_reserve(struct pipe *q, struct bufpool *p, size_t *len);
void pipe_commit(struct pipe *q, size_t n);

/* Up to max iovecs over the queued bytes, in order; returns how many. */
int pipe_iov(const struct pipe *q, struct iovec *iov, int max);

/* The first contiguous run of queued bytes (NULL, 0 if empty). */
static inline const char *pipe_peek(const struct pipe *q, size_t *len)
{
	if (!q->head) {
		*len = 0;
		return NULL;
	}
	*len = q->head->end - q->head->start;
	return q->head->data + q->head->start;
}

/* Copy up to n bytes out (without consuming); returns bytes copied. */
size_t pipe_copy_out(const struct pipe *q, void *dst, size_t n);

/* Drop n queued bytes from the front (n <= len), returning empty blocks. */
void pipe_consume(struct pipe *q, struct bufpool *p, size_t n);

/*
 * Move up to n bytes from src to dst. Whole blocks change hands without a
 * copy; a partial block is copied. Returns bytes moved.
 */
size_t pipe_move(struct pipe *dst, struct pipe *src, struct bufpool *p, size_t n);

/* Drop everything and return the blocks. */
void pipe_clear(struct pipe *q, struct bufpool *p);

#endif
