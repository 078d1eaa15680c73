/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The passthrough backend. Every name is resolved relative to the parent's
 * O_PATH descriptor with O_NOFOLLOW; no path string is ever built from
 * SOURCE, so neither ".." nor a symlink can lead outside it. Files are
 * reopened through /proc/self/fd, which names the inode itself.
 *
 * When the daemon runs as root it acts with the caller's file system
 * identity (fsuid, fsgid, supplementary groups; all per thread) for every
 * operation that creates or changes something, so that ownership, setgid
 * inheritance and permission checks are exactly those of SOURCE. Without
 * default_permissions it does so for every operation.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/capability.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/fsuid.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "pt.h"

#define PT_GROUPS_MAX 256

static inline struct pt_fs *ctx_fs(const struct zc_ctx *ctx)
{
	return ctx->userdata;
}

static void proc_path(char buf[static 32], int fd)
{
	snprintf(buf, 32, "/proc/self/fd/%d", fd);
}

/* A component name from the kernel; never "", ".", ".." or one with '/'. */
static int check_name(const char *name)
{
	if (!name[0] || strchr(name, '/') || !strcmp(name, ".") || !strcmp(name, ".."))
		return -EINVAL;
	return 0;
}

/*
 * The caller's file system identity, taken on by the serving thread: fsuid,
 * fsgid, supplementary groups and effective capabilities, all per thread.
 * The capabilities are the calling thread's own (zc_ctx_get_capabilities()),
 * so a root caller that dropped capabilities gets no more than it kept, and
 * a program of a user that holds CAP_DAC_OVERRIDE keeps it. Capabilities
 * held in another user namespace count for nothing here: they do not reach
 * files of this one (files owned inside that namespace are the exception
 * this leaves out, on the side of refusing).
 */
struct pt_creds {
	struct pt_fs *fs;
	bool ids_switched;
	bool caps_switched;
	/* Groups were set (to be taken back), and fewer than the caller's. */
	bool groups_set;
	bool groups_partial;
};

/*
 * The supplementary groups an operation takes on. Reading them all from
 * /proc costs more than the rest of acting as the caller, and most
 * operations need none or one:
 * - PT_GROUPS_ALL: all of them, where a group changes a result without an
 *   error (setgid cleared by chmod, chown, an ACL, a truncate or a write).
 * - PT_GROUPS_CREATE: the parent's group when the kernel says the caller is
 *   in it (zc_ctx_create_group()), which decides setgid inheritance and the
 *   parent's group permissions; all when it does not say.
 * - PT_GROUPS_NONE: none, for operations where groups count only in
 *   permission checks (unlink, rmdir, rename, link) and the directory's
 *   mode shows that none is needed (no_groups_do()).
 * A check that fewer groups fail fails with EACCES or EPERM and changes
 * nothing: the operation is then tried again with all (creds_retry()).
 */
enum pt_groups {
	PT_GROUPS_ALL,
	PT_GROUPS_CREATE,
	PT_GROUPS_NONE,
};

/* This thread's supplementary groups are none (it set them so). */
static __thread bool pt_tls_no_groups;

static int stat_fd(int fd, struct stat *st)
{
	return fstatat(fd, "", st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
}

/* The daemon's own effective and permitted capabilities. */
static int caps_get(uint64_t *ret_eff, uint64_t *ret_perm)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	/* Zeroed: valgrind takes capget() to fill the first element only. */
	struct __user_cap_data_struct data[2] = { 0 };

	if (syscall(SYS_capget, &hdr, data) < 0)
		return -errno;
	*ret_eff = (uint64_t)data[1].effective << 32 | data[0].effective;
	*ret_perm = (uint64_t)data[1].permitted << 32 | data[0].permitted;
	return 0;
}

/* Set this thread's effective capabilities; the permitted set stays. */
static int caps_set_effective(uint64_t eff, uint64_t perm)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[2] = {
		{ .effective = (uint32_t)eff, .permitted = (uint32_t)perm },
		{ .effective = (uint32_t)(eff >> 32), .permitted = (uint32_t)(perm >> 32) },
	};

	return syscall(SYS_capset, &hdr, data) < 0 ? -errno : 0;
}

/* The caller's effective capabilities that the daemon can lend it. */
static uint64_t caller_caps(const struct pt_fs *fs, const struct zc_ctx *ctx)
{
	uint64_t eff;

	if (zc_ctx_get_capabilities(ctx, &eff) < 0)
		return 0; /* no caller thread to ask (it is gone): no privilege */
	return eff & fs->caps_eff;
}

static void creds_exit(const struct pt_creds *saved)
{
	int e = errno;

	/* Capabilities first: dropping the groups needs CAP_SETGID. */
	if (saved->caps_switched)
		caps_set_effective(saved->fs->caps_eff, saved->fs->caps_perm);
	if (saved->ids_switched) {
		setfsuid(0);
		setfsgid(0);
	}
	if (saved->groups_set)
		pt_tls_no_groups = syscall(SYS_setgroups, (size_t)0, NULL) == 0;
	errno = e;
}

/* The groups @which asks for, into @groups: how many, and whether fewer than the caller's. */
static int creds_groups(const struct zc_ctx *ctx, enum pt_groups which, gid_t *groups,
			bool *ret_partial)
{
	int n;

	*ret_partial = true;
	switch (which) {
	case PT_GROUPS_NONE:
		return 0;
	case PT_GROUPS_CREATE:
		n = zc_ctx_create_group(ctx, &groups[0]);
		if (n >= 0)
			return n;
		break; /* the kernel did not say */
	case PT_GROUPS_ALL:
		break;
	}
	*ret_partial = false;
	__atomic_fetch_add(&ctx_fs(ctx)->groups_read, 1, __ATOMIC_RELAXED);
	n = zc_ctx_getgroups(ctx, groups, PT_GROUPS_MAX);
	if (n < 0)
		n = 0; /* the caller is gone: act with its primary group alone */
	return n > PT_GROUPS_MAX ? PT_GROUPS_MAX : n;
}

static int creds_enter_groups(const struct zc_ctx *ctx, enum pt_groups which,
			      struct pt_creds *saved)
{
	struct pt_fs *fs = ctx_fs(ctx);
	gid_t groups[PT_GROUPS_MAX];
	uint64_t caps;
	int n, r;

	saved->fs = fs;
	saved->ids_switched = false;
	saved->caps_switched = false;
	saved->groups_set = false;
	saved->groups_partial = false;
	if (!fs->creds_switch)
		return 0;
	caps = caller_caps(fs, ctx);
	/* Root with every capability the daemon has: nothing to change. */
	if (ctx->uid == 0 && ctx->gid == 0 && caps == fs->caps_eff)
		return 0;
	n = creds_groups(ctx, which, groups, &saved->groups_partial);
	/* Raw system calls: glibc's wrappers would change every thread. */
	if (n > 0 || !pt_tls_no_groups) {
		if (syscall(SYS_setgroups, (size_t)n, groups) < 0)
			return -errno;
		saved->groups_set = n > 0;
		pt_tls_no_groups = n == 0;
	}
	saved->ids_switched = true;
	setfsgid(ctx->gid);
	setfsuid(ctx->uid);
	if ((uid_t)setfsuid((uid_t)-1) != ctx->uid || (gid_t)setfsgid((gid_t)-1) != ctx->gid) {
		r = -EPERM;
		goto fail;
	}
	/*
	 * A new fsuid other than 0 took the file system capabilities away;
	 * give the caller exactly its own.
	 */
	r = caps_set_effective(caps, fs->caps_perm);
	if (r < 0)
		goto fail;
	saved->caps_switched = true;
	return 0;
fail:
	creds_exit(saved);
	return r;
}

