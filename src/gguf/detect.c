/*
 * detect.c - model-file format detection by content (see inferno/model_file.h for the rules).
 *
 * Every check reads only within the image and gives up at the first inconsistency; none of
 * them allocates except the JSON parse of a candidate safetensors index (capped in size).
 */
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "gguf/internal.h"
#include "inferno/model_file.h"
#include "inferno/safetensors.h"

const char *inf_model_format_name(enum inf_model_format format)
{
    switch (format) {
    case INF_MODEL_FORMAT_GGUF:
        return "gguf";
    case INF_MODEL_FORMAT_SAFETENSORS:
        return "safetensors";
    case INF_MODEL_FORMAT_SAFETENSORS_INDEX:
        return "safetensors-index";
    case INF_MODEL_FORMAT_ONNX:
        return "onnx";
    case INF_MODEL_FORMAT_PYTORCH:
        return "pytorch";
    case INF_MODEL_FORMAT_LLAMA2C:
        return "llama2c";
    default:
        return "unknown";
    }
}

static void detail(struct inf_model_format_info *out, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void detail(struct inf_model_format_info *out, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out->detail, sizeof(out->detail), fmt, ap);
    va_end(ap);
}

/* ---- GGUF ---- */

static bool is_gguf(const uint8_t *p, uint64_t n, struct inf_model_format_info *out)
{
    if (n < 8 || memcmp(p, "GGUF", 4) != 0)
        return false;
    uint32_t v = inf__le32(p + 4);
    bool be = false;
    if (v != 0 && (v & 0xffffu) == 0) {
        v = inf__bswap32(v);
        be = true;
    }
    if (v < 1 || v > 3)
        return false;
    out->gguf_version = v;
    detail(out, "GGUF v%" PRIu32 "%s", v, be ? ", big-endian" : "");
    return true;
}

/* ---- safetensors ---- */

static bool is_json_space(uint8_t c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static bool is_safetensors(const uint8_t *p, uint64_t n, struct inf_model_format_info *out)
{
    if (n < 10)
        return false;
    uint64_t len = inf__le64(p);
    if (len < 2 || len > INF_ST_MAX_HEADER || len > n - 8 || p[8] != '{')
        return false;
    uint64_t end = 8 + len;
    while (end > 9 && is_json_space(p[end - 1]))
        end--;
    if (p[end - 1] != '}')
        return false;
    detail(out, "safetensors, %" PRIu64 "-byte header", len);
    return true;
}

static bool is_safetensors_index(const uint8_t *p, uint64_t n, struct inf_model_format_info *out)
{
    uint64_t i = 0;
    json_error_t jerr;
    bool yes;

    while (i < n && is_json_space(p[i]))
        i++;
    if (i == n || p[i] != '{' || n > INF_ST_MAX_HEADER)
        return false;
    json_t *root = json_loadb((const char *)p, (size_t)n, 0, &jerr);
    json_t *map = json_object_get(root, "weight_map");
    yes = json_is_object(root) && json_is_object(map);
    if (yes)
        detail(out, "safetensors index of %zu tensors", json_object_size(map));
    json_decref(root);
    return yes;
}

/* ---- ONNX: a protobuf wire-format walk ---- */

enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_I32 = 5 };

struct pb {
    const uint8_t *p;
    uint64_t n, pos;
};

static bool pb_varint(struct pb *b, uint64_t *v)
{
    *v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (b->pos >= b->n)
            return false;
        uint8_t c = b->p[b->pos++];
        *v |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80))
            return true;
    }
    return false;
}

/* One field: its number, wire type, and (for varints) value or (for LEN) payload. */
struct pb_field {
    uint64_t number;
    unsigned wt;
    uint64_t value;
    const uint8_t *data;
    uint64_t len;
};

