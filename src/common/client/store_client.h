/*
 * store_client.h - streaming PUT and GET against rtcms-store over a
 * net_client connection, through the stream module (stream/stream.h):
 * both directions verify every chunk hash and the image hash (a
 * checkpoint is checked at every hop). Memory use is one chunk, whatever
 * the checkpoint size. Also the store writer sink.
 */
#ifndef RTCMS_CLIENT_STORE_CLIENT_H
#define RTCMS_CLIENT_STORE_CLIENT_H

#include <stdbool.h>
#include <stdint.h>

#include "net/client.h"
#include "stream/stream_net.h"

/* Reads len bytes of the image at off into buf; returns 0 or an error. */
typedef stream_read_fn store_client_read_fn;
/* Receives one verified chunk; returns 0 or an error to abort. */
typedef int (*store_client_write_fn)(void *ctx, const struct proto_chunk *chunk);

/* Checkpoints up to this size are streamed right behind PUT_BEGIN. */
#define STORE_CLIENT_STREAM_MAX (4u << 20)

/*
 * Store a checkpoint. meta supplies process, incarnation, sequence, node,
 * size, created_ms and spec; chunk_count and hash are computed here (one
 * hashing pass over the reader, then one sending pass). chunk_size is
 * 1..PROTO_MAX_CHUNK. Returns 0 and *ack once the store has made it
 * durable, or an error (the store's ERROR code, RTCMS_EFENCED etc.).
 * After an error other than a refusal by the store, close the connection:
 * it may be in the middle of a stream.
 */
int store_client_put(struct net_client *c, const struct proto_ckpt_meta *meta,
		     uint32_t chunk_size, store_client_read_fn read, void *ctx,
		     struct proto_put_ack *ack);

/* store_client_put() with each chunk sealed under key (its ids and the
 * image hash keyed: stream/chunk.h); key NULL: plain chunks. */
int store_client_put_sealed(struct net_client *c, const struct proto_ckpt_meta *meta,
			    uint32_t chunk_size, const struct datakey *key,
			    store_client_read_fn read, void *ctx, struct proto_put_ack *ack);

/* What to fetch: type PROTO_GET (from the store) or PROTO_PULL (from an
 * agent, which answers like the store: GET_META, CHUNKs, GET_END). */
struct store_client_query {
	uint8_t type;
	const char *process;
	uint64_t incarnation;              /* 0: any */
	uint64_t sequence;                 /* 0: the latest */
	uint64_t base;                     /* PULL: a delta against it is welcome */
	bool meta_only;                    /* GET: the metadata alone */
	/* a reader of the contents: sealed chunks are opened under these
	 * (stream_in.keys); NULL: passed on sealed */
	const struct datakey_ring *keys;
	/* a relay (the manager): sealed chunks are passed on unread
	 * (STREAM_VERIFY_RELAY) */
	bool relay;
};

/*
 * Fetch a checkpoint into sink: the request, GET_META into *meta_out (with
 * spec_copy, PROTO_SPEC_MAX bytes, its spec is copied there and stays
 * valid; else it is valid until the sink's begin returns), then the stream
 * through the verifier (every chunk hash as it arrives, the count and
 * image hash at the end) into the sink; a delta comes as its chain, link
 * by link (stream_recv_chain: *meta_out ends as the last link's, which is
 * the checkpoint asked for; a sink without a link op refuses a chain with
 * RTCMS_EPROTO). Without meta_only,
 * returns 0 with res->outcome, or the request's error (res->fault
 * STREAM_FAULT_PEER for the peer's refusal) or the stream's (res->fault
 * says where). Unless the stream ended, close the connection.
 */
int store_client_fetch_to(struct net_client *c, const struct store_client_query *q,
			  struct proto_ckpt_meta *meta_out, uint8_t *spec_copy,
			  struct stream_sink *sink, struct stream_result *res);

/*
 * Fetch a checkpoint (sequence 0 = latest; incarnation 0 = any). meta_out
 * is filled from GET_META (its spec pointer is only valid during the call:
 * copy it in the first write callback or pass meta_only). Every chunk is
 * verified before write is called; at the end the image hash is checked
 * (RTCMS_ECORRUPT on mismatch). write may be NULL with meta_only.
 */
int store_client_get(struct net_client *c, const char *process,
		     uint64_t incarnation, uint64_t sequence, int meta_only,
		     struct proto_ckpt_meta *meta_out, store_client_write_fn write,
		     void *ctx, struct proto_get_end *end);

/*
 * The same exchange with another request type: PROTO_PULL fetches a
 * checkpoint from an agent, which answers like the store (GET_META,
 * CHUNKs, GET_END). meta_out is filled before the first write call; with
 * spec_copy (PROTO_SPEC_MAX bytes) its spec is copied there and stays
 * valid, else it is only valid until the first chunk arrives.
 */
int store_client_fetch(struct net_client *c, uint8_t type, const char *process,
		       uint64_t incarnation, uint64_t sequence, int meta_only,
		       struct proto_ckpt_meta *meta_out, uint8_t *spec_copy,
		       store_client_write_fn write, void *ctx,
		       struct proto_get_end *end);
/* How the store answered PUT_BEGIN. */
enum store_put_start {
	STORE_PUT_READY,                   /* send the chunks */
	STORE_PUT_STORED,                  /* it holds it already: *ack, done */
};

/*
 * The store writer: a sink that PUTs the stream it gets into the store on
 * c (PUT_BEGIN with the stream's metadata, sent with the first chunk, so
 * a stream that fails before one arrives reaches nobody; CHUNKs; PUT_END
 * and the durable PUT_ACK at its end). A checkpoint of up to
 * STORE_CLIENT_STREAM_MAX bytes is streamed (PROTO_F_STREAM): its chunks
 * follow PUT_BEGIN without waiting for PUT_READY. If the store holds the
 * checkpoint already it sets existed and is done (the source need not be
 * read on; streamed: known at the end, from the ack).
 * rc is the store's failure (set when one of its calls failed: the caller
 * tells a failing store from a failing source by it); after any failure
 * or abort close c. store_client_sink_clear() frees the kept metadata.
 */
struct store_client_sink {
	struct stream_sink sink;
	struct net_client *c;
	bool begun;                        /* PUT_BEGIN went out */
	bool existed;                      /* already stored: ack is the store's */
	bool streamed;                     /* small: sent without waiting for PUT_READY */
	int rc;
	struct proto_ckpt_meta meta;       /* kept from begin to PUT_BEGIN */
	uint8_t *spec;
	uint32_t count;                    /* chunks sent */
	struct proto_put_ack ack;          /* once ended, or existed */
};
void store_client_sink_init(struct store_client_sink *s, struct net_client *c);
void store_client_sink_clear(struct store_client_sink *s);

/* A reader over a memory buffer (ctx = struct store_client_buf *). */
struct store_client_buf {
	const uint8_t *data;
	uint64_t len;
};
int store_client_read_buf(void *ctx, uint64_t off, uint8_t *buf, size_t len);

/* A reader over a file descriptor (ctx = int *fd), using pread. */
int store_client_read_fd(void *ctx, uint64_t off, uint8_t *buf, size_t len);

#endif
