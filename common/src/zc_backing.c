/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Kernel passthrough (-o passthrough): an open regular file whose backend
 * offers a backing descriptor is registered with the kernel
 * (FUSE_DEV_IOC_BACKING_OPEN) and opened with FOPEN_PASSTHROUGH, so its
 * reads, writes, splice and mmap go to the backing file without reaching
 * the daemon. The kernel wants every open of one inode in the same mode and
 * on the same backing file, so backing ids are kept per inode, shared by
 * all its opens, and closed when the last one is released. Opens that cannot
 * be served so take the pipe path and count why.
 */
#include <errno.h>
#include <linux/capability.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuse_kernel_ext.h"
#include "zc_backing.h"
#include "zc_chan.h"
#include "zc_notice.h"
#include "zc_opts.h"
#include "zc_util.h"

struct zc_backing_node {
	uint64_t ino;
	int32_t backing_id; /* 0: this inode's opens are not in passthrough */
	uint32_t opens;
	uint32_t writers; /* opens for writing among them */
	struct zc_backing_node *next;
};

/* A mount's kernel passthrough: why it is off, and the backing ids per inode. */
struct zc_backing {
	enum zc_backing_refused refused;
	bool warned[ZC_BACKING_FALLBACK_NR];
	pthread_mutex_t lock;
	/* NULL when passthrough cannot be had (the daemon lacks CAP_SYS_ADMIN). */
	struct zc_backing_node **buckets;
	size_t nr_buckets;
	size_t count;
	/* Opens for writing over all nodes: 0 spares every reply the lookup. */
	unsigned int writers;
};

int zc_backing_setup(struct zc_chan *c)
{
	struct zc_backing *t;

	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	pthread_mutex_init(&t->lock, NULL);
	c->backing = t;
	if (!zc_has_capability(CAP_SYS_ADMIN)) {
		t->refused = ZC_BACKING_REFUSED_PERMISSION;
		return 0;
	}
	t->nr_buckets = 64;
	t->buckets = calloc(t->nr_buckets, sizeof(*t->buckets));
	if (!t->buckets)
		return -ENOMEM;
	c->want_flags2 |= ZC_FUSE_PASSTHROUGH;
	return 0;
}

void zc_backing_refuse(struct zc_chan *c, enum zc_backing_refused why)
{
	if (c->backing && c->backing->refused == ZC_BACKING_REFUSED_NONE)
		c->backing->refused = why;
}

/* Passthrough was asked for, may be used, and the kernel offers it at INIT (@kernel_flags2). */
bool zc_backing_offered(const struct zc_chan *c, uint32_t kernel_flags2)
{
	return c->backing && c->backing->refused == ZC_BACKING_REFUSED_NONE &&
	       (c->want_flags2 & kernel_flags2 & ZC_FUSE_PASSTHROUGH);
}

void zc_backing_fini(struct zc_chan *c)
{
	struct zc_backing *t = c->backing;
	struct zc_backing_node *n, *next;
	size_t i;

	if (!t)
		return;
	for (i = 0; i < t->nr_buckets; i++) {
		for (n = t->buckets[i]; n; n = next) {
			next = n->next;
			free(n);
		}
	}
	pthread_mutex_destroy(&t->lock);
	free(t->buckets);
	free(t);
	c->backing = NULL;
}

static const char *refused_reason(enum zc_backing_refused why)
{
	switch (why) {
	case ZC_BACKING_REFUSED_PERMISSION:
		return "the daemon lacks CAP_SYS_ADMIN, which registering backing files needs";
	case ZC_BACKING_REFUSED_WRITEBACK:
		return "writeback caching is on, and the kernel allows passthrough only without it";
	case ZC_BACKING_REFUSED_KERNEL:
		return "the kernel did not offer it (Linux 6.9 or later with "
		       "CONFIG_FUSE_PASSTHROUGH is needed)";
	case ZC_BACKING_REFUSED_NONE:
		break;
	}
	return "unknown";
}

void zc_backing_negotiated(struct zc_chan *c)
{
	if (c->backing && (c->conn.flags2 & ZC_FUSE_PASSTHROUGH) &&
	    c->opts->passthrough_choice == ZC_PASSTHROUGH_AUTO)
		zc_notify(c->notifier,
			  "passthrough: the kernel reads and writes open files straight "
			  "from their backing files, since it allows it%s (-o "
			  "nopassthrough for the daemon's data path)",
			  c->opts->cache == ZC_CACHE_AUTO && !c->opts->direct_io
			      ? "; read-only opens use the mount's page cache"
			      : "");
	if (c->backing && !(c->conn.flags2 & ZC_FUSE_PASSTHROUGH))
		zc_notify(
		    c->notifier, "passthrough is off for this mount: %s; files use the %s path",
		    refused_reason(c->backing->refused), c->policy.splice ? "splice" : "copy");
}

