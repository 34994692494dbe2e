/*
 * tools.c - tool calling without a model (see tools.h): template families, the prompt for
 * templates that know no tools, the grammar of forced calls, and recognising calls in output.
 */
#include "server/tools.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"

/* ---- families ------------------------------------------------------------------------------- */

enum tool_family tool_family_of(const char *src)
{
    if (!src)
        return TOOL_GENERIC;
    if (strstr(src, "<tool_call>"))
        return TOOL_HERMES;
    if (strstr(src, "[TOOL_CALLS]"))
        return TOOL_MISTRAL;
    if (strstr(src, "<|python_tag|>") ||
        (strstr(src, "<|start_header_id|>") && strstr(src, "ipython")))
        return TOOL_LLAMA3;
    return TOOL_GENERIC;
}

const char *tool_family_name(enum tool_family f)
{
    switch (f) {
    case TOOL_HERMES:
        return "hermes";
    case TOOL_LLAMA3:
        return "llama3";
    case TOOL_MISTRAL:
        return "mistral";
    default:
        return "generic";
    }
}

/* The marker that opens calls anywhere in the text, and the byte that opens them when it is the
   first of the output (markers that are control tokens may be missing from the text). */
static const char *family_marker(enum tool_family f)
{
    switch (f) {
    case TOOL_HERMES:
        return "<tool_call>";
    case TOOL_LLAMA3:
        return "<|python_tag|>";
    case TOOL_MISTRAL:
        return "[TOOL_CALLS]";
    default:
        return NULL;
    }
}

static char family_start(enum tool_family f)
{
    switch (f) {
    case TOOL_LLAMA3:
    case TOOL_GENERIC:
        return '{';
    case TOOL_MISTRAL:
        return '[';
    default:
        return 0;
    }
}

/* ---- the prompt ----------------------------------------------------------------------------- */

static bool sb_add(char **d, size_t *n, size_t *cap, const char *s)
{
    return inf__append(d, n, cap, s, strlen(s), 256);
}

/* {"tool_calls": [{"name", "arguments"}]} for an assistant message's normalised tool_calls. */
static char *calls_as_json(json_t *calls)
{
    json_t *a = json_array();
    size_t i;
    json_t *c;
    json_array_foreach(calls, i, c)
    {
        json_t *fn = json_object_get(c, "function");
        json_array_append_new(a, json_pack("{s:O,s:O}", "name", json_object_get(fn, "name"),
                                           "arguments", json_object_get(fn, "arguments")));
    }
    json_t *o = json_pack("{s:o}", "tool_calls", a);
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return s;
}

/* Mistral's templates accept only call ids of 9 letters and digits: any other id becomes 9 such
   characters derived from it (FNV-1a), the same in the call and in the tool's answer. */
static void mistral_id(json_t *o, const char *key)
{
    const char *id = json_string_value(json_object_get(o, key));
    if (!id)
        return;
    size_t n = strlen(id);
    bool ok = n == 9;
    for (size_t i = 0; ok && i < n; i++)
        ok = (id[i] >= 'a' && id[i] <= 'z') || (id[i] >= 'A' && id[i] <= 'Z') ||
             (id[i] >= '0' && id[i] <= '9');
    if (ok)
        return;
    static const char a62[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)id[i]) * 1099511628211ull;
    char out[10];
    for (int i = 0; i < 9; i++, h /= 62)
        out[i] = a62[h % 62];
    out[9] = 0;
    json_object_set_new(o, key, json_string(out));
}

