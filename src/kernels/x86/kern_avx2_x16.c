/*
 * kern_avx2_x16.c - AVX2 products of the weights repacked in 16-row groups (INF_TYPE_*_X16,
 * layouts in kernels/internal.h): the CPUs with AVX2 and no AVX-512 VNNI (Zen 2/3, Haswell to
 * Alder Lake's cores) get the repacking too.
 *
 * A 64-byte vector of a group holds 4 bytes of each of 16 rows; its two 32-byte halves are rows
 * 0-7 and 8-15, one ymm each. Without VPDPBUSD an integer dot product is VPMADDUBSW (unsigned
 * weight bytes times a broadcast of 4 signed activation bytes, pairs summed into int16) and
 * VPMADDWD (pairs into int32); the int16 sums of several VPMADDUBSW are added first so that one
 * VPMADDWD serves them all, which the bounds below allow: a 4-bit level times |y| <= 127 is at
 * most 2 * 15 * 127 = 3810 per pair, 8 of them 30480; a 6-bit level 2 * 63 * 127 = 16002, 2 of
 * them 32004 (below VPMADDUBSW's and int16's 32767). The high nibbles are shifted down first (a
 * level of 16x would saturate); Q8_0's bytes (level + 128) are split into their two nibbles.
 * Where a sum meets a scale, VPMADDWD takes the scale in both int16 halves of each row's lane
 * (VPSHUFB places it), multiplying and widening in one step.
 *
 * The integer sums are exact, and each output is then summed block by block with the same
 * float operations, in the same order, as the reference kernels of packed.c and the AVX-512
 * ones: every level gives the same bits, and batches give the single-token bits.
 *
 * A tile is NC tokens and NH halves (rows 8h..8h+7) from half H0; with few tokens both halves
 * go in one pass over the blocks, with more the two halves go in two passes (the group's bytes
 * are then read again from the cache) so that the accumulators stay in the 16 registers.
 */
#ifdef INFERNO_X86

#include "kernels/x86/kern_x86.h"

#define A16_NC 4

static INF__ALWAYS_INLINE __m256i a16_bcast(const uint8_t *p)
{
    int32_t v;
    memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
}

static INF__ALWAYS_INLINE __m256i a16_load(const uint8_t *p)
{
    return _mm256_loadu_si256((const __m256i *)(const void *)p);
}

/* The 8 fp16 values at p (one per row of a half) as floats. */
static INF__ALWAYS_INLINE __m256 a16_f16x8(const uint8_t *p)
{
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)p));
}

/* Low and high nibbles of each byte, as bytes 0..15. */
static INF__ALWAYS_INLINE __m256i a16_lo(__m256i v)
{
    return _mm256_and_si256(v, _mm256_set1_epi8(0x0f));
}
static INF__ALWAYS_INLINE __m256i a16_hi(__m256i v)
{
    return _mm256_and_si256(_mm256_srli_epi16(v, 4), _mm256_set1_epi8(0x0f));
}

/* Byte k of each 32-bit lane into both int16 halves of the lane: zero-extended (U), or
 * sign-extended. */
static INF__ALWAYS_INLINE __m256i a16_byte16(__m256i v, int k, int U)
{
    if (U) {
        const int32_t m = (int32_t)((uint32_t)k | 0x80u << 8 | (uint32_t)k << 16 | 0x80u << 24);
        const __m256i idx = _mm256_setr_epi32(m, m + 0x00040004, m + 0x00080008, m + 0x000c000c, m,
                                              m + 0x00040004, m + 0x00080008, m + 0x000c000c);
        return _mm256_shuffle_epi8(v, idx);
    }
    const int32_t m = (int32_t)(0x80u | (uint32_t)k << 8 | 0x80u << 16 | (uint32_t)k << 24);
    const __m256i idx = _mm256_setr_epi32(m, m + 0x04000400, m + 0x08000800, m + 0x0c000c00, m,
                                          m + 0x04000400, m + 0x08000800, m + 0x0c000c00);
    return _mm256_srai_epi16(_mm256_shuffle_epi8(v, idx), 8);
}

