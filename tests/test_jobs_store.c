/*
 * test_jobs_store.c - one suite for every contract of src/jobs/store.h, run against both
 * backends: SQLite (a temporary file) and PostgreSQL (a throwaway cluster: initdb in a
 * temporary directory, a free port, its unix socket in that directory, started and stopped
 * here; run as `nobody` through runuser when this process is root, since initdb and postgres
 * refuse root). The PostgreSQL half is skipped, with a message, where its binaries are absent
 * (looked up under /usr/lib/postgresql/<version>/bin, or $INFERNO_PG_BIN).
 *
 * Contracts: begin/commit/rollback; files (metadata and contents), batches, requests and
 * outputs (first write wins; pending = no output yet); job claims (priority, age, not_before,
 * one owner), heartbeats and finishes by the owner only, lease expiry and retake in real time,
 * state changes from allowed states only, purge, reap of a dead owner; schedules; claims under
 * contention (8 workers with their own connections: no job run twice; claim latency p50/p99
 * printed, not asserted); a batch run through one handle and read through another (another
 * replica). PostgreSQL only: migrations by processes starting at once, a wake-up by NOTIFY,
 * and the store surviving a server restart.
 */
#include <arpa/inet.h>
#include <glob.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "inferno/jobs.h"
#include "jobs/internal.h"
#include "t.h"

static char root[256];
static int n_db; /* a fresh database per test */
static bool is_pg;

/* ---- a throwaway PostgreSQL cluster ------------------------------------------------------- */

static char pg_bin[512];
static char pg_dir[300];
static int pg_port;
static char pg_url[600];

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
    char c[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c, sizeof(c), fmt, ap);
    va_end(ap);
    return system(c);
}

static bool find_pg_bin(void)
{
    const char *e = getenv("INFERNO_PG_BIN");
    if (e && *e) {
        snprintf(pg_bin, sizeof(pg_bin), "%s", e);
    } else {
        glob_t g;
        if (glob("/usr/lib/postgresql/*/bin/initdb", 0, NULL, &g) != 0)
            return false;
        /* the last in sorted order: the newest version installed */
        snprintf(pg_bin, sizeof(pg_bin), "%s", g.gl_pathv[g.gl_pathc - 1]);
        globfree(&g);
        char *slash = strrchr(pg_bin, '/');
        *slash = '\0';
    }
    char p[600];
    snprintf(p, sizeof(p), "%s/pg_ctl", pg_bin);
    return access(p, X_OK) == 0;
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t n = sizeof(a);
    int port = 0;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &n) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

static const char *as_user(void)
{
    return geteuid() == 0 ? "runuser -u nobody -- " : "";
}

static int pg_ctl(const char *what)
{
    return sh("%s'%s/pg_ctl' -D '%s/data' -l '%s/log' -w -t 60 -o \"-p %d -k '%s' -c "
              "listen_addresses=127.0.0.1 -c fsync=off -c max_connections=60\" %s >/dev/null",
              as_user(), pg_bin, pg_dir, pg_dir, pg_port, pg_dir, what);
}

static bool pg_start(void)
{
    snprintf(pg_dir, sizeof(pg_dir), "/tmp/inferno-pg-XXXXXX");
    if (!mkdtemp(pg_dir))
        return false;
    if (geteuid() == 0 && sh("chown nobody '%s'", pg_dir) != 0)
        return false;
    if (sh("%s'%s/initdb' -D '%s/data' -U inferno --auth=trust -E UTF8 --no-sync >'%s/initdb.log' "
           "2>&1",
           as_user(), pg_bin, pg_dir, pg_dir) != 0) {
        fprintf(stderr, "initdb failed: see %s/initdb.log\n", pg_dir);
        return false;
    }
    pg_port = free_port();
    if (pg_ctl("start") != 0) {
        sh("cat '%s/log' >&2", pg_dir);
        return false;
    }
    snprintf(pg_url, sizeof(pg_url), "postgresql://inferno@127.0.0.1:%d/postgres", pg_port);
    return true;
}

static void pg_stop(void)
{
    if (!pg_dir[0])
        return;
    pg_ctl("-m immediate stop");
    sh("rm -rf '%s'", pg_dir);
}

/* A fresh database per test, so the suites do not see each other's rows. */
static const char *next_url(char *buf, size_t n)
{
    n_db++;
    if (!is_pg) {
        snprintf(buf, n, "sqlite:%s/db%d/q.db", root, n_db);
        return buf;
    }
    PGconn *c = PQconnectdb(pg_url);
    char sql[64];
    snprintf(sql, sizeof(sql), "CREATE DATABASE t%d", n_db);
    PQclear(PQexec(c, sql));
    PQfinish(c);
    snprintf(buf, n, "postgresql://inferno@127.0.0.1:%d/t%d", pg_port, n_db);
    return buf;
}

static struct inf_jobs *open_url(const char *url)
{
    char files[512];
    snprintf(files, sizeof(files), "%s/files%d", root, n_db);
    struct inf_jobs_params p = {.url = url, .files_dir = files};
    struct inf_jobs *j = NULL;
    struct inf_error err = {0};
    if (inf_jobs_open(&p, &j, &err) != INF_OK)
        fprintf(stderr, "open '%s': %s\n", url, inf_error_message(&err));
    return j;
}

static char url_buf[600];
static struct inf_jobs *open_fresh(void)
{
    return open_url(next_url(url_buf, sizeof(url_buf)));
}

#define S(j) ((j)->s)
#define O(j) ((j)->s->ops)

/* ---- the fake executor ---------------------------------------------------------------------- */

static int fake_runs;

static bool fake_check(void *ctx, enum inf_batch_endpoint ep, const char *body, size_t len,
                       char *msg, size_t size)
{
    (void)ctx, (void)ep, (void)body, (void)len, (void)msg, (void)size;
    return true;
}

static int fake_run(void *ctx, enum inf_batch_endpoint ep, const char *body, size_t len,
                    char **resp, char *rid, size_t rid_size)
{
    (void)ctx, (void)ep;
    __atomic_add_fetch(&fake_runs, 1, __ATOMIC_SEQ_CST);
    snprintf(rid, rid_size, "fake");
    *resp = malloc(len + 16);
    snprintf(*resp, len + 16, "{\"echo\":%.*s}", (int)len, body);
    return 200;
}

static struct inf_jobs_exec fake = {fake_check, fake_run, NULL, 4};

/* ---- the contracts ----------------------------------------------------------------------------
 */

