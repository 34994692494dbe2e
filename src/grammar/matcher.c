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
 * to the same state, so most steps are a copy).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "grammar/grammar_internal.h"

/* ---- the vocabulary trie --------------------------------------------------------------------- */

struct inf_grammar_vocab {
    const struct inf_tokenizer *tok;
    int32_t n_vocab;
    uint32_t n_nodes;
    uint8_t *byte;       /* [n_nodes] the byte leading into the node (root: 0) */
    uint32_t *depth;     /* [n_nodes] */
    uint32_t *next;      /* [n_nodes] first node after this node's subtree */
    uint32_t *tok_first; /* [n_nodes + 1] tokens ending at node i: toks[tok_first[i] ..
                            tok_first[i+1]) */
    int32_t *toks;
    int32_t *eog;
    uint32_t n_eog;
    uint32_t max_depth;
};

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
    free(v->byte);
    free(v->depth);
    free(v->next);
    free(v->tok_first);
    free(v->toks);
    free(v->eog);
    free(v);
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
    size_t total = 1, n_ent = 0;
    if (!v || !ent)
        goto oom;
    v->tok = tok;
    v->n_vocab = n;
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
        ent[n_ent++] = (struct ventry){(const unsigned char *)p, (uint32_t)len, i};
        total += len;
    }
    qsort(ent, n_ent, sizeof(*ent), cmp_ventry);
    /* at most one node per byte of every piece, plus the root */
    if (total > UINT32_MAX / 2)
        goto oom;
    v->byte = malloc(total);
    v->depth = malloc(total * sizeof(uint32_t));
    v->next = malloc(total * sizeof(uint32_t));
    v->tok_first = malloc((total + 1) * sizeof(uint32_t));
    v->toks = malloc((n_ent + 1) * sizeof(int32_t));
    uint32_t *path = malloc((total + 1) * sizeof(uint32_t));
    if (!v->byte || !v->depth || !v->next || !v->tok_first || !v->toks || !path) {
        free(path);
        goto oom;
    }
    uint32_t nn = 1, nt = 0, sd = 0; /* nodes, tokens, path depth */
    v->byte[0] = 0;
    v->depth[0] = 0;
    v->tok_first[0] = 0;
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
            v->next[path[sd--]] = nn;
        for (uint32_t d = l; d < e->len; d++) {
            v->byte[nn] = e->p[d];
            v->depth[nn] = d + 1;
            v->tok_first[nn] = nt;
            path[++sd] = nn++;
        }
        v->toks[nt++] = e->id;
        if (e->len > v->max_depth)
            v->max_depth = e->len;
        prev = e;
    }
    while (sd > 0)
        v->next[path[sd--]] = nn;
    v->next[0] = nn;
    v->tok_first[nn] = nt;
    /* tok_first[i] was set when node i was made; tokens are appended right after their node, so
       node i owns toks[tok_first[i] .. tok_first[i+1]) */
    v->n_nodes = nn;
    free(path);
    free(ent);
    *out = v;
    return INF_OK;
oom:
    free(ent);
    inf_grammar_vocab_free(v);
    return inf_error_set(err, INF_ENOMEM, "grammar: out of memory building the token trie");
}

/* ---- the matcher ----------------------------------------------------------------------------- */

#define NO_CLOSURE     UINT32_MAX
#define MASK_CACHE_MAX 1024
/* When the interned tables pass these, they are rebuilt from the current state alone. */
#define MAX_NODES  (4u << 20)
#define MAX_STATES (1u << 20)
#define MAX_POOL   (64u << 20)

struct u64map { /* open addressing: key -> value; keys are never 0 (callers add 1) */
    uint64_t *k;
    uint32_t *v;
    size_t cap, n;
};

