/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The FUSE protocol module against hand-built kernel structs. Decoding:
 * every opcode the table serves takes its smallest valid request at
 * protocol 7.45, with its fixed struct copied unchanged and its names
 * found where they lie, and refuses a request one byte short, a name
 * without its NUL and extensions that do not fit; older minors' shorter
 * structs are taken and zero-filled. Encoding: every reply is as long as
 * the negotiated minor expects, carries the request's unique, and its
 * fields hold what was given; directory entries are padded with zeros and
 * not written when they do not fit.
 */
#include <errno.h>
#include <linux/fuse.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/uio.h>

#include "fuse_kernel_ext.h"
#include "zc_dispatch.h"
#include "zc_proto.h"
#include "zc_req.h"
#include "zc_test.h"

/* The highest opcode looked up in the table (beyond the kernel's CUSE_INIT, 4096). */
#define MAX_OPCODE 4200

/* What is being checked, printed when a check fails. */
static char what[128];

static void print_what(void)
{
	if (what[0])
		fprintf(stderr, "while checking %s\n", what);
}

/* Request arguments are built here, aligned as the kernel's buffer is. */
static uint64_t abuf[512];
#define ARG ((char *)abuf)

/* The names a request carries: the first, and the second of two. */
static const char *const names[2] = { "first", "second-name" };

/* A recognizable, never-zero byte for offset @i of a fixed struct (distinct up to 128). */
static unsigned char pattern(size_t i)
{
	return (unsigned char)(0x80 | ((i * 13 + 5) & 0x7f));
}

/*
 * Lay out at ARG @fixed pattern bytes, @nnames names with their NULs,
 * @data_len bytes of data and @ext_len bytes of extensions: their length.
 */
static size_t build(size_t fixed, unsigned int nnames, size_t data_len, size_t ext_len)
{
	size_t len = 0, i, n;

	memset(abuf, 0xee, sizeof(abuf));
	for (i = 0; i < fixed; i++)
		ARG[len++] = (char)pattern(i);
	for (i = 0; i < nnames; i++) {
		n = strlen(names[i]) + 1;
		memcpy(ARG + len, names[i], n);
		len += n;
	}
	/* Data and extensions hold NULs too; names are not looked for in them. */
	for (i = 0; i < data_len; i++)
		ARG[len++] = (char)(i % 2 ? 0 : 'd');
	for (i = 0; i < ext_len; i++)
		ARG[len++] = (char)(i % 3 ? 0 : 'e');
	return len;
}

/* Decode @len bytes at ARG into @a, which holds garbage before. */
static int decode(uint32_t opcode, const struct zc_layout *l, uint32_t minor, uint16_t units,
		  size_t len, struct zc_args *a)
{
	memset(a, 0xff, sizeof(*a));
	return zc_proto_decode(opcode, l, minor, units, ARG, len, a);
}

/* The fixed struct in @a is @fixed bytes of ARG, and zero after them. */
static bool struct_ok(const struct zc_args *a, size_t fixed)
{
	const unsigned char *in = (const unsigned char *)&a->in;
	size_t i;

	if (memcmp(in, ARG, fixed))
		return false;
	for (i = fixed; i < sizeof(a->in); i++)
		if (in[i])
			return false;
	return true;
}

/* The names in @a are those build() put after @fixed bytes, as many as @l has. */
static void check_names(const struct zc_args *a, const struct zc_layout *l, size_t fixed)
{
	CHECK(l->names <= 2);
	if (l->names >= 1)
		CHECK(a->name == ARG + fixed);
	else
		CHECK(a->name == NULL);
	if (l->names >= 2)
		CHECK(a->name2 == ARG + fixed + strlen(names[0]) + 1);
	else
		CHECK(a->name2 == NULL);
}

