/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libzcfuse internals shared by the library's own files. */
#ifndef ZCFUSE_I_H
#define ZCFUSE_I_H

#include <linux/fuse.h>
#include <stdbool.h>

#include "zc_chan.h"
#include "zc_uring.h"
#include "zcfuse/zcfuse.h"

#define ZC_EXPORT __attribute__((visibility("default")))

struct zc_mount;

enum zc_cache_mode {
	ZC_CACHE_NEVER,
	ZC_CACHE_AUTO,
	ZC_CACHE_ALWAYS,
};

/* Kernel passthrough: off (the library's default), where possible, or as asked. */
enum zc_passthrough_choice {
	ZC_PASSTHROUGH_OFF,
	ZC_PASSTHROUGH_AUTO,
	ZC_PASSTHROUGH_ON,
};

struct zc_opts {
	enum zc_cache_mode cache;
	double entry_timeout;
	double attr_timeout;
	bool entry_timeout_set;
	bool attr_timeout_set;
	bool writeback;
	/* Percent of the dirty-page limit the mount may hold under writeback. */
	unsigned int writeback_ratio;
	bool writeback_ratio_set;
	bool direct_io;
	bool clone_fd;
	bool allow_other;
	/* -1: not given (on with allow_other), 0: off, 1: on */
	int default_permissions;
	/*
	 * The kernel's mount flags asked for (MS_RDONLY, MS_NOSUID, ...; by
	 * default MS_NOSUID | MS_NODEV, as libfuse mounts).
	 */
	unsigned long mount_flags;
	/* fsname= and subtype= (NULL: zc_session_set_fsname()'s, the program's name). */
	char *fsname;
	char *subtype;
	/* remount: change the flags of the mount there instead of mounting. */
	bool remount;
	/* user_id= or group_id= was given: what the kernel sets at mount. */
	bool kernel_ids;
	unsigned int threads;
	bool single_threaded;
	bool debug;
	bool splice;
	size_t splice_threshold;
	/* As asked for; passthrough: whether this mount uses it (session_prepare()). */
	enum zc_passthrough_choice passthrough_choice;
	bool passthrough;
	/* FUSE over io_uring: where the kernel allows it, or as asked; how the ring is served. */
	enum zc_uring_choice io_uring;
	struct zc_uring_conf uring;
};

/* The mount's share of the dirty-page limit under writeback (-o writeback_ratio=N). */
#define ZC_WRITEBACK_RATIO_DEFAULT 20

/* Ring entries per queue by default (-o uring_depth=N). */
#define ZC_URING_DEPTH_DEFAULT 8
#define ZC_URING_DEPTH_MAX     128

struct zc_session {
	struct zc_backend_ops ops;
	void *userdata;
	struct zc_opts opts;
	/* The mount, made by zc_mount.c (libfuse); NULL until zc_session_mount(). */
	struct zc_mount *mnt;
	char *fsname;
	char *mountpoint;
	dev_t mount_dev; /* of the mount zc_session_mount() made; 0: unknown */
	bool mounted;
	bool remounted;	       /* zc_session_remount() changed a mount: nothing to serve */
	unsigned int features; /* ZC_FEATURE_* the backend asked for */
	struct zc_chan chan;
	bool chan_ready;
	/* zc_session_connect()'s descriptor, closed with the session. */
	bool own_dev_fd;
	char err[512];
	zc_notice_fn notice;
	void *notice_data;
	zc_option_fn option_fn;
	void *option_data;
};

/* The default splice threshold in bytes: smaller READs and WRITEs copy. */
#define ZC_SPLICE_THRESHOLD_DEFAULT (32 * 1024)

/* Name of the extended attribute of the mount root that holds the counters. */
#define ZC_STATS_XATTR "user.zcfuse.stats"

/* Effective default_permissions: on unless switched off, or with allow_other. */
bool zc_opts_default_permissions(const struct zc_opts *opts);

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

/* Entry and attribute timeouts in seconds after cache= and explicit values. */
double zc_opts_entry_timeout(const struct zc_opts *opts);
double zc_opts_attr_timeout(const struct zc_opts *opts);

/*
 * Serve @dev_fd, a descriptor that speaks the /dev/fuse protocol, without
 * mounting anything (tests and the fuzz target). The session owns @dev_fd
 * from then on: zc_session_destroy() closes it.
 */
int zc_session_connect(struct zc_session *s, int dev_fd);

void zc_set_error(struct zc_session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Hand one line to the program's notice handler, if it set one. */
void zc_notice(struct zc_session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif /* ZCFUSE_I_H */