static enum zc_stat_backing_fallback refused_cause(enum zc_backing_refused why)
{
	switch (why) {
	case ZC_BACKING_REFUSED_PERMISSION:
		return ZC_BACKING_FALLBACK_NOT_PERMITTED;
	case ZC_BACKING_REFUSED_WRITEBACK:
		return ZC_BACKING_FALLBACK_WRITEBACK;
	default:
		return ZC_BACKING_FALLBACK_KERNEL;
	}
}

static struct zc_backing_node **backing_slot(struct zc_backing *t, uint64_t ino)
{
	struct zc_backing_node **p =
	    &t->buckets[(ino * 0x9E3779B97F4A7C15ULL) >> 40 & (t->nr_buckets - 1)];

	while (*p && (*p)->ino != ino)
		p = &(*p)->next;
	return p;
}

static void backing_grow(struct zc_backing *t)
{
	struct zc_backing_node **old = t->buckets, *n, *next;
	size_t old_nr = t->nr_buckets, i;

	t->buckets = calloc(old_nr * 2, sizeof(*t->buckets));
	if (!t->buckets) {
		t->buckets = old; /* stay at this size: chains get longer */
		return;
	}
	t->nr_buckets = old_nr * 2;
	for (i = 0; i < old_nr; i++) {
		for (n = old[i]; n; n = next) {
			struct zc_backing_node **slot = backing_slot(t, n->ino);

			next = n->next;
			n->next = NULL;
			*slot = n;
		}
	}
	free(old);
}

/* Register @fd with the kernel: a backing id, or a negative errno. */
static int backing_open(struct zc_chan *c, int fd)
{
	struct zc_fuse_backing_map map = { .fd = fd };
	int id = ioctl(c->dev_fd, ZC_FUSE_DEV_IOC_BACKING_OPEN, &map);

	return id < 0 ? -errno : id;
}

/* Say once per cause why files of this mount are not passed through. */
static void warn_once(struct zc_chan *c, enum zc_stat_backing_fallback cause, int err)
{
	static const char *const what[ZC_BACKING_FALLBACK_NR] = {
		[ZC_BACKING_FALLBACK_NOT_PERMITTED] =
		    "the kernel refused to register a backing file",
		[ZC_BACKING_FALLBACK_STACK_DEPTH] = "a backing file lives on a stacked file system "
						    "(overlayfs, FUSE) too deep to pass through",
		[ZC_BACKING_FALLBACK_IOCTL] = "registering a backing file failed",
		[ZC_BACKING_FALLBACK_NO_BACKING] =
		    "the backend offers no backing file for some files",
		[ZC_BACKING_FALLBACK_SETID] = "setuid and setgid files are served by the daemon, "
					      "which clears those bits on write",
		[ZC_BACKING_FALLBACK_MODE_CONFLICT] = "a file was opened again while open without "
						      "passthrough",
	};

	zc_stat_add(&c->stats.backing_fallbacks[cause], 1);
	if (!what[cause] || __atomic_exchange_n(&c->backing->warned[cause], true, __ATOMIC_RELAXED))
		return;
	if (err)
		zc_notify(c->notifier, "passthrough: %s (%s); such files use the %s path",
			  what[cause], strerror(-err), c->policy.splice ? "splice" : "copy");
	else
		zc_notify(c->notifier, "passthrough: %s; such files use the %s path", what[cause],
			  c->policy.splice ? "splice" : "copy");
}

