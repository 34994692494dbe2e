/*
 * server/http_internal.h - what http.c (connections, routing, auth) shares with the endpoint
 * handlers (api_handlers.c) and the metrics (metrics.c). Internal to src/server.
 */
#ifndef INFERNO_SERVER_HTTP_INTERNAL_H
#define INFERNO_SERVER_HTTP_INTERNAL_H

#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>

#include "server/api.h"
#include "server/http.h"

enum http_route_id {
    ROUTE_CHAT,
    ROUTE_COMPLETIONS,
    ROUTE_EMBEDDINGS,
    ROUTE_MODELS,
    ROUTE_MODEL,
    ROUTE_HEALTH,
    ROUTE_METRICS,
    ROUTE_TOKENIZE,
    ROUTE_DETOKENIZE,
    ROUTE_TEMPLATE,
    ROUTE_OTHER, /* 404s, 405s... */
    ROUTE_COUNT
};

/* Status codes counted per route in /metrics; the last slot is "other". */
#define HTTP_N_STATUS 15
extern const int http_metric_status[HTTP_N_STATUS - 1];

struct http_req;
typedef void (*http_handler_fn)(struct http_req *r);

struct http_route {
    const char *path; /* exact, or a prefix ending in '/' when prefix is set */
    bool prefix;
    const char *method; /* "GET" or "POST" */
    enum http_route_id id;
    bool auth; /* false: reachable without an API key (/health) */
    http_handler_fn fn;
};
extern const char *const http_route_label[ROUTE_COUNT];

struct http_stream;
struct http_conn; /* http_conn.c: one per open connection */

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

    /* metrics: requests by route and status */
    atomic_uint_least64_t requests[ROUTE_COUNT][HTTP_N_STATUS];
};

struct http_req {
    struct http_server *srv;
    struct MHD_Connection *conn;
    const struct http_route *route;
    const char *method, *url;
    char req_id[72];
    char *body;
    size_t len, cap;
    bool too_large;
    unsigned long long discarded; /* body bytes received in all */
    bool counted;                 /* in_flight incremented */
    bool close;                   /* close the connection after the response */
    struct http_conn *hc;
    double t0;
    const char *cors_origin; /* origin to allow in the response, or NULL */
    /* the response the handler produced */
    int status;
    struct MHD_Response *resp;
    struct http_stream *stream; /* SSE in progress: cancelled if the connection ends early */
};

/* Responses (the handler sets r->status and r->resp through these). */
void http_reply_json(struct http_req *r, int status, json_t *body); /* steals body */
void http_reply_error(struct http_req *r, const struct api_error *e);
void http_reply_text(struct http_req *r, int status, const char *content_type, const char *text,
                     size_t len);
/* printf-style shortcut for http_reply_error. */
void http_reply_errorf(struct http_req *r, int status, const char *param, const char *code,
                       const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/*
 * true when the client has gone away: its connection was reset, or it closed its side later than
 * HTTP_HALF_CLOSE_GRACE_S after its request was complete. A close seen sooner is taken for a
 * half-close (shutdown(SHUT_WR) after sending, as nc -N and some HTTP/1.1 clients do): that
 * client still gets its answer, and only a reset or a failed write ends the request early.
 */
bool http_conn_gone(struct http_req *r);
int http_conn_fd(struct MHD_Connection *c);
bool http_fd_gone(struct http_server *s, int fd);

/* Task registry: cancelled together at the end of a drain. */
void http_track_task(struct http_server *s, struct srv_task *t);
void http_untrack_task(struct http_server *s, struct srv_task *t);

double http_now(void);

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

/* Endpoint handlers (api_handlers.c). */
void api_chat(struct http_req *r);
void api_completions(struct http_req *r);
void api_embeddings(struct http_req *r);
void api_models(struct http_req *r);
void api_model(struct http_req *r);
void api_health(struct http_req *r);
void api_tokenize(struct http_req *r);
void api_detokenize(struct http_req *r);
void api_apply_template(struct http_req *r);
/* metrics.c */
void api_metrics(struct http_req *r);
/* The stream's tasks are cancelled (client gone) and the stream loses the request's reference. */
void api_stream_abort(struct http_stream *s, bool cancel);

#endif
