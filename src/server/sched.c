/*
 * sched.c - the engine thread: slots, continuous batching, prefix reuse, stop strings,
 * logprobs, embeddings, admission and cancellation (see sched.h for the contract).
 *
 * Locking: e->mu guards the wait queue, the slot table's task pointers, the stop flags and the
 * statistics; the engine thread drops it around inf_decode and sampling. Each task has its own
 * mutex for its event queue. The engine thread is the only one that touches the context, the
 * slots' token caches, samplers and detokenizers.
 *
 * Lifetimes: an engine is reference counted (the owner plus every task not yet released); a
 * task is reference counted (the caller plus the engine while queued or running).
 */
#include "server/sched.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"
#include "inferno/cpu.h"
#include "inferno/gguf.h"
#include "inferno/grammar.h"
#include "inferno/log.h"
#include "inferno/tokenizer.h"

const double srv_hist_bounds[SRV_HIST_BUCKETS] = {0.005, 0.01, 0.025, 0.05, 0.1,  0.25, 0.5,
                                                  1.0,   2.5,  5.0,   10.0, 20.0, 30.0, 60.0};

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void hist_add(struct srv_hist *h, double seconds)
{
    int b = 0;
    while (b < SRV_HIST_BUCKETS && seconds > srv_hist_bounds[b])
        b++;
    h->count[b]++;
    h->sum += seconds;
    h->n++;
}

/* ---- grammars -------------------------------------------------------------------------- */

struct srv_grammar {
    atomic_int refs;
    struct inf_grammar *g;
    /* matchers of finished tasks, kept (reset) for the next ones: their memoized transitions
       and masks stay, so a grammar used again costs little (pooled only while in an engine's
       cache: max_idle 0 otherwise) */
    pthread_mutex_t mu;
    struct inf_matcher **idle;
    int n_idle, max_idle;
    char *key; /* the engine cache's key (NULL: not cached) */
    size_t key_len;
};

struct srv_grammar *srv_grammar_new(struct inf_grammar *g)
{
    struct srv_grammar *sg = calloc(1, sizeof(*sg));
    if (!sg) {
        inf_grammar_free(g);
        return NULL;
    }
    atomic_init(&sg->refs, 1);
    sg->g = g;
    pthread_mutex_init(&sg->mu, NULL);
    return sg;
}

/* A matcher at the start of sg: an idle one reset, else a new one. */
static inf_status grammar_take(struct srv_grammar *sg, const struct inf_grammar_vocab *v,
                               struct inf_matcher **out, struct inf_error *err)
{
    pthread_mutex_lock(&sg->mu);
    struct inf_matcher *m = sg->n_idle > 0 ? sg->idle[--sg->n_idle] : NULL;
    pthread_mutex_unlock(&sg->mu);
    if (m) {
        inf_matcher_reset(m);
        *out = m;
        return INF_OK;
    }
    return inf_matcher_new(sg->g, v, out, err);
}

/* Give a task's matcher back (kept when the pool has room, else freed). */
static void grammar_give(struct srv_grammar *sg, struct inf_matcher *m)
{
    if (!m)
        return;
    pthread_mutex_lock(&sg->mu);
    if (sg->n_idle < sg->max_idle) {
        sg->idle[sg->n_idle++] = m;
        m = NULL;
    }
    pthread_mutex_unlock(&sg->mu);
    inf_matcher_free(m);
}

static struct srv_grammar *grammar_ref(struct srv_grammar *sg)
{
    atomic_fetch_add(&sg->refs, 1);
    return sg;
}

void srv_grammar_unref(struct srv_grammar *sg)
{
    if (!sg || atomic_fetch_sub(&sg->refs, 1) != 1)
        return;
    for (int i = 0; i < sg->n_idle; i++)
        inf_matcher_free(sg->idle[i]);
    free(sg->idle);
    free(sg->key);
    pthread_mutex_destroy(&sg->mu);
    inf_grammar_free(sg->g);
    free(sg);
}

/* ---- tasks ----------------------------------------------------------------------------- */

struct ev_node {
    struct srv_event ev;
    struct ev_node *next;
};

struct srv_task {
    struct srv_engine *e;
    int refs; /* guarded by mu */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct ev_node *head, *tail;
    bool finished; /* DONE or ERROR queued */
    atomic_bool cancel;

    /* parameters (owned copies) */
    struct srv_task_params p;
    inf_token *prompt;
    struct inf_logit_bias *bias;
    char *stop[SRV_MAX_STOP];
    size_t stop_len[SRV_MAX_STOP];
    struct inf_matcher *matcher; /* made by submit when p.grammar is set; engine thread after */

    double t_submit, t_first, t_last;
    uint64_t step_submit; /* e->st.steps_total at submit */
    int32_t ttft_steps;
    uint64_t group;          /* the request it belongs to (srv_task_submit_n) */
    struct srv_task *qnext;  /* wait queue link */
    struct srv_task_tap tap; /* srv_task_set_tap: sees each event srv_task_next returns */
};

static void task_unref(struct srv_task *t);

static void task_push(struct srv_task *t, struct srv_event *ev)
{
    struct ev_node *n = calloc(1, sizeof(*n));
    if (!n) {
        srv_event_clear(ev);
        return; /* out of memory: the event is lost; the reader still gets DONE below */
    }
    n->ev = *ev;
    pthread_mutex_lock(&t->mu);
    if (t->tail)
        t->tail->next = n;
    else
        t->head = n;
    t->tail = n;
    if (ev->type == SRV_EV_DONE || ev->type == SRV_EV_ERROR)
        t->finished = true;
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
}

static void task_error(struct srv_task *t, int http_status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void task_error(struct srv_task *t, int http_status, const char *fmt, ...)
{
    struct srv_event ev = {.type = SRV_EV_ERROR, .http_status = http_status};
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ev.message, sizeof(ev.message), fmt, ap);
    va_end(ap);
    task_push(t, &ev);
}

void srv_event_clear(struct srv_event *ev)
{
    if (!ev)
        return;
    free(ev->text);
    free(ev->tokens);
    free(ev->embedding);
    memset(ev, 0, sizeof(*ev));
}

bool srv_task_next(struct srv_task *t, struct srv_event *ev, int timeout_ms)
{
    struct timespec dl;
    if (timeout_ms >= 0) {
        clock_gettime(CLOCK_REALTIME, &dl);
        dl.tv_sec += timeout_ms / 1000;
        dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
        if (dl.tv_nsec >= 1000000000L) {
            dl.tv_sec++;
            dl.tv_nsec -= 1000000000L;
        }
    }
    pthread_mutex_lock(&t->mu);
    while (!t->head) {
        if (timeout_ms < 0) {
            pthread_cond_wait(&t->cv, &t->mu);
        } else if (pthread_cond_timedwait(&t->cv, &t->mu, &dl) == ETIMEDOUT) {
            if (t->head)
                break;
            pthread_mutex_unlock(&t->mu);
            return false;
        }
    }
    struct ev_node *n = t->head;
    t->head = n->next;
    if (!t->head)
        t->tail = NULL;
    pthread_mutex_unlock(&t->mu);
    *ev = n->ev;
    free(n);
    if (t->tap.on_event)
        t->tap.on_event(t->tap.ctx, t->tap.index, ev);
    return true;
}

void srv_task_set_tap(struct srv_task *t, const struct srv_task_tap *tap)
{
    t->tap = *tap;
}

inf_status srv_task_replay(struct srv_event *evs, size_t n, struct srv_task **out,
                           struct inf_error *err)
{
    *out = NULL;
    struct srv_task *t = calloc(1, sizeof(*t));
    if (!t)
        return inf_error_set(err, INF_ENOMEM, "out of memory");
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->cv, NULL);
    t->refs = 1;
    atomic_init(&t->cancel, false);
    for (size_t i = 0; i < n; i++) {
        task_push(t, &evs[i]);
        memset(&evs[i], 0, sizeof(evs[i]));
    }
    t->finished = true;
    *out = t;
    return INF_OK;
}

/* ---- engine ---------------------------------------------------------------------------- */

struct slot {
    int id;
    struct srv_task *task; /* NULL: free */
    inf_token *cache;      /* tokens held in the KV sequence, [slot_ctx] */
    int32_t n_cache;
    int32_t n_cells; /* n_cache as of the last step, for stats (guarded by e->mu) */
    uint64_t last_used;

    /* the running task's state (engine thread only) */
    int32_t n_prompt_done; /* prompt tokens in the cache (reused + decoded) */
    int32_t n_cached;      /* reused from the cache at admission */
    int32_t n_gen;
    inf_token pending; /* sampled, not yet decoded; -1 none */
    struct inf_sampler *smp;
    struct inf_tok_stream stream;
    bool stream_live;
    char *held; /* detokenized text not yet released (may start a stop string) */
    size_t n_held, cap_held;
    struct srv_token_info *plp;   /* prompt logprobs, [n_prompt] */
    int32_t batch_first, batch_n; /* this step's tokens in the batch */

    /* constrained output: the task's matcher (NULL: none) and the mask of the tokens it allows
       next, computed by the mask worker while the forward pass runs (see masks_post) */
    struct inf_matcher *matcher;
    uint32_t *mask;  /* [(grammar vocabulary + 31) / 32] bits, allocated on first use */
    float *masked;   /* [n_vocab] the logits row with the disallowed tokens at -inf */
    bool mask_ready; /* mask is the matcher's current state's (written by the worker) */
    bool cache_det;  /* every cell of the cache came from a deterministic pass (srv_determinism) */
};

struct srv_engine {
    struct srv_engine_params p;
    char *model_id;
    struct inf_model *model;
    const struct inf_tokenizer *tok;
    struct inf_context *ctx;
    struct inf_context *embd_ctx[4]; /* per pooling type, created on first use */
    int32_t n_vocab, n_embd;
    uint32_t slot_ctx;
    enum inf_pooling model_pooling; /* <arch>.pooling_type from the GGUF; mean when undeclared */
    /* an encoder model (bert, nomic-bert): ctx is an embeddings context without a KV cache,
       and queued embeddings are decoded together, whole, one sequence each (enc_step) */
    bool encoder;
    uint32_t enc_cap; /* tokens per encoder pass */

    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    bool thread_started;
    int refs; /* guarded by mu */
    bool stopping;
    double drain_deadline;

