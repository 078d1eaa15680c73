/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The data path: READ replies and WRITE data, moved as the data policy says. */
#include <errno.h>
#include <linux/fuse.h>
#include <sched.h>
#include <string.h>

#include "zc_chan.h"
#include "zc_contract.h"
#include "zc_data.h"
#include "zc_iter.h"
#include "zc_req.h"
#include "zc_util.h"

/*
 * ZC_MAX_WRITE_PAGES: the kernel's limit (fuse max_pages_limit) serves copy mode. With splice a
 * request takes 1 + max_pages pipe slots, so max_write is one page less than
 * the pipe: 255 pages with a 1 MiB (256-slot) pipe, the most that
 * fs.pipe-max-size allows by default. Where it allows 2 MiB (512 slots; a
 * pipe's size is a power of two pages), max_write is the kernel's 256 pages
 * and a 1 MiB read or write is one request instead of two.
 */
#define ZC_PIPE_WANT (2UL << 20)
/* The headers in front of a WRITE's data. */
#define ZC_WRITE_HEADERS (sizeof(struct fuse_in_header) + sizeof(struct fuse_write_in))

/*
 * Zeros for the holes of a read. Page-aligned, so that a hole takes the pipe
 * slots extent_slots() counts for it: a vmsplice into a full pipe blocks.
 */
static const char zc_zeros[ZC_DATA_ZEROS] __attribute__((aligned(ZC_PAGE)));

void zc_data_policy_init(struct zc_data_policy *p, bool splice, size_t threshold,
			 size_t *ret_max_write, struct zc_stats *st)
{
	unsigned long pipe_max = ZC_PIPE_WANT;

	memset(p, 0, sizeof(*p));
	p->threshold = threshold;
	p->credit = ZC_PIPE_CREDIT;
	*ret_max_write = ZC_MAX_WRITE_PAGES * ZC_PAGE;
	if (!splice)
		return;
	/* A request needs 1 + max_pages pipe slots: fit max_write to the pipe. */
	if (zc_read_ulong_file("/proc/sys/fs/pipe-max-size", &pipe_max) < 0)
		pipe_max = 64 * 1024;
	if (pipe_max > ZC_PIPE_WANT)
		pipe_max = ZC_PIPE_WANT;
	pipe_max &= ~(ZC_PAGE - 1);
	/* The kernel rounds a pipe up to a power of two pages: ask for no more than it gives. */
	while (pipe_max & (pipe_max - 1))
		pipe_max &= pipe_max - 1;
	if (pipe_max < 32 * ZC_PAGE) {
		zc_stat_fallback(st, ZC_FALLBACK_PIPE_SIZE);
		return;
	}
	p->pipe_size = pipe_max;
	if (*ret_max_write > pipe_max - ZC_PAGE)
		*ret_max_write = pipe_max - ZC_PAGE;
	p->splice = true;
}

bool zc_data_receive_into_pipe(const struct zc_data_policy *p, bool have_pipe)
{
	return p->splice && have_pipe && __atomic_load_n(&p->credit, __ATOMIC_RELAXED);
}

bool zc_data_keep_in_pipe(const struct zc_data_policy *p, size_t len)
{
	return len >= ZC_WRITE_HEADERS + p->threshold;
}

