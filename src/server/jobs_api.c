/*
 * jobs_api.c - OpenAI's Files and Batch API over the jobs store (inferno/jobs.h): the
 * handlers of /v1/files and /v1/batches. The batches run on the queue worker (jobs_exec.c).
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server/handlers.h"
#include "server/http_internal.h"
#include "server/multipart.h"

#define MAX_PARTS 8

/* The store, or a 404 saying the API is off. */
static struct inf_jobs *jobs_of(struct http_req *r)
{
    if (!r->params->jobs)
        http_reply_errorf(r, 404, NULL, "not_found",
                          "the Files and Batch API is off on this server (queue.enabled)");
    return r->params->jobs;
}

static void reply_status(struct http_req *r, inf_status st, const struct inf_error *err)
{
    int code = st == INF_ENOTFOUND                                        ? 404
               : st == INF_EINVAL || st == INF_EPARSE || st == INF_ELIMIT ? 400
                                                                          : 500;
    http_reply_errorf(r, code, NULL, code == 404 ? "not_found" : NULL, "%s",
                      inf_error_message(err));
}

static json_t *file_json(const struct inf_jobs_file *f)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(f->id));
    json_object_set_new(o, "object", json_string("file"));
    json_object_set_new(o, "bytes", json_integer(f->bytes));
    json_object_set_new(o, "created_at", json_integer(f->created_at));
    json_object_set_new(o, "filename", json_string(f->filename));
    json_object_set_new(o, "purpose", json_string(f->purpose));
    json_object_set_new(o, "status", json_string("processed"));
    json_object_set_new(o, "expires_at", json_null());
    json_object_set_new(o, "status_details", json_null());
    return o;
}

static const char *query(struct http_req *r, const char *key)
{
    return r->conn ? MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, key) : NULL;
}

/* ?limit=N within [1, max] (default def); false after answering 400. */
static bool query_limit(struct http_req *r, int def, int max, int *out)
{
    const char *l = query(r, "limit");
    *out = def;
    if (!l)
        return true;
    char *end;
    long v = strtol(l, &end, 10);
    if (*l == '\0' || *end || v < 1 || v > max) {
        http_reply_errorf(r, 400, "limit", NULL, "limit must be an integer from 1 to %d", max);
        return false;
    }
    *out = (int)v;
    return true;
}

void api_files_create(struct http_req *r)
{
    struct inf_jobs *j = jobs_of(r);
    if (!j)
        return;
    const char *ct =
        MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    char boundary[80];
    if (!multipart_boundary(ct, boundary, sizeof(boundary))) {
        http_reply_errorf(r, 415, NULL, "unsupported_media_type",
                          "upload the file as multipart/form-data with a boundary");
        return;
    }
    struct multipart_part parts[MAX_PARTS];
    size_t n = 0;
    char msg[128];
    if (!multipart_parse(boundary, r->body ? r->body : "", r->len, parts, MAX_PARTS, &n, msg,
                         sizeof(msg))) {
        http_reply_errorf(r, 400, NULL, NULL, "%s", msg);
        return;
    }
    const struct multipart_part *file = NULL, *purpose = NULL;
    for (size_t i = 0; i < n; i++) {
        if (parts[i].name_len == 4 && memcmp(parts[i].name, "file", 4) == 0)
            file = &parts[i];
        else if (parts[i].name_len == 7 && memcmp(parts[i].name, "purpose", 7) == 0)
            purpose = &parts[i];
    }
    if (!file) {
        http_reply_errorf(r, 400, "file", NULL, "the 'file' field is required");
        return;
    }
    if (!purpose || purpose->len != 5 || memcmp(purpose->data, "batch", 5) != 0) {
        http_reply_errorf(r, 400, "purpose", NULL,
                          "'purpose' must be \"batch\" (the only purpose served here)");
        return;
    }
    char filename[256] = "upload.jsonl";
    if (file->has_filename && file->filename_len) {
        size_t k = 0;
        for (size_t i = 0; i < file->filename_len && k + 1 < sizeof(filename); i++) {
            unsigned char c = (unsigned char)file->filename[i];
            filename[k++] = c < 0x20 || c == '/' || c == '\\' ? '_' : (char)c;
        }
        filename[k] = '\0';
    }
    if (!api_utf8_valid(file->data, file->len)) {
        http_reply_errorf(r, 400, "file", NULL, "the file is not valid UTF-8 (JSON lines)");
        return;
    }
    struct inf_jobs_file f;
    struct inf_error err = {0};
    inf_status st = inf_jobs_file_create(j, filename, "batch", file->data, file->len, &f, &err);
    if (st != INF_OK) {
        reply_status(r, st, &err);
        return;
    }
    http_reply_json(r, 200, file_json(&f));
}

