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

/* How one choice of a generation ended (http_sink's result and end hooks). */
struct http_gen_end {
    enum srv_finish finish;
    const char *finish_reason; /* as OpenAI names it: "stop", "length", "tool_calls" */
    struct srv_usage usage;
    const inf_token *ids; /* the generated tokens [n_ids] (borrowed for the call) */
    size_t n_ids;
};

/*
 * Where a handler's output goes when its client does not speak OpenAI's JSON and SSE: the
 * Ollama endpoints (ollama.c: NDJSON) and WebSocket messages (ws.c). The OpenAI handlers run
 * unchanged and pass what they produce through these hooks; every hook is optional.
 */
struct http_sink {
    /* after validation, before anything runs: adjust the parsed options (Ollama's `options`) */
    void (*gen)(void *ctx, struct api_gen *g);
    /* a JSON reply about to be sent (a result or an error object {"error": {...}}): returns the
       body to send instead (takes body), or NULL when the sink has dealt with it (detached) */
    json_t *(*reply)(void *ctx, int status, json_t *body);
    /* a non-streamed generation finished (choice 0), just before its reply */
    void (*result)(void *ctx, const struct http_gen_end *end);
    /* streams: the bytes to send (malloc'd, *len set; NULL: nothing) for a chunk object as an
       SSE data line carries it (taken), an error object {"error": {...}} (taken), and the end
       of the stream (choice 0's end and the request's OpenAI usage object, borrowed) */
    char *(*chunk)(void *ctx, json_t *chunk, size_t *len);
    char *(*error)(void *ctx, json_t *error, size_t *len);
    char *(*end)(void *ctx, const struct http_gen_end *end, json_t *usage, size_t *len);
    const char *content_type; /* of a streamed response; NULL: text/event-stream */
    /* a detached request (WebSocket: r->conn is NULL): a stream runs to its end on the
       handler's thread and each piece goes here at once; false stops it (the tasks are
       cancelled) */
    bool (*write)(void *ctx, const char *data, size_t len);
    bool (*gone)(void *ctx); /* detached: the client has gone away */
    /* a stream that outlives the handler (an MHD response) holds a reference to ctx */
    void (*retain)(void *ctx);
    void (*release)(void *ctx);
};

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
    /* a request of a batch (jobs_exec.c): its tasks run at the engine's lower priority */
    bool background;
    /* NULL for OpenAI clients; else where the output goes (see struct http_sink) */
    const struct http_sink *sink;
    void *sink_ctx;
    /* for the audit record (audit_hook.c) */
    int key_index;           /* the API key used: its index, -1 none */
    const char *client;      /* the client's address when there is no conn (WebSocket requests) */
    const char *cache_state; /* "hit", "miss", "bypass"; NULL: no cache */
    char model[256];         /* the model that answered ("" none) */
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
