/*
 * chat.c - the Chat screen and its engine thread.
 *
 * The engine thread owns the model, the context and the sampler; the screen owns the
 * conversation (a JSON array of {role, content}, the format `inferno chat` saves). A turn hands
 * the thread a copy of the messages; the thread renders the model's chat template, reuses the
 * KV cache for the prefix the previous turn left, and streams the reply's text back through a
 * buffer under the mutex, which the screen folds in once a frame. Esc raises a flag the thread
 * reads between tokens. Nothing on the screen's side waits for the thread beyond the mutex.
 */
#define NCURSES_WIDECHAR 1

#include <curses.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "inferno/template.h"
#include "inferno/tokenizer.h"
#include "tui/internal.h"

enum eng_state { ENG_EMPTY, ENG_LOADING, ENG_READY, ENG_BUSY, ENG_FAILED };
enum eng_cmd { CMD_NONE, CMD_LOAD, CMD_GEN, CMD_QUIT };

/* Sampling settings the side panel edits. */
enum { SET_SYSTEM, SET_TEMP, SET_TOPK, SET_TOPP, SET_MINP, SET_MAXTOK, SET_SEED, SET_COUNT };
static const char *set_names[SET_COUNT] = {"system prompt", "temperature", "top_k", "top_p",
                                           "min_p",         "max tokens",  "seed"};

struct tui_chat {
    struct tui_app *app; /* NULL when driven without the interface */
    const struct inf_tui_options *opt;
    pthread_t th;
    bool th_started;
    pthread_mutex_t mu;
    pthread_cond_t cv;

    /* ---- under mu: commands to the engine ---- */
    enum eng_cmd cmd;
    char load_path[4096];
    char *gen_json; /* messages for the next turn */
    struct inf_sampler_params gen_sp;
    int gen_max;
    atomic_bool stop;

    /* ---- under mu: what the engine reports ---- */
    enum eng_state state;
    float load_frac;
    char model_name[256];
    char err[512];
    char *pending; /* reply text not yet on the screen */
    size_t pending_len, pending_cap;
    bool turn_done;     /* the reply is finished (or stopped or failed) */
    char turn_end[512]; /* why it ended */
    int n_ctx, n_past;
    int64_t turn_tokens;
    double turn_t0, turn_tps;
    int64_t total_tokens;
    double total_gen_s;

    /* ---- engine thread only ---- */
    struct inf_model *model;
    struct inf_context *ctx;
    inf_token *cached;
    size_t n_cached, cap_cached;

    /* ---- screen only ---- */
    json_t *messages;
    /* each message's wrapped lines, kept while its length and the width stay the same (a
     * reply being streamed is the only message that changes between frames) */
    struct wrapped {
        size_t len;
        int w;
        size_t n;
        struct tui_span *sp;
    } * wrap;
    size_t n_wrap;
    char *input;
    size_t input_len, input_cap, cursor;
    int scroll; /* lines scrolled up from the bottom of the history */
    bool typing, panel, replying;
    int panel_sel;
    char system[2048];
    struct inf_sampler_params sp;
    int max_tokens;
    char path[4096];
};

static void wrap_reset(struct tui_chat *c);

/* ---- engine thread -------------------------------------------------------------------------- */

static bool load_progress(float f, void *user)
{
    struct tui_chat *c = user;
    pthread_mutex_lock(&c->mu);
    c->load_frac = f;
    bool quit = c->cmd == CMD_QUIT;
    pthread_mutex_unlock(&c->mu);
    return !quit;
}

static void eng_fail(struct tui_chat *c, enum eng_state st, const char *what, const char *detail)
{
    pthread_mutex_lock(&c->mu);
    snprintf(c->err, sizeof(c->err), "%s%s", what, detail);
    c->state = st;
    pthread_mutex_unlock(&c->mu);
}

static void eng_load(struct tui_chat *c, const char *path)
{
    struct inf_error err = {0};
    const struct inf_tui_options *o = c->opt;
    inf_context_free(c->ctx);
    inf_model_free(c->model);
    c->ctx = NULL, c->model = NULL, c->n_cached = 0;
    struct inf_model_params mp = o->model_params;
    mp.progress = load_progress;
    mp.progress_user = c;
    if (inf_model_load(path, &mp, &c->model, &err) != INF_OK) {
        eng_fail(c, ENG_FAILED, "cannot load the model: ", inf_error_message(&err));
        return;
    }
    if (inf_model_is_encoder(c->model) || !inf_model_tokenizer(c->model)) {
        eng_fail(c, ENG_FAILED, "this model cannot chat (an encoder, or no tokenizer)", "");
        inf_model_free(c->model);
        c->model = NULL;
        return;
    }
    struct inf_context_params cp = o->context_params;
    cp.n_seq_max = 1;
    cp.embeddings = false;
    if (inf_context_new(c->model, &cp, &c->ctx, &err) != INF_OK) {
        eng_fail(c, ENG_FAILED, "cannot create a context: ", inf_error_message(&err));
        inf_model_free(c->model);
        c->model = NULL;
        return;
    }
    struct inf_model_info mi;
    inf_model_get_info(c->model, &mi);
    pthread_mutex_lock(&c->mu);
    const char *base = strrchr(path, '/');
    snprintf(c->model_name, sizeof(c->model_name), "%s",
             mi.name[0] ? mi.name
             : base     ? base + 1
                        : path);
    c->n_ctx = (int)inf_context_n_ctx(c->ctx);
    c->n_past = 0;
    c->state = ENG_READY;
    c->err[0] = '\0';
    pthread_mutex_unlock(&c->mu);
}

