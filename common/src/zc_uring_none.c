/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The io_uring transport of a library built without liburing: never used. */
#include <errno.h>
#include <stdio.h>

#include "fuse_kernel_ext.h"
#include "zc_uring.h"

int zc_uring_setup(struct zc_chan *c, const struct zc_uring_conf *conf, char *why, size_t why_size)
{
	const char *reason = zc_uring_kernel_refusal();

	snprintf(why, why_size, "%s", reason ? reason : "zcfuse was built without liburing");
	return -EOPNOTSUPP;
}

uint32_t zc_uring_init_reply(struct zc_chan *c)
{
	return ZC_FUSE_OVER_IO_URING;
}

void zc_uring_init_sent(struct zc_chan *c, bool sent)
{
}

bool zc_uring_reply(struct zc_chan *c, const struct iovec *iov, int count, ssize_t *ret)
{
	return false;
}

void zc_uring_stop(struct zc_chan *c)
{
}

int zc_uring_keep(void **ret_ent)
{
	*ret_ent = NULL;
	return 0;
}

void zc_uring_unkeep(void *ent)
{
}

void zc_uring_adopt(void *ent)
{
}

void zc_uring_give_back(void *ent)
{
}

void zc_uring_fini(struct zc_chan *c)
{
}

const char *zc_uring_refusal(const struct zc_chan *c)
{
	return NULL;
}
