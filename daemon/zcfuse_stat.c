/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * zcfuse-stat: the counters of a zcfuse (or other libzcfuse) mount, read
 * from the user.zcfuse.stats extended attribute of its root, as a table or,
 * with an interval, as one row of rates per interval the way vmstat does.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/xattr.h>
#include <time.h>

#include "zcfuse/zcfuse.h"

#define STATS_XATTR	  "user.zcfuse.stats"
#define BACKEND_XATTR	  "user.zcfuse.backend"
#define BACKEND_PREFIX	  "backend."
#define FUSE_SUPER_MAGIC  0x65735546
#define INTERVAL_MAX_SECS 86400.0
#define MIB		  (1024.0 * 1024.0)
#define XATTR_BUF_SIZE	  8192

struct counter {
	char *name;
	uint64_t value;
};

/* The counters at one moment. */
struct sample {
	struct counter *counters;
	size_t n;
	size_t cap;
	struct timespec at;
};

static const char *mountpoint;

/* "zcfuse-stat: MESSAGE" on one line; control bytes in it written as \xNN. */
__attribute__((format(printf, 1, 2))) static void errorf(const char *fmt, ...)
{
	char msg[4096];
	const unsigned char *p;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fputs("zcfuse-stat: ", stderr);
	for (p = (const unsigned char *)msg; *p; p++) {
		if (*p < 0x20 || *p == 0x7f)
			fprintf(stderr, "\\x%02x", *p);
		else
			fputc(*p, stderr);
	}
	fputc('\n', stderr);
}

static void usage(FILE *out)
{
	fprintf(out, "usage: zcfuse-stat MOUNTPOINT [INTERVAL [COUNT]]\n"
		     "\n"
		     "Print the counters of the zcfuse mount at MOUNTPOINT as a table. With\n"
		     "INTERVAL (seconds, fractions allowed), print a header line, then one row\n"
		     "of rates every INTERVAL seconds: COUNT rows, or until interrupted.\n"
		     "\n"
		     "    -h, --help       print this help\n"
		     "    -V, --version    print the version\n"
		     "\n"
		     "See zcfuse-stat(1) for the columns.\n");
}

static void sample_clear(struct sample *s)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		free(s->counters[i].name);
	free(s->counters);
	*s = (struct sample){ 0 };
}

static struct counter *sample_find(const struct sample *s, const char *name)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		if (!strcmp(s->counters[i].name, name))
			return &s->counters[i];
	return NULL;
}

/* Add @value to counter @prefix@name (the same name twice adds up: requests.OTHER). */
static int sample_add(struct sample *s, const char *prefix, const char *name, size_t name_len,
		      uint64_t value)
{
	struct counter *c, *grown;
	char *full;

	if (asprintf(&full, "%s%.*s", prefix, (int)name_len, name) < 0)
		return -ENOMEM;
	c = sample_find(s, full);
	if (c) {
		c->value += value;
		free(full);
		return 0;
	}
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 64;

		grown = realloc(s->counters, cap * sizeof(*grown));
		if (!grown) {
			free(full);
			return -ENOMEM;
		}
		s->counters = grown;
		s->cap = cap;
	}
	s->counters[s->n++] = (struct counter){ .name = full, .value = value };
	return 0;
}

/*
 * The value of extended attribute @name of @path, NUL-terminated, in *@ret
 * (to free). One getxattr() call, a request of the mount, unless the value
 * outgrows the buffer.
 */
static int read_xattr(const char *path, const char *name, char **ret)
{
	size_t size = XATTR_BUF_SIZE;
	char *buf;
	ssize_t n;

	for (;;) {
		buf = malloc(size + 1);
		if (!buf)
			return -ENOMEM;
		n = getxattr(path, name, buf, size);
		if (n >= 0)
			break;
		free(buf);
		if (errno != ERANGE)
			return -errno;
		n = getxattr(path, name, NULL, 0);
		if (n < 0)
			return -errno;
		size = (size_t)n + XATTR_BUF_SIZE; /* room to grow before the next call */
	}
	buf[n] = '\0';
	*ret = buf;
	return 0;
}

