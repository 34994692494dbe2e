/*
 * dash.c - the Server and Jobs screens: a poller thread reads a running `inferno serve`'s
 * /health and /metrics once a second (and its batches, GET /v1/batches, every two seconds)
 * with libcurl, and keeps the last minute of tok/s and time to first token for sparklines.
 * The screens only read what the poller left under the mutex; a slow or dead server never
 * holds up a frame (each request times out after 2 s).
 */
#define NCURSES_WIDECHAR 1

#include <curl/curl.h>
#include <curses.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "inferno/jobs.h"
#include "tui/internal.h"

#define HIST 120 /* samples kept for the sparklines */

struct model_row {
    char id[128];
    int slots_total, slots_busy, queue, context;
};

struct batch_row {
    char id[96], status[24], endpoint[40];
    long total, completed, failed;
    long long created;
};

struct queue_row {
    int64_t id;
    char kind[8], state[16], ref[64], err[96];
    int attempts, max_attempts;
    long done, total; /* a batch job's progress (-1: unknown) */
};

/* a change asked for on the Jobs screen, done by the poller */
enum action { ACT_NONE, ACT_BATCH_CANCEL, ACT_JOB_CANCEL, ACT_JOB_RETRY };

struct snapshot {
    bool ok;
    char err[256];
    double at;
    char status[24];
    int slots_busy, slots_idle, loaded, max_loaded;
    struct model_row models[8];
    int n_models;
    double req_2xx, req_4xx, req_5xx, in_flight;
    double gen_tokens, prompt_tokens, ttft_sum, ttft_count;
    bool has_cache, has_audit;
    double cache_hits, cache_misses;
    double audit_records, audit_errors;
    double queue_depth;
};

struct tui_dash {
    struct tui_app *app;
    pthread_t th;
    bool th_started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool quit, wake;
    char url[512];
    char key[512];
    enum action act;     /* to do, under mu */
    char act_id[96];     /* its batch id or job id */
    enum action confirm; /* what a confirmation asks about (screen only) */
    char confirm_id[96];
    /* the local queue (queue.url), read with the public jobs API by the poller */
    struct inf_jobs *jobs;
    bool queue_ok;
    char queue_err[256];
    struct queue_row queue[64];
    int n_queue;
    struct snapshot cur, prev;
    float tps[HIST], ttft[HIST];
    int n_hist;
    /* jobs */
    bool jobs_ok, jobs_seen;
    char jobs_err[256];
    struct batch_row batches[64];
    int n_batches;
    char action_msg[256];
    bool action_err, action_done;
    /* screen only */
    int sel;
};

struct body {
    char *d;
    size_t n, cap;
};

static size_t on_data(char *p, size_t sz, size_t n, void *user)
{
    struct body *b = user;
    size_t k = sz * n;
    if (b->n + k + 1 > 8u << 20) /* 8 MiB is far more than /metrics ever is */
        return 0;
    if (b->n + k + 1 > b->cap) {
        size_t cap = (b->n + k + 1) * 2;
        char *q = realloc(b->d, cap);
        if (!q)
            return 0;
        b->d = q, b->cap = cap;
    }
    memcpy(b->d + b->n, p, k);
    b->n += k;
    b->d[b->n] = '\0';
    return k;
}

/* One request; returns the HTTP status (0 on a transport error, with err set). */
static long request(CURL *h, const char *base, const char *key, const char *path, bool post,
                    struct body *out, char *err, size_t cap)
{
    char url[1024];
    snprintf(url, sizeof(url), "%s%s", base, path);
    out->n = 0;
    if (out->d)
        out->d[0] = '\0';
    curl_easy_reset(h);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 2000L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 1000L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    struct curl_slist *hd = NULL;
    char auth[600];
    if (key && *key) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", key);
        hd = curl_slist_append(hd, auth);
    }
    if (post) {
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, 0L);
    }
    if (hd)
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
    CURLcode rc = curl_easy_perform(h);
    curl_slist_free_all(hd);
    if (rc != CURLE_OK) {
        snprintf(err, cap, "%s", curl_easy_strerror(rc));
        return 0;
    }
    long code = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    return code;
}

