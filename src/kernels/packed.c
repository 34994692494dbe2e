/*
 * packed.c - weights repacked at load into the layouts some levels multiply faster
 * (INF_TYPE_Q4_0_X16, _Q4_1_X16, _Q4_K_X16, _Q6_K_X16, _Q8_0_X16: see kernels/internal.h), the
 * block sums their activations carry, and the reference products every level falls back to.
 *
 * Why: a matrix-vector product of plain Q4_0 rows prepares each activation block once per row
 * (its offset and scale), and on CPUs with much bandwidth per core that work, not memory, is the
 * limit (docs/performance.md, Zen 4 and Zen 5 tables). Sixteen rows side by side in one 64-byte
 * vector share every activation load and every per-block step; the group stays one sequential
 * stream of the same bytes (no larger than the rows it replaces), so repacking costs no memory.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/blocks.h"
#include "kernels/fp16.h"
#include "kernels/internal.h"

enum inf_type inf_weight_pack_type(enum inf_type type, int64_t n_rows, int64_t n)
{
    if ((unsigned)type >= INF_TYPE_COUNT)
        return type;
    const struct inf__kern *k = inf__kern();
    const struct inf_type_traits *t = inf_type_get(type);
    if (!k->packed[type] || !t || n_rows <= 0 || n_rows % INF__X16_ROWS != 0 || n <= 0 ||
        n % t->blck_size != 0)
        return type;
    return (enum inf_type)k->packed[type];
}

/* 16 rows of a legacy type into one group: Q4_0 (d, 4 vectors), Q4_1 (d, m, 4 vectors) or Q8_0
 * (d, 8 vectors of the levels + 128); rows row_bytes apart in src. */
static void pack_legacy(enum inf_type t, const uint8_t *src, size_t row_bytes, int64_t nb,
                        uint8_t *dst)
{
    const bool q8 = t == INF_TYPE_Q8_0, q41 = t == INF_TYPE_Q4_1;
    const size_t bs = inf_type_get(t)->type_size, hdr = q41 ? 64 : 32, qoff = q41 ? 4 : 2;
    const size_t bb = q8 ? INF__Q8X16_BLOCK : q41 ? INF__Q41X16_BLOCK : INF__X16_BLOCK;
    const uint8_t flip = q8 ? 0x80 : 0x00;
    for (int64_t b = 0; b < nb; b++) {
        uint8_t *pb = dst + (size_t)b * bb;
        for (int r = 0; r < INF__X16_ROWS; r++) {
            const uint8_t *blk = src + (size_t)r * row_bytes + (size_t)b * bs;
            memcpy(pb + 2 * r, blk, 2); /* d */
            if (q41)
                memcpy(pb + 32 + 2 * r, blk + 2, 2); /* m */
            for (int j = 0; j < (q8 ? 8 : 4); j++)
                for (int k = 0; k < 4; k++)
                    pb[hdr + 64 * j + 4 * r + k] = blk[qoff + 4 * j + k] ^ flip;
        }
    }
}

static void pack_q4_0(const uint8_t *src, size_t row_bytes, int64_t nb, uint8_t *dst)
{
    pack_legacy(INF_TYPE_Q4_0, src, row_bytes, nb, dst);
}

static void pack_q4_1(const uint8_t *src, size_t row_bytes, int64_t nb, uint8_t *dst)
{
    pack_legacy(INF_TYPE_Q4_1, src, row_bytes, nb, dst);
}

static void pack_q8_0(const uint8_t *src, size_t row_bytes, int64_t nb, uint8_t *dst)
{
    pack_legacy(INF_TYPE_Q8_0, src, row_bytes, nb, dst);
}

static void pack_q4_K(const uint8_t *src, size_t row_bytes, int64_t nsb, uint8_t *dst)
{
    for (int64_t b = 0; b < nsb; b++) {
        uint8_t *pb = dst + (size_t)b * INF__K16_SB;
        for (int r = 0; r < INF__X16_ROWS; r++) {
            const struct inf_block_q4_K *x =
                (const void *)(src + (size_t)r * row_bytes +
                               (size_t)b * sizeof(struct inf_block_q4_K));
            memcpy(pb + 2 * r, &x->d, 2);
            memcpy(pb + 32 + 2 * r, &x->dmin, 2);
            for (int k = 0; k < 3; k++)
                memcpy(pb + 64 + 64 * k + 4 * r, x->scales + 4 * k, 4);
            for (int v = 0; v < 32; v++)
                memcpy(pb + 256 + 64 * v + 4 * r, x->qs + 4 * v, 4);
        }
    }
}

