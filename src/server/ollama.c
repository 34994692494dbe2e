/*
 * ollama.c - Ollama's API (docs/api.md of github.com/ollama/ollama) on the same port as the
 * OpenAI one, so that the desktop apps, editor plugins and agent frameworks that speak only
 * Ollama connect unchanged.
 *
 * The generating endpoints do not run models themselves: /api/chat, /api/generate and
 * /api/embed translate their request into the OpenAI body (ollama_parse.c), put it in place of
 * the request's body and run the OpenAI handler (api_handlers.c) with this file's sink
 * (response.h), which turns each reply, chunk and end of stream into Ollama's shapes: NDJSON
 * lines, the final one with Ollama's timings in nanoseconds. So validation, templates, tools,
 * structured output and the scheduler are the same code as for OpenAI clients. /api/generate
 * renders and tokenizes here (it needs the token ids for `context` and fill-in-the-middle) and
 * hands the OpenAI completions handler token ids.
 *
 * Every reply of an /api/ route, errors raised before the handler included, goes through
 * ollama_sink (the route table names it), so errors have Ollama's shape {"error": "..."}.
 */
#include "server/ollama.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <openssl/evp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "build_info.h"
#include "core/buf.h"
#include "inferno/engine.h"
#include "inferno/gguf.h"
#include "inferno/log.h"
#include "inferno/models.h"
#include "inferno/template.h"
#include "inferno/tokenizer.h"
#include "server/handlers.h"

/* The Ollama API version /api/version reports: the one whose shapes this file follows (clients
   gate features on it); Inferno's own version is given beside it. */
#define OLLAMA_API_VERSION "0.12.0"

enum oll_kind { OLL_CHAT, OLL_GENERATE, OLL_EMBED, OLL_EMBEDDINGS };

/* A generating request's state, shared by the handler and a stream that outlives it. */
struct oll {
    atomic_int refs;
    enum oll_kind kind;
    char model[256]; /* the name as the client wrote it: echoed in "model" */
    double t0;       /* the handler's start (http_now) */
    int64_t load_ns;
    struct ollama_opts opts;
    inf_token *prompt_ids; /* generate: the prompt, for `context` */
    size_t n_prompt_ids;
    bool have_result;
    struct srv_usage usage;
    char done_reason[16];
    inf_token *gen_ids;
    size_t n_gen;
    char call_name[256]; /* a streamed tool call whose arguments come next */
    bool in_call;
    int64_t dimensions; /* embed: truncate to these, renormalised */
};

static void oll_retain(void *ctx)
{
    atomic_fetch_add(&((struct oll *)ctx)->refs, 1);
}

static void oll_release(void *ctx)
{
    struct oll *o = ctx;
    if (!o || atomic_fetch_sub(&o->refs, 1) != 1)
        return;
    ollama_opts_release(&o->opts);
    free(o->prompt_ids);
    free(o->gen_ids);
    free(o);
}

/* ---- shapes ------------------------------------------------------------------------------------
 */

/* RFC 3339 with nanoseconds, UTC, as Go writes time.Time. */
static json_t *time_json(const struct timespec *ts)
{
    struct tm tm;
    char b[64];
    time_t t = ts->tv_sec;
    gmtime_r(&t, &tm);
    size_t n = strftime(b, sizeof(b), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(b + n, sizeof(b) - n, ".%09ldZ", (long)ts->tv_nsec);
    return json_string(b);
}

static json_t *now_json(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return time_json(&ts);
}

static json_t *unix_json(int64_t secs)
{
    struct timespec ts = {(time_t)secs, 0};
    return time_json(&ts);
}

static char *ndjson(json_t *o, size_t *len)
{
    char *j = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!j)
        return NULL;
    size_t n = strlen(j);
    char *b = realloc(j, n + 2);
    if (!b) {
        free(j);
        return NULL;
    }
    b[n] = '\n';
    b[n + 1] = '\0';
    *len = n + 1;
    return b;
}

/* {"model", "created_at"} every generating reply opens with. */
static json_t *base_json(const struct oll *o)
{
    json_t *j = json_object();
    json_object_set_new(j, "model", json_string(o->model));
    json_object_set_new(j, "created_at", now_json());
    return j;
}

static const char *error_message(json_t *err)
{
    json_t *m = json_object_get(json_object_get(err, "error"), "message");
    return json_is_string(m) ? json_string_value(m) : "error";
}

/* The end of a generation: done, done_reason and the timings (ns); `context` for generate. */
static void add_final(const struct oll *o, json_t *j, const struct srv_usage *u, const char *reason,
                      const inf_token *ids, size_t n_ids)
{
    json_object_set_new(j, "done", json_true());
    json_object_set_new(
        j, "done_reason",
        json_string(!reason || strcmp(reason, "tool_calls") == 0 ? "stop" : reason));
    if (o->kind == OLL_GENERATE) {
        json_t *c = json_array();
        for (size_t i = 0; i < o->n_prompt_ids; i++)
            json_array_append_new(c, json_integer(o->prompt_ids[i]));
        for (size_t i = 0; i < n_ids; i++)
            json_array_append_new(c, json_integer(ids[i]));
        json_object_set_new(j, "context", c);
    }
    double total = (http_now() - o->t0) * 1e9;
    json_object_set_new(j, "total_duration", json_integer((json_int_t)total));
    json_object_set_new(j, "load_duration", json_integer(o->load_ns));
    json_object_set_new(j, "prompt_eval_count", json_integer(u ? u->prompt_tokens : 0));
    json_object_set_new(j, "prompt_eval_duration",
                        json_integer(u ? (json_int_t)(u->ttft_ms * 1e6) : 0));
    json_object_set_new(j, "eval_count", json_integer(u ? u->completion_tokens : 0));
    json_object_set_new(j, "eval_duration", json_integer(u ? (json_int_t)(u->gen_ms * 1e6) : 0));
}

/* ---- the sink ------------------------------------------------------------------------------ */

static void sink_gen(void *ctx, struct api_gen *g)
{
    struct oll *o = ctx;
    if (!o)
        return;
    g->max_tokens = o->opts.max_tokens;
    const struct inf_logit_bias *bias = g->sampling.logit_bias;
    size_t n_bias = g->sampling.n_logit_bias;
    uint64_t seed = g->sampling.seed;
    g->sampling = o->opts.sampling;
    g->sampling.logit_bias = bias;
    g->sampling.n_logit_bias = n_bias;
    if (!o->opts.seed_given)
        g->sampling.seed = seed; /* the random one the parser drew */
    g->seed_given = o->opts.seed_given;
    if (o->opts.stop_given) {
        for (int i = 0; i < g->n_stop; i++)
            free(g->stop[i]);
        g->n_stop = 0;
        for (int i = 0; i < o->opts.n_stop; i++) {
            g->stop[g->n_stop] = strdup(o->opts.stop[i]);
            if (g->stop[g->n_stop])
                g->n_stop++;
        }
    }
}