static void test_files(void)
{
    struct inf_jobs *j = open_fresh();
    T_OK(j != NULL);
    if (!j)
        return;
    struct inf_error err = {0};
    /* contents with a NUL and high bytes: bytes in, the same bytes out */
    static const char data[] = "line one\n\0\xff\xfe binary\n";
    struct inf_jobs_file f[3];
    for (int i = 0; i < 3; i++)
        T_EQ_INT(inf_jobs_file_create(j, "in.jsonl", i == 1 ? "batch_output" : "batch", data,
                                      sizeof(data) - 1, &f[i], &err),
                 INF_OK);
    char *got = NULL;
    size_t len = 0;
    T_EQ_INT(inf_jobs_file_content(j, f[1].id, &got, &len, &err), INF_OK);
    T_EQ_INT((int)len, (int)sizeof(data) - 1);
    T_OK(got && memcmp(got, data, len) == 0);
    free(got);
    int fd = -1;
    T_EQ_INT(inf_jobs_file_open(j, f[2].id, &fd, &len, &err), INF_OK);
    char buf[64] = {0};
    T_EQ_INT((int)read(fd, buf, sizeof(buf)), (int)sizeof(data) - 1);
    T_OK(memcmp(buf, data, sizeof(data) - 1) == 0);
    close(fd);
    struct inf_jobs_file g;
    T_EQ_INT(inf_jobs_file_get(j, f[0].id, &g, &err), INF_OK);
    T_EQ_STR(g.filename, "in.jsonl");
    T_EQ_INT((int)g.bytes, (int)sizeof(data) - 1);
    /* newest first, paged with after, filtered by purpose */
    struct inf_jobs_file *v = NULL;
    size_t n = 0;
    bool more = false;
    T_EQ_INT(inf_jobs_file_list(j, NULL, NULL, 2, &v, &n, &more, &err), INF_OK);
    T_EQ_INT((int)n, 2);
    T_OK(more);
    T_EQ_STR(v[0].id, f[2].id);
    T_EQ_STR(v[1].id, f[1].id);
    free(v);
    T_EQ_INT(inf_jobs_file_list(j, NULL, f[1].id, 2, &v, &n, &more, &err), INF_OK);
    T_EQ_INT((int)n, 1);
    T_OK(!more);
    T_EQ_STR(v[0].id, f[0].id);
    free(v);
    T_EQ_INT(inf_jobs_file_list(j, "batch", NULL, 10, &v, &n, &more, &err), INF_OK);
    T_EQ_INT((int)n, 2);
    free(v);
    /* delete: gone, contents too; a second delete: not found */
    T_EQ_INT(inf_jobs_file_delete(j, f[0].id, &err), INF_OK);
    T_EQ_INT(inf_jobs_file_get(j, f[0].id, &g, &err), INF_ENOTFOUND);
    T_EQ_INT(inf_jobs_file_content(j, f[0].id, &got, &len, &err), INF_ENOTFOUND);
    T_EQ_INT(inf_jobs_file_delete(j, f[0].id, &err), INF_ENOTFOUND);
    /* an empty file */
    T_EQ_INT(inf_jobs_file_create(j, "e", "batch", "", 0, &g, &err), INF_OK);
    T_EQ_INT(inf_jobs_file_content(j, g.id, &got, &len, &err), INF_OK);
    T_EQ_INT((int)len, 0);
    free(got);
    inf_jobs_close(j);
}

static void test_tx_batches_outputs(void)
{
    struct inf_jobs *j = open_fresh();
    T_OK(j != NULL);
    if (!j)
        return;
    struct inf_error err = {0};
    /* rollback drops, commit keeps */
    T_EQ_INT(O(j)->begin(S(j), &err), INF_OK);
    T_EQ_INT(O(j)->batch_put(S(j), "batch_a", "validating", "{\"v\":1}", &err), INF_OK);
    O(j)->rollback(S(j));
    char *obj = NULL;
    T_EQ_INT(O(j)->batch_get(S(j), "batch_a", &obj, &err), INF_ENOTFOUND);
    T_EQ_INT(O(j)->begin(S(j), &err), INF_OK);
    T_EQ_INT(O(j)->batch_put(S(j), "batch_a", "validating", "{\"v\":1}", &err), INF_OK);
    T_EQ_INT(O(j)->commit(S(j), &err), INF_OK);
    T_EQ_INT(O(j)->batch_put(S(j), "batch_b", "validating", "{\"v\":2}", &err), INF_OK);
    T_EQ_INT(O(j)->batch_put(S(j), "batch_c", "validating", "{\"v\":3}", &err), INF_OK);
    /* an update keeps the batch's place in the list */
    T_EQ_INT(O(j)->batch_put(S(j), "batch_a", "in_progress", "{\"v\":4}", &err), INF_OK);
    T_EQ_INT(O(j)->batch_get(S(j), "batch_a", &obj, &err), INF_OK);
    T_EQ_STR(obj, "{\"v\":4}");
    free(obj);
    char **objs = NULL;
    size_t n = 0;
    bool more = false;
    T_EQ_INT(O(j)->batch_list(S(j), NULL, 2, &objs, &n, &more, &err), INF_OK);
    T_EQ_INT((int)n, 2);
    T_OK(more);
    if (n == 2) {
        T_EQ_STR(objs[0], "{\"v\":3}");
        T_EQ_STR(objs[1], "{\"v\":2}");
    }
    for (size_t i = 0; i < n; i++)
        free(objs[i]);
    free(objs);
    T_EQ_INT(O(j)->batch_list(S(j), "batch_b", 2, &objs, &n, &more, &err), INF_OK);
    T_EQ_INT((int)n, 1);
    T_OK(!more);
    if (n == 1)
        T_EQ_STR(objs[0], "{\"v\":4}");
    for (size_t i = 0; i < n; i++)
        free(objs[i]);
    free(objs);
    /* requests: stored once; pending = no output yet, in line order */
    char c_[] = "c", a_[] = "a", b_[] = "b", e1[] = "{}", e2[] = "{}", e3[] = "{\"x\":1}";
    struct inf__req rq[3] = {{3, c_, e1}, {1, a_, e2}, {2, b_, e3}};
    T_EQ_INT(O(j)->req_put(S(j), "batch_a", rq, 3, &err), INF_OK);
    T_EQ_INT(O(j)->req_put(S(j), "batch_a", rq, 3, &err), INF_OK);
    struct inf__req *pend = NULL;
    T_EQ_INT(O(j)->req_pending(S(j), "batch_a", &pend, &n, &err), INF_OK);
    T_EQ_INT((int)n, 3);
    if (n == 3) {
        T_EQ_STR(pend[0].custom_id, "a");
        T_EQ_STR(pend[1].custom_id, "b");
        T_EQ_STR(pend[1].body, "{\"x\":1}");
    }
    inf__req_free(pend, n);
    /* outputs: the first write wins */
    T_EQ_INT(O(j)->out_put(S(j), "batch_a", "b", 2, 200, "first", &err), INF_OK);
    T_EQ_INT(O(j)->out_put(S(j), "batch_a", "b", 2, 500, "second", &err), INF_OK);
    T_EQ_INT(O(j)->out_put(S(j), "batch_a", "c", 3, 400, "bad", &err), INF_OK);
    T_EQ_INT(O(j)->out_put(S(j), "batch_b", "b", 2, 200, "other batch", &err), INF_OK);
    T_EQ_INT(O(j)->req_pending(S(j), "batch_a", &pend, &n, &err), INF_OK);
    T_EQ_INT((int)n, 1);
    if (n == 1)
        T_EQ_STR(pend[0].custom_id, "a");
    inf__req_free(pend, n);
    int64_t ok = 0, failed = 0;
    T_EQ_INT(O(j)->out_counts(S(j), "batch_a", &ok, &failed, &err), INF_OK);
    T_EQ_INT((int)ok, 1);
    T_EQ_INT((int)failed, 1);
    struct inf__out *outs = NULL;
    T_EQ_INT(O(j)->out_all(S(j), "batch_a", &outs, &n, &err), INF_OK);
    T_EQ_INT((int)n, 2);
    if (n == 2) {
        T_EQ_STR(outs[0].text, "first");
        T_EQ_INT(outs[0].status, 200);
        T_EQ_STR(outs[1].text, "bad");
    }
    for (size_t i = 0; i < n; i++)
        free(outs[i].text);
    free(outs);
    inf_jobs_close(j);
}

