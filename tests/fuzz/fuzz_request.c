/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Fuzz target: raw FUSE requests into the transport's receive and decode
 * path and libfuse's dispatch, served by the passthrough backend on a
 * scratch directory, without a mount.
 *
 * The "device" is one end of an AF_UNIX stream socket pair, which can be
 * read, written and spliced both ways like /dev/fuse. Message boundaries
 * hold because there is one request in flight at a time: the request is
 * written whole, one receive takes all of it, and the replies are split by
 * the lengths in their headers. (A SOCK_SEQPACKET pair would keep
 * boundaries itself, but a splice into it splits a reply into several
 * messages.) Each input runs on a fresh session and a fresh scratch tree:
 *
 *   byte 0       configuration (FZ_CFG_* bits: splice, threshold, options,
 *                ring entries)
 *   bytes 1..    requests, one after the other; each takes as many bytes
 *                as its header's len field says (the rest of the input
 *                when that is 0 or runs past the end). With FZ_CFG_RING,
 *                two bytes come before each request: how it is split
 *                into a ring entry (see ring_one()).
 *
 * The session first gets a real INIT, then every request is written as one
 * message, served by one zc_dev_worker_serve_one() call, and its replies
 * are read back and checked: at most one, for that request, well formed.
 * A violation aborts, so the fuzzer reports it like a crash.
 *
 * With FZ_CFG_RING, INIT still comes over the socket (as it does with a
 * ring: the kernel switches to the ring only after INIT), but every other
 * request arrives as a FUSE over io_uring entry would hold it: split into
 * the entry's header buffer and payload buffer, checked and put back
 * together by zc_uring_ent_parse(), and served by zc_dispatch() with
 * replies by memory, on a route that checks them as they are sent.
 *
 * The kernel only ever hands the daemon file handles the daemon gave out;
 * the passthrough backend trusts them (they are descriptors and pointers).
 * A thin layer between library and backend stands in for the kernel's
 * guarantee: it hands out small handle numbers and refuses unknown ones.
 * It also keeps the fuzzer from hanging or harming the machine: no device
 * nodes or FIFOs, non-blocking flock, files capped by RLIMIT_FSIZE.
 */
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <linux/fuse.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuse_kernel_ext.h"
#include "pt.h"
#include "zc_dev.h"
#include "zc_dispatch.h"
#include "zc_iter.h"
#include "zc_proto.h"
#include "zc_req.h"
#include "zc_uring_ent.h"
#include "zc_util.h"
#include "zcfuse_i.h"

#include "fuzz.h"

#define FZ_CFG_NOSPLICE	     (1u << 0) /* copy mode */
#define FZ_CFG_THRESHOLD_0   (1u << 1) /* splice every size */
#define FZ_CFG_WRITEBACK     (1u << 2)
#define FZ_CFG_CACHE_NEVER   (1u << 3)
#define FZ_CFG_DEFAULT_PERMS (1u << 4)
#define FZ_CFG_OLD_KERNEL    (1u << 5) /* INIT offers no flags at all */
#define FZ_CFG_PASSTHROUGH   (1u << 6) /* -o passthrough (no backing ids here) */
#define FZ_CFG_RING	     (1u << 7) /* requests after INIT as io_uring ring entries */

#define FZ_HANDLES	     32
#define FZ_FSIZE	     (16 << 20)
#define FZ_REPLYBUF	     (2 << 20)

enum fz_kind {
	FZ_FREE,
	FZ_FILE,
	FZ_DIR,
};

static struct {
	enum fz_kind kind;
	uint64_t real;
	zc_ino_t ino;
} handles[FZ_HANDLES];

static char base_dir[64];
static char tree_dir[96];
static char *reply_buf;
/* Reply bytes already taken off the socket by the drain thread. */
static size_t reply_got;
/* Socket buffers too small for the largest reply (no CAP_NET_ADMIN). */
static bool small_socket;

/* ---------------------------------------------------- the handle layer */

static int fh_put(enum fz_kind kind, zc_ino_t ino, uint64_t real, uint64_t *ret_fh)
{
	unsigned int i;

	for (i = 0; i < FZ_HANDLES; i++) {
		if (handles[i].kind == FZ_FREE) {
			handles[i].kind = kind;
			handles[i].real = real;
			handles[i].ino = ino;
			*ret_fh = i;
			return 0;
		}
	}
	return -EMFILE;
}

static int fh_get(uint64_t fh, enum fz_kind kind, uint64_t *ret_real)
{
	if (fh >= FZ_HANDLES || handles[fh].kind != kind)
		return -EBADF;
	*ret_real = handles[fh].real;
	return 0;
}

