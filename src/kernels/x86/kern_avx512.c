/*
 * kern_avx512.c - the AVX-512 level: F/BW/VL/DQ, plus VNNI (VPDPBUSD, VPDPWSSD) where the CPU
 * has it. Compiled with the AVX-512 flags only; the table starts as a copy of the AVX2 one and
 * everything below replaces its entry.
 *
 * Legacy formats: two blocks per 512-bit register. The weight levels of blocks b and b+1 are
 * built with two 128-bit broadcasts and one variable shift ([lo0 hi0 lo1 hi1] = values 0..63 in
 * order), the activations are the two blocks' 32-byte halves, and the per-block scales are the
 * two halves of one vector ([d0 x 8 | d1 x 8]), so every multiply covers 64 values.
 * K-quants: 64 values (two 32-value chunks) per register with the int16 scale vector of its four
 * (or two) groups; the activation's 64 bytes are contiguous in Q8_K.
 *
 * VNNI: VPDPBUSD(acc, u8, s8) = acc + VPMADDWD(VPMADDUBSW(u8, s8), 1) exactly whenever
 * VPMADDUBSW does not saturate, which holds for every use here (see kern_x86.h); VPDPWSSD(acc,
 * a, b) = acc + VPMADDWD(a, b) always. So the two paths give identical integers.
 */
#ifdef INFERNO_X86

#include <math.h>
#include <pthread.h>
#include <stdlib.h>

#include "kernels/x86/kern_x86.h"
#include "kernels/x86/ops_x86.h"

/* ---- helpers ----------------------------------------------------------------------------- */

static inline __m512i z_dot_u8s8(__m512i acc, __m512i u, __m512i s, const int vnni)
{
    if (vnni)
        return _mm512_dpbusd_epi32(acc, u, s);
    return _mm512_add_epi32(acc,
                            _mm512_madd_epi16(_mm512_maddubs_epi16(u, s), _mm512_set1_epi16(1)));
}

static inline __m512i z_dot_s16(__m512i acc, __m512i a, __m512i b, const int vnni)
{
    if (vnni)
        return _mm512_dpwssd_epi32(acc, a, b);
    return _mm512_add_epi32(acc, _mm512_madd_epi16(a, b));
}

/* [f(h0) x 8 | f(h1) x 8] for the binary16 values at p0 and p1. */
static inline __m512 z_f16_pair(const void *p0, const void *p1)
{
    return _mm512_insertf32x8(_mm512_castps256_ps512(x86_f16_bcast(p0)), x86_f16_bcast(p1), 1);
}

static inline __m512i z_load2x256(const void *p0, const void *p1)
{
    return _mm512_inserti64x4(_mm512_castsi256_si512(x86_load256(p0)), x86_load256(p1), 1);
}

static inline float z_hsum(__m512 v)
{
    return x86_hsum_ps(_mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1)));
}

/* ---- legacy formats ---------------------------------------------------------------------- */

/* The levels of blocks b0 and b1 (64 values in order): unsigned, or signed for Q8_0. */
static INF__ALWAYS_INLINE __m512i z_leg_unpack2(const int T, const uint8_t *b0, const uint8_t *b1)
{
    const size_t qs = T == INF_TYPE_Q4_0 ? 2 : T == INF_TYPE_Q4_1 ? 4 : T == INF_TYPE_Q5_0 ? 6 : 8;
    if (T == INF_TYPE_Q8_0)
        return z_load2x256(b0 + 2, b1 + 2);
    const __m512i bc = _mm512_mask_broadcast_i32x4(_mm512_broadcast_i32x4(x86_load128(b0 + qs)),
                                                   0xff00, x86_load128(b1 + qs));
    __m512i v = _mm512_and_si512(_mm512_srlv_epi64(bc, _mm512_setr_epi64(0, 0, 4, 4, 0, 0, 4, 4)),
                                 _mm512_set1_epi8(0x0f));
    if (T == INF_TYPE_Q5_0 || T == INF_TYPE_Q5_1) {
        const size_t qh = T == INF_TYPE_Q5_0 ? 2 : 4;
        uint32_t h0, h1;
        memcpy(&h0, b0 + qh, 4);
        memcpy(&h1, b1 + qh, 4);
        const __mmask64 k = (__mmask64)h0 | (__mmask64)h1 << 32;
        v = _mm512_mask_add_epi8(v, k, v, _mm512_set1_epi8(0x10));
    }
    return v;
}

/* The last block of an odd count, with the 256-bit kernel (kept out of line: inlined, it costs
 * the main loop its registers). */
static __attribute__((noinline)) void z_leg_tail(const int T, const int NR, const int NC,
                                                 const uint8_t *w, size_t ldw, const uint8_t *a,
                                                 size_t lda, float *tail)
{
    switch (T * 64 + NR * 8 + NC) {
#define Z_TAIL_CASE(TT, R, C)                                                                      \
    case TT * 64 + R * 8 + C:                                                                      \
        x86_leg_tile(TT, R, C, 1, w, ldw, a, lda, tail, (size_t)R);                                \
        break;
#define Z_TAIL_SHAPES(TT)                                                                          \
    Z_TAIL_CASE(TT, 1, 1)                                                                          \
    Z_TAIL_CASE(TT, 2, 1)                                                                          \
    Z_TAIL_CASE(TT, 4, 1)                                                                          \
    Z_TAIL_CASE(TT, 1, 2)                                                                          \
    Z_TAIL_CASE(TT, 2, 2)
        Z_TAIL_SHAPES(INF_TYPE_Q4_0)
        Z_TAIL_SHAPES(INF_TYPE_Q4_1)
        Z_TAIL_SHAPES(INF_TYPE_Q5_0)
        Z_TAIL_SHAPES(INF_TYPE_Q5_1)
        Z_TAIL_SHAPES(INF_TYPE_Q8_0)
#undef Z_TAIL_SHAPES
#undef Z_TAIL_CASE
    default:
        break;
    }
}

