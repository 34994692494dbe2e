/*
 * share.c - one batch run by several workers at once, on a store that offers request claims
 * (store.h: req_claim, req_reap, batch_to_help; the PostgreSQL store). The worker that holds
 * the batch's job runs it as before (validation, finalizing), but takes its requests one at a
 * time with a lease instead of all at start; an idle worker anywhere (another thread, process
 * or machine) finds a running batch with requests free to claim and runs some of them too.
 * Outputs are still written first-write-wins per (batch, custom_id), so a request leased to a
 * worker that died and then run again by another never makes a second line.
 *
 * Request leases: REQ_LEASE_MS past the claim, renewed every REQ_RENEW_MS while this process
 * runs the batch, so a long generation keeps its request; a worker that dies (or stops running
 * the batch) lets its leases run out, and one whose process is gone on this host loses them at
 * once (the same check as the queue's job_reap). A lease that ran out on a request still
 * running costs a duplicate run at worst, never a duplicate line.
 */
#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "inferno/log.h"
#include "jobs/internal.h"

#define REQ_LEASE_MS (30 * 1000)
#define REQ_RENEW_MS (10 * 1000)

struct share {
    struct inf_jobs *j;
    const struct inf_jobs_exec *x;
    const char *batch_id;
    enum inf_batch_endpoint ep;
    atomic_bool halt; /* cancelled, expired, stopping or an error: take no more */
    atomic_bool *stop;
    atomic_int live; /* threads still running */
    atomic_int ran;  /* requests this process ran */
    pthread_mutex_t mu;
    inf_status rc;
    struct inf_error err;
};

static void share_fail(struct share *s, inf_status rc, const struct inf_error *e)
{
    pthread_mutex_lock(&s->mu);
    if (s->rc == INF_OK) {
        s->rc = rc;
        s->err = *e;
    }
    pthread_mutex_unlock(&s->mu);
    atomic_store(&s->halt, true);
}

static bool share_halted(struct share *s)
{
    return atomic_load(&s->halt) || (s->stop && atomic_load(s->stop));
}

/* Run one claimed request and store its output; INF_ECANCELED when stopping left it unrun. */
static inf_status share_one(struct share *s, const struct inf__req *q, struct inf_error *e)
{
    struct inf_jobs *j = s->j;
    char *resp = NULL, rid[80] = "";
    int status;
    for (int waits = 0;; waits++) {
        free(resp);
        resp = NULL;
        status = s->x->run(s->x->ctx, s->ep, q->body, strlen(q->body), &resp, rid, sizeof(rid));
        if (status != 503 || share_halted(s))
            break;
        usleep(waits < 20 ? 20000 : 100000); /* busy or preempted by live traffic */
    }
    if (status == 503) { /* stopping: left to whoever continues (the lease is reaped) */
        free(resp);
        return INF_ECANCELED;
    }
    char *line = inf_batch_output_line(s->batch_id, q->custom_id, status, rid, resp ? resp : "{}",
                                       NULL, NULL);
    free(resp);
    pthread_mutex_lock(&j->mu);
    inf_status rc = line
                        ? OPS(j)->out_put(j->s, s->batch_id, q->custom_id, q->line, status, line, e)
                        : inf_error_set(e, INF_ENOMEM, "out of memory");
    pthread_mutex_unlock(&j->mu);
    free(line);
    if (rc == INF_OK)
        atomic_fetch_add(&s->ran, 1);
    return rc;
}

static void *share_main(void *arg)
{
    struct share *s = arg;
    struct inf_jobs *j = s->j;
    while (!share_halted(s)) {
        struct inf__req *q = NULL;
        size_t n = 0;
        struct inf_error e = {0};
        int64_t t = now_ms();
        pthread_mutex_lock(&j->mu);
        inf_status rc =
            OPS(j)->req_claim(j->s, s->batch_id, j->owner, 1, t, t + REQ_LEASE_MS, &q, &n, &e);
        pthread_mutex_unlock(&j->mu);
        if (rc != INF_OK) {
            share_fail(s, rc, &e);
            break;
        }
        if (n == 0)
            break; /* nothing free: done, or every rest leased to someone */
        /* every request claimed is run (or, stopping, left to its lease) */
        for (size_t i = 0; i < n && rc == INF_OK; i++)
            rc = share_one(s, &q[i], &e);
        inf__req_free(q, n);
        if (rc == INF_ECANCELED)
            break;
        if (rc != INF_OK) {
            share_fail(s, rc, &e);
            break;
        }
    }
    atomic_fetch_sub(&s->live, 1);
    return NULL;
}

/* The batch's status and expiry (a fresh read of its object). */
static inf_status share_status(struct inf_jobs *j, const char *id, char *st, size_t n,
                               int64_t *expires, struct inf_error *err)
{
    char *text = NULL;
    pthread_mutex_lock(&j->mu);
    inf_status rc = OPS(j)->batch_get(j->s, id, &text, err);
    pthread_mutex_unlock(&j->mu);
    if (rc != INF_OK)
        return rc;
    json_t *o = json_loads(text, 0, NULL);
    free(text);
    if (!o)
        return inf_error_set(err, INF_EFORMAT, "batch '%s': its stored object is not JSON", id);
    const char *v = json_string_value(json_object_get(o, "status"));
    snprintf(st, n, "%s", v ? v : "");
    if (expires)
        *expires = json_integer_value(json_object_get(o, "expires_at"));
    json_decref(o);
    return INF_OK;
}

