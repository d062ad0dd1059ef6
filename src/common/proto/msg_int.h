/*
 * msg_int.h - inside the payload codecs (msg.c and msg_<family>.c): the
 * byte cursors every codec writes and reads through, and the codec table.
 * Not for use outside src/common/proto.
 *
 * A codec is a pair of functions, encode and decode, for one payload
 * layout; each family file (msg_base.c, msg_store.c, msg_agent.c,
 * msg_manager.c) lists its message types with their name, payload cap and
 * codec in one table, and msg.c looks types up in those tables. The
 * cursors keep the first error: once err is set every later write or read
 * does nothing (reads return 0), so a codec checks err only where a value
 * it read decides what to read next.
 */
#ifndef RTCMS_PROTO_MSG_INT_H
#define RTCMS_PROTO_MSG_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "msg.h"
#include "rtcms_error.h"
#include "util/bytes.h"

/* ---- cursors --------------------------------------------------------- */

struct proto_wr {             /* writes into p[0 .. cap) */
	uint8_t *p;
	size_t cap;
	size_t len;                        /* bytes written */
	int err;                           /* first error (RTCMS_E*), 0 if none */
};

struct proto_rd {             /* reads p[0 .. len) */
	const uint8_t *p;
	size_t len;
	size_t off;                        /* bytes read */
	int err;                           /* first error (RTCMS_E*), 0 if none */
};

/* n bytes of room at the write position, or NULL (ETOOBIG) */
static inline uint8_t *w_take(struct proto_wr *w, size_t n)
{
	if (w->err)
		return NULL;
	if (n > w->cap - w->len) {
		w->err = RTCMS_ETOOBIG;
		return NULL;
	}
	uint8_t *q = w->p + w->len;
	w->len += n;
	return q;
}

/* Set err unless an earlier error is kept. */
static inline void w_fail(struct proto_wr *w, int err)
{
	if (!w->err)
		w->err = err;
}

static inline void w_u8(struct proto_wr *w, uint8_t v)
{
	uint8_t *q = w_take(w, 1);
	if (q)
		*q = v;
}

static inline void w_u16(struct proto_wr *w, uint16_t v)
{
	uint8_t *q = w_take(w, 2);
	if (q)
		put_be16(q, v);
}

static inline void w_u32(struct proto_wr *w, uint32_t v)
{
	uint8_t *q = w_take(w, 4);
	if (q)
		put_be32(q, v);
}

static inline void w_u64(struct proto_wr *w, uint64_t v)
{
	uint8_t *q = w_take(w, 8);
	if (q)
		put_be64(q, v);
}

static inline void w_bytes(struct proto_wr *w, const void *src, size_t n)
{
	uint8_t *q = w_take(w, n);
	if (q && n)
		memcpy(q, src, n);
}

/* Strings: no control characters (< 0x20, 0x7f). */
static inline bool str_ok(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c == 0x7f)
			return false;
	}
	return true;
}

/* str(max): ETOOBIG over max bytes, EINVAL with a control character */
static inline void w_str(struct proto_wr *w, const char *s, size_t max)
{
	size_t n = strnlen(s, max + 1);
	if (w->err)
		return;
	if (n > max) {
		w->err = RTCMS_ETOOBIG;
		return;
	}
	if (!str_ok(s, n)) {
		w->err = RTCMS_EINVAL;
		return;
	}
	w_u16(w, (uint16_t)n);
	w_bytes(w, s, n);
}

/* a process id (EINVAL if invalid), or "" when allow_empty */
static inline void w_process(struct proto_wr *w, const char *s, bool allow_empty)
{
	if (!w->err && !(allow_empty && s[0] == '\0') &&
	    !proto_process_id_valid(s)) {
		w->err = RTCMS_EINVAL;
		return;
	}
	w_str(w, s, PROTO_ID_MAX);
}

/* n bytes at the read position (borrowed), or NULL (EPROTO: too short) */
static inline const uint8_t *r_take(struct proto_rd *r, size_t n)
{
	if (r->err)
		return NULL;
	if (n > r->len - r->off) {
		r->err = RTCMS_EPROTO;
		return NULL;
	}
	const uint8_t *q = r->p + r->off;
	r->off += n;
	return q;
}

