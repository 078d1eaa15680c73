/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The handlers of the opcode table (zc_dispatch.c): each takes a request
 * whose arguments dispatch decoded (req->args), makes one backend call and
 * sends exactly one reply by the request's route (none for FORGET,
 * BATCH_FORGET and INTERRUPT). Backend errors are negative errnos and
 * reach the caller unchanged.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include "fuse_kernel_ext.h"
#include "zc_backend.h"
#include "zc_backing.h"
#include "zc_contract.h"
#include "zc_chan.h"
#include "zc_ctx.h"
#include "zc_data.h"
#include "zc_opts.h"
#include "zc_ops.h"
#include "zc_proto.h"
#include "zc_req.h"
#include "zc_stats.h"
#include "zc_waiter.h"

/* The connection of @req and its caller's context, with @umask for a create. */
static struct zc_chan *op_begin(struct zc_req *req, struct zc_ctx *ctx, mode_t umask)
{
	zc_ctx_from_req(ctx, req, umask);
	return req->chan;
}

/* A backend's result as a reply without arguments: 0 or its negative errno. */
static void reply_status(struct zc_req *req, int r)
{
	zc_reply_err(req, r > 0 ? 0 : r);
}

/* A failed call that must fail: its errno, or EIO for one that said success. */
static void reply_failure(struct zc_req *req, int r)
{
	zc_reply_err(req, r < 0 ? r : -EIO);
}

/*
 * How long the kernel may keep @ino's attributes: not at all while a
 * shared mapping of it in passthrough may change its times behind the
 * kernel (zc_backing_written_behind()), so a stat sees them as on SOURCE.
 */
static double attr_timeout_of(struct zc_chan *c, zc_ino_t ino)
{
	if (c->opts->passthrough && zc_backing_written_behind(c, ino))
		return 0;
	return zc_opts_attr_timeout(c->opts);
}

static void entry_out(struct zc_chan *c, const struct zc_entry *ze, struct fuse_entry_out *e)
{
	zc_proto_entry(e, ze, zc_opts_entry_timeout(c->opts), attr_timeout_of(c, ze->ino));
}

static void reply_entry_result(struct zc_req *req, struct zc_chan *c, int r,
			       const struct zc_entry *ze)
{
	struct fuse_entry_out e;

	if (r < 0) {
		reply_failure(req, r);
		return;
	}
	entry_out(c, ze, &e);
	zc_reply_entry(req, &e);
}

static void reply_attr_result(struct zc_req *req, struct zc_chan *c, int r, const struct stat *st)
{
	if (r < 0)
		reply_failure(req, r);
	else
		zc_reply_attr(req, st, attr_timeout_of(c, req->hdr->nodeid));
}

/*
 * What a create request says of the parent's group, when the kernel was
 * asked to say it (FUSE_CREATE_SUPP_GROUP); unknown otherwise.
 */
static void note_create_group(struct zc_req *req)
{
	uint32_t gid;
	int r;

	if (!(req->chan->conn.flags2 & ZC_FUSE_CREATE_SUPP_GROUP))
		return;
	r = zc_proto_create_group(req->args.ext, req->args.ext_len, &gid);
	if (r < 0)
		return;
	req->create_group = r;
	req->create_gid = gid;
}

/*
 * Open flags as the backend sees them. With writeback caching the kernel
 * reads to fill partial pages and handles O_APPEND itself, so the backing
 * file must be readable and must not append on its own. O_DIRECT is served
 * by bypassing the mount's page cache (open_out() below); the backing file
 * is opened without it so that the data path needs no buffer alignment.
 */
static int backend_open_flags(const struct zc_chan *c, int flags)
{
	if (c->conn.writeback) {
		/* A backend that does not read open_flags_in gets it readable. */
		if ((flags & O_ACCMODE) == O_WRONLY &&
		    !(c->backend->features & ZC_FEATURE_OPEN_FLAGS_IN))
			flags = (flags & ~O_ACCMODE) | O_RDWR;
		flags &= ~O_APPEND;
	}
	return flags & ~(O_DIRECT | ZC_KERNEL_FMODE_EXEC);
}

static uint32_t backend_open_flags_in(const struct zc_chan *c, int flags)
{
	uint32_t in = 0;

	if (flags & ZC_KERNEL_FMODE_EXEC)
		in |= ZC_OPEN_IN_EXEC;
	if (c->conn.writeback)
		in |= ZC_OPEN_IN_CACHE_READS;
	return in;
}

static void file_init(const struct zc_chan *c, int flags, struct zc_file *zf)
{
	memset(zf, 0, sizeof(*zf));
	zf->flags = backend_open_flags(c, flags);
	zf->backing_fd = -1;
	zf->open_flags_in = backend_open_flags_in(c, flags);
}

/*
 * The open reply from the backend's zc_file, the mount's cache mode and,
 * for an open passed through, its backing id: reads and writes then go to
 * the backing file even with direct_io or cache=never (FOPEN_DIRECT_IO
 * would send them to the daemon), and the flags the kernel refuses beside
 * passthrough go (cache=always's FOPEN_KEEP_CACHE, a backend's
 * FOPEN_NONSEEKABLE).
 */
/*
 * strictatime: every access moves the access time, which the kernel leaves
 * to the backend for FUSE. Pages kept from an earlier open would serve a
 * read without it, so an open keeps none, and passthrough=auto passes
 * read-only opens through as well (the backing file then keeps the time).
 */
