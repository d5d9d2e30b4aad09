// SPDX-License-Identifier: GPL-2.0-only
/*
 * samples.c - reading and cleaning the samples CSV ("client,pop,rtt_ms,ok").
 *
 * The input is real-user data, so bad rows are normal: every kind is
 * counted, a malformed line is reported with its line number, and none of
 * them stops a build. Each row is checked in one order (malformed, failed,
 * negative, sub-microsecond, absurd, duplicate) and counted under the first
 * kind it matches, so the counters add up to the rows read.
 *
 * Privacy: the client address exists only on the stack while its row is
 * parsed. What is kept is its /24 or /56, and, for finding duplicates, a
 * hash keyed with a per-run random key, freed before mb_samples_read
 * returns.
 */
#include "mapbuild.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define POP_SLOTS 512 /* > 2 * GMAP_MAX_POPS */

struct reader {
	const char *path;
	FILE *report;
	uint64_t n_malformed;
	struct mb_samples *s;
	int rc;			       /* -ENOMEM stops adding */
	uint16_t pop_slots[POP_SLOTS]; /* PoP index + 1 */
	uint64_t *dup;		       /* open addressing; 0 = empty */
	size_t dup_n, dup_cap;
	uint64_t k0, k1; /* the duplicate hash's key */
};

static const char *const drop_names[MB_DROP__N] = {
    [MB_DROP_MALFORMED] = "malformed", [MB_DROP_FAILED] = "failed",
    [MB_DROP_NEGATIVE] = "negative",   [MB_DROP_TINY] = "sub_microsecond",
    [MB_DROP_ABSURD] = "absurd",       [MB_DROP_DUPLICATE] = "duplicate",
};

const char *mb_drop_name(enum mb_drop d)
{
	return d < MB_DROP__N ? drop_names[d] : "?";
}

static void malformed(struct reader *r, uint64_t lineno, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void malformed(struct reader *r, uint64_t lineno, const char *fmt, ...)
{
	r->s->drops[MB_DROP_MALFORMED]++;
	if (r->report && r->n_malformed < MB_REPORT_MAX) {
		va_list ap;
		va_start(ap, fmt);
		fprintf(r->report, "%s:%llu: ", r->path, (unsigned long long)lineno);
		vfprintf(r->report, fmt, ap);
		fputc('\n', r->report);
		va_end(ap);
	}
	r->n_malformed++;
}

static uint64_t mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	x ^= x >> 31;
	return x;
}

static uint32_t name_hash(const char *s, size_t n)
{
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (uint8_t)s[i]) * 16777619u;
	return h;
}

static bool name_ok(const char *s, size_t n)
{
	if (n == 0 || n >= GMAP_POP_NAME)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
			return false;
	}
	return true;
}

/* Index of PoP name, added if new; -ENOSPC past GMAP_MAX_POPS. O(1). */
static int pop_index(struct reader *r, const char *name, size_t n)
{
	struct mb_samples *s = r->s;
	uint32_t h = name_hash(name, n) & (POP_SLOTS - 1);
	while (r->pop_slots[h]) {
		const char *p = s->pops[r->pop_slots[h] - 1];
		if (!strncmp(p, name, n) && p[n] == 0)
			return r->pop_slots[h] - 1;
		h = (h + 1) & (POP_SLOTS - 1);
	}
	if (s->n_pops == GMAP_MAX_POPS)
		return -ENOSPC;
	memset(s->pops[s->n_pops], 0, GMAP_POP_NAME);
	memcpy(s->pops[s->n_pops], name, n);
	r->pop_slots[h] = (uint16_t)(s->n_pops + 1);
	return (int)s->n_pops++;
}

