/*
 * ollama_parse.c - Ollama's requests checked and translated into the OpenAI bodies the
 * handlers take (see ollama.h). Shapes from Ollama's docs/api.md.
 */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "inferno/log.h"
#include "server/ollama.h"

/* ---- options -----------------------------------------------------------------------------------
 */

static bool opt_num(json_t *o, const char *key, double lo, double hi, double *out,
                    struct api_error *e)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v))
        return true;
    if (!json_is_number(v))
        return api_fail(e, 400, key, "option \"%s\" must be a number, not %s", key,
                        json_is_string(v) ? "a string" : "another type");
    double d = json_number_value(v);
    if (!isfinite(d) || d < lo || d > hi)
        return api_fail(e, 400, key, "option \"%s\" is %g; it must be between %g and %g", key, d,
                        lo, hi);
    *out = d;
    return true;
}

static bool opt_int(json_t *o, const char *key, double lo, double hi, int64_t *out,
                    struct api_error *e)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v))
        return true;
    double d = 0;
    if (!opt_num(o, key, lo, hi, &d, e))
        return false;
    if (d != floor(d))
        return api_fail(e, 400, key, "option \"%s\" must be an integer", key);
    *out = (int64_t)d;
    return true;
}

void ollama_opts_release(struct ollama_opts *o)
{
    for (int i = 0; i < o->n_stop; i++)
        free(o->stop[i]);
    memset(o, 0, sizeof(*o));
}

