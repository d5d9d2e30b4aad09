/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * log.h - logging shared by the daemons: one line per event to stderr
 * (journald or the popbox log file captures it), prefixed with the level and
 * the component name given to log_init().
 */
#ifndef PORTICO_LOG_H
#define PORTICO_LOG_H

#include <stdbool.h>

enum log_level { LOG_LVL_ERR = 0, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

/* Set the component name (borrowed, must outlive logging) and the level. */
void log_init(const char *component, enum log_level level);

/* printf-style; a newline is added. Thread-safe (one write(2) per line). */
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_err(...)   log_msg(LOG_LVL_ERR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LVL_DEBUG, __VA_ARGS__)

/*
 * Fatal invariant check: for states where memory is already wrong. Bad
 * input is never a require(): it is an error path with a counter.
 */
#define require(cond)                                                                              \
	do {                                                                                       \
		if (!(cond))                                                                       \
			log_fatal(__FILE__, __LINE__, #cond);                                      \
	} while (0)
void log_fatal(const char *file, int line, const char *what) __attribute__((noreturn));

#endif
