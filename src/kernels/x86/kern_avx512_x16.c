/*
 * kern_avx512_x16.c - AVX-512 VNNI products of Q4_0 and Q4_K weights repacked in 16-row groups
 * (INF_TYPE_Q4_0_X16, INF_TYPE_Q4_K_X16, layouts in kernels/internal.h), for one token and for
 * batches alike.
 *
 * Each 64-byte vector of a block holds 4 packed bytes of each of the 16 rows: AND 0x0f gives
 * the levels of values 4j..4j+3, AND 0xf0 those of values 16+4j..16+4j+3 times 16; one
 * VPDPBUSD each against a broadcast of 4 activation bytes sums them for all 16 rows (int32,
 * exact). The high sums are 16x, so an arithmetic shift by 4 is exact; the Q4_0 offset comes in
 * as the activation's block sum (-8 sum(y)), the start of the low accumulator. Then per block one
 * conversion and one FMA with d(row) * d(token) for 16 rows. Per 16 rows and block that is 4
 * loads, 8 ANDs, 8 VPDPBUSD and 5 more operations, where a row at a time needed about 10 per row.
 * Every output is summed block by block in one FMA chain whatever the number of tokens: batches
 * give bit for bit the single-token result (and the reference's, inf__gemm_ref_q4_0_x16).
 */
#ifdef INFERNO_X86

#include "kernels/x86/kern_x86.h"

#define X16_NC 4

static INF__ALWAYS_INLINE int32_t x16_load32(const uint8_t *p)
{
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

static INF__ALWAYS_INLINE void x16_tile(const int NC, int64_t nb, const uint8_t *g,
                                        const uint8_t *a, size_t lda, size_t so, float *s,
                                        size_t lds, int nr)
{
    const __m512i m_lo = _mm512_set1_epi8(0x0f), m_hi = _mm512_set1_epi8((char)0xf0);
    const size_t abs_ = sizeof(struct inf_block_q8_0);
    __m512 acc[X16_NC];
    for (int c = 0; c < NC; c++)
        acc[c] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *pb = g + (size_t)b * INF__X16_BLOCK;
        _mm_prefetch((const char *)pb + 8 * INF__X16_BLOCK, _MM_HINT_T0);
        _mm_prefetch((const char *)pb + 8 * INF__X16_BLOCK + 64, _MM_HINT_T0);
        _mm_prefetch((const char *)pb + 8 * INF__X16_BLOCK + 128, _MM_HINT_T0);
        _mm_prefetch((const char *)pb + 8 * INF__X16_BLOCK + 192, _MM_HINT_T0);
        _mm_prefetch((const char *)pb + 8 * INF__X16_BLOCK + 256, _MM_HINT_T0);
        __m512i lo[X16_NC], hi[X16_NC];
        for (int c = 0; c < NC; c++) {
            const int32_t *sums = (const int32_t *)(const void *)(a + (size_t)c * lda + so);
            lo[c] = _mm512_set1_epi32(sums[b]);
            hi[c] = _mm512_setzero_si512();
        }
        for (int j = 0; j < 4; j++) {
            const __m512i v = _mm512_loadu_si512((const void *)(pb + 32 + 64 * j));
            const __m512i l = _mm512_and_si512(v, m_lo), h = _mm512_and_si512(v, m_hi);
            for (int c = 0; c < NC; c++) {
                const uint8_t *y = a + (size_t)c * lda + (size_t)b * abs_ + 2;
                lo[c] = _mm512_dpbusd_epi32(lo[c], l, _mm512_set1_epi32(x16_load32(y + 4 * j)));
                hi[c] =
                    _mm512_dpbusd_epi32(hi[c], h, _mm512_set1_epi32(x16_load32(y + 16 + 4 * j)));
            }
        }
        const __m512 dx = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)pb));
        for (int c = 0; c < NC; c++) {
            inf_fp16 hy;
            memcpy(&hy, a + (size_t)c * lda + (size_t)b * abs_, 2);
            const __m512i d32 = _mm512_add_epi32(lo[c], _mm512_srai_epi32(hi[c], 4));
            acc[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d32),
                                     _mm512_mul_ps(dx, _mm512_set1_ps(x86_f16(hy))), acc[c]);
        }
    }
    const __mmask16 m = (__mmask16)(nr >= 16 ? 0xffff : (1u << nr) - 1);
    for (int c = 0; c < NC; c++)
        _mm512_mask_storeu_ps(s + (size_t)c * lds, m, acc[c]);
}

