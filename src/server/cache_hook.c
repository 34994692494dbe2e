/*
 * cache_hook.c - the response cache in the server (cache_hook.h): keys, recording, replay,
 * single flight. An answer is stored as the events of its tasks, not as response bytes, so one
 * entry serves a streamed and an unstreamed request alike (stream is not in the key) and the
 * replay goes through the same formatting code as a live answer.
 */
#include "server/cache_hook.h"

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inferno/log.h"
#include "server/response.h"

#define WAIT_SLICE_MS   100
#define BLOB_MAGIC      0x31524e49u /* "INR1" */
#define BLOB_MAX_EVENTS (1u << 24)

struct cache_flight {
    uint8_t key[INF_CACHE_KEY_BYTES];
    int refs; /* under sc->mu */
    bool done, ok;
    uint8_t *blob;
    size_t len;
    struct cache_flight *next;
};

struct srv_cache {
    struct inf_cache *store;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct cache_flight *flights;
    atomic_uint_least64_t hits, misses, bypasses, stored, stored_bytes, coalesced;
};

struct cache_rec {
    struct srv_cache *sc;
    pthread_mutex_t mu;
    int refs;
    size_t n;
    struct srv_event **evs;
    size_t *n_evs, *cap_evs;
    size_t n_done;
    bool failed, finished;
    uint8_t key[INF_CACHE_KEY_BYTES];
    char model[256];
    struct cache_flight *flight;
};

/* ---- the server's cache ------------------------------------------------------------------------
 */

struct srv_cache *srv_cache_new(struct inf_cache *store)
{
    struct srv_cache *sc = calloc(1, sizeof(*sc));
    if (!sc)
        return NULL;
    sc->store = store;
    pthread_mutex_init(&sc->mu, NULL);
    pthread_cond_init(&sc->cv, NULL);
    return sc;
}

void srv_cache_free(struct srv_cache *sc)
{
    if (!sc)
        return;
    inf_cache_free(sc->store);
    pthread_mutex_destroy(&sc->mu);
    pthread_cond_destroy(&sc->cv);
    free(sc);
}

void srv_cache_counters(struct srv_cache *sc, struct srv_cache_counters *out)
{
    memset(out, 0, sizeof(*out));
    out->hits = atomic_load(&sc->hits);
    out->misses = atomic_load(&sc->misses);
    out->bypasses = atomic_load(&sc->bypasses);
    out->stored = atomic_load(&sc->stored);
    out->stored_bytes = atomic_load(&sc->stored_bytes);
    out->coalesced = atomic_load(&sc->coalesced);
    struct inf_cache_stats st;
    if (inf_cache_stats(sc->store, &st, NULL) == INF_OK) {
        out->evictions = st.evictions + st.expired;
        out->corrupt = st.corrupt;
    }
}

/* ---- the blob: the events of a request's tasks ----------------------------------------------- */

struct wbuf {
    uint8_t *d;
    size_t n, cap;
    bool oom;
};

static void w_bytes(struct wbuf *w, const void *p, size_t n)
{
    if (w->oom)
        return;
    if (w->n + n > w->cap) {
        size_t nc = w->cap ? w->cap : 1024;
        while (nc < w->n + n)
            nc *= 2;
        uint8_t *d = realloc(w->d, nc);
        if (!d) {
            w->oom = true;
            return;
        }
        w->d = d;
        w->cap = nc;
    }
    memcpy(w->d + w->n, p, n);
    w->n += n;
}

static void w_u32(struct wbuf *w, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    w_bytes(w, b, 4);
}

static void w_f32(struct wbuf *w, float f)
{
    uint32_t v;
    memcpy(&v, &f, 4);
    w_u32(w, v);
}

static void w_f64(struct wbuf *w, double f)
{
    uint64_t v;
    memcpy(&v, &f, 8);
    w_u32(w, (uint32_t)v);
    w_u32(w, (uint32_t)(v >> 32));
}

