/*
 * models.c - the servable models and the loaded engines: load on first use, at most max_loaded
 * engines, the least recently used idle unpinned one unloaded to make room.
 */
#include "inferno/models.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "inferno/log.h"
#include "server/sched.h"

struct model_slot {
    struct srv_model_entry entry;
    struct srv_engine *engine; /* NULL when not loaded */
    int pins;
    uint64_t last_used;
    bool loading;
    bool failed; /* the last load failed */
    /* the failed load: its error, and the file as it was then (size, mtime); the same file is
       not loaded again — every request would pay for mapping and checking it — until it
       changes */
    struct inf_error fail_err;
    off_t fail_size;
    struct timespec fail_mtime;
    /* keep_alive (Ollama's API): unloaded once idle at this monotonic time; 0 = no expiry */
    double expires;
    int64_t expires_wall; /* the same moment, Unix seconds, for /api/ps */
};

/* The file's size and modification time; false when it cannot be stat'ed. */
static bool file_sig(const char *path, off_t *size, struct timespec *mtime)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return false;
    *size = st.st_size;
    *mtime = st.st_mtim;
    return true;
}

/* The last load of s failed and the file has not changed since. */
static bool failed_unchanged(const struct model_slot *s)
{
    off_t size;
    struct timespec mt;
    return s->failed && file_sig(s->entry.path, &size, &mt) && size == s->fail_size &&
           mt.tv_sec == s->fail_mtime.tv_sec && mt.tv_nsec == s->fail_mtime.tv_nsec;
}

struct srv_models {
    pthread_mutex_t mu;
    pthread_cond_t cv; /* a load finished */
    struct model_slot *items;
    size_t n;
    int max_loaded;
    uint64_t tick;
    struct srv_engine_params engine;
    char models_dir[4096]; /* "" when none */
};

static void file_stem(const char *path, char *out, size_t size)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t n = strlen(base);
    if (n > 5 && strcmp(base + n - 5, ".gguf") == 0)
        n -= 5;
    if (n >= size)
        n = size - 1;
    memcpy(out, base, n);
    out[n] = 0;
}

static inf_status add_model(struct srv_models *m, const char *id, const char *path,
                            struct inf_error *err)
{
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->items[i].entry.id, id) == 0)
            return INF_OK; /* the first one named wins */
    struct model_slot *p = realloc(m->items, (m->n + 1) * sizeof(*p));
    if (!p)
        return inf_error_set(err, INF_ENOMEM, "out of memory");
    m->items = p;
    struct model_slot *s = &m->items[m->n++];
    memset(s, 0, sizeof(*s));
    snprintf(s->entry.id, sizeof(s->entry.id), "%s", id);
    snprintf(s->entry.path, sizeof(s->entry.path), "%s", path);
    struct stat sb;
    if (stat(path, &sb) == 0)
        s->entry.created = (int64_t)sb.st_mtime;
    return INF_OK;
}

