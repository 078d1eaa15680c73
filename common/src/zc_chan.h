/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The transport: owns every byte on /dev/fuse. Worker threads receive
 * requests (spliced into a per-thread pipe, or read into memory), serve
 * READ and WRITE themselves through zc_move(), and hand every other request
 * to libfuse's fuse_session_process_buf(), whose replies come back through
 * the custom I/O callbacks.
 */
#ifndef ZC_CHAN_H
#define ZC_CHAN_H

#include <pthread.h>
#include <semaphore.h>
#include <stdbool.h>
#include <stddef.h>
#include <signal.h>
#include <sys/types.h>
#include <time.h>

#include "zc_stats.h"

struct iovec;
struct zc_session;
struct zc_worker;
struct zc_pt_table;
struct zc_uring;
struct zc_waiter;

/* Why kernel passthrough is off for a mount that asked for it. */
enum zc_pt_refused {
	ZC_PT_REFUSED_NONE,
	ZC_PT_REFUSED_KERNEL,
	ZC_PT_REFUSED_WRITEBACK,
	ZC_PT_REFUSED_PERMISSION,
};

struct zc_chan {
	struct zc_session *s;
	int dev_fd;
	bool clone_fd;
	/* Largest request: max_write plus a page for the header. */
	size_t bufsize;
	size_t max_write;
	/* Per-thread pipe size; 0 when splicing is off for the mount. */
	size_t pipe_size;
	bool splice;
	size_t splice_threshold;

	pthread_mutex_t lock;
	struct zc_worker *workers;
	/* Threads serving a READ from memory (zc_chan_serve_mem()), for zc_chan_wait_reads(). */
	struct zc_worker *mem_readers;
	unsigned int nr_workers;
	unsigned int max_workers;
	unsigned int idle;

	/*
	 * Receive through the pipes while this is > 0: a large write came
	 * recently, and more are likely. Other requests use it up.
	 */
	unsigned int pipe_credit;

	/* INIT negotiation the transport does beyond libfuse. */
	uint64_t init_unique;
	uint32_t kernel_flags;
	/* flags2 the kernel offered, the transport wants, and was granted. */
	uint32_t kernel_flags2;
	uint32_t want_flags2;
	uint32_t flags2;
	bool killpriv_v2;
	/* The kernel's protocol minor, and what the INIT reply set. */
	uint32_t kernel_minor;
	uint32_t init_max_write;
	uint32_t init_max_pages;

	/*
	 * Threads that wait for locks (zc_waiter.c), under lock: there are
	 * any once the transport runs its threads, and no more once it stops.
	 */
	struct zc_waiter *waiters;
	unsigned int nr_waiters;
	bool waiters_on;
	bool waiters_closed;

	/* FUSE over io_uring (zc_uring.c); NULL unless the mount asked for it. */
	struct zc_uring *uring;

	/* Kernel passthrough: asked for, why it is off, backing ids per inode. */
	bool pt_wanted;
	enum zc_pt_refused pt_refused;
	struct zc_pt_table *pt;
	bool pt_warned[ZC_PT_FALLBACK_NR];

	sem_t stop;
	int exiting;
	int error;
	struct zc_stats stats;
};

/* Size the pipes and buffers from the machine's limits and the options. */
int zc_chan_init(struct zc_chan *c, struct zc_session *s, bool splice, size_t splice_threshold,
		 unsigned int max_workers, bool clone_fd);
void zc_chan_fini(struct zc_chan *c);

/* Hook libfuse's I/O up to the transport; call right after mounting. */
int zc_chan_attach(struct zc_chan *c, int dev_fd);

/*
 * Wait until no READ of @fh is between the backend's read() and read_done():
 * read_done() follows the reply, so a release() could otherwise overtake it.
 */
void zc_chan_wait_reads(struct zc_chan *c, uint64_t fh);

/* True while this thread serves a request that asks to clear setuid/setgid. */
bool zc_chan_request_kills_suidgid(void);

/* Read a small text file (sysfs, procfs) into @buf, NUL-terminated: its length or -errno. */
ssize_t zc_read_small_file(const char *path, char *buf, size_t size);

/* Whether the daemon has capability @cap (CAP_*) in its effective set. */
bool zc_has_capability(int cap);

/* CLOCK_MONOTONIC in microseconds. */
uint64_t zc_now_usec(void);

/* *@ts = @clock's time now plus @ms milliseconds: a deadline for timed waits. */
void zc_timespec_in(struct timespec *ts, clockid_t clock, unsigned int ms);

/* The signal that wakes the transport's threads out of blocking calls to end them. */
#define ZC_STOP_SIGNAL SIGUSR1

/*
 * Send @t the stop signal until it has ended (its blocking call returns
 * EINTR, and it sees the transport exiting), and join it.
 */
