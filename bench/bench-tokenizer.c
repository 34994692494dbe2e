/*
 * bench-tokenizer.c - encoding and decoding speed of the tokenizer on 1 MiB of text.
 *
 *   bench-tokenizer [--text FILE] [--size BYTES] [--reps N] [--save FILE] [VOCAB.gguf...]
 *
 * Without vocabularies it uses the four of $INFERNO_SHARED/testdata/tokenizers (default
 * ../shared). The text is FILE (repeated or cut to --size) or, by default, a deterministic
 * mix of English-like prose, code, numbers, whitespace runs and some non-Latin scripts and
 * emoji (generated from a fixed seed, so runs are comparable). For each vocabulary it prints
 * load time, the tokens produced, encode tokens/s and MB/s (best of --reps) and decode MB/s,
 * and the time for a quarter of the text, whose ratio to the full time shows that encoding
 * is linear (about 4x for 4x the text). --save writes the text used, to run other
 * tokenizers (llama.cpp's) on the same bytes.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "inferno/log.h"
#include "inferno/tokenizer.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;
static uint32_t rnd(uint32_t n)
{
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)((rng_state >> 33) % n);
}

/* A deterministic mixed text of exactly size bytes (cut at a character boundary, padded). */
static char *make_text(size_t size)
{
    static const char *const words[] = {
        "the",
        "of",
        "and",
        "to",
        "in",
        "is",
        "was",
        "that",
        "for",
        "on",
        "with",
        "as",
        "it",
        "tokenizer",
        "model",
        "inference",
        "language",
        "running",
        "offline",
        "quickly",
        "Hello",
        "World",
        "The",
        "It's",
        "don't",
        "we'll",
        "they've",
        "I'm",
        "she'd",
        "you're",
        "function",
        "return",
        "struct",
        "int",
        "void",
        "size_t",
        "nullptr",
        "std::vector",
        "2024",
        "3.14159",
        "1,000,000",
        "42",
        "0x7fff",
        "100%",
        "$19.99",
        "#include",
        "caf\xc3\xa9",
        "na\xc3\xafve",
        "\xc3\xbc"
        "ber",
        "stra\xc3\x9f"
        "e",
        "\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82",             /* Привет */
        "\xe4\xbd\xa0\xe5\xa5\xbd\xe4\xb8\x96\xe7\x95\x8c",             /* 你好世界 */
        "\xe3\x81\x93\xe3\x82\x93\xe3\x81\xab\xe3\x81\xa1\xe3\x81\xaf", /* こんにちは */
        "\xd9\x85\xd8\xb1\xd8\xad\xd8\xa8\xd8\xa7",                     /* مرحبا */
        "\xf0\x9f\xa6\x99",
        "\xf0\x9f\x98\x81",
        "\xe2\x9c\x85", /* emoji */
    };
    static const char *const seps[] = {" ",  " ",  " ",    " ",    " ",   " ",  ", ",
                                       ". ", "\n", "\n\n", "    ", "\t",  "! ", "? ",
                                       " (", ") ", ": ",   "; ",   " - ", "\"", "'"};
    const size_t n_words = sizeof(words) / sizeof(words[0]);
    const size_t n_seps = sizeof(seps) / sizeof(seps[0]);
    char *t = malloc(size + 64);
    size_t n = 0;
    if (!t)
        return NULL;
    while (n < size) {
        /* mostly plain words; a tail of the list (code, numbers, other scripts) less often */
        size_t w = rnd(10) < 8 ? rnd(30) : rnd((uint32_t)n_words);
        const char *s = words[w], *p = seps[rnd((uint32_t)n_seps)];
        size_t ls = strlen(s), lp = strlen(p);
        if (n + ls + lp > size)
            break;
        memcpy(t + n, s, ls);
        n += ls;
        memcpy(t + n, p, lp);
        n += lp;
    }
    while (n < size)
        t[n++] = ' ';
    return t;
}

