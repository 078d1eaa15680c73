/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The program's notice handler, as every layer reaches it. */
#ifndef ZC_NOTICE_H
#define ZC_NOTICE_H

#include "zcfuse/zcfuse.h"

struct zc_notifier {
	zc_notice_fn fn; /* NULL: notices are dropped */
	void *data;
};

/* Hand one line to @n's handler, if there is one. */
void zc_notify(const struct zc_notifier *n, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif /* ZC_NOTICE_H */
