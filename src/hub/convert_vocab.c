/*
 * convert_vocab.c - the tokenizer.ggml.* metadata of a converted model, from tokenizer.json,
 * tokenizer_config.json and config.json, as llama.cpp's converter writes it (gguf-py's
 * SpecialVocab, TextModel._set_vocab_gpt2 and LlamaHfVocab):
 *
 *  - byte-level BPE (tokenizer.json model BPE without byte_fallback): model "gpt2", tokens as
 *    written in the file, ids missing below config.json's vocab_size filled with "[PAD<id>]"
 *    (UNUSED), added tokens CONTROL when special (or when they look special: "<|...|>",
 *    "<unused...>"), else USER_DEFINED; every merge ("a b"; pairs joined, their spaces written as
 *    U+0120); pre-tokenizer named as llama.cpp names it. llama.cpp recognises the pre-tokenizer by
 *    hashing the ids Python's tokenizers library gives for a probe text; without that library we
 *    recognise the Split regex itself (table pre_regexes) and refuse one we do not know.
 *  - BPE with byte fallback (the tokenizer.json of SentencePiece models: Llama 2, Gemma): model
 *    "llama" (SentencePiece), pre "default", <0xXX> tokens BYTE, the unknown token UNKNOWN, added
 *    tokens CONTROL / USER_DEFINED. llama.cpp's LlamaHfVocab gives every token the score -1000,
 *    which leaves the SentencePiece merge order to chance; we give a token the negated rank of
 *    the first merge that makes it, so merging by score is the BPE merge order.
 *  - WordPiece (BERT): model "bert", tokens in llama.cpp's phantom-space form (control tokens
 *    kept, "##x" as "x", others as U+2581 + token), token_type_count.
 *  - Unigram (T5, XLM-RoBERTa: bge-m3, multilingual-e5): model "t5", pieces and scores by id,
 *    the unknown, added and byte tokens typed, the space flags and the Precompiled normalizer's
 *    charsmap (tokenizer.ggml.precompiled_charsmap), as XLMRobertaModel writes them.
 *  - a tokenizer.model (SentencePiece protobuf), preferred when present as llama.cpp's
 *    converters prefer it: pieces, scores and types as _create_vocab_sentencepiece reads them,
 *    then added_tokens.json and tokenizer_config.json's added_tokens_decoder; a Unigram model
 *    ("t5") as T5Model.set_vocab writes it, with its normalizer spec's flags and charsmap.
 *  - special ids from tokenizer_config.json's *_token names looked up among the added tokens,
 *    the post-processor's template (add_bos / add_eos), then config.json's *_token_id;
 *    add_bos_token / add_eos_token flags; normalizer lowercase / strip_accents; chat_template
 *    (tokenizer_config.json's, else chat_template.jinja; a list of named templates gives
 *    tokenizer.chat_template.NAME keys and tokenizer.chat_templates).
 */
#define _POSIX_C_SOURCE 200809L
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hub/convert_internal.h"

inf_status inf__conv_parse_json(const char *text, size_t len, const char *what, json_t **out,
                                struct inf_error *err)
{
    json_error_t je;
    *out = NULL;
    if (len > INF__CONV_MAX_TOKENIZER)
        return inf_error_set(err, INF_ELIMIT, "'%s': %zu bytes is more than the %u allowed", what,
                             len, INF__CONV_MAX_TOKENIZER);
    json_t *j = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    /* tokenizer_config.json often has "model_max_length": 1000000000000000019884624838656,
       beyond jansson's integers: such files are read with every number as a double (whoever
       then needs an integer from them says it is not one) */
    if (!j && strstr(je.text, "too big integer"))
        j = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_DECODE_INT_AS_REAL, &je);
    if (!j)
        return inf_error_set(err, INF_EFORMAT, "'%s': line %d column %d: %s", what, je.line,
                             je.column, je.text);
    if (!json_is_object(j)) {
        json_decref(j);
        return inf_error_set(err, INF_EFORMAT, "'%s': not a JSON object", what);
    }
    *out = j;
    return INF_OK;
}

/* ---- pre-tokenizer recognition -------------------------------------------------------------- */

/* Split regexes of published tokenizer.json files and the tokenizer.ggml.pre name llama.cpp's
   converter gives them (its hash table in convert_hf_to_gguf.py names the models). */
#define PRE_MAX_SPLITS 4

static const struct {
    const char *regex[PRE_MAX_SPLITS]; /* the Split regexes in order, NULL after the last */
    const char *pre;
} pre_regexes[] = {
    /* Llama 3, 3.1, 3.2 */
    {{"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
      "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
     "llama-bpe"},
    /* Qwen 2, 2.5, 3 */
    {{"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
      "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
     "qwen2"},
    /* SmolLM, StarCoder 2: digits one by one, then GPT-2's ByteLevel regex */
    {{"\\p{N}"}, "smollm"},
    /* DeepSeek-V3 (and R1): digits in threes, CJK and kana runs, then the main split */
    {{"\\p{N}{1,3}", "[\u4e00-\u9fa5\u3040-\u309f\u30a0-\u30ff]+",
      "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?["
      "\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+"},
     "deepseek-v3"},
    /* GPT-4o's o200k and gpt-oss's o200k_harmony */
    {{"[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+(?"
      "i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{"
      "Ll}"
      "\\p{Lm}\\p{Lo}\\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\\p{N}{1,3}| "
      "?[^\\s\\p{L}\\p{N}]+[\\r\\n/"
      "]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
     "gpt-4o"},
};

/* The Split regexes and ByteLevel use_regex of a pre_tokenizer (possibly a Sequence). */
static void collect_pre(const json_t *pt, const char *regex[PRE_MAX_SPLITS], int *n_regex,
                        bool *bytelevel_regex, int *n_other)
{
    const char *type = json_string_value(json_object_get(pt, "type"));
    if (!type) {
        (*n_other)++;
        return;
    }
    if (strcmp(type, "Sequence") == 0) {
        const json_t *arr = json_object_get(pt, "pretokenizers");
        size_t i;
        const json_t *el;
        json_array_foreach(arr, i, el)
        {
            collect_pre(el, regex, n_regex, bytelevel_regex, n_other);
        }
    } else if (strcmp(type, "Split") == 0) {
        const char *re =
            json_string_value(json_object_get(json_object_get(pt, "pattern"), "Regex"));
        if (*n_regex < PRE_MAX_SPLITS)
            regex[*n_regex] = re;
        (*n_regex)++;
    } else if (strcmp(type, "ByteLevel") == 0) {
        const json_t *ur = json_object_get(pt, "use_regex");
        *bytelevel_regex = !ur || json_is_true(ur);
    } else if (strcmp(type, "Digits") == 0) {
        (*n_other)++;
    } else {
        (*n_other)++;
    }
}

static inf_status detect_pre(const json_t *tok, const char **pre, struct inf_error *err)
{
    const json_t *pt = json_object_get(tok, "pre_tokenizer");
    const char *regex[PRE_MAX_SPLITS] = {NULL};
    int n_regex = 0, n_other = 0;
    bool bl_regex = false;
    *pre = NULL;
    if (pt && !json_is_null(pt))
        collect_pre(pt, regex, &n_regex, &bl_regex, &n_other);
    if (n_regex == 0 && n_other == 0 && bl_regex) {
        *pre = "gpt-2";
        return INF_OK;
    }
    for (size_t i = 0; n_other == 0 && n_regex <= PRE_MAX_SPLITS &&
                       i < sizeof(pre_regexes) / sizeof(pre_regexes[0]);
         i++) {
        int k = 0;
        while (k < n_regex && regex[k] && pre_regexes[i].regex[k] &&
               strcmp(regex[k], pre_regexes[i].regex[k]) == 0)
            k++;
        if (k == n_regex && (k == PRE_MAX_SPLITS || !pre_regexes[i].regex[k]) &&
            (strcmp(pre_regexes[i].pre, "smollm") != 0 || bl_regex)) {
            *pre = pre_regexes[i].pre;
            return INF_OK;
        }
    }
    return inf_error_set(err, INF_EUNSUPPORTED,
                         "tokenizer.json: the BPE pre-tokenizer is not recognized (%d Split "
                         "regexes%s%.120s%s); known: llama-bpe (Llama 3), qwen2 (Qwen 2/3), "
                         "gpt-2, smollm, deepseek-v3, gpt-4o (GPT-4o, gpt-oss)",
                         n_regex, regex[0] ? ", the first '" : "", regex[0] ? regex[0] : "",
                         regex[0] ? "'" : "");
}

/* ---- tokens --------------------------------------------------------------------------------- */

struct vocab {
    char **text;    /* [n]: owned strings; NULL for ids nothing names */
    int32_t *type;  /* [n] */
    float *score;   /* [n] (SentencePiece only) */
    uint8_t *added; /* [n]: 1 added token, 2 added and special */
    int64_t n;
};

static void vocab_release(struct vocab *v)
{
    for (int64_t i = 0; v->text && i < v->n; i++)
        free(v->text[i]);
    free(v->text);
    free(v->type);
    free(v->score);
    free(v->added);
    memset(v, 0, sizeof(*v));
}

/* tokenizer.ggml.model (a SentencePiece kind), pre "default", and the tokens, scores and types. */
static inf_status write_scored_vocab(struct inf_gguf_writer *w, const char *model,
                                     const struct vocab *v, struct inf_error *err)
{
    inf_status rc = inf_gguf_writer_set_str(w, "tokenizer.ggml.model", model, err);
    if (rc == INF_OK)
        rc = inf_gguf_writer_set_str(w, "tokenizer.ggml.pre", "default", err);
    if (rc == INF_OK)
        rc = inf_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)v->text,
                                         (uint64_t)v->n, err);
    if (rc == INF_OK)
        rc = inf_gguf_writer_set_arr(w, "tokenizer.ggml.scores", INF_GGUF_TYPE_FLOAT32, v->score,
                                     (uint64_t)v->n, err);
    if (rc == INF_OK)
        rc = inf_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", INF_GGUF_TYPE_INT32, v->type,
                                     (uint64_t)v->n, err);
    return rc;
}

