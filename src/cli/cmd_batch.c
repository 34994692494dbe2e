/*
 * cmd_batch.c - `inferno batch run IN.jsonl -o OUT.jsonl -m MODEL`: OpenAI's batch format run
 * offline through the server's own handlers (no sockets), with a progress bar on a terminal.
 *
 * Resumable: OUT is appended to, one whole line per write(); started again with the same
 * arguments, the run skips the custom_ids already in OUT (a last line cut short by a kill is
 * removed first), so no line is ever written twice. SIGINT stops taking new requests, lets
 * those running finish and be written, and exits 130; a second SIGINT exits at once.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/cli_engine.h"
#include "core/buf.h"
#include "core/files.h"
#include "inferno/jobs.h"
#include "server/jobs_exec.h"

const struct inf_cli_opt inf_cmd_batch_opts[] = {
    {"output", 'o', INF_OPT_VALUE, "FILE", "output file (JSON lines; appended, resumable)", NULL},
    {"model", 'm', INF_OPT_LIST, "MODEL", "model to load (repeatable; the first is the default)",
     NULL},
    {"parallel", 0, INF_OPT_VALUE, "N", "slots sharing the context (requests batched together)",
     "server.parallel"},
    {"ctx", 'c', INF_OPT_VALUE, "N", "total context (KV cells) split between the slots",
     "backend.context_size"},
    {"threads", 't', INF_OPT_VALUE, "N", "inference threads (0 = physical cores)",
     "backend.threads"},
    {"concurrency", 0, INF_OPT_VALUE, "N", "requests in flight (default: the slots)", NULL},
    {"no-progress", 0, INF_OPT_FLAG, NULL, "no progress bar", NULL},
    {NULL, 0, 0, NULL, NULL, NULL},
};

/* ---- the offline server (shared with cmd_queue.c) ------------------------------------------ */

int inf_cli_offline_server(struct inf_cli *cli, const struct inf_cli_args *args,
                           struct srv_models **mo, struct http_server **so)
{
    const struct inf_config *cfg = cli->config;
    *mo = NULL;
    *so = NULL;
    int n_flag = 0;
    const char *const *flag_models = inf_cli_values(args, "model", &n_flag);
    size_t n_cfg = 0;
    const char *const *cfg_models = inf_config_get_list(cfg, "server.models", &n_cfg);
    size_t n = n_flag ? (size_t)n_flag : n_cfg;
    if (n == 0) {
        inf_cli_errorf(cli, "no model: give -m MODEL");
        return INF_EXIT_USAGE;
    }
    char **paths = calloc(n, sizeof(*paths));
    if (!paths)
        return INF_EXIT_FAIL;
    int rc = INF_EXIT_FAIL;
    for (size_t i = 0; i < n; i++) {
        char path[4096];
        if (inf_models_resolve_cli(cli, n_flag ? flag_models[i] : cfg_models[i], path,
                                   sizeof(path)) != 0 ||
            !(paths[i] = strdup(path)))
            goto out;
    }
    const char *kv = inf_config_get_str(cfg, "backend.kv_type");
    const char *det = inf_config_get_str(cfg, "backend.deterministic");
    struct srv_models_params mp = {0};
    mp.model_paths = (const char *const *)paths;
    mp.n_model_paths = (int)n;
    mp.models_dir = inf_config_get_str(cfg, "models_dir");
    mp.max_loaded = (int)inf_config_get_int(cfg, "server.max_loaded_models");
    mp.engine.n_ctx = (uint32_t)inf_config_get_int(cfg, "backend.context_size");
    mp.engine.n_parallel = (int)inf_config_get_int(cfg, "server.parallel");
    mp.engine.n_batch = (uint32_t)inf_config_get_int(cfg, "backend.batch_size");
    mp.engine.n_threads = (int)inf_config_get_int(cfg, "backend.threads");
    mp.engine.kv_type = strcmp(kv, "f32") == 0    ? INF_KV_F32
                        : strcmp(kv, "q8_0") == 0 ? INF_KV_Q8_0
                                                  : INF_KV_F16;
    mp.engine.queue_size = (int)inf_config_get_int(cfg, "server.queue_size");
    mp.engine.batch_wait_ms = (int)inf_config_get_int(cfg, "server.batch_wait_ms");
    mp.engine.use_mmap = inf_config_get_bool(cfg, "backend.use_mmap");
    mp.engine.determinism = strcmp(det, "on") == 0    ? SRV_DET_ON
                            : strcmp(det, "off") == 0 ? SRV_DET_OFF
                                                      : SRV_DET_AUTO;
    if (mp.engine.n_parallel < 1 || mp.engine.n_parallel > 64 ||
        mp.engine.n_ctx / (uint32_t)mp.engine.n_parallel < 16) {
        inf_cli_errorf(cli, "server.parallel %d does not fit a context of %u", mp.engine.n_parallel,
                       mp.engine.n_ctx);
        rc = INF_EXIT_USAGE;
        goto out;
    }
    struct inf_error err = {0};
    struct srv_engine *e = NULL;
    if (srv_models_new(&mp, mo, &err) != INF_OK ||
        srv_models_acquire(*mo, NULL, &e, &err) != INF_OK) {
        inf_cli_errorf(cli, "%s", inf_error_message(&err));
        goto out;
    }
    srv_models_unpin(*mo, e);
    struct http_server_params hp = {0};
    hp.models = *mo;
    hp.parse_special_in_content = inf_config_get_bool(cfg, "server.parse_special_in_content");
    if (!(*so = srv_offline_new(&hp))) {
        inf_cli_errorf(cli, "out of memory");
        goto out;
    }
    rc = INF_EXIT_OK;
out:
    if (rc != INF_EXIT_OK && *mo) {
        srv_models_free(*mo, 0);
        *mo = NULL;
    }
    for (size_t i = 0; i < n; i++)
        free(paths[i]);
    free(paths);
    return rc;
}

