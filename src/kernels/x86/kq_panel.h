/*
 * kernels/x86/kq_panel.h - what the K-quant panel kernels of AVX2 (kern_avx2_kq.c) and AVX-512
 * (kern_avx512_kq.c) share: the panel superblock's layout (described in kern_avx512_kq.c), the
 * activations' sub-block sums, the per-thread scratch and the panel entries. Included by those
 * two files only, each compiled with its own ISA flags.
 */
#ifndef INFERNO_KERNELS_X86_KQ_PANEL_H
#define INFERNO_KERNELS_X86_KQ_PANEL_H

#include "kernels/x86/kern_x86.h"

#define KQ_NC     4         /* tokens per tile */
#define KQ_LEVELS (64 * 64) /* the level vectors of a panel superblock, bytes */

/* Scale vectors per superblock; where the mins (Q6_K: 32 x scale), the d (and dmin) start. */
static INF__ALWAYS_INLINE int kq_n_sc(const int T)
{
    return T == INF_TYPE_Q6_K ? 16 : 8;
}
static INF__ALWAYS_INLINE size_t kq_off_mn(const int T)
{
    return KQ_LEVELS + 64 * (size_t)kq_n_sc(T);
}
static INF__ALWAYS_INLINE size_t kq_off_d(const int T)
{
    return kq_off_mn(T) + 64 * (size_t)kq_n_sc(T) / 2;
}
static INF__ALWAYS_INLINE size_t kq_sb_bytes(const int T)
{
    return kq_off_d(T) + (T == INF_TYPE_Q6_K ? 64 : 128);
}

/* Q4_K/Q5_K: the activations' sub-block sums (8 int16 per token and superblock), nc tokens. */
static inline void kq_act(int nc, int64_t nb, const uint8_t *a, size_t lda, int16_t *bs)
{
    for (int c = 0; c < nc; c++)
        for (int64_t b = 0; b < nb; b++) {
            const struct inf_block_q8_K *y =
                (const void *)(a + (size_t)c * lda + (size_t)b * sizeof(struct inf_block_q8_K));
            _mm_storeu_si128((__m128i *)(void *)(bs + 8 * ((size_t)c * (size_t)nb + (size_t)b)),
                             x86_bsum_pairs(y->bsums));
        }
}

/*
 * Scratch for a chunk: its panels, then the activations' sub-block sums for KQ_NC tokens. One
 * grow-only buffer per thread, freed when the thread ends (as the Q4_0/Q8_0 panels' scratch).
 */
static inline uint8_t *kq_scratch(const int T, int64_t n, int nr)
{
    const int64_t nb = n / INF_QK_K;
    if (nb <= 0 || nr <= 0)
        return NULL;
    const size_t total = ((size_t)((nr + 15) / 16) * (size_t)nb * kq_sb_bytes(T) +
                          (size_t)KQ_NC * (size_t)nb * 8 * sizeof(int16_t) + 63) /
                         64 * 64;
    return inf__thread_scratch(total);
}

/*
 * A chunk's product: NAME(T, n, w, ldw, a, lda, s, lds, nr, nc, buf) packs the chunk's panels
 * with the file's PACK(T, w, ldw, rows, nb, dst), then for every KQ_NC tokens (their sub-block
 * sums first, for Q4_K/Q5_K) and panel runs the file's TILES(T, nb, cn, pan, a, lda, bs, s, lds,
 * rows): its register tiles over one panel of up to 16 rows for cn tokens.
 */
#define KQ_GEMM(NAME, PACK, TILES)                                                                 \
    static INF__ALWAYS_INLINE void NAME(const int T, int64_t n, const uint8_t *w, size_t ldw,      \
                                        const uint8_t *a, size_t lda, float *s, size_t lds,        \
                                        int nr, int nc, uint8_t *buf)                              \
    {                                                                                              \
        const int64_t nb = n / INF_QK_K;                                                           \
        const int np = (nr + 15) / 16;                                                             \
        const size_t pan_bytes = (size_t)nb * kq_sb_bytes(T);                                      \
        int16_t *bs = (int16_t *)(void *)(buf + (size_t)np * pan_bytes);                           \
        for (int p = 0; p < np; p++)                                                               \
            PACK(T, w + (size_t)p * 16 * ldw, ldw, nr - 16 * p < 16 ? nr - 16 * p : 16, nb,        \
                 buf + (size_t)p * pan_bytes);                                                     \
        for (int c0 = 0; c0 < nc; c0 += KQ_NC) {                                                   \
            const int cn = nc - c0 < KQ_NC ? nc - c0 : KQ_NC;                                      \
            const uint8_t *ac = a + (size_t)c0 * lda;                                              \
            if (T != INF_TYPE_Q6_K)                                                                \
                kq_act(cn, nb, ac, lda, bs);                                                       \
            for (int p = 0; p < np; p++)                                                           \
                TILES(T, nb, cn, buf + (size_t)p * pan_bytes, ac, lda, bs,                         \
                      s + (size_t)c0 * lds + (size_t)p * 16, lds,                                  \
                      nr - 16 * p < 16 ? nr - 16 * p : 16);                                        \
        }                                                                                          \
    }

/*
 * The panel entries gemm_q4_K_panel, gemm_q5_K_panel and gemm_q6_K_panel over the file's
 * GEMM(T, n, w, ldw, a, lda, s, lds, nr, nc, buf), for any nr and nc; where OK (an expression
 * of ldw) is false or there is no scratch (out of memory) they fall back to the reference loop.
 */
#define KQ_PANEL(t, T, GEMM, OK)                                                                   \
    static void gemm_##t##_panel(int64_t n, const void *vw, size_t ldw, const void *va,            \
                                 size_t lda, float *s, size_t lds, int nr, int nc)                 \
    {                                                                                              \
        uint8_t *buf = (OK) ? kq_scratch(T, n, nr) : NULL;                                         \
        if (!buf) {                                                                                \
            inf__gemm_ref(T, n, vw, ldw, va, lda, s, lds, nr, nc);                                 \
            return;                                                                                \
        }                                                                                          \
        GEMM(T, n, vw, ldw, va, lda, s, lds, nr, nc, buf);                                         \
    }
#define KQ_PANELS(GEMM, OK)                                                                        \
    KQ_PANEL(q4_K, INF_TYPE_Q4_K, GEMM, OK)                                                        \
    KQ_PANEL(q5_K, INF_TYPE_Q5_K, GEMM, OK)                                                        \
    KQ_PANEL(q6_K, INF_TYPE_Q6_K, GEMM, OK)

/* panel_min_nc by bench-kernels (2048 x 2048, 1 thread, against the plain gemm, on AVX-512):
   Q4_K breaks even near 6 tokens, Q6_K (whose plain gemm is faster and whose packing costs
   more) near 16. */
static inline void kq_register(struct inf__kern *k, inf__gemm_fn q4_K, inf__gemm_fn q5_K,
                               inf__gemm_fn q6_K)
{
    k->w[INF_TYPE_Q4_K].panel = q4_K;
    k->w[INF_TYPE_Q4_K].panel_min_nc = 8;
    k->w[INF_TYPE_Q5_K].panel = q5_K;
    k->w[INF_TYPE_Q5_K].panel_min_nc = 8;
    k->w[INF_TYPE_Q6_K].panel = q6_K;
    k->w[INF_TYPE_Q6_K].panel_min_nc = 16;
}

#endif
