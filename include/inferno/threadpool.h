/*
 * inferno/threadpool.h - a persistent pool of worker threads for the compute kernels.
 *
 * The caller's thread is thread 0 of every task; n_threads - 1 workers wait between tasks by
 * spinning for a short while and then sleeping (futex), so back-to-back tasks (one per matrix
 * product while generating a token) start in well under a microsecond while an idle pool costs
 * nothing. Inside a task, inf_threadpool_barrier synchronises all threads (spin, then sleep).
 * Work is split either by row ranges (inf_split_rows), by an atomic counter handing out chunks
 * (struct inf_chunker), which balances better on a machine shared with other work, or by
 * per-thread ranges with stealing (struct inf_ranges), which balances as well and keeps each
 * thread on consecutive units.
 *
 * A pool runs one task at a time and is driven from one thread. Nothing allocates after
 * inf_threadpool_new.
 */
#ifndef INFERNO_THREADPOOL_H
#define INFERNO_THREADPOOL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "inferno/status.h"

#ifdef __cplusplus
extern "C" {
#endif

struct inf_threadpool;

/* The most threads a pool (and backend.threads) may have. */
#define INF_THREADS_MAX 512

struct inf_threadpool_params {
    int n_threads; /* total threads including the caller; 0 = physical cores */
    bool pin;      /* pin worker i to CPU i (the caller's thread is left alone) */
    int spin_us;   /* the longest an idle thread spins before sleeping; the spin shrinks to 2 us
                      when waits show other threads descheduled (threadpool.c); < 0 = default
                      (100); 0 = never spin */
};

/* Defaults: physical cores, no pinning, default spin. */
void inf_threadpool_params_init(struct inf_threadpool_params *p);

/*
 * Start a pool. p may be NULL for the defaults. On success *out owns the pool; free it with
 * inf_threadpool_free. Fails with INF_EINVAL for a thread count outside 1..512, INF_ENOMEM or
 * INF_EIO (thread creation).
 */
inf_status inf_threadpool_new(const struct inf_threadpool_params *p, struct inf_threadpool **out,
                              struct inf_error *err);

/* Stop and join the workers and free the pool. NULL is a no-op. */
void inf_threadpool_free(struct inf_threadpool *pool);

/* Threads of the pool (including the caller's); 1 for NULL. */
int inf_threadpool_n_threads(const struct inf_threadpool *pool);

/* A task body: thread ith of nth. */
typedef void (*inf_task_fn)(void *arg, int ith, int nth);

/*
 * Run fn(arg, ith, nth) on every thread of the pool (the caller is ith == 0) and return when all
 * have finished. A NULL pool runs fn(arg, 0, 1) on the caller's thread. Must not be called from
 * inside a task.
 */
void inf_threadpool_run(struct inf_threadpool *pool, inf_task_fn fn, void *arg);

/* Inside a task: wait until every thread of the pool has arrived. No-op for NULL. */
void inf_threadpool_barrier(struct inf_threadpool *pool);

/*
 * Thread ith's share [*r0, *r1) of n items split into nth near-equal contiguous ranges whose
 * boundaries are multiples of align (>= 1), except the last one which ends at n.
 */
void inf_split_rows(int64_t n, int ith, int nth, int64_t align, int64_t *r0, int64_t *r1);

/* Hands out [start, start + step) chunks to whichever thread asks first. */
struct inf_chunker {
    _Atomic int64_t next;
};

static inline void inf_chunker_init(struct inf_chunker *c, int64_t start)
{
    atomic_init(&c->next, start);
}

/* The start of the next chunk of step items (compare with the end yourself). */
static inline int64_t inf_chunker_next(struct inf_chunker *c, int64_t step)
{
    return atomic_fetch_add_explicit(&c->next, step, memory_order_relaxed);
}

/*
 * Units 0..n-1 split into one contiguous range per thread (up to INF_RANGES_SLOTS ranges; more
 * threads share them); a thread takes the units of its own range in order, then the remaining
 * units of the others. Each thread thus walks consecutive units (its next unit follows the one
 * it just did, so what it prefetched at the end of a unit is what it reads next), and a thread
 * slowed by other work still leaves its units to the rest.
 */
#define INF_RANGES_SLOTS 16
struct inf_ranges {
    struct {
        _Alignas(64) _Atomic int64_t next;
        int64_t end;
    } s[INF_RANGES_SLOTS];
    int n_slots;
};

static inline void inf_ranges_init(struct inf_ranges *r, int64_t n_units, int nth)
{
    r->n_slots = nth < 1 ? 1 : nth < INF_RANGES_SLOTS ? nth : INF_RANGES_SLOTS;
    for (int i = 0; i < r->n_slots; i++) {
        atomic_init(&r->s[i].next, n_units * i / r->n_slots);
        r->s[i].end = n_units * (i + 1) / r->n_slots;
    }
}

/* The next unit for thread ith, or -1 when none is left. */
static inline int64_t inf_ranges_next(struct inf_ranges *r, int ith)
{
    const int own = ith % r->n_slots;
    for (int k = 0; k < r->n_slots; k++) {
        const int i = (own + k) % r->n_slots;
        if (atomic_load_explicit(&r->s[i].next, memory_order_relaxed) >= r->s[i].end)
            continue;
        const int64_t v = atomic_fetch_add_explicit(&r->s[i].next, 1, memory_order_relaxed);
        if (v < r->s[i].end)
            return v;
    }
    return -1;
}

#ifdef __cplusplus
}
#endif
#endif