static bool looks_special(const char *s)
{
    size_t n = strlen(s);
    if (strcmp(s, "<pad>") == 0 || strcmp(s, "<mask>") == 0 || strcmp(s, "<2mass>") == 0 ||
        strcmp(s, "[@BOS@]") == 0)
        return true;
    if (n >= 4 && memcmp(s, "<|", 2) == 0 && memcmp(s + n - 2, "|>", 2) == 0)
        return true;
    /* "<｜" ... "｜>" (U+FF5C, deepseek-coder) */
    if (n >= 8 && memcmp(s, "<\xef\xbd\x9c", 4) == 0 && memcmp(s + n - 4, "\xef\xbd\x9c>", 4) == 0)
        return true;
    return n >= 8 && memcmp(s, "<unused", 7) == 0 && s[n - 1] == '>';
}

/* Replace every U+2581 with a space, in place. */
static void unescape_spaces(char *s)
{
    char *o = s;
    for (const char *p = s; *p;) {
        if ((unsigned char)p[0] == 0xE2 && (unsigned char)p[1] == 0x96 &&
            (unsigned char)p[2] == 0x81) {
            *o++ = ' ';
            p += 3;
        } else {
            *o++ = *p++;
        }
    }
    *o = '\0';
}

static inf_status get_id(const json_t *v, const char *what, const char *name, int64_t *out,
                         struct inf_error *err)
{
    if (!json_is_integer(v) || json_integer_value(v) < 0 ||
        json_integer_value(v) >= INF__CONV_MAX_VOCAB)
        return inf_error_set(err, INF_EFORMAT,
                             "tokenizer.json: %s '%.64s': id is not an integer "
                             "in [0, %u)",
                             what, name, INF__CONV_MAX_VOCAB);
    *out = json_integer_value(v);
    return INF_OK;
}

/* Ids and texts of model.vocab and added_tokens; n = max(id + 1, vocab_size). */
static inf_status read_tokens(const json_t *tok, int64_t n_vocab, bool spm, struct vocab *v,
                              struct inf_error *err)
{
    const json_t *model = json_object_get(tok, "model");
    const json_t *vmap = json_object_get(model, "vocab");
    const json_t *added = json_object_get(tok, "added_tokens");
    const char *key;
    const json_t *val;
    size_t i;
    int64_t id, max_id = -1;

    if (!json_is_object(vmap))
        return inf_error_set(err, INF_EFORMAT, "tokenizer.json: model.vocab is not an object");
    if (added && !json_is_array(added))
        return inf_error_set(err, INF_EFORMAT, "tokenizer.json: added_tokens is not an array");
    json_object_foreach((json_t *)vmap, key, val)
    {
        inf_status rc = get_id(val, "token", key, &id, err);
        if (rc != INF_OK)
            return rc;
        max_id = id > max_id ? id : max_id;
    }
    json_array_foreach(added, i, val)
    {
        const char *content = json_string_value(json_object_get(val, "content"));
        if (!content)
            return inf_error_set(err, INF_EFORMAT,
                                 "tokenizer.json: added_tokens[%zu] has no "
                                 "content",
                                 i);
        inf_status rc = get_id(json_object_get(val, "id"), "added token", content, &id, err);
        if (rc != INF_OK)
            return rc;
        max_id = id > max_id ? id : max_id;
    }
    if (n_vocab > 0 && max_id >= n_vocab)
        return inf_error_set(err, INF_EFORMAT,
                             "tokenizer.json has token id %" PRId64
                             " but config.json's vocab_size is %" PRId64,
                             max_id, n_vocab);
    v->n = n_vocab > max_id + 1 ? n_vocab : max_id + 1;
    if (v->n <= 0)
        return inf_error_set(err, INF_EFORMAT, "tokenizer.json: the vocabulary is empty");
    v->text = calloc((size_t)v->n, sizeof(*v->text));
    v->type = calloc((size_t)v->n, sizeof(*v->type));
    v->score = calloc((size_t)v->n, sizeof(*v->score));
    v->added = calloc((size_t)v->n, 1);
    if (!v->text || !v->type || !v->score || !v->added)
        return inf_error_set(err, INF_ENOMEM, "out of memory");
    json_object_foreach((json_t *)vmap, key, val)
    {
        id = json_integer_value(val);
        if (v->text[id])
            return inf_error_set(err, INF_EFORMAT,
                                 "tokenizer.json: id %" PRId64 " is given to both '%.64s' and "
                                 "'%.64s'",
                                 id, v->text[id], key);
        if (!(v->text[id] = strdup(key)))
            return inf_error_set(err, INF_ENOMEM, "out of memory");
        v->type[id] = INF__TT_NORMAL;
    }
    json_array_foreach(added, i, val)
    {
        const char *content = json_string_value(json_object_get(val, "content"));
        id = json_integer_value(json_object_get(val, "id"));
        bool special = json_is_true(json_object_get(val, "special"));
        free(v->text[id]);
        if (!(v->text[id] = strdup(content)))
            return inf_error_set(err, INF_ENOMEM, "out of memory");
        v->added[id] = special ? 2 : 1;
        if (special || looks_special(content)) {
            v->type[id] = INF__TT_CONTROL;
        } else {
            v->type[id] = INF__TT_USER_DEFINED;
            if (!spm)
                unescape_spaces(v->text[id]); /* as llama.cpp pre-normalizes them */
        }
    }
    for (id = 0; id < v->n; id++) {
        if (v->text[id])
            continue;
        char pad[32];
        snprintf(pad, sizeof(pad), "[PAD%" PRId64 "]", id);
        if (!(v->text[id] = strdup(pad)))
            return inf_error_set(err, INF_ENOMEM, "out of memory");
        v->type[id] = INF__TT_UNUSED;
        v->score[id] = spm ? -10000.0f : 0.0f;
    }
    return INF_OK;
}

/* One merge as the "a b" string llama.cpp stores (pairs: spaces inside parts become U+0120).
   NULL for a malformed entry. The caller frees it. */
