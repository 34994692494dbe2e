/*
 * onnx/onnx_internal.h - the ONNX backend's private structures: the protobuf reader, the
 * loaded graph, the operator table. Private to src/onnx/.
 */
#ifndef INFERNO_ONNX_INTERNAL_H
#define INFERNO_ONNX_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "inferno/onnx.h"
#include "inferno/threadpool.h"

/* ---- protobuf wire format (pb.c) ------------------------------------------------------------ */

enum { INF__PB_VARINT = 0, INF__PB_I64 = 1, INF__PB_LEN = 2, INF__PB_I32 = 5 };

struct inf__pb {
    const uint8_t *p, *end;
};

struct inf__pb_field {
    uint32_t number;
    unsigned wt;
    uint64_t v;          /* VARINT, I64, I32 (the raw bits) */
    const uint8_t *data; /* LEN */
    size_t len;
};

/* Next field of b into f; false at the end (b->p == b->end) or on malformed bytes (*bad set). */
bool inf__pb_next(struct inf__pb *b, struct inf__pb_field *f, bool *bad);

/* Repeated scalar fields, packed (LEN) or one value per field. Appends to a growing array.
   kind: 0 = varint as int64, 1 = fixed32 float, 2 = fixed64 double, 3 = varint as uint64.
   False on malformed payloads or when the count would exceed max_count. */
bool inf__pb_append_i64(const struct inf__pb_field *f, int64_t **arr, size_t *n, size_t *cap,
                        size_t max_count);
bool inf__pb_append_f32(const struct inf__pb_field *f, float **arr, size_t *n, size_t *cap,
                        size_t max_count);
bool inf__pb_append_f64(const struct inf__pb_field *f, double **arr, size_t *n, size_t *cap,
                        size_t max_count);

/* malloc'd NUL-terminated copy of a LEN field (NULL on allocation failure). */
char *inf__pb_strdup(const struct inf__pb_field *f);

/* ---- tensors (tensor.c) --------------------------------------------------------------------- */

#define INF__ONNX_DEFAULT_MAX_BYTES ((size_t)4 << 30)

/* Element count of dims, or -1 on overflow past 2^62 / a negative dim. */
int64_t inf__onnx_numel(int ndim, const int64_t *dims);

/* Element i of t as double / int64 (numeric and bool types; strings give 0). */
double inf__onnx_get_f64(const struct inf_onnx_tensor *t, int64_t i);
int64_t inf__onnx_get_i64(const struct inf_onnx_tensor *t, int64_t i);
/* Store v (converted as Cast does, saturating float8 when sat) into element i. */
void inf__onnx_set_f64(struct inf_onnx_tensor *t, int64_t i, double v, bool sat);
void inf__onnx_set_i64(struct inf_onnx_tensor *t, int64_t i, int64_t v);

bool inf__onnx_is_float(int dtype);   /* float, double, float16, bfloat16, float8, float4 */
bool inf__onnx_is_integer(int dtype); /* signed and unsigned ints, sub-byte ints */

/* Decode TensorProto bytes; external_dir != NULL lets EXTERNAL data be read from files below it. */
inf_status inf__onnx_tensor_decode_ext(const void *pb, size_t n, const char *external_dir,
                                       size_t max_bytes, struct inf_onnx_tensor *out,
                                       struct inf_error *err);

/* Half / bfloat16 helpers. */
float inf__onnx_h2f(uint16_t h);
uint16_t inf__onnx_f2h(float f);

/* ---- the loaded graph (load.c) -------------------------------------------------------------- */

enum inf__attr_type {
    INF__ATTR_FLOAT = 1,
    INF__ATTR_INT = 2,
    INF__ATTR_STRING = 3,
    INF__ATTR_TENSOR = 4,
    INF__ATTR_GRAPH = 5,
    INF__ATTR_FLOATS = 6,
    INF__ATTR_INTS = 7,
    INF__ATTR_STRINGS = 8,
    INF__ATTR_TENSORS = 9,
    INF__ATTR_GRAPHS = 10,
};

