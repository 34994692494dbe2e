/*
 * server/response.h - the layer under the endpoint handlers: the request as a handler sees it,
 * the replies it can produce (response.c), whether its client is still there (http_conn.c), and
 * the registry of the tasks it submitted (response.c; cancelled together at the end of a drain).
 * Knows nothing of the routes: the router (http.c) fills a struct http_req, runs the route's
 * handler, then sends r->resp. Internal to src/server.
 */
#ifndef INFERNO_SERVER_RESPONSE_H
#define INFERNO_SERVER_RESPONSE_H

#include <jansson.h>
#include <microhttpd.h>
#include <stdbool.h>
#include <stddef.h>

#include "server/api.h"
#include "server/http.h"

struct http_server; /* http_internal.h: the router's state */
struct http_route;
struct http_conn; /* http_conn.c: one per open connection */

struct http_req {
    struct http_server *srv;
    const struct http_server_params *params; /* srv's: the models, the options */
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
    /*
     * Set by a handler whose response outlives it (SSE): called once when the request ends,
     * with cancel set when it ended before the response was complete (the client went away).
     */
    void (*on_end)(void *ctx, bool cancel);
    void *on_end_ctx;
    /* for the audit record (audit_hook.c) */
    int key_index;                            /* the API key used: its index, -1 none */
    const char *cache_state;                  /* "hit", "miss", "bypass"; NULL: no cache */
    char model[256];                          /* the model that answered ("" none) */
    int32_t prompt_tokens, completion_tokens; /* -1: not known */
    char *reply_copy; /* audit.include_content: the JSON body answered (malloc'd) */
    bool audited;
};

/* ---- defined in response.c ------------------------------------------------------------------- */

/* Responses (the handler sets r->status and r->resp through these). */
void http_reply_json(struct http_req *r, int status, json_t *body); /* steals body */
void http_reply_error(struct http_req *r, const struct api_error *e);
void http_reply_text(struct http_req *r, int status, const char *content_type, const char *text,
                     size_t len);
/* Any other response (an SSE stream): the request takes it, replacing the one it had. */
void http_reply_response(struct http_req *r, int status, struct MHD_Response *resp);
/* printf-style shortcut for http_reply_error. */
void http_reply_errorf(struct http_req *r, int status, const char *param, const char *code,
                       const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Task registry: cancelled together at the end of a drain. */
void http_track_task(struct http_server *s, struct srv_task *t);
void http_untrack_task(struct http_server *s, struct srv_task *t);

/* ---- defined in http_conn.c (the guard knows the half-closes) -------------------------------- */

/*
 * true when the client has gone away: its connection was reset, or it closed its side later than
 * HTTP_HALF_CLOSE_GRACE_S after its request was complete. A close seen sooner is taken for a
 * half-close (shutdown(SHUT_WR) after sending, as nc -N and some HTTP/1.1 clients do): that
 * client still gets its answer, and only a reset or a failed write ends the request early.
 */
bool http_conn_gone(struct http_req *r);
int http_conn_fd(struct MHD_Connection *c);
bool http_fd_gone(struct http_server *s, int fd);

/* Monotonic clock, in seconds. */
double http_now(void);

#endif
