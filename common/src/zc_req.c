/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Replies leave by the route of the request they answer. */
#include <errno.h>
#include <linux/fuse.h>
#include <stdlib.h>

#include "zc_req.h"

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
