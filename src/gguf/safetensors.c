/*
 * safetensors.c - the safetensors reader: header JSON via jansson, extents checked against the
 * data section, shards unified through model.safetensors.index.json.
 */
#include "inferno/safetensors.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf/internal.h"

static const struct inf_st_dtype_info dtypes[INF_ST_DTYPE_COUNT] = {
    [INF_ST_BOOL] = {"BOOL", 8, true},
    [INF_ST_U8] = {"U8", 8, true},
    [INF_ST_I8] = {"I8", 8, true},
    [INF_ST_I16] = {"I16", 16, false},
    [INF_ST_U16] = {"U16", 16, false},
    [INF_ST_F16] = {"F16", 16, true},
    [INF_ST_BF16] = {"BF16", 16, true},
    [INF_ST_I32] = {"I32", 32, true},
    [INF_ST_U32] = {"U32", 32, false},
    [INF_ST_F32] = {"F32", 32, true},
    [INF_ST_F64] = {"F64", 64, false},
    [INF_ST_I64] = {"I64", 64, true},
    [INF_ST_U64] = {"U64", 64, false},
    [INF_ST_F8_E4M3] = {"F8_E4M3", 8, false},
    [INF_ST_F8_E5M2] = {"F8_E5M2", 8, false},
    [INF_ST_F8_E8M0] = {"F8_E8M0", 8, false},
    [INF_ST_F4] = {"F4", 4, false},
    [INF_ST_F6_E2M3] = {"F6_E2M3", 6, false},
    [INF_ST_F6_E3M2] = {"F6_E3M2", 6, false},
    [INF_ST_C64] = {"C64", 64, false},
};

const struct inf_st_dtype_info *inf_st_dtype_info(enum inf_st_dtype dtype)
{
    return (unsigned)dtype < INF_ST_DTYPE_COUNT ? &dtypes[dtype] : NULL;
}

bool inf_st_dtype_from_name(const char *name, enum inf_st_dtype *out)
{
    for (int i = 0; name && i < INF_ST_DTYPE_COUNT; i++) {
        if (strcmp(dtypes[i].name, name) == 0) {
            *out = (enum inf_st_dtype)i;
            return true;
        }
    }
    return false;
}

struct shard {
    struct inf__mapping map; /* nothing mapped for memory images */
    const char *path;
};

struct meta {
    const char *key, *value;
};

struct inf_safetensors {
    struct shard *shards;
    size_t n_shards;
    struct inf_st_tensor *tensors;
    size_t n_tensors, cap_tensors;
    struct meta *meta;
    size_t n_meta, cap_meta;
    struct inf__strmap names;
    struct inf__strmap meta_keys;
    uint64_t total_size;
    struct inf__arena arena;
};

static inf_status oom(struct inf_error *err)
{
    return inf_error_set(err, INF_ENOMEM, "out of memory");
}

static void quote(char *dst, size_t cap, const char *s)
{
    inf__printable(dst, cap, s, strlen(s));
}

/* ---- one file ---- */

static inf_status add_meta(struct inf_safetensors *st, const char *key, const char *value,
                           struct inf_error *err)
{
    uint64_t prev;

    if (inf__strmap_find(&st->meta_keys, key, strlen(key), &prev))
        return INF_OK; /* the first shard's value wins */
    if (st->n_meta == st->cap_meta) {
        size_t cap = st->cap_meta ? st->cap_meta * 2 : 8;
        struct meta *m = realloc(st->meta, cap * sizeof(*m));
        if (!m)
            return oom(err);
        st->meta = m;
        st->cap_meta = cap;
    }
    char *k = inf__arena_strndup(&st->arena, key, strlen(key));
    char *v = inf__arena_strndup(&st->arena, value, strlen(value));
    if (!k || !v || inf__strmap_reserve(&st->meta_keys, st->n_meta + 1) != INF_OK)
        return oom(err);
    inf__strmap_insert(&st->meta_keys, k, strlen(k), st->n_meta, &prev);
    st->meta[st->n_meta++] = (struct meta){.key = k, .value = v};
    return INF_OK;
}

