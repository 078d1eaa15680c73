/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The /dev/fuse transport: receive loop, READ and WRITE data path, replies. */
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/fuse.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "fuse_kernel_ext.h"
#include "zc_chan.h"
#include "zc_util.h"
#include "zc_iter.h"
#include "zcfuse_i.h"

#ifndef FUSE_DEV_IOC_CLONE
#define FUSE_DEV_IOC_CLONE _IOR(229, 0, uint32_t)
#endif

/*
 * The kernel's limit (fuse max_pages_limit) serves copy mode. With splice a
 * request takes 1 + max_pages pipe slots, so max_write is one page less than
 * the pipe: 255 pages with a 1 MiB (256-slot) pipe.
 */
#define ZC_MAX_WRITE_PAGES 256UL
#define ZC_PIPE_WANT	   (1UL << 20)
/* Requests received through the pipe after a large write. */
#define ZC_PIPE_CREDIT 16
/* The headers in front of a WRITE's data. */
#define ZC_WRITE_HEADERS (sizeof(struct fuse_in_header) + sizeof(struct fuse_write_in))

struct zc_worker {
	struct zc_chan *chan;
	struct zc_worker *next;
	pthread_t thread;
	int dev_fd;
	bool own_dev_fd;
	bool spliceable;
	int req_pipe[2];
	char *buf;
	/* A READ of read_fh is between read() and read_done() (see zc_chan_wait_reads()). */
	bool in_read;
	uint64_t read_fh;
	/* Where a READ reply is built in memory: the header, then the data. */
	char *reply_buf;
};

/* The /dev/fuse descriptor replies go to on this thread (clone_fd). */
static __thread int zc_tls_dev_fd = -1;

int zc_chan_reply_fd(void)
{
	return zc_tls_dev_fd;
}

void zc_chan_set_reply_fd(int fd)
{
	zc_tls_dev_fd = fd;
}

/* The request this thread serves. */
static __thread uint64_t zc_tls_unique;

uint64_t zc_chan_current_unique(void)
{
	return zc_tls_unique;
}

/* The request this thread serves asks to clear setuid and setgid. */
static __thread bool zc_tls_kill_suidgid;

bool zc_chan_request_kills_suidgid(void)
{
	return zc_tls_kill_suidgid;
}

/*
 * Zeros for the holes of a read. Page-aligned, so that a hole takes the pipe
 * slots extent_slots() counts for it: a vmsplice into a full pipe blocks.
 */
static const char zc_zeros[ZC_PAGE * ZC_MAX_WRITE_PAGES + ZC_PAGE]
    __attribute__((aligned(ZC_PAGE)));

int zc_chan_init(struct zc_chan *c, struct zc_session *s, bool splice, size_t splice_threshold,
		 unsigned int max_workers, bool clone_fd)
{
	unsigned long pipe_max = ZC_PIPE_WANT;

	memset(c, 0, sizeof(*c));
	c->s = s;
	c->dev_fd = -1;
	c->clone_fd = clone_fd;
	c->max_workers = max_workers ? max_workers : 1;
	c->splice_threshold = splice_threshold;
	c->pipe_credit = ZC_PIPE_CREDIT;
	/*
	 * cache=never and direct_io files can still be mapped shared. Node
	 * ids live only as long as the kernel's lookups of them, so handles
	 * of the mount could not be opened once it forgot a node or after a
	 * remount: none are offered.
	 */
	c->want_flags2 = ZC_FUSE_DIRECT_IO_ALLOW_MMAP | ZC_FUSE_NO_EXPORT_SUPPORT;
	c->max_write = ZC_MAX_WRITE_PAGES * ZC_PAGE;
	c->bufsize = c->max_write + ZC_PAGE;
	if (splice) {
		/* A request needs 1 + max_pages pipe slots: fit max_write to the pipe. */
		if (zc_read_ulong_file("/proc/sys/fs/pipe-max-size", &pipe_max) < 0)
			pipe_max = 64 * 1024;
		if (pipe_max > ZC_PIPE_WANT)
			pipe_max = ZC_PIPE_WANT;
		pipe_max &= ~(ZC_PAGE - 1);
		if (pipe_max >= 32 * ZC_PAGE) {
			c->pipe_size = pipe_max;
			if (c->max_write > pipe_max - ZC_PAGE)
				c->max_write = pipe_max - ZC_PAGE;
			c->bufsize = c->max_write + ZC_PAGE;
			c->splice = true;
		} else {
			zc_stat_fallback(&c->stats, ZC_FALLBACK_PIPE_SIZE);
		}
	}
	pthread_mutex_init(&c->lock, NULL);
	if (sem_init(&c->stop, 0, 0) < 0)
		return -errno;
	return 0;
}

void zc_chan_fini(struct zc_chan *c)
{
	zc_waiter_stop_all(c);
	zc_uring_fini(c);
	zc_backing_fini(c);
	sem_destroy(&c->stop);
	pthread_mutex_destroy(&c->lock);
}

/*
 * Flags of the INIT reply that libfuse 3.14 does not know: the transport
 * sets them, when the kernel offered them, in the reply libfuse built.
 * FUSE_HANDLE_KILLPRIV_V2: the server clears setuid, setgid and
 * capabilities on write, truncate and chown, so the kernel need not ask for
 * security.capability before every write.
 * flags2 (FUSE_INIT_EXT): the bits in want_flags2 that the kernel offered;
 * kernel passthrough only without writeback caching, which the kernel
 * would otherwise switch it off for silently.
 */
