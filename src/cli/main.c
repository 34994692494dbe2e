/*
 * main.c - the `inferno` executable: the command table, generic option parsing, the
 * configuration cascade, and dispatch. This is the only file that may call exit().
 *
 * src/cli/ owns the command line: this table, option helpers (cli.c), model and sampler set-up
 * from the configuration (cli_engine.c), and one cmd_<name>.c per command.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "build_info.h"
#include "cli/cli.h"
#include "core/text.h"
#include "inferno/config.h"
#include "inferno/cpu.h"
#include "inferno/kernels.h"
#include "inferno/log.h"

/* Options every command accepts (before or after the command name). */
static const struct inf_cli_opt global_opts[] = {
    {"help", 'h', INF_OPT_FLAG, NULL, "show help and exit", NULL},
    {"config", 0, INF_OPT_VALUE, "FILE", "read this configuration file above the others", NULL},
    {"models-dir", 0, INF_OPT_VALUE, "DIR", "directory scanned for models", "models_dir"},
    {"log-level", 0, INF_OPT_VALUE, "LEVEL", "trace, debug, info, warn, error or off", "log.level"},
    {"log-format", 0, INF_OPT_VALUE, "FMT", "pretty, compact, json or auto", "log.format"},
    {"set", 0, INF_OPT_LIST, "KEY=VALUE", "override any configuration key (repeatable)", NULL},
    {NULL, 0, 0, NULL, NULL, NULL},
};

static const struct inf_cli_opt config_opts[] = {
    {"origin", 0, INF_OPT_FLAG, NULL, "show: print where each value came from", NULL},
    {"json", 0, INF_OPT_FLAG, NULL, "show/get/path: print JSON", NULL},
    {"local", 0, INF_OPT_FLAG, NULL, "init: write ./.inferno.toml instead of the user file", NULL},
    {"path", 0, INF_OPT_VALUE, "FILE", "init: write to FILE", NULL},
    {NULL, 0, 0, NULL, NULL, NULL},
};