static inf_status parse_metadata(struct inf_safetensors *st, json_t *obj, struct inf_error *err)
{
    const char *key;
    json_t *val;
    inf_status rc;

    if (!json_is_object(obj))
        return inf_error_set(err, INF_EFORMAT, "__metadata__ is not an object");
    json_object_foreach(obj, key, val)
    {
        char q[112];
        if (!json_is_string(val)) {
            quote(q, sizeof(q), key);
            return inf_error_set(err, INF_EFORMAT, "__metadata__ '%s' is not a string", q);
        }
        rc = add_meta(st, key, json_string_value(val), err);
        if (rc != INF_OK)
            return rc;
    }
    return INF_OK;
}

static bool json_u64(json_t *v, uint64_t *out)
{
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return false;
    *out = (uint64_t)json_integer_value(v);
    return true;
}

static void format_shape(const struct inf_st_tensor *t, char *buf, size_t size)
{
    size_t n = 0;
    n += (size_t)snprintf(buf, size, "[");
    for (uint32_t d = 0; d < t->n_dims && n < size; d++)
        n += (size_t)snprintf(buf + n, size - n, "%s%" PRId64, d ? ", " : "", t->shape[d]);
    if (n < size)
        snprintf(buf + n, size - n, "]");
}

static inf_status parse_tensor(struct inf_safetensors *st, const char *name, json_t *obj,
                               uint32_t shard, uint64_t data_size, struct inf_error *err)
{
    struct inf_st_tensor t = {.shard = shard};
    json_t *dtype, *shape, *offsets;
    uint64_t n = 1, bits;
    char q[112];

    quote(q, sizeof(q), name);
    if (!json_is_object(obj))
        return inf_error_set(err, INF_EFORMAT, "tensor '%s': not an object", q);
    dtype = json_object_get(obj, "dtype");
    shape = json_object_get(obj, "shape");
    offsets = json_object_get(obj, "data_offsets");
    if (!json_is_string(dtype))
        return inf_error_set(err, INF_EFORMAT, "tensor '%s': no \"dtype\" string", q);
    if (!inf_st_dtype_from_name(json_string_value(dtype), &t.dtype)) {
        char d[48];
        quote(d, sizeof(d), json_string_value(dtype));
        return inf_error_set(err, INF_EFORMAT, "tensor '%s': unknown dtype '%s'", q, d);
    }
    if (!json_is_array(shape))
        return inf_error_set(err, INF_EFORMAT, "tensor '%s': no \"shape\" array", q);
    if (json_array_size(shape) > INF_ST_MAX_DIMS)
        return inf_error_set(err, INF_EFORMAT, "tensor '%s': %zu dimensions, at most %d allowed", q,
                             json_array_size(shape), INF_ST_MAX_DIMS);
    t.n_dims = (uint32_t)json_array_size(shape);
    for (uint32_t d = 0; d < INF_ST_MAX_DIMS; d++) {
        uint64_t ne = 1;
        if (d < t.n_dims && !json_u64(json_array_get(shape, d), &ne))
            return inf_error_set(err, INF_EFORMAT,
                                 "tensor '%s': shape[%" PRIu32 "] is not a non-negative integer", q,
                                 d);
        t.shape[d] = (int64_t)ne;
        if (!inf__mul_u64(n, ne, &n) || n > INT64_MAX)
            return inf_error_set(err, INF_EFORMAT, "tensor '%s': the element count overflows", q);
    }
    t.n_elements = n;
    if (!inf__mul_u64(n, dtypes[t.dtype].bits, &bits))
        return inf_error_set(err, INF_EFORMAT, "tensor '%s': the byte size overflows", q);
    if (bits % 8 != 0)
        return inf_error_set(err, INF_EFORMAT,
                             "tensor '%s': %" PRIu64 " values of %s do not fill whole bytes", q, n,
                             dtypes[t.dtype].name);
    t.n_bytes = bits / 8;
    if (!json_is_array(offsets) || json_array_size(offsets) != 2 ||
        !json_u64(json_array_get(offsets, 0), &t.begin) ||
        !json_u64(json_array_get(offsets, 1), &t.end) || t.begin > t.end)
        return inf_error_set(err, INF_EFORMAT,
                             "tensor '%s': \"data_offsets\" is not [begin, end] with "
                             "0 <= begin <= end",
                             q);
    if (t.end > data_size)
        return inf_error_set(err, INF_EFORMAT,
                             "tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64
                             ") exceed the %" PRIu64 " bytes of data",
                             q, t.begin, t.end, data_size);
    if (t.end - t.begin != t.n_bytes) {
        char s[160];
        format_shape(&t, s, sizeof(s));
        return inf_error_set(err, INF_EFORMAT,
                             "tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64 ") hold %" PRIu64
                             " bytes but shape %s of %s needs %" PRIu64,
                             q, t.begin, t.end, t.end - t.begin, s, dtypes[t.dtype].name,
                             t.n_bytes);
    }
    t.name = inf__arena_strndup(&st->arena, name, strlen(name));
    if (!t.name)
        return oom(err);
    if (st->n_tensors == st->cap_tensors) {
        size_t cap = st->cap_tensors ? st->cap_tensors * 2 : 64;
        struct inf_st_tensor *ts = realloc(st->tensors, cap * sizeof(*ts));
        if (!ts)
            return oom(err);
        st->tensors = ts;
        st->cap_tensors = cap;
    }
    st->tensors[st->n_tensors++] = t;
    return INF_OK;
}

