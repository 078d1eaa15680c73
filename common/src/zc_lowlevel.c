/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The requests libfuse parses: each becomes one backend call and exactly
 * one reply, built by libfuse and sent by the request's route through
 * libfuse's custom I/O (zc_fuse_glue.c). Backend errors are negative
 * errnos and reach the caller unchanged.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/capability.h>
#include <linux/limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fuse_kernel_ext.h"
#include "zc_backing.h"
#include "zc_ctx.h"
#include "zc_data.h"
#include "zc_lowlevel.h"
#include "zc_req.h"
#include "zc_stats.h"
#include "zc_util.h"
#include "zc_waiter.h"
#include "zcfuse_i.h"

/*
 * The session, the request and its caller's context, in every callback:
 * the ids come from the request's header, the umask from libfuse, which
 * reads it from create requests.
 */
#define ZC_CTX(freq)                                                                               \
	struct zc_session *s = fuse_req_userdata(freq);                                            \
	struct zc_req *zreq = zc_lowlevel_current();                                               \
	struct zc_ctx ctx;                                                                         \
	zc_ctx_from_header(&ctx, s, zreq->hdr, fuse_req_ctx(freq)->umask)

static void reply_err(fuse_req_t req, int r)
{
	fuse_reply_err(req, r < 0 ? -r : EIO);
}

static void entry_param(const struct zc_session *s, const struct zc_entry *ze,
			struct fuse_entry_param *e)
{
	memset(e, 0, sizeof(*e));
	e->ino = ze->ino;
	e->generation = ze->generation;
	e->attr = ze->attr;
	e->attr_timeout = zc_opts_attr_timeout(&s->opts);
	e->entry_timeout = zc_opts_entry_timeout(&s->opts);
}

static void reply_entry_result(fuse_req_t req, struct zc_session *s, int r,
			       const struct zc_entry *ze)
{
	struct fuse_entry_param e;

	if (r < 0) {
		reply_err(req, r);
		return;
	}
	entry_param(s, ze, &e);
	fuse_reply_entry(req, &e);
}

/*
 * Under writeback caching the kernel lets a FUSE mount hold 1 % of the
 * system's dirty-page limit, strictly, so a writer waits for the daemon
 * once that much is dirty where a local file system takes its writes at
 * memory speed. The mount's share (its bdi's max_ratio) is raised to
 * opts.writeback_ratio percent; the kernel's strict limit stays, so the
 * mount never holds more than that share. Only root may; a daemon that
 * may not keeps the kernel's share and says so when the option was given.
 */
static void set_writeback_ratio(struct zc_session *s)
{
	int r =
	    s->mount_dev ? zc_bdi_set_max_ratio(s->mount_dev, s->opts.writeback_ratio) : -ENOENT;

	if (r < 0 && s->opts.writeback_ratio_set)
		zc_notice(s,
			  "cannot set writeback_ratio=%u on this mount: %s; it keeps the "
			  "kernel's share",
			  s->opts.writeback_ratio, strerror(-r));
}

