/*
 * jobs.c - files, batches, the queue's worker and schedules over the storage interface
 * (inferno/jobs.h, jobs/store.h). Every store call runs under j->mu; requests run outside it.
 *
 * A batch's life: created "validating" together with a queue job (one transaction); the worker
 * that claims the job checks every line (the whole file, before anything runs: errors name the
 * line) -> "failed", or stores the requests -> "in_progress"; runs the requests without an
 * output, exec->concurrency at a time, storing each output keyed by (batch, custom_id), first
 * write wins; "finalizing": the output and error files are written in full (temporary file,
 * fsync, rename) and registered with the final status in one transaction -> "completed". A
 * cancel ("cancelling") stops new requests; those never run get an error line; -> "cancelled".
 * Past expires_at the same happens with "expired". A worker killed at any point leaves either
 * the previous state or the next: the job is retaken and continues from what is stored.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/files.h"
#include "inferno/log.h"
#include "jobs/internal.h"

#define MAX_LINES  50000
#define MAX_ERRORS 1000

void inf__jobs_wake(struct inf_jobs *j)
{
    pthread_mutex_lock(&j->wake_mu);
    j->wake_seq++;
    pthread_cond_broadcast(&j->wake_cv);
    pthread_mutex_unlock(&j->wake_mu);
}

void inf__req_free(struct inf__req *r, size_t n)
{
    for (size_t i = 0; r && i < n; i++) {
        free(r[i].custom_id);
        free(r[i].body);
    }
    free(r);
}

void inf_job_release(struct inf_job *job)
{
    if (!job)
        return;
    free(job->payload);
    free(job->result);
    free(job->last_error);
    job->payload = job->result = job->last_error = NULL;
}

void inf__jobs_event(struct inf_jobs *j, const char *name, const char *fmt_json)
{
    if (!j->on_event)
        return;
    char buf[1024];
    int n =
        snprintf(buf, sizeof(buf), "{\"type\":\"job\",\"event\":\"%s\",\"time\":%lld%s%s}", name,
                 (long long)now_s(), fmt_json && *fmt_json ? "," : "", fmt_json ? fmt_json : "");
    if (n > 0 && (size_t)n < sizeof(buf))
        j->on_event(j->event_ctx, buf, (size_t)n);
}

void inf__jobs_job_event(struct inf_jobs *j, const char *name, int64_t id, const char *ref,
                         int attempts, const char *error)
{
    char extra[768];
    json_t *e = error ? json_string(error) : NULL;
    char *es = e ? json_dumps(e, JSON_ENCODE_ANY) : NULL;
    json_decref(e);
    snprintf(extra, sizeof(extra), "\"job_id\":%lld,\"ref\":\"%.64s\",\"attempts\":%d%s%.400s",
             (long long)id, ref ? ref : "", attempts, es ? ",\"error\":" : "", es ? es : "");
    free(es);
    inf__jobs_event(j, name, extra);
}

inf_status inf_jobs_open(const struct inf_jobs_params *p, struct inf_jobs **out,
                         struct inf_error *err)
{
    *out = NULL;
    bool pg = p->url && (strncmp(p->url, "postgresql://", 13) == 0 ||
                         strncmp(p->url, "postgres://", 11) == 0);
    if (!pg && (!p->url || strncmp(p->url, "sqlite:", 7) != 0 || !p->url[7]))
        return inf_error_set(err, INF_EINVAL,
                             "queue.url '%.200s' is not supported: use sqlite:PATH or "
                             "postgresql://...",
                             p->url ? p->url : "");
    if (!p->files_dir || !*p->files_dir)
        return inf_error_set(err, INF_EINVAL, "files.dir is empty");
    struct inf_jobs *j = calloc(1, sizeof(*j));
    if (!j)
        return inf_error_set(err, INF_ENOMEM, "out of memory");
    snprintf(j->files_dir, sizeof(j->files_dir), "%s", p->files_dir);
    char probe[4200];
    snprintf(probe, sizeof(probe), "%s/x", j->files_dir);
    if (inf__mkdir_parents(probe) != 0) {
        inf_error_set(err, INF_EIO, "cannot create files.dir '%s': %s", j->files_dir,
                      strerror(errno));
        free(j);
        return err->code;
    }
    if ((pg ? inf__store_pg_open(p->url, &j->s, err)
            : inf__store_sqlite_open(p->url + 7, &j->s, err)) != INF_OK) {
        free(j);
        return err->code;
    }
    pthread_mutex_init(&j->mu, NULL);
    pthread_mutex_init(&j->wake_mu, NULL);
    pthread_cond_init(&j->wake_cv, NULL);
    if (gethostname(j->host, sizeof(j->host)) != 0)
        snprintf(j->host, sizeof(j->host), "localhost");
    j->host[sizeof(j->host) - 1] = '\0';
    char r[9];
    random_hex(r, 8);
    snprintf(j->owner, sizeof(j->owner), "%s:%d:%s", j->host, (int)getpid(), r);
    j->on_event = p->on_event;
    j->event_ctx = p->event_ctx;
    *out = j;
    return INF_OK;
}

void inf_jobs_close(struct inf_jobs *j)
{
    if (!j)
        return;
    OPS(j)->close(j->s);
    pthread_mutex_destroy(&j->mu);
    pthread_mutex_destroy(&j->wake_mu);
    pthread_cond_destroy(&j->wake_cv);
    free(j);
}

/* ---- files ---------------------------------------------------------------------------------- */

