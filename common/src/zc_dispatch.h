/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Dispatch: every request a transport received is served here, READ and
 * WRITE through the data path, TMPFILE (unknown to libfuse 3.14) like a
 * CREATE, everything else through libfuse's parser and the callbacks of
 * zc_lowlevel.c. Each request gets exactly one reply, by its route.
 */
#ifndef ZC_DISPATCH_H
#define ZC_DISPATCH_H

#include <stddef.h>
#include <stdint.h>

struct zc_req;

/*
 * Serve @req, whose @len bytes (headers first) req->src holds, received by
 * a transport; the transport fills in its route and buffers.
 */
void zc_dispatch(struct zc_req *req, size_t len);

#endif /* ZC_DISPATCH_H */
