/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The inode table: kernel inode ids and (st_dev, st_ino) to inodes of
 * SOURCE, each known by a file handle and reopened from it on demand.
 *
 * An inode's O_PATH descriptor is a cache entry: while no request uses it
 * and no file of it is open, it sits on a least-recently-used list, and
 * the oldest are closed once that list holds more than max_fds. A request
 * that needs a closed one reopens it with open_by_handle_at() on a
 * descriptor of the inode's own mount, and checks that what it got has
 * the (st_dev, st_ino) it had: a file deleted or replaced on SOURCE
 * meanwhile answers ESTALE, never another file. Handles are only ever
 * made here, by name_to_handle_at() of a descriptor that a lookup inside
 * SOURCE opened.
 *
 * Where handles cannot be had or used (a file system without export
 * support, a daemon without CAP_DAC_READ_SEARCH), an inode keeps its
 * descriptor for as long as the kernel knows it, as every inode used to:
 * correct under renames, but bounded only by the open-file limit.
 */
#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pt.h"

#define PT_BUCKETS_MIN 1024
#define PT_HANDLE_MAX  128 /* MAX_HANDLE_SZ */
#define PT_CLOSE_BATCH 16
/* Linux 6.12: name_to_handle_at() reports the 64-bit unique mount id. */
#ifndef AT_HANDLE_MNT_ID_UNIQUE
#define AT_HANDLE_MNT_ID_UNIQUE 0x001
#endif

/* A mount of SOURCE's tree: the descriptor handles are opened against. */
struct pt_mount {
	uint64_t id;
	int fd;
	bool handles; /* open_by_handle_at() works here */
	struct pt_mount *next;
};

union pt_handle_buf {
	struct file_handle fh;
	unsigned char raw[sizeof(struct file_handle) + PT_HANDLE_MAX];
};

static size_t hash_u64(uint64_t v)
{
	v ^= v >> 33;
	v *= 0xff51afd7ed558ccdULL;
	v ^= v >> 33;
	return (size_t)v;
}

static size_t slot_by_id(const struct pt_table *t, zc_ino_t id)
{
	return hash_u64(id) & (t->buckets - 1);
}

static size_t slot_by_key(const struct pt_table *t, dev_t dev, ino_t ino)
{
	return hash_u64((uint64_t)ino * 31 + (uint64_t)dev) & (t->buckets - 1);
}

static void default_notice(const char *line)
{
	fprintf(stderr, "zcfuse: %s\n", line);
}

int pt_table_init(struct pt_table *t, unsigned int max_fds)
{
	memset(t, 0, sizeof(*t));
	t->buckets = PT_BUCKETS_MIN;
	t->by_id = calloc(t->buckets, sizeof(*t->by_id));
	t->by_key = calloc(t->buckets, sizeof(*t->by_key));
	if (!t->by_id || !t->by_key) {
		free(t->by_id);
		free(t->by_key);
		return -ENOMEM;
	}
	t->max_fds = max_fds;
	t->next_id = ZC_ROOT_INO + 1;
	t->notice = default_notice;
	t->unique_mnt_id = true;
	t->lru.prev = t->lru.next = &t->lru;
	pthread_mutex_init(&t->lock, NULL);
	pthread_mutex_init(&t->mounts_lock, NULL);
	return 0;
}

void pt_table_fini(struct pt_table *t)
{
	struct pt_mount *m, *next_m;
	size_t i;

	for (i = 0; i < t->buckets; i++) {
		struct pt_inode *inode = t->by_id[i], *next;

		for (; inode; inode = next) {
			next = inode->next_by_id;
			if (inode->fd >= 0)
				close(inode->fd);
			free(inode);
		}
	}
	for (m = t->mounts; m; m = next_m) {
		next_m = m->next;
		close(m->fd);
		free(m);
	}
	free(t->by_id);
	free(t->by_key);
	t->by_id = t->by_key = NULL;
	pthread_mutex_destroy(&t->lock);
	pthread_mutex_destroy(&t->mounts_lock);
}

/* ------------------------------------------------------------ handles */

