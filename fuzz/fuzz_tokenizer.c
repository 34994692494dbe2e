/*
 * fuzz_tokenizer.c - libFuzzer target for the tokenizer: arbitrary bytes, invalid UTF-8.
 *
 * The first input byte picks the vocabulary and the flags, the rest (capped at 64 KiB) is the
 * text. Vocabularies: four small built-in ones (SPM with byte fallback, byte-level BPE, WPM,
 * UGM with a one-rule precompiled charsmap)
 * and, when $INFERNO_FUZZ_VOCAB names GGUF files (colon-separated) or $INFERNO_SHARED holds
 * the tokenizer test vectors, those too. Each input is encoded, every id checked against the
 * vocabulary, decoded whole and through the streaming decoder; then:
 *   - the streaming decoder gives exactly the concatenated pieces (raw mode), and only valid
 *     UTF-8 (replacing mode);
 *   - SPM and BPE round-trip valid UTF-8 exactly (no special tokens parsed or added, no
 *     clean-up, no U+2581 in the text; for SPM, no user-defined token in it).
 * A first byte of 0xF0-0xFF instead takes the charsmap of a UGM vocabulary from the input (two
 * bytes of length, then the blob, then the text): building must fail with INF_EFORMAT or
 * succeed, and encoding then gives valid ids, INF_EFORMAT (an index outside the blob) or
 * INF_ELIMIT.
 * A broken invariant aborts, which the fuzzer reports as a crash.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "inferno/log.h"
#include "inferno/tokenizer.h"
#include "tokenizer/unicode.h"

#define FUZZ_MAX_INPUT (64u * 1024)
#define MAX_VOCABS     12

static struct inf_tokenizer *vocabs[MAX_VOCABS];
static size_t n_vocabs;

static void add_vocab(struct inf_tokenizer *tok)
{
    if (tok && n_vocabs < MAX_VOCABS)
        vocabs[n_vocabs++] = tok;
    else
        inf_tokenizer_free(tok);
}

/* SPM: <unk> <s> </s>, the 256 byte tokens, and a few pieces with scores. */
static struct inf_tokenizer *builtin_spm(void)
{
    static char names[256][8];
    static const char *const extra[] = {"\xe2\x96\x81",
                                        "\xe2\x96\x81t",
                                        "\xe2\x96\x81th",
                                        "\xe2\x96\x81the",
                                        "he",
                                        "e",
                                        "t",
                                        "h",
                                        "\xe2\x96\x81\xe2\x96\x81",
                                        "<|user|>"};
    const char *toks[3 + 256 + 10];
    int32_t types[3 + 256 + 10];
    float scores[3 + 256 + 10];
    size_t n = 0;
    toks[n] = "<unk>", types[n] = INF_TOKEN_TYPE_UNKNOWN, scores[n++] = 0;
    toks[n] = "<s>", types[n] = INF_TOKEN_TYPE_CONTROL, scores[n++] = 0;
    toks[n] = "</s>", types[n] = INF_TOKEN_TYPE_CONTROL, scores[n++] = 0;
    for (int b = 0; b < 256; b++) {
        snprintf(names[b], sizeof(names[b]), "<0x%02X>", b);
        toks[n] = names[b], types[n] = INF_TOKEN_TYPE_BYTE, scores[n++] = 0;
    }
    for (size_t i = 0; i < 10; i++) {
        toks[n] = extra[i];
        types[n] = i == 9 ? INF_TOKEN_TYPE_USER_DEFINED : INF_TOKEN_TYPE_NORMAL;
        scores[n++] = -(float)i;
    }
    struct inf_vocab_desc d;
    struct inf_tokenizer *tok = NULL;
    inf_vocab_desc_init(&d);
    d.model = "llama";
    d.n_tokens = n;
    d.tokens = toks;
    d.scores = scores;
    d.token_types = types;
    inf_tokenizer_new(&d, &tok, NULL);
    return tok;
}

