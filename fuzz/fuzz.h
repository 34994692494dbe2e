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

#include "inferno/grammar.h"
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

/*
 * What the JSON Schema and regex targets check of the GBNF their compiler wrote: it compiles
 * (or hits a limit), and a matcher on it takes bytes without breaking (a grammar so ambiguous
 * that its start is refused is a limit too).
 */
static inline void fuzz_check_gbnf(const char *gbnf, size_t len, const char *root,
                                   const uint8_t *bytes, size_t n)
{
    struct inf_grammar *gr = NULL;
    struct inf_error err = {0};
    inf_status rc = inf_grammar_from_gbnf(gbnf, len, root, &gr, &err);
    if (rc != INF_OK && rc != INF_ELIMIT && rc != INF_ENOMEM)
        fprintf(stderr, "bad GBNF (%s):\n%s\n", err.msg, gbnf);
    CHECK(rc == INF_OK || rc == INF_ELIMIT || rc == INF_ENOMEM);
    if (rc != INF_OK)
        return;
    struct inf_matcher *m = NULL;
    rc = inf_matcher_new(gr, NULL, &m, &err);
    CHECK(rc == INF_OK || rc == INF_ELIMIT || rc == INF_ENOMEM);
    for (size_t i = 0; m && i < n && i < 256; i++)
        if (!inf_matcher_accept_bytes(m, (const char *)bytes + i, 1))
            break;
    if (m)
        (void)inf_matcher_can_end(m);
    inf_matcher_free(m);
    inf_grammar_free(gr);
}

#endif