/* ---- Q4_0_X16 and Q4_1_X16 (Q41: its mins, Q8_1 activations and no block sums) ------------
 * Per block, half and token: 8 VPMADDUBSW added in int16, one VPMADDWD, the block sum (-8
 * sum(y), the Q4_0 offset), then the reference's FMA with d(row) d(token) (and Q4_1's m s). */
static INF__ALWAYS_INLINE void a16_x16_tile(const int Q41, const int NC, const int H0, const int NH,
                                            int64_t n, const uint8_t *g, const uint8_t *a,
                                            size_t lda, float *s, size_t lds, int nr)
{
    const int64_t nb = n / 32;
    const size_t so = inf__x16_sums_offset(n), bb = Q41 ? INF__Q41X16_BLOCK : INF__X16_BLOCK;
    const size_t hdr = Q41 ? 64 : 32, yq = Q41 ? 4 : 2;
    const size_t abs_ = Q41 ? sizeof(struct inf_block_q8_1) : sizeof(struct inf_block_q8_0);
    const __m256i ones = _mm256_set1_epi16(1);
    __m256 acc[2][A16_NC];
    for (int h = 0; h < NH; h++)
        for (int c = 0; c < NC; c++)
            acc[h][c] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *pb = g + (size_t)b * bb;
        if (H0 == 0)
            for (size_t k = 0; k < bb; k += 64)
                _mm_prefetch((const char *)pb + 8 * bb + k, _MM_HINT_T0);
        for (int hh = 0; hh < NH; hh++) {
            const size_t ho = 32 * (size_t)(H0 + hh);
            __m256i p16[A16_NC];
            for (int j = 0; j < 4; j++) {
                const __m256i v = a16_load(pb + hdr + 64 * j + ho);
                const __m256i l = a16_lo(v), h = a16_hi(v);
                for (int c = 0; c < NC; c++) {
                    const uint8_t *y = a + (size_t)c * lda + (size_t)b * abs_ + yq;
                    const __m256i t =
                        _mm256_add_epi16(_mm256_maddubs_epi16(l, a16_bcast(y + 4 * j)),
                                         _mm256_maddubs_epi16(h, a16_bcast(y + 16 + 4 * j)));
                    p16[c] = j ? _mm256_add_epi16(p16[c], t) : t;
                }
            }
            const __m256 dx = a16_f16x8(pb + ho / 2);
            for (int c = 0; c < NC; c++) {
                const uint8_t *yb = a + (size_t)c * lda + (size_t)b * abs_;
                inf_fp16 hy;
                memcpy(&hy, yb, 2);
                __m256i d32 = _mm256_madd_epi16(p16[c], ones);
                if (!Q41) {
                    const int32_t *sums = (const int32_t *)(const void *)(a + (size_t)c * lda + so);
                    d32 = _mm256_add_epi32(d32, _mm256_set1_epi32(sums[b]));
                }
                acc[hh][c] =
                    _mm256_fmadd_ps(_mm256_cvtepi32_ps(d32),
                                    _mm256_mul_ps(dx, _mm256_set1_ps(x86_f16(hy))), acc[hh][c]);
                if (Q41) { /* + m s: the mins against the activations' scaled sums */
                    inf_fp16 hs;
                    memcpy(&hs, yb + 2, 2);
                    acc[hh][c] = _mm256_fmadd_ps(a16_f16x8(pb + 32 + ho / 2),
                                                 _mm256_set1_ps(x86_f16(hs)), acc[hh][c]);
                }
            }
        }
    }
    for (int h = 0; h < NH; h++)
        for (int c = 0; c < NC; c++)
            x86_store_rows8(s + (size_t)c * lds + 8 * (H0 + h), acc[h][c], nr - 8 * (H0 + h));
}

/* ---- Q4_K_X16: per superblock, half and token, each sub-block's 32 values in 8 VPMADDUBSW
 * added in int16, then one VPMADDWD by its 6-bit scale; the mins meet the activations' 32-value
 * sums in 4 VPMADDWD (two sub-blocks each). Then the reference's two FMA chains. -------------- */
