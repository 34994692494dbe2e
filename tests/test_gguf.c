/*
 * test_gguf.c - the GGUF reader and writer, the ggml type table, and model-format detection.
 *
 * Fixtures are built byte by byte here (a builder independent of the writer) for GGUF v2 and v3
 * in both byte orders with every metadata type and nested arrays; the writer must reproduce the
 * builder's bytes exactly. The files in $INFERNO_SHARED/testdata must open, read back as
 * expected, and survive read -> write -> read byte-identical. Corruption: truncation at every
 * 1/64th, every header/metadata/tensor-info field set to extreme values, and seeded random byte
 * flips; each must be refused with a message (or, when it leaves a valid file, open), and never
 * allocate for a hostile count. Without the shared data the fixture checks still run and the
 * binary exits 77 (skipped).
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "inferno/gguf.h"
#include "inferno/kernels.h"
#include "inferno/model_file.h"
#include "t.h"

/* ---- a byte builder, independent of the writer ---- */

struct bb {
    uint8_t *p;
    size_t n, cap;
    bool be;
};

static void bb_bytes(struct bb *b, const void *d, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        if (!b->p)
            abort();
    }
    if (n)
        memcpy(b->p + b->n, d, n);
    b->n += n;
}

static void bb_uint(struct bb *b, uint64_t v, int size)
{
    uint8_t x[8];
    for (int i = 0; i < size; i++)
        x[i] = (uint8_t)(v >> (8 * (b->be ? size - 1 - i : i)));
    bb_bytes(b, x, (size_t)size);
}

static void bb_f32(struct bb *b, float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    bb_uint(b, u, 4);
}

static void bb_f64(struct bb *b, double f)
{
    uint64_t u;
    memcpy(&u, &f, 8);
    bb_uint(b, u, 8);
}

static void bb_str(struct bb *b, const char *s)
{
    bb_uint(b, strlen(s), 8);
    bb_bytes(b, s, strlen(s));
}

static void bb_key(struct bb *b, const char *key, uint32_t type)
{
    bb_str(b, key);
    bb_uint(b, type, 4);
}

static void bb_pad(struct bb *b, size_t align)
{
    while (b->n % align)
        bb_uint(b, 0, 1);
}

/* The fixture's tensors: name, type, n_dims, ne, bytes. */
static const struct {
    const char *name;
    uint32_t type, n_dims;
    int64_t ne[4];
    uint64_t n_bytes;
} fx_tensors[] = {
    {"a", INF_GGML_TYPE_F32, 2, {4, 2, 1, 1}, 32},
    {"blk.0.b", INF_GGML_TYPE_Q4_0, 1, {64, 1, 1, 1}, 36},
    {"c", INF_GGML_TYPE_IQ2_XS, 3, {256, 2, 1, 1}, 148},
    {"empty", INF_GGML_TYPE_F16, 2, {0, 5, 1, 1}, 0},
};
#define FX_N_TENSORS 4
#define FX_N_KV      19

static uint8_t fx_data_byte(size_t t, uint64_t i)
{
    return (uint8_t)(i * 3 + t * 17 + 1);
}

/* A GGUF image with every metadata type, nested arrays and four tensors. alignment 0: none. */
static void build_fixture(struct bb *b, uint32_t version, bool be, uint32_t alignment)
{
    size_t align = alignment ? alignment : 32;

    memset(b, 0, sizeof(*b));
    b->be = be;
    bb_bytes(b, "GGUF", 4);
    bb_uint(b, version, 4);
    bb_uint(b, FX_N_TENSORS, 8);
    bb_uint(b, FX_N_KV + (alignment ? 1 : 0), 8);
    bb_key(b, "general.architecture", INF_GGUF_TYPE_STRING);
    bb_str(b, "test");
    bb_key(b, "t.u8", INF_GGUF_TYPE_UINT8);
    bb_uint(b, 200, 1);
    bb_key(b, "t.i8", INF_GGUF_TYPE_INT8);
    bb_uint(b, (uint8_t)-100, 1);
    bb_key(b, "t.u16", INF_GGUF_TYPE_UINT16);
    bb_uint(b, 60000, 2);
    bb_key(b, "t.i16", INF_GGUF_TYPE_INT16);
    bb_uint(b, (uint16_t)-30000, 2);
    bb_key(b, "t.u32", INF_GGUF_TYPE_UINT32);
    bb_uint(b, 4000000000u, 4);
    bb_key(b, "t.i32", INF_GGUF_TYPE_INT32);
    bb_uint(b, (uint32_t)-2000000000, 4);
    bb_key(b, "t.f32", INF_GGUF_TYPE_FLOAT32);
    bb_f32(b, 0.5f);
    bb_key(b, "t.bool", INF_GGUF_TYPE_BOOL);
    bb_uint(b, 1, 1);
    bb_key(b, "t.str", INF_GGUF_TYPE_STRING);
    bb_str(b, "h\xc3\xa9llo");
    bb_key(b, "t.u64", INF_GGUF_TYPE_UINT64);
    bb_uint(b, UINT64_MAX - 1, 8);
    bb_key(b, "t.i64", INF_GGUF_TYPE_INT64);
    bb_uint(b, (uint64_t)(INT64_MIN + 1), 8);
    bb_key(b, "t.f64", INF_GGUF_TYPE_FLOAT64);
    bb_f64(b, -2.25);
    bb_key(b, "t.arr.u32", INF_GGUF_TYPE_ARRAY);
    bb_uint(b, INF_GGUF_TYPE_UINT32, 4);
    bb_uint(b, 3, 8);
    for (uint32_t i = 1; i <= 3; i++)
        bb_uint(b, i * 1000000u, 4);
    bb_key(b, "t.arr.str", INF_GGUF_TYPE_ARRAY);
    bb_uint(b, INF_GGUF_TYPE_STRING, 4);
    bb_uint(b, 3, 8);
    bb_str(b, "a");
    bb_str(b, "");
    bb_str(b, "xyz");
    /* [[1, -2] (int16), ["s"], [[9] (uint8)]] */
    bb_key(b, "t.arr.nested", INF_GGUF_TYPE_ARRAY);
    bb_uint(b, INF_GGUF_TYPE_ARRAY, 4);
    bb_uint(b, 3, 8);
    bb_uint(b, INF_GGUF_TYPE_INT16, 4);
    bb_uint(b, 2, 8);
    bb_uint(b, 1, 2);
    bb_uint(b, (uint16_t)-2, 2);
    bb_uint(b, INF_GGUF_TYPE_STRING, 4);
    bb_uint(b, 1, 8);
    bb_str(b, "s");
    bb_uint(b, INF_GGUF_TYPE_ARRAY, 4);
    bb_uint(b, 1, 8);
    bb_uint(b, INF_GGUF_TYPE_UINT8, 4);
    bb_uint(b, 1, 8);
    bb_uint(b, 9, 1);
    bb_key(b, "t.arr.empty", INF_GGUF_TYPE_ARRAY);
    bb_uint(b, INF_GGUF_TYPE_FLOAT64, 4);
    bb_uint(b, 0, 8);
    bb_key(b, "t.arr.bool", INF_GGUF_TYPE_ARRAY);
    bb_uint(b, INF_GGUF_TYPE_BOOL, 4);
    bb_uint(b, 2, 8);
    bb_uint(b, 1, 1);
    bb_uint(b, 0, 1);
    bb_key(b, "t.arr.f32", INF_GGUF_TYPE_ARRAY);
    bb_uint(b, INF_GGUF_TYPE_FLOAT32, 4);
    bb_uint(b, 2, 8);
    bb_f32(b, 1.5f);
    bb_f32(b, -0.0f);
    if (alignment) {
        bb_key(b, "general.alignment", INF_GGUF_TYPE_UINT32);
        bb_uint(b, alignment, 4);
    }
    uint64_t offset = 0;
    for (size_t t = 0; t < FX_N_TENSORS; t++) {
        bb_str(b, fx_tensors[t].name);
        bb_uint(b, fx_tensors[t].n_dims, 4);
        for (uint32_t d = 0; d < fx_tensors[t].n_dims; d++)
            bb_uint(b, (uint64_t)fx_tensors[t].ne[d], 8);
        bb_uint(b, fx_tensors[t].type, 4);
        bb_uint(b, offset, 8);
        offset += (fx_tensors[t].n_bytes + align - 1) / align * align;
    }
    bb_pad(b, align);
    for (size_t t = 0; t < FX_N_TENSORS; t++) {
        for (uint64_t i = 0; i < fx_tensors[t].n_bytes; i++)
            bb_uint(b, fx_data_byte(t, i), 1);
        bb_pad(b, align);
    }
}

/* ---- opening exact-size copies (so that ASan sees any read past the end) ---- */

struct image {
    uint8_t *copy;
    struct inf_gguf *g;
    inf_status rc;
    struct inf_error err;
};

static void image_open(struct image *im, const void *data, size_t n)
{
    memset(im, 0, sizeof(*im));
    im->copy = malloc(n ? n : 1);
    if (!im->copy)
        abort();
    if (n)
        memcpy(im->copy, data, n);
    im->rc = inf_gguf_open_memory(im->copy, n, &im->g, &im->err);
}

static void image_close(struct image *im)
{
    inf_gguf_free(im->g);
    free(im->copy);
    im->g = NULL;
    im->copy = NULL;
}

/* ---- reading everything (what a fuzzer or a consumer would touch) ---- */

static uint64_t walk_array(const struct inf_gguf_array *a, int depth);

static uint64_t walk_value(const struct inf_gguf_value *v, int depth)
{
    uint64_t sum = 0, u;
    int64_t s;
    double d;

    if (v->type == INF_GGUF_TYPE_STRING) {
        if (v->str.data[v->str.len] != '\0')
            T__FAIL("string not NUL-terminated");
        for (uint64_t i = 0; i < v->str.len; i++)
            sum += (unsigned char)v->str.data[i];
    } else if (v->type == INF_GGUF_TYPE_ARRAY) {
        sum += walk_array(&v->arr, depth + 1);
    } else {
        if (inf_gguf_value_as_u64(v, &u) == INF_OK)
            sum += u;
        if (inf_gguf_value_as_i64(v, &s) == INF_OK)
            sum += (uint64_t)s;
        if (inf_gguf_value_as_f64(v, &d) == INF_OK)
            sum += d == d ? 1 : 2;
    }
    return sum;
}

static uint64_t walk_array(const struct inf_gguf_array *a, int depth)
{
    uint64_t sum = a->n;
    if (depth > INF_GGUF_MAX_DEPTH)
        T__FAIL("array depth %d", depth);
    for (uint64_t i = 0; i < a->n; i++) {
        struct inf_gguf_value e;
        inf_gguf_array_elem(a, i, &e);
        sum += walk_value(&e, depth);
    }
    return sum;
}

