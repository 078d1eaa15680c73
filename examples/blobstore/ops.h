/* SPDX-License-Identifier: MIT */
/* The blob store's operations for libzcfuse (ops.c), for main.c. */
#ifndef BLOBSTORE_OPS_H
#define BLOBSTORE_OPS_H

#include <zcfuse/zcfuse.h>
#include "blobstore.h"

/* The session's userdata is the struct bs_fs of an open store. */
extern const struct zc_backend_ops bs_ops;

#endif /* BLOBSTORE_OPS_H */