/* The decoding of one opcode's requests, as its table entry lays them out. */
static void check_op(uint32_t opcode, const struct zc_op *op)
{
	const struct zc_layout *l = &op->in;
	size_t full = zc_proto_in_size(opcode, l, 45), fixed = full, len, rest;
	struct zc_args a;

	snprintf(what, sizeof(what), "opcode %u (%s)", opcode, op->name);
	CHECK(full <= sizeof(union zc_in));
	if (l->min && l->min < fixed)
		fixed = l->min;

	/* The smallest valid request: the struct round-trips, the names are found. */
	len = build(fixed, l->names, 0, 0);
	CHECK_EQ(decode(opcode, l, 45, 0, len, &a), 0);
	CHECK(struct_ok(&a, fixed));
	check_names(&a, l, fixed);
	/* No data, but a place for it (a backend may memcpy() an empty value). */
	CHECK(a.data == (l->stream ? NULL : ARG + len));
	CHECK_EQ(a.data_len, 0);
	CHECK(a.ext == NULL);
	CHECK_EQ(a.ext_len, 0);

	/* One byte short: the last name's NUL, or the struct's last byte. */
	if (l->names) {
		CHECK_EQ(decode(opcode, l, 45, 0, len - 1, &a), -EINVAL);
		/* The last name without its NUL. */
		ARG[len - 1] = 'x';
		CHECK_EQ(decode(opcode, l, 45, 0, len, &a), -EINVAL);
		if (l->names == 2) {
			/* The first of two names without its NUL: one NUL in all. */
			len = build(fixed, l->names, 0, 0);
			ARG[fixed + strlen(names[0])] = 'x';
			CHECK_EQ(decode(opcode, l, 45, 0, len, &a), -EINVAL);
		}
	} else if (fixed) {
		CHECK_EQ(decode(opcode, l, 45, 0, fixed - 1, &a), -EINVAL);
	}

	/* A streamed layout leaves the rest, extensions included, to the request's iterator. */
	if (l->stream)
		return;

	/* Data and an extension after the whole struct and the names: split apart. */
	len = build(full, l->names, 4, 8);
	CHECK_EQ(decode(opcode, l, 45, 1, len, &a), 0);
	CHECK(struct_ok(&a, full));
	check_names(&a, l, full);
	CHECK(a.data == ARG + len - 12);
	CHECK_EQ(a.data_len, 4);
	CHECK(a.ext == ARG + len - 8);
	CHECK_EQ(a.ext_len, 8);

	/* More extension units than the bytes behind the struct. */
	rest = len - full;
	CHECK_EQ(decode(opcode, l, 45, (uint16_t)(rest / 8 + 1), len, &a), -EINVAL);
	CHECK_EQ(decode(opcode, l, 45, 0xffff, len, &a), -EINVAL);
}

/* Every opcode the table serves. */
static void check_table(void)
{
	unsigned int served = 0;
	const struct zc_op *op;
	uint32_t opcode;

	for (opcode = 0; opcode <= MAX_OPCODE; opcode++) {
		op = zc_dispatch_op(opcode);
		if (!op || !op->serve)
			continue;
		check_op(opcode, op);
		served++;
	}
	what[0] = '\0';
	/* The table is not empty, and holds the opcodes checked by name below. */
	CHECK(served >= 40);
	CHECK(zc_dispatch_op(FUSE_LOOKUP) && zc_dispatch_op(FUSE_LOOKUP)->serve);
	CHECK(zc_dispatch_op(FUSE_WRITE) && zc_dispatch_op(FUSE_WRITE)->in.stream);
	CHECK(zc_dispatch_op(FUSE_INIT) && zc_dispatch_op(FUSE_INIT)->in.min == 8);
	CHECK(zc_dispatch_op(FUSE_SETXATTR) && zc_dispatch_op(FUSE_SETXATTR)->in.names == 1);
	CHECK(zc_dispatch_op(FUSE_RENAME) && zc_dispatch_op(FUSE_RENAME)->in.names == 2);
}

/* The named opcodes' layouts from the table. */
static const struct zc_layout *layout(uint32_t opcode)
{
	const struct zc_op *op = zc_dispatch_op(opcode);

	CHECK(op != NULL);
	return &op->in;
}

/* Name and extension rules beyond the table walk. */
static void check_names_and_ext(void)
{
	const struct zc_layout *setxattr = layout(FUSE_SETXATTR), *lookup = layout(FUSE_LOOKUP);
	const struct zc_layout *wr = layout(FUSE_WRITE);
	struct fuse_write_in w;
	struct zc_args a;
	size_t len;

	/* SETXATTR: its struct, the name, the value, then 8 bytes of extension. */
	len = 0;
	memset(abuf, 0, sizeof(abuf));
	memcpy(ARG, "\x05\0\0\0\x01\0\0\0", 8); /* size 5, flags 1 */
	len += FUSE_COMPAT_SETXATTR_IN_SIZE;
	memcpy(ARG + len, "user.a", 7);
	len += 7;
	memcpy(ARG + len, "val\0e", 5);
	len += 5;
	memcpy(ARG + len, "\x08\0\0\0\x20\0\0\0", 8);
	len += 8;
	CHECK_EQ(decode(FUSE_SETXATTR, setxattr, 45, 1, len, &a), 0);
	CHECK_EQ(a.in.setxattr.size, 5);
	CHECK_EQ(a.in.setxattr.flags, 1);
	CHECK_EQ(a.in.setxattr.setxattr_flags, 0);
	CHECK_STR_EQ(a.name, "user.a");
	CHECK(a.name == ARG + 8);
	CHECK(a.data == ARG + 15);
	CHECK_EQ(a.data_len, 5);
	CHECK(a.ext == ARG + 20);
	CHECK_EQ(a.ext_len, 8);
	/* Without the extension units in the header, the extension is data. */
	CHECK_EQ(decode(FUSE_SETXATTR, setxattr, 45, 0, len, &a), 0);
	CHECK_EQ(a.data_len, 13);
	CHECK(a.ext == NULL);
	CHECK_EQ(a.ext_len, 0);
	/* Two units would hold the name's NUL: the name then has none. */
	CHECK_EQ(decode(FUSE_SETXATTR, setxattr, 45, 2, len, &a), -EINVAL);
	/* Three units: more than the 20 bytes behind the struct. */
	CHECK_EQ(decode(FUSE_SETXATTR, setxattr, 45, 3, len, &a), -EINVAL);

	/* A name whose only NUL lies in the extensions has none. */
	memset(abuf, 0, sizeof(abuf));
	memcpy(ARG, "name", 4);
	CHECK_EQ(decode(FUSE_LOOKUP, lookup, 45, 1, 12, &a), -EINVAL);
	CHECK_EQ(decode(FUSE_LOOKUP, lookup, 45, 0, 12, &a), 0);
	CHECK_STR_EQ(a.name, "name");
	CHECK_EQ(a.data_len, 7);

	/* WRITE: the fixed struct only, as dispatch pulls it; the data stays behind. */
	memset(&w, 0, sizeof(w));
	w.fh = 7;
	w.offset = 4096;
	w.size = 65536;
	w.write_flags = FUSE_WRITE_CACHE;
	memcpy(ARG, &w, sizeof(w));
	CHECK_EQ(decode(FUSE_WRITE, wr, 45, 0, sizeof(w), &a), 0);
	CHECK_EQ(a.in.write.fh, 7);
	CHECK_EQ(a.in.write.offset, 4096);
	CHECK_EQ(a.in.write.size, 65536);
	CHECK_EQ(a.in.write.write_flags, FUSE_WRITE_CACHE);
	CHECK(a.data == NULL);
	CHECK_EQ(a.data_len, 0);
	CHECK(a.name == NULL);
	CHECK_EQ(decode(FUSE_WRITE, wr, 45, 0, sizeof(w) - 1, &a), -EINVAL);
}