json_t *tool_prompt_messages(enum tool_family f, json_t *messages, json_t *tools,
                             enum api_tool_choice choice, const char *only, bool *pass_tools)
{
    *pass_tools = f != TOOL_GENERIC && tools;
    if (f == TOOL_MISTRAL) {
        json_t *out = json_deep_copy(messages);
        size_t i, k;
        json_t *m, *c;
        json_array_foreach(out, i, m)
        {
            mistral_id(m, "tool_call_id");
            json_array_foreach(json_object_get(m, "tool_calls"), k, c) mistral_id(c, "id");
        }
        return out;
    }
    if (f != TOOL_GENERIC)
        return json_incref(messages);
    json_t *out = json_deep_copy(messages);
    char *d = NULL;
    size_t n = 0, cap = 0;
    bool ok = out != NULL;
    if (!tools)
        goto calls; /* only the calls of earlier turns to write out */
    ok = ok && sb_add(&d, &n, &cap,
                      "You can call the following tools; `parameters` is the JSON Schema of a "
                      "tool's arguments:\n");
    size_t ti;
    json_t *t;
    json_array_foreach(tools, ti, t)
    {
        char *fn = json_dumps(json_object_get(t, "function"), JSON_COMPACT);
        ok = ok && fn && sb_add(&d, &n, &cap, fn) && sb_add(&d, &n, &cap, "\n");
        free(fn);
    }
    ok = ok && sb_add(&d, &n, &cap,
                      "To call tools, reply with only a JSON object of this form and nothing "
                      "else: {\"tool_calls\": [{\"name\": \"<tool name>\", \"arguments\": "
                      "{<the arguments>}}]}\n");
    if (choice == API_TOOLS_NAMED && only) {
        ok = ok && sb_add(&d, &n, &cap, "You must call the tool '") && sb_add(&d, &n, &cap, only) &&
             sb_add(&d, &n, &cap, "'.");
    } else if (choice == API_TOOLS_REQUIRED) {
        ok = ok && sb_add(&d, &n, &cap, "You must call at least one tool.");
    } else {
        ok =
            ok && sb_add(&d, &n, &cap, "When no tool is needed, answer the user normally instead.");
    }
calls:;
    json_t *m;
    size_t i;
    json_array_foreach(out, i, m)
    {
        json_t *calls = json_object_get(m, "tool_calls");
        if (!ok || !calls)
            continue;
        char *js = calls_as_json(calls);
        const char *c = json_string_value(json_object_get(m, "content"));
        size_t cl = c ? strlen(c) : 0;
        char *nc = js ? malloc(cl + strlen(js) + 2) : NULL;
        if (!nc) {
            free(js);
            ok = false;
            break;
        }
        snprintf(nc, cl + strlen(js) + 2, "%s%s%s", c ? c : "", cl ? "\n" : "", js);
        json_object_set_new(m, "content", json_string(nc));
        json_object_del(m, "tool_calls");
        free(nc);
        free(js);
    }
    json_t *first = ok && tools ? json_array_get(out, 0) : NULL;
    if (!tools) {
        /* nothing to describe */
    } else if (ok && first &&
               !strcmp(json_string_value(json_object_get(first, "role")), "system")) {
        const char *c = json_string_value(json_object_get(first, "content"));
        size_t cl = strlen(c ? c : "");
        char *nc = malloc(cl + n + 3);
        ok = nc != NULL;
        if (ok) {
            snprintf(nc, cl + n + 3, "%s%s%s", c ? c : "", cl ? "\n\n" : "", d);
            json_object_set_new(first, "content", json_string(nc));
            free(nc);
        }
    } else if (ok) {
        json_t *sys = json_pack("{s:s,s:s}", "role", "system", "content", d);
        ok = sys && json_array_insert_new(out, 0, sys) == 0;
    }
    free(d);
    if (!ok) {
        json_decref(out);
        return NULL;
    }
    return out;
}

/* ---- the grammar of forced calls ------------------------------------------------------------ */

#define CALL_RULE "inferno-tool-call"

/*
 * Rename the rule `root` of GBNF text to CALL_RULE (its definition and every reference),
 * leaving literals, classes and comments alone. Returns malloc'd text or NULL.
 */
static char *rename_root(const char *g)
{
    char *d = NULL;
    size_t n = 0, cap = 0;
    size_t len = strlen(g), i = 0;
    bool ok = true;
    while (ok && i < len) {
        char c = g[i];
        size_t j = i + 1;
        if (c == '"' || c == '[') {
            char close = c == '"' ? '"' : ']';
            while (j < len && g[j] != close)
                j += g[j] == '\\' && j + 1 < len ? 2 : 1;
            j = j < len ? j + 1 : len;
        } else if (c == '#') {
            while (j < len && g[j] != '\n')
                j++;
        } else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                   c == '_' || c == '-') {
            while (j < len && ((g[j] >= 'a' && g[j] <= 'z') || (g[j] >= 'A' && g[j] <= 'Z') ||
                               (g[j] >= '0' && g[j] <= '9') || g[j] == '_' || g[j] == '-'))
                j++;
            if (j - i == 4 && memcmp(g + i, "root", 4) == 0) {
                ok = inf__append(&d, &n, &cap, CALL_RULE, strlen(CALL_RULE), 256);
                i = j;
                continue;
            }
        }
        ok = inf__append(&d, &n, &cap, g + i, j - i, 256);
        i = j;
    }
    if (!ok || !d) {
        free(d);
        return NULL;
    }
    return d;
}

