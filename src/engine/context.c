/* context.c - contexts: KV cache cells shared by sequences, batched decoding,
 * outputs. */
#include "engine/context.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "engine/encoder.h"
#include "engine/ops.h"
#include "inferno/cpu.h"
#include "inferno/kernels.h"
#include "inferno/log.h"
#include "inferno/threadpool.h"

struct inf_context_params inf_context_default_params(void)
{
    /* n_ctx 0: the model's training context; n_threads 0: physical cores */
    return (struct inf_context_params){
        .n_batch = 512,
        .n_seq_max = 1,
        .kv_type = INF_KV_F16,
        .pooling = INF_POOL_MEAN,
    };
}

void inf_context_set_deterministic(struct inf_context *ctx, bool on)
{
    if (ctx)
        ctx->params.deterministic = on;
}

bool inf_context_deterministic(const struct inf_context *ctx)
{
    return ctx && ctx->params.deterministic;
}

void inf_context_free(struct inf_context *ctx)
{
    if (!ctx)
        return;
    inf__prof_report(ctx);
    free(ctx->dump_dir);
    if (ctx->k_cache && ctx->v_cache)
        for (int i = 0; i < ctx->model->hp.n_layer; i++) {
            free(ctx->k_cache[i]);
            free(ctx->v_cache[i]);
        }
    free(ctx->k_cache);
    free(ctx->v_cache);
    free(ctx->swa_slot);
    free(ctx->swa_cell);
    free(ctx->cells);
    struct inf__scratch *s = &ctx->scratch;
    free(s->x);
    free(s->xn);
    free(s->q);
    free(s->k);
    free(s->v);
    free(s->attn);
    free(s->gate);
    free(s->up);
    free(s->act);
    free(s->router);
    free(s->sel);
    free(s->sel_w);
    free(s->rows);
    free(s->moe_in);
    free(s->moe_out);
    free(s->shexp);
    free(s->moe_act);
    free(ctx->b_pos);
    free(ctx->b_seq);
    free(ctx->b_cell);
    free(ctx->logits);
    free(ctx->out_index);
    free(ctx->embd_seq);
    inf__enc_context_free(ctx);
    inf__attn_free(ctx);
    inf_threadpool_free(ctx->pool);
    free(ctx);
}

static void *xcalloc(size_t n, size_t size, size_t *total)
{
    *total += n * size;
    return calloc(n ? n : 1, size);
}

inf_status inf_context_new(struct inf_model *model, const struct inf_context_params *params,
                           struct inf_context **out, struct inf_error *err)
{
    const struct inf__hparams *hp = &model->hp;
    struct inf_context *ctx;
    inf_status st;

    *out = NULL;
    if (params->n_seq_max < 1 || params->n_seq_max > INF__MAX_SEQ)
        return inf_error_set(err, INF_EINVAL, "n_seq_max %u is outside [1, %d]", params->n_seq_max,
                             INF__MAX_SEQ);
    if (params->n_batch < 1)
        return inf_error_set(err, INF_EINVAL, "n_batch must be at least 1");
    if (model->enc)
        return inf__enc_context_new(model, params, out, err); /* no KV cache */
    if (params->kv_type == INF_KV_Q8_0 && hp->head_dim % 32 != 0)
        return inf_error_set(
            err, INF_EUNSUPPORTED,
            "a q8_0 KV cache needs a head size that is a multiple of 32 (it is %d)", hp->head_dim);
    ctx = calloc(1, sizeof(*ctx));
    if (!ctx)
        return inf_error_set(err, INF_ENOMEM, "out of memory");
    ctx->model = model;
    ctx->params = *params;
    {
        const char *e = getenv("INFERNO_PROFILE");
        ctx->prof.on = e && *e && strcmp(e, "0") != 0;
        const char *d = getenv("INFERNO_DUMP");
        if (d && *d && !(ctx->dump_dir = strdup(d))) {
            free(ctx);
            return inf_error_set(err, INF_ENOMEM, "out of memory");
        }
    }
    ctx->n_ctx = params->n_ctx ? params->n_ctx : (uint32_t)hp->n_ctx_train;
    if (ctx->n_ctx < 1 || ctx->n_ctx > (1u << 24)) {
        uint32_t n = ctx->n_ctx;
        free(ctx);
        return inf_error_set(err, INF_EINVAL, "context size %u is out of range", n);
    }
    {
        /* positions past the trained length were never seen in training: allowed, but said */
        uint32_t per_seq = ctx->n_ctx / (params->n_seq_max > 1 ? params->n_seq_max : 1);
        if (hp->n_ctx_train > 0 && per_seq > (uint32_t)hp->n_ctx_train)
            INF_LOG_WARN("engine",
                         "a context of %u tokens per sequence is beyond the model's trained "
                         "length of %u: output may degrade past position %u",
                         per_seq, (unsigned)hp->n_ctx_train, (unsigned)hp->n_ctx_train);
    }
    if (ctx->params.n_batch > ctx->n_ctx)
        ctx->params.n_batch = ctx->n_ctx;
    const size_t nb = ctx->params.n_batch, E = (size_t)hp->n_embd;
    const size_t nq = (size_t)hp->n_head * (size_t)hp->head_dim;
    const size_t nkv = (size_t)hp->n_head_kv * (size_t)hp->head_dim;
    const size_t wide = E > nq ? E : nq;
    size_t scratch = 0;

