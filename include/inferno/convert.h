/*
 * inferno/convert.h - convert a Hugging Face model directory (safetensors) to GGUF
 * (`inferno convert HF_DIR -o OUT.gguf`).
 *
 * The directory holds config.json (the architecture and its hyperparameters), the weights as
 * model.safetensors or shards listed by model.safetensors.index.json (F32, F16 or BF16), and the
 * tokenizer: tokenizer.json (byte-level BPE, or BPE with byte fallback as SentencePiece models
 * publish it), tokenizer_config.json (special tokens, add_bos/add_eos, chat_template), or
 * chat_template.jinja, and generation_config.json (sampling defaults). The output follows
 * llama.cpp's convert_hf_to_gguf.py: the same architecture names, metadata keys, tensor names
 * and layouts (llama's Q/K rows permuted for the adjacent-pair RoPE, experts stacked into one
 * tensor per layer, gemma's norms stored as 1 + w, ...), and the same tokenizer.ggml.* keys, so
 * the file runs in llama.cpp as in Inferno. Where this converter differs from llama.cpp's it is
 * said in docs/models.md.
 *
 * Tensors are streamed: each is read from the mapped safetensors and written (converted when its
 * type changes) in slabs, so memory stays at a few buffers, never the model. The output is
 * written to a temporary file in the output's directory and renamed over it only when complete.
 */
#ifndef INFERNO_CONVERT_H
#define INFERNO_CONVERT_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "inferno/gguf.h"
#include "inferno/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One output tensor, as the progress callback sees it. */
struct inf_convert_event {
    size_t index, count; /* index in [0, count) */
    const char *name;    /* the GGUF name */
    const char *from;    /* the source dtype ("BF16"), "generated" for computed tensors */
    uint32_t to;         /* enum inf_ggml_type */
    uint64_t bytes;      /* written */
};

typedef void (*inf_convert_progress_fn)(void *arg, const struct inf_convert_event *ev);

struct inf_convert_params {
    /* f32, f16, bf16, or any `inferno quantize` type (q8_0, q4_k_m, ...): the float types are
       written directly; the others convert with lossless types first and quantize that (as
       `inferno quantize` would). NULL: f16, as llama.cpp's default. */
    const char *outtype;
    const char *name;                 /* general.name; NULL: the directory's name */
    int n_threads;                    /* for quantized outtypes; 0 = physical cores */
    bool force;                       /* overwrite an existing output */
    inf_convert_progress_fn progress; /* after each tensor; may be NULL */
    void *progress_arg;
    volatile sig_atomic_t *cancel; /* when non-NULL and set, stop with INF_ECANCELED */
};

void inf_convert_params_init(struct inf_convert_params *p);

struct inf_convert_stats {
    char arch[32];                /* the GGUF architecture written */
    size_t n_tensors;             /* in the output */
    uint64_t in_bytes, out_bytes; /* tensor bytes read; the output file's size */
    double seconds;
};

/*
 * Convert the model in dir to out_path. Errors: INF_EUSAGE for an unknown outtype,
 * INF_ENOTFOUND for a missing config.json / weights / tokenizer (the message names the file),
 * INF_EUNSUPPORTED for an architecture, tokenizer or dtype this converter does not know (named),
 * INF_EFORMAT for malformed files or tensors whose shapes disagree with config.json (named),
 * INF_EEXIST when out_path exists and !force, INF_EINVAL when out_path is not a regular file,
 * INF_EIO, INF_ENOMEM, INF_ECANCELED. stats may be NULL.
 */
inf_status inf_convert_hf(const char *dir, const char *out_path, const struct inf_convert_params *p,
                          struct inf_convert_stats *stats, struct inf_error *err);

/* The files of a model directory that become metadata, in memory (NULL when absent). */
struct inf_convert_files {
    const char *config; /* config.json (required) */
    size_t config_len;
    const char *tokenizer; /* tokenizer.json */
    size_t tokenizer_len;
    const char *tokenizer_config; /* tokenizer_config.json */
    size_t tokenizer_config_len;
    const void *sp_model; /* tokenizer.model (SentencePiece protobuf; preferred when present) */
    size_t sp_model_len;
};

/*
 * The metadata part of a conversion, from memory, for tests and fuzzing: the architecture's
 * hyperparameters and the tokenizer.ggml.* keys, added to w. Errors as inf_convert_hf's.
 */
inf_status inf_convert_metadata_from_memory(const struct inf_convert_files *files,
                                            struct inf_gguf_writer *w, struct inf_error *err);

#ifdef __cplusplus
}
#endif
#endif
