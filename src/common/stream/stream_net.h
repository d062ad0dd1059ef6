/*
 * stream_net.h - checkpoint streams over a connection: the sender (a
 * checkpoint's chunks as CHUNK frames and the end frame), the receiver
 * (frames through a verifier into a sink), and the network relay sink
 * (verified frames forwarded to another connection). Blocking, on the
 * caller's thread. A connection is a port: an authenticated net_client
 * (stream_port_client()), or whatever else speaks frames (the agent's
 * peer, a script in a unit test).
 */
#ifndef RTCMS_STREAM_STREAM_NET_H
#define RTCMS_STREAM_STREAM_NET_H

#include "net/client.h"
#include "stream/stream.h"

/* ---- port: the frames of one connection ---------------------------------- */

/*
 * recv: the next frame (borrowed pointers in *msg valid until the next
 * recv); 0 or the connection's error. An ERROR frame is a frame.
 * send: one frame; with PROTO_F_REPLY in flags a reply to request, else a
 * request (request unused). 0 or the connection's error.
 * peer_error: keeps an ERROR the stream received (may be NULL).
 * mac_key: the chunk MAC key (proto/session.h) with which a source adds
 * each sealed chunk's MAC for the store (NULL: none is added, and a store
 * refuses such chunks).
 */
struct stream_port {
	int (*recv)(void *ctx, struct proto_header *hdr, union proto_msg *msg);
	int (*send)(void *ctx, uint8_t type, uint16_t flags, uint32_t request,
		    const union proto_msg *msg);
	void (*peer_error)(void *ctx, const struct proto_error *e);
	void *ctx;
	const struct proto_key *mac_key;
};

/* The port of net_client c (borrowed: c outlives the port); an ERROR
 * received is kept for net_client_last_error(). */
struct stream_port stream_port_client(struct net_client *c);

/* ---- sender -------------------------------------------------------------- */

/*
 * Where a stream's frames go: as requests (a PUT to the store, a RESTORE
 * to an agent: no flags) or as the replies to one request (a GET or PULL
 * answered: PROTO_F_MORE on every frame but the end).
 */
struct stream_out {
	struct stream_port port;
	bool reply;
	uint32_t request;                  /* with reply: the request answered */
};

/* One frame of the stream; more: not its last frame. 0 or the
 * connection's error. */
int stream_out_send(const struct stream_out *o, uint8_t type, bool more,
		    const union proto_msg *m);

/* Every chunk of k as CHUNK frames in offset order, the data in memory at
 * bytes (k cut from it). 0 or the connection's error (then stop: the
 * stream is broken). */
int stream_send_chunks(const struct stream_out *o, const struct stream_chunks *k,
		       const uint8_t *bytes);

/* The same with the data read chunk by chunk into buf (k->chunk_size
 * bytes); also the reader's error. The reader must give the bytes it gave
 * the chunker, or the receiver refuses the chunk (RTCMS_ECORRUPT). */
int stream_send_read(const struct stream_out *o, const struct stream_chunks *k,
		     stream_read_fn read, void *ctx, uint8_t *buf);

/* The end frame (PROTO_PUT_END or PROTO_GET_END) with the chunk count. */
int stream_send_end(const struct stream_out *o, uint8_t end_type, uint32_t count);

/* The end frame of a chain's link: as stream_send_end, with MORE (the
 * next link's metadata frame follows), as a request or a reply. */
int stream_send_link_end(const struct stream_out *o, uint8_t end_type, uint32_t count);

/* ---- receiver ------------------------------------------------------------ */

/* Where a received stream failed. */
enum stream_fault {
	STREAM_FAULT_NONE,
	STREAM_FAULT_CONN,    /* the connection failed (closed, timed out, bad frame) */
	STREAM_FAULT_PEER,    /* the peer sent ERROR (kept by the port's peer_error) */
	STREAM_FAULT_FRAME,   /* a frame that is neither CHUNK nor the end */
	STREAM_FAULT_VERIFY,  /* the verifier refused the stream (why says what) */
	STREAM_FAULT_SINK,    /* the sink failed */
};

/* How a received stream went when it did not fail. */
enum stream_outcome {
	STREAM_ENDED,         /* the end frame came, all verified, the sink ended */
	STREAM_STOPPED,       /* the sink needed no more: the rest is unread */
};

