/*
 * matmul.c - the threaded matrix products: quantize the activations once, then hand out rows of
 * the weight to the threads.
 *
 * Matrix-vector (one token): memory-bound, so each thread streams whole chunks of consecutive
 * rows (about 64 KiB of weights each) through the level's MR x 1 tile. The chunks are handed out
 * by struct inf_ranges: each thread walks its own contiguous share in order (one sequential
 * stream, and the kernels' prefetch one tile ahead at the end of a chunk fetches the rows of its
 * next chunk: +5-10 % generation at 2 threads), then helps with what the others have left, so a
 * thread slowed by the neighbours takes fewer.
 *
 * Batches: each chunk of rows is multiplied by all tokens, MR rows x MC tokens per kernel call,
 * so a weight block is unpacked once per MC tokens and the chunk's weights are re-read from the
 * L1/L2 cache, not from memory, for every further tile of tokens.
 *
 * INF_MATMUL_INVARIANT: only the gemm tiles (gemm_inv where a level has one), whose every shape
 * computes an output with the same operations as the matrix-vector tile (the contract in
 * kernels/internal.h, tested by test_kernels), never the panels (a different summation order);
 * a row is always whole in one thread, so neither the batch nor the thread count changes a
 * result.
 */
#include <string.h>

#include "inferno/threadpool.h"
#include "kernels/internal.h"

#define ACT_ALIGN   64
#define CHUNK_BYTES (64 * 1024)
#define PANEL_ROWS  64

static size_t act_row_bytes(enum inf_type wtype, int64_t n)
{
    const struct inf_type_traits *t = inf_type_get(wtype);
    if (!t)
        return 0;
    size_t row = inf_type_row_size(t->vec_dot_type, n);
    if (inf__type_act_sums(wtype)) /* the block sums after the blocks (kernels/internal.h) */
        row = inf__x16_sums_offset(n) + (size_t)(n / 32) * sizeof(int32_t);
    const size_t b = (row + ACT_ALIGN - 1) / ACT_ALIGN;
    /* an odd number of cache lines: rows a multiple of 4 KiB apart fall in the same L1 set, and
     * the batched kernels read up to a dozen rows at once (F16 panels, n = 2048: 2x slower) */
    return (b | 1) * ACT_ALIGN;
}

size_t inf_matmul_act_size(enum inf_type wtype, int64_t n, int64_t n_tokens)
{
    return act_row_bytes(wtype, n) * (size_t)(n_tokens > 0 ? n_tokens : 0);
}

struct mm_task {
    const struct inf__kern *k;
    struct inf_threadpool *pool;
    enum inf_type wtype;
    const void *w;
    size_t ldw;
    int64_t n_rows, n;
    const float *x;
    size_t x_stride;
    void *act;
    size_t lda;
    int64_t n_tokens;
    float *y;
    size_t y_stride;
    bool quantize, multiply;
    bool sums;      /* the activations carry block sums (a packed weight reads them) */
    bool invariant; /* INF_MATMUL_INVARIANT: no panels */
    int64_t chunk_rows;
    struct inf_ranges units;
};

/* Whether a product of n_tokens takes the panel kernel. */
static bool use_panel(const struct inf__wkern *wk, int64_t n_tokens, bool invariant)
{
    return wk->panel && n_tokens >= wk->panel_min_nc && !invariant;
}

/* Rows [r0, r1) times all tokens. */
static void mm_rows(const struct inf__kern *k, enum inf_type wtype, const void *w, size_t ldw,
                    int64_t r0, int64_t r1, int64_t n, const void *act, size_t lda,
                    int64_t n_tokens, float *y, size_t y_stride, bool invariant)
{
    const struct inf__wkern *wk = &k->w[wtype];
    const int mr = wk->max_nr, mc = wk->max_nc;
    if (use_panel(wk, n_tokens, invariant)) {
        if (r1 > r0)
            wk->panel(n, (const char *)w + (size_t)r0 * ldw, ldw, act, lda, y + (size_t)r0,
                      y_stride, (int)(r1 - r0), (int)n_tokens);
        return;
    }
    const inf__gemm_fn gemm = invariant && wk->gemm_inv ? wk->gemm_inv : wk->gemm;
    for (int64_t r = r0; r < r1; r += mr) {
        const int nr = (int)(r1 - r < mr ? r1 - r : mr);
        const char *wr = (const char *)w + (size_t)r * ldw;
        for (int64_t t = 0; t < n_tokens; t += mc) {
            const int nc = (int)(n_tokens - t < mc ? n_tokens - t : mc);
            gemm(n, wr, ldw, (const char *)act + (size_t)t * lda, lda,
                 y + (size_t)t * y_stride + (size_t)r, y_stride, nr, nc);
        }
    }
}

