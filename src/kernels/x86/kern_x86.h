/*
 * kern_x86.h - 256-bit (AVX2 + FMA + F16C) kernels shared by the AVX2 and AVX-512 levels.
 *
 * Included only by the x86 files whose names end in _avx2.c and _avx512.c, compiled with the flags
 * of their level; the AVX-512 file compiles these again (with EVEX encodings and 32 registers)
 * for the kernels it has no 512-bit version of.
 *
 * The dot-product kernels are register tiles: NR weight rows times NC activation rows, written
 * once as always-inline templates whose NR and NC are constants at each instantiation, so the
 * compiler unrolls the r/c loops and keeps the NR*NC accumulators in registers. Each weight
 * block is unpacked once per tile and used against NC activation blocks (batches); the matrix-
 * vector product uses NC = 1 and NR rows to share the activation-side work.
 *
 * Integer products use VPMADDUBSW (unsigned x signed bytes -> pairs of int16) and VPMADDWD.
 * VPMADDUBSW saturates at +-32767; every use below stays within it: unsigned weight levels are
 * at most 63 and activations at most 127 in magnitude (2 * 63 * 127 = 16002), and for Q8_0
 * weights the sign moves onto the activation (|w| <= 128: 2 * 128 * 127 = 32512).
 */
#ifndef INFERNO_KERNELS_X86_KERN_X86_H
#define INFERNO_KERNELS_X86_KERN_X86_H

#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "kernels/blocks.h"
#include "kernels/fp16.h"
#include "kernels/internal.h"

/*
 * Software prefetch of the weights: each row's stream is fetched X86_PF_TILES tiles (NR rows)
 * ahead, i.e. at the same position of the rows the next call will read (for the matrix-vector
 * product, which goes a row at a time, the next row: ldw bytes ahead of the sequential stream). The
 * hardware prefetchers stop at 4 KiB pages and lag behind NR interleaved streams; without this the
 * matrix-vector product waits on memory about half of the time. Not for F16/BF16/F32 rows (8 KiB
 * and more of 16-bit values): their matrix-vector product, a row at a time, is one sequential
 * stream that the hardware prefetchers follow, and a prefetch per line only competed with them
 * (Zen 4, bench-kernels at 1 thread: F16 15-17 GB/s with it, 21-24 without; tinyllama F16
 * generation +9 % at 1 thread, +11 % at 2). Q8_0's generation lost 1-9 % without: kept there.
 */
#ifndef X86_PF_TILES
#define X86_PF_TILES 1
#endif
#ifndef X86_PF_HINT
#define X86_PF_HINT _MM_HINT_T0
#endif
#ifndef X86_PF_MIN
#define X86_PF_MIN 0
#endif
#define X86_F16_PF 4096 /* bytes ahead the F16 -> F32 conversions prefetch (z_f16_to_f32) */

static inline size_t x86_pf_dist(int nr, size_t ldw)
{
    const size_t d = (size_t)X86_PF_TILES * (size_t)nr * ldw;
    return d > X86_PF_MIN ? d : X86_PF_MIN;
}

/* ---- helpers ----------------------------------------------------------------------------- */

/* The first cnt of the 8 floats of v to s (all when cnt >= 8, none when cnt <= 0): the rows of a
 * tile that keeps 8 rows in a vector's lanes, where fewer are asked for. */
static inline void x86_store_rows8(float *s, __m256 v, int cnt)
{
    if (cnt >= 8) {
        _mm256_storeu_ps(s, v);
    } else if (cnt > 0) {
        const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        _mm256_maskstore_ps(s, _mm256_cmpgt_epi32(_mm256_set1_epi32(cnt), lane), v);
    }
}