static void pack_q6_K(const uint8_t *src, size_t row_bytes, int64_t nsb, uint8_t *dst)
{
    for (int64_t b = 0; b < nsb; b++) {
        uint8_t *pb = dst + (size_t)b * INF__Q6X16_SB;
        for (int r = 0; r < INF__X16_ROWS; r++) {
            const struct inf_block_q6_K *x =
                (const void *)(src + (size_t)r * row_bytes +
                               (size_t)b * sizeof(struct inf_block_q6_K));
            for (int k = 0; k < 4; k++)
                memcpy(pb + 64 * k + 4 * r, x->scales + 4 * k, 4);
            for (int u = 0; u < 32; u++)
                memcpy(pb + 256 + 64 * u + 4 * r, x->ql + 4 * u, 4);
            for (int t = 0; t < 16; t++)
                memcpy(pb + 2304 + 64 * t + 4 * r, x->qh + 4 * t, 4);
            memcpy(pb + 3328 + 2 * r, &x->d, 2);
        }
    }
}

/* Each layout with its source type and the function packing one group of 16 rows. */
static const struct {
    enum inf_type from, to;
    void (*pack)(const uint8_t *src, size_t row_bytes, int64_t n_blocks, uint8_t *dst);
} layouts[] = {
    {INF_TYPE_Q4_0, INF_TYPE_Q4_0_X16, pack_q4_0}, {INF_TYPE_Q4_1, INF_TYPE_Q4_1_X16, pack_q4_1},
    {INF_TYPE_Q8_0, INF_TYPE_Q8_0_X16, pack_q8_0}, {INF_TYPE_Q4_K, INF_TYPE_Q4_K_X16, pack_q4_K},
    {INF_TYPE_Q6_K, INF_TYPE_Q6_K_X16, pack_q6_K},
};

bool inf_weight_pack(enum inf_type type, enum inf_type to, void *w, size_t row_bytes,
                     int64_t n_rows, int64_t n)
{
    size_t li = 0;
    while (li < sizeof(layouts) / sizeof(layouts[0]) &&
           !(layouts[li].from == type && layouts[li].to == to))
        li++;
    if (li == sizeof(layouts) / sizeof(layouts[0]) || !w || n_rows <= 0 ||
        n_rows % INF__X16_ROWS != 0 || n <= 0 || n % inf_type_get(type)->blck_size != 0 ||
        row_bytes != inf_type_row_size(type, n))
        return false;
    const int64_t blk = inf_type_get(type)->blck_size;
    const size_t group = INF__X16_ROWS * row_bytes;
    uint8_t *tmp = malloc(group);
    if (!tmp)
        return false;
    for (int64_t g = 0; g < n_rows / INF__X16_ROWS; g++) {
        uint8_t *dst = (uint8_t *)w + (size_t)g * group;
        memcpy(tmp, dst, group);
        layouts[li].pack(tmp, row_bytes, n / blk, dst);
    }
    free(tmp);
    return true;
}

bool inf__type_act_sums(enum inf_type t)
{
    return t == INF_TYPE_Q4_0_X16 || t == INF_TYPE_Q8_0_X16;
}

void inf__act_sums_q8_0(void *act_row, int64_t n, int64_t b0, int64_t b1)
{
    const uint8_t *blocks = act_row;
    int32_t *sums = (int32_t *)(void *)((uint8_t *)act_row + inf__x16_sums_offset(n));
    for (int64_t b = b0; b < b1; b++) {
        const int8_t *q = (const int8_t *)(blocks + (size_t)b * sizeof(struct inf_block_q8_0) + 2);
        int32_t s = 0;
        for (int k = 0; k < 32; k++)
            s += q[k];
        sums[b] = -8 * s;
    }
}

