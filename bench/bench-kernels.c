/*
 * bench-kernels - matrix-vector GB/s and matrix-matrix GOPS of every weight format at every
 * SIMD level, at 1 and 2 threads, beside the read bandwidth of this machine measured in the
 * same run (a STREAM-like sum over a buffer far larger than the caches).
 *
 *   bench-kernels [--types q4_0,q8_0,...] [--levels scalar,avx2,avx512] [--threads 1,2]
 *                 [--rows 5632] [--cols 2048] [--tokens 128] [--mib 512] [--reps 5]
 *
 * Matrix-vector: y = W x with W rows x cols (default 5632 x 2048: TinyLlama's ffn_up, 2048 x
 * 5632 weights by ggml's naming). To measure memory, not cache, the program keeps enough copies
 * of W to fill --mib MiB and multiplies them in turn, as a model's layers would be; GB/s is the
 * bytes of weights streamed per second, and "%bw" that figure over the read bandwidth of the same
 * threads summing the same bytes, measured pass by pass in between. Matrix-matrix: Y = W
 * X for --tokens tokens on one W; GOPS = 2 * rows * cols * tokens / time. Every figure is the best
 * over --reps passes (a matrix-vector or bandwidth pass reads all the copies of W, timed as a
 * whole): the machine is shared, and the best pass is the one least disturbed by other work.
 */
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "inferno/cpu.h"
#include "inferno/kernels.h"
#include "inferno/threadpool.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void *xalloc(size_t n)
{
    void *p = aligned_alloc(64, (n + 63) / 64 * 64);
    if (!p) {
        fprintf(stderr, "bench-kernels: out of memory (%zu bytes)\n", n);
        exit(1);
    }
    return p;
}

/* ---- read bandwidth ---------------------------------------------------------------------- */

struct bw_task {
    const uint64_t *buf;
    size_t n_words;
    uint64_t sink[64];
};

static void bw_fn(void *arg, int ith, int nth)
{
    struct bw_task *t = arg;
    int64_t r0, r1;
    inf_split_rows((int64_t)t->n_words, ith, nth, 64, &r0, &r1);
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0;
    for (int64_t i = r0; i + 8 <= r1; i += 8) {
        s0 += t->buf[i + 0];
        s1 += t->buf[i + 1];
        s2 += t->buf[i + 2];
        s3 += t->buf[i + 3];
        s4 += t->buf[i + 4];
        s5 += t->buf[i + 5];
        s6 += t->buf[i + 6];
        s7 += t->buf[i + 7];
    }
    t->sink[ith % 64] = s0 ^ s1 ^ s2 ^ s3 ^ s4 ^ s5 ^ s6 ^ s7;
}

static double read_bandwidth(struct inf_threadpool *pool, const uint64_t *buf, size_t bytes,
                             int reps)
{
    struct bw_task t = {.buf = buf, .n_words = bytes / 8};
    double best = 0;
    for (int r = 0; r < reps; r++) {
        const double t0 = now_s();
        inf_threadpool_run(pool, bw_fn, &t);
        const double gbs = (double)bytes / (now_s() - t0) / 1e9;
        if (gbs > best)
            best = gbs;
    }
    return best;
}

/* ---- options ----------------------------------------------------------------------------- */

struct opts {
    bool types[INF_TYPE_COUNT];
    bool levels[INF_CPU_LEVEL_COUNT];
    int threads[8];
    int n_threads_list;
    int64_t rows, cols, tokens;
    size_t mib;
    int reps;
};

static const enum inf_type all_types[] = {
    INF_TYPE_F32,      INF_TYPE_F16,      INF_TYPE_BF16,     INF_TYPE_Q8_0,     INF_TYPE_Q6_K,
    INF_TYPE_Q5_1,     INF_TYPE_Q5_0,     INF_TYPE_Q5_K,     INF_TYPE_Q4_1,     INF_TYPE_Q4_0,
    INF_TYPE_Q4_K,     INF_TYPE_Q3_K,     INF_TYPE_Q2_K,     INF_TYPE_Q4_0_X16, INF_TYPE_Q4_K_X16,
    INF_TYPE_Q8_0_X16, INF_TYPE_Q6_K_X16, INF_TYPE_Q4_1_X16,
};
#define N_ALL_TYPES (sizeof(all_types) / sizeof(all_types[0]))

