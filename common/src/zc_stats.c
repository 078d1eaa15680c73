/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Counters as text: for the stats extended attribute and for -d at unmount. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "zc_stats.h"

static const char *const opcode_names[ZC_STAT_OPCODES] = {
	[1] = "LOOKUP",	       [2] = "FORGET",	       [3] = "GETATTR",
	[4] = "SETATTR",       [5] = "READLINK",       [6] = "SYMLINK",
	[8] = "MKNOD",	       [9] = "MKDIR",	       [10] = "UNLINK",
	[11] = "RMDIR",	       [12] = "RENAME",	       [13] = "LINK",
	[14] = "OPEN",	       [15] = "READ",	       [16] = "WRITE",
	[17] = "STATFS",       [18] = "RELEASE",       [20] = "FSYNC",
	[21] = "SETXATTR",     [22] = "GETXATTR",      [23] = "LISTXATTR",
	[24] = "REMOVEXATTR",  [25] = "FLUSH",	       [26] = "INIT",
	[27] = "OPENDIR",      [28] = "READDIR",       [29] = "RELEASEDIR",
	[30] = "FSYNCDIR",     [31] = "GETLK",	       [32] = "SETLK",
	[33] = "SETLKW",       [34] = "ACCESS",	       [35] = "CREATE",
	[36] = "INTERRUPT",    [37] = "BMAP",	       [38] = "DESTROY",
	[39] = "IOCTL",	       [40] = "POLL",	       [41] = "NOTIFY_REPLY",
	[42] = "BATCH_FORGET", [43] = "FALLOCATE",     [44] = "READDIRPLUS",
	[45] = "RENAME2",      [46] = "LSEEK",	       [47] = "COPY_FILE_RANGE",
	[48] = "SETUPMAPPING", [49] = "REMOVEMAPPING", [50] = "SYNCFS",
	[51] = "TMPFILE",      [52] = "STATX",
};

static const char *const bytes_names[ZC_BYTES_NR] = {
	[ZC_BYTES_SPLICE] = "splice",
	[ZC_BYTES_VMSPLICE] = "vmsplice",
	[ZC_BYTES_COPY] = "copy",
	[ZC_BYTES_COPY_FILE_RANGE] = "copy_file_range",
};

static const char *const fallback_names[ZC_FALLBACK_NR] = {
	[ZC_FALLBACK_SPLICE_EINVAL] = "splice_refused",
	[ZC_FALLBACK_CFR] = "copy_file_range_refused",
	[ZC_FALLBACK_PIPE_SIZE] = "pipe_size",
	[ZC_FALLBACK_SMALL] = "below_threshold",
	[ZC_FALLBACK_SHORT_READ] = "short_read",
};

void zc_stats_request(struct zc_stats *st, uint32_t opcode)
{
	zc_stat_add(&st->requests[opcode < ZC_STAT_OPCODES ? opcode : 0], 1);
}

void zc_stats_latency(struct zc_stats *st, uint64_t usec)
{
	unsigned int bucket = 0;

	while (bucket < ZC_STAT_LAT_BUCKETS - 1 && usec >= (1ULL << bucket))
		bucket++;
	zc_stat_add(&st->latency[bucket], 1);
}

static uint64_t load(const uint64_t *counter)
{
	return __atomic_load_n(counter, __ATOMIC_RELAXED);
}

struct out {
	char *buf;
	size_t size;
	size_t len;
};

static void __attribute__((format(printf, 2, 3))) out_printf(struct out *o, const char *fmt, ...)
{
	char line[128];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n <= 0)
		return;
	if ((size_t)n >= sizeof(line))
		n = sizeof(line) - 1;
	if (o->buf && o->len + (size_t)n <= o->size)
		memcpy(o->buf + o->len, line, (size_t)n);
	o->len += (size_t)n;
}

static const char *const backing_fallback_names[ZC_BACKING_FALLBACK_NR] = {
	[ZC_BACKING_FALLBACK_KERNEL] = "kernel",
	[ZC_BACKING_FALLBACK_WRITEBACK] = "writeback",
	[ZC_BACKING_FALLBACK_NOT_PERMITTED] = "not_permitted",
	[ZC_BACKING_FALLBACK_NO_BACKING] = "no_backing",
	[ZC_BACKING_FALLBACK_STACK_DEPTH] = "stack_depth",
	[ZC_BACKING_FALLBACK_MODE_CONFLICT] = "mode_conflict",
	[ZC_BACKING_FALLBACK_SETID] = "setid",
	[ZC_BACKING_FALLBACK_IOCTL] = "ioctl",
};

