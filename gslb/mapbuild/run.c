// SPDX-License-Identifier: GPL-2.0-only
/*
 * run.c - one `gslb-map build`: the steps in order, the summary an operator
 * reads, and the publish gate that keeps a worse map from replacing the one
 * gslbd serves (gslbd reloads the path by inotify, so writing it is
 * deploying it).
 */
#include "mapbuild.h"

#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A score as a map header records it: correct share in ppm, GMAP_NOT_SCORED for none. */
static uint32_t score_ppm(const struct mb_score *sc)
{
	return sc->scored ? (uint32_t)(mb_score_correct(sc) * 1e6 + 0.5) : GMAP_NOT_SCORED;
}

int mb_run_build(struct mb_run *r, char **err)
{
	double t0 = now_s();
	int rc = mb_samples_read(r->o.samples, &r->samples, r->o.report, err);
	if (rc)
		return rc;
	if (r->o.asn && (rc = mb_asn_read(r->o.asn, &r->asn, r->o.report, err)))
		return rc;
	if ((rc = mb_aggregate(&r->samples, r->o.min_samples, &r->data)))
		return mb_fail(err, rc, "out of memory");
	if (!r->data.n_subnets)
		return mb_fail(err, -ENODATA,
			       "%s: no subnet has a PoP with %u clean samples: nothing to map",
			       r->o.samples, r->o.min_samples);
	/* The samples are not needed past this point (n still counts them). */
	free(r->samples.v);
	r->samples.v = NULL;
	r->samples.cap = 0;

	r->held = calloc(r->data.n_subnets, 1);
	if (!r->held)
		return mb_fail(err, -ENOMEM, "out of memory");
	for (size_t i = 0; i < r->data.n_subnets; i++)
		r->held[i] = mb_held_out(r->data.subnets[i].key, r->o.seed, r->o.holdout);

	/* The held-out map exists only to be scored. */
	void *img = NULL;
	size_t len, n_ext;
	struct gmap *m = NULL;
	rc = mb_build_image(&r->samples, &r->data, r->o.asn ? &r->asn : NULL, r->held, r->o.prune,
			    NULL, &img, &len, &n_ext);
	if (!rc)
		rc = gmap_parse(img, len, &m, err);
	if (rc) {
		free(img);
		return err && *err
			   ? rc
			   : mb_fail(err, rc, "building the held-out map: %s", strerror(-rc));
	}
	mb_score_map(m, &r->samples, &r->data, r->held, &r->score);
	gmap_close(m);
	free(img);

	struct gmap_meta meta = {
	    .created = r->o.created ? r->o.created : (uint64_t)time(NULL),
	    .samples = r->samples.n,
	    .score_ppm = score_ppm(&r->score),
	    .regret_us = mb_score_regret_us(&r->score),
	    .holdout = r->score.scored,
	};
	rc = mb_build_image(&r->samples, &r->data, r->o.asn ? &r->asn : NULL, NULL, r->o.prune,
			    &meta, &r->image, &r->image_len, &r->extrapolated);
	if (!rc)
		rc = gmap_parse(r->image, r->image_len, &r->map, err);
	if (rc)
		return err && *err ? rc : mb_fail(err, rc, "building the map: %s", strerror(-rc));
	r->seconds = now_s() - t0;
	return 0;
}

void mb_run_free(struct mb_run *r)
{
	mb_samples_free(&r->samples);
	mb_asn_free(&r->asn);
	mb_data_free(&r->data);
	free(r->held);
	gmap_close(r->map);
	free(r->image);
	r->held = NULL;
	r->map = NULL;
	r->image = NULL;
}

