// SPDX-License-Identifier: GPL-2.0-only
/*
 * test_publish.c - the publish gate. On a dataset whose held-out score is
 * known (1 of 2 held-out subnets correct), against live maps made by hand
 * to score 1, 1/2 and 0 on the same subnets and to carry a held-out score
 * of their own in their header, or none:
 *
 *  - below --min-score refused, whatever the live map;
 *  - a live header with a score decides: higher than the new score by more
 *    than --margin refused, otherwise published, whatever the live map
 *    scores on the new held-out subnets;
 *  - a live header without one (GMAP_NOT_SCORED, holdout 0, or not a
 *    share) falls back to the live map on the same held-out subnets;
 *  - the same samples built and published twice with the real pipeline:
 *    the second publish goes through, although the first map, built from
 *    the held-out subnets too, answers them all right (also at 2/3, which
 *    the header rounds up to 0.666667);
 *
 * a refusal leaving the live file byte for byte, a publish replacing it
 * with the new map; no live file, or one that does not load, accepted.
 * Then the same through gslb-map's exit status and messages.
 */
#include <endian.h>
#include <errno.h>
#include <libgen.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "mapbuild.h"
#include "testutil.h"

#define SEED  7
#define SHARE 0.5

static unsigned held_k[2]; /* the held-out subnets are 10.k.1.0/24 */
static const char *samples_path, *asn_path;

static void subnet(FILE *f, unsigned k, const char *best, const char *second)
{
	for (int i = 0; i < 3; i++) {
		fprintf(f, "10.%u.1.%d,%s,10,1\n", k, i + 1, best);
		fprintf(f, "10.%u.1.%d,%s,20,1\n", k, i + 1, second);
	}
}

/*
 * Write a dataset to name: three training subnets prefer fra; held out,
 * n_fra prefer fra (the map built without them gets them right) and then
 * n_ams prefer ams (it gets them wrong). held_out[] gets their k. Returns
 * the path (malloc'd).
 */
static char *write_dataset(const char *name, unsigned n_fra, unsigned n_ams, unsigned *held_out)
{
	unsigned k = 1, n_train = 0, n_held = 0;
	char *csv = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&csv, &len);
	fprintf(f, "%s\n", MB_CSV_HEADER);
	for (; k < 256 && (n_train < 3 || n_held < n_fra + n_ams); k++) {
		bool held = mb_held_out((uint64_t)10 << 16 | k << 8 | 1, SEED, SHARE);
		if (!held && n_train < 3) {
			subnet(f, k, "fra", "ams");
			n_train++;
		} else if (held && n_held < n_fra + n_ams) {
			bool fra = n_held < n_fra;
			subnet(f, k, fra ? "fra" : "ams", fra ? "ams" : "fra");
			held_out[n_held++] = k;
		}
	}
	assert_int_equal(n_held, n_fra + n_ams);
	fclose(f);
	char *path = strdup(tu_write(name, csv));
	free(csv);
	return path;
}

/* Held out: 10.k.1.0/24 for held_k[0], preferring fra, and held_k[1], ams. */
static void make_dataset(void)
{
	samples_path = write_dataset("gate.csv", 1, 1, held_k);
	asn_path = strdup(tu_write("gate.asn", "10.0.0.0/8 64500\n"));
}

/* Build from samples as gslb-map build does; the held-out score must be want/of. */
static void build_from(struct mb_run *r, const char *samples, unsigned want, unsigned of)
{
	*r = (struct mb_run){.o = {.samples = samples,
				   .asn = asn_path,
				   .min_samples = 3,
				   .prune = true,
				   .seed = SEED,
				   .holdout = SHARE}};
	char *err = NULL;
	assert_int_equal(mb_run_build(r, &err), 0);
	assert_int_equal(r->score.scored, of);
	assert_int_equal(r->score.correct, want);
}

/* The premise of the gate cases: 1 of 2 correct. */
static void build(struct mb_run *r)
{
	build_from(r, samples_path, 1, 2);
}

/*
 * A live map at path scoring want_correct (0, 1 or 2) of the 2 held-out
 * subnets, with ppm and holdout as its header's held-out score
 * (GMAP_NOT_SCORED: none). Its PoP table is in another order than the
 * run's, so that scoring must go by name.
 */
