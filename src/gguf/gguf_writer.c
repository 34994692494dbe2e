/*
 * gguf_writer.c - build a GGUF file from metadata and tensors.
 *
 * The writer keeps deep copies of the metadata (in an arena) and borrowed pointers to tensor
 * data, and serialises everything in one pass through a sink that either counts bytes, fills a
 * buffer or writes a FILE. Numbers are encoded byte by byte in the file's byte order, so the
 * output does not depend on the host's.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/files.h"
#include "gguf/internal.h"
#include "inferno/gguf.h"

struct inf_gguf_writer {
    uint32_t version;
    bool big_endian;
    uint32_t alignment;
    struct inf_gguf_kv *kvs;
    size_t n_kv, cap_kv;
    struct inf_gguf_tensor *tensors; /* data borrowed */
    size_t n_tensors, cap_tensors;
    struct inf__strmap kv_index;
    struct inf__strmap tensor_index;
    struct inf__arena arena;
};

inf_status inf_gguf_writer_new(uint32_t version, struct inf_gguf_writer **out,
                               struct inf_error *err)
{
    struct inf_gguf_writer *w;

    *out = NULL;
    if (version != 2 && version != 3)
        return inf_error_set(err, INF_EINVAL,
                             "cannot write GGUF version %" PRIu32 " (only 2 and 3)", version);
    w = calloc(1, sizeof(*w));
    if (!w)
        return inf_error_set(err, INF_ENOMEM, "out of memory");
    w->version = version;
    w->alignment = INF_GGUF_DEFAULT_ALIGNMENT;
    *out = w;
    return INF_OK;
}

void inf_gguf_writer_free(struct inf_gguf_writer *w)
{
    if (!w)
        return;
    free(w->kvs);
    free(w->tensors);
    inf__strmap_release(&w->kv_index);
    inf__strmap_release(&w->tensor_index);
    inf__arena_release(&w->arena);
    free(w);
}

void inf_gguf_writer_set_big_endian(struct inf_gguf_writer *w, bool big_endian)
{
    w->big_endian = big_endian;
}

/* ---- deep copies of values ---- */

static inf_status copy_array(struct inf_gguf_writer *w, struct inf_gguf_array *dst,
                             const struct inf_gguf_array *src, int depth, struct inf_error *err);

static inf_status copy_str(struct inf_gguf_writer *w, struct inf_gguf_str *dst,
                           const struct inf_gguf_str *src, struct inf_error *err)
{
    if (!src->data && src->len)
        return inf_error_set(err, INF_EINVAL, "string without data");
    if (src->len >= SIZE_MAX)
        return inf_error_set(err, INF_ENOMEM, "out of memory");
    char *s = inf__arena_strndup(&w->arena, src->data ? src->data : "", (size_t)src->len);
    if (!s)
        return inf_error_set(err, INF_ENOMEM, "out of memory");
    dst->data = s;
    dst->len = src->len;
    return INF_OK;
}

static inf_status copy_value(struct inf_gguf_writer *w, struct inf_gguf_value *dst,
                             const struct inf_gguf_value *src, struct inf_error *err)
{
    if ((uint32_t)src->type >= INF_GGUF_TYPE_COUNT)
        return inf_error_set(err, INF_EINVAL, "unknown value type %u", (unsigned)src->type);
    *dst = *src;
    if (src->type == INF_GGUF_TYPE_STRING)
        return copy_str(w, &dst->str, &src->str, err);
    if (src->type == INF_GGUF_TYPE_ARRAY)
        return copy_array(w, &dst->arr, &src->arr, 1, err);
    return INF_OK;
}

