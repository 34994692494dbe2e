/*
 * gguf-fixtures - write the seed corpora of the GGUF and safetensors fuzz targets.
 *
 *   gguf-fixtures OUTDIR [SHARED_TESTDATA]
 *
 * Writes OUTDIR/gguf/ (small GGUF files made with the writer: every metadata type, nested
 * arrays, v2 and v3, big-endian, quantized tensors, metadata only; hand-made broken headers;
 * seeds for format detection) and OUTDIR/safetensors/ (good and broken headers). With
 * SHARED_TESTDATA, also the first 60 KiB of each test .gguf and the small test ONNX model.
 * Every file is below 64 KiB. This is how fuzz/corpus/{gguf,safetensors} were made:
 *
 *   gguf-fixtures fuzz/corpus ../shared/testdata
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "inferno/gguf.h"

static const char *outdir;
static int failures;

static void put_file(const char *sub, const char *name, const void *data, size_t n)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s/%s", outdir, sub, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, n, f) != n) {
        fprintf(stderr, "gguf-fixtures: cannot write '%s'\n", path);
        failures++;
    }
    if (f)
        fclose(f);
}

static void check(inf_status rc, const struct inf_error *err)
{
    if (rc != INF_OK) {
        fprintf(stderr, "gguf-fixtures: %s\n", inf_error_message(err));
        exit(1);
    }
}

/* ---- GGUF through the writer ---- */

static void write_gguf(struct inf_gguf_writer *w, const char *name)
{
    struct inf_error err = {0};
    void *out = NULL;
    size_t n = 0;
    check(inf_gguf_writer_write_memory(w, &out, &n, &err), &err);
    put_file("gguf", name, out, n);
    free(out);
    inf_gguf_writer_free(w);
}

static uint8_t tensor_data[16384];

static struct inf_gguf_writer *everything(uint32_t version, bool be, uint32_t alignment)
{
    struct inf_gguf_writer *w = NULL;
    struct inf_error err = {0};
    struct inf_gguf_value v;

    check(inf_gguf_writer_new(version, &w, &err), &err);
    inf_gguf_writer_set_big_endian(w, be);
    check(inf_gguf_writer_set_str(w, "general.architecture", "llama", &err), &err);
    check(inf_gguf_writer_set_u32(w, "general.file_type", 15, &err), &err);
    if (alignment)
        check(inf_gguf_writer_set_u32(w, "general.alignment", alignment, &err), &err);
    v = (struct inf_gguf_value){.type = INF_GGUF_TYPE_UINT8, .u8 = 255};
    check(inf_gguf_writer_set(w, "t.u8", &v, &err), &err);
    v = (struct inf_gguf_value){.type = INF_GGUF_TYPE_INT8, .i8 = -128};
    check(inf_gguf_writer_set(w, "t.i8", &v, &err), &err);
    v = (struct inf_gguf_value){.type = INF_GGUF_TYPE_UINT16, .u16 = 65535};
    check(inf_gguf_writer_set(w, "t.u16", &v, &err), &err);
    v = (struct inf_gguf_value){.type = INF_GGUF_TYPE_INT16, .i16 = -32768};
    check(inf_gguf_writer_set(w, "t.i16", &v, &err), &err);
    check(inf_gguf_writer_set_i32(w, "llama.context_length", 2048, &err), &err);
    check(inf_gguf_writer_set_f32(w, "llama.rope.freq_base", 10000.0f, &err), &err);
    check(inf_gguf_writer_set_bool(w, "t.bool", true, &err), &err);
    check(inf_gguf_writer_set_u64(w, "t.u64", UINT64_MAX, &err), &err);
    v = (struct inf_gguf_value){.type = INF_GGUF_TYPE_INT64, .i64 = INT64_MIN};
    check(inf_gguf_writer_set(w, "t.i64", &v, &err), &err);
    v = (struct inf_gguf_value){.type = INF_GGUF_TYPE_FLOAT64, .f64 = 1e-300};
    check(inf_gguf_writer_set(w, "t.f64", &v, &err), &err);
    const char *const tokens[] = {"<unk>", "<s>", "</s>", "\xe2\x96\x81the", "", "<0x0A>"};
    check(inf_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", tokens, 6, &err), &err);
    const float scores[] = {0, 0, 0, -1.5f, -2, -3};
    check(
        inf_gguf_writer_set_arr(w, "tokenizer.ggml.scores", INF_GGUF_TYPE_FLOAT32, scores, 6, &err),
        &err);
    const int32_t types[] = {2, 3, 3, 1, 1, 6};
    check(inf_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", INF_GGUF_TYPE_INT32, types, 6,
                                  &err),
          &err);
    const uint16_t u16s[] = {1, 2};
    const struct inf_gguf_str strs[] = {{"x", 1}, {"", 0}};
    const struct inf_gguf_array inner[] = {{INF_GGUF_TYPE_UINT16, 2, u16s}};
    const struct inf_gguf_array nested[] = {{INF_GGUF_TYPE_STRING, 2, strs},
                                            {INF_GGUF_TYPE_ARRAY, 1, inner},
                                            {INF_GGUF_TYPE_UINT8, 0, NULL}};
    v = (struct inf_gguf_value){.type = INF_GGUF_TYPE_ARRAY,
                                .arr = {INF_GGUF_TYPE_ARRAY, 3, nested}};
    check(inf_gguf_writer_set(w, "t.nested", &v, &err), &err);

