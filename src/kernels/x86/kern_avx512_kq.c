/*
 * kern_avx512_kq.c - AVX-512 panel kernels for the K-quants (Q4_K, Q5_K) times Q8_K activations,
 * for batches: the rows of a chunk are repacked 16 at a time into interleaved panels so that
 * one 4-byte activation broadcast feeds all 16 rows, as the Q4_0/Q8_0 panels in kern_avx512.c.
 * Compiled with the AVX-512 flags; registered by inf__kern_init_avx512 through
 * inf__kern_init_avx512_kq. Needs only AVX-512 F/BW/VL/DQ (no VNNI).
 *
 * A panel superblock (zk_sb_bytes) holds, for 16 rows of one 256-value superblock:
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
 */
#ifdef INFERNO_X86

#include <pthread.h>
#include <stdlib.h>

#include "kernels/x86/kern_x86.h"

/* tokens per tile: accumulators per token (float, int32, int16) stay in registers */
#define ZK_NC       4
#define ZK_LEVELS   (64 * 64)
#define ZK_SC       (ZK_LEVELS)
#define ZK_MN       (ZK_SC + 8 * 64)
#define ZK_D        (ZK_MN + 4 * 64)
#define ZK_SB_BYTES (ZK_D + 2 * 64)

/* Repack rows [0, nr) (nr <= 16) of nb superblocks into one panel; rows >= nr are zero. */
static INF__ALWAYS_INLINE void zk_pack(const int T, const uint8_t *w, size_t ldw, int nr,
                                       int64_t nb, uint8_t *dst)
{
    const size_t wbs = x86_k_wbytes(T);
    const size_t qs_off = T == INF_TYPE_Q4_K ? offsetof(struct inf_block_q4_K, qs)
                                             : offsetof(struct inf_block_q5_K, qs);
    const __mmask16 rm = (__mmask16)((1u << nr) - 1);
    const __m512i idx =
        _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                           _mm512_set1_epi32((int)ldw));
    const __m512i m4 = _mm512_set1_epi8(0x0f), zero = _mm512_setzero_si512();
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *base = w + (size_t)b * wbs;
        uint8_t *pb = dst + (size_t)b * ZK_SB_BYTES;
        /* levels: the 4 bytes at qs + 32p + 4g hold group g of sub-blocks 2p (low nibbles) and
         * 2p + 1 (high nibbles) */
        for (int p = 0; p < 4; p++)
            for (int g = 0; g < 8; g++) {
                const __m512i v =
                    _mm512_mask_i32gather_epi32(zero, rm, idx, base + qs_off + 32 * p + 4 * g, 1);
                __m512i lo = _mm512_and_si512(v, m4);
                __m512i hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
                if (T == INF_TYPE_Q5_K) { /* bit 4 of value 32j + l is bit j of qh[l] */
                    const __m512i h = _mm512_mask_i32gather_epi32(
                        zero, rm, idx, base + offsetof(struct inf_block_q5_K, qh) + 4 * g, 1);
                    const __m512i sel = _mm512_set1_epi8((char)(1 << (2 * p)));
                    lo = _mm512_mask_add_epi8(lo, _mm512_test_epi8_mask(h, sel), lo,
                                              _mm512_set1_epi8(16));
                    hi = _mm512_mask_add_epi8(hi,
                                              _mm512_test_epi8_mask(h, _mm512_add_epi8(sel, sel)),
                                              hi, _mm512_set1_epi8(16));
                }
                _mm512_store_si512(pb + 64 * (16 * p + g), lo);
                _mm512_store_si512(pb + 64 * (16 * p + 8 + g), hi);
            }
        /* scales, mins, d, dmin per row */
        uint32_t sc[8][16], mn[4][16];
        float d[2][16];
        memset(sc, 0, sizeof(sc));
        memset(mn, 0, sizeof(mn));
        memset(d, 0, sizeof(d));
        for (int r = 0; r < nr; r++) {
            const struct inf_block_q4_K *x = (const void *)(base + (size_t)r * ldw);
            d[0][r] = x86_f16(x->d);
            d[1][r] = x86_f16(x->dmin);
            __m256i s16;
            __m128i m16;
            x86_k4_scales(x->scales, &s16, &m16);
            uint16_t s[8];
            uint32_t m[4];
            _mm_storeu_si128((__m128i *)(void *)s, _mm256_castsi256_si128(s16));
            _mm_storeu_si128((__m128i *)(void *)m, m16);
            for (int j = 0; j < 8; j++)
                sc[j][r] = (uint32_t)s[j] * 0x10001u;
            for (int k = 0; k < 4; k++)
                mn[k][r] = m[k];
        }
        memcpy(pb + ZK_SC, sc, sizeof(sc));
        memcpy(pb + ZK_MN, mn, sizeof(mn));
        memcpy(pb + ZK_D, d, sizeof(d));
    }
}