static inf_status copy_array(struct inf_gguf_writer *w, struct inf_gguf_array *dst,
                             const struct inf_gguf_array *src, int depth, struct inf_error *err)
{
    uint64_t esz = inf_gguf_type_size(src->type), bytes;
    inf_status rc;
    void *data;

    if (depth > INF_GGUF_MAX_DEPTH)
        return inf_error_set(err, INF_EINVAL, "arrays nested deeper than %d levels",
                             INF_GGUF_MAX_DEPTH);
    if ((uint32_t)src->type >= INF_GGUF_TYPE_COUNT)
        return inf_error_set(err, INF_EINVAL, "array of unknown element type %u",
                             (unsigned)src->type);
    if (src->type == INF_GGUF_TYPE_STRING)
        esz = sizeof(struct inf_gguf_str);
    else if (src->type == INF_GGUF_TYPE_ARRAY)
        esz = sizeof(struct inf_gguf_array);
    if (!inf__mul_u64(src->n, esz, &bytes) || bytes > SIZE_MAX / 2)
        return inf_error_set(err, INF_ENOMEM, "out of memory");
    if (!src->data && src->n)
        return inf_error_set(err, INF_EINVAL, "array without data");
    data = inf__arena_alloc(&w->arena, (size_t)bytes);
    if (!data)
        return inf_error_set(err, INF_ENOMEM, "out of memory");
    dst->type = src->type;
    dst->n = src->n;
    dst->data = data;
    if (src->type == INF_GGUF_TYPE_STRING) {
        const struct inf_gguf_str *s = src->data;
        struct inf_gguf_str *d = data;
        for (uint64_t i = 0; i < src->n; i++)
            if ((rc = copy_str(w, &d[i], &s[i], err)) != INF_OK)
                return rc;
    } else if (src->type == INF_GGUF_TYPE_ARRAY) {
        const struct inf_gguf_array *s = src->data;
        struct inf_gguf_array *d = data;
        for (uint64_t i = 0; i < src->n; i++)
            if ((rc = copy_array(w, &d[i], &s[i], depth + 1, err)) != INF_OK)
                return rc;
    } else if (bytes) {
        memcpy(data, src->data, (size_t)bytes);
    }
    return INF_OK;
}

/* ---- metadata ---- */

static inf_status set_kv(struct inf_gguf_writer *w, const char *key, size_t key_len,
                         const struct inf_gguf_value *value, struct inf_error *err)
{
    char q[112];
    uint64_t prev;
    inf_status rc;

    if (!key || key_len == 0)
        return inf_error_set(err, INF_EINVAL, "empty metadata key");
    inf__printable(q, sizeof(q), key, key_len);
    if (key_len > INF_GGUF_MAX_KEY)
        return inf_error_set(err, INF_EINVAL, "metadata key '%s' is longer than %d bytes", q,
                             INF_GGUF_MAX_KEY);
    if (!value)
        return inf_error_set(err, INF_EINVAL, "metadata '%s': no value", q);
    if (inf__strmap_find(&w->kv_index, key, key_len, &prev))
        return inf_error_set(err, INF_EEXIST, "metadata key '%s' is already set", q);
    if (key_len == strlen("general.alignment") && memcmp(key, "general.alignment", key_len) == 0) {
        if (value->type != INF_GGUF_TYPE_UINT32)
            return inf_error_set(err, INF_EINVAL, "metadata 'general.alignment' must be uint32");
        if (value->u32 == 0 || (value->u32 & (value->u32 - 1)) != 0)
            return inf_error_set(err, INF_EINVAL,
                                 "metadata 'general.alignment' = %" PRIu32 " is not a power of two",
                                 value->u32);
    }
    if (w->n_kv == w->cap_kv) {
        size_t cap = w->cap_kv ? w->cap_kv * 2 : 16;
        struct inf_gguf_kv *kvs = realloc(w->kvs, cap * sizeof(*kvs));
        if (!kvs)
            return inf_error_set(err, INF_ENOMEM, "out of memory");
        w->kvs = kvs;
        w->cap_kv = cap;
    }
    if (inf__strmap_reserve(&w->kv_index, w->n_kv + 1) != INF_OK)
        return inf_error_set(err, INF_ENOMEM, "out of memory");
    struct inf_gguf_kv *kv = &w->kvs[w->n_kv];
    memset(kv, 0, sizeof(*kv));
    char *k = inf__arena_strndup(&w->arena, key, key_len);
    if (!k)
        return inf_error_set(err, INF_ENOMEM, "out of memory");
    rc = copy_value(w, &kv->value, value, err);
    if (rc != INF_OK) {
        inf_error_prefix(err, "metadata '%s'", q);
        return rc;
    }
    kv->key.data = k;
    kv->key.len = key_len;
    inf__strmap_insert(&w->kv_index, k, key_len, w->n_kv, &prev);
    w->n_kv++;
    if (kv->value.type == INF_GGUF_TYPE_UINT32 && strcmp(k, "general.alignment") == 0)
        w->alignment = kv->value.u32;
    return INF_OK;
}

