/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The backend's contract: a read or write whose extents break a rule
 * (too many, longer than the request, reserved set, a write extent with
 * no data, a hole too long, a descriptor that is not open) is answered
 * EIO, and each rule gives one notice naming the operation and the rule,
 * however often it is broken. Extents that keep the rules are served. An
 * init() that fails refuses the mount: INIT is answered with its error and
 * the connection stops with it.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "zc_backend.h"
#include "zc_chan.h"
#include "zc_init.h"
#include "zc_iter.h"
#include "zc_notice.h"
#include "zc_ops.h"
#include "zc_opts.h"
#include "zc_req.h"
#include "zc_test.h"

#define SIZE 4096

/* What the backend returns, chosen by the inode number. */
enum scenario {
	GOOD = 2,
	TOO_MANY,
	TOO_LONG,
	RESERVED,
	NO_DATA,
	HOLE_TOO_LONG,
	BAD_FD,
};

static char data[SIZE];
static int good_fd = -1;

static void one_extent(struct zc_extent *ext, enum scenario s)
{
	memset(ext, 0, sizeof(*ext));
	ext->fd = -1;
	ext->mem = data;
	ext->length = SIZE;
	switch (s) {
	case TOO_LONG:
		ext->length = SIZE + 1;
		break;
	case RESERVED:
		ext->reserved = 1;
		break;
	case NO_DATA:
		ext->mem = NULL;
		break;
	case HOLE_TOO_LONG:
		ext->mem = NULL;
		ext->length = 64UL << 20;
		break;
	case BAD_FD:
		ext->mem = NULL;
		ext->fd = good_fd + 100; /* open nowhere */
		break;
	case GOOD:
		ext->mem = NULL;
		ext->fd = good_fd;
		break;
	default:
		break;
	}
}

static int extents_for(zc_ino_t ino, struct zc_extent *ext, unsigned int max_ext)
{
	unsigned int i;

	/* Says one more than it may (and than it wrote: the array holds max_ext). */
	if (ino == TOO_MANY) {
		for (i = 0; i < max_ext; i++) {
			one_extent(&ext[i], GOOD);
			ext[i].length = 1;
		}
		return (int)max_ext + 1;
	}
	one_extent(ext, (enum scenario)ino);
	return 1;
}

static int backend_read(const struct zc_ctx *ctx, zc_ino_t ino, uint64_t fh, off_t off, size_t size,
			struct zc_extent *ret_ext, unsigned int max_ext)
{
	(void)ctx;
	(void)fh;
	(void)off;
	(void)size;
	return extents_for(ino, ret_ext, max_ext);
}

static int backend_write(const struct zc_ctx *ctx, zc_ino_t ino, uint64_t fh, off_t off,
			 size_t size, struct zc_extent *ret_ext, unsigned int max_ext)
{
	(void)ctx;
	(void)fh;
	(void)off;
	(void)size;
	return extents_for(ino, ret_ext, max_ext);
}

static char notices[8][256];
static int nr_notices;

static void keep_notice(void *arg, const char *line)
{
	(void)arg;
	CHECK(nr_notices < 8);
	snprintf(notices[nr_notices++], sizeof(notices[0]), "%s", line);
}

static struct fuse_out_header last_reply;
static int replies;

static ssize_t capture_send(struct zc_req *req, const struct iovec *iov, int count)
{
	size_t n = 0;
	int i;

	(void)req;
	CHECK(count >= 1 && iov[0].iov_len >= sizeof(last_reply));
	memcpy(&last_reply, iov[0].iov_base, sizeof(last_reply));
	for (i = 0; i < count; i++)
		n += iov[i].iov_len;
	replies++;
	return (ssize_t)n;
}

static const struct zc_route capture = { .kind = ZC_ROUTE_DEV, .send = capture_send };

static struct zc_opts opts;
static struct zc_backend backend = { .ops = { .read = backend_read, .write = backend_write } };
static struct zc_notifier notifier = { .fn = keep_notice };
static struct zc_chan chan;
static char reply_buf[sizeof(struct fuse_out_header) + SIZE];

/* Serve one READ or WRITE of SIZE bytes of inode @ino: the reply's error. */
static int serve(uint32_t opcode, zc_ino_t ino)
{
	struct fuse_in_header hdr = { .opcode = opcode, .unique = 7, .nodeid = ino };
	struct zc_iter src;
	struct zc_req req;

	memset(&req, 0, sizeof(req));
	req.chan = &chan;
	req.route = &capture;
	req.dev_fd = -1;
	req.pipe[0] = req.pipe[1] = -1;
	req.hdr = &hdr;
	req.unique = hdr.unique;
	req.opcode = opcode;
	req.minor = 45;
	req.reply_buf = reply_buf;
	req.reply_room = SIZE;
	zc_iter_mem(&src, data, opcode == FUSE_WRITE ? SIZE : 0);
	req.src = &src;
	if (opcode == FUSE_READ)
		req.args.in.read.size = SIZE;
	else
		req.args.in.write.size = SIZE;
	replies = 0;
	if (opcode == FUSE_READ)
		zc_op_read(&req);
	else
		zc_op_write(&req);
	CHECK_EQ(replies, 1);
	return last_reply.error;
}