static int creds_enter(const struct zc_ctx *ctx, struct pt_creds *saved)
{
	return creds_enter_groups(ctx, PT_GROUPS_ALL, saved);
}

/* Fewer groups than the caller's were refused (@r): try again with all of them. */
static bool creds_retry(const struct pt_creds *saved, int r)
{
	if (!saved->groups_partial || (r != -EACCES && r != -EPERM))
		return false;
	__atomic_fetch_add(&saved->fs->groups_retried, 1, __ATOMIC_RELAXED);
	return true;
}

/*
 * Whether a change in directory @dir may be made with fewer groups than
 * the caller's. Fewer groups can fail a permission check (which is then
 * retried), but they can also pass one through the "other" class where a
 * group the caller is in would have been refused (mode 0707, or a named
 * group of an ACL without write). With default_permissions the kernel
 * checked first, with every group and the ACLs (FUSE_POSIX_ACL), so the
 * backing file system's check can only refuse more. Without it, fewer
 * groups do only where the other class cannot grant the change (write and
 * search) or the caller owns @dir.
 */
static bool fewer_groups_do(const struct zc_ctx *ctx, const struct pt_inode *dir)
{
	struct stat st;

	if (zc_ctx_kernel_checks_permissions(ctx))
		return true;
	if (stat_fd(dir->fd, &st) < 0)
		return false;
	return st.st_uid == ctx->uid || (st.st_mode & (S_IWOTH | S_IXOTH)) != (S_IWOTH | S_IXOTH);
}

/*
 * Whether a removal, rename or link in directory @dir (write and search
 * permission on it) does without supplementary groups: when the caller owns
 * it, or its group is the caller's own gid and the group class may change
 * it (groups then decide nothing), or the kernel checked with every group
 * and the other class may change it (see fewer_groups_do()). Otherwise a
 * group is needed, and the kernel does not say which: all are read.
 */
static bool no_groups_do(const struct zc_ctx *ctx, const struct pt_inode *dir)
{
	const mode_t wx = S_IWOTH | S_IXOTH;
	struct stat st;

	if (stat_fd(dir->fd, &st) < 0)
		return false;
	if (st.st_uid == ctx->uid)
		return true;
	if (st.st_gid == ctx->gid && (st.st_mode >> 3 & wx) == wx)
		return true;
	return zc_ctx_kernel_checks_permissions(ctx) && (st.st_mode & wx) == wx;
}

/* Act as the caller only when the kernel did not check permissions. */
static int creds_enter_unchecked(const struct zc_ctx *ctx, struct pt_creds *saved)
{
	if (zc_ctx_kernel_checks_permissions(ctx)) {
		saved->fs = ctx_fs(ctx);
		saved->ids_switched = false;
		saved->caps_switched = false;
		saved->groups_set = false;
		saved->groups_partial = false;
		return 0;
	}
	return creds_enter(ctx, saved);
}

/* This thread's umask is its own (unshare(CLONE_FS)): 1, or -1 if it cannot be. */
static __thread int pt_tls_own_umask;

/*
 * The mode to create a node with, as the caller would: the backing file
 * system applies the caller's umask, or the parent's default ACL instead,
 * as it does on SOURCE. Where this thread cannot have a umask of its own,
 * the umask is applied here (and a default ACL then sees a masked mode).
 */
static mode_t creation_mode(const struct zc_ctx *ctx, mode_t mode)
{
	if (!pt_tls_own_umask)
		pt_tls_own_umask = unshare(CLONE_FS) == 0 ? 1 : -1;
	if (pt_tls_own_umask < 0)
		return mode & ~(ctx->umask & 07777);
	umask(ctx->umask & 07777);
	return mode;
}

/*
 * An O_PATH descriptor of @name under @dir and its attributes; -errno. Out
 * of descriptors, the inode table's idle ones go first: a lookup fails only
 * when nothing is left to close.
 */
