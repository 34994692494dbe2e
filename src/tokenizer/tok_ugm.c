/*
 * tok_ugm.c - Unigram language-model tokenizers (SentencePiece "UGM"; tokenizer.ggml.model =
 * "t5": T5, XLM-RoBERTa, bge-m3, multilingual-e5), as llama.cpp's llm_tokenizer_ugm does it.
 *
 * 1. Normalization, prefix by prefix: a run of bytes along the path of a user-defined token's
 *    text is kept as it is; else the longest prefix the precompiled charsmap knows is replaced
 *    by its string; else one UTF-8 character is kept (an invalid byte becomes U+FFFD). Spaces
 *    in the result are written as U+2581; add_space_prefix puts one before the first word,
 *    remove_extra_whitespaces drops leading, trailing and repeated spaces (and puts one before
 *    every word).
 * 2. Viterbi over the normalized bytes: at each UTF-8 character, every token of the vocabulary
 *    (normal, user-defined at score 0, unused) starting there is found in a trie; a position's
 *    best path keeps the highest sum of scores (in double). A character no single token covers
 *    may also be the unknown token, at the lowest normal score minus 10. Consecutive unknown
 *    tokens on the best path are written as one. There is no byte fallback (llama.cpp has none
 *    for UGM: unknown text is <unk>).
 *
 * The precompiled charsmap is SentencePiece's normalization rule blob: a little-endian uint32
 * byte count, that many bytes of a Darts-clone double array (uint32 units), then NUL-terminated
 * replacement strings. A unit packs BASE in bits 10-30 (shifted left 8 more when bit 9 is set),
 * the label (LCHECK) in bits 0-7 with bit 31 set on value units, and the LEAF flag in bit 8; a
 * leaf's value unit (at BASE ^ 0) holds the offset of the replacement. The blob comes from the
 * model file: every index and offset is checked, and one that does not fit fails the encode
 * with INF_EFORMAT (llama.cpp throws there).
 */
#include <float.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "tokenizer/tok_internal.h"
#include "tokenizer/unicode.h"

static const char escaped_space[3] = {(char)0xE2, (char)0x96, (char)0x81}; /* U+2581 */

/* The penalty llama.cpp puts on the unknown token below the lowest normal score. */
#define UNK_PENALTY 10.0f

/* Normalized text may grow this many times the input (NFKC's widest expansions are ~11x). */
#define MAX_GROWTH 32

void inf__ugm_release(struct inf__ugm *u)
{
    free(u->xcda);
    free(u->repl);
    inf__u64map_release(&u->trie);
    inf__u64map_release(&u->ud_trie);
    free(u->node_token);
    memset(u, 0, sizeof(*u));
}

