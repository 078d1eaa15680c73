/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* INIT: the one negotiation, for both transports, kernel passthrough and the ring. */
#include <errno.h>
#include <linux/fuse.h>
#include <string.h>

#include "fuse_kernel_ext.h"
#include "zc_backend.h"
#include "zc_backing.h"
#include "zc_chan.h"
#include "zc_ctx.h"
#include "zc_init.h"
#include "zc_notice.h"
#include "zc_opts.h"
#include "zc_proto.h"
#include "zc_req.h"
#include "zc_util.h"

/* Without FUSE_MAX_PAGES the kernel sends at most 32 pages per request. */
#define ZC_INIT_DEFAULT_MAX_PAGES 32

int zc_init_negotiate(struct zc_conn *conn, const struct zc_init_want *want,
		      const struct fuse_init_in *in, struct zc_fuse_init_out *out)
{
	uint32_t offered = 0, offered2 = 0, flags = FUSE_BIG_WRITES, granted2, max_write;

	memset(out, 0, sizeof(*out));
	out->major = FUSE_KERNEL_VERSION;
	out->minor = ZC_FUSE_KERNEL_MINOR;
	if (in->major < 7)
		return -EPROTO;
	/* A newer major: the reply names 7, and the kernel sends INIT again. */
	if (in->major > 7)
		return 1;
	memset(conn, 0, sizeof(*conn));
	conn->kernel_minor = in->minor;
	conn->minor = in->minor < ZC_FUSE_KERNEL_MINOR ? in->minor : ZC_FUSE_KERNEL_MINOR;
	if (in->minor >= 6) {
		offered = in->flags;
		if (offered & FUSE_INIT_EXT)
			offered2 = in->flags2;
		conn->max_readahead = in->max_readahead;
	}
	conn->kernel_flags = offered;
	conn->kernel_flags2 = offered2;

#define ZC_WANT(cond, bit)                                                                         \
	do {                                                                                       \
		if ((cond) && (offered & (bit)))                                                   \
			flags |= (bit);                                                            \
	} while (0)
	ZC_WANT(true, FUSE_ASYNC_READ);
	ZC_WANT(true, FUSE_PARALLEL_DIROPS);
	ZC_WANT(true, FUSE_AUTO_INVAL_DATA);
	ZC_WANT(true, FUSE_ASYNC_DIO);
	ZC_WANT(true, FUSE_ATOMIC_O_TRUNC);
	/*
	 * The server clears setuid, setgid and capabilities on write,
	 * truncate and chown (zc_kill_suid_sgid()), so the kernel need not
	 * ask for security.capability before every write. The older
	 * FUSE_HANDLE_KILLPRIV is not asked for: the kernel then clears the
	 * bits on a non-owner's write itself.
	 */
	ZC_WANT(true, FUSE_HANDLE_KILLPRIV_V2);
	ZC_WANT(want->flock, FUSE_FLOCK_LOCKS);
	ZC_WANT(want->readdirplus, FUSE_DO_READDIRPLUS);
	ZC_WANT(want->readdirplus, FUSE_READDIRPLUS_AUTO);
	ZC_WANT(want->writeback, FUSE_WRITEBACK_CACHE);
	ZC_WANT(want->dont_mask, FUSE_DONT_MASK);
	ZC_WANT(want->posix_acl, FUSE_POSIX_ACL);
#undef ZC_WANT

	max_write = want->max_write;
	if (offered & FUSE_MAX_PAGES) {
		flags |= FUSE_MAX_PAGES;
		out->max_pages = (uint16_t)((max_write - 1) / ZC_PAGE + 1);
	} else if (max_write > ZC_INIT_DEFAULT_MAX_PAGES * ZC_PAGE) {
		max_write = ZC_INIT_DEFAULT_MAX_PAGES * ZC_PAGE;
	}

	/* flags2: what is wanted and offered, in a reply long enough to carry it. */
	granted2 = want->flags2 & offered2;
	if (zc_proto_init_out_size(conn->minor) < sizeof(*out))
		granted2 = 0;
	/* The kernel takes passthrough only without writeback caching. */
	if ((granted2 & ZC_FUSE_PASSTHROUGH) && (flags & FUSE_WRITEBACK_CACHE))
		granted2 &= ~ZC_FUSE_PASSTHROUGH;
	/* The rings are sized for this reply's limits; without them, no ring. */
	if ((granted2 & ZC_FUSE_OVER_IO_URING) && want->ring_check)
		granted2 &= ~want->ring_check(want->ring_data, max_write, out->max_pages);
	if (offered & FUSE_INIT_EXT) {
		flags |= FUSE_INIT_EXT;
		out->flags2 = granted2;
	} else {
		granted2 = 0;
	}
	if (granted2 & ZC_FUSE_PASSTHROUGH)
		out->max_stack_depth = ZC_PASSTHROUGH_STACK_DEPTH;
	if (granted2 & ZC_FUSE_REQUEST_TIMEOUT)
		out->request_timeout = want->request_timeout;

	out->flags = flags;
	out->max_readahead = conn->max_readahead;
	out->max_write = max_write;
	out->time_gran = 1;
	conn->flags = flags;
	conn->flags2 = granted2;
	conn->max_write = max_write;
	conn->max_pages = out->max_pages;
	conn->writeback = flags & FUSE_WRITEBACK_CACHE;
	conn->posix_acl = flags & FUSE_POSIX_ACL;
	return 0;
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
static void set_writeback_ratio(struct zc_chan *c)
{
	const struct zc_opts *o = c->opts;
	int r = c->mount_dev ? zc_bdi_set_max_ratio(c->mount_dev, o->writeback_ratio) : -ENOENT;

	if (r < 0 && o->writeback_ratio_set)
		zc_notify(c->notifier,
			  "cannot set writeback_ratio=%u on this mount: %s; it keeps the "
			  "kernel's share",
			  o->writeback_ratio, strerror(-r));
}

static uint32_t ring_check(void *data, uint32_t max_write, uint32_t max_pages)
{
	struct zc_chan *c = data;

	return c->ring_init_reply(c, max_write, max_pages);
}

/* What the mount's options and the backend ask of the kernel at INIT. */
static void init_want(struct zc_chan *c, const struct fuse_init_in *in, struct zc_init_want *want)
{
	const struct zc_opts *o = c->opts;
	const struct zc_backend *b = c->backend;
	uint32_t offered2 = in->minor >= 6 && (in->flags & FUSE_INIT_EXT) ? in->flags2 : 0;

	memset(want, 0, sizeof(*want));
	want->max_write = (uint32_t)c->max_write;
	want->flags2 = c->want_flags2;
	if (c->ring_init_reply) {
		want->ring_check = ring_check;
		want->ring_data = c;
	}
	/*
	 * The kernel takes passthrough only without writeback caching.
	 * Passthrough wins: the backing files' own page cache then caches
	 * their writes, and the daemon is off the data path.
	 */
	if (o->writeback && zc_backing_offered(c, offered2))
		zc_notify(c->notifier,
			  "writeback caching is off for this mount: kernel passthrough serves "
			  "its open files through their own page cache, and the kernel allows "
			  "the two only apart (-o nopassthrough for writeback caching)");
	else
		want->writeback = o->writeback;
	/* Create modes with the caller's umask beside them, for a backend that applies it. */
	want->dont_mask = b->features & ZC_FEATURE_DONT_MASK;
	/*
	 * POSIX ACLs in the kernel's permission checks. The kernel then
	 * checks permissions itself in any case, so only with
	 * default_permissions; without it the backend checks, ACLs included.
	 */
	want->posix_acl = (b->features & ZC_FEATURE_POSIX_ACL) && zc_opts_default_permissions(o);
	/* Without a flock operation the kernel keeps BSD locks itself. */
	want->flock = b->ops.flock != NULL;
	/* Names change behind the kernel's back only with cache=never. */
	want->readdirplus = o->cache != ZC_CACHE_NEVER;
	if (o->request_timeout) {
		want->flags2 |= ZC_FUSE_REQUEST_TIMEOUT;
		want->request_timeout = (uint16_t)o->request_timeout;
	}
}

void zc_init_serve(struct zc_req *req)
{
	struct zc_chan *c = req->chan;
	const struct zc_backend *b = c->backend;
	const struct fuse_init_in *in = &req->args.in.init;
	struct zc_fuse_init_out out;
	struct zc_init_want want;
	struct zc_conn conn;
	struct zc_ctx ctx;
	int r;

	init_want(c, in, &want);
	r = zc_init_negotiate(&conn, &want, in, &out);
	if (r < 0) {
		zc_reply_err(req, r);
		return;
	}
	if (r > 0) {
		req->minor = ZC_FUSE_KERNEL_MINOR;
		zc_reply_init(req, &out);
		return;
	}
	req->minor = conn.minor;
	conn.init_done = true;
	c->conn = conn;
	if (conn.writeback)
		set_writeback_ratio(c);
	if ((c->want_flags2 & ZC_FUSE_PASSTHROUGH) && !(conn.flags2 & ZC_FUSE_PASSTHROUGH))
		zc_backing_refuse(c, conn.writeback ? ZC_BACKING_REFUSED_WRITEBACK
						    : ZC_BACKING_REFUSED_KERNEL);
	zc_backing_negotiated(c);
	if (c->opts->request_timeout && !(conn.flags2 & ZC_FUSE_REQUEST_TIMEOUT))
		zc_notify(c->notifier,
			  "request_timeout: the kernel does not offer it (Linux 6.14 or later "
			  "ends requests that wait too long); requests wait for the daemon "
			  "however long");
	if (b->ops.init) {
		zc_ctx_from_req(&ctx, req, 0);
		r = b->ops.init(&ctx);
		/*
		 * The backend refuses the mount: the kernel then fails every
		 * request on it (ECONNREFUSED), and the loop ends with that
		 * reason for the session to report.
		 */
		if (r < 0) {
			c->init_error = r;
			zc_reply_err(req, r);
			zc_chan_stop(c, r);
			return;
		}
	}
	r = zc_reply_init(req, &out);
	if (c->ring_init_sent)
		c->ring_init_sent(c, r == 0);
}
