/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Small helpers every layer of the library uses: files, clocks, capabilities, threads. */
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "zc_util.h"

ssize_t zc_read_small_file(const char *path, char *buf, size_t size)
{
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, size - 1);
	if (n < 0)
		n = -errno;
	close(fd);
	if (n >= 0)
		buf[n] = '\0';
	return n;
}

bool zc_has_capability(int cap)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];

	if (syscall(SYS_capget, &hdr, data) < 0)
		return false;
	return data[cap / 32].effective & (1U << (cap % 32));
}

int zc_read_ulong_file(const char *path, unsigned long *ret)
{
	char buf[32], *end;
	ssize_t n;

	n = zc_read_small_file(path, buf, sizeof(buf));
	if (n <= 0)
		return n < 0 ? (int)n : -EIO;
	errno = 0;
	*ret = strtoul(buf, &end, 10);
	/* The file ends in a newline: accept trailing white space only. */
	if (errno || end == buf || (*end && *end != '\n'))
		return -EINVAL;
	return 0;
}

uint64_t zc_now_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

void zc_timespec_in(struct timespec *ts, clockid_t clock, unsigned int ms)
{
	clock_gettime(clock, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

void zc_stop_thread(pthread_t t)
{
	for (;;) {
		struct timespec ts;

		if (pthread_kill(t, ZC_STOP_SIGNAL) != 0) {
			pthread_join(t, NULL);
			break;
		}
		zc_timespec_in(&ts, CLOCK_REALTIME, 50);
		if (pthread_timedjoin_np(t, NULL, &ts) == 0)
			break;
	}
}

int zc_bdi_set_max_ratio(dev_t dev, unsigned int percent)
{
	char path[64], value[16];
	int fd, len, r;

	snprintf(path, sizeof(path), "/sys/class/bdi/%u:%u/max_ratio", major(dev), minor(dev));
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	len = snprintf(value, sizeof(value), "%u\n", percent);
	r = write(fd, value, (size_t)len) == len ? 0 : -errno;
	close(fd);
	return r;
}
