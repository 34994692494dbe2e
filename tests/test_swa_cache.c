/*
 * test_swa_cache.c - the sliding-window layers' own KV cache against the plain one.
 *
 * A gemma3-shaped synthetic model (tools/gen-synthetic: window 32, five local layers of six)
 * runs in two contexts: one whose context is large enough for the sliding-window layers to get
 * their own cache of window x sequences + batch slots (filled in chunks of 4, so slots are given
 * back and reused as the windows move), and one small enough that every layer uses the cells
 * (the path tests/arch_parity.py checks against llama.cpp). Two sequences are decoded, cut back
 * and continued in both; the logits must agree at every step. inf_kv_seq_resume_max must refuse
 * a cut whose window was given back, and decoding there anyway must fail, not read stale slots.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inferno/engine.h"
#include "inferno/log.h"
#include "t.h"

static struct inf_model *model;
static int32_t n_vocab;

static struct inf_context *new_ctx(uint32_t n_ctx, uint32_t n_batch)
{
    struct inf_context_params cp = inf_context_default_params();
    struct inf_context *c = NULL;
    struct inf_error err = {0};
    cp.n_ctx = n_ctx;
    cp.n_batch = n_batch;
    cp.n_seq_max = 2;
    cp.n_threads = 2;
    cp.kv_type = INF_KV_F32;
    cp.deterministic = true; /* the same results whatever the chunk sizes */
    if (inf_context_new(model, &cp, &c, &err) != INF_OK)
        T__FAIL("context: %s", inf_error_message(&err));
    return c;
}

/* decode n tokens of seq from pos in both contexts, the logits of every token compared */
static double both(struct inf_context *a, struct inf_context *b, int seq, int32_t pos, int n,
                   uint32_t *rng)
{
    inf_token tok[64];
    int32_t p[64], s[64];
    int8_t want[64];
    for (int i = 0; i < n; i++) {
        *rng = *rng * 1664525u + 1013904223u;
        tok[i] = (inf_token)(3 + (*rng >> 8) % (uint32_t)(n_vocab - 3));
        p[i] = pos + i;
        s[i] = seq;
        want[i] = 1;
    }
    struct inf_batch batch = {n, tok, p, s, want};
    struct inf_error err = {0};
    if (inf_decode(a, &batch, &err) != INF_OK || inf_decode(b, &batch, &err) != INF_OK) {
        T__FAIL("decode: %s", inf_error_message(&err));
        return INFINITY;
    }
    double worst = 0.0;
    for (int i = 0; i < n; i++) {
        const float *la = inf_get_logits_ith(a, i), *lb = inf_get_logits_ith(b, i);
        for (int32_t v = 0; v < n_vocab; v++) {
            const double d = fabs((double)la[v] - (double)lb[v]);
            worst = d > worst ? d : worst;
        }
    }
    return worst;
}

static void test_swa_cache(void)
{
    struct inf_context *a = new_ctx(4096, 4); /* 32 x 2 + 4 = 68 sliding-window slots */
    struct inf_context *b = new_ctx(256, 256);
    if (!a || !b)
        goto done;
    struct inf_memory ma, mb;
    inf_context_memory(a, &ma);
    inf_context_memory(b, &mb);
    /* 5 of 6 layers at 68 slots, 1 at 4096 cells, against 6 x 256 */
    T_OK(ma.kv_bytes < mb.kv_bytes * 4096 / 256 / 3);

    uint32_t rng = 7;
    double worst = 0.0, d;
    /* two sequences, prompts then interleaved single tokens, past the window several times */
    worst = fmax(worst, both(a, b, 0, 0, 50, &rng));
    worst = fmax(worst, both(a, b, 1, 0, 37, &rng));
    for (int i = 0; i < 60; i++) {
        worst = fmax(worst, both(a, b, 0, 50 + i, 1, &rng));
        worst = fmax(worst, both(a, b, 1, 37 + i, 1, &rng));
    }
    /* sequence 0 holds 0..109: a cut at the end keeps its window, an early one does not */
    T_EQ_INT(inf_kv_seq_resume_max(a, 0, 109), 109);
    T_EQ_INT(inf_kv_seq_resume_max(a, 0, 20), 0);
    T_EQ_INT(inf_kv_seq_resume_max(b, 0, 20), 20);
    T_EQ_INT(inf_kv_seq_resume_max(a, 0, 0), 0);
    inf_kv_seq_rm(a, 0, 109, -1);
    inf_kv_seq_rm(b, 0, 109, -1);
    d = both(a, b, 0, 109, 12, &rng);
    worst = fmax(worst, d);
    /* decoding where the window is gone is an error naming the missing position */
    inf_kv_seq_rm(a, 1, 20, -1);
    {
        inf_token t = 5;
        int32_t p = 20, s = 1;
        int8_t w = 1;
        struct inf_batch batch = {1, &t, &p, &s, &w};
        struct inf_error err = {0};
        T_EQ_INT(inf_decode(a, &batch, &err), INF_EINVAL);
        T_CONTAINS(inf_error_message(&err), "sliding-window cache no longer holds");
        /* and the failed token took no cell */
        T_EQ_INT(inf_kv_seq_pos_max(a, 1), 19);
    }
    /* cleared, the sequence starts again from 0 */
    inf_kv_seq_rm(a, 1, -1, -1);
    inf_kv_seq_rm(b, 1, -1, -1);
    worst = fmax(worst, both(a, b, 1, 0, 40, &rng));
    printf("sliding-window cache vs plain cache: max |logit diff| %.3g over %d steps\n", worst,
           2 + 120 + 1 + 1);
    T_OK(worst < 1e-6); /* bit-identical on the machines seen so far */
done:
    inf_context_free(a);
    inf_context_free(b);
}

int main(void)
{
    const char *shared = getenv("INFERNO_SHARED"), *build = getenv("INFERNO_BUILD");
    char vocab[1024], path[1024], cmd[4096];
    snprintf(vocab, sizeof(vocab), "%s/testdata/tokenizers/ggml-vocab-llama-spm.gguf",
             shared ? shared : "../shared");
    FILE *f = fopen(vocab, "rb");
    if (!f)
        T_SKIP_ALL("%s is absent", vocab);
    fclose(f);
    snprintf(path, sizeof(path), "%s/test_swa_cache.gguf", build ? build : ".");
    snprintf(cmd, sizeof(cmd),
             "'%s/tools/gen-synthetic' --arch gemma3 --seed 3 --vocab '%s' "
             "--out '%s' >/dev/null",
             build ? build : ".", vocab, path);
    if (system(cmd) != 0) {
        fprintf(stderr, "cannot run %s\n", cmd);
        return 1;
    }
    inf_log_set_level(INF_LOG_ERROR);
    struct inf_model_params mp = inf_model_default_params();
    struct inf_error err = {0};
    if (inf_model_load(path, &mp, &model, &err) != INF_OK) {
        fprintf(stderr, "%s\n", inf_error_message(&err));
        return 1;
    }
    struct inf_model_info info;
    inf_model_get_info(model, &info);
    n_vocab = info.n_vocab;
    T_RUN(test_swa_cache);
    inf_model_free(model);
    remove(path);
    T_DONE();
}
