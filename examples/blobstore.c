/* SPDX-License-Identifier: MIT */
/*
 * blobstore: a file system kept inside one backing file, the embedded
 * storage backend to copy from.
 *
 * Build it against the installed library:
 *
 *     cc -o blobstore blobstore.c $(pkg-config --cflags --libs zcfuse)
 *
 * Run it (a missing or empty BACKING_FILE becomes a new, empty store):
 *
 *     ./blobstore BACKING_FILE MOUNTPOINT [-f] [-d] [-s] [-o opt[,opt...]]
 *     fusermount3 -u MOUNTPOINT
 *
 * Layout of the backing file, in 4 KiB blocks:
 *
 *     block 0, block 1   two superblock slots, written in turn
 *     blocks 2...        file data and the index, wherever the allocator
 *                        put them
 *
 * A superblock holds a magic number, the format version, a generation
 * count, where the index lies with its length and CRC-32C, and its own
 * CRC-32C. The index is every inode (attributes, directory entries,
 * symlink target, extended attributes, and for a file its extent map:
 * runs of file blocks and the disk blocks that hold them), serialized.
 *
 * Durability: file data is written in place into the blocks the extent
 * map names. fsync() (and fsyncdir(), and a clean unmount) commits: it
 * writes a fresh copy of the index into free blocks, fdatasync()s the
 * backing file (data and index are now on disk), writes the superblock of
 * the next generation into the slot the current one is not in, and
 * fdatasync()s again. The superblock write is the commit point: a crash
 * before it leaves the previous generation, whose index is untouched, and
 * a torn superblock fails its checksum, so the other slot wins. Blocks
 * freed since the last commit (truncate, unlink, the old index) are reused
 * only after the next commit, so the committed index never names a block
 * that holds something else. Free blocks are kept zeroed (holes punched in
 * the backing file), so a newly allocated block reads as zeros.
 *
 * A store that fails any check (magic, version, checksums, an index or
 * file data past the end of the file, an inconsistent index) is refused at
 * start with one line on stderr and exit status 1.
 *
 * The data path: a read answers with extents of the backing file
 * (descriptor, offset, length) and holes as zero extents; a write is
 * offered extents of the backing file where its blocks are. The library
 * splices the bytes between /dev/fuse and the backing file through pipes,
 * so file data never enters this program's memory. Only a range too
 * fragmented for ZC_MAX_EXTENTS extents is copied through a buffer.
 *
 * Locking: one mutex guards the tree, the allocator and commits; each
 * file's extent map has a read-write lock held from read() to read_done()
 * and from write() to write_done(). The extent map changes only with both
 * held, in that order.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* RENAME_*, FALLOC_FL_*, SEEK_DATA */
#endif
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>
#include <zcfuse/zcfuse.h>

#define BS_BLOCK       4096ULL
#define BS_MAGIC       "zcfsblob"
#define BS_VERSION     1
#define BS_SB_SIZE     64   /* bytes of a superblock slot in use */
#define BS_FIRST_DATA  2    /* blocks 0 and 1 are the superblock slots */
#define BS_GROW	       2048 /* grow the backing file by at least 8 MiB */
#define BS_NAME_MAX    255
#define BS_XATTR_MAX   65536
#define BS_MAX_BLOCKS  (1ULL << 40)
#define BS_INDEX_MAGIC 0x7a636978u /* "zcix" */

/* A run of file blocks [fblk, fblk + n) stored at disk blocks [dblk, dblk + n). */
struct bs_ext {
	uint64_t fblk;
	uint64_t dblk;
	uint64_t n;
};

/* A run of disk blocks. */
struct bs_run {
	uint64_t start;
	uint64_t n;
};

struct bs_runs {
	struct bs_run *v;
	size_t nr, cap;
};

struct bs_xattr {
	char *name;
	void *value;
	size_t size;
};

struct bs_inode;

struct bs_dirent {
	char *name;
	struct bs_inode *inode;
	off_t cookie;
	struct bs_dirent *next;
};

struct bs_inode {
	struct stat st;
	uint64_t nlookup;
	unsigned int nopen;
	/* directories */
	struct bs_dirent *first, *last;
	off_t next_cookie;
	zc_ino_t parent;
	/* symlinks */
	char *target;
	/* extended attributes */
	struct bs_xattr *xattrs;
	size_t nr_xattrs;
	/* regular files */
	pthread_rwlock_t map_lock;
	struct bs_ext *ext;
	size_t nr_ext, cap_ext;
	off_t write_off; /* between write() and write_done() */
	void *bounce;	 /* a write copied through memory, or NULL */
	size_t bounce_len;
	unsigned int refs; /* during load: directory entries naming it */
};

struct bs_fs {
	pthread_mutex_t lock;
	int fd;
	const char *path;
	struct bs_inode **inodes; /* by inode number */
	size_t nr_inodes;
	zc_ino_t next_ino;
	uint64_t total_blocks;	/* blocks in the backing file */
	struct bs_runs free;	/* free and zeroed */
	struct bs_runs pending; /* freed since the last commit */
	uint64_t generation;	/* of the last commit */
	struct bs_run index;	/* blocks of the committed index */
};

/* ------------------------------------------------------------ helpers */

static uint32_t crc32c(const void *data, size_t len)
{
	static uint32_t table[256];
	const uint8_t *p = data;
	uint32_t crc = ~0u;
	size_t i;

	if (!table[1]) {
		for (i = 0; i < 256; i++) {
			uint32_t c = (uint32_t)i;
			int k;

			for (k = 0; k < 8; k++)
				c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
			table[i] = c;
		}
	}
	for (i = 0; i < len; i++)
		crc = table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
	return ~crc;
}

static int full_pread(int fd, void *buf, size_t len, off_t off)
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

static int full_pwrite(int fd, const void *buf, size_t len, off_t off)
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

static int write_zeros(int fd, off_t off, uint64_t len)
{
	static const char zeros[BS_BLOCK];

	while (len) {
		size_t n = len < sizeof(zeros) ? (size_t)len : sizeof(zeros);
		int r = full_pwrite(fd, zeros, n, off);

		if (r < 0)
			return r;
		off += (off_t)n;
		len -= n;
	}
	return 0;
}

static void touch(struct bs_inode *inode, bool mtime)
{
	clock_gettime(CLOCK_REALTIME, &inode->st.st_ctim);
	if (mtime)
		inode->st.st_mtim = inode->st.st_ctim;
}

/* ------------------------------------------------------ the allocator */

/* Add [start, start + n) to a sorted run list, merging with neighbours. */
static int runs_add(struct bs_runs *l, uint64_t start, uint64_t n)
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

/* Make free blocks read as zeros: punch them out of the backing file. */
static int zero_blocks(struct bs_fs *fs, uint64_t start, uint64_t n)
{
	if (fallocate(fs->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)(start * BS_BLOCK),
		      (off_t)(n * BS_BLOCK)) == 0)
		return 0;
	if (errno != EOPNOTSUPP)
		return -errno;
	return write_zeros(fs->fd, (off_t)(start * BS_BLOCK), n * BS_BLOCK);
}

static int grow_file(struct bs_fs *fs, uint64_t want)
{
	uint64_t grow = want > BS_GROW ? want : BS_GROW;

	if (fs->total_blocks + grow > BS_MAX_BLOCKS)
		return -ENOSPC;
	if (ftruncate(fs->fd, (off_t)((fs->total_blocks + grow) * BS_BLOCK)) < 0)
		return errno == EFBIG ? -ENOSPC : -errno;
	if (runs_add(&fs->free, fs->total_blocks, grow) < 0)
		return -ENOMEM;
	fs->total_blocks += grow;
	return 0;
}

/*
 * Allocate up to @want blocks, at @hint if a free run starts there (a file
 * keeps growing in one piece), else from the first run that holds them
 * all. With @whole, exactly @want contiguous blocks or an error.
 */
static int alloc_blocks(struct bs_fs *fs, uint64_t want, uint64_t hint, bool whole,
			struct bs_run *ret)
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
		r = grow_file(fs, want);
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

/* --------------------------------------------------------- extent maps */

/* Index of the first extent that ends after file block @b. */
static size_t ext_find(const struct bs_inode *inode, uint64_t b)
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

static int ext_insert_at(struct bs_inode *inode, size_t i, struct bs_ext e)
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
static int ext_insert(struct bs_inode *inode, struct bs_ext e)
{
	size_t i = ext_find(inode, e.fblk);
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
	return ext_insert_at(inode, i, e);
}

/* Give blocks for every hole in file blocks [b, end). */
static int map_blocks(struct bs_fs *fs, struct bs_inode *inode, uint64_t b, uint64_t end)
{
	while (b < end) {
		size_t i = ext_find(inode, b);
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
		r = alloc_blocks(fs, hole_end - b, hint, false, &run);
		if (r < 0)
			return r;
		r = ext_insert(inode, (struct bs_ext){ .fblk = b, .dblk = run.start, .n = run.n });
		if (r < 0) {
			runs_add(&fs->free, run.start, run.n);
			return r;
		}
		b += run.n;
	}
	return 0;
}

