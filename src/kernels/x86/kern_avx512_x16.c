/*
 * kern_avx512_x16.c - AVX-512 VNNI products of Q4_0, Q4_1, Q4_K, Q6_K and Q8_0 weights repacked in
 * 16-row groups (INF_TYPE_*_X16, layouts in kernels/internal.h), for one token and for batches
 * alike. Q4_0 first; the others below follow the same plan.
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

/* Q41: Q4_1_X16 (its mins; Q8_1 activations, no block sums), else Q4_0_X16 */
static INF__ALWAYS_INLINE void x16_tile(const int Q41, const int NC, int64_t n, const uint8_t *g,
                                        const uint8_t *a, size_t lda, float *s, size_t lds, int nr)
{
    const int64_t nb = n / 32;
    const size_t so = inf__x16_sums_offset(n), bb = Q41 ? INF__Q41X16_BLOCK : INF__X16_BLOCK;
    const size_t hdr = Q41 ? 64 : 32, yq = Q41 ? 4 : 2;
    const __m512i m_lo = _mm512_set1_epi8(0x0f), m_hi = _mm512_set1_epi8((char)0xf0);
    const size_t abs_ = Q41 ? sizeof(struct inf_block_q8_1) : sizeof(struct inf_block_q8_0);
    __m512 acc[X16_NC];
    for (int c = 0; c < NC; c++)
        acc[c] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *pb = g + (size_t)b * bb;
        for (size_t k = 0; k < bb; k += 64)
            _mm_prefetch((const char *)pb + 8 * bb + k, _MM_HINT_T0);
        __m512i lo[X16_NC], hi[X16_NC];
        for (int c = 0; c < NC; c++) {
            const int32_t *sums = (const int32_t *)(const void *)(a + (size_t)c * lda + so);
            lo[c] = Q41 ? _mm512_setzero_si512() : _mm512_set1_epi32(sums[b]);
            hi[c] = _mm512_setzero_si512();
        }
        for (int j = 0; j < 4; j++) {
            const __m512i v = _mm512_loadu_si512((const void *)(pb + hdr + 64 * j));
            const __m512i l = _mm512_and_si512(v, m_lo), h = _mm512_and_si512(v, m_hi);
            for (int c = 0; c < NC; c++) {
                const uint8_t *y = a + (size_t)c * lda + (size_t)b * abs_ + yq;
                lo[c] = _mm512_dpbusd_epi32(lo[c], l, _mm512_set1_epi32(x16_load32(y + 4 * j)));
                hi[c] =
                    _mm512_dpbusd_epi32(hi[c], h, _mm512_set1_epi32(x16_load32(y + 16 + 4 * j)));
            }
        }
        const __m512 dx = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)pb));
        const __m512 mx =
            Q41 ? _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)(pb + 32)))
                : _mm512_setzero_ps();
        for (int c = 0; c < NC; c++) {
            inf_fp16 hy;
            memcpy(&hy, a + (size_t)c * lda + (size_t)b * abs_, 2);
            const __m512i d32 = _mm512_add_epi32(lo[c], _mm512_srai_epi32(hi[c], 4));
            acc[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d32),
                                     _mm512_mul_ps(dx, _mm512_set1_ps(x86_f16(hy))), acc[c]);
            if (Q41) { /* + m s: the mins against the activations' scaled sums */
                inf_fp16 hs;
                memcpy(&hs, a + (size_t)c * lda + (size_t)b * abs_ + 2, 2);
                acc[c] = _mm512_fmadd_ps(mx, _mm512_set1_ps(x86_f16(hs)), acc[c]);
            }
        }
    }
    const __mmask16 m = (__mmask16)(nr >= 16 ? 0xffff : (1u << nr) - 1);
    for (int c = 0; c < NC; c++)
        _mm512_mask_storeu_ps(s + (size_t)c * lds, m, acc[c]);
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

