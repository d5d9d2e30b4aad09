// SPDX-License-Identifier: GPL-2.0-only
/*
 * conf.c - gslbd's configuration file (libconfig); the format is in
 * docs/configuration.md and deploy/examples/gslbd.conf.
 */
#include "conf.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "cfgfile.h"
#include "lb_abi.h"

int gslb_conf_pop(const struct gslb_conf *c, const char *name)
{
	for (unsigned i = 0; i < c->n_pops; i++)
		if (!strcmp(c->pops[i].name, name))
			return (int)i;
	return -1;
}

static int ip_of(const config_setting_t *s, const char *what, int family, uint8_t *out,
		 const char *file, char **err)
{
	const char *v = config_setting_get_string(s);
	if (!v)
		return cfg_fail(err, file, s, "%s must be a string", what);
	if (inet_pton(family, v, out) != 1)
		return cfg_fail(err, file, s, "%s \"%s\" is not an %s address", what, v,
				family == AF_INET ? "IPv4" : "IPv6");
	return 0;
}

/* A name relative to the zone ("www", "@" for the apex) or absolute
 * ("ns1.example.test."), as lowercase wire format. */
static knot_dname_t *dname_of(const char *rel, const knot_dname_t *apex, const char *apex_str)
{
	char buf[KNOT_DNAME_TXT_MAXLEN + 2];
	size_t n = strlen(rel);
	if (!strcmp(rel, "@"))
		return knot_dname_copy(apex, NULL);
	if (n && rel[n - 1] == '.')
		snprintf(buf, sizeof(buf), "%s", rel);
	else if (snprintf(buf, sizeof(buf), "%s.%s", rel, apex_str) >= (int)sizeof(buf))
		return NULL;
	knot_dname_t *d = knot_dname_from_str_alloc(buf);
	if (d)
		knot_dname_to_lower(d);
	return d;
}

static int list_of(const struct gslb_conf *c, const config_setting_t *s, struct gslb_list *out,
		   const char *file, char **err)
{
	if (!s || !config_setting_is_array(s) || config_setting_length(s) < 1 ||
	    config_setting_length(s) > GMAP_LIST_MAX)
		return cfg_fail(err, file, s, "a PoP list is an array of 1..%d PoP names",
				GMAP_LIST_MAX);
	out->n = 0;
	for (int i = 0; i < config_setting_length(s); i++) {
		const char *name = config_setting_get_string_elem(s, i);
		int p = name ? gslb_conf_pop(c, name) : -1;
		if (p < 0)
			return cfg_fail(err, file, s, "unknown PoP \"%s\"", name ? name : "?");
		for (unsigned j = 0; j < out->n; j++)
			if (out->pop[j] == p)
				return cfg_fail(err, file, s, "PoP \"%s\" listed twice", name);
		out->pop[out->n++] = (uint8_t)p;
	}
	return 0;
}

static int add_rdata(knot_rrset_t *rr, const uint8_t *d, size_t len)
{
	return knot_rrset_add_rdata(rr, d, (uint16_t)len, NULL) == KNOT_EOK ? 0 : -ENOMEM;
}

