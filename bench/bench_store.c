/*
 * bench_store.c - rtcms-store PUT/GET throughput and latency, beside this
 * machine's own limits measured in the same run (memcpy bandwidth,
 * loopback TCP bandwidth, write+fdatasync latency, sequential write
 * bandwidth). Prints tables and writes them to a Markdown file.
 *
 *   bench_store [--out docs/benchmarks.md] [--dir DIR] [--quick]
 *
 * Not a test: it asserts nothing, it measures.
 */
#include "bench_stats.h"
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "client/store_client.h"
#include "rtcms_error.h"
#include "testutil.h"
#include "util/datakey.h"

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- machine limits ------------------------------------------------ */


struct tcp_sink {
	int fd;
	uint64_t got;
};

static void *tcp_sink_run(void *arg)
{
	struct tcp_sink *s = arg;
	static uint8_t buf[1 << 20];
	int c = accept(s->fd, NULL, NULL);
	ssize_t n;
	while ((n = read(c, buf, sizeof(buf))) > 0)
		s->got += (uint64_t)n;
	close(c);
	return NULL;
}

static double bench_tcp(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t al = sizeof(a);
	struct tcp_sink sink = { 0, 0 };
	pthread_t th;
	size_t total = 2048u << 20, chunk = 1 << 20;
	uint8_t *buf = calloc(1, chunk);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sink.fd = socket(AF_INET, SOCK_STREAM, 0);
	bind(sink.fd, (struct sockaddr *)&a, sizeof(a));
	listen(sink.fd, 1);
	getsockname(sink.fd, (struct sockaddr *)&a, &al);
	pthread_create(&th, NULL, tcp_sink_run, &sink);
	int c = socket(AF_INET, SOCK_STREAM, 0);
	connect(c, (struct sockaddr *)&a, sizeof(a));
	double t = now_s();
	for (size_t sent = 0; sent < total;) {
		ssize_t n = write(c, buf, chunk);
		if (n <= 0)
			break;
		sent += (size_t)n;
	}
	close(c);
	pthread_join(th, NULL);
	t = now_s() - t;
	close(sink.fd);
	free(buf);
	return (double)sink.got / t;
}

/* 4 KiB write + fdatasync latency (p50, p99) in a fresh file of dir. */
static void bench_fdatasync(const char *dir, double *p50, double *p99)
{
	char path[600];
	uint8_t buf[4096];
	double lat[300];
	snprintf(path, sizeof(path), "%s/fsync.bin", dir);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	tu_fill(buf, sizeof(buf), 1);
	for (int i = 0; i < 300; i++) {
		double t = now_s();
		if (pwrite(fd, buf, sizeof(buf), (off_t)i * 4096) != 4096 ||
		    fdatasync(fd) != 0)
			perror("fdatasync bench");
		lat[i] = now_s() - t;
	}
	close(fd);
	unlink(path);
	*p50 = bench_pct(lat, 300, 0.5);
	*p99 = bench_pct(lat, 300, 0.99);
}

/* Sequential write of len bytes + fdatasync, bytes/s. */
static double bench_seqwrite(const char *dir, size_t len)
{
	char path[600];
	size_t chunk = 1 << 20;
	uint8_t *buf = malloc(chunk);
	snprintf(path, sizeof(path), "%s/seq.bin", dir);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	tu_fill(buf, chunk, 2);
	double t = now_s();
	for (size_t o = 0; o < len; o += chunk)
		if (write(fd, buf, chunk) != (ssize_t)chunk)
			perror("seqwrite bench");
	fdatasync(fd);
	t = now_s() - t;
	close(fd);
	unlink(path);
	free(buf);
	return (double)len / t;
}

/* ---- store --------------------------------------------------------- */

struct row {
	int mirrors;
	int files;                    /* the store's inline_max 0: every chunk in a pack */
	const struct datakey *key;    /* sealed chunks (as an agent with a keyring
				       * sends them), or NULL: plain */
	size_t size;
	int n;
	double put_p50, put_p99, put_bw;
	double get_p50, get_p99, get_bw;
};

static int null_write(void *ctx, const struct proto_chunk *ch)
{
	(void)ctx; (void)ch;
	return 0;
}