static void eng_emit(struct tui_chat *c, const char *text, size_t len)
{
    if (!len)
        return;
    pthread_mutex_lock(&c->mu);
    if (c->pending_len + len + 1 > c->pending_cap) {
        size_t cap = (c->pending_len + len + 1) * 2;
        char *p = realloc(c->pending, cap);
        if (!p) {
            pthread_mutex_unlock(&c->mu);
            return;
        }
        c->pending = p, c->pending_cap = cap;
    }
    memcpy(c->pending + c->pending_len, text, len);
    c->pending_len += len;
    c->pending[c->pending_len] = '\0';
    pthread_mutex_unlock(&c->mu);
}

static void eng_turn_end(struct tui_chat *c, const char *why, bool error)
{
    pthread_mutex_lock(&c->mu);
    snprintf(c->turn_end, sizeof(c->turn_end), "%.95s", why);
    if (error)
        snprintf(c->err, sizeof(c->err), "%s", why);
    c->turn_done = true;
    c->state = ENG_READY;
    pthread_mutex_unlock(&c->mu);
}

static bool cache_push(struct tui_chat *c, inf_token t)
{
    if (c->n_cached == c->cap_cached) {
        size_t cap = c->cap_cached ? c->cap_cached * 2 : 1024;
        inf_token *p = realloc(c->cached, cap * sizeof(*p));
        if (!p)
            return false;
        c->cached = p, c->cap_cached = cap;
    }
    c->cached[c->n_cached++] = t;
    return true;
}

/* Render the conversation and tokenize it as the server does. */
static bool eng_prompt(struct tui_chat *c, const char *messages, struct inf_tokens *out, char *why,
                       size_t cap)
{
    const struct inf_tokenizer *tok = inf_model_tokenizer(c->model);
    const struct inf_tok_info *ti = inf_tok_info(tok);
    const char *tpl = inf_model_chat_template(c->model, NULL);
    if (!tpl)
        tpl = inf_template_default_chatml();
    struct inf_chat_params cp = {0};
    cp.messages_json = messages;
    cp.add_generation_prompt = true;
    cp.bos_token = ti->bos >= 0 ? inf_tok_text(tok, ti->bos, NULL) : "";
    cp.eos_token = ti->eos >= 0 ? inf_tok_text(tok, ti->eos, NULL) : "";
    struct inf_rendered rd = {0};
    struct inf_error err = {0};
    if (inf_chat_render(tpl, strlen(tpl), &cp, NULL, &rd, &err) != INF_OK) {
        snprintf(why, cap, "chat template: %s", inf_error_message(&err));
        return false;
    }
    inf_status st =
        inf_tok_encode_untrusted(tok, rd.text, rd.len, INF_TOK_ADD_SPECIAL | INF_TOK_PARSE_SPECIAL,
                                 rd.untrusted, rd.n_untrusted, out, &err);
    inf_rendered_release(&rd);
    if (st != INF_OK) {
        snprintf(why, cap, "tokenizing: %s", inf_error_message(&err));
        return false;
    }
    /* a template that writes the BOS text itself must not get a second one */
    if (out->n >= 2 && ti->bos >= 0 && out->ids[0] == ti->bos && out->ids[1] == ti->bos) {
        memmove(out->ids, out->ids + 1, (out->n - 1) * sizeof(inf_token));
        out->n--;
    }
    return true;
}