/* Older minors send shorter structs; the rest reads as zero. */
static void check_old_minors(void)
{
	const struct zc_layout *getattr = layout(FUSE_GETATTR), *mknod = layout(FUSE_MKNOD);
	const struct zc_layout *create = layout(FUSE_CREATE), *wr = layout(FUSE_WRITE);
	const struct zc_layout *rd = layout(FUSE_READ), *setxattr = layout(FUSE_SETXATTR);
	struct zc_args a;
	size_t len;

	CHECK_EQ(zc_proto_in_size(FUSE_GETATTR, getattr, 8), 0);
	CHECK_EQ(zc_proto_in_size(FUSE_GETATTR, getattr, 9), sizeof(struct fuse_getattr_in));
	CHECK_EQ(zc_proto_in_size(FUSE_MKNOD, mknod, 11), FUSE_COMPAT_MKNOD_IN_SIZE);
	CHECK_EQ(zc_proto_in_size(FUSE_MKNOD, mknod, 11), 8);
	CHECK_EQ(zc_proto_in_size(FUSE_MKNOD, mknod, 12), sizeof(struct fuse_mknod_in));
	CHECK_EQ(zc_proto_in_size(FUSE_CREATE, create, 11), sizeof(struct fuse_open_in));
	CHECK_EQ(zc_proto_in_size(FUSE_CREATE, create, 12), sizeof(struct fuse_create_in));
	CHECK_EQ(zc_proto_in_size(FUSE_WRITE, wr, 8), FUSE_COMPAT_WRITE_IN_SIZE);
	CHECK_EQ(zc_proto_in_size(FUSE_WRITE, wr, 9), sizeof(struct fuse_write_in));
	CHECK_EQ(zc_proto_in_size(FUSE_READ, rd, 8), FUSE_COMPAT_WRITE_IN_SIZE);
	CHECK_EQ(zc_proto_in_size(FUSE_READ, rd, 9), sizeof(struct fuse_read_in));
	CHECK_EQ(zc_proto_in_size(FUSE_SETXATTR, setxattr, 8), FUSE_COMPAT_SETXATTR_IN_SIZE);
	CHECK_EQ(zc_proto_in_size(FUSE_SETXATTR, setxattr, 33), FUSE_COMPAT_SETXATTR_IN_SIZE);
	CHECK_EQ(zc_proto_in_size(FUSE_SETXATTR, setxattr, 45), FUSE_COMPAT_SETXATTR_IN_SIZE);

	/* READDIR shares READ's struct, and its 7.9 growth. */
	CHECK_EQ(zc_proto_in_size(FUSE_READDIR, layout(FUSE_READDIR), 8),
		 FUSE_COMPAT_WRITE_IN_SIZE);
	build(FUSE_COMPAT_WRITE_IN_SIZE, 0, 0, 0);
	CHECK_EQ(decode(FUSE_READDIR, layout(FUSE_READDIR), 8, 0, FUSE_COMPAT_WRITE_IN_SIZE, &a),
		 0);
	CHECK(struct_ok(&a, FUSE_COMPAT_WRITE_IN_SIZE));
	/* RELEASE before 7.8 and FLUSH before 7.7: fh and flags, 16 bytes. */
	CHECK_EQ(zc_proto_in_size(FUSE_RELEASE, layout(FUSE_RELEASE), 7), 16);
	CHECK_EQ(zc_proto_in_size(FUSE_RELEASEDIR, layout(FUSE_RELEASEDIR), 7), 16);
	CHECK_EQ(zc_proto_in_size(FUSE_RELEASE, layout(FUSE_RELEASE), 8),
		 sizeof(struct fuse_release_in));
	build(16, 0, 0, 0);
	CHECK_EQ(decode(FUSE_RELEASE, layout(FUSE_RELEASE), 7, 0, 16, &a), 0);
	CHECK(struct_ok(&a, 16));
	CHECK_EQ(decode(FUSE_RELEASE, layout(FUSE_RELEASE), 8, 0, 16, &a), -EINVAL);
	CHECK_EQ(zc_proto_in_size(FUSE_FLUSH, layout(FUSE_FLUSH), 6), 16);
	CHECK_EQ(zc_proto_in_size(FUSE_FLUSH, layout(FUSE_FLUSH), 7), sizeof(struct fuse_flush_in));

	/* GETATTR at 7.8 carries no struct. */
	CHECK_EQ(decode(FUSE_GETATTR, getattr, 8, 0, 0, &a), 0);
	CHECK(struct_ok(&a, 0));
	CHECK_EQ(decode(FUSE_GETATTR, getattr, 9, 0, 0, &a), -EINVAL);

	/* MKNOD at 7.11: mode and rdev, then the name; no umask. */
	len = build(FUSE_COMPAT_MKNOD_IN_SIZE, 1, 0, 0);
	CHECK_EQ(decode(FUSE_MKNOD, mknod, 11, 0, len, &a), 0);
	CHECK(struct_ok(&a, FUSE_COMPAT_MKNOD_IN_SIZE));
	CHECK_EQ(a.in.mknod.umask, 0);
	CHECK(a.name == ARG + 8);
	CHECK_STR_EQ(a.name, names[0]);
	/* At 7.12 the same bytes are shorter than the struct and its name. */
	CHECK_EQ(decode(FUSE_MKNOD, mknod, 12, 0, len, &a), -EINVAL);

	/* CREATE at 7.11: an open's struct, then the name. */
	len = build(sizeof(struct fuse_open_in), 1, 0, 0);
	CHECK_EQ(decode(FUSE_CREATE, create, 11, 0, len, &a), 0);
	CHECK(struct_ok(&a, sizeof(struct fuse_open_in)));
	CHECK_EQ(a.in.create.umask, 0);
	CHECK(a.name == ARG + sizeof(struct fuse_open_in));

	/* READ and WRITE at 7.8: 24 bytes, no lock_owner or flags. */
	len = build(FUSE_COMPAT_WRITE_IN_SIZE, 0, 0, 0);
	CHECK_EQ(decode(FUSE_READ, rd, 8, 0, len, &a), 0);
	CHECK(struct_ok(&a, FUSE_COMPAT_WRITE_IN_SIZE));
	CHECK_EQ(a.in.read.lock_owner, 0);
	CHECK_EQ(a.in.read.flags, 0);
	CHECK_EQ(decode(FUSE_READ, rd, 8, 0, len - 1, &a), -EINVAL);
	CHECK_EQ(decode(FUSE_READ, rd, 9, 0, len, &a), -EINVAL);
	CHECK_EQ(decode(FUSE_WRITE, wr, 8, 0, len, &a), 0);
	CHECK(struct_ok(&a, FUSE_COMPAT_WRITE_IN_SIZE));
	CHECK_EQ(decode(FUSE_WRITE, wr, 9, 0, len, &a), -EINVAL);
}

