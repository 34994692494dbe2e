/*
 * cmd_chat.c - `inferno chat`: an interactive conversation in the terminal.
 *
 * Each turn renders the chat template over the whole conversation, tokenizes it, and decodes
 * only the tokens after the longest prefix already in the KV cache, so the history is never
 * processed twice. Line editing and history come from libedit; a line ending in '\' continues
 * on the next line. Commands: /system TEXT, /clear, /save FILE, /load FILE, /stats, /quit.
 */
#include <editline/readline.h>
#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/cli_engine.h"
#include "inferno/engine.h"
#include "inferno/tokenizer.h"

const struct inf_cli_opt inf_cmd_chat_opts[] = {
    {"model", 'm', INF_OPT_VALUE, "MODEL", "GGUF model (path or name in models_dir)", NULL},
    {"system", 0, INF_OPT_VALUE, "TEXT", "system message", NULL},
    {"n-predict", 'n', INF_OPT_VALUE, "N", "most tokens per reply (default 1024)", NULL},
    INF_CLI_SAMPLER_OPTS,
    {"ctx", 'c', INF_OPT_VALUE, "N", "context size", "backend.context_size"},
    {"threads", 't', INF_OPT_VALUE, "N", "threads", "backend.threads"},
    {"kv-type", 0, INF_OPT_VALUE, "TYPE", "KV cache type", "backend.kv_type"},
    {"deterministic", 0, INF_OPT_VALUE, "MODE",
     "batch-invariant logits: on, or off/auto (off: one sequence)", "backend.deterministic"},
    {"parse-special", 0, INF_OPT_FLAG, NULL,
     "control tokens typed in messages act as control tokens (unsafe)", NULL},
    INF_CLI_GRAMMAR_OPTS,
    {NULL, 0, 0, NULL, NULL, NULL},
};

static volatile sig_atomic_t stop_reply;

static void on_sigint(int sig)
{
    (void)sig;
    stop_reply = 1;
}

struct chat {
    struct inf_cli *cli;
    struct inf_model *model;
    struct inf_context *ctx;
    const struct inf_tokenizer *tok;
    struct inf_sampler *smp;
    struct inf_cli_grammar grammar; /* every reply starts at the grammar's start */
    json_t *messages;
    bool parse_special;       /* --parse-special: control tokens in messages are honoured */
    struct inf_tokens cached; /* the tokens whose K/V are in the cache, in order */
    long long n_predict;
    long long turns, reused, processed;
};

/* Bring the cache to hold exactly ids[0..n): keep the common prefix, decode the rest. */
static int sync_cache(struct chat *c, const inf_token *ids, size_t n, const float **logits)
{
    struct inf_error err = {0};
    size_t keep = 0;
    while (keep < c->cached.n && keep < n && c->cached.ids[keep] == ids[keep])
        keep++;
    if (keep == n && keep > 0)
        keep--; /* re-decode the last token to get its logits */
    keep = (size_t)inf_kv_seq_resume_max(c->ctx, 0, (int32_t)keep);
    inf_kv_seq_rm(c->ctx, 0, (int32_t)keep, -1);
    c->cached.n = keep;
    c->reused += (long long)keep;
    size_t todo = n - keep;
    int32_t *pos = malloc(todo * sizeof(int32_t));
    int8_t *want = calloc(todo, 1);
    if (!pos || !want) {
        free(pos);
        free(want);
        return -1;
    }
    for (size_t i = 0; i < todo; i++)
        pos[i] = (int32_t)(keep + i);
    want[todo - 1] = 1;
    struct inf_batch b = {(int32_t)todo, ids + keep, pos, NULL, want};
    inf_status st = inf_decode(c->ctx, &b, &err);
    free(pos);
    free(want);
    if (st) {
        inf_cli_errorf(c->cli, "%s", inf_error_message(&err));
        return -1;
    }
    for (size_t i = keep; i < n; i++)
        inf_tokens_push(&c->cached, ids[i]);
    c->processed += (long long)todo;
    *logits = inf_get_logits_ith(c->ctx, (int32_t)todo - 1);
    return 0;
}