static int cmp_offsets(const void *a, const void *b)
{
    const struct inf_st_tensor *x = a, *y = b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end)
        return x->end < y->end ? -1 : 1;
    return 0;
}

/* The tensors first..n_tensors of one file must tile its data section exactly. */
static inf_status check_tiling(struct inf_safetensors *st, size_t first, uint64_t data_size,
                               struct inf_error *err)
{
    size_t n = st->n_tensors - first;
    struct inf_st_tensor *t = n ? st->tensors + first : NULL;
    uint64_t expect = 0;
    char a[80], b[80];

    if (n > 1)
        qsort(t, n, sizeof(*t), cmp_offsets);
    for (size_t i = 0; i < n; i++) {
        if (t[i].begin < expect) {
            quote(a, sizeof(a), t[i - 1].name);
            quote(b, sizeof(b), t[i].name);
            return inf_error_set(err, INF_EFORMAT,
                                 "tensors '%s' and '%s' overlap: data_offsets [%" PRIu64
                                 ", %" PRIu64 ") and [%" PRIu64 ", %" PRIu64 ")",
                                 a, b, t[i - 1].begin, t[i - 1].end, t[i].begin, t[i].end);
        }
        if (t[i].begin > expect)
            return inf_error_set(err, INF_EFORMAT,
                                 "bytes [%" PRIu64 ", %" PRIu64
                                 ") of the data section belong to no tensor",
                                 expect, t[i].begin);
        expect = t[i].end;
    }
    if (expect != data_size)
        return inf_error_set(err, INF_EFORMAT,
                             "bytes [%" PRIu64 ", %" PRIu64
                             ") of the data section belong to no tensor",
                             expect, data_size);
    return INF_OK;
}

