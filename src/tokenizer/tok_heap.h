/*
 * tokenizer/tok_heap.h - the merge scaffolding that byte-level BPE (tok_bpe.c) and
 * SentencePiece (tok_spm.c) share: a binary heap of candidate pairs, and the joining of a pair
 * of adjacent pieces in the doubly linked symbol list.
 *
 * The two differ in what a pair carries and which comes first (merge rank, or token score), so
 * this header is included by each after it has defined `struct bigram` (with `left` and `right`
 * symbol indices), `struct sym` (with `prev`, `next` and the byte count `n`) and `before(a, b)`
 * (a pops before b). The functions are static and compiled into each tokenizer, with no
 * indirect call in the merge loop.
 */
#ifndef INFERNO_TOKENIZER_TOK_HEAP_H
#define INFERNO_TOKENIZER_TOK_HEAP_H

#include "core/buf.h"
#include "tokenizer/tok_internal.h"

struct heap {
    struct bigram *v;
    size_t n, cap;
};

static inf_status heap_push(struct heap *h, struct bigram b)
{
    if (!inf__grow(&h->v, &h->cap, h->n + 1, sizeof(*h->v), 64))
        return INF_ENOMEM;
    size_t i = h->n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!before(&b, &h->v[p]))
            break;
        h->v[i] = h->v[p];
        i = p;
    }
    h->v[i] = b;
    return INF_OK;
}

static struct bigram heap_pop(struct heap *h)
{
    struct bigram top = h->v[0], last = h->v[--h->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n)
            break;
        if (c + 1 < h->n && before(&h->v[c + 1], &h->v[c]))
            c++;
        if (!before(&h->v[c], &last))
            break;
        h->v[i] = h->v[c];
        i = c;
    }
    if (h->n)
        h->v[i] = last;
    return top;
}

/* Merge the pair b into its left piece: the right one is emptied and unlinked. */
static void join_pair(struct sym *syms, const struct bigram *b)
{
    struct sym *l = &syms[b->left], *r = &syms[b->right];
    l->n += r->n;
    r->n = 0;
    l->next = r->next;
    if (r->next >= 0)
        syms[r->next].prev = b->left;
}

#endif
