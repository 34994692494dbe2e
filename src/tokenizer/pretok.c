/*
 * pretok.c - the BPE pre-tokenizers: for each tokenizer.ggml.pre value, the regexes that split
 * text into words before merging (the model's training-time split, as llama.cpp applies it),
 * compiled with PCRE2 (UTF + UCP, JIT where available).
 *
 * The patterns are llama.cpp's, with two rewrites done at compile time (see rewrite()):
 *   \s and \S become the exact Unicode White_Space set, because PCRE2 10.42's \s also matches
 *   U+180E, which llama.cpp does not treat as a space; \d becomes [0-9] (ECMAScript's \d).
 * One pattern is restated so that it cannot go quadratic: deepseek-llm's "\s+$" is written
 * "(?<!\s)\s+$", which has the same leftmost match but fails in O(1) inside a space run.
 */
#define PCRE2_CODE_UNIT_WIDTH 8

#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "tokenizer/tok_internal.h"

/* ---- the patterns ----------------------------------------------------------------------- */

#define RE_CONTRACTIONS "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])"

#define RE_GPT2 "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)"

#define RE_LLAMA3                                                                                  \
    RE_CONTRACTIONS "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"   \
                    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"

#define RE_QWEN2                                                                                   \
    RE_CONTRACTIONS "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"        \
                    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"

#define RE_QWEN35                                                                                  \
    RE_CONTRACTIONS "|[^\\r\\n\\p{L}\\p{N}]?[\\p{L}\\p{M}]+|\\p{N}| ?[^\\s\\p{L}\\p{M}\\p{N}]+"    \
                    "[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"

#define RE_JAIS2                                                                                   \
    RE_CONTRACTIONS "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"   \
                    "\\s*[\\r\\n]+|\\s{512}(?!\\S)|\\s{256}(?!\\S)|\\s{128}(?!\\S)|"               \
                    "\\s{64}(?!\\S)|\\s{32}(?!\\S)|\\s{16}(?!\\S)|\\s{8}(?!\\S)|\\s{4}(?!\\S)|"    \
                    "\\s{1,2}(?!\\S)|\\s{1}"

/* Upper-case run then lower-case run, as llama.cpp restates \p{Lu}... for std::regex: a letter
 * "is upper" unless it is a-z, "is lower" unless it is A-Z (so non-ASCII letters are both). */
#define RE_UPPER "(?:(?=\\p{L})[^a-z])"
#define RE_LOWER "(?:(?=\\p{L})[^A-Z])"

#define RE_TEKKEN                                                                                  \
    "[^\\r\\n\\p{L}\\p{N}]?" RE_UPPER "*" RE_LOWER "+|[^\\r\\n\\p{L}\\p{N}]?" RE_UPPER             \
    "+" RE_LOWER "*|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"

#define RE_GPT4O                                                                                   \
    "[^\\r\\n\\p{L}\\p{N}]?" RE_UPPER "*" RE_LOWER "+" RE_CONTRACTIONS                             \
    "?|[^\\r\\n\\p{L}\\p{N}]?" RE_UPPER "+" RE_LOWER "*" RE_CONTRACTIONS                           \
    "?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"

#define RE_DEEPSEEK3_MAIN                                                                          \
    "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\\r\\n\\p{L}\\p{P}\\p{S}]?"           \
    "[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"

/* llama.cpp runs patterns without \p{..} through std::wregex with every non-ASCII space
 * replaced by U+000B, so such a space never matches a literal class member: say so. */
#define RE_NOT_WIDE_SPACE                                                                          \
    "(?![\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}"           \
    "\\x{3000}])"
#define RE_CJK_DEEPSEEK                                                                            \
    "(?:" RE_NOT_WIDE_SPACE "[\\x{4E00}-\\x{9FA5}\\x{0800}-\\x{4E00}\\x{AC00}-\\x{D7FF}])+"
#define RE_CJK_KANA "[\\x{4E00}-\\x{9FA5}\\x{3040}-\\x{309F}\\x{30A0}-\\x{30FF}]+"

#define RE_BLOOM " ?[^(\\s|.,!?\\x{2026}\\x{3002}\\x{FF0C}\\x{3001}\\x{0964}\\x{06D4}\\x{060C})]+"