/* The activations' sub-block sums (8 int16 per token and superblock) for nc tokens. */
static void zk_act(int nc, int64_t nb, const uint8_t *a, size_t lda, int16_t *bs)
{
    for (int c = 0; c < nc; c++)
        for (int64_t b = 0; b < nb; b++) {
            const struct inf_block_q8_K *y =
                (const void *)(a + (size_t)c * lda + (size_t)b * sizeof(struct inf_block_q8_K));
            _mm_storeu_si128((__m128i *)(void *)(bs + 8 * ((size_t)c * (size_t)nb + (size_t)b)),
                             x86_bsum_pairs(y->bsums));
        }
}

static INF__ALWAYS_INLINE void zk_tile(const int T, const int NC, int64_t nb, const uint8_t *pan,
                                       const uint8_t *a, size_t lda, const int16_t *bs, float *s,
                                       size_t lds, int nr)
{
    /* groups summed as int16 before the scale is applied (see the exactness bound above) */
    const int GS = T == INF_TYPE_Q4_K ? 8 : 4;
    __m512 acc[ZK_NC];
    for (int c = 0; c < NC; c++)
        acc[c] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *pb = pan + (size_t)b * ZK_SB_BYTES;
        const uint8_t *yq[ZK_NC];
        for (int c = 0; c < NC; c++)
            yq[c] = a + (size_t)c * lda + (size_t)b * sizeof(struct inf_block_q8_K) +
                    offsetof(struct inf_block_q8_K, qs);
        __m512i si[ZK_NC];
        for (int c = 0; c < NC; c++)
            si[c] = _mm512_setzero_si512();
        for (int j = 0; j < 8; j++) {
            const __m512i scv = _mm512_load_si512(pb + ZK_SC + 64 * j);
            for (int g0 = 0; g0 < 8; g0 += GS) {
                __m512i a16[ZK_NC];
                for (int c = 0; c < NC; c++)
                    a16[c] = _mm512_setzero_si512();
                for (int g = g0; g < g0 + GS; g++) {
                    const __m512i wv = _mm512_load_si512(pb + 64 * (8 * j + g));
                    for (int c = 0; c < NC; c++) {
                        int32_t v;
                        memcpy(&v, yq[c] + 32 * j + 4 * g, 4);
                        a16[c] = _mm512_add_epi16(a16[c],
                                                  _mm512_maddubs_epi16(wv, _mm512_set1_epi32(v)));
                    }
                }
                for (int c = 0; c < NC; c++)
                    si[c] = _mm512_add_epi32(si[c], _mm512_madd_epi16(a16[c], scv));
            }
        }
        const __m512 dx = _mm512_load_ps((const float *)(const void *)(pb + ZK_D));
        const __m512 dm = _mm512_load_ps((const float *)(const void *)(pb + ZK_D + 64));
        for (int c = 0; c < NC; c++) {
            const int16_t *bc = bs + 8 * ((size_t)c * (size_t)nb + (size_t)b);
            __m512i sm = _mm512_setzero_si512();
            for (int k = 0; k < 4; k++) {
                int32_t v;
                memcpy(&v, bc + 2 * k, 4);
                sm = _mm512_add_epi32(sm, _mm512_madd_epi16(_mm512_load_si512(pb + ZK_MN + 64 * k),
                                                            _mm512_set1_epi32(v)));
            }
            float yd;
            memcpy(&yd, yq[c] - offsetof(struct inf_block_q8_K, qs), sizeof(float));
            const __m512 ydv = _mm512_set1_ps(yd);
            acc[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(si[c]), _mm512_mul_ps(dx, ydv), acc[c]);
            acc[c] = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(sm), _mm512_mul_ps(dm, ydv), acc[c]);
        }
    }
    const __mmask16 m = (__mmask16)((1u << nr) - 1);
    for (int c = 0; c < NC; c++)
        _mm512_mask_storeu_ps(s + (size_t)c * lds, m, acc[c]);
}