static INF__ALWAYS_INLINE void k16_tile(const int NC, int64_t n, const uint8_t *g, const uint8_t *a,
                                        size_t lda, float *s, size_t lds, int nr)
{
    const int64_t nsb = n / INF_QK_K;
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

/* ---- Q8_0_X16: 8 VPDPBUSD per block for 16 rows, the levels + 128 against the activation
 * bytes, started from -128 sum(y) (the block sum, -8 sum(y), shifted by 4) ---------------- */
static INF__ALWAYS_INLINE void q16_tile(const int NC, int64_t n, const uint8_t *g, const uint8_t *a,
                                        size_t lda, float *s, size_t lds, int nr)
{
    const int64_t nb = n / 32;
    const size_t so = inf__x16_sums_offset(n);
    const size_t abs_ = sizeof(struct inf_block_q8_0);
    __m512 acc[X16_NC];
    for (int c = 0; c < NC; c++)
        acc[c] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *pb = g + (size_t)b * INF__Q8X16_BLOCK;
        __m512i d32[X16_NC];
        for (int c = 0; c < NC; c++) {
            const int32_t *sums = (const int32_t *)(const void *)(a + (size_t)c * lda + so);
            d32[c] = _mm512_slli_epi32(_mm512_set1_epi32(sums[b]), 4);
        }
        for (int j = 0; j < 8; j++) {
            _mm_prefetch((const char *)pb + 32 + 64 * j + 4 * INF__Q8X16_BLOCK, _MM_HINT_T0);
            const __m512i v = _mm512_loadu_si512((const void *)(pb + 32 + 64 * j));
            for (int c = 0; c < NC; c++) {
                const uint8_t *y = a + (size_t)c * lda + (size_t)b * abs_ + 2;
                d32[c] = _mm512_dpbusd_epi32(d32[c], v, _mm512_set1_epi32(x16_load32(y + 4 * j)));
            }
        }
        const __m512 dx = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)pb));
        for (int c = 0; c < NC; c++) {
            inf_fp16 hy;
            memcpy(&hy, a + (size_t)c * lda + (size_t)b * abs_, 2);
            acc[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d32[c]),
                                     _mm512_mul_ps(dx, _mm512_set1_ps(x86_f16(hy))), acc[c]);
        }
    }
    const __mmask16 m = (__mmask16)(nr >= 16 ? 0xffff : (1u << nr) - 1);
    for (int c = 0; c < NC; c++)
        _mm512_mask_storeu_ps(s + (size_t)c * lds, m, acc[c]);
}

/* ---- Q6_K_X16: per group of 16 values (one int8 scale) and 16 rows, 4 VPDPBUSD of the unsigned
 * 6-bit levels (a nibble of ql OR two bits of qh moved to bits 4-5, each byte in place) against
 * the activation bytes, started from -32 times the group's bsum (the level offset), then one
 * VPMULLD by the sign-extended scale ------------------------------------------------------ */
static INF__ALWAYS_INLINE __m512i q6_scale(__m512i v, int k)
{
    return _mm512_srai_epi32(k == 3 ? v : _mm512_slli_epi32(v, 24 - 8 * k), 24);
}

/* The 6-bit levels of values 128h + 32s + 4l4.. (s = 0..3) of 16 rows: q[s]. */
static INF__ALWAYS_INLINE void q6_levels(const uint8_t *pb, int h, int l4, __m512i q[4])
{
    const __m512i m0f = _mm512_set1_epi8(0x0f), m30 = _mm512_set1_epi8(0x30);
    const __m512i vl0 = _mm512_loadu_si512((const void *)(pb + 256 + 64 * (16 * h + l4)));
    const __m512i vl1 = _mm512_loadu_si512((const void *)(pb + 256 + 64 * (16 * h + 8 + l4)));
    const __m512i vh = _mm512_loadu_si512((const void *)(pb + 2304 + 64 * (8 * h + l4)));
    q[0] = _mm512_or_si512(_mm512_and_si512(vl0, m0f),
                           _mm512_and_si512(_mm512_slli_epi32(vh, 4), m30));
    q[1] = _mm512_or_si512(_mm512_and_si512(vl1, m0f),
                           _mm512_and_si512(_mm512_slli_epi32(vh, 2), m30));
    q[2] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(vl0, 4), m0f),
                           _mm512_and_si512(vh, m30));
    q[3] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(vl1, 4), m0f),
                           _mm512_and_si512(_mm512_srli_epi32(vh, 2), m30));
}

