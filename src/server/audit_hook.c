/*
 * audit_hook.c - audit records of API requests (audit_hook.h).
 */
#include "server/audit_hook.h"

#include <jansson.h>
#include <netdb.h>
#include <openssl/evp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "inferno/log.h"
#include "server/http_internal.h"

struct srv_audit {
    struct inf_audit *log;
    bool include_content, required;
    char (*key_ids)[20];
    size_t n_keys;
    atomic_ullong written, failed; /* records, for /metrics */
};

void srv_audit_counters(const struct srv_audit *a, uint64_t *written, uint64_t *failed)
{
    *written = atomic_load(&((struct srv_audit *)a)->written);
    *failed = atomic_load(&((struct srv_audit *)a)->failed);
}

void srv_audit_key_id(const char *key, char *out, size_t size)
{
    static const char digits[] = "0123456789abcdef";
    uint8_t d[32];
    unsigned int len = 32;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    bool ok = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
              EVP_DigestUpdate(md, "inferno-api-key-id:", 19) == 1 &&
              EVP_DigestUpdate(md, key, strlen(key)) == 1 && EVP_DigestFinal_ex(md, d, &len) == 1;
    EVP_MD_CTX_free(md);
    char h[13];
    for (int i = 0; i < 6; i++) {
        h[2 * i] = ok ? digits[d[i] >> 4] : '0';
        h[2 * i + 1] = ok ? digits[d[i] & 15] : '0';
    }
    h[12] = '\0';
    snprintf(out, size, "key-%s", h);
}

struct srv_audit *srv_audit_new(struct inf_audit *log, bool include_content, bool required,
                                const char *const *api_keys, size_t n_keys)
{
    struct srv_audit *a = calloc(1, sizeof(*a));
    if (!a)
        return NULL;
    a->key_ids = calloc(n_keys + 1, sizeof(*a->key_ids));
    if (!a->key_ids) {
        free(a);
        return NULL;
    }
    for (size_t i = 0; i < n_keys; i++)
        srv_audit_key_id(api_keys[i], a->key_ids[i], sizeof(a->key_ids[i]));
    a->n_keys = n_keys;
    a->log = log;
    a->include_content = include_content;
    a->required = required;
    return a;
}

void srv_audit_free(struct srv_audit *a)
{
    if (!a)
        return;
    inf_audit_close(a->log);
    free(a->key_ids);
    free(a);
}

bool srv_audit_content(const struct srv_audit *a)
{
    return a && a->include_content;
}

bool srv_audit_required(const struct srv_audit *a)
{
    return a && a->required;
}

static void iso_now(char *out, size_t n)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char b[24];
    strftime(b, sizeof(b), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, n, "%.19s.%03dZ", b, (int)(ts.tv_nsec / 1000000) % 1000);
}

/* The request fields that decide what was asked (never the prompt itself). */
static json_t *params_of(json_t *body)
{
    static const char *const keys[] = {
        "temperature", "top_p",  "top_k",    "max_tokens",   "max_completion_tokens", "seed",
        "n",           "stream", "logprobs", "top_logprobs", "response_format",       "tool_choice",
        "user"};
    json_t *p = json_object();
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        json_t *v = json_object_get(body, keys[i]);
        if (v && (!json_is_object(v) || strcmp(keys[i], "response_format") != 0))
            json_object_set(p, keys[i], v);
        else if (v) /* response_format: its type only */
            json_object_set(p, keys[i], json_object_get(v, "type"));
    }
    json_t *tools = json_object_get(body, "tools");
    if (json_is_array(tools))
        json_object_set_new(p, "n_tools", json_integer((json_int_t)json_array_size(tools)));
    json_t *msgs = json_object_get(body, "messages");
    if (json_is_array(msgs))
        json_object_set_new(p, "n_messages", json_integer((json_int_t)json_array_size(msgs)));
    return p;
}

