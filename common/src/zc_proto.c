/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The FUSE protocol: requests decoded, replies encoded, sizes by protocol minor. */
#include <errno.h>
#include <string.h>
#include <sys/uio.h>

#include "fuse_kernel_ext.h"
#include "zc_iter.h"
#include "zc_proto.h"
#include "zc_req.h"

size_t zc_proto_in_size(uint32_t opcode, const struct zc_layout *l, uint32_t minor)
{
	switch (opcode) {
	case FUSE_GETATTR:
		return minor < 9 ? 0 : l->size;
	case FUSE_READ:
	case FUSE_READDIR:
	case FUSE_WRITE:
		/* 7.9 added lock_owner, flags and padding. */
		return minor < 9 ? FUSE_COMPAT_WRITE_IN_SIZE : l->size;
	case FUSE_RELEASE:
	case FUSE_RELEASEDIR:
		/* 7.8 added release_flags and lock_owner. */
		return minor < 8 ? 16 : l->size;
	case FUSE_FLUSH:
		/* 7.7 added lock_owner. */
		return minor < 7 ? 16 : l->size;
	case FUSE_MKNOD:
		return minor < 12 ? FUSE_COMPAT_MKNOD_IN_SIZE : l->size;
	case FUSE_CREATE:
		/* Before 7.12 a create carried an open's struct. */
		return minor < 12 ? sizeof(struct fuse_open_in) : l->size;
	case FUSE_SETXATTR:
		/* The library does not ask for FUSE_SETXATTR_EXT: the short struct. */
		return FUSE_COMPAT_SETXATTR_IN_SIZE;
	}
	return l->size;
}

int zc_proto_decode(uint32_t opcode, const struct zc_layout *l, uint32_t minor, uint16_t ext_units,
		    const void *arg, size_t len, struct zc_args *ret)
{
	size_t fixed = zc_proto_in_size(opcode, l, minor), ext_len = (size_t)ext_units * 8;
	const char *p = arg, *nul;
	size_t rest;
	unsigned int i;

	memset(ret, 0, sizeof(*ret));
	if (fixed > sizeof(ret->in))
		return -EINVAL;
	/* A layout with a minimum takes what is there of the rest (INIT). */
	if (l->min && l->min < fixed) {
		if (len < l->min)
			return -EINVAL;
		if (len < fixed)
			fixed = len;
	}
	if (len < fixed)
		return -EINVAL;
	if (fixed)
		memcpy(&ret->in, p, fixed);
	if (l->stream)
		return 0;
	rest = len - fixed;
	p += fixed;
	if (ext_len > rest)
		return -EINVAL;
	rest -= ext_len;
	if (ext_len) {
		ret->ext = p + rest;
		ret->ext_len = ext_len;
	}
	for (i = 0; i < l->names; i++) {
		nul = memchr(p, '\0', rest);
		if (!nul)
			return -EINVAL;
		if (i == 0)
			ret->name = p;
		else
			ret->name2 = p;
		rest -= (size_t)(nul + 1 - p);
		p = nul + 1;
	}
	/* Never NULL: an empty value (setxattr of "") still has its place. */
	ret->data = p;
	ret->data_len = rest;
	return 0;
}

int zc_proto_create_group(const void *ext, size_t ext_len, uint32_t *ret_gid)
{
	const char *base = ext;
	size_t off;
	int found = 0;

	*ret_gid = 0;
	/* Copied out: the extensions need not be aligned in memory. */
	for (off = 0; off < ext_len;) {
		struct fuse_ext_header xh;
		struct zc_fuse_supp_groups sg;

		if (ext_len - off < sizeof(xh))
			return -EINVAL;
		memcpy(&xh, base + off, sizeof(xh));
		if (xh.size < sizeof(xh) || xh.size % 8 || xh.size > ext_len - off)
			return -EINVAL;
		if (xh.type == ZC_FUSE_EXT_GROUPS) {
			if (found || xh.size < sizeof(xh) + sizeof(sg) + sizeof(uint32_t))
				return -EINVAL;
			memcpy(&sg, base + off + sizeof(xh), sizeof(sg));
			if (sg.nr_groups != 1)
				return -EINVAL;
			memcpy(ret_gid, base + off + sizeof(xh) + sizeof(sg), sizeof(*ret_gid));
			found = 1;
		}
		off += xh.size;
	}
	return found;
}

