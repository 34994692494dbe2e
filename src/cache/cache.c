/*
 * cache.c - the response cache (inferno/cache.h): a memory LRU tier over zstd-compressed entry
 * files indexed in SQLite (WAL). Crash safety rests on the order of a write: temporary file,
 * rename, index row; see the header.
 */
#include "inferno/cache.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

#include "core/files.h"
#include "inferno/log.h"

#define ZSTD_LEVEL   3
#define MEM_BUCKETS  1024
#define MAX_DECODED  (1ull << 31) /* no entry decodes to more, whatever the limits say */
#define EVICT_BATCH  32
#define DIGEST_MEMO  8
#define CACHE_SCHEMA 1
#define DIGEST_CHUNK (1u << 20)
#define LAST_USED_SLACK                                                                            \
    1000 /* ms: a memory hit refreshes the index's last use at most this often */

static const char MAGIC[8] = {'I', 'N', 'F', 'C', 'A', 'C', 'H', '1'};

/* ---- small helpers --------------------------------------------------------------------------- */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void put_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static bool sha256(const void *d, size_t n, uint8_t out[32])
{
    unsigned int len = 32;
    return EVP_Digest(d, n, out, &len, EVP_sha256(), NULL) == 1;
}

static void hex(const uint8_t *k, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[k[i] >> 4];
        out[2 * i + 1] = digits[k[i] & 15];
    }
    out[2 * n] = '\0';
}

/* ---- the entry format ------------------------------------------------------------------------ */

inf_status inf_cache_entry_encode(const uint8_t key[INF_CACHE_KEY_BYTES], const void *data,
                                  size_t len, void **out, size_t *out_len, struct inf_error *err)
{
    *out = NULL;
    *out_len = 0;
    size_t bound = ZSTD_compressBound(len);
    if (ZSTD_isError(bound) || bound > SIZE_MAX - INF_CACHE_ENTRY_HEADER)
        return inf_error_set(err, INF_ELIMIT, "an entry of %zu bytes is too large", len);
    uint8_t *buf = malloc(INF_CACHE_ENTRY_HEADER + bound);
    if (!buf)
        return inf_error_set(err, INF_ENOMEM, "out of memory");
    size_t c = ZSTD_compress(buf + INF_CACHE_ENTRY_HEADER, bound, data, len, ZSTD_LEVEL);
    if (ZSTD_isError(c)) {
        free(buf);
        return inf_error_set(err, INF_EINTERNAL, "zstd: %s", ZSTD_getErrorName(c));
    }
    memcpy(buf, MAGIC, 8);
    memcpy(buf + 8, key, 32);
    put_le64(buf + 40, len);
    put_le64(buf + 48, c);
    if (!sha256(data, len, buf + 56)) {
        free(buf);
        return inf_error_set(err, INF_EINTERNAL, "SHA-256 failed");
    }
    *out = buf;
    *out_len = INF_CACHE_ENTRY_HEADER + c;
    return INF_OK;
}

inf_status inf_cache_entry_decode(const void *vbuf, size_t n, const uint8_t *key, size_t max_len,
                                  void **data, size_t *len, struct inf_error *err)
{
    const uint8_t *b = vbuf;
    *data = NULL;
    *len = 0;
    if (n < INF_CACHE_ENTRY_HEADER)
        return inf_error_set(err, INF_EFORMAT, "entry truncated: %zu bytes, the header has %d", n,
                             INF_CACHE_ENTRY_HEADER);
    if (memcmp(b, MAGIC, 8) != 0)
        return inf_error_set(err, INF_EFORMAT, "not a cache entry (bad magic)");
    if (key && memcmp(b + 8, key, 32) != 0)
        return inf_error_set(err, INF_EFORMAT, "entry holds another key");
    uint64_t raw = get_le64(b + 40), comp = get_le64(b + 48);
    if (comp != n - INF_CACHE_ENTRY_HEADER)
        return inf_error_set(err, INF_EFORMAT,
                             "entry truncated or padded: header says %" PRIu64
                             " compressed bytes, the file has %zu",
                             comp, n - INF_CACHE_ENTRY_HEADER);
    if (max_len > MAX_DECODED)
        max_len = MAX_DECODED;
    if (raw > max_len)
        return inf_error_set(err, INF_EFORMAT,
                             "entry decodes to %" PRIu64 " bytes, more than the %zu allowed", raw,
                             max_len);
    unsigned long long fcs = ZSTD_getFrameContentSize(b + INF_CACHE_ENTRY_HEADER, (size_t)comp);
    if (fcs == ZSTD_CONTENTSIZE_ERROR || fcs == ZSTD_CONTENTSIZE_UNKNOWN || fcs != raw)
        return inf_error_set(err, INF_EFORMAT, "entry's zstd frame does not match its header");
    uint8_t *out = malloc(raw ? (size_t)raw : 1);
    if (!out)
        return inf_error_set(err, INF_ENOMEM, "out of memory");
    size_t got = ZSTD_decompress(out, (size_t)raw, b + INF_CACHE_ENTRY_HEADER, (size_t)comp);
    if (ZSTD_isError(got) || got != raw) {
        free(out);
        return inf_error_set(err, INF_EFORMAT, "entry's zstd frame is corrupt: %s",
                             ZSTD_isError(got) ? ZSTD_getErrorName(got) : "short");
    }
    uint8_t d[32];
    if (!sha256(out, (size_t)raw, d) || memcmp(d, b + 56, 32) != 0) {
        free(out);
        return inf_error_set(err, INF_EFORMAT, "entry's checksum does not match its content");
    }
    *data = out;
    *len = (size_t)raw;
    return INF_OK;
}

