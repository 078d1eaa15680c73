/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * FUSE over io_uring at work: the queue threads and their pools take
 * requests out of ring entries, serve them through zc_dispatch() with the
 * ring route (replies go into the entry), and commit the entries. See
 * zc_uring.c for the design.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "fuse_kernel_ext.h"
#include "zc_uring_i.h"
#include "zc_uring_ent.h"
#include "zc_chan.h"
#include "zc_dispatch.h"
#include "zc_iter.h"
#include "zc_req.h"
#include "zc_uring.h"
#include "zc_util.h"
#include "zc_watchdog.h"
#include "zc_notice.h"

static void prep_cmd(struct zc_uring_queue *q, struct io_uring_sqe *sqe, struct zc_uring_ent *ent,
		     uint32_t op)
{
	struct zc_fuse_uring_cmd_req *req;

	memset(sqe, 0, 2 * sizeof(*sqe)); /* an SQE128 spans two */
	sqe->opcode = IORING_OP_URING_CMD;
	sqe->flags = IOSQE_FIXED_FILE;
	sqe->fd = 0;
	sqe->cmd_op = op;
	io_uring_sqe_set_data(sqe, ent);
	req = (struct zc_fuse_uring_cmd_req *)sqe->cmd;
	req->qid = (uint16_t)q->qid;
	if (op == ZC_FUSE_IO_URING_CMD_REGISTER) {
		sqe->addr = (uint64_t)(uintptr_t)ent->iov;
		sqe->len = 2;
	} else {
		req->commit_id = ent->commit_id;
	}
	ent->registering = op == ZC_FUSE_IO_URING_CMD_REGISTER;
}

/* A free submission slot of @ring; when none is free, what waits is submitted. */
static struct io_uring_sqe *ring_sqe(struct io_uring *ring)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(ring);

	if (sqe)
		return sqe;
	/* One command per entry at most: only after a full batch. */
	io_uring_submit(ring);
	return io_uring_get_sqe(ring);
}

/*
 * Queue @op for @ent on @ring, which only its own thread submits to; the
 * entry's next request comes to that ring's thread.
 */
int zc_uring_ent_cmd(struct io_uring *ring, struct zc_uring_ent *ent, uint32_t op)
{
	struct io_uring_sqe *sqe = ring_sqe(ring);

	if (!sqe)
		return -EBUSY;
	prep_cmd(ent->q, sqe, ent, op);
	return 0;
}

/* A reply into the entry: the header to its header, the arguments to its payload. */
static ssize_t ring_send(struct zc_req *req, const struct iovec *iov, int count)
{
	struct zc_uring_ent *ent = req->transport;
	struct zc_chan *c = req->chan;
	struct fuse_out_header out;
	size_t off = 0, total = 0, copied = 0, skip = sizeof(out);
	bool too_big = false;
	int i;

	if (ent->replied || count < 1 || iov[0].iov_len < sizeof(out))
		return -EINVAL;
	memcpy(&out, iov[0].iov_base, sizeof(out));
	for (i = 0; i < count; i++) {
		const char *base = iov[i].iov_base;
		size_t len = iov[i].iov_len;

		total += len;
		if (skip) {
			size_t n = len < skip ? len : skip;

			base += n;
			len -= n;
			skip -= n;
		}
		if (!len || out.error)
			continue;
		if (off + len > ent->q->u->payload_size) {
			too_big = true;
			break;
		}
		if (base != ent->payload + off) {
			memmove(ent->payload + off, base, len);
			copied += len;
		}
		off += len;
	}
	if (too_big) {
		out.error = -EIO;
		off = 0;
	}
	if (out.error)
		off = 0;
	out.len = (uint32_t)(sizeof(out) + off);
	memcpy(ent->hdr->in_out, &out, sizeof(out));
	ent->hdr->ring_ent_in_out.payload_sz = (uint32_t)off;
	ent->replied = true;
	zc_stat_add(&c->stats.uring_payload_out, off);
	if (copied)
		zc_stat_add(&c->stats.uring_payload_copied, copied);
	return (ssize_t)total;
}

static void efd_kick(int efd)
{
	uint64_t one = 1;

	if (write(efd, &one, sizeof(one)) < 0) {
		/* Cannot fail for a counter far from its limit. */
	}
}

/*
 * Hand a served entry back to the queue thread, which commits it; wake it
 * when the list was empty.
 */
static void ent_done(struct zc_uring_ent *ent)
{
	struct zc_uring_queue *q = ent->q;
	bool wake;

	pthread_mutex_lock(&q->done_lock);
	wake = !q->done;
	ent->next_done = q->done;
	q->done = ent;
	pthread_mutex_unlock(&q->done_lock);
	if (wake)
		efd_kick(q->efd);
}