static void write_live(const char *path, unsigned want_correct, uint32_t ppm, uint32_t holdout)
{
	struct gmap_builder *b = gmap_builder_new();
	uint8_t lon = (uint8_t)gmap_builder_pop(b, "lon"),
		ams = (uint8_t)gmap_builder_pop(b, "ams"),
		fra = (uint8_t)gmap_builder_pop(b, "fra");
	uint8_t a[16] = {10};
	uint8_t l_lon[] = {lon}, l_fra[] = {fra, ams}, l_ams[] = {ams, fra};
	if (want_correct == 0) {
		assert_int_equal(gmap_builder_add(b, AF_INET, a, 8, l_lon, 1), 0);
	} else {
		assert_int_equal(gmap_builder_add(b, AF_INET, a, 8, l_fra, 2), 0);
		if (want_correct == 2) {
			a[1] = (uint8_t)held_k[1];
			a[2] = 1;
			assert_int_equal(gmap_builder_add(b, AF_INET, a, 24, l_ams, 2), 0);
		}
	}
	struct gmap_meta meta = {.created = 1, .score_ppm = ppm, .holdout = holdout};
	void *img;
	size_t len = 0;
	assert_int_equal(gmap_builder_serialize(b, &meta, true, &img, &len), 0);
	assert_int_equal(gmap_write_file(path, img, len, NULL), 0);
	free(img);
	gmap_builder_free(b);
}

static bool same_bytes(const char *path, const void *want, size_t want_len)
{
	size_t len = 0;
	void *got = tu_slurp(path, &len);
	bool same = got && len == want_len && !memcmp(got, want, len);
	free(got);
	return same;
}

/* No temporary file was left next to the live one. */
static void no_leftovers(void)
{
	DIR *d = opendir(tu_dir);
	assert_non_null(d);
	struct dirent *e;
	while ((e = readdir(d)))
		assert_null(strstr(e->d_name, ".tmp."));
	closedir(d);
}

/* No score in the live header. */
#define NONE GMAP_NOT_SCORED, 0

/*
 * Run the gate on a fresh live map scoring live_correct on the new held-out
 * subnets, whose header says ppm on holdout subnets; the verdict, whether
 * the file was replaced, and the comparison that decided (when one did).
 */
static enum mb_verdict gate(struct mb_run *r, unsigned live_correct, uint32_t ppm, uint32_t holdout,
			    double min_score, double margin, bool *replaced, enum mb_basis *basis)
{
	const char *live = tu_path("live.map");
	write_live(live, live_correct, ppm, holdout);
	size_t before_len = 0;
	void *before = tu_slurp(live, &before_len);
	struct mb_gate g = {.min_score = min_score, .margin = margin};
	char *err = NULL;
	assert_int_equal(mb_publish(r, live, &g, &err), 0);
	assert_null(err);
	assert_null(g.live_err);
	if (g.verdict == MB_PUBLISHED) {
		assert_true(same_bytes(live, r->image, r->image_len));
		*replaced = true;
	} else {
		assert_true(same_bytes(live, before, before_len));
		*replaced = false;
	}
	if (g.verdict == MB_REFUSED_SCORE) {
		assert_int_equal(g.basis, MB_BASIS_NONE);
	} else {
		/* Scored on the new held-out subnets whichever comparison decides. */
		assert_true(g.live);
		assert_int_equal(g.live_score.scored, 2);
		assert_int_equal(g.live_score.correct, live_correct);
		assert_int_equal(g.basis,
				 g.live_has_score ? MB_BASIS_HEADER : MB_BASIS_SAME_SUBNETS);
		if (g.live_has_score) {
			assert_true(g.live_header_score == ppm / 1e6);
			assert_int_equal(g.live_header_holdout, holdout);
		}
	}
	*basis = g.basis;
	free(before);
	no_leftovers();
	return g.verdict;
}

