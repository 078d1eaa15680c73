/* SPDX-License-Identifier: MIT */
/*
 * Inodes and the namespace: the inode table, directory entries, names
 * (create, link, remove, rename) and extended attributes. Called with
 * fs->lock held.
 *
 * examples/memfs.c has a namespace of the same shape (find, add_dirent,
 * del_dirent, repoint, do_rename), kept there on purpose rather than shared:
 * - memfs is the one-file example: its top says to build it alone with
 *   `cc -o memfs memfs.c $(pkg-config --cflags --libs zcfuse)`, and the
 *   install test does exactly that;
 * - this namespace belongs to the store, which knows nothing of FUSE: its
 *   inode numbers are bs_ino_t, not bs_ino_t, and it is linked without
 *   libzcfuse into the store's unit test;
 * - the loader rebuilds it from the index (inode numbers given by the
 *   index, link counts and times restored after add_dirent);
 * - freeing an inode gives its blocks back (to the pending list until the
 *   next commit), which can fail and then keeps the inode; memfs unmaps a
 *   buffer. Files carry extended attributes here and none in memfs.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* RENAME_* */
#endif
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>
#include <time.h>
#include "blobstore.h"

void bs_touch(struct bs_inode *inode, bool mtime)
{
	clock_gettime(CLOCK_REALTIME, &inode->st.st_ctim);
	if (mtime)
		inode->st.st_mtim = inode->st.st_ctim;
}

struct bs_inode *bs_get_inode(struct bs_fs *fs, bs_ino_t ino)
{
	return ino < fs->nr_inodes ? fs->inodes[ino] : NULL;
}

void bs_fill_attr(const struct bs_inode *inode, struct stat *st)
{
	*st = inode->st;
	st->st_blksize = BS_BLOCK;
	st->st_blocks = (blkcnt_t)(bs_mapped_blocks(inode) * (BS_BLOCK / 512));
}

/* A new inode numbered @ino (0: the next free number). */
struct bs_inode *bs_new_inode(struct bs_fs *fs, bs_ino_t ino, mode_t mode)
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
	bs_touch(inode, true);
	inode->st.st_atim = inode->st.st_mtim;
	fs->inodes[ino] = inode;
	if (ino >= fs->next_ino)
		fs->next_ino = ino + 1;
	return inode;
}

void bs_destroy_inode(struct bs_inode *inode)
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
void bs_maybe_free(struct bs_fs *fs, struct bs_inode *inode)
{
	if (inode->st.st_nlink || inode->nlookup || inode->nopen || inode->st.st_ino == BS_ROOT_INO)
		return;
	if (bs_unmap_blocks(fs, inode, 0, UINT64_MAX / BS_BLOCK) < 0)
		return; /* out of memory: keep it (and its blocks) */
	fs->inodes[inode->st.st_ino] = NULL;
	bs_destroy_inode(inode);
}

struct bs_dirent *bs_find(struct bs_inode *dir, const char *name, struct bs_dirent **prev)
{
	struct bs_dirent *d, *p = NULL;

	for (d = dir->first; d; p = d, d = d->next)
		if (!strcmp(d->name, name))
			break;
	if (prev)
		*prev = p;
	return d;
}

int bs_add_dirent(struct bs_inode *dir, const char *name, struct bs_inode *inode)
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
	bs_touch(dir, true);
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
	bs_touch(dir, true);
	free(d->name);
	free(d);
}

int bs_get_dir(struct bs_fs *fs, bs_ino_t ino, const char *name, struct bs_inode **ret)
{
	struct bs_inode *dir = bs_get_inode(fs, ino);

	if (!dir)
		return -ENOENT;
	if (!S_ISDIR(dir->st.st_mode))
		return -ENOTDIR;
	if (name && strlen(name) > BS_NAME_MAX)
		return -ENAMETOOLONG;
	*ret = dir;
	return 0;
}

/* Create @name in @parent: the common part of mknod, mkdir, symlink and create. */
int bs_make_node(struct bs_fs *fs, bs_ino_t parent, const char *name, mode_t mode, dev_t rdev,
		 const char *target, uid_t uid, gid_t gid, struct bs_inode **ret)
{
	struct bs_inode *dir, *inode;
	int r;

	r = bs_get_dir(fs, parent, name, &dir);
	if (r < 0)
		return r;
	if (bs_find(dir, name, NULL))
		return -EEXIST;
	if (dir->st.st_mode & S_ISGID) {
		gid = dir->st.st_gid;
		if (S_ISDIR(mode))
			mode |= S_ISGID;
	}
	inode = bs_new_inode(fs, 0, mode);
	if (!inode)
		return -ENOMEM;
	inode->st.st_uid = uid;
	inode->st.st_gid = gid;
	inode->st.st_rdev = rdev;
	if (target) {
		inode->target = strdup(target);
		inode->st.st_size = (off_t)strlen(target);
	}
	if ((target && !inode->target) || bs_add_dirent(dir, name, inode) < 0) {
		inode->st.st_nlink = 0;
		bs_maybe_free(fs, inode);
		return -ENOMEM;
	}
	*ret = inode;
	return 0;
}

/* A new name @newname in @newparent for inode @ino. */
int bs_add_link(struct bs_fs *fs, bs_ino_t ino, bs_ino_t newparent, const char *newname,
		struct bs_inode **ret)
{
	struct bs_inode *dir, *inode;
	int r;