struct inf__onnx_attr {
    char *name;
    int type;
    float f;
    int64_t i;
    char *s;
    struct inf_onnx_tensor t;
    bool has_t;
    float *floats;
    int64_t *ints;
    size_t n; /* of floats or ints (or strings) */
};

struct inf__onnx_node;
struct inf__onnx_exec;

/* An operator: computes outs[0..n_out) (owned, allocated by the op) from ins (NULL = absent). */
typedef inf_status (*inf__onnx_op_fn)(struct inf__onnx_exec *x, const struct inf__onnx_node *n,
                                      struct inf_onnx_tensor *const *ins,
                                      struct inf_onnx_tensor *outs);

struct inf__onnx_op {
    const char *name;
    int since; /* first opset handled */
    int min_in, max_in, min_out, max_out;
    inf__onnx_op_fn fn;
};

/* The operator for op_type at opset, or NULL. */
const struct inf__onnx_op *inf__onnx_op_find(const char *op_type);

struct inf__onnx_node {
    char *name, *op_type, *domain;
    int n_in, n_out;
    int *in, *out; /* value ids; -1 = optional input not given */
    struct inf__onnx_attr *attrs;
    int n_attrs;
    const struct inf__onnx_op *op;
    /* fusions (load.c, fuse): per-channel affine ops folded into a Conv's weights or a
       BatchNormalization's parameters, and a ReLU applied in the same pass */
    bool fuse_relu;
    int fuse_rank; /* BatchNormalization that absorbed per-channel ops: the input rank their
                      constants assumed (checked at run time); 0 = none */
    int fuse_bias; /* MatMul with a constant 2-D B that absorbed the following Add of a constant
                      [N] row: that constant's value id; -1 = none */
    float *pre_ss; /* Conv (1x1, stride 1, no padding, one group) that absorbed the
                      inference BatchNormalization (+ Relu) before it: per input channel c,
                      x * pre_ss[c] + pre_ss[C + c] (then ReLU when pre_relu) is applied as
                      the GEMM's B panels are packed (ops_nn.c); NULL = none */
    int64_t pre_c; /* C: the input channels pre_ss holds */
    bool pre_relu;
    bool dead;       /* removed by folding or fusion */
    float *packed_w; /* Conv with constant float weights: each group's A packed at load time
                        (inf__sgemm_pack_a), groups inf__sgemm_packed_a_size(M/g, K) apart */
    float *wino_w;   /* a 2-D 3x3 Conv of stride 1 and dilation 1 with constant float weights:
                        per group, the 16 Winograd F(2x2, 3x3) transforms of its weights
                        (G g G^T, element xi = 4 i + j of each 4x4) as packed A operands of
                        M/g rows and C/g columns, inf__sgemm_packed_a_size(M/g, C/g) apart */
};

struct inf__onnx_value {
    char *name;
    struct inf_onnx_value_info info; /* declared type and shape, when known */
    bool has_info;
    bool is_const; /* initializer, Constant or folded: konst holds it */
    struct inf_onnx_tensor konst;
    int producer; /* node index, -1 for graph inputs and constants */
    int last_use; /* position in the plan of the last node reading it; INT32_MAX for outputs */
    char *dim_param_store[INF_ONNX_MAX_DIMS];
};

/* Buffers of freed intermediate tensors kept for the next allocations of a similar size, so
   that runs after the first reuse memory instead of faulting in fresh pages (run.c). */
#define INF__ONNX_CACHE_SLOTS 64
struct inf__onnx_bufcache {
    pthread_mutex_t mu;
    struct {
        void *p;
        size_t cap;
    } slot[INF__ONNX_CACHE_SLOTS];
    int n;
    size_t bytes, max_bytes;
};

