/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libzcfuse: mount a storage backend as a FUSE file system.
 *
 * A backend implements struct zc_backend_ops: metadata operations that fill
 * in plain structs and return 0 or a negative errno, and data operations
 * that say where bytes live (extents) instead of copying them. The library
 * owns the FUSE session, the kernel protocol, option parsing and the data
 * path; the backend never sees /dev/fuse.
 *
 * Every function returns 0 (or a count) on success and a negative errno on
 * failure unless documented otherwise. The library never prints; a program
 * reads the reason for a failure with zc_session_error().
 */
#ifndef ZCFUSE_H
#define ZCFUSE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ZCFUSE_VERSION_MAJOR  0
#define ZCFUSE_VERSION_MINOR  1
#define ZCFUSE_VERSION_MICRO  0
#define ZCFUSE_VERSION_STRING "0.1.0"
/** Version as one comparable number: major * 10000 + minor * 100 + micro. */
#define ZCFUSE_VERSION                                                                             \
	(ZCFUSE_VERSION_MAJOR * 10000 + ZCFUSE_VERSION_MINOR * 100 + ZCFUSE_VERSION_MICRO)

/** Inode number as the kernel sees it; chosen by the backend. */
typedef uint64_t zc_ino_t;

/** The root directory's inode number. */
#define ZC_ROOT_INO ((zc_ino_t)1)

/** An opaque mount session. */
struct zc_session;

/**
 * The caller of one request: the process that made the system call. Passed
 * to every backend operation; valid only for the duration of that call.
 */
struct zc_ctx {
	/** The backend's userdata pointer given to zc_session_new(). */
	void *userdata;
	/** Caller's effective user and group id and its pid. */
	uid_t uid;
	gid_t gid;
	pid_t pid;
	/** Caller's umask (already applied by the kernel to create modes). */
	mode_t umask;
	/** Library-private request handle; do not touch. */
	void *priv;
};

/**
 * Supplementary groups of the caller of @ctx.
 *
 * Fills up to @size entries of @list; returns the number of groups the
 * caller has (which may exceed @size) or a negative errno.
 */
int zc_ctx_getgroups(const struct zc_ctx *ctx, gid_t *list, int size);

/** True when the kernel checks permissions before the backend is called. */
int zc_ctx_kernel_checks_permissions(const struct zc_ctx *ctx);

/** A directory entry with its attributes, as lookup and create return it. */
struct zc_entry {
	zc_ino_t ino;
	uint64_t generation;
	struct stat attr;
};

/** Flags a backend may set in zc_file.open_flags_out. */
#define ZC_FOPEN_DIRECT_IO   (1u << 0) /* bypass the page cache for this open */
#define ZC_FOPEN_KEEP_CACHE  (1u << 1) /* keep cached pages from earlier opens */
#define ZC_FOPEN_NONSEEKABLE (1u << 2) /* the file has no file position */

/** An open file or directory. */
struct zc_file {
	/** Open flags of the caller (O_RDONLY, O_APPEND, ...). */
	int flags;
	/** ZC_FOPEN_* flags; the library adds those its options require. */
	uint32_t open_flags_out;
	/** The backend's handle for this open; passed back to later calls. */
	uint64_t fh;
	/**
	 * Set by open or create, optionally: a descriptor of a regular file
	 * that holds exactly this file's bytes at the same offsets. With
	 * -o passthrough the kernel then reads, writes and maps that file
	 * directly and sends this open no read or write requests. The
	 * library only registers it with the kernel, which keeps its own
	 * reference: the descriptor stays the backend's. -1 (the default)
	 * when there is none; the data then takes the read and write ops.
	 */
	int backing_fd;
	uint32_t reserved;
};

/**
 * Where bytes live, for the data operations.
 *
 * fd >= 0: @length bytes of file @fd starting at @offset.
 * fd < 0 and mem != NULL: @length bytes of memory at @mem.
 * fd < 0 and mem == NULL: @length bytes of zeros (a hole; reads only).
 */
struct zc_extent {
	int fd;
	uint32_t reserved;
	off_t offset;
	void *mem;
	size_t length;
};

/** Most extents one read or write may use. */
#define ZC_MAX_EXTENTS 16

/**
 * Called by a backend's readdir for each entry, in order.
 *
 * @off_next is the offset at which readdir continues after this entry.
 * Returns 0 to go on, 1 when the reply buffer is full (this entry was not
 * taken: the backend must offer it again on the next call), or a negative
 * errno, which the backend returns.
 */
typedef int (*zc_dir_fill_fn)(void *fill_ctx, const char *name, const struct stat *st,
			      off_t off_next);

/* Bits of @to_set in setattr; the same values as the kernel protocol. */
#define ZC_SET_ATTR_MODE      (1 << 0)
#define ZC_SET_ATTR_UID	      (1 << 1)
#define ZC_SET_ATTR_GID	      (1 << 2)
#define ZC_SET_ATTR_SIZE      (1 << 3)
#define ZC_SET_ATTR_ATIME     (1 << 4)
#define ZC_SET_ATTR_MTIME     (1 << 5)
#define ZC_SET_ATTR_ATIME_NOW (1 << 7)
#define ZC_SET_ATTR_MTIME_NOW (1 << 8)
#define ZC_SET_ATTR_CTIME     (1 << 10)