inf_status inf__ugm_charsmap_parse(struct inf__ugm *u, const void *data, size_t n,
                                   struct inf_error *err)
{
    const unsigned char *p = data;
    free(u->xcda);
    free(u->repl);
    u->xcda = NULL, u->n_xcda = 0, u->repl = NULL, u->n_repl = 0;
    if (n == 0)
        return INF_OK; /* no charsmap: no normalization beyond spaces */
    if (!data)
        return inf_error_set(err, INF_EINVAL, "precompiled charsmap: no data");
    if (n < 4)
        return inf_error_set(err, INF_EFORMAT,
                             "precompiled charsmap of %zu bytes is shorter than its 4-byte header",
                             n);
    uint32_t blob =
        (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    /* llama.cpp wants at least one byte of replacement strings after the array */
    if ((uint64_t)blob + 4 >= n)
        return inf_error_set(err, INF_EFORMAT,
                             "precompiled charsmap: a double array of %u bytes does not fit in "
                             "the %zu bytes after the header with its replacement strings",
                             blob, n - 4);
    size_t n_units = blob / 4; /* a trailing partial unit is ignored, as llama.cpp does */
    u->n_xcda = n_units;
    u->n_repl = n - 4 - blob;
    u->xcda = malloc((n_units ? n_units : 1) * sizeof(*u->xcda));
    u->repl = malloc(u->n_repl);
    if (!u->xcda || !u->repl) {
        free(u->xcda);
        free(u->repl);
        u->xcda = NULL, u->repl = NULL, u->n_xcda = u->n_repl = 0;
        return inf_error_set(err, INF_ENOMEM, "out of memory reading the precompiled charsmap");
    }
    for (size_t i = 0; i < n_units; i++) {
        const unsigned char *q = p + 4 + 4 * i;
        u->xcda[i] =
            (uint32_t)q[0] | (uint32_t)q[1] << 8 | (uint32_t)q[2] << 16 | (uint32_t)q[3] << 24;
    }
    memcpy(u->repl, p + 4 + blob, u->n_repl);
    return INF_OK;
}

/* ---- the token tries ------------------------------------------------------------------------ */

static inf_status trie_add(struct inf__ugm *u, struct inf__u64map *trie, size_t *n_nodes,
                           const char *s, size_t n, int32_t id)
{
    int64_t node = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t key = ((uint64_t)node << 8) | (unsigned char)s[i];
        int64_t child;
        if (!inf__u64map_get(trie, key, &child)) {
            child = (int64_t)(*n_nodes)++;
            if (inf__u64map_put_first(trie, key, child) != INF_OK)
                return INF_ENOMEM;
            if (id != INT32_MIN) {
                if (!inf__grow(&u->node_token, &u->cap_nodes, *n_nodes, sizeof(*u->node_token),
                               1024))
                    return INF_ENOMEM;
                u->node_token[child] = -1;
            }
        }
        node = child;
    }
    if (id != INT32_MIN)
        u->node_token[node] = id; /* a later duplicate wins, as in llama.cpp's naive_trie */
    return INF_OK;
}

inf_status inf__ugm_setup(struct inf_tokenizer *tok, const struct inf_vocab_desc *d,
                          struct inf_error *err)
{
    struct inf__ugm *u = &tok->ugm;
    size_t n_ud_nodes = 1;
    float min_score = FLT_MAX;
    inf_status st =
        inf__ugm_charsmap_parse(u, d->precompiled_charsmap, d->precompiled_charsmap_len, err);
    if (st != INF_OK)
        return st;
    u->n_nodes = 1; /* the root */
    if (!inf__grow(&u->node_token, &u->cap_nodes, 1, sizeof(*u->node_token), 1024) ||
        inf__u64map_reserve(&u->trie, tok->n_tokens * 2) != INF_OK)
        goto oom;
    u->node_token[0] = -1;
    for (size_t i = 0; i < tok->n_tokens; i++) {
        uint16_t a = tok->attr[i];
        const char *s = inf__strtab_str(&tok->strs, (int32_t)i);
        size_t n = tok->strs.len[i];
        if ((a & INF__ATTR_NORMAL) && tok->scores[i] < min_score)
            min_score = tok->scores[i];
        if ((a & (INF__ATTR_NORMAL | INF__ATTR_USER_DEFINED | INF__ATTR_UNUSED)) &&
            trie_add(u, &u->trie, &u->n_nodes, s, n, (int32_t)i) != INF_OK)
            goto oom;
        if ((a & INF__ATTR_USER_DEFINED) &&
            trie_add(u, &u->ud_trie, &n_ud_nodes, s, n, INT32_MIN) != INF_OK)
            goto oom;
    }
    u->unk_score = min_score - UNK_PENALTY; /* in float, as llama.cpp computes it */
    return INF_OK;
oom:
    return inf_error_set(err, INF_ENOMEM, "out of memory indexing %zu tokens", tok->n_tokens);
}

/* ---- normalization -------------------------------------------------------------------------- */

/* Length of the UTF-8 character at s[0..n) by llama.cpp's lenient rule (lead byte and
   continuation bytes only), or 0 when it is not one. */
static size_t char_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t l;
    if (!(c & 0x80))
        return 1;
    if (!(c & 0x40))
        return 0;
    l = !(c & 0x20) ? 2 : !(c & 0x10) ? 3 : !(c & 0x08) ? 4 : 0;
    if (l == 0 || l > n)
        return 0;
    for (size_t i = 1; i < l; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    return l;
}

