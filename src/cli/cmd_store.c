/*
 * cmd_store.c - rtcmsctl store SUBCOMMAND: put, get, list, claim, commit,
 * release, delete, scrub, status, keys.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "client/store_client.h"
#include "rtcms_error.h"

static int args_u64(const struct cli_args *a, const char *name, uint64_t dflt,
		    uint64_t *out)
{
	const char *v = cli_args_get(a, name);
	if (!v) {
		*out = dflt;
		return 0;
	}
	if (cli_parse_u64(v, out) != 0)
		return cli_usage("--%s: \"%s\" is not a number", name, v);
	return 0;
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- put ------------------------------------------------------------- */

static int do_put(struct cli *cli, const struct cli_args *a)
{
	struct proto_ckpt_meta meta;
	struct proto_put_ack ack;
	uint64_t chunk;
	struct stat st;
	int rc, fd;
	char hx[80], sz[32];

	if (a->npos != 2)
		return cli_usage("usage: store put PROCESS FILE --sequence N "
				 "[--incarnation N] [--node ID] [--spec TEXT] [--chunk-size BYTES]");
	if ((rc = cli_check_process(a->pos[0])))
		return rc;
	memset(&meta, 0, sizeof(meta));
	strcpy(meta.process, a->pos[0]);
	if ((rc = args_u64(a, "incarnation", 1, &meta.incarnation)) ||
	    (rc = args_u64(a, "sequence", 0, &meta.sequence)) ||
	    (rc = args_u64(a, "node", 0, &meta.node)) ||
	    (rc = args_u64(a, "chunk-size", 256 * 1024, &chunk)))
		return rc;
	if (meta.sequence == 0 || meta.incarnation == 0)
		return cli_usage("--sequence and --incarnation must be >= 1");
	if (chunk == 0 || chunk > PROTO_MAX_CHUNK)
		return cli_usage("--chunk-size must be 1..%u", PROTO_MAX_CHUNK);
	const char *spec = cli_args_get(a, "spec");
	if (spec) {
		if (strlen(spec) > PROTO_SPEC_MAX)
			return cli_usage("--spec longer than %d bytes", PROTO_SPEC_MAX);
		meta.spec = (const uint8_t *)spec;
		meta.spec_len = (uint32_t)strlen(spec);
	}
	fd = open(a->pos[1], O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) != 0) {
		rc = cli_fail("%s: %s", a->pos[1], strerror(errno));
		if (fd >= 0)
			close(fd);
		return rc;
	}
	meta.size = (uint64_t)st.st_size;
	meta.created_ms = now_ms();
	struct datakey_ring ring;
	if ((rc = cli_data_keys(cli, &ring)) != 0) {
		close(fd);
		return rc;
	}
	struct net_client *c = cli_connect(cli, cli->store_addr);
	if (!c) {
		close(fd);
		datakey_ring_wipe(&ring);
		return CLI_FAIL;
	}
	rc = store_client_put_sealed(c, &meta, (uint32_t)chunk,
				     ring.count ? datakey_active(&ring) : NULL,
				     store_client_read_fd, &fd, &ack);
	datakey_ring_wipe(&ring);
	close(fd);
	if (rc) {
		rc = cli_fail_rc(c, "put", rc);
		net_client_free(c);
		return rc;
	}
	net_client_free(c);
	cli_hex(ack.hash, PROTO_HASH_SIZE, hx, sizeof(hx));
	if (cli->json) {
		printf("{\"process\":");
		cli_json_str(stdout, ack.process);
		printf(",\"incarnation\":%" PRIu64 ",\"sequence\":%" PRIu64
		       ",\"size\":%" PRIu64 ",\"hash\":\"%s\",\"copies\":%u,"
		       "\"existed\":%s}\n", ack.incarnation, ack.sequence,
		       ack.size, hx, ack.copies, ack.existed ? "true" : "false");
	} else {
		printf("stored %s incarnation %" PRIu64 " sequence %" PRIu64
		       ": %s, hash %.16s…, durable on %u mirror(s)%s\n",
		       ack.process, ack.incarnation, ack.sequence,
		       cli_bytes(ack.size, sz, sizeof(sz)), hx, ack.copies,
		       ack.existed ? " (already stored)" : "");
	}
	return CLI_OK;
}

