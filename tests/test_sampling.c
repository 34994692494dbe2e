/* test_sampling.c - the sampler chain against hand-computed distributions. */
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "inferno/sampling.h"
#include "t.h"

#define NV 8

static struct inf_sampler *make(struct inf_sampler_params p)
{
    struct inf_sampler *s = NULL;
    struct inf_error err = {0};
    T_EQ_INT(inf_sampler_new(&p, NV, &s, &err), INF_OK);
    return s;
}

static struct inf_sampler *make_n(struct inf_sampler_params p, int32_t nv)
{
    struct inf_sampler *s = NULL;
    struct inf_error err = {0};
    T_EQ_INT(inf_sampler_new(&p, nv, &s, &err), INF_OK);
    return s;
}

static struct inf_sampler_params neutral(void)
{
    struct inf_sampler_params p = inf_sampler_default_params();
    p.top_k = 0;
    p.top_p = 1;
    p.min_p = 0;
    p.temperature = 1;
    return p;
}

/* Draws n tokens from a sampler made with p over the logits l; seen[id] counts each id. */
static void sample_counts(struct inf_sampler_params p, const float *l, int n, int seen[NV])
{
    struct inf_sampler *s = make(p);
    for (int i = 0; i < NV; i++)
        seen[i] = 0;
    for (int i = 0; i < n; i++)
        seen[inf_sampler_sample(s, l)]++;
    inf_sampler_free(s);
}

static void test_greedy(void)
{
    float l[NV] = {0.1f, 2.0f, -1.0f, 3.5f, 3.5f, 0.0f, -7.0f, 1.0f};
    struct inf_sampler_params p = neutral();
    p.temperature = 0;
    struct inf_sampler *s = make(p);
    T_EQ_INT(inf_sampler_sample(s, l), 3); /* ties go to the lower id */
    T_EQ_INT(inf_argmax(l, NV), 3);
    inf_sampler_free(s);

    /* top_k 1 at any temperature is greedy */
    p = neutral();
    p.top_k = 1;
    s = make(p);
    for (int i = 0; i < 50; i++)
        T_EQ_INT(inf_sampler_sample(s, l), 3);
    inf_sampler_free(s);
}

/* Empirical frequencies over many draws match the softmax within sampling noise. */
static void test_distribution(void)
{
    float l[NV] = {1.0f, 0.0f, 2.0f, -1.0f, 0.5f, 0.0f, 0.0f, -3.0f};
    double ex[NV], sum = 0;
    int counts[NV] = {0};
    const int N = 200000;
    for (int i = 0; i < NV; i++)
        sum += ex[i] = exp(l[i]);
    struct inf_sampler *s = make(neutral());
    for (int i = 0; i < N; i++)
        counts[inf_sampler_sample(s, l)]++;
    for (int i = 0; i < NV; i++) {
        double p = ex[i] / sum;
        double sd = sqrt(p * (1 - p) / N);
        T_NEAR((double)counts[i] / N, p, 5 * sd + 1e-4);
    }
    inf_sampler_free(s);

    /* temperature 0.5 doubles the logits */
    struct inf_sampler_params p = neutral();
    p.temperature = 0.5f;
    s = make(p);
    int c0 = 0, c2 = 0;
    for (int i = 0; i < N; i++) {
        int t = inf_sampler_sample(s, l);
        c0 += t == 0;
        c2 += t == 2;
    }
    T_NEAR((double)c2 / c0, exp(2.0), 0.25);
    inf_sampler_free(s);
}

