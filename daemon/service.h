/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Running as a service: leaving the terminal once mounted, and telling a
 * service manager (systemd, Type=notify) that the mount is ready and when
 * it stops. Built without libsystemd, nothing is told.
 */
#ifndef ZCFUSE_DAEMON_SERVICE_H
#define ZCFUSE_DAEMON_SERVICE_H

#include <stdbool.h>

/*
 * Leave the terminal: fork; the child starts a new session, changes to /
 * and points standard input and output, and standard error unless
 * @keep_stderr, at /dev/null. The parent waits for that, tells the service
 * manager that the child is now the main process and is ready
 * (MAINPID=, READY=1), and exits: 0, or 1 when the child failed first.
 *
 * Returns 0 in the child, or -errno (in the one process, when it could
 * not fork; in the child, when it could not detach).
 */
int service_detach(bool keep_stderr);

/* The mount exists and serves (READY=1), for a daemon in the foreground. */
void service_notify_ready(void);

/* The daemon is on its way out (STOPPING=1). */
void service_notify_stopping(void);

#endif