/* ---- get ------------------------------------------------------------- */

/*
 * A sink that writes the verified checkpoint to a file: the image is
 * assembled in memory (a delta comes as its chain: the full image at its
 * root and the deltas, applied in order and checked against the state
 * hash), then written to FILE.part, flushed and renamed to FILE (a failed
 * get leaves no partial file); or written to stdout (path "-").
 */
struct file_sink {
	struct stream_sink sink;
	struct stream_area_sink image;     /* the assembled image */
	const char *path;
	char tmp[4200];
	int open_errno;                    /* FILE.part could not be written */
};

#define FILE_SINK(s) ((struct file_sink *)(void *)((char *)(s) - offsetof(struct file_sink, sink)))

static int file_begin(struct stream_sink *s, const struct proto_ckpt_meta *meta)
{
	return stream_sink_begin(&FILE_SINK(s)->image.sink, meta);
}

static int file_chunk(struct stream_sink *s, const struct proto_chunk *ch)
{
	return stream_sink_chunk(&FILE_SINK(s)->image.sink, ch);
}

static int file_link(struct stream_sink *s, uint32_t count)
{
	return stream_sink_link(&FILE_SINK(s)->image.sink, count);
}

static void file_abort(struct stream_sink *s, int rc)
{
	stream_sink_abort(&FILE_SINK(s)->image.sink, rc);
}

