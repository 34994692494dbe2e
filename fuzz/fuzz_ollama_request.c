/*
 * fuzz_ollama_request.c - libFuzzer target for Ollama's request translation (server/ollama.h,
 * no model).
 *
 * Input: one selector byte (mod 4: chat, generate, embed, embeddings), then the request body.
 * The body goes through api_parse_body and Ollama's parsers exactly as the handlers call them:
 * options and keep_alive, then the endpoint's; an accepted chat's OpenAI body is then parsed by
 * api_parse_chat, as the OpenAI handler will parse it, and a generate's template override is
 * rendered (its untrusted spans must lie inside the text, in order). Any status is fine; a crash, a
 * leak, a sanitizer report, or a failure without a message is not.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/api.h"
#include "server/ollama.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok, const struct api_error *e)
{
    if (!ok && (!e->message[0] || e->status < 400))
        abort(); /* every refusal says why, with an error status */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > (1 << 16))
        return 0;
    int sel = data[0] % 4;
    struct api_error e = {0};
    json_t *body = api_parse_body((const char *)data + 1, size - 1, &e);
    if (!body)
        return 0;
    struct ollama_opts o;
    double ka;
    bool given;
    memset(&e, 0, sizeof(e));
    bool ok = ollama_parse_options(json_object_get(body, "options"), &o, &e);
    check(ok, &e);
    ollama_opts_release(&o);
    memset(&e, 0, sizeof(e));
    check(ollama_parse_keep_alive(json_object_get(body, "keep_alive"), &ka, &given, &e), &e);
    json_t *name = json_object_get(body, "model");
    if (json_is_string(name))
        (void)ollama_name_valid(json_string_value(name));
    memset(&e, 0, sizeof(e));
    if (sel == 0) {
        json_t *ob = NULL;
        ok = ollama_chat_body(body, "m", &ob, &e);
        check(ok, &e);
        if (ok) {
            struct api_chat_req q;
            struct api_error e2 = {0};
            bool ok2 = api_parse_chat(ob, &q, &e2);
            check(ok2, &e2);
            api_chat_release(&q);
        }
        json_decref(ob);
    } else if (sel == 1) {
        struct ollama_generate g;
        ok = ollama_parse_generate(body, &g, &e);
        check(ok, &e);
        if (ok && g.tmpl) { /* a template override, rendered as the handler does */
            char *out = NULL;
            size_t len = 0, n_spans = 0;
            struct inf_text_span *spans = NULL;
            struct api_error e2 = {0};
            bool ok2 = ollama_template_render(g.tmpl, g.system, g.prompt, &out, &len, &spans,
                                              &n_spans, &e2);
            check(ok2, &e2);
            for (size_t i = 0; ok2 && i < n_spans; i++) /* spans inside the text, in order */
                if (spans[i].off + spans[i].len > len ||
                    (i && spans[i].off < spans[i - 1].off + spans[i - 1].len))
                    abort();
            free(out);
            free(spans);
        }
        ollama_generate_release(&g);
    } else {
        struct ollama_embed q;
        check(ollama_parse_embed(body, sel == 3, &q, &e), &e);
        ollama_embed_release(&q);
    }
    json_decref(body);
    return 0;
}
