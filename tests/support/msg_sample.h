/*
 * msg_sample.h - sample payloads for the codec tests (test_msg_golden,
 * test_proto): deterministic, and as full as each field's domain allows.
 */
#ifndef RTCMS_TEST_MSG_SAMPLE_H
#define RTCMS_TEST_MSG_SAMPLE_H

#include <stdint.h>

#include "proto/msg.h"

/*
 * Fill *m with one message of the given type: every field non-zero or
 * non-empty where the decoder allows it (a GET's base must be 0), lists of
 * two entries. Lists and blobs point to static storage of this module
 * (overwritten by the next call for the same type). A type without a
 * payload leaves *m zeroed.
 */
void msg_sample_fill(uint8_t type, union proto_msg *m);

#endif
