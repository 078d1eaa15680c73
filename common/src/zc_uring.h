/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* FUSE over io_uring (-o io_uring): the ring transport. */
#ifndef ZC_URING_H
#define ZC_URING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct iovec;
struct zc_chan;

/* The fuse module's switch for FUSE over io_uring. */
#define ZC_URING_PARAM "/sys/module/fuse/parameters/enable_uring"

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

/* Why the running kernel will not serve FUSE over io_uring now, or NULL. */
const char *zc_uring_kernel_refusal(void);

#endif /* ZC_URING_H */