/* nr <= 16 rows from a group's start, any nc (the gemm contract of kernels/internal.h) */
static void gemm_q4_0_x16(int64_t n, const void *vw, size_t ldw, const void *va, size_t lda,
                          float *s, size_t lds, int nr, int nc)
{
    (void)ldw;
    const int64_t nb = n / 32;
    const size_t so = inf__x16_sums_offset(n);
    const uint8_t *w = vw, *a = va;
    for (int c0 = 0; c0 < nc; c0 += X16_NC) {
        const int cn = nc - c0 < X16_NC ? nc - c0 : X16_NC;
        const uint8_t *ac = a + (size_t)c0 * lda;
        float *sc = s + (size_t)c0 * lds;
#define X16_TILE(NC) x16_tile(NC, nb, w, ac, lda, so, sc, lds, nr)
        X86_WITH_NC4(cn, X16_TILE)
#undef X16_TILE
    }
}

/* ---- Q4_K_X16 ----------------------------------------------------------------------------
 * Per superblock and 16 rows: the scales and mins of the 16 rows come out of the 3 scale
 * vectors lane-wise (bytes 0-3: sc 0-3 = A & 63, m 0-3 = B & 63; sc 4-7 = (C & 15) | (A >> 6) << 4,
 * m 4-7 = (C >> 4) | (B >> 6) << 4, each byte in place); each sub-block's 32 values are 8
 * VPDPBUSD (low nibbles: even sub-blocks; AND 0xf0: odd ones, 16x) against broadcasts of 4
 * activation bytes, then one VPMULLD by its scale; the odd sub-blocks' 16x sum comes out by one
 * exact shift. The mins meet the activations' 16-value sums (Q8_K bsums, pairs added) in 8
 * VPMULLD per token. Then two FMA chains, sumi * d dy and summ * dmin dy, subtracted at the end.
 */
static INF__ALWAYS_INLINE __m512i k16_byte(__m512i v, int k)
{
    return k == 3 ? _mm512_srli_epi32(v, 24)
                  : _mm512_and_si512(k ? _mm512_srli_epi32(v, 8 * k) : v, _mm512_set1_epi32(0xff));
}

