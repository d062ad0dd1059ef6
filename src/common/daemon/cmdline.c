/* cmdline.c - daemon options over a config file (getopt_long). */
#include "cmdline.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#define OPTS_MAX 64

static const struct config_field *field_named(const struct config_field *fields,
					      const char *name)
{
	for (const struct config_field *f = fields; f->name; f++)
		if (strcmp(f->name, name) == 0)
			return f;
	return NULL;
}

int cmdline_parse(const char *prog, int argc, char **argv,
		  const struct config_field *fields,
		  const struct cmdline_opt *opts, void (*usage)(FILE *))
{
	struct option lo[OPTS_MAX + 3];
	char shorts[3 * OPTS_MAX + 8] = "c:h";
	const char *config = NULL;
	char err[1024];
	size_t n = 0;
	int c;

	lo[n++] = (struct option){ "config", required_argument, NULL, 'c' };
	lo[n++] = (struct option){ "help", no_argument, NULL, 'h' };
	for (size_t i = 0; opts[i].long_name && n < OPTS_MAX; i++) {
		int val = opts[i].short_name ? opts[i].short_name : 1000 + (int)i;
		lo[n++] = (struct option){ opts[i].long_name, required_argument, NULL, val };
		if (opts[i].short_name) {
			size_t l = strlen(shorts);
			shorts[l] = opts[i].short_name;
			shorts[l + 1] = ':';
			shorts[l + 2] = '\0';
		}
	}
	lo[n] = (struct option){ NULL, 0, NULL, 0 };

	opterr = 1;
	optind = 1;
	while ((c = getopt_long(argc, argv, shorts, lo, NULL)) != -1) {
		if (c == 'c')
			config = optarg;
		else if (c == 'h') {
			usage(stdout);
			return 1;
		} else if (c == '?') {
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "%s: unexpected argument \"%s\"\n", prog, argv[optind]);
		return 2;
	}
	if (config && config_load(config, fields, err, sizeof(err)) != 0) {
		fprintf(stderr, "%s: %s\n", prog, err);
		return 2;
	}
	/* second pass: options override the file; lists given here replace */
	struct config_list *lists[OPTS_MAX] = { 0 };
	optind = 1;
	while ((c = getopt_long(argc, argv, shorts, lo, NULL)) != -1) {
		const struct cmdline_opt *o = NULL;
		for (size_t i = 0; opts[i].long_name; i++)
			if ((opts[i].short_name && c == opts[i].short_name) ||
			    c == 1000 + (int)i)
				o = &opts[i];
		if (!o)
			continue;
		const struct config_field *f = field_named(fields, o->field);
		if (!f) {
			fprintf(stderr, "%s: internal: no setting %s\n", prog, o->field);
			return 2;
		}
		if (f->type == CONFIG_LIST) {
			size_t k = (size_t)(o - opts);
			if (!lists[k]) {
				((struct config_list *)f->dst)->count = 0;
				lists[k] = f->dst;
			}
		}
		if (config_set(f, optarg, err, sizeof(err)) != 0) {
			fprintf(stderr, "%s: --%s: %s\n", prog, o->long_name, err);
			return 2;
		}
	}
	return 0;
}