static char *merge_text(const json_t *m, const char **a, const char **b, size_t *la, size_t *lb)
{
    const char *s = json_string_value(m);
    if (s) {
        const char *sp = strchr(s, ' ');
        if (!sp || sp == s || !sp[1])
            return NULL;
        *a = s;
        *la = (size_t)(sp - s);
        *b = sp + 1;
        *lb = strlen(sp + 1);
        return strdup(s);
    }
    if (!json_is_array(m) || json_array_size(m) != 2)
        return NULL;
    *a = json_string_value(json_array_get(m, 0));
    *b = json_string_value(json_array_get(m, 1));
    if (!*a || !*b || !**a || !**b)
        return NULL;
    *la = strlen(*a);
    *lb = strlen(*b);
    size_t n_sp = 0;
    for (const char *p = *a; *p; p++)
        n_sp += *p == ' ';
    for (const char *p = *b; *p; p++)
        n_sp += *p == ' ';
    char *out = malloc(*la + *lb + 2 + n_sp + 1);
    if (!out)
        return NULL;
    char *o = out;
    for (int part = 0; part < 2; part++) {
        for (const char *p = part ? *b : *a; *p; p++) {
            if (*p == ' ') {
                *o++ = (char)0xC4; /* U+0120 */
                *o++ = (char)0xA0;
            } else {
                *o++ = *p;
            }
        }
        if (!part)
            *o++ = ' ';
    }
    *o = '\0';
    return out;
}

static inf_status write_merges(const json_t *merges, struct inf_gguf_writer *w,
                               struct inf_error *err)
{
    size_t n = json_array_size(merges), i;
    char **strs = calloc(n ? n : 1, sizeof(*strs));
    inf_status rc = INF_OK;
    if (!strs)
        return inf_error_set(err, INF_ENOMEM, "out of memory");
    for (i = 0; i < n && rc == INF_OK; i++) {
        const char *a = NULL, *b = NULL;
        size_t la = 0, lb = 0;
        strs[i] = merge_text(json_array_get(merges, i), &a, &b, &la, &lb);
        if (!strs[i])
            rc = inf_error_set(err, INF_EFORMAT,
                               "tokenizer.json: model.merges[%zu] is not a "
                               "pair of tokens",
                               i);
    }
    if (rc == INF_OK)
        rc = inf_gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", (const char *const *)strs, n,
                                         err);
    for (i = 0; i < n; i++)
        free(strs[i]);
    free(strs);
    return rc;
}

/* SentencePiece scores: -(rank of the first merge making the token); others keep 0. */
static inf_status spm_scores(const json_t *tok, struct vocab *v, struct inf_error *err)
{
    const json_t *vmap = json_object_get(json_object_get(tok, "model"), "vocab");
    const json_t *merges = json_object_get(json_object_get(tok, "model"), "merges");
    size_t n = json_array_size(merges);
    char *buf = NULL;
    size_t cap = 0;
    uint8_t *seen = calloc((size_t)v->n, 1);
    if (!seen)
        return inf_error_set(err, INF_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const char *a = NULL, *b = NULL;
        size_t la = 0, lb = 0;
        char *m = merge_text(json_array_get(merges, i), &a, &b, &la, &lb);
        if (!m || !a || !b) {
            free(m);
            free(buf);
            free(seen);
            return inf_error_set(err, INF_EFORMAT,
                                 "tokenizer.json: model.merges[%zu] is not a pair of tokens", i);
        }
        if (!buf || la + lb + 1 > cap) {
            cap = la + lb + 64;
            char *nb = realloc(buf, cap);
            if (!nb) {
                free(m);
                free(buf);
                free(seen);
                return inf_error_set(err, INF_ENOMEM, "out of memory");
            }
            buf = nb;
        }
        memcpy(buf, a, la);
        memcpy(buf + la, b, lb);
        buf[la + lb] = '\0';
        free(m);
        const json_t *idv = json_object_get(vmap, buf);
        if (json_is_integer(idv)) {
            int64_t id = json_integer_value(idv);
            if (id >= 0 && id < v->n && !seen[id]) {
                seen[id] = 1;
                v->score[id] = -(float)i;
            }
        }
    }
    free(buf);
    free(seen);
    return INF_OK;
}

static bool is_byte_token(const char *s)
{
    return strlen(s) == 6 && memcmp(s, "<0x", 3) == 0 && s[5] == '>' &&
           strchr("0123456789ABCDEFabcdef", s[3]) && strchr("0123456789ABCDEFabcdef", s[4]) &&
           s[3] && s[4];
}

/* Whether the normalizer / pre-tokenizer put U+2581 before the text. */
static bool spm_space_prefix(const json_t *tok)
{
    const json_t *norm = json_object_get(tok, "normalizer");
    const char *t = json_string_value(json_object_get(norm, "type"));
    if (t && strcmp(t, "Sequence") == 0) {
        size_t i;
        const json_t *el;
        json_array_foreach(json_object_get(norm, "normalizers"), i, el)
        {
            const char *et = json_string_value(json_object_get(el, "type"));
            if (et && strcmp(et, "Prepend") == 0)
                return true;
        }
    } else if (t && strcmp(t, "Prepend") == 0) {
        return true;
    }
    const json_t *pt = json_object_get(tok, "pre_tokenizer");
    t = json_string_value(json_object_get(pt, "type"));
    if (t && strcmp(t, "Metaspace") == 0) {
        const char *scheme = json_string_value(json_object_get(pt, "prepend_scheme"));
        if (scheme)
            return strcmp(scheme, "never") != 0;
        return json_is_true(json_object_get(pt, "add_prefix_space"));
    }
    return false;
}

/* ---- SentencePiece tokenizer.model ------------------------------------------------------- */

/*
 * A tokenizer.model is a protobuf ModelProto: field 1 repeats SentencePiece {1: piece (string),
 * 2: score (float), 3: type (enum: 1 NORMAL, 2 UNKNOWN, 3 CONTROL, 4 USER_DEFINED, 5 UNUSED,
 * 6 BYTE)}; the other fields (trainer and normalizer specs) are skipped. Every length and varint
 * is checked against the bytes that remain.
 */
struct pb {
    const uint8_t *p, *end;
};

static bool pb_varint(struct pb *b, uint64_t *out)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (b->p >= b->end)
            return false;
        uint8_t c = *b->p++;
        v |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) {
            *out = v;
            return true;
        }
    }
    return false;
}

/* Skip one field of wire type wt; false when it runs past the end or the type is unknown. */
static bool pb_skip(struct pb *b, unsigned wt)
{
    uint64_t n;
    switch (wt) {
    case 0:
        return pb_varint(b, &n);
    case 1:
        n = 8;
        break;
    case 2:
        if (!pb_varint(b, &n))
            return false;
        break;
    case 5:
        n = 4;
        break;
    default:
        return false;
    }
    if (n > (uint64_t)(b->end - b->p))
        return false;
    b->p += n;
    return true;
}

/* One SentencePiece message: its text (malloc'd), score and type. */
static inf_status pb_piece(struct pb *m, size_t index, char **text, float *score, int *type,
                           struct inf_error *err)
{
    *text = NULL;
    *score = 0.0f;
    *type = 1;
    while (m->p < m->end) {
        uint64_t key, n;
        if (!pb_varint(m, &key))
            goto bad;
        unsigned field = (unsigned)(key >> 3), wt = (unsigned)(key & 7);
        if (field == 1 && wt == 2) {
            if (!pb_varint(m, &n) || n > (uint64_t)(m->end - m->p))
                goto bad;
            free(*text);
            if (!(*text = malloc((size_t)n + 1)))
                return inf_error_set(err, INF_ENOMEM, "out of memory");
            memcpy(*text, m->p, (size_t)n);
            (*text)[n] = '\0';
            if (strlen(*text) != (size_t)n) {
                free(*text);
                *text = NULL;
                return inf_error_set(err, INF_EFORMAT,
                                     "tokenizer.model: piece %zu holds a NUL byte", index);
            }
            m->p += n;
        } else if (field == 2 && wt == 5) {
            if (m->end - m->p < 4)
                goto bad;
            uint32_t u = (uint32_t)m->p[0] | (uint32_t)m->p[1] << 8 | (uint32_t)m->p[2] << 16 |
                         (uint32_t)m->p[3] << 24;
            memcpy(score, &u, 4);
            m->p += 4;
        } else if (field == 3 && wt == 0) {
            if (!pb_varint(m, &n))
                goto bad;
            *type = n >= 1 && n <= 6 ? (int)n : 1;
        } else if (!pb_skip(m, wt)) {
            goto bad;
        }
    }
    if (!*text)
        return inf_error_set(err, INF_EFORMAT, "tokenizer.model: piece %zu has no text", index);
    return INF_OK;
bad:
    free(*text);
    *text = NULL;
    return inf_error_set(err, INF_EFORMAT, "tokenizer.model: piece %zu is truncated or malformed",
                         index);
}

