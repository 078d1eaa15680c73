/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Run the fuzz target once on each file named (directories: each file in
 * them), without libFuzzer: the regression test over the seed corpus and
 * every input that once crashed, on any compiler. Exits 0 when every input
 * ran; a crash ends the program as it would end the fuzzer.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

static int run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	unsigned char *buf;
	long size;

	if (!f) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	fseek(f, 0, SEEK_END);
	size = ftell(f);
	rewind(f);
	buf = malloc(size > 0 ? (size_t)size : 1);
	if (!buf || fread(buf, 1, (size_t)size, f) != (size_t)size) {
		fprintf(stderr, "replay: cannot read %s\n", path);
		fclose(f);
		free(buf);
		return -1;
	}
	fclose(f);
	if (getenv("ZCFUSE_REPLAY_VERBOSE"))
		fprintf(stderr, "replay: %s\n", path);
	LLVMFuzzerTestOneInput(buf, (size_t)size);
	free(buf);
	return 0;
}

static int compare_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int run_path(const char *path, unsigned int *count)
{
	struct stat st;
	char **names;
	int n, i, r = 0, m = 0;
	DIR *d;

	if (stat(path, &st) < 0) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		(*count)++;
		return run_file(path);
	}
	d = opendir(path);
	if (!d)
		return -1;
	names = calloc(4096, sizeof(*names));
	for (struct dirent *e; names && (e = readdir(d)) && m < 4096;) {
		if (e->d_name[0] == '.')
			continue;
		if (asprintf(&names[m], "%s/%s", path, e->d_name) < 0)
			break;
		m++;
	}
	closedir(d);
	if (!names)
		return -1;
	qsort(names, (size_t)m, sizeof(*names), compare_names);
	for (i = 0; i < m; i++) {
		n = run_path(names[i], count);
		if (n < 0)
			r = n;
		free(names[i]);
	}
	free(names);
	return r;
}

static int count_fds(void)
{
	struct dirent *e;
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

int main(int argc, char *argv[])
{
	unsigned int count = 0;
	int i, r = 0, fds;

	LLVMFuzzerInitialize(&argc, &argv);
	fds = count_fds();
	for (i = 1; i < argc; i++)
		if (run_path(argv[i], &count) < 0)
			r = 1;
	printf("replayed %u inputs\n", count);
	/* Every input starts and ends a session: nothing may stay open. */
	if (count_fds() != fds) {
		fprintf(stderr, "replay: %d descriptors open before, %d after\n", fds, count_fds());
		r = 1;
	}
	return r;
}
