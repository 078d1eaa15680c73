/* SPDX-License-Identifier: MIT */
/*
 * The extent map of a file: sorted runs of file blocks and the disk blocks
 * that hold them. Mapping and unmapping blocks, describing a byte range as
 * pieces of the backing file, punching holes, setting the size, seeking.
 * Called with the file's map_lock held (for writing to change the map) and,
 * where blocks are allocated or freed, fs->lock too.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* SEEK_DATA */
#endif
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "blobstore.h"

/* Index of the first extent that ends after file block @b. */
size_t bs_ext_find(const struct bs_inode *inode, uint64_t b)
{
	size_t lo = 0, hi = inode->nr_ext;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (inode->ext[mid].fblk + inode->ext[mid].n <= b)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int bs_ext_insert_at(struct bs_inode *inode, size_t i, struct bs_ext e)
{
	if (inode->nr_ext == inode->cap_ext) {
		size_t cap = inode->cap_ext ? inode->cap_ext * 2 : 4;
		struct bs_ext *v = realloc(inode->ext, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		inode->ext = v;
		inode->cap_ext = cap;
	}
	memmove(&inode->ext[i + 1], &inode->ext[i], (inode->nr_ext - i) * sizeof(e));
	inode->ext[i] = e;
	inode->nr_ext++;
	return 0;
}

/* Insert a new extent (over a hole), merging it with its neighbours. */
int bs_ext_insert(struct bs_inode *inode, struct bs_ext e)
{
	size_t i = bs_ext_find(inode, e.fblk);
	struct bs_ext *prev = i ? &inode->ext[i - 1] : NULL;
	struct bs_ext *next = i < inode->nr_ext ? &inode->ext[i] : NULL;

	if (prev && prev->fblk + prev->n == e.fblk && prev->dblk + prev->n == e.dblk) {
		prev->n += e.n;
		if (next && e.fblk + e.n == next->fblk && e.dblk + e.n == next->dblk) {
			prev->n += next->n;
			memmove(next, next + 1, (inode->nr_ext - i - 1) * sizeof(e));
			inode->nr_ext--;
		}
		return 0;
	}
	if (next && e.fblk + e.n == next->fblk && e.dblk + e.n == next->dblk) {
		next->fblk = e.fblk;
		next->dblk = e.dblk;
		next->n += e.n;
		return 0;
	}
	return bs_ext_insert_at(inode, i, e);
}

/* Give blocks for every hole in file blocks [b, end). */
int bs_map_blocks(struct bs_fs *fs, struct bs_inode *inode, uint64_t b, uint64_t end)
{
	while (b < end) {
		size_t i = bs_ext_find(inode, b);
		uint64_t hole_end = end, hint = 0;
		struct bs_run run;
		int r;

		if (i < inode->nr_ext && inode->ext[i].fblk <= b) {
			b = inode->ext[i].fblk + inode->ext[i].n;
			continue;
		}
		if (i < inode->nr_ext && inode->ext[i].fblk < end)
			hole_end = inode->ext[i].fblk;
		if (i > 0 && inode->ext[i - 1].fblk + inode->ext[i - 1].n == b)
			hint = inode->ext[i - 1].dblk + inode->ext[i - 1].n;
		r = bs_alloc_blocks(fs, hole_end - b, hint, false, &run);
		if (r < 0)
			return r;
		r = bs_ext_insert(inode,
				  (struct bs_ext){ .fblk = b, .dblk = run.start, .n = run.n });
		if (r < 0) {
			bs_runs_add(&fs->free, run.start, run.n);
			return r;
		}
		b += run.n;
	}
	return 0;
}

/* Free file blocks [a, b): they go to the pending list until the next commit. */
int bs_unmap_blocks(struct bs_fs *fs, struct bs_inode *inode, uint64_t a, uint64_t b)
{
	size_t i = bs_ext_find(inode, a);

	while (i < inode->nr_ext && inode->ext[i].fblk < b) {
		struct bs_ext *e = &inode->ext[i];
		uint64_t s = e->fblk > a ? e->fblk : a;
		uint64_t t = e->fblk + e->n < b ? e->fblk + e->n : b;
		int r = bs_runs_add(&fs->pending, e->dblk + (s - e->fblk), t - s);

		if (r < 0)
			return r;
		if (e->fblk < a && e->fblk + e->n > b) {
			struct bs_ext right = { b, e->dblk + (b - e->fblk), e->fblk + e->n - b };

			e->n = a - e->fblk;
			return bs_ext_insert_at(inode, i + 1, right);
		}
		if (e->fblk < a) {
			e->n = a - e->fblk;
			i++;
		} else if (e->fblk + e->n > b) {
			e->dblk += b - e->fblk;
			e->n -= b - e->fblk;
			e->fblk = b;
			i++;
		} else {
			memmove(e, e + 1, (inode->nr_ext - i - 1) * sizeof(*e));
			inode->nr_ext--;
		}
	}
	return 0;
}

uint64_t bs_mapped_blocks(const struct bs_inode *inode)
{
	uint64_t n = 0;
	size_t i;

	for (i = 0; i < inode->nr_ext; i++)
		n += inode->ext[i].n;
	return n;
}

/*
 * Describe bytes [off, off + len) as pieces of the backing file, holes as
 * hole pieces. Returns how many, or -E2BIG when more than @max are needed.
 */
int bs_map_range(const struct bs_inode *inode, off_t off, size_t len, struct bs_piece *p,
		 unsigned int max)
{
	uint64_t pos = (uint64_t)off, end = pos + len;
	size_t i = bs_ext_find(inode, pos / BS_BLOCK);
	unsigned int n = 0;

	while (pos < end) {
		const struct bs_ext *e = i < inode->nr_ext ? &inode->ext[i] : NULL;
		uint64_t e_start = e ? e->fblk * BS_BLOCK : end;
		uint64_t stop;

		if (n == max)
			return -E2BIG;
		memset(&p[n], 0, sizeof(p[n]));
		if (e_start > pos) { /* a hole up to the next extent */
			stop = e_start < end ? e_start : end;
			p[n].hole = true;
		} else {
			stop = (e->fblk + e->n) * BS_BLOCK;
			stop = stop < end ? stop : end;
			p[n].offset = (off_t)(e->dblk * BS_BLOCK + (pos - e_start));
			i++;
		}
		p[n].length = (size_t)(stop - pos);
		if (n > 0 && p[n].hole && p[n - 1].hole)
			p[n - 1].length += p[n].length; /* merge holes */
		else
			n++;
		pos = stop;
	}
	return (int)n;
}

/* Copy bytes [off, off + len) between @buf and the block space, the pieces of each chunk together. */
int bs_copy_range(struct bs_fs *fs, const struct bs_inode *inode, off_t off, size_t len, void *buf,
		  bool to_disk)
{
	struct bs_piece pc[BS_MAX_PIECES];
	struct bs_io io[BS_MAX_PIECES];
	char *p = buf;

	while (len) {
		size_t chunk = len < (64u << 20) ? len : (64u << 20);
		unsigned int nio = 0;
		int n = -E2BIG, i, r;

		/* Halve until the range fits the array. */
		while (n == -E2BIG) {
			n = bs_map_range(inode, off, chunk, pc, BS_MAX_PIECES);
			if (n == -E2BIG)
				chunk = chunk > BS_BLOCK ? chunk / 2 : chunk;
		}
		for (i = 0; i < n; i++) {
			if (pc[i].hole && !to_disk)
				memset(p, 0, pc[i].length);
			else if (!pc[i].hole)
				io[nio++] =
				    (struct bs_io){ p, pc[i].length, (uint64_t)pc[i].offset };
			p += pc[i].length;
		}
		r = nio ? (to_disk ? fs->space->write(fs, io, nio) : fs->space->read(fs, io, nio))
			: 0;
		if (r < 0)
			return r;
		off += (off_t)chunk;
		len -= chunk;
	}
	return 0;
}

/* Write zeros over the mapped bytes of [off, off + len). */
static int zero_bytes(struct bs_fs *fs, const struct bs_inode *inode, off_t off, size_t len)
{
	static const char zeros[BS_BLOCK];
	struct bs_piece pc[BS_MAX_PIECES];
	int n, i, r;

	if (!len)
		return 0;
	n = bs_map_range(inode, off, len, pc, BS_MAX_PIECES);
	if (n < 0)
		return n; /* callers pass less than two blocks */
	for (i = 0; i < n; i++) {
		if (pc[i].hole)
			continue;
		r = bs_space_write(fs, zeros, pc[i].length, (uint64_t)pc[i].offset);
		if (r < 0)
			return r;
	}
	return 0;
}

/*
 * Drop everything of a file from @from to @to (bytes; @to may be past the
 * end): whole blocks are freed, the partial blocks at either edge zeroed.
 */
int bs_punch(struct bs_fs *fs, struct bs_inode *inode, uint64_t from, uint64_t to)
{
	uint64_t a = (from + BS_BLOCK - 1) / BS_BLOCK, b = to / BS_BLOCK;
	int r;

	if (a > b) /* within one block */
		return zero_bytes(fs, inode, (off_t)from, (size_t)(to - from));
	r = zero_bytes(fs, inode, (off_t)from, (size_t)(a * BS_BLOCK - from));
	if (r == 0 && to % BS_BLOCK && b * BS_BLOCK < to)
		r = zero_bytes(fs, inode, (off_t)(b * BS_BLOCK), (size_t)(to - b * BS_BLOCK));
	if (r == 0 && a < b)
		r = bs_unmap_blocks(fs, inode, a, b);
	return r;
}

/* Set a file's size; what lies past it is freed or zeroed. */
int bs_set_size(struct bs_fs *fs, struct bs_inode *inode, off_t size)
{
	int r = 0;

	if ((uint64_t)size > BS_MAX_BLOCKS * BS_BLOCK)
		return -EFBIG;
	if (size < inode->st.st_size) {
		uint64_t end = ((uint64_t)inode->st.st_size + BS_BLOCK - 1) / BS_BLOCK * BS_BLOCK;

		r = bs_punch(fs, inode, (uint64_t)size, end);
		if (r == 0)
			r = bs_unmap_blocks(fs, inode, ((uint64_t)size + BS_BLOCK - 1) / BS_BLOCK,
					    UINT64_MAX / BS_BLOCK);
	}
	if (r == 0)
		inode->st.st_size = size;
	return r;
}

/*
 * SEEK_DATA (@data) or SEEK_HOLE from @off, from the extent map: the
 * offset, or -ENXIO at or past the end of the file.
 */
off_t bs_seek(const struct bs_inode *inode, off_t off, bool data)
{
	uint64_t pos = (uint64_t)off, size = (uint64_t)inode->st.st_size;
	size_t i;

	if (off < 0 || pos >= size)
		return -ENXIO;
	i = bs_ext_find(inode, pos / BS_BLOCK);
	if (data) {
		uint64_t start;

		if (i >= inode->nr_ext)
			return -ENXIO;
		start = inode->ext[i].fblk * BS_BLOCK;
		start = start > pos ? start : pos;
		return start < size ? (off_t)start : -ENXIO;
	}
	/* SEEK_HOLE: skip the extents that run on from pos. */
	while (i < inode->nr_ext && inode->ext[i].fblk * BS_BLOCK <= pos) {
		pos = (inode->ext[i].fblk + inode->ext[i].n) * BS_BLOCK;
		i++;
	}
	return (off_t)(pos < size ? pos : size);
}
