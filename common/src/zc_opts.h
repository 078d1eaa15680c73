/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A mount's options as parsed (zc_options.c): the configuration every layer
 * reads, handed down by the session; never changed once the mount serves.
 */
#ifndef ZC_OPTS_H
#define ZC_OPTS_H

#include <stdbool.h>
#include <stddef.h>

/*
 * The transport: by default FUSE over io_uring where the kernel allows it
 * (one notice says which and why), else /dev/fuse; -o io_uring asks for the
 * ring (io_uring=strict: or exit), -o noio_uring for /dev/fuse.
 */
enum zc_uring_choice {
	ZC_URING_AUTO = 0,
	ZC_URING_OFF,
	ZC_URING_ON,
};

/* How the ring is served (-o io_uring and the uring_* options). */
struct zc_uring_conf {
	bool strict;	    /* fail instead of falling back to /dev/fuse */
	unsigned int depth; /* entries per queue */
	bool pin;	    /* each queue's thread runs on the queue's CPU only */
	bool idle;	    /* queue threads run at SCHED_IDLE */
};

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
	double negative_timeout;
	bool entry_timeout_set;
	bool attr_timeout_set;
	bool negative_timeout_set;
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
	/* Seconds a request may wait before the kernel aborts the mount; 0: never. */
	unsigned int request_timeout;
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

/* The default splice threshold in bytes: smaller READs and WRITEs copy. */
#define ZC_SPLICE_THRESHOLD_DEFAULT (32 * 1024)

/* Name of the extended attribute of the mount root that holds the counters. */
#define ZC_STATS_XATTR "user.zcfuse.stats"

/* Effective default_permissions: on unless switched off, or with allow_other. */
bool zc_opts_default_permissions(const struct zc_opts *opts);

/* Entry and attribute timeouts in seconds after cache= and explicit values. */
double zc_opts_entry_timeout(const struct zc_opts *opts);
double zc_opts_attr_timeout(const struct zc_opts *opts);
/* How long the kernel keeps a name's absence: the entry timeout unless given. */
double zc_opts_negative_timeout(const struct zc_opts *opts);

#endif /* ZC_OPTS_H */
