/* fuzz_msg.c - every payload decoder on arbitrary bytes; a decoded message
 * must re-encode to bytes that decode again to the same encoding. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t out1[PROTO_MAX_PAYLOAD], out2[PROTO_MAX_PAYLOAD];
static struct proto_list_entry e1[PROTO_LIST_MAX], e2[PROTO_LIST_MAX];
static struct proto_node_entry nodes1[PROTO_NODES_MAX], nodes2[PROTO_NODES_MAX];
static struct proto_proc_entry procs1[PROTO_PROCS_MAX], procs2[PROTO_PROCS_MAX];
static struct proto_agent_proc ap1[PROTO_PROCS_MAX], ap2[PROTO_PROCS_MAX];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	union proto_msg m, d;

	if (size < 1)
		return 0;
	uint8_t type = data[0];
	memset(&m, 0, sizeof(m));
	m.list_reply.entries = e1;
	m.mstatus.nodes = nodes1;
	m.mstatus.procs = procs1;
	if (type == PROTO_PROCS)
		m.procs.procs = ap1;
	if (proto_msg_decode(type, data + 1, size - 1, &m) < 0)
		return 0;
	int n = proto_msg_encode(type, &m, out1, sizeof(out1));
	if (n < 0)
		abort(); /* whatever decodes must encode */
	memset(&d, 0, sizeof(d));
	d.list_reply.entries = e2;
	d.mstatus.nodes = nodes2;
	d.mstatus.procs = procs2;
	if (type == PROTO_PROCS)
		d.procs.procs = ap2;
	if (proto_msg_decode(type, out1, (size_t)n, &d) != n)
		abort();
	int n2 = proto_msg_encode(type, &d, out2, sizeof(out2));
	if (n2 != n || memcmp(out1, out2, (size_t)n) != 0)
		abort();
	return 0;
}
