/*
 * server/ollama.h - Ollama's API on the OpenAI server's engines: the requests of /api/generate,
 * /api/chat, /api/embed... are checked and translated here into the OpenAI bodies the existing
 * handlers take (api_parse.c validates those again), and Ollama's `options` into the sampler's
 * parameters. Pure functions of JSON, without a model, so that the fuzz target drives them
 * (fuzz/fuzz_ollama_request.c); the handlers and the reply shapes are in ollama.c.
 *
 * Each function returns true on success; on failure it fills *e (the HTTP status and the
 * message that Ollama's error shape {"error": "..."} carries).
 */
#ifndef INFERNO_SERVER_OLLAMA_H
#define INFERNO_SERVER_OLLAMA_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "inferno/sampling.h"
#include "inferno/tokenizer.h"
#include "server/api.h"

/* Ollama's `options`, over its defaults (temperature 0.8, top_k 40, top_p 0.9, repeat_penalty
   1.1 over the last 64 tokens, no limit on the tokens generated). */
struct ollama_opts {
    int32_t max_tokens; /* num_predict: -1 = until the end of generation or of the slot */
    struct inf_sampler_params sampling;
    bool seed_given;
    char *stop[SRV_MAX_STOP]; /* malloc'd */
    int n_stop;
    bool stop_given;
    int64_t num_ctx; /* 0 when not given; the slots' size is the server's (logged) */
    int64_t num_thread;
};

/* Parse `options` (NULL = the defaults). Unknown options are ignored, as Ollama does (logged
 * at debug); a known one of the wrong type or range is a 400. */
bool ollama_parse_options(json_t *options, struct ollama_opts *o, struct api_error *e);
void ollama_opts_release(struct ollama_opts *o);

/* keep_alive: a number of seconds or a Go duration string ("5m", "1h30m", "-1s"); negative =
 * keep loaded. *given false when v is NULL or JSON null. */
bool ollama_parse_keep_alive(json_t *v, double *seconds, bool *given, struct api_error *e);

/* A model name as Ollama writes it: [namespace/]name[:tag], each part of letters, digits,
 * '.', '_' and '-' (no part "." or ".."), at most 200 bytes in all. */
bool ollama_name_valid(const char *name);

/* Ollama's `format` ("json", "" or a JSON Schema object) as an OpenAI response_format; *out
 * NULL when there is none. */
bool ollama_format(json_t *format, json_t **out, struct api_error *e);

/* /api/chat: the OpenAI chat body for model_id (messages, tools, response_format, stream) from
 * the Ollama request. Images are refused; tool results get the ids of the calls they answer. */
bool ollama_chat_body(json_t *in, const char *model_id, json_t **out, struct api_error *e);

/* Replies: an OpenAI tool call's name and arguments (JSON text) as Ollama's {function: {name,
 * arguments: {...}}} (arguments that are not a JSON object become {}), and an OpenAI assistant
 * message as Ollama's {role, content, tool_calls?} (content "" when null). New references. */
json_t *ollama_tool_call(const char *name, const char *args);
json_t *ollama_message(json_t *openai_message);

/* /api/generate's fields, checked (strings borrowed from the request). */
struct ollama_generate {
    const char *model, *prompt, *suffix, *system, *tmpl;
    inf_token *context; /* malloc'd [n_context] */
    size_t n_context;
    bool raw, stream;
    json_t *response_format; /* owned; NULL when none */
    json_t *options;         /* borrowed */
    json_t *keep_alive;      /* borrowed */
};
bool ollama_parse_generate(json_t *in, struct ollama_generate *g, struct api_error *e);
void ollama_generate_release(struct ollama_generate *g);

/* /api/embed (input: a string or an array of strings) and /api/embeddings (prompt). */
struct ollama_embed {
    const char *model;
    const char **inputs; /* malloc'd [n_inputs], borrowed strings */
    size_t n_inputs;
    bool truncate;
    int64_t dimensions; /* 0: not given */
    bool legacy;        /* /api/embeddings */
    json_t *keep_alive; /* borrowed */
};
bool ollama_parse_embed(json_t *in, bool legacy, struct ollama_embed *q, struct api_error *e);
void ollama_embed_release(struct ollama_embed *q);

/* A /api/generate `template` override, the subset of Go's text/template that legacy Modelfile
 * templates use: {{ .System }}, {{ .Prompt }}, {{ .Response }} (empty), {{ if .X }} ...
 * {{ else }} ... {{ end }} on those (nesting at most 16), comments, and the {{- -}} space
 * trimming. Anything else ({{ range .Messages }}...) is a 400 naming the action. *out (malloc'd,
 * NUL-terminated) and *spans (malloc'd): the bytes that came from system and prompt, for
 * inf_tok_encode_untrusted. */
bool ollama_template_render(const char *tpl, const char *system, const char *prompt, char **out,
                            size_t *out_len, struct inf_text_span **spans, size_t *n_spans,
                            struct api_error *e);

#endif