/* True if the row was seen before; remembers it otherwise. */
static bool seen(struct reader *r, const uint8_t addr[16], int family, int pop, double rtt)
{
	uint64_t w0, w1, w2;
	memcpy(&w0, addr, 8);
	memcpy(&w1, addr + 8, 8);
	memcpy(&w2, &rtt, 8);
	uint64_t h = mix64(r->k0 ^ w0);
	h = mix64(h ^ w1 ^ r->k1);
	h = mix64(h ^ w2);
	h = mix64(h ^ ((uint64_t)family << 32 | (uint64_t)pop));
	if (!h)
		h = 1;
	if ((r->dup_n + 1) * 2 > r->dup_cap) {
		size_t cap = r->dup_cap ? r->dup_cap * 2 : 4096;
		uint64_t *t = calloc(cap, sizeof(*t));
		if (!t) {
			r->rc = -ENOMEM;
			return false;
		}
		for (size_t i = 0; i < r->dup_cap; i++) {
			if (!r->dup[i])
				continue;
			size_t j = r->dup[i] & (cap - 1);
			while (t[j])
				j = (j + 1) & (cap - 1);
			t[j] = r->dup[i];
		}
		free(r->dup);
		r->dup = t;
		r->dup_cap = cap;
	}
	size_t j = h & (r->dup_cap - 1);
	while (r->dup[j]) {
		if (r->dup[j] == h)
			return true;
		j = (j + 1) & (r->dup_cap - 1);
	}
	r->dup[j] = h;
	r->dup_n++;
	return false;
}

static char *trim(char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	size_t n = strlen(s);
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		s[--n] = 0;
	return s;
}

/* A decimal: [-+]digits[.digits] or [-+].digits. No exponent, nan or inf. */
static bool parse_rtt(const char *s, double *out)
{
	const char *p = s;
	unsigned digits = 0;
	if (*p == '-' || *p == '+')
		p++;
	while (*p >= '0' && *p <= '9')
		p++, digits++;
	if (*p == '.')
		for (p++; *p >= '0' && *p <= '9'; p++)
			digits++;
	if (*p || !digits)
		return false;
	*out = strtod(s, NULL);
	return true;
}

static uint64_t subnet_key(int family, const uint8_t *a)
{
	if (family == AF_INET)
		return (uint64_t)a[0] << 16 | (uint64_t)a[1] << 8 | a[2];
	uint64_t k = 0;
	for (int i = 0; i < MB_SUBNET6 / 8; i++)
		k = k << 8 | a[i];
	return MB_SUBNET_V6 | k;
}

void mb_subnet_addr(uint64_t key, int *family, uint8_t addr[16], unsigned *plen)
{
	memset(addr, 0, 16);
	if (key & MB_SUBNET_V6) {
		for (int i = MB_SUBNET6 / 8 - 1; i >= 0; i--, key >>= 8)
			addr[i] = key & 0xff;
		*family = AF_INET6;
		*plen = MB_SUBNET6;
	} else {
		addr[0] = key >> 16 & 0xff;
		addr[1] = key >> 8 & 0xff;
		addr[2] = key & 0xff;
		*family = AF_INET;
		*plen = MB_SUBNET4;
	}
}

static int push(struct mb_samples *s, uint64_t subnet, uint32_t rtt_us, int pop)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 4096;
		struct mb_sample *v = realloc(s->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		s->v = v;
		s->cap = cap;
	}
	s->v[s->n++] = (struct mb_sample){.subnet = subnet, .rtt_us = rtt_us, .pop = (uint16_t)pop};
	return 0;
}

