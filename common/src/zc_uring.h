/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* FUSE over io_uring (-o io_uring): the ring transport. */
#ifndef ZC_URING_H
#define ZC_URING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "zc_opts.h"

struct zc_chan;

/* The fuse module's switch for FUSE over io_uring. */
#define ZC_URING_PARAM "/sys/module/fuse/parameters/enable_uring"

/*
 * zc_uring_setup() before mounting checks that the kernel and io_uring
 * allow it, asks for it at INIT and sets the connection's ring hooks (the
 * rings are sized for the INIT reply's limits, and the queue threads
 * register their entries once it was sent); requests that arrive on the
 * ring are served by zc_dispatch(), their replies go back into their
 * entries. zc_uring_stop() ends the queue threads; zc_uring_fini() frees
 * the rings. zc_uring_refusal() says why the mount does not use the ring
 * (NULL: it does, or never asked).
 */
int zc_uring_setup(struct zc_chan *c, const struct zc_uring_conf *conf, char *why, size_t why_size);
void zc_uring_stop(struct zc_chan *c);
void zc_uring_fini(struct zc_chan *c);
const char *zc_uring_refusal(const struct zc_chan *c);

/* Why the running kernel will not serve FUSE over io_uring now, or NULL. */
const char *zc_uring_kernel_refusal(void);

#endif /* ZC_URING_H */
