/*
 * api_parse.c - request validation for every endpoint (see api.h). No model is needed here:
 * values are checked for type and range, unsupported OpenAI parameters are refused with 400
 * naming the parameter, and unknown parameters are refused unless they are harmless OpenAI
 * fields that change nothing for a local model (metadata, store, service_tier...).
 */
#include <limits.h>
#include <math.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "server/api.h"
#include "tokenizer/unicode.h"

/* ---- errors --------------------------------------------------------------------------------- */

const char *api_error_type(int status)
{
    switch (status) {
    case 401:
        return "authentication_error";
    case 403:
        return "permission_error";
    case 429:
        return "rate_limit_error";
    default:
        return status >= 500 ? "server_error" : "invalid_request_error";
    }
}

bool api_fail(struct api_error *e, int status, const char *param, const char *fmt, ...)
{
    va_list ap;
    e->status = status;
    e->type = api_error_type(status);
    e->code = NULL;
    snprintf(e->param, sizeof(e->param), "%s", param ? param : "");
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof(e->message), fmt, ap);
    va_end(ap);
    return false;
}

json_t *api_error_json(const struct api_error *e)
{
    json_t *o = json_object();
    json_object_set_new(o, "message", api_json_str(e->message, strlen(e->message)));
    json_object_set_new(o, "type", json_string(e->type ? e->type : api_error_type(e->status)));
    json_object_set_new(o, "param",
                        e->param[0] ? api_json_str(e->param, strlen(e->param)) : json_null());
    json_object_set_new(o, "code", e->code ? json_string(e->code) : json_null());
    json_t *root = json_object();
    json_object_set_new(root, "error", o);
    return root;
}

/* ---- UTF-8, ids, base64 --------------------------------------------------------------------- */

bool api_utf8_valid(const char *s, size_t len)
{
    return inf__utf8_valid_prefix((const unsigned char *)s, len) == len;
}

/* Invalid sequences and NUL bytes (kept out of JSON strings) become U+FFFD. */
char *api_utf8_sanitize(const char *s, size_t len, size_t *out_len)
{
    const unsigned char *u = (const unsigned char *)s;
    char *out = malloc(len * 3 + 1);
    size_t o = 0;
    if (!out)
        return NULL;
    for (size_t i = 0; i < len;) {
        const int k = inf__utf8_char_status(u + i, len - i);
        if (k > 0 && u[i] != 0) {
            memcpy(out + o, s + i, (size_t)k);
            o += (size_t)k;
            i += (size_t)k;
        } else {
            memcpy(out + o, "\xEF\xBF\xBD", 3);
            o += 3;
            i++;
        }
    }
    out[o] = '\0';
    if (out_len)
        *out_len = o;
    return out;
}

json_t *api_json_str(const char *s, size_t len)
{
    if (api_utf8_valid(s, len) && !memchr(s, 0, len))
        return json_stringn(s, len);
    size_t n;
    char *c = api_utf8_sanitize(s, len, &n);
    if (!c)
        return NULL;
    json_t *j = json_stringn(c, n);
    free(c);
    return j;
}

size_t api_json_escape(const char *s, size_t len, char *out)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') {
            out[o++] = (char)c;
            continue;
        }
        out[o++] = '\\';
        switch (c) {
        case '"':
            out[o++] = '"';
            break;
        case '\\':
            out[o++] = '\\';
            break;
        case '\b':
            out[o++] = 'b';
            break;
        case '\f':
            out[o++] = 'f';
            break;
        case '\n':
            out[o++] = 'n';
            break;
        case '\r':
            out[o++] = 'r';
            break;
        case '\t':
            out[o++] = 't';
            break;
        default:
            out[o++] = 'u';
            out[o++] = '0';
            out[o++] = '0';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    return o;
}

uint64_t api_random_u64(void)
{
    uint64_t v = 0;
    if (getrandom(&v, sizeof(v), 0) != (ssize_t)sizeof(v)) {
        /* getrandom cannot fail for 8 bytes after boot; fall back to the clock anyway */
        v = (uint64_t)time(NULL) * 6364136223846793005ull + (uint64_t)(uintptr_t)&v;
    }
    return v;
}

void api_random_id(char *out, size_t n)
{
    static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    unsigned char buf[64];
    if (n > sizeof(buf))
        n = sizeof(buf);
    if (getrandom(buf, n, 0) != (ssize_t)n)
        for (size_t i = 0; i < n; i++)
            buf[i] = (unsigned char)api_random_u64();
    for (size_t i = 0; i < n; i++)
        out[i] = alphabet[buf[i] % 62];
    out[n] = '\0';
}

char *api_base64(const unsigned char *d, size_t len)
{
    if (len > (size_t)INT_MAX / 4 * 3 - 3)
        return NULL;
    unsigned char *out = malloc((len + 2) / 3 * 4 + 1);
    if (out)
        EVP_EncodeBlock(out, d, (int)len); /* standard alphabet, '=' padding, NUL-terminated */
    return (char *)out;
}

/* ---- body and field helpers ----------------------------------------------------------------- */

/* Skip JSON whitespace from p; returns the first other byte's index (or end). */
static size_t scan_ws(const char *d, size_t n, size_t p)
{
    while (p < n && (d[p] == ' ' || d[p] == '\t' || d[p] == '\n' || d[p] == '\r'))
        p++;
    return p;
}

/* Skip one JSON string starting at d[p] == '"'; returns the index after its closing quote, or n
   when it is unterminated. */
static size_t scan_string(const char *d, size_t n, size_t p)
{
    for (p++; p < n; p++) {
        if (d[p] == '\\')
            p++;
        else if (d[p] == '"')
            return p + 1;
    }
    return n;
}

/* Skip one JSON value at d[p] (no validation: the real parser judges it afterwards). */
static size_t scan_value(const char *d, size_t n, size_t p)
{
    size_t depth = 0;
    while (p < n) {
        char c = d[p];
        if (c == '"')
            p = scan_string(d, n, p);
        else if (c == '{' || c == '[')
            depth++, p++;
        else if (c == '}' || c == ']') {
            if (depth == 0)
                return p;
            depth--, p++;
        } else if (c == ',' && depth == 0)
            return p;
        else
            p++;
        if (depth == 0 && (c == '"' || c == '}' || c == ']'))
            return p;
    }
    return p;
}

/*
 * jansson holds integers as int64, so a `seed` in [2^63, 2^64) — a valid uint64 — fails to parse
 * as "too big integer". Find the top-level member "seed" whose value is such a literal; on
 * success *start and *end delimit the literal and *val holds it.
 */
