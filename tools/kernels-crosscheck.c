/*
 * kernels-crosscheck - compare Inferno's quantizers and dequantizers with files llama.cpp wrote.
 *
 *   kernels-crosscheck deq FILE.gguf FILE.gguf.deq
 *       Dequantize every tensor of FILE.gguf with inf_dequantize_row and compare, bit for bit,
 *       with FILE.gguf.deq: llama.cpp's own dequantization of the same tensors (ggml's
 *       type_traits to_float), float32, tensors in file order.
 *   kernels-crosscheck quant SOURCE.gguf QUANT.gguf
 *       For every tensor of QUANT.gguf (written by llama-quantize from SOURCE.gguf), quantize the
 *       same tensor of SOURCE.gguf (F32, F16 or BF16) with inf_quantize_row to QUANT's type and
 *       compare the bytes.
 *
 * Exit status 0 when everything matched. The .deq dumps come from a small program linked with
 * llama.cpp's ggml, outside this repository; tools/kernels-crosscheck.md describes the runs.
 * The GGUF reading here is a minimal one for trusted files made for this check.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inferno/kernels.h"

struct tensor {
    char name[256];
    uint32_t type;
    int64_t n;
    const uint8_t *data;
};

struct gguf {
    uint8_t *buf;
    size_t size;
    struct tensor *t;
    uint64_t n_t;
};

static size_t pos;

static int need(const struct gguf *g, size_t n)
{
    if (pos + n > g->size) {
        fprintf(stderr, "truncated file\n");
        exit(2);
    }
    return 0;
}

static uint64_t rd(const struct gguf *g, size_t n)
{
    need(g, n);
    uint64_t v = 0;
    memcpy(&v, g->buf + pos, n); /* little-endian host */
    pos += n;
    return v;
}

static void skip_value(const struct gguf *g, uint32_t type)
{
    static const size_t sizes[13] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    if (type == 8) {
        const uint64_t len = rd(g, 8);
        need(g, len);
        pos += len;
    } else if (type == 9) {
        const uint32_t et = (uint32_t)rd(g, 4);
        const uint64_t n = rd(g, 8);
        for (uint64_t i = 0; i < n; i++)
            skip_value(g, et);
    } else if (type < 13) {
        need(g, sizes[type]);
        pos += sizes[type];
    } else {
        fprintf(stderr, "bad value type %u\n", type);
        exit(2);
    }
}

static void load(const char *path, struct gguf *g)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "cannot open '%s'\n", path);
        exit(2);
    }
    fseek(f, 0, SEEK_END);
    g->size = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    g->buf = malloc(g->size);
    if (!g->buf || fread(g->buf, 1, g->size, f) != g->size) {
        fprintf(stderr, "cannot read '%s'\n", path);
        exit(2);
    }
    fclose(f);
    pos = 0;
    if (rd(g, 4) != 0x46554747u || rd(g, 4) != 3) {
        fprintf(stderr, "'%s' is not a GGUF v3 file\n", path);
        exit(2);
    }
    g->n_t = rd(g, 8);
    const uint64_t n_kv = rd(g, 8);
    uint64_t alignment = 32;
    for (uint64_t i = 0; i < n_kv; i++) {
        const uint64_t klen = rd(g, 8);
        need(g, klen);
        const bool is_align = klen == 17 && memcmp(g->buf + pos, "general.alignment", 17) == 0;
        pos += klen;
        const uint32_t type = (uint32_t)rd(g, 4);
        if (is_align && type == 4)
            alignment = rd(g, 4);
        else
            skip_value(g, type);
    }
    g->t = calloc(g->n_t, sizeof(*g->t));
    uint64_t *offs = calloc(g->n_t, sizeof(uint64_t));
    for (uint64_t i = 0; i < g->n_t; i++) {
        const uint64_t len = rd(g, 8);
        need(g, len);
        snprintf(g->t[i].name, sizeof(g->t[i].name), "%.*s", (int)len, (const char *)g->buf + pos);
        pos += len;
        const uint32_t nd = (uint32_t)rd(g, 4);
        int64_t n = 1;
        for (uint32_t d = 0; d < nd; d++)
            n *= (int64_t)rd(g, 8);
        g->t[i].n = n;
        g->t[i].type = (uint32_t)rd(g, 4);
        offs[i] = rd(g, 8);
    }
    const size_t data = (pos + alignment - 1) / alignment * alignment;
    for (uint64_t i = 0; i < g->n_t; i++)
        g->t[i].data = g->buf + data + offs[i];
    free(offs);
}

