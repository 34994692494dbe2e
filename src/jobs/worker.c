/*
 * worker.c - the durable queue (inferno/jobs.h): adding and managing jobs, the worker that
 * claims them with a lease and a heartbeat, retries with exponential backoff, the dead-letter
 * state, and the schedules that queue batches on a cron expression.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/files.h"
#include "inferno/log.h"
#include "jobs/internal.h"

inf_status inf_jobs_add_many(struct inf_jobs *j, const struct inf_job_spec *s, size_t n,
                             int64_t *ids, struct inf_error *err)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i].max_attempts < 1 || s[i].max_attempts > 1000)
            return inf_error_set(err, INF_EINVAL, "max attempts must be 1 to 1000");
        if (s[i].kind == INF_JOB_BATCH && (!s[i].ref || !*s[i].ref))
            return inf_error_set(err, INF_EINVAL, "a batch job needs a batch id");
        if (s[i].kind == INF_JOB_REQUEST && (!s[i].payload || !*s[i].payload))
            return inf_error_set(err, INF_EINVAL, "a request job needs its request line");
    }
    pthread_mutex_lock(&j->mu);
    inf_status rc = OPS(j)->begin(j->s, err);
    if (rc == INF_OK && (rc = OPS(j)->job_add(j->s, s, n, now_s(), ids, err)) == INF_OK)
        rc = OPS(j)->commit(j->s, err);
    else if (rc != INF_OK)
        OPS(j)->rollback(j->s);
    pthread_mutex_unlock(&j->mu);
    if (rc == INF_OK && n <= 16)
        for (size_t i = 0; i < n; i++)
            inf__jobs_job_event(j, "created", ids ? ids[i] : 0, s[i].ref, 0, NULL);
    if (rc == INF_OK)
        inf__jobs_wake(j);
    return rc;
}

inf_status inf_jobs_add(struct inf_jobs *j, const struct inf_job_spec *s, int64_t *id,
                        struct inf_error *err)
{
    return inf_jobs_add_many(j, s, 1, id, err);
}

inf_status inf_jobs_list(struct inf_jobs *j, const char *state, int limit, struct inf_job **out,
                         size_t *n, struct inf_error *err)
{
    if (limit < 1)
        limit = 1;
    pthread_mutex_lock(&j->mu);
    inf_status rc = OPS(j)->job_list(j->s, state, limit, out, n, err);
    pthread_mutex_unlock(&j->mu);
    return rc;
}

inf_status inf_jobs_get(struct inf_jobs *j, int64_t id, struct inf_job *out, struct inf_error *err)
{
    pthread_mutex_lock(&j->mu);
    inf_status rc = OPS(j)->job_get(j->s, id, out, err);
    pthread_mutex_unlock(&j->mu);
    return rc;
}

inf_status inf_jobs_cancel(struct inf_jobs *j, int64_t id, struct inf_error *err)
{
    static const char *const from[] = {"queued", "failed", NULL};
    struct inf_job job = {0};
    pthread_mutex_lock(&j->mu);
    inf_status rc = OPS(j)->job_get(j->s, id, &job, err);
    if (rc == INF_OK)
        rc = OPS(j)->job_set_state(j->s, id, from, "cancelled", false, now_s(), err);
    pthread_mutex_unlock(&j->mu);
    if (rc == INF_EINVAL && job.kind == INF_JOB_BATCH && strcmp(job.state, "running") == 0) {
        /* a running batch stops through its own status (the worker sees it) */
        char *obj = NULL;
        *err = (struct inf_error){0};
        rc = inf_jobs_batch_cancel(j, job.ref, &obj, err);
        free(obj);
    }
    if (rc == INF_OK)
        inf__jobs_job_event(j, "cancelled", id, job.ref, job.attempts, NULL);
    inf_job_release(&job);
    return rc;
}

inf_status inf_jobs_retry(struct inf_jobs *j, int64_t id, struct inf_error *err)
{
    static const char *const from[] = {"dead", "failed", "cancelled", NULL};
    pthread_mutex_lock(&j->mu);
    inf_status rc = OPS(j)->job_set_state(j->s, id, from, "queued", true, now_s(), err);
    pthread_mutex_unlock(&j->mu);
    if (rc == INF_OK)
        inf__jobs_job_event(j, "retried", id, NULL, 0, NULL);
    return rc;
}

