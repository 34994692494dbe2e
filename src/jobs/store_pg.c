/*
 * store_pg.c - the jobs store on PostgreSQL through libpq (jobs/store.h), for several servers
 * (and `inferno queue worker` processes, on any number of machines) sharing one queue.
 *
 * Schema: versioned migrations (migrations[] below; the version applied is the row of
 * inferno_schema), applied at open inside one transaction that holds a transaction-level
 * advisory lock, so processes that start at once apply each migration exactly once.
 *
 * Claims: `SELECT ... FOR UPDATE SKIP LOCKED` inside the UPDATE that writes the lease: one
 * statement, so the choice and the lease are atomic and concurrent workers never wait on each
 * other's rows. Outputs: `INSERT ... ON CONFLICT DO NOTHING` on the primary key (batch_id,
 * custom_id): the first write wins.
 *
 * Wake-up: job_add sends NOTIFY inferno_jobs (delivered at commit); wait_work LISTENs on a
 * second connection of its own, so idle workers wake as soon as a job is added anywhere.
 *
 * Files: uploaded files and batch outputs are bytea rows of file_data (one row per file, read
 * and written whole; TOAST compresses and stores them out of line), so every replica reads
 * what any other wrote. Large objects were not chosen: they outlive their rows unless cleaned
 * up, and files here are capped at INF_JOBS_MAX_FILE_BYTES (200 MiB, under bytea's 1 GiB).
 *
 * Connection loss: a statement that fails because the connection is gone reconnects (backoff
 * 50 ms doubling to 2 s, for up to INFERNO_PG_RECONNECT_S seconds, 30 by default) and runs again
 * once, unless it ran inside begin/commit: then the error goes to the caller, whose transaction
 * was rolled back by the server. Every statement run again is idempotent or, for a claim,
 * harmless: a claim whose reply was lost leaves a lease that expires and is retaken.
 */
#include <libpq-fe.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "inferno/log.h"
#include "jobs/store.h"

struct pg {
    struct inf__store base;
    char *url;
    PGconn *c;
    bool in_tx;
    /* LISTEN inferno_jobs on a connection of its own (wait_work) */
    pthread_mutex_t lmu;
    pthread_cond_t lcv;
    PGconn *lc;
    bool polling;      /* a thread waits on lc's socket; the others wait on lcv */
    uint64_t wake_gen; /* notifications seen */
};

static const char *const migrations[] = {
    /* 1: the tables of store_sqlite.c, with the file contents in the database */
    "CREATE TABLE files(id text PRIMARY KEY, seq bigserial, filename text NOT NULL,"
    " purpose text NOT NULL, bytes bigint NOT NULL, created_at bigint NOT NULL);"
    "CREATE TABLE file_data(id text PRIMARY KEY, data bytea NOT NULL);"
    "CREATE TABLE batches(id text PRIMARY KEY, seq bigserial, status text NOT NULL,"
    " obj text NOT NULL);"
    "CREATE TABLE batch_requests(batch_id text NOT NULL, line bigint NOT NULL,"
    " custom_id text NOT NULL, body text NOT NULL, PRIMARY KEY(batch_id, custom_id));"
    "CREATE TABLE batch_outputs(batch_id text NOT NULL, custom_id text NOT NULL,"
    " line bigint NOT NULL, status integer NOT NULL, text text NOT NULL,"
    " PRIMARY KEY(batch_id, custom_id));"
    "CREATE TABLE jobs(id bigserial PRIMARY KEY, kind integer NOT NULL, state text NOT NULL,"
    " priority integer NOT NULL, attempts integer NOT NULL DEFAULT 0,"
    " max_attempts integer NOT NULL, not_before bigint NOT NULL, created_at bigint NOT NULL,"
    " updated_at bigint NOT NULL, lease_owner text NOT NULL DEFAULT '',"
    " lease_until bigint NOT NULL DEFAULT 0, ref text NOT NULL DEFAULT '', payload text,"
    " result text, last_error text);"
    "CREATE INDEX jobs_ready ON jobs(state, priority DESC, id);"
    "CREATE TABLE schedules(id bigserial PRIMARY KEY, expr text NOT NULL, tz text NOT NULL,"
    " batch_path text NOT NULL, endpoint text NOT NULL, paused boolean NOT NULL,"
    " catch_up boolean NOT NULL, next_run bigint NOT NULL, last_run bigint NOT NULL);",
    /* 2: request leases, so that several workers share one batch (share.c) */
    "ALTER TABLE batch_requests ADD COLUMN lease_owner text NOT NULL DEFAULT '';"
    "ALTER TABLE batch_requests ADD COLUMN lease_until bigint NOT NULL DEFAULT 0;"
    "CREATE INDEX batch_requests_line ON batch_requests(batch_id, line);",
    /* 3: a request with an output is marked (lease_until = -1) by out_put, so that claims find
       the next free request through a partial index instead of passing every finished one */
    "UPDATE batch_requests r SET lease_until = -1 WHERE EXISTS (SELECT 1 FROM batch_outputs o"
    " WHERE o.batch_id = r.batch_id AND o.custom_id = r.custom_id);"
    "CREATE INDEX batch_requests_open ON batch_requests(batch_id, line) WHERE lease_until >= 0;",
};
#define N_MIGRATIONS ((int)(sizeof(migrations) / sizeof(migrations[0])))
#define MIGRATE_LOCK "7425610021" /* the advisory lock's key: any constant of our own */

/* ---- connections ------------------------------------------------------------------------- */

static void trim_msg(char *m)
{
    size_t n = strlen(m);
    while (n && (m[n - 1] == '\n' || m[n - 1] == ' '))
        m[--n] = '\0';
}

static inf_status pg_fail(struct pg *p, struct inf_error *err, const char *what, const PGresult *r)
{
    char m[400];
    snprintf(m, sizeof(m), "%s",
             r && PQresultErrorMessage(r)[0] ? PQresultErrorMessage(r)
                                             : (p->c ? PQerrorMessage(p->c) : "not connected"));
    trim_msg(m);
    return inf_error_set(err, INF_EIO, "jobs store (postgresql): %s: %s", what, m);
}

static int reconnect_s(void)
{
    const char *e = getenv("INFERNO_PG_RECONNECT_S");
    int v = e ? atoi(e) : 30;
    return v < 0 ? 0 : v > 3600 ? 3600 : v;
}

/* The server's notices (and the FATAL of a connection it ends) go to the log, not stderr. */
static void notice(void *arg, const char *msg)
{
    (void)arg;
    char m[300];
    snprintf(m, sizeof(m), "%s", msg);
    trim_msg(m);
    INF_LOG_DEBUG("jobs", "postgresql: %s", m);
}

