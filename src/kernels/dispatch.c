/*
 * dispatch.c - choosing a SIMD level at run time, and the public entry points that route
 * through the chosen level's table.
 *
 * src/kernels/ owns tensor formats and every numeric kernel: the type traits (types.c), block
 * layouts (blocks.h), scalar reference kernels (ref_*.c, the ground truth), AVX2 and AVX-512
 * versions (x86/), this dispatch, and the threaded matrix products (matmul.c).
 */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inferno/cpu.h"
#include "kernels/fp16.h"
#include "kernels/internal.h"

static struct inf__kern tables[INF_CPU_LEVEL_COUNT];
static bool table_ok[INF_CPU_LEVEL_COUNT];
static bool have_vnni;
static _Atomic(const struct inf__kern *) current;
static pthread_once_t init_once = PTHREAD_ONCE_INIT;
/* the top level's table with some types' gemm from another level (calibrate.c), and why */
static struct inf__kern chosen;
static struct inf__kchoice choice;
static enum inf_cpu_level top_level = INF_CPU_SCALAR;
static char choice_origin[4400] = "fixed table";

float inf__fp16_table[65536];

static const char *const level_names[INF_CPU_LEVEL_COUNT] = {"scalar", "avx2", "avx512"};

const char *inf_cpu_level_name(enum inf_cpu_level level)
{
    return (unsigned)level < INF_CPU_LEVEL_COUNT ? level_names[level] : "?";
}

static void build_chosen(const struct inf__kchoice *c)
{
    chosen = tables[top_level];
    choice = *c;
    for (int t = 0; t < INF_TYPE_COUNT; t++) {
        const int l = c->level[t];
        if (l < 0 || l >= INF_CPU_LEVEL_COUNT || !table_ok[l] || l == (int)top_level)
            continue;
        /* the gemm (with its gemm_inv) and its tile bounds; the panel stays the top level's (see
         * internal.h) */
        chosen.w[t].gemm = tables[l].w[t].gemm;
        chosen.w[t].gemm_inv = tables[l].w[t].gemm_inv;
        chosen.w[t].max_nr = tables[l].w[t].max_nr;
        chosen.w[t].max_nc = tables[l].w[t].max_nc;
    }
}

/* INFERNO_KERNELS=fixed (default) | auto | calibrate: the top level for every type; the
 * per-type choice of calibrate.c, read from its cache file or measured and written there; or
 * measured again now and the file rewritten. */
static void choose(void)
{
    const char *mode = getenv("INFERNO_KERNELS");
    if (!mode || (strcmp(mode, "auto") != 0 && strcmp(mode, "calibrate") != 0)) {
        snprintf(choice_origin, sizeof(choice_origin), "fixed table (INFERNO_KERNELS=%s)",
                 mode ? mode : "fixed, the default");
        return;
    }
    bool any = false;
    for (int t = 0; t < INF_TYPE_COUNT && !any; t++)
        any = inf__kchoice_candidate(tables, table_ok, (enum inf_type)t);
    if (!any) {
        snprintf(choice_origin, sizeof(choice_origin), "fixed table (nothing to choose here)");
        return;
    }
    const bool again = mode && strcmp(mode, "calibrate") == 0;
    char key[1024], path[4096];
    struct inf__kchoice c;
    inf__kchoice_key(have_vnni, key, sizeof(key));
    const bool have_path = inf__kchoice_path(key, path, sizeof(path));
    if (!again && have_path && inf__kchoice_load(path, tables, table_ok, key, &c)) {
        build_chosen(&c);
        atomic_store(&current, &chosen);
        snprintf(choice_origin, sizeof(choice_origin), "measured earlier, read from %s", path);
        return;
    }
    if (!inf__kchoice_measure(tables, table_ok, &c)) {
        snprintf(choice_origin, sizeof(choice_origin), "fixed table (no memory to measure)");
        return;
    }
    build_chosen(&c);
    atomic_store(&current, &chosen);
    if (!have_path)
        snprintf(choice_origin, sizeof(choice_origin),
                 "measured now, not cached (neither XDG_CACHE_HOME nor HOME is set)");
    else if (inf__kchoice_save(path, &c, tables, table_ok, key))
        snprintf(choice_origin, sizeof(choice_origin), "measured now, cached in %s", path);
    else
        snprintf(choice_origin, sizeof(choice_origin), "measured now, not cached (cannot write %s)",
                 path);
}

