// SPDX-License-Identifier: GPL-2.0-only
/*
 * main.c - gslb-map's command line: a table of subcommands, each parsing
 * its options and calling the library (mapbuild.h), where the work and its
 * tests live.
 *
 * Exit status: 0 done, 1 failed (a file, memory), 2 bad usage, 3 the
 * publish gate refused the new map (the live map is untouched).
 */
#include "mapbuild.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define EXIT_USAGE   2
#define EXIT_REFUSED 3

struct command {
	const char *name, *args, *help;
	int (*fn)(int argc, char **argv);
};

static const struct command commands[];

static void usage(FILE *f)
{
	fprintf(f, "usage: gslb-map COMMAND [ARGS]\n\ncommands:\n");
	for (const struct command *c = commands; c->name; c++)
		fprintf(f, "  %s %s\n      %s\n", c->name, c->args, c->help);
	fprintf(f,
		"\nbuild options:\n"
		"  --samples FILE     samples CSV (" MB_CSV_HEADER "), - for stdin (required)\n"
		"  --asn FILE         PREFIX/LEN ASN lines: extrapolate to unmeasured prefixes\n"
		"  --out MAP          write the map there\n"
		"  --publish PATH     write it there only if it passes the gate below\n"
		"  --holdout F        share of subnets held out to score the map (%.2g)\n"
		"  --seed N           which subnets are held out (1)\n"
		"  --min-samples N    samples a PoP needs in a subnet to count (%u)\n"
		"  --min-score F      publish only if held-out correct >= F (%.2g)\n"
		"  --margin F         ...and not worse than the live map's by more than F (%.2g):\n"
		"                     its own held-out score from its header, or, when it has\n"
		"                     none, its score on the new map's held-out subnets\n"
		"  --no-prune         keep entries equal to their covering entry\n"
		"  --quiet            no summary\n"
		"\nClients are grouped by /%u (IPv4) and /%u (IPv6). Per subnet and PoP the\n"
		"statistic is the median RTT of its clean samples (the mean of the middle two\n"
		"for an even count); a PoP counts only with at least --min-samples samples,\n"
		"and a subnet's list is its PoPs by that median, best first.\n"
		"Rows dropped: malformed, ok=0, rtt < 0, rtt < %g ms, rtt > %g ms, and exact\n"
		"duplicates. The score: the held-out subnets' share whose first choice in a map\n"
		"built without them is their measured best (correct), the mean extra median\n"
		"RTT of that choice (regret), and the share it answers at all (coverage).\n",
		MB_HOLDOUT, MB_MIN_SAMPLES, MB_MIN_SCORE, MB_MARGIN, MB_SUBNET4, MB_SUBNET6,
		MB_RTT_MIN_MS, MB_RTT_ABSURD_MS);
}

static int bad_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int bad_usage(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "gslb-map: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	usage(stderr);
	return EXIT_USAGE;
}

static bool parse_share(const char *s, double lo, double hi, bool hi_open, double *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || *end || !(v >= lo) || (hi_open ? v >= hi : v > hi))
		return false;
	*out = v;
	return true;
}

static bool parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	char *end;
	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end || v > max)
		return false;
	*out = v;
	return true;
}

static int open_map(const char *path, struct gmap **m)
{
	char *err = NULL;
	if (gmap_open(path, m, &err)) {
		fprintf(stderr, "gslb-map: %s\n", err ? err : path);
		free(err);
		return 1;
	}
	return 0;
}

/*
 * What the live map scored, for the gate's messages: the number compared first
 * ("compared"), then the other one, "not compared", so that an operator sees
 * both and which decided.
 */
static void describe_live(FILE *f, const struct mb_run *r, const struct mb_gate *g)
{
	double same = mb_score_correct(&g->live_score);
	unsigned n = r->score.scored;
	if (g->basis == MB_BASIS_HEADER)
		fprintf(f,
			"live map %.4f on its own %u held-out subnets (from its header, compared); "
			"%.4f on the new %u held-out subnets (not compared: it was likely built "
			"from them)",
			g->live_header_score, g->live_header_holdout, same, n);
	else
		fprintf(f,
			"live map %.4f on the new %u held-out subnets (compared: its header has "
			"no held-out score)",
			same, n);
}

