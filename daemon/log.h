/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Where the daemon's messages go: standard error, or the system log
 * (syslog(3), facility LOG_DAEMON, with the program name and PID; under
 * systemd the journal reads it).
 */
#ifndef ZCFUSE_DAEMON_LOG_H
#define ZCFUSE_DAEMON_LOG_H

#include <syslog.h>

enum log_dest {
	LOG_TO_STDERR,
	LOG_TO_SYSLOG,
};

/* The destination named by @word ("stderr" or "syslog"); -EINVAL for another word. */
int log_parse_dest(const char *word, enum log_dest *ret);

/*
 * Send what follows to @dest, the library's and libfuse's messages too
 * (libfuse's through fuse_set_log_func()).
 */
void log_set_dest(enum log_dest dest);

/*
 * One message, one line: "zcfuse: MESSAGE" on standard error, or MESSAGE
 * at @priority (LOG_ERR, LOG_NOTICE, ...) in the system log. Control
 * characters and bytes that are not UTF-8 are written as \xNN, since the
 * paths and options a message names may hold any byte. A trailing newline
 * is dropped.
 */
__attribute__((format(printf, 2, 3))) void log_msg(int priority, const char *fmt, ...);

/*
 * Keep notices (not errors) until log_release_notices(), which writes them
 * where messages go by then: a daemon that detaches says what it noticed
 * while mounting in the system log rather than on its caller's terminal.
 */
void log_hold_notices(void);
void log_release_notices(void);

#endif