/* {"type":"object","properties":{"name":{"const":NAME},KEY:PARAMS},...} for one tool. */
static json_t *call_schema(json_t *fn, const char *key)
{
    json_t *params = json_object_get(fn, "parameters");
    json_t *ps = params && json_is_object(params) ? json_incref(params)
                                                  : json_pack("{s:s}", "type", "object");
    json_t *props = json_object();
    json_object_set_new(props, "name", json_pack("{s:O}", "const", json_object_get(fn, "name")));
    json_object_set_new(props, key, ps);
    return json_pack("{s:s,s:o,s:[s,s],s:b}", "type", "object", "properties", props, "required",
                     "name", key, "additionalProperties", 0);
}

inf_status tool_grammar(enum tool_family f, json_t *tools, const char *only, bool parallel,
                        struct inf_grammar **out, struct inf_error *err)
{
    *out = NULL;
    const char *key = f == TOOL_LLAMA3 ? "parameters" : "arguments";
    json_t *alts = json_array();
    bool strict = true;
    size_t i;
    json_t *t;
    json_array_foreach(tools, i, t)
    {
        json_t *fn = json_object_get(t, "function");
        if (only && strcmp(json_string_value(json_object_get(fn, "name")), only) != 0)
            continue;
        strict = strict && json_is_true(json_object_get(fn, "strict"));
        json_array_append_new(alts, call_schema(fn, key));
    }
    if (json_array_size(alts) == 0) {
        json_decref(alts);
        return inf_error_set(err, INF_EINVAL, "no tool to call");
    }
    json_t *schema = json_array_size(alts) == 1 ? json_incref(json_array_get(alts, 0))
                                                : json_pack("{s:O}", "anyOf", alts);
    json_decref(alts);
    char *text = schema ? json_dumps(schema, JSON_COMPACT) : NULL;
    json_decref(schema);
    if (!text)
        return inf_error_set(err, INF_ENOMEM, "out of memory");
    struct inf_json_schema_opts o = {0};
    o.strict = strict;
    o.whitespace = -1; /* the arguments are printed compactly; the wrapper below sets the rest */
    struct inf_grammar *calls = NULL;
    inf_status rc = inf_grammar_from_json_schema(text, strlen(text), &o, &calls, err);
    free(text);
    if (rc != INF_OK)
        return rc;
    char *rules = rename_root(inf_grammar_gbnf(calls));
    inf_grammar_free(calls);
    if (!rules)
        return inf_error_set(err, INF_ENOMEM, "out of memory");
    const char *root;
    switch (f) {
    case TOOL_HERMES:
        root = parallel ? "root ::= \"<tool_call>\\n\" " CALL_RULE " \"\\n</tool_call>\" "
                          "(\"\\n<tool_call>\\n\" " CALL_RULE " \"\\n</tool_call>\")*\n"
                        : "root ::= \"<tool_call>\\n\" " CALL_RULE " \"\\n</tool_call>\"\n";
        break;
    case TOOL_MISTRAL:
        root = parallel ? "root ::= \"[TOOL_CALLS][\" " CALL_RULE " (\", \" " CALL_RULE ")* \"]\"\n"
                        : "root ::= \"[TOOL_CALLS][\" " CALL_RULE " \"]\"\n";
        break;
    case TOOL_LLAMA3:
        root = "root ::= " CALL_RULE "\n"; /* one call per message */
        break;
    default:
        root = parallel ? "root ::= \"{\\\"tool_calls\\\": [\" " CALL_RULE " (\", \" " CALL_RULE
                          ")* \"]}\"\n"
                        : "root ::= \"{\\\"tool_calls\\\": [\" " CALL_RULE " \"]}\"\n";
        break;
    }
    size_t gl = strlen(root) + strlen(rules) + 1;
    char *gbnf = malloc(gl);
    if (!gbnf) {
        free(rules);
        return inf_error_set(err, INF_ENOMEM, "out of memory");
    }
    snprintf(gbnf, gl, "%s%s", root, rules);
    free(rules);
    rc = inf_grammar_from_gbnf(gbnf, strlen(gbnf), "root", out, err);
    free(gbnf);
    return rc;
}

