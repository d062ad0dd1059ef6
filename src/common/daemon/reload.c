/* reload.c - re-reading a daemon's config file at SIGHUP. */
#include "reload.h"

#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>

#include "log/log.h"
#include "rtcms_error.h"

#define FIELDS_MAX 128

/* Where f->dst lies in the settings: true and its offset, or false. */
static bool offset_of(const struct reload_settings *s, const struct config_field *f,
		     size_t *off)
{
	uintptr_t base = (uintptr_t)s->live, dst = (uintptr_t)f->dst;
	size_t len = f->type == CONFIG_STR ? f->size
		   : f->type == CONFIG_U64 ? sizeof(uint64_t)
		   : f->type == CONFIG_LIST ? sizeof(struct config_list) : sizeof(int);
	if (dst < base || dst - base > s->size || s->size - (dst - base) < len)
		return false;
	*off = dst - base;
	return true;
}

struct config_field reload_field(const struct reload_settings *s,
				 const struct config_field *f, void *fresh)
{
	struct config_field r = *f;
	size_t off = 0;
	if (offset_of(s, f, &off))
		r.dst = (char *)fresh + off;
	return r;
}

int reload_load(const struct reload_settings *s, const char *path, void *fresh,
		char *err, size_t errlen)
{
	struct config_field fields[FIELDS_MAX + 1];
	size_t n = 0, off;

	for (const struct config_field *f = s->fields; f->name; f++) {
		if (n >= FIELDS_MAX || !offset_of(s, f, &off)) {
			snprintf(err, errlen, "internal: setting %s cannot be reloaded", f->name);
			return RTCMS_EINVAL;
		}
		fields[n++] = reload_field(s, f, fresh);
	}
	memset(&fields[n], 0, sizeof(fields[n]));
	memcpy(fresh, s->defaults, s->size);
	if (!path)
		return 0;
	return config_load(path, fields, err, errlen);
}

static bool same(const struct config_field *f, const void *a, const void *b)
{
	switch (f->type) {
	case CONFIG_STR:
		return strncmp(a, b, f->size) == 0;
	case CONFIG_U64:
		return *(const uint64_t *)a == *(const uint64_t *)b;
	case CONFIG_BOOL:
		return *(const int *)a == *(const int *)b;
	case CONFIG_LIST: {
		const struct config_list *x = a, *y = b;
		if (x->count != y->count)
			return false;
		for (size_t i = 0; i < x->count; i++)
			if (strcmp(x->items[i], y->items[i]) != 0)
				return false;
		return true;
	}
	}
	return false;
}

size_t reload_changed(const struct reload_settings *s, const void *running,
		      const void *fresh, const char *const *skip, char *out,
		      size_t outlen)
{
	size_t count = 0, used = 0, off;

	if (outlen)
		out[0] = '\0';
	for (const struct config_field *f = s->fields; f->name; f++) {
		int skipped = 0;
		for (size_t k = 0; skip && skip[k]; k++)
			if (strcmp(skip[k], f->name) == 0)
				skipped = 1;
		if (skipped || !offset_of(s, f, &off) ||
		    same(f, (const char *)running + off, (const char *)fresh + off))
			continue;
		int w = snprintf(out + used, outlen > used ? outlen - used : 0, "%s[%s] %s",
				 count ? ", " : "", f->section, f->name);
		if (w > 0 && used + (size_t)w < outlen)
			used += (size_t)w;
		count++;
	}
	return count;
}

int reload_log_level(const char *level, enum log_level *to, char *out, size_t outlen)
{
	int l = log_level_parse(level);
	enum log_level from = log_level_get();
	if (l < 0) {
		snprintf(out, outlen, "[log] level \"%s\": expected error, warn, info or "
			 "debug", level);
		return RTCMS_EINVAL;
	}
	*to = (enum log_level)l;
	if (*to == from)
		snprintf(out, outlen, "log level %s", log_level_name(from));
	else
		snprintf(out, outlen, "log level %s -> %s", log_level_name(from),
			 log_level_name(*to));
	return 0;
}

void reload_announce(enum log_level to, const char *fmt, ...)
{
	char line[1536];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (to > log_level_get()) {
		log_level_set(to);
		log_info("%s", line);
	} else {
		log_info("%s", line);
		log_level_set(to);
	}
}

struct sighup {
	uv_signal_t h;
	void (*fn)(void *ctx);
	void *ctx;
};

static void on_sighup(uv_signal_t *h, int signum)
{
	struct sighup *s = h->data;
	(void)signum;
	s->fn(s->ctx);
}

int reload_on_sighup(void (*fn)(void *ctx), void *ctx)
{
	static struct sighup s; /* one per process, as the signal is */
	s.fn = fn;
	s.ctx = ctx;
	if (uv_signal_init(uv_default_loop(), &s.h) != 0)
		return RTCMS_EIO;
	s.h.data = &s;
	if (uv_signal_start(&s.h, on_sighup, SIGHUP) != 0) {
		uv_close((uv_handle_t *)&s.h, NULL);
		return RTCMS_EIO;
	}
	uv_unref((uv_handle_t *)&s.h); /* never what keeps a stopping daemon up */
	return 0;
}
