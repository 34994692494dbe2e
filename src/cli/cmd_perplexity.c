/*
 * cmd_perplexity.c - `inferno perplexity`: llama.cpp's method, so the numbers compare.
 *
 * The text is tokenized with BOS; it is cut into chunks of n_ctx tokens (the rest dropped);
 * each chunk is decoded from an empty cache with its first token replaced by BOS (when the
 * vocabulary adds one), and only the second half is scored: for positions j in
 * [n_ctx/2, n_ctx - 1), -log p(token j+1 | tokens <= j). The running estimate after each chunk
 * is exp(mean NLL); the uncertainty is the standard error of the mean NLL times the PPL.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cli_engine.h"
#include "core/files.h"
#include "inferno/engine.h"
#include "inferno/tokenizer.h"

/* The text file is read whole: bounded, so that -f /dev/zero stops (wiki.test.raw is 1.3 MB). */
#define PERPLEXITY_FILE_MAX ((size_t)1 << 30)

const struct inf_cli_opt inf_cmd_perplexity_opts[] = {
    {"model", 'm', INF_OPT_VALUE, "MODEL", "GGUF model (path or name in models_dir)", NULL},
    {"file", 'f', INF_OPT_VALUE, "FILE", "the text to score", NULL},
    {"ctx", 'c', INF_OPT_VALUE, "N", "tokens per chunk (default 512)", NULL},
    {"batch-size", 'b', INF_OPT_VALUE, "N", "tokens per forward pass (default 512)", NULL},
    {"chunks", 0, INF_OPT_VALUE, "N", "score at most N chunks (default all)", NULL},
    {"threads", 't', INF_OPT_VALUE, "N", "threads", "backend.threads"},
    {"kv-type", 0, INF_OPT_VALUE, "TYPE", "KV cache type: f16, f32, q8_0", "backend.kv_type"},
    {"deterministic", 0, INF_OPT_VALUE, "MODE", "batch-invariant kernels: on, or off/auto (off)",
     "backend.deterministic"},
    {NULL, 0, 0, NULL, NULL, NULL},
};

/* -log softmax(logits)[tok], in double as llama.cpp computes it. */
static double nll_of(const float *logits, int n_vocab, int tok)
{
    const float mx = logits[inf_argmax(logits, n_vocab)];
    double sum = 0.0;
    for (int i = 0; i < n_vocab; i++)
        sum += expf(logits[i] - mx);
    return -((double)(logits[tok] - mx) - log(sum));
}