/* ---- recognising calls ---------------------------------------------------------------------- */

static bool is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static size_t skip_ws(const char *d, size_t n, size_t p, const char *also)
{
    while (p < n && (d[p] == ' ' || d[p] == '\t' || d[p] == '\n' || d[p] == '\r' ||
                     (also && d[p] && strchr(also, d[p]))))
        p++;
    return p;
}

static bool starts(const char *d, size_t n, size_t p, const char *s)
{
    size_t k = strlen(s);
    return p + k <= n && memcmp(d + p, s, k) == 0;
}

/* The end (after '}') of the JSON object at d[p] == '{', or 0 when it is not complete yet. */
static size_t scan_object(const char *d, size_t n, size_t p)
{
    size_t depth = 0;
    bool str = false;
    for (; p < n; p++) {
        char c = d[p];
        if (str) {
            if (c == '\\')
                p++;
            else if (c == '"')
                str = false;
        } else if (c == '"') {
            str = true;
        } else if (c == '{' || c == '[') {
            depth++;
        } else if (c == '}' || c == ']') {
            if (depth == 0)
                return 0;
            if (--depth == 0)
                return p + 1;
        }
    }
    return 0;
}

struct calls {
    struct tool_call *v;
    size_t n, cap;
};

/* One call object {name, arguments | parameters} (or OpenAI's {function: {name, arguments}}). */
static bool add_call(struct calls *c, json_t *o)
{
    if (!json_is_object(o))
        return false;
    json_t *fn = json_object_get(o, "function");
    json_t *src = json_is_object(fn) ? fn : o;
    json_t *name = json_object_get(src, "name");
    json_t *args = json_object_get(src, "arguments");
    if (!args)
        args = json_object_get(src, "parameters");
    if (!json_is_string(name) || json_string_length(name) == 0)
        return false;
    if (args && !json_is_object(args) && !json_is_string(args))
        return false;
    if (!inf__grow(&c->v, &c->cap, c->n + 1, sizeof(*c->v), 4))
        return false;
    struct tool_call *tc = &c->v[c->n];
    memset(tc, 0, sizeof(*tc));
    tc->name = strdup(json_string_value(name));
    tc->arguments = !args                  ? strdup("{}")
                    : json_is_string(args) ? strdup(json_string_value(args))
                                           : json_dumps(args, JSON_COMPACT);
    if (!tc->name || !tc->arguments) {
        free(tc->name);
        free(tc->arguments);
        return false;
    }
    c->n++;
    return true;
}

/* The object at d[p] as a call; *end after it. False when incomplete or not a call. */
static bool object_call(struct calls *c, const char *d, size_t n, size_t p, size_t *end)
{
    if (p >= n || d[p] != '{')
        return false;
    size_t e = scan_object(d, n, p);
    if (!e)
        return false;
    json_t *o = json_loadb(d + p, e - p, 0, NULL);
    bool ok = add_call(c, o);
    json_decref(o);
    *end = e;
    return ok;
}

/* Every complete call in d[0..n) (the text from where the call syntax began). */
static void extract(enum tool_family f, const char *d, size_t n, struct calls *c)
{
    size_t p = 0, e = 0;
    switch (f) {
    case TOOL_HERMES:
        for (;;) {
            p = skip_ws(d, n, p, NULL);
            if (!starts(d, n, p, "<tool_call>"))
                return;
            p = skip_ws(d, n, p + strlen("<tool_call>"), NULL);
            if (!object_call(c, d, n, p, &e))
                return;
            p = skip_ws(d, n, e, NULL);
            if (starts(d, n, p, "</tool_call>"))
                p += strlen("</tool_call>");
        }
    case TOOL_LLAMA3:
        if (starts(d, n, p, "<|python_tag|>"))
            p += strlen("<|python_tag|>");
        for (;;) {
            p = skip_ws(d, n, p, ";");
            if (!object_call(c, d, n, p, &e))
                return;
            p = e;
        }
    case TOOL_MISTRAL:
        if (starts(d, n, p, "[TOOL_CALLS]"))
            p += strlen("[TOOL_CALLS]");
        p = skip_ws(d, n, p, NULL);
        if (p >= n || d[p] != '[')
            return;
        p++;
        for (;;) {
            p = skip_ws(d, n, p, ",");
            if (!object_call(c, d, n, p, &e))
                return;
            p = e;
        }
    default: {
        p = skip_ws(d, n, p, NULL);
        if (p >= n || d[p] != '{' || !(e = scan_object(d, n, p)))
            return;
        json_t *o = json_loadb(d + p, e - p, 0, NULL);
        json_t *a = json_object_get(o, "tool_calls");
        size_t i;
        json_t *x;
        json_array_foreach(a, i, x) if (!add_call(c, x)) break;
        json_decref(o);
        return;
    }
    }
}

