/*
 * jobs_exec.c - batch requests run by the server's own handlers (jobs_exec.h): the executor
 * that src/jobs calls (check a body as the live endpoint would, run it), the in-process queue
 * worker of `inferno serve`, and a server without sockets for the CLI (`inferno batch run`,
 * `inferno queue worker`).
 *
 * A request runs as a WebSocket request does: a struct http_req without a connection, the
 * OpenAI handler called on this thread, its JSON reply caught by this file's sink. So a batch
 * line's response body is exactly what the live endpoint answers. Its tasks are background
 * tasks (sched.h): admitted only while no live request waits, preempted when one does (a 503
 * that src/jobs runs again).
 */
#include "server/jobs_exec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inferno/log.h"
#include "server/audit_hook.h"
#include "server/handlers.h"
#include "server/http_internal.h"

struct capture {
    int status;
    char *body;
};

static json_t *cap_reply(void *ctx, int status, json_t *body)
{
    struct capture *c = ctx;
    c->status = status;
    free(c->body);
    c->body = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    return NULL;
}

static const struct http_sink capture_sink = {.reply = cap_reply};

static bool exec_check(void *ctx, enum inf_batch_endpoint ep, const char *body, size_t len,
                       char *msg, size_t size)
{
    struct http_server *s = ctx;
    struct api_error e = {0};
    json_t *j = api_parse_body(body, len, &e);
    if (!j) {
        snprintf(msg, size, "%s", e.message);
        return false;
    }
    json_t *stream = json_object_get(j, "stream");
    if (json_is_true(stream)) {
        json_decref(j);
        snprintf(msg, size, "'stream' is not supported in a batch");
        return false;
    }
    char model[256] = "";
    bool ok;
    if (ep == INF_BATCH_CHAT) {
        struct api_chat_req q = {0};
        ok = api_parse_chat(j, &q, &e);
        snprintf(model, sizeof(model), "%s", q.gen.model);
        api_chat_release(&q);
    } else if (ep == INF_BATCH_COMPLETIONS) {
        struct api_completion_req q = {0};
        ok = api_parse_completion(j, &q, &e);
        snprintf(model, sizeof(model), "%s", q.gen.model);
        api_completion_release(&q);
    } else {
        struct api_embedding_req q = {0};
        ok = api_parse_embedding(j, &q, &e);
        snprintf(model, sizeof(model), "%s", q.model);
        api_embedding_release(&q);
    }
    json_decref(j);
    if (!ok) {
        snprintf(msg, size, "%s%s%s", e.param[0] ? e.param : "", e.param[0] ? ": " : "", e.message);
        return false;
    }
    if (!model[0])
        return true; /* the default model */
    struct srv_model_entry *list = NULL;
    size_t n = 0;
    struct inf_error err = {0};
    bool found = false;
    if (srv_models_list(s->p.models, &list, &n, &err) == INF_OK)
        for (size_t i = 0; i < n && !found; i++)
            found = strcmp(list[i].id, model) == 0;
    free(list);
    if (!found)
        snprintf(msg, size, "the model '%.200s' is not served here", model);
    return found;
}

static int exec_run(void *ctx, enum inf_batch_endpoint ep, const char *body, size_t len,
                    char **resp, char *request_id, size_t rid_size)
{
    struct http_server *s = ctx;
    struct capture c = {0};
    struct http_req r;
    memset(&r, 0, sizeof(r));
    r.srv = s;
    r.params = &s->p;
    r.method = "POST";
    r.url = inf_batch_endpoint_path(ep);
    memcpy(r.req_id, "batch-req-", 10);
    api_random_id(r.req_id + 10, 24);
    r.body = malloc(len + 1);
    if (!r.body)
        return 500;
    memcpy(r.body, body, len);
    r.body[len] = '\0';
    r.len = len;
    r.t0 = http_now();
    r.key_index = -1;
    r.prompt_tokens = r.completion_tokens = -1;
    r.sink = &capture_sink;
    r.sink_ctx = &c;
    r.background = true;
    if (atomic_load(&s->stopping)) {
        c.status = 503;
    } else if (ep == INF_BATCH_CHAT) {
        api_chat(&r);
    } else if (ep == INF_BATCH_COMPLETIONS) {
        api_completions(&r);
    } else {
        api_embeddings(&r);
    }
    if (r.resp)
        MHD_destroy_response(r.resp);
    free(r.reply_copy);
    free(r.body);
    if (!c.status)
        c.status = r.status ? r.status : 500;
    if (!c.body && c.status != 503)
        c.body = strdup("{\"error\":{\"message\":\"no response was produced\",\"type\":"
                        "\"server_error\",\"param\":null,\"code\":null}}");
    snprintf(request_id, rid_size, "%s", r.req_id);
    *resp = c.body;
    if (c.status != 503 && (unsigned)ep < 3)
        atomic_fetch_add(&s->batch_requests[ep][c.status == 200 ? 0 : 1], 1);
    return c.status;
}

