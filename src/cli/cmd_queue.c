/*
 * cmd_queue.c - `inferno queue`: the durable job queue and its schedules (inferno/jobs.h).
 *   add (--batch FILE | --request LINE | --requests FILE) [--priority N] [--max-attempts N]
 *       [--not-before T]
 *   list [--state S] [--json] | show ID | cancel ID | retry ID | purge [--older-than S]
 *   worker -m MODEL [--once]
 *   schedule add EXPR --batch FILE [--tz ZONE] [--skip-missed] | list | rm ID | pause ID |
 *            resume ID
 */
#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "core/buf.h"
#include "core/files.h"
#include "inferno/audit.h"
#include "inferno/jobs.h"
#include "server/audit_hook.h"
#include "server/jobs_exec.h"

const struct inf_cli_opt inf_cmd_queue_opts[] = {
    {"batch", 0, INF_OPT_VALUE, "FILE", "add: a batch file (JSON lines) as one job", NULL},
    {"request", 0, INF_OPT_VALUE, "LINE", "add: one request (a batch line) as a job", NULL},
    {"requests", 0, INF_OPT_VALUE, "FILE", "add: each line of FILE as a job of its own", NULL},
    {"model", 'm', INF_OPT_LIST, "MODEL",
     "add: the model for lines without one; worker: the models to load", NULL},
    {"priority", 0, INF_OPT_VALUE, "N", "add: higher runs first (default 0)", NULL},
    {"max-attempts", 0, INF_OPT_VALUE, "N",
     "add: tries before the job is dead (default 1 + "
     "queue.max_retries)",
     NULL},
    {"not-before", 0, INF_OPT_VALUE, "T", "add: not before Unix time T, or +N seconds from now",
     NULL},
    {"state", 0, INF_OPT_VALUE, "S", "list: queued, running, done, dead, cancelled", NULL},
    {"json", 0, INF_OPT_FLAG, NULL, "list/show: JSON", NULL},
    {"older-than", 0, INF_OPT_VALUE, "S", "purge: finished more than S seconds ago (default 0)",
     NULL},
    {"once", 0, INF_OPT_FLAG, NULL, "worker: exit when no job is ready", NULL},
    {"tz", 0, INF_OPT_VALUE, "ZONE", "schedule add: IANA time zone (default UTC)", NULL},
    {"skip-missed", 0, INF_OPT_FLAG, NULL,
     "schedule add: skip runs missed while down (default: run once at start)", NULL},
    {"parallel", 0, INF_OPT_VALUE, "N", "worker: slots sharing the context", "server.parallel"},
    {"ctx", 'c', INF_OPT_VALUE, "N", "worker: total context", "backend.context_size"},
    {"threads", 't', INF_OPT_VALUE, "N", "worker: inference threads", "backend.threads"},
    {NULL, 0, 0, NULL, NULL, NULL},
};

int inf_cli_jobs_open(struct inf_cli *cli, void (*on_event)(void *, const char *, size_t),
                      void *event_ctx, struct inf_jobs **out)
{
    const struct inf_config *cfg = cli->config;
    const char *url = inf_config_get_str(cfg, "queue.url");
    char buf[4200];
    if (!url || !*url) {
        snprintf(buf, sizeof(buf), "sqlite:%s", inf_config_get_str(cfg, "queue.path"));
        url = buf;
    }
    struct inf_jobs_params p = {
        .url = url,
        .files_dir = inf_config_get_str(cfg, "files.dir"),
        .on_event = on_event,
        .event_ctx = event_ctx,
    };
    struct inf_error err = {0};
    if (inf_jobs_open(&p, out, &err) != INF_OK) {
        inf_cli_errorf(cli, "%s", inf_error_message(&err));
        return INF_EXIT_FAIL;
    }
    return INF_EXIT_OK;
}

static bool parse_id(struct inf_cli *cli, const struct inf_cli_args *a, int pos, int64_t *id)
{
    if (a->n_positional <= pos) {
        inf_cli_errorf(cli, "give the job or schedule id");
        return false;
    }
    char *end;
    long long v = strtoll(a->positional[pos], &end, 10);
    if (*end || v <= 0) {
        inf_cli_errorf(cli, "'%s' is not an id", a->positional[pos]);
        return false;
    }
    *id = v;
    return true;
}