static void sink_result(void *ctx, const struct http_gen_end *end)
{
    struct oll *o = ctx;
    if (!o)
        return;
    o->have_result = true;
    o->usage = end->usage;
    snprintf(o->done_reason, sizeof(o->done_reason), "%s", end->finish_reason);
    free(o->gen_ids);
    o->gen_ids = NULL;
    o->n_gen = 0;
    if (end->n_ids && (o->gen_ids = malloc(end->n_ids * sizeof(*o->gen_ids)))) {
        memcpy(o->gen_ids, end->ids, end->n_ids * sizeof(*o->gen_ids));
        o->n_gen = end->n_ids;
    }
}

/* An OpenAI chat completion as Ollama's chat reply. */
static json_t *chat_reply(struct oll *o, json_t *body)
{
    json_t *msg = json_object_get(json_array_get(json_object_get(body, "choices"), 0), "message");
    json_t *j = base_json(o);
    json_object_set_new(j, "message", ollama_message(msg));
    add_final(o, j, o->have_result ? &o->usage : NULL, o->done_reason, o->gen_ids, o->n_gen);
    return j;
}

static json_t *generate_reply(struct oll *o, json_t *body)
{
    json_t *ch = json_array_get(json_object_get(body, "choices"), 0);
    json_t *text = json_object_get(ch, "text");
    json_t *j = base_json(o);
    json_object_set_new(j, "response",
                        json_string(json_is_string(text) ? json_string_value(text) : ""));
    add_final(o, j, o->have_result ? &o->usage : NULL, o->done_reason, o->gen_ids, o->n_gen);
    return j;
}

static json_t *embed_reply(struct oll *o, json_t *body)
{
    json_t *data = json_object_get(body, "data");
    json_t *embs = json_array();
    size_t i;
    json_t *d;
    json_array_foreach(data, i, d)
    {
        json_t *v = json_object_get(d, "embedding");
        size_t n = json_array_size(v);
        if (o->dimensions > 0 && (size_t)o->dimensions < n) {
            /* Ollama: the first `dimensions` values, normalised again */
            n = (size_t)o->dimensions;
            double ss = 0;
            for (size_t k = 0; k < n; k++)
                ss += json_number_value(json_array_get(v, k)) *
                      json_number_value(json_array_get(v, k));
            double inv = ss > 0 ? 1.0 / sqrt(ss) : 1.0;
            json_t *t = json_array();
            for (size_t k = 0; k < n; k++)
                json_array_append_new(t, json_real(json_number_value(json_array_get(v, k)) * inv));
            json_array_append_new(embs, t);
        } else {
            json_array_append(embs, v);
        }
    }
    if (o->kind == OLL_EMBEDDINGS) {
        json_t *j = json_object();
        json_object_set(j, "embedding",
                        json_array_size(embs) ? json_array_get(embs, 0) : json_array());
        json_decref(embs);
        return j;
    }
    json_t *j = json_object();
    json_object_set_new(j, "model", json_string(o->model));
    json_object_set_new(j, "embeddings", embs);
    json_object_set_new(j, "total_duration",
                        json_integer((json_int_t)((http_now() - o->t0) * 1e9)));
    json_object_set_new(j, "load_duration", json_integer(o->load_ns));
    json_t *pt = json_object_get(json_object_get(body, "usage"), "prompt_tokens");
    json_object_set_new(j, "prompt_eval_count", json_integer(json_integer_value(pt)));
    return j;
}

static json_t *sink_reply(void *ctx, int status, json_t *body)
{
    struct oll *o = ctx;
    if (status >= 400) { /* {"error": {"message": ...}} -> {"error": "..."} */
        json_t *j = json_pack("{s:s}", "error", error_message(body));
        json_decref(body);
        return j;
    }
    if (!o)
        return body;
    json_t *j = o->kind == OLL_CHAT       ? chat_reply(o, body)
                : o->kind == OLL_GENERATE ? generate_reply(o, body)
                                          : embed_reply(o, body);
    json_decref(body);
    return j;
}

static char *sink_chunk(void *ctx, json_t *chunk, size_t *len)
{
    struct oll *o = ctx;
    json_t *ch = json_array_get(json_object_get(chunk, "choices"), 0);
    json_t *out = NULL;
    if (o->kind == OLL_GENERATE) {
        json_t *t = json_object_get(ch, "text");
        if (json_is_string(t) && json_string_length(t) > 0) {
            out = base_json(o);
            json_object_set(out, "response", t);
            json_object_set_new(out, "done", json_false());
        }
    } else {
        json_t *d = json_object_get(ch, "delta");
        json_t *c = json_object_get(d, "content");
        json_t *calls = json_object_get(d, "tool_calls");
        if (json_is_string(c) && json_string_length(c) > 0) {
            out = base_json(o);
            json_object_set_new(out, "message",
                                json_pack("{s:s,s:O}", "role", "assistant", "content", c));
            json_object_set_new(out, "done", json_false());
        } else if (json_array_size(calls) > 0) {
            /* OpenAI streams a call as its name, then its arguments: Ollama sends it whole */
            json_t *fn = json_object_get(json_array_get(calls, 0), "function");
            json_t *name = json_object_get(fn, "name");
            json_t *args = json_object_get(fn, "arguments");
            if (json_is_string(name)) {
                snprintf(o->call_name, sizeof(o->call_name), "%s", json_string_value(name));
                o->in_call = true;
            } else if (o->in_call && json_is_string(args)) {
                o->in_call = false;
                out = base_json(o);
                json_t *m = json_pack("{s:s,s:s}", "role", "assistant", "content", "");
                json_t *a = json_array();
                json_array_append_new(a, ollama_tool_call(o->call_name, json_string_value(args)));
                json_object_set_new(m, "tool_calls", a);
                json_object_set_new(out, "message", m);
                json_object_set_new(out, "done", json_false());
            }
        }
    }
    json_decref(chunk);
    return out ? ndjson(out, len) : NULL;
}

static char *sink_error(void *ctx, json_t *err, size_t *len)
{
    (void)ctx;
    json_t *j = json_pack("{s:s}", "error", error_message(err));
    json_decref(err);
    return ndjson(j, len);
}

