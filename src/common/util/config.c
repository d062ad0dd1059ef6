/* config.c - table-driven INI parsing with precise error messages. */
#include "config.h"

#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "rtcms_error.h"

struct parse_ctx {
	FILE *file;
	int lineno;        /* lines handed to inih so far */
	const struct config_field *fields;
	const char *path;
	char *err;
	size_t errlen;
	int failed;
};

int config_parse_u64(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (*s == '\0' || *s == '-')
		return RTCMS_EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || end == s)
		return RTCMS_EINVAL;
	uint64_t mul = 1;
	if (*end == '\0')
		mul = 1;
	else if (strcmp(end, "K") == 0 || strcmp(end, "k") == 0 || strcmp(end, "KiB") == 0)
		mul = 1024;
	else if (strcmp(end, "M") == 0 || strcmp(end, "MiB") == 0)
		mul = 1024 * 1024;
	else if (strcmp(end, "G") == 0 || strcmp(end, "GiB") == 0)
		mul = 1024ull * 1024 * 1024;
	else if (strcmp(end, "ms") == 0)
		mul = 1;
	else if (strcmp(end, "s") == 0)
		mul = 1000;
	else if (strcmp(end, "m") == 0 || strcmp(end, "min") == 0)
		mul = 60000;
	else
		return RTCMS_EINVAL;
	if (v > UINT64_MAX / mul)
		return RTCMS_EINVAL;
	*out = (uint64_t)v * mul;
	return 0;
}

int config_set(const struct config_field *f, const char *value, char *err,
	       size_t errlen)
{
	if (f->check && f->type != CONFIG_LIST && f->check(value, err, errlen) != 0)
		return RTCMS_ECONFIG;
	switch (f->type) {
	case CONFIG_STR:
		if (strlen(value) >= f->size) {
			snprintf(err, errlen, "value longer than %zu characters",
				 f->size - 1);
			return RTCMS_ECONFIG;
		}
		strcpy((char *)f->dst, value);
		return 0;
	case CONFIG_U64: {
		uint64_t v;
		if (config_parse_u64(value, &v) != 0) {
			snprintf(err, errlen, "\"%s\" is not a number", value);
			return RTCMS_ECONFIG;
		}
		if (v < f->min || v > f->max) {
			snprintf(err, errlen, "%llu is out of range %llu..%llu",
				 (unsigned long long)v,
				 (unsigned long long)f->min,
				 (unsigned long long)f->max);
			return RTCMS_ECONFIG;
		}
		*(uint64_t *)f->dst = v;
		return 0;
	}
	case CONFIG_BOOL: {
		int *b = f->dst;
		if (!strcasecmp(value, "yes") || !strcasecmp(value, "true") ||
		    !strcmp(value, "1") || !strcasecmp(value, "on"))
			*b = 1;
		else if (!strcasecmp(value, "no") || !strcasecmp(value, "false") ||
			 !strcmp(value, "0") || !strcasecmp(value, "off"))
			*b = 0;
		else {
			snprintf(err, errlen, "\"%s\" is not yes or no", value);
			return RTCMS_ECONFIG;
		}
		return 0;
	}
	case CONFIG_LIST: {
		struct config_list *l = f->dst;
		char tmp[4096];
		char *save = NULL;
		if (strlen(value) >= sizeof(tmp)) {
			snprintf(err, errlen, "value too long");
			return RTCMS_ECONFIG;
		}
		strcpy(tmp, value);
		for (char *tok = strtok_r(tmp, ",", &save); tok;
		     tok = strtok_r(NULL, ",", &save)) {
			while (*tok == ' ' || *tok == '\t')
				tok++;
			size_t n = strlen(tok);
			while (n > 0 && (tok[n - 1] == ' ' || tok[n - 1] == '\t'))
				tok[--n] = '\0';
			if (n == 0)
				continue;
			if (l->count >= CONFIG_LIST_MAX) {
				snprintf(err, errlen, "more than %d entries",
					 CONFIG_LIST_MAX);
				return RTCMS_ECONFIG;
			}
			if (n >= sizeof(l->items[0])) {
				snprintf(err, errlen, "entry longer than %zu characters",
					 sizeof(l->items[0]) - 1);
				return RTCMS_ECONFIG;
			}
			if (f->check && f->check(tok, err, errlen) != 0)
				return RTCMS_ECONFIG;
			strcpy(l->items[l->count++], tok);
		}
		return 0;
	}
	}
	snprintf(err, errlen, "internal: unknown field type");
	return RTCMS_EINTERNAL;
}

/* Debian's libinih does not pass line numbers to handlers: count the lines
 * as inih reads them (it reads one line per call). */
static char *read_line(char *str, int num, void *stream)
{
	struct parse_ctx *ctx = stream;
	char *r = fgets(str, num, ctx->file);
	if (r)
		ctx->lineno++;
	return r;
}

static int on_entry(void *user, const char *section, const char *name,
		    const char *value)
{
	struct parse_ctx *ctx = user;
	int lineno = ctx->lineno;
	char why[512];

	if (ctx->failed)
		return 0;
	for (const struct config_field *f = ctx->fields; f->name; f++) {
		if (strcmp(f->section, section) != 0 || strcmp(f->name, name) != 0)
			continue;
		if (config_set(f, value, why, sizeof(why)) != 0) {
			snprintf(ctx->err, ctx->errlen, "%s:%d: [%s] %s: %s",
				 ctx->path, lineno, section, name, why);
			ctx->failed = 1;
			return 0;
		}
		return 1;
	}
	snprintf(ctx->err, ctx->errlen, "%s:%d: [%s] %s: unknown setting",
		 ctx->path, lineno, section, name);
	ctx->failed = 1;
	return 0;
}

int config_load(const char *path, const struct config_field *fields,
		char *err, size_t errlen)
{
	struct parse_ctx ctx = { NULL, 0, fields, path, err, errlen, 0 };
	FILE *f = fopen(path, "r");

	if (!f) {
		snprintf(err, errlen, "%s: cannot open config file: %s", path,
			 strerror(errno));
		return RTCMS_ECONFIG;
	}
	ctx.file = f;
	int rc = ini_parse_stream(read_line, &ctx, on_entry, &ctx);
	fclose(f);
	if (ctx.failed)
		return RTCMS_ECONFIG;
	if (rc > 0) {
		snprintf(err, errlen, "%s:%d: syntax error", path, rc);
		return RTCMS_ECONFIG;
	}
	if (rc < 0) {
		snprintf(err, errlen, "%s: cannot parse", path);
		return RTCMS_ECONFIG;
	}
	return 0;
}