/** fh value passed when an operation has no open file behind it. */
#define ZC_NO_FH UINT64_MAX

/**
 * Backend operations. Pass the struct's size to zc_session_new(); fields
 * beyond that size count as NULL, so a backend built against an older
 * header keeps working. A NULL operation answers ENOSYS (the kernel then
 * stops asking), except where noted.
 *
 * Operations return 0 or a positive count on success, a negative errno on
 * failure; the errno reaches the calling program unchanged.
 */
struct zc_backend_ops {
	/** Called once the kernel connection is up. */
	int (*init)(const struct zc_ctx *ctx);
	/** Called once at unmount, after the last request. */
	void (*destroy)(void *userdata);

	/** Look @name up in @parent; counts one lookup of the result. */
	int (*lookup)(const struct zc_ctx *ctx, zc_ino_t parent, const char *name,
		      struct zc_entry *ret_entry);
	/** Drop @nlookup lookups of @ino; at zero it may be freed. */
	void (*forget)(const struct zc_ctx *ctx, zc_ino_t ino, uint64_t nlookup);
	/** Attributes of @ino; @fh is ZC_NO_FH when no file is open. */
	int (*getattr)(const struct zc_ctx *ctx, zc_ino_t ino, uint64_t fh, struct stat *ret_attr);
	/** Change the attributes chosen by @to_set (ZC_SET_ATTR_*). */
	int (*setattr)(const struct zc_ctx *ctx, zc_ino_t ino, uint64_t fh, const struct stat *attr,
		       int to_set, struct stat *ret_attr);
	/** Target of a symlink; returns its length (may be > @size: truncated). */
	int (*readlink)(const struct zc_ctx *ctx, zc_ino_t ino, char *buf, size_t size);

	int (*mknod)(const struct zc_ctx *ctx, zc_ino_t parent, const char *name, mode_t mode,
		     dev_t rdev, struct zc_entry *ret_entry);
	int (*mkdir)(const struct zc_ctx *ctx, zc_ino_t parent, const char *name, mode_t mode,
		     struct zc_entry *ret_entry);
	int (*symlink)(const struct zc_ctx *ctx, const char *target, zc_ino_t parent,
		       const char *name, struct zc_entry *ret_entry);
	int (*link)(const struct zc_ctx *ctx, zc_ino_t ino, zc_ino_t newparent, const char *newname,
		    struct zc_entry *ret_entry);
	int (*unlink)(const struct zc_ctx *ctx, zc_ino_t parent, const char *name);
	int (*rmdir)(const struct zc_ctx *ctx, zc_ino_t parent, const char *name);
	/** @flags: 0, RENAME_NOREPLACE or RENAME_EXCHANGE. */
	int (*rename)(const struct zc_ctx *ctx, zc_ino_t parent, const char *name,
		      zc_ino_t newparent, const char *newname, unsigned int flags);

	/** Open @ino; file->flags holds the open flags; set file->fh. */
	int (*open)(const struct zc_ctx *ctx, zc_ino_t ino, struct zc_file *file);
	/** Create and open @name; counts one lookup of the result. */
	int (*create)(const struct zc_ctx *ctx, zc_ino_t parent, const char *name, mode_t mode,
		      struct zc_file *file, struct zc_entry *ret_entry);

	/**
	 * Say where the bytes [@off, @off + @size) of an open file live.
	 *
	 * Fill up to @max_ext extents and return how many; their lengths add
	 * up to at most @size. A file extent may run past the end of its file:
	 * the data then ends there (a short read). Returns 0 at end of file.
	 * The extents must stay valid until read_done() (if set) is called.
	 */
	int (*read)(const struct zc_ctx *ctx, zc_ino_t ino, uint64_t fh, off_t off, size_t size,
		    struct zc_extent *ret_ext, unsigned int max_ext);
	/** Optional: the library is done with the extents of a read. */
	void (*read_done)(const struct zc_ctx *ctx, zc_ino_t ino, uint64_t fh,
			  struct zc_extent *ext, unsigned int n_ext);
	/**
	 * Say where @size bytes written at @off go: file or memory extents,
	 * whose lengths add up to @size. The library moves the data there.
	 */
	int (*write)(const struct zc_ctx *ctx, zc_ino_t ino, uint64_t fh, off_t off, size_t size,
		     struct zc_extent *ret_ext, unsigned int max_ext);
	/**
	 * Optional: @written bytes (or a negative errno) landed for the
	 * write at @off. Returns what the caller sees: the count or -errno.
	 */
	ssize_t (*write_done)(const struct zc_ctx *ctx, zc_ino_t ino, uint64_t fh, off_t off,
			      ssize_t written);

