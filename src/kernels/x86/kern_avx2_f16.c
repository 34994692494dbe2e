/*
 * kern_avx2_f16.c - F16 and BF16 weights in batches on AVX2: panels, as kern_avx512_f16.c does
 * with 512-bit vectors.
 *
 * The register tiles of kern_x86.h (2 rows x 4 tokens, one sum per output across the 8 lanes)
 * convert each weight vector again for every tile of tokens and end with horizontal sums; on Zen
 * 3 they reached about half of what llama.cpp's F16 prompts do. Here a chunk of rows is converted
 * to F32 once, 8 rows at a time transposed so that value k of the 8 rows is one vector ("rows in
 * lanes"); the micro-kernel multiplies AF_NP panels (8 * AF_NP rows) by up to AF_NC tokens, per
 * value k AF_NP weight loads and one broadcast per token feeding AF_NP * AF_NC accumulators (12
 * of the 16 registers). Each result is one F32 sum over k in order. Another summation order than
 * the tiles: not used under INF_MATMUL_INVARIANT (matmul.c).
 */
#ifdef INFERNO_X86

#include "kernels/x86/kern_x86.h"

#define AF_NP 2 /* panels per micro-kernel call */
#define AF_NC 6 /* tokens per micro-kernel call */

static INF__ALWAYS_INLINE __m256 af_load8(const int T, const uint8_t *w)
{
    const __m128i h = _mm_loadu_si128((const __m128i *)(const void *)w);
    if (T == INF_TYPE_F16)
        return _mm256_cvtph_ps(h);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

/* After it, lane j of v[i] is lane i of the input v[j]. */
static INF__ALWAYS_INLINE void af_transpose8(__m256 v[8])
{
    __m256 t[8], u[8];
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_ps(v[i], v[i + 1]);
        t[i + 1] = _mm256_unpackhi_ps(v[i], v[i + 1]);
    }
    for (int i = 0; i < 8; i += 4) {
        u[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
        u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xee);
        u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
        u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xee);
    }
    for (int i = 0; i < 4; i++) {
        v[i] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x20);
        v[i + 4] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x31);
    }
}

/* Rows [0, nr) (nr <= 8) of w as one panel: dst[8 * k + r] = w[r][k]; rows past nr are zero
 * (their results are computed and not stored). */
static INF__ALWAYS_INLINE void af_pack(const int T, const uint8_t *w, size_t ldw, int nr, int64_t n,
                                       float *dst)
{
    int64_t k = 0;
    if (nr == 8)
        for (; k + 8 <= n; k += 8) {
            __m256 v[8];
            for (int r = 0; r < 8; r++)
                v[r] = af_load8(T, w + (size_t)r * ldw + 2 * k);
            af_transpose8(v);
            for (int j = 0; j < 8; j++)
                _mm256_store_ps(dst + 8 * (k + j), v[j]);
        }
    for (; k < n; k++)
        for (int r = 0; r < 8; r++)
            dst[8 * k + r] = r < nr ? x86_load_w1(T, w + (size_t)r * ldw, k) : 0.0f;
}

/* NP panels (pstride floats apart) times NC tokens; nr valid rows over the NP panels. */
static INF__ALWAYS_INLINE void af_micro(const int NP, const int NC, int64_t n, const float *pan,
                                        size_t pstride, const uint8_t *a, size_t lda, float *s,
                                        size_t lds, int nr)
{
    __m256 acc[AF_NP][AF_NC];
    const float *ac[AF_NC];
#pragma GCC unroll 6
    for (int c = 0; c < NC; c++) {
        ac[c] = (const float *)(const void *)(a + (size_t)c * lda);
        for (int p = 0; p < NP; p++)
            acc[p][c] = _mm256_setzero_ps();
    }
    for (int64_t k = 0; k < n; k++) {
        __m256 wv[AF_NP];
#pragma GCC unroll 2
        for (int p = 0; p < NP; p++)
            wv[p] = _mm256_load_ps(pan + (size_t)p * pstride + 8 * k);
#pragma GCC unroll 6
        for (int c = 0; c < NC; c++) {
            const __m256 av = _mm256_broadcast_ss(ac[c] + k);
            for (int p = 0; p < NP; p++)
                acc[p][c] = _mm256_fmadd_ps(wv[p], av, acc[p][c]);
        }
    }
    /* unrolled (as every loop over acc here), so that acc stays in registers */
#pragma GCC unroll 2
    for (int p = 0; p < NP; p++)
#pragma GCC unroll 6
        for (int c = 0; c < NC; c++)
            x86_store_rows8(s + (size_t)c * lds + 8 * p, acc[p][c], nr - 8 * p);
}

