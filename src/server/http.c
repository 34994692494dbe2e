/*
 * http.c - libmicrohttpd set-up, the route table, and the checks every request passes before
 * its handler runs (route and method, CORS preflight, API key, rate limit, shutdown, body size).
 * See http.h for the threading model.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/buf.h"
#include "inferno/log.h"
#include "server/audit_hook.h"
#include "server/handlers.h"
#include "server/http_internal.h"
#include "server/kserve.h"
#include "server/ws.h"

#define RATE_MAX_BUCKETS 4096
#define HTTP_MAX_DISCARD ((unsigned long long)64 << 20) /* body bytes read only to be dropped */

const int http_metric_status[HTTP_N_STATUS - 1] = {200, 204, 400, 401, 403, 404, 405,
                                                   413, 415, 429, 431, 500, 501, 503};

/* The request context of a request whose URL decodes to a NUL or control byte (see on_uri). */
static char bad_uri_marker;

static const struct http_route routes[] = {
    {"/v1/chat/completions", false, "POST", false, api_chat, NULL, false, false},
    {"/v1/completions", false, "POST", false, api_completions, NULL, false, false},
    {"/v1/embeddings", false, "POST", false, api_embeddings, NULL, false, false},
    {"/v1/rerank", false, "POST", false, api_rerank, NULL, false, false},
    {"/rerank", false, "POST", false, api_rerank, NULL, false, false},
    {"/v1/models", false, "GET", false, api_models, NULL, false, false},
    {"/v1/models/", true, "GET", false, api_model, NULL, false, false},
    {"/health", false, "GET", true, api_health, NULL, false, false},
    {"/metrics", false, "GET", false, api_metrics, NULL, false, false},
    {"/tokenize", false, "POST", false, api_tokenize, NULL, false, false},
    {"/detokenize", false, "POST", false, api_detokenize, NULL, false, false},
    {"/apply-template", false, "POST", false, api_apply_template, NULL, false, false},
    /* WebSocket (ws.c) */
    {"/v1/ws", false, "GET", false, ws_upgrade, NULL, true, false},
    /* the Files and Batch API (jobs_api.c) */
    {"/v1/files", false, "POST", false, api_files_create, NULL, false, true},
    {"/v1/files", false, "GET", false, api_files_list, NULL, false, false},
    {"/v1/files/", true, "GET", false, api_file_get, NULL, false, false},
    {"/v1/files/", true, "DELETE", false, api_file_delete, NULL, false, false},
    {"/v1/batches", false, "POST", false, api_batches_create, NULL, false, false},
    {"/v1/batches", false, "GET", false, api_batches_list, NULL, false, false},
    {"/v1/batches/", true, "GET", false, api_batch_get, NULL, false, false},
    {"/v1/batches/", true, "POST", false, api_batch_cancel, NULL, false, false},
    /* Ollama's API (ollama.c) */
    {"/", false, "GET", true, ollama_root, &ollama_sink, false, false},
    {"/api/generate", false, "POST", false, ollama_generate, &ollama_sink, false, false},
    {"/api/chat", false, "POST", false, ollama_chat, &ollama_sink, false, false},
    {"/api/embed", false, "POST", false, ollama_embed, &ollama_sink, false, false},
    {"/api/embeddings", false, "POST", false, ollama_embeddings, &ollama_sink, false, false},
    {"/api/tags", false, "GET", false, ollama_tags, &ollama_sink, false, false},
    {"/api/show", false, "POST", false, ollama_show, &ollama_sink, false, false},
    {"/api/ps", false, "GET", false, ollama_ps, &ollama_sink, false, false},
    {"/api/version", false, "GET", false, ollama_version, &ollama_sink, false, false},
    {"/api/copy", false, "POST", false, ollama_copy, &ollama_sink, false, false},
    {"/api/delete", false, "DELETE", false, ollama_delete, &ollama_sink, false, false},
    {"/api/pull", false, "POST", false, ollama_pull, &ollama_sink, false, false},
    {"/api/push", false, "POST", false, ollama_push, &ollama_sink, false, false},
    {"/api/create", false, "POST", false, ollama_create, &ollama_sink, false, false},
    /* Ollama's 404 shape */
    {"/api/", true, "POST", false, ollama_unknown, &ollama_sink, false, false},
    /* the Open Inference Protocol for ONNX models (kserve.c) */
    {"/v2", false, "GET", false, kserve_server, NULL, false, false},
    {"/v2/health/", true, "GET", true, kserve_health, NULL, false, false},
    {"/v2/models/", true, "GET", false, kserve_model_get, NULL, false, false},
    {"/v2/models/", true, "POST", false, kserve_model_post, NULL, false, false},
};
#define N_ROUTES (sizeof(routes) / sizeof(routes[0]))
_Static_assert(N_ROUTES <= HTTP_MAX_ROUTES, "HTTP_MAX_ROUTES is too small for the route table");

