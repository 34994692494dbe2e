/*
 * cmd_validate.c - `inferno validate MODEL`: structure checks (the readers' own), an optional
 * streamed checksum, and with --deep the values (every tensor dequantized and checked finite)
 * and the tensor set the architecture needs. Exit 0 valid, 1 invalid, 2 usage, and with --deep
 * 4 for a valid file the engine cannot run (no tensors, a tensor type the kernels lack, an
 * unsupported architecture, not GGUF).
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli/cli.h"
#include "cli/cli_engine.h"
#include "inferno/engine.h"
#include "inferno/gguf.h"
#include "inferno/kernels.h"
#include "inferno/log.h"
#include "inferno/model_file.h"
#include "inferno/safetensors.h"

#define VALIDATE_EXIT_NOT_RUNNABLE 4 /* --deep: valid, but the engine cannot run it */

const struct inf_cli_opt inf_cmd_validate_opts[] = {
    {"checksum", 0, INF_OPT_VALUE, "ALG", "compute a checksum: sha256 or blake2b", NULL},
    {"expect", 0, INF_OPT_VALUE, "HEX", "the checksum the file must have", NULL},
    {"deep", 0, INF_OPT_FLAG, NULL,
     "check tensor values and the architecture's tensor set; exit 4 when the file is valid but "
     "not runnable by the engine",
     NULL},
    {NULL, 0, 0, NULL, NULL, NULL},
};

static int checksum(const char *path, const char *alg, char *hex, size_t size,
                    struct inf_error *err)
{
    const EVP_MD *md = strcmp(alg, "sha256") == 0    ? EVP_sha256()
                       : strcmp(alg, "blake2b") == 0 ? EVP_blake2b512()
                                                     : NULL;
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int dlen = 0;
    if (!md)
        return inf_error_set(err, INF_EUSAGE, "unknown checksum '%s' (sha256 or blake2b)", alg);
    FILE *f = fopen(path, "rb");
    if (!f)
        return inf_error_set(err, INF_EIO, "cannot open '%s': %s", path, strerror(errno));
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char *buf = malloc(1 << 20);
    inf_status st = INF_OK;
    if (!ctx || !buf || !EVP_DigestInit_ex(ctx, md, NULL)) {
        st = inf_error_set(err, INF_ENOMEM, "cannot start the digest");
        goto out;
    }
    size_t n;
    while ((n = fread(buf, 1, 1 << 20, f)) > 0)
        EVP_DigestUpdate(ctx, buf, n);
    if (ferror(f)) {
        st = inf_error_set(err, INF_EIO, "reading '%s': %s", path, strerror(errno));
        goto out;
    }
    EVP_DigestFinal_ex(ctx, digest, &dlen);
    for (unsigned i = 0; i < dlen && 2 * i + 2 < size; i++)
        snprintf(hex + 2 * i, 3, "%02x", digest[i]);
out:
    free(buf);
    EVP_MD_CTX_free(ctx);
    fclose(f);
    return st;
}

static int unexpected_tensors(const struct inf_gguf *g, bool encoder);

static void report_value(void *arg, const struct inf_gguf_tensor *t, uint64_t row, uint64_t col,
                         float value)
{
    (void)arg;
    printf("  tensor '%.*s': row %llu element %llu is %g\n", (int)t->name.len, t->name.data,
           (unsigned long long)row, (unsigned long long)col, (double)value);
}

/* Every tensor the engine can read, dequantized and checked finite; returns problems found. */
static int deep_values(const struct inf_gguf *g)
{
    size_t bad = 0, skipped = 0;
    struct inf_error err = {0};
    int problems = 0;
    if (inf_gguf_check_values(g, report_value, NULL, &bad, &skipped, &err) != INF_OK) {
        printf("  values: %s\n", inf_error_message(&err));
        problems++;
    }
    if (skipped)
        printf("  %zu tensors of types the kernels do not read were not value-checked\n", skipped);
    return problems + (int)(bad > INT_MAX - 1 ? INT_MAX - 1 : bad);
}

/*
 * Whether the engine can run the file: tensors, of types the kernels compute, an architecture,
 * and the tensor set the loader wants. Returns problems found (an invalid tensor set); writes
 * why (size bytes) when the file is valid but not runnable.
 */