static char *sink_end(void *ctx, const struct http_gen_end *end, json_t *usage, size_t *len)
{
    struct oll *o = ctx;
    (void)usage;
    json_t *j = base_json(o);
    if (o->kind == OLL_GENERATE)
        json_object_set_new(j, "response", json_string(""));
    else
        json_object_set_new(j, "message",
                            json_pack("{s:s,s:s}", "role", "assistant", "content", ""));
    add_final(o, j, &end->usage, end->finish_reason, end->ids, end->n_ids);
    return ndjson(j, len);
}

const struct http_sink ollama_sink = {
    .gen = sink_gen,
    .reply = sink_reply,
    .result = sink_result,
    .chunk = sink_chunk,
    .error = sink_error,
    .end = sink_end,
    .content_type = "application/x-ndjson",
    .retain = oll_retain,
    .release = oll_release,
};

/* ---- models ---------------------------------------------------------------------------------- */

/* The id of the model an Ollama name means: the id itself, the name without ":latest", or
   the bare name with ":latest"; then the same without a hub's host (hf.co/OWNER/REPO:QUANT is
   registered as OWNER/REPO:QUANT). false when none is served. */
static bool resolve_exact(struct http_req *r, const char *name, char *id, size_t size);

static bool resolve(struct http_req *r, const char *name, char *id, size_t size)
{
    char norm[300];
    if (resolve_exact(r, name, id, size))
        return true;
    inf_models_name_normalize(name, norm, sizeof(norm));
    return strcmp(norm, name) != 0 && resolve_exact(r, norm, id, size);
}

static bool resolve_exact(struct http_req *r, const char *name, char *id, size_t size)
{
    struct srv_model_entry *m = NULL;
    size_t n = 0;
    struct inf_error err = {0};
    if (srv_models_list(r->params->models, &m, &n, &err) != INF_OK)
        return false;
    char alt[300] = "";
    size_t len = strlen(name);
    if (len > 7 && strcmp(name + len - 7, ":latest") == 0)
        snprintf(alt, sizeof(alt), "%.*s", (int)(len - 7), name);
    else if (!strchr(name, ':'))
        snprintf(alt, sizeof(alt), "%s:latest", name);
    const char *hit = NULL;
    for (size_t i = 0; i < n && !hit; i++)
        if (strcmp(m[i].id, name) == 0)
            hit = m[i].id;
    for (size_t i = 0; i < n && !hit && alt[0]; i++)
        if (strcmp(m[i].id, alt) == 0)
            hit = m[i].id;
    if (hit)
        snprintf(id, size, "%s", hit);
    free(m);
    return hit != NULL;
}

static void not_found(struct http_req *r, const char *name)
{
    http_reply_errorf(r, 404, "model", "model_not_found", "model '%.200s' not found", name);
}

/* The name Ollama clients see for an id: tagged ":latest" when it has no tag. */
static json_t *name_json(const char *id)
{
    char b[300];
    snprintf(b, sizeof(b), strchr(id, ':') ? "%s" : "%s:latest", id);
    return json_string(b);
}

/* "8.0B", "137M", "260K": Ollama's parameter_size. */
static void human_params(uint64_t n, char *out, size_t size)
{
    if (n >= 1000000000ull)
        snprintf(out, size, "%.1fB", n / 1e9);
    else if (n >= 1000000ull)
        snprintf(out, size, "%.0fM", n / 1e6);
    else if (n >= 1000ull)
        snprintf(out, size, "%.0fK", n / 1e3);
    else
        snprintf(out, size, "%llu", (unsigned long long)n);
}

/* An identity for the file (sha256 of its path, size and mtime), not a hash of its bytes:
   hashing gigabytes for every listing would be too slow. */
