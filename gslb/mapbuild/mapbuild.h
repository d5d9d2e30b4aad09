/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * mapbuild.h - the library behind gslb-map: real-user latency samples in,
 * a GSLB map file (gslb/map.h) out. It is a library rather than a single
 * main.c so that each step can be tested on a hand-made dataset:
 *
 *   mb_samples_read   CSV -> clean samples; a client address is cut to its
 *                     /24 or /56 as soon as its row is parsed and is never
 *                     stored or printed whole
 *   mb_aggregate      samples -> per subnet, the PoPs ranked by median RTT
 *   mb_asn_read       prefix-to-AS file, to extrapolate to unmeasured space
 *   mb_build_image    subnets (+ extrapolation) -> a map file image
 *   mb_score_map      how well a map answers for held-out subnets
 *   mb_run_build      all of the above, as `gslb-map build` runs it
 *   mb_publish        the publish gate in front of the live map
 *   mb_write_gdnsd    a map as a gdnsd 3 geoip "nets" file
 *
 * The statistic: for one (subnet, PoP) pair, the median of its samples'
 * RTTs (the mean of the two middle ones for an even count, rounded to the
 * µs). A PoP counts for a subnet only with at least min_samples samples, so
 * that one lucky probe does not decide where a whole /24 goes. The median
 * rather than the mean because real-user RTTs have long tails (a retransmit,
 * a phone waking its radio) that would otherwise rank PoPs by their worst
 * moments.
 */
#ifndef PORTICO_GSLB_MAPBUILD_H
#define PORTICO_GSLB_MAPBUILD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "map.h"

#define MB_CSV_HEADER	 "client,pop,rtt_ms,ok"
#define MB_LINE_MAX	 1024	 /* bytes; a longer line is malformed, not cut */
#define MB_RTT_MIN_MS	 0.001	 /* below one µs: a clock artefact, not a path */
#define MB_RTT_ABSURD_MS 60000.0 /* above a minute: a broken timer, not a path */
#define MB_REPORT_MAX	 10	 /* malformed lines shown per file, then counted */
#define MB_SUBNET4	 24	 /* clients are grouped by /24 (IPv4) ... */
#define MB_SUBNET6	 56	 /* ... and /56 (IPv6: a typical end-site) */
#define MB_MIN_SAMPLES	 3
#define MB_HOLDOUT	 0.2
#define MB_MIN_SCORE	 0.6
#define MB_MARGIN	 0.02
#define MB_SUBNET_V6	 (1ULL << 63) /* family bit of a subnet key */

