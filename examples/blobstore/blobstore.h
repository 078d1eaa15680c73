/* SPDX-License-Identifier: MIT */
/*
 * blobstore: a file system kept inside one backing file. This header is
 * what the layers of the store share; the store itself (store_format.c,
 * alloc.c, extent.c, inode.c) knows nothing of FUSE or libzcfuse: ops.c
 * turns its types into the library's, and main.c is the command line.
 *
 * Layout of the backing file, in 4 KiB blocks:
 *
 *     block 0, block 1   two superblock slots, written in turn
 *     blocks 2...        file data and the index, wherever the allocator
 *                        put them
 *
 * A superblock holds a magic number, the format version, a generation
 * count, where the index lies with its length and CRC-32C, and its own
 * CRC-32C. The index is every inode (attributes, directory entries,
 * symlink target, extended attributes, and for a file its extent map:
 * runs of file blocks and the disk blocks that hold them), serialized.
 *
 * Durability: file data is written in place into the blocks the extent
 * map names. fsync() (and fsyncdir(), and a clean unmount) commits: it
 * writes a fresh copy of the index into free blocks, fdatasync()s the
 * backing file (data and index are now on disk), writes the superblock of
 * the next generation into the slot the current one is not in, and
 * fdatasync()s again. The superblock write is the commit point: a crash
 * before it leaves the previous generation, whose index is untouched, and
 * a torn superblock fails its checksum, so the other slot wins. Blocks
 * freed since the last commit (truncate, unlink, the old index) are reused
 * only after the next commit, so the committed index never names a block
 * that holds something else. Free blocks are kept zeroed (holes punched in
 * the backing file), so a newly allocated block reads as zeros.
 *
 * The block space: where the blocks live is a layer of its own (struct
 * bs_space_ops). space_file.c keeps them in the backing file, where block
 * b is at byte b * 4 KiB and the superblock slots are blocks 0 and 1;
 * space_rados.c stripes them over objects of a Ceph RADOS pool (1024
 * blocks, 4 MiB, to an object) and keeps each superblock slot in an object
 * of its own. A file has a size of its own; a RADOS store keeps its size
 * in the superblock (in 4 MiB units, a field that is 0 for a file). Both
 * keep the crash rule above: sync() returns once every write before it is
 * durable.
 *
 * A store that fails any check (magic, version, checksums, an index or
 * file data past the end of the file, an inconsistent index) is refused at
 * start with one line on stderr and exit status 1.
 *
 * Locking: one mutex (bs_fs.lock) guards the tree, the allocator and
 * commits; each file's extent map has a read-write lock (map_lock). The
 * extent map changes only with both held, in that order. Functions of the
 * store are called with the locks their callers need already held.
 */
#ifndef BLOBSTORE_H
#define BLOBSTORE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#define BS_BLOCK       4096ULL
#define BS_MAGIC       "zcfsblob"
#define BS_VERSION     1
#define BS_SB_SIZE     64   /* bytes of a superblock slot in use */
#define BS_FIRST_DATA  2    /* blocks 0 and 1 are the superblock slots */
#define BS_GROW	       2048 /* grow the backing file by at least 8 MiB */
#define BS_NAME_MAX    255
#define BS_XATTR_MAX   65536
#define BS_MAX_BLOCKS  (1ULL << 40)
#define BS_INDEX_MAGIC 0x7a636978u /* "zcix" */
#define BS_ROOT_INO    1
#define BS_MAX_PIECES  16   /* pieces a range is cut into at most, when copied */
#define BS_UNIT_BLOCKS 1024 /* a RADOS object; the unit of a RADOS store's size */

/* An inode number. */
typedef uint64_t bs_ino_t;

/* A run of file blocks [fblk, fblk + n) stored at disk blocks [dblk, dblk + n). */
struct bs_ext {
	uint64_t fblk;
	uint64_t dblk;
	uint64_t n;
};

/* A run of disk blocks. */
struct bs_run {
	uint64_t start;
	uint64_t n;
};

/* Runs of disk blocks, sorted, never touching. */
struct bs_runs {
	struct bs_run *v;
	size_t nr, cap;
};

