/*
 * inferno/jobs.h - batch work that must not be lost: the OpenAI Files and Batch API's store,
 * the batch-line format, a durable job queue (leases, heartbeats, retries with backoff, a
 * dead-letter state) and recurring schedules (cron). See docs/jobs.md.
 *
 * Storage is behind a small interface (src/jobs/store.h): SQLite in WAL mode ("sqlite:PATH"),
 * uploaded files and batch results as files in files_dir; or PostgreSQL ("postgresql://..."),
 * files and results as bytea rows, for several servers on one queue (docs/jobs.md). The store
 * never runs a model: requests go to a caller-given executor (struct inf_jobs_exec), which the
 * server and the CLI implement with the server's own handlers, so a batch answers exactly as
 * the live endpoint.
 *
 * Crash safety: a job is claimed with a lease that a heartbeat extends; a worker that dies
 * (kill -9) leaves a lease that expires, or that a worker on the same host retakes at once when
 * the owner's process is gone. Outputs are written keyed by (batch id, custom_id), first write
 * wins, so a batch retaken after a crash never has a duplicate or a missing line.
 *
 * Threads: every function may be called from any thread (the handle serialises its store).
 */
#ifndef INFERNO_JOBS_H
#define INFERNO_JOBS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "inferno/status.h"

#ifdef __cplusplus
extern "C" {
#endif

struct inf_jobs;

struct inf_jobs_params {
    /* "sqlite:PATH" (PATH's directory is created), or "postgresql://..." / "postgres://..."
       (a libpq URI: several servers share the queue; file contents are kept in the database) */
    const char *url;
    const char *files_dir; /* uploaded files and batch results (SQLite); created */
    /* job events (a JSON object per event: created, started, completed, failed, retried, dead,
       cancelled) for the audit log; NULL: none. Called without the store's lock. */
    void (*on_event)(void *ctx, const char *json, size_t len);
    void *event_ctx;
};

/* Open (and create or migrate) the store. */
inf_status inf_jobs_open(const struct inf_jobs_params *p, struct inf_jobs **out,
                         struct inf_error *err);
void inf_jobs_close(struct inf_jobs *j);

/* ---- the batch-line format ------------------------------------------------------------------ */

enum inf_batch_endpoint {
    INF_BATCH_CHAT,        /* /v1/chat/completions */
    INF_BATCH_COMPLETIONS, /* /v1/completions */
    INF_BATCH_EMBEDDINGS,  /* /v1/embeddings */
};
/* The endpoint's path, and the endpoint of a path (false: none of them). */
const char *inf_batch_endpoint_path(enum inf_batch_endpoint ep);
bool inf_batch_endpoint_parse(const char *path, enum inf_batch_endpoint *out);

#define INF_BATCH_MAX_CUSTOM_ID 512 /* bytes */
#define INF_BATCH_MAX_LINE      (16u << 20)

/* One input line {"custom_id", "method": "POST", "url", "body"} (malloc'd strings). */
struct inf_batch_line {
    char *custom_id;
    enum inf_batch_endpoint endpoint;
    char *body; /* the body object as compact JSON */
    size_t body_len;
    char *model; /* body.model ("" when absent or not a string) */
};
/*
 * Parse one line (without its newline; a trailing '\r' is allowed). INF_EPARSE with a message
 * saying what is wrong (not JSON, a missing or mistyped field, method other than POST, an
 * unknown url, a custom_id that is empty or longer than INF_BATCH_MAX_CUSTOM_ID).
 */
inf_status inf_batch_line_parse(const char *line, size_t len, struct inf_batch_line *out,
                                struct inf_error *err);
void inf_batch_line_release(struct inf_batch_line *l);

/*
 * The output line of one request, as OpenAI's batch output files have it (no newline,
 * malloc'd): {"id", "custom_id", "response": {"status_code", "request_id", "body"}, "error"}.
 * body: the response's JSON text (status_code != 0), or NULL with error_code/error_message for
 * a request that never ran ("response": null, "error": {"code", "message"}). The id is derived
 * from batch_id and custom_id, so the same request always gets the same line.
 */
char *inf_batch_output_line(const char *batch_id, const char *custom_id, int status_code,
                            const char *request_id, const char *body, const char *error_code,
                            const char *error_message);
/* The custom_id of an output line (malloc'd), or NULL when the line is not one. */
char *inf_batch_output_custom_id(const char *line, size_t len);

/* ---- the executor: how requests run ---------------------------------------------------------- */

struct inf_jobs_exec {
    /* check a body as the live endpoint would (fields, types, ranges, the model served);
       false with a message (into msg[size]) when it would be refused */
    bool (*check)(void *ctx, enum inf_batch_endpoint ep, const char *body, size_t len, char *msg,
                  size_t size);
    /* run one request: its HTTP status, the response body (JSON text, malloc'd into *resp)
       and its request id; 503 means "not now, try again" (busy, preempted, stopping) */
    int (*run)(void *ctx, enum inf_batch_endpoint ep, const char *body, size_t len, char **resp,
               char *request_id, size_t rid_size);
    void *ctx;
    int concurrency; /* requests in flight at once (>= 1) */
};

/* ---- files ------------------------------------------------------------------------------------
 */

struct inf_jobs_file {
    char id[64];
    char filename[256];
    char purpose[32]; /* "batch", "batch_output" */
    int64_t bytes, created_at;
};

#define INF_JOBS_MAX_FILE_BYTES ((int64_t)200 << 20)

inf_status inf_jobs_file_create(struct inf_jobs *j, const char *filename, const char *purpose,
                                const void *data, size_t len, struct inf_jobs_file *out,
                                struct inf_error *err);
inf_status inf_jobs_file_get(struct inf_jobs *j, const char *id, struct inf_jobs_file *out,
                             struct inf_error *err); /* INF_ENOTFOUND */
/* Newest first; after: an id (the page after it) or NULL; *out malloc'd. */
inf_status inf_jobs_file_list(struct inf_jobs *j, const char *purpose, const char *after, int limit,
                              struct inf_jobs_file **out, size_t *n, bool *has_more,
                              struct inf_error *err);
inf_status inf_jobs_file_content(struct inf_jobs *j, const char *id, char **data, size_t *len,
                                 struct inf_error *err);
/* The file's bytes as an open descriptor (the caller closes it) and its size. */
inf_status inf_jobs_file_open(struct inf_jobs *j, const char *id, int *fd, size_t *len,
                              struct inf_error *err);
inf_status inf_jobs_file_delete(struct inf_jobs *j, const char *id, struct inf_error *err);

/* ---- batches ----------------------------------------------------------------------------------
 */

/*
 * Create a batch (status "validating") and queue the job that runs it. metadata: a JSON object
 * text or NULL. *obj: the batch object as OpenAI returns it (JSON text, malloc'd).
 * INF_ENOTFOUND for an unknown input file, INF_EINVAL for a bad endpoint or window.
 */
inf_status inf_jobs_batch_create(struct inf_jobs *j, const char *input_file_id,
                                 const char *endpoint, const char *completion_window,
                                 const char *metadata, int priority, char **obj,
                                 struct inf_error *err);
inf_status inf_jobs_batch_get(struct inf_jobs *j, const char *id, char **obj,
                              struct inf_error *err);
/* {"object": "list", "data", "first_id", "last_id", "has_more"}, newest first. */
inf_status inf_jobs_batch_list(struct inf_jobs *j, const char *after, int limit, char **obj,
                               struct inf_error *err);
/* "cancelling" (the worker stops it and writes what finished); a finished batch: INF_EINVAL. */
inf_status inf_jobs_batch_cancel(struct inf_jobs *j, const char *id, char **obj,
                                 struct inf_error *err);

/* ---- the queue --------------------------------------------------------------------------------
 */

enum inf_job_kind {
    INF_JOB_BATCH,   /* ref: a batch id */
    INF_JOB_REQUEST, /* payload: one batch line; its output line is the job's result */
};

struct inf_job_spec {
    enum inf_job_kind kind;
    const char *ref;     /* INF_JOB_BATCH */
    const char *payload; /* INF_JOB_REQUEST */
    int priority;        /* higher first */
    int max_attempts;    /* >= 1 */
    int64_t not_before;  /* Unix seconds; 0 = now */
};

struct inf_job {
    int64_t id;
    enum inf_job_kind kind;
    char state[16]; /* queued, running, done, failed (retrying), dead, cancelled */
    int priority, attempts, max_attempts;
    int64_t not_before, created_at, updated_at, lease_until;
    char ref[64];
    char owner[128];
    char *payload, *result, *last_error; /* malloc'd, may be NULL */
};
void inf_job_release(struct inf_job *job);

inf_status inf_jobs_add(struct inf_jobs *j, const struct inf_job_spec *s, int64_t *id,
                        struct inf_error *err);
/* Many at once, in one transaction (ids[n] may be NULL). */
inf_status inf_jobs_add_many(struct inf_jobs *j, const struct inf_job_spec *s, size_t n,
                             int64_t *ids, struct inf_error *err);
/* state: NULL for all; *out malloc'd (release each). */
inf_status inf_jobs_list(struct inf_jobs *j, const char *state, int limit, struct inf_job **out,
                         size_t *n, struct inf_error *err);
inf_status inf_jobs_get(struct inf_jobs *j, int64_t id, struct inf_job *out, struct inf_error *err);
inf_status inf_jobs_cancel(struct inf_jobs *j, int64_t id, struct inf_error *err);
/* A dead, failed or cancelled job queued again with its attempts reset. */
inf_status inf_jobs_retry(struct inf_jobs *j, int64_t id, struct inf_error *err);
/* Remove finished jobs (done, dead, cancelled) older than before (Unix s); *n removed. */
inf_status inf_jobs_purge(struct inf_jobs *j, int64_t before, int64_t *n, struct inf_error *err);

struct inf_jobs_worker_params {
    const struct inf_jobs_exec *exec;
    int lease_ms;      /* a claim's lease; the heartbeat renews it every third of it */
    int poll_ms;       /* how often an idle worker looks for work */
    double backoff_s;  /* first retry after this; doubles per attempt (capped at an hour) */
    bool once;         /* return when no job is ready (instead of waiting for more) */
    atomic_bool *stop; /* set to stop: the running job is left to be retaken */
};
/* Run jobs until *stop (or, with once, until none is ready). */
inf_status inf_jobs_worker_run(struct inf_jobs *j, const struct inf_jobs_worker_params *p,
                               struct inf_error *err);
/* Run one batch to its end now (used by the worker). */
inf_status inf_jobs_batch_process(struct inf_jobs *j, const char *batch_id,
                                  const struct inf_jobs_exec *exec, atomic_bool *stop,
                                  struct inf_error *err);

/* ---- schedules --------------------------------------------------------------------------------
 */

/* A parsed cron expression: 5 fields (minute hour day-of-month month day-of-week; "*", lists,
   ranges, steps, month and day names) or @hourly, @daily (@midnight), @weekly, @monthly,
   @yearly (@annually). */
struct inf_cron {
    uint64_t minute;         /* bit 0..59 */
    uint32_t hour;           /* bit 0..23 */
    uint32_t mday;           /* bit 1..31 */
    uint16_t month;          /* bit 1..12 */
    uint8_t wday;            /* bit 0..6, Sunday = 0 (7 is taken for Sunday too) */
    bool mday_any, wday_any; /* cron's rule: when both are restricted, either matches */
};
inf_status inf_cron_parse(const char *expr, struct inf_cron *out, struct inf_error *err);
/*
 * The first time strictly after `after` (Unix s) at which c fires in time zone tz (an IANA
 * name from the system's tz database, "UTC" or NULL). Local times that a DST jump skips never
 * fire; a local time that occurs twice (the hour repeated in autumn) fires once, the first
 * time, unless the hour field is "*" (then every real hour fires). INF_ENOTFOUND when nothing fires
 * within 5 years, INF_EINVAL for an unknown zone.
 */
inf_status inf_cron_next(const struct inf_cron *c, const char *tz, int64_t after, int64_t *next,
                         struct inf_error *err);

struct inf_schedule {
    int64_t id;
    char expr[128];
    char tz[64];
    char batch_path[1024]; /* a batch file (JSON lines) read at each run */
    char endpoint[32];
    bool paused;
    bool catch_up; /* a run missed while down runs once at start (else it is skipped) */
    int64_t next_run, last_run;
};
inf_status inf_jobs_schedule_add(struct inf_jobs *j, const struct inf_schedule *s, int64_t *id,
                                 struct inf_error *err);
inf_status inf_jobs_schedule_list(struct inf_jobs *j, struct inf_schedule **out, size_t *n,
                                  struct inf_error *err);
inf_status inf_jobs_schedule_remove(struct inf_jobs *j, int64_t id, struct inf_error *err);
inf_status inf_jobs_schedule_pause(struct inf_jobs *j, int64_t id, bool paused,
                                   struct inf_error *err);
/* Queue the batches of the schedules due at `now` (the worker calls it); *n queued. */
inf_status inf_jobs_schedule_tick(struct inf_jobs *j, int64_t now, int *n, struct inf_error *err);

#ifdef __cplusplus
}
#endif

#endif