static inline float x86_hsum_ps(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline float x86_hmax_ps(__m256 v)
{
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline float x86_f16(inf_fp16 h)
{
    return inf__fp16_table[h];
}

/* The binary16 at p (any alignment), converted and broadcast: one load from the table. */
static inline __m256 x86_f16_bcast(const void *p)
{
    inf_fp16 h;
    memcpy(&h, p, 2);
    return _mm256_broadcast_ss(&inf__fp16_table[h]);
}

static inline __m256i x86_load256(const void *p)
{
    return _mm256_loadu_si256((const __m256i *)p);
}

static inline __m128i x86_load128(const void *p)
{
    return _mm_loadu_si128((const __m128i *)p);
}

/* The 32 nibbles of a Q4 block as bytes in value order: low nibbles (values 0-15), then high. */
static inline __m256i x86_nibbles32(const uint8_t *qs)
{
    /* both halves get the 16 bytes; the high half is shifted right by 4 */
    const __m256i b = _mm256_broadcastsi128_si256(x86_load128(qs));
    const __m256i v = _mm256_srlv_epi32(b, _mm256_setr_epi32(0, 0, 0, 0, 4, 4, 4, 4));
    return _mm256_and_si256(v, _mm256_set1_epi8(0x0f));
}

/* Byte i = 0xff when bit i of the 32-bit little-endian word at p is set, else 0. */
static inline __m256i x86_bits32(const uint8_t *p)
{
    uint32_t x;
    memcpy(&x, p, 4);
    const __m256i spread = _mm256_shuffle_epi8(
        _mm256_set1_epi32((int)x),
        _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0));
    const __m256i sel = _mm256_set1_epi64x((int64_t)0x8040201008040201ull);
    return _mm256_cmpeq_epi8(_mm256_and_si256(spread, sel), sel);
}

/* Sum of pairs of int16 into int32. */
static inline __m256i x86_sum_pairs(__m256i v)
{
    return _mm256_madd_epi16(v, _mm256_set1_epi16(1));
}

/* ---- legacy formats (32-value blocks) against Q8_0 / Q8_1 ---------------------------------- */

/* The levels of one weight block: unsigned (offset or min applied later), Q8_0 signed. */
static INF__ALWAYS_INLINE __m256i x86_leg_unpack(const int T, const uint8_t *b)
{
    switch (T) {
    case INF_TYPE_Q4_0:
        return x86_nibbles32(((const struct inf_block_q4_0 *)(const void *)b)->qs);
    case INF_TYPE_Q4_1:
        return x86_nibbles32(((const struct inf_block_q4_1 *)(const void *)b)->qs);
    case INF_TYPE_Q5_0: {
        const struct inf_block_q5_0 *x = (const void *)b;
        const __m256i hb = _mm256_and_si256(x86_bits32(x->qh), _mm256_set1_epi8(0x10));
        return _mm256_or_si256(x86_nibbles32(x->qs), hb);
    }
    case INF_TYPE_Q5_1: {
        const struct inf_block_q5_1 *x = (const void *)b;
        const __m256i hb = _mm256_and_si256(x86_bits32(x->qh), _mm256_set1_epi8(0x10));
        return _mm256_or_si256(x86_nibbles32(x->qs), hb);
    }
    case INF_TYPE_MXFP4: { /* the nibbles looked up in the (doubled) E2M1 values: signed */
        const __m256i tbl = _mm256_broadcastsi128_si256(x86_load128(inf__mxfp4_values));
        return _mm256_shuffle_epi8(
            tbl, x86_nibbles32(((const struct inf_block_mxfp4 *)(const void *)b)->qs));
    }
    default: /* Q8_0 */
        return x86_load256(((const struct inf_block_q8_0 *)(const void *)b)->qs);
    }
}

/* A weight block's scale: binary16 d, or MXFP4's 2^(e - 128) */
static INF__ALWAYS_INLINE __m256 x86_leg_scale(const int T, const uint8_t *b)
{
    if (T == INF_TYPE_MXFP4)
        return _mm256_set1_ps(inf__e8m0_half(b[0]));
    return x86_f16_bcast(b);
}

/* Signed levels (the sign trick of maddubs), as Q8_0's and MXFP4's */
#define X86_LEG_SIGNED(T) ((T) == INF_TYPE_Q8_0 || (T) == INF_TYPE_MXFP4)

/* The bytes of a block of weight format T (a constant at each instantiation). */
static INF__ALWAYS_INLINE size_t x86_wbytes(const int T)
{
    return T == INF_TYPE_Q4_0    ? sizeof(struct inf_block_q4_0)
           : T == INF_TYPE_Q4_1  ? sizeof(struct inf_block_q4_1)
           : T == INF_TYPE_Q5_0  ? sizeof(struct inf_block_q5_0)
           : T == INF_TYPE_Q5_1  ? sizeof(struct inf_block_q5_1)
           : T == INF_TYPE_Q8_0  ? sizeof(struct inf_block_q8_0)
           : T == INF_TYPE_MXFP4 ? sizeof(struct inf_block_mxfp4)
           : T == INF_TYPE_Q2_K  ? sizeof(struct inf_block_q2_K)
           : T == INF_TYPE_Q3_K  ? sizeof(struct inf_block_q3_K)
           : T == INF_TYPE_Q4_K  ? sizeof(struct inf_block_q4_K)
           : T == INF_TYPE_Q5_K  ? sizeof(struct inf_block_q5_K)
                                 : sizeof(struct inf_block_q6_K);
}

/*
 * The gemm entries of the quantized weight formats, W(type, gemm, max_nr, max_nc) for each: the
 * legacy formats' tiles are 4 x 2, the K-quants' 4 x 4 (each level's init names the functions).
 */
#define X86_QUANT_GEMMS(W)                                                                         \
    W(INF_TYPE_Q4_0, gemm_q4_0, 4, 2)                                                              \
    W(INF_TYPE_Q4_1, gemm_q4_1, 4, 2)                                                              \
    W(INF_TYPE_Q5_0, gemm_q5_0, 4, 2)                                                              \
    W(INF_TYPE_Q5_1, gemm_q5_1, 4, 2)                                                              \
    W(INF_TYPE_Q8_0, gemm_q8_0, 4, 2)                                                              \
    W(INF_TYPE_Q2_K, gemm_q2_K, 4, 4)                                                              \
    W(INF_TYPE_Q3_K, gemm_q3_K, 4, 4)                                                              \
    W(INF_TYPE_Q4_K, gemm_q4_K, 4, 4)                                                              \
    W(INF_TYPE_Q5_K, gemm_q5_K, 4, 4)                                                              \
    W(INF_TYPE_Q6_K, gemm_q6_K, 4, 4)

/* Whether T pairs with Q8_1 (it has a min), and the offset subtracted from its levels. */
#define X86_LEG_HAS_MIN(T) ((T) == INF_TYPE_Q4_1 || (T) == INF_TYPE_Q5_1)
#define X86_LEG_OFFSET(T)  ((T) == INF_TYPE_Q4_0 ? 8 : (T) == INF_TYPE_Q5_0 ? 16 : 0)

static INF__ALWAYS_INLINE void x86_leg_tile(const int T, const int NR, const int NC, int64_t nb,
                                            const uint8_t *w, size_t ldw, const uint8_t *a,
                                            size_t lda, float *s, size_t lds)
{
    const size_t wbs = x86_wbytes(T);
    const size_t pf = x86_pf_dist(NR, ldw);
    const size_t abs_ =
        X86_LEG_HAS_MIN(T) ? sizeof(struct inf_block_q8_1) : sizeof(struct inf_block_q8_0);
    const size_t aqs = X86_LEG_HAS_MIN(T) ? 4 : 2; /* offset of qs in the activation block */
    __m256 acc[4][4], macc[4][4];
    for (int r = 0; r < NR; r++)
        for (int c = 0; c < NC; c++)
            acc[r][c] = macc[r][c] = _mm256_setzero_ps();
    for (int64_t ib = 0; ib < nb; ib++) {
        /* the activation side first, shared by the NR rows */
        __m256i y[4], oy[4];
        __m256 dy[4], sy[4];
        for (int c = 0; c < NC; c++) {
            const uint8_t *ab = a + (size_t)c * lda + (size_t)ib * abs_;
            dy[c] = x86_f16_bcast(ab);
            y[c] = x86_load256(ab + aqs);
            if (X86_LEG_OFFSET(T))
                oy[c] = _mm256_maddubs_epi16(_mm256_set1_epi8(X86_LEG_OFFSET(T)), y[c]);
            if (X86_LEG_HAS_MIN(T))
                sy[c] = x86_f16_bcast(ab + 2);
        }
        for (int r = 0; r < NR; r++) {
            const uint8_t *wb = w + (size_t)r * ldw + (size_t)ib * wbs;
            _mm_prefetch((const char *)wb + pf, X86_PF_HINT);
            const __m256i xq = x86_leg_unpack(T, wb);
            const __m256 dx = x86_leg_scale(T, wb);
            const __m256i ax = X86_LEG_SIGNED(T) ? _mm256_sign_epi8(xq, xq) : xq;
            for (int c = 0; c < NC; c++) {
                __m256i p16;
                if (X86_LEG_SIGNED(T))
                    p16 = _mm256_maddubs_epi16(ax, _mm256_sign_epi8(y[c], xq));
                else
                    p16 = _mm256_maddubs_epi16(ax, y[c]);
                if (X86_LEG_OFFSET(T))
                    p16 = _mm256_sub_epi16(p16, oy[c]);
                const __m256 p = _mm256_cvtepi32_ps(x86_sum_pairs(p16));
                acc[r][c] = _mm256_fmadd_ps(p, _mm256_mul_ps(dx, dy[c]), acc[r][c]);
                if (X86_LEG_HAS_MIN(T)) /* m * s, once per block: in one lane of eight */
                    macc[r][c] = _mm256_fmadd_ps(x86_f16_bcast(wb + 2), sy[c], macc[r][c]);
            }
        }
    }
    for (int r = 0; r < NR; r++)
        for (int c = 0; c < NC; c++) {
            float m = 0;
            if (X86_LEG_HAS_MIN(T))
                m = _mm256_cvtss_f32(macc[r][c]);
            s[(size_t)c * lds + (size_t)r] = x86_hsum_ps(acc[r][c]) + m;
        }
}

/* ---- K-quants against Q8_K ----------------------------------------------------------------- */

/* Shuffle masks that broadcast int16 element k (0..7) of a 128-bit lane to all 8 of its words. */
static inline __m256i x86_splat16_mask(int k)
{
    const int lo = 2 * k, hi = 2 * k + 1;
    const int16_t v = (int16_t)(lo | (hi << 8));
    return _mm256_set1_epi16(v);
}

/* Pairs of bsums (groups of 32) as 8 int16. */
static inline __m128i x86_bsum_pairs(const int16_t *bsums)
{
    return _mm_hadd_epi16(x86_load128(bsums), x86_load128(bsums + 8));
}

/*
 * The 8 scales and 8 mins (6-bit) of a Q4_K/Q5_K block as int16: scales in each 128-bit lane of
 * *sc, mins as a 128-bit vector. q points at the 12 scale bytes; the 4 bytes after them (the
 * first quants of the block) are read too and ignored. For j < 4 sc = s[j] & 63, m = s[j+4] & 63;
 * for j >= 4 sc = (s[j+4] & 15) | (s[j-4] >> 6) << 4, m = (s[j+4] >> 4) | (s[j] >> 6) << 4.
 */
static inline void x86_k4_scales(const uint8_t *q, __m256i *sc, __m128i *mins)
{
    const __m128i v = x86_load128(q);
    /* [s0-3 s8-11 s4-7 s8-11]: the bytes holding the low bits of sc0-3, sc4-7, m0-3, m4-7 */
    const __m128i p =
        _mm_shuffle_epi8(v, _mm_setr_epi8(0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7, 8, 9, 10, 11));
    /* the bytes whose top 2 bits are the high bits of sc4-7 and m4-7 (zero elsewhere) */
    const __m128i t =
        _mm_shuffle_epi8(v, _mm_setr_epi8(-1, -1, -1, -1, 0, 1, 2, 3, -1, -1, -1, -1, 4, 5, 6, 7));
    const __m128i ph = _mm_and_si128(_mm_srli_epi16(p, 4), _mm_set1_epi8(0x0f));
    __m128i lo = _mm_blend_epi32(p, ph, 0x8); /* m4-7 take the high nibbles */
    lo = _mm_and_si128(
        lo, _mm_setr_epi8(63, 63, 63, 63, 15, 15, 15, 15, 63, 63, 63, 63, 15, 15, 15, 15));
    const __m128i hi = _mm_and_si128(_mm_srli_epi16(t, 2), _mm_set1_epi8(0x30));
    const __m128i r = _mm_or_si128(lo, hi); /* sc0-7, m0-7 */
    *sc = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(r));
    *mins = _mm_cvtepu8_epi16(_mm_srli_si128(r, 8));
}

