/*
 * ops_nn.c - the neural-network operators: MatMul, Gemm, Conv (im2col packed straight into
 * the GEMM's B tiles, bias + fused BatchNormalization + ReLU in its epilogue), MaxPool,
 * AveragePool, GlobalAveragePool/GlobalMaxPool, BatchNormalization.
 */
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "inferno/cpu.h"
#include "onnx/onnx_internal.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

/* ---- MatMul / Gemm ---- */

static inf_status matmul_generic(struct inf__onnx_exec *x, const struct inf_onnx_tensor *A,
                                 int64_t aoff, const struct inf_onnx_tensor *B, int64_t boff,
                                 struct inf_onnx_tensor *C, int64_t coff, int64_t M, int64_t K,
                                 int64_t N)
{
    (void)x;
    bool isint = !inf__onnx_is_float(C->dtype);
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            if (isint) {
                int64_t s = 0;
                for (int64_t k = 0; k < K; k++)
                    s += inf__onnx_get_i64(A, aoff + i * K + k) *
                         inf__onnx_get_i64(B, boff + k * N + j);
                inf__onnx_set_i64(C, coff + i * N + j, s);
            } else {
                double s = 0;
                for (int64_t k = 0; k < K; k++)
                    s += inf__onnx_get_f64(A, aoff + i * K + k) *
                         inf__onnx_get_f64(B, boff + k * N + j);
                inf__onnx_set_f64(C, coff + i * N + j, s, true);
            }
        }
    return INF_OK;
}

static inf_status op_matmul(struct inf__onnx_exec *x, const struct inf__onnx_node *n,
                            struct inf_onnx_tensor *const *in, struct inf_onnx_tensor *out)
{
    const struct inf_onnx_tensor *A = in[0], *B = in[1];
    if (A->dtype != B->dtype)
        return inf__onnx_fail(x, n, INF_ETYPE, "operand types differ");
    if (A->ndim < 1 || B->ndim < 1)
        return inf__onnx_fail(x, n, INF_EINVAL, "scalar operand");
    int64_t ad[INF_ONNX_MAX_DIMS + 1], bd[INF_ONNX_MAX_DIMS + 1];
    int an = A->ndim, bn = B->ndim;
    memcpy(ad, A->dims, sizeof(int64_t) * (size_t)an);
    memcpy(bd, B->dims, sizeof(int64_t) * (size_t)bn);
    bool a1 = an == 1, b1 = bn == 1;
    if (a1) {
        ad[1] = ad[0];
        ad[0] = 1;
        an = 2;
    }
    if (b1) {
        bd[1] = 1;
        bn = 2;
    }
    int64_t M = ad[an - 2], K = ad[an - 1], N = bd[bn - 1];
    if (bd[bn - 2] != K)
        return inf__onnx_fail(x, n, INF_EINVAL, "inner dims %" PRId64 " and %" PRId64 " differ", K,
                              bd[bn - 2]);
    int nb;
    int64_t batch[INF_ONNX_MAX_DIMS];
    if (!inf__onnx_broadcast(an - 2, ad, bn - 2, bd, &nb, batch))
        return inf__onnx_fail(x, n, INF_EINVAL, "batch dims do not broadcast");
    int64_t od[INF_ONNX_MAX_DIMS + 2];
    int ond = 0;
    for (int i = 0; i < nb; i++)
        od[ond++] = batch[i];
    if (!a1)
        od[ond++] = M;
    if (!b1)
        od[ond++] = N;
    if (ond > INF_ONNX_MAX_DIMS)
        return inf__onnx_fail(x, n, INF_ELIMIT, "too many dims");
    inf_status rc = inf__onnx_out(x, out, A->dtype, ond, od);
    if (rc || !out->n)
        return rc;
    int64_t nbatch = inf__onnx_numel(nb, batch);
    bool f32 = A->dtype == INF_ONNX_FLOAT;
    /* B without batch dims: the batch folds into M */
    if (f32 && bn == 2) {
        /* the fused Add's row (load.c, fuse_matmul_add): B is constant and 2-D, so here */
        const float *cb =
            n->fuse_bias >= 0 ? (const float *)x->m->values[n->fuse_bias].konst.data : NULL;
        struct inf__sgemm_args g = {.col_bias = cb,
                                    .M = M * (an == 2 ? 1 : inf__onnx_numel(an - 2, ad)),
                                    .N = N,
                                    .K = K,
                                    .A = A->data,
                                    .lda = K,
                                    .B = B->data,
                                    .ldb = N,
                                    .C = out->data,
                                    .ldc = N,
                                    .alpha = 1.f};
        if (!inf__sgemm(x->pool, &g))
            return inf_error_set(x->err, INF_ENOMEM, "out of memory");
        return INF_OK;
    }
    for (int64_t bi = 0; bi < nbatch; bi++) {
        /* offsets of this batch element in A and B (broadcast) */
        int64_t rem = bi, ao = 0, bo = 0, as = M * K, bs = K * N;
        for (int d = nb - 1; d >= 0; d--) {
            int64_t i = rem % batch[d];
            rem /= batch[d];
            int da = d - (nb - (an - 2)), db = d - (nb - (bn - 2));
            if (da >= 0) {
                if (ad[da] != 1)
                    ao += i * as;
                as *= ad[da];
            }
            if (db >= 0) {
                if (bd[db] != 1)
                    bo += i * bs;
                bs *= bd[db];
            }
        }
        if (f32) {
            struct inf__sgemm_args g = {.M = M,
                                        .N = N,
                                        .K = K,
                                        .A = (const float *)A->data + ao,
                                        .lda = K,
                                        .B = (const float *)B->data + bo,
                                        .ldb = N,
                                        .C = (float *)out->data + bi * M * N,
                                        .ldc = N,
                                        .alpha = 1.f};
            if (!inf__sgemm(x->pool, &g))
                return inf_error_set(x->err, INF_ENOMEM, "out of memory");
        } else {
            matmul_generic(x, A, ao, B, bo, out, bi * M * N, M, K, N);
        }
    }
    return INF_OK;
}

static inf_status op_gemm(struct inf__onnx_exec *x, const struct inf__onnx_node *n,
                          struct inf_onnx_tensor *const *in, struct inf_onnx_tensor *out)
{
    const struct inf_onnx_tensor *A = in[0], *B = in[1], *C = n->n_in > 2 ? in[2] : NULL;
    bool ta = inf__onnx_attr_i(n, "transA", 0) != 0, tb = inf__onnx_attr_i(n, "transB", 0) != 0;
    float alpha = inf__onnx_attr_f(n, "alpha", 1.f), beta = inf__onnx_attr_f(n, "beta", 1.f);
    if (A->ndim != 2 || B->ndim != 2)
        return inf__onnx_fail(x, n, INF_EINVAL, "A and B must be 2-D");
    if (A->dtype != INF_ONNX_FLOAT || B->dtype != INF_ONNX_FLOAT ||
        (C && C->dtype != INF_ONNX_FLOAT))
        return inf__onnx_fail(x, n, INF_EUNSUPPORTED, "only float Gemm is supported");
    int64_t M = ta ? A->dims[1] : A->dims[0], K = ta ? A->dims[0] : A->dims[1];
    int64_t K2 = tb ? B->dims[1] : B->dims[0], N = tb ? B->dims[0] : B->dims[1];
    if (K != K2)
        return inf__onnx_fail(x, n, INF_EINVAL, "inner dims %" PRId64 " and %" PRId64 " differ", K,
                              K2);
    int64_t od[2] = {M, N};
    inf_status rc = inf__onnx_out(x, out, INF_ONNX_FLOAT, 2, od);
    if (rc || !out->n)
        return rc;
    bool acc = false;
    if (C && beta != 0.f) {
        int nd;
        int64_t bd[INF_ONNX_MAX_DIMS];
        if (C->ndim > 2 || !inf__onnx_broadcast(2, od, C->ndim, C->dims, &nd, bd) || bd[0] != M ||
            bd[1] != N)
            return inf__onnx_fail(x, n, INF_EINVAL, "C does not broadcast to [M, N]");
        int64_t cm = C->ndim == 2 ? C->dims[0] : 1, cn = C->ndim >= 1 ? C->dims[C->ndim - 1] : 1;
        float *o = out->data;
        const float *c = C->data;
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++)
                o[i * N + j] = beta * c[(cm == 1 ? 0 : i) * cn + (cn == 1 ? 0 : j)];
        acc = true;
    }
    struct inf__sgemm_args g = {.M = M,
                                .N = N,
                                .K = K,
                                .A = A->data,
                                .lda = A->dims[1],
                                .ta = ta,
                                .B = B->data,
                                .ldb = B->dims[1],
                                .tb = tb,
                                .C = out->data,
                                .ldc = N,
                                .alpha = alpha,
                                .accumulate = acc};
    if (!inf__sgemm(x->pool, &g))
        return inf_error_set(x->err, INF_ENOMEM, "out of memory");
    return INF_OK;
}

/* ---- spatial attributes shared by Conv and the pools ---- */

struct spatial {
    int nd; /* spatial dims, 1..3 */
    int64_t in[3], k[3], s[3], d[3], pb[3], pe[3], out[3];
};

