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
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include "ops.h"

static void usage(FILE *out)
{
	fprintf(out,
		"usage: blobstore BACKING_FILE MOUNTPOINT [-f] [-d] [-s] [-o opt[,opt...]]\n"
		"\n"
		"Mount the file system kept in BACKING_FILE (a missing or empty file\n"
		"becomes a new, empty store).\n"
		"\n"
		"    -f    stay in the foreground\n"
		"    -d    print every request (implies -f)\n"
		"    -s    serve requests on one thread\n"
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
	struct bs_fs fs = { .lock = PTHREAD_MUTEX_INITIALIZER, .fd = -1 };
	const char *backing = NULL, *mountpoint = NULL;
	bool foreground = false;
	struct zc_session *s;
	struct bs_err err;
	int i, status = 1;

	s = zc_session_new(&bs_ops, sizeof(bs_ops), &fs);
	if (!s) {
		fprintf(stderr, "blobstore: out of memory\n");
		return 1;
	}
	zc_session_set_notice_handler(s, print_notice, NULL);
	for (i = 1; i < argc; i++) {
		const char *arg = argv[i];

		if (!strcmp(arg, "-h") || !strcmp(arg, "--help")) {
			usage(stdout);
			status = 0;
			goto out;
		} else if (!strcmp(arg, "-f")) {
			foreground = true;
		} else if (!strcmp(arg, "-d")) {
			foreground = true;
			zc_session_set_debug(s, 1);
		} else if (!strcmp(arg, "-s")) {
			zc_session_set_single_threaded(s, 1);
		} else if (!strncmp(arg, "-o", 2)) {
			const char *opts = arg[2] ? arg + 2 : argv[++i];

			if (!opts || zc_session_set_options(s, opts) < 0) {
				fprintf(stderr, "blobstore: %s\n",
					opts ? zc_session_error(s) : "-o needs a value");
				status = 2;
				goto out;
			}
		} else if (arg[0] != '-' && !backing) {
			backing = arg;
		} else if (arg[0] != '-' && !mountpoint) {
			mountpoint = arg;
		} else {
			fprintf(stderr,
				"blobstore: unexpected argument '%s' (see blobstore --help)\n",
				arg);
			status = 2;
			goto out;
		}
	}
	if (!mountpoint) {
		fprintf(stderr, "blobstore: missing %s (see blobstore --help)\n",
			backing ? "MOUNTPOINT" : "BACKING_FILE and MOUNTPOINT");
		status = 2;
		goto out;
	}
	/* Refuse a store that does not check out before anything is mounted. */
	if (bs_open_store(&fs, backing, &err) < 0) {
		fprintf(stderr, "blobstore: %s: %s\n", backing, err.msg);
		goto out;
	}
	if (zc_session_set_option(s, "default_permissions") < 0 ||
	    zc_session_set_fsname(s, backing) < 0 || zc_session_mount(s, mountpoint) < 0 ||
	    (!foreground && zc_session_daemonize(s) < 0) || zc_session_loop(s) < 0) {
		fprintf(stderr, "blobstore: %s\n", zc_session_error(s));
		goto out;
	}
	status = 0;
out:
	zc_session_destroy(s);
	bs_close_store(&fs);
	return status;
}