bool ollama_parse_options(json_t *opts, struct ollama_opts *o, struct api_error *e)
{
    memset(o, 0, sizeof(*o));
    o->max_tokens = -1;
    o->sampling = inf_sampler_default_params();
    o->sampling.temperature = 0.8f;
    o->sampling.top_k = 40;
    o->sampling.top_p = 0.9f;
    o->sampling.min_p = 0.0f;
    o->sampling.typical_p = 1.0f;
    o->sampling.repeat_penalty = 1.1f;
    o->sampling.presence_penalty = 0.0f;
    o->sampling.frequency_penalty = 0.0f;
    o->sampling.penalty_last_n = 64;
    if (!opts || json_is_null(opts))
        return true;
    if (!json_is_object(opts))
        return api_fail(e, 400, "options", "'options' must be an object");
    static const char *const known[] = {"num_predict",
                                        "temperature",
                                        "top_k",
                                        "top_p",
                                        "min_p",
                                        "typical_p",
                                        "repeat_penalty",
                                        "repeat_last_n",
                                        "presence_penalty",
                                        "frequency_penalty",
                                        "seed",
                                        "stop",
                                        "num_ctx",
                                        "num_thread",
                                        NULL};
    const char *key;
    json_t *v;
    json_object_foreach(opts, key, v)
    {
        bool k = false;
        for (size_t i = 0; known[i]; i++)
            k = k || strcmp(known[i], key) == 0;
        if (!k)
            INF_LOG_DEBUG("http", "ollama: option '%.64s' is not used; ignored", key);
    }
    int64_t i = -1;
    if (!opt_int(opts, "num_predict", -2, INT32_MAX, &i, e))
        return false;
    o->max_tokens = i < 0 ? -1 : (int32_t)i;
    double d = o->sampling.temperature;
    if (!opt_num(opts, "temperature", 0, 100, &d, e))
        return false;
    o->sampling.temperature = (float)d;
    i = o->sampling.top_k;
    if (!opt_int(opts, "top_k", 0, 1 << 24, &i, e))
        return false;
    o->sampling.top_k = (int32_t)i;
    d = o->sampling.top_p;
    if (!opt_num(opts, "top_p", 0, 1, &d, e))
        return false;
    o->sampling.top_p = (float)d;
    d = o->sampling.min_p;
    if (!opt_num(opts, "min_p", 0, 1, &d, e))
        return false;
    o->sampling.min_p = (float)d;
    d = o->sampling.typical_p;
    if (!opt_num(opts, "typical_p", 0, 1, &d, e))
        return false;
    o->sampling.typical_p = (float)d;
    d = o->sampling.repeat_penalty;
    if (!opt_num(opts, "repeat_penalty", 0, 10, &d, e))
        return false;
    o->sampling.repeat_penalty = (float)d;
    i = o->sampling.penalty_last_n;
    if (!opt_int(opts, "repeat_last_n", -1, INT32_MAX, &i, e))
        return false;
    o->sampling.penalty_last_n = (int32_t)i;
    d = 0;
    if (!opt_num(opts, "presence_penalty", -100, 100, &d, e))
        return false;
    o->sampling.presence_penalty = (float)d;
    d = 0;
    if (!opt_num(opts, "frequency_penalty", -100, 100, &d, e))
        return false;
    o->sampling.frequency_penalty = (float)d;
    json_t *seed = json_object_get(opts, "seed");
    if (seed && !json_is_null(seed)) {
        if (!json_is_integer(seed))
            return api_fail(e, 400, "seed", "option \"seed\" must be an integer");
        /* Ollama: -1 (its default) is a random seed */
        if (json_integer_value(seed) >= 0) {
            o->sampling.seed = (uint64_t)json_integer_value(seed);
            o->seed_given = true;
        }
    }
    if (!opt_int(opts, "num_ctx", 0, INT32_MAX, &o->num_ctx, e) ||
        !opt_int(opts, "num_thread", 0, 4096, &o->num_thread, e))
        return false;
    json_t *stop = json_object_get(opts, "stop");
    if (stop && !json_is_null(stop)) {
        if (json_is_string(stop)) { /* one string: as a list of one */
            if (json_string_length(stop) > 0) {
                o->stop[o->n_stop] = strdup(json_string_value(stop));
                if (!o->stop[o->n_stop])
                    return api_fail(e, 500, NULL, "out of memory");
                o->n_stop++;
            }
        } else if (json_is_array(stop)) {
            if (json_array_size(stop) > SRV_MAX_STOP)
                return api_fail(e, 400, "stop", "option \"stop\" has %zu entries; at most %d",
                                json_array_size(stop), SRV_MAX_STOP);
            size_t k;
            json_t *s;
            json_array_foreach(stop, k, s)
            {
                if (!json_is_string(s))
                    return api_fail(e, 400, "stop", "option \"stop\" must hold strings");
                if (json_string_length(s) == 0)
                    continue;
                if (memchr(json_string_value(s), 0, json_string_length(s)))
                    return api_fail(e, 400, "stop", "option \"stop\" holds a NUL character");
                o->stop[o->n_stop] = strdup(json_string_value(s));
                if (!o->stop[o->n_stop])
                    return api_fail(e, 500, NULL, "out of memory");
                o->n_stop++;
            }
        } else {
            return api_fail(e, 400, "stop", "option \"stop\" must be an array of strings");
        }
        o->stop_given = true;
    }
    return true;
}

/* ---- keep_alive -------------------------------------------------------------------------------
 */

/* Go's time.ParseDuration: [-+]?(number unit)+ with units ns us µs ms s m h; "0" alone. */
static bool go_duration(const char *s, double *out)
{
    double sign = 1, total = 0;
    if (*s == '-' || *s == '+') {
        sign = *s == '-' ? -1 : 1;
        s++;
    }
    if (strcmp(s, "0") == 0) {
        *out = 0;
        return true;
    }
    if (!*s)
        return false;
    while (*s) {
        if (!isdigit((unsigned char)*s) && *s != '.')
            return false;
        char *end;
        double v = strtod(s, &end);
        if (end == s || !isfinite(v) || v < 0)
            return false;
        for (const char *p = s; p < end; p++) /* strtod also reads exponents and hex */
            if (!isdigit((unsigned char)*p) && *p != '.')
                return false;
        s = end;
        double unit;
        if (strncmp(s, "ns", 2) == 0)
            unit = 1e-9, s += 2;
        else if (strncmp(s, "us", 2) == 0)
            unit = 1e-6, s += 2;
        else if (strncmp(s, "\xc2\xb5s", 3) == 0 || strncmp(s, "\xce\xbcs", 3) == 0)
            unit = 1e-6, s += 3;
        else if (strncmp(s, "ms", 2) == 0)
            unit = 1e-3, s += 2;
        else if (*s == 's')
            unit = 1, s += 1;
        else if (*s == 'm')
            unit = 60, s += 1;
        else if (*s == 'h')
            unit = 3600, s += 1;
        else
            return false;
        total += v * unit;
        if (total > 1e12)
            return false;
    }
    *out = sign * total;
    return true;
}

