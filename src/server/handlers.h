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
/* ollama.c: Ollama's API */
extern const struct http_sink ollama_sink;
void ollama_root(struct http_req *r);
void ollama_generate(struct http_req *r);
void ollama_chat(struct http_req *r);
void ollama_embed(struct http_req *r);
void ollama_embeddings(struct http_req *r);
void ollama_tags(struct http_req *r);
void ollama_show(struct http_req *r);
void ollama_ps(struct http_req *r);
void ollama_version(struct http_req *r);
void ollama_copy(struct http_req *r);
void ollama_delete(struct http_req *r);
void ollama_pull(struct http_req *r);
void ollama_push(struct http_req *r);
void ollama_create(struct http_req *r);
void ollama_unknown(struct http_req *r);
/* jobs_api.c: the Files and Batch API */
void api_files_create(struct http_req *r);
void api_files_list(struct http_req *r);
void api_file_get(struct http_req *r);
void api_file_delete(struct http_req *r);
void api_batches_create(struct http_req *r);
void api_batches_list(struct http_req *r);
void api_batch_get(struct http_req *r);
void api_batch_cancel(struct http_req *r);
/* ws.c: WebSocket streaming */
void ws_upgrade(struct http_req *r);

#endif