static bool id_ok(const char *id)
{
    size_t n = id ? strlen(id) : 0;
    if (n == 0 || n >= 64)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_'))
            return false;
    }
    return true;
}

static void file_path(const struct inf_jobs *j, const char *id, char *out, size_t n)
{
    snprintf(out, n, "%s/%s", j->files_dir, id);
}

/* Write data to PATH whole: a temporary file, fsync, rename, fsync of the directory. */
static inf_status write_whole(const char *path, const void *data, size_t len, struct inf_error *err)
{
    char tmp[4300];
    snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return inf_error_set(err, INF_EIO, "cannot create '%s': %s", tmp, strerror(errno));
    const char *p = data;
    size_t left = len;
    while (left) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            inf_error_set(err, INF_EIO, "cannot write '%s': %s", tmp, strerror(errno));
            close(fd);
            unlink(tmp);
            return err->code;
        }
        p += w;
        left -= (size_t)w;
    }
    if (fsync(fd) != 0 || close(fd) != 0) {
        inf_error_set(err, INF_EIO, "cannot sync '%s': %s", tmp, strerror(errno));
        unlink(tmp);
        return err->code;
    }
    if (rename(tmp, path) != 0) {
        inf_error_set(err, INF_EIO, "cannot rename '%s': %s", tmp, strerror(errno));
        unlink(tmp);
        return err->code;
    }
    char dir[4200];
    snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash) {
        *slash = '\0';
        int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            (void)fsync(dfd);
            close(dfd);
        }
    }
    return INF_OK;
}

/* A file's contents: in the store when it keeps them (blob_put), else a file in files_dir. */
static inf_status content_put(struct inf_jobs *j, const char *id, const void *data, size_t len,
                              struct inf_error *err)
{
    if (!OPS(j)->blob_put) {
        char path[4200];
        file_path(j, id, path, sizeof(path));
        return write_whole(path, data, len, err);
    }
    pthread_mutex_lock(&j->mu);
    inf_status rc = OPS(j)->blob_put(j->s, id, data, len, err);
    pthread_mutex_unlock(&j->mu);
    return rc;
}

static inf_status content_get(struct inf_jobs *j, const char *id, char **data, size_t *len,
                              struct inf_error *err)
{
    pthread_mutex_lock(&j->mu);
    inf_status rc = OPS(j)->blob_get(j->s, id, data, len, err);
    pthread_mutex_unlock(&j->mu);
    return rc;
}

inf_status inf__jobs_file_store(struct inf_jobs *j, const char *id, const char *filename,
                                const char *purpose, const void *data, size_t len,
                                struct inf_jobs_file *out, struct inf_error *err)
{
    struct inf_jobs_file f = {0};
    snprintf(f.id, sizeof(f.id), "%s", id);
    snprintf(f.filename, sizeof(f.filename), "%s", filename && *filename ? filename : "upload");
    snprintf(f.purpose, sizeof(f.purpose), "%s", purpose);
    f.bytes = (int64_t)len;
    f.created_at = now_s();
    char path[4200];
    file_path(j, f.id, path, sizeof(path));
    if (content_put(j, f.id, data, len, err) != INF_OK)
        return err->code;
    pthread_mutex_lock(&j->mu);
    inf_status rc = OPS(j)->file_put(j->s, &f, err);
    if (rc != INF_OK && OPS(j)->blob_del) {
        struct inf_error e2 = {0};
        OPS(j)->blob_del(j->s, f.id, &e2);
    }
    pthread_mutex_unlock(&j->mu);
    if (rc != INF_OK) {
        if (!OPS(j)->blob_put)
            unlink(path);
        return rc;
    }
    if (out)
        *out = f;
    return INF_OK;
}

inf_status inf_jobs_file_create(struct inf_jobs *j, const char *filename, const char *purpose,
                                const void *data, size_t len, struct inf_jobs_file *out,
                                struct inf_error *err)
{
    if ((int64_t)len > INF_JOBS_MAX_FILE_BYTES)
        return inf_error_set(err, INF_ELIMIT, "the file is %zu bytes; at most %lld are accepted",
                             len, (long long)INF_JOBS_MAX_FILE_BYTES);
    char id[40] = "file-";
    random_hex(id + 5, 24);
    return inf__jobs_file_store(j, id, filename, purpose, data, len, out, err);
}

inf_status inf_jobs_file_get(struct inf_jobs *j, const char *id, struct inf_jobs_file *out,
                             struct inf_error *err)
{
    if (!id_ok(id))
        return inf_error_set(err, INF_ENOTFOUND, "no file with id '%.64s'", id ? id : "");
    pthread_mutex_lock(&j->mu);
    inf_status rc = OPS(j)->file_get(j->s, id, out, err);
    pthread_mutex_unlock(&j->mu);
    return rc;
}

inf_status inf_jobs_file_list(struct inf_jobs *j, const char *purpose, const char *after, int limit,
                              struct inf_jobs_file **out, size_t *n, bool *has_more,
                              struct inf_error *err)
{
    if (limit < 1 || limit > 10000)
        return inf_error_set(err, INF_EINVAL, "limit must be 1 to 10000");
    pthread_mutex_lock(&j->mu);
    inf_status rc = OPS(j)->file_list(j->s, purpose, after, limit, out, n, has_more, err);
    pthread_mutex_unlock(&j->mu);
    return rc;
}