/*
 * The 16 signed 6-bit scales of a Q3_K block (sc - 32) as bytes. q points at the 12 scale bytes;
 * the 4 bytes before them (the block's last quants) are read too, never bytes past the block.
 * With the scale bytes as little-endian words u0, u1, u2: dword k of the result is
 * ((k < 2 ? u_k : u_{k-2} >> 4) & 0x0f0f0f0f) | (((u2 >> 2k) & 0x03030303) << 4).
 */
static inline __m128i x86_q3k_scales(const uint8_t *q)
{
    const __m128i v = _mm_srli_si128(x86_load128(q - 4), 4); /* u0 u1 u2 0 */
    const __m128i a = _mm_shuffle_epi32(v, 0x44);            /* u0 u1 u0 u1 */
    const __m128i b = _mm_shuffle_epi32(v, 0xaa);            /* u2 u2 u2 u2 */
    const __m128i lo =
        _mm_and_si128(_mm_srlv_epi32(a, _mm_setr_epi32(0, 0, 4, 4)), _mm_set1_epi8(0x0f));
    const __m128i hi =
        _mm_and_si128(_mm_srlv_epi32(b, _mm_setr_epi32(0, 2, 4, 6)), _mm_set1_epi8(0x03));
    return _mm_sub_epi8(_mm_or_si128(lo, _mm_slli_epi32(hi, 4)), _mm_set1_epi8(32));
}