/* Lock waiters keep entries of the queue's lock room only: uring_depth serve the rest. */
static int ring_keep(struct zc_req *req)
{
	struct zc_uring_ent *ent = req->transport;
	struct zc_uring_queue *q = ent->q;

	if (__atomic_add_fetch(&q->nr_kept, 1, __ATOMIC_ACQ_REL) > q->u->lock_room) {
		__atomic_sub_fetch(&q->nr_kept, 1, __ATOMIC_ACQ_REL);
		return -ENOLCK;
	}
	ent->kept = true;
	return 0;
}

static void ring_unkeep(struct zc_req *req)
{
	struct zc_uring_ent *ent = req->transport;

	__atomic_sub_fetch(&ent->q->nr_kept, 1, __ATOMIC_ACQ_REL);
	ent->kept = false;
}

/* A kept entry was answered: the queue thread commits it. */
static void ring_release(struct zc_req *req)
{
	struct zc_uring_ent *ent = req->transport;

	__atomic_sub_fetch(&ent->q->nr_kept, 1, __ATOMIC_ACQ_REL);
	ent_done(ent);
}

static const struct zc_route ring_route = {
	.kind = ZC_ROUTE_RING,
	.send = ring_send,
	.keep = ring_keep,
	.unkeep = ring_unkeep,
	.release = ring_release,
};

/*
 * Serve the request in @ent: it lies whole in memory in front of the
 * payload, and a READ reply is gathered into the payload in place. False
 * when a lock waiter kept the entry to reply later.
 */
static bool ent_serve(struct zc_uring_ent *ent)
{
	struct zc_chan *c = ent->q->u->c;
	struct zc_iter src;
	struct zc_req req = {
		.chan = c,
		.route = &ring_route,
		.transport = ent,
		.dev_fd = -1,
		.pipe = { -1, -1 },
		.reply_buf = ent->payload - sizeof(struct fuse_out_header),
		.reply_room = ent->q->u->payload_size,
		.buf = ent->req,
		.src = &src,
	};
	uint64_t t0 = zc_now_usec();

	ent->kept = false;
	zc_iter_mem(&src, ent->req, ent->req_len);
	zc_dispatch(&req, ent->req_len);
	zc_stats_latency(&c->stats, zc_now_usec() - t0);
	return !req.kept;
}

/*
 * Give @ent to an idle pool thread other than @self; false when none is
 * idle. With @any, to the least busy one, idle or not.
 */
static bool pool_hand(struct zc_uring_queue *q, struct zc_uring_ent *ent, bool any,
		      const struct zc_uring_pool *self)
{
	struct zc_uring_pool *p = NULL;
	bool kick;
	unsigned int i;

	pthread_mutex_lock(&q->work_lock);
	for (i = 0; i < ZC_URING_POOL; i++) {
		struct zc_uring_pool *cand = &q->pool[i];

		if (cand == self || !cand->started || (!any && (!cand->idle || cand->nr_work)))
			continue;
		if (!p || cand->nr_work + !cand->idle < p->nr_work + !p->idle)
			p = cand;
	}
	if (p) {
		kick = !p->nr_work;
		ent->next_work = NULL;
		*p->work_tail = ent;
		p->work_tail = &ent->next_work;
		p->nr_work++;
	}
	pthread_mutex_unlock(&q->work_lock);
	if (p && kick)
		efd_kick(p->efd);
	return p != NULL;
}

/*
 * Take the request that arrived in @ent: note its ids and count it, and
 * have zc_uring_ent_parse() check it and put its header and argument
 * struct in front of the payload, where zc_dispatch() wants the whole
 * request. Returns its payload size, or -EIO when it is malformed (it is
 * then committed with that error).
 */
static ssize_t ent_take(struct zc_uring_ent *ent)
{
	struct zc_uring *u = ent->q->u;
	struct zc_chan *c = u->c;
	struct zc_fuse_uring_ent_in_out *io = &ent->hdr->ring_ent_in_out;
	struct fuse_in_header in;
	size_t payload;

	memcpy(&in, ent->hdr->in_out, sizeof(in));
	payload = io->payload_sz;
	ent->commit_id = io->commit_id;
	ent->unique = in.unique;
	ent->replied = false;
	ent->req = NULL;
	zc_stat_add(&c->stats.uring_requests, 1);
	zc_stat_add(&c->stats.uring_payload_in, payload);
	if (zc_uring_ent_parse(ent->hdr, ent->payload, u->payload_size, &ent->req, &ent->req_len) <
	    0)
		return -EIO;
	return (ssize_t)payload;
}