static bool strict_atime(const struct zc_chan *c)
{
	return c->opts->mount_flags & MS_STRICTATIME;
}

static void open_out(const struct zc_chan *c, const struct zc_file *zf, int app_flags,
		     int32_t backing_id, struct fuse_open_out *o)
{
	struct zc_fuse_open_out *ext = (struct zc_fuse_open_out *)o;
	bool direct = zf->open_flags_out & ZC_FOPEN_DIRECT_IO;

	memset(o, 0, sizeof(*o));
	o->fh = zf->fh;
	if (c->opts->cache == ZC_CACHE_NEVER || c->opts->direct_io || (app_flags & O_DIRECT))
		direct = true;
	if (direct)
		o->open_flags |= FOPEN_DIRECT_IO;
	if (((zf->open_flags_out & ZC_FOPEN_KEEP_CACHE) ||
	     (c->opts->cache == ZC_CACHE_ALWAYS && !direct)) &&
	    !strict_atime(c))
		o->open_flags |= FOPEN_KEEP_CACHE;
	if (zf->open_flags_out & ZC_FOPEN_NONSEEKABLE)
		o->open_flags |= FOPEN_NONSEEKABLE;
	if (backing_id > 0) {
		o->open_flags |= ZC_FOPEN_PASSTHROUGH;
		o->open_flags &= ZC_FOPEN_PASSTHROUGH_ALLOWED & ~FOPEN_DIRECT_IO;
		ext->backing_id = backing_id;
	}
}

/*
 * passthrough=auto with cache=auto: a read-only open is served from the
 * mount's own page cache, which keeps a file's pages across opens while the
 * file is unchanged (its times and size, checked at every open, so a write
 * passed through is seen). Opens for writing, and every open with the other
 * cache modes or direct_io, are passed through: cache=always would keep
 * pages that a write passed through had made stale. Asked-for passthrough
 * passes every open.
 */
static bool prefers_page_cache(const struct zc_chan *c, const struct zc_file *zf)
{
	return c->opts->passthrough_choice == ZC_PASSTHROUGH_AUTO && !strict_atime(c) &&
	       c->opts->cache == ZC_CACHE_AUTO && !c->opts->direct_io &&
	       (zf->flags & O_ACCMODE) == O_RDONLY && !(zf->flags & (O_DIRECT | O_TRUNC)) &&
	       !(zf->open_flags_out & ZC_FOPEN_DIRECT_IO);
}

static bool open_writes(int flags)
{
	return (flags & O_ACCMODE) != O_RDONLY;
}

/*
 * Kernel passthrough for an open about to be answered: the backing id for
 * the reply (*@ret_id, 0 when the open takes the data path), or -errno.
 */
static int passthrough_open(struct zc_chan *c, zc_ino_t ino, const struct zc_file *zf,
			    bool with_entry, int32_t *ret_id)
{
	int32_t id;

	*ret_id = 0;
	if (!c->opts->passthrough)
		return 0;
	id = zc_backing_open(c, ino, zf->backing_fd, prefers_page_cache(c, zf),
			     open_writes(zf->flags));
	if (id < 0)
		return id;
	/*
	 * Writes through a shared mapping of it will change its times behind
	 * the kernel: attributes kept from before the open go, and replies
	 * keep none while it is open for writing (attr_timeout_of()). A
	 * create's reply carries such attributes itself (@with_entry).
	 */
	if (id > 0 && open_writes(zf->flags) && !with_entry)
		zc_notify_attr_changed(c, ino);
	*ret_id = id;
	return 0;
}

/* An open the kernel will never release (its reply was refused, or failed). */
static void open_undo(struct zc_chan *c, const struct zc_ctx *ctx, zc_ino_t ino,
		      const struct zc_file *zf, bool backing, bool forget)
{
	uint64_t fh = zf->fh;

	if (backing && c->opts->passthrough)
		zc_backing_release(c, ino, open_writes(zf->flags));
	if (c->backend->ops.release)
		c->backend->ops.release(ctx, ino, fh);
	if (forget && c->backend->ops.forget)
		c->backend->ops.forget(ctx, ino, 1);
}

void zc_op_lookup(struct zc_req *req)
{
	struct zc_entry ze;
	struct zc_ctx ctx;
	struct zc_chan *c = op_begin(req, &ctx, 0);
	int r = -ENOSYS;

	if (c->backend->ops.lookup)
		r = c->backend->ops.lookup(&ctx, req->hdr->nodeid, req->args.name, &ze);
	/*
	 * A missing name as an entry of node 0, which the kernel keeps for
	 * the negative timeout: an ENOENT it keeps for no time at all.
	 */
	if (r == -ENOENT && zc_opts_negative_timeout(c->opts) > 0) {
		struct fuse_entry_out e;

		memset(&ze, 0, sizeof(ze));
		zc_proto_entry(&e, &ze, zc_opts_negative_timeout(c->opts), 0);
		zc_reply_entry(req, &e);
		return;
	}
	reply_entry_result(req, c, r, &ze);
}

void zc_op_forget(struct zc_req *req)
{
	struct zc_ctx ctx;
	struct zc_chan *c = op_begin(req, &ctx, 0);

	if (c->backend->ops.forget)
		c->backend->ops.forget(&ctx, req->hdr->nodeid, req->args.in.forget.nlookup);
}