/* A piece of a byte range of a file: a hole, or bytes of the backing file. */
struct bs_piece {
	bool hole;
	off_t offset; /* in the backing file, unless a hole */
	size_t length;
};

struct bs_xattr {
	char *name;
	void *value;
	size_t size;
};

struct bs_inode;

struct bs_dirent {
	char *name;
	struct bs_inode *inode;
	off_t cookie;
	struct bs_dirent *next;
};

struct bs_inode {
	struct stat st;
	uint64_t nlookup;
	unsigned int nopen;
	/* directories */
	struct bs_dirent *first, *last;
	off_t next_cookie;
	bs_ino_t parent;
	/* symlinks */
	char *target;
	/* extended attributes */
	struct bs_xattr *xattrs;
	size_t nr_xattrs;
	/* regular files */
	pthread_rwlock_t map_lock;
	struct bs_ext *ext;
	size_t nr_ext, cap_ext;
	off_t write_off; /* between write() and write_done() */
	void *bounce;	 /* a write copied through memory, or NULL */
	size_t bounce_len;
	unsigned int refs; /* during load: directory entries naming it */
};

struct bs_fs;

/* Bytes [off, off + len) of the block space and the memory they go to or come from. */
struct bs_io {
	void *buf;
	size_t len;
	uint64_t off;
};

/*
 * Where the blocks live. Every function returns 0 or -errno. read() and
 * write() move every piece of @io (a space may have them in flight
 * together); bytes never written read as zeros. zero() makes blocks read
 * as zeros; grow() makes the space at least @want blocks, setting
 * fs->total_blocks (it may round up) and adding the new blocks to the
 * free list; sync() returns once everything written is durable. Superblock
 * slots are BS_BLOCK bytes apart from the blocks; read_sb() reads @len
 * bytes (zeros past what was written), -ENOENT when the slot was never
 * written. avail() is how many more blocks the space can take.
 */
struct bs_space_ops {
	int (*read)(struct bs_fs *fs, const struct bs_io *io, unsigned int n);
	int (*write)(struct bs_fs *fs, const struct bs_io *io, unsigned int n);
	int (*zero)(struct bs_fs *fs, uint64_t start, uint64_t n);
	int (*grow)(struct bs_fs *fs, uint64_t want);
	int (*sync)(struct bs_fs *fs);
	int (*read_sb)(struct bs_fs *fs, int slot, void *buf, size_t len);
	int (*write_sb)(struct bs_fs *fs, int slot, const void *buf, size_t len);
	int (*avail)(struct bs_fs *fs, uint64_t *ret_blocks);
	void (*close)(struct bs_fs *fs);
};

struct bs_fs {
	pthread_mutex_t lock;
	int fd;		  /* the backing file; -1 where blocks are not in a file */
	const char *path; /* what the store was opened as, for messages */
	const struct bs_space_ops *space;
	void *space_data;
	bool sized_by_sb;	  /* the superblock holds the size of the space */
	struct bs_inode **inodes; /* by inode number */
	size_t nr_inodes;
	bs_ino_t next_ino;
	uint64_t total_blocks;	/* blocks in the backing file */
	struct bs_runs free;	/* free and zeroed */
	struct bs_runs pending; /* freed since the last commit */
	uint64_t generation;	/* of the last commit */
	struct bs_run index;	/* blocks of the committed index */
};

/* The error of a store that fails to open: what is wrong, in a few words. */
struct bs_err {
	char msg[256];
};

