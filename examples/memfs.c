/* SPDX-License-Identifier: MIT */
/*
 * memfs: a file system that lives in memory, the smallest complete
 * libzcfuse backend.
 *
 * Build it against the installed library:
 *
 *     cc -o memfs memfs.c $(pkg-config --cflags --libs zcfuse)
 *
 * Run it, use it, unmount it (everything is gone afterwards):
 *
 *     ./memfs MOUNTPOINT [-f] [-d] [-s] [-o opt[,opt...]]
 *     fusermount3 -u MOUNTPOINT
 *
 * What it shows:
 *
 * - Metadata operations fill in plain structs (struct stat, struct
 *   zc_entry) and return 0 or a negative errno.
 * - The data operations never copy file data. A read answers with a memory
 *   extent that points into the file's buffer; a write is offered a memory
 *   extent in that buffer, and the library moves the bytes there (with
 *   vmsplice and splice where it can). The buffer is page-aligned memory
 *   from mmap() that grows with mremap().
 * - Concurrency: operations run on several threads at once. One mutex
 *   guards the tree; each file's buffer has a read-write lock held from
 *   read() to read_done() and from write() to write_done(), so a buffer
 *   never moves or shrinks while the library is moving bytes in or out.
 * - Permissions are left to the kernel (the default_permissions option):
 *   the attributes memfs keeps are all it needs to check them.
 *
 * What it leaves out: extended attributes (a file lists none and setting one
 * fails with EOPNOTSUPP), and SEEK_DATA/SEEK_HOLE (a file is all data).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* mremap(), RENAME_*, FALLOC_FL_* */
#endif
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include <zcfuse/zcfuse.h>

#define MEM_PAGE     4096
#define MEM_NAME_MAX 255
#define MEM_MAX_SIZE (64ULL << 30) /* largest file */

struct mem_inode;

struct mem_dirent {
	char *name;
	struct mem_inode *inode;
	off_t cookie; /* readdir offset: grows with every insertion */
	struct mem_dirent *next;
};

struct mem_inode {
	struct stat st;	  /* st_size is the file size; under fs->lock */
	uint64_t nlookup; /* lookups the kernel holds */
	unsigned int nopen;
	/* directories */
	struct mem_dirent *first, *last;
	off_t next_cookie;
	zc_ino_t parent;
	/* symlinks */
	char *target;
	/* regular files: the data lives in [data, data + cap) */
	pthread_rwlock_t data_lock;
	char *data;
	size_t cap;
	off_t write_off; /* where the write between write() and write_done() goes */
};

struct mem_fs {
	pthread_mutex_t lock;
	struct mem_inode **inodes; /* by inode number; numbers are never reused */
	size_t nr_inodes;
	zc_ino_t next_ino;
};

static struct mem_fs *ctx_fs(const struct zc_ctx *ctx)
{
	return ctx->userdata;
}

static struct mem_inode *get_inode(struct mem_fs *fs, zc_ino_t ino)
{
	return ino < fs->nr_inodes ? fs->inodes[ino] : NULL;
}

static void touch(struct mem_inode *inode, bool mtime)
{
	clock_gettime(CLOCK_REALTIME, &inode->st.st_ctim);
	if (mtime)
		inode->st.st_mtim = inode->st.st_ctim;
}

static void fill_attr(const struct mem_inode *inode, struct stat *st)
{
	*st = inode->st;
	st->st_blksize = MEM_PAGE;
	st->st_blocks = (blkcnt_t)(inode->cap / 512);
}

static void fill_entry(struct mem_inode *inode, struct zc_entry *e)
{
	memset(e, 0, sizeof(*e));
	e->ino = inode->st.st_ino;
	fill_attr(inode, &e->attr);
	inode->nlookup++;
}

static struct mem_inode *new_inode(struct mem_fs *fs, mode_t mode, uid_t uid, gid_t gid)
{
	struct mem_inode *inode;

