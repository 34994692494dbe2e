/*
 * inferno/gguf.h - GGUF model files: the ggml tensor-type table, a reader (mmap or memory) and a
 * writer.
 *
 * Layout of a GGUF file (versions 2 and 3; version 1 used 32-bit counts and is refused):
 *
 *   "GGUF" u32 version  u64 n_tensors  u64 n_kv
 *   n_kv x      { string key, u32 value_type, value }
 *   n_tensors x { string name, u32 n_dims, u64 ne[n_dims], u32 ggml_type, u64 offset }
 *   zero padding to general.alignment (default 32)
 *   tensor data; each tensor at data_offset + offset, padded to the alignment
 *
 * A string is u64 length + bytes (no NUL); an array is u32 element type + u64 count + elements,
 * and may nest. Integers are little-endian, except in big-endian files (version 3 allows them;
 * the reader detects them from the version field and swaps the metadata, but the tensor data
 * stays big-endian, so inf_gguf_check_compute refuses such files).
 *
 * Input is untrusted: every count, length, offset and tensor extent is checked against the
 * bytes that remain and for overflow before it is used; a length larger than what remains is an
 * error, never an allocation. Errors are INF_EFORMAT (or INF_EUNSUPPORTED for valid files this
 * reader cannot handle: version 1 or a newer one, a removed tensor type) and name the byte offset
 * and the field: "offset 24: metadata key 3: string length 18446744073709551615 exceeds the 100
 * bytes that remain", "tensor 'blk.3.attn_q.weight': data range [a, b) exceeds file size c".
 * Files are prefixed with their path ("'model.gguf': ...").
 *
 * The parsed metadata is copied out of the file into host byte order and natural alignment
 * (strings NUL-terminated), so it can be read in place; tensor data stays in the mapping.
 */
#ifndef INFERNO_GGUF_H
#define INFERNO_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "inferno/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- ggml tensor types ------------------------------------------------------------------- */

/*
 * ggml's tensor type ids as stored in GGUF tensor infos (ggml.h enum ggml_type). Ids 4, 5
 * (Q4_2, Q4_3), 31-33 (Q4_0_4_4, Q4_0_4_8, Q4_0_8_8) and 36-38 (IQ4_NL_4_4, ...) were removed
 * from ggml and are refused. The values equal those of enum inf_type (inferno/kernels.h).
 */
enum inf_ggml_type {
    INF_GGML_TYPE_F32 = 0,
    INF_GGML_TYPE_F16 = 1,
    INF_GGML_TYPE_Q4_0 = 2,
    INF_GGML_TYPE_Q4_1 = 3,
    INF_GGML_TYPE_Q5_0 = 6,
    INF_GGML_TYPE_Q5_1 = 7,
    INF_GGML_TYPE_Q8_0 = 8,
    INF_GGML_TYPE_Q8_1 = 9,
    INF_GGML_TYPE_Q2_K = 10,
    INF_GGML_TYPE_Q3_K = 11,
    INF_GGML_TYPE_Q4_K = 12,
    INF_GGML_TYPE_Q5_K = 13,
    INF_GGML_TYPE_Q6_K = 14,
    INF_GGML_TYPE_Q8_K = 15,
    INF_GGML_TYPE_IQ2_XXS = 16,
    INF_GGML_TYPE_IQ2_XS = 17,
    INF_GGML_TYPE_IQ3_XXS = 18,
    INF_GGML_TYPE_IQ1_S = 19,
    INF_GGML_TYPE_IQ4_NL = 20,
    INF_GGML_TYPE_IQ3_S = 21,
    INF_GGML_TYPE_IQ2_S = 22,
    INF_GGML_TYPE_IQ4_XS = 23,
    INF_GGML_TYPE_I8 = 24,
    INF_GGML_TYPE_I16 = 25,
    INF_GGML_TYPE_I32 = 26,
    INF_GGML_TYPE_I64 = 27,
    INF_GGML_TYPE_F64 = 28,
    INF_GGML_TYPE_IQ1_M = 29,
    INF_GGML_TYPE_BF16 = 30,
    INF_GGML_TYPE_TQ1_0 = 34,
    INF_GGML_TYPE_TQ2_0 = 35,
    INF_GGML_TYPE_MXFP4 = 39,
    INF_GGML_TYPE_NVFP4 = 40,
    INF_GGML_TYPE_Q1_0 = 41,
    INF_GGML_TYPE_Q2_0 = 42,
    INF_GGML_TYPE_COUNT = 43
};