/* A batch file with body.model filled in where it is missing (model NULL: as it is). */
static char *with_model(const char *data, size_t len, const char *model, size_t *out_len,
                        const char **endpoint)
{
    char *out = NULL;
    size_t n = 0, cap = 0;
    *endpoint = NULL;
    for (size_t pos = 0; pos < len;) {
        const char *p = data + pos;
        const char *nl = memchr(p, '\n', len - pos);
        size_t ll = nl ? (size_t)(nl - p) : len - pos;
        pos += ll + (nl ? 1 : 0);
        json_t *j = json_loadb(p, ll, 0, NULL);
        json_t *body = json_object_get(j, "body");
        if (!*endpoint && json_is_string(json_object_get(j, "url"))) {
            enum inf_batch_endpoint ep;
            if (inf_batch_endpoint_parse(json_string_value(json_object_get(j, "url")), &ep))
                *endpoint = inf_batch_endpoint_path(ep);
        }
        char *line = NULL;
        if (model && json_is_object(body) && !json_object_get(body, "model")) {
            json_object_set_new(body, "model", json_string(model));
            line = json_dumps(j, JSON_COMPACT);
        }
        json_decref(j);
        bool ok = line ? inf__append(&out, &n, &cap, line, strlen(line), 4096)
                       : inf__append(&out, &n, &cap, p, ll, 4096);
        free(line);
        if (!ok || !inf__append(&out, &n, &cap, "\n", 1, 4096)) {
            free(out);
            return NULL;
        }
    }
    *out_len = n;
    return out ? out : strdup("");
}

static char *read_all(struct inf_cli *cli, const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        inf_cli_errorf(cli, "cannot open '%s': %s", path, strerror(errno));
        return NULL;
    }
    char *d = inf__read_stream(f, (size_t)INF_JOBS_MAX_FILE_BYTES, len);
    fclose(f);
    if (!d)
        inf_cli_errorf(cli, "cannot read '%s': %s", path, strerror(errno));
    return d;
}

static int queue_add(struct inf_cli *cli, struct inf_cli_args *args, struct inf_jobs *j)
{
    long long prio = 0, attempts = inf_config_get_int(cli->config, "queue.max_retries") + 1;
    if ((inf_cli_has(args, "priority") &&
         !inf_cli_int(cli, args, "priority", -1000000, 1000000, &prio)) ||
        (inf_cli_has(args, "max-attempts") &&
         !inf_cli_int(cli, args, "max-attempts", 1, 1000, &attempts)))
        return INF_EXIT_USAGE;
    int64_t not_before = 0;
    const char *nb = inf_cli_value(args, "not-before");
    if (nb) {
        char *end;
        long long v = strtoll(nb + (*nb == '+'), &end, 10);
        if (*end || v < 0) {
            inf_cli_errorf(cli, "--not-before expects Unix seconds or +SECONDS, got '%s'", nb);
            return INF_EXIT_USAGE;
        }
        not_before = *nb == '+' ? (int64_t)time(NULL) + v : v;
    }
    int n_models = 0;
    const char *const *models = inf_cli_values(args, "model", &n_models);
    const char *model = n_models ? models[0] : NULL;
    struct inf_error err = {0};
    struct inf_job_spec spec = {
        .priority = (int)prio, .max_attempts = (int)attempts, .not_before = not_before};
    const char *batch = inf_cli_value(args, "batch"), *req = inf_cli_value(args, "request");
    const char *reqs = inf_cli_value(args, "requests");
    if (!!batch + !!req + !!reqs != 1) {
        inf_cli_errorf(cli, "give one of --batch FILE, --request LINE, --requests FILE");
        return INF_EXIT_USAGE;
    }
    if (batch) {
        size_t len = 0, n = 0;
        char *d = read_all(cli, batch, &len);
        if (!d)
            return INF_EXIT_FAIL;
        const char *ep = NULL;
        char *data = with_model(d, len, model, &n, &ep);
        free(d);
        struct inf_jobs_file f;
        char *obj = NULL;
        const char *base = strrchr(batch, '/');
        inf_status st =
            data ? inf_jobs_file_create(j, base ? base + 1 : batch, "batch", data, n, &f, &err)
                 : inf_error_set(&err, INF_ENOMEM, "out of memory");
        free(data);
        if (st == INF_OK)
            st = inf_jobs_batch_create(j, f.id, ep ? ep : "/v1/chat/completions", "24h", NULL,
                                       (int)prio, &obj, &err);
        if (st != INF_OK) {
            inf_cli_errorf(cli, "%s", inf_error_message(&err));
            return INF_EXIT_FAIL;
        }
        json_t *o = json_loads(obj, 0, NULL);
        printf("%s\n", json_string_value(json_object_get(o, "id")));
        json_decref(o);
        free(obj);
        return INF_EXIT_OK;
    }
    if (req) {
        struct inf_batch_line bl;
        if (inf_batch_line_parse(req, strlen(req), &bl, &err) != INF_OK) {
            inf_cli_errorf(cli, "--request: %s", inf_error_message(&err));
            return INF_EXIT_USAGE;
        }
        inf_batch_line_release(&bl);
        spec.kind = INF_JOB_REQUEST;
        spec.payload = req;
        int64_t id = 0;
        if (inf_jobs_add(j, &spec, &id, &err) != INF_OK) {
            inf_cli_errorf(cli, "%s", inf_error_message(&err));
            return INF_EXIT_FAIL;
        }
        printf("%lld\n", (long long)id);
        return INF_EXIT_OK;
    }
    /* --requests: one job per line, in one transaction */
    size_t len = 0;
    char *d = read_all(cli, reqs, &len);
    if (!d)
        return INF_EXIT_FAIL;
    struct inf_job_spec *v = NULL;
    size_t n = 0, cap = 0;
    int rc = INF_EXIT_FAIL;
    long long line = 0;
    for (size_t pos = 0; pos < len;) {
        char *p = d + pos;
        char *nl = memchr(p, '\n', len - pos);
        size_t ll = nl ? (size_t)(nl - p) : len - pos;
        pos += ll + (nl ? 1 : 0);
        line++;
        if (ll == 0)
            continue;
        p[ll] = '\0';
        struct inf_batch_line bl;
        if (inf_batch_line_parse(p, ll, &bl, &err) != INF_OK) {
            inf_cli_errorf(cli, "%s:%lld: %s", reqs, line, inf_error_message(&err));
            goto out;
        }
        inf_batch_line_release(&bl);
        if (!inf__grow(&v, &cap, n + 1, sizeof(*v), 1024))
            goto out;
        v[n] = spec;
        v[n].kind = INF_JOB_REQUEST;
        v[n++].payload = p;
    }
    if (inf_jobs_add_many(j, v, n, NULL, &err) != INF_OK) {
        inf_cli_errorf(cli, "%s", inf_error_message(&err));
        goto out;
    }
    printf("%zu jobs added\n", n);
    rc = INF_EXIT_OK;
out:
    free(v);
    free(d);
    return rc;
}