static const struct tensor *find(const struct gguf *g, const char *name)
{
    for (uint64_t i = 0; i < g->n_t; i++)
        if (strcmp(g->t[i].name, name) == 0)
            return &g->t[i];
    return NULL;
}

static int cmd_deq(const char *gguf_path, const char *deq_path)
{
    struct gguf g;
    load(gguf_path, &g);
    FILE *f = fopen(deq_path, "rb");
    if (!f) {
        fprintf(stderr, "cannot open '%s'\n", deq_path);
        return 2;
    }
    int bad = 0;
    int64_t values = 0;
    for (uint64_t i = 0; i < g.n_t; i++) {
        const struct tensor *t = &g.t[i];
        float *want = malloc((size_t)t->n * 4), *got = malloc((size_t)t->n * 4);
        if (fread(want, 4, (size_t)t->n, f) != (size_t)t->n) {
            fprintf(stderr, "'%s' is short\n", deq_path);
            return 2;
        }
        struct inf_error err = {0};
        if (inf_dequantize_row((enum inf_type)t->type, t->data, got, t->n, &err) != INF_OK) {
            printf("  %-28s %-5s: %s\n", t->name, inf_type_name((enum inf_type)t->type),
                   inf_error_message(&err));
            bad++;
        } else if (memcmp(want, got, (size_t)t->n * 4) != 0) {
            int64_t k = 0;
            while (memcmp(want + k, got + k, 4) == 0)
                k++;
            printf("  %-28s %-5s: differs first at %" PRId64 ": %.9g vs llama.cpp %.9g\n", t->name,
                   inf_type_name((enum inf_type)t->type), k, got[k], want[k]);
            bad++;
        }
        values += t->n;
        free(want);
        free(got);
    }
    fclose(f);
    printf("deq %s: %" PRIu64 " tensors, %" PRId64 " values, %d mismatching tensors\n", gguf_path,
           g.n_t, values, bad);
    return bad ? 1 : 0;
}

static int cmd_quant(const char *src_path, const char *q_path)
{
    struct gguf s, q;
    load(src_path, &s);
    load(q_path, &q);
    int bad = 0, checked = 0;
    for (uint64_t i = 0; i < q.n_t; i++) {
        const struct tensor *t = &q.t[i], *st = find(&s, t->name);
        if (!st || st->n != t->n) {
            printf("  %s: not in the source\n", t->name);
            bad++;
            continue;
        }
        const enum inf_type qt = (enum inf_type)t->type;
        float *x = malloc((size_t)t->n * 4);
        const size_t bytes = inf_type_row_size(qt, t->n);
        uint8_t *mine = malloc(bytes ? bytes : 1);
        struct inf_error err = {0};
        if (inf_dequantize_row((enum inf_type)st->type, st->data, x, st->n, &err) != INF_OK ||
            inf_quantize_row(qt, x, mine, t->n, &err) != INF_OK) {
            printf("  %-28s: %s\n", t->name, inf_error_message(&err));
            bad++;
        } else {
            size_t diff = 0;
            for (size_t k = 0; k < bytes; k++)
                diff += mine[k] != t->data[k];
            if (diff) {
                printf("  %-28s %-5s: %zu of %zu bytes differ\n", t->name, inf_type_name(qt), diff,
                       bytes);
                bad++;
            }
            checked++;
        }
        free(x);
        free(mine);
    }
    printf("quant %s -> %s: %d tensors compared, %d differ\n", src_path, q_path, checked, bad);
    return bad ? 1 : 0;
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "deq") == 0)
        return cmd_deq(argv[2], argv[3]);
    if (argc == 4 && strcmp(argv[1], "quant") == 0)
        return cmd_quant(argv[2], argv[3]);
    fprintf(stderr, "usage: kernels-crosscheck deq FILE.gguf FILE.gguf.deq\n"
                    "       kernels-crosscheck quant SOURCE.gguf QUANT.gguf\n");
    return 2;
}
