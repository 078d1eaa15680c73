/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Dispatch: every request a transport received is served here, through
 * one opcode table. Each entry says how the opcode's arguments lie (the
 * smallest valid request) and which handler serves it; a request the
 * table does not know is answered ENOSYS, one shorter than its entry or
 * with a name missing its NUL EINVAL, both without reaching a handler.
 * Each request gets exactly one reply, by its route (FORGET, BATCH_FORGET,
 * INTERRUPT and NOTIFY_REPLY none).
 */
#ifndef ZC_DISPATCH_H
#define ZC_DISPATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "zc_proto.h"

struct zc_req;

/* One opcode's entry in the table. */
struct zc_op {
	/* For -d, as the protocol names it ("LOOKUP"). */
	const char *name;
	struct zc_layout in;
	/* The kernel expects no reply. */
	bool no_reply;
	/* NULL: answered ENOSYS (or dropped, with no_reply). */
	void (*serve)(struct zc_req *req);
};

/* The table's entry for @opcode, or NULL when the library does not know it. */
const struct zc_op *zc_dispatch_op(uint32_t opcode);

/*
 * Serve @req, whose @len bytes (headers first) req->src holds, received by
 * a transport; the transport fills in its route and buffers.
 */
void zc_dispatch(struct zc_req *req, size_t len);

#endif /* ZC_DISPATCH_H */