/* The command table. A NULL handler means the command is planned but not built yet. */
static const struct inf_cli_command commands[] = {
    {"run", inf_cmd_run, inf_cmd_run_opts, "-m MODEL (-p PROMPT | -f FILE | stdin) [options]",
     "generate text from a prompt",
     "Streams the generated text to stdout (statistics to stderr). Ctrl-C stops generation\n"
     "and still prints the statistics.\n",
     0, 0},
    {"chat", inf_cmd_chat, inf_cmd_chat_opts, "-m MODEL [options]",
     "interactive chat in the terminal", NULL, 0, 0},
    {"serve", inf_cmd_serve, inf_cmd_serve_opts,
     "[-m MODEL]... [--host ADDR] [--port N] [--parallel N] [--ctx N] [--api-key KEY]...",
     "OpenAI-compatible HTTP server",
     "Serves /v1/chat/completions, /v1/completions, /v1/embeddings, /v1/models, /health,\n"
     "/metrics, /tokenize, /detokenize and /apply-template. Binds to 127.0.0.1 unless --host\n"
     "says otherwise. When ready it prints 'listening on http://HOST:PORT' on stdout (--port 0\n"
     "picks a free port). API keys: server.api_keys, INFERNO_API_KEYS (comma separated),\n"
     "server.api_key_file and --api-key; /health never needs one. SIGINT/SIGTERM stop\n"
     "accepting, let running requests finish for server.drain_seconds, then cancel them.\n",
     0, 0},
    {"pull", inf_cmd_pull, inf_cmd_pull_opts,
     "hf.co/OWNER/REPO[:QUANT] | hf.co/OWNER/REPO/FILE.gguf | ollama.com/NAME[:TAG] [--json]",
     "download a model from Hugging Face or the Ollama registry",
     "Downloads into models_dir and registers the model's name (OWNER/REPO:QUANT, NAME:TAG),\n"
     "usable wherever a model path is. Resumes an interrupted download (FILE.partial), checks\n"
     "the hub's SHA-256 before putting the file in place, retries 5xx/timeouts (hub.retries).\n"
     "  hf.co/OWNER/REPO[@REV][:QUANT]   the GGUF of that quantization (default Q4_K_M, or the\n"
     "                                   only one); the choices are listed when ambiguous\n"
     "  hf.co/OWNER/REPO[@REV]/FILE.gguf one file (all shards of a sharded one)\n"
     "  ollama.com/[NS/]NAME[:TAG]       an Ollama model (NAME[:TAG] alone: the library)\n"
     "Token: --token, HF_TOKEN, or huggingface-cli's token file. Endpoint: hub.endpoint or\n"
     "HF_ENDPOINT (mirrors); hub.ollama_endpoint. Proxies: http_proxy/https_proxy/no_proxy.\n"
     "See docs/models.md.\n",
     1, 1},
    {"models", inf_cmd_models, inf_cmd_models_opts,
     "list [--json] | info MODEL [--json] | rm NAME... | tag MODEL NAME",
     "list, inspect, remove and name models",
     "  list          models under models_dir and registered ones: name, size, quantization,\n"
     "                architecture, source, digest (metadata cached in cache.models_db)\n"
     "  info MODEL    architecture, tokenizer, tensor types, memory estimate\n"
     "  rm NAME...    forget a registered name; its files in models_dir are deleted when no\n"
     "                other name uses them (an unregistered model in models_dir: its file)\n"
     "  tag MODEL NAME  give a model (a name or a path) another name\n",
     0, -1},
    {"bench", inf_cmd_bench, inf_cmd_bench_opts, "-m MODEL [-p N] [-n N] [-d N] [-r N] [-t N]",
     "measure prompt and generation speed (as llama-bench)", NULL, 0, 0},
    {"validate", inf_cmd_validate, inf_cmd_validate_opts,
     "MODEL [--checksum sha256|blake2b] [--expect HEX] [--deep]",
     "check a model file (exit 0 valid, 1 invalid)",
     "Exit status: 0 valid, 1 invalid, 2 usage; with --deep, 4 when the file is valid but not\n"
     "runnable (no tensors, a tensor type the kernels lack, an unsupported architecture, not\n"
     "GGUF): 'valid but not runnable: PATH: why'.\n",
     1, 1},
    {"convert", inf_cmd_convert, inf_cmd_convert_opts,
     "HF_DIR -o OUT.gguf [--outtype TYPE] [options] | IN.gguf OUT.gguf --quantize TYPE",
     "convert a Hugging Face safetensors model to GGUF",
     "HF_DIR holds config.json, model.safetensors (or model.safetensors.index.json and its\n"
     "shards; F32, F16 or BF16), tokenizer.json and usually tokenizer_config.json. The GGUF is\n"
     "written as llama.cpp's convert_hf_to_gguf.py writes it (see docs/models.md).\n"
     "--outtype: f32, f16 (default), bf16, or a quantize type (q8_0, q4_k_m, ...).\n"
     "With --quantize TYPE, re-quantize a GGUF model instead (as 'inferno quantize').",
     0, -1},
    {"quantize", inf_cmd_quantize, inf_cmd_quantize_opts, "IN.gguf OUT.gguf --type TYPE [options]",
     "re-quantize a GGUF model",
     "Types follow llama-quantize: Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 Q6_K F16 BF16 F32, the mixes\n"
     "Q2_K Q3_K_S Q3_K_M Q3_K_L Q4_K_S Q4_K_M Q5_K_S Q5_K_M (Q3_K/Q4_K/Q5_K are the _M mixes);\n"
     "each tensor's type follows llama.cpp's recipe unless --pure. The output is written to a\n"
     "temporary file and renamed on success; Ctrl-C leaves nothing behind.\n",
     2, 2},
    {"tokenize", inf_cmd_tokenize, inf_cmd_tokenize_opts,
     "-m MODEL [--text T | --file F] [--ids] [--pieces] [--no-bos] [--parse-special]",
     "show how text is tokenized", NULL, 0, 0},
    {"detokenize", inf_cmd_detokenize, inf_cmd_detokenize_opts, "-m MODEL [IDS...]",
     "turn token ids back into text", NULL, 0, -1},
    {"perplexity", inf_cmd_perplexity, inf_cmd_perplexity_opts, "-m MODEL -f TEXT [-c N] [-b N]",
     "measure perplexity on a text (as llama.cpp's perplexity tool)", NULL, 0, 0},
    {"embed", inf_cmd_embed, inf_cmd_embed_opts,
     "-m MODEL -p TEXT [-f FILE] [--pooling none|mean|cls|last] [--normalize l2|none] [--json]",
     "print the embedding of texts (pooled and L2-normalized as the model says)", NULL, 0, 0},
    {"cache", inf_cmd_cache, inf_cmd_cache_opts,
     "stats [--json] | list [--model M] [--json] | clear [--model M] | prune | verify",
     "inspect and maintain the response cache",
     "  stats     entries, sizes, bounds of the store in cache.dir\n"
     "  list      entries, most recently used first\n"
     "  clear     remove every entry (of model M)\n"
     "  prune     apply cache.ttl and cache.max_bytes now\n"
     "  verify    read every entry in full; exit 1 when an indexed entry is bad (bad ones are\n"
     "            dropped; files left by interrupted writes are removed)\n"
     "The server fills the cache with `inferno serve --cache` (cache.enabled).\n",
     1, 1},
    {"audit", inf_cmd_audit, inf_cmd_audit_opts,
     "verify | query [filters] [--json] | export [--format jsonl|csv] [filters] | tail [-f]",
     "verify and read the tamper-evident audit log",
     "  verify    check the hash chain, every record's hash, decryption (with the key) and the\n"
     "            sealed HEAD; exit 1 naming the first bad record (file:line)\n"
     "  query     records matching --since/--until/--key-id/--route/--status\n"
     "  export    the same as JSON lines or CSV\n"
     "  tail      the last records (-n N); -f waits for new ones\n"
     "Encrypted logs need the key: --key-file F (repeatable), audit.key_file or\n"
     "INFERNO_AUDIT_KEY (64 hex digits).\n",
     1, 1},
    {"onnx", inf_cmd_onnx, inf_cmd_onnx_opts,
     "info -m M [--json] | run -m M --input [NAME=]FILE... --output-dir DIR | bench -m M "
     "[--threads N] [--reps R] | test DIR...",
     "load, run, benchmark and test ONNX models",
     "  info      inputs and outputs (names, types, shapes), opset, op histogram, parameters\n"
     "  run       run on TensorProto (.pb) or NumPy (.npy) inputs; without NAME= the files fill\n"
     "            the inputs that are not initializers, in order; writes DIR/output_<i>.pb\n"
     "            (--format npy: .npy)\n"
     "  bench     one warm-up run, then --reps timed runs (random inputs of the declared\n"
     "            shapes unless --input); prints JSON with median_ms and min_ms\n"
     "  test      run ONNX test directories (model.onnx + test_data_set_*); a DIR without\n"
     "            model.onnx runs every test directory under it. Exit 1 when any fails.\n",
     1, -1},
    {"batch", inf_cmd_batch, inf_cmd_batch_opts, "run IN.jsonl -o OUT.jsonl -m MODEL",
     "run a batch file (OpenAI's batch format) offline",
     "  run       every request of IN through the model, one output line each into OUT\n"
     "            (resumable: run again with the same arguments to continue; SIGINT stops\n"
     "            after the running requests, exit 130). See docs/jobs.md.\n",
     1, 2},
    {"queue", inf_cmd_queue, inf_cmd_queue_opts,
     "add|list|show|cancel|retry|purge|worker|schedule ...",
     "manage the durable job queue and its schedules",
     "  add       --batch FILE | --request LINE | --requests FILE [--priority N]\n"
     "            [--max-attempts N] [--not-before T|+S] [-m MODEL]\n"
     "  list      [--state S] [--json];  show ID;  cancel ID;  retry ID;  purge [--older-than S]\n"
     "  worker    -m MODEL [--once]: run queued jobs (serve runs one in-process)\n"
     "  schedule  add \"EXPR\" --batch FILE [--tz ZONE] [--skip-missed] | list | rm ID |\n"
     "            pause ID | resume ID   (EXPR: 5-field cron, @hourly, @daily, @weekly)\n"
     "The store is queue.url (sqlite:PATH or postgresql://...; default sqlite:<queue.path>),\n"
     "files in files.dir (in the database with postgresql).\n",
     1, 4},
    {"config", inf_cmd_config, config_opts, "show [--origin] | get KEY | path | init",
     "show and initialise the configuration",
     "  show      the effective configuration as TOML (--origin: where each value came from)\n"
     "  get KEY   one value (strings unquoted; lists one item per line)\n"
     "  path      the configuration files consulted, lowest precedence first\n"
     "  init      write a commented default configuration file (never overwrites)\n"
     "\n"
     "Precedence, highest first: flags > INFERNO_* environment > --config/INFERNO_CONFIG >\n"
     "./.inferno.toml > ~/.inferno.toml > $XDG_CONFIG_HOME/inferno/config.toml > defaults.\n",
     1, 2},
    {"template", inf_cmd_template, inf_cmd_template_opts,
     "render (--model M | --template FILE) --messages FILE [options]",
     "render a chat template for a conversation",
     "  render    print the prompt exactly (no newline added). --messages: a JSON array or\n"
     "            {\"messages\": [...]}; --var K=V (V is JSON when it parses);\n"
     "            --now SECONDS fixes strftime_now's clock.\n",
     1, 1},
    {"grammar", inf_cmd_grammar, inf_cmd_grammar_opts,
     "bench -m MODEL --cases FILE | compile (--schema F | --gbnf F | --regex RE)",
     "compile grammars and measure constrained decoding",
     "  bench     JSON lines {\"id\", \"schema\"|\"grammar\"|\"regex\", \"texts\"} in; one JSON\n"
     "            line per case out (compile time, acceptance, time of every mask); summary\n"
     "            on stderr. Each case runs in its own process under --timeout-ms.\n"
     "  compile   print the GBNF that a JSON Schema or regex compiles to\n",
     1, 1},
    {"tui", inf_cmd_tui, inf_cmd_tui_opts, "[-m MODEL] [--url URL] [--screen NAME]",
     "terminal user interface: models, chat, a live server's dashboard, its batches",
     "  Screens (1-4, F1-F4, Alt-1..4): Models (details, validate, benchmark, delete, open in\n"
     "  chat), Chat (streaming replies, Esc stops; settings with Ctrl-P; Ctrl-S/Ctrl-O save\n"
     "  and load conversations as `chat`'s /save does), Server (/health and /metrics of --url\n"
     "  once a second) and Jobs (its batches; c cancels). ? shows every key; q quits.\n"
     "  NO_COLOR=1 turns colours off. Needs a terminal of at least 40x10.\n",
     0, 0},
};

