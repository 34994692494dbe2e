/*
 * kern_avx2.c - the AVX2 + FMA + F16C level (compiled with -mavx2 -mfma -mf16c only).
 */
#ifdef INFERNO_X86

#include <float.h>
#include <math.h>

#include "kernels/x86/kern_x86.h"
#include "kernels/x86/ops_x86.h"

/* ---- dot-product tiles ------------------------------------------------------------------- */

#define LEG_TILE(T, NR, NC, nb, w, ldw, a, lda, s, lds)                                            \
    x86_leg_tile(T, NR, NC, nb, w, ldw, a, lda, s, lds)
#define K_TILE(T, NR, NC, nb, w, ldw, a, lda, s, lds)                                              \
    x86_k_tile(T, NR, NC, nb, w, ldw, a, lda, s, lds)
#define F_TILE(T, NR, NC, n, w, ldw, a, lda, s, lds)                                               \
    x86_f_tile(T, NR, NC, n, w, ldw, a, lda, s, lds)

X86_GEMM_DISPATCH(gemm_q4_0, LEG_TILE, INF_TYPE_Q4_0, 2, 2, n / 32)
X86_GEMM_DISPATCH(gemm_q4_1, LEG_TILE, INF_TYPE_Q4_1, 2, 2, n / 32)
X86_GEMM_DISPATCH(gemm_q5_0, LEG_TILE, INF_TYPE_Q5_0, 2, 2, n / 32)
X86_GEMM_DISPATCH(gemm_q5_1, LEG_TILE, INF_TYPE_Q5_1, 2, 2, n / 32)
X86_GEMM_DISPATCH(gemm_q8_0, LEG_TILE, INF_TYPE_Q8_0, 2, 2, n / 32)
X86_GEMM_DISPATCH(gemm_mxfp4, LEG_TILE, INF_TYPE_MXFP4, 2, 2, n / 32)
X86_GEMM_DISPATCH(gemm_q2_K, K_TILE, INF_TYPE_Q2_K, 1, 4, n / 256)
X86_GEMM_DISPATCH(gemm_q3_K, K_TILE, INF_TYPE_Q3_K, 1, 4, n / 256)
X86_GEMM_DISPATCH(gemm_q4_K, K_TILE, INF_TYPE_Q4_K, 1, 4, n / 256)
X86_GEMM_DISPATCH(gemm_q5_K, K_TILE, INF_TYPE_Q5_K, 1, 4, n / 256)
X86_GEMM_DISPATCH(gemm_q6_K, K_TILE, INF_TYPE_Q6_K, 1, 4, n / 256)
X86_GEMM_DISPATCH_MV(gemm_f32, F_TILE, INF_TYPE_F32, 2, 4, n, 4)
X86_GEMM_DISPATCH_MV(gemm_f16, F_TILE, INF_TYPE_F16, 2, 4, n, 4)
X86_GEMM_DISPATCH_MV(gemm_bf16, F_TILE, INF_TYPE_BF16, 2, 4, n, 4)

void inf__kern_init_avx2(struct inf__kern *k)
{
    k->level = INF_CPU_AVX2;
#define W(T, fn, mr, mc) k->w[T] = (struct inf__wkern){.gemm = fn, .max_nr = mr, .max_nc = mc};
    X86_QUANT_GEMMS(W)
    W(INF_TYPE_F32, gemm_f32, 4, 4)
    W(INF_TYPE_F16, gemm_f16, 4, 4)
    W(INF_TYPE_BF16, gemm_bf16, 4, 4)
    W(INF_TYPE_MXFP4, gemm_mxfp4, 4, 2)
#undef W
    x86_ops_init_256(k);
    inf__kern_init_avx2_x16(k);
    inf__kern_init_avx2_f16(k);
    inf__kern_init_avx2_kq(k);
}

#else
typedef int inf__kern_avx2_unused; /* ISO C: no empty translation units */
#endif