bool ollama_parse_keep_alive(json_t *v, double *seconds, bool *given, struct api_error *e)
{
    *given = false;
    *seconds = -1;
    if (!v || json_is_null(v))
        return true;
    if (json_is_number(v)) {
        double d = json_number_value(v);
        if (!isfinite(d) || fabs(d) > 1e12)
            return api_fail(e, 400, "keep_alive", "'keep_alive' is out of range");
        *seconds = d < 0 ? -1 : d;
        *given = true;
        return true;
    }
    if (!json_is_string(v))
        return api_fail(e, 400, "keep_alive",
                        "'keep_alive' must be a duration (\"5m\", \"1h\") or a number of seconds");
    const char *s = json_string_value(v);
    double d;
    char *end;
    if (json_string_length(v) > 64 || memchr(s, 0, json_string_length(v)))
        return api_fail(e, 400, "keep_alive", "'keep_alive' is not a duration");
    d = strtod(s, &end);
    if (end != s && *end == '\0' && isfinite(d) && strspn(s, "+-0123456789.") == strlen(s)) {
        *seconds = d < 0 ? -1 : d; /* a number in a string: seconds */
    } else if (go_duration(s, &d)) {
        *seconds = d < 0 ? -1 : d;
    } else {
        return api_fail(e, 400, "keep_alive",
                        "'keep_alive' \"%.64s\" is not a duration (such as \"5m\", \"1h30m\", "
                        "\"-1\")",
                        s);
    }
    *given = true;
    return true;
}

/* ---- names, format ------------------------------------------------------------------------- */

bool ollama_name_valid(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > 200)
        return false;
    const char *colon = strchr(name, ':');
    if (colon && strchr(colon + 1, ':'))
        return false;
    size_t part = 0;
    for (size_t i = 0; i <= n; i++) {
        char c = name[i];
        bool end = c == '\0' || c == '/' || c == ':';
        if (end) {
            if (part == 0)
                return false;
            const char *p = name + i - part;
            if ((part == 1 && p[0] == '.') || (part == 2 && p[0] == '.' && p[1] == '.'))
                return false;
            if (c == '/' && colon && name + i > colon)
                return false; /* no '/' in the tag */
            part = 0;
            continue;
        }
        if (!isalnum((unsigned char)c) && c != '.' && c != '_' && c != '-')
            return false;
        part++;
    }
    return true;
}

bool ollama_format(json_t *format, json_t **out, struct api_error *e)
{
    *out = NULL;
    if (!format || json_is_null(format))
        return true;
    if (json_is_string(format)) {
        const char *f = json_string_value(format);
        if (!*f)
            return true;
        if (strcmp(f, "json") != 0)
            return api_fail(e, 400, "format",
                            "invalid format '%.64s': use \"json\" or a JSON Schema object", f);
        *out = json_pack("{s:s}", "type", "json_object");
        return *out != NULL || api_fail(e, 500, NULL, "out of memory");
    }
    if (!json_is_object(format))
        return api_fail(e, 400, "format", "'format' must be \"json\" or a JSON Schema object");
    *out = json_pack("{s:s,s:{s:s,s:O}}", "type", "json_schema", "json_schema", "name", "format",
                     "schema", format);
    return *out != NULL || api_fail(e, 500, NULL, "out of memory");
}