/* What GGUF files need to know about a tensor type. Static: valid for the whole program. */
struct inf_ggml_type_info {
    const char *name;      /* "Q4_K": upper case, as gguf-py and llama.cpp's logs spell it */
    const char *ggml_name; /* "q4_K": ggml_type_name() */
    uint32_t id;           /* enum inf_ggml_type */
    uint32_t blck_size;    /* values per block (1 for plain types) */
    uint32_t type_size;    /* bytes per block */
    bool is_quantized;
    bool compute; /* Inferno's kernels compute with weights of this type */
};

/* The entry for a type id, or NULL for ids that are unknown or were removed from ggml. */
const struct inf_ggml_type_info *inf_ggml_type_info(uint32_t id);

/* "Q4_K"; removed ids give their old name ("Q4_0_4_4"); unknown ids give "unknown". */
const char *inf_ggml_type_name(uint32_t id);

/* The type with this name (either spelling, case-insensitive); false when there is none. */
bool inf_ggml_type_from_name(const char *name, uint32_t *id);

/*
 * The byte size of a tensor of type with n_dims (<= 4) dimensions ne[]: ne[0] must be a whole
 * number of blocks, every ne[i] >= 0, and neither the element count nor the byte size may
 * overflow. what names the tensor in messages ("tensor 'x'"). INF_EFORMAT on a bad shape,
 * INF_EUNSUPPORTED on an unknown/removed type.
 */
inf_status inf_ggml_nbytes(uint32_t type, uint32_t n_dims, const int64_t *ne, const char *what,
                           uint64_t *n_bytes, struct inf_error *err);

/*
 * Every size derived from a tensor shape, each computed with overflow checks: the one place
 * where a file's dimensions become counts and byte sizes. Besides inf_ggml_nbytes' rules, the
 * shape's extent (the product of its dimensions, a 0 counted as 1) must stay below
 * INF_GGML_MAX_ELEMENTS, so that a row, or the whole tensor, converted to F32 or F64 values
 * still has a size that fits in 64 bits: "tensor 'x': shape 4611686018427387904 x 0 has more
 * than 2^60 elements; its sizes overflow". Errors as inf_ggml_nbytes.
 */
#define INF_GGML_MAX_ELEMENTS (UINT64_C(1) << 60)

struct inf_ggml_size {
    uint64_t n_elements; /* the product of the dimensions (0 when one of them is 0) */
    uint64_t n_rows;     /* rows of ne[0] values: n_elements / ne[0]; 0 without elements */
    uint64_t row_bytes;  /* the bytes of one row of ne[0] values */
    uint64_t n_bytes;    /* the bytes of the whole tensor */
};

inf_status inf_ggml_size(uint32_t type, uint32_t n_dims, const int64_t *ne, const char *what,
                         struct inf_ggml_size *out, struct inf_error *err);

/* INF_OK when the kernels compute with type; else INF_EUNSUPPORTED with
 * "<what>: type IQ2_XS is not supported yet" (what may be NULL). */
inf_status inf_ggml_type_check_compute(uint32_t type, const char *what, struct inf_error *err);

/* ---- llama file types (general.file_type, llama.h enum llama_ftype) ---------------------- */

#define INF_LLAMA_FTYPE_GUESSED 1024u /* flag: the type was guessed, not read from the file */

/*
 * "MOSTLY_Q4_K_M" for a general.file_type value (the GUESSED flag is ignored), or NULL when the
 * value is not one llama.cpp defines (4-6 and 33-35 were removed).
 */