size_t zc_proto_entry_out_size(uint32_t minor)
{
	return minor < 9 ? FUSE_COMPAT_ENTRY_OUT_SIZE : sizeof(struct fuse_entry_out);
}

size_t zc_proto_attr_out_size(uint32_t minor)
{
	return minor < 9 ? FUSE_COMPAT_ATTR_OUT_SIZE : sizeof(struct fuse_attr_out);
}

size_t zc_proto_statfs_out_size(uint32_t minor)
{
	return minor < 4 ? FUSE_COMPAT_STATFS_SIZE : sizeof(struct fuse_statfs_out);
}

size_t zc_proto_init_out_size(uint32_t minor)
{
	if (minor < 5)
		return FUSE_COMPAT_INIT_OUT_SIZE;
	if (minor < 23)
		return FUSE_COMPAT_22_INIT_OUT_SIZE;
	return sizeof(struct zc_fuse_init_out);
}

void zc_proto_timeout(double t, uint64_t *ret_sec, uint32_t *ret_nsec)
{
	if (!(t > 0)) {
		*ret_sec = 0;
		*ret_nsec = 0;
		return;
	}
	if (t > 1e12) /* as good as never; keeps the conversion defined */
		t = 1e12;
	*ret_sec = (uint64_t)t;
	*ret_nsec = (uint32_t)((t - (double)*ret_sec) * 1e9);
	if (*ret_nsec > 999999999)
		*ret_nsec = 999999999;
}

void zc_proto_attr(struct fuse_attr *a, const struct stat *st)
{
	memset(a, 0, sizeof(*a));
	a->ino = st->st_ino;
	a->size = (uint64_t)st->st_size;
	a->blocks = (uint64_t)st->st_blocks;
	a->atime = (uint64_t)st->st_atim.tv_sec;
	a->mtime = (uint64_t)st->st_mtim.tv_sec;
	a->ctime = (uint64_t)st->st_ctim.tv_sec;
	a->atimensec = (uint32_t)st->st_atim.tv_nsec;
	a->mtimensec = (uint32_t)st->st_mtim.tv_nsec;
	a->ctimensec = (uint32_t)st->st_ctim.tv_nsec;
	a->mode = st->st_mode;
	a->nlink = (uint32_t)st->st_nlink;
	a->uid = st->st_uid;
	a->gid = st->st_gid;
	a->rdev = (uint32_t)st->st_rdev;
	a->blksize = (uint32_t)st->st_blksize;
}

void zc_proto_entry(struct fuse_entry_out *out, const struct zc_entry *e, double entry_timeout,
		    double attr_timeout)
{
	memset(out, 0, sizeof(*out));
	out->nodeid = e->ino;
	out->generation = e->generation;
	zc_proto_timeout(entry_timeout, &out->entry_valid, &out->entry_valid_nsec);
	zc_proto_timeout(attr_timeout, &out->attr_valid, &out->attr_valid_nsec);
	zc_proto_attr(&out->attr, &e->attr);
}

/* The fuse_dirent of @name at @p, with the padding zeroed; its padded size. */
static size_t put_dirent(char *p, const char *name, size_t namelen, uint64_t ino, mode_t mode,
			 off_t off)
{
	struct fuse_dirent d = {
		.ino = ino,
		.off = (uint64_t)off,
		.namelen = (uint32_t)namelen,
		.type = (mode & S_IFMT) >> 12,
	};
	size_t len = FUSE_NAME_OFFSET + namelen, padded = FUSE_DIRENT_ALIGN(len);

	memcpy(p, &d, FUSE_NAME_OFFSET);
	memcpy(p + FUSE_NAME_OFFSET, name, namelen);
	memset(p + len, 0, padded - len);
	return padded;
}

size_t zc_proto_add_dirent(char *buf, size_t room, const char *name, uint64_t ino, mode_t mode,
			   off_t off)
{
	size_t namelen = strlen(name), padded = FUSE_DIRENT_ALIGN(FUSE_NAME_OFFSET + namelen);

	if (padded > room)
		return padded;
	return put_dirent(buf, name, namelen, ino, mode, off);
}