/* What a tokenizer.model says beside its pieces: TrainerSpec (field 2) {3: model_type, 1
   UNIGRAM (the default), 2 BPE...}; NormalizerSpec (field 3) {2: precompiled_charsmap, 3:
   add_dummy_prefix, 4: remove_extra_whitespaces (both default true)}. */
struct sp_specs {
    uint64_t model_type;
    const uint8_t *charsmap;
    size_t charsmap_len;
    bool add_dummy_prefix, remove_extra_whitespaces;
};

static inf_status sp_read_specs(const struct inf__conv_json *j, struct sp_specs *sp,
                                struct inf_error *err)
{
    struct pb b = {j->sp_model, j->sp_model + j->sp_model_len};
    *sp = (struct sp_specs){1, NULL, 0, true, true};
    while (b.p < b.end) { /* the whole message was checked by read_sp_model */
        uint64_t key = 0, len = 0, v;
        pb_varint(&b, &key);
        if ((key >> 3) != 2 && (key >> 3) != 3) {
            pb_skip(&b, (unsigned)(key & 7));
            continue;
        }
        if ((key & 7) != 2)
            return inf_error_set(err, INF_EFORMAT, "tokenizer.model: its %s spec is not a message",
                                 (key >> 3) == 2 ? "trainer" : "normalizer");
        pb_varint(&b, &len);
        struct pb m = {b.p, b.p + len};
        unsigned spec = (unsigned)(key >> 3);
        b.p += len;
        while (m.p < m.end) {
            if (!pb_varint(&m, &key))
                goto bad;
            unsigned field = (unsigned)(key >> 3), wt = (unsigned)(key & 7);
            if (spec == 2 && field == 3 && wt == 0) {
                if (!pb_varint(&m, &sp->model_type))
                    goto bad;
            } else if (spec == 3 && field == 2 && wt == 2) {
                if (!pb_varint(&m, &v) || v > (uint64_t)(m.end - m.p))
                    goto bad;
                sp->charsmap = m.p;
                sp->charsmap_len = (size_t)v;
                m.p += v;
            } else if (spec == 3 && (field == 3 || field == 4) && wt == 0) {
                if (!pb_varint(&m, &v))
                    goto bad;
                if (field == 3)
                    sp->add_dummy_prefix = v != 0;
                else
                    sp->remove_extra_whitespaces = v != 0;
            } else if (!pb_skip(&m, wt)) {
                goto bad;
            }
        }
        continue;
    bad:
        return inf_error_set(err, INF_EFORMAT, "tokenizer.model: its %s spec is malformed",
                             spec == 2 ? "trainer" : "normalizer");
    }
    return INF_OK;
}

/* The pieces of a tokenizer.model, as llama.cpp's _create_vocab_sentencepiece reads them:
   types UNKNOWN, CONTROL, UNUSED and BYTE kept, every other piece NORMAL; ids up to
   config.json's vocab_size filled with "[PAD<id>]" (UNUSED, score -10000); then
   added_tokens.json and tokenizer_config.json's added_tokens_decoder (score -1000). */
static inf_status read_sp_model(const struct inf__conv_json *j, struct vocab *v, bool t5,
                                struct inf_error *err)
{
    struct pb b = {j->sp_model, j->sp_model + j->sp_model_len};
    size_t n_pieces = 0;
    inf_status rc = INF_OK;
    while (b.p < b.end) { /* count first */
        uint64_t key;
        if (!pb_varint(&b, &key) || !pb_skip(&b, (unsigned)(key & 7)))
            return inf_error_set(err, INF_EFORMAT,
                                 "tokenizer.model: not a SentencePiece model (malformed protobuf "
                                 "at byte %zu)",
                                 (size_t)(b.p - j->sp_model));
        if ((key >> 3) == 1 && (key & 7) == 2 && ++n_pieces > INF__CONV_MAX_VOCAB)
            return inf_error_set(err, INF_ELIMIT, "tokenizer.model: more than %u pieces",
                                 INF__CONV_MAX_VOCAB);
    }
    if (n_pieces == 0)
        return inf_error_set(err, INF_EFORMAT, "tokenizer.model: no pieces");
    v->n = j->n_vocab > 0 ? j->n_vocab : (int64_t)n_pieces;
    v->text = calloc((size_t)v->n, sizeof(*v->text));
    v->type = calloc((size_t)v->n, sizeof(*v->type));
    v->score = calloc((size_t)v->n, sizeof(*v->score));
    v->added = calloc((size_t)v->n, 1);
    if (!v->text || !v->type || !v->score || !v->added)
        return inf_error_set(err, INF_ENOMEM, "out of memory");
    b.p = j->sp_model;
    size_t id = 0;
    while (b.p < b.end && rc == INF_OK) {
        uint64_t key = 0, len = 0;
        pb_varint(&b, &key); /* checked above */
        if ((key >> 3) != 1 || (key & 7) != 2) {
            pb_skip(&b, (unsigned)(key & 7));
            continue;
        }
        pb_varint(&b, &len);
        struct pb m = {b.p, b.p + len};
        b.p += len;
        if ((int64_t)id >= v->n) { /* llama.cpp ignores pieces past vocab_size */
            id++;
            continue;
        }
        int type;
        rc = pb_piece(&m, id, &v->text[id], &v->score[id], &type, err);
        v->type[id] = type == 2 || type == 3 || type == 5 || type == 6 ? type : INF__TT_NORMAL;
        id++;
    }
    for (int64_t i = 0; rc == INF_OK && i < v->n; i++) {
        if (v->text[i])
            continue;
        char pad[32];
        snprintf(pad, sizeof(pad), "[PAD%" PRId64 "]", i);
        if (!(v->text[i] = strdup(pad)))
            rc = inf_error_set(err, INF_ENOMEM, "out of memory");
        v->type[i] = INF__TT_UNUSED;
        v->score[i] = -10000.0f;
    }
    const char *key;
    const json_t *val;
    json_object_foreach((json_t *)j->added_tokens, key, val)
    {
        if (rc != INF_OK)
            break;
        if (!json_is_integer(val) || json_integer_value(val) < 0 || json_integer_value(val) >= v->n)
            continue; /* out of range: ignored, as llama.cpp does */
        int64_t i = json_integer_value(val);
        free(v->text[i]);
        if (!(v->text[i] = strdup(key)))
            rc = inf_error_set(err, INF_ENOMEM, "out of memory");
        v->score[i] = -1000.0f;
        v->type[i] = INF__TT_USER_DEFINED;
    }
    json_object_foreach(json_object_get(t5 ? NULL : j->tok_cfg, "added_tokens_decoder"), key, val)
    {
        if (rc != INF_OK)
            break;
        char *endp;
        long long i = strtoll(key, &endp, 10);
        const char *content = json_string_value(json_object_get(val, "content"));
        if (*endp || endp == key || i < 0 || i >= v->n || !content)
            continue;
        free(v->text[i]);
        if (!(v->text[i] = strdup(content))) {
            rc = inf_error_set(err, INF_ENOMEM, "out of memory");
            break;
        }
        if (json_is_true(json_object_get(val, "special")) || looks_special(content)) {
            v->type[i] = INF__TT_CONTROL;
        } else {
            unescape_spaces(v->text[i]);
            v->type[i] = INF__TT_USER_DEFINED;
        }
        v->score[i] = -1000.0f;
    }
    return rc;
}