static void mm_quantize_part(const struct mm_task *m, int ith, int nth)
{
    const struct inf_type_traits *t = inf_type_get(m->wtype);
    const enum inf_type at = t->vec_dot_type;
    const inf_from_float_fn q = m->k->quantize_act[at];
    const struct inf_type_traits *att = inf_type_get(at);
    if (m->n_tokens >= nth) {
        int64_t t0, t1;
        inf_split_rows(m->n_tokens, ith, nth, 1, &t0, &t1);
        for (int64_t tk = t0; tk < t1; tk++) {
            q(m->x + (size_t)tk * m->x_stride, (char *)m->act + (size_t)tk * m->lda, m->n);
            if (m->sums)
                inf__act_sums_q8_0((char *)m->act + (size_t)tk * m->lda, m->n, 0, m->n / 32);
        }
    } else {
        /* few tokens: split each row into whole activation blocks */
        const int64_t blk = att->blck_size;
        int64_t b0, b1;
        inf_split_rows(m->n / blk, ith, nth, 1, &b0, &b1);
        if (b1 <= b0)
            return;
        for (int64_t tk = 0; tk < m->n_tokens; tk++) {
            q(m->x + (size_t)tk * m->x_stride + (size_t)(b0 * blk),
              (char *)m->act + (size_t)tk * m->lda + (size_t)b0 * att->type_size, (b1 - b0) * blk);
            if (m->sums) /* Q8_0 activations: blocks of 32, as the sums */
                inf__act_sums_q8_0((char *)m->act + (size_t)tk * m->lda, m->n, b0, b1);
        }
    }
}

static void mm_task_fn(void *arg, int ith, int nth)
{
    struct mm_task *m = arg;
    if (m->quantize) {
        mm_quantize_part(m, ith, nth);
        if (m->multiply)
            inf_threadpool_barrier(m->pool);
    }
    if (!m->multiply)
        return;
    for (;;) {
        const int64_t c = inf_ranges_next(&m->units, ith);
        if (c < 0)
            break;
        const int64_t r0 = c * m->chunk_rows;
        const int64_t r1 = r0 + m->chunk_rows < m->n_rows ? r0 + m->chunk_rows : m->n_rows;
        mm_rows(m->k, m->wtype, m->w, m->ldw, r0, r1, m->n, m->act, m->lda, m->n_tokens, m->y,
                m->y_stride, m->invariant);
    }
}

static int64_t chunk_rows_for(const struct inf__kern *k, enum inf_type wtype, size_t ldw,
                              int64_t n_rows, int64_t n_tokens, int nth, bool invariant)
{
    const struct inf__wkern *wk = &k->w[wtype];
    if (use_panel(wk, n_tokens, invariant)) {
        /* whole 16-row panels, up to PANEL_ROWS per chunk, ~4 chunks per thread for balance */
        int64_t per = n_rows / (4 * (int64_t)nth);
        per = per < 16 ? 16 : per > PANEL_ROWS ? PANEL_ROWS : per;
        return (per + 15) / 16 * 16;
    }
    const int mr = wk->max_nr;
    int64_t rows = ldw ? (int64_t)(CHUNK_BYTES / ldw) : 64;
    if (n_tokens > 1) /* batches: smaller chunks, the work per row is larger */
        rows = rows / 4;
    if (rows < mr)
        rows = mr;
    /* at least ~4 chunks per thread for balance */
    const int64_t per = n_rows / (4 * (int64_t)nth);
    if (per < rows)
        rows = per > mr ? per : mr;
    return (rows + mr - 1) / mr * mr;
}

