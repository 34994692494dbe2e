/*
 * kern_avx512_f16.c - F16 and BF16 weights on AVX-512 (against F32 activations).
 *
 * Matrix-vector (one token, memory-bound): 8 rows at a time, 32 values per row and step in two
 * independent accumulators, one 64-byte prefetch per row and step. 8 rows share each activation
 * load and keep 16 FMA chains in flight, enough to stream the weights at the read bandwidth.
 *
 * Batches (compute-bound): a panel kernel. A chunk of rows is converted to F32 once into a
 * per-thread scratch, 16 rows at a time transposed so that value k of the 16 rows is one 64-byte
 * vector ("rows in lanes"). The micro-kernel then multiplies ZF_NP panels (16 * ZF_NP rows) by
 * up to ZF_NC tokens: per value k it loads ZF_NP weight vectors and broadcasts one activation
 * per token, ZF_NP * ZF_NC accumulators (24 of the 32 zmm registers). The conversion and
 * transposition cost about as much as one token, and is paid once for all the tokens.
 *
 * Each result is one F32 sum over k in order (no F16 rounding of the activations, as llama.cpp
 * does), so the error stays at the level of the reference's double sum rounded to F32.
 */
#ifdef INFERNO_X86

#include <pthread.h>
#include <stdlib.h>

#include "kernels/x86/kern_x86.h"

/* ---- loading 16 weights as F32 ------------------------------------------------------------ */

static INF__ALWAYS_INLINE __m512 zf_cvt(const int T, __m256i h)
{
    if (T == INF_TYPE_F16)
        return _mm512_cvtph_ps(h);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

static INF__ALWAYS_INLINE __m512 zf_load16(const int T, const uint8_t *w, int64_t i)
{
    return zf_cvt(T, _mm256_loadu_si256((const __m256i *)(const void *)(w + 2 * i)));
}

static INF__ALWAYS_INLINE __m512 zf_load16_mask(const int T, const uint8_t *w, int64_t i,
                                                __mmask16 m)
{
    return zf_cvt(T, _mm256_maskz_loadu_epi16(m, (const uint16_t *)(const void *)w + i));
}

static inline float zf_hsum(__m512 v)
{
    return x86_hsum_ps(_mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1)));
}

/* ---- register tiles: NR rows x NC tokens (matrix-vector and small batches) ----------------- */

static INF__ALWAYS_INLINE void zf_tile(const int T, const int NR, const int NC, int64_t n,
                                       const uint8_t *w, size_t ldw, const uint8_t *a, size_t lda,
                                       float *s, size_t lds, const int inv)
{
    /* one token: two vectors (64 bytes of each row) per step, for more FMAs in flight; inv (the
     * gemm_inv entry) does the same for every NC, so that a token's result does not depend on
     * the batch it is in (batch invariance) */
    const int U = NC == 1 || inv ? 2 : 1;
    const size_t pf = NC == 1 ? 0 : x86_pf_dist(NR, ldw); /* none for one token (kern_x86.h) */
    __m512 acc[8][4][2];
    for (int r = 0; r < NR; r++)
        for (int c = 0; c < NC; c++)
            for (int u = 0; u < U; u++)
                acc[r][c][u] = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 16 * U <= n; i += 16 * U) {
        __m512 wv[8][2];
        for (int r = 0; r < NR; r++) {
            const uint8_t *wr = w + (size_t)r * ldw;
            if (pf)
                _mm_prefetch((const char *)wr + 2 * i + pf, X86_PF_HINT);
            for (int u = 0; u < U; u++)
                wv[r][u] = zf_load16(T, wr, i + 16 * u);
        }
        for (int c = 0; c < NC; c++) {
            const float *ac = (const float *)(const void *)(a + (size_t)c * lda) + i;
            for (int u = 0; u < U; u++) {
                const __m512 av = _mm512_loadu_ps(ac + 16 * u);
                for (int r = 0; r < NR; r++)
                    acc[r][c][u] = _mm512_fmadd_ps(wv[r][u], av, acc[r][c][u]);
            }
        }
    }
    for (; i < n; i += 16) {
        const __mmask16 m = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
        __m512 wv[8];
        for (int r = 0; r < NR; r++)
            wv[r] = zf_load16_mask(T, w + (size_t)r * ldw, i, m);
        for (int c = 0; c < NC; c++) {
            const __m512 av =
                _mm512_maskz_loadu_ps(m, (const float *)(const void *)(a + (size_t)c * lda) + i);
            for (int r = 0; r < NR; r++)
                acc[r][c][0] = _mm512_fmadd_ps(wv[r], av, acc[r][c][0]);
        }
    }
    for (int r = 0; r < NR; r++)
        for (int c = 0; c < NC; c++) {
            __m512 v = acc[r][c][0];
            if (U == 2)
                v = _mm512_add_ps(v, acc[r][c][1]);
            s[(size_t)c * lds + (size_t)r] = zf_hsum(v);
        }
}