static void parse_health(const char *text, struct snapshot *s)
{
    json_error_t je;
    json_t *o = json_loads(text, 0, &je);
    if (!json_is_object(o)) {
        json_decref(o);
        snprintf(s->err, sizeof(s->err), "/health: not JSON");
        s->ok = false;
        return;
    }
    const char *st = json_string_value(json_object_get(o, "status"));
    snprintf(s->status, sizeof(s->status), "%s", st ? st : "?");
    s->slots_busy = (int)json_integer_value(json_object_get(o, "slots_busy"));
    s->slots_idle = (int)json_integer_value(json_object_get(o, "slots_idle"));
    s->loaded = (int)json_integer_value(json_object_get(o, "loaded_models"));
    s->max_loaded = (int)json_integer_value(json_object_get(o, "max_loaded_models"));
    json_t *ms = json_object_get(o, "models");
    s->n_models = 0;
    for (size_t i = 0; i < json_array_size(ms) && s->n_models < 8; i++) {
        json_t *m = json_array_get(ms, i);
        struct model_row *r = &s->models[s->n_models++];
        const char *id = json_string_value(json_object_get(m, "id"));
        snprintf(r->id, sizeof(r->id), "%s", id ? id : "?");
        r->slots_total = (int)json_integer_value(json_object_get(m, "slots_total"));
        r->slots_busy = (int)json_integer_value(json_object_get(m, "slots_busy"));
        r->queue = (int)json_integer_value(json_object_get(m, "queue_depth"));
        r->context = (int)json_integer_value(json_object_get(m, "context"));
    }
    json_decref(o);
}

/* Prometheus text exposition: sum each series of interest over its labels. */
static void parse_metrics(const char *text, struct snapshot *s)
{
    const char *p = text;
    while (*p) {
        const char *e = strchr(p, '\n');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len && p[0] != '#') {
            char line[1024];
            snprintf(line, sizeof(line), "%.*s", (int)(len < 1023 ? len : 1023), p);
            char *sp = strrchr(line, ' ');
            double v = sp ? strtod(sp + 1, NULL) : 0;
            size_t nl = strcspn(line, "{ ");
            char name[128];
            snprintf(name, sizeof(name), "%.*s", (int)(nl < 127 ? nl : 127), line);
            if (strcmp(name, "inferno_requests_total") == 0) {
                const char *st = strstr(line, "status=\"");
                if (st) {
                    char c = st[8];
                    if (c == '2')
                        s->req_2xx += v;
                    else if (c == '4')
                        s->req_4xx += v;
                    else if (c == '5')
                        s->req_5xx += v;
                }
            } else if (strcmp(name, "inferno_requests_in_flight") == 0) {
                s->in_flight += v;
            } else if (strcmp(name, "inferno_generated_tokens_total") == 0) {
                s->gen_tokens += v;
            } else if (strcmp(name, "inferno_prompt_tokens_total") == 0) {
                s->prompt_tokens += v;
            } else if (strcmp(name, "inferno_time_to_first_token_seconds_sum") == 0) {
                s->ttft_sum += v;
            } else if (strcmp(name, "inferno_time_to_first_token_seconds_count") == 0) {
                s->ttft_count += v;
            } else if (strcmp(name, "inferno_cache_hits_total") == 0) {
                s->has_cache = true, s->cache_hits += v;
            } else if (strcmp(name, "inferno_cache_misses_total") == 0) {
                s->has_cache = true, s->cache_misses += v;
            } else if (strcmp(name, "inferno_queue_depth") == 0) {
                s->queue_depth += v;
            } else if (strcmp(name, "inferno_audit_records_total") == 0) {
                s->has_audit = true, s->audit_records += v;
            } else if (strcmp(name, "inferno_audit_errors_total") == 0) {
                s->has_audit = true, s->audit_errors += v;
            }
        }
        if (!e)
            break;
        p = e + 1;
    }
}

static void parse_batches(struct tui_dash *d, const char *text)
{
    json_error_t je;
    json_t *o = json_loads(text, 0, &je);
    json_t *data = json_object_get(o, "data");
    d->n_batches = 0;
    for (size_t i = 0; i < json_array_size(data) && d->n_batches < 64; i++) {
        json_t *b = json_array_get(data, i);
        struct batch_row *r = &d->batches[d->n_batches++];
        memset(r, 0, sizeof(*r));
        const char *id = json_string_value(json_object_get(b, "id"));
        const char *st = json_string_value(json_object_get(b, "status"));
        const char *ep = json_string_value(json_object_get(b, "endpoint"));
        snprintf(r->id, sizeof(r->id), "%s", id ? id : "?");
        snprintf(r->status, sizeof(r->status), "%s", st ? st : "?");
        snprintf(r->endpoint, sizeof(r->endpoint), "%s", ep ? ep : "");
        json_t *rc = json_object_get(b, "request_counts");
        r->total = (long)json_integer_value(json_object_get(rc, "total"));
        r->completed = (long)json_integer_value(json_object_get(rc, "completed"));
        r->failed = (long)json_integer_value(json_object_get(rc, "failed"));
        r->created = (long long)json_integer_value(json_object_get(b, "created_at"));
    }
    json_decref(o);
}

