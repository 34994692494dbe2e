/*
 * attn_x86.h - the parts of the x86 attention tiles that do not depend on the vector width,
 * written once over vectors of ATTN_W floats. Included by ops_x86.h (__m256, 8 lanes) and
 * ops_avx512.h (__m512, 16 lanes), each time with these defined (and undefined here after):
 *
 *   ATTN_FN(name)                the name of a function at this width
 *   ATTN_VEC, ATTN_W             the vector type and its lanes
 *   ATTN_ZERO(), ATTN_SET1(x), ATTN_LOADU(p), ATTN_STOREU(p, v), ATTN_FMADD(a, b, c),
 *   ATTN_HSUM(v)                 the operations used
 *
 * No include guard: one inclusion per width.
 */

/* The scaled scores s[j] = scale * (q . k_j) of the query row qr against the keys j < nv (rows of
 * d floats, d a multiple of ATTN_W): four keys at a time sharing the loads of qr, then one. */
static inline void ATTN_FN(attn_scores)(const float *qr, const float *k, size_t d, int nv,
                                        float scale, float *s)
{
    int j = 0;
    for (; j + 4 <= nv; j += 4) {
        const float *k0 = k + (size_t)j * d;
        ATTN_VEC a0 = ATTN_ZERO(), a1 = a0, a2 = a0, a3 = a0;
        for (size_t c = 0; c < d; c += ATTN_W) {
            const ATTN_VEC qv = ATTN_LOADU(qr + c);
            a0 = ATTN_FMADD(qv, ATTN_LOADU(k0 + c), a0);
            a1 = ATTN_FMADD(qv, ATTN_LOADU(k0 + d + c), a1);
            a2 = ATTN_FMADD(qv, ATTN_LOADU(k0 + 2 * d + c), a2);
            a3 = ATTN_FMADD(qv, ATTN_LOADU(k0 + 3 * d + c), a3);
        }
        s[j] = ATTN_HSUM(a0) * scale;
        s[j + 1] = ATTN_HSUM(a1) * scale;
        s[j + 2] = ATTN_HSUM(a2) * scale;
        s[j + 3] = ATTN_HSUM(a3) * scale;
    }
    for (; j < nv; j++) {
        const float *kj = k + (size_t)j * d;
        ATTN_VEC a0 = ATTN_ZERO();
        for (size_t c = 0; c < d; c += ATTN_W)
            a0 = ATTN_FMADD(ATTN_LOADU(qr + c), ATTN_LOADU(kj + c), a0);
        s[j] = ATTN_HSUM(a0) * scale;
    }
}

/* o += sum_j p[j] * v_j over j < nv (rows of d floats, d a multiple of ATTN_W): four vectors of o
 * at a time, then one. */
static inline void ATTN_FN(attn_pv)(size_t d, const float *p, int nv, const float *v, float *o)
{
    size_t c = 0;
    for (; c + 4 * ATTN_W <= d; c += 4 * ATTN_W) {
        ATTN_VEC o0 = ATTN_LOADU(o + c), o1 = ATTN_LOADU(o + c + ATTN_W);
        ATTN_VEC o2 = ATTN_LOADU(o + c + 2 * ATTN_W), o3 = ATTN_LOADU(o + c + 3 * ATTN_W);
        const float *vj = v + c;
        for (int j = 0; j < nv; j++, vj += d) {
            const ATTN_VEC pj = ATTN_SET1(p[j]);
            o0 = ATTN_FMADD(pj, ATTN_LOADU(vj), o0);
            o1 = ATTN_FMADD(pj, ATTN_LOADU(vj + ATTN_W), o1);
            o2 = ATTN_FMADD(pj, ATTN_LOADU(vj + 2 * ATTN_W), o2);
            o3 = ATTN_FMADD(pj, ATTN_LOADU(vj + 3 * ATTN_W), o3);
        }
        ATTN_STOREU(o + c, o0);
        ATTN_STOREU(o + c + ATTN_W, o1);
        ATTN_STOREU(o + c + 2 * ATTN_W, o2);
        ATTN_STOREU(o + c + 3 * ATTN_W, o3);
    }
    for (; c < d; c += ATTN_W) {
        ATTN_VEC o0 = ATTN_LOADU(o + c);
        const float *vj = v + c;
        for (int j = 0; j < nv; j++, vj += d)
            o0 = ATTN_FMADD(ATTN_SET1(p[j]), ATTN_LOADU(vj), o0);
        ATTN_STOREU(o + c, o0);
    }
}

#undef ATTN_FN
#undef ATTN_VEC
#undef ATTN_W
#undef ATTN_ZERO
#undef ATTN_SET1
#undef ATTN_LOADU
#undef ATTN_STOREU
#undef ATTN_FMADD
#undef ATTN_HSUM
