/* cmd_run.c - `inferno run`: generate text from a prompt, streaming it to stdout. */
#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/cli_engine.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/files.h"
#include "inferno/engine.h"
#include "inferno/log.h"
#include "inferno/tokenizer.h"

const struct inf_cli_opt inf_cmd_run_opts[] = {
    {"model", 'm', INF_OPT_VALUE, "MODEL", "GGUF model (path or name in models_dir)", NULL},
    {"prompt", 'p', INF_OPT_VALUE, "TEXT", "the prompt", NULL},
    {"file", 'f', INF_OPT_VALUE, "FILE", "read the prompt from FILE (at most 64 MiB)", NULL},
    {"n-predict", 'n', INF_OPT_VALUE, "N", "tokens to generate (default 256; -1 = until the end)",
     NULL},
    INF_CLI_SAMPLER_OPTS,
    {"chat", 0, INF_OPT_FLAG, NULL, "apply the chat template to the prompt as a user message",
     NULL},
    {"system", 0, INF_OPT_VALUE, "TEXT", "system message (with --chat)", NULL},
    {"stop", 0, INF_OPT_LIST, "TEXT", "stop when TEXT is generated (repeatable)", NULL},
    {"ignore-eos", 0, INF_OPT_FLAG, NULL, "keep generating past end-of-generation tokens", NULL},
    {"parse-special", 0, INF_OPT_FLAG, NULL,
     "parse control tokens written in the prompt (with --chat: in the message; unsafe)", NULL},
    {"ctx", 'c', INF_OPT_VALUE, "N", "context size", "backend.context_size"},
    {"threads", 't', INF_OPT_VALUE, "N", "threads", "backend.threads"},
    {"batch-size", 'b', INF_OPT_VALUE, "N", "prompt tokens per forward pass", "backend.batch_size"},
    {"kv-type", 0, INF_OPT_VALUE, "TYPE", "KV cache type: f16, f32, q8_0", "backend.kv_type"},
    {"deterministic", 0, INF_OPT_VALUE, "MODE",
     "batch-invariant logits: on, or off/auto (off: one sequence)", "backend.deterministic"},
    {"json", 0, INF_OPT_FLAG, NULL, "print one JSON object (ids, text, finish reason, timings)",
     NULL},
    {"ids", 0, INF_OPT_FLAG, NULL, "print the generated token ids instead of text", NULL},
    INF_CLI_GRAMMAR_OPTS,
    {NULL, 0, 0, NULL, NULL, NULL},
};

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
}

/* A prompt file (or stdin) may hold at most this much: far more than any context takes, but a
 * bound, so that `-f /dev/zero` stops instead of growing without end. */
#define PROMPT_FILE_MAX ((size_t)64 << 20)

/*
 * Generated text on its way out: bytes that may still turn into a stop string are held back;
 * the rest goes to stdout (show) and, for --json, into a growing copy (keep).
 */
struct stopper {
    const char *const *stops;
    int n_stops;
    bool show, keep;
    char *buf; /* held back */
    size_t len, cap;
    char *text; /* everything emitted, when keep */
    size_t text_len, text_cap;
    bool hit;
};

static void stopper_emit(struct stopper *s, const char *p, size_t n)
{
    if (!n)
        return;
    if (s->show) {
        fwrite(p, 1, n, stdout);
        fflush(stdout);
    }
    if (s->keep)
        (void)inf__append(&s->text, &s->text_len, &s->text_cap, p, n, 256); /* best effort */
}

/* Add text; emit what can no longer be part of a stop string. */
static void stopper_feed(struct stopper *s, const char *text, size_t len)
{
    if (!inf__append(&s->buf, &s->len, &s->cap, text, len, 256))
        return;
    size_t emit = s->len;
    for (int i = 0; i < s->n_stops && !s->hit; i++) {
        size_t sl = strlen(s->stops[i]);
        if (!sl)
            continue;
        for (size_t p = 0; p + sl <= s->len; p++)
            if (memcmp(s->buf + p, s->stops[i], sl) == 0) {
                s->hit = true;
                emit = p;
                break;
            }
        if (s->hit)
            break;
        /* keep a suffix that is a prefix of the stop string */
        for (size_t k = sl - 1; k > 0; k--)
            if (k <= s->len && memcmp(s->buf + s->len - k, s->stops[i], k) == 0) {
                if (s->len - k < emit)
                    emit = s->len - k;
                break;
            }
    }
    stopper_emit(s, s->buf, emit);
    if (s->hit) {
        s->len = 0;
    } else {
        memmove(s->buf, s->buf + emit, s->len - emit);
        s->len -= emit;
    }
}