/*
 * inv (the gemm_inv entry of VNNI Q4_0 / Q8_0, whose matrix-vector tile is z_mv_tile): the even
 * blocks' eight products go into the low half of a 16-lane accumulator and the odd blocks' into
 * the high half, each in block order, and the halves are added before the horizontal sum, as
 * z_mv_tile sums them (an odd last block into the low half only), so that a token's result is
 * the same in a batch and alone (batch invariance, see docs/performance.md). The block's lanes
 * hold the same integers in both (z_mv_tile's 16x high nibbles meet a 1/16 scale: powers of two,
 * so each FMA rounds the same value). That is the plain gemm's own order but for the odd last
 * block, which the plain gemm sums apart.
 */
static INF__ALWAYS_INLINE void z_leg_tile(const int T, const int NR, const int NC, int64_t nb,
                                          const uint8_t *w, size_t ldw, const uint8_t *a,
                                          size_t lda, float *s, size_t lds, const int vnni,
                                          const int inv)
{
    const size_t wbs = x86_wbytes(T);
    const size_t pf = x86_pf_dist(NR, ldw);
    const int has_min = X86_LEG_HAS_MIN(T), off = X86_LEG_OFFSET(T);
    const int seq8 = inv && vnni && (T == INF_TYPE_Q4_0 || T == INF_TYPE_Q8_0);
    const size_t abs_ = has_min ? sizeof(struct inf_block_q8_1) : sizeof(struct inf_block_q8_0);
    const size_t aqs = has_min ? 4 : 2;
    __m512 acc[4][4], macc[4][4];
    for (int r = 0; r < NR; r++)
        for (int c = 0; c < NC; c++)
            acc[r][c] = macc[r][c] = _mm512_setzero_ps();
    int64_t ib = 0;
    for (; ib + 2 <= nb || (seq8 && ib < nb); ib += 2) {
        /* two blocks; seq8's odd last block is read twice and its second copy not summed */
        const int two = ib + 2 <= nb;
        const size_t next = two ? 1 : 0;
        __m512i y[4], oy[4];
        __m512 dy[4], sy[4];
        for (int c = 0; c < NC; c++) {
            const uint8_t *a0 = a + (size_t)c * lda + (size_t)ib * abs_, *a1 = a0 + next * abs_;
            y[c] = z_load2x256(a0 + aqs, a1 + aqs);
            dy[c] = z_f16_pair(a0, a1);
            if (off) {
                /* off * (sum of each 4 activations), negated, as the dot's starting value */
                const __m512i o =
                    z_dot_u8s8(_mm512_setzero_si512(), _mm512_set1_epi8((char)off), y[c], vnni);
                oy[c] = _mm512_sub_epi32(_mm512_setzero_si512(), o);
            }
            if (has_min)
                sy[c] = _mm512_mul_ps(z_f16_pair(a0 + 2, a1 + 2), _mm512_set1_ps(0.125f));
        }
        for (int r = 0; r < NR; r++) {
            const uint8_t *b0 = w + (size_t)r * ldw + (size_t)ib * wbs, *b1 = b0 + next * wbs;
            for (size_t o = 0; o < 2 * wbs; o += 64)
                _mm_prefetch((const char *)b0 + o + pf, X86_PF_HINT);
            const __m512i xq = z_leg_unpack2(T, b0, b1);
            const __m512 dx = z_f16_pair(b0, b1);
            __m512i ax = xq;
            __mmask64 neg = 0;
            if (T == INF_TYPE_Q8_0) {
                ax = _mm512_abs_epi8(xq);
                neg = _mm512_movepi8_mask(xq);
            }
            __m512 mx = _mm512_setzero_ps();
            if (has_min)
                mx = z_f16_pair(b0 + 2, b1 + 2);
            for (int c = 0; c < NC; c++) {
                __m512i p;
                if (T == INF_TYPE_Q8_0) {
                    const __m512i sy8 =
                        _mm512_mask_sub_epi8(y[c], neg, _mm512_setzero_si512(), y[c]);
                    p = z_dot_u8s8(_mm512_setzero_si512(), ax, sy8, vnni);
                } else {
                    p = z_dot_u8s8(off ? oy[c] : _mm512_setzero_si512(), ax, y[c], vnni);
                }
                const __m512 pf32 = _mm512_cvtepi32_ps(p), d = _mm512_mul_ps(dx, dy[c]);
                acc[r][c] = two ? _mm512_fmadd_ps(pf32, d, acc[r][c])
                                : _mm512_mask3_fmadd_ps(pf32, d, acc[r][c], (__mmask16)0x00ff);
                if (has_min) /* m * s in all 8 lanes of a block: s was scaled by 1/8 */
                    macc[r][c] = _mm512_fmadd_ps(mx, sy[c], macc[r][c]);
            }
        }
    }
    if (seq8) {
        for (int r = 0; r < NR; r++)
            for (int c = 0; c < NC; c++)
                s[(size_t)c * lds + (size_t)r] = z_hsum(acc[r][c]);
        return;
    }
    float tail[16] = {0};
    if (ib < nb) /* an odd block count: the last block with the 256-bit kernel */
        z_leg_tail(T, NR, NC, w + (size_t)ib * wbs, ldw, a + (size_t)ib * abs_, lda, tail);
    for (int r = 0; r < NR; r++)
        for (int c = 0; c < NC; c++) {
            float v = z_hsum(acc[r][c]) + tail[c * NR + r];
            if (has_min)
                v += z_hsum(macc[r][c]);
            s[(size_t)c * lds + (size_t)r] = v;
        }
}

