/* cmdline.c - daemon options over a config file (getopt_long). */
#include "cmdline.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "log/log.h"
#include "rtcms_error.h"
#include "util/version.h"

#define OPTS_MAX 64

/* getopt_long's value of --version (it has no short form). */
#define OPT_VERSION 999

/* getopt_long's tables for opts, plus --config, --help and --version. */
struct getopt_tables {
	struct option lo[OPTS_MAX + 4];
	char shorts[3 * OPTS_MAX + 8];
};

static void tables_build(const struct cmdline_opt *opts, struct getopt_tables *t)
{
	size_t n = 0;
	strcpy(t->shorts, "c:h");
	t->lo[n++] = (struct option){ "config", required_argument, NULL, 'c' };
	t->lo[n++] = (struct option){ "help", no_argument, NULL, 'h' };
	t->lo[n++] = (struct option){ "version", no_argument, NULL, OPT_VERSION };
	for (size_t i = 0; opts[i].long_name && n < OPTS_MAX; i++) {
		int val = opts[i].short_name ? opts[i].short_name : 1000 + (int)i;
		t->lo[n++] = (struct option){ opts[i].long_name, required_argument, NULL, val };
		if (opts[i].short_name) {
			size_t l = strlen(t->shorts);
			t->shorts[l] = opts[i].short_name;
			t->shorts[l + 1] = ':';
			t->shorts[l + 2] = '\0';
		}
	}
	t->lo[n] = (struct option){ NULL, 0, NULL, 0 };
}

static const struct config_field *field_named(const struct config_field *fields,
					      const char *name)
{
	for (const struct config_field *f = fields; f->name; f++)
		if (strcmp(f->name, name) == 0)
			return f;
	return NULL;
}

/*
 * The second pass: every option but --config overrides its setting; a
 * list given here replaces the file's. With s, the settings changed are
 * those in fresh (s->fields relocated), else the fields themselves.
 * Returns 0 or RTCMS_ECONFIG with the problem in err.
 */
static int apply_options(int argc, char **argv, const struct getopt_tables *t,
			 const struct config_field *fields, const struct cmdline_opt *opts,
			 const struct reload_settings *s, void *fresh, char *err,
			 size_t errlen)
{
	int touched[OPTS_MAX] = { 0 };
	char why[1024];
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, t->shorts, t->lo, NULL)) != -1) {
		const struct cmdline_opt *o = NULL;
		for (size_t i = 0; opts[i].long_name; i++)
			if ((opts[i].short_name && c == opts[i].short_name) ||
			    c == 1000 + (int)i)
				o = &opts[i];
		if (!o)
			continue;
		const struct config_field *named = field_named(fields, o->field);
		if (!named) {
			snprintf(err, errlen, "internal: no setting %s", o->field);
			return RTCMS_ECONFIG;
		}
		struct config_field f = s ? reload_field(s, named, fresh) : *named;
		size_t k = (size_t)(o - opts);
		if (f.type == CONFIG_LIST && k < OPTS_MAX && !touched[k]) {
			((struct config_list *)f.dst)->count = 0;
			touched[k] = 1;
		}
		if (config_set(&f, optarg, why, sizeof(why)) != 0) {
			snprintf(err, errlen, "--%s: %s", o->long_name, why);
			return RTCMS_ECONFIG;
		}
	}
	return 0;
}

/* The --config argument of argv, or NULL (argv was checked at the start). */
static const char *config_of(int argc, char **argv, const struct getopt_tables *t)
{
	const char *config = NULL;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, t->shorts, t->lo, NULL)) != -1)
		if (c == 'c')
			config = optarg;
	return config;
}

enum cmdline_result cmdline_parse(const char *prog, int argc, char **argv,
				  const struct config_field *fields,
				  const struct cmdline_opt *opts, void (*usage)(FILE *))
{
	struct getopt_tables t;
	const char *config = NULL;
	char err[1024];
	int c;

	tables_build(opts, &t);
	opterr = 1;
	optind = 1;
	while ((c = getopt_long(argc, argv, t.shorts, t.lo, NULL)) != -1) {
		if (c == 'c')
			config = optarg;
		else if (c == 'h') {
			usage(stdout);
			return CMDLINE_HELP;
		} else if (c == OPT_VERSION) {
			version_print(stdout, prog);
			return CMDLINE_HELP;
		} else if (c == '?') {
			usage(stderr);
			return CMDLINE_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "%s: unexpected argument \"%s\"\n", prog, argv[optind]);
		return CMDLINE_USAGE;
	}
	if (config && config_load(config, fields, err, sizeof(err)) != 0) {
		fprintf(stderr, "%s: %s\n", prog, err);
		return CMDLINE_USAGE;
	}
	if (apply_options(argc, argv, &t, fields, opts, NULL, NULL, err, sizeof(err)) != 0) {
		fprintf(stderr, "%s: %s\n", prog, err);
		return CMDLINE_USAGE;
	}
	return CMDLINE_RUN;
}

int cmdline_reload(int argc, char **argv, const struct cmdline_opt *opts,
		   const struct reload_settings *s, void *fresh, char *err,
		   size_t errlen)
{
	struct getopt_tables t;

	tables_build(opts, &t);
	opterr = 0; /* checked at the start already */
	const char *config = config_of(argc, argv, &t);
	int rc = reload_load(s, config, fresh, err, errlen);
	if (rc == 0)
		rc = apply_options(argc, argv, &t, s->fields, opts, s, fresh, err, errlen);
	opterr = 1;
	return rc;
}

int cmdline_sighup(int argc, char **argv, const struct cmdline_opt *opts,
		   const struct reload_settings *s, void *fresh, enum log_level *to,
		   char *level, size_t levellen)
{
	char err[1024];
	const struct config_field *lf = field_named(s->fields, "level");

	int rc = cmdline_reload(argc, argv, opts, s, fresh, err, sizeof(err));
	if (rc != 0) {
		log_warn("SIGHUP: %s: the settings stay as they were", err);
		return rc < 0 ? rc : RTCMS_ECONFIG;
	}
	struct config_field f = lf ? reload_field(s, lf, fresh) : (struct config_field){ 0 };
	if (!lf || f.type != CONFIG_STR) {
		log_warn("SIGHUP: internal: no [log] level setting: the settings stay as "
			 "they were");
		return RTCMS_EINTERNAL;
	}
	if (reload_log_level(f.dst, to, level, levellen) != 0) {
		log_warn("SIGHUP: %s: the settings stay as they were", level);
		return RTCMS_ECONFIG;
	}
	return 0;
}