static inf_status spatial_init(struct inf__onnx_exec *x, const struct inf__onnx_node *n,
                               const struct inf_onnx_tensor *X, const int64_t *kernel, bool ceil,
                               struct spatial *sp)
{
    int nd = X->ndim - 2;
    if (nd < 1 || nd > 3)
        return inf__onnx_fail(x, n, INF_EUNSUPPORTED, "%d spatial dims (1 to 3 are supported)", nd);
    sp->nd = nd;
    const int64_t *v;
    int c;
    for (int i = 0; i < nd; i++) {
        sp->in[i] = X->dims[2 + i];
        sp->k[i] = kernel[i];
        sp->s[i] = sp->d[i] = 1;
        sp->pb[i] = sp->pe[i] = 0;
        if (kernel[i] < 1)
            return inf__onnx_fail(x, n, INF_EINVAL, "kernel dim < 1");
    }
    if ((c = inf__onnx_attr_ints(n, "strides", &v)) >= 0) {
        if (c != nd)
            return inf__onnx_fail(x, n, INF_EINVAL, "strides has %d values for %d dims", c, nd);
        for (int i = 0; i < nd; i++)
            sp->s[i] = v[i];
    }
    if ((c = inf__onnx_attr_ints(n, "dilations", &v)) >= 0) {
        if (c != nd)
            return inf__onnx_fail(x, n, INF_EINVAL, "dilations has %d values for %d dims", c, nd);
        for (int i = 0; i < nd; i++)
            sp->d[i] = v[i];
    }
    for (int i = 0; i < nd; i++)
        if (sp->s[i] < 1 || sp->d[i] < 1 || sp->s[i] > (1 << 20) || sp->d[i] > (1 << 20) ||
            sp->k[i] > (1 << 20))
            return inf__onnx_fail(x, n, INF_EINVAL, "stride, dilation or kernel out of range");
    const char *ap = inf__onnx_attr_s(n, "auto_pad", "NOTSET");
    if (!strcmp(ap, "SAME_UPPER") || !strcmp(ap, "SAME_LOWER")) {
        for (int i = 0; i < nd; i++) {
            int64_t o = (sp->in[i] + sp->s[i] - 1) / sp->s[i];
            int64_t ext = (sp->k[i] - 1) * sp->d[i] + 1;
            int64_t pad = (o - 1) * sp->s[i] + ext - sp->in[i];
            if (pad < 0)
                pad = 0;
            sp->pb[i] = !strcmp(ap, "SAME_UPPER") ? pad / 2 : pad - pad / 2;
            sp->pe[i] = pad - sp->pb[i];
            sp->out[i] = o;
        }
        return INF_OK;
    }
    if (strcmp(ap, "NOTSET") && strcmp(ap, "VALID"))
        return inf__onnx_fail(x, n, INF_EINVAL, "auto_pad '%s'", ap);
    if (!strcmp(ap, "NOTSET") && (c = inf__onnx_attr_ints(n, "pads", &v)) >= 0) {
        if (c != 2 * nd)
            return inf__onnx_fail(x, n, INF_EINVAL, "pads has %d values for %d dims", c, nd);
        for (int i = 0; i < nd; i++) {
            sp->pb[i] = v[i];
            sp->pe[i] = v[nd + i];
            if (v[i] < 0 || v[nd + i] < 0 || v[i] > (1 << 20) || v[nd + i] > (1 << 20))
                return inf__onnx_fail(x, n, INF_EINVAL, "pads out of range");
        }
    }
    for (int i = 0; i < nd; i++) {
        int64_t ext = (sp->k[i] - 1) * sp->d[i] + 1;
        int64_t span = sp->in[i] + sp->pb[i] + sp->pe[i] - ext;
        if (span < 0)
            return inf__onnx_fail(x, n, INF_EINVAL, "kernel larger than the padded input");
        int64_t o = ceil ? (span + sp->s[i] - 1) / sp->s[i] + 1 : span / sp->s[i] + 1;
        if (ceil && (o - 1) * sp->s[i] >= sp->in[i] + sp->pb[i])
            o--;
        sp->out[i] = o;
    }
    return INF_OK;
}

/* ---- Conv ---- */

/* Short copies (one panel row, <= 16 floats) inline: a libc call costs more than the copy. */
static inline void copy_short(float *restrict d, const float *restrict s, int n)
{
    if (n == 16) {
        memcpy(d, s, 64);
        return;
    }
    if (n >= 8) {
        memcpy(d, s, 32);
        d += 8, s += 8, n -= 8;
    }
    if (n >= 4) {
        memcpy(d, s, 16);
        d += 4, s += 4, n -= 4;
    }
    if (n >= 2) {
        memcpy(d, s, 8);
        d += 2, s += 2, n -= 2;
    }
    if (n)
        *d = *s;
}

static inline void zero_short(float *d, int n)
{
    static const float z[16];
    copy_short(d, z, n);
}

struct conv_b {
    const float *x; /* this image, first channel of the group */
    int64_t H, W, kh, kw, sh, sw, dh, dw, pt, pl, OW;
    bool pointwise;  /* 1x1, stride 1, no padding: B rows are the input planes */
    const float *ss; /* pointwise only: the absorbed BatchNormalization's per-channel scales,
                        then shifts (node pre_ss, from this group's first channel; C apart) */
    int64_t ssC;
    bool srelu;
};

/* One row of a pointwise tile's B panels with the absorbed BatchNormalization (+ ReLU):
   v = x * sc + sh (a product then a sum, as op_batchnorm rounds), n columns from src into
   16-column panels stride floats apart, the last one zero padded. */
static void affine_row(float *dk, int64_t stride, const float *src, int64_t n, float sc, float sh,
                       bool relu)
{
    int64_t jp = 0;
    for (; jp + 16 <= n; jp += 16, dk += stride)
        for (int t = 0; t < 16; t++) {
            float v = src[jp + t] * sc + sh;
            dk[t] = !relu || v > 0.f ? v : 0.f;
        }
    if (jp < n) {
        int t = 0;
        for (; jp + t < n; t++) {
            float v = src[jp + t] * sc + sh;
            dk[t] = !relu || v > 0.f ? v : 0.f;
        }
        for (; t < 16; t++)
            dk[t] = 0.f;
    }
}

#if defined(__x86_64__)
__attribute__((target("avx512f"))) static void affine_row_avx512(float *dk, int64_t stride,
                                                                 const float *src, int64_t n,
                                                                 float sc, float sh, bool relu)
{
    const __m512 vs = _mm512_set1_ps(sc), vh = _mm512_set1_ps(sh), zero = _mm512_setzero_ps();
    int64_t jp = 0;
    for (; jp + 16 <= n; jp += 16, dk += stride) {
        __m512 v = _mm512_add_ps(_mm512_mul_ps(_mm512_loadu_ps(src + jp), vs), vh);
        _mm512_store_ps(dk, relu ? _mm512_max_ps(v, zero) : v); /* NaN -> 0, as v > 0 ? v : 0 */
    }
    if (jp < n) {
        __mmask16 m = (__mmask16)((1u << (n - jp)) - 1u);
        __m512 v = _mm512_add_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, src + jp), vs), vh);
        _mm512_store_ps(dk, relu ? _mm512_maskz_max_ps(m, v, zero) : _mm512_maskz_mov_ps(m, v));
    }
}
#endif

/* A pointwise tile's B panels with the absorbed BatchNormalization (+ ReLU) applied: rows
   [k0, k0 + kc) are input planes, columns [j0, j0 + nc) one contiguous run of each. */
static void pack_b_affine(const struct conv_b *c, int64_t k0, int64_t kc, int64_t j0, int64_t nc,
                          float *dst)
{
    const int64_t HW = c->H * c->W;
    void (*row)(float *, int64_t, const float *, int64_t, float, float, bool) = affine_row;
#if defined(__x86_64__)
    /* the panels are 64-byte aligned (the GEMM's buffers, panel strides a multiple of 16) */
    if (inf_cpu_features()->avx512f && !((uintptr_t)dst & 63))
        row = affine_row_avx512;
#endif
    for (int64_t k = 0; k < kc; k++)
        row(dst + k * 16, INF__PANEL_STRIDE(kc), c->x + (k0 + k) * HW + j0, nc, c->ss[k0 + k],
            c->ss[c->ssC + k0 + k], c->srelu);
}

