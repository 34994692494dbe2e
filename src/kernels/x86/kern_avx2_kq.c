/*
 * kern_avx2_kq.c - AVX2 panel kernels for the K-quants (Q4_K, Q5_K, Q6_K) times Q8_K, for
 * batches: kern_avx512_kq.c's plan in 256-bit vectors.
 *
 * The panel superblock is kern_avx512_kq.c's layout (16 rows, 4 bytes of each row per 64-byte
 * vector): its low 32 bytes are rows 0-7, its high 32 bytes rows 8-15, one ymm each. The tile
 * takes one half at a time (up to 4 tokens: per token an int16 group sum and an int32 scaled
 * sum stay in registers, 11 of the 16), so one broadcast of 4 activation bytes feeds 8 rows in
 * a VPMADDUBSW. The exactness bounds are the AVX-512 file's (the same lanes, the same sums).
 * Without gathers on AVX2 the panels are packed by plain loops, once per chunk of rows for all
 * its tokens (panel_min_nc: the batch must be long enough to pay for it).
 *
 * Another order of summation than the row kernels: like every panel, not used under
 * INF_MATMUL_INVARIANT (matmul.c).
 */
#ifdef INFERNO_X86

#include <string.h>

#include "kernels/x86/kq_panel.h"

/* Byte i of lane r of vector v of the superblock at pb. */
#define YK_AT(pb, v, r, i) ((pb)[64 * (size_t)(v) + 4 * (size_t)(r) + (size_t)(i)])

/* The 6-bit scale and min j of a Q4_K/Q5_K superblock's 12 scale bytes (the reference's
   unpacking). */
