/* cli_engine.c - what the generation commands share: model resolution and loading, context
 * parameters from the configuration, sampler parameters from options, chat prompts. */
#include "cli/cli_engine.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/files.h"
#include "inferno/cpu.h"
#include "inferno/log.h"
#include "inferno/models.h"
#include "inferno/template.h"
#include "inferno/tokenizer.h"

int inf_models_resolve_cli(struct inf_cli *cli, const char *arg, char *out, size_t size)
{
    struct inf_error err = {0};
    if (inf_models_resolve(arg, inf_config_get_str(cli->config, "models_dir"),
                           inf_config_get_str(cli->config, "cache.models_db"), out, size,
                           &err) != INF_OK) {
        inf_cli_errorf(cli, "%s", inf_error_message(&err));
        return -1;
    }
    return 0;
}

static bool load_progress(float f, void *user)
{
    (void)user;
    INF_LOG_DEBUG("engine", "loading: %.0f%%", (double)f * 100);
    return true;
}

int inf_cli_load_model(struct inf_cli *cli, const struct inf_cli_args *args, struct inf_model **out)
{
    char path[4096];
    struct inf_error err = {0};
    const char *arg = inf_cli_value(args, "model");

    *out = NULL;
    if (!arg) {
        inf_cli_errorf(cli, "-m MODEL is required");
        return INF_EXIT_USAGE;
    }
    if (inf_models_resolve_cli(cli, arg, path, sizeof(path)) != 0)
        return INF_EXIT_FAIL;
    struct inf_model_params mp = inf_cli_model_params(cli);
    mp.progress = load_progress;
    if (inf_model_load(path, &mp, out, &err) != INF_OK) {
        inf_cli_errorf(cli, "%s", inf_error_message(&err));
        return INF_EXIT_FAIL;
    }
    return INF_EXIT_OK;
}

struct inf_model_params inf_cli_model_params(const struct inf_cli *cli)
{
    struct inf_model_params mp = inf_model_default_params();
    mp.use_mmap = inf_config_get_bool(cli->config, "backend.use_mmap");
    mp.use_mlock = inf_config_get_bool(cli->config, "backend.use_mlock");
    mp.huge_pages = inf_config_get_bool(cli->config, "backend.huge_pages");
    return mp;
}

struct inf_context_params inf_cli_context_params(const struct inf_cli *cli)
{
    struct inf_context_params cp = inf_context_default_params();
    const char *kv = inf_config_get_str(cli->config, "backend.kv_type");
    cp.n_ctx = (uint32_t)inf_config_get_int(cli->config, "backend.context_size");
    cp.n_batch = (uint32_t)inf_config_get_int(cli->config, "backend.batch_size");
    cp.n_threads = (int)inf_config_get_int(cli->config, "backend.threads");
    if (cp.n_threads <= 0)
        cp.n_threads = inf_cpu_physical_cores();
    cp.kv_type = strcmp(kv, "f32") == 0    ? INF_KV_F32
                 : strcmp(kv, "q8_0") == 0 ? INF_KV_Q8_0
                                           : INF_KV_F16;
    cp.deterministic = strcmp(inf_config_get_str(cli->config, "backend.deterministic"), "on") == 0;
    return cp;
}

static bool opt_float(struct inf_cli *cli, const struct inf_cli_args *a, const char *name, float lo,
                      float hi, float *out)
{
    if (!inf_cli_has(a, name))
        return true;
    const char *s = inf_cli_value(a, name);
    char *end;
    float v = strtof(s, &end);
    if (end == s || *end || !(v >= lo && v <= hi)) {
        inf_cli_errorf(cli, "option '--%s' expects a number in [%g, %g], got '%s'", name,
                       (double)lo, (double)hi, s);
        return false;
    }
    *out = v;
    return true;
}

