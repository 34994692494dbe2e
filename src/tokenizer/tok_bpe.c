/*
 * tok_bpe.c - byte-level BPE (tokenizer.ggml.model = "gpt2").
 *
 * The text (made valid UTF-8 the way llama.cpp does) is split into words by the
 * pre-tokenizer's regexes; each word's bytes are mapped to GPT-2's printable code points, and
 * adjacent pieces are merged by merge rank (lowest first, ties leftmost) until no adjacent
 * pair has a merge. Pieces are identified by their index in the tokenizer's string table, so
 * a merge lookup is one hash probe on a pair of integers. A queued pair whose pieces changed
 * is skipped when it comes up: O(n log n) per word.
 */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_internal.h"
#include "tokenizer/unicode.h"

struct sym {
    int32_t prev, next;
    int32_t id;        /* string-table index of the piece, -1 when not interned */
    uint32_t start, n; /* bytes of the encoded word; n == 0 once merged into its left */
};

struct bigram {
    int32_t rank;
    int32_t left, right;
    int32_t lid, rid; /* the pieces' ids when queued, to spot stale pairs */
    int32_t result;
};

static bool before(const struct bigram *a, const struct bigram *b)
{
    return a->rank < b->rank || (a->rank == b->rank && a->left < b->left);
}

#include "tokenizer/tok_heap.h"

static inf_status try_add(const struct inf_tokenizer *tok, const struct sym *syms, int32_t left,
                          int32_t right, struct heap *h)
{
    int64_t v;
    if (left < 0 || right < 0)
        return INF_OK;
    int32_t lid = syms[left].id, rid = syms[right].id;
    if (lid < 0 || rid < 0)
        return INF_OK;
    if (!inf__u64map_get(&tok->merges, ((uint64_t)(uint32_t)lid << 32) | (uint32_t)rid, &v))
        return INF_OK;
    struct bigram b = {(int32_t)(v >> 32), left, right, lid, rid, (int32_t)(uint32_t)v};
    return heap_push(h, b);
}

/* Scratch reused across the words of one call. */
struct work {
    char *enc;
    size_t enc_cap;
    struct sym *syms;
    size_t syms_cap;
    struct heap heap;
};

static inf_status emit_piece(const struct inf_tokenizer *tok, const struct sym *s, const char *enc,
                             struct inf_tokens *out)
{
    if (s->id >= 0 && (size_t)s->id < tok->n_tokens)
        return inf_tokens_push(out, s->id);
    /* not a token: llama.cpp looks up each byte of the piece on its own */
    for (uint32_t i = 0; i < s->n; i++) {
        unsigned char b = (unsigned char)enc[s->start + i];
        inf_token id =
            tok->byte_encode ? inf_tok_find(tok, (const char *)&b, 1) : tok->byte_token[b];
        if (id != INF_TOKEN_NULL && inf_tokens_push(out, id) != INF_OK)
            return INF_ENOMEM;
    }
    return INF_OK;
}

static bool all_newlines(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != '\n')
            return false;
    return true;
}

static inf_status encode_word(const struct inf_tokenizer *tok, const char *word, size_t wl,
                              struct work *w, struct inf_tokens *out)
{
    size_t enc_len = 0, n_syms = 0;

    if (!inf__grow(&w->enc, &w->enc_cap, 2 * wl + 1, 1, 64) ||
        !inf__grow(&w->syms, &w->syms_cap, wl + 1, sizeof(struct sym), 64))
        return INF_ENOMEM;
    if (tok->byte_encode) {
        for (size_t i = 0; i < wl; i++) {
            unsigned char b = (unsigned char)word[i];
            struct sym *s = &w->syms[n_syms++];
            s->start = (uint32_t)enc_len;
            s->n = tok->byte_enc_len[b];
            s->id = tok->byte_sym[b];
            memcpy(w->enc + enc_len, tok->byte_enc[b], s->n);
            enc_len += s->n;
        }
    } else {
        memcpy(w->enc, word, wl);
        enc_len = wl;
        for (size_t off = 0; off < wl;) {
            size_t cl = inf__utf8_len((unsigned char)word[off]);
            if (cl > wl - off)
                cl = wl - off;
            struct sym *s = &w->syms[n_syms++];
            s->start = (uint32_t)off;
            s->n = (uint32_t)cl;
            s->id = inf__strtab_find(&tok->strs, word + off, cl);
            off += cl;
        }
    }
    if (tok->ignore_merges || (tok->newline_words && all_newlines(word, wl))) {
        inf_token id = inf_tok_find(tok, w->enc, enc_len);
        if (id != INF_TOKEN_NULL)
            return inf_tokens_push(out, id);
    }
    for (size_t i = 0; i < n_syms; i++) {
        w->syms[i].prev = (int32_t)i - 1;
        w->syms[i].next = i + 1 < n_syms ? (int32_t)i + 1 : -1;
    }
    w->heap.n = 0;
    for (size_t i = 1; i < n_syms; i++)
        if (try_add(tok, w->syms, (int32_t)i - 1, (int32_t)i, &w->heap) != INF_OK)
            return INF_ENOMEM;
    while (w->heap.n) {
        struct bigram b = heap_pop(&w->heap);
        struct sym *l = &w->syms[b.left], *r = &w->syms[b.right];
        if (l->n == 0 || r->n == 0 || l->id != b.lid || r->id != b.rid)
            continue; /* stale */
        join_pair(w->syms, &b);
        l->id = b.result;
        if (try_add(tok, w->syms, l->prev, b.left, &w->heap) != INF_OK ||
            try_add(tok, w->syms, b.left, l->next, &w->heap) != INF_OK)
            return INF_ENOMEM;
    }
    for (int32_t i = n_syms ? 0 : -1; i != -1; i = w->syms[i].next)
        if (emit_piece(tok, &w->syms[i], w->enc, out) != INF_OK)
            return INF_ENOMEM;
    return INF_OK;
}

inf_status inf__bpe_encode(const struct inf_tokenizer *tok, const char *text, size_t len,
                           struct inf_tokens *out, struct inf_error *err)
{
    struct inf__spans words = {0};
    struct work w = {0};
    char *esc = NULL, *clean = NULL, *masked;
    inf_status st = INF_OK;

    if (tok->escape_whitespace) {
        /* spaces become U+2581 before anything else (3 bytes per input byte at most) */
        size_t n = 0;
        if (!(esc = malloc(3 * len + 1)))
            goto oom;
        for (size_t i = 0; i < len; i++) {
            if (text[i] == ' ') {
                memcpy(esc + n, "\xe2\x96\x81", 3);
                n += 3;
            } else {
                esc[n++] = text[i];
            }
        }
        text = esc;
        len = n;
    }
    if (!(clean = malloc(6 * len + 2)))
        goto oom;
    masked = clean + 3 * len + 1;
    size_t cl = inf__utf8_sanitize(text, len, clean, masked);
    st = inf__regex_split(&tok->regex, masked, cl, &words, err);
    if (st != INF_OK)
        goto cleanup;
    for (size_t i = 0; i < words.n; i++)
        if (encode_word(tok, clean + words.v[i].off, words.v[i].len, &w, out) != INF_OK)
            goto oom;
    goto cleanup;

oom:
    st = inf__tok_oom(err, len);
cleanup:
    free(esc);
    free(clean);
    inf__spans_release(&words);
    free(w.enc);
    free(w.syms);
    free(w.heap.v);
    return st;
}
