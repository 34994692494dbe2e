/*
 * api_handlers.c - the endpoints: OpenAI chat completions, completions, embeddings, models;
 * health; tokenize / detokenize / apply-template. Each handler runs on the connection's thread
 * (see http.h): validate (api_parse.c), pick the engine, render and tokenize, submit, then
 * collect the events - into one JSON response, or into an SSE stream read by libmicrohttpd.
 */
#include <math.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "build_info.h"
#include "core/buf.h"
#include "inferno/engine.h"
#include "inferno/grammar.h"
#include "inferno/log.h"
#include "inferno/template.h"
#include "inferno/tokenizer.h"
#include "server/audit_hook.h"
#include "server/cache_hook.h"
#include "server/handlers.h"
#include "server/kserve.h"
#include "server/tools.h"

#define WAIT_SLICE_MS 100 /* longest wait between two checks of the client's socket */

/* ---- small helpers -------------------------------------------------------------------------- */

struct buf {
    char *d;
    size_t n, cap;
};

static bool buf_add(struct buf *b, const char *s, size_t n)
{
    return inf__append(&b->d, &b->n, &b->cap, s, n, 256);
}

/* "fp_" and the first 10 characters of the build's commit. A constant: the lazily filled static
 * buffer this was raced between request threads (glibc's snprintf stores a NUL at the start
 * first), and a response copied in that instant carried "\u0000p_..." */
static json_t *fingerprint(void)
{
    static const char fp[] = "fp_" INFERNO_GIT_COMMIT;
    return json_stringn(fp, sizeof(fp) - 1 < 13 ? sizeof(fp) - 1 : 13);
}

/* A response id: prefix, then 29 random characters. */
static void new_id(char out[64], const char *prefix)
{
    size_t k = strlen(prefix);
    memcpy(out, prefix, k);
    api_random_id(out + k, 29);
}

/* The fields every completion object opens with, streamed chunks included. */
static json_t *completion_object(const char *id, const char *object, int64_t created,
                                 const char *model)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(id));
    json_object_set_new(o, "object", json_string(object));
    json_object_set_new(o, "created", json_integer((json_int_t)created));
    json_object_set_new(o, "model", json_string(model));
    json_object_set_new(o, "system_fingerprint", fingerprint());
    return o;
}

/* Characters (code points) in s[0..n): what clients index strings by. */
static size_t n_chars(const char *s, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += ((unsigned char)s[i] & 0xC0) != 0x80;
    return c;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static json_t *lp_json(float lp)
{
    if (isnan(lp))
        return json_null();
    return json_real(isfinite(lp) ? lp : -9999.0);
}

static const char *finish_name(enum srv_finish f)
{
    return f == SRV_FINISH_LENGTH ? "length" : "stop";
}

/* ---- engines -------------------------------------------------------------------------------- */

struct eng {
    struct srv_models *models;
    struct srv_engine *e;
    const struct inf_model *model;
    const struct inf_tokenizer *tok;
    int32_t n_vocab, n_embd;
    const char *id;
};

/*
 * The end of parsing a request: body (api_parse_body's, NULL when that failed) is dropped and,
 * unless ok, the error e is answered. Returns ok. The request struct (zeroed by its
 * initializer, then by its api_parse_*) is released at the handler's end either way.
 */
static bool parsed(struct http_req *r, json_t *body, bool ok, const struct api_error *e)
{
    json_decref(body);
    if (!ok)
        http_reply_error(r, e);
    return ok;
}

/* A sink's look at the parsed options (Ollama's `options` land there). */
static void sink_gen(struct http_req *r, struct api_gen *g)
{
    if (r->sink && r->sink->gen)
        r->sink->gen(r->sink_ctx, g);
}

/* A sink's look at a non-streamed generation's first choice, before the reply. */
static void sink_result(struct http_req *r, enum srv_finish finish, const char *reason,
                        const struct srv_usage *usage, const struct srv_token_info *toks, size_t n)
{
    if (!r->sink || !r->sink->result)
        return;
    inf_token *ids = malloc((n ? n : 1) * sizeof(*ids));
    for (size_t i = 0; ids && i < n; i++)
        ids[i] = toks[i].id;
    struct http_gen_end end = {finish, reason, *usage, ids, ids ? n : 0};
    r->sink->result(r->sink_ctx, &end);
    free(ids);
}

static bool eng_acquire(struct http_req *r, const char *model, struct eng *g)
{
    struct inf_error err = {0};
    memset(g, 0, sizeof(*g));
    g->models = r->params->models;
    inf_status st = srv_models_acquire(g->models, model, &g->e, &err);
    if (st == INF_ENOTFOUND) {
        http_reply_errorf(r, 404, "model", "model_not_found", "the model '%.200s' does not exist",
                          model ? model : "");
        return false;
    }
    if (st == INF_ELIMIT) {
        /* every loaded model is busy and none may be added: a later try succeeds */
        http_reply_errorf(r, 503, "model", "model_busy", "cannot load the model now: %s",
                          inf_error_message(&err));
        return false;
    }
    if (st) {
        http_reply_errorf(r, st == INF_ECANCELED ? 503 : 500, "model", NULL,
                          "cannot load the model: %s", inf_error_message(&err));
        return false;
    }
    g->model = srv_engine_model(g->e);
    g->tok = srv_engine_tokenizer(g->e);
    g->id = srv_engine_model_id(g->e);
    struct inf_model_info mi;
    inf_model_get_info(g->model, &mi);
    g->n_vocab = mi.n_vocab;
    g->n_embd = mi.n_embd;
    if (g->tok && (int32_t)inf_tok_info(g->tok)->n_tokens < g->n_vocab)
        g->n_vocab = (int32_t)inf_tok_info(g->tok)->n_tokens;
    if (!g->tok) {
        srv_models_unpin(g->models, g->e);
        http_reply_errorf(r, 500, NULL, NULL, "the model has no tokenizer");
        return false;
    }
    return true;
}

/*
 * logit_bias against the loaded vocabulary: every id inside it, and at least one token left
 * that is not banned (-100), else no token could ever be sampled (400, not a silent pick).
 */
static bool check_logit_bias(struct http_req *r, const struct api_gen *gen, const struct eng *g)
{
    for (size_t i = 0; i < gen->n_bias; i++)
        if (gen->bias[i].token >= g->n_vocab) {
            http_reply_errorf(r, 400, "logit_bias", NULL,
                              "logit_bias token id %d is outside the vocabulary (0..%d)",
                              gen->bias[i].token, g->n_vocab - 1);
            return false;
        }
    if (gen->n_bias < (size_t)g->n_vocab)
        return true; /* fewer entries than tokens: some token is left */
    uint8_t *banned = calloc((size_t)g->n_vocab, 1);
    if (!banned) {
        http_reply_errorf(r, 500, NULL, NULL, "out of memory");
        return false;
    }
    int32_t n_banned = 0;
    for (size_t i = 0; i < gen->n_bias; i++)
        if (isinf(gen->bias[i].bias) && gen->bias[i].bias < 0 && !banned[gen->bias[i].token]) {
            banned[gen->bias[i].token] = 1;
            n_banned++;
        }
    free(banned);
    if (n_banned >= g->n_vocab) {
        http_reply_errorf(r, 400, "logit_bias", NULL,
                          "logit_bias bans every token of the vocabulary (%d tokens at -100): "
                          "nothing could be generated",
                          g->n_vocab);
        return false;
    }
    return true;
}

static void eng_release(struct eng *g)
{
    if (g->e)
        srv_models_unpin(g->models, g->e);
    g->e = NULL;
}

/* Tokenize text; templated text may hold special-token markers and may carry its own BOS. No
 * control token is read from the untrusted ranges (the chat's messages and tools). */
static bool tokenize_spans(struct http_req *r, struct eng *g, const char *text, size_t len,
                           unsigned flags, bool templated, const struct inf_text_span *untrusted,
                           size_t n_untrusted, struct inf_tokens *out)
{
    struct inf_error err = {0};
    if (inf_tok_encode_untrusted(g->tok, text, len, flags, untrusted, n_untrusted, out, &err) !=
        INF_OK) {
        http_reply_errorf(r, err.code == INF_ENOMEM ? 500 : 400, NULL, NULL,
                          "tokenizing the prompt failed: %s", inf_error_message(&err));
        return false;
    }
    const struct inf_tok_info *ti = inf_tok_info(g->tok);
    /* a template that writes the BOS text itself must not get a second one (as cli_engine.c) */
    if (templated && out->n >= 2 && ti->bos >= 0 && out->ids[0] == ti->bos &&
        out->ids[1] == ti->bos) {
        memmove(out->ids, out->ids + 1, (out->n - 1) * sizeof(inf_token));
        out->n--;
    }
    return true;
}

static bool tokenize(struct http_req *r, struct eng *g, const char *text, size_t len,
                     unsigned flags, bool templated, struct inf_tokens *out)
{
    return tokenize_spans(r, g, text, len, flags, templated, NULL, 0, out);
}

static bool check_ids(struct http_req *r, struct eng *g, const inf_token *ids, size_t n,
                      const char *param)
{
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= g->n_vocab) {
            http_reply_errorf(r, 400, param, NULL, "token id %d is outside the vocabulary (0..%d)",
                              ids[i], g->n_vocab - 1);
            return false;
        }
    return true;
}

static bool check_fits(struct http_req *r, struct eng *g, size_t n_prompt, const char *param)
{
    uint32_t slot = srv_engine_slot_ctx(g->e);
    if (n_prompt == 0) {
        http_reply_errorf(r, 400, param, NULL, "the prompt is empty (no tokens)");
        return false;
    }
    if (n_prompt > slot) {
        http_reply_errorf(r, 400, param, "context_length_exceeded",
                          "the prompt has %zu tokens, more than the %u tokens of context a slot "
                          "holds (%d slots share the context)",
                          n_prompt, slot, srv_engine_n_parallel(g->e));
        return false;
    }
    return true;
}

/* The chat template to render with: the model's (its `tool_use` variant when the request has
 * tools and the model ships one), NULL when it has none. */
static const char *chat_template(const struct eng *g, bool tools)
{
    const char *tpl = tools ? inf_model_chat_template(g->model, "tool_use") : NULL;
    return tpl ? tpl : inf_model_chat_template(g->model, NULL);
}

/* Render the chat template tpl (ChatML when NULL) with the messages and, when given, the tools;
 * out->untrusted says which bytes came from the messages and tools. */