static bool chan_amend_init_reply(struct zc_chan *c, struct iovec *iov, int count)
{
	struct fuse_out_header *out = iov[0].iov_base;
	struct fuse_init_out *init;
	uint32_t granted;

	if (!c->init_unique || count < 2 || iov[0].iov_len < sizeof(*out) ||
	    out->unique != c->init_unique)
		return false;
	c->init_unique = 0;
	if (out->error || iov[1].iov_len < offsetof(struct fuse_init_out, flags) + 4)
		return true;
	init = iov[1].iov_base;
	c->init_max_write = init->max_write;
	c->init_max_pages = 0;
	if ((init->flags & FUSE_MAX_PAGES) &&
	    iov[1].iov_len >= offsetof(struct fuse_init_out, map_alignment))
		c->init_max_pages = init->max_pages;
	if (c->kernel_flags & FUSE_HANDLE_KILLPRIV_V2) {
		init->flags |= FUSE_HANDLE_KILLPRIV_V2;
		c->killpriv_v2 = true;
	}
	granted = c->want_flags2 & c->kernel_flags2;
	if ((granted & ZC_FUSE_PASSTHROUGH) && (init->flags & FUSE_WRITEBACK_CACHE)) {
		granted &= ~ZC_FUSE_PASSTHROUGH;
		c->backing_refused = ZC_BACKING_REFUSED_WRITEBACK;
	}
	if (iov[1].iov_len < ZC_INIT_OUT_MAX_STACK_DEPTH + 4)
		granted = 0;
	/* The rings are sized for this reply's limits; without them, no ring. */
	if (granted & ZC_FUSE_OVER_IO_URING)
		granted &= ~zc_uring_init_reply(c);
	if (granted & ZC_FUSE_NO_EXPORT_SUPPORT)
		init->flags &= ~FUSE_EXPORT_SUPPORT;
	if (granted) {
		char *raw = iov[1].iov_base;
		uint32_t flags2;

		init->flags |= FUSE_INIT_EXT;
		memcpy(&flags2, raw + ZC_INIT_OUT_FLAGS2, sizeof(flags2));
		flags2 |= granted;
		memcpy(raw + ZC_INIT_OUT_FLAGS2, &flags2, sizeof(flags2));
		if (granted & ZC_FUSE_PASSTHROUGH) {
			uint32_t depth = ZC_PASSTHROUGH_STACK_DEPTH;

			memcpy(raw + ZC_INIT_OUT_MAX_STACK_DEPTH, &depth, sizeof(depth));
		}
	}
	c->flags2 = granted;
	if ((c->want_flags2 & ZC_FUSE_PASSTHROUGH) && !(granted & ZC_FUSE_PASSTHROUGH) &&
	    c->backing_refused == ZC_BACKING_REFUSED_NONE)
		c->backing_refused = ZC_BACKING_REFUSED_KERNEL;
	zc_backing_negotiated(c);
	return true;
}

/*
 * Send a reply from memory: into the ring entry this thread serves when it
 * answers that entry's request, else to /dev/fuse (@fd) in one write.
 * Returns the bytes sent, or -1 with errno set.
 */
static ssize_t chan_send(struct zc_chan *c, int fd, struct iovec *iov, int count)
{
	struct zc_iter dev, msg;
	ssize_t n;

	if (zc_uring_reply(c, iov, count, &n))
		return n;
	if (zc_iter_memv(&msg, iov, (unsigned int)count) < 0) {
		n = writev(fd, iov, count);
		if (n >= 0)
			zc_stat_bytes(&c->stats, ZC_BYTES_COPY, (uint64_t)n);
		return n;
	}
	zc_iter_stream(&dev, fd, msg.count);
	n = zc_move(&dev, &msg, msg.count, ZC_MOVE_ONCE, &c->stats);
	if (n < 0) {
		errno = (int)-n;
		return -1;
	}
	return n;
}

static ssize_t chan_io_writev(int fd, struct iovec *iov, int count, void *userdata)
{
	struct zc_session *s = userdata;
	bool init;
	ssize_t n;

	if (zc_tls_dev_fd >= 0)
		fd = zc_tls_dev_fd;
	init = chan_amend_init_reply(&s->chan, iov, count);
	zc_backing_amend_reply(iov, count);
	n = chan_send(&s->chan, fd, iov, count);
	if (init)
		zc_uring_init_sent(&s->chan, n >= 0);
	return n;
}

static ssize_t chan_io_read(int fd, void *buf, size_t len, void *userdata)
{
	(void)userdata;
	return read(fd, buf, len);
}

static const struct fuse_custom_io chan_io = {
	.writev = chan_io_writev,
	.read = chan_io_read,
};

int zc_chan_attach(struct zc_chan *c, int dev_fd)
{
	c->dev_fd = dev_fd;
	return fuse_session_custom_io(c->s->se, &chan_io, dev_fd) ? -EIO : 0;
}

static void close_pair(int p[2])
{
	if (p[0] >= 0)
		close(p[0]);
	if (p[1] >= 0)
		close(p[1]);
	p[0] = p[1] = -1;
}

