/*
 * inferno/quantize.h - re-quantize a GGUF model (`inferno quantize`).
 *
 * A type name is either a tensor type (Q4_0 ... Q8_0, F16, BF16, F32) or one of llama.cpp's mix
 * presets (Q2_K, Q3_K_S/M/L, Q4_K_S/M, Q5_K_S/M, Q6_K; Q3_K, Q4_K and Q5_K are llama-quantize's
 * aliases of the _M presets). Which tensor gets which type follows llama-quantize's recipe for
 * the preset's llama file type (output.weight to Q6_K, more bits for some attn_v/ffn_down
 * layers, ...) unless pure is set; 1-D tensors and norms keep their type. Tensors are written in
 * llama-quantize's order, with its metadata changes (general.file_type,
 * general.quantization_version = 2, split keys removed), so the files can be compared byte for
 * byte.
 */
#ifndef INFERNO_QUANTIZE_H
#define INFERNO_QUANTIZE_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "inferno/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A name --type accepts. */
struct inf_quant_preset {
    const char *name;      /* "Q4_K_M" */
    uint32_t ftype;        /* llama file type (general.file_type) */
    uint32_t default_type; /* enum inf_ggml_type most tensors get */
    const char *desc;
};

/* The preset with this name (case-insensitive), or NULL. */
const struct inf_quant_preset *inf_quant_preset_find(const char *name);
/* Every accepted name, in a NULL-terminated list (static). */
const char *const *inf_quant_preset_names(void);

/* One tensor, as the progress callback sees it. */
struct inf_quant_event {
    size_t index, count; /* index in [0, count) */
    const char *name;
    uint32_t n_dims;
    const int64_t *ne; /* [4] */
    uint32_t from, to; /* enum inf_ggml_type */
    uint64_t in_bytes, out_bytes;
    double seconds; /* this tensor's time (0 in a dry run) */
};

typedef void (*inf_quant_progress_fn)(void *arg, const struct inf_quant_event *ev);

struct inf_quant_params {
    const char *type;               /* a preset name (required) */
    int n_threads;                  /* 0 = physical cores */
    bool pure;                      /* every quantizable tensor gets exactly the type */
    bool force;                     /* overwrite an existing output */
    bool dry_run;                   /* plan only: report every tensor, write nothing */
    int output_tensor_type;         /* enum inf_ggml_type for output.weight, or -1 */
    int token_embedding_type;       /* for token_embd.weight, or -1 */
    inf_quant_progress_fn progress; /* called after each tensor; may be NULL */
    void *progress_arg;
    volatile sig_atomic_t *cancel; /* when non-NULL and set, stop with INF_ECANCELED */
};

/* Defaults: no type, threads 0, nothing set, tensor type overrides -1. */
void inf_quant_params_init(struct inf_quant_params *p);

struct inf_quant_stats {
    uint64_t in_bytes, out_bytes; /* file sizes (out: as planned in a dry run) */
    size_t n_tensors, n_converted;
    uint32_t ftype;
    int n_threads;
    double seconds;
};

/*
 * Re-quantize in_path into out_path. The output is written to a temporary file in out_path's
 * directory, unnamed where the filesystem allows (O_TMPFILE), linked as out_path.tmp.XXXXXX and
 * renamed over out_path on success; on any error or cancellation the temporary file is removed,
 * and one left by a killed run (never there with O_TMPFILE) is removed by the next run.
 * Errors: INF_EUSAGE for an unknown type or a bad override, INF_EINVAL when out_path is in_path
 * or exists and is not a regular file (a device, FIFO, directory: refused even with force),
 * INF_EEXIST when out_path exists and !force, the reader's errors for a bad input,
 * INF_EUNSUPPORTED for a tensor type that cannot be dequantized (or big-endian input),
 * INF_EIO for write errors, INF_ECANCELED. stats may be NULL.
 */
inf_status inf_quantize_file(const char *in_path, const char *out_path,
                             const struct inf_quant_params *p, struct inf_quant_stats *stats,
                             struct inf_error *err);

#ifdef __cplusplus
}
#endif
#endif