void mb_run_summary(const struct mb_run *r, FILE *out)
{
	const struct mb_samples *s = &r->samples;
	fprintf(out, "rows_read %llu\n", (unsigned long long)s->rows);
	for (int d = 0; d < MB_DROP__N; d++)
		fprintf(out, "dropped_%s %llu\n", mb_drop_name(d), (unsigned long long)s->drops[d]);
	fprintf(out, "ipv4_mapped_clients %llu\n", (unsigned long long)s->mapped);
	fprintf(out, "clean_samples %zu\n", s->n);
	fprintf(out, "pops %u\n", s->n_pops);
	fprintf(out, "subnets %zu\n", r->data.n_subnets);
	fprintf(out, "subnets_v4 %zu\n", r->data.n4);
	fprintf(out, "subnets_v6 %zu\n", r->data.n6);
	fprintf(out, "subnets_below_min_samples %zu\n", r->data.unmeasured);
	if (r->o.asn) {
		fprintf(out, "asn_prefixes %zu\n", r->asn.n);
		fprintf(out, "asn_malformed %llu\n", (unsigned long long)r->asn.malformed);
		fprintf(out, "asn_duplicate_prefixes %llu\n",
			(unsigned long long)r->asn.duplicates);
	}
	fprintf(out, "extrapolated_prefixes %zu\n", r->extrapolated);
	if (r->map) {
		const struct gmap_header *h = gmap_header(r->map);
		uint32_t e4 = le32toh(h->n_prefixes4), e6 = le32toh(h->n_prefixes6);
		fprintf(out, "entries %llu\n", (unsigned long long)e4 + e6);
		fprintf(out, "entries_v4 %u\n", e4);
		fprintf(out, "entries_v6 %u\n", e6);
		fprintf(out, "nodes %llu\n",
			(unsigned long long)le32toh(h->n_nodes4) + le32toh(h->n_nodes6));
		fprintf(out, "file_size %zu\n", r->image_len);
	}
	fprintf(out, "holdout_subnets %u\n", r->score.scored);
	fprintf(out, "holdout_correct %.4f\n", mb_score_correct(&r->score));
	fprintf(out, "holdout_regret_ms %.3f\n", mb_score_regret_us(&r->score) / 1000.0);
	fprintf(out, "holdout_coverage %.4f\n", mb_score_coverage(&r->score));
	fprintf(out, "build_seconds %.3f\n", r->seconds);
}

int mb_publish(const struct mb_run *r, const char *path, struct mb_gate *g, char **err)
{
	double score = mb_score_correct(&r->score);
	g->verdict = MB_PUBLISHED;
	g->basis = MB_BASIS_NONE;
	g->live = false;
	g->live_has_score = false;
	g->live_header_score = 0;
	g->live_header_holdout = 0;
	g->live_score = (struct mb_score){0};
	g->live_err = NULL;
	/* Scores are ratios of small counts: a tolerance keeps "equal" equal. */
	const double eps = 1e-9;
	if (score + eps < g->min_score) {
		g->verdict = MB_REFUSED_SCORE;
		return 0;
	}
	struct gmap *live = NULL;
	char *why = NULL;
	int rc = gmap_open(path, &live, &why);
	if (!rc) {
		const struct gmap_header *h = gmap_header(live);
		uint32_t ppm = le32toh(h->score_ppm), holdout = le32toh(h->holdout);
		/* Above 10^6 is not a share: a header that says nothing usable. */
		g->live_has_score = ppm != GMAP_NOT_SCORED && ppm <= 1000000 && holdout > 0;
		if (g->live_has_score) {
			g->live_header_score = ppm / 1e6;
			g->live_header_holdout = holdout;
		}
		/*
		 * The live map on the new build's held-out subnets: for
		 * information, and the comparison only when its header has no
		 * score. It is biased towards the live map: built from samples
		 * of these very subnets, it answers them from their own /24 or
		 * /56 entries, an edge the held-out map does not have (a new
		 * map from the same samples would be refused), and the file
		 * does not say which entries were measured, so the edge cannot
		 * be discounted.
		 */
		mb_score_map(live, &r->samples, &r->data, r->held, &g->live_score);
		gmap_close(live);
		g->live = true;
		double live_score;
		if (g->live_has_score) {
			/*
			 * Preferred: the live map's own held-out score, from
			 * when it was built: each map judged on subnets it was
			 * not built from. Its subnets and samples are its own
			 * day's, not the new map's: the same method on other
			 * data, where the fallback is the same data judged
			 * by unequal methods. Both sides at the header's ppm
			 * resolution, so that the same data published twice
			 * compares equal (2/3 is recorded as 0.666667).
			 */
			g->basis = MB_BASIS_HEADER;
			score = r->score.scored ? score_ppm(&r->score) / 1e6 : 0;
			live_score = g->live_header_score;
		} else {
			g->basis = MB_BASIS_SAME_SUBNETS;
			live_score = mb_score_correct(&g->live_score);
		}
		if (score + g->margin + eps < live_score) {
			g->verdict = MB_REFUSED_WORSE;
			return 0;
		}
	} else if (rc != -ENOENT) {
		/* Not a map gslbd could be serving either: nothing to compare with. */
		g->live_err = why;
		why = NULL;
	}
	free(why);
	rc = gmap_write_file(path, r->image, r->image_len, err);
	if (rc)
		return rc;
	g->verdict = MB_PUBLISHED;
	return 0;
}