    struct srv_task *q_head, *q_tail;
    int q_len;
    uint64_t next_group;
    struct slot *slots;
    uint64_t tick;

    /* the embedding in progress: decoded in chunks between the slots' steps (set under mu; its
       state is the engine thread's) */
    struct srv_task *emb;
    struct inf_context *emb_ctx;
    enum inf_pooling emb_pool;
    int32_t emb_done; /* prompt tokens decoded */
    double *emb_acc;  /* [n_embd]: the pooled vector so far (sum of chunk means x their sizes) */

    struct srv_engine_stats st;

    /* grammars: the token table (built on first use by a submitting thread, under gv_mu) and
       the mask worker, which computes the next masks while the engine thread decodes */
    pthread_mutex_t gv_mu;
    struct inf_grammar_vocab *gvocab;
    int32_t gv_size;
    struct srv_grammar *gcache[SRV_GRAMMAR_CACHE]; /* compiled grammars by key (under gv_mu) */
    uint64_t gcache_used[SRV_GRAMMAR_CACHE], gcache_tick;
    pthread_mutex_t mw_mu;
    pthread_cond_t mw_cv;
    pthread_t mw_thread;
    bool mw_started, mw_quit, mw_sync;
    uint64_t mw_jobs; /* slots whose mask is being computed (bit = slot id) */

    /* batch storage, engine thread only */
    inf_token *b_tok;
    int32_t *b_pos, *b_seq;
    int8_t *b_logits;
    int32_t b_cap;
};

static void engine_free(struct srv_engine *e)
{
    if (e->mw_started) {
        pthread_mutex_lock(&e->mw_mu);
        e->mw_quit = true;
        pthread_cond_broadcast(&e->mw_cv);
        pthread_mutex_unlock(&e->mw_mu);
        pthread_join(e->mw_thread, NULL);
    }
    for (int i = 0; i < 4; i++)
        inf_context_free(e->embd_ctx[i]);
    inf_context_free(e->ctx);
    inf_model_free(e->model);
    if (e->slots)
        for (int i = 0; i < e->p.n_parallel; i++) {
            free(e->slots[i].cache);
            free(e->slots[i].mask);
            free(e->slots[i].masked);
        }
    free(e->slots);
    for (int i = 0; i < SRV_GRAMMAR_CACHE; i++)
        srv_grammar_unref(e->gcache[i]);
    inf_grammar_vocab_free(e->gvocab);
    pthread_mutex_destroy(&e->gv_mu);
    pthread_mutex_destroy(&e->mw_mu);
    pthread_cond_destroy(&e->mw_cv);
    free(e->b_tok);
    free(e->b_pos);
    free(e->b_seq);
    free(e->b_logits);
    free(e->emb_acc);
    free(e->model_id);
    pthread_mutex_destroy(&e->mu);
    pthread_cond_destroy(&e->cv);
    free(e);
}

/* Drop one of the references *refs (guarded by mu) counts: true when it was the last. */
static bool ref_drop(pthread_mutex_t *mu, int *refs)
{
    pthread_mutex_lock(mu);
    int left = --*refs;
    pthread_mutex_unlock(mu);
    return left == 0;
}

static void engine_unref(struct srv_engine *e)
{
    if (ref_drop(&e->mu, &e->refs))
        engine_free(e);
}

static void task_free(struct srv_task *t)
{
    struct ev_node *n = t->head;
    while (n) {
        struct ev_node *next = n->next;
        srv_event_clear(&n->ev);
        free(n);
        n = next;
    }
    free(t->prompt);
    free(t->bias);
    for (int i = 0; i < SRV_MAX_STOP; i++)
        free(t->stop[i]);
    if (t->p.grammar)
        grammar_give(t->p.grammar, t->matcher);
    else
        inf_matcher_free(t->matcher);
    srv_grammar_unref(t->p.grammar);
    pthread_mutex_destroy(&t->mu);
    pthread_cond_destroy(&t->cv);
    if (t->tap.on_free)
        t->tap.on_free(t->tap.ctx);
    struct srv_engine *e = t->e;
    free(t);
    if (e)
        engine_unref(e);
}

static void task_unref(struct srv_task *t)
{
    if (ref_drop(&t->mu, &t->refs))
        task_free(t);
}

const struct inf_model *srv_engine_model(const struct srv_engine *e)
{
    return e->model;
}
const struct inf_tokenizer *srv_engine_tokenizer(const struct srv_engine *e)
{
    return e->tok;
}
const char *srv_engine_model_id(const struct srv_engine *e)
{
    return e->model_id;
}
const char *srv_engine_model_path(const struct srv_engine *e)
{
    return e->p.model_path;
}
uint32_t srv_engine_slot_ctx(const struct srv_engine *e)
{
    return e->slot_ctx;
}
int srv_engine_n_parallel(const struct srv_engine *e)
{
    return e->p.n_parallel;
}

bool srv_engine_idle(const struct srv_engine *ce)
{
    struct srv_engine *e = (struct srv_engine *)ce;
    pthread_mutex_lock(&e->mu);
    bool idle = e->q_len == 0 && !e->emb;
    for (int i = 0; idle && i < e->p.n_parallel; i++)
        if (e->slots[i].task)
            idle = false;
    pthread_mutex_unlock(&e->mu);
    return idle;
}

void srv_engine_stats(struct srv_engine *e, struct srv_engine_stats *out)
{
    pthread_mutex_lock(&e->mu);
    *out = e->st;
    out->slots_total = e->p.n_parallel;
    out->slots_busy = 0;
    out->kv_cells_used = 0;
    for (int i = 0; i < e->p.n_parallel; i++) {
        if (e->slots[i].task)
            out->slots_busy++;
        out->kv_cells_used += (uint32_t)e->slots[i].n_cells;
    }
    out->queue_depth = e->q_len;
    out->kv_cells_total = e->slot_ctx * (uint32_t)e->p.n_parallel;
    pthread_mutex_unlock(&e->mu);
}

/* ---- text and logprobs ----------------------------------------------------------------- */

static bool held_append(struct slot *s, const char *text, size_t len)
{
    return inf__append(&s->held, &s->n_held, &s->cap_held, text, len, 256);
}

/* Find the first stop string in held; returns its offset or -1. */
static long find_stop(const struct srv_task *t, const char *h, size_t n)
{
    long best = -1;
    for (int i = 0; i < t->p.n_stop; i++) {
        size_t sl = t->stop_len[i];
        if (sl == 0 || sl > n)
            continue;
        const char *m = memmem(h, n, t->stop[i], sl);
        if (m && (best < 0 || m - h < best))
            best = m - h;
    }
    return best;
}

/* Length of the longest suffix of h that is a proper prefix of some stop string. */
static size_t stop_tail(const struct srv_task *t, const char *h, size_t n)
{
    size_t keep = 0;
    for (int i = 0; i < t->p.n_stop; i++) {
        size_t sl = t->stop_len[i];
        for (size_t k = sl > 0 ? sl - 1 : 0; k > keep; k--) {
            if (k <= n && memcmp(h + n - k, t->stop[i], k) == 0) {
                keep = k;
                break;
            }
        }
    }
    return keep;
}

/* log-softmax of logits at id plus the top n alternatives (max-subtracted, double sums). */
static void token_logprobs(struct srv_engine *e, const float *logits, inf_token id, int n_top,
                           struct srv_token_info *out)
{
    const int32_t V = e->n_vocab;
    const float mx = logits[inf_argmax(logits, V)];
    double sum = 0;
    for (int32_t i = 0; i < V; i++)
        sum += exp((double)logits[i] - (double)mx);
    double lse = (double)mx + log(sum);
    out->id = id;
    out->logprob = (float)((double)logits[id] - lse);
    if (n_top > SRV_MAX_TOP_LOGPROBS)
        n_top = SRV_MAX_TOP_LOGPROBS;
    if (n_top > V)
        n_top = V;
    out->n_top = 0;
    for (int32_t i = 0; i < V; i++) {
        float x = logits[i];
        int k = out->n_top;
        if (k == n_top && (k == 0 || x <= logits[out->top[k - 1].id]))
            continue;
        if (k < n_top)
            out->n_top++;
        else
            k--;
        /* insert x at the right place (stable: lower ids first on ties) */
        while (k > 0 && logits[out->top[k - 1].id] < x) {
            out->top[k] = out->top[k - 1];
            k--;
        }
        out->top[k].id = i;
    }
    for (int k = 0; k < out->n_top; k++)
        out->top[k].logprob = (float)((double)logits[out->top[k].id] - lse);
}

/* ---- slot lifecycle -------------------------------------------------------------------- */

static void slot_reset_task_state(struct slot *s)
{
    inf_sampler_free(s->smp);
    s->smp = NULL;
    if (s->stream_live)
        inf_tok_stream_release(&s->stream);
    s->stream_live = false;
    free(s->held);
    s->held = NULL;
    s->n_held = s->cap_held = 0;
    free(s->plp);
    s->plp = NULL;
    s->pending = -1;
    s->n_gen = 0;
    s->matcher = NULL; /* the task's, freed with it */
    s->mask_ready = false;
}

/* Finish the slot's task with DONE (engine thread; takes e->mu to free the slot). */
static void slot_done(struct srv_engine *e, struct slot *s, enum srv_finish finish)
{
    struct srv_task *t = s->task;
    double now = now_ms();
    struct srv_event ev = {.type = SRV_EV_DONE, .finish = finish};
    ev.usage.prompt_tokens = t->p.n_prompt;
    ev.usage.cached_tokens = s->n_cached;
    ev.usage.completion_tokens = s->n_gen;
    ev.usage.ttft_ms = t->t_first > 0 ? t->t_first - t->t_submit : 0;
    ev.usage.gen_ms = t->t_first > 0 ? now - t->t_first : 0;
    ev.usage.ttft_steps = t->ttft_steps;
    slot_reset_task_state(s);
    /* free the slot before the reader sees DONE, so that stats and idle agree with it */
    pthread_mutex_lock(&e->mu);
    if (finish == SRV_FINISH_CANCELLED)
        e->st.tasks_cancelled++;
    s->task = NULL;
    s->n_cells = s->n_cache;
    s->last_used = ++e->tick;
    pthread_mutex_unlock(&e->mu);
    task_push(t, &ev);
    task_unref(t);
}

