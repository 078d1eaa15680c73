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
 * failure unless documented otherwise. The library prints nothing of its
 * own accord: a program reads the reason for a failure with
 * zc_session_error() and gets notices through its notice handler
 * (zc_session_set_notice_handler()). Only with zc_session_set_debug() on
 * does it write to stderr: every request and its reply, and the counters
 * at unmount.
 *
 * Build against it with: cc ... $(pkg-config --cflags --libs zcfuse)
 * examples/memfs.c and examples/blobstore/ of the source are complete
 * backends (Debian's libzcfuse-dev installs them in
 * /usr/share/doc/libzcfuse-dev/examples/). libzcfuse(3) describes every
 * function.
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

/* off_t and struct stat are part of the ABI: they must be the 64-bit ones. */
#if !defined(__LP64__) && (!defined(_FILE_OFFSET_BITS) || _FILE_OFFSET_BITS != 64)
#error "libzcfuse needs -D_FILE_OFFSET_BITS=64 (pkg-config --cflags zcfuse gives it)"
#endif

/*
 * The library's version: major.minor is that of the newest symbol version
 * (ZCFUSE_0.5), so that a function's "since" in libzcfuse(3) can be tested
 * at compile time:
 *
 *	#if ZCFUSE_VERSION >= ZCFUSE_MAKE_VERSION(0, 5, 0)
 *		zc_session_stop(s);
 *	#endif
 */
#define ZCFUSE_VERSION_MAJOR  0
#define ZCFUSE_VERSION_MINOR  5
#define ZCFUSE_VERSION_MICRO  0
#define ZCFUSE_VERSION_STRING "0.5.0"
/** A version as one comparable number: major * 10000 + minor * 100 + micro. */
#define ZCFUSE_MAKE_VERSION(major, minor, micro) ((major)*10000 + (minor)*100 + (micro))
/** This header's version, as ZCFUSE_MAKE_VERSION() makes it. */
#define ZCFUSE_VERSION                                                                             \
	ZCFUSE_MAKE_VERSION(ZCFUSE_VERSION_MAJOR, ZCFUSE_VERSION_MINOR, ZCFUSE_VERSION_MICRO)

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
	/**
	 * Caller's umask. The kernel has applied it to create modes already,
	 * unless the backend asked for ZC_FEATURE_DONT_MASK.
	 */
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

/**
 * What the kernel said of the caller's groups with a create (create,
 * mknod, mkdir, symlink, O_TMPFILE): whether the caller is in the parent
 * directory's group through a supplementary group.
 *
 * Returns 1 with that group in *@ret_gid when it is; 0 when it is not (the
 * caller is not in the parent's group, or it is the caller's own gid, @ctx
 * gid); -ENODATA when the kernel did not say (not a create, a kernel
 * before protocol 7.39, or a lock waiter's context). Call it during the
 * backend operation @ctx was passed to, from any thread, with that @ctx
 * (or a copy): like the context, the answer is valid only for the
 * duration of that call. Other supplementary groups the caller may have
 * are not told: zc_ctx_getgroups() reads them all.
 */
int zc_ctx_create_group(const struct zc_ctx *ctx, gid_t *ret_gid);

/**
 * The caller's effective capabilities (bit n: capability n), as they count
 * for the daemon's files: none for a caller in another user namespace
 * (but for uid 0, whose capabilities count as they are).
 * Returns 0, or a negative errno (the caller is gone) with none.
 */
int zc_ctx_get_capabilities(const struct zc_ctx *ctx, uint64_t *ret_effective);

/** True when the kernel checks permissions before the backend is called. */
int zc_ctx_kernel_checks_permissions(const struct zc_ctx *ctx);

/** A directory entry with its attributes, as lookup and create return it. */
struct zc_entry {
	/** The inode's number (the library copies it into attr.st_ino's place). */
	zc_ino_t ino;
	/**
	 * Changes when @ino is reused for another inode, so that the kernel
	 * (and NFS export) can tell them apart; 0 if numbers are never reused.
	 */
	uint64_t generation;
	/** The inode's attributes, as getattr would return them. */
	struct stat attr;
};

