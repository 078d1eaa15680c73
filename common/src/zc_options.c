/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Mount options: one table (zc_opt_table) drives parsing, validation and
 * the help text (zc_options_help()).
 */
#include <errno.h>
#include <linux/capability.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>

#include "zc_util.h"
#include "zcfuse_i.h"

#define ZC_THREADS_MAX	 256

#define ZC_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/*
 * The mount options: one table drives parsing, validation and --help.
 *
 * A row is one form of an option: a flag (a bare name, maybe with a
 * negated name that clears what the name sets), a flag of the kernel's
 * mount(2), an unsigned number within bounds, seconds, one of a list of
 * words, a text, or a word of fstab and mount(8) that means nothing to the
 * file system. Two rows may share a name when one takes a value and the
 * other does not (io_uring, io_uring=...). A row stores its value at an
 * offset into struct zc_opts or hands it to a setter.
 */
enum zc_opt_kind {
	ZC_OPT_FLAG,	   /* name: on; neg_name: off */
	ZC_OPT_MOUNT_FLAG, /* name: sets mount_flag, clears mount_clear; neg_name: clears it */
	ZC_OPT_UINT,	   /* name=N, min <= N <= max */
	ZC_OPT_SECONDS,	   /* name=SECS, 0 to 1e9, fractions allowed */
	ZC_OPT_ENUM,	   /* name=WORD, one of values[]: its index */
	ZC_OPT_TEXT,	   /* name=TEXT, not empty */
	ZC_OPT_NOOP,	   /* name, or name=TEXT with .noop_value; nothing to do */
};

/* A parsed value, as the row's kind has it. */
union zc_opt_value {
	bool on;
	unsigned long number;
	double seconds;
	unsigned int choice;
	const char *text;
};

#define ZC_OPT_VALUES_MAX 4

struct zc_opt_desc {
	const char *name;
	/* ZC_OPT_FLAG only: the name that clears it, or NULL. */
	const char *neg_name;
	enum zc_opt_kind kind;
	/* Where the value goes: a field of struct zc_opts, or set(). */
	size_t offset;
	size_t size;
	void (*set)(struct zc_opts *opts, union zc_opt_value value);
	/* ZC_OPT_UINT: the bounds. */
	unsigned int min, max;
	/* ZC_OPT_ENUM: the words, in the order of the field's values. */
	const char *values[ZC_OPT_VALUES_MAX + 1];
	/* ZC_OPT_MOUNT_FLAG: the MS_* flag the name sets, and the ones it clears. */
	unsigned long mount_flag;
	unsigned long mount_clear;
	/* ZC_OPT_MOUNT_FLAG: libfuse 3.14 takes name and neg_name (else set after mounting). */
	bool libfuse;
	/* ZC_OPT_NOOP: name=TEXT, not a bare name; with prefix, either. */
	bool noop_value;
	/* The name is a prefix: every option that starts with it (x-...). */
	bool prefix;
	/* What --help shows after "name=" (ZC_OPT_UINT, ZC_OPT_TEXT). */
	const char *metavar;
	/* What --help shows instead of the name (several names in one line). */
	const char *synopsis;
	/* --help text for name and neg_name; NULL: not shown. "\n" wraps. */
	const char *help;
	const char *neg_help;
};

#define ZC_OPT_FIELD(member)                                                                       \
	.offset = offsetof(struct zc_opts, member), .size = sizeof(((struct zc_opts *)0)->member)

static void set_timeout(struct zc_opts *opts, union zc_opt_value value)
{
	opts->entry_timeout = opts->attr_timeout = value.seconds;
	opts->entry_timeout_set = opts->attr_timeout_set = true;
}

static void set_entry_timeout(struct zc_opts *opts, union zc_opt_value value)
{
	opts->entry_timeout = value.seconds;
	opts->entry_timeout_set = true;
}