const char *inf_llama_ftype_name(uint32_t ftype);

/* llama.cpp's description ("Q4_K - Medium"), or "unknown". */
const char *inf_llama_ftype_desc(uint32_t ftype);

/* ---- metadata values ----------------------------------------------------------------------- */

enum inf_gguf_type {
    INF_GGUF_TYPE_UINT8 = 0,
    INF_GGUF_TYPE_INT8 = 1,
    INF_GGUF_TYPE_UINT16 = 2,
    INF_GGUF_TYPE_INT16 = 3,
    INF_GGUF_TYPE_UINT32 = 4,
    INF_GGUF_TYPE_INT32 = 5,
    INF_GGUF_TYPE_FLOAT32 = 6,
    INF_GGUF_TYPE_BOOL = 7,
    INF_GGUF_TYPE_STRING = 8,
    INF_GGUF_TYPE_ARRAY = 9,
    INF_GGUF_TYPE_UINT64 = 10,
    INF_GGUF_TYPE_INT64 = 11,
    INF_GGUF_TYPE_FLOAT64 = 12,
    INF_GGUF_TYPE_COUNT = 13
};

/* "uint32", "string", "array", ... ; "unknown" for values outside the enum. */
const char *inf_gguf_type_name(uint32_t type);

/* The byte size of a fixed-size value type (1..8), 0 for STRING, ARRAY and unknown types. */
size_t inf_gguf_type_size(uint32_t type);

#define INF_GGUF_MAX_DEPTH         8     /* arrays nest at most this deep */
#define INF_GGUF_MAX_KEY           65535 /* bytes in a metadata key (the GGUF spec's limit) */
#define INF_GGUF_MAX_NAME          63    /* bytes in a tensor name (ggml's GGML_MAX_NAME - 1) */
#define INF_GGUF_MAX_DIMS          4     /* tensor dimensions */
#define INF_GGUF_DEFAULT_ALIGNMENT 32

/* A string: data[len] == '\0', but data may also hold NUL bytes before len. */
struct inf_gguf_str {
    const char *data;
    uint64_t len;
};

/*
 * n elements of type, in host byte order and naturally aligned, so data can be cast:
 * const uint32_t * for UINT32, const float * for FLOAT32, ...; BOOL elements are the stored
 * bytes (const uint8_t *, non-zero is true); STRING elements are struct inf_gguf_str; ARRAY
 * elements are struct inf_gguf_array (nested arrays).
 */
struct inf_gguf_array {
    enum inf_gguf_type type;
    uint64_t n;
    const void *data;
};

struct inf_gguf_value {
    enum inf_gguf_type type;
    union {
        uint8_t u8;
        int8_t i8;
        uint16_t u16;
        int16_t i16;
        uint32_t u32;
        int32_t i32;
        float f32;
        uint8_t b; /* BOOL: the stored byte; non-zero is true */
        struct inf_gguf_str str;
        struct inf_gguf_array arr;
        uint64_t u64;
        int64_t i64;
        double f64;
    };
};

struct inf_gguf_kv {
    struct inf_gguf_str key;
    struct inf_gguf_value value;
    uint64_t offset; /* where the key's record starts in the file */
};

/*
 * Value conversions that lose nothing: integers of any width and signedness when the value
 * fits; as_f64 also takes FLOAT32 and integers of magnitude <= 2^53. INF_ETYPE for another
 * type, INF_ERANGE when the value does not fit. No message (callers know the key).
 */
inf_status inf_gguf_value_as_u64(const struct inf_gguf_value *v, uint64_t *out);
inf_status inf_gguf_value_as_i64(const struct inf_gguf_value *v, int64_t *out);
inf_status inf_gguf_value_as_f64(const struct inf_gguf_value *v, double *out);

/* Element i (< a->n) of an array as a value (strings and nested arrays borrowed from a). */
void inf_gguf_array_elem(const struct inf_gguf_array *a, uint64_t i, struct inf_gguf_value *out);