static void test_truncation(void)
{
    /* probabilities: softmax of log(p) = p */
    float l[NV];
    const double pr[NV] = {0.4, 0.3, 0.15, 0.1, 0.03, 0.01, 0.007, 0.003};
    for (int i = 0; i < NV; i++)
        l[i] = (float)log(pr[i]);

    struct inf_sampler_params p = neutral();
    p.top_k = 3;
    int seen[NV];
    sample_counts(p, l, 20000, seen);
    T_OK(seen[0] && seen[1] && seen[2]);
    T_EQ_INT(seen[3] + seen[4] + seen[5] + seen[6] + seen[7], 0);

    p = neutral();
    p.top_p = 0.8f; /* 0.4 + 0.3 + 0.15 = 0.85 >= 0.8: keeps three */
    sample_counts(p, l, 20000, seen);
    T_OK(seen[2] > 0);
    T_EQ_INT(seen[3] + seen[4] + seen[5] + seen[6] + seen[7], 0);

    p = neutral();
    p.min_p = 0.3f; /* keeps p >= 0.12: ids 0, 1, 2 */
    sample_counts(p, l, 20000, seen);
    T_OK(seen[2] > 0);
    T_EQ_INT(seen[3] + seen[4] + seen[5] + seen[6] + seen[7], 0);

    /* typical_p: entropy H ~ 1.48 nats; the most typical tokens are those with -log p near H */
    p = neutral();
    p.typical_p = 0.2f;
    sample_counts(p, l, 5000, seen);
    /* |-log p - H|: id1 0.28, id2 0.42, id0 0.57 -> keeps id1 only (0.3 >= 0.2) */
    T_EQ_INT(seen[1], 5000);
}

static void test_penalties_and_bias(void)
{
    float l[NV] = {2.0f, 1.9f, -1.0f, -1.0f, -1.0f, -1.0f, -1.0f, -1.0f};
    struct inf_sampler_params p = neutral();
    p.temperature = 0;
    p.repeat_penalty = 1.5f; /* 2.0 / 1.5 = 1.33 < 1.9 */
    p.penalty_last_n = 4;
    struct inf_sampler *s = make(p);
    T_EQ_INT(inf_sampler_sample(s, l), 0);
    inf_sampler_accept(s, 0);
    T_EQ_INT(inf_sampler_sample(s, l), 1);
    /* the window forgets: four other tokens push 0 out */
    for (int i = 0; i < 4; i++)
        inf_sampler_accept(s, 5);
    T_EQ_INT(inf_sampler_sample(s, l), 0);
    inf_sampler_free(s);

    p = neutral();
    p.temperature = 0;
    p.frequency_penalty = 0.06f; /* two occurrences: 2.0 - 0.12 < 1.9 */
    p.penalty_last_n = -1;
    s = make(p);
    inf_sampler_accept(s, 0);
    T_EQ_INT(inf_sampler_sample(s, l), 0); /* 1.94 > 1.9 */
    inf_sampler_accept(s, 0);
    T_EQ_INT(inf_sampler_sample(s, l), 1);
    inf_sampler_reset(s);
    T_EQ_INT(inf_sampler_sample(s, l), 0);
    inf_sampler_free(s);

    p = neutral();
    p.temperature = 0;
    p.presence_penalty = 0.2f;
    p.penalty_last_n = 8;
    s = make(p);
    inf_sampler_accept(s, 0);
    inf_sampler_accept(s, 0);
    T_EQ_INT(inf_sampler_sample(s, l), 1); /* 1.8 < 1.9, once however many times */
    inf_sampler_free(s);

    struct inf_logit_bias bias[] = {{0, -INFINITY}, {7, 10.0f}};
    p = neutral();
    p.logit_bias = bias;
    p.n_logit_bias = 2;
    p.temperature = 0;
    s = make(p);
    T_EQ_INT(inf_sampler_sample(s, l), 7);
    inf_sampler_free(s);
    bias[1].bias = 0;
    p.temperature = 1;
    s = make(p);
    for (int i = 0; i < 2000; i++)
        T_OK(inf_sampler_sample(s, l) != 0);
    inf_sampler_free(s);
}

static void test_determinism(void)
{
    float l[NV] = {0.5f, 0.4f, 0.3f, 0.2f, 0.1f, 0.0f, -0.1f, -0.2f};
    struct inf_sampler_params p = neutral();
    p.seed = 42;
    struct inf_sampler *a = make(p), *b = make(p);
    int same = 1;
    int seq[64];
    for (int i = 0; i < 64; i++) {
        seq[i] = inf_sampler_sample(a, l);
        same &= seq[i] == inf_sampler_sample(b, l);
    }
    T_OK(same);
    inf_sampler_reset(a);
    same = 1;
    for (int i = 0; i < 64; i++)
        same &= seq[i] == inf_sampler_sample(a, l);
    T_OK(same);
    p.seed = 43;
    struct inf_sampler *c = make(p);
    int diff = 0;
    for (int i = 0; i < 64; i++)
        diff |= seq[i] != inf_sampler_sample(c, l);
    T_OK(diff);
    inf_sampler_free(a);
    inf_sampler_free(b);
    inf_sampler_free(c);

    struct inf_sampler *bad = NULL;
    struct inf_error err = {0};
    p.top_p = 1.5f;
    T_EQ_INT(inf_sampler_new(&p, NV, &bad, &err), INF_EINVAL);
    T_OK(bad == NULL);
}