    ctx->cells = malloc(ctx->n_ctx * sizeof(*ctx->cells));
    ctx->k_cache = calloc((size_t)hp->n_layer, sizeof(void *));
    ctx->v_cache = calloc((size_t)hp->n_layer, sizeof(void *));
    if (!ctx->cells || !ctx->k_cache || !ctx->v_cache)
        goto oom;
    for (uint32_t c = 0; c < ctx->n_ctx; c++) {
        ctx->cells[c].pos = -1;
        ctx->cells[c].seq = 0;
    }
    ctx->kv_head_bytes = inf__kv_row_bytes(params->kv_type, hp->head_dim);
    const size_t kv_row_bytes = ctx->kv_head_bytes * (size_t)hp->n_head_kv;
    /* sliding-window layers: a cache of the window per sequence plus a batch, when smaller */
    if (hp->has_swa) {
        const uint64_t need = (uint64_t)hp->n_swa * params->n_seq_max + ctx->params.n_batch;
        if (need < ctx->n_ctx) {
            ctx->n_swa_cells = (uint32_t)need;
            ctx->swa_slot = malloc(ctx->n_ctx * sizeof(int32_t));
            ctx->swa_cell = malloc(ctx->n_swa_cells * sizeof(int32_t));
            if (!ctx->swa_slot || !ctx->swa_cell)
                goto oom;
            for (uint32_t c = 0; c < ctx->n_ctx; c++)
                ctx->swa_slot[c] = -1;
            for (uint32_t c = 0; c < ctx->n_swa_cells; c++)
                ctx->swa_cell[c] = -1;
        }
    }
    ctx->kv_bytes = 0;
    for (int i = 0; i < hp->n_layer; i++) {
        const size_t rows =
            ctx->n_swa_cells && model->layers[i].swa ? ctx->n_swa_cells : ctx->n_ctx;
        ctx->k_cache[i] = calloc(rows, kv_row_bytes);
        ctx->v_cache[i] = calloc(rows, kv_row_bytes);
        if (!ctx->k_cache[i] || !ctx->v_cache[i])
            goto oom;
        ctx->kv_bytes += 2 * rows * kv_row_bytes;
    }

