/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Mount option parsing: accepted values, rejected ones, and their messages. */
#include <errno.h>
#include <sys/mount.h>

#include "zc_test.h"
#include "zcfuse_i.h"

static const struct zc_backend_ops no_ops;

static struct zc_session *new_session(void)
{
	struct zc_session *s = zc_session_new(&no_ops, sizeof(no_ops), NULL);

	CHECK(s);
	return s;
}

static void test_defaults(void)
{
	struct zc_session *s = new_session();

	CHECK_EQ(s->opts.cache, ZC_CACHE_AUTO);
	CHECK(zc_opts_entry_timeout(&s->opts) == 1.0);
	CHECK(!zc_opts_default_permissions(&s->opts));
	CHECK(!s->opts.writeback);
	zc_session_destroy(s);
}

static void test_cache_modes(void)
{
	struct zc_session *s = new_session();

	CHECK_EQ(zc_session_set_option(s, "cache=never"), 0);
	CHECK_EQ(s->opts.cache, ZC_CACHE_NEVER);
	CHECK(zc_opts_attr_timeout(&s->opts) == 0.0);
	CHECK_EQ(zc_session_set_option(s, "cache=always"), 0);
	CHECK(zc_opts_attr_timeout(&s->opts) == 86400.0);
	CHECK_EQ(zc_session_set_option(s, "cache=sometimes"), -EINVAL);
	CHECK_STR_CONTAINS(zc_session_error(s), "'cache'");
	CHECK_STR_CONTAINS(zc_session_error(s), "sometimes");
	CHECK_EQ(zc_session_set_option(s, "cache"), -EINVAL);
	CHECK_STR_CONTAINS(zc_session_error(s), "needs a value");
	zc_session_destroy(s);
}

static void test_timeouts(void)
{
	struct zc_session *s = new_session();

	CHECK_EQ(zc_session_set_option(s, "cache=never"), 0);
	CHECK_EQ(zc_session_set_option(s, "attr_timeout=2.5"), 0);
	CHECK(zc_opts_attr_timeout(&s->opts) == 2.5);
	CHECK(zc_opts_entry_timeout(&s->opts) == 0.0);
	CHECK_EQ(zc_session_set_option(s, "timeout=7"), 0);
	CHECK(zc_opts_entry_timeout(&s->opts) == 7.0);
	CHECK(zc_opts_attr_timeout(&s->opts) == 7.0);
	CHECK_EQ(zc_session_set_option(s, "timeout=-1"), -EINVAL);
	CHECK_EQ(zc_session_set_option(s, "timeout=1x"), -EINVAL);
	CHECK_EQ(zc_session_set_option(s, "timeout=nan"), -EINVAL);
	CHECK_EQ(zc_session_set_option(s, "entry_timeout="), -EINVAL);
	CHECK_STR_CONTAINS(zc_session_error(s), "entry_timeout");
	zc_session_destroy(s);
}

static void test_threads(void)
{
	struct zc_session *s = new_session();

	CHECK_EQ(zc_session_set_option(s, "threads=4"), 0);
	CHECK_EQ(s->opts.threads, 4);
	CHECK_EQ(zc_session_set_option(s, "threads=0"), -EINVAL);
	CHECK_EQ(zc_session_set_option(s, "threads=-3"), -EINVAL);
	CHECK_EQ(zc_session_set_option(s, "threads=99999999999999999999"), -EINVAL);
	CHECK_EQ(zc_session_set_option(s, "threads=four"), -EINVAL);
	CHECK_EQ(s->opts.threads, 4);
	zc_session_destroy(s);
}

static void test_flags(void)
{
	struct zc_session *s = new_session();

	CHECK_EQ(zc_session_set_option(s, "allow_other"), 0);
	CHECK(zc_opts_default_permissions(&s->opts));
	CHECK_EQ(zc_session_set_option(s, "nodefault_permissions"), 0);
	CHECK(!zc_opts_default_permissions(&s->opts));
	CHECK_EQ(zc_session_set_option(s, "writeback"), 0);
	CHECK(s->opts.writeback);
	CHECK_EQ(zc_session_set_option(s, "nowriteback"), 0);
	CHECK(!s->opts.writeback);
	CHECK_EQ(zc_session_set_option(s, "ro"), 0);
	CHECK((s->opts.mount_flags & MS_RDONLY));
	CHECK_EQ(zc_session_set_option(s, "ro=1"), -EINVAL);
	CHECK_STR_CONTAINS(zc_session_error(s), "takes no value");
	CHECK_EQ(zc_session_set_option(s, "frobnicate"), -EINVAL);
	CHECK_STR_CONTAINS(zc_session_error(s), "unknown option 'frobnicate'");
	zc_session_destroy(s);
}