static PGconn *connect_quiet(const char *url)
{
    PGconn *c = PQconnectdb(url);
    if (c)
        PQsetNoticeProcessor(c, notice, NULL);
    if (c && PQstatus(c) == CONNECTION_OK) {
        PQclear(PQexec(c, "SET client_min_messages = warning"));
        return c;
    }
    return c; /* the caller reads its message */
}

/* (Re)connect p->c, with backoff for up to reconnect_s() seconds. */
static inf_status ensure_conn(struct pg *p, struct inf_error *err)
{
    if (p->c && PQstatus(p->c) == CONNECTION_OK)
        return INF_OK;
    int64_t deadline = (int64_t)time(NULL) + reconnect_s();
    int delay_ms = 50;
    for (int tries = 0;; tries++) {
        if (p->c)
            PQfinish(p->c);
        p->c = connect_quiet(p->url);
        if (p->c && PQstatus(p->c) == CONNECTION_OK) {
            if (tries)
                INF_LOG_INFO("jobs", "postgresql: connected again after %d tries", tries + 1);
            return INF_OK;
        }
        if ((int64_t)time(NULL) >= deadline) {
            char m[300];
            snprintf(m, sizeof(m), "%s", p->c ? PQerrorMessage(p->c) : "out of memory");
            trim_msg(m);
            return inf_error_set(err, INF_EIO, "jobs store (postgresql): cannot connect: %s", m);
        }
        if (tries == 0)
            INF_LOG_WARN("jobs", "postgresql: connection lost; reconnecting");
        usleep((useconds_t)delay_ms * 1000);
        delay_ms = delay_ms * 2 > 2000 ? 2000 : delay_ms * 2;
    }
}

/*
 * Run one statement with text parameters (vals[i] NULL: SQL NULL; lens/fmts may be NULL for
 * all-text). Returns the result of a command or query that succeeded (the caller PQclear()s),
 * or NULL with err set. Outside a transaction, a lost connection is reconnected and the
 * statement run once more.
 */
static PGresult *pq(struct pg *p, const char *sql, int n, const char *const *vals, const int *lens,
                    const int *fmts, int result_fmt, struct inf_error *err)
{
    for (int attempt = 0;; attempt++) {
        if (!p->in_tx && ensure_conn(p, err) != INF_OK)
            return NULL;
        if (!p->c) {
            pg_fail(p, err, "query", NULL);
            return NULL;
        }
        PGresult *r = PQexecParams(p->c, sql, n, NULL, vals, lens, fmts, result_fmt);
        ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
        if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
            return r;
        bool lost = PQstatus(p->c) != CONNECTION_OK;
        if (lost && !p->in_tx && attempt == 0) {
            PQclear(r);
            continue;
        }
        pg_fail(p, err, lost ? "connection lost" : "query", r);
        PQclear(r);
        return NULL;
    }
}

/* A statement without a result set; *changes: rows changed (may be NULL). */
static inf_status cmd(struct pg *p, const char *sql, int n, const char *const *vals, int *changes,
                      struct inf_error *err)
{
    PGresult *r = pq(p, sql, n, vals, NULL, NULL, 0, err);
    if (!r)
        return err->code ? err->code : INF_EIO;
    if (changes) {
        const char *t = PQcmdTuples(r);
        *changes = t && *t ? atoi(t) : 0;
    }
    PQclear(r);
    return INF_OK;
}

#define I64(buf, v) (snprintf((buf), sizeof(buf), "%lld", (long long)(v)), (const char *)(buf))

static char *get_dup(const PGresult *r, int row, int col)
{
    if (PQgetisnull(r, row, col))
        return NULL;
    return strdup(PQgetvalue(r, row, col));
}

static void get_copy(const PGresult *r, int row, int col, char *out, size_t n)
{
    snprintf(out, n, "%s", PQgetisnull(r, row, col) ? "" : PQgetvalue(r, row, col));
}

static int64_t get_i64(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? 0 : strtoll(PQgetvalue(r, row, col), NULL, 10);
}

static bool get_bool(const PGresult *r, int row, int col)
{
    return !PQgetisnull(r, row, col) && PQgetvalue(r, row, col)[0] == 't';
}

static void pg_close(struct inf__store *s)
{
    struct pg *p = (struct pg *)s;
    if (!p)
        return;
    if (p->c)
        PQfinish(p->c);
    if (p->lc)
        PQfinish(p->lc);
    pthread_mutex_destroy(&p->lmu);
    pthread_cond_destroy(&p->lcv);
    free(p->url);
    free(p);
}

static inf_status pg_begin(struct inf__store *s, struct inf_error *err)
{
    struct pg *p = (struct pg *)s;
    inf_status rc = cmd(p, "BEGIN", 0, NULL, NULL, err);
    if (rc == INF_OK)
        p->in_tx = true;
    return rc;
}

static inf_status pg_commit(struct inf__store *s, struct inf_error *err)
{
    struct pg *p = (struct pg *)s;
    inf_status rc = cmd(p, "COMMIT", 0, NULL, NULL, err);
    if (rc != INF_OK && p->c && PQstatus(p->c) == CONNECTION_OK)
        PQclear(PQexec(p->c, "ROLLBACK"));
    p->in_tx = false;
    return rc;
}

static void pg_rollback(struct inf__store *s)
{
    struct pg *p = (struct pg *)s;
    if (p->c && PQstatus(p->c) == CONNECTION_OK)
        PQclear(PQexec(p->c, "ROLLBACK"));
    p->in_tx = false;
}

/* ---- files ------------------------------------------------------------------------------- */

#define FILE_COLS "id, filename, purpose, bytes, created_at"

static void file_row(const PGresult *r, int i, struct inf_jobs_file *f)
{
    memset(f, 0, sizeof(*f));
    get_copy(r, i, 0, f->id, sizeof(f->id));
    get_copy(r, i, 1, f->filename, sizeof(f->filename));
    get_copy(r, i, 2, f->purpose, sizeof(f->purpose));
    f->bytes = get_i64(r, i, 3);
    f->created_at = get_i64(r, i, 4);
}

static inf_status pg_file_put(struct inf__store *s, const struct inf_jobs_file *f,
                              struct inf_error *err)
{
    char b[2][24];
    const char *v[] = {f->id, f->filename, f->purpose, I64(b[0], f->bytes),
                       I64(b[1], f->created_at)};
    return cmd((struct pg *)s,
               "INSERT INTO files(id, filename, purpose, bytes, created_at) VALUES($1,$2,$3,$4,"
               "$5) ON CONFLICT(id) DO UPDATE SET filename = $2, purpose = $3, bytes = $4,"
               " created_at = $5",
               5, v, NULL, err);
}