/*
 * Matrix-vector Q4_0 / Q8_0 with VNNI: one block per 256-bit register, NR rows. On CPUs that
 * split 512-bit operations in two (Zen 4) the work per block, not the register width, is the
 * limit, and this form needs the fewest operations: the unsigned levels (Q4_0: the nibbles by
 * one shift and one mask; Q8_0: the levels + 128, one XOR) go straight into VPDPBUSD, whose
 * int32 sums never saturate, starting from -off * (sum of each 4 activations), computed once per
 * block for the NR rows; then one conversion and two multiplies per block and row. Each row sums
 * its even blocks and its odd blocks in two accumulators (two chains of FMAs), added at the end.
 * The matrix-vector product calls it a row at a time (see X86_GEMM_DISPATCH): NR > 1 only for
 * the ragged edge of an invariant batch (LEG_TILE_VI).
 */
/* Rows per gemm call (max_nr) of VNNI Q4_0 / Q8_0, and the most z_mv_tile takes. */
#define Z_MV_NR 8

/* NB (1 or 2) consecutive blocks of NR rows into acc: block b of the step into acc[r][b]. */
static INF__ALWAYS_INLINE void z_mv_step(const int T, const int NR, const int NB, const uint8_t *w,
                                         size_t ldw, const uint8_t *a, size_t pf, __m256 (*acc)[2])
{
    const size_t wbs = x86_wbytes(T), abs_ = sizeof(struct inf_block_q8_0);
    /* Q4_0: the high nibbles stay in place (16x their level), so the offset and the scale of
     * the upper 128-bit half are 16x and 1/16 (both exact) */
    const __m256i off = T == INF_TYPE_Q8_0 ? _mm256_set1_epi8((char)0x80)
                                           : _mm256_inserti128_si256(_mm256_set1_epi8(8),
                                                                     _mm_set1_epi8((char)128), 1);
    const __m256 dscale = T == INF_TYPE_Q8_0
                              ? _mm256_set1_ps(1.0f)
                              : _mm256_setr_ps(1, 1, 1, 1, 0.0625f, 0.0625f, 0.0625f, 0.0625f);
    const __m256i nib =
        _mm256_inserti128_si256(_mm256_set1_epi8(0x0f), _mm_set1_epi8((char)0xf0), 1);
    __m256i y[2], oy[2];
    __m256 dy[2];
    for (int b = 0; b < NB; b++) {
        const uint8_t *ab = a + (size_t)b * abs_;
        y[b] = x86_load256(ab + 2);
        dy[b] = x86_f16_bcast(ab);
        if (T != INF_TYPE_Q8_0)
            dy[b] = _mm256_mul_ps(dy[b], dscale);
        oy[b] = _mm256_sub_epi32(_mm256_setzero_si256(),
                                 _mm256_dpbusd_epi32(_mm256_setzero_si256(), off, y[b]));
    }
    for (int r = 0; r < NR; r++) {
        const uint8_t *wr = w + (size_t)r * ldw;
        for (size_t o = 0; o < (size_t)NB * wbs; o += 64)
            _mm_prefetch((const char *)wr + o + pf, X86_PF_HINT);
        for (int b = 0; b < NB; b++) {
            const uint8_t *wb = wr + (size_t)b * wbs;
            __m256i u;
            if (T == INF_TYPE_Q8_0)
                u = _mm256_xor_si256(x86_load256(wb + 2), _mm256_set1_epi8((char)0x80));
            else
                u = _mm256_and_si256(_mm256_broadcastsi128_si256(x86_load128(wb + 2)), nib);
            const __m256i p = _mm256_dpbusd_epi32(oy[b], u, y[b]);
            acc[r][b] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p),
                                        _mm256_mul_ps(x86_f16_bcast(wb), dy[b]), acc[r][b]);
        }
    }
}

static INF__ALWAYS_INLINE void z_mv_tile(const int T, const int NR, int64_t nb, const uint8_t *w,
                                         size_t ldw, const uint8_t *a, float *s)
{
    const size_t wbs = x86_wbytes(T), abs_ = sizeof(struct inf_block_q8_0);
    const size_t pf = x86_pf_dist(NR, ldw);
    __m256 acc[Z_MV_NR][2];
    for (int r = 0; r < NR; r++)
        acc[r][0] = acc[r][1] = _mm256_setzero_ps();
    int64_t ib = 0;
    /* two blocks per step: Q4_0's pair (36 bytes) needs one prefetch per row, Q8_0's two */
    for (; ib + 2 <= nb; ib += 2)
        z_mv_step(T, NR, 2, w + (size_t)ib * wbs, ldw, a + (size_t)ib * abs_, pf, acc);
    if (ib < nb)
        z_mv_step(T, NR, 1, w + (size_t)ib * wbs, ldw, a + (size_t)ib * abs_, pf, acc);
    for (int r = 0; r < NR; r++)
        s[r] = x86_hsum_ps(_mm256_add_ps(acc[r][0], acc[r][1]));
}

/* ---- K-quants ---------------------------------------------------------------------------- */

struct z_khead {
    float d, dmin;
    __m512i sc16;   /* Q2_K/Q3_K/Q6_K: the 16 scales as int16 (low 256 bits) */
    __m512i sc16x4; /* Q4_K/Q5_K: the 8 scales as int16 in each 128-bit lane */
    __m256i mins16; /* as struct x86_khead */
    __m512i hbits;  /* Q3_K hmask, Q5_K qh: 32 bytes in both 256-bit halves */
};