/* Touch every key, value and tensor byte range; check the handle's invariants. */
static uint64_t walk(const struct inf_gguf *g)
{
    uint64_t size, sum = 0;
    const uint8_t *base = inf_gguf_bytes(g, &size);

    for (size_t i = 0; i < inf_gguf_n_kv(g); i++) {
        const struct inf_gguf_kv *kv = inf_gguf_kv_at(g, i);
        if (!kv || kv->key.len == 0 || strlen(kv->key.data) > kv->key.len)
            T__FAIL("bad key %zu", i);
        if (kv && strlen(kv->key.data) == kv->key.len && inf_gguf_find_kv(g, kv->key.data) != kv)
            T__FAIL("lookup of key %zu", i);
        if (kv)
            sum += walk_value(&kv->value, 0);
    }
    for (size_t i = 0; i < inf_gguf_n_tensors(g); i++) {
        const struct inf_gguf_tensor *t = inf_gguf_tensor_at(g, i);
        const uint8_t *d = t->data;
        if (t->n_bytes && (d < base || d + t->n_bytes > base + size))
            T__FAIL("tensor %zu outside the image", i);
        if (t->n_bytes) {
            sum += d[0];
            sum += d[t->n_bytes - 1];
        }
        if (strlen(t->name.data) == t->name.len && inf_gguf_find_tensor(g, t->name.data) != t)
            T__FAIL("lookup of tensor %zu", i);
    }
    return sum;
}

/* ---- shared data ---- */

static char shared[1024];
static bool have_shared;

static bool read_file(const char *path, uint8_t **data, size_t *size)
{
    FILE *f = fopen(path, "rb");
    long n;
    if (!f)
        return false;
    if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return false;
    }
    *data = malloc(n ? (size_t)n : 1);
    *size = (size_t)n;
    if (!*data || fread(*data, 1, (size_t)n, f) != (size_t)n) {
        fclose(f);
        free(*data);
        return false;
    }
    fclose(f);
    return true;
}

#define MAX_FILES 16
static char gguf_files[MAX_FILES][1400];
static int n_gguf_files;

static void find_gguf_files(void)
{
    const char *dirs[] = {"models", "tokenizers"};
    for (size_t i = 0; i < 2; i++) {
        char dir[1100];
        snprintf(dir, sizeof(dir), "%s/testdata/%s", shared, dirs[i]);
        DIR *d = opendir(dir);
        struct dirent *e;
        while (d && (e = readdir(d))) {
            size_t l = strlen(e->d_name);
            if (l > 5 && strcmp(e->d_name + l - 5, ".gguf") == 0 && n_gguf_files < MAX_FILES)
                snprintf(gguf_files[n_gguf_files++], sizeof(gguf_files[0]), "%s/%s", dir,
                         e->d_name);
        }
        if (d)
            closedir(d);
    }
}

/* ---- the type table ---- */

static void test_types(void)
{
    static const struct {
        uint32_t id, blck, size;
        const char *name;
    } expect[] = {
        {0, 1, 4, "F32"},         {1, 1, 2, "F16"},         {2, 32, 18, "Q4_0"},
        {3, 32, 20, "Q4_1"},      {6, 32, 22, "Q5_0"},      {7, 32, 24, "Q5_1"},
        {8, 32, 34, "Q8_0"},      {9, 32, 36, "Q8_1"},      {10, 256, 84, "Q2_K"},
        {11, 256, 110, "Q3_K"},   {12, 256, 144, "Q4_K"},   {13, 256, 176, "Q5_K"},
        {14, 256, 210, "Q6_K"},   {15, 256, 292, "Q8_K"},   {16, 256, 66, "IQ2_XXS"},
        {17, 256, 74, "IQ2_XS"},  {18, 256, 98, "IQ3_XXS"}, {19, 256, 50, "IQ1_S"},
        {20, 32, 18, "IQ4_NL"},   {21, 256, 110, "IQ3_S"},  {22, 256, 82, "IQ2_S"},
        {23, 256, 136, "IQ4_XS"}, {24, 1, 1, "I8"},         {25, 1, 2, "I16"},
        {26, 1, 4, "I32"},        {27, 1, 8, "I64"},        {28, 1, 8, "F64"},
        {29, 256, 56, "IQ1_M"},   {30, 1, 2, "BF16"},       {34, 256, 54, "TQ1_0"},
        {35, 256, 66, "TQ2_0"},   {39, 32, 17, "MXFP4"},    {40, 64, 36, "NVFP4"},
        {41, 128, 18, "Q1_0"},    {42, 64, 18, "Q2_0"},
    };
    size_t n_known = 0;
    for (size_t i = 0; i < sizeof(expect) / sizeof(expect[0]); i++) {
        const struct inf_ggml_type_info *t = inf_ggml_type_info(expect[i].id);
        T_OK(t != NULL);
        if (!t)
            continue;
        T_EQ_INT(t->id, expect[i].id);
        T_EQ_INT(t->blck_size, expect[i].blck);
        T_EQ_INT(t->type_size, expect[i].size);
        T_EQ_STR(t->name, expect[i].name);
        T_EQ_STR(inf_ggml_type_name(expect[i].id), expect[i].name);
        T_EQ_INT(t->is_quantized, expect[i].blck > 1);
    }
    for (uint32_t id = 0; id < INF_GGML_TYPE_COUNT + 5; id++)
        n_known += inf_ggml_type_info(id) != NULL;
    T_EQ_INT(n_known, sizeof(expect) / sizeof(expect[0]));
    /* removed ids have names for messages but no entry */
    T_OK(inf_ggml_type_info(31) == NULL);
    T_EQ_STR(inf_ggml_type_name(31), "Q4_0_4_4");
    T_EQ_STR(inf_ggml_type_name(5), "Q4_3");
    T_EQ_STR(inf_ggml_type_name(38), "IQ4_NL_8_8");
    T_EQ_STR(inf_ggml_type_name(1000), "unknown");
    T_EQ_STR(inf_ggml_type_info(12)->ggml_name, "q4_K");
    uint32_t id = 0;
    T_OK(inf_ggml_type_from_name("q4_k", &id) && id == 12);
    T_OK(inf_ggml_type_from_name("IQ2_XS", &id) && id == 17);
    T_OK(!inf_ggml_type_from_name("Q4_0_4_4", &id));

    /* the compute flag and the sizes agree with the kernels' own table */
    for (uint32_t i = 0; i < INF_GGML_TYPE_COUNT; i++) {
        const struct inf_ggml_type_info *t = inf_ggml_type_info(i);
        const struct inf_type_traits *k = inf_type_get((enum inf_type)i);
        if (k && t) {
            T_EQ_INT(k->blck_size, t->blck_size);
            T_EQ_INT(k->type_size, t->type_size);
        }
        if (t)
            T_EQ_INT(t->compute, k != NULL && k->is_weight);
    }

    struct inf_error err = {0};
    T_EQ_INT(inf_ggml_type_check_compute(INF_GGML_TYPE_Q4_K, "tensor 'x'", &err), INF_OK);
    T_EQ_INT(inf_ggml_type_check_compute(INF_GGML_TYPE_IQ2_XS, "tensor 'x'", &err),
             INF_EUNSUPPORTED);
    T_EQ_STR(err.msg, "tensor 'x': type IQ2_XS is not supported yet");
    T_EQ_INT(inf_ggml_type_check_compute(INF_GGML_TYPE_Q8_K, NULL, &err), INF_EUNSUPPORTED);
    T_EQ_STR(err.msg, "type Q8_K is not supported yet");

    uint64_t nb = 0;
    int64_t ne[4] = {256, 3, 2, 1};
    T_EQ_INT(inf_ggml_nbytes(INF_GGML_TYPE_Q4_K, 3, ne, "t", &nb, &err), INF_OK);
    T_EQ_U64(nb, 144u * 6);
    ne[0] = 100;
    T_EQ_INT(inf_ggml_nbytes(INF_GGML_TYPE_Q4_K, 3, ne, "t", &nb, &err), INF_EFORMAT);
    T_CONTAINS(err.msg, "not a whole number of Q4_K blocks of 256");
    ne[0] = -1;
    T_EQ_INT(inf_ggml_nbytes(INF_GGML_TYPE_F32, 1, ne, "t", &nb, &err), INF_EFORMAT);
    int64_t big[4] = {INT64_MAX, 2, 1, 1};
    T_EQ_INT(inf_ggml_nbytes(INF_GGML_TYPE_F32, 2, big, "t", &nb, &err), INF_EFORMAT);
    T_CONTAINS(err.msg, "overflow");
    int64_t huge[4] = {INT64_MAX, 1, 1, 1};
    /* INT64_MAX F64 values are 2^66 bytes: this wrapped around to 2^64 - 8 before (#14) */
    T_EQ_INT(inf_ggml_nbytes(INF_GGML_TYPE_F64, 1, huge, "t", &nb, &err), INF_EFORMAT);
    T_CONTAINS(err.msg, "overflow");
    T_EQ_INT(inf_ggml_nbytes(33, 1, huge, "t", &nb, &err), INF_EUNSUPPORTED);
    T_CONTAINS(err.msg, "Q4_0_8_8");
    T_EQ_INT(inf_ggml_nbytes(99, 1, huge, "t", &nb, &err), INF_EUNSUPPORTED);
    T_CONTAINS(err.msg, "unknown tensor type 99");

    T_EQ_STR(inf_llama_ftype_name(15), "MOSTLY_Q4_K_M");
    T_EQ_STR(inf_llama_ftype_desc(15), "Q4_K - Medium");
    T_EQ_STR(inf_llama_ftype_name(0), "ALL_F32");
    T_EQ_STR(inf_llama_ftype_name(7), "MOSTLY_Q8_0");
    T_EQ_STR(inf_llama_ftype_name(18), "MOSTLY_Q6_K");
    T_EQ_STR(inf_llama_ftype_name(32), "MOSTLY_BF16");
    T_EQ_STR(inf_llama_ftype_name(38), "MOSTLY_MXFP4_MOE");
    T_EQ_STR(inf_llama_ftype_name(15 | INF_LLAMA_FTYPE_GUESSED), "MOSTLY_Q4_K_M");
    T_OK(inf_llama_ftype_name(4) == NULL);
    T_OK(inf_llama_ftype_name(34) == NULL);
    T_EQ_STR(inf_llama_ftype_desc(999), "unknown");

    T_EQ_STR(inf_gguf_type_name(INF_GGUF_TYPE_FLOAT64), "float64");
    T_EQ_STR(inf_gguf_type_name(13), "unknown");
    T_EQ_INT(inf_gguf_type_size(INF_GGUF_TYPE_UINT16), 2);
    T_EQ_INT(inf_gguf_type_size(INF_GGUF_TYPE_STRING), 0);
}

/* ---- fixtures ---- */

