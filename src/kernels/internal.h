/*
 * internal.h - the kernels' internal interface: reference kernels, the per-level function
 * tables and the dispatcher.
 *
 * A level (scalar, AVX2, AVX-512) is a struct inf__kern: one table of function pointers filled
 * by that level's file. The scalar table holds the reference kernels; the SIMD tables start as a
 * copy of a lower level's and replace what they implement, so every entry is always callable.
 */
#ifndef INFERNO_KERNELS_INTERNAL_H
#define INFERNO_KERNELS_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "inferno/kernels.h"

#if defined(__GNUC__)
#define INF__ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define INF__ALWAYS_INLINE inline
#endif

/*
 * A register-tiled dot-product kernel: s[c * lds + r] = dot(row r of w, row c of a) for r < nr,
 * c < nc, where rows of w (weights) are ldw bytes apart, rows of a (activations in the weight
 * type's vec_dot_type) lda bytes apart, each n values long. nr <= max_nr and nc <= max_nc of its
 * table entry. The matrix-vector product uses nc == 1; batches use the full tile.
 */
typedef void (*inf__gemm_fn)(int64_t n, const void *w, size_t ldw, const void *a, size_t lda,
                             float *s, size_t lds, int nr, int nc);

/*
 * panel (optional): the same product for any nr and nc, used by the batched path for chunks of
 * rows times at least panel_min_nc tokens. It repacks the chunk's weights once into a layout
 * where one activation load feeds many rows, so it pays off only for many tokens.
 *
 * Batch invariance (INF_MATMUL_INVARIANT): gemm_inv, or gemm where it is NULL, must compute
 * every output s[c][r] with exactly the operations its nc == 1 case uses for that row and
 * column, whatever nr, nc and the tile shapes are (test_kernels: test_matmul_invariant). Most
 * gemm entries do so themselves (one accumulator per output, the same steps for every tile);
 * gemm_inv exists where the fastest batch tile sums in another order than the matrix-vector
 * tile (AVX-512 VNNI Q4_0/Q8_0, AVX-512 F16/BF16). Same tile bounds as gemm.
 */
struct inf__wkern {
    inf__gemm_fn gemm;
    int max_nr, max_nc;
    inf__gemm_fn panel;
    int panel_min_nc;
    inf__gemm_fn gemm_inv;
};

struct inf__kern {
    enum inf_cpu_level level;
    struct inf__wkern w[INF_TYPE_COUNT]; /* per weight type */
    uint8_t packed[INF_TYPE_COUNT]; /* the layout a weight type is repacked into at load; 0: none */
    inf_from_float_fn quantize_act[INF_TYPE_COUNT]; /* per activation type */
    inf_to_float_fn to_float[INF_TYPE_COUNT];       /* per type */

    float (*dot_f32)(int64_t n, const float *a, const float *b);
    float (*dot_f16_f32)(int64_t n, const uint16_t *a, const float *b);
    void (*axpy_f32)(int64_t n, float a, const float *x, float *y);
    void (*axpy_f16)(int64_t n, float a, const uint16_t *x, float *y);
    /* y[i] += a[0] x[0][i] + a[1] x[1][i] + a[2] x[2][i] + a[3] x[3][i] */
    void (*axpy4_f32)(int64_t n, const float *a, const float *const *x, float *y);
    void (*axpy4_f16)(int64_t n, const float *a, const uint16_t *const *x, float *y);
    void (*f32_to_f16)(const float *src, uint16_t *dst, int64_t n);
    void (*f16_to_f32)(const uint16_t *src, float *dst, int64_t n);

