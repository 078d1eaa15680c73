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

#include "zc_backing.h"
#include "zc_stats.h"
#include "zc_uring.h"
#include "zc_util.h"

struct iovec;
struct zc_session;
struct zc_worker;
struct zc_backing_table;
struct zc_uring;
struct zc_waiter;

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
	bool backing_wanted;
	enum zc_backing_refused backing_refused;
	struct zc_backing_table *backing;
	bool backing_warned[ZC_BACKING_FALLBACK_NR];

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

/* The unique id of the request this thread serves (0 when none). */
uint64_t zc_chan_current_unique(void);

/*
 * The /dev/fuse descriptor this thread replies to (-1: the session's), and
 * setting it on a thread that answers a request another thread received.
 */
int zc_chan_reply_fd(void);
void zc_chan_set_reply_fd(int fd);

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

#endif /* ZC_CHAN_H */
