/*
 * inferno/onnx.h - the ONNX backend: load a ModelProto, plan its graph, run it on the CPU.
 *
 * A model is loaded whole (inf_onnx_load_file / inf_onnx_load_memory): the protobuf is decoded
 * by a hand-written, bounds-checked reader (src/onnx/pb.h), every node is matched against the
 * operator table for the model's opset (an unknown op, domain or opset is refused here, naming
 * the op and the node, never half-way through a run), the nodes are put in topological order
 * (a cycle or a value nobody produces is refused), nodes whose inputs are all constants are
 * folded, and each value's last use is recorded so that a run frees intermediate tensors as
 * soon as nothing needs them. A loaded model is read-only: inf_onnx_run may be called from
 * several threads at once (each with its own thread pool or none).
 *
 * Tensors (struct inf_onnx_tensor) hold their elements row-major, one element per storage unit:
 * float/int types at their natural width, FLOAT16/BFLOAT16 as uint16_t bit patterns, the 8-bit
 * float formats as uint8_t, the 4- and 2-bit types unpacked to one byte each (sign-extended
 * int8_t for INT4/INT2), BOOL as one byte 0/1, STRING as an array of NUL-terminated char *.
 */
#ifndef INFERNO_ONNX_H
#define INFERNO_ONNX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "inferno/status.h"