static bool find_big_seed(const char *d, size_t n, size_t *start, size_t *end, uint64_t *val)
{
    size_t p = scan_ws(d, n, 0);
    if (p >= n || d[p] != '{')
        return false;
    p++;
    for (;;) {
        p = scan_ws(d, n, p);
        if (p >= n || d[p] != '"')
            return false;
        size_t k0 = p + 1, k1 = scan_string(d, n, p);
        if (k1 >= n)
            return false;
        bool is_seed = k1 - 1 - k0 == 4 && memcmp(d + k0, "seed", 4) == 0;
        p = scan_ws(d, n, k1);
        if (p >= n || d[p] != ':')
            return false;
        p = scan_ws(d, n, p + 1);
        if (is_seed) {
            size_t q = p;
            uint64_t v = 0;
            while (q < n && d[q] >= '0' && d[q] <= '9') {
                unsigned digit = (unsigned)(d[q] - '0');
                if (v > (UINT64_MAX - digit) / 10)
                    return false; /* beyond 2^64 - 1: let the parser report it */
                v = v * 10 + digit;
                q++;
            }
            if (q == p || v <= (uint64_t)INT64_MAX || (q - p > 1 && d[p] == '0'))
                return false;
            if (q < n && (d[q] == '.' || d[q] == 'e' || d[q] == 'E'))
                return false;
            *start = p;
            *end = q;
            *val = v;
            return true;
        }
        p = scan_ws(d, n, scan_value(d, n, p));
        if (p >= n || d[p] != ',')
            return false;
        p++;
    }
}

/* The body parsed with a big uint64 seed (see find_big_seed) replaced by its int64 two's
   complement, the form the seed parser reads back as the same uint64. NULL if not that case. */
static json_t *parse_with_big_seed(const char *data, size_t len)
{
    size_t a, b;
    uint64_t v;
    if (!find_big_seed(data, len, &a, &b, &v))
        return NULL;
    char *copy = malloc(len);
    if (!copy)
        return NULL;
    memcpy(copy, data, len);
    memset(copy + a, ' ', b - a);
    copy[a] = '0';
    json_error_t jerr;
    json_t *j = json_loadb(copy, len, 0, &jerr);
    free(copy);
    if (j && json_is_object(j) &&
        json_object_set_new(j, "seed", json_integer((json_int_t)(int64_t)v)) == 0)
        return j;
    json_decref(j);
    return NULL;
}

json_t *api_parse_body(const char *data, size_t len, struct api_error *e)
{
    json_error_t jerr;
    if (len == 0) {
        api_fail(e, 400, NULL, "the request body is empty; expected a JSON object");
        return NULL;
    }
    json_t *j = json_loadb(data, len, 0, &jerr);
    if (!j && json_error_code(&jerr) == json_error_numeric_overflow)
        j = parse_with_big_seed(data, len);
    if (!j) {
        api_fail(e, 400, NULL,
                 "we could not parse the JSON body of your request: %s (line %d, column %d)",
                 jerr.text, jerr.line, jerr.column);
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        api_fail(e, 400, NULL, "the request body must be a JSON object");
        return NULL;
    }
    return j;
}

/* Member `name` unless absent or null. */
static json_t *opt(json_t *o, const char *name)
{
    json_t *v = json_object_get(o, name);
    return json_is_null(v) ? NULL : v;
}

static const char *json_type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
        return "an integer";
    case JSON_REAL:
        return "a number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    default:
        return "null";
    }
}

static bool get_num(json_t *o, const char *name, double lo, double hi, double *out,
                    struct api_error *e)
{
    json_t *v = opt(o, name);
    if (!v)
        return true;
    if (!json_is_number(v))
        return api_fail(e, 400, name, "'%s' must be a number, not %s", name, json_type_name(v));
    double d = json_number_value(v);
    if (!(d >= lo && d <= hi))
        return api_fail(e, 400, name, "'%s' must be between %g and %g, got %g", name, lo, hi, d);
    *out = d;
    return true;
}

static bool get_int(json_t *o, const char *name, long long lo, long long hi, long long *out,
                    struct api_error *e)
{
    json_t *v = opt(o, name);
    if (!v)
        return true;
    if (!json_is_integer(v))
        return api_fail(e, 400, name, "'%s' must be an integer, not %s", name, json_type_name(v));
    long long d = json_integer_value(v);
    if (d < lo || d > hi)
        return api_fail(e, 400, name, "'%s' must be between %lld and %lld, got %lld", name, lo, hi,
                        d);
    *out = d;
    return true;
}

static bool get_bool(json_t *o, const char *name, bool *out, struct api_error *e)
{
    json_t *v = opt(o, name);
    if (!v)
        return true;
    if (!json_is_boolean(v))
        return api_fail(e, 400, name, "'%s' must be a boolean, not %s", name, json_type_name(v));
    *out = json_is_true(v);
    return true;
}

static bool get_model(json_t *o, char *out, size_t size, bool required, struct api_error *e)
{
    json_t *v = opt(o, "model");
    out[0] = '\0';
    if (!v)
        return required ? api_fail(e, 400, "model", "'model' is required") : true;
    if (!json_is_string(v))
        return api_fail(e, 400, "model", "'model' must be a string, not %s", json_type_name(v));
    if (json_string_length(v) >= size)
        return api_fail(e, 400, "model", "'model' is too long (at most %zu bytes)", size - 1);
    memcpy(out, json_string_value(v), json_string_length(v) + 1);
    return true;
}

/* Refuse members not in `known` (NULL-terminated). */
static bool check_known(json_t *o, const char *const *known, struct api_error *e)
{
    const char *key;
    json_t *v;
    json_object_foreach(o, key, v)
    {
        bool ok = false;
        for (size_t i = 0; known[i] && !ok; i++)
            ok = strcmp(key, known[i]) == 0;
        if (!ok)
            return api_fail(e, 400, key, "unrecognized request argument supplied: %s", key);
    }
    return true;
}

/* ---- shared generation options -------------------------------------------------------------- */

static bool parse_stop(json_t *o, struct api_gen *g, struct api_error *e)
{
    json_t *v = opt(o, "stop");
    if (!v)
        return true;
    if (json_is_string(v)) {
        if (json_string_length(v) == 0)
            return api_fail(e, 400, "stop", "'stop' must not be an empty string");
        g->stop[g->n_stop++] = strdup(json_string_value(v));
        return true;
    }
    if (!json_is_array(v))
        return api_fail(e, 400, "stop", "'stop' must be a string or an array of strings");
    if (json_array_size(v) > SRV_MAX_STOP)
        return api_fail(e, 400, "stop", "'stop' has %zu entries; at most %d are supported",
                        json_array_size(v), SRV_MAX_STOP);
    size_t i;
    json_t *s;
    json_array_foreach(v, i, s)
    {
        if (!json_is_string(s))
            return api_fail(e, 400, "stop", "'stop[%zu]' must be a string", i);
        if (json_string_length(s) == 0)
            return api_fail(e, 400, "stop", "'stop[%zu]' must not be empty", i);
        g->stop[g->n_stop++] = strdup(json_string_value(s));
    }
    return true;
}

