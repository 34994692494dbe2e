/*
 * store_sqlite.c - the jobs store on SQLite in WAL mode (jobs/store.h). One connection, used
 * under the jobs handle's lock; other processes (the CLI while a server runs) share the file
 * through WAL and a busy timeout.
 */
#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/files.h"
#include "jobs/store.h"

struct sq {
    struct inf__store base;
    sqlite3 *db;
};

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS files(id TEXT PRIMARY KEY, filename TEXT NOT NULL,"
    " purpose TEXT NOT NULL, bytes INTEGER NOT NULL, created_at INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS batches(id TEXT PRIMARY KEY, seq INTEGER NOT NULL,"
    " status TEXT NOT NULL, obj TEXT NOT NULL);"
    "CREATE INDEX IF NOT EXISTS batches_seq ON batches(seq);"
    "CREATE TABLE IF NOT EXISTS batch_requests(batch_id TEXT NOT NULL, line INTEGER NOT NULL,"
    " custom_id TEXT NOT NULL, body TEXT NOT NULL, PRIMARY KEY(batch_id, custom_id));"
    "CREATE TABLE IF NOT EXISTS batch_outputs(batch_id TEXT NOT NULL, custom_id TEXT NOT NULL,"
    " line INTEGER NOT NULL, status INTEGER NOT NULL, text TEXT NOT NULL,"
    " PRIMARY KEY(batch_id, custom_id));"
    "CREATE TABLE IF NOT EXISTS jobs(id INTEGER PRIMARY KEY AUTOINCREMENT, kind INTEGER NOT NULL,"
    " state TEXT NOT NULL, priority INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,"
    " max_attempts INTEGER NOT NULL, not_before INTEGER NOT NULL, created_at INTEGER NOT NULL,"
    " updated_at INTEGER NOT NULL, lease_owner TEXT NOT NULL DEFAULT '',"
    " lease_until INTEGER NOT NULL DEFAULT 0, ref TEXT NOT NULL DEFAULT '', payload TEXT,"
    " result TEXT, last_error TEXT);"
    "CREATE INDEX IF NOT EXISTS jobs_ready ON jobs(state, priority, id);"
    "CREATE TABLE IF NOT EXISTS schedules(id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " expr TEXT NOT NULL, tz TEXT NOT NULL, batch_path TEXT NOT NULL, endpoint TEXT NOT NULL,"
    " paused INTEGER NOT NULL, catch_up INTEGER NOT NULL, next_run INTEGER NOT NULL,"
    " last_run INTEGER NOT NULL);";

static inf_status sq_fail(struct sq *q, struct inf_error *err, const char *what)
{
    return inf_error_set(err, INF_EIO, "jobs store: %s: %s", what, sqlite3_errmsg(q->db));
}

static sqlite3_stmt *prep(struct sq *q, const char *sql, struct inf_error *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(q->db, sql, -1, &st, NULL) != SQLITE_OK) {
        sq_fail(q, err, "prepare");
        return NULL;
    }
    return st;
}

static void bind_text(sqlite3_stmt *st, int i, const char *s)
{
    if (s)
        sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(st, i);
}

static char *col_dup(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return t ? strdup((const char *)t) : NULL;
}

static void col_copy(sqlite3_stmt *st, int i, char *out, size_t n)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    snprintf(out, n, "%s", t ? (const char *)t : "");
}

/* Run a statement that returns no rows; *changes gets the rows changed (may be NULL). */
static inf_status run(struct sq *q, sqlite3_stmt *st, int *changes, struct inf_error *err)
{
    if (!st)
        return err->code ? err->code : INF_EIO;
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        return sq_fail(q, err, "write");
    if (changes)
        *changes = sqlite3_changes(q->db);
    return INF_OK;
}

static void sq_close(struct inf__store *s)
{
    struct sq *q = (struct sq *)s;
    if (!q)
        return;
    sqlite3_close(q->db);
    free(q);
}

