/*
 * test_threadpool.c - the persistent pool: every thread runs every task once, barriers separate
 * phases, chunks cover the work exactly once, row splits tile the range, and sleeping workers
 * are woken (no lost wake-ups over many short tasks).
 */
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "inferno/threadpool.h"
#include "t.h"

#define MAX_T 8

struct count_task {
    _Atomic int calls[MAX_T];
    _Atomic int bad_nth;
    int want_nth;
};

static void count_fn(void *arg, int ith, int nth)
{
    struct count_task *t = arg;
    if (nth != t->want_nth || ith < 0 || ith >= nth)
        atomic_fetch_add(&t->bad_nth, 1);
    else
        atomic_fetch_add(&t->calls[ith], 1);
}

static void test_run_all_threads(void)
{
    static const int counts[] = {1, 2, 3, 5};
    for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
        struct inf_threadpool_params p;
        inf_threadpool_params_init(&p);
        p.n_threads = counts[i];
        struct inf_threadpool *pool = NULL;
        T_EQ_INT(inf_threadpool_new(&p, &pool, NULL), INF_OK);
        T_EQ_INT(inf_threadpool_n_threads(pool), counts[i]);
        struct count_task t = {.want_nth = counts[i]};
        for (int k = 0; k < 200; k++)
            inf_threadpool_run(pool, count_fn, &t);
        T_EQ_INT(atomic_load(&t.bad_nth), 0);
        for (int j = 0; j < counts[i]; j++)
            T_EQ_INT(atomic_load(&t.calls[j]), 200);
        inf_threadpool_free(pool);
    }
    /* NULL pool: the caller alone */
    struct count_task t = {.want_nth = 1};
    inf_threadpool_run(NULL, count_fn, &t);
    T_EQ_INT(atomic_load(&t.calls[0]), 1);
    T_EQ_INT(inf_threadpool_n_threads(NULL), 1);
    inf_threadpool_barrier(NULL);
    inf_threadpool_free(NULL);
}

struct phase_task {
    struct inf_threadpool *pool;
    int data[MAX_T];
    _Atomic int errors;
    int rounds;
};

static void phase_fn(void *arg, int ith, int nth)
{
    struct phase_task *t = arg;
    for (int k = 1; k <= t->rounds; k++) {
        __atomic_store_n(&t->data[ith], k, __ATOMIC_RELAXED);
        inf_threadpool_barrier(t->pool);
        for (int j = 0; j < nth; j++)
            if (__atomic_load_n(&t->data[j], __ATOMIC_RELAXED) != k)
                atomic_fetch_add(&t->errors, 1);
        inf_threadpool_barrier(t->pool);
    }
}

static void test_barrier(void)
{
    for (int spin = 0; spin < 2; spin++) {
        struct inf_threadpool_params p;
        inf_threadpool_params_init(&p);
        p.n_threads = 3;
        p.spin_us = spin ? 50 : 0; /* 0: every wait goes to sleep at once */
        struct inf_threadpool *pool = NULL;
        T_EQ_INT(inf_threadpool_new(&p, &pool, NULL), INF_OK);
        struct phase_task t = {.pool = pool, .rounds = 300};
        inf_threadpool_run(pool, phase_fn, &t);
        T_EQ_INT(atomic_load(&t.errors), 0);
        inf_threadpool_free(pool);
    }
}

/* One thread arrives late (by 1 ms, far over 4 * spin_us) at every other barrier, as on a loaded
 * machine where its core went to another process: the others' spin budgets shrink to the minimum,
 * then the late thread stops being late; every phase must still see all threads' data (no lost
 * wake-up when the budgets are small, nor when they grow back). */
static void late_fn(void *arg, int ith, int nth)
{
    struct phase_task *t = arg;
    for (int k = 1; k <= t->rounds; k++) {
        if (ith == nth - 1 && k <= t->rounds / 2 && k % 2) {
            struct timespec ts = {0, 1000000};
            nanosleep(&ts, NULL);
        }
        __atomic_store_n(&t->data[ith], k, __ATOMIC_RELAXED);
        inf_threadpool_barrier(t->pool);
        for (int j = 0; j < nth; j++)
            if (__atomic_load_n(&t->data[j], __ATOMIC_RELAXED) != k)
                atomic_fetch_add(&t->errors, 1);
        inf_threadpool_barrier(t->pool);
    }
}

