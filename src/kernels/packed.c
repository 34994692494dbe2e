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
    if (!k->packed[type] || n_rows <= 0 || n_rows % INF__X16_ROWS != 0 || n <= 0 || n % 32 != 0)
        return type;
    return (enum inf_type)k->packed[type];
}

bool inf_weight_pack(enum inf_type type, enum inf_type to, void *w, size_t row_bytes,
                     int64_t n_rows, int64_t n)
{
    if (type != INF_TYPE_Q4_0 || to != INF_TYPE_Q4_0_X16 || !w || n_rows <= 0 ||
        n_rows % INF__X16_ROWS != 0 || n <= 0 || n % 32 != 0 ||
        row_bytes != inf_type_row_size(INF_TYPE_Q4_0, n))
        return false;
    const int64_t nb = n / 32;
    const size_t group = INF__X16_ROWS * row_bytes;
    uint8_t *tmp = malloc(group);
    if (!tmp)
        return false;
    for (int64_t g = 0; g < n_rows / INF__X16_ROWS; g++) {
        uint8_t *dst = (uint8_t *)w + (size_t)g * group;
        memcpy(tmp, dst, group);
        for (int64_t b = 0; b < nb; b++) {
            uint8_t *pb = dst + (size_t)b * INF__X16_BLOCK;
            for (int r = 0; r < INF__X16_ROWS; r++) {
                const uint8_t *blk =
                    tmp + (size_t)r * row_bytes + (size_t)b * sizeof(struct inf_block_q4_0);
                memcpy(pb + 2 * r, blk, 2); /* d */
                for (int j = 0; j < 4; j++)
                    memcpy(pb + 32 + 64 * j + 4 * r, blk + 2 + 4 * j, 4);
            }
        }
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