static void check_fixture(const struct inf_gguf *g, uint32_t version, bool be, uint32_t align)
{
    struct inf_error err = {0};
    const struct inf_gguf_kv *kv;
    const struct inf_gguf_array *arr;
    const char *s;
    uint64_t len, u64;
    uint32_t u32;
    int32_t i32;
    int64_t i64;
    float f32;
    double f64;
    bool b;

    T_EQ_INT(inf_gguf_version(g), version);
    T_EQ_INT(inf_gguf_is_big_endian(g), be);
    T_EQ_INT(inf_gguf_alignment(g), align ? align : 32);
    T_EQ_INT(inf_gguf_n_kv(g), FX_N_KV + (align ? 1 : 0));
    T_EQ_INT(inf_gguf_n_tensors(g), FX_N_TENSORS);
    T_EQ_INT(inf_gguf_data_offset(g) % (align ? align : 32), 0);

    T_EQ_INT(inf_gguf_get_str(g, "general.architecture", &s, &len, &err), INF_OK);
    T_EQ_STR(s, "test");
    T_EQ_INT(len, 4);
    kv = inf_gguf_find_kv(g, "t.u8");
    T_OK(kv && kv->value.type == INF_GGUF_TYPE_UINT8 && kv->value.u8 == 200);
    kv = inf_gguf_find_kv(g, "t.i8");
    T_OK(kv && kv->value.type == INF_GGUF_TYPE_INT8 && kv->value.i8 == -100);
    kv = inf_gguf_find_kv(g, "t.u16");
    T_OK(kv && kv->value.u16 == 60000);
    kv = inf_gguf_find_kv(g, "t.i16");
    T_OK(kv && kv->value.i16 == -30000);
    T_EQ_INT(inf_gguf_get_u32(g, "t.u32", &u32, &err), INF_OK);
    T_EQ_U64(u32, 4000000000u);
    T_EQ_INT(inf_gguf_get_i32(g, "t.i32", &i32, &err), INF_OK);
    T_EQ_INT(i32, -2000000000);
    T_EQ_INT(inf_gguf_get_f32(g, "t.f32", &f32, &err), INF_OK);
    T_NEAR(f32, 0.5, 0);
    T_EQ_INT(inf_gguf_get_bool(g, "t.bool", &b, &err), INF_OK);
    T_OK(b);
    T_EQ_INT(inf_gguf_get_str(g, "t.str", &s, NULL, &err), INF_OK);
    T_EQ_STR(s, "h\xc3\xa9llo");
    T_EQ_INT(inf_gguf_get_u64(g, "t.u64", &u64, &err), INF_OK);
    T_EQ_U64(u64, UINT64_MAX - 1);
    T_EQ_INT(inf_gguf_get_i64(g, "t.i64", &i64, &err), INF_OK);
    T_EQ_INT(i64, INT64_MIN + 1);
    T_EQ_INT(inf_gguf_get_f64(g, "t.f64", &f64, &err), INF_OK);
    T_NEAR(f64, -2.25, 0);

    /* safe coercions */
    T_EQ_INT(inf_gguf_get_u32(g, "t.u8", &u32, &err), INF_OK);
    T_EQ_INT(u32, 200);
    T_EQ_INT(inf_gguf_get_i32(g, "t.u16", &i32, &err), INF_OK);
    T_EQ_INT(i32, 60000);
    T_EQ_INT(inf_gguf_get_i64(g, "t.u32", &i64, &err), INF_OK);
    T_EQ_INT(i64, 4000000000);
    T_EQ_INT(inf_gguf_get_f64(g, "t.f32", &f64, &err), INF_OK);
    T_NEAR(f64, 0.5, 0);
    T_EQ_INT(inf_gguf_get_f32(g, "t.f64", &f32, &err), INF_OK);
    T_NEAR(f32, -2.25, 0);
    T_EQ_INT(inf_gguf_get_f32(g, "t.i16", &f32, &err), INF_OK);
    T_NEAR(f32, -30000, 0);
    /* ... and the unsafe ones */
    T_EQ_INT(inf_gguf_get_i32(g, "t.u32", &i32, &err), INF_ERANGE);
    T_EQ_STR(err.msg, "metadata 't.u32' = 4000000000 does not fit in int32");
    T_EQ_INT(inf_gguf_get_u32(g, "t.i8", &u32, &err), INF_ERANGE);
    T_EQ_STR(err.msg, "metadata 't.i8' = -100 does not fit in uint32");
    T_EQ_INT(inf_gguf_get_i64(g, "t.u64", &i64, &err), INF_ERANGE);
    T_EQ_INT(inf_gguf_get_f32(g, "t.i32", &f32, &err), INF_ERANGE);
    T_EQ_INT(inf_gguf_get_f64(g, "t.u64", &f64, &err), INF_ERANGE);
    T_EQ_INT(inf_gguf_get_u32(g, "t.f32", &u32, &err), INF_ETYPE);
    T_EQ_STR(err.msg, "metadata 't.f32' is float32, expected uint32");
    T_EQ_INT(inf_gguf_get_bool(g, "t.u8", &b, &err), INF_ETYPE);
    T_EQ_INT(inf_gguf_get_str(g, "t.u8", &s, NULL, &err), INF_ETYPE);
    T_EQ_STR(err.msg, "metadata 't.u8' is uint8, expected string");
    T_EQ_INT(inf_gguf_get_u32(g, "t.missing", &u32, &err), INF_ENOTFOUND);
    T_EQ_STR(err.msg, "metadata key 't.missing' not found");

    T_EQ_INT(inf_gguf_get_arr(g, "t.arr.u32", INF_GGUF_TYPE_UINT32, &arr, &err), INF_OK);
    T_OK(arr->n == 3 && ((const uint32_t *)arr->data)[2] == 3000000u);
    T_EQ_INT(inf_gguf_get_arr(g, "t.arr.u32", INF_GGUF_TYPE_INT32, &arr, &err), INF_ETYPE);
    T_EQ_STR(err.msg, "metadata 't.arr.u32' is an array of uint32, expected int32");
    T_EQ_INT(inf_gguf_get_arr(g, "t.u8", INF_GGUF_TYPE_COUNT, &arr, &err), INF_ETYPE);
    T_EQ_INT(inf_gguf_get_arr(g, "t.arr.str", INF_GGUF_TYPE_STRING, &arr, &err), INF_OK);
    if (arr->type == INF_GGUF_TYPE_STRING && arr->n == 3) {
        const struct inf_gguf_str *strs = arr->data;
        T_EQ_STR(strs[0].data, "a");
        T_EQ_INT(strs[1].len, 0);
        T_EQ_STR(strs[1].data, "");
        T_EQ_STR(strs[2].data, "xyz");
    }
    T_EQ_INT(inf_gguf_get_arr(g, "t.arr.nested", INF_GGUF_TYPE_ARRAY, &arr, &err), INF_OK);
    if (arr->n == 3) {
        const struct inf_gguf_array *in = arr->data;
        T_OK(in[0].type == INF_GGUF_TYPE_INT16 && in[0].n == 2);
        T_EQ_INT(((const int16_t *)in[0].data)[1], -2);
        T_OK(in[1].type == INF_GGUF_TYPE_STRING && in[1].n == 1);
        T_EQ_STR(((const struct inf_gguf_str *)in[1].data)[0].data, "s");
        T_OK(in[2].type == INF_GGUF_TYPE_ARRAY && in[2].n == 1);
        const struct inf_gguf_array *in2 = in[2].data;
        T_OK(in2[0].type == INF_GGUF_TYPE_UINT8 && in2[0].n == 1);
        T_EQ_INT(((const uint8_t *)in2[0].data)[0], 9);
        struct inf_gguf_value e;
        inf_gguf_array_elem(&in[0], 0, &e);
        T_OK(e.type == INF_GGUF_TYPE_INT16 && e.i16 == 1);
    }
    T_EQ_INT(inf_gguf_get_arr(g, "t.arr.empty", INF_GGUF_TYPE_FLOAT64, &arr, &err), INF_OK);
    T_EQ_INT(arr->n, 0);
    T_EQ_INT(inf_gguf_get_arr(g, "t.arr.bool", INF_GGUF_TYPE_BOOL, &arr, &err), INF_OK);
    T_OK(arr->n == 2 && ((const uint8_t *)arr->data)[0] == 1 &&
         ((const uint8_t *)arr->data)[1] == 0);
    T_EQ_INT(inf_gguf_get_arr(g, "t.arr.f32", INF_GGUF_TYPE_FLOAT32, &arr, &err), INF_OK);
    T_NEAR(((const float *)arr->data)[0], 1.5, 0);

    /* metadata keeps the file order */
    T_EQ_STR(inf_gguf_kv_at(g, 0)->key.data, "general.architecture");
    T_EQ_STR(inf_gguf_kv_at(g, 18)->key.data, "t.arr.f32");
    T_OK(inf_gguf_kv_at(g, 100) == NULL);

    for (size_t t = 0; t < FX_N_TENSORS; t++) {
        const struct inf_gguf_tensor *ti = inf_gguf_tensor_at(g, t);
        T_OK(ti && inf_gguf_find_tensor(g, fx_tensors[t].name) == ti);
        if (!ti)
            continue;
        T_EQ_STR(ti->name.data, fx_tensors[t].name);
        T_EQ_INT(ti->type, fx_tensors[t].type);
        T_EQ_INT(ti->n_dims, fx_tensors[t].n_dims);
        for (int d = 0; d < 4; d++)
            T_EQ_INT(ti->ne[d], fx_tensors[t].ne[d]);
        T_EQ_U64(ti->n_bytes, fx_tensors[t].n_bytes);
        T_EQ_INT(ti->offset % (align ? align : 32), 0);
        bool same = true;
        for (uint64_t i = 0; i < ti->n_bytes; i++)
            same &= ((const uint8_t *)ti->data)[i] == fx_data_byte(t, i);
        T_OK(same);
    }
    T_OK(inf_gguf_find_tensor(g, "nope") == NULL);
    T_OK(inf_gguf_tensor_at(g, FX_N_TENSORS) == NULL);
    T_EQ_INT(inf_gguf_tensor_at(g, 2)->n_elements, 512);

    /* the IQ2_XS tensor (and big-endian data) cannot be computed with */
    T_EQ_INT(inf_gguf_check_compute(g, &err), INF_EUNSUPPORTED);
    if (be)
        T_CONTAINS(err.msg, "big-endian");
    else
        T_EQ_STR(err.msg, "tensor 'c': type IQ2_XS is not supported yet");
}

/* The same content through the writer's API; data[] receives the tensor data to free after
 * the write (the writer borrows it). */
