/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libzcfuse internals shared by the library's own files. */
#ifndef ZCFUSE_I_H
#define ZCFUSE_I_H

#include <linux/fuse.h>
#include <pthread.h>
#include <stdbool.h>

#include "zc_backend.h"
#include "zc_chan.h"
#include "zc_notice.h"
#include "zc_opts.h"
#include "zc_uring.h"
#include "zc_util.h"
#include "zcfuse/zcfuse.h"

struct zc_mount;

struct zc_session {
	struct zc_backend backend;
	struct zc_opts opts;
	/* The mount, made by zc_mount.c (libfuse); NULL until zc_session_mount(). */
	struct zc_mount *mnt;
	char *fsname;
	char *mountpoint;
	bool mounted;
	bool remounted; /* zc_session_remount() changed a mount: nothing to serve */
	struct zc_chan chan;
	bool chan_ready;
	/* zc_session_connect()'s descriptor, closed with the session. */
	bool own_dev_fd;
	char err[512];
	struct zc_notifier notifier;
	zc_option_fn option_fn;
	void *option_data;
	/*
	 * zc_session_loop() runs on loop_thread, with the library's signal
	 * handlers, while looping; zc_session_stop() reads both under loop_lock.
	 */
	pthread_mutex_t loop_lock;
	pthread_t loop_thread;
	bool looping;
};

/*
 * The mount flags of @opts that libfuse 3.14 takes as options, as those
 * option names, into @ret_names (at most @max); returns how many.
 */
size_t zc_opts_libfuse_flags(const struct zc_opts *opts, const char **ret_names, size_t max);

/* The mount flags of @opts that libfuse cannot set: set after mounting. */
unsigned long zc_opts_flags_after_mount(const struct zc_opts *opts);

/* The name of the option that sets the first of @flags (MS_*), for messages. */
const char *zc_opts_flag_name(unsigned long flags);

/* Release what the options allocated (fsname=, subtype=). */
void zc_opts_free(struct zc_opts *opts);

/*
 * Serve @dev_fd, a descriptor that speaks the /dev/fuse protocol, without
 * mounting anything (tests and the fuzz target). The session owns @dev_fd
 * from then on: zc_session_destroy() closes it.
 */
int zc_session_connect(struct zc_session *s, int dev_fd);

void zc_set_error(struct zc_session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Hand one line to the program's notice handler, if it set one. */
#define zc_notice(s, ...) zc_notify(&(s)->notifier, __VA_ARGS__)

#endif /* ZCFUSE_I_H */
