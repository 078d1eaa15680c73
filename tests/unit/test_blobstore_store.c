/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The blob store's store layer (examples/blobstore), without FUSE: a new
 * store in a temporary file, a tree and file data written, committed and
 * loaded again; the allocator; extent map edge cases; damaged superblocks
 * and indexes.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "blobstore.h"
#include "zc_test.h"

#define B ((off_t)BS_BLOCK)

static char tmpdir[64];

static void store_path(char *path, size_t size, const char *name)
{
	snprintf(path, size, "%s/%s", tmpdir, name);
}

static void open_ok(struct bs_fs *fs, const char *path)
{
	struct bs_err err;

	memset(fs, 0, sizeof(*fs));
	pthread_mutex_init(&fs->lock, NULL);
	fs->fd = -1;
	if (bs_open_store(fs, path, &err) < 0) {
		fprintf(stderr, "%s: %s\n", path, err.msg);
		exit(1);
	}
}

static void close_fs(struct bs_fs *fs)
{
	bs_close_store(fs);
	pthread_mutex_destroy(&fs->lock);
}

/* Opening @path fails, saying @msg. */
static void open_fails(const char *path, const char *msg)
{
	struct bs_fs fs;
	struct bs_err err;

	memset(&fs, 0, sizeof(fs));
	pthread_mutex_init(&fs.lock, NULL);
	fs.fd = -1;
	memset(&err, 0, sizeof(err));
	CHECK(bs_open_store(&fs, path, &err) < 0);
	CHECK_STR_CONTAINS(err.msg, msg);
	close_fs(&fs);
}

static struct bs_inode *mknode(struct bs_fs *fs, bs_ino_t parent, const char *name, mode_t mode,
			       const char *target)
{
	struct bs_inode *inode = NULL;

	CHECK_EQ(bs_make_node(fs, parent, name, mode, 0, target, 1000, 1000, &inode), 0);
	CHECK(inode != NULL);
	return inode;
}

static struct bs_inode *lookup(struct bs_fs *fs, bs_ino_t parent, const char *name)
{
	struct bs_inode *dir = NULL;
	struct bs_dirent *d;

	CHECK_EQ(bs_get_dir(fs, parent, name, &dir), 0);
	d = bs_find(dir, name, NULL);
	return d ? d->inode : NULL;
}

/* What a write does: blocks for the holes, the bytes into them, the size. */
static void write_file(struct bs_fs *fs, struct bs_inode *inode, off_t off, const void *data,
		       size_t len)
{
	CHECK_EQ(bs_map_blocks(fs, inode, (uint64_t)off / BS_BLOCK,
			       ((uint64_t)off + len + BS_BLOCK - 1) / BS_BLOCK),
		 0);
	CHECK_EQ(bs_copy_range(fs, inode, off, len, (void *)data, true), 0);
	if (off + (off_t)len > inode->st.st_size)
		inode->st.st_size = off + (off_t)len;
}

static void read_file(struct bs_fs *fs, struct bs_inode *inode, off_t off, void *buf, size_t len)
{
	CHECK_EQ(bs_copy_range(fs, inode, off, len, buf, false), 0);
}

static void fill(unsigned char *p, size_t len, unsigned int seed)
{
	size_t i;

	for (i = 0; i < len; i++)
		p[i] = (unsigned char)(i * 31 + seed + i / 4096);
}

static bool all_zero(const unsigned char *p, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (p[i])
			return false;
	return true;
}

/* Every block of a store has one owner: no extent names a block twice or the index. */
static void check_no_block_shared(struct bs_fs *fs)
{
	uint8_t *owner = calloc(fs->total_blocks, 1);
	uint64_t b;
	size_t i, j, k;

	CHECK(owner != NULL);
	for (b = fs->index.start; b < fs->index.start + fs->index.n; b++)
		owner[b]++;
	for (i = 0; i < fs->nr_inodes; i++)
		for (j = 0; fs->inodes[i] && j < fs->inodes[i]->nr_ext; j++)
			for (b = 0; b < fs->inodes[i]->ext[j].n; b++)
				owner[fs->inodes[i]->ext[j].dblk + b]++;
	for (k = 0; k < fs->free.nr; k++)
		for (b = 0; b < fs->free.v[k].n; b++)
			owner[fs->free.v[k].start + b]++;
	for (k = 0; k < fs->pending.nr; k++)
		for (b = 0; b < fs->pending.v[k].n; b++)
			owner[fs->pending.v[k].start + b]++;
	CHECK_EQ(owner[0], 0);
	CHECK_EQ(owner[1], 0);
	for (b = BS_FIRST_DATA; b < fs->total_blocks; b++)
		if (owner[b] > 1) {
			fprintf(stderr, "block %llu has %d owners\n", (unsigned long long)b,
				owner[b]);
			exit(1);
		}
	free(owner);
}

