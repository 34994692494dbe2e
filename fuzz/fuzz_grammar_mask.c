/*
 * fuzz_grammar_mask.c - libFuzzer target for the matcher's token masks, checked against the
 * matcher's byte-level acceptance.
 *
 * The input (capped at 4 KiB) is split at the first NUL: the part before is a GBNF grammar, each
 * byte after it picks the next token among those the mask allows (at most 32 steps, and a
 * bound on the bytes the check feeds, so that ambiguous grammars stay quick). The
 * vocabulary is small and built here: the 256 byte tokens (so any partial UTF-8 is a token),
 * ASCII and JSON punctuation pieces, multibyte characters, pieces that close a string and go on,
 * and runs longer than the others (12 bytes: counted bounds above it are shortened; grammars
 * with bounds above 16 are skipped, as nested bounds on nullable items make states of thousands
 * of positions, slow to build on any vocabulary, which is not what this target checks). At every
 * step the mask must allow exactly the tokens that a second matcher, fed the same prefix byte by
 * byte, accepts, the end token included.
 */
#include <string.h>

#include "fuzz.h"
#include "inferno/tokenizer.h"

#define FUZZ_MAX_INPUT (4u << 10)
#define MAX_STEPS      32
#define MAX_FED                                                                                    \
    (64u << 10) /* bytes fed to the checking matcher per input: ambiguous                          \
                   grammars (states of thousands of positions) stay fast */

static const char *const pieces[] = {
    "a",
    "b",
    "c",
    "z",
    "ab",
    "abc",
    "ba",
    "aaaa",
    "aaaaaaaaaaaa",
    "abababab",
    "A",
    "Z",
    "\342\226\201",
    "\342\226\201a",
    "\"",
    "\",",
    "\":",
    "{\"",
    "\"}",
    "\"]",
    "\", \"",
    "}",
    "{",
    "[",
    "]",
    ",",
    ":",
    " ",
    "  ",
    "0",
    "1",
    "9",
    "12",
    "123",
    "-",
    "-1",
    ".",
    "e",
    "E+",
    "true",
    "false",
    "null",
    "\\",
    "\\n",
    "\\\"",
    "\\u00",
    "\\u0041",
    "\xC3\xA9",
    "\xD0\xB6",
    "\xE4\xB8\xAD",
    "\xE4\xB8\xAD\xE6\x96\x87",
    "\xF0\x9F\x98\x80",
    "a\"",
    "\xC3\xA9\"",
    "\xC3\xA9t\xC3\xA9",
    "a\xC3\xA9",
    "\n",
    " \n",
    "\t",
    "x1y",
    "ab\"c",
    "a\",\"b",
    "\"a\"",
    "1,",
    "0.5",
    "ab cd",
    "\xE4\xB8",
    "\xAD\xE6",
    "\xC3",
    "\x7F",
};

static struct inf_tokenizer *tok;
static struct inf_grammar_vocab *voc;

static void setup(void)
{
    enum { N_SPECIAL = 3, N_BYTES = 256 };
    size_t n_pieces = sizeof(pieces) / sizeof(pieces[0]), n = N_SPECIAL + N_BYTES + n_pieces;
    const char **texts = calloc(n, sizeof(*texts));
    int32_t *types = calloc(n, sizeof(*types));
    char(*bytes)[8] = calloc(N_BYTES, sizeof(*bytes));
    CHECK(texts && types && bytes);
    texts[0] = "<unk>";
    types[0] = INF_TOKEN_TYPE_UNKNOWN;
    texts[1] = "<s>";
    types[1] = INF_TOKEN_TYPE_CONTROL;
    texts[2] = "</s>";
    types[2] = INF_TOKEN_TYPE_CONTROL;
    for (int b = 0; b < N_BYTES; b++) {
        snprintf(bytes[b], sizeof(bytes[b]), "<0x%02X>", b);
        texts[N_SPECIAL + b] = bytes[b];
        types[N_SPECIAL + b] = INF_TOKEN_TYPE_BYTE;
    }
    for (size_t i = 0; i < n_pieces; i++) {
        texts[N_SPECIAL + N_BYTES + i] = pieces[i];
        types[N_SPECIAL + N_BYTES + i] = INF_TOKEN_TYPE_NORMAL;
    }
    struct inf_vocab_desc d;
    inf_vocab_desc_init(&d);
    d.model = "llama";
    d.n_tokens = n;
    d.tokens = texts;
    d.token_types = types;
    d.bos = 1;
    d.eos = 2;
    d.unk = 0;
    struct inf_error err = {0};
    CHECK(inf_tokenizer_new(&d, &tok, &err) == INF_OK);
    CHECK(inf_grammar_vocab_new(tok, &voc, &err) == INF_OK);
    free(texts);
    free(types);
    free(bytes);
}

