/*
 * fuzz.h - what the fuzz targets (and replay.c) share: the libFuzzer entry point, and CHECK,
 * which aborts on a broken invariant (the fuzzer reports a crash) after printing the condition
 * and where it stands.
 */
#ifndef INFERNO_FUZZ_FUZZ_H
#define INFERNO_FUZZ_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#endif
