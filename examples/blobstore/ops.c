/* SPDX-License-Identifier: MIT */
/*
 * The operations of the blob store, for libzcfuse: each takes the locks it
 * needs (blobstore.h says which, and in what order), calls the store, and
 * turns the store's answers into the library's types. This file and main.c
 * are the only ones that know FUSE.
 *
 * The data path: a read answers with extents of the backing file
 * (descriptor, offset, length) and holes as zero extents; a write is
 * offered extents of the backing file where its blocks are. The library
 * splices the bytes between /dev/fuse and the backing file through pipes,
 * so file data never enters this program's memory. Only a range too
 * fragmented for ZC_MAX_EXTENTS extents is copied through a buffer.
 *
 * A store whose blocks are not in a file (RADOS) has no file extents to
 * offer: a read is read into a buffer and answered with it, a memory
 * extent the library vmsplices; a write is offered a buffer and written
 * out in write_done(), its pieces in flight together.
 *
 * Locking: each file's extent map is held from read() to read_done() and
 * from write() to write_done().
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* RENAME_*, FALLOC_FL_*, SEEK_DATA */
#endif
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>
#include "ops.h"

_Static_assert(BS_ROOT_INO == ZC_ROOT_INO, "the root inode numbers differ");
_Static_assert(sizeof(bs_ino_t) == sizeof(zc_ino_t), "inode numbers differ in size");

static struct bs_fs *ctx_fs(const struct zc_ctx *ctx)
{
	return ctx->userdata;
}

static void fill_entry(struct bs_inode *inode, struct zc_entry *e)
{
	memset(e, 0, sizeof(*e));
	e->ino = inode->st.st_ino;
	bs_fill_attr(inode, &e->attr);
	inode->nlookup++;
}

/*
 * Bytes [off, off + len) of a file as extents of the backing file, holes
 * as zero extents. Returns how many, or -E2BIG when more than @max are
 * needed.
 */
static int map_extents(const struct bs_fs *fs, const struct bs_inode *inode, off_t off, size_t len,
		       struct zc_extent *ext, unsigned int max)
{
	struct bs_piece p[ZC_MAX_EXTENTS];
	int n, i;

	n = bs_map_range(inode, off, len, p, max < ZC_MAX_EXTENTS ? max : ZC_MAX_EXTENTS);
	for (i = 0; i < n; i++) {
		memset(&ext[i], 0, sizeof(ext[i]));
		ext[i].fd = p[i].hole ? -1 : fs->fd;
		ext[i].offset = p[i].offset;
		ext[i].length = p[i].length;
	}
	return n;
}

