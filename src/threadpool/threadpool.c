/*
 * threadpool.c - persistent workers, a spin-then-sleep barrier, row splitting. src/threadpool/
 * owns the worker threads every parallel kernel runs on.
 *
 * Waiting is on a 32-bit generation counter: a waiter spins (with PAUSE) until the counter moves
 * or its spin budget runs out, then sleeps in futex(FUTEX_WAIT) on the counter. The waker bumps
 * the counter and calls FUTEX_WAKE only when someone announced that it sleeps; the sleeper count
 * and the counter are both sequentially consistent, so a waiter either sees the new value or is
 * seen by the waker (the Dekker argument), and no wake-up is lost.
 *
 * The spin budget adapts, per thread (barrier and task waits apart), to what the waits turn out
 * to be. A wait that slept but ended within spin_us would have been cheaper spun: the budget
 * grows by a quarter, up to spin_us. One that lasted over 4 * spin_us means the other thread was
 * not running (a loaded machine: the scheduler gave its core to another process) and spinning for
 * it only burnt the CPU share the late thread needs: the budget is quartered, down to MIN_SPIN_US.
 * On an idle machine the waits are short and the budget stays at spin_us; under contention it
 * falls to a few microseconds within a few waits, and generation at 2 threads on 2 busy cores
 * runs 1.2-1.8x faster than with a fixed 100 us spin (docs/performance.md; still slower than one
 * thread there: a fallback to the calling thread alone under contention is the next step).
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef __linux__
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#else
#define cpu_relax() ((void)0)
#endif

#include "core/clock.h"
#include "inferno/cpu.h"
#include "inferno/threadpool.h"

#define MAX_THREADS     INF_THREADS_MAX
#define DEFAULT_SPIN_US 100
#define MIN_SPIN_US     2

/* This thread's spin budgets in microseconds: [0] barriers, [1] waits for the next task; < 0
 * until its first wait (then spin_us). */
static _Thread_local float tl_budget[2] = {-1.0f, -1.0f};

/* A counter threads wait on for a change. */
struct waitword {
    _Atomic uint32_t value;
    _Atomic int n_sleepers;
};

struct worker {
    struct inf_threadpool *pool;
    pthread_t thread;
    int ith;
};

struct inf_threadpool {
    int n_threads;
    int spin_us;
    struct worker *workers; /* [n_threads - 1]: threads 1..n-1 */

    /* the current task, published by bumping task.value */
    inf_task_fn fn;
    void *arg;
    _Atomic bool stop;
    _Alignas(64) struct waitword task;

    /* the barrier: arrivals, and a generation released by the last arrival */
    _Alignas(64) _Atomic int n_arrived;
    _Alignas(64) struct waitword barrier;
};

static void futex_wait(_Atomic uint32_t *addr, uint32_t expected)
{
#ifdef __linux__
    syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAIT_PRIVATE, expected, NULL, NULL, 0);
#else
    (void)addr;
    (void)expected;
    sched_yield();
#endif
}

static void futex_wake_all(_Atomic uint32_t *addr)
{
#ifdef __linux__
    syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAKE_PRIVATE, MAX_THREADS, NULL, NULL, 0);
#else
    (void)addr;
#endif
}

/* Wait until w->value != old: spin for up to *budget microseconds (adapted as the opening
 * comment says; spin_us 0: never spin), then sleep. */
static void wait_change(struct waitword *w, uint32_t old, int spin_us, float *budget)
{
    if (atomic_load_explicit(&w->value, memory_order_acquire) != old)
        return;
    if (*budget < 0)
        *budget = (float)spin_us;
    const uint64_t t0 = spin_us > 0 ? inf__now_ns() : 0;
    if (spin_us > 0) {
        const uint64_t spin_ns = (uint64_t)(*budget * 1000.0f);
        for (;;) {
            for (int k = 0; k < 16; k++) {
                if (atomic_load_explicit(&w->value, memory_order_acquire) != old)
                    return;
                cpu_relax();
            }
            if (inf__now_ns() - t0 >= spin_ns)
                break;
        }
    }
    for (;;) {
        atomic_fetch_add(&w->n_sleepers, 1);
        if (atomic_load(&w->value) == old)
            futex_wait(&w->value, old);
        atomic_fetch_sub(&w->n_sleepers, 1);
        if (atomic_load_explicit(&w->value, memory_order_acquire) != old)
            break;
    }
    if (spin_us > 0) {
        const double waited_us = (double)(inf__now_ns() - t0) * 1e-3;
        if (waited_us <= spin_us) {
            const float b = *budget * 1.25f;
            *budget = b > (float)spin_us ? (float)spin_us : b < MIN_SPIN_US ? MIN_SPIN_US : b;
        } else if (waited_us > 4.0 * spin_us) {
            const float b = *budget / 4, lo = spin_us < MIN_SPIN_US ? (float)spin_us : MIN_SPIN_US;
            *budget = b < lo ? lo : b;
        }
    }
}

