/*
 * test_restore_flow.c - the migration data path without a manager: a real
 * protected program (examples/counter) checkpoints into its area; the
 * committed checkpoint is captured as an image and stored in a real
 * rtcms-store; it is read back, installed into a fresh area, and a new
 * instance of the program started for a restore continues from the
 * checkpointed state with its table intact.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "area/image.h"
#include "client/store_client.h"
#include "rtcms_error.h"
#include "testutil.h"

#define AREA_CAP (8u << 20)

static void *make_area(const char *path, size_t *len)
{
	*len = area_size_for(AREA_CAP);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)*len), 0);
	void *m = mmap(NULL, *len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	assert_true(m != MAP_FAILED);
	assert_int_equal(area_format(m, *len), 0);
	return m;
}

/* Run the counter program with area and restore flag; its stdout goes to
 * out. Returns its exit status. */
static int run_counter(const char *area, int restore, const char *iterations,
		       const char *out)
{
	pid_t pid = fork();
	if (pid == 0) {
		int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		dup2(fd, STDOUT_FILENO);
		setenv("RTCMS_AREA", area, 1);
		if (restore)
			setenv("RTCMS_RESTORE", "1", 1);
		execl(RTCMS_BIN_DIR "/rtcms-counter", "rtcms-counter", "--iterations",
		      iterations, "--interval-ms", "1", "--table-mib", "4", (char *)NULL);
		_exit(127);
	}
	int st;
	waitpid(pid, &st, 0);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int file_has(const char *path, const char *needle)
{
	char line[512];
	int found = 0;
	FILE *f = fopen(path, "r");
	while (f && fgets(line, sizeof(line), f))
		found |= strstr(line, needle) != NULL;
	if (f)
		fclose(f);
	return found;
}

static int write_cb(void *ctx, const struct proto_chunk *ch)
{
	uint8_t **p = ctx;
	memcpy(*p + ch->offset, ch->data, ch->len);
	return 0;
}

static void test_checkpoint_store_restore(void **state)
{
	(void)state;
	char *dir = tu_tmpdir("flow");
	struct proto_key key;
	char *keyfile = tu_keyfile(dir, &key);
	char area1[600], area2[600], out1[600], out2[600];
	size_t len1, len2;
	struct tu_daemon d;
	struct net_client *c;

	snprintf(area1, sizeof(area1), "%s/area-node1", dir);
	snprintf(area2, sizeof(area2), "%s/area-node2", dir);
	snprintf(out1, sizeof(out1), "%s/out1", dir);
	snprintf(out2, sizeof(out2), "%s/out2", dir);

	/* node 1: the program runs 5 iterations, checkpointing each */
	void *m1 = make_area(area1, &len1);
	assert_int_equal(run_counter(area1, 0, "5", out1), 0);
	assert_true(file_has(out1, "counter: 5 (table 5000 entries, checkpoint 5)"));

	/* the agent's part: capture the committed checkpoint, store it */
	uint8_t *img = malloc(AREA_CAP + 65536);
	int64_t ilen = image_capture(m1, img, AREA_CAP + 65536);
	assert_true(ilen > 0);
	assert_int_equal(tu_store_start(&d, dir, keyfile, 2, "127.0.0.1", NULL), 0);
	assert_int_equal(net_client_connect(d.addr, &key, PROTO_ROLE_AGENT, "agent-1",
					    10000, &c), 0);
	struct proto_ckpt_meta meta;
	struct proto_put_ack ack;
	struct store_client_buf b = { img, (uint64_t)ilen };
	memset(&meta, 0, sizeof(meta));
	strcpy(meta.process, "counter");
	meta.incarnation = 1;
	meta.sequence = 5;
	meta.node = 1;
	meta.size = (uint64_t)ilen;
	meta.spec = (const uint8_t *)"rtcms-counter --table-mib 4";
	meta.spec_len = (uint32_t)strlen((const char *)meta.spec);
	assert_int_equal(store_client_put(c, &meta, 1 << 20, store_client_read_buf, &b, &ack), 0);

	/* node 2: fetch it, install it into a fresh area, restore */
	uint8_t *img2 = calloc(1, (size_t)ilen);
	struct proto_ckpt_meta got;
	uint8_t *dst = img2;
	assert_int_equal(store_client_get(c, "counter", 0, 0, 0, &got, write_cb, &dst, NULL), 0);
	assert_int_equal(got.size, (uint64_t)ilen);
	net_client_free(c);
	tu_daemon_stop(&d, SIGTERM);
	assert_memory_equal(img, img2, (size_t)ilen);
	void *m2 = make_area(area2, &len2);
	assert_int_equal(image_install(m2, img2, (size_t)ilen), 0);
	assert_int_equal(run_counter(area2, 1, "3", out2), 0);
	assert_true(file_has(out2, "restored at counter 5 with 5000 table entries intact"));
	/* it goes on from there: counter and checkpoint sequence continue */
	assert_true(file_has(out2, "counter: 8 (table 8000 entries, checkpoint 8)"));
	struct area_header *h = m2;
	assert_int_equal(atomic_load(&h->resumed), 5);

	munmap(m1, len1);
	munmap(m2, len2);
	free(img);
	free(img2);
	tu_rmrf(dir);
	free(dir);
	free(keyfile);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_checkpoint_store_restore),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
