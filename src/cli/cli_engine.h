/* cli_engine.h - helpers shared by the commands that load a model (internal to the CLI). */
#ifndef INFERNO_CLI_ENGINE_H
#define INFERNO_CLI_ENGINE_H

#include <jansson.h>
#include <stdbool.h>

#include "cli/cli.h"
#include "inferno/engine.h"
#include "inferno/grammar.h"
#include "inferno/sampling.h"
#include "inferno/template.h"
#include "inferno/tokenizer.h"

/* Resolve a MODEL argument against models_dir; prints the error and returns -1 on failure. */
int inf_models_resolve_cli(struct inf_cli *cli, const char *arg, char *out, size_t size);
/* Load the model named by --model; returns an exit code (0 on success). */
int inf_cli_load_model(struct inf_cli *cli, const struct inf_cli_args *args,
                       struct inf_model **out);
/* Model loading parameters from the backend.* keys (mmap, mlock, huge pages). */
struct inf_model_params inf_cli_model_params(const struct inf_cli *cli);
/* Context parameters from backend.* (after flags were applied to the configuration). */
struct inf_context_params inf_cli_context_params(const struct inf_cli *cli);
/* The options inf_cli_sampler_params reads (run, chat, tui). */
#define INF_CLI_SAMPLER_OPTS                                                                         \
    {"temp", 0, INF_OPT_VALUE, "T", "temperature; 0 = greedy (default 0.8)", NULL},                  \
        {"top-k", 0, INF_OPT_VALUE, "N", "keep the N most likely tokens (default 40; 0 off)", NULL}, \
        {"top-p", 0, INF_OPT_VALUE, "P", "nucleus sampling mass (default 0.95; 1 off)", NULL},       \
        {"min-p", 0, INF_OPT_VALUE, "P", "drop tokens below P x the best (default 0.05)", NULL},     \
        {"typical-p", 0, INF_OPT_VALUE, "P", "locally typical sampling (default 1 = off)", NULL},    \
        {"repeat-penalty",                                                                           \
         0,                                                                                          \
         INF_OPT_VALUE,                                                                              \
         "X",                                                                                        \
         "penalise repeated tokens (default 1 = off)",                                               \
         NULL},                                                                                      \
        {"repeat-last-n", 0, INF_OPT_VALUE, "N", "tokens the penalties look at (default 64)", NULL}, \
        {"presence-penalty", 0, INF_OPT_VALUE, "X", "default 0", NULL},                              \
        {"frequency-penalty", 0, INF_OPT_VALUE, "X", "default 0", NULL},                             \
    {                                                                                                \
        "seed", 's', INF_OPT_VALUE, "N", "random seed", NULL                                         \
    }

/* Sampler parameters from --temp, --top-k, … (options that are absent keep the defaults). */
int inf_cli_sampler_params(struct inf_cli *cli, const struct inf_cli_args *a,
                           struct inf_sampler_params *p);
/* Render the model's chat template (ChatML when it has none) over messages; out also says which
 * bytes came from the messages (free it with inf_rendered_release). */
int inf_cli_chat_prompt(struct inf_cli *cli, const struct inf_model *model, json_t *messages,
                        bool add_generation_prompt, struct inf_rendered *out);
/* Tokenize a prompt: BOS as the vocabulary asks; special tokens parsed for templated text. */
int inf_cli_tokenize_prompt(struct inf_cli *cli, const struct inf_model *model, const char *text,
                            size_t len, bool templated, bool parse_special, struct inf_tokens *out);
/* Tokenize a rendered chat: the template's markers are control tokens, text from the messages
 * never is (unless parse_special_in_content: the old, unsafe behaviour). */
int inf_cli_tokenize_chat(struct inf_cli *cli, const struct inf_model *model,
                          const struct inf_rendered *prompt, bool parse_special_in_content,
                          struct inf_tokens *out);

/*
 * Constrained output (--grammar-file FILE, --json-schema FILE|JSON, --json-mode): the grammar,
 * the vocabulary's trie and a matcher. m is NULL when no such option was given.
 */
struct inf_cli_grammar {
    struct inf_grammar *g;
    struct inf_grammar_vocab *v;
    struct inf_matcher *m;
    float *buf; /* [n_vocab] the masked copy of the logits */
    int32_t n_vocab;
};
#define INF_CLI_GRAMMAR_OPTS                                                                       \
    {"grammar-file", 0, INF_OPT_VALUE, "FILE", "constrain the output to a GBNF grammar", NULL},    \
        {"json-schema",                                                                            \
         0,                                                                                        \
         INF_OPT_VALUE,                                                                            \
         "SCHEMA",                                                                                 \
         "constrain the output to JSON valid for a schema (a file or inline JSON)",                \
         NULL},                                                                                    \
    {                                                                                              \
        "json-mode", 0, INF_OPT_FLAG, NULL, "constrain the output to a JSON object", NULL          \
    }
/* Compile what the options ask for; returns an exit code (0: ok, also when none asked). */
int inf_cli_grammar_open(struct inf_cli *cli, const struct inf_cli_args *args,
                         const struct inf_tokenizer *tok, int32_t n_vocab,
                         struct inf_cli_grammar *out);
/* logits with every token the grammar refuses at -inf (logits itself when there is none). */
const float *inf_cli_grammar_mask(struct inf_cli_grammar *g, const float *logits);
/* Commit a sampled token; false when the grammar refuses it. */
bool inf_cli_grammar_accept(struct inf_cli_grammar *g, inf_token t);
/* True when the grammar allows nothing more. */
bool inf_cli_grammar_done(const struct inf_cli_grammar *g);
void inf_cli_grammar_close(struct inf_cli_grammar *g);

#endif
