/*
 * cli.h - the command-line layer: the command table, generic option parsing and helpers.
 *
 * Commands are data (struct inf_cli_command): name, handler, options, one-line summary. main.c
 * parses global options, finds the command, parses the command's options against its table
 * (unknown options are refused there with a suggestion, exit 2), applies options that map to
 * configuration keys, and only then calls the handler. Handlers return an exit code.
 */
#ifndef INFERNO_CLI_CLI_H
#define INFERNO_CLI_CLI_H

#include <stdbool.h>
#include <stddef.h>

#include "inferno/config.h"

enum {
    INF_EXIT_OK = 0,
    INF_EXIT_FAIL = 1,    /* the operation failed (or, for validate, the file is invalid) */
    INF_EXIT_USAGE = 2,   /* bad command line */
    INF_EXIT_NOTIMPL = 3, /* the command exists but is not available yet */
};

enum inf_cli_opt_kind {
    INF_OPT_FLAG,  /* --name */
    INF_OPT_VALUE, /* --name VALUE, --name=VALUE, -x VALUE */
    INF_OPT_LIST,  /* like VALUE, may repeat; all values kept */
};

struct inf_cli_opt {
    const char *name; /* long name without dashes */
    char short_name;  /* 0 when none */
    enum inf_cli_opt_kind kind;
    const char *metavar; /* "N", "FILE"… for help */
    const char *help;
    const char *config_key; /* when set, the value is applied to this configuration key as a flag */
};

#define INF_CLI_MAX_OPTS       48
#define INF_CLI_MAX_POSITIONAL 64

struct inf_cli_args {
    const struct inf_cli_opt *opts;
    size_t n_opts;
    int count[INF_CLI_MAX_OPTS];         /* times each option was given */
    const char *value[INF_CLI_MAX_OPTS]; /* last value given */
    const char **list[INF_CLI_MAX_OPTS]; /* all values, for INF_OPT_LIST (malloc'd) */
    const char *positional[INF_CLI_MAX_POSITIONAL];
    int n_positional;
};

struct inf_cli;

struct inf_cli_command {
    const char *name;
    int (*handler)(struct inf_cli *cli, struct inf_cli_args *args);
    const struct inf_cli_opt *opts;     /* terminated by an entry with name == NULL */
    const char *usage;                  /* argument synopsis after the command name */
    const char *summary;                /* one line */
    const char *description;            /* longer text for `inferno help <command>`, may be NULL */
    int min_positional, max_positional; /* max -1 = unlimited */
};

struct inf_cli {
    struct inf_config *config; /* effective configuration: defaults < files < env < flags */
    const struct inf_cli_command *command;
};

/* Option access. name is the long name; asking for an option the command lacks is a bug. */
bool inf_cli_has(const struct inf_cli_args *a, const char *name);
const char *inf_cli_value(const struct inf_cli_args *a, const char *name);
/* Values of a LIST option (NULL-terminated; an empty list when never given). */
const char *const *inf_cli_values(const struct inf_cli_args *a, const char *name, int *n);

/*
 * Parse an integer option value; on failure prints "inferno <cmd>: option '--name' expects an
 * integer in [lo, hi], got 'x'" and returns false.
 */
bool inf_cli_int(const struct inf_cli *cli, const struct inf_cli_args *a, const char *name,
                 long long lo, long long hi, long long *out);

