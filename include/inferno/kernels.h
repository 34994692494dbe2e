/*
 * inferno/kernels.h - tensor formats and the numeric kernels: type traits, quantization,
 * matrix products and the small per-token operations.
 *
 * Formats are those of GGUF files written by llama.cpp, bit for bit; enum inf_type uses ggml's
 * type ids so a tensor's type field can be used directly. Each format has a trait entry
 * (inf_type_get) with its block size, bytes per block, and the activation format its dot product
 * pairs with. Every kernel has a plain C reference ("scalar" level) that is the ground truth; the
 * AVX2 and AVX-512 versions are tested against it. The level is chosen once from the CPU's
 * features; the environment variable INFERNO_CPU=scalar|avx2|avx512 forces one for everything (a
 * level the CPU lacks falls back to the best one it has). By default every type uses the top
 * level's kernels (INFERNO_KERNELS=fixed). INFERNO_KERNELS=auto opts in to choosing, where two
 * levels implement a weight type's gemm, the faster one on this CPU: measured once at the first
 * kernel call (single thread, 64 MiB, about 0.2-0.3 s; the measurement uses one token, the
 * choice also serves small batches of types without a panel kernel) and cached in
 * $XDG_CACHE_HOME/inferno/kernels-<hash>.txt (~/.cache when unset) per CPU model and build;
 * INFERNO_KERNELS=calibrate measures again and rewrites it. Opt-in because on the machines
 * measured so far it brought no gain beyond noise (docs/performance.md).
 *
 * Threading: the matrix products take an optional struct inf_threadpool (NULL = the calling
 * thread only). Nothing here allocates memory after inf_kernels_init() (but for the opt-in
 * measurement above); scratch space is the caller's (see inf_matmul_act_size).
 */
#ifndef INFERNO_KERNELS_H
#define INFERNO_KERNELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "inferno/status.h"