/* ---- the reader --------------------------------------------------------------------------- */

struct inf_gguf_tensor {
    struct inf_gguf_str name;
    uint32_t n_dims;
    int64_t ne[INF_GGUF_MAX_DIMS]; /* ne[0] is the contiguous dimension; 1 beyond n_dims */
    uint32_t type;                 /* enum inf_ggml_type */
    uint64_t offset;               /* from the start of the data section, as stored */
    uint64_t n_elements;
    uint64_t n_bytes;
    const void *data;     /* n_bytes, borrowed from the mapping; big-endian in big-endian files */
    uint64_t info_offset; /* where the tensor's info record starts in the file */
};

struct inf_gguf; /* an open file; the caller frees it with inf_gguf_free */

/*
 * Open path read-only by mmap and parse and check the header, the metadata and the tensor infos
 * (every tensor's data range must lie inside the file). Tensor data is not read. The mapping is
 * advised MADV_SEQUENTIAL while the header is parsed front to back, then MADV_RANDOM, so that a
 * metadata scan over many multi-GB files reads no tensor data ahead; call inf_gguf_prefetch
 * before computing with the tensors. INF_ENOTFOUND when path does not exist, INF_EIO when it
 * cannot be read, else as described at the top of this file.
 */
inf_status inf_gguf_open_file(const char *path, struct inf_gguf **out, struct inf_error *err);

/* Parse a GGUF image in memory. data is borrowed: it must outlive the handle. */
inf_status inf_gguf_open_memory(const void *data, size_t size, struct inf_gguf **out,
                                struct inf_error *err);

/* Unmap and free. g may be NULL. */
void inf_gguf_free(struct inf_gguf *g);

/* Advise the kernel that the tensor data will be read soon (MADV_WILLNEED over the data
 * section; MADV_NORMAL read-ahead again). A no-op for memory images. */
void inf_gguf_prefetch(const struct inf_gguf *g);

uint32_t inf_gguf_version(const struct inf_gguf *g);
bool inf_gguf_is_big_endian(const struct inf_gguf *g);
uint32_t inf_gguf_alignment(const struct inf_gguf *g);
/* Where the data section starts (aligned end of the tensor infos); may exceed the file size
 * only in files without tensors. */
uint64_t inf_gguf_data_offset(const struct inf_gguf *g);
/* The whole file image (borrowed until inf_gguf_free) and its size. */
const void *inf_gguf_bytes(const struct inf_gguf *g, uint64_t *size);

/* Metadata in file order. kv_at returns NULL for i >= n_kv. */
size_t inf_gguf_n_kv(const struct inf_gguf *g);
const struct inf_gguf_kv *inf_gguf_kv_at(const struct inf_gguf *g, size_t i);
/* The metadata entry with this key, or NULL. */
const struct inf_gguf_kv *inf_gguf_find_kv(const struct inf_gguf *g, const char *key);

/*
 * Typed getters. INF_ENOTFOUND ("metadata key 'x' not found"), INF_ETYPE ("metadata 'x' is
 * string, expected uint32") or INF_ERANGE ("metadata 'x' = -1 does not fit in uint32"). Integer
 * getters accept every integer type whose value fits; get_f32/get_f64 accept FLOAT32, FLOAT64
 * (get_f32: when within float range) and integers that convert exactly. get_str's string is
 * borrowed; len may be NULL. get_arr checks the element type unless elem_type is
 * INF_GGUF_TYPE_COUNT (any).
 */
inf_status inf_gguf_get_u32(const struct inf_gguf *g, const char *key, uint32_t *out,
                            struct inf_error *err);
inf_status inf_gguf_get_i32(const struct inf_gguf *g, const char *key, int32_t *out,
                            struct inf_error *err);
inf_status inf_gguf_get_u64(const struct inf_gguf *g, const char *key, uint64_t *out,
                            struct inf_error *err);