static bool render_chat(struct http_req *r, struct eng *g, const char *tpl, json_t *messages,
                        json_t *tools, struct inf_rendered *out)
{
    const struct inf_tok_info *ti = inf_tok_info(g->tok);
    struct inf_error err = {0};
    memset(out, 0, sizeof(*out));
    if (!tpl) {
        INF_LOG_DEBUG("http", "request %s: the model has no chat template; using ChatML",
                      r->req_id);
        tpl = inf_template_default_chatml();
    }
    char *msgs = json_dumps(messages, JSON_COMPACT);
    char *tls = tools ? json_dumps(tools, JSON_COMPACT) : NULL;
    if (!msgs || (tools && !tls)) {
        free(msgs);
        free(tls);
        http_reply_errorf(r, 500, NULL, NULL, "out of memory");
        return false;
    }
    struct inf_chat_params cp = {0};
    cp.messages_json = msgs;
    cp.tools_json = tls;
    cp.add_generation_prompt = true;
    cp.bos_token = ti->bos >= 0 ? inf_tok_text(g->tok, ti->bos, NULL) : "";
    cp.eos_token = ti->eos >= 0 ? inf_tok_text(g->tok, ti->eos, NULL) : "";
    inf_status st = inf_chat_render(tpl, strlen(tpl), &cp, NULL, out, &err);
    free(msgs);
    free(tls);
    if (st) {
        /* raise_exception in a template is the template refusing the conversation */
        http_reply_errorf(r, st == INF_EINVAL ? 400 : 500, "messages", NULL,
                          "the chat template failed: %s", inf_error_message(&err));
        return false;
    }
    return true;
}

/* ---- constrained output --------------------------------------------------------------------- */

/* The HTTP status of a compiler's failure: the request's fault (400) unless out of memory or
 * not built yet. */
static int compile_status(inf_status st)
{
    return st == INF_ENOMEM ? 500 : st == INF_ENOTIMPL ? 501 : 400;
}

/* The engine's cached grammar for the key prefix + text (a new reference), or NULL. The key is
 * left in *key (malloc'd) for grammar_cached. */
static struct srv_grammar *grammar_lookup(struct eng *e, const char *prefix, const char *text,
                                          char **key, size_t *key_len)
{
    size_t pl = strlen(prefix), tl = strlen(text);
    *key = malloc(pl + tl + 1);
    if (!*key)
        return NULL;
    memcpy(*key, prefix, pl);
    memcpy(*key + pl, text, tl + 1);
    *key_len = pl + tl;
    return srv_engine_grammar_get(e->e, *key, *key_len);
}

/* A freshly compiled grammar, wrapped and remembered by the engine under key (freed here). */
static struct srv_grammar *grammar_cached(struct http_req *r, struct eng *e, struct inf_grammar *g,
                                          char *key, size_t key_len, bool *ok)
{
    struct srv_grammar *sg = srv_grammar_new(g);
    if (!sg) {
        *ok = false;
        http_reply_errorf(r, 500, NULL, NULL, "out of memory");
    } else if (key) {
        srv_engine_grammar_put(e->e, key, key_len, sg);
    }
    free(key);
    return sg;
}

/* The request's output format compiled (here, on the connection's thread, never on the engine's)
 * or found in the engine's cache: NULL with *ok true when the output is free text; a failure is
 * answered (400 naming the field, with the compiler's message). */
static struct srv_grammar *compile_format(struct http_req *r, struct eng *e,
                                          const struct api_format *f, bool *ok)
{
    struct inf_grammar *g = NULL;
    struct inf_error err = {0};
    inf_status st;
    *ok = true;
    if (f->kind == API_FMT_TEXT)
        return NULL;
    char *key = NULL;
    size_t key_len = 0;
    struct srv_grammar *sg = grammar_lookup(e,
                                            f->kind == API_FMT_GBNF ? "gbnf:"
                                            : f->strict             ? "schema-strict:"
                                                                    : "schema:",
                                            f->text, &key, &key_len);
    if (sg) {
        free(key);
        return sg;
    }
    if (f->kind == API_FMT_GBNF) {
        st = inf_grammar_from_gbnf(f->text, f->len, NULL, &g, &err);
    } else {
        struct inf_json_schema_opts o = {0};
        o.strict = f->strict;
        st = inf_grammar_from_json_schema(f->text, f->len, &o, &g, &err);
    }
    if (st != INF_OK) {
        free(key);
        *ok = false;
        http_reply_errorf(r, compile_status(st), f->param, NULL, "%s: %s",
                          f->kind == API_FMT_GBNF ? "the grammar cannot be used"
                                                  : "the JSON schema cannot be used",
                          inf_error_message(&err));
        return NULL;
    }
    return grammar_cached(r, e, g, key, key_len, ok);
}

/* The grammar of forced tool calls (tool_choice required or named), compiled or cached; failures
 * are answered. */
static struct srv_grammar *compile_tools(struct http_req *r, struct eng *e,
                                         const struct api_chat_req *q, enum tool_family f, bool *ok)
{
    struct inf_grammar *g = NULL;
    struct inf_error err = {0};
    *ok = true;
    if (q->tool_choice != API_TOOLS_REQUIRED && q->tool_choice != API_TOOLS_NAMED)
        return NULL;
    char prefix[128], *key = NULL, *tools = json_dumps(q->tools, JSON_COMPACT);
    size_t key_len = 0;
    snprintf(prefix, sizeof(prefix), "tools:%s:%d:%s:", tool_family_name(f),
             (int)q->parallel_tool_calls, q->tool_choice == API_TOOLS_NAMED ? q->tool_name : "");
    struct srv_grammar *sg = tools ? grammar_lookup(e, prefix, tools, &key, &key_len) : NULL;
    free(tools);
    if (sg) {
        free(key);
        return sg;
    }
    inf_status st =
        tool_grammar(f, q->tools, q->tool_choice == API_TOOLS_NAMED ? q->tool_name : NULL,
                     q->parallel_tool_calls, &g, &err);
    if (st != INF_OK) {
        free(key);
        *ok = false;
        http_reply_errorf(r, compile_status(st), "tools", NULL,
                          "the tools' parameter schemas cannot be used: %s",
                          inf_error_message(&err));
        return NULL;
    }
    return grammar_cached(r, e, g, key, key_len, ok);
}

/* A tool call as OpenAI's message.tool_calls[] entry (index >= 0: a streamed delta's). */
static json_t *tool_call_json(const struct tool_call *c, int index, bool with_args)
{
    json_t *o = json_object();
    if (index >= 0)
        json_object_set_new(o, "index", json_integer(index));
    json_object_set_new(o, "id", json_string(c->id));
    json_object_set_new(o, "type", json_string("function"));
    json_object_set_new(
        o, "function",
        json_pack("{s:o,s:o}", "name", api_json_str(c->name, strlen(c->name)), "arguments",
                  with_args ? api_json_str(c->arguments, strlen(c->arguments)) : json_string("")));
    return o;
}

/* ---- tasks and their results ---------------------------------------------------------------- */

struct choice {
    struct srv_task *task;
    int prompt_index;
    struct buf text;
    struct srv_token_info *toks; /* generated tokens with logprobs */
    size_t n_toks, cap_toks;
    struct srv_token_info *ptoks; /* prompt logprobs */
    int32_t n_ptoks;
    float *emb;
    int32_t n_embd;
    bool done, failed;
    enum srv_finish finish;
    struct srv_usage usage;
    int http_status;
    char message[INF_ERROR_MSG_MAX];
};

static void choices_free(struct http_server *s, struct choice *c, size_t n)
{
    for (size_t i = 0; c && i < n; i++) {
        if (c[i].task) {
            http_untrack_task(s, c[i].task);
            srv_task_release(c[i].task);
        }
        free(c[i].text.d);
        free(c[i].toks);
        free(c[i].ptoks);
        free(c[i].emb);
    }
    free(c);
}

static void task_params_from_gen(const struct api_gen *g, struct srv_task_params *tp, int i,
                                 struct srv_grammar *grammar)
{
    memset(tp, 0, sizeof(*tp));
    tp->kind = SRV_TASK_COMPLETION;
    tp->max_tokens = g->max_tokens;
    tp->sampling = g->sampling;
    tp->sampling.seed = g->sampling.seed + (uint64_t)i;
    tp->sampling.logit_bias = g->bias;
    tp->sampling.n_logit_bias = g->n_bias;
    tp->ignore_eos = g->ignore_eos;
    tp->stop = (const char *const *)g->stop;
    tp->n_stop = g->n_stop;
    tp->logprobs = g->logprobs;
    tp->top_logprobs = g->top_logprobs;
    tp->grammar = grammar;
}

/* Submit a request's n tasks together (srv_task_submit_n: all or none; the queue counts the
   request once); c[i].task gets tp[i]'s task. */
static bool submit_all(struct http_req *r, struct eng *g, struct srv_task_params *tp, size_t n,
                       struct choice *c)
{
    struct inf_error err = {0};
    for (size_t i = 0; i < n; i++)
        tp[i].background = r->background;
    struct srv_task **t = calloc(n, sizeof(*t));
    if (!t) {
        http_reply_errorf(r, 500, NULL, NULL, "out of memory");
        return false;
    }
    inf_status st = srv_task_submit_n(g->e, tp, n, t, &err);
    for (size_t i = 0; st == INF_OK && i < n; i++) {
        c[i].task = t[i];
        http_track_task(r->srv, c[i].task);
    }
    free(t);
    if (st == INF_OK)
        return true;
    if (st == INF_ELIMIT)
        http_reply_errorf(r, 503, NULL, "queue_full",
                          "the server is busy: the request queue is full; retry later");
    else if (st == INF_ECANCELED)
        http_reply_errorf(r, 503, NULL, "shutting_down", "the server is shutting down");
    else if (st == INF_EINVAL)
        http_reply_errorf(r, 400, NULL, NULL, "%s", inf_error_message(&err));
    else
        http_reply_errorf(r, 500, NULL, NULL, "%s", inf_error_message(&err));
    return false;
}

/*
 * submit_all through the response cache: a hit gives c[] tasks that replay the stored answer
 * (no engine work); otherwise the tasks are submitted and, on a miss, recorded. Same answers
 * as submit_all.
 */
static bool submit_cached(struct http_req *r, struct eng *g, struct cache_req *cq,
                          struct srv_task_params *tp, size_t n, struct choice *c)
{
    struct srv_task **t = calloc(n, sizeof(*t));
    if (!t) {
        http_reply_errorf(r, 500, NULL, NULL, "out of memory");
        return false;
    }
    bool ok = true;
    if (cache_lookup(r, cq, n, t)) {
        for (size_t i = 0; i < n; i++) {
            c[i].task = t[i];
            http_track_task(r->srv, c[i].task);
        }
    } else {
        /* an answer that will be stored is computed as one that does not depend on the load */
        for (size_t i = 0; cq->state == CACHE_MISS && i < n; i++)
            tp[i].deterministic = true;
        ok = submit_all(r, g, tp, n, c);
    }
    if (ok && cq->state == CACHE_MISS) {
        for (size_t i = 0; i < n; i++)
            t[i] = c[i].task;
        cache_record(cq, t, n);
    }
    free(t);
    return ok;
}

