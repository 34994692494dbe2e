/*
 * cmd_tui.c - `inferno tui`: options and configuration for the terminal UI (src/tui/), which
 * itself uses only the public API.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cli_engine.h"
#include "tui/tui.h"

const struct inf_cli_opt inf_cmd_tui_opts[] = {
    {"model", 'm', INF_OPT_VALUE, "MODEL", "open this model in Chat at start", NULL},
    {"screen", 0, INF_OPT_VALUE, "NAME", "first screen: models, chat, server or jobs", NULL},
    {"url", 0, INF_OPT_VALUE, "URL", "the `inferno serve` the Server and Jobs screens watch", NULL},
    {"api-key", 0, INF_OPT_VALUE, "KEY", "its bearer token (default: $INFERNO_API_KEY)", NULL},
    {"stats", 0, INF_OPT_VALUE, "FILE", "write frame and generation statistics (JSON) at exit",
     NULL},
    {"headless", 0, INF_OPT_VALUE, "PROMPT",
     "no interface: one chat reply to PROMPT on stdout, tok/s on stderr (measures the UI's cost)",
     NULL},
    {"n-predict", 'n', INF_OPT_VALUE, "N", "most tokens per reply (default 1024; 0: no limit)",
     NULL},
    INF_CLI_SAMPLER_OPTS,
    {"ctx", 'c', INF_OPT_VALUE, "N", "context size", "backend.context_size"},
    {"threads", 't', INF_OPT_VALUE, "N", "threads", "backend.threads"},
    {"kv-type", 0, INF_OPT_VALUE, "TYPE", "KV cache type", "backend.kv_type"},
    {NULL, 0, 0, NULL, NULL, NULL},
};

int inf_cmd_tui(struct inf_cli *cli, struct inf_cli_args *args)
{
    struct inf_tui_options o;
    memset(&o, 0, sizeof(o));
    int rc;
    if ((rc = inf_cli_sampler_params(cli, args, &o.sampler)))
        return rc;
    long long n = 1024;
    if (inf_cli_has(args, "n-predict") && !inf_cli_int(cli, args, "n-predict", 0, 1 << 30, &n))
        return INF_EXIT_USAGE;
    o.max_tokens = (int)n;
    const char *scr = inf_cli_value(args, "screen");
    if (scr && strcmp(scr, "models") != 0 && strcmp(scr, "chat") != 0 &&
        strcmp(scr, "server") != 0 && strcmp(scr, "jobs") != 0) {
        inf_cli_errorf(cli, "option '--screen' expects models, chat, server or jobs, got '%s'",
                       scr);
        return INF_EXIT_USAGE;
    }
    o.screen = scr;
    o.models_dir = inf_config_get_str(cli->config, "models_dir");
    o.cache_db = inf_config_get_str(cli->config, "cache.models_db");
    o.url = inf_cli_value(args, "url");
    o.api_key =
        inf_cli_has(args, "api-key") ? inf_cli_value(args, "api-key") : getenv("INFERNO_API_KEY");
    o.stats_path = inf_cli_value(args, "stats");
    char qurl[4200];
    const char *url = inf_config_get_str(cli->config, "queue.url");
    if (!url || !*url) {
        snprintf(qurl, sizeof(qurl), "sqlite:%s", inf_config_get_str(cli->config, "queue.path"));
        url = qurl;
    }
    o.queue_url = url;
    o.files_dir = inf_config_get_str(cli->config, "files.dir");
    o.model_params = inf_cli_model_params(cli);
    o.context_params = inf_cli_context_params(cli);
    char path[4096];
    if (inf_cli_has(args, "model")) {
        if (inf_models_resolve_cli(cli, inf_cli_value(args, "model"), path, sizeof(path)) != 0)
            return INF_EXIT_FAIL;
        o.model = path;
    }
    if (inf_cli_has(args, "headless")) {
        if (!o.model) {
            inf_cli_errorf(cli, "--headless needs --model");
            return INF_EXIT_USAGE;
        }
        return inf_tui_chat_headless(&o, inf_cli_value(args, "headless"));
    }
    return inf_tui_run(&o);
}
