/*
 * config.h - table-driven INI configuration (libinih underneath).
 *
 * A daemon describes its settings as an array of struct config_field; the
 * parser fills them and reports the first error as "FILE:LINE: [section]
 * name: problem". Unknown sections or keys are errors too (a typo must not
 * be silently ignored).
 */
#ifndef RTCMS_CONFIG_H
#define RTCMS_CONFIG_H

#include <stddef.h>
#include <stdint.h>

enum config_type {
	CONFIG_STR,   /* char[size] */
	CONFIG_U64,   /* uint64_t within [min, max] */
	CONFIG_LIST,  /* struct config_list: repeated key or comma list */
	CONFIG_BOOL,  /* int: yes/no/true/false/1/0 */
};

#define CONFIG_LIST_MAX 16

struct config_list {
	size_t count;
	char items[CONFIG_LIST_MAX][512];
};

struct config_field {
	const char *section;
	const char *name;
	enum config_type type;
	void *dst;
	size_t size;       /* CONFIG_STR: buffer size */
	uint64_t min, max; /* CONFIG_U64 range */
	/* NULL, or a check of the value as written (each entry of a
	 * CONFIG_LIST), called before it is stored: 0, or RTCMS_ECONFIG
	 * with the problem (without location) in why. A failed check is
	 * reported like any other error: "FILE:LINE: [section] name: why"
	 * from the file, "--option: why" from the command line. */
	int (*check)(const char *value, char *why, size_t whylen);
};

/*
 * Parse path against fields (terminated by an entry with name NULL).
 * Returns 0, or RTCMS_ECONFIG with a message in err.
 */
int config_load(const char *path, const struct config_field *fields,
		char *err, size_t errlen);

/*
 * Set one field from a string (used for command-line overrides too).
 * Returns 0, or RTCMS_ECONFIG with the problem (without location) in err.
 */
int config_set(const struct config_field *f, const char *value, char *err,
	       size_t errlen);

/* Parse a size with an optional K/M/G suffix or a duration with ms/s/m. */
int config_parse_u64(const char *s, uint64_t *out);

#endif
