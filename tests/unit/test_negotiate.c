/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * zc_init_negotiate() against hand-built INIT requests: the reply names
 * protocol 7.45, grants only what is both wanted and offered, one want to
 * one flag, sizes max_write and max_pages by what the kernel takes, keeps
 * passthrough and writeback caching apart, lets the ring check take bits
 * back, grants no flags2 to a kernel without FUSE_INIT_EXT or too old to
 * read them, and leaves the connection alone for a major it does not speak.
 */
#include <errno.h>
#include <linux/fuse.h>
#include <stdint.h>
#include <string.h>

#include "fuse_kernel_ext.h"
#include "zc_init.h"
#include "zc_proto.h"
#include "zc_test.h"

/* Every INIT flag from FUSE_ASYNC_READ up to FUSE_INIT_EXT. */
#define ALL_FLAGS ((uint32_t)(FUSE_INIT_EXT | (FUSE_INIT_EXT - 1)))

/* Every flags2 bit the library knows. */
#define ALL_FLAGS2                                                                                 \
	(ZC_FUSE_PASSTHROUGH | ZC_FUSE_OVER_IO_URING | ZC_FUSE_CREATE_SUPP_GROUP |                 \
	 ZC_FUSE_NO_EXPORT_SUPPORT | ZC_FUSE_DIRECT_IO_ALLOW_MMAP)

/* A flags2 bit the library never asks for (FUSE_HAS_INODE_DAX, 33). */
#define OTHER_FLAG2 ZC_INIT_FLAGS2(33)

#define MAX_WRITE   (1024 * 1024 - 4096)

/* The flags that follow a want. */
#define WANT_FLAGS                                                                                 \
	(FUSE_WRITEBACK_CACHE | FUSE_DONT_MASK | FUSE_POSIX_ACL | FUSE_FLOCK_LOCKS |               \
	 FUSE_DO_READDIRPLUS | FUSE_READDIRPLUS_AUTO)

static void kernel(struct fuse_init_in *in, uint32_t major, uint32_t minor, uint32_t flags,
		   uint32_t flags2)
{
	memset(in, 0, sizeof(*in));
	in->major = major;
	in->minor = minor;
	in->max_readahead = 0x20000 + minor;
	in->flags = flags;
	in->flags2 = flags2;
}

static void want_none(struct zc_init_want *w)
{
	memset(w, 0, sizeof(*w));
	w->max_write = MAX_WRITE;
}

/* The ring check's calls: how many, with what, and what it takes back. */
static int ring_calls;
static uint32_t ring_max_write, ring_max_pages, ring_takes;
static void *ring_data_seen;
static int ring_token;

static uint32_t ring_check(void *data, uint32_t max_write, uint32_t max_pages)
{
	ring_calls++;
	ring_data_seen = data;
	ring_max_write = max_write;
	ring_max_pages = max_pages;
	return ring_takes;
}

static void want_ring(struct zc_init_want *w, uint32_t takes)
{
	w->ring_check = ring_check;
	w->ring_data = &ring_token;
	ring_calls = 0;
	ring_max_write = ring_max_pages = 0;
	ring_data_seen = NULL;
	ring_takes = takes;
}

/* The reply and the connection agree on what was granted. */
static void check_agree(const struct zc_conn *c, const struct zc_fuse_init_out *out)
{
	CHECK_EQ(out->major, 7);
	CHECK_EQ(out->minor, ZC_FUSE_KERNEL_MINOR);
	CHECK_EQ(c->flags, out->flags);
	CHECK_EQ(c->flags2, out->flags2);
	CHECK_EQ(c->max_write, out->max_write);
	CHECK_EQ(c->max_pages, out->max_pages);
	CHECK_EQ(c->max_readahead, out->max_readahead);
	CHECK_EQ(!!c->writeback, !!(out->flags & FUSE_WRITEBACK_CACHE));
	CHECK_EQ(!!c->posix_acl, !!(out->flags & FUSE_POSIX_ACL));
	CHECK(!c->init_done);
	CHECK(!c->destroyed);
}

