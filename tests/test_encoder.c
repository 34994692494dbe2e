/*
 * test_encoder.c - encoder models (bert, nomic-bert; src/engine/encoder.c) through the public
 * API: a sequence's vector does not depend on what else is in its pass (other sequences, their
 * order, interleaving, thread count), attention is bidirectional, the pooling types agree with
 * the tokens' own vectors, and bad batches and contexts are refused with messages. The values
 * themselves are checked against llama.cpp in tests/embed_parity.py.
 *
 * Models: tools/gen-synthetic --arch bert / nomic-bert (tiny shape) with the WordPiece
 * vocabulary derived from ../shared's llama SPM vocabulary. Needs $INFERNO_BUILD.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "inferno/engine.h"
#include "inferno/log.h"
#include "t.h"

static char dir[256];
static char bert_path[512], nomic_path[512];

static struct inf_model *load(const char *path)
{
    struct inf_model *m = NULL;
    struct inf_error err = {0};
    struct inf_model_params mp = inf_model_default_params();
    if (inf_model_load(path, &mp, &m, &err) != INF_OK)
        fprintf(stderr, "load: %s\n", err.msg);
    return m;
}

static struct inf_context *new_ctx(struct inf_model *m, enum inf_pooling pool, int threads)
{
    struct inf_context *c = NULL;
    struct inf_error err = {0};
    struct inf_context_params cp = inf_context_default_params();
    cp.embeddings = true;
    cp.pooling = pool;
    cp.n_seq_max = 8;
    cp.n_threads = threads;
    if (inf_context_new(m, &cp, &c, &err) != INF_OK)
        fprintf(stderr, "context: %s\n", err.msg);
    return c;
}

/* three "texts": [CLS]=2 ... [SEP]=3 */
#define N_SEQ 3
static const int seq_len[N_SEQ] = {5, 37, 12};
static inf_token seq_tok(int s, int i)
{
    if (i == 0)
        return 2;
    if (i == seq_len[s] - 1)
        return 3;
    return (inf_token)(5 + (s * 977 + i * 131) % 30000);
}

static double max_diff(const float *a, const float *b, int n)
{
    double d = 0;
    for (int i = 0; i < n; i++)
        d = fmax(d, fabs((double)a[i] - (double)b[i]));
    return d;
}

/* Each sequence alone, then all in one pass with their tokens interleaved and the sequence ids
 * permuted: the pooled vectors agree (to float rounding of the differently batched products). */
static void check_batching(const char *path, enum inf_pooling pool, int threads_b)
{
    struct inf_model *m = load(path);
    T_OK(m != NULL);
    if (!m)
        return;
    struct inf_model_info info;
    inf_model_get_info(m, &info);
    const int E = info.n_embd;
    struct inf_context *c1 = new_ctx(m, pool, 1), *c2 = new_ctx(m, pool, threads_b);
    T_OK(c1 && c2);
    float alone[N_SEQ][256];
    struct inf_error err = {0};
    for (int s = 0; s < N_SEQ && c1; s++) {
        inf_token tok[64];
        int32_t pos[64], seq[64];
        for (int i = 0; i < seq_len[s]; i++) {
            tok[i] = seq_tok(s, i);
            pos[i] = i;
            seq[i] = 0;
        }
        struct inf_batch b = {seq_len[s], tok, pos, seq, NULL};
        T_EQ_INT(inf_decode(c1, &b, &err), INF_OK);
        const float *v = inf_get_embeddings_seq(c1, 0);
        T_OK(v != NULL);
        if (v)
            memcpy(alone[s], v, (size_t)E * sizeof(float));
    }
    /* interleaved: token i of every sequence in turn, sequence s under id 5 - s */
    inf_token tok[128];
    int32_t pos[128], seq[128];
    int n = 0;
    for (int i = 0; i < 64; i++)
        for (int s = N_SEQ - 1; s >= 0; s--)
            if (i < seq_len[s]) {
                tok[n] = seq_tok(s, i);
                pos[n] = i;
                seq[n] = 5 - s;
                n++;
            }
    struct inf_batch b = {n, tok, pos, seq, NULL};
    if (c2) {
        T_EQ_INT(inf_decode(c2, &b, &err), INF_OK);
        for (int s = 0; s < N_SEQ; s++) {
            const float *v = inf_get_embeddings_seq(c2, 5 - s);
            T_OK(v != NULL);
            if (v)
                T_OK(max_diff(v, alone[s], E) < 1e-5);
        }
        T_OK(inf_get_embeddings_seq(c2, 0) == NULL); /* no tokens of sequence 0 */
        /* the pooled vector against the tokens' own vectors */
        const float *pooled = inf_get_embeddings_seq(c2, 5 - 1);
        float want[256] = {0};
        int first = -1, last = -1, cnt = 0;
        for (int k = 0; k < n; k++)
            if (seq[k] == 5 - 1) {
                const float *r = inf_get_embeddings_ith(c2, k);
                T_OK(r != NULL);
                if (first < 0)
                    first = k;
                last = k;
                for (int j = 0; r && j < E; j++)
                    want[j] += r[j];
                cnt++;
            }
        if (pool == INF_POOL_CLS)
            memcpy(want, inf_get_embeddings_ith(c2, first), (size_t)E * sizeof(float));
        else if (pool == INF_POOL_LAST)
            memcpy(want, inf_get_embeddings_ith(c2, last), (size_t)E * sizeof(float));
        else
            for (int j = 0; j < E; j++)
                want[j] /= (float)cnt;
        T_OK(pooled && max_diff(pooled, want, E) < 1e-5);
    }
    inf_context_free(c1);
    inf_context_free(c2);
    inf_model_free(m);
}