static void slot_fail(struct srv_engine *e, struct slot *s, int http_status, const char *msg)
{
    struct srv_task *t = s->task;
    slot_reset_task_state(s);
    inf_kv_seq_rm(e->ctx, s->id, 0, -1);
    pthread_mutex_lock(&e->mu);
    s->n_cache = 0;
    s->n_cells = 0;
    s->task = NULL;
    pthread_mutex_unlock(&e->mu);
    task_error(t, http_status, "%s", msg);
    task_unref(t);
}

/* Release n bytes of held text (plus the token infos) as a TEXT event. */
static void slot_emit(struct slot *s, size_t n, const struct srv_token_info *ti)
{
    struct srv_event ev = {.type = SRV_EV_TEXT};
    ev.text = malloc(n + 1);
    if (ev.text) {
        memcpy(ev.text, s->held, n);
        ev.text[n] = 0;
        ev.text_len = n;
    }
    memmove(s->held, s->held + n, s->n_held - n);
    s->n_held -= n;
    if (ti) {
        ev.tokens = malloc(sizeof(*ev.tokens));
        if (ev.tokens) {
            ev.tokens[0] = *ti;
            ev.n_tokens = 1;
        }
    }
    task_push(s->task, &ev);
}

/* Whether t's tokens are decoded in deterministic passes (srv_determinism). */
static bool task_det(const struct srv_engine *e, const struct srv_task *t)
{
    return e->p.determinism == SRV_DET_ON ||
           (e->p.determinism == SRV_DET_AUTO &&
            (t->p.sampling.temperature < INF_SAMPLER_GREEDY_BELOW || t->p.deterministic));
}

/* Pick a free slot for t: longest common prefix (for a deterministic task, only of a cache
 * computed deterministically), then least recently used. Under e->mu. */
static struct slot *pick_slot(struct srv_engine *e, const struct srv_task *t, int32_t *lcp_out)
{
    struct slot *best = NULL;
    int32_t best_lcp = -1;
    for (int i = 0; i < e->p.n_parallel; i++) {
        struct slot *s = &e->slots[i];
        if (s->task)
            continue;
        int32_t l = 0;
        if (t->p.kind == SRV_TASK_COMPLETION && !t->p.prompt_logprobs &&
            (s->cache_det || !task_det(e, t))) {
            int32_t n = s->n_cache < t->p.n_prompt ? s->n_cache : t->p.n_prompt;
            while (l < n && s->cache[l] == t->prompt[l])
                l++;
        }
        if (l > best_lcp || (l == best_lcp && s->last_used < best->last_used)) {
            best = s;
            best_lcp = l;
        }
    }
    *lcp_out = best_lcp < 0 ? 0 : best_lcp;
    return best;
}

/* Set a slot up for its new task (engine thread, e->mu not held). */
static bool slot_start(struct srv_engine *e, struct slot *s, int32_t lcp)
{
    struct srv_task *t = s->task;
    if (lcp > t->p.n_prompt - 1)
        lcp = t->p.n_prompt - 1; /* the last prompt token is always decoded for its logits */
    /* sliding-window models: only where the window cache still holds what comes next */
    lcp = inf_kv_seq_resume_max(e->ctx, s->id, lcp);
    inf_kv_seq_rm(e->ctx, s->id, lcp, -1);
    if (lcp == 0)
        s->cache_det = true; /* nothing cached */
    s->n_cache = lcp;
    s->n_cached = lcp;
    s->n_prompt_done = lcp;
    s->n_gen = 0;
    s->pending = -1;
    struct inf_error err = {0};
    struct inf_sampler_params sp = t->p.sampling;
    sp.logit_bias = t->bias;
    if (inf_sampler_new(&sp, e->n_vocab, &s->smp, &err) != INF_OK) {
        slot_fail(e, s, 400, inf_error_message(&err));
        return false;
    }
    for (int32_t i = 0; i < t->p.n_prompt; i++)
        inf_sampler_accept(s->smp, t->prompt[i]);
    inf_tok_stream_init(&s->stream, e->tok, INF_TOK_STREAM_REPLACE_INVALID);
    s->stream_live = true;
    if (t->matcher) {
        if (!s->mask)
            s->mask = calloc(((size_t)e->gv_size + 31) / 32, sizeof(uint32_t));
        if (!s->masked)
            s->masked = malloc((size_t)e->n_vocab * sizeof(float));
        if (!s->mask || !s->masked) {
            slot_fail(e, s, 500, "out of memory for the grammar's mask");
            return false;
        }
        s->matcher = t->matcher;
        s->mask_ready = false;
    }
    if (t->p.prompt_logprobs) {
        s->plp = calloc((size_t)t->p.n_prompt, sizeof(*s->plp));
        if (!s->plp) {
            slot_fail(e, s, 500, "out of memory for prompt logprobs");
            return false;
        }
        s->plp[0].id = t->prompt[0];
        s->plp[0].logprob = NAN;
    }
    return true;
}

/* ---- embeddings ------------------------------------------------------------------------ */

/*
 * One embedding at a time is decoded in its own context, in chunks that take their share of a
 * step's n_batch as a prompt does (see step()), so that the slots keep generating between them
 * instead of waiting for the whole input. The model is causal: chunks decoded one after the
 * other into the same KV sequence give every token the hidden state that one pass over the whole
 * input gives; the chunks' pooled vectors are combined (mean: weighted by their sizes; cls: the
 * first chunk's; last: the last one's). Engine thread only, e->mu not held.
 */

/* End the embedding in progress with ev (DONE or ERROR), freeing it before the reader sees it. */
static void emb_end(struct srv_engine *e, struct srv_event *ev)
{
    struct srv_task *t = e->emb;
    if (e->emb_ctx)
        inf_kv_clear(e->emb_ctx);
    pthread_mutex_lock(&e->mu);
    if (ev->type == SRV_EV_DONE && ev->finish == SRV_FINISH_CANCELLED)
        e->st.tasks_cancelled++;
    e->emb = NULL;
    pthread_mutex_unlock(&e->mu);
    task_push(t, ev);
    task_unref(t);
}

static void emb_fail(struct srv_engine *e, const char *what, const struct inf_error *err)
{
    struct srv_event ev = {.type = SRV_EV_ERROR, .http_status = 500};
    snprintf(ev.message, sizeof(ev.message), "%s%s%s", what, err ? ": " : "",
             err ? inf_error_message(err) : "");
    emb_end(e, &ev);
}

static void emb_cancel(struct srv_engine *e)
{
    struct srv_event ev = {.type = SRV_EV_DONE, .finish = SRV_FINISH_CANCELLED};
    ev.usage.prompt_tokens = e->emb->p.n_prompt;
    emb_end(e, &ev);
}

/* Set up the context for e->emb (just taken from the queue). */
static void emb_begin(struct srv_engine *e)
{
    struct srv_task *t = e->emb;
    enum inf_pooling pool = t->p.pooling == INF_POOL_NONE ? e->model_pooling : t->p.pooling;
    struct inf_error err = {0};
    e->emb_ctx = NULL;
    if (!e->embd_ctx[pool]) {
        struct inf_context_params cp = inf_context_default_params();
        cp.n_ctx = e->slot_ctx;
        cp.n_batch = e->p.n_batch;
        cp.n_seq_max = 1;
        cp.n_threads = e->p.n_threads;
        cp.kv_type = e->p.kv_type;
        cp.embeddings = true;
        cp.pooling = pool;
        if (inf_context_new(e->model, &cp, &e->embd_ctx[pool], &err) != INF_OK) {
            emb_fail(e, "embeddings context", &err);
            return;
        }
    }
    if (!e->emb_acc)
        e->emb_acc = malloc((size_t)e->n_embd * sizeof(double));
    if (!e->emb_acc) {
        emb_fail(e, "out of memory", NULL);
        return;
    }
    memset(e->emb_acc, 0, (size_t)e->n_embd * sizeof(double));
    e->emb_ctx = e->embd_ctx[pool];
    e->emb_pool = pool;
    e->emb_done = 0;
    inf_kv_clear(e->emb_ctx);
}

/* Decode the next n tokens of e->emb; the last chunk sends the vector and DONE. */
static void emb_chunk(struct srv_engine *e, int32_t n)
{
    struct srv_task *t = e->emb;
    const int32_t p0 = e->emb_done, E = e->n_embd;
    struct inf_error err = {0};
    int32_t *pos = malloc((size_t)n * sizeof(int32_t));
    if (!pos) {
        emb_fail(e, "out of memory", NULL);
        return;
    }
    for (int32_t i = 0; i < n; i++)
        pos[i] = p0 + i;
    struct inf_batch b = {.n_tokens = n, .token = t->prompt + p0, .pos = pos};
    double t0 = now_ms();
    inf_status rc = inf_decode(e->emb_ctx, &b, &err);
    free(pos);
    if (rc != INF_OK) {
        emb_fail(e, "embedding failed", &err);
        return;
    }
    const float *v = inf_get_embeddings_seq(e->emb_ctx, 0);
    if (!v) {
        emb_fail(e, "embedding unavailable", NULL);
        return;
    }
    for (int32_t j = 0; j < E; j++) {
        if (e->emb_pool == INF_POOL_CLS)
            e->emb_acc[j] = p0 == 0 ? (double)v[j] : e->emb_acc[j];
        else if (e->emb_pool == INF_POOL_LAST)
            e->emb_acc[j] = (double)v[j];
        else
            e->emb_acc[j] += (double)v[j] * (double)n;
    }
    e->emb_done += n;
    pthread_mutex_lock(&e->mu);
    e->st.prompt_tokens_total += (uint64_t)n;
    int32_t steps = (int32_t)(e->st.steps_total - t->step_submit);
    pthread_mutex_unlock(&e->mu);
    INF_LOG_DEBUG("server", "embedding: %d of %d tokens, %.0f ms", (int)e->emb_done,
                  (int)t->p.n_prompt, now_ms() - t0);
    if (e->emb_done < t->p.n_prompt)
        return;
    struct srv_event ev = {.type = SRV_EV_EMBEDDING};
    ev.embedding = malloc((size_t)E * sizeof(float));
    if (!ev.embedding) {
        emb_fail(e, "out of memory", NULL);
        return;
    }
    double ss = 0;
    double div =
        e->emb_pool == INF_POOL_CLS || e->emb_pool == INF_POOL_LAST ? 1.0 : (double)e->emb_done;
    for (int32_t j = 0; j < E; j++) {
        e->emb_acc[j] /= div;
        ss += e->emb_acc[j] * e->emb_acc[j];
    }
    double inv = ss > 0 ? 1.0 / sqrt(ss) : 0;
    for (int32_t j = 0; j < E; j++)
        ev.embedding[j] = (float)(e->emb_acc[j] * inv);
    ev.n_embd = E;
    task_push(t, &ev);
    struct srv_event done = {.type = SRV_EV_DONE, .finish = SRV_FINISH_STOP};
    done.usage.prompt_tokens = t->p.n_prompt;
    done.usage.ttft_ms = now_ms() - t->t_submit;
    done.usage.ttft_steps = steps;
    emb_end(e, &done);
}

