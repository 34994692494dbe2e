/*
 * cmd_bench.c - `inferno bench`: prompt processing and generation speed, measured the way
 * llama-bench measures them so the figures compare directly.
 *
 * For each test and repetition: the KV cache is cleared; with -d N, N tokens are decoded first
 * (not timed); then either n_prompt random tokens are decoded in batches of n_batch (ppN) or
 * n_gen tokens one at a time (tgN). t/s = tokens / seconds; the report gives the mean and the
 * sample standard deviation over the repetitions, after one untimed warm-up run.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "build_info.h"
#include "cli/cli.h"
#include "cli/cli_engine.h"
#include "core/clock.h"
#include "inferno/cpu.h"
#include "inferno/engine.h"

const struct inf_cli_opt inf_cmd_bench_opts[] = {
    {"model", 'm', INF_OPT_VALUE, "MODEL", "GGUF model (path or name in models_dir)", NULL},
    {"n-prompt", 'p', INF_OPT_VALUE, "N", "prompt tokens for the pp test (0 skips; default 512)",
     NULL},
    {"n-gen", 'n', INF_OPT_VALUE, "N", "tokens for the tg test (0 skips; default 128)", NULL},
    {"depth", 'd', INF_OPT_VALUE, "N", "tokens already in the context (default 0)", NULL},
    {"repetitions", 'r', INF_OPT_VALUE, "N", "repetitions of each test (default 5)", NULL},
    {"threads", 't', INF_OPT_VALUE, "N", "threads (default: physical cores)", "backend.threads"},
    {"batch-size", 'b', INF_OPT_VALUE, "N", "tokens per forward pass", "backend.batch_size"},
    {"kv-type", 0, INF_OPT_VALUE, "TYPE", "KV cache type: f16, f32, q8_0", "backend.kv_type"},
    {"deterministic", 0, INF_OPT_VALUE, "MODE",
     "batch-invariant kernels: on, or off/auto (off: bench samples nothing)",
     "backend.deterministic"},
    {"json", 0, INF_OPT_FLAG, NULL, "print a JSON array with llama-bench's field names", NULL},
    {"md", 0, INF_OPT_FLAG, NULL, "print a markdown table (default)", NULL},
    {NULL, 0, 0, NULL, NULL, NULL},
};

struct bench_ctx {
    struct inf_context *ctx;
    int32_t n_vocab, n_batch;
    uint64_t rng;
    inf_token *tok;
    int32_t *pos, *seq;
    int8_t *logits;
};

static inf_token rand_token(struct bench_ctx *b)
{
    b->rng = b->rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return (inf_token)((b->rng >> 33) % (uint64_t)b->n_vocab);
}

/* Decode n random tokens starting at position p0 in batches of n_batch. */
static int decode_tokens(struct bench_ctx *b, int32_t p0, int32_t n, int32_t step)
{
    struct inf_error err = {0};
    for (int32_t done = 0; done < n; done += step) {
        int32_t k = n - done < step ? n - done : step;
        for (int32_t i = 0; i < k; i++) {
            b->tok[i] = rand_token(b);
            b->pos[i] = p0 + done + i;
            b->seq[i] = 0;
            b->logits[i] = i == k - 1;
        }
        struct inf_batch batch = {k, b->tok, b->pos, b->seq, b->logits};
        if (inf_decode(b->ctx, &batch, &err) != INF_OK) {
            fprintf(stderr, "inferno bench: decode failed: %s\n", inf_error_message(&err));
            return -1;
        }
    }
    return 0;
}

struct result {
    const char *name;
    int n_prompt, n_gen, n_depth;
    double *samples_ns;
    int n;
};

static void stats(const struct result *r, double *avg_ts, double *sd_ts, double *avg_ns,
                  double *sd_ns)
{
    int toks = r->n_prompt + r->n_gen;
    double s = 0, s2 = 0, t = 0, t2 = 0;
    for (int i = 0; i < r->n; i++) {
        double ts = 1e9 * toks / r->samples_ns[i];
        s += ts;
        s2 += ts * ts;
        t += r->samples_ns[i];
        t2 += r->samples_ns[i] * r->samples_ns[i];
    }
    *avg_ts = s / r->n;
    *avg_ns = t / r->n;
    *sd_ts = r->n > 1 ? sqrt(fmax(0, (s2 - s * s / r->n) / (r->n - 1))) : 0;
    *sd_ns = r->n > 1 ? sqrt(fmax(0, (t2 - t * t / r->n) / (r->n - 1))) : 0;
}