static INF__ALWAYS_INLINE void a16_k16_tile(const int NC, const int H0, const int NH, int64_t n,
                                            const uint8_t *g, const uint8_t *a, size_t lda,
                                            float *s, size_t lds, int nr)
{
    const int64_t nsb = n / INF_QK_K;
    const __m256i m3f = _mm256_set1_epi8(0x3f), m0f = _mm256_set1_epi8(0x0f),
                  m30 = _mm256_set1_epi8(0x30);
    const size_t abs_ = sizeof(struct inf_block_q8_K);
    __m256 acc[2][A16_NC], accm[2][A16_NC];
    for (int h = 0; h < NH; h++)
        for (int c = 0; c < NC; c++)
            acc[h][c] = accm[h][c] = _mm256_setzero_ps();
    for (int64_t sb = 0; sb < nsb; sb++) {
        const uint8_t *pb = g + (size_t)sb * INF__K16_SB;
        if (H0 == 0)
            for (int k = 0; k < INF__K16_SB; k += 64)
                _mm_prefetch((const char *)pb + 2 * INF__K16_SB + k, _MM_HINT_T0);
        /* per token: the 32-value sums of sub-blocks (2k, 2k+1) as an int16 pair, k = 0..3 */
        __m256i tp[A16_NC][4];
        for (int c = 0; c < NC; c++) {
            const struct inf_block_q8_K *y =
                (const void *)(a + (size_t)c * lda + (size_t)sb * abs_);
            const __m256i bs = _mm256_loadu_si256((const __m256i *)(const void *)y->bsums);
            const __m256i t = _mm256_hadd_epi16(bs, bs);
            for (int k = 0; k < 4; k++)
                tp[c][k] =
                    _mm256_permutevar8x32_epi32(t, _mm256_set1_epi32((k & 1) + 4 * (k >> 1)));
        }
        for (int hh = 0; hh < NH; hh++) {
            const size_t ho = 32 * (size_t)(H0 + hh);
            const __m256i A = a16_load(pb + 64 + ho), B = a16_load(pb + 128 + ho),
                          C = a16_load(pb + 192 + ho);
            const __m256i sc03 = _mm256_and_si256(A, m3f), m03 = _mm256_and_si256(B, m3f);
            const __m256i sc47 = _mm256_or_si256(_mm256_and_si256(C, m0f),
                                                 _mm256_and_si256(_mm256_srli_epi32(A, 2), m30));
            const __m256i m47 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi32(C, 4), m0f),
                                                _mm256_and_si256(_mm256_srli_epi32(B, 2), m30));
            __m256i sumi[A16_NC];
            for (int c = 0; c < NC; c++)
                sumi[c] = _mm256_setzero_si256();
            for (int i = 0; i < 4; i++) {
                __m256i lo[A16_NC], hi[A16_NC];
                for (int q = 0; q < 8; q++) {
                    const __m256i v = a16_load(pb + 256 + 64 * (8 * i + q) + ho);
                    const __m256i l = a16_lo(v), h = a16_hi(v);
                    for (int c = 0; c < NC; c++) {
                        const uint8_t *y =
                            a + (size_t)c * lda + (size_t)sb * abs_ + 4 + 64 * i + 4 * q;
                        const __m256i pl = _mm256_maddubs_epi16(l, a16_bcast(y)),
                                      ph = _mm256_maddubs_epi16(h, a16_bcast(y + 32));
                        lo[c] = q ? _mm256_add_epi16(lo[c], pl) : pl;
                        hi[c] = q ? _mm256_add_epi16(hi[c], ph) : ph;
                    }
                }
                const __m256i scv = i < 2 ? sc03 : sc47;
                const __m256i sce = a16_byte16(scv, (2 * i) % 4, 1),
                              sco = a16_byte16(scv, (2 * i + 1) % 4, 1);
                for (int c = 0; c < NC; c++)
                    sumi[c] =
                        _mm256_add_epi32(sumi[c], _mm256_add_epi32(_mm256_madd_epi16(lo[c], sce),
                                                                   _mm256_madd_epi16(hi[c], sco)));
            }
            /* the mins of sub-blocks (2k, 2k+1) as an int16 pair per row */
            const __m256i ki = _mm256_setr_epi8(0, -128, 1, -128, 4, -128, 5, -128, 8, -128, 9,
                                                -128, 12, -128, 13, -128, 0, -128, 1, -128, 4, -128,
                                                5, -128, 8, -128, 9, -128, 12, -128, 13, -128);
            const __m256i ki2 = _mm256_add_epi32(ki, _mm256_set1_epi32(0x00020002));
            const __m256i mp[4] = {_mm256_shuffle_epi8(m03, ki), _mm256_shuffle_epi8(m03, ki2),
                                   _mm256_shuffle_epi8(m47, ki), _mm256_shuffle_epi8(m47, ki2)};
            const __m256 dx = a16_f16x8(pb + ho / 2), dm = a16_f16x8(pb + 32 + ho / 2);
            for (int c = 0; c < NC; c++) {
                const struct inf_block_q8_K *y =
                    (const void *)(a + (size_t)c * lda + (size_t)sb * abs_);
                __m256i mm = _mm256_madd_epi16(mp[0], tp[c][0]);
                for (int k = 1; k < 4; k++)
                    mm = _mm256_add_epi32(mm, _mm256_madd_epi16(mp[k], tp[c][k]));
                const __m256 dy = _mm256_set1_ps(y->d);
                acc[hh][c] =
                    _mm256_fmadd_ps(_mm256_cvtepi32_ps(sumi[c]), _mm256_mul_ps(dx, dy), acc[hh][c]);
                accm[hh][c] =
                    _mm256_fmadd_ps(_mm256_cvtepi32_ps(mm), _mm256_mul_ps(dm, dy), accm[hh][c]);
            }
        }
    }
    for (int h = 0; h < NH; h++)
        for (int c = 0; c < NC; c++)
            x86_store_rows8(s + (size_t)c * lds + 8 * (H0 + h),
                            _mm256_sub_ps(acc[h][c], accm[h][c]), nr - 8 * (H0 + h));
}