/* ---- the loop -------------------------------------------------------------------------- */

/* Room for n tokens in the batch arrays, which share one capacity (b_cap). */
static bool batch_reserve(struct srv_engine *e, int32_t n)
{
    size_t need = n > 0 ? (size_t)n : 0, c = e->b_cap > 0 ? (size_t)e->b_cap : 0;
    size_t cap[4] = {c, c, c, c};
    if (!inf__grow(&e->b_tok, &cap[0], need, sizeof(*e->b_tok), 256) ||
        !inf__grow(&e->b_pos, &cap[1], need, sizeof(*e->b_pos), 256) ||
        !inf__grow(&e->b_seq, &cap[2], need, sizeof(*e->b_seq), 256) ||
        !inf__grow(&e->b_logits, &cap[3], need, sizeof(*e->b_logits), 256) || cap[0] > INT32_MAX)
        return false;
    e->b_cap = (int32_t)cap[0];
    return true;
}

/* The slot's mask for this step: the worker's when it is ready, else computed here (a slot whose
   prompt ended in the step that admitted it). */
static void slot_mask_ready(struct slot *s)
{
    if (!s->mask_ready) {
        inf_matcher_mask(s->matcher, s->mask);
        s->mask_ready = true;
    }
}

/*
 * The logits row with every token the slot's grammar does not allow now at -inf (tokens past
 * the grammar's vocabulary are never allowed). The mask is the worker's when it is ready, else
 * computed here (a slot whose prompt ended in the step that admitted it).
 */
static const float *masked_row(struct srv_engine *e, struct slot *s, const float *logits)
{
    slot_mask_ready(s);
    const int32_t V = e->n_vocab, G = e->gv_size < V ? e->gv_size : V;
    float *out = s->masked;
    int32_t i = 0;
    /* branch-free per word (the compiler vectorises these loops): most words of a grammar's
       mask are all zero or all one */
    for (; i + 32 <= G; i += 32) {
        uint32_t m = s->mask[i / 32];
        if (m == 0) {
            for (int b = 0; b < 32; b++)
                out[i + b] = -INFINITY;
        } else if (m == 0xFFFFFFFFu) {
            memcpy(out + i, logits + i, 32 * sizeof(float));
        } else {
            for (int b = 0; b < 32; b++) {
                const float x = logits[i + b];
                out[i + b] = (m >> b) & 1u ? x : -INFINITY;
            }
        }
    }
    for (; i < G; i++)
        out[i] = (s->mask[i / 32] >> (i % 32)) & 1u ? logits[i] : -INFINITY;
    for (; i < V; i++)
        out[i] = -INFINITY;
    return out;
}

/* No logit bias and no penalties: nothing that indexes the whole vocabulary. */
static bool plain_sampling(const struct inf_sampler_params *p)
{
    return p->n_logit_bias == 0 && p->repeat_penalty == 1.0f && p->frequency_penalty == 0.0f &&
           p->presence_penalty == 0.0f;
}

static bool plain_greedy(const struct inf_sampler_params *p)
{
    return p->temperature < INF_SAMPLER_GREEDY_BELOW && plain_sampling(p);
}

/*
 * Greedy decoding without bias or penalties (what the sampler would do: the first best logit)
 * over the allowed tokens only, read from the mask's set bits: no masked copy of the row and no
 * pass of the sampler over the whole vocabulary. INF_TOKEN_NONE when no allowed token has a
 * finite logit.
 */
static inf_token masked_argmax(struct srv_engine *e, struct slot *s, const float *logits)
{
    slot_mask_ready(s);
    const int32_t G = e->gv_size < e->n_vocab ? e->gv_size : e->n_vocab;
    inf_token best = INF_TOKEN_NONE;
    float bx = -INFINITY;
    for (int32_t w = 0; w < (G + 31) / 32; w++) {
        for (uint32_t m = s->mask[w]; m; m &= m - 1) {
            int32_t i = w * 32 + __builtin_ctz(m);
            if (i >= G)
                break;
            float x = logits[i];
            if (isnan(x) || (isinf(x) && x > 0))
                return INF_TOKEN_NONE;
            if (best == INF_TOKEN_NONE ? x > -INFINITY : x > bx) {
                best = i;
                bx = x;
            }
        }
    }
    return best;
}

/* Sampling without bias or penalties: the sampler draws from the allowed tokens themselves
   (inf_sampler_sample_masked), the same choice as from the masked row, without the copy. */
static inf_token masked_sample(struct srv_engine *e, struct slot *s, const float *logits)
{
    slot_mask_ready(s);
    const int32_t G = e->gv_size < e->n_vocab ? e->gv_size : e->n_vocab;
    return inf_sampler_sample_masked(s->smp, logits, s->mask, G);
}

/* The mask worker: computes the masks of the slots in mw_jobs, then clears it. */
static void *mask_worker_main(void *arg)
{
    struct srv_engine *e = arg;
    pthread_mutex_lock(&e->mw_mu);
    for (;;) {
        while (!e->mw_jobs && !e->mw_quit)
            pthread_cond_wait(&e->mw_cv, &e->mw_mu);
        if (e->mw_quit)
            break;
        uint64_t jobs = e->mw_jobs;
        pthread_mutex_unlock(&e->mw_mu);
        /* the engine thread leaves these slots alone until masks_wait() */
        for (int i = 0; i < e->p.n_parallel; i++)
            if (jobs >> i & 1u) {
                struct slot *s = &e->slots[i];
                inf_matcher_mask(s->matcher, s->mask);
                s->mask_ready = true;
            }
        pthread_mutex_lock(&e->mw_mu);
        e->mw_jobs = 0;
        pthread_cond_broadcast(&e->mw_cv);
    }
    pthread_mutex_unlock(&e->mw_mu);
    return NULL;
}

/*
 * After a step's sampling: hand the slots whose grammar moved on to the mask worker, so that
 * their next masks are computed while the next forward pass runs, off the critical path. Until
 * masks_wait() the engine thread must not touch those slots' matchers or masks (nor free them).
 * Without a worker (no CPU to spare for it, INFERNO_GRAMMAR_MASKS=sync, or it could not start)
 * the masks are computed here, still before the next pass. Engine thread.
 */
static void masks_post(struct srv_engine *e)
{
    uint64_t jobs = 0;
    for (int i = 0; i < e->p.n_parallel; i++)
        if (e->slots[i].task && e->slots[i].matcher && !e->slots[i].mask_ready)
            jobs |= (uint64_t)1 << i;
    if (!jobs)
        return;
    if (!e->mw_started && !e->mw_sync) {
        if (pthread_create(&e->mw_thread, NULL, mask_worker_main, e) == 0)
            e->mw_started = true;
        else
            e->mw_sync = true;
    }
    if (e->mw_sync) {
        for (int i = 0; i < e->p.n_parallel; i++)
            if (jobs >> i & 1u) {
                inf_matcher_mask(e->slots[i].matcher, e->slots[i].mask);
                e->slots[i].mask_ready = true;
            }
        return;
    }
    pthread_mutex_lock(&e->mw_mu);
    e->mw_jobs = jobs;
    pthread_cond_broadcast(&e->mw_cv);
    pthread_mutex_unlock(&e->mw_mu);
}

/* Wait until the mask worker is done with what masks_post gave it. Engine thread. */
static void masks_wait(struct srv_engine *e)
{
    if (!e->mw_started)
        return;
    pthread_mutex_lock(&e->mw_mu);
    while (e->mw_jobs)
        pthread_cond_wait(&e->mw_cv, &e->mw_mu);
    pthread_mutex_unlock(&e->mw_mu);
}

