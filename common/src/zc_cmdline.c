/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A mount program's command line: positional arguments, -f -d -s -h -V and -o lists. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "zcfuse_i.h"

/* The size of struct zc_cmdline in the first version that had it. */
#define ZC_CMDLINE_SIZE_MIN                                                                        \
	(offsetof(struct zc_cmdline, error) + sizeof(((struct zc_cmdline *)0)->error))

__attribute__((format(printf, 2, 3))) static int cmdline_error(struct zc_cmdline *cl,
							       const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cl->error, sizeof(cl->error), fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* @names from @first on with @sep between them, @last_sep before the last. */
static void join_names(const char *const names[], int first, int count, const char *sep,
		       const char *last_sep, char *buf, size_t size)
{
	size_t len = 0;
	int i;

	buf[0] = '\0';
	for (i = first; i < count && len < size; i++) {
		const char *before = i == first ? "" : i + 1 < count ? sep : last_sep;

		len += (size_t)snprintf(buf + len, size - len, "%s%s", before, names[i]);
	}
}

static int parse_cmdline(int argc, char *argv[], const char *const arg_names[],
			 struct zc_cmdline *cl)
{
	const char *prog = "program";
	char missing[192], usage[192];
	int n_names = 0, n_args = 0, i;

	if (argc > 0 && argv[0] && argv[0][0])
		prog = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
	while (arg_names && arg_names[n_names])
		n_names++;
	if (n_names > ZC_CMDLINE_ARGS_MAX)
		return cmdline_error(cl, "at most %d positional arguments can be read",
				     ZC_CMDLINE_ARGS_MAX);
	/* The -o lists move to argv[1...]: never past the argument they came from. */
	cl->opts = argc > 0 ? argv + 1 : argv;

	for (i = 1; i < argc; i++) {
		char *arg = argv[i];

		if (!strcmp(arg, "-h") || !strcmp(arg, "--help")) {
			cl->show_help = 1;
			return 0;
		}
		if (!strcmp(arg, "-V") || !strcmp(arg, "--version")) {
			cl->show_version = 1;
			return 0;
		}
		if (!strcmp(arg, "-f")) {
			cl->foreground = 1;
		} else if (!strcmp(arg, "-d")) {
			cl->debug = cl->foreground = 1;
		} else if (!strcmp(arg, "-s")) {
			cl->single_threaded = 1;
		} else if (!strncmp(arg, "-o", 2)) {
			char *list = arg[2] ? arg + 2 : i + 1 < argc ? argv[++i] : NULL;

			if (!list)
				return cmdline_error(cl, "option -o needs a value");
			cl->opts[cl->n_opts++] = list;
		} else if (arg[0] == '-' && arg[1]) {
			return cmdline_error(cl, "unknown option '%s' (see %s --help)", arg, prog);
		} else if (n_args < n_names) {
			cl->args[n_args++] = arg;
		} else {
			return cmdline_error(cl, "unexpected argument '%s' (see %s --help)", arg,
					     prog);
		}
	}
	if (n_args < n_names) {
		join_names(arg_names, n_args, n_names, ", ", " and ", missing, sizeof(missing));
		join_names(arg_names, 0, n_names, " ", " ", usage, sizeof(usage));
		return cmdline_error(cl, "missing %s (usage: %s %s [options])", missing, prog,
				     usage);
	}
	return 0;
}

ZC_EXPORT int zc_parse_cmdline(int argc, char *argv[], const char *const arg_names[],
			       struct zc_cmdline *ret, size_t size)
{
	struct zc_cmdline cl;
	int r;

	if (!ret || size < ZC_CMDLINE_SIZE_MIN || argc < 0 || (argc > 0 && !argv))
		return -EINVAL;
	memset(&cl, 0, sizeof(cl));
	r = parse_cmdline(argc, argv, arg_names, &cl);
	/* Fields past the caller's size are left out; its own ones past ours are zeroed. */
	memset(ret, 0, size);
	memcpy(ret, &cl, size < sizeof(cl) ? size : sizeof(cl));
	return r;
}