/* A new store, a tree, file data, commit, and the same after loading it again. */
static void test_round_trip(void)
{
	size_t big_len = 5 * BS_BLOCK + 123;
	unsigned char *big = malloc(big_len), *back = malloc(big_len);
	unsigned char small[100], sparse_back[3 * BS_BLOCK];
	struct bs_inode *d, *f, *inode, *sparse;
	char path[128], buf[64];
	struct bs_fs fs;
	struct stat st;

	CHECK(big && back);
	store_path(path, sizeof(path), "round-trip");
	open_ok(&fs, path);
	CHECK_EQ(fs.generation, 1);
	CHECK(fstat(fs.fd, &st) == 0);
	CHECK_EQ(st.st_size % B, 0);
	inode = bs_get_inode(&fs, BS_ROOT_INO);
	CHECK(inode && S_ISDIR(inode->st.st_mode));
	CHECK(inode->first == NULL);

	d = mknode(&fs, BS_ROOT_INO, "d", S_IFDIR | 0750, NULL);
	f = mknode(&fs, d->st.st_ino, "f", S_IFREG | 0640, NULL);
	fill(big, big_len, 7);
	write_file(&fs, f, 0, big, big_len);
	CHECK_EQ(bs_mapped_blocks(f), 6);
	CHECK(bs_add_link(&fs, f->st.st_ino, BS_ROOT_INO, "f-link", &inode) == 0 && inode == f);
	CHECK_EQ(f->st.st_nlink, 2);
	mknode(&fs, BS_ROOT_INO, "l", S_IFLNK | 0777, "d/f");
	CHECK_EQ(bs_set_xattr(&fs, f->st.st_ino, "user.colour", "blue", 4, 0), 0);
	CHECK_EQ(bs_set_xattr(&fs, f->st.st_ino, "user.colour", "red", 3, XATTR_CREATE), -EEXIST);
	CHECK_EQ(bs_set_xattr(&fs, f->st.st_ino, "other.x", "1", 1, 0), -EOPNOTSUPP);
	/* A sparse file: one block of data at block 10, size 12 blocks. */
	sparse = mknode(&fs, BS_ROOT_INO, "sparse", S_IFREG | 0600, NULL);
	fill(small, sizeof(small), 3);
	write_file(&fs, sparse, 10 * B + 5, small, sizeof(small));
	CHECK_EQ(bs_set_size(&fs, sparse, 12 * B), 0);
	CHECK_EQ(sparse->nr_ext, 1);
	/* A name removed before the commit does not come back. */
	mknode(&fs, BS_ROOT_INO, "gone", S_IFREG | 0600, NULL);
	CHECK_EQ(bs_remove_name(&fs, BS_ROOT_INO, "gone", false), 0);
	CHECK_EQ(bs_remove_name(&fs, BS_ROOT_INO, "d", true), -ENOTEMPTY);
	CHECK_EQ(bs_rename_name(&fs, BS_ROOT_INO, "l", BS_ROOT_INO, "link", 0), 0);
	check_no_block_shared(&fs);
	CHECK_EQ(bs_commit(&fs), 0);
	CHECK_EQ(fs.generation, 2);
	close_fs(&fs);

	open_ok(&fs, path);
	CHECK_EQ(fs.generation, 2);
	check_no_block_shared(&fs);
	CHECK(lookup(&fs, BS_ROOT_INO, "gone") == NULL);
	CHECK(lookup(&fs, BS_ROOT_INO, "l") == NULL);
	d = lookup(&fs, BS_ROOT_INO, "d");
	CHECK(d && S_ISDIR(d->st.st_mode));
	CHECK_EQ(d->st.st_mode & 07777, 0750);
	CHECK_EQ(d->st.st_nlink, 2);
	CHECK_EQ(d->parent, BS_ROOT_INO);
	CHECK_EQ(bs_get_inode(&fs, BS_ROOT_INO)->st.st_nlink, 3);
	f = lookup(&fs, d->st.st_ino, "f");
	CHECK(f && S_ISREG(f->st.st_mode));
	CHECK(lookup(&fs, BS_ROOT_INO, "f-link") == f);
	CHECK_EQ(f->st.st_nlink, 2);
	CHECK_EQ(f->st.st_uid, 1000);
	CHECK_EQ(f->st.st_size, big_len);
	memset(back, 0, big_len);
	read_file(&fs, f, 0, back, big_len);
	CHECK(memcmp(back, big, big_len) == 0);
	CHECK_EQ(bs_get_xattr(&fs, f->st.st_ino, "user.colour", buf, sizeof(buf)), 4);
	CHECK(memcmp(buf, "blue", 4) == 0);
	CHECK_EQ(bs_list_xattr(&fs, f->st.st_ino, buf, sizeof(buf)), strlen("user.colour") + 1);
	inode = lookup(&fs, BS_ROOT_INO, "link");
	CHECK(inode && S_ISLNK(inode->st.st_mode));
	CHECK(inode->target && strcmp(inode->target, "d/f") == 0);
	CHECK_EQ(inode->st.st_size, 3);
	sparse = lookup(&fs, BS_ROOT_INO, "sparse");
	CHECK(sparse);
	CHECK_EQ(sparse->st.st_size, 12 * B);
	CHECK_EQ(sparse->nr_ext, 1);
	CHECK_EQ(sparse->ext[0].fblk, 10);
	read_file(&fs, sparse, 9 * B, sparse_back, sizeof(sparse_back));
	CHECK(all_zero(sparse_back, B + 5));
	CHECK(memcmp(sparse_back + B + 5, small, sizeof(small)) == 0);
	CHECK(all_zero(sparse_back + B + 5 + sizeof(small), 2 * B - 5 - sizeof(small)));
	/* New inode numbers go on from where the committed store stopped. */
	inode = mknode(&fs, BS_ROOT_INO, "new", S_IFREG | 0600, NULL);
	CHECK(inode->st.st_ino > sparse->st.st_ino);
	close_fs(&fs);
	free(big);
	free(back);
}