static void test_option_lists(void)
{
	struct zc_session *s = new_session();

	CHECK_EQ(zc_session_set_options(s, "cache=never,writeback,threads=3"), 0);
	CHECK_EQ(s->opts.cache, ZC_CACHE_NEVER);
	CHECK(s->opts.writeback);
	CHECK_EQ(s->opts.threads, 3);
	CHECK_EQ(zc_session_set_options(s, "direct_io,,ro"), -EINVAL);
	CHECK_STR_CONTAINS(zc_session_error(s), "empty option");
	CHECK_EQ(zc_session_set_options(s, "direct_io,bogus,ro"), -EINVAL);
	CHECK_STR_CONTAINS(zc_session_error(s), "bogus");
	/* An escaped comma stays inside the value and makes it malformed. */
	CHECK_EQ(zc_session_set_options(s, "cache=never\\,auto"), -EINVAL);
	CHECK_STR_CONTAINS(zc_session_error(s), "never,auto");
	CHECK_EQ(zc_session_set_options(s, ""), -EINVAL);
	zc_session_destroy(s);
}

static void test_ops_size(void)
{
	struct zc_backend_ops ops = { 0 };
	struct zc_session *s;

	/* Fields beyond the size the caller passed must read as NULL. */
	memset(&ops, 0xff, sizeof(ops));
	s = zc_session_new(&ops, offsetof(struct zc_backend_ops, lookup), NULL);
	CHECK(s);
	CHECK(s->backend.ops.lookup == NULL);
	CHECK(s->backend.ops.flock == NULL);
	CHECK(s->backend.ops.init != NULL);
	zc_session_destroy(s);
	CHECK(zc_session_new(NULL, 0, NULL) == NULL);
}

static void test_io_uring(void)
{
	struct zc_session *s = new_session();

	/* By default the ring where the kernel allows it (zc_session_mount() decides). */
	CHECK_EQ(s->opts.io_uring, ZC_URING_AUTO);
	CHECK_EQ(s->opts.uring.depth, ZC_URING_DEPTH_DEFAULT);
	CHECK(s->opts.uring.pin);
	CHECK(s->opts.uring.idle);
	CHECK_EQ(zc_session_set_option(s, "io_uring"), 0);
	CHECK(s->opts.io_uring == ZC_URING_ON && !s->opts.uring.strict);
	CHECK_EQ(zc_session_set_option(s, "io_uring=strict"), 0);
	CHECK(s->opts.io_uring == ZC_URING_ON && s->opts.uring.strict);
	CHECK_EQ(zc_session_set_option(s, "io_uring=fallback"), 0);
	CHECK(s->opts.io_uring == ZC_URING_ON && !s->opts.uring.strict);
	CHECK_EQ(zc_session_set_option(s, "io_uring=maybe"), -EINVAL);
	CHECK_STR_CONTAINS(zc_session_error(s), "strict or fallback");
	CHECK_EQ(zc_session_set_option(s, "noio_uring"), 0);
	CHECK_EQ(s->opts.io_uring, ZC_URING_OFF);
	CHECK_EQ(zc_session_set_option(s, "uring_depth=32"), 0);
	CHECK_EQ(s->opts.uring.depth, 32);
	CHECK_EQ(zc_session_set_option(s, "uring_depth=0"), -EINVAL);
	CHECK_EQ(zc_session_set_option(s, "uring_depth=129"), -EINVAL);
	CHECK_STR_CONTAINS(zc_session_error(s), "uring_depth");
	CHECK_EQ(zc_session_set_option(s, "nouring_pin"), 0);
	CHECK(!s->opts.uring.pin);
	CHECK_EQ(zc_session_set_option(s, "nouring_idle"), 0);
	CHECK(!s->opts.uring.idle);
	CHECK_EQ(zc_session_set_option(s, "uring_idle"), 0);
	CHECK(s->opts.uring.idle);
	zc_session_destroy(s);
}