static inf_status unit(const struct inf__ugm *u, uint32_t index, uint32_t *out,
                       struct inf_error *err)
{
    if (index >= u->n_xcda)
        return inf_error_set(err, INF_EFORMAT,
                             "precompiled charsmap: node %u is past the %zu units of its double "
                             "array",
                             index, u->n_xcda);
    *out = u->xcda[index];
    return INF_OK;
}

static uint32_t base_of(uint32_t unit)
{
    return (unit >> 10) << ((unit & (1u << 9)) >> 6);
}

/* The replacement for the longest prefix of s[0..n) the charsmap holds: *len bytes matched (0:
   none), *repl and *repl_len its string. */
static inf_status charsmap_match(const struct inf__ugm *u, const unsigned char *s, size_t n,
                                 size_t *len, const char **repl, size_t *repl_len,
                                 struct inf_error *err)
{
    uint32_t node, x, value = 0;
    inf_status st;
    *len = 0;
    if (u->n_xcda == 0)
        return INF_OK;
    if ((st = unit(u, 0, &x, err)) != INF_OK)
        return st;
    node = base_of(x);
    for (size_t i = 0; i < n && s[i] != 0; i++) {
        node ^= s[i];
        if ((st = unit(u, node, &x, err)) != INF_OK)
            return st;
        if ((x & ((1u << 31) | 0xFF)) != s[i])
            break; /* not a child of the previous node */
        bool leaf = (x >> 8) & 1;
        node ^= base_of(x);
        if (leaf) {
            if ((st = unit(u, node, &x, err)) != INF_OK)
                return st;
            *len = i + 1;
            value = x & ((1u << 31) - 1);
        }
    }
    if (*len == 0)
        return INF_OK;
    if (value >= u->n_repl)
        return inf_error_set(err, INF_EFORMAT,
                             "precompiled charsmap: replacement offset %u is past its %zu bytes of "
                             "strings",
                             value, u->n_repl);
    const char *r = u->repl + value;
    const char *nul = memchr(r, 0, u->n_repl - value);
    if (!nul)
        return inf_error_set(err, INF_EFORMAT,
                             "precompiled charsmap: the replacement at offset %u has no "
                             "terminating NUL",
                             value);
    *repl = r;
    *repl_len = (size_t)(nul - r);
    return INF_OK;
}

/* Depth of the deepest path of the user-defined trie along s[0..n) (llama.cpp's
   get_longest_prefix: the path need not end at a token). */
static size_t ud_prefix(const struct inf__ugm *u, const unsigned char *s, size_t n)
{
    int64_t node = 0;
    size_t i = 0;
    if (u->ud_trie.n == 0)
        return 0;
    while (i < n && inf__u64map_get(&u->ud_trie, ((uint64_t)node << 8) | s[i], &node))
        i++;
    return i;
}

struct nbuf {
    char *p;
    size_t n, cap, max;
};

static bool put(struct nbuf *b, const char *s, size_t n)
{
    if (n > b->max - b->n)
        return false;
    return inf__append(&b->p, &b->n, &b->cap, s, n, 256);
}

/* Normalize text[0..len) into b (see the top of the file). INF_ELIMIT when the result would
   pass b->max. */
static inf_status normalize(const struct inf_tokenizer *tok, const char *text, size_t len,
                            struct nbuf *b, struct inf_error *err)
{
    const struct inf__ugm *u = &tok->ugm;
    const unsigned char *s = (const unsigned char *)text;
    bool prepend = tok->info.add_space_prefix, merge = tok->remove_extra_ws;
    bool prepended = false, in_word = false;
    inf_status st;