/* Each token count 1..AF_NC as a constant; kept out of line, a loop nest per count. */
#define AF_MICRO_P(P)                                                                              \
    static __attribute__((noinline)) void af_micro_p##P(int nc, int64_t n, const float *pan,       \
                                                        size_t pstride, const uint8_t *a,          \
                                                        size_t lda, float *s, size_t lds, int nr)  \
    {                                                                                              \
        switch (nc) {                                                                              \
        case 6:                                                                                    \
            af_micro(P, 6, n, pan, pstride, a, lda, s, lds, nr);                                   \
            break;                                                                                 \
        case 5:                                                                                    \
            af_micro(P, 5, n, pan, pstride, a, lda, s, lds, nr);                                   \
            break;                                                                                 \
        case 4:                                                                                    \
            af_micro(P, 4, n, pan, pstride, a, lda, s, lds, nr);                                   \
            break;                                                                                 \
        case 3:                                                                                    \
            af_micro(P, 3, n, pan, pstride, a, lda, s, lds, nr);                                   \
            break;                                                                                 \
        case 2:                                                                                    \
            af_micro(P, 2, n, pan, pstride, a, lda, s, lds, nr);                                   \
            break;                                                                                 \
        default:                                                                                   \
            af_micro(P, 1, n, pan, pstride, a, lda, s, lds, nr);                                   \
        }                                                                                          \
    }
AF_MICRO_P(1)
AF_MICRO_P(2)

static void af_panel_gemm(const int T, int64_t n, const uint8_t *w, size_t ldw, const uint8_t *a,
                          size_t lda, float *s, size_t lds, int nr, int nc, float *buf)
{
    const int np = (nr + 7) / 8;
    const size_t pstride = (size_t)n * 8;
    for (int p = 0; p < np; p++)
        af_pack(T, w + (size_t)p * 8 * ldw, ldw, nr - 8 * p < 8 ? nr - 8 * p : 8, n,
                buf + (size_t)p * pstride);
    /* panels outside: AF_NP panels (n = 2048: 128 KiB) stay in L2 for every tile of tokens,
     * where a whole chunk's (64 rows: 512 KiB, Zen 3's L2) did not */
    for (int p = 0; p < np; p += AF_NP) {
        for (int c = 0; c < nc; c += AF_NC) {
            const int cn = nc - c < AF_NC ? nc - c : AF_NC;
            const float *pan = buf + (size_t)p * pstride;
            float *sp = s + (size_t)c * lds + (size_t)p * 8;
            const uint8_t *ac = a + (size_t)c * lda;
            if (np - p >= 2)
                af_micro_p2(cn, n, pan, pstride, ac, lda, sp, lds, nr - 8 * p);
            else
                af_micro_p1(cn, n, pan, pstride, ac, lda, sp, lds, nr - 8 * p);
        }
    }
}

/* The level's tile product, where no scratch can be had. */
static inf__gemm_fn af_tiles[INF_TYPE_COUNT];

#define AF_PANEL(t, T)                                                                             \
    static void af_panel_##t(int64_t n, const void *vw, size_t ldw, const void *va, size_t lda,    \
                             float *s, size_t lds, int nr, int nc)                                 \
    {                                                                                              \
        float *buf =                                                                               \
            n > 0 && nr > 0                                                                        \
                ? inf__thread_scratch((size_t)((nr + 7) / 8) * (size_t)n * 8 * sizeof(float))      \
                : NULL;                                                                            \
        if (!buf) {                                                                                \
            af_tiles[T](n, vw, ldw, va, lda, s, lds, nr, nc);                                      \
            return;                                                                                \
        }                                                                                          \
        af_panel_gemm(T, n, vw, ldw, va, lda, s, lds, nr, nc, buf);                                \
    }
AF_PANEL(f16, INF_TYPE_F16)
AF_PANEL(bf16, INF_TYPE_BF16)

/* Over a table whose F16/BF16 gemms are set: the panels beside them (from 16 tokens, as on
 * AVX-512: below that the conversion costs more than the tiles lose). */
void inf__kern_init_avx2_f16(struct inf__kern *k)
{
    af_tiles[INF_TYPE_F16] = k->w[INF_TYPE_F16].gemm;
    af_tiles[INF_TYPE_BF16] = k->w[INF_TYPE_BF16].gemm;
    k->w[INF_TYPE_F16].panel = af_panel_f16;
    k->w[INF_TYPE_F16].panel_min_nc = 16;
    k->w[INF_TYPE_BF16].panel = af_panel_bf16;
    k->w[INF_TYPE_BF16].panel_min_nc = 16;
}

#else
typedef int inf__kern_avx2_f16_unused; /* ISO C: no empty translation units */
#endif
