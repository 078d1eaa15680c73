/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The io_uring transport of a library built without liburing: never used. */
#include <errno.h>
#include <stdio.h>

#include "zc_uring.h"

int zc_uring_setup(struct zc_chan *c, const struct zc_uring_conf *conf, char *why, size_t why_size)
{
	const char *reason = zc_uring_kernel_refusal();

	snprintf(why, why_size, "%s", reason ? reason : "zcfuse was built without liburing");
	return -EOPNOTSUPP;
}

void zc_uring_stop(struct zc_chan *c)
{
}

void zc_uring_fini(struct zc_chan *c)
{
}

const char *zc_uring_refusal(const struct zc_chan *c)
{
	return NULL;
}
