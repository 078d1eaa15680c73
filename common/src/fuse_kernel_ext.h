/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * FUSE protocol definitions newer than the installed <linux/fuse.h>
 * (protocol 7.38), up to the minor the library speaks. Values and layouts
 * follow the kernel's include/uapi/linux/fuse.h; each block says which
 * protocol minor introduced it. Nothing else in the tree defines these.
 */
#ifndef ZC_FUSE_KERNEL_EXT_H
#define ZC_FUSE_KERNEL_EXT_H

#include <linux/fuse.h>
#include <linux/ioctl.h>
#include <stddef.h>
#include <stdint.h>

#ifndef FUSE_DEV_IOC_MAGIC
#define FUSE_DEV_IOC_MAGIC 229
#endif

/* The protocol minor the library speaks (zc_proto.c decodes and encodes it). */
#define ZC_FUSE_KERNEL_MINOR 45

/*
 * INIT: bits 32..63 of the flags travel in flags2 of fuse_init_in and
 * fuse_init_out, present when FUSE_INIT_EXT is set in flags (7.36).
 */
#define ZC_INIT_FLAGS2(bit) (1U << ((bit)-32))

/* Byte offsets in fuse_init_out: flags2 (7.36) and max_stack_depth (7.40). */
#define ZC_INIT_OUT_FLAGS2	    32
#define ZC_INIT_OUT_MAX_STACK_DEPTH 36

/*
 * OPEN: the kernel passes a file's f_flags, where an open for execve()
 * carries __FMODE_EXEC (FMODE_EXEC, bit 5), a bit no open(2) flag uses.
 */
#define ZC_KERNEL_FMODE_EXEC 040

/* ---- The parent's group with a create (7.39) ---- */

/*
 * INIT flag 34: CREATE, MKNOD, MKDIR, SYMLINK and TMPFILE carry, as a
 * FUSE_EXT_GROUPS extension, the parent directory's group when the caller
 * is in it and it is not the caller's fsgid (fs/fuse/dir.c,
 * get_create_supp_group()); without the extension the caller is not in it
 * but through its fsgid.
 */
#define ZC_FUSE_CREATE_SUPP_GROUP ZC_INIT_FLAGS2(34)

/*
 * Extensions lie at the end of a request, fuse_in_header.total_extlen
 * 8-byte units of them, each a struct fuse_ext_header (its size, a
 * multiple of 8, includes the header) and its body. Types up to
 * FUSE_MAX_NR_SECCTX (31) are security contexts.
 */
#define ZC_FUSE_EXT_GROUPS 32

/* The body of a ZC_FUSE_EXT_GROUPS extension. */
struct zc_fuse_supp_groups {
	uint32_t nr_groups;
	uint32_t groups[];
};

/* ---- Shared mmap of FOPEN_DIRECT_IO files (7.39) ---- */

/* INIT flag 36: MAP_SHARED of a direct_io file is allowed (page cache for it). */
#define ZC_FUSE_DIRECT_IO_ALLOW_MMAP ZC_INIT_FLAGS2(36)

/* ---- No file handles of the mount (7.40) ---- */

/*
 * INIT flag 38: the server serves no LOOKUP of a forgotten node id, so the
 * kernel offers no file handles of the mount (name_to_handle_at() fails
 * with EOPNOTSUPP) instead of handles that stop working.
 */
#define ZC_FUSE_NO_EXPORT_SUPPORT ZC_INIT_FLAGS2(38)

/* ---- Kernel passthrough (7.40) ---- */

/* INIT flag 37: the server may open files in passthrough mode. */
#define ZC_FUSE_PASSTHROUGH ZC_INIT_FLAGS2(37)

/* Open reply flag: reads, writes and mmap go to the backing file. */
#define ZC_FOPEN_PASSTHROUGH (1U << 7)

/*
 * The only open reply flags the kernel takes beside FOPEN_PASSTHROUGH
 * (FOPEN_PASSTHROUGH_MASK in fs/fuse/iomode.c): with any other, such as
 * FOPEN_KEEP_CACHE, the open fails with EIO. A passthrough inode does not
 * use the mount's page cache, so there is nothing to keep.
 */
#define ZC_FOPEN_PASSTHROUGH_ALLOWED                                                               \
	(ZC_FOPEN_PASSTHROUGH | FOPEN_DIRECT_IO | FOPEN_PARALLEL_DIRECT_WRITES | FOPEN_NOFLUSH)

/*
 * Stacking depth the server allows under the mount: a backing file must
 * live on a file system of a smaller depth (plain disks and tmpfs are 0).
 * The kernel's limit (FILESYSTEM_MAX_STACK_DEPTH) is 2.
 */
#define ZC_PASSTHROUGH_STACK_DEPTH 1

/* fuse_open_out: the last u32 (padding before 7.40) is the backing id. */
struct zc_fuse_open_out {
	uint64_t fh;
	uint32_t open_flags;
	int32_t backing_id;
};

struct zc_fuse_backing_map {
	int32_t fd;
	uint32_t flags;
	uint64_t padding;
};