static void write_fixture(struct inf_gguf_writer *w, uint32_t alignment, uint8_t **data)
{
    struct inf_error err = {0};

    T_EQ_INT(inf_gguf_writer_set_str(w, "general.architecture", "test", &err), INF_OK);
    struct inf_gguf_value v = {.type = INF_GGUF_TYPE_UINT8, .u8 = 200};
    T_EQ_INT(inf_gguf_writer_set(w, "t.u8", &v, &err), INF_OK);
    v = (struct inf_gguf_value){.type = INF_GGUF_TYPE_INT8, .i8 = -100};
    T_EQ_INT(inf_gguf_writer_set(w, "t.i8", &v, &err), INF_OK);
    v = (struct inf_gguf_value){.type = INF_GGUF_TYPE_UINT16, .u16 = 60000};
    T_EQ_INT(inf_gguf_writer_set(w, "t.u16", &v, &err), INF_OK);
    v = (struct inf_gguf_value){.type = INF_GGUF_TYPE_INT16, .i16 = -30000};
    T_EQ_INT(inf_gguf_writer_set(w, "t.i16", &v, &err), INF_OK);
    T_EQ_INT(inf_gguf_writer_set_u32(w, "t.u32", 4000000000u, &err), INF_OK);
    T_EQ_INT(inf_gguf_writer_set_i32(w, "t.i32", -2000000000, &err), INF_OK);
    T_EQ_INT(inf_gguf_writer_set_f32(w, "t.f32", 0.5f, &err), INF_OK);
    T_EQ_INT(inf_gguf_writer_set_bool(w, "t.bool", true, &err), INF_OK);
    T_EQ_INT(inf_gguf_writer_set_str(w, "t.str", "h\xc3\xa9llo", &err), INF_OK);
    T_EQ_INT(inf_gguf_writer_set_u64(w, "t.u64", UINT64_MAX - 1, &err), INF_OK);
    v = (struct inf_gguf_value){.type = INF_GGUF_TYPE_INT64, .i64 = INT64_MIN + 1};
    T_EQ_INT(inf_gguf_writer_set(w, "t.i64", &v, &err), INF_OK);
    v = (struct inf_gguf_value){.type = INF_GGUF_TYPE_FLOAT64, .f64 = -2.25};
    T_EQ_INT(inf_gguf_writer_set(w, "t.f64", &v, &err), INF_OK);
    const uint32_t u32s[] = {1000000, 2000000, 3000000};
    T_EQ_INT(inf_gguf_writer_set_arr(w, "t.arr.u32", INF_GGUF_TYPE_UINT32, u32s, 3, &err), INF_OK);
    const char *const strs[] = {"a", "", "xyz"};
    T_EQ_INT(inf_gguf_writer_set_arr_str(w, "t.arr.str", strs, 3, &err), INF_OK);
    const int16_t i16s[] = {1, -2};
    const struct inf_gguf_str s1[] = {{"s", 1}};
    const uint8_t u8s[] = {9};
    const struct inf_gguf_array deep[] = {{INF_GGUF_TYPE_UINT8, 1, u8s}};
    const struct inf_gguf_array nested[] = {{INF_GGUF_TYPE_INT16, 2, i16s},
                                            {INF_GGUF_TYPE_STRING, 1, s1},
                                            {INF_GGUF_TYPE_ARRAY, 1, deep}};
    v = (struct inf_gguf_value){.type = INF_GGUF_TYPE_ARRAY,
                                .arr = {INF_GGUF_TYPE_ARRAY, 3, nested}};
    T_EQ_INT(inf_gguf_writer_set(w, "t.arr.nested", &v, &err), INF_OK);
    T_EQ_INT(inf_gguf_writer_set_arr(w, "t.arr.empty", INF_GGUF_TYPE_FLOAT64, NULL, 0, &err),
             INF_OK);
    const uint8_t bools[] = {1, 0};
    T_EQ_INT(inf_gguf_writer_set_arr(w, "t.arr.bool", INF_GGUF_TYPE_BOOL, bools, 2, &err), INF_OK);
    const float f32s[] = {1.5f, -0.0f};
    T_EQ_INT(inf_gguf_writer_set_arr(w, "t.arr.f32", INF_GGUF_TYPE_FLOAT32, f32s, 2, &err), INF_OK);
    if (alignment)
        T_EQ_INT(inf_gguf_writer_set_u32(w, "general.alignment", alignment, &err), INF_OK);
    for (size_t t = 0; t < FX_N_TENSORS; t++) {
        data[t] = malloc(fx_tensors[t].n_bytes + 1);
        for (uint64_t i = 0; i < fx_tensors[t].n_bytes; i++)
            data[t][i] = fx_data_byte(t, i);
        T_EQ_INT(inf_gguf_writer_add_tensor(w, fx_tensors[t].name, fx_tensors[t].type,
                                            fx_tensors[t].n_dims, fx_tensors[t].ne, data[t], &err),
                 INF_OK);
    }
}

static void test_fixtures(void)
{
    static const struct {
        uint32_t version;
        bool be;
        uint32_t align;
    } cases[] = {{3, false, 0}, {2, false, 0},  {3, true, 0},
                 {2, true, 64}, {3, false, 16}, {3, false, 1}};

    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        struct bb b;
        struct image im;
        struct inf_gguf_writer *w = NULL;
        struct inf_error err = {0};
        void *out = NULL;
        size_t out_size = 0;

        build_fixture(&b, cases[c].version, cases[c].be, cases[c].align);
        image_open(&im, b.p, b.n);
        T_EQ_INT(im.rc, INF_OK);
        if (im.rc != INF_OK)
            fprintf(stderr, "fixture %zu: %s\n", c, im.err.msg);
        else
            check_fixture(im.g, cases[c].version, cases[c].be, cases[c].align);

        /* the writer, fed the same content, gives the same bytes */
        T_EQ_INT(inf_gguf_writer_new(cases[c].version, &w, &err), INF_OK);
        inf_gguf_writer_set_big_endian(w, cases[c].be);
        uint8_t *data[FX_N_TENSORS];
        write_fixture(w, cases[c].align, data);
        T_EQ_U64(inf_gguf_writer_size(w), b.n);
        T_EQ_INT(inf_gguf_writer_write_memory(w, &out, &out_size, &err), INF_OK);
        T_EQ_U64(out_size, b.n);
        T_OK(out_size == b.n && memcmp(out, b.p, b.n) == 0);
        free(out);
        inf_gguf_writer_free(w);
        for (size_t t = 0; t < FX_N_TENSORS; t++)
            free(data[t]);

        /* and read -> write -> read is byte-identical */
        if (im.rc == INF_OK) {
            T_EQ_INT(inf_gguf_writer_new(cases[c].version, &w, &err), INF_OK);
            inf_gguf_writer_set_big_endian(w, cases[c].be);
            T_EQ_INT(inf_gguf_writer_add_all(w, im.g, &err), INF_OK);
            T_EQ_INT(inf_gguf_writer_write_memory(w, &out, &out_size, &err), INF_OK);
            T_OK(out_size == b.n && memcmp(out, b.p, b.n) == 0);
            free(out);
            inf_gguf_writer_free(w);
        }
        image_close(&im);
        free(b.p);
    }
}

/* ---- hand-made broken files: the message names the offset and the field ---- */

static void expect_error(const struct bb *b, inf_status code, const char *needle)
{
    struct image im;
    image_open(&im, b->p, b->n);
    T_EQ_INT(im.rc, code);
    T_CONTAINS(im.err.msg, needle);
    T_OK(im.g == NULL);
    image_close(&im);
}

static void header(struct bb *b, uint32_t version, uint64_t n_tensors, uint64_t n_kv)
{
    memset(b, 0, sizeof(*b));
    bb_bytes(b, "GGUF", 4);
    bb_uint(b, version, 4);
    bb_uint(b, n_tensors, 8);
    bb_uint(b, n_kv, 8);
}

static void tensor_info(struct bb *b, const char *name, uint32_t type, uint32_t n_dims,
                        const uint64_t *ne, uint64_t offset)
{
    bb_str(b, name);
    bb_uint(b, n_dims, 4);
    for (uint32_t d = 0; d < n_dims; d++)
        bb_uint(b, ne[d], 8);
    bb_uint(b, type, 4);
    bb_uint(b, offset, 8);
}

