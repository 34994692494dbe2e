/*
 * tok_spm.c - SentencePiece-style BPE (tokenizer.ggml.model = "llama").
 *
 * Spaces become U+2581 (with one prepended when asked), the text is cut into UTF-8
 * characters, and adjacent pieces whose concatenation is a token are merged, highest token
 * score first (ties: leftmost), until no pair is a token. A piece left that is not a token is
 * written as byte tokens (<0xNN>). The queue holds candidate pairs; a pair whose pieces have
 * changed since it was queued is skipped when it comes up, so the work is O(n log n).
 */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_internal.h"
#include "tokenizer/unicode.h"

struct sym {
    int32_t prev, next;
    uint32_t start, n; /* bytes of the escaped text; n == 0 once merged into its left */
};

struct bigram {
    float score;
    int32_t left, right;
    uint32_t size;
};

/* a comes out before b: higher score, then the leftmost */
static bool before(const struct bigram *a, const struct bigram *b)
{
    return a->score > b->score || (a->score == b->score && a->left < b->left);
}

#include "tokenizer/tok_heap.h"

static inf_status try_add(const struct inf_tokenizer *tok, const char *text, const struct sym *syms,
                          int32_t left, int32_t right, struct heap *h)
{
    if (left < 0 || right < 0)
        return INF_OK;
    uint32_t size = syms[left].n + syms[right].n;
    inf_token id = inf_tok_find(tok, text + syms[left].start, size);
    if (id == INF_TOKEN_NULL)
        return INF_OK;
    struct bigram b = {tok->scores[id], left, right, size};
    return heap_push(h, b);
}

static inf_status emit(const struct inf_tokenizer *tok, const char *s, size_t n,
                       struct inf_tokens *out)
{
    inf_token id = inf_tok_find(tok, s, n);
    if (id != INF_TOKEN_NULL)
        return inf_tokens_push(out, id);
    /* byte fallback: <0xNN>, else the byte as a one-byte token, else unknown */
    for (size_t i = 0; i < n; i++) {
        inf_token b = tok->byte_token[(unsigned char)s[i]];
        if (b < 0)
            b = tok->info.unk;
        if (b >= 0 && inf_tokens_push(out, b) != INF_OK)
            return INF_ENOMEM;
    }
    return INF_OK;
}

/* Merge and emit syms[first..last) as one independent run (the chain is already linked). */
static inf_status merge_run(const struct inf_tokenizer *tok, const char *esc, struct sym *syms,
                            size_t first, size_t last, struct heap *h, struct inf_tokens *out)
{
    h->n = 0;
    for (size_t i = first + 1; i < last; i++)
        if (try_add(tok, esc, syms, (int32_t)i - 1, (int32_t)i, h) != INF_OK)
            return INF_ENOMEM;
    while (h->n) {
        struct bigram b = heap_pop(h);
        struct sym *l = &syms[b.left], *r = &syms[b.right];
        if (l->n == 0 || r->n == 0 || l->n + r->n != b.size)
            continue; /* stale: one side has merged since */
        join_pair(syms, &b);
        if (try_add(tok, esc, syms, l->prev, b.left, h) != INF_OK ||
            try_add(tok, esc, syms, b.left, l->next, h) != INF_OK)
            return INF_ENOMEM;
    }
    for (int32_t i = first < last ? (int32_t)first : -1; i != -1; i = syms[i].next)
        if (emit(tok, esc + syms[i].start, syms[i].n, out) != INF_OK)
            return INF_ENOMEM;
    return INF_OK;
}

static bool is_marker(const char *esc, const struct sym *s)
{
    return s->n == 3 && memcmp(esc + s->start, "\xe2\x96\x81", 3) == 0;
}

inf_status inf__spm_encode(const struct inf_tokenizer *tok, const char *text, size_t len,
                           bool space_prefix, struct inf_tokens *out, struct inf_error *err)
{
    static const char marker[3] = {(char)0xE2, (char)0x96, (char)0x81}; /* U+2581 */
    char *esc = NULL;
    struct sym *syms = NULL;
    struct heap h = {0};
    size_t n = 0, n_syms = 0;
    inf_status st = INF_OK;

    /* at most 3 bytes per input byte, plus the prefix; len <= INF_TOK_MAX_INPUT. A piece
     * per byte at worst: a truncated lead byte before U+2581 takes its first byte along,
     * leaving the other two as pieces of their own (as in llama.cpp). */
    esc = malloc(3 * len + 3);
    syms = malloc((3 * len + 3) * sizeof(*syms));
    if (!esc || !syms)
        goto oom;
    if (space_prefix) {
        memcpy(esc, marker, 3);
        n = 3;
    }
    for (size_t i = 0; i < len; i++) {
        if (text[i] == ' ') {
            memcpy(esc + n, marker, 3);
            n += 3;
        } else {
            esc[n++] = text[i];
        }
    }
    /* one piece per UTF-8 character (by lead byte; a truncated tail stays one piece) */
    for (size_t off = 0; off < n;) {
        size_t cl = inf__utf8_len((unsigned char)esc[off]);
        if (cl > n - off)
            cl = n - off;
        syms[n_syms].start = (uint32_t)off;
        syms[n_syms].n = (uint32_t)cl;
        off += cl;
        n_syms++;
    }
    /*
     * When no token has U+2581 after another character, no merge can join a character to a
     * following U+2581: the text splits there into runs merged independently, giving the same
     * tokens with small queues (this keeps long texts linear in practice).
     */
    for (size_t first = 0; first < n_syms;) {
        size_t last = first + 1;
        if (tok->spm_split_words)
            while (last < n_syms &&
                   !(is_marker(esc, &syms[last]) && !is_marker(esc, &syms[last - 1])))
                last++;
        else
            last = n_syms;
        for (size_t i = first; i < last; i++) {
            syms[i].prev = i == first ? -1 : (int32_t)i - 1;
            syms[i].next = i + 1 == last ? -1 : (int32_t)i + 1;
        }
        if (merge_run(tok, esc, syms, first, last, &h, out) != INF_OK)
            goto oom;
        first = last;
    }
    goto cleanup;

oom:
    st = inf__tok_oom(err, len);
cleanup:
    free(esc);
    free(syms);
    free(h.v);
    return st;
}
