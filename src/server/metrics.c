/*
 * metrics.c - GET /metrics in the Prometheus text exposition format (version 0.0.4): HTTP
 * requests by route and status (counted by http.c), and per loaded model the engine's counters,
 * gauges and latency histograms (srv_engine_stats). Engine counters start at zero when a model
 * is (re)loaded.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "server/audit_hook.h"
#include "server/cache_hook.h"
#include "server/handlers.h"
#include "server/http_internal.h"

struct out {
    char *d;
    size_t n, cap;
    bool oom;
};

static void outf(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void outf(struct out *o, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        size_t room = o->cap - o->n;
        va_start(ap, fmt);
        int k = o->d ? vsnprintf(o->d + o->n, room, fmt, ap) : -1;
        va_end(ap);
        if (k >= 0 && (size_t)k < room) {
            o->n += (size_t)k;
            return;
        }
        /* k < 0 (no buffer yet, or an output error): grow anyway, as a bound on the tries */
        size_t need = k >= 0 ? o->n + (size_t)k + 1 : o->cap + 1;
        if (!inf__grow(&o->d, &o->cap, need, 1, 8192)) {
            o->oom = true;
            return;
        }
    }
}

/* Label values: backslash, quote and newline escaped. */
static void label(char *dst, size_t size, const char *s)
{
    size_t o = 0;
    for (; *s && o + 3 < size; s++) {
        if (*s == '\\' || *s == '"') {
            dst[o++] = '\\';
            dst[o++] = *s;
        } else if (*s == '\n') {
            dst[o++] = '\\';
            dst[o++] = 'n';
        } else {
            dst[o++] = *s;
        }
    }
    dst[o] = '\0';
}

struct engine_snap {
    char model[300];
    struct srv_engine_stats st;
};

struct snaps {
    struct engine_snap *s;
    size_t n, cap;
};

static void collect(struct srv_engine *e, void *user)
{
    struct snaps *ss = user;
    if (!inf__grow(&ss->s, &ss->cap, ss->n + 1, sizeof(*ss->s), 4))
        return;
    label(ss->s[ss->n].model, sizeof(ss->s[ss->n].model), srv_engine_model_id(e));
    srv_engine_stats(e, &ss->s[ss->n].st);
    ss->n++;
}

static void hist(struct out *o, const char *name, const char *model, const struct srv_hist *h)
{
    uint64_t cum = 0;
    for (int b = 0; b < SRV_HIST_BUCKETS; b++) {
        cum += h->count[b];
        outf(o, "%s_bucket{model=\"%s\",le=\"%g\"} %llu\n", name, model, srv_hist_bounds[b],
             (unsigned long long)cum);
    }
    cum += h->count[SRV_HIST_BUCKETS];
    outf(o, "%s_bucket{model=\"%s\",le=\"+Inf\"} %llu\n", name, model, (unsigned long long)cum);
    outf(o, "%s_sum{model=\"%s\"} %.9g\n", name, model, h->sum);
    outf(o, "%s_count{model=\"%s\"} %llu\n", name, model, (unsigned long long)h->n);
}

#define ENGINE_COUNTER(name, help, type, expr)                                                     \
    do {                                                                                           \
        outf(&o, "# HELP " name " " help "\n# TYPE " name " " type "\n");                          \
        for (size_t i = 0; i < ss.n; i++) {                                                        \
            const struct srv_engine_stats *st = &ss.s[i].st;                                       \
            outf(&o, name "{model=\"%s\"} %.17g\n", ss.s[i].model, (double)(expr));                \
        }                                                                                          \
    } while (0)

