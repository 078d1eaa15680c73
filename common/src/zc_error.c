/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What the session has to tell the program: the last error, and where notices go. */
#include <stdarg.h>
#include <stdio.h>

#include "zcfuse_i.h"

/*
 * The message is one line whatever the paths and options it names hold:
 * control characters are written as \xNN.
 */
void zc_set_error(struct zc_session *s, const char *fmt, ...)
{
	char msg[sizeof(s->err)];
	size_t i, o = 0;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	for (i = 0; msg[i] && o + 5 <= sizeof(s->err); i++) {
		unsigned char c = (unsigned char)msg[i];

		if (c < 0x20 || c == 0x7f)
			o += (size_t)snprintf(s->err + o, 5, "\\x%02x", c);
		else
			s->err[o++] = (char)c;
	}
	s->err[o] = '\0';
}

ZC_EXPORT const char *zc_session_error(const struct zc_session *s)
{
	return s && s->err[0] ? s->err : "no error";
}

ZC_EXPORT void zc_session_set_notice_handler(struct zc_session *s, zc_notice_fn fn, void *data)
{
	s->notifier.fn = fn;
	s->notifier.data = data;
}