static int deep_runnable(const struct inf_gguf *g, const char *path, char *why, size_t size,
                         struct inf_error *err)
{
    const char *arch = NULL;
    int problems = 0;
    if (inf_gguf_n_tensors(g) == 0) {
        snprintf(why, size, "the file has no tensors");
        return 0;
    }
    if (inf_gguf_check_compute(g, err) != INF_OK) {
        snprintf(why, size, "%s", inf_error_message(err));
        return 0;
    }
    if (inf_gguf_get_str(g, "general.architecture", &arch, NULL, NULL) != INF_OK) {
        snprintf(why, size, "no general.architecture in the metadata");
        return 0;
    }
    struct inf_model *m = NULL;
    struct inf_model_params mp = inf_model_default_params();
    enum inf_log_level lv = inf_log_get_level();
    inf_log_set_level(INF_LOG_ERROR);
    inf_status st = inf_model_load(path, &mp, &m, err);
    inf_log_set_level(lv);
    if (st == INF_OK) {
        problems += unexpected_tensors(g, inf_model_is_encoder(m));
        printf("  tensor set: complete for architecture '%s'\n", arch);
    } else if (st == INF_EUNSUPPORTED) {
        snprintf(why, size, "%s", inf_error_message(err));
    } else {
        printf("  tensor set: %s\n", inf_error_message(err));
        problems++;
    }
    inf_model_free(m);
    return problems;
}

/* Tensor names the encoder loader (bert, nomic-bert: src/engine/encoder.c) reads. */
static bool encoder_tensor(const char *name)
{
    static const char *const global[] = {"token_embd.weight",
                                         "token_types.weight",
                                         "position_embd.weight",
                                         "token_embd_norm.weight",
                                         "token_embd_norm.bias",
                                         "cls.weight",
                                         "cls.bias",
                                         "cls.output.weight",
                                         "cls.output.bias"};
    static const char *const layer[] = {"attn_q.weight",
                                        "attn_k.weight",
                                        "attn_v.weight",
                                        "attn_q.bias",
                                        "attn_k.bias",
                                        "attn_v.bias",
                                        "attn_qkv.weight",
                                        "attn_qkv.bias",
                                        "attn_output.weight",
                                        "attn_output.bias",
                                        "attn_output_norm.weight",
                                        "attn_output_norm.bias",
                                        "ffn_up.weight",
                                        "ffn_up.bias",
                                        "ffn_gate.weight",
                                        "ffn_down.weight",
                                        "ffn_down.bias",
                                        "layer_output_norm.weight",
                                        "layer_output_norm.bias"};
    for (size_t k = 0; k < sizeof(global) / sizeof(global[0]); k++)
        if (strcmp(name, global[k]) == 0)
            return true;
    if (strncmp(name, "blk.", 4) != 0)
        return false;
    char *end;
    (void)strtol(name + 4, &end, 10);
    if (end == name + 4 || *end != '.')
        return false;
    for (size_t k = 0; k < sizeof(layer) / sizeof(layer[0]); k++)
        if (strcmp(end + 1, layer[k]) == 0)
            return true;
    return false;
}

/* Tensor names the llama-family loader (or, for an encoder, encoder_tensor) does not use. */
static int unexpected_tensors(const struct inf_gguf *g, bool encoder)
{
    static const char *const layer[] = {
        "attn_norm.weight",   "attn_q.weight",      "attn_k.weight",   "attn_v.weight",
        "attn_output.weight", "attn_q.bias",        "attn_k.bias",     "attn_v.bias",
        "attn_q_norm.weight", "attn_k_norm.weight", "ffn_norm.weight", "ffn_gate.weight",
        "ffn_up.weight",      "ffn_down.weight",    "attn_rot_embd"};
    int n = 0;
    for (size_t i = 0; i < inf_gguf_n_tensors(g); i++) {
        const struct inf_gguf_tensor *t = inf_gguf_tensor_at(g, i);
        char name[256];
        snprintf(name, sizeof(name), "%.*s", (int)(t->name.len < 255 ? t->name.len : 255),
                 t->name.data);
        bool known = strcmp(name, "token_embd.weight") == 0 ||
                     strcmp(name, "output_norm.weight") == 0 ||
                     strcmp(name, "output.weight") == 0 || strcmp(name, "rope_freqs.weight") == 0;
        if (encoder)
            known = encoder_tensor(name);
        int li, off = 0;
        if (!known && !encoder && sscanf(name, "blk.%d.%n", &li, &off) == 1 && off > 0)
            for (size_t k = 0; k < sizeof(layer) / sizeof(layer[0]) && !known; k++)
                known = strcmp(name + off, layer[k]) == 0;
        if (!known) {
            printf("  unexpected tensor '%s'\n", name);
            n++;
        }
    }
    return n;
}