static bool make_pipe(int p[2], size_t size)
{
	if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0) {
		p[0] = p[1] = -1;
		return false;
	}
	/* Fails with EPERM past fs.pipe-max-size or pipe-user-pages-soft. */
	if (fcntl(p[1], F_SETPIPE_SZ, (int)size) < (int)size) {
		close_pair(p);
		return false;
	}
	return true;
}

static void worker_free(struct zc_worker *w)
{
	close_pair(w->req_pipe);
	if (w->own_dev_fd)
		close(w->dev_fd);
	free(w->buf);
	free(w);
}

static struct zc_worker *worker_new(struct zc_chan *c)
{
	struct zc_worker *w = calloc(1, sizeof(*w));

	if (!w)
		return NULL;
	w->chan = c;
	w->req_pipe[0] = w->req_pipe[1] = -1;
	w->dev_fd = c->dev_fd;
	if (posix_memalign((void **)&w->buf, ZC_PAGE, c->bufsize)) {
		free(w);
		return NULL;
	}
	w->reply_buf = w->buf;
	if (c->clone_fd) {
		uint32_t master = (uint32_t)c->dev_fd;
		int fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);

		if (fd >= 0 && ioctl(fd, FUSE_DEV_IOC_CLONE, &master) == 0) {
			w->dev_fd = fd;
			w->own_dev_fd = true;
		} else if (fd >= 0) {
			close(fd);
		}
	}
	if (c->splice) {
		w->spliceable = make_pipe(w->req_pipe, c->pipe_size);
		if (!w->spliceable)
			zc_stat_fallback(&c->stats, ZC_FALLBACK_PIPE_SIZE);
	}
	return w;
}

/*
 * The next @len bytes of @it in memory: in place for a memory iterator,
 * else moved into @buf. NULL when fewer bytes are there.
 */
static void *iter_pull(struct zc_iter *it, void *buf, size_t len, struct zc_stats *st)
{
	struct zc_iter mem;

	if (it->count < len)
		return NULL;
	if (it->kind == ZC_ITER_MEM && it->iov_idx < it->nr_iov &&
	    it->iov[it->iov_idx].iov_len - it->iov_off >= len) {
		void *p = (char *)it->iov[it->iov_idx].iov_base + it->iov_off;

		zc_iter_advance(it, len);
		return p;
	}
	zc_iter_mem(&mem, buf, len);
	return zc_move(&mem, it, len, 0, st) == (ssize_t)len ? buf : NULL;
}

/* Discard what is left of a request in the pipe. */
static void iter_discard(struct zc_iter *it, struct zc_stats *st)
{
	if (it->kind == ZC_ITER_PIPE && it->count)
		zc_pipe_drain(it->fd, st);
	it->count = 0;
}

static int send_reply(struct zc_worker *w, uint64_t unique, int error, const void *arg,
		      size_t arglen)
{
	struct fuse_out_header out = {
		.len = (uint32_t)(sizeof(out) + (error ? 0 : arglen)),
		.error = error,
		.unique = unique,
	};
	struct iovec iov[2] = { { &out, sizeof(out) }, { (void *)arg, error ? 0 : arglen } };

	return chan_send(w->chan, w->dev_fd, iov, 2) < 0 ? -errno : 0;
}

static void ctx_from_header(struct zc_ctx *ctx, struct zc_req_priv *priv, struct zc_session *s,
			    const struct fuse_in_header *hdr)
{
	priv->s = s;
	priv->req = NULL;
	ctx->userdata = s->userdata;
	ctx->uid = hdr->uid;
	ctx->gid = hdr->gid;
	ctx->pid = hdr->pid;
	ctx->umask = 0;
	ctx->priv = priv;
}

/* Pipe slots that @ext would take: one per page it touches. */
static size_t extent_slots(const struct zc_extent *ext)
{
	uintptr_t start = ext->fd >= 0 ? (uintptr_t)ext->offset : (uintptr_t)ext->mem;

	if (!ext->length)
		return 0;
	return ((start & (ZC_PAGE - 1)) + ext->length + ZC_PAGE - 1) / ZC_PAGE;
}

static void extent_iter(struct zc_iter *it, const struct zc_extent *ext)
{
	if (ext->fd >= 0)
		zc_iter_file(it, ext->fd, ext->offset, ext->length);
	else
		zc_iter_mem(it, ext->mem ? ext->mem : (void *)zc_zeros, ext->length);
}

/*
 * Move the extents of a read into @dst until one comes up short (end of
 * file). Returns the bytes moved or, when none moved, a negative errno.
 */
static ssize_t gather_extents(struct zc_iter *dst, const struct zc_extent *ext, int n_ext,
			      struct zc_stats *st)
{
	ssize_t total = 0, n;
	int i;

	for (i = 0; i < n_ext; i++) {
		struct zc_iter src;

		extent_iter(&src, &ext[i]);
		n = zc_move(dst, &src, ext[i].length, ext[i].fd < 0 ? ZC_MOVE_GIFT : 0, st);
		if (n < 0)
			return total ? total : n;
		total += n;
		if ((size_t)n < ext[i].length)
			break;
	}
	return total;
}