/* INIT: major and minor at least; the rest of the struct as far as it was sent. */
static void check_init_in(void)
{
	const struct zc_layout *init = layout(FUSE_INIT);
	struct fuse_init_in in;
	struct zc_args a;

	memset(&in, 0, sizeof(in));
	in.major = 7;
	in.minor = 45;
	in.max_readahead = 131072;
	in.flags = FUSE_ASYNC_READ | FUSE_INIT_EXT;
	in.flags2 = ZC_FUSE_PASSTHROUGH;
	in.unused[10] = 0xabcd;
	memcpy(ARG, &in, sizeof(in));

	CHECK_EQ(decode(FUSE_INIT, init, 45, 0, 8, &a), 0);
	CHECK_EQ(a.in.init.major, 7);
	CHECK_EQ(a.in.init.minor, 45);
	CHECK(struct_ok(&a, 8));
	CHECK_EQ(decode(FUSE_INIT, init, 45, 0, 7, &a), -EINVAL);
	CHECK_EQ(decode(FUSE_INIT, init, 45, 0, 0, &a), -EINVAL);

	/* A 7.6 kernel: readahead and flags, no flags2. */
	CHECK_EQ(decode(FUSE_INIT, init, 45, 0, 16, &a), 0);
	CHECK(struct_ok(&a, 16));
	CHECK_EQ(a.in.init.max_readahead, 131072);
	CHECK_EQ(a.in.init.flags, FUSE_ASYNC_READ | FUSE_INIT_EXT);
	CHECK_EQ(a.in.init.flags2, 0);

	/* The whole struct. */
	CHECK_EQ(decode(FUSE_INIT, init, 45, 0, sizeof(in), &a), 0);
	CHECK(!memcmp(&a.in.init, &in, sizeof(in)));
	CHECK(a.data == ARG + sizeof(in));
}

