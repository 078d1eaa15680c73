/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Mounting through libfuse3. A libfuse session is made only to mount: it
 * gets no operations and never reads the device; the library serves the
 * descriptor itself.
 */
#define FUSE_USE_VERSION 312

#include <errno.h>
#include <fuse_lowlevel.h>
#include <stdio.h>
#include <stdlib.h>

#include "zc_mount.h"

struct zc_mount {
	struct fuse_session *se;
	bool mounted;
};

static int add_opt(struct fuse_args *args, const char *opt)
{
	char *joined;
	int r;

	if (asprintf(&joined, "-o%s", opt) < 0)
		return -ENOMEM;
	r = fuse_opt_add_arg(args, joined);
	free(joined);
	return r ? -ENOMEM : 0;
}

/* Add "-o@name=@value" with the commas and backslashes in @value escaped. */
static int add_opt_escaped(struct fuse_args *args, const char *name, const char *value)
{
	char *esc = NULL, *opt;
	int r;

	if (fuse_opt_add_opt_escaped(&esc, value))
		return -ENOMEM;
	r = asprintf(&opt, "%s=%s", name, esc);
	free(esc);
	if (r < 0)
		return -ENOMEM;
	r = add_opt(args, opt);
	free(opt);
	return r;
}

static int mount_args(const struct zc_mount_args *a, struct fuse_args *args)
{
	size_t i;

	if (fuse_opt_add_arg(args, "zcfuse"))
		return -ENOMEM;
	if (a->fsname && add_opt_escaped(args, "fsname", a->fsname) < 0)
		return -ENOMEM;
	if (add_opt_escaped(args, "subtype", a->subtype) < 0)
		return -ENOMEM;
	if (a->allow_other && add_opt(args, "allow_other") < 0)
		return -ENOMEM;
	if (a->default_permissions && add_opt(args, "default_permissions") < 0)
		return -ENOMEM;
	for (i = 0; i < a->n_flags; i++)
		if (add_opt(args, a->flags[i]) < 0)
			return -ENOMEM;
	return 0;
}

int zc_mount_new(const struct zc_mount_args *a, struct zc_mount **ret_mount)
{
	static const struct fuse_lowlevel_ops no_ops;
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct zc_mount *m;
	int r;

	*ret_mount = NULL;
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	r = mount_args(a, &args);
	if (r == 0) {
		m->se = fuse_session_new(&args, &no_ops, sizeof(no_ops), NULL);
		if (!m->se)
			r = -EINVAL;
	}
	fuse_opt_free_args(&args);
	if (r < 0) {
		free(m);
		return r;
	}
	*ret_mount = m;
	return 0;
}

int zc_mount_mount(struct zc_mount *m, const char *mountpoint)
{
	if (fuse_session_mount(m->se, mountpoint) != 0)
		return -EIO;
	m->mounted = true;
	return fuse_session_fd(m->se);
}

void zc_mount_unmount(struct zc_mount *m)
{
	if (m && m->mounted) {
		fuse_session_unmount(m->se);
		m->mounted = false;
	}
}

void zc_mount_free(struct zc_mount *m)
{
	if (!m)
		return;
	zc_mount_unmount(m);
	fuse_session_destroy(m->se);
	free(m);
}

int zc_mount_daemonize(void)
{
	return fuse_daemonize(0) ? -EIO : 0;
}