static INF__ALWAYS_INLINE void yk_scale_min(const uint8_t *q, int j, uint8_t *sc, uint8_t *mn)
{
    if (j < 4) {
        *sc = q[j] & 63;
        *mn = q[j + 4] & 63;
    } else {
        *sc = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *mn = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

static INF__ALWAYS_INLINE void yk_put16(uint8_t *p, int16_t lo, int16_t hi)
{
    memcpy(p, &lo, 2);
    memcpy(p + 2, &hi, 2);
}

/* Repack rows [0, nr) (nr <= 16) of nb superblocks into one panel; rows >= nr are zero. */
static INF__ALWAYS_INLINE void yk_pack(const int T, const uint8_t *w, size_t ldw, int nr,
                                       int64_t nb, uint8_t *dst)
{
    const size_t wbs = x86_wbytes(T), sbb = kq_sb_bytes(T);
    for (int64_t b = 0; b < nb; b++) {
        uint8_t *pb = dst + (size_t)b * sbb;
        memset(pb, 0, sbb);
        for (int r = 0; r < nr; r++) {
            const uint8_t *base = w + (size_t)r * ldw + (size_t)b * wbs;
            float *d = (float *)(void *)(pb + kq_off_d(T));
            if (T == INF_TYPE_Q6_K) {
                const struct inf_block_q6_K *x = (const void *)base;
                /* vector 32h + 8q + g: values 128h + 32q + 4g .. + 3 */
                for (int h = 0; h < 2; h++)
                    for (int q = 0; q < 4; q++)
                        for (int g = 0; g < 8; g++)
                            for (int i = 0; i < 4; i++) {
                                const int l = 4 * g + i;
                                const uint8_t ql = x->ql[64 * h + 32 * (q & 1) + l];
                                const uint8_t lo = q < 2 ? (ql & 15) : (ql >> 4);
                                const uint8_t hb = (x->qh[32 * h + l] >> (2 * q)) & 3;
                                YK_AT(pb, 32 * h + 8 * q + g, r, i) = (uint8_t)(lo | hb << 4);
                            }
                for (int j = 0; j < 16; j++)
                    yk_put16(pb + KQ_LEVELS + 64 * j + 4 * r, x->scales[j], x->scales[j]);
                for (int k = 0; k < 8; k++)
                    yk_put16(pb + kq_off_mn(T) + 64 * k + 4 * r, (int16_t)(32 * x->scales[2 * k]),
                             (int16_t)(32 * x->scales[2 * k + 1]));
                d[r] = inf__fp16_table[x->d];
            } else {
                const uint8_t *qs = T == INF_TYPE_Q4_K ? ((const struct inf_block_q4_K *)base)->qs
                                                       : ((const struct inf_block_q5_K *)base)->qs;
                const uint8_t *qh =
                    T == INF_TYPE_Q5_K ? ((const struct inf_block_q5_K *)base)->qh : NULL;
                const struct inf_block_q4_K *x = (const void *)base; /* d, dmin, scales alike */
                /* vector 16p + g: group g of sub-block 2p (low nibbles of qs + 32p + 4g), vector
                   16p + 8 + g: of sub-block 2p + 1 (high nibbles); Q5_K adds 16 where bit 2p
                   (2p + 1) of qh[4g + i] is set */
                for (int p = 0; p < 4; p++)
                    for (int g = 0; g < 8; g++)
                        for (int i = 0; i < 4; i++) {
                            const uint8_t v = qs[32 * p + 4 * g + i];
                            uint8_t lo = v & 15, hi = v >> 4;
                            if (qh) {
                                lo = (uint8_t)(lo + (((qh[4 * g + i] >> (2 * p)) & 1) << 4));
                                hi = (uint8_t)(hi + (((qh[4 * g + i] >> (2 * p + 1)) & 1) << 4));
                            }
                            YK_AT(pb, 16 * p + g, r, i) = lo;
                            YK_AT(pb, 16 * p + 8 + g, r, i) = hi;
                        }
                uint8_t sc[8], mn[8];
                for (int j = 0; j < 8; j++)
                    yk_scale_min(x->scales, j, &sc[j], &mn[j]);
                for (int j = 0; j < 8; j++)
                    yk_put16(pb + KQ_LEVELS + 64 * j + 4 * r, sc[j], sc[j]);
                for (int k = 0; k < 4; k++)
                    yk_put16(pb + kq_off_mn(T) + 64 * k + 4 * r, mn[2 * k], mn[2 * k + 1]);
                d[r] = inf__fp16_table[x->d];
                d[16 + r] = inf__fp16_table[x->dmin];
            }
        }
    }
}

/* Half h (rows 8h .. 8h + 7) of a panel times NC tokens; results for rows < nr stored. */
static INF__ALWAYS_INLINE void yk_tile(const int T, const int NC, int64_t nb, const uint8_t *pan,
                                       int h, const uint8_t *a, size_t lda, const int16_t *bs,
                                       float *s, size_t lds, int nr)
{
    const int ns = kq_n_sc(T), GPS = 64 / ns;
    const int GS = T == INF_TYPE_Q4_K ? 8 : T == INF_TYPE_Q5_K ? 4 : 2;
    const size_t sbb = kq_sb_bytes(T), off_mn = kq_off_mn(T), off_d = kq_off_d(T);
    const size_t hb = 32 * (size_t)h;
    __m256 acc[KQ_NC];
    for (int c = 0; c < NC; c++)
        acc[c] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *pb = pan + (size_t)b * sbb + hb;
        const struct inf_block_q8_K *y[KQ_NC];
        for (int c = 0; c < NC; c++)
            y[c] = (const void *)(a + (size_t)c * lda + (size_t)b * sizeof(struct inf_block_q8_K));
        __m256i si[KQ_NC];
        for (int c = 0; c < NC; c++)
            si[c] = _mm256_setzero_si256();
        for (int j = 0; j < ns; j++) {
            const __m256i scv =
                _mm256_load_si256((const __m256i *)(const void *)(pb + KQ_LEVELS + 64 * j));
            for (int g0 = 0; g0 < GPS; g0 += GS) {
                __m256i a16[KQ_NC];
                for (int c = 0; c < NC; c++)
                    a16[c] = _mm256_setzero_si256();
                for (int g = g0; g < g0 + GS; g++) {
                    const __m256i wv =
                        _mm256_load_si256((const __m256i *)(const void *)(pb + 64 * (GPS * j + g)));
                    for (int c = 0; c < NC; c++) {
                        int32_t v;
                        memcpy(&v, y[c]->qs + 4 * (GPS * j + g), 4);
                        a16[c] = _mm256_add_epi16(a16[c],
                                                  _mm256_maddubs_epi16(wv, _mm256_set1_epi32(v)));
                    }
                }
                for (int c = 0; c < NC; c++)
                    si[c] = _mm256_add_epi32(si[c], _mm256_madd_epi16(a16[c], scv));
            }
        }
        const __m256 dx =
            _mm256_load_ps((const float *)(const void *)(pan + (size_t)b * sbb + off_d + hb));
        for (int c = 0; c < NC; c++) {
            const int16_t *bc =
                T == INF_TYPE_Q6_K ? y[c]->bsums : bs + 8 * ((size_t)c * (size_t)nb + (size_t)b);
            __m256i sm = _mm256_setzero_si256();
            for (int k = 0; k < ns / 2; k++) {
                int32_t v;
                memcpy(&v, bc + 2 * k, 4);
                sm = _mm256_add_epi32(
                    sm, _mm256_madd_epi16(_mm256_load_si256((
                                              const __m256i *)(const void *)(pb + off_mn + 64 * k)),
                                          _mm256_set1_epi32(v)));
            }
            const __m256 ydv = _mm256_set1_ps(y[c]->d);
            if (T == INF_TYPE_Q6_K) {
                acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(si[c], sm)),
                                         _mm256_mul_ps(dx, ydv), acc[c]);
            } else {
                const __m256 dm = _mm256_load_ps(
                    (const float *)(const void *)(pan + (size_t)b * sbb + off_d + 64 + hb));
                acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(si[c]), _mm256_mul_ps(dx, ydv), acc[c]);
                acc[c] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(sm), _mm256_mul_ps(dm, ydv), acc[c]);
            }
        }
    }
    const int cnt = nr - 8 * h;
    for (int c = 0; c < NC; c++)
        x86_store_rows8(s + (size_t)c * lds + 8 * (size_t)h, acc[c], cnt);
}

/* Both halves of a panel (the second only where it has rows). */
static INF__ALWAYS_INLINE void yk_tiles(const int T, int64_t nb, int cn, const uint8_t *pan,
                                        const uint8_t *a, size_t lda, const int16_t *bs, float *s,
                                        size_t lds, int rn)
{
    for (int h = 0; h < 2 && 8 * h < rn; h++) {
#define YK_TILE(NC) yk_tile(T, NC, nb, pan, h, a, lda, bs, s, lds, rn)
        X86_WITH_NC4(cn, YK_TILE)
#undef YK_TILE
    }
}

KQ_GEMM(yk_gemm, yk_pack, yk_tiles)

KQ_PANELS(yk_gemm, true)

void inf__kern_init_avx2_kq(struct inf__kern *k)
{
    kq_register(k, gemm_q4_K_panel, gemm_q5_K_panel, gemm_q6_K_panel);
}

#else
typedef int inf__kern_avx2_kq_unused; /* ISO C: no empty translation units */
#endif
