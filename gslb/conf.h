/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * conf.h - gslbd's configuration: where it listens, the zones it is
 * authoritative for, the PoPs with their VIPs, the country and default
 * fallbacks, the anycast fail-open address and the rate limit. Read with
 * libconfig; a bad line names the file, the line and the reason, and a
 * reload that fails leaves the running configuration as it was.
 */
#ifndef PORTICO_GSLB_CONF_H
#define PORTICO_GSLB_CONF_H

#include <libknot/libknot.h>
#include <stdbool.h>
#include <stdint.h>

#include "addr.h"
#include "map.h"

#define GSLB_MAX_LISTEN	   8
#define GSLB_MAX_ZONES	   16
#define GSLB_MAX_NAMES	   64 /* per zone */
#define GSLB_MAX_NS	   8
#define GSLB_MAX_ADDRS	   8 /* per static name and family */
#define GSLB_MAX_COUNTRIES 256
#define GSLB_NO_POP	   0xff

/* An ordered fallback list of configured PoPs (indices into conf.pops). */
struct gslb_list {
	uint8_t pop[GMAP_LIST_MAX];
	uint8_t n;
};

struct gslb_pop {
	char name[GMAP_POP_NAME];
	bool has4, has6;
	uint8_t vip4[4], vip6[16];
};

enum gslb_name_kind { GSLB_NAME_SERVICE, GSLB_NAME_STATIC };

struct gslb_name {
	knot_dname_t *name; /* lowercase wire format, malloc'd */
	enum gslb_name_kind kind;
	uint8_t n4, n6; /* static addresses */
	uint8_t a4[GSLB_MAX_ADDRS][4], a6[GSLB_MAX_ADDRS][16];
};

struct gslb_zone {
	knot_dname_t *apex; /* lowercase wire format, malloc'd */
	uint32_t ttl;	    /* of service answers: short, so that moves apply */
	uint32_t static_ttl;
	knot_rrset_t soa, ns; /* prebuilt, owner apex; rdata malloc'd */
	struct gslb_name names[GSLB_MAX_NAMES];
	unsigned n_names;
};

struct gslb_rrl {
	uint32_t rate;	/* responses per second per source prefix; 0 = off */
	uint32_t burst; /* bucket size */
	uint32_t slip;	/* every slip-th limited response goes out truncated (TC) */
	uint8_t v4_prefix, v6_prefix;
};

struct gslb_conf {
	char listen[GSLB_MAX_LISTEN][64];
	/* the same, parsed: what the XDP paths match destinations against */
	struct lb_addr listen_addr[GSLB_MAX_LISTEN];
	uint16_t listen_port[GSLB_MAX_LISTEN];
	unsigned n_listen;
	unsigned workers;
	char admin_socket[256];
	char map_path[256];
	char geoip4[256], geoip6[256];
	/*
	 * AF_XDP (optional): UDP queries to the listen port arriving on
	 * xdp_if are taken from the driver by an XDP program and answered
	 * from user space, skipping the kernel's socket path; workers
	 * 0..xdp_queues-1 each own one RX queue. Everything else (TCP, other
	 * ports and interfaces) still reaches the sockets; fragmented UDP to
	 * the port is dropped by the program.
	 */
	char xdp_if[16]; /* "" = off */
	/*
	 * xdp_mode "answer": instead, gslbd's own XDP program answers the
	 * common query (A/AAAA for a service name, the map decides, a PoP of
	 * the list is up) in the driver and passes everything else to the
	 * sockets (xdp/gslb_answer.bpf.c); xdp_max_nodes bounds the map it
	 * holds.
	 */
	enum { GSLB_XDP_AFXDP, GSLB_XDP_ANSWER } xdp_mode;
	uint32_t xdp_max_nodes;
	unsigned xdp_queues;
	uint16_t xdp_port;
	uint16_t max_udp; /* our EDNS payload size */
	struct gslb_rrl rrl;
	struct gslb_zone zones[GSLB_MAX_ZONES];
	unsigned n_zones;
	struct gslb_pop pops[GMAP_MAX_POPS];
	unsigned n_pops;
	struct {
		char cc[3];
		struct gslb_list list;
	} countries[GSLB_MAX_COUNTRIES];
	unsigned n_countries;
	struct gslb_list def; /* when neither the map nor a country decides */
	bool any4, any6;      /* the anycast fail-open address per family */
	uint8_t anycast4[4], anycast6[16];
};

/*
 * Load path (or text, named path in messages, when text is not NULL) into
 * a new *out (free with gslb_conf_free). Returns 0, or -EINVAL with a
 * malloc'd "file:line: reason" in *err (caller frees).
 */
int gslb_conf_load(const char *path, const char *text, struct gslb_conf **out, char **err);
void gslb_conf_free(struct gslb_conf *c);

/* Index of the PoP called name, or -1. */
int gslb_conf_pop(const struct gslb_conf *c, const char *name);

#endif