static void check_rule(uint32_t opcode, zc_ino_t ino, const char *rule)
{
	const char *op = opcode == FUSE_READ ? "read" : "write";
	int before = nr_notices, i;
	char want[64];

	/* Broken twice: EIO both times, one notice. */
	for (i = 0; i < 2; i++)
		CHECK_EQ(serve(opcode, ino), -EIO);
	CHECK_EQ(nr_notices, before + 1);
	snprintf(want, sizeof(want), "backend broke its contract in %s: ", op);
	CHECK_STR_CONTAINS(notices[before], want);
	CHECK_STR_CONTAINS(notices[before], rule);
}

static int init_refuses(const struct zc_ctx *ctx)
{
	(void)ctx;
	return -EPERM;
}

static void check_init_refusal(void)
{
	struct fuse_in_header hdr = { .opcode = FUSE_INIT, .unique = 2 };
	struct zc_backend refusing = { .ops = { .init = init_refuses } };
	struct zc_chan c = { .opts = &opts, .backend = &refusing, .notifier = &notifier };
	struct zc_req req;

	sem_init(&c.stop, 0, 0);
	memset(&req, 0, sizeof(req));
	req.chan = &c;
	req.route = &capture;
	req.hdr = &hdr;
	req.unique = hdr.unique;
	req.opcode = FUSE_INIT;
	req.reply_buf = reply_buf;
	req.reply_room = SIZE;
	req.args.in.init.major = FUSE_KERNEL_VERSION;
	req.args.in.init.minor = FUSE_KERNEL_MINOR_VERSION;
	replies = 0;
	zc_init_serve(&req);
	CHECK_EQ(replies, 1);
	CHECK_EQ(last_reply.error, -EPERM);
	CHECK_EQ(last_reply.len, sizeof(last_reply));
	CHECK_EQ(c.init_error, -EPERM);
	CHECK_EQ(c.exiting, 1);
	CHECK_EQ(c.error, -EPERM);
	sem_destroy(&c.stop);
}

/* A backend built against a newer header: taken while what this library lacks is unset. */
static void check_ops_size(void)
{
	struct {
		struct zc_backend_ops ops;
		void (*newer_op)(void);
	} newer = { .ops = { .read = backend_read } };
	struct zc_session *s;

	s = zc_session_new(&newer.ops, sizeof(newer), NULL);
	CHECK(s != NULL);
	zc_session_destroy(s);
	newer.newer_op = check_ops_size;
	errno = 0;
	CHECK(zc_session_new(&newer.ops, sizeof(newer), NULL) == NULL);
	CHECK_EQ(errno, EOPNOTSUPP);
	/* An older, shorter one is taken as it is. */
	s = zc_session_new(&newer.ops, sizeof(void *), NULL);
	CHECK(s != NULL);
	zc_session_destroy(s);
}

int main(void)
{
	char path[] = "/tmp/zcfuse-contract-XXXXXX";
	size_t max_write;

	good_fd = mkstemp(path);
	CHECK(good_fd >= 0);
	unlink(path);
	CHECK_EQ(pwrite(good_fd, data, SIZE, 0), SIZE);
	chan.opts = &opts;
	chan.backend = &backend;
	chan.notifier = &notifier;
	chan.dev_fd = -1;
	zc_data_policy_init(&chan.policy, false, 0, &max_write, &chan.stats);
	zc_data_reads_init(&chan.reads);

	/* Extents that keep the rules are served. */
	CHECK_EQ(serve(FUSE_READ, GOOD), 0);
	CHECK_EQ(last_reply.len, sizeof(last_reply) + SIZE);
	CHECK_EQ(serve(FUSE_WRITE, GOOD), 0);
	CHECK_EQ(nr_notices, 0);

	check_rule(FUSE_READ, TOO_MANY, "more extents than max_ext");
	check_rule(FUSE_READ, TOO_LONG, "longer in all than the request");
	check_rule(FUSE_READ, RESERVED, "reserved field is not 0");
	check_rule(FUSE_WRITE, NO_DATA, "neither fd nor mem");
	check_rule(FUSE_READ, HOLE_TOO_LONG, "hole");
	check_rule(FUSE_READ, BAD_FD, "not an open descriptor");
	/* Said once per rule, whichever operation breaks it again. */
	CHECK_EQ(serve(FUSE_WRITE, BAD_FD), -EIO);
	CHECK_EQ(serve(FUSE_WRITE, RESERVED), -EIO);
	CHECK_EQ(nr_notices, 6);
	CHECK_EQ(chan.stats.contract_broken, 14);
	/* A hole within the zeros kept is fine for a read. */
	CHECK_EQ(serve(FUSE_READ, NO_DATA), 0);
	close(good_fd);
	check_init_refusal();
	check_ops_size();
	return 0;
}