/* The letters of deepseek-llm's pre-tokenizer (from its tokenizer.json). */
#define RE_DEEPSEEK_LETTERS                                                                        \
    "A-Za-z\\x{B5}\\x{C0}-\\x{D6}\\x{D8}-\\x{F6}\\x{F8}"                                           \
    "-\\x{1BA}\\x{1BC}-\\x{1BF}\\x{1C4}-\\x{293}"                                                  \
    "\\x{295}-\\x{2AF}\\x{370}-\\x{373}\\x{376}\\x{377}"                                           \
    "\\x{37B}-\\x{37D}\\x{37F}\\x{386}\\x{388}-\\x{38A}"                                           \
    "\\x{38C}\\x{38E}-\\x{3A1}\\x{3A3}-\\x{3F5}\\x{3F7}"                                           \
    "-\\x{481}\\x{48A}-\\x{52F}\\x{531}-\\x{556}"                                                  \
    "\\x{10A0}-\\x{10C5}\\x{13A0}-\\x{13F5}\\x{13F8}-"                                             \
    "\\x{13FD}\\x{1C90}-\\x{1CBA}\\x{1CBD}-\\x{1CBF}"                                              \
    "\\x{1D00}-\\x{1D2B}\\x{1D6B}-\\x{1D77}\\x{1D79}-"                                             \
    "\\x{1D9A}\\x{1E00}-\\x{1F15}\\x{1F18}-\\x{1F1D}"                                              \
    "\\x{1F20}-\\x{1F45}\\x{1F48}-\\x{1F4D}\\x{1F50}-"                                             \
    "\\x{1F57}\\x{1F59}\\x{1F5B}\\x{1F5D}\\x{1F5F}-"                                               \
    "\\x{1F7D}\\x{1F80}-\\x{1FB4}\\x{1FB6}-\\x{1FBC}"                                              \
    "\\x{1FBE}\\x{1FC2}-\\x{1FC4}\\x{1FC6}-\\x{1FCC}"                                              \
    "\\x{1FD0}-\\x{1FD3}\\x{1FD6}-\\x{1FDB}\\x{1FE0}-"                                             \
    "\\x{1FEC}\\x{1FF2}-\\x{1FF4}\\x{1FF6}-\\x{1FFC}"                                              \
    "\\x{2102}\\x{2107}\\x{210A}-\\x{2113}\\x{2115}"                                               \
    "\\x{2119}-\\x{211D}\\x{2124}\\x{2126}\\x{2128}"                                               \
    "\\x{212A}-\\x{212D}\\x{212F}-\\x{2134}\\x{2139}"                                              \
    "\\x{213C}-\\x{213F}\\x{2145}-\\x{2149}\\x{214E}"                                              \
    "\\x{2183}\\x{2184}\\x{2C00}-\\x{2C7B}\\x{2C7E}-"                                              \
    "\\x{2CE4}\\x{2CEB}-\\x{2CEE}\\x{2CF2}\\x{2CF3}"                                               \
    "\\x{A640}-\\x{A66D}\\x{A680}-\\x{A69B}\\x{A722}-"                                             \
    "\\x{A76F}\\x{A771}-\\x{A787}\\x{A78B}-\\x{A78E}"                                              \
    "\\x{AB70}-\\x{ABBF}\\x{FB00}-\\x{FB06}\\x{FB13}-"                                             \
    "\\x{FB17}\\x{FF21}-\\x{FF3A}\\x{FF41}-\\x{FF5A}"                                              \
    "\\x{10400}-\\x{1044F}\\x{104B0}-\\x{104D3}"                                                   \
    "\\x{104D8}-\\x{104FB}\\x{10C80}-\\x{10CB2}"                                                   \
    "\\x{10CC0}-\\x{10CF2}\\x{118A0}-\\x{118DF}"                                                   \
    "\\x{1E900}-\\x{1E943}"

static const char *const re_default[] = {"[\\p{P}\\$\\+<=>\\^~\\|]+", RE_GPT2, "\\p{N}+",
                                         "[0-9][0-9][0-9]", NULL};
