/* SPDX-License-Identifier: GPL-2.0-or-later */
/* zcfuse: mount a directory through the passthrough backend. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "pt.h"
#include "service.h"

/* The positional arguments zcfuse takes. */
static const char *const cmdline_args[] = { "SOURCE", "MOUNTPOINT", NULL };

/* The library's notices: what runs differently from what was asked, and why. */
static void print_notice(void *data, const char *line)
{
	(void)data;
	log_msg(LOG_NOTICE, "%s", line);
}

/* The backend's notices (a mount without usable file handles). */
static void print_backend_notice(const char *line)
{
	log_msg(LOG_NOTICE, "%s", line);
}

/* The daemon's own options: the passthrough backend's, and where messages go. */
struct daemon_conf {
	struct pt_conf pt;
	bool log_set; /* -o log= given: else stderr, and the system log once detached */
	enum log_dest log;
};

/* The mount's access time options, which also decide what the daemon's reads of SOURCE do. */
static bool atime_option(struct pt_conf *conf, const char *name)
{
	static const struct {
		const char *name;
		bool dir;
		uint64_t attr;
	} rules[] = {
		{ "noatime", false, MOUNT_ATTR_NOATIME },
		{ "atime", false, MOUNT_ATTR_RELATIME },
		{ "relatime", false, MOUNT_ATTR_RELATIME },
		{ "strictatime", false, MOUNT_ATTR_STRICTATIME },
		{ "nodiratime", true, MOUNT_ATTR_NODIRATIME },
		{ "diratime", true, 0 },
	};
	size_t i;

	/* A read-only mount changes no access time, whatever its rule says. */
	if (!strcmp(name, "ro") || !strcmp(name, "rw")) {
		conf->read_only = name[1] == 'o';
		return true;
	}
	for (i = 0; i < sizeof(rules) / sizeof(rules[0]); i++) {
		if (strcmp(name, rules[i].name))
			continue;
		if (rules[i].dir) {
			conf->diratime_set = true;
			conf->diratime = rules[i].attr;
		} else {
			conf->atime_set = true;
			conf->atime = rules[i].attr;
		}
		return true;
	}
	return false;
}

static int daemon_option(void *data, const char *name, const char *value)
{
	struct daemon_conf *conf = data;
	unsigned long n;
	char *end;

	if (!strcmp(name, "log")) {
		if (!value || log_parse_dest(value, &conf->log) < 0)
			return -EINVAL;
		conf->log_set = true;
		return 0;
	}
	if (atime_option(&conf->pt, name))
		return -ENOENT; /* the library sets the mount's flag too */
	if (strcmp(name, "max_fds"))
		return -ENOENT;
	if (!value || !*value)
		return -EINVAL;
	errno = 0;
	n = strtoul(value, &end, 10);
	if (errno || *end || n < 1 || n > (1UL << 24) || value[0] == '-')
		return -EINVAL;
	conf->pt.max_fds = (unsigned int)n;
	return 0;
}

static void usage(FILE *out)
{
	fprintf(out,
		"usage: zcfuse SOURCE MOUNTPOINT [-f] [-d] [-s] [-o opt[,opt...]]\n"
		"\n"
		"Mount the directory SOURCE at MOUNTPOINT.\n"
		"\n"
		"    -f                          stay in the foreground\n"
		"    -d                          print every request (implies -f)\n"
		"    -s                          serve requests on one thread\n"
		"    -h, --help                  print this help\n"
		"    -V, --version               print the version\n"
		"\n"
		"Mount options:\n"
		"%s"
		"    -o max_fds=N                keep at most N descriptors of SOURCE's\n"
		"                                inodes open between requests; the rest\n"
		"                                are reopened from file handles when used\n"
		"                                (default: a quarter of the open-file\n"
		"                                limit, at most 4096). Open files are\n"
		"                                counted apart: one user may hold at most\n"
		"                                half of the descriptors left\n"
		"    -o log=stderr|syslog        where notices and errors go (default:\n"
		"                                stderr, and the system log once\n"
		"                                detached, that is without -f)\n"
		"\n"
		"Unmount with: fusermount3 -u MOUNTPOINT\n",
		zc_options_help());
}

/* Is @inner the same as or below @outer? Both canonical. */
static bool path_is_below(const char *inner, const char *outer)
{
	size_t len = strlen(outer);

	if (!strcmp(outer, "/"))
		return true;
	return !strncmp(inner, outer, len) && inner[len] == '/';
}