/* Shared error helper: sets *err (malloc'd, caller frees) and returns rc. */
int mb_fail(char **err, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/*
 * Call fn once per line of path ("-" reads stdin), without its "\n" or
 * "\r\n"; lineno counts from 1. A line longer than MB_LINE_MAX bytes is
 * passed as line NULL, len 0, too_long set: the caller reports it, never
 * parses a prefix of it. Returns 0, or -errno with *err naming path and the
 * reason (open or read failure).
 */
typedef void (*mb_line_fn)(void *arg, const char *line, size_t len, uint64_t lineno, bool too_long);
int mb_read_lines(const char *path, mb_line_fn fn, void *arg, char **err);

/* ---- samples ---- */

/* Why a row was dropped; each kind has its own counter. */
enum mb_drop {
	MB_DROP_MALFORMED, /* unparseable: reported as FILE:LINE: reason */
	MB_DROP_FAILED,	   /* ok=0: the probe did not complete */
	MB_DROP_NEGATIVE,  /* rtt < 0 */
	MB_DROP_TINY,	   /* rtt < MB_RTT_MIN_MS */
	MB_DROP_ABSURD,	   /* rtt > MB_RTT_ABSURD_MS */
	MB_DROP_DUPLICATE, /* same client, PoP, rtt and ok as an earlier clean row */
	MB_DROP__N,
};

/* Name of a drop kind for the summary ("malformed", ...). */
const char *mb_drop_name(enum mb_drop d);

/*
 * A clean sample. subnet is a key: for IPv4 the /24 in the low 24 bits, for
 * IPv6 MB_SUBNET_V6 | the /56 in the low 56 bits; keys sort IPv4 first,
 * then by address.
 */
struct mb_sample {
	uint64_t subnet;
	uint32_t rtt_us;
	uint16_t pop; /* index into mb_samples.pops */
	uint16_t pad;
};

struct mb_samples {
	struct mb_sample *v;
	size_t n, cap;
	char pops[GMAP_MAX_POPS][GMAP_POP_NAME]; /* sorted by name once read */
	unsigned n_pops;
	uint64_t rows; /* data rows: not blank, comment or header lines */
	uint64_t drops[MB_DROP__N];
	uint64_t mapped; /* ::ffff:a.b.c.d clients counted as IPv4 */
};

/*
 * Read and clean the samples CSV at path ("-": stdin) into s (zeroed by the
 * caller; free with mb_samples_free, also after an error). Each malformed
 * line goes to report (NULL: not shown) as "path:LINE: reason", the first
 * MB_REPORT_MAX of them, then a count of the rest. Bad rows are counted and
 * skipped, never fatal. Duplicates are found with a keyed 64-bit hash of
 * the whole row (the key is random per run and the table is freed before
 * returning; one false duplicate in ~10^7 runs of a million rows). Returns
 * 0, -ENOMEM, or -errno with *err when path cannot be read.
 */
int mb_samples_read(const char *path, struct mb_samples *s, FILE *report, char **err);
void mb_samples_free(struct mb_samples *s);

/* Split a subnet key into family (AF_INET/AF_INET6), address and length. */
void mb_subnet_addr(uint64_t key, int *family, uint8_t addr[16], unsigned *plen);

/* ---- aggregation and choice ---- */

/* A PoP measured in a subnet with at least min_samples samples. */
struct mb_meas {
	uint32_t median_us;
	uint32_t n; /* samples */
	uint16_t pop;
};

/* A subnet with at least one PoP measured: meas[first .. first + n_meas), best first. */
struct mb_subnet {
	uint64_t key;
	uint32_t first;
	uint32_t n_meas;
};

struct mb_data {
	struct mb_subnet *subnets; /* sorted by key */
	size_t n_subnets, n4, n6;
	struct mb_meas *meas;
	size_t n_meas;
	size_t unmeasured; /* subnets with samples but no PoP reaching min_samples */
};

/*
 * Group s by subnet and PoP (sorting s->v in place): per pair the median
 * RTT, kept when it has at least min_samples samples; per subnet its PoPs
 * ordered by median (ties by name), best first. Subnets without any kept
 * PoP are counted in d->unmeasured and left out. d is zeroed by the
 * caller; free with mb_data_free. Returns 0 or -ENOMEM.
 */
int mb_aggregate(struct mb_samples *s, unsigned min_samples, struct mb_data *d);
void mb_data_free(struct mb_data *d);

/* Index of the subnet with key in d, or -1. O(log n). */
ptrdiff_t mb_data_find(const struct mb_data *d, uint64_t key);

/* ---- prefix-to-AS ---- */

struct mb_prefix {
	uint8_t addr[16];
	uint8_t v6;
	uint8_t plen;
	uint32_t asn;
};

/* A binary trie over the announced prefixes of one family. */
struct mb_tnode {
	uint32_t child[2];
	int32_t prefix; /* index into mb_asn.v, -1: none */
};

struct mb_asn {
	struct mb_prefix *v;
	size_t n, cap;
	struct mb_tnode *t[2]; /* [0] IPv4, [1] IPv6; node 0 is the root */
	size_t tn[2], tcap[2];
	uint64_t malformed;
	uint64_t duplicates; /* a prefix listed again: the first line wins */
};

/*
 * Read a prefix-to-AS file ("PREFIX/LEN ASN" per line, '#' comments) into a
 * (zeroed by the caller; free with mb_asn_free, also after an error).
 * Malformed lines are reported like mb_samples_read's and skipped. Returns
 * 0, -ENOMEM, or -errno with *err when path cannot be read.
 */
int mb_asn_read(const char *path, struct mb_asn *a, FILE *report, char **err);
void mb_asn_free(struct mb_asn *a);

/*
 * The announced prefixes covering addr (family by v6) with lengths up to
 * plen, shortest first, into out[0..max). Returns how many.
 */
unsigned mb_asn_covering(const struct mb_asn *a, bool v6, const uint8_t *addr, unsigned plen,
			 int32_t *out, unsigned max);

/* ---- map building ---- */

/*
 * Build a map image from the subnets of d whose held[i] is 0 (held NULL:
 * all of them), with s's PoPs. With asn (NULL: none), also extrapolate:
 *
 *  - a subnet belongs to the AS of the longest announced prefix holding it;
 *  - an AS whose measured subnets (at least 2) all have the same best PoP
 *    gives each of its announced prefixes a list ranked by, per PoP, the
 *    median over the AS's subnets of that PoP's median (the agreed PoP
 *    first);
 *  - then each announced prefix holding at least 2 measured subnets that
 *    agree gets its own list the same way (more specific, so it refines an
 *    AS that disagrees as a whole);
 *  - a prefix holding measured subnets that disagree gets no entry, nor
 *    does one longer than a subnet (/24, /56): no entry ever singles out
 *    fewer clients than that;
 *  - every measured subnet keeps its own /24 or /56 entry.
 *
 * With prune, entries equal to their cover are left out. *buf is malloc'd
 * (caller frees), *len its size, *n_extrapolated the number of announced
 * prefixes given an entry (before pruning). Returns 0 or -ENOMEM / -E2BIG.
 */
int mb_build_image(const struct mb_samples *s, const struct mb_data *d, const struct mb_asn *asn,
		   const uint8_t *held, bool prune, const struct gmap_meta *meta, void **buf,
		   size_t *len, size_t *n_extrapolated);

/* ---- quality score ---- */

/*
 * Whether subnet key is held out: a seeded hash of the key below share
 * (0 <= share < 1). The same seed holds out the same subnets whatever the
 * input order, so two builds can be compared on the same subnets.
 */
bool mb_held_out(uint64_t key, uint64_t seed, double share);

/*
 * A map judged on held-out subnets. For each one, the map's answer is
 * gmap_lookup on the subnet prefix: it is scored; covered when the map has
 * an answer; correct when the answer's first PoP is the subnet's measured
 * best; when that PoP was measured in the subnet, the difference of the two
 * medians is added to the regret.
 */
struct mb_score {
	uint32_t scored, covered, correct, regret_n;
	uint64_t regret_sum_us;
};

/*
 * Score m (its PoPs are matched to s's by name, so any map can be judged)
 * on the subnets of d with held[i] set. Fills *out.
 */
void mb_score_map(const struct gmap *m, const struct mb_samples *s, const struct mb_data *d,
		  const uint8_t *held, struct mb_score *out);

/* correct / scored, covered / scored (0 when nothing was scored). */
double mb_score_correct(const struct mb_score *sc);
double mb_score_coverage(const struct mb_score *sc);
/* Mean regret in µs (rounded; 0 when no chosen PoP was measured). */
uint32_t mb_score_regret_us(const struct mb_score *sc);

/* ---- a whole build ---- */

struct mb_opts {
	const char *samples; /* path, "-" for stdin */
	const char *asn;     /* NULL: no extrapolation */
	double holdout;	     /* share of subnets held out, [0, 1) */
	uint64_t seed;
	unsigned min_samples;
	bool prune;
	uint64_t created; /* header time; 0: now */
	FILE *report;	  /* malformed lines; NULL: not shown */
};

struct mb_run {
	struct mb_opts o;
	struct mb_samples samples;
	struct mb_asn asn;
	struct mb_data data;
	uint8_t *held;	       /* per subnet of data */
	struct mb_score score; /* the map built without held-out subnets, on them */
	size_t extrapolated;   /* announced prefixes given an entry in the final map */
	void *image;	       /* the final map, built from every clean sample */
	size_t image_len;
	struct gmap *map; /* image parsed (borrows it) */
	double seconds;	  /* wall time of mb_run_build */
};

/*
 * Run a build: read and clean, aggregate, hold out, build and score the
 * held-out map, then build the final map from everything with the score in
 * its header. r is zeroed by the caller with r->o filled; free with
 * mb_run_free (also after an error). Returns 0, -ENODATA (no subnet has a
 * PoP with enough samples) or -errno, with *err (caller frees).
 */
int mb_run_build(struct mb_run *r, char **err);
void mb_run_free(struct mb_run *r);

/* The build summary, one "key value" per line. */
void mb_run_summary(const struct mb_run *r, FILE *out);

enum mb_verdict {
	MB_PUBLISHED,
	MB_REFUSED_SCORE, /* below min_score */
	MB_REFUSED_WORSE, /* worse than the live map by more than margin */
};

/* What the live map's score, the one compared with the new map's, was. */
enum mb_basis {
	MB_BASIS_NONE,	       /* nothing compared: no live map that loads, or below min_score */
	MB_BASIS_HEADER,       /* its own held-out score, from its header */
	MB_BASIS_SAME_SUBNETS, /* its header has none: scored on the new held-out subnets */
};

struct mb_gate {
	double min_score, margin; /* set by the caller */
	enum mb_verdict verdict;
	enum mb_basis basis;	      /* which comparison decided */
	bool live;		      /* a live map loaded (and was scored) */
	bool live_has_score;	      /* its header has a held-out score ... */
	double live_header_score;     /* ... this one (score_ppm / 10^6) ... */
	uint32_t live_header_holdout; /* ... on this many of its own held-out subnets */
	struct mb_score live_score;   /* the live map on the new held-out subnets */
	char *live_err;		      /* why a file at the path did not load (caller frees) */
};

/*
 * The publish gate: refuse r's final map when its held-out correct share is
 * below g->min_score, or when path holds a map that loads and is better by
 * more than g->margin; otherwise write it to path atomically
 * (gmap_write_file). A map with nothing held out scores 0.
 *
 * "Better" compares held-out scores, each map judged on subnets it was not
 * built from: the new map's against the live map's own, from its header
 * (score_ppm not GMAP_NOT_SCORED and at most 10^6, holdout > 0), both at
 * the header's ppm resolution. Only when the header has no score is the
 * live map scored on the new map's held-out subnets and compared on those:
 * a biased comparison, since the live map was likely built from samples of
 * those very subnets and answers them from their own entries (the same
 * samples published twice would be refused), but the only one such a map
 * allows. The live map is scored on the new held-out subnets in either
 * case (g->live_score), for information. g->basis says which comparison
 * decided.
 *
 * A file at path that does not load is not compared (g->live_err says
 * why) and is replaced. A refusal leaves path untouched. Returns 0 with
 * g->verdict set, or -errno with *err when the write fails.
 */
int mb_publish(const struct mb_run *r, const char *path, struct mb_gate *g, char **err);

/* ---- reading maps back ---- */

/*
 * Print the header of m as "key value" lines (version, PoPs and their
 * names, lists, nodes, entries per family, samples, score, regret,
 * holdout, created).
 */
void mb_print_info(const struct gmap *m, FILE *out);

/*
 * Look up arg ("ADDR" or "ADDR/LEN") in m and print
 * "ADDR/LEN pops=a,b,c match=N scope=M" (pops=- on a miss). Returns 0, or
 * -EINVAL with *err for an argument that is not an address.
 */
int mb_print_lookup(const struct gmap *m, const char *arg, FILE *out, char **err);

/*
 * Write m as a gdnsd 3 geoip plugin "nets" file ("PREFIX/LEN => [ a, b ]"
 * per line) that answers as m does:
 *
 *  - gdnsd merges adjacent nets with equal lists, and when a merge yields a
 *    net that is also listed with another list it picks one arbitrarily; so
 *    an entry entirely covered by more specific ones (never the answer for
 *    a whole address) is left out;
 *  - gdnsd keeps IPv4 in ::/96 and refuses IPv6 nets inside its other
 *    IPv4-like spaces (::ffff:0:0/96, ::ffff:0:0:0/96, 64:ff9b::/96,
 *    2001::/32, 2002::/16): IPv6 entries inside those or inside ::/96 are
 *    left out and counted in *skipped, and an IPv6 entry covering ::/96 is
 *    written as the pieces around it, so that it cannot answer IPv4.
 *
 * Returns 0, -ENOMEM, or -EIO when out fails.
 */
int mb_write_gdnsd(const struct gmap *m, FILE *out, size_t *skipped);

#endif
