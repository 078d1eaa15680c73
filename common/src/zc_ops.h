/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The handlers of the opcode table (zc_dispatch.c), one per opcode or pair
 * of opcodes that share their arguments: each is called with the request,
 * its arguments decoded, and sends exactly one reply (none for FORGET,
 * BATCH_FORGET and INTERRUPT).
 */
#ifndef ZC_OPS_H
#define ZC_OPS_H

struct zc_req;

void zc_op_lookup(struct zc_req *req);
void zc_op_forget(struct zc_req *req);
void zc_op_batch_forget(struct zc_req *req);
void zc_op_getattr(struct zc_req *req);
void zc_op_setattr(struct zc_req *req);
void zc_op_readlink(struct zc_req *req);
void zc_op_mknod(struct zc_req *req);
void zc_op_mkdir(struct zc_req *req);
void zc_op_symlink(struct zc_req *req);
void zc_op_link(struct zc_req *req);
void zc_op_remove_name(struct zc_req *req);
void zc_op_rename(struct zc_req *req);
void zc_op_open(struct zc_req *req);
void zc_op_create(struct zc_req *req);
void zc_op_tmpfile(struct zc_req *req);
void zc_op_read(struct zc_req *req);
void zc_op_write(struct zc_req *req);
void zc_op_flush(struct zc_req *req);
void zc_op_release(struct zc_req *req);
void zc_op_fsync(struct zc_req *req);
void zc_op_opendir(struct zc_req *req);
void zc_op_readdir(struct zc_req *req);
void zc_op_releasedir(struct zc_req *req);
void zc_op_statfs(struct zc_req *req);
void zc_op_access(struct zc_req *req);
void zc_op_setxattr(struct zc_req *req);
void zc_op_getxattr(struct zc_req *req);
void zc_op_fallocate(struct zc_req *req);
void zc_op_copy_file_range(struct zc_req *req);
void zc_op_lseek(struct zc_req *req);
void zc_op_setlk(struct zc_req *req);
void zc_op_interrupt(struct zc_req *req);
void zc_op_destroy(struct zc_req *req);

#endif /* ZC_OPS_H */
