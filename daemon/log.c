/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The daemon's messages: one line each, to standard error or the system log. */
#include <errno.h>
#include <fuse_log.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>

#include "log.h"

static enum log_dest log_dest = LOG_TO_STDERR;

/*
 * Notices said while mounting by a daemon about to detach, kept for the
 * destination it has once detached (the system log): a mount through
 * mount(8) or fstab succeeds without a word on the terminal. Errors are not
 * kept: they reach the caller at once.
 */
#define LOG_HELD_MAX 8
static bool log_holding;
static unsigned int log_held_count;
static struct {
	int priority;
	char line[512];
} log_held[LOG_HELD_MAX];

int log_parse_dest(const char *word, enum log_dest *ret)
{
	if (!strcmp(word, "stderr"))
		*ret = LOG_TO_STDERR;
	else if (!strcmp(word, "syslog"))
		*ret = LOG_TO_SYSLOG;
	else
		return -EINVAL;
	return 0;
}

/*
 * Length of the well-formed UTF-8 sequence at @p (at most @n bytes), or 0
 * when it is not one.
 */
static size_t utf8_len(const unsigned char *p, size_t n)
{
	size_t len, i;

	if (p[0] < 0xc2 || p[0] > 0xf4)
		return 0;
	len = p[0] < 0xe0 ? 2 : p[0] < 0xf0 ? 3 : 4;
	if (len > n)
		return 0;
	for (i = 1; i < len; i++)
		if ((p[i] & 0xc0) != 0x80)
			return 0;
	return len;
}

/* @msg with control characters and stray bytes as \xNN, cut to fit @size. */
static void escape_line(const char *msg, char *out, size_t size)
{
	const unsigned char *p = (const unsigned char *)msg;
	size_t n = strlen(msg), o = 0, len;

	for (; *p; p += len) {
		len = 1;
		if (*p >= 0x80 &&
		    (len = utf8_len(p, n - (size_t)(p - (const unsigned char *)msg)))) {
			if (o + len >= size)
				break;
			memcpy(out + o, p, len);
			o += len;
		} else if (*p < 0x20 || *p == 0x7f || *p >= 0x80) {
			len = 1;
			if (o + 4 >= size)
				break;
			o += (size_t)snprintf(out + o, size - o, "\\x%02x", *p);
		} else {
			if (o + 1 >= size)
				break;
			out[o++] = (char)*p;
		}
	}
	out[o] = '\0';
}

static void log_vmsg(int priority, const char *fmt, va_list ap)
{
	char msg[8192], line[8192]; /* the escaped line may be cut */
	size_t n;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	if (n && msg[n - 1] == '\n')
		msg[n - 1] = '\0';
	escape_line(msg, line, sizeof(line));
	if (log_holding && priority > LOG_ERR && log_held_count < LOG_HELD_MAX) {
		size_t len = strnlen(line, sizeof(log_held[0].line) - 1);

		log_held[log_held_count].priority = priority;
		memcpy(log_held[log_held_count].line, line, len);
		log_held[log_held_count].line[len] = '\0';
		log_held_count++;
		return;
	}
	if (log_dest == LOG_TO_SYSLOG)
		syslog(priority, "%s", line);
	else
		fprintf(stderr, "zcfuse: %s\n", line); /* one write: one line among threads */
}

void log_msg(int priority, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(priority, fmt, ap);
	va_end(ap);
}

/*
 * libfuse's messages (fuse_log()). Its levels are syslog's. On standard
 * error they stay as libfuse writes them: -d's trace of every request
 * comes in pieces of lines.
 */
static void log_libfuse(enum fuse_log_level level, const char *fmt, va_list ap)
{
	if (log_dest == LOG_TO_SYSLOG)
		log_vmsg((int)level, fmt, ap);
	else
		vfprintf(stderr, fmt, ap);
}

void log_set_dest(enum log_dest dest)
{
	if (dest == LOG_TO_SYSLOG && log_dest != LOG_TO_SYSLOG)
		openlog("zcfuse", LOG_PID, LOG_DAEMON);
	log_dest = dest;
	fuse_set_log_func(log_libfuse);
}

void log_hold_notices(void)
{
	log_holding = true;
}

void log_release_notices(void)
{
	unsigned int i;

	log_holding = false;
	for (i = 0; i < log_held_count; i++)
		log_msg(log_held[i].priority, "%s", log_held[i].line);
	log_held_count = 0;
}