static INF__ALWAYS_INLINE void z_k_head(const int T, const uint8_t *blk, struct z_khead *h)
{
    switch (T) {
    case INF_TYPE_Q2_K: {
        const struct inf_block_q2_K *x = (const void *)blk;
        h->d = x86_f16(x->d);
        h->dmin = x86_f16(x->dmin);
        const __m128i s8 = x86_load128(x->scales);
        h->sc16 =
            _mm512_castsi256_si512(_mm256_cvtepu8_epi16(_mm_and_si128(s8, _mm_set1_epi8(0x0f))));
        h->mins16 = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(s8, 4), _mm_set1_epi8(0x0f)));
        break;
    }
    case INF_TYPE_Q3_K: {
        const struct inf_block_q3_K *x = (const void *)blk;
        h->d = x86_f16(x->d);
        const __m256i s16 = _mm256_cvtepi8_epi16(x86_q3k_scales(x->scales));
        h->sc16 = _mm512_castsi256_si512(s16);
        h->mins16 = _mm256_slli_epi16(s16, 2);
        h->hbits = _mm512_broadcast_i64x4(x86_load256(x->hmask));
        break;
    }
    case INF_TYPE_Q4_K:
    case INF_TYPE_Q5_K: {
        const struct inf_block_q4_K *x = (const void *)blk;
        h->d = x86_f16(x->d);
        h->dmin = x86_f16(x->dmin);
        __m256i sc;
        __m128i mins;
        x86_k4_scales(x->scales, &sc, &mins);
        h->sc16x4 = _mm512_broadcast_i32x4(_mm256_castsi256_si128(sc));
        h->mins16 = _mm256_zextsi128_si256(mins);
        if (T == INF_TYPE_Q5_K)
            h->hbits = _mm512_broadcast_i64x4(
                x86_load256(((const struct inf_block_q5_K *)(const void *)blk)->qh));
        break;
    }
    default: { /* Q6_K */
        const struct inf_block_q6_K *x = (const void *)blk;
        h->d = x86_f16(x->d);
        const __m256i s16 = _mm256_cvtepi8_epi16(x86_load128(x->scales));
        h->sc16 = _mm512_castsi256_si512(s16);
        h->mins16 = _mm256_slli_epi16(s16, 5);
        break;
    }
    }
}

/* int16 scales for the four groups of 16 starting at group g, one per 128-bit lane. */
static inline __m512i z_scales4(__m512i sc16, int g)
{
    const __m512i idx = _mm512_set_epi16(
        (short)(g + 3), (short)(g + 3), (short)(g + 3), (short)(g + 3), (short)(g + 3),
        (short)(g + 3), (short)(g + 3), (short)(g + 3), (short)(g + 2), (short)(g + 2),
        (short)(g + 2), (short)(g + 2), (short)(g + 2), (short)(g + 2), (short)(g + 2),
        (short)(g + 2), (short)(g + 1), (short)(g + 1), (short)(g + 1), (short)(g + 1),
        (short)(g + 1), (short)(g + 1), (short)(g + 1), (short)(g + 1), (short)g, (short)g,
        (short)g, (short)g, (short)g, (short)g, (short)g, (short)g);
    return _mm512_permutexvar_epi16(idx, sc16);
}

/* Values 64p..64p+63 of the superblock as unsigned levels, and their int16 scale vector. */
static INF__ALWAYS_INLINE __m512i z_k_pair(const int T, const uint8_t *blk, const struct z_khead *h,
                                           const int p, __m512i *sc)
{
    const __m512i m3 = _mm512_set1_epi8(3), m4 = _mm512_set1_epi8(0x0f);
    /* shifts for the two 256-bit halves: bits (2s, 2s+2) of 2-bit planes, 0/4 for nibbles */
    const int hf = p / 2, s0 = 2 * (p % 2); /* Q2_K/Q3_K/Q6_K: half, first sub-chunk */
    switch (T) {
    case INF_TYPE_Q2_K:
    case INF_TYPE_Q3_K: {
        const uint8_t *qs = T == INF_TYPE_Q2_K
                                ? ((const struct inf_block_q2_K *)(const void *)blk)->qs
                                : ((const struct inf_block_q3_K *)(const void *)blk)->qs;
        *sc = z_scales4(h->sc16, 4 * p);
        const __m512i b = _mm512_broadcast_i64x4(x86_load256(qs + 32 * hf));
        const __m512i sh = _mm512_setr_epi64(2 * s0, 2 * s0, 2 * s0, 2 * s0, 2 * s0 + 2, 2 * s0 + 2,
                                             2 * s0 + 2, 2 * s0 + 2);
        __m512i q = _mm512_and_si512(_mm512_srlv_epi64(b, sh), m3);
        if (T == INF_TYPE_Q3_K) {
            /* bit 2 of chunk k is bit k of hmask; chunks 2p and 2p+1 here */
            const __m512i sel = _mm512_inserti64x4(_mm512_set1_epi8((char)(1 << (2 * p))),
                                                   _mm256_set1_epi8((char)(1 << (2 * p + 1))), 1);
            const __mmask64 k = _mm512_test_epi8_mask(h->hbits, sel);
            q = _mm512_mask_add_epi8(q, k, q, _mm512_set1_epi8(4));
        }
        return q;
    }
    case INF_TYPE_Q4_K:
    case INF_TYPE_Q5_K: {
        const uint8_t *qs = T == INF_TYPE_Q4_K
                                ? ((const struct inf_block_q4_K *)(const void *)blk)->qs
                                : ((const struct inf_block_q5_K *)(const void *)blk)->qs;
        /* lanes 0-1: scale 2p, lanes 2-3: scale 2p+1 (each lane holds all 8 as int16) */
        const char lo = (char)(4 * p), hi = (char)(4 * p + 2);
        const __m512i mask =
            _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_set1_epi16(
                                   (short)((uint8_t)lo | (uint8_t)(lo + 1) << 8))),
                               _mm256_set1_epi16((short)((uint8_t)hi | (uint8_t)(hi + 1) << 8)), 1);
        *sc = _mm512_shuffle_epi8(h->sc16x4, mask);
        const __m512i b = _mm512_broadcast_i64x4(x86_load256(qs + 32 * p));
        __m512i q =
            _mm512_and_si512(_mm512_srlv_epi64(b, _mm512_setr_epi64(0, 0, 0, 0, 4, 4, 4, 4)), m4);
        if (T == INF_TYPE_Q5_K) {
            const __m512i sel = _mm512_inserti64x4(_mm512_set1_epi8((char)(1 << (2 * p))),
                                                   _mm256_set1_epi8((char)(1 << (2 * p + 1))), 1);
            q = _mm512_mask_add_epi8(q, _mm512_test_epi8_mask(h->hbits, sel), q,
                                     _mm512_set1_epi8(16));
        }
        return q;
    }
    default: { /* Q6_K: half hf; p even = sub-chunks 0,1 (low nibbles), odd = 2,3 (high) */
        const struct inf_block_q6_K *x = (const void *)blk;
        *sc = z_scales4(h->sc16, 4 * p);
        const __m512i l = _mm512_loadu_si512(x->ql + 64 * hf);
        const __m512i lo =
            (p % 2) ? _mm512_and_si512(_mm512_srli_epi16(l, 4), m4) : _mm512_and_si512(l, m4);
        const __m512i qh = _mm512_broadcast_i64x4(x86_load256(x->qh + 32 * hf));
        const __m512i sh = _mm512_setr_epi64(2 * s0, 2 * s0, 2 * s0, 2 * s0, 2 * s0 + 2, 2 * s0 + 2,
                                             2 * s0 + 2, 2 * s0 + 2);
        const __m512i hi = _mm512_and_si512(_mm512_srlv_epi64(qh, sh), m3);
        return _mm512_or_si512(lo, _mm512_slli_epi16(hi, 4));
    }
    }
}

