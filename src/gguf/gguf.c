/*
 * gguf.c - the GGUF reader: parse and check a file image (mapped or in memory), then answer
 * lookups from the parsed copy.
 *
 * Parsing is one forward pass with a cursor that never reads past the image: every read asks
 * for its bytes first and fails, naming the offset and the field, when they are not there.
 * Counts are checked against the bytes that remain (at the smallest size an element can take)
 * before anything is allocated for them, so a hostile count costs nothing.
 *
 * src/gguf/ owns model file formats: this reader, the writer (gguf_writer.c), the ggml type
 * table and checked tensor sizes (types.c), deep value checks (check.c), safetensors
 * (safetensors.c), format detection (detect.c) and file mapping (util.c).
 */
#include "inferno/gguf.h"

#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "gguf/internal.h"

/* The smallest encodings: a key/value is key length + 1 key byte + type + 1 value byte; a
 * tensor info is name length + type + n_dims (0) + offset. */
#define MIN_KV_BYTES     (8u + 1u + 4u + 1u)
#define MIN_TENSOR_BYTES (8u + 4u + 4u + 8u)
#define HEADER_BYTES     24u

struct inf_gguf {
    struct inf__mapping map; /* map.map is NULL for memory images */
    const uint8_t *data;
    uint64_t size;
    uint32_t version;
    bool big_endian;
    uint32_t alignment;
    uint64_t data_offset;
    struct inf_gguf_kv *kvs;
    size_t n_kv;
    struct inf_gguf_tensor *tensors;
    size_t n_tensors;
    struct inf__strmap kv_index;
    struct inf__strmap tensor_index;
    struct inf__arena arena;
};

/* ---- the cursor ---- */

struct cur {
    const uint8_t *b;
    uint64_t size, pos;
    bool be;   /* the file is big-endian */
    bool swap; /* its byte order differs from the host's */
    struct inf__arena *arena;
    struct inf_error *err;
    char where[160]; /* what is being read: "header", "metadata key 3", "tensor 'x'" */
};

