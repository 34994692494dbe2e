/*
 * test_safetensors.c - the safetensors reader: fixtures built in memory (good and bad headers,
 * every check of the format), files on disk, and a sharded checkpoint with its index in a
 * temporary directory. Needs no shared data.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "inferno/model_file.h"
#include "inferno/safetensors.h"
#include "t.h"

struct blob {
    uint8_t *p;
    size_t n;
};

/* u64 LE header length + header + data. */
static struct blob make(const char *header, const void *data, size_t data_len)
{
    size_t h = strlen(header);
    struct blob b = {malloc(8 + h + data_len + 1), 8 + h + data_len};
    if (!b.p)
        abort();
    for (int i = 0; i < 8; i++)
        b.p[i] = (uint8_t)((uint64_t)h >> (8 * i));
    memcpy(b.p + 8, header, h);
    if (data_len)
        memcpy(b.p + 8 + h, data, data_len);
    return b;
}

static uint8_t data64[256];

static const char good_header[] =
    "{\"b\":{\"dtype\":\"BF16\",\"shape\":[4],\"data_offsets\":[24,32]},"
    "\"__metadata__\":{\"format\":\"pt\",\"k\":\"v\"},"
    "\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
    "\"d\":{\"dtype\":\"F8_E4M3\",\"shape\":[2],\"data_offsets\":[32,34]},"
    "\"c\":{\"dtype\":\"I8\",\"shape\":[0],\"data_offsets\":[32,32]}}   ";

static void test_dtypes(void)
{
    enum inf_st_dtype d;
    T_OK(inf_st_dtype_from_name("BF16", &d) && d == INF_ST_BF16);
    T_OK(inf_st_dtype_from_name("F8_E5M2", &d) && d == INF_ST_F8_E5M2);
    T_OK(!inf_st_dtype_from_name("bf16", &d));
    T_OK(!inf_st_dtype_from_name("F7", &d));
    T_EQ_INT(inf_st_dtype_info(INF_ST_F32)->bits, 32);
    T_EQ_INT(inf_st_dtype_info(INF_ST_F4)->bits, 4);
    T_EQ_INT(inf_st_dtype_info(INF_ST_F6_E2M3)->bits, 6);
    T_OK(inf_st_dtype_info(INF_ST_DTYPE_COUNT) == NULL);
    int supported = 0;
    for (int i = 0; i < INF_ST_DTYPE_COUNT; i++)
        supported += inf_st_dtype_info((enum inf_st_dtype)i)->supported;
    T_EQ_INT(supported, 8); /* F32 F16 BF16 I8 U8 I32 I64 BOOL */
    T_OK(inf_st_dtype_info(INF_ST_BOOL)->supported && inf_st_dtype_info(INF_ST_I64)->supported);
    T_OK(!inf_st_dtype_info(INF_ST_F64)->supported);
}

