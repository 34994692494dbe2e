/*
 * blocks.h - the on-disk block layouts of the quantized tensor formats, bit for bit as ggml
 * writes them into GGUF files (ggml-common.h). Every struct is packed by construction (its
 * members need no padding) and a static_assert pins its size, so a layout change is a build
 * error rather than a silently corrupt model.
 *
 * Notation: a block holds QK values; d is the scale (IEEE binary16 unless noted), m/dmin the
 * offset; "nibble j" is the low (j < 16) or high (j >= 16) half of qs[j % 16].
 */
#ifndef INFERNO_KERNELS_BLOCKS_H
#define INFERNO_KERNELS_BLOCKS_H

#include <assert.h>
#include <stdint.h>

typedef uint16_t inf_fp16; /* IEEE 754 binary16 bits */
typedef uint16_t inf_bf16; /* bfloat16 bits: the top half of a binary32 */

#define INF_QK4_0        32
#define INF_QK4_1        32
#define INF_QK5_0        32
#define INF_QK5_1        32
#define INF_QK8_0        32
#define INF_QK8_1        32
#define INF_QK_K         256
#define INF_K_SCALE_SIZE 12

/* Q4_0: x = d * (q - 8), q in [0, 15]. qs[j] = q[j] | q[j + 16] << 4. 4.5 bits/weight. */
struct inf_block_q4_0 {
    inf_fp16 d;
    uint8_t qs[INF_QK4_0 / 2];
};
static_assert(sizeof(struct inf_block_q4_0) == 18, "q4_0 block layout");

/* Q4_1: x = d * q + m, q in [0, 15]; qs packed as Q4_0. */
struct inf_block_q4_1 {
    inf_fp16 d;
    inf_fp16 m;
    uint8_t qs[INF_QK4_1 / 2];
};
static_assert(sizeof(struct inf_block_q4_1) == 20, "q4_1 block layout");

/* Q5_0: x = d * (q - 16), q in [0, 31]: low 4 bits in qs as Q4_0, bit 4 of q[j] is bit j of
 * qh (read as a little-endian uint32). */
struct inf_block_q5_0 {
    inf_fp16 d;
    uint8_t qh[4];
    uint8_t qs[INF_QK5_0 / 2];
};
static_assert(sizeof(struct inf_block_q5_0) == 22, "q5_0 block layout");

/* Q5_1: x = d * q + m, q in [0, 31]; qh/qs as Q5_0. */
struct inf_block_q5_1 {
    inf_fp16 d;
    inf_fp16 m;
    uint8_t qh[4];
    uint8_t qs[INF_QK5_1 / 2];
};
static_assert(sizeof(struct inf_block_q5_1) == 24, "q5_1 block layout");

/* MXFP4 (OCP microscaling): x = 2^(e - 128) * v(q), v the FP4 E2M1 values doubled
 * {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12}, q packed as Q4_0. 4.25 bits/weight.
 * Dot products with Q8_0 activations. */
#define INF_QK_MXFP4 32
struct inf_block_mxfp4 {
    uint8_t e; /* E8M0 shared exponent */
    uint8_t qs[INF_QK_MXFP4 / 2];
};
static_assert(sizeof(struct inf_block_mxfp4) == 17, "mxfp4 block layout");

/* Q8_0: x = d * q, q in [-127, 127]. Also the activation format of Q4_0, Q5_0 and Q8_0. */
struct inf_block_q8_0 {
    inf_fp16 d;
    int8_t qs[INF_QK8_0];
};
static_assert(sizeof(struct inf_block_q8_0) == 34, "q8_0 block layout");

/* Q8_1: Q8_0 plus s = d * sum(qs) (binary16); the activation format of Q4_1 and Q5_1. */
struct inf_block_q8_1 {
    inf_fp16 d;
    inf_fp16 s;
    int8_t qs[INF_QK8_1];
};
static_assert(sizeof(struct inf_block_q8_1) == 36, "q8_1 block layout");

