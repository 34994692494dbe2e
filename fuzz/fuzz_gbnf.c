/*
 * fuzz_gbnf.c - libFuzzer target for the GBNF compiler and the byte matcher.
 *
 * The input (capped at 64 KiB) is split at the first NUL: the part before is the grammar, the
 * part after is fed to a matcher byte by byte. A failed compile must be INF_EPARSE, INF_ELIMIT
 * or INF_ENOMEM with a "grammar: " message and no grammar; a compiled one must give GBNF text
 * back. The matcher must keep its state on a rejected byte, and accepting a byte sequence at
 * once must agree with accepting it byte by byte.
 */
#include <string.h>

#include "fuzz.h"
#include "inferno/grammar.h"

#define FUZZ_MAX_INPUT (64u << 10)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > FUZZ_MAX_INPUT)
        size = FUZZ_MAX_INPUT;
    const uint8_t *nul = memchr(data, 0, size);
    size_t glen = nul ? (size_t)(nul - data) : size;
    const char *text = (const char *)data + (nul ? glen + 1 : size);
    size_t tlen = nul ? size - glen - 1 : 0;
    struct inf_grammar *g = NULL;
    struct inf_error err = {0};
    inf_status rc = inf_grammar_from_gbnf((const char *)data, glen, NULL, &g, &err);
    if (rc != INF_OK) {
        CHECK(g == NULL);
        CHECK(rc == INF_EPARSE || rc == INF_ELIMIT || rc == INF_ENOMEM);
        CHECK(strncmp(err.msg, "grammar: ", 9) == 0);
        return 0;
    }
    CHECK(g != NULL);
    CHECK(strlen(inf_grammar_gbnf(g)) <= glen);
    struct inf_matcher *a = NULL, *b = NULL;
    if (inf_matcher_new(g, NULL, &a, &err) == INF_OK &&
        inf_matcher_new(g, NULL, &b, &err) == INF_OK) {
        size_t ok = 0;
        for (size_t i = 0; i < tlen; i++) {
            bool end_before = inf_matcher_can_end(a);
            if (!inf_matcher_accept_bytes(a, text + i, 1)) {
                /* state kept, unless the matcher gave up (too ambiguous: it allows nothing) */
                CHECK(*inf_matcher_errmsg(a) || inf_matcher_can_end(a) == end_before);
                break;
            }
            ok++;
        }
        if (!*inf_matcher_errmsg(a) && !*inf_matcher_errmsg(b)) {
            CHECK(inf_matcher_accept_bytes(b, text, ok));
            CHECK(inf_matcher_can_end(a) == inf_matcher_can_end(b));
        }
    }
    inf_matcher_free(a);
    inf_matcher_free(b);
    inf_grammar_free(g);
    return 0;
}
