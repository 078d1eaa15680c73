/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Dispatch: the opcode table, and every request through it. */
#include <errno.h>
#include <inttypes.h>
#include <linux/fuse.h>
#include <stdio.h>
#include <string.h>

#include "fuse_kernel_ext.h"
#include "zc_chan.h"
#include "zc_data.h"
#include "zc_dispatch.h"
#include "zc_init.h"
#include "zc_iter.h"
#include "zc_ops.h"
#include "zc_req.h"
#include "zc_opts.h"
#include "zc_util.h"

/* An opcode whose arguments are @type, then @names NUL-terminated names. */
#define ZC_IN(type, n)                                                                             \
	{                                                                                          \
		.size = sizeof(type), .names = (n)                                                 \
	}
#define ZC_NAMES(n)                                                                                \
	{                                                                                          \
		.names = (n)                                                                       \
	}

/*
 * Every opcode the kernel may send at protocol 7.45 that the library
 * serves. GETLK, BMAP, IOCTL, POLL, the DAX mappings, SYNCFS and STATX are
 * not in it: ENOSYS, and the kernel stops asking or falls back.
 */
static const struct zc_op zc_ops[] = {
	[FUSE_LOOKUP] = { "LOOKUP", ZC_NAMES(1), false, zc_op_lookup },
	[FUSE_FORGET] = { "FORGET", ZC_IN(struct fuse_forget_in, 0), true, zc_op_forget },
	[FUSE_GETATTR] = { "GETATTR", ZC_IN(struct fuse_getattr_in, 0), false, zc_op_getattr },
	[FUSE_SETATTR] = { "SETATTR", ZC_IN(struct fuse_setattr_in, 0), false, zc_op_setattr },
	[FUSE_READLINK] = { "READLINK", ZC_NAMES(0), false, zc_op_readlink },
	[FUSE_SYMLINK] = { "SYMLINK", ZC_NAMES(2), false, zc_op_symlink },
	[FUSE_MKNOD] = { "MKNOD", ZC_IN(struct fuse_mknod_in, 1), false, zc_op_mknod },
	[FUSE_MKDIR] = { "MKDIR", ZC_IN(struct fuse_mkdir_in, 1), false, zc_op_mkdir },
	[FUSE_UNLINK] = { "UNLINK", ZC_NAMES(1), false, zc_op_remove_name },
	[FUSE_RMDIR] = { "RMDIR", ZC_NAMES(1), false, zc_op_remove_name },
	[FUSE_RENAME] = { "RENAME", ZC_IN(struct fuse_rename_in, 2), false, zc_op_rename },
	[FUSE_LINK] = { "LINK", ZC_IN(struct fuse_link_in, 1), false, zc_op_link },
	[FUSE_OPEN] = { "OPEN", ZC_IN(struct fuse_open_in, 0), false, zc_op_open },
	[FUSE_READ] = { "READ", ZC_IN(struct fuse_read_in, 0), false, zc_op_read },
	[FUSE_WRITE] = { "WRITE",
			 { .size = sizeof(struct fuse_write_in), .stream = true },
			 false,
			 zc_op_write },
	[FUSE_STATFS] = { "STATFS", ZC_NAMES(0), false, zc_op_statfs },
	[FUSE_RELEASE] = { "RELEASE", ZC_IN(struct fuse_release_in, 0), false, zc_op_release },
	[FUSE_FSYNC] = { "FSYNC", ZC_IN(struct fuse_fsync_in, 0), false, zc_op_fsync },
	[FUSE_SETXATTR] = { "SETXATTR", ZC_IN(struct fuse_setxattr_in, 1), false, zc_op_setxattr },
	[FUSE_GETXATTR] = { "GETXATTR", ZC_IN(struct fuse_getxattr_in, 1), false, zc_op_getxattr },
	[FUSE_LISTXATTR] = { "LISTXATTR", ZC_IN(struct fuse_getxattr_in, 0), false,
			     zc_op_getxattr },
	[FUSE_REMOVEXATTR] = { "REMOVEXATTR", ZC_NAMES(1), false, zc_op_remove_name },
	[FUSE_FLUSH] = { "FLUSH", ZC_IN(struct fuse_flush_in, 0), false, zc_op_flush },
	/* Older kernels send less of it; major and minor at least. */
	[FUSE_INIT] = { "INIT",
			{ .size = sizeof(struct fuse_init_in), .min = 8 },
			false,
			zc_init_serve },
	[FUSE_OPENDIR] = { "OPENDIR", ZC_IN(struct fuse_open_in, 0), false, zc_op_opendir },
	[FUSE_READDIR] = { "READDIR", ZC_IN(struct fuse_read_in, 0), false, zc_op_readdir },
	[FUSE_RELEASEDIR] = { "RELEASEDIR", ZC_IN(struct fuse_release_in, 0), false,
			      zc_op_releasedir },
	[FUSE_FSYNCDIR] = { "FSYNCDIR", ZC_IN(struct fuse_fsync_in, 0), false, zc_op_fsync },
	[FUSE_SETLK] = { "SETLK", ZC_IN(struct fuse_lk_in, 0), false, zc_op_setlk },
	[FUSE_SETLKW] = { "SETLKW", ZC_IN(struct fuse_lk_in, 0), false, zc_op_setlk },
	[FUSE_ACCESS] = { "ACCESS", ZC_IN(struct fuse_access_in, 0), false, zc_op_access },
	[FUSE_CREATE] = { "CREATE", ZC_IN(struct fuse_create_in, 1), false, zc_op_create },
	[FUSE_INTERRUPT] = { "INTERRUPT", ZC_IN(struct fuse_interrupt_in, 0), true,
			     zc_op_interrupt },
	[FUSE_DESTROY] = { "DESTROY", ZC_NAMES(0), false, zc_op_destroy },
	/* Answers a FUSE_NOTIFY_RETRIEVE, which the library never sends: dropped. */
	[FUSE_NOTIFY_REPLY] = { "NOTIFY_REPLY", ZC_NAMES(0), true, NULL },
	[FUSE_BATCH_FORGET] = { "BATCH_FORGET", ZC_IN(struct fuse_batch_forget_in, 0), true,
				zc_op_batch_forget },
	[FUSE_FALLOCATE] = { "FALLOCATE", ZC_IN(struct fuse_fallocate_in, 0), false,
			     zc_op_fallocate },
	[FUSE_READDIRPLUS] = { "READDIRPLUS", ZC_IN(struct fuse_read_in, 0), false, zc_op_readdir },
	[FUSE_RENAME2] = { "RENAME2", ZC_IN(struct fuse_rename2_in, 2), false, zc_op_rename },
	[FUSE_LSEEK] = { "LSEEK", ZC_IN(struct fuse_lseek_in, 0), false, zc_op_lseek },
	[FUSE_COPY_FILE_RANGE] = { "COPY_FILE_RANGE", ZC_IN(struct fuse_copy_file_range_in, 0),
				   false, zc_op_copy_file_range },
	/* The new entry's name follows; the file has none, so it is not read. */
	[FUSE_TMPFILE] = { "TMPFILE", ZC_IN(struct fuse_create_in, 0), false, zc_op_tmpfile },
	[ZC_FUSE_COPY_FILE_RANGE_64] = { "COPY_FILE_RANGE_64",
					 ZC_IN(struct fuse_copy_file_range_in, 0), false,
					 zc_op_copy_file_range },
};