static void init_tables(void)
{
    for (uint32_t h = 0; h < 65536; h++)
        inf__fp16_table[h] = inf_fp16_to_fp32((inf_fp16)h);
    inf__kern_init_ref(&tables[INF_CPU_SCALAR]);
    table_ok[INF_CPU_SCALAR] = true;
#ifdef INFERNO_X86
    const struct inf_cpu_features *f = inf_cpu_features();
    if (f->avx2 && f->fma && f->f16c) {
        tables[INF_CPU_AVX2] = tables[INF_CPU_SCALAR];
        inf__kern_init_avx2(&tables[INF_CPU_AVX2]);
        table_ok[INF_CPU_AVX2] = true;
        if (f->avx512f && f->avx512bw && f->avx512vl && f->avx512dq) {
            have_vnni = f->avx512vnni && !getenv("INFERNO_NO_VNNI");
            tables[INF_CPU_AVX512] = tables[INF_CPU_AVX2];
            inf__kern_init_avx512(&tables[INF_CPU_AVX512], have_vnni);
            table_ok[INF_CPU_AVX512] = true;
        }
    }
#endif
    for (int l = 0; l < INF_CPU_LEVEL_COUNT; l++)
        if (table_ok[l])
            top_level = (enum inf_cpu_level)l;
    for (int t = 0; t < INF_TYPE_COUNT; t++)
        choice.level[t] = -1;
    const char *want = getenv("INFERNO_CPU");
    if (want) {
        enum inf_cpu_level forced = top_level;
        for (int l = 0; l < INF_CPU_LEVEL_COUNT; l++)
            if (strcmp(want, level_names[l]) == 0 && table_ok[l])
                forced = (enum inf_cpu_level)l;
        atomic_store(&current, &tables[forced]);
        snprintf(choice_origin, sizeof(choice_origin), "one level for every type (INFERNO_CPU=%s)",
                 want);
        return;
    }
    choose();
    /* published last: callers that arrive during a measurement wait in pthread_once instead of
       running kernels beside it (and skewing it) */
    if (!atomic_load(&current))
        atomic_store(&current, &tables[top_level]);
}

void inf__kern_use_choice(const struct inf__kchoice *c)
{
    pthread_once(&init_once, init_tables);
    build_chosen(c);
    atomic_store(&current, &chosen);
    snprintf(choice_origin, sizeof(choice_origin), "set by the program");
}

void inf_kernels_describe(char *buf, size_t size)
{
    const struct inf__kern *k = inf__kern();
    size_t o = 0;
    if (!size)
        return;
    buf[0] = '\0';
    for (int t = 0; t < INF_TYPE_COUNT; t++) {
        const struct inf_type_traits *tr = inf_type_get((enum inf_type)t);
        if (!tr || !tr->is_weight || !k->w[t].gemm)
            continue;
        int l = 0; /* the lowest level whose table holds this gemm: the one that implements it */
        while (l < INF_CPU_LEVEL_COUNT && !(table_ok[l] && tables[l].w[t].gemm == k->w[t].gemm))
            l++;
        const bool vnni = l == INF_CPU_AVX512 && have_vnni && tr->is_quantized;
        const bool measured =
            k == &chosen && choice.level[t] >= 0 && choice.level[t] != (int)top_level;
        const int n = snprintf(buf + o, size - o, "%s%s %s%s%s%s", o ? ", " : "", tr->name,
                               l < INF_CPU_LEVEL_COUNT ? level_names[l] : "?", vnni ? "-vnni" : "",
                               measured ? " (measured)" : "",
                               k->packed[t] ? " (repacked in 16-row groups)" : "");
        if (n < 0 || (size_t)n >= size - o)
            break;
        o += (size_t)n;
    }
}