struct stream_result {
	enum stream_outcome outcome;       /* rc 0 */
	enum stream_fault fault;           /* rc < 0 */
	uint32_t chunks;                   /* verified chunks handed on */
	bool at_end;                       /* rc < 0: it failed on the end frame (the
					    * verifier's end checks, the sink's end) */
	struct proto_get_end get_end;      /* a GET_END's fields */
	bool more;                         /* the end frame had MORE: a chain's
					    * next link follows */
	char why[PROTO_TEXT_MAX + 1];      /* the verifier's reason, else "" */
};

/* How to read a stream. */
struct stream_in {
	struct stream_port port;
	uint8_t end_type;                  /* PROTO_GET_END or PROTO_PUT_END */
	uint64_t max_size;                 /* cap on the image (0: none) */
	unsigned flags;                    /* enum stream_verify_flags */
	/* after the verifier or the sink failed, read on to the end frame
	 * (so the peer can be answered on the same connection) */
	bool drain;
	/* the data keys of a reader of checkpoint contents (the restore
	 * target): each sealed chunk is opened once, before the verifier, and
	 * the sink gets its plaintext (opened); a chunk under a key the ring
	 * lacks, or that does not open, is ECORRUPT. NULL: sealed chunks are
	 * checked by their checksum and passed on sealed (a hop). */
	const struct datakey_ring *keys;
	/* with keys: where the plaintext of the sealed chunk at offset (len
	 * bytes) may be opened straight into (the sink's own memory, e.g. the
	 * area slot it assembles the image in: stream_area_sink_place), or
	 * NULL: into a buffer of the receive's, the sink copies it. The chunk
	 * is opened before the verifier places it: the sink's answer must
	 * hold len bytes whatever the offset. */
	uint8_t *(*place)(void *ctx, uint64_t offset, uint32_t len);
	void *place_ctx;
};

/*
 * Receive the stream meta announced (its frame read by the caller):
 * begin the sink, take CHUNK frames, each verified before the sink gets
 * it, until the end frame, which is verified and then ends the sink. On
 * a failure after the sink began it is aborted. Returns 0 (res->outcome
 * says whether the stream ended or the sink stopped it) or the failure's
 * code (res->fault says where; on STREAM_FAULT_PEER the peer's code).
 * Unless the stream ended, the connection is mid-stream: close it.
 */
int stream_recv(const struct stream_in *in, const struct proto_ckpt_meta *meta,
		struct stream_sink *sink, struct stream_result *res);

/*
 * Receive an image or a chain (docs/protocol.md): the stream meta
 * announced, and while its end frame has MORE, the next link's begin_type
 * frame (PROTO_GET_META, PROTO_RESTORE) and its stream, into one sink
 * (begin, chunks and link per link, end after the last). Every link is
 * verified as stream_recv verifies an image, and each must continue the
 * chain (stream_chain_next). *meta ends as the last link's metadata (its
 * spec borrowed from the connection until its next receive); res counts
 * the chunks of every link. With drain, a chain refused in one link is
 * read on to its last end frame. Returns as stream_recv.
 */
int stream_recv_chain(const struct stream_in *in, uint8_t begin_type,
		      struct proto_ckpt_meta *meta, struct stream_sink *sink,
		      struct stream_result *res);

/* ---- network relay ------------------------------------------------------- */

/*
 * A sink that forwards the stream to another connection: the metadata as
 * a begin_type frame (PROTO_RESTORE; 0 for none) with the first chunk (a
 * stream that fails before one arrives reaches nobody), every chunk as
 * CHUNK, and end_type (PROTO_PUT_END) with the count at the end; a chain
 * link by link (each link's end frame with MORE). A failed
 * send is its error; the connection is then unusable. Fields other than
 * sink are read-only; stream_relay_clear() frees the kept metadata.
 */
struct stream_relay {
	struct stream_sink sink;
	struct stream_out out;
	uint8_t begin_type;
	uint8_t end_type;
	bool begun;                        /* the begin frame went out */
	struct proto_ckpt_meta meta;       /* kept from begin until it went out */
	uint8_t *spec;
	uint32_t count;                    /* chunks forwarded */
};
void stream_relay_init(struct stream_relay *r, const struct stream_out *out,
		       uint8_t begin_type, uint8_t end_type);
void stream_relay_clear(struct stream_relay *r);

#endif