	if (fs->next_ino >= fs->nr_inodes) {
		size_t n = fs->nr_inodes ? fs->nr_inodes * 2 : 64;
		struct mem_inode **grown = realloc(fs->inodes, n * sizeof(*grown));

		if (!grown)
			return NULL;
		memset(grown + fs->nr_inodes, 0, (n - fs->nr_inodes) * sizeof(*grown));
		fs->inodes = grown;
		fs->nr_inodes = n;
	}
	inode = calloc(1, sizeof(*inode));
	if (!inode)
		return NULL;
	pthread_rwlock_init(&inode->data_lock, NULL);
	inode->st.st_ino = fs->next_ino++;
	inode->st.st_mode = mode;
	inode->st.st_nlink = S_ISDIR(mode) ? 2 : 1;
	inode->st.st_uid = uid;
	inode->st.st_gid = gid;
	inode->next_cookie = 3; /* 1 and 2 are "." and ".." */
	touch(inode, true);
	inode->st.st_atim = inode->st.st_mtim;
	fs->inodes[inode->st.st_ino] = inode;
	return inode;
}

/* Free an inode nobody can reach any more: no name, no lookup, no open. */
static void maybe_free(struct mem_fs *fs, struct mem_inode *inode)
{
	if (inode->st.st_nlink || inode->nlookup || inode->nopen || inode->st.st_ino == ZC_ROOT_INO)
		return;
	fs->inodes[inode->st.st_ino] = NULL;
	if (inode->data)
		munmap(inode->data, inode->cap);
	pthread_rwlock_destroy(&inode->data_lock);
	free(inode->target);
	free(inode);
}

static struct mem_dirent *find(struct mem_inode *dir, const char *name, struct mem_dirent **prev)
{
	struct mem_dirent *d, *p = NULL;

	for (d = dir->first; d; p = d, d = d->next)
		if (!strcmp(d->name, name))
			break;
	if (prev)
		*prev = p;
	return d;
}