inf_status inf_jobs_file_content(struct inf_jobs *j, const char *id, char **data, size_t *len,
                                 struct inf_error *err)
{
    struct inf_jobs_file f;
    *data = NULL;
    *len = 0;
    if (inf_jobs_file_get(j, id, &f, err) != INF_OK)
        return err->code;
    if (OPS(j)->blob_get)
        return content_get(j, f.id, data, len, err);
    char path[4200];
    file_path(j, f.id, path, sizeof(path));
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return inf_error_set(err, INF_EIO, "cannot open '%s': %s", path, strerror(errno));
    *data = inf__read_stream(fp, (size_t)INF_JOBS_MAX_FILE_BYTES * 2, len);
    int e = errno;
    fclose(fp);
    if (!*data)
        return inf_error_set(err, INF_EIO, "cannot read '%s': %s", path, strerror(e));
    return INF_OK;
}

inf_status inf_jobs_file_open(struct inf_jobs *j, const char *id, int *fd, size_t *len,
                              struct inf_error *err)
{
    struct inf_jobs_file f;
    *fd = -1;
    *len = 0;
    if (inf_jobs_file_get(j, id, &f, err) != INF_OK)
        return err->code;
    if (OPS(j)->blob_get) { /* contents in the database: handed over as an anonymous file */
        char *data = NULL;
        size_t n = 0;
        if (content_get(j, f.id, &data, &n, err) != INF_OK)
            return err->code;
        FILE *tf = tmpfile();
        int d = tf ? dup(fileno(tf)) : -1;
        bool ok = d >= 0 && (n == 0 || fwrite(data, 1, n, tf) == n) && fflush(tf) == 0 &&
                  lseek(d, 0, SEEK_SET) == 0;
        free(data);
        if (tf)
            fclose(tf);
        if (!ok) {
            if (d >= 0)
                close(d);
            return inf_error_set(err, INF_EIO, "cannot stage file '%s': %s", f.id, strerror(errno));
        }
        *fd = d;
        *len = n;
        return INF_OK;
    }
    char path[4200];
    file_path(j, f.id, path, sizeof(path));
    int d = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (d < 0 || fstat(d, &st) != 0 || !S_ISREG(st.st_mode)) {
        inf_error_set(err, INF_EIO, "cannot open '%s': %s", path, strerror(errno));
        if (d >= 0)
            close(d);
        return err->code;
    }
    *fd = d;
    *len = (size_t)st.st_size;
    return INF_OK;
}

inf_status inf_jobs_file_delete(struct inf_jobs *j, const char *id, struct inf_error *err)
{
    if (!id_ok(id))
        return inf_error_set(err, INF_ENOTFOUND, "no file with id '%.64s'", id ? id : "");
    pthread_mutex_lock(&j->mu);
    inf_status rc = OPS(j)->file_del(j->s, id, err);
    if (rc == INF_OK && OPS(j)->blob_del)
        rc = OPS(j)->blob_del(j->s, id, err);
    pthread_mutex_unlock(&j->mu);
    if (rc == INF_OK && !OPS(j)->blob_del) {
        char path[4200];
        file_path(j, id, path, sizeof(path));
        unlink(path);
    }
    return rc;
}

/* ---- batches -------------------------------------------------------------------------------- */

static const char *const terminal_states[] = {"completed", "failed", "expired", "cancelled"};

static bool is_terminal(const char *status)
{
    for (size_t i = 0; i < 4; i++)
        if (strcmp(status, terminal_states[i]) == 0)
            return true;
    return false;
}

static const char *obj_status(json_t *o)
{
    const char *s = json_string_value(json_object_get(o, "status"));
    return s ? s : "";
}

static void set_counts(json_t *o, int64_t total, int64_t ok, int64_t failed)
{
    json_t *c = json_object();
    json_object_set_new(c, "total", json_integer(total));
    json_object_set_new(c, "completed", json_integer(ok));
    json_object_set_new(c, "failed", json_integer(failed));
    json_object_set_new(o, "request_counts", c);
}

/* Under j->mu. */
static inf_status batch_load(struct inf_jobs *j, const char *id, json_t **o, struct inf_error *err)
{
    char *text = NULL;
    *o = NULL;
    if (!id_ok(id))
        return inf_error_set(err, INF_ENOTFOUND, "no batch with id '%.64s'", id ? id : "");
    inf_status rc = OPS(j)->batch_get(j->s, id, &text, err);
    if (rc != INF_OK)
        return rc;
    *o = json_loads(text, 0, NULL);
    free(text);
    if (!*o)
        return inf_error_set(err, INF_EFORMAT, "batch '%s': its stored object is not JSON", id);
    return INF_OK;
}

/* Under j->mu. */
static inf_status batch_save(struct inf_jobs *j, json_t *o, struct inf_error *err)
{
    char *text = json_dumps(o, JSON_COMPACT);
    if (!text)
        return inf_error_set(err, INF_ENOMEM, "out of memory");
    inf_status rc = OPS(j)->batch_put(j->s, json_string_value(json_object_get(o, "id")),
                                      obj_status(o), text, err);
    free(text);
    return rc;
}

static char *dump(json_t *o)
{
    return json_dumps(o, JSON_COMPACT);
}