void srv_jobs_exec_init(struct http_server *s, int concurrency, struct inf_jobs_exec *out)
{
    memset(out, 0, sizeof(*out));
    out->check = exec_check;
    out->run = exec_run;
    out->ctx = s;
    out->concurrency = concurrency < 1 ? 1 : concurrency;
}

/* ---- the in-process worker ---------------------------------------------------------------- */

struct srv_jobs {
    struct inf_jobs *jobs;
    struct inf_jobs_exec exec;
    struct inf_jobs_worker_params wp;
    atomic_bool stop;
    pthread_t *threads;
    int n_threads;
};

static void *worker_main(void *arg)
{
    struct srv_jobs *w = arg;
    struct inf_error err = {0};
    if (inf_jobs_worker_run(w->jobs, &w->wp, &err) != INF_OK)
        INF_LOG_ERROR("jobs", "the queue worker stopped: %s", inf_error_message(&err));
    return NULL;
}

struct srv_jobs *srv_jobs_start(struct http_server *s, struct inf_jobs *jobs,
                                const struct srv_jobs_params *p)
{
    struct srv_jobs *w = calloc(1, sizeof(*w));
    if (!w)
        return NULL;
    w->jobs = jobs;
    srv_jobs_exec_init(s, p->concurrency, &w->exec);
    atomic_init(&w->stop, false);
    w->wp.exec = &w->exec;
    w->wp.lease_ms = p->lease_ms;
    w->wp.poll_ms = p->poll_ms;
    w->wp.backoff_s = p->backoff_s;
    w->wp.stop = &w->stop;
    int n = p->workers < 1 ? 1 : p->workers;
    w->threads = calloc((size_t)n, sizeof(*w->threads));
    for (int i = 0; w->threads && i < n; i++)
        if (pthread_create(&w->threads[w->n_threads], NULL, worker_main, w) == 0)
            w->n_threads++;
    if (!w->n_threads) {
        free(w->threads);
        free(w);
        return NULL;
    }
    return w;
}

void srv_jobs_stop(struct srv_jobs *w)
{
    if (!w)
        return;
    atomic_store(&w->stop, true);
    for (int i = 0; i < w->n_threads; i++)
        pthread_join(w->threads[i], NULL);
    free(w->threads);
    free(w);
}

/* ---- a server without sockets -------------------------------------------------------------- */

struct http_server *srv_offline_new(const struct http_server_params *p)
{
    struct http_server *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    pthread_mutex_init(&s->lock, NULL);
    pthread_mutex_init(&s->conn_lock, NULL);
    s->p = *p;
    return s;
}

void srv_offline_free(struct http_server *s)
{
    if (!s)
        return;
    while (s->tasks) {
        struct http_task_ref *n = s->tasks->next;
        free(s->tasks);
        s->tasks = n;
    }
    pthread_mutex_destroy(&s->lock);
    pthread_mutex_destroy(&s->conn_lock);
    free(s);
}

/* ---- job events into the audit log ---------------------------------------------------------- */

void srv_jobs_audit_event(void *ctx, const char *json, size_t len)
{
    struct srv_audit *a = ctx;
    if (a)
        srv_audit_append_raw(a, json, len);
}
