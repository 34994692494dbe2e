/*
 * server/http_internal.h - the router's state: the route table's row type, the server struct,
 * the connection guard (http_conn.c). Shared by http.c, http_conn.c, response.c (the server's
 * lock and task list) and metrics.c (the request counters); the endpoint handlers see only
 * handlers.h and response.h. Internal to src/server.
 */
#ifndef INFERNO_SERVER_HTTP_INTERNAL_H
#define INFERNO_SERVER_HTTP_INTERNAL_H

#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>

#include "server/api.h"
#include "server/http.h"
#include "server/response.h"

/* Status codes counted per route in /metrics; the last slot is "other". */
#define HTTP_N_STATUS 15
extern const int http_metric_status[HTTP_N_STATUS - 1];

struct http_req;
typedef void (*http_handler_fn)(struct http_req *r);

/* A row of the route table (http.c), the one place that names every endpoint. */
struct http_route {
    const char *path; /* exact, or a prefix ending in '/' (then /metrics shows path + "{id}") */
    bool prefix;
    const char *method; /* "GET", "POST" or "DELETE" */
    bool probe; /* for load balancers (/health): no API key, no rate limit, reserved connections */
    http_handler_fn fn;
    /* the output of the routes of a foreign API (Ollama's): errors before the handler too */
    const struct http_sink *sink;
    bool own_auth; /* the handler checks the API key itself (WebSocket: a browser sends none) */
    /* the body is a multipart/form-data upload (POST /v1/files), up to max_upload_bytes */
    bool upload;
};
#define HTTP_MAX_ROUTES 52 /* rows of the route table at most; counters keep one more: other */

/* Every submitted, unfinished task, to cancel at the end of a drain (response.c keeps it). */
struct http_task_ref {
    struct srv_task *task;
    struct http_task_ref *next;
};

/* Where a connection's current request is; the guard's deadlines apply to the first two. */
enum http_phase {
    HTTP_PHASE_HEADERS, /* waiting for a request's headers (new or idle keep-alive) */
    HTTP_PHASE_BODY,    /* headers in, body arriving */
    HTTP_PHASE_BUSY,    /* request complete: handled, answered */
};

struct http_server {
    struct http_server_params p;
    struct MHD_Daemon *daemon;
    int port;
    char *tls_cert_pem, *tls_key_pem;
    unsigned char (*key_hash)[32]; /* SHA-256 of each API key */
    size_t n_keys;
    atomic_bool stopping;
    atomic_int in_flight; /* requests being handled (for draining) */

    pthread_mutex_t lock;        /* guards the task registry and the rate-limit table */
    struct http_task_ref *tasks; /* every submitted, unfinished task (to cancel at shutdown) */
    struct rate_bucket *buckets;
    size_t n_buckets;

    bool check_host; /* Host must be a loopback name, the bound address or allowed_hosts */

    /* the connection guard (http_conn.c) */
    pthread_mutex_t conn_lock;
    struct http_conn *conns; /* every open connection */
    int n_conns, n_reserve;  /* open and not being closed: normal, reserved for /health */
    bool pending_reserve;    /* accept policy -> STARTED notification (listening thread) */
    char (*exempt)[46];      /* server.per_ip_exempt, canonical text */
    size_t n_exempt;
    pthread_t guard;
    bool guard_started;
    atomic_bool guard_stop;

    /* metrics: requests by route (a row of routes, then n_routes: 404s, 405s...) and status */
    const struct http_route *routes;
    size_t n_routes;
    atomic_uint_least64_t requests[HTTP_MAX_ROUTES + 1][HTTP_N_STATUS];
    /* batch requests this process ran (jobs_exec.c), by endpoint (enum inf_batch_endpoint)
       and outcome (0: status 200, 1: any other); 503 retries are not counted */
    atomic_uint_least64_t batch_requests[3][2];
};

/* Which API key token (without "Bearer ") is: its index, or -2 when it is none of them. */
int http_key_index(struct http_server *s, const char *token);
/* The route row for a path and method (NULL: none), as the router finds it. */
const struct http_route *http_route_lookup(const char *url, const char *method);

/* The connection guard (http_conn.c): limits per address, deadlines, a reserve for /health. */
inf_status http_guard_start(struct http_server *s, struct inf_error *err);
void http_guard_stop(struct http_server *s);
unsigned int http_guard_mhd_limit(const struct http_server_params *p);
enum MHD_Result http_guard_accept(void *cls, const struct sockaddr *addr, socklen_t addrlen);
void http_guard_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                       enum MHD_ConnectionNotificationCode code);
struct http_conn *http_guard_conn(struct MHD_Connection *conn);
void http_guard_phase(struct http_server *s, struct http_conn *c, enum http_phase phase);
bool http_guard_reserve(const struct http_conn *c);
/* The client of connection fd closed its side: true when that is a half-close (see above). */
bool http_guard_half_close(struct http_server *s, int fd);

#endif