/* ---- the handle ------------------------------------------------------------------------------ */

struct mem_node {
    uint8_t key[32];
    void *data;
    size_t len;
    int64_t created_ms, touched_ms;
    struct mem_node *hnext;       /* bucket chain */
    struct mem_node *prev, *next; /* LRU: head = most recent */
};

struct digest_memo {
    char *path;
    int64_t size, mtime_ns;
    uint8_t digest[32];
};

struct inf_cache {
    struct inf_cache_params p;
    char *dir, *entries_dir;
    pthread_mutex_t mu;
    sqlite3 *db;
    int lock_fd;
    bool alone; /* held the store alone at open (recovery ran) */
    struct mem_node *buckets[MEM_BUCKETS];
    struct mem_node *lru_head, *lru_tail;
    uint64_t mem_bytes, mem_entries;
    uint64_t disk_bytes; /* index total as last known */
    unsigned tmp_counter;
    struct digest_memo memo[DIGEST_MEMO];
    unsigned memo_next;
    struct inf_cache_stats st;
};

static void entry_path(const struct inf_cache *c, const uint8_t key[32], char *out, size_t n)
{
    char h[65];
    hex(key, 32, h);
    snprintf(out, n, "%s/%.2s/%s.zst", c->entries_dir, h, h);
}

static bool db_exec(struct inf_cache *c, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(c->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        INF_LOG_WARN("cache", "sqlite: %s (%s)", msg ? msg : "?", sql);
        sqlite3_free(msg);
        return false;
    }
    return true;
}

static sqlite3_stmt *prep(struct inf_cache *c, const char *sql)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(c->db, sql, -1, &st, NULL) != SQLITE_OK) {
        INF_LOG_WARN("cache", "sqlite: %s (%s)", sqlite3_errmsg(c->db), sql);
        return NULL;
    }
    return st;
}

static uint64_t index_total(struct inf_cache *c)
{
    sqlite3_stmt *st = prep(c, "SELECT COALESCE(SUM(bytes),0) FROM entries");
    uint64_t t = 0;
    if (st && sqlite3_step(st) == SQLITE_ROW)
        t = (uint64_t)sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return t;
}

/* ---- memory tier (under c->mu) ----------------------------------------------------------------
 */

static unsigned mem_bucket(const uint8_t key[32])
{
    return (unsigned)(key[0] | (key[1] << 8)) % MEM_BUCKETS;
}

static struct mem_node *mem_find(struct inf_cache *c, const uint8_t key[32])
{
    for (struct mem_node *m = c->buckets[mem_bucket(key)]; m; m = m->hnext)
        if (memcmp(m->key, key, 32) == 0)
            return m;
    return NULL;
}

static void lru_unlink(struct inf_cache *c, struct mem_node *m)
{
    if (m->prev)
        m->prev->next = m->next;
    else
        c->lru_head = m->next;
    if (m->next)
        m->next->prev = m->prev;
    else
        c->lru_tail = m->prev;
    m->prev = m->next = NULL;
}

static void lru_front(struct inf_cache *c, struct mem_node *m)
{
    m->next = c->lru_head;
    m->prev = NULL;
    if (c->lru_head)
        c->lru_head->prev = m;
    c->lru_head = m;
    if (!c->lru_tail)
        c->lru_tail = m;
}

static void mem_remove(struct inf_cache *c, struct mem_node *m)
{
    struct mem_node **pp = &c->buckets[mem_bucket(m->key)];
    while (*pp != m)
        pp = &(*pp)->hnext;
    *pp = m->hnext;
    lru_unlink(c, m);
    c->mem_bytes -= m->len;
    c->mem_entries--;
    free(m->data);
    free(m);
}

static void mem_drop_key(struct inf_cache *c, const uint8_t key[32])
{
    struct mem_node *m = mem_find(c, key);
    if (m)
        mem_remove(c, m);
}

static void mem_clear(struct inf_cache *c)
{
    while (c->lru_head)
        mem_remove(c, c->lru_head);
}

/* Keep a copy of data (best effort: nothing when it does not fit or memory runs out). */
static void mem_put(struct inf_cache *c, const uint8_t key[32], const void *data, size_t len,
                    int64_t created_ms)
{
    if (!c->p.memory_bytes || len > c->p.memory_bytes)
        return;
    mem_drop_key(c, key);
    while (c->lru_tail && c->mem_bytes + len > c->p.memory_bytes)
        mem_remove(c, c->lru_tail);
    struct mem_node *m = calloc(1, sizeof(*m));
    void *d = malloc(len ? len : 1);
    if (!m || !d) {
        free(m);
        free(d);
        return;
    }
    memcpy(d, data, len);
    memcpy(m->key, key, 32);
    m->data = d;
    m->len = len;
    m->created_ms = created_ms;
    m->touched_ms = now_ms();
    unsigned b = mem_bucket(key);
    m->hnext = c->buckets[b];
    c->buckets[b] = m;
    lru_front(c, m);
    c->mem_bytes += len;
    c->mem_entries++;
}

/* ---- index rows (under c->mu) ------------------------------------------------------------------
 */

/* Drop an entry's row (in the caller's transaction, if any) and its memory copy. The file goes
   after the row is committed (unlink_entry): a kill between the two leaves an unindexed file,
   which recovery removes, never a row without its file. */
static void drop_row(struct inf_cache *c, const uint8_t key[32])
{
    sqlite3_stmt *st = prep(c, "DELETE FROM entries WHERE key=?1 RETURNING bytes");
    if (st) {
        sqlite3_bind_blob(st, 1, key, 32, SQLITE_STATIC);
        if (sqlite3_step(st) == SQLITE_ROW) {
            uint64_t b = (uint64_t)sqlite3_column_int64(st, 0);
            c->disk_bytes = c->disk_bytes > b ? c->disk_bytes - b : 0;
        }
        sqlite3_finalize(st);
    }
    mem_drop_key(c, key);
}