/**
 * Flags a backend may set in zc_file.open_flags_out: ZC_FOPEN_DIRECT_IO
 * sends every read and write of this open to the backend (no page cache),
 * ZC_FOPEN_KEEP_CACHE keeps the page cache from earlier opens (the file
 * did not change behind the kernel's back), ZC_FOPEN_NONSEEKABLE marks a
 * stream.
 */
#define ZC_FOPEN_DIRECT_IO   (1u << 0) /* bypass the page cache for this open */
#define ZC_FOPEN_KEEP_CACHE  (1u << 1) /* keep cached pages from earlier opens */
#define ZC_FOPEN_NONSEEKABLE (1u << 2) /* the file has no file position */

/* Bits of zc_file.open_flags_in: how the kernel will use an open. */
/**
 * The kernel opens the file to execute it: the caller needs execute
 * permission, not read permission (@flags says O_RDONLY), and the kernel
 * reads the file through this open.
 */
#define ZC_OPEN_IN_EXEC (1 << 0)
/**
 * Writeback caching: the kernel reads through this open to fill the parts
 * of a page a write does not cover, so the backend must be able to read
 * even when @flags says O_WRONLY. The caller's permission is that of
 * @flags.
 */
#define ZC_OPEN_IN_CACHE_READS (1 << 1)

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
	 * An open passed through keeps none of open_flags_out (the kernel
	 * refuses them beside passthrough).
	 */
	int backing_fd;
	/** ZC_OPEN_IN_* flags, set by the library. */
	uint32_t open_flags_in;
};

/**
 * Where bytes live, for the data operations.
 *
 * fd >= 0: @length bytes of file @fd starting at @offset.
 * fd < 0 and mem != NULL: @length bytes of memory at @mem.
 * fd < 0 and mem == NULL: @length bytes of zeros (a hole; reads only).
 *
 * File extents are moved with splice (through a pipe, page references
 * rather than copies where the file system allows) and fall back to
 * pread/pwrite. Memory extents are moved with vmsplice or copied; memory
 * that starts on a page boundary takes the fewest pipe slots. Zero the
 * whole struct before filling it in.
 */
struct zc_extent {
	/** A file descriptor the backend keeps open, or -1 for memory or a hole. */
	int fd;
	/** Must be 0 (a read or write with it set gets EIO and a notice). */
	uint32_t reserved;
	/** Offset in @fd (file extents only). */
	off_t offset;
	/** The bytes (memory extents only). */
	void *mem;
	/** Number of bytes. */
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
/**
 * With ZC_SET_ATTR_MODE: the library clears setuid and setgid on the
 * kernel's behalf, after a write, truncate or open by a caller who may not
 * keep them (as the kernel's file_remove_privs() does on a local file
 * system). The change needs no permission of the caller: apply it. (The
 * library's own bit, not one of the protocol.)
 */
#define ZC_SET_ATTR_KILL_SUIDGID (1 << 24)
/**
 * With the times: with writeback caching the kernel keeps a file's mtime
 * and ctime itself and sends them on an open file's behalf (or with a
 * truncate). Write access, which the caller had, is what they need, not
 * the ownership that setting times explicitly needs. (The library's own
 * bit.)
 */
#define ZC_SET_ATTR_KERNEL_TIMES (1 << 25)

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
 *
 * Operations are called from several threads at once unless the session is
 * single-threaded (zc_session_set_single_threaded()); the backend locks
 * what it shares. An inode the kernel holds (a lookup not yet forgotten,
 * or an open file) is never forgotten while an operation on it runs.
 *
 * Permissions: with the default_permissions option the kernel checks them
 * from the attributes before calling the backend (and access() is never
 * called); without it the backend decides (see zc_ctx_getgroups()).
 *
 * Names passed in are single path components, never "." or "..".
 */
struct zc_backend_ops {
	/**
	 * Called once the kernel connection is up. A negative errno refuses
	 * the mount: zc_session_loop() returns it, and destroy() is not called.
	 */
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

