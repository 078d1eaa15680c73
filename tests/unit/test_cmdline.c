/* SPDX-License-Identifier: GPL-2.0-or-later */
/* zc_parse_cmdline(): positional arguments, flags, -o lists, and what it refuses. */
#include <errno.h>

#include "zc_test.h"
#include "zcfuse/zcfuse.h"

#define ARGV_MAX 16

static const char *const two_args[] = { "SOURCE", "MOUNTPOINT", NULL };
static const char *const one_arg[] = { "MOUNTPOINT", NULL };

/* A writable argv from a NULL-terminated list: zc_parse_cmdline() reorders it. */
struct test_argv {
	char *argv[ARGV_MAX + 1];
	int argc;
};

static struct test_argv make_argv(const char *const list[])
{
	struct test_argv t = { .argc = 0 };

	while (list[t.argc]) {
		CHECK(t.argc < ARGV_MAX);
		t.argv[t.argc] = (char *)list[t.argc];
		t.argc++;
	}
	t.argv[t.argc] = NULL;
	return t;
}

static int parse(const char *const list[], const char *const names[], struct zc_cmdline *cl)
{
	struct test_argv t = make_argv(list);

	return zc_parse_cmdline(t.argc, t.argv, names, cl, sizeof(*cl));
}

/* The command line must be refused with exactly @msg. */
static void check_refused(const char *const list[], const char *const names[], const char *msg)
{
	struct zc_cmdline cl;
	int r = parse(list, names, &cl);

	if (r != -EINVAL || strcmp(cl.error, msg)) {
		fprintf(stderr, "%s ...: %d '%s', expected -EINVAL '%s'\n", list[1] ? list[1] : "",
			r, cl.error, msg);
		exit(1);
	}
}

static void test_positionals_and_flags(void)
{
	const char *const list[] = { "/usr/bin/zcfuse", "-f", "/src", "-s", "/mnt", NULL };
	struct zc_cmdline cl;

	memset(&cl, 0xaa, sizeof(cl));
	CHECK_EQ(parse(list, two_args, &cl), 0);
	CHECK(!strcmp(cl.args[0], "/src"));
	CHECK(!strcmp(cl.args[1], "/mnt"));
	CHECK(cl.args[2] == NULL && cl.args[3] == NULL);
	CHECK_EQ(cl.foreground, 1);
	CHECK_EQ(cl.single_threaded, 1);
	CHECK_EQ(cl.debug, 0);
	CHECK_EQ(cl.show_help, 0);
	CHECK_EQ(cl.show_version, 0);
	CHECK_EQ(cl.n_opts, 0);
	CHECK_EQ(cl.error[0], '\0');
}

static void test_debug_implies_foreground(void)
{
	const char *const list[] = { "memfs", "/mnt", "-d", NULL };
	struct zc_cmdline cl;

	CHECK_EQ(parse(list, one_arg, &cl), 0);
	CHECK_EQ(cl.debug, 1);
	CHECK_EQ(cl.foreground, 1);
	CHECK_EQ(cl.single_threaded, 0);
	/* "-" alone is an argument, not a flag. */
	{
		const char *const dash[] = { "memfs", "-", NULL };

		CHECK_EQ(parse(dash, one_arg, &cl), 0);
		CHECK(!strcmp(cl.args[0], "-"));
	}
}

static void test_option_lists(void)
{
	/* clang-format off */
	const char *const list[] = {
		"zcfuse", "-o", "cache=never,ro", "/src", "-oallow_other", "/mnt",
		"-o", "-f", "-o", "", "-d", "-othreads=2", NULL,
	};
	/* clang-format on */
	struct test_argv t = make_argv(list);
	struct zc_cmdline cl;

	CHECK_EQ(zc_parse_cmdline(t.argc, t.argv, two_args, &cl, sizeof(cl)), 0);
	CHECK_EQ(cl.n_opts, 5);
	CHECK(!strcmp(cl.opts[0], "cache=never,ro"));
	CHECK(!strcmp(cl.opts[1], "allow_other"));
	/* The word after -o is its list, whatever it looks like. */
	CHECK(!strcmp(cl.opts[2], "-f"));
	CHECK(!strcmp(cl.opts[3], ""));
	CHECK(!strcmp(cl.opts[4], "threads=2"));
	CHECK_EQ(cl.foreground, 1);
	CHECK_EQ(cl.debug, 1);
	CHECK(!strcmp(cl.args[0], "/src"));
	CHECK(!strcmp(cl.args[1], "/mnt"));
	/* The lists sit in argv[1...]; argv[0] and the end of argv are untouched. */
	CHECK(cl.opts == t.argv + 1);
	CHECK(!strcmp(t.argv[0], "zcfuse"));
	CHECK(t.argv[t.argc] == NULL);
}