struct rate_bucket {
    char key[72];
    double tokens, last;
};

/* ---- checks --------------------------------------------------------------------------------- */

static void sha256(const void *d, size_t n, unsigned char out[32])
{
    unsigned int len = 32;
    if (!EVP_Digest(d, n, out, &len, EVP_sha256(), NULL))
        memset(out, 0, 32);
}

/*
 * Which API key the request carries: its index, -1 when none was given, -2 when it is wrong.
 * Keys are compared as SHA-256 digests with CRYPTO_memcmp, so neither the content nor the length
 * of a key leaks through timing; every key is compared, matched or not.
 */
static int check_key(struct http_server *s, struct http_req *r)
{
    const char *h =
        MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!h)
        return -1;
    if (strncasecmp(h, "Bearer ", 7) != 0)
        return -2;
    h += 7;
    while (*h == ' ')
        h++;
    return http_key_index(s, h);
}

int http_key_index(struct http_server *s, const char *h)
{
    unsigned char d[32];
    sha256(h, strlen(h), d);
    int found = -2;
    for (size_t i = 0; i < s->n_keys; i++)
        if (CRYPTO_memcmp(d, s->key_hash[i], 32) == 0 && found == -2)
            found = (int)i;
    return found;
}

/* Token bucket per key (or client address). Returns 0, or the seconds to wait. */
static int rate_check(struct http_server *s, const char *key)
{
    double rpm = s->p.rate_limit_rpm, now = http_now();
    int wait = 0;
    pthread_mutex_lock(&s->lock);
    struct rate_bucket *b = NULL, *oldest = NULL;
    for (size_t i = 0; i < s->n_buckets && !b; i++) {
        if (strcmp(s->buckets[i].key, key) == 0)
            b = &s->buckets[i];
        else if (!oldest || s->buckets[i].last < oldest->last)
            oldest = &s->buckets[i];
    }
    if (!b) {
        b = s->n_buckets < RATE_MAX_BUCKETS ? &s->buckets[s->n_buckets++] : oldest;
        snprintf(b->key, sizeof(b->key), "%s", key);
        b->tokens = rpm;
        b->last = now;
    }
    b->tokens = fmin(rpm, b->tokens + (now - b->last) * rpm / 60.0);
    b->last = now;
    if (b->tokens >= 1.0)
        b->tokens -= 1.0;
    else
        wait = (int)ceil((1.0 - b->tokens) * 60.0 / rpm);
    pthread_mutex_unlock(&s->lock);
    return wait < 1 && wait != 0 ? 1 : wait;
}

