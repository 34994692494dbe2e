/*
 * grammar/matcher.c - the vocabulary trie and the matcher: which tokens a grammar allows next.
 *
 * The parser state is a set of stacks. A stack is a chain of interned nodes (position in
 * grammar->elems, parent node); node 0 is the empty stack, which means "the grammar may end
 * here". After closure every stack's top is a byte-set element (a leaf), so a state is a sorted
 * set of leaf nodes, itself interned to a small integer. Interning makes transitions
 * memoizable: step(state, byte) -> state is computed once and then looked up.
 *
 * A mask is a walk over the vocabulary trie, laid out in depth-first order so that a subtree
 * the grammar rejects is skipped by one jump; the state at each depth comes from the memoized
 * transitions, and the finished mask is cached per state (a string body or a number loops back
 * to the same state, so most steps are a copy). A subtree whose every path the state takes is
 * accepted at once: bytes of one loop (rinfo.u), or text, any UTF-8 characters (u8_run). Long
 * counted bounds are masked as the bound of the longest token (canon_state).
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/clock.h"
#include "grammar/grammar_internal.h"

#define SHARED_MAX 128
#define CLEAN_MAX  16   /* text sets per vocabulary */
#define ESC_DIRECT 4096 /* escapes of a cut state's part past which the state is cut lower ... */
/* ... or when there are more than ESC_FEW and the tokens below them are more than
   1/ESC_DIRECT_SHARE of the vocabulary (add_state) */
#define ESC_DIRECT_SHARE 8
#define ESC_FEW          64

/* ---- the vocabulary trie --------------------------------------------------------------------- */

/* Byte buckets: a node's subtree summarized as the buckets its bytes fall in (16 bits, read
   with the node) against the buckets a state takes whole or not at all; only a node in a
   bucket the state takes in part needs its full byte set (sub) read. 0..11 ASCII (the
   controls, the quote, the backslash, digits and letters apart), 12..15 the rest. */
#define BUCKET_HI 0xF000u
static const uint8_t bucket_lo[16] = {0x00, 0x20, 0x22, 0x23, 0x30, 0x3A, 0x41, 0x5B,
                                      0x5C, 0x5D, 0x61, 0x7B, 0x80, 0xC0, 0xE0, 0xF0};

static inline unsigned bucket_of(unsigned b)
{
    unsigned j = 15;
    while (b < bucket_lo[j])
        j--;
    return j;
}

/* For byte set u: the buckets wholly in it (low 16 bits) and those wholly out (high 16). */
static uint32_t bucket_cover(const struct inf__byteset *u)
{
    uint32_t full = 0, none = 0;
    for (unsigned j = 0; j < 16; j++) {
        unsigned hi = j == 15 ? 256 : bucket_lo[j + 1], in = 0;
        for (unsigned b = bucket_lo[j]; b < hi; b++)
            in += inf__byteset_has(u, b);
        if (in == hi - bucket_lo[j])
            full |= 1u << j;
        else if (in == 0)
            none |= 1u << j;
    }
    return full | none << 16;
}

/* A trie node, as walk reads it: one record. */
struct tnode {
    uint32_t next; /* the first node after this node's subtree */
    uint32_t tf;   /* tokens ending here: toks[tf .. next record's tf); the subtree's: toks[tf ..
                      nodes[next].tf) */
    uint16_t sig;  /* the buckets of the bytes on the paths into the subtree */
    uint16_t depth, height; /* bytes from the root; from the parent to the deepest node below */
    uint8_t byte;           /* the byte leading into the node (root: 0) */
    uint8_t u8ok; /* 1: every path from the node's byte down is UTF-8 (a prefix of it) when it
                     starts at a character boundary */
};

struct inf_grammar_vocab {
    const struct inf_tokenizer *tok;
    struct tnode *nodes; /* [n_nodes + 1] in depth-first order; the last only holds tf, the
                            token count */
    int32_t n_vocab;
    uint32_t n_nodes;
    struct inf__byteset *sub; /* [n_nodes] the bytes on the paths into the node's subtree */
    uint32_t *shape; /* [n_nodes] nodes whose descendants are laid out alike (the same bytes,
                        token counts and shapes below, so the same relative node and token
                        positions) share a shape: a continuation walked below one is known
                        below the others (walk_cont) */
    int32_t *toks;
    int32_t *eog;
    uint32_t n_eog;
    uint32_t max_depth;
    uint16_t byte_max[256]; /* the most times a byte occurs in one token */
    /* Masks of cut states shared by every matcher on this vocabulary, keyed by the structure
       of the state (so two grammars with the same string rule share its walk); see
       compute_mask. Round-robin replacement. */
    pthread_mutex_t lock;
    struct shared_part {
        uint64_t sig[2];
        uint32_t *bits, *esc;
        uint32_t n_esc;
        uint64_t used; /* tick of the last use: the least recent is replaced */
    } shared[SHARED_MAX];
    uint32_t n_shared;
    uint64_t tick;
    /* Text sets, per ASCII set A (see clean_get): the tokens that are UTF-8 from a character
       boundary with every ASCII byte in A (bits), and the trie of the other tokens, the main
       trie's nodes with such a token below (nodes, toks; orig: the main trie's node). Made on
       first use, kept until the vocabulary is freed (entries are read without the lock). */
    struct clean_set {
        uint64_t a[2];
        uint32_t *bits;
        uint8_t *nch;       /* [n_vocab] per token of the set: its characters (at most 255) */
        uint32_t **lenbits; /* [max_depth + 1] per n: the tokens of at most n characters (made
                               on first use, under the lock: len_bits) */
        struct tnode *nodes;
        int32_t *toks;
        uint32_t *orig;
    } clean[CLEAN_MAX];
    uint32_t n_clean;
};

/* UTF-8 as a small automaton: 0 at a character boundary, 1..3 continuation bytes still due,
   4..7 the restricted second bytes after E0, ED, F0 and F4 (no overlongs, surrogates or code
   points above U+10FFFF). */
#define U8_STATES 8
#define U8_REJECT 8

static inline unsigned u8_next(unsigned q, unsigned b)
{
    switch (q) {
    case 0:
        if (b < 0x80)
            return 0;
        if (b >= 0xC2 && b <= 0xDF)
            return 1;
        if (b == 0xE0)
            return 4;
        if (b == 0xED)
            return 5;
        if (b >= 0xE1 && b <= 0xEF)
            return 2;
        if (b == 0xF0)
            return 6;
        if (b >= 0xF1 && b <= 0xF3)
            return 3;
        if (b == 0xF4)
            return 7;
        return U8_REJECT;
    case 4:
        return b >= 0xA0 && b <= 0xBF ? 1 : U8_REJECT;
    case 5:
        return b >= 0x80 && b <= 0x9F ? 1 : U8_REJECT;
    case 6:
        return b >= 0x90 && b <= 0xBF ? 2 : U8_REJECT;
    case 7:
        return b >= 0x80 && b <= 0x8F ? 2 : U8_REJECT;
    default: /* 1..3 */
        return b >= 0x80 && b <= 0xBF ? q - 1 : U8_REJECT;
    }
}

struct ventry {
    const unsigned char *p;
    uint32_t len;
    int32_t id;
};

static int cmp_ventry(const void *a, const void *b)
{
    const struct ventry *x = a, *y = b;
    uint32_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->p, y->p, n);
    if (c)
        return c;
    if (x->len != y->len)
        return x->len < y->len ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

int32_t inf_grammar_vocab_size(const struct inf_grammar_vocab *v)
{
    return v ? v->n_vocab : 0;
}

void inf_grammar_vocab_free(struct inf_grammar_vocab *v)
{
    if (!v)
        return;
    free(v->nodes);
    free(v->sub);
    free(v->shape);
    free(v->toks);
    free(v->eog);
    for (uint32_t i = 0; i < v->n_shared; i++) {
        free(v->shared[i].bits);
        free(v->shared[i].esc);
    }
    for (uint32_t i = 0; i < v->n_clean; i++) {
        free(v->clean[i].bits);
        free(v->clean[i].nch);
        for (uint32_t n = 0; v->clean[i].lenbits && n <= v->max_depth; n++)
            free(v->clean[i].lenbits[n]);
        free(v->clean[i].lenbits);
        free(v->clean[i].nodes);
        free(v->clean[i].toks);
        free(v->clean[i].orig);
    }
    pthread_mutex_destroy(&v->lock);
    free(v);
}

/* Children of node i as compared for shapes: byte, tokens ending there, and shape below. */
static bool same_children(const struct inf_grammar_vocab *v, uint32_t a, uint32_t b)
{
    const struct tnode *nd = v->nodes;
    uint32_t x = a + 1, y = b + 1;
    while (x < nd[a].next && y < nd[b].next) {
        if (nd[x].byte != nd[y].byte || nd[x + 1].tf - nd[x].tf != nd[y + 1].tf - nd[y].tf ||
            v->shape[x] != v->shape[y])
            return false;
        x = nd[x].next;
        y = nd[y].next;
    }
    return x == nd[a].next && y == nd[b].next;
}

/* v->shape by hash-consing from the leaves up (children come after their parent): shape 0 is
   "no descendants". */
static bool shapes_build(struct inf_grammar_vocab *v)
{
    const struct tnode *nd = v->nodes;
    uint32_t nn = v->n_nodes;
    size_t cap = 1024;
    while (cap < 2 * (size_t)nn)
        cap *= 2;
    uint32_t *slot = malloc(cap * sizeof(uint32_t)),
             *rep = malloc(((size_t)nn + 1) * sizeof(uint32_t));
    uint64_t *hash = malloc(((size_t)nn + 1) * sizeof(uint64_t));
    v->shape = malloc((size_t)nn * sizeof(uint32_t));
    if (!slot || !rep || !hash || !v->shape) {
        free(slot);
        free(rep);
        free(hash);
        return false;
    }
    memset(slot, 0xFF, cap * sizeof(uint32_t));
    uint32_t n_shapes = 1;
    rep[0] = UINT32_MAX;
    hash[0] = 0;
    for (uint32_t i = nn; i-- > 0;) {
        if (nd[i].next == i + 1) {
            v->shape[i] = 0;
            continue;
        }
        uint64_t h = 0x9E3779B97F4A7C15ull;
        for (uint32_t c = i + 1; c < nd[i].next; c = nd[c].next)
            h = (h ^ ((uint64_t)nd[c].byte << 40 ^ (uint64_t)(nd[c + 1].tf - nd[c].tf) << 32 ^
                      v->shape[c])) *
                0x100000001B3ull;
        size_t k = (size_t)(h ^ h >> 29) & (cap - 1);
        uint32_t id = UINT32_MAX;
        while (slot[k] != UINT32_MAX) {
            uint32_t sh = slot[k];
            if (hash[sh] == h && same_children(v, rep[sh], i)) {
                id = sh;
                break;
            }
            k = (k + 1) & (cap - 1);
        }
        if (id == UINT32_MAX) {
            id = n_shapes++;
            rep[id] = i;
            hash[id] = h;
            slot[k] = id;
        }
        v->shape[i] = id;
    }
    free(slot);
    free(rep);
    free(hash);
    return true;
}

inf_status inf_grammar_vocab_new(const struct inf_tokenizer *tok, struct inf_grammar_vocab **out,
                                 struct inf_error *err)
{
    *out = NULL;
    const struct inf_tok_info *info = inf_tok_info(tok);
    if (info->n_tokens > INT32_MAX)
        return inf_error_set(err, INF_ELIMIT, "grammar: vocabulary too large");
    int32_t n = (int32_t)info->n_tokens;
    struct inf_grammar_vocab *v = calloc(1, sizeof(*v));
    struct ventry *ent = malloc(((size_t)n + 1) * sizeof(*ent));
    uint32_t *path = NULL, *parent = NULL;
    uint8_t *kids = NULL;
    size_t total = 1, n_ent = 0;
    if (!v || !ent)
        goto oom;
    v->tok = tok;
    v->n_vocab = n;
    pthread_mutex_init(&v->lock, NULL);
    v->eog = malloc(((size_t)n + 1) * sizeof(int32_t));
    if (!v->eog)
        goto oom;
    for (int32_t i = 0; i < n; i++) {
        if (inf_tok_is_eog(tok, i)) {
            v->eog[v->n_eog++] = i;
            continue;
        }
        size_t len;
        const char *p = inf_tok_piece(tok, i, false, &len);
        if (!p || len == 0)
            continue;
        if (len > UINT16_MAX) {
            free(ent);
            inf_grammar_vocab_free(v);
            return inf_error_set(err, INF_ELIMIT, "grammar: token %d is more than %u bytes", i,
                                 (unsigned)UINT16_MAX);
        }
        ent[n_ent++] = (struct ventry){(const unsigned char *)p, (uint32_t)len, i};
        total += len;
    }
    qsort(ent, n_ent, sizeof(*ent), cmp_ventry);
    /* at most one node per byte of every piece, plus the root (and the end record) */
    if (total > UINT32_MAX / 2)
        goto oom;
    struct tnode *nd = v->nodes = calloc(total + 1, sizeof(*v->nodes));
    v->toks = malloc((n_ent + 1) * sizeof(int32_t));
    path = malloc((total + 1) * sizeof(uint32_t));
    parent = malloc(total * sizeof(uint32_t));
    if (!nd || !v->toks || !path || !parent)
        goto oom;
    parent[0] = 0;
    uint32_t nn = 1, nt = 0, sd = 0; /* nodes, tokens, path depth */
    path[0] = 0;
    const struct ventry *prev = NULL;
    for (size_t k = 0; k < n_ent; k++) {
        const struct ventry *e = &ent[k];
        uint32_t l = 0;
        if (prev) {
            uint32_t m = prev->len < e->len ? prev->len : e->len;
            while (l < m && prev->p[l] == e->p[l])
                l++;
        }
        while (sd > l)
            nd[path[sd--]].next = nn;
        for (uint32_t d = l; d < e->len; d++) {
            parent[nn] = path[sd];
            nd[nn].byte = e->p[d];
            nd[nn].depth = (uint16_t)(d + 1);
            nd[nn].tf = nt;
            path[++sd] = nn++;
        }
        v->toks[nt++] = e->id;
        if (e->len > v->max_depth)
            v->max_depth = e->len;
        uint16_t cnt[256] = {0};
        for (uint32_t d = 0; d < e->len; d++) {
            unsigned b = (uint8_t)e->p[d];
            if (++cnt[b] > v->byte_max[b])
                v->byte_max[b] = cnt[b];
        }
        prev = e;
    }
    while (sd > 0)
        nd[path[sd--]].next = nn;
    nd[0].next = nn;
    nd[nn].tf = nt;
    /* tf was set when node i was made; tokens are appended right after their node, so node i
       owns toks[nd[i].tf .. nd[i+1].tf) */
    v->n_nodes = nn;
    struct tnode *fit = realloc(nd, ((size_t)nn + 1) * sizeof(*nd)); /* total is a bound */
    if (fit)
        nd = v->nodes = fit;
    v->sub = calloc(nn, sizeof(*v->sub));
    kids = malloc(nn); /* per node: the UTF-8 states its children are all valid from */
    if (!v->sub || !kids)
        goto oom;
    memset(kids, 0xFF, nn);
    for (uint32_t i = nn; i-- > 1;) { /* children come after their parent */
        struct tnode *x = &nd[i], *up = &nd[parent[i]];
        uint8_t ok = 0;
        for (unsigned q = 0; q < U8_STATES; q++) {
            unsigned q2 = u8_next(q, x->byte);
            if (q2 != U8_REJECT && ((kids[i] >> q2) & 1u))
                ok |= (uint8_t)(1u << q);
        }
        x->u8ok = ok & 1u;
        kids[parent[i]] &= ok;
        if (x->height == 0)
            x->height = 1;
        if (x->height + 1 > up->height)
            up->height = (uint16_t)(x->height + 1);
        x->sig |= (uint16_t)(1u << bucket_of(x->byte));
        up->sig |= x->sig;
        v->sub[i].w[x->byte >> 6] |= 1ull << (x->byte & 63);
        for (int k = 0; k < 4; k++)
            v->sub[parent[i]].w[k] |= v->sub[i].w[k];
    }
    if (!shapes_build(v))
        goto oom;
    free(path);
    free(parent);
    free(kids);
    free(ent);
    *out = v;
    return INF_OK;
oom:
    free(path);
    free(parent);
    free(kids);
    free(ent);
    inf_grammar_vocab_free(v);
    return inf_error_set(err, INF_ENOMEM, "grammar: out of memory building the token trie");
}