static int reply(struct chat *c)
{
    struct inf_rendered prompt = {0};
    struct inf_tokens ids;
    struct inf_error err = {0};
    const float *logits;
    int rc = -1;

    inf_tokens_init(&ids);
    if (inf_cli_chat_prompt(c->cli, c->model, c->messages, true, &prompt) ||
        inf_cli_tokenize_chat(c->cli, c->model, &prompt, c->parse_special, &ids))
        goto out;
    uint32_t n_ctx = inf_context_n_ctx(c->ctx);
    if (ids.n + 1 >= n_ctx) {
        inf_cli_errorf(c->cli, "the conversation has %zu tokens; the context holds %u (/clear)",
                       ids.n, n_ctx);
        goto out;
    }
    if (sync_cache(c, ids.ids, ids.n, &logits))
        goto out;
    if (c->grammar.m)
        inf_matcher_reset(c->grammar.m);

    struct inf_tok_stream stream;
    inf_tok_stream_init(&stream, c->tok, INF_TOK_STREAM_STRIP_FIRST_SPACE);
    size_t cap = 256, len = 0;
    char *text = malloc(cap);
    stop_reply = 0;
    for (long long i = 0; i < c->n_predict && text; i++) {
        if (stop_reply)
            break;
        inf_token t = inf_sampler_sample(c->smp, inf_cli_grammar_mask(&c->grammar, logits));
        if (t == INF_TOKEN_NONE) {
            /* the reply so far is kept */
            inf_cli_errorf(c->cli, "%s",
                           c->grammar.m && *inf_matcher_errmsg(c->grammar.m)
                               ? inf_matcher_errmsg(c->grammar.m)
                               : inf_sampler_errmsg(c->smp));
            break;
        }
        if (inf_tok_is_eog(c->tok, t))
            break;
        inf_cli_grammar_accept(&c->grammar, t);
        inf_sampler_accept(c->smp, t);
        const char *piece;
        size_t plen;
        if (inf_tok_stream_push(&stream, t, &piece, &plen, &err) == INF_OK && plen) {
            fwrite(piece, 1, plen, stdout);
            fflush(stdout);
            if (len + plen + 1 > cap) {
                char *nt = realloc(text, (len + plen + 1) * 2);
                if (!nt)
                    break;
                text = nt;
                cap = (len + plen + 1) * 2;
            }
            memcpy(text + len, piece, plen);
            len += plen;
        }
        int32_t p = (int32_t)c->cached.n;
        if ((uint32_t)p + 1 >= n_ctx)
            break;
        int8_t one = 1;
        struct inf_batch b = {1, &t, &p, NULL, &one};
        if (inf_decode(c->ctx, &b, &err) != INF_OK) {
            inf_cli_errorf(c->cli, "%s", inf_error_message(&err));
            break;
        }
        inf_tokens_push(&c->cached, t);
        logits = inf_get_logits_ith(c->ctx, 0);
        if (inf_cli_grammar_done(&c->grammar))
            break;
    }
    const char *piece;
    size_t plen;
    if (inf_tok_stream_flush(&stream, &piece, &plen, &err) == INF_OK && plen && text &&
        len + plen < cap) {
        fwrite(piece, 1, plen, stdout);
        memcpy(text + len, piece, plen);
        len += plen;
    }
    inf_tok_stream_release(&stream);
    printf("\n");
    if (text) {
        json_array_append_new(c->messages,
                              json_pack("{s:s, s:s%}", "role", "assistant", "content", text, len));
        free(text);
    }
    c->turns++;
    rc = 0;
out:
    inf_rendered_release(&prompt);
    inf_tokens_release(&ids);
    return rc;
}

/* Read one message; lines ending in '\' continue. NULL at end of input. */
static char *read_message(void)
{
    char *acc = NULL;
    size_t len = 0;
    for (;;) {
        char *line = readline(acc ? "... " : "> ");
        if (!line)
            return acc;
        size_t l = strlen(line);
        bool more = l > 0 && line[l - 1] == '\\';
        if (more)
            line[--l] = '\0';
        char *n = realloc(acc, len + l + 2);
        if (!n) {
            free(line);
            free(acc);
            return NULL;
        }
        acc = n;
        memcpy(acc + len, line, l);
        len += l;
        if (more)
            acc[len++] = '\n';
        acc[len] = '\0';
        free(line);
        if (!more)
            return acc;
    }
}

static void set_system(struct chat *c, const char *text)
{
    json_t *first = json_array_get(c->messages, 0);
    const char *role = json_string_value(json_object_get(first, "role"));
    json_t *msg = json_pack("{s:s, s:s}", "role", "system", "content", text);
    if (role && strcmp(role, "system") == 0)
        json_array_set_new(c->messages, 0, msg);
    else
        json_array_insert_new(c->messages, 0, msg);
}