    void (*rms_norm)(int64_t n, const float *x, const float *weight, float eps, float *out);
    float (*softmax)(int64_t n, float *x, float scale);
    void (*silu)(int64_t n, float *x);
    void (*gelu)(int64_t n, float *x);
    void (*swiglu)(int64_t n, float *gate, const float *up);
    void (*add)(int64_t n, float *x, const float *y);
    void (*mul)(int64_t n, float *x, const float *y);
    void (*scale)(int64_t n, float *x, float s);
    void (*rope)(enum inf_rope_mode mode, float *x, int n_heads, int head_dim, int n_rot,
                 const float *cache);
    /* one tile of online-softmax attention: see inf_attn_tile in inferno/kernels.h */
    void (*attn_tile)(int hd, int nr, const float *const *q, int nt, const float *k, const float *v,
                      const int *n_valid, float scale, float *m, float *l, float *const *acc);
    /* the same with K transposed (inf_attn_tile_kt); NULL where the level has none */
    void (*attn_tile_kt)(int hd, int nr, const float *const *q, int nt, const float *kt,
                         const float *v, const int *n_valid, float scale, float *m, float *l,
                         float *const *acc);
};

/*
 * INF_TYPE_Q4_0_X16 (packed.c): Q4_0 rows in groups of 16 consecutive rows; group g keeps the
 * 16 * row_bytes bytes at 16 * row_bytes * g, block by block: block b of the group (INF__X16_BLOCK
 * bytes at INF__X16_BLOCK * b) is the 16 rows' fp16 scales d (32 bytes), then 4 vectors of 64
 * bytes, vector j holding bytes qs[4j..4j+3] of row r in its 32-bit lane r (low nibbles: values
 * 4j..4j+3 of the block; high nibbles: values 16+4j..16+4j+3).
 * The activations of such a weight (Q8_0 rows) carry after their blocks, at
 * inf__x16_sums_offset(n), one int32 per block: -8 times the sum of its 32 levels, the Q4_0 offset
 * as an integer (matmul.c writes them when it quantizes for a weight with inf__type_act_sums).
 * Every output is then, block by block in order, acc = fma(float(dot + sums[b]), dx * dy, acc)
 * with dot the exact integer sum: one operation sequence per output whatever the tile, so
 * batches and single tokens agree bit for bit at every level that implements it that way.
 */
#define INF__X16_ROWS  16
#define INF__X16_BLOCK 288
/*
 * INF_TYPE_Q4_K_X16: Q4_K rows in groups of 16 the same way, superblock by superblock
 * (INF__K16_SB bytes each): the 16 rows' fp16 d (32 bytes), their fp16 dmin (32 bytes), then 3
 * vectors of the 12 scale bytes (vector k: bytes 4k..4k+3 of row r in lane r), then 32 vectors of
 * qs (vector v: bytes 4v..4v+3 of row r in lane r; v = 8i + g holds values 64i + 4g..4g+3 in its
 * low nibbles, sub-block 2i, and 64i + 32 + 4g.. in its high nibbles, sub-block 2i+1).
 * An output is acc - accm, where superblock by superblock acc = fma(float(sum_j sc_j dot_j),
 * d dy, acc) and accm = fma(float(sum_j m_j bsum_j), dmin dy, accm) (integer sums exact), at
 * every level that implements it.
 */
#define INF__K16_SB 2304
/* INF_TYPE_Q8_0_X16: as Q4_0_X16 with 8 vectors per block (INF__Q8X16_BLOCK bytes: the 32 bytes
 * of scales, then vector j holding qs[4j..4j+3] of row r, each byte XOR 0x80: the level + 128,
 * unsigned); the activations' block sums (-8 sum) times 16 take the 128 off. */
#define INF__Q8X16_BLOCK 544
/* INF_TYPE_Q4_1_X16: as Q4_0_X16 with the 16 rows' fp16 mins after their scales (INF__Q41X16_BLOCK
 * bytes a block); its activations are Q8_1, whose s (d times the sum of the levels) meets the
 * mins: acc = fma(float(dot), d dy, acc), then acc = fma(m, s, acc), block by block. */
