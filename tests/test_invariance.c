/*
 * test_invariance.c - batch invariance (issue #16 item 3): with inf_context_params.deterministic
 * the logits of a greedy request are bit for bit the same (memcmp, not a tolerance, not just the
 * tokens) whether it runs alone or among 1..32 other sequences of different lengths, whatever
 * chunks its prompt is fed in (1, 7, 64, 512 tokens per inf_decode call), whether its prefix
 * comes from the cache (kept in its own sequence after a removed continuation, or copied from
 * another sequence with inf_kv_seq_cp), and with 1 or 2 threads.
 *
 * The models: tools/gen-synthetic (tiny llama shape cut to 2 layers, n_ff 512 so that every
 * K-quant fits, 8 query heads over 4 KV heads), in F32, and quantized with inf_quantize_file
 * (pure) to F16, Q8_0, Q4_0, Q4_K and Q6_K. The reference of each is the request alone, its
 * prompt in one call. Needs $INFERNO_BUILD/tools/gen-synthetic and the shared stories260K
 * vocabulary; skips without them. The sanitizer build (INFERNO_SANITIZE, where the kernels run
 * ~150x slower) runs only the variants marked quick: batches of 3 and 32 others, chunks of 1, 7
 * and 64, both kinds of cached prefix and one thread are still covered.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "inferno/engine.h"
#include "inferno/quantize.h"
#include "t.h"

#define N_PROMPT 100 /* more than 64 (a chunk of 64 splits it), less than 512 */
#define N_GEN    6   /* logits rows compared: the prompt's last, then N_GEN - 1 generated */
#define N_SEQ    34  /* the request (0), up to 32 others, a donor of cached prefixes (33) */
#define DONOR    (N_SEQ - 1)
#define N_PREFIX 41 /* the cached prefix */

static char dir[256];
static int32_t n_vocab;

enum prefix_mode { PREFIX_NONE, PREFIX_KEEP, PREFIX_COPY };

struct variant {
    int chunk;    /* request's prompt tokens per inf_decode call */
    int n_others; /* other sequences in the same calls */
    enum prefix_mode prefix;
    int n_threads;
    bool quick; /* run in the sanitizer build too */
};

#ifdef INFERNO_SANITIZE
#define QUICK_ONLY true
#else
#define QUICK_ONLY false
#endif

static inf_token prompt[N_PROMPT];

/* the other sequences: prompt lengths 3..92, then they generate (any tokens) */
static int other_len(int i)
{
    return 3 + (i * 37) % 90;
}

static inf_token other_tok(int i, int p)
{
    return (inf_token)(1 + ((uint32_t)(i * 7919 + p * 104729) % (uint32_t)(n_vocab - 1)));
}

struct batch {
    int32_t n;
    inf_token tok[4096];
    int32_t pos[4096], seq[4096];
    int8_t logits[4096];
};

static void add(struct batch *b, inf_token t, int32_t pos, int32_t seq, int8_t lg)
{
    b->tok[b->n] = t;
    b->pos[b->n] = pos;
    b->seq[b->n] = seq;
    b->logits[b->n] = lg;
    b->n++;
}

/* the tokens of others i0..i1 for one step: a few prompt tokens each while their prompts last (a
 * different count per sequence and step), then one generated token */
static void add_others(struct batch *b, int i0, int i1, int step, int32_t *done)
{
    for (int i = i0; i <= i1; i++) {
        int take = done[i] < other_len(i) ? 1 + (i * 5 + step) % 9 : 1;
        if (done[i] < other_len(i) && done[i] + take > other_len(i))
            take = other_len(i) - done[i];
        for (int k = 0; k < take; k++) {
            add(b, other_tok(i, done[i]), done[i], i, (int8_t)(k == take - 1));
            done[i]++;
        }
    }
}

static bool decode(struct inf_context *ctx, const struct batch *b)
{
    struct inf_batch ib = {b->n, b->tok, b->pos, b->seq, b->logits};
    struct inf_error err = {0};
    if (inf_decode(ctx, &ib, &err) != INF_OK) {
        T__FAIL("inf_decode: %s", inf_error_message(&err));
        return false;
    }
    return true;
}

static int32_t argmax(const float *x)
{
    int32_t best = 0;
    for (int32_t i = 1; i < n_vocab; i++)
        if (x[i] > x[best])
            best = i;
    return best;
}

