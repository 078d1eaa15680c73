/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The caller of a request: its ids, groups and capabilities, as the
 * backend sees them in struct zc_ctx, and what the library does in its
 * name (clearing setuid and setgid as the kernel would).
 */
#include <errno.h>
#include <linux/capability.h>
#include <linux/fuse.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "zc_backend.h"
#include "zc_chan.h"
#include "zc_ctx.h"
#include "zc_opts.h"
#include "zc_proto.h"
#include "zc_req.h"
#include "zc_util.h"

void zc_ctx_from_req(struct zc_ctx *ctx, struct zc_req *req, mode_t umask)
{
	const struct fuse_in_header *hdr = req->hdr;

	ctx->userdata = req->chan->backend->userdata;
	ctx->uid = hdr->uid;
	ctx->gid = hdr->gid;
	ctx->pid = (pid_t)hdr->pid;
	ctx->umask = umask;
	ctx->priv = req;
}

/* The connection a context was made on. */
static const struct zc_chan *ctx_chan(const struct zc_ctx *ctx)
{
	const struct zc_req *req = ctx->priv;

	return req ? req->chan : NULL;
}

/*
 * The request @ctx was made for, while its operation runs: same caller
 * (a backend calls this from its operation). A request kept for a reply
 * from another thread no longer has its arguments.
 */
ZC_EXPORT int zc_ctx_create_group(const struct zc_ctx *ctx, gid_t *ret_gid)
{
	const struct zc_req *req = ctx->priv;

	*ret_gid = (gid_t)-1;
	if (!req || req->kept || !req->hdr || ctx->pid != (pid_t)req->hdr->pid ||
	    ctx->uid != req->hdr->uid || ctx->gid != req->hdr->gid || req->create_group < 0)
		return -ENODATA;
	if (req->create_group)
		*ret_gid = req->create_gid;
	return req->create_group;
}

/* Supplementary groups of thread @pid, from /proc, as libfuse reads them. */
static int proc_groups(pid_t pid, gid_t *list, int size)
{
	char path[64], *line = NULL, *p, *end;
	size_t cap = 0;
	int n = -ESRCH;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/status", (int)pid, (int)pid);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (getline(&line, &cap, f) > 0) {
		if (strncmp(line, "Groups:", 7))
			continue;
		n = 0;
		for (p = line + 7;; p = end) {
			unsigned long g = strtoul(p, &end, 10);

			if (end == p)
				break;
			if (n < size)
				list[n] = (gid_t)g;
			n++;
		}
		break;
	}
	free(line);
	fclose(f);
	return n;
}

ZC_EXPORT int zc_ctx_getgroups(const struct zc_ctx *ctx, gid_t *list, int size)
{
	if (!ctx->priv)
		return -ENOSYS;
	return proc_groups(ctx->pid, list, size);
}

/* The inode of the user namespace of thread @tid (0: this thread). */
static int userns_ino(pid_t tid, ino_t *ret)
{
	char path[64];
	struct stat st;

	if (tid > 0)
		snprintf(path, sizeof(path), "/proc/%d/ns/user", (int)tid);
	else
		snprintf(path, sizeof(path), "/proc/thread-self/ns/user");
	if (stat(path, &st) < 0)
		return -errno;
	*ret = st.st_ino;
	return 0;
}

/*
 * capget() reads a thread's own credentials, while the request carries the
 * ones it acts with, which the kernel may have put in their place for a
 * while (access() of a setuid program checks the real uid, without
 * capabilities; nfsd acts for its clients). The capabilities are the
 * caller's only when its own fsuid and fsgid are those of the request:
 * 1 when they are, 0 when not, or a negative errno.
 */
static int creds_are_the_headers(const struct zc_ctx *ctx)
{
	char path[64], buf[4096], *line;
	unsigned long ids[4];
	bool uid_ok = false, gid_ok = false;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)ctx->pid);
	n = zc_read_small_file(path, buf, sizeof(buf));
	if (n < 0)
		return (int)n;
	for (line = buf; line && *line; line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
		bool uid = !strncmp(line, "Uid:", 4), gid = !strncmp(line, "Gid:", 4);

		if ((!uid && !gid) ||
		    sscanf(line + 4, "%lu %lu %lu %lu", &ids[0], &ids[1], &ids[2], &ids[3]) != 4)
			continue;
		if (uid)
			uid_ok = ids[3] == ctx->uid; /* the fsuid */
		else
			gid_ok = ids[3] == ctx->gid;
	}
	return uid_ok && gid_ok;
}

/*
 * The calling thread's effective capabilities, read with capget() on the
 * thread id the request names (the thread waits for the reply, so the id is
 * its own). Capabilities held in another user namespace (unshare -U by a
 * user) do not reach the daemon's files: they count as none.
 */