void zc_op_batch_forget(struct zc_req *req)
{
	const struct zc_args *a = &req->args;
	struct zc_ctx ctx;
	struct zc_chan *c = op_begin(req, &ctx, 0);
	uint32_t i, count = a->in.batch_forget.count;

	/* A count past the message is malformed: none of it is served. */
	if (count > a->data_len / sizeof(struct fuse_forget_one) || !c->backend->ops.forget)
		return;
	for (i = 0; i < count; i++) {
		struct fuse_forget_one one;

		memcpy(&one, (const char *)a->data + i * sizeof(one), sizeof(one));
		c->backend->ops.forget(&ctx, one.nodeid, one.nlookup);
	}
}

void zc_op_getattr(struct zc_req *req)
{
	const struct fuse_getattr_in *in = &req->args.in.getattr;
	uint64_t fh = in->getattr_flags & FUSE_GETATTR_FH ? in->fh : ZC_NO_FH;
	struct stat st;
	struct zc_ctx ctx;
	struct zc_chan *c = op_begin(req, &ctx, 0);
	int r = -ENOSYS;

	if (c->backend->ops.getattr)
		r = c->backend->ops.getattr(&ctx, req->hdr->nodeid, fh, &st);
	reply_attr_result(req, c, r, &st);
}

void zc_op_setattr(struct zc_req *req)
{
	const struct fuse_setattr_in *in = &req->args.in.setattr;
	uint64_t ino = req->hdr->nodeid, fh = in->valid & FATTR_FH ? in->fh : ZC_NO_FH;
	struct stat attr, st;
	struct zc_ctx ctx;
	struct zc_chan *c = op_begin(req, &ctx, 0);
	int to_set, r = -ENOSYS;

	memset(&attr, 0, sizeof(attr));
	attr.st_mode = in->mode;
	attr.st_uid = in->uid;
	attr.st_gid = in->gid;
	attr.st_size = (off_t)in->size;
	attr.st_atim.tv_sec = (time_t)in->atime;
	attr.st_atim.tv_nsec = in->atimensec;
	attr.st_mtim.tv_sec = (time_t)in->mtime;
	attr.st_mtim.tv_nsec = in->mtimensec;
	attr.st_ctim.tv_sec = (time_t)in->ctime;
	attr.st_ctim.tv_nsec = in->ctimensec;
	/* The bits of the protocol; a request to clear setuid is served below. */
	to_set =
	    (int)(in->valid & (ZC_SET_ATTR_MODE | ZC_SET_ATTR_UID | ZC_SET_ATTR_GID |
			       ZC_SET_ATTR_SIZE | ZC_SET_ATTR_ATIME | ZC_SET_ATTR_MTIME |
			       ZC_SET_ATTR_ATIME_NOW | ZC_SET_ATTR_MTIME_NOW | ZC_SET_ATTR_CTIME));
	/*
	 * Writeback caching: mtime and ctime alone, with an open file (or a
	 * truncate), are the times the kernel keeps, sent in the caller's
	 * name. (A futimens() that sets mtime alone looks the same.)
	 */
	if (c->conn.writeback &&
	    (to_set & (ZC_SET_ATTR_ATIME | ZC_SET_ATTR_ATIME_NOW | ZC_SET_ATTR_MTIME |
		       ZC_SET_ATTR_MTIME_NOW | ZC_SET_ATTR_CTIME)) ==
		(ZC_SET_ATTR_MTIME | ZC_SET_ATTR_CTIME) &&
	    (fh != ZC_NO_FH || (to_set & ZC_SET_ATTR_SIZE)))
		to_set |= ZC_SET_ATTR_KERNEL_TIMES;
	if (c->backend->ops.setattr)
		r = c->backend->ops.setattr(&ctx, ino, fh, &attr, to_set, &st);
	if (r == 0 && (in->valid & FATTR_KILL_SUIDGID) && (st.st_mode & (S_ISUID | S_ISGID))) {
		zc_kill_suid_sgid(c, &ctx, ino, fh);
		r = c->backend->ops.getattr ? c->backend->ops.getattr(&ctx, ino, ZC_NO_FH, &st) : r;
	}
	reply_attr_result(req, c, r, &st);
}

void zc_op_readlink(struct zc_req *req)
{
	char buf[PATH_MAX + 1];
	struct zc_ctx ctx;
	struct zc_chan *c = op_begin(req, &ctx, 0);
	int r = -ENOSYS;

	if (c->backend->ops.readlink)
		r = c->backend->ops.readlink(&ctx, req->hdr->nodeid, buf, sizeof(buf));
	if (r < 0)
		reply_failure(req, r);
	else if ((size_t)r >= sizeof(buf))
		zc_reply_err(req, -ENAMETOOLONG);
	else
		zc_reply_buf(req, buf, (size_t)r);
}

void zc_op_mknod(struct zc_req *req)
{
	const struct fuse_mknod_in *in = &req->args.in.mknod;
	struct zc_entry ze;
	struct zc_ctx ctx;
	struct zc_chan *c = op_begin(req, &ctx, in->umask);
	int r = -ENOSYS;

	note_create_group(req);
	if (c->backend->ops.mknod)
		r = c->backend->ops.mknod(&ctx, req->hdr->nodeid, req->args.name, in->mode,
					  in->rdev, &ze);
	reply_entry_result(req, c, r, &ze);
}