static void unlink_entry(struct inf_cache *c, const uint8_t key[32])
{
    char path[4096];
    entry_path(c, key, path, sizeof(path));
    unlink(path);
}

static void drop_entry(struct inf_cache *c, const uint8_t key[32])
{
    drop_row(c, key);
    unlink_entry(c, key);
}

/* Remove the rows selected by sel (which yields keys), then their files; returns how many. */
static uint64_t drop_selected(struct inf_cache *c, sqlite3_stmt *sel)
{
    uint8_t(*keys)[32] = NULL;
    size_t n = 0, cap = 0;
    while (sqlite3_step(sel) == SQLITE_ROW) {
        if (sqlite3_column_bytes(sel, 0) != 32)
            continue;
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 64;
            void *p = realloc(keys, nc * 32);
            if (!p)
                break;
            keys = p;
            cap = nc;
        }
        memcpy(keys[n++], sqlite3_column_blob(sel, 0), 32);
    }
    sqlite3_finalize(sel);
    db_exec(c, "BEGIN");
    for (size_t i = 0; i < n; i++)
        drop_row(c, keys[i]);
    db_exec(c, "COMMIT");
    for (size_t i = 0; i < n; i++)
        unlink_entry(c, keys[i]);
    free(keys);
    return n;
}

static uint64_t expire(struct inf_cache *c)
{
    if (c->p.ttl_seconds <= 0)
        return 0;
    sqlite3_stmt *st = prep(c, "SELECT key FROM entries WHERE created < ?1");
    if (!st)
        return 0;
    sqlite3_bind_int64(st, 1, now_ms() - c->p.ttl_seconds * 1000);
    uint64_t n = drop_selected(c, st);
    c->st.expired += n;
    return n;
}

/* Evict least recently used entries until the index fits max_bytes. */
static uint64_t evict(struct inf_cache *c)
{
    uint64_t n = 0;
    if (!c->p.max_bytes || c->disk_bytes <= c->p.max_bytes)
        return 0;
    c->disk_bytes = index_total(c); /* other processes may have removed entries */
    while (c->disk_bytes > c->p.max_bytes) {
        sqlite3_stmt *st = prep(c, "SELECT key FROM entries ORDER BY last_used LIMIT ?1");
        if (!st)
            break;
        sqlite3_bind_int(st, 1, EVICT_BATCH);
        uint64_t k = drop_selected(c, st);
        if (!k)
            break;
        n += k;
    }
    c->st.evictions += n;
    return n;
}

/* ---- open / recovery ------------------------------------------------------------------------- */

static bool is_hex64(const char *s, size_t n)
{
    if (n != 64)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

static bool unhex32(const char *s, uint8_t out[32])
{
    if (!is_hex64(s, 64))
        return false;
    for (int i = 0; i < 32; i++) {
        int hi = s[2 * i] <= '9' ? s[2 * i] - '0' : s[2 * i] - 'a' + 10;
        int lo = s[2 * i + 1] <= '9' ? s[2 * i + 1] - '0' : s[2 * i + 1] - 'a' + 10;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return true;
}

static bool row_exists(struct inf_cache *c, const uint8_t key[32])
{
    sqlite3_stmt *st = prep(c, "SELECT 1 FROM entries WHERE key=?1");
    bool found = false;
    if (st) {
        sqlite3_bind_blob(st, 1, key, 32, SQLITE_STATIC);
        found = sqlite3_step(st) == SQLITE_ROW;
        sqlite3_finalize(st);
    }
    return found;
}

/*
 * Walk the entry files: temporary ones (a write killed midway) and complete ones without a row
 * (killed between rename and index) are counted and, when remove, deleted.
 */
static void scan_files(struct inf_cache *c, bool remove, uint64_t *partial, uint64_t *orphans,
                       void (*problem)(const char *, void *), void *user)
{
    DIR *top = opendir(c->entries_dir);
    if (!top)
        return;
    struct dirent *d;
    while ((d = readdir(top))) {
        if (strlen(d->d_name) != 2 || d->d_name[0] == '.')
            continue;
        char sub[4096];
        snprintf(sub, sizeof(sub), "%s/%s", c->entries_dir, d->d_name);
        DIR *dd = opendir(sub);
        if (!dd)
            continue;
        struct dirent *f;
        while ((f = readdir(dd))) {
            if (f->d_name[0] == '.')
                continue;
            char path[4096 + 300];
            snprintf(path, sizeof(path), "%s/%s", sub, f->d_name);
            size_t l = strlen(f->d_name);
            uint8_t key[32];
            bool complete = l == 68 && strcmp(f->d_name + 64, ".zst") == 0 &&
                            is_hex64(f->d_name, 64) && unhex32(f->d_name, key);
            char line[4500];
            if (!complete) {
                if (!strstr(f->d_name, ".tmp."))
                    continue; /* not ours */
                (*partial)++;
                snprintf(line, sizeof(line), "%s: partial write%s", path,
                         remove ? " (removed)" : "");
            } else if (!row_exists(c, key)) {
                (*orphans)++;
                snprintf(line, sizeof(line), "%s: complete but not indexed%s", path,
                         remove ? " (removed)" : "");
            } else {
                continue;
            }
            if (problem)
                problem(line, user);
            if (remove)
                unlink(path);
        }
        closedir(dd);
    }
    closedir(top);
}

/* Rows whose file is gone (removed by hand): dropped. */
static void drop_dangling(struct inf_cache *c)
{
    sqlite3_stmt *st = prep(c, "SELECT key FROM entries");
    if (!st)
        return;
    uint8_t(*keys)[32] = NULL;
    size_t n = 0, cap = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        if (sqlite3_column_bytes(st, 0) != 32)
            continue;
        uint8_t k[32];
        memcpy(k, sqlite3_column_blob(st, 0), 32);
        char path[4096];
        entry_path(c, k, path, sizeof(path));
        if (access(path, F_OK) == 0)
            continue;
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 16;
            void *p = realloc(keys, nc * 32);
            if (!p)
                break;
            keys = p;
            cap = nc;
        }
        memcpy(keys[n++], k, 32);
    }
    sqlite3_finalize(st);
    for (size_t i = 0; i < n; i++)
        drop_entry(c, keys[i]);
    if (n)
        INF_LOG_WARN("cache", "%zu index rows had no entry file; dropped", n);
    free(keys);
}