static void set_negative_timeout(struct zc_opts *opts, union zc_opt_value value)
{
	opts->negative_timeout = value.seconds;
	opts->negative_timeout_set = true;
}

static void set_attr_timeout(struct zc_opts *opts, union zc_opt_value value)
{
	opts->attr_timeout = value.seconds;
	opts->attr_timeout_set = true;
}

static void set_writeback_ratio(struct zc_opts *opts, union zc_opt_value value)
{
	opts->writeback_ratio = (unsigned int)value.number;
	opts->writeback_ratio_set = true;
}

/* Tri-state: never given means on with allow_other (zc_opts_default_permissions()). */
static void set_default_permissions(struct zc_opts *opts, union zc_opt_value value)
{
	opts->default_permissions = value.on ? 1 : 0;
}

/* user_id= and group_id=: mount(8) passes them back at remount. */
static void set_kernel_id(struct zc_opts *opts, union zc_opt_value value)
{
	(void)value;
	opts->kernel_ids = true;
}

static void set_passthrough(struct zc_opts *opts, union zc_opt_value value)
{
	opts->passthrough_choice = value.on ? ZC_PASSTHROUGH_ON : ZC_PASSTHROUGH_OFF;
}

/* passthrough=auto: the only word. */
static void set_passthrough_auto(struct zc_opts *opts, union zc_opt_value value)
{
	(void)value;
	opts->passthrough_choice = ZC_PASSTHROUGH_AUTO;
}

/* io_uring keeps the strictness asked for before; noio_uring drops it. */
static void set_io_uring(struct zc_opts *opts, union zc_opt_value value)
{
	opts->io_uring = value.on ? ZC_URING_ON : ZC_URING_OFF;
	if (!value.on)
		opts->uring.strict = false;
}

/* io_uring=strict or io_uring=fallback. */
static void set_io_uring_mode(struct zc_opts *opts, union zc_opt_value value)
{
	opts->io_uring = ZC_URING_ON;
	opts->uring.strict = value.choice == 0;
}