const char *inf_kernels_choice_origin(void)
{
    pthread_once(&init_once, init_tables);
    return choice_origin;
}

const struct inf__kern *inf__kern_get(enum inf_cpu_level level)
{
    pthread_once(&init_once, init_tables);
    if ((unsigned)level >= INF_CPU_LEVEL_COUNT || !table_ok[level])
        return NULL;
    return &tables[level];
}

const struct inf__kern *inf__kern(void)
{
    const struct inf__kern *k = atomic_load_explicit(&current, memory_order_acquire);
    if (k)
        return k;
    pthread_once(&init_once, init_tables);
    return atomic_load(&current);
}

bool inf_cpu_level_supported(enum inf_cpu_level level)
{
    return inf__kern_get(level) != NULL;
}

enum inf_cpu_level inf_kernels_level(void)
{
    return inf__kern()->level;
}

inf_status inf_kernels_set_level(enum inf_cpu_level level, struct inf_error *err)
{
    const struct inf__kern *k = inf__kern_get(level);
    if (!k)
        return inf_error_set(err, INF_EUNSUPPORTED, "cpu level '%s' is not supported here",
                             inf_cpu_level_name(level));
    atomic_store(&current, k);
    return INF_OK;
}

bool inf_kernels_have_vnni(void)
{
    pthread_once(&init_once, init_tables);
    return have_vnni;
}

/* ---- the scalar table -------------------------------------------------------------------- */

#define REF_GEMM(T, t)                                                                             \
    static void gemm_ref_##t(int64_t n, const void *w, size_t ldw, const void *a, size_t lda,      \
                             float *s, size_t lds, int nr, int nc)                                 \
    {                                                                                              \
        inf__gemm_ref(T, n, w, ldw, a, lda, s, lds, nr, nc);                                       \
    }
REF_GEMM(INF_TYPE_F32, f32)
REF_GEMM(INF_TYPE_F16, f16)
REF_GEMM(INF_TYPE_BF16, bf16)
REF_GEMM(INF_TYPE_Q4_0, q4_0)
REF_GEMM(INF_TYPE_Q4_1, q4_1)
REF_GEMM(INF_TYPE_Q5_0, q5_0)
REF_GEMM(INF_TYPE_Q5_1, q5_1)
REF_GEMM(INF_TYPE_Q8_0, q8_0)
REF_GEMM(INF_TYPE_Q2_K, q2_K)
REF_GEMM(INF_TYPE_Q3_K, q3_K)
REF_GEMM(INF_TYPE_Q4_K, q4_K)
REF_GEMM(INF_TYPE_Q5_K, q5_K)
REF_GEMM(INF_TYPE_Q6_K, q6_K)
REF_GEMM(INF_TYPE_MXFP4, mxfp4)
#undef REF_GEMM