inf_status inf_jobs_batch_create(struct inf_jobs *j, const char *input_file_id,
                                 const char *endpoint, const char *completion_window,
                                 const char *metadata, int priority, char **obj,
                                 struct inf_error *err)
{
    *obj = NULL;
    enum inf_batch_endpoint ep;
    if (!endpoint || !inf_batch_endpoint_parse(endpoint, &ep))
        return inf_error_set(err, INF_EINVAL,
                             "endpoint must be /v1/chat/completions, /v1/completions or "
                             "/v1/embeddings");
    if (!completion_window || strcmp(completion_window, "24h") != 0)
        return inf_error_set(err, INF_EINVAL, "completion_window must be \"24h\"");
    struct inf_jobs_file f;
    if (inf_jobs_file_get(j, input_file_id, &f, err) != INF_OK)
        return err->code;
    if (strcmp(f.purpose, "batch") != 0)
        return inf_error_set(err, INF_EINVAL, "file '%s' has purpose '%s', not 'batch'", f.id,
                             f.purpose);
    json_t *meta = metadata ? json_loads(metadata, 0, NULL) : json_null();
    if (!meta || (!json_is_object(meta) && !json_is_null(meta))) {
        json_decref(meta);
        return inf_error_set(err, INF_EINVAL, "metadata must be an object");
    }
    char id[40] = "batch_";
    random_hex(id + 6, 24);
    int64_t t = now_s();
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(id));
    json_object_set_new(o, "object", json_string("batch"));
    json_object_set_new(o, "endpoint", json_string(endpoint));
    json_object_set_new(o, "errors", json_null());
    json_object_set_new(o, "input_file_id", json_string(f.id));
    json_object_set_new(o, "completion_window", json_string("24h"));
    json_object_set_new(o, "status", json_string("validating"));
    json_object_set_new(o, "output_file_id", json_null());
    json_object_set_new(o, "error_file_id", json_null());
    json_object_set_new(o, "created_at", json_integer(t));
    static const char *const times[] = {"in_progress_at", "finalizing_at", "completed_at",
                                        "failed_at",      "expired_at",    "cancelling_at",
                                        "cancelled_at"};
    for (size_t i = 0; i < sizeof(times) / sizeof(times[0]); i++)
        json_object_set_new(o, times[i], json_null());
    json_object_set_new(o, "expires_at", json_integer(t + 86400));
    set_counts(o, 0, 0, 0);
    json_object_set_new(o, "metadata", meta);

    struct inf_job_spec spec = {
        .kind = INF_JOB_BATCH, .ref = id, .priority = priority, .max_attempts = 5};
    int64_t job_id = 0;
    pthread_mutex_lock(&j->mu);
    inf_status rc = OPS(j)->begin(j->s, err);
    if (rc == INF_OK && (rc = batch_save(j, o, err)) == INF_OK &&
        (rc = OPS(j)->job_add(j->s, &spec, 1, t, &job_id, err)) == INF_OK)
        rc = OPS(j)->commit(j->s, err);
    else if (rc != INF_OK && err->code != INF_OK)
        OPS(j)->rollback(j->s);
    pthread_mutex_unlock(&j->mu);
    if (rc == INF_OK) {
        *obj = dump(o);
        inf__jobs_job_event(j, "created", job_id, id, 0, NULL);
        inf__jobs_wake(j);
    }
    json_decref(o);
    return rc;
}

/* A batch that is still running: its request counts as of now (the stored object has them as of
   its last state change). Called with j->mu held. */
static void live_counts(struct inf_jobs *j, json_t *o)
{
    if (is_terminal(obj_status(o)))
        return;
    int64_t ok = 0, failed = 0;
    struct inf_error e2 = {0};
    json_t *c = json_object_get(o, "request_counts");
    int64_t total = json_integer_value(json_object_get(c, "total"));
    const char *id = json_string_value(json_object_get(o, "id"));
    if (id && OPS(j)->out_counts(j->s, id, &ok, &failed, &e2) == INF_OK)
        set_counts(o, total, ok, failed);
}

inf_status inf_jobs_batch_get(struct inf_jobs *j, const char *id, char **obj, struct inf_error *err)
{
    json_t *o = NULL;
    *obj = NULL;
    pthread_mutex_lock(&j->mu);
    inf_status rc = batch_load(j, id, &o, err);
    if (rc == INF_OK)
        live_counts(j, o);
    pthread_mutex_unlock(&j->mu);
    if (rc == INF_OK && !(*obj = dump(o)))
        rc = inf_error_set(err, INF_ENOMEM, "out of memory");
    json_decref(o);
    return rc;
}

inf_status inf_jobs_batch_list(struct inf_jobs *j, const char *after, int limit, char **obj,
                               struct inf_error *err)
{
    *obj = NULL;
    if (limit < 1 || limit > 100)
        return inf_error_set(err, INF_EINVAL, "limit must be 1 to 100");
    char **v = NULL;
    size_t n = 0;
    bool more = false;
    pthread_mutex_lock(&j->mu);
    inf_status rc = OPS(j)->batch_list(j->s, after, limit, &v, &n, &more, err);
    json_t *list = json_object(), *data = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *b = v[i] ? json_loads(v[i], 0, NULL) : NULL;
        if (b) {
            live_counts(j, b); /* as GET /v1/batches/{id} gives them */
            json_array_append_new(data, b);
        }
        free(v[i]);
    }
    pthread_mutex_unlock(&j->mu);
    free(v);
    if (rc != INF_OK) {
        json_decref(list);
        json_decref(data);
        return rc;
    }
    json_object_set_new(list, "object", json_string("list"));
    size_t m = json_array_size(data);
    json_object_set(list, "first_id",
                    m ? json_object_get(json_array_get(data, 0), "id") : json_null());
    json_object_set(list, "last_id",
                    m ? json_object_get(json_array_get(data, m - 1), "id") : json_null());
    json_object_set_new(list, "has_more", json_boolean(more));
    json_object_set_new(list, "data", data);
    *obj = dump(list);
    json_decref(list);
    return *obj ? INF_OK : inf_error_set(err, INF_ENOMEM, "out of memory");
}

