/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * FUSE over io_uring: a ring entry's request checked and put together in
 * front of its payload (see zc_uring_ent.h). No liburing: built with or
 * without the ring, and fuzzed without one.
 */
#include <errno.h>
#include <linux/fuse.h>
#include <string.h>

#include "fuse_kernel_ext.h"
#include "zc_uring_ent.h"

int zc_uring_ent_parse(const struct zc_fuse_uring_req_header *hdr, char *payload,
		       size_t payload_size, char **ret_req, size_t *ret_len)
{
	struct fuse_in_header in;
	size_t payload_sz, head;
	char *req;

	memcpy(&in, hdr->in_out, sizeof(in));
	payload_sz = hdr->ring_ent_in_out.payload_sz;
	/*
	 * The opcode's argument struct is what in.len counts beyond the
	 * header and the payload. Every argument struct is a multiple of 8
	 * bytes (the kernel sends an empty one for opcodes without): the
	 * request then starts aligned, as dispatch reads it.
	 */
	if (in.len < sizeof(in) + payload_sz ||
	    in.len - payload_sz - sizeof(in) > sizeof(hdr->op_in) ||
	    (in.len - payload_sz - sizeof(in)) % 8 || payload_sz > payload_size)
		return -EIO;
	head = in.len - payload_sz;
	req = payload - head;
	memcpy(req, &in, sizeof(in));
	memcpy(req + sizeof(in), hdr->op_in, head - sizeof(in));
	*ret_req = req;
	*ret_len = in.len;
	return 0;
}

size_t zc_uring_ent_data_size(const char *req, size_t len, size_t payload)
{
	struct fuse_in_header in;
	struct fuse_read_in read_in;

	if (len < sizeof(in))
		return 0;
	memcpy(&in, req, sizeof(in));
	if (in.opcode == FUSE_WRITE)
		return payload;
	if (in.opcode != FUSE_READ || len < sizeof(in) + sizeof(read_in))
		return 0;
	memcpy(&read_in, req + sizeof(in), sizeof(read_in));
	return read_in.size;
}

bool zc_uring_ent_is_writeback(const char *req, size_t len)
{
	struct fuse_in_header in;
	struct fuse_write_in write_in;

	if (len < sizeof(in) + sizeof(write_in))
		return false;
	memcpy(&in, req, sizeof(in));
	if (in.opcode != FUSE_WRITE)
		return false;
	memcpy(&write_in, req + sizeof(in), sizeof(write_in));
	return write_in.write_flags & FUSE_WRITE_CACHE;
}