/* ---- chat ---------------------------------------------------------------------------------- */

static bool str_field(json_t *o, const char *key, const char **out, bool required,
                      struct api_error *e)
{
    json_t *v = json_object_get(o, key);
    *out = NULL;
    if (!v || json_is_null(v)) {
        if (required)
            return api_fail(e, 400, key, "'%s' is required", key);
        return true;
    }
    if (!json_is_string(v))
        return api_fail(e, 400, key, "'%s' must be a string", key);
    if (memchr(json_string_value(v), 0, json_string_length(v)))
        return api_fail(e, 400, key, "'%s' holds a NUL character", key);
    *out = json_string_value(v);
    return true;
}

static bool bool_field(json_t *o, const char *key, bool *out, struct api_error *e)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v))
        return true;
    if (!json_is_boolean(v))
        return api_fail(e, 400, key, "'%s' must be a boolean", key);
    *out = json_is_true(v);
    return true;
}

static bool no_images(json_t *o, const char *where, struct api_error *e)
{
    json_t *im = json_object_get(o, "images");
    if (im && !json_is_null(im) && !(json_is_array(im) && json_array_size(im) == 0))
        return api_fail(e, 400, "images",
                        "%s: images are not supported (this server runs text models only)", where);
    return true;
}

/* `think`: false or absent; thinking output is not separated from the text. */
static bool no_think(json_t *o, struct api_error *e)
{
    json_t *t = json_object_get(o, "think");
    if (t && !json_is_null(t) && !json_is_false(t))
        return api_fail(e, 400, "think",
                        "'think' is not supported: the model's thinking is "
                        "part of its text here");
    return true;
}

/* One message's tool_calls, Ollama's shape [{function: {name, arguments: {...}}}], as OpenAI's
 * [{id, type, function: {name, arguments: "<json>"}}]; ids call_<msg>_<k>. */
static json_t *calls_to_openai(json_t *calls, size_t msg, json_t *ids, struct api_error *e)
{
    if (!json_is_array(calls)) {
        api_fail(e, 400, "messages", "messages[%zu].tool_calls must be an array", msg);
        return NULL;
    }
    json_t *out = json_array();
    size_t k;
    json_t *c;
    json_array_foreach(calls, k, c)
    {
        json_t *fn = json_is_object(c) ? json_object_get(c, "function") : NULL;
        json_t *name = json_is_object(fn) ? json_object_get(fn, "name") : NULL;
        json_t *args = json_is_object(fn) ? json_object_get(fn, "arguments") : NULL;
        if (!json_is_string(name)) {
            api_fail(e, 400, "messages",
                     "messages[%zu].tool_calls[%zu].function.name must be a "
                     "string",
                     msg, k);
            json_decref(out);
            return NULL;
        }
        char *a = args && !json_is_null(args)
                      ? (json_is_string(args) ? strdup(json_string_value(args))
                                              : json_dumps(args, JSON_COMPACT | JSON_ENCODE_ANY))
                      : strdup("{}");
        char id[64];
        snprintf(id, sizeof(id), "call_%zu_%zu", msg, k);
        json_t *oc = json_pack("{s:s,s:s,s:{s:O,s:s}}", "id", id, "type", "function", "function",
                               "name", name, "arguments", a ? a : "{}");
        free(a);
        if (!oc) {
            api_fail(e, 500, NULL, "out of memory");
            json_decref(out);
            return NULL;
        }
        json_array_append_new(out, oc);
        json_array_append_new(ids, json_pack("{s:s,s:O}", "id", id, "name", name));
    }
    return out;
}

