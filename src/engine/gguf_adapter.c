/*
 * gguf_adapter.c - what the engine needs from a GGUF file, on top of the GGUF reader
 * (include/inferno/gguf.h): typed metadata lookups and tensor views into the mapping.
 */
#include "engine/gguf_adapter.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "inferno/gguf.h"
#include "inferno/kernels.h"
#include "inferno/log.h"
#include "inferno/tokenizer.h"

inf_status inf__g_open(const char *path, const struct inf_model_params *params,
                       struct inf_gguf **out, struct inf_error *err)
{
    /* The reader maps the file read-only; with use_mmap false (or huge_pages) the model copies
     * the weights out of the mapping afterwards (model.c). */
    (void)params;
    inf_status st = inf_gguf_open_file(path, out, err);
    if (st)
        return st;
    if (inf_gguf_is_big_endian(*out)) {
        inf_gguf_free(*out);
        *out = NULL;
        return inf_error_set(err, INF_EUNSUPPORTED,
                             "'%s' is a big-endian GGUF file; its tensors cannot be computed "
                             "on this machine",
                             path);
    }
    return INF_OK;
}

void inf__g_close(struct inf_gguf *g)
{
    inf_gguf_free(g);
}

bool inf__g_u32(const struct inf_gguf *g, const char *key, uint32_t *out)
{
    return inf_gguf_get_u32(g, key, out, NULL) == INF_OK;
}

bool inf__g_f32(const struct inf_gguf *g, const char *key, float *out)
{
    double d;
    if (inf_gguf_get_f32(g, key, out, NULL) == INF_OK)
        return true;
    if (inf_gguf_get_f64(g, key, &d, NULL) == INF_OK) {
        *out = (float)d;
        return true;
    }
    return false;
}

bool inf__g_str(const struct inf_gguf *g, const char *key, char *buf, size_t size)
{
    const struct inf_gguf_kv *kv = inf_gguf_find_kv(g, key);
    if (!kv || kv->value.type != INF_GGUF_TYPE_STRING || size == 0)
        return false;
    size_t len = kv->value.str.len < size ? (size_t)kv->value.str.len : size - 1;
    memcpy(buf, kv->value.str.data, len);
    buf[len] = '\0';
    return true;
}

char *inf__g_strdup(const struct inf_gguf *g, const char *key)
{
    const struct inf_gguf_kv *kv = inf_gguf_find_kv(g, key);
    if (!kv || kv->value.type != INF_GGUF_TYPE_STRING)
        return NULL;
    return strndup(kv->value.str.data, (size_t)kv->value.str.len);
}

const char *inf__g_type_name(int type)
{
    return inf_ggml_type_name((uint32_t)type);
}

bool inf__g_type_computable(int type)
{
    const struct inf_type_traits *tr = inf_type_get((enum inf_type)type);
    return tr && tr->is_weight;
}

bool inf__g_tensor(const struct inf_gguf *g, const char *name, struct inf__tensor *out)
{
    const struct inf_gguf_tensor *t = inf_gguf_find_tensor(g, name);
    if (!t)
        return false;
    memset(out, 0, sizeof(*out));
    out->type = (int)t->type;
    for (int d = 0; d < 4; d++)
        out->ne[d] = d < INF_GGUF_MAX_DIMS ? t->ne[d] : 1;
    const struct inf_type_traits *tr = inf_type_get((enum inf_type)t->type);
    if (!tr || !tr->is_weight || t->ne[0] % tr->blck_size != 0)
        return true; /* found but not computable: data stays NULL and the loader says why */
    out->row_bytes = inf_type_row_size((enum inf_type)t->type, t->ne[0]);
    out->data = t->data; /* the reader checked the extent against the file */
    return true;
}

void inf__g_weight_totals(const struct inf_gguf *g, uint64_t *n_params, uint64_t *bytes)
{
    *n_params = 0;
    *bytes = 0;
    for (size_t i = 0; i < inf_gguf_n_tensors(g); i++) {
        const struct inf_gguf_tensor *t = inf_gguf_tensor_at(g, i);
        *n_params += t->n_elements;
        *bytes += t->n_bytes;
    }
}

void inf__g_type_bytes(const struct inf_gguf *g, uint64_t bytes[64])
{
    memset(bytes, 0, 64 * sizeof(uint64_t));
    for (size_t i = 0; i < inf_gguf_n_tensors(g); i++) {
        const struct inf_gguf_tensor *t = inf_gguf_tensor_at(g, i);
        bytes[t->type < 64 ? t->type : 63] += t->n_bytes;
    }
}

void inf__g_mlock(struct inf_gguf *g)
{
    uint64_t size;
    const void *p = inf_gguf_bytes(g, &size);
    if (p && mlock(p, (size_t)size) != 0)
        fprintf(stderr, "inferno: warning: mlock of %llu bytes failed: %s\n",
                (unsigned long long)size, strerror(errno));
}

inf_status inf__g_tokenizer(const struct inf_gguf *g, struct inf_tokenizer **out,
                            struct inf_error *err)
{
    return inf_tokenizer_from_gguf(g, out, err);
}
