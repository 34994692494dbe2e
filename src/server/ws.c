/*
 * ws.c - WebSocket streaming on GET /v1/ws (see ws.h for the messages).
 *
 * Threads: the handshake is answered on the connection's thread (ws_upgrade); after the 101,
 * libmicrohttpd hands over the socket and a session thread owns it and its libwslay context
 * (which is not thread-safe): it reads frames, answers pings, and sends what the requests
 * queued. Each request runs on a thread of its own: the OpenAI handler, detached from any HTTP
 * connection (r->conn NULL), with this file's sink, whose write() queues the message and wakes
 * the session (an eventfd). Limits: a message larger than server.max_body_bytes closes the
 * connection (1009); at most WS_MAX_IN_FLIGHT requests at once; a client that stops reading
 * lets at most server.ws_max_pending_bytes queue (besides WS_SNDBUF in the kernel), then the
 * request that would add more is cancelled.
 * Frame errors (unmasked client frame, unknown opcode, fragmented control frame, reserved bits)
 * close the connection with 1002, invalid UTF-8 in a text message with 1007, a binary message
 * with 1003 - all by libwslay except the UTF-8 check and the binary refusal.
 */
#include "server/ws.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>
#include <wslay/wslay.h>

#include "inferno/log.h"
#include "server/audit_hook.h"
#include "server/handlers.h"
#include "server/http_internal.h"

#define WS_SNDBUF (256 * 1024) /* the kernel's send buffer of a socket (no autotuning) */
#define WS_PING_S 30.0         /* a ping after this long without traffic */
#define WS_DEAD_S 90.0         /* closed after this long without any frame */
#define WS_GUID   "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

struct ws_session;

/* One request on a session. */
struct ws_req {
    struct ws_session *ss;
    char id[72];
    enum ws_msg_type type;
    char *body; /* the endpoint's body, JSON text */
    atomic_bool cancelled;
    pthread_t thread;
    struct ws_req *next;
};

struct ws_out {
    char *data;
    size_t len;
    struct ws_out *next;
};

struct ws_session {
    struct http_server *srv;
    struct http_conn *hc;
    int fd, efd;
    struct MHD_UpgradeResponseHandle *urh;
    char *extra; /* bytes read past the handshake */
    size_t n_extra, off_extra;
    bool authed;
    int key_index;   /* the API key the socket authenticated with (-1: none), for the audit log */
    char client[64]; /* the client's address, for the audit log */
    pthread_mutex_t mu;
    struct ws_out *out, **out_tail; /* queued by the requests, sent by the session */
    size_t pending;                 /* bytes in out and in libwslay's queue */
    struct ws_req *reqs;
    int n_reqs;
    atomic_bool closing;
    double last_rx, last_ping;
    struct ws_session *next; /* in the registry */
    wslay_event_context_ptr ctx;
};

/* The registry of open sessions (server stop closes them). */
static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t reg_cv = PTHREAD_COND_INITIALIZER;
static struct ws_session *reg;

/* ---- messages ---------------------------------------------------------------------------------
 */

bool ws_msg_parse(const char *data, size_t len, struct ws_msg *out, char *err, size_t err_size)
{
    memset(out, 0, sizeof(*out));
    if (!api_utf8_valid(data, len)) {
        snprintf(err, err_size, "the message is not valid UTF-8");
        return false;
    }
    json_error_t je;
    json_t *j = json_loadb(data, len, 0, &je);
    if (!j || !json_is_object(j)) {
        json_decref(j);
        snprintf(err, err_size, "the message is not a JSON object");
        return false;
    }
    out->root = j;
    json_t *id = json_object_get(j, "id");
    if (id && !json_is_string(id)) {
        snprintf(err, err_size, "'id' must be a string");
        return false;
    }
    if (id) {
        size_t n = json_string_length(id);
        if (n == 0 || n >= sizeof(out->id) || memchr(json_string_value(id), 0, n)) {
            snprintf(err, err_size, "'id' must be 1 to %zu characters", sizeof(out->id) - 1);
            return false;
        }
        memcpy(out->id, json_string_value(id), n + 1);
    }
    const char *t = json_string_value(json_object_get(j, "type"));
    if (!t) {
        snprintf(err, err_size, "'type' is required (a string)");
        return false;
    }
    if (!strcmp(t, "chat.completions"))
        out->type = WS_MSG_CHAT;
    else if (!strcmp(t, "completions"))
        out->type = WS_MSG_COMPLETIONS;
    else if (!strcmp(t, "embeddings"))
        out->type = WS_MSG_EMBEDDINGS;
    else if (!strcmp(t, "cancel"))
        out->type = WS_MSG_CANCEL;
    else if (!strcmp(t, "auth"))
        out->type = WS_MSG_AUTH;
    else {
        snprintf(err, err_size,
                 "unknown type '%.40s' (chat.completions, completions, embeddings, cancel, auth)",
                 t);
        return false;
    }
    if (out->type == WS_MSG_AUTH) {
        out->token = json_string_value(json_object_get(j, "token"));
        if (!out->token) {
            snprintf(err, err_size, "'token' is required (a string)");
            return false;
        }
        return true;
    }
    if (!out->id[0]) {
        snprintf(err, err_size, "'id' is required");
        return false;
    }
    if (out->type == WS_MSG_CANCEL)
        return true;
    out->body = json_object_get(j, "body");
    if (!json_is_object(out->body)) {
        snprintf(err, err_size, "'body' must be an object (the endpoint's request body)");
        return false;
    }
    return true;
}

