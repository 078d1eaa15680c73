/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Detaching from the terminal and systemd's readiness protocol (sd_notify(3)). */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <sys/types.h>
#include <unistd.h>

#ifdef ZCFUSE_HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "service.h"

/* How long the parent waits for the service manager to take in MAINPID=. */
#define SERVICE_BARRIER_USEC (5ULL * 1000 * 1000)

void service_notify_ready(void)
{
#ifdef ZCFUSE_HAVE_LIBSYSTEMD
	sd_notify(0, "READY=1");
#endif
}

void service_notify_stopping(void)
{
#ifdef ZCFUSE_HAVE_LIBSYSTEMD
	sd_notify(0, "STOPPING=1");
#endif
}

/*
 * The parent hands over to @child. With systemd's default NotifyAccess=main
 * only the main process may notify, and it is the parent until systemd has
 * read MAINPID=; the barrier keeps the parent alive until then, so that
 * systemd never sees the main process exit before it was ready.
 */
static void notify_ready_as(pid_t child)
{
#ifdef ZCFUSE_HAVE_LIBSYSTEMD
	if (sd_notifyf(0, "MAINPID=%d\nREADY=1", (int)child) > 0)
		sd_notify_barrier(0, SERVICE_BARRIER_USEC);
#else
	(void)child;
#endif
}

static int detach_child(bool keep_stderr)
{
	int null_fd, r = 0;

	if (setsid() < 0)
		return -errno;
	if (chdir("/") < 0)
		return -errno;
	null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null_fd < 0)
		return -errno;
	if (dup2(null_fd, STDIN_FILENO) < 0 || dup2(null_fd, STDOUT_FILENO) < 0 ||
	    (!keep_stderr && dup2(null_fd, STDERR_FILENO) < 0))
		r = -errno;
	close(null_fd);
	return r;
}

int service_detach(bool keep_stderr)
{
	int pipe_fds[2], r;
	char done = 1;
	pid_t child;
	ssize_t n;

	if (pipe2(pipe_fds, O_CLOEXEC) < 0)
		return -errno;
	child = fork();
	if (child < 0) {
		r = -errno;
		close(pipe_fds[0]);
		close(pipe_fds[1]);
		return r;
	}
	if (child > 0) {
		/* The child holds the mount now: leave without unmounting. */
		close(pipe_fds[1]);
		do
			n = read(pipe_fds[0], &done, 1);
		while (n < 0 && errno == EINTR);
		if (n != 1)
			_exit(1); /* the child said why */
		notify_ready_as(child);
		_exit(0);
	}
	close(pipe_fds[0]);
	r = detach_child(keep_stderr);
	if (r == 0) {
		do
			n = write(pipe_fds[1], &done, 1);
		while (n < 0 && errno == EINTR);
	}
	close(pipe_fds[1]);
	return r;
}
