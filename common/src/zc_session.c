/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Session life cycle: mount checks, the request loop, unmount. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/capability.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "zc_backing.h"
#include "zc_dev.h"
#include "zc_mount.h"
#include "zc_uring.h"
#include "zc_util.h"
#include "zc_waiter.h"
#include "zcfuse_i.h"

ZC_EXPORT void zc_session_set_option_handler(struct zc_session *s, zc_option_fn fn, void *data)
{
	s->option_fn = fn;
	s->option_data = data;
}

ZC_EXPORT const char *zc_version(void)
{
	return ZCFUSE_VERSION_STRING;
}

ZC_EXPORT struct zc_session *zc_session_new(const struct zc_backend_ops *ops, size_t ops_size,
					    void *userdata)
{
	struct zc_session *s;
	size_t i;

	if (!ops) {
		errno = EINVAL;
		return NULL;
	}
	/* Built against a newer header: only if it sets nothing this library lacks. */
	for (i = sizeof(struct zc_backend_ops); i < ops_size; i++) {
		if (((const unsigned char *)ops)[i]) {
			errno = EOPNOTSUPP;
			return NULL;
		}
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	pthread_mutex_init(&s->loop_lock, NULL);
	/* Operations past the caller's struct size stay NULL. */
	memcpy(&s->backend.ops, ops,
	       ops_size < sizeof(s->backend.ops) ? ops_size : sizeof(s->backend.ops));
	s->backend.userdata = userdata;
	s->opts.cache = ZC_CACHE_AUTO;
	s->opts.default_permissions = -1;
	s->opts.mount_flags = MS_NOSUID | MS_NODEV;
	s->opts.threads = 10;
	s->opts.writeback_ratio = ZC_WRITEBACK_RATIO_DEFAULT;
	s->opts.splice = true;
	s->opts.splice_threshold = ZC_SPLICE_THRESHOLD_DEFAULT;
	s->opts.uring.depth = ZC_URING_DEPTH_DEFAULT;
	s->opts.uring.pin = true;
	s->opts.uring.idle = true;
	return s;
}

ZC_EXPORT int zc_session_set_fsname(struct zc_session *s, const char *fsname)
{
	char *copy = strdup(fsname);

	if (!copy)
		return -ENOMEM;
	free(s->fsname);
	s->fsname = copy;
	return 0;
}

ZC_EXPORT void zc_session_set_debug(struct zc_session *s, int debug)
{
	s->opts.debug = debug;
}

ZC_EXPORT void zc_session_set_single_threaded(struct zc_session *s, int single)
{
	s->opts.single_threaded = single;
}

ZC_EXPORT void zc_session_set_features(struct zc_session *s, unsigned int features)
{
	s->backend.features =
	    features & (ZC_FEATURE_DONT_MASK | ZC_FEATURE_POSIX_ACL | ZC_FEATURE_OPEN_FLAGS_IN);
}

/* Undo the octal escapes of /proc/self/mountinfo (\040 for a space, ...). */
static void mountinfo_unescape(char *str)
{
	char *in = str, *out = str;

	while (*in) {
		if (in[0] == '\\' && in[1] >= '0' && in[1] <= '3' && in[2] >= '0' && in[2] <= '7' &&
		    in[3] >= '0' && in[3] <= '7') {
			*out++ = (char)((in[1] - '0') * 64 + (in[2] - '0') * 8 + (in[3] - '0'));
			in += 4;
		} else {
			*out++ = *in++;
		}
	}
	*out = '\0';
}

/*
 * 1 when @path (canonical) is a mount point, 0 when not, -errno on error.
 * @ret_fstype (may be NULL) gets the type of the mount on top there, and
 * @ret_dev (may be NULL) its device number.
 */
static int is_mount_point(const char *path, char *ret_fstype, size_t size, dev_t *ret_dev)
{
	char *line = NULL;
	size_t cap = 0;
	int found = 0;
	FILE *f;

	f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return -errno;
	while (getline(&line, &cap, f) > 0) {
		char *save = NULL, *field;
		unsigned int major = 0, minor = 0;
		int i;

		/*
		 * Field 3 is the device (MAJOR:MINOR), field 5 the mount point;
		 * the type follows the "-" after the optional fields.
		 */
		field = strtok_r(line, " ", &save);
		for (i = 1; field && i < 5; i++) {
			field = strtok_r(NULL, " ", &save);
			if (field && i == 2 && sscanf(field, "%u:%u", &major, &minor) != 2)
				major = minor = 0;
		}
		if (!field)
			continue;
		mountinfo_unescape(field);
		if (strcmp(field, path))
			continue;
		found = 1;
		if (ret_dev)
			*ret_dev = makedev(major, minor);
		while ((field = strtok_r(NULL, " ", &save)) && strcmp(field, "-"))
			;
		field = field ? strtok_r(NULL, " ", &save) : NULL;
		if (ret_fstype)
			snprintf(ret_fstype, size, "%s", field ? field : "");
	}
	free(line);
	fclose(f);
	return found;
}

/* The mount-to-be, with the options' names, flags and permissions. */
static int session_create(struct zc_session *s)
{
	/* Type fuse.PROGRAM: what mount.fuse3 runs again for mount -o remount. */
	const char *subtype = s->opts.subtype ? s->opts.subtype : program_invocation_short_name;
	const char *flags[16];
	struct zc_mount_args args = {
		.fsname = s->opts.fsname ? s->opts.fsname : s->fsname,
		.allow_other = s->opts.allow_other,
		.default_permissions = zc_opts_default_permissions(&s->opts),
		.flags = flags,
	};
	int r;

	args.subtype = subtype && *subtype ? subtype : "zcfuse";
	/* Every flag said either way: libfuse's defaults (nosuid, nodev) are ours already. */
	args.n_flags = zc_opts_libfuse_flags(&s->opts, flags, sizeof(flags) / sizeof(flags[0]));
	r = zc_mount_new(&args, &s->mnt);
	if (r == -ENOMEM)
		zc_set_error(s, "out of memory");
	else if (r < 0)
		zc_set_error(s, "cannot create the FUSE session");
	return r;
}

/*
 * FUSE over io_uring, asked for or by default. By default the one line
 * says which transport the mount uses and why; asked for, only a refusal
 * is worth a line (and with io_uring=strict, an exit).
 */
static int session_prepare_ring(struct zc_session *s)
{
	bool by_default = s->opts.io_uring == ZC_URING_AUTO;
	char why[256];
	int r;

	r = zc_uring_setup(&s->chan, &s->opts.uring, why, sizeof(why));
	if (r == -EOPNOTSUPP && by_default) {
		zc_notice(s, "transport: /dev/fuse, since io_uring is not available: %s", why);
		return 0;
	}
	if (r == -EOPNOTSUPP && !s->opts.uring.strict) {
		/* The one line that says why; the mount goes on without it. */
		zc_notice(s, "io_uring: %s; requests go through /dev/fuse", why);
		return 0;
	}
	if (r == -EOPNOTSUPP) {
		zc_set_error(s, "io_uring=strict: %s", why);
		return r;
	}
	if (r < 0) {
		zc_set_error(s, "cannot set up io_uring: %s", strerror(-r));
		return r;
	}
	if (by_default)
		zc_notice(s, "transport: FUSE over io_uring, since the kernel allows it "
			     "(-o noio_uring for /dev/fuse)");
	return 0;
}

/*
 * passthrough=auto (zcfuse's default): kernel passthrough where the daemon
 * may register backing files, unless direct_io (every read and write to
 * the daemon) was asked for. Beside writeback it wins, as passthrough does
 * (zc_init()): its files are cached, written back, by their own page cache.
 * One line says why not here; the kernel's answer at INIT says the rest
 * (zc_backing_negotiated()).
 */
static void session_resolve_passthrough(struct zc_session *s)
{
	const char *why = NULL;

	s->opts.passthrough = s->opts.passthrough_choice == ZC_PASSTHROUGH_ON;
	if (s->opts.passthrough_choice != ZC_PASSTHROUGH_AUTO)
		return;
	if (s->opts.direct_io)
		why = "direct_io was asked for";
	else if (!zc_has_capability(CAP_SYS_ADMIN))
		why = "the daemon lacks CAP_SYS_ADMIN, which registering backing files needs";
	if (why) {
		zc_notice(s, "passthrough: off, since %s (the daemon serves reads and writes)",
			  why);
		return;
	}
	s->opts.passthrough = true;
}

/* The transport, once per zc_session. */
static int session_prepare(struct zc_session *s)
{
	int r;

	if (s->chan_ready)
		return 0;
	r = zc_chan_init(&s->chan, &s->opts, &s->backend, &s->notifier);
	if (r < 0) {
		zc_set_error(s, "cannot set up the transport: %s", strerror(-r));
		return r;
	}
	s->chan_ready = true;
	r = zc_waiters_setup(&s->chan);
	if (r < 0) {
		zc_set_error(s, "cannot set up the transport: %s", strerror(-r));
		return r;
	}
	session_resolve_passthrough(s);
	if (s->opts.passthrough) {
		r = zc_backing_setup(&s->chan);
		if (r < 0) {
			zc_set_error(s, "cannot set up passthrough: %s", strerror(-r));
			return r;
		}
	}
	/*
	 * When the kernel aborts a mount for a request_timeout, it ends the
	 * requests waiting in /dev/fuse, but not those a ring entry already
	 * holds (Linux 6.18): their callers would wait for the daemon all
	 * the same. So the timeout takes /dev/fuse unless the ring was asked for.
	 */
	if (s->opts.request_timeout && s->opts.io_uring == ZC_URING_AUTO) {
		zc_notice(s, "transport: /dev/fuse, since request_timeout is set and the kernel "
			     "does not end requests already in io_uring entries when one times out "
			     "(-o io_uring for the ring all the same)");
	} else if (s->opts.io_uring != ZC_URING_OFF) {
		r = session_prepare_ring(s);
		if (r < 0)
			return r;
		if (s->opts.request_timeout && s->chan.uring)
			zc_notice(s, "request_timeout: the kernel does not end requests already in "
				     "io_uring entries when one times out");
	}
	return 0;
}

int zc_session_connect(struct zc_session *s, int dev_fd)
{
	int r = session_prepare(s);

	if (r < 0)
		return r;
	s->chan.dev_fd = dev_fd;
	s->own_dev_fd = true;
	return 0;
}

/* The flags of one mount (not of the file system) that mount(2) takes with MS_BIND | MS_REMOUNT. */
#define ZC_MOUNT_POINT_FLAGS                                                                       \
	(MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME | MS_NODIRATIME | MS_STRICTATIME)

/*
 * @opts' flags for a remount of the mount point: relatime said outright,
 * as a remount without an access time flag keeps the one the mount had.
 */
static unsigned long mount_point_flags(const struct zc_opts *opts)
{
	unsigned long flags = opts->mount_flags & ZC_MOUNT_POINT_FLAGS;

	if (!(flags & (MS_NOATIME | MS_STRICTATIME)))
		flags |= MS_RELATIME;
	return flags;
}

ZC_EXPORT int zc_session_remount(struct zc_session *s, const char *mountpoint)
{
	unsigned long flags = mount_point_flags(&s->opts) | (s->opts.mount_flags & MS_SYNCHRONOUS);
	char fstype[64] = "", *canonical;
	int r;

	if (!s->opts.remount)
		return 0;
	canonical = realpath(mountpoint, NULL);
	if (!canonical) {
		r = -errno;
		zc_set_error(s, "mountpoint '%s': %s", mountpoint, strerror(-r));
		return r;
	}
	r = is_mount_point(canonical, fstype, sizeof(fstype), NULL);
	if (r < 0) {
		zc_set_error(s, "cannot read /proc/self/mountinfo: %s", strerror(-r));
		goto out;
	}
	if (r == 0 || strncmp(fstype, "fuse", 4)) {
		zc_set_error(s, "cannot remount '%s': it is not a FUSE mount", canonical);
		r = -EINVAL;
		goto out;
	}
	/* The kernel's FUSE changes ro/rw and sync on remount, and every flag of the mount point. */
	r = 0;
	if (mount(NULL, canonical, NULL, MS_REMOUNT | flags, NULL) < 0) {
		r = -errno;
		if (r == -EPERM)
			zc_set_error(
			    s, "cannot remount '%s': only root can (fusermount3 cannot remount)",
			    canonical);
		else if (r == -EBUSY && (flags & MS_RDONLY))
			zc_set_error(
			    s, "cannot remount '%s' read-only: a file on it is open for writing",
			    canonical);
		else
			zc_set_error(s, "cannot remount '%s': %s", canonical, strerror(-r));
		goto out;
	}
	s->remounted = true;
	r = 1;
out:
	free(canonical);
	return r;
}

ZC_EXPORT int zc_session_mount(struct zc_session *s, const char *mountpoint)
{
	unsigned long after;
	char *canonical;
	struct stat st;
	int fd, r;

	if (s->mounted) {
		zc_set_error(s, "already mounted on %s", s->mountpoint);
		return -EBUSY;
	}
	if (s->opts.remount) {
		r = zc_session_remount(s, mountpoint);
		return r < 0 ? r : 0;
	}
	if (s->opts.kernel_ids) {
		zc_set_error(s, "options user_id and group_id go with remount only "
				"(the kernel sets them at mount)");
		return -EINVAL;
	}
	if (stat(mountpoint, &st) < 0) {
		r = -errno;
		zc_set_error(s, "mountpoint '%s': %s", mountpoint, strerror(-r));
		return r;
	}
	if (!S_ISDIR(st.st_mode)) {
		zc_set_error(s, "mountpoint '%s' is not a directory", mountpoint);
		return -ENOTDIR;
	}
	canonical = realpath(mountpoint, NULL);
	if (!canonical) {
		r = -errno;
		zc_set_error(s, "mountpoint '%s': %s", mountpoint, strerror(-r));
		return r;
	}
	r = is_mount_point(canonical, NULL, 0, NULL);
	if (r != 0) {
		if (r > 0) {
			zc_set_error(s, "mountpoint '%s' is already mounted", canonical);
			r = -EBUSY;
		} else {
			zc_set_error(s, "cannot read /proc/self/mountinfo: %s", strerror(-r));
		}
		free(canonical);
		return r;
	}
	fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		zc_set_error(s, "cannot open /dev/fuse: %s", strerror(-r));
		free(canonical);
		return r;
	}
	close(fd);

	r = session_prepare(s);
	if (r == 0 && !s->mnt)
		r = session_create(s);
	if (r < 0) {
		free(canonical);
		return r;
	}
	fd = zc_mount_mount(s->mnt, canonical);
	if (fd < 0) {
		zc_set_error(s, "mounting on '%s' failed", canonical);
		free(canonical);
		return fd;
	}
	/* What libfuse could not pass: set on the mount point, as mount(8) -o remount,bind does. */
	after = zc_opts_flags_after_mount(&s->opts);
	if (after && mount(NULL, canonical, NULL,
			   MS_REMOUNT | MS_BIND | mount_point_flags(&s->opts), NULL) < 0) {
		r = -errno;
		zc_set_error(s, "cannot set '%s' on '%s': %s", zc_opts_flag_name(after), canonical,
			     strerror(-r));
		zc_mount_unmount(s->mnt);
		free(canonical);
		return r;
	}
	s->chan.dev_fd = fd;
	/* The mount's device: its bdi in /sys/class/bdi (zc_init.c). */
	if (is_mount_point(canonical, NULL, 0, &s->chan.mount_dev) <= 0)
		s->chan.mount_dev = 0;
	free(s->mountpoint);
	s->mountpoint = canonical;
	s->mounted = true;
	return 0;
}