static json_t *job_json(const struct inf_job *x)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_integer(x->id));
    json_object_set_new(o, "kind", json_string(x->kind == INF_JOB_BATCH ? "batch" : "request"));
    json_object_set_new(o, "state", json_string(x->state));
    json_object_set_new(o, "priority", json_integer(x->priority));
    json_object_set_new(o, "attempts", json_integer(x->attempts));
    json_object_set_new(o, "max_attempts", json_integer(x->max_attempts));
    json_object_set_new(o, "not_before", json_integer(x->not_before));
    json_object_set_new(o, "created_at", json_integer(x->created_at));
    json_object_set_new(o, "updated_at", json_integer(x->updated_at));
    json_object_set_new(o, "ref", json_string(x->ref));
    json_object_set_new(o, "owner", json_string(x->owner));
    json_object_set_new(o, "last_error", x->last_error ? json_string(x->last_error) : json_null());
    json_t *res = x->result ? json_loads(x->result, 0, NULL) : NULL;
    json_object_set_new(o, "result", res ? res : json_null());
    return o;
}

static atomic_bool worker_stop;
static void on_stop(int sig)
{
    (void)sig;
    atomic_store(&worker_stop, true);
}

static int queue_worker(struct inf_cli *cli, struct inf_cli_args *args, struct inf_jobs *j)
{
    struct srv_models *m = NULL;
    struct http_server *s = NULL;
    int rc = inf_cli_offline_server(cli, args, &m, &s);
    if (rc != INF_EXIT_OK)
        return rc;
    struct inf_jobs_exec x;
    int conc = (int)inf_config_get_int(cli->config, "queue.batch_concurrency");
    srv_jobs_exec_init(s, conc > 0 ? conc : (int)inf_config_get_int(cli->config, "server.parallel"),
                       &x);
    struct sigaction sa = {0};
    sa.sa_handler = on_stop;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    struct inf_jobs_worker_params wp = {
        .exec = &x,
        .lease_ms = (int)inf_config_get_int(cli->config, "queue.lease_seconds") * 1000,
        .once = inf_cli_has(args, "once"),
        .stop = &worker_stop,
    };
    struct inf_error err = {0};
    rc = INF_EXIT_OK;
    if (inf_jobs_worker_run(j, &wp, &err) != INF_OK) {
        inf_cli_errorf(cli, "%s", inf_error_message(&err));
        rc = INF_EXIT_FAIL;
    }
    srv_offline_free(s);
    srv_models_free(m, 0);
    return rc;
}