/* ---- Q8_0_X16: the bytes (level + 128) as two nibbles, each in 8 VPMADDUBSW added in int16;
 * VPMADDWD by 1 and by 16 puts them together, the block sum times 16 (-128 sum(y)) takes the
 * 128 off. ---------------------------------------------------------------------------------- */
static INF__ALWAYS_INLINE void a16_q16_tile(const int NC, const int H0, const int NH, int64_t n,
                                            const uint8_t *g, const uint8_t *a, size_t lda,
                                            float *s, size_t lds, int nr)
{
    const int64_t nb = n / 32;
    const size_t so = inf__x16_sums_offset(n);
    const size_t abs_ = sizeof(struct inf_block_q8_0);
    const __m256i ones = _mm256_set1_epi16(1), sixteen = _mm256_set1_epi16(16);
    __m256 acc[2][A16_NC];
    for (int h = 0; h < NH; h++)
        for (int c = 0; c < NC; c++)
            acc[h][c] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *pb = g + (size_t)b * INF__Q8X16_BLOCK;
        if (H0 == 0)
            for (int k = 0; k < INF__Q8X16_BLOCK; k += 64)
                _mm_prefetch((const char *)pb + 4 * INF__Q8X16_BLOCK + k, _MM_HINT_T0);
        for (int hh = 0; hh < NH; hh++) {
            const size_t ho = 32 * (size_t)(H0 + hh);
            __m256i lo[A16_NC], hi[A16_NC];
            for (int j = 0; j < 8; j++) {
                const __m256i v = a16_load(pb + 32 + 64 * j + ho);
                const __m256i l = a16_lo(v), h = a16_hi(v);
                for (int c = 0; c < NC; c++) {
                    const __m256i yb =
                        a16_bcast(a + (size_t)c * lda + (size_t)b * abs_ + 2 + 4 * (size_t)j);
                    const __m256i pl = _mm256_maddubs_epi16(l, yb),
                                  ph = _mm256_maddubs_epi16(h, yb);
                    lo[c] = j ? _mm256_add_epi16(lo[c], pl) : pl;
                    hi[c] = j ? _mm256_add_epi16(hi[c], ph) : ph;
                }
            }
            const __m256 dx = a16_f16x8(pb + ho / 2);
            for (int c = 0; c < NC; c++) {
                const uint8_t *yb = a + (size_t)c * lda + (size_t)b * abs_;
                const int32_t *sums = (const int32_t *)(const void *)(a + (size_t)c * lda + so);
                inf_fp16 hy;
                memcpy(&hy, yb, 2);
                const __m256i d32 =
                    _mm256_add_epi32(_mm256_add_epi32(_mm256_madd_epi16(lo[c], ones),
                                                      _mm256_madd_epi16(hi[c], sixteen)),
                                     _mm256_set1_epi32(sums[b] * 16));
                acc[hh][c] =
                    _mm256_fmadd_ps(_mm256_cvtepi32_ps(d32),
                                    _mm256_mul_ps(dx, _mm256_set1_ps(x86_f16(hy))), acc[hh][c]);
            }
        }
    }
    for (int h = 0; h < NH; h++)
        for (int c = 0; c < NC; c++)
            x86_store_rows8(s + (size_t)c * lds + 8 * (H0 + h), acc[h][c], nr - 8 * (H0 + h));
}