void srv_audit_client(const struct http_req *r, char *out, size_t size)
{
    out[0] = '\0';
    if (!r->conn) {
        if (r->client)
            snprintf(out, size, "%s", r->client);
        return;
    }
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (ci && ci->client_addr)
        getnameinfo(ci->client_addr,
                    ci->client_addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                                           : sizeof(struct sockaddr_in),
                    out, (socklen_t)size, NULL, 0, NI_NUMERICHOST);
}

bool srv_audit_request(struct srv_audit *a, struct http_req *r)
{
    if (!a || r->audited)
        return true;
    r->audited = true;
    char ts[40];
    iso_now(ts, sizeof(ts));
    char client[64];
    srv_audit_client(r, client, sizeof(client));
    json_t *o = json_object();
    json_object_set_new(o, "type", json_string("request"));
    json_object_set_new(o, "ts", json_string(ts));
    json_object_set_new(o, "request_id", json_string(r->req_id));
    json_object_set_new(o, "key_id",
                        r->key_index >= 0 && (size_t)r->key_index < a->n_keys
                            ? json_string(a->key_ids[r->key_index])
                            : json_null());
    json_object_set_new(o, "client", json_string(client));
    json_object_set_new(o, "method", r->method ? json_string(r->method) : json_null());
    json_object_set_new(o, "route", json_string(r->route ? r->route->path : "other"));
    json_object_set_new(o, "model", r->model[0] ? json_string(r->model) : json_null());
    json_object_set_new(o, "status", json_integer(r->status));
    json_object_set_new(o, "latency_ms",
                        json_real((double)(long long)((http_now() - r->t0) * 1e4) / 10.0));
    json_object_set_new(o, "prompt_tokens",
                        r->prompt_tokens >= 0 ? json_integer(r->prompt_tokens) : json_null());
    json_object_set_new(o, "completion_tokens",
                        r->completion_tokens >= 0 ? json_integer(r->completion_tokens)
                                                  : json_null());
    json_object_set_new(o, "cache", r->cache_state ? json_string(r->cache_state) : json_null());
    json_t *body = NULL;
    if (r->body && r->len) {
        json_error_t je;
        body = json_loadb(r->body, r->len, 0, &je);
    }
    if (json_is_object(body)) {
        json_object_set_new(o, "params", params_of(body));
        if (a->include_content)
            json_object_set(o, "request", body);
    }
    json_decref(body);
    if (a->include_content && r->reply_copy) {
        json_error_t je;
        json_t *rep = json_loads(r->reply_copy, 0, &je);
        if (rep)
            json_object_set_new(o, "response", rep);
    }
    char *text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
    json_decref(o);
    if (!text) {
        INF_LOG_ERROR("audit", "request %s: out of memory building its audit record", r->req_id);
        return false;
    }
    struct inf_error err = {0};
    inf_status st = inf_audit_append(a->log, text, strlen(text), &err);
    free(text);
    if (st) {
        atomic_fetch_add(&a->failed, 1);
        INF_LOG_ERROR("audit", "request %s: audit record not written: %s", r->req_id,
                      inf_error_message(&err));
        return false;
    }
    atomic_fetch_add(&a->written, 1);
    return true;
}

bool srv_audit_append_raw(struct srv_audit *a, const char *json, size_t len)
{
    json_t *o = json_loadb(json, len, 0, NULL);
    if (!json_is_object(o)) {
        json_decref(o);
        return false;
    }
    char ts[40];
    iso_now(ts, sizeof(ts));
    json_object_set_new(o, "ts", json_string(ts));
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    struct inf_error err = {0};
    inf_status st = text ? inf_audit_append(a->log, text, strlen(text), &err) : INF_ENOMEM;
    free(text);
    atomic_fetch_add(st == INF_OK ? &a->written : &a->failed, 1);
    if (st)
        INF_LOG_ERROR("audit", "job event not written: %s", inf_error_message(&err));
    return st == INF_OK;
}