static void zc_init(void *userdata, struct fuse_conn_info *conn)
{
	struct zc_session *s = userdata;
	struct zc_ctx ctx = { .userdata = s->userdata };

	s->writeback_on = false;
	if (s->opts.writeback && zc_backing_offered(&s->chan)) {
		/*
		 * The kernel takes passthrough only without writeback caching.
		 * Passthrough wins: the backing files' own page cache then
		 * caches their writes, and the daemon is off the data path.
		 */
		zc_notice(s, "writeback caching is off for this mount: kernel passthrough serves "
			     "its open files through their own page cache, and the kernel allows "
			     "the two only apart (-o nopassthrough for writeback caching)");
		conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
	} else if (s->opts.writeback && (conn->capable & FUSE_CAP_WRITEBACK_CACHE)) {
		conn->want |= FUSE_CAP_WRITEBACK_CACHE;
		s->writeback_on = true;
		set_writeback_ratio(s);
	} else {
		conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
	}
	/* Requests must fit the transport's pipes and buffers. */
	conn->max_write = (unsigned int)s->chan.max_write;
	/*
	 * The kernel clears setuid and setgid bits on write and truncate by
	 * a non-owner itself; a daemon writing as root would not.
	 */
	conn->want &= ~FUSE_CAP_HANDLE_KILLPRIV;
#ifdef FUSE_CAP_HANDLE_KILLPRIV_V2
	conn->want &= ~FUSE_CAP_HANDLE_KILLPRIV_V2;
#endif
	/*
	 * Create modes with the caller's umask beside them, for a backend
	 * that applies it (or a default ACL instead) itself.
	 */
	if ((s->features & ZC_FEATURE_DONT_MASK) && (conn->capable & FUSE_CAP_DONT_MASK))
		conn->want |= FUSE_CAP_DONT_MASK;
	else
		conn->want &= ~FUSE_CAP_DONT_MASK;
	/*
	 * POSIX ACLs in the kernel's permission checks. The kernel then
	 * checks permissions itself in any case, so only with
	 * default_permissions; without it the backend checks, ACLs included.
	 */
	s->posix_acl_on = false;
	if ((s->features & ZC_FEATURE_POSIX_ACL) && zc_opts_default_permissions(&s->opts) &&
	    (conn->capable & FUSE_CAP_POSIX_ACL)) {
		conn->want |= FUSE_CAP_POSIX_ACL;
		s->posix_acl_on = true;
	} else {
		conn->want &= ~FUSE_CAP_POSIX_ACL;
	}
	/* Without a flock operation the kernel keeps BSD locks itself. */
	if (s->ops.flock && (conn->capable & FUSE_CAP_FLOCK_LOCKS))
		conn->want |= FUSE_CAP_FLOCK_LOCKS;
	else
		conn->want &= ~FUSE_CAP_FLOCK_LOCKS;
	/* Names change behind the kernel's back only with cache=never. */
	if (s->opts.cache == ZC_CACHE_NEVER)
		conn->want &= ~FUSE_CAP_READDIRPLUS;
	if (s->ops.init)
		s->ops.init(&ctx);
}

static void zc_destroy(void *userdata)
{
	struct zc_session *s = userdata;

	if (s->ops.destroy)
		s->ops.destroy(s->userdata);
}

static void zc_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct zc_entry ze;
	ZC_CTX(req);
	int r = -ENOSYS;

	if (s->ops.lookup)
		r = s->ops.lookup(&ctx, parent, name, &ze);
	reply_entry_result(req, s, r, &ze);
}

static void zc_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	ZC_CTX(req);

	if (s->ops.forget)
		s->ops.forget(&ctx, ino, nlookup);
	fuse_reply_none(req);
}

static void zc_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	ZC_CTX(req);
	size_t i;

	if (s->ops.forget)
		for (i = 0; i < count; i++)
			s->ops.forget(&ctx, forgets[i].ino, forgets[i].nlookup);
	fuse_reply_none(req);
}

static void reply_attr_result(fuse_req_t req, struct zc_session *s, int r, const struct stat *st)
{
	if (r < 0)
		reply_err(req, r);
	else
		fuse_reply_attr(req, st, zc_opts_attr_timeout(&s->opts));
}

static void zc_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct stat st;
	ZC_CTX(req);
	int r = -ENOSYS;

	if (s->ops.getattr)
		r = s->ops.getattr(&ctx, ino, fi ? fi->fh : ZC_NO_FH, &st);
	reply_attr_result(req, s, r, &st);
}