/* The request under variant v: its N_GEN logits rows into out. */
static bool run(struct inf_model *model, const struct variant *v, float *out)
{
    struct inf_context_params cp = inf_context_default_params();
    cp.n_ctx = 8192;
    cp.n_batch = 512;
    cp.n_seq_max = N_SEQ;
    cp.n_threads = v->n_threads;
    cp.deterministic = true;
    struct inf_context *ctx;
    struct inf_error err = {0};
    if (inf_context_new(model, &cp, &ctx, &err) != INF_OK) {
        T__FAIL("inf_context_new: %s", inf_error_message(&err));
        return false;
    }
    static struct batch b;
    int32_t done[N_SEQ] = {0};
    int step = 0;
    int32_t p = 0; /* the request's prompt tokens in the cache */
    bool ok = true;

    if (v->prefix == PREFIX_KEEP) {
        /* the prefix, then a continuation that is dropped again (as a server's slot reuse) */
        b.n = 0;
        for (int32_t k = 0; k < N_PREFIX + 17; k++)
            add(&b, k < N_PREFIX ? prompt[k] : other_tok(40, k), k, 0, 0);
        ok = ok && decode(ctx, &b);
        inf_kv_seq_rm(ctx, 0, N_PREFIX, -1);
        p = N_PREFIX;
    } else if (v->prefix == PREFIX_COPY) {
        /* the prefix decoded by another sequence, among others, then shared */
        b.n = 0;
        for (int32_t k = 0; k < N_PREFIX; k++)
            add(&b, prompt[k], k, DONOR, 0);
        add_others(&b, 1, v->n_others, step++, done);
        ok = ok && decode(ctx, &b);
        inf_kv_seq_cp(ctx, DONOR, 0, 0, -1);
        inf_kv_seq_rm(ctx, DONOR, 0, -1);
        p = N_PREFIX;
    }

    int row = 0;
    inf_token next = -1;
    while (ok && row < N_GEN) {
        b.n = 0;
        /* some others before the request's tokens, the rest after */
        const int half = v->n_others / 2;
        add_others(&b, 1, half, step, done);
        if (p < N_PROMPT) {
            const int32_t take = N_PROMPT - p < v->chunk ? N_PROMPT - p : v->chunk;
            for (int32_t k = 0; k < take; k++)
                add(&b, prompt[p + k], p + k, 0, (int8_t)(p + k == N_PROMPT - 1));
            p += take;
        } else {
            add(&b, next, p, 0, 1);
            p++;
        }
        const int32_t last = b.n - 1;
        add_others(&b, half + 1, v->n_others, step, done);
        step++;
        if (!decode(ctx, &b)) {
            ok = false;
            break;
        }
        if (p >= N_PROMPT) {
            const float *lg = inf_get_logits_ith(ctx, last);
            memcpy(out + (size_t)row * (size_t)n_vocab, lg, (size_t)n_vocab * sizeof(float));
            next = argmax(lg);
            row++;
        }
    }
    inf_context_free(ctx);
    return ok;
}

static void variant_name(const struct variant *v, char *buf, size_t size)
{
    static const char *const pm[] = {"", ", cached prefix kept", ", cached prefix copied"};
    snprintf(buf, size, "chunk %d, %d others%s, %d thread%s", v->chunk, v->n_others, pm[v->prefix],
             v->n_threads, v->n_threads == 1 ? "" : "s");
}