void api_files_list(struct http_req *r)
{
    struct inf_jobs *j = jobs_of(r);
    int limit;
    if (!j || !query_limit(r, 10000, 10000, &limit))
        return;
    struct inf_jobs_file *v = NULL;
    size_t n = 0;
    bool more = false;
    struct inf_error err = {0};
    inf_status st =
        inf_jobs_file_list(j, query(r, "purpose"), query(r, "after"), limit, &v, &n, &more, &err);
    if (st != INF_OK) {
        reply_status(r, st, &err);
        return;
    }
    json_t *o = json_object(), *data = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(data, file_json(&v[i]));
    json_object_set_new(o, "object", json_string("list"));
    json_object_set_new(o, "data", data);
    json_object_set_new(o, "first_id", n ? json_string(v[0].id) : json_null());
    json_object_set_new(o, "last_id", n ? json_string(v[n - 1].id) : json_null());
    json_object_set_new(o, "has_more", json_boolean(more));
    free(v);
    http_reply_json(r, 200, o);
}

/* "/v1/files/ID" or "/v1/files/ID/content": ID into id (false: neither form). */
static bool file_target(const char *url, char *id, size_t size, bool *content)
{
    const char *s = url + strlen("/v1/files/");
    const char *slash = strchr(s, '/');
    size_t n = slash ? (size_t)(slash - s) : strlen(s);
    *content = slash && strcmp(slash, "/content") == 0;
    if (n == 0 || n >= size || (slash && !*content))
        return false;
    memcpy(id, s, n);
    id[n] = '\0';
    return true;
}

void api_file_get(struct http_req *r)
{
    struct inf_jobs *j = jobs_of(r);
    if (!j)
        return;
    char id[128];
    bool content;
    if (!file_target(r->url, id, sizeof(id), &content)) {
        http_reply_errorf(r, 404, NULL, "not_found", "no route for GET %.200s", r->url);
        return;
    }
    struct inf_error err = {0};
    if (content) { /* streamed from the file by libmicrohttpd, which closes it */
        int fd = -1;
        size_t len = 0;
        inf_status st = inf_jobs_file_open(j, id, &fd, &len, &err);
        if (st != INF_OK) {
            reply_status(r, st, &err);
            return;
        }
        struct MHD_Response *resp = MHD_create_response_from_fd64(len, fd);
        if (!resp) {
            close(fd);
            http_reply_errorf(r, 500, NULL, NULL, "out of memory");
            return;
        }
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/octet-stream");
        http_reply_response(r, 200, resp);
        return;
    }
    struct inf_jobs_file f;
    inf_status st = inf_jobs_file_get(j, id, &f, &err);
    if (st != INF_OK) {
        reply_status(r, st, &err);
        return;
    }
    http_reply_json(r, 200, file_json(&f));
}

void api_file_delete(struct http_req *r)
{
    struct inf_jobs *j = jobs_of(r);
    if (!j)
        return;
    char id[128];
    bool content;
    if (!file_target(r->url, id, sizeof(id), &content) || content) {
        http_reply_errorf(r, 404, NULL, "not_found", "no route for DELETE %.200s", r->url);
        return;
    }
    struct inf_error err = {0};
    inf_status st = inf_jobs_file_delete(j, id, &err);
    if (st != INF_OK) {
        reply_status(r, st, &err);
        return;
    }
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(id));
    json_object_set_new(o, "object", json_string("file"));
    json_object_set_new(o, "deleted", json_true());
    http_reply_json(r, 200, o);
}

/* Reply with a batch object's JSON text (taken). */
static void reply_obj(struct http_req *r, char *obj)
{
    json_t *o = json_loads(obj, 0, NULL);
    free(obj);
    if (!o) {
        http_reply_errorf(r, 500, NULL, NULL, "the stored batch is not JSON");
        return;
    }
    http_reply_json(r, 200, o);
}