/* (c) A live header without a score: the live map on the same held-out subnets decides. */
static void test_gate(void **state)
{
	(void)state;
	struct mb_run r;
	bool replaced;
	enum mb_basis basis;
	build(&r);
	/* 0.5 is below 0.6: refused, whatever the live map. */
	assert_int_equal(gate(&r, 0, NONE, 0.6, 0.02, &replaced, &basis), MB_REFUSED_SCORE);
	assert_false(replaced);
	/* Even a live header far below: min_score comes first. */
	assert_int_equal(gate(&r, 0, 100000, 9, 0.6, 0.02, &replaced, &basis), MB_REFUSED_SCORE);
	assert_false(replaced);
	/* Live 1.0, new 0.5: worse by more than 0.02. */
	assert_int_equal(gate(&r, 2, NONE, 0.4, 0.02, &replaced, &basis), MB_REFUSED_WORSE);
	assert_false(replaced);
	assert_int_equal(basis, MB_BASIS_SAME_SUBNETS);
	/* ...by exactly the margin: accepted; by more: refused. */
	assert_int_equal(gate(&r, 2, NONE, 0.4, 0.5, &replaced, &basis), MB_PUBLISHED);
	assert_true(replaced);
	assert_int_equal(basis, MB_BASIS_SAME_SUBNETS);
	assert_int_equal(gate(&r, 2, NONE, 0.4, 0.49, &replaced, &basis), MB_REFUSED_WORSE);
	/* Live 0.5: equal is not worse. Live 0: better, accepted. */
	assert_int_equal(gate(&r, 1, NONE, 0.4, 0, &replaced, &basis), MB_PUBLISHED);
	assert_int_equal(gate(&r, 0, NONE, 0.5, 0.02, &replaced, &basis), MB_PUBLISHED);
	assert_true(replaced);
	assert_int_equal(basis, MB_BASIS_SAME_SUBNETS);
	/*
	 * A header score without held-out subnets, or above 10^6 ppm, is no
	 * score: the live map's 1.0 on the same subnets refuses, although the
	 * header would let the new map through...
	 */
	assert_int_equal(gate(&r, 2, 100000, 0, 0.4, 0.02, &replaced, &basis), MB_REFUSED_WORSE);
	assert_int_equal(basis, MB_BASIS_SAME_SUBNETS);
	assert_int_equal(gate(&r, 2, 1500000, 4, 0.4, 0.02, &replaced, &basis), MB_REFUSED_WORSE);
	assert_int_equal(basis, MB_BASIS_SAME_SUBNETS);
	/* ...and the live map's 0 accepts, although the header would refuse. */
	assert_int_equal(gate(&r, 0, 990000, 0, 0.4, 0.02, &replaced, &basis), MB_PUBLISHED);
	assert_true(replaced);
	assert_int_equal(basis, MB_BASIS_SAME_SUBNETS);
	mb_run_free(&r);
}

/*
 * (a) and (b): a live header with a score decides, whatever the live map
 * scores on the new held-out subnets (the opposite answer each time).
 */
static void test_gate_header(void **state)
{
	(void)state;
	struct mb_run r;
	bool replaced;
	enum mb_basis basis;
	build(&r);
	/* (a) Header 0.9 on its own 10 subnets, new 0.5: refused, though live scores 0 here. */
	assert_int_equal(gate(&r, 0, 900000, 10, 0.4, 0.02, &replaced, &basis), MB_REFUSED_WORSE);
	assert_false(replaced);
	assert_int_equal(basis, MB_BASIS_HEADER);
	/* Header 0.520001: worse by just more than the margin 0.02. */
	assert_int_equal(gate(&r, 0, 520001, 10, 0.4, 0.02, &replaced, &basis), MB_REFUSED_WORSE);
	assert_false(replaced);
	/* (b) Header 0.52: worse by exactly the margin, published, though live scores 1 here. */
	assert_int_equal(gate(&r, 2, 520000, 10, 0.4, 0.02, &replaced, &basis), MB_PUBLISHED);
	assert_true(replaced);
	assert_int_equal(basis, MB_BASIS_HEADER);
	/* Header equal to the new score, no margin: published. */
	assert_int_equal(gate(&r, 2, 500000, 1, 0.4, 0, &replaced, &basis), MB_PUBLISHED);
	assert_true(replaced);
	/* Header lower: published. */
	assert_int_equal(gate(&r, 2, 300000, 10, 0.4, 0.02, &replaced, &basis), MB_PUBLISHED);
	assert_true(replaced);
	assert_int_equal(basis, MB_BASIS_HEADER);
	mb_run_free(&r);
}