static bool parse_logit_bias(json_t *o, struct api_gen *g, struct api_error *e)
{
    json_t *v = opt(o, "logit_bias");
    if (!v)
        return true;
    if (!json_is_object(v))
        return api_fail(e, 400, "logit_bias",
                        "'logit_bias' must be an object mapping token ids "
                        "to numbers");
    if (json_object_size(v) > 1024)
        return api_fail(e, 400, "logit_bias", "'logit_bias' has more than 1024 entries");
    g->bias = calloc(json_object_size(v) + 1, sizeof(*g->bias));
    if (!g->bias)
        return api_fail(e, 500, NULL, "out of memory");
    const char *key;
    json_t *b;
    json_object_foreach(v, key, b)
    {
        char *end;
        if (!*key || strlen(key) > 10 || key[0] < '0' || key[0] > '9')
            return api_fail(e, 400, "logit_bias", "'logit_bias' key '%.32s' is not a token id",
                            key);
        long long id = strtoll(key, &end, 10);
        if (*end || id < 0 || id > INT32_MAX)
            return api_fail(e, 400, "logit_bias", "'logit_bias' key '%.32s' is not a token id",
                            key);
        if (!json_is_number(b))
            return api_fail(e, 400, "logit_bias", "'logit_bias' values must be numbers");
        double d = json_number_value(b);
        if (!(d >= -100 && d <= 100))
            return api_fail(e, 400, "logit_bias",
                            "'logit_bias' values must be between -100 and 100, got %g", d);
        g->bias[g->n_bias].token = (inf_token)id;
        /* -100 bans the token outright, as OpenAI documents */
        g->bias[g->n_bias].bias = d <= -100 ? -INFINITY : (float)d;
        g->n_bias++;
    }
    return true;
}

/* ---- constrained output -------------------------------------------------------------------- */

/* A JSON Schema name as OpenAI accepts it: a-z, A-Z, 0-9, '_' and '-', at most 64. */
static bool valid_name(const char *s, size_t len)
{
    if (len == 0 || len > 64)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return false;
    }
    return true;
}

/* f takes the schema v as its JSON text. */
static bool format_schema(struct api_format *f, json_t *v, bool strict, const char *param,
                          struct api_error *e)
{
    f->text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!f->text)
        return api_fail(e, 500, NULL, "out of memory");
    f->len = strlen(f->text);
    f->kind = API_FMT_JSON_SCHEMA;
    f->strict = strict;
    f->param = param;
    return true;
}

/* response_format: {type: text | json_object | json_schema, json_schema: {name, schema, strict,
   description}}; llama.cpp's {type: json_object, schema} too. */
static bool parse_response_format(json_t *v, struct api_format *f, struct api_error *e)
{
    static const char *const P = "response_format";
    if (!json_is_object(v))
        return api_fail(e, 400, P, "'response_format' must be an object, not %s",
                        json_type_name(v));
    json_t *type = json_object_get(v, "type");
    if (!json_is_string(type))
        return api_fail(e, 400, P, "'response_format.type' must be a string");
    const char *t = json_string_value(type);
    const char *key;
    json_t *m;
    if (!strcmp(t, "text")) {
        json_object_foreach(v, key, m) if (strcmp(key, "type") != 0) return api_fail(
            e, 400, P, "unrecognized member 'response_format.%.40s'", key);
        return true;
    }
    if (!strcmp(t, "json_object")) {
        json_t *schema = NULL;
        json_object_foreach(v, key, m)
        {
            if (!strcmp(key, "schema"))
                schema = m;
            else if (strcmp(key, "type") != 0)
                return api_fail(e, 400, P, "unrecognized member 'response_format.%.40s'", key);
        }
        if (schema && !json_is_object(schema) && !json_is_boolean(schema))
            return api_fail(e, 400, P, "'response_format.schema' must be an object");
        if (schema)
            return format_schema(f, schema, false, P, e);
        /* JSON mode: any JSON object */
        json_t *obj = json_pack("{s:s}", "type", "object");
        bool ok = obj && format_schema(f, obj, false, P, e);
        json_decref(obj);
        return ok || api_fail(e, 500, NULL, "out of memory");
    }
    if (strcmp(t, "json_schema") != 0)
        return api_fail(e, 400, P,
                        "'response_format.type' must be 'text', 'json_object' or 'json_schema', "
                        "not '%.40s'",
                        t);
    json_object_foreach(
        v, key,
        m) if (strcmp(key, "type") &&
               strcmp(key,
                      "json_schema")) return api_fail(e, 400, P,
                                                      "unrecognized member 'response_format.%.40s'",
                                                      key);
    json_t *js = json_object_get(v, "json_schema");
    if (!json_is_object(js))
        return api_fail(e, 400, P, "'response_format.json_schema' must be an object");
    json_t *schema = NULL, *name = NULL;
    bool strict = false;
    json_object_foreach(js, key, m)
    {
        if (!strcmp(key, "name"))
            name = m;
        else if (!strcmp(key, "schema"))
            schema = m;
        else if (!strcmp(key, "strict")) {
            if (!json_is_boolean(m) && !json_is_null(m))
                return api_fail(e, 400, P,
                                "'response_format.json_schema.strict' must be a boolean");
            strict = json_is_true(m);
        } else if (!strcmp(key, "description")) {
            if (!json_is_string(m))
                return api_fail(e, 400, P,
                                "'response_format.json_schema.description' must be a string");
        } else {
            return api_fail(e, 400, P, "unrecognized member 'response_format.json_schema.%.40s'",
                            key);
        }
    }
    if (!json_is_string(name))
        return api_fail(e, 400, P, "'response_format.json_schema.name' is required (a string)");
    if (!valid_name(json_string_value(name), json_string_length(name)))
        return api_fail(e, 400, P,
                        "'response_format.json_schema.name' must be 1 to 64 characters of a-z, "
                        "A-Z, 0-9, '_' and '-'");
    if (schema && !json_is_object(schema) && !json_is_boolean(schema))
        return api_fail(e, 400, P, "'response_format.json_schema.schema' must be an object");
    if (!schema) { /* OpenAI: no schema means any JSON value */
        json_t *any = json_object();
        bool ok = any && format_schema(f, any, strict, P, e);
        json_decref(any);
        return ok || api_fail(e, 500, NULL, "out of memory");
    }
    return format_schema(f, schema, strict, P, e);
}

/* response_format, and llama.cpp's `grammar` (GBNF text) and `json_schema` (a schema): at most
   one of them constrains the output. */
static bool parse_format(json_t *o, struct api_format *f, struct api_error *e)
{
    json_t *rf = opt(o, "response_format"), *gr = opt(o, "grammar"), *js = opt(o, "json_schema");
    if (rf && !parse_response_format(rf, f, e))
        return false;
    if (gr) {
        if (!json_is_string(gr))
            return api_fail(e, 400, "grammar", "'grammar' must be a string (GBNF), not %s",
                            json_type_name(gr));
        if (f->kind != API_FMT_TEXT)
            return api_fail(
                e, 400, "grammar",
                "'grammar' cannot be combined with a 'response_format' other than text");
        if (json_string_length(gr) > 0) {
            f->text = strdup(json_string_value(gr));
            if (!f->text)
                return api_fail(e, 500, NULL, "out of memory");
            f->len = json_string_length(gr);
            f->kind = API_FMT_GBNF;
            f->param = "grammar";
        }
    }
    if (js) {
        if (!json_is_object(js) && !json_is_boolean(js))
            return api_fail(e, 400, "json_schema", "'json_schema' must be an object, not %s",
                            json_type_name(js));
        if (f->kind != API_FMT_TEXT)
            return api_fail(e, 400, "json_schema",
                            "'json_schema' cannot be combined with 'grammar' or a "
                            "'response_format' other than text");
        return format_schema(f, js, false, "json_schema", e);
    }
    return true;
}