/* Free file blocks [a, b): they go to the pending list until the next commit. */
static int unmap_blocks(struct bs_fs *fs, struct bs_inode *inode, uint64_t a, uint64_t b)
{
	size_t i = ext_find(inode, a);

	while (i < inode->nr_ext && inode->ext[i].fblk < b) {
		struct bs_ext *e = &inode->ext[i];
		uint64_t s = e->fblk > a ? e->fblk : a;
		uint64_t t = e->fblk + e->n < b ? e->fblk + e->n : b;
		int r = runs_add(&fs->pending, e->dblk + (s - e->fblk), t - s);

		if (r < 0)
			return r;
		if (e->fblk < a && e->fblk + e->n > b) {
			struct bs_ext right = { b, e->dblk + (b - e->fblk), e->fblk + e->n - b };

			e->n = a - e->fblk;
			return ext_insert_at(inode, i + 1, right);
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

static uint64_t mapped_blocks(const struct bs_inode *inode)
{
	uint64_t n = 0;
	size_t i;

	for (i = 0; i < inode->nr_ext; i++)
		n += inode->ext[i].n;
	return n;
}

/*
 * Describe bytes [off, off + len) as extents of the backing file, holes as
 * zero extents. Returns how many, or -E2BIG when more than @max are needed.
 */
static int map_extents(const struct bs_fs *fs, const struct bs_inode *inode, off_t off, size_t len,
		       struct zc_extent *ext, unsigned int max)
{
	uint64_t pos = (uint64_t)off, end = pos + len;
	size_t i = ext_find(inode, pos / BS_BLOCK);
	unsigned int n = 0;

	while (pos < end) {
		const struct bs_ext *e = i < inode->nr_ext ? &inode->ext[i] : NULL;
		uint64_t e_start = e ? e->fblk * BS_BLOCK : end;
		uint64_t stop;

		if (n == max)
			return -E2BIG;
		memset(&ext[n], 0, sizeof(ext[n]));
		if (e_start > pos) { /* a hole up to the next extent */
			stop = e_start < end ? e_start : end;
			ext[n].fd = -1;
		} else {
			stop = (e->fblk + e->n) * BS_BLOCK;
			stop = stop < end ? stop : end;
			ext[n].fd = fs->fd;
			ext[n].offset = (off_t)(e->dblk * BS_BLOCK + (pos - e_start));
			i++;
		}
		ext[n].length = (size_t)(stop - pos);
		if (n > 0 && ext[n].fd < 0 && ext[n - 1].fd < 0)
			ext[n - 1].length += ext[n].length; /* merge holes */
		else
			n++;
		pos = stop;
	}
	return (int)n;
}

/* Copy bytes [off, off + len) between @buf and the backing file. */
static int copy_range(const struct bs_fs *fs, const struct bs_inode *inode, off_t off, size_t len,
		      void *buf, bool to_disk)
{
	struct zc_extent ext[ZC_MAX_EXTENTS];
	char *p = buf;

	while (len) {
		size_t chunk = len < (64u << 20) ? len : (64u << 20);
		int n = -E2BIG, i, r;

		/* Halve until the range fits the array. */
		while (n == -E2BIG) {
			n = map_extents(fs, inode, off, chunk, ext, ZC_MAX_EXTENTS);
			if (n == -E2BIG)
				chunk = chunk > BS_BLOCK ? chunk / 2 : chunk;
		}
		for (i = 0; i < n; i++) {
			if (ext[i].fd < 0)
				r = to_disk ? 0 : (memset(p, 0, ext[i].length), 0);
			else if (to_disk)
				r = full_pwrite(fs->fd, p, ext[i].length, ext[i].offset);
			else
				r = full_pread(fs->fd, p, ext[i].length, ext[i].offset);
			if (r < 0)
				return r;
			p += ext[i].length;
		}
		off += (off_t)chunk;
		len -= chunk;
	}
	return 0;
}

/* Write zeros over the mapped bytes of [off, off + len). */
static int zero_bytes(const struct bs_fs *fs, const struct bs_inode *inode, off_t off, size_t len)
{
	struct zc_extent ext[ZC_MAX_EXTENTS];
	int n, i, r;

	if (!len)
		return 0;
	n = map_extents(fs, inode, off, len, ext, ZC_MAX_EXTENTS);
	if (n < 0)
		return n; /* callers pass less than two blocks */
	for (i = 0; i < n; i++) {
		if (ext[i].fd < 0)
			continue;
		r = write_zeros(fs->fd, ext[i].offset, ext[i].length);
		if (r < 0)
			return r;
	}
	return 0;
}

/*
 * Drop everything of a file from @from to @to (bytes; @to may be past the
 * end): whole blocks are freed, the partial blocks at either edge zeroed.
 */
static int punch(struct bs_fs *fs, struct bs_inode *inode, uint64_t from, uint64_t to)
{
	uint64_t a = (from + BS_BLOCK - 1) / BS_BLOCK, b = to / BS_BLOCK;
	int r;

	if (a > b) /* within one block */
		return zero_bytes(fs, inode, (off_t)from, (size_t)(to - from));
	r = zero_bytes(fs, inode, (off_t)from, (size_t)(a * BS_BLOCK - from));
	if (r == 0 && to % BS_BLOCK && b * BS_BLOCK < to)
		r = zero_bytes(fs, inode, (off_t)(b * BS_BLOCK), (size_t)(to - b * BS_BLOCK));
	if (r == 0 && a < b)
		r = unmap_blocks(fs, inode, a, b);
	return r;
}

/* Set a file's size; what lies past it is freed or zeroed. */
static int set_size(struct bs_fs *fs, struct bs_inode *inode, off_t size)
{
	int r = 0;

	if ((uint64_t)size > BS_MAX_BLOCKS * BS_BLOCK)
		return -EFBIG;
	if (size < inode->st.st_size) {
		uint64_t end = ((uint64_t)inode->st.st_size + BS_BLOCK - 1) / BS_BLOCK * BS_BLOCK;

		r = punch(fs, inode, (uint64_t)size, end);
		if (r == 0)
			r = unmap_blocks(fs, inode, ((uint64_t)size + BS_BLOCK - 1) / BS_BLOCK,
					 UINT64_MAX / BS_BLOCK);
	}
	if (r == 0)
		inode->st.st_size = size;
	return r;
}

/* ------------------------------------------------------- inodes, names */

static struct bs_fs *ctx_fs(const struct zc_ctx *ctx)
{
	return ctx->userdata;
}

static struct bs_inode *get_inode(struct bs_fs *fs, zc_ino_t ino)
{
	return ino < fs->nr_inodes ? fs->inodes[ino] : NULL;
}

static void fill_attr(const struct bs_inode *inode, struct stat *st)
{
	*st = inode->st;
	st->st_blksize = BS_BLOCK;
	st->st_blocks = (blkcnt_t)(mapped_blocks(inode) * (BS_BLOCK / 512));
}

static void fill_entry(struct bs_inode *inode, struct zc_entry *e)
{
	memset(e, 0, sizeof(*e));
	e->ino = inode->st.st_ino;
	fill_attr(inode, &e->attr);
	inode->nlookup++;
}

/* A new inode numbered @ino (0: the next free number). */
static struct bs_inode *new_inode(struct bs_fs *fs, zc_ino_t ino, mode_t mode)
{
	struct bs_inode *inode;

	if (!ino)
		ino = fs->next_ino;
	if (ino >= fs->nr_inodes) {
		size_t n = fs->nr_inodes ? fs->nr_inodes : 64;
		struct bs_inode **grown;

		while (n <= ino)
			n *= 2;
		grown = realloc(fs->inodes, n * sizeof(*grown));
		if (!grown)
			return NULL;
		memset(grown + fs->nr_inodes, 0, (n - fs->nr_inodes) * sizeof(*grown));
		fs->inodes = grown;
		fs->nr_inodes = n;
	}
	inode = calloc(1, sizeof(*inode));
	if (!inode)
		return NULL;
	pthread_rwlock_init(&inode->map_lock, NULL);
	inode->st.st_ino = ino;
	inode->st.st_mode = mode;
	inode->st.st_nlink = S_ISDIR(mode) ? 2 : 1;
	inode->next_cookie = 3;
	touch(inode, true);
	inode->st.st_atim = inode->st.st_mtim;
	fs->inodes[ino] = inode;
	if (ino >= fs->next_ino)
		fs->next_ino = ino + 1;
	return inode;
}

static void destroy_inode(struct bs_inode *inode)
{
	size_t i;

	while (inode->first) {
		struct bs_dirent *d = inode->first;

		inode->first = d->next;
		free(d->name);
		free(d);
	}
	for (i = 0; i < inode->nr_xattrs; i++) {
		free(inode->xattrs[i].name);
		free(inode->xattrs[i].value);
	}
	free(inode->xattrs);
	free(inode->ext);
	free(inode->target);
	free(inode->bounce);
	pthread_rwlock_destroy(&inode->map_lock);
	free(inode);
}

/* Free an inode nobody can reach any more; its blocks wait for the next commit. */
static void maybe_free(struct bs_fs *fs, struct bs_inode *inode)
{
	if (inode->st.st_nlink || inode->nlookup || inode->nopen || inode->st.st_ino == ZC_ROOT_INO)
		return;
	if (unmap_blocks(fs, inode, 0, UINT64_MAX / BS_BLOCK) < 0)
		return; /* out of memory: keep it (and its blocks) */
	fs->inodes[inode->st.st_ino] = NULL;
	destroy_inode(inode);
}

static struct bs_dirent *find(struct bs_inode *dir, const char *name, struct bs_dirent **prev)
{
	struct bs_dirent *d, *p = NULL;

	for (d = dir->first; d; p = d, d = d->next)
		if (!strcmp(d->name, name))
			break;
	if (prev)
		*prev = p;
	return d;
}

static int add_dirent(struct bs_inode *dir, const char *name, struct bs_inode *inode)
{
	struct bs_dirent *d = calloc(1, sizeof(*d));

	if (!d || !(d->name = strdup(name))) {
		free(d);
		return -ENOMEM;
	}
	d->inode = inode;
	d->cookie = dir->next_cookie++;
	if (dir->last)
		dir->last->next = d;
	else
		dir->first = d;
	dir->last = d;
	if (S_ISDIR(inode->st.st_mode)) {
		inode->parent = dir->st.st_ino;
		dir->st.st_nlink++;
	}
	touch(dir, true);
	return 0;
}

static void del_dirent(struct bs_inode *dir, struct bs_dirent *d, struct bs_dirent *prev)
{
	if (prev)
		prev->next = d->next;
	else
		dir->first = d->next;
	if (dir->last == d)
		dir->last = prev;
	if (S_ISDIR(d->inode->st.st_mode))
		dir->st.st_nlink--;
	touch(dir, true);
	free(d->name);
	free(d);
}

static int get_dir(struct bs_fs *fs, zc_ino_t ino, const char *name, struct bs_inode **ret)
{
	struct bs_inode *dir = get_inode(fs, ino);

	if (!dir)
		return -ENOENT;
	if (!S_ISDIR(dir->st.st_mode))
		return -ENOTDIR;
	if (name && strlen(name) > BS_NAME_MAX)
		return -ENAMETOOLONG;
	*ret = dir;
	return 0;
}

/* ------------------------------------------------- the index on disk */

struct bs_buf {
	uint8_t *p;
	size_t len, cap;
	bool oom;
};

static void put(struct bs_buf *b, const void *data, size_t len)
{
	if (b->oom)
		return;
	if (b->len + len > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		uint8_t *p;

		while (cap < b->len + len)
			cap *= 2;
		p = realloc(b->p, cap);
		if (!p) {
			b->oom = true;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, data, len);
	b->len += len;
}

static void put_u16(struct bs_buf *b, uint16_t v)
{
	v = htole16(v);
	put(b, &v, sizeof(v));
}

static void put_u32(struct bs_buf *b, uint32_t v)
{
	v = htole32(v);
	put(b, &v, sizeof(v));
}

static void put_u64(struct bs_buf *b, uint64_t v)
{
	v = htole64(v);
	put(b, &v, sizeof(v));
}

static void put_time(struct bs_buf *b, const struct timespec *t)
{
	put_u64(b, (uint64_t)t->tv_sec);
	put_u32(b, (uint32_t)t->tv_nsec);
}

/* Every inode with a name, in inode order. */
static void serialize(struct bs_fs *fs, struct bs_buf *b)
{
	uint64_t count = 0;
	size_t i, j;

	for (i = 0; i < fs->nr_inodes; i++)
		count += fs->inodes[i] && fs->inodes[i]->st.st_nlink;
	put_u32(b, BS_INDEX_MAGIC);
	put_u64(b, fs->next_ino);
	put_u64(b, count);
	for (i = 0; i < fs->nr_inodes; i++) {
		const struct bs_inode *inode = fs->inodes[i];
		const struct stat *st;

		if (!inode || !inode->st.st_nlink)
			continue;
		st = &inode->st;
		put_u64(b, st->st_ino);
		put_u32(b, st->st_mode);
		put_u32(b, st->st_uid);
		put_u32(b, st->st_gid);
		put_u32(b, (uint32_t)st->st_nlink);
		put_u64(b, st->st_rdev);
		put_u64(b, (uint64_t)st->st_size);
		put_time(b, &st->st_atim);
		put_time(b, &st->st_mtim);
		put_time(b, &st->st_ctim);
		put_u32(b, (uint32_t)inode->nr_xattrs);
		for (j = 0; j < inode->nr_xattrs; j++) {
			put_u16(b, (uint16_t)strlen(inode->xattrs[j].name));
			put(b, inode->xattrs[j].name, strlen(inode->xattrs[j].name));
			put_u32(b, (uint32_t)inode->xattrs[j].size);
			put(b, inode->xattrs[j].value, inode->xattrs[j].size);
		}
		if (S_ISDIR(st->st_mode)) {
			const struct bs_dirent *d;
			uint32_t n = 0;

			for (d = inode->first; d; d = d->next)
				n++;
			put_u32(b, n);
			for (d = inode->first; d; d = d->next) {
				put_u16(b, (uint16_t)strlen(d->name));
				put(b, d->name, strlen(d->name));
				put_u64(b, d->inode->st.st_ino);
			}
		} else if (S_ISLNK(st->st_mode)) {
			put_u32(b, (uint32_t)strlen(inode->target));
			put(b, inode->target, strlen(inode->target));
		} else if (S_ISREG(st->st_mode)) {
			put_u32(b, (uint32_t)inode->nr_ext);
			for (j = 0; j < inode->nr_ext; j++) {
				put_u64(b, inode->ext[j].fblk);
				put_u64(b, inode->ext[j].dblk);
				put_u64(b, inode->ext[j].n);
			}
		}
	}
}

struct bs_sb {
	uint64_t generation;
	uint64_t next_ino;
	uint64_t index_block;
	uint64_t index_len;
	uint32_t index_crc;
};

static void sb_encode(const struct bs_sb *sb, uint8_t out[BS_SB_SIZE])
{
	struct bs_buf b = { 0 };
	uint32_t crc;

	put(&b, BS_MAGIC, 8);
	put_u32(&b, BS_VERSION);
	put_u32(&b, (uint32_t)BS_BLOCK);
	put_u64(&b, sb->generation);
	put_u64(&b, sb->index_block);
	put_u64(&b, sb->index_len);
	put_u32(&b, sb->index_crc);
	put_u32(&b, 0);
	put_u64(&b, sb->next_ino);
	put_u32(&b, 0);
	memset(out, 0, BS_SB_SIZE);
	if (!b.oom)
		memcpy(out, b.p, b.len);
	free(b.p);
	crc = htole32(crc32c(out, 60));
	memcpy(out + 60, &crc, sizeof(crc));
}

/*
 * Commit: the index into fresh blocks, fdatasync, the next superblock into
 * the other slot, fdatasync. Called with fs->lock held.
 */
static int commit(struct bs_fs *fs)
{
	uint8_t slot[BS_BLOCK] = { 0 };
	struct bs_buf b = { 0 };
	struct bs_run where;
	struct bs_sb sb;
	size_t i, k;
	int r;

	serialize(fs, &b);
	if (b.oom) {
		free(b.p);
		return -ENOMEM;
	}
	r = alloc_blocks(fs, (b.len + BS_BLOCK - 1) / BS_BLOCK, 0, true, &where);
	if (r < 0) {
		free(b.p);
		return r;
	}
	sb.generation = fs->generation + 1;
	sb.next_ino = fs->next_ino;
	sb.index_block = where.start;
	sb.index_len = b.len;
	sb.index_crc = crc32c(b.p, b.len);
	r = full_pwrite(fs->fd, b.p, b.len, (off_t)(where.start * BS_BLOCK));
	free(b.p);
	if (r == 0 && fdatasync(fs->fd) < 0)
		r = -errno;
	if (r < 0) { /* nothing points at the new index: reuse (zeroed) after a commit */
		runs_add(&fs->pending, where.start, where.n);
		return r;
	}
	sb_encode(&sb, slot);
	r = full_pwrite(fs->fd, slot, BS_BLOCK, (off_t)((sb.generation % 2) * BS_BLOCK));
	if (r == 0 && fdatasync(fs->fd) < 0)
		r = -errno;
	if (r < 0) { /* the superblock may have landed: keep the new index until the next commit */
		runs_add(&fs->pending, where.start, where.n);
		return r;
	}
	/* Committed: the old index and what was freed since can be reused now. */
	if (fs->index.n)
		runs_add(&fs->pending, fs->index.start, fs->index.n);
	fs->index = where;
	fs->generation = sb.generation;
	for (i = 0, k = 0; i < fs->pending.nr; i++) {
		struct bs_run run = fs->pending.v[i];

		/* A run that cannot be zeroed (or listed) waits for the next commit. */
		if (zero_blocks(fs, run.start, run.n) < 0 ||
		    runs_add(&fs->free, run.start, run.n) < 0)
			fs->pending.v[k++] = run;
	}
	fs->pending.nr = k;
	return 0;
}

/* ------------------------------------------------ loading and checking */

struct bs_cur {
	const uint8_t *p, *end;
	bool short_;
};

static bool get(struct bs_cur *c, void *out, size_t len)
{
	if ((size_t)(c->end - c->p) < len) {
		c->short_ = true;
		memset(out, 0, len);
		return false;
	}
	memcpy(out, c->p, len);
	c->p += len;
	return true;
}

static uint16_t get_u16(struct bs_cur *c)
{
	uint16_t v;

	get(c, &v, sizeof(v));
	return le16toh(v);
}

static uint32_t get_u32(struct bs_cur *c)
{
	uint32_t v;

	get(c, &v, sizeof(v));
	return le32toh(v);
}

static uint64_t get_u64(struct bs_cur *c)
{
	uint64_t v;

	get(c, &v, sizeof(v));
	return le64toh(v);
}

static void get_time(struct bs_cur *c, struct timespec *t)
{
	t->tv_sec = (time_t)get_u64(c);
	t->tv_nsec = get_u32(c) % 1000000000;
}

/* A string of @len bytes from the index, as a new C string; NULL if it has a NUL. */
static char *get_str(struct bs_cur *c, size_t len)
{
	char *s;

	if ((size_t)(c->end - c->p) < len) {
		c->short_ = true;
		return NULL;
	}
	if (memchr(c->p, '\0', len))
		return NULL;
	s = malloc(len + 1);
	if (!s)
		return NULL;
	memcpy(s, c->p, len);
	s[len] = '\0';
	c->p += len;
	return s;
}

static bool valid_name(const char *name)
{
	return name && name[0] && strlen(name) <= BS_NAME_MAX && !strchr(name, '/') &&
	       strcmp(name, ".") && strcmp(name, "..");
}

/* The error of a store that fails to load: what is wrong, in a few words. */
struct bs_err {
	char msg[256];
};

static int fail(struct bs_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(struct bs_err *err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	return -1;
}

/* Directory entries are kept as inode numbers until every inode is read. */
struct bs_pending_dirent {
	zc_ino_t dir;
	zc_ino_t ino;
	char *name;
};

static int parse_inode(struct bs_fs *fs, struct bs_cur *c, struct bs_pending_dirent **des,
		       size_t *nr_des, struct bs_err *err)
{
	struct bs_inode *inode;
	uint64_t ino = get_u64(c);
	mode_t mode = get_u32(c);
	uint32_t i, n;

	if (c->short_)
		return fail(err, "index ends inside an inode");
	if (ino == 0 || ino >= fs->next_ino || ino > (1ULL << 40) || get_inode(fs, ino))
		return fail(err, "bad or repeated inode number %llu", (unsigned long long)ino);
	if (!S_ISREG(mode) && !S_ISDIR(mode) && !S_ISLNK(mode) && !S_ISCHR(mode) &&
	    !S_ISBLK(mode) && !S_ISFIFO(mode) && !S_ISSOCK(mode))
		return fail(err, "inode %llu has a bad mode", (unsigned long long)ino);
	inode = new_inode(fs, ino, mode);
	if (!inode)
		return fail(err, "out of memory");
	inode->st.st_uid = get_u32(c);
	inode->st.st_gid = get_u32(c);
	inode->st.st_nlink = get_u32(c);
	inode->st.st_rdev = get_u64(c);
	inode->st.st_size = (off_t)get_u64(c);
	get_time(c, &inode->st.st_atim);
	get_time(c, &inode->st.st_mtim);
	get_time(c, &inode->st.st_ctim);
	if (inode->st.st_size < 0 || !inode->st.st_nlink)
		return fail(err, "inode %llu has a bad size or link count",
			    (unsigned long long)ino);
	n = get_u32(c);
	for (i = 0; i < n && !c->short_; i++) {
		struct bs_xattr *x;
		char *name = get_str(c, get_u16(c));
		uint32_t size = get_u32(c);
		void *value = size <= BS_XATTR_MAX ? malloc(size ? size : 1) : NULL;

		x = realloc(inode->xattrs, (inode->nr_xattrs + 1) * sizeof(*x));
		if (!name || !value || !x || !get(c, value, size)) {
			free(name);
			free(value);
			if (x)
				inode->xattrs = x;
			return fail(err, "inode %llu has a bad extended attribute",
				    (unsigned long long)ino);
		}
		inode->xattrs = x;
		x[inode->nr_xattrs++] = (struct bs_xattr){ name, value, size };
	}
	if (S_ISDIR(mode)) {
		n = get_u32(c);
		for (i = 0; i < n && !c->short_; i++) {
			struct bs_pending_dirent *grown;
			char *name = get_str(c, get_u16(c));
			zc_ino_t child = get_u64(c);

			grown = realloc(*des, (*nr_des + 1) * sizeof(**des));
			if (!grown || !valid_name(name)) {
				free(name);
				if (grown)
					*des = grown;
				return fail(err, "directory %llu has a bad entry",
					    (unsigned long long)ino);
			}
			*des = grown;
			grown[(*nr_des)++] = (struct bs_pending_dirent){ ino, child, name };
		}
	} else if (S_ISLNK(mode)) {
		n = get_u32(c);
		inode->target = n <= 4095 ? get_str(c, n) : NULL;
		if (!inode->target)
			return fail(err, "symlink %llu has a bad target", (unsigned long long)ino);
	} else if (S_ISREG(mode)) {
		n = get_u32(c);
		for (i = 0; i < n && !c->short_; i++) {
			struct bs_ext e;

			e.fblk = get_u64(c);
			e.dblk = get_u64(c);
			e.n = get_u64(c);
			if (!e.n || e.n > BS_MAX_BLOCKS || e.fblk > BS_MAX_BLOCKS ||
			    e.dblk > BS_MAX_BLOCKS ||
			    (inode->nr_ext &&
			     inode->ext[inode->nr_ext - 1].fblk + inode->ext[inode->nr_ext - 1].n >
				 e.fblk))
				return fail(err, "file %llu has a bad extent map",
					    (unsigned long long)ino);
			if (ext_insert_at(inode, inode->nr_ext, e) < 0)
				return fail(err, "out of memory");
		}
	}
	if (c->short_)
		return fail(err, "index ends inside inode %llu", (unsigned long long)ino);
	return 0;
}

/* Mark blocks [start, start + n) used; an overlap or a block past the end is an error. */
static int mark_used(uint8_t *used, uint64_t total, uint64_t start, uint64_t n, struct bs_err *err)
{
	uint64_t b;

	if (start < BS_FIRST_DATA)
		return fail(err, "index is inconsistent: data in the superblock area");
	if (start + n > total)
		return fail(err,
			    "file data lies past the end of the file (%llu blocks): the store "
			    "is truncated",
			    (unsigned long long)total);
	for (b = start; b < start + n; b++) {
		if (used[b / 8] & (1u << (b % 8)))
			return fail(err, "index is inconsistent: block %llu is used twice",
				    (unsigned long long)b);
		used[b / 8] |= (uint8_t)(1u << (b % 8));
	}
	return 0;
}

/* Link directory entries, check link counts, and build the free list. */
static int link_tree(struct bs_fs *fs, struct bs_pending_dirent *des, size_t nr_des,
		     struct bs_err *err)
{
	struct bs_inode *root = get_inode(fs, ZC_ROOT_INO);
	uint64_t total = fs->total_blocks, b;
	uint8_t *used;
	size_t i, j;
	int r = 0;

	if (!root || !S_ISDIR(root->st.st_mode))
		return fail(err, "index is inconsistent: no root directory");
	root->parent = ZC_ROOT_INO;
	for (i = 0; i < nr_des; i++) {
		struct bs_inode *dir = get_inode(fs, des[i].dir);
		struct bs_inode *child = get_inode(fs, des[i].ino);
		struct timespec mtime, ctime;
		nlink_t nlink;

		if (!child || child == root || find(dir, des[i].name, NULL) ||
		    (S_ISDIR(child->st.st_mode) && child->refs))
			return fail(err, "index is inconsistent: bad entry '%s' in directory %llu",
				    des[i].name, (unsigned long long)des[i].dir);
		nlink = child->st.st_nlink;
		mtime = dir->st.st_mtim;
		ctime = dir->st.st_ctim;
		if (add_dirent(dir, des[i].name, child) < 0)
			return fail(err, "out of memory");
		child->st.st_nlink = nlink;
		dir->st.st_mtim = mtime;
		dir->st.st_ctim = ctime;
		child->refs++;
	}
	for (i = 0; i < fs->nr_inodes; i++) {
		struct bs_inode *inode = fs->inodes[i];
		nlink_t want;

		if (!inode)
			continue;
		if (S_ISDIR(inode->st.st_mode)) {
			struct bs_dirent *d;

			want = 2;
			for (d = inode->first; d; d = d->next)
				want += S_ISDIR(d->inode->st.st_mode);
			/* add_dirent counted subdirectories once more */
			inode->st.st_nlink = want;
			if (inode != root && inode->refs != 1)
				return fail(err,
					    "index is inconsistent: directory %zu has %u names", i,
					    inode->refs);
		} else if (inode->refs != inode->st.st_nlink) {
			return fail(err,
				    "index is inconsistent: inode %zu has %u names, link "
				    "count %lu",
				    i, inode->refs, (unsigned long)inode->st.st_nlink);
		}
	}
	/* Every block belongs to one owner: superblocks, the index, a file, or nobody. */
	used = calloc(total / 8 + 1, 1);
	if (!used)
		return fail(err, "out of memory");
	used[0] |= 3;
	r = mark_used(used, total, fs->index.start, fs->index.n, err);
	for (i = 0; r == 0 && i < fs->nr_inodes; i++)
		for (j = 0; r == 0 && fs->inodes[i] && j < fs->inodes[i]->nr_ext; j++)
			r = mark_used(used, total, fs->inodes[i]->ext[j].dblk,
				      fs->inodes[i]->ext[j].n, err);
	for (b = BS_FIRST_DATA; r == 0 && b < total;) {
		uint64_t run = b;

		while (run < total && !(used[run / 8] & (1u << (run % 8))))
			run++;
		if (run > b && runs_add(&fs->free, b, run - b) < 0)
			r = fail(err, "out of memory");
		b = run + 1;
	}
	free(used);
	return r;
}

/* Read and check one superblock slot: 1 if good, 0 if no magic, -1 if bad. */
static int read_slot(int fd, int slot, struct bs_sb *sb, uint32_t *ret_version)
{
	uint8_t buf[BS_SB_SIZE];
	struct bs_cur c = { buf, buf + sizeof(buf), false };
	uint32_t crc;

	if (full_pread(fd, buf, sizeof(buf), (off_t)(slot * BS_BLOCK)) < 0)
		return 0;
	if (memcmp(buf, BS_MAGIC, 8))
		return 0;
	memcpy(&crc, buf + 60, 4);
	if (le32toh(crc) != crc32c(buf, 60))
		return -1;
	c.p += 8;
	*ret_version = get_u32(&c);
	if (get_u32(&c) != BS_BLOCK)
		*ret_version = 0;
	sb->generation = get_u64(&c);
	sb->index_block = get_u64(&c);
	sb->index_len = get_u64(&c);
	sb->index_crc = get_u32(&c);
	get_u32(&c);
	sb->next_ino = get_u64(&c);
	return 1;
}

/* Load the store of fs->fd (its size is @size bytes); a message in @err on failure. */
static int load(struct bs_fs *fs, off_t size, struct bs_err *err)
{
	struct bs_pending_dirent *des = NULL;
	struct bs_sb sb[2], *cur = NULL;
	size_t nr_des = 0, k;
	struct bs_cur c;
	uint32_t version[2] = { 0, 0 };
	uint8_t *index;
	int found[2], s, r;
	uint64_t count;

	for (s = 0; s < 2; s++)
		found[s] = read_slot(fs->fd, s, &sb[s], &version[s]);
	if (!found[0] && !found[1])
		return fail(err, "not a blob store (no superblock with the blob store magic)");
	if (found[0] < 1 && found[1] < 1)
		return fail(err, "superblock checksum mismatch: the store is corrupt");
	for (s = 0; s < 2; s++)
		if (found[s] == 1 && version[s] != BS_VERSION)
			return fail(err, "format version %u is not supported (this is version %d)",
				    version[s], BS_VERSION);
	/* The newest slot that checks out; a torn newest one falls back to the other. */
	for (s = 0; s < 2; s++)
		if (found[s] == 1 && (!cur || sb[s].generation > cur->generation))
			cur = &sb[s];
	fs->total_blocks = (uint64_t)size / BS_BLOCK;
	if (cur->index_len == 0 || cur->index_len > (1ULL << 32) ||
	    cur->index_block < BS_FIRST_DATA || cur->index_block > fs->total_blocks ||
	    cur->index_block + (cur->index_len + BS_BLOCK - 1) / BS_BLOCK > fs->total_blocks)
		return fail(err,
			    "the index lies past the end of the file (%lld bytes): the store "
			    "is truncated",
			    (long long)size);
	index = malloc(cur->index_len);
	if (!index)
		return fail(err, "out of memory");
	r = full_pread(fs->fd, index, cur->index_len, (off_t)(cur->index_block * BS_BLOCK));
	if (r < 0) {
		free(index);
		return fail(err, "cannot read the index: %s", strerror(-r));
	}
	if (crc32c(index, cur->index_len) != cur->index_crc) {
		free(index);
		return fail(err, "index checksum mismatch: the store is corrupt");
	}
	fs->generation = cur->generation;
	fs->index.start = cur->index_block;
	fs->index.n = (cur->index_len + BS_BLOCK - 1) / BS_BLOCK;
	c = (struct bs_cur){ index, index + cur->index_len, false };
	if (get_u32(&c) != BS_INDEX_MAGIC) {
		free(index);
		return fail(err, "index is inconsistent: bad index magic");
	}
	fs->next_ino = get_u64(&c);
	count = get_u64(&c);
	if (fs->next_ino != cur->next_ino || count > fs->next_ino)
		r = fail(err, "index is inconsistent: bad inode count");
	for (; r == 0 && count; count--)
		r = parse_inode(fs, &c, &des, &nr_des, err);
	if (r == 0 && c.p != c.end)
		r = fail(err, "index is inconsistent: trailing bytes");
	if (r == 0)
		r = link_tree(fs, des, nr_des, err);
	for (k = 0; k < nr_des; k++)
		free(des[k].name);
	free(des);
	free(index);
	if (r < 0)
		return r;
	/* Blocks written but never committed before a crash are free: zero them. */
	for (k = 0; k < fs->free.nr; k++)
		if (zero_blocks(fs, fs->free.v[k].start, fs->free.v[k].n) < 0)
			return fail(err, "cannot zero free blocks: %s", strerror(errno));
	return 0;
}

/* A new store: an empty root directory, committed. */
static int format(struct bs_fs *fs, struct bs_err *err)
{
	struct bs_inode *root;
	int r;

	fs->next_ino = ZC_ROOT_INO;
	fs->total_blocks = BS_FIRST_DATA;
	if (ftruncate(fs->fd, (off_t)(BS_FIRST_DATA * BS_BLOCK)) < 0)
		return fail(err, "cannot create the store: %s", strerror(errno));
	root = new_inode(fs, ZC_ROOT_INO, S_IFDIR | 0755);
	if (!root)
		return fail(err, "out of memory");
	root->st.st_uid = getuid();
	root->st.st_gid = getgid();
	root->parent = ZC_ROOT_INO;
	r = commit(fs);
	if (r < 0)
		return fail(err, "cannot create the store: %s", strerror(-r));
	return 0;
}

/* Open (or create) the store at @path; a message in @err on failure. */
static int open_store(struct bs_fs *fs, const char *path, struct bs_err *err)
{
	struct stat st;

	fs->path = path;
	fs->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fs->fd < 0)
		return fail(err, "%s", strerror(errno));
	if (fstat(fs->fd, &st) < 0)
		return fail(err, "%s", strerror(errno));
	if (!S_ISREG(st.st_mode))
		return fail(err, "not a regular file");
	if (flock(fs->fd, LOCK_EX | LOCK_NB) < 0)
		return fail(err, errno == EWOULDBLOCK ? "in use by another process" : "%s",
			    strerror(errno));
	if (st.st_size == 0)
		return format(fs, err);
	return load(fs, st.st_size, err);
}

static void close_store(struct bs_fs *fs)
{
	size_t i;

	for (i = 0; i < fs->nr_inodes; i++)
		if (fs->inodes[i])
			destroy_inode(fs->inodes[i]);
	free(fs->inodes);
	free(fs->free.v);
	free(fs->pending.v);
	if (fs->fd >= 0)
		close(fs->fd);
}

/* ---------------------------------------------------- the operations */

static void bs_destroy(void *userdata)
{
	struct bs_fs *fs = userdata;
	int r;

	pthread_mutex_lock(&fs->lock);
	r = commit(fs);
	pthread_mutex_unlock(&fs->lock);
	if (r < 0)
		fprintf(stderr, "blobstore: %s: cannot commit at unmount: %s\n", fs->path,
			strerror(-r));
}

static int bs_lookup(const struct zc_ctx *ctx, zc_ino_t parent, const char *name,
		     struct zc_entry *ret_entry)
{
	struct bs_fs *fs = ctx_fs(ctx);
	struct bs_inode *dir;
	struct bs_dirent *d;
	int r;

	pthread_mutex_lock(&fs->lock);
	r = get_dir(fs, parent, name, &dir);
	if (r == 0) {
		d = find(dir, name, NULL);
		if (d)
			fill_entry(d->inode, ret_entry);
		else
			r = -ENOENT;
	}
	pthread_mutex_unlock(&fs->lock);
	return r;
}

static void bs_forget(const struct zc_ctx *ctx, zc_ino_t ino, uint64_t nlookup)
{
	struct bs_fs *fs = ctx_fs(ctx);
	struct bs_inode *inode;

	pthread_mutex_lock(&fs->lock);
	inode = get_inode(fs, ino);
	if (inode) {
		inode->nlookup -= nlookup < inode->nlookup ? nlookup : inode->nlookup;
		maybe_free(fs, inode);
	}
	pthread_mutex_unlock(&fs->lock);
}

static int bs_getattr(const struct zc_ctx *ctx, zc_ino_t ino, uint64_t fh, struct stat *ret_attr)
{
	struct bs_fs *fs = ctx_fs(ctx);
	struct bs_inode *inode;

	pthread_mutex_lock(&fs->lock);
	inode = get_inode(fs, ino);
	if (inode)
		fill_attr(inode, ret_attr);
	pthread_mutex_unlock(&fs->lock);
	return inode ? 0 : -ENOENT;
}

static void set_time(struct timespec *t, const struct timespec *val, bool now)
{
	if (now)
		clock_gettime(CLOCK_REALTIME, t);
	else
		*t = *val;
}

static int bs_setattr(const struct zc_ctx *ctx, zc_ino_t ino, uint64_t fh, const struct stat *attr,
		      int to_set, struct stat *ret_attr)
{
	struct bs_fs *fs = ctx_fs(ctx);
	struct bs_inode *inode;
	int r = 0;

	pthread_mutex_lock(&fs->lock);
	inode = get_inode(fs, ino);
	pthread_mutex_unlock(&fs->lock);
	if (!inode)
		return -ENOENT;
	if (to_set & ZC_SET_ATTR_SIZE) {
		if (!S_ISREG(inode->st.st_mode))
			return S_ISDIR(inode->st.st_mode) ? -EISDIR : -EINVAL;
		pthread_rwlock_wrlock(&inode->map_lock);
	}
	pthread_mutex_lock(&fs->lock);
	if (to_set & ZC_SET_ATTR_SIZE) {
		r = set_size(fs, inode, attr->st_size);
		if (r == 0)
			touch(inode, true);
	}
	if (r == 0) {
		if (to_set & ZC_SET_ATTR_MODE)
			inode->st.st_mode = (inode->st.st_mode & S_IFMT) | (attr->st_mode & 07777);
		if (to_set & ZC_SET_ATTR_UID)
			inode->st.st_uid = attr->st_uid;
		if (to_set & ZC_SET_ATTR_GID)
			inode->st.st_gid = attr->st_gid;
		if (to_set & (ZC_SET_ATTR_ATIME | ZC_SET_ATTR_ATIME_NOW))
			set_time(&inode->st.st_atim, &attr->st_atim,
				 to_set & ZC_SET_ATTR_ATIME_NOW);
		if (to_set & (ZC_SET_ATTR_MTIME | ZC_SET_ATTR_MTIME_NOW))
			set_time(&inode->st.st_mtim, &attr->st_mtim,
				 to_set & ZC_SET_ATTR_MTIME_NOW);
		touch(inode, false);
		if (to_set & ZC_SET_ATTR_CTIME)
			inode->st.st_ctim = attr->st_ctim;
		fill_attr(inode, ret_attr);
	}
	pthread_mutex_unlock(&fs->lock);
	if (to_set & ZC_SET_ATTR_SIZE)
		pthread_rwlock_unlock(&inode->map_lock);
	return r;
}

static int bs_readlink(const struct zc_ctx *ctx, zc_ino_t ino, char *buf, size_t size)
{
	struct bs_fs *fs = ctx_fs(ctx);
	struct bs_inode *inode;
	int r = -EINVAL;

	pthread_mutex_lock(&fs->lock);
	inode = get_inode(fs, ino);
	if (inode && inode->target) {
		r = (int)strlen(inode->target);
		memcpy(buf, inode->target, (size_t)r < size ? (size_t)r : size);
	}
	pthread_mutex_unlock(&fs->lock);
	return r;
}

static int make_node(const struct zc_ctx *ctx, zc_ino_t parent, const char *name, mode_t mode,
		     dev_t rdev, const char *target, struct bs_inode **ret)
{
	struct bs_fs *fs = ctx_fs(ctx);
	struct bs_inode *dir, *inode;
	gid_t gid = ctx->gid;
	int r;

	r = get_dir(fs, parent, name, &dir);
	if (r < 0)
		return r;
	if (find(dir, name, NULL))
		return -EEXIST;
	if (dir->st.st_mode & S_ISGID) {
		gid = dir->st.st_gid;
		if (S_ISDIR(mode))
			mode |= S_ISGID;
	}
	inode = new_inode(fs, 0, mode);
	if (!inode)
		return -ENOMEM;
	inode->st.st_uid = ctx->uid;
	inode->st.st_gid = gid;
	inode->st.st_rdev = rdev;
	if (target) {
		inode->target = strdup(target);
		inode->st.st_size = (off_t)strlen(target);
	}
	if ((target && !inode->target) || add_dirent(dir, name, inode) < 0) {
		inode->st.st_nlink = 0;
		maybe_free(fs, inode);
		return -ENOMEM;
	}
	*ret = inode;
	return 0;
}

static int make_entry(const struct zc_ctx *ctx, zc_ino_t parent, const char *name, mode_t mode,
		      dev_t rdev, const char *target, struct zc_entry *ret_entry)
{
	struct bs_fs *fs = ctx_fs(ctx);
	struct bs_inode *inode;
	int r;

	pthread_mutex_lock(&fs->lock);
	r = make_node(ctx, parent, name, mode, rdev, target, &inode);
	if (r == 0)
		fill_entry(inode, ret_entry);
	pthread_mutex_unlock(&fs->lock);
	return r;
}

static int bs_mknod(const struct zc_ctx *ctx, zc_ino_t parent, const char *name, mode_t mode,
		    dev_t rdev, struct zc_entry *ret_entry)
{
	return make_entry(ctx, parent, name, mode, rdev, NULL, ret_entry);
}

static int bs_mkdir(const struct zc_ctx *ctx, zc_ino_t parent, const char *name, mode_t mode,
		    struct zc_entry *ret_entry)
{
	return make_entry(ctx, parent, name, S_IFDIR | (mode & 07777), 0, NULL, ret_entry);
}

static int bs_symlink(const struct zc_ctx *ctx, const char *target, zc_ino_t parent,
		      const char *name, struct zc_entry *ret_entry)
{
	if (strlen(target) > 4095)
		return -ENAMETOOLONG;
	return make_entry(ctx, parent, name, S_IFLNK | 0777, 0, target, ret_entry);
}

static int bs_link(const struct zc_ctx *ctx, zc_ino_t ino, zc_ino_t newparent, const char *newname,
		   struct zc_entry *ret_entry)
{
	struct bs_fs *fs = ctx_fs(ctx);
	struct bs_inode *dir, *inode;
	int r;

	pthread_mutex_lock(&fs->lock);
	inode = get_inode(fs, ino);
	r = get_dir(fs, newparent, newname, &dir);
	if (r == 0 && !inode)
		r = -ENOENT;
	else if (r == 0 && S_ISDIR(inode->st.st_mode))
		r = -EPERM;
	else if (r == 0 && find(dir, newname, NULL))
		r = -EEXIST;
	if (r == 0)
		r = add_dirent(dir, newname, inode);
	if (r == 0) {
		inode->st.st_nlink++;
		touch(inode, false);
		fill_entry(inode, ret_entry);
	}
	pthread_mutex_unlock(&fs->lock);
	return r;
}

static void drop_name(struct bs_fs *fs, struct bs_inode *dir, struct bs_dirent *d,
		      struct bs_dirent *prev)
{
	struct bs_inode *inode = d->inode;

	del_dirent(dir, d, prev);
	inode->st.st_nlink = S_ISDIR(inode->st.st_mode) ? 0 : inode->st.st_nlink - 1;
	touch(inode, false);
	maybe_free(fs, inode);
}

static int remove_name(const struct zc_ctx *ctx, zc_ino_t parent, const char *name, bool is_dir)
{
	struct bs_fs *fs = ctx_fs(ctx);
	struct bs_dirent *d, *prev;
	struct bs_inode *dir;
	int r;

	pthread_mutex_lock(&fs->lock);
	r = get_dir(fs, parent, name, &dir);
	if (r == 0 && !(d = find(dir, name, &prev)))
		r = -ENOENT;
	if (r == 0 && is_dir && !S_ISDIR(d->inode->st.st_mode))
		r = -ENOTDIR;
	else if (r == 0 && !is_dir && S_ISDIR(d->inode->st.st_mode))
		r = -EISDIR;
	else if (r == 0 && is_dir && d->inode->first)
		r = -ENOTEMPTY;
	if (r == 0)
		drop_name(fs, dir, d, prev);
	pthread_mutex_unlock(&fs->lock);
	return r;
}

static int bs_unlink(const struct zc_ctx *ctx, zc_ino_t parent, const char *name)
{
	return remove_name(ctx, parent, name, false);
}

static int bs_rmdir(const struct zc_ctx *ctx, zc_ino_t parent, const char *name)
{
	return remove_name(ctx, parent, name, true);
}

static void repoint(struct bs_inode *dir, struct bs_dirent *d, struct bs_inode *inode)
{
	if (S_ISDIR(d->inode->st.st_mode))
		dir->st.st_nlink--;
	if (S_ISDIR(inode->st.st_mode)) {
		dir->st.st_nlink++;
		inode->parent = dir->st.st_ino;
	}
	d->inode = inode;
	touch(inode, false);
	touch(dir, true);
}

static int do_rename(struct bs_fs *fs, struct bs_inode *odir, const char *name,
		     struct bs_inode *ndir, const char *newname, unsigned int flags)
{
	struct bs_dirent *od, *oprev, *nd, *nprev;
	struct bs_inode *inode, *other;
	int r;

	od = find(odir, name, &oprev);
	if (!od)
		return -ENOENT;
	nd = find(ndir, newname, &nprev);
	inode = od->inode;
	if (flags & RENAME_EXCHANGE) {
		if (!nd)
			return -ENOENT;
		other = nd->inode;
		repoint(odir, od, other);
		repoint(ndir, nd, inode);
		return 0;
	}
	if (nd && (flags & RENAME_NOREPLACE))
		return -EEXIST;
	if (nd) {
		other = nd->inode;
		if (other == inode)
			return 0;
		if (S_ISDIR(inode->st.st_mode) && !S_ISDIR(other->st.st_mode))
			return -ENOTDIR;
		if (!S_ISDIR(inode->st.st_mode) && S_ISDIR(other->st.st_mode))
			return -EISDIR;
		if (other->first)
			return -ENOTEMPTY;
	}
	r = add_dirent(ndir, newname, inode);
	if (r < 0)
		return r;
	if (nd)
		drop_name(fs, ndir, nd, nprev);
	od = find(odir, name, &oprev);
	del_dirent(odir, od, oprev);
	touch(inode, false);
	return 0;
}

static int bs_rename(const struct zc_ctx *ctx, zc_ino_t parent, const char *name,
		     zc_ino_t newparent, const char *newname, unsigned int flags)
{
	struct bs_fs *fs = ctx_fs(ctx);
	struct bs_inode *odir, *ndir;
	int r;

	if (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE))
		return -EINVAL;
	pthread_mutex_lock(&fs->lock);
	r = get_dir(fs, parent, name, &odir);
	if (r == 0)
		r = get_dir(fs, newparent, newname, &ndir);
	if (r == 0)
		r = do_rename(fs, odir, name, ndir, newname, flags);
	pthread_mutex_unlock(&fs->lock);
	return r;
}

/* The handle of an open file: its inode's address, bit 0 set for O_APPEND. */
#define BS_FH_APPEND 1u

static struct bs_inode *fh_inode(uint64_t fh)
{
	return (struct bs_inode *)(uintptr_t)(fh & ~(uint64_t)BS_FH_APPEND);
}

static void open_inode(struct bs_inode *inode, struct zc_file *file)
{
	inode->nopen++;
	file->fh = (uint64_t)(uintptr_t)inode | (file->flags & O_APPEND ? BS_FH_APPEND : 0);
}

static int bs_open(const struct zc_ctx *ctx, zc_ino_t ino, struct zc_file *file)
{
	struct bs_fs *fs = ctx_fs(ctx);
	struct bs_inode *inode;
	bool trunc;
	int r = 0;

	pthread_mutex_lock(&fs->lock);
	inode = get_inode(fs, ino);
	pthread_mutex_unlock(&fs->lock);
	if (!inode)
		return -ENOENT;
	trunc = (file->flags & O_TRUNC) && S_ISREG(inode->st.st_mode);
	if (trunc)
		pthread_rwlock_wrlock(&inode->map_lock);
	pthread_mutex_lock(&fs->lock);
	if (trunc && inode->st.st_size) {
		r = set_size(fs, inode, 0);
		touch(inode, true);
	}
	if (r == 0)
		open_inode(inode, file);
	pthread_mutex_unlock(&fs->lock);
	if (trunc)
		pthread_rwlock_unlock(&inode->map_lock);
	return r;
}

static int bs_create(const struct zc_ctx *ctx, zc_ino_t parent, const char *name, mode_t mode,
		     struct zc_file *file, struct zc_entry *ret_entry)
{
	struct bs_fs *fs = ctx_fs(ctx);
	struct bs_inode *inode;
	int r;

	pthread_mutex_lock(&fs->lock);
	r = make_node(ctx, parent, name, S_IFREG | (mode & 07777), 0, NULL, &inode);
	if (r == 0) {
		open_inode(inode, file);
		fill_entry(inode, ret_entry);
	}
	pthread_mutex_unlock(&fs->lock);
	return r;
}

/*
 * A read answers with where the bytes are: extents of the backing file,
 * and zero extents for holes. Only a range too fragmented for @max_ext
 * extents is read into a buffer (a memory extent, freed in read_done).
 */
static int bs_read(const struct zc_ctx *ctx, zc_ino_t ino, uint64_t fh, off_t off, size_t size,
		   struct zc_extent *ret_ext, unsigned int max_ext)
{
	struct bs_fs *fs = ctx_fs(ctx);
	struct bs_inode *inode = fh_inode(fh);
	void *buf;
	int n, r;

	pthread_rwlock_rdlock(&inode->map_lock);
	if (off >= inode->st.st_size)
		return 0;
	if ((off_t)size > inode->st.st_size - off)
		size = (size_t)(inode->st.st_size - off);
	n = map_extents(fs, inode, off, size, ret_ext, max_ext);
	if (n != -E2BIG)
		return n;
	if (posix_memalign(&buf, BS_BLOCK, size)) {
		pthread_rwlock_unlock(&inode->map_lock);
		return -ENOMEM;
	}
	r = copy_range(fs, inode, off, size, buf, false);
	if (r < 0) {
		free(buf);
		pthread_rwlock_unlock(&inode->map_lock);
		return r;
	}
	memset(ret_ext, 0, sizeof(*ret_ext));
	ret_ext->fd = -1;
	ret_ext->mem = buf;
	ret_ext->length = size;
	return 1;
}

static void bs_read_done(const struct zc_ctx *ctx, zc_ino_t ino, uint64_t fh, struct zc_extent *ext,
			 unsigned int n_ext)
{
	if (n_ext == 1 && ext[0].mem)
		free(ext[0].mem); /* the only memory extent bs_read() makes */
	pthread_rwlock_unlock(&fh_inode(fh)->map_lock);
}

/*
 * A write is offered extents of the backing file: blocks are allocated
 * for its holes first. The map stays locked until write_done().
 */
static int bs_write(const struct zc_ctx *ctx, zc_ino_t ino, uint64_t fh, off_t off, size_t size,
		    struct zc_extent *ret_ext, unsigned int max_ext)
{
	struct bs_fs *fs = ctx_fs(ctx);
	struct bs_inode *inode = fh_inode(fh);
	int n;

	pthread_rwlock_wrlock(&inode->map_lock);
	if (fh & BS_FH_APPEND)
		off = inode->st.st_size;
	if (off < 0 || (uint64_t)off + size > BS_MAX_BLOCKS * BS_BLOCK)
		return -EFBIG;
	inode->write_off = off;
	if (!size)
		return 0;
	pthread_mutex_lock(&fs->lock);
	n = map_blocks(fs, inode, (uint64_t)off / BS_BLOCK,
		       ((uint64_t)off + size + BS_BLOCK - 1) / BS_BLOCK);
	pthread_mutex_unlock(&fs->lock);
	if (n < 0)
		return n;
	n = map_extents(fs, inode, off, size, ret_ext, max_ext);
	if (n != -E2BIG)
		return n;
	/* Too fragmented: take the data in memory, write it out in write_done(). */
	if (posix_memalign(&inode->bounce, BS_BLOCK, size))
		return -ENOMEM;
	inode->bounce_len = size;
	memset(ret_ext, 0, sizeof(*ret_ext));
	ret_ext->fd = -1;
	ret_ext->mem = inode->bounce;
	ret_ext->length = size;
	return 1;
}

static ssize_t bs_write_done(const struct zc_ctx *ctx, zc_ino_t ino, uint64_t fh, off_t off,
			     ssize_t written)
{
	struct bs_fs *fs = ctx_fs(ctx);
	struct bs_inode *inode = fh_inode(fh);

	if (inode->bounce) {
		if (written > 0) {
			int r = copy_range(fs, inode, inode->write_off, (size_t)written,
					   inode->bounce, true);

			written = r < 0 ? r : written;
		}
		free(inode->bounce);
		inode->bounce = NULL;
	}
	if (written > 0) {
		pthread_mutex_lock(&fs->lock);
		if (inode->write_off + written > inode->st.st_size)
			inode->st.st_size = inode->write_off + written;
		touch(inode, true);
		pthread_mutex_unlock(&fs->lock);
	}
	pthread_rwlock_unlock(&inode->map_lock);
	return written;
}

static void bs_release(const struct zc_ctx *ctx, zc_ino_t ino, uint64_t fh)
{
	struct bs_fs *fs = ctx_fs(ctx);
	struct bs_inode *inode = fh_inode(fh);

	pthread_mutex_lock(&fs->lock);
	inode->nopen--;
	maybe_free(fs, inode);
	pthread_mutex_unlock(&fs->lock);
}

/* fsync of anything commits everything: the store has one index. */
static int bs_fsync(const struct zc_ctx *ctx, zc_ino_t ino, uint64_t fh, int datasync)
{
	struct bs_fs *fs = ctx_fs(ctx);
	int r;

	pthread_mutex_lock(&fs->lock);
	r = commit(fs);
	pthread_mutex_unlock(&fs->lock);
	return r;
}

static int bs_opendir(const struct zc_ctx *ctx, zc_ino_t ino, struct zc_file *file)
{
	file->fh = 0;
	return 0;
}

#define BS_BATCH 32

/* As in memfs: entries go to @fill without the lock (readdirplus looks them up). */
static int bs_readdir(const struct zc_ctx *ctx, zc_ino_t ino, uint64_t fh, off_t off,
		      zc_dir_fill_fn fill, void *fill_ctx)
{
	struct bs_fs *fs = ctx_fs(ctx);
	struct {
		char name[BS_NAME_MAX + 1];
		struct stat st;
		off_t cookie;
	} batch[BS_BATCH];
	int n, i, r;

	do {
		struct bs_inode *dir;
		struct bs_dirent *d;

		n = 0;
		pthread_mutex_lock(&fs->lock);
		r = get_dir(fs, ino, NULL, &dir);
		if (r < 0) {
			pthread_mutex_unlock(&fs->lock);
			return r;
		}
		for (; off < 2 && n < BS_BATCH; off++, n++) {
			strcpy(batch[n].name, off == 0 ? "." : "..");
			memset(&batch[n].st, 0, sizeof(batch[n].st));
			batch[n].st.st_ino = off == 0 ? ino : dir->parent;
			batch[n].st.st_mode = S_IFDIR;
			batch[n].cookie = off + 1;
		}
		for (d = dir->first; d && n < BS_BATCH; d = d->next) {
			if (d->cookie <= off)
				continue;
			strcpy(batch[n].name, d->name);
			memset(&batch[n].st, 0, sizeof(batch[n].st));
			batch[n].st.st_ino = d->inode->st.st_ino;
			batch[n].st.st_mode = d->inode->st.st_mode;
			batch[n].cookie = d->cookie;
			n++;
		}
		pthread_mutex_unlock(&fs->lock);
		for (i = 0; i < n; i++) {
			r = fill(fill_ctx, batch[i].name, &batch[i].st, batch[i].cookie);
			if (r != 0)
				return r < 0 ? r : 0;
			off = batch[i].cookie;
		}
	} while (n == BS_BATCH);
	return 0;
}

static int bs_statfs(const struct zc_ctx *ctx, zc_ino_t ino, struct statvfs *ret_stat)
{
	struct bs_fs *fs = ctx_fs(ctx);
	struct statvfs host;
	uint64_t free_blocks = 0;
	size_t i;

	if (fstatvfs(fs->fd, &host) < 0)
		return -errno;
	pthread_mutex_lock(&fs->lock);
	for (i = 0; i < fs->free.nr; i++)
		free_blocks += fs->free.v[i].n;
	memset(ret_stat, 0, sizeof(*ret_stat));
	ret_stat->f_bsize = BS_BLOCK;
	ret_stat->f_frsize = BS_BLOCK;
	/* Room to grow is what the host file system has left. */
	ret_stat->f_bavail = free_blocks + host.f_bavail * host.f_frsize / BS_BLOCK;
	ret_stat->f_bfree = ret_stat->f_bavail;
	ret_stat->f_blocks = fs->total_blocks + host.f_bavail * host.f_frsize / BS_BLOCK;
	ret_stat->f_files = ret_stat->f_ffree = ret_stat->f_favail = 1 << 24;
	ret_stat->f_namemax = BS_NAME_MAX;
	pthread_mutex_unlock(&fs->lock);
	return 0;
}

static int bs_fsyncdir(const struct zc_ctx *ctx, zc_ino_t ino, uint64_t fh, int datasync)
{
	return bs_fsync(ctx, ino, fh, datasync);
}

/* Extended attributes in the user, trusted and security namespaces. */
static bool xattr_ns_ok(const char *name)
{
	return !strncmp(name, "user.", 5) || !strncmp(name, "trusted.", 8) ||
	       !strncmp(name, "security.", 9);
}

static struct bs_xattr *find_xattr(struct bs_inode *inode, const char *name)
{
	size_t i;

	for (i = 0; i < inode->nr_xattrs; i++)
		if (!strcmp(inode->xattrs[i].name, name))
			return &inode->xattrs[i];
	return NULL;
}

static int bs_setxattr(const struct zc_ctx *ctx, zc_ino_t ino, const char *name, const void *value,
		       size_t size, int flags)
{
	struct bs_fs *fs = ctx_fs(ctx);
	struct bs_inode *inode;
	struct bs_xattr *x;
	void *copy;
	int r = 0;

	if (!xattr_ns_ok(name))
		return -EOPNOTSUPP;
	if (size > BS_XATTR_MAX)
		return -E2BIG;
	copy = malloc(size ? size : 1);
	if (!copy)
		return -ENOMEM;
	memcpy(copy, value, size);
	pthread_mutex_lock(&fs->lock);
	inode = get_inode(fs, ino);
	x = inode ? find_xattr(inode, name) : NULL;
	if (!inode)
		r = -ENOENT;
	else if (x && (flags & XATTR_CREATE))
		r = -EEXIST;
	else if (!x && (flags & XATTR_REPLACE))
		r = -ENODATA;
	else if (x) {
		free(x->value);
		x->value = copy;
		x->size = size;
		copy = NULL;
	} else {
		struct bs_xattr *v = realloc(inode->xattrs, (inode->nr_xattrs + 1) * sizeof(*v));
		char *dup = strdup(name);

		if (v)
			inode->xattrs = v;
		if (!v || !dup) {
			free(dup);
			r = -ENOMEM;
		} else {
			v[inode->nr_xattrs++] = (struct bs_xattr){ dup, copy, size };
			copy = NULL;
		}
	}
	if (r == 0)
		touch(inode, false);
	pthread_mutex_unlock(&fs->lock);
	free(copy);
	return r;
}

static int bs_getxattr(const struct zc_ctx *ctx, zc_ino_t ino, const char *name, void *buf,
		       size_t size)
{
	struct bs_fs *fs = ctx_fs(ctx);
	struct bs_inode *inode;
	struct bs_xattr *x;
	int r;

	if (!xattr_ns_ok(name))
		return -EOPNOTSUPP;
	pthread_mutex_lock(&fs->lock);
	inode = get_inode(fs, ino);
	x = inode ? find_xattr(inode, name) : NULL;
	r = !inode ? -ENOENT : !x ? -ENODATA : (int)x->size;
	if (x && size >= x->size)
		memcpy(buf, x->value, x->size);
	pthread_mutex_unlock(&fs->lock);
	return r;
}

static int bs_listxattr(const struct zc_ctx *ctx, zc_ino_t ino, char *buf, size_t size)
{
	struct bs_fs *fs = ctx_fs(ctx);
	struct bs_inode *inode;
	size_t i, len = 0;

	pthread_mutex_lock(&fs->lock);
	inode = get_inode(fs, ino);
	for (i = 0; inode && i < inode->nr_xattrs; i++) {
		size_t n = strlen(inode->xattrs[i].name) + 1;

		if (len + n <= size)
			memcpy(buf + len, inode->xattrs[i].name, n);
		len += n;
	}
	pthread_mutex_unlock(&fs->lock);
	return inode ? (int)len : -ENOENT;
}

static int bs_removexattr(const struct zc_ctx *ctx, zc_ino_t ino, const char *name)
{
	struct bs_fs *fs = ctx_fs(ctx);
	struct bs_inode *inode;
	struct bs_xattr *x;
	int r = 0;

	if (!xattr_ns_ok(name))
		return -EOPNOTSUPP;
	pthread_mutex_lock(&fs->lock);
	inode = get_inode(fs, ino);
	x = inode ? find_xattr(inode, name) : NULL;
	if (!inode) {
		r = -ENOENT;
	} else if (!x) {
		r = -ENODATA;
	} else {
		free(x->name);
		free(x->value);
		*x = inode->xattrs[--inode->nr_xattrs];
		touch(inode, false);
	}
	pthread_mutex_unlock(&fs->lock);
	return r;
}

static int bs_fallocate(const struct zc_ctx *ctx, zc_ino_t ino, uint64_t fh, int mode, off_t off,
			off_t len)
{
	struct bs_fs *fs = ctx_fs(ctx);
	struct bs_inode *inode = fh_inode(fh);
	uint64_t end = (uint64_t)off + (uint64_t)len;
	int r;

	if (mode & ~(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE))
		return -EOPNOTSUPP;
	if (off < 0 || len <= 0)
		return -EINVAL;
	if (end > BS_MAX_BLOCKS * BS_BLOCK)
		return -EFBIG;
	pthread_rwlock_wrlock(&inode->map_lock);
	pthread_mutex_lock(&fs->lock);
	if (mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE))
		r = punch(fs, inode, (uint64_t)off, end);
	else
		r = map_blocks(fs, inode, (uint64_t)off / BS_BLOCK,
			       (end + BS_BLOCK - 1) / BS_BLOCK);
	if (r == 0 && !(mode & FALLOC_FL_KEEP_SIZE) && (off_t)end > inode->st.st_size)
		inode->st.st_size = (off_t)end;
	if (r == 0)
		touch(inode, true);
	pthread_mutex_unlock(&fs->lock);
	pthread_rwlock_unlock(&inode->map_lock);
	return r;
}

/* SEEK_DATA and SEEK_HOLE from the extent map (the kernel serves the rest). */
static off_t bs_lseek(const struct zc_ctx *ctx, zc_ino_t ino, uint64_t fh, off_t off, int whence)
{
	struct bs_inode *inode = fh_inode(fh);
	uint64_t pos = (uint64_t)off, size;
	off_t r = -ENXIO;
	size_t i;

	if (whence != SEEK_DATA && whence != SEEK_HOLE)
		return -EINVAL;
	pthread_rwlock_rdlock(&inode->map_lock);
	size = (uint64_t)inode->st.st_size;
	if (off < 0 || pos >= size)
		goto out;
	i = ext_find(inode, pos / BS_BLOCK);
	if (whence == SEEK_DATA) {
		if (i < inode->nr_ext) {
			uint64_t start = inode->ext[i].fblk * BS_BLOCK;

			start = start > pos ? start : pos;
			r = start < size ? (off_t)start : -ENXIO;
		}
		goto out;
	}
	/* SEEK_HOLE: skip the extents that run on from pos. */
	while (i < inode->nr_ext && inode->ext[i].fblk * BS_BLOCK <= pos) {
		pos = (inode->ext[i].fblk + inode->ext[i].n) * BS_BLOCK;
		i++;
	}
	r = (off_t)(pos < size ? pos : size);
out:
	pthread_rwlock_unlock(&inode->map_lock);
	return r;
}

static const struct zc_backend_ops bs_ops = {
	.destroy = bs_destroy,
	.lookup = bs_lookup,
	.forget = bs_forget,
	.getattr = bs_getattr,
	.setattr = bs_setattr,
	.readlink = bs_readlink,
	.mknod = bs_mknod,
	.mkdir = bs_mkdir,
	.symlink = bs_symlink,
	.link = bs_link,
	.unlink = bs_unlink,
	.rmdir = bs_rmdir,
	.rename = bs_rename,
	.open = bs_open,
	.create = bs_create,
	.read = bs_read,
	.read_done = bs_read_done,
	.write = bs_write,
	.write_done = bs_write_done,
	.release = bs_release,
	.fsync = bs_fsync,
	.opendir = bs_opendir,
	.readdir = bs_readdir,
	.fsyncdir = bs_fsyncdir,
	.statfs = bs_statfs,
	.setxattr = bs_setxattr,
	.getxattr = bs_getxattr,
	.listxattr = bs_listxattr,
	.removexattr = bs_removexattr,
	.fallocate = bs_fallocate,
	.lseek = bs_lseek,
};

static void usage(FILE *out)
{
	fprintf(out,
		"usage: blobstore BACKING_FILE MOUNTPOINT [-f] [-d] [-s] [-o opt[,opt...]]\n"
		"\n"
		"Mount the file system kept in BACKING_FILE (a missing or empty file\n"
		"becomes a new, empty store).\n"
		"\n"
		"    -f    stay in the foreground\n"
		"    -d    print every request (implies -f)\n"
		"    -s    serve requests on one thread\n"
		"\n"
		"Mount options:\n%s",
		zc_options_help());
}

/* What the library has to say about how the mount runs. */
static void print_notice(void *data, const char *line)
{
	(void)data;
	fprintf(stderr, "blobstore: %s\n", line);
}

int main(int argc, char *argv[])
{
	struct bs_fs fs = { .lock = PTHREAD_MUTEX_INITIALIZER, .fd = -1 };
	const char *backing = NULL, *mountpoint = NULL;
	bool foreground = false;
	struct zc_session *s;
	struct bs_err err;
	int i, status = 1;

	s = zc_session_new(&bs_ops, sizeof(bs_ops), &fs);
	if (!s) {
		fprintf(stderr, "blobstore: out of memory\n");
		return 1;
	}
	zc_session_set_notice_handler(s, print_notice, NULL);
	for (i = 1; i < argc; i++) {
		const char *arg = argv[i];

		if (!strcmp(arg, "-h") || !strcmp(arg, "--help")) {
			usage(stdout);
			status = 0;
			goto out;
		} else if (!strcmp(arg, "-f")) {
			foreground = true;
		} else if (!strcmp(arg, "-d")) {
			foreground = true;
			zc_session_set_debug(s, 1);
		} else if (!strcmp(arg, "-s")) {
			zc_session_set_single_threaded(s, 1);
		} else if (!strncmp(arg, "-o", 2)) {
			const char *opts = arg[2] ? arg + 2 : argv[++i];

			if (!opts || zc_session_set_options(s, opts) < 0) {
				fprintf(stderr, "blobstore: %s\n",
					opts ? zc_session_error(s) : "-o needs a value");
				status = 2;
				goto out;
			}
		} else if (arg[0] != '-' && !backing) {
			backing = arg;
		} else if (arg[0] != '-' && !mountpoint) {
			mountpoint = arg;
		} else {
			fprintf(stderr,
				"blobstore: unexpected argument '%s' (see blobstore --help)\n",
				arg);
			status = 2;
			goto out;
		}
	}
	if (!mountpoint) {
		fprintf(stderr, "blobstore: missing %s (see blobstore --help)\n",
			backing ? "MOUNTPOINT" : "BACKING_FILE and MOUNTPOINT");
		status = 2;
		goto out;
	}
	/* Refuse a store that does not check out before anything is mounted. */
	if (open_store(&fs, backing, &err) < 0) {
		fprintf(stderr, "blobstore: %s: %s\n", backing, err.msg);
		goto out;
	}
	if (zc_session_set_option(s, "default_permissions") < 0 ||
	    zc_session_set_fsname(s, backing) < 0 || zc_session_mount(s, mountpoint) < 0 ||
	    (!foreground && zc_session_daemonize(s) < 0) || zc_session_loop(s) < 0) {
		fprintf(stderr, "blobstore: %s\n", zc_session_error(s));
		goto out;
	}
	status = 0;
out:
	zc_session_destroy(s);
	close_store(&fs);
	return status;
}