/* The local queue: open it when its database exists (never create one just to look), list
 * the newest jobs with their batches' progress, and do a cancel or retry asked for. */
static void poll_queue(struct tui_dash *d, enum action act, const char *job_id)
{
    const struct inf_tui_options *o = tui_options(d->app);
    struct inf_error err = {0};
    char msg[256] = "";
    bool msg_err = false;
    if (!d->jobs) {
        const char *u = o->queue_url;
        if (!u || !*u)
            return;
        if (strncmp(u, "sqlite:", 7) == 0 && access(u + 7, F_OK) != 0) {
            pthread_mutex_lock(&d->mu);
            snprintf(d->queue_err, sizeof(d->queue_err), "no queue yet (%s)", u + 7);
            pthread_mutex_unlock(&d->mu);
            return;
        }
        struct inf_jobs_params p = {.url = u, .files_dir = o->files_dir};
        if (inf_jobs_open(&p, &d->jobs, &err) != INF_OK) {
            pthread_mutex_lock(&d->mu);
            snprintf(d->queue_err, sizeof(d->queue_err), "%s", inf_error_message(&err));
            pthread_mutex_unlock(&d->mu);
            d->jobs = NULL;
            return;
        }
    }
    if (act == ACT_JOB_CANCEL || act == ACT_JOB_RETRY) {
        int64_t id = strtoll(job_id, NULL, 10);
        inf_status st = act == ACT_JOB_CANCEL ? inf_jobs_cancel(d->jobs, id, &err)
                                              : inf_jobs_retry(d->jobs, id, &err);
        msg_err = st != INF_OK;
        if (st == INF_OK)
            snprintf(msg, sizeof(msg), "job %s %s", job_id,
                     act == ACT_JOB_CANCEL ? "cancelled" : "queued again");
        else
            snprintf(msg, sizeof(msg), "job %s: %s", job_id, inf_error_message(&err));
    }
    struct inf_job *v = NULL;
    size_t n = 0;
    struct queue_row rows[64];
    int nr = 0;
    inf_status st = inf_jobs_list(d->jobs, NULL, 64, &v, &n, &err);
    for (size_t i = 0; st == INF_OK && i < n && nr < 64; i++) {
        struct queue_row *r = &rows[nr++];
        memset(r, 0, sizeof(*r));
        r->id = v[i].id;
        snprintf(r->kind, sizeof(r->kind), "%s", v[i].kind == INF_JOB_BATCH ? "batch" : "request");
        snprintf(r->state, sizeof(r->state), "%s", v[i].state);
        snprintf(r->ref, sizeof(r->ref), "%s", v[i].ref);
        snprintf(r->err, sizeof(r->err), "%s", v[i].last_error ? v[i].last_error : "");
        r->attempts = v[i].attempts;
        r->max_attempts = v[i].max_attempts;
        r->done = r->total = -1;
        char *obj = NULL;
        struct inf_error e2 = {0};
        if (v[i].kind == INF_JOB_BATCH && v[i].ref[0] &&
            inf_jobs_batch_get(d->jobs, v[i].ref, &obj, &e2) == INF_OK) {
            json_t *b = json_loads(obj, 0, NULL);
            json_t *rc = json_object_get(b, "request_counts");
            r->total = (long)json_integer_value(json_object_get(rc, "total"));
            r->done = (long)(json_integer_value(json_object_get(rc, "completed")) +
                             json_integer_value(json_object_get(rc, "failed")));
            json_decref(b);
        }
        free(obj);
    }
    for (size_t i = 0; i < n; i++)
        inf_job_release(&v[i]);
    free(v);
    pthread_mutex_lock(&d->mu);
    d->queue_ok = st == INF_OK;
    if (st == INF_OK) {
        memcpy(d->queue, rows, sizeof(rows[0]) * (size_t)nr);
        d->n_queue = nr;
        d->queue_err[0] = '\0';
    } else {
        snprintf(d->queue_err, sizeof(d->queue_err), "%s", inf_error_message(&err));
    }
    if (msg[0]) {
        snprintf(d->action_msg, sizeof(d->action_msg), "%s", msg);
        d->action_err = msg_err;
        d->action_done = true;
    }
    pthread_mutex_unlock(&d->mu);
}

