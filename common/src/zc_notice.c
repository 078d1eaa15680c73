/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Notices: lines for the program's handler. */
#include <stdarg.h>
#include <stdio.h>

#include "zc_notice.h"

void zc_notify(const struct zc_notifier *n, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	if (!n || !n->fn)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	n->fn(n->data, line);
}