/* READ reply built in memory: data after the header's room, one write. */
static int reply_read_mem(struct zc_worker *w, uint64_t unique, const struct zc_extent *ext,
			  int n_ext, size_t size)
{
	struct zc_chan *c = w->chan;
	struct fuse_out_header *out = (struct fuse_out_header *)w->reply_buf;
	struct zc_iter data;
	struct iovec iov;
	ssize_t total;

	zc_iter_mem(&data, w->reply_buf + sizeof(*out), size);
	total = gather_extents(&data, ext, n_ext, &c->stats);
	if (total < 0)
		return send_reply(w, unique, (int)total, NULL, 0);
	out->len = (uint32_t)(sizeof(*out) + (size_t)total);
	out->error = 0;
	out->unique = unique;
	iov.iov_base = w->reply_buf;
	iov.iov_len = out->len;
	zc_stat_add(&c->stats.data_read, (uint64_t)total);
	zc_stat_add(&c->stats.data_read_mem, (uint64_t)total);
	return chan_send(c, w->dev_fd, &iov, 1) < 0 ? -errno : 0;
}

/*
 * READ reply built in the worker's pipe: the header, written for the length
 * the extents promise, then the data spliced from the backing file behind
 * it, and the whole reply moved to /dev/fuse in one splice. When the data
 * comes up short (end of file), the header already in the pipe is not
 * patched: the reply is read back into memory and sent with the right
 * length by the copy path (counted as fallback.short_read).
 */
static int reply_read_pipe(struct zc_worker *w, uint64_t unique, const struct zc_extent *ext,
			   int n_ext, size_t expected)
{
	struct zc_chan *c = w->chan;
	struct fuse_out_header out = { .unique = unique };
	struct zc_iter reply_in, reply_out, hdr, dev, mem;
	ssize_t total, n;

	out.len = (uint32_t)(sizeof(out) + expected);
	zc_iter_mem(&hdr, &out, sizeof(out));
	zc_iter_pipe(&reply_in, w->req_pipe[1], c->pipe_size);
	if (zc_move(&reply_in, &hdr, sizeof(out), 0, &c->stats) != sizeof(out)) {
		zc_pipe_drain(w->req_pipe[0], &c->stats);
		return send_reply(w, unique, -EIO, NULL, 0);
	}
	total = gather_extents(&reply_in, ext, n_ext, &c->stats);
	if (total < 0) {
		zc_pipe_drain(w->req_pipe[0], &c->stats);
		return send_reply(w, unique, (int)total, NULL, 0);
	}
	if ((size_t)total != expected) {
		struct fuse_out_header *fixed = (struct fuse_out_header *)w->buf;

		zc_stat_fallback(&c->stats, ZC_FALLBACK_SHORT_READ);
		zc_iter_pipe(&reply_out, w->req_pipe[0], sizeof(out) + (size_t)total);
		zc_iter_mem(&mem, w->buf, sizeof(out) + (size_t)total);
		n = zc_move(&mem, &reply_out, mem.count, 0, &c->stats);
		if (n != (ssize_t)(sizeof(out) + (size_t)total)) {
			zc_pipe_drain(w->req_pipe[0], &c->stats);
			return send_reply(w, unique, -EIO, NULL, 0);
		}
		fixed->len = (uint32_t)n;
		zc_stat_add(&c->stats.data_read, (uint64_t)total);
		zc_stat_add(&c->stats.data_read_mem, (uint64_t)total);
		zc_iter_mem(&mem, w->buf, (size_t)n);
		zc_iter_stream(&dev, w->dev_fd, (size_t)n);
		n = zc_move(&dev, &mem, (size_t)n, ZC_MOVE_ONCE, &c->stats);
		return n < 0 ? (int)n : 0;
	}
	zc_iter_pipe(&reply_out, w->req_pipe[0], out.len);
	zc_iter_stream(&dev, w->dev_fd, out.len);
	zc_stat_add(&c->stats.data_read, (uint64_t)total);
	zc_stat_add(&c->stats.data_read_pipe, (uint64_t)total);
	n = zc_move(&dev, &reply_out, out.len, ZC_MOVE_ONCE, &c->stats);
	if (n != (ssize_t)out.len)
		zc_pipe_drain(w->req_pipe[0], &c->stats); /* interrupted: ENOENT */
	return n < 0 ? (int)n : 0;
}

static int check_extents(const struct zc_extent *ext, int n_ext, size_t size, bool reading)
{
	size_t total = 0;
	int i;

	if (n_ext > ZC_MAX_EXTENTS)
		return -EIO;
	for (i = 0; i < n_ext; i++) {
		if (ext[i].fd < 0 && !ext[i].mem && (!reading || ext[i].length > sizeof(zc_zeros)))
			return -EIO;
		total += ext[i].length;
	}
	return total > size ? -EIO : 0;
}