/* ---- sending ----------------------------------------------------------------------------------
 */

static void wake(struct ws_session *ss)
{
    uint64_t one = 1;
    ssize_t w = write(ss->efd, &one, sizeof(one));
    (void)w;
}

/* Queue a message (taken) for the session thread; false when the client is not reading fast
   enough (server.ws_max_pending_bytes) or the session is closing. force: queue past the limit (the
   last message of a request). */
static bool enqueue(struct ws_session *ss, char *data, size_t len, bool force)
{
    struct ws_out *o = malloc(sizeof(*o));
    if (!o) {
        free(data);
        return false;
    }
    o->data = data;
    o->len = len;
    o->next = NULL;
    pthread_mutex_lock(&ss->mu);
    /* one message always goes, however large (an embeddings response): the bound is on what
       waits behind it */
    size_t limit = ss->srv->p.ws_max_pending_bytes;
    bool ok =
        !atomic_load(&ss->closing) && (force || ss->pending == 0 || ss->pending + len <= limit);
    bool first = ss->out == NULL; /* else the session has been woken for the list already */
    if (ok) {
        *ss->out_tail = o;
        ss->out_tail = &o->next;
        ss->pending += len;
    }
    pthread_mutex_unlock(&ss->mu);
    if (!ok) {
        free(data);
        free(o);
        return false;
    }
    if (first)
        wake(ss);
    return true; /* cppcheck-suppress memleak ; o is in the session's list */
}

static bool send_json(struct ws_session *ss, json_t *j, bool force)
{
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    return s && enqueue(ss, s, strlen(s), force);
}

static json_t *error_obj(int status, const char *code, const char *msg)
{
    struct api_error e = {0};
    e.status = status;
    e.type = api_error_type(status);
    e.code = code;
    snprintf(e.message, sizeof(e.message), "%s", msg);
    json_t *o = api_error_json(&e);
    json_t *inner = json_incref(json_object_get(o, "error"));
    json_decref(o);
    return inner;
}

static void send_error(struct ws_session *ss, const char *id, int status, const char *code,
                       const char *msg)
{
    send_json(ss,
              json_pack("{s:s?,s:s,s:o}", "id", id && *id ? id : NULL, "type", "error", "error",
                        error_obj(status, code, msg)),
              true);
}

/* ---- the sink: a request's output as messages ---------------------------------------------- */

static char *ws_wrap(struct ws_req *q, const char *type, const char *key, json_t *v, size_t *len)
{
    json_t *j = json_pack("{s:s,s:s,s:o}", "id", q->id, "type", type, key, v);
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    *len = s ? strlen(s) : 0;
    return s;
}

static char *sink_chunk(void *ctx, json_t *chunk, size_t *len)
{
    return ws_wrap(ctx, "chunk", "data", chunk, len);
}

static char *sink_error(void *ctx, json_t *err, size_t *len)
{
    json_t *inner = json_incref(json_object_get(err, "error"));
    json_decref(err);
    return ws_wrap(ctx, "error", "error", inner ? inner : json_object(), len);
}

static char *sink_end(void *ctx, const struct http_gen_end *end, json_t *usage, size_t *len)
{
    (void)end;
    return ws_wrap(ctx, "done", "usage", json_incref(usage), len);
}