static char *load_text(const char *path, size_t size)
{
    FILE *f = fopen(path, "rb");
    char *src = NULL, *t = NULL;
    size_t n = 0, cap = 1 << 20, r;
    if (!f)
        return NULL;
    src = malloc(cap);
    while (src && (r = fread(src + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap) {
            char *ns = realloc(src, cap *= 2);
            if (!ns)
                break;
            src = ns;
        }
    }
    fclose(f);
    if (src && n > 0 && (t = malloc(size))) {
        for (size_t i = 0; i < size; i += n)
            memcpy(t + i, src, size - i < n ? size - i : n);
    }
    free(src);
    return t;
}

static int bench_one(const char *path, const char *label, const char *text, size_t size, int reps)
{
    struct inf_tokenizer *tok = NULL;
    struct inf_error err = {0};
    struct inf_tokens ids = {0};
    double t0 = now(), best = 1e30, best_q = 1e30, best_d = 1e30;

    if (inf_tokenizer_load_gguf(path, &tok, &err) != INF_OK) {
        fprintf(stderr, "bench-tokenizer: %s\n", inf_error_message(&err));
        return 1;
    }
    double load = now() - t0;
    for (int r = 0; r < reps; r++) {
        ids.n = 0;
        t0 = now();
        if (inf_tok_encode(tok, text, size, 0, &ids, &err) != INF_OK) {
            fprintf(stderr, "bench-tokenizer: %s: %s\n", label, inf_error_message(&err));
            inf_tokenizer_free(tok);
            inf_tokens_release(&ids);
            return 1;
        }
        double dt = now() - t0;
        if (dt < best)
            best = dt;
    }
    size_t n_tokens = ids.n;
    for (int r = 0; r < reps; r++) {
        struct inf_tokens q = {0};
        t0 = now();
        inf_tok_encode(tok, text, size / 4, 0, &q, &err);
        double dt = now() - t0;
        if (dt < best_q)
            best_q = dt;
        inf_tokens_release(&q);
    }
    for (int r = 0; r < reps; r++) {
        char *out;
        size_t len;
        t0 = now();
        if (inf_tok_decode(tok, ids.ids, ids.n, INF_TOK_DECODE_NO_CLEANUP, &out, &len, &err) ==
            INF_OK)
            free(out);
        double dt = now() - t0;
        if (dt < best_d)
            best_d = dt;
    }
    printf("%-12s load %6.3f s | %zu B -> %8zu tokens in %6.3f s: %6.2f M tokens/s, %6.2f MB/s"
           " | 1/4 text %6.3f s (x%.2f) | decode %7.1f MB/s\n",
           label, load, size, n_tokens, best, (double)n_tokens / best / 1e6,
           (double)size / best / 1e6, best_q, best / best_q, (double)size / best_d / 1e6);
    inf_tokens_release(&ids);
    inf_tokenizer_free(tok);
    return 0;
}

int main(int argc, char **argv)
{
    const char *text_path = NULL, *save = NULL;
    size_t size = 1u << 20;
    int reps = 3, rc = 0, n_paths = 0;
    const char *paths[64];

    inf_log_set_level(INF_LOG_ERROR);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--text") == 0 && i + 1 < argc) {
            text_path = argv[++i];
        } else if (strcmp(argv[i], "--size") == 0 && i + 1 < argc) {
            size = (size_t)strtoull(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--save") == 0 && i + 1 < argc) {
            save = argv[++i];
        } else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc) {
            reps = atoi(argv[++i]);
        } else if (argv[i][0] == '-') {
            fprintf(stderr, "usage: bench-tokenizer [--text FILE] [--size BYTES] [--reps N] "
                            "[--save FILE] [VOCAB.gguf...]\n");
            return 2;
        } else if (n_paths < 64) {
            paths[n_paths++] = argv[i];
        }
    }
    if (size == 0 || size > INF_TOK_MAX_INPUT || reps < 1) {
        fprintf(stderr, "bench-tokenizer: bad --size or --reps\n");
        return 2;
    }
    char *text = text_path ? load_text(text_path, size) : make_text(size);
    if (!text) {
        fprintf(stderr, "bench-tokenizer: cannot prepare the text\n");
        return 1;
    }
    if (save) {
        FILE *f = fopen(save, "wb");
        if (!f || fwrite(text, 1, size, f) != size || fclose(f) != 0) {
            fprintf(stderr, "bench-tokenizer: cannot write '%s'\n", save);
            free(text);
            return 1;
        }
    }
    printf("text: %s, %zu bytes; best of %d\n", text_path ? text_path : "generated mix", size,
           reps);
    if (n_paths == 0) {
        static const char *const names[] = {"llama-spm", "llama-bpe", "gpt-2", "qwen2"};
        const char *shared = getenv("INFERNO_SHARED");
        for (size_t i = 0; i < 4; i++) {
            char path[4096];
            snprintf(path, sizeof(path), "%s/testdata/tokenizers/ggml-vocab-%s.gguf",
                     shared ? shared : "../shared", names[i]);
            rc |= bench_one(path, names[i], text, size, reps);
        }
    } else {
        for (int i = 0; i < n_paths; i++) {
            const char *base = strrchr(paths[i], '/');
            rc |= bench_one(paths[i], base ? base + 1 : paths[i], text, size, reps);
        }
    }
    free(text);
    return rc;
}