/*
 * Q2_K: 256 values in 16 groups of 16; x = d * sc * q - dmin * m with q in [0, 3] and sc, m the
 * low and high nibble of scales[group]. qs[32*h + l] holds q[128*h + 32*s + l] in bits 2s..2s+1
 * (h = 0..1, s = 0..3, l = 0..31). 2.625 bits/weight.
 */
struct inf_block_q2_K {
    uint8_t scales[INF_QK_K / 16];
    uint8_t qs[INF_QK_K / 4];
    inf_fp16 d;
    inf_fp16 dmin;
};
static_assert(sizeof(struct inf_block_q2_K) == 84, "q2_K block layout");

/*
 * Q3_K: 16 groups of 16; x = d * (sc - 32) * (q - 4), q in [0, 7]. The low 2 bits of q are packed
 * as in Q2_K; bit 2 of q[32*b + l] is bit b of hmask[l] (b = 0..7). The 16 6-bit scales: low
 * nibbles in scales[0..7] (group j < 8 low, j >= 8 high nibble of scales[j - 8]), the top 2 bits
 * of group j in bits 2*(j/4) of scales[8 + j%4]. 3.4375 bits/weight.
 */
struct inf_block_q3_K {
    uint8_t hmask[INF_QK_K / 8];
    uint8_t qs[INF_QK_K / 4];
    uint8_t scales[12];
    inf_fp16 d;
};
static_assert(sizeof(struct inf_block_q3_K) == 110, "q3_K block layout");

/*
 * Q4_K: 8 groups of 32; x = d * sc[j] * q - dmin * m[j], q in [0, 15]; sc, m 6-bit, packed in
 * scales[12] (for j < 4: sc = scales[j] & 63, m = scales[j + 4] & 63; for j >= 4: low nibbles in
 * scales[j + 4], top bits in the top 2 bits of scales[j - 4] / scales[j]). qs[32*p + l] holds
 * q[64*p + l] (low nibble) and q[64*p + 32 + l] (high). 4.5 bits/weight.
 */
struct inf_block_q4_K {
    inf_fp16 d;
    inf_fp16 dmin;
    uint8_t scales[INF_K_SCALE_SIZE];
    uint8_t qs[INF_QK_K / 2];
};
static_assert(sizeof(struct inf_block_q4_K) == 144, "q4_K block layout");

/* Q5_K: Q4_K plus a fifth bit: bit 4 of q[32*b + l] is bit b of qh[l]. 5.5 bits/weight. */
struct inf_block_q5_K {
    inf_fp16 d;
    inf_fp16 dmin;
    uint8_t scales[INF_K_SCALE_SIZE];
    uint8_t qh[INF_QK_K / 8];
    uint8_t qs[INF_QK_K / 2];
};
static_assert(sizeof(struct inf_block_q5_K) == 176, "q5_K block layout");

/*
 * Q6_K: 16 groups of 16; x = d * scales[g] * (q - 32), q in [0, 63], scales signed 8-bit. For each
 * half h (128 values): ql[64h + l] = q[l] | q[l + 64] << 4, ql[64h + 32 + l] = q[l + 32] |
 * q[l + 96] << 4 (low nibbles), qh[32h + l] = the top 2 bits of q[l], q[l+32], q[l+64], q[l+96] in
 * bits 0-1, 2-3, 4-5, 6-7 (indices relative to the half). 6.5625 bits/weight.
 */
struct inf_block_q6_K {
    uint8_t ql[INF_QK_K / 2];
    uint8_t qh[INF_QK_K / 4];
    int8_t scales[INF_QK_K / 16];
    inf_fp16 d;
};
static_assert(sizeof(struct inf_block_q6_K) == 210, "q6_K block layout");

/* Q8_K: the activation format of the K-quants; d is binary32, bsums[g] = sum of qs[16g..16g+15]. */
struct inf_block_q8_K {
    float d;
    int8_t qs[INF_QK_K];
    int16_t bsums[INF_QK_K / 16];
};
static_assert(sizeof(struct inf_block_q8_K) == 292, "q8_K block layout");

#endif