	int (*flush)(const struct zc_ctx *ctx, zc_ino_t ino, uint64_t fh);
	/** The last close of an open; its errors are not seen by anyone. */
	void (*release)(const struct zc_ctx *ctx, zc_ino_t ino, uint64_t fh);
	int (*fsync)(const struct zc_ctx *ctx, zc_ino_t ino, uint64_t fh, int datasync);

	int (*opendir)(const struct zc_ctx *ctx, zc_ino_t ino, struct zc_file *file);
	/**
	 * List entries from offset @off on, calling @fill for each. For
	 * readdirplus the library looks each entry up itself.
	 */
	int (*readdir)(const struct zc_ctx *ctx, zc_ino_t ino, uint64_t fh, off_t off,
		       zc_dir_fill_fn fill, void *fill_ctx);
	void (*releasedir)(const struct zc_ctx *ctx, zc_ino_t ino, uint64_t fh);
	int (*fsyncdir)(const struct zc_ctx *ctx, zc_ino_t ino, uint64_t fh, int datasync);

	int (*statfs)(const struct zc_ctx *ctx, zc_ino_t ino, struct statvfs *ret_stat);
	/** @mask: F_OK or a mix of R_OK, W_OK, X_OK. */
	int (*access)(const struct zc_ctx *ctx, zc_ino_t ino, int mask);

	int (*setxattr)(const struct zc_ctx *ctx, zc_ino_t ino, const char *name, const void *value,
			size_t size, int flags);
	/** Returns the value's length; with @size 0 only the length. */
	int (*getxattr)(const struct zc_ctx *ctx, zc_ino_t ino, const char *name, void *buf,
			size_t size);
	/** Returns the length of the name list; with @size 0 only the length. */
	int (*listxattr)(const struct zc_ctx *ctx, zc_ino_t ino, char *buf, size_t size);
	int (*removexattr)(const struct zc_ctx *ctx, zc_ino_t ino, const char *name);

	int (*fallocate)(const struct zc_ctx *ctx, zc_ino_t ino, uint64_t fh, int mode, off_t off,
			 off_t len);
	/** Returns the number of bytes copied. */
	ssize_t (*copy_file_range)(const struct zc_ctx *ctx, zc_ino_t ino_in, uint64_t fh_in,
				   off_t off_in, zc_ino_t ino_out, uint64_t fh_out, off_t off_out,
				   size_t len, int flags);
	/** Returns the new offset (SEEK_DATA and SEEK_HOLE included). */
	off_t (*lseek)(const struct zc_ctx *ctx, zc_ino_t ino, uint64_t fh, off_t off, int whence);
	/** BSD lock on the open file: LOCK_SH, LOCK_EX or LOCK_UN, maybe | LOCK_NB. */
	int (*flock)(const struct zc_ctx *ctx, zc_ino_t ino, uint64_t fh, int op);
};

/**
 * Create a session for a backend. @ops_size is sizeof(struct zc_backend_ops)
 * as the backend saw it. Returns NULL with errno set on failure.
 */
struct zc_session *zc_session_new(const struct zc_backend_ops *ops, size_t ops_size,
				  void *userdata);

/**
 * Apply one mount option, as given after -o (for example "cache=never",
 * "threads=4", "allow_other"). Returns -EINVAL for an unknown option or a
 * bad value; zc_session_error() then names the problem. See zcfuse(1) or
 * the README for the list.
 */
int zc_session_set_option(struct zc_session *s, const char *opt);

/** Apply a comma-separated option list; "\," escapes a comma. */
int zc_session_set_options(struct zc_session *s, const char *optlist);

/** Set the file system name shown in /proc/mounts (the source). */
int zc_session_set_fsname(struct zc_session *s, const char *fsname);

/** Print every request to stderr (the -d option). */
void zc_session_set_debug(struct zc_session *s, int debug);

/** Serve requests on one thread only (the -s option). */
void zc_session_set_single_threaded(struct zc_session *s, int single);

/**
 * Check @mountpoint and mount the file system there. Fails, before anything
 * is mounted, when the mountpoint is missing, not a directory, already a
 * mount point, or /dev/fuse cannot be opened.
 */
int zc_session_mount(struct zc_session *s, const char *mountpoint);

/**
 * Detach from the terminal and run in the background; the calling process
 * returns only in the child. Call after zc_session_mount().
 */
int zc_session_daemonize(struct zc_session *s);

/**
 * Serve requests until the file system is unmounted or SIGINT, SIGTERM or
 * SIGHUP arrives (handlers are installed for the duration of the call).
 */
int zc_session_loop(struct zc_session *s);

/** Unmount (if mounted). */
void zc_session_unmount(struct zc_session *s);

/** Free the session; unmounts first if needed. NULL is ignored. */
void zc_session_destroy(struct zc_session *s);

/** Why the last call on @s failed, as one line of text; never NULL. */
const char *zc_session_error(const struct zc_session *s);

/** The options zc_session_set_option() accepts, one per line, for --help. */
const char *zc_options_help(void);

/** The library's version string at run time. */
const char *zc_version(void);

#ifdef __cplusplus
}
#endif

#endif /* ZCFUSE_H */