void api_metrics(struct http_req *r)
{
    struct out o = {0};
    struct http_server *s = r->srv;

    outf(&o, "# HELP inferno_requests_total HTTP requests answered, by route and status.\n"
             "# TYPE inferno_requests_total counter\n");
    for (size_t rt = 0; rt <= s->n_routes; rt++) {
        const struct http_route *route = rt < s->n_routes ? &s->routes[rt] : NULL;
        for (int k = 0; k < HTTP_N_STATUS; k++) {
            uint64_t v = atomic_load(&s->requests[rt][k]);
            if (!v)
                continue;
            char st[8];
            if (k < HTTP_N_STATUS - 1)
                snprintf(st, sizeof(st), "%d", http_metric_status[k]);
            else
                snprintf(st, sizeof(st), "other");
            outf(&o, "inferno_requests_total{route=\"%s%s\",status=\"%s\"} %llu\n",
                 route ? route->path : "other", route && route->prefix ? "{id}" : "", st,
                 (unsigned long long)v);
        }
    }
    outf(&o,
         "# HELP inferno_requests_in_flight HTTP requests being handled now.\n"
         "# TYPE inferno_requests_in_flight gauge\ninferno_requests_in_flight %d\n",
         atomic_load(&s->in_flight));
    outf(&o, "# HELP inferno_batch_requests_total Batch API and queue requests this replica ran, "
             "by endpoint and outcome.\n# TYPE inferno_batch_requests_total counter\n");
    for (int ep = 0; ep < 3; ep++)
        for (int k = 0; k < 2; k++)
            outf(&o, "inferno_batch_requests_total{endpoint=\"%s\",outcome=\"%s\"} %llu\n",
                 inf_batch_endpoint_path((enum inf_batch_endpoint)ep), k ? "error" : "ok",
                 (unsigned long long)atomic_load(&s->batch_requests[ep][k]));

    struct snaps ss = {0};
    if (s->p.models) /* none on a server of ONNX models only */
        srv_models_each_loaded(s->p.models, collect, &ss);
    ENGINE_COUNTER("inferno_prompt_tokens_total",
                   "Prompt tokens processed (cached prefix tokens not included).", "counter",
                   st->prompt_tokens_total);
    ENGINE_COUNTER("inferno_cached_prompt_tokens_total",
                   "Prompt tokens reused from a slot's cache.", "counter", st->cached_tokens_total);
    ENGINE_COUNTER("inferno_generated_tokens_total", "Tokens generated.", "counter",
                   st->generated_tokens_total);
    ENGINE_COUNTER("inferno_engine_steps_total",
                   "Forward passes of the engine loop (each reads the weights once).", "counter",
                   st->steps_total);
    ENGINE_COUNTER("inferno_batch_tokens_total",
                   "Tokens carried by those passes (generation and prompt).", "counter",
                   st->batch_tokens_total);
    ENGINE_COUNTER("inferno_tasks_total", "Tasks submitted to the engine.", "counter",
                   st->tasks_total);
    ENGINE_COUNTER("inferno_tasks_cancelled_total", "Tasks cancelled (client gone or shutdown).",
                   "counter", st->tasks_cancelled);
    ENGINE_COUNTER("inferno_tasks_preempted_total",
                   "Batch tasks ended to free a slot for a live request (run again later).",
                   "counter", st->tasks_preempted);
    ENGINE_COUNTER("inferno_queue_depth", "Tasks waiting for a slot.", "gauge", st->queue_depth);
    ENGINE_COUNTER("inferno_slots_busy", "Slots running a task.", "gauge", st->slots_busy);
    ENGINE_COUNTER("inferno_slots_total", "Slots (parallel sequences).", "gauge", st->slots_total);
    ENGINE_COUNTER("inferno_kv_cells_used", "KV cache cells in use.", "gauge", st->kv_cells_used);
    ENGINE_COUNTER("inferno_kv_cells_total", "KV cache cells.", "gauge", st->kv_cells_total);
    ENGINE_COUNTER("inferno_model_load_seconds", "Time the model took to load.", "gauge",
                   st->load_ms / 1000.0);

    outf(&o, "# HELP inferno_time_to_first_token_seconds Submit to first generated token.\n"
             "# TYPE inferno_time_to_first_token_seconds histogram\n");
    for (size_t i = 0; i < ss.n; i++)
        hist(&o, "inferno_time_to_first_token_seconds", ss.s[i].model, &ss.s[i].st.ttft);
    outf(&o, "# HELP inferno_time_per_output_token_seconds Time between generated tokens.\n"
             "# TYPE inferno_time_per_output_token_seconds histogram\n");
    for (size_t i = 0; i < ss.n; i++)
        hist(&o, "inferno_time_per_output_token_seconds", ss.s[i].model, &ss.s[i].st.per_token);
    free(ss.s);

    if (s->p.audit) {
        uint64_t w, f;
        srv_audit_counters(s->p.audit, &w, &f);
        outf(&o,
             "# HELP inferno_audit_records_total Records written to the audit log.\n"
             "# TYPE inferno_audit_records_total counter\ninferno_audit_records_total %llu\n"
             "# HELP inferno_audit_errors_total Records the audit log could not take.\n"
             "# TYPE inferno_audit_errors_total counter\ninferno_audit_errors_total %llu\n",
             (unsigned long long)w, (unsigned long long)f);
    }
    if (s->p.cache) {
        struct srv_cache_counters cc;
        srv_cache_counters(s->p.cache, &cc);
#define CACHE_COUNTER(name, help, v)                                                               \
    outf(&o, "# HELP " name " " help "\n# TYPE " name " counter\n" name " %llu\n",                 \
         (unsigned long long)(v))
        CACHE_COUNTER("inferno_cache_hits_total", "Requests answered from the response cache.",
                      cc.hits);
        CACHE_COUNTER("inferno_cache_misses_total",
                      "Cacheable requests computed by the model (then stored).", cc.misses);
        CACHE_COUNTER("inferno_cache_bypasses_total",
                      "Requests the response cache does not apply to (not deterministic).",
                      cc.bypasses);
        CACHE_COUNTER("inferno_cache_coalesced_total",
                      "Hits that waited for an identical request in flight (single flight).",
                      cc.coalesced);
        CACHE_COUNTER("inferno_cache_stored_total", "Answers written to the response cache.",
                      cc.stored);
        CACHE_COUNTER("inferno_cache_stored_bytes_total",
                      "Bytes of answers written to the response cache (before compression).",
                      cc.stored_bytes);
        CACHE_COUNTER("inferno_cache_evictions_total",
                      "Entries removed by the size bound or the TTL.", cc.evictions);
        CACHE_COUNTER("inferno_cache_corrupt_total",
                      "Entries that failed their checks (answered as misses).", cc.corrupt);
#undef CACHE_COUNTER
    }

    if (o.oom) {
        free(o.d);
        http_reply_errorf(r, 500, NULL, NULL, "out of memory");
        return;
    }
    http_reply_text(r, 200, "text/plain; version=0.0.4; charset=utf-8", o.d ? o.d : "", o.n);
    free(o.d);
}