static void test_errors(void)
{
    struct bb b;
    const uint64_t ne4[] = {4}, ne64[] = {64}, ne33[] = {33};

    /* the issue's own example: a string length larger than what remains */
    header(&b, 3, 0, 5);
    for (int i = 0; i < 3; i++) {
        char key[16];
        snprintf(key, sizeof(key), "k%d", i);
        bb_key(&b, key, INF_GGUF_TYPE_UINT8);
        bb_uint(&b, 1, 1);
    }
    size_t at = b.n;
    bb_uint(&b, UINT64_MAX, 8);
    for (int i = 0; i < 100; i++)
        bb_uint(&b, (uint64_t)i, 1);
    char want[160];
    snprintf(want, sizeof(want),
             "offset %zu: metadata key 3: string length 18446744073709551615 exceeds the 100 "
             "bytes that remain",
             at);
    expect_error(&b, INF_EFORMAT, want);
    free(b.p);

    memset(&b, 0, sizeof(b));
    bb_bytes(&b, "GGML\3\0\0\0", 8);
    expect_error(&b, INF_EFORMAT, "offset 0: header: not a GGUF file (magic '47 47 4d 4c'");
    free(b.p);
    memset(&b, 0, sizeof(b));
    expect_error(&b, INF_EFORMAT, "not a GGUF file (magic ''");
    header(&b, 1, 0, 0);
    expect_error(&b, INF_EUNSUPPORTED, "offset 4: header: GGUF version 1 is not supported");
    free(b.p);
    header(&b, 4, 0, 0);
    expect_error(&b, INF_EUNSUPPORTED, "GGUF version 4 is not supported");
    free(b.p);
    memset(&b, 0, sizeof(b));
    bb_bytes(&b, "GGUF\3\0\0\0\0", 9);
    expect_error(&b, INF_EFORMAT, "offset 8: header: tensor count needs 8 bytes but 1 remain");
    free(b.p);
    header(&b, 3, 0, UINT64_MAX);
    expect_error(&b, INF_EFORMAT, "offset 16: header: metadata count 18446744073709551615 is more");
    free(b.p);
    header(&b, 3, 1000, 0);
    expect_error(&b, INF_EFORMAT, "offset 8: header: tensor count 1000 is more");
    free(b.p);

    header(&b, 3, 0, 2);
    bb_key(&b, "dup", INF_GGUF_TYPE_UINT8);
    bb_uint(&b, 1, 1);
    bb_key(&b, "dup", INF_GGUF_TYPE_UINT8);
    bb_uint(&b, 1, 1);
    expect_error(&b, INF_EFORMAT, "offset 40: metadata 'dup': duplicate key (first at offset 24)");
    free(b.p);

    header(&b, 3, 0, 1);
    bb_key(&b, "", INF_GGUF_TYPE_UINT16);
    bb_uint(&b, 1, 2);
    expect_error(&b, INF_EFORMAT, "offset 24: metadata key 0: empty key");
    free(b.p);

    header(&b, 3, 0, 1);
    bb_key(&b, "k", 13);
    bb_uint(&b, 1, 4);
    expect_error(&b, INF_EFORMAT, "offset 33: metadata 'k': unknown value type 13");
    free(b.p);

    header(&b, 3, 0, 1);
    bb_key(&b, "k", INF_GGUF_TYPE_ARRAY);
    bb_uint(&b, INF_GGUF_TYPE_UINT32, 4);
    bb_uint(&b, 1000, 8);
    bb_uint(&b, 0, 8);
    expect_error(&b, INF_EFORMAT,
                 "offset 37: metadata 'k': array of 1000 uint32 elements does not fit in the 8 "
                 "bytes that remain");
    free(b.p);

    header(&b, 3, 0, 1);
    bb_key(&b, "k", INF_GGUF_TYPE_ARRAY);
    bb_uint(&b, 99, 4);
    bb_uint(&b, 0, 8);
    expect_error(&b, INF_EFORMAT, "array of unknown element type 99");
    free(b.p);

    /* arrays nested 9 deep */
    header(&b, 3, 0, 1);
    bb_key(&b, "deep", INF_GGUF_TYPE_ARRAY);
    for (int i = 0; i < 9; i++) {
        bb_uint(&b, INF_GGUF_TYPE_ARRAY, 4);
        bb_uint(&b, 1, 8);
    }
    bb_uint(&b, INF_GGUF_TYPE_UINT8, 4);
    bb_uint(&b, 0, 8);
    expect_error(&b, INF_EFORMAT, "metadata 'deep': arrays nested deeper than 8 levels");
    free(b.p);
    /* 8 deep is fine */
    header(&b, 3, 0, 1);
    bb_key(&b, "deep", INF_GGUF_TYPE_ARRAY);
    for (int i = 0; i < 7; i++) {
        bb_uint(&b, INF_GGUF_TYPE_ARRAY, 4);
        bb_uint(&b, 1, 8);
    }
    bb_uint(&b, INF_GGUF_TYPE_UINT8, 4);
    bb_uint(&b, 0, 8);
    {
        struct image im;
        image_open(&im, b.p, b.n);
        T_EQ_INT(im.rc, INF_OK);
        image_close(&im);
    }
    free(b.p);

    header(&b, 3, 0, 1);
    bb_key(&b, "general.alignment", INF_GGUF_TYPE_UINT32);
    bb_uint(&b, 48, 4);
    expect_error(&b, INF_EFORMAT, "offset 24: metadata 'general.alignment': 48 is not a power");
    free(b.p);
    header(&b, 3, 0, 1);
    bb_key(&b, "general.alignment", INF_GGUF_TYPE_UINT32);
    bb_uint(&b, 0, 4);
    expect_error(&b, INF_EFORMAT, "0 is not a power of two");
    free(b.p);
    header(&b, 3, 0, 1);
    bb_key(&b, "general.alignment", INF_GGUF_TYPE_UINT64);
    bb_uint(&b, 32, 8);
    expect_error(&b, INF_EFORMAT, "'general.alignment': must be uint32, not uint64");
    free(b.p);

    /* tensor infos */
    header(&b, 3, 1, 0);
    tensor_info(&b, "blk.3.attn_q.weight", INF_GGML_TYPE_F32, 1, ne64, 0);
    bb_pad(&b, 32);
    bb_bytes(&b, "0123456789", 10);
    expect_error(&b, INF_EFORMAT,
                 "tensor 'blk.3.attn_q.weight': data range [96, 352) exceeds file size 106");
    free(b.p);
    header(&b, 3, 1, 0);
    tensor_info(&b, "t", INF_GGML_TYPE_F32, 1, ne4, UINT64_MAX - 31);
    bb_pad(&b, 32);
    expect_error(&b, INF_EFORMAT, "tensor 't': data offset 64 + 18446744073709551584 + 16");
    free(b.p);
    header(&b, 3, 1, 0);
    {
        const uint64_t ne5[] = {1, 1, 1, 1, 1};
        tensor_info(&b, "t", INF_GGML_TYPE_F32, 5, ne5, 0);
    }
    expect_error(&b, INF_EFORMAT, "offset 33: tensor 't': 5 dimensions, at most 4 allowed");
    free(b.p);
    header(&b, 3, 1, 0);
    {
        const uint64_t neg[] = {UINT64_MAX};
        tensor_info(&b, "t", INF_GGML_TYPE_F32, 1, neg, 0);
    }
    expect_error(&b, INF_EFORMAT, "dimension 0 is 18446744073709551615, more than INT64_MAX");
    free(b.p);
    header(&b, 3, 1, 0);
    tensor_info(&b, "t", 31, 1, ne64, 0);
    expect_error(&b, INF_EUNSUPPORTED,
                 "offset 24: tensor 't': type 31 (Q4_0_4_4) was removed from GGUF");
    free(b.p);
    header(&b, 3, 1, 0);
    tensor_info(&b, "t", 77, 1, ne64, 0);
    expect_error(&b, INF_EUNSUPPORTED, "tensor 't': unknown tensor type 77");
    free(b.p);
    header(&b, 3, 1, 0);
    tensor_info(&b, "t", INF_GGML_TYPE_Q4_0, 1, ne33, 0);
    expect_error(&b, INF_EFORMAT, "a row of 33 values is not a whole number of Q4_0 blocks of 32");
    free(b.p);
    header(&b, 3, 1, 0);
    tensor_info(&b, "t", INF_GGML_TYPE_F32, 1, ne4, 16);
    bb_pad(&b, 32);
    bb_bytes(&b, "0123456789012345678901234567890123456789", 40);
    expect_error(&b, INF_EFORMAT,
                 "tensor 't': data offset 16 is not a multiple of the alignment 32");
    free(b.p);
    header(&b, 3, 2, 0);
    tensor_info(&b, "a", INF_GGML_TYPE_F32, 1, ne64, 0);
    tensor_info(&b, "b", INF_GGML_TYPE_F32, 1, ne4, 32);
    bb_pad(&b, 32);
    for (int i = 0; i < 256; i++)
        bb_uint(&b, 0, 1);
    expect_error(&b, INF_EFORMAT, "tensors 'a' and 'b' overlap: [");
    free(b.p);
    header(&b, 3, 2, 0);
    tensor_info(&b, "same", INF_GGML_TYPE_F32, 1, ne4, 0);
    tensor_info(&b, "same", INF_GGML_TYPE_F32, 1, ne4, 32);
    bb_pad(&b, 32);
    for (int i = 0; i < 64; i++)
        bb_uint(&b, 0, 1);
    expect_error(&b, INF_EFORMAT, "tensor 'same': duplicate tensor name (first at offset 24)");
    free(b.p);
    header(&b, 3, 1, 0);
    {
        char name[80];
        memset(name, 'n', 64);
        name[64] = '\0';
        tensor_info(&b, name, INF_GGML_TYPE_F32, 1, ne4, 0);
    }
    expect_error(&b, INF_EFORMAT, "tensor 0: name of 64 bytes is longer than the 63 allowed");
    free(b.p);

    /* control characters in names are not printed raw */
    header(&b, 3, 0, 2);
    bb_key(&b, "a\nb\x1b", INF_GGUF_TYPE_UINT8);
    bb_uint(&b, 1, 1);
    bb_key(&b, "a\nb\x1b", INF_GGUF_TYPE_UINT8);
    bb_uint(&b, 1, 1);
    expect_error(&b, INF_EFORMAT, "metadata 'a?b?': duplicate key");
    free(b.p);

    /* zero tensors, no padding (llama.cpp's metadata-only files): fine */
    header(&b, 3, 0, 1);
    bb_key(&b, "k", INF_GGUF_TYPE_UINT8);
    bb_uint(&b, 1, 1);
    {
        struct image im;
        image_open(&im, b.p, b.n);
        T_EQ_INT(im.rc, INF_OK);
        if (im.rc == INF_OK) {
            T_EQ_U64(inf_gguf_data_offset(im.g), 64);
            T_EQ_INT(inf_gguf_check_compute(im.g, NULL), INF_OK);
        }
        image_close(&im);
    }
    free(b.p);
}

/* ---- corruption ---- */

static int n_refused, n_accepted;

/* Open a mutated image (data is an exact-size heap buffer, so ASan sees reads past its end):
 * refusal must come with a message and a format code, never ENOMEM. */
static void open_mutant(const uint8_t *data, size_t n, const char *what)
{
    struct inf_gguf *g = NULL;
    struct inf_error err = {0};
    inf_status rc = inf_gguf_open_memory(data, n, &g, &err);
    if (rc == INF_OK) {
        n_accepted++;
        walk(g);
    } else {
        n_refused++;
        if ((rc != INF_EFORMAT && rc != INF_EUNSUPPORTED) || err.msg[0] == '\0' || g != NULL)
            T__FAIL("%s: rc %s, message '%s'", what, inf_status_name(rc), err.msg);
        else
            t__passed++;
    }
    inf_gguf_free(g);
}

static void truncations(const uint8_t *data, size_t n, const char *name)
{
    for (int k = 0; k < 64; k++) {
        size_t cut = n * (size_t)k / 64;
        struct image im;
        char what[1300];
        snprintf(what, sizeof(what), "%s cut at %zu", name, cut);
        image_open(&im, data, cut);
        if (im.rc == INF_OK || im.err.msg[0] == '\0')
            T__FAIL("%s: rc %d, message '%s'", what, im.rc, im.err.msg);
        else
            t__passed++;
        image_close(&im);
    }
    /* the last bytes matter too (a file cut by one byte) */
    struct image im;
    image_open(&im, data, n - 1);
    T_OK(im.rc != INF_OK);
    image_close(&im);
}

static void poke(uint8_t *p, uint64_t v, int size, bool be)
{
    for (int i = 0; i < size; i++)
        p[i] = (uint8_t)(v >> (8 * (be ? size - 1 - i : i)));
}

/* Every header, metadata and tensor-info field set to extreme values, one at a time. */
static void extremes(const uint8_t *data, size_t n, const char *name)
{
    static const uint64_t values[] = {0,
                                      1,
                                      2,
                                      13,
                                      0x7fffffffu,
                                      0xffffffffu,
                                      UINT64_C(0x7fffffffffffffff),
                                      UINT64_MAX,
                                      UINT64_C(0x8000000000000000)};
    struct image im;
    uint8_t *copy = malloc(n);
    struct field {
        uint64_t offset;
        int size;
    } fields[4096];
    size_t n_fields = 0;

    image_open(&im, data, n);
    T_EQ_INT(im.rc, INF_OK);
    if (im.rc != INF_OK || !copy) {
        image_close(&im);
        free(copy);
        return;
    }
    bool be = inf_gguf_is_big_endian(im.g);
    fields[n_fields++] = (struct field){4, 4};
    fields[n_fields++] = (struct field){8, 8};
    fields[n_fields++] = (struct field){16, 8};
    for (size_t i = 0; i < inf_gguf_n_kv(im.g) && n_fields + 4 < 4096; i++) {
        const struct inf_gguf_kv *kv = inf_gguf_kv_at(im.g, i);
        uint64_t vt = kv->offset + 8 + kv->key.len;
        fields[n_fields++] = (struct field){kv->offset, 8}; /* key length */
        fields[n_fields++] = (struct field){vt, 4};         /* value type */
        if (kv->value.type == INF_GGUF_TYPE_ARRAY) {
            fields[n_fields++] = (struct field){vt + 4, 4}; /* element type */
            fields[n_fields++] = (struct field){vt + 8, 8}; /* count */
        } else if (kv->value.type == INF_GGUF_TYPE_STRING) {
            fields[n_fields++] = (struct field){vt + 4, 8}; /* string length */
        }
    }
    for (size_t i = 0; i < inf_gguf_n_tensors(im.g) && n_fields + 8 < 4096; i++) {
        const struct inf_gguf_tensor *t = inf_gguf_tensor_at(im.g, i);
        uint64_t p = t->info_offset;
        fields[n_fields++] = (struct field){p, 8};
        p += 8 + t->name.len;
        fields[n_fields++] = (struct field){p, 4};
        p += 4;
        for (uint32_t d = 0; d < t->n_dims; d++, p += 8)
            fields[n_fields++] = (struct field){p, 8};
        fields[n_fields++] = (struct field){p, 4};
        fields[n_fields++] = (struct field){p + 4, 8};
    }
    image_close(&im);
    memcpy(copy, data, n);
    for (size_t f = 0; f < n_fields; f++) {
        for (size_t v = 0; v < sizeof(values) / sizeof(values[0]); v++) {
            char what[1300];
            snprintf(what, sizeof(what), "%s: field at %" PRIu64 " = %" PRIu64, name,
                     fields[f].offset, values[v]);
            poke(copy + fields[f].offset, values[v], fields[f].size, be);
            open_mutant(copy, n, what);
            memcpy(copy + fields[f].offset, data + fields[f].offset, (size_t)fields[f].size);
        }
    }
    free(copy);
}

