/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Replies leave by the route of the request they answer. */
#include <errno.h>
#include <linux/fuse.h>
#include <stdlib.h>
#include <string.h>

#include "fuse_kernel_ext.h"
#include "zc_req.h"

int zc_req_create_group(const struct fuse_in_header *hdr, const void *arg, size_t len,
			uint32_t *ret_gid)
{
	size_t extlen = (size_t)hdr->total_extlen * 8, off;
	const char *ext;
	int found = 0;

	*ret_gid = 0;
	if (extlen > len)
		return -EINVAL;
	ext = (const char *)arg + len - extlen;
	/* Copied out: the extensions need not be aligned in memory. */
	for (off = 0; off < extlen;) {
		struct fuse_ext_header xh;
		struct zc_fuse_supp_groups sg;

		if (extlen - off < sizeof(xh))
			return -EINVAL;
		memcpy(&xh, ext + off, sizeof(xh));
		if (xh.size < sizeof(xh) || xh.size % 8 || xh.size > extlen - off)
			return -EINVAL;
		if (xh.type == ZC_FUSE_EXT_GROUPS) {
			if (found || xh.size < sizeof(xh) + sizeof(sg) + sizeof(uint32_t))
				return -EINVAL;
			memcpy(&sg, ext + off + sizeof(xh), sizeof(sg));
			if (sg.nr_groups != 1)
				return -EINVAL;
			memcpy(ret_gid, ext + off + sizeof(xh) + sizeof(sg), sizeof(*ret_gid));
			found = 1;
		}
		off += xh.size;
	}
	return found;
}

ssize_t zc_req_send(struct zc_req *req, const struct iovec *iov, int count)
{
	return req->route->send(req, iov, count);
}

int zc_req_reply(struct zc_req *req, int error, const void *arg, size_t arglen)
{
	struct fuse_out_header out = {
		.len = (uint32_t)(sizeof(out) + (error ? 0 : arglen)),
		.error = error,
		.unique = req->unique,
	};
	struct iovec iov[2] = { { &out, sizeof(out) }, { (void *)arg, error ? 0 : arglen } };
	ssize_t n;

	n = zc_req_send(req, iov, iov[1].iov_len ? 2 : 1);
	return n < 0 ? (int)n : 0;
}

int zc_req_keep(struct zc_req *req, struct zc_req **ret_kept)
{
	struct zc_req *kept;
	int r;

	*ret_kept = NULL;
	kept = malloc(sizeof(*kept));
	if (!kept)
		return -ENOMEM;
	if (req->route->keep) {
		r = req->route->keep(req);
		if (r < 0) {
			free(kept);
			return r;
		}
	}
	/* The copy outlives the buffers the request was received in. */
	*kept = *req;
	kept->hdr = NULL;
	kept->src = NULL;
	kept->buf = NULL;
	kept->reply_buf = NULL;
	kept->next_read = NULL;
	kept->kept = true;
	req->kept = true;
	*ret_kept = kept;
	return 0;
}

void zc_req_unkeep(struct zc_req *req, struct zc_req *kept)
{
	if (req->route->unkeep)
		req->route->unkeep(req);
	req->kept = false;
	free(kept);
}

void zc_req_release(struct zc_req *kept)
{
	if (kept->route->release)
		kept->route->release(kept);
	free(kept);
}
