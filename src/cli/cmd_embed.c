/*
 * cmd_embed.c - `inferno embed`: embeddings of texts, as llama.cpp's llama-embedding computes
 * them.
 *
 * Each input (-p TEXT, repeatable, then one per non-empty line of -f FILE) is tokenized with the
 * vocabulary's special tokens ([CLS] ... [SEP] for BERT) and pooled with the model's own pooling
 * type (<arch>.pooling_type; --pooling overrides it), then L2-normalized (--normalize none
 * keeps the raw vector). Encoder models (bert, nomic-bert) run several inputs per pass, one
 * sequence each; decoders run one input per pass. --pooling none gives every token's vector.
 *
 * Output: one line per input of space-separated values; --json prints
 * {"embedding": [...], "n_tokens": N} for one input and {"data": [{"index": i, "embedding": [...],
 * "n_tokens": N}, ...]} for several ("embedding" is an array of per-token vectors under
 * --pooling none).
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

#define EMBED_FILE_MAX ((size_t)1 << 28)

const struct inf_cli_opt inf_cmd_embed_opts[] = {
    {"model", 'm', INF_OPT_VALUE, "MODEL", "GGUF model (path or name in models_dir)", NULL},
    {"prompt", 'p', INF_OPT_LIST, "TEXT", "a text to embed (may be given several times)", NULL},
    {"file", 'f', INF_OPT_VALUE, "FILE", "embed each non-empty line of FILE", NULL},
    {"pooling", 0, INF_OPT_VALUE, "TYPE",
     "none, mean, cls or last (default: the model's pooling_type)", NULL},
    {"normalize", 0, INF_OPT_VALUE, "MODE", "l2 (default) or none", NULL},
    {"json", 0, INF_OPT_FLAG, NULL, "print JSON", NULL},
    {"threads", 't', INF_OPT_VALUE, "N", "threads", "backend.threads"},
    {NULL, 0, 0, NULL, NULL, NULL},
};

struct input {
    const char *text;
    size_t len;
    struct inf_tokens toks;
    float *vec; /* [n_rows][n_embd] */
    int32_t n_rows;
};

static void l2(float *v, int n)
{
    double ss = 0;
    for (int i = 0; i < n; i++)
        ss += (double)v[i] * v[i];
    const double inv = ss > 0 ? 1.0 / sqrt(ss) : 0.0;
    for (int i = 0; i < n; i++)
        v[i] = (float)(v[i] * inv);
}

static void print_vec(const float *v, int n, bool json)
{
    for (int i = 0; i < n; i++) {
        if (json)
            printf(i ? ", %.9g" : "%.9g", (double)v[i]);
        else
            printf(i ? " %.7f" : "%.7f", (double)v[i]);
    }
}

static void print_input(const struct input *in, int E, bool json, bool per_token)
{
    if (!json) {
        for (int r = 0; r < in->n_rows; r++) {
            print_vec(in->vec + (size_t)r * E, E, false);
            printf("\n");
        }
        return;
    }
    printf("\"embedding\": ");
    if (per_token)
        printf("[");
    for (int r = 0; r < in->n_rows; r++) {
        printf(r ? ", [" : "[");
        print_vec(in->vec + (size_t)r * E, E, true);
        printf("]");
    }
    if (per_token)
        printf("]");
    printf(", \"n_tokens\": %zu", in->toks.n);
}