/* zc_session_set_option() must fail with exactly @msg. */
static void check_rejected(struct zc_session *s, const char *opt, const char *msg)
{
	int r = zc_session_set_option(s, opt);

	if (r != -EINVAL || strcmp(zc_session_error(s), msg)) {
		fprintf(stderr, "option '%s': %d '%s', expected -EINVAL '%s'\n", opt, r,
			zc_session_error(s), msg);
		exit(1);
	}
}

static void test_flag_kinds(void)
{
	struct zc_session *s = new_session();

	/* A plain flag has no negated form. */
	CHECK_EQ(zc_session_set_option(s, "direct_io"), 0);
	CHECK(s->opts.direct_io);
	check_rejected(s, "nodirect_io", "unknown option 'nodirect_io'");
	check_rejected(s, "direct_io=0", "option 'direct_io' takes no value");
	CHECK(s->opts.direct_io);
	CHECK_EQ(zc_session_set_option(s, "clone_fd"), 0);
	CHECK(s->opts.clone_fd);
	/* Negatable flags, the negated name spelt either way. */
	CHECK_EQ(zc_session_set_option(s, "ro"), 0);
	CHECK_EQ(zc_session_set_option(s, "rw"), 0);
	CHECK(!(s->opts.mount_flags & MS_RDONLY));
	check_rejected(s, "noro", "unknown option 'noro'");
	check_rejected(s, "rw=1", "option 'rw' takes no value");
	CHECK(s->opts.splice);
	CHECK_EQ(zc_session_set_option(s, "nosplice"), 0);
	CHECK(!s->opts.splice);
	CHECK_EQ(zc_session_set_option(s, "splice"), 0);
	CHECK(s->opts.splice);
	CHECK_EQ(s->opts.passthrough_choice, ZC_PASSTHROUGH_OFF);
	CHECK_EQ(zc_session_set_option(s, "passthrough"), 0);
	CHECK_EQ(s->opts.passthrough_choice, ZC_PASSTHROUGH_ON);
	CHECK_EQ(zc_session_set_option(s, "passthrough=auto"), 0);
	CHECK_EQ(s->opts.passthrough_choice, ZC_PASSTHROUGH_AUTO);
	CHECK_EQ(zc_session_set_option(s, "nopassthrough"), 0);
	CHECK_EQ(s->opts.passthrough_choice, ZC_PASSTHROUGH_OFF);
	check_rejected(s, "passthrough=always",
		       "bad value for option 'passthrough': 'always' (expected auto)");
	CHECK_EQ(s->opts.passthrough_choice, ZC_PASSTHROUGH_OFF);
	CHECK_EQ(s->opts.writeback_ratio, 20);
	CHECK(!s->opts.writeback_ratio_set);
	CHECK_EQ(zc_session_set_option(s, "writeback_ratio=35"), 0);
	CHECK_EQ(s->opts.writeback_ratio, 35);
	CHECK(s->opts.writeback_ratio_set);
	check_rejected(s, "writeback_ratio=0",
		       "bad value for option 'writeback_ratio': '0' (expected 1 to 100)");
	check_rejected(s, "writeback_ratio=101",
		       "bad value for option 'writeback_ratio': '101' (expected 1 to 100)");
	CHECK_EQ(s->opts.writeback_ratio, 35);
	CHECK_EQ(zc_session_set_option(s, "nouring_pin"), 0);
	CHECK_EQ(zc_session_set_option(s, "uring_pin"), 0);
	CHECK(s->opts.uring.pin);
	zc_session_destroy(s);
}