static inf_status parse_file(struct inf_safetensors *st, const uint8_t *data, uint64_t size,
                             uint32_t shard, struct inf_error *err)
{
    json_error_t jerr;
    json_t *root = NULL, *val;
    const char *key;
    uint64_t n, data_size;
    size_t first = st->n_tensors;
    inf_status rc = INF_OK;

    if (size < 8)
        return inf_error_set(err, INF_EFORMAT,
                             "a file of %" PRIu64 " bytes is too short for a safetensors header",
                             size);
    n = inf__le64(data);
    if (n > INF_ST_MAX_HEADER)
        return inf_error_set(err, INF_ELIMIT,
                             "offset 0: header length %" PRIu64 " exceeds the limit of %u bytes", n,
                             INF_ST_MAX_HEADER);
    if (n > size - 8)
        return inf_error_set(err, INF_EFORMAT,
                             "offset 0: header length %" PRIu64 " exceeds the %" PRIu64
                             " bytes that remain",
                             n, size - 8);
    if (n < 2 || data[8] != '{')
        return inf_error_set(err, INF_EFORMAT, "offset 8: the header is not a JSON object");
    root = json_loadb((const char *)data + 8, (size_t)n, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return inf_error_set(err, INF_EFORMAT, "offset %" PRIu64 ": header JSON: %s",
                             8 + (uint64_t)(jerr.position > 0 ? jerr.position : 0), jerr.text);
    if (!json_is_object(root)) {
        rc = inf_error_set(err, INF_EFORMAT, "offset 8: the header is not a JSON object");
        goto out;
    }
    data_size = size - 8 - n;
    json_object_foreach(root, key, val)
    {
        if (strcmp(key, "__metadata__") == 0)
            rc = parse_metadata(st, val, err);
        else
            rc = parse_tensor(st, key, val, shard, data_size, err);
        if (rc != INF_OK)
            goto out;
    }
    rc = check_tiling(st, first, data_size, err);
    if (rc != INF_OK)
        goto out;
    if (inf__strmap_reserve(&st->names, st->n_tensors) != INF_OK) {
        rc = oom(err);
        goto out;
    }
    for (size_t i = first; i < st->n_tensors; i++) {
        struct inf_st_tensor *t = &st->tensors[i];
        uint64_t prev;
        t->data = data + 8 + n + t->begin;
        if (!inf__strmap_insert(&st->names, t->name, strlen(t->name), i, &prev)) {
            char q[112];
            quote(q, sizeof(q), t->name);
            rc = inf_error_set(err, INF_EFORMAT, "tensor '%s' is also in '%s'", q,
                               st->shards[st->tensors[prev].shard].path);
            goto out;
        }
    }
out:
    json_decref(root);
    return rc;
}

static inf_status add_shard(struct inf_safetensors *st, const char *path, struct inf_error *err)
{
    struct shard *s = realloc(st->shards, (st->n_shards + 1) * sizeof(*s));
    if (!s)
        return oom(err);
    st->shards = s;
    s = &st->shards[st->n_shards];
    memset(s, 0, sizeof(*s));
    s->path = inf__arena_strndup(&st->arena, path, strlen(path));
    if (!s->path)
        return oom(err);
    st->n_shards++;
    return INF_OK;
}

static inf_status new_handle(struct inf_safetensors **out, struct inf_error *err)
{
    *out = calloc(1, sizeof(**out));
    return *out ? INF_OK : oom(err);
}

inf_status inf_safetensors_open_memory(const void *data, size_t size, struct inf_safetensors **out,
                                       struct inf_error *err)
{
    struct inf_safetensors *st;
    inf_status rc;

    *out = NULL;
    if (!data && size)
        return inf_error_set(err, INF_EINVAL, "no data");
    if ((rc = new_handle(&st, err)) != INF_OK)
        return rc;
    rc = add_shard(st, "", err);
    if (rc == INF_OK)
        rc = parse_file(st, data ? data : (const void *)"", size, 0, err);
    if (rc != INF_OK) {
        inf_safetensors_free(st);
        return rc;
    }
    *out = st;
    return INF_OK;
}

/* Map shard i (st->shards[i].path) and parse it; messages are prefixed with the path. */
static inf_status open_shard(struct inf_safetensors *st, uint32_t i, struct inf_error *err)
{
    struct shard *s = &st->shards[i];
    inf_status rc = inf__map_file(s->path, true, &s->map, err);
    if (rc != INF_OK)
        return rc;
    rc = parse_file(st, s->map.data, s->map.size, i, err);
    if (rc != INF_OK)
        inf_error_prefix(err, "'%s'", s->path);
    inf__map_random(&s->map);
    return rc;
}

inf_status inf_safetensors_open_file(const char *path, struct inf_safetensors **out,
                                     struct inf_error *err)
{
    struct inf_safetensors *st;
    inf_status rc;

    *out = NULL;
    if ((rc = new_handle(&st, err)) != INF_OK)
        return rc;
    rc = add_shard(st, path, err);
    if (rc == INF_OK)
        rc = open_shard(st, 0, err);
    if (rc != INF_OK) {
        inf_safetensors_free(st);
        return rc;
    }
    *out = st;
    return INF_OK;
}

/* ---- sharded checkpoints ---- */

static bool safe_relative(const char *p)
{
    if (p[0] == '\0' || p[0] == '/')
        return false;
    for (const char *s = p; *s;) {
        size_t n = strcspn(s, "/");
        if (n == 2 && s[0] == '.' && s[1] == '.')
            return false;
        s += n;
        if (*s == '/')
            s++;
    }
    return true;
}

/* Errors name their file: *shard_error says whether a shard's (already prefixed with its path). */
static inf_status parse_index(struct inf_safetensors *st, const char *index_path, json_t *root,
                              bool *shard_error, struct inf_error *err)
{
    json_t *map = json_object_get(root, "weight_map"), *meta = json_object_get(root, "metadata");
    const char *dir_end = strrchr(index_path, '/');
    size_t dir_len = dir_end ? (size_t)(dir_end - index_path) + 1 : 0;
    struct inf__strmap files = {0};
    const char *name;
    json_t *val;
    inf_status rc = INF_OK;

    if (!json_is_object(root) || !json_is_object(map))
        return inf_error_set(err, INF_EFORMAT, "no \"weight_map\" object");
    if (json_is_object(meta) && json_object_get(meta, "total_size") &&
        !json_u64(json_object_get(meta, "total_size"), &st->total_size))
        return inf_error_set(err, INF_EFORMAT, "metadata.total_size is not a non-negative integer");
    if (inf__strmap_init(&files, json_object_size(map)) != INF_OK)
        return oom(err);
    /* the shards, in the order the map first names them */
    json_object_foreach(map, name, val)
    {
        char q[112];
        uint64_t prev;
        quote(q, sizeof(q), name);
        if (!json_is_string(val)) {
            rc = inf_error_set(err, INF_EFORMAT, "weight_map: '%s' does not map to a file name", q);
            goto out;
        }
        const char *file = json_string_value(val);
        if (!safe_relative(file)) {
            char f[112];
            quote(f, sizeof(f), file);
            rc = inf_error_set(err, INF_EFORMAT,
                               "weight_map: '%s' maps to '%s', which is not a relative path "
                               "inside the checkpoint",
                               q, f);
            goto out;
        }
        if (inf__strmap_find(&files, file, strlen(file), &prev))
            continue;
        size_t n = dir_len + strlen(file) + 1;
        char *path = malloc(n);
        if (!path) {
            rc = oom(err);
            goto out;
        }
        snprintf(path, n, "%.*s%s", (int)dir_len, index_path, file);
        rc = add_shard(st, path, err);
        free(path);
        if (rc != INF_OK)
            goto out;
        /* file is owned by root, which outlives this map */
        inf__strmap_insert(&files, file, strlen(file), st->n_shards - 1, &prev);
    }
    for (size_t i = 0; i < st->n_shards; i++) {
        if ((rc = open_shard(st, (uint32_t)i, err)) != INF_OK) {
            *shard_error = true;
            goto out;
        }
    }
    /* every mapped tensor is in the shard the map names, and nothing else is anywhere */
    json_object_foreach(map, name, val)
    {
        const struct inf_st_tensor *t = inf_safetensors_find_tensor(st, name);
        const char *file = json_string_value(val);
        uint64_t shard = 0;
        char q[112];
        inf__strmap_find(&files, file, strlen(file), &shard);
        quote(q, sizeof(q), name);
        if (!t) {
            rc = inf_error_set(err, INF_EFORMAT, "tensor '%s' is mapped to '%s' but is not in it",
                               q, st->shards[shard].path);
            goto out;
        }
        if (t->shard != shard) {
            rc = inf_error_set(err, INF_EFORMAT, "tensor '%s' is mapped to '%s' but is in '%s'", q,
                               st->shards[shard].path, st->shards[t->shard].path);
            goto out;
        }
    }
    for (size_t i = 0; i < st->n_tensors; i++) {
        const struct inf_st_tensor *t = &st->tensors[i];
        if (!json_object_get(map, t->name)) {
            char q[112];
            quote(q, sizeof(q), t->name);
            rc = inf_error_set(err, INF_EFORMAT, "tensor '%s' in '%s' is not in the weight_map", q,
                               st->shards[t->shard].path);
            goto out;
        }
    }
out:
    inf__strmap_release(&files);
    return rc;
}

inf_status inf_safetensors_open_index(const char *index_path, struct inf_safetensors **out,
                                      struct inf_error *err)
{
    struct inf__mapping m;
    struct inf_safetensors *st = NULL;
    json_error_t jerr;
    json_t *root = NULL;
    bool shard_error = false;
    inf_status rc;

    *out = NULL;
    rc = inf__map_file(index_path, true, &m, err);
    if (rc != INF_OK)
        return rc;
    if (m.size > INF_ST_MAX_HEADER) {
        rc = inf_error_set(err, INF_ELIMIT, "'%s': an index of %" PRIu64 " bytes is too large",
                           index_path, m.size);
        goto out;
    }
    root = json_loadb((const char *)m.data, (size_t)m.size, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        rc = inf_error_set(err, INF_EFORMAT, "'%s': line %d, column %d: %s", index_path, jerr.line,
                           jerr.column, jerr.text);
        goto out;
    }
    if ((rc = new_handle(&st, err)) != INF_OK)
        goto out;
    rc = parse_index(st, index_path, root, &shard_error, err);
    if (rc != INF_OK) {
        if (!shard_error)
            inf_error_prefix(err, "'%s'", index_path);
        inf_safetensors_free(st);
        goto out;
    }
    *out = st;
out:
    json_decref(root);
    inf__unmap(&m);
    return rc;
}

/* ---- accessors ---- */

void inf_safetensors_free(struct inf_safetensors *st)
{
    if (!st)
        return;
    for (size_t i = 0; i < st->n_shards; i++)
        inf__unmap(&st->shards[i].map);
    free(st->shards);
    free(st->tensors);
    free(st->meta);
    inf__strmap_release(&st->names);
    inf__strmap_release(&st->meta_keys);
    inf__arena_release(&st->arena);
    free(st);
}

size_t inf_safetensors_n_tensors(const struct inf_safetensors *st)
{
    return st->n_tensors;
}

const struct inf_st_tensor *inf_safetensors_tensor_at(const struct inf_safetensors *st, size_t i)
{
    return i < st->n_tensors ? &st->tensors[i] : NULL;
}

const struct inf_st_tensor *inf_safetensors_find_tensor(const struct inf_safetensors *st,
                                                        const char *name)
{
    uint64_t idx;
    if (!name || !inf__strmap_find(&st->names, name, strlen(name), &idx))
        return NULL;
    return &st->tensors[idx];
}

size_t inf_safetensors_n_metadata(const struct inf_safetensors *st)
{
    return st->n_meta;
}

bool inf_safetensors_metadata_at(const struct inf_safetensors *st, size_t i, const char **key,
                                 const char **value)
{
    if (i >= st->n_meta)
        return false;
    if (key)
        *key = st->meta[i].key;
    if (value)
        *value = st->meta[i].value;
    return true;
}

const char *inf_safetensors_metadata(const struct inf_safetensors *st, const char *key)
{
    uint64_t idx;
    if (!key || !inf__strmap_find(&st->meta_keys, key, strlen(key), &idx))
        return NULL;
    return st->meta[idx].value;
}

size_t inf_safetensors_n_shards(const struct inf_safetensors *st)
{
    return st->n_shards;
}

const char *inf_safetensors_shard_path(const struct inf_safetensors *st, size_t i)
{
    return i < st->n_shards ? st->shards[i].path : NULL;
}

uint64_t inf_safetensors_index_total_size(const struct inf_safetensors *st)
{
    return st->total_size;
}

inf_status inf_safetensors_check_supported(const struct inf_safetensors *st, struct inf_error *err)
{
    for (size_t i = 0; i < st->n_tensors; i++) {
        const struct inf_st_tensor *t = &st->tensors[i];
        if (!dtypes[t->dtype].supported) {
            char q[112];
            quote(q, sizeof(q), t->name);
            return inf_error_set(err, INF_EUNSUPPORTED,
                                 "tensor '%s': dtype %s is not supported yet", q,
                                 dtypes[t->dtype].name);
        }
    }
    return INF_OK;
}