/* Handle a sampled token for slot s (logits = its row). Returns false when the task ended. */
static bool slot_token(struct srv_engine *e, struct slot *s, const float *logits)
{
    struct srv_task *t = s->task;
    inf_token id;
    if (s->matcher && plain_greedy(&t->p.sampling))
        id = masked_argmax(e, s, logits);
    else if (s->matcher && plain_sampling(&t->p.sampling))
        id = masked_sample(e, s, logits);
    else
        id = inf_sampler_sample(s->smp, s->matcher ? masked_row(e, s, logits) : logits);
    if (id == INF_TOKEN_NONE) {
        /* NaN logits, or every token banned by bias and penalties: an error, never a pick */
        char msg[INF_ERROR_MSG_MAX];
        if (s->matcher && inf_matcher_errmsg(s->matcher)[0])
            snprintf(msg, sizeof(msg), "the grammar failed: %s", inf_matcher_errmsg(s->matcher));
        else if (s->matcher)
            snprintf(msg, sizeof(msg),
                     "no token the grammar allows here can be sampled (all "
                     "banned by logit_bias or penalties, or none allowed)");
        else
            snprintf(msg, sizeof(msg), "%s", inf_sampler_errmsg(s->smp));
        slot_fail(e, s, 500, msg);
        return false;
    }
    if (s->matcher) {
        s->mask_ready = false;
        if (!inf_matcher_accept_token(s->matcher, id)) {
            slot_fail(e, s, 500, "the grammar refused the sampled token");
            return false;
        }
    }
    inf_sampler_accept(s->smp, id);
    double now = now_ms();
    s->n_gen++;
    pthread_mutex_lock(&e->mu);
    e->st.generated_tokens_total++;
    if (t->t_first <= 0) {
        hist_add(&e->st.ttft, (now - t->t_submit) / 1e3);
        t->ttft_steps = (int32_t)(e->st.steps_total - t->step_submit);
    } else
        hist_add(&e->st.per_token, (now - t->t_last) / 1e3);
    pthread_mutex_unlock(&e->mu);
    if (t->t_first <= 0) {
        t->t_first = now;
        INF_LOG_DEBUG("server", "first token: slot %d after %.0f ms", s->id, now - t->t_submit);
    }
    t->t_last = now;

    struct srv_token_info ti = {.id = id};
    if (t->p.logprobs)
        token_logprobs(e, logits, id, t->p.top_logprobs, &ti);

    if (!t->p.ignore_eos && inf_tok_is_eog(e->tok, id)) {
        /* release what was held for a possible stop string: it is plain text now */
        const char *txt;
        size_t len;
        if (inf_tok_stream_flush(&s->stream, &txt, &len, NULL) == INF_OK)
            held_append(s, txt, len);
        if (s->n_held)
            slot_emit(s, s->n_held, NULL);
        slot_done(e, s, SRV_FINISH_STOP);
        return false;
    }
    const char *txt = NULL;
    size_t len = 0;
    if (inf_tok_stream_push(&s->stream, id, &txt, &len, NULL) != INF_OK ||
        !held_append(s, txt, len)) {
        slot_fail(e, s, 500, "detokenization failed");
        return false;
    }
    long at = find_stop(t, s->held, s->n_held);
    if (at >= 0) {
        slot_emit(s, (size_t)at, &ti);
        slot_done(e, s, SRV_FINISH_STOP);
        return false;
    }
    if (s->matcher && inf_matcher_is_done(s->matcher)) {
        /* the grammar is complete and allows nothing more: the text is whole */
        if (inf_tok_stream_flush(&s->stream, &txt, &len, NULL) == INF_OK)
            held_append(s, txt, len);
        at = find_stop(t, s->held, s->n_held);
        slot_emit(s, at >= 0 ? (size_t)at : s->n_held, &ti);
        slot_done(e, s, SRV_FINISH_STOP);
        return false;
    }
    bool length = (t->p.max_tokens >= 0 && s->n_gen >= t->p.max_tokens) ||
                  (uint32_t)s->n_cache + 1 > e->slot_ctx;
    if (length) {
        if (inf_tok_stream_flush(&s->stream, &txt, &len, NULL) == INF_OK)
            held_append(s, txt, len);
        at = find_stop(t, s->held, s->n_held);
        slot_emit(s, at >= 0 ? (size_t)at : s->n_held, &ti);
        slot_done(e, s, at >= 0 ? SRV_FINISH_STOP : SRV_FINISH_LENGTH);
        return false;
    }
    size_t keep = stop_tail(t, s->held, s->n_held);
    slot_emit(s, s->n_held - keep, &ti);
    s->pending = id;
    return true;
}

/* Take t out of the wait queue; prev is the task before it (NULL: t is the head). Under e->mu. */
static void queue_unlink(struct srv_engine *e, struct srv_task *prev, struct srv_task *t)
{
    if (prev)
        prev->qnext = t->qnext;
    else
        e->q_head = t->qnext;
    if (e->q_tail == t)
        e->q_tail = prev;
    t->qnext = NULL;
    e->q_len--;
}

/*
 * End a task taken off the wait queue as cancelled: its DONE event, and the queue's reference
 * dropped. Under e->mu, which is released meanwhile.
 */
static void queued_cancelled(struct srv_engine *e, struct srv_task *t)
{
    e->st.tasks_cancelled++;
    pthread_mutex_unlock(&e->mu);
    struct srv_event ev = {.type = SRV_EV_DONE, .finish = SRV_FINISH_CANCELLED};
    ev.usage.prompt_tokens = t->p.n_prompt;
    task_push(t, &ev);
    task_unref(t);
    pthread_mutex_lock(&e->mu);
}

/*
 * Admit queued tasks, oldest first: completions into free slots, the oldest embedding as the one
 * in progress when none is; drop cancelled ones. A completion waiting for a slot does not hold
 * back an embedding behind it, nor the other way round. Under e->mu (dropped around the set-up;
 * meanwhile only submit touches the queue, and only at its tail).
 */
static bool admit_pass(struct srv_engine *e, bool background)
{
    struct srv_task *prev = NULL, *t = e->q_head;
    bool slots_full = false, waiting = false;
    while (t) {
        struct srv_task *next = t->qnext;
        if (t->p.background != background) {
            prev = t;
        } else if (atomic_load(&t->cancel)) {
            queue_unlink(e, prev, t);
            queued_cancelled(e, t);
        } else if (t->p.kind == SRV_TASK_EMBEDDING) {
            if (e->emb || e->encoder) { /* encoders: enc_step takes them from the queue */
                prev = t;
            } else {
                queue_unlink(e, prev, t);
                e->emb = t;
                pthread_mutex_unlock(&e->mu);
                emb_begin(e);
                pthread_mutex_lock(&e->mu);
            }
        } else {
            int32_t lcp = 0;
            struct slot *s = slots_full ? NULL : pick_slot(e, t, &lcp);
            if (!s) {
                slots_full = true;
                waiting = true;
                prev = t;
            } else {
                queue_unlink(e, prev, t);
                s->task = t;
                s->last_used = ++e->tick;
                pthread_mutex_unlock(&e->mu);
                INF_LOG_DEBUG("server",
                              "admit: slot %d, %d prompt tokens, %d reused, queued %.0f ms", s->id,
                              (int)t->p.n_prompt, (int)lcp, now_ms() - t->t_submit);
                bool ok = slot_start(e, s, lcp);
                pthread_mutex_lock(&e->mu);
                s->n_cells = s->n_cache;
                if (ok)
                    e->st.cached_tokens_total += (uint64_t)s->n_cached;
            }
        }
        /* t was the tail when next was read: a task submitted meanwhile follows prev */
        t = next ? next : (prev ? prev->qnext : e->q_head);
    }
    return waiting;
}

/*
 * Admit live tasks first, then background ones (batch work) only when no live completion is
 * left waiting for a slot. Returns true when a live completion still waits: the caller then
 * preempts a background slot (preempt_background), so that live work never queues behind
 * batch work. Under e->mu (see admit_pass).
 */
static bool admit(struct srv_engine *e)
{
    if (admit_pass(e, false))
        return true;
    admit_pass(e, true);
    return false;
}

/* A live (not background) completion is waiting in the queue. Under e->mu. */
static bool live_queued(const struct srv_engine *e)
{
    for (const struct srv_task *t = e->q_head; t; t = t->qnext)
        if (!t->p.background && t->p.kind == SRV_TASK_COMPLETION && !atomic_load(&t->cancel))
            return true;
    return false;
}

/*
 * A live completion waits and every slot is taken: end the background task that started last
 * with a 503 ERROR (its submitter runs it again later), freeing its slot for the next admit.
 * Engine thread, e->mu not held.
 */
static void preempt_background(struct srv_engine *e)
{
    masks_wait(e);
    struct slot *victim = NULL;
    for (int i = 0; i < e->p.n_parallel; i++) {
        struct slot *s = &e->slots[i];
        if (s->task && s->task->p.background &&
            (!victim || s->task->t_submit > victim->task->t_submit))
            victim = s;
    }
    if (!victim)
        return;
    INF_LOG_DEBUG("server", "slot %d: background task preempted by a live request", victim->id);
    pthread_mutex_lock(&e->mu);
    e->st.tasks_preempted++;
    pthread_mutex_unlock(&e->mu);
    slot_fail(e, victim, 503, "preempted by a live request; run it again");
}

static void cancel_slots(struct srv_engine *e, bool all)
{
    masks_wait(e);
    for (int i = 0; i < e->p.n_parallel; i++) {
        struct slot *s = &e->slots[i];
        if (s->task && (all || atomic_load(&s->task->cancel)))
            slot_done(e, s, SRV_FINISH_CANCELLED);
    }
    if (e->emb && (all || atomic_load(&e->emb->cancel)))
        emb_cancel(e);
}

/* ---- encoders ------------------------------------------------------------------------- */

/*
 * An encoder pass (bert, nomic-bert): the queued embeddings, oldest first, as many as fit in
 * one pass (enc_cap tokens, 64 sequences), each a whole sequence of its own; each gets its
 * pooled, L2-normalized vector and DONE. Nothing is kept between passes. e->mu not held.
 */
