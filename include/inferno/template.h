/*
 * inferno/template.h - chat templates: a Jinja2 interpreter for the subset that real chat
 * templates use, with the options transformers renders them with.
 *
 * A template is parsed once (inf_template_parse) and rendered any number of times, from any
 * number of threads at once (rendering never modifies the parsed template). Rendering follows
 * Python Jinja2 as transformers configures it: trim_blocks and lstrip_blocks on, one trailing
 * newline of the source dropped, no autoescaping, the default Undefined (an unknown variable or a
 * missing key is undefined: falsy, printed as empty, iterated as empty; only its attributes and
 * calls are errors), loop controls, the {% generation %} tag, and the host functions
 * raise_exception(msg) and strftime_now(fmt). tojson is transformers' version (json.dumps with
 * ensure_ascii=False, separators ", " and ": ", insertion order, optional indent=).
 *
 * Templates are untrusted input: a template can never crash or hang the process. Source size,
 * output size, working memory, evaluation steps, loop iterations and macro recursion are all
 * bounded; going past a bound is an INF_ELIMIT error.
 *
 * Errors name the template position: "line L, column C: reason" (columns count characters).
 * Status codes: INF_EPARSE for syntax errors, INF_ETYPE for runtime errors (undefined
 * attribute, wrong operand types…), INF_ELIMIT for limits, INF_EINVAL when the template itself
 * calls raise_exception() (the message is then exactly the template's message) or for bad
 * arguments, INF_ENOMEM.
 */
#ifndef INFERNO_TEMPLATE_H
#define INFERNO_TEMPLATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "inferno/status.h"
#include "inferno/tokenizer.h" /* struct inf_text_span */

#ifdef __cplusplus
extern "C" {
#endif

struct json_t; /* jansson */
struct inf_template;

/* Largest template source accepted by inf_template_parse (bytes). */
#define INF_TEMPLATE_MAX_SOURCE (1u << 20)

/* Render limits and options. Zero-initialise; a zero field takes its default. */
struct inf_template_options {
    size_t max_output;       /* bytes of rendered text (also any captured macro output); 16 MiB */
    size_t max_memory;       /* bytes of working memory (values and output buffers); 128 MiB */
    uint64_t max_steps;      /* evaluation steps (expressions, statements, bytes scanned / 64);
                                20 million (about a second) */
    uint64_t max_iterations; /* loop iterations, all loops together; 1 million */
    unsigned max_depth;      /* nesting of macro calls; 64 */
    size_t max_stack;        /* bytes of C stack a render may use (deeply nested templates);
                                1 MiB. Render on a thread with at least this much to spare. */
    bool fixed_now;          /* strftime_now uses `now` (UTC) instead of the local clock */
    int64_t now;             /* seconds since the epoch, read when fixed_now is set */
};

/*
 * Parse a template from memory (len bytes, need not be NUL-terminated; must be UTF-8 and at most
 * INF_TEMPLATE_MAX_SOURCE bytes). On success *out holds a template the caller frees with
 * inf_template_free. On failure *out is NULL and err says where: "line L, column C: reason".
 */
inf_status inf_template_parse(const char *src, size_t len, struct inf_template **out,
                              struct inf_error *err);

/* Free a parsed template. NULL is a no-op. */
void inf_template_free(struct inf_template *t);

/*
 * Render with a context given as a jansson object: each member becomes a template variable
 * (messages, tools, add_generation_prompt, bos_token, eos_token, and any extras; a member that
 * is absent is undefined). context may be NULL (no variables). opt may be NULL (defaults).
 * On success *out is a malloc'd NUL-terminated string (the caller frees it; the text itself may
 * contain NUL bytes) and *out_len its length; on failure *out is NULL.
 */
inf_status inf_template_render(const struct inf_template *t, const struct json_t *context,
                               const struct inf_template_options *opt, char **out, size_t *out_len,
                               struct inf_error *err);

/*
 * A render that tracks untrusted text: text (malloc'd, NUL-terminated, len bytes) and the byte
 * ranges of it that came from untrusted strings (sorted, disjoint; malloc'd, NULL when none).
 * Hand both to inf_tok_encode_untrusted so that no untrusted byte can become a control token.
 */
struct inf_rendered {
    char *text;
    size_t len;
    struct inf_text_span *untrusted;
    size_t n_untrusted;
};
/* Free what a render left in rd and zero it. NULL is a no-op. */
void inf_rendered_release(struct inf_rendered *rd);

/*
 * inf_template_render, where every string inside the context members named by untrusted[0..n)
 * (their keys too) is untrusted text. The output records which bytes came from untrusted text:
 * exactly through concatenation (~, +), {{ }} output, captures and macro results, join, trim and
 * strip, slicing and iteration; any other string a filter, method or operator makes from
 * untrusted input (replace, upper, split, tojson, %...) is untrusted as a whole. Template
 * literals and trusted variables (bos_token...) stay trusted. On failure *out is zeroed.
 */
inf_status inf_template_render_untrusted(const struct inf_template *t, const struct json_t *context,
                                         const char *const *untrusted, size_t n_untrusted,
                                         const struct inf_template_options *opt,
                                         struct inf_rendered *out, struct inf_error *err);

/* inf_template_render with the context as JSON text (an object; len bytes). */
inf_status inf_template_render_json(const struct inf_template *t, const char *context_json,
                                    size_t len, const struct inf_template_options *opt, char **out,
                                    size_t *out_len, struct inf_error *err);

/* The default chat template (ChatML) for models that ship none. Static; never NULL. */
const char *inf_template_default_chatml(void);

/* What a chat is rendered with (inf_chat_apply_template). JSON members are text. */
struct inf_chat_params {
    const char *messages_json; /* a JSON array of messages (content a string or an array of
                                  parts); required */
    const char *tools_json;    /* a JSON array of tools, or NULL: `tools` stays undefined */
    bool add_generation_prompt;
    const char *bos_token;  /* NULL = "" */
    const char *eos_token;  /* NULL = "" */
    const char *extra_json; /* NULL, or a JSON object of extra variables (enable_thinking…) */
};

/*
 * Parse template_src (template_len bytes) and render it for a chat. template_src NULL means the
 * model has no template: the ChatML default is used and a warning is logged. Output as for
 * inf_template_render.
 */
inf_status inf_chat_apply_template(const char *template_src, size_t template_len,
                                   const struct inf_chat_params *params,
                                   const struct inf_template_options *opt, char **out,
                                   size_t *out_len, struct inf_error *err);

/*
 * inf_chat_apply_template that also says which bytes of the prompt came from the chat's
 * messages and tools (untrusted: the user's text). Tokenize the result with
 * inf_tok_encode_untrusted(..., INF_TOK_PARSE_SPECIAL, out->untrusted, out->n_untrusted...):
 * the template's own markers become control tokens, the users' text never does.
 */
inf_status inf_chat_render(const char *template_src, size_t template_len,
                           const struct inf_chat_params *params,
                           const struct inf_template_options *opt, struct inf_rendered *out,
                           struct inf_error *err);

#ifdef __cplusplus
}
#endif
#endif