struct inf_matcher {
    const struct inf_grammar *g;
    const struct inf_grammar_vocab *voc;
    /* nodes: 0 is the empty stack */
    uint32_t *npos, *npar, *ncl_off, *ncl_n, *stamp;
    size_t n_nodes, cap_nodes, cap_stamp;
    struct u64map node_map; /* (pos << 32 | parent) + 1 -> node */
    uint32_t gen;
    /* closures and states share one pool of leaf ids */
    uint32_t *pool;
    size_t n_pool, cap_pool;
    uint32_t *st_off, *st_n; /* state 0 is the empty (dead) set */
    uint64_t *st_hash;
    size_t n_states, cap_states;
    struct u64map state_map; /* content hash -> state (chained by linear probing on collision) */
    struct u64map trans;     /* (state << 8 | byte) + 1 -> state */
    /* scratch */
    uint32_t *tmp, *dfs, *ctmp; /* tmp: a state being built; ctmp: a closure being built */
    size_t cap_tmp, cap_dfs, cap_ctmp;
    uint32_t *walk; /* [max_depth + 1] states along the trie path */
    /* mask cache */
    struct u64map mask_map; /* state + 1 -> slot */
    uint32_t *masks;
    size_t n_masks, words;
    uint32_t start, cur;
    bool done, failed;
};

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
        size_t h = (size_t)(m->k[i] * 0x9E3779B97F4A7C15ull >> 20) & (cap - 1);
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
    return (size_t)(key * 0x9E3779B97F4A7C15ull >> 20) & (m->cap - 1);
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
    size_t c = m->cap_nodes;
    if (!inf__grow(&m->npos, &c, m->n_nodes + 1, sizeof(uint32_t), 1024))
        goto oom;
    c = m->cap_nodes;
    if (!inf__grow(&m->npar, &c, m->n_nodes + 1, sizeof(uint32_t), 1024))
        goto oom;
    c = m->cap_nodes;
    if (!inf__grow(&m->ncl_off, &c, m->n_nodes + 1, sizeof(uint32_t), 1024))
        goto oom;
    c = m->cap_nodes;
    if (!inf__grow(&m->ncl_n, &c, m->n_nodes + 1, sizeof(uint32_t), 1024))
        goto oom;
    m->cap_nodes = c;
    id = (uint32_t)m->n_nodes++;
    m->npos[id] = pos;
    m->npar[id] = parent;
    m->ncl_off[id] = NO_CLOSURE;
    m->ncl_n[id] = 0;
    if (!map_put(&m->node_map, key, id))
        goto oom;
    return id;
oom:
    m->failed = true;
    return 0;
}