#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static void print_opts(FILE *f, const struct inf_cli_opt *opts)
{
    for (size_t i = 0; opts && opts[i].name; i++) {
        char left[64];
        if (opts[i].short_name)
            snprintf(left, sizeof(left), "-%c, --%s%s%s", opts[i].short_name, opts[i].name,
                     opts[i].metavar ? " " : "", opts[i].metavar ? opts[i].metavar : "");
        else
            snprintf(left, sizeof(left), "    --%s%s%s", opts[i].name, opts[i].metavar ? " " : "",
                     opts[i].metavar ? opts[i].metavar : "");
        fprintf(f, "  %-28s %s\n", left, opts[i].help);
    }
}

static void print_main_help(FILE *f)
{
    fprintf(f, "inferno %s - offline model runner\n\n", INFERNO_VERSION);
    fprintf(f, "Usage: inferno [global options] <command> [options]\n\nCommands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(f, "  %-12s %s%s\n", commands[i].name, commands[i].summary,
                commands[i].handler ? "" : " (not available yet)");
    fprintf(f, "  %-12s %s\n", "help", "show help for a command");
    fprintf(f, "\nGlobal options:\n");
    print_opts(f, global_opts);
    fprintf(f, "  %-28s %s\n", "-V, --version", "show version, build and CPU features");
    fprintf(f, "\nRun 'inferno help <command>' for the options of a command.\n");
}

