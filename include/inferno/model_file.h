/*
 * inferno/model_file.h - which kind of model file is this? Detection by content and structure,
 * never by file name.
 *
 *   GGUF               "GGUF" magic and a plausible version (either byte order)
 *   safetensors        u64 LE header length within the file and 100 MiB, header '{' ... '}'
 *   safetensors index  a JSON object with a "weight_map" object (model.safetensors.index.json)
 *   ONNX               a protobuf ModelProto: the top-level fields walk to the end of the file
 *                      with the wire types ModelProto gives them, ir_version (1) is a sane
 *                      varint, graph (7) is present and parses as GraphProto fields
 *   PyTorch            a zip archive with an entry named data.pkl or .../data.pkl, or the legacy
 *                      pickle format (protocol 2 and torch's magic number)
 *   llama2.c           the 7 int32 header of llama2.c's run.c (dim, hidden_dim, n_layers,
 *                      n_heads, n_kv_heads, vocab_size < 0 when the classifier is not shared,
 *                      seq_len), all sane, and a file size equal to the header plus the float32
 *                      weights they imply
 */
#ifndef INFERNO_MODEL_FILE_H
#define INFERNO_MODEL_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "inferno/status.h"

#ifdef __cplusplus
extern "C" {
#endif

enum inf_model_format {
    INF_MODEL_FORMAT_UNKNOWN = 0,
    INF_MODEL_FORMAT_GGUF,
    INF_MODEL_FORMAT_SAFETENSORS,
    INF_MODEL_FORMAT_SAFETENSORS_INDEX,
    INF_MODEL_FORMAT_ONNX,
    INF_MODEL_FORMAT_PYTORCH,
    INF_MODEL_FORMAT_LLAMA2C,
};

/* "gguf", "safetensors", "safetensors-index", "onnx", "pytorch", "llama2c" or "unknown". */
const char *inf_model_format_name(enum inf_model_format format);

/* llama2.c's Config, as stored (vocab_size made positive). */
struct inf_llama2c_config {
    int32_t dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len;
    bool shared_classifier;
};

struct inf_model_format_info {
    enum inf_model_format format;
    char detail[160];        /* "GGUF v3", "ONNX IR 3, opset 8", "zip, archive/data.pkl" */
    uint32_t gguf_version;   /* GGUF */
    int64_t onnx_ir_version; /* ONNX */
    struct inf_llama2c_config llama2c; /* llama2.c */
};

/*
 * Detect the format of an image in memory. INF_OK with out->format set when it is a model
 * file; otherwise INF_EFORMAT, out->format UNKNOWN and a message that says what it looks like
 * ("a zip archive without data.pkl: not a PyTorch checkpoint", "not a model file: ... (it
 * starts with 7f 45 4c 46)"). Only structure is checked, not every field: a detected file may
 * still fail to open.
 */
inf_status inf_model_detect_memory(const void *data, size_t size, struct inf_model_format_info *out,
                                   struct inf_error *err);

/* The same for a file (mapped read-only; only the pages the checks touch are read). Messages
 * are prefixed with the path. INF_ENOTFOUND, INF_EIO for unreadable files. */
inf_status inf_model_detect_file(const char *path, struct inf_model_format_info *out,
                                 struct inf_error *err);

/*
 * Parse and check a llama2.c header against the image size. INF_EFORMAT with the reason
 * ("n_heads 6 does not divide dim 64", "file size 100 does not match the 1056540 bytes the
 * header implies") when it is not one.
 */
inf_status inf_llama2c_parse_header(const void *data, size_t size, struct inf_llama2c_config *out,
                                    struct inf_error *err);

#ifdef __cplusplus
}
#endif
#endif