static void cancel_all(struct choice *c, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (c[i].task && !c[i].done)
            srv_task_cancel(c[i].task);
}

/* Take one event into a choice (the event is cleared). */
static void absorb(struct choice *c, struct srv_event *ev)
{
    switch (ev->type) {
    case SRV_EV_TEXT:
        buf_add(&c->text, ev->text ? ev->text : "", ev->text_len);
        if (ev->n_tokens > 0) {
            if (!inf__grow(&c->toks, &c->cap_toks, c->n_toks + (size_t)ev->n_tokens,
                           sizeof(*c->toks), 64))
                break;
            memcpy(c->toks + c->n_toks, ev->tokens, (size_t)ev->n_tokens * sizeof(*ev->tokens));
            c->n_toks += (size_t)ev->n_tokens;
        }
        break;
    case SRV_EV_PROMPT_LOGPROBS:
        free(c->ptoks);
        c->ptoks = ev->tokens;
        c->n_ptoks = ev->n_tokens;
        ev->tokens = NULL;
        ev->n_tokens = 0;
        break;
    case SRV_EV_EMBEDDING:
        free(c->emb);
        c->emb = ev->embedding;
        c->n_embd = ev->n_embd;
        ev->embedding = NULL;
        break;
    case SRV_EV_DONE:
        c->done = true;
        c->finish = ev->finish;
        c->usage = ev->usage;
        break;
    case SRV_EV_ERROR:
        c->done = c->failed = true;
        c->http_status = ev->http_status ? ev->http_status : 500;
        snprintf(c->message, sizeof(c->message), "%s", ev->message);
        break;
    }
    srv_event_clear(ev);
}

/* Reply with the first failure among the choices; true when there was one. */
static bool reply_failure(struct http_req *r, struct choice *c, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (c[i].failed) {
            const char *code = c[i].http_status == 400 && strstr(c[i].message, "context")
                                   ? "context_length_exceeded"
                                   : NULL;
            http_reply_errorf(r, c[i].http_status, NULL, code, "%s", c[i].message);
            return true;
        }
        if (c[i].done && c[i].finish == SRV_FINISH_CANCELLED) {
            http_reply_errorf(r, 503, NULL, "shutting_down",
                              "the request was cancelled: the server is shutting down");
            return true;
        }
    }
    return false;
}

/*
 * Wait until every choice is done, checking the client's socket between waits. Returns false
 * after answering: 499 when the client went away (the tasks are cancelled), else the first
 * failure among the choices.
 */
static bool wait_all(struct http_req *r, struct choice *c, size_t n)
{
    double next_check = http_now() + WAIT_SLICE_MS / 1000.0;
    for (size_t i = 0; i < n; i++) {
        while (!c[i].done) {
            struct srv_event ev;
            memset(&ev, 0, sizeof(ev));
            if (srv_task_next(c[i].task, &ev, WAIT_SLICE_MS)) {
                absorb(&c[i], &ev);
                if (http_now() < next_check)
                    continue;
            }
            next_check = http_now() + WAIT_SLICE_MS / 1000.0;
            if (http_conn_gone(r)) {
                INF_LOG_INFO("http", "request %s: client disconnected; cancelling", r->req_id);
                cancel_all(c, n);
                http_reply_errorf(r, 499, NULL, NULL, "client closed the connection");
                return false;
            }
        }
    }
    return !reply_failure(r, c, n);
}

/* ---- logprob shapes ------------------------------------------------------------------------- */

static json_t *bytes_json(const char *p, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_integer((unsigned char)p[i]));
    return a;
}

/* Chat shape: {token, logprob, bytes, top_logprobs: [{token, logprob, bytes}]} */
static json_t *chat_lp_entry(const struct inf_tokenizer *tok, const struct srv_token_info *t)
{
    size_t n = 0;
    const char *p = inf_tok_piece(tok, t->id, false, &n);
    json_t *o = json_object();
    json_object_set_new(o, "token", api_json_str(p ? p : "", n));
    json_object_set_new(o, "logprob", lp_json(t->logprob));
    json_object_set_new(o, "bytes", bytes_json(p ? p : "", n));
    json_t *top = json_array();
    for (int32_t k = 0; k < t->n_top && k < SRV_MAX_TOP_LOGPROBS; k++) {
        size_t m = 0;
        const char *q = inf_tok_piece(tok, t->top[k].id, false, &m);
        json_t *e = json_object();
        json_object_set_new(e, "token", api_json_str(q ? q : "", m));
        json_object_set_new(e, "logprob", lp_json(t->top[k].logprob));
        json_object_set_new(e, "bytes", bytes_json(q ? q : "", m));
        json_array_append_new(top, e);
    }
    json_object_set_new(o, "top_logprobs", top);
    return o;
}

static json_t *chat_logprobs(const struct inf_tokenizer *tok, const struct srv_token_info *t,
                             size_t n)
{
    json_t *content = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(content, chat_lp_entry(tok, &t[i]));
    json_t *o = json_object();
    json_object_set_new(o, "content", content);
    json_object_set_new(o, "refusal", json_null());
    return o;
}

/* Legacy completions shape, appended to: tokens, token_logprobs, top_logprobs, text_offset. */
struct legacy_lp {
    json_t *tokens, *lps, *tops, *offs;
    size_t offset;    /* characters */
    bool strip_space; /* the first piece's leading space is not in the text (SPM prefix) */
};

static void legacy_init(struct legacy_lp *l, size_t offset)
{
    l->tokens = json_array();
    l->lps = json_array();
    l->tops = json_array();
    l->offs = json_array();
    l->offset = offset;
    l->strip_space = false;
}

static void legacy_add(struct legacy_lp *l, const struct inf_tokenizer *tok,
                       const struct srv_token_info *t, size_t n, int k)
{
    for (size_t i = 0; i < n; i++) {
        size_t len = 0;
        const char *p = inf_tok_piece(tok, t[i].id, false, &len);
        json_array_append_new(l->tokens, api_json_str(p ? p : "", len));
        json_array_append_new(l->lps, lp_json(t[i].logprob));
        if (isnan(t[i].logprob) || k <= 0) {
            json_array_append_new(l->tops, json_null());
        } else {
            json_t *d = json_object();
            for (int32_t j = 0; j < t[i].n_top && j < k; j++) {
                size_t m = 0;
                const char *q = inf_tok_piece(tok, t[i].top[j].id, false, &m);
                char *key = api_utf8_sanitize(q ? q : "", m, NULL);
                if (key && !json_object_get(d, key))
                    json_object_set_new(d, key, lp_json(t[i].top[j].logprob));
                free(key);
            }
            json_array_append_new(l->tops, d);
        }
        json_array_append_new(l->offs, json_integer((json_int_t)l->offset));
        size_t chars = n_chars(p ? p : "", len);
        if (len && l->strip_space) {
            if (p[0] == ' ')
                chars--;
            l->strip_space = false;
        }
        l->offset += chars;
    }
}

static json_t *legacy_json(struct legacy_lp *l)
{
    json_t *o = json_object();
    json_object_set_new(o, "tokens", l->tokens);
    json_object_set_new(o, "token_logprobs", l->lps);
    json_object_set_new(o, "top_logprobs", l->tops);
    json_object_set_new(o, "text_offset", l->offs);
    memset(l, 0, sizeof(*l));
    return o;
}

static json_t *usage_json(int32_t prompt, int32_t cached, int32_t completion)
{
    json_t *u = json_object();
    json_object_set_new(u, "prompt_tokens", json_integer(prompt));
    json_object_set_new(u, "completion_tokens", json_integer(completion));
    json_object_set_new(u, "total_tokens", json_integer((json_int_t)prompt + completion));
    json_t *d = json_object();
    json_object_set_new(d, "cached_tokens", json_integer(cached));
    json_object_set_new(u, "prompt_tokens_details", d);
    return u;
}

/* ---- SSE streams ---------------------------------------------------------------------------- */

struct stream_choice {
    struct srv_task *task;
    bool done, role_sent, have_first;
    struct srv_event first; /* the event that was read before the response started */
    int index;
    int prompt_index;
    size_t offset; /* characters sent (legacy text_offset) */
    int32_t prompt_tokens, cached, completion;
    struct tool_stream ts; /* chat with tools: calls recognised in the text */
    int n_calls;           /* tool calls sent */
    const char *finish_reason;
    enum srv_finish finish;
    struct srv_usage usage;
    inf_token *ids; /* generated tokens, kept for a sink's end hook */
    size_t n_ids, cap_ids;
};

struct http_stream {
    atomic_int refs; /* the response and the request each hold one */
    atomic_bool aborted;
    struct http_server *srv;
    struct srv_models *models;
    struct srv_engine *e;
    const struct inf_tokenizer *tok;
    int fd;
    bool chat, include_usage, logprobs;
    bool tools;   /* chat with tools: text goes through each choice's tool_stream */
    int legacy_k; /* completions: top-k of legacy logprobs (-1: none) */
    char id[64];
    char model[256];
    int64_t created;
    struct stream_choice *c;
    size_t n;
    int32_t prompt_tokens, cached; /* request totals (prompt counted once per prompt) */
    struct buf out;
    size_t out_off;
    bool finished;
    double next_check;            /* next look at the socket while events keep coming */
    const struct http_sink *sink; /* NULL: OpenAI's SSE */
    void *sink_ctx;
    struct http_req *req; /* until on_end: the audit record's token counts */
    /* "data: " and a text chunk's opening up to `"choices":[`, as json_dumps writes it (made
       once; the fast path of stream_text) */
    char *prefix;
    size_t n_prefix;
};

static void stream_unref(struct http_stream *s)
{
    if (atomic_fetch_sub(&s->refs, 1) != 1)
        return;
    free(s->prefix);
    for (size_t i = 0; i < s->n; i++) {
        tool_stream_release(&s->c[i].ts);
        free(s->c[i].ids);
        if (s->c[i].have_first)
            srv_event_clear(&s->c[i].first);
        if (s->c[i].task) {
            http_untrack_task(s->srv, s->c[i].task);
            srv_task_release(s->c[i].task);
        }
    }
    if (s->e)
        srv_models_unpin(s->models, s->e);
    if (s->sink && s->sink->release)
        s->sink->release(s->sink_ctx);
    free(s->c);
    free(s->out.d);
    free(s);
}

/* The token counts the audit record reports, into the request. */
static void stream_counts(const struct http_stream *s, struct http_req *r)
{
    int32_t prompt = 0, completion = 0;
    int last_prompt = -1;
    for (size_t i = 0; i < s->n; i++) {
        completion += s->c[i].completion;
        if (s->c[i].prompt_index != last_prompt) {
            prompt += s->c[i].prompt_tokens;
            last_prompt = s->c[i].prompt_index;
        }
    }
    r->prompt_tokens = prompt;
    r->completion_tokens = completion;
}

