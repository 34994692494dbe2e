/*
 * server/sched.h - the server's engine side: one engine thread per loaded model owns the model's
 * context and its slots and runs the continuous-batching loop; HTTP workers talk to it only
 * through tasks (submit, read events, cancel). Nothing here touches a socket.
 *
 * Threads:
 *   - HTTP workers parse and validate requests, apply the chat template and tokenize (the
 *     tokenizer and the model are read-only and shared), then srv_task_submit() and read the
 *     task's events with srv_task_next() until SRV_EV_DONE or SRV_EV_ERROR.
 *   - The engine thread waits for work, admits queued tasks into free slots (choosing the slot
 *     whose cached tokens share the longest prefix with the prompt), and each step builds one
 *     inf_batch of at most n_batch tokens: the next token of every generating slot (always, so
 *     that generation never stalls behind prompts), then the waiting prompts' tokens, oldest
 *     request first, each taking as much of the rest as it needs. A prompt that does not fit
 *     continues in the next steps. Then it decodes the batch, samples, and pushes events to each
 *     task's queue. Embeddings are decoded one at a time in their own context, in chunks that
 *     take their place in that oldest-first share of n_batch, so generation goes on meanwhile.
 *
 * Slots: n_parallel slots share one context of n_ctx cells; each slot is one KV sequence and
 * may hold at most n_ctx / n_parallel cells (srv_engine_slot_ctx()). A prompt longer than that
 * fails with SRV_EV_ERROR (http_status 400, message giving both numbers); generation that
 * reaches the slot's end finishes with SRV_FINISH_LENGTH.
 */
#ifndef INFERNO_SERVER_SCHED_H
#define INFERNO_SERVER_SCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "inferno/engine.h"
#include "inferno/sampling.h"
#include "inferno/status.h"

#define SRV_MAX_TOP_LOGPROBS 20
#define SRV_MAX_STOP         16

struct srv_engine;
struct srv_task;
struct inf_grammar;

/* ---- grammars -------------------------------------------------------------------------- */

/*
 * A compiled grammar shared by the tasks of one request (reference counted: the request and
 * every task holding it). srv_grammar_new takes g over (and frees it when out of memory:
 * NULL); the last srv_grammar_unref frees it, from whichever thread drops it.
 */
struct srv_grammar;
struct srv_grammar *srv_grammar_new(struct inf_grammar *g);
void srv_grammar_unref(struct srv_grammar *g);

/*
 * Each engine keeps the SRV_GRAMMAR_CACHE grammars used last, by a key the caller makes (the
 * kind of grammar and its source text), with the matchers of their finished tasks (at most
 * n_parallel each): a request that sends the same schema again skips the compilation, and its
 * matchers come with the transitions and masks that earlier requests computed. get: a new
 * reference, or NULL. put: the cache takes its own reference (the least recently used entry
 * goes); any thread.
 */
#define SRV_GRAMMAR_CACHE 8
struct srv_grammar *srv_engine_grammar_get(struct srv_engine *e, const char *key, size_t len);
void srv_engine_grammar_put(struct srv_engine *e, const char *key, size_t len,
                            struct srv_grammar *g);

/* ---- engine ---------------------------------------------------------------------------- */

/* Batch invariance (backend.deterministic): the forward passes that run deterministic (see
 * inf_context_set_deterministic). AUTO: those carrying tokens of a temperature-0 task; such a
 * task reuses a slot's cached prefix only when every pass that computed it was deterministic. */
enum srv_determinism {
    SRV_DET_OFF,
    SRV_DET_AUTO,
    SRV_DET_ON,
};

struct srv_engine_params {
    const char *model_path;
    const char *model_id; /* the name clients use in "model" */
    uint32_t n_ctx;       /* total KV cells shared by the slots */
    int n_parallel;       /* slots (KV sequences), 1..64 */
    uint32_t n_batch;     /* most tokens per forward pass */
    int n_threads;        /* 0 = physical cores */
    enum inf_kv_type kv_type;
    int queue_size; /* requests waiting for a slot before submit answers INF_ELIMIT */
    /* Before a step that would carry only prompt tokens (no slot generating) while a slot is
       free: wait until this long after the newest arrival (at most twice this in all; early
       once every slot is taken), so that a burst of requests shares one pass over the weights.
       0 = never wait. */
    int batch_wait_ms;
    bool use_mmap, use_mlock, huge_pages;
    enum srv_determinism determinism;
};