	/**
	 * Create a regular file, device node, FIFO or socket (type and
	 * permission bits in @mode; @rdev for a device). These creating
	 * operations fill in @ret_entry and count one lookup of it; the
	 * owner is @ctx's uid and gid (or the group of a setgid @parent).
	 */
	int (*mknod)(const struct zc_ctx *ctx, zc_ino_t parent, const char *name, mode_t mode,
		     dev_t rdev, struct zc_entry *ret_entry);
	/** Create a directory (@mode: permission bits only). */
	int (*mkdir)(const struct zc_ctx *ctx, zc_ino_t parent, const char *name, mode_t mode,
		     struct zc_entry *ret_entry);
	/** Create a symlink @name in @parent that points to @target. */
	int (*symlink)(const struct zc_ctx *ctx, const char *target, zc_ino_t parent,
		       const char *name, struct zc_entry *ret_entry);
	/** Give @ino another name, @newname in @newparent. */
	int (*link)(const struct zc_ctx *ctx, zc_ino_t ino, zc_ino_t newparent, const char *newname,
		    struct zc_entry *ret_entry);
	/** Remove the name of a non-directory; the inode lives while looked up or open. */
	int (*unlink)(const struct zc_ctx *ctx, zc_ino_t parent, const char *name);
	/** Remove an empty directory. */
	int (*rmdir)(const struct zc_ctx *ctx, zc_ino_t parent, const char *name);
	/** @flags: 0, RENAME_NOREPLACE or RENAME_EXCHANGE. */
	int (*rename)(const struct zc_ctx *ctx, zc_ino_t parent, const char *name,
		      zc_ino_t newparent, const char *newname, unsigned int flags);

	/**
	 * Open @ino; file->flags holds the open flags (O_TRUNC included: the
	 * backend truncates); set file->fh.
	 */
	int (*open)(const struct zc_ctx *ctx, zc_ino_t ino, struct zc_file *file);
	/** Create and open @name; counts one lookup of the result. */
	int (*create)(const struct zc_ctx *ctx, zc_ino_t parent, const char *name, mode_t mode,
		      struct zc_file *file, struct zc_entry *ret_entry);

	/**
	 * Say where the bytes [@off, @off + @size) of an open file live.
	 *
	 * Fill up to @max_ext extents and return how many; their lengths add
	 * up to at most @size. Less than @size means end of file: a read must
	 * cover everything up to the end of the file (the kernel takes a short
	 * read for the end). A file extent may run past the end of its file:
	 * the data then ends there. Returns 0 at end of file.
	 *
	 * The extents must stay valid until read_done() (if set) is called.
	 * A backend that can only copy returns one memory extent of its own
	 * buffer, filled here and freed in read_done().
	 */
	int (*read)(const struct zc_ctx *ctx, zc_ino_t ino, uint64_t fh, off_t off, size_t size,
		    struct zc_extent *ret_ext, unsigned int max_ext);
	/**
	 * Optional: the library is done with the extents of a read. Called
	 * once after each read() that succeeded (not after one that failed),
	 * once the reply was sent: memory extents are vmspliced, so the pipe
	 * refers to their pages until then. A release() of @fh waits until
	 * the read_done() calls for it returned.
	 */
	void (*read_done)(const struct zc_ctx *ctx, zc_ino_t ino, uint64_t fh,
			  struct zc_extent *ext, unsigned int n_ext);
	/**
	 * Say where @size bytes written at @off go: file or memory extents,
	 * whose lengths add up to @size. The library moves the data there,
	 * then calls write_done(). A file opened with O_APPEND writes at the
	 * end whatever @off says (except with writeback caching, where the
	 * kernel appends). A backend that can only copy offers a buffer of its
	 * own and copies from it in write_done().
	 */
	int (*write)(const struct zc_ctx *ctx, zc_ino_t ino, uint64_t fh, off_t off, size_t size,
		     struct zc_extent *ret_ext, unsigned int max_ext);
	/**
	 * Optional: @written bytes (or a negative errno) landed for the
	 * write at @off. Returns what the caller sees: the count or -errno.
	 * Called once after every write() call, also when write() failed
	 * (@written is then its error), so a lock taken in write() is always
	 * released here.
	 */
	ssize_t (*write_done)(const struct zc_ctx *ctx, zc_ino_t ino, uint64_t fh, off_t off,
			      ssize_t written);

