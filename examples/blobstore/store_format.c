/* SPDX-License-Identifier: MIT */
/*
 * The store on disk: the two superblock slots, the index (every inode,
 * serialized, with its CRC-32C), commit, and opening a store: loading and
 * checking an existing one or formatting a new one. See blobstore.h for the
 * layout and how a commit stays atomic.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>
#include "blobstore.h"

uint32_t bs_crc32c(const void *data, size_t len)
{
	static uint32_t table[256];
	const uint8_t *p = data;
	uint32_t crc = ~0u;
	size_t i;

	if (!table[1]) {
		for (i = 0; i < 256; i++) {
			uint32_t c = (uint32_t)i;
			int k;

			for (k = 0; k < 8; k++)
				c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
			table[i] = c;
		}
	}
	for (i = 0; i < len; i++)
		crc = table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
	return ~crc;
}

/* ------------------------------------------------- the index on disk */

struct bs_buf {
	uint8_t *p;
	size_t len, cap;
	bool oom;
};

static void put(struct bs_buf *b, const void *data, size_t len)
{
	if (b->oom)
		return;
	if (b->len + len > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		uint8_t *p;

		while (cap < b->len + len)
			cap *= 2;
		p = realloc(b->p, cap);
		if (!p) {
			b->oom = true;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, data, len);
	b->len += len;
}

static void put_u16(struct bs_buf *b, uint16_t v)
{
	v = htole16(v);
	put(b, &v, sizeof(v));
}

static void put_u32(struct bs_buf *b, uint32_t v)
{
	v = htole32(v);
	put(b, &v, sizeof(v));
}

static void put_u64(struct bs_buf *b, uint64_t v)
{
	v = htole64(v);
	put(b, &v, sizeof(v));
}

static void put_time(struct bs_buf *b, const struct timespec *t)
{
	put_u64(b, (uint64_t)t->tv_sec);
	put_u32(b, (uint32_t)t->tv_nsec);
}

/* Every inode with a name, in inode order. */
static void serialize(struct bs_fs *fs, struct bs_buf *b)
{
	uint64_t count = 0;
	size_t i, j;

	for (i = 0; i < fs->nr_inodes; i++)
		count += fs->inodes[i] && fs->inodes[i]->st.st_nlink;
	put_u32(b, BS_INDEX_MAGIC);
	put_u64(b, fs->next_ino);
	put_u64(b, count);
	for (i = 0; i < fs->nr_inodes; i++) {
		const struct bs_inode *inode = fs->inodes[i];
		const struct stat *st;

		if (!inode || !inode->st.st_nlink)
			continue;
		st = &inode->st;
		put_u64(b, st->st_ino);
		put_u32(b, st->st_mode);
		put_u32(b, st->st_uid);
		put_u32(b, st->st_gid);
		put_u32(b, (uint32_t)st->st_nlink);
		put_u64(b, st->st_rdev);
		put_u64(b, (uint64_t)st->st_size);
		put_time(b, &st->st_atim);
		put_time(b, &st->st_mtim);
		put_time(b, &st->st_ctim);
		put_u32(b, (uint32_t)inode->nr_xattrs);
		for (j = 0; j < inode->nr_xattrs; j++) {
			put_u16(b, (uint16_t)strlen(inode->xattrs[j].name));
			put(b, inode->xattrs[j].name, strlen(inode->xattrs[j].name));
			put_u32(b, (uint32_t)inode->xattrs[j].size);
			put(b, inode->xattrs[j].value, inode->xattrs[j].size);
		}
		if (S_ISDIR(st->st_mode)) {
			const struct bs_dirent *d;
			uint32_t n = 0;

			for (d = inode->first; d; d = d->next)
				n++;
			put_u32(b, n);
			for (d = inode->first; d; d = d->next) {
				put_u16(b, (uint16_t)strlen(d->name));
				put(b, d->name, strlen(d->name));
				put_u64(b, d->inode->st.st_ino);
			}
		} else if (S_ISLNK(st->st_mode)) {
			put_u32(b, (uint32_t)strlen(inode->target));
			put(b, inode->target, strlen(inode->target));
		} else if (S_ISREG(st->st_mode)) {
			put_u32(b, (uint32_t)inode->nr_ext);
			for (j = 0; j < inode->nr_ext; j++) {
				put_u64(b, inode->ext[j].fblk);
				put_u64(b, inode->ext[j].dblk);
				put_u64(b, inode->ext[j].n);
			}
		}
	}
}

struct bs_sb {
	uint64_t generation;
	uint64_t next_ino;
	uint64_t index_block;
	uint64_t index_len;
	uint32_t index_crc;
	uint32_t units; /* the size of the space in BS_UNIT_BLOCKS, where the superblock keeps it */
};

static void sb_encode(const struct bs_sb *sb, uint8_t out[BS_SB_SIZE])
{
	struct bs_buf b = { 0 };
	uint32_t crc;

	put(&b, BS_MAGIC, 8);
	put_u32(&b, BS_VERSION);
	put_u32(&b, (uint32_t)BS_BLOCK);
	put_u64(&b, sb->generation);
	put_u64(&b, sb->index_block);
	put_u64(&b, sb->index_len);
	put_u32(&b, sb->index_crc);
	put_u32(&b, sb->units);
	put_u64(&b, sb->next_ino);
	put_u32(&b, 0);
	memset(out, 0, BS_SB_SIZE);
	if (!b.oom)
		memcpy(out, b.p, b.len);
	free(b.p);
	crc = htole32(bs_crc32c(out, 60));
	memcpy(out + 60, &crc, sizeof(crc));
}

/*
 * Commit: the index into fresh blocks, fdatasync, the next superblock into
 * the other slot, fdatasync. Called with fs->lock held.
 */
int bs_commit(struct bs_fs *fs)
{
	uint8_t slot[BS_BLOCK] = { 0 };
	struct bs_buf b = { 0 };
	struct bs_run where;
	struct bs_sb sb;
	size_t i, k;
	int r;

	serialize(fs, &b);
	if (b.oom) {
		free(b.p);
		return -ENOMEM;
	}
	r = bs_alloc_blocks(fs, (b.len + BS_BLOCK - 1) / BS_BLOCK, 0, true, &where);
	if (r < 0) {
		free(b.p);
		return r;
	}
	sb.generation = fs->generation + 1;
	sb.next_ino = fs->next_ino;
	sb.index_block = where.start;
	sb.index_len = b.len;
	sb.index_crc = bs_crc32c(b.p, b.len);
	sb.units = 0;
	if (fs->sized_by_sb)
		sb.units = (uint32_t)((fs->total_blocks + BS_UNIT_BLOCKS - 1) / BS_UNIT_BLOCKS);
	r = bs_space_write(fs, b.p, b.len, where.start * BS_BLOCK);
	free(b.p);
	if (r == 0)
		r = fs->space->sync(fs);
	if (r < 0) { /* nothing points at the new index: reuse (zeroed) after a commit */
		bs_runs_add(&fs->pending, where.start, where.n);
		return r;
	}
	sb_encode(&sb, slot);
	r = fs->space->write_sb(fs, (int)(sb.generation % 2), slot, BS_BLOCK);
	if (r == 0)
		r = fs->space->sync(fs);
	if (r < 0) { /* the superblock may have landed: keep the new index until the next commit */
		bs_runs_add(&fs->pending, where.start, where.n);
		return r;
	}
	/* Committed: the old index and what was freed since can be reused now. */
	if (fs->index.n)
		bs_runs_add(&fs->pending, fs->index.start, fs->index.n);
	fs->index = where;
	fs->generation = sb.generation;
	for (i = 0, k = 0; i < fs->pending.nr; i++) {
		struct bs_run run = fs->pending.v[i];

		/* A run that cannot be zeroed (or listed) waits for the next commit. */
		if (bs_zero_blocks(fs, run.start, run.n) < 0 ||
		    bs_runs_add(&fs->free, run.start, run.n) < 0)
			fs->pending.v[k++] = run;
	}
	fs->pending.nr = k;
	return 0;
}

/* ------------------------------------------------ loading and checking */

struct bs_cur {
	const uint8_t *p, *end;
	bool short_;
};

static bool get(struct bs_cur *c, void *out, size_t len)
{
	if ((size_t)(c->end - c->p) < len) {
		c->short_ = true;
		memset(out, 0, len);
		return false;
	}
	memcpy(out, c->p, len);
	c->p += len;
	return true;
}

static uint16_t get_u16(struct bs_cur *c)
{
	uint16_t v;

	get(c, &v, sizeof(v));
	return le16toh(v);
}

static uint32_t get_u32(struct bs_cur *c)
{
	uint32_t v;

	get(c, &v, sizeof(v));
	return le32toh(v);
}

static uint64_t get_u64(struct bs_cur *c)
{
	uint64_t v;

	get(c, &v, sizeof(v));
	return le64toh(v);
}

static void get_time(struct bs_cur *c, struct timespec *t)
{
	t->tv_sec = (time_t)get_u64(c);
	t->tv_nsec = get_u32(c) % 1000000000;
}

/* A string of @len bytes from the index, as a new C string; NULL if it has a NUL. */
static char *get_str(struct bs_cur *c, size_t len)
{
	char *s;

	if ((size_t)(c->end - c->p) < len) {
		c->short_ = true;
		return NULL;
	}
	if (memchr(c->p, '\0', len))
		return NULL;
	s = malloc(len + 1);
	if (!s)
		return NULL;
	memcpy(s, c->p, len);
	s[len] = '\0';
	c->p += len;
	return s;
}

static bool valid_name(const char *name)
{
	return name && name[0] && strlen(name) <= BS_NAME_MAX && !strchr(name, '/') &&
	       strcmp(name, ".") && strcmp(name, "..");
}

static int fail(struct bs_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(struct bs_err *err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	return -1;
}

/* The same, for the block spaces and the command line. */
int bs_fail(struct bs_err *err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	return -1;
}

/* Directory entries are kept as inode numbers until every inode is read. */
struct bs_pending_dirent {
	bs_ino_t dir;
	bs_ino_t ino;
	char *name;
};

static int parse_inode(struct bs_fs *fs, struct bs_cur *c, struct bs_pending_dirent **des,
		       size_t *nr_des, struct bs_err *err)
{
	struct bs_inode *inode;
	uint64_t ino = get_u64(c);
	mode_t mode = get_u32(c);
	uint32_t i, n;

	if (c->short_)
		return fail(err, "index ends inside an inode");
	if (ino == 0 || ino >= fs->next_ino || ino > (1ULL << 40) || bs_get_inode(fs, ino))
		return fail(err, "bad or repeated inode number %llu", (unsigned long long)ino);
	if (!S_ISREG(mode) && !S_ISDIR(mode) && !S_ISLNK(mode) && !S_ISCHR(mode) &&
	    !S_ISBLK(mode) && !S_ISFIFO(mode) && !S_ISSOCK(mode))
		return fail(err, "inode %llu has a bad mode", (unsigned long long)ino);
	inode = bs_new_inode(fs, ino, mode);
	if (!inode)
		return fail(err, "out of memory");
	inode->st.st_uid = get_u32(c);
	inode->st.st_gid = get_u32(c);
	inode->st.st_nlink = get_u32(c);
	inode->st.st_rdev = get_u64(c);
	inode->st.st_size = (off_t)get_u64(c);
	get_time(c, &inode->st.st_atim);
	get_time(c, &inode->st.st_mtim);
	get_time(c, &inode->st.st_ctim);
	if (inode->st.st_size < 0 || !inode->st.st_nlink)
		return fail(err, "inode %llu has a bad size or link count",
			    (unsigned long long)ino);
	n = get_u32(c);
	for (i = 0; i < n && !c->short_; i++) {
		struct bs_xattr *x;
		char *name = get_str(c, get_u16(c));
		uint32_t size = get_u32(c);
		void *value = size <= BS_XATTR_MAX ? malloc(size ? size : 1) : NULL;

		x = realloc(inode->xattrs, (inode->nr_xattrs + 1) * sizeof(*x));
		if (!name || !value || !x || !get(c, value, size)) {
			free(name);
			free(value);
			if (x)
				inode->xattrs = x;
			return fail(err, "inode %llu has a bad extended attribute",
				    (unsigned long long)ino);
		}
		inode->xattrs = x;
		x[inode->nr_xattrs++] = (struct bs_xattr){ name, value, size };
	}
	if (S_ISDIR(mode)) {
		n = get_u32(c);
		for (i = 0; i < n && !c->short_; i++) {
			struct bs_pending_dirent *grown;
			char *name = get_str(c, get_u16(c));
			bs_ino_t child = get_u64(c);

			grown = realloc(*des, (*nr_des + 1) * sizeof(**des));
			if (!grown || !valid_name(name)) {
				free(name);
				if (grown)
					*des = grown;
				return fail(err, "directory %llu has a bad entry",
					    (unsigned long long)ino);
			}
			*des = grown;
			grown[(*nr_des)++] = (struct bs_pending_dirent){ ino, child, name };
		}
	} else if (S_ISLNK(mode)) {
		n = get_u32(c);
		inode->target = n <= 4095 ? get_str(c, n) : NULL;
		if (!inode->target)
			return fail(err, "symlink %llu has a bad target", (unsigned long long)ino);
	} else if (S_ISREG(mode)) {
		n = get_u32(c);
		for (i = 0; i < n && !c->short_; i++) {
			struct bs_ext e;

			e.fblk = get_u64(c);
			e.dblk = get_u64(c);
			e.n = get_u64(c);
			if (!e.n || e.n > BS_MAX_BLOCKS || e.fblk > BS_MAX_BLOCKS ||
			    e.dblk > BS_MAX_BLOCKS ||
			    (inode->nr_ext &&
			     inode->ext[inode->nr_ext - 1].fblk + inode->ext[inode->nr_ext - 1].n >
				 e.fblk))
				return fail(err, "file %llu has a bad extent map",
					    (unsigned long long)ino);
			if (bs_ext_insert_at(inode, inode->nr_ext, e) < 0)
				return fail(err, "out of memory");
		}
	}
	if (c->short_)
		return fail(err, "index ends inside inode %llu", (unsigned long long)ino);
	return 0;
}

/* Mark blocks [start, start + n) used; an overlap or a block past the end is an error. */
static int mark_used(uint8_t *used, uint64_t total, uint64_t start, uint64_t n, struct bs_err *err)
{
	uint64_t b;

	if (start < BS_FIRST_DATA)
		return fail(err, "index is inconsistent: data in the superblock area");
	if (start + n > total)
		return fail(err,
			    "file data lies past the end of the file (%llu blocks): the store "
			    "is truncated",
			    (unsigned long long)total);
	for (b = start; b < start + n; b++) {
		if (used[b / 8] & (1u << (b % 8)))
			return fail(err, "index is inconsistent: block %llu is used twice",
				    (unsigned long long)b);
		used[b / 8] |= (uint8_t)(1u << (b % 8));
	}
	return 0;
}

/* Link directory entries, check link counts, and build the free list. */
static int link_tree(struct bs_fs *fs, struct bs_pending_dirent *des, size_t nr_des,
		     struct bs_err *err)
{
	struct bs_inode *root = bs_get_inode(fs, BS_ROOT_INO);
	uint64_t total = fs->total_blocks, b;
	uint8_t *used;
	size_t i, j;
	int r = 0;

	if (!root || !S_ISDIR(root->st.st_mode))
		return fail(err, "index is inconsistent: no root directory");
	root->parent = BS_ROOT_INO;
	for (i = 0; i < nr_des; i++) {
		struct bs_inode *dir = bs_get_inode(fs, des[i].dir);
		struct bs_inode *child = bs_get_inode(fs, des[i].ino);
		struct timespec mtime, ctime;
		nlink_t nlink;

		if (!child || child == root || bs_find(dir, des[i].name, NULL) ||
		    (S_ISDIR(child->st.st_mode) && child->refs))
			return fail(err, "index is inconsistent: bad entry '%s' in directory %llu",
				    des[i].name, (unsigned long long)des[i].dir);
		nlink = child->st.st_nlink;
		mtime = dir->st.st_mtim;
		ctime = dir->st.st_ctim;
		if (bs_add_dirent(dir, des[i].name, child) < 0)
			return fail(err, "out of memory");
		child->st.st_nlink = nlink;
		dir->st.st_mtim = mtime;
		dir->st.st_ctim = ctime;
		child->refs++;
	}
	for (i = 0; i < fs->nr_inodes; i++) {
		struct bs_inode *inode = fs->inodes[i];
		nlink_t want;

		if (!inode)
			continue;
		if (S_ISDIR(inode->st.st_mode)) {
			struct bs_dirent *d;

			want = 2;
			for (d = inode->first; d; d = d->next)
				want += S_ISDIR(d->inode->st.st_mode);
			/* add_dirent counted subdirectories once more */
			inode->st.st_nlink = want;
			if (inode != root && inode->refs != 1)
				return fail(err,
					    "index is inconsistent: directory %zu has %u names", i,
					    inode->refs);
		} else if (inode->refs != inode->st.st_nlink) {
			return fail(err,
				    "index is inconsistent: inode %zu has %u names, link "
				    "count %lu",
				    i, inode->refs, (unsigned long)inode->st.st_nlink);
		}
	}
	/* Every block belongs to one owner: superblocks, the index, a file, or nobody. */
	used = calloc(total / 8 + 1, 1);
	if (!used)
		return fail(err, "out of memory");
	used[0] |= 3;
	r = mark_used(used, total, fs->index.start, fs->index.n, err);
	for (i = 0; r == 0 && i < fs->nr_inodes; i++)
		for (j = 0; r == 0 && fs->inodes[i] && j < fs->inodes[i]->nr_ext; j++)
			r = mark_used(used, total, fs->inodes[i]->ext[j].dblk,
				      fs->inodes[i]->ext[j].n, err);
	for (b = BS_FIRST_DATA; r == 0 && b < total;) {
		uint64_t run = b;

		while (run < total && !(used[run / 8] & (1u << (run % 8))))
			run++;
		if (run > b && bs_runs_add(&fs->free, b, run - b) < 0)
			r = fail(err, "out of memory");
		b = run + 1;
	}
	free(used);
	return r;
}

/* Read and check one superblock slot: 1 if good, 0 if no magic, -1 if bad. */
static int read_slot(struct bs_fs *fs, int slot, struct bs_sb *sb, uint32_t *ret_version)
{
	uint8_t buf[BS_SB_SIZE];
	struct bs_cur c = { buf, buf + sizeof(buf), false };
	uint32_t crc;

	if (fs->space->read_sb(fs, slot, buf, sizeof(buf)) < 0)
		return 0;
	if (memcmp(buf, BS_MAGIC, 8))
		return 0;
	memcpy(&crc, buf + 60, 4);
	if (le32toh(crc) != bs_crc32c(buf, 60))
		return -1;
	c.p += 8;
	*ret_version = get_u32(&c);
	if (get_u32(&c) != BS_BLOCK)
		*ret_version = 0;
	sb->generation = get_u64(&c);
	sb->index_block = get_u64(&c);
	sb->index_len = get_u64(&c);
	sb->index_crc = get_u32(&c);
	sb->units = get_u32(&c);
	sb->next_ino = get_u64(&c);
	return 1;
}

/* Load the store of a space of @size bytes (unless the superblock says); a message in @err on failure. */
static int load(struct bs_fs *fs, uint64_t size, struct bs_err *err)
{
	struct bs_pending_dirent *des = NULL;
	struct bs_sb sb[2], *cur = NULL;
	size_t nr_des = 0, k;
	struct bs_cur c;
	uint32_t version[2] = { 0, 0 };
	uint8_t *index;
	int found[2], s, r;
	uint64_t count;

	for (s = 0; s < 2; s++)
		found[s] = read_slot(fs, s, &sb[s], &version[s]);
	if (!found[0] && !found[1])
		return fail(err, "not a blob store (no superblock with the blob store magic)");
	if (found[0] < 1 && found[1] < 1)
		return fail(err, "superblock checksum mismatch: the store is corrupt");
	for (s = 0; s < 2; s++)
		if (found[s] == 1 && version[s] != BS_VERSION)
			return fail(err, "format version %u is not supported (this is version %d)",
				    version[s], BS_VERSION);
	/* The newest slot that checks out; a torn newest one falls back to the other. */
	for (s = 0; s < 2; s++)
		if (found[s] == 1 && (!cur || sb[s].generation > cur->generation))
			cur = &sb[s];
	if (fs->sized_by_sb)
		size = (uint64_t)cur->units * BS_UNIT_BLOCKS * BS_BLOCK;
	fs->total_blocks = size / BS_BLOCK;
	if (cur->index_len == 0 || cur->index_len > (1ULL << 32) ||
	    cur->index_block < BS_FIRST_DATA || cur->index_block > fs->total_blocks ||
	    cur->index_block + (cur->index_len + BS_BLOCK - 1) / BS_BLOCK > fs->total_blocks)
		return fail(err,
			    "the index lies past the end of the %s (%llu bytes): the store "
			    "is truncated",
			    fs->sized_by_sb ? "space" : "file", (unsigned long long)size);
	index = malloc(cur->index_len);
	if (!index)
		return fail(err, "out of memory");
	r = bs_space_read(fs, index, cur->index_len, cur->index_block * BS_BLOCK);
	if (r < 0) {
		free(index);
		return fail(err, "cannot read the index: %s", strerror(-r));
	}
	if (bs_crc32c(index, cur->index_len) != cur->index_crc) {
		free(index);
		return fail(err, "index checksum mismatch: the store is corrupt");
	}
	fs->generation = cur->generation;
	fs->index.start = cur->index_block;
	fs->index.n = (cur->index_len + BS_BLOCK - 1) / BS_BLOCK;
	c = (struct bs_cur){ index, index + cur->index_len, false };
	if (get_u32(&c) != BS_INDEX_MAGIC) {
		free(index);
		return fail(err, "index is inconsistent: bad index magic");
	}
	fs->next_ino = get_u64(&c);
	count = get_u64(&c);
	if (fs->next_ino != cur->next_ino || count > fs->next_ino)
		r = fail(err, "index is inconsistent: bad inode count");
	for (; r == 0 && count; count--)
		r = parse_inode(fs, &c, &des, &nr_des, err);
	if (r == 0 && c.p != c.end)
		r = fail(err, "index is inconsistent: trailing bytes");
	if (r == 0)
		r = link_tree(fs, des, nr_des, err);
	for (k = 0; k < nr_des; k++)
		free(des[k].name);
	free(des);
	free(index);
	if (r < 0)
		return r;
	/* Blocks written but never committed before a crash are free: zero them. */
	for (k = 0; k < fs->free.nr; k++) {
		r = bs_zero_blocks(fs, fs->free.v[k].start, fs->free.v[k].n);
		if (r < 0)
			return fail(err, "cannot zero free blocks: %s", strerror(-r));
	}
	return 0;
}

/* A new store: an empty root directory, committed. */
static int format(struct bs_fs *fs, struct bs_err *err)
{
	struct bs_inode *root;
	int r;

	fs->next_ino = BS_ROOT_INO;
	fs->total_blocks = 0;
	r = fs->space->grow(fs, BS_FIRST_DATA);
	if (r < 0)
		return fail(err, "cannot create the store: %s", strerror(-r));
	/* The superblock slots are not free blocks. */
	fs->free.nr = 0;
	if (fs->total_blocks > BS_FIRST_DATA &&
	    bs_runs_add(&fs->free, BS_FIRST_DATA, fs->total_blocks - BS_FIRST_DATA) < 0)
		return fail(err, "out of memory");
	root = bs_new_inode(fs, BS_ROOT_INO, S_IFDIR | 0755);
	if (!root)
		return fail(err, "out of memory");
	root->st.st_uid = getuid();
	root->st.st_gid = getgid();
	root->parent = BS_ROOT_INO;
	r = bs_commit(fs);
	if (r < 0)
		return fail(err, "cannot create the store: %s", strerror(-r));
	return 0;
}

/* Open (or create) the store at @path; a message in @err on failure. */
int bs_open_store(struct bs_fs *fs, const char *path, struct bs_err *err)
{
	struct stat st;

	fs->path = path;
	fs->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fs->fd < 0)
		return fail(err, "%s", strerror(errno));
	if (fstat(fs->fd, &st) < 0)
		return fail(err, "%s", strerror(errno));
	if (!S_ISREG(st.st_mode))
		return fail(err, "not a regular file");
	if (flock(fs->fd, LOCK_EX | LOCK_NB) < 0)
		return fail(err, errno == EWOULDBLOCK ? "in use by another process" : "%s",
			    strerror(errno));
	fs->space = &bs_file_space;
	return bs_open_space(fs, st.st_size == 0, (uint64_t)st.st_size, err);
}

/* Format an @empty space, or load the store in it (a space of @size bytes). */
int bs_open_space(struct bs_fs *fs, bool empty, uint64_t size, struct bs_err *err)
{
	if (empty)
		return format(fs, err);
	return load(fs, size, err);
}

void bs_close_store(struct bs_fs *fs)
{
	size_t i;

	for (i = 0; i < fs->nr_inodes; i++)
		if (fs->inodes[i])
			bs_destroy_inode(fs->inodes[i]);
	free(fs->inodes);
	free(fs->free.v);
	free(fs->pending.v);
	if (fs->space)
		fs->space->close(fs);
	else if (fs->fd >= 0)
		close(fs->fd);
}
