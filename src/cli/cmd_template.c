/*
 * cmd_template.c - `inferno template render`: render a chat template for a conversation and
 * print the prompt exactly as the model would see it (no newline added).
 *
 *   inferno template render (--model M | --template FILE) --messages FILE.json
 *       [--tools FILE.json] [--add-generation-prompt] [--bos S] [--eos S] [--var k=v]...
 *       [--template-name NAME] [--now SECONDS]
 *
 * --messages holds a JSON array of messages, or an object with "messages" (and optionally
 * "tools"). --var values are JSON when they parse as JSON (true, 3, {"a": 1}), strings
 * otherwise.
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cli_engine.h"
#include "core/files.h"
#include "inferno/gguf.h"
#include "inferno/log.h"
#include "inferno/template.h"

const struct inf_cli_opt inf_cmd_template_opts[] = {
    {"model", 'm', INF_OPT_VALUE, "MODEL", "render the chat template stored in this GGUF model",
     NULL},
    {"template", 't', INF_OPT_VALUE, "FILE", "render this Jinja template file", NULL},
    {"template-name", 0, INF_OPT_VALUE, "NAME",
     "with --model: the named template tokenizer.chat_template.NAME (e.g. tool_use)", NULL},
    {"messages", 0, INF_OPT_VALUE, "FILE", "JSON array of messages (or {\"messages\": [...]})",
     NULL},
    {"tools", 0, INF_OPT_VALUE, "FILE", "JSON array of tools (absent: `tools` is undefined)", NULL},
    {"add-generation-prompt", 0, INF_OPT_FLAG, NULL, "end with the assistant turn's opening", NULL},
    {"bos", 0, INF_OPT_VALUE, "S", "the bos_token variable (default: empty)", NULL},
    {"eos", 0, INF_OPT_VALUE, "S", "the eos_token variable (default: empty)", NULL},
    {"var", 0, INF_OPT_LIST, "K=V", "an extra variable; V is JSON when it parses, else a string",
     NULL},
    {"now", 0, INF_OPT_VALUE, "SECONDS",
     "fixed clock for strftime_now (seconds since the epoch, UTC)", NULL},
    {NULL, 0, 0, NULL, NULL, NULL},
};

/* Read a whole file (at most max bytes) into a NUL-terminated buffer. */
static char *read_file(struct inf_cli *cli, const char *path, size_t max, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        inf_cli_errorf(cli, "cannot open '%s': %s", path, strerror(errno));
        return NULL;
    }
    char *buf = inf__read_stream(f, max, len);
    int e = errno;
    fclose(f);
    if (!buf && e == EFBIG)
        inf_cli_errorf(cli, "'%s' is too large (the limit is %zu bytes)", path, max);
    else if (!buf)
        inf_cli_errorf(cli, "cannot read '%s': %s", path, strerror(e));
    return buf;
}