static bool sink_write(void *ctx, const char *data, size_t len)
{
    struct ws_req *q = ctx;
    if (atomic_load(&q->cancelled))
        return false;
    char *c = malloc(len + 1);
    if (!c)
        return false;
    memcpy(c, data, len);
    c[len] = '\0';
    /* the end of a request always goes out: its "done" or "error" */
    bool last = strstr(c, "\"type\":\"chunk\"") == NULL;
    if (enqueue(q->ss, c, len, last))
        return true;
    if (!atomic_load(&q->ss->closing))
        INF_LOG_INFO("http", "ws request %s: the client is not reading; cancelled", q->id);
    atomic_store(&q->cancelled, true);
    return false;
}

static bool sink_gone(void *ctx)
{
    struct ws_req *q = ctx;
    return atomic_load(&q->cancelled) || atomic_load(&q->ss->closing);
}

/* A JSON reply of a handler that does not stream (embeddings, errors before the stream): one
   chunk with the whole object and done with its usage, or the error. */
static json_t *sink_reply(void *ctx, int status, json_t *body)
{
    struct ws_req *q = ctx;
    size_t n = 0;
    char *s;
    if (status >= 400) {
        s = sink_error(q, body, &n);
        if (s)
            enqueue(q->ss, s, n, true);
        return NULL;
    }
    json_t *usage = json_incref(json_object_get(body, "usage"));
    s = ws_wrap(q, "chunk", "data", body, &n);
    if (s && !sink_write(q, s, n)) {
        free(s);
        json_decref(usage);
        return NULL;
    }
    free(s);
    s = ws_wrap(q, "done", "usage", usage ? usage : json_null(), &n);
    if (s)
        enqueue(q->ss, s, n, true);
    return NULL;
}

static const struct http_sink ws_sink = {
    .reply = sink_reply,
    .chunk = sink_chunk,
    .error = sink_error,
    .end = sink_end,
    .write = sink_write,
    .gone = sink_gone,
};

/* ---- requests ------------------------------------------------------------------------------- */

static void *req_main(void *arg)
{
    struct ws_req *q = arg;
    struct ws_session *ss = q->ss;
    struct http_req r;
    memset(&r, 0, sizeof(r));
    r.srv = ss->srv;
    r.params = &ss->srv->p;
    r.method = "POST";
    r.url = q->type == WS_MSG_CHAT          ? "/v1/chat/completions"
            : q->type == WS_MSG_COMPLETIONS ? "/v1/completions"
                                            : "/v1/embeddings";
    snprintf(r.req_id, sizeof(r.req_id), "ws-%.60s", q->id);
    r.body = q->body;
    r.len = strlen(q->body);
    r.t0 = http_now();
    r.sink = &ws_sink;
    r.sink_ctx = q;
    /* for the audit log: one record per request, as over HTTP (a stream writes it at its end) */
    r.route = http_route_lookup(r.url, "POST");
    r.key_index = ss->key_index;
    r.client = ss->client;
    r.prompt_tokens = r.completion_tokens = -1;
    if (atomic_load(&ss->srv->stopping)) {
        send_error(ss, q->id, 503, "shutting_down", "the server is shutting down");
    } else {
        if (q->type == WS_MSG_CHAT)
            api_chat(&r);
        else if (q->type == WS_MSG_COMPLETIONS)
            api_completions(&r);
        else
            api_embeddings(&r);
        if (atomic_load(&q->cancelled) && !atomic_load(&ss->closing))
            send_error(ss, q->id, 499, "cancelled", "the request was cancelled");
    }
    if (ss->srv->p.audit && r.status && !r.audited)
        srv_audit_request(ss->srv->p.audit, &r);
    free(r.reply_copy);
    if (r.resp)
        MHD_destroy_response(r.resp);
    INF_LOG_INFO("http", "ws %s %d %.1f ms id=%s", r.url, r.status, (http_now() - r.t0) * 1e3,
                 r.req_id);
    atomic_fetch_sub(&ss->srv->in_flight, 1);
    /* the session may be freed as soon as n_reqs reaches 0 and the lock is released: nothing of
       it is touched after */
    pthread_mutex_lock(&ss->mu);
    for (struct ws_req **p = &ss->reqs; *p; p = &(*p)->next)
        if (*p == q) {
            *p = q->next;
            break;
        }
    wake(ss);
    ss->n_reqs--;
    pthread_mutex_unlock(&ss->mu);
    free(q->body);
    free(q);
    return NULL;
}

