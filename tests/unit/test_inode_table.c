/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The passthrough inode table: lookup counts, forget, references, growth. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pt.h"
#include "zc_test.h"

static int fd_is_open(int fd)
{
	return fcntl(fd, F_GETFD) >= 0;
}

static struct stat fake_stat(dev_t dev, ino_t ino)
{
	struct stat st;

	memset(&st, 0, sizeof(st));
	st.st_dev = dev;
	st.st_ino = ino;
	st.st_mode = S_IFREG | 0644;
	return st;
}

static int new_fd(void)
{
	int fd = open("/", O_PATH | O_CLOEXEC);

	CHECK(fd >= 0);
	return fd;
}

static void test_lookup_counts(void)
{
	struct stat root_st = fake_stat(1, 2), st = fake_stat(1, 42);
	struct pt_table t;
	struct pt_inode *a, *b;
	int fd_a, fd_b;

	CHECK_EQ(pt_table_init(&t, 0), 0);
	CHECK_EQ(pt_table_set_root(&t, new_fd(), &root_st), 0);
	fd_a = new_fd();
	a = pt_table_add_lookup(&t, fd_a, &st);
	CHECK(a);
	CHECK(a->id != ZC_ROOT_INO);
	fd_b = new_fd();
	b = pt_table_add_lookup(&t, fd_b, &st);
	CHECK(a == b);
	CHECK_EQ(a->nlookup, 2);
	/* The second descriptor was taken over and closed. */
	CHECK(!fd_is_open(fd_b));
	CHECK(fd_is_open(fd_a));
	CHECK_EQ(pt_table_count(&t), 2);

	pt_table_forget(&t, a->id, 1);
	CHECK(fd_is_open(fd_a));
	CHECK(pt_table_get(&t, a->id) == a);
	/* A reference keeps the inode past its last forget. */
	pt_table_forget(&t, a->id, 1);
	CHECK(fd_is_open(fd_a));
	CHECK_EQ(pt_table_count(&t), 2);
	pt_table_put(&t, a);
	CHECK(!fd_is_open(fd_a));
	CHECK_EQ(pt_table_count(&t), 1);
	pt_table_fini(&t);
}

static void test_unknown_and_root(void)
{
	struct stat root_st = fake_stat(1, 2);
	struct pt_table t;
	int fd_root = new_fd();

	CHECK_EQ(pt_table_init(&t, 0), 0);
	CHECK_EQ(pt_table_set_root(&t, fd_root, &root_st), 0);
	errno = 0;
	CHECK(pt_table_get(&t, 12345) == NULL);
	CHECK_EQ(errno, ESTALE);
	/* Forgetting the root, or an id never handed out, changes nothing. */
	pt_table_forget(&t, ZC_ROOT_INO, 1000);
	pt_table_forget(&t, 999, 1);
	CHECK(fd_is_open(fd_root));
	CHECK(pt_table_get(&t, ZC_ROOT_INO) != NULL);
	pt_table_fini(&t);
	CHECK(!fd_is_open(fd_root));
}

static void test_growth_and_ids(void)
{
	enum {
		N = 5000
	};
	static zc_ino_t ids[N];
	struct pt_table t;
	int i;

	CHECK_EQ(pt_table_init(&t, 0), 0);
	for (i = 0; i < N; i++) {
		struct stat st = fake_stat((dev_t)(i % 3), (ino_t)(1000 + i));
		struct pt_inode *inode = pt_table_add_lookup(&t, new_fd(), &st);

		CHECK(inode);
		ids[i] = inode->id;
	}
	CHECK_EQ(pt_table_count(&t), N);
	CHECK(t.buckets >= N);
	for (i = 0; i < N; i++) {
		struct pt_inode *inode = pt_table_get(&t, ids[i]);

		CHECK(inode);
		CHECK_EQ(inode->ino, 1000 + i);
		CHECK_EQ(inode->dev, i % 3);
		pt_table_put(&t, inode);
	}
	for (i = 0; i < N; i += 2)
		pt_table_forget(&t, ids[i], 1);
	CHECK_EQ(pt_table_count(&t), N / 2);
	/* A forgotten inode found again gets a new id: ids are never reused. */
	{
		struct stat st = fake_stat(0, 1000);
		struct pt_inode *inode = pt_table_add_lookup(&t, new_fd(), &st);

		CHECK(inode);
		CHECK(inode->id != ids[0]);
		CHECK(pt_table_get(&t, ids[0]) == NULL);
	}
	pt_table_fini(&t);
}

/* An O_PATH descriptor and the attributes of @dir/@name. */
static int open_path(int dir, const char *name, struct stat *st)
{
	int fd = openat(dir, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);

	CHECK(fd >= 0);
	CHECK_EQ(fstatat(fd, "", st, AT_EMPTY_PATH), 0);
	return fd;
}