bool ollama_chat_body(json_t *in, const char *model_id, json_t **out, struct api_error *e)
{
    *out = NULL;
    json_t *msgs = json_object_get(in, "messages");
    if (msgs && !json_is_null(msgs) && !json_is_array(msgs))
        return api_fail(e, 400, "messages", "'messages' must be an array");
    if (json_array_size(msgs) > API_MAX_MESSAGE)
        return api_fail(e, 400, "messages", "'messages' has more than %d entries", API_MAX_MESSAGE);
    bool stream = true;
    if (!bool_field(in, "stream", &stream, e) || !no_think(in, e))
        return false;
    json_t *om = json_array();
    json_t *pending = json_array(); /* the last assistant message's calls, not yet answered */
    json_t *body = json_object();
    size_t i;
    json_t *m;
    json_array_foreach(msgs, i, m)
    {
        if (!json_is_object(m)) {
            api_fail(e, 400, "messages", "messages[%zu] must be an object", i);
            goto fail;
        }
        const char *role, *content, *tool_name;
        char where[48];
        snprintf(where, sizeof(where), "messages[%zu]", i);
        if (!str_field(m, "role", &role, true, e) || !str_field(m, "content", &content, false, e) ||
            !str_field(m, "tool_name", &tool_name, false, e) || !no_images(m, where, e))
            goto fail;
        if (strcmp(role, "system") && strcmp(role, "user") && strcmp(role, "assistant") &&
            strcmp(role, "tool")) {
            api_fail(e, 400, "messages",
                     "messages[%zu]: invalid role '%.64s' (system, user, assistant or tool)", i,
                     role);
            goto fail;
        }
        json_t *nm = json_pack("{s:s,s:s}", "role", role, "content", content ? content : "");
        json_t *calls = json_object_get(m, "tool_calls");
        if (calls && !json_is_null(calls) && json_array_size(calls) > 0) {
            if (strcmp(role, "assistant") != 0) {
                json_decref(nm);
                api_fail(e, 400, "messages",
                         "messages[%zu]: only assistant messages have "
                         "tool_calls",
                         i);
                goto fail;
            }
            json_array_clear(pending);
            json_t *oc = calls_to_openai(calls, i, pending, e);
            if (!oc) {
                json_decref(nm);
                goto fail;
            }
            json_object_set_new(nm, "tool_calls", oc);
            if (!content || !*content)
                json_object_set_new(nm, "content", json_null());
        }
        if (strcmp(role, "tool") == 0) {
            /* the call it answers: the pending call of that name, else the oldest pending one */
            size_t hit = 0, k;
            json_t *p;
            json_array_foreach(pending, k, p)
            {
                if (tool_name &&
                    strcmp(json_string_value(json_object_get(p, "name")), tool_name) == 0) {
                    hit = k;
                    break;
                }
            }
            char id[64];
            if (hit < json_array_size(pending)) {
                snprintf(id, sizeof(id), "%s",
                         json_string_value(json_object_get(json_array_get(pending, hit), "id")));
                json_array_remove(pending, hit);
            } else {
                snprintf(id, sizeof(id), "call_%zu", i);
            }
            json_object_set_new(nm, "tool_call_id", json_string(id));
            if (tool_name)
                json_object_set_new(nm, "name", json_string(tool_name));
        }
        json_array_append_new(om, nm);
    }
    json_object_set_new(body, "model", json_string(model_id));
    json_object_set(body, "messages", om);
    json_object_set_new(body, "stream", json_boolean(stream));
    json_t *tools = json_object_get(in, "tools");
    if (tools && !json_is_null(tools)) {
        if (!json_is_array(tools)) {
            api_fail(e, 400, "tools", "'tools' must be an array");
            goto fail;
        }
        if (json_array_size(tools) > 0)
            json_object_set(body, "tools", tools); /* the same shape as OpenAI's */
    }
    json_t *rf = NULL;
    if (!ollama_format(json_object_get(in, "format"), &rf, e))
        goto fail;
    if (rf)
        json_object_set_new(body, "response_format", rf);
    json_decref(om);
    json_decref(pending);
    *out = body;
    return true;
fail:
    json_decref(om);
    json_decref(pending);
    json_decref(body);
    return false;
}

/* ---- replies: OpenAI's shapes as Ollama's ----------------------------------------------- */

