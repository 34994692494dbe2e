/*
 * attention.c - causal attention of a chunk's tokens over the KV cache, on every thread of the
 * context's pool.
 *
 * Once per chunk (inf__attn_plan): the tokens are grouped by sequence; for each sequence the
 * cells it may see are listed in position order, so that each token sees a prefix of its
 * sequence's list (the cells at positions <= its own), and the tokens are cut into blocks.
 * Per layer (inf__attention): one task per (block, KV head) — all query heads that share the KV
 * head, for all tokens of the block — walks the block's cells in tiles of INF_ATTN_TILE: a tile
 * of K and V rows is converted to floats once and used by every query row of the task, through
 * the online-softmax kernels inf_attn_tile / inf_attn_tile_kt (K transposed, for tasks of many
 * rows). Tasks are handed out by an atomic counter, the most
 * expensive first, so both threads stay busy to the end. No software prefetch of the next tile:
 * measured, a burst of 256 prefetches stalls on the fill buffers and made generation's attention
 * 15-30 % slower (small-110m, tinyllama at 2 threads), with no gain for prompts.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/context.h"
#include "engine/ops.h"
#include "inferno/kernels.h"
#include "inferno/threadpool.h"

#define NT INF_ATTN_TILE

/* tokens per block: about 64 query rows per task, at least one token */
static int block_tokens(const struct inf__hparams *hp)
{
    const int group = hp->n_head / hp->n_head_kv;
    const int qb = 64 / group;
    return qb < 1 ? 1 : qb;
}

inf_status inf__attn_init(struct inf_context *ctx, struct inf_error *err)
{
    const struct inf__hparams *hp = &ctx->model->hp;
    struct inf__attn *a = &ctx->attn;
    const size_t nb = ctx->params.n_batch, hd = (size_t)hp->head_dim;
    const int group = hp->n_head / hp->n_head_kv;
    a->qb = block_tokens(hp);
    a->rows_max = a->qb * group;
    a->n_threads = inf_threadpool_n_threads(ctx->pool);
    a->tok = calloc(nb, sizeof(*a->tok));
    a->nvis = calloc(nb, sizeof(*a->nvis));
    a->first = calloc(nb, sizeof(*a->first));
    a->items = calloc(nb, sizeof(*a->items));
    a->ws = calloc((size_t)a->n_threads, sizeof(*a->ws));
    if (!a->tok || !a->nvis || !a->first || !a->items || !a->ws)
        return inf_error_set(err, INF_ENOMEM, "out of memory for the attention plan");
    for (int i = 0; i < a->n_threads; i++) {
        struct inf__attn_ws *w = &a->ws[i];
        const size_t r = (size_t)a->rows_max;
        w->kt = aligned_alloc(64, (NT * hd * sizeof(float) + 63) / 64 * 64);
        w->vt = aligned_alloc(64, (NT * hd * sizeof(float) + 63) / 64 * 64);
        w->ktt = aligned_alloc(64, (NT * hd * sizeof(float) + 63) / 64 * 64);
        w->m = calloc(r, sizeof(float));
        w->l = calloc(r, sizeof(float));
        w->nv = calloc(r, sizeof(int));
        w->rope = calloc((size_t)hp->n_rot + 2, sizeof(float));
        w->sc = calloc((size_t)group * NT, sizeof(float));
        w->q = calloc(r, sizeof(*w->q));
        w->acc = calloc(r, sizeof(*w->acc));
        if (w->ktt)
            memset(w->ktt, 0, NT * hd * sizeof(float));
        if (!w->kt || !w->vt || !w->ktt || !w->rope || !w->sc || !w->m || !w->l || !w->nv ||
            !w->q || !w->acc)
            return inf_error_set(err, INF_ENOMEM, "out of memory for the attention buffers");
    }
    return INF_OK;
}

