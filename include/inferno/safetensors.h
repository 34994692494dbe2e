/*
 * inferno/safetensors.h - safetensors checkpoints: single files (mmap or memory) and sharded
 * checkpoints described by a model.safetensors.index.json.
 *
 * A safetensors file is a u64 little-endian header length N, N bytes of JSON, then the data
 * section. The JSON object maps each tensor name to {"dtype", "shape", "data_offsets": [begin,
 * end]} (offsets relative to the data section) and may hold "__metadata__", a string-to-string
 * map. The reader checks what the format's specification requires: N at most 100 MiB and
 * within the file, a JSON object starting with '{' without duplicate keys, every shape times
 * the dtype's size equal to its offsets' span, and the tensors tiling the data section exactly
 * (no overlap, no hole, nothing after the last one). Errors are INF_EFORMAT (INF_ELIMIT for an
 * over-long header) with messages such as "tensor 'lm_head.weight': data_offsets [0, 96) hold
 * 96 bytes but shape [4, 8] of F32 needs 128"; files are prefixed with their path.
 *
 * All dtypes of the specification are read; the engine computes with those marked supported
 * (F32, F16, BF16, I8, U8, I32, I64, BOOL) and inf_safetensors_check_supported names the first
 * tensor of another.
 */
#ifndef INFERNO_SAFETENSORS_H
#define INFERNO_SAFETENSORS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "inferno/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define INF_ST_MAX_HEADER (100u << 20) /* bytes of header JSON (the specification's limit) */
#define INF_ST_MAX_DIMS   8

enum inf_st_dtype {
    INF_ST_BOOL,
    INF_ST_U8,
    INF_ST_I8,
    INF_ST_I16,
    INF_ST_U16,
    INF_ST_F16,
    INF_ST_BF16,
    INF_ST_I32,
    INF_ST_U32,
    INF_ST_F32,
    INF_ST_F64,
    INF_ST_I64,
    INF_ST_U64,
    INF_ST_F8_E4M3,
    INF_ST_F8_E5M2,
    INF_ST_F8_E8M0,
    INF_ST_F4,      /* 4 bits: two values per byte */
    INF_ST_F6_E2M3, /* 6 bits */
    INF_ST_F6_E3M2,
    INF_ST_C64,
    INF_ST_DTYPE_COUNT
};

struct inf_st_dtype_info {
    const char *name; /* as written in headers: "BF16" */
    uint32_t bits;    /* per value */
    bool supported;   /* the engine computes with it */
};

/* The entry for a dtype; NULL outside the enum. */
const struct inf_st_dtype_info *inf_st_dtype_info(enum inf_st_dtype dtype);
/* The dtype written name (exact, case-sensitive as in the specification); false when unknown. */
bool inf_st_dtype_from_name(const char *name, enum inf_st_dtype *out);

struct inf_st_tensor {
    const char *name; /* NUL-terminated (JSON keys here cannot hold NUL) */
    enum inf_st_dtype dtype;
    uint32_t n_dims;
    int64_t shape[INF_ST_MAX_DIMS]; /* outermost dimension first, as written; 1 beyond n_dims */
    uint64_t n_elements;
    uint64_t n_bytes;
    uint64_t begin, end; /* data_offsets, relative to the shard's data section */
    const void *data;    /* n_bytes, borrowed until inf_safetensors_free */
    uint32_t shard;      /* index of the file holding it (0 for a single file) */
};

struct inf_safetensors; /* the caller frees it with inf_safetensors_free */

/* Open and check one .safetensors file by mmap. INF_ENOTFOUND, INF_EIO, INF_EFORMAT, ... */
inf_status inf_safetensors_open_file(const char *path, struct inf_safetensors **out,
                                     struct inf_error *err);

/* Check an image in memory; data is borrowed and must outlive the handle. */
inf_status inf_safetensors_open_memory(const void *data, size_t size, struct inf_safetensors **out,
                                       struct inf_error *err);

/*
 * Open a sharded checkpoint from its index (model.safetensors.index.json): every shard named in
 * "weight_map" (paths relative to the index's directory; absolute paths and ".." are refused)
 * is opened and checked, every mapped tensor must be in its shard and every tensor of a shard
 * must be mapped to it. The tensors of all shards are presented as one list.
 */
inf_status inf_safetensors_open_index(const char *index_path, struct inf_safetensors **out,
                                      struct inf_error *err);

/* Unmap and free; st may be NULL. */
void inf_safetensors_free(struct inf_safetensors *st);

/* Tensors, ordered by shard, then by data offset. tensor_at returns NULL past the end. */
size_t inf_safetensors_n_tensors(const struct inf_safetensors *st);
const struct inf_st_tensor *inf_safetensors_tensor_at(const struct inf_safetensors *st, size_t i);
const struct inf_st_tensor *inf_safetensors_find_tensor(const struct inf_safetensors *st,
                                                        const char *name);

/* The "__metadata__" entries (of all shards; for a key in several, the first shard's value). */
size_t inf_safetensors_n_metadata(const struct inf_safetensors *st);
bool inf_safetensors_metadata_at(const struct inf_safetensors *st, size_t i, const char **key,
                                 const char **value);
/* The value for key, or NULL. */
const char *inf_safetensors_metadata(const struct inf_safetensors *st, const char *key);

/* Files: 1 for a single file (path "" for memory images), else the shards in index order. */
size_t inf_safetensors_n_shards(const struct inf_safetensors *st);
const char *inf_safetensors_shard_path(const struct inf_safetensors *st, size_t i);
/* The index's metadata.total_size, or 0 when absent (single files have none). */
uint64_t inf_safetensors_index_total_size(const struct inf_safetensors *st);

/* INF_EUNSUPPORTED "tensor 'x': dtype F8_E4M3 is not supported yet" for the first tensor whose
 * dtype the engine cannot compute with; INF_OK when there is none. */
inf_status inf_safetensors_check_supported(const struct inf_safetensors *st, struct inf_error *err);

#ifdef __cplusplus
}
#endif
#endif
