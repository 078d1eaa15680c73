/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Dispatch: every FUSE request becomes one backend call and exactly one
 * reply. Backend errors are negative errnos and reach the caller unchanged.
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
#include "zcfuse_i.h"

static inline struct zc_session *req_session(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static void ctx_init(struct zc_ctx *ctx, struct zc_req_priv *priv, fuse_req_t req)
{
	const struct fuse_ctx *fc = fuse_req_ctx(req);
	struct zc_session *s = req_session(req);

	priv->s = s;
	priv->req = req;
	ctx->userdata = s->userdata;
	ctx->uid = fc->uid;
	ctx->gid = fc->gid;
	ctx->pid = fc->pid;
	ctx->umask = fc->umask;
	ctx->priv = priv;
}

#define ZC_CTX(req)                                                                                \
	struct zc_req_priv priv_;                                                                  \
	struct zc_ctx ctx;                                                                         \
	struct zc_session *s = req_session(req);                                                   \
	ctx_init(&ctx, &priv_, req)

/* Supplementary groups of thread @pid, from /proc, as libfuse reads them. */
static int proc_groups(pid_t pid, gid_t *list, int size)
{
	char path[64], *line = NULL, *p, *end;
	size_t cap = 0;
	int n = -ESRCH;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/status", (int)pid, (int)pid);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (getline(&line, &cap, f) > 0) {
		if (strncmp(line, "Groups:", 7))
			continue;
		n = 0;
		for (p = line + 7;; p = end) {
			unsigned long g = strtoul(p, &end, 10);

			if (end == p)
				break;
			if (n < size)
				list[n] = (gid_t)g;
			n++;
		}
		break;
	}
	free(line);
	fclose(f);
	return n;
}

ZC_EXPORT int zc_ctx_getgroups(const struct zc_ctx *ctx, gid_t *list, int size)
{
	const struct zc_req_priv *priv = ctx->priv;

	if (!priv)
		return -ENOSYS;
	/* READ and WRITE come without a libfuse request. */
	if (!priv->req)
		return proc_groups(ctx->pid, list, size);
	return fuse_req_getgroups(priv->req, size, list);
}

/* The inode of the user namespace of thread @tid (0: this thread). */
static int userns_ino(pid_t tid, ino_t *ret)
{
	char path[64];
	struct stat st;

	if (tid > 0)
		snprintf(path, sizeof(path), "/proc/%d/ns/user", (int)tid);
	else
		snprintf(path, sizeof(path), "/proc/thread-self/ns/user");
	if (stat(path, &st) < 0)
		return -errno;
	*ret = st.st_ino;
	return 0;
}

/*
 * capget() reads a thread's own credentials, while the request carries the
 * ones it acts with, which the kernel may have put in their place for a
 * while (access() of a setuid program checks the real uid, without
 * capabilities; nfsd acts for its clients). The capabilities are the
 * caller's only when its own fsuid and fsgid are those of the request:
 * 1 when they are, 0 when not, or a negative errno.
 */
static int creds_are_the_headers(const struct zc_ctx *ctx)
{
	char path[64], buf[4096], *line;
	unsigned long ids[4];
	bool uid_ok = false, gid_ok = false;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)ctx->pid);
	n = zc_read_small_file(path, buf, sizeof(buf));
	if (n < 0)
		return (int)n;
	for (line = buf; line && *line; line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
		bool uid = !strncmp(line, "Uid:", 4), gid = !strncmp(line, "Gid:", 4);

		if ((!uid && !gid) ||
		    sscanf(line + 4, "%lu %lu %lu %lu", &ids[0], &ids[1], &ids[2], &ids[3]) != 4)
			continue;
		if (uid)
			uid_ok = ids[3] == ctx->uid; /* the fsuid */
		else
			gid_ok = ids[3] == ctx->gid;
	}
	return uid_ok && gid_ok;
}

