/* cmd_keygen.c - rtcmsctl keygen [--data [--cipher C]] FILE [--force] */
#include <inttypes.h>
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

/* ---- datakey: the keyring's keys, and their rotation ---------------------- */

static int datakey_usage(void)
{
	printf("usage: rtcmsctl datakey list FILE\n"
	       "       rtcmsctl datakey add FILE [--pending] [--cipher aes-256-gcm|chacha20-poly1305]\n"
	       "       rtcmsctl datakey activate FILE ID\n"
	       "       rtcmsctl datakey retire FILE ID\n"
	       "The keys of a data keyring. New chunks are sealed under the active key\n"
	       "(the highest id neither pending nor retired); every key opens what it\n"
	       "sealed. To rotate: add --pending and give the file to every agent\n"
	       "(restart them), activate the new key and do so again, then retire the\n"
	       "old one (docs/operations.md, \"The data keyring\").\n");
	return CLI_OK;
}

static const char *key_state(const struct datakey_ring *ring, const struct datakey *k)
{
	if (k == datakey_active(ring))
		return "active";
	return k->pending ? "pending" : k->retired ? "retired" : "readable";
}

static int datakey_list(struct cli *cli, const char *path)
{
	struct datakey_ring ring;
	char err[1024], kcv[2 * DATAKEY_KCV_SIZE + 1];

	if (datakey_load(path, &ring, err, sizeof(err)) != 0)
		return cli_fail("%s", err);
	if (cli->json)
		printf("[");
	else
		printf("%-10s %-18s %-16s %s\n", "ID", "CIPHER", "CHECK VALUE", "STATE");
	for (size_t i = 0; i < ring.count; i++) {
		const struct datakey *k = &ring.keys[i];
		datakey_kcv_hex(k, kcv);
		if (cli->json)
			printf("%s{\"key_id\":%" PRIu32 ",\"cipher\":\"%s\",\"kcv\":\"%s\","
			       "\"state\":\"%s\"}", i ? "," : "", k->id,
			       datakey_cipher_name(k->cipher), kcv, key_state(&ring, k));
		else
			printf("%-10" PRIu32 " %-18s %-16s %s\n", k->id,
			       datakey_cipher_name(k->cipher), kcv, key_state(&ring, k));
	}
	if (cli->json)
		printf("]\n");
	datakey_ring_wipe(&ring);
	return CLI_OK;
}

int cmd_datakey(struct cli *cli, int argc, char **argv)
{
	enum datakey_cipher cipher = datakey_cipher_default();
	const char *pos[3] = { NULL, NULL, NULL };
	int npos = 0, pending = 0;
	char err[1024];

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
			return datakey_usage();
		if (strcmp(argv[i], "--pending") == 0)
			pending = 1;
		else if (strcmp(argv[i], "--cipher") == 0) {
			if (++i == argc || datakey_cipher_parse(argv[i], &cipher) != 0)
				return cli_usage("datakey: --cipher aes-256-gcm or chacha20-poly1305");
		} else if (argv[i][0] == '-')
			return cli_usage("datakey: unknown option %s", argv[i]);
		else if (npos < 3)
			pos[npos++] = argv[i];
		else
			return cli_usage("datakey: too many arguments");
	}
	if (npos < 2)
		return cli_usage("datakey: give a subcommand and FILE");
	const char *sub = pos[0], *path = pos[1];
	if (strcmp(sub, "list") == 0 && npos == 2)
		return datakey_list(cli, path);
	enum datakey_edit op;
	uint32_t id = 0;
	if (strcmp(sub, "add") == 0 && npos == 2) {
		op = pending ? DATAKEY_ADD_PENDING : DATAKEY_ADD;
	} else if ((strcmp(sub, "activate") == 0 || strcmp(sub, "retire") == 0) && npos == 3) {
		uint64_t v;
		if (cli_parse_u64(pos[2], &v) || v == 0 || v > UINT32_MAX)
			return cli_usage("datakey %s: ID must be a key id, 1..4294967295", sub);
		id = (uint32_t)v;
		op = sub[0] == 'a' ? DATAKEY_ACTIVATE : DATAKEY_RETIRE;
	} else {
		return cli_usage("datakey: unknown subcommand or wrong arguments: %s", sub);
	}
	if (datakey_edit(path, op, cipher, &id, err, sizeof(err)) != 0)
		return cli_fail("%s", err);
	if (cli->json)
		printf("{\"key_id\":%" PRIu32 ",\"done\":\"%s\"}\n", id, sub);
	else if (op == DATAKEY_ADD || op == DATAKEY_ADD_PENDING)
		printf("added data key %" PRIu32 " (%s) to %s: %s\n", id,
		       datakey_cipher_name(cipher), path,
		       pending ? "pending (activate it once every agent has this file)"
			       : "active (new chunks are sealed under it)");
	else
		printf("data key %" PRIu32 " %s in %s\n", id,
		       op == DATAKEY_RETIRE ? "retired (it still opens what it sealed)"
					    : "active", path);
	return CLI_OK;
}