    struct inf__scratch *s = &ctx->scratch;
    s->x = xcalloc(nb * E, sizeof(float), &scratch);
    s->xn = xcalloc(nb * wide, sizeof(float), &scratch);
    s->q = xcalloc(nb * nq, sizeof(float), &scratch);
    s->k = xcalloc(nb * nkv, sizeof(float), &scratch);
    s->v = xcalloc(nb * nkv, sizeof(float), &scratch);
    s->attn = xcalloc(nb * nq, sizeof(float), &scratch);
    size_t ff = (size_t)hp->n_ff;
    if (hp->n_expert > 0) {
        /* gate/up hold the experts' rows or the shared expert's, never the dense width */
        ff = (size_t)hp->n_ff_exp;
        for (int i = 0; i < hp->n_layer; i++)
            if ((size_t)model->layers[i].gate_shexp.ne[1] > ff)
                ff = (size_t)model->layers[i].gate_shexp.ne[1];
        const size_t X = (size_t)hp->n_expert, K = (size_t)hp->n_expert_used;
        s->router = xcalloc(nb * X, sizeof(float), &scratch);
        s->sel = xcalloc(nb * K, sizeof(int32_t), &scratch);
        s->sel_w = xcalloc(nb * K, sizeof(float), &scratch);
        s->rows = xcalloc(nb * K, sizeof(int32_t), &scratch);
        s->moe_in = xcalloc(nb * E, sizeof(float), &scratch);
        s->moe_out = xcalloc(nb * K * E, sizeof(float), &scratch);
        s->shexp = xcalloc(nb * E, sizeof(float), &scratch);
        /* the widest activation format (F32) of the wider of n_embd and the experts' width */
        const int64_t w = hp->n_embd > hp->n_ff_exp ? hp->n_embd : hp->n_ff_exp;
        s->moe_act_stride = (inf_matmul_act_size(INF_TYPE_F32, w, 1) + 63) / 64 * 64;
        s->moe_act = aligned_alloc(64, s->moe_act_stride * (K + 1));
        scratch += s->moe_act_stride * (K + 1);
        if (!s->router || !s->sel || !s->sel_w || !s->rows || !s->moe_in || !s->moe_out ||
            !s->shexp || !s->moe_act)
            goto oom;
    }
    s->gate = xcalloc(nb * ff, sizeof(float), &scratch);
    s->up = xcalloc(nb * ff, sizeof(float), &scratch);
    s->act_bytes = inf__act_bytes(model, (int)nb);
    s->act = xcalloc(s->act_bytes, 1, &scratch);
    ctx->b_pos = xcalloc(nb, sizeof(int32_t), &scratch);
    ctx->b_seq = xcalloc(nb, sizeof(int32_t), &scratch);
    ctx->b_cell = xcalloc(nb, sizeof(int32_t), &scratch);
    if (!s->x || !s->xn || !s->q || !s->k || !s->v || !s->attn || !s->gate || !s->up || !s->act ||
        !ctx->b_pos || !ctx->b_seq || !ctx->b_cell)
        goto oom;
    s->total_bytes = scratch;
    /* RoPE factors: Llama 3's fixed ones, or LongRoPE's long ones once a sequence may pass the
     * original context (llama.cpp's rule, on the context size per sequence) */
    ctx->rope_ff = model->rope_freqs.data ? (const float *)model->rope_freqs.data : NULL;
    if (model->rope_long.data || model->rope_short.data) {
        const uint32_t per_seq = ctx->n_ctx / params->n_seq_max;
        const struct inf__tensor *f =
            per_seq > (uint32_t)hp->rope_n_ctx_orig ? &model->rope_long : &model->rope_short;
        ctx->rope_ff = f->data ? (const float *)f->data : NULL;
    }
    if (params->embeddings) {
        ctx->embd_seq = calloc((size_t)INF__MAX_SEQ * E, sizeof(float));
        if (!ctx->embd_seq)
            goto oom;
    }
    struct inf_threadpool_params tp;
    inf_threadpool_params_init(&tp);
    tp.n_threads = params->n_threads > 0 ? params->n_threads : inf_cpu_physical_cores();
    st = inf_threadpool_new(&tp, &ctx->pool, err);
    if (st == INF_OK)
        st = inf__attn_init(ctx, err);
    if (st) {
        inf_context_free(ctx);
        return st;
    }
    *out = ctx;
    return INF_OK;
oom:
    inf_context_free(ctx);
    return inf_error_set(err, INF_ENOMEM, "out of memory creating a context of %u cells",
                         params->n_ctx);
}

uint32_t inf_context_n_ctx(const struct inf_context *ctx)
{
    return ctx->n_ctx;
}

/* ---- KV cache per sequence
 * --------------------------------------------------------------- */

static bool seq_ok(int32_t s)
{
    return s >= 0 && s < INF__MAX_SEQ;
}

static bool in_range(int32_t pos, int32_t p0, int32_t p1)
{
    return pos >= (p0 < 0 ? 0 : p0) && (p1 < 0 || pos < p1);
}