    static const struct {
        const char *name;
        uint32_t type, n_dims;
        int64_t ne[4];
    } tensors[] = {
        {"token_embd.weight", INF_GGML_TYPE_F32, 2, {8, 6, 1, 1}},
        {"output_norm.weight", INF_GGML_TYPE_F16, 1, {8, 1, 1, 1}},
        {"blk.0.attn_q.weight", INF_GGML_TYPE_Q4_0, 2, {32, 2, 1, 1}},
        {"blk.0.attn_k.weight", INF_GGML_TYPE_Q8_0, 2, {32, 1, 1, 1}},
        {"blk.0.ffn_up.weight", INF_GGML_TYPE_Q4_K, 2, {256, 1, 1, 1}},
        {"blk.0.ffn_down.weight", INF_GGML_TYPE_Q6_K, 2, {256, 1, 1, 1}},
        {"blk.0.ffn_gate.weight", INF_GGML_TYPE_IQ2_XS, 3, {256, 1, 1, 1}},
        {"blk.0.bf16", INF_GGML_TYPE_BF16, 4, {2, 1, 1, 2}},
        {"blk.0.empty", INF_GGML_TYPE_F32, 2, {0, 4, 1, 1}},
    };
    for (size_t i = 0; i < sizeof(tensors) / sizeof(tensors[0]); i++)
        check(inf_gguf_writer_add_tensor(w, tensors[i].name, tensors[i].type, tensors[i].n_dims,
                                         tensors[i].ne, tensor_data, &err),
              &err);
    return w;
}

/* ---- hand-made bytes ---- */

struct bb {
    uint8_t p[4096];
    size_t n;
};

static void u(struct bb *b, uint64_t v, int size)
{
    for (int i = 0; i < size && b->n < sizeof(b->p); i++)
        b->p[b->n++] = (uint8_t)(v >> (8 * i));
}

/* The fields a zip local header and its central directory entry share, from "version needed"
 * to "extra field length": a stored 1-byte member whose name is nl bytes long (CRC left 0). */
static void zip_entry_fields(struct bb *b, size_t nl)
{
    u(b, 20, 2); /* version needed */
    u(b, 0, 2);  /* flags */
    u(b, 0, 2);  /* method: stored */
    u(b, 0, 4);  /* time, date */
    u(b, 0, 4);  /* CRC-32 */
    u(b, 1, 4);  /* compressed size */
    u(b, 1, 4);  /* size */
    u(b, nl, 2); /* name length */
    u(b, 0, 2);  /* extra field length */
}

