/*
 * vocab.c - building a tokenizer from a vocabulary description: token table, attributes,
 * special ids and their defaults, merge ranks, the special-token matcher, the piece cache.
 * The defaults and auto-detections follow llama.cpp's llama_vocab::load so that the same
 * GGUF file gives the same behaviour.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inferno/log.h"
#include "tokenizer/tok_internal.h"
#include "tokenizer/unicode.h"

void inf_vocab_desc_init(struct inf_vocab_desc *d)
{
    memset(d, 0, sizeof(*d));
    d->bos = d->eos = d->eot = d->eom = d->unk = INF_VOCAB_ID_DEFAULT;
    d->sep = d->pad = d->cls = d->mask = INF_VOCAB_ID_DEFAULT;
    d->add_bos = d->add_eos = d->add_sep = INF_VOCAB_FLAG_DEFAULT;
    d->add_space_prefix = d->remove_extra_whitespaces = INF_VOCAB_FLAG_DEFAULT;
    d->lowercase = d->strip_accents = INF_VOCAB_FLAG_DEFAULT;
}

void inf_tokenizer_free(struct inf_tokenizer *tok)
{
    if (!tok)
        return;
    inf__regex_set_release(&tok->regex);
    inf__strtab_release(&tok->strs);
    inf__u64map_release(&tok->merges);
    inf__u64map_release(&tok->trie);
    inf__ugm_release(&tok->ugm);
    free(tok->pre_name);
    free(tok->scores);
    free(tok->attr);
    free(tok->special);
    free(tok->special_node);
    free(tok->piece_blob);
    free(tok->piece_off);
    free(tok->piece_len);
    free(tok);
}

static size_t desc_len(const char *const *strs, const size_t *lens, size_t i)
{
    return lens ? lens[i] : (strs[i] ? strlen(strs[i]) : 0);
}

static uint16_t attr_of_type(int32_t type)
{
    switch (type) {
    case INF_TOKEN_TYPE_UNKNOWN:
        return INF__ATTR_UNKNOWN;
    case INF_TOKEN_TYPE_UNUSED:
        return INF__ATTR_UNUSED;
    case INF_TOKEN_TYPE_NORMAL:
        return INF__ATTR_NORMAL;
    case INF_TOKEN_TYPE_CONTROL:
        return INF__ATTR_CONTROL;
    case INF_TOKEN_TYPE_USER_DEFINED:
        return INF__ATTR_USER_DEFINED;
    case INF_TOKEN_TYPE_BYTE:
        return INF__ATTR_BYTE;
    default:
        return INF__ATTR_UNDEFINED;
    }
}

static inf_status load_tokens(struct inf_tokenizer *tok, const struct inf_vocab_desc *d,
                              struct inf_error *err)
{
    size_t n = d->n_tokens;
    tok->n_tokens = n;
    tok->scores = calloc(n ? n : 1, sizeof(*tok->scores));
    tok->attr = calloc(n ? n : 1, sizeof(*tok->attr));
    if (!tok->scores || !tok->attr ||
        inf__strtab_reserve(&tok->strs, n + d->n_merges / 4) != INF_OK)
        return inf_error_set(err, INF_ENOMEM, "out of memory loading %zu tokens", n);
    for (size_t i = 0; i < n; i++) {
        size_t len = desc_len(d->tokens, d->token_lens, i);
        const char *s = d->tokens[i];
        char empty[32];
        int32_t idx;
        if (len > INF_VOCAB_MAX_TOKEN_LEN)
            return inf_error_set(err, INF_EFORMAT, "token %zu is %zu bytes long (limit %u)", i, len,
                                 INF_VOCAB_MAX_TOKEN_LEN);
        if (len == 0 || !s) {
            /* llama.cpp renames empty tokens so that they never match anything */
            INF_LOG_WARN(INF__LOG_MODULE, "empty token at index %zu", i);
            len = (size_t)snprintf(empty, sizeof(empty), "[EMPTY_%zu]", i);
            s = empty;
        }
        if (inf__strtab_add(&tok->strs, s, len, true, &idx) != INF_OK)
            return inf_error_set(err, INF_ENOMEM, "out of memory loading %zu tokens", n);
        if (len > tok->max_token_len)
            tok->max_token_len = len;
        tok->scores[i] = d->scores ? d->scores[i] : 0.0f;
        tok->attr[i] = d->token_types ? attr_of_type(d->token_types[i]) : INF__ATTR_NORMAL;
    }
    return INF_OK;
}