static bool sane_request_id(const char *v)
{
    size_t n = 0;
    for (; v[n]; n++) {
        char c = v[n];
        if (n >= 64 || !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                         (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' || c == ':'))
            return false;
    }
    return n > 0;
}

/*
 * A URL that percent-decodes to a NUL or a control byte: libmicrohttpd hands handlers the decoded
 * URL as a C string, so "/v1/models/NAME%00junk" would arrive as "/v1/models/NAME".
 */
static bool uri_has_control(const char *u)
{
    for (; *u; u++) {
        unsigned char c = (unsigned char)*u;
        if (c < 0x20 || c == 0x7f)
            return true;
        if (c == '%' && isxdigit((unsigned char)u[1]) && isxdigit((unsigned char)u[2])) {
            char hex[3] = {u[1], u[2], 0};
            unsigned long v = strtoul(hex, NULL, 16);
            if (v < 0x20 || v == 0x7f)
                return true;
        }
    }
    return false;
}

/* Called with the raw request target before it is decoded; its result starts the context. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    (void)cls;
    (void)conn;
    return uri_has_control(uri) ? &bad_uri_marker : NULL;
}

struct framing {
    int n_cl;
    const char *cl;
    bool conflict;
};

static enum MHD_Result count_cl(void *cls, enum MHD_ValueKind kind, const char *key,
                                const char *value)
{
    struct framing *f = cls;
    (void)kind;
    if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) != 0)
        return MHD_YES;
    if (f->n_cl++ && strcmp(f->cl, value ? value : "") != 0)
        f->conflict = true;
    if (f->n_cl == 1)
        f->cl = value ? value : "";
    return MHD_YES;
}

/*
 * Why the request's framing is ambiguous (RFC 9112 6.1, 6.3), or NULL: Content-Length headers
 * that disagree (libmicrohttpd would use the first and read the rest of the bytes as another
 * request), or Content-Length together with Transfer-Encoding.
 */
static const char *framing_error(struct MHD_Connection *conn)
{
    struct framing f = {0};
    MHD_get_connection_values(conn, MHD_HEADER_KIND, count_cl, &f);
    if (f.conflict)
        return "the request has Content-Length headers with different values";
    if (f.n_cl &&
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING))
        return "the request has both Content-Length and Transfer-Encoding";
    return NULL;
}

/*
 * Whether the Host header names this server: checked when it listens on loopback (or
 * server.allowed_hosts is set), so that a web page whose name was rebound to 127.0.0.1 cannot
 * talk to it. The port is not compared. A request without Host (HTTP/1.0) passes.
 */
static bool host_allowed(const struct http_server *s, const char *h)
{
    if (!s->check_host || !h)
        return true;
    const char *name = h, *end;
    if (*h == '[') {
        name = h + 1;
        end = strchr(name, ']');
        if (!end)
            return false;
        if (end[1] != '\0' && end[1] != ':')
            return false;
    } else {
        end = strchr(h, ':');
        if (!end)
            end = h + strlen(h);
    }
    size_t n = (size_t)(end - name);
    if (*end == ':' || (*end == ']' && end[1] == ':')) {
        const char *port = *end == ':' ? end + 1 : end + 2;
        if (!*port || strspn(port, "0123456789") != strlen(port))
            return false;
    }
    const char *bound = s->p.host && *s->p.host ? s->p.host : "127.0.0.1";
    const char *fixed[] = {"localhost", "127.0.0.1", "::1", bound};
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
        if (strlen(fixed[i]) == n && strncasecmp(fixed[i], name, n) == 0)
            return true;
    for (size_t i = 0; i < s->p.n_allowed_hosts; i++) {
        const char *a = s->p.allowed_hosts[i];
        if (strcmp(a, "*") == 0 || (strlen(a) == n && strncasecmp(a, name, n) == 0))
            return true;
    }
    return false;
}

/* Content-Type is application/json (parameters such as charset allowed). */
static bool is_json_type(const char *ct)
{
    if (!ct)
        return false;
    while (*ct == ' ' || *ct == '\t')
        ct++;
    static const char json[] = "application/json";
    if (strncasecmp(ct, json, sizeof(json) - 1) != 0)
        return false;
    ct += sizeof(json) - 1;
    return *ct == '\0' || *ct == ';' || *ct == ' ' || *ct == '\t';
}

/* The request declares a body (a non-zero Content-Length, or chunked). */
static bool has_body(struct MHD_Connection *conn)
{
    const char *cl =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING))
        return true;
    return cl && strspn(cl, " 0") != strlen(cl);
}

/* The largest body a request may send: uploads have their own bound. */
static size_t body_limit(const struct http_server *s, const struct http_req *r)
{
    if (r->route && r->route->upload && s->p.max_upload_bytes > s->p.max_body_bytes)
        return s->p.max_upload_bytes;
    return s->p.max_body_bytes;
}

static const struct http_route *find_route(const char *url, const char *method, bool *path_known);

const struct http_route *http_route_lookup(const char *url, const char *method)
{
    bool known;
    return find_route(url, method, &known);
}

static const struct http_route *find_route(const char *url, const char *method, bool *path_known)
{
    *path_known = false;
    bool exact = false;
    const struct http_route *hit = NULL;
    for (size_t i = 0; i < N_ROUTES; i++) {
        const struct http_route *rt = &routes[i];
        bool match = rt->prefix ? strncmp(url, rt->path, strlen(rt->path)) == 0 &&
                                      url[strlen(rt->path)] != '\0'
                                : strcmp(url, rt->path) == 0;
        if (!match)
            continue;
        *path_known = true;
        exact = exact || !rt->prefix;
        if (!hit && (strcmp(method, rt->method) == 0 ||
                     (strcmp(method, "HEAD") == 0 && strcmp(rt->method, "GET") == 0)))
            hit = rt; /* the first row that matches */
    }
    /* a path of its own with another method is a 405, not the catch-all prefix row */
    return hit && hit->prefix && exact ? NULL : hit;
}

