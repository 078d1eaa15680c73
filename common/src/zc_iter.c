/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* zc_move(): one primitive for every byte the daemon moves. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "zc_iter.h"

#define ZC_BOUNCE_SIZE (64 * 1024)

/* The copy fallback's buffer: one per thread, in .tbss until first used. */
static __thread char zc_bounce[ZC_BOUNCE_SIZE] __attribute__((aligned(4096)));

void zc_iter_pipe(struct zc_iter *it, int fd, size_t count)
{
	memset(it, 0, sizeof(*it));
	it->kind = ZC_ITER_PIPE;
	it->fd = fd;
	it->count = count;
}

void zc_iter_file(struct zc_iter *it, int fd, off_t pos, size_t count)
{
	memset(it, 0, sizeof(*it));
	it->kind = ZC_ITER_FILE;
	it->fd = fd;
	it->pos = pos;
	it->count = count;
}

void zc_iter_stream(struct zc_iter *it, int fd, size_t count)
{
	zc_iter_file(it, fd, -1, count);
}

void zc_iter_mem(struct zc_iter *it, void *base, size_t len)
{
	memset(it, 0, sizeof(*it));
	it->kind = ZC_ITER_MEM;
	it->fd = -1;
	it->iov[0].iov_base = base;
	it->iov[0].iov_len = len;
	it->nr_iov = 1;
	it->count = len;
}

int zc_iter_memv(struct zc_iter *it, const struct iovec *iov, unsigned int nr)
{
	unsigned int i;

	if (nr > ZC_ITER_MAX_IOV)
		return -EINVAL;
	memset(it, 0, sizeof(*it));
	it->kind = ZC_ITER_MEM;
	it->fd = -1;
	for (i = 0; i < nr; i++) {
		it->iov[i] = iov[i];
		it->count += iov[i].iov_len;
	}
	it->nr_iov = nr;
	return 0;
}

void zc_iter_advance(struct zc_iter *it, size_t n)
{
	if (n > it->count)
		n = it->count;
	it->count -= n;
	switch (it->kind) {
	case ZC_ITER_FILE:
		if (it->pos >= 0)
			it->pos += (off_t)n;
		break;
	case ZC_ITER_MEM:
		while (n && it->iov_idx < it->nr_iov) {
			size_t left = it->iov[it->iov_idx].iov_len - it->iov_off;

			if (n < left) {
				it->iov_off += n;
				n = 0;
			} else {
				n -= left;
				it->iov_idx++;
				it->iov_off = 0;
			}
		}
		break;
	case ZC_ITER_PIPE:
		break;
	}
}

/*
 * The memory iterator's next @len bytes as an iovec array of at most @max
 * entries; returns how many it filled.
 */
static int mem_segments(const struct zc_iter *it, size_t len, struct iovec *out, int max)
{
	unsigned int i = it->iov_idx;
	size_t off = it->iov_off;
	int n = 0;

	while (len && i < it->nr_iov && n < max) {
		size_t seg = it->iov[i].iov_len - off;

		if (seg > len)
			seg = len;
		if (seg) {
			out[n].iov_base = (char *)it->iov[i].iov_base + off;
			out[n].iov_len = seg;
			n++;
			len -= seg;
		}
		i++;
		off = 0;
	}
	return n;
}

static off_t *file_pos(struct zc_iter *it)
{
	return it->pos >= 0 ? &it->pos : NULL;
}

/* Bytes from a pipe or file into memory; one system call. */
/*
 * A stream destination is a message device such as /dev/fuse: what is
 * written there is seen at once by the other side, so its bytes are counted
 * before the call (see zc_stat_expect); everything else after it.
 */
static bool is_stream(const struct zc_iter *it)
{
	return it->kind == ZC_ITER_FILE && it->pos < 0;
}

static size_t iov_total(const struct iovec *iov, int nr)
{
	size_t total = 0;
	int i;

	for (i = 0; i < nr; i++)
		total += iov[i].iov_len;
	return total;
}

static ssize_t read_into_mem(struct zc_iter *src, const struct iovec *iov, int nr,
			     struct zc_stats *st)
{
	ssize_t n;

	if (src->kind == ZC_ITER_FILE && src->pos >= 0)
		n = preadv(src->fd, iov, nr, src->pos);
	else
		n = readv(src->fd, iov, nr);
	if (n < 0)
		return -errno;
	zc_stat_bytes(st, ZC_BYTES_COPY, (uint64_t)n);
	return n;
}