void zc_op_mkdir(struct zc_req *req)
{
	const struct fuse_mkdir_in *in = &req->args.in.mkdir;
	struct zc_entry ze;
	struct zc_ctx ctx;
	struct zc_chan *c = op_begin(req, &ctx, in->umask);
	int r = -ENOSYS;

	note_create_group(req);
	if (c->backend->ops.mkdir)
		r = c->backend->ops.mkdir(&ctx, req->hdr->nodeid, req->args.name, in->mode, &ze);
	reply_entry_result(req, c, r, &ze);
}

/* SYMLINK: the new entry's name first, then the link's target. */
void zc_op_symlink(struct zc_req *req)
{
	struct zc_entry ze;
	struct zc_ctx ctx;
	struct zc_chan *c = op_begin(req, &ctx, 0);
	int r = -ENOSYS;

	note_create_group(req);
	if (c->backend->ops.symlink)
		r = c->backend->ops.symlink(&ctx, req->args.name2, req->hdr->nodeid, req->args.name,
					    &ze);
	reply_entry_result(req, c, r, &ze);
}

void zc_op_link(struct zc_req *req)
{
	struct zc_entry ze;
	struct zc_ctx ctx;
	struct zc_chan *c = op_begin(req, &ctx, 0);
	int r = -ENOSYS;

	if (c->backend->ops.link)
		r = c->backend->ops.link(&ctx, req->args.in.link.oldnodeid, req->hdr->nodeid,
					 req->args.name, &ze);
	reply_entry_result(req, c, r, &ze);
}

/* UNLINK, RMDIR and REMOVEXATTR: a name of the node goes, and a status comes back. */
void zc_op_remove_name(struct zc_req *req)
{
	struct zc_ctx ctx;
	struct zc_chan *c = op_begin(req, &ctx, 0);
	const struct zc_backend_ops *ops = &c->backend->ops;
	int (*remove)(const struct zc_ctx *ctx, zc_ino_t ino, const char *name) = ops->unlink;
	int r = -ENOSYS;

	if (req->opcode == FUSE_RMDIR) {
		remove = ops->rmdir;
	} else if (req->opcode == FUSE_REMOVEXATTR) {
		remove = ops->removexattr;
		r = -ENOTSUP;
	}
	if (remove)
		r = remove(&ctx, req->hdr->nodeid, req->args.name);
	reply_status(req, r);
}

/* RENAME and RENAME2 (fuse_rename_in is where fuse_rename2_in begins). */
void zc_op_rename(struct zc_req *req)
{
	const struct fuse_rename2_in *in = &req->args.in.rename2;
	unsigned int flags = req->opcode == FUSE_RENAME2 ? in->flags : 0;
	struct zc_ctx ctx;
	struct zc_chan *c = op_begin(req, &ctx, 0);
	int r = -ENOSYS;

	if (c->backend->ops.rename)
		r = c->backend->ops.rename(&ctx, req->hdr->nodeid, req->args.name, in->newdir,
					   req->args.name2, flags);
	reply_status(req, r);
}

void zc_op_open(struct zc_req *req)
{
	const struct fuse_open_in *in = &req->args.in.open;
	uint64_t ino = req->hdr->nodeid;
	struct fuse_open_out out;
	struct zc_file zf;
	struct zc_ctx ctx;
	struct zc_chan *c = op_begin(req, &ctx, 0);
	int32_t id;
	int r = -ENOSYS;

	file_init(c, (int)in->flags, &zf);
	if (c->backend->ops.open)
		r = c->backend->ops.open(&ctx, ino, &zf);
	if (r < 0) {
		reply_failure(req, r);
		return;
	}
	if (in->open_flags & FUSE_OPEN_KILL_SUIDGID)
		zc_kill_suid_sgid(c, &ctx, ino, zf.fh);
	r = passthrough_open(c, ino, &zf, false, &id);
	if (r < 0) {
		open_undo(c, &ctx, ino, &zf, false, false);
		reply_failure(req, r);
		return;
	}
	open_out(c, &zf, (int)in->flags, id, &out);
	/* The caller went away: the kernel will not release this open. */
	if (zc_reply_open(req, &out) == -ENOENT)
		open_undo(c, &ctx, ino, &zf, true, false);
}

void zc_op_create(struct zc_req *req)
{
	const struct fuse_create_in *in = &req->args.in.create;
	struct fuse_entry_out e;
	struct fuse_open_out o;
	struct zc_entry ze;
	struct zc_file zf;
	struct zc_ctx ctx;
	struct zc_chan *c = op_begin(req, &ctx, in->umask);
	int32_t id;
	int r = -ENOSYS;

	note_create_group(req);
	file_init(c, (int)in->flags, &zf);
	if (c->backend->ops.create)
		r = c->backend->ops.create(&ctx, req->hdr->nodeid, req->args.name, in->mode, &zf,
					   &ze);
	if (r < 0) {
		reply_failure(req, r);
		return;
	}
	if (in->open_flags & FUSE_OPEN_KILL_SUIDGID)
		zc_kill_suid_sgid(c, &ctx, ze.ino, zf.fh);
	r = passthrough_open(c, ze.ino, &zf, true, &id);
	if (r < 0) {
		open_undo(c, &ctx, ze.ino, &zf, false, true);
		reply_failure(req, r);
		return;
	}
	open_out(c, &zf, (int)in->flags, id, &o);
	entry_out(c, &ze, &e);
	if (zc_reply_create(req, &e, &o) == -ENOENT)
		open_undo(c, &ctx, ze.ino, &zf, true, true);
}