/* ---- special tokens ------------------------------------------------------------------------- */

#define N_SPECIAL 9
static const char *const special_types[N_SPECIAL] = {"bos", "eos",  "unk", "sep", "pad",
                                                     "cls", "mask", "eot", "eom"};
static const char *const special_keys[N_SPECIAL] = {
    "tokenizer.ggml.bos_token_id",     "tokenizer.ggml.eos_token_id",
    "tokenizer.ggml.unknown_token_id", "tokenizer.ggml.seperator_token_id",
    "tokenizer.ggml.padding_token_id", "tokenizer.ggml.cls_token_id",
    "tokenizer.ggml.mask_token_id",    "tokenizer.ggml.eot_token_id",
    "tokenizer.ggml.eom_token_id"};

struct specials {
    int64_t id[N_SPECIAL]; /* -1: unset */
    int order[N_SPECIAL];  /* the order they were set in, as llama.cpp writes them */
    int n_order;
    int add[3]; /* add_bos, add_eos, add_sep: -1 unset, else 0/1 */
    int add_order[3], n_add;
    bool use_eot, use_eom;
};

static void set_special(struct specials *s, int typ, int64_t id, int64_t n_tokens)
{
    if (id < 0 || id >= n_tokens || s->id[typ] >= 0)
        return;
    s->id[typ] = id;
    s->order[s->n_order++] = typ;
}

static void set_add(struct specials *s, int which, bool v)
{
    if (s->add[which] < 0)
        s->add_order[s->n_add++] = which;
    s->add[which] = v;
}

/* The token text a tokenizer_config.json entry names (a string or {"content": ...}). */
static const char *cfg_token(const json_t *cfg, const char *key)
{
    const json_t *e = json_object_get(cfg, key);
    if (json_is_string(e))
        return json_string_value(e);
    if (json_is_object(e))
        return json_string_value(json_object_get(e, "content"));
    return NULL;
}

static int64_t added_id(const json_t *tok, const char *content)
{
    size_t i;
    const json_t *el;
    if (!content)
        return -1;
    json_array_foreach(json_object_get(tok, "added_tokens"), i, el)
    {
        const char *c = json_string_value(json_object_get(el, "content"));
        const json_t *idv = json_object_get(el, "id");
        if (c && strcmp(c, content) == 0 && json_is_integer(idv))
            return json_integer_value(idv);
    }
    return -1;
}

static const char *template_special(const json_t *item)
{
    return json_string_value(json_object_get(json_object_get(item, "SpecialToken"), "id"));
}

static void find_specials(const struct inf__conv_json *j, int64_t n_tokens, struct specials *s)
{
    const json_t *cfg = j->tok_cfg;
    const char *names[N_SPECIAL] = {0};
    memset(s, 0, sizeof(*s));
    for (int t = 0; t < N_SPECIAL; t++)
        s->id[t] = -1;
    for (int k = 0; k < 3; k++)
        s->add[k] = -1;
    if (j->tok) {
        char key[32];
        for (int t = 0; t < 7; t++) {
            snprintf(key, sizeof(key), "%s_token", special_types[t]);
            names[t] = cfg_token(cfg, key);
        }
        if (!names[0] && names[5])
            names[0] = names[5]; /* cls as bos */
        if (!names[1] && names[3])
            names[1] = names[3]; /* sep as eos */
        const json_t *pp = json_object_get(j->tok, "post_processor");
        const json_t *procs = json_object_get(pp, "processors");
        size_t np = json_is_array(procs) ? json_array_size(procs) : (pp ? 1 : 0);
        for (size_t p = 0; p < np; p++) {
            const json_t *proc = json_is_array(procs) ? json_array_get(procs, p) : pp;
            const char *type = json_string_value(json_object_get(proc, "type"));
            if (!type)
                continue;
            if (strcmp(type, "RobertaProcessing") == 0) {
                set_add(s, 0, true);
                set_add(s, 1, true);
                set_add(s, 2, true);
                continue;
            }
            if (strcmp(type, "TemplateProcessing") != 0)
                continue;
            const json_t *single = json_object_get(proc, "single");
            size_t ns = json_array_size(single);
            if (ns > 1) {
                const char *first = template_special(json_array_get(single, 0));
                const char *last = template_special(json_array_get(single, ns - 1));
                if (first) {
                    if (!cfg) {
                        names[0] = first;
                    } else if (!(names[0] && strcmp(first, names[0]) == 0) &&
                               !(names[5] && strcmp(first, names[5]) == 0)) {
                        if (!names[0])
                            names[0] = first;
                        if (!names[5])
                            names[5] = first;
                    }
                    set_add(s, 0,
                            (names[0] && strcmp(first, names[0]) == 0) ||
                                (names[5] && strcmp(first, names[5]) == 0));
                }
                if (last) {
                    if (!cfg) {
                        names[1] = last;
                    } else if (!(names[1] && strcmp(last, names[1]) == 0)) {
                        if (!s->use_eot) {
                            s->use_eot = true;
                            names[7] = names[1];
                        } else if (!s->use_eom) {
                            s->use_eom = true;
                            names[8] = names[1];
                        }
                        names[1] = last;
                    }
                    set_add(s, 1, true);
                }
                /* the pair template: a separator between A and B (gguf-py's add_sep rule) */
                const json_t *pair = json_object_get(proc, "pair");
                size_t np2 = json_array_size(pair), a = 0, b = np2;
                if (np2 && first && template_special(json_array_get(pair, 0)) &&
                    !strcmp(template_special(json_array_get(pair, 0)), first))
                    a = 1;
                if (np2 && last && template_special(json_array_get(pair, np2 - 1)) &&
                    !strcmp(template_special(json_array_get(pair, np2 - 1)), last))
                    b = np2 - 1;
                if (b > a + 1) {
                    const char *sa = json_string_value(json_object_get(
                        json_object_get(json_array_get(pair, a), "Sequence"), "id"));
                    const char *sb = json_string_value(json_object_get(
                        json_object_get(json_array_get(pair, b - 1), "Sequence"), "id"));
                    if (sa && sb && !strcmp(sa, "A") && !strcmp(sb, "B") && b - a > 2) {
                        bool add_sep = false;
                        for (size_t q = a + 1; q < b - 1 && q < a + 3; q++) {
                            const char *e = template_special(json_array_get(pair, q));
                            bool is_sep = e && ((names[3] && !strcmp(e, names[3])) ||
                                                (names[1] && !strcmp(e, names[1])));
                            if (is_sep && (q == a + 2 ? b - a - 2 == 2 : !last))
                                add_sep = true;
                        }
                        set_add(s, 2, add_sep);
                    }
                }
            }
        }
    }
    if (cfg) {
        static const char *const add_keys[3] = {"add_bos_token", "add_eos_token", "add_sep_token"};
        for (int k = 0; k < 3; k++) {
            const json_t *v = json_object_get(cfg, add_keys[k]);
            if (json_is_boolean(v))
                set_add(s, k, json_is_true(v));
        }
    }
    for (int t = 0; t < N_SPECIAL; t++) {
        if (t >= 7 && !(t == 7 ? s->use_eot : s->use_eom))
            continue;
        if (j->tok && cfg)
            set_special(s, t, added_id(j->tok, names[t]), n_tokens);
    }
    if (j->no_bos)
        set_add(s, 0, false);
    /* config.json's ids for what is still unset */
    for (int t = 0; t < 7; t++) {
        char key[32];
        snprintf(key, sizeof(key), "%s_token_id", special_types[t]);
        const json_t *v = json_object_get(j->config, key);
        if (json_is_integer(v))
            set_special(s, t, json_integer_value(v), n_tokens);
    }
}