/* Decode inputs [i0, i1) in one pass (encoders: one sequence each; decoders: i1 == i0 + 1). */
static int run_pass(struct inf_cli *cli, struct inf_context *ctx, struct input *in, int i0, int i1,
                    int E, bool per_token, bool normalize)
{
    struct inf_error err = {0};
    size_t n = 0;
    for (int i = i0; i < i1; i++)
        n += in[i].toks.n;
    inf_token *tok = malloc(n * sizeof(*tok));
    int32_t *pos = malloc(n * sizeof(*pos)), *seq = malloc(n * sizeof(*seq));
    if (!tok || !pos || !seq) {
        free(tok);
        free(pos);
        free(seq);
        inf_cli_errorf(cli, "out of memory");
        return INF_EXIT_FAIL;
    }
    size_t k = 0;
    for (int i = i0; i < i1; i++)
        for (size_t t = 0; t < in[i].toks.n; t++, k++) {
            tok[k] = in[i].toks.ids[t];
            pos[k] = (int32_t)t;
            seq[k] = i - i0;
        }
    inf_kv_clear(ctx);
    struct inf_batch b = {.n_tokens = (int32_t)n, .token = tok, .pos = pos, .seq_id = seq};
    inf_status st = inf_decode(ctx, &b, &err);
    int rc = INF_EXIT_OK;
    if (st != INF_OK) {
        inf_cli_errorf(cli, "%s", inf_error_message(&err));
        rc = INF_EXIT_FAIL;
    }
    k = 0;
    for (int i = i0; i < i1 && rc == INF_EXIT_OK; i++) {
        in[i].n_rows = per_token ? (int32_t)in[i].toks.n : 1;
        in[i].vec = malloc((size_t)in[i].n_rows * (size_t)E * sizeof(float));
        if (!in[i].vec) {
            inf_cli_errorf(cli, "out of memory");
            rc = INF_EXIT_FAIL;
            break;
        }
        for (int32_t r = 0; r < in[i].n_rows; r++) {
            const float *v = per_token ? inf_get_embeddings_ith(ctx, (int32_t)(k + (size_t)r))
                                       : inf_get_embeddings_seq(ctx, i - i0);
            if (!v) {
                inf_cli_errorf(cli, "no embedding for input %d", i);
                rc = INF_EXIT_FAIL;
                break;
            }
            memcpy(in[i].vec + (size_t)r * E, v, (size_t)E * sizeof(float));
            if (normalize)
                l2(in[i].vec + (size_t)r * E, E);
        }
        k += in[i].toks.n;
    }
    free(tok);
    free(pos);
    free(seq);
    return rc;
}

