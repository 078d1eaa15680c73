/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Whether the running kernel serves FUSE over io_uring, with or without liburing. */
#include <errno.h>

#include "zc_uring.h"
#include "zc_util.h"

const char *zc_uring_kernel_refusal(void)
{
	char val[8];
	ssize_t r;

	r = zc_read_small_file(ZC_URING_PARAM, val, sizeof(val));
	if (r == -ENOENT)
		return "this kernel has no FUSE over io_uring (no " ZC_URING_PARAM
		       "; it needs Linux 6.14 or later built with CONFIG_FUSE_IO_URING)";
	if (r < 0)
		return "cannot read " ZC_URING_PARAM;
	if (val[0] != 'Y' && val[0] != 'y' && val[0] != '1')
		return "the kernel has it switched off: " ZC_URING_PARAM
		       " is N (as root: echo Y > " ZC_URING_PARAM ")";
	return NULL;
}