static bool push_u32(uint32_t **p, size_t *n, size_t *cap, uint32_t v)
{
    if (!inf__grow(p, cap, *n + 1, sizeof(uint32_t), 64))
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
    if (!inf__grow(&m->pool, &m->cap_pool, m->n_pool + n_out, sizeof(uint32_t), 4096))
        return false;
    memcpy(m->pool + m->n_pool, m->ctmp, n_out * sizeof(uint32_t));
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

/* Intern the leaf set tmp[0..n) (sorted here); 0 for the empty set. */
static uint32_t state_intern(struct inf_matcher *m, size_t n)
{
    if (n == 0)
        return 0;
    uint32_t *t = m->tmp;
    if (n > 1) {
        qsort(t, n, sizeof(uint32_t), cmp_u32);
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
    size_t c = m->cap_states;
    if (!inf__grow(&m->st_off, &c, m->n_states + 1, sizeof(uint32_t), 256))
        goto oom;
    c = m->cap_states;
    if (!inf__grow(&m->st_n, &c, m->n_states + 1, sizeof(uint32_t), 256))
        goto oom;
    m->cap_states = c;
    uint32_t id = (uint32_t)m->n_states++;
    memcpy(m->pool + m->n_pool, t, n * sizeof(uint32_t));
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
static uint32_t step(struct inf_matcher *m, uint32_t s, unsigned b)
{
    if (s == 0)
        return 0;
    uint64_t key = (((uint64_t)s << 8) | b) + 1;
    uint32_t r;
    if (map_get(&m->trans, key, &r))
        return r;
    const struct inf_grammar *g = m->g;
    size_t n_out = 0;
    uint32_t n_leaves = m->st_n[s];
    for (uint32_t i = 0; i < n_leaves; i++) {
        uint32_t leaf = m->pool[m->st_off[s] + i];
        if (leaf == 0)
            continue;
        uint32_t pos = m->npos[leaf];
        if (!inf__byteset_has(&g->sets[g->elems[pos].arg], b))
            continue;
        uint32_t nx = node_intern(m, pos + 1, m->npar[leaf]);
        if (m->failed || !closure(m, nx)) {
            m->failed = true;
            return 0;
        }
        uint32_t off = m->ncl_off[nx], cn = m->ncl_n[nx];
        if (!inf__grow(&m->tmp, &m->cap_tmp, n_out + cn, sizeof(uint32_t), 64)) {
            m->failed = true;
            return 0;
        }
        memcpy(m->tmp + n_out, m->pool + off, cn * sizeof(uint32_t));
        n_out += cn;
    }
    r = state_intern(m, n_out);
    if (!map_put(&m->trans, key, r))
        m->failed = true;
    return r;
}

static bool state_can_end(const struct inf_matcher *m, uint32_t s)
{
    return s != 0 && m->pool[m->st_off[s]] == 0; /* sorted: the empty stack comes first */
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
        if (!inf__grow(&m->tmp, &m->cap_tmp, n_out + cn, sizeof(uint32_t), 64)) {
            m->failed = true;
            return 0;
        }
        memcpy(m->tmp + n_out, m->pool + off, cn * sizeof(uint32_t));
        n_out += cn;
    }
    return state_intern(m, n_out);
}

static void tables_release(struct inf_matcher *m)
{
    free(m->npos);
    free(m->npar);
    free(m->ncl_off);
    free(m->ncl_n);
    free(m->stamp);
    free(m->pool);
    free(m->st_off);
    free(m->st_n);
    map_free(&m->node_map);
    map_free(&m->state_map);
    map_free(&m->trans);
    map_free(&m->mask_map);
    m->npos = m->npar = m->ncl_off = m->ncl_n = m->stamp = m->pool = m->st_off = m->st_n = NULL;
    m->n_nodes = m->cap_nodes = m->cap_stamp = m->n_pool = m->cap_pool = 0;
    m->n_states = m->cap_states = 0;
    m->n_masks = 0;
    m->gen = 0;
}

/* Fresh tables holding the empty stack, the dead state and the start state. */
static bool tables_init(struct inf_matcher *m)
{
    m->failed = false;
    uint32_t zero = 0;
    (void)zero;
    /* node 0: the empty stack (its position is never read) */
    size_t c = 0;
    if (!inf__grow(&m->npos, &c, 1, sizeof(uint32_t), 1024))
        return false;
    m->npos[0] = UINT32_MAX;
    m->cap_nodes = c;
    c = 0;
    if (!inf__grow(&m->npar, &c, m->cap_nodes, sizeof(uint32_t), 1024) ||
        !inf__grow(&m->ncl_off, &(size_t){0}, m->cap_nodes, sizeof(uint32_t), 1024) ||
        !inf__grow(&m->ncl_n, &(size_t){0}, m->cap_nodes, sizeof(uint32_t), 1024))
        return false;
    m->npar[0] = 0;
    m->ncl_off[0] = NO_CLOSURE;
    m->n_nodes = 1;
    /* state 0: dead */
    c = 0;
    if (!inf__grow(&m->st_off, &c, 1, sizeof(uint32_t), 256) ||
        !inf__grow(&m->st_n, &(size_t){0}, c, sizeof(uint32_t), 256))
        return false;
    m->cap_states = c;
    m->st_off[0] = 0;
    m->st_n[0] = 0;
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
    free(m->ctmp);
    free(m->dfs);
    free(m->walk);
    free(m->masks);
    free(m);
}

inf_status inf_matcher_new(const struct inf_grammar *g, const struct inf_grammar_vocab *v,
                           struct inf_matcher **out, struct inf_error *err)
{
    *out = NULL;
    struct inf_matcher *m = calloc(1, sizeof(*m));
    if (!m)
        return inf_error_set(err, INF_ENOMEM, "grammar: out of memory");
    m->g = g;
    m->voc = v;
    if (v) {
        m->words = ((size_t)v->n_vocab + 31) / 32;
        m->walk = malloc(((size_t)v->max_depth + 1) * sizeof(uint32_t));
        if (!m->walk) {
            inf_matcher_free(m);
            return inf_error_set(err, INF_ENOMEM, "grammar: out of memory");
        }
    }
    if (!tables_init(m)) {
        inf_matcher_free(m);
        return inf_error_set(err, INF_ENOMEM, "grammar: out of memory starting the matcher");
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
    if (m->n_nodes < MAX_NODES && m->n_states < MAX_STATES && m->n_pool < MAX_POOL)
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
    memcpy(m->tmp, leaves, n_out * sizeof(uint32_t));
    free(leaves);
    m->cur = state_intern(m, n_out);
}

bool inf_matcher_accept_bytes(struct inf_matcher *m, const char *bytes, size_t len)
{
    if (m->done || m->failed)
        return false;
    uint32_t s = m->cur;
    for (size_t i = 0; i < len && s; i++)
        s = step(m, s, (unsigned char)bytes[i]);
    if (!s || m->failed)
        return false;
    m->cur = s;
    maybe_compact(m);
    return true;
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

static void compute_mask(struct inf_matcher *m, uint32_t s, uint32_t *mask)
{
    const struct inf_grammar_vocab *v = m->voc;
    memset(mask, 0, m->words * sizeof(uint32_t));
    if (state_can_end(m, s))
        for (uint32_t i = 0; i < v->n_eog; i++)
            mask[v->eog[i] >> 5] |= 1u << (v->eog[i] & 31);
    uint32_t *st = m->walk;
    st[0] = s;
    const uint8_t *byte = v->byte;
    const uint32_t *depth = v->depth, *next = v->next, *tf = v->tok_first;
    uint32_t i = 1, n = v->n_nodes;
    while (i < n) {
        uint32_t t = step(m, st[depth[i] - 1], byte[i]);
        if (!t) {
            i = next[i];
            continue;
        }
        st[depth[i]] = t;
        for (uint32_t k = tf[i]; k < tf[i + 1]; k++)
            mask[v->toks[k] >> 5] |= 1u << (v->toks[k] & 31);
        i++;
    }
}

void inf_matcher_mask(struct inf_matcher *m, uint32_t *mask)
{
    if (!m->voc)
        return;
    if (m->done || m->failed) {
        memset(mask, 0, m->words * sizeof(uint32_t));
        return;
    }
    uint32_t slot;
    if (map_get(&m->mask_map, (uint64_t)m->cur + 1, &slot)) {
        memcpy(mask, m->masks + (size_t)slot * m->words, m->words * sizeof(uint32_t));
        return;
    }
    compute_mask(m, m->cur, mask);
    if (m->failed) {
        memset(mask, 0, m->words * sizeof(uint32_t));
        return;
    }
    if (m->n_masks >= MASK_CACHE_MAX) {
        map_clear(&m->mask_map);
        m->n_masks = 0;
    }
    if (!m->masks) {
        m->masks = malloc(MASK_CACHE_MAX * m->words * sizeof(uint32_t));
        if (!m->masks)
            return;
    }
    memcpy(m->masks + m->n_masks * m->words, mask, m->words * sizeof(uint32_t));
    if (map_put(&m->mask_map, (uint64_t)m->cur + 1, (uint32_t)m->n_masks))
        m->n_masks++;
}

void inf_matcher_apply(struct inf_matcher *m, float *logits)
{
    if (!m->voc)
        return;
    uint32_t *mask = malloc(m->words * sizeof(uint32_t));
    if (!mask) {
        for (int32_t i = 0; i < m->voc->n_vocab; i++)
            logits[i] = -INFINITY;
        return;
    }
    inf_matcher_mask(m, mask);
    for (int32_t i = 0; i < m->voc->n_vocab; i++)
        if (!((mask[i >> 5] >> (i & 31)) & 1u))
            logits[i] = -INFINITY;
    free(mask);
}