/* Lines of "name value" into @s, each name after @prefix. */
static int parse_counters(struct sample *s, const char *prefix, const char *text)
{
	const char *line, *end, *space;
	uint64_t value;
	char *num_end;
	int r;

	for (line = text; *line; line = *end ? end + 1 : end) {
		end = strchr(line, '\n');
		if (!end)
			end = line + strlen(line);
		if (end == line)
			continue;
		space = memrchr(line, ' ', (size_t)(end - line));
		if (!space || space == line || space[1] < '0' || space[1] > '9') {
			errorf("%s: unreadable counter line '%.*s'", mountpoint, (int)(end - line),
			       line);
			return -EINVAL;
		}
		errno = 0;
		value = strtoull(space + 1, &num_end, 10);
		if (errno || num_end != end) {
			errorf("%s: unreadable counter line '%.*s'", mountpoint, (int)(end - line),
			       line);
			return -EINVAL;
		}
		r = sample_add(s, prefix, line, (size_t)(space - line), value);
		if (r < 0)
			return r;
	}
	return 0;
}

/* Say, in one line, why the counters of @path could not be read (-@err). */
static void report_unreadable(const char *path, int err, bool watching)
{
	struct statfs sfs;

	if (watching && statfs(path, &sfs) == 0 && sfs.f_type != FUSE_SUPER_MAGIC)
		errorf("%s: no longer a zcfuse mount (unmounted)", path);
	else if (err == -ENODATA || err == -EOPNOTSUPP)
		errorf("%s: not the root of a zcfuse mount (it has no %s attribute)", path,
		       STATS_XATTR);
	else
		errorf("%s: %s", path, strerror(-err));
}

/*
 * Read the mount's counters into @s (cleared first), and the backend's own
 * (user.zcfuse.backend, when it has them) after "backend.": two GETXATTR
 * requests and nothing else, so that a quiet mount shows two a row.
 * @watching: rows were printed before. Prints why and returns -errno when
 * the counters cannot be read.
 */
static int read_sample(const char *path, struct sample *s, bool watching)
{
	char *text = NULL;
	int r;

	sample_clear(s);
	r = read_xattr(path, STATS_XATTR, &text);
	if (r < 0) {
		report_unreadable(path, r, watching);
		return r;
	}
	clock_gettime(CLOCK_MONOTONIC, &s->at);
	r = parse_counters(s, "", text);
	free(text);
	if (r < 0)
		return r;
	if (read_xattr(path, BACKEND_XATTR, &text) == 0) {
		r = parse_counters(s, BACKEND_PREFIX, text);
		free(text);
	}
	return r;
}

