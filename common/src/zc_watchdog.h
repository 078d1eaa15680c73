/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The io_uring queue threads' watchdog: queue threads run at SCHED_IDLE, and
 * one that a busy program starves is lifted to normal priority for a while.
 */
#ifndef ZC_WATCHDOG_H
#define ZC_WATCHDOG_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* A thread the watchdog looks after. */
struct zc_watched {
	struct zc_watched *next;
	/* The thread's id (0: none now), under the watchdog's tid_lock. */
	pid_t tid;
	/*
	 * Its schedstat and stat files, open while files_tid is tid and not 0
	 * (watchdog thread only).
	 */
	pid_t files_tid;
	int schedstat_fd, stat_fd;
	/* The watchdog's own view of the thread (watchdog thread only). */
	struct zc_sched_view {
		uint64_t run_ns, wait_ns, slices;
	} seen;
	bool have_seen;
	bool seen_stuck;
	bool promoted;
	uint64_t promoted_until;
	uint64_t last_demoted;
	unsigned int hold_ms;
};

struct zc_watchdog {
	struct zc_watched *threads;
	/* Guards the threads' ids while the watchdog uses them. */
	pthread_mutex_t tid_lock;
	/* Requests served, read to look more often while they flow. */
	const uint64_t *activity;
	/* Counted up for each lift. */
	uint64_t *promotions;
	pthread_t thread;
	bool started;
	bool stop;
	pthread_mutex_t lock;
	pthread_cond_t cond;
};

void zc_watchdog_init(struct zc_watchdog *wd);
void zc_watchdog_fini(struct zc_watchdog *wd);

/* Look after @w from zc_watchdog_start() on; before it only. */
void zc_watchdog_add(struct zc_watchdog *wd, struct zc_watched *w);

/*
 * Start the watchdog thread: 0, or -errno when it cannot run (threads must
 * then stay at normal priority).
 */
int zc_watchdog_start(struct zc_watchdog *wd, const uint64_t *activity, uint64_t *promotions);
void zc_watchdog_stop(struct zc_watchdog *wd);

/* The thread @w stands for is @tid now (0: it is ending). */
void zc_watchdog_set_thread(struct zc_watchdog *wd, struct zc_watched *w, pid_t tid);

/*
 * Whether threads may go to SCHED_IDLE: only when the watchdog can lift
 * them back, which takes CAP_SYS_NICE or an RLIMIT_NICE that allows it.
 */
bool zc_can_leave_idle(void);

/* Run the calling thread at SCHED_IDLE. */
void zc_run_at_idle_priority(void);

#endif /* ZC_WATCHDOG_H */