static void release_all(const struct zc_ctx *ctx)
{
	unsigned int i;

	for (i = 0; i < FZ_HANDLES; i++) {
		if (handles[i].kind == FZ_FILE)
			pt_ops.release(ctx, handles[i].ino, handles[i].real);
		else if (handles[i].kind == FZ_DIR)
			pt_ops.releasedir(ctx, handles[i].ino, handles[i].real);
		handles[i].kind = FZ_FREE;
	}
}

static int fz_getattr(const struct zc_ctx *ctx, zc_ino_t ino, uint64_t fh, struct stat *ret_attr)
{
	uint64_t real = ZC_NO_FH;

	if (fh != ZC_NO_FH && fh_get(fh, FZ_FILE, &real) < 0)
		real = ZC_NO_FH;
	return pt_ops.getattr(ctx, ino, real, ret_attr);
}

static int fz_setattr(const struct zc_ctx *ctx, zc_ino_t ino, uint64_t fh, const struct stat *attr,
		      int to_set, struct stat *ret_attr)
{
	uint64_t real = ZC_NO_FH;

	if (fh != ZC_NO_FH && fh_get(fh, FZ_FILE, &real) < 0)
		return -EBADF;
	return pt_ops.setattr(ctx, ino, real, attr, to_set, ret_attr);
}

static int fz_mknod(const struct zc_ctx *ctx, zc_ino_t parent, const char *name, mode_t mode,
		    dev_t rdev, struct zc_entry *ret_entry)
{
	/* Device nodes would reach real devices, FIFOs would block an open. */
	if (!S_ISREG(mode))
		return -EPERM;
	return pt_ops.mknod(ctx, parent, name, mode, rdev, ret_entry);
}

static int fz_open(const struct zc_ctx *ctx, zc_ino_t ino, struct zc_file *file)
{
	int r = pt_ops.open(ctx, ino, file);

	if (r == 0 && (r = fh_put(FZ_FILE, ino, file->fh, &file->fh)) < 0)
		pt_ops.release(ctx, ino, file->fh);
	return r;
}

static int fz_create(const struct zc_ctx *ctx, zc_ino_t parent, const char *name, mode_t mode,
		     struct zc_file *file, struct zc_entry *ret_entry)
{
	int r;

	if (!S_ISREG(mode) && (mode & S_IFMT))
		return -EPERM;
	r = pt_ops.create(ctx, parent, name, mode, file, ret_entry);
	if (r == 0 && (r = fh_put(FZ_FILE, ret_entry->ino, file->fh, &file->fh)) < 0) {
		pt_ops.release(ctx, ret_entry->ino, file->fh);
		pt_ops.forget(ctx, ret_entry->ino, 1);
	}
	return r;
}

static int fz_tmpfile(const struct zc_ctx *ctx, zc_ino_t parent, mode_t mode, struct zc_file *file,
		      struct zc_entry *ret_entry)
{
	int r = pt_ops.tmpfile(ctx, parent, mode, file, ret_entry);

	if (r == 0 && (r = fh_put(FZ_FILE, ret_entry->ino, file->fh, &file->fh)) < 0) {
		pt_ops.release(ctx, ret_entry->ino, file->fh);
		pt_ops.forget(ctx, ret_entry->ino, 1);
	}
	return r;
}

static int fz_read(const struct zc_ctx *ctx, zc_ino_t ino, uint64_t fh, off_t off, size_t size,
		   struct zc_extent *ret_ext, unsigned int max_ext)
{
	uint64_t real;
	int r = fh_get(fh, FZ_FILE, &real);

	return r < 0 ? r : pt_ops.read(ctx, ino, real, off, size, ret_ext, max_ext);
}

static int fz_write(const struct zc_ctx *ctx, zc_ino_t ino, uint64_t fh, off_t off, size_t size,
		    struct zc_extent *ret_ext, unsigned int max_ext)
{
	uint64_t real;
	int r = fh_get(fh, FZ_FILE, &real);

	return r < 0 ? r : pt_ops.write(ctx, ino, real, off, size, ret_ext, max_ext);
}

static int fz_flush(const struct zc_ctx *ctx, zc_ino_t ino, uint64_t fh)
{
	uint64_t real;
	int r = fh_get(fh, FZ_FILE, &real);

	return r < 0 ? r : pt_ops.flush(ctx, ino, real);
}

static void fz_release(const struct zc_ctx *ctx, zc_ino_t ino, uint64_t fh)
{
	uint64_t real;

	if (fh_get(fh, FZ_FILE, &real) < 0)
		return;
	pt_ops.release(ctx, ino, real);
	handles[fh].kind = FZ_FREE;
}

static int fz_fsync(const struct zc_ctx *ctx, zc_ino_t ino, uint64_t fh, int datasync)
{
	uint64_t real;
	int r = fh_get(fh, FZ_FILE, &real);

	return r < 0 ? r : pt_ops.fsync(ctx, ino, real, datasync);
}