static int parse_soa(struct gslb_zone *z, const config_setting_t *zs, const char *apex_str,
		     const char *file, char **err)
{
	static const char *const keys[] = {"mname",  "rname",	"serial", "refresh", "retry",
					   "expire", "minimum", "ttl",	  NULL};
	const config_setting_t *s = config_setting_get_member(zs, "soa");
	const char *mname, *rname;
	uint32_t v[5], ttl;
	int rc;
	if (!s)
		return cfg_fail(err, file, zs, "zone %s: missing \"soa\"", apex_str);
	if ((rc = cfg_known(s, keys, "soa", file, err)) ||
	    (rc = cfg_str(s, "mname", &mname, true, file, err)) ||
	    (rc = cfg_str(s, "rname", &rname, true, file, err)) ||
	    (rc = cfg_uint(s, "serial", &v[0], 1, 0, UINT32_MAX, file, err)) ||
	    (rc = cfg_uint(s, "refresh", &v[1], 3600, 1, UINT32_MAX, file, err)) ||
	    (rc = cfg_uint(s, "retry", &v[2], 600, 1, UINT32_MAX, file, err)) ||
	    (rc = cfg_uint(s, "expire", &v[3], 86400, 1, UINT32_MAX, file, err)) ||
	    /* RFC 2308: the negative-caching TTL; keep it short for a GSLB. */
	    (rc = cfg_uint(s, "minimum", &v[4], 60, 0, 86400, file, err)) ||
	    (rc = cfg_uint(s, "ttl", &ttl, 3600, 0, 604800, file, err)))
		return rc;
	knot_dname_t *m = dname_of(mname, z->apex, apex_str),
		     *r = dname_of(rname, z->apex, apex_str);
	if (!m || !r) {
		free(m);
		free(r);
		return cfg_fail(err, file, s, "soa: bad mname or rname");
	}
	uint8_t rd[2 * KNOT_DNAME_MAXLEN + 20];
	size_t ml = knot_dname_size(m), rl = knot_dname_size(r), off = 0;
	memcpy(rd, m, ml);
	off += ml;
	memcpy(rd + off, r, rl);
	off += rl;
	for (int i = 0; i < 5; i++) {
		uint32_t be = htonl(v[i]);
		memcpy(rd + off, &be, 4);
		off += 4;
	}
	free(m);
	free(r);
	knot_rrset_init(&z->soa, knot_dname_copy(z->apex, NULL), KNOT_RRTYPE_SOA, KNOT_CLASS_IN,
			ttl);
	if (!z->soa.owner || add_rdata(&z->soa, rd, off))
		return cfg_fail(err, file, s, "out of memory");
	return 0;
}

static int parse_names(struct gslb_zone *z, const config_setting_t *zs, const char *apex_str,
		       const char *file, char **err)
{
	const config_setting_t *svc = config_setting_get_member(zs, "services");
	const config_setting_t *recs = config_setting_get_member(zs, "records");
	static const char *const rkeys[] = {"name", "a", "aaaa", NULL};
	if (svc && !config_setting_is_array(svc))
		return cfg_fail(err, file, svc, "\"services\" is an array of names");
	if (recs && !config_setting_is_list(recs))
		return cfg_fail(err, file, recs, "\"records\" is a list of groups");
	int ns = svc ? config_setting_length(svc) : 0, nr = recs ? config_setting_length(recs) : 0;
	for (int i = 0; i < ns + nr; i++) {
		const config_setting_t *s = i < ns ? config_setting_get_elem(svc, i)
						   : config_setting_get_elem(recs, i - ns);
		const char *rel = NULL;
		int rc;
		if (i < ns)
			rel = config_setting_get_string(s);
		else if ((rc = cfg_known(s, rkeys, "record", file, err)) ||
			 (rc = cfg_str(s, "name", &rel, true, file, err)))
			return rc;
		if (!rel)
			return cfg_fail(err, file, s, "a name must be a string");
		if (z->n_names == GSLB_MAX_NAMES)
			return cfg_fail(err, file, s, "more than %d names in zone %s",
					GSLB_MAX_NAMES, apex_str);
		struct gslb_name *n = &z->names[z->n_names];
		n->name = dname_of(rel, z->apex, apex_str);
		if (!n->name || knot_dname_in_bailiwick(n->name, z->apex) < 0)
			return cfg_fail(err, file, s, "\"%s\" is not a name in zone %s", rel,
					apex_str);
		z->n_names++;
		for (unsigned j = 0; j + 1 < z->n_names; j++)
			if (knot_dname_is_equal(z->names[j].name, n->name))
				return cfg_fail(err, file, s, "name \"%s\" defined twice", rel);
		n->kind = i < ns ? GSLB_NAME_SERVICE : GSLB_NAME_STATIC;
		if (i < ns)
			continue;
		for (int f = 0; f < 2; f++) {
			const config_setting_t *as = config_setting_get_member(s, f ? "aaaa" : "a");
			if (!as)
				continue;
			if (!config_setting_is_array(as) ||
			    config_setting_length(as) > GSLB_MAX_ADDRS)
				return cfg_fail(err, file, as, "addresses: an array of up to %d",
						GSLB_MAX_ADDRS);
			for (int k = 0; k < config_setting_length(as); k++) {
				const config_setting_t *e = config_setting_get_elem(as, k);
				if ((rc = ip_of(e, f ? "aaaa" : "a", f ? AF_INET6 : AF_INET,
						f ? n->a6[k] : n->a4[k], file, err)))
					return rc;
			}
			if (f)
				n->n6 = config_setting_length(as);
			else
				n->n4 = config_setting_length(as);
		}
	}
	return 0;
}