static inf_status load_merges(struct inf_tokenizer *tok, const struct inf_vocab_desc *d,
                              struct inf_error *err)
{
    size_t kept = 0;
    char small[512];
    if (inf__u64map_reserve(&tok->merges, d->n_merges) != INF_OK)
        return inf_error_set(err, INF_ENOMEM, "out of memory loading merges");
    for (size_t i = 0; i < d->n_merges; i++) {
        size_t len = desc_len(d->merges, d->merge_lens, i);
        const char *s = d->merges[i];
        const char *sp;
        int32_t l, r, res;
        if (len > INF_VOCAB_MAX_TOKEN_LEN)
            return inf_error_set(err, INF_EFORMAT, "merge %zu is %zu bytes long (limit %u)", i, len,
                                 INF_VOCAB_MAX_TOKEN_LEN);
        /* "left right", split at the first space after the first byte (a left part may
         * itself be a space in non byte-level vocabularies) */
        sp = len > 1 ? memchr(s + 1, ' ', len - 1) : NULL;
        if (!sp)
            continue; /* llama.cpp records ("", "") here, which never matches */
        size_t ll = (size_t)(sp - s), rl = len - ll - 1;
        if (inf__strtab_intern(&tok->strs, s, ll, &l) != INF_OK ||
            inf__strtab_intern(&tok->strs, sp + 1, rl, &r) != INF_OK)
            return inf_error_set(err, INF_ENOMEM, "out of memory loading merges");
        /* the merged string: left and right side by side */
        char *cat = ll + rl <= sizeof(small) ? small : malloc(ll + rl);
        if (!cat)
            return inf_error_set(err, INF_ENOMEM, "out of memory loading merges");
        memcpy(cat, s, ll);
        memcpy(cat + ll, sp + 1, rl);
        inf_status st = inf__strtab_intern(&tok->strs, cat, ll + rl, &res);
        if (cat != small)
            free(cat);
        if (st != INF_OK)
            return inf_error_set(err, INF_ENOMEM, "out of memory loading merges");
        uint64_t key = ((uint64_t)(uint32_t)l << 32) | (uint32_t)r;
        size_t before = tok->merges.n;
        if (inf__u64map_put_first(&tok->merges, key, ((int64_t)i << 32) | (uint32_t)res) != INF_OK)
            return inf_error_set(err, INF_ENOMEM, "out of memory loading merges");
        kept += tok->merges.n > before;
    }
    tok->info.n_merges = kept;
    return INF_OK;
}

static inf_token find_text(const struct inf_tokenizer *tok, const char *s)
{
    int32_t i = inf__strtab_find(&tok->strs, s, strlen(s));
    return i >= 0 && (size_t)i < tok->n_tokens ? i : INF_TOKEN_NULL;
}

/* Apply a special id from the description over the model default; llama.cpp ignores (with
 * a warning) ids past the vocabulary and disables defaults past it. */
static inf_token pick_id(const struct inf_tokenizer *tok, const char *what, int32_t given,
                         inf_token def)
{
    if (def >= 0 && (size_t)def >= tok->n_tokens) {
        INF_LOG_WARN(INF__LOG_MODULE, "default %s id %d is out of range, disabling", what, def);
        def = INF_TOKEN_NULL;
    }
    if (given == INF_VOCAB_ID_NONE)
        return INF_TOKEN_NULL;
    if (given == INF_VOCAB_ID_DEFAULT)
        return def;
    if (given < 0 || (size_t)given >= tok->n_tokens) {
        INF_LOG_WARN(INF__LOG_MODULE, "bad %s id %d, using the default %d", what, given, def);
        return def;
    }
    return given;
}

/* Whether some token has U+2581 right after a character other than U+2581. */
static bool marker_inside_token(const struct inf_tokenizer *tok)
{
    for (size_t i = 0; i < tok->n_tokens; i++) {
        const char *s = inf__strtab_str(&tok->strs, (int32_t)i), *m;
        size_t len = tok->strs.len[i], off = 0;
        while (off + 3 <= len && (m = memmem(s + off, len - off, "\xe2\x96\x81", 3))) {
            size_t at = (size_t)(m - s);
            if (at > 0 && !(at >= 3 && memcmp(s + at - 3, "\xe2\x96\x81", 3) == 0))
                return true;
            off = at + 3;
        }
    }
    return false;
}