/* Int16 scale vector for the two groups of 16 (g, g+1) that one 32-byte chunk covers. */
static inline __m256i x86_scale_pair(__m128i sc8, int g)
{
    const __m128i m =
        _mm_set_epi8((char)(g + 1), (char)(g + 1), (char)(g + 1), (char)(g + 1), (char)(g + 1),
                     (char)(g + 1), (char)(g + 1), (char)(g + 1), (char)g, (char)g, (char)g,
                     (char)g, (char)g, (char)g, (char)g, (char)g);
    return _mm256_cvtepi8_epi16(_mm_shuffle_epi8(sc8, m));
}

/*
 * A K-quant superblock, decoded one 32-value chunk at a time so that little stays live: the head
 * holds the scales (as int16), the offsets' or mins' terms and the high-bit planes; chunk k
 * (values 32k..32k+31) comes out as 32 unsigned levels plus the int16 scale vector for its
 * groups. The activation side adds either off * sum_g sc_g * bsum_g (Q3_K: 4, Q6_K: 32; levels
 * are stored offset) or dmin * sum_g m_g * bsum_g (Q2_K, Q4_K, Q5_K).
 */
struct x86_khead {
    float d, dmin;
    __m128i sc8;    /* Q2_K, Q3_K, Q6_K: 16 scales as bytes */
    __m256i sc16;   /* Q4_K, Q5_K: 8 scales as int16, in both 128-bit lanes */
    __m256i mins16; /* Q2_K: 16 mins; Q4_K/Q5_K: 8 mins (low lane); Q3_K/Q6_K: off * sc */
    __m256i hbits;  /* Q3_K hmask, Q5_K qh */
};