static int handle_of(struct pt_table *t, int fd, union pt_handle_buf *buf, uint64_t *ret_mnt)
{
	int mnt_legacy = 0;
	int r;

	buf->fh.handle_bytes = PT_HANDLE_MAX;
	/* Zeroed: valgrind takes the mount id for the 4-byte one. */
	*ret_mnt = 0;
	if (t->unique_mnt_id) {
		r = name_to_handle_at(fd, "", &buf->fh, (int *)ret_mnt,
				      AT_EMPTY_PATH | AT_HANDLE_MNT_ID_UNIQUE);
		if (r == 0)
			return 0;
		if (errno != EINVAL)
			return -errno;
		/* Before Linux 6.12: the mount id, which a later mount may reuse. */
		t->unique_mnt_id = false;
		buf->fh.handle_bytes = PT_HANDLE_MAX;
	}
	if (name_to_handle_at(fd, "", &buf->fh, &mnt_legacy, AT_EMPTY_PATH) < 0)
		return -errno;
	*ret_mnt = (uint64_t)(unsigned int)mnt_legacy;
	return 0;
}

/*
 * The mount with id @mnt_id, met for the first time with @fd on it: keep a
 * descriptor of it and find out once whether its handles can be opened.
 * The first inode seen on a mount is the root of that mount (lookups cross
 * into a mount at its root), which cannot go away while it is mounted.
 */
static struct pt_mount *mount_get(struct pt_table *t, uint64_t mnt_id, int fd,
				  const union pt_handle_buf *handle)
{
	struct pt_mount *m;
	char line[256];
	int probe;

	pthread_mutex_lock(&t->mounts_lock);
	for (m = t->mounts; m; m = m->next)
		if (m->id == mnt_id)
			goto out;
	m = calloc(1, sizeof(*m));
	if (!m)
		goto out;
	m->id = mnt_id;
	/*
	 * open_by_handle_at() takes no O_PATH descriptor for the mount: a
	 * directory opened for reading (a mount whose root is a file keeps
	 * its inodes' descriptors instead).
	 */
	m->fd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (m->fd < 0)
		m->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (m->fd < 0) {
		free(m);
		m = NULL;
		goto out;
	}
	probe = open_by_handle_at(m->fd, (struct file_handle *)&handle->fh, O_PATH | O_CLOEXEC);
	m->handles = probe >= 0;
	if (probe >= 0) {
		close(probe);
	} else {
		snprintf(line, sizeof(line),
			 "file handles cannot be opened on a mount of SOURCE (%s): its inodes "
			 "each keep a descriptor while the kernel knows them",
			 strerror(errno));
		t->notice(line);
	}
	m->next = t->mounts;
	t->mounts = m;
out:
	pthread_mutex_unlock(&t->mounts_lock);
	return m;
}

/*
 * Open @inode again from its handle: an O_PATH descriptor, or -errno. Out
 * of descriptors, the idle ones go first.
 */