/* A cell freed (or no longer needed by sliding-window layers) gives its slot back. */
static void swa_release(struct inf_context *ctx, uint32_t c)
{
    if (ctx->n_swa_cells && ctx->swa_slot[c] >= 0) {
        ctx->swa_cell[ctx->swa_slot[c]] = -1;
        ctx->swa_slot[c] = -1;
    }
}

void inf_kv_seq_rm(struct inf_context *ctx, int32_t seq_id, int32_t p0, int32_t p1)
{
    for (uint32_t c = 0; c < ctx->n_ctx; c++) {
        struct inf__kv_cell *cell = &ctx->cells[c];
        if (cell->pos < 0 || !in_range(cell->pos, p0, p1))
            continue;
        if (seq_id < 0)
            cell->seq = 0; /* all sequences */
        else if (seq_ok(seq_id))
            cell->seq &= ~(1ull << seq_id);
        if (!cell->seq) {
            cell->pos = -1;
            swa_release(ctx, c);
        }
    }
}

void inf_kv_seq_cp(struct inf_context *ctx, int32_t src, int32_t dst, int32_t p0, int32_t p1)
{
    if (!seq_ok(src) || !seq_ok(dst) || src == dst)
        return;
    for (uint32_t c = 0; c < ctx->n_ctx; c++) {
        struct inf__kv_cell *cell = &ctx->cells[c];
        if (cell->pos >= 0 && (cell->seq >> src & 1) && in_range(cell->pos, p0, p1))
            cell->seq |= 1ull << dst;
    }
}

void inf_kv_seq_keep(struct inf_context *ctx, int32_t seq_id)
{
    for (uint32_t c = 0; c < ctx->n_ctx; c++) {
        struct inf__kv_cell *cell = &ctx->cells[c];
        cell->seq = seq_ok(seq_id) ? cell->seq & (1ull << seq_id) : 0;
        if (!cell->seq) {
            cell->pos = -1;
            swa_release(ctx, c);
        }
    }
}

void inf_kv_clear(struct inf_context *ctx)
{
    for (uint32_t c = 0; c < ctx->n_ctx; c++) {
        ctx->cells[c].pos = -1;
        ctx->cells[c].seq = 0;
        swa_release(ctx, c);
    }
}

int32_t inf_kv_seq_pos_max(const struct inf_context *ctx, int32_t seq_id)
{
    int32_t mx = -1;
    if (!seq_ok(seq_id))
        return -1;
    for (uint32_t c = 0; c < ctx->n_ctx; c++)
        if ((ctx->cells[c].seq >> seq_id & 1) && ctx->cells[c].pos > mx)
            mx = ctx->cells[c].pos;
    return mx;
}

int32_t inf_kv_seq_pos_min(const struct inf_context *ctx, int32_t seq_id)
{
    int32_t mn = -1;
    if (!seq_ok(seq_id))
        return -1;
    for (uint32_t c = 0; c < ctx->n_ctx; c++)
        if ((ctx->cells[c].seq >> seq_id & 1) && (mn < 0 || ctx->cells[c].pos < mn))
            mn = ctx->cells[c].pos;
    return mn;
}

int32_t inf_kv_seq_resume_max(const struct inf_context *ctx, int32_t seq_id, int32_t n_keep)
{
    if (!ctx->n_swa_cells || n_keep <= 0 || !seq_ok(seq_id))
        return n_keep < 0 ? 0 : n_keep;
    /* the next token, at n_keep, sees positions (n_keep - n_swa, n_keep) at sliding-window
     * layers: all of them must still have their slots */
    const int32_t n_swa = ctx->model->hp.n_swa;
    const int32_t lo = n_keep - n_swa + 1 > 0 ? n_keep - n_swa + 1 : 0;
    int32_t held = 0;
    for (uint32_t c = 0; c < ctx->n_ctx; c++) {
        const struct inf__kv_cell *cell = &ctx->cells[c];
        if ((cell->seq >> seq_id & 1) && cell->pos >= lo && cell->pos < n_keep &&
            ctx->swa_slot[c] >= 0)
            held++;
    }
    return held == n_keep - lo ? n_keep : 0;
}