/* Seeded random byte flips in the metadata region [0, data_offset). */
static void flips(const uint8_t *data, size_t n, const char *name, int rounds)
{
    struct image im;
    uint64_t meta_end;
    uint8_t *copy = malloc(n);

    image_open(&im, data, n);
    if (im.rc != INF_OK || !copy) {
        image_close(&im);
        free(copy);
        return;
    }
    meta_end = inf_gguf_data_offset(im.g) < n ? inf_gguf_data_offset(im.g) : n;
    image_close(&im);
    memcpy(copy, data, n);
    for (int r = 0; r < rounds; r++) {
        uint64_t where[4];
        int k = 1 + (int)(t_rng() % 4);
        for (int i = 0; i < k; i++) {
            where[i] = t_rng() % meta_end;
            copy[where[i]] ^= (uint8_t)(1 + t_rng() % 255);
        }
        char what[1300];
        if (snprintf(what, sizeof(what), "%.1200s: flip round %d", name, r) < 0)
            what[0] = '\0';
        open_mutant(copy, n, what);
        for (int i = 0; i < k; i++)
            copy[where[i]] = data[where[i]];
    }
    free(copy);
}

static void test_corruption_fixtures(void)
{
    for (int c = 0; c < 3; c++) {
        struct bb b;
        char name[64];
        build_fixture(&b, c == 2 ? 2 : 3, c == 1, c == 2 ? 64 : 0);
        snprintf(name, sizeof(name), "fixture %d", c);
        truncations(b.p, b.n, name);
        /* every byte boundary of the small fixture, too */
        for (size_t cut = 0; cut < b.n; cut++) {
            struct image im;
            image_open(&im, b.p, cut);
            if (im.rc == INF_OK)
                T__FAIL("%s cut at %zu opened", name, cut);
            image_close(&im);
        }
        extremes(b.p, b.n, name);
        flips(b.p, b.n, name, 3000);
        free(b.p);
    }
}

/* ---- the shared test files ---- */

static void test_shared_files(void)
{
    for (int i = 0; i < n_gguf_files; i++) {
        const char *path = gguf_files[i];
        struct inf_gguf *g = NULL;
        struct inf_error err = {0};
        uint8_t *orig = NULL;
        size_t orig_size = 0;

        T_EQ_INT(inf_gguf_open_file(path, &g, &err), INF_OK);
        if (!g) {
            fprintf(stderr, "%s\n", err.msg);
            continue;
        }
        T_OK(read_file(path, &orig, &orig_size));
        walk(g);
        T_EQ_INT(inf_gguf_version(g), 3);
        T_OK(!inf_gguf_is_big_endian(g));
        T_OK(inf_gguf_find_kv(g, "general.architecture") != NULL);
        const struct inf_gguf_array *tokens;
        T_EQ_INT(inf_gguf_get_arr(g, "tokenizer.ggml.tokens", INF_GGUF_TYPE_STRING, &tokens, &err),
                 INF_OK);
        inf_gguf_prefetch(g);

        /* read -> write -> read, byte-identical, in memory and through a file */
        struct inf_gguf_writer *w = NULL;
        void *out = NULL;
        size_t out_size = 0;
        T_EQ_INT(inf_gguf_writer_new(inf_gguf_version(g), &w, &err), INF_OK);
        T_EQ_INT(inf_gguf_writer_add_all(w, g, &err), INF_OK);
        T_EQ_INT(inf_gguf_writer_write_memory(w, &out, &out_size, &err), INF_OK);
        T_EQ_U64(out_size, orig_size);
        T_OK(out && orig && out_size == orig_size && memcmp(out, orig, orig_size) == 0);
        char tmp[] = "/tmp/inferno-gguf-XXXXXX";
        int fd = mkstemp(tmp);
        T_OK(fd >= 0);
        if (fd >= 0) {
            close(fd);
            T_EQ_INT(inf_gguf_writer_write_file(w, tmp, &err), INF_OK);
            uint8_t *again = NULL;
            size_t again_size = 0;
            T_OK(read_file(tmp, &again, &again_size));
            T_OK(again_size == orig_size && memcmp(again, orig, orig_size) == 0);
            free(again);
            struct inf_gguf *g2 = NULL;
            T_EQ_INT(inf_gguf_open_file(tmp, &g2, &err), INF_OK);
            if (g2) {
                T_EQ_INT(inf_gguf_n_kv(g2), inf_gguf_n_kv(g));
                T_EQ_INT(inf_gguf_n_tensors(g2), inf_gguf_n_tensors(g));
            }
            inf_gguf_free(g2);
            unlink(tmp);
        }
        free(out);
        inf_gguf_writer_free(w);

        /* corruption of the real files (a vocabulary-only file takes up to 200 ms a parse under
         * ASan, so those get fewer rounds; the fixtures had the thorough treatment) */
        if (orig) {
            bool model = inf_gguf_n_tensors(g) > 0;
            truncations(orig, orig_size, path);
            if (model)
                extremes(orig, orig_size, path);
            flips(orig, orig_size, path, model ? 1500 : 25);
        }
        free(orig);
        inf_gguf_free(g);
    }
}

static void test_stories(void)
{
    char path[1200], bin[1200];
    struct inf_gguf *g = NULL;
    struct inf_error err = {0};
    uint32_t u32;
    int32_t i32;
    float eps;
    const char *s;

    snprintf(path, sizeof(path), "%s/testdata/models/stories260K.gguf", shared);
    snprintf(bin, sizeof(bin), "%s/testdata/models/stories260K.bin", shared);
    T_EQ_INT(inf_gguf_open_file(path, &g, &err), INF_OK);
    if (!g)
        return;
    T_EQ_INT(inf_gguf_n_kv(g), 19);
    T_EQ_INT(inf_gguf_n_tensors(g), 48);
    T_EQ_U64(inf_gguf_data_offset(g), 14176);
    T_EQ_INT(inf_gguf_alignment(g), 32);
    T_EQ_INT(inf_gguf_get_str(g, "general.architecture", &s, NULL, &err), INF_OK);
    T_EQ_STR(s, "llama");
    T_EQ_INT(inf_gguf_get_u32(g, "llama.embedding_length", &u32, &err), INF_OK);
    T_EQ_INT(u32, 64);
    T_EQ_INT(inf_gguf_get_u32(g, "llama.block_count", &u32, &err), INF_OK);
    T_EQ_INT(u32, 5);
    T_EQ_INT(inf_gguf_get_i32(g, "llama.attention.head_count_kv", &i32, &err), INF_OK);
    T_EQ_INT(i32, 4);
    T_EQ_INT(inf_gguf_get_f32(g, "llama.attention.layer_norm_rms_epsilon", &eps, &err), INF_OK);
    T_NEAR(eps, 1e-5, 1e-10);
    T_EQ_INT(inf_gguf_get_i32(g, "tokenizer.ggml.seperator_token_id", &i32, &err), INF_ERANGE);
    T_EQ_STR(err.msg,
             "metadata 'tokenizer.ggml.seperator_token_id' = 4294967295 does not fit in int32");
    T_EQ_INT(inf_gguf_check_compute(g, &err), INF_OK);

    const struct inf_gguf_tensor *t = inf_gguf_find_tensor(g, "token_embd.weight");
    T_OK(t != NULL);
    if (t) {
        T_EQ_INT(t->type, INF_GGML_TYPE_F32);
        T_EQ_INT(t->n_dims, 2);
        T_EQ_INT(t->ne[0], 64);
        T_EQ_INT(t->ne[1], 512);
        T_EQ_U64(t->n_bytes, 64 * 512 * 4);
        /* the same weights as llama2.c's file, which starts them right after its header */
        uint8_t *b = NULL;
        size_t n = 0;
        if (read_file(bin, &b, &n)) {
            T_OK(n > 28 + t->n_bytes && memcmp(b + 28, t->data, (size_t)t->n_bytes) == 0);
            free(b);
        }
    }
    t = inf_gguf_find_tensor(g, "blk.4.ffn_down.weight");
    T_OK(t && t->ne[0] == 172 && t->ne[1] == 64 && t->offset == 1082880);
    inf_gguf_free(g);
}

/* Sizes derived from a shape: checked, never wrapped (#14 item 1). */
static void test_size_overflow(void)
{
    struct inf_error err = {0};
    struct inf_ggml_size sz;
    uint64_t nb = 12345;

    /* 2^62 F32 values are 2^64 bytes, which wrapped to 0: the file was called valid */
    int64_t wrap[4] = {INT64_C(1) << 62, 1, 1, 1};
    T_EQ_INT(inf_ggml_nbytes(INF_GGML_TYPE_F32, 1, wrap, "tensor 'w'", &nb, &err), INF_EFORMAT);
    T_CONTAINS(err.msg, "tensor 'w': shape 4611686018427387904 has more than 2^60 elements");
    T_CONTAINS(err.msg, "overflow");
    T_EQ_U64(nb, 12345); /* untouched on failure */
    /* no elements, but a row of 2^64 bytes: the deep check freed its row buffer twice */
    int64_t wrap0[4] = {INT64_C(1) << 62, 0, 1, 1};
    T_EQ_INT(inf_ggml_size(INF_GGML_TYPE_F32, 2, wrap0, NULL, &sz, &err), INF_EFORMAT);
    T_CONTAINS(err.msg, "tensor: shape 4611686018427387904 x 0 has more than 2^60 elements");
    /* every dimension counts, wherever the zero is */
    int64_t spread[4] = {INT64_C(1) << 31, 0, INT64_C(1) << 31, 1};
    T_EQ_INT(inf_ggml_size(INF_GGML_TYPE_F32, 3, spread, "t", &sz, &err), INF_EFORMAT);
    /* the largest extent allowed, and one above */
    int64_t edge[4] = {(INT64_C(1) << 60) - 1, 1, 1, 1};
    T_EQ_INT(inf_ggml_size(INF_GGML_TYPE_F64, 1, edge, "t", &sz, &err), INF_OK);
    T_EQ_U64(sz.n_bytes, ((UINT64_C(1) << 60) - 1) * 8);
    edge[0]++;
    T_EQ_INT(inf_ggml_size(INF_GGML_TYPE_F64, 1, edge, "t", &sz, &err), INF_EFORMAT);
    /* a first dimension of 0: no rows, no bytes (the deep check divided by it) */
    int64_t zero[4] = {0, 4, 1, 1};
    T_EQ_INT(inf_ggml_size(INF_GGML_TYPE_F32, 2, zero, "t", &sz, &err), INF_OK);
    T_EQ_U64(sz.n_elements, 0);
    T_EQ_U64(sz.n_rows, 0);
    T_EQ_U64(sz.n_bytes, 0);
    T_EQ_U64(sz.row_bytes, 0);
    int64_t q[4] = {64, 3, 1, 1};
    T_EQ_INT(inf_ggml_size(INF_GGML_TYPE_Q4_0, 2, q, "t", &sz, &err), INF_OK);
    T_EQ_U64(sz.n_elements, 192);
    T_EQ_U64(sz.n_rows, 3);
    T_EQ_U64(sz.row_bytes, 36);
    T_EQ_U64(sz.n_bytes, 108);
    int64_t scalar[4] = {1, 1, 1, 1};
    T_EQ_INT(inf_ggml_size(INF_GGML_TYPE_F32, 0, scalar, "t", &sz, &err), INF_OK);
    T_EQ_U64(sz.n_elements, 1);
    T_EQ_U64(sz.n_bytes, 4);
}