static void serve_read(struct zc_worker *w, const struct fuse_in_header *hdr, struct zc_iter *src)
{
	struct zc_chan *c = w->chan;
	struct zc_session *s = c->s;
	struct zc_extent ext[ZC_MAX_EXTENTS];
	const struct fuse_read_in *ri;
	struct zc_req_priv priv;
	uint64_t unique = hdr->unique, ino = hdr->nodeid, fh;
	struct zc_ctx ctx;
	size_t size, slots = 1, expected = 0;
	off_t off;
	int n_ext = -ENOSYS, i;

	ri = iter_pull(src, w->buf + sizeof(*hdr), sizeof(*ri), &c->stats);
	/* The reply is built in the same pipe: nothing of the request may stay. */
	iter_discard(src, &c->stats);
	if (!ri) {
		send_reply(w, unique, -EINVAL, NULL, 0);
		return;
	}
	fh = ri->fh;
	off = (off_t)ri->offset;
	size = ri->size;
	if (size > c->bufsize - sizeof(struct fuse_out_header)) {
		send_reply(w, unique, -EINVAL, NULL, 0);
		return;
	}
	ctx_from_header(&ctx, &priv, s, hdr);
	__atomic_store_n(&w->read_fh, fh, __ATOMIC_RELAXED);
	__atomic_store_n(&w->in_read, true, __ATOMIC_RELEASE);
	if (s->ops.read)
		n_ext = s->ops.read(&ctx, ino, fh, off, size, ext, ZC_MAX_EXTENTS);
	if (n_ext >= 0 && check_extents(ext, n_ext, size, true) < 0) {
		if (s->ops.read_done)
			s->ops.read_done(&ctx, ino, fh, ext, (unsigned int)n_ext);
		n_ext = -EIO;
	}
	if (n_ext < 0) {
		__atomic_store_n(&w->in_read, false, __ATOMIC_RELEASE);
		send_reply(w, unique, n_ext, NULL, 0);
		return;
	}
	for (i = 0; i < n_ext; i++) {
		slots += extent_slots(&ext[i]);
		expected += ext[i].length;
	}
	if (!c->splice || !w->spliceable) {
		reply_read_mem(w, unique, ext, n_ext, size);
	} else if (size < c->splice_threshold) {
		zc_stat_fallback(&c->stats, ZC_FALLBACK_SMALL);
		reply_read_mem(w, unique, ext, n_ext, size);
	} else if (slots > c->pipe_size / ZC_PAGE) {
		zc_stat_fallback(&c->stats, ZC_FALLBACK_PIPE_SIZE);
		reply_read_mem(w, unique, ext, n_ext, size);
	} else {
		reply_read_pipe(w, unique, ext, n_ext, expected);
	}
	/*
	 * Only now: memory the reply was vmspliced from is referenced by the
	 * pipe until the reply is sent. A release() of fh waits for this.
	 */
	if (s->ops.read_done)
		s->ops.read_done(&ctx, ino, fh, ext, (unsigned int)n_ext);
	__atomic_store_n(&w->in_read, false, __ATOMIC_RELEASE);
}

void zc_chan_wait_reads(struct zc_chan *c, uint64_t fh)
{
	struct zc_worker *w;
	bool busy;

	/* The kernel sends RELEASE after the last READ's reply: a short wait. */
	do {
		busy = false;
		pthread_mutex_lock(&c->lock);
		for (w = c->workers; w && !busy; w = w->next)
			busy = __atomic_load_n(&w->in_read, __ATOMIC_ACQUIRE) &&
			       __atomic_load_n(&w->read_fh, __ATOMIC_RELAXED) == fh;
		for (w = c->mem_readers; w && !busy; w = w->next)
			busy = __atomic_load_n(&w->in_read, __ATOMIC_ACQUIRE) &&
			       __atomic_load_n(&w->read_fh, __ATOMIC_RELAXED) == fh;
		pthread_mutex_unlock(&c->lock);
		if (busy)
			sched_yield();
	} while (busy);
}

static void serve_write(struct zc_worker *w, const struct fuse_in_header *hdr, struct zc_iter *src)
{
	struct zc_chan *c = w->chan;
	struct zc_session *s = c->s;
	struct zc_extent ext[ZC_MAX_EXTENTS];
	const struct fuse_write_in *wi;
	struct fuse_write_out wo = { 0 };
	struct zc_req_priv priv;
	uint64_t unique = hdr->unique, ino = hdr->nodeid, fh;
	ssize_t moved = 0, n;
	struct zc_ctx ctx;
	size_t size;
	off_t off;
	int n_ext = -ENOSYS, i;

	wi = iter_pull(src, w->buf + sizeof(*hdr), sizeof(*wi), &c->stats);
	if (!wi || wi->size != src->count) {
		iter_discard(src, &c->stats);
		send_reply(w, unique, -EINVAL, NULL, 0);
		return;
	}
	fh = wi->fh;
	off = (off_t)wi->offset;
	size = wi->size;
	ctx_from_header(&ctx, &priv, s, hdr);
	if (wi->write_flags & FUSE_WRITE_KILL_SUIDGID)
		zc_kill_suid_sgid(s, &ctx, ino, fh);
	if (s->ops.write)
		n_ext = s->ops.write(&ctx, ino, fh, off, size, ext, ZC_MAX_EXTENTS);
	if (n_ext >= 0 && check_extents(ext, n_ext, size, false) < 0)
		n_ext = -EIO;
	if (n_ext < 0) {
		moved = n_ext;
	} else {
		for (i = 0; i < n_ext; i++) {
			struct zc_iter dst;

			extent_iter(&dst, &ext[i]);
			n = zc_move(&dst, src, ext[i].length, 0, &c->stats);
			if (n < 0) {
				if (!moved)
					moved = n;
				break;
			}
			moved += n;
			if ((size_t)n < ext[i].length)
				break;
		}
	}
	iter_discard(src, &c->stats);
	if (moved > 0) {
		zc_stat_add(&c->stats.data_written, (uint64_t)moved);
		zc_stat_add(src->kind == ZC_ITER_PIPE ? &c->stats.data_written_pipe
						      : &c->stats.data_written_mem,
			    (uint64_t)moved);
	}
	if (s->ops.write_done)
		moved = s->ops.write_done(&ctx, ino, fh, off, moved);
	/* More large writes are likely to follow: receive them into the pipe. */
	if (size >= c->splice_threshold)
		__atomic_store_n(&c->pipe_credit, ZC_PIPE_CREDIT + 1, __ATOMIC_RELAXED);
	if (moved < 0) {
		send_reply(w, unique, (int)moved, NULL, 0);
		return;
	}
	wo.size = (uint32_t)moved;
	send_reply(w, unique, 0, &wo, sizeof(wo));
}