void inf__attn_free(struct inf_context *ctx)
{
    struct inf__attn *a = &ctx->attn;
    if (a->ws)
        for (int i = 0; i < a->n_threads; i++) {
            struct inf__attn_ws *w = &a->ws[i];
            free(w->kt);
            free(w->vt);
            free(w->ktt);
            free(w->m);
            free(w->l);
            free(w->nv);
            free(w->rope);
            free(w->sc);
            free(w->q);
            free(w->acc);
        }
    free(a->ws);
    free(a->keys);
    free(a->tok);
    free(a->nvis);
    free(a->first);
    free(a->items);
    memset(a, 0, sizeof(*a));
}

static int cmp_u64(const void *x, const void *y)
{
    const uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
    return a < b ? -1 : a > b;
}

static int cmp_item_cost(const void *x, const void *y)
{
    const struct inf__attn_item *a = x, *b = y;
    const int64_t ca = (int64_t)a->max_vis * a->n_tok, cb = (int64_t)b->max_vis * b->n_tok;
    return ca > cb ? -1 : ca < cb;
}

inf_status inf__attn_plan(struct inf_context *ctx, int n, struct inf_error *err)
{
    struct inf__attn *a = &ctx->attn;
    int gid[INF__MAX_SEQ], gseq[INF__MAX_SEQ], gcount[INF__MAX_SEQ], gstart[INF__MAX_SEQ];
    int32_t gpmax[INF__MAX_SEQ];
    int ng = 0;
    for (int s = 0; s < INF__MAX_SEQ; s++)
        gid[s] = -1;
    for (int t = 0; t < n; t++) {
        const int s = ctx->b_seq[t];
        if (gid[s] < 0) {
            gid[s] = ng;
            gseq[ng] = s;
            gcount[ng] = 0;
            gpmax[ng] = ctx->b_pos[t];
            ng++;
        }
        const int g = gid[s];
        gcount[g]++;
        if (ctx->b_pos[t] > gpmax[g])
            gpmax[g] = ctx->b_pos[t];
    }
    /* the tokens grouped by sequence, in batch order within a group */
    for (int g = 0, o = 0; g < ng; g++) {
        gstart[g] = o;
        o += gcount[g];
    }
    {
        int fill[INF__MAX_SEQ];
        memcpy(fill, gstart, sizeof(int) * (size_t)ng);
        for (int t = 0; t < n; t++)
            a->tok[fill[gid[ctx->b_seq[t]]]++] = t;
    }

    /* each group's visible cells as (position << 32 | cell), sorted */
    size_t need = 0;
    for (int g = 0; g < ng; g++) {
        const uint64_t bit = 1ull << gseq[g];
        for (uint32_t c = 0; c < ctx->n_ctx; c++)
            need += (ctx->cells[c].seq & bit) && ctx->cells[c].pos <= gpmax[g];
    }
    if (need > a->keys_cap) {
        uint64_t *k = realloc(a->keys, need * sizeof(*k));
        if (!k)
            return inf_error_set(err, INF_ENOMEM, "out of memory for the attention plan");
        a->keys = k;
        a->keys_cap = need;
    }
    a->n_items = 0;
    size_t off = 0;
    for (int g = 0; g < ng; g++) {
        const uint64_t bit = 1ull << gseq[g];
        uint64_t *keys = a->keys + off;
        size_t nk = 0;
        bool sorted = true;
        for (uint32_t c = 0; c < ctx->n_ctx; c++) {
            const struct inf__kv_cell *cell = &ctx->cells[c];
            if ((cell->seq & bit) && cell->pos <= gpmax[g]) {
                keys[nk] = (uint64_t)(uint32_t)cell->pos << 32 | c;
                sorted &= nk == 0 || keys[nk] > keys[nk - 1];
                nk++;
            }
        }
        if (!sorted)
            qsort(keys, nk, sizeof(*keys), cmp_u64);
        /* token t sees the cells at positions <= pos[t]: a prefix, found by binary search */
        for (int i = 0; i < gcount[g]; i++) {
            const int t = a->tok[gstart[g] + i];
            const uint32_t p = (uint32_t)ctx->b_pos[t];
            size_t lo = 0, hi = nk;
            while (lo < hi) {
                const size_t mid = (lo + hi) / 2;
                if ((uint32_t)(keys[mid] >> 32) <= p)
                    lo = mid + 1;
                else
                    hi = mid;
            }
            a->nvis[t] = (int32_t)lo;
            /* at sliding-window layers it sees from the first cell at a position > pos - n_swa */
            a->first[t] = 0;
            if (ctx->model->hp.has_swa && (int64_t)p >= ctx->model->hp.n_swa) {
                const uint32_t p0 = p - (uint32_t)ctx->model->hp.n_swa + 1;
                size_t l2 = 0, h2 = lo;
                while (l2 < h2) {
                    const size_t mid = (l2 + h2) / 2;
                    if ((uint32_t)(keys[mid] >> 32) < p0)
                        l2 = mid + 1;
                    else
                        h2 = mid;
                }
                a->first[t] = (int32_t)l2;
            }
            /* with a sliding-window cache, every cell in the window must still have its slot */
            if (ctx->n_swa_cells)
                for (size_t j = (size_t)a->first[t]; j < lo; j++)
                    if (ctx->swa_slot[(uint32_t)keys[j]] < 0)
                        return inf_error_set(
                            err, INF_EINVAL,
                            "sequence %d at position %u needs position %u, which the "
                            "sliding-window cache no longer holds (decode the sequence again "
                            "from the position inf_kv_seq_resume_max gives)",
                            gseq[g], p, (unsigned)(keys[j] >> 32));
        }
        for (int i = 0; i < gcount[g]; i += a->qb) {
            struct inf__attn_item *it = &a->items[a->n_items++];
            it->key0 = (int64_t)off;
            it->tok0 = gstart[g] + i;
            it->n_tok = gcount[g] - i < a->qb ? gcount[g] - i : a->qb;
            it->max_vis = 0;
            it->min_first = INT32_MAX;
            it->max_first = 0;
            for (int j = 0; j < it->n_tok; j++) {
                const int32_t v = a->nvis[a->tok[it->tok0 + j]];
                const int32_t f = a->first[a->tok[it->tok0 + j]];
                it->max_vis = v > it->max_vis ? v : it->max_vis;
                it->min_first = f < it->min_first ? f : it->min_first;
                it->max_first = f > it->max_first ? f : it->max_first;
            }
        }
        off += nk;
    }
    if (a->n_items > 1)
        qsort(a->items, (size_t)a->n_items, sizeof(*a->items), cmp_item_cost);
    return INF_OK;
}