/* One round: exec->concurrency threads claim and run requests until none is free. */
static inf_status share_round(struct share *s, int64_t expires, struct inf_error *err)
{
    int nt = s->x->concurrency < 1 ? 1 : s->x->concurrency > 256 ? 256 : s->x->concurrency;
    pthread_t th[256];
    int started = 0;
    atomic_store(&s->live, nt);
    for (int i = 0; i < nt; i++)
        if (pthread_create(&th[i], NULL, share_main, s) == 0)
            started++;
        else
            atomic_fetch_sub(&s->live, 1);
    int64_t renewed = now_ms();
    while (atomic_load(&s->live) > 0) {
        usleep(100 * 1000);
        if (now_ms() - renewed >= REQ_RENEW_MS) {
            struct inf_error e1 = {0};
            renewed = now_ms();
            pthread_mutex_lock(&s->j->mu);
            if (OPS(s->j)->req_renew && OPS(s->j)->req_renew(s->j->s, s->batch_id, s->j->owner,
                                                             renewed + REQ_LEASE_MS, &e1) != INF_OK)
                INF_LOG_WARN("jobs", "batch %s: renewing leases: %s", s->batch_id,
                             inf_error_message(&e1));
            pthread_mutex_unlock(&s->j->mu);
        }
        char st[32];
        struct inf_error e2 = {0};
        if (share_status(s->j, s->batch_id, st, sizeof(st), NULL, &e2) == INF_OK &&
            strcmp(st, "in_progress") != 0)
            atomic_store(&s->halt, true);
        if (now_s() >= expires)
            atomic_store(&s->halt, true);
    }
    for (int i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    if (s->rc != INF_OK) {
        *err = s->err;
        return s->rc;
    }
    return INF_OK;
}

inf_status inf__jobs_batch_share_run(struct inf_jobs *j, const char *batch_id,
                                     enum inf_batch_endpoint ep, const struct inf_jobs_exec *exec,
                                     atomic_bool *stop, bool owner, struct inf_error *err)
{
    struct share s = {.j = j, .x = exec, .batch_id = batch_id, .ep = ep, .stop = stop};
    pthread_mutex_init(&s.mu, NULL);
    char st[32];
    int64_t expires = 0;
    inf_status rc = share_status(j, batch_id, st, sizeof(st), &expires, err);
    while (rc == INF_OK && strcmp(st, "in_progress") == 0 && now_s() < expires) {
        if ((rc = share_round(&s, expires, err)) != INF_OK || share_halted(&s) || !owner)
            break;
        /* the owner waits for the requests others hold, and takes over those of the dead */
        struct inf__req *left = NULL;
        size_t n_left = 0;
        pthread_mutex_lock(&j->mu);
        rc = OPS(j)->req_pending(j->s, batch_id, &left, &n_left, err);
        if (rc == INF_OK && n_left)
            rc = OPS(j)->req_reap(j->s, batch_id, inf__jobs_owner_dead, j, err);
        pthread_mutex_unlock(&j->mu);
        inf__req_free(left, n_left);
        if (rc != INF_OK || n_left == 0)
            break;
        for (int t = 0; t < 500 && !share_halted(&s); t += 50)
            usleep(50 * 1000);
        if (rc == INF_OK)
            rc = share_status(j, batch_id, st, sizeof(st), &expires, err);
    }
    pthread_mutex_destroy(&s.mu);
    if (rc == INF_OK && stop && atomic_load(stop))
        return inf_error_set(err, INF_ECANCELED, "the worker is stopping");
    return rc;
}

bool inf__jobs_batch_help(struct inf_jobs *j, const struct inf_jobs_exec *exec, atomic_bool *stop)
{
    if (!OPS(j)->batch_to_help)
        return false;
    char id[64];
    struct inf_error err = {0};
    pthread_mutex_lock(&j->mu);
    inf_status rc = OPS(j)->batch_to_help(j->s, now_ms(), id, sizeof(id), &err);
    pthread_mutex_unlock(&j->mu);
    if (rc != INF_OK) {
        if (rc != INF_ENOTFOUND)
            INF_LOG_WARN("jobs", "looking for a batch to help: %s", inf_error_message(&err));
        return false;
    }
    char *text = NULL;
    pthread_mutex_lock(&j->mu);
    rc = OPS(j)->batch_get(j->s, id, &text, &err);
    pthread_mutex_unlock(&j->mu);
    json_t *o = rc == INF_OK ? json_loads(text, 0, NULL) : NULL;
    free(text);
    enum inf_batch_endpoint ep = INF_BATCH_CHAT;
    bool ok = o && inf_batch_endpoint_parse(json_string_value(json_object_get(o, "endpoint")), &ep);
    json_decref(o);
    if (!ok)
        return false;
    INF_LOG_INFO("jobs", "helping with batch %s", id);
    rc = inf__jobs_batch_share_run(j, id, ep, exec, stop, false, &err);
    if (rc != INF_OK && rc != INF_ECANCELED)
        INF_LOG_WARN("jobs", "batch %s: %s", id, inf_error_message(&err));
    return true;
}