/*
 * The calling thread's effective capabilities, read with capget() on the
 * thread id the request names (the thread waits for the reply, so the id is
 * its own). Capabilities held in another user namespace (unshare -U by a
 * user) do not reach the daemon's files: they count as none.
 */
ZC_EXPORT int zc_ctx_get_capabilities(const struct zc_ctx *ctx, uint64_t *ret_effective)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	/* Zeroed: valgrind takes capget() to fill the first element only. */
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = { 0 };
	static ino_t own_ns;
	ino_t ns = 0, own;
	int r;

	*ret_effective = 0;
	if (ctx->pid <= 0)
		return -ESRCH;
	hdr.pid = ctx->pid;
	if (syscall(SYS_capget, &hdr, data) < 0)
		return -errno;
	*ret_effective = (uint64_t)data[1].effective << 32 | data[0].effective;
	/*
	 * A caller that is uid 0 here is the daemon's namespace's root (only a
	 * namespace made by a privileged creator maps it): its capabilities
	 * count as they are, which saves two looks at /proc on its requests.
	 * (Acting as root for a while, it shows its own capabilities, fewer
	 * or as many.)
	 */
	if (!*ret_effective || ctx->uid == 0)
		return 0;
	own = __atomic_load_n(&own_ns, __ATOMIC_RELAXED);
	if (!own) {
		r = userns_ino(0, &own);
		if (r < 0)
			goto none;
		__atomic_store_n(&own_ns, own, __ATOMIC_RELAXED);
	}
	r = userns_ino(ctx->pid, &ns);
	if (r < 0 || ns != own)
		goto none;
	r = creds_are_the_headers(ctx);
	if (r <= 0)
		goto none;
	return 0;
none:
	*ret_effective = 0;
	return r < 0 ? r : 0;
}

static bool ctx_capable(const struct zc_ctx *ctx, int cap)
{
	uint64_t eff;

	return zc_ctx_get_capabilities(ctx, &eff) == 0 && (eff & (1ULL << cap));
}

/* Is the caller of @ctx in group @gid? When that cannot be known: no. */
static bool ctx_in_group(const struct zc_ctx *ctx, gid_t gid)
{
	gid_t groups[64], *list = groups;
	bool in = false;
	int n, i;

	if (ctx->gid == gid)
		return true;
	n = zc_ctx_getgroups(ctx, groups, 64);
	if (n > 64) {
		list = calloc((size_t)n, sizeof(*list));
		n = list ? zc_ctx_getgroups(ctx, list, n) : -ENOMEM;
	}
	for (i = 0; i < n; i++)
		in = in || list[i] == gid;
	if (list != groups)
		free(list);
	return in;
}

ZC_EXPORT int zc_ctx_kernel_checks_permissions(const struct zc_ctx *ctx)
{
	const struct zc_req_priv *priv = ctx->priv;

	return priv ? zc_opts_default_permissions(&priv->s->opts) : 0;
}

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
 * With FUSE_HANDLE_KILLPRIV_V2 the kernel leaves it to the server to clear
 * setuid and setgid after a write, truncate or O_TRUNC open by a caller
 * without CAP_FSETID, and after every chown, as file_remove_privs() and
 * chown would: setuid always, setgid when group-executable or when the
 * caller is neither in the file's group nor holds CAP_FSETID
 * (setattr_should_drop_sgid()). (The backing file system drops
 * capabilities itself when the daemon writes or truncates.)
 */
void zc_kill_suid_sgid(struct zc_session *s, const struct zc_ctx *ctx, zc_ino_t ino, uint64_t fh)
{
	struct stat st, out;
	mode_t kill = 0;

	if (!s->ops.getattr || !s->ops.setattr || s->ops.getattr(ctx, ino, fh, &st) < 0)
		return;
	if (st.st_mode & S_ISUID)
		kill |= S_ISUID;
	if ((st.st_mode & S_ISGID) && ((st.st_mode & S_IXGRP) || (!ctx_in_group(ctx, st.st_gid) &&
								  !ctx_capable(ctx, CAP_FSETID))))
		kill |= S_ISGID;
	if (!kill)
		return;
	st.st_mode &= ~kill;
	if (s->ops.setattr(ctx, ino, fh, &st, ZC_SET_ATTR_MODE | ZC_SET_ATTR_KILL_SUIDGID, &out) ==
	    0)
		zc_notify_attr_changed(s, ino);
}