/* The reply in @ent, or -EIO when it has none, is ready to be committed. */
static void ent_seal(struct zc_uring_ent *ent)
{
	struct zc_fuse_uring_ent_in_out *io = &ent->hdr->ring_ent_in_out;

	if (!ent->replied) {
		/* Malformed, or a request without a reply (FORGET): the entry must go back. */
		struct fuse_out_header out = { .len = sizeof(out),
					       .error = -EIO,
					       .unique = ent->unique };

		memcpy(ent->hdr->in_out, &out, sizeof(out));
		io->payload_sz = 0;
	}
	zc_stat_add(&ent->q->u->c->stats.uring_commits, 1);
}

/* The queue thread commits @ent with its next wait; the entry comes back to it. */
static void ent_commit(struct zc_uring_queue *q, struct zc_uring_ent *ent)
{
	ent_seal(ent);
	zc_uring_ent_cmd(&q->ring, ent, ZC_FUSE_IO_URING_CMD_COMMIT_AND_FETCH);
}

/*
 * Serve the request in @ent and queue its commit, unless a lock waiter kept
 * the entry. A large READ or WRITE with @more requests behind it in
 * this wake-up goes to an idle pool thread, while this thread goes on with
 * the next; a writeback WRITE to the pool in any case.
 */
static void queue_serve(struct zc_uring_queue *q, struct zc_uring_ent *ent, bool more)
{
	ssize_t payload = ent_take(ent);

	if (payload >= 0) {
		/*
		 * A burst of large READs or WRITEs (readahead, writeback): the
		 * others are served beside this thread by the pool. Writeback
		 * WRITEs wait for no caller, but at SCHED_IDLE this thread would
		 * serve them only when the writer itself waits (measured: 0.91x
		 * copy mode's writeback when only bursts went to the pool, 1.02x
		 * with every writeback WRITE there). Anything else
		 * stays here: handing over costs two wake-ups (measured: large
		 * direct READs and WRITEs lose 10 to 20 % when they go to the
		 * pool alone, and the metadata workload, whose RELEASEs come
		 * with the next request, a third).
		 */
		bool wb = zc_uring_ent_is_writeback(ent->req, ent->req_len);
		size_t data = zc_uring_ent_data_size(ent->req, ent->req_len, (size_t)payload);

		if ((more || wb) && data >= ZC_URING_POOL_MIN && pool_hand(q, ent, wb, NULL))
			return;
		if (!ent_serve(ent))
			return;
	}
	ent_commit(q, ent);
}

/*
 * A pool thread serves an entry the queue thread handed it (@handed), or
 * one that came to its own ring: an entry stays with the ring that commits
 * it, and the kernel gives a new request to the entry that came back last.
 * Large READs and WRITEs are committed here, so that the next ones of a
 * burst are copied in on this thread; anything else goes back to the queue
 * thread to be committed there, so that small requests find their way back
 * to the queue's CPU.
 */
static void pool_serve(struct zc_uring_pool *p, struct zc_uring_ent *ent, bool handed, bool more)
{
	bool large = handed;

	if (!handed) {
		ssize_t payload = ent_take(ent);

		if (payload < 0) {
			ent_done(ent);
			return;
		}
		large = zc_uring_ent_data_size(ent->req, ent->req_len, (size_t)payload) >=
			ZC_URING_POOL_MIN;
		/* A burst on this thread's ring: an idle sibling takes a share. */
		if (large && more && pool_hand(p->q, ent, false, p))
			return;
	}
	zc_stat_add(&p->q->u->c->stats.uring_pool, 1);
	if (!handed)
		zc_stat_add(&p->q->u->c->stats.uring_pool_ring, 1);
	if (!ent_serve(ent))
		return;
	if (large) {
		p->last_large = zc_now_usec();
	} else if (zc_now_usec() - p->last_large >= ZC_URING_POOL_LINGER_USEC) {
		ent_done(ent);
		return;
	}
	ent_seal(ent);
	zc_uring_ent_cmd(&p->ring, ent, ZC_FUSE_IO_URING_CMD_COMMIT_AND_FETCH);
}

/* Entries that lock waiters or pool threads have served: commit them. */
static void queue_take_done(struct zc_uring_queue *q)
{
	struct zc_uring_ent *ent;

	pthread_mutex_lock(&q->done_lock);
	ent = q->done;
	q->done = NULL;
	pthread_mutex_unlock(&q->done_lock);
	while (ent) {
		struct zc_uring_ent *next = ent->next_done;

		ent_commit(q, ent);
		ent = next;
	}
}

