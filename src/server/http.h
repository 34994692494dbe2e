/*
 * server/http.h - `inferno serve`: the OpenAI-compatible HTTP server, and the entry point of
 * src/server/, which owns everything between a socket and the engines: libmicrohttpd, the
 * route table, auth, rate limits, CORS, request ids, connection limits, the endpoints, request
 * validation, metrics, the loaded models and their engine threads.
 *
 * Layers (each file calls only the ones below it):
 *   http.c            router: set-up, the route table (the one place that names an endpoint),
 *                     the checks before a handler runs; reaches the handlers only through the
 *                     table's rows (handlers.h)
 *   api_handlers.c,   handlers: one function per route; they validate with api_parse.c
 *   metrics.c         (api.h) and answer through response.h (metrics.c also reads the router's
 *                     request counters, http_internal.h)
 *   response.c,       response.h: the request as a handler sees it, replies, the task registry
 *   http_conn.c       (response.c); the clock, client-gone checks and the connection guard
 *                     (http_conn.c); neither knows the routes nor calls up
 *   sched.c, models.c engines and models (sched.h, inferno/models.h): no sockets
 * A new endpoint needs one handler, one row in the route table and its validation in
 * api_parse.c.
 *
 * Threading: libmicrohttpd runs one thread per connection (MHD_USE_THREAD_PER_CONNECTION).
 * That thread parses and validates the request, renders the chat template, tokenizes, submits
 * tasks to the model's engine (sched.h) and then blocks on srv_task_next() - in the access
 * handler for ordinary responses, in the content-reader callback for SSE streams. Blocking is
 * the simple, correct choice in this mode: each connection has its own thread, the engine thread
 * never waits on a socket, and backpressure from a slow reader only delays that reader (the
 * task's event queue grows by a few events per token). Disconnects are seen by polling the
 * socket for POLLRDHUP between timed waits, by write failures, and by MHD's request-completed
 * callback; any of them cancels the request's tasks at once, so the engine frees the slot at
 * its next step.
 */
#ifndef INFERNO_SERVER_HTTP_H
#define INFERNO_SERVER_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "inferno/jobs.h"
#include "inferno/status.h"
#include "server/sched.h"

struct http_server_params {
    const char *host;               /* IPv4/IPv6 literal or a host name; "0.0.0.0" / "::" = all */
    int port;                       /* 0 = any free port (see http_server_port) */
    const char *tls_cert, *tls_key; /* PEM files; both empty/NULL = plain HTTP */
    size_t max_body_bytes;
    size_t max_header_bytes;
    int max_connections;
    int timeout_seconds;              /* idle connection timeout */
    int max_connections_per_ip;       /* 0 = no limit */
    const char *const *per_ip_exempt; /* numeric addresses the per-address limit skips */
    size_t n_per_ip_exempt;
    int header_timeout_seconds; /* deadline for a request's headers (from accept / last reply) */
    int body_timeout_seconds;   /* deadline for its body (from the end of its headers) */
    const char *const *allowed_hosts; /* Host names accepted besides the loopback ones; "*" = any */
    size_t n_allowed_hosts;
    const char *const *api_keys; /* none = no authentication */
    size_t n_api_keys;
    int rate_limit_rpm;              /* 0 = off */
    const char *const *cors_origins; /* none = CORS off; "*" = any origin */
    size_t n_cors_origins;
    struct srv_models *models;
    bool parse_special_in_content; /* chat: control tokens typed in messages are honoured */
    size_t ws_max_pending_bytes;   /* WebSocket: bytes queued for a client before cancelling */
    struct srv_cache *cache;       /* response cache (cache_hook.h), or NULL */
    struct srv_audit *audit;       /* audit log (audit_hook.h), or NULL */
    struct inf_jobs *jobs;         /* the Files and Batch API's store (inferno/jobs.h), or NULL */
    size_t max_upload_bytes;       /* largest file upload (POST /v1/files) */
    /* /api/pull: the hub settings (models_dir, endpoints, token; NULL = pulling refused) and
       the model database the pulled names are registered in */
    const struct inf_hub_params *hub;
    const char *models_db;
    struct srv_onnx *onnx; /* ONNX models on /v2 (kserve.h), or NULL; with models NULL
                              only the /v2 routes, /health and /metrics answer */
};

struct http_server;
struct inf_hub_params;

/* Start listening (the server runs on its own threads). */
inf_status http_server_start(const struct http_server_params *p, struct http_server **out,
                             struct inf_error *err);
/* The port actually bound (useful with port 0). */
int http_server_port(const struct http_server *s);
/* Stop accepting: the listening socket closes, requests still arriving on open connections get
   503 (http_server_stop does this first; call it earlier to stop intake before other teardown). */
void http_server_quiesce(struct http_server *s);
/*
 * Graceful stop: stop accepting connections, answer new requests on open connections with 503,
 * let running requests finish for up to drain_ms, cancel what is still running, then close
 * everything and free the server. The models are not freed (the caller owns them).
 */
void http_server_stop(struct http_server *s, int drain_ms);

#endif