static void start_request(struct ws_session *ss, struct ws_msg *m)
{
    pthread_mutex_lock(&ss->mu);
    bool dup = false;
    for (struct ws_req *q = ss->reqs; q; q = q->next)
        dup = dup || strcmp(q->id, m->id) == 0;
    int n = ss->n_reqs;
    pthread_mutex_unlock(&ss->mu);
    if (dup) {
        send_error(ss, m->id, 400, "duplicate_id", "a request with this id is running");
        return;
    }
    if (n >= WS_MAX_IN_FLIGHT) {
        send_error(ss, m->id, 429, "too_many_requests",
                   "too many requests in flight on this connection");
        return;
    }
    if (m->type != WS_MSG_EMBEDDINGS) /* the socket streams */
        json_object_set_new(m->body, "stream", json_true());
    struct ws_req *q = calloc(1, sizeof(*q));
    char *body = json_dumps(m->body, JSON_COMPACT);
    if (!q || !body) {
        free(q);
        free(body);
        send_error(ss, m->id, 500, NULL, "out of memory");
        return;
    }
    q->ss = ss;
    q->type = m->type;
    q->body = body;
    snprintf(q->id, sizeof(q->id), "%s", m->id);
    atomic_init(&q->cancelled, false);
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&at, (size_t)8 << 20);
    pthread_mutex_lock(&ss->mu);
    q->next = ss->reqs;
    ss->reqs = q;
    ss->n_reqs++;
    pthread_mutex_unlock(&ss->mu);
    atomic_fetch_add(&ss->srv->in_flight, 1);
    if (pthread_create(&q->thread, &at, req_main, q) != 0) {
        atomic_fetch_sub(&ss->srv->in_flight, 1);
        pthread_mutex_lock(&ss->mu);
        ss->reqs = q->next;
        ss->n_reqs--;
        pthread_mutex_unlock(&ss->mu);
        free(q->body);
        free(q);
        send_error(ss, m->id, 503, NULL, "cannot start the request");
    }
    pthread_attr_destroy(&at);
}

static void cancel_request(struct ws_session *ss, const char *id)
{
    pthread_mutex_lock(&ss->mu);
    for (struct ws_req *q = ss->reqs; q; q = q->next)
        if (strcmp(q->id, id) == 0)
            atomic_store(&q->cancelled, true);
    pthread_mutex_unlock(&ss->mu);
}

/* ---- frames ------------------------------------------------------------------------------------
 */

static void close_with(wslay_event_context_ptr ctx, uint16_t code, const char *why)
{
    wslay_event_queue_close(ctx, code, (const uint8_t *)why, strlen(why) > 120 ? 120 : strlen(why));
    wslay_event_shutdown_read(ctx);
}

/* A complete message: checked (text, UTF-8, JSON), then run. ss NULL: parse only (fuzzing). */
static void on_message(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *a,
                       struct ws_session *ss, int *n_parsed)
{
    if (a->opcode == WSLAY_BINARY_FRAME) {
        close_with(ctx, WSLAY_CODE_UNSUPPORTED_DATA, "binary messages are not accepted");
        return;
    }
    if (a->opcode != WSLAY_TEXT_FRAME)
        return; /* control frames: libwslay answers pings and closes */
    if (!api_utf8_valid((const char *)a->msg, a->msg_length)) {
        close_with(ctx, WSLAY_CODE_INVALID_FRAME_PAYLOAD_DATA, "invalid UTF-8 in a text message");
        return;
    }
    struct ws_msg m;
    char err[200];
    bool ok = ws_msg_parse((const char *)a->msg, a->msg_length, &m, err, sizeof(err));
    if (n_parsed)
        ++*n_parsed;
    if (!ss) {
        json_decref(m.root);
        return;
    }
    if (!ok) {
        send_error(ss, m.id, 400, "invalid_message", err);
    } else if (!ss->authed && m.type != WS_MSG_AUTH) {
        close_with(ctx, WSLAY_CODE_POLICY_VIOLATION,
                   "authenticate first: {\"type\": \"auth\", \"token\": KEY}");
    } else if (m.type == WS_MSG_AUTH) {
        if (ss->authed || (ss->srv->n_keys == 0)) {
            send_json(ss, json_pack("{s:s}", "type", "authenticated"), true);
            ss->authed = true;
        } else if ((ss->key_index = http_key_index(ss->srv, m.token)) >= 0) {
            ss->authed = true;
            send_json(ss, json_pack("{s:s}", "type", "authenticated"), true);
        } else {
            close_with(ctx, WSLAY_CODE_POLICY_VIOLATION, "incorrect API key provided");
        }
    } else if (m.type == WS_MSG_CANCEL) {
        cancel_request(ss, m.id);
    } else {
        start_request(ss, &m);
    }
    json_decref(m.root);
}