/* Load the model, create the context and start the engine thread. */
inf_status srv_engine_start(const struct srv_engine_params *p, struct srv_engine **out,
                            struct inf_error *err);
/*
 * Stop the engine: no new tasks are admitted (submit answers INF_ECANCELED); running tasks may
 * finish until drain_ms has passed, then every task still running or queued is cancelled
 * (SRV_EV_DONE with SRV_FINISH_CANCELLED). Joins the thread and frees everything once the
 * last task reference is released.
 */
void srv_engine_stop(struct srv_engine *e, int drain_ms);

/* Read-only views, valid while the engine lives; safe from any thread. */
const struct inf_model *srv_engine_model(const struct srv_engine *e);
const struct inf_tokenizer *srv_engine_tokenizer(const struct srv_engine *e);
const char *srv_engine_model_id(const struct srv_engine *e);
const char *srv_engine_model_path(const struct srv_engine *e); /* the file it was loaded from */
uint32_t srv_engine_slot_ctx(const struct srv_engine *e);      /* cells per slot */
int srv_engine_n_parallel(const struct srv_engine *e);
/* true while no task is running or queued (used by the LRU unloader). */
bool srv_engine_idle(const struct srv_engine *e);

/* Latency histogram with fixed upper bounds in seconds (Prometheus style, cumulative on output). */
#define SRV_HIST_BUCKETS 14
extern const double srv_hist_bounds[SRV_HIST_BUCKETS]; /* 0.005 .. 60 s; +Inf implied */
struct srv_hist {
    uint64_t count[SRV_HIST_BUCKETS + 1]; /* per bucket (not cumulative), last = +Inf */
    double sum;
    uint64_t n;
};

struct srv_engine_stats {
    int slots_total, slots_busy;
    int queue_depth;
    uint32_t kv_cells_total, kv_cells_used;
    uint64_t prompt_tokens_total; /* processed by decode (cached prefixes not counted) */
    uint64_t cached_tokens_total; /* prompt tokens reused from a slot's cache */
    uint64_t generated_tokens_total;
    uint64_t steps_total;        /* forward passes (inf_decode calls) of the slots' context */
    uint64_t batch_tokens_total; /* tokens those passes carried (generation + prompt) */
    uint64_t tasks_total, tasks_cancelled;
    uint64_t tasks_preempted; /* background tasks ended to free a slot for a live one */
    double load_ms;
    struct srv_hist ttft;      /* submit -> first generated token */
    struct srv_hist per_token; /* between generated tokens of one task */
};
/* A consistent snapshot (taken under the engine's lock). */
void srv_engine_stats(struct srv_engine *e, struct srv_engine_stats *out);

/* ---- tasks ----------------------------------------------------------------------------- */

enum srv_task_kind {
    SRV_TASK_COMPLETION, /* generate after a prompt */
    SRV_TASK_EMBEDDING,  /* pooled embedding of the prompt (normalised, L2) */
};

struct srv_task_params {
    enum srv_task_kind kind;
    const inf_token *prompt;            /* copied by submit */
    int32_t n_prompt;                   /* >= 1 */
    int32_t max_tokens;                 /* < 0: until EOG or the slot's end; 0: no generation */
    struct inf_sampler_params sampling; /* logit_bias copied by submit */
    bool ignore_eos;
    const char *const *stop; /* stop strings (copied), at most SRV_MAX_STOP */
    int n_stop;
    /* logprobs of generated tokens: log-softmax of the model's raw logits */
    bool logprobs;
    int top_logprobs;         /* 0..SRV_MAX_TOP_LOGPROBS alternatives per token */
    bool prompt_logprobs;     /* also the prompt tokens' logprobs (completions echo); disables
                                 prefix reuse for this task, since every position is scored */
    enum inf_pooling pooling; /* EMBEDDING: INF_POOL_NONE = the model's (mean when undeclared) */
    /* COMPLETION: constrain the output to this grammar (NULL: free text). Submit takes a
       reference and makes the task's matcher (building the engine's token table for grammars
       on first use); each step then samples only among the tokens the grammar allows, an end
       token only where it may end, and the task finishes with SRV_FINISH_STOP once the grammar
       is complete. */
    struct srv_grammar *grammar;
    /* under SRV_DET_AUTO, run this task's passes batch-invariant as a temperature-0 task's are
       (the response cache sets it for the seeded requests it stores) */
    bool deterministic;
    /* batch work (the Batch API, the job queue): admitted only while no live task waits for a
       slot, preempted when one does (the task ends with SRV_EV_ERROR, http_status 503, and its
       submitter runs it again later); not counted against queue_size */
    bool background;
};