static void enc_step(struct srv_engine *e)
{
    struct srv_task *take[64];
    int n_take = 0;
    int32_t n = 0;
    pthread_mutex_lock(&e->mu);
    struct srv_task *prev = NULL, *t = e->q_head;
    while (t && n_take < 64) {
        struct srv_task *next = t->qnext;
        if (atomic_load(&t->cancel)) {
            queue_unlink(e, prev, t);
            queued_cancelled(e, t);
        } else if (n_take > 0 && (uint32_t)(n + t->p.n_prompt) > e->enc_cap) {
            break;
        } else {
            queue_unlink(e, prev, t);
            take[n_take++] = t;
            n += t->p.n_prompt;
            t = next ? next : (prev ? prev->qnext : e->q_head);
            continue;
        }
        t = next ? next : (prev ? prev->qnext : e->q_head);
    }
    pthread_mutex_unlock(&e->mu);
    if (n_take == 0)
        return;
    struct inf_error err = {0};
    inf_status rc = INF_ENOMEM;
    if (batch_reserve(e, n)) {
        int32_t k = 0;
        for (int i = 0; i < n_take; i++)
            for (int32_t p = 0; p < take[i]->p.n_prompt; p++, k++) {
                e->b_tok[k] = take[i]->prompt[p];
                e->b_pos[k] = p;
                e->b_seq[k] = i;
            }
        struct inf_batch b = {
            .n_tokens = n, .token = e->b_tok, .pos = e->b_pos, .seq_id = e->b_seq};
        rc = inf_decode(e->ctx, &b, &err);
    } else {
        inf_error_set(&err, INF_ENOMEM, "out of memory");
    }
    const int32_t E = e->n_embd;
    pthread_mutex_lock(&e->mu);
    e->st.steps_total++;
    if (rc == INF_OK) {
        e->st.batch_tokens_total += (uint64_t)n;
        e->st.prompt_tokens_total += (uint64_t)n;
    }
    pthread_mutex_unlock(&e->mu);
    int32_t k0 = 0;
    for (int i = 0; i < n_take; i++) {
        struct srv_task *tk = take[i];
        struct srv_event ev = {.type = SRV_EV_EMBEDDING};
        const float *v = rc == INF_OK ? inf_get_embeddings_seq(e->ctx, i) : NULL;
        ev.embedding = v ? malloc((size_t)E * sizeof(float)) : NULL;
        if (!ev.embedding) {
            task_error(tk, 500, "embedding failed: %s",
                       rc != INF_OK ? inf_error_message(&err) : "out of memory");
        } else {
            const enum inf_pooling pool =
                tk->p.pooling == INF_POOL_NONE ? e->model_pooling : tk->p.pooling;
            double acc_ss = 0;
            for (int32_t j = 0; j < E; j++) {
                double x = v[j];
                if (pool != e->model_pooling) {
                    /* another pooling than the context's: from the tokens' own vectors */
                    const int32_t r = pool == INF_POOL_CLS    ? k0
                                      : pool == INF_POOL_LAST ? k0 + tk->p.n_prompt - 1
                                                              : -1;
                    if (r >= 0) {
                        x = inf_get_embeddings_ith(e->ctx, r)[j];
                    } else {
                        x = 0;
                        for (int32_t q = 0; q < tk->p.n_prompt; q++)
                            x += inf_get_embeddings_ith(e->ctx, k0 + q)[j];
                        x /= tk->p.n_prompt;
                    }
                }
                ev.embedding[j] = (float)x;
                acc_ss += x * x;
            }
            /* a reranker's row (its score first) is sent as it is */
            const double inv = pool == INF_POOL_RANK ? 1.0 : acc_ss > 0 ? 1.0 / sqrt(acc_ss) : 0;
            for (int32_t j = 0; j < E; j++)
                ev.embedding[j] = (float)(ev.embedding[j] * inv);
            ev.n_embd = E;
            task_push(tk, &ev);
            struct srv_event done = {.type = SRV_EV_DONE, .finish = SRV_FINISH_STOP};
            done.usage.prompt_tokens = tk->p.n_prompt;
            done.usage.ttft_ms = now_ms() - tk->t_submit;
            done.usage.ttft_steps = 1;
            task_push(tk, &done);
        }
        k0 += tk->p.n_prompt;
        task_unref(tk);
    }
}

/* One engine step: build the batch, decode, sample. e->mu not held. */
static void step(struct srv_engine *e)
{
    if (e->encoder) {
        enc_step(e);
        return;
    }
    int32_t n = 0;
    /* a live prompt still reading (no first token yet) runs without the background slots: a
       step carrying only live work is as short as it would be without the batch, so batch work
       never lengthens a live request's time to first token (the background slots just skip
       this step) */
    bool live_prefill = false;
    for (int i = 0; i < e->p.n_parallel && !live_prefill; i++) {
        const struct slot *s = &e->slots[i];
        live_prefill = s->task && !s->task->p.background && s->pending < 0 &&
                       s->n_prompt_done < s->task->p.n_prompt;
    }
    /* the slots with prompt tokens to decode, oldest request first (ties: lower slot id) */
    int order[64];
    int n_prompting = 0;
    for (int i = 0; i < e->p.n_parallel; i++) {
        struct slot *s = &e->slots[i];
        s->batch_n = 0;
        if (!s->task || s->pending >= 0 || s->n_prompt_done >= s->task->p.n_prompt ||
            (live_prefill && s->task->p.background))
            continue;
        int k = n_prompting++;
        while (k > 0 && e->slots[order[k - 1]].task->t_submit > s->task->t_submit) {
            order[k] = order[k - 1];
            k--;
        }
        order[k] = i;
    }
    if (!batch_reserve(e, e->p.n_parallel + (int32_t)e->p.n_batch))
        return;
    /* the next token of every generating slot */
    for (int i = 0; i < e->p.n_parallel; i++) {
        struct slot *s = &e->slots[i];
        if (!s->task || s->pending < 0 || (live_prefill && s->task->p.background))
            continue;
        s->batch_first = n;
        s->batch_n = 1;
        e->b_tok[n] = s->pending;
        e->b_pos[n] = s->n_cache;
        e->b_seq[n] = s->id;
        e->b_logits[n] = 1;
        n++;
    }
    const int32_t n_gen_tokens = n;
    /* prompt tokens fill the rest of n_batch, oldest request first: it finishes its prompt (and
       gets its first token) as early as possible, and a step carries as many tokens as it may,
       since every forward pass reads all the weights once. The oldest waiting prompt always
       gets at least one token, so prompts progress even when generation fills n_batch. */
    int32_t budget = (int32_t)e->p.n_batch - n;
    struct srv_task *emb = e->emb; /* written by this thread only */
    if (budget < 1 && (n_prompting > 0 || emb))
        budget = 1;
    /* the embedding in progress takes its place in that order (decoded in its own context) */
    int32_t emb_take = 0;
    for (int o = 0; o <= n_prompting && budget > 0; o++) {
        if (emb && emb_take == 0 &&
            (o == n_prompting || e->slots[order[o]].task->t_submit > emb->t_submit)) {
            int32_t left = emb->p.n_prompt - e->emb_done;
            emb_take = left < budget ? left : budget;
            budget -= emb_take;
        }
        if (o == n_prompting || budget == 0)
            break;
        struct slot *s = &e->slots[order[o]];
        int32_t left = s->task->p.n_prompt - s->n_prompt_done;
        int32_t take = left < budget ? left : budget;
        budget -= take;
        s->batch_first = n;
        s->batch_n = take;
        for (int32_t k = 0; k < take; k++) {
            int32_t p = s->n_prompt_done + k;
            e->b_tok[n] = s->task->prompt[p];
            e->b_pos[n] = p;
            e->b_seq[n] = s->id;
            e->b_logits[n] = (int8_t)(s->task->p.prompt_logprobs || p == s->task->p.n_prompt - 1);
            n++;
        }
    }
    if (emb_take > 0)
        emb_chunk(e, emb_take);
    if (n == 0)
        return;
    struct inf_batch b = {.n_tokens = n,
                          .token = e->b_tok,
                          .pos = e->b_pos,
                          .seq_id = e->b_seq,
                          .logits = e->b_logits};
    bool det = e->p.determinism == SRV_DET_ON;
    for (int i = 0; i < e->p.n_parallel && !det; i++)
        det = e->slots[i].task && e->slots[i].batch_n > 0 && task_det(e, e->slots[i].task);
    inf_context_set_deterministic(e->ctx, det);
    for (int i = 0; i < e->p.n_parallel; i++)
        if (e->slots[i].task && e->slots[i].batch_n > 0)
            e->slots[i].cache_det = e->slots[i].cache_det && det;
    struct inf_error err = {0};
    double t_step = now_ms();
    inf_status rc = inf_decode(e->ctx, &b, &err);
    masks_wait(e); /* the masks computed during the pass */
    if (rc != INF_OK) {
        INF_LOG_ERROR("server", "decode failed: %s", inf_error_message(&err));
        for (int i = 0; i < e->p.n_parallel; i++)
            if (e->slots[i].task && e->slots[i].batch_n > 0)
                slot_fail(e, &e->slots[i], 500, inf_error_message(&err));
        return;
    }
    pthread_mutex_lock(&e->mu);
    e->st.steps_total++;
    e->st.batch_tokens_total += (uint64_t)n;
    pthread_mutex_unlock(&e->mu);
    uint64_t n_prompt_tokens = 0;
    for (int i = 0; i < e->p.n_parallel; i++) {
        struct slot *s = &e->slots[i];
        if (!s->task || s->batch_n == 0)
            continue;
        struct srv_task *t = s->task;
        const float *last = inf_get_logits_ith(e->ctx, s->batch_first + s->batch_n - 1);
        if (s->pending >= 0) {
            s->cache[s->n_cache++] = s->pending;
            s->pending = -1;
            slot_token(e, s, last);
            continue;
        }
        for (int32_t k = 0; k < s->batch_n; k++) {
            int32_t p = s->n_prompt_done + k;
            s->cache[s->n_cache++] = t->prompt[p];
            if (s->plp && p + 1 < t->p.n_prompt) {
                const float *row = inf_get_logits_ith(e->ctx, s->batch_first + k);
                token_logprobs(e, row, t->prompt[p + 1], t->p.top_logprobs, &s->plp[p + 1]);
            }
        }
        s->n_prompt_done += s->batch_n;
        n_prompt_tokens += (uint64_t)s->batch_n;
        if (s->n_prompt_done < t->p.n_prompt)
            continue;
        if (s->plp) {
            struct srv_event ev = {.type = SRV_EV_PROMPT_LOGPROBS};
            ev.tokens = s->plp;
            ev.n_tokens = t->p.n_prompt;
            s->plp = NULL;
            task_push(t, &ev);
        }
        if (t->p.max_tokens == 0) {
            slot_done(e, s, SRV_FINISH_LENGTH);
            continue;
        }
        slot_token(e, s, last);
    }
    masks_post(e);
    INF_LOG_DEBUG("server", "step: %d generated + %llu prompt tokens, %.0f ms", (int)n_gen_tokens,
                  (unsigned long long)n_prompt_tokens, now_ms() - t_step);
    pthread_mutex_lock(&e->mu);
    e->st.prompt_tokens_total += n_prompt_tokens;
    for (int i = 0; i < e->p.n_parallel; i++)
        e->slots[i].n_cells = e->slots[i].n_cache;
    pthread_mutex_unlock(&e->mu);
}

static bool any_active(const struct srv_engine *e)
{
    if (e->emb || (e->encoder && e->q_head))
        return true;
    for (int i = 0; i < e->p.n_parallel; i++)
        if (e->slots[i].task)
            return true;
    return false;
}

/*
 * Before a step that would carry only prompt tokens (no slot generating, so waiting delays no
 * token stream) while a slot is free: if a request arrived less than batch_wait_ms ago, more of
 * its burst are likely on their way; wait for them (admitting each as it comes) until
 * batch_wait_ms after the newest arrival, at most 2 x batch_wait_ms in all, so that the burst
 * shares one forward pass instead of queueing behind it. Ends early when every slot is taken,
 * on stop, or on a cancellation. Under e->mu.
 */
