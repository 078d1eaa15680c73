/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Kernel passthrough (-o passthrough): backing files registered with the
 * kernel (FUSE_DEV_IOC_BACKING_OPEN) so that it reads and writes them
 * without the daemon.
 */
#ifndef ZC_BACKING_H
#define ZC_BACKING_H

#include <stdint.h>

struct iovec;
struct zc_chan;

/* Why kernel passthrough is off for a mount that asked for it. */
enum zc_backing_refused {
	ZC_BACKING_REFUSED_NONE,
	ZC_BACKING_REFUSED_KERNEL,
	ZC_BACKING_REFUSED_WRITEBACK,
	ZC_BACKING_REFUSED_PERMISSION,
};

/*
 * Kernel passthrough (zc_backing.c). zc_backing_setup() before mounting
 * asks for it at INIT; zc_backing_negotiated() reports the outcome.
 * zc_backing_open() decides for one open of regular file @ino whose backend
 * offered @backing_fd (or -1): a backing id > 0 to send with
 * zc_backing_reply_with(), or 0 for the pipe path, the cause counted. Every open
 * it saw ends with zc_backing_release(). The transport calls
 * zc_backing_amend_reply() on every reply it sends.
 */
int zc_backing_setup(struct zc_chan *c);
void zc_backing_fini(struct zc_chan *c);
void zc_backing_negotiated(struct zc_chan *c);
int32_t zc_backing_open(struct zc_chan *c, uint64_t ino, int backing_fd);
void zc_backing_release(struct zc_chan *c, uint64_t ino);
void zc_backing_reply_with(int32_t backing_id);
void zc_backing_amend_reply(struct iovec *iov, int count);

#endif /* ZC_BACKING_H */