static void *poller(void *arg)
{
    struct tui_dash *d = arg;
    CURL *h = curl_easy_init();
    struct body b = {0};
    int tick = 0;
    pthread_mutex_lock(&d->mu);
    while (!d->quit) {
        char url[512], key[512], cancel[96] = "", job_id[96] = "";
        snprintf(url, sizeof(url), "%s", d->url);
        snprintf(key, sizeof(key), "%s", d->key);
        enum action act = d->act;
        if (act == ACT_BATCH_CANCEL)
            snprintf(cancel, sizeof(cancel), "%s", d->act_id);
        else if (act != ACT_NONE)
            snprintf(job_id, sizeof(job_id), "%s", d->act_id);
        d->act = ACT_NONE;
        pthread_mutex_unlock(&d->mu);
        poll_queue(d, act, job_id);

        struct snapshot s = {0};
        char jerr[256] = "";
        bool jobs_ok = false, jobs_seen = false;
        struct tui_dash tmp; /* batches parsed outside the lock */
        tmp.n_batches = 0;
        char amsg[256] = "";
        bool aerr = false, adone = false;
        if (url[0] && h) {
            s.at = tui_now();
            if (cancel[0]) {
                char path[160];
                snprintf(path, sizeof(path), "/v1/batches/%s/cancel", cancel);
                long code = request(h, url, key, path, true, &b, amsg, sizeof(amsg));
                adone = true;
                aerr = code != 200;
                if (code == 200)
                    snprintf(amsg, sizeof(amsg), "cancelling %s", cancel);
                else if (code)
                    snprintf(amsg, sizeof(amsg), "cancel %s: HTTP %ld", cancel, code);
            }
            long code = request(h, url, key, "/health", false, &b, s.err, sizeof(s.err));
            if (code == 200 || code == 503) {
                s.ok = true;
                parse_health(b.d ? b.d : "", &s);
                code = request(h, url, key, "/metrics", false, &b, s.err, sizeof(s.err));
                if (code == 200)
                    parse_metrics(b.d ? b.d : "", &s);
                else if (code)
                    snprintf(s.err, sizeof(s.err), "/metrics: HTTP %ld%s", code,
                             code == 401 ? " (an API key is needed: --api-key)" : "");
                if (tick % 2 == 0 || cancel[0]) {
                    jobs_seen = true;
                    code =
                        request(h, url, key, "/v1/batches?limit=50", false, &b, jerr, sizeof(jerr));
                    if (code == 200) {
                        jobs_ok = true;
                        parse_batches(&tmp, b.d ? b.d : "");
                    } else if (code == 404) {
                        snprintf(jerr, sizeof(jerr), "this server has no Batch API");
                    } else if (code) {
                        snprintf(jerr, sizeof(jerr), "/v1/batches: HTTP %ld%s", code,
                                 code == 401 ? " (an API key is needed: --api-key)" : "");
                    }
                }
            } else if (code) {
                snprintf(s.err, sizeof(s.err), "/health: HTTP %ld%s", code,
                         code == 401 ? " (an API key is needed: --api-key)" : "");
            }
        }
        tick++;

        pthread_mutex_lock(&d->mu);
        if (url[0] && strcmp(url, d->url) == 0) {
            if (s.ok && d->cur.ok && s.at > d->cur.at) {
                double dt = s.at - d->cur.at;
                float tps = (float)((s.gen_tokens - d->cur.gen_tokens) / dt);
                double dc = s.ttft_count - d->cur.ttft_count;
                float tt = dc > 0 ? (float)((s.ttft_sum - d->cur.ttft_sum) / dc * 1000.0) : 0.0f;
                memmove(d->tps, d->tps + 1, (HIST - 1) * sizeof(float));
                memmove(d->ttft, d->ttft + 1, (HIST - 1) * sizeof(float));
                d->tps[HIST - 1] = tps < 0 ? 0 : tps;
                d->ttft[HIST - 1] = tt;
                if (d->n_hist < HIST)
                    d->n_hist++;
            }
            d->prev = d->cur;
            d->cur = s;
            if (jobs_seen) {
                d->jobs_ok = jobs_ok;
                d->jobs_seen = true;
                snprintf(d->jobs_err, sizeof(d->jobs_err), "%s", jerr);
                if (jobs_ok) {
                    memcpy(d->batches, tmp.batches, sizeof(tmp.batches[0]) * (size_t)tmp.n_batches);
                    d->n_batches = tmp.n_batches;
                }
            }
            if (adone) {
                snprintf(d->action_msg, sizeof(d->action_msg), "%s", amsg);
                d->action_err = aerr;
                d->action_done = true;
            }
        }
        if (!d->wake && !d->quit) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += 1;
            pthread_cond_timedwait(&d->cv, &d->mu, &ts);
        }
        d->wake = false;
    }
    pthread_mutex_unlock(&d->mu);
    free(b.d);
    if (h)
        curl_easy_cleanup(h);
    inf_jobs_close(d->jobs);
    d->jobs = NULL;
    return NULL;
}