static void check_good(const struct inf_safetensors *st, const uint8_t *data_base)
{
    struct inf_error err = {0};
    const char *k, *v;

    T_EQ_INT(inf_safetensors_n_tensors(st), 4);
    /* ordered by offset, whatever the JSON order */
    const char *order[] = {"a", "b", "c", "d"};
    for (size_t i = 0; i < 4; i++) {
        const struct inf_st_tensor *t = inf_safetensors_tensor_at(st, i);
        T_OK(t != NULL);
        if (t) {
            T_EQ_STR(t->name, order[i]);
            T_OK(inf_safetensors_find_tensor(st, order[i]) == t);
        }
    }
    T_OK(inf_safetensors_tensor_at(st, 4) == NULL);
    T_OK(inf_safetensors_find_tensor(st, "zz") == NULL);
    const struct inf_st_tensor *a = inf_safetensors_find_tensor(st, "a");
    if (a) {
        T_EQ_INT(a->dtype, INF_ST_F32);
        T_EQ_INT(a->n_dims, 2);
        T_EQ_INT(a->shape[0], 2);
        T_EQ_INT(a->shape[1], 3);
        T_EQ_INT(a->shape[2], 1);
        T_EQ_U64(a->n_elements, 6);
        T_EQ_U64(a->n_bytes, 24);
        T_OK(a->data == data_base);
        T_EQ_INT(a->shard, 0);
    }
    const struct inf_st_tensor *b = inf_safetensors_find_tensor(st, "b");
    if (b) {
        T_OK(b->data == data_base + 24);
        T_EQ_U64(b->begin, 24);
        T_EQ_U64(b->end, 32);
    }
    const struct inf_st_tensor *c = inf_safetensors_find_tensor(st, "c");
    if (c) {
        T_EQ_U64(c->n_elements, 0);
        T_EQ_U64(c->n_bytes, 0);
    }
    T_EQ_INT(inf_safetensors_n_metadata(st), 2);
    T_OK(inf_safetensors_metadata_at(st, 0, &k, &v));
    T_EQ_STR(inf_safetensors_metadata(st, "format"), "pt");
    T_EQ_STR(inf_safetensors_metadata(st, "k"), "v");
    T_OK(inf_safetensors_metadata(st, "nope") == NULL);
    T_OK(!inf_safetensors_metadata_at(st, 2, &k, &v));
    T_EQ_INT(inf_safetensors_check_supported(st, &err), INF_EUNSUPPORTED);
    T_EQ_STR(err.msg, "tensor 'd': dtype F8_E4M3 is not supported yet");
    T_EQ_INT(inf_safetensors_n_shards(st), 1);
    T_EQ_U64(inf_safetensors_index_total_size(st), 0);
}

static void test_good(void)
{
    struct blob b = make(good_header, data64, 34);
    struct inf_safetensors *st = NULL;
    struct inf_error err = {0};

    T_EQ_INT(inf_safetensors_open_memory(b.p, b.n, &st, &err), INF_OK);
    if (st) {
        check_good(st, b.p + 8 + strlen(good_header));
        T_EQ_STR(inf_safetensors_shard_path(st, 0), "");
    }
    inf_safetensors_free(st);

    struct inf_model_format_info info;
    T_EQ_INT(inf_model_detect_memory(b.p, b.n, &info, &err), INF_OK);
    T_EQ_INT(info.format, INF_MODEL_FORMAT_SAFETENSORS);

    /* only supported dtypes */
    static const char plain[] = "{\"x\":{\"dtype\":\"F16\",\"shape\":[2,2],\"data_offsets\":[0,8]},"
                                "\"y\":{\"dtype\":\"F4\",\"shape\":[4],\"data_offsets\":[8,10]}}";
    struct blob p = make(plain, data64, 10);
    T_EQ_INT(inf_safetensors_open_memory(p.p, p.n, &st, &err), INF_OK);
    if (st) {
        T_EQ_U64(inf_safetensors_find_tensor(st, "y")->n_bytes, 2);
        T_EQ_INT(inf_safetensors_check_supported(st, &err), INF_EUNSUPPORTED);
    }
    inf_safetensors_free(st);
    free(p.p);

    /* no tensors at all: an empty object and an empty data section */
    struct blob e = make("{}", NULL, 0);
    T_EQ_INT(inf_safetensors_open_memory(e.p, e.n, &st, &err), INF_OK);
    if (st) {
        T_EQ_INT(inf_safetensors_n_tensors(st), 0);
        T_EQ_INT(inf_safetensors_check_supported(st, &err), INF_OK);
    }
    inf_safetensors_free(st);
    free(e.p);

    /* every byte boundary short of the end is refused */
    for (size_t cut = 0; cut < b.n; cut++) {
        uint8_t *copy = malloc(cut ? cut : 1);
        memcpy(copy, b.p, cut);
        if (inf_safetensors_open_memory(copy, cut, &st, &err) == INF_OK) {
            T__FAIL("cut at %zu opened", cut);
            inf_safetensors_free(st);
        } else if (err.msg[0] == '\0') {
            T__FAIL("cut at %zu: no message", cut);
        } else {
            t__passed++;
        }
        free(copy);
    }
    free(b.p);
}