static void test_default_permissions(void)
{
	struct zc_session *s = new_session();

	/* Not given: it follows allow_other. */
	CHECK_EQ(s->opts.default_permissions, -1);
	CHECK(!zc_opts_default_permissions(&s->opts));
	CHECK_EQ(zc_session_set_option(s, "default_permissions"), 0);
	CHECK_EQ(s->opts.default_permissions, 1);
	CHECK(zc_opts_default_permissions(&s->opts));
	CHECK_EQ(zc_session_set_option(s, "nodefault_permissions"), 0);
	CHECK_EQ(s->opts.default_permissions, 0);
	CHECK(zc_opts_entry_timeout(&s->opts) == 1.0);
	/* Switched off explicitly, allow_other does not switch it on. */
	CHECK_EQ(zc_session_set_option(s, "allow_other"), 0);
	CHECK(!zc_opts_default_permissions(&s->opts));
	/* Several users, and the backend alone checks: no names kept, unless asked. */
	CHECK(zc_opts_entry_timeout(&s->opts) == 0.0);
	CHECK(zc_opts_attr_timeout(&s->opts) == 1.0);
	CHECK_EQ(zc_session_set_option(s, "entry_timeout=2"), 0);
	CHECK(zc_opts_entry_timeout(&s->opts) == 2.0);
	check_rejected(s, "default_permissions=1", "option 'default_permissions' takes no value");
	zc_session_destroy(s);
}

static void test_uint_kind(void)
{
	struct zc_session *s = new_session();

	CHECK_EQ(zc_session_set_option(s, "threads=256"), 0);
	CHECK_EQ(s->opts.threads, 256);
	check_rejected(s, "threads=257",
		       "bad value for option 'threads': '257' (expected 1 to 256)");
	check_rejected(s, "threads", "option 'threads' needs a value (threads=...)");
	check_rejected(s, "threads=", "bad value for option 'threads': '' (expected 1 to 256)");
	CHECK_EQ(s->opts.threads, 256);
	/* A size_t field, with 0 allowed. */
	CHECK_EQ(zc_session_set_option(s, "splice_threshold=0"), 0);
	CHECK_EQ(s->opts.splice_threshold, 0);
	CHECK_EQ(zc_session_set_option(s, "splice_threshold=1073741824"), 0);
	CHECK_EQ(s->opts.splice_threshold, 1073741824);
	check_rejected(s, "splice_threshold=1073741825",
		       "bad value for option 'splice_threshold': '1073741825' (expected 0 to "
		       "1073741824)");
	check_rejected(s, "splice_threshold=-0",
		       "bad value for option 'splice_threshold': '-0' (expected 0 to 1073741824)");
	CHECK_EQ(s->opts.splice_threshold, 1073741824);
	CHECK_EQ(zc_session_set_option(s, "uring_depth=128"), 0);
	CHECK_EQ(s->opts.uring.depth, 128);
	check_rejected(s, "uring_depth=129",
		       "bad value for option 'uring_depth': '129' (expected 1 to 128)");
	zc_session_destroy(s);
}

static void test_seconds_kind(void)
{
	struct zc_session *s = new_session();

	CHECK_EQ(zc_session_set_option(s, "entry_timeout=0.25"), 0);
	CHECK(zc_opts_entry_timeout(&s->opts) == 0.25);
	/* A name's absence is kept as long as a name, unless said otherwise. */
	CHECK(zc_opts_negative_timeout(&s->opts) == 0.25);
	CHECK_EQ(zc_session_set_option(s, "negative_timeout=0"), 0);
	CHECK(zc_opts_negative_timeout(&s->opts) == 0.0);
	CHECK(zc_opts_entry_timeout(&s->opts) == 0.25);
	CHECK(zc_opts_attr_timeout(&s->opts) == 1.0);
	CHECK(!s->opts.attr_timeout_set);
	CHECK_EQ(zc_session_set_option(s, "attr_timeout=1e9"), 0);
	CHECK(zc_opts_attr_timeout(&s->opts) == 1e9);
	check_rejected(s, "attr_timeout=1.1e9",
		       "bad value for option 'attr_timeout': '1.1e9' (expected seconds, e.g. 1.5)");
	check_rejected(s, "timeout=soon",
		       "bad value for option 'timeout': 'soon' (expected seconds, e.g. 1.5)");
	check_rejected(s, "timeout", "option 'timeout' needs a value (timeout=...)");
	check_rejected(s, "entry_timeout=inf",
		       "bad value for option 'entry_timeout': 'inf' (expected seconds, e.g. 1.5)");
	/* A refused value changes nothing. */
	CHECK(zc_opts_entry_timeout(&s->opts) == 0.25);
	CHECK(zc_opts_attr_timeout(&s->opts) == 1e9);
	CHECK_EQ(zc_session_set_option(s, "timeout=0"), 0);
	CHECK(zc_opts_entry_timeout(&s->opts) == 0.0);
	CHECK(zc_opts_attr_timeout(&s->opts) == 0.0);
	zc_session_destroy(s);
}