/* A 7.45 kernel offering everything, and nothing optional wanted. */
static void check_everything_offered(void)
{
	struct zc_fuse_init_out out;
	struct fuse_init_in in;
	struct zc_init_want w;
	struct zc_conn c;

	kernel(&in, 7, 45, ALL_FLAGS, ALL_FLAGS2 | OTHER_FLAG2);
	want_none(&w);
	CHECK_EQ(zc_init_negotiate(&c, &w, &in, &out), 0);
	check_agree(&c, &out);
	CHECK_EQ(c.minor, 45);
	CHECK_EQ(c.kernel_minor, 45);
	CHECK_EQ(c.kernel_flags, ALL_FLAGS);
	CHECK_EQ(c.kernel_flags2, ALL_FLAGS2 | OTHER_FLAG2);
	CHECK(out.flags & FUSE_BIG_WRITES);
	CHECK(out.flags & FUSE_MAX_PAGES);
	CHECK_EQ(out.max_pages, 255);
	CHECK_EQ(out.max_write, MAX_WRITE);
	CHECK(!(out.flags & FUSE_HANDLE_KILLPRIV));
	CHECK(out.flags & FUSE_HANDLE_KILLPRIV_V2);
	CHECK(out.flags & FUSE_INIT_EXT);
	CHECK(out.flags & FUSE_ASYNC_READ);
	CHECK(out.flags & FUSE_PARALLEL_DIROPS);
	CHECK(out.flags & FUSE_AUTO_INVAL_DATA);
	CHECK(out.flags & FUSE_ASYNC_DIO);
	CHECK(out.flags & FUSE_ATOMIC_O_TRUNC);
	CHECK_EQ(out.time_gran, 1);
	CHECK_EQ(out.max_readahead, 0x20000 + 45);
	/* Nothing wanted: none of the flags that follow a want, no flags2. */
	CHECK_EQ(out.flags & WANT_FLAGS, 0);
	CHECK_EQ(out.flags2, 0);
	CHECK_EQ(out.max_stack_depth, 0);
	CHECK(!c.writeback);
	CHECK(!c.posix_acl);
}

/* Each want and its flags, on and off, offered and not. */
static void check_want(size_t field, uint32_t flags)
{
	struct zc_fuse_init_out out;
	struct fuse_init_in in;
	struct zc_init_want w;
	struct zc_conn c;

	/* Wanted and offered: granted, and nothing else that follows a want. */
	kernel(&in, 7, 45, ALL_FLAGS, 0);
	want_none(&w);
	*(bool *)((char *)&w + field) = true;
	CHECK_EQ(zc_init_negotiate(&c, &w, &in, &out), 0);
	check_agree(&c, &out);
	CHECK_EQ(out.flags & WANT_FLAGS, flags);

	/* Not wanted: not granted. */
	want_none(&w);
	CHECK_EQ(zc_init_negotiate(&c, &w, &in, &out), 0);
	CHECK_EQ(out.flags & flags, 0);

	/* Wanted but not offered: not granted. */
	kernel(&in, 7, 45, ALL_FLAGS & ~flags, 0);
	want_none(&w);
	*(bool *)((char *)&w + field) = true;
	CHECK_EQ(zc_init_negotiate(&c, &w, &in, &out), 0);
	check_agree(&c, &out);
	CHECK_EQ(out.flags & WANT_FLAGS, 0);
}

static void check_wants(void)
{
	struct zc_fuse_init_out out;
	struct fuse_init_in in;
	struct zc_init_want w;
	struct zc_conn c;

	check_want(offsetof(struct zc_init_want, writeback), FUSE_WRITEBACK_CACHE);
	check_want(offsetof(struct zc_init_want, dont_mask), FUSE_DONT_MASK);
	check_want(offsetof(struct zc_init_want, posix_acl), FUSE_POSIX_ACL);
	check_want(offsetof(struct zc_init_want, flock), FUSE_FLOCK_LOCKS);
	check_want(offsetof(struct zc_init_want, readdirplus),
		   FUSE_DO_READDIRPLUS | FUSE_READDIRPLUS_AUTO);

	/* Everything wanted. */
	kernel(&in, 7, 45, ALL_FLAGS, 0);
	want_none(&w);
	w.writeback = w.dont_mask = w.posix_acl = w.flock = w.readdirplus = true;
	CHECK_EQ(zc_init_negotiate(&c, &w, &in, &out), 0);
	check_agree(&c, &out);
	CHECK_EQ(out.flags & WANT_FLAGS, WANT_FLAGS);
	CHECK(c.writeback);
	CHECK(c.posix_acl);

	/* Everything wanted of a kernel offering none of it, nor anything else. */
	kernel(&in, 7, 45, 0, 0);
	CHECK_EQ(zc_init_negotiate(&c, &w, &in, &out), 0);
	check_agree(&c, &out);
	CHECK_EQ(out.flags, FUSE_BIG_WRITES);
	CHECK(!c.writeback);
	CHECK(!c.posix_acl);
}