ZC_EXPORT int zc_ctx_get_capabilities(const struct zc_ctx *ctx, uint64_t *ret_effective)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	/* Zeroed: valgrind takes capget() to fill the first element only. */
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = { 0 };
	static ino_t own_ns;
	ino_t ns = 0, own;
	int r;

	*ret_effective = 0;
	if (ctx->pid <= 0)
		return -ESRCH;
	hdr.pid = ctx->pid;
	if (syscall(SYS_capget, &hdr, data) < 0)
		return -errno;
	*ret_effective = (uint64_t)data[1].effective << 32 | data[0].effective;
	/*
	 * A caller that is uid 0 here is the daemon's namespace's root (only a
	 * namespace made by a privileged creator maps it): its capabilities
	 * count as they are, which saves two looks at /proc on its requests.
	 * (Acting as root for a while, it shows its own capabilities, fewer
	 * or as many.)
	 */
	if (!*ret_effective || ctx->uid == 0)
		return 0;
	own = __atomic_load_n(&own_ns, __ATOMIC_RELAXED);
	if (!own) {
		r = userns_ino(0, &own);
		if (r < 0)
			goto none;
		__atomic_store_n(&own_ns, own, __ATOMIC_RELAXED);
	}
	r = userns_ino(ctx->pid, &ns);
	if (r < 0 || ns != own)
		goto none;
	r = creds_are_the_headers(ctx);
	if (r <= 0)
		goto none;
	return 0;
none:
	*ret_effective = 0;
	return r < 0 ? r : 0;
}

bool zc_ctx_capable(const struct zc_ctx *ctx, int cap)
{
	uint64_t eff;

	return zc_ctx_get_capabilities(ctx, &eff) == 0 && (eff & (1ULL << cap));
}

bool zc_ctx_in_group(const struct zc_ctx *ctx, gid_t gid)
{
	gid_t groups[64], *list = groups;
	bool in = false;
	int n, i;

	if (ctx->gid == gid)
		return true;
	n = zc_ctx_getgroups(ctx, groups, 64);
	if (n > 64) {
		list = calloc((size_t)n, sizeof(*list));
		n = list ? zc_ctx_getgroups(ctx, list, n) : -ENOMEM;
	}
	for (i = 0; i < n; i++)
		in = in || list[i] == gid;
	if (list != groups)
		free(list);
	return in;
}

ZC_EXPORT int zc_ctx_kernel_checks_permissions(const struct zc_ctx *ctx)
{
	const struct zc_chan *c = ctx_chan(ctx);

	return c ? zc_opts_default_permissions(c->opts) : 0;
}

/*
 * With FUSE_HANDLE_KILLPRIV_V2 the kernel leaves it to the server to clear
 * setuid and setgid after a write, truncate or O_TRUNC open by a caller
 * without CAP_FSETID, and after every chown, as file_remove_privs() and
 * chown would: setuid always, setgid when group-executable or when the
 * caller is neither in the file's group nor holds CAP_FSETID
 * (setattr_should_drop_sgid()). (The backing file system drops
 * capabilities itself when the daemon writes or truncates.)
 */
void zc_kill_suid_sgid(struct zc_chan *c, const struct zc_ctx *ctx, zc_ino_t ino, uint64_t fh)
{
	const struct zc_backend_ops *ops = &c->backend->ops;
	struct stat st, out;
	mode_t kill = 0;

	if (!ops->getattr || !ops->setattr || ops->getattr(ctx, ino, fh, &st) < 0)
		return;
	if (st.st_mode & S_ISUID)
		kill |= S_ISUID;
	if ((st.st_mode & S_ISGID) &&
	    ((st.st_mode & S_IXGRP) ||
	     (!zc_ctx_in_group(ctx, st.st_gid) && !zc_ctx_capable(ctx, CAP_FSETID))))
		kill |= S_ISGID;
	if (!kill)
		return;
	st.st_mode &= ~kill;
	if (ops->setattr(ctx, ino, fh, &st, ZC_SET_ATTR_MODE | ZC_SET_ATTR_KILL_SUIDGID, &out) == 0)
		zc_notify_attr_changed(c, ino);
}

/*
 * The backend changed attributes of @ino that the kernel may have cached
 * (a mode cleared on its behalf): drop them, so the next stat() asks.
 */
void zc_notify_attr_changed(struct zc_chan *c, zc_ino_t ino)
{
	if (c->dev_fd >= 0 && zc_opts_attr_timeout(c->opts) > 0 && c->conn.minor >= 12)
		zc_notify_inval_inode(c->dev_fd, ino, -1, 0, &c->stats);
}