inf_status inf_jobs_batch_cancel(struct inf_jobs *j, const char *id, char **obj,
                                 struct inf_error *err)
{
    json_t *o = NULL;
    *obj = NULL;
    pthread_mutex_lock(&j->mu);
    inf_status rc = batch_load(j, id, &o, err);
    if (rc == INF_OK) {
        const char *st = obj_status(o);
        if (strcmp(st, "validating") == 0 || strcmp(st, "in_progress") == 0) {
            json_object_set_new(o, "status", json_string("cancelling"));
            json_object_set_new(o, "cancelling_at", json_integer(now_s()));
            rc = batch_save(j, o, err);
        } else if (strcmp(st, "cancelling") != 0 && strcmp(st, "cancelled") != 0) {
            rc = inf_error_set(err, INF_EINVAL, "batch '%s' is %s: it cannot be cancelled", id, st);
        }
    }
    pthread_mutex_unlock(&j->mu);
    if (rc == INF_OK) {
        *obj = dump(o);
        inf__jobs_event(j, "cancel_requested", NULL);
    }
    json_decref(o);
    return rc;
}

/* ---- running a batch ------------------------------------------------------------------------ */

struct err_list {
    json_t *data;
    size_t n;
};

static void add_error(struct err_list *l, int64_t line, const char *code, const char *msg)
{
    if (l->n++ >= MAX_ERRORS)
        return;
    json_t *e = json_object();
    json_object_set_new(e, "code", json_string(code));
    json_object_set_new(e, "message", json_string(msg));
    json_object_set_new(e, "param", json_null());
    json_object_set_new(e, "line", json_integer(line));
    json_array_append_new(l->data, e);
}

static int cmp_req(const void *a, const void *b)
{
    const struct inf__req *x = a, *y = b;
    int c = strcmp(x->custom_id, y->custom_id);
    return c ? c : (x->line < y->line ? -1 : x->line > y->line);
}

/*
 * Check every line of the input file and store the requests (-> in_progress), or record the
 * errors (-> failed). One transaction either way.
 */
static inf_status batch_validate(struct inf_jobs *j, json_t *o, const struct inf_jobs_exec *x,
                                 struct inf_error *err)
{
    const char *id = json_string_value(json_object_get(o, "id"));
    const char *fid = json_string_value(json_object_get(o, "input_file_id"));
    enum inf_batch_endpoint ep = INF_BATCH_CHAT;
    inf_batch_endpoint_parse(json_string_value(json_object_get(o, "endpoint")), &ep);
    char *data = NULL;
    size_t len = 0;
    struct err_list el = {json_array(), 0};
    struct inf__req *reqs = NULL;
    size_t n = 0, cap = 0;
    inf_status rc = inf_jobs_file_content(j, fid, &data, &len, err);
    if (rc != INF_OK) {
        if (rc != INF_ENOTFOUND)
            goto out;
        add_error(&el, 0, "invalid_file", inf_error_message(err));
        *err = (struct inf_error){0};
    }
    int64_t line = 0;
    for (size_t pos = 0; data && pos < len;) {
        const char *s = data + pos;
        const char *nl = memchr(s, '\n', len - pos);
        size_t ll = nl ? (size_t)(nl - s) : len - pos;
        pos += ll + (nl ? 1 : 0);
        line++;
        size_t k = 0;
        while (k < ll && (s[k] == ' ' || s[k] == '\t' || s[k] == '\r'))
            k++;
        if (k == ll)
            continue; /* blank line */
        if (line > MAX_LINES) {
            add_error(&el, line, "too_many_requests", "a batch holds at most 50000 requests");
            break;
        }
        struct inf_batch_line bl;
        struct inf_error le = {0};
        if (inf_batch_line_parse(s, ll, &bl, &le) != INF_OK) {
            add_error(&el, line, "invalid_request", inf_error_message(&le));
            continue;
        }
        char msg[600];
        if (bl.endpoint != ep) {
            snprintf(msg, sizeof(msg), "the url '%s' is not the batch's endpoint '%s'",
                     inf_batch_endpoint_path(bl.endpoint), inf_batch_endpoint_path(ep));
            add_error(&el, line, "mismatched_url", msg);
        } else if (x->check && !x->check(x->ctx, ep, bl.body, bl.body_len, msg, sizeof(msg))) {
            add_error(&el, line, "invalid_request", msg);
        } else if (!inf__grow(&reqs, &cap, n + 1, sizeof(*reqs), 64)) {
            inf_batch_line_release(&bl);
            rc = inf_error_set(err, INF_ENOMEM, "out of memory");
            goto out;
        } else {
            reqs[n].line = line;
            reqs[n].custom_id = bl.custom_id;
            reqs[n].body = bl.body;
            bl.custom_id = bl.body = NULL;
            n++;
        }
        inf_batch_line_release(&bl);
    }
    if (data && line == 0 && el.n == 0)
        add_error(&el, 0, "empty_file", "the input file has no requests");
    if (n > 1) { /* duplicates: the second and later lines of a custom_id */
        struct inf__req *sorted = malloc(n * sizeof(*sorted));
        if (!sorted) {
            rc = inf_error_set(err, INF_ENOMEM, "out of memory");
            goto out;
        }
        memcpy(sorted, reqs, n * sizeof(*sorted));
        qsort(sorted, n, sizeof(*sorted), cmp_req);
        for (size_t i = 1; i < n; i++)
            if (strcmp(sorted[i].custom_id, sorted[i - 1].custom_id) == 0) {
                char msg[700];
                snprintf(msg, sizeof(msg), "duplicate custom_id '%.512s' (first on line %lld)",
                         sorted[i].custom_id, (long long)sorted[i - 1].line);
                add_error(&el, sorted[i].line, "duplicate_custom_id", msg);
            }
        free(sorted);
    }
    int64_t t = now_s();
    pthread_mutex_lock(&j->mu);
    json_t *cur = NULL;
    rc = OPS(j)->begin(j->s, err);
    if (rc == INF_OK && (rc = batch_load(j, id, &cur, err)) == INF_OK) {
        if (strcmp(obj_status(cur), "validating") != 0) {
            /* cancelled meanwhile: leave it to the caller's next look */
        } else if (el.n) {
            json_t *errs = json_object();
            json_object_set_new(errs, "object", json_string("list"));
            json_object_set(errs, "data", el.data);
            json_object_set_new(cur, "errors", errs);
            json_object_set_new(cur, "status", json_string("failed"));
            json_object_set_new(cur, "failed_at", json_integer(t));
            rc = batch_save(j, cur, err);
        } else {
            rc = OPS(j)->req_put(j->s, id, reqs, n, err);
            if (rc == INF_OK) {
                json_object_set_new(cur, "status", json_string("in_progress"));
                json_object_set_new(cur, "in_progress_at", json_integer(t));
                set_counts(cur, (int64_t)n, 0, 0);
                rc = batch_save(j, cur, err);
            }
        }
    }
    if (rc == INF_OK)
        rc = OPS(j)->commit(j->s, err);
    else
        OPS(j)->rollback(j->s);
    pthread_mutex_unlock(&j->mu);
    json_decref(cur);
out:
    free(data);
    json_decref(el.data);
    inf__req_free(reqs, n);
    return rc;
}

