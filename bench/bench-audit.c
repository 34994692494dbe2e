/*
 * bench-audit.c - the cost of one audit record, away from the noise of a whole server:
 * T threads append R records each (a request-sized JSON record, ~600 bytes) for every
 * audit.fsync mode, plain and encrypted; prints records/s, the mean and p99 time an append takes
 * to return (for batch: the group-commit wait included) and the CPU time per record.
 *
 *   build/release/bench/bench-audit [--threads 8] [--records 400] [--dir /tmp/x] [--batch-ms 10]
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "core/clock.h"
#include "inferno/audit.h"

static const char RECORD[] =
    "{\"type\":\"request\",\"ts\":\"2026-12-06T06:00:00.000Z\",\"request_id\":"
    "\"req-hymUMV297OzO42gqUbNNS8kc\",\"key_id\":\"key-0a1b2c3d4e5f\",\"client\":\"127.0.0.1\","
    "\"method\":\"POST\",\"route\":\"/v1/chat/"
    "completions\",\"model\":\"llama-3.2-1b-instruct-q4_k_m\","
    "\"status\":200,\"latency_ms\":1234.5,\"prompt_tokens\":512,\"completion_tokens\":256,"
    "\"cache\":\"miss\",\"params\":{\"temperature\":0.7,\"top_p\":0.9,\"max_tokens\":256,"
    "\"seed\":42,\"n\":1,\"stream\":true,\"n_messages\":3}}";

struct job {
    struct inf_audit *a;
    int records;
    double *lat_ms;
};

static void *worker(void *p)
{
    struct job *j = p;
    for (int i = 0; i < j->records; i++) {
        double t0 = inf__now_ms();
        struct inf_error err = {0};
        if (inf_audit_append(j->a, RECORD, sizeof(RECORD) - 1, &err))
            fprintf(stderr, "append: %s\n", inf_error_message(&err));
        j->lat_ms[i] = inf__now_ms() - t0;
    }
    return NULL;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
           (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

int main(int argc, char **argv)
{
    int threads = 8, records = 400, batch_ms = 10;
    const char *dir = "/tmp/inferno-bench-audit";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--threads"))
            threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--records"))
            records = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--dir"))
            dir = argv[i + 1];
        else if (!strcmp(argv[i], "--batch-ms"))
            batch_ms = atoi(argv[i + 1]);
    }
    struct inf_audit_key key;
    inf_audit_key_from_text("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", 64,
                            &key, NULL);
    static const char *const names[] = {"always", "batch", "never"};
    printf("%-7s %-9s %8s %10s %10s %10s %12s\n", "fsync", "records", "threads", "rec/s", "mean ms",
           "p99 ms", "cpu us/rec");
    for (int enc = 0; enc < 2; enc++) {
        for (int mode = 0; mode < 3; mode++) {
            char d[512], cmd[600];
            snprintf(d, sizeof(d), "%s-%d-%d", dir, enc, mode);
            snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d);
            if (system(cmd) != 0)
                return 1;
            struct inf_audit_params p = {.dir = d,
                                         .key = enc ? &key : NULL,
                                         .fsync = (enum inf_audit_fsync)mode,
                                         .batch_ms = batch_ms};
            struct inf_audit *a = NULL;
            struct inf_error err = {0};
            if (inf_audit_open(&p, &a, &err)) {
                fprintf(stderr, "%s\n", inf_error_message(&err));
                return 1;
            }
            pthread_t th[64];
            struct job jobs[64];
            double *lat = calloc((size_t)threads * (size_t)records, sizeof(double));
            double c0 = cpu_s(), t0 = inf__now_ms();
            for (int t = 0; t < threads && t < 64; t++) {
                jobs[t] = (struct job){a, records, lat + (size_t)t * (size_t)records};
                pthread_create(&th[t], NULL, worker, &jobs[t]);
            }
            for (int t = 0; t < threads && t < 64; t++)
                pthread_join(th[t], NULL);
            double wall = (inf__now_ms() - t0) / 1e3, cpu = cpu_s() - c0;
            inf_audit_close(a);
            size_t n = (size_t)threads * (size_t)records;
            double sum = 0;
            for (size_t i = 0; i < n; i++)
                sum += lat[i];
            qsort(lat, n, sizeof(double), cmp_d);
            printf("%-7s %-9s %8d %10.0f %10.3f %10.3f %12.1f\n", names[mode],
                   enc ? "encrypted" : "plain", threads, (double)n / wall, sum / (double)n,
                   lat[(size_t)(0.99 * (double)n)], 1e6 * cpu / (double)n);
            free(lat);
            if (system(cmd) != 0)
                return 1;
        }
    }
    return 0;
}