static inf_status pg_file_get(struct inf__store *s, const char *id, struct inf_jobs_file *f,
                              struct inf_error *err)
{
    const char *v[] = {id};
    PGresult *r = pq((struct pg *)s, "SELECT " FILE_COLS " FROM files WHERE id = $1", 1, v, NULL,
                     NULL, 0, err);
    if (!r)
        return err->code;
    bool found = PQntuples(r) == 1;
    if (found)
        file_row(r, 0, f);
    PQclear(r);
    return found ? INF_OK : inf_error_set(err, INF_ENOTFOUND, "no file with id '%.64s'", id);
}

static inf_status pg_file_list(struct inf__store *s, const char *purpose, const char *after,
                               int limit, struct inf_jobs_file **out, size_t *n, bool *has_more,
                               struct inf_error *err)
{
    *out = NULL;
    *n = 0;
    *has_more = false;
    char b[24];
    const char *v[] = {purpose, after, I64(b, limit + 1)};
    PGresult *r = pq((struct pg *)s,
                     "SELECT " FILE_COLS " FROM files WHERE ($1::text IS NULL OR purpose = $1) AND"
                     " ($2::text IS NULL OR seq < (SELECT seq FROM files WHERE id = $2))"
                     " ORDER BY seq DESC LIMIT $3",
                     3, v, NULL, NULL, 0, err);
    if (!r)
        return err->code;
    int rows = PQntuples(r);
    struct inf_jobs_file *a = calloc((size_t)rows + 1, sizeof(*a));
    if (!a) {
        PQclear(r);
        return inf_error_set(err, INF_ENOMEM, "out of memory");
    }
    for (int i = 0; i < rows; i++)
        file_row(r, i, &a[i]);
    PQclear(r);
    *n = (size_t)rows;
    if (*n > (size_t)limit) {
        *has_more = true;
        *n = (size_t)limit;
    }
    *out = a;
    return INF_OK;
}

static inf_status pg_file_del(struct inf__store *s, const char *id, struct inf_error *err)
{
    const char *v[] = {id};
    int ch = 0;
    inf_status rc = cmd((struct pg *)s, "DELETE FROM files WHERE id = $1", 1, v, &ch, err);
    if (rc == INF_OK && ch == 0)
        return inf_error_set(err, INF_ENOTFOUND, "no file with id '%.64s'", id);
    return rc;
}

static inf_status pg_blob_put(struct inf__store *s, const char *id, const void *data, size_t len,
                              struct inf_error *err)
{
    if (len > (size_t)INT32_MAX)
        return inf_error_set(err, INF_ELIMIT, "file '%.64s' is too large for a bytea row", id);
    const char *v[] = {id, len ? (const char *)data : ""};
    int lens[] = {0, (int)len};
    int fmts[] = {0, 1}; /* the bytes go as binary: no escaping, no copy */
    PGresult *r = pq((struct pg *)s,
                     "INSERT INTO file_data(id, data) VALUES($1, $2) ON CONFLICT(id) DO UPDATE SET"
                     " data = $2",
                     2, v, lens, fmts, 0, err);
    if (!r)
        return err->code;
    PQclear(r);
    return INF_OK;
}

static inf_status pg_blob_get(struct inf__store *s, const char *id, char **data, size_t *len,
                              struct inf_error *err)
{
    *data = NULL;
    *len = 0;
    const char *v[] = {id};
    PGresult *r =
        pq((struct pg *)s, "SELECT data FROM file_data WHERE id = $1", 1, v, NULL, NULL, 1, err);
    if (!r)
        return err->code;
    if (PQntuples(r) != 1) {
        PQclear(r);
        return inf_error_set(err, INF_ENOTFOUND, "the contents of file '%.64s' are missing", id);
    }
    size_t n = (size_t)PQgetlength(r, 0, 0);
    char *d = malloc(n + 1);
    if (!d) {
        PQclear(r);
        return inf_error_set(err, INF_ENOMEM, "out of memory");
    }
    memcpy(d, PQgetvalue(r, 0, 0), n);
    d[n] = '\0';
    PQclear(r);
    *data = d;
    *len = n;
    return INF_OK;
}

static inf_status pg_blob_del(struct inf__store *s, const char *id, struct inf_error *err)
{
    const char *v[] = {id};
    return cmd((struct pg *)s, "DELETE FROM file_data WHERE id = $1", 1, v, NULL, err);
}

/* ---- batches ----------------------------------------------------------------------------- */

static inf_status pg_batch_put(struct inf__store *s, const char *id, const char *status,
                               const char *obj, struct inf_error *err)
{
    const char *v[] = {id, status, obj};
    inf_status rc = cmd((struct pg *)s,
                        "INSERT INTO batches(id, status, obj) VALUES($1, $2, $3) ON CONFLICT(id) DO"
                        " UPDATE SET status = $2, obj = $3",
                        3, v, NULL, err);
    /* a batch with requests to run: idle workers wake to help (share.c) */
    if (rc == INF_OK && strcmp(status, "in_progress") == 0)
        rc = cmd((struct pg *)s, "NOTIFY inferno_jobs", 0, NULL, NULL, err);
    return rc;
}

static inf_status pg_batch_get(struct inf__store *s, const char *id, char **obj,
                               struct inf_error *err)
{
    *obj = NULL;
    const char *v[] = {id};
    PGresult *r =
        pq((struct pg *)s, "SELECT obj FROM batches WHERE id = $1", 1, v, NULL, NULL, 0, err);
    if (!r)
        return err->code;
    bool found = PQntuples(r) == 1;
    if (found)
        *obj = get_dup(r, 0, 0);
    PQclear(r);
    if (!found)
        return inf_error_set(err, INF_ENOTFOUND, "no batch with id '%.64s'", id);
    return *obj ? INF_OK : inf_error_set(err, INF_ENOMEM, "out of memory");
}

static inf_status pg_batch_list(struct inf__store *s, const char *after, int limit, char ***objs,
                                size_t *n, bool *has_more, struct inf_error *err)
{
    *objs = NULL;
    *n = 0;
    *has_more = false;
    char b[24];
    const char *v[] = {after, I64(b, limit + 1)};
    PGresult *r = pq((struct pg *)s,
                     "SELECT obj FROM batches WHERE $1::text IS NULL OR seq < (SELECT seq FROM"
                     " batches WHERE id = $1) ORDER BY seq DESC LIMIT $2",
                     2, v, NULL, NULL, 0, err);
    if (!r)
        return err->code;
    int rows = PQntuples(r);
    char **a = calloc((size_t)rows + 1, sizeof(*a));
    if (!a) {
        PQclear(r);
        return inf_error_set(err, INF_ENOMEM, "out of memory");
    }
    for (int i = 0; i < rows; i++)
        a[i] = get_dup(r, i, 0);
    PQclear(r);
    *n = (size_t)rows;
    if (*n > (size_t)limit) {
        *has_more = true;
        free(a[limit]);
        a[limit] = NULL;
        *n = (size_t)limit;
    }
    *objs = a;
    return INF_OK;
}