static bool flag_or(int v, bool def)
{
    return v == INF_VOCAB_FLAG_DEFAULT ? def : v != 0;
}

/* Token texts llama.cpp takes for end-of-turn, end-of-message and end of generation. */
static const char *const eot_texts[] = {"<|eot_id|>",
                                        "<|im_end|>",
                                        "<|end|>",
                                        "<end_of_turn>",
                                        "<|endoftext|>",
                                        "<|end_of_text|>",
                                        "<EOT>",
                                        "_<EOT>",
                                        "[EOT]",
                                        "<\xef\xbd\x9c"
                                        "end\xe2\x96\x81of\xe2\x96\x81sentence"
                                        "\xef\xbd\x9c>",
                                        "<end_of_utterance>",
                                        NULL};
static const char *const eom_texts[] = {"<|eom_id|>", NULL};
static const char *const eog_texts[] = {"<|eot_id|>",
                                        "<|im_end|>",
                                        "<|end|>",
                                        "<|return|>",
                                        "<|call|>",
                                        "<|flush|>",
                                        "<|calls|>",
                                        "<end_of_turn>",
                                        "<|endoftext|>",
                                        "</s>",
                                        "<|eom_id|>",
                                        "<EOT>",
                                        "_<EOT>",
                                        "[EOT]",
                                        "[EOS]",
                                        "<|end_of_text|>",
                                        "<end_of_utterance>",
                                        "<eos>",
                                        "<turn|>",
                                        "<|tool_response>",
                                        "<\xef\xbd\x9c"
                                        "end\xe2\x96\x81of\xe2\x96\x81sentence"
                                        "\xef\xbd\x9c>",
                                        "[e~[",
                                        NULL};

static void force_control(struct inf_tokenizer *tok, inf_token id)
{
    if (!(tok->attr[id] & INF__ATTR_CONTROL)) {
        INF_LOG_DEBUG(INF__LOG_MODULE, "control-looking token %d '%s' was not control-type", id,
                      inf__strtab_str(&tok->strs, id));
        tok->attr[id] |= INF__ATTR_CONTROL;
    }
}

/* The first text of list (in list order) that is a token, or INF_TOKEN_NULL. llama.cpp
 * takes whichever its hash map yields first; list order gives the same answer for the
 * vocabularies tested (<|eot_id|> over <|end_of_text|>, <|im_end|> over <|endoftext|>). */
static inf_token first_in(const struct inf_tokenizer *tok, const char *const *list)
{
    for (size_t i = 0; list[i]; i++) {
        inf_token id = find_text(tok, list[i]);
        if (id != INF_TOKEN_NULL)
            return id;
    }
    return INF_TOKEN_NULL;
}

/* EOT/EOM by text, the end-of-generation set, "unused" control tokens. */
static void detect_special(struct inf_tokenizer *tok, bool eot_given, bool eom_given)
{
    struct inf_tok_info *in = &tok->info;
    if (!eot_given && in->eot == INF_TOKEN_NULL && (in->eot = first_in(tok, eot_texts)) >= 0)
        force_control(tok, in->eot);
    if (!eom_given && in->eom == INF_TOKEN_NULL && (in->eom = first_in(tok, eom_texts)) >= 0)
        force_control(tok, in->eom);
    for (size_t i = 0; i < tok->n_tokens; i++) {
        if (!(tok->attr[i] & INF__ATTR_CONTROL))
            continue;
        if (memmem(inf__strtab_str(&tok->strs, (int32_t)i), tok->strs.len[i], "unused", 6))
            tok->attr[i] |= INF__ATTR_UNUSED;
    }
    for (size_t k = 0; eog_texts[k]; k++) {
        inf_token id = find_text(tok, eog_texts[k]);
        if (id != INF_TOKEN_NULL) {
            tok->attr[id] |= INF__ATTR_EOG;
            force_control(tok, id);
        }
    }
    if (in->eos != INF_TOKEN_NULL)
        tok->attr[in->eos] |= INF__ATTR_EOG;
    if (in->eot != INF_TOKEN_NULL)
        tok->attr[in->eot] |= INF__ATTR_EOG;
    if (in->eom != INF_TOKEN_NULL)
        tok->attr[in->eom] |= INF__ATTR_EOG;

    /* o200k_harmony / solar-open: "<|end|>" ends a message, not the generation */
    inf_token ret = find_text(tok, "<|return|>"), call = find_text(tok, "<|call|>");
    inf_token calls = find_text(tok, "<|calls|>"), flush = find_text(tok, "<|flush|>");
    inf_token end = find_text(tok, "<|end|>");
    bool callish = call != INF_TOKEN_NULL || calls != INF_TOKEN_NULL;
    if (end != INF_TOKEN_NULL && callish && (ret != INF_TOKEN_NULL || flush != INF_TOKEN_NULL)) {
        tok->attr[end] = INF__ATTR_USER_DEFINED;
    }
    /* Gemma 4 and PaddleOCR: "</s>" is an ordinary token where "<|tool_response>" exists */
    inf_token s_end = find_text(tok, "</s>"), tool = find_text(tok, "<|tool_response>");
    if (s_end != INF_TOKEN_NULL && tool != INF_TOKEN_NULL && (tok->attr[tool] & INF__ATTR_EOG))
        tok->attr[s_end] = INF__ATTR_NORMAL;
}