static ssize_t recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *user)
{
    struct ws_session *ss = user;
    (void)flags;
    if (ss->off_extra < ss->n_extra) {
        size_t n = ss->n_extra - ss->off_extra;
        if (n > len)
            n = len;
        memcpy(buf, ss->extra + ss->off_extra, n);
        ss->off_extra += n;
        return (ssize_t)n;
    }
    ssize_t k = recv(ss->fd, buf, len, 0);
    if (k > 0) {
        ss->last_rx = http_now();
        return k;
    }
    if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
    else
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
    return -1;
}

static ssize_t send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
                       void *user)
{
    struct ws_session *ss = user;
    (void)flags;
    /* libwslay fails some protocol errors (a fragmented control frame) with a close frame that
       has no status: the client is told 1002 (protocol error) instead, as RFC 6455 7.4.1 has it.
       An empty close is only libwslay's own when the client sent no close. */
    static const uint8_t empty_close[2] = {0x88, 0x00}, proto_close[4] = {0x88, 0x02, 0x03, 0xea};
    if (len == 2 && memcmp(data, empty_close, 2) == 0 && !wslay_event_get_close_received(ctx)) {
        if (send(ss->fd, proto_close, sizeof(proto_close), MSG_NOSIGNAL) == sizeof(proto_close))
            return 2;
    }
    ssize_t k = send(ss->fd, data, len, MSG_NOSIGNAL);
    if (k >= 0)
        return k;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
    else
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
    return -1;
}

static void msg_cb(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *a,
                   void *user)
{
    on_message(ctx, a, user, NULL);
}

/* ---- the session ------------------------------------------------------------------------------
 */

/* Move the requests' messages into libwslay (session thread only). */
static void drain_out(struct ws_session *ss)
{
    pthread_mutex_lock(&ss->mu);
    struct ws_out *o = ss->out;
    ss->out = NULL;
    ss->out_tail = &ss->out;
    pthread_mutex_unlock(&ss->mu);
    while (o) {
        struct ws_out *next = o->next;
        struct wslay_event_msg m = {WSLAY_TEXT_FRAME, (const uint8_t *)o->data, o->len};
        wslay_event_queue_msg(ss->ctx, &m); /* copies */
        pthread_mutex_lock(&ss->mu);
        ss->pending -= o->len;
        pthread_mutex_unlock(&ss->mu);
        free(o->data);
        free(o);
        o = next;
    }
}

/* The end of a session: send what libwslay still holds (the close frame), then read and drop
   what the client still sends until it closes, for up to 2 s, so that closing with unread bytes
   does not reset the connection before the client has read the close frame. */
static void linger(struct ws_session *ss)
{
    double deadline = http_now() + 2.0;
    while (wslay_event_want_write(ss->ctx) && http_now() < deadline) {
        struct pollfd p = {ss->fd, POLLOUT, 0};
        if (poll(&p, 1, 100) < 0 || (p.revents & (POLLERR | POLLHUP | POLLNVAL)))
            return;
        if ((p.revents & POLLOUT) && wslay_event_send(ss->ctx) != 0)
            break;
    }
    shutdown(ss->fd, SHUT_WR);
    char buf[4096];
    while (http_now() < deadline) {
        struct pollfd p = {ss->fd, POLLIN, 0};
        if (poll(&p, 1, 100) < 0)
            return;
        if (!(p.revents & (POLLIN | POLLHUP | POLLERR)))
            continue;
        ssize_t k = recv(ss->fd, buf, sizeof(buf), 0);
        if (k == 0 || (k < 0 && errno != EAGAIN && errno != EINTR))
            return;
    }
}