static void s(struct bb *b, const char *str)
{
    u(b, strlen(str), 8);
    for (const char *c = str; *c && b->n < sizeof(b->p); c++)
        b->p[b->n++] = (uint8_t)*c;
}

static void hdr(struct bb *b, uint32_t version, uint64_t n_tensors, uint64_t n_kv)
{
    b->n = 0;
    u(b, 0x46554747u, 4);
    u(b, version, 4);
    u(b, n_tensors, 8);
    u(b, n_kv, 8);
}

static void broken_gguf(void)
{
    struct bb b;

    hdr(&b, 1, 0, 0);
    put_file("gguf", "err-version1.gguf", b.p, b.n);
    hdr(&b, 3, 0, 1);
    u(&b, UINT64_MAX, 8);
    s(&b, "0123456789");
    put_file("gguf", "err-string-length.gguf", b.p, b.n);
    hdr(&b, 3, UINT64_MAX, UINT64_MAX);
    put_file("gguf", "err-counts.gguf", b.p, b.n);
    hdr(&b, 3, 0, 1);
    s(&b, "deep");
    u(&b, INF_GGUF_TYPE_ARRAY, 4);
    for (int i = 0; i < 10; i++) {
        u(&b, INF_GGUF_TYPE_ARRAY, 4);
        u(&b, 1, 8);
    }
    u(&b, INF_GGUF_TYPE_UINT8, 4);
    u(&b, 0, 8);
    put_file("gguf", "err-deep-array.gguf", b.p, b.n);
    hdr(&b, 3, 0, 1);
    s(&b, "arr");
    u(&b, INF_GGUF_TYPE_ARRAY, 4);
    u(&b, INF_GGUF_TYPE_STRING, 4);
    u(&b, 1u << 30, 8);
    s(&b, "a");
    put_file("gguf", "err-array-count.gguf", b.p, b.n);
    hdr(&b, 3, 2, 1);
    s(&b, "general.alignment");
    u(&b, INF_GGUF_TYPE_UINT32, 4);
    u(&b, 16, 4);
    s(&b, "a");
    u(&b, 1, 4);
    u(&b, 8, 8);
    u(&b, INF_GGML_TYPE_F32, 4);
    u(&b, 0, 8);
    s(&b, "b");
    u(&b, 1, 4);
    u(&b, 4, 8);
    u(&b, INF_GGML_TYPE_F32, 4);
    u(&b, 16, 8);
    while (b.n % 16)
        u(&b, 0, 1);
    for (int i = 0; i < 48; i++)
        u(&b, (uint64_t)i, 1);
    put_file("gguf", "err-overlap.gguf", b.p, b.n);
    hdr(&b, 3, 1, 0);
    s(&b, "q");
    u(&b, 2, 4);
    u(&b, 33, 8);
    u(&b, 1, 8);
    u(&b, INF_GGML_TYPE_Q4_0, 4);
    u(&b, 0, 8);
    put_file("gguf", "err-block-shape.gguf", b.p, b.n);
}