/*
 * O_TMPFILE: an unnamed file in the request's node, opened; the reply is a
 * CREATE's (entry, then open).
 */
void zc_op_tmpfile(struct zc_req *req)
{
	const struct fuse_create_in *in = &req->args.in.create;
	int flags = (int)in->flags & ~(O_TMPFILE | O_CREAT | O_EXCL);
	struct fuse_entry_out e;
	struct fuse_open_out o;
	struct zc_entry ze;
	struct zc_file zf;
	struct zc_ctx ctx;
	struct zc_chan *c = op_begin(req, &ctx, in->umask);
	int32_t id;
	int r = -ENOSYS;

	note_create_group(req);
	file_init(c, flags, &zf);
	if (c->backend->ops.tmpfile)
		r = c->backend->ops.tmpfile(&ctx, req->hdr->nodeid, in->mode, &zf, &ze);
	if (r < 0) {
		reply_failure(req, r);
		return;
	}
	/*
	 * The kernel's O_TMPFILE open does not take a passthrough open: a
	 * later open of the linked file then fails with EIO. The data of this
	 * open takes the pipe path (counted as no_backing), and so do opens
	 * of the same inode while it lasts (mode_conflict).
	 */
	zf.backing_fd = -1;
	r = passthrough_open(c, ze.ino, &zf, true, &id);
	if (r < 0) {
		open_undo(c, &ctx, ze.ino, &zf, false, true);
		reply_failure(req, r);
		return;
	}
	open_out(c, &zf, flags, id, &o);
	entry_out(c, &ze, &e);
	if (zc_reply_create(req, &e, &o) == -ENOENT)
		open_undo(c, &ctx, ze.ino, &zf, true, true);
}

void zc_op_read(struct zc_req *req)
{
	const struct fuse_read_in *ri = &req->args.in.read;
	struct zc_extent ext[ZC_MAX_EXTENTS];
	uint64_t ino = req->hdr->nodeid, fh = ri->fh;
	off_t off = (off_t)ri->offset;
	size_t size = ri->size;
	struct zc_ctx ctx;
	/* Before the reply, which may be built where the request lies. */
	struct zc_chan *c = op_begin(req, &ctx, 0);
	int n_ext = -ENOSYS;

	/* More than the reply can hold: the kernel asked beyond max_pages. */
	if (size > req->reply_room) {
		zc_reply_err(req, -EINVAL);
		return;
	}
	zc_data_read_begin(req, fh);
	if (c->backend->ops.read)
		n_ext = c->backend->ops.read(&ctx, ino, fh, off, size, ext, ZC_MAX_EXTENTS);
	if (n_ext >= 0 && zc_contract_extents(c, "read", ext, n_ext, size, true) < 0) {
		if (c->backend->ops.read_done)
			c->backend->ops.read_done(&ctx, ino, fh, ext, (unsigned int)n_ext);
		n_ext = -EIO;
	}
	if (n_ext < 0) {
		zc_data_read_end(req);
		zc_reply_err(req, n_ext);
		return;
	}
	zc_data_reply_read(req, ext, n_ext, size);
	/*
	 * Only now: memory the reply was vmspliced from is referenced by the
	 * pipe until the reply is sent. A release() of fh waits for this.
	 */
	if (c->backend->ops.read_done)
		c->backend->ops.read_done(&ctx, ino, fh, ext, (unsigned int)n_ext);
	zc_data_read_end(req);
}

/* WRITE: its data stays in the request's iterator, for the data path to move. */
void zc_op_write(struct zc_req *req)
{
	struct zc_chan *c = req->chan;
	const struct fuse_write_in *wi = &req->args.in.write;
	struct zc_extent ext[ZC_MAX_EXTENTS];
	uint64_t ino = req->hdr->nodeid, fh = wi->fh;
	off_t off = (off_t)wi->offset;
	size_t size = wi->size;
	struct zc_ctx ctx;
	ssize_t moved;
	int n_ext = -ENOSYS;

	if (size != req->src->count) {
		zc_iter_discard(req->src, &c->stats);
		zc_data_served(&c->policy, FUSE_WRITE, 0);
		zc_reply_err(req, -EINVAL);
		return;
	}
	op_begin(req, &ctx, 0);
	/* The one place setuid and setgid are cleared after a write. */
	if (wi->write_flags & FUSE_WRITE_KILL_SUIDGID)
		zc_kill_suid_sgid(c, &ctx, ino, fh);
	if (c->backend->ops.write)
		n_ext = c->backend->ops.write(&ctx, ino, fh, off, size, ext, ZC_MAX_EXTENTS);
	if (n_ext >= 0 && zc_contract_extents(c, "write", ext, n_ext, size, false) < 0)
		n_ext = -EIO;
	if (n_ext < 0) {
		zc_iter_discard(req->src, &c->stats);
		moved = n_ext;
	} else {
		moved = zc_data_write(req, ext, n_ext);
	}
	if (c->backend->ops.write_done)
		moved = c->backend->ops.write_done(&ctx, ino, fh, off, moved);
	/* Before the reply: the writer's next WRITE may follow at once. */
	zc_data_served(&c->policy, FUSE_WRITE, size);
	if (moved < 0)
		zc_reply_err(req, (int)moved);
	else
		zc_reply_write(req, (uint32_t)moved);
}