static inf_status pg_req_put(struct inf__store *s, const char *batch, const struct inf__req *rq,
                             size_t n, struct inf_error *err)
{
    for (size_t i = 0; i < n; i++) {
        char b[24];
        const char *v[] = {batch, I64(b, rq[i].line), rq[i].custom_id, rq[i].body};
        inf_status rc = cmd((struct pg *)s,
                            "INSERT INTO batch_requests(batch_id, line, custom_id, body)"
                            " VALUES($1,$2,$3,$4) ON CONFLICT DO NOTHING",
                            4, v, NULL, err);
        if (rc != INF_OK)
            return rc;
    }
    return INF_OK;
}

static inf_status pg_req_pending(struct inf__store *s, const char *batch, struct inf__req **out,
                                 size_t *n, struct inf_error *err)
{
    *out = NULL;
    *n = 0;
    const char *v[] = {batch};
    PGresult *r = pq((struct pg *)s,
                     "SELECT r.line, r.custom_id, r.body FROM batch_requests r WHERE"
                     " r.batch_id = $1 AND NOT EXISTS (SELECT 1 FROM batch_outputs o WHERE"
                     " o.batch_id = $1 AND o.custom_id = r.custom_id) ORDER BY r.line",
                     1, v, NULL, NULL, 0, err);
    if (!r)
        return err->code;
    int rows = PQntuples(r);
    struct inf__req *a = rows ? calloc((size_t)rows, sizeof(*a)) : NULL;
    if (rows && !a) {
        PQclear(r);
        return inf_error_set(err, INF_ENOMEM, "out of memory");
    }
    bool oom = false;
    for (int i = 0; i < rows; i++) {
        a[i].line = get_i64(r, i, 0);
        a[i].custom_id = get_dup(r, i, 1);
        a[i].body = get_dup(r, i, 2);
        oom = oom || !a[i].custom_id || !a[i].body;
    }
    PQclear(r);
    if (oom) {
        inf__req_free(a, (size_t)rows);
        return inf_error_set(err, INF_ENOMEM, "out of memory");
    }
    *out = a;
    *n = (size_t)rows;
    return INF_OK;
}

static inf_status pg_out_put(struct inf__store *s, const char *batch, const char *custom_id,
                             int64_t line, int status, const char *text, struct inf_error *err)
{
    char b[2][24];
    const char *v[] = {batch, custom_id, I64(b[0], line), I64(b[1], status), text};
    /* one statement: the output (first write wins) and its request marked finished */
    return cmd((struct pg *)s,
               "WITH o AS (INSERT INTO batch_outputs(batch_id, custom_id, line, status, text)"
               " VALUES($1,$2,$3,$4,$5) ON CONFLICT DO NOTHING RETURNING 1) UPDATE batch_requests"
               " SET lease_until = -1 WHERE batch_id = $1 AND custom_id = $2",
               5, v, NULL, err);
}

static inf_status pg_out_counts(struct inf__store *s, const char *batch, int64_t *ok,
                                int64_t *failed, struct inf_error *err)
{
    *ok = *failed = 0;
    const char *v[] = {batch};
    PGresult *r = pq((struct pg *)s,
                     "SELECT count(*) FILTER (WHERE status = 200), count(*) FILTER (WHERE status"
                     " <> 200) FROM batch_outputs WHERE batch_id = $1",
                     1, v, NULL, NULL, 0, err);
    if (!r)
        return err->code;
    if (PQntuples(r) == 1) {
        *ok = get_i64(r, 0, 0);
        *failed = get_i64(r, 0, 1);
    }
    PQclear(r);
    return INF_OK;
}

static inf_status pg_out_all(struct inf__store *s, const char *batch, struct inf__out **out,
                             size_t *n, struct inf_error *err)
{
    *out = NULL;
    *n = 0;
    const char *v[] = {batch};
    PGresult *r = pq((struct pg *)s,
                     "SELECT line, status, text FROM batch_outputs WHERE batch_id = $1 ORDER BY"
                     " line",
                     1, v, NULL, NULL, 0, err);
    if (!r)
        return err->code;
    int rows = PQntuples(r);
    struct inf__out *a = rows ? calloc((size_t)rows, sizeof(*a)) : NULL;
    if (rows && !a) {
        PQclear(r);
        return inf_error_set(err, INF_ENOMEM, "out of memory");
    }
    bool oom = false;
    for (int i = 0; i < rows; i++) {
        a[i].line = get_i64(r, i, 0);
        a[i].status = (int)get_i64(r, i, 1);
        a[i].text = get_dup(r, i, 2);
        oom = oom || !a[i].text;
    }
    PQclear(r);
    *out = a;
    *n = (size_t)rows;
    return oom ? inf_error_set(err, INF_ENOMEM, "out of memory") : INF_OK;
}

/* ---- jobs -------------------------------------------------------------------------------- */

#define JOB_COLS                                                                                   \
    "id, kind, state, priority, attempts, max_attempts, not_before, created_at, updated_at, "      \
    "lease_until, ref, lease_owner, payload, result, last_error"

#define JOB_COLS_J                                                                                 \
    "j.id, j.kind, j.state, j.priority, j.attempts, j.max_attempts, j.not_before, j.created_at, "  \
    "j.updated_at, j.lease_until, j.ref, j.lease_owner, j.payload, j.result, j.last_error"

static void job_row(const PGresult *r, int i, struct inf_job *j)
{
    memset(j, 0, sizeof(*j));
    j->id = get_i64(r, i, 0);
    j->kind = (enum inf_job_kind)get_i64(r, i, 1);
    get_copy(r, i, 2, j->state, sizeof(j->state));
    j->priority = (int)get_i64(r, i, 3);
    j->attempts = (int)get_i64(r, i, 4);
    j->max_attempts = (int)get_i64(r, i, 5);
    j->not_before = get_i64(r, i, 6);
    j->created_at = get_i64(r, i, 7);
    j->updated_at = get_i64(r, i, 8);
    j->lease_until = get_i64(r, i, 9);
    get_copy(r, i, 10, j->ref, sizeof(j->ref));
    get_copy(r, i, 11, j->owner, sizeof(j->owner));
    j->payload = get_dup(r, i, 12);
    j->result = get_dup(r, i, 13);
    j->last_error = get_dup(r, i, 14);
}