static inf_status sq_begin(struct inf__store *s, struct inf_error *err)
{
    struct sq *q = (struct sq *)s;
    return sqlite3_exec(q->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK
               ? INF_OK
               : sq_fail(q, err, "begin");
}

static inf_status sq_commit(struct inf__store *s, struct inf_error *err)
{
    struct sq *q = (struct sq *)s;
    if (sqlite3_exec(q->db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK)
        return INF_OK;
    sq_fail(q, err, "commit");
    sqlite3_exec(q->db, "ROLLBACK", NULL, NULL, NULL);
    return err->code;
}

static void sq_rollback(struct inf__store *s)
{
    struct sq *q = (struct sq *)s;
    sqlite3_exec(q->db, "ROLLBACK", NULL, NULL, NULL);
}

/* ---- files ---------------------------------------------------------------------------------- */

static void file_row(sqlite3_stmt *st, struct inf_jobs_file *f)
{
    memset(f, 0, sizeof(*f));
    col_copy(st, 0, f->id, sizeof(f->id));
    col_copy(st, 1, f->filename, sizeof(f->filename));
    col_copy(st, 2, f->purpose, sizeof(f->purpose));
    f->bytes = sqlite3_column_int64(st, 3);
    f->created_at = sqlite3_column_int64(st, 4);
}

static inf_status sq_file_put(struct inf__store *s, const struct inf_jobs_file *f,
                              struct inf_error *err)
{
    struct sq *q = (struct sq *)s;
    sqlite3_stmt *st = prep(q,
                            "INSERT OR REPLACE INTO files(id, filename, purpose, bytes, "
                            "created_at) VALUES(?,?,?,?,?)",
                            err);
    if (st) {
        bind_text(st, 1, f->id);
        bind_text(st, 2, f->filename);
        bind_text(st, 3, f->purpose);
        sqlite3_bind_int64(st, 4, f->bytes);
        sqlite3_bind_int64(st, 5, f->created_at);
    }
    return run(q, st, NULL, err);
}

static inf_status sq_file_get(struct inf__store *s, const char *id, struct inf_jobs_file *f,
                              struct inf_error *err)
{
    struct sq *q = (struct sq *)s;
    sqlite3_stmt *st =
        prep(q, "SELECT id, filename, purpose, bytes, created_at FROM files WHERE id = ?", err);
    if (!st)
        return err->code;
    bind_text(st, 1, id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        file_row(st, f);
    sqlite3_finalize(st);
    if (rc == SQLITE_ROW)
        return INF_OK;
    if (rc != SQLITE_DONE)
        return sq_fail(q, err, "read");
    return inf_error_set(err, INF_ENOTFOUND, "no file with id '%.64s'", id);
}

static inf_status sq_file_list(struct inf__store *s, const char *purpose, const char *after,
                               int limit, struct inf_jobs_file **out, size_t *n, bool *has_more,
                               struct inf_error *err)
{
    struct sq *q = (struct sq *)s;
    *out = NULL;
    *n = 0;
    *has_more = false;
    sqlite3_stmt *st = prep(q,
                            "SELECT id, filename, purpose, bytes, created_at FROM files "
                            "WHERE (?1 IS NULL OR purpose = ?1) AND (?2 IS NULL OR rowid < "
                            "(SELECT rowid FROM files WHERE id = ?2)) ORDER BY rowid DESC LIMIT ?3",
                            err);
    if (!st)
        return err->code;
    bind_text(st, 1, purpose);
    bind_text(st, 2, after);
    sqlite3_bind_int(st, 3, limit + 1);
    struct inf_jobs_file *v = calloc((size_t)limit + 1, sizeof(*v));
    while (v && sqlite3_step(st) == SQLITE_ROW)
        file_row(st, &v[(*n)++]);
    sqlite3_finalize(st);
    if (!v)
        return inf_error_set(err, INF_ENOMEM, "out of memory");
    if (*n > (size_t)limit) {
        *has_more = true;
        *n = (size_t)limit;
    }
    *out = v;
    return INF_OK;
}

static inf_status sq_file_del(struct inf__store *s, const char *id, struct inf_error *err)
{
    struct sq *q = (struct sq *)s;
    sqlite3_stmt *st = prep(q, "DELETE FROM files WHERE id = ?", err);
    if (st)
        bind_text(st, 1, id);
    int ch = 0;
    inf_status rc = run(q, st, &ch, err);
    if (rc == INF_OK && ch == 0)
        return inf_error_set(err, INF_ENOTFOUND, "no file with id '%.64s'", id);
    return rc;
}

/* ---- batches -------------------------------------------------------------------------------- */

static inf_status sq_batch_put(struct inf__store *s, const char *id, const char *status,
                               const char *obj, struct inf_error *err)
{
    struct sq *q = (struct sq *)s;
    sqlite3_stmt *st = prep(q,
                            "INSERT INTO batches(id, seq, status, obj) VALUES(?1, (SELECT "
                            "IFNULL(MAX(seq), 0) + 1 FROM batches), ?2, ?3) ON CONFLICT(id) DO "
                            "UPDATE SET status = ?2, obj = ?3",
                            err);
    if (st) {
        bind_text(st, 1, id);
        bind_text(st, 2, status);
        bind_text(st, 3, obj);
    }
    return run(q, st, NULL, err);
}

static inf_status sq_batch_get(struct inf__store *s, const char *id, char **obj,
                               struct inf_error *err)
{
    struct sq *q = (struct sq *)s;
    *obj = NULL;
    sqlite3_stmt *st = prep(q, "SELECT obj FROM batches WHERE id = ?", err);
    if (!st)
        return err->code;
    bind_text(st, 1, id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *obj = col_dup(st, 0);
    sqlite3_finalize(st);
    if (rc == SQLITE_ROW)
        return *obj ? INF_OK : inf_error_set(err, INF_ENOMEM, "out of memory");
    if (rc != SQLITE_DONE)
        return sq_fail(q, err, "read");
    return inf_error_set(err, INF_ENOTFOUND, "no batch with id '%.64s'", id);
}

static inf_status sq_batch_list(struct inf__store *s, const char *after, int limit, char ***objs,
                                size_t *n, bool *has_more, struct inf_error *err)
{
    struct sq *q = (struct sq *)s;
    *objs = NULL;
    *n = 0;
    *has_more = false;
    sqlite3_stmt *st = prep(q,
                            "SELECT obj FROM batches WHERE ?1 IS NULL OR seq < (SELECT seq FROM "
                            "batches WHERE id = ?1) ORDER BY seq DESC LIMIT ?2",
                            err);
    if (!st)
        return err->code;
    bind_text(st, 1, after);
    sqlite3_bind_int(st, 2, limit + 1);
    char **v = calloc((size_t)limit + 1, sizeof(*v));
    while (v && sqlite3_step(st) == SQLITE_ROW)
        v[(*n)++] = col_dup(st, 0);
    sqlite3_finalize(st);
    if (!v)
        return inf_error_set(err, INF_ENOMEM, "out of memory");
    if (*n > (size_t)limit) {
        *has_more = true;
        free(v[limit]);
        *n = (size_t)limit;
    }
    *objs = v;
    return INF_OK;
}

static inf_status sq_req_put(struct inf__store *s, const char *batch, const struct inf__req *r,
                             size_t n, struct inf_error *err)
{
    struct sq *q = (struct sq *)s;
    sqlite3_stmt *st = prep(q,
                            "INSERT OR IGNORE INTO batch_requests(batch_id, line, custom_id, "
                            "body) VALUES(?,?,?,?)",
                            err);
    if (!st)
        return err->code;
    for (size_t i = 0; i < n; i++) {
        sqlite3_reset(st);
        bind_text(st, 1, batch);
        sqlite3_bind_int64(st, 2, r[i].line);
        bind_text(st, 3, r[i].custom_id);
        bind_text(st, 4, r[i].body);
        if (sqlite3_step(st) != SQLITE_DONE) {
            sqlite3_finalize(st);
            return sq_fail(q, err, "write");
        }
    }
    sqlite3_finalize(st);
    return INF_OK;
}

static inf_status sq_req_pending(struct inf__store *s, const char *batch, struct inf__req **out,
                                 size_t *n, struct inf_error *err)
{
    struct sq *q = (struct sq *)s;
    *out = NULL;
    *n = 0;
    sqlite3_stmt *st = prep(q,
                            "SELECT r.line, r.custom_id, r.body FROM batch_requests r WHERE "
                            "r.batch_id = ?1 AND NOT EXISTS (SELECT 1 FROM batch_outputs o WHERE "
                            "o.batch_id = ?1 AND o.custom_id = r.custom_id) ORDER BY r.line",
                            err);
    if (!st)
        return err->code;
    bind_text(st, 1, batch);
    size_t cap = 0;
    struct inf__req *v = NULL;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 64;
            struct inf__req *nv = realloc(v, cap * sizeof(*v));
            if (!nv)
                break;
            v = nv;
        }
        v[*n].line = sqlite3_column_int64(st, 0);
        v[*n].custom_id = col_dup(st, 1);
        v[*n].body = col_dup(st, 2);
        (*n)++;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        inf__req_free(v, *n);
        *n = 0;
        return rc == SQLITE_ROW ? inf_error_set(err, INF_ENOMEM, "out of memory")
                                : sq_fail(q, err, "read");
    }
    *out = v;
    return INF_OK;
}

static inf_status sq_out_put(struct inf__store *s, const char *batch, const char *custom_id,
                             int64_t line, int status, const char *text, struct inf_error *err)
{
    struct sq *q = (struct sq *)s;
    sqlite3_stmt *st = prep(q,
                            "INSERT OR IGNORE INTO batch_outputs(batch_id, custom_id, line, "
                            "status, text) VALUES(?,?,?,?,?)",
                            err);
    if (st) {
        bind_text(st, 1, batch);
        bind_text(st, 2, custom_id);
        sqlite3_bind_int64(st, 3, line);
        sqlite3_bind_int(st, 4, status);
        bind_text(st, 5, text);
    }
    return run(q, st, NULL, err);
}

static inf_status sq_out_counts(struct inf__store *s, const char *batch, int64_t *ok,
                                int64_t *failed, struct inf_error *err)
{
    struct sq *q = (struct sq *)s;
    *ok = *failed = 0;
    sqlite3_stmt *st = prep(q,
                            "SELECT IFNULL(SUM(status = 200), 0), IFNULL(SUM(status != 200), 0) "
                            "FROM batch_outputs WHERE batch_id = ?",
                            err);
    if (!st)
        return err->code;
    bind_text(st, 1, batch);
    if (sqlite3_step(st) == SQLITE_ROW) {
        *ok = sqlite3_column_int64(st, 0);
        *failed = sqlite3_column_int64(st, 1);
    }
    sqlite3_finalize(st);
    return INF_OK;
}

static inf_status sq_out_all(struct inf__store *s, const char *batch, struct inf__out **out,
                             size_t *n, struct inf_error *err)
{
    struct sq *q = (struct sq *)s;
    *out = NULL;
    *n = 0;
    sqlite3_stmt *st = prep(
        q, "SELECT line, status, text FROM batch_outputs WHERE batch_id = ? ORDER BY line", err);
    if (!st)
        return err->code;
    bind_text(st, 1, batch);
    size_t cap = 0;
    struct inf__out *v = NULL;
    bool oom = false;
    while (sqlite3_step(st) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 64;
            struct inf__out *nv = realloc(v, cap * sizeof(*v));
            if (!nv) {
                oom = true;
                break;
            }
            v = nv;
        }
        v[*n].line = sqlite3_column_int64(st, 0);
        v[*n].status = sqlite3_column_int(st, 1);
        v[*n].text = col_dup(st, 2);
        (*n)++;
    }
    sqlite3_finalize(st);
    *out = v;
    if (oom)
        return inf_error_set(err, INF_ENOMEM, "out of memory");
    return INF_OK;
}

/* ---- jobs ----------------------------------------------------------------------------------- */

#define JOB_COLS                                                                                   \
    "id, kind, state, priority, attempts, max_attempts, not_before, created_at, updated_at, "      \
    "lease_until, ref, lease_owner, payload, result, last_error"

static void job_row(sqlite3_stmt *st, struct inf_job *j)
{
    memset(j, 0, sizeof(*j));
    j->id = sqlite3_column_int64(st, 0);
    j->kind = (enum inf_job_kind)sqlite3_column_int(st, 1);
    col_copy(st, 2, j->state, sizeof(j->state));
    j->priority = sqlite3_column_int(st, 3);
    j->attempts = sqlite3_column_int(st, 4);
    j->max_attempts = sqlite3_column_int(st, 5);
    j->not_before = sqlite3_column_int64(st, 6);
    j->created_at = sqlite3_column_int64(st, 7);
    j->updated_at = sqlite3_column_int64(st, 8);
    j->lease_until = sqlite3_column_int64(st, 9);
    col_copy(st, 10, j->ref, sizeof(j->ref));
    col_copy(st, 11, j->owner, sizeof(j->owner));
    j->payload = col_dup(st, 12);
    j->result = col_dup(st, 13);
    j->last_error = col_dup(st, 14);
}

static inf_status sq_job_add(struct inf__store *s, const struct inf_job_spec *spec, size_t n,
                             int64_t now, int64_t *ids, struct inf_error *err)
{
    struct sq *q = (struct sq *)s;
    sqlite3_stmt *st =
        prep(q,
             "INSERT INTO jobs(kind, state, priority, max_attempts, not_before, "
             "created_at, updated_at, ref, payload) VALUES(?,'queued',?,?,?,?,?,?,?)",
             err);
    if (!st)
        return err->code;
    for (size_t i = 0; i < n; i++) {
        sqlite3_reset(st);
        sqlite3_bind_int(st, 1, (int)spec[i].kind);
        sqlite3_bind_int(st, 2, spec[i].priority);
        sqlite3_bind_int(st, 3, spec[i].max_attempts);
        sqlite3_bind_int64(st, 4, spec[i].not_before);
        sqlite3_bind_int64(st, 5, now);
        sqlite3_bind_int64(st, 6, now);
        bind_text(st, 7, spec[i].ref ? spec[i].ref : "");
        bind_text(st, 8, spec[i].payload);
        if (sqlite3_step(st) != SQLITE_DONE) {
            sqlite3_finalize(st);
            return sq_fail(q, err, "write");
        }
        if (ids)
            ids[i] = sqlite3_last_insert_rowid(q->db);
    }
    sqlite3_finalize(st);
    return INF_OK;
}

static inf_status sq_job_claim(struct inf__store *s, const char *owner, int64_t now,
                               int64_t lease_until_ms, struct inf_job *out, struct inf_error *err)
{
    struct sq *q = (struct sq *)s;
    /* one statement: the choice and the lease are atomic (BEGIN IMMEDIATE is not needed) */
    sqlite3_stmt *st = prep(q,
                            "UPDATE jobs SET state = 'running', lease_owner = ?1, lease_until = "
                            "?2, updated_at = ?3 WHERE id = (SELECT id FROM jobs WHERE (state = "
                            "'queued' AND not_before <= ?3) OR (state = 'running' AND lease_until "
                            "< ?4) ORDER BY priority DESC, id LIMIT 1) RETURNING " JOB_COLS,
                            err);
    if (!st)
        return err->code;
    bind_text(st, 1, owner);
    sqlite3_bind_int64(st, 2, lease_until_ms);
    sqlite3_bind_int64(st, 3, now);
    sqlite3_bind_int64(st, 4, now * 1000);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        job_row(st, out);
    sqlite3_finalize(st);
    if (rc == SQLITE_ROW)
        return INF_OK;
    if (rc != SQLITE_DONE)
        return sq_fail(q, err, "claim");
    return INF_ENOTFOUND;
}

static inf_status sq_job_heartbeat(struct inf__store *s, int64_t id, const char *owner,
                                   int64_t lease_until_ms, struct inf_error *err)
{
    struct sq *q = (struct sq *)s;
    sqlite3_stmt *st = prep(q,
                            "UPDATE jobs SET lease_until = ? WHERE id = ? AND lease_owner = ? AND "
                            "state = 'running'",
                            err);
    if (st) {
        sqlite3_bind_int64(st, 1, lease_until_ms);
        sqlite3_bind_int64(st, 2, id);
        bind_text(st, 3, owner);
    }
    int ch = 0;
    inf_status rc = run(q, st, &ch, err);
    if (rc == INF_OK && ch == 0)
        return inf_error_set(err, INF_ENOTFOUND, "job %lld: the lease is lost", (long long)id);
    return rc;
}

static inf_status sq_job_finish(struct inf__store *s, int64_t id, const char *owner,
                                const char *state, int attempts, int64_t not_before,
                                const char *error, const char *result, int64_t now,
                                struct inf_error *err)
{
    struct sq *q = (struct sq *)s;
    sqlite3_stmt *st = prep(q,
                            "UPDATE jobs SET state = ?1, attempts = ?2, not_before = ?3, "
                            "last_error = IFNULL(?4, last_error), result = IFNULL(?5, result), "
                            "updated_at = ?6, lease_owner = '', lease_until = 0 WHERE id = ?7 AND "
                            "lease_owner = ?8 AND state = 'running'",
                            err);
    if (st) {
        bind_text(st, 1, state);
        sqlite3_bind_int(st, 2, attempts);
        sqlite3_bind_int64(st, 3, not_before);
        bind_text(st, 4, error);
        bind_text(st, 5, result);
        sqlite3_bind_int64(st, 6, now);
        sqlite3_bind_int64(st, 7, id);
        bind_text(st, 8, owner);
    }
    int ch = 0;
    inf_status rc = run(q, st, &ch, err);
    if (rc == INF_OK && ch == 0)
        return inf_error_set(err, INF_ENOTFOUND, "job %lld: the lease is lost", (long long)id);
    return rc;
}

static inf_status sq_job_get(struct inf__store *s, int64_t id, struct inf_job *out,
                             struct inf_error *err)
{
    struct sq *q = (struct sq *)s;
    sqlite3_stmt *st = prep(q, "SELECT " JOB_COLS " FROM jobs WHERE id = ?", err);
    if (!st)
        return err->code;
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        job_row(st, out);
    sqlite3_finalize(st);
    if (rc == SQLITE_ROW)
        return INF_OK;
    return inf_error_set(err, INF_ENOTFOUND, "no job %lld", (long long)id);
}

static inf_status sq_job_list(struct inf__store *s, const char *state, int limit,
                              struct inf_job **out, size_t *n, struct inf_error *err)
{
    struct sq *q = (struct sq *)s;
    *out = NULL;
    *n = 0;
    sqlite3_stmt *st = prep(q,
                            "SELECT " JOB_COLS " FROM jobs WHERE ?1 IS NULL OR state = ?1 ORDER "
                            "BY id DESC LIMIT ?2",
                            err);
    if (!st)
        return err->code;
    bind_text(st, 1, state);
    sqlite3_bind_int(st, 2, limit);
    struct inf_job *v = calloc((size_t)limit + 1, sizeof(*v));
    while (v && sqlite3_step(st) == SQLITE_ROW)
        job_row(st, &v[(*n)++]);
    sqlite3_finalize(st);
    if (!v)
        return inf_error_set(err, INF_ENOMEM, "out of memory");
    *out = v;
    return INF_OK;
}

static inf_status sq_job_set_state(struct inf__store *s, int64_t id, const char *const *from,
                                   const char *to, bool reset_attempts, int64_t now,
                                   struct inf_error *err)
{
    struct inf_job j;
    inf_status rc = sq_job_get(s, id, &j, err);
    if (rc != INF_OK)
        return rc;
    bool ok = false;
    for (const char *const *f = from; *f; f++)
        ok = ok || strcmp(j.state, *f) == 0;
    inf_job_release(&j);
    if (!ok)
        return inf_error_set(err, INF_EINVAL, "job %lld is %s", (long long)id, j.state);
    struct sq *q = (struct sq *)s;
    sqlite3_stmt *st = prep(q,
                            "UPDATE jobs SET state = ?1, updated_at = ?2, attempts = CASE WHEN ?3 "
                            "THEN 0 ELSE attempts END, not_before = CASE WHEN ?3 THEN 0 ELSE "
                            "not_before END, lease_owner = '', lease_until = 0 WHERE id = ?4",
                            err);
    if (st) {
        bind_text(st, 1, to);
        sqlite3_bind_int64(st, 2, now);
        sqlite3_bind_int(st, 3, reset_attempts);
        sqlite3_bind_int64(st, 4, id);
    }
    return run(q, st, NULL, err);
}

static inf_status sq_job_purge(struct inf__store *s, int64_t before, int64_t *n,
                               struct inf_error *err)
{
    struct sq *q = (struct sq *)s;
    sqlite3_stmt *st = prep(q,
                            "DELETE FROM jobs WHERE state IN ('done', 'dead', 'cancelled') AND "
                            "updated_at < ?",
                            err);
    if (st)
        sqlite3_bind_int64(st, 1, before);
    int ch = 0;
    inf_status rc = run(q, st, &ch, err);
    *n = ch;
    return rc;
}

static inf_status sq_job_reap(struct inf__store *s, bool (*dead)(void *ctx, const char *owner),
                              void *ctx, struct inf_error *err)
{
    struct sq *q = (struct sq *)s;
    sqlite3_stmt *st = prep(
        q, "SELECT id, lease_owner FROM jobs WHERE state = 'running' AND lease_until > 0", err);
    if (!st)
        return err->code;
    int64_t ids[64];
    int n = 0;
    while (n < 64 && sqlite3_step(st) == SQLITE_ROW) {
        const char *o = (const char *)sqlite3_column_text(st, 1);
        if (o && dead(ctx, o))
            ids[n++] = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    for (int i = 0; i < n; i++) {
        sqlite3_stmt *u = prep(q, "UPDATE jobs SET lease_until = 0 WHERE id = ?", err);
        if (u)
            sqlite3_bind_int64(u, 1, ids[i]);
        inf_status rc = run(q, u, NULL, err);
        if (rc != INF_OK)
            return rc;
    }
    return INF_OK;
}

/* ---- schedules ------------------------------------------------------------------------------ */

static void sched_row(sqlite3_stmt *st, struct inf_schedule *c)
{
    memset(c, 0, sizeof(*c));
    c->id = sqlite3_column_int64(st, 0);
    col_copy(st, 1, c->expr, sizeof(c->expr));
    col_copy(st, 2, c->tz, sizeof(c->tz));
    col_copy(st, 3, c->batch_path, sizeof(c->batch_path));
    col_copy(st, 4, c->endpoint, sizeof(c->endpoint));
    c->paused = sqlite3_column_int(st, 5);
    c->catch_up = sqlite3_column_int(st, 6);
    c->next_run = sqlite3_column_int64(st, 7);
    c->last_run = sqlite3_column_int64(st, 8);
}

static void sched_bind(sqlite3_stmt *st, const struct inf_schedule *c)
{
    bind_text(st, 1, c->expr);
    bind_text(st, 2, c->tz);
    bind_text(st, 3, c->batch_path);
    bind_text(st, 4, c->endpoint);
    sqlite3_bind_int(st, 5, c->paused);
    sqlite3_bind_int(st, 6, c->catch_up);
    sqlite3_bind_int64(st, 7, c->next_run);
    sqlite3_bind_int64(st, 8, c->last_run);
}

static inf_status sq_sched_add(struct inf__store *s, const struct inf_schedule *c, int64_t *id,
                               struct inf_error *err)
{
    struct sq *q = (struct sq *)s;
    sqlite3_stmt *st = prep(q,
                            "INSERT INTO schedules(expr, tz, batch_path, endpoint, paused, "
                            "catch_up, next_run, last_run) VALUES(?,?,?,?,?,?,?,?)",
                            err);
    if (st)
        sched_bind(st, c);
    inf_status rc = run(q, st, NULL, err);
    if (rc == INF_OK && id)
        *id = sqlite3_last_insert_rowid(q->db);
    return rc;
}

static inf_status sq_sched_list(struct inf__store *s, struct inf_schedule **out, size_t *n,
                                struct inf_error *err)
{
    struct sq *q = (struct sq *)s;
    *out = NULL;
    *n = 0;
    sqlite3_stmt *st = prep(q,
                            "SELECT id, expr, tz, batch_path, endpoint, paused, catch_up, "
                            "next_run, last_run FROM schedules ORDER BY id",
                            err);
    if (!st)
        return err->code;
    size_t cap = 0;
    struct inf_schedule *v = NULL;
    while (sqlite3_step(st) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            struct inf_schedule *nv = realloc(v, cap * sizeof(*v));
            if (!nv)
                break;
            v = nv;
        }
        sched_row(st, &v[(*n)++]);
    }
    sqlite3_finalize(st);
    *out = v;
    return INF_OK;
}

static inf_status sq_sched_del(struct inf__store *s, int64_t id, struct inf_error *err)
{
    struct sq *q = (struct sq *)s;
    sqlite3_stmt *st = prep(q, "DELETE FROM schedules WHERE id = ?", err);
    if (st)
        sqlite3_bind_int64(st, 1, id);
    int ch = 0;
    inf_status rc = run(q, st, &ch, err);
    if (rc == INF_OK && ch == 0)
        return inf_error_set(err, INF_ENOTFOUND, "no schedule %lld", (long long)id);
    return rc;
}

static inf_status sq_sched_update(struct inf__store *s, const struct inf_schedule *c,
                                  struct inf_error *err)
{
    struct sq *q = (struct sq *)s;
    sqlite3_stmt *st = prep(q,
                            "UPDATE schedules SET expr = ?1, tz = ?2, batch_path = ?3, endpoint "
                            "= ?4, paused = ?5, catch_up = ?6, next_run = ?7, last_run = ?8 WHERE "
                            "id = ?9",
                            err);
    if (st) {
        sched_bind(st, c);
        sqlite3_bind_int64(st, 9, c->id);
    }
    int ch = 0;
    inf_status rc = run(q, st, &ch, err);
    if (rc == INF_OK && ch == 0)
        return inf_error_set(err, INF_ENOTFOUND, "no schedule %lld", (long long)c->id);
    return rc;
}

static inf_status sq_sched_advance(struct inf__store *s, int64_t id, int64_t from, int64_t to,
                                   int64_t now, struct inf_error *err)
{
    struct sq *q = (struct sq *)s;
    sqlite3_stmt *st =
        prep(q, "UPDATE schedules SET next_run = ?1, last_run = ?2 WHERE id = ?3 AND next_run = ?4",
             err);
    if (st) {
        sqlite3_bind_int64(st, 1, to);
        sqlite3_bind_int64(st, 2, now);
        sqlite3_bind_int64(st, 3, id);
        sqlite3_bind_int64(st, 4, from);
    }
    int ch = 0;
    inf_status rc = run(q, st, &ch, err);
    if (rc == INF_OK && ch == 0)
        return INF_EEXIST;
    return rc;
}

static const struct inf__store_ops sq_ops = {
    .close = sq_close,
    .begin = sq_begin,
    .commit = sq_commit,
    .rollback = sq_rollback,
    .file_put = sq_file_put,
    .file_get = sq_file_get,
    .file_list = sq_file_list,
    .file_del = sq_file_del,
    .batch_put = sq_batch_put,
    .batch_get = sq_batch_get,
    .batch_list = sq_batch_list,
    .req_put = sq_req_put,
    .req_pending = sq_req_pending,
    .out_put = sq_out_put,
    .out_counts = sq_out_counts,
    .out_all = sq_out_all,
    .job_add = sq_job_add,
    .job_claim = sq_job_claim,
    .job_heartbeat = sq_job_heartbeat,
    .job_finish = sq_job_finish,
    .job_get = sq_job_get,
    .job_list = sq_job_list,
    .job_set_state = sq_job_set_state,
    .job_purge = sq_job_purge,
    .job_reap = sq_job_reap,
    .sched_add = sq_sched_add,
    .sched_list = sq_sched_list,
    .sched_del = sq_sched_del,
    .sched_update = sq_sched_update,
    .sched_advance = sq_sched_advance,
};

inf_status inf__store_sqlite_open(const char *path, struct inf__store **out, struct inf_error *err)
{
    *out = NULL;
    if (inf__mkdir_parents(path) != 0)
        return inf_error_set(err, INF_EIO, "cannot create the directory of '%s': %s", path,
                             strerror(errno));
    struct sq *q = calloc(1, sizeof(*q));
    if (!q)
        return inf_error_set(err, INF_ENOMEM, "out of memory");
    q->base.ops = &sq_ops;
    if (sqlite3_open_v2(path, &q->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        inf_error_set(err, INF_EIO, "cannot open the jobs store '%s': %s", path,
                      q->db ? sqlite3_errmsg(q->db) : "out of memory");
        sq_close(&q->base);
        return err->code;
    }
    sqlite3_busy_timeout(q->db, 10000);
    char *msg = NULL;
    if (sqlite3_exec(q->db,
                     "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;",
                     NULL, NULL, &msg) != SQLITE_OK ||
        sqlite3_exec(q->db, schema, NULL, NULL, &msg) != SQLITE_OK) {
        inf_error_set(err, INF_EIO, "jobs store '%s': %s", path, msg ? msg : "error");
        sqlite3_free(msg);
        sq_close(&q->base);
        return err->code;
    }
    *out = &q->base;
    return INF_OK;
}