/* F32 activations (F32, F16, BF16 weights) are read in place by the matrix-vector kernels: no
 * copy, and no barrier between the copy and the product. The panel kernels keep the copy, whose
 * row stride is an odd number of cache lines. */
static bool act_in_place(const struct inf__kern *k, enum inf_type wtype, int64_t n_tokens,
                         bool invariant)
{
    return inf_type_get(wtype)->vec_dot_type == INF_TYPE_F32 &&
           !use_panel(&k->w[wtype], n_tokens, invariant);
}

static void mm_run(struct inf_threadpool *pool, enum inf_type wtype, const void *w,
                   size_t w_row_bytes, int64_t n_rows, int64_t n, const float *x, size_t x_stride,
                   const void *act_in, void *act, int64_t n_tokens, float *y, size_t y_stride,
                   bool quantize, bool multiply, bool invariant)
{
    struct mm_task m = {
        .k = inf__kern(),
        .pool = pool,
        .wtype = wtype,
        .w = w,
        .ldw = w_row_bytes,
        .n_rows = n_rows,
        .n = n,
        .x = x,
        .x_stride = x_stride,
        .act = act ? act : (void *)(uintptr_t)act_in,
        .lda = act_row_bytes(wtype, n),
        .n_tokens = n_tokens,
        .y = y,
        .y_stride = y_stride,
        .quantize = quantize,
        .multiply = multiply,
        .sums = inf__type_act_sums(wtype),
        .invariant = invariant,
    };
    if (quantize && multiply && act_in_place(m.k, wtype, n_tokens, invariant)) {
        m.act = (void *)(uintptr_t)x;
        m.lda = x_stride * sizeof(float);
        m.quantize = false;
    }
    const int nth = inf_threadpool_n_threads(pool);
    m.chunk_rows = chunk_rows_for(m.k, wtype, w_row_bytes, n_rows, n_tokens, nth, invariant);
    inf_ranges_init(&m.units, m.chunk_rows ? (n_rows + m.chunk_rows - 1) / m.chunk_rows : 0, nth);
    inf_threadpool_run(pool, mm_task_fn, &m);
}

void inf_matmul(struct inf_threadpool *pool, enum inf_type wtype, const void *w, size_t w_row_bytes,
                int64_t n_rows, int64_t n, const float *x, size_t x_stride, int64_t n_tokens,
                float *y, size_t y_stride, void *act, unsigned flags)
{
    mm_run(pool, wtype, w, w_row_bytes, n_rows, n, x, x_stride, NULL, act, n_tokens, y, y_stride,
           true, true, (flags & INF_MATMUL_INVARIANT) != 0);
}

void inf_matmul_quantize(struct inf_threadpool *pool, enum inf_type wtype, const float *x,
                         size_t x_stride, int64_t n, int64_t n_tokens, void *act)
{
    mm_run(pool, wtype, NULL, 0, 0, n, x, x_stride, NULL, act, n_tokens, NULL, 0, true, false,
           false);
}

void inf_matmul_pre(struct inf_threadpool *pool, enum inf_type wtype, const void *w,
                    size_t w_row_bytes, int64_t n_rows, int64_t n, const void *act,
                    int64_t n_tokens, float *y, size_t y_stride)
{
    mm_run(pool, wtype, w, w_row_bytes, n_rows, n, NULL, 0, act, NULL, n_tokens, y, y_stride, false,
           true, false);
}

void inf_matmul_rows(enum inf_type wtype, const void *w, size_t w_row_bytes, int64_t r0, int64_t r1,
                     int64_t n, const void *act, int64_t n_tokens, float *y, size_t y_stride)
{
    mm_rows(inf__kern(), wtype, w, w_row_bytes, r0, r1, n, act, act_row_bytes(wtype, n), n_tokens,
            y, y_stride, false);
}

void inf_matmul_quantize_row(enum inf_type wtype, const float *x, void *act, int64_t n)
{
    const struct inf__kern *k = inf__kern();
    k->quantize_act[inf_type_get(wtype)->vec_dot_type](x, act, n);
    if (inf__type_act_sums(wtype))
        inf__act_sums_q8_0(act, n, 0, n / 32);
}

/* ---- several weights, one input ------------------------------------------------------------ */

