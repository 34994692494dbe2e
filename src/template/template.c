/*
 * template.c - the public chat-template API (inferno/template.h): parse, render with a JSON
 * context, the ChatML default and the chat convenience wrapper.
 *
 * src/template/ owns the Jinja engine for chat templates: lexer and parser (template_parse.c),
 * evaluator (template_eval.c), values (template_value.c), filters, tests and methods
 * (template_builtins.c). It tracks which bytes of the output came from request text (taint
 * ranges carried through string operations), so that control tokens are not read out of them
 * (inf_tok_encode_untrusted). It knows nothing of tokenizers: the server and the CLI join the two.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "inferno/log.h"
#include "template/template_internal.h"

#define DEFAULT_MAX_OUTPUT     (16u << 20)
#define DEFAULT_MAX_MEMORY     (256u << 20)
#define DEFAULT_MAX_STEPS      100000000ull
#define DEFAULT_MAX_ITERATIONS 1000000ull
#define DEFAULT_MAX_DEPTH      64u
#define HARD_MAX_DEPTH         512u
#define DEFAULT_MAX_STACK      (1u << 20)

static const char CHATML[] =
    "{%- for message in messages -%}\n"
    "{{- '<|im_start|>' + message['role'] + '\\n' -}}\n"
    "{%- if message['content'] is string -%}\n"
    "{{- message['content'] -}}\n"
    "{%- elif message['content'] is iterable -%}\n"
    "{%- for part in message['content'] -%}\n"
    "{%- if part is mapping and part['type'] == 'text' -%}{{- part['text'] -}}{%- endif -%}\n"
    "{%- endfor -%}\n"
    "{%- endif -%}\n"
    "{{- '<|im_end|>\\n' -}}\n"
    "{%- endfor -%}\n"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}\n";

const char *inf_template_default_chatml(void)
{
    return CHATML;
}

inf_status inf_template_parse(const char *src, size_t len, struct inf_template **out,
                              struct inf_error *err)
{
    if (!out)
        return inf_error_set(err, INF_EINVAL, "no output pointer");
    *out = NULL;
    if (!src && len)
        return inf_error_set(err, INF_EINVAL, "no template source");
    return inf__tpl_parse(src ? src : "", len, out, err);
}

void inf_template_free(struct inf_template *t)
{
    if (!t)
        return;
    inf__arena_release(&t->arena);
    free(t);
}

static int32_t find_sym(const struct inf_template *t, const char *name)
{
    for (size_t i = 0; i < t->n_syms; i++)
        if (strcmp(t->sym_names[i], name) == 0)
            return (int32_t)i;
    return -1;
}

static bool is_untrusted(const char *key, const char *const *untrusted, size_t n_untrusted)
{
    for (size_t i = 0; i < n_untrusted; i++)
        if (untrusted[i] && strcmp(untrusted[i], key) == 0)
            return true;
    return false;
}

/* Render; spans (may be NULL) receives the untrusted ranges of the output (malloc'd). */
static inf_status render(const struct inf_template *t, const struct json_t *context,
                         const char *const *untrusted, size_t n_untrusted,
                         const struct inf_template_options *opt, char **out, size_t *out_len,
                         struct inf_text_span **spans, size_t *n_spans, struct inf_error *err)
{
    struct inf_template_options o = {0};
    struct tpl_render r = {0};
    struct tpl_buf buf = {0};
    inf_status rc = INF_OK;

    if (!out)
        return inf_error_set(err, INF_EINVAL, "no output pointer");
    *out = NULL;
    if (out_len)
        *out_len = 0;
    if (!t)
        return inf_error_set(err, INF_EINVAL, "no template");
    if (context && !json_is_object(context))
        return inf_error_set(err, INF_EINVAL, "the template context must be a JSON object");
    if (opt)
        o = *opt;
    r.t = t;
    r.err = err;
    r.max_output = o.max_output ? o.max_output : DEFAULT_MAX_OUTPUT;
    r.arena.limit = o.max_memory ? o.max_memory : DEFAULT_MAX_MEMORY;
    r.max_steps = o.max_steps ? o.max_steps : DEFAULT_MAX_STEPS;
    r.max_iterations = o.max_iterations ? o.max_iterations : DEFAULT_MAX_ITERATIONS;
    r.max_depth = o.max_depth ? o.max_depth : DEFAULT_MAX_DEPTH;
    if (r.max_depth > HARD_MAX_DEPTH)
        r.max_depth = HARD_MAX_DEPTH;
    r.max_stack = o.max_stack ? o.max_stack : DEFAULT_MAX_STACK;
    r.fixed_now = o.fixed_now;
    r.now = o.now;

