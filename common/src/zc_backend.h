/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The backend a program mounts, as the layers below the session see it. */
#ifndef ZC_BACKEND_H
#define ZC_BACKEND_H

#include "zcfuse/zcfuse.h"

struct zc_backend {
	/* Its operations; those past the size it was built with are NULL. */
	struct zc_backend_ops ops;
	void *userdata;
	/* ZC_FEATURE_* it asked for. */
	unsigned int features;
};

#endif /* ZC_BACKEND_H */