static void w_tokens(struct wbuf *w, const struct srv_token_info *t, int32_t n)
{
    w_u32(w, (uint32_t)(n > 0 ? n : 0));
    for (int32_t i = 0; i < n; i++) {
        w_u32(w, (uint32_t)t[i].id);
        w_f32(w, t[i].logprob);
        int32_t k = t[i].n_top < 0                      ? 0
                    : t[i].n_top > SRV_MAX_TOP_LOGPROBS ? SRV_MAX_TOP_LOGPROBS
                                                        : t[i].n_top;
        w_u32(w, (uint32_t)k);
        for (int32_t j = 0; j < k; j++) {
            w_u32(w, (uint32_t)t[i].top[j].id);
            w_f32(w, t[i].top[j].logprob);
        }
    }
}

bool cache_blob_encode(struct srv_event *const *evs, const size_t *n_evs, size_t n_tasks,
                       uint8_t **out, size_t *out_len)
{
    struct wbuf w = {0};
    w_u32(&w, BLOB_MAGIC);
    w_u32(&w, (uint32_t)n_tasks);
    for (size_t t = 0; t < n_tasks; t++) {
        w_u32(&w, (uint32_t)n_evs[t]);
        for (size_t i = 0; i < n_evs[t]; i++) {
            const struct srv_event *e = &evs[t][i];
            uint8_t type = (uint8_t)e->type;
            w_bytes(&w, &type, 1);
            switch (e->type) {
            case SRV_EV_TEXT:
                w_u32(&w, (uint32_t)e->text_len);
                if (e->text_len)
                    w_bytes(&w, e->text, e->text_len);
                w_tokens(&w, e->tokens, e->n_tokens);
                break;
            case SRV_EV_PROMPT_LOGPROBS:
                w_tokens(&w, e->tokens, e->n_tokens);
                break;
            case SRV_EV_DONE: {
                uint8_t f = (uint8_t)e->finish;
                w_bytes(&w, &f, 1);
                w_u32(&w, (uint32_t)e->usage.prompt_tokens);
                w_u32(&w, (uint32_t)e->usage.cached_tokens);
                w_u32(&w, (uint32_t)e->usage.completion_tokens);
                w_f64(&w, e->usage.ttft_ms);
                w_f64(&w, e->usage.gen_ms);
                w_u32(&w, (uint32_t)e->usage.ttft_steps);
                break;
            }
            default: /* embeddings and errors are never stored */
                free(w.d);
                return false;
            }
        }
    }
    if (w.oom) {
        free(w.d);
        return false;
    }
    *out = w.d;
    *out_len = w.n;
    return true;
}

struct rbuf {
    const uint8_t *d;
    size_t n, off;
    bool bad;
};

static bool r_bytes(struct rbuf *r, void *p, size_t n)
{
    if (r->bad || n > r->n - r->off) {
        r->bad = true;
        return false;
    }
    memcpy(p, r->d + r->off, n);
    r->off += n;
    return true;
}