int inf_cli_sampler_params(struct inf_cli *cli, const struct inf_cli_args *a,
                           struct inf_sampler_params *p)
{
    long long v;
    *p = inf_sampler_default_params();
    if (!opt_float(cli, a, "temp", 0, 100, &p->temperature) ||
        !opt_float(cli, a, "top-p", 0, 1, &p->top_p) ||
        !opt_float(cli, a, "min-p", 0, 1, &p->min_p) ||
        !opt_float(cli, a, "typical-p", 0, 1, &p->typical_p) ||
        !opt_float(cli, a, "repeat-penalty", 0.01f, 100, &p->repeat_penalty) ||
        !opt_float(cli, a, "presence-penalty", -100, 100, &p->presence_penalty) ||
        !opt_float(cli, a, "frequency-penalty", -100, 100, &p->frequency_penalty))
        return INF_EXIT_USAGE;
    if (inf_cli_has(a, "top-k")) {
        if (!inf_cli_int(cli, a, "top-k", 0, 1 << 24, &v))
            return INF_EXIT_USAGE;
        p->top_k = (int32_t)v;
    }
    if (inf_cli_has(a, "repeat-last-n")) {
        if (!inf_cli_int(cli, a, "repeat-last-n", -1, 1 << 20, &v))
            return INF_EXIT_USAGE;
        p->penalty_last_n = (int32_t)v;
    }
    if (inf_cli_has(a, "seed")) {
        const char *s = inf_cli_value(a, "seed");
        char *end;
        unsigned long long u = strtoull(s, &end, 10);
        if (end == s || *end) {
            inf_cli_errorf(cli, "option '--seed' expects a non-negative integer, got '%s'", s);
            return INF_EXIT_USAGE;
        }
        p->seed = u;
    }
    return INF_EXIT_OK;
}

int inf_cli_chat_prompt(struct inf_cli *cli, const struct inf_model *model, json_t *messages,
                        bool add_generation_prompt, struct inf_rendered *out)
{
    const struct inf_tokenizer *tok = inf_model_tokenizer(model);
    const struct inf_tok_info *ti = tok ? inf_tok_info(tok) : NULL;
    const char *tpl = inf_model_chat_template(model, NULL);
    struct inf_error err = {0};
    char *msgs = json_dumps(messages, JSON_COMPACT);

    memset(out, 0, sizeof(*out));
    if (!tpl) {
        INF_LOG_WARN("chat", "the model has no chat template; using ChatML");
        tpl = inf_template_default_chatml();
    }
    struct inf_chat_params cp = {0};
    cp.messages_json = msgs;
    cp.add_generation_prompt = add_generation_prompt;
    cp.bos_token = ti && ti->bos >= 0 ? inf_tok_text(tok, ti->bos, NULL) : "";
    cp.eos_token = ti && ti->eos >= 0 ? inf_tok_text(tok, ti->eos, NULL) : "";
    inf_status st = inf_chat_render(tpl, strlen(tpl), &cp, NULL, out, &err);
    free(msgs);
    if (st) {
        inf_cli_errorf(cli, "chat template: %s", inf_error_message(&err));
        return INF_EXIT_FAIL;
    }
    return INF_EXIT_OK;
}

static int tokenize(struct inf_cli *cli, const struct inf_model *model, const char *text,
                    size_t len, bool templated, bool parse_special,
                    const struct inf_text_span *untrusted, size_t n_untrusted,
                    struct inf_tokens *out)
{
    const struct inf_tokenizer *tok = inf_model_tokenizer(model);
    struct inf_error err = {0};
    unsigned flags = INF_TOK_ADD_SPECIAL;

    if (!tok) {
        inf_cli_errorf(cli, "the model has no tokenizer");
        return INF_EXIT_FAIL;
    }
    if (templated || parse_special)
        flags |= INF_TOK_PARSE_SPECIAL;
    if (inf_tok_encode_untrusted(tok, text, len, flags, untrusted, n_untrusted, out, &err) !=
        INF_OK) {
        inf_cli_errorf(cli, "tokenizing the prompt: %s", inf_error_message(&err));
        return INF_EXIT_FAIL;
    }
    /* a template that writes the BOS text itself must not get a second one */
    const struct inf_tok_info *ti = inf_tok_info(tok);
    if (templated && out->n >= 2 && ti->bos >= 0 && out->ids[0] == ti->bos &&
        out->ids[1] == ti->bos) {
        memmove(out->ids, out->ids + 1, (out->n - 1) * sizeof(inf_token));
        out->n--;
    }
    return INF_EXIT_OK;
}

int inf_cli_tokenize_prompt(struct inf_cli *cli, const struct inf_model *model, const char *text,
                            size_t len, bool templated, bool parse_special, struct inf_tokens *out)
{
    return tokenize(cli, model, text, len, templated, parse_special, NULL, 0, out);
}