inf_status inf_cache_open(const struct inf_cache_params *p, struct inf_cache **out,
                          struct inf_error *err)
{
    *out = NULL;
    if (!p->dir || !p->dir[0])
        return inf_error_set(err, INF_EINVAL, "no cache directory given (cache.dir)");
    struct inf_cache *c = calloc(1, sizeof(*c));
    if (!c)
        return inf_error_set(err, INF_ENOMEM, "out of memory");
    c->p = *p;
    c->lock_fd = -1;
    pthread_mutex_init(&c->mu, NULL);
    size_t dl = strlen(p->dir);
    c->dir = strdup(p->dir);
    c->entries_dir = malloc(dl + 16);
    char dbpath[4096], lockpath[4096];
    inf_status st = INF_OK;
    if (!c->dir || !c->entries_dir) {
        st = inf_error_set(err, INF_ENOMEM, "out of memory");
        goto fail;
    }
    c->p.dir = c->dir;
    snprintf(c->entries_dir, dl + 16, "%s/entries", p->dir);
    if (dl > 4000) {
        st = inf_error_set(err, INF_EINVAL, "cache directory path too long");
        goto fail;
    }
    snprintf(dbpath, sizeof(dbpath), "%s/index.db", p->dir);
    snprintf(lockpath, sizeof(lockpath), "%s/owner.lock", p->dir);
    if (!p->read_only) {
        if ((inf__mkdir_parents(c->entries_dir) != 0 ||
             (mkdir(c->entries_dir, 0755) != 0 && errno != EEXIST))) {
            st = inf_error_set(err, INF_EIO, "cannot create the cache directory '%s': %s",
                               c->entries_dir, strerror(errno));
            goto fail;
        }
        c->lock_fd = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (c->lock_fd >= 0) {
            c->alone = flock(c->lock_fd, LOCK_EX | LOCK_NB) == 0;
        }
    } else {
        struct stat sb;
        if (stat(dbpath, &sb) != 0) {
            st = inf_error_set(err, INF_ENOTFOUND, "no response cache at '%s'", p->dir);
            goto fail;
        }
    }
    int flags = p->read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
    if (sqlite3_open_v2(dbpath, &c->db, flags | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
        st = inf_error_set(err, INF_EIO, "cannot open the cache index '%s': %s", dbpath,
                           c->db ? sqlite3_errmsg(c->db) : "out of memory");
        goto fail;
    }
    sqlite3_busy_timeout(c->db, 5000);
    if (!p->read_only) {
        static const char *const ddl =
            "PRAGMA journal_mode=WAL;"
            "PRAGMA synchronous=NORMAL;"
            "CREATE TABLE IF NOT EXISTS meta(k TEXT PRIMARY KEY, v TEXT NOT NULL);"
            "CREATE TABLE IF NOT EXISTS entries(key BLOB PRIMARY KEY, model TEXT NOT NULL,"
            " bytes INTEGER NOT NULL, raw_bytes INTEGER NOT NULL, created INTEGER NOT NULL,"
            " last_used INTEGER NOT NULL, hits INTEGER NOT NULL DEFAULT 0);"
            "CREATE INDEX IF NOT EXISTS entries_lru ON entries(last_used);"
            "CREATE INDEX IF NOT EXISTS entries_model ON entries(model);"
            "CREATE TABLE IF NOT EXISTS models(path TEXT PRIMARY KEY, size INTEGER NOT NULL,"
            " mtime_ns INTEGER NOT NULL, digest BLOB NOT NULL);"
            "INSERT OR IGNORE INTO meta(k, v) VALUES('schema', '1');";
        char *msg = NULL;
        if (sqlite3_exec(c->db, ddl, NULL, NULL, &msg) != SQLITE_OK) {
            st = inf_error_set(err, INF_EIO, "cache index '%s': %s", dbpath, msg ? msg : "?");
            sqlite3_free(msg);
            goto fail;
        }
    } else {
        sqlite3_exec(c->db, "PRAGMA query_only=1", NULL, NULL, NULL);
    }
    if (c->alone) {
        /* nobody else has the store open: what a killed writer left goes now */
        uint64_t partial = 0, orphans = 0;
        scan_files(c, true, &partial, &orphans, NULL, NULL);
        if (partial || orphans)
            INF_LOG_WARN("cache",
                         "removed %" PRIu64 " partial and %" PRIu64
                         " unindexed entry files (an interrupted write)",
                         partial, orphans);
        drop_dangling(c);
    }
    if (c->lock_fd >= 0)
        flock(c->lock_fd, LOCK_SH); /* from now on others see the store as in use */
    c->disk_bytes = index_total(c);
    if (!p->read_only) {
        pthread_mutex_lock(&c->mu);
        expire(c);
        evict(c);
        pthread_mutex_unlock(&c->mu);
    }
    *out = c;
    return INF_OK;
fail:
    inf_cache_free(c);
    return st;
}

void inf_cache_free(struct inf_cache *c)
{
    if (!c)
        return;
    mem_clear(c);
    if (c->db)
        sqlite3_close(c->db);
    if (c->lock_fd >= 0)
        close(c->lock_fd);
    for (int i = 0; i < DIGEST_MEMO; i++)
        free(c->memo[i].path);
    pthread_mutex_destroy(&c->mu);
    free(c->dir);
    free(c->entries_dir);
    free(c);
}

/* ---- get / put ----------------------------------------------------------------------------------
 */

static void *read_all(const char *path, size_t max, size_t *n)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || (uint64_t)sb.st_size > max) {
        close(fd);
        errno = EFBIG;
        return NULL;
    }
    size_t len = (size_t)sb.st_size;
    uint8_t *b = malloc(len ? len : 1);
    size_t got = 0;
    while (b && got < len) {
        ssize_t r = read(fd, b + got, len - got);
        if (r <= 0) {
            if (r < 0 && errno == EINTR)
                continue;
            break;
        }
        got += (size_t)r;
    }
    close(fd);
    if (!b)
        return NULL;
    *n = got;
    return b;
}

