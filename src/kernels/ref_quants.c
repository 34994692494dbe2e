/*
 * ref_quants.c - reference quantizers and dequantizers for every format (plain C, the ground
 * truth; never optimise these).
 *
 * The quantizers follow llama.cpp's reference algorithms (ggml-quants.c: quantize_row_*_ref and
 * the helpers make_qx_quants, make_q3_quants, make_qkx2_quants) operation for operation, in the
 * same order, so that with IEEE single precision and no contraction of a*b+c into fused
 * multiply-adds (ISO C mode, baseline x86-64) they write the same bytes.
 * tools/kernels-crosscheck.md says how that was checked.
 */
#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <string.h>

#include "kernels/blocks.h"
#include "kernels/fp16.h"
#include "kernels/internal.h"
#include "kernels/ref_levels.h"

#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

/* A group whose largest magnitude is below this quantizes to zeros (ggml's GROUP_MAX_EPS). */
#define GROUP_MAX_EPS 1e-15f

/* ---- F32 / F16 / BF16 -------------------------------------------------------------------- */

void inf__from_float_f32_ref(const float *x, void *vy, int64_t n)
{
    memcpy(vy, x, (size_t)n * sizeof(float));
}

void inf__to_float_f32_ref(const void *vx, float *y, int64_t n)
{
    memcpy(y, vx, (size_t)n * sizeof(float));
}

void inf__from_float_f16_ref(const float *x, void *vy, int64_t n)
{
    inf__f32_to_f16_ref(x, vy, n);
}

void inf__to_float_f16_ref(const void *vx, float *y, int64_t n)
{
    inf__f16_to_f32_ref(vx, y, n);
}

void inf__from_float_bf16_ref(const float *x, void *vy, int64_t n)
{
    inf_bf16 *y = vy;
    for (int64_t i = 0; i < n; i++)
        y[i] = inf_fp32_to_bf16(x[i]);
}

void inf__to_float_bf16_ref(const void *vx, float *y, int64_t n)
{
    const inf_bf16 *x = vx;
    for (int64_t i = 0; i < n; i++)
        y[i] = inf_bf16_to_fp32(x[i]);
}

/* ---- Q4_0, Q4_1, Q5_0, Q5_1 ------------------------------------------------------------------ */

/* The value of largest magnitude in x[0..n) (the first one on ties), with its sign. */
static float signed_absmax(const float *x, int n)
{
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < n; j++) {
        if (amax < fabsf(x[j])) {
            amax = fabsf(x[j]);
            max = x[j];
        }
    }
    return max;
}

static void min_max(const float *x, int n, float *min_out, float *max_out)
{
    float min = FLT_MAX, max = -FLT_MAX;
    for (int j = 0; j < n; j++) {
        if (x[j] < min)
            min = x[j];
        if (x[j] > max)
            max = x[j];
    }
    *min_out = min;
    *max_out = max;
}

/*
 * Pack 32 levels (0..31) the legacy way: low nibbles in qs (qs[j] = q[j] | q[j + 16] << 4), bit 4
 * of q[j] as bit j of qh, a little-endian uint32, where qh is not NULL (Q5_0, Q5_1).
 */
static void pack_legacy(const int q[32], uint8_t qs[16], uint8_t *qh)
{
    uint32_t h = 0;
    for (int j = 0; j < 16; j++) {
        qs[j] = (uint8_t)((q[j] & 0x0f) | ((q[j + 16] & 0x0f) << 4));
        h |= (uint32_t)((q[j] & 0x10) >> 4) << j;
        h |= (uint32_t)((q[j + 16] & 0x10) >> 4) << (j + 16);
    }
    if (qh)
        for (int b = 0; b < 4; b++)
            qh[b] = (uint8_t)(h >> (8 * b));
}

/*
 * Q4_0 (nbits 4, qh NULL) and Q5_0 (nbits 5): d = the signed absmax / -2^(nbits-1), so that the
 * levels x / d + 2^(nbits-1) lie in [0, 2^nbits]; rounded by truncation toward zero after adding
 * 0.5, the top one folded into 2^nbits - 1.
 */
static void quantize_sym(const float *x, int nbits, inf_fp16 *d_out, uint8_t qs[16], uint8_t *qh)
{
    const int half = 1 << (nbits - 1);
    const float d = signed_absmax(x, 32) / (float)-half;
    const float id = d ? 1.0f / d : 0.0f;
    *d_out = inf_fp32_to_fp16(d);
    int q[32];
    for (int j = 0; j < 32; j++)
        q[j] = MIN(2 * half - 1, (int)(x[j] * id + ((float)half + 0.5f)));
    pack_legacy(q, qs, qh);
}