int inf_cli_tokenize_chat(struct inf_cli *cli, const struct inf_model *model,
                          const struct inf_rendered *prompt, bool parse_special_in_content,
                          struct inf_tokens *out)
{
    if (parse_special_in_content)
        return tokenize(cli, model, prompt->text, prompt->len, true, true, NULL, 0, out);
    return tokenize(cli, model, prompt->text, prompt->len, true, true, prompt->untrusted,
                    prompt->n_untrusted, out);
}

/* ---- constrained output ------------------------------------------------------------------- */

int inf_cli_grammar_open(struct inf_cli *cli, const struct inf_cli_args *args,
                         const struct inf_tokenizer *tok, int32_t n_vocab,
                         struct inf_cli_grammar *out)
{
    memset(out, 0, sizeof(*out));
    const char *gf = inf_cli_value(args, "grammar-file"), *js = inf_cli_value(args, "json-schema");
    bool jm = inf_cli_has(args, "json-mode");
    if (!!gf + !!js + jm > 1) {
        inf_cli_errorf(cli, "give one of --grammar-file, --json-schema and --json-mode");
        return INF_EXIT_USAGE;
    }
    if (!gf && !js && !jm)
        return 0;
    struct inf_error err = {0};
    inf_status rc;
    char *text = NULL;
    size_t len = 0;
    const char *path = gf ? gf
                       : (js && js[strspn(js, " \t\r\n")] != '{' &&
                          js[strspn(js, " \t\r\n")] != '[' && strcmp(js, "true") != 0)
                           ? js
                           : NULL;
    if (path) {
        FILE *f = fopen(path, "rb");
        if (!f) {
            inf_cli_errorf(cli, "cannot open '%s': %s", path, strerror(errno));
            return INF_EXIT_FAIL;
        }
        text = inf__read_stream(f, INF_GRAMMAR_MAX_SOURCE, &len);
        fclose(f);
        if (!text) {
            inf_cli_errorf(cli, "cannot read '%s': %s", path,
                           errno == EFBIG ? "larger than the 8 MiB limit" : strerror(errno));
            return INF_EXIT_FAIL;
        }
    }
    if (gf) {
        rc = inf_grammar_from_gbnf(text, len, NULL, &out->g, &err);
    } else {
        const char *schema = jm ? "{\"type\": \"object\"}" : text ? text : js;
        size_t slen = text ? len : strlen(schema);
        rc = inf_grammar_from_json_schema(schema, slen, NULL, &out->g, &err);
    }
    free(text);
    if (rc == INF_OK)
        rc = inf_grammar_vocab_new(tok, &out->v, &err);
    if (rc == INF_OK)
        rc = inf_matcher_new(out->g, out->v, &out->m, &err);
    if (rc == INF_OK) {
        out->n_vocab = n_vocab;
        out->buf = malloc((size_t)(n_vocab > 0 ? n_vocab : 1) * sizeof(float));
        if (!out->buf)
            rc = inf_error_set(&err, INF_ENOMEM, "out of memory");
    }
    if (rc != INF_OK) {
        inf_cli_errorf(cli, "%s", err.msg);
        inf_cli_grammar_close(out);
        return INF_EXIT_FAIL;
    }
    return 0;
}

const float *inf_cli_grammar_mask(struct inf_cli_grammar *g, const float *logits)
{
    if (!g->m)
        return logits;
    int32_t nt = inf_grammar_vocab_size(g->v);
    memcpy(g->buf, logits, (size_t)g->n_vocab * sizeof(float));
    /* model rows past the tokenizer's vocabulary (padding) are never text */
    for (int32_t i = nt; i < g->n_vocab; i++)
        g->buf[i] = -INFINITY;
    inf_matcher_apply(g->m, g->buf);
    return g->buf;
}

bool inf_cli_grammar_accept(struct inf_cli_grammar *g, inf_token t)
{
    return !g->m || inf_matcher_accept_token(g->m, t);
}

bool inf_cli_grammar_done(const struct inf_cli_grammar *g)
{
    return g->m && inf_matcher_is_done(g->m);
}

void inf_cli_grammar_close(struct inf_cli_grammar *g)
{
    inf_matcher_free(g->m);
    inf_grammar_vocab_free(g->v);
    inf_grammar_free(g->g);
    free(g->buf);
    memset(g, 0, sizeof(*g));
}
