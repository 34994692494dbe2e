// Reference dumper built against llama.cpp (kept outside the Inferno repo).
// usage: ref MODEL "PROMPT" N_GEN FA(0/1) KV(f32|f16) [FORCE_IDS_FILE]
// prints: prompt ids; then per generated position: chosen id and top-5 (id:logprob)
// With FORCE_IDS_FILE (space-separated ids): teacher-forced on those ids instead of greedy.
#include "llama.h"
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>
#include <algorithm>
int main(int argc, char **argv) {
    if (argc < 6) { fprintf(stderr, "usage\n"); return 2; }
    llama_log_set([](enum ggml_log_level, const char *, void *) {}, nullptr);
    llama_backend_init();
    auto mp = llama_model_default_params();
    llama_model *model = llama_model_load_from_file(argv[1], mp);
    if (!model) return 1;
    auto cp = llama_context_default_params();
    cp.n_ctx = 512; cp.n_batch = 512; cp.n_ubatch = 512; cp.n_threads = 2; cp.n_threads_batch = 2;
    cp.flash_attn_type = atoi(argv[4]) ? LLAMA_FLASH_ATTN_TYPE_ENABLED : LLAMA_FLASH_ATTN_TYPE_DISABLED;
    ggml_type kv = strcmp(argv[5], "f32") == 0 ? GGML_TYPE_F32 : GGML_TYPE_F16;
    cp.type_k = kv; cp.type_v = kv;
    llama_context *ctx = llama_init_from_model(model, cp);
    const llama_vocab *vocab = llama_model_get_vocab(model);
    int nv = llama_vocab_n_tokens(vocab);
    std::vector<llama_token> toks(4096);
    int n = llama_tokenize(vocab, argv[2], strlen(argv[2]), toks.data(), toks.size(), true, false);
    toks.resize(n);
    printf("prompt:");
    for (auto t : toks) printf(" %d", t);
    printf("\n");
    std::vector<llama_token> force;
    if (argc > 6) { FILE *f = fopen(argv[6], "r"); int x; while (fscanf(f, "%d", &x) == 1) force.push_back(x); fclose(f); }
    int n_gen = atoi(argv[3]);
    llama_batch b = llama_batch_get_one(toks.data(), toks.size());
    if (llama_decode(ctx, b)) return 1;
    for (int i = 0; i < n_gen; i++) {
        const float *l = llama_get_logits_ith(ctx, -1);
        float mx = *std::max_element(l, l + nv);
        double s = 0; for (int j = 0; j < nv; j++) s += exp((double)l[j] - mx);
        double lse = mx + log(s);
        std::vector<int> idx(nv); for (int j = 0; j < nv; j++) idx[j] = j;
        std::partial_sort(idx.begin(), idx.begin() + 5, idx.end(), [&](int a, int c){ return l[a] > l[c] || (l[a] == l[c] && a < c); });
        llama_token t = force.empty() ? idx[0] : force[i];
        printf("%d", t);
        for (int k = 0; k < 5; k++) printf(" %d:%.6f", idx[k], l[idx[k]] - lse);
        printf("\n");
        llama_batch nb = llama_batch_get_one(&t, 1);
        if (llama_decode(ctx, nb)) return 1;
    }
    llama_free(ctx); llama_model_free(model);
    return 0;
}