static const struct zc_opt_desc zc_opt_table[] = {
	{
	    .name = "cache",
	    .kind = ZC_OPT_ENUM,
	    ZC_OPT_FIELD(cache),
	    /* The order of enum zc_cache_mode. */
	    .values = { "never", "auto", "always" },
	    .help = "kernel caching of data and names (default: auto)",
	},
	{
	    .name = "timeout",
	    .kind = ZC_OPT_SECONDS,
	    .set = set_timeout,
	    .help = "entry and attribute timeout",
	},
	{
	    .name = "entry_timeout",
	    .kind = ZC_OPT_SECONDS,
	    .set = set_entry_timeout,
	    .help = "how long the kernel trusts a name lookup",
	},
	{
	    .name = "attr_timeout",
	    .kind = ZC_OPT_SECONDS,
	    .set = set_attr_timeout,
	    .help = "how long the kernel trusts attributes",
	},
	{
	    .name = "negative_timeout",
	    .kind = ZC_OPT_SECONDS,
	    .set = set_negative_timeout,
	    .help = "how long the kernel trusts that a name is\n"
		    "missing (default: the entry timeout; 0: it\n"
		    "asks every time)",
	},
	{
	    .name = "writeback",
	    .neg_name = "nowriteback",
	    .kind = ZC_OPT_FLAG,
	    ZC_OPT_FIELD(writeback),
	    .help = "writeback caching of writes in the kernel",
	    .neg_help = "no writeback caching (default)",
	},
	{
	    .name = "writeback_ratio",
	    .kind = ZC_OPT_UINT,
	    .set = set_writeback_ratio,
	    .min = 1,
	    .max = 100,
	    .metavar = "PERCENT",
	    .help = "with writeback: the share of the system's\n"
		    "dirty-page limit the mount may hold (its\n"
		    "bdi's max_ratio; root only; default: 20,\n"
		    "the kernel's own for FUSE is 1)",
	},
	{
	    .name = "direct_io",
	    .kind = ZC_OPT_FLAG,
	    ZC_OPT_FIELD(direct_io),
	    .help = "every read and write reaches the daemon",
	},
	{
	    .name = "threads",
	    .kind = ZC_OPT_UINT,
	    ZC_OPT_FIELD(threads),
	    .min = 1,
	    .max = ZC_THREADS_MAX,
	    .metavar = "N",
	    .help = "at most N worker threads (default: 10)",
	},
	{
	    .name = "request_timeout",
	    .kind = ZC_OPT_UINT,
	    ZC_OPT_FIELD(request_timeout),
	    .min = 0,
	    .max = 65535,
	    .metavar = "SECS",
	    .help = "the kernel aborts the mount (every caller\n"
		    "gets ENOTCONN) once a request waited SECS\n"
		    "seconds for the daemon (Linux 6.14; looked\n"
		    "at every 15 s; default: 0, never)",
	},
	{
	    .name = "clone_fd",
	    .kind = ZC_OPT_FLAG,
	    ZC_OPT_FIELD(clone_fd),
	    .help = "one /dev/fuse descriptor per thread",
	},
	{
	    .name = "allow_other",
	    .kind = ZC_OPT_FLAG,
	    ZC_OPT_FIELD(allow_other),
	    .help = "let other users use the mount",
	},
	{
	    .name = "default_permissions",
	    .neg_name = "nodefault_permissions",
	    .kind = ZC_OPT_FLAG,
	    .set = set_default_permissions,
	    .help = "the kernel checks permissions (default with\n"
		    "allow_other)",
	    .neg_help = "the backing store alone checks permissions",
	},
	/*
	 * The kernel's mount flags, as libfuse and mount(8) name them. The
	 * last of noatime, relatime and strictatime wins.
	 */
	{
	    .name = "ro",
	    .neg_name = "rw",
	    .kind = ZC_OPT_MOUNT_FLAG,
	    .mount_flag = MS_RDONLY,
	    .libfuse = true,
	    .help = "mount read-only",
	},
	{
	    .name = "nosuid",
	    .neg_name = "suid",
	    .kind = ZC_OPT_MOUNT_FLAG,
	    .mount_flag = MS_NOSUID,
	    .libfuse = true,
	    .help = "ignore setuid and setgid bits (default)",
	    .neg_help = "honour them (root only; mount(8) asks for\n"
			"suid and dev unless told otherwise)",
	},
	{
	    .name = "nodev",
	    .neg_name = "dev",
	    .kind = ZC_OPT_MOUNT_FLAG,
	    .mount_flag = MS_NODEV,
	    .libfuse = true,
	    .help = "device files cannot be opened (default)",
	    .neg_help = "they can (root only)",
	},
	{
	    .name = "noexec",
	    .neg_name = "exec",
	    .kind = ZC_OPT_MOUNT_FLAG,
	    .mount_flag = MS_NOEXEC,
	    .libfuse = true,
	    .help = "programs on the mount cannot be run",
	},
	{
	    .name = "sync",
	    .neg_name = "async",
	    .kind = ZC_OPT_MOUNT_FLAG,
	    .mount_flag = MS_SYNCHRONOUS,
	    .libfuse = true,
	    .help = "writes are synchronous (async: not, the\n"
		    "default)",
	},
	{
	    .name = "dirsync",
	    .kind = ZC_OPT_MOUNT_FLAG,
	    .mount_flag = MS_DIRSYNC,
	    .libfuse = true,
	    .help = "changes to directories are synchronous",
	},
	{
	    .name = "noatime",
	    .neg_name = "atime",
	    .kind = ZC_OPT_MOUNT_FLAG,
	    .mount_flag = MS_NOATIME,
	    .mount_clear = MS_STRICTATIME,
	    .libfuse = true,
	    .help = "do not update access times",
	},
	{
	    .name = "relatime",
	    .kind = ZC_OPT_MOUNT_FLAG,
	    .mount_clear = MS_NOATIME | MS_STRICTATIME,
	    .help = "update access times only when older than\n"
		    "the change or a day old (default)",
	},
	{
	    .name = "strictatime",
	    .kind = ZC_OPT_MOUNT_FLAG,
	    .mount_flag = MS_STRICTATIME,
	    .mount_clear = MS_NOATIME,
	    .help = "update access times at every access (root\n"
		    "only)",
	},
	{
	    .name = "nodiratime",
	    .neg_name = "diratime",
	    .kind = ZC_OPT_MOUNT_FLAG,
	    .mount_flag = MS_NODIRATIME,
	    .help = "do not update directories' access times\n"
		    "(root only)",
	},
	{
	    .name = "fsname",
	    .kind = ZC_OPT_TEXT,
	    ZC_OPT_FIELD(fsname),
	    .metavar = "NAME",
	    .help = "the source that mount(8) and df show",
	},
	{
	    .name = "subtype",
	    .kind = ZC_OPT_TEXT,
	    ZC_OPT_FIELD(subtype),
	    .metavar = "NAME",
	    .help = "the type is fuse.NAME (default: the\n"
		    "program's name, which mount(8) runs)",
	},
	{
	    .name = "remount",
	    .kind = ZC_OPT_FLAG,
	    ZC_OPT_FIELD(remount),
	    .help = "change the flags of the mount at MOUNTPOINT\n"
		    "(ro, rw, nosuid, noexec, atime, ...) and\n"
		    "exit (root only; mount -o remount runs it)",
	},
	{
	    .name = "user_id",
	    .kind = ZC_OPT_UINT,
	    .set = set_kernel_id,
	    .max = UINT32_MAX,
	    .metavar = "N",
	    .synopsis = "user_id=N, group_id=N",
	    .help = "with remount only (mount(8) passes them back\n"
		    "from /proc/self/mountinfo): ignored",
	},
	{
	    .name = "group_id",
	    .kind = ZC_OPT_UINT,
	    .set = set_kernel_id,
	    .max = UINT32_MAX,
	    .metavar = "N",
	},
	/* fstab's and mount(8)'s own words: nothing for the file system to do. */
	{
	    .name = "defaults",
	    .kind = ZC_OPT_NOOP,
	    .synopsis = "defaults,auto,noauto,user,users,nouser,nofail,_netdev,x-*",
	    .help = "fstab's and mount(8)'s own words (and\n"
		    "comment=TEXT, user=NAME): accepted, ignored",
	},
	{ .name = "auto", .kind = ZC_OPT_NOOP },
	{ .name = "noauto", .kind = ZC_OPT_NOOP },
	{ .name = "user", .kind = ZC_OPT_NOOP },
	{ .name = "users", .kind = ZC_OPT_NOOP },
	{ .name = "nouser", .kind = ZC_OPT_NOOP },
	{ .name = "nofail", .kind = ZC_OPT_NOOP },
	{ .name = "_netdev", .kind = ZC_OPT_NOOP },
	{ .name = "user", .kind = ZC_OPT_NOOP, .noop_value = true },
	{ .name = "comment", .kind = ZC_OPT_NOOP, .noop_value = true },
	{ .name = "x-", .kind = ZC_OPT_NOOP, .prefix = true },
	{
	    .name = "splice",
	    .neg_name = "nosplice",
	    .kind = ZC_OPT_FLAG,
	    ZC_OPT_FIELD(splice),
	    .neg_help = "move file data by copying (default: splice)",
	},
	{
	    .name = "splice_threshold",
	    .kind = ZC_OPT_UINT,
	    ZC_OPT_FIELD(splice_threshold),
	    .min = 0,
	    .max = 1U << 30,
	    .metavar = "BYTES",
	    .help = "READs and WRITEs smaller than this copy\n"
		    "(default: 32768)",
	},
	{
	    .name = "passthrough",
	    .neg_name = "nopassthrough",
	    .kind = ZC_OPT_FLAG,
	    .set = set_passthrough,
	    .help = "the kernel reads and writes open files\n"
		    "straight from their backing files (needs\n"
		    "CAP_SYS_ADMIN; turns writeback off; else\n"
		    "per file fallback to splice)",
	    .neg_help = "every read and write reaches the daemon\n"
			"(the library's default)",
	},
	{
	    .name = "passthrough",
	    .kind = ZC_OPT_ENUM,
	    .set = set_passthrough_auto,
	    .values = { "auto" },
	    .help = "passthrough where the daemon may use it,\n"
		    "not beside direct_io; one line says which\n"
		    "and why (zcfuse's default)",
	},
	{
	    .name = "io_uring",
	    .neg_name = "noio_uring",
	    .kind = ZC_OPT_FLAG,
	    .set = set_io_uring,
	    .help = "receive requests and send replies through\n"
		    "FUSE over io_uring (Linux 6.14+, module\n"
		    "parameter fuse.enable_uring=Y); says why and\n"
		    "falls back to /dev/fuse when refused\n"
		    "(default: the ring where the kernel allows\n"
		    "it, one line says which and why)",
	    .neg_help = "requests through /dev/fuse",
	},
	{
	    .name = "io_uring",
	    .kind = ZC_OPT_ENUM,
	    .set = set_io_uring_mode,
	    .values = { "strict", "fallback" },
	    .help = "strict: the same, but exit when it is\n"
		    "refused; fallback: as io_uring alone",
	},
	{
	    .name = "uring_depth",
	    .kind = ZC_OPT_UINT,
	    ZC_OPT_FIELD(uring.depth),
	    .min = 1,
	    .max = ZC_URING_DEPTH_MAX,
	    .metavar = "N",
	    .help = "ring entries per queue (1 to 128, default: 8)",
	},
	{
	    .name = "uring_pin",
	    .neg_name = "nouring_pin",
	    .kind = ZC_OPT_FLAG,
	    ZC_OPT_FIELD(uring.pin),
	    .neg_help = "let the ring's queue threads run on any CPU\n"
			"(default: each on its queue's CPU)",
	},
	{
	    .name = "uring_idle",
	    .neg_name = "nouring_idle",
	    .kind = ZC_OPT_FLAG,
	    ZC_OPT_FIELD(uring.idle),
	    .neg_help = "run the queue threads at normal priority\n"
			"(default: SCHED_IDLE, lifted while starved,\n"
			"so that a reply leaves the application on\n"
			"its CPU)",
	},
};