/* r->on_end: the tasks are cancelled (client gone) and the stream loses the request's reference. */
static void stream_end(void *ctx, bool cancel)
{
    struct http_stream *s = ctx;
    if (s->req) { /* the counts the audit record reports (when the end did not write it) */
        stream_counts(s, s->req);
        s->req = NULL;
    }
    if (cancel) {
        atomic_store(&s->aborted, true);
        for (size_t i = 0; i < s->n; i++)
            if (s->c[i].task)
                srv_task_cancel(s->c[i].task);
    }
    stream_unref(s);
}

/* Bytes a sink made (taken): to the detached client at once, else to the response's buffer. */
static void stream_put(struct http_stream *s, char *bytes, size_t n)
{
    if (!bytes)
        return;
    if (s->sink->write) {
        if (!atomic_load(&s->aborted) && !s->sink->write(s->sink_ctx, bytes, n)) {
            atomic_store(&s->aborted, true);
            for (size_t i = 0; i < s->n; i++)
                if (s->c[i].task)
                    srv_task_cancel(s->c[i].task);
        }
    } else {
        buf_add(&s->out, bytes, n);
    }
    free(bytes);
}

static void sse_data(struct http_stream *s, json_t *o)
{
    if (s->sink) {
        size_t n = 0;
        char *b = s->sink->chunk ? s->sink->chunk(s->sink_ctx, o, &n) : (json_decref(o), NULL);
        stream_put(s, b, n);
        return;
    }
    char *j = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!j)
        return;
    buf_add(&s->out, "data: ", 6);
    buf_add(&s->out, j, strlen(j));
    buf_add(&s->out, "\n\n", 2);
    free(j);
}

static json_t *chunk_base(struct http_stream *s)
{
    json_t *o = completion_object(s->id, s->chat ? "chat.completion.chunk" : "text_completion",
                                  s->created, s->model);
    if (s->include_usage)
        json_object_set_new(o, "usage", json_null());
    return o;
}

static void emit_choice(struct http_stream *s, json_t *choice)
{
    json_t *o = chunk_base(s);
    json_t *a = json_array();
    json_array_append_new(a, choice);
    json_object_set_new(o, "choices", a);
    sse_data(s, o);
}

static void emit_error(struct http_stream *s, int status, const char *code, const char *msg)
{
    struct api_error e = {0};
    e.status = status;
    e.type = api_error_type(status);
    e.code = code;
    snprintf(e.message, sizeof(e.message), "%s", msg);
    json_t *o = api_error_json(&e);
    if (s->sink) {
        size_t n = 0;
        char *b = s->sink->error ? s->sink->error(s->sink_ctx, o, &n) : (json_decref(o), NULL);
        stream_put(s, b, n);
        return;
    }
    char *j = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    buf_add(&s->out, "event: error\ndata: ", 19);
    if (j)
        buf_add(&s->out, j, strlen(j));
    buf_add(&s->out, "\n\n", 2);
    free(j);
}

/* What a choice's tool_stream released: content (with this event's logprobs, if any), then each
 * new call as OpenAI streams them: index, id, type and name first, then the arguments. */
static void emit_tool_out(struct http_stream *s, struct stream_choice *c, const struct tool_out *to,
                          const struct srv_event *lp_ev)
{
    if (to->content_len > 0 || lp_ev) {
        json_t *ch = json_object();
        json_object_set_new(ch, "index", json_integer(c->index));
        json_object_set_new(
            ch, "delta", json_pack("{s:o}", "content", api_json_str(to->content, to->content_len)));
        json_object_set_new(ch, "logprobs",
                            lp_ev ? chat_logprobs(s->tok, lp_ev->tokens, (size_t)lp_ev->n_tokens)
                                  : json_null());
        json_object_set_new(ch, "finish_reason", json_null());
        emit_choice(s, ch);
    }
    for (size_t k = 0; k < to->n_calls; k++) {
        const struct tool_call *tc = &to->calls[k];
        for (int part = 0; part < 2; part++) {
            json_t *call;
            if (part == 0) {
                call = tool_call_json(tc, c->n_calls, false);
            } else {
                call = json_pack("{s:i,s:{s:o}}", "index", c->n_calls, "function", "arguments",
                                 api_json_str(tc->arguments, strlen(tc->arguments)));
            }
            json_t *ch = json_object();
            json_object_set_new(ch, "index", json_integer(c->index));
            json_object_set_new(ch, "delta", json_pack("{s:[o]}", "tool_calls", call));
            json_object_set_new(ch, "logprobs", json_null());
            json_object_set_new(ch, "finish_reason", json_null());
            emit_choice(s, ch);
        }
        c->n_calls++;
    }
}

/*
 * A text chunk without logprobs, tools or a sink, written straight into the SSE buffer: the
 * bytes emit_choice would make through jansson (its key order and escapes; the opening is
 * jansson's own output, made once per stream), at a fraction of the cost. A replayed cached
 * answer of 1000 tokens is 1000 such chunks. False when the text is not valid UTF-8 without
 * NUL (the general path sanitises it).
 */
static bool stream_text(struct http_stream *s, struct stream_choice *c, const char *text,
                        size_t len)
{
    if (!api_utf8_valid(text, len) || memchr(text, 0, len))
        return false;
    if (!s->prefix) {
        json_t *o = chunk_base(s);
        json_object_set_new(o, "choices", json_array());
        char *j = json_dumps(o, JSON_COMPACT);
        json_decref(o);
        size_t n = j ? strlen(j) : 0;
        /* ...,"choices":[]} -> ...,"choices":[ */
        if (n < 2 || strcmp(j + n - 2, "]}") != 0 || !(s->prefix = malloc(n + 6))) {
            free(j);
            return false;
        }
        memcpy(s->prefix, "data: ", 6);
        memcpy(s->prefix + 6, j, n - 2);
        s->n_prefix = n + 4;
        free(j);
    }
    static const char tail_chat[] = "\"},\"logprobs\":null,\"finish_reason\":null}]}\n\n";
    static const char tail_text[] = "\",\"logprobs\":null,\"finish_reason\":null}]}\n\n";
    char head[64];
    int nh = snprintf(head, sizeof(head), "{\"index\":%d,%s", c->index,
                      s->chat ? "\"delta\":{\"content\":\"" : "\"text\":\"");
    size_t need = s->n_prefix + (size_t)nh + 6 * len + sizeof(tail_chat);
    if (!inf__grow(&s->out.d, &s->out.cap, s->out.n + need, 1, 256))
        return false;
    char *w = s->out.d + s->out.n;
    memcpy(w, s->prefix, s->n_prefix);
    w += s->n_prefix;
    memcpy(w, head, (size_t)nh);
    w += nh;
    w += api_json_escape(text, len, w);
    const char *tail = s->chat ? tail_chat : tail_text;
    size_t nt = s->chat ? sizeof(tail_chat) - 1 : sizeof(tail_text) - 1;
    memcpy(w, tail, nt);
    w += nt;
    s->out.n = (size_t)(w - s->out.d);
    if (!s->chat)
        c->offset += n_chars(text, len);
    return true;
}

static void stream_event(struct http_stream *s, struct stream_choice *c, struct srv_event *ev)
{
    switch (ev->type) {
    case SRV_EV_TEXT: {
        bool has_lp = s->logprobs && ev->n_tokens > 0;
        if (s->sink && ev->n_tokens > 0 &&
            inf__grow(&c->ids, &c->cap_ids, c->n_ids + (size_t)ev->n_tokens, sizeof(*c->ids), 64))
            for (int32_t k = 0; k < ev->n_tokens; k++)
                c->ids[c->n_ids++] = ev->tokens[k].id;
        if (s->tools) {
            struct tool_out to;
            tool_stream_feed(&c->ts, ev->text ? ev->text : "", ev->text_len, &to);
            emit_tool_out(s, c, &to, has_lp ? ev : NULL);
            tool_out_release(&to);
            break;
        }
        if (ev->text_len == 0 && !has_lp)
            break;
        if (!has_lp && !s->sink && stream_text(s, c, ev->text, ev->text_len))
            break;
        json_t *ch = json_object();
        json_object_set_new(ch, "index", json_integer(c->index));
        if (s->chat) {
            json_t *d = json_object();
            json_object_set_new(d, "content", api_json_str(ev->text ? ev->text : "", ev->text_len));
            json_object_set_new(ch, "delta", d);
            json_object_set_new(ch, "logprobs",
                                has_lp ? chat_logprobs(s->tok, ev->tokens, (size_t)ev->n_tokens)
                                       : json_null());
        } else {
            json_object_set_new(ch, "text", api_json_str(ev->text ? ev->text : "", ev->text_len));
            if (has_lp) {
                struct legacy_lp l;
                legacy_init(&l, c->offset);
                legacy_add(&l, s->tok, ev->tokens, (size_t)ev->n_tokens, s->legacy_k);
                json_object_set_new(ch, "logprobs", legacy_json(&l));
            } else {
                json_object_set_new(ch, "logprobs", json_null());
            }
            c->offset += n_chars(ev->text ? ev->text : "", ev->text_len);
        }
        json_object_set_new(ch, "finish_reason", json_null());
        emit_choice(s, ch);
        break;
    }
    case SRV_EV_DONE: {
        c->done = true;
        c->completion = ev->usage.completion_tokens;
        c->prompt_tokens = ev->usage.prompt_tokens;
        c->cached = ev->usage.cached_tokens;
        if (ev->finish == SRV_FINISH_CANCELLED) {
            emit_error(s, 503, "shutting_down",
                       "the request was cancelled: the server is shutting down");
            s->finished = true;
            break;
        }
        const char *finish = finish_name(ev->finish);
        if (s->tools) {
            struct tool_out to;
            tool_stream_finish(&c->ts, &to);
            emit_tool_out(s, c, &to, NULL);
            tool_out_release(&to);
            if (c->n_calls > 0 && ev->finish == SRV_FINISH_STOP)
                finish = "tool_calls";
        }
        c->finish_reason = finish;
        c->finish = ev->finish;
        c->usage = ev->usage;
        json_t *ch = json_object();
        json_object_set_new(ch, "index", json_integer(c->index));
        if (s->chat)
            json_object_set_new(ch, "delta", json_object());
        else
            json_object_set_new(ch, "text", json_string(""));
        json_object_set_new(ch, "logprobs", json_null());
        json_object_set_new(ch, "finish_reason", json_string(finish));
        emit_choice(s, ch);
        break;
    }
    case SRV_EV_ERROR:
        c->done = true;
        emit_error(s, ev->http_status ? ev->http_status : 500, NULL, ev->message);
        s->finished = true;
        break;
    default:
        break;
    }
    srv_event_clear(ev);
}

