// SPDX-License-Identifier: GPL-2.0-only
/*
 * gen.c - gslb-gen: seeded synthetic real-user latency samples, for
 * building and testing the GSLB map where no real measurements exist
 * (gensamp.c has the model's details and the reasons for them).
 *
 * The model, in short. Client subnets (/24, /56) sit in the address
 * ranges the GeoIP databases give each country of --countries, and in
 * that country's synthetic ASes (the --asn-out table). Clients
 * concentrate like real users: a country is drawn by its weight, then
 * one of its ASes by a Zipf popularity of its size rank (the largest
 * has about 60% of the country's subnets, the top three over 80%), then
 * one of that AS's prefixes, then a subnet in it. Each AS is a network
 * somewhere: a regional one around a home within 400 km of the
 * country's point, its subnets within 55 km of it; the three largest of
 * a country span it from several metros. An AS's traffic reaches every
 * PoP through its gateways, with its own path inflation and, for some
 * (AS, PoP) pairs, bad peering, so an AS's subnets mostly agree on their
 * best PoP, which is not always the nearest; the exceptions are national
 * ASes across the line between two PoPs' areas, gateways near that line
 * and mobile networks' noisy radio. The big ASes' subnets are busy; the
 * other ASes' send few samples. A row is one PoP of a beacon, which
 * measures the client's three nearest PoPs and sometimes one more; its
 * rows are consecutive and share the client address.
 *
 * Samples (--out), CSV with a header line:
 *
 *	client,pop,rtt_ms,ok
 *	198.51.100.7,fra,23.412,1
 *	2001:db8:4:1a00::5e1,ams,31.007,1
 *
 *   client  the measuring host's address (IPv4 or IPv6, no brackets)
 *   pop     the PoP measured, a name from the --pops file
 *   rtt_ms  round-trip time in milliseconds, three decimals
 *   ok      1 the probe succeeded, 0 it failed (rtt_ms meaningless)
 *
 * About --bad-rate of the rows are bad on purpose, as real beacons send
 * them: negative, below 0.001 ms or above 60000 ms RTTs, ok=0 failures,
 * exact duplicates of the previous good row, and malformed lines (a
 * missing or extra field, a bad address, a non-numeric RTT, garbage).
 * They come in addition to the good rows, which are the same for every
 * bad rate (the run is cut at --samples rows).
 *
 * Prefix-to-AS table (--asn-out), one announced prefix per line:
 *
 *	# comment lines start with '#'
 *	1.0.4.0/22 64533
 *	2a00:1450::/29 64790
 *
 * PREFIX/LEN in CIDR form (host bits zero), a space, the AS number in
 * decimal. IPv4 lines first, then IPv6, each in address order; prefixes
 * never overlap. The ASes are synthetic, numbered from 64512 upward in
 * the private ranges (RFC 6996: 64512-65534, then from 4200000000); a
 * GeoIP range that is not one CIDR prefix becomes several lines. The
 * table depends only on the databases, never on --seed.
 *
 * Exit status: 0; 2 for a bad option or input file (the message names
 * the file, line and reason) or an output file that cannot be created;
 * 1 if writing fails.
 */
#include "geo.h"
#include "gensamp.h"
#include "sites.h"

#include "csv.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define EXIT_INPUT 2

static void usage(FILE *f)
{
	fprintf(f,
		"usage: gslb-gen [options]\n"
		"  --seed N          random seed (default 1); same seed, same output\n"
		"  --samples N       sample rows (default %d)\n"
		"  --subnets N       client subnet pool (default samples/20)\n"
		"  --pops FILE       PoPs measured, name,lat,lon CSV (default cities.csv)\n"
		"  --countries FILE  cc,lat,lon,weight CSV (default countries.csv)\n"
		"  --out FILE        samples CSV, - for stdout (default -)\n"
		"  --asn-out FILE    also write the prefix-to-AS table\n"
		"  --bad-rate F      share of bad rows, 0..1 (default %g)\n"
		"  --v6-share F      share of IPv6 subnets, 0..1 (default %g)\n"
		"  --geoip FILE      IPv4 country database (default %s)\n"
		"  --geoip6 FILE     IPv6 country database (default %s)\n"
		"Data files default to $GSLB_DATA_DIR, else %s, else %s.\n",
		GEN_SAMPLES_DEFAULT, GEN_BAD_RATE_DEFAULT, GEN_V6_SHARE_DEFAULT, GEO_DEFAULT_V4,
		GEO_DEFAULT_V6, GSLB_DATA_DIR, GSLB_DATA_INSTALL_DIR);
}

static int bad_opt(const char *opt, const char *val, const char *why)
{
	fprintf(stderr, "gslb-gen: --%s \"%s\": %s\n", opt, val, why);
	return -EINVAL;
}

static int parse_count(const char *opt, const char *s, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (*s < '0' || *s > '9')
		return bad_opt(opt, s, "expected a whole number");
	errno = 0;
	v = strtoull(s, &end, 10);
	if (*end || errno)
		return bad_opt(opt, s, "expected a whole number");
	if (v > max)
		return bad_opt(opt, s, "too large");
	*out = v;
	return 0;
}