#define INF__Q41X16_BLOCK 320
/*
 * INF_TYPE_Q6_K_X16: Q6_K rows in groups of 16, superblock by superblock (INF__Q6X16_SB bytes):
 * 4 vectors of the 16 int8 scales (vector k: scales[4k..4k+3] of row r in lane r), 32 vectors of
 * ql (vector u: ql[4u..4u+3]), 16 vectors of qh (vector t: qh[4t..4t+3]), then the 16 rows' fp16
 * d (32 bytes). An output is acc = fma(float(sum_g sc_g (dot_g - 32 bsum_g)), d dy, acc)
 * superblock by superblock, dot_g over the unsigned 6-bit levels of group g (16 values).
 */
#define INF__Q6X16_SB 3360
static inline size_t inf__x16_sums_offset(int64_t n)
{
    return ((size_t)(n / 32) * 34 + 3) / 4 * 4;
}
/* Whether activations for weights of type t carry block sums, and writing them for blocks
 * [b0, b1) of one Q8_0 row. */
bool inf__type_act_sums(enum inf_type t);
void inf__act_sums_q8_0(void *act_row, int64_t n, int64_t b0, int64_t b1);
/* The reference product of a Q4_0_X16 matrix (any level's fallback; gemm contract above, rows
 * of w in whole groups from a group's start). */
void inf__gemm_ref_q4_0_x16(int64_t n, const void *w, size_t ldw, const void *a, size_t lda,
                            float *s, size_t lds, int nr, int nc);
void inf__gemm_ref_q4_K_x16(int64_t n, const void *w, size_t ldw, const void *a, size_t lda,
                            float *s, size_t lds, int nr, int nc);
void inf__gemm_ref_q8_0_x16(int64_t n, const void *w, size_t ldw, const void *a, size_t lda,
                            float *s, size_t lds, int nr, int nc);
void inf__gemm_ref_q6_K_x16(int64_t n, const void *w, size_t ldw, const void *a, size_t lda,
                            float *s, size_t lds, int nr, int nc);
void inf__gemm_ref_q4_1_x16(int64_t n, const void *w, size_t ldw, const void *a, size_t lda,
                            float *s, size_t lds, int nr, int nc);

/* This thread's scratch for the panel kernels: 64-byte aligned, at least bytes long, reused by
 * every later call on the thread (so one product at a time); NULL when out of memory. */
void *inf__thread_scratch(size_t bytes);

/* binary16 -> binary32 for every 16-bit pattern (filled before any level is set up); the SIMD
 * kernels read block scales through it: one load instead of a convert. */
extern float inf__fp16_table[65536];

/* The table of a level, or NULL when this build or CPU cannot run it. */
const struct inf__kern *inf__kern_get(enum inf_cpu_level level);
/* The table in use (see inf_kernels_level). */
const struct inf__kern *inf__kern(void);

/* Fill a table: the reference one, then each SIMD level over a copy of the level below. */
void inf__kern_init_ref(struct inf__kern *k);
#ifdef INFERNO_X86
void inf__kern_init_avx2(struct inf__kern *k);
/* The AVX2 products of the 16-row layouts (kern_avx2_x16.c); they turn the repacking on. */
void inf__kern_init_avx2_x16(struct inf__kern *k);
/* Its F16 and BF16 panels for batches (kern_avx2_f16.c), over the table's gemms. */
void inf__kern_init_avx2_f16(struct inf__kern *k);
/* Its K-quant panels for batches (kern_avx2_kq.c). */
void inf__kern_init_avx2_kq(struct inf__kern *k);
void inf__kern_init_avx512(struct inf__kern *k, int have_vnni);
/* Its F16 and BF16 weight kernels (kern_avx512_f16.c), called by inf__kern_init_avx512. */
void inf__kern_init_avx512_f16(struct inf__kern *k);
/* The K-quant panels (kern_avx512_kq.c), over a table filled by inf__kern_init_avx512. */
void inf__kern_init_avx512_kq(struct inf__kern *k);
/* The Q4_0_X16 / Q4_K_X16 kernels (kern_avx512_x16.c): VNNI only; they turn the repacking of
 * Q4_0 and Q4_K on. */
void inf__kern_init_avx512_x16(struct inf__kern *k);
#endif

