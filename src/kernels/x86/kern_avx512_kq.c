/*
 * kern_avx512_kq.c - AVX-512 panel kernels for the K-quants (Q4_K, Q5_K, Q6_K) times Q8_K,
 * for batches: the rows of a chunk are repacked 16 at a time into interleaved panels so that
 * one 4-byte activation broadcast feeds all 16 rows, as the Q4_0/Q8_0 panels in kern_avx512.c.
 * Compiled with the AVX-512 flags; registered by inf__kern_init_avx512 through
 * inf__kern_init_avx512_kq. Needs only AVX-512 F/BW/VL/DQ (no VNNI).
 *
 * A panel superblock (kq_sb_bytes) holds, for 16 rows of one 256-value superblock:
 *   64 vectors of levels: vector 8j + g = values 32j + 4g .. 32j + 4g + 3 (sub-block j, group g)
 *      of rows 0..15 in its sixteen 32-bit lanes, as unsigned bytes (Q4_K 0..15, Q5_K 0..31);
 *   8 scale vectors: vector j has scale j of row r twice (int16) in lane r;
 *   4 min vectors: vector k has (min 2k, min 2k+1) of row r (int16) in lane r;
 *   16 floats d, then 16 floats dmin.
 * Per token and sub-block, VPMADDUBSW of a level vector with the broadcast activation bytes gives
 * int16 pair sums; Q4_K adds the 8 groups of a sub-block as int16 (each lane at most
 * 8 * 2 * 15 * 128 = 30720 < 32768), Q5_K adds 4 (4 * 2 * 31 * 128 = 31744), so the sums are exact;
 * VPMADDWD with the scale vector widens them to int32. The mins use the activations' sub-block
 * sums (pairs of Q8_K bsums, at most 32 * 128 = 4096 in magnitude) in one VPMADDWD per two
 * sub-blocks. dot = d * yd * sum(sc * q.a) - dmin * yd * sum(min * bsum), as the reference.
 * Q6_K: the 16 groups of 16 values have 16 signed 8-bit scale vectors (vector index 4j + g for
 * values 16j + 4g..), 2 groups summed as int16 (2 * 2 * 63 * 128 = 32256); its level offset 32
 * is the "min": 8 vectors of (32 sc 2k, 32 sc 2k+1) against the Q8_K bsums, and no dmin, so
 * dot = d * yd * (sum(sc * q.a) - sum(32 sc * bsum)). Its level vector 32h + 8s + g holds
 * values 128h + 32s + 4g.. (the same order as the values).
 */
#ifdef INFERNO_X86

#include <pthread.h>
#include <stdlib.h>

#include "kernels/x86/kq_panel.h"

/*
 * pshufb controls picking, in every 32-bit lane, its bytes a and b as the two int16 of the
 * lane: zk_bytes puts them in the high bytes (b << 8, for an arithmetic shift after),
 * zk_bytes0 in the low bytes (zero-extended).
 */
static INF__ALWAYS_INLINE __m512i zk_bytes(int a, int b)
{
    return _mm512_or_si512(
        _mm512_set1_epi32((int)(0x80u | (uint32_t)a << 8 | 0x80u << 16 | (uint32_t)b << 24)),
        _mm512_set4_epi32(12 << 8 | 12 << 24, 8 << 8 | 8 << 24, 4 << 8 | 4 << 24, 0));
}
static INF__ALWAYS_INLINE __m512i zk_bytes0(int a, int b)
{
    return _mm512_or_si512(
        _mm512_set1_epi32((int)((uint32_t)a | 0x80u << 8 | (uint32_t)b << 16 | 0x80u << 24)),
        _mm512_set4_epi32(12 | 12 << 16, 8 | 8 << 16, 4 | 4 << 16, 0));
}