static const char *const re_gpt2[] = {RE_GPT2, NULL};
static const char *const re_llama3[] = {RE_LLAMA3, NULL};
static const char *const re_jais2[] = {RE_JAIS2, NULL};
static const char *const re_qwen2[] = {RE_QWEN2, NULL};
static const char *const re_qwen35[] = {RE_QWEN35, NULL};
static const char *const re_deepseek_llm[] = {
    "[\\r\\n]", "\\s?[" RE_DEEPSEEK_LETTERS "]+",
    /* U+3000 is in deepseek's class but never matches in llama.cpp (see RE_NOT_WIDE_SPACE) */
    "\\s?[!-/:-~\\x{FF01}-\\x{FF0F}\\x{FF1A}-\\x{FF5E}\\x{2018}-\\x{201F}\\x{3001}-\\x{3002}]+",
    "(?<!\\s)\\s+$", RE_CJK_DEEPSEEK, "\\p{N}+", NULL};
static const char *const re_deepseek3[] = {"\\p{N}{1,3}", RE_CJK_KANA, RE_DEEPSEEK3_MAIN, NULL};
static const char *const re_deepseek_coder[] = {"[\\r\\n]",      "\\s?\\p{L}+", "\\s?\\p{P}+",
                                                RE_CJK_DEEPSEEK, "\\p{N}",      NULL};
static const char *const re_falcon[] = {"[\\p{P}\\$\\+<=>\\^~\\|`]+", RE_GPT2, "[0-9][0-9][0-9]",
                                        NULL};
static const char *const re_starcoder[] = {"\\p{N}", RE_GPT2, NULL};
static const char *const re_bloom[] = {RE_BLOOM, NULL};
static const char *const re_viking[] = {RE_BLOOM, "\\p{N}", NULL};
static const char *const re_tekken[] = {RE_TEKKEN, NULL};
static const char *const re_gpt4o[] = {RE_GPT4O, NULL};
static const char *const re_chameleon[] = {"<sentinel:[0-9]+>",
                                           "(?:IMGIMG)(?:(?:A|B|C|D|E|F|G|H|I){1,4})Z",
                                           "(?:[\\t\\n]|    |  )",
                                           "\\p{N}",
                                           "[\\p{P}!-/:-@\\[-`{-~]",
                                           RE_GPT2,
                                           NULL};
static const char *const re_bailingmoe[] = {
    "'(?:[sSdDmMtT]|[lL][lL]|[vV][eE]|[rR][eE])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?"
    "[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]|\\s+(?!\\S)|\\s+",
    NULL};
static const char *const re_seed_coder[] = {
    RE_CONTRACTIONS "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1}| ?[^\\s\\p{L}\\p{N}\\r\\n]+|"
                    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    NULL};
static const char *const re_ufakzeka[] = {
    "[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|"
    "\\s+(?!\\S)|\\s+",
    NULL};
static const char *const re_laguna[] = {"[^\\n]+|[\\n]+", RE_QWEN2, NULL};
static const char *const re_newlines[] = {"[^\\n]+|[\\n]+", NULL};
static const char *const re_minicpm5[] = {
    "\\p{N}{1,3}",
    RE_CONTRACTIONS "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}+| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
                    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    NULL};
static const char *const re_spark[] = {
    "\\p{N}{1,3}", RE_CJK_KANA,
    "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\\r\\n\\p{L}\\p{P}\\p{S}]?"
    "[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+|[\\r\\n]|\\s+(?!\\S)|\\s+",
    "\\p{N}", NULL};
static const char *const re_exaone_moe[] = {
    RE_CONTRACTIONS "|[^\\r\\n\\p{L}\\p{N}]?(?:\\p{L}\\p{M}*(?: \\p{L}\\p{M}*)*)+|\\p{N}| ?"
                    "[^\\s\\p{L}\\p{N}]+[\\r\\n/]?|\\s*[\\r\\n]|\\s+(?!\\S)|\\s+",
    NULL};

/*
 * The table: names (tokenizer.ggml.pre values sharing one behaviour, space-separated), the
 * regexes, clean_spaces, ignore_merges, add_bos (-1: the model's default, 2: forced on),
 * byte-level mapping, escaped whitespace, no BOS token. Order and flags follow llama.cpp's
 * vocabulary loader.
 */
