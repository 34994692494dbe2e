/*
 * ollama_pull.c - Ollama's POST /api/pull: download a model with the hub client (src/hub/, the
 * code behind `inferno pull`) into models_dir, register its name and serve it at once. With
 * "stream" (the default) the progress goes out as NDJSON lines as it happens - the lines `inferno
 * pull --json` prints (inf_hub_event_json), then {"status": "success", "model": NAME} or
 * {"error": "..."}; without, one object at the end. The name is Ollama's (NAME[:TAG] from the
 * Ollama library) or any reference `inferno pull` takes (hf.co/OWNER/REPO:QUANT).
 *
 * A streamed pull runs on a thread of its own; the connection's thread blocks in the content
 * reader until lines arrive. A client that goes away, or the server stopping, cancels the pull at
 * its next progress event (the .partial file stays, so the next pull resumes it).
 */
#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "inferno/hub.h"
#include "inferno/log.h"
#include "inferno/models.h"
#include "server/handlers.h"
#include "server/http_internal.h"

struct pull_job {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int refs;
    char *buf; /* lines not yet sent */
    size_t n, off, cap;
    bool done, gone;
    char ref[1100];
    struct inf_hub_params hub;
    const char *models_db;
    struct srv_models *models;
    struct http_server *srv; /* read only by the connection's thread (pull_read), which the
                                server joins before it is freed */
    struct inf_hub_result res;
    struct inf_error err;
    inf_status st;
};

static void job_unref(struct pull_job *j)
{
    pthread_mutex_lock(&j->mu);
    bool last = --j->refs == 0;
    pthread_mutex_unlock(&j->mu);
    if (!last)
        return;
    pthread_mutex_destroy(&j->mu);
    pthread_cond_destroy(&j->cv);
    free(j->buf);
    free(j);
}

/* Queue a line (a newline is added); false when the client has gone. */
static bool job_push(struct pull_job *j, const char *line)
{
    size_t len = strlen(line);
    pthread_mutex_lock(&j->mu);
    bool gone = j->gone;
    if (!gone && j->n + len + 1 > j->cap) {
        size_t cap = j->cap ? j->cap : 4096;
        while (cap < j->n + len + 1)
            cap *= 2;
        char *b = realloc(j->buf, cap);
        if (b) {
            j->buf = b;
            j->cap = cap;
        }
    }
    if (!gone && j->n + len + 1 <= j->cap) {
        memcpy(j->buf + j->n, line, len);
        j->buf[j->n + len] = '\n';
        j->n += len + 1;
        pthread_cond_broadcast(&j->cv);
    }
    pthread_mutex_unlock(&j->mu);
    return !gone;
}

static bool on_event(const struct inf_hub_event *ev, void *user)
{
    struct pull_job *j = user;
    char *line = inf_hub_event_json(ev);
    bool alive = true;
    if (line && j->models)
        alive = job_push(j, line);
    free(line);
    pthread_mutex_lock(&j->mu);
    alive = alive && !j->gone;
    pthread_mutex_unlock(&j->mu);
    return alive;
}

/* The pull itself, then registration (the model database) and the served set. */
static void run_pull(struct pull_job *j, struct srv_models *models)
{
    j->st = inf_hub_pull(j->ref, &j->hub, &j->res, &j->err);
    if (j->st != INF_OK) {
        INF_LOG_WARN("http", "ollama: pull '%s': %s", j->ref, inf_error_message(&j->err));
        return;
    }
    struct inf_model_reg reg = {0};
    struct inf_error rerr = {0};
    snprintf(reg.name, sizeof(reg.name), "%s", j->res.name);
    snprintf(reg.path, sizeof(reg.path), "%s", j->res.path);
    snprintf(reg.source, sizeof(reg.source), "%s", j->res.source);
    snprintf(reg.digest, sizeof(reg.digest), "%s", j->res.digest);
    if (j->models_db && *j->models_db && inf_models_register(j->models_db, &reg, &rerr) != INF_OK)
        INF_LOG_WARN("http", "ollama: pulled '%s' but cannot register it: %s", j->res.name,
                     inf_error_message(&rerr));
    /* streamed, and the connection (or the server) closed: the models may be freed soon. The
       check and the add are one step under j->mu, which pull_read and pull_free take to set
       gone before the server can free them. */
    pthread_mutex_lock(&j->mu);
    bool gone = j->gone && j->models;
    struct inf_error aerr = {0};
    inf_status st = gone ? INF_OK : srv_models_add(models, j->res.name, j->res.path, &aerr);
    pthread_mutex_unlock(&j->mu);
    if (st != INF_OK && st != INF_EEXIST)
        INF_LOG_WARN("http", "ollama: cannot serve '%s': %s", j->res.name,
                     inf_error_message(&aerr));
    INF_LOG_INFO("http", "ollama: pulled '%s' (%s)", j->res.name, j->res.path);
}

struct thread_arg {
    struct pull_job *j;
    struct srv_models *models;
};