void zc_stop_thread(pthread_t t);

/* The unique id of the request this thread serves (0 when none). */
uint64_t zc_chan_current_unique(void);

/*
 * The /dev/fuse descriptor this thread replies to (-1: the session's), and
 * setting it on a thread that answers a request another thread received.
 */
int zc_chan_reply_fd(void);
void zc_chan_set_reply_fd(int fd);

/*
 * Kernel passthrough (zc_passthrough.c). zc_pt_setup() before mounting
 * asks for it at INIT; zc_pt_negotiated() reports the outcome.
 * zc_pt_open() decides for one open of regular file @ino whose backend
 * offered @backing_fd (or -1): a backing id > 0 to send with
 * zc_pt_reply_with(), or 0 for the pipe path, the cause counted. Every open
 * it saw ends with zc_pt_release(). The transport calls
 * zc_pt_amend_reply() on every reply it sends.
 */
int zc_pt_setup(struct zc_chan *c);
void zc_pt_fini(struct zc_chan *c);
void zc_pt_negotiated(struct zc_chan *c);
int32_t zc_pt_open(struct zc_chan *c, uint64_t ino, int backing_fd);
void zc_pt_release(struct zc_chan *c, uint64_t ino);
void zc_pt_reply_with(int32_t backing_id);
void zc_pt_amend_reply(struct iovec *iov, int count);

/* Serve until unmounted or a stop signal; @single: on this thread alone. */
int zc_chan_run(struct zc_chan *c, bool single);

/*
 * Serve on the calling thread, one request per zc_chan_worker_serve_one()
 * call (0, or -errno when receiving failed), with no other thread: for tests
 * and the fuzz target, which write requests to the device descriptor
 * themselves.
 */
struct zc_worker *zc_chan_worker_new(struct zc_chan *c);
int zc_chan_worker_serve_one(struct zc_worker *w);
void zc_chan_worker_free(struct zc_worker *w);

/* Stop serving: zc_chan_run() returns @error (0 or a negative errno). */
void zc_chan_stop(struct zc_chan *c, int error);

/*
 * Serve one request that lies whole in memory at @req (@len bytes, headers
 * first) on this thread, as if read from /dev/fuse: READ and WRITE through
 * the data path, the rest through libfuse. A READ reply is built with its
 * 16-byte header at @reply_buf and the data behind it. Replies go out
 * through zc_uring_reply() first, then /dev/fuse.
 */
void zc_chan_serve_mem(struct zc_chan *c, void *req, size_t len, void *reply_buf);

/* How the ring is served (-o io_uring and the uring_* options). */
struct zc_uring_conf {
	bool strict;	    /* fail instead of falling back to /dev/fuse */
	unsigned int depth; /* entries per queue */
	bool pin;	    /* each queue's thread runs on the queue's CPU only */
	bool idle;	    /* queue threads run at SCHED_IDLE */
};

/*
 * FUSE over io_uring (zc_uring.c). zc_uring_setup() before mounting checks
 * that the kernel and io_uring allow it and asks for it at INIT.
 * The transport calls zc_uring_init_reply() while it amends the INIT reply
 * (returns the flags2 bits to clear when the ring cannot be prepared), and
 * zc_uring_init_sent() once the reply reached the kernel: queue threads
 * then register their entries. zc_uring_reply() takes a reply for the ring
 * entry this thread serves (true, *ret set) or leaves it for /dev/fuse.
 * zc_uring_stop() ends the queue threads; zc_uring_fini() frees the rings.
 * zc_uring_refusal() says why the mount does not use the ring (NULL: it
 * does, or never asked).
 */
int zc_uring_setup(struct zc_chan *c, const struct zc_uring_conf *conf, char *why, size_t why_size);
uint32_t zc_uring_init_reply(struct zc_chan *c);
void zc_uring_init_sent(struct zc_chan *c, bool sent);
bool zc_uring_reply(struct zc_chan *c, const struct iovec *iov, int count, ssize_t *ret);
void zc_uring_stop(struct zc_chan *c);

/*
 * A ring entry kept for a lock waiter. zc_uring_keep() on the thread that
 * serves the entry's request keeps the entry (*@ret_ent) when the request
 * returns unanswered: NULL for a request from /dev/fuse, -ENOLCK when half
 * the queue's entries are kept already. zc_uring_unkeep() takes that back;
 * on the waiter, zc_uring_adopt() sends its reply to the entry and
 * zc_uring_give_back() hands the entry to its queue thread to commit.
 */
int zc_uring_keep(void **ret_ent);
void zc_uring_unkeep(void *ent);
void zc_uring_adopt(void *ent);
void zc_uring_give_back(void *ent);
void zc_uring_fini(struct zc_chan *c);
const char *zc_uring_refusal(const struct zc_chan *c);

#endif /* ZC_CHAN_H */