static size_t decoded_cap(const struct inf_cache *c)
{
    return c->p.max_entry_bytes ? (size_t)c->p.max_entry_bytes : (size_t)MAX_DECODED;
}

/* The largest file an entry can be: the row's size is not trusted (an entry replaced by a
   write killed before its row was updated keeps the old size). */
static size_t file_cap(const struct inf_cache *c)
{
    return ZSTD_compressBound(decoded_cap(c)) + INF_CACHE_ENTRY_HEADER;
}

inf_status inf_cache_get(struct inf_cache *c, const uint8_t key[INF_CACHE_KEY_BYTES], void **data,
                         size_t *len, struct inf_error *err)
{
    *data = NULL;
    *len = 0;
    int64_t now = now_ms(), created = 0, last_used = 0;
    pthread_mutex_lock(&c->mu);
    sqlite3_stmt *st = prep(c, "SELECT bytes, created, last_used FROM entries WHERE key=?1");
    bool found = false;
    if (st) {
        sqlite3_bind_blob(st, 1, key, 32, SQLITE_STATIC);
        if (sqlite3_step(st) == SQLITE_ROW) {
            found = true;
            created = sqlite3_column_int64(st, 1);
            last_used = sqlite3_column_int64(st, 2);
        }
        sqlite3_finalize(st);
    }
    if (!found) { /* cleared by another process, evicted, or never stored */
        mem_drop_key(c, key);
        c->st.misses++;
        pthread_mutex_unlock(&c->mu);
        return INF_ENOTFOUND;
    }
    if (c->p.ttl_seconds > 0 && created < now - c->p.ttl_seconds * 1000) {
        if (!c->p.read_only) {
            drop_entry(c, key);
        }
        c->st.expired++;
        c->st.misses++;
        pthread_mutex_unlock(&c->mu);
        return INF_ENOTFOUND;
    }
    struct mem_node *m = mem_find(c, key);
    if (m && m->created_ms == created) {
        void *d = malloc(m->len ? m->len : 1);
        if (d) {
            memcpy(d, m->data, m->len);
            *data = d;
            *len = m->len;
            lru_unlink(c, m);
            lru_front(c, m);
            c->st.hits++;
            c->st.mem_hits++;
            if (!c->p.read_only && now - last_used > LAST_USED_SLACK) {
                sqlite3_stmt *u =
                    prep(c, "UPDATE entries SET last_used=?2, hits=hits+1 WHERE key=?1");
                if (u) {
                    sqlite3_bind_blob(u, 1, key, 32, SQLITE_STATIC);
                    sqlite3_bind_int64(u, 2, now);
                    sqlite3_step(u);
                    sqlite3_finalize(u);
                }
            }
            pthread_mutex_unlock(&c->mu);
            return INF_OK;
        }
    } else if (m) {
        mem_remove(c, m); /* replaced since */
    }
    pthread_mutex_unlock(&c->mu);

    char path[4096];
    entry_path(c, key, path, sizeof(path));
    size_t n = 0;
    void *buf = read_all(path, file_cap(c), &n);
    struct inf_error e2 = {0};
    inf_status rc = INF_OK;
    if (!buf)
        rc = inf_error_set(&e2, INF_EIO, "cannot read '%s': %s", path, strerror(errno));
    else
        rc = inf_cache_entry_decode(buf, n, key, decoded_cap(c), data, len, &e2);
    free(buf);
    pthread_mutex_lock(&c->mu);
    if (rc != INF_OK) {
        INF_LOG_WARN("cache", "entry dropped, answered as a miss: %s", inf_error_message(&e2));
        if (!c->p.read_only) {
            drop_entry(c, key);
        }
        c->st.corrupt++;
        c->st.misses++;
        pthread_mutex_unlock(&c->mu);
        (void)err;
        return INF_ENOTFOUND;
    }
    c->st.hits++;
    if (!c->p.read_only) {
        sqlite3_stmt *u = prep(c, "UPDATE entries SET last_used=?2, hits=hits+1 WHERE key=?1");
        if (u) {
            sqlite3_bind_blob(u, 1, key, 32, SQLITE_STATIC);
            sqlite3_bind_int64(u, 2, now);
            sqlite3_step(u);
            sqlite3_finalize(u);
        }
    }
    mem_put(c, key, *data, *len, created);
    pthread_mutex_unlock(&c->mu);
    return INF_OK;
}

