/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Small helpers every layer of the library uses: files, clocks, capabilities, threads. */
#ifndef ZC_UTIL_H
#define ZC_UTIL_H

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#define ZC_PAGE 4096UL

/* A function of the library's public API (the rest stays hidden). */
#define ZC_EXPORT __attribute__((visibility("default")))

/* Read a small text file (sysfs, procfs) into @buf, NUL-terminated: its length or -errno. */
ssize_t zc_read_small_file(const char *path, char *buf, size_t size);

/* The unsigned number a small file holds (sysfs, procfs), or -errno. */
int zc_read_ulong_file(const char *path, unsigned long *ret);

/* Whether the daemon has capability @cap (CAP_*) in its effective set. */
bool zc_has_capability(int cap);
/*
 * Set the max_ratio (percent of the dirty-page limit) of the bdi of the
 * file system on device @dev; -errno (EACCES unless root).
 */
int zc_bdi_set_max_ratio(dev_t dev, unsigned int percent);

/* CLOCK_MONOTONIC in microseconds. */
uint64_t zc_now_usec(void);

/* *@ts = @clock's time now plus @ms milliseconds: a deadline for timed waits. */
void zc_timespec_in(struct timespec *ts, clockid_t clock, unsigned int ms);

/* The signal that wakes the library's threads out of blocking calls to end them. */
#define ZC_STOP_SIGNAL SIGUSR1

/*
 * Send @t the stop signal until it has ended (its blocking call returns
 * EINTR, and it sees that it must end), and join it.
 */
void zc_stop_thread(pthread_t t);

#endif /* ZC_UTIL_H */
