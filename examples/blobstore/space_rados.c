/* SPDX-License-Identifier: MIT */
/*
 * The block space on a Ceph RADOS pool, through librados: a store named
 * NAME in pool POOL (rados://POOL/NAME) is the objects
 *
 *     NAME.sb0, NAME.sb1       the two superblock slots
 *     NAME.%016llx             blocks [k * 1024, (k + 1) * 1024): 4 MiB each
 *
 * An object that was never written (or was removed because its blocks are
 * free) reads as zeros. The size of the space is kept in the superblock.
 * A write returns once RADOS acknowledged it, which means it is durable
 * on every replica, so sync() has nothing left to wait for and a commit
 * keeps the crash rule of blobstore.h. The pieces of one read or write
 * (and the objects a piece spans) are in flight together.
 *
 * One writer: the mount takes an exclusive lock (cls_lock, "blobstore")
 * on NAME.sb0 with a cookie naming the host and the PID, and a second
 * mount is refused. A lock whose holder on this host no longer runs (a
 * daemon that was killed) is broken, after its client is blocklisted. A
 * mount whose lock was broken by someone else finds its client
 * blocklisted: every operation then fails with -ESHUTDOWN, and from then
 * on the store refuses every write with EIO instead of writing.
 *
 * Timeouts: unless the configuration sets them, the connection gives up
 * after 10 s (client_mount_timeout) and an operation after 30 s
 * (rados_osd_op_timeout, rados_mon_op_timeout): a cluster that goes away
 * makes requests fail with EIO after at most that long.
 *
 * Compiled only with BS_HAVE_RADOS defined (and linked with -lrados), so
 * that the store builds with `cc *.c` where librados is not installed.
 */
#ifdef BS_HAVE_RADOS
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <rados/librados.h>
#include "blobstore.h"

#define OBJ_BYTES     (BS_UNIT_BLOCKS * BS_BLOCK)
#define LOCK_NAME     "blobstore"
#define OID_MAX	      (BS_NAME_MAX + 32)
#define MOUNT_TIMEOUT "10"
#define OP_TIMEOUT    "30"

struct rados_space {
	rados_t cluster;
	rados_ioctx_t io;
	char name[BS_NAME_MAX + 1];
	char cookie[128];
	bool connected, locked;
	bool fenced; /* the lock was lost: nothing is written any more */
};

static struct rados_space *space_of(struct bs_fs *fs)
{
	return fs->space_data;
}

static void oid_data(const struct rados_space *rs, uint64_t obj, char out[OID_MAX])
{
	snprintf(out, OID_MAX, "%s.%016" PRIx64, rs->name, obj);
}

static void oid_sb(const struct rados_space *rs, int slot, char out[OID_MAX])
{
	snprintf(out, OID_MAX, "%s.sb%d", rs->name, slot);
}

/* What a request sees of a librados error; a blocklisted client is fenced for good. */
static int io_error(struct rados_space *rs, int r)
{
	if (r == -ESHUTDOWN) /* EBLOCKLISTED: someone broke our lock */
		rs->fenced = true;
	if (r == -ESHUTDOWN || r == -ETIMEDOUT || r == -ENOTCONN || r == -ECONNREFUSED)
		return -EIO;
	return r;
}

/* One piece of an object in flight. */
struct flight {
	rados_completion_t c;
	char *buf;
	size_t len;
	rados_write_op_t op;
};

/* Wait for every piece started; the first error, or 0. Reads short of @len get zeros. */
static int land(struct rados_space *rs, struct flight *f, size_t n, bool read)
{
	int first = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		int r;

		rados_aio_wait_for_complete(f[i].c);
		r = rados_aio_get_return_value(f[i].c);
		rados_aio_release(f[i].c);
		if (f[i].op)
			rados_release_write_op(f[i].op);
		if (read && r == -ENOENT)
			r = 0;
		if (read && r >= 0 && (size_t)r < f[i].len)
			memset(f[i].buf + r, 0, f[i].len - (size_t)r);
		if (r == -ENOENT && !read)
			r = 0; /* removing or zeroing what is not there */
		if (r < 0 && !first)
			first = io_error(rs, r);
	}
	return first;
}

