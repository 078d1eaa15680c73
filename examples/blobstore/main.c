/* SPDX-License-Identifier: MIT */
/*
 * blobstore: a file system kept inside one backing file, the embedded
 * storage backend to copy from. This is its command line.
 *
 * Build it against the installed library, from this directory:
 *
 *     cc -o blobstore *.c $(pkg-config --cflags --libs zcfuse)
 *
 * Run it (a missing or empty BACKING_FILE becomes a new, empty store):
 *
 *     ./blobstore BACKING_FILE MOUNTPOINT [-f] [-d] [-s] [-o opt[,opt...]]
 *     fusermount3 -u MOUNTPOINT
 *
 * or, built with librados (Debian: librados-dev) as
 *
 *     cc -DBS_HAVE_RADOS -o blobstore *.c $(pkg-config --cflags --libs zcfuse) -lrados
 *
 * with the store in a Ceph RADOS pool:
 *
 *     ./blobstore rados://POOL/NAME MOUNTPOINT [-o conf=CEPH_CONF,id=CLIENT_ID]
 *
 * The layers: store_format.c (superblocks, the index, commit, loading),
 * alloc.c (blocks of the backing file), extent.c (extent maps), inode.c
 * (inodes and names) make the store, which knows nothing of FUSE
 * (blobstore.h describes the format and the locking), on a block space:
 * space_file.c (the backing file) or space_rados.c (a RADOS pool). ops.c
 * serves the libzcfuse operations from it.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* pipe2 */
#endif
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ops.h"

static void usage(FILE *out)
{
	fprintf(out,
		"usage: blobstore BACKING_FILE MOUNTPOINT [-f] [-d] [-s] [-o opt[,opt...]]\n"
		"       blobstore rados://POOL/NAME MOUNTPOINT [-o conf=PATH,id=CLIENT] ...\n"
		"\n"
		"Mount the file system kept in BACKING_FILE (a missing or empty file\n"
		"becomes a new, empty store), or in the objects NAME.* of the Ceph\n"
		"RADOS pool POOL (a store that is not there yet is made)%s.\n"
		"\n"
		"Options of a store on RADOS (default: what the Ceph tools use,\n"
		"CEPH_CONF, CEPH_ARGS and /etc/ceph/ceph.conf):\n"
		"    -o conf=PATH   the cluster's ceph.conf\n"
		"    -o id=CLIENT   the client's name, without \"client.\"\n"
		"\n"
		"    -f             stay in the foreground\n"
		"    -d             print every request (implies -f)\n"
		"    -s             serve requests on one thread\n"
		"    -h, --help     print this help\n"
		"    -V, --version  print the version\n"
		"\n"
		"Mount options:\n%s",
#ifdef BS_HAVE_RADOS
		"",
#else
		" (not in this build: it was built without librados)",
#endif
		zc_options_help());
}

/* What the library has to say about how the mount runs. */
static void print_notice(void *data, const char *line)
{
	(void)data;
	fprintf(stderr, "blobstore: %s\n", line);
}

/* conf= and id=, for a store on RADOS (copied: @value lives as long as the call). */
static int take_option(void *data, const char *name, const char *value)
{
	struct bs_rados_opts *ro = data;
	char *copy;

	if (strcmp(name, "conf") && strcmp(name, "id"))
		return -ENOENT;
	if (!value || !value[0])
		return -EINVAL;
	copy = strdup(value);
	if (!copy)
		return -ENOMEM;
	if (!strcmp(name, "conf")) {
		free((char *)ro->conf);
		ro->conf = copy;
	} else {
		free((char *)ro->id);
		ro->id = copy;
	}
	return 0;
}

static bool is_rados(const char *store)
{
	return !strncmp(store, "rados://", strlen("rados://"));
}

/* Open the store named on the command line; a message in @err on failure. */
static int open_store(struct bs_fs *fs, const char *store, const struct bs_rados_opts *ro,
		      struct bs_err *err)
{
	if (is_rados(store)) {
#ifdef BS_HAVE_RADOS
		return bs_open_rados(fs, store, ro, err);
#else
		return bs_fail(err, "this blobstore was built without librados (-Drados)");
#endif
	}
	if (ro->conf || ro->id)
		return bs_fail(err, "conf= and id= are options of a store on RADOS");
	return bs_open_store(fs, store, err);
}