/* The sink of the API a path belongs to (the first row of the table that matches it). */
static const struct http_sink *sink_for(const char *url)
{
    for (size_t i = 0; i < N_ROUTES; i++) {
        const struct http_route *rt = &routes[i];
        bool match =
            rt->prefix ? strncmp(url, rt->path, strlen(rt->path)) == 0 : strcmp(url, rt->path) == 0;
        if (match)
            return rt->sink;
    }
    return NULL;
}

static const char *allowed_methods(const char *url, bool cors)
{
    for (size_t i = 0; i < N_ROUTES; i++) {
        const struct http_route *rt = &routes[i];
        bool match =
            rt->prefix ? strncmp(url, rt->path, strlen(rt->path)) == 0 : strcmp(url, rt->path) == 0;
        if (match)
            return strcmp(rt->method, "GET") == 0      ? (cors ? "GET, HEAD, OPTIONS" : "GET, HEAD")
                   : strcmp(rt->method, "DELETE") == 0 ? (cors ? "DELETE, OPTIONS" : "DELETE")
                                                       : (cors ? "POST, OPTIONS" : "POST");
    }
    return "GET";
}

/* The origin to allow, or NULL (CORS off, no Origin header, or an origin not listed). */
static const char *cors_origin(struct http_server *s, struct MHD_Connection *c)
{
    if (!s->p.n_cors_origins)
        return NULL;
    const char *o = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin");
    if (!o)
        return NULL;
    for (size_t i = 0; i < s->p.n_cors_origins; i++) {
        if (strcmp(s->p.cors_origins[i], "*") == 0)
            return "*";
        if (strcmp(s->p.cors_origins[i], o) == 0)
            return s->p.cors_origins[i];
    }
    return NULL;
}

static int status_slot(int status)
{
    for (int i = 0; i < HTTP_N_STATUS - 1; i++)
        if (http_metric_status[i] == status)
            return i;
    return HTTP_N_STATUS - 1;
}

/* Add the headers every response carries and queue it. */
static enum MHD_Result send_response(struct http_req *r)
{
    if (!r->resp) {
        http_reply_errorf(r, 500, NULL, NULL, "internal error: no response was produced");
        if (!r->resp)
            return MHD_NO;
    }
    MHD_add_response_header(r->resp, "X-Request-Id", r->req_id);
    if (r->cors_origin) {
        MHD_add_response_header(r->resp, "Access-Control-Allow-Origin", r->cors_origin);
        MHD_add_response_header(r->resp, "Access-Control-Expose-Headers",
                                "X-Request-Id, Retry-After");
        if (strcmp(r->cors_origin, "*") != 0)
            MHD_add_response_header(r->resp, "Vary", "Origin");
    }
    if (atomic_load(&r->srv->stopping) || r->close || http_guard_reserve(r->hc))
        MHD_add_response_header(r->resp, MHD_HTTP_HEADER_CONNECTION, "close");
    /* the audit record goes before the response (a stream's after its end: on_completed) */
    if (r->srv->p.audit && !r->on_end && !srv_audit_request(r->srv->p.audit, r) &&
        srv_audit_required(r->srv->p.audit)) {
        http_reply_errorf(r, 503, NULL, "audit_unavailable",
                          "the request could not be recorded in the audit log (audit.required)");
        MHD_add_response_header(r->resp, "X-Request-Id", r->req_id);
    }
    http_guard_phase(r->srv, r->hc, HTTP_PHASE_BUSY);
    size_t route = r->route ? (size_t)(r->route - routes) : N_ROUTES;
    atomic_fetch_add(&r->srv->requests[route][status_slot(r->status)], 1);
    enum MHD_Result ret = MHD_queue_response(r->conn, (unsigned int)r->status, r->resp);
    MHD_destroy_response(r->resp);
    r->resp = NULL;
    return ret;
}

/* ---- MHD callbacks -------------------------------------------------------------------------- */

/*
 * Answer a request refused before its body was read. A body of up to HTTP_MAX_DISCARD bytes is
 * read and dropped first, so that clients that send the whole body before reading (most do)
 * see the answer and the connection stays usable; a larger one, a chunked one, or one the client
 * holds back until it gets 100 Continue (Expect) is not read at all: the answer goes out at once
 * and libmicrohttpd closes the connection.
 */