static uint32_t r_u32(struct rbuf *r)
{
    uint8_t b[4] = {0};
    r_bytes(r, b, 4);
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

static float r_f32(struct rbuf *r)
{
    uint32_t v = r_u32(r);
    float f;
    memcpy(&f, &v, 4);
    return f;
}

static double r_f64(struct rbuf *r)
{
    uint64_t lo = r_u32(r), hi = r_u32(r);
    uint64_t v = lo | hi << 32;
    double f;
    memcpy(&f, &v, 8);
    return f;
}

static bool r_tokens(struct rbuf *r, struct srv_token_info **out, int32_t *n_out)
{
    uint32_t n = r_u32(r);
    /* each token takes at least 12 bytes: bound the count by what is left before allocating */
    if (r->bad || n > (r->n - r->off) / 12 || n > INT32_MAX)
        return !(r->bad = true);
    *out = NULL;
    *n_out = 0;
    if (!n)
        return true;
    struct srv_token_info *t = calloc(n, sizeof(*t));
    if (!t)
        return !(r->bad = true);
    for (uint32_t i = 0; i < n && !r->bad; i++) {
        t[i].id = (inf_token)r_u32(r);
        t[i].logprob = r_f32(r);
        uint32_t k = r_u32(r);
        if (k > SRV_MAX_TOP_LOGPROBS) {
            r->bad = true;
            break;
        }
        t[i].n_top = (int32_t)k;
        for (uint32_t j = 0; j < k; j++) {
            t[i].top[j].id = (inf_token)r_u32(r);
            t[i].top[j].logprob = r_f32(r);
        }
    }
    if (r->bad) {
        free(t);
        return false;
    }
    *out = t;
    *n_out = (int32_t)n;
    return true;
}

void cache_blob_free(struct srv_event **evs, size_t *n_evs, size_t n_tasks)
{
    for (size_t t = 0; evs && t < n_tasks; t++) {
        for (size_t i = 0; evs[t] && i < n_evs[t]; i++)
            srv_event_clear(&evs[t][i]);
        free(evs[t]);
    }
    free(evs);
    free(n_evs);
}

bool cache_blob_decode(const uint8_t *d, size_t n, size_t expect_tasks, struct srv_event ***evs_out,
                       size_t **n_evs_out)
{
    struct rbuf r = {.d = d, .n = n};
    *evs_out = NULL;
    *n_evs_out = NULL;
    if (r_u32(&r) != BLOB_MAGIC || r.bad)
        return false;
    uint32_t n_tasks = r_u32(&r);
    if (r.bad || n_tasks != expect_tasks || n_tasks == 0 || n_tasks > API_MAX_INPUTS)
        return false;
    struct srv_event **evs = calloc(n_tasks, sizeof(*evs));
    size_t *n_evs = calloc(n_tasks, sizeof(*n_evs));
    if (!evs || !n_evs) {
        free(evs);
        free(n_evs);
        return false;
    }
    for (uint32_t t = 0; t < n_tasks && !r.bad; t++) {
        uint32_t ne = r_u32(&r);
        /* every event takes at least 5 bytes; the last must be DONE */
        if (r.bad || ne == 0 || ne > BLOB_MAX_EVENTS || ne > (r.n - r.off) / 5) {
            r.bad = true;
            break;
        }
        evs[t] = calloc(ne, sizeof(**evs));
        if (!evs[t]) {
            r.bad = true;
            break;
        }
        for (uint32_t i = 0; i < ne && !r.bad; i++) {
            struct srv_event *e = &evs[t][i];
            n_evs[t] = i + 1;
            uint8_t type = 0xff;
            r_bytes(&r, &type, 1);
            bool last = i + 1 == ne;
            switch (type) {
            case SRV_EV_TEXT: {
                uint32_t tl = r_u32(&r);
                if (r.bad || tl > r.n - r.off) {
                    r.bad = true;
                    break;
                }
                e->type = SRV_EV_TEXT;
                e->text = malloc((size_t)tl + 1);
                if (!e->text) {
                    r.bad = true;
                    break;
                }
                r_bytes(&r, e->text, tl);
                e->text[tl] = '\0';
                e->text_len = tl;
                r_tokens(&r, &e->tokens, &e->n_tokens);
                r.bad = r.bad || last;
                break;
            }
            case SRV_EV_PROMPT_LOGPROBS:
                e->type = SRV_EV_PROMPT_LOGPROBS;
                r_tokens(&r, &e->tokens, &e->n_tokens);
                r.bad = r.bad || last;
                break;
            case SRV_EV_DONE: {
                e->type = SRV_EV_DONE;
                uint8_t f = 0xff;
                r_bytes(&r, &f, 1);
                if (f != SRV_FINISH_STOP && f != SRV_FINISH_LENGTH) {
                    r.bad = true;
                    break;
                }
                e->finish = (enum srv_finish)f;
                e->usage.prompt_tokens = (int32_t)r_u32(&r);
                e->usage.cached_tokens = (int32_t)r_u32(&r);
                e->usage.completion_tokens = (int32_t)r_u32(&r);
                e->usage.ttft_ms = r_f64(&r);
                e->usage.gen_ms = r_f64(&r);
                e->usage.ttft_steps = (int32_t)r_u32(&r);
                if (e->usage.prompt_tokens < 0 || e->usage.cached_tokens < 0 ||
                    e->usage.completion_tokens < 0 || !last)
                    r.bad = true;
                break;
            }
            default:
                r.bad = true;
            }
        }
    }
    if (r.bad || r.off != r.n) {
        cache_blob_free(evs, n_evs, n_tasks);
        return false;
    }
    *evs_out = evs;
    *n_evs_out = n_evs;
    return true;
}

/* ---- flights
 * --------------------------------------------------------------------------------------- */

static void flight_unref_locked(struct srv_cache *sc, struct cache_flight *fl)
{
    if (--fl->refs > 0)
        return;
    if (!fl->done) { /* still listed */
        struct cache_flight **pp = &sc->flights;
        while (*pp && *pp != fl)
            pp = &(*pp)->next;
        if (*pp)
            *pp = fl->next;
    }
    free(fl->blob);
    free(fl);
}

/* The leader's result (blob NULL: failed; the waiters compute it themselves). Drops the
   leader's reference. */
static void flight_finish(struct srv_cache *sc, struct cache_flight *fl, const uint8_t *blob,
                          size_t len)
{
    pthread_mutex_lock(&sc->mu);
    struct cache_flight **pp = &sc->flights;
    while (*pp && *pp != fl)
        pp = &(*pp)->next;
    if (*pp)
        *pp = fl->next;
    fl->done = true;
    if (blob && (fl->blob = malloc(len ? len : 1))) {
        memcpy(fl->blob, blob, len);
        fl->len = len;
        fl->ok = true;
    }
    pthread_cond_broadcast(&sc->cv);
    flight_unref_locked(sc, fl);
    pthread_mutex_unlock(&sc->mu);
}

/* ---- recording
 * --------------------------------------------------------------------------------------- */

static void rec_store(struct cache_rec *rec)
{
    uint8_t *blob = NULL;
    size_t len = 0;
    bool ok = cache_blob_encode(rec->evs, rec->n_evs, rec->n, &blob, &len);
    if (ok) {
        struct inf_error err = {0};
        inf_status st = inf_cache_put(rec->sc->store, rec->key, rec->model, blob, len, &err);
        if (st == INF_OK) {
            atomic_fetch_add(&rec->sc->stored, 1);
            atomic_fetch_add(&rec->sc->stored_bytes, len);
        } else if (st != INF_ELIMIT) {
            INF_LOG_DEBUG("cache", "answer not stored: %s", inf_error_message(&err));
        }
    }
    if (rec->flight) {
        flight_finish(rec->sc, rec->flight, ok ? blob : NULL, len);
        rec->flight = NULL;
    }
    free(blob);
}

static void rec_unref(struct cache_rec *rec)
{
    pthread_mutex_lock(&rec->mu);
    bool last = --rec->refs == 0;
    pthread_mutex_unlock(&rec->mu);
    if (!last)
        return;
    if (rec->flight) /* never completed: the waiters compute it themselves */
        flight_finish(rec->sc, rec->flight, NULL, 0);
    cache_blob_free(rec->evs, rec->n_evs, rec->n);
    free(rec->cap_evs);
    pthread_mutex_destroy(&rec->mu);
    free(rec);
}

static bool copy_tokens(struct srv_token_info **dst, const struct srv_token_info *src, int32_t n)
{
    *dst = NULL;
    if (n <= 0 || !src)
        return true;
    *dst = malloc((size_t)n * sizeof(**dst));
    if (!*dst)
        return false;
    memcpy(*dst, src, (size_t)n * sizeof(**dst));
    return true;
}

static void rec_event(void *ctx, int index, const struct srv_event *ev)
{
    struct cache_rec *rec = ctx;
    bool complete = false;
    pthread_mutex_lock(&rec->mu);
    if (rec->failed || rec->finished || index < 0 || (size_t)index >= rec->n) {
        pthread_mutex_unlock(&rec->mu);
        return;
    }
    size_t t = (size_t)index;
    if (ev->type == SRV_EV_ERROR || ev->type == SRV_EV_EMBEDDING ||
        (ev->type == SRV_EV_DONE && ev->finish == SRV_FINISH_CANCELLED)) {
        rec->failed = true;
        pthread_mutex_unlock(&rec->mu);
        return;
    }
    if (rec->n_evs[t] == rec->cap_evs[t]) {
        size_t nc = rec->cap_evs[t] ? rec->cap_evs[t] * 2 : 64;
        void *p = realloc(rec->evs[t], nc * sizeof(**rec->evs));
        if (!p) {
            rec->failed = true;
            pthread_mutex_unlock(&rec->mu);
            return;
        }
        rec->evs[t] = p;
        rec->cap_evs[t] = nc;
    }
    struct srv_event *e = &rec->evs[t][rec->n_evs[t]];
    memset(e, 0, sizeof(*e));
    e->type = ev->type;
    bool ok = true;
    if (ev->type == SRV_EV_TEXT) {
        e->text = malloc(ev->text_len + 1);
        ok = e->text != NULL;
        if (ok) {
            if (ev->text_len)
                memcpy(e->text, ev->text, ev->text_len);
            e->text[ev->text_len] = '\0';
            e->text_len = ev->text_len;
        }
    }
    if (ok && (ev->type == SRV_EV_TEXT || ev->type == SRV_EV_PROMPT_LOGPROBS)) {
        ok = copy_tokens(&e->tokens, ev->tokens, ev->n_tokens);
        e->n_tokens = e->tokens ? ev->n_tokens : 0;
    }
    if (ev->type == SRV_EV_DONE) {
        e->finish = ev->finish;
        e->usage = ev->usage;
    }
    rec->n_evs[t]++;
    if (!ok) {
        rec->failed = true;
    } else if (ev->type == SRV_EV_DONE && ++rec->n_done == rec->n) {
        rec->finished = complete = true;
    }
    pthread_mutex_unlock(&rec->mu);
    if (complete)
        rec_store(rec); /* the reader's thread: before the response is finished */
}

static void rec_free_cb(void *ctx)
{
    rec_unref(ctx);
}

/* ---- the request's side
 * --------------------------------------------------------------------------- */

void cache_req_init(struct cache_req *cq, struct http_req *r)
{
    memset(cq, 0, sizeof(*cq));
    cq->sc = r->params->cache;
    cq->state = CACHE_OFF; /* until cache_key_begin decides */
}

static void key_add(struct cache_req *cq, const void *d, size_t n)
{
    if (cq->md && EVP_DigestUpdate(cq->md, d, n) != 1)
        cq->key_failed = true;
}

void cache_key_u64(struct cache_req *cq, uint64_t v)
{
    uint8_t b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(v >> (8 * i));
    key_add(cq, b, 8);
}

void cache_key_bytes(struct cache_req *cq, const void *d, size_t n)
{
    cache_key_u64(cq, n);
    if (n)
        key_add(cq, d, n);
}

static void key_str(struct cache_req *cq, const char *s)
{
    cache_key_bytes(cq, s ? s : "", s ? strlen(s) : 0);
}

static void key_f32(struct cache_req *cq, float f)
{
    uint32_t v;
    memcpy(&v, &f, 4);
    cache_key_u64(cq, v);
}

void cache_key_tokens(struct cache_req *cq, const inf_token *ids, size_t n)
{
    cache_key_u64(cq, n);
    for (size_t i = 0; i < n; i++)
        cache_key_u64(cq, (uint32_t)ids[i]);
}

void cache_key_json(struct cache_req *cq, const json_t *j)
{
    if (!j) {
        key_str(cq, "null");
        return;
    }
    char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    if (!s) {
        cq->key_failed = true;
        return;
    }
    key_str(cq, s);
    free(s);
}

void cache_key_begin(struct cache_req *cq, struct srv_engine *e, const char *model_id,
                     const char *endpoint, const struct api_gen *gen)
{
    if (!cq->sc)
        return;
    const struct inf_sampler_params *sp = &gen->sampling;
    bool greedy = sp->temperature < INF_SAMPLER_GREEDY_BELOW;
    if (!greedy && !gen->seed_given) { /* sampled without a seed: another answer every time */
        cq->state = CACHE_BYPASS;
        return;
    }
    uint8_t digest[32];
    struct inf_error err = {0};
    const char *path = srv_engine_model_path(e);
    if (!path || inf_cache_model_digest(cq->sc->store, path, digest, &err) != INF_OK) {
        INF_LOG_WARN("cache", "no model identity, request not cached: %s", inf_error_message(&err));
        cq->state = CACHE_BYPASS;
        return;
    }
    cq->md = EVP_MD_CTX_new();
    if (!cq->md || EVP_DigestInit_ex(cq->md, EVP_sha256(), NULL) != 1) {
        cq->state = CACHE_BYPASS;
        return;
    }
    cq->state = CACHE_MISS; /* provisional: lookup decides */
    snprintf(cq->model, sizeof(cq->model), "%s", model_id ? model_id : "");
    key_str(cq, "inferno-response-cache-v1");
    cache_key_bytes(cq, digest, 32);
    key_str(cq, model_id); /* the response names it */
    key_str(cq, endpoint);
    /* every generation field that can change the output */
    cache_key_u64(cq, (uint64_t)(int64_t)gen->max_tokens);
    cache_key_u64(cq, greedy);
    if (!greedy) { /* greedy ignores the sampling chain and the seed */
        key_f32(cq, sp->temperature);
        cache_key_u64(cq, (uint64_t)(int64_t)sp->top_k);
        key_f32(cq, sp->top_p);
        key_f32(cq, sp->min_p);
        key_f32(cq, sp->typical_p);
        cache_key_u64(cq, sp->seed);
    }
    key_f32(cq, sp->repeat_penalty);
    key_f32(cq, sp->frequency_penalty);
    key_f32(cq, sp->presence_penalty);
    cache_key_u64(cq, (uint64_t)(int64_t)sp->penalty_last_n);
    cache_key_u64(cq, gen->n_bias);
    for (size_t i = 0; i < gen->n_bias; i++) {
        cache_key_u64(cq, (uint32_t)gen->bias[i].token);
        key_f32(cq, gen->bias[i].bias);
    }
    cache_key_u64(cq, (uint64_t)gen->n_stop);
    for (int i = 0; i < gen->n_stop; i++)
        key_str(cq, gen->stop[i]);
    cache_key_u64(cq, (uint64_t)gen->n);
    cache_key_u64(cq, gen->logprobs);
    cache_key_u64(cq, (uint64_t)gen->top_logprobs);
    cache_key_u64(cq, gen->ignore_eos);
    cache_key_u64(cq, gen->format.kind);
    cache_key_bytes(cq, gen->format.text ? gen->format.text : "",
                    gen->format.text ? gen->format.len : 0);
    cache_key_u64(cq, gen->format.strict);
    /* include_usage changes only what a stream adds at its end, which replay makes anew */
}

static bool replay(struct cache_req *cq, const uint8_t *blob, size_t len, size_t n,
                   struct srv_task **tasks)
{
    struct srv_event **evs = NULL;
    size_t *n_evs = NULL;
    if (!cache_blob_decode(blob, len, n, &evs, &n_evs)) {
        INF_LOG_WARN("cache", "a stored answer does not decode; answered as a miss");
        return false;
    }
    struct inf_error err = {0};
    size_t made = 0;
    for (; made < n; made++)
        if (srv_task_replay(evs[made], n_evs[made], &tasks[made], &err) != INF_OK)
            break;
    cache_blob_free(evs, n_evs, n);
    if (made < n) {
        for (size_t i = 0; i < made; i++) {
            srv_task_release(tasks[i]);
            tasks[i] = NULL;
        }
        return false;
    }
    (void)cq;
    return true;
}

bool cache_lookup(struct http_req *r, struct cache_req *cq, size_t n, struct srv_task **tasks)
{
    struct srv_cache *sc = cq->sc;
    if (!sc || cq->state == CACHE_OFF)
        return false;
    if (cq->state != CACHE_MISS || !cq->md) {
        atomic_fetch_add(&sc->bypasses, 1);
        cq->state = CACHE_BYPASS;
        return false;
    }
    unsigned int dl = 32;
    if (cq->key_failed || EVP_DigestFinal_ex(cq->md, cq->key, &dl) != 1) {
        atomic_fetch_add(&sc->bypasses, 1);
        cq->state = CACHE_BYPASS;
        return false;
    }
    for (;;) {
        void *data = NULL;
        size_t len = 0;
        struct inf_error err = {0};
        if (inf_cache_get(sc->store, cq->key, &data, &len, &err) == INF_OK) {
            bool ok = replay(cq, data, len, n, tasks);
            free(data);
            if (ok) {
                atomic_fetch_add(&sc->hits, 1);
                cq->state = CACHE_HIT;
                return true;
            }
        }
        pthread_mutex_lock(&sc->mu);
        struct cache_flight *fl = sc->flights;
        while (fl && memcmp(fl->key, cq->key, 32) != 0)
            fl = fl->next;
        if (!fl) { /* we compute it; identical requests wait for us */
            fl = calloc(1, sizeof(*fl));
            if (fl) {
                memcpy(fl->key, cq->key, 32);
                fl->refs = 1;
                fl->next = sc->flights;
                sc->flights = fl;
            }
            cq->flight = fl;
            pthread_mutex_unlock(&sc->mu);
            atomic_fetch_add(&sc->misses, 1);
            cq->state = CACHE_MISS;
            return false;
        }
        fl->refs++;
        bool gone = false;
        while (!fl->done && !gone) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += WAIT_SLICE_MS * 1000000L;
            ts.tv_sec += ts.tv_nsec / 1000000000L;
            ts.tv_nsec %= 1000000000L;
            pthread_cond_timedwait(&sc->cv, &sc->mu, &ts);
            if (!fl->done) {
                pthread_mutex_unlock(&sc->mu);
                gone = http_conn_gone(r);
                pthread_mutex_lock(&sc->mu);
            }
        }
        uint8_t *blob = NULL;
        size_t blen = 0;
        if (fl->done && fl->ok && (blob = malloc(fl->len ? fl->len : 1))) {
            memcpy(blob, fl->blob, fl->len);
            blen = fl->len;
        }
        flight_unref_locked(sc, fl);
        pthread_mutex_unlock(&sc->mu);
        if (gone) {
            free(blob);
            atomic_fetch_add(&sc->misses, 1);
            cq->state = CACHE_MISS;
            return false;
        }
        if (blob) {
            bool ok = replay(cq, blob, blen, n, tasks);
            free(blob);
            if (ok) {
                atomic_fetch_add(&sc->hits, 1);
                atomic_fetch_add(&sc->coalesced, 1);
                cq->state = CACHE_HIT;
                return true;
            }
        }
        /* the leader failed (or its answer was not storable): try again, maybe as the leader */
    }
}