struct attn_job {
    struct inf_context *ctx;
    int il;
    struct inf_chunker next;
    int64_t n_tasks;
};

/* K or V rows of KV head kvh for nt cells at layer il, as floats, one after another; runs of
 * consecutive cells or slots (the usual case) are converted in one call */
static void load_tile(const struct inf_context *ctx, int il, void *cache, const uint64_t *keys,
                      int nt, int kvh, float *dst)
{
    const int hd = ctx->model->hp.head_dim;
    for (int j = 0; j < nt;) {
        const int32_t idx = inf__kv_index(ctx, il, (int32_t)(uint32_t)keys[j]);
        if (idx < 0) {
            /* a cell whose sliding-window slot was given back: outside every window of the
             * tile's rows (inf__attn_plan checked), so never weighted; zeros keep it finite */
            memset(dst + (size_t)j * (size_t)hd, 0, (size_t)hd * sizeof(float));
            j++;
            continue;
        }
        int run = 1;
        while (j + run < nt &&
               inf__kv_index(ctx, il, (int32_t)(uint32_t)keys[j + run]) == idx + run)
            run++;
        const void *src = inf__kv_at(ctx, il, cache, idx, kvh);
        float *d = dst + (size_t)j * (size_t)hd;
        const int64_t len = (int64_t)run * hd;
        switch (ctx->params.kv_type) {
        case INF_KV_F32:
            memcpy(d, src, (size_t)len * sizeof(float));
            break;
        case INF_KV_F16:
            inf_f16_to_f32_row(src, d, len);
            break;
        case INF_KV_Q8_0:
            inf_dequantize_row(INF_TYPE_Q8_0, src, d, len, NULL);
            break;
        }
        j += run;
    }
}