int inf_cmd_perplexity(struct inf_cli *cli, struct inf_cli_args *args)
{
    long long n_ctx = 512, n_batch = 512, max_chunks = -1;
    struct inf_model *model = NULL;
    struct inf_context *ctx = NULL;
    struct inf_tokens toks;
    struct inf_error err = {0};
    char *text = NULL;
    int rc;

    inf_tokens_init(&toks);
    if ((inf_cli_has(args, "ctx") && !inf_cli_int(cli, args, "ctx", 8, 1 << 20, &n_ctx)) ||
        (inf_cli_has(args, "batch-size") &&
         !inf_cli_int(cli, args, "batch-size", 1, 1 << 20, &n_batch)) ||
        (inf_cli_has(args, "chunks") && !inf_cli_int(cli, args, "chunks", 1, 1 << 30, &max_chunks)))
        return INF_EXIT_USAGE;
    const char *path = inf_cli_value(args, "file");
    if (!path) {
        inf_cli_errorf(cli, "-f FILE is required");
        return INF_EXIT_USAGE;
    }
    FILE *f = fopen(path, "rb");
    if (!f) {
        inf_cli_errorf(cli, "cannot open '%s': %s", path, strerror(errno));
        return INF_EXIT_FAIL;
    }
    size_t len = 0;
    text = inf__read_stream(f, PERPLEXITY_FILE_MAX, &len);
    int e = errno;
    fclose(f);
    if (!text && e == EFBIG) {
        inf_cli_errorf(cli, "'%s' is larger than %zu MiB", path, PERPLEXITY_FILE_MAX >> 20);
        return INF_EXIT_FAIL;
    }
    if (!text) {
        inf_cli_errorf(cli, "cannot read '%s': %s", path, strerror(e));
        return INF_EXIT_FAIL;
    }
    if ((rc = inf_cli_load_model(cli, args, &model)))
        goto out;
    rc = INF_EXIT_FAIL;
    const struct inf_tokenizer *tok = inf_model_tokenizer(model);
    if (!tok) {
        inf_cli_errorf(cli, "the model has no tokenizer");
        goto out;
    }
    if (inf_tok_encode(tok, text, len, INF_TOK_ADD_SPECIAL, &toks, &err) != INF_OK) {
        inf_cli_errorf(cli, "%s", inf_error_message(&err));
        goto out;
    }
    if (toks.n < 2 * (size_t)n_ctx) {
        inf_cli_errorf(cli, "'%s' tokenizes to %zu tokens; a context of %lld needs at least %lld",
                       path, toks.n, n_ctx, 2 * n_ctx);
        goto out;
    }
    struct inf_context_params cp = inf_cli_context_params(cli);
    cp.n_ctx = (uint32_t)n_ctx;
    cp.n_batch = (uint32_t)(n_batch < n_ctx ? n_batch : n_ctx);
    if (inf_context_new(model, &cp, &ctx, &err) != INF_OK) {
        inf_cli_errorf(cli, "%s", inf_error_message(&err));
        goto out;
    }
    struct inf_model_info info;
    inf_model_get_info(model, &info);
    const struct inf_tok_info *ti = inf_tok_info(tok);
    long long n_chunk = (long long)toks.n / n_ctx;
    if (max_chunks > 0 && max_chunks < n_chunk)
        n_chunk = max_chunks;
    const int first = (int)n_ctx / 2;
    int32_t *pos = malloc((size_t)n_ctx * sizeof(int32_t));
    int8_t *want = malloc((size_t)n_ctx);
    inf_token *chunk = malloc((size_t)n_ctx * sizeof(inf_token));
    if (!pos || !want || !chunk) {
        free(pos);
        free(want);
        free(chunk);
        inf_cli_errorf(cli, "out of memory");
        goto out;
    }
    fprintf(stderr, "perplexity: %zu tokens, %lld chunks of %lld, batch %u\n", toks.n, n_chunk,
            n_ctx, cp.n_batch);
    double nll = 0, nll2 = 0;
    long long count = 0;
    for (long long c = 0; c < n_chunk; c++) {
        memcpy(chunk, toks.ids + c * n_ctx, (size_t)n_ctx * sizeof(inf_token));
        if (ti->add_bos && ti->bos >= 0)
            chunk[0] = ti->bos;
        for (int i = 0; i < n_ctx; i++) {
            pos[i] = i;
            want[i] = i >= first;
        }
        inf_kv_clear(ctx);
        struct inf_batch b = {(int32_t)n_ctx, chunk, pos, NULL, want};
        if (inf_decode(ctx, &b, &err) != INF_OK) {
            inf_cli_errorf(cli, "%s", inf_error_message(&err));
            break;
        }
        for (int j = first; j < n_ctx - 1; j++) {
            double v = nll_of(inf_get_logits_ith(ctx, j), info.n_vocab, chunk[j + 1]);
            nll += v;
            nll2 += v * v;
            count++;
        }
        printf("[%lld]%.4lf,", c + 1, exp(nll / (double)count));
        fflush(stdout);
    }
    printf("\n");
    free(pos);
    free(want);
    free(chunk);
    if (count < 2)
        goto out;
    double mean = nll / (double)count, var = nll2 / (double)count - mean * mean;
    double ppl = exp(mean);
    if (var > 0) {
        printf("Final estimate: PPL = %.4lf +/- %.5lf\n", ppl,
               sqrt(var / (double)(count - 1)) * ppl);
        rc = INF_EXIT_OK;
    } else {
        inf_cli_errorf(cli, "unexpected negative variance of log(prob)");
    }
out:
    inf_context_free(ctx);
    inf_model_free(model);
    inf_tokens_release(&toks);
    free(text);
    return rc;
}