/* Seeds for the detectors that fuzz_gguf also runs. */
static void detection_seeds(void)
{
    struct bb b = {0};
    /* llama2.c: dim 8, hidden 16, 1 layer, 2 heads, 1 kv head, vocab 10 (shared), seq 4 */
    const int32_t cfg[7] = {8, 16, 1, 2, 1, 10, 4};
    for (int i = 0; i < 7; i++)
        u(&b, (uint32_t)cfg[i], 4);
    size_t floats = 80 + 8 + 64 + 64 + 64 + 8 + 384 + 8 + 16;
    for (size_t i = 0; i < floats; i++)
        u(&b, 0x3f800000u, 4);
    put_file("gguf", "detect-llama2c.bin", b.p, b.n);

    /* a stored zip holding archive/data.pkl */
    b.n = 0;
    const char *name = "archive/data.pkl";
    size_t nl = strlen(name);
    u(&b, 0x04034b50u, 4);
    zip_entry_fields(&b, nl);
    memcpy(b.p + b.n, name, nl);
    b.n += nl;
    u(&b, '.', 1);
    size_t cd = b.n;
    u(&b, 0x02014b50u, 4);
    u(&b, 20, 2); /* version made by */
    zip_entry_fields(&b, nl);
    u(&b, 0, 2);
    u(&b, 0, 2);
    u(&b, 0, 2);
    u(&b, 0, 4);
    u(&b, 0, 4);
    memcpy(b.p + b.n, name, nl);
    b.n += nl;
    size_t cd_size = b.n - cd;
    u(&b, 0x06054b50u, 4);
    u(&b, 0, 2);
    u(&b, 0, 2);
    u(&b, 1, 2);
    u(&b, 1, 2);
    u(&b, cd_size, 4);
    u(&b, cd, 4);
    u(&b, 0, 2);
    put_file("gguf", "detect-pytorch.zip", b.p, b.n);

    /* a minimal ONNX ModelProto: ir_version 8, opset 17, an empty graph named "g" */
    static const uint8_t onnx[] = {0x08, 0x08, 0x12, 0x01, 'x',  0x3a, 0x03,
                                   0x12, 0x01, 'g',  0x42, 0x02, 0x10, 0x11};
    put_file("gguf", "detect-tiny.onnx", onnx, sizeof(onnx));
    static const char index[] = "{\"metadata\": {\"total_size\": 8}, \"weight_map\": "
                                "{\"a\": \"model-00001-of-00001.safetensors\"}}\n";
    put_file("gguf", "detect-index.json", index, sizeof(index) - 1);
}

/* ---- safetensors ---- */

static void st(const char *name, const char *header, size_t data_len)
{
    uint8_t buf[8192];
    size_t h = strlen(header);
    if (8 + h + data_len > sizeof(buf))
        return;
    for (int i = 0; i < 8; i++)
        buf[i] = (uint8_t)((uint64_t)h >> (8 * i));
    memcpy(buf + 8, header, h);
    for (size_t i = 0; i < data_len; i++)
        buf[8 + h + i] = (uint8_t)(i * 7);
    put_file("safetensors", name, buf, 8 + h + data_len);
}

static void safetensors_seeds(void)
{
    st("good.safetensors",
       "{\"b\":{\"dtype\":\"BF16\",\"shape\":[4],\"data_offsets\":[24,32]},"
       "\"__metadata__\":{\"format\":\"pt\"},"
       "\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
       "\"d\":{\"dtype\":\"F8_E4M3\",\"shape\":[2],\"data_offsets\":[32,34]},"
       "\"c\":{\"dtype\":\"I8\",\"shape\":[0],\"data_offsets\":[32,32]}}    ",
       34);
    st("all-dtypes.safetensors",
       "{\"bool\":{\"dtype\":\"BOOL\",\"shape\":[2],\"data_offsets\":[0,2]},"
       "\"u8\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[2,4]},"
       "\"i16\":{\"dtype\":\"I16\",\"shape\":[1],\"data_offsets\":[4,6]},"
       "\"u16\":{\"dtype\":\"U16\",\"shape\":[1],\"data_offsets\":[6,8]},"
       "\"f16\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[8,12]},"
       "\"i32\":{\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[12,16]},"
       "\"u32\":{\"dtype\":\"U32\",\"shape\":[1],\"data_offsets\":[16,20]},"
       "\"f64\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[20,28]},"
       "\"i64\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[28,36]},"
       "\"u64\":{\"dtype\":\"U64\",\"shape\":[1],\"data_offsets\":[36,44]},"
       "\"e5m2\":{\"dtype\":\"F8_E5M2\",\"shape\":[1],\"data_offsets\":[44,45]},"
       "\"e8m0\":{\"dtype\":\"F8_E8M0\",\"shape\":[1],\"data_offsets\":[45,46]},"
       "\"f4\":{\"dtype\":\"F4\",\"shape\":[2,2],\"data_offsets\":[46,48]},"
       "\"f6\":{\"dtype\":\"F6_E2M3\",\"shape\":[4],\"data_offsets\":[48,51]},"
       "\"f6b\":{\"dtype\":\"F6_E3M2\",\"shape\":[4],\"data_offsets\":[51,54]},"
       "\"c64\":{\"dtype\":\"C64\",\"shape\":[1],\"data_offsets\":[54,62]}}",
       62);
    st("empty.safetensors", "{}", 0);
    st("metadata-only.safetensors", "{\"__metadata__\":{\"a\":\"b\",\"c\":\"\"}}", 0);
    st("err-overlap.safetensors",
       "{\"a\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[0,8]},"
       "\"b\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[4,12]}}",
       12);
    st("err-hole.safetensors",
       "{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]},"
       "\"b\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[8,12]}}",
       12);
    st("err-span.safetensors",
       "{\"w\":{\"dtype\":\"F32\",\"shape\":[4,8],\"data_offsets\":[0,96]}}", 96);
    st("err-duplicate.safetensors",
       "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
       "\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}",
       2);
    st("err-dtype.safetensors", "{\"a\":{\"dtype\":\"F7\",\"shape\":[1],\"data_offsets\":[0,1]}}",
       1);
    st("err-shape.safetensors",
       "{\"a\":{\"dtype\":\"U8\",\"shape\":[4294967296,4294967296,-1],\"data_offsets\":[0,1]}}", 1);
    static const uint8_t huge[] = {0, 0, 0, 0, 0, 0, 0, 1, '{', '}'};
    put_file("safetensors", "err-header-length.safetensors", huge, sizeof(huge));
}