static void check_model(const char *name, const char *path)
{
    struct inf_model_params mp = inf_model_default_params();
    mp.huge_pages = false;
    struct inf_model *model;
    struct inf_error err = {0};
    if (inf_model_load(path, &mp, &model, &err) != INF_OK) {
        T__FAIL("%s: %s", name, inf_error_message(&err));
        return;
    }
    struct inf_model_info info;
    inf_model_get_info(model, &info);
    n_vocab = info.n_vocab;
    const size_t bytes = (size_t)N_GEN * (size_t)n_vocab * sizeof(float);
    float *ref = malloc(bytes), *got = malloc(bytes);
    if (!ref || !got) {
        T__FAIL("out of memory");
        goto out;
    }
    const struct variant ref_v = {512, 0, PREFIX_NONE, 2, true};
    if (!run(model, &ref_v, ref))
        goto out;
    static const struct variant vs[] = {
        {1, 0, PREFIX_NONE, 2, false},    {7, 0, PREFIX_NONE, 2, false},
        {64, 0, PREFIX_NONE, 2, false},   {512, 0, PREFIX_NONE, 1, false},
        {64, 1, PREFIX_NONE, 2, false},   {7, 4, PREFIX_NONE, 2, false},
        {512, 13, PREFIX_NONE, 2, false}, {64, 32, PREFIX_COPY, 2, true},
        {1, 32, PREFIX_NONE, 2, false},   {64, 0, PREFIX_KEEP, 2, false},
        {7, 8, PREFIX_COPY, 2, false},    {512, 32, PREFIX_KEEP, 1, false},
        {1, 5, PREFIX_KEEP, 1, true},     {7, 3, PREFIX_NONE, 2, true},
    };
    for (size_t i = 0; i < sizeof(vs) / sizeof(vs[0]); i++) {
        if (QUICK_ONLY && !vs[i].quick)
            continue;
        char vn[128];
        variant_name(&vs[i], vn, sizeof(vn));
        if (!run(model, &vs[i], got)) {
            T__FAIL("%s, %s: the run failed", name, vn);
            continue;
        }
        int bad_row = -1;
        for (int r = 0; r < N_GEN && bad_row < 0; r++)
            if (memcmp(ref + (size_t)r * (size_t)n_vocab, got + (size_t)r * (size_t)n_vocab,
                       (size_t)n_vocab * sizeof(float)) != 0)
                bad_row = r;
        if (bad_row < 0) {
            t__passed++;
            continue;
        }
        double maxd = 0;
        int32_t at = 0;
        const float *a = ref + (size_t)bad_row * (size_t)n_vocab,
                    *g = got + (size_t)bad_row * (size_t)n_vocab;
        for (int32_t k = 0; k < n_vocab; k++)
            if (fabs((double)a[k] - g[k]) > maxd) {
                maxd = fabs((double)a[k] - g[k]);
                at = k;
            }
        T__FAIL("%s, %s: logits row %d differ from the request alone (largest at %d: %.9g vs "
                "%.9g)",
                name, vn, bad_row, at, g[at], a[at]);
    }
out:
    free(ref);
    free(got);
    inf_model_free(model);
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
    char vocab[512], gen[512], f32[512];
    t_shared_file(vocab, sizeof(vocab), "models/stories260K.gguf");
    const char *build = getenv("INFERNO_BUILD");
    snprintf(gen, sizeof(gen), "%s/tools/gen-synthetic", build ? build : ".");
    if (access(gen, X_OK) != 0)
        T_SKIP_ALL("%s not found (set INFERNO_BUILD)", gen);
    snprintf(dir, sizeof(dir), "/tmp/inferno-invariance-XXXXXX");
    if (!mkdtemp(dir))
        T_SKIP_ALL("cannot make a temporary directory");
    atexit(cleanup);
    snprintf(f32, sizeof(f32), "%s/f32.gguf", dir);
    char cmd[2048];
    snprintf(cmd, sizeof(cmd),
             "'%s' --arch llama --vocab '%s' --out '%s' --shape tiny --n-layer 2 --n-ff 512 "
             "--ctx 8192 >/dev/null",
             gen, vocab, f32);
    if (system(cmd) != 0) {
        T__FAIL("gen-synthetic failed: %s", cmd);
        T_DONE();
    }
    for (int n = 0; n < N_PROMPT; n++)
        prompt[n] = (inf_token)(1 + (n * 131 + 17) % 500);

    static const char *const types[] = {"F32", "F16", "Q8_0", "Q4_0", "Q4_K", "Q6_K"};
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        char path[512];
        t__current = types[i];
        if (i == 0) {
            snprintf(path, sizeof(path), "%s", f32);
        } else {
            snprintf(path, sizeof(path), "%s/%s.gguf", dir, types[i]);
            struct inf_quant_params qp;
            inf_quant_params_init(&qp);
            qp.type = types[i];
            qp.pure = true;
            struct inf_quant_stats st;
            struct inf_error err = {0};
            if (inf_quantize_file(f32, path, &qp, &st, &err) != INF_OK) {
                T__FAIL("quantize to %s: %s", types[i], inf_error_message(&err));
                continue;
            }
        }
        check_model(types[i], path);
    }
    T_DONE();
}