/* Q4_0_X16, Q4_1_X16 and Q8_0_X16 (t the plain type): the same loop, their levels, offsets and
 * mins apart. */
static void gemm_ref_legacy_x16(enum inf_type t, int64_t n, const uint8_t *w, const uint8_t *a,
                                size_t lda, float *s, size_t lds, int nr, int nc)
{
    const bool q8 = t == INF_TYPE_Q8_0, q41 = t == INF_TYPE_Q4_1;
    const int64_t nb = n / 32;
    const size_t so = inf__x16_sums_offset(n), hdr = q41 ? 64 : 32, yq = q41 ? 4 : 2;
    const size_t bb = q8 ? INF__Q8X16_BLOCK : q41 ? INF__Q41X16_BLOCK : INF__X16_BLOCK;
    const size_t abs_ = q41 ? sizeof(struct inf_block_q8_1) : sizeof(struct inf_block_q8_0);
    for (int c = 0; c < nc; c++) {
        const uint8_t *ac = a + (size_t)c * lda;
        const int32_t *sums = (const int32_t *)(const void *)(ac + so);
        for (int r = 0; r < nr; r++) {
            float acc = 0.0f;
            for (int64_t b = 0; b < nb; b++) {
                const uint8_t *pb = w + (size_t)b * bb;
                const uint8_t *y = ac + (size_t)b * abs_;
                inf_fp16 hx, hy;
                memcpy(&hx, pb + 2 * r, 2);
                memcpy(&hy, y, 2);
                /* -128 or -8 times sum(y) (Q4_1: no offset, its min below) */
                int32_t dot = q41 ? 0 : q8 ? sums[b] * 16 : sums[b];
                for (int j = 0; j < (q8 ? 8 : 4); j++)
                    for (int k = 0; k < 4; k++) {
                        const uint8_t q = pb[hdr + 64 * j + 4 * r + k];
                        if (q8)
                            dot += q * (int8_t)y[yq + 4 * j + k];
                        else
                            dot += (q & 0x0f) * (int8_t)y[yq + 4 * j + k] +
                                   (q >> 4) * (int8_t)y[yq + 16 + 4 * j + k];
                    }
                acc = fmaf((float)dot, inf_fp16_to_fp32(hx) * inf_fp16_to_fp32(hy), acc);
                if (q41) {
                    inf_fp16 hm, hs;
                    memcpy(&hm, pb + 32 + 2 * r, 2);
                    memcpy(&hs, y + 2, 2);
                    acc = fmaf(inf_fp16_to_fp32(hm), inf_fp16_to_fp32(hs), acc);
                }
            }
            s[(size_t)c * lds + (size_t)r] = acc;
        }
    }
}

void inf__gemm_ref_q4_0_x16(int64_t n, const void *w, size_t ldw, const void *a, size_t lda,
                            float *s, size_t lds, int nr, int nc)
{
    (void)ldw;
    gemm_ref_legacy_x16(INF_TYPE_Q4_0, n, w, a, lda, s, lds, nr, nc);
}

void inf__gemm_ref_q8_0_x16(int64_t n, const void *w, size_t ldw, const void *a, size_t lda,
                            float *s, size_t lds, int nr, int nc)
{
    (void)ldw;
    gemm_ref_legacy_x16(INF_TYPE_Q8_0, n, w, a, lda, s, lds, nr, nc);
}

void inf__gemm_ref_q4_1_x16(int64_t n, const void *w, size_t ldw, const void *a, size_t lda,
                            float *s, size_t lds, int nr, int nc)
{
    (void)ldw;
    gemm_ref_legacy_x16(INF_TYPE_Q4_1, n, w, a, lda, s, lds, nr, nc);
}

/* Scale and min j (0..7) of row r in a Q4_K_X16 superblock: the packed bytes as Q4_K has them. */
static void k16_scale_min(const uint8_t *pb, int r, int j, int *sc, int *m)
{
    uint8_t q[12];
    for (int k = 0; k < 3; k++)
        memcpy(q + 4 * k, pb + 64 + 64 * k + 4 * r, 4);
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4);
        *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}