inf_status inf_gguf_writer_set(struct inf_gguf_writer *w, const char *key,
                               const struct inf_gguf_value *value, struct inf_error *err)
{
    return set_kv(w, key, key ? strlen(key) : 0, value, err);
}

/* The typed setters (gguf.h): one value of one type, then inf_gguf_writer_set. */
#define TYPED_SETTER(suffix, ctype, gtype, field, expr)                                            \
    inf_status inf_gguf_writer_set_##suffix(struct inf_gguf_writer *w, const char *key, ctype v,   \
                                            struct inf_error *err)                                 \
    {                                                                                              \
        struct inf_gguf_value val = {.type = gtype, .field = expr};                                \
        return inf_gguf_writer_set(w, key, &val, err);                                             \
    }

TYPED_SETTER(u32, uint32_t, INF_GGUF_TYPE_UINT32, u32, v)
TYPED_SETTER(i32, int32_t, INF_GGUF_TYPE_INT32, i32, v)
TYPED_SETTER(u64, uint64_t, INF_GGUF_TYPE_UINT64, u64, v)
TYPED_SETTER(f32, float, INF_GGUF_TYPE_FLOAT32, f32, v)
TYPED_SETTER(bool, bool, INF_GGUF_TYPE_BOOL, b, v ? 1 : 0)

inf_status inf_gguf_writer_set_str(struct inf_gguf_writer *w, const char *key, const char *v,
                                   struct inf_error *err)
{
    struct inf_gguf_value val = {.type = INF_GGUF_TYPE_STRING};
    if (!v)
        return inf_error_set(err, INF_EINVAL, "metadata '%s': no string", key ? key : "");
    val.str.data = v;
    val.str.len = strlen(v);
    return inf_gguf_writer_set(w, key, &val, err);
}

inf_status inf_gguf_writer_set_arr(struct inf_gguf_writer *w, const char *key, uint32_t elem_type,
                                   const void *data, uint64_t n, struct inf_error *err)
{
    struct inf_gguf_value val = {.type = INF_GGUF_TYPE_ARRAY};
    if (inf_gguf_type_size(elem_type) == 0)
        return inf_error_set(err, INF_EINVAL, "metadata '%s': %s is not a fixed-size type",
                             key ? key : "", inf_gguf_type_name(elem_type));
    val.arr.type = (enum inf_gguf_type)elem_type;
    val.arr.n = n;
    val.arr.data = data;
    return inf_gguf_writer_set(w, key, &val, err);
}

inf_status inf_gguf_writer_set_arr_str(struct inf_gguf_writer *w, const char *key,
                                       const char *const *strs, uint64_t n, struct inf_error *err)
{
    struct inf_gguf_value val = {.type = INF_GGUF_TYPE_ARRAY};
    struct inf_gguf_str *tmp = NULL;
    inf_status rc;

    if (n > SIZE_MAX / sizeof(*tmp) || (!strs && n))
        return inf_error_set(err, INF_EINVAL, "metadata '%s': bad string array", key ? key : "");
    tmp = malloc(n ? (size_t)n * sizeof(*tmp) : 1);
    if (!tmp)
        return inf_error_set(err, INF_ENOMEM, "out of memory");
    for (uint64_t i = 0; i < n; i++) {
        tmp[i].data = strs[i] ? strs[i] : "";
        tmp[i].len = strlen(tmp[i].data);
    }
    val.arr.type = INF_GGUF_TYPE_STRING;
    val.arr.n = n;
    val.arr.data = tmp;
    rc = inf_gguf_writer_set(w, key, &val, err);
    free(tmp);
    return rc;
}

/* ---- tensors ---- */