struct tui_dash *tui_dash_new(struct tui_app *a, const char *url, const char *api_key)
{
    struct tui_dash *d = calloc(1, sizeof(*d));
    if (!d)
        return NULL;
    d->app = a;
    pthread_mutex_init(&d->mu, NULL);
    pthread_cond_init(&d->cv, NULL);
    snprintf(d->url, sizeof(d->url), "%s", url ? url : "");
    size_t n = strlen(d->url);
    while (n && d->url[n - 1] == '/')
        d->url[--n] = '\0';
    snprintf(d->key, sizeof(d->key), "%s", api_key ? api_key : "");
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (pthread_create(&d->th, NULL, poller, d) == 0)
        d->th_started = true;
    return d;
}

void tui_dash_free(struct tui_dash *d)
{
    if (!d)
        return;
    pthread_mutex_lock(&d->mu);
    d->quit = true;
    pthread_cond_signal(&d->cv);
    pthread_mutex_unlock(&d->mu);
    if (d->th_started)
        pthread_join(d->th, NULL);
    curl_global_cleanup();
    pthread_mutex_destroy(&d->mu);
    pthread_cond_destroy(&d->cv);
    free(d);
}

bool tui_dash_poll(struct tui_dash *d)
{
    pthread_mutex_lock(&d->mu);
    bool done = d->action_done;
    if (done) {
        d->action_done = false;
        tui_flash(d->app, d->action_err, "%s", d->action_msg);
    }
    pthread_mutex_unlock(&d->mu);
    return done;
}

/* A sparkline of the last w values of v (newest right), scaled to the largest. */
static void spark(struct tui_dash *d, int y, int x, int w, const float *v, int n)
{
    static const char *blocks[] = {" ",
                                   "\xE2\x96\x81",
                                   "\xE2\x96\x82",
                                   "\xE2\x96\x83",
                                   "\xE2\x96\x84",
                                   "\xE2\x96\x85",
                                   "\xE2\x96\x86",
                                   "\xE2\x96\x87",
                                   "\xE2\x96\x88"};
    static const char ascii[] = " .:-=+*#@";
    bool utf8 = tui_utf8_ok(d->app);
    if (n > w)
        n = w;
    float mx = 0;
    for (int i = 0; i < n; i++)
        if (v[HIST - n + i] > mx)
            mx = v[HIST - n + i];
    attron(tui_attr(d->app, ST_OK));
    for (int i = 0; i < n; i++) {
        float f = v[HIST - n + i];
        int lv = mx > 0 ? (int)ceilf(f / mx * 8.0f) : 0;
        if (lv < 0)
            lv = 0;
        if (lv > 8)
            lv = 8;
        if (f > 0 && lv == 0)
            lv = 1;
        if (utf8)
            mvaddstr(y, x + (w - n) + i, blocks[lv]);
        else
            mvaddch(y, x + (w - n) + i, (chtype)ascii[lv]);
    }
    attroff(tui_attr(d->app, ST_OK));
}

