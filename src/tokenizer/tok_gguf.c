/*
 * tok_gguf.c - tokenizers from the tokenizer.ggml.* metadata of a GGUF file, through the GGUF
 * reader (inferno/gguf.h), which has already checked every count and length. The keys and
 * their defaults are llama.cpp's (llama-vocab.cpp, llama-arch.cpp).
 */
#include <stdlib.h>
#include <string.h>

#include "inferno/gguf.h"
#include "inferno/log.h"
#include "tokenizer/tok_internal.h"

/* A string value as a NUL-terminated string (borrowed from g), or NULL when absent. */
static const char *get_str(const struct inf_gguf *g, const char *key)
{
    const char *s = NULL;
    return inf_gguf_get_str(g, key, &s, NULL, NULL) == INF_OK ? s : NULL;
}

static int get_flag(const struct inf_gguf *g, const char *key)
{
    bool v;
    return inf_gguf_get_bool(g, key, &v, NULL) == INF_OK ? v : INF_VOCAB_FLAG_DEFAULT;
}

/* A special token id; absent, mistyped or out-of-range ids keep the model's default. */
static int32_t get_id(const struct inf_gguf *g, const char *key, size_t n_tokens)
{
    const struct inf_gguf_kv *kv = inf_gguf_find_kv(g, key);
    int64_t v;
    if (!kv)
        return INF_VOCAB_ID_DEFAULT;
    if (inf_gguf_value_as_i64(&kv->value, &v) != INF_OK || v < 0 || (uint64_t)v >= n_tokens) {
        INF_LOG_WARN(INF__LOG_MODULE, "bad special token '%s', using the default", key);
        return INF_VOCAB_ID_DEFAULT;
    }
    return (int32_t)v;
}

/* Pointer and length arrays for a string array (the desc's layout). */
static inf_status split_strings(const struct inf_gguf_array *a, const char ***strs, size_t **lens)
{
    const struct inf_gguf_str *s = a->data;
    size_t n = (size_t)a->n;
    *strs = malloc((n ? n : 1) * sizeof(**strs));
    *lens = malloc((n ? n : 1) * sizeof(**lens));
    if (!*strs || !*lens)
        return INF_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        (*strs)[i] = s[i].data;
        (*lens)[i] = (size_t)s[i].len;
    }
    return INF_OK;
}

inf_status inf_tokenizer_from_gguf(const struct inf_gguf *g, struct inf_tokenizer **out,
                                   struct inf_error *err)
{
    struct inf_vocab_desc d;
    const struct inf_gguf_array *tokens, *arr;
    const char **tok_strs = NULL, **merge_strs = NULL;
    size_t *tok_lens = NULL, *merge_lens = NULL;
    float *iscores = NULL;
    inf_status st;

    *out = NULL;
    inf_vocab_desc_init(&d);
    d.model = get_str(g, "tokenizer.ggml.model");
    if (!d.model)
        return inf_error_set(err, INF_EFORMAT, "no tokenizer (tokenizer.ggml.model)");
    d.pre = get_str(g, "tokenizer.ggml.pre");
    d.name = get_str(g, "general.name");
    st = inf_gguf_get_arr(g, "tokenizer.ggml.tokens", INF_GGUF_TYPE_STRING, &tokens, err);
    if (st != INF_OK)
        return st;
    if (tokens->n > INF_VOCAB_MAX_TOKENS)
        return inf_error_set(err, INF_EFORMAT, "%llu tokens (limit %u)",
                             (unsigned long long)tokens->n, INF_VOCAB_MAX_TOKENS);
    if (split_strings(tokens, &tok_strs, &tok_lens) != INF_OK)
        goto oom;
    d.n_tokens = (size_t)tokens->n;
    d.tokens = tok_strs;
    d.token_lens = tok_lens;