static void expect_bad(const char *header, size_t data_len, inf_status code, const char *needle)
{
    struct blob b = make(header, data64, data_len);
    struct inf_safetensors *st = NULL;
    struct inf_error err = {0};
    T_EQ_INT(inf_safetensors_open_memory(b.p, b.n, &st, &err), code);
    T_CONTAINS(err.msg, needle);
    T_OK(st == NULL);
    inf_safetensors_free(st);
    free(b.p);
}

static void expect_bad_raw(const void *p, size_t n, inf_status code, const char *needle)
{
    struct inf_safetensors *st = NULL;
    struct inf_error err = {0};
    uint8_t *copy = malloc(n ? n : 1);
    memcpy(copy, p, n);
    T_EQ_INT(inf_safetensors_open_memory(copy, n, &st, &err), code);
    T_CONTAINS(err.msg, needle);
    inf_safetensors_free(st);
    free(copy);
}

static void test_bad(void)
{
    expect_bad_raw("\x02\0\0\0", 4, INF_EFORMAT, "a file of 4 bytes is too short");
    expect_bad_raw("\0\0\0\0\0\0\x01\0{}", 10, INF_ELIMIT,
                   "offset 0: header length 281474976710656 exceeds the limit of 104857600");
    expect_bad_raw("\x40\0\0\0\0\0\0\0{}", 10, INF_EFORMAT,
                   "offset 0: header length 64 exceeds the 2 bytes that remain");
    expect_bad_raw("\x02\0\0\0\0\0\0\0[]", 10, INF_EFORMAT, "offset 8: the header is not a JSON");
    expect_bad_raw("\x01\0\0\0\0\0\0\0{", 9, INF_EFORMAT, "the header is not a JSON object");
    expect_bad("{\"a\": }", 0, INF_EFORMAT, "header JSON:");
    expect_bad("{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
               "\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}",
               2, INF_EFORMAT, "duplicate");
    expect_bad("{\"a\": 5}", 0, INF_EFORMAT, "tensor 'a': not an object");
    expect_bad("{\"a\":{\"shape\":[1],\"data_offsets\":[0,1]}}", 1, INF_EFORMAT,
               "tensor 'a': no \"dtype\" string");
    expect_bad("{\"a\":{\"dtype\":\"F7\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1, INF_EFORMAT,
               "tensor 'a': unknown dtype 'F7'");
    expect_bad("{\"a\":{\"dtype\":\"U8\",\"shape\":1,\"data_offsets\":[0,1]}}", 1, INF_EFORMAT,
               "tensor 'a': no \"shape\" array");
    expect_bad("{\"a\":{\"dtype\":\"U8\",\"shape\":[-1],\"data_offsets\":[0,1]}}", 1, INF_EFORMAT,
               "tensor 'a': shape[0] is not a non-negative integer");
    expect_bad("{\"a\":{\"dtype\":\"U8\",\"shape\":[1.0],\"data_offsets\":[0,1]}}", 1, INF_EFORMAT,
               "shape[0] is not a non-negative integer");
    expect_bad("{\"a\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,1]}}", 1,
               INF_EFORMAT, "tensor 'a': 9 dimensions, at most 8 allowed");
    expect_bad("{\"a\":{\"dtype\":\"U8\",\"shape\":[4294967296,4294967296],"
               "\"data_offsets\":[0,1]}}",
               1, INF_EFORMAT, "the element count overflows");
    expect_bad("{\"a\":{\"dtype\":\"F64\",\"shape\":[4611686018427387904],"
               "\"data_offsets\":[0,1]}}",
               1, INF_EFORMAT, "the byte size overflows");
    expect_bad("{\"a\":{\"dtype\":\"F4\",\"shape\":[3],\"data_offsets\":[0,1]}}", 1, INF_EFORMAT,
               "tensor 'a': 3 values of F4 do not fill whole bytes");
    expect_bad("{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0]}}", 1, INF_EFORMAT,
               "\"data_offsets\" is not [begin, end]");
    expect_bad("{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[2,1]}}", 2, INF_EFORMAT,
               "\"data_offsets\" is not [begin, end]");
    expect_bad("{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,\"1\"]}}", 1,
               INF_EFORMAT, "\"data_offsets\" is not [begin, end]");
    expect_bad("{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]}}", 1, INF_EFORMAT,
               "tensor 'a': data_offsets [0, 2) exceed the 1 bytes of data");
    expect_bad("{\"lm_head.weight\":{\"dtype\":\"F32\",\"shape\":[4,8],"
               "\"data_offsets\":[0,96]}}",
               96, INF_EFORMAT,
               "tensor 'lm_head.weight': data_offsets [0, 96) hold 96 bytes but shape [4, 8] of "
               "F32 needs 128");
    expect_bad("{\"a\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[0,8]},"
               "\"b\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[4,12]}}",
               12, INF_EFORMAT, "tensors 'a' and 'b' overlap: data_offsets [0, 8) and [4, 12)");
    expect_bad("{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]},"
               "\"b\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[8,12]}}",
               12, INF_EFORMAT, "bytes [4, 8) of the data section belong to no tensor");
    expect_bad("{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]}}", 6, INF_EFORMAT,
               "bytes [4, 6) of the data section belong to no tensor");
    expect_bad("{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[4,8]}}", 8, INF_EFORMAT,
               "bytes [0, 4) of the data section belong to no tensor");
    expect_bad("{\"__metadata__\": [1]}", 0, INF_EFORMAT, "__metadata__ is not an object");
    expect_bad("{\"__metadata__\": {\"n\": 1}}", 0, INF_EFORMAT,
               "__metadata__ 'n' is not a string");
    expect_bad("{\"a\\nb\":{\"dtype\":\"F7\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1,
               INF_EFORMAT, "tensor 'a?b': unknown dtype");
}