static void *pull_main(void *arg)
{
    struct thread_arg *a = arg;
    struct pull_job *j = a->j;
    struct srv_models *models = a->models;
    free(a);
    run_pull(j, models);
    json_t *o = j->st == INF_OK ? json_pack("{s:s,s:s,s:s}", "status", "success", "model",
                                            j->res.name, "digest", j->res.digest)
                                : json_pack("{s:s}", "error", inf_error_message(&j->err));
    char *line = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (line)
        job_push(j, line);
    free(line);
    pthread_mutex_lock(&j->mu);
    j->done = true;
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
    job_unref(j);
    return NULL;
}

static ssize_t pull_read(void *cls, uint64_t pos, char *out, size_t max)
{
    struct pull_job *j = cls;
    (void)pos;
    pthread_mutex_lock(&j->mu);
    for (;;) {
        if (atomic_load(&j->srv->stopping) && !j->done) {
            /* the server is stopping: the pull is cancelled at its next event (its .partial
               stays for the next pull); the stream ends now */
            j->gone = true;
            pthread_mutex_unlock(&j->mu);
            return MHD_CONTENT_READER_END_WITH_ERROR;
        }
        if (j->off < j->n || j->done)
            break;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        pthread_cond_timedwait(&j->cv, &j->mu, &ts);
    }
    ssize_t r;
    if (j->off < j->n) {
        size_t k = j->n - j->off < max ? j->n - j->off : max;
        memcpy(out, j->buf + j->off, k);
        j->off += k;
        if (j->off == j->n)
            j->off = j->n = 0;
        r = (ssize_t)k;
    } else {
        r = MHD_CONTENT_READER_END_OF_STREAM;
    }
    pthread_mutex_unlock(&j->mu);
    return r;
}

static void pull_free(void *cls)
{
    struct pull_job *j = cls;
    pthread_mutex_lock(&j->mu);
    j->gone = true; /* the pull stops at its next event unless it is done */
    pthread_mutex_unlock(&j->mu);
    job_unref(j);
}

void ollama_pull(struct http_req *r)
{
    struct api_error e = {0};
    json_t *body = api_parse_body(r->body, r->len, &e);
    if (!body) {
        http_reply_error(r, &e);
        return;
    }
    const char *name = json_string_value(json_object_get(body, "model"));
    if (!name || !*name)
        name = json_string_value(json_object_get(body, "name"));
    json_t *stream = json_object_get(body, "stream");
    bool streamed = !json_is_false(stream);
    struct inf_hub_ref ref;
    struct inf_error perr = {0};
    struct pull_job *j = NULL;
    if (!r->params->hub) {
        http_reply_errorf(r, 403, NULL, NULL,
                          "pulling models is turned off on this server (server.allow_pull)");
        goto out;
    }
    if (!name || !*name) {
        http_reply_errorf(r, 400, "model", NULL, "model is required");
        goto out;
    }
    if (stream && !json_is_boolean(stream)) {
        http_reply_errorf(r, 400, "stream", NULL, "stream must be a boolean");
        goto out;
    }
    if (inf_hub_ref_parse(name, &ref, &perr) != INF_OK) {
        http_reply_errorf(r, 400, "model", NULL, "%s", inf_error_message(&perr));
        goto out;
    }
    j = calloc(1, sizeof(*j));
    if (!j) {
        http_reply_errorf(r, 500, NULL, NULL, "out of memory");
        goto out;
    }
    pthread_mutex_init(&j->mu, NULL);
    pthread_cond_init(&j->cv, NULL);
    j->refs = 1;
    snprintf(j->ref, sizeof(j->ref), "%s", name);
    j->hub = *r->params->hub;
    j->hub.progress = on_event;
    j->hub.user = j;
    j->models_db = r->params->models_db;
    if (!streamed) {
        run_pull(j, r->params->models);
        if (j->st == INF_OK)
            http_reply_json(r, 200,
                            json_pack("{s:s,s:s,s:s}", "status", "success", "model", j->res.name,
                                      "digest", j->res.digest));
        else
            http_reply_errorf(r,
                              j->st == INF_ENOTFOUND      ? 404
                              : j->st == INF_EUNSUPPORTED ? 401
                              : j->st == INF_EINVAL       ? 400
                                                          : 500,
                              "model", NULL, "%s", inf_error_message(&j->err));
        job_unref(j);
        goto out;
    }
    j->models = r->params->models; /* streamed: events are queued */
    j->srv = r->srv;
    struct thread_arg *a = malloc(sizeof(*a));
    struct MHD_Response *resp =
        a ? MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, pull_read, j, pull_free)
          : NULL;
    if (!resp) {
        free(a);
        job_unref(j);
        http_reply_errorf(r, 500, NULL, NULL, "out of memory");
        goto out;
    }
    a->j = j;
    a->models = r->params->models;
    j->refs = 2; /* the response and the thread */
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&t, &attr, pull_main, a) != 0) {
        pthread_attr_destroy(&attr);
        free(a);
        j->refs = 1;
        MHD_destroy_response(resp); /* pull_free drops the last reference */
        http_reply_errorf(r, 500, NULL, NULL, "cannot start the pull");
        goto out;
    }
    pthread_attr_destroy(&attr);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/x-ndjson");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    http_reply_response(r, 200, resp);
out:
    json_decref(body);
}