/* The words of an enum option with @sep between them, @last_sep before the last. */
static void join_values(const struct zc_opt_desc *d, const char *sep, const char *last_sep,
			char *buf, size_t size)
{
	size_t len = 0;
	int i;

	buf[0] = '\0';
	for (i = 0; d->values[i] && len < size; i++) {
		const char *before = i == 0 ? "" : d->values[i + 1] ? sep : last_sep;

		len += (size_t)snprintf(buf + len, size - len, "%s%s", before, d->values[i]);
	}
}

static int parse_seconds(struct zc_session *s, const char *name, const char *val, double *ret)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(val, &end);
	if (!*val || *end || errno || !isfinite(v) || v < 0 || v > 1e9) {
		zc_set_error(s, "bad value for option '%s': '%s' (expected seconds, e.g. 1.5)",
			     name, val);
		return -EINVAL;
	}
	*ret = v;
	return 0;
}

static int parse_uint(struct zc_session *s, const char *name, const char *val, unsigned int min,
		      unsigned int max, unsigned long *ret)
{
	unsigned long v;
	char *end;

	errno = 0;
	v = strtoul(val, &end, 10);
	if (!*val || *end || errno || *val == '-' || v < min || v > max) {
		zc_set_error(s, "bad value for option '%s': '%s' (expected %u to %u)", name, val,
			     min, max);
		return -EINVAL;
	}
	*ret = v;
	return 0;
}