static void parse_normalizer(const json_t *norm, int *lower, int *strip)
{
    const char *t = json_string_value(json_object_get(norm, "type"));
    if (!t)
        return;
    if (strcmp(t, "Lowercase") == 0) {
        *lower = 1;
    } else if (strcmp(t, "StripAccents") == 0) {
        *strip = 1;
    } else if (strcmp(t, "BertNormalizer") == 0) {
        const json_t *l = json_object_get(norm, "lowercase");
        const json_t *s = json_object_get(norm, "strip_accents");
        if (json_is_boolean(l))
            *lower = json_is_true(l);
        if (json_is_boolean(s))
            *strip = json_is_true(s);
    } else if (strcmp(t, "Sequence") == 0) {
        size_t i;
        const json_t *el;
        json_array_foreach(json_object_get(norm, "normalizers"), i, el)
        {
            parse_normalizer(el, lower, strip);
        }
    }
}

/* tokenizer.chat_template from tokenizer_config.json's chat_template (a string, or a list of
   {name, template}) or chat_template.jinja. */
static inf_status write_chat_template(const struct inf__conv_json *j, struct inf_gguf_writer *w,
                                      struct inf_error *err)
{
    const json_t *ct = json_object_get(j->tok_cfg, "chat_template");
    inf_status rc = INF_OK;
    if (json_is_string(ct))
        return inf_gguf_writer_set_str(w, "tokenizer.chat_template", json_string_value(ct), err);
    if (json_is_array(ct)) {
        size_t i, n_names = 0;
        const json_t *el;
        const char *def = NULL;
        char **names = calloc(json_array_size(ct) + 1, sizeof(*names));
        if (!names)
            return inf_error_set(err, INF_ENOMEM, "out of memory");
        json_array_foreach(ct, i, el)
        {
            const char *name = json_string_value(json_object_get(el, "name"));
            const char *tpl = json_string_value(json_object_get(el, "template"));
            if (!name || !*name || !tpl)
                continue;
            if (strcmp(name, "default") == 0) {
                def = tpl;
                continue;
            }
            char *clean = strdup(name), key[320];
            if (!clean) {
                rc = inf_error_set(err, INF_ENOMEM, "out of memory");
                break;
            }
            for (char *p = clean; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                      (*p >= '0' && *p <= '9')))
                    *p = '_';
            snprintf(key, sizeof(key), "tokenizer.chat_template.%.200s", clean);
            bool dup = false;
            for (size_t k = 0; k < n_names; k++)
                dup |= strcmp(names[k], clean) == 0;
            if (dup) {
                free(clean);
                continue;
            }
            names[n_names++] = clean;
            rc = inf_gguf_writer_set_str(w, key, tpl, err);
            if (rc != INF_OK)
                break;
        }
        if (rc == INF_OK && n_names)
            rc = inf_gguf_writer_set_arr_str(w, "tokenizer.chat_templates",
                                             (const char *const *)names, n_names, err);
        if (rc == INF_OK && def)
            rc = inf_gguf_writer_set_str(w, "tokenizer.chat_template", def, err);
        for (size_t k = 0; k < n_names; k++)
            free(names[k]);
        free(names);
        return rc;
    }
    if (j->chat_jinja)
        return inf_gguf_writer_set_str(w, "tokenizer.chat_template", j->chat_jinja, err);
    return INF_OK;
}

/* Special ids, add_* flags, the chat template and the normalizer flags. */
static inf_status write_specials(struct inf__conv_json *j, int64_t n_tokens,
                                 struct inf_gguf_writer *w, struct inf_error *err)
{
    struct specials sp;
    inf_status rc = INF_OK;
    find_specials(j, n_tokens, &sp);
    for (int k = 0; k < sp.n_order && rc == INF_OK; k++)
        rc = inf_gguf_writer_set_u32(w, special_keys[sp.order[k]], (uint32_t)sp.id[sp.order[k]],
                                     err);
    static const char *const add_keys[3] = {"tokenizer.ggml.add_bos_token",
                                            "tokenizer.ggml.add_eos_token",
                                            "tokenizer.ggml.add_sep_token"};
    for (int k = 0; k < sp.n_add && rc == INF_OK; k++)
        rc = inf_gguf_writer_set_bool(w, add_keys[sp.add_order[k]], sp.add[sp.add_order[k]] != 0,
                                      err);
    if (rc == INF_OK)
        rc = write_chat_template(j, w, err);
    int lower = -1, strip = -1;
    parse_normalizer(json_object_get(j->tok, "normalizer"), &lower, &strip);
    if (rc == INF_OK && lower >= 0)
        rc = inf_gguf_writer_set_bool(w, "tokenizer.ggml.normalizer.lowercase", lower != 0, err);
    if (rc == INF_OK && strip >= 0)
        rc =
            inf_gguf_writer_set_bool(w, "tokenizer.ggml.normalizer.strip_accents", strip != 0, err);
    return rc;
}

/* The Unigram keys (T5Model.set_vocab, XLMRobertaModel): the space flags and the charsmap. */
static inf_status write_ugm_flags(struct inf_gguf_writer *w, bool prefix, bool remove_ws,
                                  const void *charsmap, size_t charsmap_len, struct inf_error *err)
{
    inf_status rc = inf_gguf_writer_set_bool(w, "tokenizer.ggml.add_space_prefix", prefix, err);
    if (rc == INF_OK)
        rc = inf_gguf_writer_set_bool(w, "tokenizer.ggml.remove_extra_whitespaces", remove_ws, err);
    if (rc == INF_OK && charsmap_len)
        rc = inf_gguf_writer_set_arr(w, "tokenizer.ggml.precompiled_charsmap", INF_GGUF_TYPE_UINT8,
                                     charsmap, charsmap_len, err);
    return rc;
}

/* The vocabulary of a tokenizer.model, scores as stored: model "llama" (SentencePiece BPE), or
   "t5" for a Unigram model as T5Model.set_vocab writes it (add_dummy_prefix,
   remove_extra_whitespaces and the precompiled charsmap of its normalizer spec). llama.cpp's
   Llama-family converters write "llama" whatever the model type; a Unigram model tokenized as
   BPE merges is not the model's tokenization, so "t5" is written for every architecture. */
static inf_status sp_vocab(struct inf__conv_json *j, struct inf_gguf_writer *w,
                           struct inf_error *err)
{
    struct vocab v = {0};
    struct sp_specs sp;
    inf_status rc = read_sp_model(j, &v, false, err);
    if (rc == INF_OK)
        rc = sp_read_specs(j, &sp, err);
    bool t5 = rc == INF_OK && sp.model_type == 1;
    if (t5) { /* again, without added_tokens_decoder */
        vocab_release(&v);
        rc = read_sp_model(j, &v, true, err);
    }
    if (rc == INF_OK)
        rc = write_scored_vocab(w, t5 ? "t5" : "llama", &v, err);
    if (rc == INF_OK && t5)
        rc = write_ugm_flags(w, sp.add_dummy_prefix, sp.remove_extra_whitespaces, sp.charsmap,
                             sp.charsmap_len, err);
    if (rc == INF_OK) {
        j->n_tokens = v.n;
        rc = write_specials(j, v.n, w, err);
    }
    /* Gemma2Model / Gemma3Model: no space prefix */
    if (rc == INF_OK && !t5 && j->arch && !strncmp(j->arch, "gemma", 5))
        rc = inf_gguf_writer_set_bool(w, "tokenizer.ggml.add_space_prefix", false, err);
    vocab_release(&v);
    return rc;
}

/* ---- Unigram tokenizer.json ------------------------------------------------------------------ */

/* Strict base64 (RFC 4648, padding optional); NULL when s is not base64. */
static uint8_t *base64_decode(const char *s, size_t n, size_t *out_len)
{
    uint8_t *out = malloc(n / 4 * 3 + 3);
    uint32_t acc = 0;
    size_t o = 0, k = 0, pad = 0;
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        int d = c >= 'A' && c <= 'Z'   ? c - 'A'
                : c >= 'a' && c <= 'z' ? c - 'a' + 26
                : c >= '0' && c <= '9' ? c - '0' + 52
                : c == '+'             ? 62
                : c == '/'             ? 63
                : c == '='             ? -2
                                       : -1;
        if (d == -1 || (pad && d != -2))
            goto bad;
        if (d == -2) {
            pad++;
            continue;
        }
        acc = acc << 6 | (uint32_t)d;
        if (++k == 4) {
            out[o++] = (uint8_t)(acc >> 16), out[o++] = (uint8_t)(acc >> 8),
            out[o++] = (uint8_t)acc;
            acc = 0, k = 0;
        }
    }
    if (k == 1 || pad > 2 || (pad && (k + pad) % 4))
        goto bad;
    if (k == 2)
        out[o++] = (uint8_t)(acc >> 4);
    else if (k == 3)
        out[o++] = (uint8_t)(acc >> 10), out[o++] = (uint8_t)(acc >> 2);
    *out_len = o;
    return out;