	/** Each close() of a descriptor of the open; NULL means success. */
	int (*flush)(const struct zc_ctx *ctx, zc_ino_t ino, uint64_t fh);
	/**
	 * The last close of an open; its errors are not seen by anyone. Opens
	 * still unreleased at unmount are not released.
	 */
	void (*release)(const struct zc_ctx *ctx, zc_ino_t ino, uint64_t fh);
	/**
	 * Make the file's data (and unless @datasync its metadata) durable:
	 * after 0 it survives a crash of the program or the machine.
	 */
	int (*fsync)(const struct zc_ctx *ctx, zc_ino_t ino, uint64_t fh, int datasync);

	/** Open directory @ino for reading; set file->fh. */
	int (*opendir)(const struct zc_ctx *ctx, zc_ino_t ino, struct zc_file *file);
	/**
	 * List entries from offset @off on, calling @fill for each ("." and
	 * ".." included; st_ino and the type bits of st_mode are used). An
	 * entry's off_next must stay meaningful when entries before it are
	 * removed. For readdirplus the library looks each entry up with
	 * lookup() from inside @fill, on the same thread: do not hold a lock
	 * lookup() takes while calling @fill.
	 */
	int (*readdir)(const struct zc_ctx *ctx, zc_ino_t ino, uint64_t fh, off_t off,
		       zc_dir_fill_fn fill, void *fill_ctx);
	/** The last close of an opened directory. */
	void (*releasedir)(const struct zc_ctx *ctx, zc_ino_t ino, uint64_t fh);
	/** Make the directory's entries durable, as fsync() for a file. */
	int (*fsyncdir)(const struct zc_ctx *ctx, zc_ino_t ino, uint64_t fh, int datasync);

	/** File system totals (block size, blocks, free blocks, files, name length). */
	int (*statfs)(const struct zc_ctx *ctx, zc_ino_t ino, struct statvfs *ret_stat);
	/** @mask: F_OK or a mix of R_OK, W_OK, X_OK. */
	int (*access)(const struct zc_ctx *ctx, zc_ino_t ino, int mask);

	/**
	 * Set extended attribute @name (@flags: 0, XATTR_CREATE or
	 * XATTR_REPLACE). A NULL xattr operation answers EOPNOTSUPP.
	 */
	int (*setxattr)(const struct zc_ctx *ctx, zc_ino_t ino, const char *name, const void *value,
			size_t size, int flags);
	/** Returns the value's length; with @size 0 only the length. */
	int (*getxattr)(const struct zc_ctx *ctx, zc_ino_t ino, const char *name, void *buf,
			size_t size);
	/** Returns the length of the name list; with @size 0 only the length. */
	int (*listxattr)(const struct zc_ctx *ctx, zc_ino_t ino, char *buf, size_t size);
	/** Remove extended attribute @name (ENODATA when it does not exist). */
	int (*removexattr)(const struct zc_ctx *ctx, zc_ino_t ino, const char *name);