const struct zc_op *zc_dispatch_op(uint32_t opcode)
{
	if (opcode >= sizeof(zc_ops) / sizeof(zc_ops[0]) || !zc_ops[opcode].name)
		return NULL;
	return &zc_ops[opcode];
}

/* -d: the request as it arrives, so that one that hangs shows. */
static void trace_request(const struct fuse_in_header *h, const struct zc_op *op, size_t len)
{
	fprintf(stderr,
		"unique: %" PRIu64 ", opcode: %s (%u), nodeid: %" PRIu64 ", insize: %zu, pid: %u\n",
		h->unique, op ? op->name : "UNKNOWN", h->opcode, h->nodeid, len, h->pid);
}

/* -d: its reply, and how long the request took. */
static void trace_reply(const struct zc_req *req, const struct fuse_in_header *h, uint64_t t0)
{
	unsigned long long us = (unsigned long long)(zc_now_usec() - t0);

	if (req->kept)
		fprintf(stderr,
			"   unique: %" PRIu64 ", answered later, from a waiting thread, %llu us\n",
			h->unique, us);
	else if (!req->replied)
		fprintf(stderr, "   unique: %" PRIu64 ", no reply, %llu us\n", h->unique, us);
	else if (req->reply_error)
		fprintf(stderr, "   unique: %" PRIu64 ", error: %d (%s), outsize: %u, %llu us\n",
			h->unique, req->reply_error, strerror(-req->reply_error), req->reply_len,
			us);
	else
		fprintf(stderr, "   unique: %" PRIu64 ", success, outsize: %u, %llu us\n",
			h->unique, req->reply_len, us);
}