static void print_command_help(FILE *f, const struct inf_cli_command *c)
{
    fprintf(f, "Usage: inferno %s %s\n\n%s%s\n", c->name, c->usage, c->summary,
            c->handler ? "" : " (not available yet)");
    if (c->description)
        fprintf(f, "\n%s", c->description);
    if (c->opts && c->opts[0].name) {
        fprintf(f, "\nOptions:\n");
        print_opts(f, c->opts);
    }
    fprintf(f, "\nGlobal options:\n");
    print_opts(f, global_opts);
}

static void print_version(void)
{
    char feats[256];
    inf_cpu_features_string(inf_cpu_features(), feats, sizeof(feats));
    printf("inferno %s\n", INFERNO_VERSION);
    printf("commit:       %s\n", INFERNO_GIT_COMMIT);
    printf("build type:   %s\n", INFERNO_BUILD_TYPE);
    printf("compiler:     %s\n", INFERNO_COMPILER);
    printf("cpu features: %s\n", feats);
    printf("cpu model:    %s\n", inf_cpu_model());
    printf("cores:        %d physical\n", inf_cpu_physical_cores());
    char kernels[1024];
    inf_kernels_describe(kernels, sizeof(kernels));
    printf("kernels:      %s\n", kernels);
    printf("chosen by:    %s\n", inf_kernels_choice_origin());
}