/* Byte-level BPE: the 256 byte characters, a few merges, a control and a user-defined token. */
static struct inf_tokenizer *builtin_bpe(void)
{
    static char names[256][4];
    static const char *const merged[] = {"\xc4\xa0t",     "he",    "\xc4\xa0the", "in",
                                         "<|endoftext|>", "[PAD0]"};
    static const char *const merges[] = {"\xc4\xa0 t", "h e", "\xc4\xa0t he", "i n"};
    const char *toks[256 + 6];
    int32_t types[256 + 6];
    size_t n = 0;
    for (int b = 0; b < 256; b++) {
        /* the GPT-2 byte map, computed here independently of the library */
        int printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
        static int next = 0;
        unsigned cp = printable ? (unsigned)b : 0x100u + (unsigned)next++;
        char *o = names[b];
        if (cp < 0x80) {
            o[0] = (char)cp, o[1] = 0;
        } else {
            o[0] = (char)(0xC0 | (cp >> 6)), o[1] = (char)(0x80 | (cp & 0x3F)), o[2] = 0;
        }
        toks[n] = names[b], types[n++] = INF_TOKEN_TYPE_NORMAL;
    }
    for (size_t i = 0; i < 6; i++) {
        toks[n] = merged[i];
        types[n++] = i == 4   ? INF_TOKEN_TYPE_CONTROL
                     : i == 5 ? INF_TOKEN_TYPE_USER_DEFINED
                              : INF_TOKEN_TYPE_NORMAL;
    }
    struct inf_vocab_desc d;
    struct inf_tokenizer *tok = NULL;
    inf_vocab_desc_init(&d);
    d.model = "gpt2";
    d.pre = "llama-bpe";
    d.n_tokens = n;
    d.tokens = toks;
    d.token_types = types;
    d.n_merges = 4;
    d.merges = merges;
    d.bos = d.eos = 256 + 4;
    inf_tokenizer_new(&d, &tok, NULL);
    return tok;
}

static struct inf_tokenizer *builtin_wpm(void)
{
    static const char *const toks[] = {
        "[PAD]",         "[UNK]", "[CLS]", "[SEP]",        "\xe2\x96\x81hello",
        "\xe2\x96\201a", "b",     "##c",   "\xe2\x96\x81,"};
    static const int32_t types[] = {3, 2, 3, 3, 1, 1, 1, 1, 1};
    struct inf_vocab_desc d;
    struct inf_tokenizer *tok = NULL;
    inf_vocab_desc_init(&d);
    d.model = "bert";
    d.n_tokens = 9;
    d.tokens = toks;
    d.token_types = types;
    d.unk = 1, d.bos = 2, d.sep = 3, d.pad = 0;
    inf_tokenizer_new(&d, &tok, NULL);
    return tok;
}

/* UGM: T5's layout, a few pieces, a user-defined token; the charsmap is given. */
static struct inf_tokenizer *ugm_with(const void *charsmap, size_t len, struct inf_error *err,
                                      inf_status *st)
{
    static const char *const toks[] = {
        "<pad>", "</s>", "<unk>", "\xe2\x96\x81", "\xe2\x96\x81yz", "y", "z", "ab", "a", "<ud>"};
    static const float scores[] = {0, 0, 0, -2.0f, -1.0f, -3.0f, -3.0f, -2.5f, -2.0f, 0};
    static const int32_t types[] = {3, 3, 2, 1, 1, 1, 1, 1, 1, 4};
    struct inf_vocab_desc d;
    struct inf_tokenizer *tok = NULL;
    inf_vocab_desc_init(&d);
    d.model = "t5";
    d.n_tokens = 10;
    d.tokens = toks;
    d.scores = scores;
    d.token_types = types;
    d.add_space_prefix = 1;
    d.precompiled_charsmap = charsmap;
    d.precompiled_charsmap_len = len;
    *st = inf_tokenizer_new(&d, &tok, err);
    return tok;
}

/* The built-in UGM vocabulary: a charsmap of one rule, "x" -> "yz" (Darts-clone units: root
   offset 256, "x" at 256 ^ 0x78 with the leaf flag, its value unit at 512). */