inf_status inf_jobs_purge(struct inf_jobs *j, int64_t before, int64_t *n, struct inf_error *err)
{
    pthread_mutex_lock(&j->mu);
    inf_status rc = OPS(j)->job_purge(j->s, before, n, err);
    pthread_mutex_unlock(&j->mu);
    return rc;
}

/* ---- the worker ------------------------------------------------------------------------------ */

/* A lease owner "host:pid:tag" on this host (ctx: the jobs handle) whose process is gone. */
bool inf__jobs_owner_dead(void *ctx, const char *owner)
{
    const char *my_host = ((const struct inf_jobs *)ctx)->host;
    const char *c1 = strchr(owner, ':');
    if (!c1 || (size_t)(c1 - owner) != strlen(my_host) ||
        strncmp(owner, my_host, (size_t)(c1 - owner)) != 0)
        return false;
    char *end;
    long pid = strtol(c1 + 1, &end, 10);
    if (end == c1 + 1 || *end != ':' || pid <= 0)
        return false;
    if (pid == (long)getpid())
        return false; /* this process: its own workers' leases are live */
    return kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

struct beat {
    struct inf_jobs *j;
    int64_t id;
    int lease_ms;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
    atomic_bool lost;
};

static void *beat_main(void *arg)
{
    struct beat *b = arg;
    pthread_mutex_lock(&b->mu);
    while (!b->done) {
        struct timespec dl;
        clock_gettime(CLOCK_REALTIME, &dl);
        long long ns = dl.tv_nsec + (long long)(b->lease_ms / 3) * 1000000LL;
        dl.tv_sec += (time_t)(ns / 1000000000LL);
        dl.tv_nsec = (long)(ns % 1000000000LL);
        pthread_cond_timedwait(&b->cv, &b->mu, &dl);
        if (b->done)
            break;
        struct inf_error e = {0};
        pthread_mutex_lock(&b->j->mu);
        inf_status rc =
            OPS(b->j)->job_heartbeat(b->j->s, b->id, b->j->owner, now_ms() + b->lease_ms, &e);
        pthread_mutex_unlock(&b->j->mu);
        if (rc == INF_ENOTFOUND) {
            INF_LOG_WARN("jobs", "job %lld: %s", (long long)b->id, inf_error_message(&e));
            atomic_store(&b->lost, true);
        }
    }
    pthread_mutex_unlock(&b->mu);
    return NULL;
}

/* Run one request job: its output line is the result; a 5xx other than 503 is a failure. */
static inf_status run_request(const struct inf_job *job, const struct inf_jobs_exec *x,
                              char **result, struct inf_error *err)
{
    struct inf_batch_line bl;
    *result = NULL;
    if (inf_batch_line_parse(job->payload, strlen(job->payload), &bl, err) != INF_OK)
        return err->code;
    char msg[600];
    inf_status rc = INF_OK;
    if (x->check && !x->check(x->ctx, bl.endpoint, bl.body, bl.body_len, msg, sizeof(msg))) {
        char id[32];
        snprintf(id, sizeof(id), "job_%lld", (long long)job->id);
        *result = inf_batch_output_line(id, bl.custom_id, 0, NULL, NULL, "invalid_request", msg);
    } else {
        char *resp = NULL, rid[80] = "";
        int status = x->run(x->ctx, bl.endpoint, bl.body, bl.body_len, &resp, rid, sizeof(rid));
        if (status >= 500) /* 503 too: busy or stopping, tried again later */
            rc = inf_error_set(err, INF_EIO, "the request answered %d", status);
        else {
            char id[32];
            snprintf(id, sizeof(id), "job_%lld", (long long)job->id);
            *result = inf_batch_output_line(id, bl.custom_id, status, rid, resp ? resp : "{}", NULL,
                                            NULL);
        }
        free(resp);
    }
    inf_batch_line_release(&bl);
    return rc;
}

inf_status inf_jobs_worker_run(struct inf_jobs *j, const struct inf_jobs_worker_params *p,
                               struct inf_error *err)
{
    const int lease_ms = p->lease_ms > 0 ? p->lease_ms : 15000;
    const int poll_ms = p->poll_ms > 0 ? p->poll_ms : 500;
    const double backoff = p->backoff_s > 0 ? p->backoff_s : 2.0;
    while (!(p->stop && atomic_load(p->stop))) {
        struct inf_error e = {0};
        int n_sched = 0;
        if (inf_jobs_schedule_tick(j, now_s(), &n_sched, &e) != INF_OK)
            INF_LOG_WARN("jobs", "schedules: %s", inf_error_message(&e));
        struct inf_job job;
        pthread_mutex_lock(&j->mu);
        inf_status rc = OPS(j)->job_reap(j->s, inf__jobs_owner_dead, j, &e);
        if (rc == INF_OK)
            rc = OPS(j)->job_claim(j->s, j->owner, now_s(), now_ms() + lease_ms, &job, &e);
        pthread_mutex_unlock(&j->mu);
        if (rc == INF_ENOTFOUND) {
            if (p->once)
                return INF_OK;
            if (inf__jobs_batch_help(j, p->exec, p->stop))
                continue;            /* ran requests of a batch another worker holds */
            if (OPS(j)->wait_work) { /* woken at once when a job is added (PostgreSQL) */
                for (int t = 0; t < poll_ms && !(p->stop && atomic_load(p->stop)); t += 200)
                    if (OPS(j)->wait_work(j->s, poll_ms - t < 200 ? poll_ms - t : 200))
                        break;
                continue;
            }
            /* until this process queues a job, or poll_ms (other processes' jobs, due
               not_before times, schedules), checking the stop flag every 20 ms */
            pthread_mutex_lock(&j->wake_mu);
            uint64_t seen = j->wake_seq;
            for (int t = 0;
                 t < poll_ms && j->wake_seq == seen && !(p->stop && atomic_load(p->stop));
                 t += 20) {
                struct timespec dl;
                clock_gettime(CLOCK_REALTIME, &dl);
                dl.tv_nsec += 20 * 1000000L;
                if (dl.tv_nsec >= 1000000000L) {
                    dl.tv_sec++;
                    dl.tv_nsec -= 1000000000L;
                }
                pthread_cond_timedwait(&j->wake_cv, &j->wake_mu, &dl);
            }
            pthread_mutex_unlock(&j->wake_mu);
            continue;
        }
        if (rc == INF_EIO && !p->once) { /* the database is away: keep trying */
            INF_LOG_WARN("jobs", "claim: %s", inf_error_message(&e));
            for (int t = 0; t < poll_ms && !(p->stop && atomic_load(p->stop)); t += 20)
                usleep(20 * 1000);
            continue;
        }
        if (rc != INF_OK) {
            *err = e;
            return rc;
        }
        INF_LOG_INFO("jobs", "job %lld (%s%s%s): started, attempt %d of %d", (long long)job.id,
                     job.kind == INF_JOB_BATCH ? "batch " : "request", job.ref,
                     job.lease_until ? "" : "", job.attempts + 1, job.max_attempts);
        inf__jobs_job_event(j, "started", job.id, job.ref, job.attempts, NULL);
        struct beat b = {.j = j, .id = job.id, .lease_ms = lease_ms};
        pthread_mutex_init(&b.mu, NULL);
        pthread_cond_init(&b.cv, NULL);
        pthread_t bt;
        bool beating = pthread_create(&bt, NULL, beat_main, &b) == 0;
        char *result = NULL;
        struct inf_error je = {0};
        if (job.kind == INF_JOB_BATCH)
            rc = inf_jobs_batch_process(j, job.ref, p->exec, p->stop, &je);
        else
            rc = run_request(&job, p->exec, &result, &je);
        pthread_mutex_lock(&b.mu);
        b.done = true;
        pthread_cond_signal(&b.cv);
        pthread_mutex_unlock(&b.mu);
        if (beating)
            pthread_join(bt, NULL);
        pthread_mutex_destroy(&b.mu);
        pthread_cond_destroy(&b.cv);
        const char *state = "done";
        int attempts = job.attempts;
        int64_t not_before = 0;
        if (rc == INF_ECANCELED) { /* stopping: back to the queue, no attempt counted */
            state = "queued";
        } else if (rc != INF_OK) {
            attempts++;
            if (attempts >= job.max_attempts) {
                state = "dead";
            } else {
                double d = backoff;
                for (int i = 1; i < attempts && d < 3600; i++)
                    d *= 2;
                not_before = now_s() + (int64_t)(d < 3600 ? d : 3600);
                state = "queued";
            }
        }
        struct inf_error fe = {0};
        pthread_mutex_lock(&j->mu);
        inf_status frc =
            atomic_load(&b.lost)
                ? INF_ENOTFOUND
                : OPS(j)->job_finish(j->s, job.id, j->owner, state, attempts, not_before,
                                     rc != INF_OK ? inf_error_message(&je) : NULL, result, now_s(),
                                     &fe);
        pthread_mutex_unlock(&j->mu);
        free(result);
        if (frc == INF_OK && job.kind == INF_JOB_BATCH && strcmp(state, "dead") == 0) {
            char msg[700];
            snprintf(msg, sizeof(msg), "the batch's job failed %d times; last: %s", attempts,
                     inf_error_message(&je));
            if (inf__jobs_batch_fail(j, job.ref, msg, &fe) != INF_OK)
                INF_LOG_WARN("jobs", "batch %s: %s", job.ref, inf_error_message(&fe));
        }
        if (frc != INF_OK)
            INF_LOG_WARN("jobs", "job %lld: not recorded: %s", (long long)job.id,
                         frc == INF_ENOTFOUND ? "another worker took it over"
                                              : inf_error_message(&fe));
        else if (rc == INF_OK)
            inf__jobs_job_event(j, "completed", job.id, job.ref, attempts, NULL);
        else if (rc != INF_ECANCELED)
            inf__jobs_job_event(j, strcmp(state, "dead") == 0 ? "dead" : "failed", job.id, job.ref,
                                attempts, inf_error_message(&je));
        if (rc != INF_OK && rc != INF_ECANCELED)
            INF_LOG_WARN("jobs", "job %lld: %s (attempt %d of %d)%s", (long long)job.id,
                         inf_error_message(&je), attempts, job.max_attempts,
                         strcmp(state, "dead") == 0 ? ": dead" : "");
        inf_job_release(&job);
    }
    return INF_OK;
}

/* ---- schedules ------------------------------------------------------------------------------- */

inf_status inf_jobs_schedule_add(struct inf_jobs *j, const struct inf_schedule *s, int64_t *id,
                                 struct inf_error *err)
{
    struct inf_cron c;
    if (inf_cron_parse(s->expr, &c, err) != INF_OK)
        return err->code;
    enum inf_batch_endpoint ep;
    if (!inf_batch_endpoint_parse(s->endpoint, &ep))
        return inf_error_set(err, INF_EINVAL, "unknown endpoint '%s'", s->endpoint);
    struct inf_schedule v = *s;
    if (inf_cron_next(&c, v.tz, now_s(), &v.next_run, err) != INF_OK)
        return err->code;
    pthread_mutex_lock(&j->mu);
    inf_status rc = OPS(j)->sched_add(j->s, &v, id, err);
    pthread_mutex_unlock(&j->mu);
    return rc;
}

inf_status inf_jobs_schedule_list(struct inf_jobs *j, struct inf_schedule **out, size_t *n,
                                  struct inf_error *err)
{
    pthread_mutex_lock(&j->mu);
    inf_status rc = OPS(j)->sched_list(j->s, out, n, err);
    pthread_mutex_unlock(&j->mu);
    return rc;
}

inf_status inf_jobs_schedule_remove(struct inf_jobs *j, int64_t id, struct inf_error *err)
{
    pthread_mutex_lock(&j->mu);
    inf_status rc = OPS(j)->sched_del(j->s, id, err);
    pthread_mutex_unlock(&j->mu);
    return rc;
}

inf_status inf_jobs_schedule_pause(struct inf_jobs *j, int64_t id, bool paused,
                                   struct inf_error *err)
{
    struct inf_schedule *v = NULL;
    size_t n = 0;
    pthread_mutex_lock(&j->mu);
    inf_status rc = OPS(j)->sched_list(j->s, &v, &n, err);
    size_t i = 0;
    while (rc == INF_OK && i < n && v[i].id != id)
        i++;
    if (rc == INF_OK && i == n)
        rc = inf_error_set(err, INF_ENOTFOUND, "no schedule %lld", (long long)id);
    if (rc == INF_OK) {
        v[i].paused = paused;
        struct inf_cron c;
        /* resumed: from now on (runs missed while paused are not made up) */
        if (!paused && inf_cron_parse(v[i].expr, &c, err) == INF_OK)
            rc = inf_cron_next(&c, v[i].tz, now_s(), &v[i].next_run, err);
        if (rc == INF_OK)
            rc = OPS(j)->sched_update(j->s, &v[i], err);
    }
    pthread_mutex_unlock(&j->mu);
    free(v);
    return rc;
}

/* Queue one run of a schedule: the batch file is copied in as a file and a batch made. */
static inf_status schedule_fire(struct inf_jobs *j, const struct inf_schedule *s,
                                struct inf_error *err)
{
    FILE *f = fopen(s->batch_path, "rb");
    if (!f)
        return inf_error_set(err, INF_EIO, "schedule %lld: cannot open '%s': %s", (long long)s->id,
                             s->batch_path, strerror(errno));
    size_t len = 0;
    char *data = inf__read_stream(f, (size_t)INF_JOBS_MAX_FILE_BYTES, &len);
    fclose(f);
    if (!data)
        return inf_error_set(err, INF_EIO, "schedule %lld: cannot read '%s'", (long long)s->id,
                             s->batch_path);
    struct inf_jobs_file fl;
    const char *base = strrchr(s->batch_path, '/');
    inf_status rc =
        inf_jobs_file_create(j, base ? base + 1 : s->batch_path, "batch", data, len, &fl, err);
    free(data);
    char *obj = NULL;
    if (rc == INF_OK)
        rc = inf_jobs_batch_create(j, fl.id, s->endpoint, "24h", NULL, 0, &obj, err);
    free(obj);
    return rc;
}

inf_status inf_jobs_schedule_tick(struct inf_jobs *j, int64_t now, int *n_fired,
                                  struct inf_error *err)
{
    struct inf_schedule *v = NULL;
    size_t n = 0;
    *n_fired = 0;
    pthread_mutex_lock(&j->mu);
    inf_status rc = OPS(j)->sched_list(j->s, &v, &n, err);
    pthread_mutex_unlock(&j->mu);
    for (size_t i = 0; rc == INF_OK && i < n; i++) {
        struct inf_schedule *s = &v[i];
        if (s->paused || s->next_run > now)
            continue;
        struct inf_cron c;
        int64_t next = 0;
        if (inf_cron_parse(s->expr, &c, err) != INF_OK ||
            inf_cron_next(&c, s->tz, now, &next, err) != INF_OK) {
            rc = err->code;
            break;
        }
        /* take this run first: of several workers ticking at once, one fires it */
        pthread_mutex_lock(&j->mu);
        inf_status ar = OPS(j)->sched_advance(j->s, s->id, s->next_run, next, now, err);
        pthread_mutex_unlock(&j->mu);
        if (ar == INF_EEXIST)
            continue;
        if (ar != INF_OK) {
            rc = ar;
            break;
        }
        /* a run missed while down (more than a minute late) is run once or skipped */
        bool missed = now - s->next_run > 60;
        struct inf_error fe = {0};
        if (missed && !s->catch_up)
            continue;
        if (schedule_fire(j, s, &fe) == INF_OK) {
            (*n_fired)++;
            char extra[160];
            snprintf(extra, sizeof(extra), "\"schedule_id\":%lld,\"missed\":%s", (long long)s->id,
                     missed ? "true" : "false");
            inf__jobs_event(j, "scheduled", extra);
        } else {
            INF_LOG_WARN("jobs", "%s", inf_error_message(&fe));
        }
    }
    free(v);
    return rc;
}