ZC_EXPORT int zc_session_daemonize(struct zc_session *s)
{
	if (s->remounted)
		return 0;
	if (zc_mount_daemonize() < 0) {
		zc_set_error(s, "cannot run in the background");
		return -EIO;
	}
	return 0;
}

ZC_EXPORT int zc_session_loop(struct zc_session *s)
{
	struct sigaction old_handlers[4];
	int r;

	if (s->remounted)
		return 0;
	if (!s->mounted) {
		zc_set_error(s, "not mounted");
		return -EINVAL;
	}
	r = zc_chan_signals_install(&s->chan, old_handlers);
	if (r == 0) {
		pthread_mutex_lock(&s->loop_lock);
		s->loop_thread = pthread_self();
		s->looping = true;
		pthread_mutex_unlock(&s->loop_lock);
		r = zc_dev_run(&s->chan, s->opts.single_threaded);
		pthread_mutex_lock(&s->loop_lock);
		s->looping = false;
		pthread_mutex_unlock(&s->loop_lock);
		zc_uring_stop(&s->chan);
	}
	zc_chan_signals_restore(old_handlers);
	if (s->opts.debug) {
		fprintf(stderr, "zcfuse: counters at unmount:\n");
		zc_stats_print(&s->chan.stats, stderr);
	}
	if (s->chan.init_error) {
		zc_set_error(s, "the backend refused the mount: its init() returned %s",
			     strerror(-s->chan.init_error));
		return s->chan.init_error;
	}
	if (r == -EOPNOTSUPP && zc_uring_refusal(&s->chan)) {
		zc_set_error(s, "io_uring=strict: %s", zc_uring_refusal(&s->chan));
		return r;
	}
	if (r < 0) {
		zc_set_error(s, "request loop failed: %s", strerror(-r));
		return r;
	}
	return 0;
}