static void test_help_and_version(void)
{
	const char *const help[] = { "zcfuse", "/src", "--help", "--bogus", NULL };
	const char *const help_short[] = { "zcfuse", "-h", NULL };
	const char *const version[] = { "zcfuse", "-V", "-o", NULL };
	const char *const version_long[] = { "zcfuse", "--version", NULL };
	const char *const late_help[] = { "zcfuse", "--bogus", "-h", NULL };
	struct zc_cmdline cl;

	/* -h ends the reading: what follows and what is missing do not matter. */
	CHECK_EQ(parse(help, two_args, &cl), 0);
	CHECK_EQ(cl.show_help, 1);
	CHECK_EQ(cl.show_version, 0);
	CHECK_EQ(parse(help_short, two_args, &cl), 0);
	CHECK_EQ(cl.show_help, 1);
	CHECK_EQ(parse(version, two_args, &cl), 0);
	CHECK_EQ(cl.show_version, 1);
	CHECK_EQ(cl.show_help, 0);
	CHECK_EQ(parse(version_long, one_arg, &cl), 0);
	CHECK_EQ(cl.show_version, 1);
	/* What comes before it is read, and may be refused. */
	check_refused(late_help, two_args, "unknown option '--bogus' (see zcfuse --help)");
}

static void test_refused(void)
{
	const char *const none[] = { "/usr/bin/zcfuse", NULL };
	const char *const no_mnt[] = { "zcfuse", "/src", "-f", NULL };
	const char *const extra[] = { "zcfuse", "/src", "/mnt", "/more", NULL };
	const char *const memfs_extra[] = { "./memfs", "/mnt", "/src", NULL };
	const char *const memfs_none[] = { "./memfs", "-s", NULL };
	const char *const no_list[] = { "zcfuse", "/src", "/mnt", "-o", NULL };
	const char *const unknown[] = { "zcfuse", "/src", "/mnt", "--frobnicate", NULL };
	const char *const unknown_short[] = { "zcfuse", "-x", "/src", "/mnt", NULL };
	const char *const double_dash[] = { "zcfuse", "--", "/src", "/mnt", NULL };
	const char *const three[] = { "blobstore", NULL };
	const char *const three_names[] = { "A", "B", "C", NULL };
	const char *const five_names[] = { "A", "B", "C", "D", "E", NULL };

	check_refused(none, two_args,
		      "missing SOURCE and MOUNTPOINT (usage: zcfuse SOURCE MOUNTPOINT [options])");
	check_refused(no_mnt, two_args,
		      "missing MOUNTPOINT (usage: zcfuse SOURCE MOUNTPOINT [options])");
	check_refused(extra, two_args, "unexpected argument '/more' (see zcfuse --help)");
	check_refused(memfs_extra, one_arg, "unexpected argument '/src' (see memfs --help)");
	check_refused(memfs_none, one_arg,
		      "missing MOUNTPOINT (usage: memfs MOUNTPOINT [options])");
	check_refused(no_list, two_args, "option -o needs a value");
	check_refused(unknown, two_args, "unknown option '--frobnicate' (see zcfuse --help)");
	check_refused(unknown_short, two_args, "unknown option '-x' (see zcfuse --help)");
	check_refused(double_dash, two_args, "unknown option '--' (see zcfuse --help)");
	check_refused(three, three_names, "missing A, B and C (usage: blobstore A B C [options])");
	check_refused(three, five_names, "at most 4 positional arguments can be read");
}

static void test_no_positionals(void)
{
	const char *const flags_only[] = { "prog", "-f", "-o", "ro", NULL };
	const char *const one[] = { "prog", "x", NULL };
	const char *const no_names[] = { NULL };
	struct zc_cmdline cl;

	CHECK_EQ(parse(flags_only, NULL, &cl), 0);
	CHECK_EQ(cl.n_opts, 1);
	CHECK_EQ(parse(flags_only, no_names, &cl), 0);
	check_refused(one, NULL, "unexpected argument 'x' (see prog --help)");
}

static void test_sizes(void)
{
	const char *const list[] = { "zcfuse", "/src", "/mnt", "-s", NULL };
	union {
		struct zc_cmdline cl;
		unsigned char bytes[sizeof(struct zc_cmdline) + 16];
	} big;
	struct test_argv t = make_argv(list);
	struct zc_cmdline cl;
	size_t i;

	/* A caller built against a later, larger struct: the bytes past ours are zeroed. */
	memset(&big, 0xaa, sizeof(big));
	CHECK_EQ(zc_parse_cmdline(t.argc, t.argv, two_args, &big.cl, sizeof(big)), 0);
	CHECK_EQ(big.cl.single_threaded, 1);
	CHECK(!strcmp(big.cl.args[1], "/mnt"));
	for (i = sizeof(big.cl); i < sizeof(big); i++)
		CHECK_EQ(big.bytes[i], 0);
	/* Too small for the first version's struct, or nothing to fill in. */
	CHECK_EQ(zc_parse_cmdline(t.argc, t.argv, two_args, &cl, sizeof(cl) - 1), -EINVAL);
	CHECK_EQ(zc_parse_cmdline(t.argc, t.argv, two_args, NULL, sizeof(cl)), -EINVAL);
	CHECK_EQ(zc_parse_cmdline(-1, t.argv, two_args, &cl, sizeof(cl)), -EINVAL);
	/* No argv[0] at all: the program is named generically. */
	CHECK_EQ(zc_parse_cmdline(0, t.argv, one_arg, &cl, sizeof(cl)), -EINVAL);
	CHECK(!strcmp(cl.error, "missing MOUNTPOINT (usage: program MOUNTPOINT [options])"));
}

int main(void)
{
	test_positionals_and_flags();
	test_debug_implies_foreground();
	test_option_lists();
	test_help_and_version();
	test_refused();
	test_no_positionals();
	test_sizes();
	return 0;
}
