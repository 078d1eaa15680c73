/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* FUSE over io_uring: what its setup (zc_uring.c) and its queues (zc_uring_queue.c) share. */
#ifndef ZC_URING_I_H
#define ZC_URING_I_H

#include <liburing.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "fuse_kernel_ext.h"
#include "zc_watchdog.h"

struct zc_chan;

/* The smallest payload buffer the kernel accepts (FUSE_MIN_READ_BUFFER). */
#define ZC_URING_MIN_PAYLOAD 8192UL

struct zc_uring_queue;

struct zc_uring_ent {
	struct zc_uring_queue *q;
	struct zc_fuse_uring_req_header *hdr;
	char *payload;
	struct iovec iov[2];
	/* The request being served, and whether its reply is in the entry. */
	uint64_t unique;
	uint64_t commit_id;
	bool replied;
	bool registering;
	/* Kept by a lock waiter (the route's keep()): it commits the entry. */
	bool kept;
	/* The request laid out in front of the payload. */
	char *req;
	size_t req_len;
	struct zc_uring_ent *next_done;
	/* On a pool thread's list of entries handed over. */
	struct zc_uring_ent *next_work;
};

/*
 * Threads of a queue's pool, besides the queue thread (measured: writeback
 * 0.93x to 0.95x copy mode with two, 1.01x to 1.03x with four).
 */
#define ZC_URING_POOL 4
/*
 * The smallest READ or WRITE handed to the pool. Smaller ones cost less to
 * serve than the hand-over does (measured: 4 KiB random reads with 4 jobs
 * lost a third when the second request of a wake-up went to the pool).
 */
#define ZC_URING_POOL_MIN (32UL * 1024)

/*
 * A pool thread, unpinned at normal priority, with a ring of its own. The
 * kernel copies a request into an entry, and takes the reply out of it,
 * under the lock of the ring that holds the entry's command: entries the
 * pool commits on its own rings are filled and emptied beside the queue
 * thread's, not one after another (measured: with one ring per queue, the
 * daemon spent a tenth of its writeback time spinning on that lock).
 */
struct zc_uring_pool {
	struct zc_uring_queue *q;
	struct io_uring ring;
	bool ring_ok;
	pthread_t thread;
	bool started;
	/* The queue thread hands an entry over and says so on the eventfd. */
	int efd;
	uint64_t efd_count;
	/* Under the queue's work_lock: waiting for work, and the entries handed over. */
	bool idle;
	struct zc_uring_ent *work, **work_tail;
	unsigned int nr_work;
	/* Entries with a request, from the completions of one wake-up. */
	struct zc_uring_ent **ready;
	unsigned int nr_ready;
	/* When it last served a large READ or WRITE (zc_now_usec()). */
	uint64_t last_large;
};

/*
 * How long after its last large READ or WRITE a pool thread still commits
 * small requests itself rather than through the queue thread.
 */
#define ZC_URING_POOL_LINGER_USEC 100000

struct zc_uring_queue {
	struct zc_uring *u;
	unsigned int qid;
	struct io_uring ring;
	bool ring_ok;
	pthread_t thread;
	bool started;
	char *mem;
	size_t mem_size;
	struct zc_uring_ent *ents;
	/* Entries with a request, from the completions of one wake-up. */
	struct zc_uring_ent **ready;
	unsigned int nr_ready;
	/* Lock waiters and pool threads put served entries here and say so on the eventfd. */
	int efd;
	uint64_t efd_count;
	pthread_mutex_t done_lock;
	struct zc_uring_ent *done;
	/* Entries kept by lock waiters (ring_keep()). */
	unsigned int nr_kept;
	/*
	 * The pool: threads that serve the entries the queue thread hands them
	 * when several requests arrive at once (writeback, readahead).
	 */
	pthread_mutex_t work_lock;
	bool pool_stop;
	struct zc_uring_pool pool[ZC_URING_POOL];
	/* The queue thread as the watchdog sees it. */
	struct zc_watched watched;
};

struct zc_uring {
	struct zc_chan *c;
	bool strict;
	bool pin;
	bool idle;
	/*
	 * Entries registered per queue: uring_depth for requests that are
	 * answered as they are served, and lock_room more that lock waiters
	 * may keep (ring_keep()), so that waiting locks never take entries
	 * the other requests need.
	 */
	unsigned int entries;
	unsigned int lock_room;
	unsigned int nr_queues;
	size_t payload_size;
	struct zc_uring_queue *queues;
	/* The kernel took the flag at INIT; the queue threads run. */
	bool granted;
	bool running;
	/* Set once: why the mount does not use the ring. */
	bool refused;
	char why[256];
	unsigned int registered;
	/* Lifts a queue thread starved at SCHED_IDLE to normal priority. */
	struct zc_watchdog watchdog;
};

/* Refuse the ring for the mount, with why; the mount goes on with /dev/fuse. */
void zc_uring_refuse(struct zc_uring *u, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Queue command @op (REGISTER, COMMIT_AND_FETCH) for @ent on @ring: 0 or -EBUSY. */
int zc_uring_ent_cmd(struct io_uring *ring, struct zc_uring_ent *ent, uint32_t op);

/* Whether the transports are stopping. */
bool zc_uring_exiting(const struct zc_uring *u);

/* The threads: a queue's (@arg: struct zc_uring_queue) and a pool thread's (struct zc_uring_pool). */
void *zc_uring_queue_main(void *arg);
void *zc_uring_pool_main(void *arg);

/* Make the kernel give the ring up: a REGISTER it must refuse clears io_uring. */
void zc_uring_queue_give_up(struct zc_uring_queue *q);

#endif /* ZC_URING_I_H */