/* store_format.c: the superblocks, the index, commit, open and close */
uint32_t bs_crc32c(const void *data, size_t len);
int bs_commit(struct bs_fs *fs);
int bs_open_store(struct bs_fs *fs, const char *path, struct bs_err *err);
int bs_open_space(struct bs_fs *fs, bool empty, uint64_t size, struct bs_err *err);
void bs_close_store(struct bs_fs *fs);
int bs_fail(struct bs_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* space_file.c: the block space in the backing file */
extern const struct bs_space_ops bs_file_space;

/* space_rados.c: the block space on RADOS (built with librados only) */
struct bs_rados_opts {
	const char *conf; /* a ceph.conf, or NULL for the default search */
	const char *id;	  /* the client's name without "client.", or NULL */
};
int bs_open_rados(struct bs_fs *fs, const char *url, const struct bs_rados_opts *opts,
		  struct bs_err *err);

/* alloc.c: blocks of the backing file */
int bs_pread(int fd, void *buf, size_t len, off_t off);
int bs_pwrite(int fd, const void *buf, size_t len, off_t off);
int bs_write_zeros(int fd, off_t off, uint64_t len);
int bs_runs_add(struct bs_runs *l, uint64_t start, uint64_t n);
uint64_t bs_runs_total(const struct bs_runs *l);
int bs_zero_blocks(struct bs_fs *fs, uint64_t start, uint64_t n);
int bs_grow_file(struct bs_fs *fs, uint64_t want);
int bs_space_read(struct bs_fs *fs, void *buf, size_t len, uint64_t off);
int bs_space_write(struct bs_fs *fs, const void *buf, size_t len, uint64_t off);
int bs_alloc_blocks(struct bs_fs *fs, uint64_t want, uint64_t hint, bool whole, struct bs_run *ret);

/* extent.c: the extent map of a file */
size_t bs_ext_find(const struct bs_inode *inode, uint64_t b);
int bs_ext_insert_at(struct bs_inode *inode, size_t i, struct bs_ext e);
int bs_ext_insert(struct bs_inode *inode, struct bs_ext e);
int bs_map_blocks(struct bs_fs *fs, struct bs_inode *inode, uint64_t b, uint64_t end);
int bs_unmap_blocks(struct bs_fs *fs, struct bs_inode *inode, uint64_t a, uint64_t b);
uint64_t bs_mapped_blocks(const struct bs_inode *inode);
int bs_map_range(const struct bs_inode *inode, off_t off, size_t len, struct bs_piece *p,
		 unsigned int max);
int bs_copy_range(struct bs_fs *fs, const struct bs_inode *inode, off_t off, size_t len, void *buf,
		  bool to_disk);
int bs_punch(struct bs_fs *fs, struct bs_inode *inode, uint64_t from, uint64_t to);
int bs_set_size(struct bs_fs *fs, struct bs_inode *inode, off_t size);
off_t bs_seek(const struct bs_inode *inode, off_t off, bool data);

/* inode.c: inodes, directories, names, extended attributes */
void bs_touch(struct bs_inode *inode, bool mtime);
struct bs_inode *bs_get_inode(struct bs_fs *fs, bs_ino_t ino);
void bs_fill_attr(const struct bs_inode *inode, struct stat *st);
struct bs_inode *bs_new_inode(struct bs_fs *fs, bs_ino_t ino, mode_t mode);
void bs_destroy_inode(struct bs_inode *inode);
void bs_maybe_free(struct bs_fs *fs, struct bs_inode *inode);
struct bs_dirent *bs_find(struct bs_inode *dir, const char *name, struct bs_dirent **prev);
int bs_add_dirent(struct bs_inode *dir, const char *name, struct bs_inode *inode);
int bs_get_dir(struct bs_fs *fs, bs_ino_t ino, const char *name, struct bs_inode **ret);
int bs_make_node(struct bs_fs *fs, bs_ino_t parent, const char *name, mode_t mode, dev_t rdev,
		 const char *target, uid_t uid, gid_t gid, struct bs_inode **ret);
int bs_add_link(struct bs_fs *fs, bs_ino_t ino, bs_ino_t newparent, const char *newname,
		struct bs_inode **ret);
int bs_remove_name(struct bs_fs *fs, bs_ino_t parent, const char *name, bool is_dir);
int bs_rename_name(struct bs_fs *fs, bs_ino_t parent, const char *name, bs_ino_t newparent,
		   const char *newname, unsigned int flags);
int bs_set_xattr(struct bs_fs *fs, bs_ino_t ino, const char *name, const void *value, size_t size,
		 int flags);
int bs_get_xattr(struct bs_fs *fs, bs_ino_t ino, const char *name, void *buf, size_t size);
int bs_list_xattr(struct bs_fs *fs, bs_ino_t ino, char *buf, size_t size);
int bs_remove_xattr(struct bs_fs *fs, bs_ino_t ino, const char *name);

#endif /* BLOBSTORE_H */