size_t zc_proto_add_direntplus(char *buf, size_t room, const char *name,
			       const struct fuse_entry_out *e, mode_t mode, off_t off)
{
	size_t namelen = strlen(name),
	       padded = FUSE_DIRENT_ALIGN(FUSE_NAME_OFFSET_DIRENTPLUS + namelen);

	if (padded > room)
		return padded;
	memcpy(buf, e, sizeof(*e));
	put_dirent(buf + sizeof(*e), name, namelen, e->attr.ino, mode, off);
	return padded;
}

int zc_reply_err(struct zc_req *req, int error)
{
	return zc_req_reply(req, error, NULL, 0);
}

int zc_reply_buf(struct zc_req *req, const void *buf, size_t len)
{
	return zc_req_reply(req, 0, buf, len);
}

int zc_reply_entry(struct zc_req *req, const struct fuse_entry_out *e)
{
	return zc_req_reply(req, 0, e, zc_proto_entry_out_size(req->minor));
}

int zc_reply_create(struct zc_req *req, const struct fuse_entry_out *e,
		    const struct fuse_open_out *o)
{
	size_t esize = zc_proto_entry_out_size(req->minor);
	char buf[sizeof(*e) + sizeof(*o)];

	memcpy(buf, e, esize);
	memcpy(buf + esize, o, sizeof(*o));
	return zc_req_reply(req, 0, buf, esize + sizeof(*o));
}

int zc_reply_attr(struct zc_req *req, const struct stat *st, double attr_timeout)
{
	struct fuse_attr_out out;

	memset(&out, 0, sizeof(out));
	zc_proto_timeout(attr_timeout, &out.attr_valid, &out.attr_valid_nsec);
	zc_proto_attr(&out.attr, st);
	return zc_req_reply(req, 0, &out, zc_proto_attr_out_size(req->minor));
}

int zc_reply_open(struct zc_req *req, const struct fuse_open_out *o)
{
	return zc_req_reply(req, 0, o, sizeof(*o));
}

int zc_reply_write(struct zc_req *req, uint32_t size)
{
	struct fuse_write_out out = { .size = size };

	return zc_req_reply(req, 0, &out, sizeof(out));
}

int zc_reply_statfs(struct zc_req *req, const struct statvfs *st)
{
	struct fuse_statfs_out out;

	memset(&out, 0, sizeof(out));
	out.st.bsize = (uint32_t)st->f_bsize;
	out.st.frsize = (uint32_t)st->f_frsize;
	out.st.blocks = st->f_blocks;
	out.st.bfree = st->f_bfree;
	out.st.bavail = st->f_bavail;
	out.st.files = st->f_files;
	out.st.ffree = st->f_ffree;
	out.st.namelen = (uint32_t)st->f_namemax;
	return zc_req_reply(req, 0, &out, zc_proto_statfs_out_size(req->minor));
}

int zc_reply_xattr_size(struct zc_req *req, uint32_t size)
{
	struct fuse_getxattr_out out = { .size = size };

	return zc_req_reply(req, 0, &out, sizeof(out));
}

int zc_reply_lseek(struct zc_req *req, uint64_t off)
{
	struct fuse_lseek_out out = { .offset = off };

	return zc_req_reply(req, 0, &out, sizeof(out));
}

int zc_reply_copy_range(struct zc_req *req, uint64_t copied)
{
	struct zc_fuse_copy_file_range_out out64 = { .bytes_copied = copied };

	if (req->opcode == ZC_FUSE_COPY_FILE_RANGE_64)
		return zc_req_reply(req, 0, &out64, sizeof(out64));
	/* COPY_FILE_RANGE counts in 32 bits: the kernel asks for no more. */
	return zc_reply_write(req, copied > UINT32_MAX ? UINT32_MAX : (uint32_t)copied);
}

int zc_reply_init(struct zc_req *req, const void *init_out)
{
	return zc_req_reply(req, 0, init_out, zc_proto_init_out_size(req->minor));
}

int zc_notify_inval_inode(int dev_fd, uint64_t ino, int64_t off, int64_t len, struct zc_stats *st)
{
	struct fuse_notify_inval_inode_out arg = { .ino = ino, .off = off, .len = len };
	struct fuse_out_header out = {
		.len = sizeof(out) + sizeof(arg),
		.error = FUSE_NOTIFY_INVAL_INODE,
		.unique = 0,
	};
	struct iovec iov[2] = { { &out, sizeof(out) }, { &arg, sizeof(arg) } };
	ssize_t n = zc_send_msg(dev_fd, iov, 2, st);

	return n < 0 ? (int)n : 0;
}