/* Per-model token attributes llama.cpp sets by name (the GGUF has no field for them). */
static void model_rules(struct inf_tokenizer *tok, const char *name)
{
    char lower[128];
    size_t n = 0;
    if (!name)
        return;
    for (; name[n] && n + 1 < sizeof(lower); n++)
        lower[n] = (char)((name[n] >= 'A' && name[n] <= 'Z') ? name[n] + 32 : name[n]);
    lower[n] = '\0';
    if (strstr(lower, "phi-3") || strstr(lower, "phi3")) {
        for (size_t i = 0; i < tok->n_special; i++)
            tok->attr[tok->special[i]] |= INF__ATTR_RSTRIP;
        static const char *const on[] = {"</s>", NULL};
        static const char *const off[] = {"<unk>", "<s>", "<|endoftext|>", NULL};
        for (size_t i = 0; on[i]; i++) {
            inf_token id = find_text(tok, on[i]);
            if (id != INF_TOKEN_NULL)
                tok->attr[id] |= INF__ATTR_RSTRIP;
        }
        for (size_t i = 0; off[i]; i++) {
            inf_token id = find_text(tok, off[i]);
            if (id != INF_TOKEN_NULL)
                tok->attr[id] &= (uint16_t)~INF__ATTR_RSTRIP;
        }
    } else if (strstr(lower, "modern-bert")) {
        inf_token id = find_text(tok, "[MASK]");
        if (id != INF_TOKEN_NULL)
            tok->attr[id] |= INF__ATTR_LSTRIP;
    }
}

static int cmp_special(const void *a, const void *b, void *ctx)
{
    const struct inf_tokenizer *tok = ctx;
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    uint32_t lx = tok->strs.len[x], ly = tok->strs.len[y];
    if (lx != ly)
        return lx > ly ? -1 : 1;
    return x < y ? -1 : x > y;
}

/* The special tokens (control, user-defined, unknown), longest first, and a trie of them. */
static inf_status build_special(struct inf_tokenizer *tok, struct inf_error *err)
{
    size_t n = 0;
    for (size_t i = 0; i < tok->n_tokens; i++)
        n += (tok->attr[i] & (INF__ATTR_CONTROL | INF__ATTR_USER_DEFINED | INF__ATTR_UNKNOWN)) != 0;
    tok->special = malloc((n ? n : 1) * sizeof(*tok->special));
    tok->special_node = malloc((n ? n : 1) * sizeof(*tok->special_node));
    if (!tok->special || !tok->special_node)
        return inf_error_set(err, INF_ENOMEM, "out of memory indexing special tokens");
    for (size_t i = 0; i < tok->n_tokens; i++)
        if (tok->attr[i] & (INF__ATTR_CONTROL | INF__ATTR_USER_DEFINED | INF__ATTR_UNKNOWN))
            tok->special[tok->n_special++] = (int32_t)i;
    qsort_r(tok->special, tok->n_special, sizeof(*tok->special), cmp_special, tok);

    tok->n_trie_nodes = 1; /* node 0 is the root */
    for (size_t k = 0; k < tok->n_special; k++) {
        int32_t id = tok->special[k];
        const unsigned char *s = (const unsigned char *)inf__strtab_str(&tok->strs, id);
        size_t len = tok->strs.len[id];
        int64_t node = 0;
        tok->special_first[s[0] >> 3] |= (uint8_t)(1u << (s[0] & 7));
        for (size_t j = 0; j < len; j++) {
            uint64_t key = ((uint64_t)node << 8) | s[j];
            int64_t child;
            if (!inf__u64map_get(&tok->trie, key, &child)) {
                child = (int64_t)tok->n_trie_nodes++;
                if (inf__u64map_put_first(&tok->trie, key, child) != INF_OK)
                    return inf_error_set(err, INF_ENOMEM, "out of memory indexing special tokens");
            }
            node = child;
        }
        tok->special_node[k] = (int32_t)node;
    }
    return INF_OK;
}

