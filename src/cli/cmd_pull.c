/*
 * cmd_pull.c - `inferno pull REF`: download a model from the Hugging Face Hub or the Ollama
 * registry into models_dir (src/hub/) and register its name in the model database (src/store/),
 * so that `run -m NAME`, `serve -m NAME` and the API's "model" find it. A progress bar on a
 * terminal (bytes, rate, ETA), one JSON object a line with --json (the shapes of Ollama's
 * /api/pull, which `serve` streams from the same events).
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "inferno/hub.h"
#include "inferno/log.h"
#include "inferno/models.h"

const struct inf_cli_opt inf_cmd_pull_opts[] = {
    {"json", 0, INF_OPT_FLAG, NULL, "progress and result as JSON lines on stdout", NULL},
    {"token", 0, INF_OPT_VALUE, "TOKEN", "Hugging Face token (default: HF_TOKEN)", NULL},
    {"revision", 0, INF_OPT_VALUE, "REV", "Hugging Face branch, tag or commit (default main)",
     NULL},
    {"endpoint", 0, INF_OPT_VALUE, "URL", "Hugging Face endpoint or mirror", "hub.endpoint"},
    {"quiet", 'q', INF_OPT_FLAG, NULL, "no progress output", NULL},
    {NULL, 0, 0, NULL, NULL, NULL},
};

struct progress {
    bool json, tty, quiet;
    int last_len;
};

static void human(double b, char *out, size_t size)
{
    if (b >= 1024.0 * 1024 * 1024)
        snprintf(out, size, "%.2f GiB", b / (1024.0 * 1024 * 1024));
    else if (b >= 1024.0 * 1024)
        snprintf(out, size, "%.1f MiB", b / (1024.0 * 1024));
    else
        snprintf(out, size, "%.1f KiB", b / 1024.0);
}

static void print_json(json_t *o)
{
    char *s = json_dumps(o, JSON_COMPACT);
    if (s) {
        printf("%s\n", s);
        fflush(stdout);
    }
    free(s);
    json_decref(o);
}

static bool on_event(const struct inf_hub_event *ev, void *user)
{
    struct progress *pr = user;
    if (pr->json) {
        char *line = inf_hub_event_json(ev);
        if (line) {
            printf("%s\n", line);
            fflush(stdout);
        }
        free(line);
        return true;
    }
    if (pr->quiet)
        return true;
    char a[32], b[32], r[32];
    switch (ev->kind) {
    case INF_HUB_EV_STATUS:
        fprintf(stderr, "%s\n", ev->msg);
        break;
    case INF_HUB_EV_FILE:
        human((double)ev->total, b, sizeof(b));
        if (ev->done) {
            human((double)ev->done, a, sizeof(a));
            fprintf(stderr, "[%d/%d] %s (%s): resuming at %s\n", ev->index, ev->count, ev->file, b,
                    a);
        } else {
            fprintf(stderr, "[%d/%d] %s (%s)\n", ev->index, ev->count, ev->file, b);
        }
        break;
    case INF_HUB_EV_PROGRESS: {
        if (!pr->tty)
            break;
        double frac = ev->total ? (double)ev->done / (double)ev->total : 1.0;
        int width = 30, fill = (int)(frac * width);
        char bar[64];
        for (int i = 0; i < width; i++)
            bar[i] = i < fill ? '#' : '.';
        bar[width] = '\0';
        human((double)ev->done, a, sizeof(a));
        human((double)ev->total, b, sizeof(b));
        human(ev->rate, r, sizeof(r));
        char eta[32] = "--:--";
        if (ev->rate > 0 && ev->total >= ev->done) {
            long s = (long)((double)(ev->total - ev->done) / ev->rate);
            if (s >= 3600)
                snprintf(eta, sizeof(eta), "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
            else
                snprintf(eta, sizeof(eta), "%02ld:%02ld", s / 60, s % 60);
        }
        int n = fprintf(stderr, "\r  [%s] %5.1f%%  %s / %s  %s/s  ETA %s", bar, frac * 100, a, b, r,
                        eta);
        if (n < pr->last_len)
            fprintf(stderr, "%*s", pr->last_len - n, "");
        pr->last_len = n;
        break;
    }
    case INF_HUB_EV_VERIFY:
        if (pr->tty && pr->last_len) {
            fprintf(stderr, "\n");
            pr->last_len = 0;
        }
        fprintf(stderr, "  verifying %s\n", ev->digest);
        break;
    case INF_HUB_EV_FILE_DONE:
        break;
    case INF_HUB_EV_RETRY:
        if (pr->tty && pr->last_len) {
            fprintf(stderr, "\n");
            pr->last_len = 0;
        }
        fprintf(stderr, "  retrying (attempt %d): %s\n", ev->attempt + 1, ev->msg);
        break;
    }
    return true;
}

/* The token: --token, HF_TOKEN, HUGGING_FACE_HUB_TOKEN, then the file `huggingface-cli login`
   writes ($HF_TOKEN_PATH, $HF_HOME/token, ~/.cache/huggingface/token). Never printed. */