static void test_enum_kind(void)
{
	struct zc_session *s = new_session();

	CHECK_EQ(zc_session_set_option(s, "cache=never"), 0);
	CHECK_EQ(zc_session_set_option(s, "cache=auto"), 0);
	CHECK_EQ(s->opts.cache, ZC_CACHE_AUTO);
	check_rejected(s, "cache=Never",
		       "bad value for option 'cache': 'Never' (expected never, auto or always)");
	check_rejected(
	    s, "cache=", "bad value for option 'cache': '' (expected never, auto or always)");
	check_rejected(s, "cache", "option 'cache' needs a value (cache=...)");
	CHECK_EQ(s->opts.cache, ZC_CACHE_AUTO);
	/* io_uring is a flag and an enum: bare, with a word, and negated. */
	CHECK_EQ(zc_session_set_option(s, "io_uring=strict"), 0);
	CHECK_EQ(zc_session_set_option(s, "io_uring"), 0);
	CHECK(s->opts.io_uring == ZC_URING_ON && s->opts.uring.strict);
	check_rejected(
	    s, "io_uring=", "bad value for option 'io_uring': '' (expected strict or fallback)");
	check_rejected(s, "noio_uring=strict", "option 'noio_uring' takes no value");
	CHECK(s->opts.io_uring == ZC_URING_ON && s->opts.uring.strict);
	CHECK_EQ(zc_session_set_option(s, "noio_uring"), 0);
	CHECK(s->opts.io_uring == ZC_URING_OFF && !s->opts.uring.strict);
	CHECK_EQ(zc_session_set_option(s, "io_uring=fallback"), 0);
	CHECK(s->opts.io_uring == ZC_URING_ON && !s->opts.uring.strict);
	zc_session_destroy(s);
}

static void test_malformed(void)
{
	struct zc_session *s = new_session();
	char long_name[80];

	check_rejected(s, "=x", "malformed option '=x'");
	check_rejected(s, "", "malformed option ''");
	memset(long_name, 'o', 64);
	long_name[64] = '\0';
	check_rejected(s, long_name,
		       "malformed option 'oooooooooooooooooooooooooooooooooooooooooo"
		       "oooooooooooooooooooooo'");
	long_name[63] = '\0';
	check_rejected(s, long_name,
		       "unknown option 'ooooooooooooooooooooooooooooooooooooooooooo"
		       "oooooooooooooooooooo'");
	/* An unknown name is unknown, with a value or without. */
	check_rejected(s, "bogus=1", "unknown option 'bogus=1'");
	check_rejected(s, "bogus", "unknown option 'bogus'");
	/* Control characters are written as \xNN in the message. */
	check_rejected(s, "a\tb", "unknown option 'a\\x09b'");
	zc_session_destroy(s);
}