static void pack_b_conv(const void *ctx, int64_t k0, int64_t kc, int64_t j0, int64_t nc, float *dst)
{
    const struct conv_b *c = ctx;
    if (c->ss) {
        pack_b_affine(c, k0, kc, j0, nc, dst);
        return;
    }
    const int64_t HW = c->H * c->W, khw = c->kh * c->kw;
    /* per k of this block: channel plane offset and kernel offsets (no division per panel) */
    int64_t kplane[512], kdy[512], kdx[512];
    if (!c->pointwise && kc <= 512)
        for (int64_t k = 0, ch = k0 / khw, r = k0 % khw; k < kc; k++) {
            kplane[k] = ch * HW;
            kdy[k] = (r / c->kw) * c->dh;
            kdx[k] = (r % c->kw) * c->dw;
            if (++r == khw)
                r = 0, ch++;
        }
    if (kc <= 512 && nc <= 512) {
        /* k outer: each k reads its input rows once for the whole tile, a few pages, and
           scatters them into the panels (k inner would touch a page per channel per panel) */
        int64_t ch_oy[512], ch_ox[512];
        int ch_j[512], ch_len[512], n_ch = 0;
        for (int64_t j = 0; j < nc;) {
            int64_t p = j0 + j, oy = p / c->OW, ox = p % c->OW;
            int64_t len = c->OW - ox;
            if (len > nc - j)
                len = nc - j;
            if (len > 16 - (j & 15))
                len = 16 - (j & 15);
            ch_oy[n_ch] = oy;
            ch_ox[n_ch] = ox;
            ch_j[n_ch] = (int)j;
            ch_len[n_ch++] = (int)len;
            j += len;
        }
        int tail = (int)(nc & 15);
        float *last = dst + (nc >> 4) * INF__PANEL_STRIDE(kc);
        for (int64_t k = 0; k < kc; k++) {
            if (tail)
                zero_short(last + k * 16 + tail, 16 - tail);
            for (int q = 0; q < n_ch; q++) {
                int j = ch_j[q], len = ch_len[q];
                float *dk = dst + (j >> 4) * INF__PANEL_STRIDE(kc) + k * 16 + (j & 15);
                if (c->pointwise) {
                    copy_short(dk, c->x + (k0 + k) * HW + ch_oy[q] * c->OW + ch_ox[q], len);
                    continue;
                }
                int64_t iy = ch_oy[q] * c->sh - c->pt + kdy[k],
                        ix = ch_ox[q] * c->sw - c->pl + kdx[k];
                if (iy < 0 || iy >= c->H) {
                    zero_short(dk, len);
                    continue;
                }
                const float *row = c->x + kplane[k] + iy * c->W;
                if (c->sw == 1) {
                    int lo = ix < 0 ? (int)(-ix < len ? -ix : len) : 0;
                    int hi = ix + len > c->W ? (int)(c->W - ix > lo ? c->W - ix : lo) : len;
                    zero_short(dk, lo);
                    copy_short(dk + lo, row + ix + lo, hi - lo);
                    zero_short(dk + hi, len - hi);
                } else {
                    /* q-th pixel reads ix + q * sw */
                    for (int t = 0; t < len; t++) {
                        int64_t xx = ix + t * c->sw;
                        dk[t] = xx >= 0 && xx < c->W ? row[xx] : 0.f;
                    }
                }
            }
        }
        return;
    }
    for (int64_t jp = 0; jp < nc; jp += 16) {
        float *d = dst + (jp / 16) * INF__PANEL_STRIDE(kc);
        int nr = nc - jp < 16 ? (int)(nc - jp) : 16;
        /* tiles wider or deeper than the tables above (not with KC and NC as they are) */
        int64_t iy0[16], ix0[16];
        for (int j = 0; j < 16; j++) {
            int64_t p = j0 + jp + (j < nr ? j : 0);
            iy0[j] = (p / c->OW) * c->sh - c->pt;
            ix0[j] = (p % c->OW) * c->sw - c->pl;
        }
        for (int64_t k = 0; k < kc; k++) {
            int64_t kk = k0 + k, ch = kk / khw, r = kk % khw;
            int64_t dy = (r / c->kw) * c->dh, dx = (r % c->kw) * c->dw;
            const float *plane = c->x + ch * HW;
            float *dk = d + k * 16;
            for (int j = 0; j < 16; j++) {
                int64_t iy = iy0[j] + dy, ix = ix0[j] + dx;
                dk[j] = j < nr && iy >= 0 && iy < c->H && ix >= 0 && ix < c->W
                            ? plane[iy * c->W + ix]
                            : 0.f;
            }
        }
    }
}

struct pad_task {
    const struct conv_b *cb;
    float *xp;
    int64_t Cg, Hp, Wp, Hq, Wq, plane, phase;
};

#if defined(__x86_64__)
/* pad_worker's stride-1 copy, a padded row at a time in 16-float pieces: each piece loads the
   input columns it covers under a mask (lanes outside the row are not read) and stores zeros
   elsewhere, where memcpy + memset per row cost a call each on 7- to 56-float rows */
__attribute__((target("avx512f"))) static void pad_rows_avx512(const struct pad_task *t, int64_t c0,
                                                               int64_t c1)
{
    const struct conv_b *cb = t->cb;
    const int64_t H = cb->H, W = cb->W, pt = cb->pt, pl = cb->pl, Wp = t->Wp, Hp = t->Hp;
    const __m512 zero = _mm512_setzero_ps();
    const __m512i lane = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
    for (int64_t c = c0; c < c1; c++) {
        float *pc = t->xp + c * t->plane;
        const float *src = cb->x + c * H * W;
        for (int64_t y = 0; y < Hp; y++) {
            float *d = pc + y * Wp;
            int64_t iy = y - pt;
            if (iy < 0 || iy >= H) {
                for (int64_t j = 0; j < Wp; j += 16) {
                    int64_t n = Wp - j < 16 ? Wp - j : 16;
                    _mm512_mask_storeu_ps(d + j, (__mmask16)((1u << n) - 1u), zero);
                }
                continue;
            }
            /* padded column j reads input column j - pl (as an address: j - pl may be < 0) */
            const uintptr_t row = (uintptr_t)(src + iy * W) - (uintptr_t)pl * sizeof(float);
            for (int64_t j = 0; j < Wp; j += 16) {
                int64_t n = Wp - j < 16 ? Wp - j : 16;
                /* lanes q with pl <= j + q < pl + W hold input */
                __m512i col = _mm512_add_epi32(lane, _mm512_set1_epi32((int)(j - pl)));
                __mmask16 in = _mm512_cmpge_epi32_mask(col, _mm512_setzero_si512()) &
                               _mm512_cmplt_epi32_mask(col, _mm512_set1_epi32((int)W));
                __m512 v = _mm512_maskz_loadu_ps(in, (const void *)(row + (uintptr_t)j * 4));
                _mm512_mask_storeu_ps(d + j, (__mmask16)((1u << n) - 1u), v);
            }
        }
    }
}
#endif

/* conv_padded's zero-padded (stride > 1: phase-split) copy of channels of the input, thread
   ith's contiguous share of them */
static void pad_worker(void *arg, int ith, int nth)
{
    const struct pad_task *t = arg;
    const struct conv_b *cb = t->cb;
    const int64_t st = cb->sh, H = cb->H, W = cb->W, pt = cb->pt, pl = cb->pl, Wp = t->Wp,
                  Hp = t->Hp, Hq = t->Hq, Wq = t->Wq, plane = t->plane, phase = t->phase;
    int64_t c0, c1;
    inf_split_rows(t->Cg, ith, nth, 1, &c0, &c1);
    if (st == 1) {
#if defined(__x86_64__)
        if (inf_cpu_features()->avx512f) {
            pad_rows_avx512(t, c0, c1);
            return;
        }
#endif
        /* the copy, and zeros only where the copy does not write (borders) */
        int64_t pr = Wp - pl - W;
        for (int64_t c = c0; c < c1; c++) {
            float *pc = t->xp + c * plane;
            memset(pc, 0, sizeof(float) * (size_t)(pt * Wp + pl));
            for (int64_t y = 0; y < H; y++) {
                float *row = pc + (y + pt) * Wp + pl;
                memcpy(row, cb->x + (c * H + y) * W, sizeof(float) * (size_t)W);
                /* the right border of this row and the left border of the next one */
                memset(row + W, 0, sizeof(float) * (size_t)(pr + (y + 1 < H ? pl : 0)));
            }
            memset(pc + (pt + H) * Wp, 0, sizeof(float) * (size_t)((Hp - pt - H) * Wp));
        }
        return;
    }
    for (int64_t py = 0; py < st; py++)
        for (int64_t px = 0; px < st; px++)
            for (int64_t c = c0; c < c1; c++)
                for (int64_t i = 0; i < Hq; i++) {
                    float *d = t->xp + (py * st + px) * phase + c * plane + i * Wq;
                    int64_t y = st * i + py - pt;
                    const float *row = y >= 0 && y < H ? cb->x + (c * H + y) * W : NULL;
                    for (int64_t j = 0; j < Wq; j++) {
                        int64_t xx = st * j + px - pl;
                        d[j] = row && xx >= 0 && xx < W ? row[xx] : 0.f;
                    }
                }
}

/*
 * Winograd F(2x2, 3x3) for 3x3 convolutions of stride 1 (Lavin and Gray, "Fast Algorithms for
 * Convolutional Neural Networks", 2016): each 2x2 block of outputs ("tile") comes from a 4x4
 * patch d of the zero-padded input as A^T [sum over c of (G g G^T) .* (B^T d B)] A, 16
 * products per tile and channel pair instead of 36. Per work item (a run of tiles), for every
 * channel the patches' transforms go into 16 matrices V[xi] laid out as the GEMM's 16-column
 * panels (one lane per tile), then 16 products M[xi] = U[xi] V[xi] (U: the weights' transforms,
 * packed at load time, load.c), then the output transform, bias and ReLU, scattered into the
 * output. Tiles past the output's last row or column compute values that are dropped.
 */