#define ZF_TILE(T, NR, NC, n, w, ldw, a, lda, s, lds)                                              \
    zf_tile(T, NR, NC, n, w, ldw, a, lda, s, lds, 0)
#define ZF_TILE_INV(T, NR, NC, n, w, ldw, a, lda, s, lds)                                          \
    zf_tile(T, NR, NC, n, w, ldw, a, lda, s, lds, 1)
X86_GEMM_DISPATCH(zf_gemm_f16, ZF_TILE, INF_TYPE_F16, 4, 4, n)
X86_GEMM_DISPATCH(zf_gemm_bf16, ZF_TILE, INF_TYPE_BF16, 4, 4, n)
/* gemm_inv: 4 x 2 tiles, 8 accumulators of two vectors (U) each */
X86_GEMM_DISPATCH(zf_gemm_f16_inv, ZF_TILE_INV, INF_TYPE_F16, 4, 2, n)
X86_GEMM_DISPATCH(zf_gemm_bf16_inv, ZF_TILE_INV, INF_TYPE_BF16, 4, 2, n)

/* ---- panels: 16 rows in the lanes, for batches ------------------------------------------- */

#ifndef ZF_PACK_PF
#define ZF_PACK_PF 512 /* bytes ahead in each weight row */
#endif
#ifndef ZF_NP
#define ZF_NP 2 /* panels per micro-kernel call */
#endif
#ifndef ZF_NC
#define ZF_NC 12 /* tokens per micro-kernel call */
#endif

/*
 * In-register transpose of 16 vectors: after it, lane j of v[i] is lane i of the input v[j].
 * Four butterfly stages (b = 8, 4, 2, 1) swap the off-diagonal b x b blocks of each 2b x 2b
 * block: rows i and i + b (i & b == 0) exchange their column blocks with j & b set and clear.
 */
static const int32_t zf_tidx[4][2][16] __attribute__((aligned(64))) = {
    /* b = 8, 4, 2, 1: lo (row i) = j & b ? 16 + j - b : j, hi (row i + b) = j & b ? 16 + j : j + b
     */
    {{0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23},
     {8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31}},
    {{0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27},
     {4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31}},
    {{0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29},
     {2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31}},
    {{0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30},
     {1, 17, 3, 19, 5, 21, 7, 23, 9, 25, 11, 27, 13, 29, 15, 31}},
};

static INF__ALWAYS_INLINE void zf_transpose16(__m512 v[16])
{
#pragma GCC unroll 4
    for (int st = 0; st < 4; st++) {
        const int b = 8 >> st;
        const __m512i il = _mm512_load_si512(zf_tidx[st][0]),
                      ih = _mm512_load_si512(zf_tidx[st][1]);
#pragma GCC unroll 16
        for (int i = 0; i < 16; i++) {
            if (i & b)
                continue;
            const __m512 x = v[i], y = v[i + b];
            v[i] = _mm512_permutex2var_ps(x, il, y);
            v[i + b] = _mm512_permutex2var_ps(x, ih, y);
        }
    }
}

/*
 * Rows [0, nr) (nr <= 16) of w as one panel: dst[16 * k + r] = w[r][k] for k < n; rows past nr
 * are zero (their results are computed and not stored).
 */