/* Seeded byte flips over the header: no crash, and a refusal always says why. */
static void test_flips(void)
{
    struct blob b = make(good_header, data64, 34);
    uint64_t s = 0x243f6a8885a308d3u;
    int accepted = 0;

    for (int r = 0; r < 4000; r++) {
        size_t where[3];
        int k = 1 + r % 3;
        for (int i = 0; i < k; i++) {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            where[i] = (size_t)(s % (8 + strlen(good_header)));
            b.p[where[i]] ^= (uint8_t)(1 + (s >> 32) % 255);
        }
        struct inf_safetensors *st = NULL;
        struct inf_error err = {0};
        inf_status rc = inf_safetensors_open_memory(b.p, b.n, &st, &err);
        if (rc == INF_OK) {
            accepted++;
            for (size_t i = 0; i < inf_safetensors_n_tensors(st); i++) {
                const struct inf_st_tensor *t = inf_safetensors_tensor_at(st, i);
                if ((const uint8_t *)t->data + t->n_bytes > b.p + b.n)
                    T__FAIL("round %d: tensor outside the image", r);
            }
            inf_safetensors_free(st);
        } else if ((rc != INF_EFORMAT && rc != INF_ELIMIT) || !err.msg[0]) {
            T__FAIL("round %d: rc %d '%s'", r, rc, err.msg);
        } else {
            t__passed++;
        }
        free(b.p);
        b = make(good_header, data64, 34);
    }
    T_OK(accepted < 4000);
    free(b.p);
}

/* ---- files and shards ---- */

static char dir[] = "/tmp/inferno-st-XXXXXX";

static void write_blob(const char *name, struct blob b)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(b.p, 1, b.n, f) != b.n)
        abort();
    fclose(f);
    free(b.p);
}

static void write_text(const char *name, const char *text)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (!f)
        abort();
    fputs(text, f);
    fclose(f);
}