/* The closest of names[0..n) to s, or NULL when nothing is close. */
static const char *nearest(const char *s, const char *const *names, size_t n)
{
    const char *best = NULL;
    size_t best_d = (size_t)-1;
    size_t limit = strlen(s) <= 4 ? 1 : 2;
    for (size_t i = 0; i < n; i++) {
        size_t d = inf__edit_distance(s, names[i], false);
        if (d < best_d) {
            best_d = d;
            best = names[i];
        }
    }
    return best_d <= limit ? best : NULL;
}

static const struct inf_cli_command *find_command(const char *name)
{
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

static int unknown_command(const char *name)
{
    const char *names[N_COMMANDS + 1];
    for (size_t i = 0; i < N_COMMANDS; i++)
        names[i] = commands[i].name;
    names[N_COMMANDS] = "help";
    const char *near = nearest(name, names, N_COMMANDS + 1);
    if (near)
        fprintf(stderr, "inferno: unknown command '%s' (did you mean '%s'?)\n", name, near);
    else
        fprintf(stderr, "inferno: unknown command '%s'; run 'inferno --help' for the list\n", name);
    return INF_EXIT_USAGE;
}

static int unknown_option(const char *cmd, const struct inf_cli_opt *opts, size_t n_opts,
                          const char *arg)
{
    const char *names[INF_CLI_MAX_OPTS] = {0};
    const char *name = arg;
    char buf[128];
    while (*name == '-')
        name++;
    snprintf(buf, sizeof(buf), "%s", name);
    char *eq = strchr(buf, '=');
    if (eq)
        *eq = '\0';
    for (size_t i = 0; i < n_opts; i++)
        names[i] = opts[i].name;
    const char *near = arg[1] == '-' ? nearest(buf, names, n_opts) : NULL;
    fprintf(stderr, "inferno%s%s: unknown option '%.*s'", cmd ? " " : "", cmd ? cmd : "",
            eq ? (int)(strchr(arg, '=') - arg) : (int)strlen(arg), arg);
    if (near)
        fprintf(stderr, " (did you mean '--%s'?)", near);
    fprintf(stderr, "\n");
    return INF_EXIT_USAGE;
}

/*
 * Parse argv[0..argc) against opts. Positionals are collected; "--" ends options.
 * Returns 0 or an exit code after printing the problem.
 */
static int parse_args(const char *cmd, const struct inf_cli_opt *opts, size_t n_opts, int argc,
                      char **argv, struct inf_cli_args *a)
{
    bool only_positional = false;
    memset(a, 0, sizeof(*a));
    a->opts = opts;
    a->n_opts = n_opts;
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        if (only_positional || arg[0] != '-' || arg[1] == '\0') {
            if (a->n_positional >= INF_CLI_MAX_POSITIONAL) {
                fprintf(stderr, "inferno: too many arguments (at most %d)\n",
                        INF_CLI_MAX_POSITIONAL);
                return INF_EXIT_USAGE;
            }
            a->positional[a->n_positional++] = arg;
            continue;
        }
        if (strcmp(arg, "--") == 0) {
            only_positional = true;
            continue;
        }
        int found = -1;
        const char *inline_val = NULL;
        if (arg[1] == '-') {
            const char *name = arg + 2;
            const char *eq = strchr(name, '=');
            size_t len = eq ? (size_t)(eq - name) : strlen(name);
            for (size_t k = 0; k < n_opts && found < 0; k++)
                if (strlen(opts[k].name) == len && strncmp(opts[k].name, name, len) == 0)
                    found = (int)k;
            if (eq)
                inline_val = eq + 1;
        } else {
            for (size_t k = 0; k < n_opts && found < 0; k++)
                if (opts[k].short_name && opts[k].short_name == arg[1])
                    found = (int)k;
            if (found >= 0 && arg[2])
                inline_val = arg + 2;
        }
        if (found < 0)
            return unknown_option(cmd, opts, n_opts, arg);
        const struct inf_cli_opt *o = &opts[found];
        if (o->kind == INF_OPT_FLAG) {
            if (inline_val) {
                fprintf(stderr, "inferno: option '--%s' takes no value\n", o->name);
                return INF_EXIT_USAGE;
            }
            a->count[found]++;
            continue;
        }
        const char *val = inline_val;
        if (!val) {
            if (i + 1 >= argc) {
                fprintf(stderr, "inferno: option '--%s' needs a value (%s)\n", o->name,
                        o->metavar ? o->metavar : "VALUE");
                return INF_EXIT_USAGE;
            }
            val = argv[++i];
        }
        a->count[found]++;
        a->value[found] = val;
        if (o->kind == INF_OPT_LIST) {
            const char **l =
                realloc((void *)a->list[found], (size_t)(a->count[found] + 1) * sizeof(*l));
            if (!l) {
                fprintf(stderr, "inferno: out of memory\n");
                return INF_EXIT_FAIL;
            }
            l[a->count[found] - 1] = val;
            l[a->count[found]] = NULL;
            a->list[found] = l;
        }
    }
    return 0;
}

