// SPDX-License-Identifier: GPL-2.0-only
/* prom.c - the Prometheus text exposition writer (prom.h). */
#include "prom.h"
#include "utf8.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void prom_init(struct prom_buf *b)
{
	*b = (struct prom_buf){.type = PROM_GAUGE};
}

static void fail(struct prom_buf *b, int err)
{
	if (!b->err)
		b->err = err;
}

/* Room for n more bytes plus a NUL; false (and sticky ENOMEM) if not. */
static bool reserve(struct prom_buf *b, size_t n)
{
	size_t cap;
	char *p;

	if (b->err)
		return false;
	if (b->len + n + 1 <= b->cap)
		return true;
	cap = b->cap ? b->cap : 4096;
	while (cap < b->len + n + 1)
		cap *= 2;
	p = realloc(b->data, cap);
	if (!p) {
		fail(b, ENOMEM);
		return false;
	}
	b->data = p;
	b->cap = cap;
	return true;
}

static void put(struct prom_buf *b, const char *s, size_t n)
{
	if (!reserve(b, n))
		return;
	memcpy(b->data + b->len, s, n);
	b->len += n;
	b->data[b->len] = '\0';
}

static void put_str(struct prom_buf *b, const char *s)
{
	put(b, s, strlen(s));
}

/*
 * The format's escapes: in label values \\, \" and \n; in help texts \\
 * and \n (a quote is literal there). Everything else is written as it is,
 * except bytes that are not UTF-8: Prometheus refuses a page with one in
 * a label value, and label values may come from clients (a gRPC method, a
 * certificate's name). They become U+FFFD, so one odd request cannot make
 * the page unreadable.
 */
static void put_escaped(struct prom_buf *b, const char *s, bool quote)
{
	for (const char *run = s;; s++) {
		const unsigned char c = (unsigned char)*s;
		const char *esc = c == '\\'	      ? "\\\\"
				  : c == '\n'	      ? "\\n"
				  : c == '"' && quote ? "\\\""
						      : NULL;
		size_t seq = 0;

		if (c >= 0x80) {
			seq = utf8_seq_len((const unsigned char *)s, strnlen(s, 4));
			if (seq) {
				s += seq - 1;
				continue;
			}
			esc = "\xef\xbf\xbd";
		}
		if (!esc && c)
			continue;
		put(b, run, (size_t)(s - run));
		if (!c)
			return;
		put_str(b, esc);
		run = s + 1;
	}
}

/*
 * A double as Go's strconv.ParseFloat (what Prometheus uses) reads it:
 * NaN, +Inf, -Inf, else the shortest %g of 15 to 17 digits that reads
 * back exactly (0.1 stays "0.1", not 0.10000000000000001). lbd and the
 * proxy never call setlocale, so the decimal point is always '.'.
 * s has room for PROM_DOUBLE_LEN bytes.
 */
#define PROM_DOUBLE_LEN 32

static const char *fmt_double(char *s, double v)
{
	if (isnan(v))
		return "NaN";
	if (isinf(v))
		return v > 0 ? "+Inf" : "-Inf";
	for (int prec = 15; prec <= 17; prec++) {
		snprintf(s, PROM_DOUBLE_LEN, "%.*g", prec, v);
		if (strtod(s, NULL) == v)
			break;
	}
	return s;
}

static void put_double(struct prom_buf *b, double v)
{
	char s[PROM_DOUBLE_LEN];

	put_str(b, fmt_double(s, v));
}

static void put_u64(struct prom_buf *b, uint64_t v)
{
	char s[24];

	snprintf(s, sizeof(s), "%llu", (unsigned long long)v);
	put_str(b, s);
}

/* [a-zA-Z_:][a-zA-Z0-9_:]* for metrics; labels have no ':'. */
static bool valid_name(const char *s, bool metric)
{
	if (!s || !*s || (*s >= '0' && *s <= '9'))
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '_' || (metric && *s == ':')))
			return false;
	return true;
}

void prom_family(struct prom_buf *b, const char *name, enum prom_type type, const char *help)
{
	static const char *const types[] = {
	    [PROM_COUNTER] = "counter", [PROM_GAUGE] = "gauge", [PROM_HISTOGRAM] = "histogram"};
	char *copy;

	if (b->err)
		return;
	if (!valid_name(name, true) || (unsigned)type > PROM_HISTOGRAM || !help) {
		fail(b, EINVAL);
		return;
	}
	for (size_t i = 0; i < b->n_families; i++)
		if (strcmp(b->families[i], name) == 0) {
			fail(b, EINVAL);
			return;
		}
	if (b->n_families == b->cap_families) {
		size_t cap = b->cap_families ? b->cap_families * 2 : 32;
		char **f = realloc(b->families, cap * sizeof(*f));

		if (!f) {
			fail(b, ENOMEM);
			return;
		}
		b->families = f;
		b->cap_families = cap;
	}
	if (!(copy = strdup(name))) {
		fail(b, ENOMEM);
		return;
	}
	b->families[b->n_families++] = copy;
	b->type = type;
	put_str(b, "# HELP ");
	put_str(b, name);
	put_str(b, " ");
	put_escaped(b, help, false);
	put_str(b, "\n# TYPE ");
	put_str(b, name);
	put_str(b, " ");
	put_str(b, types[type]);
	put_str(b, "\n");
}