void cache_record(struct cache_req *cq, struct srv_task *const *tasks, size_t n)
{
    if (!cq->sc || cq->state != CACHE_MISS || !cq->flight)
        return;
    struct cache_rec *rec = calloc(1, sizeof(*rec));
    if (rec) {
        rec->evs = calloc(n, sizeof(*rec->evs));
        rec->n_evs = calloc(n, sizeof(*rec->n_evs));
        rec->cap_evs = calloc(n, sizeof(*rec->cap_evs));
    }
    if (!rec || !rec->evs || !rec->n_evs || !rec->cap_evs) {
        if (rec) {
            free(rec->evs);
            free(rec->n_evs);
            free(rec->cap_evs);
            free(rec);
        }
        return; /* cache_end fails the flight */
    }
    pthread_mutex_init(&rec->mu, NULL);
    rec->sc = cq->sc;
    rec->n = n;
    rec->refs = 1 + (int)n;
    memcpy(rec->key, cq->key, 32);
    snprintf(rec->model, sizeof(rec->model), "%s", cq->model);
    rec->flight = cq->flight;
    cq->flight = NULL;
    cq->rec = rec;
    for (size_t i = 0; i < n; i++) {
        struct srv_task_tap tap = {rec_event, rec_free_cb, rec, (int)i};
        srv_task_set_tap(tasks[i], &tap);
    }
}

void cache_end(struct http_req *r, struct cache_req *cq)
{
    static const char *const names[] = {NULL, "bypass", "miss", "hit"};
    if (cq->sc && r->resp && names[cq->state] && r->status < 400)
        MHD_add_response_header(r->resp, "X-Inferno-Cache", names[cq->state]);
    if (cq->sc)
        r->cache_state = names[cq->state];
    if (cq->flight) {
        flight_finish(cq->sc, cq->flight, NULL, 0);
        cq->flight = NULL;
    }
    if (cq->rec) {
        rec_unref(cq->rec);
        cq->rec = NULL;
    }
    EVP_MD_CTX_free(cq->md);
    cq->md = NULL;
}