static void make_file(int dir, const char *name)
{
	int fd = openat(dir, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	CHECK(fd >= 0);
	close(fd);
}

/*
 * Idle descriptors beyond the bound are closed and reopened from the
 * handle on demand; an inode deleted or replaced meanwhile answers ESTALE,
 * and a new inode that reuses its (dev, ino) is a new entry.
 */
static void test_bounded_descriptors(void)
{
	char tmpl[] = "/tmp/zcfuse-table-XXXXXX";
	struct pt_inode *a, *b, *c, *again, *root;
	struct stat st, st_root;
	bool has_handles;
	struct pt_table t;
	zc_ino_t id_a;
	int dir, fd;

	CHECK(mkdtemp(tmpl));
	dir = open(tmpl, O_PATH | O_DIRECTORY | O_CLOEXEC);
	CHECK(dir >= 0);
	make_file(dir, "a");
	make_file(dir, "b");
	make_file(dir, "c");
	CHECK_EQ(pt_table_init(&t, 1), 0);
	fd = open_path(dir, ".", &st_root);
	CHECK_EQ(pt_table_set_root(&t, fd, &st_root), 0);
	root = pt_table_get(&t, ZC_ROOT_INO);
	CHECK(root);
	has_handles = root->mnt != NULL;
	pt_table_put(&t, root);
	if (!has_handles) {
		/* No usable handles here (no CAP_DAC_READ_SEARCH): nothing to bound. */
		fprintf(stderr, "test_bounded_descriptors: no file handles, skipped\n");
		pt_table_fini(&t);
		close(dir);
		return;
	}

	a = pt_table_add_lookup(&t, open_path(dir, "a", &st), &st);
	b = pt_table_add_lookup(&t, open_path(dir, "b", &st), &st);
	c = pt_table_add_lookup(&t, open_path(dir, "c", &st), &st);
	CHECK(a && b && c);
	/* One idle descriptor kept: the most recent (c); the root keeps its own. */
	CHECK_EQ(a->fd, -1);
	CHECK_EQ(b->fd, -1);
	CHECK(c->fd >= 0);
	CHECK_EQ(t.fds, 2);

	/* Reopened on demand, the same file; an open file keeps its descriptor. */
	again = pt_table_get(&t, a->id);
	CHECK(again == a);
	CHECK(a->fd >= 0);
	CHECK_EQ(fstatat(a->fd, "", &st, AT_EMPTY_PATH), 0);
	CHECK_EQ(st.st_ino, a->ino);
	pt_table_open(&t, a);
	pt_table_put(&t, a);
	CHECK(a->fd >= 0);
	pt_table_put(&t, pt_table_get(&t, b->id)); /* b is now the idle one */
	CHECK(a->fd >= 0);
	CHECK_EQ(c->fd, -1);
	pt_table_close(&t, a->id);
	CHECK(t.cached <= 1);
	CHECK(t.reopens >= 2);

	/* Deleted and made again under the same name: the old inode is stale. */
	pt_table_put(&t, pt_table_get(&t, c->id)); /* a's descriptor goes */
	CHECK_EQ(a->fd, -1);
	id_a = a->id;
	CHECK_EQ(unlinkat(dir, "a", 0), 0);
	make_file(dir, "a");
	errno = 0;
	CHECK(pt_table_get(&t, id_a) == NULL);
	CHECK_EQ(errno, ESTALE);
	CHECK(t.stale >= 1);
	/* The kernel still holds its lookup; a lookup of the new file is another inode. */
	again = pt_table_add_lookup(&t, open_path(dir, "a", &st), &st);
	CHECK(again && again->id != id_a);
	pt_table_forget(&t, id_a, 1);
	CHECK_EQ(pt_table_count(&t), 4);

	/* Out of descriptors: a reopen closes the idle ones and goes on. */
	{
		struct pt_inode *d = pt_table_add_lookup(&t, open_path(dir, "b", &st), &st);
		static int fillers[4096];
		struct rlimit saved, none;
		int i, n = 0, top;

		CHECK(d);
		pt_table_put(&t, pt_table_get(&t, again->id)); /* "a" idle, "b" closed */
		CHECK(again->fd >= 0 && b->fd == -1);
		/* Every descriptor number up to the idle one's taken, none above. */
		top = again->fd;
		CHECK(top < 4096);
		for (i = 0; i < top; i++)
			if (fcntl(i, F_GETFD) < 0)
				fillers[n++] = dup2(top, i);
		CHECK_EQ(getrlimit(RLIMIT_NOFILE, &saved), 0);
		none = saved;
		none.rlim_cur = (rlim_t)top + 1;
		CHECK_EQ(setrlimit(RLIMIT_NOFILE, &none), 0);
		CHECK(pt_table_get(&t, b->id) == b);
		CHECK(b->fd >= 0);
		CHECK_EQ(again->fd, -1);
		CHECK_EQ(setrlimit(RLIMIT_NOFILE, &saved), 0);
		for (i = 0; i < n; i++)
			close(fillers[i]);
		pt_table_put(&t, b);
		CHECK_EQ(pt_table_trim(&t), 1);
		CHECK_EQ(t.cached, 0);
	}

	pt_table_fini(&t);
	unlinkat(dir, "a", 0);
	unlinkat(dir, "b", 0);
	unlinkat(dir, "c", 0);
	close(dir);
	CHECK_EQ(rmdir(tmpl), 0);
}

int main(void)
{
	test_lookup_counts();
	test_unknown_and_root();
	test_growth_and_ids();
	test_bounded_descriptors();
	return 0;
}