static void parse_list(const char *arg, struct opts *o, int what)
{
    char buf[512];
    snprintf(buf, sizeof(buf), "%s", arg);
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        bool found = false;
        if (what == 0) {
            for (size_t i = 0; i < N_ALL_TYPES; i++)
                if (strcmp(tok, inf_type_name(all_types[i])) == 0)
                    o->types[all_types[i]] = found = true;
        } else if (what == 1) {
            for (int l = 0; l < INF_CPU_LEVEL_COUNT; l++)
                if (strcmp(tok, inf_cpu_level_name((enum inf_cpu_level)l)) == 0)
                    o->levels[l] = found = true;
        } else if (o->n_threads_list < 8) {
            o->threads[o->n_threads_list++] = atoi(tok);
            found = true;
        }
        if (!found) {
            fprintf(stderr, "bench-kernels: unknown '%s'\n", tok);
            exit(2);
        }
    }
}

static void parse(int argc, char **argv, struct opts *o)
{
    memset(o, 0, sizeof(*o));
    o->rows = 5632;
    o->cols = 2048;
    o->tokens = 128;
    o->mib = 512;
    o->reps = 5;
    bool any_type = false, any_level = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) {
            fprintf(stderr, "bench-kernels: '%s' needs a value\n", a);
            exit(2);
        }
        i++;
        if (strcmp(a, "--types") == 0)
            parse_list(v, o, 0), any_type = true;
        else if (strcmp(a, "--levels") == 0)
            parse_list(v, o, 1), any_level = true;
        else if (strcmp(a, "--threads") == 0)
            parse_list(v, o, 2);
        else if (strcmp(a, "--rows") == 0)
            o->rows = atoll(v);
        else if (strcmp(a, "--cols") == 0)
            o->cols = atoll(v);
        else if (strcmp(a, "--tokens") == 0)
            o->tokens = atoll(v);
        else if (strcmp(a, "--mib") == 0)
            o->mib = (size_t)atoll(v);
        else if (strcmp(a, "--reps") == 0)
            o->reps = atoi(v);
        else {
            fprintf(stderr, "bench-kernels: unknown option '%s'\n", a);
            exit(2);
        }
    }
    if (!any_type)
        for (size_t i = 0; i < N_ALL_TYPES; i++)
            o->types[all_types[i]] = true;
    if (!any_level)
        for (int l = 0; l < INF_CPU_LEVEL_COUNT; l++)
            o->levels[l] = true;
    if (!o->n_threads_list) {
        o->threads[0] = 1;
        o->threads[1] = 2;
        o->n_threads_list = 2;
    }
    if (o->reps < 1)
        o->reps = 1;
}

/* ---- main -------------------------------------------------------------------------------- */

