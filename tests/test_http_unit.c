/*
 * test_http_unit.c - the server's request validation (server/api.h) without a model or a
 * socket: OpenAI defaults, ranges, the parameters refused as unsupported, message
 * normalisation, prompt shapes, and the helpers (base64 against RFC 4648's vectors, UTF-8).
 */
#include "t.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "inferno/grammar.h"
#include "server/api.h"
#include "server/ollama.h"
#include "server/tools.h"
#include "server/ws.h"

static json_t *body(const char *s)
{
    struct api_error e = {0};
    json_t *j = api_parse_body(s, strlen(s), &e);
    if (!j)
        fprintf(stderr, "body: %s\n", e.message);
    return j;
}

/* Parse a chat request; returns the status (200 = accepted) and the error's param. */
static int chat_status(const char *s, char *param)
{
    struct api_error e = {0};
    struct api_chat_req r;
    json_t *j = api_parse_body(s, strlen(s), &e);
    if (!j) {
        if (param)
            strcpy(param, e.param);
        return e.status;
    }
    bool ok = api_parse_chat(j, &r, &e);
    api_chat_release(&r);
    json_decref(j);
    if (param)
        strcpy(param, ok ? "" : e.param);
    return ok ? 200 : e.status;
}

static void test_chat_defaults(void)
{
    struct api_error e = {0};
    struct api_chat_req r;
    json_t *j = body("{\"model\":\"m\",\"messages\":[{\"role\":\"developer\",\"content\":\"sys\"},"
                     "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"a\"},"
                     "{\"type\":\"text\",\"text\":\"b\"}]},{\"role\":\"assistant\","
                     "\"content\":null}]}");
    T_OK(j && api_parse_chat(j, &r, &e));
    T_NEAR(r.gen.sampling.temperature, 1.0, 1e-9);
    T_NEAR(r.gen.sampling.top_p, 1.0, 1e-9);
    T_EQ_INT(r.gen.sampling.top_k, 0);
    T_EQ_INT(r.gen.max_tokens, -1);
    T_EQ_INT(r.gen.n, 1);
    T_OK(!r.gen.stream && !r.gen.logprobs);
    T_EQ_STR(r.gen.model, "m");
    T_EQ_INT((int)json_array_size(r.messages), 3);
    /* developer becomes system; text parts joined by newlines; null assistant content "" */
    T_EQ_STR(json_string_value(json_object_get(json_array_get(r.messages, 0), "role")), "system");
    T_EQ_STR(json_string_value(json_object_get(json_array_get(r.messages, 1), "content")), "a\nb");
    T_EQ_STR(json_string_value(json_object_get(json_array_get(r.messages, 2), "content")), "");
    api_chat_release(&r);
    json_decref(j);

    j = body("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_completion_tokens\":7,"
             "\"temperature\":0,\"seed\":42,\"n\":3,\"stop\":[\"a\",\"bb\"],\"logit_bias\":"
             "{\"12\":-100,\"3\":5.5},\"logprobs\":true,\"top_logprobs\":4,\"stream\":true,"
             "\"stream_options\":{\"include_usage\":true},\"top_k\":9,\"min_p\":0.2,"
             "\"repeat_penalty\":1.3,\"metadata\":{\"a\":\"b\"},\"store\":false,\"user\":\"u\"}");
    T_OK(j && api_parse_chat(j, &r, &e));
    T_EQ_INT(r.gen.max_tokens, 7);
    T_NEAR(r.gen.sampling.temperature, 0.0, 1e-9);
    T_EQ_U64(r.gen.sampling.seed, 42);
    T_OK(r.gen.seed_given);
    T_EQ_INT(r.gen.n, 3);
    T_EQ_INT(r.gen.n_stop, 2);
    T_EQ_STR(r.gen.stop[1], "bb");
    T_EQ_INT((int)r.gen.n_bias, 2);
    T_OK(r.gen.bias[0].token == 12 && isinf(r.gen.bias[0].bias) && r.gen.bias[0].bias < 0);
    T_NEAR(r.gen.bias[1].bias, 5.5, 1e-6);
    T_OK(r.gen.logprobs && r.gen.top_logprobs == 4 && r.gen.stream && r.gen.include_usage);
    T_EQ_INT(r.gen.sampling.top_k, 9);
    T_NEAR(r.gen.sampling.min_p, 0.2, 1e-6);
    T_NEAR(r.gen.sampling.repeat_penalty, 1.3, 1e-6);
    api_chat_release(&r);
    json_decref(j);
}