struct inf_onnx_model {
    struct inf__onnx_bufcache cache;
    int64_t ir_version, opset;
    char *producer_name, *producer_version, *graph_name;
    struct inf__onnx_value *values;
    int n_values, cap_values;
    struct inf__onnx_node *nodes;
    int n_nodes, cap_nodes;
    int *plan; /* node indices in execution order */
    int n_plan;
    int *inputs, *outputs; /* value ids */
    int n_inputs, n_outputs;
    struct inf_onnx_value_info *input_info, *output_info;
    int n_initializers;
    int64_t n_parameters;
    size_t max_bytes;
};

/* Attribute lookup on a node (NULL when absent). */
const struct inf__onnx_attr *inf__onnx_attr(const struct inf__onnx_node *n, const char *name);
int64_t inf__onnx_attr_i(const struct inf__onnx_node *n, const char *name, int64_t dflt);
float inf__onnx_attr_f(const struct inf__onnx_node *n, const char *name, float dflt);
const char *inf__onnx_attr_s(const struct inf__onnx_node *n, const char *name, const char *dflt);
/* ints attribute: count (or -1 when absent) and pointer. */
int inf__onnx_attr_ints(const struct inf__onnx_node *n, const char *name, const int64_t **v);

/* ---- execution (run.c) ---------------------------------------------------------------------- */

struct inf__onnx_exec {
    const struct inf_onnx_model *m;
    struct inf_threadpool *pool;
    struct inf_error *err;
    int64_t opset;
    size_t max_bytes;
    bool in_run; /* inside inf_onnx_run (not constant folding at load): pos is meaningful */
    int pos;     /* the running node's position in the plan */
};

/* inf_onnx_tensor_alloc without zeroing numeric data (strings are still NULL-filled): for
   outputs the op writes in full. */
inf_status inf__onnx_tensor_alloc_uninit(struct inf_onnx_tensor *t, int dtype, int ndim,
                                         const int64_t *dims, size_t max_bytes,
                                         struct inf_error *err);

/* Allocate an op's output, uninitialised (checked against the run's tensor limit): every op
   writes all of its outputs' elements. */
inf_status inf__onnx_out(struct inf__onnx_exec *x, struct inf_onnx_tensor *t, int dtype, int ndim,
                         const int64_t *dims);

