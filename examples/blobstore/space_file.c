/* SPDX-License-Identifier: MIT */
/*
 * The block space in the backing file: block b at byte b * BS_BLOCK, the
 * superblock slots in blocks 0 and 1. Free blocks are holes punched in the
 * file; the file grows with ftruncate(); fdatasync() makes writes durable.
 * File extents of this file are what the library splices (ops.c).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* FALLOC_FL_* */
#endif
#include <errno.h>
#include <fcntl.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include "blobstore.h"

static int file_read(struct bs_fs *fs, const struct bs_io *io, unsigned int n)
{
	unsigned int i;
	int r;

	for (i = 0; i < n; i++) {
		r = bs_pread(fs->fd, io[i].buf, io[i].len, (off_t)io[i].off);
		if (r < 0)
			return r;
	}
	return 0;
}

static int file_write(struct bs_fs *fs, const struct bs_io *io, unsigned int n)
{
	unsigned int i;
	int r;

	for (i = 0; i < n; i++) {
		r = bs_pwrite(fs->fd, io[i].buf, io[i].len, (off_t)io[i].off);
		if (r < 0)
			return r;
	}
	return 0;
}

/* Punch the blocks out of the file (or write zeros where that is not supported). */
static int file_zero(struct bs_fs *fs, uint64_t start, uint64_t n)
{
	if (fallocate(fs->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)(start * BS_BLOCK),
		      (off_t)(n * BS_BLOCK)) == 0)
		return 0;
	if (errno != EOPNOTSUPP)
		return -errno;
	return bs_write_zeros(fs->fd, (off_t)(start * BS_BLOCK), n * BS_BLOCK);
}

static int file_grow(struct bs_fs *fs, uint64_t want)
{
	if (ftruncate(fs->fd, (off_t)(want * BS_BLOCK)) < 0)
		return errno == EFBIG ? -ENOSPC : -errno;
	if (bs_runs_add(&fs->free, fs->total_blocks, want - fs->total_blocks) < 0)
		return -ENOMEM;
	fs->total_blocks = want;
	return 0;
}

static int file_sync(struct bs_fs *fs)
{
	return fdatasync(fs->fd) < 0 ? -errno : 0;
}

static int file_read_sb(struct bs_fs *fs, int slot, void *buf, size_t len)
{
	return bs_pread(fs->fd, buf, len, (off_t)((uint64_t)slot * BS_BLOCK));
}

static int file_write_sb(struct bs_fs *fs, int slot, const void *buf, size_t len)
{
	return bs_pwrite(fs->fd, buf, len, (off_t)((uint64_t)slot * BS_BLOCK));
}

/* Room to grow is what the host file system has left. */
static int file_avail(struct bs_fs *fs, uint64_t *ret_blocks)
{
	struct statvfs host;

	if (fstatvfs(fs->fd, &host) < 0)
		return -errno;
	*ret_blocks = host.f_bavail * host.f_frsize / BS_BLOCK;
	return 0;
}

static void file_close(struct bs_fs *fs)
{
	if (fs->fd >= 0)
		close(fs->fd);
	fs->fd = -1;
}

const struct bs_space_ops bs_file_space = {
	.read = file_read,
	.write = file_write,
	.zero = file_zero,
	.grow = file_grow,
	.sync = file_sync,
	.read_sb = file_read_sb,
	.write_sb = file_write_sb,
	.avail = file_avail,
	.close = file_close,
};