/* Read @efd on @ring: a completion with @data when it is written to. */
static void ring_arm_efd(struct io_uring *ring, int efd, uint64_t *count, void *data)
{
	struct io_uring_sqe *sqe = ring_sqe(ring);

	if (sqe) {
		io_uring_prep_read(sqe, efd, count, sizeof(*count), 0);
		io_uring_sqe_set_data(sqe, data);
	}
}

bool zc_uring_exiting(const struct zc_uring *u)
{
	return __atomic_load_n(&u->c->exiting, __ATOMIC_ACQUIRE);
}

/*
 * One completion on @ring: a request to serve (added to @ready), or the end
 * of an entry. Returns false when the queue is done (the connection ended,
 * or the kernel refused it).
 */
static bool ent_complete(struct io_uring *ring, struct zc_uring_ent *ent, int res,
			 struct zc_uring_ent **ready, unsigned int *nr_ready)
{
	struct zc_uring *u = ent->q->u;

	if (res == 0) {
		ent->registering = false;
		/* Served once every completion of this wake-up is in. */
		ready[(*nr_ready)++] = ent;
		return true;
	}
	switch (res) {
	case -EINTR:
	case -EAGAIN:
		/* INIT not processed yet (REGISTER), or a transient failure: again. */
		if (res == -EAGAIN && ent->registering)
			usleep(1000);
		zc_uring_ent_cmd(ring, ent,
				 ent->registering ? ZC_FUSE_IO_URING_CMD_REGISTER
						  : ZC_FUSE_IO_URING_CMD_COMMIT_AND_FETCH);
		return true;
	case -ENOTCONN:
	case -ECONNABORTED:
	case -ECANCELED:
	case -ENODEV:
		/* Unmounted or aborted: the kernel tears all entries down. */
		return false;
	default:
		break;
	}
	if (ent->registering) {
		/*
		 * The kernel gives the ring up (and stays on /dev/fuse) unless every
		 * queue already had an entry; then the other entries serve on.
		 */
		zc_uring_refuse(u, "the kernel refused to register ring entries: %s",
				strerror(-res));
		return true;
	}
	/*
	 * A commit the kernel did not take (the request is gone): the kernel
	 * dropped the entry, so register it anew.
	 */
	zc_uring_ent_cmd(ring, ent, ZC_FUSE_IO_URING_CMD_REGISTER);
	return true;
}

void *zc_uring_pool_main(void *arg)
{
	struct zc_uring_pool *p = arg;
	struct zc_uring_queue *q = p->q;
	struct zc_uring *u = q->u;
	struct zc_uring_ent *handed;
	struct io_uring_cqe *cqe;
	bool stop = false, wait;
	char name[16];
	unsigned int i;
	int r;

	snprintf(name, sizeof(name), "zcfuse-pool%u", q->qid);
	pthread_setname_np(pthread_self(), name);
	ring_arm_efd(&p->ring, p->efd, &p->efd_count, p);
	while (!stop) {
		pthread_mutex_lock(&q->work_lock);
		wait = !p->work;
		p->idle = wait;
		stop = q->pool_stop;
		pthread_mutex_unlock(&q->work_lock);
		if (stop || zc_uring_exiting(u))
			break;
		r = io_uring_submit_and_wait(&p->ring, wait ? 1 : 0);
		pthread_mutex_lock(&q->work_lock);
		p->idle = false;
		handed = p->work;
		p->work = NULL;
		p->work_tail = &p->work;
		p->nr_work = 0;
		stop = q->pool_stop;
		pthread_mutex_unlock(&q->work_lock);
		if (stop || zc_uring_exiting(u))
			break;
		/*
		 * Entries whose commands are on this ring can only come back
		 * through it: never give it up while the connection lasts.
		 */
		if (r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY)
			usleep(1000);
		while (io_uring_peek_cqe(&p->ring, &cqe) == 0) {
			void *data = io_uring_cqe_get_data(cqe);
			int res = cqe->res;

			io_uring_cqe_seen(&p->ring, cqe);
			if (data == p)
				ring_arm_efd(&p->ring, p->efd, &p->efd_count, p);
			else if (data)
				/* Past the end of the connection nothing more comes. */
				ent_complete(&p->ring, data, res, p->ready, &p->nr_ready);
		}
		while (handed) {
			struct zc_uring_ent *next = handed->next_work;

			pool_serve(p, handed, true, false);
			handed = next;
		}
		for (i = 0; i < p->nr_ready; i++)
			pool_serve(p, p->ready[i], false, i + 1 < p->nr_ready);
		p->nr_ready = 0;
	}
	return NULL;
}