/* Bytes from memory into a pipe or file; one system call. */
static ssize_t write_from_mem(struct zc_iter *dst, const struct iovec *iov, int nr,
			      unsigned int flags, struct zc_stats *st)
{
	size_t len = is_stream(dst) ? iov_total(iov, nr) : 0;
	ssize_t n;

	if (dst->kind == ZC_ITER_PIPE && (flags & ZC_MOVE_GIFT)) {
		n = vmsplice(dst->fd, iov, (unsigned long)nr, 0);
		if (n < 0)
			return -errno;
		zc_stat_bytes(st, ZC_BYTES_VMSPLICE, (uint64_t)n);
		return n;
	}
	zc_stat_expect(st, ZC_BYTES_COPY, len);
	if (dst->kind == ZC_ITER_FILE && dst->pos >= 0)
		n = pwritev(dst->fd, iov, nr, dst->pos);
	else
		n = writev(dst->fd, iov, nr);
	if (n < 0)
		n = -errno;
	zc_stat_settle(st, ZC_BYTES_COPY, len, n);
	return n;
}

/*
 * Copy through the thread's bounce buffer, for the pairs the kernel cannot
 * connect directly. Whatever was taken from @src is written out in full
 * (a pipe cannot give bytes back), so a short count means an error or
 * end of data.
 */
static ssize_t move_bounce(struct zc_iter *dst, struct zc_iter *src, size_t len,
			   struct zc_stats *st)
{
	struct iovec iov = { .iov_base = zc_bounce, .iov_len = len };
	struct zc_iter out;
	ssize_t got, put;
	size_t done = 0;

	if (iov.iov_len > ZC_BOUNCE_SIZE)
		iov.iov_len = ZC_BOUNCE_SIZE;
	do
		got = read_into_mem(src, &iov, 1, st);
	while (got == -EINTR);
	if (got <= 0)
		return got;
	/* Write all of it at dst's position without advancing dst yet. */
	out = *dst;
	while (done < (size_t)got) {
		struct iovec w = { .iov_base = zc_bounce + done, .iov_len = (size_t)got - done };

		put = write_from_mem(&out, &w, 1, 0, st);
		if (put == -EINTR)
			continue;
		if (put <= 0)
			return done ? (ssize_t)done : (put < 0 ? put : -EIO);
		if (out.kind == ZC_ITER_FILE && out.pos >= 0)
			out.pos += put;
		done += (size_t)put;
	}
	return (ssize_t)done;
}

static ssize_t move_splice(struct zc_iter *dst, struct zc_iter *src, size_t len,
			   struct zc_stats *st)
{
	off_t *in_pos = src->kind == ZC_ITER_FILE ? file_pos(src) : NULL;
	off_t *out_pos = dst->kind == ZC_ITER_FILE ? file_pos(dst) : NULL;
	off_t in_copy = in_pos ? *in_pos : 0, out_copy = out_pos ? *out_pos : 0;
	size_t expect = is_stream(dst) ? len : 0;
	ssize_t n;

	/* splice() advances the offsets it is given; zc_iter_advance does that. */
	zc_stat_expect(st, ZC_BYTES_SPLICE, expect);
	n = splice(src->fd, in_pos ? &in_copy : NULL, dst->fd, out_pos ? &out_copy : NULL, len,
		   SPLICE_F_MOVE);
	if (n < 0)
		n = -errno;
	zc_stat_settle(st, ZC_BYTES_SPLICE, expect, n);
	return n;
}

static ssize_t move_file_to_file(struct zc_iter *dst, struct zc_iter *src, size_t len,
				 struct zc_stats *st)
{
	off_t in = src->pos, out = dst->pos;
	ssize_t n;

	n = copy_file_range(src->fd, &in, dst->fd, &out, len, 0);
	if (n < 0)
		return -errno;
	zc_stat_bytes(st, ZC_BYTES_COPY_FILE_RANGE, (uint64_t)n);
	return n;
}

static ssize_t move_mem_to_mem(struct zc_iter *dst, struct zc_iter *src, size_t len,
			       struct zc_stats *st)
{
	struct iovec d, s;
	size_t n;

	if (mem_segments(dst, len, &d, 1) < 1 || mem_segments(src, len, &s, 1) < 1)
		return 0;
	n = d.iov_len < s.iov_len ? d.iov_len : s.iov_len;
	memcpy(d.iov_base, s.iov_base, n);
	zc_stat_bytes(st, ZC_BYTES_COPY, n);
	return (ssize_t)n;
}

static bool is_seekable_file(const struct zc_iter *it)
{
	return it->kind == ZC_ITER_FILE && it->pos >= 0;
}