static void zc_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		       struct fuse_file_info *fi)
{
	struct stat st;
	ZC_CTX(req);
	int r = -ENOSYS;

	/* The bits of the header; a request to clear setuid is served below. */
	to_set &= ZC_SET_ATTR_MODE | ZC_SET_ATTR_UID | ZC_SET_ATTR_GID | ZC_SET_ATTR_SIZE |
		  ZC_SET_ATTR_ATIME | ZC_SET_ATTR_MTIME | ZC_SET_ATTR_ATIME_NOW |
		  ZC_SET_ATTR_MTIME_NOW | ZC_SET_ATTR_CTIME;
	/*
	 * Writeback caching: mtime and ctime alone, with an open file (or a
	 * truncate), are the times the kernel keeps, sent in the caller's
	 * name. (A futimens() that sets mtime alone looks the same.)
	 */
	if (s->writeback_on &&
	    (to_set & (ZC_SET_ATTR_ATIME | ZC_SET_ATTR_ATIME_NOW | ZC_SET_ATTR_MTIME |
		       ZC_SET_ATTR_MTIME_NOW | ZC_SET_ATTR_CTIME)) ==
		(ZC_SET_ATTR_MTIME | ZC_SET_ATTR_CTIME) &&
	    (fi || (to_set & ZC_SET_ATTR_SIZE)))
		to_set |= ZC_SET_ATTR_KERNEL_TIMES;
	if (s->ops.setattr)
		r = s->ops.setattr(&ctx, ino, fi ? fi->fh : ZC_NO_FH, attr, to_set, &st);
	if (r == 0 && zreq->kill_suidgid && (st.st_mode & (S_ISUID | S_ISGID))) {
		zc_kill_suid_sgid(s, &ctx, ino, fi ? fi->fh : ZC_NO_FH);
		r = s->ops.getattr ? s->ops.getattr(&ctx, ino, ZC_NO_FH, &st) : r;
	}
	reply_attr_result(req, s, r, &st);
}

static void zc_readlink(fuse_req_t req, fuse_ino_t ino)
{
	char buf[PATH_MAX + 1];
	ZC_CTX(req);
	int r = -ENOSYS;

	if (s->ops.readlink)
		r = s->ops.readlink(&ctx, ino, buf, sizeof(buf));
	if (r < 0) {
		reply_err(req, r);
		return;
	}
	if ((size_t)r >= sizeof(buf)) {
		fuse_reply_err(req, ENAMETOOLONG);
		return;
	}
	buf[r] = '\0';
	fuse_reply_readlink(req, buf);
}

static void zc_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	struct zc_entry ze;
	ZC_CTX(req);
	int r = -ENOSYS;

	if (s->ops.mknod)
		r = s->ops.mknod(&ctx, parent, name, mode, rdev, &ze);
	reply_entry_result(req, s, r, &ze);
}

static void zc_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	struct zc_entry ze;
	ZC_CTX(req);
	int r = -ENOSYS;

	if (s->ops.mkdir)
		r = s->ops.mkdir(&ctx, parent, name, mode, &ze);
	reply_entry_result(req, s, r, &ze);
}

static void zc_symlink(fuse_req_t req, const char *target, fuse_ino_t parent, const char *name)
{
	struct zc_entry ze;
	ZC_CTX(req);
	int r = -ENOSYS;

	if (s->ops.symlink)
		r = s->ops.symlink(&ctx, target, parent, name, &ze);
	reply_entry_result(req, s, r, &ze);
}

static void zc_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	struct zc_entry ze;
	ZC_CTX(req);
	int r = -ENOSYS;

	if (s->ops.link)
		r = s->ops.link(&ctx, ino, newparent, newname, &ze);
	reply_entry_result(req, s, r, &ze);
}

static void zc_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	ZC_CTX(req);
	int r = -ENOSYS;

	if (s->ops.unlink)
		r = s->ops.unlink(&ctx, parent, name);
	fuse_reply_err(req, -r);
}

static void zc_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	ZC_CTX(req);
	int r = -ENOSYS;

	if (s->ops.rmdir)
		r = s->ops.rmdir(&ctx, parent, name);
	fuse_reply_err(req, -r);
}