static void batch_wait(struct srv_engine *e)
{
    const double w = e->p.batch_wait_ms;
    const double start = now_ms();
    for (;;) {
        double newest = 0;
        bool full = true, prompts_only = true, cancelled = false;
        for (int i = 0; i < e->p.n_parallel; i++) {
            const struct slot *s = &e->slots[i];
            const struct srv_task *t = s->task;
            full = full && t;
            if (!t)
                continue;
            prompts_only = prompts_only && s->pending < 0;
            cancelled = cancelled || atomic_load(&t->cancel);
            if (t->t_submit > newest)
                newest = t->t_submit;
        }
        double now = now_ms(), deadline = newest + w;
        if (deadline > start + 2 * w)
            deadline = start + 2 * w;
        if (newest == 0 || full || !prompts_only || cancelled || e->stopping || now >= deadline)
            return;
        double wait_ms = deadline - now;
        struct timespec dl;
        clock_gettime(CLOCK_REALTIME, &dl);
        long long ns = (long long)dl.tv_nsec + (long long)(wait_ms * 1e6);
        dl.tv_sec += (time_t)(ns / 1000000000LL);
        dl.tv_nsec = (long)(ns % 1000000000LL);
        pthread_cond_timedwait(&e->cv, &e->mu, &dl);
        admit(e);
    }
}

static void *engine_main(void *arg)
{
    struct srv_engine *e = arg;
    pthread_mutex_lock(&e->mu);
    for (;;) {
        bool hard_stop = e->stopping && now_ms() >= e->drain_deadline;
        if (hard_stop) {
            /* cancel everything queued and running */
            while (e->q_head) {
                struct srv_task *t = e->q_head;
                e->q_head = t->qnext;
                e->q_len--;
                queued_cancelled(e, t);
            }
            e->q_tail = NULL;
            pthread_mutex_unlock(&e->mu);
            cancel_slots(e, true);
            return NULL;
        }
        bool live_waiting = admit(e);
        if (e->p.batch_wait_ms > 0)
            batch_wait(e);
        live_waiting = live_waiting && live_queued(e); /* batch_wait may have admitted it */
        pthread_mutex_unlock(&e->mu);
        if (live_waiting)
            preempt_background(e);
        cancel_slots(e, false);
        pthread_mutex_lock(&e->mu);
        if (!any_active(e)) {
            if (e->q_head)
                continue;
            if (e->stopping) {
                pthread_mutex_unlock(&e->mu);
                return NULL;
            }
            pthread_cond_wait(&e->cv, &e->mu);
            continue;
        }
        pthread_mutex_unlock(&e->mu);
        step(e);
        pthread_mutex_lock(&e->mu);
    }
}

/* The pooling a GGUF declares (llama.cpp's <arch>.pooling_type: 1 mean, 2 cls, 3 last);
 * mean when it declares none or one the engine does not have. */
static enum inf_pooling model_pooling(const char *path, const char *arch)
{
    struct inf_gguf *g = NULL;
    enum inf_pooling pool = INF_POOL_MEAN;
    if (inf_gguf_open_file(path, &g, NULL) != INF_OK)
        return pool;
    char key[96];
    uint32_t v = 0;
    snprintf(key, sizeof(key), "%s.pooling_type", arch);
    if (inf_gguf_get_u32(g, key, &v, NULL) == INF_OK) {
        if (v == 2)
            pool = INF_POOL_CLS;
        else if (v == 3)
            pool = INF_POOL_LAST;
    }
    inf_gguf_free(g);
    return pool;
}

inf_status srv_engine_start(const struct srv_engine_params *p, struct srv_engine **out,
                            struct inf_error *err)
{
    *out = NULL;
    if (!p->model_path)
        return inf_error_set(err, INF_EINVAL, "no model path");
    if (p->n_parallel < 1 || p->n_parallel > 64)
        return inf_error_set(err, INF_EINVAL, "parallel must be in 1..64, not %d", p->n_parallel);
    struct srv_engine *e = calloc(1, sizeof(*e));
    if (!e)
        return inf_error_set(err, INF_ENOMEM, "out of memory");
    e->p = *p;
    if (e->p.n_batch == 0)
        e->p.n_batch = 512;
    if (e->p.queue_size < 0)
        e->p.queue_size = 0;
    pthread_mutex_init(&e->mu, NULL);
    pthread_cond_init(&e->cv, NULL);
    pthread_mutex_init(&e->gv_mu, NULL);
    pthread_mutex_init(&e->mw_mu, NULL);
    pthread_cond_init(&e->mw_cv, NULL);
    /* the mask worker only helps when a core is free while the pass runs: with as many
       inference threads as CPUs it would take one from them (INFERNO_GRAMMAR_MASKS=worker or
       sync overrides the choice) */
    const char *mw = getenv("INFERNO_GRAMMAR_MASKS");
    const int threads = p->n_threads > 0 ? p->n_threads : inf_cpu_physical_cores();
    e->mw_sync = mw && !strcmp(mw, "sync")     ? true
                 : mw && !strcmp(mw, "worker") ? false
                                               : sysconf(_SC_NPROCESSORS_ONLN) <= threads;
    e->refs = 1;
    const char *id = p->model_id ? p->model_id : p->model_path;
    e->model_id = strdup(id);
    double t0 = now_ms();
    struct inf_model_params mp = inf_model_default_params();
    mp.use_mmap = p->use_mmap;
    mp.use_mlock = p->use_mlock;
    mp.huge_pages = p->huge_pages;
    inf_status rc = inf_model_load(p->model_path, &mp, &e->model, err);
    if (rc != INF_OK)
        goto fail;
    e->tok = inf_model_tokenizer(e->model);
    if (!e->tok) {
        rc = inf_error_set(err, INF_EFORMAT, "'%s' has no tokenizer", p->model_path);
        goto fail;
    }
    struct inf_model_info info;
    inf_model_get_info(e->model, &info);
    e->n_vocab = info.n_vocab;
    e->n_embd = info.n_embd;
    e->model_pooling = model_pooling(p->model_path, info.architecture);
    e->encoder = inf_model_is_encoder(e->model);
    struct inf_context_params cp = inf_context_default_params();
    cp.n_ctx = p->n_ctx;
    cp.n_batch = e->p.n_batch;
    cp.n_seq_max = (uint32_t)p->n_parallel;
    cp.n_threads = p->n_threads;
    cp.kv_type = p->kv_type;
    if (e->encoder) {
        /* one embeddings context, no KV cache: passes of up to 64 whole inputs, at most
           max(n_batch, the trained length) tokens in all; an input may be as long as the model
           was trained for */
        e->model_pooling = inf_model_pooling(e->model);
        if (e->model_pooling == INF_POOL_NONE)
            e->model_pooling = INF_POOL_MEAN;
        cp.embeddings = true;
        cp.pooling = e->model_pooling;
        cp.n_seq_max = 64;
        e->enc_cap =
            e->p.n_batch > (uint32_t)info.n_ctx_train ? e->p.n_batch : (uint32_t)info.n_ctx_train;
        cp.n_ctx = e->enc_cap;
        cp.n_batch = e->enc_cap;
    }
    rc = inf_context_new(e->model, &cp, &e->ctx, err);
    if (rc != INF_OK)
        goto fail;
    e->slot_ctx = e->encoder ? (uint32_t)info.n_ctx_train
                             : inf_context_n_ctx(e->ctx) / (uint32_t)p->n_parallel;
    if (e->slot_ctx < 2) {
        rc = inf_error_set(err, INF_EINVAL, "context %u is too small for %d slots",
                           inf_context_n_ctx(e->ctx), p->n_parallel);
        goto fail;
    }
    e->slots = calloc((size_t)p->n_parallel, sizeof(*e->slots));
    if (!e->slots || !e->model_id) {
        rc = inf_error_set(err, INF_ENOMEM, "out of memory");
        goto fail;
    }
    for (int i = 0; i < p->n_parallel; i++) {
        e->slots[i].id = i;
        e->slots[i].pending = -1;
        e->slots[i].cache = malloc((size_t)e->slot_ctx * sizeof(inf_token));
        if (!e->slots[i].cache) {
            rc = inf_error_set(err, INF_ENOMEM, "out of memory");
            goto fail;
        }
    }
    e->st.load_ms = now_ms() - t0;
    if (pthread_create(&e->thread, NULL, engine_main, e) != 0) {
        rc = inf_error_set(err, INF_EINTERNAL, "cannot start the engine thread");
        goto fail;
    }
    e->thread_started = true;
    INF_LOG_INFO("server", "model '%s' loaded in %.0f ms: %d slots of %u cells each", e->model_id,
                 e->st.load_ms, p->n_parallel, e->slot_ctx);
    *out = e;
    return INF_OK;
fail:
    engine_free(e);
    return rc;
}

void srv_engine_stop(struct srv_engine *e, int drain_ms)
{
    if (!e)
        return;
    pthread_mutex_lock(&e->mu);
    e->stopping = true;
    e->drain_deadline = now_ms() + (drain_ms > 0 ? drain_ms : 0);
    pthread_cond_broadcast(&e->cv);
    pthread_mutex_unlock(&e->mu);
    if (e->thread_started) {
        /* the loop checks the deadline between steps and exits once idle */
        pthread_join(e->thread, NULL);
    }
    engine_unref(e);
}

/* ---- submit / cancel ------------------------------------------------------------------- */

/* The engine's token table for grammars, built by the first thread that needs it. */
static inf_status grammar_vocab(struct srv_engine *e, const struct inf_grammar_vocab **out,
                                struct inf_error *err)
{
    inf_status rc = INF_OK;
    pthread_mutex_lock(&e->gv_mu);
    if (!e->gvocab) {
        double t0 = now_ms();
        rc = inf_grammar_vocab_new(e->tok, &e->gvocab, err);
        if (rc == INF_OK) {
            e->gv_size = inf_grammar_vocab_size(e->gvocab);
            INF_LOG_INFO("server", "grammar token table for '%s': %d tokens in %.0f ms",
                         e->model_id, (int)e->gv_size, now_ms() - t0);
        }
    }
    *out = e->gvocab;
    pthread_mutex_unlock(&e->gv_mu);
    return rc;
}