/*
 * The loop ends as on SIGTERM. With -s the loop's own thread serves and may
 * wait in a read of the device: it is woken with the stop signal until the
 * loop has ended, unless this is that thread (an operation stopping its
 * own loop, which ends after the operation returns).
 */
ZC_EXPORT void zc_session_stop(struct zc_session *s)
{
	int kicks;

	zc_chan_stop(&s->chan, 0);
	for (kicks = 0; kicks < 200; kicks++) {
		bool waiting;

		pthread_mutex_lock(&s->loop_lock);
		waiting = s->looping && s->opts.single_threaded &&
			  !pthread_equal(s->loop_thread, pthread_self());
		if (waiting)
			pthread_kill(s->loop_thread, ZC_STOP_SIGNAL);
		pthread_mutex_unlock(&s->loop_lock);
		if (!waiting)
			break;
		usleep(5000);
	}
}

ZC_EXPORT void zc_session_unmount(struct zc_session *s)
{
	if (s->mounted) {
		zc_mount_unmount(s->mnt);
		s->mounted = false;
	}
}

ZC_EXPORT void zc_session_destroy(struct zc_session *s)
{
	if (!s)
		return;
	zc_session_unmount(s);
	/* After the last request, once, as the kernel's DESTROY would. */
	if (s->chan_ready && s->chan.conn.init_done && !s->chan.conn.destroyed &&
	    !s->chan.init_error && s->backend.ops.destroy)
		s->backend.ops.destroy(s->backend.userdata);
	zc_mount_free(s->mnt);
	if (s->own_dev_fd && s->chan.dev_fd >= 0)
		close(s->chan.dev_fd);
	if (s->chan_ready) {
		zc_waiters_fini(&s->chan);
		zc_uring_fini(&s->chan);
		zc_backing_fini(&s->chan);
		zc_chan_fini(&s->chan);
	}
	zc_opts_free(&s->opts);
	free(s->fsname);
	free(s->mountpoint);
	pthread_mutex_destroy(&s->loop_lock);
	free(s);
}