static json_t *load_json(struct inf_cli *cli, const char *path)
{
    json_error_t je;
    json_t *j = json_load_file(path, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
    if (!j && je.line < 0)
        inf_cli_errorf(cli, "%s", je.text); /* could not open or read it */
    else if (!j)
        inf_cli_errorf(cli, "'%s': invalid JSON at line %d: %s", path, je.line, je.text);
    return j;
}

/* Build the render context from the options; NULL after printing an error. */
static json_t *build_context(struct inf_cli *cli, struct inf_cli_args *args, int *rc)
{
    json_t *ctx = json_object(), *msgs = NULL, *tools = NULL;
    const char *path = inf_cli_value(args, "messages");

    *rc = INF_EXIT_FAIL;
    if (!ctx)
        return NULL;
    msgs = load_json(cli, path);
    if (!msgs)
        goto fail;
    if (json_is_object(msgs)) {
        json_t *inner = json_object_get(msgs, "messages");
        json_t *t = json_object_get(msgs, "tools");
        if (t && !json_is_null(t))
            tools = json_incref(t);
        if (!json_is_array(inner)) {
            inf_cli_errorf(cli,
                           "'%s': expected an array of messages or an object with "
                           "\"messages\"",
                           path);
            goto fail;
        }
        json_incref(inner);
        json_decref(msgs);
        msgs = inner;
    } else if (!json_is_array(msgs)) {
        inf_cli_errorf(cli, "'%s': expected an array of messages", path);
        goto fail;
    }
    json_object_set_new(ctx, "messages", msgs);
    msgs = NULL;

    if (inf_cli_has(args, "tools")) {
        json_decref(tools);
        tools = load_json(cli, inf_cli_value(args, "tools"));
        if (!tools)
            goto fail;
        if (!json_is_array(tools) && !json_is_null(tools)) {
            inf_cli_errorf(cli, "'%s': expected an array of tools", inf_cli_value(args, "tools"));
            goto fail;
        }
    }
    if (tools && !json_is_null(tools))
        json_object_set(ctx, "tools", tools);
    json_decref(tools);
    tools = NULL;

    const char *bos = inf_cli_value(args, "bos"), *eos = inf_cli_value(args, "eos");
    json_t *jb = json_string(bos ? bos : ""), *je = json_string(eos ? eos : "");
    if (!jb || !je) {
        json_decref(jb);
        json_decref(je);
        inf_cli_errorf(cli, "--bos and --eos must be UTF-8");
        *rc = INF_EXIT_USAGE;
        goto fail;
    }
    json_object_set_new(ctx, "bos_token", jb);
    json_object_set_new(ctx, "eos_token", je);
    json_object_set_new(ctx, "add_generation_prompt",
                        json_boolean(inf_cli_has(args, "add-generation-prompt")));

    int n_vars = 0;
    const char *const *vars = inf_cli_values(args, "var", &n_vars);
    for (int i = 0; i < n_vars; i++) {
        const char *eq = strchr(vars[i], '=');
        if (!eq || eq == vars[i]) {
            inf_cli_errorf(cli, "--var expects KEY=VALUE, got '%s'", vars[i]);
            *rc = INF_EXIT_USAGE;
            goto fail;
        }
        char key[256];
        snprintf(key, sizeof(key), "%.*s", (int)(eq - vars[i]), vars[i]);
        json_t *v = json_loads(eq + 1, JSON_DECODE_ANY, NULL);
        if (!v)
            v = json_string(eq + 1);
        if (!v) {
            inf_cli_errorf(cli, "--var '%s': the value is not UTF-8", key);
            *rc = INF_EXIT_USAGE;
            goto fail;
        }
        json_object_set_new(ctx, key, v);
    }
    *rc = INF_EXIT_OK;
    return ctx;
fail:
    json_decref(msgs);
    json_decref(tools);
    json_decref(ctx);
    return NULL;
}

int inf_cmd_template(struct inf_cli *cli, struct inf_cli_args *args)
{
    struct inf_template_options opt = {0};
    struct inf_template *t = NULL;
    struct inf_error err = {0};
    json_t *ctx = NULL;
    char *src = NULL, *out = NULL;
    size_t src_len = 0, out_len = 0;
    int rc = INF_EXIT_FAIL;

    if (args->n_positional < 1 || strcmp(args->positional[0], "render") != 0) {
        inf_cli_errorf(cli, "unknown subcommand '%s'; try 'inferno template render --help'",
                       args->n_positional ? args->positional[0] : "");
        return INF_EXIT_USAGE;
    }
    if (args->n_positional > 1) {
        inf_cli_errorf(cli, "unexpected argument '%s'", args->positional[1]);
        return INF_EXIT_USAGE;
    }
    bool has_model = inf_cli_has(args, "model"), has_tpl = inf_cli_has(args, "template");
    if (has_model == has_tpl) {
        inf_cli_errorf(cli, "give exactly one of --model and --template");
        return INF_EXIT_USAGE;
    }
    if (!inf_cli_has(args, "messages")) {
        inf_cli_errorf(cli, "--messages FILE is required");
        return INF_EXIT_USAGE;
    }
    if (inf_cli_has(args, "template-name") && !has_model) {
        inf_cli_errorf(cli, "--template-name needs --model");
        return INF_EXIT_USAGE;
    }
    if (inf_cli_has(args, "now")) {
        long long now;
        if (!inf_cli_int(cli, args, "now", 0, 253402300799LL, &now))
            return INF_EXIT_USAGE;
        opt.fixed_now = true;
        opt.now = now;
    }

    const char *path = inf_cli_value(args, "template");
    char model_path[4096];
    if (has_model) {
        /* tokenizer.chat_template[.NAME] from the GGUF; ChatML when the model has none */
        struct inf_gguf *g = NULL;
        char key[256];
        const char *name = inf_cli_value(args, "template-name");
        if (inf_models_resolve_cli(cli, inf_cli_value(args, "model"), model_path,
                                   sizeof(model_path)) != 0)
            goto out;
        path = model_path;
        if (inf_gguf_open_file(model_path, &g, &err) != INF_OK) {
            inf_cli_errorf(cli, "%s", err.msg);
            goto out;
        }
        snprintf(key, sizeof(key), "tokenizer.chat_template%s%s", name ? "." : "",
                 name ? name : "");
        const char *text = NULL;
        uint64_t len = 0;
        if (inf_gguf_get_str(g, key, &text, &len, NULL) == INF_OK) {
            src = malloc((size_t)len + 1);
            if (src) {
                memcpy(src, text, (size_t)len);
                src[len] = '\0';
                src_len = (size_t)len;
            }
        } else if (name) {
            inf_cli_errorf(cli, "'%s' has no template '%s'", model_path, key);
        } else {
            INF_LOG_WARN("template", "'%s' has no chat template; using ChatML", model_path);
            src = strdup(inf_template_default_chatml());
            src_len = src ? strlen(src) : 0;
        }
        inf_gguf_free(g);
    } else {
        src = read_file(cli, path, INF_TEMPLATE_MAX_SOURCE, &src_len);
    }
    if (!src)
        goto out;
    ctx = build_context(cli, args, &rc);
    if (!ctx)
        goto out;
    rc = INF_EXIT_FAIL;
    if (inf_template_parse(src, src_len, &t, &err) != INF_OK) {
        inf_cli_errorf(cli, "%s: %s", path, err.msg);
        goto out;
    }
    if (inf_template_render(t, ctx, &opt, &out, &out_len, &err) != INF_OK) {
        if (err.code == INF_EINVAL)
            inf_cli_errorf(cli, "%s: the template raised an error: %s", path, err.msg);
        else
            inf_cli_errorf(cli, "%s: %s", path, err.msg);
        goto out;
    }
    if (fwrite(out, 1, out_len, stdout) != out_len || fflush(stdout) != 0) {
        inf_cli_errorf(cli, "cannot write the output: %s", strerror(errno));
        goto out;
    }
    rc = INF_EXIT_OK;
out:
    free(out);
    inf_template_free(t);
    json_decref(ctx);
    free(src);
    return rc;
}