/*
 * Fields common to chat and completions. legacy: completions (max_tokens defaults to 16 and
 * `logprobs` is an integer there, handled by the caller).
 */
static bool parse_gen(json_t *o, struct api_gen *g, bool legacy, struct api_error *e)
{
    double d;
    long long i;

    g->sampling = inf_sampler_default_params();
    /* OpenAI's defaults: temperature 1, top_p 1, no top-k / min-p, no penalties */
    g->sampling.temperature = 1.0f;
    g->sampling.top_k = 0;
    g->sampling.top_p = 1.0f;
    g->sampling.min_p = 0.0f;
    g->sampling.typical_p = 1.0f;
    g->sampling.repeat_penalty = 1.0f;
    g->sampling.frequency_penalty = 0.0f;
    g->sampling.presence_penalty = 0.0f;
    g->sampling.penalty_last_n = 64;
    g->max_tokens = legacy ? 16 : -1;
    g->n = 1;

    if (!get_model(o, g->model, sizeof(g->model), false, e))
        return false;
    i = g->max_tokens;
    if (!get_int(o, "max_tokens", legacy ? 0 : 1, INT32_MAX, &i, e))
        return false;
    if (!legacy && !get_int(o, "max_completion_tokens", 1, INT32_MAX, &i, e))
        return false;
    g->max_tokens = (int32_t)i;
    d = g->sampling.temperature;
    if (!get_num(o, "temperature", 0, 2, &d, e))
        return false;
    g->sampling.temperature = (float)d;
    d = g->sampling.top_p;
    if (!get_num(o, "top_p", 0, 1, &d, e))
        return false;
    g->sampling.top_p = (float)d;
    d = 0;
    if (!get_num(o, "presence_penalty", -2, 2, &d, e))
        return false;
    g->sampling.presence_penalty = (float)d;
    d = 0;
    if (!get_num(o, "frequency_penalty", -2, 2, &d, e))
        return false;
    g->sampling.frequency_penalty = (float)d;
    /* extensions (llama.cpp's names) */
    i = 0;
    if (!get_int(o, "top_k", 0, 1 << 24, &i, e))
        return false;
    g->sampling.top_k = (int32_t)i;
    d = 0;
    if (!get_num(o, "min_p", 0, 1, &d, e))
        return false;
    g->sampling.min_p = (float)d;
    d = 1;
    if (!get_num(o, "repeat_penalty", 0, 10, &d, e))
        return false;
    g->sampling.repeat_penalty = (float)d;
    if (!get_bool(o, "ignore_eos", &g->ignore_eos, e))
        return false;

    json_t *seed = opt(o, "seed");
    if (seed) {
        if (!json_is_integer(seed))
            return api_fail(e, 400, "seed", "'seed' must be an integer, not %s",
                            json_type_name(seed));
        /* modulo 2^64: api_parse_body hands seeds in [2^63, 2^64) over as negative int64 */
        g->sampling.seed = (uint64_t)json_integer_value(seed);
        g->seed_given = true;
    } else {
        g->sampling.seed = api_random_u64();
    }
    i = 1;
    if (!get_int(o, "n", 1, API_MAX_N, &i, e))
        return false;
    g->n = (int)i;
    if (!get_bool(o, "stream", &g->stream, e))
        return false;
    json_t *so = opt(o, "stream_options");
    if (so) {
        if (!json_is_object(so))
            return api_fail(e, 400, "stream_options", "'stream_options' must be an object");
        if (!g->stream)
            return api_fail(e, 400, "stream_options",
                            "'stream_options' is only allowed when 'stream' is true");
        static const char *const so_known[] = {"include_usage", "include_obfuscation", NULL};
        if (!check_known(so, so_known, e))
            return false;
        if (!get_bool(so, "include_usage", &g->include_usage, e)) {
            snprintf(e->param, sizeof(e->param), "stream_options.include_usage");
            return false;
        }
    }
    json_t *user = opt(o, "user");
    if (user && !json_is_string(user))
        return api_fail(e, 400, "user", "'user' must be a string");
    if (!parse_stop(o, g, e) || !parse_logit_bias(o, g, e))
        return false;
    return parse_format(o, &g->format, e);
}

static void gen_release(struct api_gen *g)
{
    for (int i = 0; i < g->n_stop; i++)
        free(g->stop[i]);
    free(g->bias);
    free(g->format.text);
    memset(g, 0, sizeof(*g));
}

/* ---- chat ----------------------------------------------------------------------------------- */

static const char *const chat_known[] = {
    "model", "messages", "max_tokens", "max_completion_tokens", "temperature", "top_p",
    "presence_penalty", "frequency_penalty", "logit_bias", "seed", "stop", "n", "logprobs",
    "top_logprobs", "stream", "stream_options", "user", "top_k", "min_p", "repeat_penalty",
    "ignore_eos", "response_format", "grammar", "json_schema", "tools", "tool_choice",
    "parallel_tool_calls",
    /* accepted, changing nothing here: */
    "metadata", "store", "service_tier", "prompt_cache_key", "safety_identifier",
    /* checked below: refused unless neutral */
    "functions", "function_call", "audio", "modalities", "prediction", "reasoning_effort",
    "web_search_options", "verbosity", NULL};

/* Parameters refused unless absent, null or neutral. */
static bool chat_unsupported(json_t *o, struct api_error *e)
{
    json_t *v;
    if (opt(o, "functions"))
        return api_fail(e, 400, "functions",
                        "'functions' (deprecated) is not supported; use 'tools'");
    if (opt(o, "function_call"))
        return api_fail(e, 400, "function_call",
                        "'function_call' (deprecated) is not supported; use 'tool_choice'");
    if (opt(o, "audio"))
        return api_fail(e, 400, "audio", "'audio' output is not supported");
    if ((v = opt(o, "modalities"))) {
        bool ok = json_is_array(v);
        size_t i;
        json_t *m;
        json_array_foreach(v, i, m) ok =
            ok && json_is_string(m) && strcmp(json_string_value(m), "text") == 0;
        if (!ok)
            return api_fail(e, 400, "modalities", "only the 'text' modality is supported");
    }
    if (opt(o, "prediction"))
        return api_fail(e, 400, "prediction", "'prediction' is not supported");
    if (opt(o, "reasoning_effort"))
        return api_fail(e, 400, "reasoning_effort", "'reasoning_effort' is not supported");
    if (opt(o, "web_search_options"))
        return api_fail(e, 400, "web_search_options", "'web_search_options' is not supported");
    if (opt(o, "verbosity"))
        return api_fail(e, 400, "verbosity", "'verbosity' is not supported");
    json_t *md = opt(o, "metadata");
    if (md && !json_is_object(md))
        return api_fail(e, 400, "metadata", "'metadata' must be an object");
    json_t *st = opt(o, "store");
    if (st && !json_is_boolean(st))
        return api_fail(e, 400, "store", "'store' must be a boolean");
    return true;
}

