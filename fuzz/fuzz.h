/*
 * fuzz.h - what the fuzz targets (and replay.c) share: the libFuzzer entry point; CHECK,
 * which aborts on a broken invariant (the fuzzer reports a crash) after printing the condition
 * and where it stands; and the format-detection check of the model-file targets.
 */
#ifndef INFERNO_FUZZ_FUZZ_H
#define INFERNO_FUZZ_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "inferno/model_file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* Format detection on the same input: a known format when it succeeds, none when it fails. */
static inline void fuzz_check_detect(const uint8_t *data, size_t size)
{
    struct inf_model_format_info info;
    struct inf_error err = {0};
    inf_status rc = inf_model_detect_memory(data, size, &info, &err);
    CHECK(rc == INF_OK ? info.format != INF_MODEL_FORMAT_UNKNOWN
                       : rc == INF_EFORMAT && info.format == INF_MODEL_FORMAT_UNKNOWN);
}

#endif