/* Groups 8h + 2s + lh (s = 0..3) of a superblock: values 128h + 32s + 16lh.. */
static INF__ALWAYS_INLINE void q6_quarter(const int NC, const uint8_t *pb, const uint8_t *a,
                                          size_t lda, size_t off, int h, int lh, __m512i *sumi)
{
    __m512i dot[4][X16_NC];
    for (int c = 0; c < NC; c++) {
        const struct inf_block_q8_K *y = (const void *)(a + (size_t)c * lda + off);
        for (int s4 = 0; s4 < 4; s4++)
            dot[s4][c] = _mm512_set1_epi32(-32 * y->bsums[8 * h + 2 * s4 + lh]);
    }
    for (int q = 0; q < 4; q++) {
        const int l4 = 4 * lh + q;
        __m512i lv[4];
        q6_levels(pb, h, l4, lv);
        for (int c = 0; c < NC; c++) {
            const uint8_t *y = a + (size_t)c * lda + off + 4 + 128 * h + 4 * l4;
            for (int s4 = 0; s4 < 4; s4++)
                dot[s4][c] = _mm512_dpbusd_epi32(dot[s4][c], lv[s4],
                                                 _mm512_set1_epi32(x16_load32(y + 32 * s4)));
        }
    }
    for (int s4 = 0; s4 < 4; s4++) {
        const int gi = 8 * h + 2 * s4 + lh;
        const __m512i sc = q6_scale(_mm512_loadu_si512((const void *)(pb + 64 * (gi / 4))), gi % 4);
        for (int c = 0; c < NC; c++)
            sumi[c] = _mm512_add_epi32(sumi[c], _mm512_mullo_epi32(dot[s4][c], sc));
    }
}

static INF__ALWAYS_INLINE void q6_tile(const int NC, int64_t n, const uint8_t *g, const uint8_t *a,
                                       size_t lda, float *s, size_t lds, int nr)
{
    const int64_t nsb = n / INF_QK_K;
    const size_t abs_ = sizeof(struct inf_block_q8_K);
    __m512 acc[X16_NC];
    for (int c = 0; c < NC; c++)
        acc[c] = _mm512_setzero_ps();
    for (int64_t sb = 0; sb < nsb; sb++) {
        const uint8_t *pb = g + (size_t)sb * INF__Q6X16_SB;
        for (int k = 0; k < INF__Q6X16_SB; k += 64)
            _mm_prefetch((const char *)pb + 2 * INF__Q6X16_SB + k, _MM_HINT_T0);
        __m512i sumi[X16_NC];
        for (int c = 0; c < NC; c++)
            sumi[c] = _mm512_setzero_si512();
        const size_t off = (size_t)sb * abs_;
        q6_quarter(NC, pb, a, lda, off, 0, 0, sumi);
        q6_quarter(NC, pb, a, lda, off, 0, 1, sumi);
        q6_quarter(NC, pb, a, lda, off, 1, 0, sumi);
        q6_quarter(NC, pb, a, lda, off, 1, 1, sumi);
        const __m512 dx =
            _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)(pb + 3328)));
        for (int c = 0; c < NC; c++) {
            const struct inf_block_q8_K *y = (const void *)(a + (size_t)c * lda + off);
            acc[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sumi[c]),
                                     _mm512_mul_ps(dx, _mm512_set1_ps(y->d)), acc[c]);
        }
    }
    const __mmask16 m = (__mmask16)(nr >= 16 ? 0xffff : (1u << nr) - 1);
    for (int c = 0; c < NC; c++)
        _mm512_mask_storeu_ps(s + (size_t)c * lds, m, acc[c]);
}