json_t *ollama_tool_call(const char *name, const char *args)
{
    json_t *a = args ? json_loads(args, JSON_DECODE_ANY, NULL) : NULL;
    if (!json_is_object(a)) { /* arguments that are not an object: none */
        json_decref(a);
        a = json_object();
    }
    return json_pack("{s:{s:s,s:o}}", "function", "name", name ? name : "", "arguments", a);
}

json_t *ollama_message(json_t *msg)
{
    json_t *content = json_object_get(msg, "content");
    json_t *m = json_pack("{s:s,s:s}", "role", "assistant", "content",
                          json_is_string(content) ? json_string_value(content) : "");
    json_t *calls = json_object_get(msg, "tool_calls");
    if (m && json_array_size(calls) > 0) {
        json_t *oc = json_array();
        size_t i;
        json_t *c;
        json_array_foreach(calls, i, c)
        {
            json_t *fn = json_object_get(c, "function");
            json_array_append_new(
                oc, ollama_tool_call(json_string_value(json_object_get(fn, "name")),
                                     json_string_value(json_object_get(fn, "arguments"))));
        }
        json_object_set_new(m, "tool_calls", oc);
    }
    return m;
}

/* ---- generate ------------------------------------------------------------------------------- */

void ollama_generate_release(struct ollama_generate *g)
{
    free(g->context);
    json_decref(g->response_format);
    memset(g, 0, sizeof(*g));
}

bool ollama_parse_generate(json_t *in, struct ollama_generate *g, struct api_error *e)
{
    memset(g, 0, sizeof(*g));
    g->stream = true;
    if (!str_field(in, "model", &g->model, true, e) ||
        !str_field(in, "prompt", &g->prompt, false, e) ||
        !str_field(in, "suffix", &g->suffix, false, e) ||
        !str_field(in, "system", &g->system, false, e) ||
        !str_field(in, "template", &g->tmpl, false, e) || !bool_field(in, "raw", &g->raw, e) ||
        !bool_field(in, "stream", &g->stream, e) || !no_images(in, "generate", e) ||
        !no_think(in, e))
        return false;
    json_t *ctx = json_object_get(in, "context");
    if (ctx && !json_is_null(ctx)) {
        if (!json_is_array(ctx))
            return api_fail(e, 400, "context", "'context' must be an array of token ids");
        size_t n = json_array_size(ctx);
        if (n > (1u << 24))
            return api_fail(e, 400, "context", "'context' is too long");
        g->context = malloc((n ? n : 1) * sizeof(*g->context));
        if (!g->context)
            return api_fail(e, 500, NULL, "out of memory");
        size_t k;
        json_t *t;
        json_array_foreach(ctx, k, t)
        {
            if (!json_is_integer(t) || json_integer_value(t) < 0 ||
                json_integer_value(t) > INT32_MAX)
                return api_fail(e, 400, "context",
                                "'context' must hold token ids (non-negative integers)");
            g->context[k] = (inf_token)json_integer_value(t);
        }
        g->n_context = n;
    }
    if (g->raw && ((g->tmpl && *g->tmpl) || (g->system && *g->system) || g->n_context))
        return api_fail(e, 400, "raw", "raw mode does not support template, system, or context");
    if (g->raw && g->suffix && *g->suffix)
        return api_fail(e, 400, "raw", "raw mode does not support a suffix");
    g->options = json_object_get(in, "options");
    g->keep_alive = json_object_get(in, "keep_alive");
    return ollama_format(json_object_get(in, "format"), &g->response_format, e);
}

/* ---- embed ------------------------------------------------------------------------------------
 */

void ollama_embed_release(struct ollama_embed *q)
{
    free(q->inputs);
    memset(q, 0, sizeof(*q));
}