/* inf_sampler_sample_masked against inf_sampler_sample on the row with the other tokens at
   -inf: the same token at every draw, for sparse and dense masks, every truncation; the
   refusals (nothing allowed, NaN allowed, bias or penalties asked). */
static void test_masked(void)
{
    enum { V = 1000, W = (V + 31) / 32 };
    float *l = malloc(V * sizeof(float)), *row = malloc(V * sizeof(float));
    uint32_t mask[W];
    uint64_t rng = 0x9E3779B97F4A7C15ull;
    struct inf_sampler_params ps[6];
    for (int k = 0; k < 6; k++)
        ps[k] = neutral();
    ps[1].top_k = 40;
    ps[2].top_k = 40, ps[2].top_p = 0.9f, ps[2].min_p = 0.05f, ps[2].temperature = 0.8f;
    ps[3].typical_p = 0.7f;
    ps[4].top_k = 5000; /* above the vocabulary */
    ps[5].temperature = 0;
    int mismatches = 0, draws = 0;
    for (int k = 0; k < 6; k++) {
        for (int density = 0; density < 4; density++) {
            /* density: 1 in 500 (fewer than top_k), 1 in 10, 1 in 2, all */
            for (int i = 0; i < W; i++)
                mask[i] = 0;
            for (int i = 0; i < V; i++) {
                rng = rng * 6364136223846793005ull + 1442695040888963407ull;
                uint32_t r = (uint32_t)(rng >> 33);
                bool on = density == 3 || r % (density == 0 ? 500 : density == 1 ? 10 : 2) == 0;
                if (i == 0 || on)
                    mask[i / 32] |= 1u << (i % 32);
                l[i] = (float)((r >> 8) % 20000) / 1000.0f - 10.0f;
            }
            for (int i = 0; i < V; i++)
                row[i] = (mask[i / 32] >> (i % 32)) & 1u ? l[i] : -INFINITY;
            ps[k].seed = 7 + (uint64_t)k;
            struct inf_sampler *a = make_n(ps[k], V), *b = make_n(ps[k], V);
            for (int d = 0; d < 300; d++) {
                inf_token x = inf_sampler_sample(a, row),
                          y = inf_sampler_sample_masked(b, l, mask, V);
                mismatches += x != y;
                T_OK(x != INF_TOKEN_NONE && ((mask[x / 32] >> (x % 32)) & 1u));
                draws++;
            }
            inf_sampler_free(a);
            inf_sampler_free(b);
        }
    }
    T_EQ_INT(mismatches, 0);
    T_EQ_INT(draws, 6 * 4 * 300);
    /* refusals */
    struct inf_sampler *s = make_n(ps[0], V);
    for (int i = 0; i < W; i++)
        mask[i] = 0;
    T_EQ_INT(inf_sampler_sample_masked(s, l, mask, V), INF_TOKEN_NONE);
    T_OK(strstr(inf_sampler_errmsg(s), "mask allows no token") != NULL);
    mask[0] = 1u << 3;
    l[3] = NAN;
    l[4] = NAN; /* not allowed: not looked at */
    T_EQ_INT(inf_sampler_sample_masked(s, l, mask, V), INF_TOKEN_NONE);
    T_OK(strstr(inf_sampler_errmsg(s), "token 3 is NaN") != NULL);
    l[3] = 1.0f;
    T_EQ_INT(inf_sampler_sample_masked(s, l, mask, V), 3);
    T_EQ_INT(inf_sampler_sample_masked(s, l, mask, 3), INF_TOKEN_NONE); /* past n_mask */
    inf_sampler_free(s);
    struct inf_sampler_params pb = ps[0];
    pb.repeat_penalty = 1.1f;
    s = make_n(pb, V);
    T_EQ_INT(inf_sampler_sample_masked(s, l, mask, V), INF_TOKEN_NONE);
    T_OK(strstr(inf_sampler_errmsg(s), "no logit bias or penalties") != NULL);
    inf_sampler_free(s);
    free(l);
    free(row);
}