    for (size_t off = 0; off < len;) {
        const char *r;
        size_t rl, used;
        if ((used = ud_prefix(u, s + off, len - off)) > 0) {
            r = text + off, rl = used;
        } else {
            if ((st = charsmap_match(u, s + off, len - off, &used, &r, &rl, err)) != INF_OK)
                return st;
            if (used == 0) {
                used = char_len(s + off, len - off);
                if (used)
                    r = text + off, rl = used;
                else
                    r = "\xef\xbf\xbd", rl = 3, used = 1;
            }
        }
        for (size_t i = 0; i < rl; i++) {
            if (r[i] != ' ') {
                if (!in_word) {
                    in_word = true;
                    if ((prepend && !prepended) || merge) {
                        if (!put(b, escaped_space, 3))
                            goto grow;
                        prepended = true;
                    }
                }
                if (!put(b, r + i, 1))
                    goto grow;
            } else {
                in_word = false;
                if (!merge && !put(b, escaped_space, 3))
                    goto grow;
            }
        }
        off += used;
    }
    return INF_OK;
grow:
    if (b->n + 4 > b->max)
        return inf_error_set(err, INF_ELIMIT,
                             "normalizing %zu bytes of text gives more than %zu bytes", len,
                             b->max);
    return inf__tok_oom(err, len);
}

/* ---- Viterbi -------------------------------------------------------------------------------- */

struct best {
    double score;
    int32_t token;
    uint32_t from; /* where the token starts */
};

inf_status inf__ugm_encode(const struct inf_tokenizer *tok, const char *text, size_t len,
                           struct inf_tokens *out, struct inf_error *err)
{
    const struct inf__ugm *u = &tok->ugm;
    inf_token unk = tok->info.unk;
    struct nbuf b = {0};
    struct best *best = NULL;
    size_t n0 = out->n;
    inf_status st = INF_OK;

    b.max = len > (UINT32_MAX - 64) / MAX_GROWTH ? UINT32_MAX - 64 : MAX_GROWTH * len + 64;
    if ((st = normalize(tok, text, len, &b, err)) != INF_OK)
        goto out;
    size_t n = b.n;
    const unsigned char *s = (const unsigned char *)b.p;
    if (n == 0)
        goto out;
    best = malloc((n + 1) * sizeof(*best));
    if (!best)
        goto oom;
    for (size_t i = 0; i <= n; i++)
        best[i] = (struct best){-DBL_MAX, unk, 0};
    best[0].score = 0;

    for (size_t off = 0; off < n;) {
        size_t cl = inf__utf8_len(s[off]);
        if (cl > n - off)
            cl = n - off;
        bool single = false;
        double here = best[off].score;
        int64_t node = 0;
        for (size_t p = off; p < n; p++) {
            if (!inf__u64map_get(&u->trie, ((uint64_t)node << 8) | s[p], &node))
                break;
            int32_t id = u->node_token[node];
            if (id < 0)
                continue;
            if (p + 1 - off == cl)
                single = true;
            double sc = here + ((tok->attr[id] & INF__ATTR_USER_DEFINED) ? 0.0 : tok->scores[id]);
            if (sc > best[p + 1].score)
                best[p + 1] = (struct best){sc, id, (uint32_t)off};
        }
        if (!single) {
            double sc = here + (double)u->unk_score;
            if (sc > best[off + cl].score)
                best[off + cl] = (struct best){sc, unk, (uint32_t)off};
        }
        off += cl;
    }

    /* back from the end; runs of unknown tokens become one */
    bool prev_unk = false;
    for (size_t at = n;;) {
        const struct best *t = &best[at];
        bool is_unk = t->token == unk;
        if (!(prev_unk && is_unk) && t->token != INF_TOKEN_NULL &&
            inf_tokens_push(out, t->token) != INF_OK)
            goto oom;
        if (t->from == 0)
            break;
        prev_unk = is_unk;
        at = t->from;
    }
    for (size_t i = n0, j = out->n; i + 1 < j; i++, j--) {
        inf_token x = out->ids[i];
        out->ids[i] = out->ids[j - 1];
        out->ids[j - 1] = x;
    }
    goto out;
oom:
    st = inf__tok_oom(err, len);
out:
    if (st != INF_OK)
        out->n = n0;
    free(b.p);
    free(best);
    return st;
}
