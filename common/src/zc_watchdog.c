/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The io_uring queue threads' watchdog: queue threads run at SCHED_IDLE so
 * that a reply leaves the application on its CPU, and one that a busy
 * program starves is lifted to normal priority for a while.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "zc_util.h"
#include "zc_watchdog.h"

bool zc_can_leave_idle(void)
{
	struct rlimit rl;
	int nice_now;

	if (zc_has_capability(CAP_SYS_NICE))
		return true;
	errno = 0;
	nice_now = getpriority(PRIO_PROCESS, 0);
	if (errno || getrlimit(RLIMIT_NICE, &rl) < 0)
		return false;
	return rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= (rlim_t)(20 - nice_now);
}

/*
 * A reply wakes the application while the queue thread still runs on the
 * application's CPU, so the scheduler moves the application to an idle CPU,
 * and its next request lands on that CPU's queue: every request then wakes a
 * halted CPU (measured: a stat() loop made 20 000 calls a second, and 41 000
 * with the application held on one CPU). A CPU whose only runnable threads
 * are SCHED_IDLE counts as idle in that choice, so at SCHED_IDLE the queue
 * thread leaves the application where it is. The queue thread then runs
 * when no other thread of its CPU wants to, which is when the application
 * waits for a reply. Off with -o nouring_idle.
 */
void zc_run_at_idle_priority(void)
{
	struct sched_param param = { 0 };

	sched_setscheduler(0, SCHED_IDLE, &param);
}

/*
 * SCHED_IDLE has a price: a queue thread runs only when no other thread of
 * its CPU wants to, so a busy program there starves it, and every request
 * sent from that CPU waits (measured: a stat() loop beside two busy loops
 * made 100 to 1 700 calls a second, against 37 000 to 45 000 at normal
 * priority). A watchdog looks at the queue threads' scheduler statistics
 * every 5 ms while requests flow (every 100 ms otherwise). A thread is
 * starved when it waited on its CPU's run queue 1 ms or more on average
 * each time it ran since the last look (served at SCHED_IDLE on an
 * otherwise idle machine, it waits microseconds), or when it wanted to run
 * at two looks in a row and did not run at all in between. A starved
 * thread runs at normal priority for a while: 1 s, doubled up to a minute
 * each time it is starved again within 10 s of going back.
 */
#define ZC_WATCH_ACTIVE_MS   5
#define ZC_WATCH_IDLE_MS     100
#define ZC_WATCH_WAIT_NS     1000000ULL
#define ZC_WATCH_HOLD_MIN_MS 1000U
#define ZC_WATCH_HOLD_MAX_MS 60000U
#define ZC_WATCH_AGAIN_MS    10000

/* The files of @w's thread the watchdog reads, closed. */
static void thread_files_close(struct zc_watched *w)
{
	if (!w->files_tid)
		return;
	close(w->schedstat_fd);
	close(w->stat_fd);
	w->files_tid = 0;
}