struct srv_grammar *srv_engine_grammar_get(struct srv_engine *e, const char *key, size_t len)
{
    struct srv_grammar *found = NULL;
    pthread_mutex_lock(&e->gv_mu);
    for (int i = 0; i < SRV_GRAMMAR_CACHE && !found; i++) {
        struct srv_grammar *sg = e->gcache[i];
        if (sg && sg->key_len == len && memcmp(sg->key, key, len) == 0) {
            found = grammar_ref(sg);
            e->gcache_used[i] = ++e->gcache_tick;
        }
    }
    pthread_mutex_unlock(&e->gv_mu);
    return found;
}

void srv_engine_grammar_put(struct srv_engine *e, const char *key, size_t len,
                            struct srv_grammar *sg)
{
    if (sg->key) /* already cached (by another request) */
        return;
    char *k = malloc(len + 1);
    struct inf_matcher **idle = calloc((size_t)e->p.n_parallel, sizeof(*idle));
    if (!k || !idle) {
        free(k);
        free(idle);
        return;
    }
    memcpy(k, key, len);
    k[len] = 0;
    pthread_mutex_lock(&sg->mu);
    sg->key = k;
    sg->key_len = len;
    sg->idle = idle;
    sg->max_idle = e->p.n_parallel;
    pthread_mutex_unlock(&sg->mu);
    pthread_mutex_lock(&e->gv_mu);
    int victim = 0;
    for (int i = 0; i < SRV_GRAMMAR_CACHE; i++) {
        if (!e->gcache[i]) {
            victim = i;
            break;
        }
        if (e->gcache_used[i] < e->gcache_used[victim])
            victim = i;
    }
    struct srv_grammar *old = e->gcache[victim];
    e->gcache[victim] = grammar_ref(sg);
    e->gcache_used[victim] = ++e->gcache_tick;
    pthread_mutex_unlock(&e->gv_mu);
    srv_grammar_unref(old);
}

/* A task with owned copies of p's buffers (not queued; t->e NULL). */
static inf_status task_new(struct srv_engine *e, const struct srv_task_params *p,
                           struct srv_task **out, struct inf_error *err)
{
    *out = NULL;
    if (!p->prompt || p->n_prompt < 1)
        return inf_error_set(err, INF_EINVAL, "the prompt is empty");
    if (p->n_stop < 0 || p->n_stop > SRV_MAX_STOP)
        return inf_error_set(err, INF_EINVAL, "at most %d stop strings", SRV_MAX_STOP);
    if (p->top_logprobs < 0 || p->top_logprobs > SRV_MAX_TOP_LOGPROBS)
        return inf_error_set(err, INF_EINVAL, "top_logprobs must be in 0..%d",
                             SRV_MAX_TOP_LOGPROBS);
    for (int32_t i = 0; i < p->n_prompt; i++)
        if (p->prompt[i] < 0 || p->prompt[i] >= e->n_vocab)
            return inf_error_set(err, INF_EINVAL, "prompt token %d: id %d outside the vocabulary",
                                 (int)i, (int)p->prompt[i]);
    struct srv_task *t = calloc(1, sizeof(*t));
    if (!t)
        return inf_error_set(err, INF_ENOMEM, "out of memory");
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->cv, NULL);
    t->p = *p;
    t->p.grammar = NULL; /* referenced below */
    t->refs = 2;         /* the caller and the engine */
    t->prompt = malloc((size_t)p->n_prompt * sizeof(inf_token));
    bool oom = !t->prompt;
    if (!oom)
        memcpy(t->prompt, p->prompt, (size_t)p->n_prompt * sizeof(inf_token));
    if (p->sampling.n_logit_bias > 0 && p->sampling.logit_bias) {
        t->bias = malloc(p->sampling.n_logit_bias * sizeof(*t->bias));
        oom = oom || !t->bias;
        if (t->bias)
            memcpy(t->bias, p->sampling.logit_bias, p->sampling.n_logit_bias * sizeof(*t->bias));
    } else {
        t->p.sampling.n_logit_bias = 0;
    }
    t->p.sampling.logit_bias = t->bias;
    t->p.stop = NULL;
    t->p.prompt = NULL;
    for (int i = 0; i < p->n_stop && !oom; i++) {
        const char *s = p->stop[i] ? p->stop[i] : "";
        t->stop[i] = strdup(s);
        t->stop_len[i] = strlen(s);
        oom = !t->stop[i];
    }
    if (oom) {
        task_free(t);
        return inf_error_set(err, INF_ENOMEM, "out of memory");
    }
    if (p->grammar && p->kind == SRV_TASK_COMPLETION) {
        t->p.grammar = grammar_ref(p->grammar);
        const struct inf_grammar_vocab *v = NULL;
        inf_status rc = grammar_vocab(e, &v, err);
        if (rc == INF_OK)
            rc = grammar_take(p->grammar, v, &t->matcher, err);
        if (rc != INF_OK) {
            task_free(t);
            return rc;
        }
    }
    t->t_submit = now_ms();
    *out = t;
    return INF_OK;
}

/* Requests with a task waiting for a slot (a request's tasks are queued together, and stay in
   order). Under e->mu. */
static int waiting_requests(const struct srv_engine *e)
{
    int k = 0;
    const struct srv_task *prev = NULL;
    for (const struct srv_task *t = e->q_head; t; prev = t, t = t->qnext)
        if ((!prev || prev->group != t->group) && !t->p.background)
            k++;
    return k;
}

inf_status srv_task_submit_n(struct srv_engine *e, const struct srv_task_params *p, size_t n,
                             struct srv_task **out, struct inf_error *err)
{
    for (size_t i = 0; i < n; i++)
        out[i] = NULL;
    if (n == 0)
        return inf_error_set(err, INF_EINVAL, "no task to submit");
    for (size_t i = 0; i < n && e->encoder; i++)
        if (p[i].kind != SRV_TASK_EMBEDDING)
            return inf_error_set(err, INF_EINVAL,
                                 "'%s' is an embedding model: it serves /v1/embeddings only",
                                 e->model_id);
    /* A waiting request counts once against queue_size, so with a queue any number of choices
       can wait. Without one (queue_size 0) a request must fit in the slots at once: more
       choices than slots could never be admitted, which is the client's error (400), not a
       busy server (503 would be retried forever). */
    /* an encoder takes up to 64 inputs per pass in place of slots */
    const int room = e->encoder ? 64 : e->p.n_parallel;
    if (e->p.queue_size == 0 && n > (size_t)room)
        return inf_error_set(err, INF_EINVAL,
                             "the request has %zu choices (prompts x n, or inputs) but at most %d "
                             "fit in the server at once (server.queue_size 0, %d slots); send at "
                             "most %d or raise server.queue_size",
                             n, room, room, room);
    inf_status rc = INF_OK;
    for (size_t i = 0; i < n && rc == INF_OK; i++)
        rc = task_new(e, &p[i], &out[i], err);
    size_t n_queued = 0; /* the others are refused through an ERROR event (http_status 400) */
    for (size_t i = 0; i < n && rc == INF_OK; i++)
        n_queued += (uint32_t)p[i].n_prompt <= e->slot_ctx;

    pthread_mutex_lock(&e->mu);
    if (rc != INF_OK) {
        /* err is set */
    } else if (e->stopping) {
        rc = inf_error_set(err, INF_ECANCELED, "the server is shutting down");
    } else if (n_queued > 0) {
        /* a request that will wait counts once against queue_size, however many choices it
           has; one that free slots take at once does not wait */
        int free_slots = e->encoder ? 64 : 0;
        for (int i = 0; i < e->p.n_parallel && !e->encoder; i++)
            if (!e->slots[i].task)
                free_slots++;
        int waiting = waiting_requests(e);
        if (!p[0].background && (size_t)e->q_len + n_queued > (size_t)free_slots &&
            waiting >= e->p.queue_size)
            rc = inf_error_set(err, INF_ELIMIT, "the queue is full (%d requests waiting)", waiting);
    }
    if (rc != INF_OK) {
        pthread_mutex_unlock(&e->mu);
        for (size_t i = 0; i < n; i++) {
            if (out[i])
                task_free(out[i]);
            out[i] = NULL;
        }
        return rc;
    }
    const uint64_t group = ++e->next_group;
    for (size_t i = 0; i < n; i++) {
        struct srv_task *t = out[i];
        e->refs++;
        t->e = e;
        t->group = group;
        t->step_submit = e->st.steps_total;
        e->st.tasks_total++;
        if ((uint32_t)t->p.n_prompt > e->slot_ctx)
            continue;
        if (e->q_tail)
            e->q_tail->qnext = t;
        else
            e->q_head = t;
        e->q_tail = t;
        e->q_len++;
    }
    pthread_cond_broadcast(&e->cv);
    pthread_mutex_unlock(&e->mu);
    for (size_t i = 0; i < n; i++) {
        struct srv_task *t = out[i];
        if ((uint32_t)t->p.n_prompt <= e->slot_ctx)
            continue;
        if (e->encoder)
            task_error(t, 400, "the input has %d tokens; the model takes at most %u",
                       (int)t->p.n_prompt, e->slot_ctx);
        else
            task_error(
                t, 400,
                "the prompt has %d tokens but a slot holds at most %u (context %u shared by %d "
                "slots)",
                (int)t->p.n_prompt, e->slot_ctx, inf_context_n_ctx(e->ctx), e->p.n_parallel);
        t->refs = 1; /* the engine never holds it */
    }
    return INF_OK;
}

inf_status srv_task_submit(struct srv_engine *e, const struct srv_task_params *p,
                           struct srv_task **out, struct inf_error *err)
{
    return srv_task_submit_n(e, p, 1, out, err);
}

void srv_task_cancel(struct srv_task *t)
{
    if (!t)
        return;
    pthread_mutex_lock(&t->mu);
    bool finished = t->finished;
    pthread_mutex_unlock(&t->mu);
    if (finished)
        return;
    atomic_store(&t->cancel, true);
    /* t holds a reference on its engine, so e is alive here (none: a replayed task) */
    struct srv_engine *e = t->e;
    if (!e)
        return;
    pthread_mutex_lock(&e->mu);
    pthread_cond_broadcast(&e->cv);
    pthread_mutex_unlock(&e->mu);
}

void srv_task_release(struct srv_task *t)
{
    if (!t)
        return;
    srv_task_cancel(t);
    task_unref(t);
}