static void test_files(void)
{
    struct inf_safetensors *st = NULL;
    struct inf_error err = {0};
    char path[256];

    write_blob("model.safetensors", make(good_header, data64, 34));
    snprintf(path, sizeof(path), "%s/model.safetensors", dir);
    T_EQ_INT(inf_safetensors_open_file(path, &st, &err), INF_OK);
    if (st) {
        const struct inf_st_tensor *a = inf_safetensors_find_tensor(st, "a");
        check_good(st, (const uint8_t *)a->data);
        T_EQ_STR(inf_safetensors_shard_path(st, 0), path);
    }
    inf_safetensors_free(st);

    struct inf_model_format_info info;
    T_EQ_INT(inf_model_detect_file(path, &info, &err), INF_OK);
    T_EQ_INT(info.format, INF_MODEL_FORMAT_SAFETENSORS);

    T_EQ_INT(inf_safetensors_open_file("/nonexistent.safetensors", &st, &err), INF_ENOTFOUND);
    write_blob("bad.safetensors", make("{\"a\":1}", NULL, 0));
    snprintf(path, sizeof(path), "%s/bad.safetensors", dir);
    T_EQ_INT(inf_safetensors_open_file(path, &st, &err), INF_EFORMAT);
    T_CONTAINS(err.msg, "bad.safetensors': tensor 'a': not an object");
}