/* Refuse, with one line, a path that is not a FUSE mount before reading it. */
static int check_mountpoint(const char *path)
{
	struct statfs sfs;
	struct stat st;

	if (stat(path, &st) < 0 || statfs(path, &sfs) < 0) {
		errorf("%s: %s", path, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		errorf("%s: not a directory, so not a zcfuse mount", path);
		return -1;
	}
	if (sfs.f_type != FUSE_SUPER_MAGIC) {
		errorf("%s: not a zcfuse mount (not a FUSE file system)", path);
		return -1;
	}
	return 0;
}

static void print_table(const struct sample *s)
{
	int width = (int)strlen("counter"), value_width = (int)strlen("value");
	char digits[32];
	size_t i;

	for (i = 0; i < s->n; i++) {
		int len = snprintf(digits, sizeof(digits), "%" PRIu64, s->counters[i].value);

		if ((int)strlen(s->counters[i].name) > width)
			width = (int)strlen(s->counters[i].name);
		if (len > value_width)
			value_width = len;
	}
	printf("%-*s %*s\n", width, "counter", value_width, "value");
	for (i = 0; i < s->n; i++)
		printf("%-*s %*" PRIu64 "\n", width, s->counters[i].name, value_width,
		       s->counters[i].value);
}

/* How much counter @name grew from @before to @after (an absent counter is 0). */
static uint64_t delta(const struct sample *before, const struct sample *after, const char *name)
{
	const struct counter *b = sample_find(before, name), *a = sample_find(after, name);
	uint64_t was = b ? b->value : 0, now = a ? a->value : 0;

	return now > was ? now - was : 0;
}

static uint64_t delta_sum(const struct sample *before, const struct sample *after,
			  const char *const names[])
{
	uint64_t sum = 0;

	for (; *names; names++)
		sum += delta(before, after, *names);
	return sum;
}

/* What a column shows: requests per second, MiB per second or events per second. */
enum column_unit {
	COLUMN_PER_SEC,
	COLUMN_MIB_PER_SEC,
};

struct column {
	const char *header;
	enum column_unit unit;
	/* The counters it adds up; "requests.*" alone: every request. */
	const char *counters[5];
};

#define COLUMN_WIDTH 8

static const struct column columns[] = {
	{ "req/s", COLUMN_PER_SEC, { "requests.*" } },
	{ "LOOKUP", COLUMN_PER_SEC, { "requests.LOOKUP" } },
	{ "GETATTR", COLUMN_PER_SEC, { "requests.GETATTR" } },
	{ "OPEN", COLUMN_PER_SEC, { "requests.OPEN", "requests.CREATE" } },
	{ "READ", COLUMN_PER_SEC, { "requests.READ" } },
	{ "WRITE", COLUMN_PER_SEC, { "requests.WRITE" } },
	{ "rd_MiB/s", COLUMN_MIB_PER_SEC, { "data.read" } },
	{ "wr_MiB/s", COLUMN_MIB_PER_SEC, { "data.written" } },
	{ "spliced", COLUMN_MIB_PER_SEC, { "data.read.pipe", "data.written.pipe" } },
	{ "copied", COLUMN_MIB_PER_SEC, { "data.read.mem", "data.written.mem" } },
	{ "ring",
	  COLUMN_MIB_PER_SEC,
	  { "transport.uring.payload_in", "transport.uring.payload_out" } },
	{ "pt_opens", COLUMN_PER_SEC, { "passthrough.opens" } },
};

#define N_COLUMNS (sizeof(columns) / sizeof(columns[0]))

static uint64_t all_requests(const struct sample *before, const struct sample *after)
{
	uint64_t sum = 0;
	size_t i;

	for (i = 0; i < after->n; i++)
		if (!strncmp(after->counters[i].name, "requests.", strlen("requests.")))
			sum += delta(before, after, after->counters[i].name);
	return sum;
}

static void print_header(void)
{
	size_t i;

	for (i = 0; i < N_COLUMNS; i++)
		printf("%*s ", COLUMN_WIDTH, columns[i].header);
	printf("fallbacks\n");
	fflush(stdout);
}

/* Fallbacks of the interval by cause ("pipe_size:2 pt.setid:1"), or "-". */
static void print_fallbacks(const struct sample *before, const struct sample *after)
{
	static const char *const prefixes[][2] = {
		{ "fallback.", "" },
		{ "passthrough.fallback.", "pt." },
	};
	bool any = false;
	size_t i, p;

	for (i = 0; i < after->n; i++) {
		const char *name = after->counters[i].name;
		uint64_t n;

		for (p = 0; p < sizeof(prefixes) / sizeof(prefixes[0]); p++) {
			size_t len = strlen(prefixes[p][0]);

			if (strncmp(name, prefixes[p][0], len))
				continue;
			n = delta(before, after, name);
			if (n)
				printf("%s%s%s:%" PRIu64, any ? " " : "", prefixes[p][1],
				       name + len, n);
			any |= n != 0;
		}
	}
	printf("%s\n", any ? "" : "-");
}

static double seconds_between(const struct timespec *a, const struct timespec *b)
{
	return (double)(b->tv_sec - a->tv_sec) + (double)(b->tv_nsec - a->tv_nsec) / 1e9;
}

static void print_row(const struct sample *before, const struct sample *after)
{
	double secs = seconds_between(&before->at, &after->at);
	size_t i;

	if (secs <= 0)
		secs = 1e-9;
	for (i = 0; i < N_COLUMNS; i++) {
		const struct column *col = &columns[i];
		uint64_t n;

		if (!strcmp(col->counters[0], "requests.*"))
			n = all_requests(before, after);
		else
			n = delta_sum(before, after, col->counters);
		if (col->unit == COLUMN_MIB_PER_SEC)
			printf("%*.1f ", COLUMN_WIDTH, (double)n / MIB / secs);
		else
			printf("%*.0f ", COLUMN_WIDTH, (double)n / secs);
	}
	print_fallbacks(before, after);
	fflush(stdout);
}

static int parse_interval(const char *arg, double *ret)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(arg, &end);
	if (!*arg || *end || errno || !isfinite(v) || v <= 0 || v > INTERVAL_MAX_SECS) {
		errorf("bad interval '%s': expected seconds, more than 0 and at most %.0f "
		       "(e.g. 1 or 0.5)",
		       arg, INTERVAL_MAX_SECS);
		return -EINVAL;
	}
	*ret = v;
	return 0;
}