/* ---- Replies ---- */

static unsigned char cap[1024];
static size_t cap_len;
static int cap_sends;
static ssize_t cap_ret;

/* A route that keeps what it is given. */
static ssize_t capture_send(struct zc_req *req, const struct iovec *iov, int count)
{
	size_t n = 0;
	int i;

	cap_sends++;
	for (i = 0; i < count; i++) {
		CHECK(n + iov[i].iov_len <= sizeof(cap));
		memcpy(cap + n, iov[i].iov_base, iov[i].iov_len);
		n += iov[i].iov_len;
	}
	cap_len = n;
	return cap_ret ? cap_ret : (ssize_t)n;
}

static const struct zc_route capture = { .kind = ZC_ROUTE_DEV, .send = capture_send };

/* The argument bytes of the reply captured. */
#define REPLY (cap + sizeof(struct fuse_out_header))

static void new_req(struct zc_req *req, uint32_t opcode, uint32_t minor)
{
	memset(req, 0, sizeof(*req));
	req->route = &capture;
	req->unique = 0x0102030405060708ULL + ((uint64_t)opcode << 32) + minor;
	req->opcode = opcode;
	req->minor = minor;
	memset(cap, 0xee, sizeof(cap));
	cap_len = 0;
	cap_sends = 0;
	cap_ret = 0;
}

/*
 * The one reply sent for @req, whose header says the length sent, @req's
 * unique and @error: the bytes of its arguments.
 */
static size_t reply_args(const struct zc_req *req, int error)
{
	struct fuse_out_header h;

	CHECK_EQ(cap_sends, 1);
	CHECK(cap_len >= sizeof(h));
	memcpy(&h, cap, sizeof(h));
	CHECK_EQ(h.len, cap_len);
	CHECK_EQ(h.error, error);
	CHECK_EQ(h.unique, req->unique);
	return h.len - sizeof(h);
}

static void fill_pattern(void *p, size_t len, unsigned int seed)
{
	unsigned char *b = p;
	size_t i;

	for (i = 0; i < len; i++)
		b[i] = (unsigned char)(seed + i * 7 + 1);
}

static void sample_stat(struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = 0x1122334455ULL;
	st->st_size = 0x123456789LL;
	st->st_mode = S_IFREG | 0640;
	st->st_nlink = 3;
	st->st_uid = 1001;
	st->st_gid = 1002;
	st->st_rdev = 0x803;
	st->st_blksize = 4096;
	st->st_blocks = 9;
	st->st_atim.tv_sec = 1700000001;
	st->st_atim.tv_nsec = 111;
	st->st_mtim.tv_sec = 1700000002;
	st->st_mtim.tv_nsec = 222222222;
	st->st_ctim.tv_sec = 1700000003;
	st->st_ctim.tv_nsec = 999999999;
}

/* Replies whose size depends on the minor, at @minor. */
static void check_sized_replies(uint32_t minor)
{
	size_t esize = minor < 9 ? FUSE_COMPAT_ENTRY_OUT_SIZE : sizeof(struct fuse_entry_out);
	size_t asize = minor < 9 ? FUSE_COMPAT_ATTR_OUT_SIZE : sizeof(struct fuse_attr_out);
	struct fuse_entry_out e;
	struct fuse_open_out o;
	struct fuse_attr_out ao;
	struct fuse_attr want;
	struct zc_req req;
	struct stat st;

	snprintf(what, sizeof(what), "replies at minor %u", minor);
	fill_pattern(&e, sizeof(e), 1);
	fill_pattern(&o, sizeof(o), 2);

	new_req(&req, FUSE_LOOKUP, minor);
	CHECK_EQ(zc_reply_entry(&req, &e), 0);
	CHECK_EQ(reply_args(&req, 0), esize);
	CHECK(!memcmp(REPLY, &e, esize));

	new_req(&req, FUSE_CREATE, minor);
	CHECK_EQ(zc_reply_create(&req, &e, &o), 0);
	CHECK_EQ(reply_args(&req, 0), esize + sizeof(o));
	CHECK(!memcmp(REPLY, &e, esize));
	CHECK(!memcmp(REPLY + esize, &o, sizeof(o)));

	sample_stat(&st);
	zc_proto_attr(&want, &st);
	new_req(&req, FUSE_GETATTR, minor);
	CHECK_EQ(zc_reply_attr(&req, &st, 2.25), 0);
	CHECK_EQ(reply_args(&req, 0), asize);
	memset(&ao, 0, sizeof(ao));
	memcpy(&ao, REPLY, asize);
	CHECK_EQ(ao.attr_valid, 2);
	CHECK_EQ(ao.attr_valid_nsec, 250000000);
	CHECK_EQ(ao.dummy, 0);
	CHECK(!memcmp(&ao.attr, &want, asize - offsetof(struct fuse_attr_out, attr)));
	CHECK_EQ(ao.attr.ino, 0x1122334455ULL);
	CHECK_EQ(ao.attr.rdev, 0x803);

	new_req(&req, FUSE_OPEN, minor);
	CHECK_EQ(zc_reply_open(&req, &o), 0);
	CHECK_EQ(reply_args(&req, 0), sizeof(o));
	CHECK(!memcmp(REPLY, &o, sizeof(o)));
	what[0] = '\0';
}