static int cmp_age_desc(const void *x, const void *y)
{
    const uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
    return a < b ? 1 : a > b ? -1 : 0;
}

/*
 * A sliding-window slot for cell c. When none is free, give back slots no sequence can see
 * again: a cell at position p is seen by a later token of sequence s at q only if q - p < n_swa,
 * and s's next tokens come after done_max[s] (its last position before this chunk). The oldest
 * go first, a batch's worth at a time, so that recent history stays for prefix reuse
 * (inf_kv_seq_resume_max).
 */
static bool swa_assign(struct inf_context *ctx, uint32_t c, const int32_t *done_max)
{
    for (int pass = 0; pass < 2; pass++) {
        for (uint32_t k = 0; k < ctx->n_swa_cells; k++) {
            const uint32_t slot = (ctx->swa_cursor + k) % ctx->n_swa_cells;
            if (ctx->swa_cell[slot] < 0) {
                ctx->swa_cell[slot] = (int32_t)c;
                ctx->swa_slot[c] = (int32_t)slot;
                ctx->swa_cursor = slot + 1;
                return true;
            }
        }
        if (pass)
            break;
        /* (age << 32 | slot) of every slot no sequence can see: age = how far past the window */
        uint64_t *old = malloc(ctx->n_swa_cells * sizeof(*old));
        if (!old)
            return false;
        const int32_t n_swa = ctx->model->hp.n_swa;
        uint32_t n_old = 0;
        for (uint32_t slot = 0; slot < ctx->n_swa_cells; slot++) {
            const int32_t cell = ctx->swa_cell[slot];
            if (cell < 0 || (uint32_t)cell == c)
                continue;
            const struct inf__kv_cell *kc = &ctx->cells[cell];
            int64_t age = INT32_MAX;
            for (int s = 0; s < INF__MAX_SEQ; s++)
                if (kc->seq >> s & 1) {
                    const int64_t a = (int64_t)done_max[s] + 1 - kc->pos;
                    age = a < age ? a : age;
                }
            if (age >= n_swa)
                old[n_old++] = (uint64_t)age << 32 | slot;
        }
        qsort(old, n_old, sizeof(*old), cmp_age_desc);
        const uint32_t give = n_old < ctx->params.n_batch ? n_old : ctx->params.n_batch;
        for (uint32_t i = 0; i < give; i++)
            swa_release(ctx, (uint32_t)ctx->swa_cell[(uint32_t)old[i]]);
        free(old);
    }
    return false;
}

uint32_t inf_kv_n_free(const struct inf_context *ctx)
{
    uint32_t n = 0;
    for (uint32_t c = 0; c < ctx->n_ctx; c++)
        n += ctx->cells[c].seq == 0;
    return n;
}

/* ---- decoding
 * ----------------------------------------------------------------------------
 */

static inf_status grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return INF_OK;
    void *np = realloc(*p, need * elem);
    if (!np)
        return INF_ENOMEM;
    *p = np;
    *cap = need;
    return INF_OK;
}

