/*
 * server/ws.h - WebSocket streaming (GET /v1/ws, RFC 6455): libmicrohttpd upgrades the
 * connection, Debian's libwslay frames it, and each request on the socket runs the OpenAI
 * handler (api_handlers.c) detached from any HTTP connection, its chunks sent as messages.
 *
 * Messages are JSON text frames. Client: {"id": "r1", "type": "chat.completions" |
 * "completions" | "embeddings", "body": {...the HTTP endpoint's body...}}, {"id": "r1", "type":
 * "cancel"}, and {"type": "auth", "token": "KEY"} (browsers, which cannot set headers). Server:
 * {"id", "type": "chunk", "data": <the SSE chunk>}..., then {"id", "type": "done", "usage"} or
 * {"id", "type": "error", "error": {...OpenAI error...}}. See docs/server.md.
 */
#ifndef INFERNO_SERVER_WS_H
#define INFERNO_SERVER_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct http_server;

#define WS_MAX_IN_FLIGHT 64 /* requests running at once on one connection */

enum ws_msg_type {
    WS_MSG_CHAT,
    WS_MSG_COMPLETIONS,
    WS_MSG_EMBEDDINGS,
    WS_MSG_CANCEL,
    WS_MSG_AUTH,
};

/* A client message, checked. Strings point into the message's JSON (valid while it lives). */
struct ws_msg {
    enum ws_msg_type type;
    char id[72];
    const char *token;   /* AUTH */
    struct json_t *body; /* requests: the endpoint's body (borrowed from root) */
    struct json_t *root; /* the parsed message: the caller decrefs it */
};

/* Parse a text message (len bytes, valid UTF-8 checked here too). On failure false with the
 * reason in err (NUL-terminated) and, when the message had one, its id in out->id. */
bool ws_msg_parse(const char *data, size_t len, struct ws_msg *out, char *err, size_t err_size);

/* Close every WebSocket session of s (code 1001) and wait for their threads (server stop). */
void ws_stop_all(struct http_server *s);

/* The frame layer alone, for the fuzz target: feed bytes to a server-side libwslay context as
 * if a client had sent them, every complete text message through ws_msg_parse; nothing runs.
 * Returns the number of messages parsed. */
int ws_fuzz_feed(const uint8_t *data, size_t n);

#endif