static INF__ALWAYS_INLINE void zf_pack(const int T, const uint8_t *w, size_t ldw, int nr, int64_t n,
                                       float *dst)
{
    int64_t k = 0;
    if (nr == 16) {
        /* whole blocks of a full panel: the weights come from memory, 16 rows at once, so each
         * row is prefetched ZF_PACK_PF bytes ahead (the hardware prefetchers track few of them) */
        /* rows 4q..4q+3 through one base each: base + {0, 1, 2, 3} * ldw */
        const size_t l3 = 3 * ldw;
        for (; k + 16 <= n; k += 16) {
            const uint8_t *b[4];
            for (int q = 0; q < 4; q++)
                b[q] = w + 2 * k + (size_t)(4 * q) * ldw;
            __m512 v[16];
#pragma GCC unroll 16
            for (int r = 0; r < 16; r++) {
                const uint8_t *wr = b[r / 4] + (r % 4 == 3 ? l3 : (size_t)(r % 4) * ldw);
                _mm_prefetch((const char *)wr + ZF_PACK_PF, _MM_HINT_T0);
                v[r] = zf_load16(T, wr, 0);
            }
            zf_transpose16(v);
#pragma GCC unroll 16
            for (int j = 0; j < 16; j++)
                _mm512_store_ps(dst + 16 * (k + j), v[j]);
        }
    }
    for (; k < n; k += 16) {
        const int kn = n - k >= 16 ? 16 : (int)(n - k);
        const __mmask16 m = (__mmask16)((1u << kn) - 1);
        __m512 v[16];
        for (int r = 0; r < 16; r++)
            v[r] = r < nr ? zf_load16_mask(T, w + (size_t)r * ldw, k, m) : _mm512_setzero_ps();
        zf_transpose16(v);
        for (int j = 0; j < kn; j++)
            _mm512_store_ps(dst + 16 * (k + j), v[j]);
    }
}

/* NP panels (pstride floats apart) times NC tokens; nr valid rows over the NP panels. */
static INF__ALWAYS_INLINE void zf_micro(const int NP, const int NC, int64_t n, const float *pan,
                                        size_t pstride, const uint8_t *a, size_t lda, float *s,
                                        size_t lds, int nr)
{
    __m512 acc[ZF_NP][ZF_NC];
    const float *ac[ZF_NC];
    for (int c = 0; c < NC; c++) {
        ac[c] = (const float *)(const void *)(a + (size_t)c * lda);
        for (int p = 0; p < NP; p++)
            acc[p][c] = _mm512_setzero_ps();
    }
    for (int64_t k = 0; k < n; k++) {
        __m512 wv[ZF_NP];
        for (int p = 0; p < NP; p++)
            wv[p] = _mm512_load_ps(pan + (size_t)p * pstride + 16 * k);
        for (int c = 0; c < NC; c++) {
            const __m512 av = _mm512_set1_ps(ac[c][k]);
            for (int p = 0; p < NP; p++)
                acc[p][c] = _mm512_fmadd_ps(wv[p], av, acc[p][c]);
        }
    }
    for (int p = 0; p < NP; p++) {
        const int rn = nr - 16 * p >= 16 ? 16 : nr - 16 * p;
        const __mmask16 m = (__mmask16)((1u << rn) - 1);
        for (int c = 0; c < NC; c++)
            _mm512_mask_storeu_ps(s + (size_t)c * lds + 16 * p, m, acc[p][c]);
    }
}

/* Every token count 1..ZF_NC as a constant, for NP panels. */
static INF__ALWAYS_INLINE void zf_micro_nc(const int NP, int nc, int64_t n, const float *pan,
                                           size_t pstride, const uint8_t *a, size_t lda, float *s,
                                           size_t lds, int nr)
{
    switch (nc) {
#define ZF_CASE(C)                                                                                 \
    case C:                                                                                        \
        zf_micro(NP, C, n, pan, pstride, a, lda, s, lds, nr);                                      \
        break;
#if ZF_NC >= 12
        ZF_CASE(12)
        ZF_CASE(11)
        ZF_CASE(10)
        ZF_CASE(9)
#endif
#if ZF_NC >= 8
        ZF_CASE(8)
        ZF_CASE(7)
#endif
        ZF_CASE(6)
        ZF_CASE(5)
        ZF_CASE(4)
        ZF_CASE(3)
        ZF_CASE(2)
        ZF_CASE(1)
#undef ZF_CASE
    default:
        break;
    }
}

/* Kept out of line: each panel count is one loop nest per token count. */
#define ZF_MICRO_P(P)                                                                              \
    static __attribute__((noinline)) void zf_micro_p##P(int nc, int64_t n, const float *pan,       \
                                                        size_t pstride, const uint8_t *a,          \
                                                        size_t lda, float *s, size_t lds, int nr)  \
    {                                                                                              \
        zf_micro_nc(P, nc, n, pan, pstride, a, lda, s, lds, nr);                                   \
    }
ZF_MICRO_P(1)
#if ZF_NP >= 2
ZF_MICRO_P(2)
#endif
#if ZF_NP >= 3
ZF_MICRO_P(3)
#endif
#if ZF_NP >= 4
ZF_MICRO_P(4)
#endif

