/*
 * response.c - the replies a handler produces (r->status, r->resp) and the registry of submitted
 * tasks (see response.h). Knows nothing of the routes.
 */
#include "server/response.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inferno/log.h"
#include "server/audit_hook.h"
#include "server/http_internal.h"

/* ---- responses ------------------------------------------------------------------------------- */

void http_reply_response(struct http_req *r, int status, struct MHD_Response *resp)
{
    if (r->resp)
        MHD_destroy_response(r->resp);
    r->status = status;
    r->resp = resp;
}

void http_reply_text(struct http_req *r, int status, const char *content_type, const char *text,
                     size_t len)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, (void *)text, MHD_RESPMEM_MUST_COPY);
    if (!resp)
        return;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    http_reply_response(r, status, resp);
}

void http_reply_json(struct http_req *r, int status, json_t *body)
{
    /* what the audit record reports: the model and the usage the client sees */
    json_t *model = json_object_get(body, "model"), *usage = json_object_get(body, "usage");
    if (json_is_string(model))
        snprintf(r->model, sizeof(r->model), "%s", json_string_value(model));
    if (json_is_object(usage)) {
        json_t *pt = json_object_get(usage, "prompt_tokens");
        json_t *ct = json_object_get(usage, "completion_tokens");
        if (json_is_integer(pt))
            r->prompt_tokens = (int32_t)json_integer_value(pt);
        if (json_is_integer(ct))
            r->completion_tokens = (int32_t)json_integer_value(ct);
    }
    if (r->sink && r->sink->reply) {
        body = r->sink->reply(r->sink_ctx, status, body);
        if (!body) { /* the sink answered (a detached request) */
            r->status = status;
            return;
        }
    }
    char *s = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (s && srv_audit_content(r->params->audit)) {
        free(r->reply_copy);
        r->reply_copy = strdup(s);
    }
    if (!s) {
        static const char oom[] = "{\"error\":{\"message\":\"out of memory\",\"type\":"
                                  "\"server_error\",\"param\":null,\"code\":null}}";
        http_reply_text(r, 500, "application/json", oom, sizeof(oom) - 1);
        return;
    }
    size_t n = strlen(s);
    struct MHD_Response *resp = MHD_create_response_from_buffer(n, s, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(s);
        return;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    http_reply_response(r, status, resp);
}

void http_reply_error(struct http_req *r, const struct api_error *e)
{
    int status = e->status ? e->status : 500;
    if (status >= 500)
        INF_LOG_WARN("http", "request %s: %d %s", r->req_id, status, e->message);
    http_reply_json(r, status, api_error_json(e));
    if (r->resp && (status == 503 || status == 429))
        MHD_add_response_header(r->resp, MHD_HTTP_HEADER_RETRY_AFTER, "1");
}

void http_reply_errorf(struct http_req *r, int status, const char *param, const char *code,
                       const char *fmt, ...)
{
    struct api_error e = {0};
    va_list ap;
    e.status = status;
    e.type = api_error_type(status);
    e.code = code;
    snprintf(e.param, sizeof(e.param), "%s", param ? param : "");
    va_start(ap, fmt);
    vsnprintf(e.message, sizeof(e.message), fmt, ap);
    va_end(ap);
    http_reply_error(r, &e);
}

/* ---- the task registry ----------------------------------------------------------------------- */

void http_track_task(struct http_server *s, struct srv_task *t)
{
    struct http_task_ref *ref = malloc(sizeof(*ref));
    if (!ref)
        return;
    ref->task = t;
    pthread_mutex_lock(&s->lock);
    ref->next = s->tasks;
    s->tasks = ref;
    pthread_mutex_unlock(&s->lock);
}

void http_untrack_task(struct http_server *s, struct srv_task *t)
{
    pthread_mutex_lock(&s->lock);
    for (struct http_task_ref **p = &s->tasks; *p; p = &(*p)->next) {
        if ((*p)->task == t) {
            struct http_task_ref *dead = *p;
            *p = dead->next;
            free(dead);
            break;
        }
    }
    pthread_mutex_unlock(&s->lock);
}