static void free_args(struct inf_cli_args *a)
{
    for (size_t i = 0; i < a->n_opts; i++)
        free((void *)a->list[i]);
}

/* Apply log settings from the configuration (after the whole cascade). */
static void apply_log_config(const struct inf_config *cfg)
{
    enum inf_log_level lvl;
    enum inf_log_format fmt;
    if (inf_log_level_parse(inf_config_get_str(cfg, "log.level"), &lvl) == INF_OK)
        inf_log_set_level(lvl);
    const char *f = inf_config_get_str(cfg, "log.format");
    if (strcmp(f, "auto") != 0 && inf_log_format_parse(f, &fmt) == INF_OK)
        inf_log_set_format(fmt);
}

/* Before the files are read, honour the log settings of flags and env for early warnings. */
static void early_log_setup(const struct inf_cli_args *a)
{
    enum inf_log_level lvl;
    enum inf_log_format fmt;
    const char *l = inf_cli_value(a, "log-level");
    const char *f = inf_cli_value(a, "log-format");
    if (!l)
        l = getenv("INFERNO_LOG_LEVEL");
    if (!f)
        f = getenv("INFERNO_LOG_FORMAT");
    if (l && inf_log_level_parse(l, &lvl) == INF_OK)
        inf_log_set_level(lvl);
    if (f && inf_log_format_parse(f, &fmt) == INF_OK)
        inf_log_set_format(fmt);
}