inf_status srv_models_new(const struct srv_models_params *p, struct srv_models **out,
                          struct inf_error *err)
{
    *out = NULL;
    struct srv_models *m = calloc(1, sizeof(*m));
    if (!m)
        return inf_error_set(err, INF_ENOMEM, "out of memory");
    pthread_mutex_init(&m->mu, NULL);
    pthread_cond_init(&m->cv, NULL);
    m->max_loaded = p->max_loaded > 0 ? p->max_loaded : 1;
    m->engine = p->engine;
    m->engine.model_path = NULL;
    m->engine.model_id = NULL;
    snprintf(m->models_dir, sizeof(m->models_dir), "%s", p->models_dir ? p->models_dir : "");
    inf_status rc = INF_OK;
    for (int i = 0; i < p->n_model_paths && rc == INF_OK; i++) {
        char id[256];
        if (p->model_ids && p->model_ids[i])
            snprintf(id, sizeof(id), "%s", p->model_ids[i]);
        else
            file_stem(p->model_paths[i], id, sizeof(id));
        rc = add_model(m, id, p->model_paths[i], err);
    }
    if (rc == INF_OK && p->models_dir && p->models_dir[0]) {
        struct inf_model_list list = {0};
        struct inf_error serr = {0};
        if (inf_models_scan(p->models_dir, p->models_db, &list, &serr) == INF_OK) {
            for (size_t i = 0; i < list.n && rc == INF_OK; i++)
                if (strcmp(list.items[i].format, "gguf") == 0)
                    rc = add_model(m, list.items[i].name, list.items[i].path, err);
            inf_model_list_release(&list);
        } else {
            INF_LOG_WARN("server", "models_dir '%s': %s", p->models_dir, inf_error_message(&serr));
        }
    }
    if (rc == INF_OK && m->n == 0)
        rc = inf_error_set(err, INF_EINVAL, "no model to serve (give -m MODEL or models_dir)");
    if (rc != INF_OK) {
        srv_models_free(m, 0);
        return rc;
    }
    *out = m;
    return INF_OK;
}

void srv_models_free(struct srv_models *m, int drain_ms)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n; i++)
        if (m->items[i].engine)
            srv_engine_stop(m->items[i].engine, drain_ms);
    free(m->items);
    pthread_mutex_destroy(&m->mu);
    pthread_cond_destroy(&m->cv);
    free(m);
}

inf_status srv_models_list(struct srv_models *m, struct srv_model_entry **out, size_t *n,
                           struct inf_error *err)
{
    pthread_mutex_lock(&m->mu);
    struct srv_model_entry *a = malloc((m->n ? m->n : 1) * sizeof(*a));
    if (!a) {
        pthread_mutex_unlock(&m->mu);
        return inf_error_set(err, INF_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < m->n; i++) {
        a[i] = m->items[i].entry;
        a[i].loaded = m->items[i].engine != NULL;
    }
    *out = a;
    *n = m->n;
    pthread_mutex_unlock(&m->mu);
    return INF_OK;
}

static int n_loaded(const struct srv_models *m)
{
    int k = 0;
    for (size_t i = 0; i < m->n; i++)
        if (m->items[i].engine || m->items[i].loading)
            k++;
    return k;
}

/* Bytes the kernel says can be given out without swapping (/proc/meminfo), -1 when unknown. */
static int64_t mem_available(void)
{
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f)
        return -1;
    char line[256];
    long long kb = -1;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "MemAvailable: %lld kB", &kb) == 1)
            break;
    fclose(f);
    return kb < 0 ? -1 : (int64_t)kb * 1024;
}

/* Whether one more model (the file at path) fits beside those loaded: its size and half of it
   again for the KV cache and buffers, plus 256 MiB to spare (an estimate; unknown = yes). */
static bool memory_allows(const char *path)
{
    struct stat sb;
    int64_t avail = mem_available();
    if (avail < 0 || stat(path, &sb) != 0)
        return true;
    int64_t need = (int64_t)sb.st_size + (int64_t)sb.st_size / 2 + ((int64_t)256 << 20);
    return avail >= need;
}

/* The least recently used loaded engine that is idle and unpinned, other than keep. */
static struct model_slot *lru_idle(struct srv_models *m, const struct model_slot *keep)
{
    struct model_slot *lru = NULL;
    for (size_t i = 0; i < m->n; i++) {
        struct model_slot *c = &m->items[i];
        if (c != keep && c->engine && c->pins == 0 && srv_engine_idle(c->engine) &&
            (!lru || c->last_used < lru->last_used))
            lru = c;
    }
    return lru;
}

/* Unload idle engines, least recently used first, while more than limit are loaded (a new one is
   loaded before the one it replaces goes; one that was busy then goes once it is idle: see
   srv_models_unpin). Under m->mu, dropped to stop them. */
