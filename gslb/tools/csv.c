// SPDX-License-Identifier: GPL-2.0-only
/*
 * csv.c - see csv.h. getline() keeps one buffer for the whole file, so a
 * million-line samples file costs one allocation.
 */
#include "csv.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

int csv_open(struct csv_reader *r, const char *path, char **err)
{
	memset(r, 0, sizeof(*r));
	r->path = path;
	if (strcmp(path, "-") == 0) {
		r->f = stdin;
		r->path = "(stdin)";
		return 0;
	}
	r->f = fopen(path, "r");
	if (!r->f) {
		int e = errno;
		if (asprintf(err, "%s: %s", path, strerror(e)) < 0)
			*err = NULL;
		return -e;
	}
	r->own = true;
	return 0;
}

void csv_close(struct csv_reader *r)
{
	if (r->own && r->f)
		fclose(r->f);
	free(r->buf);
	memset(r, 0, sizeof(*r));
}

char *csv_trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n'))
		e--;
	*e = 0;
	return s;
}

/* The next data line, trimmed, or NULL at EOF / error (*rc then set). */
static char *next_line(struct csv_reader *r, int *rc, char **err)
{
	for (;;) {
		ssize_t n = getline(&r->buf, &r->cap, r->f);
		char *s;

		if (n < 0) {
			if (ferror(r->f)) {
				*rc = -EIO;
				if (asprintf(err, "%s:%lu: read error", r->path, r->line + 1) < 0)
					*err = NULL;
			} else {
				*rc = 0;
			}
			return NULL;
		}
		r->line++;
		s = csv_trim(r->buf);
		if (*s && *s != '#')
			return s;
	}
}

int csv_next(struct csv_reader *r, char **fields, unsigned max, char **err)
{
	int rc = 0;
	char *s = next_line(r, &rc, err);
	unsigned n = 0;

	if (!s)
		return rc;
	for (;;) {
		char *comma = strchr(s, ',');

		if (comma)
			*comma = 0;
		if (n < max)
			fields[n] = csv_trim(s);
		n++;
		if (!comma)
			break;
		s = comma + 1;
	}
	return (int)n;
}

int csv_header(struct csv_reader *r, const char *header, char **err)
{
	int rc = 0;
	char *s = next_line(r, &rc, err);
	const char *h = header;

	if (!s)
		return rc ? rc : csv_fail(r, err, "empty file, expected the header \"%s\"", header);
	/* Compare ignoring blanks around the commas. */
	for (; *s; s++) {
		if (*s == ' ' || *s == '\t')
			continue;
		if (*s != *h)
			break;
		h++;
	}
	if (*s || *h)
		return csv_fail(r, err, "expected the header \"%s\"", header);
	return 0;
}

int csv_fail(const struct csv_reader *r, char **err, const char *fmt, ...)
{
	char *msg = NULL;
	va_list ap;

	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	if (asprintf(err, "%s:%lu: %s", r->path, r->line, msg ? msg : "out of memory") < 0)
		*err = NULL;
	free(msg);
	return -EINVAL;
}

int csv_double(const char *s, double *out)
{
	char *end;
	double v;

	if (!*s || isspace((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtod(s, &end);
	if (*end || errno == ERANGE || !isfinite(v))
		return -EINVAL;
	*out = v;
	return 0;
}