/* Bump the counter and wake whoever sleeps on it. */
static void bump(struct waitword *w)
{
    atomic_fetch_add(&w->value, 1);
    if (atomic_load(&w->n_sleepers) > 0)
        futex_wake_all(&w->value);
}

void inf_threadpool_barrier(struct inf_threadpool *pool)
{
    if (!pool || pool->n_threads == 1)
        return;
    const uint32_t gen = atomic_load(&pool->barrier.value);
    if (atomic_fetch_add(&pool->n_arrived, 1) == pool->n_threads - 1) {
        atomic_store(&pool->n_arrived, 0);
        bump(&pool->barrier);
        return;
    }
    wait_change(&pool->barrier, gen, pool->spin_us, &tl_budget[0]);
}

static void *worker_main(void *varg)
{
    struct worker *w = varg;
    struct inf_threadpool *pool = w->pool;
    uint32_t seen = 0;
    for (;;) {
        wait_change(&pool->task, seen, pool->spin_us, &tl_budget[1]);
        seen = atomic_load_explicit(&pool->task.value, memory_order_acquire);
        if (atomic_load(&pool->stop))
            break;
        pool->fn(pool->arg, w->ith, pool->n_threads);
        inf_threadpool_barrier(pool);
    }
    return NULL;
}

void inf_threadpool_params_init(struct inf_threadpool_params *p)
{
    p->n_threads = 0;
    p->pin = false;
    p->spin_us = -1;
}

static void stop_workers(struct inf_threadpool *pool, int n_started)
{
    atomic_store(&pool->stop, true);
    bump(&pool->task);
    for (int i = 0; i < n_started; i++)
        pthread_join(pool->workers[i].thread, NULL);
}

inf_status inf_threadpool_new(const struct inf_threadpool_params *p, struct inf_threadpool **out,
                              struct inf_error *err)
{
    struct inf_threadpool_params params;
    inf_threadpool_params_init(&params);
    if (p)
        params = *p;
    int n = params.n_threads > 0 ? params.n_threads : inf_cpu_physical_cores();
    if (n < 1 || n > MAX_THREADS)
        return inf_error_set(err, INF_EINVAL, "thread count %d is outside 1..%d", n, MAX_THREADS);

    struct inf_threadpool *pool = calloc(1, sizeof(*pool));
    if (!pool)
        return inf_error_set(err, INF_ENOMEM, "out of memory for the thread pool");
    pool->n_threads = n;
    pool->spin_us = params.spin_us >= 0 ? params.spin_us : DEFAULT_SPIN_US;
    if (n > 1) {
        pool->workers = calloc((size_t)(n - 1), sizeof(*pool->workers));
        if (!pool->workers) {
            free(pool);
            return inf_error_set(err, INF_ENOMEM, "out of memory for %d threads", n);
        }
    }
    for (int i = 0; i < n - 1; i++) {
        struct worker *w = &pool->workers[i];
        w->pool = pool;
        w->ith = i + 1;
        int rc = pthread_create(&w->thread, NULL, worker_main, w);
        if (rc != 0) {
            stop_workers(pool, i);
            free(pool->workers);
            free(pool);
            return inf_error_set(err, INF_EIO, "cannot start worker thread %d: %s", i + 1,
                                 strerror(rc));
        }
#if defined(__linux__) && defined(_GNU_SOURCE)
        if (params.pin) {
            cpu_set_t set;
            CPU_ZERO(&set);
            CPU_SET((i + 1) % CPU_SETSIZE, &set);
            (void)pthread_setaffinity_np(w->thread, sizeof(set), &set); /* best effort */
        }
#endif
    }
    *out = pool;
    return INF_OK;
}

void inf_threadpool_free(struct inf_threadpool *pool)
{
    if (!pool)
        return;
    stop_workers(pool, pool->n_threads - 1);
    free(pool->workers);
    free(pool);
}

int inf_threadpool_n_threads(const struct inf_threadpool *pool)
{
    return pool ? pool->n_threads : 1;
}

void inf_threadpool_run(struct inf_threadpool *pool, inf_task_fn fn, void *arg)
{
    if (!pool || pool->n_threads == 1) {
        fn(arg, 0, 1);
        return;
    }
    pool->fn = fn;
    pool->arg = arg;
    bump(&pool->task); /* seq_cst: publishes fn, arg and whatever the caller wrote before */
    fn(arg, 0, pool->n_threads);
    inf_threadpool_barrier(pool);
}

void inf_split_rows(int64_t n, int ith, int nth, int64_t align, int64_t *r0, int64_t *r1)
{
    if (align < 1)
        align = 1;
    const int64_t units = (n + align - 1) / align;
    const int64_t per = units / nth, extra = units % nth;
    const int64_t u0 = ith * per + (ith < extra ? ith : extra);
    const int64_t u1 = u0 + per + (ith < extra ? 1 : 0);
    *r0 = u0 * align < n ? u0 * align : n;
    *r1 = u1 * align < n ? u1 * align : n;
}
