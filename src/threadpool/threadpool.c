/*
 * threadpool.c - persistent workers, a spin-then-sleep barrier, row splitting. src/threadpool/
 * owns the worker threads every parallel kernel runs on.
 *
 * Waiting is on a 32-bit generation counter: a waiter spins (with PAUSE) until the counter moves
 * or its spin budget runs out, then sleeps in futex(FUTEX_WAIT) on the counter. The waker bumps
 * the counter and calls FUTEX_WAKE only when someone announced that it sleeps; the sleeper count
 * and the counter are both sequentially consistent, so a waiter either sees the new value or is
 * seen by the waker (the Dekker argument), and no wake-up is lost.
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

/* Wait until w->value != old: spin for spin_us, then sleep. */
static void wait_change(struct waitword *w, uint32_t old, int spin_us)
{
    if (atomic_load_explicit(&w->value, memory_order_acquire) != old)
        return;
    double deadline = 0;
    for (unsigned i = 1;; i++) {
        for (int k = 0; k < 16; k++) {
            if (atomic_load_explicit(&w->value, memory_order_acquire) != old)
                return;
            cpu_relax();
        }
        if ((i & 15) == 0) {
            const double t = ((double)inf__now_ns() * 1e-3);
            if (deadline == 0)
                deadline = t + spin_us;
            else if (t >= deadline)
                break;
        }
    }
    for (;;) {
        atomic_fetch_add(&w->n_sleepers, 1);
        if (atomic_load(&w->value) == old)
            futex_wait(&w->value, old);
        atomic_fetch_sub(&w->n_sleepers, 1);
        if (atomic_load_explicit(&w->value, memory_order_acquire) != old)
            return;
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
    wait_change(&pool->barrier, gen, pool->spin_us);
}

static void *worker_main(void *varg)
{
    struct worker *w = varg;
    struct inf_threadpool *pool = w->pool;
    uint32_t seen = 0;
    for (;;) {
        wait_change(&pool->task, seen, pool->spin_us);
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