static void digest_of(const char *path, char out[65])
{
    struct stat st;
    memset(&st, 0, sizeof(st));
    char b[4200];
    int n = snprintf(b, sizeof(b), "%s\n%lld\n%lld.%09ld", path,
                     stat(path, &st) == 0 ? (long long)st.st_size : -1LL,
                     (long long)st.st_mtim.tv_sec, (long)st.st_mtim.tv_nsec);
    unsigned char d[32];
    unsigned int len = 32;
    if (!EVP_Digest(b, (size_t)n, d, &len, EVP_sha256(), NULL))
        memset(d, 0, sizeof(d));
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static json_t *details_json(const struct inf_model_summary *s)
{
    char ps[32] = "";
    if (s->n_params)
        human_params(s->n_params, ps, sizeof(ps));
    const char *q = s->file_type[0] ? s->file_type : s->dominant_type;
    if (strncmp(q, "MOSTLY_", 7) == 0)
        q += 7;
    else if (strncmp(q, "ALL_", 4) == 0)
        q += 4;
    json_t *fam = json_array();
    if (s->architecture[0])
        json_array_append_new(fam, json_string(s->architecture));
    return json_pack("{s:s,s:s,s:s,s:o,s:s,s:s}", "parent_model", "", "format",
                     s->format[0] ? s->format : "gguf", "family", s->architecture, "families", fam,
                     "parameter_size", ps, "quantization_level", q);
}

/* {name, model, modified_at, size, digest, details} for /api/tags and /api/ps. */
static json_t *model_entry_json(const struct http_req *r, const struct srv_model_entry *m)
{
    struct inf_model_summary s;
    struct inf_error err = {0};
    memset(&s, 0, sizeof(s));
    if (inf_model_probe(m->path, &s, &err) != INF_OK)
        INF_LOG_DEBUG("http", "ollama: '%s': %s", m->path, inf_error_message(&err));
    char dg[65];
    struct inf_model_reg reg;
    const char *db = r->params->models_db;
    /* a pulled model's digest is the hub's SHA-256 of its bytes */
    if (db && *db && inf_models_lookup(db, m->id, &reg, NULL) == INF_OK &&
        strcmp(reg.path, m->path) == 0 && strncmp(reg.digest, "sha256:", 7) == 0 &&
        strlen(reg.digest) == 71)
        snprintf(dg, sizeof(dg), "%.64s", reg.digest + 7);
    else
        digest_of(m->path, dg);
    json_t *o = json_object();
    json_object_set_new(o, "name", name_json(m->id));
    json_object_set_new(o, "model", name_json(m->id));
    json_object_set_new(o, "modified_at", unix_json(m->created));
    json_object_set_new(o, "size", json_integer((json_int_t)s.size_bytes));
    json_object_set_new(o, "digest", json_string(dg));
    json_object_set_new(o, "details", details_json(&s));
    return o;
}

/* Pin the engine of model id, timing the load (ns) for load_duration. Failures are answered. */
static bool acquire(struct http_req *r, const char *id, struct srv_engine **e, int64_t *load_ns)
{
    struct inf_error err = {0};
    double t = http_now();
    inf_status st = srv_models_acquire(r->params->models, id, e, &err);
    *load_ns = (int64_t)((http_now() - t) * 1e9);
    if (st == INF_OK)
        return true;
    *e = NULL;
    if (st == INF_ENOTFOUND)
        not_found(r, id);
    else
        http_reply_errorf(r, st == INF_ELIMIT || st == INF_ECANCELED ? 503 : 500, "model", NULL,
                          "cannot load the model: %s", inf_error_message(&err));
    return false;
}

/* Apply keep_alive (when given) to model id. */
static void keep_alive(struct http_req *r, const char *id, bool given, double secs)
{
    if (given)
        srv_models_keep_alive(r->params->models, id, secs);
}

/* The reply to a request with nothing to generate: the model is loaded (or, with keep_alive 0,
   unloaded); done_reason "load" / "unload". */
static void load_reply(struct http_req *r, const char *name, bool chat, bool unload)
{
    json_t *j = json_object();
    json_object_set_new(j, "model", json_string(name));
    json_object_set_new(j, "created_at", now_json());
    if (chat)
        json_object_set_new(j, "message",
                            json_pack("{s:s,s:s}", "role", "assistant", "content", ""));
    else
        json_object_set_new(j, "response", json_string(""));
    json_object_set_new(j, "done", json_true());
    json_object_set_new(j, "done_reason", json_string(unload ? "unload" : "load"));
    http_reply_json(r, 200, j);
}

/* Put the OpenAI body in place of the request's (r->body is freed with the request). */
static bool swap_body(struct http_req *r, json_t *body)
{
    char *s = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (!s) {
        http_reply_errorf(r, 500, NULL, NULL, "out of memory");
        return false;
    }
    free(r->body);
    r->body = s;
    r->len = strlen(s);
    r->cap = r->len + 1;
    return true;
}

static struct oll *oll_new(enum oll_kind kind, const char *name, double t0)
{
    struct oll *o = calloc(1, sizeof(*o));
    if (!o)
        return NULL;
    atomic_init(&o->refs, 1);
    o->kind = kind;
    snprintf(o->model, sizeof(o->model), "%s", name);
    o->t0 = t0;
    return o;
}

/* Parse the body and the model name; false after answering. */
static json_t *parse_request(struct http_req *r, const char **name)
{
    struct api_error e = {0};
    json_t *body = api_parse_body(r->body, r->len, &e);
    if (!body) {
        http_reply_error(r, &e);
        return NULL;
    }
    json_t *m = json_object_get(body, "model");
    if (!json_is_string(m) || json_string_length(m) == 0)
        m = json_object_get(body, "name"); /* older clients */
    if (!json_is_string(m) || json_string_length(m) == 0) {
        json_decref(body);
        http_reply_errorf(r, 400, "model", NULL, "model is required");
        return NULL;
    }
    *name = json_string_value(m);
    return body;
}

/* ---- /api/chat ----------------------------------------------------------------------------- */

void ollama_chat(struct http_req *r)
{
    double t0 = http_now();
    struct api_error e = {0};
    const char *name = NULL;
    char id[256];
    struct srv_engine *eng = NULL;
    struct oll *o = NULL;
    json_t *ob = NULL;
    json_t *body = parse_request(r, &name);
    if (!body)
        return;
    double ka = -1;
    bool ka_given = false;
    if (!resolve(r, name, id, sizeof(id))) {
        not_found(r, name);
        goto out;
    }
    if (!(o = oll_new(OLL_CHAT, name, t0))) {
        http_reply_errorf(r, 500, NULL, NULL, "out of memory");
        goto out;
    }
    if (!ollama_parse_options(json_object_get(body, "options"), &o->opts, &e) ||
        !ollama_parse_keep_alive(json_object_get(body, "keep_alive"), &ka, &ka_given, &e) ||
        !ollama_chat_body(body, id, &ob, &e)) {
        http_reply_error(r, &e);
        goto out;
    }
    if (!acquire(r, id, &eng, &o->load_ns))
        goto out;
    if (json_array_size(json_object_get(ob, "messages")) == 0) {
        srv_models_unpin(r->params->models, eng);
        eng = NULL;
        keep_alive(r, id, ka_given, ka);
        load_reply(r, name, true, ka_given && ka == 0);
        goto out;
    }
    if (!swap_body(r, ob))
        goto out;
    ob = NULL;
    r->sink_ctx = o;
    api_chat(r);
    r->sink_ctx = NULL;
out:
    json_decref(ob);
    json_decref(body);
    if (eng)
        srv_models_unpin(r->params->models, eng);
    if (o && eng)
        keep_alive(r, id, ka_given, ka);
    oll_release(o);
}

/* ---- /api/generate ------------------------------------------------------------------------- */

/* The fill-in-the-middle tokens of the model (the names the common code models use). */
static bool fim_tokens(const struct inf_tokenizer *tok, inf_token t[3])
{
    static const char *const names[][3] = {
        {"<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"},
        {"<fim_prefix>", "<fim_suffix>", "<fim_middle>"},
        {"<PRE>", "<SUF>", "<MID>"},
        {"<|fim_begin|>", "<|fim_hole|>", "<|fim_end|>"},
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        for (int k = 0; k < 3; k++)
            t[k] = inf_tok_find(tok, names[i][k], strlen(names[i][k]));
        if (t[0] >= 0 && t[1] >= 0 && t[2] >= 0)
            return true;
    }
    return false;
}

static bool encode(struct http_req *r, const struct inf_tokenizer *tok, const char *text,
                   size_t len, unsigned flags, const struct inf_text_span *untrusted, size_t n_un,
                   struct inf_tokens *out)
{
    struct inf_error err = {0};
    if (inf_tok_encode_untrusted(tok, text, len, flags, untrusted, n_un, out, &err) == INF_OK)
        return true;
    http_reply_errorf(r, err.code == INF_ENOMEM ? 500 : 400, "prompt", NULL,
                      "tokenizing the prompt failed: %s", inf_error_message(&err));
    return false;
}

/* The prompt's tokens: raw, fill-in-the-middle, or the chat template around system and prompt;
   after the request's context. Failures are answered. */
static bool generate_tokens(struct http_req *r, struct srv_engine *eng,
                            const struct ollama_generate *g, struct inf_tokens *out)
{
    const struct inf_tokenizer *tok = srv_engine_tokenizer(eng);
    const struct inf_model *model = srv_engine_model(eng);
    if (!tok) {
        http_reply_errorf(r, 500, NULL, NULL, "the model has no tokenizer");
        return false;
    }
    const struct inf_tok_info *ti = inf_tok_info(tok);
    const char *prompt = g->prompt ? g->prompt : "";
    struct inf_tokens t = {0};
    bool ok = false;
    for (size_t i = 0; i < g->n_context; i++) {
        if (g->context[i] >= (inf_token)ti->n_tokens) {
            http_reply_errorf(r, 400, "context", NULL,
                              "context token id %d is outside the vocabulary (0..%zu)",
                              g->context[i], ti->n_tokens - 1);
            goto out;
        }
        inf_tokens_push(out, g->context[i]);
    }
    if (g->tmpl && *g->tmpl) { /* the client's template: its markers count, not the values */
        char *text = NULL;
        size_t len = 0, n_spans = 0;
        struct inf_text_span *spans = NULL;
        struct api_error e = {0};
        if (!ollama_template_render(g->tmpl, g->system, prompt, &text, &len, &spans, &n_spans,
                                    &e)) {
            http_reply_error(r, &e);
            goto out;
        }
        bool all = r->params->parse_special_in_content;
        bool enc = encode(r, tok, text, len, INF_TOK_ADD_SPECIAL | INF_TOK_PARSE_SPECIAL,
                          all ? NULL : spans, all ? 0 : n_spans, &t);
        free(text);
        free(spans);
        if (!enc)
            goto out;
    } else if (g->raw) { /* the client formatted the prompt: its control tokens count */
        if (!encode(r, tok, prompt, strlen(prompt), INF_TOK_ADD_SPECIAL | INF_TOK_PARSE_SPECIAL,
                    NULL, 0, &t))
            goto out;
    } else if (g->suffix && *g->suffix) {
        inf_token fim[3];
        if (!fim_tokens(tok, fim)) {
            http_reply_errorf(r, 400, "suffix", NULL,
                              "the model does not support insert (it has no fill-in-the-middle "
                              "tokens)");
            goto out;
        }
        struct inf_tokens a = {0}, b = {0};
        if (!encode(r, tok, prompt, strlen(prompt), 0, NULL, 0, &a) ||
            !encode(r, tok, g->suffix, strlen(g->suffix), 0, NULL, 0, &b)) {
            inf_tokens_release(&a);
            inf_tokens_release(&b);
            goto out;
        }
        if (ti->add_bos && ti->bos >= 0)
            inf_tokens_push(&t, ti->bos);
        inf_tokens_push(&t, fim[0]);
        for (size_t i = 0; i < a.n; i++)
            inf_tokens_push(&t, a.ids[i]);
        inf_tokens_push(&t, fim[1]);
        for (size_t i = 0; i < b.n; i++)
            inf_tokens_push(&t, b.ids[i]);
        inf_tokens_push(&t, fim[2]);
        inf_tokens_release(&a);
        inf_tokens_release(&b);
    } else if (*prompt || (g->system && *g->system)) {
        json_t *msgs = json_array();
        if (g->system && *g->system)
            json_array_append_new(msgs,
                                  json_pack("{s:s,s:s}", "role", "system", "content", g->system));
        json_array_append_new(msgs, json_pack("{s:s,s:s}", "role", "user", "content", prompt));
        char *mj = json_dumps(msgs, JSON_COMPACT);
        json_decref(msgs);
        const char *tpl = inf_model_chat_template(model, NULL);
        if (!tpl)
            tpl = inf_template_default_chatml();
        struct inf_chat_params cp = {0};
        cp.messages_json = mj;
        cp.add_generation_prompt = true;
        cp.bos_token = ti->bos >= 0 ? inf_tok_text(tok, ti->bos, NULL) : "";
        cp.eos_token = ti->eos >= 0 ? inf_tok_text(tok, ti->eos, NULL) : "";
        struct inf_rendered rd = {0};
        struct inf_error err = {0};
        inf_status st = mj ? inf_chat_render(tpl, strlen(tpl), &cp, NULL, &rd, &err) : INF_ENOMEM;
        free(mj);
        if (st != INF_OK) {
            http_reply_errorf(r, st == INF_EINVAL ? 400 : 500, "prompt", NULL,
                              "the chat template failed: %s", inf_error_message(&err));
            goto out;
        }
        bool all = r->params->parse_special_in_content;
        bool enc = encode(r, tok, rd.text, rd.len, INF_TOK_ADD_SPECIAL | INF_TOK_PARSE_SPECIAL,
                          all ? NULL : rd.untrusted, all ? 0 : rd.n_untrusted, &t);
        inf_rendered_release(&rd);
        if (!enc)
            goto out;
        /* a template that writes the BOS text itself must not get a second one */
        if (t.n >= 2 && ti->bos >= 0 && t.ids[0] == ti->bos && t.ids[1] == ti->bos) {
            memmove(t.ids, t.ids + 1, (t.n - 1) * sizeof(*t.ids));
            t.n--;
        }
    }
    /* after a context, the new part is a continuation: no second BOS */
    size_t skip = out->n > 0 && t.n > 0 && ti->bos >= 0 && t.ids[0] == ti->bos ? 1 : 0;
    for (size_t i = skip; i < t.n; i++)
        inf_tokens_push(out, t.ids[i]);
    ok = true;
out:
    inf_tokens_release(&t);
    return ok;
}

void ollama_generate(struct http_req *r)
{
    double t0 = http_now();
    struct api_error e = {0};
    struct ollama_generate g = {0};
    struct inf_tokens toks = {0};
    const char *name = NULL;
    char id[256];
    struct srv_engine *eng = NULL;
    struct oll *o = NULL;
    json_t *body = parse_request(r, &name);
    if (!body)
        return;
    double ka = -1;
    bool ka_given = false;
    if (!resolve(r, name, id, sizeof(id))) {
        not_found(r, name);
        goto out;
    }
    if (!(o = oll_new(OLL_GENERATE, name, t0))) {
        http_reply_errorf(r, 500, NULL, NULL, "out of memory");
        goto out;
    }
    if (!ollama_parse_generate(body, &g, &e) || !ollama_parse_options(g.options, &o->opts, &e) ||
        !ollama_parse_keep_alive(g.keep_alive, &ka, &ka_given, &e)) {
        http_reply_error(r, &e);
        goto out;
    }
    if (!acquire(r, id, &eng, &o->load_ns))
        goto out;
    if ((!g.prompt || !*g.prompt) && (!g.suffix || !*g.suffix) && (!g.system || !*g.system) &&
        g.n_context == 0) {
        srv_models_unpin(r->params->models, eng);
        eng = NULL;
        keep_alive(r, id, ka_given, ka);
        load_reply(r, name, false, ka_given && ka == 0);
        goto out;
    }
    if (!generate_tokens(r, eng, &g, &toks))
        goto out;
    if (toks.n == 0) {
        http_reply_errorf(r, 400, "prompt", NULL, "the prompt is empty (no tokens)");
        goto out;
    }
    o->prompt_ids = malloc(toks.n * sizeof(*o->prompt_ids));
    json_t *ids = json_array();
    for (size_t i = 0; i < toks.n; i++)
        json_array_append_new(ids, json_integer(toks.ids[i]));
    if (o->prompt_ids) {
        memcpy(o->prompt_ids, toks.ids, toks.n * sizeof(*o->prompt_ids));
        o->n_prompt_ids = toks.n;
    }
    json_t *ob = json_pack("{s:s,s:o,s:b}", "model", id, "prompt", ids, "stream", g.stream);
    if (ob && g.response_format)
        json_object_set(ob, "response_format", g.response_format);
    if (!ob || !swap_body(r, ob))
        goto out;
    r->sink_ctx = o;
    api_completions(r);
    r->sink_ctx = NULL;
out:
    inf_tokens_release(&toks);
    ollama_generate_release(&g);
    json_decref(body);
    if (eng)
        srv_models_unpin(r->params->models, eng);
    if (o && eng)
        keep_alive(r, id, ka_given, ka);
    oll_release(o);
}

/* ---- /api/embed, /api/embeddings ---------------------------------------------------------------
 */

static void embed(struct http_req *r, bool legacy)
{
    double t0 = http_now();
    struct api_error e = {0};
    struct ollama_embed q = {0};
    const char *name = NULL;
    char id[256];
    struct srv_engine *eng = NULL;
    struct oll *o = NULL;
    json_t *body = parse_request(r, &name);
    if (!body)
        return;
    double ka = -1;
    bool ka_given = false;
    if (!resolve(r, name, id, sizeof(id))) {
        not_found(r, name);
        goto out;
    }
    if (!(o = oll_new(legacy ? OLL_EMBEDDINGS : OLL_EMBED, name, t0))) {
        http_reply_errorf(r, 500, NULL, NULL, "out of memory");
        goto out;
    }
    if (!ollama_parse_embed(body, legacy, &q, &e) ||
        !ollama_parse_keep_alive(q.keep_alive, &ka, &ka_given, &e)) {
        http_reply_error(r, &e);
        goto out;
    }
    if (!acquire(r, id, &eng, &o->load_ns))
        goto out;
    const struct inf_tokenizer *tok = srv_engine_tokenizer(eng);
    struct inf_model_info mi;
    inf_model_get_info(srv_engine_model(eng), &mi);
    if (q.dimensions > mi.n_embd) {
        http_reply_errorf(r, 400, "dimensions", NULL, "dimensions %lld is more than the model's %d",
                          (long long)q.dimensions, mi.n_embd);
        goto out;
    }
    o->dimensions = q.dimensions;
    if (q.n_inputs == 0 || (legacy && !*q.inputs[0])) { /* nothing to embed: load only */
        json_t *j = json_object();
        if (legacy) {
            json_object_set_new(j, "embedding", json_array());
        } else {
            json_object_set_new(j, "model", json_string(name));
            json_object_set_new(j, "embeddings", json_array());
        }
        http_reply_json(r, 200, j);
        goto out;
    }
    /* tokenized here so that an input longer than a slot can be cut (truncate, the default) */
    uint32_t slot = srv_engine_slot_ctx(eng);
    json_t *inputs = json_array();
    for (size_t i = 0; i < q.n_inputs; i++) {
        struct inf_tokens t = {0};
        if (!tok ||
            !encode(r, tok, q.inputs[i], strlen(q.inputs[i]), INF_TOK_ADD_SPECIAL, NULL, 0, &t)) {
            if (!tok)
                http_reply_errorf(r, 500, NULL, NULL, "the model has no tokenizer");
            inf_tokens_release(&t);
            json_decref(inputs);
            goto out;
        }
        if (t.n > slot) {
            if (!q.truncate) {
                inf_tokens_release(&t);
                json_decref(inputs);
                http_reply_errorf(r, 400, "input", NULL,
                                  "the input length (%zu tokens) exceeds the context length "
                                  "(%u)",
                                  t.n, slot);
                goto out;
            }
            t.n = slot;
        }
        json_t *a = json_array();
        for (size_t k = 0; k < t.n; k++)
            json_array_append_new(a, json_integer(t.ids[k]));
        json_array_append_new(inputs, a);
        inf_tokens_release(&t);
    }
    json_t *ob = json_pack("{s:s,s:o}", "model", id, "input", inputs);
    if (!ob || !swap_body(r, ob))
        goto out;
    r->sink_ctx = o;
    api_embeddings(r);
    r->sink_ctx = NULL;
out:
    ollama_embed_release(&q);
    json_decref(body);
    if (eng)
        srv_models_unpin(r->params->models, eng);
    if (o && eng)
        keep_alive(r, id, ka_given, ka);
    oll_release(o);
}

void ollama_embed(struct http_req *r)
{
    embed(r, false);
}

void ollama_embeddings(struct http_req *r)
{
    embed(r, true);
}

/* ---- listing --------------------------------------------------------------------------------- */

void ollama_tags(struct http_req *r)
{
    struct srv_model_entry *m = NULL;
    size_t n = 0;
    struct inf_error err = {0};
    if (srv_models_list(r->params->models, &m, &n, &err) != INF_OK) {
        http_reply_errorf(r, 500, NULL, NULL, "%s", inf_error_message(&err));
        return;
    }
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, model_entry_json(r, &m[i]));
    free(m);
    http_reply_json(r, 200, json_pack("{s:o}", "models", a));
}

