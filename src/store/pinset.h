/*
 * pinset.h - a counted set of chunk hashes (open addressing). The store
 * pins every chunk an open PUT, GET or scrub uses, and garbage collection
 * never removes a pinned chunk's file. Not thread-safe: the store calls it
 * under its mutex.
 */
#ifndef RTCMS_STORE_PINSET_H
#define RTCMS_STORE_PINSET_H

#include <stddef.h>
#include <stdint.h>

#include "proto/msg.h"

struct pin;

struct pinset {
	struct pin *slots;
	size_t cap;     /* power of two, or 0 */
	size_t used;    /* slots live or tombstoned */
};

/* Add one reference to hash. 0 or RTCMS_ENOMEM. */
int pinset_add(struct pinset *ps, const uint8_t hash[PROTO_HASH_SIZE]);

/* Drop one reference to hash (no-op if absent). */
void pinset_del(struct pinset *ps, const uint8_t hash[PROTO_HASH_SIZE]);

/* 1 if hash has at least one reference. */
int pinset_has(const struct pinset *ps, const uint8_t hash[PROTO_HASH_SIZE]);

/* Free the table; the set is empty afterwards. */
void pinset_free(struct pinset *ps);

#endif