/* A function name as OpenAI accepts it (the same alphabet as schema names). */
static bool check_function(json_t *fn, size_t i, struct api_error *e)
{
    char param[64];
    snprintf(param, sizeof(param), "tools[%zu].function", i);
    if (!json_is_object(fn))
        return api_fail(e, 400, "tools", "'%s' must be an object", param);
    const char *key;
    json_t *m;
    json_object_foreach(fn, key, m)
    {
        if (!strcmp(key, "name") || !strcmp(key, "parameters"))
            continue;
        if (!strcmp(key, "description") && json_is_string(m))
            continue;
        if (!strcmp(key, "strict") && (json_is_boolean(m) || json_is_null(m)))
            continue;
        if (!strcmp(key, "description") || !strcmp(key, "strict"))
            return api_fail(e, 400, "tools", "'%s.%s' has the wrong type (%s)", param, key,
                            json_type_name(m));
        return api_fail(e, 400, "tools", "unrecognized member '%s.%.40s'", param, key);
    }
    json_t *name = json_object_get(fn, "name");
    if (!json_is_string(name))
        return api_fail(e, 400, "tools", "'%s.name' is required (a string)", param);
    if (!valid_name(json_string_value(name), json_string_length(name)))
        return api_fail(e, 400, "tools",
                        "'%s.name' must be 1 to 64 characters of a-z, A-Z, 0-9, '_' and '-'",
                        param);
    json_t *params = json_object_get(fn, "parameters");
    if (params && !json_is_object(params) && !json_is_null(params))
        return api_fail(e, 400, "tools", "'%s.parameters' must be an object (a JSON Schema)",
                        param);
    return true;
}

/* tools, tool_choice and parallel_tool_calls (see api_chat_req). */
static bool parse_tools(json_t *o, struct api_chat_req *r, struct api_error *e)
{
    json_t *tools = opt(o, "tools"), *choice = opt(o, "tool_choice");
    r->parallel_tool_calls = true;
    if (!get_bool(o, "parallel_tool_calls", &r->parallel_tool_calls, e))
        return false;
    if (tools && !json_is_array(tools))
        return api_fail(e, 400, "tools", "'tools' must be an array of tools");
    if (tools && json_array_size(tools) > 128)
        return api_fail(e, 400, "tools", "'tools' has %zu entries; at most 128 are supported",
                        json_array_size(tools));
    size_t i;
    json_t *t;
    json_array_foreach(tools, i, t)
    {
        json_t *type = json_is_object(t) ? json_object_get(t, "type") : NULL;
        if (!json_is_string(type))
            return api_fail(e, 400, "tools", "'tools[%zu]' must be an object with a 'type'", i);
        if (strcmp(json_string_value(type), "function") != 0)
            return api_fail(e, 400, "tools",
                            "'tools[%zu].type' '%.40s' is not supported (only 'function')", i,
                            json_string_value(type));
        const char *key;
        json_t *m;
        json_object_foreach(
            t, key,
            m) if (strcmp(key, "type") &&
                   strcmp(key,
                          "function")) return api_fail(e, 400, "tools",
                                                       "unrecognized member 'tools[%zu].%.40s'", i,
                                                       key);
        json_t *fn = json_object_get(t, "function");
        if (!check_function(fn, i, e))
            return false;
        const char *name = json_string_value(json_object_get(fn, "name"));
        for (size_t k = 0; k < i; k++)
            if (!strcmp(name, json_string_value(json_object_get(
                                  json_object_get(json_array_get(tools, k), "function"), "name"))))
                return api_fail(e, 400, "tools", "two tools are named '%s'", name);
    }
    bool have = tools && json_array_size(tools) > 0;
    r->tool_choice = have ? API_TOOLS_AUTO : API_TOOLS_NONE;
    if (choice) {
        if (!have && !(json_is_string(choice) && !strcmp(json_string_value(choice), "none")))
            return api_fail(e, 400, "tool_choice",
                            "'tool_choice' is only allowed when 'tools' are specified");
        if (json_is_string(choice)) {
            const char *c = json_string_value(choice);
            if (!strcmp(c, "none"))
                r->tool_choice = API_TOOLS_NONE;
            else if (!strcmp(c, "auto"))
                r->tool_choice = API_TOOLS_AUTO;
            else if (!strcmp(c, "required"))
                r->tool_choice = API_TOOLS_REQUIRED;
            else
                return api_fail(e, 400, "tool_choice",
                                "'tool_choice' must be 'none', 'auto', 'required' or "
                                "{\"type\": \"function\", \"function\": {\"name\": ...}}");
        } else {
            json_t *type = json_is_object(choice) ? json_object_get(choice, "type") : NULL;
            json_t *fn = json_is_object(choice) ? json_object_get(choice, "function") : NULL;
            json_t *name = json_is_object(fn) ? json_object_get(fn, "name") : NULL;
            if (!json_is_string(type) || strcmp(json_string_value(type), "function") != 0 ||
                !json_is_string(name))
                return api_fail(e, 400, "tool_choice",
                                "'tool_choice' must be 'none', 'auto', 'required' or "
                                "{\"type\": \"function\", \"function\": {\"name\": ...}}");
            bool found = false;
            json_array_foreach(tools, i, t) found =
                found ||
                !strcmp(json_string_value(json_object_get(json_object_get(t, "function"), "name")),
                        json_string_value(name));
            if (!found)
                return api_fail(e, 400, "tool_choice",
                                "'tool_choice' names the function '%.64s', which is not in 'tools'",
                                json_string_value(name));
            r->tool_choice = API_TOOLS_NAMED;
            snprintf(r->tool_name, sizeof(r->tool_name), "%s", json_string_value(name));
        }
    }
    if (have)
        r->tools = json_incref(tools);
    if (r->tool_choice != API_TOOLS_NONE && r->gen.format.kind != API_FMT_TEXT &&
        r->tool_choice != API_TOOLS_AUTO)
        return api_fail(e, 400, "tool_choice",
                        "'tool_choice' '%s' cannot be combined with a constrained output format",
                        r->tool_choice == API_TOOLS_NAMED ? r->tool_name : "required");
    return true;
}