static void check_flags2(void)
{
	struct zc_fuse_init_out out;
	struct fuse_init_in in;
	struct zc_init_want w;
	struct zc_conn c;

	/* Only what is both wanted and offered. */
	kernel(&in, 7, 45, ALL_FLAGS,
	       ZC_FUSE_CREATE_SUPP_GROUP | ZC_FUSE_NO_EXPORT_SUPPORT | ZC_FUSE_PASSTHROUGH |
		   OTHER_FLAG2);
	want_none(&w);
	w.flags2 = ZC_FUSE_CREATE_SUPP_GROUP | ZC_FUSE_DIRECT_IO_ALLOW_MMAP | ZC_FUSE_PASSTHROUGH |
		   ZC_FUSE_OVER_IO_URING;
	want_ring(&w, 0);
	CHECK_EQ(zc_init_negotiate(&c, &w, &in, &out), 0);
	check_agree(&c, &out);
	CHECK_EQ(out.flags2, ZC_FUSE_CREATE_SUPP_GROUP | ZC_FUSE_PASSTHROUGH);
	CHECK_EQ(out.max_stack_depth, ZC_PASSTHROUGH_STACK_DEPTH);
	CHECK_EQ(out.max_stack_depth, 1);
	/* The ring was not offered: not asked about. */
	CHECK_EQ(ring_calls, 0);

	/* All wanted, all offered. */
	kernel(&in, 7, 45, ALL_FLAGS, ALL_FLAGS2 | OTHER_FLAG2);
	want_none(&w);
	w.flags2 = ALL_FLAGS2;
	CHECK_EQ(zc_init_negotiate(&c, &w, &in, &out), 0);
	check_agree(&c, &out);
	CHECK_EQ(out.flags2, ALL_FLAGS2);
	CHECK_EQ(out.max_stack_depth, 1);

	/* Passthrough not wanted: no stacking depth. */
	w.flags2 = ALL_FLAGS2 & ~ZC_FUSE_PASSTHROUGH;
	CHECK_EQ(zc_init_negotiate(&c, &w, &in, &out), 0);
	check_agree(&c, &out);
	CHECK_EQ(out.flags2, ALL_FLAGS2 & ~ZC_FUSE_PASSTHROUGH);
	CHECK_EQ(out.max_stack_depth, 0);

	/* Passthrough with writeback caching: passthrough gives way. */
	w.flags2 = ALL_FLAGS2;
	w.writeback = true;
	CHECK_EQ(zc_init_negotiate(&c, &w, &in, &out), 0);
	check_agree(&c, &out);
	CHECK_EQ(out.flags2, ALL_FLAGS2 & ~ZC_FUSE_PASSTHROUGH);
	CHECK(out.flags & FUSE_WRITEBACK_CACHE);
	CHECK(c.writeback);
	CHECK_EQ(out.max_stack_depth, 0);

	/* Writeback wanted but not offered: passthrough stays. */
	kernel(&in, 7, 45, ALL_FLAGS & ~FUSE_WRITEBACK_CACHE, ALL_FLAGS2);
	CHECK_EQ(zc_init_negotiate(&c, &w, &in, &out), 0);
	check_agree(&c, &out);
	CHECK_EQ(out.flags2, ALL_FLAGS2);
	CHECK(!(out.flags & FUSE_WRITEBACK_CACHE));
	CHECK(!c.writeback);
	CHECK_EQ(out.max_stack_depth, 1);
}

