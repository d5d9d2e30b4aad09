// SPDX-License-Identifier: GPL-2.0-only
#include "cfgfile.h"
#include "addr.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cfg_fail(char **err, const char *file, const config_setting_t *s, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (asprintf(err, "%s:%d: %s", file, s ? config_setting_source_line(s) : 0, msg) < 0)
		*err = NULL;
	return -EINVAL;
}

int cfg_str(const config_setting_t *parent, const char *name, const char **out, bool required,
	    const char *file, char **err)
{
	config_setting_t *s = config_setting_get_member(parent, name);

	*out = NULL;
	if (!s)
		return required ? cfg_fail(err, file, parent, "missing setting \"%s\"", name) : 0;
	if (config_setting_type(s) != CONFIG_TYPE_STRING)
		return cfg_fail(err, file, s, "\"%s\" must be a string", name);
	*out = config_setting_get_string(s);
	return 0;
}

int cfg_str_copy(const config_setting_t *parent, const char *name, char *dst, size_t cap,
		 const char *def, bool required, const char *file, char **err)
{
	const char *v;
	int rc = cfg_str(parent, name, &v, required, file, err);

	if (rc)
		return rc;
	if (!v)
		v = def;
	if (strlen(v) >= cap)
		return cfg_fail(err, file, config_setting_get_member(parent, name),
				"%s \"%s\" is too long (max %zu)", name, v, cap - 1);
	strcpy(dst, v);
	return 0;
}

int cfg_uint(const config_setting_t *parent, const char *name, uint32_t *out, uint32_t def,
	     uint32_t min, uint32_t max, const char *file, char **err)
{
	config_setting_t *s = config_setting_get_member(parent, name);
	long long v;

	if (!s) {
		*out = def;
		return 0;
	}
	if (config_setting_type(s) != CONFIG_TYPE_INT &&
	    config_setting_type(s) != CONFIG_TYPE_INT64)
		return cfg_fail(err, file, s, "\"%s\" must be an integer", name);
	v = config_setting_get_int64(s);
	if (v < min || v > max)
		return cfg_fail(err, file, s, "\"%s\" = %lld is out of range [%u, %u]", name, v,
				min, max);
	*out = (uint32_t)v;
	return 0;
}

int cfg_bool(const config_setting_t *parent, const char *name, bool *out, bool def,
	     const char *file, char **err)
{
	config_setting_t *s = config_setting_get_member(parent, name);

	if (!s) {
		*out = def;
		return 0;
	}
	if (config_setting_type(s) != CONFIG_TYPE_BOOL)
		return cfg_fail(err, file, s, "\"%s\" must be true or false", name);
	*out = config_setting_get_bool(s);
	return 0;
}

int cfg_enum(const config_setting_t *parent, const char *name, const char *const *names, unsigned n,
	     unsigned def, unsigned *out, const char *file, char **err)
{
	const char *v;
	char allowed[256] = "";
	int rc = cfg_str(parent, name, &v, false, file, err);

	if (rc)
		return rc;
	if (!v) {
		*out = def;
		return 0;
	}
	for (unsigned i = 0; i < n; i++) {
		if (strcmp(v, names[i]) == 0) {
			*out = i;
			return 0;
		}
		snprintf(allowed + strlen(allowed), sizeof(allowed) - strlen(allowed), "%s\"%s\"",
			 i ? ", " : "", names[i]);
	}
	return cfg_fail(err, file, config_setting_get_member(parent, name),
			"%s \"%s\": expected one of %s", name, v, allowed);
}

int cfg_load(const char *path, const char *text, cfg_parse_fn parse, void *out, char **err)
{
	config_t cf;
	int ok, rc;

	*err = NULL;
	config_init(&cf);
	if (text) {
		ok = config_read_string(&cf, text) == CONFIG_TRUE;
	} else {
		FILE *f = fopen(path, "r");

		if (!f) {
			if (asprintf(err, "%s: %s", path, strerror(errno)) < 0)
				*err = NULL;
			config_destroy(&cf);
			return -EINVAL;
		}
		/* config_read_file() would lose the name in messages. */
		ok = config_read(&cf, f) == CONFIG_TRUE;
		fclose(f);
	}
	if (!ok) {
		if (asprintf(err, "%s:%d: %s", path, config_error_line(&cf),
			     config_error_text(&cf)) < 0)
			*err = NULL;
		config_destroy(&cf);
		return -EINVAL;
	}
	rc = parse(&cf, path, out, err);
	config_destroy(&cf);
	if (rc == -ENOMEM && !*err && asprintf(err, "%s: out of memory", path) < 0)
		*err = NULL;
	return rc ? -EINVAL : 0;
}

int cfg_known(const config_setting_t *group, const char *const *allowed, const char *what,
	      const char *file, char **err)
{
	int n = config_setting_length(group);

	for (int i = 0; i < n; i++) {
		const config_setting_t *m = config_setting_get_elem(group, (unsigned)i);
		const char *name = config_setting_name(m);
		bool ok = false;

		if (!name)
			continue;
		for (const char *const *a = allowed; *a && !ok; a++)
			ok = strcmp(*a, name) == 0;
		if (!ok)
			return cfg_fail(err, file, m, "unknown setting \"%s\" in %s", name, what);
	}
	return 0;
}

int cfg_addr(const config_setting_t *parent, const char *name, struct lb_addr *out,
	     const char *file, char **err)
{
	const char *v;
	int rc = cfg_str(parent, name, &v, false, file, err);

	memset(out, 0, sizeof(*out));
	if (rc || !v)
		return rc;
	if (lb_addr_parse(v, out))
		return cfg_fail(err, file, config_setting_get_member(parent, name),
				"%s \"%s\": not an IPv4 or IPv6 address", name, v);
	return 0;
}
