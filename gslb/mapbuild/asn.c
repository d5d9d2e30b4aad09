// SPDX-License-Identifier: GPL-2.0-only
/*
 * asn.c - the prefix-to-AS file ("PREFIX/LEN ASN" per line), read into a
 * list and a binary trie per family. The trie answers "which announced
 * prefixes hold this subnet" in at most 24 (IPv4) or 56 (IPv6) steps; it
 * costs up to one node per bit of each prefix, bounded by the input.
 */
#include "mapbuild.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

struct areader {
	const char *path;
	FILE *report;
	struct mb_asn *a;
	int rc;
};

static void bad(struct areader *r, uint64_t lineno, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void bad(struct areader *r, uint64_t lineno, const char *fmt, ...)
{
	if (r->report && r->a->malformed < MB_REPORT_MAX) {
		va_list ap;
		va_start(ap, fmt);
		fprintf(r->report, "%s:%llu: ", r->path, (unsigned long long)lineno);
		vfprintf(r->report, fmt, ap);
		fputc('\n', r->report);
		va_end(ap);
	}
	r->a->malformed++;
}

static inline unsigned bit_at(const uint8_t *a, unsigned d)
{
	return (a[d >> 3] >> (7 - (d & 7))) & 1;
}

static int64_t new_node(struct mb_asn *a, int f)
{
	if (a->tn[f] == a->tcap[f]) {
		size_t cap = a->tcap[f] ? a->tcap[f] * 2 : 256;
		struct mb_tnode *t = realloc(a->t[f], cap * sizeof(*t));
		if (!t)
			return -ENOMEM;
		a->t[f] = t;
		a->tcap[f] = cap;
	}
	a->t[f][a->tn[f]] = (struct mb_tnode){.prefix = -1};
	return (int64_t)a->tn[f]++;
}

/* Add p to the list and the trie; 1 if the prefix was there already. */
static int add(struct mb_asn *a, const struct mb_prefix *p)
{
	int f = p->v6;
	if (!a->tn[f] && new_node(a, f) < 0)
		return -ENOMEM;
	uint32_t i = 0;
	for (unsigned d = 0; d < p->plen; d++) {
		unsigned b = bit_at(p->addr, d);
		if (!a->t[f][i].child[b]) {
			int64_t c = new_node(a, f);
			if (c < 0)
				return -ENOMEM;
			a->t[f][i].child[b] = (uint32_t)c;
		}
		i = a->t[f][i].child[b];
	}
	if (a->t[f][i].prefix >= 0)
		return 1;
	if (a->n == a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 256;
		struct mb_prefix *v = realloc(a->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		a->v = v;
		a->cap = cap;
	}
	a->v[a->n] = *p;
	a->t[f][i].prefix = (int32_t)a->n++;
	return 0;
}

/* Decimal digits only, at most max; false otherwise. */
static bool parse_uint(const char *s, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;
	if (!*s || strlen(s) > 10)
		return false;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return false;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	if (v > max)
		return false;
	*out = v;
	return true;
}

static void on_line(void *arg, const char *line, size_t len, uint64_t lineno, bool too_long)
{
	struct areader *r = arg;
	if (r->rc)
		return;
	if (too_long) {
		bad(r, lineno, "line longer than %d bytes", MB_LINE_MAX);
		return;
	}
	if (memchr(line, 0, len)) {
		bad(r, lineno, "NUL byte in line");
		return;
	}
	char buf[MB_LINE_MAX + 1];
	memcpy(buf, line, len);
	buf[len] = 0;
	char *tok[3];
	unsigned n = 0;
	for (char *save = NULL, *t = strtok_r(buf, " \t", &save); t && *t != '#';
	     t = strtok_r(NULL, " \t", &save)) {
		if (n < 3)
			tok[n] = t;
		n++;
	}
	if (n == 0)
		return; /* blank or a comment */
	if (n != 2) {
		bad(r, lineno, "%u fields, expected 2 (PREFIX/LEN ASN)", n);
		return;
	}
	struct mb_prefix p = {0};
	char *slash = strchr(tok[0], '/');
	if (!slash) {
		bad(r, lineno, "\"%.64s\" is not PREFIX/LEN", tok[0]);
		return;
	}
	*slash = 0;
	p.v6 = strchr(tok[0], ':') != NULL;
	unsigned max = p.v6 ? 128 : 32;
	uint64_t plen, asn;
	if (inet_pton(p.v6 ? AF_INET6 : AF_INET, tok[0], p.addr) != 1) {
		bad(r, lineno, "bad prefix address \"%.64s\"", tok[0]);
		return;
	}
	if (!parse_uint(slash + 1, max, &plen)) {
		bad(r, lineno, "bad prefix length \"%.8s\" (0..%u)", slash + 1, max);
		return;
	}
	p.plen = (uint8_t)plen;
	for (unsigned d = p.plen; d < max; d++)
		if (bit_at(p.addr, d)) {
			bad(r, lineno, "%s/%u has bits set past its length", tok[0], p.plen);
			return;
		}
	if (!parse_uint(tok[1], UINT32_MAX, &asn)) {
		bad(r, lineno, "bad ASN \"%.16s\" (0..4294967295)", tok[1]);
		return;
	}
	p.asn = (uint32_t)asn;
	int rc = add(r->a, &p);
	if (rc < 0)
		r->rc = rc;
	else if (rc)
		r->a->duplicates++;
}

int mb_asn_read(const char *path, struct mb_asn *a, FILE *report, char **err)
{
	struct areader r = {.path = path, .report = report, .a = a};
	int rc = mb_read_lines(path, on_line, &r, err);
	if (!rc && r.rc)
		rc = mb_fail(err, r.rc, "%s: out of memory", path);
	if (!rc && report && a->malformed > MB_REPORT_MAX)
		fprintf(report, "%s: %llu more malformed lines not shown\n", path,
			(unsigned long long)(a->malformed - MB_REPORT_MAX));
	return rc;
}

void mb_asn_free(struct mb_asn *a)
{
	free(a->v);
	free(a->t[0]);
	free(a->t[1]);
	memset(a, 0, sizeof(*a));
}

unsigned mb_asn_covering(const struct mb_asn *a, bool v6, const uint8_t *addr, unsigned plen,
			 int32_t *out, unsigned max)
{
	int f = v6;
	unsigned n = 0;
	if (!a->tn[f])
		return 0;
	uint32_t i = 0;
	for (unsigned d = 0;; d++) {
		if (a->t[f][i].prefix >= 0 && n < max)
			out[n++] = a->t[f][i].prefix;
		if (d == plen)
			break;
		uint32_t c = a->t[f][i].child[bit_at(addr, d)];
		if (!c)
			break;
		i = c;
	}
	return n;
}
