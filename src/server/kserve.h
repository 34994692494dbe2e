/*
 * server/kserve.h - ONNX models served over the Open Inference Protocol (KServe v2, as Triton
 * and KServe speak it). Internal to src/server; src/cli/cmd_serve.c builds the registry.
 *
 *   GET  /v2                               server metadata
 *   GET  /v2/health/live, /v2/health/ready  liveness, readiness (every model loaded)
 *   GET  /v2/models/{name}[/versions/{v}]   model metadata: inputs and outputs with datatypes
 *                                           and shapes (-1 for symbolic dims)
 *   GET  /v2/models/{name}[/versions/{v}]/ready
 *   POST /v2/models/{name}[/versions/{v}]/infer
 *        {"id"?, "inputs": [{"name", "shape", "datatype", "data"}], "outputs"?: [{"name"}]}
 *        -> {"model_name", "model_version", "id"?, "outputs": [{"name", "datatype", "shape",
 *        "data"}]}; data row-major, flat or nested. Errors: {"error": "message"}.
 *
 * Each model runs on its own thread pool, one run at a time; requests to different models run
 * in parallel on their connections' threads. Requests that queue while a model is busy are run
 * by the thread that holds it, concatenated along a symbolic batch dim when the model has one.
 */
#ifndef INFERNO_SERVER_KSERVE_H
#define INFERNO_SERVER_KSERVE_H

#include <stddef.h>

#include "inferno/status.h"
#include "server/response.h"

struct srv_onnx;

/* Load the models (names[i] serves paths[i]), each with a pool of n_threads (0 = physical
   cores). */
inf_status srv_onnx_new(const char *const *names, const char *const *paths, size_t n, int n_threads,
                        struct srv_onnx **out, struct inf_error *err);
void srv_onnx_free(struct srv_onnx *o);
size_t srv_onnx_count(const struct srv_onnx *o);
const char *srv_onnx_name(const struct srv_onnx *o, size_t i);

/* The handlers of the /v2 rows of the route table. */
void kserve_server(struct http_req *r);
void kserve_health(struct http_req *r);
void kserve_model_get(struct http_req *r);
void kserve_model_post(struct http_req *r);

#endif