static int parse_enum(struct zc_session *s, const struct zc_opt_desc *d, const char *val,
		      unsigned int *ret)
{
	char expected[128];
	unsigned int i;

	for (i = 0; d->values[i]; i++) {
		if (!strcmp(val, d->values[i])) {
			*ret = i;
			return 0;
		}
	}
	join_values(d, ", ", " or ", expected, sizeof(expected));
	zc_set_error(s, "bad value for option '%s': '%s' (expected %s)", d->name, val, expected);
	return -EINVAL;
}

static bool kind_takes_value(const struct zc_opt_desc *d)
{
	switch (d->kind) {
	case ZC_OPT_FLAG:
	case ZC_OPT_MOUNT_FLAG:
		return false;
	case ZC_OPT_NOOP:
		return d->noop_value;
	default:
		return true;
	}
}

/*
 * The row for @name, with a value (@val) or without; NULL (the error set)
 * when there is none.
 */
static const struct zc_opt_desc *find_opt(struct zc_session *s, const char *name, const char *val,
					  bool *ret_negated)
{
	bool known = false;
	size_t i;

	for (i = 0; i < ZC_ARRAY_SIZE(zc_opt_table); i++) {
		const struct zc_opt_desc *d = &zc_opt_table[i];
		bool negated = d->neg_name && !strcmp(name, d->neg_name);

		if (d->prefix && !strncmp(name, d->name, strlen(d->name))) {
			*ret_negated = false;
			return d;
		}
		if (!negated && strcmp(name, d->name))
			continue;
		known = true;
		if (kind_takes_value(d) == (val != NULL)) {
			*ret_negated = negated;
			return d;
		}
	}
	if (!known && val)
		zc_set_error(s, "unknown option '%s=%s'", name, val);
	else if (!known)
		zc_set_error(s, "unknown option '%s'", name);
	else if (val)
		zc_set_error(s, "option '%s' takes no value", name);
	else
		zc_set_error(s, "option '%s' needs a value (%s=...)", name, name);
	return NULL;
}