struct wino_task {
    const float *xp; /* the zero-padded input: C planes of `plane` floats, Wp wide */
    int64_t Wp, plane, C, M, OH, OW, TW, T; /* T tiles, TW to a row of them */
    const float *U;                         /* 16 packed A operands, `per` floats apart */
    size_t per;
    const float *bias;
    bool relu;
    float *out;                          /* [M][OH][OW] */
    int64_t tiles_per_item, n_items, np; /* np: 16-tile panels of the largest item */
    struct inf_ranges items;
    bool avx512; /* the input transform with AVX-512 (as the GEMM's tile) */
    float *bufs; /* per thread: V then M, buf_floats apart */
    size_t buf_floats;
};

#if defined(__x86_64__)
/*
 * wino_worker's input transform with AVX-512, for the tiles [t0, t0 + nt) of an item: a panel's
 * 16 lanes are runs of consecutive tiles of one tile row ("segments"; a panel crosses a row end
 * or, for narrow images, several). Per segment and patch row, two 32-float windows of the input
 * row (at the first tile's column and two further on) are loaded under a mask covering only the
 * segment's lanes and split into even and odd floats: patch columns 0 and 1, then 2 and 3, for
 * every lane at once, where the plain loop loads 256 floats one by one per channel and panel.
 * Same arithmetic in the same order as the plain loop.
 */
__attribute__((target("avx512f"))) static void wino_in_avx512(const struct wino_task *t, int64_t t0,
                                                              int64_t nt, float *V, int64_t vstride)
{
    const int64_t C = t->C, Wp = t->Wp, TW = t->TW, bs = INF__PANEL_STRIDE(C);
    const __m512i ev = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0),
                  od = _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
    for (int64_t p = 0; p * 16 < nt; p++) {
        int64_t soff[16];
        __mmask16 slanes[16], slo[16], shi[16];
        int nseg = 0;
        const int lanes = nt - p * 16 < 16 ? (int)(nt - p * 16) : 16;
        for (int l = 0; l < lanes;) {
            int64_t q = t0 + p * 16 + l, ty = q / TW, tx = q % TW;
            int cnt = TW - tx < lanes - l ? (int)(TW - tx) : lanes - l;
            /* lane k of the segment reads columns 2 (tx + k - l) + j: the window starts at
               column 2 tx - 2 l (floats before it are masked off) */
            soff[nseg] = 2 * ty * Wp + 2 * tx - 2 * l;
            uint32_t fm = (cnt == 16 ? 0xffffffffu : ((1u << (2 * cnt)) - 1u)) << (2 * l);
            slanes[nseg] = (__mmask16)(((1u << cnt) - 1u) << l);
            slo[nseg] = (__mmask16)(fm & 0xffffu);
            shi[nseg] = (__mmask16)(fm >> 16);
            nseg++;
            l += cnt;
        }
        for (int64_t c = 0; c < C; c++) {
            const intptr_t xc = (intptr_t)(t->xp + c * t->plane);
            __m512 d[4][4];
            for (int i = 0; i < 4; i++)
                for (int j = 0; j < 4; j++)
                    d[i][j] = _mm512_setzero_ps();
            for (int sg = 0; sg < nseg; sg++)
                for (int i = 0; i < 4; i++) {
                    const intptr_t r = xc + (intptr_t)(soff[sg] + i * Wp) * (intptr_t)sizeof(float);
                    __m512 a0 = _mm512_maskz_loadu_ps(slo[sg], (const void *)r),
                           a1 = _mm512_maskz_loadu_ps(shi[sg], (const void *)(r + 64)),
                           b0 = _mm512_maskz_loadu_ps(slo[sg], (const void *)(r + 8)),
                           b1 = _mm512_maskz_loadu_ps(shi[sg], (const void *)(r + 72));
                    __m512 e[4] = {
                        _mm512_permutex2var_ps(a0, ev, a1), _mm512_permutex2var_ps(a0, od, a1),
                        _mm512_permutex2var_ps(b0, ev, b1), _mm512_permutex2var_ps(b0, od, b1)};
                    for (int j = 0; j < 4; j++)
                        d[i][j] = _mm512_mask_mov_ps(d[i][j], slanes[sg], e[j]);
                }
            float *vp = V + p * bs + c * 16;
            for (int j = 0; j < 4; j++) { /* B^T d */
                __m512 d0 = d[0][j], d1 = d[1][j], d2 = d[2][j], d3 = d[3][j];
                d[0][j] = _mm512_sub_ps(d0, d2);
                d[1][j] = _mm512_add_ps(d1, d2);
                d[2][j] = _mm512_sub_ps(d2, d1);
                d[3][j] = _mm512_sub_ps(d1, d3);
            }
            for (int i = 0; i < 4; i++) { /* (B^T d) B */
                _mm512_store_ps(vp + (4 * i + 0) * vstride, _mm512_sub_ps(d[i][0], d[i][2]));
                _mm512_store_ps(vp + (4 * i + 1) * vstride, _mm512_add_ps(d[i][1], d[i][2]));
                _mm512_store_ps(vp + (4 * i + 2) * vstride, _mm512_sub_ps(d[i][2], d[i][1]));
                _mm512_store_ps(vp + (4 * i + 3) * vstride, _mm512_sub_ps(d[i][1], d[i][3]));
            }
        }
    }
}
#endif

static void wino_worker(void *arg, int ith, int nth)
{
    struct wino_task *t = arg;
    (void)nth;
    const int64_t C = t->C, M = t->M, np = t->np, bs = INF__PANEL_STRIDE(C), Wp = t->Wp;
    const int64_t vstride = np * bs, mstride = M * np * 16; /* per xi */
    float *V = t->bufs + (size_t)ith * t->buf_floats, *Mo = V + 16 * vstride;
    for (;;) {
        int64_t w = inf_ranges_next(&t->items, ith);
        if (w < 0)
            break;
        const int64_t t0 = w * t->tiles_per_item,
                      nt = t->T - t0 < t->tiles_per_item ? t->T - t0 : t->tiles_per_item,
                      npw = (nt + 15) / 16;
#if defined(__x86_64__)
        if (t->avx512)
            wino_in_avx512(t, t0, nt, V, vstride);
        else
#endif
            for (int64_t p = 0; p < npw; p++) {
                int64_t off[16];
                for (int l = 0; l < 16; l++) {
                    int64_t q = p * 16 + l < nt ? t0 + p * 16 + l : t0; /* lanes past the end: a
                                                                            real tile, dropped */
                    off[l] = 2 * (q / t->TW) * Wp + 2 * (q % t->TW);
                }
                for (int64_t c = 0; c < C; c++) {
                    const float *xc = t->xp + c * t->plane;
                    float d[4][4][16], e[4][4][16];
                    for (int i = 0; i < 4; i++)
                        for (int j = 0; j < 4; j++)
                            for (int l = 0; l < 16; l++)
                                d[i][j][l] = xc[off[l] + i * Wp + j];
                    /* B^T d: rows d0 - d2, d1 + d2, d2 - d1, d1 - d3 */
                    for (int j = 0; j < 4; j++)
                        for (int l = 0; l < 16; l++) {
                            e[0][j][l] = d[0][j][l] - d[2][j][l];
                            e[1][j][l] = d[1][j][l] + d[2][j][l];
                            e[2][j][l] = d[2][j][l] - d[1][j][l];
                            e[3][j][l] = d[1][j][l] - d[3][j][l];
                        }
                    /* (B^T d) B: the same on columns, into V[4 i + j], panel p, row c */
                    float *vp = V + p * bs + c * 16;
                    for (int i = 0; i < 4; i++)
                        for (int l = 0; l < 16; l++) {
                            vp[(4 * i + 0) * vstride + l] = e[i][0][l] - e[i][2][l];
                            vp[(4 * i + 1) * vstride + l] = e[i][1][l] + e[i][2][l];
                            vp[(4 * i + 2) * vstride + l] = e[i][2][l] - e[i][1][l];
                            vp[(4 * i + 3) * vstride + l] = e[i][1][l] - e[i][3][l];
                        }
                }
            }
        const int64_t ld = npw * 16;
        for (int xi = 0; xi < 16; xi++)
            inf__gemm_panels(M, nt, C, t->U + (size_t)xi * t->per, V + xi * vstride, bs,
                             Mo + xi * mstride, ld);
        /* A^T m A: rows m0 + m1 + m2, m1 - m2 - m3; then the same on columns */
        for (int64_t m = 0; m < M; m++) {
            const float b = t->bias ? t->bias[m] : 0.f;
            float *om = t->out + m * t->OH * t->OW;
            for (int64_t p = 0; p < npw; p++) {
                const float *mp = Mo + m * ld + p * 16;
                float s[2][4][16], y[2][2][16];
                for (int j = 0; j < 4; j++)
                    for (int l = 0; l < 16; l++) {
                        float m0 = mp[(0 + j) * mstride + l], m1 = mp[(4 + j) * mstride + l],
                              m2 = mp[(8 + j) * mstride + l], m3 = mp[(12 + j) * mstride + l];
                        s[0][j][l] = m0 + m1 + m2;
                        s[1][j][l] = m1 - m2 - m3;
                    }
                for (int i = 0; i < 2; i++)
                    for (int l = 0; l < 16; l++) {
                        float v0 = s[i][0][l] + s[i][1][l] + s[i][2][l] + b,
                              v1 = s[i][1][l] - s[i][2][l] - s[i][3][l] + b;
                        y[i][0][l] = t->relu && v0 < 0.f ? 0.f : v0;
                        y[i][1][l] = t->relu && v1 < 0.f ? 0.f : v1;
                    }
                for (int l = 0; l < 16 && p * 16 + l < nt; l++) {
                    int64_t q = t0 + p * 16 + l, oy = 2 * (q / t->TW), ox = 2 * (q % t->TW);
                    for (int i = 0; i < 2 && oy + i < t->OH; i++)
                        for (int j = 0; j < 2 && ox + j < t->OW; j++)
                            om[(oy + i) * t->OW + ox + j] = y[i][j][l];
                }
            }
        }
    }
}