struct run_state {
    struct inf_jobs *j;
    const struct inf_jobs_exec *x;
    const char *batch_id;
    enum inf_batch_endpoint ep;
    struct inf__req *reqs;
    size_t n, next;
    pthread_mutex_t mu;
    atomic_bool halt; /* cancel, expiry or stop: take no more */
    atomic_bool *stop;
    int64_t expires; /* Unix s: no request starts after it */
    inf_status rc;
    struct inf_error err;
};

static void *run_main(void *arg)
{
    struct run_state *r = arg;
    for (;;) {
        if (atomic_load(&r->halt) || (r->stop && atomic_load(r->stop)) || now_s() >= r->expires)
            return NULL;
        pthread_mutex_lock(&r->mu);
        size_t i = r->next < r->n ? r->next++ : r->n;
        pthread_mutex_unlock(&r->mu);
        if (i >= r->n)
            return NULL;
        struct inf__req *q = &r->reqs[i];
        char *resp = NULL;
        char rid[80] = "";
        int status;
        int waits = 0;
        for (;;) {
            free(resp);
            resp = NULL;
            status = r->x->run(r->x->ctx, r->ep, q->body, strlen(q->body), &resp, rid, sizeof(rid));
            if (status != 503)
                break;
            /* busy, preempted by live traffic, or stopping: try again unless told to stop */
            if ((r->stop && atomic_load(r->stop)) || atomic_load(&r->halt)) {
                free(resp);
                /* not run: put it back for whoever continues */
                return NULL;
            }
            usleep(waits++ < 20 ? 20000 : 100000);
        }
        char *line = inf_batch_output_line(r->batch_id, q->custom_id, status, rid,
                                           resp ? resp : "{}", NULL, NULL);
        free(resp);
        struct inf_error e = {0};
        pthread_mutex_lock(&r->j->mu);
        inf_status rc =
            line ? OPS(r->j)->out_put(r->j->s, r->batch_id, q->custom_id, q->line, status, line, &e)
                 : inf_error_set(&e, INF_ENOMEM, "out of memory");
        pthread_mutex_unlock(&r->j->mu);
        free(line);
        if (rc != INF_OK) {
            pthread_mutex_lock(&r->mu);
            if (r->rc == INF_OK) {
                r->rc = rc;
                r->err = e;
            }
            pthread_mutex_unlock(&r->mu);
            atomic_store(&r->halt, true);
            return NULL;
        }
    }
}