static int store_opt(struct zc_opts *opts, const struct zc_opt_desc *d, bool negated,
		     union zc_opt_value value)
{
	char *field = (char *)opts + d->offset;

	if (d->set) {
		d->set(opts, value);
		return 0;
	}
	switch (d->kind) {
	case ZC_OPT_FLAG:
		memcpy(field, &value.on, sizeof(value.on));
		break;
	case ZC_OPT_MOUNT_FLAG:
		if (negated)
			opts->mount_flags &= ~d->mount_flag;
		else
			opts->mount_flags = (opts->mount_flags & ~d->mount_clear) | d->mount_flag;
		break;
	case ZC_OPT_UINT:
		if (d->size == sizeof(size_t)) {
			size_t v = value.number;

			memcpy(field, &v, sizeof(v));
		} else {
			unsigned int v = (unsigned int)value.number;

			memcpy(field, &v, sizeof(v));
		}
		break;
	case ZC_OPT_SECONDS:
		memcpy(field, &value.seconds, sizeof(value.seconds));
		break;
	case ZC_OPT_ENUM: {
		int v = (int)value.choice;

		memcpy(field, &v, sizeof(v));
		break;
	}
	case ZC_OPT_TEXT: {
		char *copy = strdup(value.text), *old;

		if (!copy)
			return -ENOMEM;
		memcpy(&old, field, sizeof(old));
		free(old);
		memcpy(field, &copy, sizeof(copy));
		break;
	}
	case ZC_OPT_NOOP:
		break;
	}
	return 0;
}