static void stream_finish(struct http_stream *s)
{
    if (s->include_usage || s->sink) {
        int32_t completion = 0, prompt = 0, cached = 0;
        int last_prompt = -1;
        for (size_t i = 0; i < s->n; i++) {
            completion += s->c[i].completion;
            if (s->c[i].prompt_index != last_prompt) {
                prompt += s->c[i].prompt_tokens;
                cached += s->c[i].cached;
                last_prompt = s->c[i].prompt_index;
            }
        }
        if (s->sink) {
            struct stream_choice *c0 = &s->c[0];
            struct http_gen_end end = {c0->finish, c0->finish_reason, c0->usage, c0->ids,
                                       c0->n_ids};
            json_t *u = usage_json(prompt, cached, completion);
            size_t n = 0;
            char *b = s->sink->end ? s->sink->end(s->sink_ctx, &end, u, &n) : NULL;
            json_decref(u);
            stream_put(s, b, n);
            s->finished = true;
            return;
        }
        json_t *o = chunk_base(s);
        json_object_set_new(o, "choices", json_array());
        json_object_set_new(o, "usage", usage_json(prompt, cached, completion));
        sse_data(s, o);
    }
    /* the audit record goes before the stream's end (as an unstreamed answer's goes before it
       is sent); with audit.required a record that cannot be written ends it with an error */
    struct srv_audit *audit = s->req ? s->req->params->audit : NULL;
    if (audit) {
        stream_counts(s, s->req);
        if (!srv_audit_request(audit, s->req) && srv_audit_required(audit)) {
            emit_error(s, 503, "audit_unavailable",
                       "the request could not be recorded in the audit log (audit.required)");
            s->finished = true;
            return;
        }
    }
    buf_add(&s->out, "data: [DONE]\n\n", 14);
    s->finished = true;
}

/* Produce more output: wait for events (checking the socket), format them. */
static bool stream_step(struct http_stream *s)
{
    bool any = false;
    if (http_now() >= s->next_check) {
        s->next_check = http_now() + WAIT_SLICE_MS / 1000.0;
        if (http_fd_gone(s->srv, s->fd)) {
            for (size_t i = 0; i < s->n; i++)
                srv_task_cancel(s->c[i].task);
            atomic_store(&s->aborted, true);
            return false;
        }
    }
    for (size_t i = 0; i < s->n && !s->finished; i++) {
        struct stream_choice *c = &s->c[i];
        if (c->have_first) {
            c->have_first = false;
            stream_event(s, c, &c->first);
            any = true;
        }
        struct srv_event ev;
        memset(&ev, 0, sizeof(ev));
        while (!c->done && !s->finished && srv_task_next(c->task, &ev, 0)) {
            stream_event(s, c, &ev);
            memset(&ev, 0, sizeof(ev));
            any = true;
        }
    }
    if (s->finished) {
        for (size_t i = 0; i < s->n; i++)
            if (!s->c[i].done)
                srv_task_cancel(s->c[i].task);
        return true;
    }
    bool all_done = true;
    for (size_t i = 0; i < s->n; i++)
        all_done = all_done && s->c[i].done;
    if (all_done) {
        stream_finish(s);
        return true;
    }
    if (any)
        return true;
    for (size_t i = 0; i < s->n; i++) {
        struct stream_choice *c = &s->c[i];
        if (c->done)
            continue;
        struct srv_event ev;
        memset(&ev, 0, sizeof(ev));
        if (srv_task_next(c->task, &ev, s->n == 1 ? WAIT_SLICE_MS : 10)) {
            stream_event(s, c, &ev);
            return true;
        }
        break;
    }
    if (http_fd_gone(s->srv, s->fd)) {
        for (size_t i = 0; i < s->n; i++)
            srv_task_cancel(s->c[i].task);
        atomic_store(&s->aborted, true);
        return false;
    }
    return true;
}

static ssize_t stream_read(void *cls, uint64_t pos, char *out, size_t max)
{
    struct http_stream *s = cls;
    for (;;) {
        if (s->out_off < s->out.n) {
            size_t n = s->out.n - s->out_off;
            if (n > max)
                n = max;
            memcpy(out, s->out.d + s->out_off, n);
            s->out_off += n;
            if (s->out_off == s->out.n)
                s->out_off = s->out.n = 0;
            return (ssize_t)n;
        }
        if (s->finished)
            return MHD_CONTENT_READER_END_OF_STREAM;
        if (atomic_load(&s->aborted) || !stream_step(s))
            return MHD_CONTENT_READER_END_WITH_ERROR;
    }
}

static void stream_free_cb(void *cls)
{
    stream_unref(cls);
}

/*
 * Turn submitted choices into an SSE response. The first event of every choice is read first
 * (so an error such as a context overflow still gets a proper HTTP status); the choices and the
 * engine pin move into the stream. Returns false when the request already has its answer.
 */
static bool start_stream(struct http_req *r, struct eng *g, struct choice *c, size_t n, bool chat,
                         const struct api_gen *gen, int legacy_k, const char *prefix,
                         char *const *echo_texts, const size_t *echo_lens,
                         const enum tool_family *tools, bool content_null)
{
    struct http_stream *s = calloc(1, sizeof(*s));
    if (!s) {
        http_reply_errorf(r, 500, NULL, NULL, "out of memory");
        return false;
    }
    s->c = calloc(n, sizeof(*s->c));
    if (!s->c) {
        free(s);
        http_reply_errorf(r, 500, NULL, NULL, "out of memory");
        return false;
    }
    s->n = n;
    for (size_t i = 0; i < n; i++) {
        struct stream_choice *sc = &s->c[i];
        sc->index = (int)i;
        sc->prompt_index = c[i].prompt_index;
        tool_stream_init(&sc->ts, tools ? *tools : TOOL_GENERIC);
        while (!sc->have_first) {
            if (srv_task_next(c[i].task, &sc->first, WAIT_SLICE_MS)) {
                sc->have_first = true;
                if (sc->first.type == SRV_EV_PROMPT_LOGPROBS) { /* not streamed */
                    srv_event_clear(&sc->first);
                    sc->have_first = false;
                    continue;
                }
                if (sc->first.type == SRV_EV_ERROR) {
                    c[i].failed = c[i].done = true;
                    c[i].http_status = sc->first.http_status ? sc->first.http_status : 500;
                    snprintf(c[i].message, sizeof(c[i].message), "%s", sc->first.message);
                }
            } else if (http_conn_gone(r)) {
                cancel_all(c, n);
                break;
            }
        }
        if (!sc->have_first || c[i].failed) {
            for (size_t k = 0; k <= i; k++)
                if (s->c[k].have_first)
                    srv_event_clear(&s->c[k].first);
            free(s->c);
            free(s);
            if (!reply_failure(r, c, n))
                http_reply_errorf(r, 499, NULL, NULL, "client closed the connection");
            return false;
        }
    }
    /* everything is in order: the stream takes the tasks and the engine pin */
    for (size_t i = 0; i < n; i++) {
        s->c[i].task = c[i].task;
        c[i].task = NULL;
    }
    s->srv = r->srv;
    s->models = g->models;
    s->e = g->e;
    g->e = NULL;
    s->tok = g->tok;
    s->fd = r->conn ? http_conn_fd(r->conn) : -1;
    s->chat = chat;
    s->include_usage = gen->include_usage;
    s->logprobs = gen->logprobs;
    s->tools = chat && tools;
    s->legacy_k = legacy_k;
    new_id(s->id, prefix);
    snprintf(s->model, sizeof(s->model), "%s", g->id);
    snprintf(r->model, sizeof(r->model), "%s", g->id);
    s->req = r;
    s->created = (int64_t)time(NULL);
    s->sink = r->sink;
    s->sink_ctx = r->sink_ctx;
    if (s->sink && s->sink->retain)
        s->sink->retain(s->sink_ctx);
    atomic_init(&s->refs, 2);
    /* the opening chunks: the role (chat) or the echoed prompt (completions) */
    for (size_t i = 0; i < n; i++) {
        json_t *ch = json_object();
        json_object_set_new(ch, "index", json_integer((json_int_t)i));
        if (chat) {
            json_t *d = json_object();
            json_object_set_new(d, "role", json_string("assistant"));
            /* content null when the output may be tool calls, as OpenAI sends it then */
            json_object_set_new(d, "content", content_null ? json_null() : json_string(""));
            json_object_set_new(d, "refusal", json_null());
            json_object_set_new(ch, "delta", d);
        } else if (echo_texts) { /* completions' echo: each choice's own prompt */
            const char *et = echo_texts[s->c[i].prompt_index];
            size_t el = echo_lens[s->c[i].prompt_index];
            json_object_set_new(ch, "text", api_json_str(et, el));
            s->c[i].offset = n_chars(et, el);
        } else {
            json_decref(ch);
            continue;
        }
        json_object_set_new(ch, "logprobs", json_null());
        json_object_set_new(ch, "finish_reason", json_null());
        emit_choice(s, ch);
        s->c[i].role_sent = true;
    }
    if (s->sink && s->sink->write) { /* detached: the stream runs here, to its end */
        atomic_store(&s->refs, 1);
        http_reply_response(r, 200, NULL);
        while (!s->finished && !atomic_load(&s->aborted)) {
            if (s->sink->gone && s->sink->gone(s->sink_ctx)) {
                atomic_store(&s->aborted, true);
                break;
            }
            if (!stream_step(s))
                break;
        }
        stream_end(s, !s->finished || atomic_load(&s->aborted));
        return true;
    }
    struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 64 * 1024,
                                                                  stream_read, s, stream_free_cb);
    if (!resp) {
        atomic_store(&s->refs, 1);
        stream_unref(s);
        http_reply_errorf(r, 500, NULL, NULL, "out of memory");
        return false;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                            s->sink && s->sink->content_type ? s->sink->content_type
                                                             : "text/event-stream");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    MHD_add_response_header(resp, "X-Accel-Buffering", "no");
    http_reply_response(r, 200, resp);
    r->on_end = stream_end;
    r->on_end_ctx = s;
    return true;
}

/* ---- chat completions ----------------------------------------------------------------------- */