static int check_source(const char *source, char **ret_canonical)
{
	struct stat st;
	int fd;

	if (stat(source, &st) < 0) {
		log_msg(LOG_ERR, "source '%s': %s\n", source, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		log_msg(LOG_ERR, "source '%s' is not a directory\n", source);
		return -1;
	}
	fd = open(source, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		log_msg(LOG_ERR, "cannot read source '%s': %s\n", source, strerror(errno));
		return -1;
	}
	close(fd);
	*ret_canonical = realpath(source, NULL);
	if (!*ret_canonical) {
		log_msg(LOG_ERR, "source '%s': %s\n", source, strerror(errno));
		return -1;
	}
	return 0;
}

static void raise_limit(int resource)
{
	struct rlimit rl;

	if (getrlimit(resource, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(resource, &rl);
	}
}

/*
 * Descriptors for open files and cached inodes: allow as many as we may
 * (pt_fs_init() shares them out). The file size limit that counts is the caller's, which the kernel
 * checks before a write reaches the daemon: the daemon's own soft limit
 * (that of the shell it was started from) must not cut callers' writes
 * short, and a write past its hard limit fails with EFBIG instead of
 * ending the daemon with SIGXFSZ.
 */
static void raise_limits(void)
{
	raise_limit(RLIMIT_NOFILE);
	raise_limit(RLIMIT_FSIZE);
	signal(SIGXFSZ, SIG_IGN);
}

int main(int argc, char *argv[])
{
	struct zc_cmdline cl;
	const char *mountpoint;
	char *source = NULL, *mnt = NULL;
	struct zc_session *s = NULL;
	struct daemon_conf conf = { .pt.notice = print_backend_notice };
	struct rlimit nofile;
	struct pt_fs fs;
	bool fs_ready = false;
	int r, i, status = 1;

	if (zc_parse_cmdline(argc, argv, cmdline_args, &cl, sizeof(cl)) < 0) {
		log_msg(LOG_ERR, "%s\n", cl.error);
		return 2;
	}
	if (cl.show_help) {
		usage(stdout);
		return 0;
	}
	if (cl.show_version) {
		printf("zcfuse %s (libzcfuse %s)\n", ZCFUSE_VERSION_STRING, zc_version());
		return 0;
	}
	mountpoint = cl.args[1];
	if (check_source(cl.args[0], &source) < 0)
		return 1;
	raise_limits();

	s = zc_session_new(&pt_ops, sizeof(pt_ops), &fs);
	if (!s) {
		log_msg(LOG_ERR, "%s\n", strerror(errno));
		goto out;
	}
	zc_session_set_option_handler(s, daemon_option, &conf);
	/*
	 * Kernel passthrough where the kernel and the daemon's privileges
	 * allow it: the fastest data path, with SOURCE's own page cache.
	 */
	if (zc_session_set_options(s, "passthrough=auto") < 0) {
		log_msg(LOG_ERR, "%s\n", zc_session_error(s));
		goto out;
	}
	for (i = 0; i < cl.n_opts; i++) {
		if (zc_session_set_options(s, cl.opts[i]) < 0) {
			log_msg(LOG_ERR, "%s\n", zc_session_error(s));
			status = 2;
			goto out;
		}
	}
	if (conf.log_set)
		log_set_dest(conf.log);
	/* mount -o remount: change the mount that is there, set nothing up. */
	r = zc_session_remount(s, mountpoint);
	if (r != 0) {
		if (r < 0)
			log_msg(LOG_ERR, "%s\n", zc_session_error(s));
		else
			status = 0;
		goto out;
	}
	mnt = realpath(mountpoint, NULL);
	if (mnt && path_is_below(mnt, source)) {
		log_msg(LOG_ERR, "mountpoint '%s' is inside source '%s'\n", mnt, source);
		goto out;
	}
	if (access("/proc/self/fd", R_OK) < 0) {
		log_msg(LOG_ERR, "/proc is not mounted; zcfuse needs /proc/self/fd\n");
		goto out;
	}
	r = pt_fs_init(&fs, source, &conf.pt);
	if (r == -EINVAL && conf.pt.max_fds) {
		getrlimit(RLIMIT_NOFILE, &nofile);
		log_msg(LOG_ERR,
			"max_fds=%u leaves too few descriptors under the open-file limit (%llu): "
			"it needs %lu\n",
			conf.pt.max_fds, (unsigned long long)nofile.rlim_cur,
			pt_nofile_needed(conf.pt.max_fds));
		status = 2;
		goto out;
	}
	if (r == -EINVAL) {
		getrlimit(RLIMIT_NOFILE, &nofile);
		log_msg(LOG_ERR,
			"the open-file limit (%llu) is too small: zcfuse needs %lu descriptors "
			"(ulimit -n, or LimitNOFILE= in a systemd unit)\n",
			(unsigned long long)nofile.rlim_cur, pt_nofile_needed(0));
		goto out;
	}
	if (r < 0) {
		log_msg(LOG_ERR, "source '%s': %s\n", source, strerror(-r));
		goto out;
	}
	fs_ready = true;
	zc_session_set_features(s, ZC_FEATURE_DONT_MASK | ZC_FEATURE_POSIX_ACL |
				       ZC_FEATURE_OPEN_FLAGS_IN);
	zc_session_set_debug(s, cl.debug);
	zc_session_set_notice_handler(s, print_notice, NULL);
	zc_session_set_single_threaded(s, cl.single_threaded);
	r = zc_session_set_fsname(s, source);
	if (r < 0) {
		log_msg(LOG_ERR, "%s\n", strerror(-r));
		goto out;
	}
	/* Detaching to the system log: what mounting notices goes there too. */
	if (!cl.foreground && !conf.log_set)
		log_hold_notices();
	r = zc_session_mount(s, mountpoint);
	if (r < 0) {
		log_msg(LOG_ERR, "%s\n", zc_session_error(s));
		goto out;
	}
	if (cl.foreground) {
		service_notify_ready();
	} else {
		r = service_detach(conf.log_set && conf.log == LOG_TO_STDERR);
		if (r < 0) {
			log_msg(LOG_ERR, "cannot run in the background: %s\n", strerror(-r));
			goto out;
		}
		if (!conf.log_set)
			log_set_dest(LOG_TO_SYSLOG);
		log_release_notices();
	}
	r = zc_session_loop(s);
	service_notify_stopping();
	if (r < 0)
		log_msg(LOG_ERR, "%s\n", zc_session_error(s));
	else
		status = 0;
out:
	log_release_notices(); /* kept while mounting, which failed: on stderr */
	zc_session_destroy(s);
	if (fs_ready)
		pt_fs_fini(&fs);
	free(mnt);
	free(source);
	return status;
}
