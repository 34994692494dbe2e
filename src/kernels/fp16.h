/*
 * fp16.h - scalar conversions between binary32 and the 16-bit float formats (internal).
 *
 * These are the ground truth for every SIMD conversion: round to nearest even, NaN stays NaN
 * (quiet), overflow goes to infinity, subnormals are kept. The binary16 rounding is the IEEE one
 * and so matches ggml's GGML_FP32_TO_FP16 and F16C's VCVTPS2PH bit for bit (for NaN inputs ggml
 * returns 0x7e00 with the sign, which is what inf_fp32_to_fp16 does too); the bfloat16 rounding
 * matches ggml's GGML_FP32_TO_BF16 (NaN: the top half with the quiet bit forced).
 */
#ifndef INFERNO_KERNELS_FP16_H
#define INFERNO_KERNELS_FP16_H

#include <stdint.h>
#include <string.h>

#include "kernels/blocks.h"

static inline uint32_t inf__f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof(u));
    return u;
}

static inline float inf__f32_from_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof(f));
    return f;
}

static inline float inf_fp16_to_fp32(inf_fp16 h)
{
    const uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    const uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t mant = h & 0x3ffu;
    if (exp == 0x1f) /* inf, or NaN made quiet (as F16C and ggml do) */
        return inf__f32_from_bits(sign | 0x7f800000u | (mant << 13) | (mant ? 0x400000u : 0));
    if (exp != 0)
        return inf__f32_from_bits(sign | ((exp + 112u) << 23) | (mant << 13));
    if (mant == 0)
        return inf__f32_from_bits(sign);
    /* subnormal: normalise the mantissa */
    uint32_t e = 113;
    while (!(mant & 0x400u)) {
        mant <<= 1;
        e--;
    }
    return inf__f32_from_bits(sign | (e << 23) | ((mant & 0x3ffu) << 13));
}

static inline inf_fp16 inf_fp32_to_fp16(float f)
{
    const uint32_t x = inf__f32_bits(f);
    const uint32_t sign = (x >> 16) & 0x8000u;
    const uint32_t ax = x & 0x7fffffffu;
    if (ax > 0x7f800000u) /* NaN */
        return (inf_fp16)(sign | 0x7e00u);
    if (ax >= 0x477ff000u) /* rounds to >= 65520: infinity */
        return (inf_fp16)(sign | 0x7c00u);
    if (ax < 0x38800000u) {   /* below the smallest normal binary16 (2^-14): subnormal or zero */
        if (ax < 0x33000000u) /* < 2^-25: rounds to zero (2^-25 itself ties to even: zero) */
            return (inf_fp16)sign;
        const uint32_t e = ax >> 23; /* 102..112 */
        const uint32_t m = (ax & 0x7fffffu) | 0x800000u;
        const uint32_t shift = 126u - e; /* 14..24: m >> shift is the subnormal mantissa */
        uint32_t r = m >> shift;
        const uint32_t rem = m & ((1u << shift) - 1u);
        const uint32_t half = 1u << (shift - 1u);
        if (rem > half || (rem == half && (r & 1u)))
            r++;
        return (inf_fp16)(sign | r);
    }
    /* normal: rebias the exponent and round the 13 dropped bits to nearest even */
    uint32_t r = ((ax >> 13) - (112u << 10));
    const uint32_t rem = ax & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (r & 1u)))
        r++; /* a carry into the exponent is the correct result, up to infinity */
    return (inf_fp16)(sign | r);
}

static inline float inf_bf16_to_fp32(inf_bf16 h)
{
    return inf__f32_from_bits((uint32_t)h << 16);
}

static inline inf_bf16 inf_fp32_to_bf16(float f)
{
    const uint32_t x = inf__f32_bits(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) /* NaN: keep it NaN and quiet */
        return (inf_bf16)((x >> 16) | 64u);
    return (inf_bf16)((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}

#endif