static void eng_generate(struct tui_chat *c, char *messages, struct inf_sampler_params sp,
                         int max_tokens)
{
    struct inf_tokens prompt = {0};
    struct inf_error err = {0};
    struct inf_sampler *smp = NULL;
    struct inf_tok_stream ts;
    char why[512];
    const struct inf_tokenizer *tok = inf_model_tokenizer(c->model);
    inf_tok_stream_init(&ts, tok, INF_TOK_STREAM_REPLACE_INVALID);
    struct inf_model_info mi;
    inf_model_get_info(c->model, &mi);
    int n_ctx = (int)inf_context_n_ctx(c->ctx);

    if (!eng_prompt(c, messages, &prompt, why, sizeof(why))) {
        eng_turn_end(c, why, true);
        goto out;
    }
    if ((int)prompt.n >= n_ctx) {
        snprintf(why, sizeof(why),
                 "the conversation (%zu tokens) does not fit the context (%d): start a new chat "
                 "(Ctrl-L)",
                 prompt.n, n_ctx);
        eng_turn_end(c, why, true);
        goto out;
    }
    /* keep the cached prefix this prompt shares (at least one token is decoded again) */
    size_t keep = 0;
    while (keep < c->n_cached && keep < prompt.n && c->cached[keep] == prompt.ids[keep])
        keep++;
    if (keep >= prompt.n)
        keep = prompt.n - 1;
    keep = (size_t)inf_kv_seq_resume_max(c->ctx, 0, (int32_t)keep);
    inf_kv_seq_rm(c->ctx, 0, (int32_t)keep, -1);
    c->n_cached = keep;

    if (inf_sampler_new(&sp, mi.n_vocab, &smp, &err) != INF_OK) {
        eng_turn_end(c, inf_error_message(&err), true);
        goto out;
    }
    for (size_t i = 0; i < prompt.n; i++)
        inf_sampler_accept(smp, prompt.ids[i]);

    struct inf_context_params dp = c->opt->context_params;
    size_t n_batch = dp.n_batch ? dp.n_batch : 512;
    int32_t *pos = malloc(n_batch * sizeof(int32_t));
    int32_t *seq = calloc(n_batch, sizeof(int32_t));
    int8_t *lg = calloc(n_batch, 1);
    if (!pos || !seq || !lg) {
        free(pos), free(seq), free(lg);
        eng_turn_end(c, "out of memory", true);
        goto out;
    }
    bool ok = true;
    for (size_t i = keep; i < prompt.n && ok; i += n_batch) {
        size_t n = prompt.n - i < n_batch ? prompt.n - i : n_batch;
        for (size_t j = 0; j < n; j++) {
            pos[j] = (int32_t)(i + j);
            lg[j] = i + j == prompt.n - 1;
        }
        struct inf_batch b = {(int32_t)n, prompt.ids + i, pos, seq, lg};
        if (inf_decode(c->ctx, &b, &err) != INF_OK) {
            ok = false;
            break;
        }
        for (size_t j = 0; j < n; j++)
            cache_push(c, prompt.ids[i + j]);
        if (atomic_load(&c->stop))
            break;
    }
    int32_t last = (int32_t)((prompt.n - 1 - keep) % n_batch);
    if (!ok) {
        snprintf(why, sizeof(why), "decoding the prompt: %s", inf_error_message(&err));
        c->n_cached = 0;
        inf_kv_seq_rm(c->ctx, 0, 0, -1);
    } else if (atomic_load(&c->stop) && c->n_cached < prompt.n) {
        snprintf(why, sizeof(why), "stopped");
    } else {
        pthread_mutex_lock(&c->mu);
        c->n_past = (int)c->n_cached;
        c->turn_t0 = tui_now();
        pthread_mutex_unlock(&c->mu);
        int64_t n_gen = 0;
        snprintf(why, sizeof(why), "done");
        for (;;) {
            const float *logits = inf_get_logits_ith(c->ctx, last);
            inf_token t = inf_sampler_sample(smp, logits);
            if (t == INF_TOKEN_NONE) {
                snprintf(why, sizeof(why), "sampling: %s", inf_sampler_errmsg(smp));
                ok = false;
                break;
            }
            if (inf_tok_is_eog(tok, t))
                break;
            inf_sampler_accept(smp, t);
            const char *txt;
            size_t len;
            if (inf_tok_stream_push(&ts, t, &txt, &len, &err) == INF_OK)
                eng_emit(c, txt, len);
            n_gen++;
            if (atomic_load(&c->stop)) {
                snprintf(why, sizeof(why), "stopped");
                break;
            }
            if (max_tokens > 0 && n_gen >= max_tokens) {
                snprintf(why, sizeof(why), "max tokens (%d)", max_tokens);
                break;
            }
            if ((int)c->n_cached + 1 >= n_ctx) {
                snprintf(why, sizeof(why), "context full (%d)", n_ctx);
                break;
            }
            pos[0] = (int32_t)c->n_cached;
            lg[0] = 1;
            struct inf_batch b = {1, &t, pos, seq, lg};
            if (inf_decode(c->ctx, &b, &err) != INF_OK) {
                snprintf(why, sizeof(why), "decoding: %s", inf_error_message(&err));
                ok = false;
                break;
            }
            cache_push(c, t);
            last = 0;
            double now = tui_now();
            pthread_mutex_lock(&c->mu);
            c->n_past = (int)c->n_cached;
            c->turn_tokens = n_gen;
            c->turn_tps = now > c->turn_t0 ? (double)n_gen / (now - c->turn_t0) : 0;
            pthread_mutex_unlock(&c->mu);
        }
        const char *txt;
        size_t len;
        if (inf_tok_stream_flush(&ts, &txt, &len, &err) == INF_OK)
            eng_emit(c, txt, len);
        double now = tui_now();
        pthread_mutex_lock(&c->mu);
        c->n_past = (int)c->n_cached;
        c->turn_tokens = n_gen;
        if (now > c->turn_t0 && n_gen > 0) {
            c->turn_tps = (double)n_gen / (now - c->turn_t0);
            c->total_tokens += n_gen;
            c->total_gen_s += now - c->turn_t0;
        }
        pthread_mutex_unlock(&c->mu);
    }
    free(pos), free(seq), free(lg);
    eng_turn_end(c, why, !ok);
out:
    inf_sampler_free(smp);
    inf_tok_stream_release(&ts);
    inf_tokens_release(&prompt);
}

static void *engine_main(void *arg)
{
    struct tui_chat *c = arg;
    for (;;) {
        pthread_mutex_lock(&c->mu);
        while (c->cmd == CMD_NONE)
            pthread_cond_wait(&c->cv, &c->mu);
        enum eng_cmd cmd = c->cmd;
        char path[4096];
        char *json = NULL;
        struct inf_sampler_params sp = c->gen_sp;
        int max = c->gen_max;
        if (cmd == CMD_LOAD) {
            memcpy(path, c->load_path, sizeof(path));
            c->state = ENG_LOADING;
            c->load_frac = 0;
        } else if (cmd == CMD_GEN) {
            json = c->gen_json;
            c->gen_json = NULL;
            c->state = ENG_BUSY;
        }
        if (cmd != CMD_QUIT)
            c->cmd = CMD_NONE;
        pthread_mutex_unlock(&c->mu);
        if (cmd == CMD_QUIT)
            break;
        if (cmd == CMD_LOAD)
            eng_load(c, path);
        else if (cmd == CMD_GEN && json)
            eng_generate(c, json, sp, max);
        free(json);
    }
    inf_context_free(c->ctx);
    inf_model_free(c->model);
    return NULL;
}

/* ---- screen --------------------------------------------------------------------------------- */