/* #14 item 17: tiny temperatures, all tokens banned, NaN logits. */
static void test_degenerate(void)
{
    /* token 0 is the least likely; every tiny temperature must pick the most likely (3),
       whatever the seed, including the subnormal range where logit / T overflowed */
    float l[NV] = {-5.0f, 2.0f, -1.0f, 3.5f, 3.0f, 0.0f, -4.0f, 1.0f};
    const float temps[] = {1.4e-45f, 1e-44f, 1e-40f, 1e-38f, 1e-37f, 1e-30f, 1e-10f, 1e-5f};
    for (size_t k = 0; k < sizeof(temps) / sizeof(temps[0]); k++) {
        for (uint64_t seed = 1; seed <= 20; seed++) {
            struct inf_sampler_params p = neutral();
            p.temperature = temps[k];
            p.seed = seed;
            struct inf_sampler *s = make(p);
            T_EQ_INT(inf_sampler_sample(s, l), 3);
            inf_sampler_free(s);
        }
    }
    /* a temperature just above the threshold still samples and never returns a NaN pick */
    {
        struct inf_sampler_params p = neutral();
        p.temperature = 1e-3f;
        struct inf_sampler *s = make(p);
        for (int i = 0; i < 100; i++)
            T_EQ_INT(inf_sampler_sample(s, l), 3);
        inf_sampler_free(s);
    }

    /* a logit bias that bans every token: no pick, an error that says so */
    struct inf_logit_bias ban[NV];
    for (int i = 0; i < NV; i++)
        ban[i] = (struct inf_logit_bias){i, -INFINITY};
    for (int greedy = 0; greedy <= 1; greedy++) {
        struct inf_sampler_params p = neutral();
        p.temperature = greedy ? 0.0f : 0.8f;
        p.logit_bias = ban;
        p.n_logit_bias = NV;
        struct inf_sampler *s = make(p);
        T_EQ_INT(inf_sampler_sample(s, l), INF_TOKEN_NONE);
        T_OK(strstr(inf_sampler_errmsg(s), "banned") != NULL);
        inf_sampler_free(s);
    }
    /* all but one banned: that one, at any temperature */
    for (int greedy = 0; greedy <= 1; greedy++) {
        struct inf_sampler_params p = neutral();
        p.temperature = greedy ? 0.0f : 1.5f;
        p.logit_bias = ban;
        p.n_logit_bias = NV - 1; /* token 7 left */
        struct inf_sampler *s = make(p);
        for (int i = 0; i < 50; i++)
            T_EQ_INT(inf_sampler_sample(s, l), 7);
        T_EQ_STR(inf_sampler_errmsg(s), "");
        inf_sampler_free(s);
    }

    /* NaN or +inf among the logits is an error, at any temperature */
    float bad[NV];
    memcpy(bad, l, sizeof(bad));
    bad[5] = NAN;
    for (int greedy = 0; greedy <= 1; greedy++) {
        struct inf_sampler_params p = neutral();
        p.temperature = greedy ? 0.0f : 1.0f;
        struct inf_sampler *s = make(p);
        T_EQ_INT(inf_sampler_sample(s, bad), INF_TOKEN_NONE);
        T_OK(strstr(inf_sampler_errmsg(s), "NaN") != NULL);
        bad[5] = INFINITY;
        T_EQ_INT(inf_sampler_sample(s, bad), INF_TOKEN_NONE);
        T_OK(strstr(inf_sampler_errmsg(s), "infinite") != NULL);
        bad[5] = NAN;
        /* a good row afterwards samples again */
        T_OK(inf_sampler_sample(s, l) >= 0);
        inf_sampler_free(s);
    }
}

int main(void)
{
    T_RUN(test_greedy);
    T_RUN(test_distribution);
    T_RUN(test_truncation);
    T_RUN(test_penalties_and_bias);
    T_RUN(test_determinism);
    T_RUN(test_degenerate);
    T_RUN(test_masked);
    T_DONE();
}