static int open_task_file(pid_t tid, const char *name)
{
	char path[64];
	int fd;

	snprintf(path, sizeof(path), "/proc/self/task/%d/%s", (int)tid, name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

/*
 * The files of @w's thread the watchdog reads, kept open while the thread
 * lasts: a look is then one pread() of each rather than an open(), a read()
 * and a close() (while requests flow, it looks at each queue thread every
 * 5 ms, and during writeback those were a third of the daemon's system
 * calls).
 */
static int thread_files_open(struct zc_watched *w)
{
	int fd;

	if (w->files_tid == w->tid)
		return 0;
	thread_files_close(w);
	fd = open_task_file(w->tid, "schedstat");
	if (fd < 0)
		return fd;
	w->schedstat_fd = fd;
	fd = open_task_file(w->tid, "stat");
	if (fd < 0) {
		close(w->schedstat_fd);
		return fd;
	}
	w->stat_fd = fd;
	w->files_tid = w->tid;
	return 0;
}

/* Read what @fd holds now into @buf, a string. */
static int pread_string(int fd, char *buf, size_t size)
{
	ssize_t n = pread(fd, buf, size - 1, 0);

	if (n <= 0)
		return n < 0 ? -errno : -EIO;
	buf[n] = '\0';
	return 0;
}

/* Whether @w's thread is runnable (state R). */
static bool thread_runnable(struct zc_watched *w)
{
	char buf[512], *p;

	if (pread_string(w->stat_fd, buf, sizeof(buf)) < 0)
		return false;
	/* "tid (name) S ...": the name may hold anything, the state follows its last ')'. */
	p = strrchr(buf, ')');
	return p && p[1] == ' ' && p[2] == 'R';
}

/* Time on the CPU, time waiting for it, and times run, of @w's thread. */
static int read_sched_view(struct zc_watched *w, struct zc_sched_view *v)
{
	char buf[128];
	unsigned long long run, wait, slices;
	int r;

	r = thread_files_open(w);
	if (r == 0)
		r = pread_string(w->schedstat_fd, buf, sizeof(buf));
	if (r < 0)
		return r;
	if (sscanf(buf, "%llu %llu %llu", &run, &wait, &slices) != 3)
		return -EINVAL;
	v->run_ns = run;
	v->wait_ns = wait;
	v->slices = slices;
	return 0;
}

static int set_policy(pid_t tid, int policy)
{
	struct sched_param param = { 0 };

	return sched_setscheduler(tid, policy, &param) < 0 ? -errno : 0;
}

/* One look at a watched thread, with tid_lock held; returns whether it looked stuck. */
static bool watch_thread(struct zc_watchdog *wd, struct zc_watched *w, uint64_t now)
{
	pid_t tid = w->tid;
	struct zc_sched_view v;
	uint64_t slices;
	bool stuck, starved;

	if (!tid) {
		thread_files_close(w);
		return false;
	}
	if (read_sched_view(w, &v) < 0)
		return false;
	if (w->promoted) {
		if (now >= w->promoted_until && set_policy(tid, SCHED_IDLE) == 0) {
			w->promoted = false;
			w->last_demoted = now;
			w->have_seen = false;
		}
		return false;
	}
	if (!w->have_seen) {
		w->seen = v;
		w->have_seen = true;
		w->seen_stuck = false;
		return false;
	}
	slices = v.slices - w->seen.slices;
	starved = slices && (v.wait_ns - w->seen.wait_ns) / slices >= ZC_WATCH_WAIT_NS;
	stuck = v.run_ns == w->seen.run_ns && thread_runnable(w);
	if (starved || (stuck && w->seen_stuck)) {
		bool again = w->last_demoted && now - w->last_demoted < ZC_WATCH_AGAIN_MS;

		w->hold_ms = again ? w->hold_ms * 2 : ZC_WATCH_HOLD_MIN_MS;
		if (w->hold_ms > ZC_WATCH_HOLD_MAX_MS)
			w->hold_ms = ZC_WATCH_HOLD_MAX_MS;
		if (set_policy(tid, SCHED_OTHER) == 0) {
			w->promoted = true;
			w->promoted_until = now + w->hold_ms;
			__atomic_add_fetch(wd->promotions, 1, __ATOMIC_RELAXED);
		}
		w->have_seen = false;
		return false;
	}
	w->seen = v;
	w->seen_stuck = stuck;
	return stuck;
}

static void *watchdog_main(void *arg)
{
	struct zc_watchdog *wd = arg;
	uint64_t seen_requests = 0, requests;
	bool look_soon = false;
	struct zc_watched *w;

	pthread_setname_np(pthread_self(), "zcfuse-watch");
	pthread_mutex_lock(&wd->lock);
	while (!wd->stop) {
		unsigned int wait_ms;
		struct timespec ts;

		requests = __atomic_load_n(wd->activity, __ATOMIC_RELAXED);
		wait_ms =
		    look_soon || requests != seen_requests ? ZC_WATCH_ACTIVE_MS : ZC_WATCH_IDLE_MS;
		seen_requests = requests;
		zc_timespec_in(&ts, CLOCK_MONOTONIC, wait_ms);
		pthread_cond_timedwait(&wd->cond, &wd->lock, &ts);
		if (wd->stop)
			break;
		pthread_mutex_unlock(&wd->lock);
		look_soon = false;
		pthread_mutex_lock(&wd->tid_lock);
		for (w = wd->threads; w; w = w->next) {
			look_soon |= watch_thread(wd, w, zc_now_usec() / 1000);
			look_soon |= w->promoted;
		}
		pthread_mutex_unlock(&wd->tid_lock);
		pthread_mutex_lock(&wd->lock);
	}
	pthread_mutex_unlock(&wd->lock);
	return NULL;
}

void zc_watchdog_init(struct zc_watchdog *wd)
{
	memset(wd, 0, sizeof(*wd));
	pthread_mutex_init(&wd->tid_lock, NULL);
}

void zc_watchdog_fini(struct zc_watchdog *wd)
{
	pthread_mutex_destroy(&wd->tid_lock);
}

void zc_watchdog_add(struct zc_watchdog *wd, struct zc_watched *w)
{
	w->next = wd->threads;
	wd->threads = w;
}

int zc_watchdog_start(struct zc_watchdog *wd, const uint64_t *activity, uint64_t *promotions)
{
	pthread_condattr_t attr;
	int r;

	wd->activity = activity;
	wd->promotions = promotions;
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&wd->cond, &attr);
	pthread_condattr_destroy(&attr);
	pthread_mutex_init(&wd->lock, NULL);
	r = -pthread_create(&wd->thread, NULL, watchdog_main, wd);
	wd->started = r == 0;
	if (r < 0) {
		pthread_cond_destroy(&wd->cond);
		pthread_mutex_destroy(&wd->lock);
	}
	return r;
}

void zc_watchdog_stop(struct zc_watchdog *wd)
{
	struct zc_watched *w;

	if (!wd->started)
		return;
	pthread_mutex_lock(&wd->lock);
	wd->stop = true;
	pthread_cond_signal(&wd->cond);
	pthread_mutex_unlock(&wd->lock);
	pthread_join(wd->thread, NULL);
	wd->started = false;
	for (w = wd->threads; w; w = w->next)
		thread_files_close(w);
	pthread_cond_destroy(&wd->cond);
	pthread_mutex_destroy(&wd->lock);
}

void zc_watchdog_set_thread(struct zc_watchdog *wd, struct zc_watched *w, pid_t tid)
{
	pthread_mutex_lock(&wd->tid_lock);
	w->tid = tid;
	pthread_mutex_unlock(&wd->tid_lock);
}