static void format(const struct zc_stats *st, struct out *o)
{
	unsigned int i;

	for (i = 0; i < ZC_BYTES_NR; i++) {
		out_printf(o, "bytes.%s %llu\n", bytes_names[i],
			   (unsigned long long)load(&st->bytes[i]));
		out_printf(o, "calls.%s %llu\n", bytes_names[i],
			   (unsigned long long)load(&st->calls[i]));
	}
	out_printf(o, "data.read %llu\n", (unsigned long long)load(&st->data_read));
	out_printf(o, "data.written %llu\n", (unsigned long long)load(&st->data_written));
	out_printf(o, "data.read.pipe %llu\n", (unsigned long long)load(&st->data_read_pipe));
	out_printf(o, "data.read.mem %llu\n", (unsigned long long)load(&st->data_read_mem));
	out_printf(o, "data.written.pipe %llu\n", (unsigned long long)load(&st->data_written_pipe));
	out_printf(o, "data.written.mem %llu\n", (unsigned long long)load(&st->data_written_mem));
	for (i = 0; i < ZC_FALLBACK_NR; i++)
		out_printf(o, "fallback.%s %llu\n", fallback_names[i],
			   (unsigned long long)load(&st->fallbacks[i]));
	out_printf(o, "passthrough.opens %llu\n", (unsigned long long)load(&st->backing_opens));
	out_printf(o, "passthrough.backing_ids %llu\n", (unsigned long long)load(&st->backing_ids));
	out_printf(o, "passthrough.cached_opens %llu\n",
		   (unsigned long long)load(&st->backing_cached_opens));
	for (i = 0; i < ZC_BACKING_FALLBACK_NR; i++)
		out_printf(o, "passthrough.fallback.%s %llu\n", backing_fallback_names[i],
			   (unsigned long long)load(&st->backing_fallbacks[i]));
	out_printf(o, "transport.dev.requests %llu\n", (unsigned long long)load(&st->dev_requests));
	out_printf(o, "transport.uring.requests %llu\n",
		   (unsigned long long)load(&st->uring_requests));
	out_printf(o, "transport.uring.queues %llu\n", (unsigned long long)load(&st->uring_queues));
	out_printf(o, "transport.uring.commits %llu\n",
		   (unsigned long long)load(&st->uring_commits));
	out_printf(o, "transport.uring.pool %llu\n", (unsigned long long)load(&st->uring_pool));
	out_printf(o, "transport.uring.pool_ring %llu\n",
		   (unsigned long long)load(&st->uring_pool_ring));
	out_printf(o, "transport.uring.promotions %llu\n",
		   (unsigned long long)load(&st->uring_promotions));
	out_printf(o, "transport.uring.payload_in %llu\n",
		   (unsigned long long)load(&st->uring_payload_in));
	out_printf(o, "transport.uring.payload_out %llu\n",
		   (unsigned long long)load(&st->uring_payload_out));
	out_printf(o, "transport.uring.payload_copied %llu\n",
		   (unsigned long long)load(&st->uring_payload_copied));
	out_printf(o, "locks.waits %llu\n", (unsigned long long)load(&st->lock_waits));
	out_printf(o, "locks.refused %llu\n", (unsigned long long)load(&st->lock_refused));
	out_printf(o, "locks.interrupted %llu\n", (unsigned long long)load(&st->lock_interrupted));
	out_printf(o, "contract.broken %llu\n", (unsigned long long)load(&st->contract_broken));
	for (i = 0; i < ZC_STAT_OPCODES; i++) {
		uint64_t n = load(&st->requests[i]);

		if (n)
			out_printf(o, "requests.%s %llu\n",
				   opcode_names[i] ? opcode_names[i] : "OTHER",
				   (unsigned long long)n);
	}
	for (i = 0; i < ZC_STAT_LAT_BUCKETS; i++) {
		uint64_t n = load(&st->latency[i]);

		if (n)
			out_printf(o, "latency_us.lt_%llu %llu\n", 1ULL << i,
				   (unsigned long long)n);
	}
}

int zc_stats_format(const struct zc_stats *st, char *buf, size_t size)
{
	struct out o = { .buf = buf, .size = size };

	format(st, &o);
	return (int)o.len;
}

void zc_stats_print(const struct zc_stats *st, FILE *out)
{
	struct out o = { 0 };
	char *buf;

	format(st, &o);
	buf = malloc(o.len + 1);
	if (!buf)
		return;
	o.buf = buf;
	o.size = o.len;
	o.len = 0;
	format(st, &o);
	fwrite(buf, 1, o.len, out);
	free(buf);
}