static void test_bert_batching(void)
{
    check_batching(bert_path, INF_POOL_CLS, 2);
    check_batching(bert_path, INF_POOL_MEAN, 2);
    check_batching(bert_path, INF_POOL_LAST, 1);
}

static void test_nomic_batching(void)
{
    check_batching(nomic_path, INF_POOL_MEAN, 2);
}

/* Changing the last token changes the first token's vector: attention sees the whole
 * sequence (a causal model would leave it as it was). */
static void test_bidirectional(void)
{
    struct inf_model *m = load(bert_path);
    T_OK(m != NULL);
    if (!m)
        return;
    T_OK(inf_model_is_encoder(m));
    T_EQ_INT(inf_model_pooling(m), INF_POOL_CLS);
    struct inf_context *c = new_ctx(m, INF_POOL_CLS, 2);
    struct inf_error err = {0};
    inf_token tok[6] = {2, 100, 200, 300, 400, 3};
    int32_t pos[6] = {0, 1, 2, 3, 4, 5};
    float a[256];
    struct inf_batch b = {6, tok, pos, NULL, NULL};
    T_EQ_INT(inf_decode(c, &b, &err), INF_OK);
    memcpy(a, inf_get_embeddings_ith(c, 0), 64 * sizeof(float));
    tok[4] = 401;
    T_EQ_INT(inf_decode(c, &b, &err), INF_OK);
    T_OK(max_diff(a, inf_get_embeddings_ith(c, 0), 64) > 1e-4);
    inf_context_free(c);
    inf_model_free(m);
}

static void test_refusals(void)
{
    struct inf_model *m = load(bert_path);
    T_OK(m != NULL);
    if (!m)
        return;
    struct inf_error err = {0};
    struct inf_context *c = NULL;
    struct inf_context_params cp = inf_context_default_params();
    /* an encoder has no logits */
    T_EQ_INT(inf_context_new(m, &cp, &c, &err), INF_EUNSUPPORTED);
    T_CONTAINS(err.msg, "embedding");
    c = new_ctx(m, INF_POOL_MEAN, 1);
    T_OK(c != NULL);
    inf_token tok[600];
    int32_t pos[600], seq[600];
    for (int i = 0; i < 600; i++) {
        tok[i] = 7;
        pos[i] = i;
        seq[i] = 0;
    }
    /* the model has 512 learned positions */
    struct inf_batch b = {1, tok, &pos[512], seq, NULL};
    T_EQ_INT(inf_decode(c, &b, &err), INF_EINVAL);
    T_CONTAINS(err.msg, "position 512");
    /* more tokens than a pass holds (n_ctx 0: the trained 512) */
    struct inf_batch big = {600, tok, pos, seq, NULL};
    T_EQ_INT(inf_decode(c, &big, &err), INF_ELIMIT);
    int32_t bad_seq = 8;
    struct inf_batch bs = {1, tok, pos, &bad_seq, NULL};
    T_EQ_INT(inf_decode(c, &bs, &err), INF_EINVAL);
    inf_token bad_tok = 1 << 20;
    struct inf_batch bt = {1, &bad_tok, pos, seq, NULL};
    T_EQ_INT(inf_decode(c, &bt, &err), INF_EINVAL);
    struct inf_batch empty = {0, tok, pos, seq, NULL};
    T_EQ_INT(inf_decode(c, &empty, &err), INF_EINVAL);
    /* still usable after the refusals */
    struct inf_batch ok = {3, tok, pos, seq, NULL};
    T_EQ_INT(inf_decode(c, &ok, &err), INF_OK);
    T_OK(inf_get_logits_ith(c, 0) == NULL);
    inf_context_free(c);
    inf_model_free(m);
}

static void cleanup(void)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (dir[0] && system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

int main(void)
{
    char vocab[512], gen[512], cmd[4096];
    t_shared_file(vocab, sizeof(vocab), "tokenizers/ggml-vocab-llama-spm.gguf");
    const char *build = getenv("INFERNO_BUILD");
    snprintf(gen, sizeof(gen), "%s/tools/gen-synthetic", build ? build : ".");
    if (access(gen, X_OK) != 0)
        T_SKIP_ALL("%s not found (set INFERNO_BUILD)", gen);
    snprintf(dir, sizeof(dir), "/tmp/inferno-encoder-XXXXXX");
    if (!mkdtemp(dir))
        T_SKIP_ALL("cannot make a temporary directory");
    atexit(cleanup);
    snprintf(bert_path, sizeof(bert_path), "%s/bert.gguf", dir);
    snprintf(nomic_path, sizeof(nomic_path), "%s/nomic.gguf", dir);
    inf_log_set_level(INF_LOG_ERROR);
    snprintf(cmd, sizeof(cmd),
             "'%s' --arch bert --vocab '%s' --out '%s' >/dev/null && '%s' --arch nomic-bert "
             "--vocab '%s' --out '%s' >/dev/null",
             gen, vocab, bert_path, gen, vocab, nomic_path);
    if (system(cmd) != 0) {
        T__FAIL("gen-synthetic failed: %s", cmd);
        T_DONE();
    }
    T_RUN(test_bert_batching);
    T_RUN(test_nomic_batching);
    T_RUN(test_bidirectional);
    T_RUN(test_refusals);
    T_DONE();
}