bad:
    free(out);
    return NULL;
}

/* The first normalizer of type `type` (at the top or in a Sequence), or NULL. */
static const json_t *find_normalizer(const json_t *norm, const char *type, int depth)
{
    const char *t = json_string_value(json_object_get(norm, "type"));
    if (!t || depth > 8)
        return NULL;
    if (strcmp(t, type) == 0)
        return norm;
    if (strcmp(t, "Sequence") == 0) {
        size_t i;
        const json_t *el, *found;
        json_array_foreach(json_object_get(norm, "normalizers"), i, el)
        {
            if ((found = find_normalizer(el, type, depth + 1)))
                return found;
        }
    }
    return NULL;
}

/* Whether the normalizer squeezes runs of spaces (Replace of the regex " {2,}"). */
static bool squeezes_spaces(const json_t *norm, int depth)
{
    const char *t = json_string_value(json_object_get(norm, "type"));
    if (!t || depth > 8)
        return false;
    if (strcmp(t, "Replace") == 0) {
        const char *re =
            json_string_value(json_object_get(json_object_get(norm, "pattern"), "Regex"));
        return re && strcmp(re, " {2,}") == 0;
    }
    if (strcmp(t, "Sequence") == 0) {
        size_t i;
        const json_t *el;
        json_array_foreach(json_object_get(norm, "normalizers"), i, el)
        {
            if (squeezes_spaces(el, depth + 1))
                return true;
        }
    }
    return false;
}

/* The Metaspace pre-tokenizer (at the top or in a Sequence), or NULL. */
static const json_t *find_metaspace(const json_t *pt)
{
    const char *t = json_string_value(json_object_get(pt, "type"));
    if (t && strcmp(t, "Metaspace") == 0)
        return pt;
    if (t && strcmp(t, "Sequence") == 0) {
        size_t i;
        const json_t *el;
        json_array_foreach(json_object_get(pt, "pretokenizers"), i, el)
        {
            const char *et = json_string_value(json_object_get(el, "type"));
            if (et && strcmp(et, "Metaspace") == 0)
                return el;
        }
    }
    return NULL;
}

/*
 * A Unigram tokenizer.json as XLMRobertaModel._xlmroberta_set_vocab writes it: model "t5", pre
 * "default", model.vocab's pieces and scores by id, the unknown token (model.unk_id) UNKNOWN,
 * added tokens CONTROL when special (or looking special) else USER_DEFINED, with byte_fallback
 * the <0xXX> pieces BYTE, ids up to config.json's vocab_size "[PAD<id>]" (UNUSED, -10000);
 * add_space_prefix from the Metaspace pre-tokenizer (prepend_scheme other than "never"),
 * remove_extra_whitespaces from tokenizer_config.json's clean_up_tokenization_spaces (what
 * llama.cpp reads) or, without it, the normalizer's squeezing of repeated spaces; the
 * Precompiled normalizer's charsmap.
 */
static inf_status ugm_vocab(struct inf__conv_json *j, struct inf_gguf_writer *w,
                            struct inf_error *err)
{
    const json_t *model = json_object_get(j->tok, "model");
    const json_t *pieces = json_object_get(model, "vocab");
    const json_t *added = json_object_get(j->tok, "added_tokens");
    const json_t *norm = json_object_get(j->tok, "normalizer");
    struct vocab v = {0};
    uint8_t *charsmap = NULL;
    size_t charsmap_len = 0, i;
    const json_t *el;
    int64_t max_id = -1, id;
    inf_status rc = INF_OK;

    if (!json_is_array(pieces) || json_array_size(pieces) == 0)
        return inf_error_set(err, INF_EFORMAT,
                             "tokenizer.json: the Unigram model.vocab is not a non-empty array");
    if (json_array_size(pieces) > INF__CONV_MAX_VOCAB)
        return inf_error_set(err, INF_ELIMIT, "tokenizer.json: more than %u Unigram pieces",
                             INF__CONV_MAX_VOCAB);
    if (added && !json_is_array(added))
        return inf_error_set(err, INF_EFORMAT, "tokenizer.json: added_tokens is not an array");
    json_array_foreach(pieces, i, el)
    {
        if (!json_is_array(el) || json_array_size(el) != 2 ||
            !json_is_string(json_array_get(el, 0)) || !json_is_number(json_array_get(el, 1)))
            return inf_error_set(err, INF_EFORMAT,
                                 "tokenizer.json: model.vocab[%zu] is not a [piece, score] pair",
                                 i);
        if (strlen(json_string_value(json_array_get(el, 0))) !=
            json_string_length(json_array_get(el, 0)))
            return inf_error_set(err, INF_EFORMAT,
                                 "tokenizer.json: model.vocab[%zu] holds a NUL character", i);
    }
    json_array_foreach(added, i, el)
    {
        const char *content = json_string_value(json_object_get(el, "content"));
        if (!content)
            return inf_error_set(err, INF_EFORMAT,
                                 "tokenizer.json: added_tokens[%zu] has no content", i);
        if ((rc = get_id(json_object_get(el, "id"), "added token", content, &id, err)) != INF_OK)
            return rc;
        max_id = id > max_id ? id : max_id;
    }
    v.n = (int64_t)json_array_size(pieces);
    if (max_id >= v.n)
        v.n = max_id + 1;
    if (j->n_vocab > v.n)
        v.n = j->n_vocab;
    v.text = calloc((size_t)v.n, sizeof(*v.text));
    v.type = calloc((size_t)v.n, sizeof(*v.type));
    v.score = calloc((size_t)v.n, sizeof(*v.score));
    v.added = calloc((size_t)v.n, 1);
    if (!v.text || !v.type || !v.score || !v.added)
        goto oom;
    json_array_foreach(pieces, i, el)
    {
        if (!(v.text[i] = strdup(json_string_value(json_array_get(el, 0)))))
            goto oom;
        v.score[i] = (float)json_number_value(json_array_get(el, 1));
        v.type[i] = INF__TT_NORMAL;
    }
    bool byte_fallback = json_is_true(json_object_get(model, "byte_fallback"));
    for (id = 0; byte_fallback && id < (int64_t)json_array_size(pieces); id++)
        if (is_byte_token(v.text[id]))
            v.type[id] = INF__TT_BYTE;
    json_array_foreach(added, i, el)
    {
        const char *content = json_string_value(json_object_get(el, "content"));
        id = json_integer_value(json_object_get(el, "id"));
        free(v.text[id]);
        if (!(v.text[id] = strdup(content)))
            goto oom;
        v.added[id] = 1;
        bool special = json_is_true(json_object_get(el, "special"));
        v.type[id] = special || looks_special(content) ? INF__TT_CONTROL : INF__TT_USER_DEFINED;
    }
    const json_t *unk = json_object_get(model, "unk_id");
    if (json_is_integer(unk) && json_integer_value(unk) >= 0 && json_integer_value(unk) < v.n)
        v.type[json_integer_value(unk)] = INF__TT_UNKNOWN;
    for (id = 0; id < v.n; id++) {
        if (v.text[id])
            continue;
        char pad[32];
        snprintf(pad, sizeof(pad), "[PAD%" PRId64 "]", id);
        if (!(v.text[id] = strdup(pad)))
            goto oom;
        v.type[id] = INF__TT_UNUSED;
        v.score[id] = -10000.0f;
    }

