/*
 * server/handlers.h - the endpoint handlers, one per row of the route table in http.c: each
 * reads r->body, answers through response.h and returns. Internal to src/server.
 */
#ifndef INFERNO_SERVER_HANDLERS_H
#define INFERNO_SERVER_HANDLERS_H

#include "server/response.h"

/* api_handlers.c */
void api_chat(struct http_req *r);
void api_completions(struct http_req *r);
void api_embeddings(struct http_req *r);
void api_rerank(struct http_req *r);
void api_models(struct http_req *r);
void api_model(struct http_req *r);
void api_health(struct http_req *r);
void api_tokenize(struct http_req *r);
void api_detokenize(struct http_req *r);
void api_apply_template(struct http_req *r);
/* metrics.c */
void api_metrics(struct http_req *r);

#endif