    r.globals = inf__tpl_ralloc(&r, (t->n_syms + 1) * sizeof(*r.globals));
    if (!r.globals)
        goto fail;
    for (size_t i = 0; i < t->n_syms; i++) {
        tpl_builtin_fn fn = inf__tpl_global_find(t->sym_names[i]);
        r.globals[i] = tpl_undef(t->sym_names[i]);
        if (fn) {
            struct tpl_func *f = inf__tpl_ralloc(&r, sizeof(*f));
            if (!f)
                goto fail;
            f->kind = FN_BUILTIN;
            f->name = t->sym_names[i];
            f->fn = fn;
            r.globals[i].type = TPL_FUNC;
            r.globals[i].u.fn = f;
        }
    }
    if (context) {
        const char *key;
        json_t *val;
        json_object_foreach((json_t *)context, key, val)
        {
            int32_t sym = find_sym(t, key);
            if (sym < 0)
                continue; /* the template never names it */
            if (inf__tpl_from_json(&r, val, is_untrusted(key, untrusted, n_untrusted),
                                   &r.globals[sym]))
                goto fail;
        }
    }
    if (inf__tpl_exec(&r, &buf))
        goto fail;
    if (!buf.p) {
        buf.p = malloc(1);
        if (!buf.p) {
            rc = inf_error_set(err, INF_ENOMEM, "out of memory");
            goto out;
        }
        buf.p[0] = '\0';
    }
    if (spans && buf.n_taint) {
        *spans = malloc(buf.n_taint * sizeof(**spans));
        if (!*spans) {
            rc = inf_error_set(err, INF_ENOMEM, "out of memory");
            goto out;
        }
        for (size_t i = 0; i < buf.n_taint; i++) {
            (*spans)[i].off = buf.taint[i].off;
            (*spans)[i].len = buf.taint[i].len;
        }
        *n_spans = buf.n_taint;
    }
    *out = buf.p;
    if (out_len)
        *out_len = buf.len;
    buf.p = NULL;
    goto out;
fail:
    rc = r.status != INF_OK ? r.status : INF_EINTERNAL;
    if (r.status == INF_OK)
        inf_error_set(err, rc, "template render failed");
out:
    inf__tpl_buf_free(&buf);
    inf__arena_release(&r.arena);
    return rc;
}

inf_status inf_template_render(const struct inf_template *t, const struct json_t *context,
                               const struct inf_template_options *opt, char **out, size_t *out_len,
                               struct inf_error *err)
{
    return render(t, context, NULL, 0, opt, out, out_len, NULL, NULL, err);
}

void inf_rendered_release(struct inf_rendered *rd)
{
    if (!rd)
        return;
    free(rd->text);
    free(rd->untrusted);
    memset(rd, 0, sizeof(*rd));
}

inf_status inf_template_render_untrusted(const struct inf_template *t, const struct json_t *context,
                                         const char *const *untrusted, size_t n_untrusted,
                                         const struct inf_template_options *opt,
                                         struct inf_rendered *out, struct inf_error *err)
{
    if (!out)
        return inf_error_set(err, INF_EINVAL, "no output pointer");
    memset(out, 0, sizeof(*out));
    inf_status rc = render(t, context, untrusted, n_untrusted, opt, &out->text, &out->len,
                           &out->untrusted, &out->n_untrusted, err);
    if (rc)
        inf_rendered_release(out);
    return rc;
}

inf_status inf_template_render_json(const struct inf_template *t, const char *context_json,
                                    size_t len, const struct inf_template_options *opt, char **out,
                                    size_t *out_len, struct inf_error *err)
{
    json_error_t je;
    json_t *ctx = NULL;

    if (out)
        *out = NULL;
    if (context_json && len) {
        ctx = json_loadb(context_json, len, JSON_ALLOW_NUL, &je);
        if (!ctx)
            return inf_error_set(err, INF_EPARSE, "template context: invalid JSON at line %d: %s",
                                 je.line, je.text);
    }
    inf_status rc = inf_template_render(t, ctx, opt, out, out_len, err);
    json_decref(ctx);
    return rc;
}

