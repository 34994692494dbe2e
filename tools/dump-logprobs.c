/*
 * dump-logprobs.c - greedy (or teacher-forced) generation printing, per position, the chosen
 * id and the top-5 log-probabilities: the same format as the llama.cpp-side dumper used for
 * parity checks (scripts/parity.sh), so two outputs can be compared line by line.
 *
 *   dump-logprobs MODEL "PROMPT" N_GEN KV(f32|f16|q8_0) [FORCE_IDS_FILE]
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inferno/engine.h"
#include "inferno/log.h"
#include "inferno/tokenizer.h"

int main(int argc, char **argv)
{
    struct inf_error err = {0};
    struct inf_model *m = NULL;
    struct inf_context *c = NULL;
    if (argc < 5) {
        fprintf(stderr, "usage: dump-logprobs MODEL PROMPT N_GEN KV [FORCE_IDS_FILE]\n");
        return 2;
    }
    inf_log_set_level(INF_LOG_ERROR);
    struct inf_model_params mp = inf_model_default_params();
    if (inf_model_load(argv[1], &mp, &m, &err) != INF_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    struct inf_context_params cp = inf_context_default_params();
    cp.n_ctx = 512;
    cp.n_threads = 2;
    /* INFERNO_DUMP_CTX / INFERNO_DUMP_BATCH: other context and chunk sizes (a large context with
     * small chunks gives sliding-window models their own smaller cache) */
    if (getenv("INFERNO_DUMP_CTX"))
        cp.n_ctx = (uint32_t)atoi(getenv("INFERNO_DUMP_CTX"));
    if (getenv("INFERNO_DUMP_BATCH"))
        cp.n_batch = (uint32_t)atoi(getenv("INFERNO_DUMP_BATCH"));
    cp.kv_type = strcmp(argv[4], "f32") == 0    ? INF_KV_F32
                 : strcmp(argv[4], "q8_0") == 0 ? INF_KV_Q8_0
                                                : INF_KV_F16;
    if (inf_context_new(m, &cp, &c, &err) != INF_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    struct inf_model_info info;
    inf_model_get_info(m, &info);
    struct inf_tokens ids;
    inf_tokens_init(&ids);
    inf_tok_encode(inf_model_tokenizer(m), argv[2], strlen(argv[2]), INF_TOK_ADD_SPECIAL, &ids,
                   &err);
    printf("prompt:");
    for (size_t i = 0; i < ids.n; i++)
        printf(" %d", ids.ids[i]);
    printf("\n");
    int *force = NULL, n_force = 0;
    if (argc > 5) {
        FILE *f = fopen(argv[5], "r");
        int x;
        force = malloc(4096 * sizeof(int));
        while (f && n_force < 4096 && fscanf(f, "%d", &x) == 1)
            force[n_force++] = x;
        if (f)
            fclose(f);
    }
    int32_t *pos = malloc(ids.n * sizeof(int32_t));
    int8_t *want = calloc(ids.n, 1);
    for (size_t i = 0; i < ids.n; i++)
        pos[i] = (int32_t)i;
    want[ids.n - 1] = 1;
    struct inf_batch b = {(int32_t)ids.n, ids.ids, pos, NULL, want};
    if (inf_decode(c, &b, &err) != INF_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    const float *l = inf_get_logits_ith(c, (int32_t)ids.n - 1);
    int n_gen = atoi(argv[3]);
    int32_t p = (int32_t)ids.n;
    for (int i = 0; i < n_gen; i++) {
        float mx = l[0];
        for (int j = 1; j < info.n_vocab; j++)
            mx = l[j] > mx ? l[j] : mx;
        double s = 0;
        for (int j = 0; j < info.n_vocab; j++)
            s += exp((double)l[j] - mx);
        double lse = mx + log(s);
        int top[5];
        for (int k = 0; k < 5; k++) {
            int best = -1;
            for (int j = 0; j < info.n_vocab; j++) {
                bool used = false;
                for (int q = 0; q < k; q++)
                    used |= top[q] == j;
                if (!used && (best < 0 || l[j] > l[best]))
                    best = j;
            }
            top[k] = best;
        }
        inf_token t = force && i < n_force ? force[i] : top[0];
        printf("%d", t);
        for (int k = 0; k < 5; k++)
            printf(" %d:%.6f", top[k], l[top[k]] - lse);
        printf("\n");
        int8_t one = 1;
        struct inf_batch nb = {1, &t, &p, NULL, &one};
        if (inf_decode(c, &nb, &err) != INF_OK) {
            fprintf(stderr, "%s\n", err.msg);
            return 1;
        }
        p++;
        l = inf_get_logits_ith(c, 0);
    }
    free(force);
    free(pos);
    free(want);
    inf_tokens_release(&ids);
    inf_context_free(c);
    inf_model_free(m);
    return 0;
}