static void check_statfs_reply(uint32_t minor, size_t size)
{
	struct statvfs sv;
	struct fuse_statfs_out out;
	struct zc_req req;

	memset(&sv, 0, sizeof(sv));
	sv.f_bsize = 4096;
	sv.f_frsize = 512;
	sv.f_blocks = 1000000;
	sv.f_bfree = 500000;
	sv.f_bavail = 400000;
	sv.f_files = 30000;
	sv.f_ffree = 20000;
	sv.f_namemax = 255;
	new_req(&req, FUSE_STATFS, minor);
	CHECK_EQ(zc_reply_statfs(&req, &sv), 0);
	CHECK_EQ(reply_args(&req, 0), size);
	memset(&out, 0, sizeof(out));
	memcpy(&out, REPLY, size);
	CHECK_EQ(out.st.blocks, 1000000);
	CHECK_EQ(out.st.bfree, 500000);
	CHECK_EQ(out.st.bavail, 400000);
	CHECK_EQ(out.st.files, 30000);
	CHECK_EQ(out.st.ffree, 20000);
	CHECK_EQ(out.st.bsize, 4096);
	CHECK_EQ(out.st.namelen, 255);
	if (size > FUSE_COMPAT_STATFS_SIZE)
		CHECK_EQ(out.st.frsize, 512);
}

static void check_init_reply(uint32_t minor, size_t size)
{
	struct zc_fuse_init_out out;
	struct zc_req req;

	fill_pattern(&out, sizeof(out), 3);
	new_req(&req, FUSE_INIT, minor);
	CHECK_EQ(zc_reply_init(&req, &out), 0);
	CHECK_EQ(reply_args(&req, 0), size);
	CHECK(!memcmp(REPLY, &out, size));
}

/* Replies of one size at every minor, at @minor. */
static void check_fixed_replies(uint32_t minor)
{
	struct zc_fuse_copy_file_range_out cr;
	struct fuse_getxattr_out xo;
	struct fuse_lseek_out lo;
	struct fuse_write_out wo;
	struct zc_req req;

	new_req(&req, FUSE_WRITE, minor);
	CHECK_EQ(zc_reply_write(&req, 123456), 0);
	CHECK_EQ(reply_args(&req, 0), sizeof(wo));
	memcpy(&wo, REPLY, sizeof(wo));
	CHECK_EQ(wo.size, 123456);
	CHECK_EQ(wo.padding, 0);

	new_req(&req, FUSE_GETXATTR, minor);
	CHECK_EQ(zc_reply_xattr_size(&req, 77), 0);
	CHECK_EQ(reply_args(&req, 0), sizeof(xo));
	memcpy(&xo, REPLY, sizeof(xo));
	CHECK_EQ(xo.size, 77);
	CHECK_EQ(xo.padding, 0);

	new_req(&req, FUSE_LSEEK, minor);
	CHECK_EQ(zc_reply_lseek(&req, 0x123456789ULL), 0);
	CHECK_EQ(reply_args(&req, 0), sizeof(lo));
	memcpy(&lo, REPLY, sizeof(lo));
	CHECK_EQ(lo.offset, 0x123456789ULL);

	/* COPY_FILE_RANGE counts in 32 bits: clamped. */
	new_req(&req, FUSE_COPY_FILE_RANGE, minor);
	CHECK_EQ(zc_reply_copy_range(&req, 5000000000ULL), 0);
	CHECK_EQ(reply_args(&req, 0), sizeof(wo));
	memcpy(&wo, REPLY, sizeof(wo));
	CHECK_EQ(wo.size, UINT32_MAX);
	new_req(&req, FUSE_COPY_FILE_RANGE, minor);
	CHECK_EQ(zc_reply_copy_range(&req, 65536), 0);
	CHECK_EQ(reply_args(&req, 0), sizeof(wo));
	memcpy(&wo, REPLY, sizeof(wo));
	CHECK_EQ(wo.size, 65536);

	/* COPY_FILE_RANGE_64: the full count in 8 bytes. */
	new_req(&req, ZC_FUSE_COPY_FILE_RANGE_64, minor);
	CHECK_EQ(zc_reply_copy_range(&req, 5000000000ULL), 0);
	CHECK_EQ(reply_args(&req, 0), sizeof(cr));
	CHECK_EQ(sizeof(cr), 8);
	memcpy(&cr, REPLY, sizeof(cr));
	CHECK_EQ(cr.bytes_copied, 5000000000ULL);

	/* An error: the header alone. */
	new_req(&req, FUSE_LOOKUP, minor);
	CHECK_EQ(zc_reply_err(&req, -ENOENT), 0);
	CHECK_EQ(reply_args(&req, -ENOENT), 0);
	CHECK_EQ(cap_len, sizeof(struct fuse_out_header));
	new_req(&req, FUSE_FLUSH, minor);
	CHECK_EQ(zc_reply_err(&req, 0), 0);
	CHECK_EQ(reply_args(&req, 0), 0);

	new_req(&req, FUSE_READ, minor);
	CHECK_EQ(zc_reply_buf(&req, "abcdef", 6), 0);
	CHECK_EQ(reply_args(&req, 0), 6);
	CHECK(!memcmp(REPLY, "abcdef", 6));

	/* The route's error comes back. */
	new_req(&req, FUSE_WRITE, minor);
	cap_ret = -ENOENT;
	CHECK_EQ(zc_reply_write(&req, 1), -ENOENT);
}