static enum MHD_Result reject(struct http_req *r)
{
    /* the client waits for 100 Continue before it sends the body: give it the answer instead */
    if (MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_EXPECT))
        return send_response(r);
    const char *cl =
        MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    const char *te =
        MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING);
    bool small = !te && (!cl || strtoull(cl, NULL, 10) <= HTTP_MAX_DISCARD);
    if (small)
        return MHD_YES; /* sent by the final call */
    return send_response(r);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    struct http_server *s = cls;
    struct http_req *r = *con_cls;

    if (!r || r == (void *)&bad_uri_marker) { /* headers are in: the checks that need no body */
        bool bad_uri = r != NULL;
        r = calloc(1, sizeof(*r));
        if (!r)
            return MHD_NO;
        *con_cls = r;
        r->srv = s;
        r->params = &s->p;
        r->conn = conn;
        r->method = method;
        r->url = url;
        r->t0 = http_now();
        r->key_index = -1;
        r->prompt_tokens = r->completion_tokens = -1;
        r->hc = http_guard_conn(conn);
        http_guard_phase(s, r->hc, HTTP_PHASE_BODY);
        const char *rid = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Request-Id");
        if (rid && sane_request_id(rid))
            snprintf(r->req_id, sizeof(r->req_id), "%s", rid);
        else {
            memcpy(r->req_id, "req-", 4);
            api_random_id(r->req_id + 4, 24);
        }
        r->cors_origin = cors_origin(s, conn);
        atomic_fetch_add(&s->in_flight, 1);
        r->counted = true;

        const char *framing = framing_error(conn);
        if (framing) { /* where this request ends is unknown: answer and close */
            http_reply_errorf(r, 400, NULL, "invalid_request", "%s", framing);
            r->close = true;
            return send_response(r);
        }
        if (bad_uri) {
            http_reply_errorf(r, 400, NULL, "invalid_url",
                              "the URL contains a NUL or control character (percent-encoded "
                              "or not)");
            return reject(r);
        }
        const char *hh = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
        if (!hh && strcmp(version, MHD_HTTP_VERSION_1_0) != 0) { /* RFC 9112 3.2 */
            http_reply_errorf(r, 400, NULL, "invalid_request",
                              "an HTTP/1.1 request must have a Host header");
            return reject(r);
        }
        if (!host_allowed(s, hh)) {
            http_reply_errorf(r, 403, NULL, "host_not_allowed",
                              "Host '%.100s' is not this server's name: add it to "
                              "server.allowed_hosts if it is (a defence against DNS rebinding)",
                              hh);
            return reject(r);
        }
        bool path_known;
        if (strcmp(method, "OPTIONS") == 0 && s->p.n_cors_origins) {
            find_route(url, "GET", &path_known);
            if (!path_known)
                find_route(url, "POST", &path_known);
            if (!path_known)
                find_route(url, "DELETE", &path_known);
            if (!path_known) {
                http_reply_errorf(r, 404, NULL, "not_found", "no route for %s %.200s", method, url);
                return reject(r);
            }
            /* preflight: no key needed; the browser sends none */
            http_reply_text(r, 204, "text/plain", "", 0);
            if (r->cors_origin) {
                MHD_add_response_header(r->resp, "Access-Control-Allow-Methods",
                                        allowed_methods(url, true));
                MHD_add_response_header(r->resp, "Access-Control-Allow-Headers",
                                        "Authorization, Content-Type, X-Request-Id, "
                                        "OpenAI-Organization, OpenAI-Project, X-Stainless-Lang, "
                                        "X-Stainless-Package-Version, X-Stainless-OS, "
                                        "X-Stainless-Arch, X-Stainless-Runtime, "
                                        "X-Stainless-Runtime-Version, X-Stainless-Retry-Count, "
                                        "X-Stainless-Timeout");
                MHD_add_response_header(r->resp, "Access-Control-Max-Age", "600");
            }
            return reject(r);
        }
        r->route = find_route(url, method, &path_known);
        r->sink = sink_for(url);
        if (r->route && !r->route->probe && http_guard_reserve(r->hc)) {
            http_reply_errorf(r, 503, NULL, "server_busy",
                              "every connection is in use (server.max_connections); only "
                              "/health is answered on this one");
            return reject(r);
        }
        if (!r->route) {
            if (path_known) {
                http_reply_errorf(r, 405, NULL, "method_not_allowed",
                                  "method %s is not allowed for %.200s", method, url);
                MHD_add_response_header(r->resp, MHD_HTTP_HEADER_ALLOW,
                                        allowed_methods(url, s->p.n_cors_origins > 0));
            } else {
                http_reply_errorf(r, 404, NULL, "not_found", "no route for %s %.200s", method, url);
            }
            return reject(r);
        }
        int key = -1;
        if (s->n_keys && !r->route->probe && !r->route->own_auth) {
            key = check_key(s, r);
            if (key == -1) {
                http_reply_errorf(r, 401, NULL, "invalid_api_key",
                                  "you didn't provide an API key: send it in the Authorization "
                                  "header as 'Bearer YOUR_KEY'");
                return reject(r);
            }
            if (key < 0) {
                http_reply_errorf(r, 401, NULL, "invalid_api_key", "incorrect API key provided");
                return reject(r);
            }
            r->key_index = key;
        }
        if (strcmp(r->route->method, "GET") != 0 && has_body(conn) && !r->route->upload) {
            /* a cross-site "simple" request (no CORS preflight) cannot send application/json */
            const char *ct =
                MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
            /* Ollama's clients and docs (curl -d) send bodies without a JSON type: taken on its
               routes when no browser is involved (browsers send Origin with every POST) */
            bool lenient =
                r->route->sink && !MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Origin");
            if (!is_json_type(ct) && !lenient) {
                http_reply_errorf(r, 415, NULL, "unsupported_media_type",
                                  "send the JSON body with 'Content-Type: application/json' "
                                  "(got '%.100s')",
                                  ct ? ct : "no Content-Type");
                return reject(r);
            }
        }
        if (r->route->upload && MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Origin") &&
            !r->cors_origin) {
            /* a form upload needs no CORS preflight: only origins allowed by CORS may send one */
            http_reply_errorf(r, 403, NULL, "origin_not_allowed",
                              "uploads from a web page need its origin in server.cors_origins");
            return reject(r);
        }
        if (s->p.rate_limit_rpm > 0 && !r->route->probe) {
            char rk[72];
            if (key >= 0)
                snprintf(rk, sizeof(rk), "key:%d", key);
            else {
                const union MHD_ConnectionInfo *ci =
                    MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
                char host[64] = "?";
                if (ci && ci->client_addr)
                    getnameinfo(ci->client_addr,
                                ci->client_addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                                                       : sizeof(struct sockaddr_in),
                                host, sizeof(host), NULL, 0, NI_NUMERICHOST);
                snprintf(rk, sizeof(rk), "ip:%s", host);
            }
            int wait = rate_check(s, rk);
            if (wait > 0) {
                char ra[16];
                http_reply_errorf(r, 429, NULL, "rate_limit_exceeded",
                                  "rate limit reached: %d requests per minute; retry in %d s",
                                  s->p.rate_limit_rpm, wait);
                snprintf(ra, sizeof(ra), "%d", wait);
                MHD_del_response_header(r->resp, MHD_HTTP_HEADER_RETRY_AFTER, "1");
                MHD_add_response_header(r->resp, MHD_HTTP_HEADER_RETRY_AFTER, ra);
                return reject(r);
            }
        }
        if (atomic_load(&s->stopping)) {
            http_reply_errorf(r, 503, NULL, "shutting_down", "the server is shutting down");
            return reject(r);
        }
        const char *cl =
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoull(cl, NULL, 10) > body_limit(s, r)) {
            http_reply_errorf(r, 413, NULL, "request_too_large",
                              "the request body is %s bytes; at most %zu are accepted", cl,
                              body_limit(s, r));
            return reject(r);
        }
        return MHD_YES;
    }

    if (*upload_data_size) { /* body bytes */
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        r->discarded += n;
        if (r->resp || r->too_large || r->len + n > body_limit(s, r)) {
            /* refused already, or a chunked upload past the limit: drop the rest and answer
               at its end (libmicrohttpd cannot answer in the middle of a body); the body
               deadline (server.body_timeout_seconds) bounds how long that may take */
            if (r->resp)
                return MHD_YES;
            r->too_large = true;
            free(r->body);
            r->body = NULL;
            r->len = r->cap = 0;
            return MHD_YES;
        }
        return inf__append(&r->body, &r->len, &r->cap, upload_data, n, 4096) ? MHD_YES : MHD_NO;
    }

    if (r->resp) /* refused before the body: answer now */
        return send_response(r);
    if (r->status) /* already answered */
        return MHD_YES;
    http_guard_phase(s, r->hc, HTTP_PHASE_BUSY);
    if (r->too_large) {
        http_reply_errorf(r, 413, NULL, "request_too_large",
                          "the request body is larger than %zu bytes", body_limit(s, r));
        return send_response(r);
    }
    if (!s->p.models && strncmp(r->route->path, "/v2", 3) != 0 && r->route->fn != api_health &&
        r->route->fn != api_metrics) {
        /* only ONNX models are served: the GGUF endpoints have nothing to answer with (the
           server's own /health and /metrics still answer) */
        http_reply_errorf(r, 404, NULL, "model_not_found",
                          "this server has no GGUF model; its ONNX models answer on /v2");
        return send_response(r);
    }
    r->route->fn(r);
    return send_response(r);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct http_server *s = cls;
    struct http_req *r = *con_cls;
    *con_cls = NULL;
    if (toe == MHD_REQUEST_TERMINATED_COMPLETED_OK)
        http_guard_phase(s, http_guard_conn(conn), HTTP_PHASE_HEADERS); /* keep-alive: next one */
    if (!r || r == (void *)&bad_uri_marker)
        return;
    if (r->on_end)
        r->on_end(r->on_end_ctx, toe != MHD_REQUEST_TERMINATED_COMPLETED_OK);
    if (s->p.audit && r->status && !r->audited) {
        if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK)
            r->status = 499; /* the stream ended before its end */
        srv_audit_request(s->p.audit, r);
    }
    free(r->reply_copy);
    if (r->resp)
        MHD_destroy_response(r->resp);
    INF_LOG_INFO("http", "%s %s %d %.1f ms%s id=%s", r->method, r->url, r->status,
                 (http_now() - r->t0) * 1e3,
                 toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " (client gone)", r->req_id);
    if (r->counted)
        atomic_fetch_sub(&s->in_flight, 1);
    free(r->body);
    free(r);
}

