/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * zc_session_stop(): a mounted session's loop returns 0 soon after another
 * thread, or an operation of the backend itself, asks it to stop; with
 * worker threads and with -s (where the loop's own thread waits in a read
 * of the device), on each transport. The loop's thread then unmounts.
 * Needs root and /dev/fuse (exit 77 otherwise).
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include <zcfuse/zcfuse.h>

#include "zc_test.h"

static struct zc_session *session;
static char mnt[64];

static int op_getattr(const struct zc_ctx *ctx, zc_ino_t ino, uint64_t fh, struct stat *ret_stat)
{
	(void)ctx;
	(void)fh;
	if (ino != ZC_ROOT_INO)
		return -ENOENT;
	memset(ret_stat, 0, sizeof(*ret_stat));
	ret_stat->st_ino = ino;
	ret_stat->st_mode = S_IFDIR | 0755;
	ret_stat->st_nlink = 2;
	return 0;
}

/* statfs stops the loop from inside an operation. */
static int op_statfs(const struct zc_ctx *ctx, zc_ino_t ino, struct statvfs *ret_stat)
{
	(void)ctx;
	(void)ino;
	memset(ret_stat, 0, sizeof(*ret_stat));
	ret_stat->f_bsize = 4096;
	ret_stat->f_namemax = 255;
	zc_session_stop(session);
	return 0;
}

static const struct zc_backend_ops ops = {
	.getattr = op_getattr,
	.statfs = op_statfs,
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static bool mounted(void)
{
	char line[4096];
	bool found = false;
	FILE *f = fopen("/proc/self/mountinfo", "re");

	CHECK(f != NULL);
	while (fgets(line, sizeof(line), f))
		if (strstr(line, mnt))
			found = true;
	fclose(f);
	return found;
}

/* From another thread: a request is served, then the loop is asked to stop. */
static void *stopper(void *arg)
{
	bool from_operation = *(bool *)arg;
	struct statvfs sv;
	struct stat st;

	usleep(100 * 1000);
	CHECK_EQ(stat(mnt, &st), 0);
	CHECK(S_ISDIR(st.st_mode));
	if (from_operation)
		CHECK_EQ(statvfs(mnt, &sv), 0);
	else
		zc_session_stop(session);
	return NULL;
}

static void run(const char *opts, bool single, bool from_operation)
{
	struct timespec deadline;
	bool joined;
	pthread_t t;
	double t0;
	int r;

	session = zc_session_new(&ops, sizeof(ops), NULL);
	CHECK(session != NULL);
	CHECK_EQ(zc_session_set_options(session, opts), 0);
	zc_session_set_single_threaded(session, single);
	r = zc_session_mount(session, mnt);
	if (r < 0)
		fprintf(stderr, "mount: %s\n", zc_session_error(session));
	CHECK_EQ(r, 0);
	CHECK_EQ(pthread_create(&t, NULL, stopper, &from_operation), 0);
	t0 = now();
	r = zc_session_loop(session);
	if (r < 0)
		fprintf(stderr, "loop: %s\n", zc_session_error(session));
	CHECK_EQ(r, 0);
	/* Stopped well before anything would unmount it otherwise. */
	if (now() - t0 > 10) {
		fprintf(stderr, "%s%s: the loop took %.1f s to stop\n", opts, single ? ",-s" : "",
			now() - t0);
		exit(1);
	}
	/* The requests served before the stop had their replies. */
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += 10;
	joined = pthread_timedjoin_np(t, NULL, &deadline) == 0;
	CHECK(mounted());
	zc_session_destroy(session);
	CHECK(!mounted());
	if (!joined) {
		pthread_join(t, NULL); /* the unmount ended its request */
		fprintf(stderr, "%s%s: a request served before the stop got no reply\n", opts,
			single ? ",-s" : "");
		exit(1);
	}
}

int main(void)
{
	static const char *const transports[] = { "noio_uring", "io_uring=fallback" };
	size_t i;

	if (geteuid() != 0 || access("/dev/fuse", R_OK | W_OK) < 0) {
		fprintf(stderr, "needs root and /dev/fuse\n");
		return ZC_TEST_SKIP;
	}
	snprintf(mnt, sizeof(mnt), "/tmp/zcfuse-stop-XXXXXX");
	CHECK(mkdtemp(mnt) != NULL);
	for (i = 0; i < sizeof(transports) / sizeof(transports[0]); i++) {
		fprintf(stderr, "%s\n", transports[i]);
		run(transports[i], false, false);
		fprintf(stderr, " multi, from another thread: ok\n");
		run(transports[i], true, false);
		fprintf(stderr, " -s, from another thread: ok\n");
		run(transports[i], false, true);
		fprintf(stderr, " multi, from an operation: ok\n");
		run(transports[i], true, true);
		fprintf(stderr, " -s, from an operation: ok\n");
	}
	rmdir(mnt);
	return 0;
}