static struct tui_chat *chat_new(struct tui_app *a, const struct inf_tui_options *o)
{
    struct tui_chat *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->app = a;
    c->opt = o;
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    c->messages = json_array();
    c->sp = o->sampler;
    c->max_tokens = o->max_tokens;
    c->typing = true;
    if (!c->messages || pthread_create(&c->th, NULL, engine_main, c) != 0) {
        json_decref(c->messages);
        free(c);
        return NULL;
    }
    c->th_started = true;
    return c;
}

struct tui_chat *tui_chat_new(struct tui_app *a)
{
    return chat_new(a, tui_options(a));
}

void tui_chat_free(struct tui_chat *c)
{
    if (!c)
        return;
    atomic_store(&c->stop, true);
    pthread_mutex_lock(&c->mu);
    c->cmd = CMD_QUIT;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
    if (c->th_started)
        pthread_join(c->th, NULL);
    free(c->cached);
    free(c->pending);
    free(c->gen_json);
    free(c->input);
    wrap_reset(c);
    json_decref(c->messages);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
    free(c);
}

void tui_chat_open(struct tui_chat *c, const char *path)
{
    atomic_store(&c->stop, true);
    pthread_mutex_lock(&c->mu);
    snprintf(c->load_path, sizeof(c->load_path), "%s", path);
    snprintf(c->path, sizeof(c->path), "%s", path);
    c->cmd = CMD_LOAD;
    c->state = ENG_LOADING;
    c->load_frac = 0;
    c->err[0] = '\0';
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
    json_array_clear(c->messages);
    wrap_reset(c);
    c->scroll = 0;
    c->replying = false;
}

bool tui_chat_generating(const struct tui_chat *c)
{
    return c->replying;
}

bool tui_chat_typing(const struct tui_chat *c)
{
    return c->typing && !c->panel;
}

void tui_chat_stats(const struct tui_chat *c, int64_t *tokens, double *gen_seconds)
{
    struct tui_chat *m = (struct tui_chat *)c;
    pthread_mutex_lock(&m->mu);
    *tokens = c->total_tokens;
    *gen_seconds = c->total_gen_s;
    pthread_mutex_unlock(&m->mu);
}

static json_t *last_assistant(struct tui_chat *c)
{
    size_t n = json_array_size(c->messages);
    if (!n)
        return NULL;
    json_t *m = json_array_get(c->messages, n - 1);
    const char *role = json_string_value(json_object_get(m, "role"));
    return role && strcmp(role, "assistant") == 0 ? m : NULL;
}

static void append_reply(struct tui_chat *c, const char *text, size_t len)
{
    json_t *m = last_assistant(c);
    if (!m)
        return;
    json_t *s = json_object_get(m, "content");
    size_t old = json_string_length(s);
    char *buf = malloc(old + len + 1);
    if (!buf)
        return;
    memcpy(buf, json_string_value(s), old);
    memcpy(buf + old, text, len);
    buf[old + len] = '\0';
    json_object_set_new(m, "content", json_stringn(buf, old + len));
    free(buf);
}

bool tui_chat_poll(struct tui_chat *c)
{
    bool changed = false;
    pthread_mutex_lock(&c->mu);
    if (c->pending_len) {
        append_reply(c, c->pending, c->pending_len);
        c->pending_len = 0;
        changed = true;
    }
    if (c->turn_done) {
        c->turn_done = false;
        c->replying = false;
        changed = true;
        if (c->err[0])
            tui_flash(c->app, true, "%s", c->err);
        json_t *m = last_assistant(c);
        /* a reply that produced nothing (stopped at once, or failed) is not kept */
        if (m && json_string_length(json_object_get(m, "content")) == 0) {
            json_array_remove(c->messages, json_array_size(c->messages) - 1);
            wrap_reset(c);
        }
    }
    pthread_mutex_unlock(&c->mu);
    return changed;
}

static void send_turn(struct tui_chat *c)
{
    pthread_mutex_lock(&c->mu);
    enum eng_state st = c->state;
    pthread_mutex_unlock(&c->mu);
    if (st != ENG_READY) {
        tui_flash(c->app, true, "%s",
                  st == ENG_LOADING ? "the model is still loading"
                  : st == ENG_BUSY  ? "a reply is being generated (Esc stops it)"
                                    : "no model: open one on the Models screen (1)");
        return;
    }
    if (!c->input_len)
        return;
    wrap_reset(c); /* the system message may change, and indexes with it */
    json_t *u = json_pack("{s:s, s:s%}", "role", "user", "content", c->input, c->input_len);
    json_array_append_new(c->messages, u);
    c->input_len = c->cursor = 0;
    /* the system prompt is the first message when set */
    json_t *first = json_array_get(c->messages, 0);
    const char *r0 = json_string_value(json_object_get(first, "role"));
    bool has_sys = r0 && strcmp(r0, "system") == 0;
    if (c->system[0] && !has_sys)
        json_array_insert_new(c->messages, 0,
                              json_pack("{s:s, s:s}", "role", "system", "content", c->system));
    else if (c->system[0])
        json_object_set_new(first, "content", json_string(c->system));
    else if (has_sys)
        json_array_remove(c->messages, 0);
    char *js = json_dumps(c->messages, JSON_COMPACT);
    json_array_append_new(c->messages, json_pack("{s:s, s:s}", "role", "assistant", "content", ""));
    atomic_store(&c->stop, false);
    pthread_mutex_lock(&c->mu);
    free(c->gen_json);
    c->gen_json = js;
    c->gen_sp = c->sp;
    c->gen_max = c->max_tokens;
    c->cmd = CMD_GEN;
    c->state = ENG_BUSY;
    c->turn_tokens = 0;
    c->turn_tps = 0;
    c->err[0] = '\0';
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
    c->replying = true;
    c->scroll = 0;
}