int inf_cmd_bench(struct inf_cli *cli, struct inf_cli_args *args)
{
    long long n_prompt = 512, n_gen = 128, depth = 0, reps = 5;
    const char *model_arg = inf_cli_value(args, "model");
    struct inf_error err = {0};
    struct inf_model *model = NULL;
    struct inf_context *ctx = NULL;
    struct bench_ctx b;
    char path[4096];
    int rc = INF_EXIT_FAIL;

    if (!model_arg) {
        inf_cli_errorf(cli, "-m MODEL is required");
        return INF_EXIT_USAGE;
    }
    if ((inf_cli_has(args, "n-prompt") &&
         !inf_cli_int(cli, args, "n-prompt", 0, 1 << 20, &n_prompt)) ||
        (inf_cli_has(args, "n-gen") && !inf_cli_int(cli, args, "n-gen", 0, 1 << 20, &n_gen)) ||
        (inf_cli_has(args, "depth") && !inf_cli_int(cli, args, "depth", 0, 1 << 22, &depth)) ||
        (inf_cli_has(args, "repetitions") &&
         !inf_cli_int(cli, args, "repetitions", 1, 1000, &reps)))
        return INF_EXIT_USAGE;
    if (inf_models_resolve_cli(cli, model_arg, path, sizeof(path)) != 0)
        return INF_EXIT_FAIL;

    struct inf_model_params mp = inf_cli_model_params(cli);
    if (inf_model_load(path, &mp, &model, &err) != INF_OK) {
        inf_cli_errorf(cli, "%s", inf_error_message(&err));
        return INF_EXIT_FAIL;
    }
    struct inf_model_info info;
    inf_model_get_info(model, &info);
    struct inf_context_params cp = inf_cli_context_params(cli);
    cp.n_ctx = (uint32_t)(depth + n_prompt + n_gen + 1);
    const char *kv = inf_config_get_str(cli->config, "backend.kv_type");
    if (inf_context_new(model, &cp, &ctx, &err) != INF_OK) {
        inf_cli_errorf(cli, "%s", inf_error_message(&err));
        goto out;
    }
    memset(&b, 0, sizeof(b));
    b.ctx = ctx;
    b.n_vocab = info.n_vocab;
    b.n_batch = (int32_t)cp.n_batch;
    b.rng = 42;
    b.tok = malloc(cp.n_batch * sizeof(*b.tok));
    b.pos = malloc(cp.n_batch * sizeof(*b.pos));
    b.seq = malloc(cp.n_batch * sizeof(*b.seq));
    b.logits = malloc(cp.n_batch);
    struct result res[2];
    int n_res = 0;
    if (n_prompt > 0)
        res[n_res++] = (struct result){"pp", (int)n_prompt, 0, (int)depth, NULL, 0};
    if (n_gen > 0)
        res[n_res++] = (struct result){"tg", 0, (int)n_gen, (int)depth, NULL, 0};
    for (int r = 0; r < n_res; r++) {
        res[r].samples_ns = calloc((size_t)reps, sizeof(double));
        if (!res[r].samples_ns || !b.tok || !b.pos || !b.seq || !b.logits) {
            inf_cli_errorf(cli, "out of memory");
            goto out_res;
        }
    }
    for (int r = 0; r < n_res; r++) {
        int32_t step = res[r].n_prompt ? b.n_batch : 1;
        int32_t n = res[r].n_prompt ? res[r].n_prompt : res[r].n_gen;
        /* warm-up, as llama-bench does */
        inf_kv_clear(ctx);
        if (decode_tokens(&b, 0, res[r].n_prompt ? n : 1, step) != 0)
            goto out_res;
        for (int i = 0; i < reps; i++) {
            inf_kv_clear(ctx);
            if (depth && decode_tokens(&b, 0, (int32_t)depth, b.n_batch) != 0)
                goto out_res;
            double t0 = (double)inf__now_ns();
            if (decode_tokens(&b, (int32_t)depth, n, step) != 0)
                goto out_res;
            res[r].samples_ns[i] = (double)inf__now_ns() - t0;
            res[r].n++;
        }
    }

    const char *fname = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    if (inf_cli_has(args, "json")) {
        char feats[256];
        inf_cpu_features_string(inf_cpu_features(), feats, sizeof(feats));
        printf("[\n");
        for (int r = 0; r < n_res; r++) {
            double ats, sts, ans, sns;
            stats(&res[r], &ats, &sts, &ans, &sns);
            printf("  {\n    \"build_commit\": \"%s\",\n    \"build_number\": 0,\n"
                   "    \"cpu_info\": \"%s\",\n    \"gpu_info\": \"\",\n"
                   "    \"backends\": \"CPU\",\n    \"model_filename\": \"%s\",\n"
                   "    \"model_type\": \"%s\",\n    \"model_size\": %llu,\n"
                   "    \"model_n_params\": %llu,\n    \"n_batch\": %u,\n    \"n_ubatch\": %u,\n"
                   "    \"n_threads\": %d,\n    \"type_k\": \"%s\",\n    \"type_v\": \"%s\",\n"
                   "    \"n_gpu_layers\": 0,\n    \"flash_attn\": false,\n"
                   "    \"use_mmap\": %s,\n    \"embeddings\": false,\n"
                   "    \"n_prompt\": %d,\n    \"n_gen\": %d,\n    \"n_depth\": %d,\n"
                   "    \"avg_ns\": %.0f,\n    \"stddev_ns\": %.0f,\n"
                   "    \"avg_ts\": %.6f,\n    \"stddev_ts\": %.6f,\n    \"samples_ns\": [",
                   INFERNO_GIT_COMMIT, feats, fname, info.architecture,
                   (unsigned long long)info.weights_bytes, (unsigned long long)info.n_params,
                   cp.n_batch, cp.n_batch, cp.n_threads, kv, kv, mp.use_mmap ? "true" : "false",
                   res[r].n_prompt, res[r].n_gen, res[r].n_depth, ans, sns, ats, sts);
            for (int i = 0; i < res[r].n; i++)
                printf("%s%.0f", i ? ", " : " ", res[r].samples_ns[i]);
            printf(" ],\n    \"samples_ts\": [");
            int toks = res[r].n_prompt + res[r].n_gen;
            for (int i = 0; i < res[r].n; i++)
                printf("%s%.6f", i ? ", " : " ", 1e9 * toks / res[r].samples_ns[i]);
            printf(" ]\n  }%s\n", r + 1 < n_res ? "," : "");
        }
        printf("]\n");
    } else {
        printf("| model | size | params | backend | threads | test | t/s |\n"
               "| --- | ---: | ---: | --- | ---: | ---: | ---: |\n");
        for (int r = 0; r < n_res; r++) {
            double ats, sts, ans, sns;
            char test[64];
            stats(&res[r], &ats, &sts, &ans, &sns);
            if (res[r].n_depth)
                snprintf(test, sizeof(test), "%s%d @ d%d", res[r].name,
                         res[r].n_prompt + res[r].n_gen, res[r].n_depth);
            else
                snprintf(test, sizeof(test), "%s%d", res[r].name, res[r].n_prompt + res[r].n_gen);
            printf("| %s | %.2f MiB | %.2f M | CPU | %d | %s | %.2f ± %.2f |\n", fname,
                   (double)info.weights_bytes / (1024.0 * 1024.0), (double)info.n_params / 1e6,
                   cp.n_threads, test, ats, sts);
        }
    }
    rc = INF_EXIT_OK;
out_res:
    for (int r = 0; r < n_res; r++)
        free(res[r].samples_ns);
    free(b.tok);
    free(b.pos);
    free(b.seq);
    free(b.logits);
out:
    inf_context_free(ctx);
    inf_model_free(model);
    return rc;
}