void api_chat(struct http_req *r)
{
    struct api_error e = {0};
    struct api_chat_req q = {0};
    struct eng g = {0};
    struct choice *c = NULL;
    struct inf_tokens toks = {0};
    struct inf_rendered prompt = {0};
    struct srv_task_params *tps = NULL;
    struct srv_grammar *grammar = NULL;
    json_t *msgs = NULL;
    int n = 0;
    struct cache_req cq;
    cache_req_init(&cq, r);

    json_t *body = api_parse_body(r->body, r->len, &e);
    if (!parsed(r, body, body && api_parse_chat(body, &q, &e), &e))
        goto out;
    sink_gen(r, &q.gen);
    if (!eng_acquire(r, q.gen.model, &g))
        goto out;
    if (!check_logit_bias(r, &q.gen, &g))
        goto out;
    /* tools: the template's family decides how they are shown and how calls look */
    const bool tools = q.tools && q.tool_choice != API_TOOLS_NONE;
    const bool calls_only = q.tool_choice == API_TOOLS_REQUIRED || q.tool_choice == API_TOOLS_NAMED;
    const char *tpl = chat_template(&g, tools);
    const enum tool_family family = tool_family_of(tpl ? tpl : inf_template_default_chatml());
    bool pass_tools = false;
    msgs = tool_prompt_messages(family, q.messages, tools ? q.tools : NULL, q.tool_choice,
                                q.tool_name, &pass_tools);
    if (!msgs) {
        http_reply_errorf(r, 500, NULL, NULL, "out of memory");
        goto out;
    }
    if (!render_chat(r, &g, tpl, msgs, pass_tools ? q.tools : NULL, &prompt))
        goto out;
    bool ok = true;
    grammar = calls_only ? compile_tools(r, &g, &q, family, &ok)
                         : compile_format(r, &g, &q.gen.format, &ok);
    if (!ok)
        goto out;
    if (tools)
        INF_LOG_DEBUG("http", "request %s: %zu tools, %s syntax%s", r->req_id,
                      json_array_size(q.tools), tool_family_name(family),
                      grammar ? ", calls forced" : "");
    /* special tokens in the rendered text are the template's markers; text from the messages
       never becomes one (unless server.parse_special_in_content asks for the old behaviour) */
    bool all = r->params->parse_special_in_content;
    if (!tokenize_spans(r, &g, prompt.text, prompt.len, INF_TOK_ADD_SPECIAL | INF_TOK_PARSE_SPECIAL,
                        true, all ? NULL : prompt.untrusted, all ? 0 : prompt.n_untrusted, &toks))
        goto out;
    if (!check_fits(r, &g, toks.n, "messages"))
        goto out;
    n = q.gen.n;
    c = calloc((size_t)n, sizeof(*c));
    tps = calloc((size_t)n, sizeof(*tps));
    if (!c || !tps) {
        http_reply_errorf(r, 500, NULL, NULL, "out of memory");
        goto out;
    }
    for (int i = 0; i < n; i++) {
        task_params_from_gen(&q.gen, &tps[i], i, grammar);
        tps[i].prompt = toks.ids;
        tps[i].n_prompt = (int32_t)toks.n;
    }
    /* the cache key: the prompt after templating, and what shapes the answer besides */
    cache_key_begin(&cq, g.e, g.id, "chat", &q.gen);
    cache_key_tokens(&cq, toks.ids, toks.n);
    cache_key_json(&cq, tools ? q.tools : NULL);
    cache_key_u64(&cq, (uint64_t)q.tool_choice);
    cache_key_bytes(&cq, q.tool_name, strlen(q.tool_name));
    cache_key_u64(&cq, q.parallel_tool_calls);
    if (!submit_cached(r, &g, &cq, tps, (size_t)n, c))
        goto out;
    if (q.gen.stream) {
        start_stream(r, &g, c, (size_t)n, true, &q.gen, -1, "chatcmpl-", NULL, NULL,
                     tools ? &family : NULL, tools);
        goto out;
    }
    if (!wait_all(r, c, (size_t)n))
        goto out;

    char id[64];
    new_id(id, "chatcmpl-");
    json_t *o = completion_object(id, "chat.completion", (int64_t)time(NULL), g.id);
    json_t *choices = json_array();
    int32_t completion = 0;
    for (int i = 0; i < n; i++) {
        json_t *ch = json_object();
        json_t *msg = json_object();
        const char *finish = finish_name(c[i].finish);
        json_object_set_new(ch, "index", json_integer(i));
        json_object_set_new(msg, "role", json_string("assistant"));
        if (tools) {
            /* the calls recognised in the text; content is what came before them (null when
               only calls or only whitespace) */
            struct tool_stream ts;
            struct tool_out a, b;
            tool_stream_init(&ts, family);
            tool_stream_feed(&ts, c[i].text.d ? c[i].text.d : "", c[i].text.n, &a);
            struct buf content = {0};
            buf_add(&content, a.content ? a.content : "", a.content_len);
            tool_stream_finish(&ts, &b);
            buf_add(&content, b.content ? b.content : "", b.content_len);
            json_t *calls = json_array();
            for (size_t k = 0; k < a.n_calls; k++)
                json_array_append_new(calls, tool_call_json(&a.calls[k], -1, true));
            for (size_t k = 0; k < b.n_calls; k++)
                json_array_append_new(calls, tool_call_json(&b.calls[k], -1, true));
            size_t lead = 0, end = content.n;
            while (lead < end && is_space(content.d[lead]))
                lead++;
            while (json_array_size(calls) > 0 && end > lead && is_space(content.d[end - 1]))
                end--;
            bool blank = lead == end;
            json_object_set_new(msg, "content",
                                blank && (json_array_size(calls) > 0 || calls_only)
                                    ? json_null()
                                    : api_json_str(content.d ? content.d : "",
                                                   json_array_size(calls) ? end : content.n));
            if (json_array_size(calls) > 0) {
                json_object_set_new(msg, "tool_calls", calls);
                if (c[i].finish == SRV_FINISH_STOP)
                    finish = "tool_calls";
            } else {
                json_decref(calls);
            }
            free(content.d);
            tool_out_release(&a);
            tool_out_release(&b);
            tool_stream_release(&ts);
        } else {
            json_object_set_new(msg, "content",
                                api_json_str(c[i].text.d ? c[i].text.d : "", c[i].text.n));
        }
        json_object_set_new(msg, "refusal", json_null());
        json_object_set_new(ch, "message", msg);
        json_object_set_new(ch, "logprobs",
                            q.gen.logprobs ? chat_logprobs(g.tok, c[i].toks, c[i].n_toks)
                                           : json_null());
        json_object_set_new(ch, "finish_reason", json_string(finish));
        json_array_append_new(choices, ch);
        completion += c[i].usage.completion_tokens;
        if (i == 0)
            sink_result(r, c[i].finish, finish, &c[i].usage, c[i].toks, c[i].n_toks);
    }
    json_object_set_new(o, "choices", choices);
    json_object_set_new(o, "usage",
                        usage_json(c[0].usage.prompt_tokens, c[0].usage.cached_tokens, completion));
    http_reply_json(r, 200, o);
out:
    cache_end(r, &cq);
    choices_free(r->srv, c, (size_t)n);
    free(tps);
    srv_grammar_unref(grammar);
    json_decref(msgs);
    inf_tokens_release(&toks);
    inf_rendered_release(&prompt);
    eng_release(&g);
    api_chat_release(&q);
}

/* ---- completions ---------------------------------------------------------------------------- */

void api_completions(struct http_req *r)
{
    struct api_error e = {0};
    struct api_completion_req q = {0};
    struct eng g = {0};
    struct choice *c = NULL;
    struct inf_tokens *toks = NULL;
    struct srv_task_params *tps = NULL;
    char **texts = NULL; /* each prompt's text (for echo and text_offset) */
    size_t *text_lens = NULL;
    size_t n = 0, np = 0;
    struct srv_grammar *grammar = NULL;
    struct cache_req cq;
    cache_req_init(&cq, r);

    json_t *body = api_parse_body(r->body, r->len, &e);
    if (!parsed(r, body, body && api_parse_completion(body, &q, &e), &e))
        goto out;
    sink_gen(r, &q.gen);
    np = q.n_prompts;
    if (np * (size_t)q.gen.n > API_MAX_INPUTS) {
        http_reply_errorf(r, 400, "n", NULL, "%zu prompts x n %d is more than %d choices", np,
                          q.gen.n, API_MAX_INPUTS);
        goto out;
    }
    if (!eng_acquire(r, q.gen.model, &g))
        goto out;
    if (!check_logit_bias(r, &q.gen, &g))
        goto out;
    bool ok = true;
    grammar = compile_format(r, &g, &q.gen.format, &ok);
    if (!ok)
        goto out;
    toks = calloc(np, sizeof(*toks));
    texts = calloc(np, sizeof(*texts));
    text_lens = calloc(np, sizeof(*text_lens));
    if (!toks || !texts || !text_lens) {
        http_reply_errorf(r, 500, NULL, NULL, "out of memory");
        goto out;
    }
    for (size_t p = 0; p < np; p++) {
        struct api_prompt *ap = &q.prompts[p];
        if (ap->text) {
            /* raw prompts are the client's own text: special-token markers are honoured (as
               llama.cpp's server does); BOS as the vocabulary asks */
            if (!tokenize(r, &g, ap->text, ap->len, INF_TOK_ADD_SPECIAL | INF_TOK_PARSE_SPECIAL,
                          false, &toks[p]))
                goto out;
            texts[p] = strdup(ap->text);
            text_lens[p] = ap->len;
        } else {
            /* token prompts are used exactly as given (no BOS added) */
            if (!check_ids(r, &g, ap->ids, ap->n_ids, "prompt"))
                goto out;
            for (size_t k = 0; k < ap->n_ids; k++)
                inf_tokens_push(&toks[p], ap->ids[k]);
            struct inf_error err = {0};
            if (inf_tok_decode(g.tok, ap->ids, ap->n_ids, 0, &texts[p], &text_lens[p], &err)) {
                http_reply_errorf(r, 400, "prompt", NULL, "%s", inf_error_message(&err));
                goto out;
            }
        }
        if (!check_fits(r, &g, toks[p].n, "prompt"))
            goto out;
    }
    n = np * (size_t)q.gen.n;
    c = calloc(n, sizeof(*c));
    tps = calloc(n, sizeof(*tps));
    if (!c || !tps) {
        http_reply_errorf(r, 500, NULL, NULL, "out of memory");
        goto out;
    }
    for (size_t p = 0; p < np; p++)
        for (int i = 0; i < q.gen.n; i++) {
            size_t k = p * (size_t)q.gen.n + (size_t)i;
            task_params_from_gen(&q.gen, &tps[k], i, grammar);
            tps[k].prompt = toks[p].ids;
            tps[k].n_prompt = (int32_t)toks[p].n;
            tps[k].prompt_logprobs = q.echo && q.logprobs >= 0;
            c[k].prompt_index = (int)p;
        }
    cache_key_begin(&cq, g.e, g.id, "completions", &q.gen);
    cache_key_u64(&cq, np);
    for (size_t p = 0; p < np; p++) { /* the tokens, and the text an echo gives back */
        cache_key_tokens(&cq, toks[p].ids, toks[p].n);
        cache_key_bytes(&cq, texts[p] ? texts[p] : "", text_lens[p]);
    }
    cache_key_u64(&cq, q.echo);
    cache_key_u64(&cq, (uint64_t)(int64_t)q.logprobs);
    if (!submit_cached(r, &g, &cq, tps, n, c))
        goto out;
    if (q.gen.stream) {
        start_stream(r, &g, c, n, false, &q.gen, q.logprobs, "cmpl-", q.echo ? texts : NULL,
                     text_lens, NULL, false);
        goto out;
    }
    if (!wait_all(r, c, n))
        goto out;

    char id[64];
    new_id(id, "cmpl-");
    json_t *o = completion_object(id, "text_completion", (int64_t)time(NULL), g.id);
    json_t *choices = json_array();
    int32_t prompt_tokens = 0, cached = 0, completion = 0;
    for (size_t k = 0; k < n; k++) {
        size_t p = (size_t)c[k].prompt_index;
        json_t *ch = json_object();
        struct buf text = {0};
        if (q.echo)
            buf_add(&text, texts[p], text_lens[p]);
        buf_add(&text, c[k].text.d ? c[k].text.d : "", c[k].text.n);
        json_object_set_new(ch, "text", api_json_str(text.d ? text.d : "", text.n));
        free(text.d);
        json_object_set_new(ch, "index", json_integer((json_int_t)k));
        if (q.logprobs >= 0) {
            struct legacy_lp l;
            legacy_init(&l, q.echo ? 0 : n_chars(texts[p], text_lens[p]));
            if (q.echo) {
                l.strip_space = q.prompts[p].text && inf_tok_info(g.tok)->add_space_prefix;
                if (c[k].ptoks) {
                    legacy_add(&l, g.tok, c[k].ptoks, (size_t)c[k].n_ptoks, q.logprobs);
                } else { /* no prompt logprobs came: list the tokens without values */
                    for (size_t t = 0; t < toks[p].n; t++) {
                        struct srv_token_info ti = {.id = toks[p].ids[t], .logprob = NAN};
                        legacy_add(&l, g.tok, &ti, 1, 0);
                    }
                }
                l.offset = n_chars(texts[p], text_lens[p]);
            }
            legacy_add(&l, g.tok, c[k].toks, c[k].n_toks, q.logprobs);
            json_object_set_new(ch, "logprobs", legacy_json(&l));
        } else {
            json_object_set_new(ch, "logprobs", json_null());
        }
        json_object_set_new(ch, "finish_reason", json_string(finish_name(c[k].finish)));
        json_array_append_new(choices, ch);
        if (k == 0)
            sink_result(r, c[k].finish, finish_name(c[k].finish), &c[k].usage, c[k].toks,
                        c[k].n_toks);
        completion += c[k].usage.completion_tokens;
        if (k % (size_t)q.gen.n == 0) {
            prompt_tokens += c[k].usage.prompt_tokens;
            cached += c[k].usage.cached_tokens;
        }
    }
    json_object_set_new(o, "choices", choices);
    json_object_set_new(o, "usage", usage_json(prompt_tokens, cached, completion));
    http_reply_json(r, 200, o);
out:
    cache_end(r, &cq);
    choices_free(r->srv, c, n);
    free(tps);
    for (size_t p = 0; p < np; p++) {
        if (toks)
            inf_tokens_release(&toks[p]);
        if (texts)
            free(texts[p]);
    }
    free(toks);
    free(texts);
    free(text_lens);
    srv_grammar_unref(grammar);
    eng_release(&g);
    api_completion_release(&q);
}

