/* hub/convert_internal.h - shared by convert.c (architectures, tensors, streaming) and
   convert_vocab.c (tokenizer metadata). Internal to src/hub/convert*. */
#ifndef INFERNO_HUB_CONVERT_INTERNAL_H
#define INFERNO_HUB_CONVERT_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "inferno/gguf.h"
#include "inferno/status.h"

/* Caps on the JSON files read (bytes), checked before anything is parsed. */
#define INF__CONV_MAX_CONFIG    (16u << 20)
#define INF__CONV_MAX_TOKENIZER (512u << 20)
#define INF__CONV_MAX_VOCAB     (1u << 21) /* tokens (the largest published: ~262k) */

/* llama.cpp's token types (gguf-py TokenType) */
enum {
    INF__TT_NORMAL = 1,
    INF__TT_UNKNOWN = 2,
    INF__TT_CONTROL = 3,
    INF__TT_USER_DEFINED = 4,
    INF__TT_UNUSED = 5,
    INF__TT_BYTE = 6,
};

/* What the vocabulary step needs to know and what it tells the tensor step. */
struct inf__conv_json {
    json_t *config;          /* config.json with text_config's keys merged in (owned) */
    json_t *tok;             /* tokenizer.json, or NULL */
    json_t *tok_cfg;         /* tokenizer_config.json, or NULL */
    json_t *gen_cfg;         /* generation_config.json, or NULL */
    char *chat_jinja;        /* chat_template.jinja, or NULL */
    const uint8_t *sp_model; /* tokenizer.model (SentencePiece protobuf), or NULL */
    size_t sp_model_len;
    json_t *added_tokens; /* added_tokens.json (read with tokenizer.model), or NULL */
    const char *arch;     /* the GGUF architecture ("llama") */
    int64_t n_vocab;      /* config.json vocab_size (0 when absent) */
    int64_t n_tokens;     /* set by inf__conv_vocab: tokens written */
    bool no_bos;          /* add_bos_token false whatever the files say (granite's small vocab) */
    int pooling;          /* pooling_type from modules.json (sentence-transformers), or -1 */
};

/* Write the tokenizer.ggml.* keys (and the chat template) for j. */
inf_status inf__conv_vocab(struct inf__conv_json *j, struct inf_gguf_writer *w,
                           struct inf_error *err);

/* Parse JSON text of at most max bytes; what names the file in messages. */
inf_status inf__conv_parse_json(const char *text, size_t len, const char *what, json_t **out,
                                struct inf_error *err);

#endif
