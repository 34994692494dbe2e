/*
 * registry.c - names for models: the `registry` table of the model cache database (models.c
 * keeps the files' summaries in the same file). `inferno pull` registers what it downloads,
 * `inferno models tag` adds names, `models rm` removes them; models.c shows registered files
 * under their names and inf_models_resolve finds them.
 */
#include <ctype.h>
#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/files.h"
#include "inferno/models.h"
#include "store/store_internal.h"

const char inf__registry_ddl[] =
    "CREATE TABLE IF NOT EXISTS registry("
    " name TEXT PRIMARY KEY COLLATE NOCASE, path TEXT NOT NULL, source TEXT NOT NULL,"
    " digest TEXT NOT NULL, added INTEGER NOT NULL);";

static bool part_ok(const char *s, size_t n)
{
    if (n == 0 || s[0] == '.' || s[0] == '-')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '.' && s[i] != '_' && s[i] != '-')
            return false;
    return !(n == 2 && s[0] == '.' && s[1] == '.');
}

bool inf_models_name_valid(const char *name)
{
    size_t len = strlen(name);
    if (len == 0 || len > 255)
        return false;
    const char *colon = strchr(name, ':');
    size_t base = colon ? (size_t)(colon - name) : len;
    if (colon && !part_ok(colon + 1, len - base - 1))
        return false;
    const char *slash = memchr(name, '/', base);
    if (!slash)
        return part_ok(name, base);
    size_t ns = (size_t)(slash - name);
    return part_ok(name, ns) && part_ok(slash + 1, base - ns - 1);
}

void inf_models_name_normalize(const char *arg, char *out, size_t size)
{
    static const char *const prefixes[] = {
        "https://",
        "http://",
        "hf.co/",
        "huggingface.co/",
        "www.huggingface.co/",
        "ollama.com/library/",
        "ollama.com/",
        "registry.ollama.ai/library/",
        "registry.ollama.ai/",
    };
    const char *s = arg;
    for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
        size_t n = strlen(prefixes[i]);
        if (strncasecmp(s, prefixes[i], n) == 0)
            s += n;
    }
    snprintf(out, size, "%s", s);
}