static int reopen(struct pt_table *t, struct pt_inode *inode)
{
	union pt_handle_buf buf;
	struct stat st;
	int fd;

	buf.fh.handle_bytes = inode->handle_bytes;
	buf.fh.handle_type = inode->handle_type;
	memcpy(buf.fh.f_handle, inode->handle, inode->handle_bytes);
	fd = open_by_handle_at(inode->mnt->fd, &buf.fh, O_PATH | O_CLOEXEC);
	if (fd < 0 && (errno == EMFILE || errno == ENFILE) && pt_table_trim(t))
		fd = open_by_handle_at(inode->mnt->fd, &buf.fh, O_PATH | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT || errno == ESTALE ? -ESTALE : -errno;
	if (fstatat(fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0 ||
	    st.st_dev != inode->dev || st.st_ino != inode->ino ||
	    (st.st_mode & S_IFMT) != inode->type) {
		close(fd);
		return -ESTALE;
	}
	return fd;
}

/* ---------------------------------------------------------- the table */

static void link_inode(struct pt_table *t, struct pt_inode *inode)
{
	size_t a = slot_by_id(t, inode->id), b = slot_by_key(t, inode->dev, inode->ino);

	inode->next_by_id = t->by_id[a];
	t->by_id[a] = inode;
	inode->next_by_key = t->by_key[b];
	t->by_key[b] = inode;
	inode->keyed = true;
}

/* Double the buckets when the table gets full; failure just keeps chains longer. */
static void maybe_grow(struct pt_table *t)
{
	struct pt_inode **old_id = t->by_id, **new_id, **new_key;
	size_t old_buckets = t->buckets, i;

	if (t->count < t->buckets)
		return;
	new_id = calloc(old_buckets * 2, sizeof(*new_id));
	new_key = calloc(old_buckets * 2, sizeof(*new_key));
	if (!new_id || !new_key) {
		free(new_id);
		free(new_key);
		return;
	}
	free(t->by_key);
	t->by_id = new_id;
	t->by_key = new_key;
	t->buckets = old_buckets * 2;
	for (i = 0; i < old_buckets; i++) {
		struct pt_inode *inode = old_id[i], *next;

		for (; inode; inode = next) {
			bool keyed = inode->keyed;

			next = inode->next_by_id;
			link_inode(t, inode);
			if (!keyed)
				t->by_key[slot_by_key(t, inode->dev, inode->ino)] =
				    inode->next_by_key;
			inode->keyed = keyed;
		}
	}
	free(old_id);
}

static struct pt_inode *find_by_id(struct pt_table *t, zc_ino_t id)
{
	struct pt_inode *inode = t->by_id[slot_by_id(t, id)];

	while (inode && inode->id != id)
		inode = inode->next_by_id;
	return inode;
}

static struct pt_inode *find_by_key(struct pt_table *t, dev_t dev, ino_t ino)
{
	struct pt_inode *inode = t->by_key[slot_by_key(t, dev, ino)];

	while (inode && (inode->dev != dev || inode->ino != ino))
		inode = inode->next_by_key;
	return inode;
}

/* Take @inode out of the (dev, ino) index: a newer inode has its key. */
static void unkey_inode(struct pt_table *t, struct pt_inode *inode)
{
	struct pt_inode **p;

	if (!inode->keyed)
		return;
	for (p = &t->by_key[slot_by_key(t, inode->dev, inode->ino)]; *p != inode;
	     p = &(*p)->next_by_key)
		;
	*p = inode->next_by_key;
	inode->keyed = false;
}

static void unlink_inode(struct pt_table *t, struct pt_inode *inode)
{
	struct pt_inode **p;

	for (p = &t->by_id[slot_by_id(t, inode->id)]; *p != inode; p = &(*p)->next_by_id)
		;
	*p = inode->next_by_id;
	unkey_inode(t, inode);
	t->count--;
}

static bool on_lru(const struct pt_inode *inode)
{
	return inode->lru.next != NULL;
}

static struct pt_inode *lru_inode(struct pt_lru *link)
{
	return (struct pt_inode *)((char *)link - offsetof(struct pt_inode, lru));
}

static void lru_remove(struct pt_table *t, struct pt_inode *inode)
{
	if (!on_lru(inode))
		return;
	inode->lru.prev->next = inode->lru.next;
	inode->lru.next->prev = inode->lru.prev;
	inode->lru.prev = inode->lru.next = NULL;
	t->cached--;
}

/* Descriptors to close once the lock is dropped. */
struct pt_closing {
	int fds[PT_CLOSE_BATCH + 1];
	unsigned int n;
};

static void closing_add(struct pt_closing *c, int fd)
{
	c->fds[c->n++] = fd;
}

static void closing_run(struct pt_closing *c)
{
	while (c->n)
		close(c->fds[--c->n]);
}

/*
 * Called with the lock held when @inode may have become idle: its
 * descriptor joins the cache (most recent first), and the least recently
 * used beyond the bound are closed (into @c).
 */
static void settle_locked(struct pt_table *t, struct pt_inode *inode, struct pt_closing *c)
{
	if (inode->fd < 0 || inode->refs || inode->opens || !inode->mnt || !t->max_fds ||
	    on_lru(inode))
		return;
	/* Unlinked: its descriptor would keep its space taken (reopened by handle if need be). */
	if (inode->unlinked && c->n < PT_CLOSE_BATCH) {
		closing_add(c, inode->fd);
		inode->fd = -1;
		t->fds--;
		return;
	}
	inode->lru.next = t->lru.next;
	inode->lru.prev = &t->lru;
	t->lru.next->prev = &inode->lru;
	t->lru.next = &inode->lru;
	t->cached++;
	while (t->cached > t->max_fds && c->n < PT_CLOSE_BATCH) {
		struct pt_inode *old = lru_inode(t->lru.prev);

		lru_remove(t, old);
		closing_add(c, old->fd);
		old->fd = -1;
		t->fds--;
		t->evictions++;
	}
}

static struct pt_inode *insert_locked(struct pt_table *t, int fd, const struct stat *st,
				      zc_ino_t id, struct pt_mount *mnt,
				      const union pt_handle_buf *handle)
{
	size_t hbytes = mnt ? handle->fh.handle_bytes : 0;
	struct pt_inode *inode = calloc(1, sizeof(*inode) + hbytes);

	if (!inode)
		return NULL;
	inode->id = id;
	inode->dev = st->st_dev;
	inode->ino = st->st_ino;
	inode->type = st->st_mode & S_IFMT;
	inode->fd = fd;
	inode->nlookup = 1;
	inode->mnt = mnt;
	if (mnt) {
		inode->handle_type = handle->fh.handle_type;
		inode->handle_bytes = (uint8_t)hbytes;
		memcpy(inode->handle, handle->fh.f_handle, hbytes);
	}
	maybe_grow(t);
	link_inode(t, inode);
	t->count++;
	t->fds++;
	return inode;
}

static bool same_handle(const struct pt_inode *inode, const struct pt_mount *mnt,
			const union pt_handle_buf *handle)
{
	/* An inode without a handle holds its descriptor: its key is current. */
	if (!inode->mnt || !mnt)
		return true;
	return inode->handle_type == handle->fh.handle_type &&
	       inode->handle_bytes == handle->fh.handle_bytes &&
	       !memcmp(inode->handle, handle->fh.f_handle, inode->handle_bytes);
}

/* The handle and mount of @fd's inode; NULL where it has none that opens. */
static struct pt_mount *identify(struct pt_table *t, int fd, union pt_handle_buf *handle)
{
	struct pt_mount *m;
	uint64_t mnt_id;

	if (handle_of(t, fd, handle, &mnt_id) < 0)
		return NULL;
	m = mount_get(t, mnt_id, fd, handle);
	return m && m->handles ? m : NULL;
}

struct pt_inode *pt_table_add_lookup(struct pt_table *t, int fd, const struct stat *st)
{
	struct pt_closing closing = { .n = 0 };
	union pt_handle_buf handle;
	struct pt_mount *mnt;
	struct pt_inode *inode;

	/*
	 * A known inode whose descriptor is open is this one: the descriptor
	 * keeps its (dev, ino) from being reused. Only otherwise is the handle
	 * needed, to tell it from a new inode with the same number.
	 */
	pthread_mutex_lock(&t->lock);
	inode = find_by_key(t, st->st_dev, st->st_ino);
	if (inode && inode->fd >= 0) {
		inode->nlookup++;
		pthread_mutex_unlock(&t->lock);
		close(fd);
		return inode;
	}
	pthread_mutex_unlock(&t->lock);

	mnt = identify(t, fd, &handle);
	pthread_mutex_lock(&t->lock);
	inode = find_by_key(t, st->st_dev, st->st_ino);
	if (inode && !same_handle(inode, mnt, &handle)) {
		/* (dev, ino) reused on SOURCE: the one the kernel knows is gone. */
		unkey_inode(t, inode);
		inode = NULL;
	}
	if (inode) {
		inode->nlookup++;
		if (inode->fd < 0) {
			/* The fresh descriptor saves the next request a reopen. */
			inode->fd = fd;
			t->fds++;
			fd = -1;
			settle_locked(t, inode, &closing);
		}
		pthread_mutex_unlock(&t->lock);
		if (fd >= 0)
			close(fd);
		closing_run(&closing);
		return inode;
	}
	inode = insert_locked(t, fd, st, t->next_id, mnt, &handle);
	if (inode) {
		t->next_id++;
		settle_locked(t, inode, &closing);
	}
	pthread_mutex_unlock(&t->lock);
	closing_run(&closing);
	if (!inode) {
		close(fd);
		errno = ENOMEM;
	}
	return inode;
}

int pt_table_set_root(struct pt_table *t, int fd, const struct stat *st)
{
	union pt_handle_buf handle;
	struct pt_inode *inode;
	struct pt_mount *mnt;

	mnt = identify(t, fd, &handle);
	pthread_mutex_lock(&t->lock);
	inode = insert_locked(t, fd, st, ZC_ROOT_INO, mnt, &handle);
	if (inode)
		inode->opens = 1; /* the root keeps its descriptor */
	pthread_mutex_unlock(&t->lock);
	return inode ? 0 : -ENOMEM;
}

/* Called with the lock held; frees the inode when nothing holds it. */
static void release_locked(struct pt_table *t, struct pt_inode *inode, struct pt_closing *c)
{
	if (inode->nlookup || inode->refs || inode->opens || inode->id == ZC_ROOT_INO) {
		settle_locked(t, inode, c);
		return;
	}
	lru_remove(t, inode);
	unlink_inode(t, inode);
	if (inode->fd >= 0) {
		closing_add(c, inode->fd);
		t->fds--;
	}
	free(inode);
}

struct pt_inode *pt_table_get(struct pt_table *t, zc_ino_t id)
{
	struct pt_closing closing = { .n = 0 };
	struct pt_inode *inode;
	bool is_open = false;
	int fd;

	pthread_mutex_lock(&t->lock);
	inode = find_by_id(t, id);
	if (inode) {
		inode->refs++;
		lru_remove(t, inode);
		is_open = inode->fd >= 0;
	}
	pthread_mutex_unlock(&t->lock);
	if (!inode) {
		errno = ESTALE;
		return NULL;
	}
	/* Open now, it stays open while the reference is held. */
	if (is_open)
		return inode;
	/* Only inodes with a handle ever lose their descriptor. */
	fd = reopen(t, inode);
	pthread_mutex_lock(&t->lock);
	if (fd >= 0) {
		t->reopens++;
		if (inode->fd < 0) {
			inode->fd = fd;
			t->fds++;
		} else {
			closing_add(&closing, fd); /* another request was quicker */
		}
	} else {
		if (fd == -ESTALE)
			t->stale++;
		inode->refs--;
		release_locked(t, inode, &closing);
		inode = NULL;
	}
	pthread_mutex_unlock(&t->lock);
	closing_run(&closing);
	if (!inode)
		errno = -fd;
	return inode;
}

void pt_table_put(struct pt_table *t, struct pt_inode *inode)
{
	struct pt_closing closing = { .n = 0 };

	if (!inode)
		return;
	pthread_mutex_lock(&t->lock);
	inode->refs--;
	release_locked(t, inode, &closing);
	pthread_mutex_unlock(&t->lock);
	closing_run(&closing);
}

void pt_table_forget(struct pt_table *t, zc_ino_t id, uint64_t nlookup)
{
	struct pt_closing closing = { .n = 0 };
	struct pt_inode *inode;

	pthread_mutex_lock(&t->lock);
	inode = find_by_id(t, id);
	if (inode) {
		inode->nlookup = nlookup > inode->nlookup ? 0 : inode->nlookup - nlookup;
		release_locked(t, inode, &closing);
	}
	pthread_mutex_unlock(&t->lock);
	closing_run(&closing);
}

void pt_table_open(struct pt_table *t, struct pt_inode *inode)
{
	pthread_mutex_lock(&t->lock);
	inode->opens++;
	lru_remove(t, inode);
	pthread_mutex_unlock(&t->lock);
}

void pt_table_unlinked(struct pt_table *t, dev_t dev, ino_t ino)
{
	struct pt_closing closing = { .n = 0 };
	struct pt_inode *inode;
	struct stat st;

	pthread_mutex_lock(&t->lock);
	inode = find_by_key(t, dev, ino);
	if (inode && inode->fd >= 0 && fstat(inode->fd, &st) == 0 && st.st_nlink == 0) {
		inode->unlinked = true;
		if (on_lru(inode)) {
			lru_remove(t, inode);
			settle_locked(t, inode, &closing);
		}
	}
	pthread_mutex_unlock(&t->lock);
	closing_run(&closing);
}

void pt_table_close(struct pt_table *t, zc_ino_t id)
{
	struct pt_closing closing = { .n = 0 };
	struct pt_inode *inode;

	pthread_mutex_lock(&t->lock);
	inode = find_by_id(t, id);
	if (inode && inode->opens && inode->id != ZC_ROOT_INO) {
		inode->opens--;
		release_locked(t, inode, &closing);
	}
	pthread_mutex_unlock(&t->lock);
	closing_run(&closing);
}

unsigned int pt_table_trim(struct pt_table *t)
{
	struct pt_closing closing = { .n = 0 };
	unsigned int closed = 0, batch;

	do {
		pthread_mutex_lock(&t->lock);
		while (t->cached && closing.n < PT_CLOSE_BATCH) {
			struct pt_inode *old = lru_inode(t->lru.prev);

			lru_remove(t, old);
			closing_add(&closing, old->fd);
			old->fd = -1;
			t->fds--;
			t->evictions++;
		}
		pthread_mutex_unlock(&t->lock);
		batch = closing.n;
		closed += batch;
		closing_run(&closing);
	} while (batch == PT_CLOSE_BATCH);
	return closed;
}

size_t pt_table_count(struct pt_table *t)
{
	size_t n;

	pthread_mutex_lock(&t->lock);
	n = t->count;
	pthread_mutex_unlock(&t->lock);
	return n;
}

void pt_table_get_stats(struct pt_table *t, struct pt_table_stats *ret)
{
	pthread_mutex_lock(&t->lock);
	ret->inodes = t->count;
	ret->fds = t->fds;
	ret->cached = t->cached;
	ret->reopens = t->reopens;
	ret->evictions = t->evictions;
	ret->stale = t->stale;
	pthread_mutex_unlock(&t->lock);
}