static size_t pieces(const struct bs_io *io, unsigned int n)
{
	size_t count = 0;
	unsigned int i;

	for (i = 0; i < n; i++)
		if (io[i].len)
			count +=
			    (io[i].off + io[i].len - 1) / OBJ_BYTES - io[i].off / OBJ_BYTES + 1;
	return count;
}

static int rados_rw(struct bs_fs *fs, const struct bs_io *io, unsigned int n, bool read)
{
	struct rados_space *rs = space_of(fs);
	size_t count = pieces(io, n), k = 0;
	struct flight *f;
	unsigned int i;
	int r = 0, landed;

	if (!read && rs->fenced)
		return -EIO;
	f = calloc(count ? count : 1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	for (i = 0; i < n && r == 0; i++) {
		uint64_t off = io[i].off;
		size_t done = 0;

		while (done < io[i].len && r == 0) {
			uint64_t in_obj = off % OBJ_BYTES;
			size_t len = io[i].len - done;
			char oid[OID_MAX];

			if (len > OBJ_BYTES - in_obj)
				len = (size_t)(OBJ_BYTES - in_obj);
			oid_data(rs, off / OBJ_BYTES, oid);
			f[k].buf = (char *)io[i].buf + done;
			f[k].len = len;
			r = rados_aio_create_completion(NULL, NULL, NULL, &f[k].c);
			if (r < 0)
				break;
			if (read)
				r = rados_aio_read(rs->io, oid, f[k].c, f[k].buf, len, in_obj);
			else
				r = rados_aio_write(rs->io, oid, f[k].c, f[k].buf, len, in_obj);
			if (r < 0) {
				rados_aio_release(f[k].c);
				break;
			}
			k++;
			done += len;
			off += len;
		}
	}
	r = r < 0 ? io_error(rs, r) : 0;
	landed = land(rs, f, k, read);
	free(f);
	return r ? r : landed;
}

static int rados_read_blocks(struct bs_fs *fs, const struct bs_io *io, unsigned int n)
{
	return rados_rw(fs, io, n, true);
}

static int rados_write_blocks(struct bs_fs *fs, const struct bs_io *io, unsigned int n)
{
	return rados_rw(fs, io, n, false);
}

/* Blocks [start, start + n) read as zeros: objects wholly inside are removed, the rest zeroed. */
static int rados_zero_blocks(struct bs_fs *fs, uint64_t start, uint64_t n)
{
	struct rados_space *rs = space_of(fs);
	uint64_t from = start * BS_BLOCK, to = (start + n) * BS_BLOCK;
	uint64_t first = from / OBJ_BYTES, last = (to - 1) / OBJ_BYTES, obj;
	struct flight *f;
	size_t k = 0;
	int r = 0, landed;

	if (rs->fenced)
		return -EIO;
	if (!n)
		return 0;
	f = calloc(last - first + 1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	for (obj = first; obj <= last && r == 0; obj++) {
		uint64_t a = obj * OBJ_BYTES > from ? obj * OBJ_BYTES : from;
		uint64_t b = (obj + 1) * OBJ_BYTES < to ? (obj + 1) * OBJ_BYTES : to;
		char oid[OID_MAX];

		oid_data(rs, obj, oid);
		r = rados_aio_create_completion(NULL, NULL, NULL, &f[k].c);
		if (r < 0)
			break;
		if (a == obj * OBJ_BYTES && b == (obj + 1) * OBJ_BYTES) {
			r = rados_aio_remove(rs->io, oid, f[k].c);
		} else {
			f[k].op = rados_create_write_op();
			if (!f[k].op) {
				r = -ENOMEM;
			} else {
				/* Zero only what exists: never create an object to hold zeros. */
				rados_write_op_assert_exists(f[k].op);
				rados_write_op_zero(f[k].op, a % OBJ_BYTES, b - a);
				r = rados_aio_write_op_operate(f[k].op, rs->io, f[k].c, oid, NULL,
							       0);
			}
		}
		if (r < 0) {
			if (f[k].op)
				rados_release_write_op(f[k].op);
			rados_aio_release(f[k].c);
			break;
		}
		k++;
	}
	r = r < 0 ? io_error(rs, r) : 0;
	landed = land(rs, f, k, false);
	free(f);
	return r ? r : landed;
}

/*
 * The space grows by whole objects. Objects past the old size can only be
 * left over from writes that were never committed: remove them.
 */
static int rados_grow(struct bs_fs *fs, uint64_t want)
{
	uint64_t total = (want + BS_UNIT_BLOCKS - 1) / BS_UNIT_BLOCKS * BS_UNIT_BLOCKS;
	uint64_t from = (fs->total_blocks + BS_UNIT_BLOCKS - 1) / BS_UNIT_BLOCKS * BS_UNIT_BLOCKS;
	int r;

	if (total > BS_MAX_BLOCKS)
		return -ENOSPC;
	if (total > from) {
		r = rados_zero_blocks(fs, from, total - from);
		if (r < 0)
			return r;
	}
	if (bs_runs_add(&fs->free, fs->total_blocks, total - fs->total_blocks) < 0)
		return -ENOMEM;
	fs->total_blocks = total;
	return 0;
}

/* Every write was acknowledged by RADOS before it returned: durable already. */
static int rados_sync(struct bs_fs *fs)
{
	return space_of(fs)->fenced ? -EIO : 0;
}

static int rados_read_sb(struct bs_fs *fs, int slot, void *buf, size_t len)
{
	struct rados_space *rs = space_of(fs);
	char oid[OID_MAX];
	int r;

	oid_sb(rs, slot, oid);
	r = rados_read(rs->io, oid, buf, len, 0);
	if (r == 0)
		return -ENOENT;
	if (r < 0)
		return io_error(rs, r);
	memset((char *)buf + r, 0, len - (size_t)r);
	return 0;
}

static int rados_write_sb(struct bs_fs *fs, int slot, const void *buf, size_t len)
{
	struct rados_space *rs = space_of(fs);
	char oid[OID_MAX];
	int r;

	if (rs->fenced)
		return -EIO;
	oid_sb(rs, slot, oid);
	r = rados_write_full(rs->io, oid, buf, len);
	return r < 0 ? io_error(rs, r) : 0;
}

/* What the cluster has left; a cluster without a manager reports nothing: the store's limit then. */
static int rados_avail(struct bs_fs *fs, uint64_t *ret_blocks)
{
	struct rados_space *rs = space_of(fs);
	struct rados_cluster_stat_t st;
	int r;

	r = rados_cluster_stat(rs->cluster, &st);
	if (r < 0)
		return io_error(rs, r);
	if (st.kb_avail)
		*ret_blocks = st.kb_avail * 1024 / BS_BLOCK;
	else
		*ret_blocks = BS_MAX_BLOCKS - fs->total_blocks;
	return 0;
}

static void rados_close(struct bs_fs *fs)
{
	struct rados_space *rs = space_of(fs);
	char oid[OID_MAX];

	if (!rs)
		return;
	if (rs->locked && !rs->fenced) {
		oid_sb(rs, 0, oid);
		rados_unlock(rs->io, oid, LOCK_NAME, rs->cookie);
	}
	if (rs->io)
		rados_ioctx_destroy(rs->io);
	if (rs->connected || rs->cluster)
		rados_shutdown(rs->cluster);
	free(rs);
	fs->space_data = NULL;
}

static const struct bs_space_ops bs_rados_space = {
	.read = rados_read_blocks,
	.write = rados_write_blocks,
	.zero = rados_zero_blocks,
	.grow = rados_grow,
	.sync = rados_sync,
	.read_sb = rados_read_sb,
	.write_sb = rados_write_sb,
	.avail = rados_avail,
	.close = rados_close,
};

/* ------------------------------------------------------------ opening */

/* Set a timeout unless the configuration (file, CEPH_ARGS) moved it from Ceph's default. */
static void default_timeout(rados_t cluster, const char *option, double ceph_default,
			    const char *ours)
{
	char val[64];

	if (rados_conf_get(cluster, option, val, sizeof(val)) == 0 &&
	    strtod(val, NULL) == ceph_default)
		rados_conf_set(cluster, option, ours);
}

/*
 * The client's name (without "client.") from CEPH_ARGS, as the Ceph tools
 * read it (--id ID, --id=ID, -i ID, --name client.ID, -n client.ID):
 * librados takes the name when the handle is made, before it parses
 * CEPH_ARGS, and a ceph.conf section of the client needs it when the file
 * is read. @buf holds the answer; NULL when CEPH_ARGS names no client.
 */
static const char *id_from_env(char *buf, size_t size)
{
	const char *env = getenv("CEPH_ARGS");
	char *copy, *tok, *save = NULL;
	const char *found = NULL, *want = NULL;

	if (!env || !(copy = strdup(env)))
		return NULL;
	for (tok = strtok_r(copy, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
		const char *val = NULL;

		if (want) {
			val = tok;
		} else if (!strcmp(tok, "--id") || !strcmp(tok, "-i") || !strcmp(tok, "--name") ||
			   !strcmp(tok, "-n")) {
			want = tok;
			continue;
		} else if (!strncmp(tok, "--id=", 5)) {
			val = tok + 5;
		} else if (!strncmp(tok, "--name=", 7)) {
			want = "-n";
			val = tok + 7;
		}
		if (val && want && (!strcmp(want, "--name") || !strcmp(want, "-n"))) {
			if (strncmp(val, "client.", 7))
				val = NULL;
			else
				val += 7;
		}
		want = NULL;
		if (val && val[0] && strlen(val) < size) {
			strcpy(buf, val);
			found = buf;
		}
	}
	free(copy);
	return found;
}

/* Split rados://POOL/NAME. */
static int parse_url(const char *url, char *pool, size_t pool_size, char *name, struct bs_err *err)
{
	const char *p = url + strlen("rados://"), *slash = strchr(p, '/');

	if (!slash || slash == p || !slash[1] || strchr(slash + 1, '/'))
		return bs_fail(err, "expected rados://POOL/NAME");
	if ((size_t)(slash - p) >= pool_size || strlen(slash + 1) > BS_NAME_MAX - 32)
		return bs_fail(err, "the pool or store name is too long");
	memcpy(pool, p, (size_t)(slash - p));
	pool[slash - p] = '\0';
	strcpy(name, slash + 1);
	return 0;
}

/* Is the lock's holder a process of this host that no longer runs? */
static bool holder_is_gone(const char *cookie, const char *host)
{
	const char *colon = strrchr(cookie, ':');
	char *end;
	long pid;

	if (!colon || (size_t)(colon - cookie) != strlen(host) ||
	    strncmp(cookie, host, strlen(host)))
		return false;
	pid = strtol(colon + 1, &end, 10);
	if (*end || pid <= 0 || pid == getpid())
		return false;
	return kill((pid_t)pid, 0) < 0 && errno == ESRCH;
}

/*
 * Take the lock; a lock held by a process of this host that is gone is
 * broken (its client blocklisted first, so that nothing of it lands late).
 */
static int take_lock(struct rados_space *rs, const char *host, struct bs_err *err)
{
	char oid[OID_MAX], tag[64], clients[256], cookies[256], addrs[256];
	size_t tag_len, clients_len, cookies_len, addrs_len;
	int exclusive, r, tries;

	oid_sb(rs, 0, oid);
	for (tries = 0; tries < 2; tries++) {
		r = rados_lock_exclusive(rs->io, oid, LOCK_NAME, rs->cookie, "blobstore mount",
					 NULL, 0);
		if (r == 0) {
			rs->locked = true;
			return 0;
		}
		if (r != -EBUSY && r != -EEXIST)
			return bs_fail(err, "cannot lock %s: %s", oid, strerror(-r));
		tag_len = sizeof(tag);
		clients_len = sizeof(clients);
		cookies_len = sizeof(cookies);
		addrs_len = sizeof(addrs);
		r = (int)rados_list_lockers(rs->io, oid, LOCK_NAME, &exclusive, tag, &tag_len,
					    clients, &clients_len, cookies, &cookies_len, addrs,
					    &addrs_len);
		if (r < 0)
			return bs_fail(err, "cannot list the lockers of %s: %s", oid, strerror(-r));
		if (r == 0)
			continue; /* unlocked meanwhile */
		if (!holder_is_gone(cookies, host))
			return bs_fail(err, "in use by another mount (%s, %s at %s)", cookies,
				       clients, addrs);
		rados_blocklist_add(rs->cluster, addrs, 0);
		r = rados_break_lock(rs->io, oid, LOCK_NAME, clients, cookies);
		if (r < 0 && r != -ENOENT)
			return bs_fail(err, "cannot break the lock of %s, whose holder is gone: %s",
				       cookies, strerror(-r));
	}
	return bs_fail(err, "cannot lock %s", oid);
}

/* Does superblock slot @slot hold anything? 1, 0, or -errno. */
static int sb_exists(struct rados_space *rs, int slot)
{
	char oid[OID_MAX];
	uint64_t size;
	time_t mtime;
	int r;

	oid_sb(rs, slot, oid);
	r = rados_stat(rs->io, oid, &size, &mtime);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	return size > 0;
}

int bs_open_rados(struct bs_fs *fs, const char *url, const struct bs_rados_opts *opts,
		  struct bs_err *err)
{
	struct rados_space *rs;
	char pool[256], host[64], mon[256], env_id[128];
	const char *id = opts->id;
	int r, have0, have1;

	fs->path = url;
	fs->fd = -1;
	rs = calloc(1, sizeof(*rs));
	if (!rs)
		return bs_fail(err, "out of memory");
	fs->space = &bs_rados_space;
	fs->space_data = rs;
	fs->sized_by_sb = true;
	if (parse_url(url, pool, sizeof(pool), rs->name, err) < 0)
		return -1;
	if (!id)
		id = id_from_env(env_id, sizeof(env_id));
	r = rados_create(&rs->cluster, id);
	if (r < 0)
		return bs_fail(err, "cannot create a Ceph client: %s", strerror(-r));
	r = rados_conf_read_file(rs->cluster, opts->conf);
	if (r < 0)
		return bs_fail(err, "cannot read %s: %s", opts->conf ? opts->conf : "ceph.conf",
			       strerror(-r));
	r = rados_conf_parse_env(rs->cluster, NULL);
	if (r < 0)
		return bs_fail(err, "bad CEPH_ARGS: %s", strerror(-r));
	default_timeout(rs->cluster, "client_mount_timeout", 300, MOUNT_TIMEOUT);
	default_timeout(rs->cluster, "rados_osd_op_timeout", 0, OP_TIMEOUT);
	default_timeout(rs->cluster, "rados_mon_op_timeout", 0, OP_TIMEOUT);
	if (rados_conf_get(rs->cluster, "mon_host", mon, sizeof(mon)) < 0 || !mon[0])
		strcpy(mon, "no mon_host configured");
	r = rados_connect(rs->cluster);
	if (r < 0)
		return bs_fail(err, "cannot connect to the cluster (%s): %s", mon, strerror(-r));
	rs->connected = true;
	r = rados_ioctx_create(rs->cluster, pool, &rs->io);
	if (r < 0)
		return bs_fail(err, "pool %s: %s", pool,
			       r == -ENOENT ? "no such pool" : strerror(-r));
	if (gethostname(host, sizeof(host)) < 0)
		strcpy(host, "localhost");
	host[sizeof(host) - 1] = '\0';
	snprintf(rs->cookie, sizeof(rs->cookie), "%s:%ld", host, (long)getpid());
	if (take_lock(rs, host, err) < 0)
		return -1;
	have0 = sb_exists(rs, 0);
	have1 = sb_exists(rs, 1);
	if (have0 < 0 || have1 < 0)
		return bs_fail(err, "cannot read the superblocks: %s",
			       strerror(-(have0 < 0 ? have0 : have1)));
	return bs_open_space(fs, !have0 && !have1, 0, err);
}
#endif /* BS_HAVE_RADOS */