static inf_status pg_job_add(struct inf__store *s, const struct inf_job_spec *spec, size_t n,
                             int64_t now, int64_t *ids, struct inf_error *err)
{
    struct pg *p = (struct pg *)s;
    for (size_t i = 0; i < n; i++) {
        char b[5][24];
        const char *v[] = {I64(b[0], spec[i].kind),
                           I64(b[1], spec[i].priority),
                           I64(b[2], spec[i].max_attempts),
                           I64(b[3], spec[i].not_before),
                           I64(b[4], now),
                           spec[i].ref ? spec[i].ref : "",
                           spec[i].payload};
        PGresult *r = pq(p,
                         "INSERT INTO jobs(kind, state, priority, max_attempts, not_before,"
                         " created_at, updated_at, ref, payload) VALUES($1, 'queued', $2, $3, $4,"
                         " $5, $5, $6, $7) RETURNING id",
                         7, v, NULL, NULL, 0, err);
        if (!r)
            return err->code;
        if (ids)
            ids[i] = PQntuples(r) == 1 ? get_i64(r, 0, 0) : 0;
        PQclear(r);
    }
    /* delivered at commit to every LISTENer: idle workers anywhere wake up */
    return n ? cmd(p, "NOTIFY inferno_jobs", 0, NULL, NULL, err) : INF_OK;
}

static inf_status pg_job_claim(struct inf__store *s, const char *owner, int64_t now,
                               int64_t lease_until_ms, struct inf_job *out, struct inf_error *err)
{
    char b[3][24];
    const char *v[] = {owner, I64(b[0], lease_until_ms), I64(b[1], now), I64(b[2], now * 1000)};
    /* one statement: the row is chosen and locked (skipping rows other claims hold) and its
       lease written before the lock is released at the statement's commit. The choice is a
       CTE: evaluated once (a subquery in the WHERE may be run again for a row's recheck and
       then lock, and update, a second row) */
    PGresult *r =
        pq((struct pg *)s,
           "WITH c AS (SELECT id FROM jobs WHERE (state = 'queued' AND not_before <= $3)"
           " OR (state = 'running' AND lease_until < $4) ORDER BY priority DESC, id LIMIT"
           " 1 FOR UPDATE SKIP LOCKED) UPDATE jobs j SET state = 'running', lease_owner ="
           " $1, lease_until = $2, updated_at = $3 FROM c WHERE j.id = c.id RETURNING " JOB_COLS_J,
           4, v, NULL, NULL, 0, err);
    if (!r)
        return err->code;
    bool got = PQntuples(r) == 1;
    if (got)
        job_row(r, 0, out);
    PQclear(r);
    return got ? INF_OK : INF_ENOTFOUND;
}

static inf_status pg_job_heartbeat(struct inf__store *s, int64_t id, const char *owner,
                                   int64_t lease_until_ms, struct inf_error *err)
{
    char b[2][24];
    const char *v[] = {I64(b[0], lease_until_ms), I64(b[1], id), owner};
    int ch = 0;
    inf_status rc = cmd((struct pg *)s,
                        "UPDATE jobs SET lease_until = $1 WHERE id = $2 AND lease_owner = $3 AND"
                        " state = 'running'",
                        3, v, &ch, err);
    if (rc == INF_OK && ch == 0)
        return inf_error_set(err, INF_ENOTFOUND, "job %lld: the lease is lost", (long long)id);
    return rc;
}

static inf_status pg_job_finish(struct inf__store *s, int64_t id, const char *owner,
                                const char *state, int attempts, int64_t not_before,
                                const char *error, const char *result, int64_t now,
                                struct inf_error *err)
{
    char b[4][24];
    const char *v[] = {state,  I64(b[0], attempts), I64(b[1], not_before), error,
                       result, I64(b[2], now),      I64(b[3], id),         owner};
    int ch = 0;
    inf_status rc = cmd((struct pg *)s,
                        "UPDATE jobs SET state = $1, attempts = $2, not_before = $3, last_error ="
                        " coalesce($4, last_error), result = coalesce($5, result), updated_at ="
                        " $6, lease_owner = '', lease_until = 0 WHERE id = $7 AND lease_owner = $8"
                        " AND state = 'running'",
                        8, v, &ch, err);
    if (rc == INF_OK && ch == 0)
        return inf_error_set(err, INF_ENOTFOUND, "job %lld: the lease is lost", (long long)id);
    return rc;
}

static inf_status pg_job_get(struct inf__store *s, int64_t id, struct inf_job *out,
                             struct inf_error *err)
{
    char b[24];
    const char *v[] = {I64(b, id)};
    PGresult *r =
        pq((struct pg *)s, "SELECT " JOB_COLS " FROM jobs WHERE id = $1", 1, v, NULL, NULL, 0, err);
    if (!r)
        return err->code;
    bool got = PQntuples(r) == 1;
    if (got)
        job_row(r, 0, out);
    PQclear(r);
    return got ? INF_OK : inf_error_set(err, INF_ENOTFOUND, "no job %lld", (long long)id);
}

static inf_status pg_job_list(struct inf__store *s, const char *state, int limit,
                              struct inf_job **out, size_t *n, struct inf_error *err)
{
    *out = NULL;
    *n = 0;
    char b[24];
    const char *v[] = {state, I64(b, limit)};
    PGresult *r = pq((struct pg *)s,
                     "SELECT " JOB_COLS " FROM jobs WHERE $1::text IS NULL OR state = $1 ORDER BY"
                     " id DESC LIMIT $2",
                     2, v, NULL, NULL, 0, err);
    if (!r)
        return err->code;
    int rows = PQntuples(r);
    struct inf_job *a = calloc((size_t)rows + 1, sizeof(*a));
    if (!a) {
        PQclear(r);
        return inf_error_set(err, INF_ENOMEM, "out of memory");
    }
    for (int i = 0; i < rows; i++)
        job_row(r, i, &a[i]);
    PQclear(r);
    *out = a;
    *n = (size_t)rows;
    return INF_OK;
}