static void test_barrier_late_thread(void)
{
    struct inf_threadpool_params p;
    inf_threadpool_params_init(&p);
    p.n_threads = 3;
    p.spin_us = 20;
    struct inf_threadpool *pool = NULL;
    T_EQ_INT(inf_threadpool_new(&p, &pool, NULL), INF_OK);
    for (int run = 0; run < 3; run++) {
        struct phase_task t = {.pool = pool, .rounds = 200};
        inf_threadpool_run(pool, late_fn, &t);
        T_EQ_INT(atomic_load(&t.errors), 0);
    }
    inf_threadpool_free(pool);
}

struct chunk_task {
    struct inf_chunker ch;
    int64_t n, step;
    _Atomic uint8_t *seen;
};

static void chunk_fn(void *arg, int ith, int nth)
{
    struct chunk_task *t = arg;
    (void)ith;
    (void)nth;
    for (;;) {
        const int64_t r0 = inf_chunker_next(&t->ch, t->step);
        if (r0 >= t->n)
            break;
        for (int64_t i = r0; i < r0 + t->step && i < t->n; i++)
            atomic_fetch_add(&t->seen[i], 1);
    }
}

/* A pool of four threads, pinned when pin (best effort; must not break anything). */
static struct inf_threadpool *pool4(bool pin)
{
    struct inf_threadpool *pool = NULL;
    struct inf_threadpool_params p;
    inf_threadpool_params_init(&p);
    p.n_threads = 4;
    p.pin = pin;
    T_EQ_INT(inf_threadpool_new(&p, &pool, NULL), INF_OK);
    return pool;
}

static void test_chunks(void)
{
    struct inf_threadpool *pool = pool4(true);
    static _Atomic uint8_t seen[10007];
    for (int64_t step = 1; step <= 64; step *= 3) {
        for (size_t i = 0; i < sizeof(seen); i++)
            atomic_store(&seen[i], 0);
        struct chunk_task t = {.n = 10007, .step = step, .seen = seen};
        inf_chunker_init(&t.ch, 0);
        inf_threadpool_run(pool, chunk_fn, &t);
        int bad = 0;
        for (size_t i = 0; i < sizeof(seen); i++)
            bad += atomic_load(&seen[i]) != 1;
        T_EQ_INT(bad, 0);
    }
    inf_threadpool_free(pool);
}

struct ranges_task {
    struct inf_ranges r;
    int64_t n;
    _Atomic uint8_t *seen;
    _Atomic int out_of_order;
};

static void ranges_fn(void *arg, int ith, int nth)
{
    struct ranges_task *t = arg;
    (void)nth;
    int64_t prev = -1;
    bool own = true; /* still in its own range: units come in increasing order */
    const int slot = ith % t->r.n_slots;
    const int64_t own_begin = t->n * slot / t->r.n_slots, own_end = t->r.s[slot].end;
    for (;;) {
        const int64_t u = inf_ranges_next(&t->r, ith);
        if (u < 0)
            break;
        if (u >= t->n) {
            atomic_fetch_add(&t->out_of_order, 1000); /* out of bounds */
            break;
        }
        own = own && u >= own_begin && u < own_end;
        if (own && u <= prev)
            atomic_fetch_add(&t->out_of_order, 1);
        prev = u;
        atomic_fetch_add(&t->seen[u], 1);
    }
}

/* inf_ranges: every unit exactly once under contention; one thread alone walks its own range in
 * order and then takes everything the others left, in order; more threads than slots share. */