static inf_status setup_bpe(struct inf_tokenizer *tok, const struct inf_vocab_desc *d,
                            struct inf_error *err)
{
    const char *pre = d->pre && d->pre[0] ? d->pre : NULL;
    if (strcmp(d->model, "gemma4") == 0)
        pre = "gemma4"; /* the model implies its pre-tokenizer */
    if (!pre) {
        INF_LOG_WARN(INF__LOG_MODULE, "missing pre-tokenizer type, using 'default'");
        tok->pretok = inf__pretok_default();
        pre = "default";
    } else if (!(tok->pretok = inf__pretok_find(pre))) {
        INF_LOG_WARN(INF__LOG_MODULE, "unknown pre-tokenizer type '%s', using 'default'", pre);
        tok->pretok = inf__pretok_default();
        pre = "default";
    }
    tok->pre_name = strdup(pre);
    if (!tok->pre_name)
        return inf_error_set(err, INF_ENOMEM, "out of memory");
    tok->ignore_merges = tok->pretok->ignore_merges;
    tok->byte_encode = tok->pretok->byte_encode;
    tok->escape_whitespace = tok->pretok->escape_whitespace;
    tok->newline_words = tok->pretok->escape_whitespace;
    if (d->n_merges == 0 || !d->merges)
        return inf_error_set(err, INF_EFORMAT, "BPE vocabulary without merges");
    inf_status st = inf__regex_set_compile(&tok->regex, tok->pretok->regex, err);
    if (st != INF_OK)
        return st;
    return load_merges(tok, d, err);
}

static void setup_bytes(struct inf_tokenizer *tok)
{
    static const char hex[] = "0123456789ABCDEF";
    for (int b = 0; b < 256; b++) {
        char buf[8];
        size_t n = inf__utf8_encode(inf__byte_to_cp((uint8_t)b), buf);
        memcpy(tok->byte_enc[b], buf, n);
        tok->byte_enc_len[b] = (uint8_t)n;
        tok->byte_sym[b] = inf__strtab_find(&tok->strs, buf, n);
        int32_t id = -1;
        if (tok->info.type == INF_VOCAB_BPE && tok->byte_encode) {
            id = tok->byte_sym[b];
        } else {
            char hb[7] = {'<', '0', 'x', hex[b >> 4], hex[b & 15], '>', 0};
            id = inf__strtab_find(&tok->strs, hb, 6);
            if (id < 0 && tok->info.type == INF_VOCAB_SPM) {
                char one = (char)b;
                id = inf__strtab_find(&tok->strs, &one, 1);
            }
        }
        tok->byte_token[b] = id >= 0 && (size_t)id < tok->n_tokens ? id : -1;
    }
}

inf_status inf_tokenizer_new(const struct inf_vocab_desc *d, struct inf_tokenizer **out,
                             struct inf_error *err)
{
    struct inf_tokenizer *tok;
    struct inf_tok_info *in;
    inf_token def_bos, def_eos, def_unk, def_sep, def_pad, def_mask;
    bool def_add_bos = false, def_add_eos = false, def_add_sep = false, def_prefix = false;
    bool def_clean = false;
    inf_status st;

    *out = NULL;
    if (!d || !d->model)
        return inf_error_set(err, INF_EINVAL, "vocabulary without a tokenizer model");
    if (d->n_tokens == 0 || !d->tokens)
        return inf_error_set(err, INF_EFORMAT, "vocabulary without tokens");
    if (d->n_tokens > INF_VOCAB_MAX_TOKENS)
        return inf_error_set(err, INF_EFORMAT, "vocabulary of %zu tokens (limit %u)", d->n_tokens,
                             INF_VOCAB_MAX_TOKENS);
    if (d->n_merges > INF_VOCAB_MAX_MERGES)
        return inf_error_set(err, INF_EFORMAT, "%zu merges (limit %u)", d->n_merges,
                             INF_VOCAB_MAX_MERGES);