static inf_status pg_job_set_state(struct inf__store *s, int64_t id, const char *const *from,
                                   const char *to, bool reset_attempts, int64_t now,
                                   struct inf_error *err)
{
    /* from[] as a text[] literal: the states are our own words, no quoting needed */
    char arr[256] = "{";
    for (const char *const *f = from; *f; f++) {
        size_t k = strlen(arr);
        snprintf(arr + k, sizeof(arr) - k, "%s%s", f == from ? "" : ",", *f);
    }
    size_t k = strlen(arr);
    snprintf(arr + k, sizeof(arr) - k, "}");
    char b[2][24];
    const char *v[] = {to, I64(b[0], now), reset_attempts ? "t" : "f", I64(b[1], id), arr};
    int ch = 0;
    inf_status rc = cmd((struct pg *)s,
                        "UPDATE jobs SET state = $1, updated_at = $2, attempts = CASE WHEN $3 THEN"
                        " 0 ELSE attempts END, not_before = CASE WHEN $3 THEN 0 ELSE not_before"
                        " END, lease_owner = '', lease_until = 0 WHERE id = $4 AND state ="
                        " ANY($5::text[])",
                        5, v, &ch, err);
    if (rc != INF_OK || ch == 1)
        return rc;
    struct inf_job j;
    if (pg_job_get(s, id, &j, err) != INF_OK)
        return err->code;
    inf_job_release(&j);
    return inf_error_set(err, INF_EINVAL, "job %lld is %s", (long long)id, j.state);
}

static inf_status pg_job_purge(struct inf__store *s, int64_t before, int64_t *n,
                               struct inf_error *err)
{
    char b[24];
    const char *v[] = {I64(b, before)};
    int ch = 0;
    inf_status rc = cmd((struct pg *)s,
                        "DELETE FROM jobs WHERE state IN ('done', 'dead', 'cancelled') AND"
                        " updated_at < $1",
                        1, v, &ch, err);
    *n = ch;
    return rc;
}

static inf_status pg_job_reap(struct inf__store *s, bool (*dead)(void *ctx, const char *owner),
                              void *ctx, struct inf_error *err)
{
    struct pg *p = (struct pg *)s;
    PGresult *r = pq(p,
                     "SELECT id, lease_owner FROM jobs WHERE state = 'running' AND lease_until > 0"
                     " LIMIT 256",
                     0, NULL, NULL, NULL, 0, err);
    if (!r)
        return err->code;
    inf_status rc = INF_OK;
    for (int i = 0; rc == INF_OK && i < PQntuples(r); i++) {
        const char *owner = PQgetvalue(r, i, 1);
        if (!dead(ctx, owner))
            continue;
        /* only if still that owner's: another worker may have taken it meanwhile */
        const char *v[] = {PQgetvalue(r, i, 0), owner};
        rc = cmd(p,
                 "UPDATE jobs SET lease_until = 0 WHERE id = $1 AND lease_owner = $2 AND state ="
                 " 'running'",
                 2, v, NULL, err);
    }
    PQclear(r);
    return rc;
}

/* ---- schedules --------------------------------------------------------------------------- */

#define SCHED_COLS "id, expr, tz, batch_path, endpoint, paused, catch_up, next_run, last_run"

static void sched_row(const PGresult *r, int i, struct inf_schedule *c)
{
    memset(c, 0, sizeof(*c));
    c->id = get_i64(r, i, 0);
    get_copy(r, i, 1, c->expr, sizeof(c->expr));
    get_copy(r, i, 2, c->tz, sizeof(c->tz));
    get_copy(r, i, 3, c->batch_path, sizeof(c->batch_path));
    get_copy(r, i, 4, c->endpoint, sizeof(c->endpoint));
    c->paused = get_bool(r, i, 5);
    c->catch_up = get_bool(r, i, 6);
    c->next_run = get_i64(r, i, 7);
    c->last_run = get_i64(r, i, 8);
}

static inf_status pg_sched_add(struct inf__store *s, const struct inf_schedule *c, int64_t *id,
                               struct inf_error *err)
{
    char b[2][24];
    const char *v[] = {c->expr,
                       c->tz,
                       c->batch_path,
                       c->endpoint,
                       c->paused ? "t" : "f",
                       c->catch_up ? "t" : "f",
                       I64(b[0], c->next_run),
                       I64(b[1], c->last_run)};
    PGresult *r = pq((struct pg *)s,
                     "INSERT INTO schedules(expr, tz, batch_path, endpoint, paused, catch_up,"
                     " next_run, last_run) VALUES($1,$2,$3,$4,$5,$6,$7,$8) RETURNING id",
                     8, v, NULL, NULL, 0, err);
    if (!r)
        return err->code;
    if (id)
        *id = PQntuples(r) == 1 ? get_i64(r, 0, 0) : 0;
    PQclear(r);
    return INF_OK;
}

static inf_status pg_sched_list(struct inf__store *s, struct inf_schedule **out, size_t *n,
                                struct inf_error *err)
{
    *out = NULL;
    *n = 0;
    PGresult *r = pq((struct pg *)s, "SELECT " SCHED_COLS " FROM schedules ORDER BY id", 0, NULL,
                     NULL, NULL, 0, err);
    if (!r)
        return err->code;
    int rows = PQntuples(r);
    struct inf_schedule *a = rows ? calloc((size_t)rows, sizeof(*a)) : NULL;
    if (rows && !a) {
        PQclear(r);
        return inf_error_set(err, INF_ENOMEM, "out of memory");
    }
    for (int i = 0; i < rows; i++)
        sched_row(r, i, &a[i]);
    PQclear(r);
    *out = a;
    *n = (size_t)rows;
    return INF_OK;
}

static inf_status pg_sched_del(struct inf__store *s, int64_t id, struct inf_error *err)
{
    char b[24];
    const char *v[] = {I64(b, id)};
    int ch = 0;
    inf_status rc = cmd((struct pg *)s, "DELETE FROM schedules WHERE id = $1", 1, v, &ch, err);
    if (rc == INF_OK && ch == 0)
        return inf_error_set(err, INF_ENOTFOUND, "no schedule %lld", (long long)id);
    return rc;
}

static inf_status pg_sched_update(struct inf__store *s, const struct inf_schedule *c,
                                  struct inf_error *err)
{
    char b[3][24];
    const char *v[] = {c->expr,
                       c->tz,
                       c->batch_path,
                       c->endpoint,
                       c->paused ? "t" : "f",
                       c->catch_up ? "t" : "f",
                       I64(b[0], c->next_run),
                       I64(b[1], c->last_run),
                       I64(b[2], c->id)};
    int ch = 0;
    inf_status rc = cmd((struct pg *)s,
                        "UPDATE schedules SET expr = $1, tz = $2, batch_path = $3, endpoint = $4,"
                        " paused = $5, catch_up = $6, next_run = $7, last_run = $8 WHERE id = $9",
                        9, v, &ch, err);
    if (rc == INF_OK && ch == 0)
        return inf_error_set(err, INF_ENOTFOUND, "no schedule %lld", (long long)c->id);
    return rc;
}

/* ---- one batch, several workers ---------------------------------------------------------- */

