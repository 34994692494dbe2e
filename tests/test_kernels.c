/*
 * test_kernels.c - formats, reference kernels against llama.cpp's bytes, and every SIMD level
 * the machine supports against the reference kernels.
 *
 * Tolerances (SIMD level vs reference):
 *   activation quantizers (Q8_0, Q8_1, Q8_K), F16 conversions: identical bytes;
 *   quantized dot products / tiles / inf_matmul: |got - ref| <= 2e-5 * sum_i |w_i a_i| (the
 *     integer sums are exact, only the order of float accumulation differs);
 *   F32/F16/BF16 weights: <= 1e-4 * sum_i |w_i a_i| (the reference sums in double);
 *   dot_f32/dot_f16: 1e-5 * sum |a b|; rms_norm, softmax, silu, swiglu, gelu: 1e-5 relative plus
 *   1e-6 (softmax 1e-7, gelu 2e-6) absolute; axpy 1e-6, axpy4 1e-5; rope 1e-6; attention
 *   1e-5 * sum of |terms| + 1e-6; add/mul/scale exact.
 * Sizes include ones that are not multiples of the SIMD width wherever the format allows.
 */
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inferno/kernels.h"
#include "inferno/threadpool.h"
#include "kernels/blocks.h"
#include "kernels/fp16.h"
#include "kernels/internal.h"
#include "t.h"

/* ---- data ---------------------------------------------------------------------------------- */

static double rng_unit(void)
{
    return (double)(t_rng() >> 11) * (1.0 / 9007199254740992.0);
}

static float rng_normal(void)
{
    const double u1 = rng_unit() + 1e-300, u2 = rng_unit();
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

/* Random values whose scale changes from block to block, with zero runs and outliers. */
static void fill_random(float *x, int64_t n)
{
    float scale = 1.0f;
    for (int64_t i = 0; i < n; i++) {
        if (i % 32 == 0)
            scale = (float)pow(10.0, rng_unit() * 4.0 - 2.0);
        x[i] = rng_normal() * scale;
        if (t_rng() % 61 == 0)
            x[i] *= 10.0f;
    }
    if (n >= 96)
        memset(x + 64, 0, 32 * sizeof(float)); /* one all-zero block */
}

/* The activations as the products quantize them, by the scalar reference: Q8_0 and Q8_1 round
 * ties to even with 127 / amax (matmul.c), where the file format's quantizer rounds them away from
 * zero with 1 / d; a level's one rounding apart moves a product by a whole level of a value. */
static void act_ref(enum inf_type at, const float *x, void *a, int64_t n)
{
    if (at == INF_TYPE_Q8_0)
        inf__act_q8_0_ref(x, a, n);
    else if (at == INF_TYPE_Q8_1)
        inf__act_q8_1_ref(x, a, n);
    else
        inf_type_get(at)->from_float_ref(x, a, n);
}

static void *xalloc(size_t n)
{
    void *p = aligned_alloc(64, (n + 63) / 64 * 64);
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    memset(p, 0, (n + 63) / 64 * 64);
    return p;
}

static uint64_t fnv1a(const void *p, size_t n)
{
    const uint8_t *b = p;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 1099511628211ull;
    }
    return h;
}

/* A pool of two threads (the tests' threaded runs). */
static struct inf_threadpool *new_pool2(void)
{
    struct inf_threadpool_params pp;
    inf_threadpool_params_init(&pp);
    pp.n_threads = 2;
    struct inf_threadpool *pool = NULL;
    T_EQ_INT(inf_threadpool_new(&pp, &pool, NULL), INF_OK);
    return pool;
}

static const enum inf_type weight_types[] = {
    INF_TYPE_F32,  INF_TYPE_F16,  INF_TYPE_BF16, INF_TYPE_Q4_0,  INF_TYPE_Q4_1,
    INF_TYPE_Q5_0, INF_TYPE_Q5_1, INF_TYPE_Q8_0, INF_TYPE_Q2_K,  INF_TYPE_Q3_K,
    INF_TYPE_Q4_K, INF_TYPE_Q5_K, INF_TYPE_Q6_K, INF_TYPE_MXFP4,
};
#define N_WEIGHT_TYPES (sizeof(weight_types) / sizeof(weight_types[0]))

/* ---- layouts and traits -------------------------------------------------------------------- */

static void test_traits(void)
{
    static const struct {
        enum inf_type t;
        int blck;
        size_t bytes;
        enum inf_type dot;
    } want[] = {
        {INF_TYPE_F32, 1, 4, INF_TYPE_F32},       {INF_TYPE_F16, 1, 2, INF_TYPE_F32},
        {INF_TYPE_BF16, 1, 2, INF_TYPE_F32},      {INF_TYPE_Q4_0, 32, 18, INF_TYPE_Q8_0},
        {INF_TYPE_Q4_1, 32, 20, INF_TYPE_Q8_1},   {INF_TYPE_Q5_0, 32, 22, INF_TYPE_Q8_0},
        {INF_TYPE_Q5_1, 32, 24, INF_TYPE_Q8_1},   {INF_TYPE_Q8_0, 32, 34, INF_TYPE_Q8_0},
        {INF_TYPE_Q8_1, 32, 36, INF_TYPE_Q8_1},   {INF_TYPE_Q2_K, 256, 84, INF_TYPE_Q8_K},
        {INF_TYPE_Q3_K, 256, 110, INF_TYPE_Q8_K}, {INF_TYPE_Q4_K, 256, 144, INF_TYPE_Q8_K},
        {INF_TYPE_Q5_K, 256, 176, INF_TYPE_Q8_K}, {INF_TYPE_Q6_K, 256, 210, INF_TYPE_Q8_K},
        {INF_TYPE_Q8_K, 256, 292, INF_TYPE_Q8_K}, {INF_TYPE_MXFP4, 32, 17, INF_TYPE_Q8_0},
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        const struct inf_type_traits *t = inf_type_get(want[i].t);
        T_OK(t != NULL);
        if (!t)
            continue;
        T_EQ_INT(t->blck_size, want[i].blck);
        T_EQ_U64(t->type_size, want[i].bytes);
        T_EQ_INT(t->vec_dot_type, want[i].dot);
        T_EQ_U64(inf_type_row_size(want[i].t, 4096), 4096 / want[i].blck * want[i].bytes);
    }
    T_EQ_STR(inf_type_name(INF_TYPE_Q4_K), "q4_K");
    T_EQ_STR(inf_type_name((enum inf_type)4), "?");
    T_OK(inf_type_get((enum inf_type)16) == NULL); /* IQ2_XXS: not implemented */
    T_OK(inf_type_get((enum inf_type)1000) == NULL);
    T_OK(inf_type_get((enum inf_type) - 1) == NULL);

    struct inf_error err = {0};
    float x[33] = {0};
    uint8_t buf[64];
    T_EQ_INT(inf_quantize_row(INF_TYPE_Q4_0, x, buf, 33, &err), INF_EINVAL);
    T_CONTAINS(err.msg, "q4_0");
    T_EQ_INT(inf_quantize_row((enum inf_type)20, x, buf, 32, &err), INF_EUNSUPPORTED);
    T_EQ_INT(inf_dequantize_row(INF_TYPE_Q8_K, buf, x, 32, &err), INF_EINVAL);
    T_EQ_INT(inf_quantize_row(INF_TYPE_Q4_0, x, buf, 32, NULL), INF_OK);
}

/* inf_quantize_rows (threads) writes the bytes of inf_quantize_row. */
static void test_quantize_rows(void)
{
    struct inf_threadpool *pool = new_pool2();
    const int64_t rows = 7, n = 512;
    float *x = xalloc((size_t)(rows * n) * sizeof(float));
    fill_random(x, rows * n);
    for (size_t ti = 0; ti < N_WEIGHT_TYPES; ti++) {
        const enum inf_type t = weight_types[ti];
        const size_t rb = inf_type_row_size(t, n);
        uint8_t *a = xalloc(rb * (size_t)rows), *b = xalloc(rb * (size_t)rows);
        for (int64_t r = 0; r < rows; r++)
            inf_quantize_row(t, x + r * n, a + (size_t)r * rb, n, NULL);
        T_EQ_INT(inf_quantize_rows(pool, t, x, b, rows, n, NULL), INF_OK);
        T_OK(memcmp(a, b, rb * (size_t)rows) == 0);
        free(a);
        free(b);
    }
    T_EQ_INT(inf_quantize_rows(NULL, INF_TYPE_Q4_K, x, x, 1, 100, NULL), INF_EINVAL);
    free(x);
    inf_threadpool_free(pool);
}

/* ---- 16-bit floats ------------------------------------------------------------------------- */

static void test_fp16(void)
{
    T_EQ_INT(inf_fp32_to_fp16(1.0f), 0x3c00);
    T_EQ_INT(inf_fp32_to_fp16(-2.0f), 0xc000);
    T_EQ_INT(inf_fp32_to_fp16(65504.0f), 0x7bff);
    T_EQ_INT(inf_fp32_to_fp16(65519.99f), 0x7bff);
    T_EQ_INT(inf_fp32_to_fp16(65520.0f), 0x7c00); /* ties to even: rounds up to infinity */
    T_EQ_INT(inf_fp32_to_fp16(INFINITY), 0x7c00);
    T_EQ_INT(inf_fp32_to_fp16(-INFINITY), 0xfc00);
    T_EQ_INT(inf_fp32_to_fp16(NAN) & 0x7fff, 0x7e00);
    T_EQ_INT(inf_fp32_to_fp16(ldexpf(1.0f, -24)), 0x0001); /* smallest subnormal */
    T_EQ_INT(inf_fp32_to_fp16(ldexpf(1.0f, -25)), 0x0000); /* tie: to even (zero) */
    T_EQ_INT(inf_fp32_to_fp16(ldexpf(1.5f, -25)), 0x0001);
    T_EQ_INT(inf_fp32_to_fp16(ldexpf(3.0f, -25)), 0x0002);        /* 1.5 ulp: tie to even (2) */
    T_EQ_INT(inf_fp32_to_fp16(ldexpf(1.0f, -14)), 0x0400);        /* smallest normal */
    T_EQ_INT(inf_fp32_to_fp16(1.0f + ldexpf(1.0f, -11)), 0x3c00); /* tie to even */
    T_EQ_INT(inf_fp32_to_fp16(1.0f + ldexpf(3.0f, -11)), 0x3c02);
    T_EQ_INT(inf_fp32_to_fp16(-0.0f), 0x8000);
    /* every binary16 survives a round trip; NaNs stay NaN */
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        const float f = inf_fp16_to_fp32((inf_fp16)h);
        const bool is_nan = (h & 0x7c00) == 0x7c00 && (h & 0x3ff);
        if (is_nan ? !isnan(f) : inf_fp32_to_fp16(f) != h)
            bad++;
    }
    T_EQ_INT(bad, 0);
    T_EQ_INT(inf_fp32_to_bf16(1.0f), 0x3f80);
    T_EQ_INT(inf_fp32_to_bf16(inf__f32_from_bits(0x3f808000u)), 0x3f80); /* tie to even */
    T_EQ_INT(inf_fp32_to_bf16(inf__f32_from_bits(0x3f818000u)), 0x3f82);
    T_EQ_INT(inf_fp32_to_bf16(inf__f32_from_bits(0x7f800001u)), 0x7fc0); /* NaN made quiet */
    T_NEAR(inf_bf16_to_fp32(0xc040), -3.0f, 0);
}

/* ---- the reference quantizers against llama.cpp -------------------------------------------- */