/* ---- the run -------------------------------------------------------------------------------- */

static atomic_int interrupts;

static void on_sigint(int sig)
{
    (void)sig;
    if (atomic_fetch_add(&interrupts, 1) >= 1)
        _exit(130);
}

struct item {
    int64_t line;
    struct inf_batch_line bl;
};

struct run {
    struct inf_jobs_exec x;
    const char *batch_id;
    struct item *items;
    size_t n, next, done, failed;
    uint64_t tokens;
    int fd;
    pthread_mutex_t mu;
    bool write_error;
    double t0;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int64_t usage_tokens(const char *resp)
{
    json_t *j = resp ? json_loads(resp, 0, NULL) : NULL;
    json_t *u = json_object_get(j, "usage");
    int64_t t = json_integer_value(json_object_get(u, "completion_tokens"));
    if (!t)
        t = json_integer_value(json_object_get(u, "total_tokens"));
    json_decref(j);
    return t;
}

static void *run_main(void *arg)
{
    struct run *r = arg;
    for (;;) {
        if (atomic_load(&interrupts))
            return NULL;
        pthread_mutex_lock(&r->mu);
        size_t i = r->next < r->n && !r->write_error ? r->next++ : r->n;
        pthread_mutex_unlock(&r->mu);
        if (i >= r->n)
            return NULL;
        struct item *it = &r->items[i];
        char *resp = NULL, rid[80] = "";
        int status;
        for (;;) {
            status = r->x.run(r->x.ctx, it->bl.endpoint, it->bl.body, it->bl.body_len, &resp, rid,
                              sizeof(rid));
            if (status != 503)
                break;
            free(resp);
            resp = NULL;
            usleep(50000);
        }
        int64_t toks = status == 200 ? usage_tokens(resp) : 0;
        char *line = inf_batch_output_line(r->batch_id, it->bl.custom_id, status, rid,
                                           resp ? resp : "{}", NULL, NULL);
        free(resp);
        size_t len = line ? strlen(line) : 0;
        if (line)
            line[len++] = '\n'; /* the NUL's place: written as one piece below */
        pthread_mutex_lock(&r->mu);
        bool ok = line != NULL;
        for (size_t off = 0; ok && off < len;) {
            ssize_t w = write(r->fd, line + off, len - off);
            if (w < 0 && errno == EINTR)
                continue;
            ok = w > 0;
            off += w > 0 ? (size_t)w : 0;
        }
        if (ok) {
            r->done++;
            r->failed += status != 200;
            r->tokens += (uint64_t)toks;
        } else {
            r->write_error = true;
        }
        pthread_mutex_unlock(&r->mu);
        free(line);
    }
}

static void progress(struct run *r, size_t skipped, size_t total, bool final)
{
    pthread_mutex_lock(&r->mu);
    size_t done = r->done;
    uint64_t toks = r->tokens;
    pthread_mutex_unlock(&r->mu);
    double el = now_s() - r->t0;
    double tps = el > 0 ? (double)toks / el : 0;
    double rate = el > 0 ? (double)done / el : 0;
    double eta = rate > 0 ? (double)(r->n - done) / rate : 0;
    size_t all = skipped + done;
    int width = 30, fill = total ? (int)((double)all / (double)total * width) : width;
    char bar[64];
    for (int i = 0; i < width; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[width] = '\0';
    fprintf(stderr, "\r[%s] %zu/%zu  %.1f tok/s  ETA %.0f s   %s", bar, all, total, tps, eta,
            final ? "\n" : "");
    fflush(stderr);
}

/* The custom_ids already in OUT (cutting a partial last line); NULL-terminated, sorted. */
static int read_done(struct inf_cli *cli, const char *out, char ***ids, size_t *n)
{
    *ids = NULL;
    *n = 0;
    FILE *f = fopen(out, "rb");
    if (!f)
        return errno == ENOENT ? INF_EXIT_OK
                               : (inf_cli_errorf(cli, "cannot open '%s': %s", out, strerror(errno)),
                                  INF_EXIT_FAIL);
    size_t len = 0;
    char *data = inf__read_stream(f, (size_t)1 << 34, &len);
    fclose(f);
    if (!data) {
        inf_cli_errorf(cli, "cannot read '%s'", out);
        return INF_EXIT_FAIL;
    }
    size_t keep = len;
    while (keep && data[keep - 1] != '\n')
        keep--;
    if (keep != len) { /* a line cut short by a kill: it never finished, so it is not done */
        if (truncate(out, (off_t)keep) != 0) {
            inf_cli_errorf(cli, "cannot truncate '%s': %s", out, strerror(errno));
            free(data);
            return INF_EXIT_FAIL;
        }
        fprintf(stderr, "inferno batch: removed an incomplete last line of '%s'\n", out);
    }
    size_t cap = 0;
    for (size_t pos = 0; pos < keep;) {
        char *nl = memchr(data + pos, '\n', keep - pos);
        size_t ll = (size_t)(nl - (data + pos));
        char *cid = ll ? inf_batch_output_custom_id(data + pos, ll) : NULL;
        if (cid) {
            if (!inf__grow(ids, &cap, *n + 1, sizeof(**ids), 256)) {
                free(cid);
                break;
            }
            (*ids)[(*n)++] = cid;
        }
        pos += ll + 1;
    }
    free(data);
    return INF_EXIT_OK;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int batch_run(struct inf_cli *cli, struct inf_cli_args *args)
{
    const char *in = args->n_positional > 1 ? args->positional[1] : NULL;
    const char *out = inf_cli_value(args, "output");
    if (!in || !out || args->n_positional > 2) {
        inf_cli_errorf(cli, "usage: inferno batch run IN.jsonl -o OUT.jsonl -m MODEL");
        return INF_EXIT_USAGE;
    }
    FILE *f = fopen(in, "rb");
    if (!f) {
        inf_cli_errorf(cli, "cannot open '%s': %s", in, strerror(errno));
        return INF_EXIT_FAIL;
    }
    size_t len = 0;
    char *data = inf__read_stream(f, (size_t)INF_JOBS_MAX_FILE_BYTES, &len);
    fclose(f);
    if (!data) {
        inf_cli_errorf(cli, "cannot read '%s': %s", in, strerror(errno));
        return INF_EXIT_FAIL;
    }
    int rc = INF_EXIT_FAIL;
    struct srv_models *m = NULL;
    struct http_server *s = NULL;
    struct item *items = NULL;
    size_t n = 0, cap = 0, n_bad = 0;
    char **done = NULL;
    size_t n_done = 0;
    struct run r = {.fd = -1};
    pthread_mutex_init(&r.mu, NULL);

    /* parse every line first: a bad file runs nothing */
    int64_t line = 0;
    for (size_t pos = 0; pos < len;) {
        const char *p = data + pos;
        const char *nl = memchr(p, '\n', len - pos);
        size_t ll = nl ? (size_t)(nl - p) : len - pos;
        pos += ll + (nl ? 1 : 0);
        line++;
        size_t k = 0;
        while (k < ll && (p[k] == ' ' || p[k] == '\t' || p[k] == '\r'))
            k++;
        if (k == ll)
            continue;
        if (!inf__grow(&items, &cap, n + 1, sizeof(*items), 256)) {
            inf_cli_errorf(cli, "out of memory");
            goto out;
        }
        struct inf_error le = {0};
        if (inf_batch_line_parse(p, ll, &items[n].bl, &le) != INF_OK) {
            fprintf(stderr, "%s:%lld: %s\n", in, (long long)line, inf_error_message(&le));
            n_bad++;
            continue;
        }
        items[n++].line = line;
    }
    if ((rc = inf_cli_offline_server(cli, args, &m, &s)) != INF_EXIT_OK)
        goto out;
    rc = INF_EXIT_FAIL;
    long long conc = 0;
    if (inf_cli_has(args, "concurrency") && !inf_cli_int(cli, args, "concurrency", 1, 256, &conc)) {
        rc = INF_EXIT_USAGE;
        goto out;
    }
    srv_jobs_exec_init(
        s, conc ? (int)conc : (int)inf_config_get_int(cli->config, "server.parallel"), &r.x);
    for (size_t i = 0; i < n; i++) {
        char msg[600];
        if (!r.x.check(r.x.ctx, items[i].bl.endpoint, items[i].bl.body, items[i].bl.body_len, msg,
                       sizeof(msg))) {
            fprintf(stderr, "%s:%lld: %s\n", in, (long long)items[i].line, msg);
            n_bad++;
        }
    }
    /* duplicate custom_ids */
    if (n > 1) {
        char **ids = malloc(n * sizeof(*ids));
        for (size_t i = 0; ids && i < n; i++)
            ids[i] = items[i].bl.custom_id;
        if (ids) {
            qsort(ids, n, sizeof(*ids), cmp_str);
            for (size_t i = 1; i < n; i++)
                if (strcmp(ids[i], ids[i - 1]) == 0) {
                    fprintf(stderr, "%s: duplicate custom_id '%s'\n", in, ids[i]);
                    n_bad++;
                }
            free(ids);
        }
    }
    if (n_bad) {
        inf_cli_errorf(cli, "%zu bad line(s) in '%s': nothing was run", n_bad, in);
        goto out;
    }
    if ((rc = read_done(cli, out, &done, &n_done)) != INF_EXIT_OK)
        goto out;
    rc = INF_EXIT_FAIL;
    if (n_done)
        qsort(done, n_done, sizeof(*done), cmp_str);
    /* the requests still to run, in input order */
    size_t k = 0, skipped = 0;
    for (size_t i = 0; i < n; i++) {
        char *key = items[i].bl.custom_id;
        if (n_done && bsearch(&key, done, n_done, sizeof(*done), cmp_str)) {
            inf_batch_line_release(&items[i].bl);
            skipped++;
            continue;
        }
        items[k++] = items[i];
    }
    size_t total = n;
    n = k;
    r.fd = open(out, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (r.fd < 0) {
        inf_cli_errorf(cli, "cannot open '%s': %s", out, strerror(errno));
        goto out;
    }
    char bid[300];
    const char *base = strrchr(in, '/');
    snprintf(bid, sizeof(bid), "batch_%s", base ? base + 1 : in);
    r.batch_id = bid;
    r.items = items;
    r.n = n;
    r.t0 = now_s();
    if (skipped)
        fprintf(stderr, "inferno batch: %zu of %zu requests already in '%s'; running %zu\n",
                skipped, total, out, n);
    struct sigaction sa = {0};
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    bool bar = isatty(2) && !inf_cli_has(args, "no-progress");
    int nt = r.x.concurrency;
    pthread_t th[256];
    int started = 0;
    for (int i = 0; i < nt && i < 256 && (size_t)i < n; i++)
        if (pthread_create(&th[started], NULL, run_main, &r) == 0)
            started++;
    for (;;) {
        pthread_mutex_lock(&r.mu);
        bool finished = r.done >= r.n || r.write_error;
        pthread_mutex_unlock(&r.mu);
        if (finished || atomic_load(&interrupts))
            break;
        if (bar)
            progress(&r, skipped, total, false);
        usleep(200 * 1000);
    }
    for (int i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    if (bar)
        progress(&r, skipped, total, true);
    bool synced = fsync(r.fd) == 0;
    double el = now_s() - r.t0;
    fprintf(stderr,
            "inferno batch: %zu of %zu requests done (%zu failed) in %.1f s, %.1f tok/s; output "
            "'%s'\n",
            skipped + r.done, total, r.failed, el, el > 0 ? (double)r.tokens / el : 0.0, out);
    if (r.write_error || !synced)
        inf_cli_errorf(cli, "cannot write '%s': %s", out, strerror(errno));
    else if (atomic_load(&interrupts))
        rc = 130; /* interrupted: run again with the same arguments to continue */
    else
        rc = INF_EXIT_OK;
out:
    if (r.fd >= 0)
        close(r.fd);
    for (size_t i = 0; i < n; i++)
        inf_batch_line_release(&items[i].bl);
    free(items);
    for (size_t i = 0; i < n_done; i++)
        free(done[i]);
    free(done);
    srv_offline_free(s);
    if (m)
        srv_models_free(m, 0);
    pthread_mutex_destroy(&r.mu);
    free(data);
    return rc;
}

int inf_cmd_batch(struct inf_cli *cli, struct inf_cli_args *args)
{
    const char *sub = args->n_positional ? args->positional[0] : "";
    if (strcmp(sub, "run") == 0)
        return batch_run(cli, args);
    inf_cli_errorf(cli, "unknown subcommand '%s': use 'inferno batch run IN -o OUT -m MODEL'", sub);
    return INF_EXIT_USAGE;
}
