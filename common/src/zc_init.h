/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * INIT: what the library asks of the kernel and what the kernel grants,
 * for both transports, kernel passthrough and the ring, in one place. The
 * outcome (struct zc_conn) is read-only once INIT is answered.
 */
#ifndef ZC_INIT_H
#define ZC_INIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct fuse_init_in;
struct zc_conn;
struct zc_fuse_init_out;
struct zc_req;

/* What the library asks for at INIT. */
struct zc_init_want {
	/* The largest WRITE the transport's buffers take. */
	uint32_t max_write;
	bool writeback;
	bool dont_mask;
	bool posix_acl;
	bool flock;
	bool readdirplus;
	/* flags2 bits (ZC_FUSE_PASSTHROUGH, ZC_FUSE_OVER_IO_URING, ...) wanted where offered. */
	uint32_t flags2;
	/* With ZC_FUSE_REQUEST_TIMEOUT: the seconds a request may wait. */
	uint16_t request_timeout;
	/*
	 * Called with the limits of the reply when the ring is granted: the
	 * flags2 bits to take back (the rings cannot be sized for them).
	 */
	uint32_t (*ring_check)(void *data, uint32_t max_write, uint32_t max_pages);
	void *ring_data;
};

/*
 * Negotiate INIT from the kernel's request @in (zero past what the kernel
 * sent) and @want into the reply @out and @conn. Returns 0, 1 when the kernel speaks
 * a newer major (@out then asks for 7 and nothing is negotiated), or
 * -EPROTO for a major older than 7.
 */
int zc_init_negotiate(struct zc_conn *conn, const struct zc_init_want *want,
		      const struct fuse_init_in *in, struct zc_fuse_init_out *out);

/* Serve an INIT request: negotiate, start the backend, reply, start the ring. */
void zc_init_serve(struct zc_req *req);

#endif /* ZC_INIT_H */