inf_status inf_gguf_get_i64(const struct inf_gguf *g, const char *key, int64_t *out,
                            struct inf_error *err);
inf_status inf_gguf_get_f32(const struct inf_gguf *g, const char *key, float *out,
                            struct inf_error *err);
inf_status inf_gguf_get_f64(const struct inf_gguf *g, const char *key, double *out,
                            struct inf_error *err);
inf_status inf_gguf_get_bool(const struct inf_gguf *g, const char *key, bool *out,
                             struct inf_error *err);
inf_status inf_gguf_get_str(const struct inf_gguf *g, const char *key, const char **out,
                            uint64_t *len, struct inf_error *err);
inf_status inf_gguf_get_arr(const struct inf_gguf *g, const char *key, uint32_t elem_type,
                            const struct inf_gguf_array **out, struct inf_error *err);

/* Tensors in file order. tensor_at returns NULL for i >= n_tensors. */
size_t inf_gguf_n_tensors(const struct inf_gguf *g);
const struct inf_gguf_tensor *inf_gguf_tensor_at(const struct inf_gguf *g, size_t i);
/* The tensor with this name, or NULL. */
const struct inf_gguf_tensor *inf_gguf_find_tensor(const struct inf_gguf *g, const char *name);

/*
 * Whether the kernels can compute with this file's tensors as they are: INF_EUNSUPPORTED for a
 * big-endian file ("tensor data is big-endian, which is not supported") or for the first tensor
 * of a type the kernels lack ("tensor 'x': type IQ2_XS is not supported yet").
 */
inf_status inf_gguf_check_compute(const struct inf_gguf *g, struct inf_error *err);

/*
 * Dequantize every tensor the kernels can read, row by row, and look for values that are not
 * finite. For each tensor that has one, report (may be NULL) gets the first: its row, its
 * column and the value; *n_bad counts those tensors. *n_skipped counts the tensors that were not
 * read: types the kernels cannot dequantize, big-endian data, rows longer than
 * INF_GGUF_CHECK_MAX_ROW values. INF_ENOMEM when a row buffer cannot be allocated.
 */
#define INF_GGUF_CHECK_MAX_ROW (UINT64_C(1) << 28)

typedef void (*inf_gguf_value_report)(void *arg, const struct inf_gguf_tensor *t, uint64_t row,
                                      uint64_t col, float value);
inf_status inf_gguf_check_values(const struct inf_gguf *g, inf_gguf_value_report report, void *arg,
                                 size_t *n_bad, size_t *n_skipped, struct inf_error *err);

/* ---- the writer --------------------------------------------------------------------------- */

/*
 * Builds a GGUF file: metadata in the order it is set, then tensor infos in the order tensors
 * are added. Tensor offsets are assigned in order, each tensor padded to the alignment (the
 * value of general.alignment when set, which must then be a UINT32 power of two, else 32); pad
 * bytes are zero. The padding after the tensor infos is written only when there are tensors
 * (as llama.cpp's metadata-only files do), so reading a file written by llama.cpp or gguf-py
 * and writing it again gives the same bytes.
 */
struct inf_gguf_writer;

/* A writer for GGUF version 2 or 3 (INF_EINVAL otherwise), little-endian. */
inf_status inf_gguf_writer_new(uint32_t version, struct inf_gguf_writer **out,
                               struct inf_error *err);
void inf_gguf_writer_free(struct inf_gguf_writer *w);

/* Write the header and metadata big-endian. Tensor data is written as given (not swapped). */
void inf_gguf_writer_set_big_endian(struct inf_gguf_writer *w, bool big_endian);

/*
 * Add a metadata entry; the value (strings, nested arrays) is copied. INF_EEXIST for a key that
 * was set before, INF_EINVAL for an empty or over-long key or a malformed value.
 */
inf_status inf_gguf_writer_set(struct inf_gguf_writer *w, const char *key,
                               const struct inf_gguf_value *value, struct inf_error *err);
inf_status inf_gguf_writer_set_u32(struct inf_gguf_writer *w, const char *key, uint32_t v,
                                   struct inf_error *err);