/* ---- embeddings ----------------------------------------------------------------------------- */

void api_embeddings(struct http_req *r)
{
    struct api_error e = {0};
    struct api_embedding_req q = {0};
    struct eng g = {0};
    struct choice *c = NULL;
    struct inf_tokens *toks = NULL;
    struct srv_task_params *tps = NULL;
    size_t n = 0;

    json_t *body = api_parse_body(r->body, r->len, &e);
    if (!parsed(r, body, body && api_parse_embedding(body, &q, &e), &e))
        goto out;
    if (!eng_acquire(r, q.model, &g))
        goto out;
    if (inf_model_pooling(g.model) == INF_POOL_RANK) {
        http_reply_errorf(r, 400, "model", NULL,
                          "the model '%s' is a reranker (pooling type rank): use /v1/rerank", g.id);
        goto out;
    }
    if (q.dimensions && q.dimensions != g.n_embd) {
        http_reply_errorf(r, 400, "dimensions", NULL,
                          "this model's embeddings have %d dimensions; 'dimensions' %lld cannot "
                          "be produced (no reduction is supported)",
                          g.n_embd, (long long)q.dimensions);
        goto out;
    }
    n = q.n_inputs;
    c = calloc(n, sizeof(*c));
    toks = calloc(n, sizeof(*toks));
    tps = calloc(n, sizeof(*tps));
    if (!c || !toks || !tps) {
        http_reply_errorf(r, 500, NULL, NULL, "out of memory");
        goto out;
    }
    int32_t prompt_tokens = 0;
    for (size_t i = 0; i < n; i++) {
        struct api_prompt *ap = &q.inputs[i];
        if (ap->text) {
            if (!tokenize(r, &g, ap->text, ap->len, INF_TOK_ADD_SPECIAL, false, &toks[i]))
                goto out;
        } else {
            if (!check_ids(r, &g, ap->ids, ap->n_ids, "input"))
                goto out;
            for (size_t k = 0; k < ap->n_ids; k++)
                inf_tokens_push(&toks[i], ap->ids[k]);
        }
        if (!check_fits(r, &g, toks[i].n, "input"))
            goto out;
        struct srv_task_params *tp = &tps[i];
        tp->kind = SRV_TASK_EMBEDDING;
        tp->prompt = toks[i].ids;
        tp->n_prompt = (int32_t)toks[i].n;
        tp->max_tokens = 0;
        tp->sampling = inf_sampler_default_params();
        tp->pooling = INF_POOL_NONE;
        prompt_tokens += (int32_t)toks[i].n;
    }
    if (!submit_all(r, &g, tps, n, c))
        goto out;
    if (!wait_all(r, c, n))
        goto out;
    json_t *data = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *d = json_object();
        json_object_set_new(d, "object", json_string("embedding"));
        json_object_set_new(d, "index", json_integer((json_int_t)i));
        if (q.encoding == API_ENC_BASE64) {
            /* little-endian float32 bytes, as OpenAI sends them */
            unsigned char *bytes = malloc((size_t)c[i].n_embd * 4 + 1);
            for (int32_t k = 0; bytes && k < c[i].n_embd; k++) {
                uint32_t u;
                memcpy(&u, &c[i].emb[k], 4);
                for (int b = 0; b < 4; b++)
                    bytes[k * 4 + b] = (unsigned char)(u >> (8 * b));
            }
            char *b64 = bytes ? api_base64(bytes, (size_t)c[i].n_embd * 4) : NULL;
            json_object_set_new(d, "embedding", json_string(b64 ? b64 : ""));
            free(b64);
            free(bytes);
        } else {
            json_t *v = json_array();
            for (int32_t k = 0; k < c[i].n_embd; k++)
                json_array_append_new(v, json_real(isfinite(c[i].emb[k]) ? c[i].emb[k] : 0.0));
            json_object_set_new(d, "embedding", v);
        }
        json_array_append_new(data, d);
    }
    json_t *o = json_object();
    json_object_set_new(o, "object", json_string("list"));
    json_object_set_new(o, "data", data);
    json_object_set_new(o, "model", json_string(g.id));
    json_t *u = json_object();
    json_object_set_new(u, "prompt_tokens", json_integer(prompt_tokens));
    json_object_set_new(u, "total_tokens", json_integer(prompt_tokens));
    json_object_set_new(o, "usage", u);
    http_reply_json(r, 200, o);
out:
    choices_free(r->srv, c, n);
    for (size_t i = 0; toks && i < n; i++)
        inf_tokens_release(&toks[i]);
    free(toks);
    free(tps);
    eng_release(&g);
    api_embedding_release(&q);
}

/* ---- rerank --------------------------------------------------------------------------------- */

struct ranked {
    size_t index;
    float score;
};

static int ranked_cmp(const void *a, const void *b)
{
    const struct ranked *x = a, *y = b;
    return x->score < y->score   ? 1
           : x->score > y->score ? -1
                                 : (x->index > y->index) - (x->index < y->index);
}

/*
 * /v1/rerank on a reranker (an encoder whose pooling_type is rank): each document is scored as
 * llama-server does it, on [CLS] query [SEP] document (the vocabulary's add_bos / add_eos /
 * add_sep; EOS falling back to SEP), the classification head's first output being the relevance
 * score; the results are sorted by score, best first, cut to top_n.
 */