static INF__ALWAYS_INLINE void x86_k_head(const int T, const uint8_t *blk, struct x86_khead *h)
{
    switch (T) {
    case INF_TYPE_Q2_K: {
        const struct inf_block_q2_K *x = (const void *)blk;
        h->d = x86_f16(x->d);
        h->dmin = x86_f16(x->dmin);
        const __m128i s8 = x86_load128(x->scales);
        h->sc8 = _mm_and_si128(s8, _mm_set1_epi8(0x0f));
        h->mins16 = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(s8, 4), _mm_set1_epi8(0x0f)));
        break;
    }
    case INF_TYPE_Q3_K: {
        const struct inf_block_q3_K *x = (const void *)blk;
        h->d = x86_f16(x->d);
        h->sc8 = x86_q3k_scales(x->scales);
        h->mins16 = _mm256_slli_epi16(_mm256_cvtepi8_epi16(h->sc8), 2); /* 4 * sc */
        h->hbits = x86_load256(x->hmask);
        break;
    }
    case INF_TYPE_Q4_K:
    case INF_TYPE_Q5_K: {
        const struct inf_block_q4_K *x = (const void *)blk; /* same head as Q5_K */
        h->d = x86_f16(x->d);
        h->dmin = x86_f16(x->dmin);
        __m128i mins;
        x86_k4_scales(x->scales, &h->sc16, &mins);
        h->mins16 = _mm256_zextsi128_si256(mins);
        if (T == INF_TYPE_Q5_K)
            h->hbits = x86_load256(((const struct inf_block_q5_K *)(const void *)blk)->qh);
        break;
    }
    default: { /* Q6_K */
        const struct inf_block_q6_K *x = (const void *)blk;
        h->d = x86_f16(x->d);
        h->sc8 = x86_load128(x->scales);
        h->mins16 = _mm256_slli_epi16(_mm256_cvtepi8_epi16(h->sc8), 5); /* 32 * sc */
        break;
    }
    }
}