/* An error naming the node: "node 'NAME' (OP): msg". */
inf_status inf__onnx_fail(struct inf__onnx_exec *x, const struct inf__onnx_node *n, inf_status code,
                          const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#define INF__ONNX_MAX_OUTS 16

/* Give an intermediate tensor's buffer to the model's cache (or free it); t is zeroed. */
void inf__onnx_recycle(const struct inf_onnx_model *m, struct inf_onnx_tensor *t);
/* Scratch memory for an op (uninitialised, NULL when out of memory), from the same cache, and
   back to it: large temporaries reuse pages across runs instead of faulting in fresh ones. */
void *inf__onnx_scratch(struct inf__onnx_exec *x, size_t bytes);
void inf__onnx_scratch_free(struct inf__onnx_exec *x, void *p, size_t bytes);
/* Free every cached buffer (inf_onnx_free). */
void inf__onnx_cache_clear(struct inf_onnx_model *m);

/* Run one node with the given inputs; outs must have INF__ONNX_MAX_OUTS entries (used by the
 * executor and by constant folding). */
inf_status inf__onnx_run_node(struct inf__onnx_exec *x, const struct inf__onnx_node *n,
                              struct inf_onnx_tensor *const *ins, struct inf_onnx_tensor *outs);

/* ---- kernels (gemm.c) ----------------------------------------------------------------------- */

/* Floats of A packed for M x K (panels of 6 rows). */
size_t inf__sgemm_packed_a_size(int64_t M, int64_t K);
/* Pack alpha * A (row-major with stride lda; A is [K][M] when ta) for inf__gemm_run. */
void inf__sgemm_pack_a(const float *A, int64_t lda, bool ta, int64_t M, int64_t K, float alpha,
                       float *dst);

/* Floats from one packed B panel to the next: kc rows of 16 plus one cache line, so that the
   panels a pack writes for one k do not all fall in the same L1 set. */
#define INF__PANEL_STRIDE(kc) ((kc)*16 + 16)

/*
 * C[M][N] (row stride ldc) = Ap * B (+ C when accumulate), then + row_bias[m] and ReLU. B is
 * supplied tile by tile: pack_b writes rows [k0, k0+kc) of columns [j0, j0+nc) as 16-column
 * panels ([panel][k][16], INF__PANEL_STRIDE(kc) floats apart, the last panel zero padded). Threads
 * of pool split the work. False when out of memory.
 */
struct inf__gemm_plan {
    int64_t M, N, K;
    const float *Ap;
    void (*pack_b)(const void *ctx, int64_t k0, int64_t kc, int64_t j0, int64_t nc, float *dst);
    const void *bctx;
    float *C;
    int64_t ldc;
    const float *row_bias;
    const float *col_bias; /* + col_bias[n] after the product (before ReLU), or NULL */
    bool relu, accumulate;
    /* rows of packed B per K block; 0 = the tile's default (AVX-512: 128, two 16-column panels
       in 16 KiB). A pointwise convolution with a BatchNormalization absorbed asks for 256: its
       K (64 to 1024 channels) in fewer blocks, fewer passes over C (DenseNet 1x1s 0.3-0.5 ms) */
    int64_t kc;
    /* B read in place instead of packed (pack_b unused): B[k][j] = b_base[b_off[k] + j], every
       element with j < N readable. Whole 16-column panels go to the tile straight from there;
       the last, narrower panel is copied. */
    const float *b_base;
    const int64_t *b_off;
    /* rows > 1 (in-place B only): the product repeats over rows of N columns each, row y
       reading B from b_base + y * b_row and writing C from C + y * c_row (a convolution's
       output rows, straight into the output). b_tail_ok: B is readable 16 columns past each
       row's end, so the narrow last panel is read in place too. */
    int64_t rows, b_row, c_row;
    bool b_tail_ok;
};
bool inf__gemm_run(struct inf_threadpool *pool, const struct inf__gemm_plan *p);
bool inf__gemm_avx512(void); /* the AVX-512 tile is in use (not capped by INFERNO_ONNX_GEMM) */
/* C[M][N] (row stride ldc) = A (packed by inf__sgemm_pack_a, K columns) * B given as 16-column
   panels ([panel][k][16], bstride floats apart, the last one zero padded or its extra columns
   ignored), on the calling thread. */
void inf__gemm_panels(int64_t M, int64_t N, int64_t K, const float *Ap, const float *Bp,
                      int64_t bstride, float *C, int64_t ldc);

/* The same for a B given as a matrix (row-major, stride ldb; [N][K] when tb). */
struct inf__sgemm_args {
    int64_t M, N, K;
    const float *A;
    int64_t lda;
    bool ta;
    const float *B;
    int64_t ldb;
    bool tb;
    float *C;
    int64_t ldc;
    float alpha;
    const float *row_bias, *col_bias;
    bool relu, accumulate;
};
bool inf__sgemm(struct inf_threadpool *pool, const struct inf__sgemm_args *a);

/* Static shape inference over the plan (infer.c): refuses what cannot work with the shapes
   known at load, naming the node; fills in graph outputs declared without a shape. */
inf_status inf__onnx_infer_shapes(struct inf_onnx_model *m, struct inf_error *err);

/* Ops tables (ops_*.c). */
extern const struct inf__onnx_op inf__onnx_ops_elem[];
extern const struct inf__onnx_op inf__onnx_ops_shape[];
extern const struct inf__onnx_op inf__onnx_ops_nn[];

/* Broadcast shapes of a and b (numpy rules) into dims/ndim; false when incompatible. */
bool inf__onnx_broadcast(int na, const int64_t *da, int nb, const int64_t *db, int *nout,
                         int64_t *dout);

#endif
