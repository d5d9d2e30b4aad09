/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * testutil.h - what gslb-map's unit tests share: input files written to a
 * private temporary directory, and reading a file back to compare bytes.
 * Static functions, included by each test (cmocka must come first).
 */
#ifndef PORTICO_GSLB_MAPBUILD_TESTUTIL_H
#define PORTICO_GSLB_MAPBUILD_TESTUTIL_H

#include <arpa/inet.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static char tu_dir[256];

/* A fresh directory under $TMPDIR (or /tmp) for this test program. */
static inline void tu_setup_dir(void)
{
	const char *t = getenv("TMPDIR");
	snprintf(tu_dir, sizeof(tu_dir), "%s/gslbmap-test-XXXXXX", t && *t ? t : "/tmp");
	assert_non_null(mkdtemp(tu_dir));
}

/* Remove the directory and the files in it (no subdirectories are made). */
static inline void tu_cleanup_dir(void)
{
	DIR *d = opendir(tu_dir);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		char p[512];
		snprintf(p, sizeof(p), "%s/%s", tu_dir, e->d_name);
		unlink(p);
	}
	closedir(d);
	rmdir(tu_dir);
}

/* Path of name in the test directory, in a static buffer (one of four). */
static inline const char *tu_path(const char *name)
{
	static char bufs[4][512];
	static unsigned k;
	char *b = bufs[k++ % 4];
	snprintf(b, 512, "%s/%s", tu_dir, name);
	return b;
}

/* Write text to name in the test directory; returns its path (tu_path). */
static inline const char *tu_write(const char *name, const char *text)
{
	const char *p = tu_path(name);
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
	assert_int_equal(fclose(f), 0);
	return p;
}

/* The whole file at path, malloc'd, *len bytes; NULL if it cannot be read. */
static inline void *tu_slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	*len = 0;
	if (!f)
		return NULL;
	size_t cap = 4096, n = 0;
	char *b = malloc(cap);
	for (;;) {
		if (n == cap)
			b = realloc(b, cap *= 2);
		size_t r = fread(b + n, 1, cap - n, f);
		if (!r)
			break;
		n += r;
	}
	fclose(f);
	*len = n;
	return b;
}

/* Parse "a.b.c.d" or an IPv6 address into family and addr (16 bytes). */
static inline int tu_addr(const char *s, uint8_t addr[16])
{
	memset(addr, 0, 16);
	int family = strchr(s, ':') ? AF_INET6 : AF_INET;
	assert_int_equal(inet_pton(family, s, addr), 1);
	return family;
}

/* gmap_lookup of a whole address, as "a,b,c" (or "-") in buf. */
static inline const char *tu_lookup(const struct gmap *m, const char *addr, char *buf, size_t cap)
{
	uint8_t a[16];
	int family = tu_addr(addr, a);
	unsigned match, scope;
	const uint8_t *l = gmap_lookup(m, family, a, family == AF_INET ? 32 : 128, &match, &scope);
	size_t n = 0;
	buf[0] = 0;
	if (!l) {
		snprintf(buf, cap, "-");
		return buf;
	}
	for (unsigned i = 0; i < GMAP_LIST_MAX && l[i] != GMAP_NONE; i++)
		n += (size_t)snprintf(buf + n, cap - n, "%s%s", i ? "," : "",
				      gmap_pop_name(m, l[i]));
	return buf;
}

#endif
