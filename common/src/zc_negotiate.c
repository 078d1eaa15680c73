/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* INIT negotiation beyond libfuse 3.14: flags set in the reply libfuse built. */
#include <linux/fuse.h>
#include <stddef.h>
#include <string.h>
#include <sys/uio.h>

#include "fuse_kernel_ext.h"
#include "zc_backing.h"
#include "zc_chan.h"
#include "zc_negotiate.h"

void zc_negotiate_init_request(struct zc_chan *c, const struct fuse_in_header *hdr, const void *arg,
			       size_t len)
{
	const struct fuse_init_in *in = arg;

	if (len < offsetof(struct fuse_init_in, flags) + 4)
		return;
	c->kernel_minor = in->minor;
	c->kernel_flags = in->flags;
	c->kernel_flags2 = 0;
	if ((in->flags & FUSE_INIT_EXT) && len >= offsetof(struct fuse_init_in, flags2) + 4)
		c->kernel_flags2 = in->flags2;
	c->init_unique = hdr->unique;
}

/*
 * Flags of the INIT reply that libfuse 3.14 does not know: the transport
 * sets them, when the kernel offered them, in the reply libfuse built.
 * FUSE_HANDLE_KILLPRIV_V2: the server clears setuid, setgid and
 * capabilities on write, truncate and chown, so the kernel need not ask for
 * security.capability before every write.
 * flags2 (FUSE_INIT_EXT): the bits in want_flags2 that the kernel offered;
 * kernel passthrough only without writeback caching, which the kernel
 * would otherwise switch it off for silently.
 */
bool zc_negotiate_init_reply(struct zc_chan *c, struct iovec *iov, int count)
{
	struct fuse_out_header *out = iov[0].iov_base;
	struct fuse_init_out *init;
	uint32_t granted;

	if (!c->init_unique || count < 2 || iov[0].iov_len < sizeof(*out) ||
	    out->unique != c->init_unique)
		return false;
	c->init_unique = 0;
	if (out->error || iov[1].iov_len < offsetof(struct fuse_init_out, flags) + 4)
		return true;
	init = iov[1].iov_base;
	c->init_max_write = init->max_write;
	c->init_max_pages = 0;
	if ((init->flags & FUSE_MAX_PAGES) &&
	    iov[1].iov_len >= offsetof(struct fuse_init_out, map_alignment))
		c->init_max_pages = init->max_pages;
	if (c->kernel_flags & FUSE_HANDLE_KILLPRIV_V2) {
		init->flags |= FUSE_HANDLE_KILLPRIV_V2;
		c->killpriv_v2 = true;
	}
	granted = c->want_flags2 & c->kernel_flags2;
	if ((granted & ZC_FUSE_PASSTHROUGH) && (init->flags & FUSE_WRITEBACK_CACHE)) {
		granted &= ~ZC_FUSE_PASSTHROUGH;
		zc_backing_refuse(c, ZC_BACKING_REFUSED_WRITEBACK);
	}
	if (iov[1].iov_len < ZC_INIT_OUT_MAX_STACK_DEPTH + 4)
		granted = 0;
	/* The rings are sized for this reply's limits; without them, no ring. */
	if ((granted & ZC_FUSE_OVER_IO_URING) && c->ring_init_reply)
		granted &= ~c->ring_init_reply(c);
	if (granted & ZC_FUSE_NO_EXPORT_SUPPORT)
		init->flags &= ~FUSE_EXPORT_SUPPORT;
	if (granted) {
		char *raw = iov[1].iov_base;
		uint32_t flags2;

		init->flags |= FUSE_INIT_EXT;
		memcpy(&flags2, raw + ZC_INIT_OUT_FLAGS2, sizeof(flags2));
		flags2 |= granted;
		memcpy(raw + ZC_INIT_OUT_FLAGS2, &flags2, sizeof(flags2));
		if (granted & ZC_FUSE_PASSTHROUGH) {
			uint32_t depth = ZC_PASSTHROUGH_STACK_DEPTH;

			memcpy(raw + ZC_INIT_OUT_MAX_STACK_DEPTH, &depth, sizeof(depth));
		}
	}
	c->flags2 = granted;
	if ((c->want_flags2 & ZC_FUSE_PASSTHROUGH) && !(granted & ZC_FUSE_PASSTHROUGH))
		zc_backing_refuse(c, ZC_BACKING_REFUSED_KERNEL);
	zc_backing_negotiated(c);
	return true;
}

void zc_negotiate_init_sent(struct zc_chan *c, bool sent)
{
	if (c->ring_init_sent)
		c->ring_init_sent(c, sent);
}