static void *session_main(void *arg)
{
    struct ws_session *ss = arg;
    struct wslay_event_callbacks cb = {recv_cb, send_cb, NULL, NULL, NULL, NULL, msg_cb};
    int fl = fcntl(ss->fd, F_GETFL, 0);
    fcntl(ss->fd, F_SETFL, fl | O_NONBLOCK);
    int sndbuf = WS_SNDBUF; /* what a client that stops reading leaves in the kernel is bounded */
    setsockopt(ss->fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
    if (wslay_event_context_server_init(&ss->ctx, &cb, ss) != 0)
        goto done;
    wslay_event_config_set_max_recv_msg_length(ss->ctx, ss->srv->p.max_body_bytes);
    ss->last_rx = ss->last_ping = http_now();
    bool recv_failed = false;
    for (;;) {
        http_guard_phase(ss->srv, ss->hc, HTTP_PHASE_BUSY); /* no request deadlines on it */
        if (atomic_load(&ss->closing) && !wslay_event_get_close_sent(ss->ctx))
            close_with(ss->ctx, WSLAY_CODE_GOING_AWAY, "the server is shutting down");
        drain_out(ss);
        /* the client stopped reading: the queued bytes count against the requests' limit */
        pthread_mutex_lock(&ss->mu);
        ss->pending = wslay_event_get_queued_msg_length(ss->ctx);
        for (struct ws_out *o = ss->out; o; o = o->next)
            ss->pending += o->len;
        pthread_mutex_unlock(&ss->mu);
        bool rd = wslay_event_want_read(ss->ctx), wr = wslay_event_want_write(ss->ctx);
        if (!rd && !wr)
            break;
        if (ss->off_extra < ss->n_extra && rd) {
            if (wslay_event_recv(ss->ctx) != 0) {
                recv_failed = true;
                break;
            }
            continue;
        }
        struct pollfd p[2] = {{ss->fd, (short)((rd ? POLLIN : 0) | (wr ? POLLOUT : 0)), 0},
                              {ss->efd, POLLIN, 0}};
        int k = poll(p, 2, 1000);
        if (k < 0 && errno != EINTR)
            break;
        if (p[1].revents & POLLIN) {
            uint64_t v;
            ssize_t rr = read(ss->efd, &v, sizeof(v));
            (void)rr;
        }
        if ((p[0].revents & POLLIN) && wslay_event_recv(ss->ctx) != 0) {
            recv_failed = true;
            break;
        }
        if ((p[0].revents & (POLLERR | POLLHUP | POLLNVAL)) && !(p[0].revents & POLLIN))
            break;
        if (wslay_event_want_write(ss->ctx) && wslay_event_send(ss->ctx) != 0)
            break;
        double now = http_now();
        if (now - ss->last_rx > WS_DEAD_S) {
            close_with(ss->ctx, WSLAY_CODE_POLICY_VIOLATION, "no traffic: closed");
        } else if (now - ss->last_rx > WS_PING_S && now - ss->last_ping > WS_PING_S) {
            struct wslay_event_msg ping = {WSLAY_PING, NULL, 0};
            wslay_event_queue_msg(ss->ctx, &ping);
            ss->last_ping = now;
        }
    }
    if (recv_failed) /* a frame libwslay refused without queueing a close of its own */
        wslay_event_queue_close(ss->ctx, WSLAY_CODE_PROTOCOL_ERROR, NULL, 0);
    linger(ss);
done:
    /* the requests stop, then the socket goes back to libmicrohttpd, which closes it */
    atomic_store(&ss->closing, true);
    pthread_mutex_lock(&ss->mu);
    for (struct ws_req *q = ss->reqs; q; q = q->next)
        atomic_store(&q->cancelled, true);
    pthread_mutex_unlock(&ss->mu);
    for (;;) {
        pthread_mutex_lock(&ss->mu);
        int n = ss->n_reqs;
        pthread_mutex_unlock(&ss->mu);
        if (n == 0)
            break;
        usleep(10 * 1000);
    }
    drain_out(ss);
    if (ss->ctx)
        wslay_event_context_free(ss->ctx);
    close(ss->efd);
    MHD_upgrade_action(ss->urh, MHD_UPGRADE_ACTION_CLOSE);
    pthread_mutex_lock(&reg_mu);
    for (struct ws_session **p = &reg; *p; p = &(*p)->next)
        if (*p == ss) {
            *p = ss->next;
            break;
        }
    pthread_cond_broadcast(&reg_cv);
    pthread_mutex_unlock(&reg_mu);
    pthread_mutex_destroy(&ss->mu);
    free(ss->extra);
    free(ss);
    return NULL;
}

static void on_upgraded(void *cls, struct MHD_Connection *conn, void *con_cls, const char *extra_in,
                        size_t extra_in_size, MHD_socket sock,
                        struct MHD_UpgradeResponseHandle *urh)
{
    struct ws_session *ss = cls;
    (void)conn;
    (void)con_cls;
    ss->fd = sock;
    ss->urh = urh;
    if (extra_in_size && (ss->extra = malloc(extra_in_size))) {
        memcpy(ss->extra, extra_in, extra_in_size);
        ss->n_extra = extra_in_size;
    }
    pthread_mutex_lock(&reg_mu);
    ss->next = reg;
    reg = ss;
    pthread_mutex_unlock(&reg_mu);
    pthread_t t;
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&t, &at, session_main, ss) != 0) {
        pthread_mutex_lock(&reg_mu);
        reg = ss->next;
        pthread_mutex_unlock(&reg_mu);
        close(ss->efd);
        MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
        free(ss->extra);
        free(ss);
    }
    pthread_attr_destroy(&at);
}

