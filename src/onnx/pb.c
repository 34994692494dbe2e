/*
 * pb.c - a protobuf wire-format reader for the ONNX messages (ModelProto and the messages in
 * it, TensorProto files). Everything is read from memory between two pointers: every length
 * is checked against the bytes that remain before it is used, varints longer than 10 bytes
 * and field numbers outside 1..2^29-1 are malformed, groups (wire types 3 and 4) are refused.
 *
 * Why hand-written rather than protobuf-c: ONNX needs ~15 messages of which we read ~60
 * fields; this reader plus the decoding in load.c and tensor.c is smaller than the generated
 * code for onnx.proto, needs no build-time generator, and decodes straight into our own
 * structures (protobuf-c would still need a second walk converting its structs).
 */
#include <stdlib.h>

#include "onnx/onnx_internal.h"

static bool varint(struct inf__pb *b, uint64_t *v)
{
    uint64_t r = 0;
    for (int shift = 0; shift < 70; shift += 7) {
        if (b->p >= b->end)
            return false;
        uint8_t c = *b->p++;
        if (shift == 63 && (c & 0x7e))
            return false; /* more than 64 bits */
        r |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) {
            *v = r;
            return true;
        }
    }
    return false;
}

bool inf__pb_next(struct inf__pb *b, struct inf__pb_field *f, bool *bad)
{
    uint64_t key, len;
    *bad = false;
    if (b->p >= b->end)
        return false;
    if (!varint(b, &key) || (key >> 3) == 0 || (key >> 3) > 536870911u)
        goto malformed;
    f->number = (uint32_t)(key >> 3);
    f->wt = (unsigned)(key & 7);
    f->data = b->p; /* a valid pointer with len 0 for the fields that are not LEN */
    f->len = 0;
    f->v = 0;
    switch (f->wt) {
    case INF__PB_VARINT:
        if (!varint(b, &f->v))
            goto malformed;
        return true;
    case INF__PB_I64:
        if (b->end - b->p < 8)
            goto malformed;
        for (int i = 0; i < 8; i++)
            f->v |= (uint64_t)b->p[i] << (8 * i);
        b->p += 8;
        return true;
    case INF__PB_I32:
        if (b->end - b->p < 4)
            goto malformed;
        for (int i = 0; i < 4; i++)
            f->v |= (uint64_t)b->p[i] << (8 * i);
        b->p += 4;
        return true;
    case INF__PB_LEN:
        if (!varint(b, &len) || len > (uint64_t)(b->end - b->p))
            goto malformed;
        f->data = b->p;
        f->len = (size_t)len;
        b->p += len;
        return true;
    default:
        goto malformed;
    }
malformed:
    *bad = true;
    return false;
}

static bool grow(void **arr, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return true;
    size_t nc = *cap ? *cap * 2 : 8;
    while (nc < need)
        nc *= 2;
    void *p = realloc(*arr, nc * elem);
    if (!p)
        return false;
    *arr = p;
    *cap = nc;
    return true;
}

bool inf__pb_append_i64(const struct inf__pb_field *f, int64_t **arr, size_t *n, size_t *cap,
                        size_t max_count)
{
    if (f->wt == INF__PB_VARINT) {
        if (*n + 1 > max_count || !grow((void **)arr, cap, *n + 1, sizeof(int64_t)))
            return false;
        (*arr)[(*n)++] = (int64_t)f->v;
        return true;
    }
    if (f->wt != INF__PB_LEN)
        return false;
    struct inf__pb b = {f->data, f->data + f->len};
    /* count first: each varint ends with a byte below 0x80 */
    size_t k = 0;
    for (size_t i = 0; i < f->len; i++)
        k += !(f->data[i] & 0x80);
    if (*n + k > max_count || !grow((void **)arr, cap, *n + k, sizeof(int64_t)))
        return false;
    while (b.p < b.end) {
        uint64_t v;
        if (!varint(&b, &v))
            return false;
        (*arr)[(*n)++] = (int64_t)v;
    }
    return true;
}

bool inf__pb_append_f32(const struct inf__pb_field *f, float **arr, size_t *n, size_t *cap,
                        size_t max_count)
{
    size_t k;
    const uint8_t *p;
    if (f->wt == INF__PB_I32) {
        uint32_t u = (uint32_t)f->v;
        if (*n + 1 > max_count || !grow((void **)arr, cap, *n + 1, sizeof(float)))
            return false;
        memcpy(&(*arr)[(*n)++], &u, 4);
        return true;
    }
    if (f->wt != INF__PB_LEN || f->len % 4)
        return false;
    k = f->len / 4;
    p = f->data;
    if (*n + k > max_count || !grow((void **)arr, cap, *n + k, sizeof(float)))
        return false;
    for (size_t i = 0; i < k; i++) {
        uint32_t u = (uint32_t)p[4 * i] | (uint32_t)p[4 * i + 1] << 8 |
                     (uint32_t)p[4 * i + 2] << 16 | (uint32_t)p[4 * i + 3] << 24;
        memcpy(&(*arr)[(*n)++], &u, 4);
    }
    return true;
}

bool inf__pb_append_f64(const struct inf__pb_field *f, double **arr, size_t *n, size_t *cap,
                        size_t max_count)
{
    if (f->wt == INF__PB_I64) {
        if (*n + 1 > max_count || !grow((void **)arr, cap, *n + 1, sizeof(double)))
            return false;
        memcpy(&(*arr)[(*n)++], &f->v, 8);
        return true;
    }
    if (f->wt != INF__PB_LEN || f->len % 8)
        return false;
    size_t k = f->len / 8;
    if (*n + k > max_count || !grow((void **)arr, cap, *n + k, sizeof(double)))
        return false;
    for (size_t i = 0; i < k; i++) {
        uint64_t u = 0;
        for (int j = 0; j < 8; j++)
            u |= (uint64_t)f->data[8 * i + j] << (8 * j);
        memcpy(&(*arr)[(*n)++], &u, 8);
    }
    return true;
}

char *inf__pb_strdup(const struct inf__pb_field *f)
{
    char *s = malloc(f->len + 1);
    if (!s)
        return NULL;
    if (f->len)
        memcpy(s, f->data, f->len);
    s[f->len] = 0;
    return s;
}