struct pretok_row {
    const char *names;
    struct inf__pretok def;
};

#define ROW(names_, re_, clean_, ignore_, bos_)                                                    \
    {                                                                                              \
        names_,                                                                                    \
        {                                                                                          \
            .regex = re_, .clean_spaces = clean_, .ignore_merges = ignore_, .add_bos = bos_,       \
            .byte_encode = true                                                                    \
        }                                                                                          \
    }

static const struct pretok_row pretok_rows[] = {
    ROW("default", re_default, 1, 0, -1),
    ROW("llama3 llama-v3 llama-bpe falcon3 falcon-h1 pixtral midm-2.0 lfm2 jina-v5-nano", re_llama3,
        1, 1, 1),
    ROW("dbrx smaug-bpe", re_llama3, 1, 0, -1),
    {"glm4 chatglm-bpe",
     {.regex = re_llama3,
      .clean_spaces = 1,
      .add_bos = -1,
      .byte_encode = true,
      .no_bos_token = true}},
    /* SentencePiece-style BPE on raw UTF-8 with U+2581 for spaces; only newlines split */
    {"gemma4 granite-embed-multi-311m",
     {.regex = re_newlines, .clean_spaces = 1, .add_bos = 2, .escape_whitespace = true}},
    ROW("jais-2", re_jais2, 1, 0, -1),
    ROW("deepseek-llm", re_deepseek_llm, 0, 0, -1),
    ROW("deepseek-coder", re_deepseek_coder, 0, 0, -1),
    ROW("deepseek-v3 hunyuan-dense hy_v4 joyai-llm", re_deepseek3, 0, 0, -1),
    ROW("spark2_5", re_spark, 0, 0, -1),
    ROW("falcon", re_falcon, 1, 0, -1),
    ROW("gpt-2 phi-2 jina-es jina-de gigachat jina-v2-es jina-v2-de a.x-4.0 mellum modern-bert "
        "mpt olmo jais exaone4 jina-v1-en jina-v2-code roberta-bpe",
        re_gpt2, 1, 0, -1),
    ROW("trillion granite-docling", re_gpt2, 0, 0, -1),
    ROW("starcoder refact codeshell exaone minerva-7b mellum2", re_starcoder, 1, 0, -1),
    ROW("command-r smollm", re_starcoder, 0, 0, -1),
    ROW("qwen2 deepseek-r1-qwen kormo f2llmv2 hunyuan grok-2 solar-open", re_qwen2, 0, 0, -1),
    ROW("stablelm2 megrez", re_qwen2, 1, 0, -1),
    ROW("qwen35", re_qwen35, 0, 0, -1),
    ROW("poro-chat", re_bloom, 0, 0, -1),
    ROW("viking", re_viking, 0, 0, -1),
    ROW("bloom gpt3-finnish", re_bloom, 1, 0, -1),
    ROW("tekken", re_tekken, 0, 1, 1),
    ROW("chameleon", re_chameleon, 0, 0, 1),
    ROW("gpt-4o llama4 kanana2 talkie minimax-m2", re_gpt4o, 0, 0, -1),
    ROW("bailingmoe bailingmoe2 llada-moe", re_bailingmoe, 0, 0, -1),
    ROW("seed-coder", re_seed_coder, 0, 0, -1),
    ROW("ufakzeka", re_ufakzeka, 0, 0, -1),
    ROW("laguna", re_laguna, 0, 0, -1),
    ROW("minicpm5", re_minicpm5, 1, 1, -1),
    ROW("exaone-moe", re_exaone_moe, 1, 0, -1),
};

#define N_PRETOK (sizeof(pretok_rows) / sizeof(pretok_rows[0]))

const struct inf__pretok *inf__pretok_find(const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < N_PRETOK; i++) {
        const char *p = pretok_rows[i].names;
        while (*p) {
            const char *end = strchr(p, ' ');
            size_t len = end ? (size_t)(end - p) : strlen(p);
            if (len == n && memcmp(p, name, n) == 0)
                return &pretok_rows[i].def;
            p += len;
            while (*p == ' ')
                p++;
        }
    }
    return NULL;
}

const struct inf__pretok *inf__pretok_default(void)
{
    return &pretok_rows[0].def;
}

