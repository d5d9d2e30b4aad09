/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * csv.h - the line reader behind every file the GSLB tools read: simple
 * comma-separated values without quoting (none of our files needs it),
 * "#" comment lines, blank lines, and messages of the form
 * "file:line: reason" so that a bad line is found without a debugger.
 */
#ifndef PORTICO_GSLB_CSV_H
#define PORTICO_GSLB_CSV_H

#include <stdbool.h>
#include <stdio.h>

struct csv_reader {
	FILE *f;
	const char *path;   /* borrowed, for messages */
	unsigned long line; /* number of the line last read, from 1 */
	char *buf;	    /* the line last read, split in place */
	size_t cap;
	bool own; /* f is ours to close (not stdin) */
};

/*
 * Open path for reading ("-" is stdin). path is borrowed and must outlive
 * the reader. Returns 0, or -errno with a malloc'd "path: reason" in *err.
 */
int csv_open(struct csv_reader *r, const char *path, char **err);

/* Close the file (not stdin) and free the line buffer. */
void csv_close(struct csv_reader *r);

/*
 * Read the next line that is neither blank nor a comment ("#" as its
 * first non-blank character), strip the line end, and split it at commas
 * into fields[0..max) (pointers into the reader's buffer, valid until the
 * next call). Returns the number of fields the line has, which may exceed
 * max (only max are stored); 0 at end of file; -EIO with *err set on a
 * read error.
 */
int csv_next(struct csv_reader *r, char **fields, unsigned max, char **err);

/*
 * Read the first line and require it to be header (for example
 * "name,lat,lon"), spaces around fields ignored. 0, or -EINVAL with
 * *err naming the line.
 */
int csv_header(struct csv_reader *r, const char *header, char **err);

/* Set *err to "path:line: message" and return -EINVAL. */
int csv_fail(const struct csv_reader *r, char **err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Strict number parsing (whole string, finite): 0 or -EINVAL. */
int csv_double(const char *s, double *out);

/* Strip leading and trailing blanks in place; returns the new start. */
char *csv_trim(char *s);

#endif