void ollama_ps(struct http_req *r)
{
    struct srv_loaded_model *m = NULL;
    size_t n = 0;
    struct inf_error err = {0};
    if (srv_models_loaded(r->params->models, &m, &n, &err) != INF_OK) {
        http_reply_errorf(r, 500, NULL, NULL, "%s", inf_error_message(&err));
        return;
    }
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *o = model_entry_json(r, &m[i].entry);
        json_object_del(o, "modified_at");
        /* no expiry: far in the future, as Ollama shows a negative keep_alive */
        int64_t exp = m[i].expires_at ? m[i].expires_at : (int64_t)time(NULL) + 100LL * 365 * 86400;
        json_object_set_new(o, "expires_at", unix_json(exp));
        json_object_set_new(o, "size_vram", json_integer(0));
        json_object_set_new(o, "context_length", json_integer(m[i].slot_ctx));
        json_array_append_new(a, o);
    }
    free(m);
    http_reply_json(r, 200, json_pack("{s:o}", "models", a));
}

/* A GGUF metadata value as JSON (arrays: null, as Ollama shows them unless asked for more). */
static json_t *gguf_value_json(const struct inf_gguf_value *v)
{
    switch (v->type) {
    case INF_GGUF_TYPE_STRING:
        return api_json_str(v->str.data, (size_t)v->str.len);
    case INF_GGUF_TYPE_BOOL:
        return json_boolean(v->b);
    case INF_GGUF_TYPE_FLOAT32:
        return json_real(isfinite(v->f32) ? v->f32 : 0.0);
    case INF_GGUF_TYPE_FLOAT64:
        return json_real(isfinite(v->f64) ? v->f64 : 0.0);
    case INF_GGUF_TYPE_ARRAY:
        return json_null();
    default: {
        int64_t i;
        uint64_t u;
        if (inf_gguf_value_as_i64(v, &i) == INF_OK)
            return json_integer(i);
        if (inf_gguf_value_as_u64(v, &u) == INF_OK)
            return json_integer((json_int_t)u);
        return json_null();
    }
    }
}