#ifdef __cplusplus
extern "C" {
#endif

struct inf_threadpool;

/* Tensor formats; the values are ggml's type ids as stored in GGUF files. */
enum inf_type {
    INF_TYPE_F32 = 0,
    INF_TYPE_F16 = 1,
    INF_TYPE_Q4_0 = 2,
    INF_TYPE_Q4_1 = 3,
    INF_TYPE_Q5_0 = 6,
    INF_TYPE_Q5_1 = 7,
    INF_TYPE_Q8_0 = 8,
    INF_TYPE_Q8_1 = 9, /* activation format only */
    INF_TYPE_Q2_K = 10,
    INF_TYPE_Q3_K = 11,
    INF_TYPE_Q4_K = 12,
    INF_TYPE_Q5_K = 13,
    INF_TYPE_Q6_K = 14,
    INF_TYPE_Q8_K = 15, /* activation format only */
    INF_TYPE_BF16 = 30,
    INF_TYPE_MXFP4 = 39, /* OCP microscaling FP4 (gpt-oss experts) */
    /* ids below 43 (ggml's GGML_TYPE_COUNT) may name file formats we lack; the ids from 43 on
     * are in-memory layouts of the kernels, never in a file (see inf_weight_pack) */
    INF_TYPE_Q4_0_X16 = 43, /* Q4_0 rows repacked in groups of 16, block by block */
    INF_TYPE_Q4_K_X16 = 44, /* Q4_K likewise, superblock by superblock */
    INF_TYPE_Q8_0_X16 = 45, /* Q8_0 likewise, its levels + 128 */
    INF_TYPE_Q6_K_X16 = 46, /* Q6_K likewise, superblock by superblock */
    INF_TYPE_Q4_1_X16 = 47, /* Q4_1 likewise */
    INF_TYPE_COUNT = 48
};

/* Row conversion callbacks; n is a multiple of the block size. */
typedef void (*inf_to_float_fn)(const void *src, float *dst, int64_t n);
typedef void (*inf_from_float_fn)(const float *src, void *dst, int64_t n);

/* What the kernels know about one format. Borrowed, static: valid for the whole program. */
struct inf_type_traits {
    const char *name; /* "q4_0", as ggml names it */
    int blck_size;    /* values per block (1 for F32/F16/BF16) */
    size_t type_size; /* bytes per block */
    bool is_quantized;
    bool is_weight;                   /* a weight format (false: Q8_1/Q8_K, activation only) */
    enum inf_type vec_dot_type;       /* format of the activations its dot product reads */
    inf_to_float_fn to_float;         /* dequantize a row (reference) */
    inf_from_float_fn from_float_ref; /* quantize a row (reference; the bytes llama.cpp writes) */
};

/* The traits of a supported format, or NULL (unknown id, or a format we do not implement). */
const struct inf_type_traits *inf_type_get(enum inf_type type);

/* "q4_0", or "?" for unsupported ids. */
const char *inf_type_name(enum inf_type type);

/* Bytes of a row of n values (n a multiple of the block size); 0 if the type is unsupported. */
size_t inf_type_row_size(enum inf_type type, int64_t n);

/*
 * Quantize n floats (a row, or several rows back to back) into dst with the reference quantizer:
 * for F16/BF16/Q4_0/Q4_1/Q5_0/Q5_1/Q8_0 the bytes are identical to llama.cpp's reference (and
 * `llama-quantize` without an importance matrix); for the K-quants the algorithm is llama.cpp's
 * reference one. dst must hold inf_type_row_size(type, n) bytes. Fails with INF_EUNSUPPORTED for
 * a type without a quantizer and INF_EINVAL when n is not a multiple of the block size.
 */
inf_status inf_quantize_row(enum inf_type type, const float *src, void *dst, int64_t n,
                            struct inf_error *err);

/*
 * inf_quantize_row for n_rows rows of n_per_row values (src rows back to back, dst rows
 * inf_type_row_size(type, n_per_row) bytes apart), the rows shared among the pool's threads
 * (pool may be NULL). The bytes are those of inf_quantize_row.
 */
inf_status inf_quantize_rows(struct inf_threadpool *pool, enum inf_type type, const float *src,
                             void *dst, int64_t n_rows, int64_t n_per_row, struct inf_error *err);

/* Dequantize n values of type from src into dst (floats). Errors as inf_quantize_row. */
inf_status inf_dequantize_row(enum inf_type type, const void *src, float *dst, int64_t n,
                              struct inf_error *err);

/* ---- SIMD level -------------------------------------------------------------------------- */

enum inf_cpu_level {
    INF_CPU_SCALAR = 0, /* the reference kernels */
    INF_CPU_AVX2 = 1,   /* AVX2 + FMA + F16C */
    INF_CPU_AVX512 = 2, /* AVX-512 F/BW/VL/DQ (+ VNNI when present) */
    INF_CPU_LEVEL_COUNT
};

/* "scalar", "avx2", "avx512". */
const char *inf_cpu_level_name(enum inf_cpu_level level);

/* Whether this build and this CPU can run a level. */
bool inf_cpu_level_supported(enum inf_cpu_level level);

/* The level in use: the best supported one, or INFERNO_CPU's when set and supported (some weight
 * types may use another level's matrix-vector kernel: see inf_kernels_describe). */
enum inf_cpu_level inf_kernels_level(void);

/*
 * Use another level from now on, for every type (tests and benchmarks); not thread-safe with
 * kernels running.
 * Fails with INF_EUNSUPPORTED when the level is not supported here.
 */
inf_status inf_kernels_set_level(enum inf_cpu_level level, struct inf_error *err);

/* Whether the AVX-512 level uses the VNNI instructions on this CPU. */
bool inf_kernels_have_vnni(void);

/*
 * The matrix-vector kernel in use per weight type, for `inferno --version`, into buf:
 * "f32 avx512, ..., q4_0 avx512-vnni, ..., q4_K avx2 (measured), ...", "(measured)" where the
 * measurement on this CPU replaced the top level's kernel. Truncated to size.
 */
void inf_kernels_describe(char *buf, size_t size);

/* How the kernels were chosen, e.g. "measured now, cached in PATH", "measured earlier, read from
 * PATH", "fixed table (INFERNO_KERNELS=fixed)"; valid for the life of the program. */
const char *inf_kernels_choice_origin(void);

/* ---- Dot products ------------------------------------------------------------------------ */

/*
 * Dot product of one row of type with one row of its vec_dot_type (n values each; the
 * activation quantized with inf_quantize_act). Uses the current level.
 */
float inf_vec_dot(enum inf_type type, int64_t n, const void *w, const void *act);

/* Quantize n floats into the activation format act_type (Q8_0, Q8_1, Q8_K; F32 copies). */
void inf_quantize_act(enum inf_type act_type, const float *src, void *dst, int64_t n);

/* ---- Matrix products --------------------------------------------------------------------- */

/*
 * Bytes of activation scratch that inf_matmul needs for n_tokens rows of n values multiplied
 * by weights of type wtype (the activations in wtype's vec_dot_type, each row padded to 64 bytes).
 */
size_t inf_matmul_act_size(enum inf_type wtype, int64_t n, int64_t n_tokens);

/*
 * Flags of inf_matmul and inf_matmul_multi. INF_MATMUL_INVARIANT: batch invariance: y[t][r] is
 * computed by the same operations, bit for bit the same, whatever n_tokens and the other rows of
 * x are and however many threads the pool has (the register-tiled kernels only; the panel kernels
 * that batches of many tokens otherwise use sum in another order). Costs prompt throughput where
 * the weight type has a panel kernel at this level (docs/performance.md). Without the flag the
 * result of a token may change in the last bits with n_tokens.
 */
#define INF_MATMUL_INVARIANT 1u

/*
 * y[t][r] = sum_k W[r][k] * x[t][k] for r < n_rows, t < n_tokens: the weight W (n_rows rows of n
 * values of wtype, rows w_row_bytes apart: normally inf_type_row_size(wtype, n)) times n_tokens
 * activation rows x (floats, x_stride floats apart) into y (rows y_stride floats apart).
 * n_tokens == 1 is the memory-bound matrix-vector product, larger batches use register-tiled
 * integer kernels. act is caller scratch of inf_matmul_act_size(wtype, n, n_tokens) bytes,
 * 64-byte aligned. pool may be NULL. n must be a multiple of wtype's block size. flags: 0 or
 * INF_MATMUL_INVARIANT.
 */
void inf_matmul(struct inf_threadpool *pool, enum inf_type wtype, const void *w, size_t w_row_bytes,
                int64_t n_rows, int64_t n, const float *x, size_t x_stride, int64_t n_tokens,
                float *y, size_t y_stride, void *act, unsigned flags);

/* The two halves of inf_matmul, for weights that share their input (Q, K, V; gate and up):
 * quantize the activations once into act (same size), then multiply any number of weights of
 * types with the same vec_dot_type. */
void inf_matmul_quantize(struct inf_threadpool *pool, enum inf_type wtype, const float *x,
                         size_t x_stride, int64_t n, int64_t n_tokens, void *act);
void inf_matmul_pre(struct inf_threadpool *pool, enum inf_type wtype, const void *w,
                    size_t w_row_bytes, int64_t n_rows, int64_t n, const void *act,
                    int64_t n_tokens, float *y, size_t y_stride);

/* One weight of a group multiplied by the same input (inf_matmul_multi). */
struct inf_matmul_op {
    enum inf_type wtype;
    const void *w;
    size_t w_row_bytes;
    int64_t n_rows;
    float *y;
    size_t y_stride;
};

/*
 * Several products of one input in a single pass of the pool (Q, K and V; gate and up): x is
 * quantized once, then the row chunks of all n_ops weights (at most 4) are handed out together,
 * so the threads meet at one barrier instead of one per weight. With swiglu (two ops of equal
 * n_rows and y_stride: gate then up), each chunk of rows also computes
 * y0 = silu(y0) * y1 on its columns once both are done. The weights' types must share one
 * vec_dot_type (else the products run one after another); act and flags as for inf_matmul.
 */
void inf_matmul_multi(struct inf_threadpool *pool, int n_ops, const struct inf_matmul_op *ops,
                      int64_t n, const float *x, size_t x_stride, int64_t n_tokens, void *act,
                      bool swiglu, unsigned flags);

/*
 * For code already running inside a thread-pool task: rows [r0, r1) of the product with
 * activations already quantized by inf_matmul_quantize (or inf_matmul_quantize_row). No
 * synchronisation. A packed layout (inf_weight_pack) takes r0 and r1 in whole 16-row groups.
 */
void inf_matmul_rows(enum inf_type wtype, const void *w, size_t w_row_bytes, int64_t r0, int64_t r1,
                     int64_t n, const void *act, int64_t n_tokens, float *y, size_t y_stride);
/* One activation row of n values for weights of type wtype, as inf_matmul_quantize writes it
 * (the vec_dot_type's blocks, and what a packed layout reads beside them), single-threaded; act
 * holds inf_matmul_act_size(wtype, n, 1) bytes. */
void inf_matmul_quantize_row(enum inf_type wtype, const float *x, void *act, int64_t n);

/*
 * Weights repacked at load. Some levels multiply a weight type faster from another in-memory
 * layout of the same bytes: Q4_0, Q4_1, Q4_K, Q6_K and Q8_0 as INF_TYPE_Q4_0_X16,
 * INF_TYPE_Q4_1_X16, INF_TYPE_Q4_K_X16, INF_TYPE_Q6_K_X16 and INF_TYPE_Q8_0_X16, whose 16-row
 * groups let one activation load feed 16 rows (docs/performance.md "Weights repacked at load").
 * inf_weight_pack_type says which layout the kernels in use want for a matrix of n_rows rows of n
 * values of type (type itself when none, or when the shape does not fit: n_rows a multiple of 16);
 * inf_weight_pack rewrites the matrix in place (w: n_rows rows of row_bytes =
 * inf_type_row_size(type, n)) into that layout and returns false, leaving w unchanged, when to is
 * not a layout of type or the shape does not fit. A packed matrix keeps its size and row_bytes; it
 * is a weight only for the matrix products (inf_matmul*, whole 16-row groups), never a row source
 * (dequantize, get-rows), and every level multiplies it, so a later inf_kernels_set_level stays
 * correct.
 */
enum inf_type inf_weight_pack_type(enum inf_type type, int64_t n_rows, int64_t n);
bool inf_weight_pack(enum inf_type type, enum inf_type to, void *w, size_t row_bytes,
                     int64_t n_rows, int64_t n);

/* ---- Attention helpers (F32 / F16 rows) ---------------------------------------------------- */

float inf_dot_f32(int64_t n, const float *a, const float *b);
float inf_dot_f16_f32(int64_t n, const uint16_t *a_f16, const float *b);
/* y[i] += a * x[i] */
void inf_axpy_f32(int64_t n, float a, const float *x, float *y);
void inf_axpy_f16(int64_t n, float a, const uint16_t *x_f16, float *y);
/*
 * Attention scores: s[t][j] = scale * dot(q[t], k[j]) for t < n_q, j < n_kv; q rows of d floats
 * q_stride floats apart, k rows of d values of ktype (F32 or F16) k_stride elements apart, s rows
 * s_stride floats apart. Register-tiled like the matrix products; single-threaded (callers split
 * heads or queries among threads).
 */
void inf_attn_qk(int64_t n_q, int64_t n_kv, int64_t d, const float *q, size_t q_stride,
                 enum inf_type ktype, const void *k, size_t k_stride, float scale, float *s,
                 size_t s_stride);

/*
 * Attention-weighted values: out[t][i] += sum_j p[t][j] * v[j][i] for t < n_q, j < n_kv, i < d;
 * p rows p_stride floats apart, v rows of d values of vtype (F32 or F16) v_stride elements apart,
 * out rows out_stride floats apart (accumulated into: clear it first). Single-threaded.
 */
void inf_attn_pv(int64_t n_q, int64_t n_kv, int64_t d, const float *p, size_t p_stride,
                 enum inf_type vtype, const void *v, size_t v_stride, float *out,
                 size_t out_stride);

/*
 * One tile of attention with an online softmax (the cache is read once, in tiles, whatever the
 * context length). k and v are nt <= INF_ATTN_TILE cells of hd floats each, one after another.
 * Query row r (q[r], hd floats) sees the first n_valid[r] cells of the tile (0 skips the row):
 * with s_j = scale * dot(q[r], k_j), the running maximum m[r], the running sum l[r] of
 * exp(s_j - m[r]) and the unnormalised output acc[r] (hd floats) are brought up to date. Start
 * each row with m = -INFINITY, l = 0, acc = 0 and divide acc by l after the last tile.
 */
#define INF_ATTN_TILE 64
void inf_attn_tile(int hd, int nr, const float *const *q, int nt, const float *k, const float *v,
                   const int *n_valid, float scale, float *m, float *l, float *const *acc);
/*
 * The same with K transposed: kt[i * INF_ATTN_TILE + j] is element i of cell j (64-byte aligned,
 * all INF_ATTN_TILE columns readable, those >= nt finite). Faster for several query rows; false
 * (nothing done) where this machine's kernels have no such path or hd > 256: use inf_attn_tile.
 */
bool inf_attn_tile_kt(int hd, int nr, const float *const *q, int nt, const float *kt,
                      const float *v, const int *n_valid, float scale, float *m, float *l,
                      float *const *acc);

/* Row conversions. */
void inf_f32_to_f16_row(const float *src, uint16_t *dst, int64_t n);
void inf_f16_to_f32_row(const uint16_t *src, float *dst, int64_t n);

/* ---- Small operations -------------------------------------------------------------------- */

/* out[i] = x[i] / sqrt(mean(x^2) + eps) * (weight ? weight[i] : 1). out may alias x. */
void inf_rms_norm(int64_t n, const float *x, const float *weight, float eps, float *out);

/* In place x = softmax(x * scale); returns the sum of the exponentials before normalising. */
float inf_softmax(int64_t n, float *x, float scale);

/* In place: x = silu(x); x = gelu(x) (tanh approximation, as ggml); gate = silu(gate) * up. */
void inf_silu(int64_t n, float *x);
void inf_gelu(int64_t n, float *x);
void inf_swiglu(int64_t n, float *gate, const float *up);

/* x += y; x *= y; x *= s. */
void inf_add(int64_t n, float *x, const float *y);
void inf_mul(int64_t n, float *x, const float *y);
void inf_scale(int64_t n, float *x, float s);

/* Rotary embeddings. */
enum inf_rope_mode {
    INF_ROPE_MODE_NORM = 0, /* pairs (x[2i], x[2i+1]): llama */
    INF_ROPE_MODE_NEOX = 2, /* pairs (x[i], x[i + n_rot/2]): gpt-neox, qwen (ggml's mode 2) */
};

struct inf_rope_params {
    int n_rot;                 /* rotated dimensions per head (even) */
    float freq_base;           /* theta base, 10000 for llama */
    float freq_scale;          /* 1 / linear scaling factor, 1 for none */
    const float *freq_factors; /* [n_rot/2] divisors (Llama 3 "rope_freqs"), or NULL */
    /* YaRN: ext_factor 0 disables it. attn_factor scales cos and sin (1 normally). */
    int n_ctx_orig;
    float ext_factor, attn_factor, beta_fast, beta_slow;
};

/*
 * Fill cache[0..n_rot) with (cos, sin) pairs for position pos, exactly as ggml's rope cache
 * (cache[2i] = cos(theta_i), cache[2i+1] = sin(theta_i), theta_i = pos * base^(-2i/n_rot) with
 * YaRN and frequency factors applied).
 */
void inf_rope_cache(const struct inf_rope_params *p, int64_t pos, float *cache);

/*
 * Rotate n_heads heads of head_dim values (x[h*head_dim ...], in place) with a cache from
 * inf_rope_cache. Dimensions from n_rot to head_dim are left as they are.
 */
void inf_rope(enum inf_rope_mode mode, float *x, int n_heads, int head_dim, int n_rot,
              const float *cache);

#ifdef __cplusplus
}
#endif
#endif