static inf_status pg_req_claim(struct inf__store *s, const char *batch, const char *owner, int max,
                               int64_t now_ms, int64_t lease_until_ms, struct inf__req **out,
                               size_t *n, struct inf_error *err)
{
    *out = NULL;
    *n = 0;
    char b[3][24];
    const char *v[] = {batch, owner, I64(b[0], lease_until_ms), I64(b[1], now_ms), I64(b[2], max)};
    PGresult *r = pq((struct pg *)s,
                     "WITH c AS (SELECT q.custom_id FROM batch_requests q WHERE q.batch_id = $1"
                     " AND q.lease_until >= 0 AND q.lease_until < $4 AND NOT EXISTS (SELECT 1"
                     " FROM batch_outputs o WHERE o.batch_id = $1 AND o.custom_id = q.custom_id)"
                     " ORDER BY q.line LIMIT $5 FOR UPDATE SKIP LOCKED) UPDATE batch_requests r"
                     " SET lease_owner = $2,"
                     " lease_until = $3 FROM c WHERE r.batch_id = $1 AND r.custom_id = c.custom_id"
                     " RETURNING r.line, r.custom_id, r.body",
                     5, v, NULL, NULL, 0, err);
    if (!r)
        return err->code;
    int rows = PQntuples(r);
    struct inf__req *a = rows ? calloc((size_t)rows, sizeof(*a)) : NULL;
    bool oom = rows && !a;
    for (int i = 0; a && i < rows; i++) {
        a[i].line = get_i64(r, i, 0);
        a[i].custom_id = get_dup(r, i, 1);
        a[i].body = get_dup(r, i, 2);
        oom = oom || !a[i].custom_id || !a[i].body;
    }
    PQclear(r);
    if (oom) {
        inf__req_free(a, a ? (size_t)rows : 0);
        return inf_error_set(err, INF_ENOMEM, "out of memory");
    }
    *out = a;
    *n = (size_t)rows;
    return INF_OK;
}

static inf_status pg_req_renew(struct inf__store *s, const char *batch, const char *owner,
                               int64_t lease_until_ms, struct inf_error *err)
{
    char b[24];
    const char *v[] = {batch, owner, I64(b, lease_until_ms)};
    return cmd((struct pg *)s,
               "UPDATE batch_requests r SET lease_until = $3 WHERE r.batch_id = $1 AND"
               " r.lease_owner = $2 AND r.lease_until > 0 AND NOT EXISTS (SELECT 1 FROM"
               " batch_outputs o WHERE o.batch_id = $1 AND o.custom_id = r.custom_id)",
               3, v, NULL, err);
}

static inf_status pg_req_reap(struct inf__store *s, const char *batch,
                              bool (*dead)(void *ctx, const char *owner), void *ctx,
                              struct inf_error *err)
{
    struct pg *p = (struct pg *)s;
    const char *v[] = {batch};
    PGresult *r = pq(p,
                     "SELECT DISTINCT lease_owner FROM batch_requests WHERE batch_id = $1 AND"
                     " lease_until > 0 AND lease_owner <> ''",
                     1, v, NULL, NULL, 0, err);
    if (!r)
        return err->code;
    inf_status rc = INF_OK;
    for (int i = 0; rc == INF_OK && i < PQntuples(r); i++) {
        const char *owner = PQgetvalue(r, i, 0);
        if (!dead(ctx, owner))
            continue;
        const char *w[] = {batch, owner};
        rc = cmd(p,
                 "UPDATE batch_requests SET lease_until = 0 WHERE batch_id = $1 AND lease_owner ="
                 " $2",
                 2, w, NULL, err);
    }
    PQclear(r);
    return rc;
}

static inf_status pg_batch_to_help(struct inf__store *s, int64_t now_ms, char *id, size_t size,
                                   struct inf_error *err)
{
    char b[24];
    const char *v[] = {I64(b, now_ms)};
    PGresult *r = pq((struct pg *)s,
                     "SELECT j.ref FROM jobs j JOIN batches b ON b.id = j.ref WHERE j.kind = 0 AND"
                     " j.state = 'running' AND b.status = 'in_progress' AND EXISTS (SELECT 1 FROM"
                     " batch_requests q WHERE q.batch_id = j.ref AND q.lease_until >= 0 AND"
                     " q.lease_until < $1 AND NOT"
                     " EXISTS (SELECT 1 FROM batch_outputs o WHERE o.batch_id = q.batch_id AND"
                     " o.custom_id = q.custom_id)) ORDER BY j.priority DESC, j.id LIMIT 1",
                     1, v, NULL, NULL, 0, err);
    if (!r)
        return err->code;
    bool got = PQntuples(r) == 1;
    if (got)
        get_copy(r, 0, 0, id, size);
    PQclear(r);
    return got ? INF_OK : INF_ENOTFOUND;
}

static inf_status pg_sched_claim(struct inf__store *s, int64_t id, int64_t due, int64_t next,
                                 int64_t now, bool *won, struct inf_error *err)
{
    char b[4][24];
    const char *v[] = {I64(b[0], id), I64(b[1], due), I64(b[2], next), I64(b[3], now)};
    int ch = 0;
    inf_status rc = cmd((struct pg *)s,
                        "UPDATE schedules SET next_run = $3, last_run = $4 WHERE id = $1 AND"
                        " next_run = $2 AND NOT paused",
                        4, v, &ch, err);
    *won = rc == INF_OK && ch == 1;
    return rc;
}

/* store.h's sched_advance: the same conditional update; INF_EEXIST when another process took
   this run (or the schedule was paused meanwhile) */
static inf_status pg_sched_advance(struct inf__store *s, int64_t id, int64_t from, int64_t to,
                                   int64_t now, struct inf_error *err)
{
    bool won = false;
    inf_status rc = pg_sched_claim(s, id, from, to, now, &won, err);
    if (rc == INF_OK && !won)
        return INF_EEXIST;
    return rc;
}

/* ---- waking idle workers ----------------------------------------------------------------- */

/* Under lmu: make sure lc is connected and listening (one try: the caller polls again). */
static bool listen_conn(struct pg *p)
{
    if (p->lc && PQstatus(p->lc) == CONNECTION_OK)
        return true;
    if (p->lc)
        PQfinish(p->lc);
    p->lc = connect_quiet(p->url);
    if (!p->lc || PQstatus(p->lc) != CONNECTION_OK)
        return false;
    PGresult *r = PQexec(p->lc, "LISTEN inferno_jobs");
    bool ok = r && PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    return ok;
}