/*
 * The input of the golden vectors: an LCG whose values are exact binary32 numbers (24-bit
 * integers times powers of two), so the C code that made the goldens reproduces it exactly.
 */
static void golden_input(float *x, int n, uint32_t seed)
{
    uint32_t s = seed;
    for (int i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        const int32_t v = (int32_t)(s >> 8) - (1 << 23);
        const float scale = (float)(1u << ((i / 32) % 5)) * 0.25f;
        x[i] = (float)v * (1.0f / 8388608.0f) * scale;
        if (i % 37 == 0)
            x[i] = 0.0f;
        if (i % 101 == 5)
            x[i] = -x[i] * 8.0f;
    }
    for (int i = 64; i < 96; i++)
        x[i] = 0.0f;
}

/*
 * FNV-1a hashes of the bytes llama.cpp writes for golden_input(1024 values, seed 12345) and of
 * its dequantization of them, made with ggml (llama.cpp 0.5.0's ggml, libggml-base):
 * ggml_quantize_chunk(type, x, q, 0, 4, 256, NULL) - the function llama-quantize calls, with no
 * importance matrix - then ggml_get_type_traits(type)->to_float(q, y, 1024); Q8_1 and Q8_K with
 * quantize_row_q8_1_ref / quantize_row_q8_K_ref. See tools/kernels-crosscheck.md.
 */
static const struct {
    enum inf_type type;
    size_t bytes;
    uint64_t quant_hash, dequant_hash;
} llama_golden[] = {
    {INF_TYPE_F16, 2048, 0x225754e6682d1662ull, 0xfcf9fbf7156e5934ull},
    {INF_TYPE_BF16, 2048, 0xeb1e44a9500c6b5dull, 0xa325508846516a45ull},
    {INF_TYPE_Q4_0, 576, 0x96028de496059343ull, 0x74eb3202ee1f9fd8ull},
    {INF_TYPE_Q4_1, 640, 0xa3fb6f95e9974918ull, 0x6e4e6476b7e9dae0ull},
    {INF_TYPE_Q5_0, 704, 0xdd58fcec58ad0902ull, 0xd84c0e5ae8106dd5ull},
    {INF_TYPE_Q5_1, 768, 0xa6ab99188e5c46d2ull, 0xcedcabe7d9478d3aull},
    {INF_TYPE_Q8_0, 1088, 0xed3e8e8855f6a2fbull, 0x204dacc59c643c0full},
    {INF_TYPE_Q2_K, 336, 0x763c3c23d41684cbull, 0xe118befed8033df3ull},
    {INF_TYPE_Q3_K, 440, 0x7091a51c630c9b07ull, 0xdceca071a854cacdull},
    {INF_TYPE_Q4_K, 576, 0xd4eb84337a57d4dfull, 0xc7a0a17cb3e8e98cull},
    {INF_TYPE_Q5_K, 704, 0x1d9702d2ddce0e58ull, 0xe61ff994e8292713ull},
    {INF_TYPE_Q6_K, 840, 0xd195fddf80e3eacaull, 0xd48a4eeee8c9b6f7ull},
    {INF_TYPE_MXFP4, 544, 0xb26b4bfa1f77467eull, 0xf72538ddb30ccb24ull},
    {INF_TYPE_Q8_1, 1152, 0x751b046128b0a81bull, 0},
    {INF_TYPE_Q8_K, 1168, 0x4c302caa90dd858eull, 0},
};

static void test_llama_golden(void)
{
    float x[1024], y[1024];
    static uint8_t q[8192];
    golden_input(x, 1024, 12345u);
    T_EQ_U64(fnv1a(x, sizeof(x)), 0xb61832c4b544e9bbull); /* the input itself */
    for (size_t i = 0; i < sizeof(llama_golden) / sizeof(llama_golden[0]); i++) {
        const enum inf_type t = llama_golden[i].type;
        t__current = inf_type_name(t);
        T_EQ_U64(inf_type_row_size(t, 1024), llama_golden[i].bytes);
        T_EQ_INT(inf_quantize_row(t, x, q, 1024, NULL), INF_OK);
        T_EQ_U64(fnv1a(q, llama_golden[i].bytes), llama_golden[i].quant_hash);
        if (llama_golden[i].dequant_hash) {
            T_EQ_INT(inf_dequantize_row(t, q, y, 1024, NULL), INF_OK);
            T_EQ_U64(fnv1a(y, sizeof(y)), llama_golden[i].dequant_hash);
        }
    }
}

/* Quantization error: each format within its expected bound on Gaussian data. */
static void test_quant_error(void)
{
    static const struct {
        enum inf_type t;
        double max_rel_rmse;
    } bound[] = {
        {INF_TYPE_F16, 0.0005}, {INF_TYPE_BF16, 0.004}, {INF_TYPE_Q8_0, 0.006},
        {INF_TYPE_Q6_K, 0.02},  {INF_TYPE_Q5_0, 0.05},  {INF_TYPE_Q5_1, 0.045},
        {INF_TYPE_Q5_K, 0.04},  {INF_TYPE_Q4_0, 0.1},   {INF_TYPE_Q4_1, 0.09},
        {INF_TYPE_Q4_K, 0.08},  {INF_TYPE_Q3_K, 0.17},  {INF_TYPE_Q2_K, 0.33},
        {INF_TYPE_MXFP4, 0.2},
    };
    const int64_t n = 8192;
    float *x = xalloc(n * sizeof(float)), *y = xalloc(n * sizeof(float));
    uint8_t *q = xalloc(n * 4);
    for (int64_t i = 0; i < n; i++)
        x[i] = rng_normal();
    for (size_t i = 0; i < sizeof(bound) / sizeof(bound[0]); i++) {
        t__current = inf_type_name(bound[i].t);
        inf_quantize_row(bound[i].t, x, q, n, NULL);
        inf_dequantize_row(bound[i].t, q, y, n, NULL);
        double e = 0, s = 0;
        for (int64_t j = 0; j < n; j++) {
            e += (double)(y[j] - x[j]) * (y[j] - x[j]);
            s += (double)x[j] * x[j];
        }
        const double rel = sqrt(e / s);
        if (rel > bound[i].max_rel_rmse)
            T__FAIL("relative rmse %.4f > %.4f", rel, bound[i].max_rel_rmse);
        else
            t__passed++;
    }
    free(x);
    free(y);
    free(q);
}

/* ---- SIMD levels against the reference ------------------------------------------------------- */

static const struct inf__kern *levels[INF_CPU_LEVEL_COUNT];
static int n_levels;

static void find_levels(void)
{
    for (int l = 0; l < INF_CPU_LEVEL_COUNT; l++) {
        const struct inf__kern *k = inf__kern_get((enum inf_cpu_level)l);
        if (k)
            levels[n_levels++] = k;
    }
    printf("levels:");
    for (int i = 0; i < n_levels; i++)
        printf(" %s", inf_cpu_level_name(levels[i]->level));
    printf("%s\n", inf_kernels_have_vnni() ? " (with VNNI)" : "");
}

static void test_act_quant_exact(void)
{
    static const enum inf_type acts[] = {INF_TYPE_Q8_0, INF_TYPE_Q8_1, INF_TYPE_Q8_K};
    const int64_t sizes[] = {256, 512, 1024, 4096, 11008};
    float *x = xalloc(11008 * sizeof(float));
    uint8_t *a = xalloc(11008 * 2), *b = xalloc(11008 * 2);
    for (int li = 0; li < n_levels; li++) {
        for (size_t ai = 0; ai < 3; ai++) {
            const enum inf_type at = acts[ai];
            for (size_t si = 0; si < sizeof(sizes) / sizeof(sizes[0]); si++) {
                const int64_t n = sizes[si];
                fill_random(x, n);
                if (si == 1) /* exact halves: the rounding of ties */
                    for (int64_t i = 0; i < n; i++)
                        x[i] = (float)((int)(t_rng() % 255) - 127) * 0.5f;
                const size_t bytes = inf_type_row_size(at, n);
                act_ref(at, x, a, n);
                memset(b, 0x5a, bytes);
                levels[li]->quantize_act[at](x, b, n);
                if (memcmp(a, b, bytes) != 0)
                    T__FAIL("%s %s n=%lld: bytes differ from the reference",
                            inf_cpu_level_name(levels[li]->level), inf_type_name(at), (long long)n);
                else
                    t__passed++;
            }
        }
    }
    /* Values derived by hand: amax 127 gives the inverse scale 1, so each value rounds on its
     * own, ties to even (llama.cpp's run-time quantizer), where the file quantizer rounds them
     * away from zero. */
    float blk[32] = {127.0f, 63.5f, 62.5f, -0.5f, 1.5f, -2.5f, 0.49f, -126.5f};
    const int8_t want[8] = {127, 64, 62, 0, 2, -2, 0, -126};
    for (int li = 0; li < n_levels; li++) {
        struct inf_block_q8_0 q;
        levels[li]->quantize_act[INF_TYPE_Q8_0](blk, &q, 32);
        if (memcmp(q.qs, want, sizeof(want)) != 0 || inf_fp16_to_fp32(q.d) != 1.0f)
            T__FAIL("%s: hand-derived Q8_0 activation block differs",
                    inf_cpu_level_name(levels[li]->level));
        else
            t__passed++;
    }
    free(x);
    free(a);
    free(b);
}

/* fp16 field offsets in a block (scales that random bytes must not turn into NaN/inf). */
static void sanitize_scales(enum inf_type t, uint8_t *blocks, int64_t n_blocks)
{
    int off[2] = {-1, -1};
    switch (t) {
    case INF_TYPE_Q4_0:
    case INF_TYPE_Q5_0:
    case INF_TYPE_Q8_0:
        off[0] = 0;
        break;
    case INF_TYPE_Q4_1:
    case INF_TYPE_Q5_1:
    case INF_TYPE_Q4_K:
    case INF_TYPE_Q5_K:
        off[0] = 0, off[1] = 2;
        break;
    case INF_TYPE_Q2_K:
        off[0] = 80, off[1] = 82;
        break;
    case INF_TYPE_Q3_K:
        off[0] = 108;
        break;
    case INF_TYPE_Q6_K:
        off[0] = 208;
        break;
    case INF_TYPE_MXFP4: /* the E8M0 exponent: 2^-10 .. 2^5, not infinity */
        for (int64_t b = 0; b < n_blocks; b++)
            blocks[(size_t)b * 17] = (uint8_t)(118 + blocks[(size_t)b * 17] % 16);
        return;
    default:
        return;
    }
    const size_t bs = inf_type_get(t)->type_size;
    for (int64_t b = 0; b < n_blocks; b++)
        for (int k = 0; k < 2; k++)
            if (off[k] >= 0) {
                const inf_fp16 h = inf_fp32_to_fp16((float)(rng_unit() * 0.02 - 0.005));
                memcpy(blocks + (size_t)b * bs + (size_t)off[k], &h, 2);
            }
}

/* Sum of |w_i * a_i| over a row, from the dequantized values: the scale of rounding errors. */
static double abs_dot(enum inf_type wt, const void *w, const void *act, int64_t n, float *tw,
                      float *ta)
{
    const struct inf_type_traits *t = inf_type_get(wt);
    t->to_float(w, tw, n);
    inf_type_get(t->vec_dot_type)->to_float(act, ta, n);
    double s = 0;
    for (int64_t i = 0; i < n; i++)
        s += fabs((double)tw[i] * ta[i]);
    return s;
}