/* O_TMPFILE, which libfuse 3.14 answers ENOSYS to: served here, like CREATE. */
static void serve_tmpfile(struct zc_worker *w, const struct fuse_in_header *hdr,
			  struct zc_iter *src)
{
	struct zc_chan *c = w->chan;
	const struct fuse_create_in *in;
	struct zc_tmpfile_reply out;
	uint64_t unique = hdr->unique;
	ssize_t n;

	in = iter_pull(src, w->buf + sizeof(*hdr), sizeof(*in), &c->stats);
	iter_discard(src, &c->stats);
	if (!in) {
		send_reply(w, unique, -EINVAL, NULL, 0);
		return;
	}
	zc_tls_unique = unique;
	n = zc_dispatch_tmpfile(c->s, hdr, in, &out);
	if (n < 0) {
		zc_tls_unique = 0;
		send_reply(w, unique, (int)n, NULL, 0);
		return;
	}
	if (send_reply(w, unique, 0, &out, (size_t)n) == -ENOENT)
		zc_dispatch_tmpfile_undo(c->s, hdr, &out);
	zc_tls_unique = 0;
	zc_backing_reply_with(0);
}

/*
 * What the transport needs to know of a request libfuse will serve: the
 * kernel's INIT flags, and the requests that ask the server to clear
 * setuid and setgid (libfuse 3.14 passes neither on).
 */
static void peek_request(struct zc_chan *c, const struct fuse_in_header *hdr, const char *arg,
			 size_t len)
{
	switch (hdr->opcode) {
	case FUSE_INIT:
		if (len >= offsetof(struct fuse_init_in, flags) + 4) {
			const struct fuse_init_in *in = (const void *)arg;

			c->kernel_minor = in->minor;
			c->kernel_flags = in->flags;
			c->kernel_flags2 = 0;
			if ((in->flags & FUSE_INIT_EXT) &&
			    len >= offsetof(struct fuse_init_in, flags2) + 4)
				c->kernel_flags2 = in->flags2;
			c->init_unique = hdr->unique;
		}
		break;
	case FUSE_SETATTR:
		if (len >= sizeof(struct fuse_setattr_in))
			zc_tls_kill_suidgid =
			    ((const struct fuse_setattr_in *)arg)->valid & FATTR_KILL_SUIDGID;
		break;
	case FUSE_OPEN:
		if (len >= sizeof(struct fuse_open_in))
			zc_tls_kill_suidgid =
			    ((const struct fuse_open_in *)arg)->open_flags & FUSE_OPEN_KILL_SUIDGID;
		break;
	case FUSE_CREATE:
		if (len >= sizeof(struct fuse_create_in))
			zc_tls_kill_suidgid = ((const struct fuse_create_in *)arg)->open_flags &
					      FUSE_OPEN_KILL_SUIDGID;
		break;
	}
}

/*
 * Requests libfuse 3.14 mishandles, checked before it sees them: a
 * BATCH_FORGET whose count runs past the message (libfuse reads the
 * entries unchecked), and a NOTIFY_REPLY, which answers a
 * FUSE_NOTIFY_RETRIEVE that zcfuse never sends (libfuse leaks the request
 * when nothing waits for it). Neither gets a reply. True to drop @hdr.
 */
static bool request_malformed(const struct fuse_in_header *hdr, const char *arg, size_t len)
{
	const struct fuse_batch_forget_in *bf = (const void *)arg;

	switch (hdr->opcode) {
	case FUSE_BATCH_FORGET:
		return len < sizeof(*bf) ||
		       bf->count > (len - sizeof(*bf)) / sizeof(struct fuse_forget_one);
	case FUSE_NOTIFY_REPLY:
		return true;
	}
	return false;
}

static void maybe_spawn(struct zc_chan *c);

/*
 * Serve the request of @n bytes that @src holds (a pipe or memory, headers
 * first), received at @t0.
 */