static void test_jobs_claims(void)
{
    struct inf_jobs *j = open_fresh();
    T_OK(j != NULL);
    if (!j)
        return;
    struct inf_error err = {0};
    int64_t t = now_s();
    struct inf_job_spec s[4] = {
        {.kind = INF_JOB_REQUEST, .payload = "a", .priority = 0, .max_attempts = 1},
        {.kind = INF_JOB_REQUEST, .payload = "b", .priority = 5, .max_attempts = 2},
        {.kind = INF_JOB_REQUEST,
         .payload = "c",
         .priority = 9,
         .max_attempts = 1,
         .not_before = t + 3600},
        {.kind = INF_JOB_BATCH, .ref = "batch_x", .priority = 0, .max_attempts = 3},
    };
    int64_t ids[4];
    T_EQ_INT(inf_jobs_add_many(j, s, 4, ids, &err), INF_OK);
    T_OK(ids[0] < ids[1] && ids[1] < ids[2] && ids[2] < ids[3]);
    struct inf_job x, y, z, w;
    /* highest priority first, then oldest; one not due is not taken */
    T_EQ_INT(O(j)->job_claim(S(j), "w1", t, now_ms() + 60000, &x, &err), INF_OK);
    T_EQ_INT((int)x.id, (int)ids[1]);
    T_EQ_STR(x.state, "running");
    T_EQ_STR(x.owner, "w1");
    T_EQ_STR(x.payload, "b");
    T_EQ_INT(O(j)->job_claim(S(j), "w2", t, now_ms() + 60000, &y, &err), INF_OK);
    T_EQ_INT((int)y.id, (int)ids[0]);
    T_EQ_INT(O(j)->job_claim(S(j), "w3", t, now_ms() + 60000, &w, &err), INF_OK);
    T_EQ_INT((int)w.id, (int)ids[3]);
    T_EQ_STR(w.ref, "batch_x");
    T_EQ_INT(w.kind, INF_JOB_BATCH);
    T_EQ_INT(O(j)->job_claim(S(j), "w4", t, now_ms() + 60000, &z, &err), INF_ENOTFOUND);
    /* due later: taken at its time */
    T_EQ_INT(O(j)->job_claim(S(j), "w4", t + 3600, now_ms() + 60000, &z, &err), INF_OK);
    T_EQ_INT((int)z.id, (int)ids[2]);
    inf_job_release(&z);
    /* only the owner renews or finishes */
    T_EQ_INT(O(j)->job_heartbeat(S(j), x.id, "w2", now_ms() + 60000, &err), INF_ENOTFOUND);
    T_EQ_INT(O(j)->job_heartbeat(S(j), x.id, "w1", now_ms() + 60000, &err), INF_OK);
    T_EQ_INT(O(j)->job_finish(S(j), x.id, "w2", "done", 0, 0, NULL, NULL, t, &err), INF_ENOTFOUND);
    /* an expired lease is retaken; the first owner then can neither renew nor finish */
    /* the claims below are judged at t, so the lease ends a second before t (not before the
       wall clock, which a slow run has carried past t) */
    T_EQ_INT(O(j)->job_heartbeat(S(j), y.id, "w2", t * 1000 - 1000, &err), INF_OK);
    T_EQ_INT(O(j)->job_claim(S(j), "w5", t, now_ms() + 60000, &z, &err), INF_OK);
    T_EQ_INT((int)z.id, (int)ids[0]);
    T_EQ_INT(O(j)->job_heartbeat(S(j), y.id, "w2", now_ms() + 60000, &err), INF_ENOTFOUND);
    T_EQ_INT(O(j)->job_finish(S(j), y.id, "w2", "done", 0, 0, NULL, NULL, t, &err), INF_ENOTFOUND);
    T_EQ_INT(O(j)->job_finish(S(j), z.id, "w5", "done", 1, 0, NULL, "the result", t + 1, &err),
             INF_OK);
    struct inf_job g;
    T_EQ_INT(O(j)->job_get(S(j), z.id, &g, &err), INF_OK);
    T_EQ_STR(g.state, "done");
    T_EQ_STR(g.result, "the result");
    T_EQ_STR(g.owner, "");
    T_EQ_INT(g.attempts, 1);
    T_EQ_INT((int)(g.updated_at - t), 1);
    inf_job_release(&g);
    /* a retry at not_before keeps its error; it is not taken before then */
    T_EQ_INT(O(j)->job_finish(S(j), x.id, "w1", "queued", 1, t + 100, "boom", NULL, t, &err),
             INF_OK);
    T_EQ_INT(O(j)->job_claim(S(j), "w6", t, now_ms() + 60000, &g, &err), INF_ENOTFOUND);
    T_EQ_INT(O(j)->job_get(S(j), x.id, &g, &err), INF_OK);
    T_EQ_STR(g.state, "queued");
    T_EQ_STR(g.last_error, "boom");
    inf_job_release(&g);
    /* state changes only from the states given */
    static const char *const from_q[] = {"queued", "failed", NULL};
    static const char *const from_d[] = {"dead", "cancelled", NULL};
    T_EQ_INT(O(j)->job_set_state(S(j), x.id, from_d, "queued", true, t, &err), INF_EINVAL);
    T_CONTAINS(inf_error_message(&err), "queued");
    T_EQ_INT(O(j)->job_set_state(S(j), x.id, from_q, "cancelled", false, t, &err), INF_OK);
    T_EQ_INT(O(j)->job_set_state(S(j), x.id, from_d, "queued", true, t, &err), INF_OK);
    T_EQ_INT(O(j)->job_get(S(j), x.id, &g, &err), INF_OK);
    T_EQ_STR(g.state, "queued");
    T_EQ_INT(g.attempts, 0);
    T_EQ_INT((int)g.not_before, 0);
    inf_job_release(&g);
    T_EQ_INT(O(j)->job_get(S(j), 999999, &g, &err), INF_ENOTFOUND);
    /* list by state, newest first */
    struct inf_job *v = NULL;
    size_t n = 0;
    T_EQ_INT(O(j)->job_list(S(j), "running", 10, &v, &n, &err), INF_OK);
    T_EQ_INT((int)n, 2); /* ids[3] (w3) and ids[2] (w4) */
    if (n == 2) {
        T_EQ_INT((int)v[0].id, (int)ids[3]);
        T_EQ_INT((int)v[1].id, (int)ids[2]);
    }
    for (size_t i = 0; i < n; i++)
        inf_job_release(&v[i]);
    free(v);
    inf_job_release(&x);
    inf_job_release(&y);
    inf_job_release(&z);
    inf_job_release(&w);
    /* purge: finished jobs older than the time given */
    int64_t np = 0;
    T_EQ_INT(O(j)->job_purge(S(j), t + 2, &np, &err), INF_OK);
    T_EQ_INT((int)np, 1);
    inf_jobs_close(j);
}