void ws_stop_all(struct http_server *s)
{
    pthread_mutex_lock(&reg_mu);
    for (struct ws_session *ss = reg; ss; ss = ss->next)
        if (ss->srv == s) {
            atomic_store(&ss->closing, true);
            wake(ss);
        }
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += 10;
    for (;;) {
        bool any = false;
        for (struct ws_session *ss = reg; ss; ss = ss->next)
            any = any || ss->srv == s;
        if (!any || pthread_cond_timedwait(&reg_cv, &reg_mu, &dl) != 0)
            break;
    }
    pthread_mutex_unlock(&reg_mu);
}

/* ---- the handshake ----------------------------------------------------------------------------
 */

static bool has_token(const char *list, const char *tok)
{
    size_t n = strlen(tok);
    for (const char *p = list; p && *p;) {
        while (*p == ' ' || *p == ',' || *p == '\t')
            p++;
        const char *e = p;
        while (*e && *e != ',')
            e++;
        const char *t = e;
        while (t > p && (t[-1] == ' ' || t[-1] == '\t'))
            t--;
        if ((size_t)(t - p) == n && strncasecmp(p, tok, n) == 0)
            return true;
        p = e;
    }
    return false;
}

/* A browser's page may open the socket only from an origin server.cors_origins lists, or from
   the server's own (Origin's host equal to Host); clients without Origin are not browsers. */
static bool origin_ok(struct http_req *r)
{
    const char *o = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Origin");
    if (!o)
        return true;
    for (size_t i = 0; i < r->params->n_cors_origins; i++)
        if (!strcmp(r->params->cors_origins[i], "*") || !strcmp(r->params->cors_origins[i], o))
            return true;
    const char *h = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
    const char *sep = strstr(o, "://");
    return h && sep && strcasecmp(sep + 3, h) == 0;
}

