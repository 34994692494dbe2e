/* sampling.c - the sampler chain (see include/inferno/sampling.h for the order of stages). */
#include "inferno/sampling.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct cand {
    inf_token id;
    float logit;
    float p;
    float key; /* typical-p: distance of -log p from the entropy */
};

struct inf_sampler {
    struct inf_sampler_params p;
    struct inf_logit_bias *bias;
    int32_t n_vocab;
    struct cand *cands; /* [n_vocab] scratch */
    inf_token *history; /* ring of the last hist_cap tokens */
    size_t hist_cap, hist_n, hist_head;
    int32_t *counts; /* [n_vocab] scratch for the penalties */
    uint64_t rng[4];
    char errmsg[128]; /* why the last inf_sampler_sample returned INF_TOKEN_NONE */
};

struct inf_sampler_params inf_sampler_default_params(void)
{
    return (struct inf_sampler_params){
        .temperature = 0.8f,
        .top_k = 40,
        .top_p = 0.95f,
        .min_p = 0.05f,
        .typical_p = 1.0f,
        .repeat_penalty = 1.0f,
        .penalty_last_n = 64,
        .seed = 0x1234,
    }; /* the rest zero: off */
}

/* xoshiro256** seeded through splitmix64: fast, good, and the same on every platform. */
static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t rng_next(uint64_t s[4])
{
    uint64_t r = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return r;
}

/* Uniform in [0, 1) with 53 bits. */
static double rng_uniform(uint64_t s[4])
{
    return (double)(rng_next(s) >> 11) * (1.0 / 9007199254740992.0);
}

void inf_sampler_reset(struct inf_sampler *s)
{
    uint64_t x = s->p.seed;
    for (int i = 0; i < 4; i++)
        s->rng[i] = splitmix64(&x);
    s->hist_n = 0;
    s->hist_head = 0;
}

inf_status inf_sampler_new(const struct inf_sampler_params *p, int32_t n_vocab,
                           struct inf_sampler **out, struct inf_error *err)
{
    struct inf_sampler *s;
    *out = NULL;
    if (n_vocab <= 0)
        return inf_error_set(err, INF_EINVAL, "sampler: vocabulary size %d", (int)n_vocab);
    if (p->top_p < 0 || p->top_p > 1 || p->min_p < 0 || p->min_p > 1 || p->typical_p < 0 ||
        p->typical_p > 1 || p->top_k < 0 || !(p->repeat_penalty > 0) || isnan(p->temperature))
        return inf_error_set(err, INF_EINVAL,
                             "sampler: parameters out of range (top_p, min_p and typical_p in "
                             "[0, 1], top_k >= 0, repeat_penalty > 0)");
    s = calloc(1, sizeof(*s));
    if (!s)
        return inf_error_set(err, INF_ENOMEM, "out of memory");
    s->p = *p;
    s->n_vocab = n_vocab;
    s->cands = malloc((size_t)n_vocab * sizeof(*s->cands));
    s->counts = calloc((size_t)n_vocab, sizeof(*s->counts));
    s->hist_cap = p->penalty_last_n < 0 ? 1u << 20 : (size_t)p->penalty_last_n;
    s->history = s->hist_cap ? malloc(s->hist_cap * sizeof(*s->history)) : NULL;
    if (p->n_logit_bias) {
        s->bias = malloc(p->n_logit_bias * sizeof(*s->bias));
        if (s->bias)
            memcpy(s->bias, p->logit_bias, p->n_logit_bias * sizeof(*s->bias));
    }
    s->p.logit_bias = s->bias;
    if (!s->cands || !s->counts || (s->hist_cap && !s->history) || (p->n_logit_bias && !s->bias)) {
        inf_sampler_free(s);
        return inf_error_set(err, INF_ENOMEM, "out of memory");
    }
    inf_sampler_reset(s);
    *out = s;
    return INF_OK;
}

void inf_sampler_free(struct inf_sampler *s)
{
    if (!s)
        return;
    free(s->cands);
    free(s->counts);
    free(s->history);
    free(s->bias);
    free(s);
}

void inf_sampler_accept(struct inf_sampler *s, inf_token tok)
{
    if (!s->hist_cap)
        return;
    s->history[s->hist_head] = tok;
    s->hist_head = (s->hist_head + 1) % s->hist_cap;
    if (s->hist_n < s->hist_cap)
        s->hist_n++;
}

