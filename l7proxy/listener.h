/* SPDX-License-Identifier: GPL-2.0-only */
/* listener.h - listening sockets, bound per worker with SO_REUSEPORT. */
#ifndef PORTICO_L7_LISTENER_H
#define PORTICO_L7_LISTENER_H

#include <stddef.h>

#include "config.h"

/* A non-blocking listening socket for lc (SO_REUSEPORT, FREEBIND,
 * V6ONLY). Returns the fd or -errno. */
int listener_open(const struct l7_listener_cfg *lc);

/*
 * Before any worker binds: fail with -EADDRINUSE and a message naming the
 * owner (msg, len bytes) if anything already listens on a configured
 * address. 0 when every address is free.
 */
int listeners_check_free(const struct l7_config *cfg, char *msg, size_t len);

/*
 * After every worker bound: fail with -EADDRINUSE if more sockets listen
 * on a configured port than ours (workers per listener). 0 otherwise.
 */
int listeners_verify(const struct l7_config *cfg, unsigned workers, char *msg, size_t len);

#endif