/*
 * One product test: rows weight rows and cols activation rows of up to n_max values, the
 * reference products s_ref[c * rows + r] with abssum, the scale of their rounding errors, and a
 * grid s_got of the same shape for a kernel to write into; x, tw, ta are scratch rows.
 */
struct gemm_case {
    int rows, cols;
    enum inf_type wt;
    int64_t n;
    size_t ldw, lda;
    uint8_t *w, *a;
    float *s_ref, *s_got, *x, *tw, *ta;
    double *abssum;
};

static void gemm_case_alloc(struct gemm_case *g, int64_t n_max, int rows, int cols)
{
    const size_t cells = (size_t)rows * (size_t)cols;
    g->rows = rows;
    g->cols = cols;
    g->x = xalloc((size_t)n_max * sizeof(float));
    g->tw = xalloc((size_t)n_max * sizeof(float));
    g->ta = xalloc((size_t)n_max * sizeof(float));
    g->w = xalloc((size_t)rows * (size_t)n_max * 4);
    g->a = xalloc((size_t)cols * ((size_t)n_max * 4 + 64));
    g->s_ref = xalloc(cells * sizeof(float));
    g->s_got = xalloc(cells * sizeof(float));
    g->abssum = xalloc(cells * sizeof(double));
}

static void gemm_case_free(struct gemm_case *g)
{
    free(g->x);
    free(g->tw);
    free(g->ta);
    free(g->w);
    free(g->a);
    free(g->s_ref);
    free(g->s_got);
    free(g->abssum);
}

/*
 * Fill the case for type wt and length n: weights from random floats (variant 0) or, for the
 * quantized formats, random bits with sane scales (variant 1); activations quantized from random
 * floats at a ragged stride; then the reference products.
 */
static void gemm_case_fill(struct gemm_case *g, enum inf_type wt, int64_t n, int variant)
{
    const struct inf_type_traits *t = inf_type_get(wt);
    const struct inf_type_traits *at = inf_type_get(t->vec_dot_type);
    g->wt = wt;
    g->n = n;
    g->ldw = inf_type_row_size(wt, n);
    g->lda = inf_type_row_size(t->vec_dot_type, n) + 64;
    for (int r = 0; r < g->rows; r++) {
        uint8_t *wr = g->w + (size_t)r * g->ldw;
        if (variant == 0 || !t->is_quantized) {
            fill_random(g->x, n);
            t->from_float_ref(g->x, wr, n);
        } else {
            for (size_t b = 0; b < g->ldw; b++)
                wr[b] = (uint8_t)t_rng();
            sanitize_scales(wt, wr, n / t->blck_size);
        }
    }
    for (int c = 0; c < g->cols; c++) {
        fill_random(g->x, n);
        at->from_float_ref(g->x, g->a + (size_t)c * g->lda, n);
    }
    const inf__vec_dot_fn dot = inf__vec_dot_ref(wt);
    for (int c = 0; c < g->cols; c++)
        for (int r = 0; r < g->rows; r++) {
            const uint8_t *wr = g->w + (size_t)r * g->ldw, *ac = g->a + (size_t)c * g->lda;
            g->s_ref[c * g->rows + r] = dot(n, wr, ac);
            g->abssum[c * g->rows + r] = abs_dot(wt, wr, ac, n, g->tw, g->ta);
        }
}

/*
 * Run one entry of a level's kernels (gemm or panel) for nr x nc outputs into the NaN-filled
 * grid, and compare: the nr x nc corner within rel * abssum of the reference, the rest of the
 * grid untouched. Counts a pass, or reports the first bad cell.
 */
static void gemm_case_check(struct gemm_case *g, const struct inf__kern *k, inf__gemm_fn fn,
                            const char *what, int variant, int nr, int nc, double rel)
{
    const int cells = g->rows * g->cols;
    for (int i = 0; i < cells; i++)
        g->s_got[i] = NAN;
    fn(g->n, g->w, g->ldw, g->a, g->lda, g->s_got, (size_t)g->rows, nr, nc);
    for (int i = 0; i < cells; i++) {
        const int c = i / g->rows, r = i % g->rows;
        const bool in = r < nr && c < nc;
        const double tol = rel * g->abssum[i] + 1e-30;
        if (in ? !(fabs((double)g->s_got[i] - g->s_ref[i]) <= tol) : !isnan(g->s_got[i])) {
            T__FAIL("%s %s n=%lld v%d %dx%d [%d,%d]: %.9g vs ref %.9g (tol %.3g)",
                    inf_cpu_level_name(k->level), what, (long long)g->n, variant, nr, nc, r, c,
                    g->s_got[i], in ? g->s_ref[i] : NAN, tol);
            return;
        }
    }
    t__passed++;
}

/* The tolerance of a type's products (module comment). */
static double gemm_rel(enum inf_type wt)
{
    return inf_type_get(wt)->is_quantized ? 2e-5 : 1e-4;
}

static void test_gemm_levels(void)
{
    static const int64_t sizes_f[] = {1, 3, 7, 8, 9, 15, 16, 17, 31, 33, 64, 100, 255, 1000, 4099};
    static const int64_t sizes_32[] = {32, 64, 96, 160, 256, 1024, 4128};
    static const int64_t sizes_k[] = {256, 512, 768, 1280, 4096};
    const int rows = 5, cols = 5;
    struct gemm_case g;
    gemm_case_alloc(&g, 4128, rows, cols);
    for (size_t ti = 0; ti < N_WEIGHT_TYPES; ti++) {
        const enum inf_type wt = weight_types[ti];
        const struct inf_type_traits *t = inf_type_get(wt);
        t__current = t->name;
        const int64_t *sizes = t->blck_size == 1    ? sizes_f
                               : t->blck_size == 32 ? sizes_32
                                                    : sizes_k;
        const size_t n_sizes = t->blck_size == 1    ? sizeof(sizes_f) / sizeof(sizes_f[0])
                               : t->blck_size == 32 ? sizeof(sizes_32) / sizeof(sizes_32[0])
                                                    : sizeof(sizes_k) / sizeof(sizes_k[0]);
        for (size_t si = 0; si < n_sizes; si++)
            for (int variant = 0; variant < 2; variant++) {
                gemm_case_fill(&g, wt, sizes[si], variant);
                for (int li = 0; li < n_levels; li++)
                    for (int nr = 1; nr <= rows; nr++)
                        for (int nc = 1; nc <= cols; nc++)
                            if (!(nr > 2 && nr < rows && nc > 2 && nc < cols)) /* enough shapes */
                                gemm_case_check(&g, levels[li], levels[li]->w[wt].gemm, "tile",
                                                variant, nr, nc, gemm_rel(wt));
            }
    }
    gemm_case_free(&g);
}

/* Row counts past every level's tiles (the 8-row F16/BF16 tiles of AVX-512 among them), through
 * the gemm entry of every weight type, 1..4 tokens; its own random stream. */
static void test_gemm_tall(void)
{
    const uint64_t saved_rng = t_rng_state;
    t_rng_state = 0x9e3779b97f4a7c15ull;
    static const int64_t sizes[] = {1, 17, 100, 768, 1031};
    enum { ROWS = 19, COLS = 4 };
    struct gemm_case g;
    gemm_case_alloc(&g, 1031, ROWS, COLS);
    for (size_t ti = 0; ti < N_WEIGHT_TYPES; ti++) {
        const enum inf_type wt = weight_types[ti];
        const struct inf_type_traits *t = inf_type_get(wt);
        t__current = t->name;
        for (size_t si = 0; si < sizeof(sizes) / sizeof(sizes[0]); si++) {
            const int64_t n = sizes[si] / t->blck_size * t->blck_size;
            if (n == 0)
                continue;
            gemm_case_fill(&g, wt, n, 0);
            for (int li = 0; li < n_levels; li++) {
                const struct inf__wkern *wk = &levels[li]->w[wt];
                for (int nr = 6; nr <= ROWS; nr++)
                    for (int nc = 1; nc <= COLS && nc <= wk->max_nc; nc++)
                        gemm_case_check(&g, levels[li], wk->gemm, "tall", 0, nr, nc, gemm_rel(wt));
            }
        }
    }
    gemm_case_free(&g);
    t_rng_state = saved_rng;
}

/* The panel kernels (batches of many tokens): odd row and token counts, all sizes, against the
 * reference dot product, with random-bit weights (extreme levels) and quantized floats. */
static void test_gemm_panels(void)
{
    /* its own random stream: the tests after it keep their data */
    const uint64_t saved_rng = t_rng_state;
    t_rng_state = 0x2545f4914f6cdd1dull;
    static const int64_t sizes_32[] = {32, 64, 96, 160, 256, 768, 1024, 4128};
    /* F16/BF16 (blocks of 1): lengths that are not a multiple of 16 or 32, and short ones */
    static const int64_t sizes_f[] = {1, 7, 16, 17, 33, 100, 255, 1000, 4099};
    static const int nrs[] = {1, 5, 15, 16, 17, 31, 33, 40, 64};
    static const int ncs[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13};
    struct gemm_case g;
    gemm_case_alloc(&g, 4128, 64, 13);
    for (size_t ti = 0; ti < N_WEIGHT_TYPES; ti++) {
        const enum inf_type wt = weight_types[ti];
        int any = 0;
        for (int li = 0; li < n_levels; li++)
            any |= levels[li]->w[wt].panel != NULL;
        if (!any)
            continue;
        const struct inf_type_traits *t = inf_type_get(wt);
        t__current = t->name;
        const int64_t *sizes = t->blck_size == 1 ? sizes_f : sizes_32;
        const size_t n_sizes = t->blck_size == 1 ? sizeof(sizes_f) / sizeof(sizes_f[0])
                                                 : sizeof(sizes_32) / sizeof(sizes_32[0]);
        for (size_t si = 0; si < n_sizes; si++) {
            const int64_t n = sizes[si] / t->blck_size * t->blck_size;
            if (n == 0)
                continue;
            for (int variant = 0; variant < 2; variant++) {
                gemm_case_fill(&g, wt, n, variant);
                for (int li = 0; li < n_levels; li++) {
                    const struct inf__wkern *wk = &levels[li]->w[wt];
                    if (!wk->panel)
                        continue;
                    for (size_t ri = 0; ri < sizeof(nrs) / sizeof(nrs[0]); ri++)
                        for (size_t ci = 0; ci < sizeof(ncs) / sizeof(ncs[0]); ci++)
                            gemm_case_check(&g, levels[li], wk->panel, "panel", variant, nrs[ri],
                                            ncs[ci], 2e-5);
                }
            }
        }
    }
    gemm_case_free(&g);
    t_rng_state = saved_rng;
}

/* inf_matmul (with and without threads, one token and batches) against the reference. */
/* The tables test_matmul runs: each level, then (with AVX2 and AVX-512) two mixed ones as a
 * measurement may choose: every type's gemm from AVX2 or AVX-512 in turn, the panels the top
 * level's (see struct inf__kchoice). */
static int n_configs(void)
{
    const bool two =
        inf_cpu_level_supported(INF_CPU_AVX2) && inf_cpu_level_supported(INF_CPU_AVX512);
    return n_levels + (two ? 2 : 0);
}

static const char *use_config(int ci)
{
    if (ci < n_levels) {
        inf_kernels_set_level(levels[ci]->level, NULL);
        return inf_cpu_level_name(levels[ci]->level);
    }
    struct inf__kchoice c;
    memset(&c, 0, sizeof(c));
    for (int t = 0; t < INF_TYPE_COUNT; t++)
        c.level[t] = (int8_t)((t + ci) % 2 ? INF_CPU_AVX2 : INF_CPU_AVX512);
    inf__kern_use_choice(&c);
    return ci == n_levels ? "mixed-a" : "mixed-b";
}