static void zc_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		      const char *newname, unsigned int flags)
{
	ZC_CTX(req);
	int r = -ENOSYS;

	if (s->ops.rename)
		r = s->ops.rename(&ctx, parent, name, newparent, newname, flags);
	fuse_reply_err(req, -r);
}

static void zc_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct zc_file zf = {
		.flags = zc_backend_open_flags(fuse_req_userdata(req), fi->flags),
		.backing_fd = -1,
		.open_flags_in = zc_backend_open_flags_in(fuse_req_userdata(req), fi->flags),
	};
	ZC_CTX(req);
	int r = -ENOSYS;

	if (s->ops.open)
		r = s->ops.open(&ctx, ino, &zf);
	if (r < 0) {
		reply_err(req, r);
		return;
	}
	if (zreq->kill_suidgid)
		zc_kill_suid_sgid(s, &ctx, ino, zf.fh);
	r = zc_passthrough_open(s, zreq, ino, &zf);
	if (r < 0) {
		if (s->ops.release)
			s->ops.release(&ctx, ino, zf.fh);
		reply_err(req, r);
		return;
	}
	zc_file_info_out(s, &zf, fi->flags, fi);
	if (fuse_reply_open(req, fi) == -ENOENT) {
		/* The caller went away: the kernel will not release this open. */
		if (s->opts.passthrough)
			zc_backing_release(&s->chan, ino);
		if (s->ops.release)
			s->ops.release(&ctx, ino, zf.fh);
	}
}

static void zc_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		      struct fuse_file_info *fi)
{
	struct zc_file zf = {
		.flags = zc_backend_open_flags(fuse_req_userdata(req), fi->flags),
		.backing_fd = -1,
		.open_flags_in = zc_backend_open_flags_in(fuse_req_userdata(req), fi->flags),
	};
	struct fuse_entry_param e;
	struct zc_entry ze;
	ZC_CTX(req);
	int r = -ENOSYS;

	if (s->ops.create)
		r = s->ops.create(&ctx, parent, name, mode, &zf, &ze);
	if (r < 0) {
		reply_err(req, r);
		return;
	}
	if (zreq->kill_suidgid)
		zc_kill_suid_sgid(s, &ctx, ze.ino, zf.fh);
	r = zc_passthrough_open(s, zreq, ze.ino, &zf);
	if (r < 0) {
		if (s->ops.release)
			s->ops.release(&ctx, ze.ino, zf.fh);
		if (s->ops.forget)
			s->ops.forget(&ctx, ze.ino, 1);
		reply_err(req, r);
		return;
	}
	zc_file_info_out(s, &zf, fi->flags, fi);
	entry_param(s, &ze, &e);
	if (fuse_reply_create(req, &e, fi) == -ENOENT) {
		if (s->opts.passthrough)
			zc_backing_release(&s->chan, ze.ino);
		if (s->ops.release)
			s->ops.release(&ctx, ze.ino, zf.fh);
		if (s->ops.forget)
			s->ops.forget(&ctx, ze.ino, 1);
	}
}

static void zc_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	ZC_CTX(req);
	int r = 0;

	if (s->ops.flush)
		r = s->ops.flush(&ctx, ino, fi->fh);
	fuse_reply_err(req, -r);
}

static void zc_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	ZC_CTX(req);

	zc_data_wait_reads(&s->chan, fi->fh);
	if (s->opts.passthrough)
		zc_backing_release(&s->chan, ino);
	if (s->ops.release)
		s->ops.release(&ctx, ino, fi->fh);
	fuse_reply_err(req, 0);
}

static void zc_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	ZC_CTX(req);
	int r = -ENOSYS;

	if (s->ops.fsync)
		r = s->ops.fsync(&ctx, ino, fi->fh, datasync);
	fuse_reply_err(req, -r);
}

