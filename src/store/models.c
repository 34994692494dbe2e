/*
 * models.c - model discovery under models_dir and its SQLite metadata cache. src/store/ owns
 * what is known about model files on disk (discovery, the metadata cache, probe.c's summaries).
 */
#include "inferno/models.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/files.h"
#include "inferno/log.h"
#include "store/store_internal.h"

#define SCAN_MAX_DEPTH       32
#define SCAN_MAX_FILES       1000000
#define CACHE_SCHEMA_VERSION 1

/* ---- the cache --------------------------------------------------------------------------- */

struct cache {
    sqlite3 *db;
    sqlite3_stmt *get, *put;
};

static void cache_close(struct cache *c)
{
    if (!c->db)
        return;
    sqlite3_finalize(c->get);
    sqlite3_finalize(c->put);
    sqlite3_exec(c->db, "COMMIT", NULL, NULL, NULL);
    sqlite3_close(c->db);
    memset(c, 0, sizeof(*c));
}

/* Open (or create) the cache; checks integrity and schema version, else starts over. */
static bool cache_try_open(struct cache *c, const char *path)
{
    static const char *const ddl =
        "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
        "CREATE TABLE IF NOT EXISTS files("
        " path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,"
        " is_model INTEGER NOT NULL, summary TEXT);";
    sqlite3_stmt *st = NULL;
    int version = -1;
    bool ok = false;

    if (sqlite3_open_v2(path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
        SQLITE_OK)
        goto out;
    sqlite3_busy_timeout(c->db, 2000);
    if (sqlite3_prepare_v2(c->db, "PRAGMA quick_check", -1, &st, NULL) != SQLITE_OK)
        goto out;
    if (sqlite3_step(st) != SQLITE_ROW ||
        strcmp((const char *)sqlite3_column_text(st, 0), "ok") != 0)
        goto out;
    sqlite3_finalize(st);
    st = NULL;
    if (sqlite3_exec(c->db, ddl, NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_exec(c->db, inf__registry_ddl, NULL, NULL, NULL) != SQLITE_OK)
        goto out;
    if (sqlite3_prepare_v2(c->db, "SELECT value FROM meta WHERE key='schema_version'", -1, &st,
                           NULL) != SQLITE_OK)
        goto out;
    if (sqlite3_step(st) == SQLITE_ROW)
        version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    st = NULL;
    if (version == -1) {
        char sql[128];
        snprintf(sql, sizeof(sql), "INSERT INTO meta(key, value) VALUES('schema_version', '%d')",
                 CACHE_SCHEMA_VERSION);
        if (sqlite3_exec(c->db, sql, NULL, NULL, NULL) != SQLITE_OK)
            goto out;
        version = CACHE_SCHEMA_VERSION;
    }
    if (version != CACHE_SCHEMA_VERSION)
        goto out;
    if (sqlite3_prepare_v2(c->db,
                           "SELECT is_model, summary FROM files WHERE path=? AND size=? AND "
                           "mtime_ns=?",
                           -1, &c->get, NULL) != SQLITE_OK)
        goto out;
    if (sqlite3_prepare_v2(c->db,
                           "INSERT OR REPLACE INTO files(path, size, mtime_ns, is_model, summary)"
                           " VALUES(?, ?, ?, ?, ?)",
                           -1, &c->put, NULL) != SQLITE_OK)
        goto out;
    ok = sqlite3_exec(c->db, "BEGIN", NULL, NULL, NULL) == SQLITE_OK;
out:
    sqlite3_finalize(st);
    if (!ok)
        cache_close(c);
    return ok;
}

static void cache_open(struct cache *c, const char *path)
{
    memset(c, 0, sizeof(*c));
    if (!path || !*path)
        return;
    if (inf__mkdir_parents(path) != 0) {
        INF_LOG_WARN("models", "cannot create the directory of cache '%s': %s; not caching", path,
                     strerror(errno));
        return;
    }
    if (cache_try_open(c, path))
        return;
    INF_LOG_WARN("models", "model cache '%s' is corrupt or of another version; rebuilding it",
                 path);
    unlink(path);
    char side[4200];
    snprintf(side, sizeof(side), "%s-journal", path);
    unlink(side);
    snprintf(side, sizeof(side), "%s-wal", path);
    unlink(side);
    if (!cache_try_open(c, path))
        INF_LOG_WARN("models", "cannot use model cache '%s'; listing without it", path);
}

static json_t *summary_to_json(const struct inf_model_summary *s)
{
    return json_pack("{s:s, s:s, s:s, s:I, s:s, s:s, s:I, s:I, s:i}", "name", s->name, "format",
                     s->format, "architecture", s->architecture, "n_params",
                     (json_int_t)s->n_params, "dominant_type", s->dominant_type, "file_type",
                     s->file_type, "size_bytes", (json_int_t)s->size_bytes, "context_length",
                     (json_int_t)s->context_length, "n_shards", s->n_shards);
}

static void copy_str(char *dst, size_t size, json_t *obj, const char *key)
{
    const char *v = json_string_value(json_object_get(obj, key));
    snprintf(dst, size, "%s", v ? v : "");
}

static bool summary_from_json(const char *text, struct inf_model_summary *s)
{
    json_t *o = json_loads(text, 0, NULL);
    if (!json_is_object(o)) {
        json_decref(o);
        return false;
    }
    copy_str(s->format, sizeof(s->format), o, "format");
    copy_str(s->architecture, sizeof(s->architecture), o, "architecture");
    copy_str(s->dominant_type, sizeof(s->dominant_type), o, "dominant_type");
    copy_str(s->file_type, sizeof(s->file_type), o, "file_type");
    s->n_params = (uint64_t)json_integer_value(json_object_get(o, "n_params"));
    s->size_bytes = (uint64_t)json_integer_value(json_object_get(o, "size_bytes"));
    s->context_length = (uint64_t)json_integer_value(json_object_get(o, "context_length"));
    s->n_shards = (int)json_integer_value(json_object_get(o, "n_shards"));
    json_decref(o);
    return true;
}

static int64_t mtime_ns(const struct stat *sb)
{
    return (int64_t)sb->st_mtim.tv_sec * 1000000000 + sb->st_mtim.tv_nsec;
}

/* 1 hit (model), 0 hit (not a model), -1 miss. */
static int cache_get(struct cache *c, const char *path, const struct stat *sb,
                     struct inf_model_summary *s)
{
    int r = -1;
    if (!c->db)
        return -1;
    sqlite3_reset(c->get);
    sqlite3_bind_text(c->get, 1, path, -1, SQLITE_STATIC);
    sqlite3_bind_int64(c->get, 2, (sqlite3_int64)sb->st_size);
    sqlite3_bind_int64(c->get, 3, mtime_ns(sb));
    if (sqlite3_step(c->get) == SQLITE_ROW) {
        if (sqlite3_column_int(c->get, 0) == 0)
            r = 0;
        else if (sqlite3_column_text(c->get, 1) &&
                 summary_from_json((const char *)sqlite3_column_text(c->get, 1), s))
            r = 1;
    }
    sqlite3_reset(c->get);
    return r;
}

static void cache_put(struct cache *c, const char *path, const struct stat *sb,
                      const struct inf_model_summary *s)
{
    char *text = NULL;
    if (!c->db)
        return;
    if (s) {
        json_t *j = summary_to_json(s);
        text = j ? json_dumps(j, JSON_COMPACT) : NULL;
        json_decref(j);
        if (!text)
            return;
    }
    sqlite3_reset(c->put);
    sqlite3_bind_text(c->put, 1, path, -1, SQLITE_STATIC);
    sqlite3_bind_int64(c->put, 2, (sqlite3_int64)sb->st_size);
    sqlite3_bind_int64(c->put, 3, mtime_ns(sb));
    sqlite3_bind_int(c->put, 4, s != NULL);
    if (text)
        sqlite3_bind_text(c->put, 5, text, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(c->put, 5);
    if (sqlite3_step(c->put) != SQLITE_DONE)
        INF_LOG_DEBUG("models", "cache write for '%s' failed: %s", path, sqlite3_errmsg(c->db));
    sqlite3_reset(c->put);
    free(text);
}

/* ---- the walk ---------------------------------------------------------------------------- */

struct dir_id {
    dev_t dev;
    ino_t ino;
};

struct scan {
    const char *root;
    size_t root_len;
    struct cache cache;
    struct inf_model_list *list;
    size_t cap;
    struct dir_id *visited;
    size_t n_visited, cap_visited;
    size_t n_files;
    struct inf_error *err;
};

/* "x-00001-of-00003.gguf": shard index and count; false for other names. */
static bool split_gguf_name(const char *name, int *index, int *count, size_t *stem_len)
{
    size_t n = strlen(name);
    /* -NNNNN-of-NNNNN.gguf is 20 characters */
    if (n < 21 || strcmp(name + n - 5, ".gguf") != 0)
        return false;
    const char *p = name + n - 20;
    if (p[0] != '-' || strncmp(p + 6, "-of-", 4) != 0)
        return false;
    for (int i = 1; i <= 5; i++)
        if (p[i] < '0' || p[i] > '9' || p[i + 9] < '0' || p[i + 9] > '9')
            return false;
    *index = (int)strtol(p + 1, NULL, 10);
    *count = (int)strtol(p + 10, NULL, 10);
    *stem_len = (size_t)(p - name);
    return *index >= 1 && *count >= 1 && *index <= *count;
}

static inf_status push(struct scan *s, const struct inf_model_summary *m)
{
    if (s->list->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        struct inf_model_summary *items = realloc(s->list->items, cap * sizeof(*items));
        if (!items)
            return inf_error_set(s->err, INF_ENOMEM, "out of memory listing models");
        s->list->items = items;
        s->cap = cap;
    }
    s->list->items[s->list->n++] = *m;
    return INF_OK;
}

/*
 * The model name: the path below the root with strip trailing characters removed (the shard
 * suffix), or with the extension removed (strip 0), or whole (strip SIZE_MAX: directories).
 */
static void model_name(const struct scan *s, const char *path, size_t strip, char *out, size_t size)
{
    const char *rel = path;
    if (strncmp(path, s->root, s->root_len) == 0 && path[s->root_len] == '/')
        rel = path + s->root_len + 1;
    size_t len = strlen(rel);
    if (strip == (size_t)-1) {
        /* a directory: its whole name */
    } else if (strip > 0 && strip < len) {
        len -= strip;
    } else {
        const char *dot = strrchr(rel, '.');
        const char *slash = strrchr(rel, '/');
        if (dot && (!slash || dot > slash) && dot != rel)
            len = (size_t)(dot - rel);
    }
    snprintf(out, size, "%.*s", (int)len, rel);
}

static inf_status consider_file(struct scan *s, const char *path, const char *base,
                                const struct stat *sb)
{
    struct inf_model_summary m;
    struct inf_error perr = {0};
    int shard = 1, count = 1;
    size_t stem = 0;
    bool split = split_gguf_name(base, &shard, &count, &stem);

    if (split && shard != 1)
        return INF_OK; /* counted with shard 1 */
    if (sb->st_size < 8) {
        s->list->n_skipped++;
        return INF_OK;
    }
    memset(&m, 0, sizeof(m));
    int hit = cache_get(&s->cache, path, sb, &m);
    if (hit == 0) {
        s->list->n_cached++;
        s->list->n_skipped++;
        return INF_OK;
    }
    if (hit < 0) {
        if (inf_model_probe(path, &m, &perr) != INF_OK) {
            INF_LOG_DEBUG("models", "skipping '%s': %s", path, inf_error_message(&perr));
            cache_put(&s->cache, path, sb, NULL);
            s->list->n_skipped++;
            return INF_OK;
        }
        cache_put(&s->cache, path, sb, &m);
        s->list->n_probed++;
    } else {
        s->list->n_cached++;
    }
    snprintf(m.path, sizeof(m.path), "%s", path);
    if (split) {
        /* the other shards' sizes: NAME-0000k-of-0000n.gguf beside this one */
        char other[4200];
        size_t dir_len = strlen(path) - strlen(base); /* base is the entry's name, not in path */
        m.n_shards = count;
        m.size_bytes = (uint64_t)sb->st_size;
        for (int k = 2; k <= count; k++) {
            struct stat osb;
            snprintf(other, sizeof(other), "%.*s%.*s-%05d-of-%05d.gguf", (int)dir_len, path,
                     (int)stem, base, k, count);
            if (stat(other, &osb) == 0)
                m.size_bytes += (uint64_t)osb.st_size;
            else
                INF_LOG_WARN("models", "'%s': shard %d of %d is missing", path, k, count);
        }
        model_name(s, path, 20, m.name, sizeof(m.name));
    } else {
        model_name(s, path, 0, m.name, sizeof(m.name));
    }
    return push(s, &m);
}

/* A directory holding model.safetensors.index.json is one model; returns true when handled. */
static bool consider_sharded_dir(struct scan *s, const char *dir, inf_status *st)
{
    char index[4200];
    struct stat sb;
    struct inf_model_summary m;
    struct inf_error perr = {0};

    snprintf(index, sizeof(index), "%s/model.safetensors.index.json", dir);
    if (stat(index, &sb) != 0 || !S_ISREG(sb.st_mode))
        return false;
    memset(&m, 0, sizeof(m));
    int hit = cache_get(&s->cache, index, &sb, &m);
    if (hit < 0) {
        if (inf_model_probe(dir, &m, &perr) != INF_OK) {
            INF_LOG_WARN("models", "'%s': %s", dir, inf_error_message(&perr));
            s->list->n_skipped++;
            *st = INF_OK;
            return true;
        }
        cache_put(&s->cache, index, &sb, &m);
        s->list->n_probed++;
    } else {
        s->list->n_cached++;
    }
    snprintf(m.path, sizeof(m.path), "%s", dir);
    if (strcmp(dir, s->root) == 0)
        snprintf(m.name, sizeof(m.name), "%s", strrchr(dir, '/') ? strrchr(dir, '/') + 1 : dir);
    else
        model_name(s, dir, (size_t)-1, m.name, sizeof(m.name));
    if (hit == 0) {
        s->list->n_skipped++;
        *st = INF_OK;
        return true;
    }
    *st = push(s, &m);
    return true;
}

static inf_status walk(struct scan *s, const char *dir, int depth)
{
    struct stat sb;
    inf_status st = INF_OK;

    if (depth > SCAN_MAX_DEPTH) {
        INF_LOG_WARN("models", "'%s': deeper than %d levels; not descending", dir, SCAN_MAX_DEPTH);
        return INF_OK;
    }
    if (stat(dir, &sb) != 0)
        return INF_OK;
    for (size_t i = 0; i < s->n_visited; i++)
        if (s->visited[i].dev == sb.st_dev && s->visited[i].ino == sb.st_ino)
            return INF_OK; /* a link back to a directory already walked */
    if (s->n_visited == s->cap_visited) {
        size_t cap = s->cap_visited ? s->cap_visited * 2 : 64;
        struct dir_id *v = realloc(s->visited, cap * sizeof(*v));
        if (!v)
            return inf_error_set(s->err, INF_ENOMEM, "out of memory");
        s->visited = v;
        s->cap_visited = cap;
    }
    s->visited[s->n_visited].dev = sb.st_dev;
    s->visited[s->n_visited].ino = sb.st_ino;
    s->n_visited++;

    if (consider_sharded_dir(s, dir, &st))
        return st;

    struct dirent **names = NULL;
    int n = scandir(dir, &names, NULL, alphasort);
    if (n < 0) {
        INF_LOG_WARN("models", "cannot read directory '%s': %s", dir, strerror(errno));
        return INF_OK;
    }
    for (int i = 0; i < n; i++) {
        const char *base = names[i]->d_name;
        char path[4096];
        if (st != INF_OK || base[0] == '.') {
            continue;
        }
        if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, base) >= sizeof(path)) {
            INF_LOG_WARN("models", "path too long under '%s'; skipped", dir);
            continue;
        }
        if (stat(path, &sb) != 0) {
            INF_LOG_DEBUG("models", "'%s': %s (dangling link?)", path, strerror(errno));
            continue;
        }
        if (S_ISDIR(sb.st_mode)) {
            st = walk(s, path, depth + 1);
        } else if (S_ISREG(sb.st_mode)) {
            if (++s->n_files > SCAN_MAX_FILES) {
                st = inf_error_set(s->err, INF_ELIMIT, "more than %d files under '%s'",
                                   SCAN_MAX_FILES, s->root);
                continue;
            }
            st = consider_file(s, path, base, &sb);
        }
    }
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return st;
}

/*
 * Registered names: a file of the walk that has one is listed under it (a second name adds a
 * row); a registered file outside the directory is summarised and added. Files are matched by
 * device and inode, so models_dir may be written differently than when the model was pulled.
 */
static inf_status merge_registry(struct scan *s)
{
    struct inf_model_reg *regs = NULL;
    size_t n_regs = 0;
    struct inf_error rerr = {0};
    inf_status st = INF_OK;
    if (!s->cache.db)
        return INF_OK;
    if (inf__registry_read(s->cache.db, &regs, &n_regs, &rerr) != INF_OK) {
        INF_LOG_WARN("models", "cannot read the model registry: %s", inf_error_message(&rerr));
        return INF_OK;
    }
    size_t n_walked = s->list->n;
    struct dir_id *ids = n_walked ? calloc(n_walked, sizeof(*ids)) : NULL;
    bool *claimed = n_walked ? calloc(n_walked, sizeof(*claimed)) : NULL;
    if (n_walked && (!ids || !claimed)) {
        st = inf_error_set(s->err, INF_ENOMEM, "out of memory listing models");
        goto out;
    }
    for (size_t i = 0; i < n_walked; i++) {
        struct stat sb;
        if (stat(s->list->items[i].path, &sb) == 0) {
            ids[i].dev = sb.st_dev;
            ids[i].ino = sb.st_ino;
        }
    }
    for (size_t r = 0; r < n_regs && st == INF_OK; r++) {
        struct stat sb;
        const struct inf_model_reg *g = &regs[r];
        if (stat(g->path, &sb) != 0 || !S_ISREG(sb.st_mode)) {
            INF_LOG_WARN("models", "registered model '%s': '%s' is missing (inferno models rm %s)",
                         g->name, g->path, g->name);
            continue;
        }
        struct inf_model_summary m;
        size_t hit = (size_t)-1;
        for (size_t i = 0; i < n_walked && hit == (size_t)-1; i++)
            if (ids[i].ino == sb.st_ino && ids[i].dev == sb.st_dev)
                hit = i;
        if (hit != (size_t)-1) {
            m = s->list->items[hit];
        } else {
            struct inf_error perr = {0};
            memset(&m, 0, sizeof(m));
            int c = cache_get(&s->cache, g->path, &sb, &m);
            if (c == 0 || (c < 0 && inf_model_probe(g->path, &m, &perr) != INF_OK)) {
                INF_LOG_WARN("models", "registered model '%s': '%s' is not a model", g->name,
                             g->path);
                continue;
            }
            if (c < 0)
                cache_put(&s->cache, g->path, &sb, &m);
            snprintf(m.path, sizeof(m.path), "%s", g->path);
        }
        snprintf(m.name, sizeof(m.name), "%s", g->name);
        snprintf(m.source, sizeof(m.source), "%s", g->source);
        snprintf(m.digest, sizeof(m.digest), "%s", g->digest);
        if (hit != (size_t)-1 && !claimed[hit]) {
            claimed[hit] = true;
            s->list->items[hit] = m;
        } else {
            st = push(s, &m);
        }
    }
out:
    free(ids);
    free(claimed);
    free(regs);
    return st;
}

static int by_name(const void *a, const void *b)
{
    const struct inf_model_summary *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : strcmp(x->path, y->path);
}

inf_status inf_models_scan(const char *dir, const char *cache_db, struct inf_model_list *out,
                           struct inf_error *err)
{
    struct scan s;
    struct stat sb;
    char root[4096];
    inf_status st;

    memset(out, 0, sizeof(*out));
    if (!dir || !*dir)
        return inf_error_set(err, INF_EINVAL, "no models directory configured (models_dir)");
    if (stat(dir, &sb) != 0)
        return inf_error_set(err, INF_ENOTFOUND, "models directory '%s': %s", dir, strerror(errno));
    if (!S_ISDIR(sb.st_mode))
        return inf_error_set(err, INF_EINVAL, "models directory '%s' is not a directory", dir);
    snprintf(root, sizeof(root), "%s", dir);
    size_t rl = strlen(root);
    while (rl > 1 && root[rl - 1] == '/')
        root[--rl] = '\0';

    memset(&s, 0, sizeof(s));
    s.root = root;
    s.root_len = rl;
    s.list = out;
    s.err = err;
    cache_open(&s.cache, cache_db);
    st = walk(&s, root, 0);
    if (st == INF_OK)
        st = merge_registry(&s);
    cache_close(&s.cache);
    free(s.visited);
    if (st) {
        inf_model_list_release(out);
        return st;
    }
    if (out->n > 1)
        qsort(out->items, out->n, sizeof(out->items[0]), by_name);
    return INF_OK;
}

void inf_model_list_release(struct inf_model_list *list)
{
    if (!list)
        return;
    free(list->items);
    memset(list, 0, sizeof(*list));
}

inf_status inf_models_resolve(const char *arg, const char *dir, const char *cache_db, char *out,
                              size_t size, struct inf_error *err)
{
    struct stat sb;
    struct inf_model_list list;
    inf_status st;

    if (stat(arg, &sb) == 0) {
        snprintf(out, size, "%s", arg);
        return INF_OK;
    }
    if (cache_db && *cache_db && stat(cache_db, &sb) == 0) {
        struct inf_model_reg reg;
        struct inf_error lerr = {0};
        st = inf_models_lookup(cache_db, arg, &reg, &lerr);
        if (st == INF_OK) {
            if (stat(reg.path, &sb) != 0)
                return inf_error_set(err, INF_ENOTFOUND,
                                     "model '%s' is registered as '%s', which is missing (pull it "
                                     "again, or inferno models rm %s)",
                                     arg, reg.path, reg.name);
            snprintf(out, size, "%s", reg.path);
            return INF_OK;
        }
        if (st == INF_EINVAL)
            return inf_error_set(err, st, "%s", inf_error_message(&lerr));
    }
    if (!dir || !*dir || stat(dir, &sb) != 0)
        return inf_error_set(err, INF_ENOTFOUND,
                             "model '%s' is neither a file nor a model in models_dir", arg);
    st = inf_models_scan(dir, cache_db, &list, err);
    if (st)
        return st;
    const struct inf_model_summary *found = NULL;
    int n_base = 0;
    const struct inf_model_summary *by_base = NULL;
    for (size_t i = 0; i < list.n && !found; i++) {
        const char *name = list.items[i].name;
        const char *slash = strrchr(name, '/');
        if (strcmp(name, arg) == 0)
            found = &list.items[i];
        else if (strcmp(slash ? slash + 1 : name, arg) == 0) {
            n_base++;
            by_base = &list.items[i];
        }
    }
    if (!found && n_base == 1)
        found = by_base;
    if (found) {
        snprintf(out, size, "%s", found->path);
        st = INF_OK;
    } else if (n_base > 1) {
        st = inf_error_set(err, INF_EINVAL,
                           "model name '%s' is ambiguous in '%s' (%d matches); give its path", arg,
                           dir, n_base);
    } else {
        st = inf_error_set(err, INF_ENOTFOUND, "model '%s' not found as a file or in '%s'", arg,
                           dir);
    }
    inf_model_list_release(&list);
    return st;
}
