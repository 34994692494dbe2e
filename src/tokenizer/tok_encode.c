/*
 * tok_encode.c - inf_tok_encode: split special tokens out of the text, run the vocabulary's
 * algorithm on the text between them, add BOS/EOS.
 *
 * src/tokenizer/ owns tokenization only: vocabularies (vocab.c, tok_gguf.c), text to tokens
 * (this file; SentencePiece tok_spm.c, byte-level BPE tok_bpe.c and pretok.c, WordPiece
 * tok_wpm.c, Unigram tok_ugm.c) and tokens back to text (tok_decode.c). Chat templates live in
 * src/template/.
 */
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "tokenizer/tok_internal.h"

void inf_tokens_init(struct inf_tokens *t)
{
    memset(t, 0, sizeof(*t));
}

void inf_tokens_release(struct inf_tokens *t)
{
    free(t->ids);
    memset(t, 0, sizeof(*t));
}

inf_status inf_tokens_push(struct inf_tokens *t, inf_token id)
{
    if (!inf__grow(&t->ids, &t->cap, t->n + 1, sizeof(*t->ids), 64))
        return INF_ENOMEM;
    t->ids[t->n++] = id;
    return INF_OK;
}

/* A piece of the input: raw text (token < 0) or a special token. */
struct frag {
    int32_t token;
    uint32_t off, len;
};

struct frags {
    struct frag *v;
    size_t n, cap;
};

static inf_status frags_push(struct frags *f, int32_t token, size_t off, size_t len)
{
    if (!inf__grow(&f->v, &f->cap, f->n + 1, sizeof(*f->v), 16))
        return INF_ENOMEM;
    f->v[f->n].token = token;
    f->v[f->n].off = (uint32_t)off;
    f->v[f->n].len = (uint32_t)len;
    f->n++;
    return INF_OK;
}

static bool is_c_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

/* Mark the trie nodes the text reaches: a special token occurs iff its end node is marked. */
static void mark_present(const struct inf_tokenizer *tok, const char *text, size_t len,
                         uint8_t *present)
{
    const unsigned char *s = (const unsigned char *)text;
    for (size_t p = 0; p < len; p++) {
        if (!(tok->special_first[s[p] >> 3] & (1u << (s[p] & 7))))
            continue;
        int64_t node = 0;
        for (size_t q = p; q < len; q++) {
            if (!inf__u64map_get(&tok->trie, ((uint64_t)node << 8) | s[q], &node))
                break;
            present[node] = 1;
        }
    }
}

/* Untrusted byte ranges of the text (sorted, disjoint): no control token is read from them. */
struct guard {
    const struct inf_text_span *v;
    size_t n;
};

