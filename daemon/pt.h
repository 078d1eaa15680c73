/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The passthrough backend: a directory served through libzcfuse. */
#ifndef ZCFUSE_PT_H
#define ZCFUSE_PT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "zcfuse/zcfuse.h"

/*
 * One inode of SOURCE the kernel knows about. It holds an O_PATH descriptor,
 * so the inode cannot be freed and its (dev, ino) cannot be reused while the
 * entry lives. Lives while the kernel holds lookups (nlookup) or an
 * operation is using it (refs).
 */
struct pt_inode {
	zc_ino_t id;
	dev_t dev;
	ino_t ino;
	mode_t type; /* S_IFMT bits */
	int fd;
	uint64_t nlookup;
	uint64_t refs;
	struct pt_inode *next_by_id;
	struct pt_inode *next_by_key;
};

struct pt_table {
	pthread_mutex_t lock;
	struct pt_inode **by_id;
	struct pt_inode **by_key;
	size_t buckets; /* a power of two */
	size_t count;
	zc_ino_t next_id;
};

int pt_table_init(struct pt_table *t);
void pt_table_fini(struct pt_table *t);

/*
 * Insert the inode behind @fd (an O_PATH descriptor, taken over in every
 * case) or, when (dev, ino) is already known, count one more lookup of it.
 * Returns the inode with one lookup counted, or NULL with errno set.
 */
struct pt_inode *pt_table_add_lookup(struct pt_table *t, int fd, const struct stat *st);

/* Take a reference on inode @id; NULL (errno ESTALE) when unknown. */
struct pt_inode *pt_table_get(struct pt_table *t, zc_ino_t id);

/* Drop a reference taken by pt_table_get(). */
void pt_table_put(struct pt_table *t, struct pt_inode *inode);

/* Drop @nlookup lookups of inode @id. */
void pt_table_forget(struct pt_table *t, zc_ino_t id, uint64_t nlookup);

/* Install the root: ino ZC_ROOT_INO, never forgotten. */
int pt_table_set_root(struct pt_table *t, int fd, const struct stat *st);

/* Number of inodes in the table (for tests and statistics). */
size_t pt_table_count(struct pt_table *t);

struct pt_dir;

struct pt_fs {
	struct pt_table table;
	bool creds_switch; /* the daemon runs as root: act as the caller */
	uint64_t caps_eff; /* the daemon's own capabilities, lent to callers */
	uint64_t caps_perm;
	/* Open directories, closed by pt_fs_fini() if the kernel never released them. */
	pthread_mutex_t dirs_lock;
	struct pt_dir *dirs;
};

extern const struct zc_backend_ops pt_ops;

/* Open SOURCE and set up the backend; -errno on failure. */
int pt_fs_init(struct pt_fs *fs, const char *source);
void pt_fs_fini(struct pt_fs *fs);

#endif /* ZCFUSE_PT_H */