static const char default_parameters[] = "temperature 0.8\ntop_k 40\ntop_p 0.9\n"
                                         "repeat_penalty 1.1\nrepeat_last_n 64";

void ollama_show(struct http_req *r)
{
    const char *name = NULL;
    char id[256];
    json_t *body = parse_request(r, &name);
    if (!body)
        return;
    struct srv_model_entry *m = NULL;
    size_t n = 0;
    struct inf_error err = {0};
    struct inf_gguf *g = NULL;
    if (!resolve(r, name, id, sizeof(id))) {
        not_found(r, name);
        goto out;
    }
    if (srv_models_list(r->params->models, &m, &n, &err) != INF_OK) {
        http_reply_errorf(r, 500, NULL, NULL, "%s", inf_error_message(&err));
        goto out;
    }
    const struct srv_model_entry *me = NULL;
    for (size_t i = 0; i < n; i++)
        if (strcmp(m[i].id, id) == 0)
            me = &m[i];
    if (!me) {
        not_found(r, name);
        goto out;
    }
    if (inf_gguf_open_file(me->path, &g, &err) != INF_OK) {
        http_reply_errorf(r, 500, NULL, NULL, "cannot read '%s': %s", me->id,
                          inf_error_message(&err));
        goto out;
    }
    json_t *info = json_object();
    const char *tpl = "";
    bool has_fim = false, embedding = false;
    for (size_t i = 0; i < inf_gguf_n_kv(g); i++) {
        const struct inf_gguf_kv *kv = inf_gguf_kv_at(g, i);
        char key[256];
        if (kv->key.len >= sizeof(key) || memchr(kv->key.data, 0, (size_t)kv->key.len))
            continue;
        memcpy(key, kv->key.data, (size_t)kv->key.len);
        key[kv->key.len] = '\0';
        if (strcmp(key, "tokenizer.chat_template") == 0 && kv->value.type == INF_GGUF_TYPE_STRING)
            tpl = kv->value.str.data;
        if (strstr(key, "fim_") && strstr(key, "token_id"))
            has_fim = true;
        if (strstr(key, ".pooling_type"))
            embedding = true;
        if (strcmp(key, "tokenizer.chat_template") != 0)
            json_object_set_new(info, key, gguf_value_json(&kv->value));
    }
    struct inf_model_summary s;
    memset(&s, 0, sizeof(s));
    inf_model_probe(me->path, &s, &err);
    if (s.n_params)
        json_object_set_new(info, "general.parameter_count", json_integer((json_int_t)s.n_params));
    json_t *caps = json_array();
    json_array_append_new(caps, json_string(embedding ? "embedding" : "completion"));
    if (strstr(tpl, "tools"))
        json_array_append_new(caps, json_string("tools"));
    if (has_fim)
        json_array_append_new(caps, json_string("insert"));
    struct buf_s {
        char *d;
        size_t n, cap;
    } mf = {0};
    char line[4400];
    snprintf(line, sizeof(line), "# Modelfile generated by inferno\nFROM %s\n", me->path);
    inf__append(&mf.d, &mf.n, &mf.cap, line, strlen(line), 256);
    if (*tpl) {
        inf__append(&mf.d, &mf.n, &mf.cap, "TEMPLATE \"\"\"", 12, 256);
        inf__append(&mf.d, &mf.n, &mf.cap, tpl, strlen(tpl), 256);
        inf__append(&mf.d, &mf.n, &mf.cap, "\"\"\"\n", 4, 256);
    }
    static const char *const params[] = {"temperature 0.8", "top_k 40", "top_p 0.9",
                                         "repeat_penalty 1.1", "repeat_last_n 64"};
    for (size_t i = 0; i < sizeof(params) / sizeof(params[0]); i++) {
        snprintf(line, sizeof(line), "PARAMETER %s\n", params[i]);
        inf__append(&mf.d, &mf.n, &mf.cap, line, strlen(line), 256);
    }
    json_t *o = json_object();
    json_object_set_new(o, "modelfile", api_json_str(mf.d ? mf.d : "", mf.n));
    free(mf.d);
    json_object_set_new(o, "parameters", json_string(default_parameters));
    json_object_set_new(o, "template", api_json_str(tpl, strlen(tpl)));
    json_object_set_new(o, "details", details_json(&s));
    json_object_set_new(o, "model_info", info);
    json_object_set_new(o, "capabilities", caps);
    json_object_set_new(o, "modified_at", unix_json(me->created));
    http_reply_json(r, 200, o);
out:
    inf_gguf_free(g);
    free(m);
    json_decref(body);
}