static INF__ALWAYS_INLINE __m256i x86_k_chunk(const int T, const uint8_t *blk,
                                              const struct x86_khead *h, const int k, __m256i *sc)
{
    const __m256i m3 = _mm256_set1_epi8(3), m4 = _mm256_set1_epi8(0x0f);
    const __m256i one = _mm256_set1_epi8(1);
    switch (T) {
    case INF_TYPE_Q2_K: {
        const struct inf_block_q2_K *x = (const void *)blk;
        *sc = x86_scale_pair(h->sc8, 2 * k);
        return _mm256_and_si256(_mm256_srli_epi16(x86_load256(x->qs + 32 * (k / 4)), 2 * (k % 4)),
                                m3);
    }
    case INF_TYPE_Q3_K: {
        const struct inf_block_q3_K *x = (const void *)blk;
        *sc = x86_scale_pair(h->sc8, 2 * k);
        const __m256i lo =
            _mm256_and_si256(_mm256_srli_epi16(x86_load256(x->qs + 32 * (k / 4)), 2 * (k % 4)), m3);
        const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(h->hbits, k), one);
        return _mm256_or_si256(lo, _mm256_slli_epi16(hi, 2));
    }
    case INF_TYPE_Q4_K:
    case INF_TYPE_Q5_K: {
        const uint8_t *qs = T == INF_TYPE_Q4_K
                                ? ((const struct inf_block_q4_K *)(const void *)blk)->qs
                                : ((const struct inf_block_q5_K *)(const void *)blk)->qs;
        *sc = _mm256_shuffle_epi8(h->sc16, x86_splat16_mask(k));
        const __m256i b = x86_load256(qs + 32 * (k / 2));
        __m256i q =
            (k & 1) ? _mm256_and_si256(_mm256_srli_epi16(b, 4), m4) : _mm256_and_si256(b, m4);
        if (T == INF_TYPE_Q5_K)
            q = _mm256_or_si256(
                q, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h->hbits, k), one), 4));
        return q;
    }
    default: { /* Q6_K: chunk k = half k/4, sub-chunk s = k%4 */
        const struct inf_block_q6_K *x = (const void *)blk;
        const int hf = k / 4, sub = k % 4;
        *sc = x86_scale_pair(h->sc8, 2 * k);
        const __m256i l = x86_load256(x->ql + 64 * hf + 32 * (sub & 1));
        const __m256i lo =
            (sub & 2) ? _mm256_and_si256(_mm256_srli_epi16(l, 4), m4) : _mm256_and_si256(l, m4);
        const __m256i qh = x86_load256(x->qh + 32 * hf);
        const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(qh, 2 * sub), m3);
        return _mm256_or_si256(lo, _mm256_slli_epi16(hi, 4));
    }
    }
}

/*
 * The activation side of a K-quant tile at block ib, shared by its rows: the Q8_K blocks of the NC
 * columns and their group sums bs, the bsums (Q2_K, Q3_K, Q6_K) or their pairs (Q4_K, Q5_K).
 */
static INF__ALWAYS_INLINE void x86_k_act(const int T, const int NC, const uint8_t *a, size_t lda,
                                         int64_t ib, const struct inf_block_q8_K *y[4],
                                         __m256i bs[4])
{
    for (int c = 0; c < NC; c++) {
        y[c] = (const void *)(a + (size_t)c * lda + (size_t)ib * sizeof(struct inf_block_q8_K));
        if (T == INF_TYPE_Q4_K || T == INF_TYPE_Q5_K)
            bs[c] = _mm256_zextsi128_si256(x86_bsum_pairs(y[c]->bsums));
        else
            bs[c] = x86_load256(y[c]->bsums);
    }
}

/* Block ib (of wbs bytes) of a weight row, its cache lines prefetched pf bytes ahead. */
static INF__ALWAYS_INLINE const uint8_t *x86_k_block(const uint8_t *row, int64_t ib, size_t wbs,
                                                     size_t pf)
{
    const uint8_t *blk = row + (size_t)ib * wbs;
    for (size_t o = 0; o < wbs; o += 64)
        _mm_prefetch((const char *)blk + o + pf, X86_PF_HINT);
    return blk;
}

