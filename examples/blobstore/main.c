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
 * The layers: store_format.c (superblocks, the index, commit, loading),
 * alloc.c (blocks of the backing file), extent.c (extent maps), inode.c
 * (inodes and names) make the store, which knows nothing of FUSE
 * (blobstore.h describes the format and the locking); ops.c serves the
 * libzcfuse operations from it.
 */
#include <pthread.h>
#include <stdio.h>

#include "ops.h"

static void usage(FILE *out)
{
	fprintf(out,
		"usage: blobstore BACKING_FILE MOUNTPOINT [-f] [-d] [-s] [-o opt[,opt...]]\n"
		"\n"
		"Mount the file system kept in BACKING_FILE (a missing or empty file\n"
		"becomes a new, empty store).\n"
		"\n"
		"    -f             stay in the foreground\n"
		"    -d             print every request (implies -f)\n"
		"    -s             serve requests on one thread\n"
		"    -h, --help     print this help\n"
		"    -V, --version  print the version\n"
		"\n"
		"Mount options:\n%s",
		zc_options_help());
}

/* What the library has to say about how the mount runs. */
static void print_notice(void *data, const char *line)
{
	(void)data;
	fprintf(stderr, "blobstore: %s\n", line);
}

int main(int argc, char *argv[])
{
	static const char *const args[] = { "BACKING_FILE", "MOUNTPOINT", NULL };
	struct bs_fs fs = { .lock = PTHREAD_MUTEX_INITIALIZER, .fd = -1 };
	const char *backing, *mountpoint;
	struct zc_cmdline cl;
	struct zc_session *s;
	struct bs_err err;
	int i, r, status = 1;

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
	/* Refuse a store that does not check out before anything is mounted. */
	if (bs_open_store(&fs, backing, &err) < 0) {
		fprintf(stderr, "blobstore: %s: %s\n", backing, err.msg);
		goto out;
	}
	if (zc_session_set_option(s, "default_permissions") < 0 ||
	    zc_session_set_fsname(s, backing) < 0 || zc_session_mount(s, mountpoint) < 0 ||
	    (!cl.foreground && zc_session_daemonize(s) < 0) || zc_session_loop(s) < 0) {
		fprintf(stderr, "blobstore: %s\n", zc_session_error(s));
		goto out;
	}
	status = 0;
out:
	zc_session_destroy(s);
	bs_close_store(&fs);
	return status;
}