    const json_t *pc = find_normalizer(norm, "Precompiled", 0);
    if (pc) {
        const json_t *b64 = json_object_get(pc, "precompiled_charsmap");
        if (!json_is_string(b64) ||
            !(charsmap =
                  base64_decode(json_string_value(b64), json_string_length(b64), &charsmap_len))) {
            rc = inf_error_set(err, INF_EFORMAT,
                               "tokenizer.json: the Precompiled normalizer's "
                               "precompiled_charsmap is not base64");
            goto out;
        }
    }
    const json_t *ms = find_metaspace(json_object_get(j->tok, "pre_tokenizer"));
    const char *repl = json_string_value(json_object_get(ms, "replacement"));
    if (ms && repl && strcmp(repl, "\xe2\x96\x81") != 0) {
        rc = inf_error_set(err, INF_EUNSUPPORTED,
                           "tokenizer.json: Metaspace replacement '%.16s' (llama.cpp's Unigram "
                           "tokenizer writes spaces as U+2581)",
                           repl);
        goto out;
    }
    bool prefix = spm_space_prefix(j->tok);
    if (!prefix && ms) {
        const char *scheme = json_string_value(json_object_get(ms, "prepend_scheme"));
        prefix = scheme ? strcmp(scheme, "never") != 0
                        : json_is_true(json_object_get(ms, "add_prefix_space"));
    }
    const json_t *clean = json_object_get(j->tok_cfg, "clean_up_tokenization_spaces");
    bool remove_ws = json_is_boolean(clean) ? json_is_true(clean) : squeezes_spaces(norm, 0);

    rc = write_scored_vocab(w, "t5", &v, err);
    if (rc == INF_OK)
        rc = write_ugm_flags(w, prefix, remove_ws, charsmap, charsmap_len, err);
    if (rc == INF_OK && j->arch && !strcmp(j->arch, "bert")) { /* XLMRobertaModel */
        int64_t ttc = 1;
        const json_t *tv = json_object_get(j->config, "type_vocab_size");
        if (json_is_integer(tv) && json_integer_value(tv) >= 0 && json_integer_value(tv) <= 1 << 20)
            ttc = json_integer_value(tv);
        rc = inf_gguf_writer_set_u32(w, "tokenizer.ggml.token_type_count", (uint32_t)ttc, err);
    }
    if (rc == INF_OK) {
        j->n_tokens = v.n;
        rc = write_specials(j, v.n, w, err);
    }
    goto out;
oom:
    rc = inf_error_set(err, INF_ENOMEM, "out of memory");
out:
    free(charsmap);
    vocab_release(&v);
    return rc;
}

/* BERT's WordPiece vocabulary as llama.cpp's BertModel.set_vocab writes it: control tokens as
   they are, "##x" continuation pieces as "x", every other token with the U+2581 phantom space. */
static inf_status wpm_vocab(struct inf__conv_json *j, struct inf_gguf_writer *w,
                            struct inf_error *err)
{
    struct vocab v = {0};
    inf_status rc = read_tokens(j->tok, j->n_vocab, false, &v, err);
    for (int64_t i = 0; rc == INF_OK && i < v.n; i++) {
        if (v.type[i] == INF__TT_CONTROL)
            continue;
        const char *t = v.text[i];
        size_t n = strlen(t);
        char *nt = malloc(n + 4);
        if (!nt) {
            rc = inf_error_set(err, INF_ENOMEM, "out of memory");
            break;
        }
        if (n >= 2 && t[0] == '#' && t[1] == '#')
            memcpy(nt, t + 2, n - 1);
        else
            snprintf(nt, n + 4, "\xe2\x96\x81%s", t);
        free(v.text[i]);
        v.text[i] = nt;
    }
    int64_t ttc = 1;
    const json_t *tv = json_object_get(j->config, "type_vocab_size");
    if (json_is_integer(tv) && json_integer_value(tv) >= 0 && json_integer_value(tv) <= 1 << 20)
        ttc = json_integer_value(tv);
    if (rc == INF_OK)
        rc = inf_gguf_writer_set_u32(w, "tokenizer.ggml.token_type_count", (uint32_t)ttc, err);
    if (rc == INF_OK)
        rc = inf_gguf_writer_set_str(w, "tokenizer.ggml.model", "bert", err);
    if (rc == INF_OK)
        rc = inf_gguf_writer_set_str(w, "tokenizer.ggml.pre", "default", err);
    if (rc == INF_OK)
        rc = inf_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)v.text,
                                         (uint64_t)v.n, err);
    if (rc == INF_OK)
        rc = inf_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", INF_GGUF_TYPE_INT32, v.type,
                                     (uint64_t)v.n, err);
    if (rc == INF_OK) {
        j->n_tokens = v.n;
        rc = write_specials(j, v.n, w, err);
    }
    vocab_release(&v);
    return rc;
}

inf_status inf__conv_vocab(struct inf__conv_json *j, struct inf_gguf_writer *w,
                           struct inf_error *err)
{
    struct vocab v = {0};
    inf_status rc;
    const json_t *model = json_object_get(j->tok, "model");
    const char *mtype = json_string_value(json_object_get(model, "type"));

    if (j->sp_model) /* llama.cpp's converters try tokenizer.model first */
        return sp_vocab(j, w, err);
    if (!j->tok)
        return inf_error_set(err, INF_ENOTFOUND, "no tokenizer.json nor tokenizer.model");
    if (!mtype && json_is_array(json_object_get(model, "merges")))
        mtype = "BPE";
    if (!mtype)
        return inf_error_set(err, INF_EFORMAT, "tokenizer.json: model.type is missing");
    if (strcmp(mtype, "WordPiece") == 0)
        return wpm_vocab(j, w, err);
    if (strcmp(mtype, "Unigram") == 0)
        return ugm_vocab(j, w, err);
    if (strcmp(mtype, "BPE") != 0)
        return inf_error_set(err, INF_EUNSUPPORTED,
                             "tokenizer.json: model type '%.32s' is not supported (BPE, "
                             "WordPiece and Unigram are)",
                             mtype);
    const json_t *merges = json_object_get(model, "merges");
    if (!json_is_array(merges))
        return inf_error_set(err, INF_EFORMAT, "tokenizer.json: model.merges is not an array");
    bool spm = json_is_true(json_object_get(model, "byte_fallback"));
    const char *pre = "default";
    if (!spm) {
        rc = detect_pre(j->tok, &pre, err);
        if (rc != INF_OK)
            return rc;
    }
    rc = read_tokens(j->tok, j->n_vocab, spm, &v, err);
    if (rc == INF_OK && spm) {
        rc = spm_scores(j->tok, &v, err);
        const char *unk = json_string_value(json_object_get(model, "unk_token"));
        for (int64_t i = 0; rc == INF_OK && i < v.n; i++) {
            if (v.type[i] == INF__TT_UNUSED)
                continue;
            if (is_byte_token(v.text[i]) && !v.added[i])
                v.type[i] = INF__TT_BYTE;
            else if (unk && strcmp(v.text[i], unk) == 0)
                v.type[i] = INF__TT_UNKNOWN;
        }
    }
    if (rc != INF_OK)
        goto out;
    rc = inf_gguf_writer_set_str(w, "tokenizer.ggml.model", spm ? "llama" : "gpt2", err);
    if (rc == INF_OK)
        rc = inf_gguf_writer_set_str(w, "tokenizer.ggml.pre", pre, err);
    if (rc == INF_OK)
        rc = inf_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)v.text,
                                         (uint64_t)v.n, err);
    if (rc == INF_OK && spm)
        rc = inf_gguf_writer_set_arr(w, "tokenizer.ggml.scores", INF_GGUF_TYPE_FLOAT32, v.score,
                                     (uint64_t)v.n, err);
    if (rc == INF_OK)
        rc = inf_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", INF_GGUF_TYPE_INT32, v.type,
                                     (uint64_t)v.n, err);
    if (rc == INF_OK && spm)
        rc = inf_gguf_writer_set_bool(w, "tokenizer.ggml.add_space_prefix",
                                      spm_space_prefix(j->tok), err);
    if (rc == INF_OK && !spm)
        rc = write_merges(merges, w, err);
    if (rc != INF_OK)
        goto out;
    j->n_tokens = v.n;
    rc = write_specials(j, v.n, w, err);
out:
    vocab_release(&v);
    return rc;
}