void inf__kern_init_ref(struct inf__kern *k)
{
    memset(k, 0, sizeof(*k));
    k->level = INF_CPU_SCALAR;
#define W(T, t) k->w[T] = (struct inf__wkern){.gemm = gemm_ref_##t, .max_nr = 4, .max_nc = 4}
    W(INF_TYPE_F32, f32);
    W(INF_TYPE_F16, f16);
    W(INF_TYPE_BF16, bf16);
    W(INF_TYPE_Q4_0, q4_0);
    W(INF_TYPE_Q4_1, q4_1);
    W(INF_TYPE_Q5_0, q5_0);
    W(INF_TYPE_Q5_1, q5_1);
    W(INF_TYPE_Q8_0, q8_0);
    W(INF_TYPE_Q2_K, q2_K);
    W(INF_TYPE_Q3_K, q3_K);
    W(INF_TYPE_Q4_K, q4_K);
    W(INF_TYPE_Q5_K, q5_K);
    W(INF_TYPE_Q6_K, q6_K);
    W(INF_TYPE_MXFP4, mxfp4);
#undef W
    k->w[INF_TYPE_Q4_0_X16] =
        (struct inf__wkern){.gemm = inf__gemm_ref_q4_0_x16, .max_nr = INF__X16_ROWS, .max_nc = 4};
    k->w[INF_TYPE_Q4_K_X16] =
        (struct inf__wkern){.gemm = inf__gemm_ref_q4_K_x16, .max_nr = INF__X16_ROWS, .max_nc = 4};
    k->w[INF_TYPE_Q8_0_X16] =
        (struct inf__wkern){.gemm = inf__gemm_ref_q8_0_x16, .max_nr = INF__X16_ROWS, .max_nc = 4};
    k->w[INF_TYPE_Q6_K_X16] =
        (struct inf__wkern){.gemm = inf__gemm_ref_q6_K_x16, .max_nr = INF__X16_ROWS, .max_nc = 4};
    k->w[INF_TYPE_Q4_1_X16] =
        (struct inf__wkern){.gemm = inf__gemm_ref_q4_1_x16, .max_nr = INF__X16_ROWS, .max_nc = 4};
    k->quantize_act[INF_TYPE_F32] = inf__from_float_f32_ref;
    k->quantize_act[INF_TYPE_Q8_0] = inf__act_q8_0_ref;
    k->quantize_act[INF_TYPE_Q8_1] = inf__act_q8_1_ref;
    k->quantize_act[INF_TYPE_Q8_K] = inf__from_float_q8_K_ref;
    for (int t = 0; t < INF_TYPE_COUNT; t++) {
        const struct inf_type_traits *tr = inf_type_get((enum inf_type)t);
        if (tr)
            k->to_float[t] = tr->to_float;
    }
    k->dot_f32 = inf__dot_f32_ref;
    k->dot_f16_f32 = inf__dot_f16_f32_ref;
    k->axpy_f32 = inf__axpy_f32_ref;
    k->axpy_f16 = inf__axpy_f16_ref;
    k->axpy4_f32 = inf__axpy4_f32_ref;
    k->axpy4_f16 = inf__axpy4_f16_ref;
    k->f32_to_f16 = inf__f32_to_f16_ref;
    k->f16_to_f32 = inf__f16_to_f32_ref;
    k->rms_norm = inf__rms_norm_ref;
    k->softmax = inf__softmax_ref;
    k->silu = inf__silu_ref;
    k->gelu = inf__gelu_ref;
    k->swiglu = inf__swiglu_ref;
    k->add = inf__add_ref;
    k->mul = inf__mul_ref;
    k->scale = inf__scale_ref;
    k->rope = inf__rope_ref;
    k->attn_tile = inf__attn_tile_ref;
}

/* ---- public entry points ----------------------------------------------------------------- */

float inf_vec_dot(enum inf_type type, int64_t n, const void *w, const void *act)
{
    float s = 0;
    inf__kern()->w[type].gemm(n, w, 0, act, 0, &s, 1, 1, 1);
    return s;
}

void inf_quantize_act(enum inf_type act_type, const float *src, void *dst, int64_t n)
{
    inf__kern()->quantize_act[act_type](src, dst, n);
}

float inf_dot_f32(int64_t n, const float *a, const float *b)
{
    return inf__kern()->dot_f32(n, a, b);
}

float inf_dot_f16_f32(int64_t n, const uint16_t *a_f16, const float *b)
{
    return inf__kern()->dot_f16_f32(n, a_f16, b);
}

void inf_axpy_f32(int64_t n, float a, const float *x, float *y)
{
    inf__kern()->axpy_f32(n, a, x, y);
}

void inf_axpy_f16(int64_t n, float a, const uint16_t *x_f16, float *y)
{
    inf__kern()->axpy_f16(n, a, x_f16, y);
}

void inf_f32_to_f16_row(const float *src, uint16_t *dst, int64_t n)
{
    inf__kern()->f32_to_f16(src, dst, n);
}

void inf_f16_to_f32_row(const uint16_t *src, float *dst, int64_t n)
{
    inf__kern()->f16_to_f32(src, dst, n);
}

