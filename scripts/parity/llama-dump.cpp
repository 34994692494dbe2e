// Layer dumper built against llama.cpp (kept outside the Inferno repo), the other half of
// Inferno's INFERNO_DUMP: decodes a prompt as one batch (plain attention, f32 KV cache, every
// row's logits) and writes the graph's intermediate tensors that Inferno also writes, as
// OUTDIR/NAME.bin (rows of ne0 values, in order), and their shapes in OUTDIR/shapes.txt.
// usage: llama-dump MODEL PROMPT_FILE OUTDIR
// Compare with: scripts/parity/layer_diff.py INFERNO_DIR OUTDIR (see docs/parity.md).
#include "ggml.h"
#include "llama.h"

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

static std::string g_outdir;
static FILE *g_shapes;

static bool wanted(const char *name) {
    static const char *const prefixes[] = {"attn_norm-", "kqv_out-", "ffn_inp-", "ffn_norm-",
                                           "ffn_moe_logits-", "ffn_moe_topk-", "ffn_moe_out-",
                                           "ffn_out-", "l_out-"};
    if (strchr(name, ' '))  // views such as "Qcur-0 (reshaped)"
        return false;
    for (const char *p : prefixes)
        if (strncmp(name, p, strlen(p)) == 0)
            return true;
    return false;
}

static bool on_tensor(struct ggml_tensor *t, bool ask, void *) {
    if (ask)
        return wanted(t->name);
    if (!wanted(t->name))
        return true;
    const std::string path = g_outdir + "/" + t->name + ".bin";
    FILE *f = fopen(path.c_str(), "wb");
    if (!f) {
        fprintf(stderr, "cannot write %s\n", path.c_str());
        return false;
    }
    const size_t es = ggml_type_size(t->type);
    for (int64_t i3 = 0; i3 < t->ne[3]; i3++)
        for (int64_t i2 = 0; i2 < t->ne[2]; i2++)
            for (int64_t i1 = 0; i1 < t->ne[1]; i1++)
                for (int64_t i0 = 0; i0 < t->ne[0]; i0++)
                    fwrite((const char *)t->data + i0 * t->nb[0] + i1 * t->nb[1] + i2 * t->nb[2] +
                               i3 * t->nb[3],
                           es, 1, f);
    fclose(f);
    fprintf(g_shapes, "%s %s %lld %lld %lld %lld\n", t->name, ggml_type_name(t->type),
            (long long)t->ne[0], (long long)t->ne[1], (long long)t->ne[2], (long long)t->ne[3]);
    return true;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: llama-dump MODEL PROMPT_FILE OUTDIR\n");
        return 2;
    }
    g_outdir = argv[3];
    g_shapes = fopen((g_outdir + "/shapes.txt").c_str(), "w");
    if (!g_shapes) {
        fprintf(stderr, "cannot write %s/shapes.txt\n", argv[3]);
        return 1;
    }
    llama_log_set([](enum ggml_log_level, const char *, void *) {}, nullptr);
    llama_backend_init();
    llama_model *model = llama_model_load_from_file(argv[1], llama_model_default_params());
    if (!model)
        return 1;
    FILE *pf = fopen(argv[2], "rb");
    if (!pf)
        return 1;
    std::string text;
    char buf[4096];
    size_t r;
    while ((r = fread(buf, 1, sizeof(buf), pf)) > 0)
        text.append(buf, r);
    fclose(pf);
    const llama_vocab *vocab = llama_model_get_vocab(model);
    std::vector<llama_token> toks(text.size() + 8);
    const int n = llama_tokenize(vocab, text.c_str(), (int)text.size(), toks.data(),
                                 (int)toks.size(), true, false);
    if (n <= 0)
        return 1;
    auto cp = llama_context_default_params();
    cp.n_ctx = cp.n_batch = cp.n_ubatch = (uint32_t)n < 512 ? 512 : (uint32_t)n;
    cp.n_threads = cp.n_threads_batch = 2;
    cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
    cp.type_k = cp.type_v = GGML_TYPE_F32;
    cp.cb_eval = on_tensor;
    llama_context *ctx = llama_init_from_model(model, cp);
    if (!ctx)
        return 1;
    llama_batch b = llama_batch_init(n, 0, 1);
    for (int i = 0; i < n; i++) {
        b.token[i] = toks[i];
        b.pos[i] = i;
        b.n_seq_id[i] = 1;
        b.seq_id[i][0] = 0;
        b.logits[i] = 1;
    }
    b.n_tokens = n;
    const int rc = llama_decode(ctx, b);
    printf("prompt:");
    for (int i = 0; i < n; i++)
        printf(" %d", toks[i]);
    printf("\n");
    fclose(g_shapes);
    llama_batch_free(b);
    llama_free(ctx);
    llama_model_free(model);
    return rc ? 1 : 0;
}