/* ---- heads of the shared test files ---- */

static void head_of(const char *testdata, const char *rel, const char *name, size_t max)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", testdata, rel);
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "gguf-fixtures: skipping '%s' (absent)\n", path);
        return;
    }
    uint8_t *buf = malloc(max);
    size_t n = buf ? fread(buf, 1, max, f) : 0;
    fclose(f);
    if (n)
        put_file("gguf", name, buf, n);
    free(buf);
}

int main(int argc, char **argv)
{
    char path[4096];

    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: gguf-fixtures OUTDIR [SHARED_TESTDATA]\n");
        return 2;
    }
    outdir = argv[1];
    snprintf(path, sizeof(path), "%s/gguf", outdir);
    mkdir(path, 0755);
    snprintf(path, sizeof(path), "%s/safetensors", outdir);
    mkdir(path, 0755);

    for (size_t i = 0; i < sizeof(tensor_data); i++)
        tensor_data[i] = (uint8_t)(i * 31 + 7);
    write_gguf(everything(3, false, 0), "all-types-v3.gguf");
    write_gguf(everything(2, false, 64), "all-types-v2-align64.gguf");
    write_gguf(everything(3, true, 0), "all-types-v3-be.gguf");
    struct inf_gguf_writer *w = NULL;
    struct inf_error err = {0};
    check(inf_gguf_writer_new(3, &w, &err), &err);
    check(inf_gguf_writer_set_str(w, "general.name", "metadata only", &err), &err);
    write_gguf(w, "metadata-only.gguf");
    broken_gguf();
    detection_seeds();
    safetensors_seeds();
    if (argc == 3) {
        head_of(argv[2], "models/stories260K.gguf", "head-stories260K.gguf", 60 << 10);
        head_of(argv[2], "tokenizers/ggml-vocab-llama-spm.gguf", "head-vocab-llama-spm.gguf",
                60 << 10);
        head_of(argv[2], "tokenizers/ggml-vocab-gpt-2.gguf", "head-vocab-gpt-2.gguf", 60 << 10);
        head_of(argv[2], "tokenizers/ggml-vocab-qwen2.gguf", "head-vocab-qwen2.gguf", 16 << 10);
        head_of(argv[2], "onnx-models/mnist-8/model.onnx", "detect-mnist-8.onnx", 60 << 10);
    }
    return failures ? 1 : 0;
}