/* The Winograd form of conv_padded's product (stride 1, 3x3) over its padded input xp. */
static inf_status conv_winograd(struct inf__onnx_exec *x, const float *xp, int64_t Cg, int64_t Wp,
                                int64_t plane, const float *U, int64_t Mg, const float *bias,
                                bool relu, float *out, int64_t OH, int64_t OW)
{
    struct wino_task t = {.xp = xp,
                          .Wp = Wp,
                          .plane = plane,
                          .C = Cg,
                          .M = Mg,
                          .OH = OH,
                          .OW = OW,
                          .TW = (OW + 1) / 2,
                          .U = U,
                          .per = inf__sgemm_packed_a_size(Mg, Cg),
                          .bias = bias,
                          .relu = relu,
                          .out = out,
                          .avx512 = inf__gemm_avx512()};
    t.T = t.TW * ((OH + 1) / 2);
    const int nth = inf_threadpool_n_threads(x->pool);
    /* items of two panels (32 tiles) where there are plenty, else of one; the tiles spread
       evenly over the items (49 tiles: 4 items of 13, not 3 of 16 and one of 1) */
    int64_t panels = (t.T + 15) / 16, per_item = panels >= 16 * nth ? 2 : 1;
    t.n_items = (panels + per_item - 1) / per_item;
    t.tiles_per_item = (t.T + t.n_items - 1) / t.n_items;
    t.n_items = (t.T + t.tiles_per_item - 1) / t.tiles_per_item;
    t.np = (t.tiles_per_item + 15) / 16;
    /* 64-byte aligned per thread (every stride is a multiple of 16 floats) */
    t.buf_floats = (size_t)16 * (size_t)(t.np * INF__PANEL_STRIDE(Cg) + Mg * t.np * 16);
    size_t bytes = sizeof(float) * ((size_t)nth * t.buf_floats + 16);
    float *raw = inf__onnx_scratch(x, bytes);
    if (!raw)
        return inf_error_set(x->err, INF_ENOMEM, "out of memory");
    t.bufs = (float *)(((uintptr_t)raw + 63) & ~(uintptr_t)63);
    inf_ranges_init(&t.items, t.n_items, nth);
    if (nth > 1 && t.n_items > 1)
        inf_threadpool_run(x->pool, wino_worker, &t);
    else
        wino_worker(&t, 0, 1);
    inf__onnx_scratch_free(x, raw, bytes);
    return INF_OK;
}

/*
 * Convolutions without dilation over a zero-padded copy of the input, computed on a virtual
 * output grid as wide as the padded input: column j of B for kernel tap (c, ky, kx) is then
 * padded[c][j + ky * Wp + kx], so every row of B is one contiguous run that the GEMM reads in
 * place (b_off[k] = c * plane + ky * Wp + kx, no packing). With stride s the padded input is
 * split into s x s phase planes (phase (py, px) holds padded[c][s i + py][s j + px]), and tap
 * (ky, kx) reads phase (ky % s, kx % s) shifted by (ky / s, kx / s): the same contiguous runs.
 * The extra columns per row (the grid's width minus OW) are computed and dropped when the
 * result is compacted into the output.
 */
static inf_status conv_padded(struct inf__onnx_exec *x, const struct inf__onnx_node *n,
                              const struct conv_b *cb, int64_t Cg, int64_t Hp, int64_t Wp,
                              const float *Ap, const float *U, int64_t Mg, const float *bias,
                              float *out, int64_t OH)
{
    const int64_t st = cb->sh, kh = cb->kh, kw = cb->kw, OW = cb->OW;
    const int64_t Hq = (Hp + st - 1) / st, Wq = (Wp + st - 1) / st, plane = Hq * Wq;
    const int64_t phase = Cg * plane, slack = 2 * Wq + 64, Np = OH * Wq, K = Cg * kh * kw;
    /* row by row straight into the output when a row's 16-column panels are no wider than the
       grid's row (224 columns: 14 panels against 226): no wasted columns to compute and drop */
    const bool by_rows = (OW + 15) / 16 * 16 <= Wq;
    size_t xp_bytes = sizeof(float) * (size_t)(st * st * phase + slack),
           tmp_bytes = by_rows || U ? 0 : sizeof(float) * (size_t)(Mg * Np + 1),
           off_bytes = sizeof(int64_t) * (size_t)K;
    float *xp = inf__onnx_scratch(x, xp_bytes),
          *tmp = tmp_bytes ? inf__onnx_scratch(x, tmp_bytes) : NULL;
    int64_t *off = U ? NULL : malloc(off_bytes);
    if (!xp || (tmp_bytes && !tmp) || (!U && !off)) {
        inf__onnx_scratch_free(x, xp, xp_bytes);
        inf__onnx_scratch_free(x, tmp, tmp_bytes);
        free(off);
        return inf_error_set(x->err, INF_ENOMEM, "out of memory");
    }
    struct pad_task pt_ = {cb, xp, Cg, Hp, Wp, Hq, Wq, plane, phase};
    /* on two threads the copy reads an input the other core wrote half of: split by channel */
    if (x->pool && Cg * Hq * Wq * st * st >= 65536)
        inf_threadpool_run(x->pool, pad_worker, &pt_);
    else
        pad_worker(&pt_, 0, 1);
    memset(xp + st * st * phase, 0, sizeof(float) * (size_t)slack);
    if (U) { /* the last tile's patch reads one row and column past the plane: the next
                plane's first row, or the slack after the last */
        inf_status rc = conv_winograd(x, xp, Cg, Wp, plane, U, Mg, bias, n->fuse_relu, out, OH, OW);
        inf__onnx_scratch_free(x, xp, xp_bytes);
        inf__onnx_scratch_free(x, tmp, tmp_bytes);
        free(off);
        return rc;
    }
    for (int64_t k = 0, ch = 0, r = 0; k < K; k++) {
        int64_t ky = r / kw, kx = r % kw;
        off[k] = ((ky % st) * st + kx % st) * phase + ch * plane + (ky / st) * Wq + kx / st;
        if (++r == kh * kw)
            r = 0, ch++;
    }
    struct inf__gemm_plan p = {.M = Mg,
                               .N = Np,
                               .K = K,
                               .Ap = Ap,
                               .b_base = xp,
                               .b_off = off,
                               .C = tmp,
                               .ldc = Np,
                               .row_bias = bias,
                               .relu = n->fuse_relu};
    if (by_rows) { /* the slack covers reads up to 16 columns past a row */
        p.N = OW;
        p.rows = OH;
        p.b_row = Wq;
        p.C = out;
        p.c_row = OW;
        p.ldc = OH * OW;
        p.b_tail_ok = true;
    }
    bool ok = inf__gemm_run(x->pool, &p);
    for (int64_t m = 0; ok && !by_rows && m < Mg; m++)
        for (int64_t y = 0; y < OH; y++)
            memcpy(out + (m * OH + y) * OW, tmp + m * Np + y * Wq, sizeof(float) * (size_t)OW);
    inf__onnx_scratch_free(x, xp, xp_bytes);
    inf__onnx_scratch_free(x, tmp, tmp_bytes);
    free(off);
    return ok ? INF_OK : inf_error_set(x->err, INF_ENOMEM, "out of memory");
}

/* A 1x1 convolution of a 1x1 plane (a classifier head): one dot product per output channel,
   where the GEMM would fill a 16-column panel for one column. Sixteen partial sums per row,
   which the compiler vectorises. */
static void conv_vector(const float *X, const float *W, int64_t K, int64_t Mg, const float *bias,
                        bool relu, float *out)
{
    for (int64_t m = 0; m < Mg; m++) {
        const float *w = W + m * K;
        float s[16] = {0};
        int64_t k = 0;
        for (; k + 16 <= K; k += 16)
            for (int l = 0; l < 16; l++)
                s[l] += w[k + l] * X[k + l];
        float v = bias ? bias[m] : 0.f;
        for (; k < K; k++)
            v += w[k] * X[k];
        for (int l = 0; l < 16; l++)
            v += s[l];
        out[m] = relu && v < 0.f ? 0.f : v;
    }
}

