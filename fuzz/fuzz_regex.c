/*
 * fuzz_regex.c - libFuzzer target for the regular-expression translator.
 *
 * The first byte picks the mode (anchored or not, JSON string content or not); the rest
 * (capped at 16 KiB) is the pattern. A pattern that translates must give GBNF that gbnf.c
 * compiles (or that exceeds a limit); a refusal must carry one of the documented codes and a
 * "regex: " message. The grammar then matches the pattern's own bytes, to exercise it.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "grammar/grammar_internal.h"

#define FUZZ_MAX_INPUT (16u << 10)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct inf__gstr g = {0};
    struct inf_error err = {0};
    inf_status rc;

    if (size < 1)
        return 0;
    bool anchored = data[0] & 1, json = (data[0] >> 1) & 1;
    data++, size--;
    if (size > FUZZ_MAX_INPUT)
        size = FUZZ_MAX_INPUT;
    rc = inf__regex_to_gbnf_json((const char *)data, size, "re", anchored, json, &g, &err);
    if (rc == INF_OK) {
        CHECK(g.p != NULL && strncmp(g.p, "re ::= ", 7) == 0);
        fuzz_check_gbnf(g.p, g.len, "re", data, size);
    } else {
        CHECK(rc == INF_EUNSUPPORTED || rc == INF_EPARSE || rc == INF_ELIMIT || rc == INF_ENOMEM);
        CHECK(err.code == rc);
        CHECK(strncmp(err.msg, "regex: ", 7) == 0);
    }
    free(g.p);
    return 0;
}