/* ---- input editing ---- */

static void input_insert(struct tui_chat *c, const char *s, size_t n)
{
    if (c->input_len + n + 1 > c->input_cap) {
        size_t cap = (c->input_len + n + 1) * 2 + 64;
        char *p = realloc(c->input, cap);
        if (!p)
            return;
        c->input = p, c->input_cap = cap;
    }
    memmove(c->input + c->cursor + n, c->input + c->cursor, c->input_len - c->cursor);
    memcpy(c->input + c->cursor, s, n);
    c->input_len += n;
    c->cursor += n;
    c->input[c->input_len] = '\0';
}

static size_t prev_char(const char *s, size_t i)
{
    if (i == 0)
        return 0;
    i--;
    while (i > 0 && ((unsigned char)s[i] & 0xC0) == 0x80)
        i--;
    return i;
}

static void input_key(struct tui_chat *c, int key, bool is_char)
{
    if (is_char && key >= 0x20 && key != 127) {
        char u[4];
        size_t k = tui_utf8_encode((uint32_t)key, u);
        input_insert(c, u, k);
        return;
    }
    if ((is_char && key == '\n') || key == TUI_KEY_ALT('\r') || key == TUI_KEY_ALT('\n')) {
        input_insert(c, "\n", 1);
        return;
    }
    if ((is_char && key == '\r') || (!is_char && key == KEY_ENTER)) {
        send_turn(c);
        return;
    }
    if ((is_char && (key == 127 || key == 8)) || (!is_char && key == KEY_BACKSPACE)) {
        if (c->cursor > 0) {
            size_t p = prev_char(c->input, c->cursor);
            memmove(c->input + p, c->input + c->cursor, c->input_len - c->cursor);
            c->input_len -= c->cursor - p;
            c->cursor = p;
            c->input[c->input_len] = '\0';
        }
        return;
    }
    if (!is_char && key == KEY_DC) {
        if (c->cursor < c->input_len) {
            uint32_t cp;
            size_t k = tui_utf8_next(c->input + c->cursor, c->input_len - c->cursor, &cp);
            memmove(c->input + c->cursor, c->input + c->cursor + k, c->input_len - c->cursor - k);
            c->input_len -= k;
            c->input[c->input_len] = '\0';
        }
        return;
    }
    if (!is_char && key == KEY_LEFT) {
        c->cursor = prev_char(c->input, c->cursor);
        return;
    }
    if (!is_char && key == KEY_RIGHT && c->cursor < c->input_len) {
        uint32_t cp;
        c->cursor += tui_utf8_next(c->input + c->cursor, c->input_len - c->cursor, &cp);
        return;
    }
    if ((!is_char && key == KEY_HOME) || (is_char && key == TUI_KEY_CTRL('a'))) {
        c->cursor = 0;
        return;
    }
    if ((!is_char && key == KEY_END) || (is_char && key == TUI_KEY_CTRL('e'))) {
        c->cursor = c->input_len;
        return;
    }
    if (is_char && key == TUI_KEY_CTRL('u')) {
        c->input_len = c->cursor = 0;
        return;
    }
}

static void set_value(struct tui_chat *c, int which, char *buf, size_t cap)
{
    switch (which) {
    case SET_SYSTEM:
        snprintf(buf, cap, "%s", c->system[0] ? c->system : "(none)");
        break;
    case SET_TEMP:
        snprintf(buf, cap, "%g", (double)c->sp.temperature);
        break;
    case SET_TOPK:
        snprintf(buf, cap, "%d", c->sp.top_k);
        break;
    case SET_TOPP:
        snprintf(buf, cap, "%g", (double)c->sp.top_p);
        break;
    case SET_MINP:
        snprintf(buf, cap, "%g", (double)c->sp.min_p);
        break;
    case SET_MAXTOK:
        if (c->max_tokens > 0)
            snprintf(buf, cap, "%d", c->max_tokens);
        else
            snprintf(buf, cap, "until the end");
        break;
    case SET_SEED:
        snprintf(buf, cap, "%llu", (unsigned long long)c->sp.seed);
        break;
    default:
        buf[0] = '\0';
    }
}

static bool parse_num(const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end || errno || !(v >= lo && v <= hi))
        return false;
    *out = v;
    return true;
}

