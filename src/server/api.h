/*
 * server/api.h - OpenAI-style request validation and the error shape, without a model.
 *
 * Every endpoint's JSON body is turned into a plain request struct here (types, ranges, the
 * parameters refused as not supported) so that validation runs without a model file: the fuzz
 * target drives these functions directly. Checks that need the model (token ids below n_vocab,
 * prompt length against the slot) happen later, in the handlers (api_handlers.c).
 *
 * Each parse function returns true on success; on failure it fills *e with the HTTP status and
 * the OpenAI error fields and the request must still be released with its _release function.
 */
#ifndef INFERNO_SERVER_API_H
#define INFERNO_SERVER_API_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "inferno/sampling.h"
#include "server/sched.h"

#define API_MAX_N       16   /* choices per request (n) */
#define API_MAX_INPUTS  256  /* prompts / embedding inputs in one request */
#define API_MAX_MESSAGE 4096 /* messages in one chat */

struct api_error {
    int status;       /* HTTP status */
    const char *type; /* invalid_request_error, authentication_error, ... */
    const char *code; /* NULL = JSON null */
    char param[96];   /* "" = JSON null */
    char message[512];
};

/* Fill an error (printf-style message). Returns false so callers can `return api_fail(...)`. */
bool api_fail(struct api_error *e, int status, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* {"error": {...}} as a new JSON object. */
json_t *api_error_json(const struct api_error *e);
/* The OpenAI error "type" for a status (400 -> invalid_request_error ...). */
const char *api_error_type(int status);

/* Constrained output (response_format, or llama.cpp's `grammar` / `json_schema` extensions). The
   text is compiled on the connection's thread once the model is known (api_handlers.c). */
enum api_format_kind {
    API_FMT_TEXT,        /* unconstrained */
    API_FMT_JSON_SCHEMA, /* text: a JSON Schema (json_object: {"type":"object"}) */
    API_FMT_GBNF,        /* text: GBNF (the `grammar` extension) */
};

struct api_format {
    enum api_format_kind kind;
    char *text; /* malloc'd, NUL-terminated; NULL for TEXT */
    size_t len;
    bool strict;       /* json_schema.strict (OpenAI's strict mode) */
    const char *param; /* the request field it came from, for errors */
};

/* Sampling and output options shared by chat and completions. */
struct api_gen {
    int32_t max_tokens; /* -1: until end of generation or the slot's end */
    struct inf_sampler_params sampling;
    struct inf_logit_bias *bias; /* [n_bias] (malloc'd); ids checked against n_vocab later */
    size_t n_bias;
    bool seed_given;
    char *stop[SRV_MAX_STOP];
    int n_stop;
    int n;
    bool stream, include_usage;
    bool logprobs;
    int top_logprobs;
    bool ignore_eos;
    char model[256]; /* "" = the default model */
    struct api_format format;
};

/* One prompt: text, or token ids given by the client. */
struct api_prompt {
    char *text; /* NULL when ids are given */
    size_t len;
    inf_token *ids; /* [n_ids] */
    size_t n_ids;
};

enum api_tool_choice {
    API_TOOLS_NONE,     /* no tools, or tool_choice "none": plain text */
    API_TOOLS_AUTO,     /* the model decides (calls are recognised in its output) */
    API_TOOLS_REQUIRED, /* at least one call: the output is constrained to the call syntax */
    API_TOOLS_NAMED,    /* exactly the function tool_name */
};

struct api_chat_req {
    struct api_gen gen;
    /* normalised: [{role, content: string, name?}]; assistant messages may carry tool_calls
       [{id, type: "function", function: {name, arguments}}] (arguments as an object when the
       string held one, as templates expect) and tool messages tool_call_id; roles as templates
       expect */
    json_t *messages;
    json_t *tools; /* [{type: "function", function: {name, description?, parameters, strict?}}]
                      as given (validated), or NULL */
    enum api_tool_choice tool_choice;
    char tool_name[72];       /* API_TOOLS_NAMED */
    bool parallel_tool_calls; /* default true */
};

struct api_completion_req {
    struct api_gen gen;
    struct api_prompt *prompts; /* [n_prompts] */
    size_t n_prompts;
    bool echo;
    int logprobs; /* -1: none; else 0..5 (legacy top-k with tokens) */
};

enum api_encoding { API_ENC_FLOAT, API_ENC_BASE64 };

struct api_embedding_req {
    char model[256];
    struct api_prompt *inputs;
    size_t n_inputs;
    enum api_encoding encoding;
    int64_t dimensions; /* 0: not given */
};

/* /v1/rerank (llama-server's and Jina/Cohere's shape) */
struct api_rerank_req {
    char model[256];
    char *query;
    size_t query_len;
    struct api_prompt *docs; /* text only */
    size_t n_docs;
    int64_t top_n; /* 0: all */
    bool return_documents;
};

struct api_tokenize_req {
    char model[256];
    char *content;
    size_t len;
    bool add_special, parse_special, with_pieces;
};

struct api_detokenize_req {
    char model[256];
    inf_token *ids;
    size_t n_ids;
};

struct api_template_req {
    char model[256];
    json_t *messages;
};

bool api_parse_chat(json_t *body, struct api_chat_req *r, struct api_error *e);
void api_chat_release(struct api_chat_req *r);
bool api_parse_completion(json_t *body, struct api_completion_req *r, struct api_error *e);
void api_completion_release(struct api_completion_req *r);
bool api_parse_embedding(json_t *body, struct api_embedding_req *r, struct api_error *e);
void api_embedding_release(struct api_embedding_req *r);
bool api_parse_rerank(json_t *body, struct api_rerank_req *r, struct api_error *e);
void api_rerank_release(struct api_rerank_req *r);
bool api_parse_tokenize(json_t *body, struct api_tokenize_req *r, struct api_error *e);
void api_tokenize_release(struct api_tokenize_req *r);
bool api_parse_detokenize(json_t *body, struct api_detokenize_req *r, struct api_error *e);
void api_detokenize_release(struct api_detokenize_req *r);
bool api_parse_template(json_t *body, struct api_template_req *r, struct api_error *e);
void api_template_release(struct api_template_req *r);

/* Parse a request body: a JSON object in valid UTF-8, else 400. Caller decrefs. */
json_t *api_parse_body(const char *data, size_t len, struct api_error *e);

/* ---- helpers shared with the handlers -------------------------------------------------- */

/* Copy s[0..len) replacing invalid UTF-8 with U+FFFD; result NUL-terminated, *out_len set. */
char *api_utf8_sanitize(const char *s, size_t len, size_t *out_len);
bool api_utf8_valid(const char *s, size_t len);
/*
 * s[0..len) (valid UTF-8 without NUL bytes) as the inside of a JSON string, exactly as jansson's
 * json_dumps writes it without JSON_ENSURE_ASCII / JSON_ESCAPE_SLASH: \" \\ \b \f \n \r \t,
 * \u00XX (upper-case hex) for the other bytes below 0x20, everything else as it is. out needs
 * room for 6 * len bytes; returns the bytes written. The streaming fast path uses it to write
 * the chunks jansson would, without building them as objects.
 */
size_t api_json_escape(const char *s, size_t len, char *out);
/* A JSON string from arbitrary bytes (invalid UTF-8 replaced). Never NULL except on ENOMEM. */
json_t *api_json_str(const char *s, size_t len);
/* Random lower-case alphanumerics (n chars + NUL) from the OS random source. */
void api_random_id(char *out, size_t n);
uint64_t api_random_u64(void);
/* Standard base64 of len bytes (malloc'd, NUL-terminated). */
char *api_base64(const unsigned char *data, size_t len);

#endif
