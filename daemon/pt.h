/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The passthrough backend: a directory served through libzcfuse. */
#ifndef ZCFUSE_PT_H
#define ZCFUSE_PT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "zcfuse/zcfuse.h"

struct pt_mount;

/* A link in the table's list of idle descriptors. */
struct pt_lru {
	struct pt_lru *prev, *next;
};

/*
 * One inode of SOURCE the kernel knows about, known by its file handle. Its
 * O_PATH descriptor (fd) is open while a request uses the inode (refs), a
 * file of it is open (opens), or it sits in the table's cache of idle
 * descriptors; otherwise it is -1 and pt_table_get() reopens it. An inode
 * without a handle (mnt NULL) keeps its descriptor, which also keeps its
 * (dev, ino) from being reused. Lives while the kernel holds lookups
 * (nlookup), a request uses it or a file of it is open.
 */
struct pt_inode {
	zc_ino_t id;
	dev_t dev;
	ino_t ino;
	uint64_t nlookup;
	struct pt_inode *next_by_id;
	struct pt_inode *next_by_key;
	struct pt_lru lru; /* on the idle list when lru.next */
	struct pt_mount *mnt;
	int fd;
	uint32_t refs;
	uint32_t opens;
	/*
	 * What the file looked like at its last open (file_sig()), or 0:
	 * the kernel's cached pages are still good when it looks the same.
	 */
	uint64_t cache_sig;
	uint16_t type; /* S_IFMT bits */
	bool keyed;    /* in the (dev, ino) index; not once a newer inode took it */
	/* Its last name went: no idle descriptor is kept (pt_table_unlinked()). */
	bool unlinked;
	uint8_t handle_bytes;
	int32_t handle_type;
	unsigned char handle[];
};

struct pt_table {
	pthread_mutex_t lock;
	struct pt_inode **by_id;
	struct pt_inode **by_key;
	size_t buckets; /* a power of two */
	size_t count;
	zc_ino_t next_id;
	/* Idle descriptors, most recently used first (a ring through lru). */
	struct pt_lru lru;
	size_t cached;
	size_t max_fds; /* at most this many idle descriptors; 0: no bound */
	size_t fds;	/* inode descriptors open */
	uint64_t reopens, evictions, stale;
	pthread_mutex_t mounts_lock;
	struct pt_mount *mounts;
	bool unique_mnt_id;
	void (*notice)(const char *line);
};

struct pt_table_stats {
	uint64_t inodes, fds, cached, reopens, evictions, stale;
};

/*
 * The last name of (@dev, @ino) went (unlink, or a rename over it): once
 * nothing uses the inode its descriptor is closed rather than kept idle,
 * so that its space is freed then, as on SOURCE, and not at the kernel's
 * FORGET. Only an inode that has a handle, and only when its link count
 * is 0 (another name may remain).
 */
void pt_table_unlinked(struct pt_table *t, dev_t dev, ino_t ino);

/* @max_fds: idle descriptors kept open at most (0: all of them). */
int pt_table_init(struct pt_table *t, unsigned int max_fds);
void pt_table_fini(struct pt_table *t);

/*
 * Insert the inode behind @fd (an O_PATH descriptor, taken over in every
 * case) or, when (dev, ino) is already known as the same inode, count one
 * more lookup of it. Returns the inode with one lookup counted, or NULL
 * with errno set. Makes the inode's file handle, so it runs with the
 * daemon's own credentials.
 */
struct pt_inode *pt_table_add_lookup(struct pt_table *t, int fd, const struct stat *st);

/*
 * Take a reference on inode @id, with its descriptor open (reopened from
 * its handle when it was closed); NULL with errno ESTALE when the id is
 * unknown or the inode is gone from SOURCE, or the error of the reopen
 * (EMFILE, ENFILE). Runs with the daemon's own credentials.
 */
struct pt_inode *pt_table_get(struct pt_table *t, zc_ino_t id);

/* Drop a reference taken by pt_table_get(). */
void pt_table_put(struct pt_table *t, struct pt_inode *inode);

/* Drop @nlookup lookups of inode @id. */
void pt_table_forget(struct pt_table *t, zc_ino_t id, uint64_t nlookup);

/* A file of @inode (referenced) was opened: it keeps its descriptor until closed. */
void pt_table_open(struct pt_table *t, struct pt_inode *inode);
void pt_table_close(struct pt_table *t, zc_ino_t id);

/*
 * Close every idle descriptor (the process ran out of descriptors);
 * returns how many were closed.
 */
unsigned int pt_table_trim(struct pt_table *t);

/* Install the root: ino ZC_ROOT_INO, never forgotten, never closed. */
int pt_table_set_root(struct pt_table *t, int fd, const struct stat *st);

/* Number of inodes in the table (for tests and statistics). */
size_t pt_table_count(struct pt_table *t);
void pt_table_get_stats(struct pt_table *t, struct pt_table_stats *ret);

struct pt_dir;
struct pt_user;

struct pt_conf {
	/* Idle inode descriptors kept open at most; 0: the default. */
	unsigned int max_fds;
	/* Where one-line notices go (NULL: stderr). */
	void (*notice)(const char *line);
	/*
	 * The mount's access time rule, for the daemon's own reads of
	 * SOURCE: MOUNT_ATTR_RELATIME, _NOATIME or _STRICTATIME when
	 * atime_set, and MOUNT_ATTR_NODIRATIME or 0 when diratime_set.
	 * Unset: SOURCE's own mount decides.
	 */
	bool atime_set, diratime_set;
	uint64_t atime, diratime;
	/* The mount is read-only: its readers change no access time (MOUNT_ATTR_NOATIME). */
	bool read_only;
};

/* The default bound on idle inode descriptors, for an open-file limit of @nofile. */
unsigned int pt_default_max_fds(unsigned long nofile);
/* The smallest open-file limit pt_fs_init() takes with @max_fds (0: the default). */
unsigned long pt_nofile_needed(unsigned int max_fds);

struct pt_fs {
	struct pt_table table;
	bool creds_switch; /* the daemon runs as root: act as the caller */
	uint64_t caps_eff; /* the daemon's own capabilities, lent to callers */
	uint64_t caps_perm;
	/* Open directories, closed by pt_fs_fini() if the kernel never released them. */
	pthread_mutex_t dirs_lock;
	struct pt_dir *dirs;
	/*
	 * Open files and directories, each counted against its opener's uid:
	 * at most opens_max in all and opens_per_user for one uid, so that
	 * the descriptors the inode table needs always remain.
	 */
	pthread_mutex_t opens_lock;
	struct pt_user *users;
	unsigned int opens, opens_max, opens_per_user;
	uid_t *fd_owner;
	size_t fd_owner_len;
	/* Callers' groups read from /proc, and operations tried again with them. */
	uint64_t groups_read, groups_retried;
};

extern const struct zc_backend_ops pt_ops;

/* Open SOURCE and set up the backend; -errno on failure (-EINVAL: a bad @conf). */
int pt_fs_init(struct pt_fs *fs, const char *source, const struct pt_conf *conf);
void pt_fs_fini(struct pt_fs *fs);

/* Counters for the statistics: the inode table's and the open files'. */
struct pt_fs_stats {
	struct pt_table_stats table;
	uint64_t opens, opens_max, opens_per_user;
	uint64_t groups_read, groups_retried;
};
void pt_fs_get_stats(struct pt_fs *fs, struct pt_fs_stats *ret);

#endif /* ZCFUSE_PT_H */
