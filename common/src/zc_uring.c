/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * FUSE over io_uring (-o io_uring): the kernel hands requests to ring
 * entries instead of /dev/fuse reads, and takes replies with the command
 * that fetches the next request (COMMIT_AND_FETCH), so a request costs one
 * io_uring_enter() on the daemon's side and no read() or write().
 *
 * The kernel keeps one queue per possible CPU and puts a request on the
 * queue of the CPU its sender runs on; it switches from /dev/fuse only after
 * INIT was answered there and every queue has an entry. So INIT, and any
 * request sent before the switch, come through /dev/fuse as on the other
 * transports; the INIT reply asks for the ring (FUSE_OVER_IO_URING in
 * flags2) and, once it is written, one thread per queue registers its
 * entries. INTERRUPT, FORGET and notifications stay on /dev/fuse for good,
 * so the /dev/fuse workers keep running.
 *
 * Each entry is one buffer: its header (struct zc_fuse_uring_req_header) at
 * the start, the payload buffer one page in. A request arrives split in
 * three (fuse_in_header, the opcode's argument struct, the rest in the
 * payload); the first two are copied in front of the payload, so that the
 * whole request lies in memory the way a /dev/fuse read would have left it
 * and is served by the same code (zc_dispatch()): READ and WRITE
 * through the data path with memory iterators over the payload, the rest
 * through the same opcode table. Replies come back by the ring route (ring_send()): the header
 * goes to the entry's header, the arguments to the payload buffer (READ
 * data is gathered there in place), and the entry is committed.
 *
 * Threads: each queue has one thread, on the queue's CPU and at SCHED_IDLE,
 * that waits for completions and serves small requests itself; a pool of four
 * serves large READs and WRITEs beside it (all writeback WRITEs, and the
 * others of a burst), each pool thread with a ring of its own, on which it
 * commits them. A blocking lock that must wait does so on a thread of its
 * own (zc_waiter.c), which keeps the entry until it replies.
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
#include "zc_chan.h"
#include "zc_dispatch.h"
#include "zc_iter.h"
#include "zc_req.h"
#include "zc_uring.h"
#include "zc_util.h"
#include "zc_waiter.h"
#include "zc_watchdog.h"
#include "zc_notice.h"

/* Number of possible CPUs: the kernel keeps one queue for each. */
static int possible_cpus(void)
{
	char buf[256], *p, *end;
	int count = 0;
	ssize_t n;

	n = zc_read_small_file("/sys/devices/system/cpu/possible", buf, sizeof(buf));
	if (n <= 0)
		return n < 0 ? (int)n : -EIO;
	/* A list of ranges: "0-3", "0,2-5". */
	for (p = buf; *p && *p != '\n';) {
		long lo, hi;

		lo = strtol(p, &end, 10);
		if (end == p)
			return -EINVAL;
		hi = lo;
		p = end;
		if (*p == '-') {
			hi = strtol(p + 1, &end, 10);
			if (end == p + 1)
				return -EINVAL;
			p = end;
		}
		if (hi < lo)
			return -EINVAL;
		count += (int)(hi - lo + 1);
		if (*p == ',')
			p++;
	}
	return count > 0 ? count : -EINVAL;
}

static int ring_setup(struct io_uring *ring, unsigned int depth)
{
	struct io_uring_params p;

	memset(&p, 0, sizeof(p));
	/* The command area of a 64-byte SQE is too small for the FUSE command. */
	/*
	 * COOP_TASKRUN and DEFER_TASKRUN measured no faster here (DEFER 13 %
	 * slower on 4 KiB reads): the thread sleeps in io_uring_enter() anyway.
	 */
	p.flags = IORING_SETUP_SQE128 | IORING_SETUP_CQSIZE;
	p.cq_entries = depth * 2;
	/* One command per entry, and the eventfd read of the threads that hand entries back. */
	return io_uring_queue_init_params(depth + 1, ring, &p);
}

