/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Counters kept where the system calls are made, so that they cannot lie:
 * bytes moved by each mechanism, fallbacks and their causes, requests per
 * opcode, and a latency histogram. Updated with relaxed atomics.
 */
#ifndef ZC_STATS_H
#define ZC_STATS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

enum zc_stat_bytes {
	ZC_BYTES_SPLICE,	  /* splice: file <-> pipe, pipe <-> pipe, /dev/fuse <-> pipe */
	ZC_BYTES_VMSPLICE,	  /* vmsplice: memory -> pipe */
	ZC_BYTES_COPY,		  /* read, write, pread, pwrite, memcpy */
	ZC_BYTES_COPY_FILE_RANGE, /* copy_file_range: file -> file */
	ZC_BYTES_NR,
};

enum zc_stat_fallback {
	ZC_FALLBACK_SPLICE_EINVAL, /* the file system refused splice */
	ZC_FALLBACK_CFR,	   /* copy_file_range refused (EXDEV, EINVAL, EOPNOTSUPP) */
	ZC_FALLBACK_PIPE_SIZE,	   /* a pipe could not be sized: copy mode for a thread */
	ZC_FALLBACK_SMALL,	   /* a request below the splice threshold */
	ZC_FALLBACK_SHORT_READ,	   /* a READ reply that ended early (end of file) */
	ZC_FALLBACK_NR,
};

/* Why an open of a regular file was not served by kernel passthrough. */
enum zc_stat_backing_fallback {
	ZC_BACKING_FALLBACK_KERNEL,	   /* the kernel did not offer passthrough at INIT */
	ZC_BACKING_FALLBACK_WRITEBACK,	   /* writeback caching was negotiated */
	ZC_BACKING_FALLBACK_NOT_PERMITTED, /* no CAP_SYS_ADMIN, or the kernel said EPERM */
	ZC_BACKING_FALLBACK_NO_BACKING,	   /* the backend offered no backing file */
	ZC_BACKING_FALLBACK_STACK_DEPTH,   /* the backing file system stacks too deep */
	ZC_BACKING_FALLBACK_MODE_CONFLICT, /* the inode is open without passthrough */
	ZC_BACKING_FALLBACK_SETID,	   /* setuid/setgid file: writes must clear the bits */
	ZC_BACKING_FALLBACK_IOCTL,	   /* registering the backing file failed otherwise */
	ZC_BACKING_FALLBACK_NR,
};

#define ZC_STAT_OPCODES	    64
#define ZC_STAT_LAT_BUCKETS 24 /* bucket i: latency < 2^i microseconds */

struct zc_stats {
	uint64_t bytes[ZC_BYTES_NR];
	uint64_t calls[ZC_BYTES_NR];
	uint64_t fallbacks[ZC_FALLBACK_NR];
	uint64_t requests[ZC_STAT_OPCODES];
	uint64_t latency[ZC_STAT_LAT_BUCKETS];
	/* Payload bytes of READ replies and WRITE requests, however moved. */
	uint64_t data_read;
	uint64_t data_written;
	/* The same, by the path they took: through pipes or through memory. */
	uint64_t data_read_pipe;
	uint64_t data_read_mem;
	uint64_t data_written_pipe;
	uint64_t data_written_mem;
	/* Opens served by kernel passthrough, and those that were not, by cause. */
	uint64_t backing_opens;
	uint64_t backing_ids; /* backing files registered with the kernel */
	/* passthrough=auto: read-only opens left to the mount's page cache */
	uint64_t backing_cached_opens;
	uint64_t backing_fallbacks[ZC_BACKING_FALLBACK_NR];
	/* Requests by the way they came: read from /dev/fuse, or a ring entry. */
	uint64_t dev_requests;
	uint64_t uring_requests;
	/*
	 * Ring payload buffers: request bytes the kernel put there, reply bytes
	 * the daemon put there, and of those the bytes it had to copy (the rest
	 * were written in place, such as READ data).
	 */
	uint64_t uring_payload_in;
	uint64_t uring_payload_out;
	uint64_t uring_payload_copied;
	uint64_t uring_commits;
	/* Ring requests served by a queue's pool rather than its thread. */
	uint64_t uring_pool;
	/* Of those, the ones that came in on a pool thread's own ring. */
	uint64_t uring_pool_ring;
	/* Queue threads lifted from SCHED_IDLE because they were starved. */
	uint64_t uring_promotions;
	/* Ring queues whose entries are registered with the kernel. */
	uint64_t uring_queues;
	/*
	 * Blocking lock requests that waited on a thread of their own, those
	 * answered ENOLCK instead (past the bounds), and waiters woken by an
	 * INTERRUPT.
	 */
	uint64_t lock_waits;
	uint64_t lock_refused;
	uint64_t lock_interrupted;
	/* Requests answered EIO because the backend broke its contract (zc_contract.h). */
	uint64_t contract_broken;
};

static inline void zc_stat_add(uint64_t *counter, uint64_t n)
{
	__atomic_fetch_add(counter, n, __ATOMIC_RELAXED);
}

static inline void zc_stat_bytes(struct zc_stats *st, enum zc_stat_bytes kind, uint64_t n)
{
	if (!st)
		return;
	zc_stat_add(&st->bytes[kind], n);
	zc_stat_add(&st->calls[kind], 1);
}

/*
 * Bytes sent to a stream such as /dev/fuse are seen by the other side at
 * once, so they are counted before the system call (zc_stat_expect with
 * @len > 0) and corrected after it: a reader of the counters never sees them
 * lag behind a reply. Everything else passes @len 0 and is counted after.
 * zc_stat_settle() takes what the call moved (@n, or a negative errno).
 */
static inline void zc_stat_expect(struct zc_stats *st, enum zc_stat_bytes kind, uint64_t len)
{
	if (len)
		zc_stat_bytes(st, kind, len);
}

static inline void zc_stat_settle(struct zc_stats *st, enum zc_stat_bytes kind, uint64_t len,
				  ssize_t n)
{
	if (!st)
		return;
	if (!len) {
		if (n > 0)
			zc_stat_bytes(st, kind, (uint64_t)n);
	} else if (n < 0) {
		__atomic_fetch_sub(&st->bytes[kind], len, __ATOMIC_RELAXED);
		__atomic_fetch_sub(&st->calls[kind], 1, __ATOMIC_RELAXED);
	} else if ((uint64_t)n < len) {
		__atomic_fetch_sub(&st->bytes[kind], len - (uint64_t)n, __ATOMIC_RELAXED);
	}
}

static inline void zc_stat_fallback(struct zc_stats *st, enum zc_stat_fallback cause)
{
	if (st)
		zc_stat_add(&st->fallbacks[cause], 1);
}

/*
 * A request, counted when it is received, so that whoever has its reply
 * sees it counted; and its latency once served.
 */
void zc_stats_request(struct zc_stats *st, uint32_t opcode);
void zc_stats_latency(struct zc_stats *st, uint64_t usec);

/*
 * The counters as "name value" lines into @buf; returns the full length,
 * which exceeds @size when the text did not fit.
 */
int zc_stats_format(const struct zc_stats *st, char *buf, size_t size);

/* Write the counters as "name value" lines. */
void zc_stats_print(const struct zc_stats *st, FILE *out);

#endif /* ZC_STATS_H */