static bool disk_full(int e)
{
    return e == ENOSPC || e == EDQUOT;
}

static inf_status write_failed(struct inf_cache *c, int e, const char *what, struct inf_error *err)
{
    pthread_mutex_lock(&c->mu);
    c->st.write_errors++;
    if (disk_full(e) && !c->st.writes_disabled) {
        c->st.writes_disabled = true;
        INF_LOG_WARN("cache", "the disk is full (%s): response cache writes are off until restart",
                     strerror(e));
    }
    pthread_mutex_unlock(&c->mu);
    return inf_error_set(err, INF_EIO, "cache write failed (%s): %s", what, strerror(e));
}

inf_status inf_cache_put(struct inf_cache *c, const uint8_t key[INF_CACHE_KEY_BYTES],
                         const char *model, const void *data, size_t len, struct inf_error *err)
{
    if (c->p.read_only)
        return inf_error_set(err, INF_EINVAL, "the cache was opened read-only");
    if (c->p.max_entry_bytes && len > c->p.max_entry_bytes)
        return inf_error_set(err, INF_ELIMIT,
                             "an answer of %zu bytes is over cache.max_entry_bytes", len);
    if (c->st.writes_disabled)
        return inf_error_set(err, INF_EIO, "cache writes are off (the disk was full)");
    void *enc = NULL;
    size_t enc_len = 0;
    inf_status rc = inf_cache_entry_encode(key, data, len, &enc, &enc_len, err);
    if (rc)
        return rc;
    char path[4096], tmp[4200], sub[4096];
    entry_path(c, key, path, sizeof(path));
    char h[65];
    hex(key, 32, h);
    snprintf(sub, sizeof(sub), "%s/%.2s", c->entries_dir, h);
    pthread_mutex_lock(&c->mu);
    unsigned k = ++c->tmp_counter;
    pthread_mutex_unlock(&c->mu);
    snprintf(tmp, sizeof(tmp), "%s.tmp.%ld.%u", path, (long)getpid(), k);
    if (mkdir(sub, 0755) != 0 && errno != EEXIST) {
        int e = errno;
        free(enc);
        return write_failed(c, e, sub, err);
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        int e = errno;
        free(enc);
        return write_failed(c, e, tmp, err);
    }
    size_t off = 0;
    while (off < enc_len) {
        ssize_t w = write(fd, (const char *)enc + off, enc_len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            int e = w < 0 ? errno : ENOSPC;
            close(fd);
            unlink(tmp);
            free(enc);
            return write_failed(c, e, tmp, err);
        }
        off += (size_t)w;
    }
    free(enc);
    if (close(fd) != 0) {
        int e = errno;
        unlink(tmp);
        return write_failed(c, e, tmp, err);
    }
    pthread_mutex_lock(&c->mu);
    /* the replaced entry's row goes first, so the old file is never indexed under new sizes */
    sqlite3_stmt *old = prep(c, "SELECT bytes FROM entries WHERE key=?1");
    uint64_t old_bytes = 0;
    if (old) {
        sqlite3_bind_blob(old, 1, key, 32, SQLITE_STATIC);
        if (sqlite3_step(old) == SQLITE_ROW)
            old_bytes = (uint64_t)sqlite3_column_int64(old, 0);
        sqlite3_finalize(old);
    }
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        pthread_mutex_unlock(&c->mu);
        return write_failed(c, e, path, err);
    }
    int64_t now = now_ms();
    sqlite3_stmt *ins =
        prep(c, "INSERT OR REPLACE INTO entries(key, model, bytes, raw_bytes, created, last_used,"
                " hits) VALUES(?1, ?2, ?3, ?4, ?5, ?5, 0)");
    bool ok = false;
    if (ins) {
        char mname[INF_CACHE_MODEL_MAX];
        snprintf(mname, sizeof(mname), "%s", model ? model : "");
        sqlite3_bind_blob(ins, 1, key, 32, SQLITE_STATIC);
        sqlite3_bind_text(ins, 2, mname, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(ins, 3, (sqlite3_int64)(enc_len - INF_CACHE_ENTRY_HEADER));
        sqlite3_bind_int64(ins, 4, (sqlite3_int64)len);
        sqlite3_bind_int64(ins, 5, now);
        ok = sqlite3_step(ins) == SQLITE_DONE;
        sqlite3_finalize(ins);
    }
    if (!ok) {
        /* the file is complete but unindexed: remove it now rather than at the next open */
        int ec = sqlite3_extended_errcode(c->db);
        INF_LOG_WARN("cache", "cannot index an entry: %s", sqlite3_errmsg(c->db));
        unlink(path);
        c->disk_bytes = c->disk_bytes > old_bytes ? c->disk_bytes - old_bytes : 0;
        mem_drop_key(c, key);
        pthread_mutex_unlock(&c->mu);
        return write_failed(c, ec == SQLITE_FULL ? ENOSPC : EIO, "index", err);
    }
    c->disk_bytes = c->disk_bytes - (c->disk_bytes >= old_bytes ? old_bytes : c->disk_bytes) +
                    (enc_len - INF_CACHE_ENTRY_HEADER);
    c->st.puts++;
    c->st.put_bytes += enc_len - INF_CACHE_ENTRY_HEADER;
    mem_put(c, key, data, len, now);
    evict(c);
    pthread_mutex_unlock(&c->mu);
    return INF_OK;
}

/* ---- model identity
 * ------------------------------------------------------------------------------ */