static void test_chat_refusals(void)
{
    static const struct {
        const char *body, *param;
        int status;
    } cases[] = {
        {"{}", "messages", 400},
        {"{\"messages\":[]}", "messages", 400},
        {"{\"messages\":{}}", "messages", 400},
        {"{\"messages\":[1]}", "messages[0]", 400},
        {"{\"messages\":[{\"role\":\"wizard\",\"content\":\"x\"}]}", "messages[0].role", 400},
        {"{\"messages\":[{\"role\":\"tool\",\"content\":\"x\"}]}", "messages[0].tool_call_id", 400},
        {"{\"messages\":[{\"role\":\"function\",\"content\":\"x\"}]}", "messages[0].role", 400},
        {"{\"messages\":[{\"role\":\"tool\",\"content\":\"x\",\"tool_call_id\":\"a\",\"tool_"
         "calls\":[{}]}]}",
         "messages[0].tool_calls", 400},
        {"{\"messages\":[{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"a\",\"function\":"
         "{\"name\":\"f\"}}]}]}",
         "messages[0].tool_calls", 400},
        {"{\"messages\":[{\"role\":\"user\"}]}", "messages[0].content", 400},
        {"{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\"}]}]}",
         "messages[0].content", 400},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\",\"tool_calls\":[]}]}",
         "messages[0].tool_calls", 400},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":[{}]}", "tools", 400},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tool_choice\":\"auto\"}",
         "tool_choice", 400},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"response_format\":"
         "{\"type\":\"xml\"}}",
         "response_format", 400},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"response_format\":"
         "{\"type\":\"json_schema\",\"json_schema\":{\"schema\":{}}}}",
         "response_format", 400},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"response_format\":"
         "{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"a b\",\"schema\":{}}}}",
         "response_format", 400},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"response_format\":"
         "{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"a\",\"schema\":[]}}}",
         "response_format", 400},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"grammar\":1}", "grammar", 400},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"grammar\":\"root ::= \\\"a\\\"\","
         "\"json_schema\":{}}",
         "json_schema", 400},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"grammar\":\"root ::= \\\"a\\\"\","
         "\"response_format\":{\"type\":\"json_object\"}}",
         "grammar", 400},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":[{\"type\":\"function\","
         "\"function\":{\"name\":\"a b\"}}]}",
         "tools", 400},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":[{\"type\":\"function\","
         "\"function\":{\"name\":\"f\",\"parameters\":1}}]}",
         "tools", 400},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":[{\"type\":\"function\","
         "\"function\":{\"name\":\"f\"}},{\"type\":\"function\",\"function\":{\"name\":\"f\"}}]}",
         "tools", 400},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":[{\"type\":\"function\","
         "\"function\":{\"name\":\"f\"}}],\"tool_choice\":{\"type\":\"function\",\"function\":"
         "{\"name\":\"g\"}}}",
         "tool_choice", 400},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":[{\"type\":\"function\","
         "\"function\":{\"name\":\"f\"}}],\"tool_choice\":\"always\"}",
         "tool_choice", 400},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":[{\"type\":\"function\","
         "\"function\":{\"name\":\"f\"}}],\"tool_choice\":\"required\",\"response_format\":"
         "{\"type\":\"json_object\"}}",
         "tool_choice", 400},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"parallel_tool_calls\":1}",
         "parallel_tool_calls", 400},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"functions\":[]}", "functions",
         400},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"audio\":{}}", "audio", 400},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"bogus\":1}", "bogus", 400},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":0}", "max_tokens",
         400},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":\"5\"}",
         "max_tokens", 400},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":2.5}", "max_tokens",
         400},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"temperature\":2.5}",
         "temperature", 400},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"top_p\":-0.1}", "top_p", 400},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"n\":0}", "n", 400},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"top_logprobs\":3}",
         "top_logprobs", 400},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"logprobs\":true,"
         "\"top_logprobs\":21}",
         "top_logprobs", 400},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"logit_bias\":{\"a\":1}}",
         "logit_bias", 400},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"logit_bias\":{\"1\":101}}",
         "logit_bias", 400},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"stop\":\"\"}", "stop", 400},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"stream_options\":"
         "{\"include_usage\":true}}",
         "stream_options", 400},
        /* accepted: neutral values of refused parameters, harmless OpenAI fields */
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":[],\"tool_choice\":"
         "\"none\",\"response_format\":{\"type\":\"text\"},\"parallel_tool_calls\":null,"
         "\"service_tier\":\"auto\"}",
         "", 200},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"response_format\":"
         "{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"a\",\"strict\":true,\"schema\":"
         "{\"type\":\"object\"}}}}",
         "", 200},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"},{\"role\":\"assistant\","
         "\"content\":null,\"tool_calls\":[{\"id\":\"call_1\",\"type\":\"function\",\"function\":"
         "{\"name\":\"f\",\"arguments\":\"{\\\"a\\\":1}\"}}]},{\"role\":\"tool\",\"tool_call_id\":"
         "\"call_1\",\"content\":\"2\"}],\"tools\":[{\"type\":\"function\",\"function\":"
         "{\"name\":\"f\",\"parameters\":{\"type\":\"object\"},\"strict\":true}}],\"tool_choice\":"
         "{\"type\":\"function\",\"function\":{\"name\":\"f\"}},\"parallel_tool_calls\":false}",
         "", 200},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char param[128] = "?";
        int st = chat_status(cases[i].body, param);
        if (st != cases[i].status || strcmp(param, cases[i].param) != 0)
            fprintf(stderr, "case %zu: %s -> %d '%s'\n", i, cases[i].body, st, param);
        T_EQ_INT(st, cases[i].status);
        T_EQ_STR(param, cases[i].param);
    }
    /* bodies: broken JSON, not an object, invalid UTF-8, empty */
    T_EQ_INT(chat_status("{\"messages\": [", NULL), 400);
    T_EQ_INT(chat_status("[1, 2]", NULL), 400);
    T_EQ_INT(chat_status("{\"messages\":[{\"role\":\"user\",\"content\":\"\xff\"}]}", NULL), 400);
    T_EQ_INT(chat_status("", NULL), 400);
}