void tool_stream_init(struct tool_stream *s, enum tool_family f)
{
    memset(s, 0, sizeof(*s));
    s->f = f;
}

void tool_stream_release(struct tool_stream *s)
{
    free(s->acc);
    memset(s, 0, sizeof(*s));
}

void tool_out_release(struct tool_out *o)
{
    for (size_t i = 0; i < o->n_calls; i++) {
        free(o->calls[i].name);
        free(o->calls[i].arguments);
    }
    free(o->calls);
    memset(o, 0, sizeof(*o));
}

/* The calls complete now that were not released yet go to out, with new ids. */
static void release_calls(struct tool_stream *s, struct tool_out *out)
{
    struct calls c = {0};
    extract(s->f, s->acc + s->calls_from, s->len - s->calls_from, &c);
    for (size_t i = 0; i < c.n; i++) {
        if (i < s->n_calls) {
            free(c.v[i].name);
            free(c.v[i].arguments);
            continue;
        }
        memcpy(c.v[i].id, "call_", 5);
        api_random_id(c.v[i].id + 5, 24);
        c.v[out->n_calls++] = c.v[i];
    }
    if (out->n_calls == 0) {
        free(c.v);
    } else {
        out->calls = c.v;
        s->n_calls += out->n_calls;
    }
}

/* The longest suffix of d[0..n) that is a proper prefix of m. */
static size_t marker_tail(const char *d, size_t n, const char *m)
{
    size_t ml = strlen(m);
    for (size_t k = ml - 1 < n ? ml - 1 : n; k > 0; k--)
        if (memcmp(d + n - k, m, k) == 0)
            return k;
    return 0;
}

bool tool_stream_feed(struct tool_stream *s, const char *text, size_t len, struct tool_out *out)
{
    memset(out, 0, sizeof(*out));
    if (len && !inf__append(&s->acc, &s->len, &s->cap, text, len, 256))
        return false;
    if (!s->acc)
        return true;
    if (!s->in_calls) {
        const char start = family_start(s->f);
        const char *m = family_marker(s->f);
        if (start && s->sent == 0) {
            size_t p = skip_ws(s->acc, s->len, 0, NULL);
            if (p == s->len)
                return true; /* only whitespace yet: it may open a call */
            if (s->acc[p] == start) {
                s->in_calls = true;
                s->calls_from = s->sent = p;
            }
        }
        if (!s->in_calls && m) {
            const char *at = memmem(s->acc + s->sent, s->len - s->sent, m, strlen(m));
            size_t upto = at ? (size_t)(at - s->acc)
                             : s->len - marker_tail(s->acc + s->sent, s->len - s->sent, m);
            /* whitespace is held back too: before a call it is dropped (as the whole response
               drops it), so streamed and whole content agree */
            size_t keep = upto;
            while (keep > s->sent && is_ws(s->acc[keep - 1]))
                keep--;
            out->content = s->acc + s->sent;
            out->content_len = keep - s->sent;
            s->sent = at ? upto : keep;
            if (at) {
                s->in_calls = true;
                s->calls_from = upto;
            }
        } else if (!s->in_calls) {
            out->content = s->acc + s->sent;
            out->content_len = s->len - s->sent;
            s->sent = s->len;
        }
    }
    if (s->in_calls)
        release_calls(s, out);
    return true;
}

bool tool_stream_finish(struct tool_stream *s, struct tool_out *out)
{
    memset(out, 0, sizeof(*out));
    if (s->in_calls)
        release_calls(s, out);
    if (!s->in_calls || s->n_calls == 0) {
        /* no call after all: what was held back is content */
        out->content = s->acc ? s->acc + s->sent : "";
        out->content_len = s->len - s->sent;
        s->sent = s->len;
    }
    return true;
}