int main(int argc, char **argv)
{
    struct opts o;
    parse(argc, argv, &o);

    char feat[256];
    inf_cpu_features_string(inf_cpu_features(), feat, sizeof(feat));
    printf("cpu: %s; physical cores %d; kernels default level %s%s\n", feat,
           inf_cpu_physical_cores(), inf_cpu_level_name(inf_kernels_level()),
           inf_kernels_have_vnni() ? " (vnni)" : "");
    printf("matrix %lld x %lld (rows x cols), %lld tokens for matrix-matrix, %zu MiB of weights "
           "streamed, best of %d\n\n",
           (long long)o.rows, (long long)o.cols, (long long)o.tokens, o.mib, o.reps);

    struct inf_threadpool *pools[8] = {NULL};
    for (int i = 0; i < o.n_threads_list; i++) {
        struct inf_threadpool_params p;
        inf_threadpool_params_init(&p);
        p.n_threads = o.threads[i];
        struct inf_error err = {0};
        if (o.threads[i] > 1 && inf_threadpool_new(&p, &pools[i], &err) != INF_OK) {
            fprintf(stderr, "bench-kernels: %s\n", inf_error_message(&err));
            return 1;
        }
    }

    /* one big buffer: the bandwidth test reads all of it; the weights are carved from it */
    const size_t big = o.mib << 20;
    uint8_t *buf = xalloc(big);
    memset(buf, 1, big);

    const int64_t n = o.cols, rows = o.rows;
    float *x = xalloc((size_t)(n * o.tokens) * sizeof(float));
    float *y = xalloc((size_t)(rows * o.tokens) * sizeof(float));
    for (int64_t i = 0; i < n * o.tokens; i++)
        x[i] = (float)sin((double)i * 0.37) * 2.0f;

    printf("%-5s %-7s %3s | %9s %7s %6s | %9s\n", "type", "level", "thr", "mv GB/s", "read bw",
           "%bw", "mm GOPS");
    printf("------------------------+---------------------------+----------\n");
    for (size_t ti = 0; ti < N_ALL_TYPES; ti++) {
        const enum inf_type wt = all_types[ti];
        if (!o.types[wt])
            continue;
        /* a packed layout (q4_0x16): quantized as its source type, then repacked */
        const enum inf_type qt = wt == INF_TYPE_Q4_0_X16   ? INF_TYPE_Q4_0
                                 : wt == INF_TYPE_Q4_K_X16 ? INF_TYPE_Q4_K
                                 : wt == INF_TYPE_Q8_0_X16 ? INF_TYPE_Q8_0
                                 : wt == INF_TYPE_Q6_K_X16 ? INF_TYPE_Q6_K
                                 : wt == INF_TYPE_Q4_1_X16 ? INF_TYPE_Q4_1
                                                           : wt;
        const size_t ldw = inf_type_row_size(qt, n);
        const size_t mat = ldw * (size_t)rows;
        const size_t n_mats = big / mat >= 1 ? big / mat : 1;
        if (mat > big) {
            fprintf(stderr, "bench-kernels: %s matrix of %zu bytes exceeds --mib\n",
                    inf_type_name(wt), mat);
            continue;
        }
        /* quantize one matrix from smooth random-looking values, copy it n_mats times */
        float *row = xalloc((size_t)n * sizeof(float));
        for (int64_t r = 0; r < rows; r++) {
            for (int64_t i = 0; i < n; i++)
                row[i] = (float)sin((double)(r * 131 + i) * 0.731) * (float)(1 + (i / 32) % 3);
            inf_quantize_row(qt, row, buf + (size_t)r * ldw, n, NULL);
        }
        free(row);
        if (qt != wt && !inf_weight_pack(qt, wt, buf, ldw, rows, n)) {
            fprintf(stderr, "bench-kernels: %s needs rows in groups of 16\n", inf_type_name(wt));
            continue;
        }
        for (size_t m = 1; m < n_mats; m++)
            memcpy(buf + m * mat, buf, mat);

        void *act = xalloc(inf_matmul_act_size(wt, n, o.tokens));
        for (int ti2 = 0; ti2 < o.n_threads_list; ti2++) {
            struct inf_threadpool *pool = pools[ti2];
            for (int l = 0; l < INF_CPU_LEVEL_COUNT; l++) {
                if (!o.levels[l] || inf_kernels_set_level((enum inf_cpu_level)l, NULL) != INF_OK)
                    continue;
                /* read bandwidth and matrix-vector products pass by pass: a pass reads every
                 * copy of W back to back (as generation reads a model's layers), timed as a
                 * whole; the bandwidth pass reads the same bytes the same way; the best pass of
                 * each. (Timing single calls with a bandwidth read between them, as this program
                 * did before, flattered row-interleaved kernels: their best call ran at twice
                 * their streaming rate, until a matrix-matrix product had run.) */
                double bw = 0, best_mv = 1e30;
                for (int rep = 0; rep < o.reps; rep++) {
                    const double b =
                        read_bandwidth(pool, (const uint64_t *)(const void *)buf, n_mats * mat, 1);
                    if (b > bw)
                        bw = b;
                    const double t0 = now_s();
                    for (size_t m = 0; m < n_mats; m++)
                        inf_matmul(pool, wt, buf + m * mat, ldw, rows, n, x, (size_t)n, 1, y,
                                   (size_t)rows, act, 0);
                    const double dt = (now_s() - t0) / (double)n_mats;
                    if (dt < best_mv)
                        best_mv = dt;
                }
                const double mv_gbs = (double)mat / best_mv / 1e9;
                /* matrix-matrix: fewer tokens for the reference level (it is slow) */
                const int64_t tok = l == INF_CPU_SCALAR && o.tokens > 8 ? 8 : o.tokens;
                double best_mm = 1e30;
                for (int rep = 0; rep < (l == INF_CPU_SCALAR ? 1
                                         : o.reps > 3        ? 3
                                                             : o.reps);
                     rep++) {
                    const double t0 = now_s();
                    inf_matmul(pool, wt, buf, ldw, rows, n, x, (size_t)n, tok, y, (size_t)rows, act,
                               0);
                    const double dt = now_s() - t0;
                    if (dt < best_mm)
                        best_mm = dt;
                }
                const double gops = 2.0 * (double)rows * (double)n * (double)tok / best_mm / 1e9;
                printf("%-5s %-7s %3d | %9.2f %7.2f %5.0f%% | %9.1f\n", inf_type_name(wt),
                       inf_cpu_level_name((enum inf_cpu_level)l), inf_threadpool_n_threads(pool),
                       mv_gbs, bw, 100.0 * mv_gbs / bw, gops);
                fflush(stdout);
            }
        }
        free(act);
    }
    for (int i = 0; i < o.n_threads_list; i++)
        inf_threadpool_free(pools[i]);
    free(buf);
    free(x);
    free(y);
    return 0;
}