/*
 * The backend changed attributes of @ino that the kernel may have cached
 * (a mode cleared on its behalf): drop them, so the next stat() asks.
 */
void zc_notify_attr_changed(struct zc_session *s, zc_ino_t ino)
{
	if (s->se && zc_opts_attr_timeout(&s->opts) > 0)
		fuse_lowlevel_notify_inval_inode(s->se, ino, -1, 0);
}

static void zc_init(void *userdata, struct fuse_conn_info *conn)
{
	struct zc_session *s = userdata;
	struct zc_ctx ctx = { .userdata = s->userdata };

	s->writeback_on = false;
	if (s->opts.writeback && (conn->capable & FUSE_CAP_WRITEBACK_CACHE)) {
		conn->want |= FUSE_CAP_WRITEBACK_CACHE;
		s->writeback_on = true;
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
	if (r == 0 && zc_chan_request_kills_suidgid() && (st.st_mode & (S_ISUID | S_ISGID))) {
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

/*
 * Open flags as the backend sees them. With writeback caching the kernel
 * reads to fill partial pages and handles O_APPEND itself, so the backing
 * file must be readable and must not append on its own. O_DIRECT is served
 * by bypassing the mount's page cache (direct_io below); the backing file
 * is opened without it so that the data path needs no buffer alignment.
 */
static int backend_open_flags(const struct zc_session *s, int flags)
{
	if (s->writeback_on) {
		/* A backend that does not read open_flags_in gets it readable. */
		if ((flags & O_ACCMODE) == O_WRONLY && !(s->features & ZC_FEATURE_OPEN_FLAGS_IN))
			flags = (flags & ~O_ACCMODE) | O_RDWR;
		flags &= ~O_APPEND;
	}
	return flags & ~(O_DIRECT | ZC_KERNEL_FMODE_EXEC);
}

static uint32_t backend_open_flags_in(const struct zc_session *s, int flags)
{
	uint32_t in = 0;

	if (flags & ZC_KERNEL_FMODE_EXEC)
		in |= ZC_OPEN_IN_EXEC;
	if (s->writeback_on)
		in |= ZC_OPEN_IN_CACHE_READS;
	return in;
}

static void file_info_out(const struct zc_session *s, const struct zc_file *zf, int app_flags,
			  struct fuse_file_info *fi)
{
	fi->fh = zf->fh;
	fi->direct_io = !!(zf->open_flags_out & ZC_FOPEN_DIRECT_IO);
	fi->keep_cache = !!(zf->open_flags_out & ZC_FOPEN_KEEP_CACHE);
	fi->nonseekable = !!(zf->open_flags_out & ZC_FOPEN_NONSEEKABLE);
	if (s->opts.cache == ZC_CACHE_NEVER || s->opts.direct_io || (app_flags & O_DIRECT))
		fi->direct_io = 1;
	if (s->opts.cache == ZC_CACHE_ALWAYS && !fi->direct_io)
		fi->keep_cache = 1;
}

/*
 * Kernel passthrough for an open about to be answered: the backing id goes
 * into the reply. 0 when the open takes the pipe path, or a negative errno.
 */
static int passthrough_open(struct zc_session *s, zc_ino_t ino, const struct zc_file *zf)
{
	int32_t id;

	if (!s->opts.passthrough)
		return 0;
	id = zc_backing_open(&s->chan, ino, zf->backing_fd);
	if (id > 0)
		zc_backing_reply_with(id);
	return id < 0 ? id : 0;
}

static void zc_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct zc_file zf = {
		.flags = backend_open_flags(req_session(req), fi->flags),
		.backing_fd = -1,
		.open_flags_in = backend_open_flags_in(req_session(req), fi->flags),
	};
	ZC_CTX(req);
	int r = -ENOSYS;

	if (s->ops.open)
		r = s->ops.open(&ctx, ino, &zf);
	if (r < 0) {
		reply_err(req, r);
		return;
	}
	if (zc_chan_request_kills_suidgid())
		zc_kill_suid_sgid(s, &ctx, ino, zf.fh);
	r = passthrough_open(s, ino, &zf);
	if (r < 0) {
		if (s->ops.release)
			s->ops.release(&ctx, ino, zf.fh);
		reply_err(req, r);
		return;
	}
	file_info_out(s, &zf, fi->flags, fi);
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
		.flags = backend_open_flags(req_session(req), fi->flags),
		.backing_fd = -1,
		.open_flags_in = backend_open_flags_in(req_session(req), fi->flags),
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
	if (zc_chan_request_kills_suidgid())
		zc_kill_suid_sgid(s, &ctx, ze.ino, zf.fh);
	r = passthrough_open(s, ze.ino, &zf);
	if (r < 0) {
		if (s->ops.release)
			s->ops.release(&ctx, ze.ino, zf.fh);
		if (s->ops.forget)
			s->ops.forget(&ctx, ze.ino, 1);
		reply_err(req, r);
		return;
	}
	file_info_out(s, &zf, fi->flags, fi);
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

static void attr_out(const struct stat *st, struct fuse_attr *a)
{
	memset(a, 0, sizeof(*a));
	a->ino = st->st_ino;
	a->size = (uint64_t)st->st_size;
	a->blocks = (uint64_t)st->st_blocks;
	a->atime = (uint64_t)st->st_atim.tv_sec;
	a->mtime = (uint64_t)st->st_mtim.tv_sec;
	a->ctime = (uint64_t)st->st_ctim.tv_sec;
	a->atimensec = (uint32_t)st->st_atim.tv_nsec;
	a->mtimensec = (uint32_t)st->st_mtim.tv_nsec;
	a->ctimensec = (uint32_t)st->st_ctim.tv_nsec;
	a->mode = st->st_mode;
	a->nlink = (uint32_t)st->st_nlink;
	a->uid = st->st_uid;
	a->gid = st->st_gid;
	a->rdev = (uint32_t)st->st_rdev;
	a->blksize = (uint32_t)st->st_blksize;
}

static void timeout_out(double t, uint64_t *sec, uint32_t *nsec)
{
	if (t <= 0) {
		*sec = 0;
		*nsec = 0;
		return;
	}
	if (t > 1e12) /* as good as never; keeps the conversion defined */
		t = 1e12;
	*sec = (uint64_t)t;
	*nsec = (uint32_t)((t - (double)*sec) * 1e9);
}

/*
 * FUSE_TMPFILE (7.37), which libfuse 3.14 does not know: an unnamed file
 * in the request's node, opened; the reply is a CREATE's (entry, then
 * open). @in is the request's fuse_create_in. Returns the reply's length
 * in @out or a negative errno.
 */
ssize_t zc_dispatch_tmpfile(struct zc_session *s, const struct fuse_in_header *hdr,
			    const struct fuse_create_in *in, struct zc_tmpfile_reply *out)
{
	struct zc_req_priv priv = { .s = s };
	struct zc_ctx ctx = {
		.userdata = s->userdata,
		.uid = hdr->uid,
		.gid = hdr->gid,
		.pid = (pid_t)hdr->pid,
		.umask = in->umask,
		.priv = &priv,
	};
	int flags = (int)in->flags & ~(O_TMPFILE | O_CREAT | O_EXCL);
	struct zc_file zf = {
		.flags = backend_open_flags(s, flags),
		.backing_fd = -1,
		.open_flags_in = backend_open_flags_in(s, flags),
	};
	struct fuse_file_info fi = { 0 };
	struct zc_entry ze;
	int r;

	if (!s->ops.tmpfile)
		return -ENOSYS;
	r = s->ops.tmpfile(&ctx, hdr->nodeid, in->mode, &zf, &ze);
	if (r < 0)
		return r;
	/*
	 * The kernel's O_TMPFILE open does not take a passthrough open: a
	 * later open of the linked file then fails with EIO. The data of this
	 * open takes the pipe path (counted as no_backing), and so do opens
	 * of the same inode while it lasts (mode_conflict).
	 */
	zf.backing_fd = -1;
	r = passthrough_open(s, ze.ino, &zf);
	if (r < 0) {
		if (s->ops.release)
			s->ops.release(&ctx, ze.ino, zf.fh);
		if (s->ops.forget)
			s->ops.forget(&ctx, ze.ino, 1);
		return r;
	}
	file_info_out(s, &zf, flags, &fi);
	memset(out, 0, sizeof(*out));
	out->entry.nodeid = ze.ino;
	out->entry.generation = ze.generation;
	timeout_out(zc_opts_entry_timeout(&s->opts), &out->entry.entry_valid,
		    &out->entry.entry_valid_nsec);
	timeout_out(zc_opts_attr_timeout(&s->opts), &out->entry.attr_valid,
		    &out->entry.attr_valid_nsec);
	attr_out(&ze.attr, &out->entry.attr);
	out->open.fh = zf.fh;
	if (fi.direct_io)
		out->open.open_flags |= FOPEN_DIRECT_IO;
	if (fi.keep_cache)
		out->open.open_flags |= FOPEN_KEEP_CACHE;
	if (fi.nonseekable)
		out->open.open_flags |= FOPEN_NONSEEKABLE;
	return sizeof(*out);
}

/*
 * The kernel did not take a TMPFILE reply (the caller went away): it will
 * neither release the open nor forget the node.
 */
void zc_dispatch_tmpfile_undo(struct zc_session *s, const struct fuse_in_header *hdr,
			      const struct zc_tmpfile_reply *out)
{
	struct zc_req_priv priv = { .s = s };
	struct zc_ctx ctx = { .userdata = s->userdata, .priv = &priv };

	(void)hdr;
	if (s->opts.passthrough)
		zc_backing_release(&s->chan, out->entry.nodeid);
	if (s->ops.release)
		s->ops.release(&ctx, out->entry.nodeid, out->open.fh);
	if (s->ops.forget)
		s->ops.forget(&ctx, out->entry.nodeid, 1);
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

	zc_chan_wait_reads(&s->chan, fi->fh);
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
	fuse_req_t req;
	struct zc_req_priv priv;
	struct zc_ctx ctx;
	fuse_ino_t ino;
	uint64_t fh;
	int op;
};

/*
 * Wait for the lock unless the request was interrupted. Should the lock be
 * granted even so (the signal came as it was), the reply says it is held:
 * the caller, or the release of its file, unlocks it.
 */
static void flock_wait(void *arg)
{
	struct flock_wait *fw = arg;
	struct zc_session *s = fw->priv.s;
	int r = -EINTR;

	if (zc_waiter_arm(fw->req))
		r = s->ops.flock(&fw->ctx, fw->ino, fw->fh, fw->op);
	zc_waiter_disarm(fw->req);
	fuse_reply_err(fw->req, -r);
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
	fw->req = req;
	fw->priv = priv_;
	fw->ctx = ctx;
	fw->ctx.priv = &fw->priv;
	fw->ino = ino;
	fw->fh = fi->fh;
	fw->op = op;
	r = zc_waiter_start(&s->chan, ctx.uid, flock_wait, fw);
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
const struct fuse_lowlevel_ops zc_dispatch_ops = {
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
