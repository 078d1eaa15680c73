/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Kernel passthrough (-o passthrough): an opened file's backing file is
 * registered with the kernel (FUSE_DEV_IOC_BACKING_OPEN) so that the kernel
 * reads and writes it without the daemon.
 */
#ifndef ZC_BACKING_H
#define ZC_BACKING_H

#include <stdbool.h>
#include <stdint.h>

struct zc_chan;

/* Why kernel passthrough is off for a mount that asked for it. */
enum zc_backing_refused {
	ZC_BACKING_REFUSED_NONE,
	ZC_BACKING_REFUSED_KERNEL,
	ZC_BACKING_REFUSED_WRITEBACK,
	ZC_BACKING_REFUSED_PERMISSION,
};

/*
 * zc_backing_setup() before mounting asks for it at INIT (c->backing is set
 * from then on); negotiation says why the kernel did not grant it with
 * zc_backing_refuse(), and zc_backing_negotiated() reports the outcome.
 * zc_backing_open() decides for one open of regular file @ino whose backend
 * offered @backing_fd (or -1): a backing id > 0 for the open's reply, or
 * 0 for the data path, the
 * cause counted. With @cache, the open prefers the mount's page cache: it
 * is passed through only when the inode is (the kernel keeps one mode per
 * inode), and is otherwise counted as cached, not as a fallback. Every
 * open it saw ends with zc_backing_release().
 */
int zc_backing_setup(struct zc_chan *c);
void zc_backing_fini(struct zc_chan *c);
void zc_backing_refuse(struct zc_chan *c, enum zc_backing_refused why);
bool zc_backing_offered(const struct zc_chan *c, uint32_t kernel_flags2);
void zc_backing_negotiated(struct zc_chan *c);
int32_t zc_backing_open(struct zc_chan *c, uint64_t ino, int backing_fd, bool cache, bool writable);
/* Release one open of @ino: true when it was for writing and in passthrough. */
bool zc_backing_release(struct zc_chan *c, uint64_t ino, bool writable);
bool zc_backing_written_behind(struct zc_chan *c, uint64_t ino);

#endif /* ZC_BACKING_H */