void tui_chat_answer(struct tui_chat *c, const char *tag, const char *text)
{
    if (strcmp(tag, "save") == 0) {
        if (!*text)
            return;
        if (json_dump_file(c->messages, text, JSON_INDENT(2)) != 0)
            tui_flash(c->app, true, "cannot write '%s': %s", text, strerror(errno));
        else
            tui_flash(c->app, false, "saved %zu messages to %s", json_array_size(c->messages),
                      text);
        return;
    }
    if (strcmp(tag, "load") == 0) {
        if (!*text)
            return;
        if (c->replying) {
            tui_flash(c->app, true, "a reply is being generated (Esc stops it)");
            return;
        }
        json_error_t je;
        json_t *m = json_load_file(text, 0, &je);
        if (!json_is_array(m)) {
            tui_flash(c->app, true, "'%s': %s", text, m ? "not a JSON array of messages" : je.text);
            json_decref(m);
            return;
        }
        json_decref(c->messages);
        c->messages = m;
        wrap_reset(c);
        json_t *first = json_array_get(m, 0);
        const char *r0 = json_string_value(json_object_get(first, "role"));
        const char *s0 = json_string_value(json_object_get(first, "content"));
        snprintf(c->system, sizeof(c->system), "%s",
                 r0 && strcmp(r0, "system") == 0 && s0 ? s0 : "");
        c->scroll = 0;
        tui_flash(c->app, false, "loaded %zu messages from %s", json_array_size(m), text);
        return;
    }
    if (strncmp(tag, "set", 3) != 0)
        return;
    int which = atoi(tag + 3);
    double v;
    bool ok = true;
    switch (which) {
    case SET_SYSTEM:
        snprintf(c->system, sizeof(c->system), "%s", text);
        break;
    case SET_TEMP:
        if ((ok = parse_num(text, 0, 100, &v)))
            c->sp.temperature = (float)v;
        break;
    case SET_TOPK:
        if ((ok = parse_num(text, 0, 1e9, &v) && v == (int)v))
            c->sp.top_k = (int)v;
        break;
    case SET_TOPP:
        if ((ok = parse_num(text, 0, 1, &v)))
            c->sp.top_p = (float)v;
        break;
    case SET_MINP:
        if ((ok = parse_num(text, 0, 1, &v)))
            c->sp.min_p = (float)v;
        break;
    case SET_MAXTOK:
        if ((ok = parse_num(text, 0, 1e9, &v) && v == (int)v))
            c->max_tokens = (int)v;
        break;
    case SET_SEED:
        if ((ok = parse_num(text, 0, 1.8e19, &v)))
            c->sp.seed = (uint64_t)v;
        break;
    default:
        break;
    }
    if (!ok)
        tui_flash(c->app, true, "%s: '%s' is not a valid value", set_names[which], text);
}

bool tui_chat_key(struct tui_chat *c, int key, bool is_char)
{
    if (is_char && key == TUI_KEY_ESC) {
        if (c->replying)
            atomic_store(&c->stop, true);
        else if (c->panel)
            c->panel = false;
        else
            c->typing = false;
        return true;
    }
    if (is_char && key == TUI_KEY_CTRL('p')) {
        c->panel = !c->panel;
        return true;
    }
    if (is_char && key == TUI_KEY_CTRL('s')) {
        tui_prompt(c->app, "save", "save the conversation to", "chat.json");
        return true;
    }
    if (is_char && key == TUI_KEY_CTRL('o')) {
        tui_prompt(c->app, "load", "load a conversation from", "chat.json");
        return true;
    }
    if (is_char && key == TUI_KEY_CTRL('l')) {
        if (c->replying) {
            tui_flash(c->app, true, "a reply is being generated (Esc stops it)");
            return true;
        }
        json_array_clear(c->messages);
        wrap_reset(c);
        c->scroll = 0;
        tui_flash(c->app, false, "new conversation");
        return true;
    }
    if (!is_char && (key == KEY_PPAGE || key == KEY_NPAGE)) {
        int page = LINES / 2;
        c->scroll += key == KEY_PPAGE ? page : -page;
        if (c->scroll < 0)
            c->scroll = 0;
        return true;
    }
    if (c->panel) {
        if (!is_char && key == KEY_UP && c->panel_sel > 0)
            c->panel_sel--;
        else if (!is_char && key == KEY_DOWN && c->panel_sel < SET_COUNT - 1)
            c->panel_sel++;
        else if ((is_char && key == '\r') || (!is_char && key == KEY_ENTER)) {
            char tag[16], cur[2048];
            snprintf(tag, sizeof(tag), "set%d", c->panel_sel);
            set_value(c, c->panel_sel, cur, sizeof(cur));
            if (c->panel_sel == SET_SYSTEM)
                snprintf(cur, sizeof(cur), "%s", c->system);
            if (c->panel_sel == SET_MAXTOK && c->max_tokens <= 0)
                snprintf(cur, sizeof(cur), "0");
            tui_prompt(c->app, tag, set_names[c->panel_sel], cur);
        }
        return true;
    }
    if (!c->typing) {
        if ((is_char && (key == 'i' || key == '\r')) || (!is_char && key == KEY_ENTER))
            c->typing = true;
        return true;
    }
    input_key(c, key, is_char);
    return true;
}

void tui_chat_status(struct tui_chat *c, char *buf, size_t cap)
{
    pthread_mutex_lock(&c->mu);
    enum eng_state st = c->state;
    switch (st) {
    case ENG_EMPTY:
        snprintf(buf, cap, "no model: open one on the Models screen (1)");
        break;
    case ENG_LOADING:
        snprintf(buf, cap, "loading %s: %3.0f%%", c->path, c->load_frac * 100.0);
        break;
    case ENG_FAILED:
        snprintf(buf, cap, "%s", c->err);
        break;
    default:
        snprintf(buf, cap, "%s | ctx %d/%d | %.1f tok/s | %lld tokens%s%s", c->model_name,
                 c->n_past, c->n_ctx, c->turn_tps, (long long)c->turn_tokens,
                 st == ENG_BUSY ? " | generating (Esc stops)" : "",
                 st == ENG_READY && c->turn_end[0] ? " | " : "");
        if (st == ENG_READY && c->turn_end[0]) {
            size_t l = strlen(buf);
            snprintf(buf + l, cap - l, "%s", c->turn_end);
        }
    }
    pthread_mutex_unlock(&c->mu);
}

/* Lines of the history at width w: a header line per message, its wrapped text, a gap. */
struct hline {
    int msg;     /* index into messages, -1 for a gap */
    bool header; /* the role line */
    struct tui_span sp;
};