enum srv_event_type {
    SRV_EV_TEXT,            /* text released by one step, with the tokens that made it */
    SRV_EV_PROMPT_LOGPROBS, /* once, before any TEXT, when prompt_logprobs was asked */
    SRV_EV_EMBEDDING,       /* EMBEDDING tasks: the vector, then DONE */
    SRV_EV_DONE,            /* last event of a task that ran */
    SRV_EV_ERROR,           /* last event of a task that failed (nothing else follows) */
};

enum srv_finish {
    SRV_FINISH_STOP,      /* end-of-generation token, a stop string or a complete grammar */
    SRV_FINISH_LENGTH,    /* max_tokens or the slot's context end */
    SRV_FINISH_CANCELLED, /* srv_task_cancel or engine stop */
};

struct srv_top_logprob {
    inf_token id;
    float logprob;
};

struct srv_token_info {
    inf_token id;
    float logprob; /* NAN for the first prompt token (nothing predicts it) */
    int32_t n_top;
    struct srv_top_logprob top[SRV_MAX_TOP_LOGPROBS]; /* best first */
};

struct srv_usage {
    int32_t prompt_tokens;
    int32_t cached_tokens; /* of prompt_tokens, reused from the slot's cache */
    int32_t completion_tokens;
    double ttft_ms, gen_ms; /* submit -> first token; first token -> done */
    int32_t ttft_steps;     /* forward passes that ended between submit and the first token,
                               the one that produced it included (0: no token) */
};

struct srv_event {
    enum srv_event_type type;
    /* TEXT: newly visible UTF-8 text (stop strings and any text that may still become one are
       withheld; a stop string itself is never released). May be empty (len 0, non-NULL). */
    char *text;
    size_t text_len;
    /* TEXT: the tokens sampled in this step (one, normally), logprob fields filled when asked.
       PROMPT_LOGPROBS: one entry per prompt token. */
    struct srv_token_info *tokens;
    int32_t n_tokens;
    /* EMBEDDING */
    float *embedding;
    int32_t n_embd;
    /* DONE */
    enum srv_finish finish;
    struct srv_usage usage;
    /* ERROR: an HTTP status that fits (400 context overflow, 500 engine failure, 503 stopping) */
    int http_status;
    char message[INF_ERROR_MSG_MAX];
};

/*
 * Queue a task. INF_ELIMIT when the wait queue is full (HTTP: 503 with Retry-After),
 * INF_ECANCELED when the engine is stopping, INF_EINVAL for bad parameters (message says which).
 * On success *out holds one reference for the caller.
 */
inf_status srv_task_submit(struct srv_engine *e, const struct srv_task_params *p,
                           struct srv_task **out, struct inf_error *err);
/*
 * Queue the n tasks of one request (p[0..n), out[0..n)) together: all or none. The queue bound
 * counts requests, not tasks: a request that has to wait takes one of queue_size places however
 * many tasks it has (INF_ELIMIT when none is left). With queue_size 0 nothing may wait, and a
 * request with more tasks than n_parallel could never be held: INF_EINVAL, the message naming
 * that limit.
 */
inf_status srv_task_submit_n(struct srv_engine *e, const struct srv_task_params *p, size_t n,
                             struct srv_task **out, struct inf_error *err);

/*
 * Next event, waiting up to timeout_ms (< 0: forever). Returns false on timeout. The event's
 * buffers belong to the caller: free them with srv_event_clear. After DONE or ERROR no more
 * events come.
 */
bool srv_task_next(struct srv_task *t, struct srv_event *ev, int timeout_ms);
void srv_event_clear(struct srv_event *ev);

/*
 * A tap on a task (the response cache records answers with it): on_event sees every event that
 * srv_task_next returns, on the reading thread, before the caller uses it (index: the caller's
 * number for the task); on_free runs once when the task is freed, on whichever thread drops the
 * last reference. Set it right after submit, before the first srv_task_next.
 */
struct srv_task_tap {
    void (*on_event)(void *ctx, int index, const struct srv_event *ev);
    void (*on_free)(void *ctx);
    void *ctx;
    int index;
};
void srv_task_set_tap(struct srv_task *t, const struct srv_task_tap *tap);

