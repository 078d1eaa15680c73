/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The requests libfuse 3.14 parses (all but READ, WRITE and TMPFILE): its
 * callbacks (zc_lowlevel.c), and its custom I/O, through which the replies
 * it builds leave by the request's route (zc_fuse_glue.c).
 */
#ifndef ZC_LOWLEVEL_H
#define ZC_LOWLEVEL_H

#define FUSE_USE_VERSION 312

#include <fuse_lowlevel.h>
#include <stdint.h>

#include "zcfuse/zcfuse.h"

struct zc_req;
struct zc_session;

/* Let libfuse's replies out through the request's route; right after mounting. */
int zc_lowlevel_attach(struct zc_session *s, int dev_fd);

/*
 * The request libfuse serves on this thread: its callbacks' way to the
 * struct zc_req (libfuse 3.14 hands them no pointer of ours). Set only
 * while zc_lowlevel_serve() hands a request to libfuse, or dispatch
 * serves one itself (zc_lowlevel_set_current()).
 */
struct zc_req *zc_lowlevel_current(void);

/* Serve @req, whole in memory at @fbuf, through libfuse's parser and the callbacks below. */
void zc_lowlevel_serve(struct zc_req *req, const struct fuse_buf *fbuf);

/* The request served on this thread outside libfuse (NULL: none any more). */
void zc_lowlevel_set_current(struct zc_req *req);

/* The callbacks libfuse calls (zc_lowlevel.c). */
extern const struct fuse_lowlevel_ops zc_lowlevel_ops;

/* Open flags as the backend sees them in zc_file.flags and open_flags_in. */
int zc_backend_open_flags(const struct zc_session *s, int flags);
uint32_t zc_backend_open_flags_in(const struct zc_session *s, int flags);

/* The open reply's flags from the backend's zc_file and the mount's cache mode. */
void zc_file_info_out(const struct zc_session *s, const struct zc_file *zf, int app_flags,
		      struct fuse_file_info *fi);

/*
 * Kernel passthrough for an open about to be answered: the backing id goes
 * into @zreq's reply. 0 when the open takes the data path, or -errno.
 */
int zc_passthrough_open(struct zc_session *s, struct zc_req *zreq, zc_ino_t ino,
			const struct zc_file *zf);

#endif /* ZC_LOWLEVEL_H */