/* Parse JSON text into ctx[key]; "what" names it in messages. */
static inf_status set_json(json_t *ctx, const char *key, const char *text, const char *what,
                           struct inf_error *err)
{
    json_error_t je;
    json_t *v = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
    if (!v)
        return inf_error_set(err, INF_EPARSE, "%s: invalid JSON at line %d: %s", what, je.line,
                             je.text);
    if (json_object_set_new(ctx, key, v))
        return inf_error_set(err, INF_ENOMEM, "out of memory");
    return INF_OK;
}

/* Parse the template and render the chat; rd receives the text and its untrusted ranges
 * (the bytes that came from the messages and tools). */
static inf_status chat_render(const char *template_src, size_t template_len,
                              const struct inf_chat_params *params,
                              const struct inf_template_options *opt, struct inf_rendered *rd,
                              struct inf_error *err)
{
    static const char *const untrusted[] = {"messages", "tools"};
    struct inf_template *t = NULL;
    json_t *ctx = NULL;
    inf_status rc;

    memset(rd, 0, sizeof(*rd));
    if (!params || !params->messages_json)
        return inf_error_set(err, INF_EINVAL, "no messages");
    if (!template_src) {
        inf_log(INF_LOG_WARN, "template", "the model has no chat template; using ChatML");
        template_src = CHATML;
        template_len = sizeof(CHATML) - 1;
    }
    ctx = json_object();
    if (!ctx)
        return inf_error_set(err, INF_ENOMEM, "out of memory");
    rc = set_json(ctx, "messages", params->messages_json, "messages", err);
    if (rc)
        goto out;
    if (!json_is_array(json_object_get(ctx, "messages"))) {
        rc = inf_error_set(err, INF_EINVAL, "messages must be a JSON array");
        goto out;
    }
    if (params->tools_json) {
        rc = set_json(ctx, "tools", params->tools_json, "tools", err);
        if (rc)
            goto out;
    }
    if (json_object_set_new(ctx, "add_generation_prompt",
                            json_boolean(params->add_generation_prompt)) ||
        json_object_set_new(ctx, "bos_token",
                            json_string(params->bos_token ? params->bos_token : "")) ||
        json_object_set_new(ctx, "eos_token",
                            json_string(params->eos_token ? params->eos_token : ""))) {
        rc = inf_error_set(err, INF_EINVAL, "bos/eos tokens must be UTF-8");
        goto out;
    }
    if (params->extra_json) {
        json_error_t je;
        json_t *extra = json_loads(params->extra_json, 0, &je);
        if (!extra || !json_is_object(extra)) {
            json_decref(extra);
            rc = inf_error_set(err, INF_EPARSE, "extra variables: expected a JSON object");
            goto out;
        }
        json_object_update_missing(ctx, extra);
        json_decref(extra);
    }
    rc = inf_template_parse(template_src, template_len, &t, err);
    if (rc)
        goto out;
    rc = inf_template_render_untrusted(t, ctx, untrusted, 2, opt, rd, err);
out:
    inf_template_free(t);
    json_decref(ctx);
    return rc;
}

inf_status inf_chat_apply_template(const char *template_src, size_t template_len,
                                   const struct inf_chat_params *params,
                                   const struct inf_template_options *opt, char **out,
                                   size_t *out_len, struct inf_error *err)
{
    struct inf_rendered rd;
    if (!out)
        return inf_error_set(err, INF_EINVAL, "no output pointer");
    *out = NULL;
    inf_status rc = chat_render(template_src, template_len, params, opt, &rd, err);
    if (rc == INF_OK) {
        *out = rd.text;
        if (out_len)
            *out_len = rd.len;
        rd.text = NULL;
    }
    inf_rendered_release(&rd);
    return rc;
}

inf_status inf_chat_render(const char *template_src, size_t template_len,
                           const struct inf_chat_params *params,
                           const struct inf_template_options *opt, struct inf_rendered *out,
                           struct inf_error *err)
{
    if (!out)
        return inf_error_set(err, INF_EINVAL, "no output pointer");
    return chat_render(template_src, template_len, params, opt, out, err);
}