static bool pb_next(struct pb *b, struct pb_field *f)
{
    uint64_t key;
    if (!pb_varint(b, &key))
        return false;
    f->number = key >> 3;
    f->wt = (unsigned)(key & 7);
    if (f->number == 0 || f->number > 536870911u)
        return false;
    switch (f->wt) {
    case WT_VARINT:
        return pb_varint(b, &f->value);
    case WT_I64:
    case WT_I32: {
        uint64_t k = f->wt == WT_I64 ? 8 : 4;
        if (k > b->n - b->pos)
            return false;
        b->pos += k;
        return true;
    }
    case WT_LEN:
        if (!pb_varint(b, &f->len) || f->len > b->n - b->pos)
            return false;
        f->data = b->p + b->pos;
        b->pos += f->len;
        return true;
    default:
        return false; /* groups (3, 4) are not used by ONNX; 6 and 7 do not exist */
    }
}

/* A message whose fields all parse; listed field numbers must have wire type LEN. */
static bool pb_all_len(const uint8_t *p, uint64_t n, const unsigned *len_fields, size_t n_len)
{
    struct pb b = {.p = p, .n = n};
    struct pb_field f;
    while (b.pos < n) {
        if (!pb_next(&b, &f))
            return false;
        for (size_t i = 0; i < n_len; i++)
            if (f.number == len_fields[i] && f.wt != WT_LEN)
                return false;
    }
    return true;
}

static bool is_onnx(const uint8_t *p, uint64_t n, struct inf_model_format_info *out)
{
    /* ModelProto field -> wire type (0 = varint, 2 = LEN); other numbers may be anything */
    static const struct {
        unsigned number, wt;
    } fields[] = {{1, WT_VARINT}, {2, WT_LEN},  {3, WT_LEN},  {4, WT_LEN},
                  {5, WT_VARINT}, {6, WT_LEN},  {7, WT_LEN},  {8, WT_LEN},
                  {14, WT_LEN},   {20, WT_LEN}, {25, WT_LEN}, {26, WT_LEN}};
    static const unsigned graph_len[] = {1, 2, 5, 10, 11, 12, 13, 14, 15};
    static const unsigned opset_len[] = {1};
    struct pb b = {.p = p, .n = n};
    struct pb_field f;
    int n_ir = 0, n_graph = 0;
    int64_t ir = 0, opset = -1;

    if (n < 4)
        return false;
    while (b.pos < n) {
        if (!pb_next(&b, &f))
            return false;
        for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
            if (fields[i].number == f.number && fields[i].wt != f.wt)
                return false;
        if (f.number == 1) {
            n_ir++;
            ir = (int64_t)f.value;
        } else if (f.number == 7) {
            n_graph++;
            if (!pb_all_len(f.data, f.len, graph_len, 9))
                return false;
        } else if (f.number == 8) {
            /* OperatorSetIdProto: domain (1, LEN), version (2, varint) */
            struct pb o = {.p = f.data, .n = f.len};
            struct pb_field g;
            if (!pb_all_len(f.data, f.len, opset_len, 1))
                return false;
            while (o.pos < o.n && pb_next(&o, &g))
                if (g.number == 2 && g.wt == WT_VARINT && (int64_t)g.value > opset)
                    opset = (int64_t)g.value;
        }
    }
    if (n_ir != 1 || n_graph != 1 || ir < 1 || ir > 100)
        return false;
    out->onnx_ir_version = ir;
    if (opset >= 0)
        detail(out, "ONNX IR %" PRId64 ", opset %" PRId64, ir, opset);
    else
        detail(out, "ONNX IR %" PRId64, ir);
    return true;
}

/* ---- PyTorch ---- */

static uint16_t le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