/* Build the text set of ASCII set a into c (see struct clean_set); false when out of memory. */
static bool clean_build(const struct inf_grammar_vocab *v, const uint64_t a[2], struct clean_set *c)
{
    const struct tnode *vn = v->nodes;
    uint32_t nn = v->n_nodes, nt = vn[nn].tf;
    uint8_t *ok = malloc((size_t)v->max_depth + 2), *q = malloc((size_t)v->max_depth + 2);
    uint8_t *nc = malloc((size_t)v->max_depth + 2);
    uint32_t *dcount = malloc(((size_t)nt + 1) * sizeof(uint32_t));
    uint32_t *newid = malloc(((size_t)nn + 1) * sizeof(uint32_t));
    c->bits = calloc(((size_t)v->n_vocab + 31) / 32, sizeof(uint32_t));
    c->nch = malloc((size_t)v->n_vocab + 1);
    c->lenbits = calloc((size_t)v->max_depth + 1, sizeof(uint32_t *));
    bool good = ok && q && nc && dcount && newid && c->bits && c->nch && c->lenbits;
    if (!good)
        goto out;
    memset(c->nch, 0xFF, (size_t)v->n_vocab);
    /* clean tokens: one pass down the trie with the UTF-8 state, the characters begun and the
       verdict per depth */
    ok[0] = 1;
    q[0] = 0;
    nc[0] = 0;
    uint32_t nd = 0;
    dcount[0] = 0;
    for (uint32_t i = 1; i < nn; i++) {
        uint32_t d = vn[i].depth;
        unsigned b = vn[i].byte, q2 = u8_next(q[d - 1], b);
        q[d] = (uint8_t)q2;
        ok[d] = ok[d - 1] && q2 != U8_REJECT && (b >= 0x80 || ((a[b >> 6] >> (b & 63)) & 1u));
        nc[d] = (uint8_t)(nc[d - 1] + (q[d - 1] == 0 && nc[d - 1] < 255));
        for (uint32_t k = vn[i].tf; k < vn[i + 1].tf; k++) {
            int32_t t = v->toks[k];
            if (ok[d]) {
                c->bits[t >> 5] |= 1u << (t & 31);
                c->nch[t] = nc[d];
            } else {
                nd++;
            }
            dcount[k + 1] = dcount[k] + !ok[d];
        }
    }
    /* the other tokens' trie: the nodes with one below (the root always), in the same order */
    uint32_t nk = 0;
    for (uint32_t i = 0; i < nn; i++) {
        bool keep = i == 0 || dcount[vn[vn[i].next].tf] > dcount[vn[i].tf];
        newid[i] = keep ? nk++ : UINT32_MAX;
    }
    c->nodes = malloc(((size_t)nk + 1) * sizeof(*c->nodes));
    c->orig = malloc(((size_t)nk + 1) * sizeof(uint32_t));
    c->toks = malloc(((size_t)nd + 1) * sizeof(int32_t));
    good = c->nodes && c->orig && c->toks;
    if (!good)
        goto out;
    for (uint32_t k = 0, j = 0; k < nt; k++)
        if (dcount[k + 1] > dcount[k])
            c->toks[j++] = v->toks[k];
    for (uint32_t i = 0; i < nn; i++) {
        if (newid[i] == UINT32_MAX)
            continue;
        struct tnode *x = &c->nodes[newid[i]];
        *x = vn[i];
        x->tf = dcount[vn[i].tf];
        c->orig[newid[i]] = i;
    }
    c->nodes[nk] = (struct tnode){0};
    c->nodes[nk].tf = nd;
    /* next of a kept node: the first kept node at or after the main next */
    uint32_t after = nk;
    newid[nn] = nk;
    for (uint32_t i = nn; i-- > 0;) { /* newid[i] := the first kept node at or after i */
        if (newid[i] != UINT32_MAX)
            after = newid[i];
        else
            newid[i] = after;
    }
    for (uint32_t j = 0; j < nk; j++)
        c->nodes[j].next = newid[vn[c->orig[j]].next];
    c->a[0] = a[0];
    c->a[1] = a[1];
out:
    free(ok);
    free(q);
    free(nc);
    free(dcount);
    free(newid);
    if (!good) {
        free(c->bits);
        free(c->nch);
        free(c->lenbits);
        free(c->nodes);
        free(c->orig);
        free(c->toks);
        memset(c, 0, sizeof(*c));
    }
    return good;
}

/* The text set of ASCII set a, made on first use; NULL when the table is full or out of
   memory (the caller walks the whole trie). */
static const struct clean_set *clean_get(struct inf_grammar_vocab *v, const uint64_t a[2])
{
    const struct clean_set *r = NULL;
    pthread_mutex_lock(&v->lock);
    for (uint32_t i = 0; i < v->n_clean && !r; i++)
        if (v->clean[i].a[0] == a[0] && v->clean[i].a[1] == a[1])
            r = &v->clean[i];
    if (!r) { /* a miss: rare, so the trace switch is read here */
        bool trace = getenv("INFERNO_GRAMMAR_TRACE") != NULL;
        uint64_t t0 = inf__now_ns();
        if (v->n_clean < CLEAN_MAX && clean_build(v, a, &v->clean[v->n_clean]))
            r = &v->clean[v->n_clean++];
        if (trace)
            fprintf(stderr, "grammar: text set %016llx%016llx %s in %.1f us\n",
                    (unsigned long long)a[1], (unsigned long long)a[0],
                    r ? "built" : "refused (table full)", (double)(inf__now_ns() - t0) / 1e3);
    }
    pthread_mutex_unlock(&v->lock);
    return r;
}

/* The tokens of text set c of at most n characters (n <= max_depth), made on first use;
   NULL when out of memory. */
static const uint32_t *len_bits(struct inf_grammar_vocab *v, const struct clean_set *c, uint32_t n)
{
    pthread_mutex_lock(&v->lock);
    uint32_t *r = c->lenbits[n];
    if (!r && (r = calloc(((size_t)v->n_vocab + 31) / 32, sizeof(uint32_t)))) {
        for (int32_t t = 0; t < v->n_vocab; t++)
            if (c->nch[t] <= n)
                r[t >> 5] |= 1u << (t & 31);
        c->lenbits[n] = r;
    }
    pthread_mutex_unlock(&v->lock);
    return r;
}

/* memcpy of n ids, where n may be 0 and the arrays not yet allocated */
static inline void copy_ids(uint32_t *dst, const uint32_t *src, size_t n)
{
    if (n)
        memcpy(dst, src, n * sizeof(uint32_t));
}

/* ---- the matcher ----------------------------------------------------------------------------- */

#define NO_CLOSURE     UINT32_MAX
#define MAX_LEAVES     65536 /* positions one closure may reach */
#define MASK_CACHE_MAX 1024
#define MARK_POS       (UINT32_MAX - 1) /* a cut node: its parent field is the cut's index */
/* Masks are computed on the state cut below the frames of the rule being matched (a string
   body, a number, a keyword: see cut_state), cached per cut state, and
   completed by walking, from each cut's real continuation, the trie subtrees whose prefixes pop
   out of the kept frames. The same cut state recurs in every context, so a wide walk (a string
   body allows most of the vocabulary) is done once per grammar rather than once per place. */
#define NO_DENSE      UINT32_MAX
#define NO_CUT        UINT32_MAX
#define NO_STATE      UINT32_MAX
#define UNKNOWN_STEP  UINT32_MAX
#define DENSE_AFTER   48 /* hash lookups before a state gets a dense row */
#define DENSE_SUBTREE 64 /* or a walk reaching it above a subtree of more nodes than this */
#define RUN_INF       UINT32_MAX
#define RUN_CAP       24 /* runs are followed this far (tokens longer are walked byte by byte) */
#define U8_NONE       (UINT32_MAX - 1)
#define U8_CHAIN      8 /* successors u8_run examines at least before it settles for a shorter run */
#define U8_CHAIN_MAX  256 /* ... and at most (the longest token's length between) */
#define U8_NEW_STATES 256 /* ... while it has made no more states than this */
#define DENSE_MAX     (64u << 20) / (256 * sizeof(uint32_t)) /* rows: 64 MiB */
#define ST_END        1u /* the state holds the empty stack: the grammar may end */
#define ST_MARK       2u /* the state holds a cut node */
#define ST_LCHK       4u /* text_loop has looked at the state ... */
#define ST_LOOP       8u /* ... and found it a text loop */
/* When the interned tables pass these, they are rebuilt from the current state alone. */
static size_t max_nodes = 4u << 20, max_states = 1u << 20, max_pool = 64u << 20;
#define CUT_CACHE_MAX 256
static size_t max_parts = CUT_CACHE_MAX; /* cached cut-state masks per matcher */

void inf__matcher_set_limits(size_t nodes, size_t states, size_t pool, size_t parts)
{
    max_nodes = nodes;
    max_states = states;
    max_pool = pool;
    max_parts = parts < 2 ? 2 : parts > CUT_CACHE_MAX ? CUT_CACHE_MAX : parts;
}

struct u64map { /* open addressing: key -> value; keys are never 0 (callers add 1) */
    uint64_t *k;
    uint32_t *v;
    size_t cap, n;
};

struct inf_matcher {
    const struct inf_grammar *g;
    const struct inf_grammar_vocab *voc;
    /* nodes: 0 is the empty stack */
    uint32_t *npos, *npar, *ndep, *ncl_off, *ncl_n, *stamp; /* ndep: frames down to the bottom */
    uint32_t *ncanon;  /* per node: the node with long counted bounds shortened (canon_node) */
    uint32_t *chain_d; /* per chain link: the link from which on all are alike (chain_links) */
    uint32_t *nstate;  /* per node: the state of its closure (node_state), NO_STATE unknown */
    size_t n_nodes, cap_nodes, cap_stamp;
    struct u64map node_map; /* (pos << 32 | parent) + 1 -> node */
    uint32_t gen;
    /* closures and states share one pool of leaf ids */
    uint32_t *pool;
    size_t n_pool, cap_pool;
    uint32_t *st_off, *st_n; /* state 0 is the empty (dead) set */
    uint8_t *st_flags;       /* ST_END | ST_MARK | ST_LCHK | ST_LOOP */
    uint32_t *st_dense;      /* per state: its row in dense[] or NO_DENSE */
    uint32_t *dense;         /* rows of 256 transitions (UNKNOWN_STEP where not computed) */
    /* per row: the state most bytes lead to (succ), those bytes (u), and how many bytes of u in
       a row the state takes (run: RUN_INF for a loop, 0 not yet known) */
    struct rowinfo {
        struct inf__byteset u;
        uint32_t succ, run;
        uint32_t cover; /* bucket_cover(u) */
    } * rinfo;
    /* per state, text: how many characters it takes one after another (U8_NONE: it does not
       take every multibyte one alike; 0 not yet known), and the ASCII ones among them */
    uint32_t *st_u8run;
    uint64_t *st_a8;     /* [2 per state] */
    uint32_t *st_cover8; /* per state: bucket_cover of st_a8 (valid with st_u8run) */
    size_t cap_rinfo;
    size_t n_dense, cap_dense;
    uint16_t *st_uses;     /* hash lookups so far; a busy state gets a dense row */
    uint32_t *st_canon;    /* per state: canon_state, NO_STATE when not computed */
    uint32_t *st_cut;      /* per state: its cut state (NO_CUT: not computed), and the real */
    uint32_t *st_cuts_off; /* nodes its markers stand for: cut_pool[st_cuts_off ..] */
    uint32_t *cut_pool;
    size_t n_cut_pool, cap_cut_pool;
    size_t n_states, cap_states;
    struct u64map state_map; /* content hash -> state (chained by linear probing on collision) */
    struct u64map trans;     /* (state << 8 | byte) + 1 -> state */
    /* scratch */
    uint32_t *tmp, *dfs, *ctmp; /* tmp: a state being built; ctmp: a closure being built */
    size_t cap_tmp, cap_dfs, cap_ctmp;
    uint32_t *sortbuf; /* radix_sort's other half */
    size_t cap_sortbuf;
    uint32_t *walk; /* [max_depth + 1] states along the trie path */
    /* mask cache */
    struct u64map mask_map; /* state + 1 -> slot */
    uint32_t *masks;
    size_t n_masks, cap_masks, words;
    /* cut states: their masks (without end tokens) and their escapes, (trie node, cut index)
       pairs where a prefix pops into the cut */
    struct u64map part_map;                         /* cut state + 1 -> slot */
    uint32_t *parts;                                /* [CUT_CACHE_MAX][words] */
    uint32_t *part_esc_off, *part_esc_n, *part_key; /* per slot; key: the cut state */
    /* per slot: a run of text that ends where the state pops into cut j (j + 1; 0: none),
       with the run's ASCII set: its longer tokens are the continuation's (run_end, add_state) */
    struct part_run {
        uint32_t j1;
        uint64_t a[2];
    } * part_run, run;         /* run: what walk_root found for the part being walked */
    uint64_t *part_tick, tick; /* last use, for eviction */
    uint32_t *esc;             /* pairs */
    size_t n_parts, cap_parts, n_esc, cap_esc;
    /* continuation walks below one trie node from one cut state: the tokens they allow and
       their own escapes, so that the same continuation in another place is a list replay */
    struct u64map cont_map; /* (cut state << 32 | trie node) + 1 -> entry */
    uint32_t *cont_ent;     /* 4 per entry: token offset, count, escape offset, count */
    uint32_t *cont_toks, *cont_esc, *scratch;
    uint32_t *apply_mask; /* inf_matcher_apply's mask, allocated on first use */
    size_t n_cont, cap_cont, n_ctoks, cap_ctoks, n_cesc, cap_cesc;
    uint32_t *cuts; /* the real nodes the current cut state's markers stand for */
    size_t n_cuts, cap_cuts;
    uint32_t start, cur;
    bool done, failed;
    const char *why; /* set with failed when the cause is not memory */
    bool trace;      /* INFERNO_GRAMMAR_TRACE set: one line per computed mask on stderr */
    size_t visited, walked, split, cont_new, cont_hit; /* trace counters of one mask */
};