static void mhd_log(void *cls, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    char buf[512];
    vsnprintf(buf, sizeof(buf), fmt, ap);
    size_t n = strlen(buf);
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        buf[--n] = '\0';
    INF_LOG_DEBUG("http", "libmicrohttpd: %s", buf);
}

/* ---- start / stop --------------------------------------------------------------------------- */

static char *read_file(const char *path, struct inf_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        inf_error_set(err, INF_EIO, "cannot open '%s': %s", path, strerror(errno));
        return NULL;
    }
    char *buf = NULL;
    size_t len = 0, cap = 0, n;
    char tmp[4096];
    while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0) {
        if (!inf__append(&buf, &len, &cap, tmp, n, 0)) {
            free(buf);
            fclose(f);
            inf_error_set(err, INF_ENOMEM, "out of memory reading '%s'", path);
            return NULL;
        }
    }
    fclose(f);
    if (!buf)
        inf_error_set(err, INF_EFORMAT, "'%s' is empty", path);
    return buf;
}

static bool is_loopback(const struct sockaddr *sa)
{
    /* copies, not casts: a struct sockaddr carries no alignment promise */
    if (sa->sa_family == AF_INET) {
        struct sockaddr_in in4;
        memcpy(&in4, sa, sizeof(in4));
        return (ntohl(in4.sin_addr.s_addr) >> 24) == 127;
    }
    if (sa->sa_family != AF_INET6)
        return false;
    struct sockaddr_in6 in6;
    memcpy(&in6, sa, sizeof(in6));
    const struct in6_addr *a = &in6.sin6_addr;
    return IN6_IS_ADDR_LOOPBACK(a) || (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
}

static void server_free(struct http_server *s)
{
    if (!s)
        return;
    while (s->tasks) {
        struct http_task_ref *n = s->tasks->next;
        free(s->tasks);
        s->tasks = n;
    }
    free(s->buckets);
    free(s->key_hash);
    free(s->exempt);
    pthread_mutex_destroy(&s->conn_lock);
    if (s->tls_key_pem) {
        OPENSSL_cleanse(s->tls_key_pem, strlen(s->tls_key_pem));
        free(s->tls_key_pem);
    }
    free(s->tls_cert_pem);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

inf_status http_server_start(const struct http_server_params *p, struct http_server **out,
                             struct inf_error *err)
{
    struct http_server *s = calloc(1, sizeof(*s));
    *out = NULL;
    if (!s)
        return inf_error_set(err, INF_ENOMEM, "out of memory");
    pthread_mutex_init(&s->lock, NULL);
    pthread_mutex_init(&s->conn_lock, NULL);
    s->p = *p;
    s->routes = routes;
    s->n_routes = N_ROUTES;
    s->buckets = calloc(RATE_MAX_BUCKETS, sizeof(*s->buckets));
    s->key_hash = calloc(p->n_api_keys + 1, sizeof(*s->key_hash));
    if (!s->buckets || !s->key_hash) {
        server_free(s);
        return inf_error_set(err, INF_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < p->n_api_keys; i++)
        sha256(p->api_keys[i], strlen(p->api_keys[i]), s->key_hash[i]);
    s->n_keys = p->n_api_keys;

    bool tls = p->tls_cert && *p->tls_cert;
    if (tls != (p->tls_key && *p->tls_key)) {
        server_free(s);
        return inf_error_set(err, INF_EINVAL, "server.tls_cert and server.tls_key go together");
    }
    if (tls) {
        s->tls_cert_pem = read_file(p->tls_cert, err);
        s->tls_key_pem = s->tls_cert_pem ? read_file(p->tls_key, err) : NULL;
        if (!s->tls_key_pem) {
            server_free(s);
            return err->code;
        }
        if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
            server_free(s);
            return inf_error_set(err, INF_EUNSUPPORTED,
                                 "this libmicrohttpd was built without TLS support");
        }
    }

    struct addrinfo hints = {0}, *ai = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    char port[16];
    snprintf(port, sizeof(port), "%d", p->port);
    int gai = getaddrinfo(p->host && *p->host ? p->host : "127.0.0.1", port, &hints, &ai);
    if (gai) {
        server_free(s);
        return inf_error_set(err, INF_EINVAL, "cannot resolve server.host '%s': %s", p->host,
                             gai_strerror(gai));
    }
    s->check_host = is_loopback(ai->ai_addr) || p->n_allowed_hosts > 0;
    for (size_t i = 0; i < p->n_allowed_hosts; i++)
        if (strcmp(p->allowed_hosts[i], "*") == 0)
            s->check_host = false;
    if (http_guard_start(s, err) != INF_OK) {
        freeaddrinfo(ai);
        http_guard_stop(s);
        server_free(s);
        return err->code;
    }
    /* poll(), not select(): descriptors above FD_SETSIZE (1024) must work too */
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC |
                     MHD_USE_POLL | MHD_USE_ERROR_LOG | MHD_ALLOW_UPGRADE;
    if (ai->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    if (tls)
        flags |= MHD_USE_TLS;
    struct MHD_OptionItem tls_opts[] = {
        {tls ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, 0, s->tls_cert_pem},
        {MHD_OPTION_HTTPS_MEM_KEY, 0, s->tls_key_pem},
        {MHD_OPTION_END, 0, NULL},
    };
    s->daemon = MHD_start_daemon(
        flags, 0, http_guard_accept, s, on_request, s, MHD_OPTION_SOCK_ADDR, ai->ai_addr,
        MHD_OPTION_CONNECTION_LIMIT, http_guard_mhd_limit(p), MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned int)p->timeout_seconds, MHD_OPTION_CONNECTION_MEMORY_LIMIT, p->max_header_bytes,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_NOTIFY_CONNECTION,
        http_guard_notify, s, MHD_OPTION_URI_LOG_CALLBACK, on_uri, s, MHD_OPTION_THREAD_STACK_SIZE,
        (size_t)8 << 20, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s, MHD_OPTION_ARRAY, tls_opts,
        MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!s->daemon) {
        http_guard_stop(s);
        server_free(s);
        return inf_error_set(err, INF_EIO,
                             "cannot listen on %s port %d (address in use, or a bad "
                             "certificate/key?)",
                             p->host, p->port);
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : p->port;
    *out = s;
    return INF_OK;
}

int http_server_port(const struct http_server *s)
{
    return s->port;
}

void http_server_quiesce(struct http_server *s)
{
    if (!s || atomic_exchange(&s->stopping, true))
        return;
    MHD_socket lfd = MHD_quiesce_daemon(s->daemon);
    if (lfd != MHD_INVALID_SOCKET)
        close(lfd);
}

void http_server_stop(struct http_server *s, int drain_ms)
{
    if (!s)
        return;
    http_server_quiesce(s);
    double deadline = http_now() + drain_ms / 1000.0;
    while (atomic_load(&s->in_flight) > 0 && http_now() < deadline)
        usleep(20 * 1000);
    int left = atomic_load(&s->in_flight);
    if (left > 0) {
        INF_LOG_WARN("http", "drain time over: cancelling %d running request(s)", left);
        pthread_mutex_lock(&s->lock);
        for (struct http_task_ref *t = s->tasks; t; t = t->next)
            srv_task_cancel(t->task);
        pthread_mutex_unlock(&s->lock);
        deadline = http_now() + 5.0;
        while (atomic_load(&s->in_flight) > 0 && http_now() < deadline)
            usleep(20 * 1000);
    }
    ws_stop_all(s); /* upgraded connections are the application's to close */
    http_guard_stop(s);
    MHD_stop_daemon(s->daemon);
    server_free(s);
}