    tok = calloc(1, sizeof(*tok));
    if (!tok)
        return inf_error_set(err, INF_ENOMEM, "out of memory");
    in = &tok->info;
    snprintf(tok->model, sizeof(tok->model), "%s", d->model);
    in->model = tok->model;

    if (strcmp(d->model, "llama") == 0) {
        in->type = INF_VOCAB_SPM;
        def_bos = 1, def_eos = 2, def_unk = 0;
        def_sep = def_pad = def_mask = INF_TOKEN_NULL;
        def_prefix = true, def_add_bos = true;
    } else if (strcmp(d->model, "bert") == 0) {
        in->type = INF_VOCAB_WPM;
        def_bos = 101, def_eos = INF_TOKEN_NULL, def_unk = 100;
        def_sep = 102, def_pad = 0, def_mask = 103;
        def_add_bos = true, def_add_sep = true, def_clean = true;
    } else if (strcmp(d->model, "gpt2") == 0) {
        in->type = INF_VOCAB_BPE;
        def_bos = 11, def_eos = 11;
        def_unk = def_sep = def_pad = def_mask = INF_TOKEN_NULL;
    } else if (strcmp(d->model, "gemma4") == 0) {
        in->type = INF_VOCAB_BPE;
        def_bos = def_eos = def_unk = def_sep = def_pad = def_mask = INF_TOKEN_NULL;
    } else if (strcmp(d->model, "t5") == 0) {
        in->type = INF_VOCAB_UGM;
        def_bos = def_sep = def_mask = INF_TOKEN_NULL;
        def_eos = 1, def_unk = 2, def_pad = 0;
        def_add_eos = true;
    } else {
        st = inf_error_set(err, INF_EUNSUPPORTED, "unsupported tokenizer model '%s'", d->model);
        goto fail;
    }

    st = load_tokens(tok, d, err);
    if (st != INF_OK)
        goto fail;
    if (in->type == INF_VOCAB_BPE) {
        st = setup_bpe(tok, d, err);
        if (st != INF_OK)
            goto fail;
        def_clean = tok->pretok->clean_spaces != 0;
        if (tok->pretok->add_bos >= 0)
            def_add_bos = tok->pretok->add_bos != 0;
        if (tok->pretok->no_bos_token)
            def_bos = INF_TOKEN_NULL;
    } else {
        tok->pre_name = strdup("default");
        if (!tok->pre_name) {
            st = inf_error_set(err, INF_ENOMEM, "out of memory");
            goto fail;
        }
    }
    in->pre = tok->pre_name;
    in->n_tokens = tok->n_tokens;

    in->bos = pick_id(tok, "bos", d->bos, def_bos);
    /* BERT's BOS is its [CLS]; llama.cpp relies on the default id 101, so cls_token_id only
     * fills in where that default does not exist */
    if (in->type == INF_VOCAB_WPM && in->bos == INF_TOKEN_NULL && d->bos == INF_VOCAB_ID_DEFAULT &&
        d->cls >= 0 && (size_t)d->cls < tok->n_tokens)
        in->bos = d->cls;
    in->eos = pick_id(tok, "eos", d->eos, def_eos);
    in->eot = pick_id(tok, "eot", d->eot, INF_TOKEN_NULL);
    in->eom = pick_id(tok, "eom", d->eom, INF_TOKEN_NULL);
    in->unk = pick_id(tok, "unk", d->unk, def_unk);
    in->sep = pick_id(tok, "sep", d->sep, def_sep);
    in->pad = pick_id(tok, "pad", d->pad, def_pad);
    in->mask = pick_id(tok, "mask", d->mask, def_mask);