static const char *ring_refusal(int r, char *buf, size_t size)
{
	switch (r) {
	case -ENOSYS:
		return "this kernel has no io_uring";
	case -EPERM:
	case -EACCES:
		return "io_uring is not permitted here (sysctl kernel.io_uring_disabled, or "
		       "a seccomp filter)";
	case -EINVAL:
		return "this kernel's io_uring lacks 128-byte SQEs";
	default:
		snprintf(buf, size, "io_uring_setup failed: %s", strerror(-r));
		return buf;
	}
}

/*
 * A thread's ring and the eventfd that wakes it. Either failing (the kernel
 * refuses the ring, or descriptors run out: each possible CPU takes ten) is
 * -EOPNOTSUPP, with the reason in @why: the mount falls back to /dev/fuse.
 */
static int thread_ring_setup(struct io_uring *ring, bool *ring_ok, int *efd, unsigned int depth,
			     char *why, size_t why_size)
{
	char buf[128];
	int r = ring_setup(ring, depth);

	if (r < 0) {
		snprintf(why, why_size, "%s", ring_refusal(r, buf, sizeof(buf)));
		return -EOPNOTSUPP;
	}
	*ring_ok = true;
	*efd = eventfd(0, EFD_CLOEXEC);
	if (*efd < 0) {
		snprintf(why, why_size, "cannot create an eventfd for a ring thread: %s",
			 strerror(errno));
		return -EOPNOTSUPP;
	}
	return 0;
}

/* The rings and eventfds of a queue thread and its pool threads. */
static int queue_rings_setup(struct zc_uring_queue *q, char *why, size_t why_size)
{
	unsigned int i;
	int r;

	r = thread_ring_setup(&q->ring, &q->ring_ok, &q->efd, q->u->entries, why, why_size);
	/* Every entry of the queue may end up on one pool thread's ring. */
	for (i = 0; !r && i < ZC_URING_POOL; i++)
		r = thread_ring_setup(&q->pool[i].ring, &q->pool[i].ring_ok, &q->pool[i].efd,
				      q->u->entries, why, why_size);
	return r;
}

static uint32_t uring_init_reply(struct zc_chan *c, uint32_t max_write, uint32_t max_pages);
static void uring_init_sent(struct zc_chan *c, bool sent);

int zc_uring_setup(struct zc_chan *c, const struct zc_uring_conf *conf, char *why, size_t why_size)
{
	struct zc_uring *u;
	const char *reason;
	char buf[128];
	unsigned int i, j;
	int n, r;

	reason = zc_uring_kernel_refusal();
	if (!reason) {
		n = possible_cpus();
		if (n < 0) {
			snprintf(buf, sizeof(buf),
				 "cannot read /sys/devices/system/cpu/possible: %s", strerror(-n));
			reason = buf;
		}
	}
	if (reason) {
		snprintf(why, why_size, "%s", reason);
		return -EOPNOTSUPP;
	}
	u = calloc(1, sizeof(*u));
	if (!u)
		return -ENOMEM;
	u->queues = calloc((size_t)n, sizeof(*u->queues));
	if (!u->queues) {
		free(u);
		return -ENOMEM;
	}
	u->c = c;
	zc_watchdog_init(&u->watchdog);
	u->strict = conf->strict;
	u->pin = conf->pin;
	u->idle = conf->idle && zc_can_leave_idle();
	if (conf->idle && !u->idle)
		zc_notify(c->notifier,
			  "io_uring: queue threads run at normal priority: SCHED_IDLE needs "
			  "CAP_SYS_NICE or an RLIMIT_NICE of 20 to be lifted when starved");
	u->lock_room = ZC_URING_LOCK_ROOM;
	u->entries = conf->depth + u->lock_room;
	u->nr_queues = (unsigned int)n;
	for (i = 0; i < u->nr_queues; i++) {
		struct zc_uring_queue *q = &u->queues[i];

		q->u = u;
		q->qid = i;
		q->efd = -1;
		pthread_mutex_init(&q->done_lock, NULL);
		pthread_mutex_init(&q->work_lock, NULL);
		for (j = 0; j < ZC_URING_POOL; j++) {
			q->pool[j].q = q;
			q->pool[j].efd = -1;
			q->pool[j].work_tail = &q->pool[j].work;
		}
	}
	c->uring = u;
	for (i = 0; i < u->nr_queues; i++) {
		r = queue_rings_setup(&u->queues[i], why, why_size);
		if (r < 0) {
			zc_uring_fini(c);
			return r;
		}
	}
	c->want_flags2 |= ZC_FUSE_OVER_IO_URING;
	c->ring_init_reply = uring_init_reply;
	c->ring_init_sent = uring_init_sent;
	return 0;
}