/* The allocator hands no block out twice, and freed blocks come back after a commit. */
static void test_allocator(void)
{
	struct bs_run runs[64], run, hint;
	struct bs_inode *f;
	uint8_t *seen, *freed;
	uint64_t total, freed_size, b, n_freed = 0, n_back = 0;
	unsigned char data[8 * BS_BLOCK], zero[BS_BLOCK];
	char path[128];
	struct bs_fs fs;
	size_t i, j;

	store_path(path, sizeof(path), "alloc");
	open_ok(&fs, path);
	/* Runs of 1 to 64 blocks, some that make the file grow. */
	for (i = 0; i < 64; i++)
		CHECK_EQ(bs_alloc_blocks(&fs, i % 2 ? 64 : i + 1, 0, i % 3 == 0, &runs[i]), 0);
	seen = calloc(fs.total_blocks, 1);
	CHECK(seen);
	for (i = 0; i < 64; i++) {
		CHECK(runs[i].n >= 1);
		CHECK(runs[i].start >= BS_FIRST_DATA);
		CHECK(runs[i].start + runs[i].n <= fs.total_blocks);
		if (i % 3 == 0)
			CHECK_EQ(runs[i].n, i % 2 ? 64 : i + 1);
		for (b = runs[i].start; b < runs[i].start + runs[i].n; b++) {
			CHECK(b < fs.index.start || b >= fs.index.start + fs.index.n);
			CHECK_EQ(seen[b], 0);
			seen[b] = 1;
		}
	}
	/* Nothing handed out is still listed free. */
	for (i = 0; i < fs.free.nr; i++)
		for (b = fs.free.v[i].start; b < fs.free.v[i].start + fs.free.v[i].n; b++)
			CHECK_EQ(seen[b], 0);
	free(seen);
	/* Give them back to the free list; a hint at a free run's start is taken. */
	for (i = 0; i < 64; i++)
		CHECK_EQ(bs_runs_add(&fs.free, runs[i].start, runs[i].n), 0);
	for (i = 1; i < fs.free.nr; i++)
		CHECK(fs.free.v[i - 1].start + fs.free.v[i - 1].n < fs.free.v[i].start);
	hint = fs.free.v[0];
	CHECK_EQ(bs_alloc_blocks(&fs, 3, hint.start, false, &run), 0);
	CHECK_EQ(run.start, hint.start);
	CHECK_EQ(run.n, hint.n < 3 ? hint.n : 3);
	CHECK_EQ(bs_runs_add(&fs.free, run.start, run.n), 0);

	/* A file's blocks, freed, wait for the next commit before they are reused. */
	f = mknode(&fs, BS_ROOT_INO, "f", S_IFREG | 0600, NULL);
	fill(data, sizeof(data), 1);
	write_file(&fs, f, 0, data, sizeof(data));
	CHECK_EQ(bs_commit(&fs), 0);
	freed_size = fs.total_blocks;
	freed = calloc(freed_size, 1);
	CHECK(freed);
	for (i = 0; i < f->nr_ext; i++)
		for (b = 0; b < f->ext[i].n; b++, n_freed++)
			freed[f->ext[i].dblk + b] = 1;
	CHECK_EQ(n_freed, 8);
	CHECK_EQ(bs_set_size(&fs, f, 0), 0);
	CHECK_EQ(f->nr_ext, 0);
	CHECK_EQ(bs_runs_total(&fs.pending), 8);
	total = fs.total_blocks;
	/* Take every free block: none of the file's comes out. */
	while (fs.free.nr) {
		CHECK_EQ(bs_alloc_blocks(&fs, 1, 0, false, &run), 0);
		CHECK(run.start >= freed_size || !freed[run.start]);
	}
	CHECK_EQ(fs.total_blocks, total);
	CHECK_EQ(bs_commit(&fs), 0); /* grows the file for the index */
	CHECK_EQ(bs_runs_total(&fs.pending), 0);
	/* Now they are free again, zeroed, and handed out before the file grows. */
	total = fs.total_blocks;
	memset(zero, 0, sizeof(zero));
	for (i = 0; i < 1000000 && n_back < n_freed; i++) {
		CHECK_EQ(bs_alloc_blocks(&fs, 1, 0, false, &run), 0);
		CHECK(run.start < total);
		if (run.start < freed_size && freed[run.start]) {
			unsigned char blk[BS_BLOCK];

			CHECK_EQ(bs_pread(fs.fd, blk, sizeof(blk), (off_t)run.start * B), 0);
			CHECK(memcmp(blk, zero, sizeof(blk)) == 0);
			freed[run.start] = 0;
			n_back++;
		}
	}
	CHECK_EQ(n_back, n_freed);
	CHECK_EQ(fs.total_blocks, total);
	for (j = 0; j < freed_size; j++)
		CHECK_EQ(freed[j], 0);
	free(freed);
	close_fs(&fs);
}