inf_token inf_argmax(const float *logits, int32_t n_vocab)
{
    inf_token best = 0;
    for (int32_t i = 1; i < n_vocab; i++)
        if (logits[i] > logits[best])
            best = i;
    return best;
}

static int by_logit_desc(const void *a, const void *b)
{
    const struct cand *x = a, *y = b;
    if (x->logit > y->logit)
        return -1;
    if (x->logit < y->logit)
        return 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

static int by_key_asc(const void *a, const void *b)
{
    const struct cand *x = a, *y = b;
    if (x->key < y->key)
        return -1;
    if (x->key > y->key)
        return 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

/*
 * Softmax of logit / temp over cands[0..n) (sorted descending, c[0] finite) into .p. The
 * differences to the maximum are scaled in double, so a tiny temperature cannot overflow them
 * to infinity (inf - inf would be NaN): they only grow very negative and exp() gives 0.
 */
static void softmax_t(struct cand *c, size_t n, double temp)
{
    double sum = 0;
    double mx = c[0].logit;
    for (size_t i = 0; i < n; i++) {
        c[i].p = isinf(c[i].logit) ? 0.0f : (float)exp(((double)c[i].logit - mx) / temp);
        sum += c[i].p;
    }
    for (size_t i = 0; i < n; i++)
        c[i].p = (float)(c[i].p / sum);
}

static void softmax(struct cand *c, size_t n)
{
    softmax_t(c, n, 1.0);
}

/* Sift down in a min-heap ordered by by_logit_desc (the root is the worst of the kept). */
static void heap_down(struct cand *h, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, w = i;
        if (l < n && by_logit_desc(&h[l], &h[w]) > 0)
            w = l;
        if (r < n && by_logit_desc(&h[r], &h[w]) > 0)
            w = r;
        if (w == i)
            return;
        struct cand t = h[i];
        h[i] = h[w];
        h[w] = t;
        i = w;
    }
}

/* Move the k best candidates to the front in descending order: O(n log k). */
static void top_k_sort(struct cand *c, size_t n, size_t k)
{
    if (k >= n) {
        qsort(c, n, sizeof(*c), by_logit_desc);
        return;
    }
    for (size_t i = k / 2; i-- > 0;)
        heap_down(c, k, i);
    for (size_t i = k; i < n; i++) {
        if (by_logit_desc(&c[i], &c[0]) < 0) {
            c[0] = c[i];
            heap_down(c, k, 0);
        }
    }
    qsort(c, k, sizeof(*c), by_logit_desc);
}

const char *inf_sampler_errmsg(const struct inf_sampler *s)
{
    return s->errmsg;
}

static inf_token sample_cands(struct inf_sampler *s, size_t n);

inf_token inf_sampler_sample_masked(struct inf_sampler *s, const float *logits,
                                    const uint32_t *mask, int32_t n_mask)
{
    const struct inf_sampler_params *p = &s->p;
    s->errmsg[0] = 0;
    if (p->n_logit_bias || p->repeat_penalty != 1.0f || p->frequency_penalty != 0.0f ||
        p->presence_penalty != 0.0f) {
        snprintf(s->errmsg, sizeof(s->errmsg),
                 "sampler: a masked draw takes no logit bias or penalties");
        return INF_TOKEN_NONE;
    }
    struct cand *c = s->cands;
    int32_t lim = n_mask < s->n_vocab ? n_mask : s->n_vocab;
    size_t n = 0;
    for (int32_t w = 0; w < (lim + 31) / 32; w++)
        for (uint32_t m = mask[w]; m; m &= m - 1) {
            int32_t i = w * 32 + __builtin_ctz(m);
            if (i >= lim)
                break;
            c[n].id = i;
            c[n++].logit = logits[i];
        }
    return sample_cands(s, n);
}

inf_token inf_sampler_sample(struct inf_sampler *s, const float *logits)
{
    struct cand *c = s->cands;
    size_t n = (size_t)s->n_vocab;
    const struct inf_sampler_params *p = &s->p;

    s->errmsg[0] = 0;
    for (size_t i = 0; i < n; i++) {
        c[i].id = (inf_token)i;
        c[i].logit = logits[i];
    }
    for (size_t i = 0; i < p->n_logit_bias; i++)
        if (p->logit_bias[i].token >= 0 && p->logit_bias[i].token < s->n_vocab)
            c[p->logit_bias[i].token].logit += p->logit_bias[i].bias;

    /* penalties over the recent window */
    bool penal = s->hist_n && (p->repeat_penalty != 1.0f || p->frequency_penalty != 0.0f ||
                               p->presence_penalty != 0.0f);
    if (penal) {
        for (size_t i = 0; i < s->hist_n; i++) {
            inf_token t = s->history[i];
            if (t >= 0 && t < s->n_vocab)
                s->counts[t]++;
        }
        for (size_t i = 0; i < s->hist_n; i++) {
            inf_token t = s->history[i];
            if (t < 0 || t >= s->n_vocab || s->counts[t] == 0)
                continue;
            float *l = &c[t].logit;
            if (*l > 0)
                *l /= p->repeat_penalty;
            else
                *l *= p->repeat_penalty;
            *l -= (float)s->counts[t] * p->frequency_penalty + p->presence_penalty;
            s->counts[t] = 0; /* applied once per distinct token; also clears the scratch */
        }
    }

    return sample_cands(s, n);
}

/* The choice among cands[0..n) once the bias and the penalties are in (inf_sampler_sample). */
static inf_token sample_cands(struct inf_sampler *s, size_t n)
{
    struct cand *c = s->cands;
    const struct inf_sampler_params *p = &s->p;
    if (n == 0) { /* only a masked draw gets here with none */
        snprintf(s->errmsg, sizeof(s->errmsg), "sampler: the mask allows no token");
        return INF_TOKEN_NONE;
    }
    /* one pass after the bias and the penalties finds the best token and refuses what no
       honest choice can come from: a NaN or +inf logit (from the model, or made by them) and a
       vocabulary where every token is banned */
    size_t best = 0;
    for (size_t i = 0; i < n; i++) {
        if (isnan(c[i].logit)) {
            snprintf(s->errmsg, sizeof(s->errmsg), "sampler: the logit of token %d is NaN",
                     (int)c[i].id);
            return INF_TOKEN_NONE;
        }
        if (c[i].logit > c[best].logit)
            best = i;
    }
    if (isinf(c[best].logit) && c[best].logit < 0) {
        snprintf(s->errmsg, sizeof(s->errmsg),
                 "sampler: every token is banned (logit bias -100 or -inf logits)");
        return INF_TOKEN_NONE;
    }
    if (isinf(c[best].logit)) {
        snprintf(s->errmsg, sizeof(s->errmsg), "sampler: the logit of token %d is infinite",
                 (int)c[best].id);
        return INF_TOKEN_NONE;
    }
    if (p->temperature < INF_SAMPLER_GREEDY_BELOW)
        return c[best].id;

    size_t k = p->top_k > 0 && (size_t)p->top_k < n ? (size_t)p->top_k : n;
    top_k_sort(c, n, k);
    n = k;

    if (p->typical_p < 1.0f && n > 1) {
        softmax(c, n);
        double ent = 0;
        for (size_t i = 0; i < n; i++)
            if (c[i].p > 0)
                ent -= c[i].p * log((double)c[i].p);
        /* sort by |-log p - H| ascending (O(n log n): top_k may be off), keep the smallest set
           with mass >= typical_p */
        for (size_t i = 0; i < n; i++)
            c[i].key = (float)fabs(-log(c[i].p > 0 ? (double)c[i].p : 1e-30) - ent);
        qsort(c, n, sizeof(*c), by_key_asc);
        double cum = 0;
        size_t keep = n;
        for (size_t i = 0; i < n; i++) {
            cum += c[i].p;
            if (cum >= p->typical_p) {
                keep = i + 1;
                break;
            }
        }
        n = keep;
        qsort(c, n, sizeof(*c), by_logit_desc);
    }

    if (p->top_p < 1.0f && n > 1) {
        softmax(c, n);
        double cum = 0;
        for (size_t i = 0; i < n; i++) {
            cum += c[i].p;
            if (cum >= p->top_p) {
                n = i + 1;
                break;
            }
        }
    }

    if (p->min_p > 0.0f && n > 1) {
        softmax(c, n);
        float thresh = c[0].p * p->min_p;
        size_t keep = 1;
        while (keep < n && c[keep].p >= thresh)
            keep++;
        n = keep;
    }

    softmax_t(c, n, (double)p->temperature);
    double r = rng_uniform(s->rng), cum = 0;
    for (size_t i = 0; i < n; i++) {
        cum += c[i].p;
        if (r < cum)
            return c[i].id;
    }
    return c[n - 1].id;
}