static void zc_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct zc_file zf = { .flags = fi->flags };
	ZC_CTX(req);
	int r = -ENOSYS;

	if (s->ops.opendir)
		r = s->ops.opendir(&ctx, ino, &zf);
	if (r < 0) {
		reply_err(req, r);
		return;
	}
	fi->fh = zf.fh;
	fi->cache_readdir = s->opts.cache == ZC_CACHE_ALWAYS;
	fi->keep_cache = s->opts.cache == ZC_CACHE_ALWAYS;
	if (fuse_reply_open(req, fi) == -ENOENT && s->ops.releasedir)
		s->ops.releasedir(&ctx, ino, zf.fh);
}

struct dir_fill {
	fuse_req_t req;
	struct zc_session *s;
	const struct zc_ctx *ctx;
	zc_ino_t dir;
	bool plus;
	char *buf;
	size_t size;
	size_t used;
};

static bool is_dot_or_dotdot(const char *name)
{
	return name[0] == '.' && (!name[1] || (name[1] == '.' && !name[2]));
}

static int dir_fill(void *fill_ctx, const char *name, const struct stat *st, off_t off_next)
{
	struct dir_fill *df = fill_ctx;
	size_t room = df->size - df->used;
	struct fuse_entry_param e;
	size_t len;

	if (!df->plus) {
		len = fuse_add_direntry(df->req, df->buf + df->used, room, name, st, off_next);
		if (len > room)
			return 1;
		df->used += len;
		return 0;
	}

	memset(&e, 0, sizeof(e));
	if (is_dot_or_dotdot(name)) {
		e.attr.st_ino = st->st_ino;
		e.attr.st_mode = st->st_mode;
	} else {
		struct zc_entry ze;
		int r = df->s->ops.lookup(df->ctx, df->dir, name, &ze);

		if (r == -ENOENT)
			return 0; /* removed since the directory was read */
		if (r < 0)
			return r;
		entry_param(df->s, &ze, &e);
	}
	len = fuse_add_direntry_plus(df->req, df->buf + df->used, room, name, &e, off_next);
	if (len > room) {
		/* Not sent: the kernel never learns of this lookup. */
		if (e.ino && df->s->ops.forget)
			df->s->ops.forget(df->ctx, e.ino, 1);
		return 1;
	}
	df->used += len;
	return 0;
}

static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi, bool plus)
{
	struct dir_fill df = { .req = req, .dir = ino, .plus = plus, .size = size };
	ZC_CTX(req);
	int r;

	if (!s->ops.readdir || (plus && !s->ops.lookup)) {
		fuse_reply_err(req, ENOSYS);
		return;
	}
	/* The kernel asks for at most max_pages pages, what the transport takes. */
	if (size > s->chan.bufsize)
		df.size = size = s->chan.bufsize;
	df.s = s;
	df.ctx = &ctx;
	df.buf = malloc(size ? size : 1);
	if (!df.buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	r = s->ops.readdir(&ctx, ino, fi->fh, off, dir_fill, &df);
	/* Entries already taken count even when a later one failed. */
	if (r < 0 && df.used == 0)
		reply_err(req, r);
	else
		fuse_reply_buf(req, df.buf, df.used);
	free(df.buf);
}

static void zc_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, false);
}

static void zc_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			   struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, true);
}

static void zc_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	ZC_CTX(req);

	if (s->ops.releasedir)
		s->ops.releasedir(&ctx, ino, fi->fh);
	fuse_reply_err(req, 0);
}

static void zc_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	ZC_CTX(req);
	int r = -ENOSYS;

	if (s->ops.fsyncdir)
		r = s->ops.fsyncdir(&ctx, ino, fi->fh, datasync);
	fuse_reply_err(req, -r);
}

static void zc_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs st;
	ZC_CTX(req);
	int r = -ENOSYS;

	if (s->ops.statfs)
		r = s->ops.statfs(&ctx, ino, &st);
	if (r < 0)
		reply_err(req, r);
	else
		fuse_reply_statfs(req, &st);
}