inf_status inf_gguf_writer_set_i32(struct inf_gguf_writer *w, const char *key, int32_t v,
                                   struct inf_error *err);
inf_status inf_gguf_writer_set_u64(struct inf_gguf_writer *w, const char *key, uint64_t v,
                                   struct inf_error *err);
inf_status inf_gguf_writer_set_f32(struct inf_gguf_writer *w, const char *key, float v,
                                   struct inf_error *err);
inf_status inf_gguf_writer_set_bool(struct inf_gguf_writer *w, const char *key, bool v,
                                    struct inf_error *err);
inf_status inf_gguf_writer_set_str(struct inf_gguf_writer *w, const char *key, const char *v,
                                   struct inf_error *err);
/* An array of n fixed-size elements of elem_type (host order), copied. */
inf_status inf_gguf_writer_set_arr(struct inf_gguf_writer *w, const char *key, uint32_t elem_type,
                                   const void *data, uint64_t n, struct inf_error *err);
/* An array of n NUL-terminated strings, copied. */
inf_status inf_gguf_writer_set_arr_str(struct inf_gguf_writer *w, const char *key,
                                       const char *const *strs, uint64_t n, struct inf_error *err);

/*
 * Add a tensor of type with n_dims dimensions ne[]; data holds inf_ggml_nbytes() bytes and is
 * borrowed until the file is written. INF_EEXIST for a repeated name; INF_EINVAL/INF_EFORMAT/
 * INF_EUNSUPPORTED for a bad name, shape or type.
 */
inf_status inf_gguf_writer_add_tensor(struct inf_gguf_writer *w, const char *name, uint32_t type,
                                      uint32_t n_dims, const int64_t *ne, const void *data,
                                      struct inf_error *err);

/*
 * Streaming: add a tensor whose data the caller writes itself after the header
 * (inf_gguf_writer_write_header): each tensor's inf_ggml_nbytes() bytes in the order added, each
 * followed by zeros up to a multiple of inf_gguf_writer_alignment(). Such a writer cannot use
 * write_file/write_memory (INF_EINVAL). Errors as inf_gguf_writer_add_tensor.
 */
inf_status inf_gguf_writer_add_tensor_info(struct inf_gguf_writer *w, const char *name,
                                           uint32_t type, uint32_t n_dims, const int64_t *ne,
                                           struct inf_error *err);

/* Add all of g's metadata and tensors (tensor data borrowed from g: keep it open). */
inf_status inf_gguf_writer_add_all(struct inf_gguf_writer *w, const struct inf_gguf *g,
                                   struct inf_error *err);

/* The file's size in bytes as it would be written now. */
uint64_t inf_gguf_writer_size(const struct inf_gguf_writer *w);

/*
 * Write to path: into an unnamed temporary file in path's directory, linked and renamed over
 * path only when complete, so a failed or killed write leaves no partial file. An existing
 * path that is not a regular file (device, FIFO, directory) is refused (INF_EINVAL).
 */
inf_status inf_gguf_writer_write_file(struct inf_gguf_writer *w, const char *path,
                                      struct inf_error *err);

/* The tensor alignment: general.alignment when set, else 32. */
uint32_t inf_gguf_writer_alignment(const struct inf_gguf_writer *w);

/*
 * Streaming: write the header, metadata, tensor infos and the padding before the data section
 * to f (at its current position, which should be the start); *size (may be NULL) gets the bytes
 * written. INF_EIO on a write error, INF_ELIMIT when the layout overflows.
 */
inf_status inf_gguf_writer_write_header(const struct inf_gguf_writer *w, FILE *f, uint64_t *size,
                                        struct inf_error *err);

/* Write into a malloc'd buffer that the caller frees with free(). */
inf_status inf_gguf_writer_write_memory(struct inf_gguf_writer *w, void **out, size_t *size,
                                        struct inf_error *err);

#ifdef __cplusplus
}
#endif
#endif
