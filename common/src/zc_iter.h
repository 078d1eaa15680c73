/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The pipe-backed iterator: a cursor over bytes that live in a pipe, a file
 * region (or a stream such as /dev/fuse) or memory. zc_move() moves bytes
 * between any two iterators with the cheapest mechanism the kernel offers
 * for the pair and advances both; copy mode and splice mode differ only in
 * the kinds of iterators the caller builds.
 */
#ifndef ZC_ITER_H
#define ZC_ITER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "zc_stats.h"

enum zc_iter_kind {
	ZC_ITER_PIPE, /* bytes queued in a pipe (fd: its read or write end) */
	ZC_ITER_FILE, /* a file region at pos, or a stream when pos < 0 */
	ZC_ITER_MEM,  /* an iovec array */
};

#define ZC_ITER_MAX_IOV 8

struct zc_iter {
	enum zc_iter_kind kind;
	size_t count; /* bytes left */
	int fd;
	off_t pos; /* ZC_ITER_FILE: offset, or -1 for a stream */
	unsigned int nr_iov;
	unsigned int iov_idx;
	size_t iov_off;
	struct iovec iov[ZC_ITER_MAX_IOV];
};

void zc_iter_pipe(struct zc_iter *it, int fd, size_t count);
void zc_iter_file(struct zc_iter *it, int fd, off_t pos, size_t count);
void zc_iter_stream(struct zc_iter *it, int fd, size_t count);
void zc_iter_mem(struct zc_iter *it, void *base, size_t len);
/* Up to ZC_ITER_MAX_IOV segments; -EINVAL beyond. */
int zc_iter_memv(struct zc_iter *it, const struct iovec *iov, unsigned int nr);

/* Skip @n bytes (at most count). */
void zc_iter_advance(struct zc_iter *it, size_t n);

/* zc_move() flags */
#define ZC_MOVE_ONCE	  (1u << 0) /* one system call: a message device */
#define ZC_MOVE_NO_SPLICE (1u << 1) /* copy even where splice would work */
#define ZC_MOVE_GIFT	  (1u << 2) /* memory -> pipe: vmsplice; memory stays unchanged until read */

/*
 * Move up to @len bytes from @src to @dst (never more than either holds) and
 * advance both by what moved. Short transfers and EINTR are retried (EINTR
 * is returned with ZC_MOVE_ONCE, for a caller that must notice signals); EAGAIN
 * (a full or empty non-blocking pipe) and end of file stop the move. A file
 * system that refuses splice or copy_file_range is served by copying, and
 * the fallback is counted in @st (which may be NULL).
 *
 * Returns the bytes moved, or a negative errno when nothing moved.
 */
ssize_t zc_move(struct zc_iter *dst, struct zc_iter *src, size_t len, unsigned int flags,
		struct zc_stats *st);

/* Discard what is left in a pipe (after a failed move). */
void zc_pipe_drain(int pipe_rd, struct zc_stats *st);

/*
 * The next @len bytes of @it in memory: in place for a memory iterator,
 * else moved into @buf. NULL when fewer bytes are there.
 */
void *zc_iter_pull(struct zc_iter *it, void *buf, size_t len, struct zc_stats *st);

/* Discard what is left of @it (the rest of a request in a pipe). */
void zc_iter_discard(struct zc_iter *it, struct zc_stats *st);

/* One message from memory to a message device (/dev/fuse) in one call: bytes or -errno. */
ssize_t zc_send_msg(int fd, const struct iovec *iov, int count, struct zc_stats *st);

#endif /* ZC_ITER_H */