static void wrap_reset(struct tui_chat *c)
{
    for (size_t i = 0; i < c->n_wrap; i++)
        free(c->wrap[i].sp);
    free(c->wrap);
    c->wrap = NULL;
    c->n_wrap = 0;
}

/* Message i's lines at width w, from the cache when it still holds them; NULL on no memory. */
static const struct wrapped *wrapped_msg(struct tui_chat *c, size_t i, int w)
{
    if (i >= c->n_wrap) {
        size_t n = json_array_size(c->messages);
        struct wrapped *p = realloc(c->wrap, n * sizeof(*p));
        if (!p)
            return NULL;
        memset(p + c->n_wrap, 0, (n - c->n_wrap) * sizeof(*p));
        c->wrap = p;
        c->n_wrap = n;
    }
    struct wrapped *e = &c->wrap[i];
    json_t *content = json_object_get(json_array_get(c->messages, i), "content");
    const char *text = json_string_value(content);
    size_t len = text ? json_string_length(content) : 0;
    if (!text)
        text = "";
    if (e->sp && e->len == len && e->w == w)
        return e;
    size_t nl = tui_wrap(text, len, w, NULL, 0);
    struct tui_span *sp = malloc(nl * sizeof(*sp));
    if (!sp)
        return NULL;
    tui_wrap(text, len, w, sp, nl);
    free(e->sp);
    *e = (struct wrapped){len, w, nl, sp};
    return e;
}

static size_t layout(struct tui_chat *c, int w, struct hline **out)
{
    size_t n = 0, cap = 0;
    struct hline *L = NULL;
    size_t nm = json_array_size(c->messages);
    for (size_t i = 0; i < nm; i++) {
        const struct wrapped *e = wrapped_msg(c, i, w);
        if (!e)
            break;
        if (n + e->n + 2 > cap) {
            cap = (n + e->n + 2) * 2;
            struct hline *p = realloc(L, cap * sizeof(*p));
            if (!p)
                break;
            L = p;
        }
        L[n++] = (struct hline){(int)i, true, {0, 0, 0}};
        for (size_t k = 0; k < e->n; k++)
            L[n++] = (struct hline){(int)i, false, e->sp[k]};
        L[n++] = (struct hline){-1, false, {0, 0, 0}};
    }
    *out = L;
    return n;
}