static void bs_destroy(void *userdata)
{
	struct bs_fs *fs = userdata;
	int r;

	pthread_mutex_lock(&fs->lock);
	r = bs_commit(fs);
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
	r = bs_get_dir(fs, parent, name, &dir);
	if (r == 0) {
		d = bs_find(dir, name, NULL);
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
	inode = bs_get_inode(fs, ino);
	if (inode) {
		inode->nlookup -= nlookup < inode->nlookup ? nlookup : inode->nlookup;
		bs_maybe_free(fs, inode);
	}
	pthread_mutex_unlock(&fs->lock);
}

static int bs_getattr(const struct zc_ctx *ctx, zc_ino_t ino, uint64_t fh, struct stat *ret_attr)
{
	struct bs_fs *fs = ctx_fs(ctx);
	struct bs_inode *inode;

	pthread_mutex_lock(&fs->lock);
	inode = bs_get_inode(fs, ino);
	if (inode)
		bs_fill_attr(inode, ret_attr);
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
	inode = bs_get_inode(fs, ino);
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
		r = bs_set_size(fs, inode, attr->st_size);
		if (r == 0)
			bs_touch(inode, true);
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
		bs_touch(inode, false);
		if (to_set & ZC_SET_ATTR_CTIME)
			inode->st.st_ctim = attr->st_ctim;
		bs_fill_attr(inode, ret_attr);
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
	inode = bs_get_inode(fs, ino);
	if (inode && inode->target) {
		r = (int)strlen(inode->target);
		memcpy(buf, inode->target, (size_t)r < size ? (size_t)r : size);
	}
	pthread_mutex_unlock(&fs->lock);
	return r;
}

static int make_entry(const struct zc_ctx *ctx, zc_ino_t parent, const char *name, mode_t mode,
		      dev_t rdev, const char *target, struct zc_entry *ret_entry)
{
	struct bs_fs *fs = ctx_fs(ctx);
	struct bs_inode *inode;
	int r;

	pthread_mutex_lock(&fs->lock);
	r = bs_make_node(fs, parent, name, mode, rdev, target, ctx->uid, ctx->gid, &inode);
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
	struct bs_inode *inode;
	int r;

	pthread_mutex_lock(&fs->lock);
	r = bs_add_link(fs, ino, newparent, newname, &inode);
	if (r == 0)
		fill_entry(inode, ret_entry);
	pthread_mutex_unlock(&fs->lock);
	return r;
}

static int remove_name(const struct zc_ctx *ctx, zc_ino_t parent, const char *name, bool is_dir)
{
	struct bs_fs *fs = ctx_fs(ctx);
	int r;

	pthread_mutex_lock(&fs->lock);
	r = bs_remove_name(fs, parent, name, is_dir);
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

static int bs_rename(const struct zc_ctx *ctx, zc_ino_t parent, const char *name,
		     zc_ino_t newparent, const char *newname, unsigned int flags)
{
	struct bs_fs *fs = ctx_fs(ctx);
	int r;

	pthread_mutex_lock(&fs->lock);
	r = bs_rename_name(fs, parent, name, newparent, newname, flags);
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
	inode = bs_get_inode(fs, ino);
	pthread_mutex_unlock(&fs->lock);
	if (!inode)
		return -ENOENT;
	trunc = (file->flags & O_TRUNC) && S_ISREG(inode->st.st_mode);
	if (trunc)
		pthread_rwlock_wrlock(&inode->map_lock);
	pthread_mutex_lock(&fs->lock);
	if (trunc && inode->st.st_size) {
		r = bs_set_size(fs, inode, 0);
		bs_touch(inode, true);
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
	r = bs_make_node(fs, parent, name, S_IFREG | (mode & 07777), 0, NULL, ctx->uid, ctx->gid,
			 &inode);
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
	n = fs->fd < 0 ? -E2BIG : map_extents(fs, inode, off, size, ret_ext, max_ext);
	if (n != -E2BIG)
		return n;
	if (posix_memalign(&buf, BS_BLOCK, size)) {
		pthread_rwlock_unlock(&inode->map_lock);
		return -ENOMEM;
	}
	r = bs_copy_range(fs, inode, off, size, buf, false);
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
	n = bs_map_blocks(fs, inode, (uint64_t)off / BS_BLOCK,
			  ((uint64_t)off + size + BS_BLOCK - 1) / BS_BLOCK);
	pthread_mutex_unlock(&fs->lock);
	if (n < 0)
		return n;
	n = fs->fd < 0 ? -E2BIG : map_extents(fs, inode, off, size, ret_ext, max_ext);
	if (n != -E2BIG)
		return n;
	/* Too fragmented (or not in a file): take the data in memory, write it out in write_done(). */
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
			int r = bs_copy_range(fs, inode, inode->write_off, (size_t)written,
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
		bs_touch(inode, true);
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
	bs_maybe_free(fs, inode);
	pthread_mutex_unlock(&fs->lock);
}

/* fsync of anything commits everything: the store has one index. */
static int bs_fsync(const struct zc_ctx *ctx, zc_ino_t ino, uint64_t fh, int datasync)
{
	struct bs_fs *fs = ctx_fs(ctx);
	int r;

	pthread_mutex_lock(&fs->lock);
	r = bs_commit(fs);
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
		r = bs_get_dir(fs, ino, NULL, &dir);
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
	uint64_t free_blocks, avail;
	int r;

	r = fs->space->avail(fs, &avail);
	if (r < 0)
		return r;
	pthread_mutex_lock(&fs->lock);
	free_blocks = bs_runs_total(&fs->free);
	memset(ret_stat, 0, sizeof(*ret_stat));
	ret_stat->f_bsize = BS_BLOCK;
	ret_stat->f_frsize = BS_BLOCK;
	/* Room to grow is what the host file system (or the cluster) has left. */
	ret_stat->f_bavail = free_blocks + avail;
	ret_stat->f_bfree = ret_stat->f_bavail;
	ret_stat->f_blocks = fs->total_blocks + avail;
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
static int bs_setxattr(const struct zc_ctx *ctx, zc_ino_t ino, const char *name, const void *value,
		       size_t size, int flags)
{
	struct bs_fs *fs = ctx_fs(ctx);
	int r;

	pthread_mutex_lock(&fs->lock);
	r = bs_set_xattr(fs, ino, name, value, size, flags);
	pthread_mutex_unlock(&fs->lock);
	return r;
}

static int bs_getxattr(const struct zc_ctx *ctx, zc_ino_t ino, const char *name, void *buf,
		       size_t size)
{
	struct bs_fs *fs = ctx_fs(ctx);
	int r;

	pthread_mutex_lock(&fs->lock);
	r = bs_get_xattr(fs, ino, name, buf, size);
	pthread_mutex_unlock(&fs->lock);
	return r;
}

static int bs_listxattr(const struct zc_ctx *ctx, zc_ino_t ino, char *buf, size_t size)
{
	struct bs_fs *fs = ctx_fs(ctx);
	int r;

	pthread_mutex_lock(&fs->lock);
	r = bs_list_xattr(fs, ino, buf, size);
	pthread_mutex_unlock(&fs->lock);
	return r;
}

static int bs_removexattr(const struct zc_ctx *ctx, zc_ino_t ino, const char *name)
{
	struct bs_fs *fs = ctx_fs(ctx);
	int r;

	pthread_mutex_lock(&fs->lock);
	r = bs_remove_xattr(fs, ino, name);
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
		r = bs_punch(fs, inode, (uint64_t)off, end);
	else
		r = bs_map_blocks(fs, inode, (uint64_t)off / BS_BLOCK,
				  (end + BS_BLOCK - 1) / BS_BLOCK);
	if (r == 0 && !(mode & FALLOC_FL_KEEP_SIZE) && (off_t)end > inode->st.st_size)
		inode->st.st_size = (off_t)end;
	if (r == 0)
		bs_touch(inode, true);
	pthread_mutex_unlock(&fs->lock);
	pthread_rwlock_unlock(&inode->map_lock);
	return r;
}

/* SEEK_DATA and SEEK_HOLE from the extent map (the kernel serves the rest). */
static off_t bs_lseek(const struct zc_ctx *ctx, zc_ino_t ino, uint64_t fh, off_t off, int whence)
{
	struct bs_inode *inode = fh_inode(fh);
	off_t r;

	if (whence != SEEK_DATA && whence != SEEK_HOLE)
		return -EINVAL;
	pthread_rwlock_rdlock(&inode->map_lock);
	r = bs_seek(inode, off, whence == SEEK_DATA);
	pthread_rwlock_unlock(&inode->map_lock);
	return r;
}

const struct zc_backend_ops bs_ops = {
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