void ollama_version(struct http_req *r)
{
    http_reply_json(
        r, 200, json_pack("{s:s,s:s}", "version", OLLAMA_API_VERSION, "inferno", INFERNO_VERSION));
}

void ollama_root(struct http_req *r)
{
    static const char msg[] = "Inferno is running";
    http_reply_text(r, 200, "text/plain; charset=utf-8", msg, sizeof(msg) - 1);
}

/* ---- copy, delete ------------------------------------------------------------------------------
 */

/* Whether path lies inside directory dir (both resolved). */
static bool inside(const char *path, const char *dir)
{
    char rp[PATH_MAX], rd[PATH_MAX];
    if (!realpath(path, rp) || !realpath(dir, rd))
        return false;
    size_t n = strlen(rd);
    return strncmp(rp, rd, n) == 0 && rp[n] == '/';
}

/* Copy src to dst (which must not exist): a hard link when they share a file system. */
static inf_status copy_file(const char *src, const char *dst, struct inf_error *err)
{
    if (link(src, dst) == 0)
        return INF_OK;
    if (errno == EEXIST)
        return inf_error_set(err, INF_EEXIST, "'%s' exists", dst);
    int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return inf_error_set(err, INF_EIO, "cannot open '%s': %s", src, strerror(errno));
    int out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (out < 0) {
        int en = errno;
        close(in);
        return inf_error_set(err, en == EEXIST ? INF_EEXIST : INF_EIO, "cannot create '%s': %s",
                             dst, strerror(en));
    }
    char buf[1 << 16];
    ssize_t k;
    inf_status rc = INF_OK;
    while ((k = read(in, buf, sizeof(buf))) > 0) {
        for (ssize_t off = 0; off < k;) {
            ssize_t w = write(out, buf + off, (size_t)(k - off));
            if (w <= 0) {
                rc = inf_error_set(err, INF_EIO, "writing '%s': %s", dst, strerror(errno));
                break;
            }
            off += w;
        }
        if (rc)
            break;
    }
    if (k < 0 && !rc)
        rc = inf_error_set(err, INF_EIO, "reading '%s': %s", src, strerror(errno));
    close(in);
    if (close(out) != 0 && !rc)
        rc = inf_error_set(err, INF_EIO, "writing '%s': %s", dst, strerror(errno));
    if (rc)
        unlink(dst);
    return rc;
}