void tui_chat_draw(struct tui_chat *c, int y0, int rows, int cols)
{
    struct tui_app *a = c->app;
    int panel_w = c->panel ? (cols >= 100 ? 36 : 30) : 0;
    int w = cols - panel_w;
    /* the input box grows with its text, up to 6 lines */
    int in_w = w - 2;
    size_t in_lines = tui_wrap(c->input ? c->input : "", c->input_len, in_w, NULL, 0);
    int in_h = (int)in_lines < 6 ? (int)in_lines : 6;
    int hist_h = rows - in_h - 1;

    /* history */
    struct hline *L = NULL;
    size_t n = layout(c, w - 1, &L);
    int max_scroll = (int)n > hist_h ? (int)n - hist_h : 0;
    if (c->scroll > max_scroll)
        c->scroll = max_scroll;
    size_t first = (int)n > hist_h ? n - (size_t)hist_h - (size_t)c->scroll : 0;
    pthread_mutex_lock(&c->mu);
    enum eng_state st = c->state;
    float frac = c->load_frac;
    char err[512];
    snprintf(err, sizeof(err), "%s", c->err);
    pthread_mutex_unlock(&c->mu);
    if (n == 0) {
        const char *hint =
            st == ENG_EMPTY ? "No model yet: choose one on the Models screen (1) and press Enter."
            : st == ENG_LOADING ? "Loading the model..."
            : st == ENG_FAILED  ? err
                                : "Type a message and press Enter. ? shows the keys.";
        attron(tui_attr(a, st == ENG_FAILED ? ST_ERR : ST_DIM));
        size_t hl = tui_wrap(hint, strlen(hint), w - 2, NULL, 0);
        struct tui_span sp[8];
        tui_wrap(hint, strlen(hint), w - 2, sp, 8);
        for (size_t k = 0; k < hl && k < 8; k++)
            tui_put(y0 + 1 + (int)k, 1, hint + sp[k].off, sp[k].len, w - 2);
        attroff(tui_attr(a, st == ENG_FAILED ? ST_ERR : ST_DIM));
        if (st == ENG_LOADING) {
            int bw = w - 10 > 50 ? 50 : w - 10;
            int fill = (int)(frac * (float)bw);
            mvaddch(y0 + 3, 1, '[');
            for (int i = 0; i < bw; i++)
                mvaddch(y0 + 3, 2 + i, i < fill ? '#' : '.');
            tui_putf(y0 + 3, 2 + bw, 8, "] %3.0f%%", frac * 100.0);
        }
    }
    for (int r = 0; r < hist_h && first + (size_t)r < n; r++) {
        struct hline *h = &L[first + (size_t)r];
        if (h->msg < 0)
            continue;
        json_t *m = json_array_get(c->messages, (size_t)h->msg);
        const char *role = json_string_value(json_object_get(m, "role"));
        if (!role)
            role = "?";
        if (h->header) {
            bool user = strcmp(role, "user") == 0;
            attron(tui_attr(a, user                          ? ST_ACCENT
                               : strcmp(role, "system") == 0 ? ST_DIM
                                                             : ST_OK) |
                   A_BOLD);
            bool live = c->replying && (size_t)h->msg + 1 == json_array_size(c->messages);
            static const char spin[] = "|/-\\";
            int f = (int)(tui_now() * 8.0) & 3;
            if (live)
                tui_putf(y0 + r, 0, w, "%s %c", role, spin[f]);
            else
                tui_put(y0 + r, 0, role, strlen(role), w);
            attroff(tui_attr(a, user                          ? ST_ACCENT
                                : strcmp(role, "system") == 0 ? ST_DIM
                                                              : ST_OK) |
                    A_BOLD);
        } else {
            const char *text = json_string_value(json_object_get(m, "content"));
            tui_put(y0 + r, 1, text + h->sp.off, h->sp.len, w - 1);
        }
    }
    free(L);
    if (c->scroll > 0) {
        attron(tui_attr(a, ST_WARN));
        tui_putf(y0, w - 18, 18, "[scrolled %d up]", c->scroll);
        attroff(tui_attr(a, ST_WARN));
    }

    /* input */
    int iy = y0 + hist_h;
    tui_rule(a, iy, 0, w,
             c->typing ? "message (Enter sends, Alt-Enter new line)"
                       : "Esc: input left (i or Enter to type)");
    struct tui_span sp[64];
    size_t nl = tui_wrap(c->input ? c->input : "", c->input_len, in_w, sp, 64);
    if (nl > 64)
        nl = 64;
    /* the cursor's line, kept in view */
    size_t cur_line = 0;
    for (size_t k = 0; k < nl; k++)
        if (c->cursor >= sp[k].off)
            cur_line = k;
    size_t top = cur_line + 1 > (size_t)in_h ? cur_line + 1 - (size_t)in_h : 0;
    int cy = iy + 1, cx = 2;
    for (int r = 0; r < in_h && top + (size_t)r < nl; r++) {
        struct tui_span *s = &sp[top + (size_t)r];
        mvaddstr(iy + 1 + r, 0, r == 0 && top == 0 ? ">" : " ");
        tui_put(iy + 1 + r, 2, c->input ? c->input + s->off : "", s->len, in_w);
        if (top + (size_t)r == cur_line) {
            size_t upto = c->cursor - s->off;
            if (upto > s->len)
                upto = s->len;
            cy = iy + 1 + r;
            cx = 2 + (c->input ? tui_text_width(c->input + s->off, upto) : 0);
        }
    }
    if (nl == 0 || !c->input_len)
        mvaddstr(iy + 1, 0, ">");

    /* settings panel */
    if (c->panel) {
        int px = w;
        for (int r = 0; r < rows; r++)
            mvaddch(y0 + r, px, ACS_VLINE);
        attron(tui_attr(a, ST_ACCENT));
        tui_puts(y0, px + 2, "Settings (Ctrl-P)", panel_w - 3);
        attroff(tui_attr(a, ST_ACCENT));
        for (int i = 0; i < SET_COUNT; i++) {
            char v[2048];
            set_value(c, i, v, sizeof(v));
            int y = y0 + 2 + i * 2;
            if (y + 1 >= y0 + rows)
                break;
            int stl = i == c->panel_sel ? ST_SELECTED : ST_NORMAL;
            attron(tui_attr(a, stl));
            tui_put(y, px + 2, set_names[i], strlen(set_names[i]), panel_w - 3);
            attroff(tui_attr(a, stl));
            tui_put(y + 1, px + 4, v, strlen(v), panel_w - 5);
        }
        int y = y0 + 2 + SET_COUNT * 2;
        if (y < y0 + rows) {
            attron(tui_attr(a, ST_DIM));
            tui_puts(y, px + 2, "Enter edits, Esc closes", panel_w - 3);
            attroff(tui_attr(a, ST_DIM));
        }
    }
    move(cy, cx);
}

/* ---- without the interface (for measuring its cost) ---------------------------------------- */

int inf_tui_chat_headless(const struct inf_tui_options *opt, const char *prompt)
{
    struct tui_chat *c = chat_new(NULL, opt);
    if (!c) {
        fprintf(stderr, "inferno tui: out of memory\n");
        return 1;
    }
    tui_chat_open(c, opt->model);
    enum eng_state st;
    for (;;) {
        pthread_mutex_lock(&c->mu);
        st = c->state;
        pthread_mutex_unlock(&c->mu);
        if (st != ENG_LOADING)
            break;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    int rc = 0;
    if (st != ENG_READY) {
        fprintf(stderr, "inferno tui: %s\n", c->err);
        tui_chat_free(c);
        return 1;
    }
    input_insert(c, prompt, strlen(prompt));
    send_turn(c);
    while (c->replying) {
        pthread_mutex_lock(&c->mu);
        if (c->pending_len) {
            fwrite(c->pending, 1, c->pending_len, stdout);
            fflush(stdout);
            c->pending_len = 0;
        }
        bool done = c->turn_done;
        pthread_mutex_unlock(&c->mu);
        if (done) {
            tui_chat_poll(c);
            break;
        }
        struct timespec ts = {0, 33 * 1000 * 1000}; /* the interface's frame */
        nanosleep(&ts, NULL);
    }
    fputc('\n', stdout);
    pthread_mutex_lock(&c->mu);
    if (c->err[0]) {
        fprintf(stderr, "inferno tui: %s\n", c->err);
        rc = 1;
    }
    fprintf(stderr, "tokens %lld, tok/s %.3f\n", (long long)c->total_tokens,
            c->total_gen_s > 0 ? (double)c->total_tokens / c->total_gen_s : 0.0);
    pthread_mutex_unlock(&c->mu);
    tui_chat_free(c);
    return rc;
}
