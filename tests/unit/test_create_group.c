/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * zc_proto_create_group(): the parent's group a create carries at the end
 * of its arguments (FUSE_CREATE_SUPP_GROUP), as zc_proto_decode() finds
 * the extensions, is found where the kernel puts it, beside other
 * extensions, and extensions that do not fit are refused without a read
 * outside the request.
 */
#include <errno.h>
#include <linux/fuse.h>
#include <stdint.h>
#include <string.h>

#include "fuse_kernel_ext.h"
#include "zc_proto.h"
#include "zc_test.h"

/*
 * A MKDIR's arguments, "name", then @ext of @extlen bytes (unaligned, as
 * the kernel lays them out); the header says @units of extensions.
 */
static int parse(const void *ext, size_t extlen, unsigned int units, uint32_t *ret_gid)
{
	static uint64_t buf[64];
	struct fuse_in_header hdr = { .opcode = FUSE_MKDIR, .total_extlen = (uint16_t)units };
	struct fuse_mkdir_in in = { .mode = 0755, .umask = 022 };
	const struct zc_layout layout = { .size = sizeof(in), .names = 1 };
	char *p = (char *)buf;
	struct zc_args args;
	size_t len = 0;
	int r;

	memcpy(p, &in, sizeof(in));
	len += sizeof(in);
	memcpy(p + len, "name", 5);
	len += 5;
	if (extlen)
		memcpy(p + len, ext, extlen);
	len += extlen;
	r = zc_proto_decode(hdr.opcode, &layout, 45, hdr.total_extlen, p, len, &args);
	if (r < 0)
		return r;
	if (strcmp(args.name, "name"))
		return -EBADMSG;
	return zc_proto_create_group(args.ext, args.ext_len, ret_gid);
}

/* One FUSE_EXT_GROUPS extension of @nr groups (the gids 1000, 1001, ...) in @out. */
static size_t groups_ext(uint32_t *out, uint32_t nr, uint32_t type)
{
	uint32_t i, words = 3 + nr;

	words += words % 2; /* a multiple of 8 bytes */
	memset(out, 0, words * 4);
	out[0] = words * 4;
	out[1] = type;
	out[2] = nr;
	for (i = 0; i < nr; i++)
		out[3 + i] = 1000 + i;
	return words * 4;
}

int main(void)
{
	uint32_t ext[32], gid;
	size_t n;

	/* No extension: the caller is not in the parent's group (beyond its gid). */
	CHECK_EQ(parse(NULL, 0, 0, &gid), 0);

	/* The kernel's one group. */
	n = groups_ext(ext, 1, ZC_FUSE_EXT_GROUPS);
	CHECK_EQ(n, 16);
	CHECK_EQ(parse(ext, n, 2, &gid), 1);
	CHECK_EQ(gid, 1000);

	/* After a security context (a type up to 31), which is skipped. */
	{
		uint32_t two[32] = { 16, 1, 0, 0 };

		n = groups_ext(two + 4, 1, ZC_FUSE_EXT_GROUPS);
		CHECK_EQ(parse(two, 16 + n, (unsigned int)(16 + n) / 8, &gid), 1);
		CHECK_EQ(gid, 1000);
		/* Only an unknown extension: no group. */
		CHECK_EQ(parse(two, 16, 2, &gid), 0);
	}

	/* More extension units than the request holds. */
	n = groups_ext(ext, 1, ZC_FUSE_EXT_GROUPS);
	CHECK_EQ(parse(ext, n, 400, &gid), -EINVAL);
	CHECK_EQ(parse(ext, n, 0xffff, &gid), -EINVAL);

	/* An extension whose size runs past the end, is 0, or is not aligned. */
	ext[0] = 4096;
	CHECK_EQ(parse(ext, n, 2, &gid), -EINVAL);
	ext[0] = 0;
	CHECK_EQ(parse(ext, n, 2, &gid), -EINVAL);
	ext[0] = 12;
	CHECK_EQ(parse(ext, n, 2, &gid), -EINVAL);

	/* A count beyond the extension, none, or more than the kernel sends. */
	n = groups_ext(ext, 1, ZC_FUSE_EXT_GROUPS);
	ext[2] = 0x40000000;
	CHECK_EQ(parse(ext, n, 2, &gid), -EINVAL);
	n = groups_ext(ext, 0, ZC_FUSE_EXT_GROUPS);
	CHECK_EQ(parse(ext, n, (unsigned int)n / 8, &gid), -EINVAL);
	n = groups_ext(ext, 2, ZC_FUSE_EXT_GROUPS);
	CHECK_EQ(parse(ext, n, (unsigned int)n / 8, &gid), -EINVAL);

	/* A header alone, of another type: no group. */
	{
		uint32_t half[2] = { 8, 0 };

		CHECK_EQ(parse(half, 8, 1, &gid), 0);
	}
	return 0;
}