/* Insertion merges with both neighbours; unmap splits; punch and truncate. */
static void test_extent_map(void)
{
	unsigned char data[6 * BS_BLOCK], back[6 * BS_BLOCK];
	struct bs_piece p[BS_MAX_PIECES];
	struct bs_inode *f, *g;
	char path[128];
	struct bs_fs fs;
	uint64_t d0;

	store_path(path, sizeof(path), "extents");
	open_ok(&fs, path);
	g = mknode(&fs, BS_ROOT_INO, "g", S_IFREG | 0600, NULL);
	CHECK_EQ(bs_ext_insert(g, (struct bs_ext){ .fblk = 0, .dblk = 100, .n = 2 }), 0);
	CHECK_EQ(bs_ext_insert(g, (struct bs_ext){ .fblk = 4, .dblk = 104, .n = 2 }), 0);
	CHECK_EQ(bs_ext_insert(g, (struct bs_ext){ .fblk = 8, .dblk = 300, .n = 1 }), 0);
	CHECK_EQ(g->nr_ext, 3);
	CHECK_EQ(bs_ext_find(g, 0), 0);
	CHECK_EQ(bs_ext_find(g, 2), 1); /* the first extent ending after block 2 */
	CHECK_EQ(bs_ext_find(g, 6), 2);
	CHECK_EQ(bs_ext_find(g, 9), 3);
	/* Filling the gap joins all three runs that are contiguous on disk. */
	CHECK_EQ(bs_ext_insert(g, (struct bs_ext){ .fblk = 2, .dblk = 102, .n = 2 }), 0);
	CHECK_EQ(g->nr_ext, 2);
	CHECK_EQ(g->ext[0].fblk, 0);
	CHECK_EQ(g->ext[0].dblk, 100);
	CHECK_EQ(g->ext[0].n, 6);
	/* Contiguous in the file but not on disk: no merge. */
	CHECK_EQ(bs_ext_insert(g, (struct bs_ext){ .fblk = 6, .dblk = 500, .n = 2 }), 0);
	CHECK_EQ(g->nr_ext, 3);
	CHECK_EQ(bs_mapped_blocks(g), 9);
	g->nr_ext = 0; /* made-up disk blocks: not to be freed */

	f = mknode(&fs, BS_ROOT_INO, "f", S_IFREG | 0600, NULL);
	fill(data, sizeof(data), 5);
	write_file(&fs, f, 0, data, sizeof(data));
	CHECK_EQ(f->nr_ext, 1);
	CHECK_EQ(f->ext[0].n, 6);
	d0 = f->ext[0].dblk;
	/* Unmapping the middle splits the extent; the blocks go to the pending list. */
	CHECK_EQ(bs_unmap_blocks(&fs, f, 2, 4), 0);
	CHECK_EQ(f->nr_ext, 2);
	CHECK_EQ(f->ext[0].n, 2);
	CHECK_EQ(f->ext[1].fblk, 4);
	CHECK_EQ(f->ext[1].dblk, d0 + 4);
	CHECK_EQ(f->ext[1].n, 2);
	CHECK_EQ(fs.pending.nr, 1);
	CHECK_EQ(fs.pending.v[0].start, d0 + 2);
	CHECK_EQ(fs.pending.v[0].n, 2);
	/* The range as pieces: data, one hole, data. */
	CHECK_EQ(bs_map_range(f, 100, 6 * B - 200, p, BS_MAX_PIECES), 3);
	CHECK(!p[0].hole && p[0].offset == (off_t)d0 * B + 100 && p[0].length == 2 * B - 100);
	CHECK(p[1].hole && p[1].length == 2 * B);
	CHECK(!p[2].hole && p[2].offset == (off_t)(d0 + 4) * B && p[2].length == 2 * B - 100);
	CHECK_EQ(bs_map_range(f, 0, 6 * B, p, 2), -E2BIG);
	/* Past the last extent: one hole, however long. */
	CHECK_EQ(bs_map_range(f, 6 * B, 100 * B, p, 1), 1);
	CHECK(p[0].hole && p[0].length == 100 * B);
	CHECK_EQ(bs_seek(f, 0, true), 0);
	CHECK_EQ(bs_seek(f, 0, false), 2 * B);
	CHECK_EQ(bs_seek(f, 2 * B + 1, true), 4 * B);
	CHECK_EQ(bs_seek(f, 4 * B, false), 6 * B);
	CHECK_EQ(bs_seek(f, 6 * B, true), -ENXIO);
	/* Refilling the hole reads as zeros (the blocks come from the file's tail). */
	CHECK_EQ(bs_map_blocks(&fs, f, 2, 4), 0);
	read_file(&fs, f, 0, back, sizeof(back));
	CHECK(memcmp(back, data, 2 * B) == 0);
	CHECK(all_zero(back + 2 * B, 2 * B));
	CHECK(memcmp(back + 4 * B, data + 4 * B, 2 * B) == 0);

	/* Punch within one block: bytes zeroed, nothing unmapped. */
	write_file(&fs, f, 0, data, sizeof(data));
	CHECK_EQ(bs_mapped_blocks(f), 6);
	CHECK_EQ(bs_punch(&fs, f, 10, 20), 0);
	CHECK_EQ(bs_mapped_blocks(f), 6);
	read_file(&fs, f, 0, back, B);
	CHECK(memcmp(back, data, 10) == 0);
	CHECK(all_zero(back + 10, 10));
	CHECK(memcmp(back + 20, data + 20, B - 20) == 0);
	/* Punch across blocks: the partial edges zeroed, whole blocks 1 and 2 unmapped. */
	CHECK_EQ(bs_punch(&fs, f, B - 100, 3 * B + 50), 0);
	CHECK_EQ(bs_mapped_blocks(f), 4);
	CHECK_EQ(bs_seek(f, B, true), 3 * B);
	read_file(&fs, f, 0, back, sizeof(back));
	CHECK(all_zero(back + B - 100, 2 * B + 150));
	CHECK(memcmp(back + 3 * B + 50, data + 3 * B + 50, 3 * B - 50) == 0);
	CHECK_EQ(f->st.st_size, 6 * B);

	/* Truncate into the middle of a block: the rest of it zeroed, later blocks freed. */
	write_file(&fs, f, 0, data, sizeof(data));
	CHECK_EQ(bs_set_size(&fs, f, B + 1000), 0);
	CHECK_EQ(f->st.st_size, B + 1000);
	CHECK_EQ(bs_mapped_blocks(f), 2);
	CHECK_EQ(bs_set_size(&fs, f, 3 * B), 0);
	CHECK_EQ(bs_mapped_blocks(f), 2);
	read_file(&fs, f, 0, back, 3 * B);
	CHECK(memcmp(back, data, B + 1000) == 0);
	CHECK(all_zero(back + B + 1000, 2 * B - 1000));
	/* To a block boundary, then to nothing. */
	CHECK_EQ(bs_set_size(&fs, f, B), 0);
	CHECK_EQ(bs_mapped_blocks(f), 1);
	CHECK_EQ(bs_set_size(&fs, f, 0), 0);
	CHECK_EQ(f->nr_ext, 0);
	CHECK_EQ(bs_set_size(&fs, f, (off_t)(BS_MAX_BLOCKS * BS_BLOCK) + 1), -EFBIG);
	CHECK_EQ(f->st.st_size, 0);
	check_no_block_shared(&fs);
	CHECK_EQ(bs_commit(&fs), 0);
	close_fs(&fs);
}