/* One message's content as a string: a string, or the text parts joined by "\n". */
static bool message_content(json_t *c, size_t idx, const char *role, json_t **out,
                            struct api_error *e)
{
    char param[96];
    snprintf(param, sizeof(param), "messages[%zu].content", idx);
    if (!c) {
        if (strcmp(role, "assistant") == 0) {
            *out = json_string("");
            return true;
        }
        return api_fail(e, 400, param, "'%s' is required", param);
    }
    if (json_is_string(c)) {
        *out = json_copy(c);
        return true;
    }
    if (!json_is_array(c))
        return api_fail(e, 400, param, "'%s' must be a string or an array of content parts", param);
    size_t i, total = 0;
    json_t *part;
    json_array_foreach(c, i, part)
    {
        json_t *type = json_is_object(part) ? json_object_get(part, "type") : NULL;
        if (!json_is_string(type))
            return api_fail(e, 400, param, "'%s[%zu]' must be an object with a 'type'", param, i);
        const char *t = json_string_value(type);
        if (strcmp(t, "text") != 0) {
            if (!strcmp(t, "image_url") || !strcmp(t, "input_audio") || !strcmp(t, "file") ||
                !strcmp(t, "refusal"))
                return api_fail(e, 400, param,
                                "content parts of type '%s' are not supported "
                                "(text only)",
                                t);
            return api_fail(e, 400, param, "unknown content part type '%.64s'", t);
        }
        json_t *text = json_object_get(part, "text");
        if (!json_is_string(text))
            return api_fail(e, 400, param, "'%s[%zu].text' must be a string", param, i);
        total += json_string_length(text) + 1;
    }
    char *buf = malloc(total + 1);
    size_t o = 0;
    if (!buf)
        return api_fail(e, 500, NULL, "out of memory");
    json_array_foreach(c, i, part)
    {
        json_t *text = json_object_get(part, "text");
        if (i)
            buf[o++] = '\n';
        memcpy(buf + o, json_string_value(text), json_string_length(text));
        o += json_string_length(text);
    }
    *out = json_stringn(buf, o);
    free(buf);
    return *out != NULL || api_fail(e, 500, NULL, "out of memory");
}

/*
 * An assistant message's tool_calls, normalised to [{id, type: "function", function: {name,
 * arguments}}]: arguments become the object their JSON text holds (chat templates print them
 * with tojson), or stay a string when they hold something else. *out NULL when absent or empty.
 */
static bool message_tool_calls(json_t *v, size_t idx, json_t **out, struct api_error *e)
{
    char param[96];
    *out = NULL;
    snprintf(param, sizeof(param), "messages[%zu].tool_calls", idx);
    if (!v)
        return true;
    if (!json_is_array(v))
        return api_fail(e, 400, param, "'%s' must be an array", param);
    if (json_array_size(v) == 0)
        return true;
    json_t *a = json_array();
    size_t i;
    json_t *c;
    json_array_foreach(v, i, c)
    {
        json_t *id = json_is_object(c) ? json_object_get(c, "id") : NULL;
        json_t *type = json_is_object(c) ? json_object_get(c, "type") : NULL;
        json_t *fn = json_is_object(c) ? json_object_get(c, "function") : NULL;
        json_t *name = json_is_object(fn) ? json_object_get(fn, "name") : NULL;
        json_t *args = json_is_object(fn) ? json_object_get(fn, "arguments") : NULL;
        if (!json_is_string(id) || !json_is_string(name) || !json_is_string(args) ||
            (type && !json_is_null(type) &&
             !(json_is_string(type) && !strcmp(json_string_value(type), "function")))) {
            json_decref(a);
            return api_fail(e, 400, param,
                            "'%s[%zu]' must be {\"id\": string, \"type\": \"function\", "
                            "\"function\": {\"name\": string, \"arguments\": string}}",
                            param, i);
        }
        json_t *parsed =
            json_loadb(json_string_value(args), json_string_length(args), JSON_DECODE_ANY, NULL);
        if (!json_is_object(parsed)) {
            json_decref(parsed);
            parsed = json_copy(args);
        }
        json_t *nf = json_object();
        json_object_set(nf, "name", name);
        json_object_set_new(nf, "arguments", parsed);
        json_t *nc = json_object();
        json_object_set(nc, "id", id);
        json_object_set_new(nc, "type", json_string("function"));
        json_object_set_new(nc, "function", nf);
        json_array_append_new(a, nc);
    }
    *out = a;
    return true;
}

/* Validate messages and return them normalised (see api_chat_req). */
static json_t *parse_messages(json_t *o, struct api_error *e)
{
    json_t *msgs = json_object_get(o, "messages");
    if (!msgs || json_is_null(msgs)) {
        api_fail(e, 400, "messages", "'messages' is required");
        return NULL;
    }
    if (!json_is_array(msgs)) {
        api_fail(e, 400, "messages", "'messages' must be an array");
        return NULL;
    }
    if (json_array_size(msgs) == 0) {
        api_fail(e, 400, "messages", "'messages' must contain at least one message");
        return NULL;
    }
    if (json_array_size(msgs) > API_MAX_MESSAGE) {
        api_fail(e, 400, "messages", "too many messages (at most %d)", API_MAX_MESSAGE);
        return NULL;
    }
    json_t *out = json_array();
    size_t i;
    json_t *m;
    json_array_foreach(msgs, i, m)
    {
        char param[96];
        snprintf(param, sizeof(param), "messages[%zu]", i);
        if (!json_is_object(m)) {
            api_fail(e, 400, param, "'%s' must be an object", param);
            goto fail;
        }
        json_t *role = json_object_get(m, "role");
        if (!json_is_string(role)) {
            snprintf(param, sizeof(param), "messages[%zu].role", i);
            api_fail(e, 400, param, "'%s' must be a string", param);
            goto fail;
        }
        const char *r = json_string_value(role);
        const char *norm = NULL;
        if (!strcmp(r, "system") || !strcmp(r, "user") || !strcmp(r, "assistant") ||
            !strcmp(r, "tool"))
            norm = r;
        else if (!strcmp(r, "developer"))
            norm = "system"; /* OpenAI's newer name for system instructions */
        snprintf(param, sizeof(param), "messages[%zu].role", i);
        if (!norm && !strcmp(r, "function")) {
            api_fail(e, 400, param,
                     "messages with role 'function' (deprecated) are not supported; use 'tool'");
            goto fail;
        }
        if (!norm) {
            api_fail(e, 400, param,
                     "invalid role '%.64s': expected system, developer, user, assistant or tool",
                     r);
            goto fail;
        }
        const bool assistant = !strcmp(norm, "assistant"), tool = !strcmp(norm, "tool");
        const char *key;
        json_t *v;
        json_object_foreach(m, key, v)
        {
            if (!strcmp(key, "role") || !strcmp(key, "content") || !strcmp(key, "name"))
                continue;
            if (!strcmp(key, "refusal") && json_is_null(v))
                continue;
            if ((assistant && !strcmp(key, "tool_calls")) || (tool && !strcmp(key, "tool_call_id")))
                continue;
            snprintf(param, sizeof(param), "messages[%zu].%.40s", i, key);
            if (json_is_null(v))
                continue;
            if (!strcmp(key, "tool_calls") || !strcmp(key, "tool_call_id"))
                api_fail(e, 400, param, "'%s' is only allowed in %s messages", param,
                         key[5] == 'c' ? "assistant" : "tool");
            else if (!strcmp(key, "function_call") || !strcmp(key, "audio") ||
                     !strcmp(key, "refusal"))
                api_fail(e, 400, param, "'%s' is not supported", param);
            else
                api_fail(e, 400, param, "unrecognized message field '%s'", param);
            goto fail;
        }
        json_t *calls = NULL;
        if (assistant && !message_tool_calls(opt(m, "tool_calls"), i, &calls, e))
            goto fail;
        json_t *content = NULL;
        /* an assistant message that only calls tools has no content */
        if (!message_content(opt(m, "content"), i, norm, &content, e)) {
            json_decref(calls);
            goto fail;
        }
        json_t *nm = json_object();
        json_object_set_new(nm, "role", json_string(norm));
        json_object_set_new(nm, "content", content);
        if (calls)
            json_object_set_new(nm, "tool_calls", calls);
        if (tool) {
            json_t *id = opt(m, "tool_call_id");
            if (!json_is_string(id)) {
                json_decref(nm);
                snprintf(param, sizeof(param), "messages[%zu].tool_call_id", i);
                api_fail(e, 400, param, "'%s' is required in tool messages (a string)", param);
                goto fail;
            }
            json_object_set(nm, "tool_call_id", id);
        }
        json_t *name = opt(m, "name");
        if (name) {
            if (!json_is_string(name)) {
                json_decref(nm);
                snprintf(param, sizeof(param), "messages[%zu].name", i);
                api_fail(e, 400, param, "'%s' must be a string", param);
                goto fail;
            }
            json_object_set(nm, "name", name);
        }
        json_array_append_new(out, nm);
    }
    return out;
fail:
    json_decref(out);
    return NULL;
}