static bool dead_w3(void *ctx, const char *owner)
{
    (void)ctx;
    return strcmp(owner, "w3") == 0;
}

static void test_reap_and_expiry(void)
{
    struct inf_jobs *j = open_fresh();
    T_OK(j != NULL);
    if (!j)
        return;
    struct inf_error err = {0};
    struct inf_job_spec s[2] = {
        {.kind = INF_JOB_REQUEST, .payload = "a", .max_attempts = 1},
        {.kind = INF_JOB_REQUEST, .payload = "b", .max_attempts = 1},
    };
    int64_t ids[2];
    T_EQ_INT(inf_jobs_add_many(j, s, 2, ids, &err), INF_OK);
    struct inf_job a, b, c;
    int64_t t = now_s();
    T_EQ_INT(O(j)->job_claim(S(j), "w3", t, now_ms() + 600000, &a, &err), INF_OK);
    /* a short lease, in real time: retaken once it has run out (a second long, so that a slow
       sanitizer run does not reach its end before the next claim) */
    T_EQ_INT(O(j)->job_claim(S(j), "w4", t, now_ms() + 1000, &b, &err), INF_OK);
    T_EQ_INT(O(j)->job_claim(S(j), "w5", now_s(), now_ms() + 60000, &c, &err), INF_ENOTFOUND);
    usleep(2100 * 1000); /* past the lease and into the next second (claims compare to now) */
    T_EQ_INT(O(j)->job_claim(S(j), "w5", now_s(), now_ms() + 60000, &c, &err), INF_OK);
    T_EQ_INT((int)c.id, (int)b.id);
    inf_job_release(&c);
    /* w3 is "dead": reaped, then retaken */
    T_EQ_INT(O(j)->job_claim(S(j), "w6", now_s(), now_ms() + 60000, &c, &err), INF_ENOTFOUND);
    T_EQ_INT(O(j)->job_reap(S(j), dead_w3, NULL, &err), INF_OK);
    T_EQ_INT(O(j)->job_claim(S(j), "w6", now_s(), now_ms() + 60000, &c, &err), INF_OK);
    T_EQ_INT((int)c.id, (int)a.id);
    T_EQ_INT(O(j)->job_finish(S(j), a.id, "w3", "done", 0, 0, NULL, NULL, t, &err), INF_ENOTFOUND);
    inf_job_release(&a);
    inf_job_release(&b);
    inf_job_release(&c);
    inf_jobs_close(j);
}

static void test_schedules(void)
{
    struct inf_jobs *j = open_fresh();
    T_OK(j != NULL);
    if (!j)
        return;
    struct inf_error err = {0};
    struct inf_schedule a = {.paused = false, .catch_up = true, .next_run = 100, .last_run = 0};
    snprintf(a.expr, sizeof(a.expr), "0 3 * * *");
    snprintf(a.tz, sizeof(a.tz), "Europe/Berlin");
    snprintf(a.batch_path, sizeof(a.batch_path), "/x/y.jsonl");
    snprintf(a.endpoint, sizeof(a.endpoint), "/v1/embeddings");
    int64_t id1 = 0, id2 = 0;
    T_EQ_INT(O(j)->sched_add(S(j), &a, &id1, &err), INF_OK);
    a.catch_up = false;
    T_EQ_INT(O(j)->sched_add(S(j), &a, &id2, &err), INF_OK);
    T_OK(id2 > id1);
    a.id = id1;
    a.paused = true;
    a.next_run = 200;
    a.last_run = 150;
    T_EQ_INT(O(j)->sched_update(S(j), &a, &err), INF_OK);
    struct inf_schedule *v = NULL;
    size_t n = 0;
    T_EQ_INT(O(j)->sched_list(S(j), &v, &n, &err), INF_OK);
    T_EQ_INT((int)n, 2);
    if (n == 2) {
        T_EQ_INT((int)v[0].id, (int)id1);
        T_OK(v[0].paused);
        T_OK(!v[0].catch_up);
        T_EQ_INT((int)v[0].next_run, 200);
        T_EQ_INT((int)v[0].last_run, 150);
        T_EQ_STR(v[0].tz, "Europe/Berlin");
        T_EQ_STR(v[1].endpoint, "/v1/embeddings");
        T_OK(!v[1].paused);
    }
    free(v);
    T_EQ_INT(O(j)->sched_del(S(j), id2, &err), INF_OK);
    T_EQ_INT(O(j)->sched_del(S(j), id2, &err), INF_ENOTFOUND);
    a.id = id2;
    T_EQ_INT(O(j)->sched_update(S(j), &a, &err), INF_ENOTFOUND);
    inf_jobs_close(j);
}

/* ---- claims under contention ---------------------------------------------------------------- */

#define N_WORKERS 8
#define N_JOBS    400

struct claimer {
    const char *url;
    int index;
    int64_t *claims; /* [N_JOBS + 1] claims per job id, shared */
    double *lat;     /* this worker's claim latencies, ms */
    int n_lat;
    int errors;
};

