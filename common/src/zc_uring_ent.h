/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * FUSE over io_uring: what a ring entry holds, read without the ring. The
 * kernel hands a request to an entry split in three (fuse_in_header, the
 * opcode's argument struct, the rest in the payload buffer); these
 * functions check that split and put the request back together in front of
 * the payload. They use no liburing, so they are built in every
 * configuration and the fuzz target reaches them without a ring.
 */
#ifndef ZC_URING_ENT_H
#define ZC_URING_ENT_H

#include <stdbool.h>
#include <stddef.h>

struct zc_fuse_uring_req_header;

/*
 * Put the request in a ring entry together: @hdr is the entry's header
 * buffer, @payload its payload buffer of @payload_size bytes, with at
 * least ZC_PAGE bytes of writable memory in front of it (the ring's entries
 * have their header page there). The header's len must count the header,
 * an argument struct of at most the header buffer's op_in and the payload
 * (ring_ent_in_out.payload_sz), the struct must be a multiple of 8 bytes,
 * and the payload must fit its buffer; the
 * header and the argument struct are then copied in front of the payload,
 * so that the whole request lies in memory as a /dev/fuse read would have
 * left it, for zc_dispatch(). Returns 0 with its start in *@ret_req and its
 * length in *@ret_len, or -EIO when the entry is malformed (the outputs are
 * then untouched and nothing is copied).
 */
int zc_uring_ent_parse(const struct zc_fuse_uring_req_header *hdr, char *payload,
		       size_t payload_size, char **ret_req, size_t *ret_len);

/*
 * Bytes a READ asks for, or a WRITE brings (@payload, its payload size),
 * for the request of @len bytes at @req; 0 for other requests and for a
 * READ too short to say. It decides which requests go to a queue's pool.
 */
size_t zc_uring_ent_data_size(const char *req, size_t len, size_t payload);

/*
 * Whether the request of @len bytes at @req is a WRITE from the page cache
 * (writeback, FUSE_WRITE_CACHE): nobody waits for it in a system call, but
 * the flusher keeps only so many in flight, so it goes to the pool at once.
 */
bool zc_uring_ent_is_writeback(const char *req, size_t len);

#endif /* ZC_URING_ENT_H */