static void test_matmul(void)
{
    struct inf_threadpool *pool = new_pool2();
    static const int64_t shapes[][3] = {{256, 1, 1},  {512, 7, 1},  {1024, 64, 1}, {768, 130, 1},
                                        {512, 33, 2}, {256, 17, 5}, {1024, 40, 16}};
    for (int li = 0; li < n_configs(); li++) {
        const char *cname = use_config(li);
        for (size_t ti = 0; ti < N_WEIGHT_TYPES; ti++) {
            const enum inf_type wt = weight_types[ti];
            const struct inf_type_traits *t = inf_type_get(wt);
            t__current = t->name;
            for (size_t si = 0; si < sizeof(shapes) / sizeof(shapes[0]); si++) {
                const int64_t n = shapes[si][0], n_rows = shapes[si][1], n_tok = shapes[si][2];
                const size_t ldw = inf_type_row_size(wt, n);
                uint8_t *w = xalloc(ldw * (size_t)n_rows);
                float *x = xalloc((size_t)(n_tok * (n + 3)) * sizeof(float));
                float *y = xalloc((size_t)(n_tok * (n_rows + 1)) * sizeof(float));
                float *xr = xalloc((size_t)n * sizeof(float));
                void *act = xalloc(inf_matmul_act_size(wt, n, n_tok));
                void *aref = xalloc(inf_type_row_size(t->vec_dot_type, n));
                float *tw = xalloc((size_t)n * sizeof(float)),
                      *ta = xalloc((size_t)n * sizeof(float));
                for (int64_t r = 0; r < n_rows; r++) {
                    fill_random(xr, n);
                    t->from_float_ref(xr, w + (size_t)r * ldw, n);
                }
                fill_random(x, n_tok * (n + 3));
                int bad = 0;
                for (int use_pool = 0; use_pool < 2; use_pool++) {
                    memset(y, 0xff, (size_t)(n_tok * (n_rows + 1)) * sizeof(float));
                    inf_matmul(use_pool ? pool : NULL, wt, w, ldw, n_rows, n, x, (size_t)(n + 3),
                               n_tok, y, (size_t)(n_rows + 1), act, 0);
                    for (int64_t tk = 0; tk < n_tok; tk++) {
                        act_ref(t->vec_dot_type, x + tk * (n + 3), aref, n);
                        for (int64_t r = 0; r < n_rows; r++) {
                            const float ref = inf__vec_dot_ref(wt)(n, w + (size_t)r * ldw, aref);
                            const double tol = (t->is_quantized ? 2e-5 : 1e-4) *
                                               abs_dot(wt, w + (size_t)r * ldw, aref, n, tw, ta);
                            const float got = y[tk * (n_rows + 1) + r];
                            if (!(fabs((double)got - ref) <= tol + 1e-30) && !bad++)
                                T__FAIL("%s pool=%d n=%lld rows=%lld tokens=%lld [%lld,%lld]: "
                                        "%.9g vs %.9g",
                                        cname, use_pool, (long long)n, (long long)n_rows,
                                        (long long)n_tok, (long long)tk, (long long)r, got, ref);
                        }
                    }
                }
                /* the two-step form gives the same numbers */
                float *y2 = xalloc((size_t)(n_tok * (n_rows + 1)) * sizeof(float));
                memset(y2, 0xff, (size_t)(n_tok * (n_rows + 1)) * sizeof(float));
                inf_matmul_quantize(pool, wt, x, (size_t)(n + 3), n, n_tok, act);
                inf_matmul_pre(pool, wt, w, ldw, n_rows, n, act, n_tok, y2, (size_t)(n_rows + 1));
                for (int64_t tk = 0; tk < n_tok; tk++)
                    if (memcmp(y + tk * (n_rows + 1), y2 + tk * (n_rows + 1),
                               (size_t)n_rows * sizeof(float)) != 0 &&
                        !bad++)
                        T__FAIL("%s: inf_matmul_pre differs from inf_matmul", cname);
                if (!bad)
                    t__passed++;
                free(y2);
                free(w);
                free(x);
                free(y);
                free(xr);
                free(act);
                free(aref);
                free(tw);
                free(ta);
            }
        }
    }
    inf_kernels_set_level(levels[n_levels - 1]->level, NULL);
    inf_threadpool_free(pool);
}

/*
 * INF_MATMUL_INVARIANT: at every level (and the mixed tables a measurement may choose), each
 * token's row of a batched product is bit for bit the row the matrix-vector product gives for
 * that token alone, for batch sizes across the gemm tiles' and the panels' ranges, with and
 * without threads, and with inf_matmul_multi (swiglu too). The contract the engine's
 * deterministic contexts rest on (test_invariance checks whole models).
 */
static void test_matmul_invariant(void)
{
    struct inf_threadpool *pool = new_pool2();
    static const int64_t toks[] = {2, 3, 5, 8, 17, 33};
    const int64_t n_rows = 37, nt_max = 33;
    for (int li = 0; li < n_configs(); li++) {
        const char *cname = use_config(li);
        for (size_t k2 = 0; k2 < 2 * N_WEIGHT_TYPES; k2++) {
            const enum inf_type wt = weight_types[k2 / 2];
            const struct inf_type_traits *t = inf_type_get(wt);
            const int64_t n = k2 % 2 ? 800 : 512; /* 800: an odd count of 32-value blocks */
            if (n % t->blck_size)
                continue;
            t__current = t->name;
            const size_t ldw = inf_type_row_size(wt, n);
            uint8_t *w = xalloc(ldw * (size_t)n_rows * 2);
            float *x = xalloc((size_t)(nt_max * n) * sizeof(float));
            float *xr = xalloc((size_t)n * sizeof(float));
            float *one = xalloc((size_t)(nt_max * n_rows) * sizeof(float));
            float *one2 = xalloc((size_t)(nt_max * n_rows) * sizeof(float));
            float *y = xalloc((size_t)(nt_max * n_rows) * sizeof(float));
            float *y2 = xalloc((size_t)(nt_max * n_rows) * sizeof(float));
            void *act = xalloc(inf_matmul_act_size(wt, n, nt_max));
            for (int64_t r = 0; r < 2 * n_rows; r++) {
                fill_random(xr, n);
                t->from_float_ref(xr, w + (size_t)r * ldw, n);
            }
            fill_random(x, nt_max * n);
            /* each token alone: the matrix-vector product (and silu(gate) * up) */
            for (int64_t tk = 0; tk < nt_max; tk++) {
                inf_matmul(pool, wt, w, ldw, n_rows, n, x + tk * n, (size_t)n, 1, one + tk * n_rows,
                           (size_t)n_rows, act, INF_MATMUL_INVARIANT);
                inf_matmul(pool, wt, w + (size_t)n_rows * ldw, ldw, n_rows, n, x + tk * n,
                           (size_t)n, 1, one2 + tk * n_rows, (size_t)n_rows, act,
                           INF_MATMUL_INVARIANT);
            }
            int bad = 0;
            for (size_t k = 0; k < sizeof(toks) / sizeof(toks[0]); k++) {
                const int64_t nt = toks[k];
                for (int use_pool = 0; use_pool < 2; use_pool++) {
                    inf_matmul(use_pool ? pool : NULL, wt, w, ldw, n_rows, n, x, (size_t)n, nt, y,
                               (size_t)n_rows, act, INF_MATMUL_INVARIANT);
                    for (int64_t tk = 0; tk < nt; tk++)
                        if (memcmp(y + tk * n_rows, one + tk * n_rows,
                                   (size_t)n_rows * sizeof(float)) != 0 &&
                            !bad++)
                            T__FAIL("%s: %lld tokens, pool=%d: token %lld differs from alone",
                                    cname, (long long)nt, use_pool, (long long)tk);
                }
                const struct inf_matmul_op ops[2] = {
                    {wt, w, ldw, n_rows, y, (size_t)n_rows},
                    {wt, w + (size_t)n_rows * ldw, ldw, n_rows, y2, (size_t)n_rows}};
                inf_matmul_multi(pool, 2, ops, n, x, (size_t)n, nt, act, false,
                                 INF_MATMUL_INVARIANT);
                if ((memcmp(y, one, (size_t)(nt * n_rows) * sizeof(float)) != 0 ||
                     memcmp(y2, one2, (size_t)(nt * n_rows) * sizeof(float)) != 0) &&
                    !bad++)
                    T__FAIL("%s: inf_matmul_multi, %lld tokens: differs from alone", cname,
                            (long long)nt);
                inf_matmul_multi(pool, 2, ops, n, x, (size_t)n, nt, act, true,
                                 INF_MATMUL_INVARIANT);
                for (int64_t tk = 0; tk < nt; tk++) {
                    float g[64];
                    memcpy(g, one + tk * n_rows, (size_t)n_rows * sizeof(float));
                    inf_swiglu(n_rows, g, one2 + tk * n_rows);
                    if (memcmp(y + tk * n_rows, g, (size_t)n_rows * sizeof(float)) != 0 && !bad++)
                        T__FAIL("%s: swiglu, %lld tokens: token %lld differs from alone", cname,
                                (long long)nt, (long long)tk);
                }
            }
            if (!bad)
                t__passed++;
            free(w);
            free(x);
            free(xr);
            free(one);
            free(one2);
            free(y);
            free(y2);
            free(act);
        }
    }
    inf_kernels_set_level(levels[n_levels - 1]->level, NULL);
    inf_threadpool_free(pool);
}

/* ---- small operations ------------------------------------------------------------------------ */

static bool close_rel(float got, float want, double rel, double abs_tol)
{
    return fabs((double)got - want) <= abs_tol + rel * fabs((double)want);
}

static void check_rows(const char *op, const struct inf__kern *k, const float *got,
                       const float *want, int64_t n, double rel, double abs_tol)
{
    for (int64_t i = 0; i < n; i++)
        if (!close_rel(got[i], want[i], rel, abs_tol)) {
            T__FAIL("%s %s n=%lld [%lld]: %.9g vs %.9g", inf_cpu_level_name(k->level), op,
                    (long long)n, (long long)i, got[i], want[i]);
            return;
        }
    t__passed++;
}

/*
 * rms_norm as ggml computes it (ggml_compute_forward_rms_norm_f32, written out here): each
 * square rounded to float, summed in double, the mean rounded to float, scale = 1 / sqrtf(mean
 * + eps), out = x * scale * w. Every level must give these bits: a last-bit difference here
 * moves 8-bit activation levels downstream and with them a random model's whole chunk.
 */