bool api_parse_chat(json_t *o, struct api_chat_req *r, struct api_error *e)
{
    memset(r, 0, sizeof(*r));
    if (!check_known(o, chat_known, e) || !chat_unsupported(o, e))
        return false;
    if (!parse_gen(o, &r->gen, false, e))
        return false;
    json_t *lp = opt(o, "logprobs");
    if (lp && !json_is_boolean(lp))
        return api_fail(e, 400, "logprobs", "'logprobs' must be a boolean");
    r->gen.logprobs = json_is_true(lp);
    long long k = 0;
    if (!get_int(o, "top_logprobs", 0, SRV_MAX_TOP_LOGPROBS, &k, e))
        return false;
    if (opt(o, "top_logprobs") && !r->gen.logprobs)
        return api_fail(e, 400, "top_logprobs", "'top_logprobs' requires 'logprobs' to be true");
    r->gen.top_logprobs = (int)k;
    if (!parse_tools(o, r, e))
        return false;
    r->messages = parse_messages(o, e);
    return r->messages != NULL;
}

void api_chat_release(struct api_chat_req *r)
{
    gen_release(&r->gen);
    json_decref(r->messages);
    json_decref(r->tools);
    r->messages = NULL;
    r->tools = NULL;
}

/* ---- prompts: string | [string] | [int] | [[int]] ------------------------------------------- */

static bool token_array(json_t *a, const char *param, struct api_prompt *p, struct api_error *e)
{
    size_t n = json_array_size(a);
    if (n == 0)
        return api_fail(e, 400, param, "'%s' contains an empty token array", param);
    p->ids = malloc(n * sizeof(*p->ids));
    if (!p->ids)
        return api_fail(e, 500, NULL, "out of memory");
    size_t i;
    json_t *t;
    json_array_foreach(a, i, t)
    {
        if (!json_is_integer(t) || json_integer_value(t) < 0 || json_integer_value(t) > INT32_MAX)
            return api_fail(e, 400, param, "'%s' token ids must be non-negative integers", param);
        p->ids[i] = (inf_token)json_integer_value(t);
    }
    p->n_ids = n;
    return true;
}

static bool parse_prompts(json_t *o, const char *param, bool allow_empty_text,
                          struct api_prompt **out, size_t *n_out, struct api_error *e)
{
    json_t *v = json_object_get(o, param);
    *out = NULL;
    *n_out = 0;
    if (!v || json_is_null(v))
        return api_fail(e, 400, param, "'%s' is required", param);
    if (json_is_string(v)) {
        if (!allow_empty_text && json_string_length(v) == 0)
            return api_fail(e, 400, param, "'%s' must not be empty", param);
        *out = calloc(1, sizeof(**out));
        if (!*out)
            return api_fail(e, 500, NULL, "out of memory");
        *n_out = 1;
        (*out)->text = strdup(json_string_value(v));
        (*out)->len = json_string_length(v);
        return true;
    }
    if (!json_is_array(v))
        return api_fail(e, 400, param,
                        "'%s' must be a string, an array of strings, or token arrays", param);
    size_t n = json_array_size(v);
    if (n == 0)
        return api_fail(e, 400, param, "'%s' must not be an empty array", param);
    json_t *first = json_array_get(v, 0);
    if (json_is_integer(first)) { /* one token array */
        *out = calloc(1, sizeof(**out));
        if (!*out)
            return api_fail(e, 500, NULL, "out of memory");
        *n_out = 1;
        return token_array(v, param, *out, e);
    }
    if (n > API_MAX_INPUTS)
        return api_fail(e, 400, param, "'%s' has %zu entries; at most %d are allowed", param, n,
                        API_MAX_INPUTS);
    *out = calloc(n, sizeof(**out));
    if (!*out)
        return api_fail(e, 500, NULL, "out of memory");
    *n_out = n;
    size_t i;
    json_t *x;
    json_array_foreach(v, i, x)
    {
        if (json_is_string(x)) {
            if (!allow_empty_text && json_string_length(x) == 0)
                return api_fail(e, 400, param, "'%s[%zu]' must not be empty", param, i);
            (*out)[i].text = strdup(json_string_value(x));
            (*out)[i].len = json_string_length(x);
        } else if (json_is_array(x)) {
            if (!token_array(x, param, &(*out)[i], e))
                return false;
        } else {
            return api_fail(e, 400, param, "'%s[%zu]' must be a string or an array of token ids",
                            param, i);
        }
    }
    return true;
}

static void prompts_release(struct api_prompt *p, size_t n)
{
    for (size_t i = 0; p && i < n; i++) {
        free(p[i].text);
        free(p[i].ids);
    }
    free(p);
}

/* ---- completions ---------------------------------------------------------------------------- */

static const char *const completion_known[] = {"model",
                                               "prompt",
                                               "max_tokens",
                                               "temperature",
                                               "top_p",
                                               "n",
                                               "stream",
                                               "stream_options",
                                               "logprobs",
                                               "echo",
                                               "stop",
                                               "presence_penalty",
                                               "frequency_penalty",
                                               "best_of",
                                               "logit_bias",
                                               "user",
                                               "seed",
                                               "suffix",
                                               "top_k",
                                               "min_p",
                                               "repeat_penalty",
                                               "ignore_eos",
                                               "metadata",
                                               "store",
                                               "response_format",
                                               "grammar",
                                               "json_schema",
                                               NULL};