static int fz_opendir(const struct zc_ctx *ctx, zc_ino_t ino, struct zc_file *file)
{
	int r = pt_ops.opendir(ctx, ino, file);

	if (r == 0 && (r = fh_put(FZ_DIR, ino, file->fh, &file->fh)) < 0)
		pt_ops.releasedir(ctx, ino, file->fh);
	return r;
}

static int fz_readdir(const struct zc_ctx *ctx, zc_ino_t ino, uint64_t fh, off_t off,
		      zc_dir_fill_fn fill, void *fill_ctx)
{
	uint64_t real;
	int r = fh_get(fh, FZ_DIR, &real);

	return r < 0 ? r : pt_ops.readdir(ctx, ino, real, off, fill, fill_ctx);
}

static void fz_releasedir(const struct zc_ctx *ctx, zc_ino_t ino, uint64_t fh)
{
	uint64_t real;

	if (fh_get(fh, FZ_DIR, &real) < 0)
		return;
	pt_ops.releasedir(ctx, ino, real);
	handles[fh].kind = FZ_FREE;
}

static int fz_fsyncdir(const struct zc_ctx *ctx, zc_ino_t ino, uint64_t fh, int datasync)
{
	uint64_t real;
	int r = fh_get(fh, FZ_DIR, &real);

	return r < 0 ? r : pt_ops.fsyncdir(ctx, ino, real, datasync);
}

static int fz_fallocate(const struct zc_ctx *ctx, zc_ino_t ino, uint64_t fh, int mode, off_t off,
			off_t len)
{
	uint64_t real;
	int r = fh_get(fh, FZ_FILE, &real);

	return r < 0 ? r : pt_ops.fallocate(ctx, ino, real, mode, off, len);
}

static ssize_t fz_copy_file_range(const struct zc_ctx *ctx, zc_ino_t ino_in, uint64_t fh_in,
				  off_t off_in, zc_ino_t ino_out, uint64_t fh_out, off_t off_out,
				  size_t len, int flags)
{
	uint64_t in, out;

	if (fh_get(fh_in, FZ_FILE, &in) < 0 || fh_get(fh_out, FZ_FILE, &out) < 0)
		return -EBADF;
	return pt_ops.copy_file_range(ctx, ino_in, in, off_in, ino_out, out, off_out, len, flags);
}

static off_t fz_lseek(const struct zc_ctx *ctx, zc_ino_t ino, uint64_t fh, off_t off, int whence)
{
	uint64_t real;
	int r = fh_get(fh, FZ_FILE, &real);

	return r < 0 ? r : pt_ops.lseek(ctx, ino, real, off, whence);
}

static int fz_flock(const struct zc_ctx *ctx, zc_ino_t ino, uint64_t fh, int op)
{
	uint64_t real;
	int r = fh_get(fh, FZ_FILE, &real);

	/* Two handles of one file would wait for each other forever. */
	return r < 0 ? r : pt_ops.flock(ctx, ino, real, op | LOCK_NB);
}

static struct zc_backend_ops fz_ops;

static void fz_ops_init(void)
{
	fz_ops = pt_ops;
	fz_ops.getattr = fz_getattr;
	fz_ops.setattr = fz_setattr;
	fz_ops.mknod = fz_mknod;
	fz_ops.open = fz_open;
	fz_ops.create = fz_create;
	fz_ops.tmpfile = fz_tmpfile;
	fz_ops.read = fz_read;
	fz_ops.write = fz_write;
	fz_ops.flush = fz_flush;
	fz_ops.release = fz_release;
	fz_ops.fsync = fz_fsync;
	fz_ops.opendir = fz_opendir;
	fz_ops.readdir = fz_readdir;
	fz_ops.releasedir = fz_releasedir;
	fz_ops.fsyncdir = fz_fsyncdir;
	fz_ops.fallocate = fz_fallocate;
	fz_ops.copy_file_range = fz_copy_file_range;
	fz_ops.lseek = fz_lseek;
	fz_ops.flock = fz_flock;
}

/* ------------------------------------------------------ the scratch tree */

/*
 * Remove a tree whatever an input did to its modes: a directory is made
 * searchable and writable before it is read, so that a MKDIR with mode 0
 * (which only root could descend otherwise) cannot outlive its input.
 */
static void remove_tree_at(int parent, const char *name)
{
	struct stat st;
	struct dirent *e;
	DIR *d;
	int fd;

	if (fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return;
	if (!S_ISDIR(st.st_mode)) {
		unlinkat(parent, name, 0);
		return;
	}
	fchmodat(parent, name, 0700, 0);
	fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd >= 0) {
		d = fdopendir(fd);
		if (!d) {
			close(fd);
		} else {
			while ((e = readdir(d)))
				if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
					remove_tree_at(dirfd(d), e->d_name);
			closedir(d);
		}
	}
	unlinkat(parent, name, AT_REMOVEDIR);
}

static void must(int ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz setup: %s: %s\n", what, strerror(errno));
		abort();
	}
}