/* Print "inferno <command>: <message>" to stderr (errors for the user). */
void inf_cli_errorf(const struct inf_cli *cli, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Command handlers, one file per command (cmd_<name>.c), and their option tables. */
int inf_cmd_config(struct inf_cli *cli, struct inf_cli_args *args);
int inf_cmd_template(struct inf_cli *cli, struct inf_cli_args *args);
extern const struct inf_cli_opt inf_cmd_template_opts[];
int inf_cmd_run(struct inf_cli *cli, struct inf_cli_args *args);
extern const struct inf_cli_opt inf_cmd_run_opts[];
int inf_cmd_chat(struct inf_cli *cli, struct inf_cli_args *args);
extern const struct inf_cli_opt inf_cmd_chat_opts[];
int inf_cmd_bench(struct inf_cli *cli, struct inf_cli_args *args);
extern const struct inf_cli_opt inf_cmd_bench_opts[];
int inf_cmd_perplexity(struct inf_cli *cli, struct inf_cli_args *args);
int inf_cmd_embed(struct inf_cli *cli, struct inf_cli_args *args);
int inf_cmd_tokenize(struct inf_cli *cli, struct inf_cli_args *args);
int inf_cmd_detokenize(struct inf_cli *cli, struct inf_cli_args *args);
extern const struct inf_cli_opt inf_cmd_tokenize_opts[];
extern const struct inf_cli_opt inf_cmd_detokenize_opts[];
int inf_cmd_models(struct inf_cli *cli, struct inf_cli_args *args);
extern const struct inf_cli_opt inf_cmd_models_opts[];
int inf_cmd_validate(struct inf_cli *cli, struct inf_cli_args *args);
extern const struct inf_cli_opt inf_cmd_validate_opts[];
extern const struct inf_cli_opt inf_cmd_perplexity_opts[];
extern const struct inf_cli_opt inf_cmd_embed_opts[];
int inf_cmd_serve(struct inf_cli *cli, struct inf_cli_args *args);
extern const struct inf_cli_opt inf_cmd_serve_opts[];
int inf_cmd_quantize(struct inf_cli *cli, struct inf_cli_args *args);
int inf_cmd_convert(struct inf_cli *cli, struct inf_cli_args *args);
/* `convert IN OUT --quantize TYPE`: the quantize command under convert's name (cmd_quantize.c) */
int inf_cli_quantize_as_convert(struct inf_cli *cli, struct inf_cli_args *args);
extern const struct inf_cli_opt inf_cmd_quantize_opts[];
extern const struct inf_cli_opt inf_cmd_convert_opts[];
int inf_cmd_grammar(struct inf_cli *cli, struct inf_cli_args *args);
extern const struct inf_cli_opt inf_cmd_grammar_opts[];
int inf_cmd_cache(struct inf_cli *cli, struct inf_cli_args *args);
extern const struct inf_cli_opt inf_cmd_cache_opts[];
int inf_cmd_audit(struct inf_cli *cli, struct inf_cli_args *args);
int inf_cmd_pull(struct inf_cli *cli, struct inf_cli_args *args);
extern const struct inf_cli_opt inf_cmd_pull_opts[];
extern const struct inf_cli_opt inf_cmd_audit_opts[];
int inf_cmd_tui(struct inf_cli *cli, struct inf_cli_args *args);
extern const struct inf_cli_opt inf_cmd_tui_opts[];

/* cmd_cache.c: the response cache's parameters from cache.* */
struct inf_cache_params;
void inf_cli_cache_params(const struct inf_cli *cli, struct inf_cache_params *p);
/* cmd_audit.c: open the audit log as audit.* says (key from audit.key_file or
   INFERNO_AUDIT_KEY); prints the error and returns INF_EXIT_FAIL when it cannot. */
struct inf_audit;
int inf_cli_audit_open(struct inf_cli *cli, struct inf_audit **out);
/* cmd_queue.c: open the jobs store as queue.url / queue.path / files.dir say, job events to
   on_event (NULL: none); prints the error and returns INF_EXIT_FAIL when it cannot. */
struct inf_jobs;
int inf_cli_jobs_open(struct inf_cli *cli, void (*on_event)(void *, const char *, size_t),
                      void *event_ctx, struct inf_jobs **out);
int inf_cmd_batch(struct inf_cli *cli, struct inf_cli_args *args);
extern const struct inf_cli_opt inf_cmd_batch_opts[];
int inf_cmd_queue(struct inf_cli *cli, struct inf_cli_args *args);
extern const struct inf_cli_opt inf_cmd_queue_opts[];
/* cmd_batch.c: load -m models (or server.models) and make a socket-less server over them */
struct srv_models;
struct http_server;
int inf_cli_offline_server(struct inf_cli *cli, const struct inf_cli_args *args,
                           struct srv_models **m, struct http_server **s);
/* cmd_audit.c: record a state-changing command (audit.enabled); returns rc, or INF_EXIT_FAIL
   when the record could not be written and audit.required. */
int inf_cli_audit_command(struct inf_cli *cli, const char *command, int argc, char **argv, int rc);

/* cmd_pull.c: the hub parameters from hub.* and models_dir (no token, no callback), and the
   Hugging Face endpoint (hub.endpoint when set anywhere, else HF_ENDPOINT). */
struct inf_hub_params;
void inf_cli_hub_params(const struct inf_cli *cli, struct inf_hub_params *p);
const char *inf_cli_hf_endpoint(const struct inf_cli *cli);
/* cmd_pull.c: the Hugging Face token (malloc'd, NULL when none): pull's --token (args NULL:
   skipped), HF_TOKEN, HUGGING_FACE_HUB_TOKEN, huggingface-cli's token file. */
char *inf_cli_hf_token(const struct inf_cli_args *args);

#endif