static int run_size(struct net_client *c, struct row *r, uint8_t *data)
{
	double *put = calloc((size_t)r->n, sizeof(double));
	double *get = calloc((size_t)r->n, sizeof(double));
	double put_total = 0, get_total = 0;
	static uint64_t seq = 0;
	char proc[64];
	int rc = 0;

	snprintf(proc, sizeof(proc), "bench-%d-%zu-%d%s", r->mirrors, r->size, r->files,
		 r->key ? "-sealed" : "");
	for (int i = 0; i < r->n && rc == 0; i++) {
		struct proto_ckpt_meta m;
		struct proto_put_ack ack;
		struct store_client_buf b = { data, r->size };
		memset(&m, 0, sizeof(m));
		snprintf(m.process, sizeof(m.process), "%s", proc);
		m.incarnation = 1;
		m.sequence = ++seq;
		m.size = r->size;
		data[0] = (uint8_t)seq; /* new content each time */
		data[r->size - 1] = (uint8_t)(seq >> 8);
		double t = now_s();
		rc = store_client_put_sealed(c, &m, PROTO_MAX_CHUNK, r->key,
					     store_client_read_buf, &b, &ack);
		put[i] = now_s() - t;
		put_total += put[i];
		if (rc)
			break;
		struct proto_ckpt_meta gm;
		t = now_s();
		rc = store_client_get(c, proc, 0, 0, 0, &gm, null_write, NULL, NULL);
		get[i] = now_s() - t;
		get_total += get[i];
	}
	if (rc == 0) {
		r->put_p50 = bench_pct(put, r->n, 0.5);
		r->put_p99 = bench_pct(put, r->n, 0.99);
		r->get_p50 = bench_pct(get, r->n, 0.5);
		r->get_p99 = bench_pct(get, r->n, 0.99);
		r->put_bw = (double)r->size * r->n / put_total;
		r->get_bw = (double)r->size * r->n / get_total;
	} else {
		fprintf(stderr, "bench: %s failed: %s\n", proc, rtcms_strerror(rc));
	}
	free(put);
	free(get);
	return rc;
}

static const char *fmt_t(double s, char *buf, size_t len)
{
	if (s < 1e-3)
		snprintf(buf, len, "%.0f µs", s * 1e6);
	else if (s < 1)
		snprintf(buf, len, "%.2f ms", s * 1e3);
	else
		snprintf(buf, len, "%.2f s", s);
	return buf;
}

static const char *fmt_size(const struct row *r)
{
	size_t n = r->size;
	if (r->files)
		return "4 KiB, in a pack";
	if (r->key)
		return n == (64u << 20) ? "64 MiB, sealed" : n >= (1u << 20) ? "1 MiB, sealed"
							     : "4 KiB, sealed";
	return n >= (1u << 20) ? (n == (64u << 20) ? "64 MiB" : "1 MiB") : "4 KiB";
}