/* Write the output and error files and the final status, in one transaction. */
static inf_status batch_finalize(struct inf_jobs *j, const char *id, const char *final,
                                 struct inf_error *err)
{
    struct inf__out *outs = NULL;
    size_t n = 0;
    pthread_mutex_lock(&j->mu);
    inf_status rc = OPS(j)->out_all(j->s, id, &outs, &n, err);
    pthread_mutex_unlock(&j->mu);
    char *ok = NULL, *bad = NULL;
    size_t n_ok = 0, c_ok = 0, n_bad = 0, c_bad = 0;
    int64_t k_ok = 0, k_bad = 0;
    for (size_t i = 0; rc == INF_OK && i < n; i++) {
        bool good = outs[i].status == 200;
        const char *t = outs[i].text ? outs[i].text : "";
        if (!inf__append(good ? &ok : &bad, good ? &n_ok : &n_bad, good ? &c_ok : &c_bad, t,
                         strlen(t), 4096) ||
            !inf__append(good ? &ok : &bad, good ? &n_ok : &n_bad, good ? &c_ok : &c_bad, "\n", 1,
                         4096))
            rc = inf_error_set(err, INF_ENOMEM, "out of memory");
        if (good)
            k_ok++;
        else
            k_bad++;
    }
    for (size_t i = 0; i < n; i++)
        free(outs[i].text);
    free(outs);
    /* deterministic ids: a finalize redone after a crash writes the same files */
    char out_id[64], err_id[64];
    snprintf(out_id, sizeof(out_id), "file-%.40s-output", id + 6);
    snprintf(err_id, sizeof(err_id), "file-%.40s-errors", id + 6);
    if (rc == INF_OK && n_ok)
        rc = content_put(j, out_id, ok, n_ok, err);
    if (rc == INF_OK && n_bad)
        rc = content_put(j, err_id, bad, n_bad, err);
    free(ok);
    free(bad);
    if (rc != INF_OK)
        return rc;
    int64_t t = now_s();
    json_t *o = NULL;
    pthread_mutex_lock(&j->mu);
    rc = OPS(j)->begin(j->s, err);
    if (rc == INF_OK)
        rc = batch_load(j, id, &o, err);
    struct inf_jobs_file f = {.created_at = t};
    snprintf(f.purpose, sizeof(f.purpose), "batch_output");
    if (rc == INF_OK && n_ok) {
        snprintf(f.id, sizeof(f.id), "%s", out_id);
        snprintf(f.filename, sizeof(f.filename), "%s_output.jsonl", id);
        f.bytes = (int64_t)n_ok;
        rc = OPS(j)->file_put(j->s, &f, err);
        json_object_set_new(o, "output_file_id", json_string(out_id));
    }
    if (rc == INF_OK && n_bad) {
        snprintf(f.id, sizeof(f.id), "%s", err_id);
        snprintf(f.filename, sizeof(f.filename), "%s_error.jsonl", id);
        f.bytes = (int64_t)n_bad;
        rc = OPS(j)->file_put(j->s, &f, err);
        json_object_set_new(o, "error_file_id", json_string(err_id));
    }
    if (rc == INF_OK) {
        int64_t total =
            json_integer_value(json_object_get(json_object_get(o, "request_counts"), "total"));
        set_counts(o, total, k_ok, k_bad);
        json_object_set_new(o, "status", json_string(final));
        char at[32];
        snprintf(at, sizeof(at), "%s_at", final);
        json_object_set_new(o, at, json_integer(t));
        rc = batch_save(j, o, err);
    }
    if (rc == INF_OK)
        rc = OPS(j)->commit(j->s, err);
    else
        OPS(j)->rollback(j->s);
    pthread_mutex_unlock(&j->mu);
    json_decref(o);
    return rc;
}

/* Give every request without an output an error line (cancelled or expired). */
static inf_status close_pending(struct inf_jobs *j, const char *id, const char *code,
                                const char *msg, struct inf_error *err)
{
    struct inf__req *reqs = NULL;
    size_t n = 0;
    pthread_mutex_lock(&j->mu);
    inf_status rc = OPS(j)->req_pending(j->s, id, &reqs, &n, err);
    if (rc == INF_OK)
        rc = OPS(j)->begin(j->s, err);
    for (size_t i = 0; rc == INF_OK && i < n; i++) {
        char *line = inf_batch_output_line(id, reqs[i].custom_id, 0, NULL, NULL, code, msg);
        rc = line ? OPS(j)->out_put(j->s, id, reqs[i].custom_id, reqs[i].line, 0, line, err)
                  : inf_error_set(err, INF_ENOMEM, "out of memory");
        free(line);
    }
    if (rc == INF_OK && n)
        rc = OPS(j)->commit(j->s, err);
    else if (n)
        OPS(j)->rollback(j->s);
    else if (rc == INF_OK)
        rc = OPS(j)->commit(j->s, err);
    pthread_mutex_unlock(&j->mu);
    inf__req_free(reqs, n);
    return rc;
}

static inf_status batch_status(struct inf_jobs *j, const char *id, char *out, size_t n,
                               int64_t *expires, struct inf_error *err)
{
    json_t *o = NULL;
    pthread_mutex_lock(&j->mu);
    inf_status rc = batch_load(j, id, &o, err);
    pthread_mutex_unlock(&j->mu);
    if (rc == INF_OK) {
        snprintf(out, n, "%s", obj_status(o));
        if (expires)
            *expires = json_integer_value(json_object_get(o, "expires_at"));
    }
    json_decref(o);
    return rc;
}