/* ---- Q6_K_X16: per group of 16 values (one int8 scale), half and token, the unsigned 6-bit
 * levels in 4 VPMADDUBSW, added in int16 two by two, each pair one VPMADDWD by the scale; the
 * level offset (-32 sc bsum) for all 16 groups in 8 VPMADDWD of scale pairs against bsum
 * pairs. -------------------------------------------------------------------------------------- */

/* The 6-bit levels of values 128h6 + 32s + 4l4.. (s = 0..3) of the 8 rows at byte offset ho. */
static INF__ALWAYS_INLINE void a16_q6_levels(const uint8_t *pb, size_t ho, int h6, int l4,
                                             __m256i q[4])
{
    const __m256i m0f = _mm256_set1_epi8(0x0f), m30 = _mm256_set1_epi8(0x30);
    const __m256i vl0 = a16_load(pb + 256 + 64 * (16 * h6 + l4) + ho);
    const __m256i vl1 = a16_load(pb + 256 + 64 * (16 * h6 + 8 + l4) + ho);
    const __m256i vh = a16_load(pb + 2304 + 64 * (8 * h6 + l4) + ho);
    q[0] = _mm256_or_si256(_mm256_and_si256(vl0, m0f),
                           _mm256_and_si256(_mm256_slli_epi16(vh, 4), m30));
    q[1] = _mm256_or_si256(_mm256_and_si256(vl1, m0f),
                           _mm256_and_si256(_mm256_slli_epi16(vh, 2), m30));
    q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(vl0, 4), m0f),
                           _mm256_and_si256(vh, m30));
    q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(vl1, 4), m0f),
                           _mm256_and_si256(_mm256_srli_epi16(vh, 2), m30));
}