int inf_cmd_validate(struct inf_cli *cli, struct inf_cli_args *args)
{
    char path[4096];
    struct inf_error err = {0};
    struct inf_model_format_info fi;
    int problems = 0;
    char not_runnable[512] = ""; /* --deep: why the engine cannot run a valid file */

    if (inf_models_resolve_cli(cli, args->positional[0], path, sizeof(path)) != 0)
        return INF_EXIT_FAIL;
    const char *alg = inf_cli_value(args, "checksum");
    if (inf_cli_has(args, "expect") && !alg)
        alg = strlen(inf_cli_value(args, "expect")) == 128 ? "blake2b" : "sha256";
    if (alg && strcmp(alg, "sha256") && strcmp(alg, "blake2b")) {
        inf_cli_errorf(cli, "unknown checksum '%s' (sha256 or blake2b)", alg);
        return INF_EXIT_USAGE;
    }
    if (inf_model_detect_file(path, &fi, &err) != INF_OK) {
        printf("invalid: %s\n", inf_error_message(&err));
        return INF_EXIT_FAIL;
    }
    if (fi.format == INF_MODEL_FORMAT_GGUF) {
        struct inf_gguf *g = NULL;
        if (inf_gguf_open_file(path, &g, &err) != INF_OK) {
            printf("invalid: %s\n", inf_error_message(&err));
            return INF_EXIT_FAIL;
        }
        printf("details: GGUF v%u, %zu metadata keys, %zu tensors\n", inf_gguf_version(g),
               inf_gguf_n_kv(g), inf_gguf_n_tensors(g));
        if (inf_cli_has(args, "deep")) {
            problems += deep_values(g);
            problems += deep_runnable(g, path, not_runnable, sizeof(not_runnable), &err);
        }
        inf_gguf_free(g);
    } else if (fi.format == INF_MODEL_FORMAT_SAFETENSORS) {
        struct inf_safetensors *st = NULL;
        if (inf_safetensors_open_file(path, &st, &err) != INF_OK) {
            printf("invalid: %s\n", inf_error_message(&err));
            return INF_EXIT_FAIL;
        }
        printf("details: safetensors, %zu tensors\n", inf_safetensors_n_tensors(st));
        inf_safetensors_free(st);
        if (inf_cli_has(args, "deep"))
            snprintf(not_runnable, sizeof(not_runnable), "the engine runs GGUF files only");
    } else {
        printf("details: %s (%s); only the format was checked\n", inf_model_format_name(fi.format),
               fi.detail);
        if (inf_cli_has(args, "deep"))
            snprintf(not_runnable, sizeof(not_runnable), "the engine runs GGUF files only");
    }
    if (alg) {
        char hex[2 * EVP_MAX_MD_SIZE + 1] = "";
        if (checksum(path, alg, hex, sizeof(hex), &err) != INF_OK) {
            printf("invalid: %s\n", inf_error_message(&err));
            return INF_EXIT_FAIL;
        }
        printf("%s: %s\n", alg, hex);
        const char *want = inf_cli_value(args, "expect");
        if (want && strcasecmp(want, hex) != 0) {
            printf("  checksum mismatch: expected %s\n", want);
            problems++;
        }
    }
    if (problems) {
        printf("invalid: %s: %d problem%s found\n", path, problems, problems == 1 ? "" : "s");
        return INF_EXIT_FAIL;
    }
    if (not_runnable[0]) {
        printf("valid but not runnable: %s: %s\n", path, not_runnable);
        return VALIDATE_EXIT_NOT_RUNNABLE;
    }
    printf("valid: %s\n", path);
    return INF_EXIT_OK;
}