/* ---- Choosing a level per weight type (calibrate.c) ----------------------------------------
 *
 * Where two SIMD levels implement a weight type's matrix-vector kernel, the faster one on the
 * running CPU wins (issue #16: on Zen 4 the AVX2 q4_K kernel beats the AVX-512 one). What moves
 * between levels is a type's gemm with its tile bounds (gemm, max_nr, max_nc): the activation
 * quantizers of every level write the same bytes and the activation format is the type's
 * vec_dot_type, not the level's, so the top level's quantize_act serves every gemm. The panel
 * (batches of panel_min_nc tokens or more) stays the top level's: it is a separate kernel for
 * prompts, which the matrix-vector measurement says nothing about.
 */
#define INF__KCHOICE_VERSION 1

struct inf__kchoice {
    int8_t level[INF_TYPE_COUNT];                    /* the gemm's level; -1 = the base table's */
    float gbps[INF_TYPE_COUNT][INF_CPU_LEVEL_COUNT]; /* matrix-vector GB/s measured; 0 = none */
};

/* Whether a weight type's gemm differs between two levels >= AVX2 that this CPU runs: the types
 * worth measuring. ok[l]: level l is usable; tables[l] is read only where ok[l]. */
bool inf__kchoice_candidate(const struct inf__kern *tables, const bool *ok, enum inf_type type);

/* The cache key: CPU model, features, VNNI use, and this build (a new build re-measures, as its
 * kernels may have changed), into buf; one line, no newline. */
void inf__kchoice_key(bool vnni, char *buf, size_t size);

/* Measure every candidate type at every usable level >= AVX2 (single thread; passes over 8 MiB
 * slices of a 64 MiB matrix, so from memory, not cache; best of 5 per level, the levels
 * alternating) and pick per type: the top level unless another is more than 5 % faster. Types
 * that are not candidates get -1. Returns false when out of memory. */
bool inf__kchoice_measure(const struct inf__kern *tables, const bool *ok, struct inf__kchoice *c);

/* The cache file's text for c under key into buf (NUL-terminated); returns the length, or 0 when
 * it does not fit. */
size_t inf__kchoice_format(const struct inf__kchoice *c, const struct inf__kern *tables,
                           const bool *ok, const char *key, char *buf, size_t size);

/*
 * Parse a cache file's text (len bytes, outside input: any bytes). Succeeds only when the
 * version line, the key (exactly key) and one line for every candidate type are there, each
 * naming a level ok[] allows, followed by the "end" line; otherwise returns false and c is
 * undefined.
 */
bool inf__kchoice_parse(const char *text, size_t len, const struct inf__kern *tables,
                        const bool *ok, const char *key, struct inf__kchoice *c);

/* The cache file for key: "$XDG_CACHE_HOME/inferno/kernels-<hash>.txt" (XDG_CACHE_HOME when
 * absolute, else $HOME/.cache), into buf; false when neither variable gives a directory. */
bool inf__kchoice_path(const char *key, char *buf, size_t size);

/* Read / write the cache file (write: creates the directories, writes a temporary file and
 * renames it, so readers see a whole file or none). Both return false on any failure. */
bool inf__kchoice_load(const char *path, const struct inf__kern *tables, const bool *ok,
                       const char *key, struct inf__kchoice *c);
bool inf__kchoice_save(const char *path, const struct inf__kchoice *c,
                       const struct inf__kern *tables, const bool *ok, const char *key);

/* Make a table from the choice and use it from now on (tests: a forced choice); like
 * inf_kernels_set_level, not thread-safe with kernels running. */
void inf__kern_use_choice(const struct inf__kchoice *c);

/* ---- Reference kernels (ref_quants.c, ref_dot.c, ref_ops.c) -------------------------------- */

#define INF__REF_CONV(t)                                                                           \
    void inf__from_float_##t##_ref(const float *x, void *y, int64_t n);                            \
    void inf__to_float_##t##_ref(const void *x, float *y, int64_t n);