	inode = bs_get_inode(fs, ino);
	r = bs_get_dir(fs, newparent, newname, &dir);
	if (r == 0 && !inode)
		r = -ENOENT;
	else if (r == 0 && S_ISDIR(inode->st.st_mode))
		r = -EPERM;
	else if (r == 0 && bs_find(dir, newname, NULL))
		r = -EEXIST;
	if (r == 0)
		r = bs_add_dirent(dir, newname, inode);
	if (r == 0) {
		inode->st.st_nlink++;
		bs_touch(inode, false);
		*ret = inode;
	}
	return r;
}

static void drop_name(struct bs_fs *fs, struct bs_inode *dir, struct bs_dirent *d,
		      struct bs_dirent *prev)
{
	struct bs_inode *inode = d->inode;

	del_dirent(dir, d, prev);
	inode->st.st_nlink = S_ISDIR(inode->st.st_mode) ? 0 : inode->st.st_nlink - 1;
	bs_touch(inode, false);
	bs_maybe_free(fs, inode);
}

/* Unlink (or, with @is_dir, rmdir) @name in @parent. */
int bs_remove_name(struct bs_fs *fs, bs_ino_t parent, const char *name, bool is_dir)
{
	struct bs_dirent *d, *prev;
	struct bs_inode *dir;
	int r;

	r = bs_get_dir(fs, parent, name, &dir);
	if (r == 0 && !(d = bs_find(dir, name, &prev)))
		r = -ENOENT;
	if (r == 0 && is_dir && !S_ISDIR(d->inode->st.st_mode))
		r = -ENOTDIR;
	else if (r == 0 && !is_dir && S_ISDIR(d->inode->st.st_mode))
		r = -EISDIR;
	else if (r == 0 && is_dir && d->inode->first)
		r = -ENOTEMPTY;
	if (r == 0)
		drop_name(fs, dir, d, prev);
	return r;
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
	bs_touch(inode, false);
	bs_touch(dir, true);
}

static int do_rename(struct bs_fs *fs, struct bs_inode *odir, const char *name,
		     struct bs_inode *ndir, const char *newname, unsigned int flags)
{
	struct bs_dirent *od, *oprev, *nd, *nprev;
	struct bs_inode *inode, *other;
	int r;

	od = bs_find(odir, name, &oprev);
	if (!od)
		return -ENOENT;
	nd = bs_find(ndir, newname, &nprev);
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
	r = bs_add_dirent(ndir, newname, inode);
	if (r < 0)
		return r;
	if (nd)
		drop_name(fs, ndir, nd, nprev);
	od = bs_find(odir, name, &oprev);
	del_dirent(odir, od, oprev);
	bs_touch(inode, false);
	return 0;
}

/* rename(2) and renameat2(2) with RENAME_NOREPLACE or RENAME_EXCHANGE. */
int bs_rename_name(struct bs_fs *fs, bs_ino_t parent, const char *name, bs_ino_t newparent,
		   const char *newname, unsigned int flags)
{
	struct bs_inode *odir, *ndir;
	int r;

	if (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE))
		return -EINVAL;
	r = bs_get_dir(fs, parent, name, &odir);
	if (r == 0)
		r = bs_get_dir(fs, newparent, newname, &ndir);
	if (r == 0)
		r = do_rename(fs, odir, name, ndir, newname, flags);
	return r;
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

int bs_set_xattr(struct bs_fs *fs, bs_ino_t ino, const char *name, const void *value, size_t size,
		 int flags)
{
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
	inode = bs_get_inode(fs, ino);
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
		bs_touch(inode, false);
	free(copy);
	return r;
}

/* The size of the value of @name, copied to @buf if it fits in @size. */
int bs_get_xattr(struct bs_fs *fs, bs_ino_t ino, const char *name, void *buf, size_t size)
{
	struct bs_inode *inode;
	struct bs_xattr *x;

	if (!xattr_ns_ok(name))
		return -EOPNOTSUPP;
	inode = bs_get_inode(fs, ino);
	x = inode ? find_xattr(inode, name) : NULL;
	if (x && size >= x->size)
		memcpy(buf, x->value, x->size);
	return !inode ? -ENOENT : !x ? -ENODATA : (int)x->size;
}

/* The length of the list of names, copied to @buf if it fits in @size. */
int bs_list_xattr(struct bs_fs *fs, bs_ino_t ino, char *buf, size_t size)
{
	struct bs_inode *inode = bs_get_inode(fs, ino);
	size_t i, len = 0;

	for (i = 0; inode && i < inode->nr_xattrs; i++) {
		size_t n = strlen(inode->xattrs[i].name) + 1;

		if (len + n <= size)
			memcpy(buf + len, inode->xattrs[i].name, n);
		len += n;
	}
	return inode ? (int)len : -ENOENT;
}

int bs_remove_xattr(struct bs_fs *fs, bs_ino_t ino, const char *name)
{
	struct bs_inode *inode;
	struct bs_xattr *x;

	if (!xattr_ns_ok(name))
		return -EOPNOTSUPP;
	inode = bs_get_inode(fs, ino);
	x = inode ? find_xattr(inode, name) : NULL;
	if (!inode)
		return -ENOENT;
	if (!x)
		return -ENODATA;
	free(x->name);
	free(x->value);
	*x = inode->xattrs[--inode->nr_xattrs];
	bs_touch(inode, false);
	return 0;
}