    in->add_bos = flag_or(d->add_bos, def_add_bos);
    if (in->type == INF_VOCAB_BPE && tok->pretok->add_bos == 2)
        in->add_bos = true; /* llama.cpp overrides Gemma 4's add_bos_token = false */
    in->add_eos = flag_or(d->add_eos, def_add_eos);
    in->add_sep = flag_or(d->add_sep, def_add_sep);
    in->add_space_prefix = flag_or(d->add_space_prefix, def_prefix);
    in->clean_spaces = def_clean;
    tok->remove_extra_ws = flag_or(d->remove_extra_whitespaces, false);
    tok->lowercase = flag_or(d->lowercase, true);
    tok->strip_accents = flag_or(d->strip_accents, tok->lowercase);

    if (in->type == INF_VOCAB_SPM)
        tok->spm_split_words = !marker_inside_token(tok);
    detect_special(tok, d->eot >= 0, d->eom >= 0);
    if (in->type == INF_VOCAB_UGM && (st = inf__ugm_setup(tok, d, err)) != INF_OK)
        goto fail;
    st = build_special(tok, err);
    if (st != INF_OK)
        goto fail;
    model_rules(tok, d->name);
    setup_bytes(tok);

    st = inf__build_pieces(tok, err);
    if (st != INF_OK)
        goto fail;

    /* the newline token, for callers that need one (llama.cpp's linefeed_id) */
    in->nl = INF_TOKEN_NULL;
    if (in->type == INF_VOCAB_SPM) {
        in->nl = tok->byte_token['\n'] >= 0 ? tok->byte_token['\n'] : in->pad;
    } else if (in->type == INF_VOCAB_WPM) {
        in->nl = in->pad;
    } else {
        struct inf_tokens t = {0};
        if (inf_tok_encode(tok, "\n", 1, 0, &t, NULL) == INF_OK && t.n > 0)
            in->nl = t.ids[0];
        else
            in->nl = in->pad;
        inf_tokens_release(&t);
    }
    *out = tok;
    return INF_OK;

fail:
    inf_tokenizer_free(tok);
    return st;
}

/* ---- accessors -------------------------------------------------------------------------- */

const struct inf_tok_info *inf_tok_info(const struct inf_tokenizer *tok)
{
    return &tok->info;
}

const char *inf_tok_text(const struct inf_tokenizer *tok, inf_token id, size_t *len)
{
    if (id < 0 || (size_t)id >= tok->n_tokens) {
        if (len)
            *len = 0;
        return NULL;
    }
    if (len)
        *len = tok->strs.len[id];
    return inf__strtab_str(&tok->strs, id);
}

enum inf_token_type inf_tok_type(const struct inf_tokenizer *tok, inf_token id)
{
    if (id < 0 || (size_t)id >= tok->n_tokens)
        return INF_TOKEN_TYPE_UNDEFINED;
    /* the first attribute the token has, in this order, gives its type */
    static const struct {
        uint16_t attr;
        enum inf_token_type type;
    } order[] = {
        {INF__ATTR_CONTROL, INF_TOKEN_TYPE_CONTROL},
        {INF__ATTR_USER_DEFINED, INF_TOKEN_TYPE_USER_DEFINED},
        {INF__ATTR_UNKNOWN, INF_TOKEN_TYPE_UNKNOWN},
        {INF__ATTR_BYTE, INF_TOKEN_TYPE_BYTE},
        {INF__ATTR_UNUSED, INF_TOKEN_TYPE_UNUSED},
        {INF__ATTR_NORMAL, INF_TOKEN_TYPE_NORMAL},
    };
    for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++)
        if (tok->attr[id] & order[i].attr)
            return order[i].type;
    return INF_TOKEN_TYPE_UNDEFINED;
}

float inf_tok_score(const struct inf_tokenizer *tok, inf_token id)
{
    return id >= 0 && (size_t)id < tok->n_tokens ? tok->scores[id] : 0.0f;
}

inf_token inf_tok_find(const struct inf_tokenizer *tok, const char *text, size_t len)
{
    int32_t i = inf__strtab_find(&tok->strs, text, len);
    return i >= 0 && (size_t)i < tok->n_tokens ? i : INF_TOKEN_NULL;
}

bool inf_tok_is_eog(const struct inf_tokenizer *tok, inf_token id)
{
    return id >= 0 && (size_t)id < tok->n_tokens && (tok->attr[id] & INF__ATTR_EOG);
}

bool inf_tok_is_control(const struct inf_tokenizer *tok, inf_token id)
{
    return id >= 0 && (size_t)id < tok->n_tokens &&
           (tok->attr[id] & (INF__ATTR_CONTROL | INF__ATTR_UNKNOWN));
}