/* nr <= 16 rows from a group's start, any nc (the gemm contract of kernels/internal.h) */
#define X16_GEMM(name, TILE)                                                                       \
    static void name(int64_t n, const void *vw, size_t ldw, const void *va, size_t lda, float *s,  \
                     size_t lds, int nr, int nc)                                                   \
    {                                                                                              \
        (void)ldw;                                                                                 \
        for (int c0 = 0; c0 < nc; c0 += X16_NC) {                                                  \
            const uint8_t *ac = (const uint8_t *)va + (size_t)c0 * lda;                            \
            float *sc = s + (size_t)c0 * lds;                                                      \
            switch (nc - c0 < X16_NC ? nc - c0 : X16_NC) {                                         \
            case 4:                                                                                \
                TILE(4, n, vw, ac, lda, sc, lds, nr);                                              \
                break;                                                                             \
            case 3:                                                                                \
                TILE(3, n, vw, ac, lda, sc, lds, nr);                                              \
                break;                                                                             \
            case 2:                                                                                \
                TILE(2, n, vw, ac, lda, sc, lds, nr);                                              \
                break;                                                                             \
            default:                                                                               \
                TILE(1, n, vw, ac, lda, sc, lds, nr);                                              \
            }                                                                                      \
        }                                                                                          \
    }
#define Q40_TILE(NC, ...) x16_tile(0, NC, __VA_ARGS__)
#define Q41_TILE(NC, ...) x16_tile(1, NC, __VA_ARGS__)
X16_GEMM(gemm_q4_0_x16, Q40_TILE)
X16_GEMM(gemm_q4_1_x16, Q41_TILE)
X16_GEMM(gemm_q4_K_x16, k16_tile)
X16_GEMM(gemm_q8_0_x16, q16_tile)
X16_GEMM(gemm_q6_K_x16, q6_tile)

void inf__kern_init_avx512_x16(struct inf__kern *k)
{
    k->w[INF_TYPE_Q4_0_X16] =
        (struct inf__wkern){.gemm = gemm_q4_0_x16, .max_nr = INF__X16_ROWS, .max_nc = X16_NC};
    k->packed[INF_TYPE_Q4_0] = INF_TYPE_Q4_0_X16;
    k->w[INF_TYPE_Q4_K_X16] =
        (struct inf__wkern){.gemm = gemm_q4_K_x16, .max_nr = INF__X16_ROWS, .max_nc = X16_NC};
    k->packed[INF_TYPE_Q4_K] = INF_TYPE_Q4_K_X16;
    k->w[INF_TYPE_Q8_0_X16] =
        (struct inf__wkern){.gemm = gemm_q8_0_x16, .max_nr = INF__X16_ROWS, .max_nc = X16_NC};
    k->packed[INF_TYPE_Q8_0] = INF_TYPE_Q8_0_X16;
    k->w[INF_TYPE_Q6_K_X16] =
        (struct inf__wkern){.gemm = gemm_q6_K_x16, .max_nr = INF__X16_ROWS, .max_nc = X16_NC};
    k->packed[INF_TYPE_Q6_K] = INF_TYPE_Q6_K_X16;
    k->w[INF_TYPE_Q4_1_X16] =
        (struct inf__wkern){.gemm = gemm_q4_1_x16, .max_nr = INF__X16_ROWS, .max_nc = X16_NC};
    k->packed[INF_TYPE_Q4_1] = INF_TYPE_Q4_1_X16;
}

#else
typedef int inf__kern_avx512_x16_unused; /* ISO C: no empty translation units */
#endif