inf_status inf_cache_model_digest(struct inf_cache *c, const char *path,
                                  uint8_t out[INF_CACHE_KEY_BYTES], struct inf_error *err)
{
    struct stat sb;
    if (stat(path, &sb) != 0)
        return inf_error_set(err, INF_EIO, "cannot stat '%s': %s", path, strerror(errno));
    int64_t size = (int64_t)sb.st_size;
    int64_t mtime = (int64_t)sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec;
    pthread_mutex_lock(&c->mu);
    for (int i = 0; i < DIGEST_MEMO; i++) {
        struct digest_memo *m = &c->memo[i];
        if (m->path && strcmp(m->path, path) == 0 && m->size == size && m->mtime_ns == mtime) {
            memcpy(out, m->digest, 32);
            pthread_mutex_unlock(&c->mu);
            return INF_OK;
        }
    }
    sqlite3_stmt *st =
        prep(c, "SELECT digest FROM models WHERE path=?1 AND size=?2 AND mtime_ns=?3");
    bool found = false;
    if (st) {
        sqlite3_bind_text(st, 1, path, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, size);
        sqlite3_bind_int64(st, 3, mtime);
        if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_bytes(st, 0) == 32) {
            memcpy(out, sqlite3_column_blob(st, 0), 32);
            found = true;
        }
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&c->mu);
    if (!found) {
        /* the whole file, once per (path, size, mtime): metadata and tensor data alike */
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            return inf_error_set(err, INF_EIO, "cannot open '%s': %s", path, strerror(errno));
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        uint8_t *buf = malloc(DIGEST_CHUNK);
        bool ok = md && buf && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1;
        uint8_t sz[8];
        put_le64(sz, (uint64_t)size);
        ok = ok && EVP_DigestUpdate(md, "inferno-model-v1", 16) == 1 &&
             EVP_DigestUpdate(md, sz, 8) == 1;
        while (ok) {
            ssize_t r = read(fd, buf, DIGEST_CHUNK);
            if (r < 0 && errno == EINTR)
                continue;
            if (r < 0)
                ok = false;
            if (r <= 0)
                break;
            ok = EVP_DigestUpdate(md, buf, (size_t)r) == 1;
        }
        unsigned int dl = 32;
        ok = ok && EVP_DigestFinal_ex(md, out, &dl) == 1;
        int e = errno;
        EVP_MD_CTX_free(md);
        free(buf);
        close(fd);
        if (!ok)
            return inf_error_set(err, INF_EIO, "cannot read '%s': %s", path, strerror(e));
        pthread_mutex_lock(&c->mu);
        if (!c->p.read_only) {
            sqlite3_stmt *ins =
                prep(c, "INSERT OR REPLACE INTO models(path, size, mtime_ns, digest)"
                        " VALUES(?1, ?2, ?3, ?4)");
            if (ins) {
                sqlite3_bind_text(ins, 1, path, -1, SQLITE_STATIC);
                sqlite3_bind_int64(ins, 2, size);
                sqlite3_bind_int64(ins, 3, mtime);
                sqlite3_bind_blob(ins, 4, out, 32, SQLITE_STATIC);
                sqlite3_step(ins);
                sqlite3_finalize(ins);
            }
        }
        pthread_mutex_unlock(&c->mu);
    }
    pthread_mutex_lock(&c->mu);
    struct digest_memo *m = &c->memo[c->memo_next++ % DIGEST_MEMO];
    free(m->path);
    m->path = strdup(path);
    m->size = size;
    m->mtime_ns = mtime;
    memcpy(m->digest, out, 32);
    pthread_mutex_unlock(&c->mu);
    return INF_OK;
}

/* ---- inspection and maintenance
 * ------------------------------------------------------------------ */

inf_status inf_cache_stats(struct inf_cache *c, struct inf_cache_stats *out, struct inf_error *err)
{
    pthread_mutex_lock(&c->mu);
    *out = c->st;
    out->mem_entries = c->mem_entries;
    out->mem_bytes = c->mem_bytes;
    sqlite3_stmt *st =
        prep(c, "SELECT COUNT(*), COALESCE(SUM(bytes),0), COALESCE(SUM(raw_bytes),0),"
                " COALESCE(MIN(created),0), COALESCE(MAX(created),0) FROM entries");
    inf_status rc = INF_OK;
    if (st && sqlite3_step(st) == SQLITE_ROW) {
        out->entries = (uint64_t)sqlite3_column_int64(st, 0);
        out->bytes = (uint64_t)sqlite3_column_int64(st, 1);
        out->raw_bytes = (uint64_t)sqlite3_column_int64(st, 2);
        out->oldest_ms = sqlite3_column_int64(st, 3);
        out->newest_ms = sqlite3_column_int64(st, 4);
    } else {
        rc = inf_error_set(err, INF_EIO, "cache index: %s", sqlite3_errmsg(c->db));
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&c->mu);
    return rc;
}

inf_status inf_cache_list(struct inf_cache *c, const char *model,
                          int (*fn)(const struct inf_cache_entry_info *e, void *user), void *user,
                          struct inf_error *err)
{
    pthread_mutex_lock(&c->mu);
    sqlite3_stmt *st =
        prep(c, model ? "SELECT key, model, bytes, raw_bytes, created, last_used, hits"
                        " FROM entries WHERE model=?1 ORDER BY last_used DESC"
                      : "SELECT key, model, bytes, raw_bytes, created, last_used, hits"
                        " FROM entries ORDER BY last_used DESC");
    if (!st) {
        pthread_mutex_unlock(&c->mu);
        return inf_error_set(err, INF_EIO, "cache index: %s", sqlite3_errmsg(c->db));
    }
    if (model)
        sqlite3_bind_text(st, 1, model, -1, SQLITE_STATIC);
    while (sqlite3_step(st) == SQLITE_ROW) {
        struct inf_cache_entry_info e = {0};
        if (sqlite3_column_bytes(st, 0) != 32)
            continue;
        memcpy(e.key, sqlite3_column_blob(st, 0), 32);
        const unsigned char *m = sqlite3_column_text(st, 1);
        snprintf(e.model, sizeof(e.model), "%s", m ? (const char *)m : "");
        e.bytes = (uint64_t)sqlite3_column_int64(st, 2);
        e.raw_bytes = (uint64_t)sqlite3_column_int64(st, 3);
        e.created_ms = sqlite3_column_int64(st, 4);
        e.last_used_ms = sqlite3_column_int64(st, 5);
        e.hits = (uint64_t)sqlite3_column_int64(st, 6);
        if (fn(&e, user))
            break;
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&c->mu);
    return INF_OK;
}