static void *claimer_main(void *arg)
{
    struct claimer *c = arg;
    struct inf_jobs *j = open_url(c->url);
    if (!j) {
        c->errors++;
        return NULL;
    }
    char owner[32];
    snprintf(owner, sizeof(owner), "worker-%d", c->index);
    for (;;) {
        struct inf_error err = {0};
        struct inf_job job;
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        inf_status rc = O(j)->job_claim(S(j), owner, now_s(), now_ms() + 60000, &job, &err);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        if (rc == INF_ENOTFOUND)
            break;
        if (rc != INF_OK) {
            fprintf(stderr, "claim: %s\n", inf_error_message(&err));
            c->errors++;
            break;
        }
        c->lat[c->n_lat++] =
            (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
        if (job.id >= 1 && job.id <= N_JOBS)
            __atomic_add_fetch(&c->claims[job.id], 1, __ATOMIC_SEQ_CST);
        else
            c->errors++;
        if (O(j)->job_finish(S(j), job.id, owner, "done", 0, 0, NULL, NULL, now_s(), &err) !=
            INF_OK)
            c->errors++;
        inf_job_release(&job);
    }
    inf_jobs_close(j);
    return NULL;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void test_contention(void)
{
    struct inf_jobs *j = open_fresh();
    T_OK(j != NULL);
    if (!j)
        return;
    char url[600];
    snprintf(url, sizeof(url), "%s", url_buf);
    struct inf_error err = {0};
    static struct inf_job_spec s[N_JOBS];
    for (int i = 0; i < N_JOBS; i++)
        s[i] = (struct inf_job_spec){.kind = INF_JOB_REQUEST, .payload = "x", .max_attempts = 1};
    T_EQ_INT(inf_jobs_add_many(j, s, N_JOBS, NULL, &err), INF_OK);
    static int64_t claims[N_JOBS + 1];
    memset(claims, 0, sizeof(claims));
    struct claimer c[N_WORKERS];
    pthread_t th[N_WORKERS];
    static double lat[N_WORKERS][N_JOBS];
    for (int i = 0; i < N_WORKERS; i++) {
        c[i] = (struct claimer){.url = url, .index = i, .claims = claims, .lat = lat[i]};
        pthread_create(&th[i], NULL, claimer_main, &c[i]);
    }
    static double all[N_WORKERS * N_JOBS];
    int n_all = 0, errors = 0;
    int per[N_WORKERS];
    for (int i = 0; i < N_WORKERS; i++) {
        pthread_join(th[i], NULL);
        errors += c[i].errors;
        per[i] = c[i].n_lat;
        for (int k = 0; k < c[i].n_lat; k++)
            all[n_all++] = c[i].lat[k];
    }
    T_EQ_INT(errors, 0);
    /* every job claimed exactly once, and all of them done */
    int twice = 0, never = 0;
    for (int i = 1; i <= N_JOBS; i++) {
        twice += claims[i] > 1;
        never += claims[i] == 0;
    }
    T_EQ_INT(twice, 0);
    T_EQ_INT(never, 0);
    T_EQ_INT(n_all, N_JOBS);
    struct inf_job *v = NULL;
    size_t n = 0;
    T_EQ_INT(O(j)->job_list(S(j), "done", N_JOBS + 10, &v, &n, &err), INF_OK);
    T_EQ_INT((int)n, N_JOBS);
    for (size_t i = 0; i < n; i++)
        inf_job_release(&v[i]);
    free(v);
    qsort(all, (size_t)n_all, sizeof(double), cmp_double);
    if (n_all > 0)
        printf("  [%s] %d workers, %d jobs: claim latency p50 %.2f ms, p99 %.2f ms, max %.2f ms; "
               "per worker %d %d %d %d %d %d %d %d\n",
               is_pg ? "postgresql" : "sqlite", N_WORKERS, N_JOBS, all[n_all / 2],
               all[(n_all * 99) / 100], all[n_all - 1], per[0], per[1], per[2], per[3], per[4],
               per[5], per[6], per[7]);
    inf_jobs_close(j);
}

/* ---- a batch through one handle, read through another (two replicas) ------------------------- */

static void test_batch_two_handles(void)
{
    struct inf_jobs *a = open_fresh();
    struct inf_jobs *b = a ? open_url(url_buf) : NULL;
    T_OK(a && b);
    if (!a || !b) {
        inf_jobs_close(a);
        return;
    }
    struct inf_error err = {0};
    char in[8192] = "";
    for (int i = 0; i < 40; i++) {
        size_t k = strlen(in);
        snprintf(in + k, sizeof(in) - k,
                 "{\"custom_id\":\"r%02d\",\"method\":\"POST\",\"url\":\"/v1/completions\","
                 "\"body\":{\"prompt\":\"p%d\"}}\n",
                 i, i);
    }
    struct inf_jobs_file f;
    T_EQ_INT(inf_jobs_file_create(a, "in.jsonl", "batch", in, strlen(in), &f, &err), INF_OK);
    char *obj = NULL;
    T_EQ_INT(inf_jobs_batch_create(a, f.id, "/v1/completions", "24h", NULL, 0, &obj, &err), INF_OK);
    char id[64] = "";
    const char *p = obj ? strstr(obj, "\"id\":\"") : NULL;
    if (p)
        sscanf(p + 6, "%63[^\"]", id);
    free(obj);
    /* the other handle's worker runs it */
    atomic_bool stop = false;
    struct inf_jobs_worker_params wp = {.exec = &fake, .once = true, .stop = &stop};
    T_EQ_INT(inf_jobs_worker_run(b, &wp, &err), INF_OK);
    T_EQ_INT(inf_jobs_batch_get(a, id, &obj, &err), INF_OK);
    T_CONTAINS(obj, "\"status\":\"completed\"");
    T_CONTAINS(obj, "\"completed\":40");
    char out_id[64] = "";
    p = obj ? strstr(obj, "\"output_file_id\":\"") : NULL;
    if (p)
        sscanf(p + 18, "%63[^\"]", out_id);
    free(obj);
    char *data = NULL;
    size_t len = 0;
    T_EQ_INT(inf_jobs_file_content(a, out_id, &data, &len, &err), INF_OK);
    /* 40 lines, each custom_id once, each echoing its own prompt */
    int lines = 0, seen[40] = {0};
    for (char *s = data, *nl; s && (nl = memchr(s, '\n', len - (size_t)(s - data))); s = nl + 1) {
        lines++;
        char *cid = inf_batch_output_custom_id(s, (size_t)(nl - s));
        int k = cid && cid[0] == 'r' ? atoi(cid + 1) : -1;
        if (k >= 0 && k < 40) {
            seen[k]++;
            char want[32];
            snprintf(want, sizeof(want), "\"prompt\":\"p%d\"", k);
            *nl = '\0';
            T_CONTAINS(s, want);
            *nl = '\n';
        }
        free(cid);
    }
    T_EQ_INT(lines, 40);
    int once = 0;
    for (int i = 0; i < 40; i++)
        once += seen[i] == 1;
    T_EQ_INT(once, 40);
    free(data);
    inf_jobs_close(b);
    inf_jobs_close(a);
}

/* ---- PostgreSQL only ------------------------------------------------------------------------ */

struct opener {
    const char *url;
    inf_status rc;
};

static void *opener_main(void *arg)
{
    struct opener *o = arg;
    struct inf_jobs *j = NULL;
    struct inf_jobs_params p = {.url = o->url, .files_dir = root};
    struct inf_error err = {0};
    o->rc = inf_jobs_open(&p, &j, &err);
    if (o->rc != INF_OK)
        fprintf(stderr, "concurrent open: %s\n", inf_error_message(&err));
    inf_jobs_close(j);
    return NULL;
}

static void test_pg_migrations_at_once(void)
{
    char url[600];
    next_url(url, sizeof(url));
    struct opener o[6];
    pthread_t th[6];
    for (int i = 0; i < 6; i++) {
        o[i] = (struct opener){.url = url};
        pthread_create(&th[i], NULL, opener_main, &o[i]);
    }
    for (int i = 0; i < 6; i++) {
        pthread_join(th[i], NULL);
        T_EQ_INT(o[i].rc, INF_OK);
    }
    /* one version row, the latest; the tables are there */
    PGconn *c = PQconnectdb(url);
    PGresult *r = PQexec(c, "SELECT count(*), max(version) FROM inferno_schema");
    T_EQ_INT(PQresultStatus(r), PGRES_TUPLES_OK);
    if (PQresultStatus(r) == PGRES_TUPLES_OK) {
        T_EQ_STR(PQgetvalue(r, 0, 0), "1");
        T_EQ_STR(PQgetvalue(r, 0, 1), "3");
    }
    PQclear(r);
    /* an upgrade from version 2: migration 3 marks the requests that have an output */
    {
        struct inf_jobs_params p2 = {.url = url, .files_dir = root};
        struct inf_jobs *j2 = NULL;
        struct inf_error e2 = {0};
        T_EQ_INT(inf_jobs_open(&p2, &j2, &e2), INF_OK);
        char a_[] = "a", b_[] = "b", body[] = "{}";
        struct inf__req rq[2] = {{1, a_, body}, {2, b_, body}};
        if (j2) {
            T_EQ_INT(O(j2)->req_put(S(j2), "batch_m", rq, 2, &e2), INF_OK);
            T_EQ_INT(O(j2)->out_put(S(j2), "batch_m", "a", 1, 200, "x", &e2), INF_OK);
            inf_jobs_close(j2);
        }
        PQclear(PQexec(c, "UPDATE batch_requests SET lease_until = 0; DROP INDEX "
                          "batch_requests_open; UPDATE inferno_schema SET version = 2"));
        j2 = NULL;
        T_EQ_INT(inf_jobs_open(&p2, &j2, &e2), INF_OK);
        inf_jobs_close(j2);
        r = PQexec(c, "SELECT string_agg(custom_id || '=' || lease_until, ',' ORDER BY line), "
                      "(SELECT max(version) FROM inferno_schema), (SELECT count(*) FROM "
                      "pg_indexes WHERE indexname = 'batch_requests_open') FROM batch_requests "
                      "WHERE batch_id = 'batch_m'");
        T_EQ_INT(PQresultStatus(r), PGRES_TUPLES_OK);
        if (PQresultStatus(r) == PGRES_TUPLES_OK) {
            T_EQ_STR(PQgetvalue(r, 0, 0), "a=-1,b=0");
            T_EQ_STR(PQgetvalue(r, 0, 1), "3");
            T_EQ_STR(PQgetvalue(r, 0, 2), "1");
        }
        PQclear(r);
    }
    /* a schema newer than the build is refused with a clear message */
    PQclear(PQexec(c, "UPDATE inferno_schema SET version = 99"));
    PQfinish(c);
    struct inf_jobs *j = NULL;
    struct inf_jobs_params p = {.url = url, .files_dir = root};
    struct inf_error err = {0};
    T_EQ_INT(inf_jobs_open(&p, &j, &err), INF_EFORMAT);
    T_CONTAINS(inf_error_message(&err), "newer than this build");
    /* a server that is not there: a clear error, at once */
    char bad[128];
    snprintf(bad, sizeof(bad), "postgresql://inferno@127.0.0.1:%d/x", free_port());
    p.url = bad;
    T_EQ_INT(inf_jobs_open(&p, &j, &err), INF_EIO);
    T_CONTAINS(inf_error_message(&err), "postgresql");
}

struct waiter {
    struct inf_jobs *j;
    bool woken;
    double ms;
};

static void *waiter_main(void *arg)
{
    struct waiter *w = arg;
    int64_t t0 = now_ms();
    w->woken = O(w->j)->wait_work(S(w->j), 5000);
    w->ms = (double)(now_ms() - t0);
    return NULL;
}

static void test_pg_notify_and_restart(void)
{
    struct inf_jobs *a = open_fresh();
    struct inf_jobs *b = a ? open_url(url_buf) : NULL;
    T_OK(a && b);
    if (!a || !b) {
        inf_jobs_close(a);
        return;
    }
    T_OK(O(a)->wait_work != NULL);
    struct inf_error err = {0};
    /* nothing added: the wait runs its time out */
    T_OK(!O(a)->wait_work(S(a), 300));
    /* a job added through another handle wakes the waiter well before its 5 s */
    struct waiter w = {.j = a};
    pthread_t th;
    pthread_create(&th, NULL, waiter_main, &w);
    usleep(300 * 1000);
    struct inf_job_spec s = {.kind = INF_JOB_REQUEST, .payload = "x", .max_attempts = 1};
    int64_t id = 0;
    T_EQ_INT(inf_jobs_add(b, &s, &id, &err), INF_OK);
    pthread_join(th, NULL);
    T_OK(w.woken);
    T_OK(w.ms < 2000);
    printf("  [postgresql] woken by NOTIFY %.0f ms after the wait began (job added at ~300)\n",
           w.ms);
    /* the server restarts between two statements: the next one reconnects and succeeds */
    T_EQ_INT(pg_ctl("-m fast restart"), 0);
    struct inf_job job;
    T_EQ_INT(O(a)->job_claim(S(a), "w1", now_s(), now_ms() + 60000, &job, &err), INF_OK);
    T_EQ_INT((int)job.id, (int)id);
    T_EQ_INT(O(a)->job_finish(S(a), job.id, "w1", "done", 0, 0, NULL, NULL, now_s(), &err), INF_OK);
    inf_job_release(&job);
    /* a transaction cut by the restart fails (the caller rolls back); the next one works */
    T_EQ_INT(O(b)->begin(S(b), &err), INF_OK);
    T_EQ_INT(pg_ctl("-m fast restart"), 0);
    T_OK(O(b)->batch_put(S(b), "batch_z", "validating", "{}", &err) != INF_OK);
    O(b)->rollback(S(b));
    T_EQ_INT(O(b)->batch_put(S(b), "batch_z", "validating", "{}", &err), INF_OK);
    /* the listener reconnects too: a job added after the restart still wakes a waiter */
    O(a)->wait_work(S(a), 100); /* notices the old connection is gone */
    w = (struct waiter){.j = a};
    pthread_create(&th, NULL, waiter_main, &w);
    usleep(500 * 1000);
    T_EQ_INT(inf_jobs_add(b, &s, &id, &err), INF_OK);
    pthread_join(th, NULL);
    T_OK(w.woken);
    inf_jobs_close(b);
    inf_jobs_close(a);
}

/* one batch, two workers (two handles: two replicas), a dead helper's lease taken over */

static int slow_run(void *ctx, enum inf_batch_endpoint ep, const char *body, size_t len,
                    char **resp, char *rid, size_t rid_size)
{
    __atomic_add_fetch((int *)ctx, 1, __ATOMIC_SEQ_CST);
    usleep(20 * 1000);
    return fake_run(NULL, ep, body, len, resp, rid, rid_size);
}

struct bg_worker {
    struct inf_jobs *j;
    struct inf_jobs_exec x;
    atomic_bool stop;
};

static void *bg_worker_main(void *arg)
{
    struct bg_worker *w = arg;
    struct inf_jobs_worker_params wp = {.exec = &w->x, .poll_ms = 100, .stop = &w->stop};
    struct inf_error err = {0};
    inf_jobs_worker_run(w->j, &wp, &err);
    return NULL;
}

static void test_pg_shared_batch(void)
{
    struct inf_jobs *a = open_fresh();
    struct inf_jobs *b = a ? open_url(url_buf) : NULL;
    T_OK(a && b);
    if (!a || !b) {
        inf_jobs_close(a);
        return;
    }
    struct inf_error err = {0};
    enum { N = 120 };
    static char in[N * 128];
    in[0] = '\0';
    for (int i = 0; i < N; i++) {
        size_t k = strlen(in);
        snprintf(in + k, sizeof(in) - k,
                 "{\"custom_id\":\"r%03d\",\"method\":\"POST\",\"url\":\"/v1/completions\","
                 "\"body\":{\"prompt\":\"p%d\"}}\n",
                 i, i);
    }
    struct inf_jobs_file f;
    T_EQ_INT(inf_jobs_file_create(a, "in.jsonl", "batch", in, strlen(in), &f, &err), INF_OK);
    char *obj = NULL;
    T_EQ_INT(inf_jobs_batch_create(a, f.id, "/v1/completions", "24h", NULL, 0, &obj, &err), INF_OK);
    char id[64] = "";
    const char *p = obj ? strstr(obj, "\"id\":\"") : NULL;
    if (p)
        sscanf(p + 6, "%63[^\"]", id);
    free(obj);
    /* a helper that died holding two requests: its leases are long, its process is gone */
    char host[64], dead[128];
    gethostname(host, sizeof(host));
    host[sizeof(host) - 1] = '\0';
    snprintf(dead, sizeof(dead), "%s:%d:abc", host, 4194303);
    int runs_a = 0, runs_b = 0;
    struct bg_worker wa = {.j = a, .x = {fake_check, slow_run, &runs_a, 2}};
    struct bg_worker wb = {.j = b, .x = {fake_check, slow_run, &runs_b, 2}};
    atomic_init(&wa.stop, false);
    atomic_init(&wb.stop, false);
    pthread_t ta, tb;
    pthread_create(&ta, NULL, bg_worker_main, &wa);
    /* once the batch is in progress, the dead helper's claim, then the second worker */
    for (int i = 0; i < 200; i++) {
        T_EQ_INT(inf_jobs_batch_get(a, id, &obj, &err), INF_OK);
        bool going = obj && strstr(obj, "\"status\":\"in_progress\"");
        free(obj);
        if (going)
            break;
        usleep(20 * 1000);
    }
    struct inf__req *q = NULL;
    size_t nq = 0;
    pthread_mutex_lock(&b->mu);
    T_EQ_INT(O(b)->req_claim(S(b), id, dead, 2, now_ms(), now_ms() + 3600000, &q, &nq, &err),
             INF_OK);
    pthread_mutex_unlock(&b->mu);
    T_EQ_INT((int)nq, 2);
    inf__req_free(q, nq);
    pthread_create(&tb, NULL, bg_worker_main, &wb);
    const char *st = "";
    for (int i = 0; i < 600; i++) {
        T_EQ_INT(inf_jobs_batch_get(a, id, &obj, &err), INF_OK);
        st = obj && strstr(obj, "\"status\":\"completed\"") ? "completed" : "";
        free(obj);
        if (*st)
            break;
        usleep(50 * 1000);
    }
    T_EQ_STR(st, "completed");
    atomic_store(&wa.stop, true);
    atomic_store(&wb.stop, true);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    /* every request ran once (the dead helper's two by a live worker), on both workers */
    printf("  [postgresql] one batch of %d on two workers: %d and %d requests\n", N, runs_a,
           runs_b);
    T_EQ_INT(runs_a + runs_b, N);
    T_OK(runs_a > 10 && runs_b > 10);
    T_EQ_INT(inf_jobs_batch_get(b, id, &obj, &err), INF_OK);
    char out_id[64] = "";
    p = obj ? strstr(obj, "\"output_file_id\":\"") : NULL;
    if (p)
        sscanf(p + 18, "%63[^\"]", out_id);
    free(obj);
    char *data = NULL;
    size_t len = 0;
    T_EQ_INT(inf_jobs_file_content(b, out_id, &data, &len, &err), INF_OK);
    int lines = 0, seen[N] = {0};
    for (char *s = data, *nl; s && (nl = memchr(s, '\n', len - (size_t)(s - data))); s = nl + 1) {
        lines++;
        char *cid = inf_batch_output_custom_id(s, (size_t)(nl - s));
        int k = cid && cid[0] == 'r' ? atoi(cid + 1) : -1;
        if (k >= 0 && k < N)
            seen[k]++;
        free(cid);
    }
    int once = 0;
    for (int i = 0; i < N; i++)
        once += seen[i] == 1;
    T_EQ_INT(lines, N);
    T_EQ_INT(once, N);
    free(data);
    inf_jobs_close(b);
    inf_jobs_close(a);
}

/* request claims under contention: 8 workers, one row per claim, each request claimed once */

struct req_claimer {
    const char *url;
    int index;
    int64_t *claims; /* [N_JOBS] by line */
    int over, errors;
};

static void *req_claimer_main(void *arg)
{
    struct req_claimer *c = arg;
    struct inf_jobs *j = open_url(c->url);
    if (!j) {
        c->errors++;
        return NULL;
    }
    char owner[32];
    snprintf(owner, sizeof(owner), "rw-%d", c->index);
    for (;;) {
        struct inf_error err = {0};
        struct inf__req *q = NULL;
        size_t n = 0;
        if (O(j)->req_claim(S(j), "batch_rc", owner, 1, now_ms(), now_ms() + 600000, &q, &n,
                            &err) != INF_OK) {
            c->errors++;
            break;
        }
        if (n == 0)
            break;
        c->over += n > 1;
        for (size_t i = 0; i < n; i++) {
            if (q[i].line >= 1 && q[i].line <= N_JOBS)
                __atomic_add_fetch(&c->claims[q[i].line - 1], 1, __ATOMIC_SEQ_CST);
            if (O(j)->out_put(S(j), "batch_rc", q[i].custom_id, q[i].line, 200, "x", &err) !=
                INF_OK)
                c->errors++;
        }
        inf__req_free(q, n);
    }
    inf_jobs_close(j);
    return NULL;
}

static void test_pg_req_claim_contention(void)
{
    struct inf_jobs *j = open_fresh();
    T_OK(j != NULL);
    if (!j)
        return;
    char url[600];
    snprintf(url, sizeof(url), "%s", url_buf);
    struct inf_error err = {0};
    static struct inf__req rq[N_JOBS];
    static char ids[N_JOBS][16];
    for (int i = 0; i < N_JOBS; i++) {
        snprintf(ids[i], sizeof(ids[i]), "c%d", i);
        rq[i] = (struct inf__req){.line = i + 1, .custom_id = ids[i], .body = ids[i]};
    }
    T_EQ_INT(O(j)->req_put(S(j), "batch_rc", rq, N_JOBS, &err), INF_OK);
    static int64_t claims[N_JOBS];
    memset(claims, 0, sizeof(claims));
    struct req_claimer c[N_WORKERS];
    pthread_t th[N_WORKERS];
    for (int i = 0; i < N_WORKERS; i++) {
        c[i] = (struct req_claimer){.url = url, .index = i, .claims = claims};
        pthread_create(&th[i], NULL, req_claimer_main, &c[i]);
    }
    int over = 0, errors = 0;
    for (int i = 0; i < N_WORKERS; i++) {
        pthread_join(th[i], NULL);
        over += c[i].over;
        errors += c[i].errors;
    }
    T_EQ_INT(errors, 0);
    T_EQ_INT(over, 0);
    int once = 0;
    for (int i = 0; i < N_JOBS; i++)
        once += claims[i] == 1;
    T_EQ_INT(once, N_JOBS);
    inf_jobs_close(j);
}

/* a schedule due on two replicas: exactly one fires it */

struct ticker {
    struct inf_jobs *j;
    int64_t now;
    int fired;
    inf_status rc;
};

static void *ticker_main(void *arg)
{
    struct ticker *t = arg;
    struct inf_error err = {0};
    t->rc = inf_jobs_schedule_tick(t->j, t->now, &t->fired, &err);
    return NULL;
}

static void test_pg_schedule_once(void)
{
    struct inf_jobs *a = open_fresh();
    struct inf_jobs *b = a ? open_url(url_buf) : NULL;
    T_OK(a && b);
    if (!a || !b) {
        inf_jobs_close(a);
        return;
    }
    struct inf_error err = {0};
    char path[400];
    snprintf(path, sizeof(path), "%s/sched.jsonl", root);
    FILE *f = fopen(path, "w");
    if (f) {
        fputs("{\"custom_id\":\"s1\",\"method\":\"POST\",\"url\":\"/v1/completions\","
              "\"body\":{\"prompt\":\"x\"}}\n",
              f);
        fclose(f);
    }
    struct inf_schedule sc = {.catch_up = true};
    snprintf(sc.expr, sizeof(sc.expr), "* * * * *");
    snprintf(sc.tz, sizeof(sc.tz), "UTC");
    snprintf(sc.batch_path, sizeof(sc.batch_path), "%s", path);
    snprintf(sc.endpoint, sizeof(sc.endpoint), "/v1/completions");
    int64_t id = 0;
    T_EQ_INT(inf_jobs_schedule_add(a, &sc, &id, &err), INF_OK);
    struct inf_schedule *v = NULL;
    size_t n = 0;
    T_EQ_INT(inf_jobs_schedule_list(a, &v, &n, &err), INF_OK);
    int64_t due = n == 1 ? v[0].next_run : 0;
    free(v);
    /* the store's advance: the first call moves next_run on, a second with the same due does not */
    T_EQ_INT(O(a)->sched_advance(S(a), id, due, due + 60, due, &err), INF_OK);
    T_EQ_INT(O(b)->sched_advance(S(b), id, due, due + 60, due, &err), INF_EEXIST);
    /* two replicas ticking at once at the next due time: one batch */
    for (int round = 0; round < 5; round++) {
        int64_t at = due + 60 * (round + 1);
        struct ticker ta = {.j = a, .now = at}, tb = {.j = b, .now = at};
        pthread_t x, y;
        pthread_create(&x, NULL, ticker_main, &ta);
        pthread_create(&y, NULL, ticker_main, &tb);
        pthread_join(x, NULL);
        pthread_join(y, NULL);
        T_EQ_INT(ta.rc, INF_OK);
        T_EQ_INT(tb.rc, INF_OK);
        T_EQ_INT(ta.fired + tb.fired, 1);
    }
    struct inf_job *jobs = NULL;
    T_EQ_INT(inf_jobs_list(a, NULL, 100, &jobs, &n, &err), INF_OK);
    T_EQ_INT((int)n, 5); /* one batch job per round */
    for (size_t i = 0; i < n; i++)
        inf_job_release(&jobs[i]);
    free(jobs);
    inf_jobs_close(b);
    inf_jobs_close(a);
}

static void run_suite(const char *name)
{
    printf("-- %s\n", name);
    T_RUN(test_files);
    T_RUN(test_tx_batches_outputs);
    T_RUN(test_jobs_claims);
    T_RUN(test_reap_and_expiry);
    T_RUN(test_schedules);
    T_RUN(test_contention);
    T_RUN(test_batch_two_handles);
}

int main(void)
{
    snprintf(root, sizeof(root), "/tmp/inferno-jobs-store-XXXXXX");
    if (!mkdtemp(root)) {
        perror("mkdtemp");
        return 1;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    is_pg = false;
    run_suite("sqlite");
    if (!find_pg_bin()) {
        printf("SKIP postgresql half: no PostgreSQL binaries under /usr/lib/postgresql/*/bin "
               "(install the postgresql package, or set INFERNO_PG_BIN)\n");
    } else if (!pg_start()) {
        T_OK(!"the throwaway PostgreSQL cluster did not start");
    } else {
        is_pg = true;
        run_suite("postgresql");
        T_RUN(test_pg_migrations_at_once);
        T_RUN(test_pg_notify_and_restart);
        T_RUN(test_pg_shared_batch);
        T_RUN(test_pg_req_claim_contention);
        T_RUN(test_pg_schedule_once);
    }
    pg_stop();
    sh("rm -rf '%s'", root);
    T_DONE();
}
