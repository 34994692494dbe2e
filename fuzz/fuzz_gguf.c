/*
 * fuzz_gguf.c - libFuzzer target for the GGUF reader and writer, and for format detection.
 *
 * Opens the input (capped at 4 MiB) from memory. On success walks every key, value (nested
 * arrays included), typed getter and tensor, checking the invariants consumers rely on (strings
 * NUL-terminated, lookups find their entry, tensor data inside the image), then writes the file
 * again (when the output stays small) and checks that the result parses to the same counts. On
 * failure the error must be a format error with a message, and no handle may be returned.
 * A file with tokenizer.ggml.* keys also builds its tokenizer (a Unigram one reads the
 * precompiled charsmap) and encodes a fixed text with it: an error, never a crash.
 * A broken invariant aborts, which the fuzzer reports as a crash.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "inferno/gguf.h"
#include "inferno/model_file.h"
#include "inferno/tokenizer.h"

#define FUZZ_MAX_INPUT (4u << 20)

static uint64_t walk_value(const struct inf_gguf_value *v, int depth);

static uint64_t walk_array(const struct inf_gguf_array *a, int depth)
{
    uint64_t sum = a->n;
    CHECK(depth <= INF_GGUF_MAX_DEPTH);
    CHECK((unsigned)a->type < INF_GGUF_TYPE_COUNT);
    CHECK(a->n == 0 || a->data != NULL);
    for (uint64_t i = 0; i < a->n; i++) {
        struct inf_gguf_value e;
        inf_gguf_array_elem(a, i, &e);
        sum += walk_value(&e, depth);
    }
    return sum;
}

static uint64_t walk_value(const struct inf_gguf_value *v, int depth)
{
    uint64_t sum = 0, u;
    int64_t s;
    double d;

    CHECK((unsigned)v->type < INF_GGUF_TYPE_COUNT);
    switch (v->type) {
    case INF_GGUF_TYPE_STRING:
        CHECK(v->str.data != NULL && v->str.data[v->str.len] == '\0');
        for (uint64_t i = 0; i < v->str.len; i++)
            sum += (unsigned char)v->str.data[i];
        break;
    case INF_GGUF_TYPE_ARRAY:
        sum += walk_array(&v->arr, depth + 1);
        break;
    default:
        if (inf_gguf_value_as_u64(v, &u) == INF_OK)
            sum += u;
        if (inf_gguf_value_as_i64(v, &s) == INF_OK)
            sum += (uint64_t)s;
        if (inf_gguf_value_as_f64(v, &d) == INF_OK)
            sum += d == d;
        break;
    }
    return sum;
}

static uint64_t walk(const struct inf_gguf *g)
{
    uint64_t size, sum = 0;
    const uint8_t *base = inf_gguf_bytes(g, &size);
    struct inf_error err = {0};

    CHECK(inf_gguf_version(g) == 2 || inf_gguf_version(g) == 3);
    CHECK(inf_gguf_alignment(g) && !(inf_gguf_alignment(g) & (inf_gguf_alignment(g) - 1)));
    for (size_t i = 0; i < inf_gguf_n_kv(g); i++) {
        const struct inf_gguf_kv *kv = inf_gguf_kv_at(g, i);
        CHECK(kv && kv->key.len > 0 && kv->key.data[kv->key.len] == '\0');
        CHECK(kv->offset < size);
        sum += walk_value(&kv->value, 0);
        if (strlen(kv->key.data) != kv->key.len)
            continue;
        CHECK(inf_gguf_find_kv(g, kv->key.data) == kv);
        /* every getter either answers or explains */
        union {
            uint32_t u32;
            int32_t i32;
            uint64_t u64;
            int64_t i64;
            float f32;
            double f64;
            bool b;
        } out;
        const char *str;
        const struct inf_gguf_array *arr;
        inf_status rcs[] = {
            inf_gguf_get_u32(g, kv->key.data, &out.u32, &err),
            inf_gguf_get_i32(g, kv->key.data, &out.i32, &err),
            inf_gguf_get_u64(g, kv->key.data, &out.u64, &err),
            inf_gguf_get_i64(g, kv->key.data, &out.i64, &err),
            inf_gguf_get_f32(g, kv->key.data, &out.f32, &err),
            inf_gguf_get_f64(g, kv->key.data, &out.f64, &err),
            inf_gguf_get_bool(g, kv->key.data, &out.b, &err),
            inf_gguf_get_str(g, kv->key.data, &str, NULL, &err),
            inf_gguf_get_arr(g, kv->key.data, INF_GGUF_TYPE_COUNT, &arr, &err),
        };
        for (size_t k = 0; k < sizeof(rcs) / sizeof(rcs[0]); k++)
            CHECK(rcs[k] == INF_OK ||
                  ((rcs[k] == INF_ETYPE || rcs[k] == INF_ERANGE) && err.msg[0] != '\0'));
    }
    for (size_t i = 0; i < inf_gguf_n_tensors(g); i++) {
        const struct inf_gguf_tensor *t = inf_gguf_tensor_at(g, i);
        const uint8_t *d = t->data;
        CHECK(t->name.data[t->name.len] == '\0' && t->name.len <= INF_GGUF_MAX_NAME);
        CHECK(t->n_dims <= INF_GGUF_MAX_DIMS && inf_ggml_type_info(t->type) != NULL);
        CHECK(d >= base && (uint64_t)(d - base) <= size);
        CHECK(t->n_bytes <= size - (uint64_t)(d - base));
        CHECK(t->offset % inf_gguf_alignment(g) == 0);
        if (t->n_bytes)
            sum += d[0] + d[t->n_bytes - 1];
        if (strlen(t->name.data) == t->name.len)
            CHECK(inf_gguf_find_tensor(g, t->name.data) == t);
    }
    (void)inf_gguf_check_compute(g, &err);
    return sum;
}

