/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The public structs keep their size and layout: a change here breaks the ABI. */
#include <stddef.h>

#include "zc_test.h"
#include "zcfuse/zcfuse.h"

int main(void)
{
#if defined(__x86_64__) || defined(__aarch64__)
	CHECK_EQ(sizeof(struct zc_ctx), 32);
	CHECK_EQ(offsetof(struct zc_ctx, priv), 24);
	CHECK_EQ(sizeof(struct zc_entry), 16 + sizeof(struct stat));
	CHECK_EQ(sizeof(struct zc_file), 24);
	CHECK_EQ(offsetof(struct zc_file, fh), 8);
	CHECK_EQ(offsetof(struct zc_file, backing_fd), 16);
	CHECK_EQ(sizeof(struct zc_extent), 32);
	CHECK_EQ(offsetof(struct zc_extent, offset), 8);
	CHECK_EQ(offsetof(struct zc_extent, length), 24);
	/* Operations are only ever appended. */
	CHECK_EQ(sizeof(struct zc_backend_ops), 37 * sizeof(void *));
	CHECK_EQ(offsetof(struct zc_backend_ops, lookup), 2 * sizeof(void *));
	CHECK_EQ(offsetof(struct zc_backend_ops, read), 16 * sizeof(void *));
	CHECK_EQ(offsetof(struct zc_backend_ops, flock), 36 * sizeof(void *));
	CHECK_EQ(ZC_MAX_EXTENTS, 16);
	CHECK_EQ(ZCFUSE_VERSION,
		 ZCFUSE_VERSION_MAJOR * 10000 + ZCFUSE_VERSION_MINOR * 100 + ZCFUSE_VERSION_MICRO);
	CHECK(!strcmp(zc_version(), ZCFUSE_VERSION_STRING));
	return 0;
#else
	return ZC_TEST_SKIP;
#endif
}