static void check_replies(void)
{
	check_sized_replies(45);
	check_sized_replies(9);
	check_sized_replies(8);

	check_statfs_reply(45, sizeof(struct fuse_statfs_out));
	check_statfs_reply(4, sizeof(struct fuse_statfs_out));
	check_statfs_reply(3, FUSE_COMPAT_STATFS_SIZE);

	check_init_reply(45, sizeof(struct zc_fuse_init_out));
	CHECK_EQ(sizeof(struct zc_fuse_init_out), 64);
	check_init_reply(23, 64);
	check_init_reply(22, FUSE_COMPAT_22_INIT_OUT_SIZE);
	check_init_reply(5, FUSE_COMPAT_22_INIT_OUT_SIZE);
	check_init_reply(4, FUSE_COMPAT_INIT_OUT_SIZE);

	check_fixed_replies(45);
	check_fixed_replies(8);
}

/* ---- Field conversions ---- */

static void check_timeout(void)
{
	uint64_t sec;
	uint32_t nsec;

	zc_proto_timeout(1.5, &sec, &nsec);
	CHECK_EQ(sec, 1);
	CHECK_EQ(nsec, 500000000);
	zc_proto_timeout(0.25, &sec, &nsec);
	CHECK_EQ(sec, 0);
	CHECK_EQ(nsec, 250000000);
	zc_proto_timeout(86400, &sec, &nsec);
	CHECK_EQ(sec, 86400);
	CHECK_EQ(nsec, 0);
	sec = 5;
	nsec = 5;
	zc_proto_timeout(-1.5, &sec, &nsec);
	CHECK_EQ(sec, 0);
	CHECK_EQ(nsec, 0);
	sec = 5;
	nsec = 5;
	zc_proto_timeout(0, &sec, &nsec);
	CHECK_EQ(sec, 0);
	CHECK_EQ(nsec, 0);
	sec = 5;
	nsec = 5;
	zc_proto_timeout(NAN, &sec, &nsec);
	CHECK_EQ(sec, 0);
	CHECK_EQ(nsec, 0);
	/* Huge: a long time, not a conversion out of range. */
	zc_proto_timeout(1e30, &sec, &nsec);
	CHECK(sec >= 1000000000ULL);
	CHECK(sec <= 1ULL << 62);
	CHECK(nsec <= 999999999);
	zc_proto_timeout(INFINITY, &sec, &nsec);
	CHECK(sec >= 1000000000ULL);
	CHECK(sec <= 1ULL << 62);
	CHECK(nsec <= 999999999);
}

static void check_attr(void)
{
	struct fuse_entry_out eo;
	struct zc_entry e;
	struct fuse_attr a;
	struct stat st;

	sample_stat(&st);
	memset(&a, 0xff, sizeof(a));
	zc_proto_attr(&a, &st);
	CHECK_EQ(a.ino, 0x1122334455ULL);
	CHECK_EQ(a.size, 0x123456789ULL);
	CHECK_EQ(a.mode, S_IFREG | 0640);
	CHECK_EQ(a.nlink, 3);
	CHECK_EQ(a.uid, 1001);
	CHECK_EQ(a.gid, 1002);
	CHECK_EQ(a.rdev, 0x803);
	CHECK_EQ(a.blksize, 4096);
	CHECK_EQ(a.blocks, 9);
	CHECK_EQ(a.atime, 1700000001);
	CHECK_EQ(a.atimensec, 111);
	CHECK_EQ(a.mtime, 1700000002);
	CHECK_EQ(a.mtimensec, 222222222);
	CHECK_EQ(a.ctime, 1700000003);
	CHECK_EQ(a.ctimensec, 999999999);
	CHECK_EQ(a.flags, 0);

	memset(&e, 0, sizeof(e));
	e.ino = 42;
	e.generation = 7;
	e.attr = st;
	memset(&eo, 0xff, sizeof(eo));
	zc_proto_entry(&eo, &e, 1.5, 0.5);
	CHECK_EQ(eo.nodeid, 42);
	CHECK_EQ(eo.generation, 7);
	CHECK_EQ(eo.entry_valid, 1);
	CHECK_EQ(eo.entry_valid_nsec, 500000000);
	CHECK_EQ(eo.attr_valid, 0);
	CHECK_EQ(eo.attr_valid_nsec, 500000000);
	CHECK(!memcmp(&eo.attr, &a, sizeof(a)));
}

