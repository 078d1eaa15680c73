/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The /dev/fuse transport: a pool of worker threads that receive requests. */
#ifndef ZC_DEV_H
#define ZC_DEV_H

#include <stdbool.h>

struct zc_chan;
struct zc_worker;

/*
 * Serve until unmounted, zc_chan_stop() or a stop signal (SIGINT, SIGTERM,
 * SIGHUP); @single: on this thread alone. Returns the error the transport
 * stopped with (0 or -errno).
 */
int zc_dev_run(struct zc_chan *c, bool single);

/*
 * Serve on the calling thread, one request per zc_dev_worker_serve_one()
 * call (0, or -errno when receiving failed), with no other thread: for tests
 * and the fuzz target, which write requests to the device descriptor
 * themselves.
 */
struct zc_worker *zc_dev_worker_new(struct zc_chan *c);
int zc_dev_worker_serve_one(struct zc_worker *w);
void zc_dev_worker_free(struct zc_worker *w);

#endif /* ZC_DEV_H */
