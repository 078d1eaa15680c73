/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Replies leave by the route of the request they answer. */
#include <errno.h>
#include <linux/fuse.h>
#include <stdlib.h>
#include <string.h>

#include "zc_req.h"

/* What -d prints of a reply: the header at the front of it. */
static void note_reply(struct zc_req *req, const struct iovec *iov, int count)
{
	struct fuse_out_header out;

	if (count < 1 || iov[0].iov_len < sizeof(out))
		return;
	memcpy(&out, iov[0].iov_base, sizeof(out));
	req->replied = true;
	req->reply_error = out.error;
	req->reply_len = out.len;
}

ssize_t zc_req_send(struct zc_req *req, const struct iovec *iov, int count)
{
	note_reply(req, iov, count);
	return req->route->send(req, iov, count);
}

ssize_t zc_req_send_pipe(struct zc_req *req, size_t len)
{
	req->replied = true;
	req->reply_error = 0;
	req->reply_len = (uint32_t)len;
	return req->route->send_pipe(req, len);
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
	kept->reply_room = 0;
	kept->next_read = NULL;
	kept->args.name = kept->args.name2 = NULL;
	kept->args.data = kept->args.ext = NULL;
	kept->args.data_len = kept->args.ext_len = 0;
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