static void test_ranges(void)
{
    struct inf_threadpool *pool = pool4(false);
    static _Atomic uint8_t seen[10007];
    const int64_t sizes[] = {0, 1, 3, 4, 5, 97, 10007};
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        for (size_t i = 0; i < sizeof(seen); i++)
            atomic_store(&seen[i], 0);
        struct ranges_task t = {.n = sizes[k], .seen = seen};
        inf_ranges_init(&t.r, t.n, 4);
        atomic_init(&t.out_of_order, 0);
        inf_threadpool_run(pool, ranges_fn, &t);
        int bad = 0;
        for (int64_t i = 0; i < (int64_t)sizeof(seen); i++)
            bad += atomic_load(&seen[i]) != (i < t.n ? 1 : 0);
        T_EQ_INT(bad, 0);
        T_EQ_INT(atomic_load(&t.out_of_order), 0);
    }
    inf_threadpool_free(pool);

    /* one thread alone (the others never ask): 2's range, then 3's, then 0's and 1's */
    struct inf_ranges r;
    inf_ranges_init(&r, 10, 4); /* ranges [0,2) [2,5) [5,7) [7,10) */
    const int64_t want[] = {5, 6, 7, 8, 9, 0, 1, 2, 3, 4};
    for (int i = 0; i < 10; i++)
        T_EQ_INT(inf_ranges_next(&r, 2), want[i]);
    T_EQ_INT(inf_ranges_next(&r, 2), -1);
    T_EQ_INT(inf_ranges_next(&r, 0), -1);

    /* more threads than slots: slots are shared, still every unit once */
    inf_ranges_init(&r, 1000, 40);
    T_EQ_INT(r.n_slots, INF_RANGES_SLOTS);
    static uint8_t once[1000];
    int bad = 0;
    for (int64_t got = 0, ith = 0;; ith = (ith + 1) % 40) {
        const int64_t u = inf_ranges_next(&r, (int)ith);
        if (u < 0)
            break;
        bad += u >= 1000 || once[u]++ != 0;
        got++;
        if (got > 1000) {
            bad++;
            break;
        }
    }
    for (int i = 0; i < 1000; i++)
        bad += once[i] != 1;
    T_EQ_INT(bad, 0);
}

static void test_split_rows(void)
{
    int bad = 0;
    for (int64_t n = 0; n < 70; n++)
        for (int nth = 1; nth <= 5; nth++)
            for (int64_t align = 1; align <= 8; align *= 2) {
                int64_t prev = 0;
                for (int ith = 0; ith < nth; ith++) {
                    int64_t r0, r1;
                    inf_split_rows(n, ith, nth, align, &r0, &r1);
                    if (r0 != prev || r1 < r0 || (r1 != n && r1 % align != 0))
                        bad++;
                    prev = r1;
                }
                if (prev != n)
                    bad++;
            }
    T_EQ_INT(bad, 0);
    int64_t r0, r1;
    inf_split_rows(100, 1, 2, 0, &r0, &r1); /* align < 1 counts as 1 */
    T_EQ_INT(r0, 50);
    T_EQ_INT(r1, 100);
}

static void test_params(void)
{
    struct inf_threadpool_params p;
    inf_threadpool_params_init(&p);
    p.n_threads = 100000;
    struct inf_threadpool *pool = NULL;
    struct inf_error err = {0};
    T_EQ_INT(inf_threadpool_new(&p, &pool, &err), INF_EINVAL);
    T_CONTAINS(err.msg, "thread count");
    T_OK(pool == NULL);
    /* defaults: physical cores */
    T_EQ_INT(inf_threadpool_new(NULL, &pool, NULL), INF_OK);
    T_OK(inf_threadpool_n_threads(pool) >= 1);
    inf_threadpool_free(pool);
}

/* Many short tasks with workers that go to sleep between them: a lost wake-up would hang. */
static void test_sleep_wake(void)
{
    struct inf_threadpool_params p;
    inf_threadpool_params_init(&p);
    p.n_threads = 3;
    p.spin_us = 0;
    struct inf_threadpool *pool = NULL;
    T_EQ_INT(inf_threadpool_new(&p, &pool, NULL), INF_OK);
    struct count_task t = {.want_nth = 3};
    for (int k = 0; k < 3000; k++)
        inf_threadpool_run(pool, count_fn, &t);
    for (int j = 0; j < 3; j++)
        T_EQ_INT(atomic_load(&t.calls[j]), 3000);
    inf_threadpool_free(pool);
}

int main(void)
{
    T_RUN(test_run_all_threads);
    T_RUN(test_barrier);
    T_RUN(test_barrier_late_thread);
    T_RUN(test_chunks);
    T_RUN(test_ranges);
    T_RUN(test_split_rows);
    T_RUN(test_params);
    T_RUN(test_sleep_wake);
    T_DONE();
}