/* One step of a move: one system call where the pair allows it. */
static ssize_t move_step(struct zc_iter *dst, struct zc_iter *src, size_t len, unsigned int flags,
			 struct zc_stats *st)
{
	struct iovec iov[ZC_ITER_MAX_IOV];
	ssize_t n;
	int nr;

	if (src->kind == ZC_ITER_MEM && dst->kind == ZC_ITER_MEM)
		return move_mem_to_mem(dst, src, len, st);
	if (src->kind == ZC_ITER_MEM) {
		nr = mem_segments(src, len, iov, ZC_ITER_MAX_IOV);
		return write_from_mem(dst, iov, nr, flags, st);
	}
	if (dst->kind == ZC_ITER_MEM) {
		nr = mem_segments(dst, len, iov, ZC_ITER_MAX_IOV);
		return read_into_mem(src, iov, nr, st);
	}
	if (is_seekable_file(src) && is_seekable_file(dst)) {
		if (!(flags & ZC_MOVE_NO_SPLICE)) {
			n = move_file_to_file(dst, src, len, st);
			if (n != -EXDEV && n != -EINVAL && n != -EOPNOTSUPP && n != -ENOSYS)
				return n;
			zc_stat_fallback(st, ZC_FALLBACK_CFR);
		}
		return move_bounce(dst, src, len, st);
	}
	if (src->kind == ZC_ITER_FILE && dst->kind == ZC_ITER_FILE)
		return move_bounce(dst, src, len, st);
	/* At least one side is a pipe. */
	if (!(flags & ZC_MOVE_NO_SPLICE)) {
		n = move_splice(dst, src, len, st);
		if (n != -EINVAL)
			return n;
		zc_stat_fallback(st, ZC_FALLBACK_SPLICE_EINVAL);
	}
	return move_bounce(dst, src, len, st);
}

ssize_t zc_move(struct zc_iter *dst, struct zc_iter *src, size_t len, unsigned int flags,
		struct zc_stats *st)
{
	size_t total = 0;
	ssize_t n;

	if (len > dst->count)
		len = dst->count;
	if (len > src->count)
		len = src->count;
	while (total < len) {
		n = move_step(dst, src, len - total, flags, st);
		/* A message device's caller wants to see the interruption. */
		if (n == -EINTR && !(flags & ZC_MOVE_ONCE))
			continue;
		if (n < 0) {
			if (total)
				break;
			return n;
		}
		if (n == 0)
			break;
		zc_iter_advance(src, (size_t)n);
		zc_iter_advance(dst, (size_t)n);
		total += (size_t)n;
		if (flags & ZC_MOVE_ONCE)
			break;
	}
	return (ssize_t)total;
}

void zc_pipe_drain(int pipe_rd, struct zc_stats *st)
{
	ssize_t n;

	for (;;) {
		n = read(pipe_rd, zc_bounce, sizeof(zc_bounce));
		if (n > 0) {
			zc_stat_bytes(st, ZC_BYTES_COPY, (uint64_t)n);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		break;
	}
}

void *zc_iter_pull(struct zc_iter *it, void *buf, size_t len, struct zc_stats *st)
{
	struct zc_iter mem;

	if (it->count < len)
		return NULL;
	if (it->kind == ZC_ITER_MEM && it->iov_idx < it->nr_iov &&
	    it->iov[it->iov_idx].iov_len - it->iov_off >= len) {
		void *p = (char *)it->iov[it->iov_idx].iov_base + it->iov_off;

		zc_iter_advance(it, len);
		return p;
	}
	zc_iter_mem(&mem, buf, len);
	return zc_move(&mem, it, len, 0, st) == (ssize_t)len ? buf : NULL;
}

void zc_iter_discard(struct zc_iter *it, struct zc_stats *st)
{
	if (it->kind == ZC_ITER_PIPE && it->count)
		zc_pipe_drain(it->fd, st);
	it->count = 0;
}

ssize_t zc_send_msg(int fd, const struct iovec *iov, int count, struct zc_stats *st)
{
	struct zc_iter dev, msg;
	ssize_t n;

	if (zc_iter_memv(&msg, iov, (unsigned int)count) < 0) {
		n = writev(fd, iov, count);
		if (n < 0)
			return -errno;
		zc_stat_bytes(st, ZC_BYTES_COPY, (uint64_t)n);
		return n;
	}
	zc_iter_stream(&dev, fd, msg.count);
	return zc_move(&dev, &msg, msg.count, ZC_MOVE_ONCE, st);
}