/*
 * Q4_1 (nbits 4, qh NULL) and Q5_1 (nbits 5): d = (max - min) / (2^nbits - 1), m = min, levels
 * (x - min) / d rounded half up. Q4_1 clamps them to 15; llama.cpp does not clamp for Q5_1:
 * x0 + 0.5 < 32 by construction.
 */
static void quantize_min(const float *x, int nbits, inf_fp16 *d_out, inf_fp16 *m_out,
                         uint8_t qs[16], uint8_t *qh)
{
    float min, max;
    min_max(x, 32, &min, &max);
    const float d = (max - min) / (float)((1 << nbits) - 1);
    const float id = d ? 1.0f / d : 0.0f;
    *d_out = inf_fp32_to_fp16(d);
    *m_out = inf_fp32_to_fp16(min);
    int q[32];
    for (int j = 0; j < 32; j++) {
        const int v = (int)((x[j] - min) * id + 0.5f);
        q[j] = nbits == 4 ? MIN(15, v) : v;
    }
    pack_legacy(q, qs, qh);
}

void inf__from_float_q4_0_ref(const float *x, void *vy, int64_t n)
{
    struct inf_block_q4_0 *y = vy;
    for (int64_t i = 0; i < n / INF_QK4_0; i++, x += INF_QK4_0)
        quantize_sym(x, 4, &y[i].d, y[i].qs, NULL);
}

/* Every legacy format: x = d * q (+ m). */
static void to_float_legacy(enum inf_type t, const void *vx, float *y, int64_t n)
{
    for (int64_t i = 0; i < n / 32; i++, y += 32) {
        struct ref_legacy x;
        ref_legacy_block(t, vx, i, &x);
        for (int j = 0; j < 32; j++)
            y[j] = x.has_min ? (float)x.q[j] * x.d + x.m : (float)x.q[j] * x.d;
    }
}

void inf__from_float_q4_1_ref(const float *x, void *vy, int64_t n)
{
    struct inf_block_q4_1 *y = vy;
    for (int64_t i = 0; i < n / INF_QK4_1; i++, x += INF_QK4_1)
        quantize_min(x, 4, &y[i].d, &y[i].m, y[i].qs, NULL);
}

void inf__from_float_q5_0_ref(const float *x, void *vy, int64_t n)
{
    struct inf_block_q5_0 *y = vy;
    for (int64_t i = 0; i < n / INF_QK5_0; i++, x += INF_QK5_0)
        quantize_sym(x, 5, &y[i].d, y[i].qs, y[i].qh);
}

void inf__from_float_q5_1_ref(const float *x, void *vy, int64_t n)
{
    struct inf_block_q5_1 *y = vy;
    for (int64_t i = 0; i < n / INF_QK5_1; i++, x += INF_QK5_1)
        quantize_min(x, 5, &y[i].d, &y[i].m, y[i].qs, y[i].qh);
}

/* ---- Q8_0, Q8_1 ------------------------------------------------------------------------------ */

/* Q8_0, Q8_1: d = absmax / 127, q = x / d rounded half away from zero; returns d. */
static float quantize_q8(const float *x, int8_t qs[32], int *sum)
{
    float amax = 0.0f;
    for (int j = 0; j < 32; j++)
        amax = MAX(amax, fabsf(x[j]));
    const float d = amax / ((1 << 7) - 1);
    const float id = d ? 1.0f / d : 0.0f;
    *sum = 0;
    for (int j = 0; j < 32; j++) {
        qs[j] = (int8_t)roundf(x[j] * id);
        *sum += qs[j];
    }
    return d;
}

void inf__from_float_q8_0_ref(const float *x, void *vy, int64_t n)
{
    struct inf_block_q8_0 *y = vy;
    int sum;
    for (int64_t i = 0; i < n / INF_QK8_0; i++, x += INF_QK8_0)
        y[i].d = inf_fp32_to_fp16(quantize_q8(x, y[i].qs, &sum));
}

/* Round half to even without depending on the FPU's rounding mode. */
static float round_even(float v)
{
    float r = roundf(v);
    if (fabsf(v - truncf(v)) == 0.5f && fmodf(r, 2.0f) != 0.0f)
        r -= copysignf(1.0f, v);
    return r;
}