static void zc_access(fuse_req_t req, fuse_ino_t ino, int mask)
{
	ZC_CTX(req);
	int r = -ENOSYS;

	if (s->ops.access)
		r = s->ops.access(&ctx, ino, mask);
	fuse_reply_err(req, -r);
}

static void zc_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
			size_t size, int flags)
{
	ZC_CTX(req);
	int r = -ENOTSUP;

	if (s->ops.setxattr)
		r = s->ops.setxattr(&ctx, ino, name, value, size, flags);
	fuse_reply_err(req, -r);
}

/* Reply to getxattr/listxattr: the size alone when asked, else the data. */
static void reply_xattr_result(fuse_req_t req, int r, const char *buf, size_t size)
{
	if (r < 0)
		reply_err(req, r);
	else if (size == 0)
		fuse_reply_xattr(req, (size_t)r);
	else if ((size_t)r > size)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, buf, (size_t)r);
}

/*
 * The kernel asks for at most XATTR_SIZE_MAX (XATTR_LIST_MAX) bytes, the
 * most a value (name list) can hold: a larger @size buys nothing.
 */
static size_t xattr_buf_size(size_t size)
{
	return size > XATTR_SIZE_MAX ? XATTR_SIZE_MAX : size;
}

static void zc_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	char *buf = NULL;
	ZC_CTX(req);
	int r = -ENOTSUP;

	size = xattr_buf_size(size);
	if (size && !(buf = malloc(size))) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	if (ino == ZC_ROOT_INO && !strcmp(name, ZC_STATS_XATTR))
		r = zc_stats_format(&s->chan.stats, buf, size);
	else if (s->ops.getxattr)
		r = s->ops.getxattr(&ctx, ino, name, buf, size);
	reply_xattr_result(req, r, buf, size);
	free(buf);
}

static void zc_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	char *buf = NULL;
	ZC_CTX(req);
	int r = -ENOTSUP;

	size = xattr_buf_size(size);
	if (size && !(buf = malloc(size))) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	if (s->ops.listxattr)
		r = s->ops.listxattr(&ctx, ino, buf, size);
	reply_xattr_result(req, r, buf, size);
	free(buf);
}

static void zc_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	ZC_CTX(req);
	int r = -ENOTSUP;

	if (s->ops.removexattr)
		r = s->ops.removexattr(&ctx, ino, name);
	fuse_reply_err(req, -r);
}

static void zc_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len,
			 struct fuse_file_info *fi)
{
	ZC_CTX(req);
	int r = -EOPNOTSUPP;

	if (s->ops.fallocate)
		r = s->ops.fallocate(&ctx, ino, fi->fh, mode, off, len);
	fuse_reply_err(req, -r);
}

static void zc_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in,
			       struct fuse_file_info *fi_in, fuse_ino_t ino_out, off_t off_out,
			       struct fuse_file_info *fi_out, size_t len, int flags)
{
	ZC_CTX(req);
	ssize_t r = -ENOSYS;

	if (s->ops.copy_file_range)
		r = s->ops.copy_file_range(&ctx, ino_in, fi_in->fh, off_in, ino_out, fi_out->fh,
					   off_out, len, flags);
	if (r < 0) {
		reply_err(req, (int)r);
		return;
	}
	/* The copy may have cleared setuid and setgid, which the kernel keeps. */
	if (r > 0)
		zc_notify_attr_changed(s, ino_out);
	fuse_reply_write(req, (size_t)r);
}

static void zc_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
		     struct fuse_file_info *fi)
{
	ZC_CTX(req);
	off_t r = -ENOSYS;

	if (s->ops.lseek)
		r = s->ops.lseek(&ctx, ino, fi->fh, off, whence);
	if (r < 0)
		reply_err(req, (int)r);
	else
		fuse_reply_lseek(req, r);
}