/*
 * A finished task that replays evs[0..n) (a cached answer): srv_task_next returns them in order
 * and no engine is involved. Takes the events' buffers (evs[] is zeroed). Release as any task.
 */
inf_status srv_task_replay(struct srv_event *evs, size_t n, struct srv_task **out,
                           struct inf_error *err);

/* Ask the engine to drop the task; its slot is freed at the next step. Idempotent, any thread. */
void srv_task_cancel(struct srv_task *t);
/* Drop the caller's reference (cancels the task first if it has not finished). */
void srv_task_release(struct srv_task *t);

/* ---- models ---------------------------------------------------------------------------- */

/*
 * The set of models the server can serve and the engines currently loaded: at most max_loaded
 * stay loaded, and one more is added only while memory allows (MemAvailable against the file's
 * size and half of it again); otherwise loading one replaces the least recently used idle
 * engine. The new engine is loaded before the old one is unloaded: a load that fails changes
 * nothing.
 */
struct srv_models;

struct srv_model_entry {
    char id[256]; /* what clients put in "model" */
    char path[4096];
    int64_t created; /* file mtime, for /v1/models */
    bool loaded;
};

struct srv_models_params {
    const char *const *model_paths; /* from -m / config, served under their file stem */
    int n_model_paths;
    const char *const *model_ids; /* their ids, or NULL (an entry NULL): the file stem */
    const char *models_dir;       /* any model found there (may be NULL) */
    const char *models_db; /* the model database: registered names become ids (may be NULL) */
    int max_loaded;
    struct srv_engine_params engine; /* template: model_path / model_id are filled per model */
};

inf_status srv_models_new(const struct srv_models_params *p, struct srv_models **out,
                          struct inf_error *err);
void srv_models_free(struct srv_models *m, int drain_ms);

/* Snapshot of the servable models (caller frees *out with free()). */
inf_status srv_models_list(struct srv_models *m, struct srv_model_entry **out, size_t *n,
                           struct inf_error *err);
/*
 * The engine for a model id (NULL or "" = the first/default model), loading it on first use.
 * INF_ENOTFOUND (404) for an unknown id; INF_ELIMIT (503, retry later) when it would have to
 * replace a loaded engine and every one is busy. The engine is pinned until srv_models_unpin().
 */
inf_status srv_models_acquire(struct srv_models *m, const char *id, struct srv_engine **out,
                              struct inf_error *err);
void srv_models_unpin(struct srv_models *m, struct srv_engine *e);

/* OK while any model is loaded (a failed or running load of another one does not matter);
   otherwise LOADING during a load, ERROR after a failed one. */
enum srv_health { SRV_HEALTH_OK, SRV_HEALTH_LOADING, SRV_HEALTH_ERROR };
enum srv_health srv_models_health(struct srv_models *m);
/* Engines loaded now, and the most that stay loaded (server.max_loaded_models). */
void srv_models_counts(struct srv_models *m, int *loaded, int *max_loaded);

/* Ollama's keep_alive for a model: unload it once idle after `seconds` (0: as soon as it is
   idle; < 0: never, the default). INF_ENOTFOUND for an unknown id. */
inf_status srv_models_keep_alive(struct srv_models *m, const char *id, double seconds);
/* Unload the idle models whose keep_alive has passed (called on a timer). */
void srv_models_expire(struct srv_models *m);

struct srv_loaded_model {
    struct srv_model_entry entry;
    int64_t expires_at; /* Unix seconds; 0 = no expiry */
    uint32_t slot_ctx;
};
/* Snapshot of the loaded models (caller frees *out with free()). */
inf_status srv_models_loaded(struct srv_models *m, struct srv_loaded_model **out, size_t *n,
                             struct inf_error *err);
/* The models_dir the set was made from (NULL when none): where /api/copy writes. */
const char *srv_models_dir(const struct srv_models *m);
/* A name added (/api/copy; INF_EEXIST when taken) or removed (/api/delete; INF_ELIMIT while in
   use, INF_EINVAL for the last one). */
inf_status srv_models_add(struct srv_models *m, const char *id, const char *path,
                          struct inf_error *err);
inf_status srv_models_remove(struct srv_models *m, const char *id, struct inf_error *err);

/* Call fn for each loaded engine (for /health and /metrics), under the models lock. */
void srv_models_each_loaded(struct srv_models *m, void (*fn)(struct srv_engine *e, void *user),
                            void *user);

#endif