int inf_cmd_chat(struct inf_cli *cli, struct inf_cli_args *args)
{
    struct chat c;
    struct inf_error err = {0};
    struct inf_sampler_params sp;
    int rc;

    memset(&c, 0, sizeof(c));
    c.cli = cli;
    c.n_predict = 1024;
    c.parse_special = inf_cli_has(args, "parse-special");
    inf_tokens_init(&c.cached);
    if ((rc = inf_cli_sampler_params(cli, args, &sp)))
        return rc;
    if (inf_cli_has(args, "n-predict") &&
        !inf_cli_int(cli, args, "n-predict", 1, 1 << 30, &c.n_predict))
        return INF_EXIT_USAGE;
    if ((rc = inf_cli_load_model(cli, args, &c.model)))
        return rc;
    rc = INF_EXIT_FAIL;
    c.tok = inf_model_tokenizer(c.model);
    struct inf_context_params cp = inf_cli_context_params(cli);
    struct inf_model_info info;
    inf_model_get_info(c.model, &info);
    if (inf_context_new(c.model, &cp, &c.ctx, &err) != INF_OK ||
        inf_sampler_new(&sp, info.n_vocab, &c.smp, &err) != INF_OK) {
        inf_cli_errorf(cli, "%s", inf_error_message(&err));
        goto out;
    }
    if ((rc = inf_cli_grammar_open(cli, args, c.tok, info.n_vocab, &c.grammar))) {
        goto out;
    }
    rc = INF_EXIT_FAIL;
    c.messages = json_array();
    if (inf_cli_has(args, "system"))
        set_system(&c, inf_cli_value(args, "system"));
    struct sigaction sa, old;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_sigint;
    sigaction(SIGINT, &sa, &old);
    fprintf(stderr,
            "inferno chat: %s (%d layers, context %u). /system TEXT, /clear, /save FILE, "
            "/load FILE, /stats, /quit; end a line with \\ to continue it.\n",
            info.name[0] ? info.name : info.architecture, info.n_layer, inf_context_n_ctx(c.ctx));
    for (;;) {
        char *msg = read_message();
        if (!msg)
            break;
        if (msg[0] == '\0') {
            free(msg);
            continue;
        }
        add_history(msg);
        if (strcmp(msg, "/quit") == 0 || strcmp(msg, "/exit") == 0) {
            free(msg);
            break;
        } else if (strncmp(msg, "/system ", 8) == 0) {
            set_system(&c, msg + 8);
            printf("(system message set)\n");
        } else if (strcmp(msg, "/clear") == 0) {
            json_array_clear(c.messages);
            inf_kv_clear(c.ctx);
            c.cached.n = 0;
            inf_sampler_reset(c.smp);
            printf("(conversation cleared)\n");
        } else if (strncmp(msg, "/save ", 6) == 0) {
            if (json_dump_file(c.messages, msg + 6, JSON_INDENT(2)) != 0)
                inf_cli_errorf(cli, "cannot write '%s'", msg + 6);
            else
                printf("(saved %zu messages to %s)\n", json_array_size(c.messages), msg + 6);
        } else if (strncmp(msg, "/load ", 6) == 0) {
            json_error_t je;
            json_t *m = json_load_file(msg + 6, 0, &je);
            if (!json_is_array(m)) {
                inf_cli_errorf(cli, "'%s': %s", msg + 6,
                               m ? "not a JSON array of messages" : je.text);
                json_decref(m);
            } else {
                json_decref(c.messages);
                c.messages = m;
                printf("(loaded %zu messages)\n", json_array_size(m));
            }
        } else if (strcmp(msg, "/stats") == 0) {
            struct inf_timings tm;
            inf_context_timings(c.ctx, &tm);
            printf("turns %lld | cached tokens %zu of %u | tokens reused %lld, processed %lld | "
                   "prompt %.2f t/s | generation %.2f t/s\n",
                   c.turns, c.cached.n, inf_context_n_ctx(c.ctx), c.reused, c.processed,
                   tm.prompt_ms > 0 ? 1e3 * (double)tm.n_prompt / tm.prompt_ms : 0.0,
                   tm.gen_ms > 0 ? 1e3 * (double)tm.n_gen / tm.gen_ms : 0.0);
        } else if (msg[0] == '/') {
            printf("(unknown command; /system TEXT, /clear, /save FILE, /load FILE, /stats, "
                   "/quit)\n");
        } else {
            json_array_append_new(c.messages,
                                  json_pack("{s:s, s:s}", "role", "user", "content", msg));
            if (reply(&c) != 0)
                json_array_remove(c.messages, json_array_size(c.messages) - 1);
        }
        free(msg);
    }
    sigaction(SIGINT, &old, NULL);
    rc = INF_EXIT_OK;
out:
    json_decref(c.messages);
    inf_cli_grammar_close(&c.grammar);
    inf_sampler_free(c.smp);
    inf_context_free(c.ctx);
    inf_model_free(c.model);
    inf_tokens_release(&c.cached);
    return rc;
}
