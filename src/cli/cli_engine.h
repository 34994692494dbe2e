/* cli_engine.h - helpers shared by the commands that load a model (internal to the CLI). */
#ifndef INFERNO_CLI_ENGINE_H
#define INFERNO_CLI_ENGINE_H

#include <jansson.h>
#include <stdbool.h>

#include "cli/cli.h"
#include "inferno/engine.h"
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

#endif