void zc_op_flush(struct zc_req *req)
{
	struct zc_ctx ctx;
	struct zc_chan *c = op_begin(req, &ctx, 0);
	int r = 0;

	if (c->backend->ops.flush)
		r = c->backend->ops.flush(&ctx, req->hdr->nodeid, req->args.in.flush.fh);
	/*
	 * A close of a file in passthrough that someone has open for
	 * writing: a shared mapping may have changed its times on the
	 * backing file, which the kernel does not see. Its attributes go
	 * before close() returns, so that a stat after it asks.
	 */
	if (c->opts->passthrough && zc_backing_written_behind(c, req->hdr->nodeid))
		zc_notify_attr_changed(c, req->hdr->nodeid);
	reply_status(req, r);
}

void zc_op_release(struct zc_req *req)
{
	uint64_t ino = req->hdr->nodeid, fh = req->args.in.release.fh;
	struct zc_ctx ctx;
	struct zc_chan *c = op_begin(req, &ctx, 0);

	zc_data_wait_reads(c, fh);
	/* The same for a mapping that outlived its descriptor's close(). */
	if (c->opts->passthrough &&
	    zc_backing_release(c, ino, open_writes((int)req->args.in.release.flags)))
		zc_notify_attr_changed(c, ino);
	if (c->backend->ops.release)
		c->backend->ops.release(&ctx, ino, fh);
	zc_reply_err(req, 0);
}

/* FSYNC and FSYNCDIR. */
void zc_op_fsync(struct zc_req *req)
{
	const struct fuse_fsync_in *in = &req->args.in.fsync;
	struct zc_ctx ctx;
	struct zc_chan *c = op_begin(req, &ctx, 0);
	int (*sync)(const struct zc_ctx *ctx, zc_ino_t ino, uint64_t fh, int datasync) =
	    req->opcode == FUSE_FSYNCDIR ? c->backend->ops.fsyncdir : c->backend->ops.fsync;
	int r = -ENOSYS;

	if (sync)
		r = sync(&ctx, req->hdr->nodeid, in->fh, in->fsync_flags & 1);
	reply_status(req, r);
}

void zc_op_opendir(struct zc_req *req)
{
	uint64_t ino = req->hdr->nodeid;
	struct fuse_open_out out;
	struct zc_file zf = { .flags = (int)req->args.in.open.flags, .backing_fd = -1 };
	struct zc_ctx ctx;
	struct zc_chan *c = op_begin(req, &ctx, 0);
	int r = -ENOSYS;

	if (c->backend->ops.opendir)
		r = c->backend->ops.opendir(&ctx, ino, &zf);
	if (r < 0) {
		reply_failure(req, r);
		return;
	}
	memset(&out, 0, sizeof(out));
	out.fh = zf.fh;
	if (c->opts->cache == ZC_CACHE_ALWAYS)
		out.open_flags |= FOPEN_CACHE_DIR | FOPEN_KEEP_CACHE;
	if (zc_reply_open(req, &out) == -ENOENT && c->backend->ops.releasedir)
		c->backend->ops.releasedir(&ctx, ino, zf.fh);
}

struct dir_fill {
	struct zc_chan *c;
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
	struct fuse_entry_out e;
	struct zc_entry ze;
	size_t len;
	int r;

	if (!df->plus) {
		len = zc_proto_add_dirent(df->buf + df->used, room, name, st->st_ino, st->st_mode,
					  off_next);
		if (len > room)
			return 1;
		df->used += len;
		return 0;
	}
	memset(&e, 0, sizeof(e));
	if (is_dot_or_dotdot(name)) {
		/* No lookup: the kernel takes no entry for these. */
		e.attr.ino = st->st_ino;
		e.attr.mode = st->st_mode;
	} else {
		r = df->c->backend->ops.lookup(df->ctx, df->dir, name, &ze);
		if (r == -ENOENT)
			return 0; /* removed since the directory was read */
		if (r < 0)
			return r;
		entry_out(df->c, &ze, &e);
	}
	len = zc_proto_add_direntplus(df->buf + df->used, room, name, &e, st->st_mode, off_next);
	if (len > room) {
		/* Not sent: the kernel never learns of this lookup. */
		if (e.nodeid && df->c->backend->ops.forget)
			df->c->backend->ops.forget(df->ctx, e.nodeid, 1);
		return 1;
	}
	df->used += len;
	return 0;
}