#ifdef __cplusplus
extern "C" {
#endif

struct inf_threadpool;

/* TensorProto.DataType values. */
enum inf_onnx_dtype {
    INF_ONNX_UNDEFINED = 0,
    INF_ONNX_FLOAT = 1,
    INF_ONNX_UINT8 = 2,
    INF_ONNX_INT8 = 3,
    INF_ONNX_UINT16 = 4,
    INF_ONNX_INT16 = 5,
    INF_ONNX_INT32 = 6,
    INF_ONNX_INT64 = 7,
    INF_ONNX_STRING = 8,
    INF_ONNX_BOOL = 9,
    INF_ONNX_FLOAT16 = 10,
    INF_ONNX_DOUBLE = 11,
    INF_ONNX_UINT32 = 12,
    INF_ONNX_UINT64 = 13,
    INF_ONNX_COMPLEX64 = 14,
    INF_ONNX_COMPLEX128 = 15,
    INF_ONNX_BFLOAT16 = 16,
    INF_ONNX_F8E4M3FN = 17,
    INF_ONNX_F8E4M3FNUZ = 18,
    INF_ONNX_F8E5M2 = 19,
    INF_ONNX_F8E5M2FNUZ = 20,
    INF_ONNX_UINT4 = 21,
    INF_ONNX_INT4 = 22,
    INF_ONNX_F4E2M1 = 23,
    INF_ONNX_F8E8M0 = 24,
    INF_ONNX_UINT2 = 25,
    INF_ONNX_INT2 = 26,
    INF_ONNX_DTYPE_COUNT
};

/* "float", "int64", "float8e4m3fn"…; "unknown" outside the enum. */
const char *inf_onnx_dtype_name(int dtype);
/* Bytes of one element in memory (see above); 0 for UNDEFINED, COMPLEX and unknown types. */
size_t inf_onnx_dtype_size(int dtype);

#define INF_ONNX_MAX_DIMS 8

struct inf_onnx_tensor {
    char *name; /* may be NULL */
    int dtype;  /* enum inf_onnx_dtype */
    int ndim;   /* 0 = scalar */
    int64_t dims[INF_ONNX_MAX_DIMS];
    int64_t n;     /* elements: the product of dims (1 for a scalar) */
    void *data;    /* n elements (see above); NULL when n == 0 */
    bool borrowed; /* data (and name) belong to someone else: release leaves them */
};

/* Free what t owns and zero it. NULL is a no-op. */
void inf_onnx_tensor_release(struct inf_onnx_tensor *t);

/*
 * Allocate t: dtype and dims (ndim <= INF_ONNX_MAX_DIMS, each >= 0), zeroed data. Fails with
 * INF_ELIMIT when the element count or byte size overflows or exceeds max_bytes (0 = 4 GiB).
 */
inf_status inf_onnx_tensor_alloc(struct inf_onnx_tensor *t, int dtype, int ndim,
                                 const int64_t *dims, size_t max_bytes, struct inf_error *err);

/* Deep copy of src into *dst (owned). */
inf_status inf_onnx_tensor_copy(struct inf_onnx_tensor *dst, const struct inf_onnx_tensor *src,
                                struct inf_error *err);

/*
 * Decode one serialized TensorProto (raw_data or the typed fields, external data refused) into
 * *out (owned). Element counts are checked against the bytes present before anything is
 * allocated.
 */
inf_status inf_onnx_tensor_decode(const void *pb, size_t n, struct inf_onnx_tensor *out,
                                  struct inf_error *err);

/* Serialize t as a TensorProto (dims, data_type, name, raw_data or string_data). *out is
   malloc'd. */
inf_status inf_onnx_tensor_encode(const struct inf_onnx_tensor *t, uint8_t **out, size_t *n,
                                  struct inf_error *err);

/* NumPy .npy (versions 1-3, little-endian, C order; bool, int8-64, uint8-64, float16/32/64). */
inf_status inf_onnx_npy_decode(const void *data, size_t n, struct inf_onnx_tensor *out,
                               struct inf_error *err);
inf_status inf_onnx_npy_encode(const struct inf_onnx_tensor *t, uint8_t **out, size_t *n,
                               struct inf_error *err);

/*
 * Read a tensor file: .npy by its magic, otherwise a TensorProto.
 */
inf_status inf_onnx_tensor_read_file(const char *path, struct inf_onnx_tensor *out,
                                     struct inf_error *err);

/* A graph input or output as the model declares it. dims[i] < 0: unknown, dim_param[i] names
   it when symbolic. ndim < 0: no shape declared. */
struct inf_onnx_value_info {
    const char *name;
    int dtype;
    int ndim;
    int64_t dims[INF_ONNX_MAX_DIMS];
    const char *dim_param[INF_ONNX_MAX_DIMS];
};

struct inf_onnx_model;

struct inf_onnx_params {
    size_t max_tensor_bytes; /* largest tensor a run may create; 0 = 4 GiB */
    bool no_fold;            /* skip constant folding (tests) */
    bool no_fuse;            /* skip the Conv+BatchNormalization+Relu fusions (tests) */
    size_t cache_bytes;      /* freed intermediate buffers kept for reuse by later runs;
                                0 = 256 MiB */
};

/*
 * Load a model from a file. External data files are read from the model's directory; their
 * location must be a relative path that stays inside it. p may be NULL. On success *out owns
 * the model; free it with inf_onnx_free.
 */
inf_status inf_onnx_load_file(const char *path, const struct inf_onnx_params *p,
                              struct inf_onnx_model **out, struct inf_error *err);

/* The same from memory; base_dir is where external data lives (NULL: external data refused). */
inf_status inf_onnx_load_memory(const void *data, size_t n, const char *base_dir,
                                const struct inf_onnx_params *p, struct inf_onnx_model **out,
                                struct inf_error *err);

void inf_onnx_free(struct inf_onnx_model *m);

/* The graph inputs that are not initializers, and the graph outputs, in declaration order.
   Borrowed until inf_onnx_free. */
int inf_onnx_n_inputs(const struct inf_onnx_model *m);
int inf_onnx_n_outputs(const struct inf_onnx_model *m);
const struct inf_onnx_value_info *inf_onnx_input(const struct inf_onnx_model *m, int i);
const struct inf_onnx_value_info *inf_onnx_output(const struct inf_onnx_model *m, int i);

struct inf_onnx_model_info {
    int64_t ir_version;
    int64_t opset; /* of the default domain */
    const char *producer_name, *producer_version, *graph_name;
    int n_nodes;          /* as loaded, before folding */
    int n_nodes_planned;  /* left to run after folding and fusion */
    int64_t n_parameters; /* elements of all initializers */
    int n_initializers;
};
void inf_onnx_get_info(const struct inf_onnx_model *m, struct inf_onnx_model_info *out);

/* Op histogram of the graph as loaded: calls fn(op_type, count) once per op type. */
void inf_onnx_op_histogram(const struct inf_onnx_model *m,
                           void (*fn)(void *ctx, const char *op, int count), void *ctx);

/*
 * Run the model. inputs[i] is the i-th input of inf_onnx_input (dtype and rank must match the
 * declaration; fixed dims must match, symbolic ones take the given size). outputs receives
 * inf_onnx_n_outputs owned tensors (release each). pool may be NULL (one thread).
 */
inf_status inf_onnx_run(const struct inf_onnx_model *m, struct inf_threadpool *pool,
                        const struct inf_onnx_tensor *inputs, struct inf_onnx_tensor *outputs,
                        struct inf_error *err);

/* Compare actual with expected as the ONNX test runner does: same dtype and shape,
   |a - e| <= atol + rtol * |e| (NaN equals NaN), exact for ints, bools and strings. On a
   mismatch writes a description into why. */
bool inf_onnx_tensor_close(const struct inf_onnx_tensor *actual,
                           const struct inf_onnx_tensor *expected, double rtol, double atol,
                           char *why, size_t why_size);

#ifdef __cplusplus
}
#endif
#endif