/* The bytes at @p from @from to @to are @c. */
static bool all(const char *p, size_t from, size_t to, char c)
{
	size_t i;

	for (i = from; i < to; i++)
		if (p[i] != c)
			return false;
	return true;
}

static void check_dirents(void)
{
	static char buf[512];
	size_t want = FUSE_DIRENT_ALIGN(FUSE_NAME_OFFSET + 3), n;
	struct fuse_entry_out e;
	struct fuse_dirent d;

	/* "abc": 24 + 3 bytes, padded to 32. */
	CHECK_EQ(want, 32);
	memset(buf, 0x55, sizeof(buf));
	n = zc_proto_add_dirent(buf, sizeof(buf), "abc", 99, S_IFDIR | 0755, 1234);
	CHECK_EQ(n, want);
	memcpy(&d, buf, sizeof(d));
	CHECK_EQ(d.ino, 99);
	CHECK_EQ(d.off, 1234);
	CHECK_EQ(d.namelen, 3);
	CHECK_EQ(d.type, 4);
	CHECK(!memcmp(buf + FUSE_NAME_OFFSET, "abc", 3));
	CHECK(all(buf, FUSE_NAME_OFFSET + 3, want, 0));
	CHECK(all(buf, want, sizeof(buf), 0x55));

	/* Exactly the room it takes; a regular file's type 8; no padding for 8 bytes. */
	memset(buf, 0x55, sizeof(buf));
	n = zc_proto_add_dirent(buf, FUSE_NAME_OFFSET + 8, "12345678", 5, S_IFREG | 0644, 2);
	CHECK_EQ(n, FUSE_NAME_OFFSET + 8);
	memcpy(&d, buf, sizeof(d));
	CHECK_EQ(d.type, 8);
	CHECK_EQ(d.namelen, 8);
	CHECK(all(buf, n, sizeof(buf), 0x55));

	/* One byte too little room: its size, and nothing written. */
	memset(buf, 0x55, sizeof(buf));
	n = zc_proto_add_dirent(buf, want - 1, "abc", 99, S_IFDIR, 1234);
	CHECK_EQ(n, want);
	CHECK(n > want - 1);
	CHECK(all(buf, 0, sizeof(buf), 0x55));
	n = zc_proto_add_dirent(buf, 0, "abc", 99, S_IFDIR, 1234);
	CHECK_EQ(n, want);
	CHECK(all(buf, 0, sizeof(buf), 0x55));

	/* READDIRPLUS: the entry, then the dirent, padded the same way. */
	want = FUSE_DIRENT_ALIGN(FUSE_NAME_OFFSET_DIRENTPLUS + 3);
	CHECK_EQ(FUSE_NAME_OFFSET_DIRENTPLUS, sizeof(e) + FUSE_NAME_OFFSET);
	fill_pattern(&e, sizeof(e), 9);
	e.attr.ino = 0xabcdef;
	memset(buf, 0x55, sizeof(buf));
	n = zc_proto_add_direntplus(buf, sizeof(buf), "abc", &e, S_IFDIR | 0700, 77);
	CHECK_EQ(n, want);
	CHECK(!memcmp(buf, &e, sizeof(e)));
	memcpy(&d, buf + sizeof(e), sizeof(d));
	CHECK_EQ(d.ino, 0xabcdef);
	CHECK_EQ(d.off, 77);
	CHECK_EQ(d.namelen, 3);
	CHECK_EQ(d.type, 4);
	CHECK(!memcmp(buf + FUSE_NAME_OFFSET_DIRENTPLUS, "abc", 3));
	CHECK(all(buf, FUSE_NAME_OFFSET_DIRENTPLUS + 3, want, 0));
	CHECK(all(buf, want, sizeof(buf), 0x55));

	memset(buf, 0x55, sizeof(buf));
	n = zc_proto_add_direntplus(buf, want - 1, "abc", &e, S_IFDIR, 77);
	CHECK_EQ(n, want);
	CHECK(all(buf, 0, sizeof(buf), 0x55));
}

int main(void)
{
	atexit(print_what);
	check_table();
	check_names_and_ext();
	check_old_minors();
	check_init_in();
	check_replies();
	check_timeout();
	check_attr();
	check_dirents();
	what[0] = '\0';
	return 0;
}