static void chan_serve(struct zc_worker *w, struct zc_iter *src, ssize_t n, uint64_t t0)
{
	struct zc_chan *c = w->chan;
	struct fuse_in_header *hdr;
	unsigned int credit;
	uint32_t opcode;

	hdr = iter_pull(src, w->buf, sizeof(*hdr), &c->stats);
	if (!hdr || hdr->len != (uint64_t)n) {
		iter_discard(src, &c->stats);
		if (hdr)
			send_reply(w, hdr->unique, -EIO, NULL, 0);
		return;
	}
	opcode = hdr->opcode;
	zc_stats_request(&c->stats, opcode);
	if (opcode == FUSE_READ) {
		serve_read(w, hdr, src);
	} else if (opcode == FUSE_WRITE) {
		serve_write(w, hdr, src);
	} else if (opcode == FUSE_TMPFILE) {
		serve_tmpfile(w, hdr, src);
	} else {
		struct fuse_buf fbuf = { .mem = w->buf, .size = (size_t)n };
		char *rest =
		    iter_pull(src, w->buf + sizeof(*hdr), (size_t)n - sizeof(*hdr), &c->stats);

		if (!rest && n > (ssize_t)sizeof(*hdr)) {
			send_reply(w, hdr->unique, -EIO, NULL, 0);
			return;
		}
		if (request_malformed(hdr, rest, (size_t)n - sizeof(*hdr)))
			return;
		peek_request(c, hdr, rest, (size_t)n - sizeof(*hdr));
		zc_tls_unique = hdr->unique;
		fuse_session_process_buf(c->s->se, &fbuf);
		zc_tls_unique = 0;
		zc_tls_kill_suidgid = false;
		zc_backing_reply_with(0);
	}
	zc_stats_latency(&c->stats, zc_now_usec() - t0);
	/* Every request but a large write uses up some of the credit. */
	credit = __atomic_load_n(&c->pipe_credit, __ATOMIC_RELAXED);
	if (credit)
		__atomic_compare_exchange_n(&c->pipe_credit, &credit, credit - 1, false,
					    __ATOMIC_RELAXED, __ATOMIC_RELAXED);
}

void zc_chan_serve_mem(struct zc_chan *c, void *req, size_t len, void *reply_buf)
{
	struct zc_worker w = {
		.chan = c,
		.dev_fd = c->dev_fd,
		.req_pipe = { -1, -1 },
		.buf = req,
		.reply_buf = reply_buf,
	};
	const struct fuse_in_header *hdr = req;
	bool reading = len >= sizeof(*hdr) && hdr->opcode == FUSE_READ;
	struct zc_worker **p;
	struct zc_iter src;

	/* A RELEASE served meanwhile must wait for this READ's read_done(). */
	if (reading) {
		pthread_mutex_lock(&c->lock);
		w.next = c->mem_readers;
		c->mem_readers = &w;
		pthread_mutex_unlock(&c->lock);
	}
	zc_iter_mem(&src, req, len);
	chan_serve(&w, &src, (ssize_t)len, zc_now_usec());
	if (reading) {
		pthread_mutex_lock(&c->lock);
		for (p = &c->mem_readers; *p != &w; p = &(*p)->next)
			;
		*p = w.next;
		pthread_mutex_unlock(&c->lock);
	}
}

/* Receive one request and serve it; -errno when receiving failed. */
static int worker_serve_one(struct zc_worker *w)
{
	struct zc_chan *c = w->chan;
	struct zc_iter dev, in, src;
	bool via_pipe =
	    c->splice && w->spliceable && __atomic_load_n(&c->pipe_credit, __ATOMIC_RELAXED);
	uint64_t t0;
	ssize_t n;

	zc_iter_stream(&dev, w->dev_fd, c->bufsize);
	if (via_pipe)
		zc_iter_pipe(&in, w->req_pipe[1], c->pipe_size);
	else
		zc_iter_mem(&in, w->buf, c->bufsize);
	n = zc_move(&in, &dev, c->bufsize, ZC_MOVE_ONCE, &c->stats);
	if (n < 0)
		return (int)n;
	if (n == 0)
		return -ENODEV;
	t0 = zc_now_usec();
	zc_stat_add(&c->stats.dev_requests, 1);
	if (__atomic_sub_fetch(&c->idle, 1, __ATOMIC_ACQ_REL) == 0)
		maybe_spawn(c);

	if (via_pipe) {
		zc_iter_pipe(&src, w->req_pipe[0], (size_t)n);
		/* Too small to splice onwards: one read takes all of it. */
		if ((size_t)n < ZC_WRITE_HEADERS + c->splice_threshold) {
			zc_iter_mem(&in, w->buf, (size_t)n);
			if (zc_move(&in, &src, (size_t)n, 0, &c->stats) != n) {
				iter_discard(&src, &c->stats);
				goto out;
			}
			zc_iter_mem(&src, w->buf, (size_t)n);
		}
	} else {
		zc_iter_mem(&src, w->buf, (size_t)n);
	}
	chan_serve(w, &src, n, t0);
out:
	__atomic_add_fetch(&c->idle, 1, __ATOMIC_ACQ_REL);
	return 0;
}

static void chan_stop(struct zc_chan *c, int error)
{
	if (__atomic_exchange_n(&c->exiting, 1, __ATOMIC_ACQ_REL) == 0) {
		c->error = error;
		sem_post(&c->stop);
	}
}

void zc_chan_stop(struct zc_chan *c, int error)
{
	chan_stop(c, error);
}

static void *worker_main(void *arg)
{
	struct zc_worker *w = arg;
	struct zc_chan *c = w->chan;
	int r;

	/* Names show in top -H and /proc/PID/task/TID/comm. */
	pthread_setname_np(pthread_self(), "zcfuse-dev");
	zc_tls_dev_fd = w->dev_fd;
	while (!__atomic_load_n(&c->exiting, __ATOMIC_ACQUIRE)) {
		r = worker_serve_one(w);
		if (r == 0 || r == -EINTR || r == -EAGAIN)
			continue;
		if (r == -ENOENT)
			continue; /* the request was interrupted before it was read */
		/* ENODEV: unmounted. Anything else is fatal for the mount. */
		chan_stop(c, r == -ENODEV ? 0 : r);
		break;
	}
	return NULL;
}

