/*
 * server/audit_hook.h - the audit log in the server: one record per API request (request id,
 * time, API key id, client address, route, model, the parameters that matter, token counts,
 * cache result, status, latency; the request and response bodies only with include_content),
 * written through inferno/audit.h before the response is queued (a stream's before its [DONE];
 * one that ended early: when it ended).
 * Internal to src/server.
 */
#ifndef INFERNO_SERVER_AUDIT_HOOK_H
#define INFERNO_SERVER_AUDIT_HOOK_H

#include <stdbool.h>
#include <stddef.h>

#include "inferno/audit.h"

struct http_req;
struct srv_audit;

/* Takes the log over (closed by srv_audit_free). api_keys: to derive each key's id (a SHA-256
   fingerprint; the key itself is never written). */
struct srv_audit *srv_audit_new(struct inf_audit *log, bool include_content, bool required,
                                const char *const *api_keys, size_t n_keys);
void srv_audit_free(struct srv_audit *a);
bool srv_audit_content(const struct srv_audit *a);
bool srv_audit_required(const struct srv_audit *a);
/* The fingerprint of an API key: "key-" and 12 hex digits (out: at least 17 bytes). */
void srv_audit_key_id(const char *key, char *out, size_t size);
/* The client's numeric address of r's connection ("" when it has none); out: 64 bytes. */
void srv_audit_client(const struct http_req *r, char *out, size_t size);
/* Records written and records that could not be written, since start (for /metrics). */
void srv_audit_counters(const struct srv_audit *a, uint64_t *written, uint64_t *failed);
/* Write r's record (once). false when it could not be written (logged). */
bool srv_audit_request(struct srv_audit *a, struct http_req *r);
/* Write another record (a job event: one JSON object), with "ts" added. */
bool srv_audit_append_raw(struct srv_audit *a, const char *json, size_t len);

#endif