static inf_status add_tensor(struct inf_gguf_writer *w, const char *name, size_t name_len,
                             uint32_t type, uint32_t n_dims, const int64_t *ne, const void *data,
                             bool streamed, struct inf_error *err)
{
    char q[112], what[128];
    struct inf_gguf_tensor t = {0};
    uint64_t prev;
    inf_status rc;

    if (!name)
        return inf_error_set(err, INF_EINVAL, "tensor without a name");
    inf__printable(q, sizeof(q), name, name_len);
    if (name_len > INF_GGUF_MAX_NAME)
        return inf_error_set(err, INF_EINVAL, "tensor name '%s' is longer than %d bytes", q,
                             INF_GGUF_MAX_NAME);
    if (inf__strmap_find(&w->tensor_index, name, name_len, &prev))
        return inf_error_set(err, INF_EEXIST, "tensor '%s' was already added", q);
    if (n_dims > INF_GGUF_MAX_DIMS || (!ne && n_dims))
        return inf_error_set(err, INF_EINVAL, "tensor '%s': %" PRIu32 " dimensions", q, n_dims);
    for (uint32_t d = 0; d < INF_GGUF_MAX_DIMS; d++)
        t.ne[d] = d < n_dims ? ne[d] : 1;
    snprintf(what, sizeof(what), "tensor '%s'", q);
    rc = inf_ggml_nbytes(type, n_dims, t.ne, what, &t.n_bytes, err);
    if (rc != INF_OK)
        return rc;
    if (!data && t.n_bytes && !streamed)
        return inf_error_set(err, INF_EINVAL, "tensor '%s': no data", q);
    t.n_dims = n_dims;
    t.type = type;
    t.data = data;
    t.n_elements = 1;
    for (uint32_t d = 0; d < n_dims; d++)
        t.n_elements *= (uint64_t)t.ne[d];
    char *s = inf__arena_strndup(&w->arena, name, name_len);
    if (!s)
        return inf_error_set(err, INF_ENOMEM, "out of memory");
    t.name.data = s;
    t.name.len = name_len;
    if (w->n_tensors == w->cap_tensors) {
        size_t cap = w->cap_tensors ? w->cap_tensors * 2 : 16;
        struct inf_gguf_tensor *ts = realloc(w->tensors, cap * sizeof(*ts));
        if (!ts)
            return inf_error_set(err, INF_ENOMEM, "out of memory");
        w->tensors = ts;
        w->cap_tensors = cap;
    }
    if (inf__strmap_reserve(&w->tensor_index, w->n_tensors + 1) != INF_OK)
        return inf_error_set(err, INF_ENOMEM, "out of memory");
    inf__strmap_insert(&w->tensor_index, s, name_len, w->n_tensors, &prev);
    w->tensors[w->n_tensors++] = t;
    return INF_OK;
}

inf_status inf_gguf_writer_add_tensor(struct inf_gguf_writer *w, const char *name, uint32_t type,
                                      uint32_t n_dims, const int64_t *ne, const void *data,
                                      struct inf_error *err)
{
    return add_tensor(w, name, name ? strlen(name) : 0, type, n_dims, ne, data, false, err);
}

inf_status inf_gguf_writer_add_tensor_info(struct inf_gguf_writer *w, const char *name,
                                           uint32_t type, uint32_t n_dims, const int64_t *ne,
                                           struct inf_error *err)
{
    return add_tensor(w, name, name ? strlen(name) : 0, type, n_dims, ne, NULL, true, err);
}

inf_status inf_gguf_writer_add_all(struct inf_gguf_writer *w, const struct inf_gguf *g,
                                   struct inf_error *err)
{
    inf_status rc;

    for (size_t i = 0; i < inf_gguf_n_kv(g); i++) {
        const struct inf_gguf_kv *kv = inf_gguf_kv_at(g, i);
        rc = set_kv(w, kv->key.data, (size_t)kv->key.len, &kv->value, err);
        if (rc != INF_OK)
            return rc;
    }
    for (size_t i = 0; i < inf_gguf_n_tensors(g); i++) {
        const struct inf_gguf_tensor *t = inf_gguf_tensor_at(g, i);
        rc = add_tensor(w, t->name.data, (size_t)t->name.len, t->type, t->n_dims, t->ne, t->data,
                        false, err);
        if (rc != INF_OK)
            return rc;
    }
    return INF_OK;
}

/* ---- serialisation ---- */

struct sink {
    FILE *f;      /* write here, or */
    uint8_t *buf; /* here (cap bytes), or only count */
    uint64_t cap;
    uint64_t len;
    bool be;
    inf_status rc;
    int saved_errno;
};

static void put(struct sink *s, const void *p, size_t n)
{
    if (s->rc != INF_OK || n == 0)
        return;
    if (s->f) {
        if (fwrite(p, 1, n, s->f) != n) {
            s->rc = INF_EIO;
            s->saved_errno = errno;
        }
    } else if (s->buf) {
        if (n > s->cap - s->len) {
            s->rc = INF_EINTERNAL;
            return;
        }
        memcpy(s->buf + s->len, p, n);
    }
    s->len += n;
}