void api_rerank(struct http_req *r)
{
    struct api_error e = {0};
    struct api_rerank_req q = {0};
    struct eng g = {0};
    struct choice *c = NULL;
    struct inf_tokens *toks = NULL, qt = {0}, dt = {0};
    struct srv_task_params *tps = NULL;
    struct ranked *rk = NULL;
    size_t n = 0;

    json_t *body = api_parse_body(r->body, r->len, &e);
    if (!parsed(r, body, body && api_parse_rerank(body, &q, &e), &e))
        goto out;
    if (!eng_acquire(r, q.model, &g))
        goto out;
    if (inf_model_pooling(g.model) != INF_POOL_RANK) {
        http_reply_errorf(r, 400, "model", NULL,
                          "the model '%s' is not a reranker (its pooling type is not rank)", g.id);
        goto out;
    }
    n = q.n_docs;
    c = calloc(n, sizeof(*c));
    toks = calloc(n, sizeof(*toks));
    tps = calloc(n, sizeof(*tps));
    rk = calloc(n, sizeof(*rk));
    if (!c || !toks || !tps || !rk) {
        http_reply_errorf(r, 500, NULL, NULL, "out of memory");
        goto out;
    }
    const struct inf_tok_info *ti = inf_tok_info(g.tok);
    const inf_token eos = ti->eos != INF_TOKEN_NULL ? ti->eos : ti->sep;
    if (!tokenize(r, &g, q.query, q.query_len, 0, false, &qt))
        goto out;
    int32_t prompt_tokens = 0;
    for (size_t i = 0; i < n; i++) {
        inf_tokens_release(&dt);
        if (!tokenize(r, &g, q.docs[i].text, q.docs[i].len, 0, false, &dt))
            goto out;
        struct inf_tokens *t = &toks[i];
        bool ok = true;
        if (ti->add_bos && ti->bos != INF_TOKEN_NULL)
            ok = ok && inf_tokens_push(t, ti->bos) == INF_OK;
        for (size_t k = 0; k < qt.n; k++)
            ok = ok && inf_tokens_push(t, qt.ids[k]) == INF_OK;
        if (ti->add_eos && eos != INF_TOKEN_NULL)
            ok = ok && inf_tokens_push(t, eos) == INF_OK;
        if (ti->add_sep && ti->sep != INF_TOKEN_NULL)
            ok = ok && inf_tokens_push(t, ti->sep) == INF_OK;
        for (size_t k = 0; k < dt.n; k++)
            ok = ok && inf_tokens_push(t, dt.ids[k]) == INF_OK;
        if (ti->add_eos && eos != INF_TOKEN_NULL)
            ok = ok && inf_tokens_push(t, eos) == INF_OK;
        if (!ok) {
            http_reply_errorf(r, 500, NULL, NULL, "out of memory");
            goto out;
        }
        if (!check_fits(r, &g, t->n, "documents"))
            goto out;
        tps[i].kind = SRV_TASK_EMBEDDING;
        tps[i].prompt = t->ids;
        tps[i].n_prompt = (int32_t)t->n;
        tps[i].sampling = inf_sampler_default_params();
        tps[i].pooling = INF_POOL_NONE;
        prompt_tokens += (int32_t)t->n;
    }
    if (!submit_all(r, &g, tps, n, c))
        goto out;
    if (!wait_all(r, c, n))
        goto out;
    for (size_t i = 0; i < n; i++) {
        rk[i].index = i;
        rk[i].score = c[i].n_embd > 0 ? c[i].emb[0] : -1e6f;
    }
    qsort(rk, n, sizeof(*rk), ranked_cmp);
    const size_t top = q.top_n > 0 && (size_t)q.top_n < n ? (size_t)q.top_n : n;
    json_t *results = json_array();
    for (size_t i = 0; i < top; i++) {
        json_t *o = json_object();
        json_object_set_new(o, "index", json_integer((json_int_t)rk[i].index));
        json_object_set_new(o, "relevance_score",
                            json_real(isfinite(rk[i].score) ? rk[i].score : 0.0));
        if (q.return_documents)
            json_object_set_new(o, "document",
                                json_stringn(q.docs[rk[i].index].text, q.docs[rk[i].index].len));
        json_array_append_new(results, o);
    }
    json_t *o = json_object();
    json_object_set_new(o, "object", json_string("list"));
    json_object_set_new(o, "model", json_string(g.id));
    json_t *u = json_object();
    json_object_set_new(u, "prompt_tokens", json_integer(prompt_tokens));
    json_object_set_new(u, "total_tokens", json_integer(prompt_tokens));
    json_object_set_new(o, "usage", u);
    json_object_set_new(o, "results", results);
    http_reply_json(r, 200, o);
out:
    choices_free(r->srv, c, n);
    for (size_t i = 0; toks && i < n; i++)
        inf_tokens_release(&toks[i]);
    inf_tokens_release(&qt);
    inf_tokens_release(&dt);
    free(toks);
    free(tps);
    free(rk);
    eng_release(&g);
    api_rerank_release(&q);
}

/* ---- models, health ------------------------------------------------------------------------- */

static json_t *model_json(const struct srv_model_entry *m)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", api_json_str(m->id, strlen(m->id)));
    json_object_set_new(o, "object", json_string("model"));
    json_object_set_new(o, "created", json_integer(m->created));
    json_object_set_new(o, "owned_by", json_string("inferno"));
    return o;
}

/* The servable models (*m to free): false after answering 500. */
static bool list_models(struct http_req *r, struct srv_model_entry **m, size_t *n)
{
    struct inf_error err = {0};
    *m = NULL;
    *n = 0;
    if (!srv_models_list(r->params->models, m, n, &err))
        return true;
    http_reply_errorf(r, 500, NULL, NULL, "%s", inf_error_message(&err));
    return false;
}

void api_models(struct http_req *r)
{
    struct srv_model_entry *m;
    size_t n;
    if (!list_models(r, &m, &n))
        return;
    json_t *data = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(data, model_json(&m[i]));
    free(m);
    json_t *o = json_object();
    json_object_set_new(o, "object", json_string("list"));
    json_object_set_new(o, "data", data);
    http_reply_json(r, 200, o);
}

void api_model(struct http_req *r)
{
    const char *id = r->url + strlen("/v1/models/");
    struct srv_model_entry *m;
    size_t n;
    if (!list_models(r, &m, &n))
        return;
    for (size_t i = 0; i < n; i++)
        if (strcmp(m[i].id, id) == 0) {
            http_reply_json(r, 200, model_json(&m[i]));
            free(m);
            return;
        }
    free(m);
    http_reply_errorf(r, 404, "model", "model_not_found", "the model '%.200s' does not exist", id);
}

struct health_acc {
    json_t *models;
    int idle, busy;
};

static void health_each(struct srv_engine *e, void *user)
{
    struct health_acc *h = user;
    struct srv_engine_stats st;
    srv_engine_stats(e, &st);
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(srv_engine_model_id(e)));
    json_object_set_new(o, "slots_total", json_integer(st.slots_total));
    json_object_set_new(o, "slots_idle", json_integer(st.slots_total - st.slots_busy));
    json_object_set_new(o, "slots_busy", json_integer(st.slots_busy));
    json_object_set_new(o, "slot_context", json_integer(srv_engine_slot_ctx(e)));
    json_object_set_new(o, "context", json_integer(st.kv_cells_total));
    json_object_set_new(o, "queue_depth", json_integer(st.queue_depth));
    json_array_append_new(h->models, o);
    h->idle += st.slots_total - st.slots_busy;
    h->busy += st.slots_busy;
}

/* /health of a server with ONNX models only: they are loaded before it listens, so it is ok;
   no slots, one entry per model. */
static void health_onnx_only(struct http_req *r)
{
    const struct srv_onnx *ox = r->params->onnx;
    size_t n = ox ? srv_onnx_count(ox) : 0;
    json_t *o = json_object(), *models = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *m = json_object();
        json_object_set_new(m, "id", json_string(srv_onnx_name(ox, i)));
        json_object_set_new(m, "format", json_string("onnx"));
        json_array_append_new(models, m);
    }
    json_object_set_new(o, "status", json_string("ok"));
    json_object_set_new(o, "slots_idle", json_integer(0));
    json_object_set_new(o, "slots_busy", json_integer(0));
    json_object_set_new(o, "loaded_models", json_integer((json_int_t)n));
    json_object_set_new(o, "max_loaded_models", json_integer((json_int_t)n));
    json_object_set_new(o, "models", models);
    http_reply_json(r, 200, o);
}

void api_health(struct http_req *r)
{
    if (!r->params->models) {
        health_onnx_only(r);
        return;
    }
    enum srv_health hs = srv_models_health(r->params->models);
    struct health_acc h = {json_array(), 0, 0};
    srv_models_each_loaded(r->params->models, health_each, &h);
    json_t *o = json_object();
    const char *status = hs == SRV_HEALTH_OK        ? "ok"
                         : hs == SRV_HEALTH_LOADING ? "loading"
                                                    : "error";
    json_object_set_new(o, "status", json_string(status));
    json_object_set_new(o, "slots_idle", json_integer(h.idle));
    json_object_set_new(o, "slots_busy", json_integer(h.busy));
    int loaded = 0, max_loaded = 0;
    srv_models_counts(r->params->models, &loaded, &max_loaded);
    json_object_set_new(o, "loaded_models", json_integer(loaded));
    json_object_set_new(o, "max_loaded_models", json_integer(max_loaded));
    json_object_set_new(o, "models", h.models);
    http_reply_json(r, hs == SRV_HEALTH_OK ? 200 : 503, o);
}

/* ---- tokenize, detokenize, apply-template --------------------------------------------------- */

void api_tokenize(struct http_req *r)
{
    struct api_error e = {0};
    struct api_tokenize_req q = {0};
    struct eng g = {0};
    struct inf_tokens toks = {0};
    json_t *body = api_parse_body(r->body, r->len, &e);
    if (!parsed(r, body, body && api_parse_tokenize(body, &q, &e), &e))
        goto out;
    if (!eng_acquire(r, q.model, &g))
        goto out;
    unsigned flags =
        (q.add_special ? INF_TOK_ADD_SPECIAL : 0) | (q.parse_special ? INF_TOK_PARSE_SPECIAL : 0);
    if (!tokenize(r, &g, q.content, q.len, flags, false, &toks))
        goto out;
    json_t *a = json_array();
    for (size_t i = 0; i < toks.n; i++) {
        if (!q.with_pieces) {
            json_array_append_new(a, json_integer(toks.ids[i]));
            continue;
        }
        size_t len = 0;
        const char *p = inf_tok_piece(g.tok, toks.ids[i], true, &len);
        json_t *t = json_object();
        json_object_set_new(t, "id", json_integer(toks.ids[i]));
        /* a piece that is not valid UTF-8 on its own is given as its bytes (as llama.cpp) */
        json_object_set_new(t, "piece",
                            p && api_utf8_valid(p, len) && !memchr(p, 0, len)
                                ? json_stringn(p, len)
                                : bytes_json(p ? p : "", len));
        json_array_append_new(a, t);
    }
    json_t *o = json_object();
    json_object_set_new(o, "tokens", a);
    http_reply_json(r, 200, o);
out:
    inf_tokens_release(&toks);
    eng_release(&g);
    api_tokenize_release(&q);
}

void api_detokenize(struct http_req *r)
{
    struct api_error e = {0};
    struct api_detokenize_req q = {0};
    struct eng g = {0};
    json_t *body = api_parse_body(r->body, r->len, &e);
    if (!parsed(r, body, body && api_parse_detokenize(body, &q, &e), &e))
        goto out;
    if (!eng_acquire(r, q.model, &g))
        goto out;
    if (!check_ids(r, &g, q.ids, q.n_ids, "tokens"))
        goto out;
    char *text = NULL;
    size_t len = 0;
    struct inf_error err = {0};
    if (q.n_ids && inf_tok_decode(g.tok, q.ids, q.n_ids, 0, &text, &len, &err)) {
        http_reply_errorf(r, 400, "tokens", NULL, "%s", inf_error_message(&err));
        goto out;
    }
    json_t *o = json_object();
    json_object_set_new(o, "content", api_json_str(text ? text : "", len));
    free(text);
    http_reply_json(r, 200, o);
out:
    eng_release(&g);
    api_detokenize_release(&q);
}

void api_apply_template(struct http_req *r)
{
    struct api_error e = {0};
    struct api_template_req q = {0};
    struct eng g = {0};
    json_t *body = api_parse_body(r->body, r->len, &e);
    if (!parsed(r, body, body && api_parse_template(body, &q, &e), &e))
        goto out;
    if (!eng_acquire(r, q.model, &g))
        goto out;
    struct inf_rendered prompt;
    if (render_chat(r, &g, chat_template(&g, false), q.messages, NULL, &prompt)) {
        json_t *o = json_object();
        json_object_set_new(o, "prompt", api_json_str(prompt.text, prompt.len));
        inf_rendered_release(&prompt);
        http_reply_json(r, 200, o);
    }
out:
    eng_release(&g);
    api_template_release(&q);
}
