/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The data path: READ replies and WRITE data moved between a request's
 * route and the backend's extents by zc_move(), and the one policy that
 * decides how: copied through memory, or spliced through the worker's pipe.
 *
 * The policy (struct zc_data_policy, one per mount):
 * - splicing needs pipes of pipe_size bytes (fs.pipe-max-size, at most
 *   1 MiB): a request takes one pipe slot for its header and one per page,
 *   so max_write is a page less than the pipe. A mount whose pipes cannot
 *   be sized, a thread whose pipe cannot be made, and a ring entry copy;
 * - READs and WRITEs below threshold bytes copy (-o splice_threshold),
 *   where a pipe costs more system calls than it saves;
 * - a READ reply whose extents take more pipe slots than the pipe has
 *   copies;
 * - /dev/fuse requests are received into the pipe while credit lasts: a
 *   large WRITE sets it, every other request uses up one. A request of less
 *   than threshold bytes of data received there is read into memory at once.
 * Copy mode (-o nosplice) is the same code with memory iterators only.
 */
#ifndef ZC_DATA_H
#define ZC_DATA_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "zcfuse/zcfuse.h"

/* The largest request's data in pages, as the kernel allows it (see zc_data.c). */
#define ZC_MAX_WRITE_PAGES 256UL
/* The zeros kept for holes (ZC_PAGE, zc_util.h): the longest hole a read may return. */
#define ZC_DATA_ZEROS (ZC_PAGE * ZC_MAX_WRITE_PAGES + ZC_PAGE)

struct zc_chan;
struct zc_req;
struct zc_stats;

struct zc_data_policy {
	bool splice;	  /* pipes are sized for the mount */
	size_t pipe_size; /* bytes per pipe */
	size_t threshold; /* READs and WRITEs below it copy */
	unsigned int credit;
};

/* READs in flight, in buckets by file handle, each under a lock of its own. */
#define ZC_DATA_READ_BUCKETS 64

struct zc_data_reads {
	struct {
		pthread_mutex_t lock;
		struct zc_req *head;
	} bucket[ZC_DATA_READ_BUCKETS];
};

/* Requests received through the pipe after a large write. */
#define ZC_PIPE_CREDIT 16

/*
 * Size the policy from the machine's limits and the options, and the
 * largest WRITE it allows (*@ret_max_write).
 */
void zc_data_policy_init(struct zc_data_policy *p, bool splice, size_t threshold,
			 size_t *ret_max_write, struct zc_stats *st);

/* Receive the next /dev/fuse request into the pipe? */
bool zc_data_receive_into_pipe(const struct zc_data_policy *p, bool have_pipe);

/* Leave a request of @len bytes received into the pipe there (its data spliced on)? */
bool zc_data_keep_in_pipe(const struct zc_data_policy *p, size_t len);

/* A request of @opcode with @size bytes of data was served: the credit follows. */
void zc_data_served(struct zc_data_policy *p, uint32_t opcode, size_t size);

/*
 * Reply to READ @req with the data of @ext (@n_ext extents that the
 * backend's read() gave for @size bytes), moved as the policy says.
 */
void zc_data_reply_read(struct zc_req *req, const struct zc_extent *ext, int n_ext, size_t size);

/*
 * Move the data of WRITE @req into @ext: the bytes moved, or -errno when
 * none moved. What is left of the request is discarded.
 */
ssize_t zc_data_write(struct zc_req *req, const struct zc_extent *ext, int n_ext);

/*
 * A READ of @fh is between the backend's read() and read_done() from
 * zc_data_read_begin() to zc_data_read_end(); zc_data_wait_reads() waits
 * until no READ of @fh is (read_done() follows the reply, so a release()
 * could otherwise overtake it).
 */
void zc_data_reads_init(struct zc_data_reads *r);
void zc_data_reads_fini(struct zc_data_reads *r);
void zc_data_read_begin(struct zc_req *req, uint64_t fh);
void zc_data_read_end(struct zc_req *req);
void zc_data_wait_reads(struct zc_chan *c, uint64_t fh);

#endif /* ZC_DATA_H */