static void test_file_errors(void)
{
    struct inf_gguf *g = NULL;
    struct inf_error err = {0};
    char dir[] = "/tmp/inferno-gguf-XXXXXX";

    T_EQ_INT(inf_gguf_open_file("/nonexistent/x.gguf", &g, &err), INF_ENOTFOUND);
    T_CONTAINS(err.msg, "cannot open '/nonexistent/x.gguf'");
    T_OK(mkdtemp(dir) != NULL);
    T_EQ_INT(inf_gguf_open_file(dir, &g, &err), INF_EIO);
    T_CONTAINS(err.msg, "is not a regular file");
    /* a FIFO without a writer: open() blocked forever before (#14 item 5) */
    char fifo[64];
    snprintf(fifo, sizeof(fifo), "%s/fifo.gguf", dir);
    T_EQ_INT(mkfifo(fifo, 0600), 0);
    T_EQ_INT(inf_gguf_open_file(fifo, &g, &err), INF_EIO);
    T_CONTAINS(err.msg, "fifo.gguf' is not a regular file");
    struct inf_model_format_info fi;
    T_EQ_INT(inf_model_detect_file(fifo, &fi, &err), INF_EIO);
    T_CONTAINS(err.msg, "is not a regular file");
    unlink(fifo);
    char path[64];
    snprintf(path, sizeof(path), "%s/empty.gguf", dir);
    FILE *f = fopen(path, "wb");
    if (f)
        fclose(f);
    T_EQ_INT(inf_gguf_open_file(path, &g, &err), INF_EFORMAT);
    T_CONTAINS(err.msg, "empty.gguf': offset 0: header: not a GGUF file");
    T_OK(g == NULL);

    /* the writer refuses what a reader would refuse */
    struct inf_gguf_writer *w = NULL;
    T_EQ_INT(inf_gguf_writer_new(1, &w, &err), INF_EINVAL);
    T_EQ_INT(inf_gguf_writer_new(3, &w, &err), INF_OK);
    T_EQ_INT(inf_gguf_writer_set_u32(w, "k", 1, &err), INF_OK);
    T_EQ_INT(inf_gguf_writer_set_u32(w, "k", 1, &err), INF_EEXIST);
    T_EQ_STR(err.msg, "metadata key 'k' is already set");
    T_EQ_INT(inf_gguf_writer_set_u32(w, "", 1, &err), INF_EINVAL);
    T_EQ_INT(inf_gguf_writer_set_u32(w, "general.alignment", 24, &err), INF_EINVAL);
    T_EQ_INT(inf_gguf_writer_set_str(w, "general.alignment", "32", &err), INF_EINVAL);
    struct inf_gguf_value bad = {.type = INF_GGUF_TYPE_COUNT};
    T_EQ_INT(inf_gguf_writer_set(w, "bad", &bad, &err), INF_EINVAL);
    const int64_t ne[] = {33};
    uint8_t zeros[64] = {0};
    T_EQ_INT(inf_gguf_writer_add_tensor(w, "t", INF_GGML_TYPE_Q4_0, 1, ne, zeros, &err),
             INF_EFORMAT);
    T_EQ_INT(inf_gguf_writer_add_tensor(w, "t", INF_GGML_TYPE_F32, 1, ne, NULL, &err), INF_EINVAL);
    T_EQ_INT(inf_gguf_writer_add_tensor(w, "t", 4, 1, ne, zeros, &err), INF_EUNSUPPORTED);
    const int64_t ne8[] = {8};
    T_EQ_INT(inf_gguf_writer_add_tensor(w, "t", INF_GGML_TYPE_F32, 1, ne8, zeros, &err), INF_OK);
    T_EQ_INT(inf_gguf_writer_add_tensor(w, "t", INF_GGML_TYPE_F32, 1, ne8, zeros, &err),
             INF_EEXIST);
    snprintf(path, sizeof(path), "%s/no/such/dir.gguf", dir);
    T_EQ_INT(inf_gguf_writer_write_file(w, path, &err), INF_EIO);
    T_CONTAINS(err.msg, "cannot create");
    /* a target that exists and is not a regular file is refused, nothing is left behind */
    snprintf(path, sizeof(path), "%s/adir.gguf", dir);
    T_EQ_INT(mkdir(path, 0755), 0);
    T_EQ_INT(inf_gguf_writer_write_file(w, path, &err), INF_EINVAL);
    T_CONTAINS(err.msg, "not a regular file");
    T_EQ_INT(rmdir(path), 0);
    snprintf(path, sizeof(path), "%s/w.gguf", dir);
    T_EQ_INT(inf_gguf_writer_write_file(w, path, &err), INF_OK);
    {
        /* only the file itself: no temporary left */
        DIR *d = opendir(dir);
        int n_tmp = 0;
        for (struct dirent *e; d && (e = readdir(d));)
            n_tmp += strstr(e->d_name, ".tmp") != NULL;
        if (d)
            closedir(d);
        T_EQ_INT(n_tmp, 0);
    }
    T_EQ_INT(inf_gguf_open_file(path, &g, &err), INF_OK);
    if (g) {
        T_EQ_INT(inf_gguf_n_tensors(g), 1);
        T_EQ_U64(inf_gguf_data_offset(g) + 32, inf_gguf_writer_size(w));
    }
    inf_gguf_free(g);
    inf_gguf_writer_free(w);
    unlink(path);
    snprintf(path, sizeof(path), "%s/empty.gguf", dir);
    unlink(path);
    rmdir(dir);
}

/* ---- format detection ---- */

static void detect_mem(const void *p, size_t n, enum inf_model_format want, const char *needle)
{
    struct inf_model_format_info info;
    struct inf_error err = {0};
    uint8_t *copy = malloc(n ? n : 1);
    if (n)
        memcpy(copy, p, n);
    inf_status rc = inf_model_detect_memory(copy, n, &info, &err);
    T_EQ_INT(info.format, want);
    T_EQ_INT(rc, want == INF_MODEL_FORMAT_UNKNOWN ? INF_EFORMAT : INF_OK);
    if (needle)
        T_CONTAINS(want == INF_MODEL_FORMAT_UNKNOWN ? err.msg : info.detail, needle);
    free(copy);
}

static void zip_entry(struct bb *z, struct bb *cd, const char *name, const char *data)
{
    uint32_t off = (uint32_t)z->n;
    size_t nl = strlen(name), dl = strlen(data);
    bb_uint(z, 0x04034b50u, 4);
    bb_uint(z, 20, 2);
    bb_uint(z, 0, 2);
    bb_uint(z, 0, 2); /* stored */
    bb_uint(z, 0, 4);
    bb_uint(z, 0, 4); /* crc (not checked) */
    bb_uint(z, dl, 4);
    bb_uint(z, dl, 4);
    bb_uint(z, nl, 2);
    bb_uint(z, 0, 2);
    bb_bytes(z, name, nl);
    bb_bytes(z, data, dl);
    bb_uint(cd, 0x02014b50u, 4);
    bb_uint(cd, 20, 2);
    bb_uint(cd, 20, 2);
    bb_uint(cd, 0, 2);
    bb_uint(cd, 0, 2);
    bb_uint(cd, 0, 4);
    bb_uint(cd, 0, 4);
    bb_uint(cd, dl, 4);
    bb_uint(cd, dl, 4);
    bb_uint(cd, nl, 2);
    bb_uint(cd, 0, 2);
    bb_uint(cd, 0, 2);
    bb_uint(cd, 0, 2);
    bb_uint(cd, 0, 2);
    bb_uint(cd, 0, 4);
    bb_uint(cd, off, 4);
    bb_bytes(cd, name, nl);
}

static void build_zip(struct bb *z, const char *const *names, int n)
{
    struct bb cd = {0};
    memset(z, 0, sizeof(*z));
    for (int i = 0; i < n; i++)
        zip_entry(z, &cd, names[i], "x");
    uint32_t cd_off = (uint32_t)z->n;
    bb_bytes(z, cd.p, cd.n);
    bb_uint(z, 0x06054b50u, 4);
    bb_uint(z, 0, 2);
    bb_uint(z, 0, 2);
    bb_uint(z, (uint64_t)n, 2);
    bb_uint(z, (uint64_t)n, 2);
    bb_uint(z, cd.n, 4);
    bb_uint(z, cd_off, 4);
    bb_uint(z, 0, 2);
    free(cd.p);
}