/* Apply the library's option @name (@val: NULL for a bare name). */
static int set_lib_option(struct zc_session *s, const char *name, const char *val)
{
	union zc_opt_value value = { 0 };
	const struct zc_opt_desc *d;
	bool negated = false;
	int r = 0;

	d = find_opt(s, name, val, &negated);
	if (!d)
		return -EINVAL;
	switch (d->kind) {
	case ZC_OPT_MOUNT_FLAG:
		/* Set on the mount point after mounting: fusermount3 cannot. */
		if (!d->libfuse && d->mount_flag && !negated && !zc_has_capability(CAP_SYS_ADMIN)) {
			zc_set_error(
			    s, "option '%s' needs CAP_SYS_ADMIN (fusermount3 cannot set it)", name);
			return -EPERM;
		}
		value.on = !negated;
		break;
	case ZC_OPT_FLAG:
		value.on = !negated;
		break;
	case ZC_OPT_UINT:
		r = parse_uint(s, name, val, d->min, d->max, &value.number);
		break;
	case ZC_OPT_SECONDS:
		r = parse_seconds(s, name, val, &value.seconds);
		break;
	case ZC_OPT_ENUM:
		r = parse_enum(s, d, val, &value.choice);
		break;
	case ZC_OPT_TEXT:
		if (!*val) {
			zc_set_error(s, "option '%s' needs a value (%s=%s)", name, name,
				     d->metavar);
			r = -EINVAL;
		}
		value.text = val;
		break;
	case ZC_OPT_NOOP:
		break;
	}
	if (r < 0)
		return r;
	r = store_opt(&s->opts, d, negated, value);
	if (r < 0)
		zc_set_error(s, "out of memory");
	return r;
}

size_t zc_opts_libfuse_flags(const struct zc_opts *opts, const char **ret_names, size_t max)
{
	size_t i, n = 0;

	for (i = 0; i < ZC_ARRAY_SIZE(zc_opt_table) && n < max; i++) {
		const struct zc_opt_desc *d = &zc_opt_table[i];

		if (d->kind != ZC_OPT_MOUNT_FLAG || !d->libfuse)
			continue;
		if (opts->mount_flags & d->mount_flag)
			ret_names[n++] = d->name;
		else if (d->neg_name)
			ret_names[n++] = d->neg_name;
	}
	return n;
}

unsigned long zc_opts_flags_after_mount(const struct zc_opts *opts)
{
	unsigned long flags = 0;
	size_t i;

	for (i = 0; i < ZC_ARRAY_SIZE(zc_opt_table); i++) {
		const struct zc_opt_desc *d = &zc_opt_table[i];

		if (d->kind == ZC_OPT_MOUNT_FLAG && !d->libfuse)
			flags |= d->mount_flag;
	}
	return opts->mount_flags & flags;
}

const char *zc_opts_flag_name(unsigned long flags)
{
	size_t i;

	for (i = 0; i < ZC_ARRAY_SIZE(zc_opt_table); i++) {
		const struct zc_opt_desc *d = &zc_opt_table[i];

		if (d->kind == ZC_OPT_MOUNT_FLAG && (d->mount_flag & flags))
			return d->name;
	}
	return "?";
}

void zc_opts_free(struct zc_opts *opts)
{
	free(opts->fsname);
	free(opts->subtype);
	opts->fsname = opts->subtype = NULL;
}

ZC_EXPORT int zc_session_set_option(struct zc_session *s, const char *opt)
{
	char name[64];
	const char *val;
	size_t len;
	int r;

	val = strchr(opt, '=');
	len = val ? (size_t)(val - opt) : strlen(opt);
	if (len == 0 || len >= sizeof(name)) {
		zc_set_error(s, "malformed option '%s'", opt);
		return -EINVAL;
	}
	memcpy(name, opt, len);
	name[len] = '\0';
	if (val)
		val++;

	if (s->option_fn) {
		r = s->option_fn(s->option_data, name, val);
		if (r == 0)
			return 0;
		if (r != -ENOENT) {
			if (val)
				zc_set_error(s, "bad value for option '%s': '%s'", name, val);
			else
				zc_set_error(s, "option '%s' needs a value (%s=...)", name, name);
			return r;
		}
	}
	return set_lib_option(s, name, val);
}