/* One superblock of row r of a Q4_K_X16 group: acc[0] += sumi d dy, acc[1] += summ dmin dy. */
static void ref_sb_q4_K(const uint8_t *pb, const struct inf_block_q8_K *y, int r, float acc[2])
{
    inf_fp16 hd, hm;
    memcpy(&hd, pb + 2 * r, 2);
    memcpy(&hm, pb + 32 + 2 * r, 2);
    int32_t sumi = 0, summ = 0;
    for (int j = 0; j < 8; j++) {
        int sc, m;
        k16_scale_min(pb, r, j, &sc, &m);
        const int i = j / 2, hi = j % 2;
        int32_t dot = 0;
        for (int g = 0; g < 8; g++)
            for (int k = 0; k < 4; k++) {
                const uint8_t q = pb[256 + 64 * (8 * i + g) + 4 * r + k];
                dot += (hi ? q >> 4 : q & 0x0f) * y->qs[64 * i + 32 * hi + 4 * g + k];
            }
        sumi += sc * dot;
        summ += m * (y->bsums[2 * j] + y->bsums[2 * j + 1]);
    }
    acc[0] = fmaf((float)sumi, inf_fp16_to_fp32(hd) * y->d, acc[0]);
    acc[1] = fmaf((float)summ, inf_fp16_to_fp32(hm) * y->d, acc[1]);
}

/* One superblock of row r of a Q6_K_X16 group: acc[0] += sum_g sc_g (dot_g - 32 bsum_g) d dy. */
static void ref_sb_q6_K(const uint8_t *pb, const struct inf_block_q8_K *y, int r, float acc[2])
{
    inf_fp16 hd;
    memcpy(&hd, pb + 3328 + 2 * r, 2);
    int32_t sumi = 0;
    for (int g = 0; g < 16; g++) {
        const int8_t sc = (int8_t)pb[64 * (g / 4) + 4 * r + g % 4];
        int32_t dot = -32 * y->bsums[g];
        for (int k = 0; k < 16; k++) {
            const int v = 16 * g + k, h = v / 128, s4 = (v % 128) / 32, l = v % 32;
            const int bq = 64 * h + 32 * (s4 & 1) + l, bh = 32 * h + l;
            const uint8_t lb = pb[256 + 64 * (bq / 4) + 4 * r + bq % 4];
            const uint8_t hb = pb[2304 + 64 * (bh / 4) + 4 * r + bh % 4];
            const int q = ((s4 & 2) ? lb >> 4 : lb & 0x0f) | (((hb >> (2 * s4)) & 3) << 4);
            dot += q * y->qs[v];
        }
        sumi += sc * dot;
    }
    acc[0] = fmaf((float)sumi, inf_fp16_to_fp32(hd) * y->d, acc[0]);
}

/* The K-quant layouts: each output acc[0] - acc[1] over the superblocks in order. */
static void gemm_ref_k_x16(int64_t n, const uint8_t *w, size_t sb_bytes, const uint8_t *a,
                           size_t lda, float *s, size_t lds, int nr, int nc,
                           void (*sb)(const uint8_t *, const struct inf_block_q8_K *, int, float *))
{
    for (int c = 0; c < nc; c++)
        for (int r = 0; r < nr; r++) {
            float acc[2] = {0.0f, 0.0f};
            for (int64_t b = 0; b < n / INF_QK_K; b++)
                sb(w + (size_t)b * sb_bytes,
                   (const void *)(a + (size_t)c * lda + (size_t)b * sizeof(struct inf_block_q8_K)),
                   r, acc);
            s[(size_t)c * lds + (size_t)r] = acc[0] - acc[1];
        }
}

void inf__gemm_ref_q4_K_x16(int64_t n, const void *w, size_t ldw, const void *a, size_t lda,
                            float *s, size_t lds, int nr, int nc)
{
    (void)ldw;
    gemm_ref_k_x16(n, w, INF__K16_SB, a, lda, s, lds, nr, nc, ref_sb_q4_K);
}

void inf__gemm_ref_q6_K_x16(int64_t n, const void *w, size_t ldw, const void *a, size_t lda,
                            float *s, size_t lds, int nr, int nc)
{
    (void)ldw;
    gemm_ref_k_x16(n, w, INF__Q6X16_SB, a, lda, s, lds, nr, nc, ref_sb_q6_K);
}
