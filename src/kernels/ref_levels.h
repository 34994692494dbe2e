/*
 * ref_levels.h - the integer levels, scales and mins of one block of each weight format, for
 * the reference kernels (plain C; never optimise these). Each bit layout of blocks.h is read
 * here once, and the dequantizers (ref_quants.c) and dot products (ref_dot.c) are written
 * over the unpacked block: x = d * sc * q - dmin * m for every format.
 */
#ifndef INFERNO_KERNELS_REF_LEVELS_H
#define INFERNO_KERNELS_REF_LEVELS_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "inferno/kernels.h"
#include "kernels/blocks.h"
#include "kernels/fp16.h"

/* ---- Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1: 32 values, one scale ------------------------------ */

/* x[j] = d * q[j] (+ m where has_min: Q4_1, Q5_1). */
struct ref_legacy {
    int8_t q[32]; /* the levels, the offset of Q4_0 (8) and Q5_0 (16) taken off */
    float d, m;
    bool has_min;
};

static inline uint32_t ref_load_qh(const uint8_t qh[4])
{
    return (uint32_t)qh[0] | (uint32_t)qh[1] << 8 | (uint32_t)qh[2] << 16 | (uint32_t)qh[3] << 24;
}

/* The nibbles of qs (q[j] low, q[j + 16] high half of qs[j]), bit j of qh as bit 4 of q[j]. */
static inline void ref_nibbles(const uint8_t qs[16], uint32_t qh, int offset, int8_t q[32])
{
    for (int j = 0; j < 16; j++) {
        q[j] = (int8_t)(((qs[j] & 0x0f) | (int)(((qh >> j) & 1u) << 4)) - offset);
        q[j + 16] = (int8_t)(((qs[j] >> 4) | (int)(((qh >> (j + 16)) & 1u) << 4)) - offset);
    }
}

/* Block i of a row of type t (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 or Q8_1). */
static inline void ref_legacy_block(enum inf_type t, const void *row, int64_t i,
                                    struct ref_legacy *b)
{
    b->m = 0.0f;
    b->has_min = t == INF_TYPE_Q4_1 || t == INF_TYPE_Q5_1;
    switch (t) {
    case INF_TYPE_Q4_0: {
        const struct inf_block_q4_0 *x = (const struct inf_block_q4_0 *)row + i;
        ref_nibbles(x->qs, 0, 8, b->q);
        b->d = inf_fp16_to_fp32(x->d);
        break;
    }
    case INF_TYPE_Q4_1: {
        const struct inf_block_q4_1 *x = (const struct inf_block_q4_1 *)row + i;
        ref_nibbles(x->qs, 0, 0, b->q);
        b->d = inf_fp16_to_fp32(x->d);
        b->m = inf_fp16_to_fp32(x->m);
        break;
    }
    case INF_TYPE_Q5_0: {
        const struct inf_block_q5_0 *x = (const struct inf_block_q5_0 *)row + i;
        ref_nibbles(x->qs, ref_load_qh(x->qh), 16, b->q);
        b->d = inf_fp16_to_fp32(x->d);
        break;
    }
    case INF_TYPE_Q5_1: {
        const struct inf_block_q5_1 *x = (const struct inf_block_q5_1 *)row + i;
        ref_nibbles(x->qs, ref_load_qh(x->qh), 0, b->q);
        b->d = inf_fp16_to_fp32(x->d);
        b->m = inf_fp16_to_fp32(x->m);
        break;
    }
    case INF_TYPE_Q8_0: {
        const struct inf_block_q8_0 *x = (const struct inf_block_q8_0 *)row + i;
        memcpy(b->q, x->qs, 32);
        b->d = inf_fp16_to_fp32(x->d);
        break;
    }
    default: { /* Q8_1: its s is no min, the sum of the values */
        const struct inf_block_q8_1 *x = (const struct inf_block_q8_1 *)row + i;
        memcpy(b->q, x->qs, 32);
        b->d = inf_fp16_to_fp32(x->d);
        break;
    }
    }
}

/* ---- Q2_K, Q3_K, Q4_K, Q5_K, Q6_K: 256 values in groups of 16 or 32 ------------------------- */

/* x[k] = d * sc[g] * q[k] (- dmin * m[g] where has_min: Q2_K, Q4_K, Q5_K), g = k / group. */
struct ref_kq {
    int8_t q[INF_QK_K]; /* the levels, the offset of Q3_K (4) and Q6_K (32) taken off */
    int sc[16], m[16];
    int group; /* 16 or 32 values */
    float d, dmin;
    bool has_min;
};

/* Value k (0..255) of the 2-bit planes of Q2_K/Q3_K: bits 2s..2s+1 of qs[32h + l]. */
static inline int ref_q2_at(const uint8_t *qs, int k)
{
    return (qs[32 * (k / 128) + k % 32] >> (2 * ((k % 128) / 32))) & 3;
}