static inf_status op_conv(struct inf__onnx_exec *x, const struct inf__onnx_node *n,
                          struct inf_onnx_tensor *const *in, struct inf_onnx_tensor *out)
{
    const struct inf_onnx_tensor *X = in[0], *Wt = in[1], *B = n->n_in > 2 ? in[2] : NULL;
    if (X->dtype != INF_ONNX_FLOAT || Wt->dtype != INF_ONNX_FLOAT ||
        (B && B->dtype != INF_ONNX_FLOAT))
        return inf__onnx_fail(x, n, INF_EUNSUPPORTED, "only float Conv is supported");
    if (X->ndim < 3 || X->ndim > 4 || Wt->ndim != X->ndim)
        return inf__onnx_fail(x, n, INF_EUNSUPPORTED, "Conv supports 1-D and 2-D inputs");
    int64_t group = inf__onnx_attr_i(n, "group", 1);
    int64_t N = X->dims[0], C = X->dims[1], M = Wt->dims[0];
    if (group < 1 || C % group || M % group || Wt->dims[1] != C / group)
        return inf__onnx_fail(x, n, INF_EINVAL,
                              "channels %" PRId64 " / group %" PRId64 " do not match W", C, group);
    if (B && B->n != M)
        return inf__onnx_fail(x, n, INF_EINVAL,
                              "bias has %" PRId64 " values for %" PRId64 " channels", B->n, M);
    int64_t kernel[3];
    const int64_t *ks;
    int nk = inf__onnx_attr_ints(n, "kernel_shape", &ks);
    for (int i = 0; i < X->ndim - 2; i++) {
        kernel[i] = Wt->dims[2 + i];
        if (nk == X->ndim - 2 && ks[i] != kernel[i])
            return inf__onnx_fail(x, n, INF_EINVAL, "kernel_shape does not match W");
    }
    struct spatial sp;
    inf_status rc = spatial_init(x, n, X, kernel, false, &sp);
    if (rc)
        return rc;
    int64_t od[INF_ONNX_MAX_DIMS] = {N, M};
    for (int i = 0; i < sp.nd; i++)
        od[2 + i] = sp.out[i];
    rc = inf__onnx_out(x, out, INF_ONNX_FLOAT, X->ndim, od);
    if (rc || !out->n)
        return rc;
    /* as 2-D: a 1-D conv has H = 1 */
    bool two = sp.nd == 2;
    struct conv_b cb = {.H = two ? sp.in[0] : 1,
                        .W = sp.in[two],
                        .kh = two ? sp.k[0] : 1,
                        .kw = sp.k[two],
                        .sh = two ? sp.s[0] : 1,
                        .sw = sp.s[two],
                        .dh = two ? sp.d[0] : 1,
                        .dw = sp.d[two],
                        .pt = two ? sp.pb[0] : 0,
                        .pl = sp.pb[two],
                        .OW = sp.out[two]};
    int64_t OH = two ? sp.out[0] : 1, P = OH * cb.OW, HW = cb.H * cb.W;
    cb.pointwise = cb.kh == 1 && cb.kw == 1 && cb.sh == 1 && cb.sw == 1 && cb.pt == 0 &&
                   cb.pl == 0 && (two ? sp.pe[0] == 0 : 1) && sp.pe[two] == 0;
    int64_t Cg = C / group, Mg = M / group, K = Cg * cb.kh * cb.kw;
    if (n->pre_ss) { /* load.c (fuse_bn_conv) checked these on the weights and attributes */
        if (!cb.pointwise || group != 1 || C != n->pre_c)
            return inf__onnx_fail(x, n, INF_EINVAL,
                                  "the absorbed BatchNormalization needs a 1x1 convolution of "
                                  "%" PRId64 " channels",
                                  n->pre_c);
        cb.ss = n->pre_ss;
        cb.ssC = n->pre_c;
        cb.srelu = n->pre_relu;
    }
    if (K == 0 || X->n == 0) { /* no input elements (no channels, or an empty plane with
                                   padding): every tap reads zero, the bias alone, then ReLU */
        for (int64_t b = 0; b < N; b++)
            for (int64_t m = 0; m < M; m++)
                for (int64_t q = 0; q < P; q++) {
                    float v = B ? ((const float *)B->data)[m] : 0.f;
                    ((float *)out->data)[(b * M + m) * P + q] = n->fuse_relu && v < 0.f ? 0.f : v;
                }
        return INF_OK;
    }
    /* no dilation, the same stride across and down, a real kernel: the padded-grid form
       (conv_padded) when the grid's extra columns cost under a third */
    int64_t pb_h = two ? sp.pe[0] : 0, pe_w = sp.pe[two];
    int64_t Hp = cb.H + cb.pt + pb_h, Wp = cb.W + cb.pl + pe_w, Wq = (Wp + cb.sw - 1) / cb.sw;
    bool padded = !cb.pointwise && cb.sh == cb.sw && cb.sh <= 4 && cb.dh == 1 && cb.dw == 1 &&
                  cb.kh * cb.kw > 1 && Wq * 3 <= cb.OW * 4;
    size_t per = inf__sgemm_packed_a_size(Mg, K), wper = inf__sgemm_packed_a_size(Mg, Cg);
    /* Winograd where load.c transformed the weights (3x3, stride 1, no dilation, 2-D) */
    const bool wino = padded && n->wino_w && two && cb.sh == 1 && cb.sw == 1 && cb.kh == 3 &&
                      cb.kw == 3 && cb.dh == 1 && cb.dw == 1;
    float *ap = n->packed_w ? NULL : malloc(sizeof(float) * (per + 1));
    /* 1x1: row k of B is input plane k, read in place */
    const bool in_place = cb.pointwise && !cb.ss;
    int64_t *poff = in_place ? malloc(sizeof(int64_t) * (size_t)K) : NULL;
    if ((!n->packed_w && !ap) || (in_place && !poff)) {
        free(ap);
        free(poff);
        return inf_error_set(x->err, INF_ENOMEM, "out of memory");
    }
    for (int64_t k = 0; poff && k < K; k++)
        poff[k] = k * HW;
    for (int64_t g = 0; g < group; g++) {
        if (!n->packed_w)
            inf__sgemm_pack_a((const float *)Wt->data + g * Mg * K, K, false, Mg, K, 1.f, ap);
        for (int64_t b = 0; b < N; b++) {
            cb.x = (const float *)X->data + (b * C + g * Cg) * HW;
            if (in_place && P == 1) {
                conv_vector(cb.x, (const float *)Wt->data + g * Mg * K, K, Mg,
                            B ? (const float *)B->data + g * Mg : NULL, n->fuse_relu,
                            (float *)out->data + (b * M + g * Mg) * P);
                continue;
            }
            if (padded) {
                inf_status rc2 = conv_padded(x, n, &cb, Cg, Hp, Wp,
                                             n->packed_w ? n->packed_w + (size_t)g * per : ap,
                                             wino ? n->wino_w + (size_t)g * 16 * wper : NULL, Mg,
                                             B ? (const float *)B->data + g * Mg : NULL,
                                             (float *)out->data + (b * M + g * Mg) * P, OH);
                if (rc2) {
                    free(ap);
                    free(poff);
                    return rc2;
                }
                continue;
            }
            struct inf__gemm_plan p = {.M = Mg,
                                       .N = P,
                                       .K = K,
                                       .Ap = n->packed_w ? n->packed_w + (size_t)g * per : ap,
                                       .pack_b = pack_b_conv,
                                       .bctx = &cb,
                                       .C = (float *)out->data + (b * M + g * Mg) * P,
                                       .ldc = P,
                                       .row_bias = B ? (const float *)B->data + g * Mg : NULL,
                                       .relu = n->fuse_relu,
                                       .kc = cb.ss ? 256 : 0,
                                       .b_base = poff ? cb.x : NULL,
                                       .b_off = poff};
            if (!inf__gemm_run(x->pool, &p)) {
                free(ap);
                free(poff);
                return inf_error_set(x->err, INF_ENOMEM, "out of memory");
            }
        }
    }
    free(ap);
    free(poff);
    return INF_OK;
}

/* ---- pools ---- */

struct pool_task {
    const void *X;
    void *Y;
    int64_t isz, osz, planes;
    int64_t O[3], S[3], PB[3], I[3], D[3];
    const int64_t *lo[3], *hi[3], *cn[3]; /* per dim and output index: taps [lo, hi), count */
    int64_t ia, ib, K2; /* outputs (in x) whose window lies inside the row; K2 its taps */
    bool is_max;
    _Atomic bool oom;
};