static void check_ring(void)
{
	struct zc_fuse_init_out out;
	struct fuse_init_in in;
	struct zc_init_want w;
	struct zc_conn c;

	/* Offered but not wanted: not asked about. */
	kernel(&in, 7, 45, ALL_FLAGS, ALL_FLAGS2);
	want_none(&w);
	w.flags2 = ZC_FUSE_PASSTHROUGH;
	want_ring(&w, 0);
	CHECK_EQ(zc_init_negotiate(&c, &w, &in, &out), 0);
	CHECK_EQ(ring_calls, 0);
	CHECK_EQ(out.flags2, ZC_FUSE_PASSTHROUGH);

	/* Granted: asked once with the reply's limits, and kept. */
	w.flags2 = ZC_FUSE_OVER_IO_URING | ZC_FUSE_PASSTHROUGH;
	want_ring(&w, 0);
	CHECK_EQ(zc_init_negotiate(&c, &w, &in, &out), 0);
	check_agree(&c, &out);
	CHECK_EQ(ring_calls, 1);
	CHECK(ring_data_seen == &ring_token);
	CHECK_EQ(ring_max_write, out.max_write);
	CHECK_EQ(ring_max_pages, out.max_pages);
	CHECK_EQ(ring_max_write, MAX_WRITE);
	CHECK_EQ(ring_max_pages, 255);
	CHECK_EQ(out.flags2, ZC_FUSE_OVER_IO_URING | ZC_FUSE_PASSTHROUGH);

	/* The ring taken back, from the reply and the connection. */
	want_ring(&w, ZC_FUSE_OVER_IO_URING);
	CHECK_EQ(zc_init_negotiate(&c, &w, &in, &out), 0);
	check_agree(&c, &out);
	CHECK_EQ(ring_calls, 1);
	CHECK_EQ(out.flags2, ZC_FUSE_PASSTHROUGH);
	CHECK_EQ(c.flags2, ZC_FUSE_PASSTHROUGH);
	CHECK_EQ(out.max_stack_depth, 1);

	/* Passthrough taken back too: no stacking depth. */
	want_ring(&w, ZC_FUSE_OVER_IO_URING | ZC_FUSE_PASSTHROUGH);
	CHECK_EQ(zc_init_negotiate(&c, &w, &in, &out), 0);
	check_agree(&c, &out);
	CHECK_EQ(ring_calls, 1);
	CHECK_EQ(out.flags2, 0);
	CHECK_EQ(out.max_stack_depth, 0);

	/* Without FUSE_MAX_PAGES: the capped limits. */
	kernel(&in, 7, 45, ALL_FLAGS & ~FUSE_MAX_PAGES, ALL_FLAGS2);
	want_ring(&w, 0);
	CHECK_EQ(zc_init_negotiate(&c, &w, &in, &out), 0);
	check_agree(&c, &out);
	CHECK_EQ(ring_calls, 1);
	CHECK_EQ(ring_max_write, 128 * 1024);
	CHECK_EQ(ring_max_pages, 0);

	/* Without FUSE_INIT_EXT: no flags2 to grant, not asked about. */
	kernel(&in, 7, 45, ALL_FLAGS & ~FUSE_INIT_EXT, ALL_FLAGS2);
	want_ring(&w, 0);
	CHECK_EQ(zc_init_negotiate(&c, &w, &in, &out), 0);
	CHECK_EQ(ring_calls, 0);
}

/* Kernels that take less. */
static void check_older_kernels(void)
{
	struct zc_fuse_init_out out;
	struct fuse_init_in in;
	struct zc_init_want w;
	struct zc_conn c;

	/* Without FUSE_INIT_EXT: flags2 neither read nor granted. */
	kernel(&in, 7, 45, ALL_FLAGS & ~FUSE_INIT_EXT, ALL_FLAGS2);
	want_none(&w);
	w.flags2 = ALL_FLAGS2;
	CHECK_EQ(zc_init_negotiate(&c, &w, &in, &out), 0);
	check_agree(&c, &out);
	CHECK_EQ(out.flags2, 0);
	CHECK_EQ(c.flags2, 0);
	CHECK_EQ(c.kernel_flags2, 0);
	CHECK(!(out.flags & FUSE_INIT_EXT));
	CHECK_EQ(out.max_stack_depth, 0);

	/* Without FUSE_MAX_PAGES: 32 pages at most, and no max_pages. */
	kernel(&in, 7, 45, ALL_FLAGS & ~FUSE_MAX_PAGES, 0);
	want_none(&w);
	CHECK_EQ(zc_init_negotiate(&c, &w, &in, &out), 0);
	check_agree(&c, &out);
	CHECK_EQ(out.max_write, 128 * 1024);
	CHECK_EQ(c.max_write, 128 * 1024);
	CHECK_EQ(out.max_pages, 0);
	CHECK(!(out.flags & FUSE_MAX_PAGES));
	CHECK(out.flags & FUSE_BIG_WRITES);
	/* A smaller max_write stays as it is. */
	w.max_write = 64 * 1024;
	CHECK_EQ(zc_init_negotiate(&c, &w, &in, &out), 0);
	CHECK_EQ(out.max_write, 64 * 1024);
	CHECK_EQ(out.max_pages, 0);
	/* With FUSE_MAX_PAGES, a max_write of part of a page takes a whole one. */
	kernel(&in, 7, 45, ALL_FLAGS, 0);
	w.max_write = 4097;
	CHECK_EQ(zc_init_negotiate(&c, &w, &in, &out), 0);
	CHECK_EQ(out.max_write, 4097);
	CHECK_EQ(out.max_pages, 2);

	/* 7.22 reads a 24-byte reply: no flags2. */
	kernel(&in, 7, 22, ALL_FLAGS, ALL_FLAGS2);
	want_none(&w);
	w.flags2 = ALL_FLAGS2;
	want_ring(&w, 0);
	CHECK_EQ(zc_init_negotiate(&c, &w, &in, &out), 0);
	check_agree(&c, &out);
	CHECK_EQ(c.minor, 22);
	CHECK_EQ(c.kernel_minor, 22);
	CHECK_EQ(out.flags2, 0);
	CHECK_EQ(c.flags2, 0);
	CHECK_EQ(out.max_stack_depth, 0);
	CHECK_EQ(ring_calls, 0);

	/* Before 7.6 there are no flags or readahead in the request. */
	kernel(&in, 7, 5, ALL_FLAGS, ALL_FLAGS2);
	want_none(&w);
	w.writeback = true;
	CHECK_EQ(zc_init_negotiate(&c, &w, &in, &out), 0);
	check_agree(&c, &out);
	CHECK_EQ(c.kernel_flags, 0);
	CHECK_EQ(c.max_readahead, 0);
	CHECK_EQ(out.flags, FUSE_BIG_WRITES);

	/* A newer minor: the library's. */
	kernel(&in, 7, 46, ALL_FLAGS, 0);
	want_none(&w);
	CHECK_EQ(zc_init_negotiate(&c, &w, &in, &out), 0);
	check_agree(&c, &out);
	CHECK_EQ(c.minor, 45);
	CHECK_EQ(c.kernel_minor, 46);
}

