/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Dispatch: every request a transport received, served by the backend.
 * READ and WRITE go through the data path (zc_data.c), TMPFILE is served
 * here like a CREATE, and everything else is parsed by libfuse, whose
 * callbacks (zc_lowlevel.c) call the backend and whose replies leave by the
 * request's route.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "fuse_kernel_ext.h"
#include "zc_backing.h"
#include "zc_ctx.h"
#include "zc_data.h"
#include "zc_dispatch.h"
#include "zc_iter.h"
#include "zc_lowlevel.h"
#include "zc_negotiate.h"
#include "zc_req.h"
#include "zcfuse_i.h"

static void dispatch_read(struct zc_req *req)
{
	struct zc_chan *c = req->chan;
	struct zc_session *s = c->s;
	struct zc_extent ext[ZC_MAX_EXTENTS];
	const struct fuse_read_in *ri;
	uint64_t ino = req->hdr->nodeid, fh;
	struct zc_ctx ctx;
	size_t size;
	off_t off;
	int n_ext = -ENOSYS;

	/* Before the reply, which may be built where the request lies. */
	zc_ctx_from_header(&ctx, s, req->hdr, 0);
	ri = zc_iter_pull(req->src, req->buf + sizeof(*req->hdr), sizeof(*ri), &c->stats);
	/* The reply is built in the same pipe: nothing of the request may stay. */
	zc_iter_discard(req->src, &c->stats);
	if (!ri) {
		zc_req_reply(req, -EINVAL, NULL, 0);
		return;
	}
	fh = ri->fh;
	off = (off_t)ri->offset;
	size = ri->size;
	if (size > c->bufsize - sizeof(struct fuse_out_header)) {
		zc_req_reply(req, -EINVAL, NULL, 0);
		return;
	}
	zc_data_read_begin(req, fh);
	if (s->ops.read)
		n_ext = s->ops.read(&ctx, ino, fh, off, size, ext, ZC_MAX_EXTENTS);
	if (n_ext >= 0 && zc_data_check_extents(ext, n_ext, size, true) < 0) {
		if (s->ops.read_done)
			s->ops.read_done(&ctx, ino, fh, ext, (unsigned int)n_ext);
		n_ext = -EIO;
	}
	if (n_ext < 0) {
		zc_data_read_end(req);
		zc_req_reply(req, n_ext, NULL, 0);
		return;
	}
	zc_data_reply_read(req, ext, n_ext, size);
	/*
	 * Only now: memory the reply was vmspliced from is referenced by the
	 * pipe until the reply is sent. A release() of fh waits for this.
	 */
	if (s->ops.read_done)
		s->ops.read_done(&ctx, ino, fh, ext, (unsigned int)n_ext);
	zc_data_read_end(req);
}

