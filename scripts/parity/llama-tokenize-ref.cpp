// Token ids from llama.cpp's own tokenizer (kept outside the Inferno build; docs/parity.md).
// usage: llama-tokenize-ref VOCAB.gguf TEXTS_FILE [ADD_SPECIAL(0/1)] [PARSE_SPECIAL(0/1)]
// TEXTS_FILE holds the texts separated by "\n__ggml_vocab_test__\n" (llama.cpp's .inp format);
// prints one line of space-separated ids per text, or "error" where llama.cpp throws.
#include "llama.h"
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>
int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: %s VOCAB TEXTS [ADD_SPECIAL] [PARSE_SPECIAL]\n", argv[0]); return 2; }
    bool add_special = argc > 3 && atoi(argv[3]), parse_special = argc > 4 && atoi(argv[4]);
    llama_log_set([](enum ggml_log_level, const char *, void *) {}, nullptr);
    llama_backend_init();
    auto mp = llama_model_default_params();
    mp.vocab_only = true;
    llama_model *model = llama_model_load_from_file(argv[1], mp);
    if (!model) { fprintf(stderr, "cannot load %s\n", argv[1]); return 1; }
    const llama_vocab *vocab = llama_model_get_vocab(model);
    std::ifstream f(argv[2], std::ios::binary);
    std::stringstream ss; ss << f.rdbuf();
    std::string all = ss.str(), sep = "\n__ggml_vocab_test__\n";
    size_t pos = 0;
    while (pos <= all.size()) {
        size_t e = all.find(sep, pos);
        if (e == std::string::npos) break;
        std::string t = all.substr(pos, e - pos);
        pos = e + sep.size();
        try {
            std::vector<llama_token> ids(t.size() * 4 + 16);
            int n = llama_tokenize(vocab, t.data(), (int32_t)t.size(), ids.data(), (int32_t)ids.size(), add_special, parse_special);
            if (n < 0) { ids.resize(-n); n = llama_tokenize(vocab, t.data(), (int32_t)t.size(), ids.data(), (int32_t)ids.size(), add_special, parse_special); }
            for (int i = 0; i < n; i++) printf(i ? " %d" : "%d", ids[i]);
            printf("\n");
        } catch (const std::exception &ex) {
            printf("error\n");
        }
    }
    llama_model_free(model);
    return 0;
}