static void act_q8_legacy(const float *x, uint8_t *out, int64_t n, int with_sum)
{
    const size_t bs = with_sum ? sizeof(struct inf_block_q8_1) : sizeof(struct inf_block_q8_0);
    for (int64_t i = 0; i < n / 32; i++, x += 32, out += bs) {
        float amax = 0.0f;
        for (int j = 0; j < 32; j++)
            amax = MAX(amax, fabsf(x[j]));
        const float d = amax / 127.0f;
        const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
        int8_t *qs = (int8_t *)(out + (with_sum ? 4 : 2));
        int sum = 0;
        for (int j = 0; j < 32; j++) {
            qs[j] = (int8_t)round_even(x[j] * id);
            sum += qs[j];
        }
        const inf_fp16 dh = inf_fp32_to_fp16(d);
        memcpy(out, &dh, 2);
        if (with_sum) {
            const inf_fp16 sh = inf_fp32_to_fp16((float)sum * d);
            memcpy(out + 2, &sh, 2);
        }
    }
}

void inf__act_q8_0_ref(const float *x, void *y, int64_t n)
{
    act_q8_legacy(x, y, n, 0);
}

void inf__act_q8_1_ref(const float *x, void *y, int64_t n)
{
    act_q8_legacy(x, y, n, 1);
}

void inf__from_float_q8_1_ref(const float *x, void *vy, int64_t n)
{
    struct inf_block_q8_1 *y = vy;
    for (int64_t i = 0; i < n / INF_QK8_1; i++, x += INF_QK8_1) {
        int sum;
        const float d = quantize_q8(x, y[i].qs, &sum);
        y[i].d = inf_fp32_to_fp16(d);
        y[i].s = inf_fp32_to_fp16((float)sum * d);
    }
}

/* ---- K-quant helpers ----------------------------------------------------------------------- */

/* Round to nearest, ties to even, for |f| <= 4194303 (ggml's nearest_int: the 1.5 * 2^23 trick). */
static inline int nearest_int(float f)
{
    const float v = f + 12582912.f;
    int32_t i;
    memcpy(&i, &v, sizeof(i));
    return (i & 0x007fffff) - 0x00400000;
}

/*
 * The levels l = clamp(nearest_int(iscale * x), -nmax, nmax - 1) of n values, stored in L as
 * l + off, and their sums weighted by x^2: *sumlx = sum w x l, *suml2 = sum w l^2.
 */
static void qx_levels(int n, int nmax, float iscale, const float *x, int8_t *L, int off,
                      float *sumlx, float *suml2)
{
    float slx = 0, sl2 = 0;
    for (int i = 0; i < n; ++i) {
        int l = nearest_int(iscale * x[i]);
        l = MAX(-nmax, MIN(nmax - 1, l));
        L[i] = (int8_t)(l + off);
        const float w = x[i] * x[i];
        slx += w * x[i] * (float)l;
        sl2 += w * (float)l * (float)l;
    }
    *sumlx = slx;
    *suml2 = sl2;
}

/*
 * The first levels of make_qx_quants and make_q3_quants: qx_levels at iscale = -nmax / max, max
 * the value of largest magnitude. False, with L all 0, where the group is all but zero.
 */
static bool qx_first_levels(int n, int nmax, const float *x, int8_t *L, int off, float *max,
                            float *sumlx, float *suml2)
{
    *max = signed_absmax(x, n);
    if (fabsf(*max) < GROUP_MAX_EPS) {
        memset(L, 0, (size_t)n);
        return false;
    }
    qx_levels(n, nmax, -nmax / *max, x, L, off, sumlx, suml2);
    return true;
}

/*
 * Signed scale for n (<= 16) values with levels in [-nmax, nmax-1] (stored in L as l + nmax),
 * searching 19 candidate scales around -nmax/max for the smallest weighted error (weights x^2
 * for rmse_type 1). Only the rmse_type 1, qw == NULL case that the reference quantizers use.
 */