static int parse_zone(struct gslb_conf *c, const config_setting_t *zs, const char *file, char **err)
{
	static const char *const keys[] = {"name", "ttl",      "static_ttl", "soa",
					   "ns",   "services", "records",    NULL};
	const char *name;
	int rc;
	if (c->n_zones == GSLB_MAX_ZONES)
		return cfg_fail(err, file, zs, "more than %d zones", GSLB_MAX_ZONES);
	struct gslb_zone *z = &c->zones[c->n_zones];
	if ((rc = cfg_known(zs, keys, "zone", file, err)) ||
	    (rc = cfg_str(zs, "name", &name, true, file, err)) ||
	    (rc = cfg_uint(zs, "ttl", &z->ttl, 30, 0, 86400, file, err)) ||
	    (rc = cfg_uint(zs, "static_ttl", &z->static_ttl, 3600, 0, 604800, file, err)))
		return rc;
	char apex_str[KNOT_DNAME_TXT_MAXLEN + 2];
	size_t n = strlen(name);
	snprintf(apex_str, sizeof(apex_str), "%s%s", name, n && name[n - 1] == '.' ? "" : ".");
	z->apex = knot_dname_from_str_alloc(apex_str);
	if (!z->apex || n == 0)
		return cfg_fail(err, file, zs, "zone name \"%s\" is not a domain name", name);
	knot_dname_to_lower(z->apex);
	c->n_zones++;
	for (unsigned i = 0; i + 1 < c->n_zones; i++)
		if (knot_dname_is_equal(c->zones[i].apex, z->apex))
			return cfg_fail(err, file, zs, "zone %s defined twice", name);
	if ((rc = parse_soa(z, zs, apex_str, file, err)))
		return rc;
	const config_setting_t *ns = config_setting_get_member(zs, "ns");
	if (!ns || !config_setting_is_array(ns) || config_setting_length(ns) < 1 ||
	    config_setting_length(ns) > GSLB_MAX_NS)
		return cfg_fail(err, file, ns ? ns : zs,
				"zone %s: \"ns\" is an array of 1..%d names", name, GSLB_MAX_NS);
	knot_rrset_init(&z->ns, knot_dname_copy(z->apex, NULL), KNOT_RRTYPE_NS, KNOT_CLASS_IN,
			z->soa.ttl);
	for (int i = 0; i < config_setting_length(ns); i++) {
		const char *s = config_setting_get_string_elem(ns, i);
		knot_dname_t *d = s ? dname_of(s, z->apex, apex_str) : NULL;
		if (!d)
			return cfg_fail(err, file, ns, "ns: \"%s\" is not a name", s ? s : "?");
		rc = add_rdata(&z->ns, d, knot_dname_size(d));
		free(d);
		if (rc)
			return cfg_fail(err, file, ns, "out of memory");
	}
	return parse_names(z, zs, apex_str, file, err);
}