/*
 * (d) The case the header exists for: yesterday's map was built, with the
 * same pipeline, from samples of today's held-out subnets, so it answers
 * them from their own entries. Publishing the same samples twice: the
 * second build is exactly as good, and must go through.
 */
static void publish_twice(const char *samples, const char *name, unsigned want, unsigned of,
			  double margin)
{
	const char *path = tu_path(name);
	unlink(path);
	struct mb_run first, second;
	struct mb_gate g = {.min_score = 0.4, .margin = margin};
	char *err = NULL;
	build_from(&first, samples, want, of);
	assert_int_equal(mb_publish(&first, path, &g, &err), 0);
	assert_int_equal(g.verdict, MB_PUBLISHED);
	assert_false(g.live);
	mb_run_free(&first);

	build_from(&second, samples, want, of);
	assert_int_equal(mb_publish(&second, path, &g, &err), 0);
	assert_null(err);
	assert_true(g.live);
	assert_true(g.live_has_score);
	assert_int_equal(g.live_header_holdout, of);
	assert_int_equal(g.basis, MB_BASIS_HEADER);
	/* The bias: on the new held-out subnets, the live map gets all of them right. */
	assert_int_equal(g.live_score.scored, of);
	assert_int_equal(g.live_score.correct, of);
	assert_true(mb_score_correct(&g.live_score) > mb_score_correct(&second.score) + margin);
	/* Its own held-out score is the new one, and that decides. */
	assert_int_equal(g.verdict, MB_PUBLISHED);
	assert_true(same_bytes(path, second.image, second.image_len));
	no_leftovers();
	mb_run_free(&second);
}

static void test_same_samples_twice(void **state)
{
	(void)state;
	/* 1 of 2 held-out subnets correct, the default margin. */
	publish_twice(samples_path, "twice.map", 1, 2, MB_MARGIN);
	/* 2 of 3, no margin: the header's 666667 ppm must not beat 2/3. */
	unsigned k[3];
	char *thirds = write_dataset("thirds.csv", 2, 1, k);
	publish_twice(thirds, "thirds.map", 2, 3, 0);
	free(thirds);
}

static void test_gate_without_live(void **state)
{
	(void)state;
	struct mb_run r;
	build(&r);
	const char *path = tu_path("fresh.map");
	unlink(path);
	struct mb_gate g = {.min_score = 0.6, .margin = 0.02};
	char *err = NULL;
	/* Below the threshold: refused, and nothing is created. */
	assert_int_equal(mb_publish(&r, path, &g, &err), 0);
	assert_int_equal(g.verdict, MB_REFUSED_SCORE);
	struct stat st;
	assert_int_equal(stat(path, &st), -1);
	/* Above it: written. */
	g.min_score = 0.5;
	assert_int_equal(mb_publish(&r, path, &g, &err), 0);
	assert_int_equal(g.verdict, MB_PUBLISHED);
	assert_false(g.live);
	assert_true(same_bytes(path, r.image, r.image_len));
	/* A file that is not a map is not compared, and is replaced. */
	tu_write("fresh.map", "not a map, not even close; long enough to be read");
	assert_int_equal(mb_publish(&r, path, &g, &err), 0);
	assert_int_equal(g.verdict, MB_PUBLISHED);
	assert_false(g.live);
	assert_non_null(g.live_err);
	free(g.live_err);
	assert_true(same_bytes(path, r.image, r.image_len));
	/* A directory that does not exist: an error, not a verdict. */
	char bad[600];
	snprintf(bad, sizeof(bad), "%s/no/such/dir/map", tu_dir);
	g.min_score = 0;
	assert_true(mb_publish(&r, bad, &g, &err) < 0);
	assert_non_null(err);
	free(err);
	mb_run_free(&r);
}

/*
 * Run gslb-map (next to this test) with args, its stdout and stderr to out
 * (NULL: /dev/null); its exit status, or -1.
 */