/* Open the database for the registry (created when missing). NULL with err set. */
static sqlite3 *reg_open(const char *cache_db, struct inf_error *err)
{
    sqlite3 *db = NULL;
    if (!cache_db || !*cache_db) {
        inf_error_set(err, INF_EINVAL, "no model database configured (cache.models_db)");
        return NULL;
    }
    if (inf__mkdir_parents(cache_db) != 0) {
        inf_error_set(err, INF_EIO, "cannot create the directory of '%s': %s", cache_db,
                      strerror(errno));
        return NULL;
    }
    if (sqlite3_open_v2(cache_db, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
        SQLITE_OK) {
        inf_error_set(err, INF_EIO, "cannot open the model database '%s': %s", cache_db,
                      db ? sqlite3_errmsg(db) : "out of memory");
        sqlite3_close(db);
        return NULL;
    }
    sqlite3_busy_timeout(db, 5000);
    if (sqlite3_exec(db, inf__registry_ddl, NULL, NULL, NULL) != SQLITE_OK) {
        inf_error_set(err, INF_EIO, "model database '%s': %s", cache_db, sqlite3_errmsg(db));
        sqlite3_close(db);
        return NULL;
    }
    return db;
}

static void row_to_reg(sqlite3_stmt *st, struct inf_model_reg *r)
{
    memset(r, 0, sizeof(*r));
    const char *c;
    if ((c = (const char *)sqlite3_column_text(st, 0)))
        snprintf(r->name, sizeof(r->name), "%s", c);
    if ((c = (const char *)sqlite3_column_text(st, 1)))
        snprintf(r->path, sizeof(r->path), "%s", c);
    if ((c = (const char *)sqlite3_column_text(st, 2)))
        snprintf(r->source, sizeof(r->source), "%s", c);
    if ((c = (const char *)sqlite3_column_text(st, 3)))
        snprintf(r->digest, sizeof(r->digest), "%s", c);
    r->added = sqlite3_column_int64(st, 4);
}

inf_status inf_models_register(const char *cache_db, const struct inf_model_reg *r,
                               struct inf_error *err)
{
    if (!inf_models_name_valid(r->name))
        return inf_error_set(err, INF_EINVAL,
                             "invalid model name '%.200s' ([NAMESPACE/]NAME[:TAG] of letters, "
                             "digits, '.', '_', '-')",
                             r->name);
    sqlite3 *db = reg_open(cache_db, err);
    if (!db)
        return err ? err->code : INF_EIO;
    sqlite3_stmt *st = NULL;
    inf_status rc = INF_OK;
    if (sqlite3_prepare_v2(db,
                           "INSERT OR REPLACE INTO registry(name, path, source, digest, added)"
                           " VALUES(?, ?, ?, ?, ?)",
                           -1, &st, NULL) != SQLITE_OK) {
        rc = inf_error_set(err, INF_EIO, "model database: %s", sqlite3_errmsg(db));
        goto out;
    }
    sqlite3_bind_text(st, 1, r->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, r->path, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, r->source, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, r->digest, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, r->added ? r->added : (sqlite3_int64)time(NULL));
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = inf_error_set(err, INF_EIO, "model database: cannot register '%s': %s", r->name,
                           sqlite3_errmsg(db));
out:
    sqlite3_finalize(st);
    sqlite3_close(db);
    return rc;
}

/* Rows whose name is `name` (exact, NOCASE) or, with prefix, starts with it. */
static int reg_find(sqlite3 *db, const char *name, bool prefix, struct inf_model_reg *out)
{
    sqlite3_stmt *st = NULL;
    int n = 0;
    const char *sql = prefix ? "SELECT name, path, source, digest, added FROM registry WHERE "
                               "substr(name, 1, ?2) = ?1 COLLATE NOCASE"
                             : "SELECT name, path, source, digest, added FROM registry WHERE "
                               "name = ?1";
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    if (prefix)
        sqlite3_bind_int(st, 2, (int)strlen(name));
    while (sqlite3_step(st) == SQLITE_ROW) {
        if (n++ == 0)
            row_to_reg(st, out);
    }
    sqlite3_finalize(st);
    return n;
}

inf_status inf_models_lookup(const char *cache_db, const char *arg, struct inf_model_reg *out,
                             struct inf_error *err)
{
    char name[512], alt[560];
    inf_models_name_normalize(arg, name, sizeof(name));
    if (!inf_models_name_valid(name))
        return inf_error_set(err, INF_ENOTFOUND, "'%.200s' is not a registered model name", arg);
    struct inf_error oerr = {0};
    sqlite3 *db = reg_open(cache_db, &oerr);
    if (!db)
        return inf_error_set(err, INF_ENOTFOUND, "no registered model '%.200s' (%s)", arg,
                             inf_error_message(&oerr));
    inf_status rc = INF_OK;
    int n = reg_find(db, name, false, out);
    size_t nl = strlen(name);
    if (n <= 0 && nl > 7 && strcasecmp(name + nl - 7, ":latest") == 0) {
        snprintf(alt, sizeof(alt), "%.*s", (int)(nl - 7), name);
        n = reg_find(db, alt, false, out);
    }
    if (n <= 0 && !strchr(name, ':')) {
        snprintf(alt, sizeof(alt), "%s:latest", name);
        n = reg_find(db, alt, false, out);
        if (n <= 0 && strchr(name, '/')) {
            /* OWNER/REPO: the one quantization pulled */
            snprintf(alt, sizeof(alt), "%s:", name);
            n = reg_find(db, alt, true, out);
            if (n > 1)
                rc = inf_error_set(err, INF_EINVAL,
                                   "'%.200s' names %d registered models; add :QUANT (see "
                                   "inferno models list)",
                                   arg, n);
        }
    }
    if (rc == INF_OK && n <= 0)
        rc = inf_error_set(err, INF_ENOTFOUND, "no registered model '%.200s'", arg);
    sqlite3_close(db);
    return rc;
}

inf_status inf_models_unregister(const char *cache_db, const char *name, struct inf_error *err)
{
    sqlite3 *db = reg_open(cache_db, err);
    if (!db)
        return err ? err->code : INF_EIO;
    sqlite3_stmt *st = NULL;
    inf_status rc = INF_OK;
    if (sqlite3_prepare_v2(db, "DELETE FROM registry WHERE name = ?", -1, &st, NULL) != SQLITE_OK) {
        rc = inf_error_set(err, INF_EIO, "model database: %s", sqlite3_errmsg(db));
        goto out;
    }
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = inf_error_set(err, INF_EIO, "model database: %s", sqlite3_errmsg(db));
    else if (sqlite3_changes(db) == 0)
        rc = inf_error_set(err, INF_ENOTFOUND, "no registered model '%.200s'", name);
out:
    sqlite3_finalize(st);
    sqlite3_close(db);
    return rc;
}

inf_status inf__registry_read(sqlite3 *db, struct inf_model_reg **out, size_t *n,
                              struct inf_error *err)
{
    sqlite3_stmt *st = NULL;
    size_t cap = 0;
    *out = NULL;
    *n = 0;
    if (sqlite3_prepare_v2(db,
                           "SELECT name, path, source, digest, added FROM registry ORDER BY name",
                           -1, &st, NULL) != SQLITE_OK)
        return inf_error_set(err, INF_EIO, "model database: %s", sqlite3_errmsg(db));
    int r;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            struct inf_model_reg *p = realloc(*out, cap * sizeof(*p));
            if (!p) {
                sqlite3_finalize(st);
                free(*out);
                *out = NULL;
                *n = 0;
                return inf_error_set(err, INF_ENOMEM, "out of memory");
            }
            *out = p;
        }
        row_to_reg(st, &(*out)[(*n)++]);
    }
    sqlite3_finalize(st);
    if (r != SQLITE_DONE) {
        free(*out);
        *out = NULL;
        *n = 0;
        return inf_error_set(err, INF_EIO, "model database: %s", sqlite3_errmsg(db));
    }
    return INF_OK;
}

inf_status inf_models_registered(const char *cache_db, struct inf_model_reg **out, size_t *n,
                                 struct inf_error *err)
{
    *out = NULL;
    *n = 0;
    sqlite3 *db = reg_open(cache_db, err);
    if (!db)
        return err ? err->code : INF_EIO;
    inf_status rc = inf__registry_read(db, out, n, err);
    sqlite3_close(db);
    return rc;
}
