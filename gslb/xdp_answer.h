/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * xdp_answer.h - gslbd's answers in XDP (xdp/gslb_answer.bpf.c): load the
 * program, keep its copy of the configuration, the map and the PoP states
 * in step with gslbd's, attach it to an interface, read its counters.
 *
 * The program answers the common query itself and passes everything else
 * to gslbd's sockets, so a program that cannot answer (no map, a map too
 * big for its arrays, a change in progress) only costs speed: gslbd still
 * answers every query.
 */
#ifndef PORTICO_GSLB_XDP_ANSWER_H
#define PORTICO_GSLB_XDP_ANSWER_H

#include <stdbool.h>
#include <stdint.h>

#include "dns.h"

struct gslb_xa;

/*
 * Load the program with room for tab_cap tables (128 bytes each: the
 * radix tree in 4-bit strides, at most one per 2 nodes, about one per 5.5
 * for a map built by gslb-map) and list_cap lists per map (two maps' worth: one serving,
 * one being written). Not attached and answering nothing until
 * gslb_xa_sync. Returns 0 and *out (free with gslb_xa_close), or -errno
 * with a malloc'd reason in *err.
 */
int gslb_xa_open(uint32_t tab_cap, uint32_t list_cap, struct gslb_xa **out, char **err);

/*
 * Make the program answer as v does (configuration, map, PoP states; v is
 * only read during the call): for every change of configuration or map
 * (the map is copied whole: about 2 ms per 500,000 nodes). While it runs
 * the program passes every query on. Returns 0, or -E2BIG when the map
 * does not fit (the program then passes every query on; *err says why,
 * malloc'd).
 */
int gslb_xa_sync(struct gslb_xa *x, const struct gslb_view *v, char **err);

/* The PoP states only (a drain, a health change): effective at once. */
void gslb_xa_states(struct gslb_xa *x, const struct gslb_view *v);

/*
 * Attach to the interface (native XDP, else generic) through a BPF link
 * that only x holds, so the program goes when gslbd goes, however it
 * ends; another program already there is not replaced (-EBUSY). Returns
 * 0 or -errno with *err set (malloc'd).
 */
int gslb_xa_attach(struct gslb_xa *x, const char *ifname, char **err);

/* Counters summed over CPUs: out[GX_COUNTERS] (gslb_xdp.h). 0 or -errno. */
int gslb_xa_counters(struct gslb_xa *x, uint64_t *out);

/* Tables the serving map takes (0: none loaded). */
uint32_t gslb_xa_tables(const struct gslb_xa *x);

/* Does the program hold a map it answers from? */
bool gslb_xa_loaded(const struct gslb_xa *x);

/* The program's fd, for BPF_PROG_TEST_RUN in the tests. */
int gslb_xa_prog_fd(const struct gslb_xa *x);

/* Detach (if attached and still ours), unload and free. NULL is fine. */
void gslb_xa_close(struct gslb_xa *x);

#endif
