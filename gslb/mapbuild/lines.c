// SPDX-License-Identifier: GPL-2.0-only
/*
 * lines.c - the line reader under both of gslb-map's input formats. It reads
 * in large blocks (a million-row file is one pass of memchr, not a million
 * stdio calls) and refuses to hand out a prefix of an overlong line: a
 * truncated row would parse as a different, plausible row.
 */
#include "mapbuild.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BLOCK (1u << 16)

int mb_fail(char **err, int rc, const char *fmt, ...)
{
	if (err) {
		va_list ap;
		va_start(ap, fmt);
		if (vasprintf(err, fmt, ap) < 0)
			*err = NULL;
		va_end(ap);
	}
	return rc;
}

static void deliver(mb_line_fn fn, void *arg, const char *line, size_t len, uint64_t lineno)
{
	if (len && line[len - 1] == '\r')
		len--;
	if (len > MB_LINE_MAX)
		fn(arg, NULL, 0, lineno, true);
	else
		fn(arg, line, len, lineno, false);
}

int mb_read_lines(const char *path, mb_line_fn fn, void *arg, char **err)
{
	bool is_stdin = !strcmp(path, "-");
	int fd = is_stdin ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return mb_fail(err, -errno, "%s: %s", path, strerror(errno));
	/* Room for a block after the longest partial line kept from the last one. */
	char *buf = malloc(BLOCK + MB_LINE_MAX + 2);
	if (!buf) {
		if (!is_stdin)
			close(fd);
		return mb_fail(err, -ENOMEM, "%s: out of memory", path);
	}
	size_t have = 0;
	uint64_t lineno = 0;
	bool skipping = false; /* inside a line already known to be too long */
	int rc = 0;
	for (;;) {
		ssize_t r = read(fd, buf + have, BLOCK);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = mb_fail(err, -errno, "%s: %s", path, strerror(errno));
			break;
		}
		have += (size_t)r;
		size_t start = 0;
		for (;;) {
			char *nl = memchr(buf + start, '\n', have - start);
			if (!nl)
				break;
			size_t len = (size_t)(nl - (buf + start));
			lineno++;
			if (skipping) {
				fn(arg, NULL, 0, lineno, true);
				skipping = false;
			} else {
				deliver(fn, arg, buf + start, len, lineno);
			}
			start += len + 1;
		}
		size_t rest = have - start;
		if (r == 0) {
			/* A last line without its newline is still a line. */
			if (skipping)
				fn(arg, NULL, 0, ++lineno, true);
			else if (rest)
				deliver(fn, arg, buf + start, rest, ++lineno);
			break;
		}
		if (skipping || rest > MB_LINE_MAX + 1) {
			/* Too long whatever follows (+1: a '\r' not yet seen). */
			skipping = true;
			have = 0;
			continue;
		}
		memmove(buf, buf + start, rest);
		have = rest;
	}
	free(buf);
	if (!is_stdin)
		close(fd);
	return rc;
}