static INF__ALWAYS_INLINE void z_k_tile(const int T, const int NR, const int NC, int64_t nb,
                                        const uint8_t *w, size_t ldw, const uint8_t *a, size_t lda,
                                        float *s, size_t lds, const int vnni)
{
    const size_t wbs = x86_wbytes(T);
    const size_t pf = x86_pf_dist(NR, ldw);
    __m512 acc[4][4];
    __m256 accm[4][4];
    for (int r = 0; r < NR; r++)
        for (int c = 0; c < NC; c++) {
            acc[r][c] = _mm512_setzero_ps();
            accm[r][c] = _mm256_setzero_ps();
        }
    for (int64_t ib = 0; ib < nb; ib++) {
        const struct inf_block_q8_K *y[4];
        __m256i bs[4];
        x86_k_act(T, NC, a, lda, ib, y, bs);
        for (int r = 0; r < NR; r++) {
            const uint8_t *blk = x86_k_block(w + (size_t)r * ldw, ib, wbs, pf);
            struct z_khead h;
            z_k_head(T, blk, &h);
            __m512i sumi[4];
            for (int c = 0; c < NC; c++)
                sumi[c] = _mm512_setzero_si512();
            for (int p = 0; p < 4; p++) {
                __m512i sc;
                const __m512i q = z_k_pair(T, blk, &h, p, &sc);
                for (int c = 0; c < NC; c++) {
                    const __m512i prod =
                        _mm512_maddubs_epi16(q, _mm512_loadu_si512(y[c]->qs + 64 * p));
                    sumi[c] = z_dot_s16(sumi[c], prod, sc, vnni);
                }
            }
            for (int c = 0; c < NC; c++) {
                const __m256i pm = _mm256_madd_epi16(h.mins16, bs[c]);
                if (T == INF_TYPE_Q3_K || T == INF_TYPE_Q6_K) /* offset levels */
                    sumi[c] = _mm512_sub_epi32(sumi[c], _mm512_zextsi256_si512(pm));
                acc[r][c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sumi[c]),
                                            _mm512_set1_ps(h.d * y[c]->d), acc[r][c]);
                if (!(T == INF_TYPE_Q3_K || T == INF_TYPE_Q6_K))
                    accm[r][c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(pm),
                                                 _mm256_set1_ps(h.dmin * y[c]->d), accm[r][c]);
            }
        }
    }
    for (int r = 0; r < NR; r++)
        for (int c = 0; c < NC; c++)
            s[(size_t)c * lds + (size_t)r] = z_hsum(acc[r][c]) - x86_hsum_ps(accm[r][c]);
}

/* ---- F32 / F16 / BF16 weights ------------------------------------------------------------ */

static INF__ALWAYS_INLINE __m512 z_load_w16(const int T, const uint8_t *w, int64_t i, __mmask16 m)
{
    if (T == INF_TYPE_F32)
        return _mm512_maskz_loadu_ps(m, (const float *)(const void *)w + i);
    const __m256i h = _mm256_maskz_loadu_epi16(m, (const uint16_t *)(const void *)w + i);
    if (T == INF_TYPE_F16)
        return _mm512_cvtph_ps(h);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

static INF__ALWAYS_INLINE void z_f_tile(const int T, const int NR, const int NC, int64_t n,
                                        const uint8_t *w, size_t ldw, const uint8_t *a, size_t lda,
                                        float *s, size_t lds, const int vnni)
{
    (void)vnni;
    const size_t pf = NC == 1 ? 0 : x86_pf_dist(NR, ldw); /* none for one token (kern_x86.h) */
    __m512 acc[4][4];
    for (int r = 0; r < NR; r++)
        for (int c = 0; c < NC; c++)
            acc[r][c] = _mm512_setzero_ps();
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 m = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
        __m512 wv[4];
        for (int r = 0; r < NR; r++) {
            if (pf)
                _mm_prefetch((const char *)(w + (size_t)r * ldw) + (T == INF_TYPE_F32 ? 4 : 2) * i +
                                 pf,
                             X86_PF_HINT);
            wv[r] = z_load_w16(T, w + (size_t)r * ldw, i, m);
        }
        for (int c = 0; c < NC; c++) {
            const __m512 av =
                _mm512_maskz_loadu_ps(m, (const float *)(const void *)(a + (size_t)c * lda) + i);
            for (int r = 0; r < NR; r++)
                acc[r][c] = _mm512_fmadd_ps(wv[r], av, acc[r][c]);
        }
    }
    for (int r = 0; r < NR; r++)
        for (int c = 0; c < NC; c++)
            s[(size_t)c * lds + (size_t)r] = z_hsum(acc[r][c]);
}