static int write_all(int fd, const uint8_t *p, size_t left)
{
	while (left > 0) {
		ssize_t n = write(fd, p, left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return RTCMS_EIO;
		p += n;
		left -= (size_t)n;
	}
	return 0;
}

static int file_end(struct stream_sink *s, uint32_t count)
{
	struct file_sink *f = FILE_SINK(s);
	int rc = stream_sink_end(&f->image.sink, count), fd;

	if (rc)
		return rc;
	if (strcmp(f->path, "-") == 0)
		return write_all(STDOUT_FILENO, f->image.image, f->image.len);
	snprintf(f->tmp, sizeof(f->tmp), "%s.part", f->path);
	fd = open(f->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		f->open_errno = errno;
		return RTCMS_EIO;
	}
	rc = write_all(fd, f->image.image, f->image.len);
	if (rc == 0 && (fsync(fd) != 0 || rename(f->tmp, f->path) != 0))
		rc = RTCMS_EIO;
	if (rc)
		f->open_errno = errno ? errno : EIO;
	close(fd);
	if (rc)
		unlink(f->tmp);
	return rc;
}

static const struct stream_sink_ops file_sink_ops = { file_begin, file_chunk, file_end,
						      file_abort, file_link };

static void print_meta_json(const struct proto_ckpt_meta *m)
{
	char hx[80];
	printf("{\"process\":");
	cli_json_str(stdout, m->process);
	printf(",\"incarnation\":%" PRIu64 ",\"sequence\":%" PRIu64
	       ",\"node\":\"%016" PRIx64 "\",\"size\":%" PRIu64
	       ",\"created_ms\":%" PRIu64 ",\"chunks\":%u,\"hash\":\"%s\"",
	       m->incarnation, m->sequence, m->node, m->size, m->created_ms,
	       m->chunk_count, cli_hex(m->hash, PROTO_HASH_SIZE, hx, sizeof(hx)));
}

static int do_get(struct cli *cli, const struct cli_args *a)
{
	struct proto_ckpt_meta meta;
	struct proto_get_end end = { 0, 0 };
	uint64_t inc, seq;
	const char *out;
	int rc;
	char sz[32], hx[80];

	if (a->npos != 1)
		return cli_usage("usage: store get PROCESS [--sequence N] "
				 "[--incarnation N] (--output FILE | --meta)");
	if ((rc = cli_check_process(a->pos[0])))
		return rc;
	if ((rc = args_u64(a, "incarnation", 0, &inc)) ||
	    (rc = args_u64(a, "sequence", 0, &seq)))
		return rc;
	int meta_only = cli_args_get(a, "meta") != NULL;
	out = cli_args_get(a, "output");
	if (!meta_only && !out)
		return cli_usage("store get: give --output FILE (- for stdout) or --meta");

	struct datakey_ring ring;
	if ((rc = cli_data_keys(cli, &ring)) != 0)
		return rc;
	struct net_client *c = cli_connect(cli, cli->store_addr);
	if (!c) {
		datakey_ring_wipe(&ring);
		return CLI_FAIL;
	}
	const struct store_client_query q = { PROTO_GET, a->pos[0], inc, seq, 0,
					      meta_only, ring.count ? &ring : NULL, false };
	struct file_sink sink = { .sink = { &file_sink_ops, false }, .path = out };
	struct stream_result res;
	stream_area_sink_init(&sink.image, UINT64_MAX, NULL, NULL);
	rc = store_client_fetch_to(c, &q, &meta, NULL, &sink.sink, &res);
	if (rc && !sink.open_errno &&
	    (sink.image.why[0] || (res.fault == STREAM_FAULT_VERIFY && res.why[0]))) {
		stream_area_sink_clear(&sink.image);
		datakey_ring_wipe(&ring);
		net_client_free(c);
		return cli_fail("get %s: %s", a->pos[0],
				sink.image.why[0] ? sink.image.why : res.why);
	}
	uint64_t written = sink.image.len;
	stream_area_sink_clear(&sink.image);
	datakey_ring_wipe(&ring);
	if (rc == 0 && !meta_only)
		end = res.get_end;
	if (rc && sink.open_errno) {
		net_client_free(c);
		return cli_fail("%s: %s", sink.tmp, strerror(sink.open_errno));
	}
	if (rc) {
		rc = cli_fail_rc(c, "get", rc);
		net_client_free(c);
		return rc;
	}
	net_client_free(c);
	if (cli->json) {
		print_meta_json(&meta);
		if (!meta_only)
			printf(",\"repaired\":%u,\"verified\":true", end.repaired);
		printf("}\n");
	} else if (meta_only || strcmp(out, "-") != 0) {
		printf("%s %s incarnation %" PRIu64 " sequence %" PRIu64
		       ": %s in %u chunks, node %016" PRIx64 ", hash %.16s…%s%s\n",
		       meta_only ? "checkpoint" : "fetched", meta.process,
		       meta.incarnation, meta.sequence,
		       cli_bytes(meta_only || !meta.base ? meta.size : written, sz, sizeof(sz)),
		       meta.chunk_count,
		       meta.node, cli_hex(meta.hash, PROTO_HASH_SIZE, hx, sizeof(hx)),
		       meta_only ? "" : ", verified, written to ",
		       meta_only ? "" : out);
		if (end.repaired)
			printf("the store repaired %u bad cop%s while reading\n",
			       end.repaired, end.repaired == 1 ? "y" : "ies");
	}
	return CLI_OK;
}

/* ---- list ------------------------------------------------------------ */

static void print_entry(struct cli *cli, const struct proto_list_entry *e,
			int first)
{
	char hx[80], tm[40], sz[32];

	cli_hex(e->hash, PROTO_HASH_SIZE, hx, sizeof(hx));
	if (cli->json) {
		printf("%s{\"process\":", first ? "" : ",");
		cli_json_str(stdout, e->process);
		printf(",\"incarnation\":%" PRIu64 ",\"sequence\":%" PRIu64
		       ",\"node\":\"%016" PRIx64 "\",\"size\":%" PRIu64
		       ",\"created_ms\":%" PRIu64 ",\"hash\":\"%s\","
		       "\"claimed\":%s}", e->incarnation, e->sequence,
		       e->node, e->size, e->created_ms, hx,
		       e->claimed ? "true" : "false");
	} else {
		printf("%-24s %5" PRIu64 " %8" PRIu64 " %016" PRIx64
		       " %10s %-23s %.16s %s\n", e->process,
		       e->incarnation, e->sequence, e->node,
		       cli_bytes(e->size, sz, sizeof(sz)),
		       cli_time(e->created_ms, tm, sizeof(tm)), hx,
		       e->claimed ? "yes" : "-");
	}
}

int cli_list_checkpoints(struct cli *cli, const char *addr, const char *what,
			 uint64_t node, const char *process)
{
	static struct proto_list_entry entries[PROTO_LIST_MAX];
	struct proto_header hdr;
	union proto_msg m, r;
	uint32_t total = 0;
	int rc;

	struct net_client *c = cli_connect(cli, addr);
	if (!c)
		return CLI_FAIL;
	if (cli->json)
		printf("[");
	else
		printf("%-24s %5s %8s %-16s %10s %-23s %-16s %s\n", "PROCESS",
		       "INC", "SEQ", "NODE", "SIZE", "CREATED", "HASH", "CLAIMED");
	memset(&m, 0, sizeof(m));
	for (;;) {
		m.list.node = node;
		snprintf(m.list.process, sizeof(m.list.process), "%s",
			 process ? process : "");
		m.list.offset = total;
		m.list.limit = PROTO_LIST_MAX;
		r.list_reply.entries = entries;
		rc = net_client_call(c, PROTO_LIST, &m, PROTO_LIST_REPLY, &hdr, &r);
		if (rc) {
			if (cli->json)
				printf("]\n");
			rc = cli_fail_rc(c, what, rc);
			net_client_free(c);
			return rc;
		}
		for (uint16_t i = 0; i < r.list_reply.count; i++)
			print_entry(cli, &entries[i], total == 0 && i == 0);
		total += r.list_reply.count;
		if (!(hdr.flags & PROTO_F_MORE) || r.list_reply.count == 0)
			break;
	}
	net_client_free(c);
	if (cli->json)
		printf("]\n");
	else if (total == 0)
		printf("(no checkpoints)\n");
	return CLI_OK;
}

static int do_list(struct cli *cli, const struct cli_args *a)
{
	uint64_t node;
	int rc;

	if (a->npos != 0)
		return cli_usage("usage: store list [--process P] [--node ID]");
	if ((rc = args_u64(a, "node", 0, &node)))
		return rc;
	const char *p = cli_args_get(a, "process");
	if (p && (rc = cli_check_process(p)))
		return rc;
	return cli_list_checkpoints(cli, cli->store_addr, "list", node, p);
}

/* ---- claim / commit / release / delete ------------------------------ */

static int do_claim(struct cli *cli, const struct cli_args *a)
{
	struct proto_header hdr;
	union proto_msg m, r;
	uint64_t lease;
	int rc;
	char tm[40];

	if (a->npos != 1)
		return cli_usage("usage: store claim PROCESS --claimant NAME [--lease MS]");
	if ((rc = cli_check_process(a->pos[0])))
		return rc;
	if ((rc = args_u64(a, "lease", 5000, &lease)))
		return rc;
	if (lease == 0 || lease > 3600000)
		return cli_usage("--lease must be 1..3600000 ms");
	const char *who = cli_args_get(a, "claimant");
	if (!who)
		return cli_usage("store claim: --claimant NAME missing");
	if (strlen(who) > PROTO_ID_MAX)
		return cli_usage("--claimant longer than %d", PROTO_ID_MAX);
	memset(&m, 0, sizeof(m));
	strcpy(m.claim.process, a->pos[0]);
	strcpy(m.claim.claimant, who);
	m.claim.lease_ms = (uint32_t)lease;
	struct net_client *c = cli_connect(cli, cli->store_addr);
	if (!c)
		return CLI_FAIL;
	rc = net_client_call(c, PROTO_CLAIM, &m, PROTO_CLAIM_OK, &hdr, &r);
	if (rc) {
		const struct proto_error *e = net_client_last_error(c);
		if (rc == RTCMS_ECLAIMED) {
			char extra[1024] = "";
			FILE *x = fmemopen(extra, sizeof(extra) - 1, "w");
			if (x) {
				fputs("\"claimant\":", x);
				cli_json_str(x, e->who);
				fprintf(x, ",\"until_ms\":%" PRIu64, e->detail);
				fclose(x);
			}
			rc = cli_fail_with("ECLAIMED", extra[0] ? extra : NULL,
					   "claim: %s is already claimed by %s until %s",
					   a->pos[0], e->who, cli_time(e->detail, tm, sizeof(tm)));
		} else
			rc = cli_fail_rc(c, "claim", rc);
		net_client_free(c);
		return rc;
	}
	net_client_free(c);
	if (cli->json) {
		printf("{\"process\":");
		cli_json_str(stdout, r.claim_ok.process);
		printf(",\"claim_id\":\"%016" PRIx64 "\",\"incarnation\":%" PRIu64
		       ",\"sequence\":%" PRIu64 ",\"node\":\"%016" PRIx64
		       "\",\"expires_ms\":%" PRIu64 "}\n", r.claim_ok.claim_id,
		       r.claim_ok.incarnation, r.claim_ok.sequence,
		       r.claim_ok.node, r.claim_ok.expires_ms);
	} else {
		printf("claimed %s: claim %016" PRIx64 " on incarnation %" PRIu64
		       " sequence %" PRIu64 " until %s\n", r.claim_ok.process,
		       r.claim_ok.claim_id, r.claim_ok.incarnation,
		       r.claim_ok.sequence,
		       cli_time(r.claim_ok.expires_ms, tm, sizeof(tm)));
	}
	return CLI_OK;
}

static int parse_claim_id(const char *s, uint64_t *id)
{
	char buf[40];
	if (strlen(s) > 18)
		return cli_usage("\"%s\" is not a claim id", s);
	/* claim ids are printed as 16 hex digits */
	snprintf(buf, sizeof(buf), "%s%s", strncmp(s, "0x", 2) ? "0x" : "", s);
	if (cli_parse_u64(buf, id) != 0 || *id == 0)
		return cli_usage("\"%s\" is not a claim id (16 hex digits)", s);
	return 0;
}

static int do_commit(struct cli *cli, const struct cli_args *a)
{
	union proto_msg m, r;
	int rc;

	if (a->npos != 2 || !cli_args_get(a, "node"))
		return cli_usage("usage: store commit PROCESS CLAIM_ID --node ID");
	if ((rc = cli_check_process(a->pos[0])))
		return rc;
	memset(&m, 0, sizeof(m));
	strcpy(m.commit.process, a->pos[0]);
	if ((rc = parse_claim_id(a->pos[1], &m.commit.claim_id)) ||
	    (rc = args_u64(a, "node", 0, &m.commit.new_node)))
		return rc;
	if ((rc = cli_call(cli, cli->store_addr, "commit", 0, PROTO_COMMIT, &m,
			   PROTO_COMMIT_OK, &r)))
		return rc;
	if (cli->json) {
		printf("{\"process\":");
		cli_json_str(stdout, r.commit_ok.process);
		printf(",\"incarnation\":%" PRIu64 ",\"node\":\"%016" PRIx64 "\"}\n",
		       r.commit_ok.incarnation, r.commit_ok.node);
	} else {
		printf("committed: %s is now incarnation %" PRIu64 " on node %016"
		       PRIx64 "\n", r.commit_ok.process, r.commit_ok.incarnation,
		       r.commit_ok.node);
	}
	return CLI_OK;
}

/* Send a request answered by OK; print done on success. */
static int simple_call(struct cli *cli, uint8_t type, const union proto_msg *m,
		       const char *what, const char *done)
{
	union proto_msg r;
	int rc;

	if ((rc = cli_call(cli, cli->store_addr, what, 0, type, m, PROTO_OK, &r)))
		return rc;
	if (cli->json)
		printf("{\"ok\":true}\n");
	else
		printf("%s\n", done);
	return CLI_OK;
}

static int do_release(struct cli *cli, const struct cli_args *a)
{
	union proto_msg m;
	int rc;
	char done[256];

	if (a->npos != 2)
		return cli_usage("usage: store release PROCESS CLAIM_ID");
	if ((rc = cli_check_process(a->pos[0])))
		return rc;
	memset(&m, 0, sizeof(m));
	strcpy(m.release.process, a->pos[0]);
	if ((rc = parse_claim_id(a->pos[1], &m.release.claim_id)))
		return rc;
	snprintf(done, sizeof(done), "released claim %016" PRIx64 " on %s",
		 m.release.claim_id, m.release.process);
	return simple_call(cli, PROTO_RELEASE, &m, "release", done);
}

static int do_delete(struct cli *cli, const struct cli_args *a)
{
	union proto_msg m;
	int rc;
	char done[256];

	if (a->npos != 1)
		return cli_usage("usage: store delete PROCESS (--incarnation N "
				 "--sequence N | --all)");
	if ((rc = cli_check_process(a->pos[0])))
		return rc;
	memset(&m, 0, sizeof(m));
	strcpy(m.del.process, a->pos[0]);
	if ((rc = args_u64(a, "incarnation", 0, &m.del.incarnation)) ||
	    (rc = args_u64(a, "sequence", 0, &m.del.sequence)))
		return rc;
	int all = cli_args_get(a, "all") != NULL;
	if (all == (m.del.sequence != 0) || (!all && m.del.incarnation == 0))
		return cli_usage("store delete: give --incarnation N --sequence N, "
				 "or --all");
	if (all)
		snprintf(done, sizeof(done), "deleted every checkpoint of %s",
			 m.del.process);
	else
		snprintf(done, sizeof(done), "deleted %s incarnation %" PRIu64
			 " sequence %" PRIu64, m.del.process, m.del.incarnation,
			 m.del.sequence);
	return simple_call(cli, PROTO_DELETE, &m, "delete", done);
}

/* ---- scrub / status ----------------------------------------------- */

static void print_report(struct cli *cli, const struct proto_scrub_reply *r,
			 int scrub)
{
	char sz[32];

	if (cli->json) {
		printf("{\"processes\":%" PRIu64 ",\"checkpoints\":%" PRIu64
		       ",\"chunks\":%" PRIu64 ",\"bytes\":%" PRIu64
		       ",\"unrepairable\":%u,\"mirrors\":[", r->processes,
		       r->checkpoints, r->chunks, r->bytes, r->unrepairable);
		for (int i = 0; i < r->mirror_count; i++) {
			const struct proto_mirror_report *mr = &r->mirrors[i];
			printf("%s{\"path\":", i ? "," : "");
			cli_json_str(stdout, mr->path);
			printf(",\"online\":%s,\"chunks\":%" PRIu64 ",\"bytes\":%" PRIu64
			       ",\"missing\":%u,\"corrupt\":%u,\"repaired\":%u}",
			       mr->online ? "true" : "false", mr->chunks,
			       mr->bytes, mr->missing, mr->corrupt, mr->repaired);
		}
		printf("]}\n");
		return;
	}
	printf("%" PRIu64 " processes, %" PRIu64 " checkpoints, %" PRIu64
	       " distinct chunks (%s)\n", r->processes, r->checkpoints,
	       r->chunks, cli_bytes(r->bytes, sz, sizeof(sz)));
	printf("%-3s %-40s %-7s %8s %10s %8s %8s %8s\n", "#", "MIRROR", "STATE",
	       "CHUNKS", scrub ? "VERIFIED" : "BYTES", "MISSING", "CORRUPT",
	       "REPAIRED");
	for (int i = 0; i < r->mirror_count; i++) {
		const struct proto_mirror_report *mr = &r->mirrors[i];
		printf("%-3d %-40s %-7s %8" PRIu64 " %10s %8u %8u %8u\n", i,
		       mr->path, mr->online ? "online" : "OFFLINE", mr->chunks,
		       cli_bytes(mr->bytes, sz, sizeof(sz)), mr->missing,
		       mr->corrupt, mr->repaired);
	}
	if (scrub)
		printf("%s\n", r->unrepairable
			       ? "UNREPAIRABLE chunks: no mirror holds a good copy"
			       : "every referenced chunk has a good copy on every online mirror");
}

static int do_report(struct cli *cli, const struct cli_args *a, int scrub)
{
	union proto_msg m, r;
	int rc;

	if (a->npos != 0)
		return cli_usage("usage: store %s", scrub ? "scrub [--no-repair]" : "status");
	memset(&m, 0, sizeof(m));
	m.scrub.repair = cli_args_get(a, "no-repair") ? 0 : 1;
	/* A scrub reads every byte: give it time. */
	if ((rc = cli_call(cli, cli->store_addr, scrub ? "scrub" : "status",
			   scrub ? 3600 * 1000 : 0,
			   scrub ? PROTO_SCRUB : PROTO_STATUS, &m,
			   scrub ? PROTO_SCRUB_REPLY : PROTO_STATUS_REPLY, &r)))
		return rc;
	print_report(cli, &r.scrub_reply, scrub);
	if (scrub && r.scrub_reply.unrepairable)
		return CLI_FAIL;
	return CLI_OK;
}

static int do_scrub(struct cli *cli, const struct cli_args *a)
{
	return do_report(cli, a, 1);
}

static int do_status(struct cli *cli, const struct cli_args *a)
{
	return do_report(cli, a, 0);
}

/* ---- keys ----------------------------------------------------------- */

static void print_key(struct cli *cli, const struct proto_key_count *k, bool first)
{
	char sz[32], id[24];

	if (cli->json) {
		printf("%s{\"key_id\":%" PRIu32 ",\"chunks\":%" PRIu64 ",\"bytes\":%" PRIu64 "}",
		       first ? "" : ",", k->key_id, k->chunks, k->bytes);
		return;
	}
	snprintf(id, sizeof(id), k->key_id ? "%" PRIu32 : "0 (plain)", k->key_id);
	printf("%-12s %10" PRIu64 " %10s\n", id, k->chunks, cli_bytes(k->bytes, sz, sizeof(sz)));
}

/* KEYS, page by page: the chunks retained checkpoints reference, per data
 * key id that seals them. */
static int do_keys(struct cli *cli, const struct cli_args *a)
{
	static union proto_msg r;
	struct proto_header hdr;
	union proto_msg m;
	uint32_t listed = 0;
	char sz[32];
	int rc;

	if (a->npos != 0)
		return cli_usage("usage: store keys");
	struct net_client *c = cli_connect(cli, cli->store_addr);
	if (!c)
		return CLI_FAIL;
	memset(&m, 0, sizeof(m));
	if (cli->json)
		printf("{\"keys\":[");
	else
		printf("%-12s %10s %10s\n", "KEY ID", "CHUNKS", "BYTES");
	for (;;) {
		rc = net_client_call(c, PROTO_KEYS, &m, PROTO_KEYS_REPLY, &hdr, &r);
		if (rc) {
			if (cli->json)
				printf("]}\n");
			rc = cli_fail_rc(c, "keys", rc);
			net_client_free(c);
			return rc;
		}
		const struct proto_keys_reply *k = &r.keys_reply;
		for (uint16_t i = 0; i < k->count; i++)
			print_key(cli, &k->keys[i], listed++ == 0);
		if (!(hdr.flags & PROTO_F_MORE) || k->count == 0 ||
		    k->keys[k->count - 1].key_id == UINT32_MAX)
			break;
		m.keys.from = k->keys[k->count - 1].key_id + 1;
	}
	net_client_free(c);
	const struct proto_keys_reply *k = &r.keys_reply;
	if (cli->json) {
		printf("],\"unknown_chunks\":%" PRIu64 ",\"unknown_bytes\":%" PRIu64 "}\n",
		       k->unknown_chunks, k->unknown_bytes);
		return CLI_OK;
	}
	if (listed == 0)
		printf("(no chunks)\n");
	if (k->unknown_chunks)
		printf("%" PRIu64 " chunk(s) (%s) of unknown key: no mirror had a good copy "
		       "to read it from; see `store scrub`\n", k->unknown_chunks,
		       cli_bytes(k->unknown_bytes, sz, sizeof(sz)));
	printf("a data key id not listed seals no chunk of a kept checkpoint\n");
	return CLI_OK;
}

static const struct {
	const char *name;
	const char *help;
	int (*run)(struct cli *, const struct cli_args *);
	const char *opts;
	const char *flags;
} subs[] = {
	{ "put", "PROCESS FILE --sequence N [--incarnation N] [--node ID] [--spec TEXT] [--chunk-size BYTES]",
	  do_put, "incarnation sequence node spec chunk-size", "" },
	{ "get", "PROCESS [--sequence N] [--incarnation N] (--output FILE | --meta)",
	  do_get, "incarnation sequence output", "meta" },
	{ "list", "[--process P] [--node ID]", do_list, "node process", "" },
	{ "claim", "PROCESS --claimant NAME [--lease MS]", do_claim, "claimant lease", "" },
	{ "commit", "PROCESS CLAIM_ID --node ID", do_commit, "node", "" },
	{ "release", "PROCESS CLAIM_ID", do_release, "", "" },
	{ "delete", "PROCESS (--incarnation N --sequence N | --all)", do_delete,
	  "incarnation sequence", "all" },
	{ "scrub", "[--no-repair]   verify every byte on every mirror, repair", do_scrub, "", "no-repair" },
	{ "status", "               mirrors and counts", do_status, "", "" },
	{ "keys", "                 chunks and bytes each data key id seals", do_keys, "", "" },
};

int cmd_store(struct cli *cli, int argc, char **argv)
{
	struct cli_args a;
	int rc;

	if (argc < 2 && cli->json)
		return cli_usage("store: give a subcommand: put, get, list, claim, commit, "
				 "release, delete, scrub or status");
	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		FILE *f = argc < 2 ? stderr : stdout;
		fprintf(f, "usage: rtcmsctl [--store HOST:PORT] [--key FILE] store SUBCOMMAND\n\n");
		for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++)
			fprintf(f, "  store %-8s %s\n", subs[i].name, subs[i].help);
		return argc < 2 ? CLI_USAGE : CLI_OK;
	}
	for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
		if (strcmp(subs[i].name, argv[1]) != 0)
			continue;
		if (cli_wants_help(argc, argv, 2)) {
			printf("usage: rtcmsctl store %s %s\n", subs[i].name,
			       subs[i].help);
			return CLI_OK;
		}
		if ((rc = cli_args_parse(argc, argv, 2, subs[i].opts, subs[i].flags, &a)))
			return rc;
		return subs[i].run(cli, &a);
	}
	return cli_usage("unknown store subcommand \"%s\"", argv[1]);
}