static void test_completion_prompts(void)
{
    struct api_error e = {0};
    struct api_completion_req r;
    json_t *j = body("{\"prompt\":\"hi\"}");
    T_OK(api_parse_completion(j, &r, &e));
    T_EQ_INT(r.gen.max_tokens, 16); /* the legacy default */
    T_EQ_INT(r.logprobs, -1);
    T_EQ_INT((int)r.n_prompts, 1);
    T_EQ_STR(r.prompts[0].text, "hi");
    api_completion_release(&r);
    json_decref(j);

    j = body("{\"prompt\":[[1,2,3],[4]],\"max_tokens\":0,\"echo\":true,\"logprobs\":2}");
    T_OK(api_parse_completion(j, &r, &e));
    T_EQ_INT((int)r.n_prompts, 2);
    T_OK(!r.prompts[0].text && r.prompts[0].n_ids == 3 && r.prompts[0].ids[2] == 3);
    T_OK(r.prompts[1].n_ids == 1 && r.prompts[1].ids[0] == 4);
    T_OK(r.echo && r.logprobs == 2 && r.gen.logprobs && r.gen.top_logprobs == 2);
    T_EQ_INT(r.gen.max_tokens, 0);
    api_completion_release(&r);
    json_decref(j);

    j = body("{\"prompt\":[5,6]}");
    T_OK(api_parse_completion(j, &r, &e));
    T_OK(r.n_prompts == 1 && r.prompts[0].n_ids == 2);
    api_completion_release(&r);
    json_decref(j);

    static const char *const bad[] = {"{}",
                                      "{\"prompt\":[]}",
                                      "{\"prompt\":[[]]}",
                                      "{\"prompt\":[-1]}",
                                      "{\"prompt\":[1.5]}",
                                      "{\"prompt\":\"x\",\"suffix\":\"y\"}",
                                      "{\"prompt\":\"x\",\"best_of\":2}",
                                      "{\"prompt\":\"x\",\"max_tokens\":-1}",
                                      "{\"prompt\":{}}",
                                      "{\"prompt\":[\"a\",1]}",
                                      "{\"prompt\":\"x\",\"logprobs\":true}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        j = body(bad[i]);
        bool ok = api_parse_completion(j, &r, &e);
        if (ok)
            fprintf(stderr, "accepted: %s\n", bad[i]);
        T_OK(!ok && e.status == 400 && e.message[0]);
        api_completion_release(&r);
        json_decref(j);
    }
    j = body("{\"prompt\":\"x\",\"suffix\":\"y\"}");
    T_OK(!api_parse_completion(j, &r, &e));
    T_EQ_STR(e.param, "suffix");
    api_completion_release(&r);
    json_decref(j);
}