INF__REF_CONV(f32)
INF__REF_CONV(f16)
INF__REF_CONV(bf16)
INF__REF_CONV(q4_0)
INF__REF_CONV(q4_1)
INF__REF_CONV(q5_0)
INF__REF_CONV(q5_1)
INF__REF_CONV(q8_0)
INF__REF_CONV(q8_1)
INF__REF_CONV(q2_K)
INF__REF_CONV(q3_K)
INF__REF_CONV(q4_K)
INF__REF_CONV(q5_K)
INF__REF_CONV(q6_K)
INF__REF_CONV(q8_K)
INF__REF_CONV(mxfp4)
#undef INF__REF_CONV
/* MXFP4's doubled E2M1 values and its scale 2^(e - 128) (half the E8M0 value, as ggml keeps it) */
extern const int8_t inf__mxfp4_values[16];
/* 2^(e - 128) as a binary32: subnormal for e < 2 (NaN, e = 255, is not given a meaning here) */
static inline float inf__e8m0_half(uint8_t e)
{
    const uint32_t bits = e < 2 ? 0x00200000u << e : (uint32_t)(e - 1) << 23;
    float f;
    memcpy(&f, &bits, sizeof(f));
    return f;
}

/* Reference dot product of one weight row with one activation row (vec_dot_type). */
typedef float (*inf__vec_dot_fn)(int64_t n, const void *w, const void *a);
/*
 * Activation quantizers (the rows a matrix product multiplies the weights with). They differ
 * from the file quantizers above in two details, as llama.cpp's run-time x86 quantizer does:
 * the inverse scale is 127/amax (not 1/(amax/127)) and ties round to even. Every SIMD level
 * produces exactly these bytes, so the products match llama.cpp's to the last bit more often.
 */
void inf__act_q8_0_ref(const float *x, void *y, int64_t n);
void inf__act_q8_1_ref(const float *x, void *y, int64_t n);

inf__vec_dot_fn inf__vec_dot_ref(enum inf_type wtype);
/* The reference gemm: loops over inf__vec_dot_ref. */
void inf__gemm_ref(enum inf_type wtype, int64_t n, const void *w, size_t ldw, const void *a,
                   size_t lda, float *s, size_t lds, int nr, int nc);

float inf__dot_f32_ref(int64_t n, const float *a, const float *b);
float inf__dot_f16_f32_ref(int64_t n, const uint16_t *a, const float *b);
void inf__axpy_f32_ref(int64_t n, float a, const float *x, float *y);
void inf__axpy_f16_ref(int64_t n, float a, const uint16_t *x, float *y);
void inf__axpy4_f32_ref(int64_t n, const float *a, const float *const *x, float *y);
void inf__axpy4_f16_ref(int64_t n, const float *a, const uint16_t *const *x, float *y);
void inf__f32_to_f16_ref(const float *src, uint16_t *dst, int64_t n);
void inf__f16_to_f32_ref(const uint16_t *src, float *dst, int64_t n);
void inf__rms_norm_ref(int64_t n, const float *x, const float *weight, float eps, float *out);
float inf__softmax_ref(int64_t n, float *x, float scale);
void inf__silu_ref(int64_t n, float *x);
void inf__gelu_ref(int64_t n, float *x);
void inf__swiglu_ref(int64_t n, float *gate, const float *up);
void inf__add_ref(int64_t n, float *x, const float *y);
void inf__mul_ref(int64_t n, float *x, const float *y);
void inf__scale_ref(int64_t n, float *x, float s);
void inf__rope_ref(enum inf_rope_mode mode, float *x, int n_heads, int head_dim, int n_rot,
                   const float *cache);
void inf__attn_tile_ref(int hd, int nr, const float *const *q, int nt, const float *k,
                        const float *v, const int *n_valid, float scale, float *m, float *l,
                        float *const *acc);
void inf__attn_tile_kt_ref(int hd, int nr, const float *const *q, int nt, const float *kt,
                           const float *v, const int *n_valid, float scale, float *m, float *l,
                           float *const *acc);

#endif