static void copy_file(const char *from, const char *to)
{
	char buf[65536];
	int in = open(from, O_RDONLY | O_CLOEXEC);
	int out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ssize_t n;

	CHECK(in >= 0 && out >= 0);
	while ((n = read(in, buf, sizeof(buf))) > 0)
		CHECK(write(out, buf, (size_t)n) == n);
	CHECK(n == 0);
	close(in);
	close(out);
}

static void pwrite_at(const char *path, const void *buf, size_t len, off_t off)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);

	CHECK(fd >= 0);
	CHECK(pwrite(fd, buf, len, off) == (ssize_t)len);
	close(fd);
}

static void pread_at(const char *path, void *buf, size_t len, off_t off)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	CHECK(fd >= 0);
	CHECK(pread(fd, buf, len, off) == (ssize_t)len);
	close(fd);
}

/*
 * A torn newest superblock falls back to the other slot; two bad slots,
 * another magic or version, a damaged index, a truncated store are refused.
 */
static void test_damage(void)
{
	char path[128], copy[128];
	unsigned char sb[BS_SB_SIZE], data[BS_BLOCK];
	uint64_t gen, torn, index_block;
	uint32_t crc;
	struct bs_inode *f;
	struct bs_fs fs;
	int fd;

	store_path(path, sizeof(path), "damage");
	store_path(copy, sizeof(copy), "damage-copy");
	open_ok(&fs, path);
	f = mknode(&fs, BS_ROOT_INO, "f", S_IFREG | 0600, NULL);
	fill(data, sizeof(data), 9);
	write_file(&fs, f, 0, data, sizeof(data));
	CHECK_EQ(bs_commit(&fs), 0);
	CHECK_EQ(bs_commit(&fs), 0);
	gen = fs.generation;
	CHECK_EQ(gen, 3);
	/* A second opener is refused while the store is open. */
	open_fails(path, "in use by another process");
	close_fs(&fs);

	/*
	 * A crash in the middle of the next commit's superblock write: the
	 * other slot holds generation gen + 1 with a checksum that fails.
	 */
	copy_file(path, copy);
	pread_at(copy, sb, sizeof(sb), (off_t)(gen % 2) * B);
	CHECK(memcmp(sb, BS_MAGIC, 8) == 0);
	torn = htole64(gen + 1);
	memcpy(sb + 16, &torn, 8);
	pwrite_at(copy, sb, sizeof(sb), (off_t)((gen + 1) % 2) * B);
	open_ok(&fs, copy);
	CHECK_EQ(fs.generation, 3);
	f = lookup(&fs, BS_ROOT_INO, "f");
	CHECK(f && f->st.st_size == B);
	{
		unsigned char back[BS_BLOCK];

		read_file(&fs, f, 0, back, sizeof(back));
		CHECK(memcmp(back, data, sizeof(back)) == 0);
	}
	close_fs(&fs);

	/* Both slots bad. */
	copy_file(path, copy);
	pread_at(copy, sb, sizeof(sb), 0);
	sb[20] ^= 1;
	pwrite_at(copy, sb, sizeof(sb), 0);
	pread_at(copy, sb, sizeof(sb), B);
	sb[20] ^= 1;
	pwrite_at(copy, sb, sizeof(sb), B);
	open_fails(copy, "superblock checksum mismatch");

	/* No magic anywhere. */
	copy_file(path, copy);
	pwrite_at(copy, "xxxxxxxx", 8, 0);
	pwrite_at(copy, "xxxxxxxx", 8, B);
	open_fails(copy, "not a blob store");

	/* Another format version, with a good checksum. */
	copy_file(path, copy);
	pread_at(copy, sb, sizeof(sb), (off_t)(3 % 2) * B);
	sb[8] = 2;
	crc = htole32(bs_crc32c(sb, 60));
	memcpy(sb + 60, &crc, 4);
	pwrite_at(copy, sb, sizeof(sb), (off_t)(3 % 2) * B);
	open_fails(copy, "format version 2 is not supported");

	/* A flipped byte in the index. */
	copy_file(path, copy);
	pread_at(copy, sb, sizeof(sb), (off_t)(3 % 2) * B);
	memcpy(&index_block, sb + 24, 8);
	index_block = le64toh(index_block);
	CHECK(index_block >= BS_FIRST_DATA);
	pread_at(copy, data, 16, (off_t)index_block * B);
	data[12] ^= 0x40;
	pwrite_at(copy, data, 16, (off_t)index_block * B);
	open_fails(copy, "index checksum mismatch");

	/* Cut short before the index. */
	copy_file(path, copy);
	fd = open(copy, O_WRONLY | O_CLOEXEC);
	CHECK(fd >= 0);
	CHECK(ftruncate(fd, (off_t)index_block * B) == 0);
	close(fd);
	open_fails(copy, "the store is truncated");

	/* Not a regular file. */
	unlink(copy);
	CHECK(mkfifo(copy, 0600) == 0);
	open_fails(copy, "not a regular file");
	unlink(copy);
}

int main(void)
{
	char path[128];

	snprintf(tmpdir, sizeof(tmpdir), "/tmp/zcfuse-blobstore-XXXXXX");
	CHECK(mkdtemp(tmpdir) != NULL);
	test_round_trip();
	test_allocator();
	test_extent_map();
	test_damage();
	store_path(path, sizeof(path), "round-trip");
	unlink(path);
	store_path(path, sizeof(path), "alloc");
	unlink(path);
	store_path(path, sizeof(path), "extents");
	unlink(path);
	store_path(path, sizeof(path), "damage");
	unlink(path);
	CHECK(rmdir(tmpdir) == 0);
	return 0;
}