/* The publish gate and what it decided, on stderr (refused) or stdout. 0, 1 or 3. */
static int publish_map(const struct mb_run *r, const char *path, struct mb_gate *g)
{
	char *err = NULL;
	if (mb_publish(r, path, g, &err)) {
		fprintf(stderr, "gslb-map: %s\n", err ? err : path);
		free(err);
		return 1;
	}
	double score = mb_score_correct(&r->score);
	unsigned n = r->score.scored;
	if (g->live_err)
		fprintf(stderr, "gslb-map: %s does not load (%s): not compared\n", path,
			g->live_err);
	if (g->verdict == MB_REFUSED_SCORE && !n) {
		fprintf(stderr,
			"gslb-map: refusing to publish %s: the new map has no score (no held-out "
			"subnet: --holdout 0 or too few subnets), --min-score is %.4f\n",
			path, g->min_score);
		return EXIT_REFUSED;
	}
	if (g->verdict == MB_REFUSED_SCORE) {
		fprintf(stderr,
			"gslb-map: refusing to publish %s: the new map scores %.4f (held-out "
			"correct, %u subnets), below --min-score %.4f\n",
			path, score, n, g->min_score);
		return EXIT_REFUSED;
	}
	if (g->verdict == MB_REFUSED_WORSE) {
		fprintf(stderr, "gslb-map: refusing to publish %s: ", path);
		if (n)
			fprintf(stderr, "the new map scores %.4f on its %u held-out subnets, the ",
				score, n);
		else
			fprintf(stderr, "the new map has no held-out subnet (scores 0), the ");
		describe_live(stderr, r, g);
		fprintf(stderr, ": worse by more than --margin %.4f\n", g->margin);
		return EXIT_REFUSED;
	}
	if (g->live) {
		printf("published %s: score %.4f on its %u held-out subnets, ", path, score, n);
		describe_live(stdout, r, g);
		printf("\n");
	} else {
		printf("published %s: score %.4f (no live map to compare)\n", path, score);
	}
	return 0;
}

static int cmd_build(int argc, char **argv)
{
	enum {
		O_SAMPLES = 256,
		O_ASN,
		O_OUT,
		O_PUBLISH,
		O_HOLDOUT,
		O_SEED,
		O_MIN_SAMPLES,
		O_MIN_SCORE,
		O_MARGIN,
		O_NO_PRUNE,
		O_QUIET
	};
	static const struct option opts[] = {
	    {"samples", required_argument, NULL, O_SAMPLES},
	    {"asn", required_argument, NULL, O_ASN},
	    {"out", required_argument, NULL, O_OUT},
	    {"publish", required_argument, NULL, O_PUBLISH},
	    {"holdout", required_argument, NULL, O_HOLDOUT},
	    {"seed", required_argument, NULL, O_SEED},
	    {"min-samples", required_argument, NULL, O_MIN_SAMPLES},
	    {"min-score", required_argument, NULL, O_MIN_SCORE},
	    {"margin", required_argument, NULL, O_MARGIN},
	    {"no-prune", no_argument, NULL, O_NO_PRUNE},
	    {"quiet", no_argument, NULL, O_QUIET},
	    {NULL, 0, NULL, 0},
	};
	struct mb_run r = {.o = {.holdout = MB_HOLDOUT,
				 .seed = 1,
				 .min_samples = MB_MIN_SAMPLES,
				 .prune = true,
				 .report = stderr}};
	struct mb_gate g = {.min_score = MB_MIN_SCORE, .margin = MB_MARGIN};
	const char *out = NULL, *publish = NULL;
	bool quiet = false;
	uint64_t v;
	int o;
	optind = 1;
	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case O_SAMPLES:
			r.o.samples = optarg;
			break;
		case O_ASN:
			r.o.asn = optarg;
			break;
		case O_OUT:
			out = optarg;
			break;
		case O_PUBLISH:
			publish = optarg;
			break;
		case O_HOLDOUT:
			if (!parse_share(optarg, 0, 1, true, &r.o.holdout))
				return bad_usage("--holdout \"%s\": a number in [0, 1)", optarg);
			break;
		case O_SEED:
			if (!parse_u64(optarg, UINT64_MAX, &r.o.seed))
				return bad_usage("--seed \"%s\": an unsigned integer", optarg);
			break;
		case O_MIN_SAMPLES:
			if (!parse_u64(optarg, 1000000, &v) || v == 0)
				return bad_usage("--min-samples \"%s\": 1..1000000", optarg);
			r.o.min_samples = (unsigned)v;
			break;
		case O_MIN_SCORE:
			if (!parse_share(optarg, 0, 1, false, &g.min_score))
				return bad_usage("--min-score \"%s\": a number in [0, 1]", optarg);
			break;
		case O_MARGIN:
			if (!parse_share(optarg, 0, 1, false, &g.margin))
				return bad_usage("--margin \"%s\": a number in [0, 1]", optarg);
			break;
		case O_NO_PRUNE:
			r.o.prune = false;
			break;
		case O_QUIET:
			quiet = true;
			break;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind < argc)
		return bad_usage("build: unexpected argument \"%s\"", argv[optind]);
	if (!r.o.samples)
		return bad_usage("build: --samples FILE is required");

	char *err = NULL;
	int status = 1;
	if (mb_run_build(&r, &err)) {
		fprintf(stderr, "gslb-map: %s\n", err ? err : "build failed");
		goto out;
	}
	if (!quiet)
		mb_run_summary(&r, stdout);
	if (out) {
		if (gmap_write_file(out, r.image, r.image_len, &err)) {
			fprintf(stderr, "gslb-map: %s\n", err ? err : out);
			goto out;
		}
		if (!quiet)
			printf("wrote %s\n", out);
	}
	if (publish && (status = publish_map(&r, publish, &g)))
		goto out;
	status = 0;