void zc_data_served(struct zc_data_policy *p, uint32_t opcode, size_t size)
{
	unsigned int credit;

	/* More large writes are likely to follow: receive them into the pipe. */
	if (opcode == FUSE_WRITE && size >= p->threshold)
		__atomic_store_n(&p->credit, ZC_PIPE_CREDIT + 1, __ATOMIC_RELAXED);
	/* Every request uses up some of the credit. */
	credit = __atomic_load_n(&p->credit, __ATOMIC_RELAXED);
	if (credit)
		__atomic_compare_exchange_n(&p->credit, &credit, credit - 1, false,
					    __ATOMIC_RELAXED, __ATOMIC_RELAXED);
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
static ssize_t gather_extents(struct zc_chan *c, struct zc_iter *dst, const struct zc_extent *ext,
			      int n_ext)
{
	ssize_t total = 0, n;
	int i;

	for (i = 0; i < n_ext; i++) {
		struct zc_iter src;

		extent_iter(&src, &ext[i]);
		n = zc_move(dst, &src, ext[i].length, ext[i].fd < 0 ? ZC_MOVE_GIFT : 0, &c->stats);
		if (n == -EBADF && ext[i].fd >= 0)
			return zc_contract_broken(c, ZC_RULE_EXTENT_BAD_FD, "read");
		if (n < 0)
			return total ? total : n;
		total += n;
		if ((size_t)n < ext[i].length)
			break;
	}
	return total;
}

/* READ reply built in memory: data after the header's room, sent in one piece. */
static void reply_read_mem(struct zc_req *req, const struct zc_extent *ext, int n_ext, size_t size)
{
	struct zc_stats *st = &req->chan->stats;
	struct fuse_out_header *out = (struct fuse_out_header *)req->reply_buf;
	struct zc_iter data;
	struct iovec iov;
	ssize_t total;

	zc_iter_mem(&data, req->reply_buf + sizeof(*out), size);
	total = gather_extents(req->chan, &data, ext, n_ext);
	if (total < 0) {
		zc_req_reply(req, (int)total, NULL, 0);
		return;
	}
	out->len = (uint32_t)(sizeof(*out) + (size_t)total);
	out->error = 0;
	out->unique = req->unique;
	iov.iov_base = req->reply_buf;
	iov.iov_len = out->len;
	zc_stat_add(&st->data_read, (uint64_t)total);
	zc_stat_add(&st->data_read_mem, (uint64_t)total);
	zc_req_send(req, &iov, 1);
}

/*
 * READ reply built in the request's pipe: the header, written for the length
 * the extents promise, then the data spliced from the backing file behind
 * it, and the whole reply sent from the pipe in one splice. When the data
 * comes up short (end of file), the header already in the pipe is not
 * patched: the reply is read back into memory and sent with the right
 * length (counted as fallback.short_read).
 */
static void reply_read_pipe(struct zc_req *req, const struct zc_extent *ext, int n_ext,
			    size_t expected)
{
	struct zc_chan *c = req->chan;
	struct zc_stats *st = &c->stats;
	struct fuse_out_header out = { .unique = req->unique };
	struct zc_iter reply_in, reply_out, hdr, mem;
	struct iovec iov;
	ssize_t total, n;

	out.len = (uint32_t)(sizeof(out) + expected);
	zc_iter_mem(&hdr, &out, sizeof(out));
	zc_iter_pipe(&reply_in, req->pipe[1], c->policy.pipe_size);
	if (zc_move(&reply_in, &hdr, sizeof(out), 0, st) != sizeof(out)) {
		zc_pipe_drain(req->pipe[0], st);
		zc_req_reply(req, -EIO, NULL, 0);
		return;
	}
	total = gather_extents(c, &reply_in, ext, n_ext);
	if (total < 0) {
		zc_pipe_drain(req->pipe[0], st);
		zc_req_reply(req, (int)total, NULL, 0);
		return;
	}
	if ((size_t)total != expected) {
		struct fuse_out_header *fixed = (struct fuse_out_header *)req->reply_buf;

		zc_stat_fallback(st, ZC_FALLBACK_SHORT_READ);
		zc_iter_pipe(&reply_out, req->pipe[0], sizeof(out) + (size_t)total);
		zc_iter_mem(&mem, req->reply_buf, sizeof(out) + (size_t)total);
		n = zc_move(&mem, &reply_out, mem.count, 0, st);
		if (n != (ssize_t)(sizeof(out) + (size_t)total)) {
			zc_pipe_drain(req->pipe[0], st);
			zc_req_reply(req, -EIO, NULL, 0);
			return;
		}
		fixed->len = (uint32_t)n;
		zc_stat_add(&st->data_read, (uint64_t)total);
		zc_stat_add(&st->data_read_mem, (uint64_t)total);
		iov.iov_base = req->reply_buf;
		iov.iov_len = (size_t)n;
		zc_req_send(req, &iov, 1);
		return;
	}
	zc_stat_add(&st->data_read, (uint64_t)total);
	zc_stat_add(&st->data_read_pipe, (uint64_t)total);
	n = zc_req_send_pipe(req, out.len);
	if (n != (ssize_t)out.len)
		zc_pipe_drain(req->pipe[0], st); /* interrupted: ENOENT */
}

void zc_data_reply_read(struct zc_req *req, const struct zc_extent *ext, int n_ext, size_t size)
{
	const struct zc_data_policy *p = &req->chan->policy;
	struct zc_stats *st = &req->chan->stats;
	size_t slots = 1, expected = 0;
	int i;

	for (i = 0; i < n_ext; i++) {
		slots += extent_slots(&ext[i]);
		expected += ext[i].length;
	}
	if (!p->splice || req->route->kind != ZC_ROUTE_DEV_SPLICE) {
		reply_read_mem(req, ext, n_ext, size);
	} else if (size < p->threshold) {
		zc_stat_fallback(st, ZC_FALLBACK_SMALL);
		reply_read_mem(req, ext, n_ext, size);
	} else if (slots > p->pipe_size / ZC_PAGE) {
		zc_stat_fallback(st, ZC_FALLBACK_PIPE_SIZE);
		reply_read_mem(req, ext, n_ext, size);
	} else {
		reply_read_pipe(req, ext, n_ext, expected);
	}
}

ssize_t zc_data_write(struct zc_req *req, const struct zc_extent *ext, int n_ext)
{
	struct zc_stats *st = &req->chan->stats;
	struct zc_iter *src = req->src;
	ssize_t moved = 0, n;
	int i;

	for (i = 0; i < n_ext; i++) {
		struct zc_iter dst;

		extent_iter(&dst, &ext[i]);
		n = zc_move(&dst, src, ext[i].length, 0, st);
		if (n == -EBADF && ext[i].fd >= 0)
			n = zc_contract_broken(req->chan, ZC_RULE_EXTENT_BAD_FD, "write");
		if (n < 0) {
			if (!moved)
				moved = n;
			break;
		}
		moved += n;
		if ((size_t)n < ext[i].length)
			break;
	}
	if (moved > 0) {
		zc_stat_add(&st->data_written, (uint64_t)moved);
		zc_stat_add(src->kind == ZC_ITER_PIPE ? &st->data_written_pipe
						      : &st->data_written_mem,
			    (uint64_t)moved);
	}
	zc_iter_discard(src, st);
	return moved;
}

void zc_data_reads_init(struct zc_data_reads *r)
{
	unsigned int i;

	for (i = 0; i < ZC_DATA_READ_BUCKETS; i++) {
		pthread_mutex_init(&r->bucket[i].lock, NULL);
		r->bucket[i].head = NULL;
	}
}

void zc_data_reads_fini(struct zc_data_reads *r)
{
	unsigned int i;

	for (i = 0; i < ZC_DATA_READ_BUCKETS; i++)
		pthread_mutex_destroy(&r->bucket[i].lock);
}

/* The bucket of file handle @fh: READs of different files rarely share a lock. */
static unsigned int read_bucket(uint64_t fh)
{
	return (unsigned int)((fh * 0x9E3779B97F4A7C15ULL) >> 58);
}

void zc_data_read_begin(struct zc_req *req, uint64_t fh)
{
	struct zc_data_reads *r = &req->chan->reads;
	unsigned int b = read_bucket(fh);

	req->read_fh = fh;
	pthread_mutex_lock(&r->bucket[b].lock);
	req->next_read = r->bucket[b].head;
	r->bucket[b].head = req;
	pthread_mutex_unlock(&r->bucket[b].lock);
}

void zc_data_read_end(struct zc_req *req)
{
	struct zc_data_reads *r = &req->chan->reads;
	unsigned int b = read_bucket(req->read_fh);
	struct zc_req **p;

	pthread_mutex_lock(&r->bucket[b].lock);
	for (p = &r->bucket[b].head; *p && *p != req; p = &(*p)->next_read)
		;
	if (*p)
		*p = req->next_read;
	pthread_mutex_unlock(&r->bucket[b].lock);
	req->next_read = NULL;
}

void zc_data_wait_reads(struct zc_chan *c, uint64_t fh)
{
	struct zc_data_reads *r = &c->reads;
	unsigned int b = read_bucket(fh);
	struct zc_req *q;
	bool busy;

	/* The kernel sends RELEASE after the last READ's reply: a short wait. */
	do {
		busy = false;
		pthread_mutex_lock(&r->bucket[b].lock);
		for (q = r->bucket[b].head; q && !busy; q = q->next_read)
			busy = q->read_fh == fh;
		pthread_mutex_unlock(&r->bucket[b].lock);
		if (busy)
			sched_yield();
	} while (busy);
}