static struct inf_tokenizer *builtin_ugm(void)
{
    static unsigned char cm[4 + 768 * 4 + 3];
    uint32_t units[768] = {0}, size = sizeof(units);
    inf_status st;
    units[0] = 256u << 10;
    units[376] = 0x78u | (1u << 8) | ((376u ^ 512u) << 10);
    units[512] = 1u << 31;
    for (int i = 0; i < 4; i++)
        cm[i] = (unsigned char)(size >> (8 * i));
    for (size_t k = 0; k < 768; k++)
        for (int i = 0; i < 4; i++)
            cm[4 + 4 * k + (size_t)i] = (unsigned char)(units[k] >> (8 * i));
    memcpy(cm + 4 + size, "yz", 3);
    return ugm_with(cm, sizeof(cm), NULL, &st);
}

static void init(void)
{
    inf_log_set_level(INF_LOG_OFF);
    add_vocab(builtin_spm());
    add_vocab(builtin_bpe());
    add_vocab(builtin_wpm());
    add_vocab(builtin_ugm());
    CHECK(n_vocabs == 4);
    const char *list = getenv("INFERNO_FUZZ_VOCAB");
    const char *shared = getenv("INFERNO_SHARED");
    char buf[8192];
    if (!list && shared) {
        snprintf(buf, sizeof(buf),
                 "%s/testdata/tokenizers/ggml-vocab-llama-spm.gguf:"
                 "%s/testdata/tokenizers/ggml-vocab-llama-bpe.gguf:"
                 "%s/testdata/tokenizers/ggml-vocab-gpt-2.gguf:"
                 "%s/testdata/tokenizers/ggml-vocab-qwen2.gguf",
                 shared, shared, shared, shared);
        list = buf;
    }
    while (list && *list) {
        char path[4096];
        size_t l = strcspn(list, ":");
        snprintf(path, sizeof(path), "%.*s", (int)l, list);
        struct inf_tokenizer *tok = NULL;
        if (inf_tokenizer_load_gguf(path, &tok, NULL) == INF_OK)
            add_vocab(tok);
        list += l + (list[l] == ':');
    }
}

static bool valid_utf8(const char *s, size_t n)
{
    return inf__utf8_valid_prefix((const unsigned char *)s, n) == n;
}