void tui_dash_draw(struct tui_dash *d, int y0, int rows, int cols)
{
    struct tui_app *a = d->app;
    pthread_mutex_lock(&d->mu);
    struct snapshot s = d->cur;
    char url[512];
    snprintf(url, sizeof(url), "%s", d->url);
    float tps[HIST], ttft[HIST];
    memcpy(tps, d->tps, sizeof(tps));
    memcpy(ttft, d->ttft, sizeof(ttft));
    int nh = d->n_hist;
    pthread_mutex_unlock(&d->mu);
    int y = y0;
    if (!url[0]) {
        attron(tui_attr(a, ST_DIM));
        tui_puts(y + 1, 1, "Not attached to a server. Press u and give its URL", cols - 2);
        tui_puts(y + 2, 1, "(or start the TUI with --url http://HOST:PORT [--api-key KEY]).",
                 cols - 2);
        attroff(tui_attr(a, ST_DIM));
        return;
    }
    double age = s.at > 0 ? tui_now() - s.at : -1;
    int st = !s.ok ? ST_ERR : strcmp(s.status, "ok") == 0 ? ST_OK : ST_WARN;
    tui_putf(y, 1, 8, "server");
    attron(tui_attr(a, st));
    tui_putf(y, 8, cols - 9, "%s  %s", url,
             !s.ok ? (s.err[0] ? s.err : "connecting...") : s.status);
    attroff(tui_attr(a, st));
    y++;
    if (!s.ok)
        return;
    tui_putf(y++, 1, cols - 2, "models loaded %d/%d   requests in flight %.0f   updated %.1fs ago",
             s.loaded, s.max_loaded, s.in_flight, age < 0 ? 0.0 : age);
    y++;
    tui_rule(a, y++, 0, cols, "slots");
    for (int i = 0; i < s.n_models && y < y0 + rows - 8; i++) {
        struct model_row *m = &s.models[i];
        int idw = cols / 3;
        tui_put(y, 1, m->id, strlen(m->id), idw);
        int x = idw + 2;
        int n = m->slots_total > 32 ? 32 : m->slots_total;
        mvaddch(y, x++, '[');
        for (int k = 0; k < n; k++) {
            bool busy = k < m->slots_busy;
            attron(tui_attr(a, busy ? ST_WARN : ST_DIM));
            mvaddch(y, x++, busy ? '#' : '.');
            attroff(tui_attr(a, busy ? ST_WARN : ST_DIM));
        }
        mvaddch(y, x++, ']');
        tui_putf(y, x + 1, cols - x - 2, "%d/%d busy  queue %d  ctx %d", m->slots_busy,
                 m->slots_total, m->queue, m->context);
        y++;
    }
    if (!s.n_models)
        tui_puts(y++, 1, "no model loaded yet", cols - 2);
    y++;
    tui_rule(a, y++, 0, cols, "traffic");
    tui_putf(y++, 1, cols - 2, "requests  2xx %.0f   4xx %.0f   5xx %.0f   queue %.0f", s.req_2xx,
             s.req_4xx, s.req_5xx, s.queue_depth);
    int sw = cols - 30;
    float last_tps = nh ? tps[HIST - 1] : 0, last_ttft = 0;
    for (int i = HIST - 1; i >= HIST - nh; i--)
        if (ttft[i] > 0) {
            last_ttft = ttft[i];
            break;
        }
    tui_putf(y, 1, 27, "tok/s %10.1f", (double)last_tps);
    spark(d, y++, 28, sw, tps, nh);
    tui_putf(y, 1, 27, "TTFT ms %8.0f", (double)last_ttft);
    spark(d, y++, 28, sw, ttft, nh);
    tui_putf(y++, 1, cols - 2, "tokens    prompt %.0f   generated %.0f", s.prompt_tokens,
             s.gen_tokens);
    y++;
    if (s.has_cache) {
        double tot = s.cache_hits + s.cache_misses;
        tui_putf(y++, 1, cols - 2, "cache     hit rate %.1f%%  (hits %.0f, misses %.0f)",
                 tot > 0 ? 100.0 * s.cache_hits / tot : 0.0, s.cache_hits, s.cache_misses);
    } else {
        tui_puts(y++, 1, "cache     off", cols - 2);
    }
    if (s.has_audit) {
        int st_a = s.audit_errors > 0 ? ST_ERR : ST_NORMAL;
        attron(tui_attr(a, st_a));
        tui_putf(y++, 1, cols - 2, "audit     on   records %.0f   errors %.0f", s.audit_records,
                 s.audit_errors);
        attroff(tui_attr(a, st_a));
    } else {
        tui_puts(y++, 1, "audit     off", cols - 2);
    }
}

static void progress_bar(int y, int x, int bw, long done, long total)
{
    int fill = total > 0 ? (int)(done * bw / total) : 0;
    mvaddch(y, x, '[');
    for (int k = 0; k < bw; k++)
        mvaddch(y, x + 1 + k, k < fill ? '#' : '.');
    mvaddch(y, x + 1 + bw, ']');
}

/* The Jobs screen: the attached server's batches, then the local queue's jobs; one selection
 * runs through both lists (batches first). */