static int queue_schedule(struct inf_cli *cli, struct inf_cli_args *args, struct inf_jobs *j)
{
    const char *sub = args->n_positional > 1 ? args->positional[1] : "";
    struct inf_error err = {0};
    int64_t id = 0;
    if (strcmp(sub, "add") == 0) {
        const char *batch = inf_cli_value(args, "batch");
        if (args->n_positional != 3 || !batch) {
            inf_cli_errorf(cli, "usage: inferno queue schedule add \"EXPR\" --batch FILE "
                                "[-m MODEL] [--tz ZONE] [--skip-missed]");
            return INF_EXIT_USAGE;
        }
        struct inf_schedule sc = {0};
        snprintf(sc.expr, sizeof(sc.expr), "%s", args->positional[2]);
        snprintf(sc.tz, sizeof(sc.tz), "%s",
                 inf_cli_value(args, "tz") ? inf_cli_value(args, "tz") : "UTC");
        char *abs = realpath(batch, NULL);
        if (!abs) {
            inf_cli_errorf(cli, "cannot find '%s': %s", batch, strerror(errno));
            return INF_EXIT_FAIL;
        }
        snprintf(sc.batch_path, sizeof(sc.batch_path), "%s", abs);
        free(abs);
        size_t len = 0, n = 0;
        char *d = read_all(cli, sc.batch_path, &len);
        const char *ep = NULL;
        char *fixed = d ? with_model(d, len, NULL, &n, &ep) : NULL;
        free(d);
        free(fixed);
        snprintf(sc.endpoint, sizeof(sc.endpoint), "%s", ep ? ep : "/v1/chat/completions");
        sc.catch_up = !inf_cli_has(args, "skip-missed");
        if (inf_jobs_schedule_add(j, &sc, &id, &err) != INF_OK) {
            inf_cli_errorf(cli, "%s", inf_error_message(&err));
            return INF_EXIT_FAIL;
        }
        printf("%lld\n", (long long)id);
        return INF_EXIT_OK;
    }
    if (strcmp(sub, "list") == 0) {
        struct inf_schedule *v = NULL;
        size_t n = 0;
        if (inf_jobs_schedule_list(j, &v, &n, &err) != INF_OK) {
            inf_cli_errorf(cli, "%s", inf_error_message(&err));
            return INF_EXIT_FAIL;
        }
        for (size_t i = 0; i < n; i++) {
            char when[32] = "-";
            time_t t = (time_t)v[i].next_run;
            struct tm tm;
            if (gmtime_r(&t, &tm))
                strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
            printf("%lld\t%s\t%s\t%s\tnext %s\t%s%s\n", (long long)v[i].id, v[i].expr, v[i].tz,
                   v[i].batch_path, when, v[i].paused ? "paused" : "active",
                   v[i].catch_up ? "" : " skip-missed");
        }
        free(v);
        return INF_EXIT_OK;
    }
    if (strcmp(sub, "rm") == 0 || strcmp(sub, "pause") == 0 || strcmp(sub, "resume") == 0) {
        if (!parse_id(cli, args, 2, &id))
            return INF_EXIT_USAGE;
        inf_status st = strcmp(sub, "rm") == 0
                            ? inf_jobs_schedule_remove(j, id, &err)
                            : inf_jobs_schedule_pause(j, id, strcmp(sub, "pause") == 0, &err);
        if (st != INF_OK) {
            inf_cli_errorf(cli, "%s", inf_error_message(&err));
            return INF_EXIT_FAIL;
        }
        return INF_EXIT_OK;
    }
    inf_cli_errorf(cli, "unknown schedule subcommand '%s': add, list, rm, pause, resume", sub);
    return INF_EXIT_USAGE;
}

