/*
 * fuzz_template.c - libFuzzer target for the chat-template parser and renderer.
 *
 * Input: template source, optionally followed by a NUL byte and a JSON object whose members are
 * added to (and override) a fixed chat context (messages with a system prompt, content parts,
 * an assistant tool call and a tool result; tools; bos/eos; add_generation_prompt). Sizes and
 * render limits are capped so every input finishes quickly; any error status is fine, a crash,
 * a leak, a sanitizer report or a hang is not.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "inferno/template.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char CONTEXT[] =
    "{\"messages\": ["
    "{\"role\": \"system\", \"content\": \"You are terse.\"},"
    "{\"role\": \"user\", \"content\": [{\"type\": \"text\", \"text\": \"Hi \\u00fc "
    "\\ud83d\\ude00\"},"
    " {\"type\": \"image\"}]},"
    "{\"role\": \"assistant\", \"content\": \"\", \"tool_calls\": [{\"id\": \"c1\", \"type\": "
    "\"function\", \"function\": {\"name\": \"get_weather\", \"arguments\": {\"city\": "
    "\"Paris\", \"n\": 1.5}}}]},"
    "{\"role\": \"tool\", \"tool_call_id\": \"c1\", \"content\": \"{\\\"t\\\": 18}\"}],"
    "\"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", "
    "\"description\": \"Weather\", \"parameters\": {\"type\": \"object\", \"properties\": "
    "{\"city\": {\"type\": \"string\"}}, \"required\": [\"city\"]}}}],"
    "\"add_generation_prompt\": true, \"bos_token\": \"<s>\", \"eos_token\": \"</s>\"}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 64 * 1024)
        return 0;
    const char *src = (const char *)data;
    const uint8_t *nul = memchr(data, 0, size);
    size_t tlen = nul ? (size_t)(nul - data) : size;

    struct inf_template *t = NULL;
    struct inf_error err = {0};
    if (inf_template_parse(src, tlen, &t, &err) != INF_OK)
        return 0;

    json_t *ctx = json_loads(CONTEXT, 0, NULL);
    if (ctx && nul) {
        json_t *extra = json_loadb((const char *)nul + 1, size - tlen - 1, 0, NULL);
        if (json_is_object(extra))
            json_object_update(ctx, extra);
        json_decref(extra);
    }
    struct inf_template_options opt = {
        .max_output = 1 << 20,
        .max_memory = 32 << 20,
        .max_steps = 2000000,
        .max_iterations = 100000,
        .max_depth = 32,
        .fixed_now = true,
        .now = 1795694400,
    };
    char *out = NULL;
    size_t out_len = 0;
    if (inf_template_render(t, ctx, &opt, &out, &out_len, &err) == INF_OK) {
        /* the result is a NUL-terminated buffer of out_len bytes */
        if (out[out_len] != '\0')
            abort();
    }
    free(out);
    json_decref(ctx);
    inf_template_free(t);
    return 0;
}
