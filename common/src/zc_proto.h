/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The FUSE protocol, both ways: a request's arguments decoded into typed,
 * bounds-checked fields (zc_proto_decode()), and every kind of reply
 * encoded and sent through zc_req_send() (zc_reply_*()). Sizes that depend
 * on the protocol minor the kernel negotiated (the compat sizes of
 * <linux/fuse.h> for old minors) are decided here and nowhere else.
 */
#ifndef ZC_PROTO_H
#define ZC_PROTO_H

#include <linux/fuse.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>

#include "zcfuse/zcfuse.h"

struct zc_req;

/* What INIT negotiated. */
struct zc_conn {
	/* INIT was answered; requests other than INIT are served from then on. */
	bool init_done;
	/* DESTROY was served: the backend's destroy() ran. */
	bool destroyed;
	/* The kernel's protocol minor, and the one in use (the smaller of it and the library's). */
	uint32_t kernel_minor;
	uint32_t minor;
	/* What the kernel offered, and what the reply granted (flags2: bits 32 to 63). */
	uint32_t kernel_flags;
	uint32_t kernel_flags2;
	uint32_t flags;
	uint32_t flags2;
	uint32_t max_write;
	uint32_t max_pages;
	uint32_t max_readahead;
	/* Writeback caching and POSIX ACLs are on for the mount. */
	bool writeback;
	bool posix_acl;
};

/* How an opcode's arguments lie behind the fuse_in_header. */
struct zc_layout {
	/* The fixed argument struct at the library's minor (0: none). */
	uint16_t size;
	/* The fewest bytes of it a request may carry (INIT: major and minor). */
	uint16_t min;
	/* NUL-terminated names after it (a name, or two: rename, symlink). */
	uint8_t names;
	/* The data after the struct stays in the request's iterator (WRITE). */
	bool stream;
};

/* Every fixed argument struct the library decodes. */
union zc_in {
	struct fuse_init_in init;
	struct fuse_forget_in forget;
	struct fuse_batch_forget_in batch_forget;
	struct fuse_getattr_in getattr;
	struct fuse_setattr_in setattr;
	struct fuse_mknod_in mknod;
	struct fuse_mkdir_in mkdir;
	struct fuse_link_in link;
	struct fuse_rename_in rename;
	struct fuse_rename2_in rename2;
	struct fuse_open_in open;
	struct fuse_create_in create;
	struct fuse_read_in read;
	struct fuse_write_in write;
	struct fuse_release_in release;
	struct fuse_flush_in flush;
	struct fuse_fsync_in fsync;
	struct fuse_setxattr_in setxattr;
	struct fuse_getxattr_in getxattr;
	struct fuse_access_in access;
	struct fuse_interrupt_in interrupt;
	struct fuse_lk_in lk;
	struct fuse_fallocate_in fallocate;
	struct fuse_lseek_in lseek;
	struct fuse_copy_file_range_in copy_file_range;
	struct fuse_bmap_in bmap;
	struct fuse_ioctl_in ioctl;
	struct fuse_poll_in poll;
	struct fuse_syncfs_in syncfs;
};

/* A request's arguments, decoded. */
struct zc_args {
	/* The fixed struct, aligned; zero past what an older minor sends. */
	union zc_in in;
	/* The names, each NUL-terminated within the request; NULL past those the layout has. */
	const char *name;
	const char *name2;
	/*
	 * What follows the struct and the names, before the extensions; not
	 * NULL, even when empty, but for a streamed layout (the data stays in
	 * the iterator).
	 */
	const void *data;
	size_t data_len;
	/* The request extensions (fuse_in_header.total_extlen), last in the request. */
	const void *ext;
	size_t ext_len;
};

/*
 * The bytes of the fixed struct of @opcode with layout @l that a kernel
 * of protocol minor @minor sends (older minors send shorter structs).
 */
size_t zc_proto_in_size(uint32_t opcode, const struct zc_layout *l, uint32_t minor);