/* 1: a zip with data.pkl; 0: not a zip; -1: a zip without data.pkl */
static int check_zip(const uint8_t *p, uint64_t n, struct inf_model_format_info *out)
{
    uint64_t eocd = UINT64_MAX, cd_off, cd_size, count;

    if (n < 22 || memcmp(p, "PK\x03\x04", 4) != 0)
        return 0;
    for (uint64_t i = n - 22 + 1; i-- > 0 && n - 22 - i <= 65535;) {
        if (inf__le32(p + i) == 0x06054b50u) {
            eocd = i;
            break;
        }
    }
    if (eocd == UINT64_MAX)
        return -1;
    count = le16(p + eocd + 10);
    cd_size = inf__le32(p + eocd + 12);
    cd_off = inf__le32(p + eocd + 16);
    if ((count == 0xffff || cd_size == 0xffffffffu || cd_off == 0xffffffffu) && eocd >= 20 &&
        inf__le32(p + eocd - 20) == 0x07064b50u) {
        uint64_t z = inf__le64(p + eocd - 20 + 8);
        if (z > n || n - z < 56 || inf__le32(p + z) != 0x06064b50u)
            return -1;
        count = inf__le64(p + z + 32);
        cd_size = inf__le64(p + z + 40);
        cd_off = inf__le64(p + z + 48);
    }
    if (cd_off > n || cd_size > n - cd_off)
        return -1;
    uint64_t pos = cd_off, end = cd_off + cd_size;
    for (uint64_t i = 0; i < count && end - pos >= 46; i++) {
        const uint8_t *e = p + pos;
        if (inf__le32(e) != 0x02014b50u)
            return -1;
        uint64_t name_len = le16(e + 28), extra = le16(e + 30), comment = le16(e + 32);
        if (46 + name_len + extra + comment > end - pos)
            return -1;
        const char *name = (const char *)e + 46;
        if ((name_len == 8 || (name_len > 8 && name[name_len - 9] == '/')) &&
            memcmp(name + name_len - 8, "data.pkl", 8) == 0) {
            detail(out, "PyTorch zip, %.*s", (int)(name_len < 120 ? name_len : 120), name);
            return 1;
        }
        pos += 46 + name_len + extra + comment;
    }
    return -1;
}

static bool is_legacy_torch(const uint8_t *p, uint64_t n, struct inf_model_format_info *out)
{
    /* pickle protocol 2, then LONG1 of 10 bytes: torch's magic number 0x1950a86a20f9469cfc6c */
    static const uint8_t magic[] = {0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c,
                                    0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};
    if (n < sizeof(magic) || memcmp(p, magic, sizeof(magic)) != 0)
        return false;
    detail(out, "PyTorch legacy pickle");
    return true;
}

/* ---- llama2.c ---- */

inf_status inf_llama2c_parse_header(const void *data, size_t size, struct inf_llama2c_config *out,
                                    struct inf_error *err)
{
    const uint8_t *p = data;
    int32_t h[7];
    uint64_t floats, head_size, kv_dim, dim, hidden, layers, vocab, seq;

    if (!p || size < 28)
        return inf_error_set(err, INF_EFORMAT, "too short for a llama2.c header");
    for (int i = 0; i < 7; i++)
        h[i] = (int32_t)inf__le32(p + 4 * i);
    struct inf_llama2c_config c = {h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[5] > 0};
    if (c.vocab_size < 0 && c.vocab_size != INT32_MIN)
        c.vocab_size = -c.vocab_size;
    if (c.dim <= 0 || c.dim > (1 << 16) || c.hidden_dim <= 0 || c.hidden_dim > (1 << 18) ||
        c.n_layers <= 0 || c.n_layers > 1024 || c.n_heads <= 0 || c.n_heads > 1024 ||
        c.n_kv_heads <= 0 || c.n_kv_heads > c.n_heads || c.vocab_size <= 0 ||
        c.vocab_size > (1 << 22) || c.seq_len <= 0 || c.seq_len > (1 << 22))
        return inf_error_set(err, INF_EFORMAT,
                             "llama2.c header out of range: dim %d, hidden_dim %d, n_layers %d, "
                             "n_heads %d, n_kv_heads %d, vocab_size %d, seq_len %d",
                             h[0], h[1], h[2], h[3], h[4], h[5], h[6]);
    if (c.dim % c.n_heads != 0)
        return inf_error_set(err, INF_EFORMAT, "llama2.c header: n_heads %d does not divide dim %d",
                             c.n_heads, c.dim);
    if (c.n_heads % c.n_kv_heads != 0)
        return inf_error_set(err, INF_EFORMAT,
                             "llama2.c header: n_kv_heads %d does not divide n_heads %d",
                             c.n_kv_heads, c.n_heads);
    dim = (uint64_t)c.dim;
    hidden = (uint64_t)c.hidden_dim;
    layers = (uint64_t)c.n_layers;
    vocab = (uint64_t)c.vocab_size;
    seq = (uint64_t)c.seq_len;
    head_size = dim / (uint64_t)c.n_heads;
    kv_dim = head_size * (uint64_t)c.n_kv_heads;
    /* run.c's memory_map_weights, in order; the sizes are bounded above, so nothing overflows */
    floats = vocab * dim                                /* token_embedding_table */
             + layers * dim                             /* rms_att_weight */
             + layers * dim * dim                       /* wq */
             + 2 * layers * dim * kv_dim                /* wk, wv */
             + layers * dim * dim                       /* wo */
             + layers * dim                             /* rms_ffn_weight */
             + 3 * layers * dim * hidden                /* w1, w2, w3 */
             + dim                                      /* rms_final_weight */
             + 2 * (seq * head_size / 2)                /* freq_cis_real, freq_cis_imag (unused) */
             + (c.shared_classifier ? 0 : vocab * dim); /* wcls */
    if (28 + 4 * floats != size)
        return inf_error_set(err, INF_EFORMAT,
                             "llama2.c header: file size %zu does not match the %" PRIu64
                             " bytes the header implies",
                             size, 28 + 4 * floats);
    *out = c;
    return INF_OK;
}

