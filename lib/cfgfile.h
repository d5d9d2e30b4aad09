/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * cfgfile.h - what lbd and l7proxy share in reading a libconfig file:
 * loading (from a file or a string), "file:line: reason" messages, and
 * typed getters with defaults and ranges. Each daemon's own parser walks
 * its settings with these and fills its own struct.
 */
#ifndef PORTICO_CFGFILE_H
#define PORTICO_CFGFILE_H

#include <libconfig.h>
#include <stdbool.h>
#include <stdint.h>

/*
 * Parse the root of a loaded file into out. Returns 0, or -EINVAL (or
 * -ENOMEM) with *err set through cfg_fail().
 */
typedef int (*cfg_parse_fn)(config_t *cf, const char *file, void *out, char **err);

/*
 * Load path (text NULL) or text (named name in messages), then run parse.
 * A syntax error, I/O error or parse failure returns -EINVAL with a
 * malloc'd "file:line: reason" in *err (caller frees); the caller frees
 * whatever parse left in out.
 */
int cfg_load(const char *path, const char *text, cfg_parse_fn parse, void *out, char **err);

/* Set *err to "file:line-of-s: message" (line 0 if s is NULL); returns -EINVAL. */
int cfg_fail(char **err, const char *file, const config_setting_t *s, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/*
 * String member name of parent into *out (borrowed from the config, valid
 * until it is destroyed); NULL if absent and not required. 0 or -EINVAL.
 */
int cfg_str(const config_setting_t *parent, const char *name, const char **out, bool required,
	    const char *file, char **err);

/* Copy a string member into dst (cap bytes), def if absent. 0 or -EINVAL. */
int cfg_str_copy(const config_setting_t *parent, const char *name, char *dst, size_t cap,
		 const char *def, bool required, const char *file, char **err);

/* Integer member in [min, max], def if absent. 0 or -EINVAL. */
int cfg_uint(const config_setting_t *parent, const char *name, uint32_t *out, uint32_t def,
	     uint32_t min, uint32_t max, const char *file, char **err);

/* Boolean member, def if absent. 0 or -EINVAL (not a boolean). */
int cfg_bool(const config_setting_t *parent, const char *name, bool *out, bool def,
	     const char *file, char **err);

/*
 * String member that must be one of names[0..n) (its index goes to *out),
 * def if absent. 0 or -EINVAL naming the allowed values.
 */
int cfg_enum(const config_setting_t *parent, const char *name, const char *const *names, unsigned n,
	     unsigned def, unsigned *out, const char *file, char **err);

/*
 * Refuse members of group that are not in allowed (NULL-terminated): a
 * misspelt setting is an error naming its line, not silently a default.
 * what names the group in the message. 0 or -EINVAL.
 */
int cfg_known(const config_setting_t *group, const char *const *allowed, const char *what,
	      const char *file, char **err);

/* An IP address member (lb_addr) or family 0 if absent. 0 or -EINVAL. */
struct lb_addr;
int cfg_addr(const config_setting_t *parent, const char *name, struct lb_addr *out,
	     const char *file, char **err);

#endif
