/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The public structs keep their size and layout: a change here breaks the ABI. */
#include <stddef.h>

#include "zc_test.h"
#include "zcfuse/zcfuse.h"

int main(void)
{
#if defined(__x86_64__) || defined(__aarch64__)
	CHECK_EQ(sizeof(struct zc_ctx), 32);
	CHECK_EQ(offsetof(struct zc_ctx, userdata), 0);
	CHECK_EQ(offsetof(struct zc_ctx, uid), 8);
	CHECK_EQ(offsetof(struct zc_ctx, gid), 12);
	CHECK_EQ(offsetof(struct zc_ctx, pid), 16);
	CHECK_EQ(offsetof(struct zc_ctx, umask), 20);
	CHECK_EQ(offsetof(struct zc_ctx, priv), 24);
	CHECK_EQ(sizeof(struct zc_entry), 16 + sizeof(struct stat));
	CHECK_EQ(offsetof(struct zc_entry, generation), 8);
	CHECK_EQ(offsetof(struct zc_entry, attr), 16);
	CHECK_EQ(sizeof(off_t), 8);
	CHECK_EQ(sizeof(struct zc_file), 24);
	CHECK_EQ(offsetof(struct zc_file, flags), 0);
	CHECK_EQ(offsetof(struct zc_file, open_flags_out), 4);
	CHECK_EQ(offsetof(struct zc_file, fh), 8);
	CHECK_EQ(offsetof(struct zc_file, backing_fd), 16);
	CHECK_EQ(offsetof(struct zc_file, open_flags_in), 20);
	CHECK_EQ(sizeof(struct zc_extent), 32);
	CHECK_EQ(offsetof(struct zc_extent, fd), 0);
	CHECK_EQ(offsetof(struct zc_extent, reserved), 4);
	CHECK_EQ(offsetof(struct zc_extent, offset), 8);
	CHECK_EQ(offsetof(struct zc_extent, mem), 16);
	CHECK_EQ(offsetof(struct zc_extent, length), 24);
	/* Operations are only ever appended. */
	CHECK_EQ(sizeof(struct zc_backend_ops), 38 * sizeof(void *));
	CHECK_EQ(offsetof(struct zc_backend_ops, init), 0);
	CHECK_EQ(offsetof(struct zc_backend_ops, destroy), 1 * sizeof(void *));
	CHECK_EQ(offsetof(struct zc_backend_ops, lookup), 2 * sizeof(void *));
	CHECK_EQ(offsetof(struct zc_backend_ops, create), 15 * sizeof(void *));
	CHECK_EQ(offsetof(struct zc_backend_ops, read), 16 * sizeof(void *));
	CHECK_EQ(offsetof(struct zc_backend_ops, read_done), 17 * sizeof(void *));
	CHECK_EQ(offsetof(struct zc_backend_ops, write), 18 * sizeof(void *));
	CHECK_EQ(offsetof(struct zc_backend_ops, write_done), 19 * sizeof(void *));
	CHECK_EQ(offsetof(struct zc_backend_ops, fsync), 22 * sizeof(void *));
	CHECK_EQ(offsetof(struct zc_backend_ops, readdir), 24 * sizeof(void *));
	CHECK_EQ(offsetof(struct zc_backend_ops, statfs), 27 * sizeof(void *));
	CHECK_EQ(offsetof(struct zc_backend_ops, fallocate), 33 * sizeof(void *));
	CHECK_EQ(offsetof(struct zc_backend_ops, flock), 36 * sizeof(void *));
	CHECK_EQ(offsetof(struct zc_backend_ops, tmpfile), 37 * sizeof(void *));
	/* Fields are only ever appended; zc_parse_cmdline() takes the caller's size. */
	CHECK_EQ(ZC_CMDLINE_ARGS_MAX, 4);
	CHECK_EQ(sizeof(struct zc_cmdline), 320);
	CHECK_EQ(offsetof(struct zc_cmdline, args), 0);
	CHECK_EQ(offsetof(struct zc_cmdline, opts), 32);
	CHECK_EQ(offsetof(struct zc_cmdline, n_opts), 40);
	CHECK_EQ(offsetof(struct zc_cmdline, foreground), 44);
	CHECK_EQ(offsetof(struct zc_cmdline, debug), 48);
	CHECK_EQ(offsetof(struct zc_cmdline, single_threaded), 52);
	CHECK_EQ(offsetof(struct zc_cmdline, show_help), 56);
	CHECK_EQ(offsetof(struct zc_cmdline, show_version), 60);
	CHECK_EQ(offsetof(struct zc_cmdline, error), 64);
	CHECK_EQ(ZC_MAX_EXTENTS, 16);
	CHECK_EQ(ZC_ROOT_INO, 1);
	CHECK_EQ(ZC_NO_FH, UINT64_MAX);
	/* The setattr bits are the kernel protocol's FATTR_* values. */
	CHECK_EQ(ZC_SET_ATTR_MODE, 1 << 0);
	CHECK_EQ(ZC_SET_ATTR_SIZE, 1 << 3);
	CHECK_EQ(ZC_SET_ATTR_MTIME_NOW, 1 << 8);
	CHECK_EQ(ZC_SET_ATTR_CTIME, 1 << 10);
	CHECK_EQ(ZCFUSE_VERSION,
		 ZCFUSE_VERSION_MAJOR * 10000 + ZCFUSE_VERSION_MINOR * 100 + ZCFUSE_VERSION_MICRO);
	CHECK(!strcmp(zc_version(), ZCFUSE_VERSION_STRING));
	return 0;
#else
	return ZC_TEST_SKIP;
#endif
}