int inf_cmd_queue(struct inf_cli *cli, struct inf_cli_args *args)
{
    const char *sub = args->n_positional ? args->positional[0] : "";
    static const char *const subs[] = {"add",   "list",   "show",     "cancel", "retry",
                                       "purge", "worker", "schedule", NULL};
    bool known = false;
    for (const char *const *s = subs; *s; s++)
        known = known || strcmp(sub, *s) == 0;
    if (!known) {
        inf_cli_errorf(cli,
                       "unknown subcommand '%s': add, list, show, cancel, retry, purge, worker, "
                       "schedule",
                       sub);
        return INF_EXIT_USAGE;
    }
    /* with audit.enabled, job events (created, started, completed, ...) go to the audit log */
    struct srv_audit *audit = NULL;
    if (inf_config_get_bool(cli->config, "audit.enabled")) {
        struct inf_audit *log = NULL;
        if (inf_cli_audit_open(cli, &log) != INF_EXIT_OK)
            return INF_EXIT_FAIL;
        if (!(audit = srv_audit_new(log, false, false, NULL, 0))) {
            inf_audit_close(log);
            inf_cli_errorf(cli, "out of memory");
            return INF_EXIT_FAIL;
        }
    }
    struct inf_jobs *j = NULL;
    int rc = inf_cli_jobs_open(cli, audit ? srv_jobs_audit_event : NULL, audit, &j);
    if (rc != INF_EXIT_OK) {
        srv_audit_free(audit);
        return rc;
    }
    struct inf_error err = {0};
    int64_t id = 0;
    if (strcmp(sub, "add") == 0) {
        rc = queue_add(cli, args, j);
    } else if (strcmp(sub, "list") == 0) {
        struct inf_job *v = NULL;
        size_t n = 0;
        if (inf_jobs_list(j, inf_cli_value(args, "state"), 1000000, &v, &n, &err) != INF_OK) {
            inf_cli_errorf(cli, "%s", inf_error_message(&err));
            rc = INF_EXIT_FAIL;
        }
        bool js = inf_cli_has(args, "json");
        for (size_t i = 0; i < n; i++) {
            if (js) {
                json_t *o = job_json(&v[i]);
                char *s = json_dumps(o, JSON_COMPACT);
                printf("%s\n", s ? s : "{}");
                free(s);
                json_decref(o);
            } else {
                printf("%lld\t%s\t%s\tprio %d\tattempts %d/%d\t%s\n", (long long)v[i].id,
                       v[i].kind == INF_JOB_BATCH ? "batch" : "request", v[i].state, v[i].priority,
                       v[i].attempts, v[i].max_attempts, v[i].ref);
            }
            inf_job_release(&v[i]);
        }
        free(v);
    } else if (strcmp(sub, "show") == 0) {
        struct inf_job x;
        if (!parse_id(cli, args, 1, &id)) {
            rc = INF_EXIT_USAGE;
        } else if (inf_jobs_get(j, id, &x, &err) != INF_OK) {
            inf_cli_errorf(cli, "%s", inf_error_message(&err));
            rc = INF_EXIT_FAIL;
        } else {
            json_t *o = job_json(&x);
            char *s = json_dumps(o, JSON_INDENT(2));
            printf("%s\n", s ? s : "{}");
            free(s);
            json_decref(o);
            inf_job_release(&x);
        }
    } else if (strcmp(sub, "cancel") == 0 || strcmp(sub, "retry") == 0) {
        if (!parse_id(cli, args, 1, &id)) {
            rc = INF_EXIT_USAGE;
        } else if ((strcmp(sub, "cancel") == 0 ? inf_jobs_cancel(j, id, &err)
                                               : inf_jobs_retry(j, id, &err)) != INF_OK) {
            inf_cli_errorf(cli, "%s", inf_error_message(&err));
            rc = INF_EXIT_FAIL;
        }
    } else if (strcmp(sub, "purge") == 0) {
        long long older = 0;
        int64_t n = 0;
        if (inf_cli_has(args, "older-than") &&
            !inf_cli_int(cli, args, "older-than", 0, (long long)1 << 40, &older)) {
            rc = INF_EXIT_USAGE;
        } else if (inf_jobs_purge(j, (int64_t)time(NULL) - older + 1, &n, &err) != INF_OK) {
            inf_cli_errorf(cli, "%s", inf_error_message(&err));
            rc = INF_EXIT_FAIL;
        } else {
            printf("%lld jobs purged\n", (long long)n);
        }
    } else if (strcmp(sub, "worker") == 0) {
        rc = queue_worker(cli, args, j);
    } else {
        rc = queue_schedule(cli, args, j);
    }
    inf_jobs_close(j);
    srv_audit_free(audit); /* seals the log's head before main records the command */
    return rc;
}