/* Write the parsed file again; the result must parse, with the same counts. */
static void rewrite(const struct inf_gguf *g, size_t in_size)
{
    struct inf_gguf_writer *w = NULL;
    struct inf_error err = {0};
    void *out = NULL;
    size_t out_size = 0;

    CHECK(inf_gguf_writer_new(inf_gguf_version(g), &w, &err) == INF_OK);
    inf_gguf_writer_set_big_endian(w, inf_gguf_is_big_endian(g));
    /* whatever the reader accepts, the writer takes */
    CHECK(inf_gguf_writer_add_all(w, g, &err) == INF_OK);
    if (inf_gguf_writer_size(w) <= 4 * (uint64_t)in_size + (1u << 20) &&
        inf_gguf_writer_write_memory(w, &out, &out_size, &err) == INF_OK) {
        struct inf_gguf *g2 = NULL;
        CHECK(inf_gguf_open_memory(out, out_size, &g2, &err) == INF_OK);
        CHECK(inf_gguf_n_kv(g2) == inf_gguf_n_kv(g));
        CHECK(inf_gguf_n_tensors(g2) == inf_gguf_n_tensors(g));
        inf_gguf_free(g2);
    }
    free(out);
    inf_gguf_writer_free(w);
}

/* The tokenizer of the file, if it has one, on a text that reaches normalization and specials. */
static void fuzz_tokenizer_of(const struct inf_gguf *g)
{
    static const char text[] = "x Hello  \xef\xbc\xa1 <ud>\xff\xe2\x96\x81 <s>";
    struct inf_tokenizer *tok = NULL;
    struct inf_error err = {0};
    if (!inf_gguf_find_kv(g, "tokenizer.ggml.model"))
        return;
    inf_status rc = inf_tokenizer_from_gguf(g, &tok, &err);
    CHECK((rc == INF_OK) == (tok != NULL));
    CHECK(rc == INF_OK || err.msg[0] != '\0');
    if (!tok)
        return;
    struct inf_tokens t = {0};
    rc = inf_tok_encode(tok, text, sizeof(text) - 1, INF_TOK_ADD_SPECIAL | INF_TOK_PARSE_SPECIAL,
                        &t, &err);
    CHECK(rc == INF_OK || err.msg[0] != '\0');
    for (size_t i = 0; rc == INF_OK && i < t.n; i++)
        CHECK(t.ids[i] >= 0 && (size_t)t.ids[i] < inf_tok_info(tok)->n_tokens);
    inf_tokens_release(&t);
    inf_tokenizer_free(tok);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct inf_gguf *g = NULL;
    struct inf_error err = {0};
    static volatile uint64_t sink;
    inf_status rc;

    if (size > FUZZ_MAX_INPUT)
        size = FUZZ_MAX_INPUT;
    rc = inf_gguf_open_memory(data, size, &g, &err);
    if (rc == INF_OK) {
        CHECK(g != NULL);
        sink = walk(g);
        rewrite(g, size);
        fuzz_tokenizer_of(g);
        inf_gguf_free(g);
    } else {
        CHECK(g == NULL);
        CHECK(rc == INF_EFORMAT || rc == INF_EUNSUPPORTED);
        CHECK(err.code == rc && err.msg[0] != '\0');
    }
    fuzz_check_detect(data, size);
    (void)sink;
    return 0;
}
