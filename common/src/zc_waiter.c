/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Lock waiters: a blocking lock request that cannot be granted at once
 * waits on a short-lived thread of its own, on either transport, so that it
 * never holds a /dev/fuse worker or a ring queue's thread that other
 * requests need. The request is kept (zc_req_keep()) and the thread replies
 * by its route, the way it came (the /dev/fuse descriptor it was read from,
 * or its ring entry, which stays with the request until then).
 *
 * The bounds keep one user from taking them all: ZC_WAITERS_MAX threads
 * overall, ZC_WAITERS_PER_UID for one caller uid, and on the ring the
 * ZC_URING_LOCK_ROOM entries of a queue registered for them beside
 * uring_depth (the ring route's keep()). A request beyond them is answered
 * ENOLCK at once.
 *
 * An INTERRUPT for a waiting request (its caller got a signal) reaches a
 * /dev/fuse worker, which calls zc_waiter_interrupt() with the request's
 * unique: it sends the thread ZC_STOP_SIGNAL, whose handler has no
 * SA_RESTART, so the backend's blocking call fails with EINTR, and the
 * request is answered EINTR. A signal that lands just before the thread
 * enters that call is lost, so it is sent again until the thread has left
 * its wait. An INTERRUPT may overtake its request's waiter (another worker
 * still serves the request): the last few such uniques are kept, and a
 * waiter that starts for one of them starts interrupted.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>

#include "zc_chan.h"
#include "zc_req.h"
#include "zc_util.h"
#include "zc_waiter.h"

/* A waiter runs the backend's lock call and the reply path: no more. */
#define ZC_WAITER_STACK (256 * 1024)
/* How often, and how long apart, an interrupted waiter is signalled. */
#define ZC_WAITER_KICKS	  20
#define ZC_WAITER_KICK_MS 5
/* INTERRUPTs kept for waiters that have not started yet. */
#define ZC_EARLY_INTERRUPTS 16

/* A mount's lock waiters, under lock. */
struct zc_waiters {
	pthread_mutex_t lock;
	struct zc_waiter *list;
	unsigned int nr;
	/* There are waiters once the transport runs its threads, and no more once it stops. */
	bool on;
	bool closed;
	/* INTERRUPTs that came before their request's waiter (zc_waiter_interrupt()). */
	uint64_t early[ZC_EARLY_INTERRUPTS];
	unsigned int next_early;
};

struct zc_waiter {
	struct zc_chan *c;
	struct zc_waiter *next;
	pthread_t thread;
	/* The same, as the thread itself saw it: the one to signal. */
	pthread_t self;
	uid_t uid;
	/* The request's unique, which an INTERRUPT names. */
	uint64_t unique;
	/* fn() has returned and the reply is out: join it. */
	bool done;
	void (*fn)(struct zc_waiter *wt, void *arg, struct zc_req *kept);
	void *arg;
	/* The request, kept for the reply. */
	struct zc_req *kept;
	/* Between zc_waiter_arm() and zc_waiter_disarm(), and whether interrupted. */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool waiting;
	bool interrupted;
};

static void waiter_free(struct zc_waiter *wt)
{
	pthread_cond_destroy(&wt->cond);
	pthread_mutex_destroy(&wt->lock);
	free(wt);
}

static void *waiter_main(void *arg)
{
	struct zc_waiter *wt = arg;
	struct zc_waiters *ws = wt->c->waiters;

	pthread_setname_np(pthread_self(), "zcfuse-lock");
	wt->fn(wt, wt->arg, wt->kept);
	zc_req_release(wt->kept);
	pthread_mutex_lock(&ws->lock);
	wt->done = true;
	ws->nr--;
	pthread_mutex_unlock(&ws->lock);
	return NULL;
}

/* Take the finished waiters off the list (with ws->lock held), to be joined. */
static struct zc_waiter *take_done(struct zc_waiters *ws)
{
	struct zc_waiter **p = &ws->list, *done = NULL, *wt;

