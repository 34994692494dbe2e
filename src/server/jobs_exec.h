/*
 * server/jobs_exec.h - batch work in the server (jobs_exec.c): the executor that runs a batch
 * line through the same handler as the live endpoint, at the engine's background priority; the
 * in-process queue worker of `inferno serve`; a server without sockets for the CLI's batch
 * runner and queue worker. Internal to src/server (and src/cli).
 */
#ifndef INFERNO_SERVER_JOBS_EXEC_H
#define INFERNO_SERVER_JOBS_EXEC_H

#include "inferno/jobs.h"
#include "server/http.h"

/* The executor over server s (a listening one, or srv_offline_new's). */
void srv_jobs_exec_init(struct http_server *s, int concurrency, struct inf_jobs_exec *out);

struct srv_jobs_params {
    int workers;     /* jobs run at once (queue.max_concurrent) */
    int concurrency; /* requests of a batch in flight at once */
    int lease_ms, poll_ms;
    double backoff_s;
};
struct srv_jobs;
/* Start the queue worker threads over s; NULL when out of memory. */
struct srv_jobs *srv_jobs_start(struct http_server *s, struct inf_jobs *jobs,
                                const struct srv_jobs_params *p);
/* Stop them: a running job is left where it is (retaken by the next worker). */
void srv_jobs_stop(struct srv_jobs *w);

/* A server that only runs handlers (no daemon, no sockets): p->models must be set. */
struct http_server *srv_offline_new(const struct http_server_params *p);
void srv_offline_free(struct http_server *s);

/* inf_jobs_params.on_event for the audit log (ctx: a struct srv_audit, or NULL). */
void srv_jobs_audit_event(void *ctx, const char *json, size_t len);

#endif