/* ---- instantiation ----------------------------------------------------------------------- */

#define LEG_TILE(T, NR, NC, nb, w, ldw, a, lda, s, lds)                                            \
    z_leg_tile(T, NR, NC, nb, w, ldw, a, lda, s, lds, 0, 0)
#define LEG_TILE_V(T, NR, NC, nb, w, ldw, a, lda, s, lds)                                          \
    do {                                                                                           \
        if ((NC) == 1 && ((T) == INF_TYPE_Q4_0 || (T) == INF_TYPE_Q8_0))                           \
            z_mv_tile(T, NR, nb, w, ldw, a, s);                                                    \
        else                                                                                       \
            z_leg_tile(T, NR, NC, nb, w, ldw, a, lda, s, lds, 1, 0);                               \
    } while (0)
/* the gemm_inv of VNNI Q4_0 / Q8_0: batches summed in z_mv_tile's order */
#define LEG_TILE_VI(T, NR, NC, nb, w, ldw, a, lda, s, lds)                                         \
    do {                                                                                           \
        if ((NC) == 1 && ((T) == INF_TYPE_Q4_0 || (T) == INF_TYPE_Q8_0))                           \
            z_mv_tile(T, NR, nb, w, ldw, a, s);                                                    \
        else                                                                                       \
            z_leg_tile(T, NR, NC, nb, w, ldw, a, lda, s, lds, 1, 1);                               \
    } while (0)
#define K_TILE(T, NR, NC, nb, w, ldw, a, lda, s, lds)                                              \
    z_k_tile(T, NR, NC, nb, w, ldw, a, lda, s, lds, 0)
#define K_TILE_V(T, NR, NC, nb, w, ldw, a, lda, s, lds)                                            \
    z_k_tile(T, NR, NC, nb, w, ldw, a, lda, s, lds, 1)
#define F_TILE(T, NR, NC, n, w, ldw, a, lda, s, lds)                                               \
    z_f_tile(T, NR, NC, n, w, ldw, a, lda, s, lds, 0)