/* READDIR and READDIRPLUS. */
void zc_op_readdir(struct zc_req *req)
{
	const struct fuse_read_in *in = &req->args.in.read;
	bool plus = req->opcode == FUSE_READDIRPLUS;
	struct dir_fill df = { .dir = req->hdr->nodeid, .plus = plus, .size = in->size };
	struct zc_ctx ctx;
	struct zc_chan *c = op_begin(req, &ctx, 0);
	int r;

	if (!c->backend->ops.readdir || (plus && !c->backend->ops.lookup)) {
		zc_reply_err(req, -ENOSYS);
		return;
	}
	/* The kernel asks for at most max_pages pages, what the transport takes. */
	if (df.size > c->bufsize)
		df.size = c->bufsize;
	df.c = c;
	df.ctx = &ctx;
	df.buf = malloc(df.size ? df.size : 1);
	if (!df.buf) {
		zc_reply_err(req, -ENOMEM);
		return;
	}
	r = c->backend->ops.readdir(&ctx, df.dir, in->fh, (off_t)in->offset, dir_fill, &df);
	/* Entries already taken count even when a later one failed. */
	if (r < 0 && df.used == 0)
		zc_reply_err(req, r);
	else
		zc_reply_buf(req, df.buf, df.used);
	free(df.buf);
}

void zc_op_releasedir(struct zc_req *req)
{
	struct zc_ctx ctx;
	struct zc_chan *c = op_begin(req, &ctx, 0);

	if (c->backend->ops.releasedir)
		c->backend->ops.releasedir(&ctx, req->hdr->nodeid, req->args.in.release.fh);
	zc_reply_err(req, 0);
}

void zc_op_statfs(struct zc_req *req)
{
	struct statvfs st;
	struct zc_ctx ctx;
	struct zc_chan *c = op_begin(req, &ctx, 0);
	int r = -ENOSYS;

	if (c->backend->ops.statfs)
		r = c->backend->ops.statfs(&ctx, req->hdr->nodeid, &st);
	if (r < 0)
		reply_failure(req, r);
	else
		zc_reply_statfs(req, &st);
}

void zc_op_access(struct zc_req *req)
{
	struct zc_ctx ctx;
	struct zc_chan *c = op_begin(req, &ctx, 0);
	int r = -ENOSYS;

	if (c->backend->ops.access)
		r = c->backend->ops.access(&ctx, req->hdr->nodeid, (int)req->args.in.access.mask);
	reply_status(req, r);
}

void zc_op_setxattr(struct zc_req *req)
{
	const struct zc_args *a = &req->args;
	struct zc_ctx ctx;
	struct zc_chan *c = op_begin(req, &ctx, 0);
	int r = -ENOTSUP;

	/* The value is the rest of the request, as long as the struct says. */
	if (a->in.setxattr.size > a->data_len) {
		zc_reply_err(req, -EINVAL);
		return;
	}
	if (c->backend->ops.setxattr)
		r = c->backend->ops.setxattr(&ctx, req->hdr->nodeid, a->name, a->data,
					     a->in.setxattr.size, (int)a->in.setxattr.flags);
	reply_status(req, r);
}

/* Reply to getxattr/listxattr: the size alone when asked, else the data. */
static void reply_xattr_result(struct zc_req *req, int r, const char *buf, size_t size)
{
	if (r < 0)
		reply_failure(req, r);
	else if (size == 0)
		zc_reply_xattr_size(req, (uint32_t)r);
	else if ((size_t)r > size)
		zc_reply_err(req, -ERANGE);
	else
		zc_reply_buf(req, buf, (size_t)r);
}

/*
 * The kernel asks for at most XATTR_SIZE_MAX (XATTR_LIST_MAX) bytes, the
 * most a value (name list) can hold: a larger @size buys nothing.
 */
static size_t xattr_buf_size(size_t size)
{
	return size > XATTR_SIZE_MAX ? XATTR_SIZE_MAX : size;
}

/* GETXATTR and LISTXATTR (both carry fuse_getxattr_in). */
void zc_op_getxattr(struct zc_req *req)
{
	bool list = req->opcode == FUSE_LISTXATTR;
	uint64_t ino = req->hdr->nodeid;
	size_t size = xattr_buf_size(req->args.in.getxattr.size);
	char *buf = NULL;
	struct zc_ctx ctx;
	struct zc_chan *c = op_begin(req, &ctx, 0);
	int r = -ENOTSUP;

	if (size && !(buf = malloc(size))) {
		zc_reply_err(req, -ENOMEM);
		return;
	}
	if (list) {
		if (c->backend->ops.listxattr)
			r = c->backend->ops.listxattr(&ctx, ino, buf, size);
	} else if (ino == ZC_ROOT_INO && !strcmp(req->args.name, ZC_STATS_XATTR)) {
		r = zc_stats_format(&c->stats, buf, size);
	} else if (c->backend->ops.getxattr) {
		r = c->backend->ops.getxattr(&ctx, ino, req->args.name, buf, size);
	}
	reply_xattr_result(req, r, buf, size);
	free(buf);
}

void zc_op_fallocate(struct zc_req *req)
{
	const struct fuse_fallocate_in *in = &req->args.in.fallocate;
	struct zc_ctx ctx;
	struct zc_chan *c = op_begin(req, &ctx, 0);
	int r = -EOPNOTSUPP;

	if (c->backend->ops.fallocate)
		r = c->backend->ops.fallocate(&ctx, req->hdr->nodeid, in->fh, (int)in->mode,
					      (off_t)in->offset, (off_t)in->length);
	/*
	 * The store may have cleared setuid and setgid, which the kernel
	 * keeps: it drops only size and times after a FALLOCATE, so a stat
	 * that asks for the mode alone would see the old one. Before the
	 * reply, so that the caller's next stat already asks.
	 */
	if (r == 0)
		zc_notify_attr_changed(c, req->hdr->nodeid);
	reply_status(req, r);
}

