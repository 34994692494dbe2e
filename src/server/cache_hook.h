/*
 * server/cache_hook.h - the response cache in the server: which requests may use it, their key,
 * recording a live answer as the events its tasks produced, replaying a cached one as tasks that
 * yield those events again (so the usual formatting makes the JSON or SSE response, streamed or
 * not, byte for byte as it was apart from id and created), and single flight for identical
 * requests in flight together. The store itself is inferno/cache.h. Internal to src/server.
 *
 * In a handler, after the prompt is tokenized and before its tasks are submitted:
 *
 *   struct cache_req cq;  cache_req_init(&cq, r);
 *   ... cache_key_*(&cq, ...) for every field that changes the output ...
 *   if (cache_lookup(r, &cq, n, tasks))   -> tasks[0..n) replay the answer: skip the submit
 *   else submit, then cache_record(&cq, tasks, n)
 *   ... at the end: cache_end(r, &cq)     -> X-Inferno-Cache on the response, references dropped
 */
#ifndef INFERNO_SERVER_CACHE_HOOK_H
#define INFERNO_SERVER_CACHE_HOOK_H

#include <openssl/evp.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "inferno/cache.h"
#include "server/api.h"
#include "server/sched.h"

struct http_req;
struct srv_cache; /* the server's: the store, the flights, the counters */

/* A server-side cache over an open store (taken over: freed by srv_cache_free). */
struct srv_cache *srv_cache_new(struct inf_cache *store);
void srv_cache_free(struct srv_cache *sc);

struct srv_cache_counters {
    uint64_t hits, misses, bypasses, stored, stored_bytes, evictions, corrupt, coalesced;
};
void srv_cache_counters(struct srv_cache *sc, struct srv_cache_counters *out);

enum cache_state { CACHE_OFF, CACHE_BYPASS, CACHE_MISS, CACHE_HIT };

struct cache_flight;
struct cache_rec;

struct cache_req {
    struct srv_cache *sc; /* NULL: no cache on this server */
    enum cache_state state;
    EVP_MD_CTX *md; /* the key being built */
    bool key_failed;
    uint8_t key[INF_CACHE_KEY_BYTES];
    char model[256];
    struct cache_flight *flight; /* as the leader of identical requests */
    struct cache_rec *rec;
};

void cache_req_init(struct cache_req *cq, struct http_req *r);
/*
 * Start the key: the model's identity (digest of its file), the endpoint, the deterministic
 * test. A request that is not deterministic (temperature above greedy and no seed) is a
 * bypass; so is one whose model file cannot be read.
 */
void cache_key_begin(struct cache_req *cq, struct srv_engine *e, const char *model_id,
                     const char *endpoint, const struct api_gen *gen);
/* Fields of the key (in a fixed order per endpoint; each is length-prefixed). */
void cache_key_bytes(struct cache_req *cq, const void *d, size_t n);
void cache_key_u64(struct cache_req *cq, uint64_t v);
void cache_key_tokens(struct cache_req *cq, const inf_token *ids, size_t n);
void cache_key_json(struct cache_req *cq, const json_t *j); /* canonical: sorted, compact */
/*
 * Finish the key and look it up. true: a hit, tasks[0..n) are replay tasks (the caller owns
 * them as if submitted). false: go on (submit, then cache_record). Waits while an identical
 * request is being computed (single flight), answering from its result; gives up waiting when
 * the client goes away (then false, and the caller's wait notices the client too).
 */
bool cache_lookup(struct http_req *r, struct cache_req *cq, size_t n, struct srv_task **tasks);
/* A miss was submitted: record the tasks' events; a complete answer is stored. */
void cache_record(struct cache_req *cq, struct srv_task *const *tasks, size_t n);
/* The request's end: the X-Inferno-Cache header; the key context and references go. */
void cache_end(struct http_req *r, struct cache_req *cq);

/* ---- the stored answer (exposed for tests and the fuzz target) ------------------------------- */

/* Tasks' events -> bytes (malloc'd). */
bool cache_blob_encode(struct srv_event *const *evs, const size_t *n_evs, size_t n_tasks,
                       uint8_t **out, size_t *out_len);
/*
 * Bytes -> per task event arrays (each evs[i] malloc'd with n_evs[i] entries; release with
 * cache_blob_free). Checks every count and length against the bytes left; false when malformed
 * or when n_tasks differs from expect_tasks.
 */
bool cache_blob_decode(const uint8_t *d, size_t n, size_t expect_tasks, struct srv_event ***evs,
                       size_t **n_evs);
void cache_blob_free(struct srv_event **evs, size_t *n_evs, size_t n_tasks);

#endif