inf_status inf_jobs_batch_process(struct inf_jobs *j, const char *batch_id,
                                  const struct inf_jobs_exec *exec, atomic_bool *stop,
                                  struct inf_error *err)
{
    char st[32];
    int64_t expires = 0;
    json_t *o = NULL;
    pthread_mutex_lock(&j->mu);
    inf_status rc = batch_load(j, batch_id, &o, err);
    pthread_mutex_unlock(&j->mu);
    if (rc != INF_OK)
        return rc;
    if (strcmp(obj_status(o), "validating") == 0)
        rc = batch_validate(j, o, exec, err);
    enum inf_batch_endpoint ep = INF_BATCH_CHAT;
    inf_batch_endpoint_parse(json_string_value(json_object_get(o, "endpoint")), &ep);
    json_decref(o);
    if (rc != INF_OK || (rc = batch_status(j, batch_id, st, sizeof(st), &expires, err)) != INF_OK)
        return rc;
    if (strcmp(st, "in_progress") == 0 && OPS(j)->req_claim) {
        /* a store shared by several workers: requests claimed one at a time (share.c), so idle
           workers elsewhere help; what follows then finds nothing left to run */
        if ((rc = inf__jobs_batch_share_run(j, batch_id, ep, exec, stop, true, err)) != INF_OK ||
            (rc = batch_status(j, batch_id, st, sizeof(st), &expires, err)) != INF_OK)
            return rc;
    }
    if (strcmp(st, "in_progress") == 0) {
        struct run_state r = {
            .j = j, .x = exec, .batch_id = batch_id, .ep = ep, .stop = stop, .expires = expires};
        pthread_mutex_init(&r.mu, NULL);
        pthread_mutex_lock(&j->mu);
        rc = OPS(j)->req_pending(j->s, batch_id, &r.reqs, &r.n, err);
        pthread_mutex_unlock(&j->mu);
        if (rc != INF_OK) {
            pthread_mutex_destroy(&r.mu);
            return rc;
        }
        int nt = exec->concurrency < 1 ? 1 : exec->concurrency > 256 ? 256 : exec->concurrency;
        pthread_t th[256];
        int started = 0;
        for (int i = 0; i < nt && (size_t)i < r.n; i++)
            if (pthread_create(&th[i], NULL, run_main, &r) == 0)
                started++;
        /* watch for cancel, expiry and stop while the threads run */
        for (;;) {
            pthread_mutex_lock(&r.mu);
            bool all_taken = r.next >= r.n;
            pthread_mutex_unlock(&r.mu);
            if (all_taken || atomic_load(&r.halt) || now_s() >= expires)
                break;
            usleep(100 * 1000);
            struct inf_error e2 = {0};
            if (batch_status(j, batch_id, st, sizeof(st), NULL, &e2) == INF_OK &&
                strcmp(st, "in_progress") != 0)
                atomic_store(&r.halt, true);
            if (now_s() >= expires)
                atomic_store(&r.halt, true);
            if (stop && atomic_load(stop))
                atomic_store(&r.halt, true);
        }
        for (int i = 0; i < started; i++)
            pthread_join(th[i], NULL);
        inf__req_free(r.reqs, r.n);
        pthread_mutex_destroy(&r.mu);
        if (r.rc != INF_OK) {
            *err = r.err;
            return r.rc;
        }
        if (stop && atomic_load(stop))
            return inf_error_set(err, INF_ECANCELED, "the worker is stopping");
        if ((rc = batch_status(j, batch_id, st, sizeof(st), &expires, err)) != INF_OK)
            return rc;
        if (strcmp(st, "in_progress") == 0 && now_s() >= expires) {
            if ((rc = close_pending(j, batch_id, "batch_expired",
                                    "the batch expired before this request ran", err)) != INF_OK)
                return rc;
            return batch_finalize(j, batch_id, "expired", err);
        }
        if (strcmp(st, "in_progress") == 0) {
            /* every request has an output unless a thread stopped early: check */
            struct inf__req *left = NULL;
            size_t n_left = 0;
            pthread_mutex_lock(&j->mu);
            rc = OPS(j)->req_pending(j->s, batch_id, &left, &n_left, err);
            pthread_mutex_unlock(&j->mu);
            inf__req_free(left, n_left);
            if (rc != INF_OK)
                return rc;
            if (n_left)
                return inf_error_set(err, INF_EINTERNAL, "%zu requests of '%s' did not run", n_left,
                                     batch_id);
            pthread_mutex_lock(&j->mu);
            rc = batch_load(j, batch_id, &o, err);
            if (rc == INF_OK) {
                json_object_set_new(o, "status", json_string("finalizing"));
                json_object_set_new(o, "finalizing_at", json_integer(now_s()));
                rc = batch_save(j, o, err);
            }
            pthread_mutex_unlock(&j->mu);
            json_decref(o);
            if (rc != INF_OK)
                return rc;
            strcpy(st, "finalizing");
        }
    }
    if (strcmp(st, "finalizing") == 0)
        return batch_finalize(j, batch_id, "completed", err);
    if (strcmp(st, "cancelling") == 0) {
        if ((rc = close_pending(j, batch_id, "batch_cancelled",
                                "the batch was cancelled before this request ran", err)) != INF_OK)
            return rc;
        return batch_finalize(j, batch_id, "cancelled", err);
    }
    return INF_OK; /* failed, or already finished */
}

inf_status inf__jobs_batch_fail(struct inf_jobs *j, const char *id, const char *message,
                                struct inf_error *err)
{
    json_t *o = NULL;
    pthread_mutex_lock(&j->mu);
    inf_status rc = batch_load(j, id, &o, err);
    if (rc == INF_OK && !is_terminal(obj_status(o))) {
        struct err_list el = {json_array(), 0};
        add_error(&el, 0, "batch_failed", message);
        json_t *errs = json_object();
        json_object_set_new(errs, "object", json_string("list"));
        json_object_set_new(errs, "data", el.data);
        json_object_set_new(o, "errors", errs);
        json_object_set_new(o, "status", json_string("failed"));
        json_object_set_new(o, "failed_at", json_integer(now_s()));
        rc = batch_save(j, o, err);
    }
    pthread_mutex_unlock(&j->mu);
    json_decref(o);
    return rc;
}