static void put_file(const char *rel, size_t size, mode_t mode)
{
	char path[160];
	char *data = malloc(size ? size : 1);
	size_t i;
	int fd;

	must(data != NULL, "malloc");
	for (i = 0; i < size; i++)
		data[i] = (char)('a' + i % 26);
	snprintf(path, sizeof(path), "%s/%s", tree_dir, rel);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	must(fd >= 0, path);
	must(write(fd, data, size) == (ssize_t)size, "write");
	close(fd);
	chmod(path, mode);
	free(data);
}

/*
 * A fresh tree per input. Inode numbers the session hands out follow the
 * order of lookups: the first name looked up is node 2, and so on.
 */
static void make_tree(void)
{
	char path[160];

	remove_tree_at(AT_FDCWD, tree_dir);
	must(mkdir(tree_dir, 0755) == 0, tree_dir);
	put_file("f", 100000, 0644);
	put_file("small", 10, 0644);
	put_file("suid", 4096, 04755);
	snprintf(path, sizeof(path), "%s/d", tree_dir);
	must(mkdir(path, 0755) == 0, path);
	put_file("d/g", 5000, 0600);
	snprintf(path, sizeof(path), "%s/l", tree_dir);
	must(symlink("f", path) == 0, path);
	snprintf(path, sizeof(path), "%s/up", tree_dir);
	must(symlink("../..", path) == 0, path);
}

