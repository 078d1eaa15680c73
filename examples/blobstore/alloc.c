/* SPDX-License-Identifier: MIT */
/*
 * Blocks: reading and writing a file's bytes whole, keeping free blocks
 * zeroed and growing the space (through the block space, fs->space), and
 * the allocator (sorted runs of free blocks).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "blobstore.h"

/* Read or write all @len bytes at @off: 0, or -errno (-ENODATA past the end). */
int bs_pread(int fd, void *buf, size_t len, off_t off)
{
	while (len) {
		ssize_t n = pread(fd, buf, len, off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -ENODATA;
		buf = (char *)buf + n;
		len -= (size_t)n;
		off += n;
	}
	return 0;
}

int bs_pwrite(int fd, const void *buf, size_t len, off_t off)
{
	while (len) {
		ssize_t n = pwrite(fd, buf, len, off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		buf = (const char *)buf + n;
		len -= (size_t)n;
		off += n;
	}
	return 0;
}

/* Write @len zero bytes at @off. */
int bs_write_zeros(int fd, off_t off, uint64_t len)
{
	static const char zeros[BS_BLOCK];

	while (len) {
		size_t n = len < sizeof(zeros) ? (size_t)len : sizeof(zeros);
		int r = bs_pwrite(fd, zeros, n, off);

		if (r < 0)
			return r;
		off += (off_t)n;
		len -= n;
	}
	return 0;
}

/* ------------------------------------------------------ the allocator */

/* Add [start, start + n) to a sorted run list, merging with neighbours. */
int bs_runs_add(struct bs_runs *l, uint64_t start, uint64_t n)
{
	size_t i = 0;

	while (i < l->nr && l->v[i].start < start)
		i++;
	if (i > 0 && l->v[i - 1].start + l->v[i - 1].n == start) {
		l->v[i - 1].n += n;
		if (i < l->nr && start + n == l->v[i].start) {
			l->v[i - 1].n += l->v[i].n;
			memmove(&l->v[i], &l->v[i + 1], (l->nr - i - 1) * sizeof(l->v[0]));
			l->nr--;
		}
		return 0;
	}
	if (i < l->nr && start + n == l->v[i].start) {
		l->v[i].start = start;
		l->v[i].n += n;
		return 0;
	}
	if (l->nr == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		struct bs_run *v = realloc(l->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	memmove(&l->v[i + 1], &l->v[i], (l->nr - i) * sizeof(l->v[0]));
	l->v[i].start = start;
	l->v[i].n = n;
	l->nr++;
	return 0;
}

/* Blocks in a run list. */
uint64_t bs_runs_total(const struct bs_runs *l)
{
	uint64_t n = 0;
	size_t i;

	for (i = 0; i < l->nr; i++)
		n += l->v[i].n;
	return n;
}

/* Make free blocks read as zeros. */
int bs_zero_blocks(struct bs_fs *fs, uint64_t start, uint64_t n)
{
	return fs->space->zero(fs, start, n);
}

/* Make room for at least @want more blocks, added to the free list. */
int bs_grow_file(struct bs_fs *fs, uint64_t want)
{
	uint64_t grow = want > BS_GROW ? want : BS_GROW;

	if (fs->total_blocks + grow > BS_MAX_BLOCKS)
		return -ENOSPC;
	return fs->space->grow(fs, fs->total_blocks + grow);
}

/* Bytes of the block space, one piece. */
int bs_space_read(struct bs_fs *fs, void *buf, size_t len, uint64_t off)
{
	struct bs_io io = { buf, len, off };

	return fs->space->read(fs, &io, 1);
}

int bs_space_write(struct bs_fs *fs, const void *buf, size_t len, uint64_t off)
{
	struct bs_io io = { (void *)buf, len, off };

	return fs->space->write(fs, &io, 1);
}

/*
 * Allocate up to @want blocks, at @hint if a free run starts there (a file
 * keeps growing in one piece), else from the first run that holds them
 * all. With @whole, exactly @want contiguous blocks or an error.
 */
int bs_alloc_blocks(struct bs_fs *fs, uint64_t want, uint64_t hint, bool whole, struct bs_run *ret)
{
	size_t i, pick = SIZE_MAX;
	int r;

	for (;;) {
		for (i = 0; i < fs->free.nr; i++) {
			struct bs_run *f = &fs->free.v[i];

			if (f->start == hint && (!whole || f->n >= want)) {
				pick = i;
				break;
			}
			if (pick == SIZE_MAX && f->n >= want)
				pick = i;
		}
		if (pick != SIZE_MAX)
			break;
		r = bs_grow_file(fs, want);
		if (r < 0)
			return r;
	}
	ret->start = fs->free.v[pick].start;
	ret->n = fs->free.v[pick].n < want ? fs->free.v[pick].n : want;
	fs->free.v[pick].start += ret->n;
	fs->free.v[pick].n -= ret->n;
	if (!fs->free.v[pick].n) {
		memmove(&fs->free.v[pick], &fs->free.v[pick + 1],
			(fs->free.nr - pick - 1) * sizeof(fs->free.v[0]));
		fs->free.nr--;
	}
	return 0;
}
