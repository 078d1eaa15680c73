/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The connection to the kernel: what every layer shares about one mount's
 * /dev/fuse session. Its limits (max_write, the data policy), what INIT
 * negotiated, the transports' threads, the counters. The transports
 * (zc_dev.c, zc_uring.c) receive requests into struct zc_req and hand them
 * to dispatch (zc_dispatch.c); their replies go back by the request's route.
 */
#ifndef ZC_CHAN_H
#define ZC_CHAN_H

#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "zc_contract.h"
#include "zc_data.h"
#include "zc_proto.h"
#include "zc_stats.h"

struct zc_backend;
struct zc_backing;
struct zc_dev_pool;
struct zc_notifier;
struct zc_opts;
struct zc_uring;
struct zc_waiters;

struct zc_chan {
	/* What the session hands down: the options, the backend, the notice handler. */
	const struct zc_opts *opts;
	const struct zc_backend *backend;
	const struct zc_notifier *notifier;
	/* The mount's device (its bdi in /sys/class/bdi); 0: unknown, or no mount. */
	dev_t mount_dev;

	/* The /dev/fuse descriptor. */
	int dev_fd;
	/* Largest request: max_write plus a page for the header. */
	size_t bufsize;
	size_t max_write;
	/* How request data moves: copied or spliced (zc_data.h). */
	struct zc_data_policy policy;
	/* READs between the backend's read() and read_done(), by file handle. */
	struct zc_data_reads reads;

	/* What INIT negotiated (zc_init.c); read-only once INIT is answered. */
	struct zc_conn conn;
	/* flags2 bits the library asks for at INIT where offered. */
	uint32_t want_flags2;

	/* The /dev/fuse transport's worker threads (zc_dev.c), while it runs. */
	struct zc_dev_pool *pool;
	/* Threads that wait for locks (zc_waiter.c); NULL until the session sets them up. */
	struct zc_waiters *waiters;

	/*
	 * FUSE over io_uring (zc_uring.c); NULL unless the mount asked for it.
	 * Its INIT hooks: the flags2 bits to clear when the rings cannot be
	 * prepared for the INIT reply's limits, and the reply was sent.
	 */
	struct zc_uring *uring;
	uint32_t (*ring_init_reply)(struct zc_chan *c, uint32_t max_write, uint32_t max_pages);
	void (*ring_init_sent)(struct zc_chan *c, bool sent);

	/* Kernel passthrough (zc_backing.c); NULL unless the mount asked for it. */
	struct zc_backing *backing;
	/* The backend's broken rules, each said once (zc_contract.c). */
	struct zc_contract contract;

	sem_t stop;
	int exiting;
	int error;
	/* The backend's init() refused the mount with this -errno (0: it did not). */
	int init_error;
	struct zc_stats stats;
};

/*
 * Size the buffers and the data policy from the machine's limits and
 * @opts; @opts, @backend and @notifier stay the caller's and must outlive @c.
 */
int zc_chan_init(struct zc_chan *c, const struct zc_opts *opts, const struct zc_backend *backend,
		 const struct zc_notifier *notifier);
void zc_chan_fini(struct zc_chan *c);

/* Stop serving: the transports end, and zc_dev_run() returns @error (0 or -errno). */
void zc_chan_stop(struct zc_chan *c, int error);

/*
 * SIGINT, SIGTERM and SIGHUP stop @c (zc_chan_stop()); ZC_STOP_SIGNAL only
 * wakes a thread out of a blocking call. Installed while the transports
 * run, and the old handlers put back after every thread has ended.
 */
int zc_chan_signals_install(struct zc_chan *c, struct sigaction old[4]);
void zc_chan_signals_restore(struct sigaction old[4]);

/* Whether the transports are stopping. */
static inline bool zc_chan_exiting(const struct zc_chan *c)
{
	return __atomic_load_n(&c->exiting, __ATOMIC_ACQUIRE);
}

#endif /* ZC_CHAN_H */