int inf_cmd_embed(struct inf_cli *cli, struct inf_cli_args *args)
{
    struct inf_model *model = NULL;
    struct inf_context *ctx = NULL;
    struct inf_error err = {0};
    struct input *in = NULL;
    int n_in = 0, rc = INF_EXIT_USAGE;
    char *file_text = NULL;

    const char *pool_s = inf_cli_value(args, "pooling"), *norm_s = inf_cli_value(args, "normalize");
    int pool = -1;
    if (pool_s) {
        static const char *const names[] = {"none", "mean", "last", "cls"};
        for (int i = 0; i < 4; i++)
            if (strcmp(pool_s, names[i]) == 0)
                pool = i; /* enum inf_pooling order */
        if (pool < 0) {
            inf_cli_errorf(cli, "--pooling must be none, mean, cls or last (not '%s')", pool_s);
            return INF_EXIT_USAGE;
        }
    }
    if (norm_s && strcmp(norm_s, "l2") != 0 && strcmp(norm_s, "none") != 0) {
        inf_cli_errorf(cli, "--normalize must be l2 or none (not '%s')", norm_s);
        return INF_EXIT_USAGE;
    }
    const bool normalize = !norm_s || strcmp(norm_s, "l2") == 0, json = inf_cli_has(args, "json");

    /* the inputs */
    int n_p = 0;
    const char *const *ps = inf_cli_values(args, "prompt", &n_p);
    const char *path = inf_cli_value(args, "file");
    size_t flen = 0;
    if (path) {
        FILE *f = fopen(path, "rb");
        if (!f) {
            inf_cli_errorf(cli, "cannot open '%s': %s", path, strerror(errno));
            return INF_EXIT_FAIL;
        }
        file_text = inf__read_stream(f, EMBED_FILE_MAX, &flen);
        fclose(f);
        if (!file_text) {
            inf_cli_errorf(cli, "cannot read '%s'", path);
            return INF_EXIT_FAIL;
        }
    }
    size_t cap = (size_t)n_p + 1;
    for (size_t i = 0; i < flen; i++)
        cap += file_text[i] == '\n';
    in = calloc(cap, sizeof(*in));
    if (!in) {
        inf_cli_errorf(cli, "out of memory");
        rc = INF_EXIT_FAIL;
        goto out;
    }
    for (int i = 0; i < n_p; i++, n_in++) {
        in[n_in].text = ps[i];
        in[n_in].len = strlen(ps[i]);
    }
    for (size_t a = 0; a < flen;) {
        size_t b = a;
        while (b < flen && file_text[b] != '\n')
            b++;
        size_t e = b;
        if (e > a && file_text[e - 1] == '\r')
            e--;
        if (e > a) {
            in[n_in].text = file_text + a;
            in[n_in].len = e - a;
            n_in++;
        }
        a = b + 1;
    }
    if (n_in == 0) {
        inf_cli_errorf(cli, "nothing to embed: give -p TEXT or -f FILE");
        goto out;
    }

    if ((rc = inf_cli_load_model(cli, args, &model)))
        goto out;
    rc = INF_EXIT_FAIL;
    const struct inf_tokenizer *tok = inf_model_tokenizer(model);
    if (!tok) {
        inf_cli_errorf(cli, "the model has no tokenizer");
        goto out;
    }
    struct inf_model_info info;
    inf_model_get_info(model, &info);
    const bool enc = inf_model_is_encoder(model);
    if (pool < 0 && inf_model_pooling(model) == INF_POOL_RANK) {
        inf_cli_errorf(cli, "the model is a reranker (pooling_type rank): serve it and use "
                            "/v1/rerank, or give --pooling");
        goto out;
    }
    const enum inf_pooling pooling = pool >= 0 ? (enum inf_pooling)pool : inf_model_pooling(model);
    const bool per_token = pooling == INF_POOL_NONE;
    size_t longest = 0;
    for (int i = 0; i < n_in; i++) {
        inf_tokens_init(&in[i].toks);
        if (inf_tok_encode(tok, in[i].text, in[i].len, INF_TOK_ADD_SPECIAL | INF_TOK_PARSE_SPECIAL,
                           &in[i].toks, &err) != INF_OK) {
            inf_cli_errorf(cli, "input %d: %s", i, inf_error_message(&err));
            goto out;
        }
        if (in[i].toks.n == 0) {
            inf_cli_errorf(cli, "input %d has no tokens", i);
            goto out;
        }
        if (enc && in[i].toks.n > (size_t)info.n_ctx_train) {
            inf_cli_errorf(cli, "input %d has %zu tokens; the model takes at most %d", i,
                           in[i].toks.n, info.n_ctx_train);
            goto out;
        }
        longest = in[i].toks.n > longest ? in[i].toks.n : longest;
    }

    struct inf_context_params cp = inf_cli_context_params(cli);
    cp.embeddings = true;
    cp.pooling = pooling;
    /* encoders: several inputs per pass, at most the trained length of tokens in all;
       decoders: one input per pass, the cache as long as the longest */
    cp.n_ctx = enc ? (uint32_t)info.n_ctx_train : (uint32_t)longest;
    cp.n_batch = enc ? cp.n_ctx : (uint32_t)longest;
    cp.n_seq_max = enc ? (uint32_t)(n_in < 64 ? n_in : 64) : 1;
    if (inf_context_new(model, &cp, &ctx, &err) != INF_OK) {
        inf_cli_errorf(cli, "%s", inf_error_message(&err));
        goto out;
    }
    for (int i0 = 0; i0 < n_in;) {
        int i1 = i0 + 1;
        size_t total = in[i0].toks.n;
        while (enc && i1 < n_in && i1 - i0 < (int)cp.n_seq_max && total + in[i1].toks.n <= cp.n_ctx)
            total += in[i1++].toks.n;
        const int prc = run_pass(cli, ctx, in, i0, i1, info.n_embd, per_token, normalize);
        if (prc) {
            rc = prc;
            goto out;
        }
        i0 = i1;
    }

    if (json && n_in == 1) {
        printf("{");
        print_input(&in[0], info.n_embd, true, per_token);
        printf("}\n");
    } else if (json) {
        printf("{\"data\": [");
        for (int i = 0; i < n_in; i++) {
            printf(i ? ", {\"index\": %d, " : "{\"index\": %d, ", i);
            print_input(&in[i], info.n_embd, true, per_token);
            printf("}");
        }
        printf("]}\n");
    } else {
        for (int i = 0; i < n_in; i++)
            print_input(&in[i], info.n_embd, false, per_token);
    }
    rc = INF_EXIT_OK;
out:
    for (int i = 0; in && i < n_in; i++) {
        inf_tokens_release(&in[i].toks);
        free(in[i].vec);
    }
    free(in);
    free(file_text);
    inf_context_free(ctx);
    inf_model_free(model);
    return rc;
}