static void trim(struct srv_models *m, const struct model_slot *keep, int limit)
{
    while (n_loaded(m) > limit) {
        struct model_slot *lru = lru_idle(m, keep);
        if (!lru)
            return;
        struct srv_engine *victim = lru->engine;
        lru->engine = NULL;
        INF_LOG_INFO("server", "unloading model '%s'", lru->entry.id);
        pthread_mutex_unlock(&m->mu);
        srv_engine_stop(victim, 0);
        pthread_mutex_lock(&m->mu);
    }
}

inf_status srv_models_acquire(struct srv_models *m, const char *id, struct srv_engine **out,
                              struct inf_error *err)
{
    *out = NULL;
    pthread_mutex_lock(&m->mu);
    struct model_slot *s = NULL;
    if (!id || !id[0]) {
        s = &m->items[0];
    } else {
        for (size_t i = 0; i < m->n; i++)
            if (strcmp(m->items[i].entry.id, id) == 0)
                s = &m->items[i];
        /* hf.co/OWNER/REPO:QUANT names what was registered as OWNER/REPO:QUANT */
        char norm[300];
        inf_models_name_normalize(id, norm, sizeof(norm));
        for (size_t i = 0; i < m->n && !s && strcmp(norm, id) != 0; i++)
            if (strcmp(m->items[i].entry.id, norm) == 0)
                s = &m->items[i];
    }
    if (!s) {
        pthread_mutex_unlock(&m->mu);
        return inf_error_set(err, INF_ENOTFOUND, "the model '%s' does not exist", id);
    }
    bool waited_for_failure = false;
    for (;;) {
        if (s->engine) {
            s->pins++;
            s->last_used = ++m->tick;
            *out = s->engine;
            pthread_mutex_unlock(&m->mu);
            return INF_OK;
        }
        if (!s->loading)
            break;
        pthread_cond_wait(&m->cv, &m->mu);
        waited_for_failure = !s->engine && !s->loading && s->failed;
        if (waited_for_failure)
            break; /* another request's load failed: its error, below */
    }
    if (waited_for_failure || failed_unchanged(s)) {
        inf_status rc = s->fail_err.code ? s->fail_err.code : INF_EINTERNAL;
        inf_error_set(err, rc, "%s", inf_error_message(&s->fail_err));
        pthread_mutex_unlock(&m->mu);
        return rc;
    }
    /*
     * Room: at most max_loaded engines, and one more only while memory allows. The new engine is
     * loaded before the one it replaces is unloaded, so that a load that fails changes nothing;
     * when every loaded engine is busy, none is replaced: INF_ELIMIT (try again later).
     */
    int loaded = n_loaded(m);
    bool replace = loaded >= m->max_loaded || (loaded > 0 && !memory_allows(s->entry.path));
    if (replace && !lru_idle(m, s)) {
        pthread_mutex_unlock(&m->mu);
        return inf_error_set(
            err, INF_ELIMIT, "all loaded models are busy (server.max_loaded_models %d%s)",
            m->max_loaded, loaded < m->max_loaded ? ", and memory allows no other" : "");
    }
    s->loading = true;
    struct srv_engine_params ep = m->engine;
    ep.model_path = s->entry.path;
    ep.model_id = s->entry.id;
    pthread_mutex_unlock(&m->mu);

    off_t size = 0;
    struct timespec mtime = {0};
    bool have_sig = file_sig(ep.model_path, &size, &mtime); /* before: a change during the load
                                                               makes the next request retry */
    struct srv_engine *e = NULL;
    struct inf_error lerr = {0};
    inf_status rc = srv_engine_start(&ep, &e, &lerr);
    if (rc != INF_OK)
        inf_error_set(err, rc, "%s", inf_error_message(&lerr));