inf_status inf_cache_clear(struct inf_cache *c, const char *model, uint64_t *n_removed,
                           struct inf_error *err)
{
    if (c->p.read_only)
        return inf_error_set(err, INF_EINVAL, "the cache was opened read-only");
    pthread_mutex_lock(&c->mu);
    sqlite3_stmt *st =
        prep(c, model ? "SELECT key FROM entries WHERE model=?1" : "SELECT key FROM entries");
    if (!st) {
        pthread_mutex_unlock(&c->mu);
        return inf_error_set(err, INF_EIO, "cache index: %s", sqlite3_errmsg(c->db));
    }
    if (model)
        sqlite3_bind_text(st, 1, model, -1, SQLITE_TRANSIENT);
    uint64_t n = drop_selected(c, st);
    if (!model)
        mem_clear(c);
    pthread_mutex_unlock(&c->mu);
    if (n_removed)
        *n_removed = n;
    return INF_OK;
}

inf_status inf_cache_prune(struct inf_cache *c, uint64_t *n_removed, struct inf_error *err)
{
    if (c->p.read_only)
        return inf_error_set(err, INF_EINVAL, "the cache was opened read-only");
    pthread_mutex_lock(&c->mu);
    c->disk_bytes = index_total(c);
    uint64_t n = expire(c);
    n += evict(c);
    pthread_mutex_unlock(&c->mu);
    if (n_removed)
        *n_removed = n;
    return INF_OK;
}

inf_status inf_cache_verify(struct inf_cache *c, struct inf_cache_verify_report *rep,
                            void (*problem)(const char *line, void *user), void *user,
                            struct inf_error *err)
{
    memset(rep, 0, sizeof(*rep));
    pthread_mutex_lock(&c->mu);
    sqlite3_stmt *st = prep(c, "PRAGMA integrity_check");
    if (st && sqlite3_step(st) == SQLITE_ROW) {
        const unsigned char *t = sqlite3_column_text(st, 0);
        rep->index_ok = t && strcmp((const char *)t, "ok") == 0;
        if (!rep->index_ok && problem) {
            char line[600];
            snprintf(line, sizeof(line), "index.db: %s", t ? (const char *)t : "?");
            problem(line, user);
        }
    }
    sqlite3_finalize(st);
    /* every row: read and decode its file in full */
    st = prep(c, "SELECT key, bytes FROM entries");
    if (!st) {
        pthread_mutex_unlock(&c->mu);
        return inf_error_set(err, INF_EIO, "cache index: %s", sqlite3_errmsg(c->db));
    }
    uint8_t(*bad)[32] = NULL;
    size_t n_bad = 0, cap_bad = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        if (sqlite3_column_bytes(st, 0) != 32)
            continue;
        rep->checked++;
        uint8_t key[32];
        memcpy(key, sqlite3_column_blob(st, 0), 32);
        char path[4096];
        entry_path(c, key, path, sizeof(path));
        size_t n = 0;
        void *buf = read_all(path, file_cap(c), &n);
        struct inf_error e2 = {0};
        void *data = NULL;
        size_t len = 0;
        inf_status rc;
        if (!buf)
            rc = inf_error_set(&e2, INF_EIO, "cannot read: %s", strerror(errno));
        else
            rc = inf_cache_entry_decode(buf, n, key, decoded_cap(c), &data, &len, &e2);
        free(buf);
        free(data);
        if (rc == INF_OK) {
            rep->ok++;
            continue;
        }
        rep->bad++;
        if (problem) {
            char line[4096 + 600];
            snprintf(line, sizeof(line), "%s: %s%s", path, inf_error_message(&e2),
                     c->p.read_only ? "" : " (dropped)");
            problem(line, user);
        }
        if (n_bad == cap_bad) {
            size_t nc = cap_bad ? cap_bad * 2 : 16;
            void *p = realloc(bad, nc * 32);
            if (!p)
                continue;
            bad = p;
            cap_bad = nc;
        }
        memcpy(bad[n_bad++], key, 32);
    }
    sqlite3_finalize(st);
    if (!c->p.read_only) {
        db_exec(c, "BEGIN");
        for (size_t i = 0; i < n_bad; i++)
            drop_row(c, bad[i]);
        db_exec(c, "COMMIT");
        for (size_t i = 0; i < n_bad; i++)
            unlink_entry(c, bad[i]);
    }
    free(bad);
    /* files: removed only when nobody else may be writing them right now */
    bool alone = false;
    if (!c->p.read_only && c->lock_fd >= 0)
        alone = flock(c->lock_fd, LOCK_EX | LOCK_NB) == 0;
    scan_files(c, alone, &rep->partial, &rep->orphans, problem, user);
    if (c->lock_fd >= 0)
        flock(c->lock_fd, LOCK_SH); /* a failed conversion may have dropped the shared lock */
    pthread_mutex_unlock(&c->mu);
    return INF_OK;
}