void tui_jobs_draw(struct tui_dash *d, int y0, int rows, int cols)
{
    struct tui_app *a = d->app;
    pthread_mutex_lock(&d->mu);
    bool has_url = d->url[0] != '\0';
    bool ok = d->jobs_ok, seen = d->jobs_seen, qok = d->queue_ok;
    char err[256], qerr[256];
    snprintf(err, sizeof(err), "%s", d->jobs_err);
    snprintf(qerr, sizeof(qerr), "%s", d->queue_err);
    int n = ok ? d->n_batches : 0, nq = qok ? d->n_queue : 0;
    struct batch_row br[64];
    struct queue_row qr[64];
    memcpy(br, d->batches, sizeof(br[0]) * (size_t)n);
    memcpy(qr, d->queue, sizeof(qr[0]) * (size_t)nq);
    pthread_mutex_unlock(&d->mu);
    if (d->sel >= n + nq)
        d->sel = n + nq - 1;
    if (d->sel < 0)
        d->sel = 0;
    int half = nq || qerr[0] ? rows / 2 : rows;
    int y = y0;

    /* batches */
    tui_rule(a, y++, 0, cols, has_url ? "batches on the server (Batch API)" : "batches");
    if (!has_url || !ok) {
        const char *m = !has_url ? "not attached to a server: press u on the Server screen (3)"
                        : seen   ? err
                                 : "loading...";
        attron(tui_attr(a, has_url && seen ? ST_ERR : ST_DIM));
        tui_puts(y++, 1, m, cols - 2);
        attroff(tui_attr(a, has_url && seen ? ST_ERR : ST_DIM));
    } else {
        int wid = cols - 62 > 20 ? cols - 62 : 20;
        attron(tui_attr(a, ST_ACCENT));
        tui_putf(y++, 1, cols - 2, "%-*s %-11s %-22s %11s %6s", wid, "BATCH", "STATUS", "PROGRESS",
                 "DONE/TOTAL", "FAILED");
        attroff(tui_attr(a, ST_ACCENT));
        if (!n)
            tui_puts(y++, 1, "no batches", cols - 2);
        for (int i = 0; i < n && y < y0 + half; i++, y++) {
            struct batch_row *r = &br[i];
            bool sel = i == d->sel;
            if (sel) {
                attron(tui_attr(a, ST_SELECTED));
                tui_clear_row(y, 0, cols);
            }
            tui_put(y, 1, r->id, strlen(r->id), wid);
            int x = 2 + wid;
            tui_put(y, x, r->status, strlen(r->status), 11);
            x += 12;
            long done = r->completed + r->failed;
            progress_bar(y, x, 20, done, r->total);
            x += 23;
            tui_putf(y, x, cols - x - 1, "%5ld/%-5ld %6ld", done, r->total, r->failed);
            if (sel)
                attroff(tui_attr(a, ST_SELECTED));
        }
    }

    /* the local queue */
    y = y0 + half;
    if (y >= y0 + rows)
        return;
    tui_rule(a, y++, 0, cols, "queue (queue.url on this machine)");
    if (!qok) {
        attron(tui_attr(a, ST_DIM));
        tui_puts(y, 1, qerr[0] ? qerr : "loading...", cols - 2);
        attroff(tui_attr(a, ST_DIM));
        return;
    }
    attron(tui_attr(a, ST_ACCENT));
    tui_putf(y++, 1, cols - 2, "%6s %-7s %-9s %-8s %-22s %s", "JOB", "KIND", "STATE", "TRIES",
             "PROGRESS", "BATCH / LAST ERROR");
    attroff(tui_attr(a, ST_ACCENT));
    if (!nq)
        tui_puts(y++, 1, "no jobs", cols - 2);
    for (int i = 0; i < nq && y < y0 + rows; i++, y++) {
        struct queue_row *r = &qr[i];
        bool sel = n + i == d->sel;
        if (sel) {
            attron(tui_attr(a, ST_SELECTED));
            tui_clear_row(y, 0, cols);
        }
        int st = strcmp(r->state, "dead") == 0 || strcmp(r->state, "failed") == 0 ? ST_ERR
                 : strcmp(r->state, "done") == 0                                  ? ST_OK
                                                                                  : ST_NORMAL;
        tui_putf(y, 1, 16, "%6lld %-7s", (long long)r->id, r->kind);
        if (!sel)
            attron(tui_attr(a, st));
        tui_put(y, 16, r->state, strlen(r->state), 9);
        if (!sel)
            attroff(tui_attr(a, st));
        tui_putf(y, 26, 8, "%d/%d", r->attempts, r->max_attempts);
        int x = 35;
        if (r->total >= 0)
            progress_bar(y, x, 20, r->done, r->total);
        x += 23;
        const char *tail = r->err[0] ? r->err : r->ref;
        tui_put(y, x, tail, strlen(tail), cols - x - 1);
        if (sel)
            attroff(tui_attr(a, ST_SELECTED));
    }
}