char *inf_cli_hf_token(const struct inf_cli_args *args)
{
    const char *t = args ? inf_cli_value(args, "token") : NULL;
    if (!t || !*t)
        t = getenv("HF_TOKEN");
    if (!t || !*t)
        t = getenv("HUGGING_FACE_HUB_TOKEN");
    if (t && *t)
        return strdup(t);
    char path[4096];
    const char *tp = getenv("HF_TOKEN_PATH"), *home = getenv("HF_HOME");
    if (tp && *tp)
        snprintf(path, sizeof(path), "%s", tp);
    else if (home && *home)
        snprintf(path, sizeof(path), "%s/token", home);
    else if (getenv("HOME"))
        snprintf(path, sizeof(path), "%s/.cache/huggingface/token", getenv("HOME"));
    else
        return NULL;
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    char buf[512] = "";
    char *line = fgets(buf, sizeof(buf), f);
    fclose(f);
    if (!line)
        return NULL;
    buf[strcspn(buf, "\r\n")] = '\0';
    return buf[0] ? strdup(buf) : NULL;
}

/* The Hugging Face endpoint: hub.endpoint when set anywhere, else HF_ENDPOINT, else the
   default. */
const char *inf_cli_hf_endpoint(const struct inf_cli *cli)
{
    const char *ep = inf_config_get_str(cli->config, "hub.endpoint");
    const char *env = getenv("HF_ENDPOINT");
    if (inf_config_origin_kind(cli->config, "hub.endpoint") == INF_ORIGIN_DEFAULT && env && *env)
        return env;
    return ep;
}

void inf_cli_hub_params(const struct inf_cli *cli, struct inf_hub_params *p)
{
    inf_hub_params_init(p);
    p->models_dir = inf_config_get_str(cli->config, "models_dir");
    p->hf_endpoint = inf_cli_hf_endpoint(cli);
    p->ollama_endpoint = inf_config_get_str(cli->config, "hub.ollama_endpoint");
    p->max_retries = (int)inf_config_get_int(cli->config, "hub.retries");
    p->stall_seconds = (int)inf_config_get_int(cli->config, "hub.stall_seconds");
    const char *b = getenv("INFERNO_HUB_BACKOFF"); /* tests: retries without the waits */
    if (b && *b)
        p->backoff_seconds = strtod(b, NULL);
}

int inf_cmd_pull(struct inf_cli *cli, struct inf_cli_args *args)
{
    struct inf_hub_params p;
    struct inf_hub_result res;
    struct inf_error err = {0};
    struct progress pr = {.json = inf_cli_has(args, "json"),
                          .quiet = inf_cli_has(args, "quiet"),
                          .tty = isatty(2) != 0};
    const char *ref = args->positional[0];

    struct inf_hub_ref parsed;
    if (inf_hub_ref_parse(ref, &parsed, &err) != INF_OK) {
        inf_cli_errorf(cli, "%s", inf_error_message(&err));
        return INF_EXIT_USAGE;
    }
    inf_cli_hub_params(cli, &p);
    char *token = inf_cli_hf_token(args);
    p.token = token;
    p.revision = inf_cli_value(args, "revision");
    p.progress = on_event;
    p.user = &pr;
    inf_status st = inf_hub_pull(ref, &p, &res, &err);
    if (token) {
        memset(token, 0, strlen(token));
        free(token);
    }
    if (pr.tty && pr.last_len)
        fprintf(stderr, "\n");
    if (st != INF_OK) {
        if (pr.json)
            print_json(json_pack("{s:s,s:s}", "status", "error", "error", inf_error_message(&err)));
        inf_cli_errorf(cli, "%s", inf_error_message(&err));
        return INF_EXIT_FAIL;
    }
    const char *db = inf_config_get_str(cli->config, "cache.models_db");
    struct inf_model_reg reg = {0};
    snprintf(reg.name, sizeof(reg.name), "%s", res.name);
    snprintf(reg.path, sizeof(reg.path), "%s", res.path);
    snprintf(reg.source, sizeof(reg.source), "%s", res.source);
    snprintf(reg.digest, sizeof(reg.digest), "%s", res.digest);
    bool registered = inf_models_register(db, &reg, &err) == INF_OK;
    if (!registered)
        INF_LOG_WARN("hub", "'%s' is in place but not registered as '%s': %s; use its path",
                     res.path, res.name, inf_error_message(&err));
    if (pr.json) {
        print_json(json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:I,s:I,s:i,s:b}", "status", "success",
                             "name", res.name, "path", res.path, "source", res.source, "digest",
                             res.digest, "quantization", res.quant, "size", (json_int_t)res.size,
                             "downloaded", (json_int_t)res.downloaded, "files", res.n_files,
                             "registered", registered));
    } else {
        char sz[32];
        human((double)res.size, sz, sizeof(sz));
        printf("%s\t%s\t%s\n", res.name, sz, res.path);
        if (!pr.quiet)
            fprintf(stderr, "pulled %s (%s%s); run it with: inferno run -m %s\n", res.name, sz,
                    res.downloaded ? "" : ", already up to date", res.name);
    }
    return INF_EXIT_OK;
}
