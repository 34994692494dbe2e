/*
 * test_jobs.c - src/jobs: cron expressions and next fire times against a hand-computed table
 * (UTC, America/New_York, Europe/Berlin, Asia/Kolkata, both DST transitions of 2026), the
 * batch-line parser, the store's leases (claim order, heartbeat and finish by the owner only,
 * an expired or dead owner's job retaken), idempotent outputs, retries with backoff and the
 * dead-letter state, a batch run to its end by the worker with a fake executor, and the time
 * to enqueue 10,000 jobs (printed, not asserted).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "inferno/jobs.h"
#include "jobs/internal.h"
#include "t.h"

static char root[256];

/* "YYYY-MM-DDTHH:MMZ" -> Unix seconds (timegm: independent of the code under test) */
static int64_t utc(const char *s)
{
    struct tm tm = {0};
    sscanf(s, "%d-%d-%dT%d:%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min);
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (int64_t)timegm(&tm);
}

static void test_cron_table(void)
{
    static const struct {
        const char *expr, *tz, *after, *next;
    } rows[] = {
        {"*/15 * * * *", "UTC", "2026-01-01T00:07Z", "2026-01-01T00:15Z"},
        {"*/15 * * * *", "UTC", "2026-01-01T00:15Z", "2026-01-01T00:30Z"}, /* strictly after */
        {"0 0 1 1 *", "UTC", "2026-06-01T00:00Z", "2027-01-01T00:00Z"},
        {"@hourly", "UTC", "2026-05-05T10:59Z", "2026-05-05T11:00Z"},
        {"@daily", "UTC", "2026-05-05T10:59Z", "2026-05-06T00:00Z"},
        {"@weekly", "UTC", "2026-12-06T08:00Z", "2026-12-13T00:00Z"}, /* Sunday -> Sunday */
        {"0 9 * * mon-fri", "UTC", "2026-03-27T10:00Z", "2026-03-30T09:00Z"},
        {"0 0 13 * 5", "UTC", "2026-02-01T00:00Z", "2026-02-06T00:00Z"}, /* 13th or Friday */
        {"0 0 29 2 *", "UTC", "2026-01-01T00:00Z", "2028-02-29T00:00Z"},
        {"5,10-12 3 * jan,dec 0-7/7", "UTC", "2026-12-06T03:11Z", "2026-12-06T03:12Z"},
        {"0 12 * * 7", "UTC", "2026-12-01T00:00Z", "2026-12-06T12:00Z"}, /* 7 = Sunday */
        /* America/New_York: EST (-5) until 2026-03-08 02:00 -> EDT (-4) until 2026-11-01 */
        {"0 9 * * *", "America/New_York", "2026-01-10T00:00Z", "2026-01-10T14:00Z"},
        {"0 9 * * *", "America/New_York", "2026-07-10T00:00Z", "2026-07-10T13:00Z"},
        {"30 2 * * *", "America/New_York", "2026-03-07T12:00Z", "2026-03-09T06:30Z"}, /* gap */
        {"30 1 * * *", "America/New_York", "2026-10-31T12:00Z", "2026-11-01T05:30Z"},
        {"30 1 * * *", "America/New_York", "2026-11-01T05:30Z", "2026-11-02T06:30Z"}, /* once */
        {"0 * * * *", "America/New_York", "2026-11-01T05:30Z", "2026-11-01T06:00Z"},  /* hourly */
        {"0 * * * *", "America/New_York", "2026-03-08T06:30Z", "2026-03-08T07:00Z"},
        /* Europe/Berlin: CET (+1) -> CEST (+2) on 2026-03-29 02:00, back on 2026-10-25 03:00 */
        {"30 2 * * *", "Europe/Berlin", "2026-03-28T12:00Z", "2026-03-30T00:30Z"},
        {"30 2 * * *", "Europe/Berlin", "2026-10-24T12:00Z", "2026-10-25T00:30Z"},
        {"30 2 * * *", "Europe/Berlin", "2026-10-25T00:30Z", "2026-10-26T01:30Z"},
        {"0 9 * * 1-5", "Europe/Berlin", "2026-03-27T10:00Z", "2026-03-30T07:00Z"},
        /* Asia/Kolkata: +5:30, no DST */
        {"0 9 * * *", "Asia/Kolkata", "2026-01-01T00:00Z", "2026-01-01T03:30Z"},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct inf_cron c;
        struct inf_error err = {0};
        int64_t next = 0;
        inf_status st = inf_cron_parse(rows[i].expr, &c, &err);
        if (st == INF_OK)
            st = inf_cron_next(&c, rows[i].tz, utc(rows[i].after), &next, &err);
        if (st != INF_OK || next != utc(rows[i].next))
            fprintf(stderr, "row %zu: '%s' %s after %s: got %lld (%s), want %s\n", i, rows[i].expr,
                    rows[i].tz, rows[i].after, (long long)next, inf_error_message(&err),
                    rows[i].next);
        T_EQ_INT(st, INF_OK);
        T_OK(next == utc(rows[i].next));
    }
    /* never, and an unknown zone */
    struct inf_cron c;
    int64_t next;
    struct inf_error err = {0};
    T_EQ_INT(inf_cron_parse("0 0 31 2 *", &c, &err), INF_OK);
    T_EQ_INT(inf_cron_next(&c, "UTC", utc("2026-01-01T00:00Z"), &next, &err), INF_ENOTFOUND);
    T_EQ_INT(inf_cron_parse("@daily", &c, &err), INF_OK);
    T_EQ_INT(inf_cron_next(&c, "Mars/Olympus", 0, &next, &err), INF_EINVAL);
    T_EQ_INT(inf_cron_next(&c, "../../etc/passwd", 0, &next, &err), INF_EINVAL);
    /* TZ of the process is left as it was */
    T_OK(getenv("TZ") == NULL);
}

static void test_cron_bad(void)
{
    static const char *const bad[] = {
        "",
        "* * * *",
        "* * * * * *",
        "60 * * * *",
        "* 24 * * *",
        "* * 0 * *",
        "* * 32 * *",
        "* * * 13 *",
        "* * * * 8",
        "5-1 * * * *",
        "*/0 * * * *",
        "*/61 * * * *",
        "1,,2 * * * *",
        ",1 * * * *",
        "a b c d e",
        "@every 5m",
        "1- * * * *",
        "* * * foo *",
        "1000 * * * *",
        "-1 * * * *",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct inf_cron c;
        struct inf_error err = {0};
        inf_status st = inf_cron_parse(bad[i], &c, &err);
        if (st != INF_EPARSE)
            fprintf(stderr, "'%s' was accepted\n", bad[i]);
        T_EQ_INT(st, INF_EPARSE);
        T_OK(strlen(inf_error_message(&err)) > 0);
    }
}

static void test_batch_line(void)
{
    struct inf_batch_line l;
    struct inf_error err = {0};
    const char *ok = "{\"custom_id\":\"a1\",\"method\":\"POST\",\"url\":\"/v1/completions\","
                     "\"body\":{\"model\":\"m\",\"prompt\":\"hi\"}}\r";
    T_EQ_INT(inf_batch_line_parse(ok, strlen(ok), &l, &err), INF_OK);
    T_EQ_STR(l.custom_id, "a1");
    T_EQ_INT(l.endpoint, INF_BATCH_COMPLETIONS);
    T_EQ_STR(l.model, "m");
    T_EQ_STR(l.body, "{\"model\":\"m\",\"prompt\":\"hi\"}");
    inf_batch_line_release(&l);
    static const struct {
        const char *line, *words;
    } bad[] = {
        {"not json", "not valid JSON"},
        {"[1,2]", "not a JSON object"},
        {"{\"custom_id\":\"a\",\"method\":\"POST\",\"url\":\"/v1/x\",\"body\":{}}", "unknown url"},
        {"{\"custom_id\":\"a\",\"method\":\"GET\",\"url\":\"/v1/completions\",\"body\":{}}",
         "method"},
        {"{\"custom_id\":\"\",\"method\":\"POST\",\"url\":\"/v1/completions\",\"body\":{}}",
         "custom_id"},
        {"{\"custom_id\":1,\"method\":\"POST\",\"url\":\"/v1/completions\",\"body\":{}}",
         "custom_id"},
        {"{\"custom_id\":\"a\",\"method\":\"POST\",\"url\":\"/v1/completions\",\"body\":[]}",
         "body"},
        {"{\"custom_id\":\"a\",\"method\":\"POST\",\"url\":\"/v1/completions\"}", "body"},
        {"{\"custom_id\":\"a\",\"custom_id\":\"b\",\"method\":\"POST\",\"url\":\"/v1/"
         "completions\",\"body\":{}}",
         "not valid JSON"},
        {"{\"custom_id\":\"a\",\"method\":\"POST\",\"url\":\"/v1/completions\",\"body\":{},"
         "\"extra\":1}",
         "unknown field 'extra'"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err = (struct inf_error){0};
        T_EQ_INT(inf_batch_line_parse(bad[i].line, strlen(bad[i].line), &l, &err), INF_EPARSE);
        T_CONTAINS(inf_error_message(&err), bad[i].words);
    }
    char big[600];
    memset(big, 'x', sizeof(big));
    char *line = NULL;
    if (asprintf(&line,
                 "{\"custom_id\":\"%.*s\",\"method\":\"POST\",\"url\":\"/v1/embeddings\","
                 "\"body\":{}}",
                 (int)sizeof(big), big) > 0) {
        T_EQ_INT(inf_batch_line_parse(line, strlen(line), &l, &err), INF_EPARSE);
        free(line);
    }
    /* output lines: the same id for the same request; custom_id read back */
    char *a = inf_batch_output_line("batch_1", "x", 200, "r1", "{\"k\":1}", NULL, NULL);
    char *b = inf_batch_output_line("batch_1", "x", 400, "r2", "{\"k\":2}", NULL, NULL);
    char *c = inf_batch_output_line("batch_2", "x", 0, NULL, NULL, "batch_cancelled", "gone");
    T_OK(a && b && c);
    T_OK(strncmp(a, b, 45) == 0); /* {"id":"batch_req_<24 hex>" */
    T_OK(strncmp(a, c, 45) != 0);
    T_CONTAINS(a, "\"response\":{\"status_code\":200,\"request_id\":\"r1\",\"body\":{\"k\":1}}");
    T_CONTAINS(c, "\"response\":null,\"error\":{\"code\":\"batch_cancelled\"");
    char *cid = inf_batch_output_custom_id(a, strlen(a));
    T_EQ_STR(cid, "x");
    free(cid);
    free(a);
    free(b);
    free(c);
}

/* ---- the store and the worker, with a fake executor ------------------------------------------ */

static struct inf_jobs *open_store(const char *name)
{
    char url[512], files[512];
    snprintf(url, sizeof(url), "sqlite:%s/%s/q.db", root, name);
    snprintf(files, sizeof(files), "%s/%s/files", root, name);
    struct inf_jobs_params p = {.url = url, .files_dir = files};
    struct inf_jobs *j = NULL;
    struct inf_error err = {0};
    if (inf_jobs_open(&p, &j, &err) != INF_OK)
        fprintf(stderr, "open: %s\n", inf_error_message(&err));
    return j;
}

static int fake_runs;

static bool fake_check(void *ctx, enum inf_batch_endpoint ep, const char *body, size_t len,
                       char *msg, size_t size)
{
    (void)ctx;
    (void)ep;
    (void)len;
    if (strstr(body, "\"bad\""))
        return snprintf(msg, size, "a bad body"), false;
    return true;
}

static int fake_run(void *ctx, enum inf_batch_endpoint ep, const char *body, size_t len,
                    char **resp, char *rid, size_t rid_size)
{
    (void)ctx;
    (void)ep;
    __atomic_add_fetch(&fake_runs, 1, __ATOMIC_SEQ_CST);
    snprintf(rid, rid_size, "fake");
    if (strstr(body, "\"fail\"")) {
        *resp = strdup("{\"error\":{\"message\":\"boom\"}}");
        return 500;
    }
    /* the answer echoes the body, so that the output can be checked against the input */
    *resp = malloc(len + 16);
    snprintf(*resp, len + 16, "{\"echo\":%.*s}", (int)len, body);
    return 200;
}

static struct inf_jobs_exec fake = {fake_check, fake_run, NULL, 4};

static void test_claims_and_leases(void)
{
    struct inf_jobs *j = open_store("lease");
    T_OK(j != NULL);
    if (!j)
        return;
    struct inf_error err = {0};
    struct inf_job_spec s[3] = {
        {.kind = INF_JOB_REQUEST, .payload = "a", .priority = 0, .max_attempts = 1},
        {.kind = INF_JOB_REQUEST, .payload = "b", .priority = 5, .max_attempts = 1},
        {.kind = INF_JOB_REQUEST,
         .payload = "c",
         .priority = 0,
         .max_attempts = 1,
         .not_before = now_s() + 3600},
    };
    int64_t ids[3];
    T_EQ_INT(inf_jobs_add_many(j, s, 3, ids, &err), INF_OK);
    struct inf_job x, y, z;
    int64_t t = now_s();
    /* highest priority first, then oldest; a job not due is not taken */
    T_EQ_INT(j->s->ops->job_claim(j->s, "w1", t, now_ms() + 60000, &x, &err), INF_OK);
    T_EQ_INT((int)x.id, (int)ids[1]);
    T_EQ_INT(j->s->ops->job_claim(j->s, "w2", t, now_ms() + 60000, &y, &err), INF_OK);
    T_EQ_INT((int)y.id, (int)ids[0]);
    T_EQ_INT(j->s->ops->job_claim(j->s, "w3", t, now_ms() + 60000, &z, &err), INF_ENOTFOUND);
    /* only the owner renews or finishes */
    T_EQ_INT(j->s->ops->job_heartbeat(j->s, x.id, "w2", now_ms() + 60000, &err), INF_ENOTFOUND);
    T_EQ_INT(j->s->ops->job_heartbeat(j->s, x.id, "w1", now_ms() + 60000, &err), INF_OK);
    /* an expired lease is retaken by another worker; the first owner then cannot finish */
    /* the claims below are judged at t, so the lease ends a second before t (not before the
       wall clock, which a slow run has carried past t) */
    T_EQ_INT(j->s->ops->job_heartbeat(j->s, y.id, "w2", t * 1000 - 1000, &err), INF_OK);
    T_EQ_INT(j->s->ops->job_claim(j->s, "w3", t, now_ms() + 60000, &z, &err), INF_OK);
    T_EQ_INT((int)z.id, (int)ids[0]);
    T_EQ_INT(j->s->ops->job_finish(j->s, y.id, "w2", "done", 0, 0, NULL, NULL, t, &err),
             INF_ENOTFOUND);
    T_EQ_INT(j->s->ops->job_finish(j->s, z.id, "w3", "done", 0, 0, NULL, "r", t, &err), INF_OK);
    /* a dead owner on this host (no such process) loses its lease at the next reap */
    char host[64], dead[128];
    gethostname(host, sizeof(host));
    host[sizeof(host) - 1] = '\0';
    snprintf(dead, sizeof(dead), "%s:%d:abc", host, 4194303); /* above pid_max's default */
    T_EQ_INT(j->s->ops->job_finish(j->s, x.id, "w1", "queued", 0, 0, NULL, NULL, t, &err), INF_OK);
    inf_job_release(&x);
    T_EQ_INT(j->s->ops->job_claim(j->s, dead, t, now_ms() + 600000, &x, &err), INF_OK);
    inf_job_release(&x);
    inf_job_release(&y);
    inf_job_release(&z);
    /* the worker (once) reaps it and runs it: payload "b" is not a batch line -> a failure,
       max_attempts 1 -> dead */
    atomic_bool stop = false;
    struct inf_jobs_worker_params wp = {.exec = &fake, .once = true, .stop = &stop};
    T_EQ_INT(inf_jobs_worker_run(j, &wp, &err), INF_OK);
    struct inf_job g;
    T_EQ_INT(inf_jobs_get(j, ids[1], &g, &err), INF_OK);
    T_EQ_STR(g.state, "dead");
    T_OK(g.last_error != NULL);
    inf_job_release(&g);
    /* retry puts it back with its attempts reset; cancel takes it off; purge removes it */
    T_EQ_INT(inf_jobs_retry(j, ids[1], &err), INF_OK);
    T_EQ_INT(inf_jobs_get(j, ids[1], &g, &err), INF_OK);
    T_EQ_STR(g.state, "queued");
    T_EQ_INT(g.attempts, 0);
    inf_job_release(&g);
    T_EQ_INT(inf_jobs_cancel(j, ids[1], &err), INF_OK);
    T_EQ_INT(inf_jobs_cancel(j, ids[1], &err), INF_EINVAL);
    int64_t n = 0;
    T_EQ_INT(inf_jobs_purge(j, now_s() + 1, &n, &err), INF_OK);
    T_EQ_INT((int)n, 2); /* the done one and the cancelled one */
    inf_jobs_close(j);
}

static void test_retry_backoff_dead(void)
{
    struct inf_jobs *j = open_store("retry");
    if (!j)
        return;
    struct inf_error err = {0};
    const char *fail = "{\"custom_id\":\"f\",\"method\":\"POST\",\"url\":\"/v1/completions\","
                       "\"body\":{\"prompt\":\"fail\"}}";
    const char *good = "{\"custom_id\":\"g\",\"method\":\"POST\",\"url\":\"/v1/completions\","
                       "\"body\":{\"prompt\":\"hi\"}}";
    struct inf_job_spec s[2] = {{.kind = INF_JOB_REQUEST, .payload = fail, .max_attempts = 3},
                                {.kind = INF_JOB_REQUEST, .payload = good, .max_attempts = 3}};
    int64_t ids[2];
    T_EQ_INT(inf_jobs_add_many(j, s, 2, ids, &err), INF_OK);
    atomic_bool stop = false;
    struct inf_jobs_worker_params wp = {.exec = &fake, .once = true, .stop = &stop, .backoff_s = 1};
    int64_t t0 = now_s();
    T_EQ_INT(inf_jobs_worker_run(j, &wp, &err), INF_OK);
    struct inf_job g;
    T_EQ_INT(inf_jobs_get(j, ids[1], &g, &err), INF_OK);
    T_EQ_STR(g.state, "done");
    T_CONTAINS(g.result ? g.result : "", "\"echo\":{\"prompt\":\"hi\"}");
    inf_job_release(&g);
    /* the failing one: queued again with a backoff of 1 s, then 2 s, then dead */
    T_EQ_INT(inf_jobs_get(j, ids[0], &g, &err), INF_OK);
    T_EQ_STR(g.state, "queued");
    T_EQ_INT(g.attempts, 1);
    T_OK(g.not_before >= t0 + 1 && g.not_before <= now_s() + 1);
    inf_job_release(&g);
    for (int k = 0; k < 60; k++) { /* at most ~4 s of backoff in all */
        T_EQ_INT(inf_jobs_worker_run(j, &wp, &err), INF_OK);
        T_EQ_INT(inf_jobs_get(j, ids[0], &g, &err), INF_OK);
        bool dead = strcmp(g.state, "dead") == 0;
        int attempts = g.attempts;
        int64_t nb = g.not_before, up = g.updated_at;
        inf_job_release(&g);
        if (dead) {
            T_EQ_INT(attempts, 3);
            break;
        }
        if (attempts == 2)
            T_OK(nb - up >= 2 && nb - up <= 3); /* doubled */
        usleep(100 * 1000);
    }
    T_EQ_INT(inf_jobs_get(j, ids[0], &g, &err), INF_OK);
    T_EQ_STR(g.state, "dead");
    inf_job_release(&g);
    inf_jobs_close(j);
}

static void test_batch_idempotent(void)
{
    struct inf_jobs *j = open_store("batch");
    if (!j)
        return;
    struct inf_error err = {0};
    char *text = NULL;
    size_t len = 0, cap = 0;
    enum { N = 50 };
    for (int i = 0; i < N; i++) {
        char line[256];
        int n = snprintf(line, sizeof(line),
                         "{\"custom_id\":\"q%d\",\"method\":\"POST\",\"url\":\"/v1/completions\","
                         "\"body\":{\"prompt\":\"p%d\"}}\n",
                         i, i);
        if (len + (size_t)n + 1 > cap) {
            cap = (len + (size_t)n + 1) * 2;
            text = realloc(text, cap);
        }
        memcpy(text + len, line, (size_t)n + 1);
        len += (size_t)n;
    }
    struct inf_jobs_file f;
    T_EQ_INT(inf_jobs_file_create(j, "in.jsonl", "batch", text, len, &f, &err), INF_OK);
    free(text);
    char *obj = NULL;
    T_EQ_INT(inf_jobs_batch_create(j, f.id, "/v1/completions", "24h", NULL, 0, &obj, &err), INF_OK);
    char id[64] = "";
    const char *p = obj ? strstr(obj, "\"id\":\"") : NULL;
    if (p)
        sscanf(p + 6, "%63[^\"]", id);
    free(obj);
    /* validate, then pretend an earlier worker wrote two outputs before it died: those stay,
       once, and the rest run */
    atomic_bool stop = false;
    T_EQ_INT(j->s->ops->out_put(j->s, id, "q3", 4, 200, "{\"custom_id\":\"q3\",\"first\":1}", &err),
             INF_OK);
    T_EQ_INT(
        j->s->ops->out_put(j->s, id, "q3", 4, 200, "{\"custom_id\":\"q3\",\"second\":1}", &err),
        INF_OK);
    fake_runs = 0;
    T_EQ_INT(inf_jobs_batch_process(j, id, &fake, &stop, &err), INF_OK);
    T_EQ_INT(fake_runs, N - 1);
    char *b = NULL;
    T_EQ_INT(inf_jobs_batch_get(j, id, &b, &err), INF_OK);
    T_CONTAINS(b ? b : "", "\"status\":\"completed\"");
    T_CONTAINS(b ? b : "", "\"request_counts\":{\"total\":50,\"completed\":50,\"failed\":0}");
    char out_id[64] = "";
    p = b ? strstr(b, "\"output_file_id\":\"") : NULL;
    if (p)
        sscanf(p + 18, "%63[^\"]", out_id);
    free(b);
    char *data = NULL;
    size_t n = 0;
    T_EQ_INT(inf_jobs_file_content(j, out_id, &data, &n, &err), INF_OK);
    int lines = 0, firsts = 0;
    for (size_t i = 0; data && i < n; i++)
        lines += data[i] == '\n';
    for (const char *q = data; q && (q = strstr(q, "\"first\":1")); q++)
        firsts++;
    T_EQ_INT(lines, N);
    T_EQ_INT(firsts, 1);
    T_OK(data && !strstr(data, "\"second\""));
    /* in line order: q0 first, q49 last */
    T_OK(data && strstr(data, "\"custom_id\":\"q0\"") < strstr(data, "\"custom_id\":\"q49\""));
    free(data);
    /* processing again changes nothing (finished) */
    fake_runs = 0;
    T_EQ_INT(inf_jobs_batch_process(j, id, &fake, &stop, &err), INF_OK);
    T_EQ_INT(fake_runs, 0);

    /* a batch past its expires_at: nothing runs, every request gets a batch_expired line */
    T_EQ_INT(inf_jobs_batch_create(j, f.id, "/v1/completions", "24h", NULL, 0, &obj, &err), INF_OK);
    char id2[64] = "";
    p = obj ? strstr(obj, "\"id\":\"") : NULL;
    if (p)
        sscanf(p + 6, "%63[^\"]", id2);
    char *old = obj;
    char *at = old ? strstr(old, "\"expires_at\":") : NULL;
    if (at) { /* rewrite the stored object with expires_at in the past */
        char *fixed = NULL;
        char *end = at + strlen("\"expires_at\":");
        while (*end >= '0' && *end <= '9')
            end++;
        if (asprintf(&fixed, "%.*s\"expires_at\":1%s", (int)(at - old), old, end) > 0) {
            T_EQ_INT(j->s->ops->batch_put(j->s, id2, "validating", fixed, &err), INF_OK);
            free(fixed);
        }
    }
    free(obj);
    fake_runs = 0;
    T_EQ_INT(inf_jobs_batch_process(j, id2, &fake, &stop, &err), INF_OK);
    T_EQ_INT(fake_runs, 0);
    T_EQ_INT(inf_jobs_batch_get(j, id2, &b, &err), INF_OK);
    T_CONTAINS(b ? b : "", "\"status\":\"expired\"");
    T_CONTAINS(b ? b : "", "\"request_counts\":{\"total\":50,\"completed\":0,\"failed\":50}");
    char err_id[64] = "";
    p = b ? strstr(b, "\"error_file_id\":\"") : NULL;
    if (p)
        sscanf(p + 17, "%63[^\"]", err_id);
    free(b);
    T_EQ_INT(inf_jobs_file_content(j, err_id, &data, &n, &err), INF_OK);
    lines = 0;
    for (size_t i = 0; data && i < n; i++)
        lines += data[i] == '\n';
    T_EQ_INT(lines, N);
    T_CONTAINS(data ? data : "", "\"code\":\"batch_expired\"");
    free(data);
    inf_jobs_close(j);
}

static void test_enqueue_10000(void)
{
    struct inf_jobs *j = open_store("many");
    if (!j)
        return;
    enum { N = 10000 };
    struct inf_job_spec *s = calloc(N, sizeof(*s));
    if (!s)
        return;
    for (int i = 0; i < N; i++)
        s[i] = (struct inf_job_spec){.kind = INF_JOB_REQUEST,
                                     .payload = "{\"custom_id\":\"x\",\"method\":\"POST\","
                                                "\"url\":\"/v1/completions\",\"body\":{}}",
                                     .max_attempts = 3};
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    struct inf_error err = {0};
    T_EQ_INT(inf_jobs_add_many(j, s, N, NULL, &err), INF_OK);
    clock_gettime(CLOCK_MONOTONIC, &b);
    double ms = (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6;
    printf("enqueue of %d jobs: %.1f ms\n", N, ms);
    struct inf_job *v = NULL;
    size_t n = 0;
    T_EQ_INT(inf_jobs_list(j, "queued", 20000, &v, &n, &err), INF_OK);
    T_EQ_INT((int)n, N);
    for (size_t i = 0; i < n; i++)
        inf_job_release(&v[i]);
    free(v);
    free(s);
    inf_jobs_close(j);
}

static void test_schedules(void)
{
    struct inf_jobs *j = open_store("sched");
    if (!j)
        return;
    struct inf_error err = {0};
    char path[400];
    snprintf(path, sizeof(path), "%s/sched/in.jsonl", root);
    FILE *f = fopen(path, "w");
    if (!f)
        return;
    fputs("{\"custom_id\":\"a\",\"method\":\"POST\",\"url\":\"/v1/completions\",\"body\":{}}\n", f);
    fclose(f);
    struct inf_schedule s = {0};
    snprintf(s.expr, sizeof(s.expr), "@hourly");
    snprintf(s.tz, sizeof(s.tz), "UTC");
    snprintf(s.batch_path, sizeof(s.batch_path), "%s", path);
    snprintf(s.endpoint, sizeof(s.endpoint), "/v1/completions");
    s.catch_up = true;
    int64_t id1 = 0, id2 = 0;
    T_EQ_INT(inf_jobs_schedule_add(j, &s, &id1, &err), INF_OK);
    s.catch_up = false;
    T_EQ_INT(inf_jobs_schedule_add(j, &s, &id2, &err), INF_OK);
    snprintf(s.expr, sizeof(s.expr), "61 * * * *");
    T_EQ_INT(inf_jobs_schedule_add(j, &s, NULL, &err), INF_EPARSE);
    struct inf_schedule *v = NULL;
    size_t n = 0;
    T_EQ_INT(inf_jobs_schedule_list(j, &v, &n, &err), INF_OK);
    T_EQ_INT((int)n, 2);
    int64_t next = n ? v[0].next_run : 0;
    free(v);
    T_OK(next > now_s() && next <= now_s() + 3600 && next % 3600 == 0);
    /* on time: both fire, once, though two workers (two handles on the store) tick */
    int fired = 0, fired2 = 0;
    struct inf_jobs *j2 = open_store("sched");
    T_EQ_INT(inf_jobs_schedule_tick(j, next, &fired, &err), INF_OK);
    T_EQ_INT(inf_jobs_schedule_tick(j2, next, &fired2, &err), INF_OK);
    T_EQ_INT(fired + fired2, 2);
    inf_jobs_close(j2);
    /* three hours late (missed while down): only the catch-up one */
    T_EQ_INT(inf_jobs_schedule_tick(j, next + 3 * 3600, &fired, &err), INF_OK);
    T_EQ_INT(fired, 1);
    /* paused: nothing; removed: gone */
    T_EQ_INT(inf_jobs_schedule_pause(j, id1, true, &err), INF_OK);
    T_EQ_INT(inf_jobs_schedule_tick(j, next + 10 * 3600, &fired, &err), INF_OK);
    T_EQ_INT(fired, 0); /* id2 skips the missed run too */
    T_EQ_INT(inf_jobs_schedule_remove(j, id2, &err), INF_OK);
    T_EQ_INT(inf_jobs_schedule_remove(j, id2, &err), INF_ENOTFOUND);
    struct inf_job *jobs = NULL;
    T_EQ_INT(inf_jobs_list(j, NULL, 100, &jobs, &n, &err), INF_OK);
    T_EQ_INT((int)n, 3); /* one batch job per run fired */
    for (size_t i = 0; i < n; i++)
        inf_job_release(&jobs[i]);
    free(jobs);
    inf_jobs_close(j);
}

int main(void)
{
    snprintf(root, sizeof(root), "/tmp/inferno-jobs-test-XXXXXX");
    if (!mkdtemp(root)) {
        perror("mkdtemp");
        return 1;
    }
    unsetenv("TZ");
    T_RUN(test_cron_table);
    T_RUN(test_cron_bad);
    T_RUN(test_batch_line);
    T_RUN(test_claims_and_leases);
    T_RUN(test_retry_backoff_dead);
    T_RUN(test_batch_idempotent);
    T_RUN(test_enqueue_10000);
    T_RUN(test_schedules);
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", root);
    T_DONE();
}
