/*
 * gguf-dump - print a GGUF file's header, metadata and tensor infos as JSON.
 *
 *   gguf-dump [--summary] FILE.gguf
 *
 * Every metadata value is printed in full (arrays with all their elements; --summary keeps the
 * first and last 3 elements of each array instead). Strings are UTF-8 JSON strings; bytes that
 * are not valid UTF-8 are written as the lone surrogates U+DC80..U+DCFF, which is what Python's
 * errors="surrogateescape" produces, so tests/gguf_crosscheck.py can compare exactly. Floats
 * are printed with enough digits to round-trip; NaN and infinities as NaN/Infinity/-Infinity
 * (which Python's json module reads). Exit status 1 and a message on stderr when the file does
 * not parse.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "inferno/gguf.h"

static bool summary;

/* The length of a valid UTF-8 sequence at s (n bytes available), or 0. */
static size_t utf8_len(const unsigned char *s, uint64_t n)
{
    unsigned char c = s[0];
    size_t len;
    uint32_t cp;

    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

static void print_str(const char *str, uint64_t len)
{
    const unsigned char *s = (const unsigned char *)str;

    putchar('"');
    for (uint64_t i = 0; i < len;) {
        unsigned char c = s[i];
        size_t n = utf8_len(s + i, len - i);
        if (n == 0) {
            printf("\\udc%02x", c);
            i++;
        } else if (n > 1) {
            fwrite(s + i, 1, n, stdout);
            i += n;
        } else {
            if (c == '"' || c == '\\')
                printf("\\%c", c);
            else if (c < 0x20 || c == 0x7f)
                printf("\\u%04x", c);
            else
                putchar(c);
            i++;
        }
    }
    putchar('"');
}

/* digits: 9 for float32, 17 for float64 (enough to read back the same value) */
static void print_double(double d, int digits)
{
    if (isnan(d))
        fputs("NaN", stdout);
    else if (isinf(d))
        fputs(d > 0 ? "Infinity" : "-Infinity", stdout);
    else {
        char buf[40];
        snprintf(buf, sizeof(buf), "%.*g", digits, d);
        /* keep it a JSON float ("-0" would read back as the integer 0) */
        fputs(buf, stdout);
        if (!strpbrk(buf, ".e"))
            fputs(".0", stdout);
    }
}

static void print_value(const struct inf_gguf_value *v);

static void print_array(const struct inf_gguf_array *a)
{
    printf("{\"type\": \"%s\", \"n\": %" PRIu64, inf_gguf_type_name(a->type), a->n);
    if (summary && a->n > 6) {
        struct inf_gguf_value e;
        fputs(", \"first\": [", stdout);
        for (uint64_t i = 0; i < 3; i++) {
            inf_gguf_array_elem(a, i, &e);
            printf("%s", i ? ", " : "");
            print_value(&e);
        }
        fputs("], \"last\": [", stdout);
        for (uint64_t i = a->n - 3; i < a->n; i++) {
            inf_gguf_array_elem(a, i, &e);
            printf("%s", i > a->n - 3 ? ", " : "");
            print_value(&e);
        }
        fputs("]}", stdout);
        return;
    }
    fputs(", \"values\": [", stdout);
    for (uint64_t i = 0; i < a->n; i++) {
        struct inf_gguf_value e;
        inf_gguf_array_elem(a, i, &e);
        printf("%s", i ? ", " : "");
        print_value(&e);
    }
    fputs("]}", stdout);
}

static void print_value(const struct inf_gguf_value *v)
{
    switch (v->type) {
    case INF_GGUF_TYPE_UINT8:
    case INF_GGUF_TYPE_UINT16:
    case INF_GGUF_TYPE_UINT32:
    case INF_GGUF_TYPE_UINT64:
    case INF_GGUF_TYPE_INT8:
    case INF_GGUF_TYPE_INT16:
    case INF_GGUF_TYPE_INT32:
    case INF_GGUF_TYPE_INT64: {
        /* any integer fits one of the two; only a negative one is refused by as_u64 */
        uint64_t u;
        int64_t i;
        if (inf_gguf_value_as_u64(v, &u) == INF_OK)
            printf("%" PRIu64, u);
        else if (inf_gguf_value_as_i64(v, &i) == INF_OK)
            printf("%" PRId64, i);
        break;
    }
    case INF_GGUF_TYPE_FLOAT32:
        print_double(v->f32, 9);
        break;
    case INF_GGUF_TYPE_FLOAT64:
        print_double(v->f64, 17);
        break;
    case INF_GGUF_TYPE_BOOL:
        fputs(v->b ? "true" : "false", stdout);
        break;
    case INF_GGUF_TYPE_STRING:
        print_str(v->str.data, v->str.len);
        break;
    case INF_GGUF_TYPE_ARRAY:
        print_array(&v->arr);
        break;
    default:
        fputs("null", stdout);
        break;
    }
}

int main(int argc, char **argv)
{
    struct inf_error err = {0};
    struct inf_gguf *g = NULL;
    const char *path = NULL;
    uint64_t size;

    bool usage = false;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--summary") == 0)
            summary = true;
        else if (!path && argv[i][0] != '-')
            path = argv[i];
        else
            usage = true;
    }
    if (!path || usage) {
        fprintf(stderr, "usage: gguf-dump [--summary] FILE.gguf\n");
        return 2;
    }
    if (inf_gguf_open_file(path, &g, &err) != INF_OK) {
        fprintf(stderr, "gguf-dump: %s\n", inf_error_message(&err));
        return 1;
    }
    inf_gguf_bytes(g, &size);
    printf("{\n  \"version\": %" PRIu32 ",\n  \"big_endian\": %s,\n  \"alignment\": %" PRIu32
           ",\n  \"data_offset\": %" PRIu64 ",\n  \"file_size\": %" PRIu64 ",\n  \"metadata\": [",
           inf_gguf_version(g), inf_gguf_is_big_endian(g) ? "true" : "false", inf_gguf_alignment(g),
           inf_gguf_data_offset(g), size);
    for (size_t i = 0; i < inf_gguf_n_kv(g); i++) {
        const struct inf_gguf_kv *kv = inf_gguf_kv_at(g, i);
        printf("%s\n    {\"key\": ", i ? "," : "");
        print_str(kv->key.data, kv->key.len);
        printf(", \"type\": \"%s\", \"value\": ", inf_gguf_type_name(kv->value.type));
        print_value(&kv->value);
        putchar('}');
    }
    printf("\n  ],\n  \"tensors\": [");
    for (size_t i = 0; i < inf_gguf_n_tensors(g); i++) {
        const struct inf_gguf_tensor *t = inf_gguf_tensor_at(g, i);
        printf("%s\n    {\"name\": ", i ? "," : "");
        print_str(t->name.data, t->name.len);
        printf(", \"type\": \"%s\", \"type_id\": %" PRIu32 ", \"shape\": [",
               inf_ggml_type_name(t->type), t->type);
        for (uint32_t d = 0; d < t->n_dims; d++)
            printf("%s%" PRId64, d ? ", " : "", t->ne[d]);
        printf("], \"offset\": %" PRIu64 ", \"n_bytes\": %" PRIu64 "}", t->offset, t->n_bytes);
    }
    printf("\n  ]\n}\n");
    inf_gguf_free(g);
    return ferror(stdout) ? 1 : 0;
}
