/*
 * fuzz_convert.c - libFuzzer target for `inferno convert`'s handling of outside JSON: config.json,
 * tokenizer.json and tokenizer_config.json (inf_convert_metadata_from_memory), and the sharded
 * checkpoint index (inf_safetensors_open_index).
 *
 * Input (capped at 1 MiB): the first byte selects the mode. 0 mod 3: the rest is up to three
 * parts separated by a line "\n#--\n": config.json, tokenizer.json, tokenizer_config.json (a
 * missing part is NULL); 2 mod 3: the same with a tokenizer.model (SentencePiece protobuf) as
 * the second part. The metadata is converted into a GGUF writer; on success the GGUF is written to
 * memory and must parse, and a tokenizer built from it must load or refuse with an error (never
 * crash); on failure the error needs a message. 1 mod 3: the rest is written as
 * model.safetensors.index.json in a private temporary directory and opened; its shards do not
 * exist, so only refusals are expected, each with a message. A broken invariant aborts.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"
#include "inferno/convert.h"
#include "inferno/gguf.h"
#include "inferno/safetensors.h"
#include "inferno/tokenizer.h"

#define FUZZ_MAX_INPUT (1u << 20)
#define SEP            "\n#--\n"

static void check_metadata(const char *p, size_t n, bool sp)
{
    const char *part[3] = {NULL, NULL, NULL};
    size_t len[3] = {0, 0, 0};
    int k = 0;
    const char *end = p + n;
    part[0] = p;
    while (k < 3) {
        const char *s = memmem(part[k], (size_t)(end - part[k]), SEP, strlen(SEP));
        if (!s || k == 2) {
            len[k] = (size_t)(end - part[k]);
            break;
        }
        len[k] = (size_t)(s - part[k]);
        part[++k] = s + strlen(SEP);
    }
    struct inf_gguf_writer *w = NULL;
    struct inf_error err = {0};
    CHECK(inf_gguf_writer_new(3, &w, &err) == INF_OK);
    struct inf_convert_files in = {part[0], len[0], part[1], len[1], part[2], len[2], NULL, 0};
    if (sp) { /* the second part is a tokenizer.model */
        in.sp_model = part[1];
        in.sp_model_len = len[1];
        in.tokenizer = NULL;
        in.tokenizer_len = 0;
    }
    inf_status rc = inf_convert_metadata_from_memory(&in, w, &err);
    if (rc != INF_OK) {
        CHECK(err.code == rc && err.msg[0] != '\0');
        inf_gguf_writer_free(w);
        return;
    }
    void *img = NULL;
    size_t size = 0;
    rc = inf_gguf_writer_write_memory(w, &img, &size, &err);
    CHECK(rc == INF_OK);
    struct inf_gguf *g = NULL;
    rc = inf_gguf_open_memory(img, size, &g, &err);
    CHECK(rc == INF_OK);
    const char *arch = NULL;
    CHECK(inf_gguf_get_str(g, "general.architecture", &arch, NULL, &err) == INF_OK);
    struct inf_tokenizer *tok = NULL;
    struct inf_error terr = {0};
    rc = inf_tokenizer_from_gguf(g, &tok, &terr);
    CHECK(rc == INF_OK || terr.msg[0] != '\0');
    inf_tokenizer_free(tok);
    inf_gguf_free(g);
    free(img);
    inf_gguf_writer_free(w);
}

static void check_index(const uint8_t *p, size_t n)
{
    char dir[] = "/tmp/fuzz-convert-XXXXXX", path[64];
    if (!mkdtemp(dir))
        return;
    snprintf(path, sizeof(path), "%s/model.safetensors.index.json", dir);
    FILE *f = fopen(path, "wb");
    if (f) {
        fwrite(p, 1, n, f);
        fclose(f);
        struct inf_safetensors *st = NULL;
        struct inf_error err = {0};
        inf_status rc = inf_safetensors_open_index(path, &st, &err);
        /* no shard exists beside it: an index can only be refused (an empty weight map too) */
        CHECK(rc != INF_OK ? st == NULL && err.msg[0] != '\0' : st != NULL);
        inf_safetensors_free(st);
        unlink(path);
    }
    rmdir(dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > FUZZ_MAX_INPUT)
        size = FUZZ_MAX_INPUT;
    if (size < 1)
        return 0;
    if (data[0] % 3 == 0)
        check_metadata((const char *)data + 1, size - 1, false);
    else if (data[0] % 3 == 2) /* the second part is a tokenizer.model */
        check_metadata((const char *)data + 1, size - 1, true);
    else
        check_index(data + 1, size - 1);
    return 0;
}