#define LEG(t, T)                                                                                  \
    X86_GEMM_DISPATCH(gemm_##t, LEG_TILE, T, 2, 2, n / 32)                                         \
    X86_GEMM_DISPATCH(gemm_##t##_vnni, LEG_TILE_V, T, 2, 2, n / 32)
#define KQ(t, T)                                                                                   \
    X86_GEMM_DISPATCH(gemm_##t, K_TILE, T, 1, 4, n / 256)                                          \
    X86_GEMM_DISPATCH(gemm_##t##_vnni, K_TILE_V, T, 1, 4, n / 256)
X86_GEMM_DISPATCH(gemm_q4_0_vnni_inv, LEG_TILE_VI, INF_TYPE_Q4_0, 4, 4, n / 32)
X86_GEMM_DISPATCH(gemm_q8_0_vnni_inv, LEG_TILE_VI, INF_TYPE_Q8_0, 2, 4, n / 32)
LEG(q4_0, INF_TYPE_Q4_0)
LEG(q4_1, INF_TYPE_Q4_1)
LEG(q5_0, INF_TYPE_Q5_0)
LEG(q5_1, INF_TYPE_Q5_1)
LEG(q8_0, INF_TYPE_Q8_0)
KQ(q2_K, INF_TYPE_Q2_K)
KQ(q3_K, INF_TYPE_Q3_K)
KQ(q4_K, INF_TYPE_Q4_K)
KQ(q5_K, INF_TYPE_Q5_K)
KQ(q6_K, INF_TYPE_Q6_K)
X86_GEMM_DISPATCH(gemm_mxfp4, X86_LEG_TILE, INF_TYPE_MXFP4, 2, 2, n / 32)
X86_GEMM_DISPATCH(gemm_f32, F_TILE, INF_TYPE_F32, 2, 4, n)
X86_GEMM_DISPATCH(gemm_f16, F_TILE, INF_TYPE_F16, 2, 4, n)
X86_GEMM_DISPATCH(gemm_bf16, F_TILE, INF_TYPE_BF16, 2, 4, n)

/* ---- Q4_0 / Q8_0 panels: 16 rows interleaved, for batches
 * ---------------------------------------- */

/*
 * A panel is 16 rows of a Q4_0 chunk repacked block by block (zp_block_bytes): eight
 * 64-byte vectors of unsigned levels, vector j holding values 4j..4j+3 of rows 0..15 in its
 * sixteen 32-bit lanes, then the 16 row scales as float. A broadcast of 4 activation bytes then
 * feeds all 16 rows in one VPMADDUBSW; a block's 8 products summed as int16 stay exact (each
 * lane: 16 products of at most 15 * 128, 30720 < 32768), one VPMADDWD per block and token widens
 * them, the offset 8 * sum(y) comes off as an integer, and the scales apply once per 16 rows.
 * The panels of a chunk are built once and serve all its tokens, so this path pays for itself
 * only for batches (panel_min_nc tokens or more).
 * Q8_0: the levels + 128 (unsigned) split into low and high nibbles, two planes of 8 vectors
 * each summed as above; dot = sum(lo y) + 16 sum(hi y) - 128 sum(y), all exact in int32.
 */
#define ZP_NC 4

/* Panel bytes per block: Q8_0 levels + 128 are split into two nibble planes (16 vectors). */
static inline size_t zp_block_bytes(const int T)
{
    return T == INF_TYPE_Q8_0 ? 1088 : 576;
}

static void zp_pack(const int T, const uint8_t *w, size_t ldw, int nr, int64_t nb, uint8_t *dst)
{
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    const int ng = T == INF_TYPE_Q8_0 ? 8 : 4; /* 4-byte groups stored per row and block */
    const size_t bb = zp_block_bytes(T);
    const size_t wbs =
        T == INF_TYPE_Q8_0 ? sizeof(struct inf_block_q8_0) : sizeof(struct inf_block_q4_0);
    for (int64_t b = 0; b < nb; b++) {
        uint32_t g[8][16];
        memset(g, 0, sizeof(g)); /* padding rows: their scale is 0, their results not stored */
        uint8_t *pb = dst + (size_t)b * bb;
        float d[16] = {0};
        for (int r = 0; r < nr; r++) {
            const uint8_t *blk = w + (size_t)r * ldw + (size_t)b * wbs;
            inf_fp16 h;
            memcpy(&h, blk, 2);
            d[r] = x86_f16(h);
            for (int j = 0; j < ng; j++)
                memcpy(&g[j][r], blk + 2 + 4 * j, 4);
        }
        for (int j = 0; j < ng; j++) {
            __m512i v = _mm512_loadu_si512(g[j]);
            if (T == INF_TYPE_Q8_0) { /* w + 128 = 16 hi + lo: planes lo (0..7), hi (8..15) */
                v = _mm512_xor_si512(v, _mm512_set1_epi8((char)0x80));
                _mm512_store_si512(pb + 64 * j, _mm512_and_si512(v, m4));
                _mm512_store_si512(pb + 64 * (j + 8),
                                   _mm512_and_si512(_mm512_srli_epi16(v, 4), m4));
            } else {
                _mm512_store_si512(pb + 64 * j, _mm512_and_si512(v, m4));
                _mm512_store_si512(pb + 64 * (j + 4),
                                   _mm512_and_si512(_mm512_srli_epi16(v, 4), m4));
            }
        }
        memcpy(pb + bb - 64, d, sizeof(d));
    }
}

/* Per token and block of the activations: the scale, and off * the sum of the levels. */
static void zp_act_q8_0(int off, int nc, int64_t nb, const uint8_t *a, size_t lda, float *dy,
                        int32_t *s8)
{
    for (int c = 0; c < nc; c++)
        for (int64_t b = 0; b < nb; b++) {
            const uint8_t *ab = a + (size_t)c * lda + (size_t)b * sizeof(struct inf_block_q8_0);
            inf_fp16 h;
            memcpy(&h, ab, 2);
            dy[(size_t)c * (size_t)nb + (size_t)b] = x86_f16(h);
            const __m256i p =
                _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(1), x86_load256(ab + 2)),
                                  _mm256_set1_epi16(1));
            __m128i q = _mm_add_epi32(_mm256_castsi256_si128(p), _mm256_extracti128_si256(p, 1));
            q = _mm_add_epi32(q, _mm_shuffle_epi32(q, 0x4e));
            q = _mm_add_epi32(q, _mm_shuffle_epi32(q, 0xb1));
            s8[(size_t)c * (size_t)nb + (size_t)b] = off * _mm_cvtsi128_si32(q);
        }
}

static INF__ALWAYS_INLINE void zp_tile(const int T, const int NC, int64_t nb, const uint8_t *pan,
                                       const uint8_t *a, size_t lda, const float *dy,
                                       const int32_t *s8, float *s, size_t lds, int nr)
{
    const __m512i ones = _mm512_set1_epi16(1), sixteen = _mm512_set1_epi16(16);
    const size_t bb = zp_block_bytes(T);
    __m512 acc[ZP_NC];
    for (int c = 0; c < NC; c++)
        acc[c] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *pb = pan + (size_t)b * bb;
        __m512i a16[ZP_NC], h16[ZP_NC];
        for (int c = 0; c < NC; c++)
            a16[c] = h16[c] = _mm512_setzero_si512();
        for (int j = 0; j < 8; j++) {
            const __m512i wv = _mm512_load_si512(pb + 64 * j);
            __m512i wh = _mm512_setzero_si512();
            if (T == INF_TYPE_Q8_0)
                wh = _mm512_load_si512(pb + 64 * (j + 8));
            for (int c = 0; c < NC; c++) {
                int32_t v;
                memcpy(&v,
                       a + (size_t)c * lda + (size_t)b * sizeof(struct inf_block_q8_0) + 2 + 4 * j,
                       4);
                const __m512i yv = _mm512_set1_epi32(v);
                a16[c] = _mm512_add_epi16(a16[c], _mm512_maddubs_epi16(wv, yv));
                if (T == INF_TYPE_Q8_0)
                    h16[c] = _mm512_add_epi16(h16[c], _mm512_maddubs_epi16(wh, yv));
            }
        }
        const __m512 dx = _mm512_load_ps((const float *)(const void *)(pb + bb - 64));
        for (int c = 0; c < NC; c++) {
            const size_t i = (size_t)c * (size_t)nb + (size_t)b;
            __m512i d32 = _mm512_madd_epi16(a16[c], ones);
            if (T == INF_TYPE_Q8_0)
                d32 = _mm512_add_epi32(d32, _mm512_madd_epi16(h16[c], sixteen));
            d32 = _mm512_sub_epi32(d32, _mm512_set1_epi32(s8[i]));
            acc[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d32),
                                     _mm512_mul_ps(dx, _mm512_set1_ps(dy[i])), acc[c]);
        }
    }
    const __mmask16 m = (__mmask16)((1u << nr) - 1);
    for (int c = 0; c < NC; c++)
        _mm512_mask_storeu_ps(s + (size_t)c * lds, m, acc[c]);
}

