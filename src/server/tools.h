/*
 * server/tools.h - tool calling for chat completions, without a model: which tool-call syntax
 * a chat template's model writes (its family), the prompt side (messages and tools as the
 * template expects them; a system message describing the tools for templates that cannot),
 * the grammar that forces calls (tool_choice required or named), and recognising calls in the
 * generated text, whole or as it streams.
 *
 * Families, chosen from the template's text:
 *   HERMES   <tool_call>\n{"name": ..., "arguments": {...}}\n</tool_call> (Hermes, Qwen 2.5/3)
 *   LLAMA3   {"name": ..., "parameters": {...}}, possibly after <|python_tag|> (Llama 3.x)
 *   MISTRAL  [TOOL_CALLS][{"name": ..., "arguments": {...}}, ...]
 *   GENERIC  {"tool_calls": [{"name": ..., "arguments": {...}}]} (templates that know no
 *            tools: the server describes them in a system message)
 * Markers that are control tokens are also recognised when they are missing from the text.
 */
#ifndef INFERNO_SERVER_TOOLS_H
#define INFERNO_SERVER_TOOLS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "inferno/grammar.h"
#include "server/api.h"

enum tool_family { TOOL_GENERIC, TOOL_HERMES, TOOL_LLAMA3, TOOL_MISTRAL };

/* The family of a chat template's source (NULL: no template, GENERIC). */
enum tool_family tool_family_of(const char *template_src);
const char *tool_family_name(enum tool_family f);

/*
 * The messages to render (a new reference), tools NULL when the request has none (or
 * tool_choice none). HERMES, LLAMA3 and MISTRAL templates render `tools` and tool calls
 * themselves: *pass_tools is set when there are tools, and MISTRAL gets call ids of the 9
 * alphanumerics its templates require (derived from the ids given). GENERIC: a system message
 * (the first one, extended, or a new one) lists the tools and the JSON form of a call, and
 * assistant tool_calls of earlier turns become that JSON in their content. NULL when out of
 * memory.
 */
json_t *tool_prompt_messages(enum tool_family f, json_t *messages, json_t *tools,
                             enum api_tool_choice choice, const char *only, bool *pass_tools);

/*
 * The grammar of the family's call syntax with the arguments constrained by the tools'
 * parameter schemas: one call of `only` (non-NULL), else of any tool, repeated when parallel.
 * The schemas are compiled in strict mode when every tool concerned says strict: true.
 * Errors (a parameter schema the compiler refuses) go to err naming the tool.
 */
inf_status tool_grammar(enum tool_family f, json_t *tools, const char *only, bool parallel,
                        struct inf_grammar **out, struct inf_error *err);

struct tool_call {
    char id[40]; /* call_... */
    char *name;
    char *arguments; /* JSON text */
};

/*
 * Recognising calls in the output as it comes. feed() takes the next text and says which part
 * of it is content to send now (text before any call, and text that cannot start one) and which
 * calls are now complete; finish() ends the output: what was held back and is no call after all
 * is content then. Calls come out in order, each once.
 */
struct tool_stream {
    enum tool_family f;
    char *acc; /* all text so far */
    size_t len, cap;
    size_t sent;       /* bytes of acc released as content */
    bool in_calls;     /* a call syntax began at calls_from */
    size_t calls_from; /* offset in acc */
    size_t n_calls;    /* calls released */
};

struct tool_out {
    const char *content; /* into the stream's text; valid until the next feed/finish */
    size_t content_len;
    struct tool_call *calls; /* [n_calls] new complete calls (malloc'd: tool_out_release) */
    size_t n_calls;
};

void tool_stream_init(struct tool_stream *s, enum tool_family f);
void tool_stream_release(struct tool_stream *s);
bool tool_stream_feed(struct tool_stream *s, const char *text, size_t len, struct tool_out *out);
bool tool_stream_finish(struct tool_stream *s, struct tool_out *out);
void tool_out_release(struct tool_out *o);

#endif