	while ((wt = *p)) {
		if (wt->done) {
			*p = wt->next;
			wt->next = done;
			done = wt;
		} else {
			p = &wt->next;
		}
	}
	return done;
}

static void join_all(struct zc_waiter *list)
{
	struct zc_waiter *next;

	for (; list; list = next) {
		next = list->next;
		pthread_join(list->thread, NULL);
		waiter_free(list);
	}
}

static int waiter_create(struct zc_waiter *wt)
{
	struct sched_param param = { 0 };
	pthread_attr_t attr;
	sigset_t all, old;
	int r;

	r = pthread_attr_init(&attr);
	if (r)
		return -r;
	pthread_attr_setstacksize(&attr, ZC_WAITER_STACK);
	/*
	 * Normal priority, whatever a ring queue's thread runs at: once the
	 * lock is granted, the reply should not wait for an idle CPU.
	 */
	pthread_attr_setinheritsched(&attr, PTHREAD_EXPLICIT_SCHED);
	pthread_attr_setschedpolicy(&attr, SCHED_OTHER);
	pthread_attr_setschedparam(&attr, &param);
	/* Only the stop signal, like the transport's other threads. */
	sigfillset(&all);
	sigdelset(&all, ZC_STOP_SIGNAL);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = pthread_create(&wt->thread, &attr, waiter_main, wt);
	if (r == EPERM) {
		pthread_attr_setinheritsched(&attr, PTHREAD_INHERIT_SCHED);
		r = pthread_create(&wt->thread, &attr, waiter_main, wt);
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	return -r;
}

/* Whether an INTERRUPT for @unique came before its waiter (with ws->lock held); forgets it. */
static bool take_early_interrupt(struct zc_waiters *ws, uint64_t unique)
{
	unsigned int i;

	for (i = 0; i < ZC_EARLY_INTERRUPTS; i++) {
		if (ws->early[i] == unique) {
			ws->early[i] = 0;
			return true;
		}
	}
	return false;
}

int zc_waiter_start(struct zc_req *req, uid_t uid,
		    void (*fn)(struct zc_waiter *wt, void *arg, struct zc_req *kept), void *arg)
{
	struct zc_chan *c = req->chan;
	struct zc_waiters *ws = c->waiters;
	struct zc_waiter *wt, *done, *w;
	unsigned int mine = 0;
	pthread_condattr_t cattr;
	int r;

	if (!ws || !__atomic_load_n(&ws->on, __ATOMIC_ACQUIRE))
		return -EOPNOTSUPP;
	wt = calloc(1, sizeof(*wt));
	if (!wt)
		return -ENOLCK;
	wt->c = c;
	wt->uid = uid;
	wt->unique = req->unique;
	wt->fn = fn;
	wt->arg = arg;
	pthread_mutex_init(&wt->lock, NULL);
	pthread_condattr_init(&cattr);
	pthread_condattr_setclock(&cattr, CLOCK_MONOTONIC);
	pthread_cond_init(&wt->cond, &cattr);
	pthread_condattr_destroy(&cattr);

	pthread_mutex_lock(&ws->lock);
	done = take_done(ws);
	for (w = ws->list; w; w = w->next)
		mine += !w->done && w->uid == uid;
	r = -ENOLCK;
	if (!ws->closed && ws->nr < ZC_WAITERS_MAX && mine < ZC_WAITERS_PER_UID)
		r = zc_req_keep(req, &wt->kept) < 0 ? -ENOLCK : 0;
	/* Under the lock, so that zc_waiter_stop_all() sees every thread. */
	if (r == 0) {
		r = waiter_create(wt);
		if (r < 0) {
			zc_req_unkeep(req, wt->kept);
			r = -ENOLCK;
		}
	}
	if (r == 0) {
		wt->interrupted = take_early_interrupt(ws, req->unique);
		wt->next = ws->list;
		ws->list = wt;
		ws->nr++;
	}
	pthread_mutex_unlock(&ws->lock);
	join_all(done);
	if (r < 0) {
		waiter_free(wt);
		zc_stat_add(&c->stats.lock_refused, 1);
		return r;
	}
	zc_stat_add(&c->stats.lock_waits, 1);
	return 0;
}

/* Signal @wt out of its wait (with wt->lock held), a few times until it has left it. */
static void kick_waiter(struct zc_waiter *wt)
{
	unsigned int i;

	for (i = 0; wt->waiting && i < ZC_WAITER_KICKS; i++) {
		struct timespec ts;

		pthread_kill(wt->self, ZC_STOP_SIGNAL);
		zc_timespec_in(&ts, CLOCK_MONOTONIC, ZC_WAITER_KICK_MS);
		pthread_cond_timedwait(&wt->cond, &wt->lock, &ts);
	}
}

void zc_waiter_interrupt(struct zc_chan *c, uint64_t unique)
{
	struct zc_waiters *ws = c->waiters;
	struct zc_waiter *wt;

	if (!ws)
		return;
	pthread_mutex_lock(&ws->lock);
	for (wt = ws->list; wt; wt = wt->next)
		if (!wt->done && wt->unique == unique)
			break;
	if (!wt) {
		/* Not waiting (yet): remembered for a waiter that starts for it. */
		ws->early[ws->next_early++ % ZC_EARLY_INTERRUPTS] = unique;
		pthread_mutex_unlock(&ws->lock);
		return;
	}
	/* Under ws->lock: the waiter's thread is not joined and freed meanwhile. */
	pthread_mutex_lock(&wt->lock);
	if (!wt->interrupted)
		zc_stat_add(&c->stats.lock_interrupted, 1);
	wt->interrupted = true;
	kick_waiter(wt);
	pthread_mutex_unlock(&wt->lock);
	pthread_mutex_unlock(&ws->lock);
}

bool zc_waiter_arm(struct zc_waiter *wt)
{
	bool go;

	pthread_mutex_lock(&wt->lock);
	/* Unmounting: zc_waiter_stop_all() ends the waiters. */
	go = !wt->interrupted && !__atomic_load_n(&wt->c->waiters->closed, __ATOMIC_ACQUIRE);
	wt->self = pthread_self();
	wt->waiting = go;
	pthread_mutex_unlock(&wt->lock);
	return go;
}

void zc_waiter_disarm(struct zc_waiter *wt)
{
	pthread_mutex_lock(&wt->lock);
	wt->waiting = false;
	pthread_cond_broadcast(&wt->cond);
	pthread_mutex_unlock(&wt->lock);
}

int zc_waiters_setup(struct zc_chan *c)
{
	struct zc_waiters *ws = calloc(1, sizeof(*ws));

	if (!ws)
		return -ENOMEM;
	pthread_mutex_init(&ws->lock, NULL);
	c->waiters = ws;
	return 0;
}

void zc_waiter_enable(struct zc_chan *c)
{
	if (c->waiters)
		__atomic_store_n(&c->waiters->on, true, __ATOMIC_RELEASE);
}

void zc_waiter_stop_all(struct zc_chan *c)
{
	struct zc_waiters *ws = c->waiters;
	struct zc_waiter *list, *wt;

	if (!ws)
		return;
	pthread_mutex_lock(&ws->lock);
	__atomic_store_n(&ws->closed, true, __ATOMIC_RELEASE);
	list = ws->list;
	ws->list = NULL;
	pthread_mutex_unlock(&ws->lock);
	/* A waiter in the backend's lock call leaves it with EINTR and replies. */
	for (wt = list; wt; wt = wt->next)
		zc_stop_thread(wt->thread);
	while (list) {
		wt = list->next;
		waiter_free(list);
		list = wt;
	}
}

void zc_waiters_fini(struct zc_chan *c)
{
	struct zc_waiters *ws = c->waiters;

	if (!ws)
		return;
	zc_waiter_stop_all(c);
	pthread_mutex_destroy(&ws->lock);
	free(ws);
	c->waiters = NULL;
}