/* --help: "    -o SYNOPSIS", the text from column 32 on, wrapped lines below it. */
#define ZC_HELP_COLUMN 32

struct help_buf {
	char text[8192];
	size_t len;
	bool full;
};

/* Append to @h; what does not fit is left out, whole. */
__attribute__((format(printf, 2, 3))) static void help_printf(struct help_buf *h, const char *fmt,
							      ...)
{
	size_t room = sizeof(h->text) - h->len;
	va_list ap;
	int n;

	if (h->full)
		return;
	va_start(ap, fmt);
	n = vsnprintf(h->text + h->len, room, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= room) {
		h->text[h->len] = '\0';
		h->full = true;
		return;
	}
	h->len += (size_t)n;
}

static void help_add_line(struct help_buf *h, const char *synopsis, const char *text)
{
	if (strlen("    -o ") + strlen(synopsis) + 2 > ZC_HELP_COLUMN)
		help_printf(h, "    -o %s\n%*s", synopsis, ZC_HELP_COLUMN, "");
	else
		help_printf(h, "    -o %-*s", ZC_HELP_COLUMN - (int)strlen("    -o "), synopsis);
	for (;;) {
		size_t line = strcspn(text, "\n");

		help_printf(h, "%.*s\n", (int)line, text);
		text += line;
		if (!*text)
			break;
		text++;
		help_printf(h, "%*s", ZC_HELP_COLUMN, "");
	}
}

static struct help_buf zc_help;
static pthread_once_t zc_help_once = PTHREAD_ONCE_INIT;

static void build_help(void)
{
	char synopsis[128], values[96];
	size_t i;

	for (i = 0; i < ZC_ARRAY_SIZE(zc_opt_table); i++) {
		const struct zc_opt_desc *d = &zc_opt_table[i];

		switch (d->kind) {
		case ZC_OPT_FLAG:
		case ZC_OPT_MOUNT_FLAG:
		case ZC_OPT_NOOP:
			snprintf(synopsis, sizeof(synopsis), "%s", d->name);
			break;
		case ZC_OPT_UINT:
		case ZC_OPT_TEXT:
			snprintf(synopsis, sizeof(synopsis), "%s=%s", d->name, d->metavar);
			break;
		case ZC_OPT_SECONDS:
			snprintf(synopsis, sizeof(synopsis), "%s=SECS", d->name);
			break;
		case ZC_OPT_ENUM:
			join_values(d, "|", "|", values, sizeof(values));
			snprintf(synopsis, sizeof(synopsis), "%s=%s", d->name, values);
			break;
		}
		if (d->synopsis)
			snprintf(synopsis, sizeof(synopsis), "%s", d->synopsis);
		if (d->help)
			help_add_line(&zc_help, synopsis, d->help);
		if (d->neg_name && d->neg_help)
			help_add_line(&zc_help, d->neg_name, d->neg_help);
	}
}

ZC_EXPORT const char *zc_options_help(void)
{
	pthread_once(&zc_help_once, build_help);
	return zc_help.text;
}

ZC_EXPORT int zc_session_set_options(struct zc_session *s, const char *optlist)
{
	char *buf, *out;
	const char *in;
	int r = 0;

	buf = malloc(strlen(optlist) + 1);
	if (!buf)
		return -ENOMEM;
	/* Split at unescaped commas; "\," stands for a comma in a value. */
	for (in = optlist, out = buf;; in++) {
		if (*in == '\\' && in[1]) {
			*out++ = *++in;
			continue;
		}
		if (*in == ',' || !*in) {
			*out = '\0';
			if (out == buf) {
				zc_set_error(s, "empty option in '%s'", optlist);
				r = -EINVAL;
				break;
			}
			r = zc_session_set_option(s, buf);
			if (r < 0 || !*in)
				break;
			out = buf;
			continue;
		}
		*out++ = *in;
	}
	free(buf);
	return r;
}