/* The kernel's mount flags, fsname=, subtype=, remount and fstab's own words. */
static void test_mount_options(void)
{
	struct zc_session *s = new_session();
	const char *names[16];
	size_t n;

	/* libfuse's defaults: nosuid, nodev, every flag said to libfuse either way. */
	CHECK_EQ(s->opts.mount_flags, MS_NOSUID | MS_NODEV);
	n = zc_opts_libfuse_flags(&s->opts, names, 16);
	CHECK_EQ(n, 6);
	CHECK_STR_EQ(names[0], "rw");
	CHECK_STR_EQ(names[1], "nosuid");
	CHECK_STR_EQ(names[2], "nodev");
	CHECK_STR_EQ(names[3], "exec");
	CHECK_STR_EQ(names[4], "async");
	CHECK_STR_EQ(names[5], "atime");
	CHECK_EQ(zc_session_set_options(s, "ro,suid,dev,noexec,sync,dirsync,noatime"), 0);
	CHECK_EQ(s->opts.mount_flags,
		 MS_RDONLY | MS_NOEXEC | MS_SYNCHRONOUS | MS_DIRSYNC | MS_NOATIME);
	n = zc_opts_libfuse_flags(&s->opts, names, 16);
	CHECK_EQ(n, 7);
	CHECK_STR_EQ(names[0], "ro");
	CHECK_STR_EQ(names[1], "suid");
	CHECK_STR_EQ(names[5], "dirsync");
	CHECK_STR_EQ(names[6], "noatime");
	CHECK_EQ(zc_opts_flags_after_mount(&s->opts), 0);
	CHECK_EQ(zc_session_set_options(s, "rw,nosuid,exec,async"), 0);
	CHECK_EQ(s->opts.mount_flags, MS_NOSUID | MS_DIRSYNC | MS_NOATIME);
	/* The last of noatime, relatime and strictatime wins; atime undoes noatime. */
	CHECK_EQ(zc_session_set_option(s, "strictatime"), 0);
	CHECK_EQ(s->opts.mount_flags & (MS_NOATIME | MS_STRICTATIME), MS_STRICTATIME);
	CHECK_EQ(zc_opts_flags_after_mount(&s->opts), MS_STRICTATIME);
	CHECK_STR_EQ(zc_opts_flag_name(MS_STRICTATIME), "strictatime");
	CHECK_EQ(zc_session_set_option(s, "noatime"), 0);
	CHECK_EQ(s->opts.mount_flags & (MS_NOATIME | MS_STRICTATIME), MS_NOATIME);
	CHECK_EQ(zc_session_set_option(s, "relatime"), 0);
	CHECK_EQ(s->opts.mount_flags & (MS_NOATIME | MS_STRICTATIME), 0);
	CHECK_EQ(zc_session_set_option(s, "noatime"), 0);
	CHECK_EQ(zc_session_set_option(s, "atime"), 0);
	CHECK_EQ(s->opts.mount_flags & MS_NOATIME, 0);
	CHECK_EQ(zc_session_set_option(s, "nodiratime"), 0);
	CHECK_EQ(zc_opts_flags_after_mount(&s->opts), MS_NODIRATIME);
	CHECK_EQ(zc_session_set_option(s, "diratime"), 0);
	CHECK_EQ(zc_opts_flags_after_mount(&s->opts), 0);
	check_rejected(s, "nosuid=1", "option 'nosuid' takes no value");
	check_rejected(s, "relatime=1", "option 'relatime' takes no value");

	/* fsname= and subtype= take any text but none; the last one counts. */
	CHECK_EQ(zc_session_set_options(s, "fsname=first,fsname=my\\,store,subtype=mine"), 0);
	CHECK_STR_EQ(s->opts.fsname, "my,store");
	CHECK_STR_EQ(s->opts.subtype, "mine");
	check_rejected(s, "fsname=", "option 'fsname' needs a value (fsname=NAME)");
	check_rejected(s, "subtype", "option 'subtype' needs a value (subtype=...)");

	/* remount and what mount(8) passes back with it. */
	CHECK(!s->opts.remount && !s->opts.kernel_ids);
	CHECK_EQ(zc_session_set_options(s, "remount,user_id=0,group_id=1000"), 0);
	CHECK(s->opts.remount && s->opts.kernel_ids);
	check_rejected(s, "user_id=x",
		       "bad value for option 'user_id': 'x' (expected 0 to 4294967295)");

	/* fstab's and mount(8)'s own words change nothing. */
	CHECK_EQ(zc_session_set_options(s, "defaults,auto,noauto,user,users,nouser,nofail,_netdev,"
					   "x-systemd.automount,x-systemd.device-timeout=10,"
					   "comment=systemd.automount,user=alice"),
		 0);
	CHECK_EQ(s->opts.mount_flags, MS_NOSUID | MS_DIRSYNC);
	check_rejected(s, "defaults=1", "option 'defaults' takes no value");
	check_rejected(s, "comment", "option 'comment' needs a value (comment=...)");
	check_rejected(s, "nofail=yes", "option 'nofail' takes no value");
	/* Names near them are still unknown. */
	check_rejected(s, "x", "unknown option 'x'");
	check_rejected(s, "suidx", "unknown option 'suidx'");
	check_rejected(s, "noatime2=1", "unknown option 'noatime2=1'");
	zc_session_destroy(s);
}