    pthread_mutex_lock(&m->mu);
    s->loading = false;
    s->failed = rc != INF_OK;
    if (rc == INF_OK) {
        s->engine = e;
        s->expires = 0;
        s->expires_wall = 0;
        s->pins = 1;
        s->last_used = ++m->tick;
        *out = e;
        if (replace) {
            int limit = n_loaded(m) - 1;
            trim(m, s, limit < m->max_loaded ? limit : m->max_loaded);
        }
    } else {
        INF_LOG_WARN("server", "loading the model '%s' failed: %s", s->entry.id,
                     inf_error_message(&lerr));
        s->fail_err = lerr;
        s->fail_err.code = rc;
        /* only what the file itself decides is remembered: out of memory, I/O errors and the
           like may pass, so the next request tries again (-1 never equals a size) */
        const bool of_the_file = rc == INF_EFORMAT || rc == INF_EPARSE || rc == INF_EUNSUPPORTED ||
                                 rc == INF_ERANGE || rc == INF_ETYPE || rc == INF_EINVAL;
        s->fail_size = have_sig && of_the_file ? size : -1;
        s->fail_mtime = mtime;
    }
    pthread_cond_broadcast(&m->cv);
    pthread_mutex_unlock(&m->mu);
    return rc;
}

void srv_models_unpin(struct srv_models *m, struct srv_engine *e)
{
    if (!e)
        return;
    pthread_mutex_lock(&m->mu);
    for (size_t i = 0; i < m->n; i++)
        if (m->items[i].engine == e && m->items[i].pins > 0) {
            m->items[i].pins--;
            m->items[i].last_used = ++m->tick;
        }
    trim(m, NULL, m->max_loaded); /* one kept over the limit while it was busy */
    pthread_mutex_unlock(&m->mu);
}

enum srv_health srv_models_health(struct srv_models *m)
{
    /* a node that has a model loaded serves: a failed or running load of another one does not
       change that */
    pthread_mutex_lock(&m->mu);
    bool any_loaded = false, loading = false, failed = false;
    for (size_t i = 0; i < m->n; i++) {
        any_loaded = any_loaded || m->items[i].engine;
        loading = loading || m->items[i].loading;
        failed = failed || m->items[i].failed;
    }
    pthread_mutex_unlock(&m->mu);
    if (any_loaded)
        return SRV_HEALTH_OK;
    return loading ? SRV_HEALTH_LOADING : failed ? SRV_HEALTH_ERROR : SRV_HEALTH_OK;
}

void srv_models_counts(struct srv_models *m, int *loaded, int *max_loaded)
{
    pthread_mutex_lock(&m->mu);
    int k = 0;
    for (size_t i = 0; i < m->n; i++)
        k += m->items[i].engine != NULL;
    *loaded = k;
    *max_loaded = m->max_loaded;
    pthread_mutex_unlock(&m->mu);
}

void srv_models_each_loaded(struct srv_models *m, void (*fn)(struct srv_engine *e, void *user),
                            void *user)
{
    pthread_mutex_lock(&m->mu);
    for (size_t i = 0; i < m->n; i++)
        if (m->items[i].engine)
            fn(m->items[i].engine, user);
    pthread_mutex_unlock(&m->mu);
}

/* ---- keep_alive, names added and removed at run time (Ollama's API) ------------------------ */

static double mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static struct model_slot *find_slot(struct srv_models *m, const char *id)
{
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->items[i].entry.id, id) == 0)
            return &m->items[i];
    return NULL;
}

/* Unload s when it has expired and is idle and unpinned. Under m->mu (dropped to stop it). */
static void expire_slot(struct srv_models *m, struct model_slot *s, double now)
{
    if (!s->engine || s->expires <= 0 || now < s->expires || s->pins > 0 ||
        !srv_engine_idle(s->engine))
        return;
    struct srv_engine *victim = s->engine;
    s->engine = NULL;
    s->expires = 0;
    s->expires_wall = 0;
    INF_LOG_INFO("server", "unloading model '%s' (keep_alive expired)", s->entry.id);
    pthread_mutex_unlock(&m->mu);
    srv_engine_stop(victim, 0);
    pthread_mutex_lock(&m->mu);
}