static INF__ALWAYS_INLINE void x86_k_tile(const int T, const int NR, const int NC, int64_t nb,
                                          const uint8_t *w, size_t ldw, const uint8_t *a,
                                          size_t lda, float *s, size_t lds)
{
    const size_t wbs = x86_wbytes(T);
    const size_t pf = x86_pf_dist(NR, ldw);
    __m256 acc[4][4];
    for (int r = 0; r < NR; r++)
        for (int c = 0; c < NC; c++)
            acc[r][c] = _mm256_setzero_ps();
    for (int64_t ib = 0; ib < nb; ib++) {
        const struct inf_block_q8_K *y[4];
        __m256i bs[4];
        x86_k_act(T, NC, a, lda, ib, y, bs);
        for (int r = 0; r < NR; r++) {
            const uint8_t *blk = x86_k_block(w + (size_t)r * ldw, ib, wbs, pf);
            struct x86_khead h;
            x86_k_head(T, blk, &h);
            __m256i sumi[4];
            for (int c = 0; c < NC; c++)
                sumi[c] = _mm256_setzero_si256();
            for (int k = 0; k < 8; k++) {
                __m256i sc;
                const __m256i q = x86_k_chunk(T, blk, &h, k, &sc);
                for (int c = 0; c < NC; c++) {
                    const __m256i p = _mm256_maddubs_epi16(q, x86_load256(y[c]->qs + 32 * k));
                    sumi[c] = _mm256_add_epi32(sumi[c], _mm256_madd_epi16(p, sc));
                }
            }
            for (int c = 0; c < NC; c++) {
                const __m256 dd = _mm256_set1_ps(h.d * y[c]->d);
                if (T == INF_TYPE_Q3_K || T == INF_TYPE_Q6_K) {
                    /* levels are stored with an offset: subtract off * sum_g sc_g * bsum_g */
                    const __m256i off = _mm256_madd_epi16(h.mins16, bs[c]);
                    acc[r][c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(sumi[c], off)),
                                                dd, acc[r][c]);
                } else {
                    const __m256i pm = _mm256_madd_epi16(h.mins16, bs[c]);
                    acc[r][c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sumi[c]), dd, acc[r][c]);
                    acc[r][c] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(pm),
                                                 _mm256_set1_ps(h.dmin * y[c]->d), acc[r][c]);
                }
            }
        }
    }
    for (int r = 0; r < NR; r++)
        for (int c = 0; c < NC; c++)
            s[(size_t)c * lds + (size_t)r] = x86_hsum_ps(acc[r][c]);
}

/* ---- F32 / F16 / BF16 weights against F32 activations ---------------------------------- */

static INF__ALWAYS_INLINE __m256 x86_load_w8(const int T, const uint8_t *w, int64_t i)
{
    if (T == INF_TYPE_F32)
        return _mm256_loadu_ps((const float *)(const void *)w + i);
    if (T == INF_TYPE_F16)
        return _mm256_cvtph_ps(x86_load128((const uint16_t *)(const void *)w + i));
    return _mm256_castsi256_ps(_mm256_slli_epi32(
        _mm256_cvtepu16_epi32(x86_load128((const uint16_t *)(const void *)w + i)), 16));
}

static INF__ALWAYS_INLINE float x86_load_w1(const int T, const uint8_t *w, int64_t i)
{
    if (T == INF_TYPE_F32) {
        float f;
        memcpy(&f, w + 4 * i, 4);
        return f;
    }
    uint16_t h;
    memcpy(&h, w + 2 * i, 2);
    return T == INF_TYPE_F16 ? inf_fp16_to_fp32(h) : inf_bf16_to_fp32(h);
}

static INF__ALWAYS_INLINE void x86_f_tile(const int T, const int NR, const int NC, int64_t n,
                                          const uint8_t *w, size_t ldw, const uint8_t *a,
                                          size_t lda, float *s, size_t lds)
{
    __m256 acc[4][4];
    for (int r = 0; r < NR; r++)
        for (int c = 0; c < NC; c++)
            acc[r][c] = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 wv[4];
        for (int r = 0; r < NR; r++)
            wv[r] = x86_load_w8(T, w + (size_t)r * ldw, i);
        for (int c = 0; c < NC; c++) {
            const __m256 av =
                _mm256_loadu_ps((const float *)(const void *)(a + (size_t)c * lda) + i);
            for (int r = 0; r < NR; r++)
                acc[r][c] = _mm256_fmadd_ps(wv[r], av, acc[r][c]);
        }
    }
    for (int r = 0; r < NR; r++)
        for (int c = 0; c < NC; c++) {
            float sum = x86_hsum_ps(acc[r][c]);
            const float *av = (const float *)(const void *)(a + (size_t)c * lda);
            for (int64_t j = i; j < n; j++)
                sum += x86_load_w1(T, w + (size_t)r * ldw, j) * av[j];
            s[(size_t)c * lds + (size_t)r] = sum;
        }
}

/*
 * The column count cn (1..4) as a constant: CALL(4), CALL(3), CALL(2) or CALL(1), so that each
 * instantiation of a tile keeps its accumulators in registers.
 */