static void test_rms_norm_ggml(void)
{
    static const int64_t sizes[] = {1, 3, 8, 15, 16, 17, 33, 256, 704, 2048, 4096, 5000};
    float *x = xalloc(5000 * 4), *w = xalloc(5000 * 4), *r = xalloc(5000 * 4);
    float *want = xalloc(5000 * 4);
    t__current = "rms_norm = ggml";
    for (int li = 0; li < n_levels; li++) {
        const struct inf__kern *k = levels[li];
        for (int rep = 0; rep < 20; rep++)
            for (size_t si = 0; si < sizeof(sizes) / sizeof(sizes[0]); si++) {
                const int64_t n = sizes[si];
                for (int64_t i = 0; i < n; i++) {
                    x[i] = rng_normal() * (rep % 2 ? 0.01f : 7.0f);
                    w[i] = 1.0f + 0.1f * rng_normal();
                }
                double sum = 0.0;
                for (int64_t i = 0; i < n; i++) {
                    const float sq = x[i] * x[i];
                    sum += (double)sq;
                }
                const float mean = (float)(sum / (double)n);
                const float scale = 1.0f / sqrtf(mean + 1e-6f);
                for (int64_t i = 0; i < n; i++) {
                    const float xs = x[i] * scale;
                    want[i] = xs * w[i];
                }
                k->rms_norm(n, x, w, 1e-6f, r);
                int64_t bad = -1;
                for (int64_t i = 0; i < n && bad < 0; i++)
                    if (memcmp(&r[i], &want[i], 4) != 0)
                        bad = i;
                if (bad >= 0) {
                    T__FAIL("%s n=%lld rep %d: [%lld] %.9g, ggml's %.9g",
                            inf_cpu_level_name(k->level), (long long)n, rep, (long long)bad, r[bad],
                            want[bad]);
                    goto out;
                }
            }
        t__passed++;
    }
out:
    free(x);
    free(w);
    free(r);
    free(want);
}

static void test_ops_levels(void)
{
    static const int64_t sizes[] = {1, 2, 5, 8, 15, 16, 17, 31, 64, 100, 257, 2048, 5000};
    const int64_t n_max = 5000;
    float *x = xalloc(n_max * 4), *y = xalloc(n_max * 4), *w = xalloc(n_max * 4);
    float *r1 = xalloc(n_max * 4), *r2 = xalloc(n_max * 4);
    uint16_t *h = xalloc(n_max * 2), *h2 = xalloc(n_max * 2);
    t__current = "ops";
    for (int li = 0; li < n_levels; li++) {
        const struct inf__kern *k = levels[li];
        for (size_t si = 0; si < sizeof(sizes) / sizeof(sizes[0]); si++) {
            const int64_t n = sizes[si];
            for (int64_t i = 0; i < n; i++) {
                x[i] = rng_normal() * 3.0f;
                y[i] = rng_normal();
                w[i] = 1.0f + 0.1f * rng_normal();
            }
            x[0] = -95.0f; /* exp's clamps */
            if (n > 1)
                x[1] = 30.0f;
            inf__f32_to_f16_ref(y, h, n);

            inf__rms_norm_ref(n, x, w, 1e-5f, r1);
            k->rms_norm(n, x, w, 1e-5f, r2);
            check_rows("rms_norm", k, r2, r1, n, 1e-5, 1e-6);
            inf__rms_norm_ref(n, x, NULL, 1e-6f, r1);
            memcpy(r2, x, (size_t)n * 4);
            k->rms_norm(n, r2, NULL, 1e-6f, r2); /* in place */
            check_rows("rms_norm in place", k, r2, r1, n, 1e-5, 1e-6);

            memcpy(r1, x, (size_t)n * 4);
            memcpy(r2, x, (size_t)n * 4);
            const float s1 = inf__softmax_ref(n, r1, 0.125f);
            const float s2 = k->softmax(n, r2, 0.125f);
            check_rows("softmax", k, r2, r1, n, 1e-5, 1e-7);
            T_OK(close_rel(s2, s1, 1e-5, 0));

            memcpy(r1, x, (size_t)n * 4);
            memcpy(r2, x, (size_t)n * 4);
            inf__silu_ref(n, r1);
            k->silu(n, r2);
            check_rows("silu", k, r2, r1, n, 1e-5, 1e-6);

            memcpy(r1, x, (size_t)n * 4);
            memcpy(r2, x, (size_t)n * 4);
            inf__gelu_ref(n, r1);
            k->gelu(n, r2);
            check_rows("gelu", k, r2, r1, n, 1e-5, 2e-6);

            memcpy(r1, x, (size_t)n * 4);
            memcpy(r2, x, (size_t)n * 4);
            inf__swiglu_ref(n, r1, y);
            k->swiglu(n, r2, y);
            check_rows("swiglu", k, r2, r1, n, 1e-5, 1e-6);

            memcpy(r1, x, (size_t)n * 4);
            memcpy(r2, x, (size_t)n * 4);
            inf__add_ref(n, r1, y);
            k->add(n, r2, y);
            inf__mul_ref(n, r1, w);
            k->mul(n, r2, w);
            inf__scale_ref(n, r1, -0.75f);
            k->scale(n, r2, -0.75f);
            check_rows("add/mul/scale", k, r2, r1, n, 0, 0);

            memcpy(r1, y, (size_t)n * 4);
            memcpy(r2, y, (size_t)n * 4);
            inf__axpy_f32_ref(n, 0.3f, x, r1);
            k->axpy_f32(n, 0.3f, x, r2);
            inf__axpy_f16_ref(n, -1.7f, h, r1);
            k->axpy_f16(n, -1.7f, h, r2);
            check_rows("axpy", k, r2, r1, n, 1e-6, 1e-6);
            {
                const float a4[4] = {0.5f, -1.25f, 2.0f, 0.125f};
                const float *xs[4] = {x, y, w, x};
                const uint16_t *hs[4] = {h, h, h, h};
                memcpy(r1, y, (size_t)n * 4);
                memcpy(r2, y, (size_t)n * 4);
                inf__axpy4_f32_ref(n, a4, xs, r1);
                k->axpy4_f32(n, a4, xs, r2);
                inf__axpy4_f16_ref(n, a4, hs, r1);
                k->axpy4_f16(n, a4, hs, r2);
                check_rows("axpy4", k, r2, r1, n, 1e-5, 1e-5);
            }

            double ab = 0, abh = 0;
            for (int64_t i = 0; i < n; i++) {
                ab += fabs((double)x[i] * y[i]);
                abh += fabs((double)x[i] * inf_fp16_to_fp32(h[i]));
            }
            const float d1 = inf__dot_f32_ref(n, x, y), d2 = k->dot_f32(n, x, y);
            const float e1 = inf__dot_f16_f32_ref(n, h, x), e2 = k->dot_f16_f32(n, h, x);
            if (!(fabs((double)d1 - d2) <= 1e-5 * ab + 1e-30) ||
                !(fabs((double)e1 - e2) <= 1e-5 * abh + 1e-30))
                T__FAIL("%s dot n=%lld: %.9g vs %.9g, f16 %.9g vs %.9g",
                        inf_cpu_level_name(k->level), (long long)n, d2, d1, e2, e1);
            else
                t__passed++;

            k->f32_to_f16(x, h2, n);
            inf__f32_to_f16_ref(x, h, n);
            T_OK(memcmp(h, h2, (size_t)n * 2) == 0);
            k->f16_to_f32(h, r2, n);
            inf__f16_to_f32_ref(h, r1, n);
            T_OK(memcmp(r1, r2, (size_t)n * 4) == 0);
        }
        /* RoPE: both pairings, n_rot < head_dim, several heads */
        static const int dims[][2] = {{64, 64}, {128, 64}, {80, 80}, {6, 6}, {96, 32}};
        for (size_t di = 0; di < sizeof(dims) / sizeof(dims[0]); di++) {
            const int head_dim = dims[di][0], n_rot = dims[di][1], n_heads = 3;
            float cache[128];
            struct inf_rope_params p = {
                .n_rot = n_rot, .freq_base = 10000.0f, .freq_scale = 1.0f, .attn_factor = 1.0f};
            inf_rope_cache(&p, 1234, cache);
            for (int mode = 0; mode < 2; mode++) {
                const enum inf_rope_mode m = mode ? INF_ROPE_MODE_NEOX : INF_ROPE_MODE_NORM;
                for (int i = 0; i < n_heads * head_dim; i++)
                    r1[i] = r2[i] = rng_normal();
                inf__rope_ref(m, r1, n_heads, head_dim, n_rot, cache);
                k->rope(m, r2, n_heads, head_dim, n_rot, cache);
                check_rows(mode ? "rope neox" : "rope norm", k, r2, r1, n_heads * head_dim, 1e-6,
                           1e-6);
            }
        }
    }
    free(x);
    free(y);
    free(w);
    free(r1);
    free(r2);
    free(h);
    free(h2);
}

/* inf_attn_qk / inf_attn_pv against double-precision loops, F32 and F16 caches, every level. */
static void test_attention(void)
{
    static const int64_t shapes[][3] = {
        {1, 1, 64}, {1, 37, 64}, {5, 19, 128}, {3, 8, 80}, {2, 33, 6}};
    for (int li = 0; li < n_levels; li++) {
        inf_kernels_set_level(levels[li]->level, NULL);
        for (size_t si = 0; si < sizeof(shapes) / sizeof(shapes[0]); si++) {
            const int64_t nq = shapes[si][0], nkv = shapes[si][1], d = shapes[si][2];
            const size_t qs = (size_t)d + 3, ks = (size_t)d + 5, ss = (size_t)nkv + 2;
            float *q = xalloc((size_t)nq * qs * 4), *kf = xalloc((size_t)nkv * ks * 4);
            uint16_t *kh = xalloc((size_t)nkv * ks * 2);
            float *s = xalloc((size_t)nq * ss * 4), *o = xalloc((size_t)nq * qs * 4);
            for (size_t i = 0; i < (size_t)nq * qs; i++)
                q[i] = rng_normal();
            for (size_t i = 0; i < (size_t)nkv * ks; i++) {
                kh[i] = inf_fp32_to_fp16(rng_normal());
                kf[i] = inf_fp16_to_fp32(kh[i]); /* the same values in both caches */
            }
            for (int use_f16 = 0; use_f16 < 2; use_f16++) {
                const enum inf_type kt = use_f16 ? INF_TYPE_F16 : INF_TYPE_F32;
                const void *kc = use_f16 ? (const void *)kh : (const void *)kf;
                inf_attn_qk(nq, nkv, d, q, qs, kt, kc, ks, 0.25f, s, ss);
                memset(o, 0, (size_t)nq * qs * 4);
                inf_attn_pv(nq, nkv, d, s, ss, kt, kc, ks, o, qs);
                int bad = 0;
                for (int64_t t = 0; t < nq; t++)
                    for (int64_t j = 0; j < nkv; j++) {
                        double want = 0, ab = 0;
                        for (int64_t i = 0; i < d; i++) {
                            want += (double)q[t * (int64_t)qs + i] * kf[j * (int64_t)ks + i];
                            ab += fabs((double)q[t * (int64_t)qs + i] * kf[j * (int64_t)ks + i]);
                        }
                        if (fabs(s[t * (int64_t)ss + j] - 0.25 * want) > 1e-5 * ab + 1e-6)
                            bad++;
                    }
                for (int64_t t = 0; t < nq; t++)
                    for (int64_t i = 0; i < d; i++) {
                        double want = 0, ab = 0;
                        for (int64_t j = 0; j < nkv; j++) {
                            want += (double)s[t * (int64_t)ss + j] * kf[j * (int64_t)ks + i];
                            ab += fabs((double)s[t * (int64_t)ss + j] * kf[j * (int64_t)ks + i]);
                        }
                        if (fabs(o[t * (int64_t)qs + i] - want) > 1e-5 * ab + 1e-6)
                            bad++;
                    }
                if (bad)
                    T__FAIL("%s attention %s nq=%lld nkv=%lld d=%lld: %d values off",
                            inf_cpu_level_name(levels[li]->level), use_f16 ? "f16" : "f32",
                            (long long)nq, (long long)nkv, (long long)d, bad);
                else
                    t__passed++;
            }
            free(q);
            free(kf);
            free(kh);
            free(s);
            free(o);
        }
    }
    inf_kernels_set_level(levels[n_levels - 1]->level, NULL);
}