bool api_parse_completion(json_t *o, struct api_completion_req *r, struct api_error *e)
{
    memset(r, 0, sizeof(*r));
    r->logprobs = -1;
    if (!check_known(o, completion_known, e))
        return false;
    if (opt(o, "suffix"))
        return api_fail(e, 400, "suffix", "'suffix' (insertion) is not supported");
    if (!parse_gen(o, &r->gen, true, e))
        return false;
    long long k = -1;
    if (!get_int(o, "logprobs", 0, SRV_MAX_TOP_LOGPROBS, &k, e))
        return false;
    r->logprobs = (int)k;
    r->gen.logprobs = k >= 0;
    r->gen.top_logprobs = k > 0 ? (int)k : 0;
    if (!get_bool(o, "echo", &r->echo, e))
        return false;
    long long best_of = r->gen.n;
    if (!get_int(o, "best_of", 1, API_MAX_N, &best_of, e))
        return false;
    if (best_of != r->gen.n)
        return api_fail(e, 400, "best_of",
                        "'best_of' other than 'n' is not supported (got best_of %lld, n %d)",
                        best_of, r->gen.n);
    if (r->echo && r->gen.stream && r->logprobs >= 0)
        return api_fail(e, 400, "echo", "'echo' with 'logprobs' is not supported when streaming");
    return parse_prompts(o, "prompt", true, &r->prompts, &r->n_prompts, e);
}

void api_completion_release(struct api_completion_req *r)
{
    gen_release(&r->gen);
    prompts_release(r->prompts, r->n_prompts);
    r->prompts = NULL;
    r->n_prompts = 0;
}

/* ---- embeddings ----------------------------------------------------------------------------- */

static const char *const embedding_known[] = {"model",      "input", "encoding_format",
                                              "dimensions", "user",  NULL};

bool api_parse_embedding(json_t *o, struct api_embedding_req *r, struct api_error *e)
{
    memset(r, 0, sizeof(*r));
    if (!check_known(o, embedding_known, e))
        return false;
    if (!get_model(o, r->model, sizeof(r->model), false, e))
        return false;
    json_t *f = opt(o, "encoding_format");
    if (f) {
        if (json_is_string(f) && !strcmp(json_string_value(f), "float"))
            r->encoding = API_ENC_FLOAT;
        else if (json_is_string(f) && !strcmp(json_string_value(f), "base64"))
            r->encoding = API_ENC_BASE64;
        else
            return api_fail(e, 400, "encoding_format",
                            "'encoding_format' must be 'float' or 'base64'");
    }
    long long d = 0;
    if (!get_int(o, "dimensions", 1, 1 << 20, &d, e))
        return false;
    r->dimensions = d;
    json_t *user = opt(o, "user");
    if (user && !json_is_string(user))
        return api_fail(e, 400, "user", "'user' must be a string");
    return parse_prompts(o, "input", false, &r->inputs, &r->n_inputs, e);
}

void api_embedding_release(struct api_embedding_req *r)
{
    prompts_release(r->inputs, r->n_inputs);
    r->inputs = NULL;
    r->n_inputs = 0;
}

/* ---- rerank --------------------------------------------------------------------------------- */

static const char *const rerank_known[] = {
    "model", "query", "documents", "texts", "top_n", "return_documents", "return_text", NULL};

bool api_parse_rerank(json_t *o, struct api_rerank_req *r, struct api_error *e)
{
    memset(r, 0, sizeof(*r));
    if (!check_known(o, rerank_known, e))
        return false;
    if (!get_model(o, r->model, sizeof(r->model), false, e))
        return false;
    json_t *q = opt(o, "query");
    if (!q || !json_is_string(q))
        return api_fail(e, 400, "query", "'query' must be a string");
    r->query_len = json_string_length(q);
    r->query = malloc(r->query_len + 1);
    if (!r->query)
        return api_fail(e, 500, NULL, "out of memory");
    memcpy(r->query, json_string_value(q), r->query_len + 1);
    const char *key = opt(o, "documents") ? "documents" : "texts";
    json_t *d = opt(o, key);
    if (!d || !json_is_array(d) || json_array_size(d) == 0)
        return api_fail(e, 400, "documents", "'documents' must be a non-empty array of strings");
    for (size_t i = 0; i < json_array_size(d); i++)
        if (!json_is_string(json_array_get(d, i)))
            return api_fail(e, 400, "documents", "'documents[%zu]' must be a string", i);
    if (!parse_prompts(o, key, false, &r->docs, &r->n_docs, e))
        return false;
    long long n = 0;
    if (!get_int(o, "top_n", 1, 1 << 20, &n, e))
        return false;
    r->top_n = n;
    bool rd = false, rt = false;
    if (!get_bool(o, "return_documents", &rd, e) || !get_bool(o, "return_text", &rt, e))
        return false;
    r->return_documents = rd || rt;
    return true;
}

void api_rerank_release(struct api_rerank_req *r)
{
    free(r->query);
    r->query = NULL;
    prompts_release(r->docs, r->n_docs);
    r->docs = NULL;
    r->n_docs = 0;
}

/* ---- tokenize / detokenize / apply-template ------------------------------------------------- */

bool api_parse_tokenize(json_t *o, struct api_tokenize_req *r, struct api_error *e)
{
    static const char *const known[] = {"model",         "content",     "add_special",
                                        "parse_special", "with_pieces", NULL};
    memset(r, 0, sizeof(*r));
    r->parse_special = true;
    if (!check_known(o, known, e) || !get_model(o, r->model, sizeof(r->model), false, e))
        return false;
    json_t *c = json_object_get(o, "content");
    if (!json_is_string(c))
        return api_fail(e, 400, "content", "'content' must be a string");
    if (!get_bool(o, "add_special", &r->add_special, e) ||
        !get_bool(o, "parse_special", &r->parse_special, e) ||
        !get_bool(o, "with_pieces", &r->with_pieces, e))
        return false;
    r->content = strdup(json_string_value(c));
    r->len = json_string_length(c);
    return r->content != NULL || api_fail(e, 500, NULL, "out of memory");
}

void api_tokenize_release(struct api_tokenize_req *r)
{
    free(r->content);
    r->content = NULL;
}

bool api_parse_detokenize(json_t *o, struct api_detokenize_req *r, struct api_error *e)
{
    static const char *const known[] = {"model", "tokens", NULL};
    memset(r, 0, sizeof(*r));
    if (!check_known(o, known, e) || !get_model(o, r->model, sizeof(r->model), false, e))
        return false;
    json_t *t = json_object_get(o, "tokens");
    if (!json_is_array(t))
        return api_fail(e, 400, "tokens", "'tokens' must be an array of token ids");
    if (json_array_size(t) == 0)
        return true;
    struct api_prompt p = {0};
    if (!token_array(t, "tokens", &p, e)) {
        free(p.ids);
        return false;
    }
    r->ids = p.ids;
    r->n_ids = p.n_ids;
    return true;
}

void api_detokenize_release(struct api_detokenize_req *r)
{
    free(r->ids);
    r->ids = NULL;
}

bool api_parse_template(json_t *o, struct api_template_req *r, struct api_error *e)
{
    static const char *const known[] = {"model", "messages", NULL};
    memset(r, 0, sizeof(*r));
    if (!check_known(o, known, e) || !get_model(o, r->model, sizeof(r->model), false, e))
        return false;
    r->messages = parse_messages(o, e);
    return r->messages != NULL;
}

void api_template_release(struct api_template_req *r)
{
    json_decref(r->messages);
    r->messages = NULL;
}