static float make_qx_quants_rmse1(int n, int nmax, const float *x, int8_t *L)
{
    float max, sumlx, suml2;
    if (!qx_first_levels(n, nmax, x, L, nmax, &max, &sumlx, &suml2))
        return 0.f;
    float scale = suml2 ? sumlx / suml2 : 0.0f;
    float best = scale * sumlx;
    for (int is = -9; is <= 9; ++is) {
        if (is == 0)
            continue;
        const float iscale = -((float)nmax + 0.1f * (float)is) / max;
        int8_t Lis[16];
        qx_levels(n, nmax, iscale, x, Lis, nmax, &sumlx, &suml2);
        if (suml2 > 0 && sumlx * sumlx > best * suml2) {
            memcpy(L, Lis, (size_t)n);
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

/* Signed 3-bit scale with up to 5 rounds of coordinate descent on the levels (do_rmse). */
static float make_q3_quants(int n, int nmax, const float *x, int8_t *L)
{
    float max, sumlx, suml2;
    if (!qx_first_levels(n, nmax, x, L, 0, &max, &sumlx, &suml2))
        return 0.f;
    for (int itry = 0; itry < 5; ++itry) {
        int n_changed = 0;
        for (int i = 0; i < n; ++i) {
            const float w = x[i] * x[i];
            float slx = sumlx - w * x[i] * (float)L[i];
            if (slx > 0) {
                float sl2 = suml2 - w * (float)L[i] * (float)L[i];
                int new_l = nearest_int(x[i] * sl2 / slx);
                new_l = MAX(-nmax, MIN(nmax - 1, new_l));
                if (new_l != L[i]) {
                    slx += w * x[i] * (float)new_l;
                    sl2 += w * (float)new_l * (float)new_l;
                    if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
                        L[i] = (int8_t)new_l;
                        sumlx = slx;
                        suml2 = sl2;
                        ++n_changed;
                    }
                }
            }
        }
        if (!n_changed)
            break;
    }
    for (int i = 0; i < n; ++i)
        L[i] = (int8_t)(L[i] + nmax);
    return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

/*
 * Scale and min (x ~ scale * L + min, L in [0, nmax], min <= 0) minimising the weighted squared
 * (or absolute, use_mad) error over nstep+1 candidate scales. Returns the scale; *the_min = -min.
 */
static float make_qkx2_quants(int n, int nmax, const float *x, const float *weights, uint8_t *L,
                              float *the_min, uint8_t *Laux, float rmin, float rdelta, int nstep,
                              bool use_mad)
{
    float min = x[0], max = x[0];
    float sum_w = weights[0];
    float sum_x = sum_w * x[0];
    for (int i = 1; i < n; ++i) {
        if (x[i] < min)
            min = x[i];
        if (x[i] > max)
            max = x[i];
        const float w = weights[i];
        sum_w += w;
        sum_x += w * x[i];
    }
    if (min > 0)
        min = 0;
    if (max == min) {
        for (int i = 0; i < n; ++i)
            L[i] = 0;
        *the_min = -min;
        return 0.f;
    }
    float iscale = (float)nmax / (max - min);
    float scale = 1 / iscale;
    float best_error = 0;
    for (int i = 0; i < n; ++i) {
        const int l = nearest_int(iscale * (x[i] - min));
        L[i] = (uint8_t)MAX(0, MIN(nmax, l));
        float diff = scale * (float)L[i] + min - x[i];
        diff = use_mad ? fabsf(diff) : diff * diff;
        best_error += weights[i] * diff;
    }
    if (nstep < 1) {
        *the_min = -min;
        return scale;
    }
    for (int is = 0; is <= nstep; ++is) {
        iscale = (rmin + rdelta * (float)is + (float)nmax) / (max - min);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; ++i) {
            int l = nearest_int(iscale * (x[i] - min));
            l = MAX(0, MIN(nmax, l));
            Laux[i] = (uint8_t)l;
            const float w = weights[i];
            sum_l += w * (float)l;
            sum_l2 += w * (float)l * (float)l;
            sum_xl += w * (float)l * x[i];
        }
        const float D = sum_w * sum_l2 - sum_l * sum_l;
        if (D > 0) {
            float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
            float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
            if (this_min > 0) {
                this_min = 0;
                this_scale = sum_xl / sum_l2;
            }
            float cur_error = 0;
            for (int i = 0; i < n; ++i) {
                float diff = this_scale * (float)Laux[i] + this_min - x[i];
                diff = use_mad ? fabsf(diff) : diff * diff;
                cur_error += weights[i] * diff;
            }
            if (cur_error < best_error) {
                for (int i = 0; i < n; ++i)
                    L[i] = Laux[i];
                best_error = cur_error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    *the_min = -min;
    return scale;
}

/*
 * The levels of a group of n values against its quantized scale d and min dm (0 for the signed
 * formats): L = clamp(nearest_int((x + dm) / d), lo, hi) - lo. A group whose scale is 0 keeps
 * the levels it has.
 */
static void group_levels(const float *x, int n, float d, float dm, int lo, int hi, uint8_t *L)
{
    if (!d)
        return;
    for (int i = 0; i < n; ++i) {
        const int l = nearest_int((x[i] + dm) / d);
        L[i] = (uint8_t)(MAX(lo, MIN(hi, l)) - lo);
    }
}

/*
 * Q3_K, Q6_K: a signed scale and the levels of each group of 16 by make (make_q3_quants or
 * make_qx_quants_rmse1); returns the scale of largest magnitude, with its sign.
 */
static float signed_scales(float (*make)(int, int, const float *, int8_t *), int nmax,
                           const float *x, int8_t L[INF_QK_K], float scales[INF_QK_K / 16])
{
    for (int j = 0; j < INF_QK_K / 16; ++j)
        scales[j] = make(16, nmax, x + 16 * j, L + 16 * j);
    return signed_absmax(scales, INF_QK_K / 16);
}

/* Pack 256 2-bit levels the Q2_K/Q3_K way: qs[32h + l] = L[128h + l + 32s] << 2s. */
static void pack_2bit(const uint8_t *L, uint8_t *qs)
{
    for (int j = 0; j < INF_QK_K; j += 128)
        for (int l = 0; l < 32; ++l)
            qs[j / 4 + l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) |
                                      (L[j + l + 96] << 6));
}

/* Pack the 8 6-bit scales and mins of a Q4_K/Q5_K block. */
static void pack_scale_min_k4(const uint8_t ls[8], const uint8_t lm[8], uint8_t s[12])
{
    memset(s, 0, 12);
    for (int j = 0; j < 8; ++j) {
        if (j < 4) {
            s[j] = ls[j];
            s[j + 4] = lm[j];
        } else {
            s[j + 4] = (uint8_t)((ls[j] & 0x0f) | ((lm[j] & 0x0f) << 4));
            s[j - 4] |= (uint8_t)((ls[j] >> 4) << 6);
            s[j - 0] |= (uint8_t)((lm[j] >> 4) << 6);
        }
    }
}

/* ---- Q2_K ---------------------------------------------------------------------------------- */

void inf__from_float_q2_K_ref(const float *x, void *vy, int64_t n)
{
    struct inf_block_q2_K *y = vy;
    const int64_t nb = n / INF_QK_K;
    uint8_t L[INF_QK_K], Laux[16];
    float weights[16], mins[INF_QK_K / 16], scales[INF_QK_K / 16];
    const float q4scale = 15.f;

    for (int64_t i = 0; i < nb; i++, x += INF_QK_K) {
        float max_scale = 0, max_min = 0;
        for (int j = 0; j < INF_QK_K / 16; ++j) {
            for (int l = 0; l < 16; ++l)
                weights[l] = fabsf(x[16 * j + l]);
            scales[j] = make_qkx2_quants(16, 3, x + 16 * j, weights, L + 16 * j, &mins[j], Laux,
                                         -0.5f, 0.1f, 15, true);
            if (scales[j] > max_scale)
                max_scale = scales[j];
            if (mins[j] > max_min)
                max_min = mins[j];
        }
        if (max_scale > 0) {
            const float iscale = q4scale / max_scale;
            for (int j = 0; j < INF_QK_K / 16; ++j)
                y[i].scales[j] = (uint8_t)nearest_int(iscale * scales[j]);
            y[i].d = inf_fp32_to_fp16(max_scale / q4scale);
        } else {
            for (int j = 0; j < INF_QK_K / 16; ++j)
                y[i].scales[j] = 0;
            y[i].d = inf_fp32_to_fp16(0.f);
        }
        if (max_min > 0) {
            const float iscale = q4scale / max_min;
            for (int j = 0; j < INF_QK_K / 16; ++j) {
                const int l = nearest_int(iscale * mins[j]);
                y[i].scales[j] |= (uint8_t)(l << 4);
            }
            y[i].dmin = inf_fp32_to_fp16(max_min / q4scale);
        } else {
            y[i].dmin = inf_fp32_to_fp16(0.f);
        }
        for (int j = 0; j < INF_QK_K / 16; ++j)
            group_levels(x + 16 * j, 16, inf_fp16_to_fp32(y[i].d) * (float)(y[i].scales[j] & 0xf),
                         inf_fp16_to_fp32(y[i].dmin) * (float)(y[i].scales[j] >> 4), 0, 3,
                         L + 16 * j);
        pack_2bit(L, y[i].qs);
    }
}

/* Every K-quant: x = d * sc * q (- dmin * m). */
static void to_float_kq(enum inf_type t, const void *vx, float *y, int64_t n)
{
    for (int64_t i = 0; i < n / INF_QK_K; i++) {
        struct ref_kq x;
        ref_kq_block(t, vx, i, &x);
        for (int k = 0; k < INF_QK_K; k++) {
            const int g = k / x.group;
            const float dl = x.d * (float)x.sc[g];
            *y++ = x.has_min ? dl * (float)x.q[k] - x.dmin * (float)x.m[g] : dl * (float)x.q[k];
        }
    }
}

/* ---- Q3_K ---------------------------------------------------------------------------------- */

void inf__from_float_q3_K_ref(const float *x, void *vy, int64_t n)
{
    struct inf_block_q3_K *y = vy;
    int8_t L[INF_QK_K];
    float scales[INF_QK_K / 16];
    for (int64_t i = 0; i < n / INF_QK_K; i++, x += INF_QK_K) {
        const float max_scale = signed_scales(make_q3_quants, 4, x, L, scales);
        memset(y[i].scales, 0, 12);
        if (max_scale) {
            const float iscale = -32.f / max_scale;
            for (int j = 0; j < INF_QK_K / 16; ++j) {
                int l = nearest_int(iscale * scales[j]);
                l = MAX(-32, MIN(31, l)) + 32;
                if (j < 8)
                    y[i].scales[j] = (uint8_t)(l & 0xf);
                else
                    y[i].scales[j - 8] |= (uint8_t)((l & 0xf) << 4);
                l >>= 4;
                y[i].scales[j % 4 + 8] |= (uint8_t)(l << (2 * (j / 4)));
            }
            y[i].d = inf_fp32_to_fp16(1 / iscale);
        } else {
            y[i].d = inf_fp32_to_fp16(0.f);
        }

        int8_t sc[16];
        ref_q3_k_scales(y[i].scales, sc);
        for (int j = 0; j < INF_QK_K / 16; ++j)
            group_levels(x + 16 * j, 16, inf_fp16_to_fp32(y[i].d) * (float)sc[j], 0.0f, -4, 3,
                         (uint8_t *)L + 16 * j);

        memset(y[i].hmask, 0, INF_QK_K / 8);
        uint8_t Lu[INF_QK_K];
        for (int j = 0; j < INF_QK_K; ++j) {
            int l = L[j];
            if (l > 3) {
                y[i].hmask[j % 32] |= (uint8_t)(1u << (j / 32));
                l -= 4;
            }
            Lu[j] = (uint8_t)l;
        }
        pack_2bit(Lu, y[i].qs);
    }
}

/* ---- Q4_K, Q5_K ---------------------------------------------------------------------------- */

/*
 * Q4_K (nmax 15, qh NULL) and Q5_K (nmax 31): per group of 32, a scale and min from
 * make_qkx2_quants with weights av_x + |x|, quantized to 6 bits against the block's largest;
 * then the levels recomputed with the quantized scales and packed: their low 4 bits in qs
 * (qs[32p + l] = L[64p + l] | L[64p + 32 + l] << 4), bit 4 of L[32b + l] as bit b of qh[l].
 */
static void quantize_k4(const float *x, int nmax, float rmin, int nstep, uint8_t *scales12,
                        inf_fp16 *d_out, inf_fp16 *dmin_out, uint8_t *qs, uint8_t *qh)
{
    uint8_t L[INF_QK_K];
    uint8_t Laux[32];
    float weights[32], mins[INF_QK_K / 32], scales[INF_QK_K / 32];
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < INF_QK_K / 32; ++j) {
        float sum_x2 = 0;
        for (int l = 0; l < 32; ++l)
            sum_x2 += x[32 * j + l] * x[32 * j + l];
        const float av_x = sqrtf(sum_x2 / 32);
        for (int l = 0; l < 32; ++l)
            weights[l] = av_x + fabsf(x[32 * j + l]);
        scales[j] = make_qkx2_quants(32, nmax, x + 32 * j, weights, L + 32 * j, &mins[j], Laux,
                                     rmin, 0.1f, nstep, false);
        if (scales[j] > max_scale)
            max_scale = scales[j];
        if (mins[j] > max_min)
            max_min = mins[j];
    }
    const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
    const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
    uint8_t ls[8], lm[8];
    for (int j = 0; j < INF_QK_K / 32; ++j) {
        /* ggml stores nearest_int() into a uint8_t before clamping: keep that wrap-around */
        const uint8_t s = (uint8_t)nearest_int(inv_scale * scales[j]);
        const uint8_t m = (uint8_t)nearest_int(inv_min * mins[j]);
        ls[j] = MIN(63, s);
        lm[j] = MIN(63, m);
    }
    pack_scale_min_k4(ls, lm, scales12);
    *d_out = inf_fp32_to_fp16(max_scale / 63.f);
    *dmin_out = inf_fp32_to_fp16(max_min / 63.f);

    for (int j = 0; j < INF_QK_K / 32; ++j) {
        uint8_t sc, m;
        ref_scale_min_k4(j, scales12, &sc, &m);
        group_levels(x + 32 * j, 32, inf_fp16_to_fp32(*d_out) * (float)sc,
                     inf_fp16_to_fp32(*dmin_out) * (float)m, 0, nmax, L + 32 * j);
    }

    if (qh)
        memset(qh, 0, INF_QK_K / 8);
    for (int j = 0; j < INF_QK_K; j += 64, qs += 32) {
        for (int l = 0; l < 32; ++l) {
            const int l1 = L[j + l], l2 = L[j + l + 32];
            qs[l] = (uint8_t)((l1 & 0x0f) | ((l2 & 0x0f) << 4));
            if (qh)
                qh[l] |= (uint8_t)(((l1 >> 4) << (j / 32)) | ((l2 >> 4) << (j / 32 + 1)));
        }
    }
}

void inf__from_float_q4_K_ref(const float *x, void *vy, int64_t n)
{
    struct inf_block_q4_K *y = vy;
    for (int64_t i = 0; i < n / INF_QK_K; i++, x += INF_QK_K)
        quantize_k4(x, 15, -1.f, 20, y[i].scales, &y[i].d, &y[i].dmin, y[i].qs, NULL);
}

void inf__from_float_q5_K_ref(const float *x, void *vy, int64_t n)
{
    struct inf_block_q5_K *y = vy;
    for (int64_t i = 0; i < n / INF_QK_K; i++, x += INF_QK_K)
        quantize_k4(x, 31, -0.5f, 15, y[i].scales, &y[i].d, &y[i].dmin, y[i].qs, y[i].qh);
}

/* ---- Q6_K ---------------------------------------------------------------------------------- */

void inf__from_float_q6_K_ref(const float *x, void *vy, int64_t n)
{
    struct inf_block_q6_K *y = vy;
    float scales[INF_QK_K / 16];
    int8_t L[INF_QK_K];
    for (int64_t i = 0; i < n / INF_QK_K; i++, x += INF_QK_K) {
        const float max_scale = signed_scales(make_qx_quants_rmse1, 32, x, L, scales);
        if (fabsf(max_scale) < GROUP_MAX_EPS) {
            memset(&y[i], 0, sizeof(y[i]));
            y[i].d = inf_fp32_to_fp16(0.f);
            continue;
        }
        const float iscale = -128.f / max_scale;
        y[i].d = inf_fp32_to_fp16(1 / iscale);
        for (int ib = 0; ib < INF_QK_K / 16; ++ib)
            y[i].scales[ib] = (int8_t)MIN(127, nearest_int(iscale * scales[ib]));

        for (int j = 0; j < INF_QK_K / 16; ++j)
            group_levels(x + 16 * j, 16, inf_fp16_to_fp32(y[i].d) * (float)y[i].scales[j], 0.0f,
                         -32, 31, (uint8_t *)L + 16 * j);

        uint8_t *ql = y[i].ql, *qh = y[i].qh;
        for (int j = 0; j < INF_QK_K; j += 128, ql += 64, qh += 32) {
            for (int l = 0; l < 32; ++l) {
                const int q1 = L[j + l + 0] & 0xf;
                const int q2 = L[j + l + 32] & 0xf;
                const int q3 = L[j + l + 64] & 0xf;
                const int q4 = L[j + l + 96] & 0xf;
                ql[l + 0] = (uint8_t)(q1 | (q3 << 4));
                ql[l + 32] = (uint8_t)(q2 | (q4 << 4));
                qh[l] = (uint8_t)((L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) |
                                  ((L[j + l + 64] >> 4) << 4) | ((L[j + l + 96] >> 4) << 6));
            }
        }
    }
}

/* ---- Q8_K (activations) -------------------------------------------------------------------- */

void inf__from_float_q8_K_ref(const float *x, void *vy, int64_t n)
{
    struct inf_block_q8_K *y = vy;
    const int64_t nb = n / INF_QK_K;
    for (int64_t i = 0; i < nb; i++, x += INF_QK_K) {
        const float max = signed_absmax(x, INF_QK_K);
        if (!max) {
            y[i].d = 0;
            memset(y[i].qs, 0, INF_QK_K);
            memset(y[i].bsums, 0, sizeof(y[i].bsums));
            continue;
        }
        const float iscale = -127.f / max;
        for (int j = 0; j < INF_QK_K; ++j) {
            const int v = nearest_int(iscale * x[j]);
            y[i].qs[j] = (int8_t)MIN(127, v);
        }
        for (int j = 0; j < INF_QK_K / 16; ++j) {
            int sum = 0;
            for (int ii = 0; ii < 16; ++ii)
                sum += y[i].qs[j * 16 + ii];
            y[i].bsums[j] = (int16_t)sum;
        }
        y[i].d = 1 / iscale;
    }
}

void inf__to_float_q8_K_ref(const void *vx, float *y, int64_t n)
{
    const struct inf_block_q8_K *x = vx;
    const int64_t nb = n / INF_QK_K;
    for (int64_t i = 0; i < nb; i++)
        for (int j = 0; j < INF_QK_K; ++j)
            *y++ = x[i].d * (float)x[i].qs[j];
}

/* ---- The dequantizers of the legacy formats and the K-quants ------------------------------- */

#define TO_FLOAT(t, family, T)                                                                     \
    void inf__to_float_##t##_ref(const void *vx, float *y, int64_t n)                              \
    {                                                                                              \
        to_float_##family(INF_TYPE_##T, vx, y, n);                                                 \
    }
TO_FLOAT(q4_0, legacy, Q4_0)
TO_FLOAT(q4_1, legacy, Q4_1)
TO_FLOAT(q5_0, legacy, Q5_0)
TO_FLOAT(q5_1, legacy, Q5_1)
TO_FLOAT(q8_0, legacy, Q8_0)
TO_FLOAT(q8_1, legacy, Q8_1)
TO_FLOAT(q2_K, kq, Q2_K)
TO_FLOAT(q3_K, kq, Q3_K)
TO_FLOAT(q4_K, kq, Q4_K)
TO_FLOAT(q5_K, kq, Q5_K)
TO_FLOAT(q6_K, kq, Q6_K)
#undef TO_FLOAT

/* ---- MXFP4 ------------------------------------------------------------------------------- */

const int8_t inf__mxfp4_values[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};

void inf__to_float_mxfp4_ref(const void *vx, float *y, int64_t n)
{
    const struct inf_block_mxfp4 *x = vx;
    for (int64_t i = 0; i < n / INF_QK_MXFP4; i++) {
        const float d = inf__e8m0_half(x[i].e);
        for (int j = 0; j < INF_QK_MXFP4 / 2; j++) {
            y[i * INF_QK_MXFP4 + j] = (float)inf__mxfp4_values[x[i].qs[j] & 0xf] * d;
            y[i * INF_QK_MXFP4 + j + INF_QK_MXFP4 / 2] =
                (float)inf__mxfp4_values[x[i].qs[j] >> 4] * d;
        }
    }
}

/* the nearest value index (the first of equal errors), as llama.cpp chooses */
static int mxfp4_index(float x, float d)
{
    int best = 0;
    float best_err = fabsf((float)inf__mxfp4_values[0] * d - x);
    for (int i = 1; i < 16; i++) {
        const float err = fabsf((float)inf__mxfp4_values[i] * d - x);
        if (err < best_err) {
            best = i;
            best_err = err;
        }
    }
    return best;
}

/* The exponent puts the block's largest magnitude in the top binade of the values (6 = 1.5 x 4:
 * e = floor(log2(amax)) - 2 + 127), then each value is rounded to the nearest. */
void inf__from_float_mxfp4_ref(const float *x, void *vy, int64_t n)
{
    struct inf_block_mxfp4 *y = vy;
    for (int64_t i = 0; i < n / INF_QK_MXFP4; i++) {
        const float *b = x + i * INF_QK_MXFP4;
        float amax = 0.0f;
        for (int j = 0; j < INF_QK_MXFP4; j++)
            if (amax < fabsf(b[j]))
                amax = fabsf(b[j]);
        const uint8_t e = amax > 0.0f ? (uint8_t)(floorf(log2f(amax)) - 2 + 127) : 0;
        const float d = inf__e8m0_half(e);
        y[i].e = e;
        for (int j = 0; j < INF_QK_MXFP4 / 2; j++)
            y[i].qs[j] =
                (uint8_t)(mxfp4_index(b[j], d) | mxfp4_index(b[j + INF_QK_MXFP4 / 2], d) << 4);
    }
}