/* Value k of the nibbles of Q4_K/Q5_K: qs[32p + l] holds q[64p + l] (low), q[64p + 32 + l]. */
static inline int ref_q4_at(const uint8_t *qs, int k)
{
    const uint8_t b = qs[32 * (k / 64) + k % 32];
    return ((k / 32) & 1) ? b >> 4 : b & 0x0f;
}

/* The 6-bit scale and min of group j (0..7) of a Q4_K/Q5_K block. */
static inline void ref_scale_min_k4(int j, const uint8_t *q, uint8_t *d, uint8_t *m)
{
    if (j < 4) {
        *d = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *d = (uint8_t)((q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j - 0] >> 6) << 4));
    }
}

/* The 16 signed scales (sc - 32 in [-32, 31]) of a Q3_K block. */
static inline void ref_q3_k_scales(const uint8_t s[12], int8_t out[16])
{
    for (int j = 0; j < 16; j++) {
        const int lo = j < 8 ? (s[j] & 0x0f) : (s[j - 8] >> 4);
        const int hi = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
        out[j] = (int8_t)((lo | (hi << 4)) - 32);
    }
}

static inline void ref_q2_K(const struct inf_block_q2_K *x, struct ref_kq *b)
{
    for (int k = 0; k < INF_QK_K; k++)
        b->q[k] = (int8_t)ref_q2_at(x->qs, k);
    for (int g = 0; g < 16; g++) {
        b->sc[g] = x->scales[g] & 0x0f;
        b->m[g] = x->scales[g] >> 4;
    }
    b->group = 16;
    b->d = inf_fp16_to_fp32(x->d);
    b->dmin = inf_fp16_to_fp32(x->dmin);
}

static inline void ref_q3_K(const struct inf_block_q3_K *x, struct ref_kq *b)
{
    for (int k = 0; k < INF_QK_K; k++)
        b->q[k] = (int8_t)(ref_q2_at(x->qs, k) + 4 * ((x->hmask[k % 32] >> (k / 32)) & 1) - 4);
    int8_t sc[16];
    ref_q3_k_scales(x->scales, sc);
    for (int g = 0; g < 16; g++)
        b->sc[g] = sc[g];
    b->group = 16;
    b->d = inf_fp16_to_fp32(x->d);
}

/* Q4_K, or Q5_K where qh is not NULL (bit 4 of q[32g + l] is bit g of qh[l]). */
static inline void ref_q45_K(inf_fp16 d, inf_fp16 dmin, const uint8_t *scales, const uint8_t *qs,
                             const uint8_t *qh, struct ref_kq *b)
{
    for (int k = 0; k < INF_QK_K; k++)
        b->q[k] = (int8_t)(ref_q4_at(qs, k) + (qh ? 16 * ((qh[k % 32] >> (k / 32)) & 1) : 0));
    for (int g = 0; g < 8; g++) {
        uint8_t sc, m;
        ref_scale_min_k4(g, scales, &sc, &m);
        b->sc[g] = sc;
        b->m[g] = m;
    }
    b->group = 32;
    b->d = inf_fp16_to_fp32(d);
    b->dmin = inf_fp16_to_fp32(dmin);
}

static inline void ref_q6_K(const struct inf_block_q6_K *x, struct ref_kq *b)
{
    for (int k = 0; k < INF_QK_K; k++) {
        const int h = k / 128, r = k % 128, s = r / 32, l = r % 32;
        const uint8_t lb = x->ql[64 * h + 32 * (s & 1) + l];
        const int lo = (s & 2) ? lb >> 4 : lb & 0x0f;
        const int hi = (x->qh[32 * h + l] >> (2 * s)) & 3;
        b->q[k] = (int8_t)((lo | (hi << 4)) - 32);
    }
    for (int g = 0; g < 16; g++)
        b->sc[g] = x->scales[g];
    b->group = 16;
    b->d = inf_fp16_to_fp32(x->d);
}

/* Block i of a row of type t (Q2_K, Q3_K, Q4_K, Q5_K or Q6_K). */
static inline void ref_kq_block(enum inf_type t, const void *row, int64_t i, struct ref_kq *b)
{
    b->dmin = 0.0f;
    b->has_min = t == INF_TYPE_Q2_K || t == INF_TYPE_Q4_K || t == INF_TYPE_Q5_K;
    switch (t) {
    case INF_TYPE_Q2_K:
        ref_q2_K((const struct inf_block_q2_K *)row + i, b);
        break;
    case INF_TYPE_Q3_K:
        ref_q3_K((const struct inf_block_q3_K *)row + i, b);
        break;
    case INF_TYPE_Q4_K: {
        const struct inf_block_q4_K *x = (const struct inf_block_q4_K *)row + i;
        ref_q45_K(x->d, x->dmin, x->scales, x->qs, NULL, b);
        break;
    }
    case INF_TYPE_Q5_K: {
        const struct inf_block_q5_K *x = (const struct inf_block_q5_K *)row + i;
        ref_q45_K(x->d, x->dmin, x->scales, x->qs, x->qh, b);
        break;
    }
    default:
        ref_q6_K((const struct inf_block_q6_K *)row + i, b);
        break;
    }
}

#endif