    if (inf_gguf_get_arr(g, "tokenizer.ggml.scores", INF_GGUF_TYPE_COUNT, &arr, NULL) == INF_OK) {
        if (arr->type != INF_GGUF_TYPE_FLOAT32 && arr->type != INF_GGUF_TYPE_INT32) {
            st = inf_error_set(err, INF_EFORMAT, "tokenizer.ggml.scores is an array of %s",
                               inf_gguf_type_name(arr->type));
            goto cleanup;
        }
        if (arr->n < d.n_tokens) {
            st = inf_error_set(err, INF_EFORMAT, "%llu scores for %zu tokens",
                               (unsigned long long)arr->n, d.n_tokens);
            goto cleanup;
        }
        if (arr->type == INF_GGUF_TYPE_FLOAT32) {
            d.scores = arr->data;
        } else {
            const int32_t *is = arr->data;
            if (!(iscores = malloc(d.n_tokens * sizeof(*iscores))))
                goto oom;
            for (size_t i = 0; i < d.n_tokens; i++)
                iscores[i] = (float)is[i];
            d.scores = iscores;
        }
    }
    if (inf_gguf_get_arr(g, "tokenizer.ggml.token_type", INF_GGUF_TYPE_COUNT, &arr, NULL) ==
        INF_OK) {
        if (arr->type != INF_GGUF_TYPE_INT32 || arr->n < d.n_tokens) {
            st = inf_error_set(err, INF_EFORMAT,
                               "tokenizer.ggml.token_type: %llu %s for %zu "
                               "tokens",
                               (unsigned long long)arr->n, inf_gguf_type_name(arr->type),
                               d.n_tokens);
            goto cleanup;
        }
        d.token_types = arr->data;
    }
    if (inf_gguf_get_arr(g, "tokenizer.ggml.merges", INF_GGUF_TYPE_COUNT, &arr, NULL) == INF_OK) {
        if (arr->type != INF_GGUF_TYPE_STRING) {
            st = inf_error_set(err, INF_EFORMAT, "tokenizer.ggml.merges is an array of %s",
                               inf_gguf_type_name(arr->type));
            goto cleanup;
        }
        if (arr->n > INF_VOCAB_MAX_MERGES) {
            st = inf_error_set(err, INF_EFORMAT, "%llu merges (limit %u)",
                               (unsigned long long)arr->n, INF_VOCAB_MAX_MERGES);
            goto cleanup;
        }
        if (split_strings(arr, &merge_strs, &merge_lens) != INF_OK)
            goto oom;
        d.n_merges = (size_t)arr->n;
        d.merges = merge_strs;
        d.merge_lens = merge_lens;
    }
    d.bos = get_id(g, "tokenizer.ggml.bos_token_id", d.n_tokens);
    d.eos = get_id(g, "tokenizer.ggml.eos_token_id", d.n_tokens);
    d.eot = get_id(g, "tokenizer.ggml.eot_token_id", d.n_tokens);
    d.eom = get_id(g, "tokenizer.ggml.eom_token_id", d.n_tokens);
    d.unk = get_id(g, "tokenizer.ggml.unknown_token_id", d.n_tokens);
    d.sep = get_id(g, "tokenizer.ggml.seperator_token_id", d.n_tokens); /* sic */
    d.pad = get_id(g, "tokenizer.ggml.padding_token_id", d.n_tokens);
    d.cls = get_id(g, "tokenizer.ggml.cls_token_id", d.n_tokens);
    d.mask = get_id(g, "tokenizer.ggml.mask_token_id", d.n_tokens);
    d.add_bos = get_flag(g, "tokenizer.ggml.add_bos_token");
    d.add_eos = get_flag(g, "tokenizer.ggml.add_eos_token");
    d.add_sep = get_flag(g, "tokenizer.ggml.add_sep_token");
    d.add_space_prefix = get_flag(g, "tokenizer.ggml.add_space_prefix");
    d.remove_extra_whitespaces = get_flag(g, "tokenizer.ggml.remove_extra_whitespaces");
    d.lowercase = get_flag(g, "tokenizer.ggml.normalizer.lowercase");
    d.strip_accents = get_flag(g, "tokenizer.ggml.normalizer.strip_accents");
    const struct inf_gguf_kv *pc = inf_gguf_find_kv(g, "tokenizer.ggml.precompiled_charsmap");
    if (pc) {
        if (pc->value.type != INF_GGUF_TYPE_ARRAY || (pc->value.arr.type != INF_GGUF_TYPE_UINT8 &&
                                                      pc->value.arr.type != INF_GGUF_TYPE_INT8)) {
            st = inf_error_set(err, INF_EFORMAT,
                               "tokenizer.ggml.precompiled_charsmap is not an array of bytes");
            goto cleanup;
        }
        arr = &pc->value.arr;
        d.precompiled_charsmap = arr->data;
        d.precompiled_charsmap_len = (size_t)arr->n;
    }

    st = inf_tokenizer_new(&d, out, err);
    goto cleanup;
oom:
    st = inf_error_set(err, INF_ENOMEM, "out of memory reading the vocabulary");
cleanup:
    free(tok_strs);
    free(tok_lens);
    free(merge_strs);
    free(merge_lens);
    free(iscores);
    return st;
}

inf_status inf_tokenizer_load_gguf(const char *path, struct inf_tokenizer **out,
                                   struct inf_error *err)
{
    struct inf_gguf *g = NULL;
    inf_status st;

    *out = NULL;
    st = inf_gguf_open_file(path, &g, err); /* its errors name the file */
    if (st != INF_OK)
        return st;
    st = inf_tokenizer_from_gguf(g, out, err);
    if (st != INF_OK)
        inf_error_prefix(err, "'%s'", path);
    inf_gguf_free(g);
    return st;
}