bool ollama_parse_embed(json_t *in, bool legacy, struct ollama_embed *q, struct api_error *e)
{
    memset(q, 0, sizeof(*q));
    q->truncate = true;
    q->legacy = legacy;
    if (!str_field(in, "model", &q->model, true, e))
        return false;
    q->keep_alive = json_object_get(in, "keep_alive");
    json_t *opts = json_object_get(in, "options");
    if (opts && !json_is_null(opts) && !json_is_object(opts))
        return api_fail(e, 400, "options", "'options' must be an object");
    if (legacy) {
        const char *p;
        if (!str_field(in, "prompt", &p, false, e))
            return false;
        q->inputs = malloc(sizeof(*q->inputs));
        if (!q->inputs)
            return api_fail(e, 500, NULL, "out of memory");
        q->inputs[0] = p ? p : "";
        q->n_inputs = 1;
        return true;
    }
    if (!bool_field(in, "truncate", &q->truncate, e))
        return false;
    json_t *dim = json_object_get(in, "dimensions");
    if (dim && !json_is_null(dim)) {
        if (!json_is_integer(dim) || json_integer_value(dim) < 1 ||
            json_integer_value(dim) > (1 << 20))
            return api_fail(e, 400, "dimensions", "'dimensions' must be a positive integer");
        q->dimensions = json_integer_value(dim);
    }
    json_t *v = json_object_get(in, "input");
    if (!v || json_is_null(v)) {
        q->n_inputs = 0; /* no input: the model is loaded, nothing embedded */
        return true;
    }
    if (json_is_string(v)) {
        q->inputs = malloc(sizeof(*q->inputs));
        if (!q->inputs)
            return api_fail(e, 500, NULL, "out of memory");
        q->inputs[0] = json_string_value(v);
        q->n_inputs = 1;
    } else if (json_is_array(v)) {
        size_t n = json_array_size(v);
        if (n > API_MAX_INPUTS)
            return api_fail(e, 400, "input", "'input' has %zu entries; at most %d", n,
                            API_MAX_INPUTS);
        q->inputs = malloc((n ? n : 1) * sizeof(*q->inputs));
        if (!q->inputs)
            return api_fail(e, 500, NULL, "out of memory");
        size_t k;
        json_t *s;
        json_array_foreach(v, k, s)
        {
            if (!json_is_string(s))
                return api_fail(e, 400, "input",
                                "'input' must be a string or an array of "
                                "strings");
            q->inputs[k] = json_string_value(s);
        }
        q->n_inputs = n;
    } else {
        return api_fail(e, 400, "input", "'input' must be a string or an array of strings");
    }
    return true;
}

/* ---- template overrides ---------------------------------------------------------------------- */

#define TPL_MAX_DEPTH 16

struct tpl_out {
    char *d;
    size_t n, cap;
    struct inf_text_span *spans;
    size_t n_spans, cap_spans;
    bool oom;
};