struct mm_multi {
    struct mm_task base; /* the quantization of x, and the kernels */
    int n_ops;
    const struct inf_matmul_op *ops;
    int64_t chunk_rows[4], first_unit[5]; /* op i's chunks are units [first_unit[i], [i + 1]) */
    bool swiglu;
};

static void mm_multi_fn(void *arg, int ith, int nth)
{
    struct mm_multi *mm = arg;
    struct mm_task *m = &mm->base;
    if (m->quantize) {
        mm_quantize_part(m, ith, nth);
        inf_threadpool_barrier(m->pool);
    }
    for (;;) {
        const int64_t u = inf_ranges_next(&m->units, ith);
        if (u < 0)
            break;
        int i = 0;
        while (u >= mm->first_unit[i + 1])
            i++;
        const struct inf_matmul_op *op = &mm->ops[i];
        const int64_t r0 = (u - mm->first_unit[i]) * mm->chunk_rows[i];
        const int64_t r1 =
            r0 + mm->chunk_rows[i] < op->n_rows ? r0 + mm->chunk_rows[i] : op->n_rows;
        mm_rows(m->k, op->wtype, op->w, op->w_row_bytes, r0, r1, m->n, m->act, m->lda, m->n_tokens,
                op->y, op->y_stride, m->invariant);
        if (mm->swiglu) {
            const struct inf_matmul_op *up = &mm->ops[1];
            mm_rows(m->k, up->wtype, up->w, up->w_row_bytes, r0, r1, m->n, m->act, m->lda,
                    m->n_tokens, up->y, up->y_stride, m->invariant);
            for (int64_t t = 0; t < m->n_tokens; t++)
                m->k->swiglu(r1 - r0, op->y + (size_t)t * op->y_stride + (size_t)r0,
                             up->y + (size_t)t * up->y_stride + (size_t)r0);
        }
    }
}

void inf_matmul_multi(struct inf_threadpool *pool, int n_ops, const struct inf_matmul_op *ops,
                      int64_t n, const float *x, size_t x_stride, int64_t n_tokens, void *act,
                      bool swiglu, unsigned flags)
{
    const bool invariant = (flags & INF_MATMUL_INVARIANT) != 0;
    bool same = n_ops >= 1 && n_ops <= 4;
    for (int i = 1; i < n_ops && same; i++)
        same = inf_type_get(ops[i].wtype)->vec_dot_type == inf_type_get(ops[0].wtype)->vec_dot_type;
    if (swiglu)
        same = same && n_ops == 2 && ops[0].n_rows == ops[1].n_rows &&
               ops[0].y_stride == ops[1].y_stride;
    if (!same) {
        for (int i = 0; i < n_ops; i++)
            inf_matmul(pool, ops[i].wtype, ops[i].w, ops[i].w_row_bytes, ops[i].n_rows, n, x,
                       x_stride, n_tokens, ops[i].y, ops[i].y_stride, act, flags);
        if (swiglu && n_ops == 2)
            for (int64_t t = 0; t < n_tokens; t++)
                inf_swiglu(ops[0].n_rows, ops[0].y + (size_t)t * ops[0].y_stride,
                           ops[1].y + (size_t)t * ops[1].y_stride);
        return;
    }
    struct mm_multi mm = {
        .base =
            {
                .k = inf__kern(),
                .pool = pool,
                .wtype = ops[0].wtype,
                .n = n,
                .x = x,
                .x_stride = x_stride,
                .act = act,
                .lda = act_row_bytes(ops[0].wtype, n),
                .n_tokens = n_tokens,
                .quantize = true,
                .invariant = invariant,
            },
        .n_ops = swiglu ? 1 : n_ops, /* with swiglu a unit covers the rows of both */
        .ops = ops,
        .swiglu = swiglu,
    };
    for (int i = 0; i < n_ops; i++) { /* one activation layout for all: the largest rows */
        const size_t lda = act_row_bytes(ops[i].wtype, n);
        if (lda > mm.base.lda) {
            mm.base.lda = lda;
            mm.base.wtype = ops[i].wtype;
        }
        mm.base.sums = mm.base.sums || inf__type_act_sums(ops[i].wtype);
    }
    bool in_place = true;
    for (int i = 0; i < n_ops; i++)
        in_place = in_place && act_in_place(mm.base.k, ops[i].wtype, n_tokens, invariant);
    if (in_place) {
        mm.base.act = (void *)(uintptr_t)x;
        mm.base.lda = x_stride * sizeof(float);
        mm.base.quantize = false;
    }
    const int nth = inf_threadpool_n_threads(pool);
    for (int i = 0; i < mm.n_ops; i++) {
        /* chunks as for one weight, but balanced over the rows of all of them */
        int64_t total = 0;
        for (int j = 0; j < n_ops; j++)
            total += ops[j].n_rows;
        int64_t c = chunk_rows_for(mm.base.k, ops[i].wtype, ops[i].w_row_bytes, total, n_tokens,
                                   nth, invariant);
        if (c > ops[i].n_rows)
            c = ops[i].n_rows;
        mm.chunk_rows[i] = c > 0 ? c : 1;
        mm.first_unit[i + 1] =
            mm.first_unit[i] + (ops[i].n_rows + mm.chunk_rows[i] - 1) / mm.chunk_rows[i];
    }
    inf_ranges_init(&mm.base.units, mm.first_unit[mm.n_ops], nth);
    inf_threadpool_run(pool, mm_multi_fn, &mm);
}