/* Keys are (position << 32 | parent) and the like: both halves mixed into the low bits (a
   multiply alone left nodes of one parent in a few slots of a small table). */
static inline uint64_t map_hash(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xFF51AFD7ED558CCDull;
    return x ^ (x >> 33);
}

static bool map_grow(struct u64map *m)
{
    size_t cap = m->cap ? m->cap * 2 : 1024;
    uint64_t *k = calloc(cap, sizeof(*k));
    uint32_t *v = malloc(cap * sizeof(*v));
    if (!k || !v) {
        free(k);
        free(v);
        return false;
    }
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->k[i])
            continue;
        size_t h = map_hash(m->k[i]) & (cap - 1);
        while (k[h])
            h = (h + 1) & (cap - 1);
        k[h] = m->k[i];
        v[h] = m->v[i];
    }
    free(m->k);
    free(m->v);
    m->k = k;
    m->v = v;
    m->cap = cap;
    return true;
}

static void map_free(struct u64map *m)
{
    free(m->k);
    free(m->v);
    memset(m, 0, sizeof(*m));
}

static void map_clear(struct u64map *m)
{
    if (m->k)
        memset(m->k, 0, m->cap * sizeof(*m->k));
    m->n = 0;
}

static inline size_t map_slot(const struct u64map *m, uint64_t key)
{
    return (size_t)map_hash(key) & (m->cap - 1);
}

static inline bool map_get(const struct u64map *m, uint64_t key, uint32_t *val)
{
    if (!m->cap)
        return false;
    size_t h = map_slot(m, key);
    while (m->k[h]) {
        if (m->k[h] == key) {
            *val = m->v[h];
            return true;
        }
        h = (h + 1) & (m->cap - 1);
    }
    return false;
}

static bool map_put(struct u64map *m, uint64_t key, uint32_t val)
{
    if (2 * (m->n + 1) > m->cap && !map_grow(m))
        return false;
    size_t h = map_slot(m, key);
    while (m->k[h]) {
        if (m->k[h] == key) {
            m->v[h] = val;
            return true;
        }
        h = (h + 1) & (m->cap - 1);
    }
    m->k[h] = key;
    m->v[h] = val;
    m->n++;
    return true;
}

static uint32_t node_intern(struct inf_matcher *m, uint32_t pos, uint32_t parent)
{
    uint64_t key = (((uint64_t)pos << 32) | parent) + 1;
    uint32_t id;
    if (map_get(&m->node_map, key, &id))
        return id;
    if (m->n_nodes >= UINT32_MAX - 1)
        goto oom;
    if (m->n_nodes + 1 <= m->cap_nodes)
        goto room;
    size_t c = m->cap_nodes;
    if (!inf__grow(&m->npos, &c, m->n_nodes + 1, sizeof(uint32_t), 1024))
        goto oom;
    c = m->cap_nodes;
    if (!inf__grow(&m->npar, &c, m->n_nodes + 1, sizeof(uint32_t), 1024))
        goto oom;
    c = m->cap_nodes;
    if (!inf__grow(&m->ndep, &c, m->n_nodes + 1, sizeof(uint32_t), 1024))
        goto oom;
    c = m->cap_nodes;
    if (!inf__grow(&m->ncl_off, &c, m->n_nodes + 1, sizeof(uint32_t), 1024))
        goto oom;
    c = m->cap_nodes;
    if (!inf__grow(&m->ncl_n, &c, m->n_nodes + 1, sizeof(uint32_t), 1024))
        goto oom;
    c = m->cap_nodes;
    if (!inf__grow(&m->ncanon, &c, m->n_nodes + 1, sizeof(uint32_t), 1024))
        goto oom;
    c = m->cap_nodes;
    if (!inf__grow(&m->nstate, &c, m->n_nodes + 1, sizeof(uint32_t), 1024))
        goto oom;
    m->cap_nodes = c;
room:
    id = (uint32_t)m->n_nodes++;
    m->npos[id] = pos;
    m->npar[id] = parent;
    m->ndep[id] = pos == MARK_POS ? 0 : m->ndep[parent] + 1;
    m->ncl_off[id] = NO_CLOSURE;
    m->ncl_n[id] = 0;
    m->ncanon[id] = NO_STATE;
    m->nstate[id] = NO_STATE;
    if (!map_put(&m->node_map, key, id))
        goto oom;
    return id;
oom:
    m->failed = true;
    return 0;
}

static inline bool push_u32(uint32_t **p, size_t *n, size_t *cap, uint32_t v)
{
    if (*n + 1 > *cap && !inf__grow(p, cap, *n + 1, sizeof(uint32_t), 64))
        return false;
    (*p)[(*n)++] = v;
    return true;
}

