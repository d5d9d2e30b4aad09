/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * prom.h - a writer for the Prometheus text exposition format, version
 * 0.0.4 (https://prometheus.io/docs/instrumenting/exposition_formats/),
 * shared by lbd and the proxy so both print the same dialect.
 *
 * A scrape builds the whole page in one growable buffer, family by family:
 *
 *	struct prom_buf b;
 *	char *text;
 *	size_t len;
 *
 *	prom_init(&b);
 *	prom_family(&b, "portico_lbd_vip_packets_total", PROM_COUNTER,
 *		    "Packets the balancer received for the VIP.");
 *	prom_sample_u64(&b, PROM_LABELS("vip", "192.0.2.10:80/tcp"), 42);
 *	text = prom_finish(&b, &len);	// malloc'd, or NULL with errno set
 *
 * The writer keeps the rules a scraper relies on: every family has its
 * # HELP and # TYPE lines, a family is started once (its samples are
 * therefore contiguous), label values and help texts are escaped, numbers
 * are printed as Go's ParseFloat reads them. It cannot know whether two
 * samples of a family carry the same label set: that is the caller's to
 * avoid. Names are checked (a bad one is a programming error reported by
 * prom_finish, not a crash), so a unit test of the caller finds it.
 *
 * Errors are sticky: after the first failure (no memory, a bad name) the
 * calls do nothing and prom_finish returns NULL, so a caller writes its
 * page straight through and checks once. Not thread-safe; one buffer per
 * scrape. Cost: O(page size), plus O(families^2) name comparisons to
 * refuse a family started twice (a page has tens of families).
 */
#ifndef PORTICO_PROM_H
#define PORTICO_PROM_H

#include <stddef.h>
#include <stdint.h>

enum prom_type {
	PROM_COUNTER,
	PROM_GAUGE,
	PROM_HISTOGRAM,
};

/* The buffer of one page. Members are the writer's; use the functions. */
struct prom_buf {
	char *data;
	size_t len, cap;
	int err; /* first error (positive errno), 0 if none */
	enum prom_type type;
	char **families; /* names started so far (duplicates refused) */
	size_t n_families, cap_families;
};

/*
 * Label pairs for a sample: name, value, name, value, ..., NULL. A
 * compound literal, so it lives as long as the enclosing block.
 * PROM_NO_LABELS (NULL) for a sample without labels.
 */
#define PROM_LABELS(...) ((const char *const[]){__VA_ARGS__, NULL})
#define PROM_NO_LABELS	 ((const char *const *)NULL)

/* An empty page. Never fails (memory is taken on first write). */
void prom_init(struct prom_buf *b);

/*
 * Start a family: name as the samples are named (a counter's with its
 * "_total"; a histogram's without "_bucket"/"_sum"/"_count"), type, and
 * help (one line of prose; escaped here). Samples that follow belong to
 * it. Refused (sticky EINVAL) if name is not a valid metric name or was
 * started before on this page. Strings are copied.
 */
void prom_family(struct prom_buf *b, const char *name, enum prom_type type, const char *help);

/*
 * A sample of the current counter or gauge family: labels (see
 * PROM_LABELS, copied, values escaped here) and the value, as an integer
 * (exact at any size) or as a double (printed in the shortest form that
 * reads back the same; NaN, +Inf, -Inf as the format spells them).
 * Refused (sticky EINVAL) outside a counter/gauge family, for an invalid
 * or reserved ("__" prefix) label name, or a label name given twice.
 */
void prom_sample_u64(struct prom_buf *b, const char *const *labels, uint64_t v);
void prom_sample_f64(struct prom_buf *b, const char *const *labels, double v);

/*
 * One histogram of the current histogram family: labels as above (not
 * "le", which this adds), bounds[0..n) the finite upper bounds in strictly
 * increasing order, counts[0..n] the observations that fell in each bucket
 * only (counts[i]: bounds[i-1] < x <= bounds[i]; counts[n]: above the last
 * bound), sum the sum of the observations. Writes the cumulative
 * <name>_bucket{le=...} lines, the +Inf bucket, <name>_sum and
 * <name>_count. Refused (sticky EINVAL) outside a histogram family or
 * with bounds out of order. Reads the arrays only during the call.
 */
void prom_sample_histogram(struct prom_buf *b, const char *const *labels, const double *bounds,
			   size_t n, const uint64_t *counts, double sum);

/*
 * Which bucket an observation x goes in, for callers keeping their own
 * per-bucket counts: the first i with x <= bounds[i], or n (+Inf).
 * O(log n).
 */
size_t prom_bucket_index(const double *bounds, size_t n, double x);

/*
 * End the page. Returns it, NUL-terminated, its length (without the NUL)
 * in *len, malloc'd and owned by the caller (admin_reply_text takes it
 * as is); or NULL with errno set to the first error (ENOMEM, EINVAL).
 * Either way b is emptied and needs no prom_free.
 */
char *prom_finish(struct prom_buf *b, size_t *len);

/* Drop the page unfinished (an error path). b may be reused after
 * prom_init. */
void prom_free(struct prom_buf *b);

#endif