static void test_rope_cache(void)
{
    float cache[128];
    struct inf_rope_params p = {
        .n_rot = 128, .freq_base = 10000.0f, .freq_scale = 1.0f, .attn_factor = 1.0f};
    inf_rope_cache(&p, 7, cache);
    for (int i = 0; i < 64; i++) {
        const double theta = 7.0 * pow(10000.0, -2.0 * i / 128.0);
        if (!(fabs(cache[2 * i] - cos(theta)) < 2e-5 &&
              fabs(cache[2 * i + 1] - sin(theta)) < 2e-5)) {
            T__FAIL("rope cache [%d]: %g %g vs %g %g", i, cache[2 * i], cache[2 * i + 1],
                    cos(theta), sin(theta));
            return;
        }
    }
    t__passed++;
    /* rotation keeps the norm of every pair */
    float v[128], v0[128];
    for (int i = 0; i < 128; i++)
        v[i] = v0[i] = rng_normal();
    inf_rope(INF_ROPE_MODE_NEOX, v, 1, 128, 128, cache);
    double e = 0;
    for (int i = 0; i < 64; i++)
        e += fabs(hypot(v[i], v[i + 64]) - hypot(v0[i], v0[i + 64]));
    T_NEAR(e, 0, 1e-4);
    /* linear scaling: position p at scale 1/4 equals position p/4 unscaled */
    float c1[128], c2[128];
    p.freq_scale = 0.25f;
    inf_rope_cache(&p, 400, c1);
    p.freq_scale = 1.0f;
    inf_rope_cache(&p, 100, c2);
    double d = 0;
    for (int i = 0; i < 128; i++)
        d += fabs(c1[i] - c2[i]);
    T_NEAR(d, 0, 1e-3);
}

/* The online-softmax attention tile at every level against a direct softmax in double: several
 * tiles (a later tile brings a new maximum), rows that see different prefixes, head sizes that
 * take the SIMD paths and one that falls back to the reference. */
static void test_attn_tile(void)
{
    static const int hds[] = {64, 128, 80, 40};
    enum { NR = 6, NC = 150 };
    static const int vis[NR] = {150, 1, 64, 65, 0, 129};
    for (size_t hi = 0; hi < sizeof(hds) / sizeof(hds[0]); hi++) {
        const int hd = hds[hi];
        float *q = xalloc((size_t)NR * hd * sizeof(float));
        float *k = xalloc((size_t)NC * hd * sizeof(float));
        float *v = xalloc((size_t)NC * hd * sizeof(float));
        float *acc = xalloc((size_t)NR * hd * sizeof(float));
        fill_random(q, (int64_t)NR * hd);
        fill_random(k, (int64_t)NC * hd);
        fill_random(v, (int64_t)NC * hd);
        for (int i = 0; i < NR * hd; i++)
            q[i] *= 6.0f; /* wide scores: later tiles raise the maximum */
        for (int i = 0; i < hd; i++)
            k[(size_t)100 * hd + (size_t)i] = q[i]; /* row 0's largest score is in tile 2 */
        const float scale = 1.0f / sqrtf((float)hd);
        float *kt = xalloc((size_t)hd * INF_ATTN_TILE * sizeof(float) + 64);
        float *kta = (float *)(((uintptr_t)kt + 63) & ~(uintptr_t)63);
        for (int lk = 0; lk < 2 * n_levels; lk++) {
            const int li = lk / 2, transposed = lk % 2;
            if (transposed && !levels[li]->attn_tile_kt)
                continue;
            float m[NR], l[NR];
            const float *qp[NR];
            float *ap[NR];
            for (int r = 0; r < NR; r++) {
                m[r] = -INFINITY;
                l[r] = 0;
                qp[r] = q + (size_t)r * hd;
                ap[r] = acc + (size_t)r * hd;
                memset(ap[r], 0, (size_t)hd * sizeof(float));
            }
            for (int j0 = 0; j0 < NC; j0 += INF_ATTN_TILE) {
                const int nt = NC - j0 < INF_ATTN_TILE ? NC - j0 : INF_ATTN_TILE;
                int nv[NR];
                for (int r = 0; r < NR; r++)
                    nv[r] = vis[r] - j0 < 0 ? 0 : vis[r] - j0 > nt ? nt : vis[r] - j0;
                if (transposed) {
                    for (int i = 0; i < hd * INF_ATTN_TILE; i++)
                        kta[i] = 1e30f; /* columns past nt must not matter */
                    for (int j = 0; j < nt; j++)
                        for (int i = 0; i < hd; i++)
                            kta[(size_t)i * INF_ATTN_TILE + j] = k[(size_t)(j0 + j) * hd + i];
                    levels[li]->attn_tile_kt(hd, NR, qp, nt, kta, v + (size_t)j0 * hd, nv, scale, m,
                                             l, ap);
                } else {
                    levels[li]->attn_tile(hd, NR, qp, nt, k + (size_t)j0 * hd, v + (size_t)j0 * hd,
                                          nv, scale, m, l, ap);
                }
            }
            for (int r = 0; r < NR; r++) {
                if (vis[r] == 0) {
                    T_OK(l[r] == 0 && m[r] == -INFINITY);
                    continue;
                }
                double s[NC], mx = -1e300, sum = 0;
                for (int j = 0; j < vis[r]; j++) {
                    double d = 0;
                    for (int i = 0; i < hd; i++)
                        d += (double)q[(size_t)r * hd + i] * k[(size_t)j * hd + i];
                    s[j] = d * scale;
                    mx = s[j] > mx ? s[j] : mx;
                }
                for (int j = 0; j < vis[r]; j++)
                    sum += (s[j] = exp(s[j] - mx));
                /* the error relative to 1 + the weighted sum of |v| (float rounding's scale) */
                double err = 0;
                for (int i = 0; i < hd; i++) {
                    double o = 0, oabs = 0;
                    for (int j = 0; j < vis[r]; j++) {
                        o += s[j] / sum * v[(size_t)j * hd + i];
                        oabs += s[j] / sum * fabs(v[(size_t)j * hd + i]);
                    }
                    const double e = fabs(acc[(size_t)r * hd + i] / l[r] - o) / (1 + oabs);
                    err = e > err ? e : err;
                }
                if (!(err < 2e-5 && fabs(m[r] - mx) < 1e-4 * (1 + fabs(mx)))) {
                    T__FAIL("attn_tile%s %s hd=%d row %d (sees %d): max err %g, max %g vs %g",
                            transposed ? "_kt" : "", inf_cpu_level_name(levels[li]->level), hd, r,
                            vis[r], err, m[r], mx);
                    continue;
                }
                t__passed++;
            }
        }
        free(q);
        free(k);
        free(v);
        free(acc);
        free(kt);
    }
}

/* inf_matmul_multi: the same numbers as separate products (and, with swiglu, as the products
 * followed by inf_swiglu), for one type, types sharing an activation type, and types that do
 * not (the fallback), at every level, one and many tokens. */
static void test_matmul_multi(void)
{
    struct inf_threadpool *pool = new_pool2();
    static const enum inf_type sets[][3] = {{INF_TYPE_Q4_0, INF_TYPE_Q4_0, INF_TYPE_Q4_0},
                                            {INF_TYPE_Q4_K, INF_TYPE_Q4_K, INF_TYPE_Q6_K},
                                            {INF_TYPE_Q8_0, INF_TYPE_Q6_K, INF_TYPE_Q8_0},
                                            {INF_TYPE_F16, INF_TYPE_F16, INF_TYPE_F16}};
    static const int64_t rows[3] = {96, 40, 333};
    static const int64_t toks[] = {1, 9, 16};
    const int64_t n = 512;
    for (int li = 0; li < n_levels; li++) {
        inf_kernels_set_level(levels[li]->level, NULL);
        for (size_t si = 0; si < sizeof(sets) / sizeof(sets[0]); si++) {
            uint8_t *w[3];
            float *ya[3], *yb[3];
            for (int i = 0; i < 3; i++) {
                const size_t ldw = inf_type_row_size(sets[si][i], n);
                w[i] = xalloc(ldw * (size_t)rows[i]);
                float *xr = xalloc((size_t)n * sizeof(float));
                for (int64_t r = 0; r < rows[i]; r++) {
                    fill_random(xr, n);
                    inf_type_get(sets[si][i])->from_float_ref(xr, w[i] + (size_t)r * ldw, n);
                }
                free(xr);
                ya[i] = xalloc((size_t)16 * (size_t)rows[2] * sizeof(float));
                yb[i] = xalloc((size_t)16 * (size_t)rows[2] * sizeof(float));
            }
            float *x = xalloc((size_t)(16 * n) * sizeof(float));
            fill_random(x, 16 * n);
            size_t act_size = 0;
            for (int i = 0; i < 3; i++) {
                const size_t a = inf_matmul_act_size(sets[si][i], n, 16);
                act_size = a > act_size ? a : act_size;
            }
            void *act = xalloc(act_size);
            for (size_t ti = 0; ti < sizeof(toks) / sizeof(toks[0]); ti++) {
                const int64_t nt = toks[ti];
                struct inf_matmul_op ops[3];
                for (int i = 0; i < 3; i++) {
                    ops[i] = (struct inf_matmul_op){
                        sets[si][i], w[i],  inf_type_row_size(sets[si][i], n),
                        rows[i],     ya[i], (size_t)rows[i]};
                    inf_matmul(pool, sets[si][i], w[i], ops[i].w_row_bytes, rows[i], n, x,
                               (size_t)n, nt, yb[i], (size_t)rows[i], act, 0);
                }
                inf_matmul_multi(pool, 3, ops, n, x, (size_t)n, nt, act, false, 0);
                int bad = 0;
                for (int i = 0; i < 3; i++)
                    bad |= (memcmp(ya[i], yb[i], (size_t)(nt * rows[i]) * sizeof(float)) != 0) << i;
                /* gate and up: the first two weights, at the smaller row count; silu * up may round
                 * differently in a chunk's scalar tail, so this part compares with a tolerance */
                const int64_t gr = rows[1];
                for (int i = 0; i < 2; i++) {
                    ops[i].n_rows = gr;
                    ops[i].y_stride = (size_t)gr;
                    inf_matmul(pool, sets[si][i], w[i], ops[i].w_row_bytes, gr, n, x, (size_t)n, nt,
                               yb[i], (size_t)gr, act, 0);
                }
                inf_matmul_multi(pool, 2, ops, n, x, (size_t)n, nt, act, true, 0);
                for (int64_t t = 0; t < nt; t++)
                    inf_swiglu(gr, yb[0] + t * gr, yb[1] + t * gr);
                for (int64_t i = 0; i < nt * gr; i++)
                    if (!(fabs(ya[0][i] - yb[0][i]) <= 1e-6 * (1 + fabs(yb[0][i]))))
                        bad |= 8;
                if (bad)
                    T__FAIL("%s set %zu tokens %lld: inf_matmul_multi differs (%d)",
                            inf_cpu_level_name(levels[li]->level), si, (long long)nt, bad);
                else
                    t__passed++;
            }
            for (int i = 0; i < 3; i++) {
                free(w[i]);
                free(ya[i]);
                free(yb[i]);
            }
            free(x);
            free(act);
        }
    }
    inf_kernels_set_level(levels[n_levels - 1]->level, NULL);
    inf_threadpool_free(pool);
}

/* INFERNO_CPU picks the level (checked in a child process: the choice is made once). */
static const char *argv0;