/* response_format, grammar, json_schema, tools and tool messages, normalised */
static void test_structured_parse(void)
{
    struct api_error e = {0};
    struct api_chat_req r;
    json_t *j = body("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                     "\"response_format\":{\"type\":\"json_object\"}}");
    T_OK(api_parse_chat(j, &r, &e));
    T_EQ_INT(r.gen.format.kind, API_FMT_JSON_SCHEMA);
    T_EQ_STR(r.gen.format.text, "{\"type\":\"object\"}");
    T_EQ_STR(r.gen.format.param, "response_format");
    T_EQ_INT(r.tool_choice, API_TOOLS_NONE);
    api_chat_release(&r);
    json_decref(j);

    j = body("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"response_format\":{\"type\":"
             "\"json_schema\",\"json_schema\":{\"name\":\"n\",\"strict\":true,\"schema\":"
             "{\"enum\":[1,2]}}}}");
    T_OK(api_parse_chat(j, &r, &e));
    T_OK(r.gen.format.strict);
    T_EQ_STR(r.gen.format.text, "{\"enum\":[1,2]}");
    api_chat_release(&r);
    json_decref(j);

    struct api_completion_req c;
    j = body("{\"prompt\":\"x\",\"grammar\":\"root ::= [a-z]+\"}");
    T_OK(api_parse_completion(j, &c, &e));
    T_EQ_INT(c.gen.format.kind, API_FMT_GBNF);
    T_EQ_STR(c.gen.format.text, "root ::= [a-z]+");
    T_EQ_STR(c.gen.format.param, "grammar");
    api_completion_release(&c);
    json_decref(j);
    j = body("{\"prompt\":\"x\",\"json_schema\":{\"type\":\"integer\"}}");
    T_OK(api_parse_completion(j, &c, &e));
    T_EQ_INT(c.gen.format.kind, API_FMT_JSON_SCHEMA);
    T_EQ_STR(c.gen.format.param, "json_schema");
    api_completion_release(&c);
    json_decref(j);

    /* a tool round trip: arguments become an object, tool_call_id stays */
    j = body("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"},{\"role\":\"assistant\","
             "\"content\":null,\"tool_calls\":[{\"id\":\"call_1\",\"type\":\"function\","
             "\"function\":{\"name\":\"f\",\"arguments\":\"{\\\"a\\\":1}\"}}]},{\"role\":\"tool\","
             "\"tool_call_id\":\"call_1\",\"content\":\"2\"}],\"tools\":[{\"type\":\"function\","
             "\"function\":{\"name\":\"f\",\"parameters\":{\"type\":\"object\"}}},{\"type\":"
             "\"function\",\"function\":{\"name\":\"g\"}}],\"tool_choice\":{\"type\":\"function\","
             "\"function\":{\"name\":\"g\"}},\"parallel_tool_calls\":false}");
    T_OK(api_parse_chat(j, &r, &e));
    T_EQ_INT(r.tool_choice, API_TOOLS_NAMED);
    T_EQ_STR(r.tool_name, "g");
    T_OK(!r.parallel_tool_calls);
    T_EQ_INT((int)json_array_size(r.tools), 2);
    char *m = json_dumps(r.messages, JSON_COMPACT);
    T_EQ_STR(m, "[{\"role\":\"user\",\"content\":\"x\"},{\"role\":\"assistant\",\"content\":\"\","
                "\"tool_calls\":[{\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":"
                "\"f\",\"arguments\":{\"a\":1}}}]},{\"role\":\"tool\",\"content\":\"2\","
                "\"tool_call_id\":\"call_1\"}]");
    free(m);
    api_chat_release(&r);
    json_decref(j);

    j = body(
        "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":[{\"type\":\"function\","
        "\"function\":{\"name\":\"f\"}}]}");
    T_OK(api_parse_chat(j, &r, &e));
    T_EQ_INT(r.tool_choice, API_TOOLS_AUTO);
    T_OK(r.parallel_tool_calls);
    api_chat_release(&r);
    json_decref(j);
}

/* Feed text in pieces of `step` bytes; collect content and calls ("name(args);" per call). */
static void tool_run(enum tool_family f, const char *text, size_t step, char *content, char *calls)
{
    struct tool_stream ts;
    struct tool_out o;
    content[0] = calls[0] = 0;
    tool_stream_init(&ts, f);
    size_t n = strlen(text);
    for (size_t i = 0; i <= n; i += step) {
        bool last = i + step > n;
        size_t k = last ? n - i : step;
        tool_stream_feed(&ts, text + i, k, &o);
        for (int pass = 0; pass < 2; pass++) {
            strncat(content, o.content ? o.content : "", o.content_len);
            for (size_t c = 0; c < o.n_calls; c++) {
                T_OK(strncmp(o.calls[c].id, "call_", 5) == 0 && strlen(o.calls[c].id) == 29);
                strcat(calls, o.calls[c].name);
                strcat(calls, "(");
                strcat(calls, o.calls[c].arguments);
                strcat(calls, ");");
            }
            tool_out_release(&o);
            if (!last)
                break;
            if (pass == 0)
                tool_stream_finish(&ts, &o);
        }
    }
    tool_stream_release(&ts);
}

static void test_tool_calls(void)
{
    T_EQ_INT(tool_family_of(NULL), TOOL_GENERIC);
    T_EQ_INT(tool_family_of("{% for m in messages %}<tool_call>{% endfor %}"), TOOL_HERMES);
    T_EQ_INT(tool_family_of("[TOOL_CALLS] {{ tools }}"), TOOL_MISTRAL);
    T_EQ_INT(tool_family_of("<|start_header_id|>ipython<|end_header_id|>"), TOOL_LLAMA3);
    T_EQ_INT(tool_family_of("<|im_start|>{{ m.content }}"), TOOL_GENERIC);

    static const struct {
        enum tool_family f;
        const char *text, *content, *calls;
    } cases[] = {
        {TOOL_HERMES,
         "Let me look.\n<tool_call>\n{\"name\": \"get\", \"arguments\": {\"city\": \"Oslo\"}}\n"
         "</tool_call>\n<tool_call>\n{\"name\": \"t\", \"arguments\": {}}\n</tool_call>",
         "Let me look.", "get({\"city\":\"Oslo\"});t({});"},
        {TOOL_HERMES, "a  b \n", "a  b \n", ""},
        {TOOL_HERMES, "no calls < here <tool", "no calls < here <tool", ""},
        {TOOL_HERMES, "<tool_call>{\"arguments\": {}}</tool_call>",
         "<tool_call>{\"arguments\": {}}</tool_call>", ""},
        {TOOL_LLAMA3, "<|python_tag|>{\"name\": \"f\", \"parameters\": {\"x\": [1, \"}\"]}}", "",
         "f({\"x\":[1,\"}\"]});"},
        {TOOL_LLAMA3,
         "  {\"type\": \"function\", \"name\": \"f\", \"parameters\": {}}; {\"name\": "
         "\"g\", \"parameters\": {\"a\": \"b\"}}",
         "", "f({});g({\"a\":\"b\"});"},
        {TOOL_LLAMA3, "{\"answer\": 42}", "{\"answer\": 42}", ""},
        {TOOL_LLAMA3, "Hello {world}", "Hello {world}", ""},
        {TOOL_MISTRAL,
         "[TOOL_CALLS][{\"name\": \"f\", \"arguments\": {\"q\": 1}, \"id\": \"abc\"}, "
         "{\"name\": \"g\", \"arguments\": \"{}\"}]",
         "", "f({\"q\":1});g({});"},
        {TOOL_MISTRAL, "[{\"name\": \"f\", \"arguments\": {}}]", "", "f({});"},
        {TOOL_MISTRAL, "[link](x)", "[link](x)", ""},
        {TOOL_GENERIC, "{\"tool_calls\": [{\"name\": \"f\", \"arguments\": {\"a\": \"\\\"}\"}}]}",
         "", "f({\"a\":\"\\\"}\"});"},
        {TOOL_GENERIC, "{\"a\": 1}", "{\"a\": 1}", ""},
        {TOOL_GENERIC, "plain {text}", "plain {text}", ""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        for (size_t step = 1; step <= 64; step *= 4) {
            char content[512], calls[512];
            tool_run(cases[i].f, cases[i].text, step, content, calls);
            if (strcmp(content, cases[i].content) || strcmp(calls, cases[i].calls))
                fprintf(stderr, "case %zu step %zu: '%s' '%s'\n", i, step, content, calls);
            T_EQ_STR(content, cases[i].content);
            T_EQ_STR(calls, cases[i].calls);
        }
    }

    /* templates without tools: a system message describes them; calls become content */
    json_t *msgs =
        json_loads("[{\"role\":\"user\",\"content\":\"hi\"},{\"role\":\"assistant\","
                   "\"content\":\"\",\"tool_calls\":[{\"id\":\"c\",\"type\":\"function\","
                   "\"function\":{\"name\":\"f\",\"arguments\":{\"a\":1}}}]}]",
                   0, NULL);
    json_t *tools = json_loads("[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}]", 0, NULL);
    bool pass = true;
    json_t *out = tool_prompt_messages(TOOL_GENERIC, msgs, tools, API_TOOLS_REQUIRED, NULL, &pass);
    T_OK(!pass);
    T_EQ_INT((int)json_array_size(out), 3);
    T_EQ_STR(json_string_value(json_object_get(json_array_get(out, 0), "role")), "system");
    T_OK(strstr(json_string_value(json_object_get(json_array_get(out, 0), "content")),
                "{\"name\":\"f\"}") != NULL);
    T_EQ_STR(json_string_value(json_object_get(json_array_get(out, 2), "content")),
             "{\"tool_calls\":[{\"name\":\"f\",\"arguments\":{\"a\":1}}]}");
    T_OK(!json_object_get(json_array_get(out, 2), "tool_calls"));
    json_decref(out);
    out = tool_prompt_messages(TOOL_HERMES, msgs, tools, API_TOOLS_AUTO, NULL, &pass);
    T_OK(pass && out == msgs);
    json_decref(out);
    /* no tools in this request: the earlier calls are still written out for a generic template */
    out = tool_prompt_messages(TOOL_GENERIC, msgs, NULL, API_TOOLS_NONE, NULL, &pass);
    T_OK(!pass);
    T_EQ_INT((int)json_array_size(out), 2);
    T_EQ_STR(json_string_value(json_object_get(json_array_get(out, 1), "content")),
             "{\"tool_calls\":[{\"name\":\"f\",\"arguments\":{\"a\":1}}]}");
    json_decref(out);
    /* Mistral: call ids become 9 alphanumerics, the same in the call and in the answer */
    json_t *mm = json_loads("[{\"role\":\"assistant\",\"content\":\"\",\"tool_calls\":[{\"id\":"
                            "\"call_xyz\",\"type\":\"function\",\"function\":{\"name\":\"f\","
                            "\"arguments\":{}}}]},{\"role\":\"tool\",\"tool_call_id\":\"call_xyz\","
                            "\"content\":\"1\"},{\"role\":\"tool\",\"tool_call_id\":\"abcDEF123\","
                            "\"content\":\"2\"}]",
                            0, NULL);
    out = tool_prompt_messages(TOOL_MISTRAL, mm, tools, API_TOOLS_AUTO, NULL, &pass);
    const char *id0 = json_string_value(json_object_get(
        json_array_get(json_object_get(json_array_get(out, 0), "tool_calls"), 0), "id"));
    T_OK(pass && strlen(id0) == 9);
    T_EQ_STR(json_string_value(json_object_get(json_array_get(out, 1), "tool_call_id")), id0);
    T_EQ_STR(json_string_value(json_object_get(json_array_get(out, 2), "tool_call_id")),
             "abcDEF123");
    json_decref(out);
    json_decref(mm);
    json_decref(msgs);
    json_decref(tools);
}

/* The grammar of forced calls accepts each family's syntax with valid arguments, and only that */
static bool gaccepts(struct inf_grammar *g, const char *text)
{
    struct inf_matcher *m = NULL;
    if (inf_matcher_new(g, NULL, &m, NULL) != INF_OK)
        return false;
    bool ok = inf_matcher_accept_bytes(m, text, strlen(text)) && inf_matcher_can_end(m);
    inf_matcher_free(m);
    return ok;
}

static void test_tool_grammar(void)
{
    json_t *tools = json_loads(
        "[{\"type\":\"function\",\"function\":{\"name\":\"get\",\"strict\":true,\"parameters\":"
        "{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\",\"maxLength\":4},"
        "\"n\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":3}},\"required\":[\"city\",\"n\"],"
        "\"additionalProperties\":false}}},{\"type\":\"function\",\"function\":{\"name\":\"t\","
        "\"strict\":true,\"parameters\":{\"type\":\"object\",\"properties\":{},"
        "\"additionalProperties\":false}}}]",
        0, NULL);
    static const struct {
        enum tool_family f;
        const char *only;
        bool parallel;
        const char *good, *bad;
    } cases[] = {
        {TOOL_HERMES, NULL, true,
         "<tool_call>\n{\"name\":\"get\",\"arguments\":{\"city\":\"Oslo\",\"n\":2}}\n</tool_call>\n"
         "<tool_call>\n{\"name\":\"t\",\"arguments\":{}}\n</tool_call>",
         "<tool_call>\n{\"name\":\"get\",\"arguments\":{\"city\":\"Oslo\",\"n\":4}}\n</tool_call>"},
        {TOOL_HERMES, NULL, false, "<tool_call>\n{\"name\":\"t\",\"arguments\":{}}\n</tool_call>",
         "<tool_call>\n{\"name\":\"t\",\"arguments\":{}}\n</tool_call>\n<tool_call>\n{\"name\":"
         "\"t\",\"arguments\":{}}\n</tool_call>"},
        {TOOL_LLAMA3, "get", false, "{\"name\":\"get\",\"parameters\":{\"city\":\"a\",\"n\":1}}",
         "{\"name\":\"t\",\"parameters\":{}}"},
        {TOOL_MISTRAL, NULL, true,
         "[TOOL_CALLS][{\"name\":\"t\",\"arguments\":{}}, {\"name\":\"get\",\"arguments\":"
         "{\"city\":\"\",\"n\":3}}]",
         "[TOOL_CALLS][{\"name\":\"get\",\"arguments\":{\"city\":\"Osloo\",\"n\":3}}]"},
        {TOOL_GENERIC, "t", true, "{\"tool_calls\": [{\"name\":\"t\",\"arguments\":{}}]}",
         "{\"tool_calls\": []}"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct inf_grammar *g = NULL;
        struct inf_error err = {0};
        T_EQ_INT(tool_grammar(cases[i].f, tools, cases[i].only, cases[i].parallel, &g, &err),
                 INF_OK);
        if (!g) {
            fprintf(stderr, "case %zu: %s\n", i, inf_error_message(&err));
            continue;
        }
        T_OK(gaccepts(g, cases[i].good));
        T_OK(!gaccepts(g, cases[i].bad));
        inf_grammar_free(g);
    }
    /* a parameter schema the compiler refuses names the keyword */
    json_t *bad =
        json_loads("[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":"
                   "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"strnig\"}}}}}]",
                   0, NULL);
    struct inf_grammar *g = NULL;
    struct inf_error err = {0};
    T_OK(tool_grammar(TOOL_HERMES, bad, NULL, true, &g, &err) != INF_OK);
    T_OK(strstr(inf_error_message(&err), "type") != NULL);
    json_decref(bad);
    json_decref(tools);
}

static void test_embeddings_and_tools(void)
{
    struct api_error e = {0};
    struct api_embedding_req r;
    json_t *j = body("{\"input\":[\"a\",\"b\"],\"encoding_format\":\"base64\",\"dimensions\":8}");
    T_OK(api_parse_embedding(j, &r, &e));
    T_OK(r.n_inputs == 2 && r.encoding == API_ENC_BASE64 && r.dimensions == 8);
    api_embedding_release(&r);
    json_decref(j);
    j = body("{\"input\":\"\"}");
    T_OK(!api_parse_embedding(j, &r, &e));
    T_EQ_STR(e.param, "input");
    api_embedding_release(&r);
    json_decref(j);
    j = body("{\"input\":\"x\",\"encoding_format\":\"int8\"}");
    T_OK(!api_parse_embedding(j, &r, &e));
    T_EQ_STR(e.param, "encoding_format");
    api_embedding_release(&r);
    json_decref(j);

    struct api_tokenize_req t;
    j = body("{\"content\":\"abc\",\"with_pieces\":true}");
    T_OK(api_parse_tokenize(j, &t, &e));
    T_OK(!t.add_special && t.parse_special && t.with_pieces && t.len == 3);
    api_tokenize_release(&t);
    json_decref(j);

    struct api_detokenize_req d;
    j = body("{\"tokens\":[1,2,70000]}");
    T_OK(api_parse_detokenize(j, &d, &e));
    T_OK(d.n_ids == 3 && d.ids[2] == 70000);
    api_detokenize_release(&d);
    json_decref(j);
    j = body("{\"tokens\":\"1 2\"}");
    T_OK(!api_parse_detokenize(j, &d, &e));
    api_detokenize_release(&d);
    json_decref(j);
}

static void test_helpers(void)
{
    /* RFC 4648 section 10 */
    static const char *const in[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *const out[] = {"",         "Zg==",     "Zm8=",    "Zm9v",
                                      "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    for (int i = 0; i < 7; i++) {
        char *b = api_base64((const unsigned char *)in[i], strlen(in[i]));
        T_EQ_STR(b, out[i]);
        free(b);
    }
    /* 1.0f as little-endian float32 bytes: 00 00 80 3f */
    float one = 1.0f;
    unsigned char le[4];
    memcpy(le, &one, 4);
    char *b = api_base64(le, 4);
    T_EQ_STR(b, "AACAPw==");
    free(b);

    T_OK(api_utf8_valid("h\xc3\xa9llo \xf0\x9f\x98\x80", 11));
    T_OK(!api_utf8_valid("\xc3", 1));
    T_OK(!api_utf8_valid("\xed\xa0\x80", 3)); /* a surrogate */
    T_OK(!api_utf8_valid("\xc0\xaf", 2));     /* overlong */
    size_t n;
    char *s = api_utf8_sanitize("a\xff"
                                "b",
                                3, &n);
    T_EQ_STR(s, "a\xef\xbf\xbd"
                "b");
    T_EQ_INT((int)n, 5);
    free(s);
    json_t *js = api_json_str("x\x80", 2);
    T_OK(js != NULL);
    json_decref(js);

    struct api_error e = {0};
    api_fail(&e, 429, NULL, "slow down %d", 3);
    json_t *err = api_error_json(&e);
    json_t *o = json_object_get(err, "error");
    T_EQ_STR(json_string_value(json_object_get(o, "message")), "slow down 3");
    T_EQ_STR(json_string_value(json_object_get(o, "type")), "rate_limit_error");
    T_OK(json_is_null(json_object_get(o, "param")) && json_is_null(json_object_get(o, "code")));
    json_decref(err);

    char id[30];
    api_random_id(id, 29);
    T_EQ_INT((int)strlen(id), 29);
}

/* keep_alive as Go's time.ParseDuration reads it (its documented forms), names, options */
static void test_ollama(void)
{
    struct {
        const char *json;
        double secs; /* -2: refused */
    } ka[] = {
        {"\"5m\"", 300},
        {"\"1h30m\"", 5400},
        {"\"1.5h\"", 5400},
        {"\"300ms\"", 0.3},
        {"\"2h45m10s\"", 9910},
        {"\"1us\"", 1e-6},
        {"\"1\xc2\xb5s\"", 1e-6},
        {"\"0\"", 0},
        {"\"-1s\"", -1},
        {"\"-1\"", -1},
        {"\"30\"", 30},
        {"600", 600},
        {"0", 0},
        {"-5", -1},
        {"\"5\"", 5},
        {"\"1d\"", -2},
        {"\"m\"", -2},
        {"\"5m x\"", -2},
        {"\"1e3s\"", -2},
        {"\"\"", -2},
        {"true", -2},
        {"\"0x10s\"", -2},
    };
    for (size_t i = 0; i < sizeof(ka) / sizeof(ka[0]); i++) {
        json_error_t je;
        json_t *v = json_loads(ka[i].json, JSON_DECODE_ANY, &je);
        struct api_error e = {0};
        double secs = 0;
        bool given = false;
        bool ok = ollama_parse_keep_alive(v, &secs, &given, &e);
        if (ka[i].secs == -2) {
            T_OK(!ok);
            T_EQ_INT(e.status, 400);
        } else {
            T_OK(ok && given);
            T_NEAR(secs, ka[i].secs, 1e-9);
        }
        json_decref(v);
    }
    T_OK(ollama_name_valid("llama3"));
    T_OK(ollama_name_valid("llama3:8b-instruct-q4_K_M"));
    T_OK(ollama_name_valid("library/llama3.1:latest"));
    T_OK(!ollama_name_valid("../x"));
    T_OK(!ollama_name_valid("a/../b"));
    T_OK(!ollama_name_valid("a/./b"));
    T_OK(!ollama_name_valid("/abs"));
    T_OK(!ollama_name_valid("a:b:c"));
    T_OK(!ollama_name_valid("a:b/c"));
    T_OK(!ollama_name_valid("a b"));
    T_OK(!ollama_name_valid(""));

    /* options: Ollama's defaults, then the values given; wrong types refused */
    struct ollama_opts o;
    struct api_error e = {0};
    T_OK(ollama_parse_options(NULL, &o, &e));
    T_NEAR(o.sampling.temperature, 0.8, 1e-6);
    T_EQ_INT(o.sampling.top_k, 40);
    T_NEAR(o.sampling.top_p, 0.9, 1e-6);
    T_NEAR(o.sampling.repeat_penalty, 1.1, 1e-6);
    T_EQ_INT(o.sampling.penalty_last_n, 64);
    T_EQ_INT(o.max_tokens, -1);
    ollama_opts_release(&o);
    json_t *j =
        body("{\"num_predict\": 7, \"temperature\": 0, \"seed\": 5, \"stop\": [\"a\", \"bb\"], "
             "\"repeat_last_n\": -1, \"mirostat\": 2}");
    T_OK(ollama_parse_options(j, &o, &e));
    T_EQ_INT(o.max_tokens, 7);
    T_NEAR(o.sampling.temperature, 0, 0);
    T_OK(o.seed_given && o.sampling.seed == 5);
    T_EQ_INT(o.n_stop, 2);
    T_EQ_STR(o.stop[1], "bb");
    T_EQ_INT(o.sampling.penalty_last_n, -1);
    ollama_opts_release(&o);
    json_decref(j);
    j = body("{\"top_k\": 2.5}");
    T_OK(!ollama_parse_options(j, &o, &e));
    T_EQ_STR(e.param, "top_k");
    ollama_opts_release(&o);
    json_decref(j);

    /* chat: Ollama's tool calls become OpenAI's, tool results get the ids of their calls */
    j = body(
        "{\"model\": \"m\", \"messages\": [{\"role\": \"user\", \"content\": \"w?\"}, "
        "{\"role\": \"assistant\", \"content\": \"\", \"tool_calls\": [{\"function\": {\"name\": "
        "\"a\", \"arguments\": {\"x\": 1}}}, {\"function\": {\"name\": \"b\", \"arguments\": "
        "{}}}]}, "
        "{\"role\": \"tool\", \"content\": \"2\", \"tool_name\": \"b\"}, {\"role\": \"tool\", "
        "\"content\": \"1\"}], \"format\": \"json\"}");
    json_t *ob = NULL;
    T_OK(ollama_chat_body(j, "model-id", &ob, &e));
    json_t *msgs = json_object_get(ob, "messages");
    json_t *calls = json_object_get(json_array_get(msgs, 1), "tool_calls");
    T_EQ_STR(json_string_value(json_object_get(
                 json_object_get(json_array_get(calls, 0), "function"), "arguments")),
             "{\"x\":1}");
    const char *id_b = json_string_value(json_object_get(json_array_get(calls, 1), "id"));
    const char *id_a = json_string_value(json_object_get(json_array_get(calls, 0), "id"));
    T_EQ_STR(json_string_value(json_object_get(json_array_get(msgs, 2), "tool_call_id")), id_b);
    T_EQ_STR(json_string_value(json_object_get(json_array_get(msgs, 3), "tool_call_id")), id_a);
    T_EQ_STR(json_string_value(json_object_get(json_object_get(ob, "response_format"), "type")),
             "json_object");
    struct api_chat_req q;
    T_OK(api_parse_chat(ob, &q, &e)); /* what the OpenAI handler then takes */
    api_chat_release(&q);
    json_decref(ob);
    json_decref(j);
    /* and back: an OpenAI reply's calls in Ollama's shape (as the ollama client types them) */
    j = body("{\"role\": \"assistant\", \"content\": null, \"tool_calls\": [{\"id\": \"call_1\", "
             "\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"arguments\": "
             "\"{\\\"city\\\": \\\"Paris\\\"}\"}}, {\"id\": \"call_2\", \"type\": \"function\", "
             "\"function\": {\"name\": \"f\", \"arguments\": \"[1]\"}}]}");
    json_t *om = ollama_message(j);
    T_EQ_STR(json_string_value(json_object_get(om, "content")), "");
    json_t *oc = json_object_get(om, "tool_calls");
    T_EQ_INT((int)json_array_size(oc), 2);
    json_t *f0 = json_object_get(json_array_get(oc, 0), "function");
    T_EQ_STR(json_string_value(json_object_get(f0, "name")), "get_weather");
    T_EQ_STR(json_string_value(json_object_get(json_object_get(f0, "arguments"), "city")), "Paris");
    T_OK(json_object_size(json_object_get(json_object_get(json_array_get(oc, 1), "function"),
                                          "arguments")) == 0);
    json_decref(om);
    json_decref(j);
    j = body("{\"model\": \"m\", \"messages\": [{\"role\": \"user\", \"content\": \"x\", "
             "\"images\": [\"aGk=\"]}]}");
    T_OK(!ollama_chat_body(j, "m", &ob, &e));
    T_EQ_STR(e.param, "images");
    json_decref(j);
}

/* Template overrides: the subset of Go's text/template, checked against what Go writes */
static void test_ollama_template(void)
{
    struct {
        const char *tpl, *system, *prompt, *want; /* want NULL: refused */
    } c[] = {
        {"{{ if .System }}<s>{{ .System }}</s>\n{{ end }}U: {{ .Prompt }}\nA: {{ .Response }}", "S",
         "P", "<s>S</s>\nU: P\nA: "},
        {"{{ if .System }}<s>{{ .System }}</s>\n{{ end }}U: {{ .Prompt }}\nA: {{ .Response }}", "",
         "P", "U: P\nA: "},
        {"{{ if .System }}x{{ else }}y{{ end }}", "", "P", "y"},
        {"a  {{- .Prompt -}}  \n b", NULL, "P", "aPb"},
        {"a {{/* note */}}b", NULL, "P", "a b"},
        {"{{if .Prompt}}{{if .System}}1{{else}}2{{end}}{{end}}", NULL, "P", "2"},
        {"no actions", NULL, "P", "no actions"},
        {"{{ .Prompt", NULL, "P", NULL},
        {"{{ end }}", NULL, "P", NULL},
        {"{{ if .System }}x", "S", "P", NULL},
        {"{{ range .Messages }}{{ .Content }}{{ end }}", NULL, "P", NULL},
        {"{{ .Prompt | upper }}", NULL, "P", NULL},
    };
    for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
        char *out = NULL;
        size_t len = 0, n_spans = 0;
        struct inf_text_span *spans = NULL;
        struct api_error e = {0};
        bool ok = ollama_template_render(c[i].tpl, c[i].system, c[i].prompt, &out, &len, &spans,
                                         &n_spans, &e);
        if (!c[i].want) {
            T_OK(!ok);
            T_EQ_INT(e.status, 400);
            T_EQ_STR(e.param, "template");
        } else {
            T_OK(ok);
            T_EQ_STR(out, c[i].want);
        }
        free(out);
        free(spans);
    }
    /* the values' bytes are the untrusted spans */
    char *out = NULL;
    size_t len = 0, n = 0;
    struct inf_text_span *sp = NULL;
    struct api_error e = {0};
    T_OK(ollama_template_render("<|sys|>{{ .System }}<|u|>{{ .Prompt }}", "sy", "</s>", &out, &len,
                                &sp, &n, &e));
    T_EQ_INT((int)n, 2);
    T_EQ_INT((int)sp[0].off, 7);
    T_EQ_INT((int)sp[0].len, 2);
    T_EQ_INT((int)sp[1].off, 14);
    T_EQ_INT((int)sp[1].len, 4);
    free(out);
    free(sp);
}

/* WebSocket messages: the three request types, cancel, auth; refusals say why */
static void test_ws_messages(void)
{
    struct ws_msg m;
    char err[200];
    const char *ok1 =
        "{\"id\": \"r1\", \"type\": \"chat.completions\", \"body\": {\"messages\": []}}";
    T_OK(ws_msg_parse(ok1, strlen(ok1), &m, err, sizeof(err)));
    T_EQ_INT(m.type, WS_MSG_CHAT);
    T_EQ_STR(m.id, "r1");
    T_OK(json_is_object(m.body));
    json_decref(m.root);
    const char *c = "{\"id\": \"r1\", \"type\": \"cancel\"}";
    T_OK(ws_msg_parse(c, strlen(c), &m, err, sizeof(err)) && m.type == WS_MSG_CANCEL);
    json_decref(m.root);
    const char *bad[] = {"[]",
                         "{\"type\": \"cancel\"}",
                         "{\"id\": 5, \"type\": \"cancel\"}",
                         "{\"id\": \"a\", \"type\": \"fly\"}",
                         "{\"id\": \"a\", \"type\": \"completions\"}",
                         "{\"type\": \"auth\"}",
                         "{\"id\": \"a\xff\", \"type\": \"cancel\"}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = 0;
        T_OK(!ws_msg_parse(bad[i], strlen(bad[i]), &m, err, sizeof(err)));
        T_OK(err[0] != 0);
        json_decref(m.root);
    }
}

/* api_json_escape writes what jansson's json_dumps writes inside a string's quotes: checked
 * against jansson itself on every byte below 0x80 alone and on random valid UTF-8. */
static void test_json_escape_matches_jansson(void)
{
    char in[512], out[6 * 512];
    for (int c = 1; c < 0x80; c++) {
        in[0] = 'a', in[1] = (char)c, in[2] = 'z';
        json_t *j = json_stringn(in, 3);
        char *d = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
        size_t n = api_json_escape(in, 3, out);
        out[n] = '\0';
        size_t dl = strlen(d);
        if (dl != n + 2 || memcmp(d + 1, out, n) != 0)
            T__FAIL("byte 0x%02x: jansson %s, ours \"%s\"", c, d, out);
        else
            t__passed++;
        free(d);
        json_decref(j);
    }
    /* random strings of ASCII, controls and 2-4 byte characters */
    uint64_t x = 0x9E3779B97F4A7C15ull;
    static const char *const pieces[] = {"\"",
                                         "\\",
                                         "/",
                                         "\n",
                                         "\t",
                                         "\x01",
                                         "\x1f",
                                         "\x7f",
                                         "a",
                                         " ",
                                         "\xc3\xa9",
                                         "\xe4\xb8\xad",
                                         "\xf0\x9f\x98\x80",
                                         "\xe2\x80\xa8",
                                         "\xef\xbf\xbd",
                                         "<",
                                         "&"};
    for (int t = 0; t < 2000; t++) {
        size_t len = 0;
        int k = (int)(x % 40);
        for (int i = 0; i < k; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            const char *p = pieces[x % (sizeof(pieces) / sizeof(pieces[0]))];
            memcpy(in + len, p, strlen(p));
            len += strlen(p);
        }
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        json_t *j = json_stringn(in, len);
        char *d = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
        size_t n = api_json_escape(in, len, out);
        if (!d || strlen(d) != n + 2 || memcmp(d + 1, out, n) != 0) {
            T__FAIL("random string %d differs from jansson's", t);
        } else {
            t__passed++;
        }
        free(d);
        json_decref(j);
    }
}

int main(void)
{
    T_RUN(test_json_escape_matches_jansson);
    T_RUN(test_chat_defaults);
    T_RUN(test_chat_refusals);
    T_RUN(test_completion_prompts);
    T_RUN(test_embeddings_and_tools);
    T_RUN(test_structured_parse);
    T_RUN(test_tool_calls);
    T_RUN(test_tool_grammar);
    T_RUN(test_helpers);
    T_RUN(test_ollama);
    T_RUN(test_ollama_template);
    T_RUN(test_ws_messages);
    T_DONE();
}