static int open_name(struct pt_fs *fs, struct pt_inode *dir, const char *name, struct stat *ret_st)
{
	int fd, r;

	fd = openat(dir->fd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && (errno == EMFILE || errno == ENFILE) && pt_table_trim(&fs->table))
		fd = openat(dir->fd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	r = stat_fd(fd, ret_st);
	if (r < 0) {
		close(fd);
		return r;
	}
	return fd;
}

/* Count one lookup of the inode behind @fd (taken over) as @ret's. */
static struct pt_inode *add_entry(struct pt_fs *fs, int fd, const struct stat *st,
				  struct zc_entry *ret)
{
	struct pt_inode *inode;

	inode = pt_table_add_lookup(&fs->table, fd, st);
	if (!inode)
		return NULL;
	memset(ret, 0, sizeof(*ret));
	ret->ino = inode->id;
	ret->attr = *st;
	return inode;
}

/* Look @name up under @dir and count one lookup of the result. */
static int do_lookup(struct pt_fs *fs, struct pt_inode *dir, const char *name, struct zc_entry *ret,
		     struct pt_inode **ret_inode)
{
	struct pt_inode *inode;
	struct stat st;
	int fd;

	fd = open_name(fs, dir, name, &st);
	if (fd < 0)
		return fd;
	inode = add_entry(fs, fd, &st, ret);
	if (!inode)
		return -errno;
	if (ret_inode)
		*ret_inode = inode;
	return 0;
}

static int pt_lookup(const struct zc_ctx *ctx, zc_ino_t parent, const char *name,
		     struct zc_entry *ret_entry)
{
	struct pt_fs *fs = ctx_fs(ctx);
	struct pt_inode *dir;
	struct pt_creds creds;
	struct stat st;
	int fd = -1, r;

	r = check_name(name);
	if (r < 0)
		return r;
	dir = pt_table_get(&fs->table, parent);
	if (!dir)
		return -errno;
	/* The name is resolved as the caller; its handle is made as the daemon. */
	r = creds_enter_unchecked(ctx, &creds);
	if (r == 0) {
		fd = open_name(fs, dir, name, &st);
		creds_exit(&creds);
		r = fd < 0 ? fd : 0;
	}
	if (r == 0 && !add_entry(fs, fd, &st, ret_entry))
		r = -errno;
	pt_table_put(&fs->table, dir);
	return r;
}

static void pt_forget(const struct zc_ctx *ctx, zc_ino_t ino, uint64_t nlookup)
{
	pt_table_forget(&ctx_fs(ctx)->table, ino, nlookup);
}

static int pt_getattr(const struct zc_ctx *ctx, zc_ino_t ino, uint64_t fh, struct stat *ret_attr)
{
	struct pt_fs *fs = ctx_fs(ctx);
	struct pt_inode *inode;
	int r;

	(void)fh;
	inode = pt_table_get(&fs->table, ino);
	if (!inode)
		return -errno;
	r = stat_fd(inode->fd, ret_attr);
	pt_table_put(&fs->table, inode);
	return r;
}

static int set_mode(struct pt_inode *inode, uint64_t fh, mode_t mode)
{
	char path[32];

	if (fh != ZC_NO_FH)
		return fchmod((int)fh, mode) < 0 ? -errno : 0;
	if (inode->type == S_IFLNK)
		return -EOPNOTSUPP;
	proc_path(path, inode->fd);
	return chmod(path, mode) < 0 ? -errno : 0;
}

static int set_size(struct pt_inode *inode, uint64_t fh, off_t size)
{
	char path[32];

	if (fh != ZC_NO_FH)
		return ftruncate((int)fh, size) < 0 ? -errno : 0;
	if (inode->type == S_IFDIR)
		return -EISDIR;
	if (inode->type != S_IFREG)
		return -EINVAL;
	proc_path(path, inode->fd);
	return truncate(path, size) < 0 ? -errno : 0;
}

static int set_times(struct pt_inode *inode, uint64_t fh, const struct stat *attr, int to_set)
{
	struct timespec tv[2] = {
		{ .tv_nsec = UTIME_OMIT },
		{ .tv_nsec = UTIME_OMIT },
	};

	if (to_set & ZC_SET_ATTR_ATIME_NOW)
		tv[0].tv_nsec = UTIME_NOW;
	else if (to_set & ZC_SET_ATTR_ATIME)
		tv[0] = attr->st_atim;
	if (to_set & ZC_SET_ATTR_MTIME_NOW)
		tv[1].tv_nsec = UTIME_NOW;
	else if (to_set & ZC_SET_ATTR_MTIME)
		tv[1] = attr->st_mtim;
	if (fh != ZC_NO_FH)
		return futimens((int)fh, tv) < 0 ? -errno : 0;
	return utimensat(inode->fd, "", tv, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
}

/* Mode, owner and size: what the caller's own rights decide. */
static int setattr_owner_mode_size(struct pt_inode *inode, uint64_t fh, const struct stat *attr,
				   int to_set)
{
	int r;

	if (to_set & ZC_SET_ATTR_MODE) {
		r = set_mode(inode, fh, attr->st_mode);
		if (r < 0)
			return r;
	}
	if (to_set & (ZC_SET_ATTR_UID | ZC_SET_ATTR_GID)) {
		uid_t uid = (to_set & ZC_SET_ATTR_UID) ? attr->st_uid : (uid_t)-1;
		gid_t gid = (to_set & ZC_SET_ATTR_GID) ? attr->st_gid : (gid_t)-1;

		if (fchownat(inode->fd, "", uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
			return -errno;
	}
	if (to_set & ZC_SET_ATTR_SIZE) {
		r = set_size(inode, fh, attr->st_size);
		if (r < 0)
			return r;
	}
	return 0;
}

#define PT_SET_ATTR_TIMES                                                                          \
	(ZC_SET_ATTR_ATIME | ZC_SET_ATTR_MTIME | ZC_SET_ATTR_ATIME_NOW | ZC_SET_ATTR_MTIME_NOW)

static int pt_setattr(const struct zc_ctx *ctx, zc_ino_t ino, uint64_t fh, const struct stat *attr,
		      int to_set, struct stat *ret_attr)
{
	struct pt_fs *fs = ctx_fs(ctx);
	struct pt_inode *inode;
	struct pt_creds creds;
	int r = 0;

	inode = pt_table_get(&fs->table, ino);
	if (!inode)
		return -errno;
	if (to_set & ZC_SET_ATTR_KILL_SUIDGID) {
		struct stat now;

		/*
		 * Cleared on the kernel's behalf, as the daemon: only the bits
		 * asked to go, from the mode as it is now, so that a chmod
		 * made meanwhile stays.
		 */
		r = stat_fd(inode->fd, &now);
		if (r == 0 && (now.st_mode & (S_ISUID | S_ISGID) & ~attr->st_mode))
			r = set_mode(inode, fh,
				     now.st_mode & 07777 & ~((S_ISUID | S_ISGID) & ~attr->st_mode));
		goto out;
	}
	/*
	 * Mode, owner and size as the caller, also when the kernel has vetted
	 * the change: the backing file system then clears setuid and setgid
	 * on chmod, chown and truncate exactly as it would for the caller.
	 */
	if (to_set & (ZC_SET_ATTR_MODE | ZC_SET_ATTR_UID | ZC_SET_ATTR_GID | ZC_SET_ATTR_SIZE)) {
		r = creds_enter(ctx, &creds);
		if (r == 0) {
			r = setattr_owner_mode_size(inode, fh, attr, to_set);
			creds_exit(&creds);
		}
	}
	/*
	 * Times as the daemon when the kernel keeps them (writeback caching)
	 * or has vetted them: it sets them for a caller that may write the
	 * file but not set its times explicitly.
	 */
	if (r == 0 && (to_set & PT_SET_ATTR_TIMES) && (to_set & ZC_SET_ATTR_KERNEL_TIMES)) {
		r = set_times(inode, fh, attr, to_set);
	} else if (r == 0 && (to_set & PT_SET_ATTR_TIMES)) {
		r = creds_enter_unchecked(ctx, &creds);
		if (r == 0) {
			r = set_times(inode, fh, attr, to_set);
			creds_exit(&creds);
		}
	}
out:
	if (r == 0)
		r = stat_fd(inode->fd, ret_attr);
	pt_table_put(&fs->table, inode);
	return r;
}

static int pt_readlink(const struct zc_ctx *ctx, zc_ino_t ino, char *buf, size_t size)
{
	struct pt_fs *fs = ctx_fs(ctx);
	struct pt_inode *inode;
	struct pt_creds creds;
	ssize_t n;
	int r;

	inode = pt_table_get(&fs->table, ino);
	if (!inode)
		return -errno;
	r = creds_enter_unchecked(ctx, &creds);
	if (r == 0) {
		n = readlinkat(inode->fd, "", buf, size);
		r = n < 0 ? -errno : (int)n;
		creds_exit(&creds);
	}
	pt_table_put(&fs->table, inode);
	return r;
}

enum pt_make_kind {
	PT_MAKE_NODE,
	PT_MAKE_DIR,
	PT_MAKE_SYMLINK,
};

struct pt_make {
	enum pt_make_kind kind;
	mode_t mode;
	dev_t rdev;
	const char *target;
};

/* Create a node as the caller, then look it up (one counted lookup). */
static int make_node(const struct zc_ctx *ctx, zc_ino_t parent, const char *name,
		     const struct pt_make *mk, struct zc_entry *ret_entry)
{
	struct pt_fs *fs = ctx_fs(ctx);
	struct pt_inode *dir;
	struct pt_creds creds;
	enum pt_groups which;
	int r;

	r = check_name(name);
	if (r < 0)
		return r;
	dir = pt_table_get(&fs->table, parent);
	if (!dir)
		return -errno;
	which = fewer_groups_do(ctx, dir) ? PT_GROUPS_CREATE : PT_GROUPS_ALL;
	do {
		r = creds_enter_groups(ctx, which, &creds);
		if (r < 0)
			goto out;
		switch (mk->kind) {
		case PT_MAKE_NODE:
			r = mknodat(dir->fd, name, creation_mode(ctx, mk->mode), mk->rdev);
			break;
		case PT_MAKE_DIR:
			r = mkdirat(dir->fd, name, creation_mode(ctx, mk->mode));
			break;
		case PT_MAKE_SYMLINK:
			r = symlinkat(mk->target, dir->fd, name);
			break;
		}
		r = r < 0 ? -errno : 0;
		creds_exit(&creds);
		which = PT_GROUPS_ALL;
	} while (creds_retry(&creds, r));
	if (r == 0)
		r = do_lookup(fs, dir, name, ret_entry, NULL);
out:
	pt_table_put(&fs->table, dir);
	return r;
}

static int pt_mknod(const struct zc_ctx *ctx, zc_ino_t parent, const char *name, mode_t mode,
		    dev_t rdev, struct zc_entry *ret_entry)
{
	struct pt_make mk = { .kind = PT_MAKE_NODE, .mode = mode, .rdev = rdev };

	return make_node(ctx, parent, name, &mk, ret_entry);
}

static int pt_mkdir(const struct zc_ctx *ctx, zc_ino_t parent, const char *name, mode_t mode,
		    struct zc_entry *ret_entry)
{
	struct pt_make mk = { .kind = PT_MAKE_DIR, .mode = mode };

	return make_node(ctx, parent, name, &mk, ret_entry);
}

static int pt_symlink(const struct zc_ctx *ctx, const char *target, zc_ino_t parent,
		      const char *name, struct zc_entry *ret_entry)
{
	struct pt_make mk = { .kind = PT_MAKE_SYMLINK, .target = target };

	return make_node(ctx, parent, name, &mk, ret_entry);
}

static int pt_link(const struct zc_ctx *ctx, zc_ino_t ino, zc_ino_t newparent, const char *newname,
		   struct zc_entry *ret_entry)
{
	struct pt_fs *fs = ctx_fs(ctx);
	struct pt_inode *inode, *dir = NULL;
	struct pt_creds creds;
	enum pt_groups which;
	char path[32];
	int r;

	r = check_name(newname);
	if (r < 0)
		return r;
	inode = pt_table_get(&fs->table, ino);
	if (!inode)
		return -errno;
	dir = pt_table_get(&fs->table, newparent);
	if (!dir) {
		r = -errno;
		goto out;
	}
	/*
	 * Groups count in the checks on the file linked (protected_hardlinks)
	 * too, which the kernel made with default_permissions only.
	 */
	which = zc_ctx_kernel_checks_permissions(ctx) && no_groups_do(ctx, dir) ? PT_GROUPS_NONE
										: PT_GROUPS_ALL;
	proc_path(path, inode->fd);
	do {
		r = creds_enter_groups(ctx, which, &creds);
		if (r < 0)
			goto out;
		r = linkat(AT_FDCWD, path, dir->fd, newname, AT_SYMLINK_FOLLOW) < 0 ? -errno : 0;
		creds_exit(&creds);
		which = PT_GROUPS_ALL;
	} while (creds_retry(&creds, r));
	if (r == 0)
		r = do_lookup(fs, dir, newname, ret_entry, NULL);
out:
	pt_table_put(&fs->table, dir);
	pt_table_put(&fs->table, inode);
	return r;
}

static int remove_name(const struct zc_ctx *ctx, zc_ino_t parent, const char *name, int flags)
{
	struct pt_fs *fs = ctx_fs(ctx);
	struct pt_inode *dir;
	struct pt_creds creds;
	enum pt_groups which;
	struct stat st;
	bool known;
	int r;

	r = check_name(name);
	if (r < 0)
		return r;
	dir = pt_table_get(&fs->table, parent);
	if (!dir)
		return -errno;
	/* Which inode loses a name: its descriptor is let go when it was the last. */
	known = !(flags & AT_REMOVEDIR) && fstatat(dir->fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
	which = no_groups_do(ctx, dir) ? PT_GROUPS_NONE : PT_GROUPS_ALL;
	do {
		r = creds_enter_groups(ctx, which, &creds);
		if (r < 0)
			break;
		r = unlinkat(dir->fd, name, flags) < 0 ? -errno : 0;
		creds_exit(&creds);
		which = PT_GROUPS_ALL;
	} while (creds_retry(&creds, r));
	pt_table_put(&fs->table, dir);
	if (r == 0 && known)
		pt_table_unlinked(&fs->table, st.st_dev, st.st_ino);
	return r;
}

static int pt_unlink(const struct zc_ctx *ctx, zc_ino_t parent, const char *name)
{
	return remove_name(ctx, parent, name, 0);
}

static int pt_rmdir(const struct zc_ctx *ctx, zc_ino_t parent, const char *name)
{
	return remove_name(ctx, parent, name, AT_REMOVEDIR);
}

static int pt_rename(const struct zc_ctx *ctx, zc_ino_t parent, const char *name,
		     zc_ino_t newparent, const char *newname, unsigned int flags)
{
	struct pt_fs *fs = ctx_fs(ctx);
	struct pt_inode *from, *to = NULL;
	struct pt_creds creds;
	enum pt_groups which;
	struct stat st;
	bool replaces = false;
	int r;

	if (check_name(name) < 0 || check_name(newname) < 0)
		return -EINVAL;
	from = pt_table_get(&fs->table, parent);
	if (!from)
		return -errno;
	to = pt_table_get(&fs->table, newparent);
	if (!to) {
		r = -errno;
		goto out;
	}
	replaces = !(flags & RENAME_EXCHANGE) &&
		   fstatat(to->fd, newname, &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISDIR(st.st_mode);
	/*
	 * Moving a directory to another parent also needs write permission
	 * on it, which the kernel checked with default_permissions only.
	 */
	which = (from == to || zc_ctx_kernel_checks_permissions(ctx)) && no_groups_do(ctx, from) &&
			(from == to || no_groups_do(ctx, to))
		    ? PT_GROUPS_NONE
		    : PT_GROUPS_ALL;
	do {
		r = creds_enter_groups(ctx, which, &creds);
		if (r < 0)
			break;
		r = renameat2(from->fd, name, to->fd, newname, flags) < 0 ? -errno : 0;
		creds_exit(&creds);
		which = PT_GROUPS_ALL;
	} while (creds_retry(&creds, r));
out:
	/* A file the rename replaced may have lost its last name. */
	if (r == 0 && replaces)
		pt_table_unlinked(&fs->table, st.st_dev, st.st_ino);
	pt_table_put(&fs->table, to);
	pt_table_put(&fs->table, from);
	return r;
}

/*
 * Open files and directories per uid. Each holds a descriptor (and keeps its
 * inode's), so the daemon's open-file limit is shared out: at most
 * opens_max open in all, and at most opens_per_user (half of them) for one
 * uid, so that one user's opens cannot use up the others' and the inode
 * table's descriptors always remain.
 */
struct pt_user {
	uid_t uid;
	unsigned int opens;
	struct pt_user *next;
};

#define PT_NO_OWNER ((uid_t)-1)

/* Count one open of @uid: 0, or -EMFILE past its share, -ENFILE past all. */
static int opens_take(struct pt_fs *fs, uid_t uid)
{
	struct pt_user *u;
	int r = 0;

	pthread_mutex_lock(&fs->opens_lock);
	for (u = fs->users; u && u->uid != uid; u = u->next)
		;
	if (fs->opens >= fs->opens_max) {
		r = -ENFILE;
	} else if (u && u->opens >= fs->opens_per_user) {
		r = -EMFILE;
	} else if (!u && !(u = calloc(1, sizeof(*u)))) {
		r = -ENOMEM;
	} else {
		if (!u->opens) { /* new */
			u->uid = uid;
			u->next = fs->users;
			fs->users = u;
		}
		u->opens++;
		fs->opens++;
	}
	pthread_mutex_unlock(&fs->opens_lock);
	return r;
}

static void opens_give_back(struct pt_fs *fs, uid_t uid)
{
	struct pt_user **p, *u;

	pthread_mutex_lock(&fs->opens_lock);
	for (p = &fs->users; (u = *p) && u->uid != uid; p = &u->next)
		;
	if (u) {
		fs->opens--;
		if (--u->opens == 0) {
			*p = u->next;
			free(u);
		}
	}
	pthread_mutex_unlock(&fs->opens_lock);
}

/* The open counted by opens_take() now holds @fd. */
static void opens_record(struct pt_fs *fs, int fd, uid_t uid)
{
	if (fd >= 0 && (size_t)fd < fs->fd_owner_len)
		fs->fd_owner[fd] = uid;
	else
		opens_give_back(fs, uid);
}

/* @fd is about to be closed: give its open back to its opener. */
static void opens_release_fd(struct pt_fs *fs, int fd)
{
	uid_t uid;

	if (fd < 0 || (size_t)fd >= fs->fd_owner_len)
		return;
	uid = fs->fd_owner[fd];
	fs->fd_owner[fd] = PT_NO_OWNER;
	if (uid != PT_NO_OWNER)
		opens_give_back(fs, uid);
}

/* Flags for reopening an inode or creating a file: never follow a link. */
static int open_flags(int flags)
{
	return (flags & ~(O_NOFOLLOW | O_CREAT | O_EXCL | O_NOCTTY)) | O_CLOEXEC;
}

/*
 * With writeback caching the kernel reads through a write-only open to fill
 * the parts of a page a write leaves out. The caller's open (@fd) made the
 * permission check; the same inode is opened again, read-write, with the
 * daemon's rights. Returns the new descriptor (@fd is closed) or -errno.
 */
static int reopen_for_cache_reads(int fd, int flags)
{
	char path[32];
	int rw;

	proc_path(path, fd);
	rw = open(path, (open_flags(flags) & ~(O_ACCMODE | O_TRUNC)) | O_RDWR);
	if (rw < 0)
		rw = -errno;
	close(fd);
	return rw;
}

/*
 * A file's data as its change time, modification time and size show it.
 * Every write, truncate or other change on SOURCE moves the change time,
 * which the kernel takes finer than its clock tick once it was looked at
 * (multigrain time stamps) on the file systems that keep it so.
 */
static uint64_t file_sig(const struct stat *st)
{
	const uint64_t v[5] = { (uint64_t)st->st_ctim.tv_sec, (uint64_t)st->st_ctim.tv_nsec,
				(uint64_t)st->st_mtim.tv_sec, (uint64_t)st->st_mtim.tv_nsec,
				(uint64_t)st->st_size };
	uint64_t h = 0xcbf29ce484222325ULL;
	size_t i;

	for (i = 0; i < 5; i++) {
		h ^= v[i];
		h *= 0x100000001b3ULL;
		h ^= h >> 29;
	}
	return h | 1;
}

/*
 * The kernel's pages of regular file @inode (opened as @fd) may stay when
 * the file looks as it did at its last open: nothing changed it since,
 * through the mount or behind it. Otherwise the open drops them (and the
 * kernel, which negotiated FUSE_AUTO_INVAL_DATA, asks for the new size).
 */
static void cache_decide(struct pt_inode *inode, int fd, struct zc_file *file)
{
	struct stat st;
	uint64_t sig = 0, seen;

	if (fstat(fd, &st) == 0)
		sig = file_sig(&st);
	seen = __atomic_exchange_n(&inode->cache_sig, sig, __ATOMIC_ACQ_REL);
	if (sig && seen == sig)
		file->open_flags_out |= ZC_FOPEN_KEEP_CACHE;
}

static int pt_open(const struct zc_ctx *ctx, zc_ino_t ino, struct zc_file *file)
{
	struct pt_fs *fs = ctx_fs(ctx);
	struct pt_inode *inode;
	struct pt_creds creds;
	char path[32];
	int fd = -1, r;

	inode = pt_table_get(&fs->table, ino);
	if (!inode)
		return -errno;
	if (inode->type == S_IFLNK) {
		r = -ELOOP;
		goto out;
	}
	r = opens_take(fs, ctx->uid);
	if (r < 0)
		goto out;
	proc_path(path, inode->fd);
	r = creds_enter_unchecked(ctx, &creds);
	if (r < 0) {
		opens_give_back(fs, ctx->uid);
		goto out;
	}
	if (file->open_flags_in & ZC_OPEN_IN_EXEC) {
		/* execve() needs execute permission alone; the kernel reads. */
		r = faccessat(inode->fd, "", X_OK, AT_EMPTY_PATH | AT_EACCESS) < 0 ? -errno : 0;
		creds_exit(&creds);
		if (r == 0) {
			fd = open(path, O_RDONLY | O_CLOEXEC);
			r = fd < 0 ? -errno : 0;
		}
	} else {
		fd = open(path, open_flags(file->flags));
		r = fd < 0 ? -errno : 0;
		creds_exit(&creds);
		if (r == 0 && (file->open_flags_in & ZC_OPEN_IN_CACHE_READS) &&
		    (file->flags & O_ACCMODE) == O_WRONLY) {
			fd = reopen_for_cache_reads(fd, file->flags);
			r = fd < 0 ? fd : 0;
		}
	}
	if (r == 0) {
		opens_record(fs, fd, ctx->uid);
		pt_table_open(&fs->table, inode);
		file->fh = (uint64_t)fd;
		if (inode->type == S_IFREG) {
			file->backing_fd = fd;
			cache_decide(inode, fd, file);
		}
	} else {
		opens_give_back(fs, ctx->uid);
	}
out:
	pt_table_put(&fs->table, inode);
	return r;
}

static int pt_create(const struct zc_ctx *ctx, zc_ino_t parent, const char *name, mode_t mode,
		     struct zc_file *file, struct zc_entry *ret_entry)
{
	struct pt_fs *fs = ctx_fs(ctx);
	struct pt_inode *dir, *inode;
	struct pt_creds creds;
	enum pt_groups which;
	int flags, fd, r;

	r = check_name(name);
	if (r < 0)
		return r;
	dir = pt_table_get(&fs->table, parent);
	if (!dir)
		return -errno;
	r = opens_take(fs, ctx->uid);
	if (r < 0)
		goto out;
	/*
	 * With the parent's group alone, only a new file is made: a file that
	 * is there already (made on SOURCE behind the kernel's back) is
	 * opened, and maybe truncated, with all the groups.
	 */
	which = fewer_groups_do(ctx, dir) ? PT_GROUPS_CREATE : PT_GROUPS_ALL;
	flags = (file->flags & ~O_NOCTTY) | O_CREAT | O_NOFOLLOW | O_CLOEXEC;
	for (;;) {
		r = creds_enter_groups(ctx, which, &creds);
		if (r < 0)
			goto out_opens;
		/* O_NOFOLLOW: a symlink that appeared under this name is not followed. */
		fd = openat(dir->fd, name, flags | (creds.groups_partial ? O_EXCL : 0),
			    creation_mode(ctx, mode));
		r = fd < 0 ? -errno : 0;
		creds_exit(&creds);
		if (!creds_retry(&creds, r) &&
		    !(creds.groups_partial && r == -EEXIST && !(flags & O_EXCL)))
			break;
		which = PT_GROUPS_ALL;
	}
	if (r == 0 && (file->open_flags_in & ZC_OPEN_IN_CACHE_READS) &&
	    (file->flags & O_ACCMODE) == O_WRONLY) {
		fd = reopen_for_cache_reads(fd, file->flags);
		r = fd < 0 ? fd : 0;
	}
	if (r < 0)
		goto out_opens;
	r = do_lookup(fs, dir, name, ret_entry, &inode);
	if (r < 0) {
		close(fd);
		goto out_opens;
	}
	opens_record(fs, fd, ctx->uid);
	pt_table_open(&fs->table, inode);
	file->fh = (uint64_t)fd;
	file->backing_fd = fd;
	goto out;
out_opens:
	opens_give_back(fs, ctx->uid);
out:
	pt_table_put(&fs->table, dir);
	return r;
}

/*
 * O_TMPFILE: the unnamed file is created as the caller, and its inode gets
 * an O_PATH descriptor of its own through /proc/self/fd, so that a later
 * link (linkat() of that descriptor's /proc link) gives it a name.
 */
static int pt_tmpfile(const struct zc_ctx *ctx, zc_ino_t parent, mode_t mode, struct zc_file *file,
		      struct zc_entry *ret_entry)
{
	struct pt_fs *fs = ctx_fs(ctx);
	struct pt_inode *dir, *inode;
	struct pt_creds creds;
	enum pt_groups which;
	char path[32];
	struct stat st;
	int fd, pfd, r;

	dir = pt_table_get(&fs->table, parent);
	if (!dir)
		return -errno;
	r = opens_take(fs, ctx->uid);
	if (r < 0)
		goto out;
	which = fewer_groups_do(ctx, dir) ? PT_GROUPS_CREATE : PT_GROUPS_ALL;
	do {
		r = creds_enter_groups(ctx, which, &creds);
		if (r < 0)
			goto out_opens;
		fd = openat(dir->fd, ".",
			    (file->flags & ~(O_NOCTTY | O_EXCL)) | O_TMPFILE | O_CLOEXEC,
			    creation_mode(ctx, mode));
		r = fd < 0 ? -errno : 0;
		creds_exit(&creds);
		which = PT_GROUPS_ALL;
	} while (creds_retry(&creds, r));
	if (r == 0 && (file->open_flags_in & ZC_OPEN_IN_CACHE_READS) &&
	    (file->flags & O_ACCMODE) == O_WRONLY) {
		fd = reopen_for_cache_reads(fd, file->flags);
		r = fd < 0 ? fd : 0;
	}
	if (r < 0)
		goto out_opens;
	proc_path(path, fd);
	pfd = open(path, O_PATH | O_CLOEXEC);
	r = pfd < 0 ? -errno : stat_fd(pfd, &st);
	if (r < 0) {
		if (pfd >= 0)
			close(pfd);
		close(fd);
		goto out_opens;
	}
	inode = add_entry(fs, pfd, &st, ret_entry);
	if (!inode) {
		r = -errno;
		close(fd);
		goto out_opens;
	}
	opens_record(fs, fd, ctx->uid);
	pt_table_open(&fs->table, inode);
	file->fh = (uint64_t)fd;
	file->backing_fd = fd;
	goto out;
out_opens:
	opens_give_back(fs, ctx->uid);
out:
	pt_table_put(&fs->table, dir);
	return r;
}

static int pt_read(const struct zc_ctx *ctx, zc_ino_t ino, uint64_t fh, off_t off, size_t size,
		   struct zc_extent *ret_ext, unsigned int max_ext)
{
	(void)ctx;
	(void)ino;
	if (max_ext < 1)
		return -EINVAL;
	memset(ret_ext, 0, sizeof(*ret_ext));
	ret_ext->fd = (int)fh;
	ret_ext->offset = off;
	ret_ext->length = size;
	return 1;
}

static int pt_flush(const struct zc_ctx *ctx, zc_ino_t ino, uint64_t fh)
{
	int fd;

	(void)ctx;
	(void)ino;
	/* Close a duplicate: file systems report delayed write errors at close. */
	fd = fcntl((int)fh, F_DUPFD_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	return close(fd) < 0 ? -errno : 0;
}

static void pt_release(const struct zc_ctx *ctx, zc_ino_t ino, uint64_t fh)
{
	struct pt_fs *fs = ctx_fs(ctx);

	opens_release_fd(fs, (int)fh);
	close((int)fh);
	pt_table_close(&fs->table, ino);
}

static int pt_fsync(const struct zc_ctx *ctx, zc_ino_t ino, uint64_t fh, int datasync)
{
	int r;

	(void)ctx;
	(void)ino;
	r = datasync ? fdatasync((int)fh) : fsync((int)fh);
	return r < 0 ? -errno : 0;
}

/* An open directory stream and the entry that did not fit last time. */
struct pt_dir {
	DIR *dp;
	off_t offset;
	struct dirent *entry;
	struct pt_dir *prev, *next;
};

static void dir_link(struct pt_fs *fs, struct pt_dir *d)
{
	pthread_mutex_lock(&fs->dirs_lock);
	d->prev = NULL;
	d->next = fs->dirs;
	if (fs->dirs)
		fs->dirs->prev = d;
	fs->dirs = d;
	pthread_mutex_unlock(&fs->dirs_lock);
}

static void dir_unlink(struct pt_fs *fs, struct pt_dir *d)
{
	pthread_mutex_lock(&fs->dirs_lock);
	if (d->prev)
		d->prev->next = d->next;
	else
		fs->dirs = d->next;
	if (d->next)
		d->next->prev = d->prev;
	pthread_mutex_unlock(&fs->dirs_lock);
}

static int pt_opendir(const struct zc_ctx *ctx, zc_ino_t ino, struct zc_file *file)
{
	struct pt_fs *fs = ctx_fs(ctx);
	struct pt_inode *inode;
	struct pt_creds creds;
	char path[32];
	int fd = -1, r;
	struct pt_dir *d;

	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	inode = pt_table_get(&fs->table, ino);
	if (!inode) {
		r = -errno;
		goto fail;
	}
	r = opens_take(fs, ctx->uid);
	if (r < 0) {
		pt_table_put(&fs->table, inode);
		goto fail;
	}
	/*
	 * Through /proc/self/fd, which names the directory itself: "."
	 * would be looked up in it, which takes search permission on it that
	 * opening a directory does not.
	 */
	proc_path(path, inode->fd);
	r = creds_enter_unchecked(ctx, &creds);
	if (r == 0) {
		fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		r = fd < 0 ? -errno : 0;
		creds_exit(&creds);
	}
	if (r == 0) {
		d->dp = fdopendir(fd);
		if (!d->dp) {
			r = -errno;
			close(fd);
		}
	}
	if (r < 0) {
		opens_give_back(fs, ctx->uid);
		pt_table_put(&fs->table, inode);
		goto fail;
	}
	opens_record(fs, fd, ctx->uid);
	pt_table_open(&fs->table, inode);
	pt_table_put(&fs->table, inode);
	dir_link(fs, d);
	file->fh = (uint64_t)(uintptr_t)d;
	return 0;
fail:
	free(d);
	return r;
}

static int pt_readdir(const struct zc_ctx *ctx, zc_ino_t ino, uint64_t fh, off_t off,
		      zc_dir_fill_fn fill, void *fill_ctx)
{
	struct pt_dir *d = (struct pt_dir *)(uintptr_t)fh;
	struct stat st;
	int r;

	(void)ctx;
	(void)ino;
	if (off != d->offset) {
		seekdir(d->dp, off);
		d->entry = NULL;
		d->offset = off;
	}
	for (;;) {
		if (!d->entry) {
			errno = 0;
			d->entry = readdir(d->dp);
			if (!d->entry)
				return errno ? -errno : 0;
		}
		memset(&st, 0, sizeof(st));
		st.st_ino = d->entry->d_ino;
		st.st_mode = (mode_t)d->entry->d_type << 12;
		r = fill(fill_ctx, d->entry->d_name, &st, d->entry->d_off);
		if (r != 0)
			return r < 0 ? r : 0;
		d->offset = d->entry->d_off;
		d->entry = NULL;
	}
}

static void pt_releasedir(const struct zc_ctx *ctx, zc_ino_t ino, uint64_t fh)
{
	struct pt_dir *d = (struct pt_dir *)(uintptr_t)fh;

	dir_unlink(ctx_fs(ctx), d);
	opens_release_fd(ctx_fs(ctx), dirfd(d->dp));
	closedir(d->dp);
	free(d);
	pt_table_close(&ctx_fs(ctx)->table, ino);
}

static int pt_fsyncdir(const struct zc_ctx *ctx, zc_ino_t ino, uint64_t fh, int datasync)
{
	struct pt_dir *d = (struct pt_dir *)(uintptr_t)fh;

	return pt_fsync(ctx, ino, (uint64_t)dirfd(d->dp), datasync);
}

static int pt_statfs(const struct zc_ctx *ctx, zc_ino_t ino, struct statvfs *ret_stat)
{
	struct pt_fs *fs = ctx_fs(ctx);
	struct pt_inode *inode;
	int r;

	inode = pt_table_get(&fs->table, ino);
	if (!inode)
		return -errno;
	r = fstatvfs(inode->fd, ret_stat) < 0 ? -errno : 0;
	pt_table_put(&fs->table, inode);
	return r;
}

static int pt_access(const struct zc_ctx *ctx, zc_ino_t ino, int mask)
{
	struct pt_fs *fs = ctx_fs(ctx);
	struct pt_inode *inode;
	struct pt_creds creds;
	int r;

	inode = pt_table_get(&fs->table, ino);
	if (!inode)
		return -errno;
	r = creds_enter(ctx, &creds);
	if (r == 0) {
		/* AT_EACCESS: check with the (fs) identity the thread now has. */
		r = faccessat(inode->fd, "", mask, AT_EMPTY_PATH | AT_EACCESS) < 0 ? -errno : 0;
		creds_exit(&creds);
	}
	pt_table_put(&fs->table, inode);
	return r;
}

enum pt_xattr_op {
	PT_XATTR_GET,
	PT_XATTR_SET,
	PT_XATTR_LIST,
	PT_XATTR_REMOVE,
};

/*
 * Extended attributes of the inode itself, through /proc/self/fd: the
 * *xattr calls refuse O_PATH descriptors, and the *xattrat calls (Linux
 * 6.13) do too for an empty path. The /proc link leads to the inode the
 * descriptor holds, a symlink's own included (it is not followed further),
 * so no name is looked up again.
 */
static long xattr_call(struct pt_inode *inode, enum pt_xattr_op op, const char *name, void *value,
		       size_t size, int flags)
{
	char path[32];
	long r = -1;

	proc_path(path, inode->fd);
	switch (op) {
	case PT_XATTR_GET:
		r = getxattr(path, name, value, size);
		break;
	case PT_XATTR_SET:
		r = setxattr(path, name, value, size, flags);
		break;
	case PT_XATTR_LIST:
		r = listxattr(path, value, size);
		break;
	case PT_XATTR_REMOVE:
		r = removexattr(path, name);
		break;
	}
	return r < 0 ? -errno : r;
}

static bool is_posix_acl_name(const char *name)
{
	return name && (!strcmp(name, "system.posix_acl_access") ||
			!strcmp(name, "system.posix_acl_default"));
}

static long do_xattr(const struct zc_ctx *ctx, zc_ino_t ino, enum pt_xattr_op op, const char *name,
		     void *value, size_t size, int flags)
{
	struct pt_fs *fs = ctx_fs(ctx);
	struct pt_inode *inode;
	struct pt_creds creds;
	long r;

	inode = pt_table_get(&fs->table, ino);
	if (!inode)
		return -errno;
	/*
	 * Changes and listings as the caller: a listing shows only the names
	 * the caller may see (trusted.* needs CAP_SYS_ADMIN), and setting an
	 * access ACL clears setgid as it would for the caller. The kernel
	 * checks a get before it asks.
	 */
	if (op == PT_XATTR_GET)
		r = creds_enter_unchecked(ctx, &creds);
	else
		r = creds_enter(ctx, &creds);
	if (r == 0) {
		r = xattr_call(inode, op, name, value, size, flags);
		creds_exit(&creds);
	}
	/* A file system without ACLs has none: not an error of the check. */
	if (r == -EOPNOTSUPP && op == PT_XATTR_GET && is_posix_acl_name(name))
		r = -ENODATA;
	pt_table_put(&fs->table, inode);
	return r;
}

static int pt_setxattr(const struct zc_ctx *ctx, zc_ino_t ino, const char *name, const void *value,
		       size_t size, int flags)
{
	return (int)do_xattr(ctx, ino, PT_XATTR_SET, name, (void *)value, size, flags);
}

/*
 * The backend's counters, as "name value" lines: the attribute
 * PT_STATS_XATTR of the mount root, beside the library's user.zcfuse.stats.
 */
#define PT_STATS_XATTR "user.zcfuse.backend"

static int format_stats(struct pt_fs *fs, char *buf, size_t size)
{
	struct pt_fs_stats st;
	char text[512];
	int n;

	pt_fs_get_stats(fs, &st);
	n = snprintf(text, sizeof(text),
		     "inodes %llu\nfds %llu\nfds.idle %llu\nfds.idle_max %llu\n"
		     "reopens %llu\nevictions %llu\nstale %llu\n"
		     "opens %llu\nopens.max %llu\nopens.per_user %llu\n"
		     "groups.read %llu\ngroups.retried %llu\n",
		     (unsigned long long)st.table.inodes, (unsigned long long)st.table.fds,
		     (unsigned long long)st.table.cached, (unsigned long long)fs->table.max_fds,
		     (unsigned long long)st.table.reopens, (unsigned long long)st.table.evictions,
		     (unsigned long long)st.table.stale, (unsigned long long)st.opens,
		     (unsigned long long)st.opens_max, (unsigned long long)st.opens_per_user,
		     (unsigned long long)st.groups_read, (unsigned long long)st.groups_retried);
	if (n < 0 || (size_t)n >= sizeof(text))
		return -EIO;
	if (size == 0)
		return n;
	if ((size_t)n > size)
		return -ERANGE;
	memcpy(buf, text, (size_t)n);
	return n;
}

static int pt_getxattr(const struct zc_ctx *ctx, zc_ino_t ino, const char *name, void *buf,
		       size_t size)
{
	if (ino == ZC_ROOT_INO && !strcmp(name, PT_STATS_XATTR))
		return format_stats(ctx_fs(ctx), buf, size);
	return (int)do_xattr(ctx, ino, PT_XATTR_GET, name, buf, size, 0);
}

static int pt_listxattr(const struct zc_ctx *ctx, zc_ino_t ino, char *buf, size_t size)
{
	return (int)do_xattr(ctx, ino, PT_XATTR_LIST, NULL, buf, size, 0);
}

/*
 * security.capability goes as the daemon: the kernel removes it itself on
 * behalf of a caller who writes, truncates or fallocates a file (asking
 * nothing of the caller, as every file system does), and it checks
 * CAP_SETFCAP before it passes on a removal a caller asked for.
 */
static int pt_removexattr(const struct zc_ctx *ctx, zc_ino_t ino, const char *name)
{
	struct pt_fs *fs = ctx_fs(ctx);
	struct pt_inode *inode;
	int r;

	if (strcmp(name, "security.capability"))
		return (int)do_xattr(ctx, ino, PT_XATTR_REMOVE, name, NULL, 0, 0);
	inode = pt_table_get(&fs->table, ino);
	if (!inode)
		return -errno;
	r = (int)xattr_call(inode, PT_XATTR_REMOVE, name, NULL, 0, 0);
	pt_table_put(&fs->table, inode);
	return r;
}

/*
 * fallocate() and copy_file_range() change a file's data: as the caller,
 * so that the backing file system clears setuid and setgid as it would for
 * the caller (the kernel leaves that to the server for these).
 */
static int pt_fallocate(const struct zc_ctx *ctx, zc_ino_t ino, uint64_t fh, int mode, off_t off,
			off_t len)
{
	struct pt_creds creds;
	int r;

	(void)ino;
	r = creds_enter(ctx, &creds);
	if (r < 0)
		return r;
	r = fallocate((int)fh, mode, off, len) < 0 ? -errno : 0;
	creds_exit(&creds);
	return r;
}

static ssize_t pt_copy_file_range(const struct zc_ctx *ctx, zc_ino_t ino_in, uint64_t fh_in,
				  off_t off_in, zc_ino_t ino_out, uint64_t fh_out, off_t off_out,
				  size_t len, int flags)
{
	struct pt_creds creds;
	ssize_t n;
	int r;

	(void)ino_in;
	(void)ino_out;
	r = creds_enter(ctx, &creds);
	if (r < 0)
		return r;
	n = copy_file_range((int)fh_in, &off_in, (int)fh_out, &off_out, len, (unsigned int)flags);
	if (n < 0)
		n = -errno;
	creds_exit(&creds);
	return n;
}

static off_t pt_lseek(const struct zc_ctx *ctx, zc_ino_t ino, uint64_t fh, off_t off, int whence)
{
	off_t r;

	(void)ctx;
	(void)ino;
	r = lseek((int)fh, off, whence);
	return r < 0 ? -errno : r;
}

static int pt_flock(const struct zc_ctx *ctx, zc_ino_t ino, uint64_t fh, int op)
{
	(void)ctx;
	(void)ino;
	return flock((int)fh, op) < 0 ? -errno : 0;
}

const struct zc_backend_ops pt_ops = {
	.lookup = pt_lookup,
	.forget = pt_forget,
	.getattr = pt_getattr,
	.setattr = pt_setattr,
	.readlink = pt_readlink,
	.mknod = pt_mknod,
	.mkdir = pt_mkdir,
	.symlink = pt_symlink,
	.link = pt_link,
	.unlink = pt_unlink,
	.rmdir = pt_rmdir,
	.rename = pt_rename,
	.open = pt_open,
	.create = pt_create,
	.read = pt_read,
	/* A write lands where a read would find it: the same extent. */
	.write = pt_read,
	.flush = pt_flush,
	.release = pt_release,
	.fsync = pt_fsync,
	.opendir = pt_opendir,
	.readdir = pt_readdir,
	.releasedir = pt_releasedir,
	.fsyncdir = pt_fsyncdir,
	.statfs = pt_statfs,
	.access = pt_access,
	.setxattr = pt_setxattr,
	.getxattr = pt_getxattr,
	.listxattr = pt_listxattr,
	.removexattr = pt_removexattr,
	.fallocate = pt_fallocate,
	.copy_file_range = pt_copy_file_range,
	.lseek = pt_lseek,
	.flock = pt_flock,
	.tmpfile = pt_tmpfile,
};

/* Descriptors kept aside for what is not an inode or an open file. */
#define PT_FDS_RESERVED 256

unsigned int pt_default_max_fds(unsigned long nofile)
{
	unsigned long n = nofile / 4;

	if (n > 4096)
		n = 4096;
	return n < 16 ? 16 : (unsigned int)n;
}

unsigned long pt_nofile_needed(unsigned int max_fds)
{
	unsigned long n = PT_FDS_RESERVED + 32;

	if (max_fds)
		return n + max_fds;
	while (pt_default_max_fds(n) + PT_FDS_RESERVED + 32 > n)
		n++;
	return n;
}

/*
 * SOURCE as the daemon reaches it: the directory itself, or, when the mount
 * sets its own access time rule or is read-only (which changes no access
 * time, as any read-only mount), a private copy of SOURCE's mounts (never
 * attached anywhere) with that rule, so that what readers of the mount do
 * to access times follows the mount's option, with or without kernel
 * passthrough. Mounts made below SOURCE later do not show in the copy.
 */
static void source_notice(const char *line)
{
	fprintf(stderr, "zcfuse: %s\n", line);
}

static int open_source(const char *source, const struct pt_conf *conf)
{
	struct mount_attr attr = { 0 };
	int fd, r;

	if (!conf || (!conf->atime_set && !conf->diratime_set && !conf->read_only))
		return open(source, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (conf->atime_set || conf->read_only) {
		attr.attr_set |= conf->read_only ? MOUNT_ATTR_NOATIME : conf->atime;
		attr.attr_clr |= MOUNT_ATTR__ATIME;
	}
	if (conf->diratime_set) {
		attr.attr_set |= conf->diratime;
		attr.attr_clr |= MOUNT_ATTR_NODIRATIME & ~conf->diratime;
	}
	fd = open_tree(AT_FDCWD, source, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
	if (fd < 0) {
		r = -errno;
		if (r != -EPERM)
			return r;
		(conf->notice ? conf->notice : source_notice)(
		    "access times of SOURCE: the mount's access time rule (and ro, which "
		    "changes none) needs root to apply to them; SOURCE's own mount's rule "
		    "stays");
		return open(source, O_PATH | O_DIRECTORY | O_CLOEXEC);
	}
	if (mount_setattr(fd, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof(attr)) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	return fd;
}

int pt_fs_init(struct pt_fs *fs, const char *source, const struct pt_conf *conf)
{
	unsigned long nofile = 1024, left;
	unsigned int max_fds;
	struct rlimit rl;
	struct stat st;
	size_t i;
	int fd, r;

	memset(fs, 0, sizeof(*fs));
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
		nofile = rl.rlim_cur;
	max_fds = conf && conf->max_fds ? conf->max_fds : pt_default_max_fds(nofile);
	/* The idle descriptors and two per open file must fit under the limit. */
	if (max_fds + PT_FDS_RESERVED + 32 > nofile)
		return -EINVAL;
	left = nofile - max_fds - PT_FDS_RESERVED;
	fs->opens_max = (unsigned int)(left / 2);
	fs->opens_per_user = fs->opens_max > 1 ? fs->opens_max / 2 : 1;
	fs->fd_owner_len = nofile;
	fs->fd_owner = malloc(nofile * sizeof(*fs->fd_owner));
	if (!fs->fd_owner)
		return -ENOMEM;
	for (i = 0; i < nofile; i++)
		fs->fd_owner[i] = PT_NO_OWNER;

	fd = open_source(source, conf);
	if (fd < 0) {
		r = fd == -1 ? -errno : fd;
		goto fail_owner;
	}
	r = stat_fd(fd, &st);
	if (r < 0)
		goto fail;
	r = pt_table_init(&fs->table, max_fds);
	if (r < 0)
		goto fail;
	if (conf && conf->notice)
		fs->table.notice = conf->notice;
	r = pt_table_set_root(&fs->table, fd, &st);
	if (r < 0) {
		pt_table_fini(&fs->table);
		goto fail;
	}
	fs->creds_switch = geteuid() == 0;
	if (fs->creds_switch) {
		r = caps_get(&fs->caps_eff, &fs->caps_perm);
		if (r < 0) {
			pt_table_fini(&fs->table); /* closes the root's descriptor */
			goto fail_owner;
		}
	}
	/*
	 * Create modes come with the caller's umask beside them, which each
	 * serving thread takes on (creation_mode()); the daemon's own must
	 * never add to it.
	 */
	umask(0);
	pthread_mutex_init(&fs->dirs_lock, NULL);
	pthread_mutex_init(&fs->opens_lock, NULL);
	return 0;
fail:
	close(fd);
fail_owner:
	free(fs->fd_owner);
	fs->fd_owner = NULL;
	return r;
}

void pt_fs_fini(struct pt_fs *fs)
{
	struct pt_user *u, *next_u;
	struct pt_dir *d, *next;

	/* Directories still open at unmount (a stop signal under load). */
	for (d = fs->dirs; d; d = next) {
		next = d->next;
		closedir(d->dp);
		free(d);
	}
	fs->dirs = NULL;
	for (u = fs->users; u; u = next_u) {
		next_u = u->next;
		free(u);
	}
	fs->users = NULL;
	pthread_mutex_destroy(&fs->dirs_lock);
	pthread_mutex_destroy(&fs->opens_lock);
	pt_table_fini(&fs->table);
	free(fs->fd_owner);
	fs->fd_owner = NULL;
}

void pt_fs_get_stats(struct pt_fs *fs, struct pt_fs_stats *ret)
{
	pt_table_get_stats(&fs->table, &ret->table);
	pthread_mutex_lock(&fs->opens_lock);
	ret->opens = fs->opens;
	ret->opens_max = fs->opens_max;
	ret->opens_per_user = fs->opens_per_user;
	pthread_mutex_unlock(&fs->opens_lock);
	ret->groups_read = __atomic_load_n(&fs->groups_read, __ATOMIC_RELAXED);
	ret->groups_retried = __atomic_load_n(&fs->groups_retried, __ATOMIC_RELAXED);
}