/* ---- compiling -------------------------------------------------------------------------- */

#define WS_SET                                                                                     \
    "\\t\\n\\x0B\\f\\r \\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}"      \
    "\\x{205F}\\x{3000}"

/*
 * Rewrite \s, \S and \d (outside \p{...}) as described at the top. Returns a malloc'd pattern
 * or NULL (out of memory, or \S inside a class, which no table pattern has).
 */
static char *rewrite(const char *pat)
{
    size_t n = strlen(pat), cap = n * 8 + 64 + 1, o = 0;
    char *out = malloc(cap);
    bool in_class = false;
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        const char *rep = NULL;
        char tmp[3] = {pat[i], 0, 0};
        if (pat[i] == '\\' && i + 1 < n) {
            char c = pat[i + 1];
            if (c == 's')
                rep = in_class ? WS_SET : "[" WS_SET "]";
            else if (c == 'S' && !in_class)
                rep = "[^" WS_SET "]";
            else if (c == 'd')
                rep = in_class ? "0-9" : "[0-9]";
            else if (c == 'S') {
                free(out);
                return NULL;
            } else {
                tmp[1] = c;
                rep = tmp;
            }
            i++;
        } else if (pat[i] == '[' && !in_class) {
            in_class = true;
            /* a ']' or '^]' right after '[' is literal */
            if (i + 1 < n && pat[i + 1] == '^') {
                tmp[1] = '^';
                i++;
            }
            rep = tmp;
        } else if (pat[i] == ']' && in_class) {
            in_class = false;
            rep = tmp;
        } else {
            rep = tmp;
        }
        size_t rl = strlen(rep);
        if (o + rl + 1 > cap) {
            cap = (o + rl + 1) * 2;
            char *no = realloc(out, cap);
            if (!no) {
                free(out);
                return NULL;
            }
            out = no;
        }
        memcpy(out + o, rep, rl);
        o += rl;
    }
    out[o] = '\0';
    return out;
}

void inf__regex_set_release(struct inf__regex_set *rs)
{
    for (size_t i = 0; i < rs->n; i++)
        pcre2_code_free((pcre2_code *)rs->code[i]);
    free(rs->code);
    rs->code = NULL;
    rs->n = 0;
}

inf_status inf__regex_set_compile(struct inf__regex_set *rs, const char *const *patterns,
                                  struct inf_error *err)
{
    size_t n = 0;
    while (patterns[n])
        n++;
    rs->code = calloc(n ? n : 1, sizeof(*rs->code));
    rs->n = 0;
    if (!rs->code)
        return inf_error_set(err, INF_ENOMEM, "out of memory compiling the pre-tokenizer");
    for (size_t i = 0; i < n; i++) {
        int ec;
        PCRE2_SIZE eo;
        char *pat = rewrite(patterns[i]);
        if (!pat) {
            inf__regex_set_release(rs);
            return inf_error_set(err, INF_ENOMEM, "out of memory compiling the pre-tokenizer");
        }
        pcre2_code *code =
            pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED,
                          PCRE2_UTF | PCRE2_UCP | PCRE2_DOLLAR_ENDONLY, &ec, &eo, NULL);
        if (!code) {
            PCRE2_UCHAR msg[128];
            pcre2_get_error_message(ec, msg, sizeof(msg));
            inf_error_setf(err, INF_EINTERNAL, "pre-tokenizer regex %zu: %s at offset %zu", i,
                           (const char *)msg, (size_t)eo);
            free(pat);
            inf__regex_set_release(rs);
            return INF_EINTERNAL;
        }
        free(pat);
        /* JIT is an optimisation: where it is unavailable the interpreter matches the same. */
        (void)pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
        rs->code[rs->n++] = code;
    }
    return INF_OK;
}

/* ---- splitting -------------------------------------------------------------------------- */

void inf__spans_release(struct inf__spans *s)
{
    free(s->v);
    memset(s, 0, sizeof(*s));
}

inf_status inf__spans_push(struct inf__spans *s, size_t off, size_t len)
{
    if (!inf__grow(&s->v, &s->cap, s->n + 1, sizeof(*s->v), 64))
        return INF_ENOMEM;
    s->v[s->n].off = (uint32_t)off;
    s->v[s->n].len = (uint32_t)len;
    s->n++;
    return INF_OK;
}