static INF__ALWAYS_INLINE void a16_q6_tile(const int NC, const int H0, const int NH, int64_t n,
                                           const uint8_t *g, const uint8_t *a, size_t lda, float *s,
                                           size_t lds, int nr)
{
    const int64_t nsb = n / INF_QK_K;
    const size_t abs_ = sizeof(struct inf_block_q8_K);
    /* bsums in 32-bit lanes as pairs (4k, 4k+2), (4k+1, 4k+3) within each 128-bit half */
    const __m256i pair_idx = _mm256_setr_epi8(0, 1, 4, 5, 2, 3, 6, 7, 8, 9, 12, 13, 10, 11, 14, 15,
                                              0, 1, 4, 5, 2, 3, 6, 7, 8, 9, 12, 13, 10, 11, 14, 15);
    __m256 acc[2][A16_NC];
    for (int h = 0; h < NH; h++)
        for (int c = 0; c < NC; c++)
            acc[h][c] = _mm256_setzero_ps();
    for (int64_t sb = 0; sb < nsb; sb++) {
        const uint8_t *pb = g + (size_t)sb * INF__Q6X16_SB;
        if (H0 == 0)
            for (int k = 0; k < INF__Q6X16_SB; k += 64)
                _mm_prefetch((const char *)pb + 2 * INF__Q6X16_SB + k, _MM_HINT_T0);
        const size_t off = (size_t)sb * abs_;
        __m256i bp[A16_NC];
        for (int c = 0; c < NC; c++) {
            const struct inf_block_q8_K *y = (const void *)(a + (size_t)c * lda + off);
            bp[c] = _mm256_shuffle_epi8(_mm256_loadu_si256((const __m256i *)(const void *)y->bsums),
                                        pair_idx);
        }
        for (int hh = 0; hh < NH; hh++) {
            const size_t ho = 32 * (size_t)(H0 + hh);
            __m256i sumi[A16_NC], offs[A16_NC];
            for (int c = 0; c < NC; c++)
                sumi[c] = offs[c] = _mm256_setzero_si256();
            for (int k = 0; k < 4; k++) { /* scales 4k..4k+3 against bsums 4k..4k+3 */
                const __m256i sv = a16_load(pb + 64 * k + ho);
                const __m256i ev = _mm256_srai_epi16(_mm256_slli_epi16(sv, 8), 8),
                              ov = _mm256_srai_epi16(sv, 8);
                for (int c = 0; c < NC; c++) {
                    const __m256i be = _mm256_permutevar8x32_epi32(bp[c], _mm256_set1_epi32(2 * k));
                    const __m256i bo =
                        _mm256_permutevar8x32_epi32(bp[c], _mm256_set1_epi32(2 * k + 1));
                    offs[c] =
                        _mm256_add_epi32(offs[c], _mm256_add_epi32(_mm256_madd_epi16(ev, be),
                                                                   _mm256_madd_epi16(ov, bo)));
                }
            }
            for (int h6 = 0; h6 < 2; h6++)
                for (int lh = 0; lh < 2; lh++) {
                    /* groups 8h6 + 2s4 + lh (s4 = 0..3): values 128h6 + 32s4 + 16lh.. */
                    __m256i sc[4];
                    for (int s4 = 0; s4 < 4; s4++) {
                        const int gi = 8 * h6 + 2 * s4 + lh;
                        sc[s4] = a16_byte16(a16_load(pb + 64 * (gi / 4) + ho), gi % 4, 0);
                    }
                    for (int qp = 0; qp < 4; qp += 2) {
                        __m256i lv0[4], lv1[4];
                        a16_q6_levels(pb, ho, h6, 4 * lh + qp, lv0);
                        a16_q6_levels(pb, ho, h6, 4 * lh + qp + 1, lv1);
                        for (int c = 0; c < NC; c++) {
                            const uint8_t *y =
                                a + (size_t)c * lda + off + 4 + 128 * h6 + 4 * (4 * lh + qp);
                            for (int s4 = 0; s4 < 4; s4++) {
                                const __m256i t = _mm256_add_epi16(
                                    _mm256_maddubs_epi16(lv0[s4], a16_bcast(y + 32 * s4)),
                                    _mm256_maddubs_epi16(lv1[s4], a16_bcast(y + 32 * s4 + 4)));
                                sumi[c] = _mm256_add_epi32(sumi[c], _mm256_madd_epi16(t, sc[s4]));
                            }
                        }
                    }
                }
            const __m256 dx = a16_f16x8(pb + 3328 + ho / 2);
            for (int c = 0; c < NC; c++) {
                const struct inf_block_q8_K *y = (const void *)(a + (size_t)c * lda + off);
                const __m256i si = _mm256_sub_epi32(sumi[c], _mm256_slli_epi32(offs[c], 5));
                acc[hh][c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(si),
                                             _mm256_mul_ps(dx, _mm256_set1_ps(y->d)), acc[hh][c]);
            }
        }
    }
    for (int h = 0; h < NH; h++)
        for (int c = 0; c < NC; c++)
            x86_store_rows8(s + (size_t)c * lds + 8 * (H0 + h), acc[h][c], nr - 8 * (H0 + h));
}

/* One tile of NC tokens: both halves in one pass when NC <= ONE_PASS, else a pass per half. */
#define A16_TILE(TILE, NC, ONE_PASS, ...)                                                          \
    do {                                                                                           \
        if ((NC) <= (ONE_PASS)) {                                                                  \
            TILE(NC, 0, 2, __VA_ARGS__);                                                           \
        } else {                                                                                   \
            TILE(NC, 0, 1, __VA_ARGS__);                                                           \
            if (nr > 8)                                                                            \
                TILE(NC, 1, 1, __VA_ARGS__);                                                       \
        }                                                                                          \
    } while (0)