void api_batches_create(struct http_req *r)
{
    struct inf_jobs *j = jobs_of(r);
    if (!j)
        return;
    struct api_error e = {0};
    json_t *body = api_parse_body(r->body, r->len, &e);
    if (!body) {
        http_reply_error(r, &e);
        return;
    }
    const char *k;
    json_t *v;
    json_object_foreach(body, k, v)
    {
        if (strcmp(k, "input_file_id") != 0 && strcmp(k, "endpoint") != 0 &&
            strcmp(k, "completion_window") != 0 && strcmp(k, "metadata") != 0 &&
            strcmp(k, "output_expires_after") != 0) {
            http_reply_errorf(r, 400, k, "unknown_parameter", "unknown parameter '%.64s'", k);
            json_decref(body);
            return;
        }
    }
    json_t *in = json_object_get(body, "input_file_id"), *ep = json_object_get(body, "endpoint");
    json_t *win = json_object_get(body, "completion_window");
    json_t *meta = json_object_get(body, "metadata");
    const char *bad = !json_is_string(in)    ? "input_file_id"
                      : !json_is_string(ep)  ? "endpoint"
                      : !json_is_string(win) ? "completion_window"
                                             : NULL;
    if (bad) {
        http_reply_errorf(r, 400, bad, NULL, "'%s' is required (a string)", bad);
        json_decref(body);
        return;
    }
    if (meta && !json_is_null(meta) && (!json_is_object(meta) || json_object_size(meta) > 16)) {
        http_reply_errorf(r, 400, "metadata", NULL,
                          "'metadata' must be an object of at most 16 string values");
        json_decref(body);
        return;
    }
    json_object_foreach(meta, k, v)
    {
        if (!json_is_string(v) || strlen(k) > 64 || json_string_length(v) > 512) {
            http_reply_errorf(r, 400, "metadata", NULL,
                              "metadata values are strings (keys at most 64 characters, values "
                              "512)");
            json_decref(body);
            return;
        }
    }
    char *meta_text = meta && !json_is_null(meta) ? json_dumps(meta, JSON_COMPACT) : NULL;
    char *obj = NULL;
    struct inf_error err = {0};
    inf_status st = inf_jobs_batch_create(j, json_string_value(in), json_string_value(ep),
                                          json_string_value(win), meta_text, 0, &obj, &err);
    free(meta_text);
    json_decref(body);
    if (st != INF_OK) {
        reply_status(r, st, &err);
        return;
    }
    reply_obj(r, obj);
}

void api_batches_list(struct http_req *r)
{
    struct inf_jobs *j = jobs_of(r);
    int limit;
    if (!j || !query_limit(r, 20, 100, &limit))
        return;
    char *obj = NULL;
    struct inf_error err = {0};
    inf_status st = inf_jobs_batch_list(j, query(r, "after"), limit, &obj, &err);
    if (st != INF_OK) {
        reply_status(r, st, &err);
        return;
    }
    reply_obj(r, obj);
}

void api_batch_get(struct http_req *r)
{
    struct inf_jobs *j = jobs_of(r);
    if (!j)
        return;
    const char *id = r->url + strlen("/v1/batches/");
    char *obj = NULL;
    struct inf_error err = {0};
    inf_status st = inf_jobs_batch_get(j, id, &obj, &err);
    if (st != INF_OK) {
        reply_status(r, st, &err);
        return;
    }
    reply_obj(r, obj);
}

void api_batch_cancel(struct http_req *r)
{
    struct inf_jobs *j = jobs_of(r);
    if (!j)
        return;
    const char *s = r->url + strlen("/v1/batches/");
    const char *slash = strchr(s, '/');
    char id[128];
    if (!slash || strcmp(slash, "/cancel") != 0 || slash == s ||
        (size_t)(slash - s) >= sizeof(id)) {
        http_reply_errorf(r, 404, NULL, "not_found", "no route for POST %.200s", r->url);
        return;
    }
    memcpy(id, s, (size_t)(slash - s));
    id[slash - s] = '\0';
    char *obj = NULL;
    struct inf_error err = {0};
    inf_status st = inf_jobs_batch_cancel(j, id, &obj, &err);
    if (st != INF_OK) {
        reply_status(r, st, &err);
        return;
    }
    reply_obj(r, obj);
}