struct matcher {
    pcre2_match_data *md;
    pcre2_match_context *mctx;
    pcre2_jit_stack *jit_stack;
};

/* One match, growing the JIT stack once if the default 32 KiB one is too small. */
static int match_one(struct matcher *m, const pcre2_code *code, const char *s, size_t n, size_t off,
                     uint32_t opts)
{
    int rc = pcre2_match(code, (PCRE2_SPTR)s, n, off, opts | PCRE2_NO_UTF_CHECK, m->md, m->mctx);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT && !m->jit_stack) {
        m->mctx = pcre2_match_context_create(NULL);
        m->jit_stack = pcre2_jit_stack_create(64 * 1024, 64 * 1024 * 1024, NULL);
        if (!m->mctx || !m->jit_stack)
            return PCRE2_ERROR_NOMEMORY;
        pcre2_jit_stack_assign(m->mctx, NULL, m->jit_stack);
        rc = pcre2_match(code, (PCRE2_SPTR)s, n, off, opts | PCRE2_NO_UTF_CHECK, m->md, m->mctx);
    }
    return rc;
}

/* Split one piece text[base..base+len) by code into out (matches and gaps). */
static int split_piece(struct matcher *m, const pcre2_code *code, const char *text, size_t base,
                       size_t len, struct inf__spans *out)
{
    const char *s = text + base;
    size_t off = 0, start = 0;
    uint32_t opts = 0;
    while (off <= len) {
        int rc = match_one(m, code, s, len, off, opts);
        if (rc == PCRE2_ERROR_NOMATCH)
            break;
        if (rc < 0)
            return rc;
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(m->md);
        size_t ms = ov[0], me = ov[1];
        if (ms > start && inf__spans_push(out, base + start, ms - start) != INF_OK)
            return PCRE2_ERROR_NOMEMORY;
        if (me > ms && inf__spans_push(out, base + ms, me - ms) != INF_OK)
            return PCRE2_ERROR_NOMEMORY;
        start = me;
        off = me;
        /* after an empty match, look again from the same place for a non-empty one */
        opts = me == ms ? PCRE2_NOTEMPTY_ATSTART : 0;
    }
    if (start < len && inf__spans_push(out, base + start, len - start) != INF_OK)
        return PCRE2_ERROR_NOMEMORY;
    return 0;
}

inf_status inf__regex_split(const struct inf__regex_set *rs, const char *text, size_t len,
                            struct inf__spans *out, struct inf_error *err)
{
    struct inf__spans a = {0}, b = {0};
    struct matcher m = {0};
    inf_status st = INF_OK;
    int rc = 0;

    out->n = 0;
    if (len == 0)
        return INF_OK;
    m.md = pcre2_match_data_create(1, NULL);
    if (!m.md || inf__spans_push(&a, 0, len) != INF_OK) {
        st = inf_error_set(err, INF_ENOMEM, "out of memory in the pre-tokenizer");
        goto cleanup;
    }
    for (size_t r = 0; r < rs->n; r++) {
        b.n = 0;
        for (size_t i = 0; i < a.n && rc == 0; i++)
            rc = split_piece(&m, rs->code[r], text, a.v[i].off, a.v[i].len, &b);
        if (rc != 0)
            break;
        struct inf__spans t = a;
        a = b;
        b = t;
    }
    if (rc == PCRE2_ERROR_NOMEMORY) {
        st = inf_error_set(err, INF_ENOMEM, "out of memory in the pre-tokenizer");
    } else if (rc < 0) {
        PCRE2_UCHAR msg[128];
        pcre2_get_error_message(rc, msg, sizeof(msg));
        st = inf_error_set(err, INF_ELIMIT, "pre-tokenizer regex failed: %s", (const char *)msg);
    } else {
        inf__spans_release(out);
        *out = a;
        a.v = NULL;
    }
cleanup:
    inf__spans_release(&a);
    inf__spans_release(&b);
    pcre2_match_data_free(m.md);
    pcre2_match_context_free(m.mctx);
    pcre2_jit_stack_free(m.jit_stack);
    return st;
}