/* A backend option handler that knows "max_fds" and, to shadow it, "ro". */
static int backend_option(void *data, const char *name, const char *value)
{
	unsigned int *seen = data;

	if (!strcmp(name, "ro")) {
		(*seen)++;
		return 0;
	}
	if (strcmp(name, "max_fds"))
		return -ENOENT;
	if (!value || strcmp(value, "64"))
		return -EINVAL;
	(*seen)++;
	return 0;
}

static void test_backend_options(void)
{
	struct zc_session *s = new_session();
	unsigned int seen = 0;

	zc_session_set_option_handler(s, backend_option, &seen);
	CHECK_EQ(zc_session_set_options(s, "max_fds=64,ro,threads=2"), 0);
	CHECK_EQ(seen, 2);
	CHECK(!(s->opts.mount_flags & MS_RDONLY));
	CHECK_EQ(s->opts.threads, 2);
	check_rejected(s, "max_fds=0", "bad value for option 'max_fds': '0'");
	check_rejected(s, "max_fds", "option 'max_fds' needs a value (max_fds=...)");
	check_rejected(s, "max_fdz=1", "unknown option 'max_fdz=1'");
	zc_session_destroy(s);
}

static void test_help(void)
{
	static const char *const documented[] = {
		"cache=never|auto|always",
		"timeout=SECS",
		"entry_timeout=SECS",
		"attr_timeout=SECS",
		"writeback",
		"nowriteback",
		"direct_io",
		"threads=N",
		"clone_fd",
		"allow_other",
		"default_permissions",
		"nodefault_permissions",
		"ro",
		"nosuid",
		"suid",
		"nodev",
		"dev",
		"noexec",
		"sync",
		"dirsync",
		"noatime",
		"relatime",
		"strictatime",
		"nodiratime",
		"fsname=NAME",
		"subtype=NAME",
		"remount",
		"user_id=N, group_id=N",
		"defaults,auto,noauto,user,users,nouser,nofail,_netdev,x-*",
		"nosplice",
		"splice_threshold=BYTES",
		"passthrough",
		"nopassthrough",
		"io_uring",
		"io_uring=strict|fallback",
		"noio_uring",
		"uring_depth=N",
		"nouring_pin",
		"nouring_idle",
	};
	const char *help = zc_options_help();
	const char *line;
	char want[128];
	size_t i;

	CHECK(help == zc_options_help());
	for (i = 0; i < sizeof(documented) / sizeof(documented[0]); i++) {
		const char *found;

		snprintf(want, sizeof(want), "    -o %s", documented[i]);
		found = strstr(help, want);
		CHECK(found);
		CHECK(found[strlen(want)] == ' ' || found[strlen(want)] == '\n');
	}
	CHECK_STR_CONTAINS(help, "    -o cache=never|auto|always  kernel caching of data and names "
				 "(default: auto)\n");
	CHECK_STR_CONTAINS(help, "    -o splice_threshold=BYTES   READs and WRITEs smaller than "
				 "this copy\n                                (default: 32768)\n");
	/* A synopsis too long for its column has the text on the next line. */
	CHECK_STR_CONTAINS(help, "    -o io_uring=strict|fallback\n                                "
				 "strict:");
	/* Nothing was cut off, and every line is an option or continues one. */
	CHECK(strlen(help) > 0 && help[strlen(help) - 1] == '\n');
	CHECK_STR_CONTAINS(help, "its CPU)\n");
	for (line = help; *line; line = strchr(line, '\n') + 1) {
		CHECK(!strncmp(line, "    -o ", 7) ||
		      !strncmp(line, "                                ", 32));
		CHECK(strchr(line, '\n') - line <= 80);
	}
	/* Undocumented forms are still accepted: only their negation is shown. */
	CHECK(!strstr(help, "-o splice "));
	CHECK(!strstr(help, "-o rw "));
}

int main(void)
{
	test_defaults();
	test_cache_modes();
	test_timeouts();
	test_threads();
	test_flags();
	test_option_lists();
	test_ops_size();
	test_io_uring();
	test_flag_kinds();
	test_default_permissions();
	test_uint_kind();
	test_seconds_kind();
	test_enum_kind();
	test_malformed();
	test_mount_options();
	test_backend_options();
	test_help();
	return 0;
}