/* COPY_FILE_RANGE and COPY_FILE_RANGE_64 (7.45), which counts in 64 bits. */
void zc_op_copy_file_range(struct zc_req *req)
{
	const struct fuse_copy_file_range_in *in = &req->args.in.copy_file_range;
	struct zc_ctx ctx;
	struct zc_chan *c = op_begin(req, &ctx, 0);
	ssize_t r = -ENOSYS;

	if (c->backend->ops.copy_file_range)
		r = c->backend->ops.copy_file_range(&ctx, req->hdr->nodeid, in->fh_in,
						    (off_t)in->off_in, in->nodeid_out, in->fh_out,
						    (off_t)in->off_out, in->len, (int)in->flags);
	if (r < 0) {
		zc_reply_err(req, (int)r);
		return;
	}
	/* The copy may have cleared setuid and setgid, which the kernel keeps. */
	if (r > 0)
		zc_notify_attr_changed(c, in->nodeid_out);
	zc_reply_copy_range(req, (uint64_t)r);
}

void zc_op_lseek(struct zc_req *req)
{
	const struct fuse_lseek_in *in = &req->args.in.lseek;
	struct zc_ctx ctx;
	struct zc_chan *c = op_begin(req, &ctx, 0);
	off_t r = -ENOSYS;

	if (c->backend->ops.lseek)
		r = c->backend->ops.lseek(&ctx, req->hdr->nodeid, in->fh, (off_t)in->offset,
					  (int)in->whence);
	if (r < 0)
		zc_reply_err(req, (int)r);
	else
		zc_reply_lseek(req, (uint64_t)r);
}

/* A blocking flock() that waits on a thread of its own (zc_waiter.c). */
struct flock_wait {
	struct zc_chan *c;
	struct zc_ctx ctx;
	zc_ino_t ino;
	uint64_t fh;
	int op;
};

/*
 * Wait for the lock unless the request was interrupted. Should the lock be
 * granted even so (the signal came as it was), the reply says it is held:
 * the caller, or the release of its file, unlocks it. The reply goes out
 * by the kept request's route.
 */
static void flock_wait(struct zc_waiter *wt, void *arg, struct zc_req *kept)
{
	struct flock_wait *fw = arg;
	int r = -EINTR;

	fw->ctx.priv = kept;
	if (zc_waiter_arm(wt))
		r = fw->c->backend->ops.flock(&fw->ctx, fw->ino, fw->fh, fw->op);
	zc_waiter_disarm(wt);
	zc_reply_err(kept, r > 0 ? 0 : r);
	free(fw);
}

/*
 * SETLK and SETLKW of a BSD lock (FUSE_LK_FLOCK); POSIX (fcntl) locks are
 * left to the kernel, which keeps them per mount with the right owners (a
 * daemon holding them on the backing file would merge every caller into
 * one owner). A lock that must wait (SETLKW, and not granted when tried
 * without waiting) waits on a thread of its own, so that it holds no
 * thread or ring entry other requests need; beyond the waiters' bounds it
 * is refused with ENOLCK. Trying first costs an uncontended lock no thread.
 */
void zc_op_setlk(struct zc_req *req)
{
	const struct fuse_lk_in *in = &req->args.in.lk;
	uint64_t ino = req->hdr->nodeid;
	struct flock_wait *fw;
	struct zc_ctx ctx;
	struct zc_chan *c = op_begin(req, &ctx, 0);
	int op, r = -ENOSYS;

	if (!(in->lk_flags & FUSE_LK_FLOCK) || !c->backend->ops.flock)
		goto out;
	switch (in->lk.type) {
	case F_RDLCK:
		op = LOCK_SH;
		break;
	case F_WRLCK:
		op = LOCK_EX;
		break;
	case F_UNLCK:
		op = LOCK_UN;
		break;
	default:
		r = -EINVAL;
		goto out;
	}
	if (req->opcode != FUSE_SETLKW)
		op |= LOCK_NB;
	if ((op & LOCK_NB) || op == LOCK_UN) {
		r = c->backend->ops.flock(&ctx, ino, in->fh, op);
		goto out;
	}
	r = c->backend->ops.flock(&ctx, ino, in->fh, op | LOCK_NB);
	if (r != -EWOULDBLOCK)
		goto out;
	fw = calloc(1, sizeof(*fw));
	if (!fw) {
		r = -ENOLCK;
		goto out;
	}
	fw->c = c;
	fw->ctx = ctx;
	fw->ino = ino;
	fw->fh = in->fh;
	fw->op = op;
	r = zc_waiter_start(req, ctx.uid, flock_wait, fw);
	if (r == 0)
		return;
	free(fw);
	/* No threads of the transport's own (tests): wait here. */
	if (r == -EOPNOTSUPP)
		r = c->backend->ops.flock(&ctx, ino, in->fh, op);
out:
	reply_status(req, r);
}

void zc_op_interrupt(struct zc_req *req)
{
	zc_waiter_interrupt(req->chan, req->args.in.interrupt.unique);
}

void zc_op_destroy(struct zc_req *req)
{
	struct zc_chan *c = req->chan;

	if (!__atomic_exchange_n(&c->conn.destroyed, true, __ATOMIC_ACQ_REL) &&
	    c->backend->ops.destroy)
		c->backend->ops.destroy(c->backend->userdata);
	zc_reply_err(req, 0);
}
