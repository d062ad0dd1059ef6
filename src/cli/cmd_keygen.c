/* cmd_keygen.c - rtcmsctl keygen [--data [--cipher C]] FILE [--force] */
#include <string.h>

#include "cli.h"
#include "util/datakey.h"
#include "util/keyfile.h"

static int usage_ok(void)
{
	printf("usage: rtcmsctl keygen FILE [--force]\n"
	       "       rtcmsctl keygen --data [--cipher aes-256-gcm|chacha20-poly1305] FILE [--force]\n"
	       "Write a new random 256-bit key to FILE (mode 0600).\n"
	       "Without --data: the cluster (transport) key; give the same file to\n"
	       "every daemon and to rtcmsctl (--key).\n"
	       "With --data: a data keyring holding one key (id 1) that seals\n"
	       "checkpoint contents; give it to every agent. The cipher defaults to\n"
	       "AES-256-GCM where this CPU has AES instructions, else\n"
	       "ChaCha20-Poly1305: make it where the slowest node would choose.\n");
	return CLI_OK;
}

int cmd_keygen(struct cli *cli, int argc, char **argv)
{
	const char *path = NULL, *cipher_name = NULL;
	enum datakey_cipher cipher = datakey_cipher_default();
	int force = 0, data = 0, rc;
	char err[1024];

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--force") == 0 || strcmp(argv[i], "-f") == 0)
			force = 1;
		else if (strcmp(argv[i], "--data") == 0)
			data = 1;
		else if (strcmp(argv[i], "--cipher") == 0) {
			if (++i == argc)
				return cli_usage("keygen: --cipher needs a value");
			cipher_name = argv[i];
		} else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
			return usage_ok();
		else if (argv[i][0] == '-')
			return cli_usage("keygen: unknown option %s", argv[i]);
		else if (!path)
			path = argv[i];
		else
			return cli_usage("keygen: one FILE only");
	}
	if (!path)
		return cli_usage("keygen: FILE missing");
	if (cipher_name && !data)
		return cli_usage("keygen: --cipher is for a data key (--data)");
	if (cipher_name && datakey_cipher_parse(cipher_name, &cipher) != 0)
		return cli_usage("keygen: unknown cipher %s (aes-256-gcm or chacha20-poly1305)",
				 cipher_name);
	if (data)
		rc = datakey_generate(path, cipher, force, err, sizeof(err));
	else
		rc = keyfile_generate(path, force, err, sizeof(err));
	if (rc != 0)
		return cli_fail("%s", err);
	if (data) {
		struct datakey_ring ring;
		char kcv[2 * DATAKEY_KCV_SIZE + 1];

		if (datakey_load(path, &ring, err, sizeof(err)) != 0)
			return cli_fail("%s", err);
		datakey_kcv_hex(datakey_active(&ring), kcv);
		datakey_ring_wipe(&ring);
		if (cli->json) {
			printf("{\"data_keyring\":"), cli_json_str(stdout, path);
			printf(",\"key_id\":1,\"cipher\":\"%s\",\"kcv\":\"%s\"}\n",
			       datakey_cipher_name(cipher), kcv);
		} else
			printf("wrote a new data keyring to %s (key 1, %s, check value %s)\n",
			       path, datakey_cipher_name(cipher), kcv);
	} else if (cli->json)
		printf("{\"key_file\":"), cli_json_str(stdout, path), printf("}\n");
	else
		printf("wrote a new cluster key to %s\n", path);
	return CLI_OK;
}