static void zf_panel_gemm(const int T, int64_t n, const uint8_t *w, size_t ldw, const uint8_t *a,
                          size_t lda, float *s, size_t lds, int nr, int nc, float *buf)
{
    const int np = (nr + 15) / 16;
    const size_t pstride = (size_t)n * 16;
    for (int p = 0; p < np; p++)
        zf_pack(T, w + (size_t)p * 16 * ldw, ldw, nr - 16 * p < 16 ? nr - 16 * p : 16, n,
                buf + (size_t)p * pstride);
    /* tokens outside: a tile of tokens' activations is read from memory once per chunk, and
     * the chunk's panels (converted, under 1 MiB) come from L2 for each tile */
    for (int c = 0; c < nc; c += ZF_NC) {
        const int cn = nc - c < ZF_NC ? nc - c : ZF_NC;
        for (int p = 0; p < np; p += ZF_NP) {
            const int pn = np - p < ZF_NP ? np - p : ZF_NP;
            const float *pan = buf + (size_t)p * pstride;
            const int rn = nr - 16 * p;
            float *sp = s + (size_t)c * lds + (size_t)p * 16;
            const uint8_t *ac = a + (size_t)c * lda;
            switch (pn) {
#if ZF_NP >= 4
            case 4:
                zf_micro_p4(cn, n, pan, pstride, ac, lda, sp, lds, rn);
                break;
#endif
#if ZF_NP >= 3
            case 3:
                zf_micro_p3(cn, n, pan, pstride, ac, lda, sp, lds, rn);
                break;
#endif
#if ZF_NP >= 2
            case 2:
                zf_micro_p2(cn, n, pan, pstride, ac, lda, sp, lds, rn);
                break;
#endif
            default:
                zf_micro_p1(cn, n, pan, pstride, ac, lda, sp, lds, rn);
                break;
            }
        }
    }
}

/*
 * Scratch for a chunk's panels: one 64-byte aligned buffer per thread, grown when a chunk needs
 * more and reused for every later one, so the product allocates nothing once warm; freed when
 * the thread ends.
 */

static float *zf_scratch(int64_t n, int nr)
{
    if (n <= 0 || nr <= 0)
        return NULL;
    const size_t total = (size_t)((nr + 15) / 16) * (size_t)n * 16 * sizeof(float);
    return inf__thread_scratch(total);
}

#define ZF_PANEL(t, T)                                                                             \
    static void zf_panel_##t(int64_t n, const void *vw, size_t ldw, const void *va, size_t lda,    \
                             float *s, size_t lds, int nr, int nc)                                 \
    {                                                                                              \
        float *buf = zf_scratch(n, nr);                                                            \
        if (!buf) { /* out of memory, or nothing to do: the plain tiles need no scratch */         \
            zf_gemm_##t(n, vw, ldw, va, lda, s, lds, nr, nc);                                      \
            return;                                                                                \
        }                                                                                          \
        zf_panel_gemm(T, n, vw, ldw, va, lda, s, lds, nr, nc, buf);                                \
    }
ZF_PANEL(f16, INF_TYPE_F16)
ZF_PANEL(bf16, INF_TYPE_BF16)

/*
 * panel_min_nc: the conversion costs about as much as the products of a dozen tokens; 768 x
 * 8192 weights, 1 thread, panel over tiles: 8 tokens 0.72-0.74, 16 0.96-1.04, 24-32 1.03-1.39,
 * 64-128 1.5-1.8.
 */
void inf__kern_init_avx512_f16(struct inf__kern *k)
{
    k->w[INF_TYPE_F16] = (struct inf__wkern){.gemm = zf_gemm_f16,
                                             .max_nr = 8,
                                             .max_nc = 4,
                                             .panel = zf_panel_f16,
                                             .panel_min_nc = 16,
                                             .gemm_inv = zf_gemm_f16_inv};
    k->w[INF_TYPE_BF16] = (struct inf__wkern){.gemm = zf_gemm_bf16,
                                              .max_nr = 8,
                                              .max_nc = 4,
                                              .panel = zf_panel_bf16,
                                              .panel_min_nc = 16,
                                              .gemm_inv = zf_gemm_bf16_inv};
}

#else
typedef int inf__kern_avx512_f16_unused; /* ISO C: no empty translation units */
#endif