static void remove_base(void)
{
	remove_tree_at(AT_FDCWD, base_dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct rlimit rl = { FZ_FSIZE, FZ_FSIZE };

	(void)argc;
	(void)argv;
	snprintf(base_dir, sizeof(base_dir), "%s/zcfuse-fuzz-XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	must(mkdtemp(base_dir) != NULL, "mkdtemp");
	snprintf(tree_dir, sizeof(tree_dir), "%s/tree", base_dir);
	atexit(remove_base);
	/* Writes past the cap fail with EFBIG instead of filling the disk. */
	signal(SIGXFSZ, SIG_IGN);
	must(setrlimit(RLIMIT_FSIZE, &rl) == 0, "setrlimit");
	reply_buf = malloc(FZ_REPLYBUF);
	must(reply_buf != NULL, "malloc");
	fz_ops_init();
	return 0;
}

/* ------------------------------------------------------------ requests */

static void fail(const char *what, uint32_t opcode)
{
	fprintf(stderr, "fuzz: %s (opcode %u)\n", what, opcode);
	abort();
}

/* Requests the kernel expects no reply to. */
static bool no_reply_expected(uint32_t opcode)
{
	return opcode == FUSE_FORGET || opcode == FUSE_BATCH_FORGET || opcode == FUSE_INTERRUPT ||
	       opcode == FUSE_NOTIFY_REPLY;
}

/*
 * INTERRUPTs whose request libfuse did not find: it answers them EAGAIN
 * (try again) while it serves a later request, one per request.
 */
#define FZ_INTERRUPTS 64
static uint64_t interrupts[FZ_INTERRUPTS];
static unsigned int nr_interrupts;
static bool interrupts_lost;

static bool take_interrupt(uint64_t unique)
{
	unsigned int i;

	for (i = 0; i < nr_interrupts; i++) {
		if (interrupts[i] == unique) {
			interrupts[i] = interrupts[--nr_interrupts];
			return true;
		}
	}
	return interrupts_lost;
}

/* Read every reply waiting on @fd and check it against the request. */
static void check_replies(int fd, const void *req, size_t len)
{
	struct fuse_in_header in = { 0 };
	unsigned int replies = 0;
	size_t got = reply_got, off;
	ssize_t n;

	reply_got = 0;
	memcpy(&in, req, len < sizeof(in) ? len : sizeof(in));
	if (in.opcode == FUSE_INTERRUPT && len >= sizeof(in)) {
		if (nr_interrupts < FZ_INTERRUPTS)
			interrupts[nr_interrupts++] = in.unique;
		else
			interrupts_lost = true;
	}
	while ((n = recv(fd, reply_buf + got, FZ_REPLYBUF - got, MSG_DONTWAIT)) > 0) {
		got += (size_t)n;
		if (got == FZ_REPLYBUF)
			fail("more reply data than any request may get", in.opcode);
	}
	if (n == 0 || errno != EAGAIN)
		fail("reading replies failed", in.opcode);
	/* The stream holds whole replies, each as long as its header says. */
	for (off = 0; off < got;) {
		struct fuse_out_header out;

		if (got - off < sizeof(out))
			fail("reply shorter than its header", in.opcode);
		memcpy(&out, reply_buf + off, sizeof(out));
		if (out.len < sizeof(out) || out.len > got - off) {
			if (getenv("ZCFUSE_FUZZ_DEBUG"))
				fprintf(stderr, "reply of %zu bytes, header len %u\n", got - off,
					out.len);
			fail("reply length does not match its header", in.opcode);
		}
		off += out.len;
		/* A notification (unique 0, the code in error): attributes dropped. */
		if (out.unique == 0) {
			if (out.error != FUSE_NOTIFY_INVAL_INODE ||
			    out.len != sizeof(out) + sizeof(struct fuse_notify_inval_inode_out))
				fail("malformed notification", in.opcode);
			continue;
		}
		if (out.error > 0 || out.error <= -4096 || (out.error && out.len != sizeof(out))) {
			if (getenv("ZCFUSE_FUZZ_DEBUG"))
				fprintf(stderr, "error %d, len %u\n", out.error, out.len);
			fail("malformed error reply", in.opcode);
		}
		if (out.error == -EAGAIN && take_interrupt(out.unique))
			continue;
		if (len == 0)
			fail("a reply on the socket to a ring entry's request", in.opcode);
		if (len < sizeof(in))
			fail("reply to a message shorter than a header", in.opcode);
		if (out.unique != in.unique) {
			if (getenv("ZCFUSE_FUZZ_DEBUG"))
				fprintf(stderr, "reply unique %llu error %d, request %llu\n",
					(unsigned long long)out.unique, out.error,
					(unsigned long long)in.unique);
			fail("reply to a request that was not sent", in.opcode);
		}
		if (++replies > 1)
			fail("more than one reply to one request", in.opcode);
	}
	if (replies == 0 && len >= sizeof(in) && in.len == len && !no_reply_expected(in.opcode))
		fail("no reply to a request", in.opcode);
}

static bool unique_is_zero(const void *msg, size_t len)
{
	struct fuse_in_header in;

	if (len < sizeof(in))
		return false;
	memcpy(&in, msg, sizeof(in));
	return in.unique == 0;
}

/*
 * Serve one request with libFuzzer's timer signal held back: a signal that
 * lands while a large reply is spliced into the socket makes the socket
 * take part of it and the library sees a short send, which /dev/fuse, all
 * or nothing, never gives. The timeout is still noticed, just after.
 */
static void serve_unsignalled(struct zc_worker *w)
{
	sigset_t alarm, old;

	sigemptyset(&alarm);
	sigaddset(&alarm, SIGALRM);
	pthread_sigmask(SIG_BLOCK, &alarm, &old);
	zc_dev_worker_serve_one(w);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

struct drain {
	int fd;
	atomic_bool served;
};

/*
 * Take replies off the socket while the request is served, for socket
 * buffers that cannot hold the largest reply: the library's write would
 * wait for a reader that is this thread.
 */
static void *drain_replies(void *arg)
{
	struct drain *dr = arg;
	struct pollfd pfd = { .fd = dr->fd, .events = POLLIN };
	ssize_t n;

	for (;;) {
		bool served = atomic_load(&dr->served);

		if (poll(&pfd, 1, 10) < 0 && errno != EINTR)
			fail("polling for replies failed", 0);
		while ((n = recv(dr->fd, reply_buf + reply_got, FZ_REPLYBUF - reply_got,
				 MSG_DONTWAIT)) > 0) {
			reply_got += (size_t)n;
			if (reply_got == FZ_REPLYBUF)
				fail("more reply data than any request may get", 0);
		}
		if (n == 0 || errno != EAGAIN)
			fail("reading replies failed", 0);
		if (served)
			return NULL;
	}
}

static void send_one(int fd, struct zc_worker *w, const void *msg, size_t len)
{
	struct drain dr = { .fd = fd };
	pthread_t drainer;

	if (send(fd, msg, len, 0) != (ssize_t)len)
		fail("cannot send the request", 0);
	if (small_socket)
		must(pthread_create(&drainer, NULL, drain_replies, &dr) == 0, "pthread_create");
	serve_unsignalled(w);
	if (small_socket) {
		atomic_store(&dr.served, true);
		pthread_join(drainer, NULL);
	}
	check_replies(fd, msg, len);
}

static void send_init(int fd, struct zc_worker *w, bool old_kernel)
{
	struct {
		struct fuse_in_header hdr;
		struct fuse_init_in init;
	} msg = {
		.hdr = { .len = sizeof(msg), .opcode = FUSE_INIT, .unique = 2, .pid = 1 },
		.init = { .major = FUSE_KERNEL_VERSION,
			  .minor = FUSE_KERNEL_MINOR_VERSION,
			  .max_readahead = 128 * 1024 },
	};

	if (!old_kernel)
		msg.init.flags2 = 1u << (37 - 32) | /* FUSE_PASSTHROUGH */
				  1u << (34 - 32);  /* FUSE_CREATE_SUPP_GROUP */
	if (!old_kernel)
		msg.init.flags =
		    FUSE_ASYNC_READ | FUSE_POSIX_LOCKS | FUSE_ATOMIC_O_TRUNC | FUSE_EXPORT_SUPPORT |
		    FUSE_BIG_WRITES | FUSE_DONT_MASK | FUSE_SPLICE_WRITE | FUSE_SPLICE_MOVE |
		    FUSE_SPLICE_READ | FUSE_FLOCK_LOCKS | FUSE_HAS_IOCTL_DIR |
		    FUSE_AUTO_INVAL_DATA | FUSE_DO_READDIRPLUS | FUSE_READDIRPLUS_AUTO |
		    FUSE_ASYNC_DIO | FUSE_WRITEBACK_CACHE | FUSE_PARALLEL_DIROPS |
		    FUSE_HANDLE_KILLPRIV | FUSE_POSIX_ACL | FUSE_MAX_PAGES | FUSE_CACHE_SYMLINKS |
		    FUSE_INIT_EXT | FUSE_HANDLE_KILLPRIV_V2 | FUSE_SETXATTR_EXT;
	send_one(fd, w, &msg, sizeof(msg));
}

/* ------------------------------------------------------- ring entries */

/*
 * One ring entry, laid out as zc_uring.c lays them out: the header buffer
 * (apart here, at the start of the page in front of the payload there),
 * and the payload buffer one page into its memory, sized as the ring sizes
 * it for the INIT reply's limits. The buffers are reused from request to
 * request, as the ring's are: what a request leaves in them stays.
 */
static struct {
	struct zc_fuse_uring_req_header hdr;
	char *mem;
	char *payload;
	size_t payload_size;
	/* The request being served, and the replies it got. */
	uint64_t unique;
	uint32_t opcode;
	unsigned int replies;
} ring;

/* The payload buffer the ring gives an entry for the INIT reply's limits (zc_uring.c). */
static size_t ring_payload_size(const struct zc_conn *conn)
{
	size_t size = (size_t)(conn->max_pages ? conn->max_pages : 32) * ZC_PAGE;

	if (size < conn->max_write)
		size = conn->max_write;
	if (size < 8192) /* the kernel's smallest (FUSE_MIN_READ_BUFFER) */
		size = 8192;
	return (size + ZC_PAGE - 1) & ~(ZC_PAGE - 1);
}

static void ring_alloc(const struct zc_conn *conn)
{
	ring.payload_size = ring_payload_size(conn);
	/* Exactly the entry's memory, so that a reply past its end is caught. */
	must(posix_memalign((void **)&ring.mem, ZC_PAGE, ZC_PAGE + ring.payload_size) == 0,
	     "posix_memalign");
	memset(ring.mem, 0, ZC_PAGE + ring.payload_size);
	memset(&ring.hdr, 0, sizeof(ring.hdr));
	ring.payload = ring.mem + ZC_PAGE;
}

static void ring_free(void)
{
	free(ring.mem);
	ring.mem = ring.payload = NULL;
}

/*
 * The ring route's stand-in: the reply leaves from memory, and is checked
 * as check_replies() checks a reply read from the socket: the only one to
 * its request, as long as its header says, and a sane error.
 */
static ssize_t ring_send(struct zc_req *req, const struct iovec *iov, int count)
{
	struct fuse_out_header out;
	size_t total = 0;
	int i;

	(void)req;
	if (count < 1 || iov[0].iov_len < sizeof(out))
		fail("ring reply shorter than its header", ring.opcode);
	for (i = 0; i < count; i++) {
		if (iov[i].iov_len > FZ_REPLYBUF - total)
			fail("more reply data than any request may get", ring.opcode);
		if (iov[i].iov_len)
			memmove(reply_buf + total, iov[i].iov_base, iov[i].iov_len);
		total += iov[i].iov_len;
	}
	memcpy(&out, reply_buf, sizeof(out));
	if (++ring.replies > 1)
		fail("more than one reply to one request", ring.opcode);
	if (out.unique != ring.unique)
		fail("reply to a request that was not sent", ring.opcode);
	if (out.len != total)
		fail("reply length does not match its header", ring.opcode);
	if (out.error > 0 || out.error <= -512 || (out.error && out.len != sizeof(out))) {
		if (getenv("ZCFUSE_FUZZ_DEBUG"))
			fprintf(stderr, "error %d, len %u\n", out.error, out.len);
		fail("malformed error reply", ring.opcode);
	}
	return (ssize_t)total;
}

/* No lock waiter keeps a ring entry here: a blocking lock is refused. */
static int ring_keep(struct zc_req *req)
{
	(void)req;
	return -ENOLCK;
}

static const struct zc_route fz_ring_route = {
	.kind = ZC_ROUTE_RING,
	.send = ring_send,
	.keep = ring_keep,
};

/*
 * Whether zc_uring_ent_parse() took the entry it should have, and put the
 * request where it should be: the rule it follows, said again.
 */
static void ring_check_parse(int r, const char *req, size_t req_len)
{
	const struct zc_fuse_uring_req_header *hdr = &ring.hdr;
	size_t payload_sz = hdr->ring_ent_in_out.payload_sz, head;
	struct fuse_in_header in;
	bool ok;

	memcpy(&in, hdr->in_out, sizeof(in));
	ok = in.len >= sizeof(in) + payload_sz &&
	     in.len - payload_sz - sizeof(in) <= sizeof(hdr->op_in) &&
	     (in.len - payload_sz - sizeof(in)) % 8 == 0 && payload_sz <= ring.payload_size;
	if (ok != (r == 0))
		fail(ok ? "a good ring entry refused" : "a bad ring entry taken", in.opcode);
	if (r < 0)
		return;
	head = in.len - payload_sz;
	if (req != ring.payload - head || req_len != in.len ||
	    memcmp(req, hdr->in_out, sizeof(in)) != 0 ||
	    memcmp(req + sizeof(in), hdr->op_in, head - sizeof(in)) != 0)
		fail("a ring entry's request put together wrong", in.opcode);
}

/*
 * What the queue asks of a request it took (whether it goes to the pool):
 * only a READ or a WRITE moves data, and only a WRITE comes from writeback.
 */
static void ring_check_helpers(const char *req, size_t len, size_t payload)
{
	struct fuse_in_header in = { 0 };
	size_t data = zc_uring_ent_data_size(req, len, payload);

	memcpy(&in, req, len < sizeof(in) ? len : sizeof(in));
	if (data && (len < sizeof(in) || (in.opcode != FUSE_READ && in.opcode != FUSE_WRITE)))
		fail("data size of a request that moves none", in.opcode);
	if (zc_uring_ent_is_writeback(req, len) && (len < sizeof(in) || in.opcode != FUSE_WRITE))
		fail("writeback that is no WRITE", in.opcode);
}

/*
 * Serve the request @msg of @len bytes as a ring entry: its first 40 bytes
 * (fuse_in_header) go to the header buffer's in_out, the next @split bytes
 * (up to 128) to op_in, the rest to the payload buffer; @split above 128
 * splits it as the kernel would, after the opcode's argument struct. The
 * payload size in the header is the bytes put in the payload plus @skew
 * (signed), so that sizes that disagree with the header's len are tried.
 * Notifications may still come over the socket @fd, and nothing else.
 */
static void ring_one(int fd, struct zc_session *s, const uint8_t *msg, size_t len, uint8_t split,
		     int8_t skew)
{
	struct zc_fuse_uring_req_header *hdr = &ring.hdr;
	struct fuse_in_header in = { 0 };
	size_t op_len, pay_len;
	char *req = NULL;
	size_t req_len = 0;
	struct zc_iter src;
	struct zc_req zr;
	int r;

	memcpy(&in, msg, len < sizeof(in) ? len : sizeof(in));
	memset(hdr->in_out, 0, sizeof(hdr->in_out));
	memcpy(hdr->in_out, &in, sizeof(in));
	if (split <= sizeof(hdr->op_in)) {
		op_len = split;
	} else {
		const struct zc_op *op = zc_dispatch_op(in.opcode);

		op_len = op ? zc_proto_in_size(in.opcode, &op->in, s->chan.conn.minor) : 0;
		if (op_len > sizeof(hdr->op_in))
			op_len = sizeof(hdr->op_in);
	}
	if (len <= sizeof(in))
		op_len = 0;
	else if (op_len > len - sizeof(in))
		op_len = len - sizeof(in);
	pay_len = len > sizeof(in) + op_len ? len - sizeof(in) - op_len : 0;
	if (op_len)
		memcpy(hdr->op_in, msg + sizeof(in), op_len);
	if (pay_len)
		memcpy(ring.payload, msg + sizeof(in) + op_len,
		       pay_len < ring.payload_size ? pay_len : ring.payload_size);
	hdr->ring_ent_in_out.payload_sz = (uint32_t)(pay_len + (size_t)(ssize_t)skew);
	hdr->ring_ent_in_out.commit_id++;

	/* The helpers are bounds-checked: the raw bytes will do too. */
	ring_check_helpers((const char *)msg, len, pay_len);
	r = zc_uring_ent_parse(hdr, ring.payload, ring.payload_size, &req, &req_len);
	ring_check_parse(r, req, req_len);
	/* The ring commits a malformed entry with -EIO; the kernel never sends unique 0. */
	if (r < 0 || in.unique == 0)
		return;
	ring_check_helpers(req, req_len, hdr->ring_ent_in_out.payload_sz);

	/* As ent_serve() serves it: a READ's reply is gathered into the payload. */
	zr = (struct zc_req){
		.chan = &s->chan,
		.route = &fz_ring_route,
		.transport = &ring,
		.dev_fd = -1,
		.pipe = { -1, -1 },
		.reply_buf = ring.payload - sizeof(struct fuse_out_header),
		.reply_room = ring.payload_size,
		.buf = req,
		.src = &src,
	};
	ring.unique = in.unique;
	ring.opcode = in.opcode;
	ring.replies = 0;
	zc_iter_mem(&src, req, req_len);
	zc_dispatch(&zr, req_len);
	if (ring.replies == 0 && !zr.kept && !no_reply_expected(in.opcode))
		fail("no reply to a request", in.opcode);
	check_replies(fd, "", 0);
}

static void set_option(struct zc_session *s, const char *opt)
{
	if (zc_session_set_option(s, opt) < 0)
		fail(zc_session_error(s), 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct zc_ctx ctx = { 0 };
	struct zc_worker *w;
	struct zc_session *s;
	struct pt_fs fs;
	int sv[2], force = 4 << 20;
	unsigned int i;
	uint8_t cfg;

	if (size < 1)
		return 0;
	cfg = data[0];
	data++;
	size--;
	/* libFuzzer installs its own handler after LLVMFuzzerInitialize(). */
	signal(SIGXFSZ, SIG_IGN);

	make_tree();
	/* Few idle descriptors: requests reopen inodes from their handles. */
	must(pt_fs_init(&fs, tree_dir, &(struct pt_conf){ .max_fds = 4 }) == 0, "pt_fs_init");
	ctx.userdata = &fs;
	s = zc_session_new(&fz_ops, sizeof(fz_ops), &fs);
	must(s != NULL, "zc_session_new");
	set_option(s, cfg & FZ_CFG_NOSPLICE ? "nosplice" : "splice");
	if (cfg & FZ_CFG_THRESHOLD_0)
		set_option(s, "splice_threshold=0");
	if (cfg & FZ_CFG_WRITEBACK)
		set_option(s, "writeback");
	if (cfg & FZ_CFG_CACHE_NEVER)
		set_option(s, "cache=never");
	if (cfg & FZ_CFG_PASSTHROUGH)
		set_option(s, "passthrough");
	set_option(s, cfg & FZ_CFG_DEFAULT_PERMS ? "default_permissions" : "nodefault_permissions");
	zc_session_set_single_threaded(s, 1);

	must(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0, "socketpair");
	/*
	 * Room for the largest reply (a 1 MiB READ) in one write: with less,
	 * the library's write blocks until a reader takes part of it, which
	 * send_one() then leaves to a thread of its own.
	 */
	small_socket = false;
	for (i = 0; i < 2; i++) {
		if (setsockopt(sv[i], SOL_SOCKET, SO_SNDBUFFORCE, &force, sizeof(force)) == 0 &&
		    setsockopt(sv[i], SOL_SOCKET, SO_RCVBUFFORCE, &force, sizeof(force)) == 0)
			continue;
		/* Without CAP_NET_ADMIN: a thread drains the replies instead. */
		must(errno == EPERM, "socket buffers");
		small_socket = true;
	}
	if (zc_session_connect(s, sv[1]) < 0)
		fail(zc_session_error(s), 0);
	w = zc_dev_worker_new(&s->chan);
	must(w != NULL, "zc_dev_worker_new");

	nr_interrupts = 0;
	interrupts_lost = false;
	send_init(sv[0], w, cfg & FZ_CFG_OLD_KERNEL);
	if (cfg & FZ_CFG_RING)
		ring_alloc(&s->chan.conn);
	while (size > 0) {
		uint32_t len = 0;
		uint8_t split = 0, skew = 0;

		if (cfg & FZ_CFG_RING) {
			if (size < 2)
				break;
			split = data[0];
			skew = data[1];
			data += 2;
			size -= 2;
			if (size == 0)
				break;
		}
		if (size >= sizeof(len))
			memcpy(&len, data, sizeof(len));
		if (len == 0 || len > size)
			len = (uint32_t)size;
		/*
		 * /dev/fuse never hands out more than the largest request, nor
		 * a request with unique 0: that value marks notifications.
		 */
		if (cfg & FZ_CFG_RING)
			ring_one(sv[0], s, data, len, split, (int8_t)skew);
		else if (len <= s->chan.bufsize && !unique_is_zero(data, len))
			send_one(sv[0], w, data, len);
		data += len;
		size -= len;
	}

	/* libfuse frees a pending INTERRUPT only when it answers it. */
	for (i = 0; (nr_interrupts || interrupts_lost) && i < FZ_INTERRUPTS + 1; i++) {
		struct fuse_in_header ping = { .len = sizeof(ping),
					       .opcode = FUSE_STATFS,
					       .unique = 1,
					       .nodeid = ZC_ROOT_INO };

		send_one(sv[0], w, &ping, sizeof(ping));
	}

	ring_free();
	zc_dev_worker_free(w);
	release_all(&ctx);
	zc_session_destroy(s); /* closes sv[1] */
	close(sv[0]);
	pt_fs_fini(&fs);
	return 0;
}