static void put_uint(struct sink *s, uint64_t v, size_t size)
{
    uint8_t b[8];
    for (size_t i = 0; i < size; i++) {
        size_t shift = 8 * (s->be ? size - 1 - i : i);
        b[i] = (uint8_t)(v >> shift);
    }
    put(s, b, size);
}

/* A fixed-size value stored in host order at p. */
static void put_scalar(struct sink *s, const void *p, size_t size)
{
    uint64_t v = 0;
    switch (size) {
    case 1: {
        uint8_t x;
        memcpy(&x, p, 1);
        v = x;
        break;
    }
    case 2: {
        uint16_t x;
        memcpy(&x, p, 2);
        v = x;
        break;
    }
    case 4: {
        uint32_t x;
        memcpy(&x, p, 4);
        v = x;
        break;
    }
    default:
        memcpy(&v, p, 8);
        break;
    }
    put_uint(s, v, size);
}

static void put_zeros(struct sink *s, uint64_t n)
{
    static const uint8_t zeros[256];
    while (n > 0 && s->rc == INF_OK) {
        size_t k = n < sizeof(zeros) ? (size_t)n : sizeof(zeros);
        put(s, zeros, k);
        n -= k;
    }
}

static void put_str(struct sink *s, const struct inf_gguf_str *str)
{
    put_uint(s, str->len, 8);
    put(s, str->data, (size_t)str->len);
}

static void put_array(struct sink *s, const struct inf_gguf_array *a)
{
    size_t size = inf_gguf_type_size(a->type);

    put_uint(s, a->type, 4);
    put_uint(s, a->n, 8);
    if (size == 1) {
        put(s, a->data, (size_t)a->n);
    } else if (size) {
        for (uint64_t i = 0; i < a->n; i++)
            put_scalar(s, (const char *)a->data + i * size, size);
    } else if (a->type == INF_GGUF_TYPE_STRING) {
        for (uint64_t i = 0; i < a->n; i++)
            put_str(s, &((const struct inf_gguf_str *)a->data)[i]);
    } else {
        for (uint64_t i = 0; i < a->n; i++)
            put_array(s, &((const struct inf_gguf_array *)a->data)[i]);
    }
}

static void put_value(struct sink *s, const struct inf_gguf_value *v)
{
    size_t size = inf_gguf_type_size(v->type);
    if (size)
        put_scalar(s, &v->u64, size);
    else if (v->type == INF_GGUF_TYPE_STRING)
        put_str(s, &v->str);
    else
        put_array(s, &v->arr);
}

static void emit(const struct inf_gguf_writer *w, struct sink *s, bool header_only)
{
    uint64_t align = w->alignment, offset = 0, padded;

    s->be = w->big_endian;
    put(s, "GGUF", 4);
    put_uint(s, w->version, 4);
    put_uint(s, w->n_tensors, 8);
    put_uint(s, w->n_kv, 8);
    for (size_t i = 0; i < w->n_kv; i++) {
        put_str(s, &w->kvs[i].key);
        put_uint(s, w->kvs[i].value.type, 4);
        put_value(s, &w->kvs[i].value);
    }
    for (size_t i = 0; i < w->n_tensors; i++) {
        const struct inf_gguf_tensor *t = &w->tensors[i];
        put_str(s, &t->name);
        put_uint(s, t->n_dims, 4);
        for (uint32_t d = 0; d < t->n_dims; d++)
            put_uint(s, (uint64_t)t->ne[d], 8);
        put_uint(s, t->type, 4);
        put_uint(s, offset, 8);
        if (!inf__align_up(t->n_bytes, align, &padded) || !inf__add_u64(offset, padded, &offset)) {
            s->rc = INF_ELIMIT;
            return;
        }
    }
    if (w->n_tensors == 0)
        return;
    if (!inf__align_up(s->len, align, &padded)) {
        s->rc = INF_ELIMIT;
        return;
    }
    put_zeros(s, padded - s->len);
    if (header_only)
        return;
    for (size_t i = 0; i < w->n_tensors; i++) {
        const struct inf_gguf_tensor *t = &w->tensors[i];
        const uint8_t *p = t->data;
        for (uint64_t done = 0; done < t->n_bytes && s->rc == INF_OK;) {
            size_t k = t->n_bytes - done > (1u << 30) ? (1u << 30) : (size_t)(t->n_bytes - done);
            put(s, p + done, k);
            done += k;
        }
        inf__align_up(t->n_bytes, align, &padded);
        put_zeros(s, padded - t->n_bytes);
    }
}