static void on_line(void *arg, const char *line, size_t len, uint64_t lineno, bool too_long)
{
	struct reader *r = arg;
	struct mb_samples *s = r->s;
	if (r->rc)
		return;
	if (too_long) {
		s->rows++;
		malformed(r, lineno, "line longer than %d bytes", MB_LINE_MAX);
		return;
	}
	if (memchr(line, 0, len)) {
		s->rows++;
		malformed(r, lineno, "NUL byte in line");
		return;
	}
	char buf[MB_LINE_MAX + 1];
	memcpy(buf, line, len);
	buf[len] = 0;
	char *t = trim(buf);
	if (!*t || *t == '#' || !strcmp(t, MB_CSV_HEADER))
		return;
	s->rows++;

	char *f[4];
	unsigned nf = 0;
	for (char *p = t;;) {
		char *comma = strchr(p, ',');
		if (nf < 4)
			f[nf] = p;
		nf++;
		if (!comma)
			break;
		*comma = 0;
		p = comma + 1;
	}
	if (nf != 4) {
		malformed(r, lineno, "%u fields, expected 4 (%s)", nf, MB_CSV_HEADER);
		return;
	}
	for (unsigned i = 0; i < 4; i++)
		f[i] = trim(f[i]);

	/* The client field is never echoed: it may be most of an address. */
	uint8_t addr[16] = {0};
	int family = strchr(f[0], ':') ? AF_INET6 : AF_INET;
	if (inet_pton(family, f[0], addr) != 1) {
		malformed(r, lineno, "bad client address");
		return;
	}
	static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	if (family == AF_INET6 && !memcmp(addr, mapped, 12)) {
		/* A dual-stack socket's view of an IPv4 client: it is one. */
		memmove(addr, addr + 12, 4);
		memset(addr + 4, 0, 12);
		family = AF_INET;
		s->mapped++;
	}
	size_t pop_len = strlen(f[1]);
	if (!name_ok(f[1], pop_len)) {
		malformed(r, lineno, "bad PoP name \"%.32s\" (1..15 of a-z 0-9 _ -)", f[1]);
		return;
	}
	double rtt;
	if (!parse_rtt(f[2], &rtt)) {
		malformed(r, lineno, "bad rtt_ms \"%.32s\" (a decimal number)", f[2]);
		return;
	}
	if (strcmp(f[3], "0") && strcmp(f[3], "1")) {
		malformed(r, lineno, "bad ok \"%.32s\" (0 or 1)", f[3]);
		return;
	}
	int pop = pop_index(r, f[1], pop_len);
	if (pop < 0) {
		malformed(r, lineno, "PoP \"%s\" past the limit of %d PoPs", f[1], GMAP_MAX_POPS);
		return;
	}

	enum mb_drop d = MB_DROP__N;
	if (f[3][0] == '0')
		d = MB_DROP_FAILED;
	else if (rtt < 0)
		d = MB_DROP_NEGATIVE;
	else if (rtt < MB_RTT_MIN_MS)
		d = MB_DROP_TINY;
	else if (rtt > MB_RTT_ABSURD_MS)
		d = MB_DROP_ABSURD;
	else if (seen(r, addr, family, pop, rtt))
		d = MB_DROP_DUPLICATE;
	if (r->rc)
		return;
	if (d != MB_DROP__N) {
		s->drops[d]++;
		return;
	}
	/* In range, so the µs fit in 32 bits; round to nearest. */
	r->rc = push(s, subnet_key(family, addr), (uint32_t)(rtt * 1000.0 + 0.5), pop);
}

static int cmp_name(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* Sort the PoP names so that a map's PoP table does not depend on row order. */
static void sort_pops(struct mb_samples *s)
{
	char old[GMAP_MAX_POPS][GMAP_POP_NAME];
	uint16_t to[GMAP_MAX_POPS];
	memcpy(old, s->pops, sizeof(old));
	qsort(s->pops, s->n_pops, GMAP_POP_NAME, cmp_name);
	for (unsigned i = 0; i < s->n_pops; i++) {
		char *hit = bsearch(old[i], s->pops, s->n_pops, GMAP_POP_NAME, cmp_name);
		to[i] = (uint16_t)((hit - s->pops[0]) / GMAP_POP_NAME);
	}
	for (size_t i = 0; i < s->n; i++)
		s->v[i].pop = to[s->v[i].pop];
}

int mb_samples_read(const char *path, struct mb_samples *s, FILE *report, char **err)
{
	struct reader *r = calloc(1, sizeof(*r));
	if (!r)
		return mb_fail(err, -ENOMEM, "out of memory");
	r->path = path;
	r->report = report;
	r->s = s;
	uint64_t key[2];
	if (getrandom(key, sizeof(key), GRND_NONBLOCK) != sizeof(key)) {
		/* Only duplicate detection depends on it: any varying key will do. */
		key[0] = (uint64_t)time(NULL) * 0x9e3779b97f4a7c15ULL;
		key[1] = (uint64_t)getpid() ^ (uint64_t)(uintptr_t)r;
	}
	r->k0 = key[0];
	r->k1 = key[1];
	int rc = mb_read_lines(path, on_line, r, err);
	if (!rc && r->rc)
		rc = mb_fail(err, r->rc, "%s: out of memory", path);
	if (!rc && report && r->n_malformed > MB_REPORT_MAX)
		fprintf(report, "%s: %llu more malformed lines not shown\n", path,
			(unsigned long long)(r->n_malformed - MB_REPORT_MAX));
	if (!rc)
		sort_pops(s);
	free(r->dup);
	free(r);
	return rc;
}

void mb_samples_free(struct mb_samples *s)
{
	free(s->v);
	s->v = NULL;
	s->n = s->cap = 0;
}