static int run_cli(const char *const *args, const char *out)
{
	char self[512], exe[600];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n < 0)
		return -1;
	self[n] = 0;
	snprintf(exe, sizeof(exe), "%s/gslb-map", dirname(self));
	if (access(exe, X_OK))
		return -1;
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (!pid) {
		const char *argv[32] = {exe};
		for (int i = 0; args[i] && i < 30; i++)
			argv[i + 1] = args[i];
		if (!freopen(out ? out : "/dev/null", "w", stdout) || dup2(1, 2) < 0)
			_exit(126);
		execv(exe, (char *const *)argv);
		_exit(127);
	}
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Whether the file at path contains text. */
static bool file_has(const char *path, const char *text)
{
	size_t len = 0;
	char *got = tu_slurp(path, &len);
	assert_non_null(got);
	got = realloc(got, len + 1);
	got[len] = 0;
	bool has = strstr(got, text) != NULL;
	if (!has)
		print_message("%s: no \"%s\" in:\n%s", path, text, got);
	free(got);
	return has;
}

static void test_cli_status(void **state)
{
	(void)state;
	const char *live = tu_path("cli.map");
	write_live(live, 0, NONE);
	size_t len = 0;
	void *before = tu_slurp(live, &len);
	char seed[16], share[16];
	snprintf(seed, sizeof(seed), "%d", SEED);
	snprintf(share, sizeof(share), "%g", SHARE);
	const char *refuse[] = {"build",  "--samples", samples_path, "--asn", asn_path,
				"--seed", seed,	       "--holdout",  share,   "--min-score",
				"0.6",	  "--publish", live,	     NULL};
	int rc = run_cli(refuse, NULL);
	if (rc < 0)
		skip(); /* gslb-map is not built next to this test */
	assert_int_equal(rc, 3);
	assert_true(same_bytes(live, before, len));
	const char *accept[] = {"build",  "--samples", samples_path, "--asn",	asn_path,
				"--seed", seed,	       "--holdout",  share,	"--min-score",
				"0.4",	  "--publish", live,	     "--quiet", NULL};
	const char *out = tu_path("cli.out");
	assert_int_equal(run_cli(accept, out), 0);
	assert_true(file_has(out, "live map 0.0000 on the new 2 held-out subnets (compared: its "
				  "header has no held-out score)"));
	assert_false(same_bytes(live, before, len));
	struct gmap *m;
	assert_int_equal(gmap_open(live, &m, NULL), 0);
	assert_int_equal(le32toh(gmap_header(m)->score_ppm), 500000);
	gmap_close(m);
	/*
	 * Published again from the same samples, with the default margin: the
	 * live map (just published) has a header score, which decides.
	 */
	assert_int_equal(run_cli(accept, out), 0);
	assert_true(file_has(out, "published "));
	assert_true(file_has(out, "score 0.5000 on its 2 held-out subnets, live map 0.5000 on its "
				  "own 2 held-out subnets (from its header, compared); 1.0000 on "
				  "the new 2 held-out subnets (not compared"));
	/* A live header scoring 0.9: refused, both numbers shown. */
	write_live(live, 0, 900000, 10);
	free(before);
	before = tu_slurp(live, &len);
	assert_int_equal(run_cli(accept, out), 3);
	assert_true(same_bytes(live, before, len));
	assert_true(file_has(out, "refusing to publish"));
	assert_true(file_has(out, "live map 0.9000 on its own 10 held-out subnets (from its "
				  "header, compared); 0.0000 on the new 2 held-out subnets (not "
				  "compared"));
	assert_true(file_has(out, "worse by more than --margin 0.0200"));
	const char *bad_opt[] = {"build", "--samples", samples_path, "--holdout", "1.5", NULL};
	assert_int_equal(run_cli(bad_opt, NULL), 2);
	const char *no_file[] = {"build", "--samples", tu_path("absent.csv"), NULL};
	assert_int_equal(run_cli(no_file, NULL), 1);
	free(before);
}

static int setup(void **state)
{
	(void)state;
	tu_setup_dir();
	make_dataset();
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	tu_cleanup_dir();
	free((void *)samples_path);
	free((void *)asn_path);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_gate),
	    cmocka_unit_test(test_gate_header),
	    cmocka_unit_test(test_same_samples_twice),
	    cmocka_unit_test(test_gate_without_live),
	    cmocka_unit_test(test_cli_status),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
