/*
 * jobs/store.h - the storage interface under inferno/jobs.h: every row the jobs layer keeps
 * (files, batches, a batch's requests and outputs, queue jobs, schedules) goes through these
 * operations. store_sqlite.c implements them on SQLite in WAL mode, store_pg.c on PostgreSQL
 * (several processes and machines on one store; it also offers the optional operations at the
 * end of the table). tests/test_jobs_store.c checks every contract on both. Internal to
 * src/jobs.
 *
 * Contracts every implementation keeps:
 *   - begin/commit/rollback group operations into one atomic transaction (nesting not needed);
 *   - out_put is idempotent: the first output stored for (batch, custom_id) wins, later ones
 *     are ignored (a request retaken after a crash never makes a second line);
 *   - job_claim hands a job to one owner only: a queued job due now, or a running one whose
 *     lease has expired, highest priority first, then oldest; the claim and the lease are one
 *     atomic step;
 *   - job_heartbeat and job_finish succeed only for the lease's current owner (INF_ENOTFOUND
 *     when another worker has retaken the job).
 * Time is Unix seconds (ms for leases) passed in by the caller.
 */
#ifndef INFERNO_JOBS_STORE_H
#define INFERNO_JOBS_STORE_H

#include "inferno/jobs.h"

struct inf__req {
    int64_t line; /* 1-based line number in the input file */
    char *custom_id;
    char *body; /* the request body (JSON text) */
};
void inf__req_free(struct inf__req *r, size_t n);

struct inf__out {
    int64_t line;
    int status; /* HTTP status; 0: never ran */
    char *text; /* the output line */
};

struct inf__store;
struct inf__store_ops {
    void (*close)(struct inf__store *s);
    inf_status (*begin)(struct inf__store *s, struct inf_error *err);
    inf_status (*commit)(struct inf__store *s, struct inf_error *err);
    void (*rollback)(struct inf__store *s);

    inf_status (*file_put)(struct inf__store *s, const struct inf_jobs_file *f,
                           struct inf_error *err);
    inf_status (*file_get)(struct inf__store *s, const char *id, struct inf_jobs_file *f,
                           struct inf_error *err);
    inf_status (*file_list)(struct inf__store *s, const char *purpose, const char *after, int limit,
                            struct inf_jobs_file **out, size_t *n, bool *has_more,
                            struct inf_error *err);
    inf_status (*file_del)(struct inf__store *s, const char *id, struct inf_error *err);

    /* a batch is its OpenAI object (JSON text) and its status */
    inf_status (*batch_put)(struct inf__store *s, const char *id, const char *status,
                            const char *obj, struct inf_error *err);
    inf_status (*batch_get)(struct inf__store *s, const char *id, char **obj,
                            struct inf_error *err);
    inf_status (*batch_list)(struct inf__store *s, const char *after, int limit, char ***objs,
                             size_t *n, bool *has_more, struct inf_error *err);

    inf_status (*req_put)(struct inf__store *s, const char *batch, const struct inf__req *r,
                          size_t n, struct inf_error *err);
    /* the requests that have no output yet, in line order */
    inf_status (*req_pending)(struct inf__store *s, const char *batch, struct inf__req **out,
                              size_t *n, struct inf_error *err);
    inf_status (*out_put)(struct inf__store *s, const char *batch, const char *custom_id,
                          int64_t line, int status, const char *text, struct inf_error *err);
    /* outputs by status: ok (200) and failed (any other, or never ran) */
    inf_status (*out_counts)(struct inf__store *s, const char *batch, int64_t *ok, int64_t *failed,
                             struct inf_error *err);
    /* every output in line order (*out malloc'd, texts too) */
    inf_status (*out_all)(struct inf__store *s, const char *batch, struct inf__out **out, size_t *n,
                          struct inf_error *err);