/*
 * Whether @op may serve @h now: only INIT until INIT is answered, and INIT
 * only once (-EIO otherwise); -ENOSYS for an opcode the table does not serve.
 */
static int check_request(const struct zc_chan *c, const struct fuse_in_header *h,
			 const struct zc_op *op)
{
	bool init_done = __atomic_load_n(&c->conn.init_done, __ATOMIC_ACQUIRE);

	if (init_done == (h->opcode == FUSE_INIT))
		return -EIO;
	if (!op || !op->serve)
		return -ENOSYS;
	return 0;
}

/*
 * Pull @op's arguments of @arglen bytes out of the request's iterator (for
 * a streamed layout, the fixed struct only) and decode them into req->args.
 */
static int decode_request(struct zc_req *req, const struct zc_op *op, size_t arglen)
{
	struct zc_chan *c = req->chan;
	size_t pull = arglen, fixed;
	void *arg;

	if (op->in.stream) {
		fixed = zc_proto_in_size(req->opcode, &op->in, req->minor);
		if (pull > fixed)
			pull = fixed;
	}
	arg = zc_iter_pull(req->src, req->buf + sizeof(struct fuse_in_header), pull, &c->stats);
	if (!arg && pull)
		return -EIO;
	return zc_proto_decode(req->opcode, &op->in, req->minor, req->hdr->total_extlen, arg, pull,
			       &req->args);
}

void zc_dispatch(struct zc_req *req, size_t len)
{
	struct zc_chan *c = req->chan;
	const struct fuse_in_header *hdr;
	struct fuse_in_header h;
	const struct zc_op *op;
	uint64_t t0 = 0;
	int r;

	hdr = zc_iter_pull(req->src, req->buf, sizeof(*hdr), &c->stats);
	if (!hdr || hdr->len != (uint64_t)len) {
		zc_iter_discard(req->src, &c->stats);
		if (hdr) {
			req->unique = hdr->unique;
			zc_req_reply(req, -EIO, NULL, 0);
		}
		return;
	}
	/* A copy: a READ's reply may be built over the header. */
	h = *hdr;
	req->hdr = hdr;
	req->unique = h.unique;
	req->opcode = h.opcode;
	req->create_group = -ENODATA;
	req->minor = __atomic_load_n(&c->conn.init_done, __ATOMIC_ACQUIRE) ? c->conn.minor
									   : ZC_FUSE_KERNEL_MINOR;
	zc_stats_request(&c->stats, h.opcode);
	op = zc_dispatch_op(h.opcode);
	if (c->opts->debug) {
		trace_request(&h, op, len);
		t0 = zc_now_usec();
	}
	r = check_request(c, &h, op);
	if (r == 0)
		r = decode_request(req, op, len - sizeof(h));
	if (r < 0) {
		zc_iter_discard(req->src, &c->stats);
		if (!op || !op->no_reply)
			zc_req_reply(req, r, NULL, 0);
	} else {
		op->serve(req);
	}
	if (t0)
		trace_reply(req, &h, t0);
	/* A WRITE served told the data policy itself. */
	if (r < 0 || h.opcode != FUSE_WRITE)
		zc_data_served(&c->policy, h.opcode, 0);
}