/*
 * Decode the @len argument bytes at @arg of a request of @opcode, laid out
 * as @l, from a kernel of minor @minor, whose header says @ext_units
 * 8-byte units of extensions. For a streamed layout @arg holds the fixed
 * struct only. 0, or -EINVAL when the request is shorter than the layout,
 * a name lacks its NUL, or the extensions do not fit.
 */
int zc_proto_decode(uint32_t opcode, const struct zc_layout *l, uint32_t minor, uint16_t ext_units,
		    const void *arg, size_t len, struct zc_args *ret);

/*
 * The parent's group that a create's extensions carry
 * (FUSE_CREATE_SUPP_GROUP): 1 with it in *@ret_gid, 0 when there is none,
 * -EINVAL when the extensions are malformed or hold more than one group.
 */
int zc_proto_create_group(const void *ext, size_t ext_len, uint32_t *ret_gid);

/* Reply sizes at protocol minor @minor. */
size_t zc_proto_entry_out_size(uint32_t minor);
size_t zc_proto_attr_out_size(uint32_t minor);
size_t zc_proto_statfs_out_size(uint32_t minor);
size_t zc_proto_init_out_size(uint32_t minor);

/* A timeout in seconds as the kernel takes it (negative: 0; huge: as good as never). */
void zc_proto_timeout(double t, uint64_t *ret_sec, uint32_t *ret_nsec);

/* struct stat as the kernel's struct fuse_attr. */
void zc_proto_attr(struct fuse_attr *a, const struct stat *st);

/* An entry, with its timeouts in seconds, as the kernel's struct fuse_entry_out. */
void zc_proto_entry(struct fuse_entry_out *out, const struct zc_entry *e, double entry_timeout,
		    double attr_timeout);

/*
 * Append a READDIR entry (@name, inode @ino, type from @mode, the next
 * offset @off) to @buf of @room bytes: the bytes taken, or more than @room
 * when it does not fit (nothing written then). READDIRPLUS: the same with
 * its entry @e in front.
 */
size_t zc_proto_add_dirent(char *buf, size_t room, const char *name, uint64_t ino, mode_t mode,
			   off_t off);
size_t zc_proto_add_direntplus(char *buf, size_t room, const char *name,
			       const struct fuse_entry_out *e, mode_t mode, off_t off);

/*
 * Replies, each sent once by @req's route: 0, or -errno from the route
 * (-ENOENT: the request was interrupted and the kernel took no reply).
 * zc_reply_err() takes a negative errno (0 is a reply without arguments).
 */
int zc_reply_err(struct zc_req *req, int error);
int zc_reply_buf(struct zc_req *req, const void *buf, size_t len);
int zc_reply_entry(struct zc_req *req, const struct fuse_entry_out *e);
int zc_reply_create(struct zc_req *req, const struct fuse_entry_out *e,
		    const struct fuse_open_out *o);
int zc_reply_attr(struct zc_req *req, const struct stat *st, double attr_timeout);
int zc_reply_open(struct zc_req *req, const struct fuse_open_out *o);
int zc_reply_write(struct zc_req *req, uint32_t size);
int zc_reply_statfs(struct zc_req *req, const struct statvfs *st);
int zc_reply_xattr_size(struct zc_req *req, uint32_t size);
int zc_reply_lseek(struct zc_req *req, uint64_t off);
int zc_reply_copy_range(struct zc_req *req, uint64_t copied);
int zc_reply_init(struct zc_req *req, const void *init_out);

/*
 * Tell the kernel to drop its cached attributes of @ino and its pages of
 * [@off, @off + @len) (@len 0: to the end; @off -1: no pages), on the
 * /dev/fuse descriptor @dev_fd: 0, or -errno (-ENOENT: the kernel no
 * longer knows @ino).
 */
struct zc_stats;
int zc_notify_inval_inode(int dev_fd, uint64_t ino, int64_t off, int64_t len, struct zc_stats *st);

#endif /* ZC_PROTO_H */