static INF__ALWAYS_INLINE void k16_tile(const int NC, int64_t nsb, const uint8_t *g,
                                        const uint8_t *a, size_t lda, float *s, size_t lds, int nr)
{
    const __m512i m_lo = _mm512_set1_epi8(0x0f), m_hi = _mm512_set1_epi8((char)0xf0);
    const __m512i m3f = _mm512_set1_epi8(0x3f), m0f = _mm512_set1_epi8(0x0f),
                  m30 = _mm512_set1_epi8(0x30);
    const size_t abs_ = sizeof(struct inf_block_q8_K);
    __m512 acc[X16_NC], accm[X16_NC];
    for (int c = 0; c < NC; c++)
        acc[c] = accm[c] = _mm512_setzero_ps();
    for (int64_t sb = 0; sb < nsb; sb++) {
        const uint8_t *pb = g + (size_t)sb * INF__K16_SB;
        const __m512i A = _mm512_loadu_si512((const void *)(pb + 64)),
                      B = _mm512_loadu_si512((const void *)(pb + 128)),
                      C = _mm512_loadu_si512((const void *)(pb + 192));
        const __m512i sc03 = _mm512_and_si512(A, m3f), m03 = _mm512_and_si512(B, m3f);
        const __m512i sc47 = _mm512_or_si512(_mm512_and_si512(C, m0f),
                                             _mm512_and_si512(_mm512_srli_epi32(A, 2), m30));
        const __m512i m47 = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(C, 4), m0f),
                                            _mm512_and_si512(_mm512_srli_epi32(B, 2), m30));
        __m512i se[X16_NC], so[X16_NC];
        for (int c = 0; c < NC; c++)
            se[c] = so[c] = _mm512_setzero_si512();
        for (int i = 0; i < 4; i++) {
            __m512i lo[X16_NC], hi[X16_NC];
            for (int c = 0; c < NC; c++)
                lo[c] = hi[c] = _mm512_setzero_si512();
            for (int q = 0; q < 8; q++) {
                const uint8_t *pv = pb + 256 + 64 * (8 * i + q);
                _mm_prefetch((const char *)pv + 2 * INF__K16_SB, _MM_HINT_T0);
                const __m512i v = _mm512_loadu_si512((const void *)pv);
                const __m512i l = _mm512_and_si512(v, m_lo), h = _mm512_and_si512(v, m_hi);
                for (int c = 0; c < NC; c++) {
                    const uint8_t *y = a + (size_t)c * lda + (size_t)sb * abs_ + 4 + 64 * i + 4 * q;
                    lo[c] = _mm512_dpbusd_epi32(lo[c], l, _mm512_set1_epi32(x16_load32(y)));
                    hi[c] = _mm512_dpbusd_epi32(hi[c], h, _mm512_set1_epi32(x16_load32(y + 32)));
                }
            }
            const __m512i sce = k16_byte(i < 2 ? sc03 : sc47, (2 * i) % 4),
                          sco = k16_byte(i < 2 ? sc03 : sc47, (2 * i + 1) % 4);
            for (int c = 0; c < NC; c++) {
                se[c] = _mm512_add_epi32(se[c], _mm512_mullo_epi32(lo[c], sce));
                so[c] = _mm512_add_epi32(so[c], _mm512_mullo_epi32(hi[c], sco));
            }
        }
        __m512i mj[8];
        for (int j = 0; j < 8; j++)
            mj[j] = k16_byte(j < 4 ? m03 : m47, j % 4);
        const __m512 dx = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)pb));
        const __m512 dm =
            _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)(pb + 32)));
        for (int c = 0; c < NC; c++) {
            const struct inf_block_q8_K *y =
                (const void *)(a + (size_t)c * lda + (size_t)sb * abs_);
            __m512i mm = _mm512_setzero_si512();
            for (int j = 0; j < 8; j++)
                mm = _mm512_add_epi32(
                    mm, _mm512_mullo_epi32(
                            mj[j], _mm512_set1_epi32(y->bsums[2 * j] + y->bsums[2 * j + 1])));
            const __m512i sumi = _mm512_add_epi32(se[c], _mm512_srai_epi32(so[c], 4));
            const __m512 dy = _mm512_set1_ps(y->d);
            acc[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sumi), _mm512_mul_ps(dx, dy), acc[c]);
            accm[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(mm), _mm512_mul_ps(dm, dy), accm[c]);
        }
    }
    const __mmask16 m = (__mmask16)(nr >= 16 ? 0xffff : (1u << nr) - 1);
    for (int c = 0; c < NC; c++)
        _mm512_mask_storeu_ps(s + (size_t)c * lds, m, _mm512_sub_ps(acc[c], accm[c]));
}

static void gemm_q4_K_x16(int64_t n, const void *vw, size_t ldw, const void *va, size_t lda,
                          float *s, size_t lds, int nr, int nc)
{
    (void)ldw;
    const int64_t nsb = n / INF_QK_K;
    const uint8_t *w = vw, *a = va;
    for (int c0 = 0; c0 < nc; c0 += X16_NC) {
        const int cn = nc - c0 < X16_NC ? nc - c0 : X16_NC;
        const uint8_t *ac = a + (size_t)c0 * lda;
        float *sc = s + (size_t)c0 * lds;
#define K16_TILE(NC) k16_tile(NC, nsb, w, ac, lda, sc, lds, nr)
        X86_WITH_NC4(cn, K16_TILE)
#undef K16_TILE
    }
}

void inf__kern_init_avx512_x16(struct inf__kern *k)
{
    k->w[INF_TYPE_Q4_0_X16] =
        (struct inf__wkern){.gemm = gemm_q4_0_x16, .max_nr = INF__X16_ROWS, .max_nc = X16_NC};
    k->packed[INF_TYPE_Q4_0] = INF_TYPE_Q4_0_X16;
    k->w[INF_TYPE_Q4_K_X16] =
        (struct inf__wkern){.gemm = gemm_q4_K_x16, .max_nr = INF__X16_ROWS, .max_nc = X16_NC};
    k->packed[INF_TYPE_Q4_K] = INF_TYPE_Q4_K_X16;
}

#else
typedef int inf__kern_avx512_x16_unused; /* ISO C: no empty translation units */
#endif