/*
 * One tile for one token's query heads (rows r0 .. r0 + group, contiguous in q and acc), the
 * general way: the scores by inf_attn_qk, soft-capped (cap != 0: s -> cap tanh(s / cap)),
 * cells outside [j_lo, j_hi) dropped, folded into each row's online softmax (m, l, acc) with
 * inf_attn_pv. For sliding-window layers (a window that starts inside the tile) and gemma2's
 * capped scores, which the tile kernels do not do.
 */
static void tile_token_general(int hd, int group, const float *q, const float *kt, const float *vt,
                               int j_lo, int j_hi, float scale, float cap, float *sc, float *m,
                               float *l, float *acc)
{
    if (j_lo >= j_hi)
        return;
    /* cells past j_hi are left out (not zero-weighted), so that a token's sums do not depend on
     * how far the tile reaches for other tokens of its block (deterministic contexts) */
    inf_attn_qk(group, j_hi, hd, q, (size_t)hd, INF_TYPE_F32, kt, (size_t)hd, scale, sc, NT);
    for (int h = 0; h < group; h++) {
        float *s = sc + (size_t)h * NT, *a = acc + (size_t)h * (size_t)hd;
        float mx = m[h];
        for (int j = j_lo; j < j_hi; j++) {
            if (cap != 0.0f)
                s[j] = cap * tanhf(s[j] / cap);
            mx = s[j] > mx ? s[j] : mx;
        }
        const float corr = m[h] == -INFINITY ? 0.0f : expf(m[h] - mx);
        float sum = 0.0f;
        for (int j = 0; j < j_hi; j++) {
            const float p = j >= j_lo ? expf(s[j] - mx) : 0.0f;
            s[j] = p;
            sum += p;
        }
        if (corr != 1.0f)
            for (int d = 0; d < hd; d++)
                a[d] *= corr;
        l[h] = l[h] * corr + sum;
        m[h] = mx;
    }
    inf_attn_pv(group, j_hi, hd, sc, NT, INF_TYPE_F32, vt, (size_t)hd, acc, (size_t)hd);
}