static void test_env_level(void)
{
    for (int l = 0; l < INF_CPU_LEVEL_COUNT; l++) {
        if (!inf_cpu_level_supported((enum inf_cpu_level)l))
            continue;
        char cmd[1024];
        snprintf(cmd, sizeof(cmd), "INFERNO_CPU=%s '%s' --print-level",
                 inf_cpu_level_name((enum inf_cpu_level)l), argv0);
        FILE *f = popen(cmd, "r");
        T_OK(f != NULL);
        if (!f)
            continue;
        char line[64] = "";
        if (!fgets(line, sizeof(line), f))
            line[0] = 0;
        pclose(f);
        line[strcspn(line, "\n")] = 0;
        T_EQ_STR(line, inf_cpu_level_name((enum inf_cpu_level)l));
    }
}

/* ---- the per-type choice and its cache file (calibrate.c) ----------------------------------- */

/* Stand-in gemms: the parser only compares pointers to find the types with a choice. */
static void fake_gemm_a(int64_t n, const void *w, size_t ldw, const void *a, size_t lda, float *s,
                        size_t lds, int nr, int nc)
{
    (void)n, (void)w, (void)ldw, (void)a, (void)lda, (void)s, (void)lds, (void)nr, (void)nc;
}

static void fake_gemm_b(int64_t n, const void *w, size_t ldw, const void *a, size_t lda, float *s,
                        size_t lds, int nr, int nc)
{
    fake_gemm_a(n, w, ldw, a, lda, s, lds, nr, nc);
}

/* Three levels, all usable, where only q8_0 and q4_K differ between AVX2 and AVX-512: the
 * same on every machine. */
static struct inf__kern fake[INF_CPU_LEVEL_COUNT];
static const bool fake_ok[INF_CPU_LEVEL_COUNT] = {true, true, true};

static void make_fake_tables(void)
{
    inf__kern_init_ref(&fake[0]);
    fake[1] = fake[0];
    fake[2] = fake[0];
    fake[1].w[INF_TYPE_Q4_K].gemm = fake_gemm_a;
    fake[2].w[INF_TYPE_Q4_K].gemm = fake_gemm_b;
    fake[2].w[INF_TYPE_Q8_0].gemm = fake_gemm_b;
}

static bool parse(const char *text, size_t len, const char *key, struct inf__kchoice *c)
{
    return inf__kchoice_parse(text, len, fake, fake_ok, key, c);
}

static void test_kchoice_file(void)
{
    static const char key[] = "cpu=Test CPU (family 1 model 2 stepping 3); features=avx2; vnni=0";
    make_fake_tables();
    T_OK(inf__kchoice_candidate(fake, fake_ok, INF_TYPE_Q4_K));
    T_OK(inf__kchoice_candidate(fake, fake_ok, INF_TYPE_Q8_0));
    T_OK(!inf__kchoice_candidate(fake, fake_ok, INF_TYPE_Q4_0));

    /* round trip */
    struct inf__kchoice c, d;
    memset(&c, 0, sizeof(c));
    for (int t = 0; t < INF_TYPE_COUNT; t++)
        c.level[t] = -1;
    c.level[INF_TYPE_Q4_K] = INF_CPU_AVX2;
    c.gbps[INF_TYPE_Q4_K][INF_CPU_AVX2] = 19.9f;
    c.gbps[INF_TYPE_Q4_K][INF_CPU_AVX512] = 15.25f;
    c.level[INF_TYPE_Q8_0] = INF_CPU_AVX512;
    char text[4096];
    const size_t len = inf__kchoice_format(&c, fake, fake_ok, key, text, sizeof(text));
    T_OK(len > 0 && len == strlen(text));
    T_OK(inf__kchoice_format(&c, fake, fake_ok, key, text, 20) == 0); /* does not fit */
    inf__kchoice_format(&c, fake, fake_ok, key, text, sizeof(text));
    T_OK(parse(text, len, key, &d));
    T_EQ_INT(d.level[INF_TYPE_Q4_K], INF_CPU_AVX2);
    T_EQ_INT(d.level[INF_TYPE_Q8_0], INF_CPU_AVX512);
    T_EQ_INT(d.level[INF_TYPE_Q4_0], -1);
    T_OK(fabsf(d.gbps[INF_TYPE_Q4_K][INF_CPU_AVX512] - 15.25f) < 1e-3f);
    printf("%s", text);

    /* another CPU's (or build's) file: ignored */
    T_OK(!parse(text, len, "cpu=Other CPU; features=avx2; vnni=0", &d));

    /* every truncation before "end" is rejected; CRLF line ends are accepted */
    const char *end = strstr(text, "\nend\n");
    T_OK(end != NULL);
    const size_t whole = end ? (size_t)(end - text) + 4 : len;
    int bad = 0;
    for (size_t k = 0; k <= len; k++)
        if (parse(text, k, key, &d) != (k >= whole) && !bad++)
            T__FAIL("truncated to %zu of %zu bytes: %s", k, len, k >= whole ? "rejected" : "taken");
    if (!bad)
        t__passed++;

    /* hand-made files: each breaks one rule */
    static const char *const broken[] = {
        "",
        "inferno-kernels 2\nkey K\nq4_K avx2\nq8_0 avx512\nend\n",            /* version */
        "inferno-kernels 1\nkey K\nq4_K avx2\nend\n",                         /* q8_0 missing */
        "inferno-kernels 1\nkey K\nq4_K avx2\nq4_K avx2\nq8_0 avx512\nend\n", /* twice */
        "inferno-kernels 1\nkey K\nq4_K scalar\nq8_0 avx512\nend\n",          /* not a SIMD level */
        "inferno-kernels 1\nkey K\nq4_K avx9\nq8_0 avx512\nend\n",            /* no such level */
        "inferno-kernels 1\nkey K\nq4_0 avx2\nq4_K avx2\nq8_0 avx512\nend\n", /* no choice */
        "inferno-kernels 1\nkey K\nq4_K avx2 avx2=x\nq8_0 avx512\nend\n",     /* number */
        "inferno-kernels 1\nkey K\nq4_K avx2 avx2=nan\nq8_0 avx512\nend\n",
        "inferno-kernels 1\nkey K\nq4_K avx2 avx2=-1\nq8_0 avx512\nend\n",
        "inferno-kernels 1\nkey K\nq4_K avx2 avx3=1\nq8_0 avx512\nend\n",
        "inferno-kernels 1\nkey K\nq4_K avx2 avx2=\nq8_0 avx512\nend\n",
        "inferno-kernels 1\nkey K\nq4_K\nq8_0 avx512\nend\n",
        "inferno-kernels 1\nkey KK\nq4_K avx2\nq8_0 avx512\nend\n", /* key */
        "key K\ninferno-kernels 1\nq4_K avx2\nq8_0 avx512\nend\n",  /* order */
    };
    static const char good[] =
        "inferno-kernels 1\nkey K\n# c\n\nq4_K avx2 avx2=1.5\r\nq8_0 avx512\nend";
    T_OK(parse(good, strlen(good), "K", &d));
    for (size_t i = 0; i < sizeof(broken) / sizeof(broken[0]); i++)
        if (parse(broken[i], strlen(broken[i]), "K", &d)) {
            T__FAIL("accepted: %s", broken[i]);
        } else {
            t__passed++;
        }
    char nul[] = "inferno-kernels 1\nkey K\nq4_K avx2\nq8_0 avx512\nend\n";
    nul[30] = '\0';
    T_OK(!parse(nul, sizeof(nul) - 1, "K", &d));
    char *longline = xalloc(5000);
    memset(longline, 'a', 4999);
    longline[4999] = '\0';
    T_OK(!parse(longline, 4999, "K", &d));
    free(longline);

    /* random bytes, and random changes to a good file: no crash, and whatever is accepted names
     * usable levels */
    char buf[4096];
    bad = 0;
    for (int it = 0; it < 20000; it++) {
        size_t n;
        if (it % 2) {
            n = (size_t)(t_rng() % 600);
            for (size_t i = 0; i < n; i++)
                buf[i] = it % 4 == 1 ? (char)t_rng() : " \nq4_K8avx2512=.end"[t_rng() % 19];
        } else {
            memcpy(buf, text, len);
            n = len;
            for (int m = 1 + (int)(t_rng() % 4); m > 0; m--)
                buf[t_rng() % n] = (char)t_rng();
            if (t_rng() % 3 == 0)
                n = (size_t)(t_rng() % (n + 1));
        }
        if (parse(buf, n, key, &d))
            for (int t = 0; t < INF_TYPE_COUNT; t++)
                if (inf__kchoice_candidate(fake, fake_ok, (enum inf_type)t) &&
                    (d.level[t] < INF_CPU_AVX2 || d.level[t] >= INF_CPU_LEVEL_COUNT) && !bad++)
                    T__FAIL("accepted a bad level %d for type %d", d.level[t], t);
    }
    if (!bad)
        t__passed++;

    /* the file on disk: directories made, the file replaced whole, garbage ignored */
    char dir[] = "/tmp/inferno-kchoice-XXXXXX", path[512];
    T_OK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof(path), "%s/a/b/kernels.txt", dir);
    T_OK(!inf__kchoice_load(path, fake, fake_ok, key, &d));
    T_OK(inf__kchoice_save(path, &c, fake, fake_ok, key));
    T_OK(inf__kchoice_load(path, fake, fake_ok, key, &d));
    T_EQ_INT(d.level[INF_TYPE_Q4_K], INF_CPU_AVX2);
    FILE *f = fopen(path, "wb");
    T_OK(f != NULL);
    if (f) {
        fputs("garbage\n", f);
        fclose(f);
    }
    T_OK(!inf__kchoice_load(path, fake, fake_ok, key, &d));
    T_OK(inf__kchoice_save(path, &c, fake, fake_ok, key));
    T_OK(inf__kchoice_load(path, fake, fake_ok, key, &d));
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    T_EQ_INT(system(cmd), 0);

    /* the path: XDG_CACHE_HOME, else ~/.cache, one file per key */
    char p1[512], p2[512];
    T_OK(inf__kchoice_path("k1", p1, sizeof(p1)) == (getenv("XDG_CACHE_HOME") || getenv("HOME")));
    T_OK(inf__kchoice_path("k2", p2, sizeof(p2)) == inf__kchoice_path("k1", p1, sizeof(p1)));
    T_OK(strcmp(p1, p2) != 0 || !getenv("HOME"));
}

/* INFERNO_KERNELS in a child process (the choice is made once per process): fixed, then a
 * measurement written to the cache, read back, a corrupt file measured and written again. */