/* The labels are well formed: pairs, valid names, none reserved or twice,
 * no "le" in a histogram (the writer adds it). */
static bool labels_ok(const char *const *labels, bool histogram)
{
	for (size_t i = 0; labels && labels[i]; i += 2) {
		if (!labels[i + 1] || !valid_name(labels[i], false) ||
		    strncmp(labels[i], "__", 2) == 0 || (histogram && strcmp(labels[i], "le") == 0))
			return false;
		for (size_t j = 0; j < i; j += 2)
			if (strcmp(labels[j], labels[i]) == 0)
				return false;
	}
	return true;
}

/* The family's name and suffix, {labels[,le="..."]} (le NULL: none), and
 * the space before the value. */
static void put_series(struct prom_buf *b, const char *suffix, const char *const *labels,
		       const char *le)
{
	bool any = false;

	put_str(b, b->families[b->n_families - 1]);
	put_str(b, suffix);
	for (size_t i = 0; labels && labels[i]; i += 2) {
		put_str(b, any ? "," : "{");
		put_str(b, labels[i]);
		put_str(b, "=\"");
		put_escaped(b, labels[i + 1], true);
		put_str(b, "\"");
		any = true;
	}
	if (le) {
		put_str(b, any ? ",le=\"" : "{le=\"");
		put_str(b, le);
		put_str(b, "\"");
		any = true;
	}
	put_str(b, any ? "} " : " ");
}

/* Checks common to every sample; false (sticky error) if refused. */
static bool sample_ok(struct prom_buf *b, const char *const *labels, bool histogram)
{
	if (b->err)
		return false;
	if (!b->n_families || (b->type == PROM_HISTOGRAM) != histogram ||
	    !labels_ok(labels, histogram)) {
		fail(b, EINVAL);
		return false;
	}
	return true;
}

void prom_sample_u64(struct prom_buf *b, const char *const *labels, uint64_t v)
{
	if (!sample_ok(b, labels, false))
		return;
	put_series(b, "", labels, NULL);
	put_u64(b, v);
	put_str(b, "\n");
}

void prom_sample_f64(struct prom_buf *b, const char *const *labels, double v)
{
	if (!sample_ok(b, labels, false))
		return;
	put_series(b, "", labels, NULL);
	put_double(b, v);
	put_str(b, "\n");
}

void prom_sample_histogram(struct prom_buf *b, const char *const *labels, const double *bounds,
			   size_t n, const uint64_t *counts, double sum)
{
	char le[PROM_DOUBLE_LEN];
	uint64_t cum = 0;

	if (!sample_ok(b, labels, true))
		return;
	for (size_t i = 0; i < n; i++)
		if (!isfinite(bounds[i]) || (i && !(bounds[i] > bounds[i - 1]))) {
			fail(b, EINVAL);
			return;
		}
	/* Buckets are cumulative (each counts everything <= its bound), so
	 * the +Inf bucket equals _count. */
	for (size_t i = 0; i <= n; i++) {
		cum += counts[i];
		put_series(b, "_bucket", labels, i < n ? fmt_double(le, bounds[i]) : "+Inf");
		put_u64(b, cum);
		put_str(b, "\n");
	}
	put_series(b, "_sum", labels, NULL);
	put_double(b, sum);
	put_str(b, "\n");
	put_series(b, "_count", labels, NULL);
	put_u64(b, cum);
	put_str(b, "\n");
}

size_t prom_bucket_index(const double *bounds, size_t n, double x)
{
	size_t lo = 0, hi = n;

	/* The first bound >= x; NaN compares false everywhere: +Inf. */
	if (isnan(x))
		return n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (x <= bounds[mid])
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

void prom_free(struct prom_buf *b)
{
	for (size_t i = 0; i < b->n_families; i++)
		free(b->families[i]);
	free(b->families);
	free(b->data);
	prom_init(b);
}

char *prom_finish(struct prom_buf *b, size_t *len)
{
	int err = b->err;
	char *text = b->data;

	if (!err && !text)
		text = calloc(1, 1);
	if (!err && !text)
		err = ENOMEM;
	*len = err ? 0 : b->len;
	if (!err)
		b->data = NULL; /* the caller's now */
	prom_free(b);
	if (err) {
		errno = err;
		return NULL;
	}
	return text;
}