static int parse_count(const char *arg, unsigned long *ret)
{
	unsigned long v;
	char *end;

	errno = 0;
	v = strtoul(arg, &end, 10);
	if (!*arg || *end || errno || arg[0] == '-' || arg[0] == '+' || v == 0) {
		errorf("bad count '%s': expected a whole number of rows, 1 or more", arg);
		return -EINVAL;
	}
	*ret = v;
	return 0;
}

static void timespec_add(struct timespec *t, double secs)
{
	double whole = floor(secs);

	t->tv_sec += (time_t)whole;
	t->tv_nsec += (long)((secs - whole) * 1e9);
	if (t->tv_nsec >= 1000000000L) {
		t->tv_sec++;
		t->tv_nsec -= 1000000000L;
	}
}

/* One row per @interval seconds, @count rows (0: until interrupted). */
static int watch(const char *path, double interval, unsigned long count)
{
	struct sample before = { 0 }, after = { 0 }, swap;
	struct timespec next;
	unsigned long row;
	int status = 1;

	if (read_sample(path, &before, false) < 0)
		goto out;
	print_header();
	next = before.at;
	for (row = 0; count == 0 || row < count; row++) {
		timespec_add(&next, interval);
		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL) == EINTR)
			;
		if (read_sample(path, &after, true) < 0)
			goto out;
		print_row(&before, &after);
		swap = before;
		before = after;
		after = swap;
	}
	status = 0;
out:
	sample_clear(&before);
	sample_clear(&after);
	return status;
}

int main(int argc, char *argv[])
{
	struct sample s = { 0 };
	unsigned long count = 0;
	double interval = 0;
	int i, status;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			usage(stdout);
			return 0;
		}
		if (!strcmp(argv[i], "-V") || !strcmp(argv[i], "--version")) {
			printf("zcfuse-stat %s\n", ZCFUSE_VERSION_STRING);
			return 0;
		}
		if (!strcmp(argv[i], "--"))
			break;
		if (argv[i][0] == '-' && argv[i][1] && !(argv[i][1] >= '0' && argv[i][1] <= '9')) {
			errorf("unknown option '%s' (usage: zcfuse-stat MOUNTPOINT "
			       "[INTERVAL [COUNT]])",
			       argv[i]);
			return 2;
		}
	}
	if (i < argc) { /* "--": the arguments follow it */
		memmove(&argv[i], &argv[i + 1], (size_t)(argc - i) * sizeof(*argv));
		argc--;
	}
	if (argc < 2 || argc > 4) {
		errorf("%s (usage: zcfuse-stat MOUNTPOINT [INTERVAL [COUNT]])",
		       argc < 2 ? "missing MOUNTPOINT" : "too many arguments");
		return 2;
	}
	mountpoint = argv[1];
	if (argc > 2 && parse_interval(argv[2], &interval) < 0)
		return 2;
	if (argc > 3 && parse_count(argv[3], &count) < 0)
		return 2;
	if (check_mountpoint(mountpoint) < 0)
		return 1;
	if (argc > 2)
		return watch(mountpoint, interval, count);
	if (read_sample(mountpoint, &s, false) < 0)
		return 1;
	print_table(&s);
	status = fflush(stdout) == 0 ? 0 : 1;
	sample_clear(&s);
	return status;
}
