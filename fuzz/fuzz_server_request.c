/*
 * fuzz_server_request.c - libFuzzer target for the server's request validation (no model).
 *
 * Input: one selector byte (mod 6: chat, completions, embeddings, tokenize, detokenize,
 * apply-template), then the request body. The body goes through api_parse_body and the
 * endpoint's validator exactly as the HTTP handlers call them; accepted chats are rendered with
 * the ChatML template and tokenized with a small byte-fallback SPM vocabulary built here, and
 * every error is turned into the OpenAI error object and serialised. Any status is fine; a
 * crash, a leak, a sanitizer report, an error without a message, or an error object that is not
 * valid JSON is not.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inferno/template.h"
#include "inferno/tokenizer.h"
#include "server/api.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct inf_tokenizer *tok;

/* <unk> <s> </s>, the 256 byte tokens, and a few merged pieces. */
static struct inf_tokenizer *make_tokenizer(void)
{
    static char bytes[256][8];
    static const char *texts[300];
    static float scores[300];
    static int32_t types[300];
    static const char *const words[] = {
        "\xe2\x96\x81", "\xe2\x96\x81the", "im", "_start", "<", "|", ">",
        "user",         "assistant",       "\n"};
    size_t n = 0;
    texts[n] = "<unk>";
    types[n++] = INF_TOKEN_TYPE_UNKNOWN;
    texts[n] = "<s>";
    types[n++] = INF_TOKEN_TYPE_CONTROL;
    texts[n] = "</s>";
    types[n++] = INF_TOKEN_TYPE_CONTROL;
    for (int b = 0; b < 256; b++) {
        snprintf(bytes[b], sizeof(bytes[b]), "<0x%02X>", b);
        texts[n] = bytes[b];
        types[n++] = INF_TOKEN_TYPE_BYTE;
    }
    for (size_t w = 0; w < sizeof(words) / sizeof(words[0]); w++) {
        scores[n] = -(float)w;
        texts[n] = words[w];
        types[n++] = INF_TOKEN_TYPE_NORMAL;
    }
    struct inf_vocab_desc d;
    inf_vocab_desc_init(&d);
    d.model = "llama";
    d.n_tokens = n;
    d.tokens = texts;
    d.scores = scores;
    d.token_types = types;
    struct inf_tokenizer *t = NULL;
    struct inf_error err = {0};
    if (inf_tokenizer_new(&d, &t, &err) != INF_OK)
        abort();
    return t;
}

static void check_error(const struct api_error *e)
{
    if (e->status < 400 || e->status > 599 || !e->message[0])
        abort();
    json_t *j = api_error_json(e);
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    if (!s)
        abort();
    free(s);
    json_decref(j);
}

static void render_and_tokenize(json_t *messages)
{
    char *msgs = json_dumps(messages, JSON_COMPACT);
    if (!msgs)
        abort();
    struct inf_chat_params cp = {.messages_json = msgs, .add_generation_prompt = true};
    const char *tpl = inf_template_default_chatml();
    struct inf_rendered rd;
    struct inf_error err = {0};
    if (inf_chat_render(tpl, strlen(tpl), &cp, NULL, &rd, &err) == INF_OK) {
        /* as the server does: no control token out of the messages' text */
        struct inf_tokens t = {0};
        if (inf_tok_encode_untrusted(tok, rd.text, rd.len,
                                     INF_TOK_ADD_SPECIAL | INF_TOK_PARSE_SPECIAL, rd.untrusted,
                                     rd.n_untrusted, &t, &err) == INF_EINVAL)
            abort(); /* the ranges a render gives are always valid */
        inf_tokens_release(&t);
    }
    inf_rendered_release(&rd);
    free(msgs);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 256 * 1024)
        return 0;
    if (!tok)
        tok = make_tokenizer();
    int which = data[0] % 6;
    struct api_error e = {0};
    json_t *body = api_parse_body((const char *)data + 1, size - 1, &e);
    if (!body) {
        check_error(&e);
        return 0;
    }
    bool ok = false;
    switch (which) {
    case 0: {
        struct api_chat_req r;
        ok = api_parse_chat(body, &r, &e);
        if (ok) {
            if (r.gen.n < 1 || r.gen.n > API_MAX_N || r.gen.n_stop > SRV_MAX_STOP ||
                r.gen.top_logprobs > SRV_MAX_TOP_LOGPROBS || !json_is_array(r.messages))
                abort();
            render_and_tokenize(r.messages);
        }
        api_chat_release(&r);
        break;
    }
    case 1: {
        struct api_completion_req r;
        ok = api_parse_completion(body, &r, &e);
        if (ok) {
            if (r.n_prompts < 1 || r.gen.max_tokens < 0)
                abort();
            for (size_t i = 0; i < r.n_prompts; i++) {
                struct inf_tokens t = {0};
                struct inf_error err = {0};
                if (r.prompts[i].text)
                    inf_tok_encode(tok, r.prompts[i].text, r.prompts[i].len,
                                   INF_TOK_ADD_SPECIAL | INF_TOK_PARSE_SPECIAL, &t, &err);
                else if (r.prompts[i].n_ids < 1)
                    abort();
                inf_tokens_release(&t);
            }
        }
        api_completion_release(&r);
        break;
    }
    case 2: {
        if ((data[0] / 6) % 2) { /* /v1/rerank (selector bytes 8, 20, ...: the old seeds keep
                                    their meaning) */
            struct api_rerank_req r;
            ok = api_parse_rerank(body, &r, &e);
            if (ok && (r.n_docs < 1 || !r.query || r.top_n < 0))
                abort();
            for (size_t i = 0; ok && i < r.n_docs; i++)
                if (!r.docs[i].text)
                    abort();
            api_rerank_release(&r);
            break;
        }
        struct api_embedding_req r;
        ok = api_parse_embedding(body, &r, &e);
        if (ok && r.n_inputs < 1)
            abort();
        api_embedding_release(&r);
        break;
    }
    case 3: {
        struct api_tokenize_req r;
        ok = api_parse_tokenize(body, &r, &e);
        api_tokenize_release(&r);
        break;
    }
    case 4: {
        struct api_detokenize_req r;
        ok = api_parse_detokenize(body, &r, &e);
        if (ok && r.n_ids) {
            for (size_t i = 0; i < r.n_ids; i++)
                r.ids[i] %= (inf_token)inf_tok_info(tok)->n_tokens;
            char *out = NULL;
            size_t len = 0;
            struct inf_error err = {0};
            if (inf_tok_decode(tok, r.ids, r.n_ids, 0, &out, &len, &err) == INF_OK) {
                json_t *s = api_json_str(out, len);
                if (!s)
                    abort();
                json_decref(s);
            }
            free(out);
        }
        api_detokenize_release(&r);
        break;
    }
    default: {
        struct api_template_req r;
        ok = api_parse_template(body, &r, &e);
        if (ok)
            render_and_tokenize(r.messages);
        api_template_release(&r);
        break;
    }
    }
    if (!ok)
        check_error(&e);
    json_decref(body);
    return 0;
}