static int parse_share(const char *opt, const char *s, double *out)
{
	if (csv_double(s, out) || *out < 0.0 || *out > 1.0)
		return bad_opt(opt, s, "expected a number from 0 to 1");
	return 0;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

struct args {
	struct gen_opts o;
	const char *pops, *countries, *out, *asn_out, *geoip, *geoip6;
};

static int parse_args(int argc, char **argv, struct args *a)
{
	enum {
		O_SEED = 256,
		O_SAMPLES,
		O_SUBNETS,
		O_POPS,
		O_COUNTRIES,
		O_OUT,
		O_ASN_OUT,
		O_BAD_RATE,
		O_V6_SHARE,
		O_GEOIP,
		O_GEOIP6
	};
	static const struct option opts[] = {
	    {"seed", required_argument, NULL, O_SEED},
	    {"samples", required_argument, NULL, O_SAMPLES},
	    {"subnets", required_argument, NULL, O_SUBNETS},
	    {"pops", required_argument, NULL, O_POPS},
	    {"countries", required_argument, NULL, O_COUNTRIES},
	    {"out", required_argument, NULL, O_OUT},
	    {"asn-out", required_argument, NULL, O_ASN_OUT},
	    {"bad-rate", required_argument, NULL, O_BAD_RATE},
	    {"v6-share", required_argument, NULL, O_V6_SHARE},
	    {"geoip", required_argument, NULL, O_GEOIP},
	    {"geoip6", required_argument, NULL, O_GEOIP6},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int c, rc = 0;

	while (!rc && (c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		const char *name = c >= O_SEED ? opts[c - O_SEED].name : "";
		switch (c) {
		case O_SEED:
			rc = parse_count(name, optarg, UINT64_MAX, &a->o.seed);
			break;
		case O_SAMPLES:
			rc = parse_count(name, optarg, 10000000000ull, &a->o.samples);
			break;
		case O_SUBNETS:
			rc = parse_count(name, optarg, 100000000, &a->o.subnets);
			if (!rc && a->o.subnets == 0)
				rc = bad_opt(name, optarg, "at least 1");
			break;
		case O_POPS:
			a->pops = optarg;
			break;
		case O_COUNTRIES:
			a->countries = optarg;
			break;
		case O_OUT:
			a->out = optarg;
			break;
		case O_ASN_OUT:
			a->asn_out = optarg;
			break;
		case O_BAD_RATE:
			rc = parse_share(name, optarg, &a->o.bad_rate);
			break;
		case O_V6_SHARE:
			rc = parse_share(name, optarg, &a->o.v6_share);
			break;
		case O_GEOIP:
			a->geoip = optarg;
			break;
		case O_GEOIP6:
			a->geoip6 = optarg;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return -EINVAL;
		}
	}
	if (!rc && optind < argc) {
		fprintf(stderr, "gslb-gen: unexpected argument \"%s\"\n", argv[optind]);
		rc = -EINVAL;
	}
	return rc;
}

static FILE *open_out(const char *path)
{
	FILE *f = strcmp(path, "-") == 0 ? stdout : fopen(path, "w");

	if (!f)
		fprintf(stderr, "gslb-gen: %s: %s\n", path, strerror(errno));
	else
		setvbuf(f, NULL, _IOFBF, 1 << 20);
	return f;
}

static int close_out(FILE *f, const char *path)
{
	int bad = ferror(f);

	if ((f == stdout ? fflush(f) : fclose(f)) || bad) {
		fprintf(stderr, "gslb-gen: %s: write error\n", path);
		return -EIO;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct args a = {
	    .o = {.seed = 1,
		  .samples = GEN_SAMPLES_DEFAULT,
		  .bad_rate = GEN_BAD_RATE_DEFAULT,
		  .v6_share = GEN_V6_SHARE_DEFAULT},
	    .out = "-",
	};
	struct site_list countries = {0}, pops = {0};
	char cbuf[PATH_MAX], pbuf[PATH_MAX], *err = NULL;
	struct gen_world *w = NULL;
	struct gen_stats st;
	struct geo *geo;
	int status = EXIT_INPUT;
	double t0 = now();
	FILE *f;

	if (parse_args(argc, argv, &a))
		return EXIT_INPUT;
	if (!a.countries)
		a.countries = sites_data_path("countries.csv", cbuf, sizeof(cbuf));
	if (!a.pops)
		a.pops = sites_data_path("cities.csv", pbuf, sizeof(pbuf));
	if (sites_load(a.countries, SITE_COUNTRY, &countries, &err) ||
	    sites_load(a.pops, SITE_CITY, &pops, &err))
		goto out_sites;
	geo = geo_open(a.geoip, a.geoip6, &err);
	if (!geo)
		goto out_sites;
	if (gen_world_new(&w, geo, &countries, &pops, &err)) {
		geo_close(geo);
		goto out_sites;
	}
	geo_close(geo); /* the world keeps what it needs */

	/* An output that cannot be created is a bad option; one that fails
	 * while being written is not. */
	if (a.asn_out) {
		if (!(f = open_out(a.asn_out)))
			goto out_world;
		status = 1;
		if (gen_write_asn(w, f) | close_out(f, a.asn_out))
			goto out_world;
		status = EXIT_INPUT;
	}
	if (!(f = open_out(a.out)))
		goto out_world;
	status = 1;
	if (gen_write_samples(w, &a.o, f, &st, &err) | close_out(f, a.out))
		goto out_world;
	fprintf(stderr,
		"gslb-gen: %llu samples (%llu bad, %llu IPv6), %llu subnets (%llu sampled), "
		"%zu PoPs, %zu ASes over %zu prefixes, seed %llu, %.2f s\n",
		(unsigned long long)st.rows, (unsigned long long)st.bad,
		(unsigned long long)st.v6_rows, (unsigned long long)st.subnets,
		(unsigned long long)st.sampled, pops.n, gen_world_ases(w), gen_world_prefixes(w),
		(unsigned long long)a.o.seed, now() - t0);
	status = 0;

out_world:
	gen_world_free(w);
out_sites:
	if (err)
		fprintf(stderr, "gslb-gen: %s\n", err);
	free(err);
	sites_free(&pops);
	sites_free(&countries);
	return status;
}
