/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * INIT negotiation beyond what libfuse 3.14 knows: the flags the library
 * sets in the INIT reply libfuse built (FUSE_HANDLE_KILLPRIV_V2, and
 * flags2: kernel passthrough, FUSE over io_uring, no export support, mmap
 * of direct_io files). Once libfuse negotiates these itself, this module
 * goes.
 */
#ifndef ZC_NEGOTIATE_H
#define ZC_NEGOTIATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct fuse_in_header;
struct iovec;
struct zc_chan;

/* An INIT request on its way to libfuse: what the kernel offers. */
void zc_negotiate_init_request(struct zc_chan *c, const struct fuse_in_header *hdr, const void *arg,
			       size_t len);

/*
 * A reply on its way out: amend it when it answers INIT (true), else
 * leave it (false).
 */
bool zc_negotiate_init_reply(struct zc_chan *c, struct iovec *iov, int count);

/* The INIT reply amended by zc_negotiate_init_reply() was sent (@sent) or not. */
void zc_negotiate_init_sent(struct zc_chan *c, bool sent);

#endif /* ZC_NEGOTIATE_H */