/* Entry memory of one queue: per entry, its header, then the payload one page in. */
static int queue_alloc(struct zc_uring_queue *q)
{
	struct zc_uring *u = q->u;
	size_t stride = ZC_PAGE + u->payload_size;
	unsigned int i;
	void *mem;

	q->ents = calloc(u->entries, sizeof(*q->ents));
	q->ready = calloc(u->entries, sizeof(*q->ready));
	if (!q->ents || !q->ready)
		return -ENOMEM;
	for (i = 0; i < ZC_URING_POOL; i++) {
		q->pool[i].ready = calloc(u->entries, sizeof(*q->pool[i].ready));
		if (!q->pool[i].ready)
			return -ENOMEM;
	}
	q->mem_size = stride * u->entries;
	mem = mmap(NULL, q->mem_size, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (mem == MAP_FAILED) {
		q->mem_size = 0;
		return -ENOMEM;
	}
	q->mem = mem;
	for (i = 0; i < u->entries; i++) {
		struct zc_uring_ent *ent = &q->ents[i];
		char *base = q->mem + stride * i;

		ent->q = q;
		ent->hdr = (struct zc_fuse_uring_req_header *)base;
		ent->payload = base + ZC_PAGE;
		ent->iov[0].iov_base = ent->hdr;
		ent->iov[0].iov_len = sizeof(*ent->hdr);
		ent->iov[1].iov_base = ent->payload;
		ent->iov[1].iov_len = u->payload_size;
	}
	return 0;
}

/* The rings are sized for the INIT reply's limits: the flags2 bits to clear when they cannot be. */
static uint32_t uring_init_reply(struct zc_chan *c, uint32_t max_write, uint32_t max_pages)
{
	struct zc_uring *u = c->uring;
	size_t size;
	unsigned int i;

	if (!u)
		return ZC_FUSE_OVER_IO_URING;
	/* The kernel wants max(8 KiB, max_write, max_pages pages) per payload. */
	size = (size_t)(max_pages ? max_pages : 32) * ZC_PAGE;
	if (size < max_write)
		size = max_write;
	if (size < ZC_URING_MIN_PAYLOAD)
		size = ZC_URING_MIN_PAYLOAD;
	u->payload_size = (size + ZC_PAGE - 1) & ~(ZC_PAGE - 1);
	for (i = 0; i < u->nr_queues; i++) {
		if (queue_alloc(&u->queues[i]) < 0) {
			zc_uring_refuse(u, "cannot allocate ring entries: %s", strerror(ENOMEM));
			return ZC_FUSE_OVER_IO_URING;
		}
	}
	u->granted = true;
	return 0;
}

/* The INIT reply went out: the queue threads register their entries. */
static void uring_init_sent(struct zc_chan *c, bool sent)
{
	struct zc_uring *u = c->uring;
	sigset_t all, old;
	unsigned int i;
	int r;

	if (!u)
		return;
	if (!(c->conn.flags2 & ZC_FUSE_OVER_IO_URING)) {
		const char *reason = zc_uring_kernel_refusal();

		if (u->refused)
			return;
		if (!(c->conn.kernel_flags & FUSE_INIT_EXT) ||
		    c->conn.kernel_minor < ZC_FUSE_URING_MINOR)
			zc_uring_refuse(
			    u, "the kernel speaks FUSE 7.%u, FUSE over io_uring needs 7.%u",
			    c->conn.kernel_minor, ZC_FUSE_URING_MINOR);
		else if (reason)
			zc_uring_refuse(u, "%s", reason);
		else
			zc_uring_refuse(u, "the kernel did not offer FUSE_OVER_IO_URING at INIT "
					   "(" ZC_URING_PARAM " was N at mount time)");
		return;
	}
	if (!sent || !u->granted)
		return;
	for (i = 0; i < u->nr_queues; i++) {
		struct zc_uring_queue *q = &u->queues[i];
		int fd = c->dev_fd;
		unsigned int j;

		r = io_uring_register_files(&q->ring, &fd, 1);
		for (j = 0; j < ZC_URING_POOL && r >= 0; j++)
			r = io_uring_register_files(&q->pool[j].ring, &fd, 1);
		if (r < 0) {
			zc_uring_refuse(u, "cannot register /dev/fuse with io_uring: %s",
					strerror(-r));
			zc_uring_queue_give_up(q);
			return;
		}
	}
	/* Queue threads take only the stop signal, like the workers. */
	sigfillset(&all);
	sigdelset(&all, ZC_STOP_SIGNAL);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (i = 0; u->idle && i < u->nr_queues; i++)
		zc_watchdog_add(&u->watchdog, &u->queues[i].watched);
	if (u->idle && zc_watchdog_start(&u->watchdog, &c->stats.uring_requests,
					 &c->stats.uring_promotions) < 0)
		u->idle = false; /* without it, a starved queue thread would stay starved */
	for (i = 0; i < u->nr_queues; i++) {
		struct zc_uring_queue *q = &u->queues[i];

		r = -pthread_create(&q->thread, NULL, zc_uring_queue_main, q);
		if (r < 0) {
			zc_uring_refuse(u, "cannot start a queue thread: %s", strerror(-r));
			zc_uring_queue_give_up(q);
			break;
		}
		q->started = true;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (i == u->nr_queues) {
		u->running = true;
		zc_stat_add(&c->stats.uring_queues, u->nr_queues);
		__atomic_store_n(&u->registered, 1, __ATOMIC_RELEASE);
	}
}

void zc_uring_stop(struct zc_chan *c)
{
	struct zc_uring *u = c->uring;
	unsigned int i;

	if (!u)
		return;
	/* First: it must not touch a queue thread's id once the thread is gone. */
	zc_watchdog_stop(&u->watchdog);
	for (i = 0; i < u->nr_queues; i++) {
		struct zc_uring_queue *q = &u->queues[i];

		if (!q->started)
			continue;
		/* exiting is set: wake the thread out of io_uring_enter() until it ends. */
		zc_stop_thread(q->thread);
		q->started = false;
	}
	for (i = 0; i < u->nr_queues; i++) {
		struct zc_uring_queue *q = &u->queues[i];
		unsigned int j;

		pthread_mutex_lock(&q->work_lock);
		q->pool_stop = true;
		pthread_mutex_unlock(&q->work_lock);
		for (j = 0; j < ZC_URING_POOL; j++) {
			if (q->pool[j].started)
				zc_stop_thread(q->pool[j].thread);
		}
		pthread_mutex_lock(&q->work_lock);
		for (j = 0; j < ZC_URING_POOL; j++)
			q->pool[j].started = false;
		pthread_mutex_unlock(&q->work_lock);
	}
}

void zc_uring_fini(struct zc_chan *c)
{
	struct zc_uring *u = c->uring;
	unsigned int i, j;

	if (!u)
		return;
	zc_uring_stop(c);
	for (i = 0; i < u->nr_queues; i++) {
		struct zc_uring_queue *q = &u->queues[i];

		if (q->ring_ok)
			io_uring_queue_exit(&q->ring);
		if (q->efd >= 0)
			close(q->efd);
		for (j = 0; j < ZC_URING_POOL; j++) {
			struct zc_uring_pool *p = &q->pool[j];

			if (p->ring_ok)
				io_uring_queue_exit(&p->ring);
			if (p->efd >= 0)
				close(p->efd);
			free(p->ready);
		}
		pthread_mutex_destroy(&q->done_lock);
		pthread_mutex_destroy(&q->work_lock);
		if (q->mem)
			munmap(q->mem, q->mem_size);
		free(q->ents);
		free(q->ready);
	}
	zc_watchdog_fini(&u->watchdog);
	free(u->queues);
	free(u);
	c->uring = NULL;
}

const char *zc_uring_refusal(const struct zc_chan *c)
{
	const struct zc_uring *u = c->uring;

	return u && __atomic_load_n(&u->refused, __ATOMIC_ACQUIRE) ? u->why : NULL;
}
