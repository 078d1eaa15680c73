/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The inode table: kernel inode ids and (st_dev, st_ino) to O_PATH descriptors. */
#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pt.h"

#define PT_BUCKETS_MIN 1024

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

int pt_table_init(struct pt_table *t)
{
	t->buckets = PT_BUCKETS_MIN;
	t->by_id = calloc(t->buckets, sizeof(*t->by_id));
	t->by_key = calloc(t->buckets, sizeof(*t->by_key));
	if (!t->by_id || !t->by_key) {
		free(t->by_id);
		free(t->by_key);
		return -ENOMEM;
	}
	t->count = 0;
	t->next_id = ZC_ROOT_INO + 1;
	pthread_mutex_init(&t->lock, NULL);
	return 0;
}

void pt_table_fini(struct pt_table *t)
{
	size_t i;

	for (i = 0; i < t->buckets; i++) {
		struct pt_inode *inode = t->by_id[i], *next;

		for (; inode; inode = next) {
			next = inode->next_by_id;
			close(inode->fd);
			free(inode);
		}
	}
	free(t->by_id);
	free(t->by_key);
	t->by_id = t->by_key = NULL;
	pthread_mutex_destroy(&t->lock);
}

static void link_inode(struct pt_table *t, struct pt_inode *inode)
{
	size_t a = slot_by_id(t, inode->id), b = slot_by_key(t, inode->dev, inode->ino);

	inode->next_by_id = t->by_id[a];
	t->by_id[a] = inode;
	inode->next_by_key = t->by_key[b];
	t->by_key[b] = inode;
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
			next = inode->next_by_id;
			link_inode(t, inode);
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

static void unlink_inode(struct pt_table *t, struct pt_inode *inode)
{
	struct pt_inode **p;

	for (p = &t->by_id[slot_by_id(t, inode->id)]; *p != inode; p = &(*p)->next_by_id)
		;
	*p = inode->next_by_id;
	for (p = &t->by_key[slot_by_key(t, inode->dev, inode->ino)]; *p != inode;
	     p = &(*p)->next_by_key)
		;
	*p = inode->next_by_key;
	t->count--;
}

static struct pt_inode *insert_locked(struct pt_table *t, int fd, const struct stat *st,
				      zc_ino_t id)
{
	struct pt_inode *inode = calloc(1, sizeof(*inode));

	if (!inode)
		return NULL;
	inode->id = id;
	inode->dev = st->st_dev;
	inode->ino = st->st_ino;
	inode->type = st->st_mode & S_IFMT;
	inode->fd = fd;
	inode->nlookup = 1;
	maybe_grow(t);
	link_inode(t, inode);
	t->count++;
	return inode;
}

struct pt_inode *pt_table_add_lookup(struct pt_table *t, int fd, const struct stat *st)
{
	struct pt_inode *inode;

	pthread_mutex_lock(&t->lock);
	inode = find_by_key(t, st->st_dev, st->st_ino);
	if (inode) {
		inode->nlookup++;
		pthread_mutex_unlock(&t->lock);
		close(fd);
		return inode;
	}
	inode = insert_locked(t, fd, st, t->next_id);
	if (inode)
		t->next_id++;
	pthread_mutex_unlock(&t->lock);
	if (!inode) {
		close(fd);
		errno = ENOMEM;
	}
	return inode;
}

int pt_table_set_root(struct pt_table *t, int fd, const struct stat *st)
{
	struct pt_inode *inode;

	pthread_mutex_lock(&t->lock);
	inode = insert_locked(t, fd, st, ZC_ROOT_INO);
	pthread_mutex_unlock(&t->lock);
	return inode ? 0 : -ENOMEM;
}

struct pt_inode *pt_table_get(struct pt_table *t, zc_ino_t id)
{
	struct pt_inode *inode;

	pthread_mutex_lock(&t->lock);
	inode = find_by_id(t, id);
	if (inode)
		inode->refs++;
	pthread_mutex_unlock(&t->lock);
	if (!inode)
		errno = ESTALE;
	return inode;
}

/* Called with the lock held; frees the inode when nothing holds it. */
static void release_locked(struct pt_table *t, struct pt_inode *inode)
{
	if (inode->nlookup || inode->refs || inode->id == ZC_ROOT_INO)
		return;
	unlink_inode(t, inode);
	close(inode->fd);
	free(inode);
}

void pt_table_put(struct pt_table *t, struct pt_inode *inode)
{
	if (!inode)
		return;
	pthread_mutex_lock(&t->lock);
	inode->refs--;
	release_locked(t, inode);
	pthread_mutex_unlock(&t->lock);
}

void pt_table_forget(struct pt_table *t, zc_ino_t id, uint64_t nlookup)
{
	struct pt_inode *inode;

	pthread_mutex_lock(&t->lock);
	inode = find_by_id(t, id);
	if (inode) {
		inode->nlookup = nlookup > inode->nlookup ? 0 : inode->nlookup - nlookup;
		release_locked(t, inode);
	}
	pthread_mutex_unlock(&t->lock);
}

size_t pt_table_count(struct pt_table *t)
{
	size_t n;

	pthread_mutex_lock(&t->lock);
	n = t->count;
	pthread_mutex_unlock(&t->lock);
	return n;
}