/* The float pool of planes [p0, p1) (thread ith's share). */
static void pool_worker(void *arg, int ith, int nth)
{
    struct pool_task *t = arg;
    const int64_t *O = t->O, *S = t->S, *PB = t->PB, *I = t->I, *D = t->D;
    const int64_t *const *lo = t->lo, *const *hi = t->hi, *const *cn = t->cn;
    const int64_t ia = t->ia, ib = t->ib;
    const bool is_max = t->is_max;
    int64_t p0, p1;
    inf_split_rows(t->planes, ith, nth, 1, &p0, &p1);
    float *racc = NULL;
    if (ib > ia && p1 > p0 && !(racc = malloc(sizeof(float) * (size_t)O[2]))) {
        t->oom = true;
        return;
    }
    for (int64_t pl = p0; pl < p1; pl++) {
        const float *xp = (const float *)t->X + pl * t->isz;
        float *yp = (float *)t->Y + pl * t->osz;
        for (int64_t o1 = 0; racc && o1 < O[1]; o1++) {
            for (int64_t o2 = ia; o2 < ib; o2++)
                racc[o2] = is_max ? -INFINITY : 0.f;
            for (int64_t k1 = lo[1][o1]; k1 < hi[1][o1]; k1++) {
                const float *r = xp + (o1 * S[1] - PB[1] + k1) * I[2] - PB[2];
                for (int64_t k2 = 0; k2 < t->K2; k2++) {
                    const float *q = r + k2;
                    if (is_max)
                        for (int64_t o2 = ia; o2 < ib; o2++) {
                            float v = q[o2 * S[2]];
                            racc[o2] = v > racc[o2] ? v : racc[o2];
                        }
                    else
                        for (int64_t o2 = ia; o2 < ib; o2++)
                            racc[o2] += q[o2 * S[2]];
                }
            }
            float *yr = yp + o1 * O[2];
            for (int64_t o2 = ia; o2 < ib; o2++) {
                int64_t cnt = cn[1][o1] * cn[2][o2];
                yr[o2] = is_max ? racc[o2] : (cnt ? racc[o2] / (float)cnt : NAN);
            }
        }
        for (int64_t o0 = 0; o0 < O[0]; o0++)
            for (int64_t o1 = 0; o1 < O[1]; o1++)
                for (int64_t o2 = 0; o2 < O[2]; o2++) {
                    if (o2 == ia && ib > ia)
                        o2 = ib; /* done above */
                    if (o2 >= O[2])
                        break;
                    int64_t cnt = cn[0][o0] * cn[1][o1] * cn[2][o2];
                    float best = -INFINITY, sum = 0.f;
                    for (int64_t k0 = lo[0][o0]; k0 < hi[0][o0]; k0++)
                        for (int64_t k1 = lo[1][o1]; k1 < hi[1][o1]; k1++) {
                            const float *r = xp +
                                             ((o0 * S[0] - PB[0] + k0 * D[0]) * I[1] +
                                              (o1 * S[1] - PB[1] + k1 * D[1])) *
                                                 I[2] +
                                             (o2 * S[2] - PB[2]);
                            for (int64_t k2 = lo[2][o2]; k2 < hi[2][o2]; k2++) {
                                float v = r[k2 * D[2]];
                                best = v > best ? v : best;
                                sum += v;
                            }
                        }
                    yp[(o0 * O[1] + o1) * O[2] + o2] =
                        is_max ? best : (cnt ? sum / (float)cnt : NAN);
                }
    }
    free(racc);
}

static inf_status pool(struct inf__onnx_exec *x, const struct inf__onnx_node *n,
                       struct inf_onnx_tensor *const *in, struct inf_onnx_tensor *out, bool is_max)
{
    const struct inf_onnx_tensor *X = in[0];
    const int64_t *ks;
    int nk = inf__onnx_attr_ints(n, "kernel_shape", &ks);
    if (X->ndim < 3 || nk != X->ndim - 2)
        return inf__onnx_fail(x, n, INF_EINVAL, "kernel_shape must give every spatial dim");
    if (!inf__onnx_is_float(X->dtype) && !(is_max && inf__onnx_is_integer(X->dtype)))
        return inf__onnx_fail(x, n, INF_ETYPE, "unsupported input type");
    struct spatial sp;
    inf_status rc = spatial_init(x, n, X, ks, inf__onnx_attr_i(n, "ceil_mode", 0) != 0, &sp);
    if (rc)
        return rc;
    int64_t od[INF_ONNX_MAX_DIMS] = {X->dims[0], X->dims[1]};
    for (int i = 0; i < sp.nd; i++)
        od[2 + i] = sp.out[i];
    rc = inf__onnx_out(x, &out[0], X->dtype, X->ndim, od);
    if (!rc && n->n_out > 1 && n->out[1] >= 0)
        rc = inf__onnx_out(x, &out[1], INF_ONNX_INT64, X->ndim, od);
    if (rc || !out[0].n)
        return rc;
    bool include_pad = inf__onnx_attr_i(n, "count_include_pad", 0) != 0;
    bool col_major = inf__onnx_attr_i(n, "storage_order", 0) != 0;
    /* pad to 3 spatial dims */
    int64_t I[3] = {1, 1, 1}, K[3] = {1, 1, 1}, S[3] = {1, 1, 1}, D[3] = {1, 1, 1}, PB[3] = {0},
            PE[3] = {0}, O[3] = {1, 1, 1};
    for (int i = 0; i < sp.nd; i++) {
        int j = 3 - sp.nd + i;
        I[j] = sp.in[i];
        K[j] = sp.k[i];
        S[j] = sp.s[i];
        D[j] = sp.d[i];
        PB[j] = sp.pb[i];
        PE[j] = sp.pe[i];
        O[j] = sp.out[i];
    }
    int64_t planes = X->dims[0] * X->dims[1], isz = I[0] * I[1] * I[2], osz = O[0] * O[1] * O[2];
    /* windows of up to 2^20 per dim over a padded input: bound the work, not just the sizes */
    if ((double)out[0].n * (double)K[0] * (double)K[1] * (double)K[2] > 68719476736.0)
        return inf__onnx_fail(x, n, INF_ELIMIT, "pooling would take over 2^36 steps");
    bool f32 = X->dtype == INF_ONNX_FLOAT;
    if (f32 && !out[1].data) {
        /* windows clamped to the input, per dim and output index once per call: no test
           per element, no division per output */
        int64_t *tab = malloc(sizeof(int64_t) * 3 * (size_t)(O[0] + O[1] + O[2]));
        if (!tab)
            return inf_error_set(x->err, INF_ENOMEM, "out of memory");
        int64_t *lo[3], *hi[3], *cn[3];
        for (int d = 0, off = 0; d < 3; off += (int)(3 * O[d]), d++) {
            lo[d] = tab + off;
            hi[d] = lo[d] + O[d];
            cn[d] = hi[d] + O[d];
            for (int64_t o = 0; o < O[d]; o++) {
                int64_t st = o * S[d] - PB[d];
                /* k in [lo, hi): 0 <= st + k * D < I */
                int64_t l = st >= 0 ? 0 : (-st + D[d] - 1) / D[d];
                int64_t h = I[d] - st <= 0 ? 0 : (I[d] - st + D[d] - 1) / D[d];
                h = h > K[d] ? K[d] : h < l ? l : h;
                lo[d][o] = l;
                hi[d][o] = h;
                if (include_pad) { /* positions inside [-PB, I + PE) */
                    int64_t e = I[d] + PE[d] - st, c = e <= 0 ? 0 : (e + D[d] - 1) / D[d];
                    cn[d][o] = c > K[d] ? K[d] : c;
                } else {
                    cn[d][o] = h - l;
                }
            }
        }
        /* 2-D, no dilation: the outputs whose window lies inside the row in x, [ia, ib), a
           whole row at a time (per tap, one pass over the row: vectorised), the rest below */
        struct pool_task pt = {.X = X->data,
                               .Y = out[0].data,
                               .isz = isz,
                               .osz = osz,
                               .is_max = is_max,
                               .planes = planes};
        for (int d = 0; d < 3; d++) {
            pt.O[d] = O[d], pt.S[d] = S[d], pt.PB[d] = PB[d], pt.I[d] = I[d], pt.D[d] = D[d];
            pt.lo[d] = lo[d], pt.hi[d] = hi[d], pt.cn[d] = cn[d];
        }
        if (O[0] == 1 && K[0] == 1 && D[1] == 1 && D[2] == 1) {
            int64_t ia = 0, ib;
            while (ia < O[2] && (lo[2][ia] != 0 || hi[2][ia] != K[2]))
                ia++;
            ib = ia;
            while (ib < O[2] && lo[2][ib] == 0 && hi[2][ib] == K[2])
                ib++;
            if (ib > ia)
                pt.ia = ia, pt.ib = ib, pt.K2 = K[2];
        }
        /* planes split over the pool when there is enough to split */
        if (x->pool && (double)out[0].n * (double)(K[0] * K[1] * K[2]) >= 262144.0)
            inf_threadpool_run(x->pool, pool_worker, &pt);
        else
            pool_worker(&pt, 0, 1);
        free(tab);
        return pt.oom ? inf_error_set(x->err, INF_ENOMEM, "out of memory") : INF_OK;
    }
    for (int64_t pl = 0; pl < planes; pl++)
        for (int64_t o0 = 0; o0 < O[0]; o0++)
            for (int64_t o1 = 0; o1 < O[1]; o1++)
                for (int64_t o2 = 0; o2 < O[2]; o2++) {
                    double best = -INFINITY, sum = 0;
                    int64_t cnt = 0, best_i = -1;
                    for (int64_t k0 = 0; k0 < K[0]; k0++) {
                        int64_t i0 = o0 * S[0] - PB[0] + k0 * D[0];
                        for (int64_t k1 = 0; k1 < K[1]; k1++) {
                            int64_t i1 = o1 * S[1] - PB[1] + k1 * D[1];
                            for (int64_t k2 = 0; k2 < K[2]; k2++) {
                                int64_t i2 = o2 * S[2] - PB[2] + k2 * D[2];
                                bool inside = i0 >= 0 && i0 < I[0] && i1 >= 0 && i1 < I[1] &&
                                              i2 >= 0 && i2 < I[2];
                                if (!inside) {
                                    if (include_pad && i0 >= -PB[0] && i0 < I[0] + PE[0] &&
                                        i1 >= -PB[1] && i1 < I[1] + PE[1] && i2 >= -PB[2] &&
                                        i2 < I[2] + PE[2])
                                        cnt++;
                                    continue;
                                }
                                int64_t idx = pl * isz + (i0 * I[1] + i1) * I[2] + i2;
                                double v =
                                    f32 ? ((const float *)X->data)[idx] : inf__onnx_get_f64(X, idx);
                                if (v > best || best_i < 0) {
                                    best = v;
                                    best_i =
                                        col_major ? pl * isz + (i2 * I[1] + i1) * I[0] + i0 : idx;
                                }
                                sum += v;
                                cnt++;
                            }
                        }
                    }
                    int64_t oi = pl * osz + (o0 * O[1] + o1) * O[2] + o2;
                    double v = is_max ? best : (cnt ? sum / (double)cnt : NAN);
                    if (f32)
                        ((float *)out[0].data)[oi] = (float)v;
                    else if (inf__onnx_is_integer(X->dtype))
                        inf__onnx_set_i64(&out[0], oi, (int64_t)v);
                    else
                        inf__onnx_set_f64(&out[0], oi, v, true);
                    if (out[1].data)
                        ((int64_t *)out[1].data)[oi] = best_i;
                }
    return INF_OK;
}