inf_status inf_decode(struct inf_context *ctx, const struct inf_batch *b, struct inf_error *err)
{
    const struct inf__hparams *hp = &ctx->model->hp;
    const bool embd = ctx->params.embeddings;
    const size_t row = embd ? (size_t)hp->n_embd : (size_t)hp->n_vocab;
    int32_t seq_max[INF__MAX_SEQ];
    double t0 = inf__now_ms();

    if (ctx->enc)
        return inf__enc_decode(ctx, b, err); /* encoders: whole sequences, no cache */
    if (b->n_tokens <= 0)
        return inf_error_set(err, INF_EINVAL, "empty batch");
    if ((uint32_t)b->n_tokens > inf_kv_n_free(ctx))
        return inf_error_set(err, INF_ELIMIT, "the KV cache has %u free cells, the batch needs %d",
                             inf_kv_n_free(ctx), b->n_tokens);
    for (int s = 0; s < INF__MAX_SEQ; s++)
        seq_max[s] = -2; /* not computed yet */
    int n_out = 0;
    for (int32_t i = 0; i < b->n_tokens; i++) {
        int32_t s = b->seq_id ? b->seq_id[i] : 0;
        int32_t p = b->pos[i];
        if (s < 0 || (uint32_t)s >= ctx->params.n_seq_max)
            return inf_error_set(err, INF_EINVAL, "token %d: sequence id %d outside [0, %u)", i, s,
                                 ctx->params.n_seq_max);
        if (b->token[i] < 0 || b->token[i] >= hp->n_vocab)
            return inf_error_set(err, INF_EINVAL, "token %d: id %d outside the vocabulary", i,
                                 b->token[i]);
        if (seq_max[s] == -2)
            seq_max[s] = inf_kv_seq_pos_max(ctx, s);
        if (p <= seq_max[s])
            return inf_error_set(err, INF_EINVAL,
                                 "token %d: position %d of sequence %d is not after %d, the "
                                 "last position it holds",
                                 i, p, s, seq_max[s]);
        seq_max[s] = p;
        if (embd || !b->logits || b->logits[i])
            n_out++;
    }
    if (grow((void **)&ctx->logits, &ctx->logits_cap, (size_t)n_out * row, sizeof(float)) ||
        grow((void **)&ctx->out_index, &ctx->out_index_cap, (size_t)b->n_tokens, sizeof(int32_t)))
        return inf_error_set(err, INF_ENOMEM, "out of memory for %d output rows", n_out);

    /* each sequence's last position before the chunk being placed (sliding-window slots) */
    int32_t done_max[INF__MAX_SEQ];
    for (int s = 0; s < INF__MAX_SEQ; s++)
        done_max[s] = ctx->n_swa_cells && (uint32_t)s < ctx->params.n_seq_max
                          ? inf_kv_seq_pos_max(ctx, s)
                          : -1;
    /* a free cell search that starts where the last one ended */
    uint32_t cursor = 0;
    int out_base = 0;
    int rows[4096];
    for (int32_t start = 0; start < b->n_tokens; start += (int32_t)ctx->params.n_batch) {
        int n = b->n_tokens - start;
        if (n > (int)ctx->params.n_batch)
            n = (int)ctx->params.n_batch;
        int n_rows = 0;
        int *out_rows = n <= 4096 ? rows : malloc((size_t)n * sizeof(int));
        if (!out_rows)
            return inf_error_set(err, INF_ENOMEM, "out of memory");
        for (int t = 0; t < n; t++) {
            int32_t i = start + t;
            while (ctx->cells[cursor].seq != 0)
                cursor++;
            ctx->cells[cursor].pos = b->pos[i];
            ctx->cells[cursor].seq = 1ull << (b->seq_id ? b->seq_id[i] : 0);
            if (ctx->n_swa_cells && !swa_assign(ctx, cursor, done_max)) {
                for (int u = 0; u <= t; u++) {
                    const uint32_t cu = u < t ? (uint32_t)ctx->b_cell[u] : cursor;
                    ctx->cells[cu].seq = 0;
                    ctx->cells[cu].pos = -1;
                    swa_release(ctx, cu);
                }
                if (out_rows != rows)
                    free(out_rows);
                return inf_error_set(err, INF_ELIMIT, "the sliding-window cache (%u slots) is full",
                                     ctx->n_swa_cells);
            }
            ctx->b_cell[t] = (int32_t)cursor;
            ctx->b_pos[t] = b->pos[i];
            ctx->b_seq[t] = b->seq_id ? b->seq_id[i] : 0;
            if (embd || !b->logits || b->logits[i]) {
                ctx->out_index[i] = out_base + n_rows;
                out_rows[n_rows++] = t;
            } else {
                ctx->out_index[i] = -1;
            }
        }
        inf_status st = inf__attn_plan(ctx, n, err);
        if (st != INF_OK) {
            /* this chunk is not processed: give its cells back (earlier chunks stay) */
            for (int t = 0; t < n; t++) {
                ctx->cells[ctx->b_cell[t]].seq = 0;
                ctx->cells[ctx->b_cell[t]].pos = -1;
                swa_release(ctx, (uint32_t)ctx->b_cell[t]);
            }
            if (out_rows != rows)
                free(out_rows);
            return st;
        }
        inf__forward_chunk(ctx, n, b->token + start, n_rows, out_rows,
                           ctx->logits + (size_t)out_base * row);
        for (int t = 0; t < n; t++)
            if (ctx->b_pos[t] > done_max[ctx->b_seq[t]])
                done_max[ctx->b_seq[t]] = ctx->b_pos[t];
        out_base += n_rows;
        if (out_rows != rows)
            free(out_rows);
    }
    ctx->n_outputs = n_out;

    if (embd) {
        /* pool the normed hidden states per sequence */
        const int E = hp->n_embd;
        int counts[INF__MAX_SEQ] = {0};
        ctx->embd_seq_valid = 0;
        memset(ctx->embd_seq, 0, (size_t)INF__MAX_SEQ * (size_t)E * sizeof(float));
        for (int32_t i = 0; i < b->n_tokens; i++) {
            int32_t s = b->seq_id ? b->seq_id[i] : 0;
            const float *h = ctx->logits + (size_t)ctx->out_index[i] * (size_t)E;
            float *dst = ctx->embd_seq + (size_t)s * (size_t)E;
            bool first = !(ctx->embd_seq_valid >> s & 1);
            switch (ctx->params.pooling) {
            case INF_POOL_MEAN:
            case INF_POOL_NONE:
            case INF_POOL_RANK: /* rerankers are encoders (encoder.c): mean here */
                for (int j = 0; j < E; j++)
                    dst[j] += h[j];
                counts[s]++;
                break;
            case INF_POOL_LAST:
                memcpy(dst, h, (size_t)E * sizeof(float));
                break;
            case INF_POOL_CLS:
                if (first)
                    memcpy(dst, h, (size_t)E * sizeof(float));
                break;
            }
            ctx->embd_seq_valid |= 1ull << s;
        }
        for (int s = 0; s < INF__MAX_SEQ; s++)
            if (counts[s] > 1)
                for (int j = 0; j < E; j++)
                    ctx->embd_seq[(size_t)s * (size_t)E + (size_t)j] /= (float)counts[s];
    }

    double dt = inf__now_ms() - t0;
    if (b->n_tokens > 1) {
        ctx->timings.prompt_ms += dt;
        ctx->timings.n_prompt += b->n_tokens;
    } else {
        ctx->timings.gen_ms += dt;
        ctx->timings.n_gen += 1;
    }
    return INF_OK;
}