/*
 * Requests of CPU n land on queue n: serve them there, where the sender
 * waits and the payload is in the cache (about 15 % more 4 KiB reads and
 * 35 % more 1 MiB reads per second than an unpinned thread here). The cost:
 * a queue's requests wait for its CPU even when another one is idle. Best
 * effort: a CPU outside the allowed set leaves the thread unpinned. Off with
 * -o nouring_pin, for machines where other load keeps CPUs busy.
 */
static void pin_to_cpu(unsigned int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	sched_setaffinity(0, sizeof(set), &set);
}

void *zc_uring_queue_main(void *arg)
{
	struct zc_uring_queue *q = arg;
	struct zc_uring *u = q->u;
	struct io_uring_cqe *cqe;
	bool live = true;
	char name[16];
	unsigned int i;
	int r;

	/* Before the pinning and the priority: pool threads run anywhere, normally. */
	for (i = 0; i < ZC_URING_POOL; i++)
		q->pool[i].started =
		    pthread_create(&q->pool[i].thread, NULL, zc_uring_pool_main, &q->pool[i]) == 0;
	/* After: a new thread bears its creator's name until it names itself. */
	snprintf(name, sizeof(name), "zcfuse-ring%u", q->qid);
	pthread_setname_np(pthread_self(), name);
	if (u->pin)
		pin_to_cpu(q->qid);
	zc_watchdog_set_thread(&u->watchdog, &q->watched, (pid_t)syscall(SYS_gettid));
	if (u->idle)
		zc_run_at_idle_priority();
	ring_arm_efd(&q->ring, q->efd, &q->efd_count, q);
	for (i = 0; i < u->entries; i++)
		zc_uring_ent_cmd(&q->ring, &q->ents[i], ZC_FUSE_IO_URING_CMD_REGISTER);
	while (live && !zc_uring_exiting(u)) {
		r = io_uring_submit_and_wait(&q->ring, 1);
		if (r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY) {
			if (!__atomic_load_n(&u->registered, __ATOMIC_ACQUIRE))
				zc_uring_refuse(u, "submitting ring commands failed: %s",
						strerror(-r));
			break;
		}
		if (zc_uring_exiting(u))
			break;
		while (live && io_uring_peek_cqe(&q->ring, &cqe) == 0) {
			void *data = io_uring_cqe_get_data(cqe);
			int res = cqe->res;

			io_uring_cqe_seen(&q->ring, cqe);
			if (data == q) {
				ring_arm_efd(&q->ring, q->efd, &q->efd_count, q);
				queue_take_done(q);
			} else if (data) {
				live = ent_complete(&q->ring, data, res, q->ready, &q->nr_ready);
			}
		}
		for (i = 0; live && i < q->nr_ready; i++)
			queue_serve(q, q->ready[i], i + 1 < q->nr_ready);
		q->nr_ready = 0;
	}
	/*
	 * Stopping: replies already made still go out (an operation that
	 * stopped the loop answers its own request too), committed by the
	 * submission the loop no longer reaches.
	 */
	if (live) {
		queue_take_done(q);
		io_uring_submit(&q->ring);
	}
	/* Before the id can go to another thread: the watchdog must not touch it. */
	zc_watchdog_set_thread(&u->watchdog, &q->watched, 0);
	return NULL;
}

/* Make the kernel give the ring up: a REGISTER it must refuse clears io_uring. */
void zc_uring_queue_give_up(struct zc_uring_queue *q)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&q->ring);
	struct io_uring_cqe *cqe;

	if (!sqe)
		return;
	prep_cmd(q, sqe, &q->ents[0], ZC_FUSE_IO_URING_CMD_REGISTER);
	sqe->len = 0;
	if (io_uring_submit(&q->ring) == 1 && io_uring_wait_cqe(&q->ring, &cqe) == 0)
		io_uring_cqe_seen(&q->ring, cqe);
}

void zc_uring_refuse(struct zc_uring *u, const char *fmt, ...)
{
	va_list ap;

	if (__atomic_exchange_n(&u->refused, true, __ATOMIC_ACQ_REL))
		return;
	va_start(ap, fmt);
	vsnprintf(u->why, sizeof(u->why), fmt, ap);
	va_end(ap);
	if (u->strict) {
		/* zc_session_loop() reports it: the program says it once. */
		zc_chan_stop(u->c, -EOPNOTSUPP);
	} else {
		zc_notify(u->c->notifier, "io_uring: %s; requests go through /dev/fuse", u->why);
	}
}