/* Register a backing file; returns a backing id > 0. Needs CAP_SYS_ADMIN. */
#define ZC_FUSE_DEV_IOC_BACKING_OPEN _IOW(FUSE_DEV_IOC_MAGIC, 1, struct zc_fuse_backing_map)
/* Drop the server's reference to a backing id. */
#define ZC_FUSE_DEV_IOC_BACKING_CLOSE _IOW(FUSE_DEV_IOC_MAGIC, 2, uint32_t)

_Static_assert(sizeof(struct zc_fuse_open_out) == sizeof(struct fuse_open_out),
	       "fuse_open_out layout");
_Static_assert(offsetof(struct fuse_init_out, flags2) == ZC_INIT_OUT_FLAGS2,
	       "fuse_init_out layout");

/* ---- STATX (7.39), answered ENOSYS: the kernel then asks GETATTR ---- */

#define ZC_FUSE_STATX 52

/* ---- The INIT reply as of 7.43 (max_stack_depth 7.40, request_timeout 7.43) ---- */

struct zc_fuse_init_out {
	uint32_t major;
	uint32_t minor;
	uint32_t max_readahead;
	uint32_t flags;
	uint16_t max_background;
	uint16_t congestion_threshold;
	uint32_t max_write;
	uint32_t time_gran;
	uint16_t max_pages;
	uint16_t map_alignment;
	uint32_t flags2;
	uint32_t max_stack_depth;
	uint16_t request_timeout;
	uint16_t unused[11];
};

_Static_assert(sizeof(struct zc_fuse_init_out) == sizeof(struct fuse_init_out),
	       "fuse_init_out layout");
_Static_assert(offsetof(struct zc_fuse_init_out, max_stack_depth) == ZC_INIT_OUT_MAX_STACK_DEPTH,
	       "fuse_init_out layout");

/* ---- COPY_FILE_RANGE_64 (7.45): fuse_copy_file_range_in, a 64-bit count back ---- */

#define ZC_FUSE_COPY_FILE_RANGE_64 53

struct zc_fuse_copy_file_range_out {
	uint64_t bytes_copied;
};

/* ---- Request timeout (7.43) ---- */

/*
 * INIT flag 42: the kernel aborts the connection once a request has waited
 * longer than the INIT reply's request_timeout seconds (it looks every
 * 15 s; fs.fuse.default_request_timeout and max_request_timeout bound it).
 */
#define ZC_FUSE_REQUEST_TIMEOUT ZC_INIT_FLAGS2(42)

/* ---- FUSE over io_uring (7.42) ---- */

/*
 * INIT flag 41: the server serves requests from io_uring ring entries. The
 * kernel offers it only while /sys/module/fuse/parameters/enable_uring is Y.
 */
#define ZC_FUSE_OVER_IO_URING ZC_INIT_FLAGS2(41)

/* The protocol minor that introduced it. */
#define ZC_FUSE_URING_MINOR	       42

#define ZC_FUSE_URING_IN_OUT_HEADER_SZ 128
#define ZC_FUSE_URING_OP_IN_OUT_SZ     128

/* The last part of a ring entry's header, written by both sides. */
struct zc_fuse_uring_ent_in_out {
	uint64_t flags;
	/* The request's id; a commit names it in zc_fuse_uring_cmd_req. */
	uint64_t commit_id;
	/* Bytes used in the payload buffer, in either direction. */
	uint32_t payload_sz;
	uint32_t padding;
	uint64_t reserved;
};

/*
 * The header buffer of a ring entry (iov[0] of REGISTER): fuse_in_header on
 * fetch and fuse_out_header on commit in in_out; the opcode's fixed argument
 * struct (the request's first argument) in op_in; everything after that
 * argument, and every reply argument, travels in the payload buffer.
 */
struct zc_fuse_uring_req_header {
	char in_out[ZC_FUSE_URING_IN_OUT_HEADER_SZ];
	char op_in[ZC_FUSE_URING_OP_IN_OUT_SZ];
	struct zc_fuse_uring_ent_in_out ring_ent_in_out;
};

/* cmd_op of an IORING_OP_URING_CMD on the /dev/fuse descriptor. */
enum zc_fuse_uring_cmd {
	ZC_FUSE_IO_URING_CMD_INVALID = 0,
	/* Register a header and a payload buffer (iovec[2]) and fetch a request. */
	ZC_FUSE_IO_URING_CMD_REGISTER = 1,
	/* Commit the reply of commit_id and fetch the next request. */
	ZC_FUSE_IO_URING_CMD_COMMIT_AND_FETCH = 2,
};

/* In the 80-byte command area of a 128-byte SQE. */
struct zc_fuse_uring_cmd_req {
	uint64_t flags;
	uint64_t commit_id;
	/* The queue: one per possible CPU, requests go to the sender's CPU. */
	uint16_t qid;
	uint8_t padding[6];
};

_Static_assert(sizeof(struct zc_fuse_uring_ent_in_out) == 32, "fuse_uring_ent_in_out layout");
_Static_assert(sizeof(struct zc_fuse_uring_req_header) == 288, "fuse_uring_req_header layout");
_Static_assert(sizeof(struct zc_fuse_uring_cmd_req) <= 80, "fuse_uring_cmd_req fits an SQE128");

#endif /* ZC_FUSE_KERNEL_EXT_H */
