/*
 * fuzz_gguf_commands.c - libFuzzer target for what the commands do with a GGUF file, not only
 * the parser: the input (capped at 1 MiB) is written to a temporary file and goes through the
 * library calls behind `models info` (the reader, the metadata walk and parameter totals,
 * inf_model_probe), `validate --deep` (inf_gguf_check_values, inf_gguf_check_compute,
 * inf_model_load), `tokenize` (inf_tokenizer_load_gguf + inf_tok_encode + pieces) and
 * `quantize` (inf_quantize_file to Q8_0 into a temporary output). Every call must succeed or
 * fail with a message; totals must be consistent with the file size; quantize must leave no
 * temporary file. A broken invariant aborts (a crash for the fuzzer). The committed corpus
 * (fuzz/corpus/gguf_commands, written by tests/gguf_command_fuzz.py --write-seeds, plus the
 * files of #14) is replayed by CTest in normal builds, ASan included.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"
#include "inferno/engine.h"
#include "inferno/gguf.h"
#include "inferno/log.h"
#include "inferno/models.h"
#include "inferno/quantize.h"
#include "inferno/tokenizer.h"

#define FUZZ_MAX_INPUT (1u << 20)

/* A failure must say what went wrong. */
#define FAILED_WITH_MESSAGE(rc, err) ((rc) != INF_OK && (err).code == (rc) && (err).msg[0] != '\0')

static char dir[64];

static void cleanup(void)
{
    (void)rmdir(dir); /* empty: every run removes its files */
}

static void setup(void)
{
    if (dir[0])
        return;
    snprintf(dir, sizeof(dir), "/tmp/inferno-fuzz-cmd-XXXXXX");
    CHECK(mkdtemp(dir) != NULL);
    atexit(cleanup);
    inf_log_set_level(INF_LOG_OFF);
}

static void models_info(const char *path, uint64_t size)
{
    struct inf_gguf *g = NULL;
    struct inf_error err = {0};
    inf_status rc = inf_gguf_open_file(path, &g, &err);
    if (rc != INF_OK) {
        CHECK(FAILED_WITH_MESSAGE(rc, err) && g == NULL);
        return;
    }
    uint64_t n_params = 0, bytes = 0;
    for (size_t i = 0; i < inf_gguf_n_tensors(g); i++) {
        const struct inf_gguf_tensor *t = inf_gguf_tensor_at(g, i);
        struct inf_ggml_size sz;
        CHECK(inf_ggml_size(t->type, t->n_dims, t->ne, NULL, &sz, NULL) == INF_OK);
        CHECK(sz.n_bytes == t->n_bytes && sz.n_elements == t->n_elements);
        CHECK(sz.n_rows * sz.row_bytes == sz.n_bytes);
        CHECK(t->n_bytes <= size);
        /* at most 8 values per byte (Q1_0 stores 128 in 18) */
        CHECK(t->n_elements <= 8 * (t->n_bytes + 1) || t->n_bytes == 0);
        n_params += t->n_elements;
        bytes += t->n_bytes;
    }
    CHECK(bytes <= size);
    const char *arch = NULL;
    (void)inf_gguf_get_str(g, "general.architecture", &arch, NULL, &err);
    inf_gguf_free(g);

    struct inf_model_summary s;
    rc = inf_model_probe(path, &s, &err);
    CHECK(rc == INF_OK || FAILED_WITH_MESSAGE(rc, err));
    if (rc == INF_OK)
        CHECK(s.n_params == n_params);
}

static void validate_deep(const char *path)
{
    struct inf_gguf *g = NULL;
    struct inf_error err = {0};
    if (inf_gguf_open_file(path, &g, &err) != INF_OK)
        return;
    size_t bad = 0, skipped = 0;
    inf_status rc = inf_gguf_check_values(g, NULL, NULL, &bad, &skipped, &err);
    CHECK(rc == INF_OK || FAILED_WITH_MESSAGE(rc, err));
    CHECK(bad + skipped <= inf_gguf_n_tensors(g));
    rc = inf_gguf_check_compute(g, &err);
    CHECK(rc == INF_OK || FAILED_WITH_MESSAGE(rc, err));
    inf_gguf_free(g);

    struct inf_model *m = NULL;
    struct inf_model_params mp = inf_model_default_params();
    memset(&err, 0, sizeof(err));
    rc = inf_model_load(path, &mp, &m, &err);
    CHECK(rc == INF_OK ? m != NULL : (m == NULL && FAILED_WITH_MESSAGE(rc, err)));
    inf_model_free(m);
}

static void tokenize(const char *path)
{
    static const char text[] = "Hello world, <s> 123 \xc3\xa9\xe2\x82\xac \xff!";
    struct inf_tokenizer *tok = NULL;
    struct inf_error err = {0};
    inf_status rc = inf_tokenizer_load_gguf(path, &tok, &err);
    if (rc != INF_OK) {
        CHECK(tok == NULL && FAILED_WITH_MESSAGE(rc, err));
        return;
    }
    struct inf_tokens ids;
    inf_tokens_init(&ids);
    rc = inf_tok_encode(tok, text, sizeof(text) - 1, INF_TOK_ADD_SPECIAL | INF_TOK_PARSE_SPECIAL,
                        &ids, &err);
    CHECK(rc == INF_OK || FAILED_WITH_MESSAGE(rc, err));
    const struct inf_tok_info *info = inf_tok_info(tok);
    for (size_t i = 0; rc == INF_OK && i < ids.n; i++) {
        size_t len = 0;
        CHECK(ids.ids[i] >= 0 && (size_t)ids.ids[i] < info->n_tokens);
        const char *piece = inf_tok_piece(tok, ids.ids[i], true, &len);
        CHECK(piece != NULL || len == 0);
    }
    inf_tokens_release(&ids);
    inf_tokenizer_free(tok);
}

static void quantize(const char *path)
{
    char out[96];
    struct inf_quant_params p;
    struct inf_error err = {0};
    snprintf(out, sizeof(out), "%s/out.gguf", dir);
    inf_quant_params_init(&p);
    p.type = "Q8_0";
    p.n_threads = 1;
    p.force = true;
    inf_status rc = inf_quantize_file(path, out, &p, NULL, &err);
    CHECK(rc == INF_OK || FAILED_WITH_MESSAGE(rc, err));
    if (rc == INF_OK) {
        /* what quantize writes, the reader takes */
        struct inf_gguf *g = NULL;
        CHECK(inf_gguf_open_file(out, &g, &err) == INF_OK);
        inf_gguf_free(g);
        CHECK(unlink(out) == 0);
    }
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d)))
        CHECK(strstr(e->d_name, ".tmp.") == NULL); /* no temporary file left */
    if (d)
        closedir(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[96];
    setup();
    if (size > FUZZ_MAX_INPUT)
        size = FUZZ_MAX_INPUT;
    snprintf(path, sizeof(path), "%s/in.gguf", dir);
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    CHECK(fwrite(data, 1, size, f) == size || size == 0);
    CHECK(fclose(f) == 0);

    models_info(path, size);
    validate_deep(path);
    tokenize(path);
    quantize(path);
    unlink(path);
    return 0;
}