static void test_env_kernels(void)
{
    char dir[] = "/tmp/inferno-kenv-XXXXXX";
    T_OK(mkdtemp(dir) != NULL);
    static const struct {
        const char *mode, *want;
    } runs[] = {
        {"fixed", "fixed table"},
        {"auto", "measured now, cached in "},
        {"auto", "measured earlier, read from "},
        {"corrupt", "measured now, cached in "},
        {"calibrate", "measured now, cached in "},
        {"auto", "measured earlier, read from "},
    };
    char line[4600] = "";
    for (size_t i = 0; i < sizeof(runs) / sizeof(runs[0]); i++) {
        if (strcmp(runs[i].mode, "corrupt") == 0) {
            const char *p = strstr(line, dir);
            FILE *f = p ? fopen(p, "wb") : NULL; /* cut short */
            T_OK(f != NULL);
            if (f) {
                fputs("inferno-kernels 1\nkey cpu=", f);
                fclose(f);
            }
        }
        char cmd[1024];
        /* INFERNO_CPU (set when the suite runs at one level) would override INFERNO_KERNELS */
        snprintf(cmd, sizeof(cmd),
                 "env -u INFERNO_CPU INFERNO_KERNELS=%s XDG_CACHE_HOME='%s' '%s' --print-origin",
                 strcmp(runs[i].mode, "corrupt") ? runs[i].mode : "auto", dir, argv0);
        FILE *f = popen(cmd, "r");
        T_OK(f != NULL);
        if (!f)
            continue;
        if (!fgets(line, sizeof(line), f))
            line[0] = 0;
        pclose(f);
        line[strcspn(line, "\n")] = 0;
        if (strstr(line, "nothing to choose")) { /* one SIMD level here */
            t__passed++;
            break;
        }
        if (strncmp(line, runs[i].want, strlen(runs[i].want)) != 0)
            T__FAIL("INFERNO_KERNELS=%s: '%s', want '%s...'", runs[i].mode, line, runs[i].want);
        else
            t__passed++;
    }
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    T_EQ_INT(system(cmd), 0);
}

/*
 * Q4_0, Q4_K, Q8_0 repacked in 16-row groups (INF_TYPE_Q4_0_X16, _Q4_K_X16, _Q8_0_X16): at every
 * level, the product equals the reference dot product of the plain rows (within rounding); a batch
 * gives each token bit for bit what the token gives alone, at every level the same bits as the
 * reference packed kernel (one FMA chain per output, block by block); inf_matmul_multi mixing a
 * packed and a plain weight matches the separate products; the packing refuses what it cannot hold.
 */
static void test_matmul_packed(void)
{
    struct inf_threadpool *pool = new_pool2();
    /* the plain type, its packed layout, a plain type with the same activations */
    static const enum inf_type kinds[][3] = {{INF_TYPE_Q4_0, INF_TYPE_Q4_0_X16, INF_TYPE_Q8_0},
                                             {INF_TYPE_Q4_K, INF_TYPE_Q4_K_X16, INF_TYPE_Q6_K},
                                             {INF_TYPE_Q8_0, INF_TYPE_Q8_0_X16, INF_TYPE_Q4_0},
                                             {INF_TYPE_Q6_K, INF_TYPE_Q6_K_X16, INF_TYPE_Q4_K},
                                             {INF_TYPE_Q4_1, INF_TYPE_Q4_1_X16, INF_TYPE_Q5_1}};
    const size_t n_kinds = sizeof(kinds) / sizeof(kinds[0]);
    static const int64_t shapes[][2] = {{512, 16}, {800, 48}, {768, 32}, {2048, 160}};
    static const int64_t toks[] = {1, 2, 3, 5, 8, 17, 33};
    const int64_t nt_max = 33;
    for (size_t ki = 0; ki < n_kinds * (sizeof(shapes) / sizeof(shapes[0])); ki++) {
        const enum inf_type PT = kinds[ki % n_kinds][0], XT = kinds[ki % n_kinds][1],
                            OT = kinds[ki % n_kinds][2];
        const enum inf_type AT = inf_type_get(PT)->vec_dot_type;
        const int64_t n = shapes[ki / n_kinds][0], n_rows = shapes[ki / n_kinds][1];
        if (n % inf_type_get(PT)->blck_size)
            continue;
        t__current = inf_type_name(XT);
        const size_t ldw = inf_type_row_size(PT, n);
        uint8_t *w = xalloc(ldw * (size_t)n_rows), *wp = xalloc(ldw * (size_t)n_rows);
        uint8_t *w8 = xalloc(inf_type_row_size(OT, n) * (size_t)n_rows);
        float *xr = xalloc((size_t)n * sizeof(float)), *x = xalloc((size_t)(nt_max * n) * 4);
        float *one = xalloc((size_t)(nt_max * n_rows) * 4),
              *y = xalloc((size_t)(nt_max * n_rows) * 4);
        float *first = xalloc((size_t)(nt_max * n_rows) * 4),
              *y8 = xalloc((size_t)(nt_max * n_rows) * 4);
        float *y8m = xalloc((size_t)(nt_max * n_rows) * 4),
              *ym = xalloc((size_t)(nt_max * n_rows) * 4);
        float *tw = xalloc((size_t)n * 4), *ta = xalloc((size_t)n * 4);
        void *aref = xalloc(inf_type_row_size(AT, n));
        size_t act_bytes = inf_matmul_act_size(XT, n, nt_max);
        if (inf_matmul_act_size(OT, n, nt_max) > act_bytes)
            act_bytes = inf_matmul_act_size(OT, n, nt_max);
        void *act = xalloc(act_bytes);
        for (int64_t r = 0; r < n_rows; r++) {
            fill_random(xr, n);
            inf_type_get(PT)->from_float_ref(xr, w + (size_t)r * ldw, n);
            inf_type_get(OT)->from_float_ref(xr, w8 + (size_t)r * inf_type_row_size(OT, n), n);
        }
        memcpy(wp, w, ldw * (size_t)n_rows);
        /* refusals leave the bytes as they were */
        T_OK(!inf_weight_pack(PT, XT, wp, ldw, n_rows - 1, n));
        T_OK(!inf_weight_pack(OT, XT, wp, ldw, n_rows, n));
        T_OK(!inf_weight_pack(PT, kinds[(ki + 1) % n_kinds][1], wp, ldw, n_rows, n));
        T_OK(!inf_weight_pack(PT, XT, wp, ldw + 1, n_rows, n));
        T_OK(memcmp(wp, w, ldw * (size_t)n_rows) == 0);
        T_OK(inf_weight_pack(PT, XT, wp, ldw, n_rows, n));
        T_OK(memcmp(wp, w, ldw * (size_t)n_rows) != 0);
        fill_random(x, nt_max * n);
        int bad = 0;
        for (int li = 0; li < n_configs(); li++) {
            const char *cname = use_config(li);
            for (int64_t tk = 0; tk < nt_max; tk++) /* each token alone */
                inf_matmul(tk % 2 ? pool : NULL, XT, wp, ldw, n_rows, n, x + tk * n, (size_t)n, 1,
                           one + tk * n_rows, (size_t)n_rows, act, 0);
            for (int64_t tk = 0; tk < nt_max; tk++) {
                act_ref(AT, x + tk * n, aref, n);
                for (int64_t r = 0; r < n_rows; r++) {
                    const void *wr = w + (size_t)r * ldw;
                    const float ref = inf__vec_dot_ref(PT)(n, wr, aref);
                    const double tol = 2e-5 * abs_dot(PT, wr, aref, n, tw, ta);
                    const float got = one[tk * n_rows + r];
                    if (!(fabs((double)got - ref) <= tol + 1e-30) && !bad++)
                        T__FAIL("%s n=%lld rows=%lld [%lld,%lld]: %.9g vs %.9g", cname,
                                (long long)n, (long long)n_rows, (long long)tk, (long long)r, got,
                                ref);
                }
            }
            if (li == 0)
                memcpy(first, one, (size_t)(nt_max * n_rows) * 4);
            else if (memcmp(first, one, (size_t)(nt_max * n_rows) * 4) != 0 && !bad++)
                T__FAIL("%s n=%lld: not the bits of the first level", cname, (long long)n);
            for (size_t k = 0; k < sizeof(toks) / sizeof(toks[0]); k++) {
                const int64_t nt = toks[k];
                for (int use_pool = 0; use_pool < 2; use_pool++) {
                    inf_matmul(use_pool ? pool : NULL, XT, wp, ldw, n_rows, n, x, (size_t)n, nt, y,
                               (size_t)n_rows, act, 0);
                    if (memcmp(y, one, (size_t)(nt * n_rows) * 4) != 0 && !bad++)
                        T__FAIL("%s n=%lld: a batch of %lld differs from each token alone", cname,
                                (long long)n, (long long)nt);
                }
                /* with a plain Q8_0 weight beside it: one activation layout for both */
                const struct inf_matmul_op ops[2] = {
                    {OT, w8, inf_type_row_size(OT, n), n_rows, y8m, (size_t)n_rows},
                    {XT, wp, ldw, n_rows, ym, (size_t)n_rows}};
                inf_matmul_multi(pool, 2, ops, n, x, (size_t)n, nt, act, false, 0);
                inf_matmul(pool, OT, w8, inf_type_row_size(OT, n), n_rows, n, x, (size_t)n, nt, y8,
                           (size_t)n_rows, act, 0);
                if ((memcmp(ym, one, (size_t)(nt * n_rows) * 4) != 0 ||
                     memcmp(y8m, y8, (size_t)(nt * n_rows) * 4) != 0) &&
                    !bad++)
                    T__FAIL("%s n=%lld tokens=%lld: inf_matmul_multi differs", cname, (long long)n,
                            (long long)nt);
            }
        }
        if (!bad)
            t__passed++;
        inf_kernels_set_level(levels[n_levels - 1]->level, NULL);
        free(w), free(wp), free(w8), free(xr), free(x), free(one), free(y), free(first);
        free(y8), free(y8m), free(ym), free(tw), free(ta), free(aref), free(act);
    }
    /* which levels pack: AVX-512 with VNNI all five layouts, AVX2 all but Q6_K's (measured
     * slower there than its row kernel), not AVX-512 without VNNI (its row kernels) nor the
     * reference */
    for (int l = 0; l < n_levels; l++) {
        inf_kernels_set_level(levels[l]->level, NULL);
        for (size_t k = 0; k < n_kinds; k++) {
            const enum inf_type pt = kinds[k][0], xt = kinds[k][1];
            const bool avx2_packs = pt != INF_TYPE_Q6_K;
            const bool packs = (levels[l]->level == INF_CPU_AVX2 && avx2_packs) ||
                               (levels[l]->level == INF_CPU_AVX512 && inf_kernels_have_vnni());
            T_EQ_INT(inf_weight_pack_type(pt, 64, 256), packs ? xt : pt);
            T_EQ_INT(inf_weight_pack_type(pt, 72, 256), pt);
            T_EQ_INT(inf_weight_pack_type(pt, 64, 250), pt);
        }
        T_EQ_INT(inf_weight_pack_type(INF_TYPE_Q5_K, 64, 256), INF_TYPE_Q5_K);
    }
    inf_kernels_set_level(levels[n_levels - 1]->level, NULL);
    inf_threadpool_free(pool);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--print-origin") == 0) {
        printf("%s\n", inf_kernels_choice_origin());
        return 0;
    }
    if (argc > 1 && strcmp(argv[1], "--print-level") == 0) {
        printf("%s\n", inf_cpu_level_name(inf_kernels_level()));
        return 0;
    }
    argv0 = argv[0];
    find_levels();
    T_RUN(test_traits);
    T_RUN(test_quantize_rows);
    T_RUN(test_fp16);
    T_RUN(test_llama_golden);
    T_RUN(test_quant_error);
    T_RUN(test_act_quant_exact);
    T_RUN(test_gemm_levels);
    T_RUN(test_gemm_tall);
    T_RUN(test_gemm_panels);
    T_RUN(test_attn_tile);
    T_RUN(test_matmul_multi);
    T_RUN(test_matmul);
    T_RUN(test_matmul_invariant);
    T_RUN(test_matmul_packed);
    T_RUN(test_ops_levels);
    T_RUN(test_rms_norm_ggml);
    T_RUN(test_attention);
    T_RUN(test_rope_cache);
    T_RUN(test_env_level);
    T_RUN(test_kchoice_file);
    T_RUN(test_env_kernels);
    T_DONE();
}