static inf_status op_maxpool(struct inf__onnx_exec *x, const struct inf__onnx_node *n,
                             struct inf_onnx_tensor *const *in, struct inf_onnx_tensor *out)
{
    return pool(x, n, in, out, true);
}

static inf_status op_avgpool(struct inf__onnx_exec *x, const struct inf__onnx_node *n,
                             struct inf_onnx_tensor *const *in, struct inf_onnx_tensor *out)
{
    return pool(x, n, in, out, false);
}

static inf_status global_pool(struct inf__onnx_exec *x, const struct inf__onnx_node *n,
                              const struct inf_onnx_tensor *X, struct inf_onnx_tensor *out,
                              bool is_max)
{
    if (X->ndim < 3 || !inf__onnx_is_float(X->dtype))
        return inf__onnx_fail(x, n, INF_EINVAL, "wants a float input with spatial dims");
    int64_t od[INF_ONNX_MAX_DIMS];
    for (int i = 0; i < X->ndim; i++)
        od[i] = i < 2 ? X->dims[i] : 1;
    inf_status rc = inf__onnx_out(x, out, X->dtype, X->ndim, od);
    if (rc)
        return rc;
    int64_t planes = X->dims[0] * X->dims[1], sz = planes ? X->n / planes : 0;
    for (int64_t p = 0; p < planes; p++) {
        double acc = is_max ? -INFINITY : 0;
        for (int64_t i = 0; i < sz; i++) {
            double v = inf__onnx_get_f64(X, p * sz + i);
            acc = is_max ? (v > acc ? v : acc) : acc + v;
        }
        inf__onnx_set_f64(out, p, is_max ? acc : acc / (double)sz, true);
    }
    return INF_OK;
}

static inf_status op_gap(struct inf__onnx_exec *x, const struct inf__onnx_node *n,
                         struct inf_onnx_tensor *const *in, struct inf_onnx_tensor *out)
{
    return global_pool(x, n, in[0], out, false);
}

static inf_status op_gmp(struct inf__onnx_exec *x, const struct inf__onnx_node *n,
                         struct inf_onnx_tensor *const *in, struct inf_onnx_tensor *out)
{
    return global_pool(x, n, in[0], out, true);
}

struct bn_task {
    const float *X;
    float *Y;
    const float *ss; /* per channel: scales, then shifts (C apart) */
    int64_t planes, C, sz;
    bool relu;
};

/* BatchNormalization on floats, planes [p0, p1) (thread ith's share): v = x * scale + shift (a
   product, then a sum: as a BatchNormalization absorbed by a Conv rounds it), then ReLU when
   fused. */
static void bn_worker(void *arg, int ith, int nth)
{
    const struct bn_task *t = arg;
    int64_t p0, p1;
    inf_split_rows(t->planes, ith, nth, 1, &p0, &p1);
    for (int64_t p = p0; p < p1; p++) {
        const float *xi = t->X + p * t->sz;
        float *yo = t->Y + p * t->sz, fs = t->ss[p % t->C], fb = t->ss[t->C + p % t->C];
        if (t->relu)
            for (int64_t i = 0; i < t->sz; i++) {
                float v = xi[i] * fs + fb;
                yo[i] = v > 0.f ? v : 0.f;
            }
        else
            for (int64_t i = 0; i < t->sz; i++)
                yo[i] = xi[i] * fs + fb;
    }
}

static inf_status op_batchnorm(struct inf__onnx_exec *x, const struct inf__onnx_node *n,
                               struct inf_onnx_tensor *const *in, struct inf_onnx_tensor *out)
{
    const struct inf_onnx_tensor *X = in[0], *S = in[1], *B = in[2], *Mu = in[3], *V = in[4];
    if (X->ndim < 2)
        return inf__onnx_fail(x, n, INF_EINVAL, "input needs a channel dim");
    int64_t C = X->dims[1], N = X->dims[0], sz = 1;
    for (int i = 2; i < X->ndim; i++)
        sz *= X->dims[i];
    if (S->n != C || B->n != C || Mu->n != C || V->n != C)
        return inf__onnx_fail(x, n, INF_EINVAL, "parameters must have %" PRId64 " values", C);
    if (n->fuse_rank && X->ndim != n->fuse_rank)
        return inf__onnx_fail(x, n, INF_EUNSUPPORTED,
                              "input of rank %d, the fused per-channel constants assumed %d",
                              X->ndim, n->fuse_rank);
    double eps = inf__onnx_attr_f(n, "epsilon", 1e-5f);
    double mom = inf__onnx_attr_f(n, "momentum", 0.9f);
    bool train = x->opset >= 14 && inf__onnx_attr_i(n, "training_mode", 0) != 0;
    inf_status rc = inf__onnx_out(x, &out[0], X->dtype, X->ndim, X->dims);
    if (rc)
        return rc;
    if (train && n->n_out > 1 && n->out[1] >= 0)
        rc = inf__onnx_out(x, &out[1], Mu->dtype, 1, &C);
    if (!rc && train && n->n_out > 2 && n->out[2] >= 0)
        rc = inf__onnx_out(x, &out[2], V->dtype, 1, &C);
    if (rc)
        return rc;
    /* floats: the per-channel constants first, then the planes (split over the pool when
       large); other types element by element in double */
    const bool f32 = X->dtype == INF_ONNX_FLOAT;
    float *ss = f32 ? malloc(sizeof(float) * (2 * (size_t)C + 1)) : NULL;
    if (f32 && !ss)
        return inf_error_set(x->err, INF_ENOMEM, "out of memory");
    for (int64_t c = 0; c < C; c++) {
        double mean = inf__onnx_get_f64(Mu, c), var = inf__onnx_get_f64(V, c);
        if (train) {
            double s = 0, s2 = 0, cnt = (double)(N * sz);
            for (int64_t b = 0; b < N; b++)
                for (int64_t i = 0; i < sz; i++)
                    s += inf__onnx_get_f64(X, (b * C + c) * sz + i);
            double bm = s / cnt;
            for (int64_t b = 0; b < N; b++)
                for (int64_t i = 0; i < sz; i++) {
                    double d = inf__onnx_get_f64(X, (b * C + c) * sz + i) - bm;
                    s2 += d * d;
                }
            double bv = s2 / cnt;
            if (out[1].data)
                inf__onnx_set_f64(&out[1], c, mean * mom + bm * (1 - mom), true);
            if (out[2].data)
                inf__onnx_set_f64(&out[2], c, var * mom + bv * (1 - mom), true);
            mean = bm;
            var = bv;
        }
        double scale = inf__onnx_get_f64(S, c) / sqrt(var + eps);
        double shift = inf__onnx_get_f64(B, c) - mean * scale;
        if (f32) {
            ss[c] = (float)scale;
            ss[C + c] = (float)shift;
            continue;
        }
        for (int64_t b = 0; b < N; b++)
            for (int64_t i = 0; i < sz; i++) {
                int64_t k = (b * C + c) * sz + i;
                double v = inf__onnx_get_f64(X, k) * scale + shift;
                inf__onnx_set_f64(&out[0], k, n->fuse_relu && v < 0 ? 0 : v, true);
            }
    }
    if (f32 && N * C * sz > 0) { /* an empty plane: no data pointers */
        struct bn_task t = {X->data, out[0].data, ss, N * C, C, sz, n->fuse_relu};
        if (x->pool && N * C * sz >= 65536)
            inf_threadpool_run(x->pool, bn_worker, &t);
        else
            bn_worker(&t, 0, 1);
    }
    free(ss);
    return INF_OK;
}

const struct inf__onnx_op inf__onnx_ops_nn[] = {
    {"MatMul", 1, 2, 2, 1, 1, op_matmul},
    {"Gemm", 7, 2, 3, 1, 1, op_gemm},
    {"Conv", 1, 2, 3, 1, 1, op_conv},
    {"MaxPool", 1, 1, 1, 1, 2, op_maxpool},
    {"AveragePool", 1, 1, 1, 1, 1, op_avgpool},
    {"GlobalAveragePool", 1, 1, 1, 1, 1, op_gap},
    {"GlobalMaxPool", 1, 1, 1, 1, 1, op_gmp},
    {"BatchNormalization", 7, 5, 5, 1, 5, op_batchnorm},
    {NULL, 0, 0, 0, 0, 0, NULL},
};
