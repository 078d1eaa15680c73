/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Lock waiters: a blocking lock request that cannot be granted at once
 * waits on a thread of its own, so that it never holds a thread or ring
 * entry that other requests need.
 */
#ifndef ZC_WAITER_H
#define ZC_WAITER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct zc_chan;
struct zc_req;
struct zc_waiter;

/* Threads waiting for locks, overall and for one caller uid. */
#define ZC_WAITERS_MAX	   128
#define ZC_WAITERS_PER_UID 32
/*
 * Ring entries per queue that lock waiters may keep: twice what one uid
 * may, so that one user who waits on one queue alone never takes all of
 * it from the others.
 */
#define ZC_URING_LOCK_ROOM (2 * ZC_WAITERS_PER_UID)

/*
 * zc_waiter_start(), on the thread that serves @req, keeps the request
 * (zc_req_keep()) and runs @fn(wt, @arg, kept) on a thread of its own for
 * caller @uid; @fn replies to the kept request, by its route. Returns
 * -ENOLCK beyond the bounds or when no thread can be had, and -EOPNOTSUPP
 * when the transport runs no threads of its own (zc_dev_worker_serve_one()):
 * wait on this thread then. On the waiter, zc_waiter_arm() before the
 * backend's blocking call lets an INTERRUPT for the request signal the
 * thread, so that the call fails with EINTR (false: do not wait, the
 * request was interrupted or the mount is going), and zc_waiter_disarm()
 * follows the call, before the reply. zc_waiter_interrupt() serves an
 * INTERRUPT of request @unique. zc_waiters_setup() makes a mount's
 * waiters (until then zc_waiter_start() answers -EOPNOTSUPP),
 * zc_waiter_enable() once the stop signal has its handler;
 * zc_waiter_stop_all() ends every waiter, zc_waiters_fini() frees them.
 */
int zc_waiter_start(struct zc_req *req, uid_t uid,
		    void (*fn)(struct zc_waiter *wt, void *arg, struct zc_req *kept), void *arg);
bool zc_waiter_arm(struct zc_waiter *wt);
void zc_waiter_disarm(struct zc_waiter *wt);
void zc_waiter_interrupt(struct zc_chan *c, uint64_t unique);
int zc_waiters_setup(struct zc_chan *c);
void zc_waiter_enable(struct zc_chan *c);
void zc_waiter_stop_all(struct zc_chan *c);
void zc_waiters_fini(struct zc_chan *c);

#endif /* ZC_WAITER_H */