/* Whether [off, off + len) shares a byte with an untrusted range. */
static bool guarded(const struct guard *g, size_t off, size_t len)
{
    size_t lo = 0, hi = g->n;
    while (lo < hi) { /* the first range ending after off */
        size_t mid = lo + (hi - lo) / 2;
        if (g->v[mid].off + g->v[mid].len <= off)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < g->n && g->v[lo].off < off + len;
}

/* Split raw fragment f around the occurrences of special token id (llama.cpp's
 * tokenizer_st_partition for one token and one fragment). A control or unknown token is not
 * matched where it overlaps an untrusted range: those bytes stay text. */
static inf_status split_frag(const struct inf_tokenizer *tok, const char *text, struct frag f,
                             int32_t id, const struct guard *g, struct frags *out)
{
    const char *tt = inf__strtab_str(&tok->strs, id);
    size_t tl = tok->strs.len[id], pos = f.off, end = (size_t)f.off + f.len, search = pos;
    uint16_t attr = tok->attr[id];
    bool guard = g && g->n && (attr & (INF__ATTR_CONTROL | INF__ATTR_UNKNOWN));
    const char *m;

    while (search < end && (m = memmem(text + search, end - search, tt, tl)) != NULL) {
        size_t at = (size_t)(m - text), left = at - pos;
        if (guard && guarded(g, at, tl)) {
            search = at + 1;
            continue;
        }
        if (attr & INF__ATTR_LSTRIP)
            while (left > 0 && is_c_space(text[pos + left - 1]))
                left--;
        if (left > 0 && frags_push(out, -1, pos, left) != INF_OK)
            return INF_ENOMEM;
        if (frags_push(out, id, at, tl) != INF_OK)
            return INF_ENOMEM;
        pos = at + tl;
        if ((attr & INF__ATTR_RSTRIP) && pos < end)
            while (pos < end && is_c_space(text[pos]))
                pos++;
        search = pos;
    }
    if (pos < end && frags_push(out, -1, pos, end - pos) != INF_OK)
        return INF_ENOMEM;
    return INF_OK;
}

static inf_status partition(const struct inf_tokenizer *tok, const char *text, size_t len,
                            bool parse_special, const struct guard *g, struct frags *out)
{
    struct frags tmp = {0};
    uint8_t *present = NULL;
    inf_status st = INF_OK;

    out->n = 0;
    if (len == 0)
        return INF_OK;
    if (frags_push(out, -1, 0, len) != INF_OK)
        return INF_ENOMEM;
    if (tok->n_special == 0)
        return INF_OK;
    present = calloc(tok->n_trie_nodes, 1);
    if (!present)
        return INF_ENOMEM;
    mark_present(tok, text, len, present);
    for (size_t k = 0; k < tok->n_special; k++) {
        int32_t id = tok->special[k];
        if (!parse_special && (tok->attr[id] & (INF__ATTR_CONTROL | INF__ATTR_UNKNOWN)))
            continue;
        if (!present[tok->special_node[k]])
            continue;
        tmp.n = 0;
        for (size_t i = 0; i < out->n && st == INF_OK; i++) {
            if (out->v[i].token >= 0)
                st = frags_push(&tmp, out->v[i].token, out->v[i].off, out->v[i].len);
            else
                st = split_frag(tok, text, out->v[i], id, g, &tmp);
        }
        if (st != INF_OK)
            break;
        struct frags t = *out;
        *out = tmp;
        tmp = t;
    }
    free(tmp.v);
    free(present);
    return st;
}

static inf_status push_special(struct inf_tokens *out, inf_token id)
{
    return id == INF_TOKEN_NULL ? INF_OK : inf_tokens_push(out, id);
}

static inf_status encode(const struct inf_tokenizer *tok, const char *text, size_t len,
                         unsigned flags, const struct guard *g, struct inf_tokens *out,
                         struct inf_error *err)
{
    const struct inf_tok_info *in = &tok->info;
    bool add_special = (flags & INF_TOK_ADD_SPECIAL) != 0;
    struct frags frags = {0};
    size_t n0 = out->n;
    inf_status st;

    if (len > INF_TOK_MAX_INPUT)
        return inf_error_set(err, INF_ELIMIT, "text of %zu bytes is too long to tokenize", len);
    if (len && !text)
        return inf_error_set(err, INF_EINVAL, "no text to tokenize");
    st = partition(tok, text, len, (flags & INF_TOK_PARSE_SPECIAL) != 0, g, &frags);
    if (st != INF_OK)
        goto oom;

    if (add_special && (in->type == INF_VOCAB_WPM || in->add_bos)) {
        if ((st = push_special(out, in->bos)) != INF_OK)
            goto oom;
    }
    /* SPM: a space goes before the text at the start and after every special token */
    bool prev_special = true;
    for (size_t i = 0; i < frags.n; i++) {
        const struct frag *f = &frags.v[i];
        if (f->token >= 0) {
            if ((st = inf_tokens_push(out, f->token)) != INF_OK)
                goto oom;
            prev_special = true;
            continue;
        }
        switch (in->type) {
        case INF_VOCAB_SPM:
            st = inf__spm_encode(tok, text + f->off, f->len, in->add_space_prefix && prev_special,
                                 out, err);
            break;
        case INF_VOCAB_BPE:
            st = inf__bpe_encode(tok, text + f->off, f->len, out, err);
            break;
        case INF_VOCAB_WPM:
            st = inf__wpm_encode(tok, text + f->off, f->len, out, err);
            break;
        case INF_VOCAB_UGM:
            st = inf__ugm_encode(tok, text + f->off, f->len, out, err);
            break;
        }
        if (st != INF_OK)
            goto fail;
        prev_special = false;
    }
    if (add_special) {
        if (in->type == INF_VOCAB_WPM)
            st = push_special(out, in->sep);
        else if (in->add_eos)
            st = push_special(out, in->eos);
        if (st != INF_OK)
            goto oom;
    }
    free(frags.v);
    return INF_OK;

oom:
    st = inf__tok_oom(err, len);
fail:
    free(frags.v);
    out->n = n0;
    return st;
}

inf_status inf__tok_oom(struct inf_error *err, size_t len)
{
    return inf_error_set(err, INF_ENOMEM, "out of memory tokenizing %zu bytes", len);
}

inf_status inf_tok_encode(const struct inf_tokenizer *tok, const char *text, size_t len,
                          unsigned flags, struct inf_tokens *out, struct inf_error *err)
{
    return encode(tok, text, len, flags, NULL, out, err);
}

inf_status inf_tok_encode_untrusted(const struct inf_tokenizer *tok, const char *text, size_t len,
                                    unsigned flags, const struct inf_text_span *untrusted,
                                    size_t n_untrusted, struct inf_tokens *out,
                                    struct inf_error *err)
{
    struct guard g = {untrusted, n_untrusted};
    if (n_untrusted && !untrusted)
        return inf_error_set(err, INF_EINVAL, "no untrusted ranges");
    for (size_t i = 0, prev_end = 0; i < n_untrusted; i++) {
        const struct inf_text_span *sp = &untrusted[i];
        if (sp->off < prev_end || sp->off > len || sp->len > len - sp->off)
            return inf_error_set(err, INF_EINVAL,
                                 "untrusted range %zu (%zu+%zu) is out of order or past the "
                                 "%zu bytes of text",
                                 i, sp->off, sp->len, len);
        prev_end = sp->off + sp->len;
    }
    return encode(tok, text, len, flags, &g, out, err);
}