#define X86_WITH_NC4(cn, CALL)                                                                     \
    switch (cn) {                                                                                  \
    case 4:                                                                                        \
        CALL(4);                                                                                   \
        break;                                                                                     \
    case 3:                                                                                        \
        CALL(3);                                                                                   \
        break;                                                                                     \
    case 2:                                                                                        \
        CALL(2);                                                                                   \
        break;                                                                                     \
    default:                                                                                       \
        CALL(1);                                                                                   \
        break;                                                                                     \
    }

/*
 * The dispatcher every tile kernel gets. One activation row (the matrix-vector product): single
 * rows, one after the other. A tile that reads NR rows side by side is NR interleaved streams,
 * with several of them in each 4 KiB page, which the hardware prefetchers follow badly; rows
 * read one after the other are one sequential stream. On Zen 4,
 * one thread, weights streamed from memory (bench-kernels' matrix-vector pass): Q4_K 12.8 -> 15.1
 * GB/s, Q6_K 14.2 -> 18.3 going from 4-row tiles to single rows; the activation side, which the
 * rows of a tile shared, is in L1 anyway. Batches: MRG x MC tiles, the ragged edges with 1-row
 * and 1-column ones. Instantiates TILE(T, nr, nc, ...) for each shape used.
 */
/* The 256-bit tile of the legacy formats, for levels whose own tiles lack a format (MXFP4). */
#define X86_LEG_TILE(T, NR, NC, nb, w, ldw, a, lda, s, lds)                                        \
    x86_leg_tile(T, NR, NC, nb, w, ldw, a, lda, s, lds)

#define X86_GEMM_DISPATCH(name, TILE, T, MRG, MC, NB)                                              \
    X86_GEMM_DISPATCH_MV(name, TILE, T, MRG, MC, NB, 1)
/* The same with MVR rows side by side in the matrix-vector product (1, 2 or 4): for the float
 * rows, whose single-row tile is one FMA chain, each step waiting on the last (Zen 3 at 2.45
 * GHz: 4 cycles per 8 values, 11 GB/s of F16 on one thread); MVR chains hide that latency. Each
 * output keeps its own chain, so the results are the single row's bits. */
#define X86_GEMM_DISPATCH_MV(name, TILE, T, MRG, MC, NB, MVR)                                      \
    static void name(int64_t n, const void *vw, size_t ldw, const void *va, size_t lda, float *s,  \
                     size_t lds, int nr, int nc)                                                   \
    {                                                                                              \
        const uint8_t *w = vw, *a = va;                                                            \
        const int64_t nb = (NB);                                                                   \
        int r = 0;                                                                                 \
        if (nc == 1) {                                                                             \
            for (; (MVR) > 1 && r + (MVR) <= nr; r += (MVR))                                       \
                TILE(T, MVR, 1, nb, w + (size_t)r * ldw, ldw, a, lda, s + r, lds);                 \
            for (; r < nr; r++)                                                                    \
                TILE(T, 1, 1, nb, w + (size_t)r * ldw, ldw, a, lda, s + r, lds);                   \
            return;                                                                                \
        }                                                                                          \
        for (; r + (MRG) <= nr; r += (MRG)) {                                                      \
            int c = 0;                                                                             \
            for (; c + (MC) <= nc; c += (MC))                                                      \
                TILE(T, MRG, MC, nb, w + (size_t)r * ldw, ldw, a + (size_t)c * lda, lda,           \
                     s + (size_t)c * lds + (size_t)r, lds);                                        \
            for (; c < nc; c++)                                                                    \
                TILE(T, MRG, 1, nb, w + (size_t)r * ldw, ldw, a + (size_t)c * lda, lda,            \
                     s + (size_t)c * lds + (size_t)r, lds);                                        \
        }                                                                                          \
        for (; r < nr; r++) {                                                                      \
            int c = 0;                                                                             \
            for (; c + (MC) <= nc; c += (MC))                                                      \
                TILE(T, 1, MC, nb, w + (size_t)r * ldw, ldw, a + (size_t)c * lda, lda,             \
                     s + (size_t)c * lds + (size_t)r, lds);                                        \
            for (; c < nc; c++)                                                                    \
                TILE(T, 1, 1, nb, w + (size_t)r * ldw, ldw, a + (size_t)c * lda, lda,              \
                     s + (size_t)c * lds + (size_t)r, lds);                                        \
        }                                                                                          \
    }

#endif