/* Repack rows [0, nr) (nr <= 16) of nb superblocks into one panel; rows >= nr are zero. */
static INF__ALWAYS_INLINE void zk_pack(const int T, const uint8_t *w, size_t ldw, int nr,
                                       int64_t nb, uint8_t *dst)
{
    const size_t wbs = x86_wbytes(T), sbb = kq_sb_bytes(T);
    const __mmask16 rm = (__mmask16)((1u << nr) - 1);
    const __m512i idx =
        _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                           _mm512_set1_epi32((int)ldw));
    const __m512i m4 = _mm512_set1_epi8(0x0f), m2 = _mm512_set1_epi8(3),
                  zero = _mm512_setzero_si512();
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *base = w + (size_t)b * wbs;
        uint8_t *pb = dst + (size_t)b * sbb;
        if (T == INF_TYPE_Q6_K) {
            /* values 128h + 32s + 4g..+3: low nibbles (s < 2) or high nibbles (s >= 2) of
             * ql[64h + 32(s & 1) + 4g..], top bits 2s, 2s+1 of qh[32h + 4g..] */
            for (int h = 0; h < 2; h++)
                for (int g = 0; g < 8; g++) {
                    const __m512i l0 = _mm512_mask_i32gather_epi32(
                        zero, rm, idx, base + offsetof(struct inf_block_q6_K, ql) + 64 * h + 4 * g,
                        1);
                    const __m512i l1 = _mm512_mask_i32gather_epi32(
                        zero, rm, idx,
                        base + offsetof(struct inf_block_q6_K, ql) + 64 * h + 32 + 4 * g, 1);
                    const __m512i qh = _mm512_mask_i32gather_epi32(
                        zero, rm, idx, base + offsetof(struct inf_block_q6_K, qh) + 32 * h + 4 * g,
                        1);
                    const __m512i lo[4] = {_mm512_and_si512(l0, m4), _mm512_and_si512(l1, m4),
                                           _mm512_and_si512(_mm512_srli_epi16(l0, 4), m4),
                                           _mm512_and_si512(_mm512_srli_epi16(l1, 4), m4)};
                    for (int q = 0; q < 4; q++) {
                        const __m512i hb =
                            _mm512_and_si512(_mm512_srli_epi16(qh, (unsigned)(2 * q)), m2);
                        _mm512_store_si512(pb + 64 * (32 * h + 8 * q + g),
                                           _mm512_or_si512(lo[q], _mm512_slli_epi16(hb, 4)));
                    }
                }
        } else {
            /* the 4 bytes at qs + 32p + 4g hold group g of sub-blocks 2p (low nibbles) and
             * 2p + 1 (high nibbles) */
            const size_t qs_off = T == INF_TYPE_Q4_K ? offsetof(struct inf_block_q4_K, qs)
                                                     : offsetof(struct inf_block_q5_K, qs);
            for (int p = 0; p < 4; p++)
                for (int g = 0; g < 8; g++) {
                    const __m512i v = _mm512_mask_i32gather_epi32(
                        zero, rm, idx, base + qs_off + 32 * p + 4 * g, 1);
                    __m512i lo = _mm512_and_si512(v, m4);
                    __m512i hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
                    if (T == INF_TYPE_Q5_K) { /* bit 4 of value 32j + l is bit j of qh[l] */
                        const __m512i h = _mm512_mask_i32gather_epi32(
                            zero, rm, idx, base + offsetof(struct inf_block_q5_K, qh) + 4 * g, 1);
                        const __m512i sel = _mm512_set1_epi8((char)(1 << (2 * p)));
                        lo = _mm512_mask_add_epi8(lo, _mm512_test_epi8_mask(h, sel), lo,
                                                  _mm512_set1_epi8(16));
                        hi = _mm512_mask_add_epi8(
                            hi, _mm512_test_epi8_mask(h, _mm512_add_epi8(sel, sel)), hi,
                            _mm512_set1_epi8(16));
                    }
                    _mm512_store_si512(pb + 64 * (16 * p + g), lo);
                    _mm512_store_si512(pb + 64 * (16 * p + 8 + g), hi);
                }
        }
        /* scales, mins (Q6_K: 32 * scale, the offset of its levels), d, dmin: the bytes
         * gathered one dword per row lane, then rearranged within each lane */
        const uint8_t *sp = base + (T == INF_TYPE_Q6_K ? offsetof(struct inf_block_q6_K, scales)
                                                       : offsetof(struct inf_block_q4_K, scales));
        if (T == INF_TYPE_Q6_K) {
            for (int q = 0; q < 4; q++) {
                /* scales 4q..4q+3: int16 b << 8 then >> 8 (scale) or >> 3 (32 * scale) */
                const __m512i v = _mm512_mask_i32gather_epi32(zero, rm, idx, sp + 4 * q, 1);
                for (int j = 0; j < 4; j++)
                    _mm512_store_si512(
                        pb + KQ_LEVELS + 64 * (4 * q + j),
                        _mm512_srai_epi16(_mm512_shuffle_epi8(v, zk_bytes(j, j)), 8));
                for (int k = 0; k < 2; k++)
                    _mm512_store_si512(
                        pb + kq_off_mn(T) + 64 * (2 * q + k),
                        _mm512_srai_epi16(_mm512_shuffle_epi8(v, zk_bytes(2 * k, 2 * k + 1)), 3));
            }
            /* d: the high half of the dword ending the block (no read past it) */
            const __m512i dv = _mm512_mask_i32gather_epi32(
                zero, rm, idx, base + offsetof(struct inf_block_q6_K, d) - 2, 1);
            _mm512_store_ps(pb + kq_off_d(T),
                            _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(dv, 16))));
        } else {
            /* bytes: S0 = s0..3, S1 = s4..7, S2 = s8..11; for j < 4 sc = S0[j] & 63,
             * m = S1[j] & 63; for j >= 4 sc = (S2[j-4] & 15) | (S0[j-4] >> 6) << 4,
             * m = (S2[j-4] >> 4) | (S1[j-4] >> 6) << 4 */
            const __m512i s0 = _mm512_mask_i32gather_epi32(zero, rm, idx, sp, 1);
            const __m512i s1 = _mm512_mask_i32gather_epi32(zero, rm, idx, sp + 4, 1);
            const __m512i s2 = _mm512_mask_i32gather_epi32(zero, rm, idx, sp + 8, 1);
            const __m512i m63 = _mm512_set1_epi8(63), m30 = _mm512_set1_epi8(0x30);
            const __m512i sc[2] = {
                _mm512_and_si512(s0, m63),
                _mm512_or_si512(_mm512_and_si512(s2, m4),
                                _mm512_and_si512(_mm512_srli_epi32(s0, 2), m30))};
            const __m512i mn[2] = {
                _mm512_and_si512(s1, m63),
                _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(s2, 4), m4),
                                _mm512_and_si512(_mm512_srli_epi32(s1, 2), m30))};
            for (int j = 0; j < 8; j++)
                _mm512_store_si512(pb + KQ_LEVELS + 64 * j,
                                   _mm512_shuffle_epi8(sc[j / 4], zk_bytes0(j % 4, j % 4)));
            for (int k = 0; k < 4; k++)
                _mm512_store_si512(
                    pb + kq_off_mn(T) + 64 * k,
                    _mm512_shuffle_epi8(mn[k / 2], zk_bytes0(2 * (k % 2), 2 * (k % 2) + 1)));
            const __m512i dv = _mm512_mask_i32gather_epi32(zero, rm, idx, base, 1);
            _mm512_store_ps(pb + kq_off_d(T), _mm512_cvtph_ps(_mm512_cvtepi32_epi16(dv)));
            _mm512_store_ps(pb + kq_off_d(T) + 64,
                            _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(dv, 16))));
        }
    }
}

