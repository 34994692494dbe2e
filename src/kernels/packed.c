/*
 * packed.c - weights repacked at load into the layouts some levels multiply faster
 * (INF_TYPE_Q4_0_X16: see kernels/internal.h), the block sums their activations carry, and the
 * reference product every level falls back to.
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

/* Group g of 16 Q4_0 rows (src, rows row_bytes apart) into dst. */
static void pack_q4_0(const uint8_t *src, size_t row_bytes, int64_t nb, uint8_t *dst)
{
    for (int64_t b = 0; b < nb; b++) {
        uint8_t *pb = dst + (size_t)b * INF__X16_BLOCK;
        for (int r = 0; r < INF__X16_ROWS; r++) {
            const uint8_t *blk =
                src + (size_t)r * row_bytes + (size_t)b * sizeof(struct inf_block_q4_0);
            memcpy(pb + 2 * r, blk, 2); /* d */
            for (int j = 0; j < 4; j++)
                memcpy(pb + 32 + 64 * j + 4 * r, blk + 2 + 4 * j, 4);
        }
    }
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

bool inf_weight_pack(enum inf_type type, enum inf_type to, void *w, size_t row_bytes,
                     int64_t n_rows, int64_t n)
{
    const bool q4_0 = type == INF_TYPE_Q4_0 && to == INF_TYPE_Q4_0_X16;
    const bool q4_K = type == INF_TYPE_Q4_K && to == INF_TYPE_Q4_K_X16;
    const int64_t blk = q4_0 ? 32 : INF_QK_K;
    if ((!q4_0 && !q4_K) || !w || n_rows <= 0 || n_rows % INF__X16_ROWS != 0 || n <= 0 ||
        n % blk != 0 || row_bytes != inf_type_row_size(type, n))
        return false;
    const size_t group = INF__X16_ROWS * row_bytes;
    uint8_t *tmp = malloc(group);
    if (!tmp)
        return false;
    for (int64_t g = 0; g < n_rows / INF__X16_ROWS; g++) {
        uint8_t *dst = (uint8_t *)w + (size_t)g * group;
        memcpy(tmp, dst, group);
        if (q4_0)
            pack_q4_0(tmp, row_bytes, n / blk, dst);
        else
            pack_q4_K(tmp, row_bytes, n / blk, dst);
    }
    free(tmp);
    return true;
}

bool inf__type_act_sums(enum inf_type t)
{
    return t == INF_TYPE_Q4_0_X16;
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

void inf__gemm_ref_q4_0_x16(int64_t n, const void *vw, size_t ldw, const void *va, size_t lda,
                            float *s, size_t lds, int nr, int nc)
{
    (void)ldw;
    const int64_t nb = n / 32;
    const size_t so = inf__x16_sums_offset(n);
    const uint8_t *w = vw, *a = va;
    for (int c = 0; c < nc; c++) {
        const uint8_t *ac = a + (size_t)c * lda;
        const int32_t *sums = (const int32_t *)(const void *)(ac + so);
        for (int r = 0; r < nr; r++) {
            float acc = 0.0f;
            for (int64_t b = 0; b < nb; b++) {
                const uint8_t *pb = w + (size_t)b * INF__X16_BLOCK;
                const uint8_t *y = ac + (size_t)b * sizeof(struct inf_block_q8_0);
                inf_fp16 hx, hy;
                memcpy(&hx, pb + 2 * r, 2);
                memcpy(&hy, y, 2);
                int32_t dot = sums[b];
                for (int j = 0; j < 4; j++)
                    for (int k = 0; k < 4; k++) {
                        const uint8_t q = pb[32 + 64 * j + 4 * r + k];
                        dot += (q & 0x0f) * (int8_t)y[2 + 4 * j + k] +
                               (q >> 4) * (int8_t)y[2 + 16 + 4 * j + k];
                    }
                acc = fmaf((float)dot, inf_fp16_to_fp32(hx) * inf_fp16_to_fp32(hy), acc);
            }
            s[(size_t)c * lds + (size_t)r] = acc;
        }
    }
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

void inf__gemm_ref_q4_K_x16(int64_t n, const void *vw, size_t ldw, const void *va, size_t lda,
                            float *s, size_t lds, int nr, int nc)
{
    (void)ldw;
    const int64_t nsb = n / INF_QK_K;
    const uint8_t *w = vw, *a = va;
    for (int c = 0; c < nc; c++) {
        const uint8_t *ac = a + (size_t)c * lda;
        for (int r = 0; r < nr; r++) {
            float acc = 0.0f, accm = 0.0f;
            for (int64_t b = 0; b < nsb; b++) {
                const uint8_t *pb = w + (size_t)b * INF__K16_SB;
                const struct inf_block_q8_K *y =
                    (const void *)(ac + (size_t)b * sizeof(struct inf_block_q8_K));
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
                acc = fmaf((float)sumi, inf_fp16_to_fp32(hd) * y->d, acc);
                accm = fmaf((float)summ, inf_fp16_to_fp32(hm) * y->d, accm);
            }
            s[(size_t)c * lds + (size_t)r] = acc - accm;
        }
    }
}