/* ---- attention ---------------------------------------------------------------------------- */

void inf_attn_qk(int64_t n_q, int64_t n_kv, int64_t d, const float *q, size_t q_stride,
                 enum inf_type ktype, const void *k, size_t k_stride, float scale, float *s,
                 size_t s_stride)
{
    const struct inf__kern *kern = inf__kern();
    const struct inf__wkern *wk = &kern->w[ktype];
    const size_t elem = inf_type_get(ktype)->type_size, ldk = k_stride * elem;
    for (int64_t j = 0; j < n_kv; j += wk->max_nr) {
        const int nr = (int)(n_kv - j < wk->max_nr ? n_kv - j : wk->max_nr);
        for (int64_t t = 0; t < n_q; t += wk->max_nc) {
            const int nc = (int)(n_q - t < wk->max_nc ? n_q - t : wk->max_nc);
            wk->gemm(d, (const char *)k + (size_t)j * ldk, ldk, q + (size_t)t * q_stride,
                     q_stride * sizeof(float), s + (size_t)t * s_stride + (size_t)j, s_stride, nr,
                     nc);
        }
    }
    if (scale != 1.0f)
        for (int64_t t = 0; t < n_q; t++)
            kern->scale(n_kv, s + (size_t)t * s_stride, scale);
}

void inf_attn_pv(int64_t n_q, int64_t n_kv, int64_t d, const float *p, size_t p_stride,
                 enum inf_type vtype, const void *v, size_t v_stride, float *out, size_t out_stride)
{
    const struct inf__kern *kern = inf__kern();
    for (int64_t t = 0; t < n_q; t++) {
        const float *pt = p + (size_t)t * p_stride;
        float *o = out + (size_t)t * out_stride;
        int64_t j = 0;
        if (vtype == INF_TYPE_F16) {
            const uint16_t *vv = v;
            for (; j + 4 <= n_kv; j += 4) {
                const uint16_t *rows[4] = {
                    vv + (size_t)j * v_stride, vv + (size_t)(j + 1) * v_stride,
                    vv + (size_t)(j + 2) * v_stride, vv + (size_t)(j + 3) * v_stride};
                kern->axpy4_f16(d, pt + j, rows, o);
            }
            for (; j < n_kv; j++)
                kern->axpy_f16(d, pt[j], vv + (size_t)j * v_stride, o);
        } else {
            const float *vv = v;
            for (; j + 4 <= n_kv; j += 4) {
                const float *rows[4] = {vv + (size_t)j * v_stride, vv + (size_t)(j + 1) * v_stride,
                                        vv + (size_t)(j + 2) * v_stride,
                                        vv + (size_t)(j + 3) * v_stride};
                kern->axpy4_f32(d, pt + j, rows, o);
            }
            for (; j < n_kv; j++)
                kern->axpy_f32(d, pt[j], vv + (size_t)j * v_stride, o);
        }
    }
}