int32_t zc_backing_open(struct zc_chan *c, uint64_t ino, int backing_fd, bool cache, bool writable)
{
	struct zc_backing *t = c->backing;
	enum zc_stat_backing_fallback cause;
	struct zc_backing_node **slot, *n;
	struct stat st;
	int32_t id = 0;
	int r;

	if (!t)
		return 0;
	if (!(c->conn.flags2 & ZC_FUSE_PASSTHROUGH) || !t->buckets) {
		zc_stat_add(&c->stats.backing_fallbacks[refused_cause(t->refused)], 1);
		return 0;
	}
	pthread_mutex_lock(&t->lock);
	slot = backing_slot(t, ino);
	n = *slot;
	if (!n) {
		n = calloc(1, sizeof(*n));
		if (!n) {
			pthread_mutex_unlock(&t->lock);
			zc_stat_add(&c->stats.backing_fallbacks[ZC_BACKING_FALLBACK_IOCTL], 1);
			return -ENOMEM;
		}
		n->ino = ino;
		*slot = n;
		if (++t->count > t->nr_buckets)
			backing_grow(t);
	}
	n->opens++;
	n->writers += writable;
	__atomic_store_n(&t->writers, t->writers + writable, __ATOMIC_RELEASE);
	if (n->backing_id > 0) {
		id = n->backing_id;
		goto out;
	}
	if (cache) {
		pthread_mutex_unlock(&t->lock);
		zc_stat_add(&c->stats.backing_cached_opens, 1);
		return 0;
	}
	/* The open's own reasons first, then a conflict with the inode's other opens. */
	if (backing_fd < 0 || fstat(backing_fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		cause = ZC_BACKING_FALLBACK_NO_BACKING;
		goto fallback;
	}
	/*
	 * The kernel writes a passthrough file with the daemon's credentials,
	 * so a write would not clear setuid and setgid as file_remove_privs()
	 * does for the caller: such files take the pipe path, where the
	 * daemon clears them.
	 */
	if (st.st_mode & (S_ISUID | S_ISGID)) {
		cause = ZC_BACKING_FALLBACK_SETID;
		goto fallback;
	}
	/*
	 * Open already without passthrough: the kernel keeps one mode per
	 * inode and would fail this open with EIO. The kernel sends RELEASE
	 * after close() returns, so the other open may be closed already; the
	 * daemon cannot tell, and this open takes the pipe path all the same.
	 */
	if (n->opens > 1) {
		cause = ZC_BACKING_FALLBACK_MODE_CONFLICT;
		goto fallback;
	}
	r = backing_open(c, backing_fd);
	if (r > 0) {
		n->backing_id = id = r;
		zc_stat_add(&c->stats.backing_ids, 1);
		goto out;
	}
	cause = r == -EPERM   ? ZC_BACKING_FALLBACK_NOT_PERMITTED
		: r == -ELOOP ? ZC_BACKING_FALLBACK_STACK_DEPTH
			      : ZC_BACKING_FALLBACK_IOCTL;
	pthread_mutex_unlock(&t->lock);
	warn_once(c, cause, r ? r : -EIO);
	return 0;
fallback:
	pthread_mutex_unlock(&t->lock);
	warn_once(c, cause, 0);
	return 0;
out:
	pthread_mutex_unlock(&t->lock);
	zc_stat_add(&c->stats.backing_opens, 1);
	return id;
}

/*
 * An inode in passthrough with an open for writing: a shared mapping may
 * have changed its data and times on the backing file, which neither the
 * kernel's FUSE inode nor the daemon hears of.
 */
bool zc_backing_written_behind(struct zc_chan *c, uint64_t ino)
{
	struct zc_backing *t = c->backing;
	struct zc_backing_node *n;
	bool written;

	if (!t || !t->buckets || !(c->conn.flags2 & ZC_FUSE_PASSTHROUGH) ||
	    !__atomic_load_n(&t->writers, __ATOMIC_ACQUIRE))
		return false;
	pthread_mutex_lock(&t->lock);
	n = *backing_slot(t, ino);
	written = n && n->backing_id > 0 && n->writers > 0;
	pthread_mutex_unlock(&t->lock);
	return written;
}

bool zc_backing_release(struct zc_chan *c, uint64_t ino, bool writable)
{
	struct zc_backing *t = c->backing;
	struct zc_backing_node **slot, *n;
	bool written;
	uint32_t id;

	if (!t || !t->buckets || !(c->conn.flags2 & ZC_FUSE_PASSTHROUGH))
		return false;
	pthread_mutex_lock(&t->lock);
	slot = backing_slot(t, ino);
	n = *slot;
	if (!n) {
		pthread_mutex_unlock(&t->lock);
		return false;
	}
	written = n->backing_id > 0 && writable;
	if (writable && n->writers) {
		n->writers--;
		__atomic_store_n(&t->writers, t->writers - 1, __ATOMIC_RELEASE);
	}
	if (--n->opens) {
		pthread_mutex_unlock(&t->lock);
		return written;
	}
	*slot = n->next;
	t->count--;
	pthread_mutex_unlock(&t->lock);
	/* The kernel keeps its own reference while the inode uses the file. */
	if (n->backing_id > 0) {
		id = (uint32_t)n->backing_id;
		ioctl(c->dev_fd, ZC_FUSE_DEV_IOC_BACKING_CLOSE, &id);
	}
	free(n);
	return written;
}