static int parse_root(config_t *cf, const char *file, void *outp, char **err)
{
	static const char *const keys[] = {"listen",	"workers", "admin_socket", "map",   "geoip",
					   "max_udp",	"xdp",	   "rate_limit",   "zones", "pops",
					   "countries", "default", "anycast",	   NULL};
	struct gslb_conf *c = outp;
	const config_setting_t *root = config_root_setting(cf), *s;
	uint32_t v;
	int rc;
	if ((rc = cfg_known(root, keys, "gslbd", file, err)))
		return rc;

	s = config_setting_get_member(root, "listen");
	if (!s || !config_setting_is_array(s) || config_setting_length(s) < 1 ||
	    config_setting_length(s) > GSLB_MAX_LISTEN)
		return cfg_fail(err, file, s ? s : root,
				"\"listen\" is an array of 1..%d \"ADDR:PORT\"", GSLB_MAX_LISTEN);
	for (int i = 0; i < config_setting_length(s); i++) {
		const char *l = config_setting_get_string_elem(s, i);
		char host[64], port[8];
		int p = -1;
		if (!l || lb_hostport_split(l, strlen(l), host, sizeof(host), port, sizeof(port)) ||
		    lb_addr_parse(host, &c->listen_addr[i]) || (p = lb_port_parse(port)) < 0)
			return cfg_fail(err, file, s, "listen \"%s\": not ADDR:PORT ([ADDR6]:PORT)",
					l ? l : "?");
		snprintf(c->listen[i], sizeof(c->listen[i]), "%s", l);
		c->listen_port[i] = (uint16_t)p;
	}
	c->n_listen = config_setting_length(s);
	if ((rc = cfg_uint(root, "workers", &c->workers, 1, 1, 64, file, err)) ||
	    (rc = cfg_str_copy(root, "admin_socket", c->admin_socket, sizeof(c->admin_socket),
			       "/run/portico/gslbd.sock", false, file, err)) ||
	    (rc = cfg_str_copy(root, "map", c->map_path, sizeof(c->map_path), NULL, true, file,
			       err)) ||
	    /* RFC 9715 / DNS flag day 2020: 1232 avoids IP fragmentation. */
	    (rc = cfg_uint(root, "max_udp", &v, 1232, 512, 4096, file, err)))
		return rc;
	c->max_udp = (uint16_t)v;
	snprintf(c->geoip4, sizeof(c->geoip4), "/usr/share/GeoIP/GeoIP.dat");
	snprintf(c->geoip6, sizeof(c->geoip6), "/usr/share/GeoIP/GeoIPv6.dat");
	if ((s = config_setting_get_member(root, "geoip"))) {
		static const char *const gk[] = {"v4", "v6", NULL};
		if ((rc = cfg_known(s, gk, "geoip", file, err)) ||
		    (rc = cfg_str_copy(s, "v4", c->geoip4, sizeof(c->geoip4), c->geoip4, false,
				       file, err)) ||
		    (rc = cfg_str_copy(s, "v6", c->geoip6, sizeof(c->geoip6), c->geoip6, false,
				       file, err)))
			return rc;
	}
	if ((s = config_setting_get_member(root, "xdp"))) {
		static const char *const xk[] = {"interface", "queues", "mode", "max_nodes", NULL};
		char mode[16];
		if ((rc = cfg_known(s, xk, "xdp", file, err)) ||
		    (rc = cfg_str_copy(s, "interface", c->xdp_if, sizeof(c->xdp_if), NULL, true,
				       file, err)) ||
		    (rc = cfg_str_copy(s, "mode", mode, sizeof(mode), "afxdp", false, file, err)) ||
		    (rc = cfg_uint(s, "queues", &c->xdp_queues, 1, 1, 64, file, err)) ||
		    (rc = cfg_uint(s, "max_nodes", &c->xdp_max_nodes, 1u << 20, 1024, 1u << 26,
				   file, err)))
			return rc;
		if (!c->xdp_if[0] || strchr(c->xdp_if, '/'))
			return cfg_fail(err, file, s, "xdp: \"%s\" is not an interface name",
					c->xdp_if);
		if (!strcmp(mode, "answer"))
			c->xdp_mode = GSLB_XDP_ANSWER;
		else if (strcmp(mode, "afxdp"))
			return cfg_fail(err, file, s,
					"xdp: mode \"%s\" is neither \"afxdp\" nor \"answer\"",
					mode);
		if (c->xdp_mode == GSLB_XDP_ANSWER && (config_setting_get_member(s, "queues")))
			return cfg_fail(err, file, s,
					"xdp: queues are for mode \"afxdp\" (the answer program "
					"serves every queue)");
		if (c->xdp_mode == GSLB_XDP_AFXDP && c->xdp_queues > c->workers)
			return cfg_fail(err, file, s,
					"xdp: %u queues need as many workers (workers = %u)",
					c->xdp_queues, c->workers);
		/* The XDP program takes one UDP port: the one every listen
		 * address shares. */
		for (unsigned i = 0; i < c->n_listen; i++) {
			const struct lb_addr *a = &c->listen_addr[i];
			static const uint8_t zero[16];
			/* The program takes the port on every address of the
			 * interface; gslbd answers only its listen addresses, so
			 * it must know them. */
			if (!memcmp(a->bytes, zero, a->family == LB_AF_INET6 ? 16 : 4))
				return cfg_fail(err, file, s,
						"xdp: listen \"%s\" is a wildcard: list the "
						"addresses to answer on",
						c->listen[i]);
			uint16_t p = c->listen_port[i];
			if (i && p != c->xdp_port)
				return cfg_fail(err, file, s,
						"xdp: the listen addresses must share one port "
						"(%u and %u)",
						c->xdp_port, p);
			c->xdp_port = p;
		}
	}
	c->rrl =
	    (struct gslb_rrl){.rate = 0, .burst = 0, .slip = 2, .v4_prefix = 24, .v6_prefix = 56};
	if ((s = config_setting_get_member(root, "rate_limit"))) {
		static const char *const rk[] = {"rate",      "burst",	   "slip",
						 "v4_prefix", "v6_prefix", NULL};
		uint32_t p4, p6;
		if ((rc = cfg_known(s, rk, "rate_limit", file, err)) ||
		    (rc = cfg_uint(s, "rate", &c->rrl.rate, 100, 0, 10000000, file, err)) ||
		    (rc = cfg_uint(s, "burst", &c->rrl.burst, 2 * c->rrl.rate, 1, 100000000, file,
				   err)) ||
		    (rc = cfg_uint(s, "slip", &c->rrl.slip, 2, 0, 10, file, err)) ||
		    (rc = cfg_uint(s, "v4_prefix", &p4, 24, 8, 32, file, err)) ||
		    (rc = cfg_uint(s, "v6_prefix", &p6, 56, 16, 128, file, err)))
			return rc;
		c->rrl.v4_prefix = p4;
		c->rrl.v6_prefix = p6;
	}

	s = config_setting_get_member(root, "pops");
	if (!s || !config_setting_is_list(s) || config_setting_length(s) < 1 ||
	    config_setting_length(s) > GMAP_MAX_POPS)
		return cfg_fail(err, file, s ? s : root, "\"pops\" is a list of 1..%d PoPs",
				GMAP_MAX_POPS);
	for (int i = 0; i < config_setting_length(s); i++) {
		static const char *const pk[] = {"name", "vip4", "vip6", NULL};
		const config_setting_t *ps = config_setting_get_elem(s, i), *e;
		struct gslb_pop *p = &c->pops[i];
		if ((rc = cfg_known(ps, pk, "pop", file, err)) ||
		    (rc =
			 cfg_str_copy(ps, "name", p->name, sizeof(p->name), NULL, true, file, err)))
			return rc;
		if (!p->name[0])
			return cfg_fail(err, file, ps, "a PoP needs a name");
		for (const char *q = p->name; *q; q++)
			if (!((*q >= 'a' && *q <= 'z') || (*q >= '0' && *q <= '9') || *q == '-' ||
			      *q == '_'))
				return cfg_fail(err, file, ps, "PoP name \"%s\": use [a-z0-9_-]",
						p->name);
		if (gslb_conf_pop(c, p->name) >= 0)
			return cfg_fail(err, file, ps, "PoP \"%s\" defined twice", p->name);
		if ((e = config_setting_get_member(ps, "vip4"))) {
			if ((rc = ip_of(e, "vip4", AF_INET, p->vip4, file, err)))
				return rc;
			p->has4 = true;
		}
		if ((e = config_setting_get_member(ps, "vip6"))) {
			if ((rc = ip_of(e, "vip6", AF_INET6, p->vip6, file, err)))
				return rc;
			p->has6 = true;
		}
		if (!p->has4 && !p->has6)
			return cfg_fail(err, file, ps, "PoP \"%s\" has no vip4 or vip6", p->name);
		c->n_pops++;
	}

	if ((s = config_setting_get_member(root, "countries"))) {
		if (!config_setting_is_list(s) || config_setting_length(s) > GSLB_MAX_COUNTRIES)
			return cfg_fail(err, file, s, "\"countries\" is a list of up to %d groups",
					GSLB_MAX_COUNTRIES);
		for (int i = 0; i < config_setting_length(s); i++) {
			static const char *const ck[] = {"cc", "pops", NULL};
			const config_setting_t *cs = config_setting_get_elem(s, i);
			const char *cc;
			if ((rc = cfg_known(cs, ck, "country", file, err)) ||
			    (rc = cfg_str(cs, "cc", &cc, true, file, err)))
				return rc;
			if (strlen(cc) != 2 || cc[0] < 'A' || cc[0] > 'Z' || cc[1] < 'A' ||
			    cc[1] > 'Z')
				return cfg_fail(err, file, cs,
						"cc \"%s\": an ISO 3166 code in capitals", cc);
			for (unsigned j = 0; j < c->n_countries; j++)
				if (!strcmp(c->countries[j].cc, cc))
					return cfg_fail(err, file, cs, "country %s listed twice",
							cc);
			memcpy(c->countries[c->n_countries].cc, cc, 3);
			if ((rc = list_of(c, config_setting_get_member(cs, "pops"),
					  &c->countries[c->n_countries].list, file, err)))
				return rc;
			c->n_countries++;
		}
	}
	if (!(s = config_setting_get_member(root, "default")))
		return cfg_fail(err, file, root,
				"missing \"default\": the PoPs for subnets no map entry or "
				"country decides");
	if ((rc = list_of(c, s, &c->def, file, err)))
		return rc;
	if ((s = config_setting_get_member(root, "anycast"))) {
		static const char *const ak[] = {"vip4", "vip6", NULL};
		const config_setting_t *e;
		if ((rc = cfg_known(s, ak, "anycast", file, err)))
			return rc;
		if ((e = config_setting_get_member(s, "vip4"))) {
			if ((rc = ip_of(e, "anycast vip4", AF_INET, c->anycast4, file, err)))
				return rc;
			c->any4 = true;
		}
		if ((e = config_setting_get_member(s, "vip6"))) {
			if ((rc = ip_of(e, "anycast vip6", AF_INET6, c->anycast6, file, err)))
				return rc;
			c->any6 = true;
		}
	}

	s = config_setting_get_member(root, "zones");
	if (!s || !config_setting_is_list(s) || config_setting_length(s) < 1)
		return cfg_fail(err, file, s ? s : root,
				"\"zones\" is a list of at least one zone");
	for (int i = 0; i < config_setting_length(s); i++)
		if ((rc = parse_zone(c, config_setting_get_elem(s, i), file, err)))
			return rc;
	return 0;
}

int gslb_conf_load(const char *path, const char *text, struct gslb_conf **out, char **err)
{
	struct gslb_conf *c = calloc(1, sizeof(*c));
	*out = NULL;
	if (!c) {
		*err = strdup("out of memory");
		return -ENOMEM;
	}
	int rc = cfg_load(path, text, parse_root, c, err);
	if (rc) {
		gslb_conf_free(c);
		return rc;
	}
	*out = c;
	return 0;
}

void gslb_conf_free(struct gslb_conf *c)
{
	if (!c)
		return;
	for (unsigned i = 0; i < GSLB_MAX_ZONES; i++) {
		struct gslb_zone *z = &c->zones[i];
		free(z->apex);
		knot_rrset_clear(&z->soa, NULL);
		knot_rrset_clear(&z->ns, NULL);
		for (unsigned j = 0; j < GSLB_MAX_NAMES; j++)
			free(z->names[j].name);
	}
	free(c);
}
