/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The libFuzzer entry points, shared by the fuzz target and its replayer. */
#ifndef ZCFUSE_FUZZ_H
#define ZCFUSE_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif /* ZCFUSE_FUZZ_H */