/* Whole-file writes need every tensor's data; streamed tensors (add_tensor_info) have none. */
static inf_status check_data(const struct inf_gguf_writer *w, struct inf_error *err)
{
    for (size_t i = 0; i < w->n_tensors; i++)
        if (!w->tensors[i].data && w->tensors[i].n_bytes)
            return inf_error_set(err, INF_EINVAL,
                                 "tensor '%s' has no data (added for streaming; use "
                                 "inf_gguf_writer_write_header)",
                                 w->tensors[i].name.data);
    return INF_OK;
}

uint64_t inf_gguf_writer_size(const struct inf_gguf_writer *w)
{
    struct sink s = {0};
    emit(w, &s, false);
    return s.rc == INF_OK ? s.len : 0;
}

inf_status inf_gguf_writer_write_memory(struct inf_gguf_writer *w, void **out, size_t *size,
                                        struct inf_error *err)
{
    struct sink s = {0};

    *out = NULL;
    *size = 0;
    if (check_data(w, err) != INF_OK)
        return err ? err->code : INF_EINVAL;
    emit(w, &s, false);
    if (s.rc != INF_OK)
        return inf_error_set(err, INF_ELIMIT, "the tensor data is too large to lay out");
    if (s.len > SIZE_MAX)
        return inf_error_set(err, INF_ENOMEM, "out of memory");
    s = (struct sink){.cap = s.len};
    s.buf = malloc(s.cap ? (size_t)s.cap : 1);
    if (!s.buf)
        return inf_error_set(err, INF_ENOMEM, "out of memory");
    emit(w, &s, false);
    if (s.rc != INF_OK || s.len != s.cap) {
        free(s.buf);
        return inf_error_set(err, INF_EINTERNAL, "the file size changed while writing");
    }
    *out = s.buf;
    *size = (size_t)s.len;
    return INF_OK;
}

inf_status inf_gguf_writer_write_file(struct inf_gguf_writer *w, const char *path,
                                      struct inf_error *err)
{
    struct sink s = {0};
    struct inf__outfile o = {.fd = -1};
    inf_status rc = check_data(w, err);
    if (rc != INF_OK)
        return rc;
    /* written unnamed and put in place when complete: a killed run leaves no partial file */
    rc = inf__outfile_open(path, &o, err);
    if (rc != INF_OK)
        return rc;
    s.f = fdopen(o.fd, "wb");
    if (!s.f) {
        rc = inf_error_set(err, INF_EIO, "cannot write '%s': %s", path, strerror(errno));
        close(o.fd);
        inf__outfile_abandon(&o);
        return rc;
    }
    emit(w, &s, false);
    if (s.rc == INF_OK && fflush(s.f) != 0) {
        s.rc = INF_EIO;
        s.saved_errno = errno;
    }
    if (s.rc == INF_OK && fsync(fileno(s.f)) != 0) {
        s.rc = INF_EIO;
        s.saved_errno = errno;
    }
    if (s.rc == INF_ELIMIT)
        rc = inf_error_set(err, INF_ELIMIT, "the tensor data is too large to lay out");
    else if (s.rc != INF_OK)
        rc = inf_error_set(err, INF_EIO, "cannot write '%s': %s", path, strerror(s.saved_errno));
    else
        rc = inf__outfile_commit(&o, path, err); /* while the descriptor is open */
    if (fclose(s.f) != 0 && rc == INF_OK)
        rc = inf_error_set(err, INF_EIO, "cannot write '%s': %s", path, strerror(errno));
    if (rc != INF_OK)
        inf__outfile_abandon(&o);
    return rc;
}

uint32_t inf_gguf_writer_alignment(const struct inf_gguf_writer *w)
{
    return w->alignment;
}

inf_status inf_gguf_writer_write_header(const struct inf_gguf_writer *w, FILE *f, uint64_t *size,
                                        struct inf_error *err)
{
    struct sink s = {.f = f};

    emit(w, &s, true);
    if (size)
        *size = s.len;
    if (s.rc == INF_ELIMIT)
        return inf_error_set(err, INF_ELIMIT, "the tensor data is too large to lay out");
    if (s.rc != INF_OK)
        return inf_error_set(err, INF_EIO, "cannot write the GGUF header: %s",
                             strerror(s.saved_errno));
    return INF_OK;
}
