/*
 * cmd_area.c - rtcmsctl area: create, show, capture and install checkpoint
 * areas and images on this node (what the agent does for its programs; for
 * operators, tests and the demo).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "area/image.h"
#include "cli.h"
#include "rtcms_error.h"
#include "util/config.h"

/* Map an existing area file read-write. */
static void *map_area(const char *path, size_t *len)
{
	struct stat st;
	int fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) != 0) {
		cli_fail("%s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	void *m = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (m == MAP_FAILED || area_check(m, (size_t)st.st_size) != 0) {
		if (m != MAP_FAILED)
			munmap(m, (size_t)st.st_size);
		cli_fail("%s: not an rtcms checkpoint area", path);
		return NULL;
	}
	*len = (size_t)st.st_size;
	return m;
}

static int area_create(struct cli *cli, int argc, char **argv)
{
	uint64_t cap = 64u << 20;
	const char *path = NULL;

	for (int i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "--capacity") && i + 1 < argc) {
			if (config_parse_u64(argv[++i], &cap) != 0 || cap == 0)
				return cli_usage("--capacity: expected bytes (K, M, G suffixes)");
		} else if (argv[i][0] == '-')
			return cli_usage("area create: unknown option %s", argv[i]);
		else
			path = argv[i];
	}
	if (!path)
		return cli_usage("usage: area create PATH [--capacity BYTES]");
	size_t len = area_size_for(cap);
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return cli_fail("%s: %s", path, strerror(errno));
	if (ftruncate(fd, (off_t)len) != 0) {
		close(fd);
		unlink(path);
		return cli_fail("%s: %s", path, strerror(errno));
	}
	void *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (m == MAP_FAILED)
		return cli_fail("%s: %s", path, strerror(errno));
	area_format(m, len);
	munmap(m, len);
	if (cli->json) {
		printf("{\"path\":");
		cli_json_str(stdout, path);
		printf(",\"capacity\":%" PRIu64 "}\n", cap);
	} else {
		printf("created checkpoint area %s (%" PRIu64 " bytes per slot)\n", path, cap);
	}
	return CLI_OK;
}

static int area_show(struct cli *cli, int argc, char **argv)
{
	size_t len;
	if (argc != 3)
		return cli_usage("usage: area show PATH");
	void *m = map_area(argv[2], &len);
	if (!m)
		return CLI_FAIL;
	size_t cap = area_data_capacity(m);
	uint8_t *buf = malloc(cap ? cap : 1);
	struct area_region r[AREA_MAX_REGIONS];
	uint64_t size = 0, seq = 0;
	uint32_t n = 0;
	int rc = buf ? area_read(m, buf, cap, &size, r, &n, &seq) : RTCMS_ENOMEM;
	uint64_t resumed = atomic_load(&((struct area_header *)m)->resumed);
	if (rc && rc != RTCMS_ENOENT) {
		free(buf);
		munmap(m, len);
		return cli_fail("%s: %s", argv[2], rtcms_strerror(rc));
	}
	if (cli->json) {
		printf("{\"sequence\":%" PRIu64 ",\"data_size\":%" PRIu64
		       ",\"resumed\":%" PRIu64 ",\"regions\":[", seq, size, resumed);
		for (uint32_t i = 0; i < n; i++)
			printf("%s{\"id\":%u,\"size\":%" PRIu64 "}", i ? "," : "",
			       r[i].id, r[i].size);
		printf("]}\n");
	} else if (rc == RTCMS_ENOENT) {
		printf("%s: no checkpoint committed yet\n", argv[2]);
	} else {
		printf("%s: checkpoint %" PRIu64 ", %" PRIu64 " bytes in %u region(s)\n",
		       argv[2], seq, size, n);
		for (uint32_t i = 0; i < n; i++)
			printf("  region %-6u %12" PRIu64 " bytes\n", r[i].id, r[i].size);
		if (resumed)
			printf("  a restored program resumed from checkpoint %" PRIu64 "\n", resumed);
	}
	free(buf);
	munmap(m, len);
	return CLI_OK;
}

static int area_capture(struct cli *cli, int argc, char **argv)
{
	size_t len;
	if (argc != 5 || strcmp(argv[3], "--output") != 0)
		return cli_usage("usage: area capture PATH --output IMAGE");
	void *m = map_area(argv[2], &len);
	if (!m)
		return CLI_FAIL;
	size_t cap = image_size(AREA_MAX_REGIONS, area_data_capacity(m));
	uint8_t *img = malloc(cap);
	int64_t n = img ? image_capture(m, img, cap) : RTCMS_ENOMEM;
	munmap(m, len);
	if (n < 0) {
		free(img);
		return cli_fail("%s: %s", argv[2], rtcms_strerror((int)n));
	}
	FILE *f = fopen(argv[4], "wb");
	if (!f || fwrite(img, 1, (size_t)n, f) != (size_t)n || fclose(f) != 0) {
		free(img);
		return cli_fail("%s: %s", argv[4], strerror(errno));
	}
	free(img);
	if (cli->json) {
		printf("{\"image\":");
		cli_json_str(stdout, argv[4]);
		printf(",\"size\":%" PRId64 "}\n", n);
	} else {
		printf("captured the committed checkpoint of %s into %s (%" PRId64 " bytes)\n",
		       argv[2], argv[4], n);
	}
	return CLI_OK;
}

static int area_install(struct cli *cli, int argc, char **argv)
{
	size_t len;
	struct stat st;
	if (argc != 4)
		return cli_usage("usage: area install IMAGE PATH");
	int fd = open(argv[2], O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) != 0) {
		if (fd >= 0)
			close(fd);
		return cli_fail("%s: %s", argv[2], strerror(errno));
	}
	uint8_t *img = malloc((size_t)st.st_size + 1);
	ssize_t got = img ? read(fd, img, (size_t)st.st_size) : -1;
	close(fd);
	if (got != st.st_size) {
		free(img);
		return cli_fail("%s: cannot read", argv[2]);
	}
	void *m = map_area(argv[3], &len);
	if (!m) {
		free(img);
		return CLI_FAIL;
	}
	int rc = image_install(m, img, (size_t)got);
	munmap(m, len);
	free(img);
	if (rc)
		return cli_fail("install %s into %s: %s", argv[2], argv[3], rtcms_strerror(rc));
	if (cli->json)
		printf("{\"ok\":true}\n");
	else
		printf("installed %s into %s: a program started with RTCMS_RESTORE=1 "
		       "resumes from it\n", argv[2], argv[3]);
	return CLI_OK;
}

int cmd_area(struct cli *cli, int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "create"))
		return area_create(cli, argc, argv);
	if (argc >= 2 && !strcmp(argv[1], "show"))
		return area_show(cli, argc, argv);
	if (argc >= 2 && !strcmp(argv[1], "capture"))
		return area_capture(cli, argc, argv);
	if (argc >= 2 && !strcmp(argv[1], "install"))
		return area_install(cli, argc, argv);
	FILE *f = argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) ? stdout : stderr;
	if (f == stderr && cli->json)
		return cli_usage("area: give a subcommand: create, show, capture or install");
	fprintf(f, "usage: rtcmsctl area SUBCOMMAND\n\n"
		"  area create PATH [--capacity BYTES]   a new checkpoint area file\n"
		"  area show PATH                        its committed checkpoint\n"
		"  area capture PATH --output IMAGE      the committed checkpoint as an image\n"
		"  area install IMAGE PATH               an image as the area's checkpoint\n");
	return f == stdout ? CLI_OK : CLI_USAGE;
}