inf_status srv_models_keep_alive(struct srv_models *m, const char *id, double seconds)
{
    pthread_mutex_lock(&m->mu);
    struct model_slot *s = find_slot(m, id);
    if (!s) {
        pthread_mutex_unlock(&m->mu);
        return INF_ENOTFOUND;
    }
    double now = mono_now();
    if (seconds < 0) {
        s->expires = 0;
        s->expires_wall = 0;
    } else {
        s->expires = now + (seconds > 0 ? seconds : 1e-9);
        s->expires_wall = (int64_t)time(NULL) + (int64_t)seconds;
    }
    expire_slot(m, s, now + (seconds == 0 ? 1.0 : 0.0));
    pthread_mutex_unlock(&m->mu);
    return INF_OK;
}

void srv_models_expire(struct srv_models *m)
{
    pthread_mutex_lock(&m->mu);
    double now = mono_now();
    for (size_t i = 0; i < m->n; i++)
        expire_slot(m, &m->items[i], now);
    pthread_mutex_unlock(&m->mu);
}

inf_status srv_models_loaded(struct srv_models *m, struct srv_loaded_model **out, size_t *n,
                             struct inf_error *err)
{
    pthread_mutex_lock(&m->mu);
    struct srv_loaded_model *a = calloc(m->n ? m->n : 1, sizeof(*a));
    if (!a) {
        pthread_mutex_unlock(&m->mu);
        return inf_error_set(err, INF_ENOMEM, "out of memory");
    }
    size_t k = 0;
    for (size_t i = 0; i < m->n; i++) {
        const struct model_slot *s = &m->items[i];
        if (!s->engine)
            continue;
        a[k].entry = s->entry;
        a[k].entry.loaded = true;
        a[k].expires_at = s->expires > 0 ? s->expires_wall : 0;
        a[k].slot_ctx = srv_engine_slot_ctx(s->engine);
        k++;
    }
    pthread_mutex_unlock(&m->mu);
    *out = a;
    *n = k;
    return INF_OK;
}

const char *srv_models_dir(const struct srv_models *m)
{
    return m->models_dir[0] ? m->models_dir : NULL;
}

inf_status srv_models_add(struct srv_models *m, const char *id, const char *path,
                          struct inf_error *err)
{
    pthread_mutex_lock(&m->mu);
    inf_status rc = find_slot(m, id) ? inf_error_set(err, INF_EEXIST, "the model '%s' exists", id)
                                     : add_model(m, id, path, err);
    pthread_mutex_unlock(&m->mu);
    return rc;
}

inf_status srv_models_remove(struct srv_models *m, const char *id, struct inf_error *err)
{
    pthread_mutex_lock(&m->mu);
    struct model_slot *s = find_slot(m, id);
    if (!s) {
        pthread_mutex_unlock(&m->mu);
        return inf_error_set(err, INF_ENOTFOUND, "the model '%s' does not exist", id);
    }
    if (s->loading || s->pins > 0 || (s->engine && !srv_engine_idle(s->engine))) {
        pthread_mutex_unlock(&m->mu);
        return inf_error_set(err, INF_ELIMIT, "the model '%s' is in use", id);
    }
    if (m->n == 1) {
        pthread_mutex_unlock(&m->mu);
        return inf_error_set(err, INF_EINVAL, "the model '%s' is the only one served", id);
    }
    struct srv_engine *victim = s->engine;
    size_t i = (size_t)(s - m->items);
    memmove(&m->items[i], &m->items[i + 1], (m->n - i - 1) * sizeof(*m->items));
    m->n--;
    pthread_mutex_unlock(&m->mu);
    if (victim)
        srv_engine_stop(victim, 0);
    return INF_OK;
}