    inf_status (*job_add)(struct inf__store *s, const struct inf_job_spec *spec, size_t n,
                          int64_t now, int64_t *ids, struct inf_error *err);
    inf_status (*job_claim)(struct inf__store *s, const char *owner, int64_t now,
                            int64_t lease_until_ms, struct inf_job *out, struct inf_error *err);
    inf_status (*job_heartbeat)(struct inf__store *s, int64_t id, const char *owner,
                                int64_t lease_until_ms, struct inf_error *err);
    /* state: done, queued (a retry at not_before), dead, cancelled; attempts as counted */
    inf_status (*job_finish)(struct inf__store *s, int64_t id, const char *owner, const char *state,
                             int attempts, int64_t not_before, const char *error,
                             const char *result, int64_t now, struct inf_error *err);
    inf_status (*job_get)(struct inf__store *s, int64_t id, struct inf_job *out,
                          struct inf_error *err);
    inf_status (*job_list)(struct inf__store *s, const char *state, int limit, struct inf_job **out,
                           size_t *n, struct inf_error *err);
    /* set state for a job in one of from[] states (INF_EINVAL naming its state otherwise) */
    inf_status (*job_set_state)(struct inf__store *s, int64_t id, const char *const *from,
                                const char *to, bool reset_attempts, int64_t now,
                                struct inf_error *err);
    inf_status (*job_purge)(struct inf__store *s, int64_t before, int64_t *n,
                            struct inf_error *err);
    /* expire the leases of running jobs whose owner dead(owner) says is gone */
    inf_status (*job_reap)(struct inf__store *s, bool (*dead)(void *ctx, const char *owner),
                           void *ctx, struct inf_error *err);
    inf_status (*sched_add)(struct inf__store *s, const struct inf_schedule *sc, int64_t *id,
                            struct inf_error *err);
    inf_status (*sched_list)(struct inf__store *s, struct inf_schedule **out, size_t *n,
                             struct inf_error *err);
    inf_status (*sched_del)(struct inf__store *s, int64_t id, struct inf_error *err);
    inf_status (*sched_update)(struct inf__store *s, const struct inf_schedule *sc,
                               struct inf_error *err);
    /* move a schedule's next run from `from` to `to` (last_run = now), atomically: INF_EEXIST
       when its next run is no longer `from` (another worker took this run) */
    inf_status (*sched_advance)(struct inf__store *s, int64_t id, int64_t from, int64_t to,
                                int64_t now, struct inf_error *err);

    /* Optional (NULL: not offered). wait_work is called without the jobs handle's lock, the
       others under it. */
    /* wait up to timeout_ms for a job to be added anywhere (true: woken by one) */
    bool (*wait_work)(struct inf__store *s, int timeout_ms);
    /* file contents kept in the database instead of files_dir (a store for several machines):
       put replaces, get returns malloc'd bytes (INF_ENOTFOUND), del ignores a missing id */
    inf_status (*blob_put)(struct inf__store *s, const char *id, const void *data, size_t len,
                           struct inf_error *err);
    inf_status (*blob_get)(struct inf__store *s, const char *id, char **data, size_t *len,
                           struct inf_error *err);
    inf_status (*blob_del)(struct inf__store *s, const char *id, struct inf_error *err);
    /* a batch shared by several workers (share.c): claim up to max requests of the batch that
       have no output and no live lease (lease_until < now_ms), leasing them to owner until
       lease_until_ms, in line order; one owner per request, like job_claim (*n may be 0) */
    inf_status (*req_claim)(struct inf__store *s, const char *batch, const char *owner, int max,
                            int64_t now_ms, int64_t lease_until_ms, struct inf__req **out,
                            size_t *n, struct inf_error *err);
    /* extend owner's request leases in the batch (those still without an output) */
    inf_status (*req_renew)(struct inf__store *s, const char *batch, const char *owner,
                            int64_t lease_until_ms, struct inf_error *err);
    /* expire the request leases of owners that dead(owner) says are gone */
    inf_status (*req_reap)(struct inf__store *s, const char *batch,
                           bool (*dead)(void *ctx, const char *owner), void *ctx,
                           struct inf_error *err);
    /* a batch that another worker runs (its job is running, the batch in_progress) with
       requests free to claim; INF_ENOTFOUND when none */
    inf_status (*batch_to_help)(struct inf__store *s, int64_t now_ms, char *id, size_t size,
                                struct inf_error *err);
};

struct inf__store {
    const struct inf__store_ops *ops;
};

/* store_sqlite.c: "sqlite:PATH" */
inf_status inf__store_sqlite_open(const char *path, struct inf__store **out, struct inf_error *err);
/* store_pg.c: "postgresql://..." or "postgres://..." (a libpq connection URI) */
inf_status inf__store_pg_open(const char *url, struct inf__store **out, struct inf_error *err);

#endif
