/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The caller of a request, as the backend sees it in struct zc_ctx. */
#ifndef ZC_CTX_H
#define ZC_CTX_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "zcfuse/zcfuse.h"

struct zc_chan;
struct zc_req;

/*
 * The one builder of a request's context: the caller's ids from the
 * request's header, @umask from the create request that carries one (else
 * 0). The context points to @req (ctx->priv), and through it to the session.
 */
void zc_ctx_from_req(struct zc_ctx *ctx, struct zc_req *req, mode_t umask);

/* Whether the caller of @ctx holds capability @cap, as the kernel would count it. */
bool zc_ctx_capable(const struct zc_ctx *ctx, int cap);

/* Is the caller of @ctx in group @gid? When that cannot be known: no. */
bool zc_ctx_in_group(const struct zc_ctx *ctx, gid_t gid);

/*
 * Clear setuid, and setgid when group-executable or the caller is outside
 * the file's group, as file_remove_privs() would after a write or truncate
 * by a caller without CAP_FSETID; the kernel is told that the mode changed.
 */
void zc_kill_suid_sgid(struct zc_chan *c, const struct zc_ctx *ctx, zc_ino_t ino, uint64_t fh);

/* Attributes of @ino changed behind the kernel's cache: drop them there. */
void zc_notify_attr_changed(struct zc_chan *c, zc_ino_t ino);

#endif /* ZC_CTX_H */