/*
 * Start a worker thread unless the limit is reached or the transport is
 * stopping. The thread is created under the lock, so that the list never
 * holds a worker without a thread and stop_workers() sees every one.
 */
static int start_worker(struct zc_chan *c)
{
	struct zc_worker *w;
	sigset_t all, old;
	bool room;
	int r = 0;

	/* Cheap check first: a worker costs a buffer and a pipe to set up. */
	pthread_mutex_lock(&c->lock);
	room = c->nr_workers < c->max_workers;
	pthread_mutex_unlock(&c->lock);
	if (!room)
		return 0;
	w = worker_new(c);
	if (!w)
		return -ENOMEM;
	/* Workers take only the stop signal; SIGINT and friends go to the main thread. */
	sigfillset(&all);
	sigdelset(&all, ZC_STOP_SIGNAL);
	pthread_mutex_lock(&c->lock);
	if (__atomic_load_n(&c->exiting, __ATOMIC_ACQUIRE) || c->nr_workers >= c->max_workers) {
		pthread_mutex_unlock(&c->lock);
		worker_free(w);
		return 0;
	}
	__atomic_add_fetch(&c->idle, 1, __ATOMIC_ACQ_REL);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = -pthread_create(&w->thread, NULL, worker_main, w);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r == 0) {
		w->next = c->workers;
		c->workers = w;
		c->nr_workers++;
	} else {
		__atomic_sub_fetch(&c->idle, 1, __ATOMIC_ACQ_REL);
	}
	pthread_mutex_unlock(&c->lock);
	if (r < 0)
		worker_free(w);
	return r;
}

/* All workers are busy: start another, up to the limit. */
static void maybe_spawn(struct zc_chan *c)
{
	start_worker(c);
}

static struct zc_chan *zc_signal_chan;

static void on_stop_signal(int sig)
{
	(void)sig;
	if (zc_signal_chan)
		chan_stop(zc_signal_chan, 0);
}

static void on_wake_signal(int sig)
{
	(void)sig;
}

static int install_handlers(struct zc_chan *c, struct sigaction old[4])
{
	static const int stop_signals[3] = { SIGINT, SIGTERM, SIGHUP };
	struct sigaction sa;
	int i;

	zc_signal_chan = c;
	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_stop_signal; /* no SA_RESTART: blocking calls return EINTR */
	for (i = 0; i < 3; i++)
		if (sigaction(stop_signals[i], &sa, &old[i]) < 0)
			return -errno;
	sa.sa_handler = on_wake_signal;
	if (sigaction(ZC_STOP_SIGNAL, &sa, &old[3]) < 0)
		return -errno;
	return 0;
}

static void restore_handlers(struct sigaction old[4])
{
	sigaction(SIGINT, &old[0], NULL);
	sigaction(SIGTERM, &old[1], NULL);
	sigaction(SIGHUP, &old[2], NULL);
	sigaction(ZC_STOP_SIGNAL, &old[3], NULL);
	zc_signal_chan = NULL;
}

/*
 * Wake every worker out of its blocking receive until all have ended, then
 * the lock waiters, which may reply to a worker's cloned descriptor.
 */
static void stop_workers(struct zc_chan *c)
{
	struct zc_worker *list, *w, *next;

	/* exiting is set: from here on no worker is added. */
	pthread_mutex_lock(&c->lock);
	list = c->workers;
	c->workers = NULL;
	c->nr_workers = 0;
	pthread_mutex_unlock(&c->lock);
	for (w = list; w; w = w->next)
		zc_stop_thread(w->thread);
	zc_waiter_stop_all(c);
	for (w = list; w; w = next) {
		next = w->next;
		worker_free(w);
	}
}

int zc_chan_run(struct zc_chan *c, bool single)
{
	struct sigaction old[4];
	struct zc_worker *w;
	int r;

	r = install_handlers(c, old);
	if (r < 0)
		goto out;
	zc_waiter_enable(c);
	if (single) {
		c->max_workers = 1;
		w = worker_new(c);
		if (!w) {
			r = -ENOMEM;
			goto out;
		}
		c->nr_workers = 1;
		c->idle = 1;
		worker_main(w);
		zc_waiter_stop_all(c);
		worker_free(w);
		c->nr_workers = 0;
		zc_uring_stop(c);
	} else {
		r = start_worker(c);
		if (r < 0)
			goto out;
		while (sem_wait(&c->stop) < 0 && errno == EINTR)
			;
		stop_workers(c);
		zc_uring_stop(c);
	}
	r = c->error;
out:
	restore_handlers(old);
	return r;
}

/*
 * One worker served on the calling thread, one request per call, as -s
 * would: for tests and the fuzz target, which feed the device descriptor
 * themselves.
 */
struct zc_worker *zc_chan_worker_new(struct zc_chan *c)
{
	struct zc_worker *w = worker_new(c);

	if (w) {
		c->max_workers = 1;
		c->nr_workers = 1;
	}
	return w;
}

int zc_chan_worker_serve_one(struct zc_worker *w)
{
	w->chan->idle = 1;
	zc_tls_dev_fd = w->dev_fd;
	return worker_serve_one(w);
}

void zc_chan_worker_free(struct zc_worker *w)
{
	w->chan->nr_workers = 0;
	worker_free(w);
}
