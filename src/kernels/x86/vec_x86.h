/*
 * vec_x86.h - the x86 vector code that does not depend on the vector width, written once over
 * vectors of XV_W floats: e^x and the activations built on it, and the score and P.V loops of
 * the attention tiles. Included by ops_x86.h (__m256, 8 lanes) and ops_avx512.h (__m512, 16
 * lanes), each time with these defined (and undefined here after):
 *
 *   XV_FN(name)           the name of a function at this width
 *   XV, XV_W              the vector type and its lanes
 *   XV_ZERO(), XV_SET1(x), XV_LOADU(p), XV_STOREU(p, v), XV_ADD(a, b), XV_SUB(a, b),
 *   XV_MUL(a, b), XV_DIV(a, b), XV_MIN(a, b), XV_MAX(a, b), XV_FMADD(a, b, c) (a * b + c),
 *   XV_FNMADD(a, b, c) (c - a * b), XV_HSUM(v)
 *   XV_ROUND(x)           to the nearest integer, ties to even (no exceptions)
 *   XV_SCALE2(p, n)       p * 2^n for integral n in [-126, 127]
 *
 * No include guard: one inclusion per width.
 */

/* ---- exp and friends --------------------------------------------------------------------- */

/*
 * e^x lane by lane, relative error about 2 ulp: x = n ln2 + r with |r| <= ln2/2 (Cody-Waite),
 * e^r by the Cephes degree-6 polynomial, 2^n built in the exponent. Inputs are clamped to
 * [-87, 88] so 2^n stays a normal number: below, the result is about 1.6e-38 instead of a
 * subnormal or zero, which no caller can tell apart.
 */
static inline XV XV_FN(exp)(XV x)
{
    x = XV_MIN(XV_MAX(x, XV_SET1(-87.0f)), XV_SET1(88.0f));
    const XV fx = XV_ROUND(XV_MUL(x, XV_SET1(1.44269504088896341f)));
    XV r = XV_FNMADD(fx, XV_SET1(0.693359375f), x);
    r = XV_FNMADD(fx, XV_SET1(-2.12194440e-4f), r);
    XV p = XV_SET1(1.9875691500e-4f);
    p = XV_FMADD(p, r, XV_SET1(1.3981999507e-3f));
    p = XV_FMADD(p, r, XV_SET1(8.3334519073e-3f));
    p = XV_FMADD(p, r, XV_SET1(4.1665795894e-2f));
    p = XV_FMADD(p, r, XV_SET1(1.6666665459e-1f));
    p = XV_FMADD(p, r, XV_SET1(5.0000001201e-1f));
    p = XV_FMADD(p, XV_MUL(r, r), r);
    p = XV_ADD(p, XV_SET1(1.0f));
    return XV_SCALE2(p, fx);
}

static inline XV XV_FN(silu)(XV x)
{
    const XV e = XV_FN(exp)(XV_SUB(XV_ZERO(), x));
    return XV_DIV(x, XV_ADD(XV_SET1(1.0f), e));
}

/* tanh(z) = 1 - 2 / (e^(2z) + 1) */
static inline XV XV_FN(gelu)(XV x)
{
    const XV z = XV_MUL(XV_MUL(XV_SET1(0.79788456080286535587989211986876f), x),
                        XV_FMADD(XV_MUL(XV_SET1(0.044715f), x), x, XV_SET1(1.0f)));
    const XV e = XV_FN(exp)(XV_ADD(z, z));
    const XV t = XV_SUB(XV_SET1(1.0f), XV_DIV(XV_SET1(2.0f), XV_ADD(e, XV_SET1(1.0f))));
    return XV_MUL(XV_MUL(XV_SET1(0.5f), x), XV_ADD(XV_SET1(1.0f), t));
}

/* ---- attention --------------------------------------------------------------------------- */

/* The scaled scores s[j] = scale * (q . k_j) of the query row qr against the keys j < nv (rows of
 * d floats, d a multiple of XV_W): four keys at a time sharing the loads of qr, then one. */
static inline void XV_FN(attn_scores)(const float *qr, const float *k, size_t d, int nv,
                                      float scale, float *s)
{
    int j = 0;
    for (; j + 4 <= nv; j += 4) {
        const float *k0 = k + (size_t)j * d;
        XV a0 = XV_ZERO(), a1 = a0, a2 = a0, a3 = a0;
        for (size_t c = 0; c < d; c += XV_W) {
            const XV qv = XV_LOADU(qr + c);
            a0 = XV_FMADD(qv, XV_LOADU(k0 + c), a0);
            a1 = XV_FMADD(qv, XV_LOADU(k0 + d + c), a1);
            a2 = XV_FMADD(qv, XV_LOADU(k0 + 2 * d + c), a2);
            a3 = XV_FMADD(qv, XV_LOADU(k0 + 3 * d + c), a3);
        }
        s[j] = XV_HSUM(a0) * scale;
        s[j + 1] = XV_HSUM(a1) * scale;
        s[j + 2] = XV_HSUM(a2) * scale;
        s[j + 3] = XV_HSUM(a3) * scale;
    }
    for (; j < nv; j++) {
        const float *kj = k + (size_t)j * d;
        XV a0 = XV_ZERO();
        for (size_t c = 0; c < d; c += XV_W)
            a0 = XV_FMADD(XV_LOADU(qr + c), XV_LOADU(kj + c), a0);
        s[j] = XV_HSUM(a0) * scale;
    }
}

/* o += sum_j p[j] * v_j over j < nv (rows of d floats, d a multiple of XV_W): four vectors of o
 * at a time, then one. */
static inline void XV_FN(attn_pv)(size_t d, const float *p, int nv, const float *v, float *o)
{
    size_t c = 0;
    for (; c + 4 * XV_W <= d; c += 4 * XV_W) {
        XV o0 = XV_LOADU(o + c), o1 = XV_LOADU(o + c + XV_W);
        XV o2 = XV_LOADU(o + c + 2 * XV_W), o3 = XV_LOADU(o + c + 3 * XV_W);
        const float *vj = v + c;
        for (int j = 0; j < nv; j++, vj += d) {
            const XV pj = XV_SET1(p[j]);
            o0 = XV_FMADD(pj, XV_LOADU(vj), o0);
            o1 = XV_FMADD(pj, XV_LOADU(vj + XV_W), o1);
            o2 = XV_FMADD(pj, XV_LOADU(vj + 2 * XV_W), o2);
            o3 = XV_FMADD(pj, XV_LOADU(vj + 3 * XV_W), o3);
        }
        XV_STOREU(o + c, o0);
        XV_STOREU(o + c + XV_W, o1);
        XV_STOREU(o + c + 2 * XV_W, o2);
        XV_STOREU(o + c + 3 * XV_W, o3);
    }
    for (; c < d; c += XV_W) {
        XV o0 = XV_LOADU(o + c);
        const float *vj = v + c;
        for (int j = 0; j < nv; j++, vj += d)
            o0 = XV_FMADD(XV_SET1(p[j]), XV_LOADU(vj), o0);
        XV_STOREU(o + c, o0);
    }
}

#undef XV_FN
#undef XV
#undef XV_W
#undef XV_ZERO
#undef XV_SET1
#undef XV_LOADU
#undef XV_STOREU
#undef XV_ADD
#undef XV_SUB
#undef XV_MUL
#undef XV_DIV
#undef XV_MIN
#undef XV_MAX
#undef XV_FMADD
#undef XV_FNMADD
#undef XV_HSUM
#undef XV_ROUND
#undef XV_SCALE2