static void dispatch_write(struct zc_req *req)
{
	struct zc_chan *c = req->chan;
	struct zc_session *s = c->s;
	struct zc_extent ext[ZC_MAX_EXTENTS];
	const struct fuse_write_in *wi;
	struct fuse_write_out wo = { 0 };
	uint64_t ino = req->hdr->nodeid, fh;
	struct zc_ctx ctx;
	ssize_t moved;
	size_t size;
	off_t off;
	int n_ext = -ENOSYS;

	wi = zc_iter_pull(req->src, req->buf + sizeof(*req->hdr), sizeof(*wi), &c->stats);
	if (!wi || wi->size != req->src->count) {
		zc_iter_discard(req->src, &c->stats);
		zc_data_served(&c->policy, FUSE_WRITE, 0);
		zc_req_reply(req, -EINVAL, NULL, 0);
		return;
	}
	fh = wi->fh;
	off = (off_t)wi->offset;
	size = wi->size;
	zc_ctx_from_header(&ctx, s, req->hdr, 0);
	/* The one place setuid and setgid are cleared after a write. */
	if (wi->write_flags & FUSE_WRITE_KILL_SUIDGID)
		zc_kill_suid_sgid(s, &ctx, ino, fh);
	if (s->ops.write)
		n_ext = s->ops.write(&ctx, ino, fh, off, size, ext, ZC_MAX_EXTENTS);
	if (n_ext >= 0 && zc_data_check_extents(ext, n_ext, size, false) < 0)
		n_ext = -EIO;
	if (n_ext < 0) {
		zc_iter_discard(req->src, &c->stats);
		moved = n_ext;
	} else {
		moved = zc_data_write(req, ext, n_ext);
	}
	if (s->ops.write_done)
		moved = s->ops.write_done(&ctx, ino, fh, off, moved);
	/* Before the reply: the writer's next WRITE may follow at once. */
	zc_data_served(&c->policy, FUSE_WRITE, size);
	if (moved < 0) {
		zc_req_reply(req, (int)moved, NULL, 0);
		return;
	}
	wo.size = (uint32_t)moved;
	zc_req_reply(req, 0, &wo, sizeof(wo));
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

/* A TMPFILE reply: what a CREATE replies. */
struct tmpfile_reply {
	struct fuse_entry_out entry;
	struct fuse_open_out open;
};

/*
 * FUSE_TMPFILE (7.37), which libfuse 3.14 does not know: an unnamed file
 * in the request's node, opened; the reply is a CREATE's (entry, then
 * open). @in is the request's fuse_create_in. Returns the reply's length
 * in @out or a negative errno.
 */
static ssize_t tmpfile_open(struct zc_session *s, struct zc_req *req,
			    const struct fuse_create_in *in, struct tmpfile_reply *out)
{
	const struct fuse_in_header *hdr = req->hdr;
	struct zc_ctx ctx;
	int flags = (int)in->flags & ~(O_TMPFILE | O_CREAT | O_EXCL);
	struct zc_file zf = {
		.flags = zc_backend_open_flags(s, flags),
		.backing_fd = -1,
		.open_flags_in = zc_backend_open_flags_in(s, flags),
	};
	struct fuse_file_info fi = { 0 };
	struct zc_entry ze;
	int r;

	zc_ctx_from_header(&ctx, s, hdr, in->umask);
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
	r = zc_passthrough_open(s, req, ze.ino, &zf);
	if (r < 0) {
		if (s->ops.release)
			s->ops.release(&ctx, ze.ino, zf.fh);
		if (s->ops.forget)
			s->ops.forget(&ctx, ze.ino, 1);
		return r;
	}
	zc_file_info_out(s, &zf, flags, &fi);
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
static void tmpfile_undo(struct zc_session *s, const struct tmpfile_reply *out)
{
	struct zc_ctx ctx = { .userdata = s->userdata, .priv = s };

	if (s->opts.passthrough)
		zc_backing_release(&s->chan, out->entry.nodeid);
	if (s->ops.release)
		s->ops.release(&ctx, out->entry.nodeid, out->open.fh);
	if (s->ops.forget)
		s->ops.forget(&ctx, out->entry.nodeid, 1);
}

/*
 * What a create request says of the parent's group, when the kernel was
 * asked to say it (FUSE_CREATE_SUPP_GROUP); unknown otherwise.
 */
static void peek_create_group(struct zc_req *req, const char *arg, size_t len)
{
	uint32_t gid;
	int r;

	if (!(req->chan->flags2 & ZC_FUSE_CREATE_SUPP_GROUP))
		return;
	r = zc_req_create_group(req->hdr, arg, len, &gid);
	if (r < 0)
		return;
	req->create_group = r;
	req->create_gid = gid;
}

/* O_TMPFILE, which libfuse 3.14 answers ENOSYS to: served here, like CREATE. */
static void dispatch_tmpfile(struct zc_req *req, size_t len)
{
	struct zc_chan *c = req->chan;
	size_t arglen = len - sizeof(*req->hdr);
	const struct fuse_create_in *in;
	struct tmpfile_reply out;
	ssize_t n;

	in = zc_iter_pull(req->src, req->buf + sizeof(*req->hdr), arglen, &c->stats);
	zc_iter_discard(req->src, &c->stats);
	if (!in || arglen < sizeof(*in)) {
		zc_req_reply(req, -EINVAL, NULL, 0);
		return;
	}
	peek_create_group(req, (const char *)in, arglen);
	zc_lowlevel_set_current(req);
	n = tmpfile_open(c->s, req, in, &out);
	zc_lowlevel_set_current(NULL);
	if (n < 0) {
		zc_req_reply(req, (int)n, NULL, 0);
		return;
	}
	if (zc_req_reply(req, 0, &out, (size_t)n) == -ENOENT)
		tmpfile_undo(c->s, &out);
}

/*
 * Requests libfuse 3.14 mishandles, checked before it sees them: a
 * BATCH_FORGET whose count runs past the message (libfuse reads the
 * entries unchecked), and a NOTIFY_REPLY, which answers a
 * FUSE_NOTIFY_RETRIEVE that zcfuse never sends (libfuse leaks the request
 * when nothing waits for it). Neither gets a reply. True to drop @hdr.
 */
static bool request_malformed(const struct fuse_in_header *hdr, const char *arg, size_t len)
{
	const struct fuse_batch_forget_in *bf = (const void *)arg;

	switch (hdr->opcode) {
	case FUSE_BATCH_FORGET:
		return len < sizeof(*bf) ||
		       bf->count > (len - sizeof(*bf)) / sizeof(struct fuse_forget_one);
	case FUSE_NOTIFY_REPLY:
		return true;
	}
	return false;
}

/*
 * What libfuse 3.14 does not pass on: the kernel's INIT flags, the
 * requests that ask the server to clear setuid and setgid, and the
 * parent's group that creates carry.
 */
static void peek_request(struct zc_req *req, const char *arg, size_t len)
{
	switch (req->opcode) {
	case FUSE_INIT:
		zc_negotiate_init_request(req->chan, req->hdr, arg, len);
		break;
	case FUSE_SETATTR:
		if (len >= sizeof(struct fuse_setattr_in))
			req->kill_suidgid =
			    ((const struct fuse_setattr_in *)arg)->valid & FATTR_KILL_SUIDGID;
		break;
	case FUSE_OPEN:
		if (len >= sizeof(struct fuse_open_in))
			req->kill_suidgid =
			    ((const struct fuse_open_in *)arg)->open_flags & FUSE_OPEN_KILL_SUIDGID;
		break;
	case FUSE_CREATE:
		if (len >= sizeof(struct fuse_create_in))
			req->kill_suidgid = ((const struct fuse_create_in *)arg)->open_flags &
					    FUSE_OPEN_KILL_SUIDGID;
		peek_create_group(req, arg, len);
		break;
	case FUSE_MKNOD:
	case FUSE_MKDIR:
	case FUSE_SYMLINK:
		peek_create_group(req, arg, len);
		break;
	}
}

/* Every other request: the whole of it in memory, parsed by libfuse. */
static void dispatch_lowlevel(struct zc_req *req, size_t len)
{
	struct zc_chan *c = req->chan;
	struct fuse_buf fbuf = { .mem = req->buf, .size = len };
	size_t arglen = len - sizeof(*req->hdr);
	char *arg;

	arg = zc_iter_pull(req->src, req->buf + sizeof(*req->hdr), arglen, &c->stats);
	if (!arg && arglen) {
		zc_req_reply(req, -EIO, NULL, 0);
		return;
	}
	if (request_malformed(req->hdr, arg, arglen))
		return;
	peek_request(req, arg, arglen);
	zc_lowlevel_serve(req, &fbuf);
}

void zc_dispatch(struct zc_req *req, size_t len)
{
	struct zc_chan *c = req->chan;
	const struct fuse_in_header *hdr;

	hdr = zc_iter_pull(req->src, req->buf, sizeof(*hdr), &c->stats);
	if (!hdr || hdr->len != (uint64_t)len) {
		zc_iter_discard(req->src, &c->stats);
		if (hdr) {
			req->unique = hdr->unique;
			zc_req_reply(req, -EIO, NULL, 0);
		}
		return;
	}
	req->hdr = hdr;
	req->unique = hdr->unique;
	req->opcode = hdr->opcode;
	req->create_group = -ENODATA;
	zc_stats_request(&c->stats, req->opcode);
	switch (req->opcode) {
	case FUSE_READ:
		dispatch_read(req);
		break;
	case FUSE_WRITE:
		dispatch_write(req);
		return; /* it told the data policy itself */
	case FUSE_TMPFILE:
		dispatch_tmpfile(req, len);
		break;
	default:
		dispatch_lowlevel(req, len);
		break;
	}
	zc_data_served(&c->policy, req->opcode, 0);
}