static int add_dirent(struct mem_inode *dir, const char *name, struct mem_inode *inode)
{
	struct mem_dirent *d = calloc(1, sizeof(*d));

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

static void del_dirent(struct mem_inode *dir, struct mem_dirent *d, struct mem_dirent *prev)
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

/* The directory @ino, or an error for a missing one or a non-directory. */
static int get_dir(struct mem_fs *fs, zc_ino_t ino, const char *name, struct mem_inode **ret)
{
	struct mem_inode *dir = get_inode(fs, ino);

	if (!dir)
		return -ENOENT;
	if (!S_ISDIR(dir->st.st_mode))
		return -ENOTDIR;
	if (name && strlen(name) > MEM_NAME_MAX)
		return -ENAMETOOLONG;
	*ret = dir;
	return 0;
}

/* Make the file's buffer hold at least @size bytes. Call with data_lock held for writing. */
static int reserve(struct mem_inode *inode, size_t size)
{
	size_t cap;
	void *p;

	if (size <= inode->cap)
		return 0;
	if (size > MEM_MAX_SIZE)
		return -EFBIG;
	cap = inode->cap ? inode->cap : MEM_PAGE;
	while (cap < size)
		cap *= 2;
	if (inode->data)
		p = mremap(inode->data, inode->cap, cap, MREMAP_MAYMOVE);
	else
		p = mmap(NULL, cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return -ENOSPC;
	inode->data = p;
	inode->cap = cap;
	return 0;
}

/* Set the size; bytes past it read as zeros. Call with data_lock held for writing. */
static int set_size(struct mem_inode *inode, off_t size)
{
	int r = reserve(inode, (size_t)size);

	if (r < 0)
		return r;
	if (size < inode->st.st_size)
		memset(inode->data + size, 0, (size_t)(inode->st.st_size - size));
	inode->st.st_size = size;
	return 0;
}

static int mem_lookup(const struct zc_ctx *ctx, zc_ino_t parent, const char *name,
		      struct zc_entry *ret_entry)
{
	struct mem_fs *fs = ctx_fs(ctx);
	struct mem_inode *dir;
	struct mem_dirent *d;
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

static void mem_forget(const struct zc_ctx *ctx, zc_ino_t ino, uint64_t nlookup)
{
	struct mem_fs *fs = ctx_fs(ctx);
	struct mem_inode *inode;

	pthread_mutex_lock(&fs->lock);
	inode = get_inode(fs, ino);
	if (inode) {
		inode->nlookup -= nlookup < inode->nlookup ? nlookup : inode->nlookup;
		maybe_free(fs, inode);
	}
	pthread_mutex_unlock(&fs->lock);
}

static int mem_getattr(const struct zc_ctx *ctx, zc_ino_t ino, uint64_t fh, struct stat *ret_attr)
{
	struct mem_fs *fs = ctx_fs(ctx);
	struct mem_inode *inode;

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

static int mem_setattr(const struct zc_ctx *ctx, zc_ino_t ino, uint64_t fh, const struct stat *attr,
		       int to_set, struct stat *ret_attr)
{
	struct mem_fs *fs = ctx_fs(ctx);
	struct mem_inode *inode;
	int r = 0;

	pthread_mutex_lock(&fs->lock);
	inode = get_inode(fs, ino);
	pthread_mutex_unlock(&fs->lock);
	if (!inode)
		return -ENOENT;
	/* The buffer lock comes first, then the tree lock. */
	if (to_set & ZC_SET_ATTR_SIZE) {
		if (!S_ISREG(inode->st.st_mode))
			return S_ISDIR(inode->st.st_mode) ? -EISDIR : -EINVAL;
		pthread_rwlock_wrlock(&inode->data_lock);
	}
	pthread_mutex_lock(&fs->lock);
	if (to_set & ZC_SET_ATTR_SIZE) {
		r = set_size(inode, attr->st_size);
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
		pthread_rwlock_unlock(&inode->data_lock);
	return r;
}

static int mem_readlink(const struct zc_ctx *ctx, zc_ino_t ino, char *buf, size_t size)
{
	struct mem_fs *fs = ctx_fs(ctx);
	struct mem_inode *inode;
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

/* Create @name in @parent: the common part of mknod, mkdir, symlink and create. */
static int make_node(const struct zc_ctx *ctx, zc_ino_t parent, const char *name, mode_t mode,
		     dev_t rdev, const char *target, struct mem_inode **ret)
{
	struct mem_fs *fs = ctx_fs(ctx);
	struct mem_inode *dir, *inode;
	gid_t gid = ctx->gid;
	int r;

	r = get_dir(fs, parent, name, &dir);
	if (r < 0)
		return r;
	if (find(dir, name, NULL))
		return -EEXIST;
	/* A setgid directory passes its group on, and its setgid bit to directories. */
	if (dir->st.st_mode & S_ISGID) {
		gid = dir->st.st_gid;
		if (S_ISDIR(mode))
			mode |= S_ISGID;
	}
	inode = new_inode(fs, mode, ctx->uid, gid);
	if (!inode)
		return -ENOMEM;
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
	struct mem_fs *fs = ctx_fs(ctx);
	struct mem_inode *inode;
	int r;

	pthread_mutex_lock(&fs->lock);
	r = make_node(ctx, parent, name, mode, rdev, target, &inode);
	if (r == 0)
		fill_entry(inode, ret_entry);
	pthread_mutex_unlock(&fs->lock);
	return r;
}

static int mem_mknod(const struct zc_ctx *ctx, zc_ino_t parent, const char *name, mode_t mode,
		     dev_t rdev, struct zc_entry *ret_entry)
{
	return make_entry(ctx, parent, name, mode, rdev, NULL, ret_entry);
}

static int mem_mkdir(const struct zc_ctx *ctx, zc_ino_t parent, const char *name, mode_t mode,
		     struct zc_entry *ret_entry)
{
	return make_entry(ctx, parent, name, S_IFDIR | (mode & 07777), 0, NULL, ret_entry);
}

static int mem_symlink(const struct zc_ctx *ctx, const char *target, zc_ino_t parent,
		       const char *name, struct zc_entry *ret_entry)
{
	return make_entry(ctx, parent, name, S_IFLNK | 0777, 0, target, ret_entry);
}

static int mem_link(const struct zc_ctx *ctx, zc_ino_t ino, zc_ino_t newparent, const char *newname,
		    struct zc_entry *ret_entry)
{
	struct mem_fs *fs = ctx_fs(ctx);
	struct mem_inode *dir, *inode;
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

/* Take @d's name away from its inode (unlink, rmdir, rename over it). */
static void drop_name(struct mem_fs *fs, struct mem_inode *dir, struct mem_dirent *d,
		      struct mem_dirent *prev)
{
	struct mem_inode *inode = d->inode;

	del_dirent(dir, d, prev);
	inode->st.st_nlink = S_ISDIR(inode->st.st_mode) ? 0 : inode->st.st_nlink - 1;
	touch(inode, false);
	maybe_free(fs, inode);
}

static int remove_name(const struct zc_ctx *ctx, zc_ino_t parent, const char *name, bool is_dir)
{
	struct mem_fs *fs = ctx_fs(ctx);
	struct mem_dirent *d, *prev;
	struct mem_inode *dir;
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

static int mem_unlink(const struct zc_ctx *ctx, zc_ino_t parent, const char *name)
{
	return remove_name(ctx, parent, name, false);
}

static int mem_rmdir(const struct zc_ctx *ctx, zc_ino_t parent, const char *name)
{
	return remove_name(ctx, parent, name, true);
}

/* Point dirent @d in @dir at @inode instead (a directory changes parents). */
static void repoint(struct mem_inode *dir, struct mem_dirent *d, struct mem_inode *inode)
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

static int do_rename(struct mem_fs *fs, struct mem_inode *odir, const char *name,
		     struct mem_inode *ndir, const char *newname, unsigned int flags)
{
	struct mem_dirent *od, *oprev, *nd, *nprev;
	struct mem_inode *inode, *other;
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
	/* Insert the new name before removing anything: only this can fail. */
	r = add_dirent(ndir, newname, inode);
	if (r < 0)
		return r;
	if (nd)
		drop_name(fs, ndir, nd, nprev);
	/* Find the old name again: dropping the other may have changed the list. */
	od = find(odir, name, &oprev);
	del_dirent(odir, od, oprev);
	touch(inode, false);
	return 0;
}

static int mem_rename(const struct zc_ctx *ctx, zc_ino_t parent, const char *name,
		      zc_ino_t newparent, const char *newname, unsigned int flags)
{
	struct mem_fs *fs = ctx_fs(ctx);
	struct mem_inode *odir, *ndir;
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

/*
 * An open file's handle is its inode's address, with the lowest bit set
 * for O_APPEND (inodes are aligned). Nothing to allocate, nothing to leak
 * when the kernel drops a release at unmount.
 */
#define MEM_FH_APPEND 1u

static struct mem_inode *fh_inode(uint64_t fh)
{
	return (struct mem_inode *)(uintptr_t)(fh & ~(uint64_t)MEM_FH_APPEND);
}

static void open_inode(struct mem_inode *inode, struct zc_file *file)
{
	inode->nopen++;
	file->fh = (uint64_t)(uintptr_t)inode | (file->flags & O_APPEND ? MEM_FH_APPEND : 0);
}

static int mem_open(const struct zc_ctx *ctx, zc_ino_t ino, struct zc_file *file)
{
	struct mem_fs *fs = ctx_fs(ctx);
	struct mem_inode *inode;
	bool trunc;

	pthread_mutex_lock(&fs->lock);
	inode = get_inode(fs, ino);
	pthread_mutex_unlock(&fs->lock);
	if (!inode)
		return -ENOENT;
	trunc = (file->flags & O_TRUNC) && S_ISREG(inode->st.st_mode);
	if (trunc)
		pthread_rwlock_wrlock(&inode->data_lock);
	pthread_mutex_lock(&fs->lock);
	open_inode(inode, file);
	if (trunc && inode->st.st_size) {
		set_size(inode, 0); /* shrinking: cannot fail */
		touch(inode, true);
	}
	pthread_mutex_unlock(&fs->lock);
	if (trunc)
		pthread_rwlock_unlock(&inode->data_lock);
	return 0;
}

static int mem_create(const struct zc_ctx *ctx, zc_ino_t parent, const char *name, mode_t mode,
		      struct zc_file *file, struct zc_entry *ret_entry)
{
	struct mem_fs *fs = ctx_fs(ctx);
	struct mem_inode *inode;
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
 * A read answers with the bytes where they are: one memory extent into the
 * file's buffer. The buffer stays locked for reading until read_done().
 */
static int mem_read(const struct zc_ctx *ctx, zc_ino_t ino, uint64_t fh, off_t off, size_t size,
		    struct zc_extent *ret_ext, unsigned int max_ext)
{
	struct mem_inode *inode = fh_inode(fh);
	off_t end;

	pthread_rwlock_rdlock(&inode->data_lock);
	end = inode->st.st_size; /* changes only under data_lock held for writing */
	if (off >= end)
		return 0;
	memset(ret_ext, 0, sizeof(*ret_ext));
	ret_ext->fd = -1;
	ret_ext->mem = inode->data + off;
	ret_ext->length = (size_t)(end - off) < size ? (size_t)(end - off) : size;
	return 1;
}

static void mem_read_done(const struct zc_ctx *ctx, zc_ino_t ino, uint64_t fh,
			  struct zc_extent *ext, unsigned int n_ext)
{
	pthread_rwlock_unlock(&fh_inode(fh)->data_lock);
}

/*
 * A write is offered one memory extent in the file's buffer, grown to hold
 * it; the library moves the bytes there. The buffer stays locked for
 * writing until write_done(), which the library calls after every write().
 */
static int mem_write(const struct zc_ctx *ctx, zc_ino_t ino, uint64_t fh, off_t off, size_t size,
		     struct zc_extent *ret_ext, unsigned int max_ext)
{
	struct mem_inode *inode = fh_inode(fh);
	int r;

	pthread_rwlock_wrlock(&inode->data_lock);
	if (fh & MEM_FH_APPEND)
		off = inode->st.st_size;
	if (off < 0 || (uint64_t)off + size > MEM_MAX_SIZE)
		return -EFBIG;
	r = reserve(inode, (size_t)off + size);
	if (r < 0)
		return r;
	inode->write_off = off;
	memset(ret_ext, 0, sizeof(*ret_ext));
	ret_ext->fd = -1;
	ret_ext->mem = inode->data + off;
	ret_ext->length = size;
	return 1;
}

static ssize_t mem_write_done(const struct zc_ctx *ctx, zc_ino_t ino, uint64_t fh, off_t off,
			      ssize_t written)
{
	struct mem_fs *fs = ctx_fs(ctx);
	struct mem_inode *inode = fh_inode(fh);

	if (written > 0) {
		pthread_mutex_lock(&fs->lock);
		if (inode->write_off + written > inode->st.st_size)
			inode->st.st_size = inode->write_off + written;
		touch(inode, true);
		pthread_mutex_unlock(&fs->lock);
	}
	pthread_rwlock_unlock(&inode->data_lock);
	return written;
}

static void mem_release(const struct zc_ctx *ctx, zc_ino_t ino, uint64_t fh)
{
	struct mem_fs *fs = ctx_fs(ctx);
	struct mem_inode *inode = fh_inode(fh);

	pthread_mutex_lock(&fs->lock);
	inode->nopen--;
	maybe_free(fs, inode);
	pthread_mutex_unlock(&fs->lock);
}

static int mem_fsync(const struct zc_ctx *ctx, zc_ino_t ino, uint64_t fh, int datasync)
{
	return 0; /* memory is as durable as it gets */
}

static int mem_opendir(const struct zc_ctx *ctx, zc_ino_t ino, struct zc_file *file)
{
	file->fh = 0;
	return 0;
}

/*
 * Entries are handed to @fill without the lock held: for readdirplus the
 * library calls lookup() from inside @fill. So they are copied out in
 * batches first.
 */
#define MEM_BATCH 32

static int mem_readdir(const struct zc_ctx *ctx, zc_ino_t ino, uint64_t fh, off_t off,
		       zc_dir_fill_fn fill, void *fill_ctx)
{
	struct mem_fs *fs = ctx_fs(ctx);
	struct {
		char name[MEM_NAME_MAX + 1];
		struct stat st;
		off_t cookie;
	} batch[MEM_BATCH];
	int n, i, r;

	do {
		struct mem_inode *dir;
		struct mem_dirent *d;

		n = 0;
		pthread_mutex_lock(&fs->lock);
		r = get_dir(fs, ino, NULL, &dir);
		if (r < 0) {
			pthread_mutex_unlock(&fs->lock);
			return r;
		}
		for (; off < 2 && n < MEM_BATCH; off++, n++) {
			strcpy(batch[n].name, off == 0 ? "." : "..");
			memset(&batch[n].st, 0, sizeof(batch[n].st));
			batch[n].st.st_ino = off == 0 ? ino : dir->parent;
			batch[n].st.st_mode = S_IFDIR;
			batch[n].cookie = off + 1;
		}
		for (d = dir->first; d && n < MEM_BATCH; d = d->next) {
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
	} while (n == MEM_BATCH);
	return 0;
}

static int mem_statfs(const struct zc_ctx *ctx, zc_ino_t ino, struct statvfs *ret_stat)
{
	memset(ret_stat, 0, sizeof(*ret_stat));
	ret_stat->f_bsize = MEM_PAGE;
	ret_stat->f_frsize = MEM_PAGE;
	ret_stat->f_blocks = ret_stat->f_bfree = ret_stat->f_bavail = 1 << 24;
	ret_stat->f_files = ret_stat->f_ffree = ret_stat->f_favail = 1 << 24;
	ret_stat->f_namemax = MEM_NAME_MAX;
	return 0;
}

static int mem_fallocate(const struct zc_ctx *ctx, zc_ino_t ino, uint64_t fh, int mode, off_t off,
			 off_t len)
{
	struct mem_fs *fs = ctx_fs(ctx);
	struct mem_inode *inode = fh_inode(fh);
	bool keep = mode & FALLOC_FL_KEEP_SIZE;
	off_t end;
	int r;

	if (mode & ~(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE))
		return -EOPNOTSUPP;
	if (off < 0 || len <= 0)
		return -EINVAL;
	if ((uint64_t)off + (uint64_t)len > MEM_MAX_SIZE)
		return -EFBIG;
	pthread_rwlock_wrlock(&inode->data_lock);
	pthread_mutex_lock(&fs->lock);
	r = reserve(inode, (size_t)(off + len));
	if (r == 0 && (mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE))) {
		/* Past the end the buffer holds zeros already. */
		end = off + len < inode->st.st_size ? off + len : inode->st.st_size;
		if (end > off)
			memset(inode->data + off, 0, (size_t)(end - off));
		touch(inode, true);
	}
	if (r == 0 && !keep && off + len > inode->st.st_size) {
		inode->st.st_size = off + len;
		touch(inode, true);
	}
	pthread_mutex_unlock(&fs->lock);
	pthread_rwlock_unlock(&inode->data_lock);
	return r;
}

/* No extended attributes: every file has none, and none can be set. */
static int mem_getxattr(const struct zc_ctx *ctx, zc_ino_t ino, const char *name, void *buf,
			size_t size)
{
	return -ENODATA;
}

static int mem_listxattr(const struct zc_ctx *ctx, zc_ino_t ino, char *buf, size_t size)
{
	return 0;
}

static const struct zc_backend_ops mem_ops = {
	.lookup = mem_lookup,
	.forget = mem_forget,
	.getattr = mem_getattr,
	.setattr = mem_setattr,
	.readlink = mem_readlink,
	.mknod = mem_mknod,
	.mkdir = mem_mkdir,
	.symlink = mem_symlink,
	.link = mem_link,
	.unlink = mem_unlink,
	.rmdir = mem_rmdir,
	.rename = mem_rename,
	.open = mem_open,
	.create = mem_create,
	.read = mem_read,
	.read_done = mem_read_done,
	.write = mem_write,
	.write_done = mem_write_done,
	.release = mem_release,
	.fsync = mem_fsync,
	.opendir = mem_opendir,
	.readdir = mem_readdir,
	.statfs = mem_statfs,
	.getxattr = mem_getxattr,
	.listxattr = mem_listxattr,
	.fallocate = mem_fallocate,
};

/* Free the whole tree at exit. */
static void free_fs(struct mem_fs *fs)
{
	size_t i;

	for (i = 0; i < fs->nr_inodes; i++) {
		struct mem_inode *inode = fs->inodes[i];

		if (!inode)
			continue;
		while (inode->first) {
			struct mem_dirent *d = inode->first;

			inode->first = d->next;
			free(d->name);
			free(d);
		}
		if (inode->data)
			munmap(inode->data, inode->cap);
		pthread_rwlock_destroy(&inode->data_lock);
		free(inode->target);
		free(inode);
	}
	free(fs->inodes);
}

static void usage(FILE *out)
{
	fprintf(out,
		"usage: memfs MOUNTPOINT [-f] [-d] [-s] [-o opt[,opt...]]\n"
		"\n"
		"Mount an empty file system that lives in memory.\n"
		"\n"
		"    -f    stay in the foreground\n"
		"    -d    print every request (implies -f)\n"
		"    -s    serve requests on one thread\n"
		"    -h    print this help (--help)\n"
		"    -V    print the version (--version)\n"
		"\n"
		"Mount options:\n%s",
		zc_options_help());
}

/* What the library has to say about how the mount runs. */
static void print_notice(void *data, const char *line)
{
	(void)data;
	fprintf(stderr, "memfs: %s\n", line);
}

int main(int argc, char *argv[])
{
	static const char *const args[] = { "MOUNTPOINT", NULL };
	struct mem_fs fs = { .lock = PTHREAD_MUTEX_INITIALIZER, .next_ino = ZC_ROOT_INO };
	struct zc_cmdline cl;
	struct zc_session *s;
	int i, status = 1;

	/* -f, -d, -s, -h, -V and the -o lists, the way every mount program reads them. */
	if (zc_parse_cmdline(argc, argv, args, &cl, sizeof(cl)) < 0) {
		fprintf(stderr, "memfs: %s\n", cl.error);
		return 2;
	}
	if (cl.show_help) {
		usage(stdout);
		return 0;
	}
	if (cl.show_version) {
		printf("memfs (libzcfuse %s)\n", zc_version());
		return 0;
	}
	s = zc_session_new(&mem_ops, sizeof(mem_ops), &fs);
	if (!s || !new_inode(&fs, S_IFDIR | 0755, getuid(), getgid())) {
		fprintf(stderr, "memfs: out of memory\n");
		return 1;
	}
	fs.inodes[ZC_ROOT_INO]->parent = ZC_ROOT_INO;
	zc_session_set_notice_handler(s, print_notice, NULL);
	zc_session_set_debug(s, cl.debug);
	zc_session_set_single_threaded(s, cl.single_threaded);
	/* The library parses its own options. */
	for (i = 0; i < cl.n_opts; i++) {
		if (zc_session_set_options(s, cl.opts[i]) < 0) {
			fprintf(stderr, "memfs: %s\n", zc_session_error(s));
			status = 2;
			goto out;
		}
	}
	/* memfs checks no permissions itself: the kernel does, from the attributes. */
	if (zc_session_set_option(s, "default_permissions") < 0 ||
	    zc_session_set_fsname(s, "memfs") < 0 || zc_session_mount(s, cl.args[0]) < 0 ||
	    (!cl.foreground && zc_session_daemonize(s) < 0) || zc_session_loop(s) < 0) {
		fprintf(stderr, "memfs: %s\n", zc_session_error(s));
		goto out;
	}
	status = 0;
out:
	zc_session_destroy(s);
	free_fs(&fs);
	return status;
}