/* The entry of model id (false when gone). */
static bool entry_of(struct http_req *r, const char *id, struct srv_model_entry *out)
{
    struct srv_model_entry *m = NULL;
    size_t n = 0;
    struct inf_error err = {0};
    bool hit = false;
    if (srv_models_list(r->params->models, &m, &n, &err) != INF_OK)
        return false;
    for (size_t i = 0; i < n && !hit; i++)
        if (strcmp(m[i].id, id) == 0) {
            *out = m[i];
            hit = true;
        }
    free(m);
    return hit;
}

void ollama_copy(struct http_req *r)
{
    struct api_error e = {0};
    json_t *body = api_parse_body(r->body, r->len, &e);
    if (!body) {
        http_reply_error(r, &e);
        return;
    }
    const char *src = json_string_value(json_object_get(body, "source"));
    const char *dst = json_string_value(json_object_get(body, "destination"));
    const char *dir = srv_models_dir(r->params->models);
    char id[256], dst_id[256], path[4096];
    struct srv_model_entry me;
    struct inf_error err = {0};
    if (!src || !dst) {
        http_reply_errorf(r, 400, NULL, NULL, "source and destination are required");
        goto out;
    }
    if (!resolve(r, src, id, sizeof(id)) || !entry_of(r, id, &me)) {
        not_found(r, src);
        goto out;
    }
    if (!ollama_name_valid(dst)) {
        http_reply_errorf(r, 400, "destination", NULL,
                          "invalid model name '%.200s' (letters, digits, '.', '_', '-'; "
                          "[namespace/]name[:tag])",
                          dst);
        goto out;
    }
    if (!dir) {
        http_reply_errorf(r, 400, NULL, NULL,
                          "copying needs a models_dir (the copy is written there)");
        goto out;
    }
    size_t dl = strlen(dst);
    snprintf(dst_id, sizeof(dst_id), "%.*s",
             (int)(dl > 7 && !strcmp(dst + dl - 7, ":latest") ? dl - 7 : dl), dst);
    char probe[256];
    if (resolve(r, dst, probe, sizeof(probe))) {
        http_reply_errorf(r, 400, "destination", NULL, "a model named '%.200s' exists", dst);
        goto out;
    }
    /* namespace directories under models_dir, made as needed */
    for (char *p = dst_id; (p = strchr(p, '/')); p++) {
        snprintf(path, sizeof(path), "%s/%.*s", dir, (int)(p - dst_id), dst_id);
        if (mkdir(path, 0755) != 0 && errno != EEXIST) {
            http_reply_errorf(r, 500, NULL, NULL, "cannot create '%s': %s", path, strerror(errno));
            goto out;
        }
    }
    snprintf(path, sizeof(path), "%s/%s.gguf", dir, dst_id);
    inf_status st = copy_file(me.path, path, &err);
    if (st == INF_OK && (st = srv_models_add(r->params->models, dst_id, path, &err)) != INF_OK)
        unlink(path);
    if (st != INF_OK) {
        http_reply_errorf(r, st == INF_EEXIST ? 400 : 500, NULL, NULL, "copy failed: %s",
                          inf_error_message(&err));
        goto out;
    }
    INF_LOG_INFO("http", "ollama: copied '%s' to '%s'", id, path);
    http_reply_text(r, 200, "application/json", "", 0);
out:
    json_decref(body);
}

void ollama_delete(struct http_req *r)
{
    const char *name = NULL;
    char id[256];
    json_t *body = parse_request(r, &name);
    if (!body)
        return;
    const char *dir = srv_models_dir(r->params->models);
    struct srv_model_entry me;
    struct inf_error err = {0};
    if (!resolve(r, name, id, sizeof(id)) || !entry_of(r, id, &me)) {
        not_found(r, name);
        goto out;
    }
    if (!dir || !inside(me.path, dir)) {
        http_reply_errorf(r, 400, "model", NULL,
                          "the model '%.200s' is not in models_dir: only models there can be "
                          "deleted",
                          name);
        goto out;
    }
    inf_status st = srv_models_remove(r->params->models, id, &err);
    if (st != INF_OK) {
        http_reply_errorf(r, st == INF_ELIMIT ? 409 : 400, "model", NULL, "%s",
                          inf_error_message(&err));
        goto out;
    }
    if (unlink(me.path) != 0) {
        http_reply_errorf(r, 500, NULL, NULL, "cannot delete '%s': %s", me.path, strerror(errno));
        goto out;
    }
    /* a pulled (registered) name goes from the model database too */
    const char *db = r->params->models_db;
    if (db && *db)
        inf_models_unregister(db, id, NULL);
    INF_LOG_INFO("http", "ollama: deleted '%s' (%s)", id, me.path);
    http_reply_text(r, 200, "application/json", "", 0);
out:
    json_decref(body);
}

/* ---- not (yet) served -------------------------------------------------------------------------
 */

void ollama_push(struct http_req *r)
{
    http_reply_errorf(r, 501, NULL, NULL, "pushing models is not supported by Inferno");
}

void ollama_create(struct http_req *r)
{
    http_reply_errorf(r, 501, NULL, NULL,
                      "creating models is not supported by Inferno: put GGUF files in "
                      "models_dir");
}

void ollama_unknown(struct http_req *r)
{
    http_reply_errorf(r, 404, NULL, NULL, "no route for %s %.200s", r->method, r->url);
}
