/*
 * inferno/sampling.h - the sampler chain: turns a row of logits into the next token.
 *
 * Stages run in a fixed, conventional order (the order llama.cpp's default chain uses):
 *   logit bias -> penalties (repetition / frequency / presence over the last penalty_last_n
 *   tokens) -> top-k -> typical-p -> top-p -> min-p -> temperature -> seeded random choice.
 * temperature <= 0 means greedy (argmax after bias and penalties). Each stage is disabled by
 * its neutral value (top_k 0, top_p 1, min_p 0, typical_p 1, penalties 1/0/0). For a given
 * seed and the same logits the choice is deterministic.
 */
#ifndef INFERNO_SAMPLING_H
#define INFERNO_SAMPLING_H

#include <stddef.h>
#include <stdint.h>

#include "inferno/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef int32_t inf_token;

/* Returned by inf_sampler_sample when no token can be chosen (see inf_sampler_errmsg). */
#define INF_TOKEN_NONE ((inf_token)-1)

/* Temperatures below this are greedy: at 1e-4 a logit gap of 0.01 already weighs e^100, and
   smaller values only risk overflow. */
#define INF_SAMPLER_GREEDY_BELOW 1e-4f

struct inf_logit_bias {
    inf_token token;
    float bias; /* added to the logit; -INFINITY bans the token */
};

struct inf_sampler_params {
    float temperature;       /* < INF_SAMPLER_GREEDY_BELOW (including <= 0): greedy */
    int32_t top_k;           /* 0: off */
    float top_p;             /* 1: off */
    float min_p;             /* 0: off */
    float typical_p;         /* 1: off */
    float repeat_penalty;    /* 1: off; divides positive logits, multiplies negative ones */
    float frequency_penalty; /* 0: off; subtracts count * value */
    float presence_penalty;  /* 0: off; subtracts value once for any occurrence */
    int32_t penalty_last_n;  /* window of recent tokens the penalties look at; 0 off, -1 all */
    uint64_t seed;
    const struct inf_logit_bias *logit_bias;
    size_t n_logit_bias;
};

/* Neutral parameters: temperature 0.8, top_k 40, top_p 0.95, min_p 0.05, the rest off. */
struct inf_sampler_params inf_sampler_default_params(void);

struct inf_sampler;

/* A sampler for a vocabulary of n_vocab tokens. The logit bias list is copied. */
inf_status inf_sampler_new(const struct inf_sampler_params *p, int32_t n_vocab,
                           struct inf_sampler **out, struct inf_error *err);
void inf_sampler_free(struct inf_sampler *s);

/*
 * Choose a token from logits[n_vocab] (not modified). Returns INF_TOKEN_NONE, with the reason
 * in inf_sampler_errmsg(), when none can be chosen: a logit is NaN or +inf (before or after the
 * bias and penalties), or every token is banned (-inf). Never a silent pick.
 */
inf_token inf_sampler_sample(struct inf_sampler *s, const float *logits);

/*
 * inf_sampler_sample over the tokens whose bit is set in mask (bit i % 32 of mask[i / 32];
 * tokens at or past n_mask never): the choice inf_sampler_sample makes on the row with every
 * other logit at -inf, without that copy or a pass over the whole vocabulary. The parameters
 * must have no logit bias and no penalties (INF_TOKEN_NONE with a message otherwise).
 */
inf_token inf_sampler_sample_masked(struct inf_sampler *s, const float *logits,
                                    const uint32_t *mask, int32_t n_mask);

/* Why the last inf_sampler_sample returned INF_TOKEN_NONE ("" otherwise); valid until the next
   call on s. */
const char *inf_sampler_errmsg(const struct inf_sampler *s);

/* Record a token as part of the history the penalties look at (prompt and generated). */
void inf_sampler_accept(struct inf_sampler *s, inf_token tok);

/* Forget the history and restart the random sequence from the seed. */
void inf_sampler_reset(struct inf_sampler *s);

/* Index of the largest logit (lowest index on ties). */
inf_token inf_argmax(const float *logits, int32_t n_vocab);

#ifdef __cplusplus
}
#endif
#endif