int inf_cmd_run(struct inf_cli *cli, struct inf_cli_args *args)
{
    struct inf_model *model = NULL;
    struct inf_context *ctx = NULL;
    struct inf_sampler *smp = NULL;
    struct inf_cli_grammar grammar = {0};
    struct inf_tokens prompt_ids, gen_ids;
    struct inf_error err = {0};
    struct inf_sampler_params sp;
    char *prompt = NULL;
    struct inf_rendered templated = {0};
    size_t prompt_len = 0;
    long long n_predict = 256;
    const char *finish = "length";
    int rc;
    bool json = inf_cli_has(args, "json"), ids = inf_cli_has(args, "ids");

    inf_tokens_init(&prompt_ids);
    inf_tokens_init(&gen_ids);
    if ((rc = inf_cli_sampler_params(cli, args, &sp)))
        return rc;
    if (inf_cli_has(args, "n-predict") &&
        !inf_cli_int(cli, args, "n-predict", -1, 1 << 30, &n_predict))
        return INF_EXIT_USAGE;
    if (inf_cli_has(args, "prompt") && inf_cli_has(args, "file")) {
        inf_cli_errorf(cli, "give the prompt with -p or -f, not both");
        return INF_EXIT_USAGE;
    }
    if (inf_cli_has(args, "prompt")) {
        prompt = strdup(inf_cli_value(args, "prompt"));
        prompt_len = prompt ? strlen(prompt) : 0;
    } else {
        const char *path = inf_cli_value(args, "file");
        FILE *f = path ? fopen(path, "rb") : stdin;
        if (!f) {
            inf_cli_errorf(cli, "cannot open '%s': %s", path, strerror(errno));
            return INF_EXIT_FAIL;
        }
        if (!path && isatty(fileno(stdin)))
            fprintf(stderr, "(reading the prompt from stdin; end it with Ctrl-D)\n");
        prompt = inf__read_stream(f, PROMPT_FILE_MAX, &prompt_len);
        int e = errno;
        if (path)
            fclose(f);
        if (!prompt && e == EFBIG) {
            inf_cli_errorf(cli, "the prompt file '%s' is larger than %zu MiB",
                           path ? path : "stdin", PROMPT_FILE_MAX >> 20);
            return INF_EXIT_FAIL;
        }
        if (!prompt) {
            inf_cli_errorf(cli, "cannot read the prompt from '%s': %s", path ? path : "stdin",
                           strerror(e));
            return INF_EXIT_FAIL;
        }
    }
    if (!prompt) {
        inf_cli_errorf(cli, "out of memory reading the prompt");
        return INF_EXIT_FAIL;
    }
    if ((rc = inf_cli_load_model(cli, args, &model)))
        goto out;
    rc = INF_EXIT_FAIL;
    const struct inf_tokenizer *tok = inf_model_tokenizer(model);
    if (inf_cli_has(args, "chat")) {
        json_t *msgs = json_array();
        if (inf_cli_has(args, "system"))
            json_array_append_new(msgs, json_pack("{s:s, s:s}", "role", "system", "content",
                                                  inf_cli_value(args, "system")));
        json_array_append_new(
            msgs, json_pack("{s:s, s:s%}", "role", "user", "content", prompt, prompt_len));
        int r = inf_cli_chat_prompt(cli, model, msgs, true, &templated);
        json_decref(msgs);
        if (r)
            goto out;
    }
    if (templated.text ? inf_cli_tokenize_chat(cli, model, &templated,
                                               inf_cli_has(args, "parse-special"), &prompt_ids)
                       : inf_cli_tokenize_prompt(cli, model, prompt, prompt_len, false,
                                                 inf_cli_has(args, "parse-special"), &prompt_ids))
        goto out;
    if (prompt_ids.n == 0) {
        inf_cli_errorf(cli, "the prompt is empty");
        goto out;
    }
    struct inf_context_params cp = inf_cli_context_params(cli);
    if (inf_context_new(model, &cp, &ctx, &err) != INF_OK) {
        inf_cli_errorf(cli, "%s", inf_error_message(&err));
        goto out;
    }
    const uint32_t n_ctx = inf_context_n_ctx(ctx);
    if (prompt_ids.n >= n_ctx) {
        inf_cli_errorf(cli, "the prompt has %zu tokens; the context holds %u", prompt_ids.n, n_ctx);
        goto out;
    }
    struct inf_model_info info;
    inf_model_get_info(model, &info);
    if (inf_sampler_new(&sp, info.n_vocab, &smp, &err) != INF_OK) {
        inf_cli_errorf(cli, "%s", inf_error_message(&err));
        goto out;
    }
    for (size_t i = 0; i < prompt_ids.n; i++)
        inf_sampler_accept(smp, prompt_ids.ids[i]);
    if (inf_cli_grammar_open(cli, args, tok, info.n_vocab, &grammar))
        goto out;

    /* the prompt in one call (split into n_batch chunks inside), logits for the last token */
    int32_t *pos = malloc(prompt_ids.n * sizeof(int32_t));
    int8_t *want = calloc(prompt_ids.n, 1);
    if (!pos || !want) {
        free(pos);
        free(want);
        inf_cli_errorf(cli, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < prompt_ids.n; i++)
        pos[i] = (int32_t)i;
    want[prompt_ids.n - 1] = 1;
    struct inf_batch batch = {(int32_t)prompt_ids.n, prompt_ids.ids, pos, NULL, want};
    struct sigaction sa, old_sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_sigint;
    sigaction(SIGINT, &sa, &old_sa);
    inf_status st = inf_decode(ctx, &batch, &err);
    free(pos);
    free(want);
    if (st) {
        inf_cli_errorf(cli, "%s", inf_error_message(&err));
        goto out_sig;
    }
    const float *logits = inf_get_logits_ith(ctx, (int32_t)prompt_ids.n - 1);
    /* the context files a one-token decode under generation; a one-token prompt is a prompt */
    struct inf_timings tm_prompt;
    inf_context_timings(ctx, &tm_prompt);

    struct inf_tok_stream stream;
    inf_tok_stream_init(&stream, tok, 0);
    int n_stops = 0;
    const char *const *stops = inf_cli_values(args, "stop", &n_stops);
    struct stopper stopper = {
        .stops = stops, .n_stops = n_stops, .show = !json && !ids, .keep = json};
    int32_t n_past = (int32_t)prompt_ids.n;
    double t_gen0 = inf__now_ms();
    bool failed = false; /* sampling or decoding failed: what came before is shown, exit 1 */
    for (long long i = 0; n_predict < 0 || i < n_predict; i++) {
        if (interrupted) {
            finish = "interrupted";
            break;
        }
        inf_token t = inf_sampler_sample(smp, inf_cli_grammar_mask(&grammar, logits));
        if (t == INF_TOKEN_NONE) {
            inf_cli_errorf(cli, "%s",
                           grammar.m && *inf_matcher_errmsg(grammar.m)
                               ? inf_matcher_errmsg(grammar.m)
                               : inf_sampler_errmsg(smp));
            failed = true;
            finish = "error";
            break;
        }
        inf_cli_grammar_accept(&grammar, t);
        if (inf_tok_is_eog(tok, t) && (grammar.m || !inf_cli_has(args, "ignore-eos"))) {
            finish = "stop";
            break;
        }
        inf_sampler_accept(smp, t);
        inf_tokens_push(&gen_ids, t);
        if (ids && !json) {
            printf("%s%d", gen_ids.n > 1 ? " " : "", t);
            fflush(stdout);
        }
        const char *piece;
        size_t plen;
        if (inf_tok_stream_push(&stream, t, &piece, &plen, &err) == INF_OK && plen)
            stopper_feed(&stopper, piece, plen);
        if (stopper.hit || inf_cli_grammar_done(&grammar)) {
            finish = "stop";
            break;
        }
        if ((uint32_t)n_past + 1 >= n_ctx) {
            finish = "length";
            break;
        }
        int8_t one = 1;
        struct inf_batch next = {1, &t, &n_past, NULL, &one};
        if (inf_decode(ctx, &next, &err) != INF_OK) {
            inf_cli_errorf(cli, "%s", inf_error_message(&err));
            failed = true;
            finish = "error";
            break;
        }
        n_past++;
        logits = inf_get_logits_ith(ctx, 0);
    }
    if (!stopper.hit) {
        const char *piece;
        size_t plen;
        if (inf_tok_stream_flush(&stream, &piece, &plen, &err) == INF_OK && plen)
            stopper_feed(&stopper, piece, plen);
        /* whatever was held for a possible stop string is text after all */
        stopper_emit(&stopper, stopper.buf, stopper.len);
    }
    double gen_ms = inf__now_ms() - t_gen0;
    inf_tok_stream_release(&stream);
    free(stopper.buf);

    struct inf_timings tm;
    inf_context_timings(ctx, &tm);
    /* counts that agree with the id lists: the prompt decode, then the generation decodes */
    tm.prompt_ms = tm_prompt.prompt_ms + tm_prompt.gen_ms;
    tm.gen_ms = tm.gen_ms - tm_prompt.gen_ms;
    const int64_t n_gen_decoded = tm.n_gen - tm_prompt.n_gen; /* the rate is per decode */
    tm.n_prompt = (int64_t)prompt_ids.n;
    tm.n_gen = (int64_t)gen_ids.n;
    double pp_ts = tm.prompt_ms > 0 ? 1e3 * (double)tm.n_prompt / tm.prompt_ms : 0;
    double tg_ts = tm.gen_ms > 0 ? 1e3 * (double)n_gen_decoded / tm.gen_ms : 0;
    if (json) {
        json_t *pj = json_array(), *gj = json_array();
        for (size_t i = 0; i < prompt_ids.n; i++)
            json_array_append_new(pj, json_integer(prompt_ids.ids[i]));
        for (size_t i = 0; i < gen_ids.n; i++)
            json_array_append_new(gj, json_integer(gen_ids.ids[i]));
        json_t *o =
            json_pack("{s:o, s:o, s:o, s:s, s:{s:f, s:f, s:I, s:f, s:I, s:f, s:f, s:f}}",
                      "prompt_ids", pj, "generated_ids", gj, "text",
                      json_stringn_nocheck(stopper.text ? stopper.text : "", stopper.text_len),
                      "finish_reason", finish, "timings", "load_ms", tm.load_ms, "prompt_ms",
                      tm.prompt_ms, "prompt_tokens", (json_int_t)tm.n_prompt, "gen_ms", tm.gen_ms,
                      "gen_tokens", (json_int_t)tm.n_gen, "prompt_tokens_per_s", pp_ts,
                      "gen_tokens_per_s", tg_ts, "wall_gen_ms", gen_ms);
        char *s = o ? json_dumps(o, JSON_ENSURE_ASCII) : NULL;
        if (s)
            printf("%s\n", s);
        free(s);
        json_decref(o);
    } else {
        if (ids || gen_ids.n)
            printf("\n");
    }
    free(stopper.text);
    fflush(stdout);
    fprintf(stderr,
            "\nprompt: %lld tokens in %.1f ms (%.2f t/s) | generation: %lld tokens in %.1f ms "
            "(%.2f t/s) | load %.0f ms | finish: %s\n",
            (long long)tm.n_prompt, tm.prompt_ms, pp_ts, (long long)tm.n_gen, tm.gen_ms, tg_ts,
            tm.load_ms, finish);
    rc = failed ? INF_EXIT_FAIL : INF_EXIT_OK;
out_sig:
    sigaction(SIGINT, &old_sa, NULL);
out:
    inf_cli_grammar_close(&grammar);
    inf_sampler_free(smp);
    inf_context_free(ctx);
    inf_model_free(model);
    inf_tokens_release(&prompt_ids);
    inf_tokens_release(&gen_ids);
    free(prompt);
    inf_rendered_release(&templated);
    return rc;
}