	/**
	 * Allocate or deallocate [@off, @off + @len) as fallocate(2) with
	 * @mode (FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE, ...). NULL answers
	 * EOPNOTSUPP.
	 */
	int (*fallocate)(const struct zc_ctx *ctx, zc_ino_t ino, uint64_t fh, int mode, off_t off,
			 off_t len);
	/** Returns the number of bytes copied. */
	ssize_t (*copy_file_range)(const struct zc_ctx *ctx, zc_ino_t ino_in, uint64_t fh_in,
				   off_t off_in, zc_ino_t ino_out, uint64_t fh_out, off_t off_out,
				   size_t len, int flags);
	/**
	 * Returns the new offset for SEEK_DATA or SEEK_HOLE (the kernel serves
	 * the other whences itself). NULL: the whole file counts as data.
	 */
	off_t (*lseek)(const struct zc_ctx *ctx, zc_ino_t ino, uint64_t fh, off_t off, int whence);
	/**
	 * BSD lock on the open file: LOCK_SH, LOCK_EX or LOCK_UN, maybe |
	 * LOCK_NB. NULL: the kernel keeps BSD locks for the mount itself. A
	 * blocking request is first made with LOCK_NB added; when that returns
	 * -EWOULDBLOCK, it is made again without, on a thread of its own that
	 * is sent a signal (handled, without SA_RESTART) when the caller is
	 * interrupted: the call should then give up and return -EINTR, as
	 * flock(2) does.
	 */
	int (*flock)(const struct zc_ctx *ctx, zc_ino_t ino, uint64_t fh, int op);
	/**
	 * Create an unnamed regular file in @parent (open(2) with O_TMPFILE)
	 * and open it with file->flags, as create does; counts one lookup of
	 * the result, which a later link gives a name.
	 */
	int (*tmpfile)(const struct zc_ctx *ctx, zc_ino_t parent, mode_t mode, struct zc_file *file,
		       struct zc_entry *ret_entry);
};

/**
 * Create a session for a backend. @ops_size is sizeof(struct zc_backend_ops)
 * as the backend saw it. Returns NULL with errno set on failure: EOPNOTSUPP
 * when @ops_size is larger than this library's and sets operations it does
 * not know.
 */
struct zc_session *zc_session_new(const struct zc_backend_ops *ops, size_t ops_size,
				  void *userdata);

/**
 * Apply one mount option, as given after -o (for example "cache=never",
 * "threads=4", "allow_other"). Returns -EINVAL for an unknown option or a
 * bad value; zc_session_error() then names the problem. zc_options_help()
 * lists them, as does zcfuse(1).
 */
int zc_session_set_option(struct zc_session *s, const char *opt);

/** Apply a comma-separated option list; "\," escapes a comma. */
int zc_session_set_options(struct zc_session *s, const char *optlist);

/** Set the file system name shown in /proc/mounts (the source). */
int zc_session_set_fsname(struct zc_session *s, const char *fsname);

/* Features a backend asks for with zc_session_set_features(). */
/**
 * Create modes (mknod, mkdir, create) arrive without the caller's umask
 * applied; ctx->umask holds it, and the backend applies it, or the
 * parent directory's default ACL instead, as a local file system does.
 */
#define ZC_FEATURE_DONT_MASK (1u << 0)
/**
 * The backend keeps POSIX ACLs as the system.posix_acl_access and
 * system.posix_acl_default extended attributes, keeps the mode in step
 * with them (as setxattr and chmod on a local file system do) and answers
 * ENODATA for an inode without one. With default_permissions the kernel
 * then enforces ACLs in its permission checks.
 */
#define ZC_FEATURE_POSIX_ACL (1u << 1)

/**
 * The backend reads zc_file.open_flags_in: under writeback caching it gets
 * a write-only open as the caller asked for it (with
 * ZC_OPEN_IN_CACHE_READS) and makes it readable itself. Without it the
 * library asks the backend for O_RDWR instead.
 */
#define ZC_FEATURE_OPEN_FLAGS_IN (1u << 2)

/** Ask for ZC_FEATURE_* behaviour; call before zc_session_mount(). */
void zc_session_set_features(struct zc_session *s, unsigned int features);

/** Print every request to stderr (the -d option). */
void zc_session_set_debug(struct zc_session *s, int debug);

/**
 * Receives the library's notices: one line, without a newline, on how the
 * mount runs where that differs from what was asked (a mode the kernel
 * refused and why, a cause of per-file fallback, each said once). May be
 * called from any thread. The library prints nothing itself.
 */
typedef void (*zc_notice_fn)(void *data, const char *line);

/** Send notices to @fn with @data (NULL: drop them, the default). */
void zc_session_set_notice_handler(struct zc_session *s, zc_notice_fn fn, void *data);

/**
 * A backend's own mount options: the library hands each option to @fn
 * first, as its name and its value (NULL for a bare name). @fn returns 0
 * when it took the option, -ENOENT when it does not know it (the library
 * then does), or -EINVAL when the value is bad or missing (the library
 * then fails with a message naming the option).
 */
typedef int (*zc_option_fn)(void *data, const char *name, const char *value);

/** Offer every option to @fn with @data first (NULL: none, the default). */
void zc_session_set_option_handler(struct zc_session *s, zc_option_fn fn, void *data);

/** Serve requests on one thread only (the -s option). */
void zc_session_set_single_threaded(struct zc_session *s, int single);

/**
 * Check @mountpoint and mount the file system there. Fails, before anything
 * is mounted, when the mountpoint is missing, not a directory, already a
 * mount point, or /dev/fuse cannot be opened. With the option remount it
 * does what zc_session_remount() does instead, and zc_session_daemonize()
 * and zc_session_loop() then return 0 at once.
 */
int zc_session_mount(struct zc_session *s, const char *mountpoint);

/**
 * When the options asked for remount (what mount(8) passes through
 * mount.fuse3 for "mount -o remount,..."): give the FUSE mount already at
 * @mountpoint the mount flags of the options (ro or rw, nosuid, nodev,
 * noexec, sync, the access time flags; what is not given takes its default,
 * as at mount) and return 1: there is nothing to serve. Returns 0, doing
 * nothing, without remount; a negative errno when the kernel refuses (only
 * root may remount). A program that sets up its backend before mounting
 * calls it first, so that a remount does not set up a second backend.
 */
int zc_session_remount(struct zc_session *s, const char *mountpoint);

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

/**
 * Make zc_session_loop() return 0, as SIGTERM does, from any thread (an
 * operation of the backend included, not a signal handler); it returns at
 * once. The loop's own thread then unmounts (zc_session_unmount() or
 * zc_session_destroy()). Single-threaded, the loop's thread is woken with
 * SIGUSR1 until the loop ends: a blocking call of an operation running on
 * it then may fail with EINTR. Since 0.5.
 */
void zc_session_stop(struct zc_session *s);

/**
 * Unmount (if mounted), on the thread that ran zc_session_loop(), once it
 * returned: another thread stops the loop with zc_session_stop().
 */
void zc_session_unmount(struct zc_session *s);

/** Free the session; unmounts first if needed. NULL is ignored. */
void zc_session_destroy(struct zc_session *s);

/** Why the last call on @s failed, as one line of text; never NULL. */
const char *zc_session_error(const struct zc_session *s);

/** The options zc_session_set_option() accepts, one per line, for --help. */
const char *zc_options_help(void);

/** Most positional arguments zc_parse_cmdline() reads. */
#define ZC_CMDLINE_ARGS_MAX 4

/**
 * A mount program's command line as zc_parse_cmdline() reads it:
 *
 *     PROGRAM ARG... [-f] [-d] [-s] [-o opt[,opt...]]... [-h|--help] [-V|--version]
 *
 * Fields are only ever added at the end; the caller passes the size it
 * knows to zc_parse_cmdline().
 */
struct zc_cmdline {
	/** The positional arguments, in order; NULL past those asked for. */
	const char *args[ZC_CMDLINE_ARGS_MAX];
	/**
	 * The -o option lists ("-o LIST" or "-oLIST"), in the order given,
	 * each for zc_session_set_options(). They are kept in argv itself:
	 * zc_parse_cmdline() moves them to argv[1] to argv[n_opts] (argv[0]
	 * and the strings stay where they are), as getopt(3) reorders argv.
	 */
	char **opts;
	int n_opts;
	/** -f, or -d: stay in the foreground (no zc_session_daemonize()). */
	int foreground;
	/** -d: print every request (zc_session_set_debug()). */
	int debug;
	/** -s: serve requests on one thread (zc_session_set_single_threaded()). */
	int single_threaded;
	/** -h or --help: print the usage, with zc_options_help(), and exit 0. */
	int show_help;
	/** -V or --version: print the version and exit 0. */
	int show_version;
	/** Why the command line was refused: one line, without the program's name. */
	char error[256];
};

/**
 * Read a mount program's command line. @arg_names, NULL-terminated, names
 * the positional arguments the program takes, at most ZC_CMDLINE_ARGS_MAX
 * (for example { "SOURCE", "MOUNTPOINT", NULL }), for the messages. @size
 * is sizeof(struct zc_cmdline) as the caller saw it.
 *
 * Returns 0 with @ret filled in. -h or -V ends the reading: show_help or
 * show_version is set and the rest is not looked at. Returns -EINVAL for a
 * bad command line (a missing or extra argument, an unknown flag, -o
 * without a list) with ret->error saying what is wrong; a program then
 * exits with status 2. The option lists are checked by
 * zc_session_set_options(), and may hold a backend's own options (see
 * zc_session_set_option_handler()).
 */
int zc_parse_cmdline(int argc, char *argv[], const char *const arg_names[], struct zc_cmdline *ret,
		     size_t size);

/** The library's version string at run time. */
const char *zc_version(void);

#ifdef __cplusplus
}
#endif

#endif /* ZCFUSE_H */