static inline uint8_t r_u8(struct proto_rd *r)
{
	const uint8_t *q = r_take(r, 1);
	return q ? *q : 0;
}

static inline uint16_t r_u16(struct proto_rd *r)
{
	const uint8_t *q = r_take(r, 2);
	return q ? get_be16(q) : 0;
}

static inline uint32_t r_u32(struct proto_rd *r)
{
	const uint8_t *q = r_take(r, 4);
	return q ? get_be32(q) : 0;
}

static inline uint64_t r_u64(struct proto_rd *r)
{
	const uint8_t *q = r_take(r, 8);
	return q ? get_be64(q) : 0;
}

/* n bytes into dst (zeros once an error is set) */
static inline void r_bytes(struct proto_rd *r, void *dst, size_t n)
{
	const uint8_t *q = r_take(r, n);
	if (q)
		memcpy(dst, q, n);
	else
		memset(dst, 0, n);
}

/* Copy a str(max) into dst[max + 1]: ETOOBIG over max, EPROTO with a
 * control character. dst is "" on any error. */
static inline void r_str(struct proto_rd *r, char *dst, size_t max)
{
	dst[0] = '\0';
	uint16_t n = r_u16(r);
	if (r->err)
		return;
	if (n > max) {
		r->err = RTCMS_ETOOBIG;
		return;
	}
	const uint8_t *q = r_take(r, n);
	if (!q)
		return;
	if (!str_ok((const char *)q, n)) {
		r->err = RTCMS_EPROTO;
		return;
	}
	memcpy(dst, q, n);
	dst[n] = '\0';
}

/* a process id (EPROTO if invalid), or "" when allow_empty */
static inline void r_process(struct proto_rd *r, char *dst, bool allow_empty)
{
	r_str(r, dst, PROTO_ID_MAX);
	if (!r->err && !(allow_empty && dst[0] == '\0') &&
	    !proto_process_id_valid(dst))
		r->err = RTCMS_EPROTO;
}

/* EPROTO unless ok: a field outside its domain */
static inline void r_check(struct proto_rd *r, bool ok)
{
	if (!r->err && !ok)
		r->err = RTCMS_EPROTO;
}

/* ---- the codec table ------------------------------------------------- */

/*
 * One message type. encode writes m's payload through w, decode reads it
 * from r into m; either reports failure in the cursor's err. Both are
 * NULL for a type without a payload (cap 0). The caller (msg.c) clamps
 * the writer to cap, refuses input over cap, and refuses bytes decode
 * left unread.
 */
struct proto_codec {
	uint8_t type;                      /* enum proto_type */
	const char *name;                  /* "PUT_BEGIN" */
	uint32_t cap;                      /* largest payload, <= PROTO_MAX_PAYLOAD */
	void (*encode)(struct proto_wr *w, const union proto_msg *m);
	void (*decode)(struct proto_rd *r, union proto_msg *m);
};

/* The families' tables (msg_<family>.c), each n entries long. */
extern const struct proto_codec proto_codecs_base[];
extern const size_t proto_codecs_base_n;
extern const struct proto_codec proto_codecs_store[];
extern const size_t proto_codecs_store_n;
extern const struct proto_codec proto_codecs_agent[];
extern const size_t proto_codecs_agent_n;
extern const struct proto_codec proto_codecs_manager[];
extern const size_t proto_codecs_manager_n;

/* Codecs one family shares with another (msg_store.c). */

/* Checkpoint metadata (PUT_BEGIN, GET_META; CKPT_NOTIFY, RESTORE, FROZEN). */
void proto_meta_encode(struct proto_wr *w, const union proto_msg *m);
void proto_meta_decode(struct proto_rd *r, union proto_msg *m);

/* GET and PULL share a layout; only a PULL may name a delta base. */
void proto_get_encode(struct proto_wr *w, const union proto_msg *m);
void proto_get_decode(struct proto_rd *r, union proto_msg *m);
void proto_pull_decode(struct proto_rd *r, union proto_msg *m);

#endif