out:
	free(err);
	free(g.live_err);
	mb_run_free(&r);
	return status;
}

static int cmd_lookup(int argc, char **argv)
{
	if (argc < 3)
		return bad_usage("lookup: MAP and at least one ADDR[/LEN] are needed");
	struct gmap *m;
	if (open_map(argv[1], &m))
		return 1;
	int status = 0;
	for (int i = 2; i < argc; i++) {
		char *err = NULL;
		if (mb_print_lookup(m, argv[i], stdout, &err)) {
			fprintf(stderr, "gslb-map: lookup: %s\n", err ? err : argv[i]);
			status = EXIT_USAGE;
		}
		free(err);
	}
	gmap_close(m);
	return status;
}

static int cmd_info(int argc, char **argv)
{
	if (argc != 2)
		return bad_usage("info: one MAP is needed");
	struct gmap *m;
	if (open_map(argv[1], &m))
		return 1;
	mb_print_info(m, stdout);
	gmap_close(m);
	return 0;
}

static int cmd_gdnsd(int argc, char **argv)
{
	if (argc != 2)
		return bad_usage("gdnsd-nets: one MAP is needed");
	struct gmap *m;
	if (open_map(argv[1], &m))
		return 1;
	size_t skipped = 0;
	int rc = mb_write_gdnsd(m, stdout, &skipped);
	gmap_close(m);
	if (rc) {
		fprintf(stderr, "gslb-map: gdnsd-nets: %s\n", strerror(-rc));
		return 1;
	}
	if (skipped)
		fprintf(stderr,
			"gslb-map: gdnsd-nets: %zu IPv6 entries in gdnsd's IPv4-like spaces "
			"left out (gdnsd cannot hold them)\n",
			skipped);
	return 0;
}

static const struct command commands[] = {
    {"build", "--samples FILE [--asn FILE] [--out MAP] [--publish PATH] [options]",
     "build a map from latency samples, score it on held-out subnets, write it", cmd_build},
    {"lookup", "MAP ADDR[/LEN]...", "print the map's answer: ADDR/LEN pops=a,b match=N scope=M",
     cmd_lookup},
    {"info", "MAP", "print the map's header, one \"key value\" per line", cmd_info},
    {"gdnsd-nets", "MAP", "print the map as a gdnsd 3 geoip plugin nets file", cmd_gdnsd},
    {NULL, NULL, NULL, NULL},
};

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	for (const struct command *c = commands; c->name; c++)
		if (!strcmp(argv[1], c->name))
			return c->fn(argc - 1, argv + 1);
	return bad_usage("unknown command \"%s\"", argv[1]);
}