static bool bit(const uint32_t *mask, int32_t t)
{
    return (mask[t >> 5] >> (t & 31)) & 1u;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!voc)
        setup();
    if (size > FUZZ_MAX_INPUT)
        size = FUZZ_MAX_INPUT;
    const uint8_t *nul = memchr(data, 0, size);
    if (!nul)
        return 0;
    size_t glen = (size_t)(nul - data);
    for (size_t i = 0; i + 1 < glen; i++) {
        if (data[i] != '{')
            continue;
        unsigned long v = 0;
        for (size_t k = i + 1;
             k < glen && (data[k] == ',' || data[k] == ' ' || (data[k] >= '0' && data[k] <= '9'));
             k++) {
            v = data[k] >= '0' && data[k] <= '9' ? v * 10 + (data[k] - '0') : 0;
            if (v > 16)
                return 0;
        }
    }
    const uint8_t *path = nul + 1;
    size_t plen = size - glen - 1;
    struct inf_grammar *g = NULL;
    struct inf_error err = {0};
    if (inf_grammar_from_gbnf((const char *)data, glen, NULL, &g, &err) != INF_OK)
        return 0;
    int32_t nv = inf_grammar_vocab_size(voc);
    size_t words = ((size_t)nv + 31) / 32;
    uint32_t *mask = calloc(words, sizeof(uint32_t));
    int32_t *allowed = malloc((size_t)nv * sizeof(int32_t));
    char *prefix = malloc(MAX_STEPS * 64 + 1);
    size_t n_prefix = 0, fed = 0;
    struct inf_matcher *m = NULL, *b = NULL;
    CHECK(mask && allowed && prefix);
    if (inf_matcher_new(g, voc, &m, &err) != INF_OK || inf_matcher_new(g, voc, &b, &err) != INF_OK)
        goto out;
    for (size_t step = 0; step <= plen && step < MAX_STEPS; step++) {
        inf_matcher_mask(m, mask);
        if (*inf_matcher_errmsg(m))
            break; /* gave up (too ambiguous): it allows nothing, which is not checked here */
        int32_t n_allowed = 0;
        if (fed + (size_t)nv * (n_prefix + 1) > MAX_FED)
            break;
        fed += (size_t)nv * (n_prefix + 1);
        for (int32_t t = 0; t < nv; t++) {
            inf_matcher_reset(b);
            CHECK(inf_matcher_accept_bytes(b, prefix, n_prefix) || *inf_matcher_errmsg(b));
            if (*inf_matcher_errmsg(b))
                goto out;
            bool ok = inf_matcher_accept_token(b, t);
            if (*inf_matcher_errmsg(b))
                goto out; /* the reference gave up on the token (too ambiguous): no verdict */
            if (ok != bit(mask, t)) {
                size_t pl = 0;
                const char *p = inf_tok_piece(tok, t, false, &pl);
                fprintf(stderr,
                        "after %zu bytes: token %d (%zu bytes: %.*s) accepted %d, mask %d\n",
                        n_prefix, t, pl, (int)pl, p ? p : "", ok, bit(mask, t));
                CHECK(ok == bit(mask, t));
            }
            if (ok && !inf_tok_is_eog(tok, t))
                allowed[n_allowed++] = t;
        }
        if (step == plen || n_allowed == 0)
            break;
        int32_t t = allowed[path[step] % n_allowed];
        size_t pl = 0;
        const char *p = inf_tok_piece(tok, t, false, &pl);
        CHECK(p && pl <= 64);
        CHECK(inf_matcher_accept_token(m, t));
        memcpy(prefix + n_prefix, p, pl);
        n_prefix += pl;
    }
out:
    inf_matcher_free(m);
    inf_matcher_free(b);
    free(prefix);
    free(allowed);
    free(mask);
    inf_grammar_free(g);
    return 0;
}
