/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libzcfuse internals shared by the library's own files. */
#ifndef ZCFUSE_I_H
#define ZCFUSE_I_H

#define FUSE_USE_VERSION 312

#include <fuse_lowlevel.h>
#include <linux/fuse.h>
#include <stdbool.h>

#include "zc_chan.h"
#include "zcfuse/zcfuse.h"

#define ZC_EXPORT __attribute__((visibility("default")))

enum zc_cache_mode {
	ZC_CACHE_NEVER,
	ZC_CACHE_AUTO,
	ZC_CACHE_ALWAYS,
};

struct zc_opts {
	enum zc_cache_mode cache;
	double entry_timeout;
	double attr_timeout;
	bool entry_timeout_set;
	bool attr_timeout_set;
	bool writeback;
	bool direct_io;
	bool clone_fd;
	bool allow_other;
	/* -1: not given (on with allow_other), 0: off, 1: on */
	int default_permissions;
	bool ro;
	unsigned int threads;
	bool single_threaded;
	bool debug;
	bool splice;
	size_t splice_threshold;
	bool passthrough;
	/* FUSE over io_uring: asked for, and how the ring is served. */
	bool io_uring;
	struct zc_uring_conf uring;
};

/* Ring entries per queue by default (-o uring_depth=N). */
#define ZC_URING_DEPTH_DEFAULT 8
#define ZC_URING_DEPTH_MAX     128

/* What zc_ctx.priv points to. */
struct zc_req_priv {
	struct zc_session *s;
	fuse_req_t req; /* NULL on the transport's own READ and WRITE path */
};

struct zc_session {
	struct zc_backend_ops ops;
	void *userdata;
	struct zc_opts opts;
	struct fuse_session *se;
	char *fsname;
	char *mountpoint;
	bool mounted;
	bool writeback_on;
	unsigned int features; /* ZC_FEATURE_* the backend asked for */
	bool posix_acl_on;     /* the kernel enforces POSIX ACLs */
	struct zc_chan chan;
	bool chan_ready;
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

/* The fuse_lowlevel_ops table that turns requests into backend calls. */
extern const struct fuse_lowlevel_ops zc_dispatch_ops;

/* Effective default_permissions: on unless switched off, or with allow_other. */
bool zc_opts_default_permissions(const struct zc_opts *opts);

/* Entry and attribute timeouts in seconds after cache= and explicit values. */
double zc_opts_entry_timeout(const struct zc_opts *opts);
double zc_opts_attr_timeout(const struct zc_opts *opts);

/*
 * Clear setuid, and setgid when group-executable or the caller is outside
 * the file's group, as file_remove_privs() would after a write or truncate
 * by a caller without CAP_FSETID; the kernel is told that the mode changed.
 */
void zc_kill_suid_sgid(struct zc_session *s, const struct zc_ctx *ctx, zc_ino_t ino, uint64_t fh);

/* A TMPFILE reply: what a CREATE replies. */
struct zc_tmpfile_reply {
	struct fuse_entry_out entry;
	struct fuse_open_out open;
};

ssize_t zc_dispatch_tmpfile(struct zc_session *s, const struct fuse_in_header *hdr,
			    const struct fuse_create_in *in, struct zc_tmpfile_reply *out);
void zc_dispatch_tmpfile_undo(struct zc_session *s, const struct fuse_in_header *hdr,
			      const struct zc_tmpfile_reply *out);

/* Attributes of @ino changed behind the kernel's cache: drop them there. */
void zc_notify_attr_changed(struct zc_session *s, zc_ino_t ino);

/*
 * Serve @dev_fd, a descriptor that speaks the /dev/fuse protocol, without
 * mounting anything (tests and the fuzz target). The session owns @dev_fd
 * from then on: zc_session_destroy() closes it.
 */
int zc_session_connect(struct zc_session *s, int dev_fd);

/*
 * Lock waiters (zc_waiter.c): a blocking lock request that cannot be
 * granted at once waits on a thread of its own, so that it never holds a
 * thread or ring entry that other requests need. zc_waiter_start(), on the
 * thread that serves the request, runs @fn(@arg) on such a thread for
 * caller @uid; @fn replies there, as the request came (its /dev/fuse
 * descriptor, its ring entry). Returns -ENOLCK beyond the bounds or when no
 * thread can be had, and -EOPNOTSUPP when the transport runs no threads of
 * its own (zc_chan_worker_serve_one()): wait on this thread then. On the
 * waiter, zc_waiter_arm() before the backend's blocking call lets an
 * INTERRUPT for @req signal the thread, so that the call fails with EINTR
 * (false: do not wait, the request was interrupted or the mount is going),
 * and zc_waiter_disarm() follows the call, before the reply.
 * zc_waiter_enable() once the stop signal has its handler;
 * zc_waiter_stop_all() ends every waiter.
 */
int zc_waiter_start(struct zc_chan *c, uid_t uid, void (*fn)(void *arg), void *arg);
bool zc_waiter_arm(fuse_req_t req);
void zc_waiter_disarm(fuse_req_t req);
void zc_waiter_enable(struct zc_chan *c);
void zc_waiter_stop_all(struct zc_chan *c);

void zc_set_error(struct zc_session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Hand one line to the program's notice handler, if it set one. */
void zc_notice(struct zc_session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif /* ZCFUSE_I_H */