static void check_stream(const struct inf_tokenizer *tok, const struct inf_tokens *ids,
                         bool special)
{
    struct inf_tok_stream raw, rep;
    size_t total = 0, got = 0;
    for (size_t i = 0; i < ids->n; i++) {
        size_t pl;
        inf_tok_piece(tok, ids->ids[i], special, &pl);
        total += pl;
    }
    char *want = malloc(total + 1), *have = malloc(total + 1);
    CHECK(want && have);
    total = 0;
    for (size_t i = 0; i < ids->n; i++) {
        size_t pl;
        const char *p = inf_tok_piece(tok, ids->ids[i], special, &pl);
        memcpy(want + total, p, pl);
        total += pl;
    }
    inf_tok_stream_init(&raw, tok, special ? INF_TOK_STREAM_SPECIAL : 0);
    inf_tok_stream_init(&rep, tok,
                        INF_TOK_STREAM_REPLACE_INVALID | (special ? INF_TOK_STREAM_SPECIAL : 0));
    for (size_t i = 0; i <= ids->n; i++) {
        const char *p;
        size_t pl;
        inf_status st = i < ids->n ? inf_tok_stream_push(&raw, ids->ids[i], &p, &pl, NULL)
                                   : inf_tok_stream_flush(&raw, &p, &pl, NULL);
        CHECK(st == INF_OK);
        CHECK(got + pl <= total);
        memcpy(have + got, p, pl);
        got += pl;
        st = i < ids->n ? inf_tok_stream_push(&rep, ids->ids[i], &p, &pl, NULL)
                        : inf_tok_stream_flush(&rep, &p, &pl, NULL);
        CHECK(st == INF_OK);
        CHECK(valid_utf8(p, pl)); /* never half a character, never invalid bytes */
    }
    CHECK(got == total && memcmp(have, want, total) == 0); /* nothing lost or reordered */
    inf_tok_stream_release(&raw);
    inf_tok_stream_release(&rep);
    free(want);
    free(have);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool ready;
    if (!ready) {
        init();
        ready = true;
    }
    if (size < 1)
        return 0;
    unsigned sel = data[0];
    if (sel >= 0xF0) { /* a UGM vocabulary with the input's charsmap */
        if (size < 3)
            return 0;
        size_t cl = (size_t)data[1] | (size_t)data[2] << 8;
        if (cl > size - 3)
            cl = size - 3;
        struct inf_error e = {0};
        inf_status bst;
        struct inf_tokenizer *u = ugm_with(data + 3, cl, &e, &bst);
        CHECK((bst == INF_OK) == (u != NULL));
        CHECK(bst == INF_OK || bst == INF_EFORMAT || bst == INF_ENOMEM);
        CHECK(bst == INF_OK || e.msg[0]);
        if (!u)
            return 0;
        struct inf_tokens t = {0};
        size_t tl = size - 3 - cl > FUZZ_MAX_INPUT ? FUZZ_MAX_INPUT : size - 3 - cl;
        inf_status est = inf_tok_encode(u, (const char *)data + 3 + cl, tl,
                                        (sel & 1) ? INF_TOK_PARSE_SPECIAL : 0, &t, &e);
        CHECK(est == INF_OK || est == INF_EFORMAT || est == INF_ELIMIT || est == INF_ENOMEM);
        CHECK(est == INF_OK || e.msg[0]);
        for (size_t i = 0; i < t.n; i++)
            CHECK(t.ids[i] >= 0 && t.ids[i] < 10);
        inf_tokens_release(&t);
        inf_tokenizer_free(u);
        return 0;
    }
    const char *text = (const char *)data + 1;
    size_t len = size - 1 > FUZZ_MAX_INPUT ? FUZZ_MAX_INPUT : size - 1;
    const struct inf_tokenizer *tok = vocabs[(sel >> 2) % n_vocabs];
    const struct inf_tok_info *in = inf_tok_info(tok);
    unsigned flags =
        ((sel & 1) ? INF_TOK_PARSE_SPECIAL : 0) | ((sel & 2) ? INF_TOK_ADD_SPECIAL : 0);
    struct inf_tokens ids = {0};
    struct inf_error err = {0};

    inf_status st = inf_tok_encode(tok, text, len, flags, &ids, &err);
    CHECK(st == INF_OK || st == INF_ENOMEM || st == INF_ELIMIT);
    if (st != INF_OK)
        return 0;
    for (size_t i = 0; i < ids.n; i++)
        CHECK(ids.ids[i] >= 0 && (size_t)ids.ids[i] < in->n_tokens);

    char *out = NULL;
    size_t out_len = 0;
    bool special = (flags & INF_TOK_PARSE_SPECIAL) != 0;
    st = inf_tok_decode(tok, ids.ids, ids.n,
                        INF_TOK_DECODE_NO_CLEANUP | (special ? INF_TOK_DECODE_SPECIAL : 0), &out,
                        &out_len, &err);
    CHECK(st == INF_OK);
    if (flags == 0 && valid_utf8(text, len)) {
        /* U+2581 in the text decodes as a space in SPM and Gemma-style BPE */
        bool exact = (in->type == INF_VOCAB_SPM || in->type == INF_VOCAB_BPE) &&
                     !memmem(text, len, "\xe2\x96\x81", 3);
        if (exact && in->type == INF_VOCAB_SPM) {
            /* a user-defined token splits the text, and SPM puts a space after it */
            for (size_t i = 0; exact && i < ids.n; i++) {
                enum inf_token_type t = inf_tok_type(tok, ids.ids[i]);
                exact = t == INF_TOKEN_TYPE_NORMAL || t == INF_TOKEN_TYPE_BYTE;
            }
        }
        if (exact)
            CHECK(out_len == len && memcmp(out, text, len) == 0);
    }
    free(out);
    check_stream(tok, &ids, special);
    inf_tokens_release(&ids);
    return 0;
}