static void test_detect(void)
{
    struct bb b;

    build_fixture(&b, 3, false, 0);
    detect_mem(b.p, b.n, INF_MODEL_FORMAT_GGUF, "GGUF v3");
    free(b.p);
    build_fixture(&b, 3, true, 0);
    detect_mem(b.p, b.n, INF_MODEL_FORMAT_GGUF, "big-endian");
    free(b.p);
    header(&b, 1, 0, 0);
    detect_mem(b.p, b.n, INF_MODEL_FORMAT_GGUF, "GGUF v1"); /* detected; the reader refuses it */
    free(b.p);

    static const char st[] = "\x35\0\0\0\0\0\0\0{\"a\":{\"dtype\":\"U8\",\"shape\":[1],"
                             "\"data_offsets\":[0,1]}}\x07";
    detect_mem(st, sizeof(st) - 1, INF_MODEL_FORMAT_SAFETENSORS, "53-byte header");
    static const char st_bad[] = "\xff\0\0\0\0\0\0\0{}";
    detect_mem(st_bad, sizeof(st_bad) - 1, INF_MODEL_FORMAT_UNKNOWN, "not a model file");
    static const char idx[] = " {\"metadata\": {}, \"weight_map\": {\"a\": \"x.safetensors\"}}\n";
    detect_mem(idx, sizeof(idx) - 1, INF_MODEL_FORMAT_SAFETENSORS_INDEX, "1 tensors");
    static const char json[] = "{\"architectures\": [\"LlamaForCausalLM\"]}";
    detect_mem(json, sizeof(json) - 1, INF_MODEL_FORMAT_UNKNOWN, "it starts with 7b 22");

    const char *torch[] = {"archive/version", "archive/data.pkl", "archive/data/0"};
    build_zip(&b, torch, 3);
    detect_mem(b.p, b.n, INF_MODEL_FORMAT_PYTORCH, "archive/data.pkl");
    free(b.p);
    const char *plain[] = {"readme.txt", "notdata.pkl"};
    build_zip(&b, plain, 2);
    detect_mem(b.p, b.n, INF_MODEL_FORMAT_UNKNOWN, "a zip archive without data.pkl");
    /* a zip cut short loses its directory */
    detect_mem(b.p, b.n - 10, INF_MODEL_FORMAT_UNKNOWN, "zip");
    free(b.p);
    static const uint8_t legacy[] = {0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46,
                                     0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e};
    detect_mem(legacy, sizeof(legacy), INF_MODEL_FORMAT_PYTORCH, "legacy");

    /* llama2.c: a tiny consistent header + weights, and the same with the size off by 4 */
    int32_t cfg[7] = {8, 16, 1, 2, 1, -10, 4};
    uint64_t floats =
        10 * 8 + 8 + 64 + 2 * 8 * 4 + 64 + 8 + 3 * 8 * 16 + 8 + 2 * (4 * 4 / 2) + 10 * 8;
    size_t n = 28 + 4 * (size_t)floats;
    uint8_t *m = calloc(1, n + 4);
    for (int i = 0; i < 7; i++)
        poke(m + 4 * i, (uint32_t)cfg[i], 4, false);
    detect_mem(m, n, INF_MODEL_FORMAT_LLAMA2C, "separate classifier");
    detect_mem(m, n + 4, INF_MODEL_FORMAT_UNKNOWN, NULL);
    struct inf_llama2c_config c;
    struct inf_error err = {0};
    T_EQ_INT(inf_llama2c_parse_header(m, n + 4, &c, &err), INF_EFORMAT);
    T_CONTAINS(err.msg, "does not match");
    T_EQ_INT(inf_llama2c_parse_header(m, n, &c, &err), INF_OK);
    T_OK(c.vocab_size == 10 && !c.shared_classifier && c.n_kv_heads == 1);
    poke(m + 12, 3, 4, false); /* 3 heads do not divide dim 8 */
    T_EQ_INT(inf_llama2c_parse_header(m, n, &c, &err), INF_EFORMAT);
    T_CONTAINS(err.msg, "n_heads 3 does not divide dim 8");
    free(m);

    detect_mem("", 0, INF_MODEL_FORMAT_UNKNOWN, "empty");
    detect_mem("\x7f"
               "ELF\2\1\1",
               7, INF_MODEL_FORMAT_UNKNOWN, "(it starts with 7f 45 4c 46 02 01 01)");
    T_EQ_STR(inf_model_format_name(INF_MODEL_FORMAT_LLAMA2C), "llama2c");
    T_EQ_STR(inf_model_format_name(INF_MODEL_FORMAT_ONNX), "onnx");

    struct inf_model_format_info info;
    T_EQ_INT(inf_model_detect_file("/nonexistent/model.bin", &info, &err), INF_ENOTFOUND);
}

static void detect_path(const char *rel, enum inf_model_format want)
{
    char path[1300];
    struct inf_model_format_info info;
    struct inf_error err = {0};
    snprintf(path, sizeof(path), "%s/testdata/%s", shared, rel);
    inf_status rc = inf_model_detect_file(path, &info, &err);
    if (info.format != want)
        T__FAIL("%s: %s, expected %s (%s)", rel, inf_model_format_name(info.format),
                inf_model_format_name(want), err.msg);
    else
        t__passed++;
    T_EQ_INT(rc, want == INF_MODEL_FORMAT_UNKNOWN ? INF_EFORMAT : INF_OK);
}

static void test_detect_shared(void)
{
    detect_path("models/stories260K.bin", INF_MODEL_FORMAT_LLAMA2C);
    detect_path("models/stories260K.gguf", INF_MODEL_FORMAT_GGUF);
    detect_path("models/tok512.bin", INF_MODEL_FORMAT_UNKNOWN);
    detect_path("models/stories260K.expected.txt", INF_MODEL_FORMAT_UNKNOWN);
    detect_path("tokenizers/ggml-vocab-qwen2.gguf", INF_MODEL_FORMAT_GGUF);
    detect_path("onnx-models/mnist-8/model.onnx", INF_MODEL_FORMAT_ONNX);
    detect_path("onnx-models/super-resolution-10/model.onnx", INF_MODEL_FORMAT_ONNX);
    detect_path("onnx-models/light-densenet121/model.onnx", INF_MODEL_FORMAT_ONNX);
    /* TensorProto files start like a ModelProto (field 1, varint) but are not one */
    detect_path("onnx-models/mnist-8/test_data_set_0/input_0.pb", INF_MODEL_FORMAT_UNKNOWN);
    detect_path("onnx-models/mnist-8/test_data_set_0/output_0.pb", INF_MODEL_FORMAT_UNKNOWN);
    detect_path("onnx-models/light-densenet121/test_data_set_0/input_0.pb",
                INF_MODEL_FORMAT_UNKNOWN);

    /* every ONNX node-test model, and none of their tensors */
    char dir[1100];
    int n_models = 0, n_onnx = 0;
    snprintf(dir, sizeof(dir), "%s/testdata/onnx-node", shared);
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        char path[1400];
        struct inf_model_format_info info;
        struct stat st;
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "%s/%s/model.onnx", dir, e->d_name);
        if (stat(path, &st) != 0)
            continue;
        n_models++;
        n_onnx += inf_model_detect_file(path, &info, NULL) == INF_OK &&
                  info.format == INF_MODEL_FORMAT_ONNX;
        snprintf(path, sizeof(path), "%s/%s/test_data_set_0/input_0.pb", dir, e->d_name);
        if (stat(path, &st) == 0 && inf_model_detect_file(path, &info, NULL) == INF_OK)
            T__FAIL("%s detected as %s", path, inf_model_format_name(info.format));
    }
    if (d)
        closedir(d);
    T_OK(n_models > 0);
    T_EQ_INT(n_onnx, n_models);
}

/* Streaming mode: header from the writer, tensor data written by the caller, same bytes. */
static void test_writer_streaming(void)
{
    struct inf_error err = {0};
    struct inf_gguf_writer *w = NULL, *ws = NULL;
    static const int64_t ne_a[2] = {32, 3}, ne_b[1] = {5};
    uint8_t a[3 * 34], b[20];
    void *mem = NULL;
    size_t size = 0;
    uint64_t header = 0;

    for (size_t i = 0; i < sizeof(a); i++)
        a[i] = (uint8_t)(i * 7 + 1);
    for (size_t i = 0; i < sizeof(b); i++)
        b[i] = (uint8_t)(200 - i);
    T_EQ_INT(inf_gguf_writer_new(3, &w, &err), INF_OK);
    T_EQ_INT(inf_gguf_writer_new(3, &ws, &err), INF_OK);
    T_EQ_INT(inf_gguf_writer_set_str(w, "general.architecture", "llama", &err), INF_OK);
    T_EQ_INT(inf_gguf_writer_set_str(ws, "general.architecture", "llama", &err), INF_OK);
    T_EQ_INT(inf_gguf_writer_add_tensor(w, "a", INF_GGML_TYPE_Q8_0, 2, ne_a, a, &err), INF_OK);
    T_EQ_INT(inf_gguf_writer_add_tensor(w, "b", INF_GGML_TYPE_F32, 1, ne_b, b, &err), INF_OK);
    T_EQ_INT(inf_gguf_writer_add_tensor_info(ws, "a", INF_GGML_TYPE_Q8_0, 2, ne_a, &err), INF_OK);
    T_EQ_INT(inf_gguf_writer_add_tensor_info(ws, "b", INF_GGML_TYPE_F32, 1, ne_b, &err), INF_OK);
    T_EQ_INT(inf_gguf_writer_add_tensor_info(ws, "a", INF_GGML_TYPE_F32, 1, ne_b, &err),
             INF_EEXIST);
    T_EQ_INT(inf_gguf_writer_alignment(ws), 32);
    T_EQ_INT(inf_gguf_writer_write_memory(w, &mem, &size, &err), INF_OK);
    /* a streamed writer has no data to write whole */
    void *mem2 = NULL;
    size_t size2 = 0;
    T_EQ_INT(inf_gguf_writer_write_memory(ws, &mem2, &size2, &err), INF_EINVAL);
    T_CONTAINS(inf_error_message(&err), "no data");

    FILE *f = tmpfile();
    T_OK(f != NULL);
    if (f && mem) {
        static const uint8_t zeros[32];
        T_EQ_INT(inf_gguf_writer_write_header(ws, f, &header, &err), INF_OK);
        T_EQ_U64(header % 32, 0);
        fwrite(a, 1, sizeof(a), f);
        fwrite(zeros, 1, (32 - sizeof(a) % 32) % 32, f);
        fwrite(b, 1, sizeof(b), f);
        fwrite(zeros, 1, (32 - sizeof(b) % 32) % 32, f);
        long len = ftell(f);
        T_EQ_U64((uint64_t)len, size);
        uint8_t *back = malloc(size);
        rewind(f);
        T_OK(back && fread(back, 1, size, f) == size && memcmp(back, mem, size) == 0);
        free(back);
    }
    if (f)
        fclose(f);
    free(mem);
    inf_gguf_writer_free(w);
    inf_gguf_writer_free(ws);
}

int main(void)
{
    const char *s = getenv("INFERNO_SHARED");
    char probe[1200];
    struct stat st;

    snprintf(shared, sizeof(shared), "%s", s && *s ? s : "../shared");
    snprintf(probe, sizeof(probe), "%s/testdata/models/stories260K.gguf", shared);
    have_shared = stat(probe, &st) == 0;

    T_RUN(test_types);
    T_RUN(test_size_overflow);
    T_RUN(test_fixtures);
    T_RUN(test_errors);
    T_RUN(test_corruption_fixtures);
    T_RUN(test_file_errors);
    T_RUN(test_writer_streaming);
    T_RUN(test_detect);
    if (!have_shared) {
        if (t__failed)
            T_DONE();
        T_SKIP_ALL("%s not found (set INFERNO_SHARED); %d unit checks passed", probe, t__passed);
    }
    find_gguf_files();
    T_OK(n_gguf_files >= 5);
    T_RUN(test_stories);
    T_RUN(test_shared_files);
    T_RUN(test_detect_shared);
    printf("corruption: %d mutants refused, %d still valid\n", n_refused, n_accepted);
    T_DONE();
}