void inf_attn_tile(int hd, int nr, const float *const *q, int nt, const float *k, const float *v,
                   const int *n_valid, float scale, float *m, float *l, float *const *acc)
{
    inf__kern()->attn_tile(hd, nr, q, nt, k, v, n_valid, scale, m, l, acc);
}

bool inf_attn_tile_kt(int hd, int nr, const float *const *q, int nt, const float *kt,
                      const float *v, const int *n_valid, float scale, float *m, float *l,
                      float *const *acc)
{
    const struct inf__kern *k = inf__kern();
    if (!k->attn_tile_kt || hd > 256)
        return false;
    k->attn_tile_kt(hd, nr, q, nt, kt, v, n_valid, scale, m, l, acc);
    return true;
}

void inf_rms_norm(int64_t n, const float *x, const float *weight, float eps, float *out)
{
    inf__kern()->rms_norm(n, x, weight, eps, out);
}

float inf_softmax(int64_t n, float *x, float scale)
{
    return inf__kern()->softmax(n, x, scale);
}

void inf_silu(int64_t n, float *x)
{
    inf__kern()->silu(n, x);
}

void inf_gelu(int64_t n, float *x)
{
    inf__kern()->gelu(n, x);
}

void inf_swiglu(int64_t n, float *gate, const float *up)
{
    inf__kern()->swiglu(n, gate, up);
}

void inf_add(int64_t n, float *x, const float *y)
{
    inf__kern()->add(n, x, y);
}

void inf_mul(int64_t n, float *x, const float *y)
{
    inf__kern()->mul(n, x, y);
}

void inf_scale(int64_t n, float *x, float s)
{
    inf__kern()->scale(n, x, s);
}

void inf_rope(enum inf_rope_mode mode, float *x, int n_heads, int head_dim, int n_rot,
              const float *cache)
{
    inf__kern()->rope(mode, x, n_heads, head_dim, n_rot, cache);
}

/* ggml's YaRN correction dimension: where the rotation at n_rot turns reaches n_ctx_orig. */
static float yarn_corr_dim(int n_dims, int n_ctx_orig, float n_rot, float base)
{
    return (float)n_dims * logf((float)n_ctx_orig / (n_rot * 2 * 3.14159265358979323846f)) /
           (2 * logf(base));
}

void inf_rope_cache(const struct inf_rope_params *p, int64_t pos, float *cache)
{
    const int n_dims = p->n_rot;
    const float theta_scale = powf(p->freq_base, -2.0f / (float)n_dims);
    float corr[2] = {0, 0};
    if (p->ext_factor != 0.0f) {
        const float start =
            floorf(yarn_corr_dim(n_dims, p->n_ctx_orig, p->beta_fast, p->freq_base));
        const float end = ceilf(yarn_corr_dim(n_dims, p->n_ctx_orig, p->beta_slow, p->freq_base));
        corr[0] = start > 0 ? start : 0;
        corr[1] = end < (float)(n_dims - 1) ? end : (float)(n_dims - 1);
    }
    float theta = (float)pos;
    for (int i0 = 0; i0 < n_dims; i0 += 2) {
        const float ff = p->freq_factors ? p->freq_factors[i0 / 2] : 1.0f;
        const float theta_extrap = theta / ff;
        const float theta_interp = p->freq_scale * theta_extrap;
        float th = theta_interp;
        float mscale = p->attn_factor;
        if (p->ext_factor != 0.0f) {
            const float denom = corr[1] - corr[0] > 0.001f ? corr[1] - corr[0] : 0.001f;
            float y = ((float)(i0 / 2) - corr[0]) / denom;
            y = y < 0 ? 0 : (y > 1 ? 1 : y);
            const float ramp_mix = (1 - y) * p->ext_factor;
            th = theta_interp * (1 - ramp_mix) + theta_extrap * ramp_mix;
            mscale *= 1.0f + 0.1f * logf(1.0f / p->freq_scale);
        }
        cache[i0 + 0] = cosf(th) * mscale;
        cache[i0 + 1] = sinf(th) * mscale;
        theta *= theta_scale;
    }
}