static void test_shards(void)
{
    struct inf_safetensors *st = NULL;
    struct inf_error err = {0};
    char path[256];
    uint8_t d1[16], d2[8];

    for (int i = 0; i < 16; i++)
        d1[i] = (uint8_t)(i + 1);
    for (int i = 0; i < 8; i++)
        d2[i] = (uint8_t)(100 + i);
    write_blob("model-00001-of-00002.safetensors",
               make("{\"__metadata__\":{\"format\":\"pt\"},"
                    "\"embed\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}",
                    d1, 16));
    mkdir(strcat(strcpy(path, dir), "/sub"), 0700);
    write_blob("sub/model-00002-of-00002.safetensors",
               make("{\"__metadata__\":{\"format\":\"tf\",\"extra\":\"x\"},"
                    "\"norm\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[0,4]},"
                    "\"head\":{\"dtype\":\"I8\",\"shape\":[4],\"data_offsets\":[4,8]}}",
                    d2, 8));
    write_text("model.safetensors.index.json",
               "{\"metadata\": {\"total_size\": 24},\n \"weight_map\": {\n"
               "  \"embed\": \"model-00001-of-00002.safetensors\",\n"
               "  \"norm\": \"sub/model-00002-of-00002.safetensors\",\n"
               "  \"head\": \"sub/model-00002-of-00002.safetensors\"}}\n");
    snprintf(path, sizeof(path), "%s/model.safetensors.index.json", dir);
    T_EQ_INT(inf_safetensors_open_index(path, &st, &err), INF_OK);
    if (!st) {
        fprintf(stderr, "%s\n", err.msg);
    } else {
        T_EQ_INT(inf_safetensors_n_shards(st), 2);
        T_CONTAINS(inf_safetensors_shard_path(st, 1), "/sub/model-00002-of-00002.safetensors");
        T_EQ_INT(inf_safetensors_n_tensors(st), 3);
        T_EQ_U64(inf_safetensors_index_total_size(st), 24);
        const struct inf_st_tensor *t = inf_safetensors_find_tensor(st, "head");
        T_OK(t && t->shard == 1 && memcmp(t->data, d2 + 4, 4) == 0);
        t = inf_safetensors_find_tensor(st, "embed");
        T_OK(t && t->shard == 0 && memcmp(t->data, d1, 16) == 0);
        T_EQ_STR(inf_safetensors_tensor_at(st, 0)->name, "embed");
        T_EQ_STR(inf_safetensors_tensor_at(st, 2)->name, "head");
        /* the first shard's metadata wins */
        T_EQ_STR(inf_safetensors_metadata(st, "format"), "pt");
        T_EQ_STR(inf_safetensors_metadata(st, "extra"), "x");
        T_EQ_INT(inf_safetensors_check_supported(st, &err), INF_OK);
    }
    inf_safetensors_free(st);

    struct inf_model_format_info info;
    T_EQ_INT(inf_model_detect_file(path, &info, &err), INF_OK);
    T_EQ_INT(info.format, INF_MODEL_FORMAT_SAFETENSORS_INDEX);

    static const struct {
        const char *json;
        inf_status code;
        const char *needle;
    } bad[] = {
        {"{\"weight_map\": {\"embed\": \"model-00001-of-00002.safetensors\", \"norm\": "
         "\"sub/model-00002-of-00002.safetensors\"}}",
         INF_EFORMAT, "tensor 'head' in '"},
        {"{\"weight_map\": {\"embed\": \"model-00001-of-00002.safetensors\", \"norm\": "
         "\"model-00001-of-00002.safetensors\", \"head\": "
         "\"sub/model-00002-of-00002.safetensors\"}}",
         INF_EFORMAT, "tensor 'norm' is mapped to '"},
        {"{\"weight_map\": {\"embed\": \"model-00001-of-00002.safetensors\", \"ghost\": "
         "\"model-00001-of-00002.safetensors\"}}",
         INF_EFORMAT, "tensor 'ghost' is mapped to '"},
        {"{\"weight_map\": {\"embed\": \"missing.safetensors\"}}", INF_ENOTFOUND, "cannot open '"},
        {"{\"weight_map\": {\"embed\": \"../model-00001-of-00002.safetensors\"}}", INF_EFORMAT,
         "which is not a relative path inside the checkpoint"},
        {"{\"weight_map\": {\"embed\": \"/etc/passwd\"}}", INF_EFORMAT, "not a relative path"},
        {"{\"weight_map\": {\"embed\": 3}}", INF_EFORMAT, "'embed' does not map to a file name"},
        {"{\"metadata\": {}}", INF_EFORMAT, "index.json': no \"weight_map\" object"},
        {"{\"metadata\": {\"total_size\": -1}, \"weight_map\": {}}", INF_EFORMAT,
         "total_size is not a non-negative integer"},
        {"[1, 2", INF_EFORMAT, "index.json': line 1, column"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        write_text("model.safetensors.index.json", bad[i].json);
        T_EQ_INT(inf_safetensors_open_index(path, &st, &err), bad[i].code);
        T_CONTAINS(err.msg, bad[i].needle);
        T_OK(st == NULL);
        inf_safetensors_free(st);
        st = NULL;
    }
    /* a broken shard is named */
    write_blob("model-00001-of-00002.safetensors", make("{\"embed\":7}", NULL, 0));
    write_text("model.safetensors.index.json",
               "{\"weight_map\": {\"embed\": \"model-00001-of-00002.safetensors\"}}");
    T_EQ_INT(inf_safetensors_open_index(path, &st, &err), INF_EFORMAT);
    T_CONTAINS(err.msg, "model-00001-of-00002.safetensors': tensor 'embed': not an object");
    T_EQ_INT(inf_safetensors_open_index("/nonexistent/index.json", &st, &err), INF_ENOTFOUND);
}

static void cleanup(void)
{
    const char *names[] = {"model.safetensors",
                           "bad.safetensors",
                           "model-00001-of-00002.safetensors",
                           "sub/model-00002-of-00002.safetensors",
                           "model.safetensors.index.json",
                           "sub"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        char path[256];
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        if (unlink(path) != 0)
            rmdir(path);
    }
    rmdir(dir);
}

int main(void)
{
    T_RUN(test_dtypes);
    T_RUN(test_good);
    T_RUN(test_bad);
    T_RUN(test_flips);
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    T_RUN(test_files);
    T_RUN(test_shards);
    cleanup();
    T_DONE();
}