/* nr <= 16 rows from a group's start, any nc (the gemm contract of kernels/internal.h) */
#define A16_GEMM(name, TILE, ONE_PASS)                                                             \
    static void name(int64_t n, const void *vw, size_t ldw, const void *va, size_t lda, float *s,  \
                     size_t lds, int nr, int nc)                                                   \
    {                                                                                              \
        (void)ldw;                                                                                 \
        for (int c0 = 0; c0 < nc; c0 += A16_NC) {                                                  \
            const uint8_t *ac = (const uint8_t *)va + (size_t)c0 * lda;                            \
            float *sc = s + (size_t)c0 * lds;                                                      \
            switch (nc - c0 < A16_NC ? nc - c0 : A16_NC) {                                         \
            case 4:                                                                                \
                A16_TILE(TILE, 4, ONE_PASS, n, vw, ac, lda, sc, lds, nr);                          \
                break;                                                                             \
            case 3:                                                                                \
                A16_TILE(TILE, 3, ONE_PASS, n, vw, ac, lda, sc, lds, nr);                          \
                break;                                                                             \
            case 2:                                                                                \
                A16_TILE(TILE, 2, ONE_PASS, n, vw, ac, lda, sc, lds, nr);                          \
                break;                                                                             \
            default:                                                                               \
                A16_TILE(TILE, 1, ONE_PASS, n, vw, ac, lda, sc, lds, nr);                          \
            }                                                                                      \
        }                                                                                          \
    }
#define Q40_TILE(NC, H0, NH, ...) a16_x16_tile(0, NC, H0, NH, __VA_ARGS__)
#define Q41_TILE(NC, H0, NH, ...) a16_x16_tile(1, NC, H0, NH, __VA_ARGS__)
A16_GEMM(gemm_q4_0_x16, Q40_TILE, 2)
A16_GEMM(gemm_q4_1_x16, Q41_TILE, 2)
A16_GEMM(gemm_q4_K_x16, a16_k16_tile, 1)
A16_GEMM(gemm_q8_0_x16, a16_q16_tile, 1)
A16_GEMM(gemm_q6_K_x16, a16_q6_tile, 1)

void inf__kern_init_avx2_x16(struct inf__kern *k)
{
#define P(X, fn)                                                                                   \
    k->w[X] = (struct inf__wkern){.gemm = fn, .max_nr = INF__X16_ROWS, .max_nc = A16_NC};
    P(INF_TYPE_Q4_0_X16, gemm_q4_0_x16)
    P(INF_TYPE_Q4_1_X16, gemm_q4_1_x16)
    P(INF_TYPE_Q8_0_X16, gemm_q8_0_x16)
    P(INF_TYPE_Q4_K_X16, gemm_q4_K_x16)
    P(INF_TYPE_Q6_K_X16, gemm_q6_K_x16)
#undef P
    /* Repacked at load at this level: the layouts that make generation and prompts faster here
     * (Zen 3, tinyllama shape, 1 thread, tg32 / pp128 t/s: Q4_0 15.8 / 22.3 -> 23.5 / 49.4;
     * Q4_K_M 19.2 / 34.5 -> 18.9 / 46.3). Q6_K stays in rows: without VPDPBUSD its 16-row
     * kernel measured slower on one token (bench-kernels 58-68 % of the read bandwidth against
     * 84-95 %; generation 13.6 -> 11.9 t/s), though its prompts were 2x faster; the kernel above
     * serves Q6_K weights repacked at another level. */
    k->packed[INF_TYPE_Q4_0] = INF_TYPE_Q4_0_X16;
    k->packed[INF_TYPE_Q4_1] = INF_TYPE_Q4_1_X16;
    k->packed[INF_TYPE_Q8_0] = INF_TYPE_Q8_0_X16;
    k->packed[INF_TYPE_Q4_K] = INF_TYPE_Q4_K_X16;
}

#else
typedef int inf__kern_avx2_x16_unused; /* ISO C: no empty translation units */
#endif
