/*
 * gguf_adapter.h - the little the engine needs from a GGUF file: typed metadata lookups and
 * tensor views into the mapping (internal).
 */
#ifndef INFERNO_ENGINE_GGUF_ADAPTER_H
#define INFERNO_ENGINE_GGUF_ADAPTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/internal.h"

struct inf_gguf;
struct inf_tokenizer;

inf_status inf__g_open(const char *path, const struct inf_model_params *params,
                       struct inf_gguf **out, struct inf_error *err);
void inf__g_close(struct inf_gguf *g);
/* Scalars (integers of any width that fit; f32/f64 for floats); false when absent/mistyped. */
bool inf__g_u32(const struct inf_gguf *g, const char *key, uint32_t *out);
bool inf__g_f32(const struct inf_gguf *g, const char *key, float *out);
/* Copy a string value (truncated to size); false when absent. */
bool inf__g_str(const struct inf_gguf *g, const char *key, char *buf, size_t size);
/* A malloc'd copy of a string value, or NULL. */
char *inf__g_strdup(const struct inf_gguf *g, const char *key);
bool inf__g_tensor(const struct inf_gguf *g, const char *name, struct inf__tensor *out);
bool inf__g_type_computable(int type);
const char *inf__g_type_name(int type);
void inf__g_weight_totals(const struct inf_gguf *g, uint64_t *n_params, uint64_t *bytes);
void inf__g_mlock(struct inf_gguf *g);
/* Bytes of tensor data per ggml type id (types >= 64 are counted in [63]). */
void inf__g_type_bytes(const struct inf_gguf *g, uint64_t bytes[64]);
inf_status inf__g_tokenizer(const struct inf_gguf *g, struct inf_tokenizer **out,
                            struct inf_error *err);

#endif