void ws_upgrade(struct http_req *r)
{
    const char *up = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Upgrade");
    const char *cn = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Connection");
    const char *ver =
        MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Sec-WebSocket-Version");
    const char *key = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Sec-WebSocket-Key");
    const char *protos =
        MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Sec-WebSocket-Protocol");
    if (!up || strcasecmp(up, "websocket") != 0 || !cn || !has_token(cn, "upgrade")) {
        http_reply_errorf(r, 400, NULL, "websocket_required",
                          "/v1/ws is a WebSocket endpoint: send Upgrade: websocket");
        return;
    }
    if (!ver || strcmp(ver, "13") != 0) {
        http_reply_errorf(r, 400, NULL, "websocket_version", "Sec-WebSocket-Version must be 13");
        MHD_add_response_header(r->resp, "Sec-WebSocket-Version", "13");
        return;
    }
    if (!key || strlen(key) != 24) {
        http_reply_errorf(r, 400, NULL, "websocket_key", "a valid Sec-WebSocket-Key is required");
        return;
    }
    if (!origin_ok(r)) {
        http_reply_errorf(r, 403, NULL, "origin_not_allowed",
                          "this Origin may not open the WebSocket (server.cors_origins)");
        return;
    }
    /* authentication: the Authorization header, a "bearer.KEY" subprotocol, or a first
       {"type": "auth"} message */
    bool authed = r->srv->n_keys == 0;
    int key_index = -1;
    const char *chosen = NULL;
    char bearer[600] = "";
    if (protos && has_token(protos, "inferno"))
        chosen = "inferno";
    const char *ah =
        MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!authed && ah) {
        if (strncasecmp(ah, "Bearer ", 7) != 0 ||
            (key_index = http_key_index(r->srv, ah + 7)) < 0) {
            http_reply_errorf(r, 401, NULL, "invalid_api_key", "incorrect API key provided");
            return;
        }
        authed = true;
    }
    for (const char *p = protos; !authed && p && *p;) {
        while (*p == ' ' || *p == ',')
            p++;
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        while (n && p[n - 1] == ' ')
            n--;
        if (n > 7 && n < sizeof(bearer) && strncmp(p, "bearer.", 7) == 0) {
            memcpy(bearer, p, n);
            bearer[n] = '\0';
            if ((key_index = http_key_index(r->srv, bearer + 7)) < 0) {
                http_reply_errorf(r, 401, NULL, "invalid_api_key", "incorrect API key provided");
                return;
            }
            authed = true;
            if (!chosen)
                chosen = bearer; /* a subprotocol must be echoed when only that was offered */
        }
        p = e ? e + 1 : "";
    }
    unsigned char sha[20];
    unsigned int sl = 20;
    char in[64];
    snprintf(in, sizeof(in), "%s%s", key, WS_GUID);
    EVP_Digest(in, strlen(in), sha, &sl, EVP_sha1(), NULL);
    char *accept = api_base64(sha, 20);
    struct ws_session *ss = calloc(1, sizeof(*ss));
    if (!accept || !ss) {
        free(accept);
        free(ss);
        http_reply_errorf(r, 500, NULL, NULL, "out of memory");
        return;
    }
    ss->srv = r->srv;
    ss->hc = r->hc;
    ss->authed = authed;
    ss->key_index = key_index;
    srv_audit_client(r, ss->client, sizeof(ss->client));
    ss->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    pthread_mutex_init(&ss->mu, NULL);
    ss->out_tail = &ss->out;
    atomic_init(&ss->closing, false);
    struct MHD_Response *resp =
        ss->efd >= 0 ? MHD_create_response_for_upgrade(on_upgraded, ss) : NULL;
    if (!resp) {
        if (ss->efd >= 0)
            close(ss->efd);
        pthread_mutex_destroy(&ss->mu);
        free(ss);
        free(accept);
        http_reply_errorf(r, 500, NULL, NULL, "cannot upgrade the connection");
        return;
    }
    MHD_add_response_header(resp, "Upgrade", "websocket");
    MHD_add_response_header(resp, "Sec-WebSocket-Accept", accept);
    if (chosen)
        MHD_add_response_header(resp, "Sec-WebSocket-Protocol", chosen);
    free(accept);
    r->key_index = key_index; /* the upgrade's own audit record */
    http_reply_response(r, MHD_HTTP_SWITCHING_PROTOCOLS, resp);
    /* the socket outlives the request: only its requests count for the server's drain (the
       session closes with 1001 after it) */
    if (r->counted) {
        atomic_fetch_sub(&r->srv->in_flight, 1);
        r->counted = false;
    }
}

/* ---- fuzzing ------------------------------------------------------------------------------------
 */

struct fuzz_in {
    const uint8_t *d;
    size_t n, off;
    int parsed;
};

static ssize_t fuzz_recv(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags,
                         void *user)
{
    struct fuzz_in *f = user;
    (void)flags;
    if (f->off >= f->n) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    size_t k = f->n - f->off < len ? f->n - f->off : len;
    if (k > 7) /* frames split at odd places too */
        k = 1 + (f->d[f->off] % k);
    memcpy(buf, f->d + f->off, k);
    f->off += k;
    return (ssize_t)k;
}

static ssize_t fuzz_send(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
                         void *user)
{
    (void)ctx;
    (void)data;
    (void)flags;
    (void)user;
    return (ssize_t)len;
}

static void fuzz_msg(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *a,
                     void *user)
{
    struct fuzz_in *f = user;
    on_message(ctx, a, NULL, &f->parsed);
}

int ws_fuzz_feed(const uint8_t *data, size_t n)
{
    struct fuzz_in f = {data, n, 0, 0};
    struct wslay_event_callbacks cb = {fuzz_recv, fuzz_send, NULL, NULL, NULL, NULL, fuzz_msg};
    wslay_event_context_ptr ctx;
    if (wslay_event_context_server_init(&ctx, &cb, &f) != 0)
        return 0;
    wslay_event_config_set_max_recv_msg_length(ctx, 1 << 20);
    while (f.off < f.n && wslay_event_want_read(ctx))
        if (wslay_event_recv(ctx) != 0)
            break;
    while (wslay_event_want_write(ctx))
        if (wslay_event_send(ctx) != 0)
            break;
    wslay_event_context_free(ctx);
    return f.parsed;
}
