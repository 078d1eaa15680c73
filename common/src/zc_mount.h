/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Mounting and unmounting, through libfuse3: a root mount with mount(2), a
 * user's through fusermount3, with libfuse's mount-option conventions. The
 * only file of the library that includes libfuse's headers; libfuse sees
 * no request.
 */
#ifndef ZC_MOUNT_H
#define ZC_MOUNT_H

#include <stdbool.h>
#include <stddef.h>

struct zc_mount;

/* What a mount is made with. */
struct zc_mount_args {
	/* fsname= (NULL: none) and subtype= (the type is fuse.SUBTYPE). */
	const char *fsname;
	const char *subtype;
	bool allow_other;
	bool default_permissions;
	/* Mount flags as libfuse's option names ("ro", "nosuid", ...). */
	const char *const *flags;
	size_t n_flags;
};

/* A mount-to-be from @args (*@ret_mount): 0, -ENOMEM, or -EINVAL when libfuse refuses them. */
int zc_mount_new(const struct zc_mount_args *args, struct zc_mount **ret_mount);

/*
 * Mount on @mountpoint: the /dev/fuse descriptor of the mount (the mount
 * keeps it: zc_mount_unmount() closes it), or -EIO.
 */
int zc_mount_mount(struct zc_mount *m, const char *mountpoint);

/* Unmount, if mounted; closes the descriptor. */
void zc_mount_unmount(struct zc_mount *m);

/* Free (NULL is ignored); unmount first. */
void zc_mount_free(struct zc_mount *m);

/* Go to the background as libfuse's daemons do: 0, or -EIO. */
int zc_mount_daemonize(void);

#endif /* ZC_MOUNT_H */