static INF__ALWAYS_INLINE void zp_gemm(const int T, int64_t n, const uint8_t *w, size_t ldw,
                                       const uint8_t *a, size_t lda, float *s, size_t lds, int nr,
                                       int nc, uint8_t *buf)
{
    const int64_t nb = n / 32;
    const int np = (nr + 15) / 16;
    const size_t pan_bytes = (size_t)nb * zp_block_bytes(T);
    float *dy = (float *)(void *)(buf + (size_t)np * pan_bytes);
    int32_t *s8 = (int32_t *)(void *)(dy + (size_t)ZP_NC * (size_t)nb);
    for (int p = 0; p < np; p++)
        zp_pack(T, w + (size_t)p * 16 * ldw, ldw, nr - 16 * p < 16 ? nr - 16 * p : 16, nb,
                buf + (size_t)p * pan_bytes);
    for (int c0 = 0; c0 < nc; c0 += ZP_NC) {
        const int cn = nc - c0 < ZP_NC ? nc - c0 : ZP_NC;
        const uint8_t *ac = a + (size_t)c0 * lda;
        zp_act_q8_0(T == INF_TYPE_Q8_0 ? 128 : 8, cn, nb, ac, lda, dy, s8);
        for (int p = 0; p < np; p++) {
            const uint8_t *pan = buf + (size_t)p * pan_bytes;
            float *sp = s + (size_t)c0 * lds + (size_t)p * 16;
            const int rn = nr - 16 * p < 16 ? nr - 16 * p : 16;
#define ZP_TILE(NC) zp_tile(T, NC, nb, pan, ac, lda, dy, s8, sp, lds, rn)
            X86_WITH_NC4(cn, ZP_TILE)
#undef ZP_TILE
        }
    }
}

/*
 * Scratch for a chunk: its panels, then the activations' scales and offsets for ZP_NC tokens.
 * One buffer per thread, grown when a chunk needs more and reused for every later chunk, so
 * the product allocates nothing once warm; freed when the thread ends.
 */

static uint8_t *zp_scratch(const int T, int64_t n, int nr)
{
    const int64_t nb = n / 32;
    if (nb <= 0 || nr <= 0)
        return NULL;
    const size_t total = ((size_t)((nr + 15) / 16) * (size_t)nb * zp_block_bytes(T) +
                          (size_t)ZP_NC * (size_t)nb * (sizeof(float) + sizeof(int32_t)) + 63) /
                         64 * 64;
    return inf__thread_scratch(total);
}

#define ZP_PANEL(t, T)                                                                             \
    static void gemm_##t(int64_t n, const void *vw, size_t ldw, const void *va, size_t lda,        \
                         float *s, size_t lds, int nr, int nc);                                    \
    static void gemm_##t##_panel(int64_t n, const void *vw, size_t ldw, const void *va,            \
                                 size_t lda, float *s, size_t lds, int nr, int nc)                 \
    {                                                                                              \
        uint8_t *buf = zp_scratch(T, n, nr);                                                       \
        if (!buf) { /* out of memory, or nothing to do: the plain tiles need no scratch */         \
            gemm_##t(n, vw, ldw, va, lda, s, lds, nr, nc);                                         \
            return;                                                                                \
        }                                                                                          \
        zp_gemm(T, n, vw, ldw, va, lda, s, lds, nr, nc, buf);                                      \
    }
ZP_PANEL(q4_0, INF_TYPE_Q4_0)
ZP_PANEL(q8_0, INF_TYPE_Q8_0)

#include "kernels/x86/ops_avx512.h"

void inf__kern_init_avx512(struct inf__kern *k, int have_vnni)
{
    k->level = INF_CPU_AVX512;
#define W(T, fn, mr, mc)                                                                           \
    k->w[T] = (struct inf__wkern){.gemm = have_vnni ? fn##_vnni : fn, .max_nr = mr, .max_nc = mc};
    X86_QUANT_GEMMS(W)
#undef W
    if (have_vnni) { /* as many rows per call as z_mv_tile takes */
        k->w[INF_TYPE_Q4_0].max_nr = k->w[INF_TYPE_Q8_0].max_nr = Z_MV_NR;
        k->w[INF_TYPE_Q4_0].max_nc = k->w[INF_TYPE_Q8_0].max_nc = 4;
        k->w[INF_TYPE_Q4_0].gemm_inv = gemm_q4_0_vnni_inv;
        k->w[INF_TYPE_Q8_0].gemm_inv = gemm_q8_0_vnni_inv;
    }
    k->w[INF_TYPE_Q4_0].panel = gemm_q4_0_panel;
    k->w[INF_TYPE_Q4_0].panel_min_nc = 8;
    k->w[INF_TYPE_Q8_0].panel = gemm_q8_0_panel;
    k->w[INF_TYPE_Q8_0].panel_min_nc = 8;
    k->w[INF_TYPE_F32] = (struct inf__wkern){.gemm = gemm_f32, .max_nr = 4, .max_nc = 4};
    k->w[INF_TYPE_F16] = (struct inf__wkern){.gemm = gemm_f16, .max_nr = 4, .max_nc = 4};
    k->w[INF_TYPE_BF16] = (struct inf__wkern){.gemm = gemm_bf16, .max_nr = 4, .max_nc = 4};
    k->w[INF_TYPE_MXFP4] = (struct inf__wkern){.gemm = gemm_mxfp4, .max_nr = 4, .max_nc = 2};
    inf__kern_init_avx512_f16(k);
    z_ops_init(k);
    inf__kern_init_avx512_kq(k);
    if (have_vnni)
        inf__kern_init_avx512_x16(k);
    else /* AVX-512 without VNNI (Skylake): its row kernels, measured there; the AVX2 16-row
          * kernels this table inherits have not been */
        memset(k->packed, 0, sizeof(k->packed));
}

#else
typedef int inf__kern_avx512_unused; /* ISO C: no empty translation units */
#endif