static bool is_llama2c(const uint8_t *p, uint64_t n, struct inf_model_format_info *out)
{
    struct inf_llama2c_config c;
    if (n > SIZE_MAX || inf_llama2c_parse_header(p, (size_t)n, &c, NULL) != INF_OK)
        return false;
    out->llama2c = c;
    detail(out, "llama2.c, dim %d, %d layers, vocab %d, %s classifier", c.dim, c.n_layers,
           c.vocab_size, c.shared_classifier ? "shared" : "separate");
    return true;
}

/* ---- dispatch ---- */

inf_status inf_model_detect_memory(const void *data, size_t size, struct inf_model_format_info *out,
                                   struct inf_error *err)
{
    const uint8_t *p = data;
    uint64_t n = size;
    int zip;

    memset(out, 0, sizeof(*out));
    if (!p)
        n = 0;
    if (is_gguf(p, n, out))
        out->format = INF_MODEL_FORMAT_GGUF;
    else if (is_safetensors(p, n, out))
        out->format = INF_MODEL_FORMAT_SAFETENSORS;
    else if ((zip = check_zip(p, n, out)) != 0) {
        if (zip < 0)
            return inf_error_set(err, INF_EFORMAT,
                                 "a zip archive without data.pkl: not a PyTorch checkpoint");
        out->format = INF_MODEL_FORMAT_PYTORCH;
    } else if (is_legacy_torch(p, n, out))
        out->format = INF_MODEL_FORMAT_PYTORCH;
    else if (is_onnx(p, n, out))
        out->format = INF_MODEL_FORMAT_ONNX;
    else if (is_llama2c(p, n, out))
        out->format = INF_MODEL_FORMAT_LLAMA2C;
    else if (is_safetensors_index(p, n, out))
        out->format = INF_MODEL_FORMAT_SAFETENSORS_INDEX;
    if (out->format != INF_MODEL_FORMAT_UNKNOWN)
        return INF_OK;
    if (n == 0)
        return inf_error_set(err, INF_EFORMAT, "an empty file is not a model");
    char start[40] = "";
    size_t len = 0;
    for (uint64_t i = 0; i < 8 && i < n; i++)
        len += (size_t)snprintf(start + len, sizeof(start) - len, "%s%02x", i ? " " : "", p[i]);
    return inf_error_set(err, INF_EFORMAT,
                         "not a model file: GGUF, safetensors, ONNX, PyTorch or llama2.c "
                         "expected (it starts with %s)",
                         start);
}

inf_status inf_model_detect_file(const char *path, struct inf_model_format_info *out,
                                 struct inf_error *err)
{
    struct inf__mapping m;
    inf_status rc;

    memset(out, 0, sizeof(*out));
    rc = inf__map_file(path, false, &m, err);
    if (rc != INF_OK)
        return rc;
    rc = inf_model_detect_memory(m.data, (size_t)m.size, out, err);
    if (rc != INF_OK)
        inf_error_prefix(err, "'%s'", path);
    inf__unmap(&m);
    return rc;
}