static void tpl_emit(struct tpl_out *o, const char *s, size_t n, bool untrusted)
{
    if (n == 0 || o->oom)
        return;
    if (untrusted) {
        if (o->n_spans == o->cap_spans) {
            size_t cap = o->cap_spans ? o->cap_spans * 2 : 4;
            struct inf_text_span *p = realloc(o->spans, cap * sizeof(*p));
            if (!p) {
                o->oom = true;
                return;
            }
            o->spans = p;
            o->cap_spans = cap;
        }
        o->spans[o->n_spans].off = o->n;
        o->spans[o->n_spans].len = n;
        o->n_spans++;
    }
    if (!inf__append(&o->d, &o->n, &o->cap, s, n, 256))
        o->oom = true;
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* The action's words: "a" or "a b" (spaces around trimmed) equal to want. */
static bool action_is(const char *a, size_t n, const char *want)
{
    return strlen(want) == n && memcmp(a, want, n) == 0;
}

bool ollama_template_render(const char *tpl, const char *system, const char *prompt, char **out,
                            size_t *out_len, struct inf_text_span **spans, size_t *n_spans,
                            struct api_error *e)
{
    struct tpl_out o = {0};
    bool active[TPL_MAX_DEPTH + 1] = {true}, cond[TPL_MAX_DEPTH + 1] = {true};
    int depth = 0;
    size_t n = strlen(tpl), pos = 0;
    bool trim_next = false;
    system = system ? system : "";
    prompt = prompt ? prompt : "";
    *out = NULL;
    *spans = NULL;
    *out_len = *n_spans = 0;
    while (pos <= n) {
        const char *open = strstr(tpl + pos, "{{");
        size_t end = open ? (size_t)(open - tpl) : n;
        size_t ts = pos, te = end;
        if (trim_next)
            while (ts < te && is_blank(tpl[ts]))
                ts++;
        bool left_trim = open && open[2] == '-' &&
                         (open[3] == ' ' || open[3] == '\t' || open[3] == '\n' || open[3] == '\r');
        if (left_trim)
            while (te > ts && is_blank(tpl[te - 1]))
                te--;
        if (active[depth])
            tpl_emit(&o, tpl + ts, te - ts, false);
        if (!open)
            break;
        const char *a = open + 2 + (left_trim ? 1 : 0);
        const char *close = strstr(a, "}}");
        if (!close) {
            api_fail(e, 400, "template", "the template has an unclosed action at byte %zu", end);
            goto fail;
        }
        const char *ae = close;
        trim_next = ae > a && ae[-1] == '-' && ae - 1 > a && is_blank(ae[-2]);
        if (trim_next)
            ae--;
        while (a < ae && is_blank(*a))
            a++;
        while (ae > a && is_blank(ae[-1]))
            ae--;
        size_t an = (size_t)(ae - a);
        const char *val = NULL;
        if (an >= 4 && a[0] == '/' && a[1] == '*' && ae[-2] == '*' && ae[-1] == '/') {
            /* a comment */
        } else if (action_is(a, an, ".System")) {
            val = system;
        } else if (action_is(a, an, ".Prompt")) {
            val = prompt;
        } else if (action_is(a, an, ".Response")) {
            val = "";
        } else if (action_is(a, an, "if .System") || action_is(a, an, "if .Prompt") ||
                   action_is(a, an, "if .Response")) {
            if (depth == TPL_MAX_DEPTH) {
                api_fail(e, 400, "template", "the template nests 'if' deeper than %d",
                         TPL_MAX_DEPTH);
                goto fail;
            }
            bool c = a[4] == 'S' ? *system != '\0' : a[4] == 'P' ? *prompt != '\0' : false;
            depth++;
            cond[depth] = c;
            active[depth] = active[depth - 1] && c;
        } else if (action_is(a, an, "else")) {
            if (depth == 0) {
                api_fail(e, 400, "template", "the template has {{ else }} outside {{ if }}");
                goto fail;
            }
            active[depth] = active[depth - 1] && !cond[depth];
            cond[depth] = true; /* a second else is inactive */
        } else if (action_is(a, an, "end")) {
            if (depth == 0) {
                api_fail(e, 400, "template", "the template has {{ end }} without {{ if }}");
                goto fail;
            }
            depth--;
        } else {
            api_fail(e, 400, "template",
                     "the template action '{{ %.*s }}' is not supported: a template override may "
                     "use .System, .Prompt, .Response and if/else/end on them (or send the "
                     "formatted prompt with \"raw\": true)",
                     (int)(an > 60 ? 60 : an), a);
            goto fail;
        }
        if (val && active[depth])
            tpl_emit(&o, val, strlen(val), true);
        pos = (size_t)(close - tpl) + 2;
    }
    if (depth != 0) {
        api_fail(e, 400, "template", "the template misses %d {{ end }}", depth);
        goto fail;
    }
    if (o.oom || !inf__append(&o.d, &o.n, &o.cap, "", 1, 1)) {
        api_fail(e, 500, NULL, "out of memory");
        goto fail;
    }
    *out = o.d;
    *out_len = o.n - 1;
    *spans = o.spans;
    *n_spans = o.n_spans;
    return true;
fail:
    free(o.d);
    free(o.spans);
    return false;
}
