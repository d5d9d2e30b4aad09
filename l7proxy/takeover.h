/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * takeover.h - a binary upgrade hands the listening sockets from the
 * running proxy to its successor, so not one connection is refused or
 * reset: the successor accepts from the very sockets (and their queues)
 * the old process accepted from, and the old one then only drains.
 *
 * The two talk over a SOCK_SEQPACKET socketpair the old process makes
 * before it starts the new binary (main.c): the old one sends a header
 * ("portico-takeover 1 N") and then the N descriptors in messages of at
 * most TAKEOVER_CHUNK (SCM_RIGHTS); the new one answers "ready PID" once
 * it serves, or closes the socket (exits) if it cannot.
 */
#ifndef PORTICO_L7_TAKEOVER_H
#define PORTICO_L7_TAKEOVER_H

#include <stddef.h>

#include "config.h"

#define TAKEOVER_CHUNK 200   /* descriptors per message (the kernel takes 253) */
#define TAKEOVER_MAX   65536 /* descriptors in one handover */

/* Send the n descriptors fds over sock (blocking). 0 or -errno. They stay
 * open in the sender. */
int takeover_send(int sock, const int *fds, size_t n);

/*
 * Receive the descriptors from sock, waiting at most timeout_ms for each
 * message. On success returns 0 and *fds (malloc'd, caller frees and owns
 * every descriptor in it), *n. On failure returns -errno with a reason in
 * err; nothing is left open.
 */
int takeover_recv(int sock, int timeout_ms, int **fds, size_t *n, char *err, size_t errlen);

/*
 * Match received listening sockets to cfg's listeners by their bound
 * address. On success returns the number of sockets per listener k (the
 * predecessor's worker count; > 0) and *matrix (malloc'd, caller frees):
 * k rows of cfg->n_listeners entries, row w for worker w, each a socket
 * (now owned by the matrix) or -1 for a listener new in cfg. Sockets of
 * listeners cfg no longer has are closed. Returns -errno with a reason in
 * err if the sockets cannot be laid out (the listeners differ in count);
 * every descriptor is closed then. fds[] entries are consumed either way.
 */
int takeover_assign(const struct l7_config *cfg, int *fds, size_t n, int **matrix, char *err,
		    size_t errlen);

#endif