static void set_url(struct tui_dash *d, const char *url)
{
    pthread_mutex_lock(&d->mu);
    snprintf(d->url, sizeof(d->url), "%s", url);
    size_t n = strlen(d->url);
    while (n && d->url[n - 1] == '/')
        d->url[--n] = '\0';
    memset(&d->cur, 0, sizeof(d->cur));
    d->n_hist = 0;
    memset(d->tps, 0, sizeof(d->tps));
    memset(d->ttft, 0, sizeof(d->ttft));
    d->jobs_ok = d->jobs_seen = false;
    d->n_batches = 0;
    d->wake = true;
    pthread_cond_signal(&d->cv);
    pthread_mutex_unlock(&d->mu);
}

bool tui_dash_key(struct tui_dash *d, int key, bool is_char)
{
    if (is_char && key == 'u') {
        tui_prompt(d->app, "url", "server URL", d->url[0] ? d->url : "http://127.0.0.1:8080");
        return true;
    }
    if (is_char && key == 'r') {
        pthread_mutex_lock(&d->mu);
        d->wake = true;
        pthread_cond_signal(&d->cv);
        pthread_mutex_unlock(&d->mu);
        return true;
    }
    return false;
}

/* What the selection points at: a batch (its id) or a queue job (its id as text). */
static enum action selected(struct tui_dash *d, char *id, size_t cap, const char **state)
{
    pthread_mutex_lock(&d->mu);
    int n = d->jobs_ok ? d->n_batches : 0, nq = d->queue_ok ? d->n_queue : 0;
    enum action what = ACT_NONE;
    static char st[32];
    st[0] = '\0';
    if (d->sel >= 0 && d->sel < n) {
        snprintf(id, cap, "%s", d->batches[d->sel].id);
        snprintf(st, sizeof(st), "%s", d->batches[d->sel].status);
        what = ACT_BATCH_CANCEL;
    } else if (d->sel >= n && d->sel < n + nq) {
        snprintf(id, cap, "%lld", (long long)d->queue[d->sel - n].id);
        snprintf(st, sizeof(st), "%s", d->queue[d->sel - n].state);
        what = ACT_JOB_CANCEL;
    }
    pthread_mutex_unlock(&d->mu);
    *state = st;
    return what;
}

bool tui_jobs_key(struct tui_dash *d, int key, bool is_char)
{
    if (!is_char && key == KEY_UP) {
        d->sel--;
        return true;
    }
    if (!is_char && key == KEY_DOWN) {
        d->sel++;
        return true;
    }
    if (is_char && (key == 'c' || key == 't')) {
        char id[96];
        const char *state;
        enum action what = selected(d, id, sizeof(id), &state);
        if (what == ACT_NONE) {
            tui_flash(d->app, true, "nothing selected");
            return true;
        }
        if (key == 't') {
            if (what != ACT_JOB_CANCEL) {
                tui_flash(d->app, true, "batches have no retry in the Batch API: create it again");
                return true;
            }
            what = ACT_JOB_RETRY;
        }
        d->confirm = what;
        snprintf(d->confirm_id, sizeof(d->confirm_id), "%s", id);
        tui_confirm(d->app, "jobs", "%s %s %s (%s)?", what == ACT_JOB_RETRY ? "retry" : "cancel",
                    what == ACT_BATCH_CANCEL ? "batch" : "job", id, state);
        return true;
    }
    return tui_dash_key(d, key, is_char);
}

void tui_dash_answer(struct tui_dash *d, const char *tag, const char *text)
{
    if (strcmp(tag, "url") == 0) {
        if (*text)
            set_url(d, text);
        return;
    }
    if (strcmp(tag, "jobs") == 0 && strcmp(text, "y") == 0) {
        pthread_mutex_lock(&d->mu);
        d->act = d->confirm;
        snprintf(d->act_id, sizeof(d->act_id), "%s", d->confirm_id);
        d->wake = true;
        pthread_cond_signal(&d->cv);
        pthread_mutex_unlock(&d->mu);
    }
}

void tui_dash_status(struct tui_dash *d, char *buf, size_t cap)
{
    pthread_mutex_lock(&d->mu);
    if (!d->url[0])
        snprintf(buf, cap, "u attach to a server%s",
                 d->queue_ok ? " | c cancel  t retry a job" : "");
    else
        snprintf(buf, cap, "%s | polled every second | u change URL  r refresh%s", d->url,
                 d->jobs_ok || d->queue_ok ? "  c cancel  t retry" : "");
    pthread_mutex_unlock(&d->mu);
}