const float *inf_get_logits_ith(const struct inf_context *ctx, int32_t i)
{
    if (ctx->params.embeddings || i < 0 || (size_t)i >= ctx->out_index_cap ||
        ctx->out_index[i] < 0 || ctx->out_index[i] >= ctx->n_outputs)
        return NULL;
    return ctx->logits + (size_t)ctx->out_index[i] * (size_t)ctx->model->hp.n_vocab;
}

const float *inf_get_embeddings_seq(const struct inf_context *ctx, int32_t seq_id)
{
    if (!ctx->params.embeddings || !seq_ok(seq_id) || !(ctx->embd_seq_valid >> seq_id & 1))
        return NULL;
    return ctx->embd_seq + (size_t)seq_id * (size_t)ctx->model->hp.n_embd;
}

const float *inf_get_embeddings_ith(const struct inf_context *ctx, int32_t i)
{
    if (!ctx->params.embeddings || i < 0 || (size_t)i >= ctx->out_index_cap ||
        ctx->out_index[i] < 0 || ctx->out_index[i] >= ctx->n_outputs)
        return NULL;
    return ctx->logits + (size_t)ctx->out_index[i] * (size_t)ctx->model->hp.n_embd;
}

void inf_context_timings(const struct inf_context *ctx, struct inf_timings *out)
{
    *out = ctx->timings;
    out->load_ms = ctx->model->load_ms;
}

void inf_context_reset_timings(struct inf_context *ctx)
{
    memset(&ctx->timings, 0, sizeof(ctx->timings));
}

void inf_context_memory(const struct inf_context *ctx, struct inf_memory *out)
{
    out->weights_bytes = ctx->model->info.weights_bytes;
    out->kv_bytes = ctx->kv_bytes;
    out->scratch_bytes = ctx->scratch.total_bytes + ctx->logits_cap * sizeof(float);
}