/* A blocking flock() that waits on a thread of its own (zc_waiter.c). */
struct flock_wait {
	fuse_req_t freq;
	struct zc_session *s;
	struct zc_ctx ctx;
	fuse_ino_t ino;
	uint64_t fh;
	int op;
};

/*
 * Wait for the lock unless the request was interrupted. Should the lock be
 * granted even so (the signal came as it was), the reply says it is held:
 * the caller, or the release of its file, unlocks it. libfuse's request is
 * freed first, then the reply goes out by the kept request's route.
 */
static void flock_wait(void *arg, struct zc_req *kept)
{
	struct flock_wait *fw = arg;
	struct zc_session *s = fw->s;
	int r = -EINTR;

	if (zc_waiter_arm(fw->freq))
		r = s->ops.flock(&fw->ctx, fw->ino, fw->fh, fw->op);
	zc_waiter_disarm(fw->freq);
	fuse_reply_none(fw->freq);
	zc_req_reply(kept, r, NULL, 0);
	free(fw);
}

/*
 * A lock that must wait (no LOCK_NB, and not granted when tried with it)
 * waits on a thread of its own, so that it holds no thread or ring entry
 * other requests need; beyond the waiters' bounds it is refused with
 * ENOLCK. Trying first costs an uncontended lock no thread.
 */
static void zc_flock(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, int op)
{
	ZC_CTX(req);
	struct flock_wait *fw;
	int r = -ENOSYS;

	if (!s->ops.flock)
		goto out;
	if ((op & LOCK_NB) || !(op & (LOCK_SH | LOCK_EX))) {
		r = s->ops.flock(&ctx, ino, fi->fh, op);
		goto out;
	}
	r = s->ops.flock(&ctx, ino, fi->fh, op | LOCK_NB);
	if (r != -EWOULDBLOCK)
		goto out;
	fw = calloc(1, sizeof(*fw));
	if (!fw) {
		r = -ENOLCK;
		goto out;
	}
	fw->freq = req;
	fw->s = s;
	fw->ctx = ctx;
	fw->ino = ino;
	fw->fh = fi->fh;
	fw->op = op;
	r = zc_waiter_start(zreq, ctx.uid, flock_wait, fw);
	if (r == 0)
		return;
	free(fw);
	/* No threads of the transport's own (tests): wait here. */
	if (r == -EOPNOTSUPP)
		r = s->ops.flock(&ctx, ino, fi->fh, op);
out:
	fuse_reply_err(req, -r);
}

/*
 * POSIX (fcntl) locks are left to the kernel, which keeps them per mount
 * with the right owners; a daemon holding them on the backing file would
 * merge every caller into one owner.
 */
const struct fuse_lowlevel_ops zc_lowlevel_ops = {
	.init = zc_init,
	.destroy = zc_destroy,
	.lookup = zc_lookup,
	.forget = zc_forget,
	.forget_multi = zc_forget_multi,
	.getattr = zc_getattr,
	.setattr = zc_setattr,
	.readlink = zc_readlink,
	.mknod = zc_mknod,
	.mkdir = zc_mkdir,
	.symlink = zc_symlink,
	.link = zc_link,
	.unlink = zc_unlink,
	.rmdir = zc_rmdir,
	.rename = zc_rename,
	.open = zc_open,
	.create = zc_create,
	.flush = zc_flush,
	.release = zc_release,
	.fsync = zc_fsync,
	.opendir = zc_opendir,
	.readdir = zc_readdir,
	.readdirplus = zc_readdirplus,
	.releasedir = zc_releasedir,
	.fsyncdir = zc_fsyncdir,
	.statfs = zc_statfs,
	.access = zc_access,
	.setxattr = zc_setxattr,
	.getxattr = zc_getxattr,
	.listxattr = zc_listxattr,
	.removexattr = zc_removexattr,
	.fallocate = zc_fallocate,
	.copy_file_range = zc_copy_file_range,
	.lseek = zc_lseek,
	.flock = zc_flock,
};