static void attn_task(void *arg, int ith, int nth)
{
    (void)nth;
    struct attn_job *job = arg;
    struct inf_context *ctx = job->ctx;
    const struct inf__hparams *hp = &ctx->model->hp;
    const struct inf__attn *a = &ctx->attn;
    struct inf__attn_ws *w = &a->ws[ith];
    const int hd = hp->head_dim, n_kvh = hp->n_head_kv, group = hp->n_head / hp->n_head_kv;
    const size_t nq = (size_t)hp->n_head * (size_t)hd;
    const float scale = hp->attn_scale;
    const float cap = hp->attn_softcap;
    const bool swa = ctx->model->layers[job->il].swa;
    const float *sinks = (const float *)ctx->model->layers[job->il].attn_sinks.data;
    void *kc = ctx->k_cache[job->il], *vc = ctx->v_cache[job->il];
    struct inf__scratch *s = &ctx->scratch;

    for (;;) {
        const int64_t i = inf_chunker_next(&job->next, 1);
        if (i >= job->n_tasks)
            break;
        const struct inf__attn_item *it = &a->items[i / n_kvh];
        const int kvh = (int)(i % n_kvh);
        const int nr = it->n_tok * group;
        for (int b = 0; b < it->n_tok; b++) {
            const size_t t = (size_t)a->tok[it->tok0 + b];
            for (int h = 0; h < group; h++) {
                const int r = b * group + h;
                const size_t off = t * nq + (size_t)(kvh * group + h) * (size_t)hd;
                w->q[r] = s->q + off;
                w->acc[r] = s->attn + off;
                memset(w->acc[r], 0, (size_t)hd * sizeof(float));
                /* an attention sink (gpt-oss) is one more score with a zero value: the row
                 * starts as if it had seen it */
                w->m[r] = sinks ? sinks[kvh * group + h] : -INFINITY;
                w->l[r] = sinks ? 1.0f : 0.0f;
            }
        }
        const uint64_t *keys = a->keys + it->key0;
        /* (deterministic contexts: every token of a sliding-window layer the same way, whatever
         * else shares its block) */
        const bool general =
            cap != 0.0f || (swa && (it->max_first > 0 || ctx->params.deterministic));
        const int j_start = swa ? it->min_first / NT * NT : 0;
        for (int j0 = j_start; j0 < it->max_vis; j0 += NT) {
            const int nt = it->max_vis - j0 < NT ? it->max_vis - j0 : NT;
            load_tile(ctx, job->il, kc, keys + j0, nt, kvh, w->kt);
            load_tile(ctx, job->il, vc, keys + j0, nt, kvh, w->vt);
            if (general) {
                for (int b = 0; b < it->n_tok; b++) {
                    const int t = a->tok[it->tok0 + b];
                    int hi = a->nvis[t] - j0, lo = swa ? a->first[t] - j0 : 0;
                    hi = hi < 0 ? 0 : hi > nt ? nt : hi;
                    lo = lo < 0 ? 0 : lo > hi ? hi : lo;
                    const int r = b * group;
                    tile_token_general(hd, group, w->q[r], w->kt, w->vt, lo, hi, scale, cap, w->sc,
                                       &w->m[r], &w->l[r], w->acc[r]);
                }
                continue;
            }
            for (int b = 0; b < it->n_tok; b++) {
                int v = a->nvis[a->tok[it->tok0 + b]] - j0;
                v = v < 0 ? 0 : v > nt ? nt : v;
                for (int h = 0; h < group; h++)
                    w->nv[b * group + h] = v;
            }
            bool done = false;
            if (nr >= 16 || ctx->params.deterministic) {
                /* many rows (prompts): K transposed, the scores of 16 cells per vector; the
                 * transposition costs about what 4 to 8 rows save, so not for one token's
                 * grouped heads. Deterministic contexts take this path for every row count: the
                 * two kernels sum a score in different orders, and a row's result must not
                 * depend on how many tokens share its block. */
                for (int j = 0; j < nt; j++)
                    for (int d = 0; d < hd; d++)
                        w->ktt[(size_t)d * NT + (size_t)j] =
                            w->kt[(size_t)j * (size_t)hd + (size_t)d];
                done = inf_attn_tile_kt(hd, nr, (const float *const *)w->q, nt, w->ktt, w->vt,
                                        w->nv, scale, w->m, w->l, w->acc);
            }
            if (!done)
                inf_attn_tile(hd, nr, (const float *const *)w->q, nt, w->kt, w->vt, w->nv, scale,
                              w->m, w->l, w->acc);
        }
        for (int r = 0; r < nr; r++) {
            const float inv = w->l[r] > 0 ? 1.0f / w->l[r] : 0.0f;
            for (int d = 0; d < hd; d++)
                w->acc[r][d] *= inv;
        }
    }
}

void inf__attention(struct inf_context *ctx, int il)
{
    struct attn_job job = {
        .ctx = ctx,
        .il = il,
        .n_tasks = (int64_t)ctx->attn.n_items * ctx->model->hp.n_head_kv,
    };
    inf_chunker_init(&job.next, 0);
    inf_threadpool_run(ctx->pool, attn_task, &job);
}
