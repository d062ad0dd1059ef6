/* cmd_keygen.c - rtcmsctl keygen FILE [--force] */
#include <string.h>

#include "cli.h"
#include "util/keyfile.h"

int cmd_keygen(struct cli *cli, int argc, char **argv)
{
	const char *path = NULL;
	int force = 0;
	char err[1024];

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--force") == 0 || strcmp(argv[i], "-f") == 0)
			force = 1;
		else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			printf("usage: rtcmsctl keygen FILE [--force]\n"
			       "Write a new random 256-bit cluster key to FILE (mode 0600).\n"
			       "Give the same file to every daemon and to rtcmsctl (--key).\n");
			return CLI_OK;
		} else if (argv[i][0] == '-')
			return cli_usage("keygen: unknown option %s", argv[i]);
		else if (!path)
			path = argv[i];
		else
			return cli_usage("keygen: one FILE only");
	}
	if (!path)
		return cli_usage("keygen: FILE missing");
	if (keyfile_generate(path, force, err, sizeof(err)) != 0)
		return cli_fail("%s", err);
	if (cli->json)
		printf("{\"key_file\":"), cli_json_str(stdout, path), printf("}\n");
	else
		printf("wrote a new cluster key to %s\n", path);
	return CLI_OK;
}