static inf_status fail(struct cur *c, uint64_t at, inf_status code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static inf_status fail(struct cur *c, uint64_t at, inf_status code, const char *fmt, ...)
{
    char msg[320];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return inf_error_set(c->err, code, "offset %" PRIu64 ": %s: %s", at, c->where, msg);
}

static void where_name(struct cur *c, const char *what, const char *s, uint64_t len)
{
    char q[112];
    inf__printable(q, sizeof(q), s, len);
    snprintf(c->where, sizeof(c->where), "%s '%s'", what, q);
}

static uint64_t remain(const struct cur *c)
{
    return c->size - c->pos;
}

static inf_status take(struct cur *c, uint64_t n, const char *field, const uint8_t **p)
{
    if (n > remain(c))
        return fail(c, c->pos, INF_EFORMAT, "%s needs %" PRIu64 " bytes but %" PRIu64 " remain",
                    field, n, remain(c));
    *p = c->b + c->pos;
    c->pos += n;
    return INF_OK;
}

static uint32_t ld32(const struct cur *c, const uint8_t *p)
{
    uint32_t v = inf__le32(p);
    return c->be ? inf__bswap32(v) : v;
}

static uint64_t ld64(const struct cur *c, const uint8_t *p)
{
    uint64_t v = inf__le64(p);
    return c->be ? inf__bswap64(v) : v;
}

static inf_status rd_u32(struct cur *c, const char *field, uint32_t *v)
{
    const uint8_t *p = NULL;
    inf_status rc = take(c, 4, field, &p);
    if (rc == INF_OK)
        *v = ld32(c, p);
    return rc;
}

static inf_status rd_u64(struct cur *c, const char *field, uint64_t *v)
{
    const uint8_t *p = NULL;
    inf_status rc = take(c, 8, field, &p);
    if (rc == INF_OK)
        *v = ld64(c, p);
    return rc;
}

#define NO_ELEM UINT64_MAX

/*
 * A string (u64 length + bytes) copied into the arena with a NUL; max 0 means no limit. elem is
 * the index within an array, for messages (NO_ELEM outside arrays). Messages are formatted only
 * on failure: vocabularies hold hundreds of thousands of strings.
 */
static inf_status rd_str(struct cur *c, const char *field, uint64_t elem, uint64_t max,
                         struct inf_gguf_str *out)
{
    uint64_t at = c->pos, len;
    char pre[40] = "";

    if (remain(c) < 8 || (len = ld64(c, c->b + c->pos)) > remain(c) - 8 || (max && len > max)) {
        if (elem != NO_ELEM)
            snprintf(pre, sizeof(pre), "element %" PRIu64 ": ", elem);
        if (remain(c) < 8)
            return fail(c, at, INF_EFORMAT, "%s%s length needs 8 bytes but %" PRIu64 " remain", pre,
                        field, remain(c));
        len = ld64(c, c->b + c->pos);
        if (len > remain(c) - 8)
            return fail(c, at, INF_EFORMAT,
                        "%s%s length %" PRIu64 " exceeds the %" PRIu64 " bytes that remain", pre,
                        field, len, remain(c) - 8);
        return fail(c, at, INF_EFORMAT,
                    "%s%s of %" PRIu64 " bytes is longer than the %" PRIu64 " allowed", pre, field,
                    len, max);
    }
    char *s = inf__arena_strndup(c->arena, (const char *)c->b + c->pos + 8, (size_t)len);
    if (!s)
        return inf_error_set(c->err, INF_ENOMEM, "out of memory");
    c->pos += 8 + len;
    out->data = s;
    out->len = len;
    return INF_OK;
}

static inf_status rd_array(struct cur *c, struct inf_gguf_array *arr, int depth);

/* One value of type into out (the scalar members of the union, a string or an array). */
static inf_status rd_value(struct cur *c, uint64_t at, uint32_t type, struct inf_gguf_value *out,
                           int depth)
{
    const uint8_t *p = NULL;
    inf_status rc;
    size_t size = inf_gguf_type_size(type);

    out->type = (enum inf_gguf_type)type;
    if (size) {
        rc = take(c, size, inf_gguf_type_name(type), &p);
        if (rc != INF_OK)
            return rc;
        /* every scalar member starts at the union's first byte */
        memcpy(&out->u64, p, size);
        if (c->swap)
            inf__bswap_array(&out->u64, size, 1);
        return INF_OK;
    }
    if (type == INF_GGUF_TYPE_STRING)
        return rd_str(c, "string", NO_ELEM, 0, &out->str);
    if (type == INF_GGUF_TYPE_ARRAY)
        return rd_array(c, &out->arr, depth + 1);
    return fail(c, at, INF_EFORMAT, "unknown value type %" PRIu32, type);
}

static inf_status rd_array(struct cur *c, struct inf_gguf_array *arr, int depth)
{
    uint64_t at = c->pos, n, min, esz, bytes;
    uint32_t type;
    inf_status rc;
    void *data;

    if (depth > INF_GGUF_MAX_DEPTH)
        return fail(c, at, INF_EFORMAT, "arrays nested deeper than %d levels", INF_GGUF_MAX_DEPTH);
    rc = rd_u32(c, "array element type", &type);
    if (rc != INF_OK)
        return rc;
    if (type >= INF_GGUF_TYPE_COUNT)
        return fail(c, at, INF_EFORMAT, "array of unknown element type %" PRIu32, type);
    rc = rd_u64(c, "array length", &n);
    if (rc != INF_OK)
        return rc;
    esz = inf_gguf_type_size(type);
    min = esz;
    if (type == INF_GGUF_TYPE_STRING) {
        min = 8;
        esz = sizeof(struct inf_gguf_str);
    } else if (type == INF_GGUF_TYPE_ARRAY) {
        min = 12;
        esz = sizeof(struct inf_gguf_array);
    }
    if (n > remain(c) / min)
        return fail(c, at, INF_EFORMAT,
                    "array of %" PRIu64 " %s elements does not fit in the %" PRIu64
                    " bytes that remain",
                    n, inf_gguf_type_name(type), remain(c));
    if (!inf__mul_u64(n, esz, &bytes) || bytes > SIZE_MAX)
        return inf_error_set(c->err, INF_ENOMEM, "out of memory");
    data = inf__arena_alloc(c->arena, (size_t)bytes);
    if (!data)
        return inf_error_set(c->err, INF_ENOMEM, "out of memory");
    arr->type = (enum inf_gguf_type)type;
    arr->n = n;
    arr->data = data;
    if (type == INF_GGUF_TYPE_STRING) {
        struct inf_gguf_str *s = data;
        for (uint64_t i = 0; i < n; i++) {
            rc = rd_str(c, "string", i, 0, &s[i]);
            if (rc != INF_OK)
                return rc;
        }
    } else if (type == INF_GGUF_TYPE_ARRAY) {
        struct inf_gguf_array *a = data;
        for (uint64_t i = 0; i < n; i++) {
            rc = rd_array(c, &a[i], depth + 1);
            if (rc != INF_OK)
                return rc;
        }
    } else {
        const uint8_t *p = NULL;
        rc = take(c, bytes, "array data", &p);
        if (rc != INF_OK)
            return rc;
        memcpy(data, p, (size_t)bytes);
        if (c->swap)
            inf__bswap_array(data, (size_t)esz, n);
    }
    return INF_OK;
}

/* ---- parsing ---- */

static inf_status parse_header(struct inf_gguf *g, struct cur *c, uint64_t *n_tensors,
                               uint64_t *n_kv)
{
    const uint8_t *p = NULL;
    uint32_t version;
    inf_status rc;

    snprintf(c->where, sizeof(c->where), "header");
    if (g->size < 4 || memcmp(g->data, "GGUF", 4) != 0) {
        char magic[16] = "";
        size_t len = 0;
        for (uint64_t i = 0; i < 4 && i < g->size; i++)
            len += (size_t)snprintf(magic + len, sizeof(magic) - len, "%s%02x", i ? " " : "",
                                    g->data[i]);
        return fail(c, 0, INF_EFORMAT, "not a GGUF file (magic '%s', expected 47 47 55 46)", magic);
    }
    c->pos = 4;
    rc = take(c, 4, "version", &p);
    if (rc != INF_OK)
        return rc;
    version = inf__le32(p);
    /* A big-endian file stores a small version number in its last two bytes. */
    if (version != 0 && (version & 0xffffu) == 0) {
        version = inf__bswap32(version);
        c->be = true;
    }
    c->swap = c->be == inf__host_is_le();
    g->big_endian = c->be;
    g->version = version;
    if (version == 1)
        return fail(c, 4, INF_EUNSUPPORTED,
                    "GGUF version 1 is not supported (it predates 64-bit counts); convert the "
                    "file again with a current llama.cpp");
    if (version != 2 && version != 3)
        return fail(c, 4, INF_EUNSUPPORTED,
                    "GGUF version %" PRIu32 " is not supported (only versions 2 and 3 are)",
                    version);
    rc = rd_u64(c, "tensor count", n_tensors);
    if (rc == INF_OK)
        rc = rd_u64(c, "metadata count", n_kv);
    if (rc != INF_OK)
        return rc;
    if (*n_kv > remain(c) / MIN_KV_BYTES)
        return fail(c, 16, INF_EFORMAT,
                    "metadata count %" PRIu64 " is more than the %" PRIu64
                    " bytes that remain can hold",
                    *n_kv, remain(c));
    if (*n_tensors > remain(c) / MIN_TENSOR_BYTES ||
        *n_tensors * MIN_TENSOR_BYTES > remain(c) - *n_kv * MIN_KV_BYTES)
        return fail(c, 8, INF_EFORMAT,
                    "tensor count %" PRIu64 " is more than the %" PRIu64
                    " bytes that remain can hold",
                    *n_tensors, remain(c));
    return INF_OK;
}

static inf_status parse_kvs(struct inf_gguf *g, struct cur *c, uint64_t n_kv)
{
    inf_status rc;

    g->kvs = inf__arena_alloc(&g->arena, (size_t)n_kv * sizeof(*g->kvs));
    if (!g->kvs || inf__strmap_init(&g->kv_index, n_kv) != INF_OK)
        return inf_error_set(c->err, INF_ENOMEM, "out of memory");
    for (uint64_t i = 0; i < n_kv; i++) {
        struct inf_gguf_kv *kv = &g->kvs[i];
        uint64_t at = c->pos, prev;
        uint32_t type;

        snprintf(c->where, sizeof(c->where), "metadata key %" PRIu64, i);
        kv->offset = at;
        rc = rd_str(c, "string", NO_ELEM, INF_GGUF_MAX_KEY, &kv->key);
        if (rc != INF_OK)
            return rc;
        if (kv->key.len == 0)
            return fail(c, at, INF_EFORMAT, "empty key");
        where_name(c, "metadata", kv->key.data, kv->key.len);
        if (!inf__strmap_insert(&g->kv_index, kv->key.data, kv->key.len, i, &prev))
            return fail(c, at, INF_EFORMAT, "duplicate key (first at offset %" PRIu64 ")",
                        g->kvs[prev].offset);
        rc = rd_u32(c, "value type", &type);
        if (rc != INF_OK)
            return rc;
        rc = rd_value(c, c->pos - 4, type, &kv->value, 0);
        if (rc != INF_OK)
            return rc;
        g->n_kv = (size_t)i + 1;
    }
    return INF_OK;
}

static inf_status parse_alignment(struct inf_gguf *g, struct cur *c)
{
    const struct inf_gguf_kv *kv = inf_gguf_find_kv(g, "general.alignment");

    g->alignment = INF_GGUF_DEFAULT_ALIGNMENT;
    if (!kv)
        return INF_OK;
    snprintf(c->where, sizeof(c->where), "metadata 'general.alignment'");
    if (kv->value.type != INF_GGUF_TYPE_UINT32)
        return fail(c, kv->offset, INF_EFORMAT, "must be uint32, not %s",
                    inf_gguf_type_name(kv->value.type));
    if (kv->value.u32 == 0 || (kv->value.u32 & (kv->value.u32 - 1)) != 0)
        return fail(c, kv->offset, INF_EFORMAT, "%" PRIu32 " is not a power of two", kv->value.u32);
    g->alignment = kv->value.u32;
    return INF_OK;
}

static inf_status parse_tensor_infos(struct inf_gguf *g, struct cur *c, uint64_t n_tensors)
{
    inf_status rc;

    g->tensors = inf__arena_alloc(&g->arena, (size_t)n_tensors * sizeof(*g->tensors));
    if (!g->tensors || inf__strmap_init(&g->tensor_index, n_tensors) != INF_OK)
        return inf_error_set(c->err, INF_ENOMEM, "out of memory");
    for (uint64_t i = 0; i < n_tensors; i++) {
        struct inf_gguf_tensor *t = &g->tensors[i];
        uint64_t at = c->pos, prev;

        snprintf(c->where, sizeof(c->where), "tensor %" PRIu64, i);
        t->info_offset = at;
        rc = rd_str(c, "name", NO_ELEM, INF_GGUF_MAX_NAME, &t->name);
        if (rc != INF_OK)
            return rc;
        where_name(c, "tensor", t->name.data, t->name.len);
        if (!inf__strmap_insert(&g->tensor_index, t->name.data, t->name.len, i, &prev))
            return fail(c, at, INF_EFORMAT, "duplicate tensor name (first at offset %" PRIu64 ")",
                        g->tensors[prev].info_offset);
        rc = rd_u32(c, "dimension count", &t->n_dims);
        if (rc != INF_OK)
            return rc;
        if (t->n_dims > INF_GGUF_MAX_DIMS)
            return fail(c, c->pos - 4, INF_EFORMAT, "%" PRIu32 " dimensions, at most %d allowed",
                        t->n_dims, INF_GGUF_MAX_DIMS);
        for (uint32_t d = 0; d < INF_GGUF_MAX_DIMS; d++) {
            uint64_t ne = 1;
            if (d < t->n_dims) {
                rc = rd_u64(c, "dimension", &ne);
                if (rc != INF_OK)
                    return rc;
                if (ne > INT64_MAX)
                    return fail(c, c->pos - 8, INF_EFORMAT,
                                "dimension %" PRIu32 " is %" PRIu64 ", more than INT64_MAX", d, ne);
            }
            t->ne[d] = (int64_t)ne;
        }
        rc = rd_u32(c, "type", &t->type);
        if (rc == INF_OK)
            rc = rd_u64(c, "data offset", &t->offset);
        if (rc != INF_OK)
            return rc;
        struct inf_ggml_size sz;
        rc = inf_ggml_size(t->type, t->n_dims, t->ne, c->where, &sz, c->err);
        if (rc != INF_OK) {
            inf_error_prefix(c->err, "offset %" PRIu64, at);
            return rc;
        }
        t->n_elements = sz.n_elements;
        t->n_bytes = sz.n_bytes;
        g->n_tensors = (size_t)i + 1;
    }
    return INF_OK;
}

struct extent {
    uint64_t start, end;
    size_t idx;
};

static int cmp_extent(const void *a, const void *b)
{
    const struct extent *x = a, *y = b;
    if (x->start != y->start)
        return x->start < y->start ? -1 : 1;
    if (x->end != y->end)
        return x->end < y->end ? -1 : 1;
    return 0;
}

/* Every tensor's data lies inside the file, aligned, and no two tensors share bytes. */
static inf_status check_extents(struct inf_gguf *g, struct inf_error *err)
{
    struct extent *ext = NULL;
    size_t n_ext = 0;
    inf_status rc = INF_OK;

    if (g->n_tensors == 0)
        return INF_OK;
    ext = malloc(g->n_tensors * sizeof(*ext));
    if (!ext)
        return inf_error_set(err, INF_ENOMEM, "out of memory");
    for (size_t i = 0; i < g->n_tensors; i++) {
        struct inf_gguf_tensor *t = &g->tensors[i];
        char name[112];
        uint64_t start, end;

        inf__printable(name, sizeof(name), t->name.data, t->name.len);
        if (t->offset % g->alignment != 0) {
            rc = inf_error_set(err, INF_EFORMAT,
                               "tensor '%s': data offset %" PRIu64
                               " is not a multiple of the alignment %" PRIu32,
                               name, t->offset, g->alignment);
            goto out;
        }
        if (!inf__add_u64(g->data_offset, t->offset, &start) ||
            !inf__add_u64(start, t->n_bytes, &end)) {
            rc = inf_error_set(err, INF_EFORMAT,
                               "tensor '%s': data offset %" PRIu64 " + %" PRIu64 " + %" PRIu64
                               " bytes overflows",
                               name, g->data_offset, t->offset, t->n_bytes);
            goto out;
        }
        if (end > g->size) {
            rc = inf_error_set(err, INF_EFORMAT,
                               "tensor '%s': data range [%" PRIu64 ", %" PRIu64
                               ") exceeds file size %" PRIu64,
                               name, start, end, g->size);
            goto out;
        }
        t->data = g->data + start;
        if (t->n_bytes)
            ext[n_ext++] = (struct extent){.start = start, .end = end, .idx = i};
    }
    qsort(ext, n_ext, sizeof(*ext), cmp_extent);
    for (size_t i = 1; i < n_ext; i++) {
        if (ext[i].start < ext[i - 1].end) {
            const struct inf_gguf_tensor *a = &g->tensors[ext[i - 1].idx];
            const struct inf_gguf_tensor *b = &g->tensors[ext[i].idx];
            char na[80], nb[80];
            inf__printable(na, sizeof(na), a->name.data, a->name.len);
            inf__printable(nb, sizeof(nb), b->name.data, b->name.len);
            rc = inf_error_set(err, INF_EFORMAT,
                               "tensors '%s' and '%s' overlap: [%" PRIu64 ", %" PRIu64
                               ") and [%" PRIu64 ", %" PRIu64 ")",
                               na, nb, ext[i - 1].start, ext[i - 1].end, ext[i].start, ext[i].end);
            goto out;
        }
    }
out:
    free(ext);
    return rc;
}

static inf_status parse(struct inf_gguf *g, struct inf_error *err)
{
    struct cur c = {.b = g->data, .size = g->size, .arena = &g->arena, .err = err};
    uint64_t n_tensors = 0, n_kv = 0;
    inf_status rc;

    rc = parse_header(g, &c, &n_tensors, &n_kv);
    if (rc == INF_OK)
        rc = parse_kvs(g, &c, n_kv);
    if (rc == INF_OK)
        rc = parse_alignment(g, &c);
    if (rc == INF_OK)
        rc = parse_tensor_infos(g, &c, n_tensors);
    if (rc != INF_OK)
        return rc;
    snprintf(c.where, sizeof(c.where), "tensor data");
    if (!inf__align_up(c.pos, g->alignment, &g->data_offset))
        return fail(&c, c.pos, INF_EFORMAT, "the data section offset overflows");
    return check_extents(g, err);
}

static inf_status open_image(struct inf_gguf *g, struct inf_gguf **out, struct inf_error *err)
{
    inf_status rc = parse(g, err);
    if (rc != INF_OK) {
        inf_gguf_free(g);
        return rc;
    }
    *out = g;
    return INF_OK;
}

inf_status inf_gguf_open_memory(const void *data, size_t size, struct inf_gguf **out,
                                struct inf_error *err)
{
    struct inf_gguf *g;

    *out = NULL;
    if (!data && size)
        return inf_error_set(err, INF_EINVAL, "no data");
    g = calloc(1, sizeof(*g));
    if (!g)
        return inf_error_set(err, INF_ENOMEM, "out of memory");
    g->data = data ? data : (const void *)"";
    g->size = size;
    return open_image(g, out, err);
}

inf_status inf_gguf_open_file(const char *path, struct inf_gguf **out, struct inf_error *err)
{
    struct inf_gguf *g;
    inf_status rc;

    *out = NULL;
    g = calloc(1, sizeof(*g));
    if (!g)
        return inf_error_set(err, INF_ENOMEM, "out of memory");
    /* the header is read front to back: read-ahead helps while parsing it, but afterwards it
     * would only pull in tensor data that a metadata scan never looks at */
    rc = inf__map_file(path, true, &g->map, err);
    if (rc != INF_OK) {
        free(g);
        return rc;
    }
    g->data = g->map.data;
    g->size = g->map.size;
    rc = open_image(g, out, err);
    if (rc != INF_OK)
        inf_error_prefix(err, "'%s'", path);
    else
        inf__map_random(&g->map);
    return rc;
}

void inf_gguf_free(struct inf_gguf *g)
{
    if (!g)
        return;
    inf__strmap_release(&g->kv_index);
    inf__strmap_release(&g->tensor_index);
    inf__arena_release(&g->arena);
    inf__unmap(&g->map);
    free(g);
}

void inf_gguf_prefetch(const struct inf_gguf *g)
{
    if (!g || !g->map.map || g->data_offset >= g->size)
        return;
    long page = sysconf(_SC_PAGESIZE);
    uint64_t start = g->data_offset & ~((uint64_t)(page > 0 ? page : 4096) - 1);
    char *base = (char *)g->map.map + start;
    size_t len = (size_t)(g->size - start);
    (void)madvise(base, len, MADV_NORMAL);
    (void)madvise(base, len, MADV_WILLNEED);
}

uint32_t inf_gguf_version(const struct inf_gguf *g)
{
    return g->version;
}

bool inf_gguf_is_big_endian(const struct inf_gguf *g)
{
    return g->big_endian;
}

uint32_t inf_gguf_alignment(const struct inf_gguf *g)
{
    return g->alignment;
}

uint64_t inf_gguf_data_offset(const struct inf_gguf *g)
{
    return g->data_offset;
}

const void *inf_gguf_bytes(const struct inf_gguf *g, uint64_t *size)
{
    if (size)
        *size = g->size;
    return g->data;
}

size_t inf_gguf_n_kv(const struct inf_gguf *g)
{
    return g->n_kv;
}

const struct inf_gguf_kv *inf_gguf_kv_at(const struct inf_gguf *g, size_t i)
{
    return i < g->n_kv ? &g->kvs[i] : NULL;
}

const struct inf_gguf_kv *inf_gguf_find_kv(const struct inf_gguf *g, const char *key)
{
    uint64_t idx;
    if (!key || !inf__strmap_find(&g->kv_index, key, strlen(key), &idx) || idx >= g->n_kv)
        return NULL;
    return &g->kvs[idx];
}

size_t inf_gguf_n_tensors(const struct inf_gguf *g)
{
    return g->n_tensors;
}

const struct inf_gguf_tensor *inf_gguf_tensor_at(const struct inf_gguf *g, size_t i)
{
    return i < g->n_tensors ? &g->tensors[i] : NULL;
}

const struct inf_gguf_tensor *inf_gguf_find_tensor(const struct inf_gguf *g, const char *name)
{
    uint64_t idx;
    if (!name || !inf__strmap_find(&g->tensor_index, name, strlen(name), &idx) ||
        idx >= g->n_tensors)
        return NULL;
    return &g->tensors[idx];
}

inf_status inf_gguf_check_compute(const struct inf_gguf *g, struct inf_error *err)
{
    if (g->big_endian && g->n_tensors)
        return inf_error_set(err, INF_EUNSUPPORTED,
                             "tensor data is big-endian, which is not supported");
    for (size_t i = 0; i < g->n_tensors; i++) {
        const struct inf_gguf_tensor *t = &g->tensors[i];
        const struct inf_ggml_type_info *info = inf_ggml_type_info(t->type);
        if (!info || !info->compute) {
            char name[112], what[128];
            inf__printable(name, sizeof(name), t->name.data, t->name.len);
            snprintf(what, sizeof(what), "tensor '%s'", name);
            return inf_ggml_type_check_compute(t->type, what, err);
        }
    }
    return INF_OK;
}

/* ---- values ---- */

static bool is_signed_int(uint32_t t)
{
    return t == INF_GGUF_TYPE_INT8 || t == INF_GGUF_TYPE_INT16 || t == INF_GGUF_TYPE_INT32 ||
           t == INF_GGUF_TYPE_INT64;
}

static bool is_unsigned_int(uint32_t t)
{
    return t == INF_GGUF_TYPE_UINT8 || t == INF_GGUF_TYPE_UINT16 || t == INF_GGUF_TYPE_UINT32 ||
           t == INF_GGUF_TYPE_UINT64;
}

static int64_t signed_value(const struct inf_gguf_value *v)
{
    switch (v->type) {
    case INF_GGUF_TYPE_INT8:
        return v->i8;
    case INF_GGUF_TYPE_INT16:
        return v->i16;
    case INF_GGUF_TYPE_INT32:
        return v->i32;
    default:
        return v->i64;
    }
}

static uint64_t unsigned_value(const struct inf_gguf_value *v)
{
    switch (v->type) {
    case INF_GGUF_TYPE_UINT8:
        return v->u8;
    case INF_GGUF_TYPE_UINT16:
        return v->u16;
    case INF_GGUF_TYPE_UINT32:
        return v->u32;
    default:
        return v->u64;
    }
}

inf_status inf_gguf_value_as_u64(const struct inf_gguf_value *v, uint64_t *out)
{
    if (is_unsigned_int(v->type)) {
        *out = unsigned_value(v);
        return INF_OK;
    }
    if (is_signed_int(v->type)) {
        int64_t s = signed_value(v);
        if (s < 0)
            return INF_ERANGE;
        *out = (uint64_t)s;
        return INF_OK;
    }
    return INF_ETYPE;
}

inf_status inf_gguf_value_as_i64(const struct inf_gguf_value *v, int64_t *out)
{
    if (is_signed_int(v->type)) {
        *out = signed_value(v);
        return INF_OK;
    }
    if (is_unsigned_int(v->type)) {
        uint64_t u = unsigned_value(v);
        if (u > INT64_MAX)
            return INF_ERANGE;
        *out = (int64_t)u;
        return INF_OK;
    }
    return INF_ETYPE;
}

#define EXACT_F64 (UINT64_C(1) << 53)

inf_status inf_gguf_value_as_f64(const struct inf_gguf_value *v, double *out)
{
    if (v->type == INF_GGUF_TYPE_FLOAT32) {
        *out = v->f32;
        return INF_OK;
    }
    if (v->type == INF_GGUF_TYPE_FLOAT64) {
        *out = v->f64;
        return INF_OK;
    }
    if (is_unsigned_int(v->type)) {
        uint64_t u = unsigned_value(v);
        if (u > EXACT_F64)
            return INF_ERANGE;
        *out = (double)u;
        return INF_OK;
    }
    if (is_signed_int(v->type)) {
        int64_t s = signed_value(v);
        if (s > (int64_t)EXACT_F64 || s < -(int64_t)EXACT_F64)
            return INF_ERANGE;
        *out = (double)s;
        return INF_OK;
    }
    return INF_ETYPE;
}

void inf_gguf_array_elem(const struct inf_gguf_array *a, uint64_t i, struct inf_gguf_value *out)
{
    size_t size = inf_gguf_type_size(a->type);

    memset(out, 0, sizeof(*out));
    out->type = a->type;
    if (size)
        memcpy(&out->u64, (const char *)a->data + i * size, size);
    else if (a->type == INF_GGUF_TYPE_STRING)
        out->str = ((const struct inf_gguf_str *)a->data)[i];
    else if (a->type == INF_GGUF_TYPE_ARRAY)
        out->arr = ((const struct inf_gguf_array *)a->data)[i];
}

/* ---- typed getters ---- */

static inf_status lookup(const struct inf_gguf *g, const char *key, const struct inf_gguf_kv **kv,
                         struct inf_error *err)
{
    *kv = inf_gguf_find_kv(g, key);
    if (!*kv)
        return inf_error_set(err, INF_ENOTFOUND, "metadata key '%s' not found", key ? key : "");
    return INF_OK;
}

static void format_value(const struct inf_gguf_value *v, char *buf, size_t size)
{
    if (is_signed_int(v->type))
        snprintf(buf, size, "%" PRId64, signed_value(v));
    else if (is_unsigned_int(v->type))
        snprintf(buf, size, "%" PRIu64, unsigned_value(v));
    else if (v->type == INF_GGUF_TYPE_FLOAT32)
        snprintf(buf, size, "%.9g", (double)v->f32);
    else if (v->type == INF_GGUF_TYPE_FLOAT64)
        snprintf(buf, size, "%.17g", v->f64);
    else
        snprintf(buf, size, "(%s)", inf_gguf_type_name(v->type));
}

static inf_status convert_error(inf_status rc, const struct inf_gguf_kv *kv, const char *want,
                                struct inf_error *err)
{
    char key[112], val[48];
    inf__printable(key, sizeof(key), kv->key.data, kv->key.len);
    if (rc == INF_ETYPE)
        return inf_error_set(err, INF_ETYPE, "metadata '%s' is %s, expected %s", key,
                             inf_gguf_type_name(kv->value.type), want);
    format_value(&kv->value, val, sizeof(val));
    return inf_error_set(err, INF_ERANGE, "metadata '%s' = %s does not fit in %s", key, val, want);
}

static inf_status get_uint(const struct inf_gguf *g, const char *key, uint64_t max,
                           const char *want, uint64_t *out, struct inf_error *err)
{
    const struct inf_gguf_kv *kv;
    inf_status rc = lookup(g, key, &kv, err);
    if (rc != INF_OK)
        return rc;
    rc = inf_gguf_value_as_u64(&kv->value, out);
    if (rc == INF_OK && *out > max)
        rc = INF_ERANGE;
    return rc == INF_OK ? INF_OK : convert_error(rc, kv, want, err);
}

static inf_status get_int(const struct inf_gguf *g, const char *key, int64_t min, int64_t max,
                          const char *want, int64_t *out, struct inf_error *err)
{
    const struct inf_gguf_kv *kv;
    inf_status rc = lookup(g, key, &kv, err);
    if (rc != INF_OK)
        return rc;
    rc = inf_gguf_value_as_i64(&kv->value, out);
    if (rc == INF_OK && (*out < min || *out > max))
        rc = INF_ERANGE;
    return rc == INF_OK ? INF_OK : convert_error(rc, kv, want, err);
}

inf_status inf_gguf_get_u32(const struct inf_gguf *g, const char *key, uint32_t *out,
                            struct inf_error *err)
{
    uint64_t v;
    inf_status rc = get_uint(g, key, UINT32_MAX, "uint32", &v, err);
    if (rc == INF_OK)
        *out = (uint32_t)v;
    return rc;
}

inf_status inf_gguf_get_u64(const struct inf_gguf *g, const char *key, uint64_t *out,
                            struct inf_error *err)
{
    return get_uint(g, key, UINT64_MAX, "uint64", out, err);
}

inf_status inf_gguf_get_i32(const struct inf_gguf *g, const char *key, int32_t *out,
                            struct inf_error *err)
{
    int64_t v;
    inf_status rc = get_int(g, key, INT32_MIN, INT32_MAX, "int32", &v, err);
    if (rc == INF_OK)
        *out = (int32_t)v;
    return rc;
}

inf_status inf_gguf_get_i64(const struct inf_gguf *g, const char *key, int64_t *out,
                            struct inf_error *err)
{
    return get_int(g, key, INT64_MIN, INT64_MAX, "int64", out, err);
}

inf_status inf_gguf_get_f64(const struct inf_gguf *g, const char *key, double *out,
                            struct inf_error *err)
{
    const struct inf_gguf_kv *kv;
    inf_status rc = lookup(g, key, &kv, err);
    if (rc != INF_OK)
        return rc;
    rc = inf_gguf_value_as_f64(&kv->value, out);
    return rc == INF_OK ? INF_OK : convert_error(rc, kv, "float64", err);
}

inf_status inf_gguf_get_f32(const struct inf_gguf *g, const char *key, float *out,
                            struct inf_error *err)
{
    const struct inf_gguf_kv *kv;
    double d;
    inf_status rc = lookup(g, key, &kv, err);
    if (rc != INF_OK)
        return rc;
    rc = inf_gguf_value_as_f64(&kv->value, &d);
    if (rc == INF_OK && kv->value.type == INF_GGUF_TYPE_FLOAT64 && isfinite(d) && fabs(d) > FLT_MAX)
        rc = INF_ERANGE;
    /* integers convert to float exactly up to 2^24 */
    if (rc == INF_OK && kv->value.type != INF_GGUF_TYPE_FLOAT64 &&
        kv->value.type != INF_GGUF_TYPE_FLOAT32 && fabs(d) > 16777216.0)
        rc = INF_ERANGE;
    if (rc != INF_OK)
        return convert_error(rc, kv, "float32", err);
    *out = (float)d;
    return INF_OK;
}

inf_status inf_gguf_get_bool(const struct inf_gguf *g, const char *key, bool *out,
                             struct inf_error *err)
{
    const struct inf_gguf_kv *kv;
    inf_status rc = lookup(g, key, &kv, err);
    if (rc != INF_OK)
        return rc;
    if (kv->value.type != INF_GGUF_TYPE_BOOL)
        return convert_error(INF_ETYPE, kv, "bool", err);
    *out = kv->value.b != 0;
    return INF_OK;
}

inf_status inf_gguf_get_str(const struct inf_gguf *g, const char *key, const char **out,
                            uint64_t *len, struct inf_error *err)
{
    const struct inf_gguf_kv *kv;
    inf_status rc = lookup(g, key, &kv, err);
    if (rc != INF_OK)
        return rc;
    if (kv->value.type != INF_GGUF_TYPE_STRING)
        return convert_error(INF_ETYPE, kv, "string", err);
    *out = kv->value.str.data;
    if (len)
        *len = kv->value.str.len;
    return INF_OK;
}

inf_status inf_gguf_get_arr(const struct inf_gguf *g, const char *key, uint32_t elem_type,
                            const struct inf_gguf_array **out, struct inf_error *err)
{
    const struct inf_gguf_kv *kv;
    inf_status rc = lookup(g, key, &kv, err);
    if (rc != INF_OK)
        return rc;
    if (kv->value.type != INF_GGUF_TYPE_ARRAY)
        return convert_error(INF_ETYPE, kv, "array", err);
    if (elem_type < INF_GGUF_TYPE_COUNT && kv->value.arr.type != elem_type) {
        char k[112];
        inf__printable(k, sizeof(k), kv->key.data, kv->key.len);
        return inf_error_set(err, INF_ETYPE, "metadata '%s' is an array of %s, expected %s", k,
                             inf_gguf_type_name(kv->value.arr.type), inf_gguf_type_name(elem_type));
    }
    *out = &kv->value.arr;
    return INF_OK;
}