static INF__ALWAYS_INLINE void zk_tile(const int T, const int NC, int64_t nb, const uint8_t *pan,
                                       const uint8_t *a, size_t lda, const int16_t *bs, float *s,
                                       size_t lds, int nr)
{
    /* GPS: 4-byte groups per scale; GS: groups summed as int16 before the scale applies (see the
     * exactness bounds above; Q6_K: 2 * 2 * 63 * 128 = 32256) */
    const int ns = kq_n_sc(T), GPS = 64 / ns;
    const int GS = T == INF_TYPE_Q4_K ? 8 : T == INF_TYPE_Q5_K ? 4 : 2;
    const size_t sbb = kq_sb_bytes(T), off_mn = kq_off_mn(T), off_d = kq_off_d(T);
    __m512 acc[KQ_NC];
    for (int c = 0; c < NC; c++)
        acc[c] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *pb = pan + (size_t)b * sbb;
        const struct inf_block_q8_K *y[KQ_NC];
        for (int c = 0; c < NC; c++)
            y[c] = (const void *)(a + (size_t)c * lda + (size_t)b * sizeof(struct inf_block_q8_K));
        __m512i si[KQ_NC];
        for (int c = 0; c < NC; c++)
            si[c] = _mm512_setzero_si512();
        for (int j = 0; j < ns; j++) {
            const __m512i scv = _mm512_load_si512(pb + KQ_LEVELS + 64 * j);
            for (int g0 = 0; g0 < GPS; g0 += GS) {
                __m512i a16[KQ_NC];
                for (int c = 0; c < NC; c++)
                    a16[c] = _mm512_setzero_si512();
                for (int g = g0; g < g0 + GS; g++) {
                    const __m512i wv = _mm512_load_si512(pb + 64 * (GPS * j + g));
                    for (int c = 0; c < NC; c++) {
                        int32_t v;
                        memcpy(&v, y[c]->qs + 4 * (GPS * j + g), 4);
                        a16[c] = _mm512_add_epi16(a16[c],
                                                  _mm512_maddubs_epi16(wv, _mm512_set1_epi32(v)));
                    }
                }
                for (int c = 0; c < NC; c++)
                    si[c] = _mm512_add_epi32(si[c], _mm512_madd_epi16(a16[c], scv));
            }
        }
        const __m512 dx = _mm512_load_ps((const float *)(const void *)(pb + off_d));
        for (int c = 0; c < NC; c++) {
            /* pairs of sums: Q6_K the bsums (groups of 16), else the sub-block sums */
            const int16_t *bc =
                T == INF_TYPE_Q6_K ? y[c]->bsums : bs + 8 * ((size_t)c * (size_t)nb + (size_t)b);
            __m512i sm = _mm512_setzero_si512();
            for (int k = 0; k < ns / 2; k++) {
                int32_t v;
                memcpy(&v, bc + 2 * k, 4);
                sm = _mm512_add_epi32(sm, _mm512_madd_epi16(_mm512_load_si512(pb + off_mn + 64 * k),
                                                            _mm512_set1_epi32(v)));
            }
            const __m512 ydv = _mm512_set1_ps(y[c]->d);
            if (T == INF_TYPE_Q6_K) {
                acc[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(si[c], sm)),
                                         _mm512_mul_ps(dx, ydv), acc[c]);
            } else {
                const __m512 dm = _mm512_load_ps((const float *)(const void *)(pb + off_d + 64));
                acc[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(si[c]), _mm512_mul_ps(dx, ydv), acc[c]);
                acc[c] = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(sm), _mm512_mul_ps(dm, ydv), acc[c]);
            }
        }
    }
    const __mmask16 m = (__mmask16)((1u << nr) - 1);
    for (int c = 0; c < NC; c++)
        _mm512_mask_storeu_ps(s + (size_t)c * lds, m, acc[c]);
}

static INF__ALWAYS_INLINE void zk_tiles(const int T, int64_t nb, int cn, const uint8_t *pan,
                                        const uint8_t *a, size_t lda, const int16_t *bs, float *s,
                                        size_t lds, int rn){
#define ZK_TILE(NC) zk_tile(T, NC, nb, pan, a, lda, bs, s, lds, rn)
    X86_WITH_NC4(cn, ZK_TILE)
#undef ZK_TILE
}

KQ_GEMM(zk_gemm, zk_pack, zk_tiles)

    KQ_PANELS(zk_gemm, ldw <= INT32_MAX / 16) /* (the gathers' offsets are 32-bit) */

    void inf__kern_init_avx512_kq(struct inf__kern *k)
{
    kq_register(k, gemm_q4_K_panel, gemm_q5_K_panel, gemm_q6_K_panel);
}

#else
typedef int inf__kern_avx512_kq_unused; /* ISO C: no empty translation units */
#endif
