/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * zc_move() between every pair of iterator kinds: the bytes arrive intact,
 * both iterators advance, short transfers and full or empty pipes stop the
 * move instead of blocking, and a refused splice falls back to copying.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "zc_iter.h"
#include "zc_test.h"

#define FILE_SIZE (3 * 1024 * 1024)

static unsigned char *pattern;
static char tmpdir[] = "/tmp/zc-iter-XXXXXX";

static void make_pattern(void)
{
	uint32_t x = 12345;
	size_t i;

	pattern = malloc(FILE_SIZE);
	CHECK(pattern);
	for (i = 0; i < FILE_SIZE; i++) {
		x = x * 1103515245 + 12345;
		pattern[i] = (unsigned char)(x >> 16);
	}
}

static int temp_file(const char *name, bool fill, int extra_flags)
{
	char path[256];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | extra_flags, 0600);
	CHECK(fd >= 0);
	if (fill)
		CHECK_EQ(pwrite(fd, pattern, FILE_SIZE, 0), FILE_SIZE);
	return fd;
}

static void new_pipe(int p[2], int size)
{
	CHECK_EQ(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
	CHECK(fcntl(p[1], F_SETPIPE_SZ, size) >= size);
}

static void check_file(int fd, off_t off, const unsigned char *want, size_t len)
{
	unsigned char *got = malloc(len);

	CHECK(got);
	CHECK_EQ(pread(fd, got, len, off), len);
	CHECK(memcmp(got, want, len) == 0);
	free(got);
}

/* file -> pipe -> memory, at offsets on and off page boundaries. */
static void test_file_pipe_mem(void)
{
	static const off_t offsets[] = { 0, 1, 4095, 4096, 8191, 65536 + 17 };
	static const size_t lens[] = { 1, 100, 4096, 4097, 65536, 200000 };
	struct zc_stats st = { 0 };
	size_t i, j;
	int fd = temp_file("src", true, 0), p[2];
	unsigned char *buf = malloc(1 << 20);

	CHECK(buf);
	new_pipe(p, 1 << 20);
	for (i = 0; i < sizeof(offsets) / sizeof(offsets[0]); i++) {
		for (j = 0; j < sizeof(lens) / sizeof(lens[0]); j++) {
			struct zc_iter f, pw, pr, m;

			zc_iter_file(&f, fd, offsets[i], lens[j]);
			zc_iter_pipe(&pw, p[1], 1 << 20);
			CHECK_EQ(zc_move(&pw, &f, lens[j], 0, &st), lens[j]);
			CHECK_EQ(f.count, 0);
			CHECK_EQ(f.pos, offsets[i] + (off_t)lens[j]);
			CHECK_EQ(pw.count, (1 << 20) - lens[j]);

			zc_iter_pipe(&pr, p[0], lens[j]);
			zc_iter_mem(&m, buf, 1 << 20);
			CHECK_EQ(zc_move(&m, &pr, SIZE_MAX, 0, &st), lens[j]);
			CHECK(memcmp(buf, pattern + offsets[i], lens[j]) == 0);
			CHECK_EQ(m.count, (1 << 20) - lens[j]);
		}
	}
	CHECK(st.bytes[ZC_BYTES_SPLICE] > 0);
	CHECK_EQ(st.bytes[ZC_BYTES_SPLICE], st.bytes[ZC_BYTES_COPY]);
	CHECK_EQ(st.fallbacks[ZC_FALLBACK_SPLICE_EINVAL], 0);
	close(p[0]);
	close(p[1]);
	close(fd);
	free(buf);
}

/* memory -> pipe (copy and vmsplice) -> file, then pipe -> pipe. */
static void test_mem_pipe_file(void)
{
	struct zc_stats st = { 0 };
	struct zc_iter m, pw, pr, f, pw2, pr2;
	int fd = temp_file("dst", false, 0), p[2], q[2];
	unsigned int flags;

	new_pipe(p, 1 << 20);
	new_pipe(q, 1 << 20);
	for (flags = 0; flags <= ZC_MOVE_GIFT; flags += ZC_MOVE_GIFT) {
		memset(&st, 0, sizeof(st));
		zc_iter_mem(&m, pattern + 3, 300000);
		zc_iter_pipe(&pw, p[1], 1 << 20);
		CHECK_EQ(zc_move(&pw, &m, SIZE_MAX, flags, &st), 300000);
		CHECK_EQ(st.bytes[flags ? ZC_BYTES_VMSPLICE : ZC_BYTES_COPY], 300000);

		/* pipe -> pipe moves buffers */
		zc_iter_pipe(&pr, p[0], 300000);
		zc_iter_pipe(&pw2, q[1], 1 << 20);
		CHECK_EQ(zc_move(&pw2, &pr, SIZE_MAX, 0, &st), 300000);

		zc_iter_pipe(&pr2, q[0], 300000);
		zc_iter_file(&f, fd, 5, SIZE_MAX);
		CHECK_EQ(zc_move(&f, &pr2, SIZE_MAX, 0, &st), 300000);
		CHECK_EQ(f.pos, 300005);
		check_file(fd, 5, pattern + 3, 300000);
		CHECK_EQ(st.bytes[ZC_BYTES_SPLICE], 600000);
	}
	close(p[0]);
	close(p[1]);
	close(q[0]);
	close(q[1]);
	close(fd);
}

/* A multi-segment memory iterator, file <-> memory and memory <-> memory. */
static void test_mem_segments(void)
{
	unsigned char a[1000], b[3000], c[50000], out[54000];
	struct iovec iov[3] = { { a, sizeof(a) }, { b, sizeof(b) }, { c, sizeof(c) } };
	struct zc_iter f, m, m2;
	struct zc_stats st = { 0 };
	int fd = temp_file("seg", true, 0);

	CHECK_EQ(zc_iter_memv(&m, iov, 3), 0);
	zc_iter_file(&f, fd, 777, SIZE_MAX);
	CHECK_EQ(zc_move(&m, &f, SIZE_MAX, 0, &st), 54000);
	CHECK(memcmp(a, pattern + 777, sizeof(a)) == 0);
	CHECK(memcmp(b, pattern + 1777, sizeof(b)) == 0);
	CHECK(memcmp(c, pattern + 4777, sizeof(c)) == 0);

	/* memory -> memory across segment boundaries, in odd steps */
	CHECK_EQ(zc_iter_memv(&m, iov, 3), 0);
	zc_iter_advance(&m, 999);
	zc_iter_mem(&m2, out, sizeof(out));
	CHECK_EQ(zc_move(&m2, &m, 10, 0, &st), 10);
	CHECK_EQ(zc_move(&m2, &m, SIZE_MAX, 0, &st), 54000 - 999 - 10);
	CHECK(memcmp(out, pattern + 777 + 999, 54000 - 999) == 0);

	/* memory -> file */
	CHECK_EQ(zc_iter_memv(&m, iov, 3), 0);
	zc_iter_file(&f, fd, 0, 2000);
	CHECK_EQ(zc_move(&f, &m, SIZE_MAX, 0, &st), 2000);
	check_file(fd, 0, pattern + 777, 2000);
	CHECK_EQ(zc_iter_memv(&m, iov, ZC_ITER_MAX_IOV + 1), -EINVAL);
	close(fd);
}

/* file -> file uses copy_file_range; a stream falls back to copying. */
static void test_file_file(void)
{
	struct zc_stats st = { 0 };
	struct zc_iter s, d;
	int src = temp_file("cfr-src", true, 0), dst = temp_file("cfr-dst", false, 0);
	int p[2];

	zc_iter_file(&s, src, 4096, 1 << 20);
	zc_iter_file(&d, dst, 100, SIZE_MAX);
	CHECK_EQ(zc_move(&d, &s, SIZE_MAX, 0, &st), 1 << 20);
	check_file(dst, 100, pattern + 4096, 1 << 20);
	CHECK_EQ(st.bytes[ZC_BYTES_COPY_FILE_RANGE], 1 << 20);

	/* a pipe's write end as a stream "file": plain copies */
	new_pipe(p, 1 << 16);
	memset(&st, 0, sizeof(st));
	zc_iter_file(&s, src, 0, 1000);
	zc_iter_stream(&d, p[1], SIZE_MAX);
	CHECK_EQ(zc_move(&d, &s, SIZE_MAX, ZC_MOVE_NO_SPLICE, &st), 1000);
	CHECK_EQ(st.bytes[ZC_BYTES_SPLICE], 0);
	CHECK_EQ(st.bytes[ZC_BYTES_COPY], 2000); /* read in, write out */
	close(p[0]);
	close(p[1]);
	close(src);
	close(dst);
}

/* Short transfers: end of file, a full pipe, an empty pipe. */
static void test_short_and_eagain(void)
{
	struct zc_stats st = { 0 };
	struct zc_iter f, pw, pr, m;
	unsigned char buf[4096];
	int fd = temp_file("short", true, 0), p[2];
	ssize_t n;

	/* 100 bytes before end of file: 100 bytes move, then none. */
	new_pipe(p, 1 << 20);
	zc_iter_file(&f, fd, FILE_SIZE - 100, 4096);
	zc_iter_pipe(&pw, p[1], 1 << 20);
	CHECK_EQ(zc_move(&pw, &f, 4096, 0, &st), 100);
	CHECK_EQ(f.count, 3996);
	CHECK_EQ(zc_move(&pw, &f, 4096, 0, &st), 0);
	zc_pipe_drain(p[0], &st);
	close(p[0]);
	close(p[1]);

	/* A 64 KiB pipe takes 64 KiB of 1 MiB, then says EAGAIN. */
	new_pipe(p, 1 << 16);
	zc_iter_file(&f, fd, 0, 1 << 20);
	zc_iter_pipe(&pw, p[1], 1 << 20);
	n = zc_move(&pw, &f, SIZE_MAX, 0, &st);
	CHECK_EQ(n, 1 << 16);
	CHECK_EQ(f.pos, 1 << 16);
	CHECK_EQ(zc_move(&pw, &f, SIZE_MAX, 0, &st), -EAGAIN);

	/* Draining empties it; an empty pipe gives EAGAIN, not a hang. */
	zc_pipe_drain(p[0], &st);
	zc_iter_pipe(&pr, p[0], 4096);
	zc_iter_mem(&m, buf, sizeof(buf));
	CHECK_EQ(zc_move(&m, &pr, SIZE_MAX, 0, &st), -EAGAIN);
	CHECK_EQ(pr.count, 4096);

	/* ZC_MOVE_ONCE: exactly one call even when more would fit. */
	zc_iter_mem(&m, pattern, 3000);
	zc_iter_pipe(&pw, p[1], SIZE_MAX);
	CHECK_EQ(zc_move(&pw, &m, SIZE_MAX, ZC_MOVE_ONCE, &st), 3000);
	zc_iter_pipe(&pr, p[0], SIZE_MAX);
	zc_iter_mem(&m, buf, 1000);
	CHECK_EQ(zc_move(&m, &pr, SIZE_MAX, ZC_MOVE_ONCE, &st), 1000);
	CHECK(memcmp(buf, pattern, 1000) == 0);
	zc_pipe_drain(p[0], &st);
	close(p[0]);
	close(p[1]);
	close(fd);
}

/*
 * The kernel refuses to splice into a file opened O_APPEND (EINVAL), as it
 * refuses on file systems without splice support: the move copies instead,
 * lands at the end of the file, and the fallback is counted.
 */
static void test_refused_splice(void)
{
	struct zc_stats st = { 0 };
	struct zc_iter m, pw, pr, f;
	int fd = temp_file("append", false, O_APPEND), p[2];

	CHECK_EQ(write(fd, "head", 4), 4);
	new_pipe(p, 1 << 20);
	zc_iter_mem(&m, pattern, 200000);
	zc_iter_pipe(&pw, p[1], SIZE_MAX);
	CHECK_EQ(zc_move(&pw, &m, SIZE_MAX, 0, &st), 200000);
	zc_iter_pipe(&pr, p[0], 200000);
	zc_iter_stream(&f, fd, SIZE_MAX);
	CHECK_EQ(zc_move(&f, &pr, SIZE_MAX, 0, &st), 200000);
	CHECK(st.fallbacks[ZC_FALLBACK_SPLICE_EINVAL] >= 1);
	check_file(fd, 4, pattern, 200000);
	CHECK_EQ(lseek(fd, 0, SEEK_END), 200004);
	close(p[0]);
	close(p[1]);
	close(fd);
}

int main(void)
{
	char cmd[64];

	CHECK(mkdtemp(tmpdir));
	make_pattern();
	test_file_pipe_mem();
	test_mem_pipe_file();
	test_mem_segments();
	test_file_file();
	test_short_and_eagain();
	test_refused_splice();
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	CHECK_EQ(system(cmd), 0);
	free(pattern);
	return 0;
}
