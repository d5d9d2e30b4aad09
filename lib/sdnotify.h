/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * sdnotify.h - tell systemd how the service is doing (sd_notify(3)'s
 * protocol: one datagram of "KEY=VALUE" lines to $NOTIFY_SOCKET), so a
 * Type=notify unit knows when the daemon is ready, stopping, or alive for
 * its watchdog. Without $NOTIFY_SOCKET (not under systemd) these do
 * nothing.
 */
#ifndef PORTICO_SDNOTIFY_H
#define PORTICO_SDNOTIFY_H

#include <stdint.h>

/*
 * Send state (e.g. "READY=1\nSTATUS=serving"). Returns 0 when sent or when
 * there is no $NOTIFY_SOCKET, -errno when the send failed.
 */
int sd_notifyf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * The watchdog interval systemd asked for ($WATCHDOG_USEC, when
 * $WATCHDOG_PID is unset or ours) in milliseconds, or 0 for none.
 */
uint64_t sd_watchdog_ms(void);

#endif
