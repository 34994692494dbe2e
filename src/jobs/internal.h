/*
 * jobs/internal.h - the jobs handle and helpers shared by jobs.c (files, batches) and
 * worker.c (the queue, its worker, schedules). Internal to src/jobs.
 */
#ifndef INFERNO_JOBS_INTERNAL_H
#define INFERNO_JOBS_INTERNAL_H

#include <openssl/rand.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "jobs/store.h"

struct inf_jobs {
    struct inf__store *s;
    pthread_mutex_t mu; /* every store call is made under it */
    char files_dir[4096];
    char owner[128]; /* host:pid:random, the lease owner of this process's workers */
    char host[64];
    void (*on_event)(void *ctx, const char *json, size_t len);
    void *event_ctx;
    /* wakes this process's idle workers when it queues a job (others find it by polling) */
    pthread_mutex_t wake_mu;
    pthread_cond_t wake_cv;
    uint64_t wake_seq;
};

/* Wake the idle workers of this handle (a job was queued). */
void inf__jobs_wake(struct inf_jobs *j);

/* worker.c: a lease owner "host:pid:tag" on this host (ctx: the jobs handle) whose process is
   gone; the reap callback of job and request leases alike. */
bool inf__jobs_owner_dead(void *ctx, const char *owner);

#define OPS(j) ((j)->s->ops)

static inline int64_t now_s(void)
{
    return (int64_t)time(NULL);
}

static inline int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* n_hex random hexadecimal digits and a NUL into out. */
static inline void random_hex(char *out, size_t n_hex)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char b[32];
    size_t nb = (n_hex + 1) / 2 > sizeof(b) ? sizeof(b) : (n_hex + 1) / 2;
    if (RAND_bytes(b, (int)nb) != 1)
        for (size_t i = 0; i < nb; i++)
            b[i] = (unsigned char)(rand() & 0xff);
    for (size_t i = 0; i < n_hex && i / 2 < nb; i++)
        out[i] = hex[(b[i / 2] >> (i % 2 ? 0 : 4)) & 15];
    out[n_hex] = '\0';
}

/* An event for the audit log: {"type": "job", "event": name, "time", ...extra}. */
void inf__jobs_event(struct inf_jobs *j, const char *name, const char *extra_json);
void inf__jobs_job_event(struct inf_jobs *j, const char *name, int64_t id, const char *ref,
                         int attempts, const char *error);
/* Store an uploaded file under a given id (jobs.c). */
inf_status inf__jobs_file_store(struct inf_jobs *j, const char *id, const char *filename,
                                const char *purpose, const void *data, size_t len,
                                struct inf_jobs_file *out, struct inf_error *err);

/* A batch whose job is dead: "failed" with one error naming why (a finished batch: as it is). */
inf_status inf__jobs_batch_fail(struct inf_jobs *j, const char *id, const char *message,
                                struct inf_error *err);

/*
 * share.c: a batch run by several workers, on a store with request claims (OPS(j)->req_claim).
 * Run the in_progress batch's requests, claimed one at a time, until none is free; the owner
 * (the holder of the batch's job) also waits for those leased to others and retakes those of
 * dead owners, so it returns when every request has an output, or the batch stops being
 * in_progress or expires. INF_ECANCELED when *stop was set.
 */
inf_status inf__jobs_batch_share_run(struct inf_jobs *j, const char *batch_id,
                                     enum inf_batch_endpoint ep, const struct inf_jobs_exec *exec,
                                     atomic_bool *stop, bool owner, struct inf_error *err);
/* An idle worker helps with a batch another worker runs; false when there was none. */
bool inf__jobs_batch_help(struct inf_jobs *j, const struct inf_jobs_exec *exec, atomic_bool *stop);
#endif