/* Majors other than 7: nothing negotiated, the connection untouched. */
static void check_majors(void)
{
	struct zc_fuse_init_out out;
	struct fuse_init_in in;
	struct zc_init_want w;
	struct zc_conn c, before;

	want_none(&w);
	memset(&c, 0xa5, sizeof(c));
	memcpy(&before, &c, sizeof(c));
	kernel(&in, 6, 45, ALL_FLAGS, 0);
	CHECK_EQ(zc_init_negotiate(&c, &w, &in, &out), -EPROTO);
	CHECK(!memcmp(&c, &before, sizeof(c)));

	kernel(&in, 8, 0, ALL_FLAGS, 0);
	memset(&out, 0xa5, sizeof(out));
	CHECK_EQ(zc_init_negotiate(&c, &w, &in, &out), 1);
	CHECK_EQ(out.major, 7);
	CHECK_EQ(out.minor, 45);
	CHECK_EQ(out.flags, 0);
	CHECK_EQ(out.flags2, 0);
	CHECK_EQ(out.max_write, 0);
	CHECK(!memcmp(&c, &before, sizeof(c)));
}

/* request_timeout: sent only when wanted and offered; the reply carries the seconds. */
static void check_request_timeout(void)
{
	struct zc_fuse_init_out out;
	struct fuse_init_in in;
	struct zc_init_want w;
	struct zc_conn c;

	kernel(&in, 7, 45, ALL_FLAGS, ALL_FLAGS2 | ZC_FUSE_REQUEST_TIMEOUT);
	want_none(&w);
	w.flags2 = ZC_FUSE_REQUEST_TIMEOUT;
	w.request_timeout = 7;
	CHECK_EQ(zc_init_negotiate(&c, &w, &in, &out), 0);
	CHECK(out.flags2 & ZC_FUSE_REQUEST_TIMEOUT);
	CHECK_EQ(out.request_timeout, 7);
	check_agree(&c, &out);
	/* Not offered (a kernel before 7.43): no flag, no seconds. */
	kernel(&in, 7, 42, ALL_FLAGS, ALL_FLAGS2);
	CHECK_EQ(zc_init_negotiate(&c, &w, &in, &out), 0);
	CHECK(!(out.flags2 & ZC_FUSE_REQUEST_TIMEOUT));
	CHECK_EQ(out.request_timeout, 0);
	/* Offered, not wanted. */
	kernel(&in, 7, 45, ALL_FLAGS, ALL_FLAGS2 | ZC_FUSE_REQUEST_TIMEOUT);
	want_none(&w);
	CHECK_EQ(zc_init_negotiate(&c, &w, &in, &out), 0);
	CHECK(!(out.flags2 & ZC_FUSE_REQUEST_TIMEOUT));
	CHECK_EQ(out.request_timeout, 0);
}

int main(void)
{
	check_everything_offered();
	check_wants();
	check_flags2();
	check_ring();
	check_older_kernels();
	check_majors();
	check_request_timeout();
	return 0;
}