/* The leaves node x closes to, appended to the pool once; returns false on out of memory. */
static bool closure(struct inf_matcher *m, uint32_t x)
{
    if (m->ncl_off[x] != NO_CLOSURE)
        return true;
    const struct inf_grammar *g = m->g;
    if (++m->gen == 0) {
        memset(m->stamp, 0, m->cap_stamp * sizeof(uint32_t));
        m->gen = 1;
    }
    size_t n_dfs = 0, n_out = 0;
    if (!push_u32(&m->dfs, &n_dfs, &m->cap_dfs, x))
        return false;
    while (n_dfs) {
        uint32_t y = m->dfs[--n_dfs];
        if (m->cap_stamp < m->n_nodes) {
            size_t old = m->cap_stamp;
            if (!inf__grow(&m->stamp, &m->cap_stamp, m->n_nodes, sizeof(uint32_t), 1024))
                return false;
            memset(m->stamp + old, 0, (m->cap_stamp - old) * sizeof(uint32_t));
        }
        if (m->stamp[y] == m->gen)
            continue;
        m->stamp[y] = m->gen;
        if (y == 0) {
            if (!push_u32(&m->ctmp, &n_out, &m->cap_ctmp, 0))
                return false;
            continue;
        }
        uint32_t pos = m->npos[y], par = m->npar[y];
        if (pos == MARK_POS) { /* a cut: the stack below is not known here */
            if (!push_u32(&m->ctmp, &n_out, &m->cap_ctmp, y))
                return false;
            continue;
        }
        const struct inf__gel *e = &g->elems[pos];
        if (e->kind == INF__GEL_BYTES) {
            if (!push_u32(&m->ctmp, &n_out, &m->cap_ctmp, y))
                return false;
        } else if (e->kind == INF__GEL_END) {
            if (!push_u32(&m->dfs, &n_dfs, &m->cap_dfs, par))
                return false;
        } else {
            uint32_t ret =
                g->elems[pos + 1].kind == INF__GEL_END ? par : node_intern(m, pos + 1, par);
            for (uint32_t a = g->rule_alt[e->arg]; a < g->rule_alt[e->arg + 1]; a++) {
                uint32_t z = node_intern(m, g->alts[a], ret);
                if (m->failed || !push_u32(&m->dfs, &n_dfs, &m->cap_dfs, z))
                    return false;
            }
        }
        if (m->failed)
            return false;
    }
    if (n_out > MAX_LEAVES) {
        m->why = "the grammar is too ambiguous: one step reaches more than 65536 positions";
        return false;
    }
    if (!inf__grow(&m->pool, &m->cap_pool, m->n_pool + n_out + 1, sizeof(uint32_t), 4096))
        return false;
    copy_ids(m->pool + m->n_pool, m->ctmp, n_out);
    m->ncl_off[x] = (uint32_t)m->n_pool;
    m->ncl_n[x] = (uint32_t)n_out;
    m->n_pool += n_out;
    return true;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Sort t[0..n) by its 32-bit values, least significant byte first (a state of an ambiguous
   grammar has thousands of leaves, built again at every new step); false when out of memory. */
static bool radix_sort(struct inf_matcher *m, uint32_t *t, size_t n)
{
    if (!inf__grow(&m->sortbuf, &m->cap_sortbuf, n, sizeof(uint32_t), 1024))
        return false;
    uint32_t cnt[4][256] = {{0}};
    for (size_t i = 0; i < n; i++)
        for (int d = 0; d < 4; d++)
            cnt[d][(t[i] >> (8 * d)) & 0xFF]++;
    uint32_t *src = t, *dst = m->sortbuf;
    for (int d = 0; d < 4; d++) {
        if (cnt[d][(t[0] >> (8 * d)) & 0xFF] == n)
            continue; /* every value has the same byte here */
        uint32_t pos[256], sum = 0;
        for (int b = 0; b < 256; b++) {
            pos[b] = sum;
            sum += cnt[d][b];
        }
        for (size_t i = 0; i < n; i++)
            dst[pos[(src[i] >> (8 * d)) & 0xFF]++] = src[i];
        uint32_t *x = src;
        src = dst;
        dst = x;
    }
    if (src != t)
        memcpy(t, src, n * sizeof(uint32_t));
    return true;
}

/* Intern the leaf set tmp[0..n) (sorted here); 0 for the empty set. */
static uint32_t state_intern(struct inf_matcher *m, size_t n)
{
    if (n == 0)
        return 0;
    uint32_t *t = m->tmp;
    if (n > 1) {
        if (n <= 24) { /* the usual size: insertion sort beats qsort's calls */
            for (size_t i = 1; i < n; i++) {
                uint32_t x = t[i];
                size_t j = i;
                while (j > 0 && t[j - 1] > x) {
                    t[j] = t[j - 1];
                    j--;
                }
                t[j] = x;
            }
        } else if (n < 256 || !radix_sort(m, t, n)) {
            qsort(t, n, sizeof(uint32_t), cmp_u32);
        }
        size_t k = 1;
        for (size_t i = 1; i < n; i++)
            if (t[i] != t[k - 1])
                t[k++] = t[i];
        n = k;
    }
    uint64_t h = 1469598103934665603ull ^ n;
    for (size_t i = 0; i < n; i++)
        h = (h ^ t[i]) * 1099511628211ull;
    h |= 1; /* never 0 */
    /* probe: keys are hashes, collisions resolved by comparing content and moving on */
    for (uint64_t key = h;; key += 2) {
        uint32_t id;
        if (!map_get(&m->state_map, key, &id))
            break;
        if (m->st_n[id] == n && !memcmp(m->pool + m->st_off[id], t, n * sizeof(uint32_t)))
            return id;
        h = key + 2;
    }
    if (!inf__grow(&m->pool, &m->cap_pool, m->n_pool + n, sizeof(uint32_t), 4096))
        goto oom;
    if (m->n_states + 1 <= m->cap_states)
        goto room;
    size_t c = m->cap_states;
    if (!inf__grow(&m->st_off, &c, m->n_states + 1, sizeof(uint32_t), 256))
        goto oom;
    c = m->cap_states;
    if (!inf__grow(&m->st_n, &c, m->n_states + 1, sizeof(uint32_t), 256))
        goto oom;
    c = m->cap_states;
    if (!inf__grow(&m->st_flags, &c, m->n_states + 1, sizeof(uint8_t), 256))
        goto oom;
    c = m->cap_states;
    if (!inf__grow(&m->st_dense, &c, m->n_states + 1, sizeof(uint32_t), 256))
        goto oom;
    c = m->cap_states;
    if (!inf__grow(&m->st_uses, &c, m->n_states + 1, sizeof(uint16_t), 256))
        goto oom;
    c = m->cap_states;
    if (!inf__grow(&m->st_cut, &c, m->n_states + 1, sizeof(uint32_t), 256))
        goto oom;
    c = m->cap_states;
    if (!inf__grow(&m->st_canon, &c, m->n_states + 1, sizeof(uint32_t), 256))
        goto oom;
    c = m->cap_states;
    if (!inf__grow(&m->st_u8run, &c, m->n_states + 1, sizeof(uint32_t), 256))
        goto oom;
    c = m->cap_states;
    if (!inf__grow(&m->st_a8, &c, m->n_states + 1, 2 * sizeof(uint64_t), 256))
        goto oom;
    c = m->cap_states;
    if (!inf__grow(&m->st_cover8, &c, m->n_states + 1, sizeof(uint32_t), 256))
        goto oom;
    c = m->cap_states;
    if (!inf__grow(&m->st_cuts_off, &c, m->n_states + 1, sizeof(uint32_t), 256))
        goto oom;
    m->cap_states = c;
room:
    m->st_cut[m->n_states] = NO_CUT;
    m->st_canon[m->n_states] = NO_STATE;
    m->st_u8run[m->n_states] = 0;
    m->st_dense[m->n_states] = NO_DENSE;
    m->st_uses[m->n_states] = 0;
    uint32_t id = (uint32_t)m->n_states++;
    uint8_t fl = t[0] == 0 ? ST_END : 0;
    for (size_t i = 0; i < n && !(fl & ST_MARK); i++)
        if (m->npos[t[i]] == MARK_POS)
            fl |= ST_MARK;
    m->st_flags[id] = fl;
    copy_ids(m->pool + m->n_pool, t, n);
    m->st_off[id] = (uint32_t)m->n_pool;
    m->st_n[id] = (uint32_t)n;
    m->n_pool += n;
    if (!map_put(&m->state_map, h, id))
        goto oom;
    return id;
oom:
    m->failed = true;
    return 0;
}

/* The state after byte b from state s (0: rejected). */
static uint32_t step_slow(struct inf_matcher *m, uint32_t s, unsigned b);
static void make_dense(struct inf_matcher *m, uint32_t s);
static unsigned byte_classes(const struct inf_matcher *m, uint32_t s, unsigned lo, unsigned hi,
                             uint8_t *reps, uint8_t *cls);

static inline uint32_t step(struct inf_matcher *m, uint32_t s, unsigned b)
{
    if (s == 0)
        return 0;
    uint32_t row = m->st_dense[s];
    if (row != NO_DENSE) {
        uint32_t r = m->dense[(size_t)row * 256 + b];
        if (r != UNKNOWN_STEP)
            return r;
    }
    return step_slow(m, s, b);
}

/* Give a busy state a dense row: every byte's transition computed, the state most bytes lead
   to and those bytes. */
static void make_dense(struct inf_matcher *m, uint32_t s)
{
    size_t cap = m->cap_rinfo;
    if (!inf__grow(&m->dense, &m->cap_dense, (m->n_dense + 1) * 256, sizeof(uint32_t), 256 * 64) ||
        !inf__grow(&m->rinfo, &cap, m->n_dense + 1, sizeof(*m->rinfo), 64))
        return;
    m->cap_rinfo = cap;
    uint32_t row = (uint32_t)m->n_dense++;
    memset(m->dense + (size_t)row * 256, 0xFF, 256 * sizeof(uint32_t));
    m->st_dense[s] = row;
    uint32_t to[256], cto[256];
    uint8_t reps[256], cls[256];
    unsigned nc = byte_classes(m, s, 0, 256, reps, cls);
    if (nc) { /* one step per class of bytes the same leaves take */
        for (unsigned c = 0; c < nc; c++) {
            cto[c] = step_slow(m, s, reps[c]);
            if (m->failed)
                return;
        }
        uint32_t *d = m->dense + (size_t)row * 256;
        for (unsigned b = 0; b < 256; b++)
            d[b] = to[b] = cto[cls[b]];
    } else {
        for (unsigned b = 0; b < 256; b++) {
            to[b] = step_slow(m, s, b); /* writes the row (m->dense may move) */
            if (m->failed)
                return;
        }
    }
    /* the most frequent non-dead target (a loop counts first) */
    uint32_t best = 0, best_n = 0, tg[256], tn[256];
    unsigned nt = 0;
    for (unsigned b = 0; b < 256; b++) {
        if (!to[b])
            continue;
        unsigned j = 0;
        while (j < nt && tg[j] != to[b])
            j++;
        if (j == nt) {
            tg[nt] = to[b];
            tn[nt++] = 0;
        }
        tn[j]++;
    }
    for (unsigned j = 0; j < nt; j++) {
        if (tn[j] > best_n || (tn[j] == best_n && tg[j] == s)) {
            best = tg[j];
            best_n = tn[j];
        }
    }
    struct rowinfo ri = {{{0, 0, 0, 0}}, best, best == s && best ? RUN_INF : 0, 0};
    for (unsigned b = 0; best && b < 256; b++)
        if (to[b] == best)
            ri.u.w[b >> 6] |= 1ull << (b & 63);
    ri.cover = bucket_cover(&ri.u);
    m->rinfo[row] = ri;
}

static bool byteset_within(const struct inf__byteset *a, const struct inf__byteset *b)
{
    return !((a->w[0] & ~b->w[0]) | (a->w[1] & ~b->w[1]) | (a->w[2] & ~b->w[2]) |
             (a->w[3] & ~b->w[3]));
}

/* How many bytes of its u set state s (which has a row) takes one after another: a chain of
   successors each taking every byte of u to one state (x{0,n} counts down like this). */
static uint32_t state_run(struct inf_matcher *m, uint32_t s)
{
    uint32_t row = m->st_dense[s];
    if (m->rinfo[row].run)
        return m->rinfo[row].run;
    struct inf__byteset u = m->rinfo[row].u;
    uint32_t n = 1, cur = m->rinfo[row].succ;
    while (n < RUN_CAP && cur) {
        if (m->st_dense[cur] == NO_DENSE)
            make_dense(m, cur);
        if (m->failed || m->st_dense[cur] == NO_DENSE)
            break;
        const struct rowinfo *r2 = &m->rinfo[m->st_dense[cur]];
        if (!byteset_within(&u, &r2->u))
            break;
        n++;
        if (r2->succ == cur) {
            n = RUN_INF;
            break;
        }
        cur = r2->succ;
    }
    m->rinfo[row].run = n;
    return n;
}

/* Bytes lo..hi-1 of state s in classes that lead to one state each: the leaves (at most 64)
   that take a byte are its class. reps[] gets one byte per class, cls[b - lo] the class of b;
   returns the number of classes, or 0 when s has too many leaves to tell. */
static unsigned byte_classes(const struct inf_matcher *m, uint32_t s, unsigned lo, unsigned hi,
                             uint8_t *reps, uint8_t *cls)
{
    const struct inf_grammar *g = m->g;
    uint32_t n = m->st_n[s];
    if (n > 64)
        return 0;
    uint64_t sig[256], keys[256];
    for (unsigned b = lo; b < hi; b++)
        sig[b] = 0;
    for (uint32_t k = 0; k < n; k++) {
        uint32_t leaf = m->pool[m->st_off[s] + k];
        if (leaf == 0 || m->npos[leaf] == MARK_POS)
            continue;
        const struct inf__byteset *set = &g->sets[g->elems[m->npos[leaf]].arg];
        for (unsigned b = lo; b < hi; b++)
            if (inf__byteset_has(set, b))
                sig[b] |= 1ull << k;
    }
    unsigned nc = 0;
    for (unsigned b = lo; b < hi; b++) {
        unsigned c = 0;
        while (c < nc && keys[c] != sig[b])
            c++;
        if (c == nc) {
            keys[nc] = sig[b];
            reps[nc++] = (uint8_t)b;
        }
        cls[b - lo] = (uint8_t)c;
    }
    return nc;
}

/* The state every character leads to from s when all multibyte characters lead to one
   (through live states), with the ASCII bytes that lead there too in a8; 0 otherwise. */
static uint32_t u8_succ(struct inf_matcher *m, uint32_t s, uint64_t a8[2])
{
    uint32_t qs[24], xs[24], y = 0;
    uint8_t reps[256], cls[256];
    uint32_t to[256];
    size_t n = 0;
    for (size_t k = 0;; k++) {
        /* k == 0: the lead bytes from s; then the continuation bytes of pair k - 1 */
        uint32_t x = k == 0 ? s : xs[k - 1];
        unsigned q0 = k == 0 ? 0 : qs[k - 1], lo = k == 0 ? 0xC2 : 0x80, hi = k == 0 ? 0xF5 : 0xC0;
        unsigned nc = byte_classes(m, x, lo, hi, reps, cls);
        if (nc == 0)
            return 0;
        for (unsigned c = 0; c < nc; c++) {
            to[c] = step(m, x, reps[c]);
            if (m->failed)
                return 0;
        }
        for (unsigned b = lo; b < hi; b++) {
            unsigned q = u8_next(q0, b);
            if (q == U8_REJECT)
                continue;
            uint32_t x2 = to[cls[b - lo]];
            if (!x2)
                return 0;
            if (q == 0) {
                if (y && x2 != y)
                    return 0;
                y = x2;
                continue;
            }
            size_t j = 0;
            while (j < n && (qs[j] != q || xs[j] != x2))
                j++;
            if (j == n) {
                if (n == 24)
                    return 0;
                qs[n] = q;
                xs[n++] = x2;
            }
        }
        if (k == n)
            break;
    }
    a8[0] = a8[1] = 0;
    unsigned nc = y ? byte_classes(m, s, 0, 0x80, reps, cls) : 0;
    for (unsigned c = 0; c < nc; c++) {
        to[c] = step(m, s, reps[c]);
        if (m->failed)
            return 0;
    }
    for (unsigned b = 0; b < 0x80 && nc; b++)
        if (to[cls[b]] == y)
            a8[b >> 6] |= 1ull << (b & 63);
    return nc ? y : 0;
}

/* How many characters state s takes one after another, any multibyte one or an ASCII one of
   st_a8 (U8_NONE: not so); see u8_succ. */
static uint32_t u8_run(struct inf_matcher *m, uint32_t s)
{
    if (m->st_u8run[s])
        return m->st_u8run[s];
    /* The chain s, y, y2, ...: each member takes one character (an ASCII one of its set or
       any multibyte one) to the next. It is followed as far as the longest token: a run that
       long takes every token's characters, as a loop does (RUN_INF), so a counted string
       (json-char{1,255}) gets the text sets of a loop. The members met on the way get their
       own runs, so that the next state of the count joins the chain at once. */
    uint32_t lim = m->voc->max_depth < U8_CHAIN ? U8_CHAIN : m->voc->max_depth;
    if (lim > U8_CHAIN_MAX)
        lim = U8_CHAIN_MAX;
    uint32_t ch[U8_CHAIN_MAX], len = 0, tail = 0;
    uint64_t ca[2 * U8_CHAIN_MAX], ta[2] = {~0ull, ~0ull}, a[2];
    bool inf = false;
    uint32_t y = u8_succ(m, s, a);
    if (y && !m->failed) {
        ch[0] = s;
        ca[0] = a[0];
        ca[1] = a[1];
        len = 1;
        uint32_t cur = y;
        size_t states0 = m->n_states;
        while (len < lim && cur != s && m->n_states - states0 <= U8_NEW_STATES) {
            if (m->st_u8run[cur]) { /* known: join it */
                uint32_t r2 = m->st_u8run[cur];
                if (r2 != U8_NONE) {
                    ta[0] = m->st_a8[2 * cur];
                    ta[1] = m->st_a8[2 * cur + 1];
                    if (r2 == RUN_INF)
                        inf = true;
                    else
                        tail = r2;
                }
                break;
            }
            uint64_t a2[2];
            uint32_t y2 = u8_succ(m, cur, a2);
            if (!y2 || m->failed)
                break;
            ch[len] = cur;
            ca[2 * len] = a2[0];
            ca[2 * len + 1] = a2[1];
            len++;
            if (y2 == cur) {
                inf = true;
                break;
            }
            cur = y2;
        }
        if (y == s)
            inf = true;
    }
    if (m->failed)
        return U8_NONE;
    if (len == 0) {
        m->st_u8run[s] = U8_NONE;
        m->st_a8[2 * s] = m->st_a8[2 * s + 1] = 0;
        m->st_cover8[s] = bucket_cover(&(struct inf__byteset){{0, 0, 0, 0}});
        return U8_NONE;
    }
    /* member k takes len - k characters and then the joined run (a lower bound where the
       chain was cut short), of the characters all of its successors take */
    uint64_t s0 = ta[0], s1 = ta[1];
    for (uint32_t k = len; k-- > 0;) {
        s0 &= ca[2 * k];
        s1 &= ca[2 * k + 1];
        uint32_t x = ch[k], r = inf ? RUN_INF : len - k + tail;
        if (r >= m->voc->max_depth && m->voc->max_depth > 0)
            r = RUN_INF; /* as long as any token: a loop to the walk */
        m->st_u8run[x] = r;
        m->st_a8[2 * x] = s0;
        m->st_a8[2 * x + 1] = s1;
        struct inf__byteset u = {{s0, s1, 0, 0}};
        m->st_cover8[x] = bucket_cover(&u);
    }
    return m->st_u8run[s];
}

static uint32_t step_slow(struct inf_matcher *m, uint32_t s, unsigned b)
{
    uint64_t key = (((uint64_t)s << 8) | b) + 1;
    uint32_t r = 0;
    if (m->st_n[s] <= 16) { /* a byte no leaf takes: dead, without the table */
        const uint32_t *lv = m->pool + m->st_off[s];
        bool any = false;
        for (uint32_t i = 0; i < m->st_n[s] && !any; i++)
            any = lv[i] != 0 && m->npos[lv[i]] != MARK_POS &&
                  inf__byteset_has(&m->g->sets[m->g->elems[m->npos[lv[i]]].arg], b);
        if (!any)
            goto done;
    }
    if (map_get(&m->trans, key, &r))
        goto done;
    const struct inf_grammar *g = m->g;
    size_t n_out = 0;
    uint32_t n_leaves = m->st_n[s];
    for (uint32_t i = 0; i < n_leaves; i++) {
        uint32_t leaf = m->pool[m->st_off[s] + i];
        if (leaf == 0)
            continue;
        uint32_t pos = m->npos[leaf];
        if (pos == MARK_POS)
            continue;
        if (!inf__byteset_has(&g->sets[g->elems[pos].arg], b))
            continue;
        uint32_t nx = node_intern(m, pos + 1, m->npar[leaf]);
        if (m->failed || !closure(m, nx)) {
            m->failed = true;
            return 0;
        }
        uint32_t off = m->ncl_off[nx], cn = m->ncl_n[nx];
        if (n_out + cn > 4 * MAX_LEAVES) {
            /* ("a"?){2000}: every position reaches all the later ones, quadratic per byte */
            m->why = "the grammar is too ambiguous: one step reaches more than 65536 positions";
            m->failed = true;
            return 0;
        }
        if (!inf__grow(&m->tmp, &m->cap_tmp, n_out + cn + 1, sizeof(uint32_t), 64)) {
            m->failed = true;
            return 0;
        }
        copy_ids(m->tmp + n_out, m->pool + off, cn);
        n_out += cn;
    }
    r = state_intern(m, n_out);
    if (!map_put(&m->trans, key, r)) {
        m->failed = true;
        return 0;
    }
done:
    if (m->st_dense[s] != NO_DENSE) {
        m->dense[(size_t)m->st_dense[s] * 256 + b] = r;
    } else if (++m->st_uses[s] >= DENSE_AFTER && m->n_dense < DENSE_MAX) {
        make_dense(m, s);
    }
    return r;
}

static bool state_can_end(const struct inf_matcher *m, uint32_t s)
{
    return (m->st_flags[s] & ST_END) != 0;
}

static uint32_t start_state(struct inf_matcher *m)
{
    const struct inf_grammar *g = m->g;
    size_t n_out = 0;
    for (uint32_t a = g->rule_alt[g->root]; a < g->rule_alt[g->root + 1]; a++) {
        uint32_t x = node_intern(m, g->alts[a], 0);
        if (m->failed || !closure(m, x)) {
            m->failed = true;
            return 0;
        }
        uint32_t off = m->ncl_off[x], cn = m->ncl_n[x];
        if (!inf__grow(&m->tmp, &m->cap_tmp, n_out + cn + 1, sizeof(uint32_t), 64)) {
            m->failed = true;
            return 0;
        }
        copy_ids(m->tmp + n_out, m->pool + off, cn);
        n_out += cn;
    }
    return state_intern(m, n_out);
}

static void tables_release(struct inf_matcher *m)
{
    free(m->npos);
    free(m->npar);
    free(m->ndep);
    free(m->ncl_off);
    free(m->ncl_n);
    free(m->ncanon);
    free(m->nstate);
    free(m->st_canon);
    free(m->st_u8run);
    free(m->st_a8);
    free(m->st_cover8);
    m->st_a8 = NULL;
    m->st_cover8 = NULL;
    m->ncanon = m->nstate = m->st_canon = m->st_u8run = NULL;
    free(m->stamp);
    free(m->pool);
    free(m->st_off);
    free(m->st_n);
    free(m->st_flags);
    free(m->st_cut);
    free(m->st_cuts_off);
    free(m->cut_pool);
    m->st_cut = m->st_cuts_off = m->cut_pool = NULL;
    m->n_cut_pool = m->cap_cut_pool = 0;
    free(m->st_dense);
    free(m->st_uses);
    free(m->dense);
    free(m->rinfo);
    m->rinfo = NULL;
    m->cap_rinfo = 0;
    m->st_dense = m->dense = NULL;
    m->st_uses = NULL;
    m->n_dense = m->cap_dense = 0;
    free(m->part_esc_off);
    free(m->part_esc_n);
    free(m->part_run);
    m->part_run = NULL;
    free(m->part_key);
    free(m->part_tick);
    m->part_key = NULL;
    m->part_tick = NULL;
    free(m->esc);
    map_free(&m->part_map);
    map_clear(&m->cont_map);
    m->n_cont = m->n_ctoks = m->n_cesc = 0;
    m->st_flags = NULL;
    m->part_esc_off = m->part_esc_n = m->esc = NULL;
    m->n_parts = m->n_esc = m->cap_esc = 0;
    map_free(&m->node_map);
    map_free(&m->state_map);
    map_free(&m->trans);
    map_free(&m->mask_map);
    m->npos = m->npar = m->ndep = m->ncl_off = m->ncl_n = m->stamp = m->pool = m->st_off = m->st_n =
        NULL;
    m->n_nodes = m->cap_nodes = m->cap_stamp = m->n_pool = m->cap_pool = 0;
    m->n_states = m->cap_states = 0;
    m->n_masks = 0;
    m->gen = 0;
}

/* Fresh tables holding the empty stack, the dead state and the start state. */
static bool tables_init(struct inf_matcher *m)
{
    m->failed = false;
    m->why = NULL;
    /* node 0: the empty stack (its position is never read) */
    size_t c = 0;
    if (!inf__grow(&m->npos, &c, 1, sizeof(uint32_t), 1024))
        return false;
    m->npos[0] = UINT32_MAX;
    m->cap_nodes = c;
    c = 0;
    if (!inf__grow(&m->npar, &c, m->cap_nodes, sizeof(uint32_t), 1024) ||
        !inf__grow(&m->ndep, &(size_t){0}, m->cap_nodes, sizeof(uint32_t), 1024) ||
        !inf__grow(&m->ncl_off, &(size_t){0}, m->cap_nodes, sizeof(uint32_t), 1024) ||
        !inf__grow(&m->ncl_n, &(size_t){0}, m->cap_nodes, sizeof(uint32_t), 1024) ||
        !inf__grow(&m->ncanon, &(size_t){0}, m->cap_nodes, sizeof(uint32_t), 1024) ||
        !inf__grow(&m->nstate, &(size_t){0}, m->cap_nodes, sizeof(uint32_t), 1024))
        return false;
    m->ncanon[0] = 0;
    m->nstate[0] = NO_STATE;
    m->npar[0] = 0;
    m->ndep[0] = 0;
    m->ncl_off[0] = NO_CLOSURE;
    m->n_nodes = 1;
    /* state 0: dead */
    c = 0;
    if (!inf__grow(&m->st_off, &c, 1, sizeof(uint32_t), 256) ||
        !inf__grow(&m->st_n, &(size_t){0}, c, sizeof(uint32_t), 256) ||
        !inf__grow(&m->st_flags, &(size_t){0}, c, sizeof(uint8_t), 256) ||
        !inf__grow(&m->st_dense, &(size_t){0}, c, sizeof(uint32_t), 256) ||
        !inf__grow(&m->st_uses, &(size_t){0}, c, sizeof(uint16_t), 256) ||
        !inf__grow(&m->st_cut, &(size_t){0}, c, sizeof(uint32_t), 256) ||
        !inf__grow(&m->st_canon, &(size_t){0}, c, sizeof(uint32_t), 256) ||
        !inf__grow(&m->st_u8run, &(size_t){0}, c, sizeof(uint32_t), 256) ||
        !inf__grow(&m->st_a8, &(size_t){0}, c, 2 * sizeof(uint64_t), 256) ||
        !inf__grow(&m->st_cover8, &(size_t){0}, c, sizeof(uint32_t), 256) ||
        !inf__grow(&m->st_cuts_off, &(size_t){0}, c, sizeof(uint32_t), 256))
        return false;
    m->st_cut[0] = NO_CUT;
    m->st_canon[0] = 0;
    m->st_u8run[0] = U8_NONE;
    m->st_dense[0] = NO_DENSE;
    m->st_uses[0] = 0;
    m->cap_states = c;
    m->st_off[0] = 0;
    m->st_n[0] = 0;
    m->st_flags[0] = 0;
    m->part_esc_off = malloc(CUT_CACHE_MAX * sizeof(uint32_t));
    m->part_esc_n = malloc(CUT_CACHE_MAX * sizeof(uint32_t));
    m->part_key = malloc(CUT_CACHE_MAX * sizeof(uint32_t));
    m->part_tick = malloc(CUT_CACHE_MAX * sizeof(uint64_t));
    m->part_run = malloc(CUT_CACHE_MAX * sizeof(*m->part_run));
    if (!m->part_esc_off || !m->part_esc_n || !m->part_key || !m->part_tick || !m->part_run)
        return false;
    m->n_states = 1;
    m->start = start_state(m);
    return !m->failed;
}

void inf_matcher_free(struct inf_matcher *m)
{
    if (!m)
        return;
    tables_release(m);
    free(m->tmp);
    free(m->sortbuf);
    free(m->ctmp);
    free(m->dfs);
    free(m->walk);
    free(m->masks);
    free(m->parts);
    free(m->cuts);
    map_free(&m->cont_map);
    free(m->cont_ent);
    free(m->cont_toks);
    free(m->cont_esc);
    free(m->scratch);
    free(m->apply_mask);
    free(m->chain_d);
    free(m);
}

static bool chain_links(struct inf_matcher *m);

inf_status inf_matcher_new(const struct inf_grammar *g, const struct inf_grammar_vocab *v,
                           struct inf_matcher **out, struct inf_error *err)
{
    *out = NULL;
    struct inf_matcher *m = calloc(1, sizeof(*m));
    if (!m)
        return inf_error_set(err, INF_ENOMEM, "grammar: out of memory");
    m->g = g;
    m->voc = v;
    m->trace = getenv("INFERNO_GRAMMAR_TRACE") != NULL;
    if (v) {
        m->words = ((size_t)v->n_vocab + 31) / 32;
        m->walk = malloc(((size_t)v->max_depth + 1) * sizeof(uint32_t));
        if (!m->walk) {
            inf_matcher_free(m);
            return inf_error_set(err, INF_ENOMEM, "grammar: out of memory");
        }
    }
    if (!chain_links(m)) {
        inf_matcher_free(m);
        return inf_error_set(err, INF_ENOMEM, "grammar: out of memory");
    }
    if (!tables_init(m)) {
        inf_status rc =
            m->why ? inf_error_set(err, INF_ELIMIT, "grammar: %s", m->why)
                   : inf_error_set(err, INF_ENOMEM, "grammar: out of memory starting the matcher");
        inf_matcher_free(m);
        return rc;
    }
    m->cur = m->start;
    *out = m;
    return INF_OK;
}

void inf_matcher_reset(struct inf_matcher *m)
{
    m->cur = m->start;
    m->done = false;
}

/*
 * The tables only grow; past their limits, rebuild them keeping the current state's stacks.
 * Stacks are copied out as position chains and interned again.
 */
static void maybe_compact(struct inf_matcher *m)
{
    if (m->n_nodes < max_nodes && m->n_states < max_states && m->n_pool < max_pool)
        return;
    uint32_t s = m->cur;
    size_t n_leaves = m->st_n[s];
    /* chains: for each leaf, positions from the top down, 0-terminated by UINT32_MAX */
    uint32_t *chains = NULL;
    size_t n_ch = 0, cap_ch = 0;
    bool ok = true;
    for (size_t i = 0; ok && i < n_leaves; i++) {
        for (uint32_t x = m->pool[m->st_off[s] + i]; ok && x != 0; x = m->npar[x])
            ok = push_u32(&chains, &n_ch, &cap_ch, m->npos[x]);
        ok = ok && push_u32(&chains, &n_ch, &cap_ch, UINT32_MAX);
    }
    if (!ok) {
        free(chains);
        return; /* keep the big tables rather than lose the state */
    }
    tables_release(m);
    if (!tables_init(m)) {
        free(chains);
        m->failed = true;
        return;
    }
    /* re-intern each chain bottom-up */
    size_t n_out = 0, i = 0;
    uint32_t *leaves = malloc((n_leaves + 1) * sizeof(uint32_t));
    if (!leaves) {
        free(chains);
        m->failed = true;
        return;
    }
    while (i < n_ch) {
        size_t j = i;
        while (chains[j] != UINT32_MAX)
            j++;
        uint32_t x = 0;
        for (size_t k = j; k > i; k--)
            x = node_intern(m, chains[k - 1], x);
        leaves[n_out++] = x;
        i = j + 1;
    }
    free(chains);
    if (!inf__grow(&m->tmp, &m->cap_tmp, n_out + 1, sizeof(uint32_t), 64)) {
        free(leaves);
        m->failed = true;
        return;
    }
    copy_ids(m->tmp, leaves, n_out);
    free(leaves);
    m->cur = state_intern(m, n_out);
}

bool inf_matcher_accept_bytes(struct inf_matcher *m, const char *bytes, size_t len)
{
    if (m->done || m->failed)
        return false;
    if (len == 0)
        return true;
    uint32_t s = m->cur;
    for (size_t i = 0; i < len && s; i++)
        s = step(m, s, (unsigned char)bytes[i]);
    if (!s || m->failed)
        return false;
    m->cur = s;
    maybe_compact(m);
    return true;
}

const char *inf_matcher_errmsg(const struct inf_matcher *m)
{
    if (!m->failed)
        return "";
    return m->why ? m->why : "out of memory";
}

bool inf_matcher_can_end(const struct inf_matcher *m)
{
    return !m->failed && (m->done || state_can_end(m, m->cur));
}

bool inf_matcher_is_done(const struct inf_matcher *m)
{
    return m->done || m->failed || (m->st_n[m->cur] == 1 && state_can_end(m, m->cur));
}

bool inf_matcher_accept_token(struct inf_matcher *m, inf_token tok)
{
    if (!m->voc || m->done || m->failed || tok < 0 || tok >= m->voc->n_vocab)
        return false;
    if (inf_tok_is_eog(m->voc->tok, tok)) {
        if (!state_can_end(m, m->cur))
            return false;
        m->done = true;
        return true;
    }
    size_t len;
    const char *p = inf_tok_piece(m->voc->tok, tok, false, &len);
    if (!p || len == 0)
        return false;
    return inf_matcher_accept_bytes(m, p, len);
}

static bool record_escapes(struct inf_matcher *m, uint32_t node, uint32_t t)
{
    for (uint32_t k = 0; k < m->st_n[t]; k++) {
        uint32_t leaf = m->pool[m->st_off[t] + k];
        if (leaf == 0 || m->npos[leaf] != MARK_POS)
            continue;
        if (!inf__grow(&m->esc, &m->cap_esc, m->n_esc + 2, sizeof(uint32_t), 256))
            return false;
        m->esc[m->n_esc++] = node;
        m->esc[m->n_esc++] = m->npar[leaf];
    }
    return true;
}

/*
 * Walk the trie below node root (exclusive) from state s, the state at root: set the tokens
 * allowed. With record, note where a state holds cut nodes (and the node has children).
 */
static void walk_in(struct inf_matcher *m, const struct tnode *nd, const int32_t *toks,
                    const uint32_t *orig, uint32_t root, uint32_t s, uint32_t *mask, bool record,
                    const uint64_t *first)
{
    const struct inf_grammar_vocab *v = m->voc;
    uint32_t *st = m->walk;
    st[nd[root].depth] = s;
    if (record && (m->st_flags[s] & ST_MARK) && nd[root].next > root + 1 &&
        !record_escapes(m, orig ? orig[root] : root, s)) {
        m->failed = true;
        return;
    }
    uint32_t i = root + 1, end = nd[root].next;
    m->walked++;
    const unsigned d1 = nd[root].depth + 1u;
    while (i < end) {
        m->visited++;
        const struct tnode *x = &nd[i];
        if (first && x->depth == d1 && !((first[x->byte >> 6] >> (x->byte & 63)) & 1u)) {
            i = x->next; /* not a first byte this walk takes */
            continue;
        }
        uint32_t ps = st[x->depth - 1], row = m->st_dense[ps];
        if (row == NO_DENSE && x->next - i > DENSE_SUBTREE && m->n_dense < DENSE_MAX) {
            /* a wide subtree ahead: the row's shortcuts pay for it at once */
            make_dense(m, ps);
            if (m->failed)
                return;
            row = m->st_dense[ps];
        }
        if (row != NO_DENSE) {
            uint32_t cover = m->rinfo[row].cover, sg = x->sig;
            if (!(sg & (cover >> 16)) &&
                (!(sg & ~cover) || byteset_within(&v->sub[orig ? orig[i] : i], &m->rinfo[row].u)) &&
                x->height <= state_run(m, ps)) {
                /* every token below i is bytes of u, no longer than the run: all allowed
                   (and none needs a cut's continuation: the tokens it could add are these) */
                for (uint32_t k = x->tf; k < nd[x->next].tf; k++)
                    mask[toks[k] >> 5] |= 1u << (toks[k] & 31);
                i = x->next;
                continue;
            }
            if (x->u8ok && (sg & BUCKET_HI)) {
                uint32_t r8 = u8_run(m, ps);
                if (m->failed)
                    return;
                uint32_t c8 = m->st_cover8[ps], sa = sg & ~BUCKET_HI, oi = orig ? orig[i] : i;
                if (r8 != U8_NONE && x->height <= r8 && !(sa & (c8 >> 16)) &&
                    (!(sa & ~c8) || (!(v->sub[oi].w[0] & ~m->st_a8[2 * ps]) &&
                                     !(v->sub[oi].w[1] & ~m->st_a8[2 * ps + 1])))) {
                    /* the same for text: every path below is characters the state takes,
                       as many as it takes in a row */
                    for (uint32_t k = x->tf; k < nd[x->next].tf; k++)
                        mask[toks[k] >> 5] |= 1u << (toks[k] & 31);
                    i = x->next;
                    continue;
                }
            }
        }
        uint32_t t = step(m, ps, x->byte);
        if (!t) {
            i = x->next;
            continue;
        }
        st[x->depth] = t;
        for (uint32_t k = x->tf; k < nd[i + 1].tf; k++)
            mask[toks[k] >> 5] |= 1u << (toks[k] & 31);
        if (record && (m->st_flags[t] & ST_MARK) && x->next > i + 1 &&
            !record_escapes(m, orig ? orig[i] : i, t)) {
            m->failed = true;
            return;
        }
        i++;
    }
}

static void walk(struct inf_matcher *m, uint32_t root, uint32_t s, uint32_t *mask, bool record)
{
    walk_in(m, m->voc->nodes, m->voc->toks, NULL, root, s, mask, record, NULL);
}

/* ---- text loops -----------------------------------------------------------------------------
 * A state is a set of stacks, each stepping on its own: the state after a byte is the union of
 * what each stack leads to, so a token is allowed when one part of the state allows it. A part
 * c that takes every character of JSON string text (an unescaped ASCII one or any multibyte one)
 * and holds all of c again after it allows every text token, whatever the rest of the state
 * does. An unanchored pattern (`any* [0-9a-f]{64} any*`) has such a part, its leading `any*`,
 * in every state of the count, while the state as a whole takes hex digits and other
 * characters to different states (so it has no u8_run): its mask is the text set and a walk of
 * the other tokens, not a walk of the whole trie at each of the 64 places. */

/* The ASCII bytes JSON string text takes unescaped: 0x20..0x7F but the quote and backslash. */
static const uint64_t text_a8[2] = {0xFFFFFFFB00000000ull, 0xFFFFFFFFEFFFFFFFull};

/* Whether state t holds every leaf of state c (both sorted). */
static bool state_holds(const struct inf_matcher *m, uint32_t t, uint32_t c)
{
    const uint32_t *a = m->pool + m->st_off[t], *b = m->pool + m->st_off[c];
    uint32_t na = m->st_n[t], nb = m->st_n[c], i = 0;
    for (uint32_t j = 0; j < nb; j++) {
        while (i < na && a[i] < b[j])
            i++;
        if (i == na || a[i] != b[j])
            return false;
    }
    return true;
}

/* Whether c takes every text character (see above) and holds all of c after each; cached in
   the state's flags. Multibyte characters are followed through their (UTF-8 state, state)
   pairs, at most 24 of them, as in u8_succ. */
static bool text_loop(struct inf_matcher *m, uint32_t c)
{
    if (m->st_flags[c] & ST_LCHK)
        return (m->st_flags[c] & ST_LOOP) != 0;
    uint32_t qs[24], xs[24], to[256];
    uint8_t reps[256], cls[256];
    size_t n = 0;
    bool ok = true;
    for (size_t k = 0; ok; k++) {
        /* k == 0: the ASCII and lead bytes from c; then the continuation bytes of pair k - 1 */
        uint32_t x = k == 0 ? c : xs[k - 1];
        unsigned q0 = k == 0 ? 0 : qs[k - 1], lo = k == 0 ? 0x20 : 0x80, hi = k == 0 ? 0xF5 : 0xC0;
        unsigned nc = byte_classes(m, x, lo, hi, reps, cls);
        if (nc == 0) {
            ok = false;
            break;
        }
        for (unsigned j = 0; j < nc; j++) {
            to[j] = step(m, x, reps[j]);
            if (m->failed)
                return false;
        }
        for (unsigned b = lo; b < hi && ok; b++) {
            if (b < 0x80 && !((text_a8[b >> 6] >> (b & 63)) & 1u))
                continue;
            unsigned q = u8_next(q0, b);
            if (q == U8_REJECT)
                continue;
            uint32_t x2 = to[cls[b - lo]];
            if (!x2) {
                ok = false;
            } else if (q == 0) {
                ok = state_holds(m, x2, c);
            } else {
                size_t j = 0;
                while (j < n && (qs[j] != q || xs[j] != x2))
                    j++;
                if (j == n) {
                    if (n == 24) {
                        ok = false;
                    } else {
                        qs[n] = q;
                        xs[n++] = x2;
                    }
                }
            }
        }
        if (k == n)
            break;
    }
    m->st_flags[c] |= ST_LCHK | (ok ? ST_LOOP : 0);
    return ok;
}

/* A text loop among the stacks of s: the leaves with one parent, for each parent of a leaf that
   takes every text byte (a loop's character class); 0 when none is. */
static uint32_t text_loop_in(struct inf_matcher *m, uint32_t s)
{
    const struct inf_grammar *g = m->g;
    uint32_t tried[8], n_tried = 0, n = m->st_n[s];
    for (uint32_t k = 0; k < n; k++) {
        uint32_t x = m->pool[m->st_off[s] + k];
        if (x == 0 || m->npos[x] == MARK_POS)
            continue;
        const struct inf__byteset *set = &g->sets[g->elems[m->npos[x]].arg];
        if ((text_a8[0] & ~set->w[0]) | (text_a8[1] & ~set->w[1]))
            continue;
        uint32_t p = m->npar[x], j = 0;
        while (j < n_tried && tried[j] != p)
            j++;
        if (j < n_tried)
            continue;
        if (n_tried == 8)
            break;
        tried[n_tried++] = p;
        size_t cnt = 0;
        for (uint32_t i = 0; i < n; i++) {
            uint32_t y = m->pool[m->st_off[s] + i];
            if (y && m->npos[y] != MARK_POS && m->npar[y] == p &&
                !push_u32(&m->ctmp, &cnt, &m->cap_ctmp, y)) {
                m->failed = true;
                return 0;
            }
        }
        if (!inf__grow(&m->tmp, &m->cap_tmp, cnt + 1, sizeof(uint32_t), 64)) {
            m->failed = true;
            return 0;
        }
        copy_ids(m->tmp, m->ctmp, cnt);
        uint32_t c = state_intern(m, cnt);
        if (m->failed)
            return 0;
        if (c && text_loop(m, c))
            return c;
        if (m->failed)
            return 0;
    }
    return 0;
}

/* The tokens of the text set of ASCII set a (those of at most n_chars characters; UINT32_MAX:
   all), and a walk of the others from s; false when the set cannot be made (the table is full,
   out of memory). */
static bool take_text_set(struct inf_matcher *m, const uint64_t a[2], uint32_t n_chars, uint32_t s,
                          uint32_t *mask, bool record)
{
    struct inf_grammar_vocab *v = (struct inf_grammar_vocab *)m->voc;
    const struct clean_set *c = clean_get(v, a);
    /* (no token has more characters than bytes: max_depth at most) */
    const uint32_t *bits = !c ? NULL : n_chars >= v->max_depth ? c->bits : len_bits(v, c, n_chars);
    if (!bits)
        return false;
    for (size_t k = 0; k < m->words; k++)
        mask[k] |= bits[k];
    walk_in(m, c->nodes, c->toks, c->orig, 0, s, mask, record, NULL);
    return true;
}

/* Whether state y takes a character of text: an ASCII byte of a or a multibyte lead byte. */
static bool takes_text(struct inf_matcher *m, uint32_t y, const uint64_t a[2])
{
    for (unsigned b = 0; b < 0xF5; b++) {
        if (b < 0x80 ? !((a[b >> 6] >> (b & 63)) & 1u) : b < 0xC2)
            continue;
        if (step(m, y, b) || m->failed)
            return true;
    }
    return false;
}

/*
 * Where the runs from s end (u8_run, one after another): the characters n, their ASCII set a
 * (what every state on the way takes), and whether text stops there: the state after them
 * takes no character of a nor a multibyte one, no state before it holds a cut, and it holds
 * at most one (whose index + 1 goes to *j1). A token of a's text set is then allowed exactly
 * when it has at most n characters, but for those the cut's continuation takes further
 * (add_state asks it). False otherwise, or past 254 characters.
 */
static bool run_end(struct inf_matcher *m, uint32_t s, uint32_t *n, uint64_t a[2], uint32_t *j1)
{
    uint32_t y = s, total = 0;
    a[0] = a[1] = ~0ull;
    for (;;) {
        uint32_t r = u8_run(m, y);
        if (m->failed || r == RUN_INF)
            return false;
        if (r == U8_NONE)
            break;
        a[0] &= m->st_a8[2 * y];
        a[1] &= m->st_a8[2 * y + 1];
        if (!a[0] && !a[1])
            return false;
        unsigned rep =
            a[0] ? (unsigned)__builtin_ctzll(a[0]) : 64 + (unsigned)__builtin_ctzll(a[1]);
        for (uint32_t k = 0; k < r; k++) {
            if (m->st_flags[y] & ST_MARK)
                return false;
            if (!(y = step(m, y, rep)) || m->failed)
                return false;
        }
        if ((total += r) >= 255)
            return false;
    }
    if (total == 0 || takes_text(m, y, a) || m->failed)
        return false;
    *j1 = 0;
    for (uint32_t k = 0; k < m->st_n[y]; k++) {
        uint32_t x = m->pool[m->st_off[y] + k];
        if (x && m->npos[x] == MARK_POS) {
            if (*j1)
                return false;
            *j1 = m->npar[x] + 1;
        }
    }
    *n = total;
    return true;
}

/* walk from the trie's root; a state that takes any text of some ASCII set A takes the
   vocabulary's text set of A at once, and only the other tokens are walked. */
static void walk_root(struct inf_matcher *m, uint32_t s, uint32_t *mask, bool record)
{
    uint32_t r8 = s ? u8_run(m, s) : U8_NONE;
    if (m->failed)
        return;
    if (s &&
        (r8 != RUN_INF || (text_a8[0] & ~m->st_a8[2 * s]) || (text_a8[1] & ~m->st_a8[2 * s + 1]))) {
        /* no loop over all of text: a text loop among the stacks takes its set at once */
        if (text_loop_in(m, s) && take_text_set(m, text_a8, UINT32_MAX, s, mask, record))
            return;
        if (m->failed)
            return;
    }
    uint32_t n, j1;
    uint64_t ra[2];
    if (s && r8 != RUN_INF && r8 != U8_NONE && run_end(m, s, &n, ra, &j1) && (record || !j1) &&
        take_text_set(m, ra, n, s, mask, record)) {
        /* the last characters of a count: the text set's tokens of at most n of them */
        if (j1)
            m->run = (struct part_run){j1, {ra[0], ra[1]}};
        return;
    }
    if (m->failed)
        return;
    if (r8 == RUN_INF) {
        uint64_t a[2] = {m->st_a8[2 * s], m->st_a8[2 * s + 1]}, a1[2];
        /* s takes the first character of a set and then goes to a loop y of a wider set
           (a key that is not a declared name: any character but the names' first ones, then
           any): the tokens of y's text set, but for those whose first byte s does not take
           to y, which are walked in the main trie (y's set is the common one; s's own would
           be a new text set with every token holding such a byte outside it) */
        uint32_t y = u8_succ(m, s, a1);
        if (m->failed)
            return;
        if (y && y != s && u8_run(m, y) == RUN_INF && !m->failed &&
            ((a[0] & ~m->st_a8[2 * y]) | (a[1] & ~m->st_a8[2 * y + 1])) == 0 &&
            (a[0] != m->st_a8[2 * y] || a[1] != m->st_a8[2 * y + 1])) {
            uint64_t ay[2] = {m->st_a8[2 * y], m->st_a8[2 * y + 1]};
            const struct clean_set *c = clean_get((struct inf_grammar_vocab *)m->voc, ay);
            if (c && (m->scratch || (m->scratch = calloc(m->words, sizeof(uint32_t))))) {
                const struct tnode *nd = m->voc->nodes;
                const int32_t *toks = m->voc->toks;
                /* the first bytes s takes elsewhere: ay but not a1 */
                uint64_t ex[4] = {ay[0] & ~a1[0], ay[1] & ~a1[1], 0, 0}, rest[4];
                for (int k = 0; k < 4; k++)
                    rest[k] = ~ex[k];
                uint32_t *sc = m->scratch;
                copy_ids(sc, c->bits, m->words);
                for (uint32_t i = 1; i < nd[0].next; i = nd[i].next)
                    if ((ex[nd[i].byte >> 6] >> (nd[i].byte & 63)) & 1u)
                        for (uint32_t k = nd[i].tf; k < nd[nd[i].next].tf; k++)
                            sc[toks[k] >> 5] &= ~(1u << (toks[k] & 31));
                for (size_t k = 0; k < m->words; k++) {
                    mask[k] |= sc[k];
                    sc[k] = 0;
                }
                walk_in(m, c->nodes, c->toks, c->orig, 0, s, mask, record, rest);
                walk_in(m, nd, toks, NULL, 0, s, mask, record, ex);
                return;
            }
        }
        if (take_text_set(m, a, UINT32_MAX, s, mask, record))
            return;
    }
    walk(m, 0, s, mask, record);
}

/* s with every stack cut at one level: the frames deeper than the shallowest leaf's parent are
   kept, the node at that level becomes a cut marker (index j); m->cuts gets the real nodes the
   markers stand for. A string body's leaves sit a few frames above the string's caller, its
   closing quote one frame above: all are cut at the caller, whatever the caller is. */
static uint32_t cut_level(const struct inf_matcher *m, uint32_t s)
{
    uint32_t level = UINT32_MAX;
    for (uint32_t k = 0; k < m->st_n[s]; k++) {
        uint32_t x = m->pool[m->st_off[s] + k];
        if (x != 0 && m->ndep[x] < level)
            level = m->ndep[x];
    }
    return level == UINT32_MAX || level == 0 ? 0 : level - 1;
}

static uint32_t cut_state_compute(struct inf_matcher *m, uint32_t s, uint32_t level)
{
    size_t n_out = 0;
    m->n_cuts = 0;
    for (uint32_t k = 0; k < m->st_n[s]; k++) {
        uint32_t x = m->pool[m->st_off[s] + k], y = x;
        if (x != 0 && level > 0) {
            uint32_t r = x, n_keep = 0;
            while (m->ndep[r] > level) {
                if (!push_u32(&m->dfs, &(size_t){n_keep}, &m->cap_dfs, r))
                    goto oom;
                n_keep++;
                r = m->npar[r];
            }
            uint32_t j = 0;
            while (j < m->n_cuts && m->cuts[j] != r)
                j++;
            if (j == m->n_cuts && !push_u32(&m->cuts, &m->n_cuts, &m->cap_cuts, r))
                goto oom;
            y = node_intern(m, MARK_POS, j);
            for (uint32_t q = n_keep; q > 0; q--)
                y = node_intern(m, m->npos[m->dfs[q - 1]], y);
            if (m->failed)
                return 0;
        }
        /* built in ctmp: state_intern sorts tmp */
        if (!push_u32(&m->ctmp, &n_out, &m->cap_ctmp, y))
            goto oom;
    }
    if (!inf__grow(&m->tmp, &m->cap_tmp, n_out + 1, sizeof(uint32_t), 64))
        goto oom;
    copy_ids(m->tmp, m->ctmp, n_out);
    return state_intern(m, n_out);
oom:
    m->failed = true;
    return 0;
}

/* s cut at `level`, remembered as s's cut state (cut_state's). */
static uint32_t cut_state_set(struct inf_matcher *m, uint32_t s, uint32_t level)
{
    uint32_t t = cut_state_compute(m, s, level);
    if (m->failed)
        return 0;
    if (!inf__grow(&m->cut_pool, &m->cap_cut_pool, m->n_cut_pool + m->n_cuts + 1, sizeof(uint32_t),
                   1024)) {
        m->failed = true;
        return 0;
    }
    m->st_cuts_off[s] = (uint32_t)m->n_cut_pool;
    m->cut_pool[m->n_cut_pool++] = (uint32_t)m->n_cuts;
    copy_ids(m->cut_pool + m->n_cut_pool, m->cuts, m->n_cuts);
    m->n_cut_pool += m->n_cuts;
    m->st_cut[s] = t;
    return t;
}

/* cut_state_compute at cut_level, remembered per state: the cut state, and m->cuts /
   m->n_cuts set. */
static uint32_t cut_state(struct inf_matcher *m, uint32_t s)
{
    if (m->st_cut[s] != NO_CUT) {
        uint32_t off = m->st_cuts_off[s], n = m->cut_pool[off];
        if (!inf__grow(&m->cuts, &m->cap_cuts, (size_t)n + 1, sizeof(uint32_t), 16)) {
            m->failed = true;
            return 0;
        }
        copy_ids(m->cuts, m->cut_pool + off + 1, n);
        m->n_cuts = n;
        return m->st_cut[s];
    }
    return cut_state_set(m, s, cut_level(m, s));
}

/* The state of node x's closure (the continuation a cut stands for). */
static uint32_t node_state(struct inf_matcher *m, uint32_t x)
{
    if (m->nstate[x] != NO_STATE)
        return m->nstate[x];
    if (!closure(m, x)) {
        m->failed = true;
        return 0;
    }
    uint32_t off = m->ncl_off[x], cn = m->ncl_n[x];
    if (!inf__grow(&m->tmp, &m->cap_tmp, cn + 1, sizeof(uint32_t), 64)) {
        m->failed = true;
        return 0;
    }
    copy_ids(m->tmp, m->pool + off, cn);
    uint32_t st = state_intern(m, cn);
    if (!m->failed)
        m->nstate[x] = st;
    return st;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The structure of cut state t (rule hashes and offsets along each kept chain, cut indices), as
   two independent 64-bit hashes; false when a chain passes a recursive rule (no hash). */
static bool cut_signature(struct inf_matcher *m, uint32_t t, uint64_t sig[2])
{
    const struct inf_grammar *g = m->g;
    uint32_t n = m->st_n[t];
    uint64_t *ls = malloc(2 * (size_t)n * sizeof(uint64_t) + 1);
    if (!ls)
        return false;
    for (uint32_t k = 0; k < n; k++) {
        uint32_t y = m->pool[m->st_off[t] + k];
        uint64_t h1 = 0x243F6A8885A308D3ull, h2 = 0x13198A2E03707344ull;
        for (; y != 0 && m->npos[y] != MARK_POS; y = m->npar[y]) {
            uint32_t pos = m->npos[y], r = g->el_rule[pos];
            if (!g->rule_hash[r]) {
                free(ls);
                return false;
            }
            h1 = inf__mix64(inf__mix64(h1, g->rule_hash[r]), g->el_off[pos]);
            h2 = inf__mix64(inf__mix64(h2 ^ 0xA5A5A5A5u, g->el_off[pos]), g->rule_hash[r]);
        }
        uint64_t end = y == 0 ? 0xFFFFFFFFFFull : m->npar[y];
        ls[k] = inf__mix64(h1, end);
        ls[n + k] = inf__mix64(h2, end + 7);
    }
    qsort(ls, n, sizeof(uint64_t), cmp_u64);
    qsort(ls + n, n, sizeof(uint64_t), cmp_u64);
    sig[0] = inf__mix64(0x452821E638D01377ull, n);
    sig[1] = inf__mix64(0xBE5466CF34E90C6Cull, n);
    for (uint32_t k = 0; k < n; k++) {
        sig[0] = inf__mix64(sig[0], ls[k]);
        sig[1] = inf__mix64(sig[1], ls[n + k]);
    }
    free(ls);
    return true;
}

/* Copy a shared part into the current slot's bits and escapes; false when absent. */
static bool shared_get(struct inf_matcher *m, const uint64_t sig[2], uint32_t *bits)
{
    struct inf_grammar_vocab *v = (struct inf_grammar_vocab *)m->voc;
    bool found = false;
    pthread_mutex_lock(&v->lock);
    for (uint32_t i = 0; i < v->n_shared; i++) {
        struct shared_part *p = &v->shared[i];
        if (p->sig[0] != sig[0] || p->sig[1] != sig[1])
            continue;
        if (!inf__grow(&m->esc, &m->cap_esc, m->n_esc + p->n_esc + 1, sizeof(uint32_t), 256))
            break;
        p->used = ++v->tick;
        copy_ids(bits, p->bits, m->words);
        copy_ids(m->esc + m->n_esc, p->esc, p->n_esc);
        m->n_esc += p->n_esc;
        found = true;
        break;
    }
    pthread_mutex_unlock(&v->lock);
    return found;
}

static void shared_put(struct inf_matcher *m, const uint64_t sig[2], const uint32_t *bits,
                       const uint32_t *esc, uint32_t n_esc)
{
    struct inf_grammar_vocab *v = (struct inf_grammar_vocab *)m->voc;
    uint32_t *b = malloc(m->words * sizeof(uint32_t)), *e = malloc((n_esc + 1) * sizeof(uint32_t));
    if (!b || !e) {
        free(b);
        free(e);
        return;
    }
    copy_ids(b, bits, m->words);
    copy_ids(e, esc, n_esc);
    pthread_mutex_lock(&v->lock);
    uint32_t i = 0;
    if (v->n_shared < SHARED_MAX) {
        i = v->n_shared++;
    } else {
        for (uint32_t k = 1; k < SHARED_MAX; k++)
            if (v->shared[k].used < v->shared[i].used)
                i = k;
    }
    if (v->shared[i].bits) {
        free(v->shared[i].bits);
        free(v->shared[i].esc);
    }
    v->shared[i] = (struct shared_part){{sig[0], sig[1]}, b, e, n_esc, ++v->tick};
    pthread_mutex_unlock(&v->lock);
}

/* OR into mask the tokens state s allows (end tokens aside): the part of its cut state, cached
   and shared, then the continuations of the part's escapes. */
static void walk_cont(struct inf_matcher *m, uint32_t node, uint32_t c, uint32_t *mask, int depth);

/* The part cache is full: keep the half used most recently (slots and escapes compacted). */
static void evict_parts(struct inf_matcher *m)
{
    size_t n = m->n_parts, w = m->words, kept = 0, esc = 0;
    uint64_t *ticks = malloc(n * sizeof(uint64_t));
    uint32_t *e2 = malloc((m->n_esc + 1) * sizeof(uint32_t));
    map_clear(&m->part_map);
    if (!ticks || !e2) {
        free(ticks);
        free(e2);
        m->n_parts = m->n_esc = 0;
        return;
    }
    copy_ids(e2, m->esc, m->n_esc);
    for (size_t i = 0; i < n; i++)
        ticks[i] = m->part_tick[i];
    /* the median tick by selection on a copy: sort is fine at this size */
    for (size_t i = 1; i < n; i++) {
        uint64_t x = ticks[i];
        size_t j = i;
        while (j > 0 && ticks[j - 1] > x) {
            ticks[j] = ticks[j - 1];
            j--;
        }
        ticks[j] = x;
    }
    uint64_t keep_from = ticks[n / 2];
    for (size_t i = 0; i < n; i++) {
        if (m->part_tick[i] < keep_from)
            continue;
        if (kept != i)
            memmove(m->parts + kept * w, m->parts + i * w, w * sizeof(uint32_t));
        if (m->part_esc_n[i])
            copy_ids(m->esc + esc, e2 + m->part_esc_off[i], m->part_esc_n[i]);
        m->part_esc_off[kept] = (uint32_t)esc;
        m->part_esc_n[kept] = m->part_esc_n[i];
        m->part_run[kept] = m->part_run[i];
        esc += m->part_esc_n[i];
        m->part_key[kept] = m->part_key[i];
        m->part_tick[kept] = m->part_tick[i];
        map_put(&m->part_map, (uint64_t)m->part_key[kept] + 1, (uint32_t)kept);
        kept++;
    }
    m->n_parts = kept;
    m->n_esc = esc;
    free(ticks);
    free(e2);
}

/* The cached part of cut state t (walked now when not cached); UINT32_MAX on failure. */
static uint32_t part_slot(struct inf_matcher *m, uint32_t t)
{
    size_t w = m->words;
    uint32_t slot;
    if (!map_get(&m->part_map, (uint64_t)t + 1, &slot)) {
        if (m->n_parts >= max_parts)
            evict_parts(m);
        if (!inf__grow(&m->parts, &m->cap_parts, (m->n_parts + 1) * w, sizeof(uint32_t), 8 * w)) {
            m->failed = true;
            return UINT32_MAX;
        }
        slot = (uint32_t)m->n_parts;
        uint32_t *bits = m->parts + (size_t)slot * w;
        memset(bits, 0, w * sizeof(uint32_t));
        m->part_esc_off[slot] = (uint32_t)m->n_esc;
        uint64_t sig[2];
        bool sharable = cut_signature(m, t, sig);
        m->run.j1 = 0;
        if (!sharable || !shared_get(m, sig, bits)) {
            walk_root(m, t, bits, true);
            /* (a part with a run's end is not shared: the shared entries keep escapes only) */
            if (sharable && !m->failed && !m->run.j1)
                shared_put(m, sig, bits, m->esc ? m->esc + m->part_esc_off[slot] : NULL,
                           (uint32_t)(m->n_esc - m->part_esc_off[slot]));
        }
        m->part_esc_n[slot] = (uint32_t)(m->n_esc - m->part_esc_off[slot]);
        m->part_run[slot] = m->run;
        m->part_key[slot] = t;
        if (m->failed || !map_put(&m->part_map, (uint64_t)t + 1, slot)) {
            m->failed = true;
            return UINT32_MAX;
        }
        m->n_parts++;
    }
    m->part_tick[slot] = ++m->tick;
    return slot;
}

#define CUT_RETRIES 3 /* shallower cuts add_state tries before it walks a state whole */

static void add_state(struct inf_matcher *m, uint32_t s, uint32_t *mask)
{
    size_t w = m->words;
    uint32_t t = cut_state(m, s), slot, off, n;
    const struct tnode *nd = m->voc->nodes;
    for (int tries = 0;; tries++) {
        /* the cut list is m->cuts until the next cut_state; escapes only walk */
        if (m->failed || (slot = part_slot(m, t)) == UINT32_MAX)
            return;
        off = m->part_esc_off[slot];
        n = m->part_esc_n[slot];
        /* many escapes: a cut inside a pattern's rules or a counted string's links rather
           than at the string's caller, so prefixes pop out of the kept frames almost
           everywhere, and the continuation walks, new in every place, would cost more than
           a walk of the whole state. A few escapes below most of the vocabulary (the space
           before a value) are continuations like any other: cached by the trie's shape. */
        bool wide = n > 2 * ESC_DIRECT;
        uint64_t below = 0;
        for (uint32_t k = 0; k < n && !wide; k += 2) {
            uint32_t node = m->esc[off + k];
            below += nd[nd[node].next].tf - nd[node + 1].tf;
        }
        wide |= n > 2 * ESC_FEW && below > (uint64_t)m->voc->n_vocab / ESC_DIRECT_SHARE;
        if (!wide)
            break;
        /* a frame further down may hold what pops out (a counted string's end and closing
           quote, both in the string's rule): that cut is the same wherever the string is */
        uint32_t level = m->n_cuts ? m->ndep[m->cuts[0]] : 0;
        if (tries == CUT_RETRIES || level <= 1) {
            walk_root(m, s, mask, false);
            return;
        }
        t = cut_state_set(m, s, level - 1);
    }
    if (m->part_run[slot].j1) {
        /* the part's run ends in cut j: its tokens longer than the run go on there, with a
           character of the run's set, so the continuation must take none (a closing quote) */
        struct part_run pr = m->part_run[slot];
        uint32_t c = pr.j1 - 1 < m->n_cuts ? node_state(m, m->cuts[pr.j1 - 1]) : 0;
        if (m->failed)
            return;
        if (c && takes_text(m, c, pr.a)) {
            walk_root(m, s, mask, false);
            return;
        }
    }
    const uint32_t *bits = m->parts + (size_t)slot * w;
    for (size_t k = 0; k < w; k++)
        mask[k] |= bits[k];
    size_t n_cuts = m->n_cuts;
    uint32_t *cs = malloc((2 * n_cuts + 1) * sizeof(uint32_t));
    if (!cs) {
        m->failed = true;
        return;
    }
    for (size_t j = 0; j < n_cuts; j++) {
        cs[j] = m->cuts[j];
        cs[n_cuts + j] = UINT32_MAX;
    }
    for (uint32_t k = 0; k < n && !m->failed; k += 2) {
        uint32_t node = m->esc[off + k], j = m->esc[off + k + 1];
        if (cs[n_cuts + j] == UINT32_MAX)
            cs[n_cuts + j] = node_state(m, cs[j]);
        if (cs[n_cuts + j])
            walk_cont(m, node, cs[n_cuts + j], mask, 0);
    }
    free(cs);
}

#define CONT_MAX_TOKS   (4u << 20)
#define CONT_ESC_DIRECT 16 /* a continuation's escapes past which its subtree is walked whole */

/* OR into mask what state c allows below trie node `node` (exclusive): from the cut of c, through
   the continuation cache, then the cache's own escapes from c's real cuts. */
static void walk_cont(struct inf_matcher *m, uint32_t node, uint32_t c, uint32_t *mask, int depth)
{
    const struct inf_grammar_vocab *v = m->voc;
    uint32_t ct = cut_state(m, c), e;
    if (m->failed)
        return;
    if (depth > 64) { /* continuations of continuations: a token is not that long; walk */
        walk(m, node, c, mask, false);
        return;
    }
    size_t n_cuts = m->n_cuts;
    uint32_t lc_small[16], *lc = n_cuts <= 16 ? lc_small : malloc(n_cuts * sizeof(uint32_t));
    if (!lc) {
        m->failed = true;
        return;
    }
    copy_ids(lc, m->cuts, n_cuts);
    /* keyed by the shape below node: tokens and escapes are kept relative to node */
    uint64_t key = (((uint64_t)ct << 32) | v->shape[node]) + 1;
    uint32_t base = v->nodes[node + 1].tf;
    if (map_get(&m->cont_map, key, &e)) {
        m->cont_hit++;
    } else {
        m->cont_new++;
        if (m->n_ctoks > CONT_MAX_TOKS) {
            map_clear(&m->cont_map);
            m->n_cont = m->n_ctoks = m->n_cesc = 0;
        }
        if (!m->scratch && !(m->scratch = calloc(m->words, sizeof(uint32_t))))
            goto oom;
        size_t esc0 = m->n_esc;
        walk(m, node, ct, m->scratch, true);
        if (m->failed)
            goto out;
        if (!inf__grow(&m->cont_ent, &m->cap_cont, 4 * (m->n_cont + 1), sizeof(uint32_t), 256))
            goto oom;
        uint32_t *ent = m->cont_ent + 4 * m->n_cont;
        ent[0] = (uint32_t)m->n_ctoks;
        for (uint32_t k = v->nodes[node + 1].tf; k < v->nodes[v->nodes[node].next].tf; k++) {
            int32_t t = v->toks[k];
            if (!((m->scratch[t >> 5] >> (t & 31)) & 1u))
                continue;
            m->scratch[t >> 5] &= ~(1u << (t & 31));
            if (!push_u32(&m->cont_toks, &m->n_ctoks, &m->cap_ctoks, k - base))
                goto oom;
        }
        ent = m->cont_ent + 4 * m->n_cont; /* cont_toks grew, cont_ent did not move */
        ent[1] = (uint32_t)m->n_ctoks - ent[0];
        ent[2] = (uint32_t)m->n_cesc;
        for (size_t k = esc0; k < m->n_esc; k++)
            if (!push_u32(&m->cont_esc, &m->n_cesc, &m->cap_cesc,
                          (k - esc0) % 2 ? m->esc[k] : m->esc[k] - node))
                goto oom;
        ent = m->cont_ent + 4 * m->n_cont;
        ent[3] = (uint32_t)m->n_cesc - ent[2];
        m->n_esc = esc0;
        e = (uint32_t)m->n_cont++;
        if (!map_put(&m->cont_map, key, e))
            goto oom;
    }
    const uint32_t *ent = m->cont_ent + 4 * (size_t)e;
    if (ent[3] > 2 * CONT_ESC_DIRECT) {
        /* escapes of escapes, each new where the continuation is: one plain walk of the
           subtree from the real state costs less */
        walk(m, node, c, mask, false);
        goto out;
    }
    for (uint32_t k = 0; k < ent[1]; k++) {
        int32_t t = v->toks[base + m->cont_toks[ent[0] + k]];
        mask[t >> 5] |= 1u << (t & 31);
    }
    uint32_t eo = ent[2], en = ent[3];
    for (uint32_t k = 0; k < en && !m->failed; k += 2) {
        uint32_t n2 = node + m->cont_esc[eo + k], j = m->cont_esc[eo + k + 1];
        uint32_t c2 = node_state(m, lc[j]);
        if (c2)
            walk_cont(m, n2, c2, mask, depth + 1);
    }
    goto out;
oom:
    m->failed = true;
out:
    if (lc != lc_small)
        free(lc);
}

static bool has_leaf(const struct inf_matcher *m, uint32_t s, uint32_t x)
{
    const uint32_t *l = m->pool + m->st_off[s];
    size_t lo = 0, hi = m->st_n[s];
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (l[mid] < x)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < m->st_n[s] && l[lo] == x;
}

#define MAX_GROUPS 8

/*
 * Split s when its cut state is new: the stacks that pass through a frame just above the cut
 * (F) which is not itself a leaf form a group per F, cut at F; the rest stay together. An
 * object's optional properties and its other keys give one such state per place in the
 * object: the other keys' string (a group) is then the same at every place and its walk is
 * done once, while the declared keys (the rest) are narrow. A string body is not split: its
 * frame above the cut is the closing quote, a leaf. Returns the number of states put in
 * out[] (0: no split).
 */
static size_t split_state(struct inf_matcher *m, uint32_t s, uint32_t *out)
{
    uint32_t level = cut_level(m, s);
    if (level == 0 || m->st_n[s] < 2)
        return 0;
    uint32_t keys[MAX_GROUPS];
    size_t n_keys = 0, n = m->st_n[s];
    uint32_t *grp = malloc(n * sizeof(uint32_t));
    if (!grp)
        return 0;
    for (size_t k = 0; k < n; k++) {
        uint32_t x = m->pool[m->st_off[s] + k], f = x;
        grp[k] = MAX_GROUPS; /* the rest */
        if (x == 0 || m->ndep[x] <= level + 1)
            continue;
        while (m->ndep[f] > level + 1)
            f = m->npar[f];
        if (has_leaf(m, s, f))
            continue;
        size_t g = 0;
        while (g < n_keys && keys[g] != f)
            g++;
        if (g == n_keys) {
            if (n_keys == MAX_GROUPS) {
                free(grp);
                return 0;
            }
            keys[n_keys++] = f;
        }
        grp[k] = (uint32_t)g;
    }
    size_t n_out = 0;
    for (size_t g = 0; n_keys && g <= n_keys; g++) {
        size_t cnt = 0;
        for (size_t k = 0; k < n; k++) {
            if ((g < n_keys ? grp[k] == g : grp[k] == MAX_GROUPS) &&
                !push_u32(&m->ctmp, &cnt, &m->cap_ctmp, m->pool[m->st_off[s] + k])) {
                m->failed = true;
                break;
            }
        }
        if (m->failed || !inf__grow(&m->tmp, &m->cap_tmp, cnt + 1, sizeof(uint32_t), 64)) {
            m->failed = true;
            break;
        }
        copy_ids(m->tmp, m->ctmp, cnt);
        uint32_t st = state_intern(m, cnt);
        if (st)
            out[n_out++] = st;
    }
    free(grp);
    return m->failed ? 0 : n_out;
}

/* ---- long counted bounds --------------------------------------------------------------------
 * X{0,5000} is a chain of 5000 rules (grammar_internal.h), so a string with a long maxLength
 * is a new state at every character, each with a wide walk, and every item of an array with
 * maxItems is a new state for all its contents. No token is longer than D = max_depth bytes
 * and every X takes len bytes at least, so the links from d (canon_pos) on accept the same
 * strings of up to D bytes: the mask of a state is the mask of the state with every such link
 * replaced by link d (the canonical state), and it is computed and cached once for all the
 * counts above d. */

/* Per link, the d of canon_pos. To tell link i from a longer one, a string finishes the X
   under way (perhaps with no byte), takes i - 1 more X and starts one more. Each X is at
   least len bytes (the fewest an X matches): (i - 1) len + 1 bytes, and no token is longer
   than D, so all links from (D - 1) / len + 2 on accept the same tokens. Each X also holds
   every byte of chain_must (an array item's comma and braces): no token holds byte b more
   than byte_max[b] times, so the links from byte_max[b] + 2 on are alike too. */
static bool chain_links(struct inf_matcher *m)
{
    const struct inf_grammar *g = m->g;
    if (!g->chain_i || !m->voc)
        return true;
    m->chain_d = malloc(((size_t)g->n_rules + 1) * sizeof(uint32_t));
    if (!m->chain_d)
        return false;
    uint32_t D = m->voc->max_depth < 2 ? 2 : m->voc->max_depth;
    for (uint32_t r = 0; r < g->n_rules; r++) {
        if (!g->chain_i[r]) {
            m->chain_d[r] = UINT32_MAX;
            continue;
        }
        if (r > 0 && g->chain_i[r - 1] && g->chain_len[r] == g->chain_len[r - 1] &&
            !memcmp(&g->chain_must[r], &g->chain_must[r - 1], sizeof(g->chain_must[r]))) {
            m->chain_d[r] = m->chain_d[r - 1]; /* the next link of the same chain */
            continue;
        }
        uint32_t d = (D - 1) / g->chain_len[r] + 2;
        for (unsigned b = 0; b < 256; b++)
            if (inf__byteset_has(&g->chain_must[r], b) && m->voc->byte_max[b] + 2u < d)
                d = m->voc->byte_max[b] + 2u;
        m->chain_d[r] = d;
    }
    return true;
}

static inline uint32_t canon_pos(const struct inf_matcher *m, uint32_t pos)
{
    const struct inf_grammar *g = m->g;
    uint32_t r = g->el_rule[pos], i = g->chain_i[r];
    if (i <= 2)
        return pos;
    uint32_t d = m->chain_d[r]; /* chain_links */
    if (i <= d)
        return pos;
    /* links 2.. share one layout: X, the reference, END; then the empty alternative's END */
    return g->alts[g->rule_alt[r - (i - d)]] + g->el_off[pos];
}

static uint32_t canon_node(struct inf_matcher *m, uint32_t x)
{
    size_t n = 0;
    uint32_t y = x;
    while (m->ncanon[y] == NO_STATE) {
        if (m->npos[y] == MARK_POS) {
            m->ncanon[y] = y;
            break;
        }
        if (!push_u32(&m->dfs, &n, &m->cap_dfs, y)) {
            m->failed = true;
            return 0;
        }
        y = m->npar[y];
    }
    uint32_t c = m->ncanon[y];
    while (n) {
        uint32_t z = m->dfs[--n], p = canon_pos(m, m->npos[z]);
        uint32_t r = p == m->npos[z] && c == m->npar[z] ? z : node_intern(m, p, c);
        if (m->failed)
            return 0;
        m->ncanon[z] = r;
        m->ncanon[r] = r;
        c = r;
    }
    return c;
}

static uint32_t canon_state(struct inf_matcher *m, uint32_t s)
{
    if (!m->g->chain_i || m->st_canon[s] == s)
        return s;
    if (m->st_canon[s] != NO_STATE)
        return m->st_canon[s];
    size_t n = m->st_n[s], k = 0;
    bool same = true;
    for (size_t i = 0; i < n; i++) {
        uint32_t x = m->pool[m->st_off[s] + i], y = canon_node(m, x);
        if (m->failed || !push_u32(&m->ctmp, &k, &m->cap_ctmp, y)) {
            m->failed = true;
            return 0;
        }
        same &= x == y;
    }
    uint32_t t = s;
    if (!same) {
        if (!inf__grow(&m->tmp, &m->cap_tmp, n + 1, sizeof(uint32_t), 64)) {
            m->failed = true;
            return 0;
        }
        copy_ids(m->tmp, m->ctmp, n);
        t = state_intern(m, n);
        if (m->failed)
            return 0;
    }
    m->st_canon[s] = t;
    m->st_canon[t] = t;
    return t;
}

static void compute_mask(struct inf_matcher *m, uint32_t s, uint32_t *mask)
{
    const struct inf_grammar_vocab *v = m->voc;
    memset(mask, 0, m->words * sizeof(uint32_t));
    uint32_t t = s, slot, parts[MAX_GROUPS + 1];
    size_t n = 0;
    m->visited = m->walked = m->cont_new = m->cont_hit = 0;
    uint64_t t0 = m->trace ? inf__now_ns() : 0;
    size_t states0 = m->n_states, nodes0 = m->n_nodes;
    /* a text loop that a cut would part from its frame: the whole state, by its text set */
    if (!(text_loop_in(m, s) && take_text_set(m, text_a8, UINT32_MAX, s, mask, false)) &&
        !m->failed) {
        t = cut_state(m, s);
        if (!m->failed && !map_get(&m->part_map, (uint64_t)t + 1, &slot))
            n = split_state(m, s, parts);
        if (n == 0 && !m->failed)
            add_state(m, s, mask);
        for (size_t k = 0; k < n && !m->failed; k++)
            add_state(m, parts[k], mask);
    }
    m->split = n;
    if (state_can_end(m, s))
        for (uint32_t i = 0; i < v->n_eog; i++)
            mask[v->eog[i] >> 5] |= 1u << (v->eog[i] & 31);
    if (m->trace)
        fprintf(
            stderr,
            "grammar: mask of state %u (%u stacks, cut %u stacks, split %zu): %.1f us, %zu walks, "
            "%zu trie nodes, continuations %zu new %zu cached, new %zu states %zu nodes; "
            "tables %zu nodes %zu states %zu rows\n",
            s, m->st_n[s], m->st_n[t], m->split, (double)(inf__now_ns() - t0) / 1e3, m->walked,
            m->visited, m->cont_new, m->cont_hit, m->n_states - states0, m->n_nodes - nodes0,
            m->n_nodes, m->n_states, m->n_dense);
}

void inf_matcher_mask(struct inf_matcher *m, uint32_t *mask)
{
    if (!m->voc)
        return;
    if (m->done || m->failed) {
        memset(mask, 0, m->words * sizeof(uint32_t));
        return;
    }
    uint32_t slot, cs = canon_state(m, m->cur);
    if (m->failed) {
        memset(mask, 0, m->words * sizeof(uint32_t));
        return;
    }
    if (map_get(&m->mask_map, (uint64_t)cs + 1, &slot)) {
        copy_ids(mask, m->masks + (size_t)slot * m->words, m->words);
        return;
    }
    compute_mask(m, cs, mask);
    if (m->failed) {
        memset(mask, 0, m->words * sizeof(uint32_t));
        return;
    }
    if (m->n_masks >= MASK_CACHE_MAX) {
        map_clear(&m->mask_map);
        m->n_masks = 0;
    }
    if (!inf__grow(&m->masks, &m->cap_masks, (m->n_masks + 1) * m->words, sizeof(uint32_t),
                   8 * m->words))
        return;
    copy_ids(m->masks + m->n_masks * m->words, mask, m->words);
    if (map_put(&m->mask_map, (uint64_t)cs + 1, (uint32_t)m->n_masks))
        m->n_masks++;
}

void inf_matcher_apply(struct inf_matcher *m, float *logits)
{
    if (!m->voc)
        return;
    if (!m->apply_mask && !(m->apply_mask = malloc(m->words * sizeof(uint32_t)))) {
        for (int32_t i = 0; i < m->voc->n_vocab; i++)
            logits[i] = -INFINITY;
        return;
    }
    uint32_t *mask = m->apply_mask;
    inf_matcher_mask(m, mask);
    for (int32_t i = 0; i < m->voc->n_vocab; i++)
        if (!((mask[i >> 5] >> (i & 31)) & 1u))
            logits[i] = -INFINITY;
}