int main(int argc, char **argv)
{
	const char *out = NULL, *base = NULL;
	int quick = 0;
	struct utsname un;
	char host[300];

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--out") && i + 1 < argc)
			out = argv[++i];
		else if (!strcmp(argv[i], "--dir") && i + 1 < argc)
			base = argv[++i];
		else if (!strcmp(argv[i], "--quick"))
			quick = 1;
		else {
			fprintf(stderr, "usage: bench_store [--out FILE.md] [--dir DIR] [--quick]\n");
			return 2;
		}
	}
	signal(SIGPIPE, SIG_IGN);
	if (base)
		setenv("TMPDIR", base, 1);
	char *dir = tu_tmpdir("bench");
	uname(&un);
	snprintf(host, sizeof(host), "%s %s, %ld cores", un.sysname, un.release,
		 sysconf(_SC_NPROCESSORS_ONLN));

	printf("measuring this machine's limits...\n");
	double mem_bw = bench_memcpy();
	double tcp_bw = bench_tcp();
	double fs_p50, fs_p99;
	bench_fdatasync(dir, &fs_p50, &fs_p99);
	double disk_bw = bench_seqwrite(dir, quick ? (128u << 20) : (512u << 20));
	char t1[32], t2[32], t3[32], t4[32];
	printf("memcpy %.2f GB/s, loopback TCP %.2f GB/s, seq write+fdatasync %.0f MB/s, "
	       "4 KiB write+fdatasync p50 %s p99 %s\n", mem_bw / 1e9, tcp_bw / 1e9,
	       disk_bw / 1e6, fmt_t(fs_p50, t1, sizeof(t1)), fmt_t(fs_p99, t2, sizeof(t2)));

	struct proto_key key;
	char *keyfile = tu_keyfile(dir, &key);
	size_t sizes[3] = { 4096, 1u << 20, 64u << 20 };
	int counts[3] = { quick ? 50 : 300, quick ? 20 : 60, quick ? 3 : 8 };
	struct row rows[16];
	int nrows = 0;
	/* a data key, as the agents of a cluster with a keyring seal under */
	static const char keyring[] = "rtcms-data-key-v1 1 aes-256-gcm "
		"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n";
	struct datakey_ring ring;
	char kerr[256];
	if (datakey_parse(keyring, sizeof(keyring) - 1, &ring, kerr, sizeof(kerr)) != 0) {
		fprintf(stderr, "bench: data key: %s\n", kerr);
		return 1;
	}
	uint8_t *data = malloc(64u << 20);
	tu_fill(data, 64u << 20, 7);

	/* per mirror count: the default store (small PUTs inline), then one
	 * writing every chunk to a pack (--inline-max 0) for the 4 KiB row */
	for (int run = 0; run < 4; run++) {
		int mirrors = 1 + run / 2, files = run % 2;
		char sdir[600];
		struct tu_daemon d;
		snprintf(sdir, sizeof(sdir), "%s/store%d%s", dir, mirrors, files ? "f" : "");
		mkdir(sdir, 0700);
		const char *extra[] = { "--retain", "2", "--log-level", "warn",
					"--inline-max", files ? "0" : "65536", NULL };
		if (tu_store_start(&d, sdir, keyfile, mirrors, "127.0.0.1", extra) != 0) {
			fprintf(stderr, "bench: cannot start the store\n");
			return 1;
		}
		struct net_client *c;
		int rc = net_client_connect(d.addr, &key, PROTO_ROLE_CLI, "bench",
					    60000, &c);
		if (rc) {
			fprintf(stderr, "bench: connect: %s\n", rtcms_strerror(rc));
			return 1;
		}
		/* plain: the three sizes; sealed: 4 KiB and 64 MiB */
		for (int s = 0; s < (files ? 1 : 5); s++) {
			struct row *r = &rows[nrows++];
			int k = s < 3 ? s : (s == 3 ? 0 : 2);
			memset(r, 0, sizeof(*r));
			r->mirrors = mirrors;
			r->files = files;
			r->key = s < 3 ? NULL : datakey_active(&ring);
			r->size = sizes[k];
			r->n = counts[k];
			printf("  %d mirror(s), %s x %d...\n", mirrors, fmt_size(r), r->n);
			fflush(stdout);
			if (run_size(c, r, data) != 0)
				return 1;
		}
		net_client_free(c);
		tu_daemon_stop(&d, SIGTERM);
	}
	free(data);
	datakey_ring_wipe(&ring);

	/* The report. */
	char *md = NULL;
	size_t mdlen = 0;
	FILE *f = open_memstream(&md, &mdlen);
	time_t now = time(NULL);
	char date[64];
	strftime(date, sizeof(date), "%Y-%m-%d %H:%M UTC", gmtime(&now));
	double disk_limit = disk_bw < tcp_bw ? disk_bw : tcp_bw;
	fprintf(f, "## rtcms-store PUT/GET (bench/bench_store.c)\n\n");
	fprintf(f, "Measured %s on %s%s. Store and client on one machine over "
		"loopback; mirrors are directories on the same disk as the "
		"fdatasync figures.\n\n", date, host, quick ? " (--quick)" : "");
	fprintf(f, "### This machine's limits, measured in the same run\n\n");
	fprintf(f, "| limit | figure |\n|---|---|\n");
	fprintf(f, "| memcpy, 256 MiB buffers (best of 5) | %.2f GB/s |\n", mem_bw / 1e9);
	fprintf(f, "| loopback TCP, one stream, 2 GiB | %.2f GB/s |\n", tcp_bw / 1e9);
	fprintf(f, "| sequential write + fdatasync | %.0f MB/s |\n", disk_bw / 1e6);
	fprintf(f, "| 4 KiB write + fdatasync, p50 / p99 | %s / %s |\n\n",
		fmt_t(fs_p50, t1, sizeof(t1)), fmt_t(fs_p99, t2, sizeof(t2)));
	fprintf(f, "### PUT and GET\n\n");
	fprintf(f, "PUT = the client's pass over the data (plain: BLAKE2b ids; "
		"sealed: keyed ids, AES-256-GCM and the chunk MAC, as an agent with a "
		"data keyring) + PUT_BEGIN + chunks + PUT_END until durable on every "
		"mirror (ack). GET = GET + chunks checked at the client (plain: their "
		"ids; sealed: their sums, as a hop without the keyring).\n\n");
	fprintf(f, "| mirrors | size | n | PUT p50 | PUT p99 | PUT MB/s | GET p50 | GET p99 | GET MB/s |\n");
	fprintf(f, "|---|---|---|---|---|---|---|---|---|\n");
	for (int i = 0; i < nrows; i++) {
		struct row *r = &rows[i];
		fprintf(f, "| %d | %s | %d | %s | %s | %.1f | %s | %s | %.1f |\n",
			r->mirrors, fmt_size(r), r->n,
			fmt_t(r->put_p50, t1, sizeof(t1)), fmt_t(r->put_p99, t2, sizeof(t2)),
			r->put_bw / 1e6, fmt_t(r->get_p50, t3, sizeof(t3)),
			fmt_t(r->get_p99, t4, sizeof(t4)), r->get_bw / 1e6);
	}
	fprintf(f, "\n### Against the targets\n\n");
	fprintf(f, "| target | measured | ratio | met |\n|---|---|---|---|\n");
	for (int i = 0; i < nrows; i++) {
		struct row *r = &rows[i];
		if (r->size == (64u << 20)) {
			double ratio = r->put_bw / disk_limit;
			fprintf(f, "| 64 MiB PUT%s, %d mirror(s) >= 0.7 of min(TCP, disk) = %.0f MB/s | %.0f MB/s | %.2f | %s |\n",
				r->key ? " sealed" : "", r->mirrors, disk_limit / 1e6,
				r->put_bw / 1e6, ratio, ratio >= 0.7 ? "yes" : "no");
		}
		if (r->size == 4096 && !r->files) {
			double ratio = r->put_p99 / fs_p50;
			fprintf(f, "| 4 KiB PUT%s p99, %d mirror(s) <= 3x fdatasync p50 (%s) | %s | %.2fx | %s |\n",
				r->key ? " sealed" : "", r->mirrors, fmt_t(fs_p50, t1, sizeof(t1)),
				fmt_t(r->put_p99, t2, sizeof(t2)), ratio,
				ratio <= 3 ? "yes" : "no");
		}
	}
	fprintf(f, "\n### Reading the figures\n\n"
		"- A PUT is acknowledged only when its records are flushed (an "
		"fdatasync of each pack written, per mirror) and its metadata "
		"transaction is committed (one SQLite WAL fdatasync per mirror). A "
		"PUT of up to 64 KiB (`inline_max`) writes no record: its chunks go "
		"into meta.db in that one transaction, so it costs one flush per "
		"mirror, one round trip (the client streams it behind PUT_BEGIN) and "
		"three hops through the thread pool (PUT_BEGIN, the chunk, the "
		"commit). The *in a pack* row is the same PUT with `--inline-max 0`: "
		"two flushes per mirror. With two mirrors on one disk their flushes "
		"queue behind each other.\n"
		"- Large plain PUTs are bounded by hashing on both sides (BLAKE2b "
		"ids, at the client and again at the store, at about 0.7 GB/s) and "
		"by the disk. Sealed ones carry no second pass of that kind: the "
		"client seals once (AES-256-GCM, OpenSSL), the sessions seal only "
		"each chunk's head (raw tails), and the store checks the chunk MAC "
		"(Poly1305) and the XXH3 sum, both near memcpy's speed. With two "
		"mirrors on one disk every byte is written twice.\n"
		"- A GET reads each chunk and checks it (plain: its BLAKE2b id; "
		"sealed: its sum) before it sends it, and the client checks it "
		"again.\n");
	fclose(f);
	fputs("\n", stdout);
	fputs(md, stdout);
	if (out) {
		FILE *o = fopen(out, "w");
		if (!o) {
			fprintf(stderr, "bench: cannot write %s: %s\n", out, strerror(errno));
			return 1;
		}
		fprintf(o, "# rtcms benchmarks\n\nGenerated by `make bench`; rerun it to "
			"refresh. Figures from one run on a shared, noisy machine.\n\n%s", md);
		fclose(o);
		printf("\nwrote %s\n", out);
	}
	free(md);
	tu_rmrf(dir);
	free(dir);
	free(keyfile);
	return 0;
}