/*
 * librados runs threads of its own, which fork() does not keep: a store on
 * RADOS goes to the background before it is opened. The parent waits for
 * a byte from the child, which it sends once mounted, and exits 0; or
 * exits 1 when the child gave up (having said why on the same stderr).
 * Returns, in the child, the descriptor to send the byte on.
 */
static int fork_early(void)
{
	int p[2], status;
	ssize_t n;
	pid_t pid;
	char c;

	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		close(p[0]);
		setsid();
		return p[1];
	}
	close(p[1]);
	do
		n = read(p[0], &c, 1);
	while (n < 0 && errno == EINTR);
	if (n != 1)
		waitpid(pid, &status, 0);
	_exit(n == 1 ? 0 : 1);
}

/* The rest of going to the background, once mounted: what fuse_daemonize() does. */
static int detach(int notify_fd)
{
	int nul = open("/dev/null", O_RDWR | O_CLOEXEC);

	if (nul < 0 || chdir("/") < 0)
		return -1;
	dup2(nul, 0);
	dup2(nul, 1);
	dup2(nul, 2);
	close(nul);
	if (write(notify_fd, "", 1) != 1)
		return -1;
	close(notify_fd);
	return 0;
}

int main(int argc, char *argv[])
{
	static const char *const args[] = { "BACKING_FILE", "MOUNTPOINT", NULL };
	struct bs_fs fs = { .lock = PTHREAD_MUTEX_INITIALIZER, .fd = -1 };
	struct bs_rados_opts ro = { 0 };
	const char *backing, *mountpoint;
	struct zc_cmdline cl;
	struct zc_session *s;
	struct bs_err err;
	int i, r, status = 1, notify_fd = -1;

	/* -f, -d, -s, -h, -V and the -o lists, the way every mount program reads them. */
	if (zc_parse_cmdline(argc, argv, args, &cl, sizeof(cl)) < 0) {
		fprintf(stderr, "blobstore: %s\n", cl.error);
		return 2;
	}
	if (cl.show_help) {
		usage(stdout);
		return 0;
	}
	if (cl.show_version) {
		printf("blobstore (libzcfuse %s)\n", zc_version());
		return 0;
	}
	backing = cl.args[0];
	mountpoint = cl.args[1];
	s = zc_session_new(&bs_ops, sizeof(bs_ops), &fs);
	if (!s) {
		fprintf(stderr, "blobstore: out of memory\n");
		return 1;
	}
	zc_session_set_notice_handler(s, print_notice, NULL);
	zc_session_set_debug(s, cl.debug);
	zc_session_set_single_threaded(s, cl.single_threaded);
	zc_session_set_option_handler(s, take_option, &ro);
	for (i = 0; i < cl.n_opts; i++) {
		if (zc_session_set_options(s, cl.opts[i]) < 0) {
			fprintf(stderr, "blobstore: %s\n", zc_session_error(s));
			status = 2;
			goto out;
		}
	}
	/* mount -o remount changes the mount there: the store stays with its daemon. */
	r = zc_session_remount(s, mountpoint);
	if (r != 0) {
		if (r < 0)
			fprintf(stderr, "blobstore: %s\n", zc_session_error(s));
		status = r < 0;
		goto out;
	}
	if (!cl.foreground && is_rados(backing)) {
		notify_fd = fork_early();
		if (notify_fd < 0) {
			fprintf(stderr, "blobstore: cannot run in the background: %s\n",
				strerror(-notify_fd));
			goto out;
		}
	}
	/* Refuse a store that does not check out before anything is mounted. */
	if (open_store(&fs, backing, &ro, &err) < 0) {
		fprintf(stderr, "blobstore: %s: %s\n", backing, err.msg);
		goto out;
	}
	if (zc_session_set_option(s, "default_permissions") < 0 ||
	    zc_session_set_fsname(s, backing) < 0 || zc_session_mount(s, mountpoint) < 0 ||
	    (!cl.foreground && notify_fd < 0 && zc_session_daemonize(s) < 0) ||
	    (notify_fd >= 0 && detach(notify_fd) < 0) || zc_session_loop(s) < 0) {
		fprintf(stderr, "blobstore: %s\n", zc_session_error(s));
		goto out;
	}
	status = 0;
out:
	zc_session_destroy(s);
	bs_close_store(&fs);
	free((char *)ro.conf);
	free((char *)ro.id);
	return status;
}