static INF__ALWAYS_INLINE void zk_gemm(const int T, int64_t n, const uint8_t *w, size_t ldw,
                                       const uint8_t *a, size_t lda, float *s, size_t lds, int nr,
                                       int nc, uint8_t *buf)
{
    const int64_t nb = n / INF_QK_K;
    const int np = (nr + 15) / 16;
    const size_t pan_bytes = (size_t)nb * ZK_SB_BYTES;
    int16_t *bs = (int16_t *)(void *)(buf + (size_t)np * pan_bytes);
    for (int p = 0; p < np; p++)
        zk_pack(T, w + (size_t)p * 16 * ldw, ldw, nr - 16 * p < 16 ? nr - 16 * p : 16, nb,
                buf + (size_t)p * pan_bytes);
    for (int c0 = 0; c0 < nc; c0 += ZK_NC) {
        const int cn = nc - c0 < ZK_NC ? nc - c0 : ZK_NC;
        const uint8_t *ac = a + (size_t)c0 * lda;
        zk_act(cn, nb, ac, lda, bs);
        for (int p = 0; p < np; p++) {
            const uint8_t *pan = buf + (size_t)p * pan_bytes;
            float *sp = s + (size_t)c0 * lds + (size_t)p * 16;
            const int rn = nr - 16 * p < 16 ? nr - 16 * p : 16;
            switch (cn) {
            case 4:
                zk_tile(T, 4, nb, pan, ac, lda, bs, sp, lds, rn);
                break;
            case 3:
                zk_tile(T, 3, nb, pan, ac, lda, bs, sp, lds, rn);
                break;
            case 2:
                zk_tile(T, 2, nb, pan, ac, lda, bs, sp, lds, rn);
                break;
            default:
                zk_tile(T, 1, nb, pan, ac, lda, bs, sp, lds, rn);
                break;
            }
        }
    }
}

/*
 * Scratch for a chunk: its panels, then the activations' sub-block sums for ZK_NC tokens. One
 * grow-only buffer per thread, freed when the thread ends (as the Q4_0/Q8_0 panels' scratch).
 */
struct zk_scratch {
    uint8_t *buf;
    size_t size;
};
static pthread_key_t zk_key;
static pthread_once_t zk_once = PTHREAD_ONCE_INIT;

static void zk_scratch_free(void *p)
{
    struct zk_scratch *sc = p;
    free(sc->buf);
    free(sc);
}

static void zk_key_init(void)
{
    if (pthread_key_create(&zk_key, zk_scratch_free) != 0)
        abort();
}

static uint8_t *zk_scratch(int64_t n, int nr)
{
    const int64_t nb = n / INF_QK_K;
    if (nb <= 0 || nr <= 0)
        return NULL;
    const size_t total = ((size_t)((nr + 15) / 16) * (size_t)nb * ZK_SB_BYTES +
                          (size_t)ZK_NC * (size_t)nb * 8 * sizeof(int16_t) + 63) /
                         64 * 64;
    pthread_once(&zk_once, zk_key_init);
    struct zk_scratch *sc = pthread_getspecific(zk_key);
    if (!sc) {
        sc = calloc(1, sizeof(*sc));
        if (!sc || pthread_setspecific(zk_key, sc) != 0) {
            free(sc);
            return NULL;
        }
    }
    if (sc->size < total) {
        uint8_t *b = aligned_alloc(64, total);
        if (!b)
            return NULL;
        free(sc->buf);
        sc->buf = b;
        sc->size = total;
    }
    return sc->buf;
}

/* The panel entry: falls back to the level's plain gemm when no scratch can be had. */
#define ZK_PANEL(t, T)                                                                             \
    static inf__gemm_fn zk_plain_##t;                                                              \
    static void gemm_##t##_panel(int64_t n, const void *vw, size_t ldw, const void *va,            \
                                 size_t lda, float *s, size_t lds, int nr, int nc)                 \
    {                                                                                              \
        uint8_t *buf = zk_scratch(n, nr);                                                          \
        if (!buf) {                                                                                \
            zk_plain_##t(n, vw, ldw, va, lda, s, lds, nr, nc);                                     \
            return;                                                                                \
        }                                                                                          \
        zk_gemm(T, n, vw, ldw, va, lda, s, lds, nr, nc, buf);                                      \
    }
ZK_PANEL(q4_K, INF_TYPE_Q4_K)
ZK_PANEL(q5_K, INF_TYPE_Q5_K)

void inf__kern_init_avx512_kq(struct inf__kern *k)
{
    zk_plain_q4_K = k->w[INF_TYPE_Q4_K].gemm;
    k->w[INF_TYPE_Q4_K].panel = gemm_q4_K_panel;
    k->w[INF_TYPE_Q4_K].panel_min_nc = 8;
    zk_plain_q5_K = k->w[INF_TYPE_Q5_K].gemm;
    k->w[INF_TYPE_Q5_K].panel = gemm_q5_K_panel;
    k->w[INF_TYPE_Q5_K].panel_min_nc = 8;
}

#else
typedef int inf__kern_avx512_kq_unused; /* ISO C: no empty translation units */
#endif
