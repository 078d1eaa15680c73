/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libfuse's side of a request: the request it serves on this thread, its
 * custom I/O, through which the replies it builds leave by the request's
 * route, and the open replies both it and dispatch (TMPFILE) give.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <sys/uio.h>
#include <unistd.h>

#include "fuse_kernel_ext.h"
#include "zc_backing.h"
#include "zc_iter.h"
#include "zc_lowlevel.h"
#include "zc_negotiate.h"
#include "zc_req.h"
#include "zcfuse_i.h"

/*
 * The request handed to libfuse on this thread. libfuse 3.14 passes its
 * callbacks and its custom I/O no pointer of ours, so this is how they
 * find the request; where its reply goes is still the request's route.
 */
static __thread struct zc_req *zc_tls_serving;

struct zc_req *zc_lowlevel_current(void)
{
	return zc_tls_serving;
}

void zc_lowlevel_serve(struct zc_req *req, const struct fuse_buf *fbuf)
{
	zc_tls_serving = req;
	fuse_session_process_buf(req->chan->s->se, fbuf);
	zc_tls_serving = NULL;
}

void zc_lowlevel_set_current(struct zc_req *req)
{
	zc_tls_serving = req;
}

/*
 * The request @ctx was made for is the one this thread serves: same
 * session, same caller (a backend calls this from its operation).
 */
ZC_EXPORT int zc_ctx_create_group(const struct zc_ctx *ctx, gid_t *ret_gid)
{
	const struct zc_req *req = zc_tls_serving;

	*ret_gid = (gid_t)-1;
	if (!req || !req->hdr || ctx->priv != req->chan->s || ctx->pid != (pid_t)req->hdr->pid ||
	    ctx->uid != req->hdr->uid || ctx->gid != req->hdr->gid || req->create_group < 0)
		return -ENODATA;
	if (req->create_group)
		*ret_gid = req->create_gid;
	return req->create_group;
}

/*
 * Open flags as the backend sees them. With writeback caching the kernel
 * reads to fill partial pages and handles O_APPEND itself, so the backing
 * file must be readable and must not append on its own. O_DIRECT is served
 * by bypassing the mount's page cache (direct_io below); the backing file
 * is opened without it so that the data path needs no buffer alignment.
 */
int zc_backend_open_flags(const struct zc_session *s, int flags)
{
	if (s->writeback_on) {
		/* A backend that does not read open_flags_in gets it readable. */
		if ((flags & O_ACCMODE) == O_WRONLY && !(s->features & ZC_FEATURE_OPEN_FLAGS_IN))
			flags = (flags & ~O_ACCMODE) | O_RDWR;
		flags &= ~O_APPEND;
	}
	return flags & ~(O_DIRECT | ZC_KERNEL_FMODE_EXEC);
}

uint32_t zc_backend_open_flags_in(const struct zc_session *s, int flags)
{
	uint32_t in = 0;

	if (flags & ZC_KERNEL_FMODE_EXEC)
		in |= ZC_OPEN_IN_EXEC;
	if (s->writeback_on)
		in |= ZC_OPEN_IN_CACHE_READS;
	return in;
}

void zc_file_info_out(const struct zc_session *s, const struct zc_file *zf, int app_flags,
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
 * passthrough=auto with cache=auto: a read-only open is served from the
 * mount's own page cache, which keeps a file's pages across opens while the
 * file is unchanged (its times and size, checked at every open, so a write
 * passed through is seen). Opens for writing, and every open with the other
 * cache modes or direct_io, are passed through: cache=always would keep
 * pages that a write passed through had made stale. Asked-for passthrough
 * passes every open.
 */
static bool prefers_page_cache(const struct zc_session *s, const struct zc_file *zf)
{
	return s->opts.passthrough_choice == ZC_PASSTHROUGH_AUTO &&
	       s->opts.cache == ZC_CACHE_AUTO && !s->opts.direct_io &&
	       (zf->flags & O_ACCMODE) == O_RDONLY && !(zf->flags & (O_DIRECT | O_TRUNC)) &&
	       !(zf->open_flags_out & ZC_FOPEN_DIRECT_IO);
}

/*
 * Kernel passthrough for an open about to be answered: the backing id goes
 * into the reply. 0 when the open takes the pipe path, or a negative errno.
 */
int zc_passthrough_open(struct zc_session *s, struct zc_req *zreq, zc_ino_t ino,
			const struct zc_file *zf)
{
	int32_t id;

	if (!s->opts.passthrough)
		return 0;
	id = zc_backing_open(&s->chan, ino, zf->backing_fd, prefers_page_cache(s, zf));
	if (id > 0)
		zreq->backing_id = id;
	return id < 0 ? id : 0;
}

/*
 * A reply libfuse built: INIT's and OPEN's amended for what libfuse 3.14
 * does not know, then sent by the route of the request it answers.
 * Notifications (unique 0) go to the session's /dev/fuse descriptor @fd.
 */
static ssize_t lowlevel_io_writev(int fd, struct iovec *iov, int count, void *userdata)
{
	struct zc_session *s = userdata;
	struct zc_chan *c = &s->chan;
	struct zc_req *req = zc_tls_serving;
	const struct fuse_out_header *out = iov[0].iov_base;
	bool init;
	ssize_t n;

	init = zc_negotiate_init_reply(c, iov, count);
	if (req && count >= 1 && iov[0].iov_len >= sizeof(*out) && out->unique == req->unique) {
		if (req->backing_id > 0) {
			zc_backing_amend_reply(iov, count, req->backing_id);
			req->backing_id = 0;
		}
		n = zc_req_send(req, iov, count);
	} else {
		n = zc_send_msg(fd, iov, count, &c->stats);
	}
	if (init)
		zc_negotiate_init_sent(c, n >= 0);
	if (n < 0) {
		errno = (int)-n;
		return -1;
	}
	return n;
}

static ssize_t lowlevel_io_read(int fd, void *buf, size_t len, void *userdata)
{
	(void)userdata;
	return read(fd, buf, len);
}

static const struct fuse_custom_io lowlevel_io = {
	.writev = lowlevel_io_writev,
	.read = lowlevel_io_read,
};

int zc_lowlevel_attach(struct zc_session *s, int dev_fd)
{
	s->chan.dev_fd = dev_fd;
	return fuse_session_custom_io(s->se, &lowlevel_io, dev_fd) ? -EIO : 0;
}
