/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * One request from the kernel and the way back for its reply. The
 * transport that received a request builds its struct zc_req: where the
 * request's bytes are (an iterator over a pipe or memory), where a reply
 * goes (its route: /dev/fuse by write, /dev/fuse by splice from the
 * worker's pipe, or a ring entry), and the memory a reply may be built in.
 * Dispatch serves it, and every reply, whoever builds it, leaves through
 * zc_req_send(), which hands it to the route. Nothing else decides where a
 * reply goes.
 */
#ifndef ZC_REQ_H
#define ZC_REQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "zc_iter.h"
#include "zc_proto.h"

struct fuse_in_header;
struct zc_chan;
struct zc_req;

enum zc_route_kind {
	ZC_ROUTE_DEV,	     /* /dev/fuse, replies written from memory */
	ZC_ROUTE_DEV_SPLICE, /* /dev/fuse, with a pipe that replies may be spliced from */
	ZC_ROUTE_RING,	     /* a FUSE over io_uring entry */
};

/* What a transport does with the replies of the requests it received. */
struct zc_route {
	enum zc_route_kind kind;
	/*
	 * Send a reply that lies in memory (its fuse_out_header first):
	 * bytes taken, or -errno (-ENOENT: the request was interrupted).
	 */
	ssize_t (*send)(struct zc_req *req, const struct iovec *iov, int count);
	/*
	 * ZC_ROUTE_DEV_SPLICE: send the reply of @len bytes that lies in the
	 * request's pipe (req->pipe), header first: bytes sent or -errno.
	 */
	ssize_t (*send_pipe)(struct zc_req *req, size_t len);
	/*
	 * The request will be answered later, from another thread (a lock
	 * waiter): hold what the reply needs (0), or -ENOLCK when the
	 * transport cannot spare it. NULL: nothing to hold.
	 */
	int (*keep)(struct zc_req *req);
	/* Take keep() back, on the thread that serves the request, before it returns. */
	void (*unkeep)(struct zc_req *req);
	/* A kept request was answered, from another thread: give back what it held. */
	void (*release)(struct zc_req *req);
};

struct zc_req {
	struct zc_chan *chan;
	const struct zc_route *route;
	/* The transport's own: its worker, its ring entry. */
	void *transport;
	/* /dev/fuse routes: the descriptor replies go to, the pipe to splice them from. */
	int dev_fd;
	int pipe[2];
	/* Memory a reply may be built in (header first), and how many bytes may follow the header. */
	char *reply_buf;
	size_t reply_room;
	/* Where the request's headers are pulled to when they are not in memory. */
	char *buf;

	/* The request: its header, and the rest of it, behind the header. */
	const struct fuse_in_header *hdr;
	uint64_t unique;
	uint32_t opcode;
	struct zc_iter *src;
	/* The protocol minor in use, which sizes replies (zc_proto.h). */
	uint32_t minor;
	/* Its arguments, decoded by dispatch before the handler runs. */
	struct zc_args args;
	/* The reply sent: its error and length (for -d), once sent. */
	bool replied;
	int reply_error;
	uint32_t reply_len;

	/* What dispatch learned of it, for the reply: set before the backend is called. */
	bool kill_suidgid;
	int32_t backing_id; /* kernel passthrough: the OPEN or CREATE reply carries it */
	/* A create's word on the parent's group: zc_req_create_group()'s answer. */
	int create_group;
	uint32_t create_gid;

	/* A READ between the backend's read() and read_done() (zc_data_wait_reads()). */
	uint64_t read_fh;
	struct zc_req *next_read;
	/* Kept for a reply from another thread (zc_req_keep()). */
	bool kept;
};

/* Send a reply from memory on @req's route: bytes sent, or -errno. */
ssize_t zc_req_send(struct zc_req *req, const struct iovec *iov, int count);

/* Send the reply of @len bytes that lies in @req's pipe, header first (ZC_ROUTE_DEV_SPLICE). */
ssize_t zc_req_send_pipe(struct zc_req *req, size_t len);

/* A reply of @error (0 or -errno) with @arglen bytes of @arg when 0: 0 or -errno. */
int zc_req_reply(struct zc_req *req, int error, const void *arg, size_t arglen);

/*
 * Keep @req for a reply from another thread: a copy of it that stays valid
 * until zc_req_release() (*@ret_kept), or -ENOLCK / -ENOMEM. The transport
 * then leaves the reply to whoever holds the copy.
 */
int zc_req_keep(struct zc_req *req, struct zc_req **ret_kept);

/* Take zc_req_keep() back while still serving @req: the transport replies after all. */
void zc_req_unkeep(struct zc_req *req, struct zc_req *kept);

/* The kept request was answered: give back what it held, and free the copy. */
void zc_req_release(struct zc_req *kept);

#endif /* ZC_REQ_H */