/* Commands that change state on disk: each run is recorded in the audit log (audit.enabled). */
static bool state_changing(const char *name, const struct inf_cli_args *a)
{
    const char *sub = a->n_positional ? a->positional[0] : "";
    if (strcmp(name, "models") == 0)
        return strcmp(sub, "rm") == 0 || strcmp(sub, "tag") == 0;
    if (strcmp(name, "quantize") == 0 || strcmp(name, "convert") == 0 ||
        strcmp(name, "pull") == 0 || strcmp(name, "batch") == 0)
        return true;
    if (strcmp(name, "queue") == 0) /* all but the ones that only read */
        return strcmp(sub, "list") != 0 && strcmp(sub, "show") != 0 &&
               !(strcmp(sub, "schedule") == 0 && a->n_positional > 1 &&
                 strcmp(a->positional[1], "list") == 0);
    if (strcmp(name, "config") == 0)
        return strcmp(sub, "init") == 0;
    if (strcmp(name, "cache") == 0)
        return strcmp(sub, "clear") == 0 || strcmp(sub, "prune") == 0 || strcmp(sub, "verify") == 0;
    return false;
}

static int apply_flags(struct inf_config *cfg, const struct inf_cli_args *a)
{
    struct inf_error err = {0};
    for (size_t i = 0; i < a->n_opts; i++) {
        const struct inf_cli_opt *o = &a->opts[i];
        if (!a->count[i])
            continue;
        if (o->config_key) {
            char desc[96];
            snprintf(desc, sizeof(desc), "flag --%s", o->name);
            if (inf_config_set(cfg, o->config_key, a->value[i], INF_ORIGIN_FLAG, desc, &err)) {
                fprintf(stderr, "inferno: option '--%s': %s\n", o->name, inf_error_message(&err));
                return INF_EXIT_USAGE;
            }
        } else if (strcmp(o->name, "set") == 0) {
            for (int k = 0; k < a->count[i]; k++) {
                const char *kv = a->list[i][k];
                const char *eq = strchr(kv, '=');
                char key[128];
                if (!eq || eq == kv || (size_t)(eq - kv) >= sizeof(key)) {
                    fprintf(stderr, "inferno: option '--set' expects KEY=VALUE, got '%s'\n", kv);
                    return INF_EXIT_USAGE;
                }
                snprintf(key, sizeof(key), "%.*s", (int)(eq - kv), kv);
                if (inf_config_set(cfg, key, eq + 1, INF_ORIGIN_FLAG, "flag --set", &err)) {
                    fprintf(stderr, "inferno: option '--set': %s\n", inf_error_message(&err));
                    return INF_EXIT_USAGE;
                }
            }
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct inf_cli_opt opts[INF_CLI_MAX_OPTS];
    size_t n_opts = 0, n_global = 0;
    struct inf_cli_args args;
    struct inf_cli cli = {0};
    struct inf_error err = {0};
    int i = 1, rc;

    while (global_opts[n_global].name)
        n_global++;

    /* Global options before the command name. */
    for (; i < argc && argv[i][0] == '-' && argv[i][1]; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--version") == 0 || strcmp(a, "-V") == 0) {
            print_version();
            return INF_EXIT_OK;
        }
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            print_main_help(stdout);
            return INF_EXIT_OK;
        }
        bool known = false, takes_value = false;
        for (size_t k = 0; k < n_global && !known; k++) {
            size_t l = strlen(global_opts[k].name);
            if (strncmp(a + 2, global_opts[k].name, l) == 0 && a[1] == '-' &&
                (a[2 + l] == '\0' || a[2 + l] == '=')) {
                known = true;
                takes_value = global_opts[k].kind != INF_OPT_FLAG && a[2 + l] == '\0';
            }
        }
        if (!known)
            return unknown_option(NULL, global_opts, n_global, a);
        if (takes_value)
            i++;
    }
    if (i >= argc) {
        print_main_help(stderr);
        return INF_EXIT_USAGE;
    }
    int first_global = 1, n_before = i - 1;
    const char *name = argv[i];

    if (strcmp(name, "help") == 0) {
        if (i + 1 >= argc) {
            print_main_help(stdout);
            return INF_EXIT_OK;
        }
        const struct inf_cli_command *c = find_command(argv[i + 1]);
        if (!c)
            return unknown_command(argv[i + 1]);
        print_command_help(stdout, c);
        return INF_EXIT_OK;
    }
    const struct inf_cli_command *cmd = find_command(name);
    if (!cmd)
        return unknown_command(name);
    cli.command = cmd;

    if (!cmd->handler) {
        for (int k = i + 1; k < argc; k++)
            if (strcmp(argv[k], "--help") == 0 || strcmp(argv[k], "-h") == 0) {
                print_command_help(stdout, cmd);
                return INF_EXIT_OK;
            }
        fprintf(stderr, "inferno: '%s' is not available yet\n", cmd->name);
        return INF_EXIT_NOTIMPL;
    }

    /* The command's own options, then the global ones. */
    for (size_t k = 0; cmd->opts && cmd->opts[k].name; k++)
        opts[n_opts++] = cmd->opts[k];
    for (size_t k = 0; k < n_global && n_opts < INF_CLI_MAX_OPTS; k++)
        opts[n_opts++] = global_opts[k];

    /* Parse the global options given before the command together with the rest. */
    int n_rest = argc - i - 1;
    char **all = malloc((size_t)(n_before + n_rest + 1) * sizeof(char *));
    if (!all) {
        fprintf(stderr, "inferno: out of memory\n");
        return INF_EXIT_FAIL;
    }
    for (int k = 0; k < n_before; k++)
        all[k] = argv[first_global + k];
    for (int k = 0; k < n_rest; k++)
        all[n_before + k] = argv[i + 1 + k];
    all[n_before + n_rest] = NULL;
    rc = parse_args(cmd->name, opts, n_opts, n_before + n_rest, all, &args);
    if (rc) {
        free(all);
        return rc;
    }
    if (inf_cli_has(&args, "help")) {
        print_command_help(stdout, cmd);
        rc = INF_EXIT_OK;
        goto out_args;
    }
    if (args.n_positional < cmd->min_positional ||
        (cmd->max_positional >= 0 && args.n_positional > cmd->max_positional)) {
        fprintf(stderr, "inferno %s: wrong number of arguments\nUsage: inferno %s %s\n", cmd->name,
                cmd->name, cmd->usage);
        rc = INF_EXIT_USAGE;
        goto out_args;
    }

    early_log_setup(&args);
    int n_warn = 0;
    if (inf_config_load(&cli.config, inf_cli_value(&args, "config"), &n_warn, &err)) {
        fprintf(stderr, "inferno: configuration error: %s\n", inf_error_message(&err));
        rc = INF_EXIT_FAIL;
        goto out_args;
    }
    rc = apply_flags(cli.config, &args);
    if (rc)
        goto out_config;
    apply_log_config(cli.config);

    rc = cmd->handler(&cli, &args);
    if (state_changing(cmd->name, &args) && rc != INF_EXIT_USAGE) {
        char what[64];
        snprintf(what, sizeof(what), "%s%s%s", cmd->name, args.n_positional ? " " : "",
                 args.n_positional ? args.positional[0] : "");
        rc = inf_cli_audit_command(&cli, what, n_before + n_rest, all, rc);
    }

out_config:
    inf_config_free(cli.config);
out_args:
    free_args(&args);
    free(all);
    return rc;
}