static bool pg_wait_work(struct inf__store *s, int timeout_ms)
{
    struct pg *p = (struct pg *)s;
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    long long ns = dl.tv_nsec + (long long)timeout_ms * 1000000LL;
    dl.tv_sec += (time_t)(ns / 1000000000LL);
    dl.tv_nsec = (long)(ns % 1000000000LL);
    pthread_mutex_lock(&p->lmu);
    uint64_t gen = p->wake_gen;
    if (p->polling) { /* another thread watches the socket: wait for its news */
        while (p->polling && p->wake_gen == gen)
            if (pthread_cond_timedwait(&p->lcv, &p->lmu, &dl) != 0)
                break;
        bool woken = p->wake_gen != gen;
        pthread_mutex_unlock(&p->lmu);
        return woken;
    }
    if (!listen_conn(p)) {
        pthread_mutex_unlock(&p->lmu);
        usleep((useconds_t)timeout_ms * 1000); /* no database: the caller's poll goes on */
        return false;
    }
    p->polling = true;
    PGconn *lc = p->lc;
    pthread_mutex_unlock(&p->lmu);
    bool woken = false;
    struct pollfd pfd = {.fd = PQsocket(lc), .events = POLLIN};
    /* notifications that came with an earlier reply are already queued */
    PQconsumeInput(lc);
    for (PGnotify *nt; (nt = PQnotifies(lc)); PQfreemem(nt))
        woken = true;
    if (!woken && pfd.fd >= 0 && poll(&pfd, 1, timeout_ms) > 0) {
        PQconsumeInput(lc);
        for (PGnotify *nt; (nt = PQnotifies(lc)); PQfreemem(nt))
            woken = true;
    }
    pthread_mutex_lock(&p->lmu);
    p->polling = false;
    if (woken)
        p->wake_gen++;
    pthread_cond_broadcast(&p->lcv);
    pthread_mutex_unlock(&p->lmu);
    return woken;
}

/* ---- opening ----------------------------------------------------------------------------- */

static const struct inf__store_ops pg_ops = {
    .close = pg_close,
    .begin = pg_begin,
    .commit = pg_commit,
    .rollback = pg_rollback,
    .file_put = pg_file_put,
    .file_get = pg_file_get,
    .file_list = pg_file_list,
    .file_del = pg_file_del,
    .batch_put = pg_batch_put,
    .batch_get = pg_batch_get,
    .batch_list = pg_batch_list,
    .req_put = pg_req_put,
    .req_pending = pg_req_pending,
    .out_put = pg_out_put,
    .out_counts = pg_out_counts,
    .out_all = pg_out_all,
    .job_add = pg_job_add,
    .job_claim = pg_job_claim,
    .job_heartbeat = pg_job_heartbeat,
    .job_finish = pg_job_finish,
    .job_get = pg_job_get,
    .job_list = pg_job_list,
    .job_set_state = pg_job_set_state,
    .job_purge = pg_job_purge,
    .job_reap = pg_job_reap,
    .sched_add = pg_sched_add,
    .sched_list = pg_sched_list,
    .sched_del = pg_sched_del,
    .sched_update = pg_sched_update,
    .wait_work = pg_wait_work,
    .blob_put = pg_blob_put,
    .blob_get = pg_blob_get,
    .blob_del = pg_blob_del,
    .req_claim = pg_req_claim,
    .req_renew = pg_req_renew,
    .req_reap = pg_req_reap,
    .batch_to_help = pg_batch_to_help,
    .sched_advance = pg_sched_advance,
};

/* Apply the migrations past the stored version, in one transaction under an advisory lock. */
static inf_status migrate(struct pg *p, struct inf_error *err)
{
    inf_status rc = pg_begin(&p->base, err);
    if (rc != INF_OK)
        return rc;
    /* the lock serialises processes that start at once; it is released at commit */
    rc = cmd(p, "SELECT pg_advisory_xact_lock(" MIGRATE_LOCK ")", 0, NULL, NULL, err);
    if (rc == INF_OK)
        rc = cmd(p, "CREATE TABLE IF NOT EXISTS inferno_schema(version integer NOT NULL)", 0, NULL,
                 NULL, err);
    int version = 0;
    bool have_row = false;
    if (rc == INF_OK) {
        PGresult *r = pq(p, "SELECT version FROM inferno_schema", 0, NULL, NULL, NULL, 0, err);
        if (!r)
            rc = err->code;
        else {
            have_row = PQntuples(r) > 0;
            version = have_row ? (int)get_i64(r, 0, 0) : 0;
            PQclear(r);
        }
    }
    if (rc == INF_OK && version > N_MIGRATIONS)
        rc = inf_error_set(err, INF_EFORMAT,
                           "jobs store (postgresql): the schema is version %d, newer than this "
                           "build's %d: upgrade inferno",
                           version, N_MIGRATIONS);
    for (int v = version; rc == INF_OK && v < N_MIGRATIONS; v++) {
        PGresult *r = PQexec(p->c, migrations[v]); /* several statements: simple protocol */
        if (!r || PQresultStatus(r) != PGRES_COMMAND_OK) {
            char what[48];
            snprintf(what, sizeof(what), "migration %d", v + 1);
            rc = pg_fail(p, err, what, r);
        }
        PQclear(r);
    }
    if (rc == INF_OK && version < N_MIGRATIONS) {
        char b[24];
        const char *v[] = {I64(b, N_MIGRATIONS)};
        rc = cmd(p,
                 have_row ? "UPDATE inferno_schema SET version = $1"
                          : "INSERT INTO inferno_schema(version) VALUES($1)",
                 1, v, NULL, err);
        if (rc == INF_OK)
            INF_LOG_INFO("jobs", "postgresql: schema migrated from version %d to %d", version,
                         N_MIGRATIONS);
    }
    if (rc == INF_OK)
        return pg_commit(&p->base, err);
    pg_rollback(&p->base);
    return rc;
}

inf_status inf__store_pg_open(const char *url, struct inf__store **out, struct inf_error *err)
{
    *out = NULL;
    struct pg *p = calloc(1, sizeof(*p));
    if (!p || !(p->url = strdup(url))) {
        free(p);
        return inf_error_set(err, INF_ENOMEM, "out of memory");
    }
    p->base.ops = &pg_ops;
    pthread_mutex_init(&p->lmu, NULL);
    pthread_cond_init(&p->lcv, NULL);
    /* at start, fail fast: a wrong URL should not wait for the reconnect window */
    p->c = connect_quiet(url);
    if (!p->c || PQstatus(p->c) != CONNECTION_OK) {
        char m[300];
        snprintf(m, sizeof(m), "%s", p->c ? PQerrorMessage(p->c) : "out of memory");
        trim_msg(m);
        inf_error_set(err, INF_EIO, "cannot open the jobs store on postgresql: %s", m);
        pg_close(&p->base);
        return err->code;
    }
    if (migrate(p, err) != INF_OK) {
        pg_close(&p->base);
        return err->code;
    }
    *out = &p->base;
    return INF_OK;
}
