/*
 * cmd_serve.c - `inferno serve`: the OpenAI-compatible HTTP server.
 *
 * Loads the default model (the first -m / server.models entry, else the first
 * model found in models_dir), starts the HTTP server (src/server/http.c) and
 * waits for SIGINT/SIGTERM; then it stops accepting connections, lets running
 * requests finish for server.drain_seconds, cancels the rest and exits 0. Once
 * ready it prints one line on stdout that scripts can wait for: listening on
 * http://HOST:PORT (https:// with TLS). Everything else goes to the log
 * (stderr).
 */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "cli/cli.h"
#include "cli/cli_engine.h"
#include "inferno/audit.h"
#include "inferno/cache.h"
#include "inferno/hub.h"
#include "inferno/log.h"
#include "inferno/model_file.h"
#include "inferno/models.h"
#include "server/audit_hook.h"
#include "server/cache_hook.h"
#include "server/http.h"
#include "server/jobs_exec.h"
#include "server/kserve.h"
#include "server/sched.h"

const struct inf_cli_opt inf_cmd_serve_opts[] = {
    {"model", 'm', INF_OPT_LIST, "MODEL",
     "model to serve (path or name under models_dir; repeatable, the first is the default); "
     "[NAME=]FILE.onnx serves an ONNX model on /v2 (KServe v2)",
     NULL},
    {"host", 0, INF_OPT_VALUE, "ADDR", "address to bind (default 127.0.0.1: loopback only)",
     "server.host"},
    {"port", 0, INF_OPT_VALUE, "N", "TCP port (0 = any free port)", "server.port"},
    {"parallel", 0, INF_OPT_VALUE, "N", "slots sharing the context (concurrent requests)",
     "server.parallel"},
    {"ctx", 'c', INF_OPT_VALUE, "N", "total context (KV cells) split between the slots",
     "backend.context_size"},
    {"threads", 't', INF_OPT_VALUE, "N", "inference threads (0 = physical cores)",
     "backend.threads"},
    {"batch", 'b', INF_OPT_VALUE, "N", "most tokens per forward pass", "backend.batch_size"},
    {"deterministic", 0, INF_OPT_VALUE, "MODE",
     "batch-invariant results: auto (temperature-0 requests), on, off", "backend.deterministic"},
    {"api-key", 0, INF_OPT_LIST, "KEY", "accept this bearer token (repeatable)", NULL},
    {"api-key-file", 0, INF_OPT_VALUE, "FILE", "file of bearer tokens, one per line",
     "server.api_key_file"},
    {"queue-size", 0, INF_OPT_VALUE, "N", "requests waiting for a slot before 503",
     "server.queue_size"},
    {"cache", 0, INF_OPT_FLAG, NULL,
     "answer repeated deterministic requests from the response cache (cache.enabled)", NULL},
    {"audit", 0, INF_OPT_FLAG, NULL, "record every request in the audit log (audit.enabled)", NULL},
    {NULL, 0, 0, NULL, NULL, NULL},
};

struct strlist {
    char **v;
    size_t n;
};

static bool strlist_add(struct strlist *l, const char *s, size_t len)
{
    while (len && (s[0] == ' ' || s[0] == '\t')) {
        s++;
        len--;
    }
    while (len && (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\r'))
        len--;
    if (!len)
        return true;
    char **v = realloc(l->v, (l->n + 1) * sizeof(*v));
    if (!v)
        return false;
    l->v = v;
    l->v[l->n] = strndup(s, len);
    return l->v[l->n++] != NULL;
}

static void strlist_free(struct strlist *l)
{
    for (size_t i = 0; i < l->n; i++) {
        volatile char *p = l->v[i];
        for (; *p; p++) /* keys: wipe before freeing */
            *p = 0;
        free(l->v[i]);
    }
    free(l->v);
}

/*
 * Add one API key, trimmed of blanks. Refused: an empty key (`--api-key "$UNSET"` would
 * otherwise start an open server) and a key with whitespace inside (a line or paste gone
 * wrong; bearer tokens have none). from names where the key came from, for the message.
 */
static int add_key(struct inf_cli *cli, struct strlist *k, const char *s, size_t len,
                   const char *from)
{
    while (len && isspace((unsigned char)s[0])) {
        s++;
        len--;
    }
    while (len && isspace((unsigned char)s[len - 1]))
        len--;
    if (!len) {
        inf_cli_errorf(cli,
                       "%s: an empty API key (an unset variable?) would leave the server "
                       "open; refusing to start",
                       from);
        return INF_EXIT_USAGE;
    }
    for (size_t i = 0; i < len; i++) {
        if (isspace((unsigned char)s[i]) || iscntrl((unsigned char)s[i])) {
            inf_cli_errorf(cli, "%s: an API key has whitespace or a control character inside it",
                           from);
            return INF_EXIT_USAGE;
        }
    }
    if (!strlist_add(k, s, len)) {
        inf_cli_errorf(cli, "out of memory");
        return INF_EXIT_FAIL;
    }
    return INF_EXIT_OK;
}

/* The keys of server.api_key_file: one per whole line (any length), blanks trimmed; blank lines
 * and lines starting with '#' (after the blanks) skipped. A file with no key is an error. */
static int read_key_file(struct inf_cli *cli, const char *file, struct strlist *k)
{
    FILE *f = fopen(file, "r");
    if (!f) {
        inf_cli_errorf(cli, "cannot open server.api_key_file '%s': %s", file, strerror(errno));
        return INF_EXIT_FAIL;
    }
    char *line = NULL;
    size_t cap = 0, n_before = k->n, lineno = 0;
    ssize_t len;
    int rc = INF_EXIT_OK;
    while (rc == INF_EXIT_OK && (len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        const char *p = line;
        while (isspace((unsigned char)*p))
            p++;
        if (*p == '\0' || *p == '#')
            continue;
        char from[64 + 4096];
        snprintf(from, sizeof(from), "server.api_key_file '%s' line %zu", file, lineno);
        rc = add_key(cli, k, line, (size_t)len, from);
    }
    if (rc == INF_EXIT_OK && ferror(f)) {
        inf_cli_errorf(cli, "cannot read server.api_key_file '%s': %s", file, strerror(errno));
        rc = INF_EXIT_FAIL;
    }
    if (rc == INF_EXIT_OK && k->n == n_before) {
        inf_cli_errorf(cli,
                       "server.api_key_file '%s' has no key in it; refusing to start an open "
                       "server",
                       file);
        rc = INF_EXIT_USAGE;
    }
    if (line) {
        volatile char *w = line; /* keys: wipe before freeing */
        for (size_t i = 0; i < cap; i++)
            w[i] = 0;
        free(line);
    }
    fclose(f);
    return rc;
}

/* API keys from config, INFERNO_API_KEYS, the key file and --api-key, in that
 * order. */
static int collect_keys(struct inf_cli *cli, const struct inf_cli_args *args, struct strlist *k)
{
    int rc;
    size_t n = 0;
    const char *const *cfg = inf_config_get_list(cli->config, "server.api_keys", &n);
    for (size_t i = 0; i < n; i++)
        if ((rc = add_key(cli, k, cfg[i], strlen(cfg[i]), "server.api_keys")) != INF_EXIT_OK)
            return rc;
    const char *env = getenv("INFERNO_API_KEYS");
    for (const char *p = env; p;) {
        const char *c = strchr(p, ',');
        size_t len = c ? (size_t)(c - p) : strlen(p);
        if ((rc = add_key(cli, k, p, len, "INFERNO_API_KEYS")) != INF_EXIT_OK)
            return rc;
        p = c ? c + 1 : NULL;
    }
    const char *file = inf_config_get_str(cli->config, "server.api_key_file");
    if (file && *file && (rc = read_key_file(cli, file, k)) != INF_EXIT_OK)
        return rc;
    int nk = 0;
    const char *const *flags = inf_cli_values(args, "api-key", &nk);
    for (int i = 0; i < nk; i++)
        if ((rc = add_key(cli, k, flags[i], strlen(flags[i]), "--api-key")) != INF_EXIT_OK)
            return rc;
    return INF_EXIT_OK;
}

/*
 * Every connection holds a descriptor (and a model file or two more): lift the soft open-file
 * limit (often 1024) towards the hard one so that server.max_connections can be reached, and
 * say so when the hard limit is below it.
 */
static void raise_fd_limit(int max_connections)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    rlim_t want = (rlim_t)max_connections + 256;
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
        rl.rlim_cur = (rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= want) ? want : rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
        (void)getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want)
        INF_LOG_WARN("server",
                     "the open-file limit (%llu) is below server.max_connections + 256 (%llu): "
                     "connections beyond it will be refused; raise it with ulimit -n",
                     (unsigned long long)rl.rlim_cur, (unsigned long long)want);
}

int inf_cmd_serve(struct inf_cli *cli, struct inf_cli_args *args)
{
    const struct inf_config *cfg = cli->config;
    struct strlist models = {0}, keys = {0}, onnx_names = {0}, onnx_paths = {0};
    struct srv_onnx *onnx = NULL;
    struct srv_models *m = NULL;
    struct http_server *http = NULL;
    struct srv_cache *cache = NULL;
    struct srv_audit *audit = NULL;
    struct inf_jobs *jobs = NULL;
    struct srv_jobs *worker = NULL;
    struct inf_error err = {0};
    int rc = INF_EXIT_FAIL;
    char **ids = NULL, *hub_token = NULL;

    /* models: -m (repeatable) replaces server.models */
    int n_flag = 0;
    const char *const *flag_models = inf_cli_values(args, "model", &n_flag);
    size_t n_cfg = 0;
    const char *const *cfg_models = inf_config_get_list(cfg, "server.models", &n_cfg);
    size_t n_req = n_flag ? (size_t)n_flag : n_cfg;
    const char *models_db = inf_config_get_str(cfg, "cache.models_db");
    ids = n_req ? calloc(n_req, sizeof(*ids)) : NULL;
    if (n_req && !ids) {
        inf_cli_errorf(cli, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n_req; i++) {
        char path[4096];
        const char *arg = n_flag ? flag_models[i] : cfg_models[i];
        /* ONNX: [NAME=]FILE, served on /v2 */
        const char *eq = strchr(arg, '='), *file = eq ? eq + 1 : arg;
        struct inf_model_format_info fi = {0};
        struct inf_error derr = {0};
        if (inf_model_detect_file(file, &fi, &derr) == INF_OK &&
            fi.format == INF_MODEL_FORMAT_ONNX) {
            char name[256];
            if (eq) {
                snprintf(name, sizeof(name), "%.*s", (int)(eq - arg), arg);
            } else {
                /* the file's stem; "model.onnx" takes its directory's name */
                const char *base = strrchr(file, '/') ? strrchr(file, '/') + 1 : file;
                size_t len = strcspn(base, ".");
                if (len == 5 && !strncmp(base, "model", 5) && base != file) {
                    const char *end = base - 1, *start = end;
                    while (start > file && start[-1] != '/')
                        start--;
                    len = (size_t)(end - start);
                    base = start;
                }
                snprintf(name, sizeof(name), "%.*s", (int)len, base);
            }
            if (!strlist_add(&onnx_names, name, strlen(name)) ||
                !strlist_add(&onnx_paths, file, strlen(file)))
                goto out;
            continue;
        }
        if (inf_models_resolve_cli(cli, arg, path, sizeof(path)) != 0)
            goto out;
        strlist_add(&models, path, strlen(path));
        /* a registered name is served under that name, a path under its file's stem */
        struct inf_model_reg reg;
        if (strcmp(path, arg) != 0 && inf_models_lookup(models_db, arg, &reg, NULL) == INF_OK)
            ids[i] = strdup(reg.name);
    }
    if (onnx_paths.n) {
        int threads = (int)inf_config_get_int(cfg, "backend.threads");
        if (srv_onnx_new((const char *const *)onnx_names.v, (const char *const *)onnx_paths.v,
                         onnx_paths.n, threads, &onnx, &err) != INF_OK) {
            inf_cli_errorf(cli, "%s", inf_error_message(&err));
            goto out;
        }
        for (size_t i = 0; i < onnx_paths.n; i++)
            INF_LOG_INFO("serve", "serving ONNX model '%s' (%s) on /v2/models/%s", onnx_names.v[i],
                         onnx_paths.v[i], onnx_names.v[i]);
    }
    if ((rc = collect_keys(cli, args, &keys)) != INF_EXIT_OK)
        goto out;
    rc = INF_EXIT_FAIL;

    const char *kv = inf_config_get_str(cfg, "backend.kv_type");
    struct srv_models_params mp = {0};
    mp.model_paths = (const char *const *)models.v;
    mp.n_model_paths = (int)models.n;
    mp.model_ids = (const char *const *)ids;
    mp.models_dir = inf_config_get_str(cfg, "models_dir");
    mp.models_db = models_db;
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
    mp.engine.use_mlock = inf_config_get_bool(cfg, "backend.use_mlock");
    mp.engine.huge_pages = inf_config_get_bool(cfg, "backend.huge_pages");
    const char *det = inf_config_get_str(cfg, "backend.deterministic");
    mp.engine.determinism = strcmp(det, "on") == 0    ? SRV_DET_ON
                            : strcmp(det, "off") == 0 ? SRV_DET_OFF
                                                      : SRV_DET_AUTO;
    if (mp.engine.n_parallel > INF_SERVER_MAX_PARALLEL) {
        inf_cli_errorf(cli, "server.parallel is %d; at most %d slots are supported",
                       mp.engine.n_parallel, INF_SERVER_MAX_PARALLEL);
        rc = INF_EXIT_USAGE;
        goto out;
    }
    if (mp.engine.n_ctx / (uint32_t)mp.engine.n_parallel < 16) {
        inf_cli_errorf(cli, "a context of %u split between %d slots leaves %u tokens per slot",
                       mp.engine.n_ctx, mp.engine.n_parallel,
                       mp.engine.n_ctx / (uint32_t)mp.engine.n_parallel);
        rc = INF_EXIT_USAGE;
        goto out;
    }
    bool onnx_only = onnx && !models.n;
    if (!onnx_only && srv_models_new(&mp, &m, &err) != INF_OK) {
        inf_cli_errorf(cli, "%s", inf_error_message(&err));
        goto out;
    }

    /* load the default model now, so that "listening" means ready */
    struct srv_engine *e = NULL;
    if (onnx_only) {
        /* only ONNX models: no GGUF engine */
    } else if (srv_models_acquire(m, NULL, &e, &err) != INF_OK) {
        inf_cli_errorf(cli, "%s", inf_error_message(&err));
        goto out;
    }
    if (e) {
        uint32_t slot = srv_engine_slot_ctx(e);
        int np = srv_engine_n_parallel(e);
        if (!inf_model_chat_template(srv_engine_model(e), NULL))
            INF_LOG_WARN("serve", "model '%s' has no chat template; chat requests use ChatML",
                         srv_engine_model_id(e));
        INF_LOG_INFO("serve", "model '%s': %d slots x %u tokens (context %u)",
                     srv_engine_model_id(e), np, slot, slot * (uint32_t)np);
        srv_models_unpin(m, e);
        struct srv_model_entry *list = NULL;
        size_t n_list = 0;
        if (srv_models_list(m, &list, &n_list, &err) == INF_OK) {
            for (size_t i = 0; i < n_list; i++)
                INF_LOG_INFO("serve", "serving '%s' (%s)%s", list[i].id, list[i].path,
                             i == 0 ? " [default]" : "");
            free(list);
        }
    }

    /* SIGINT/SIGTERM are taken by sigwait below: block them before any thread starts */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    size_t n_cors = 0;
    const char *const *cors = inf_config_get_list(cfg, "server.cors_origins", &n_cors);
    struct http_server_params hp = {0};
    hp.host = inf_config_get_str(cfg, "server.host");
    hp.port = (int)inf_config_get_int(cfg, "server.port");
    hp.tls_cert = inf_config_get_str(cfg, "server.tls_cert");
    hp.tls_key = inf_config_get_str(cfg, "server.tls_key");
    hp.max_body_bytes = (size_t)inf_config_get_int(cfg, "server.max_body_bytes");
    hp.ws_max_pending_bytes = (size_t)inf_config_get_int(cfg, "server.ws_max_pending_bytes");
    hp.max_header_bytes = (size_t)inf_config_get_int(cfg, "server.max_header_bytes");
    hp.max_connections = (int)inf_config_get_int(cfg, "server.max_connections");
    hp.timeout_seconds = (int)inf_config_get_int(cfg, "server.timeout_seconds");
    hp.max_connections_per_ip = (int)inf_config_get_int(cfg, "server.max_connections_per_ip");
    hp.per_ip_exempt = inf_config_get_list(cfg, "server.per_ip_exempt", &hp.n_per_ip_exempt);
    hp.header_timeout_seconds = (int)inf_config_get_int(cfg, "server.header_timeout_seconds");
    hp.body_timeout_seconds = (int)inf_config_get_int(cfg, "server.body_timeout_seconds");
    hp.allowed_hosts = inf_config_get_list(cfg, "server.allowed_hosts", &hp.n_allowed_hosts);
    hp.api_keys = (const char *const *)keys.v;
    hp.n_api_keys = keys.n;
    hp.rate_limit_rpm = (int)inf_config_get_int(cfg, "server.rate_limit_rpm");
    hp.cors_origins = cors;
    hp.n_cors_origins = n_cors;
    hp.models = m;
    hp.onnx = onnx;
    hp.parse_special_in_content = inf_config_get_bool(cfg, "server.parse_special_in_content");
    if (inf_cli_has(args, "cache") || inf_config_get_bool(cfg, "cache.enabled")) {
        struct inf_cache_params cp;
        struct inf_cache *store = NULL;
        inf_cli_cache_params(cli, &cp);
        if (inf_cache_open(&cp, &store, &err) != INF_OK) {
            inf_cli_errorf(cli, "response cache: %s", inf_error_message(&err));
            goto out;
        }
        if (!(cache = srv_cache_new(store))) {
            inf_cache_free(store);
            inf_cli_errorf(cli, "out of memory");
            goto out;
        }
        INF_LOG_INFO("serve", "response cache: %s (at most %lld bytes, ttl %lld s)", cp.dir,
                     (long long)cp.max_bytes, (long long)cp.ttl_seconds);
    }
    if (inf_cli_has(args, "audit") || inf_config_get_bool(cfg, "audit.enabled")) {
        struct inf_audit *log = NULL;
        if (inf_cli_audit_open(cli, &log) != INF_EXIT_OK)
            goto out;
        audit = srv_audit_new(log, inf_config_get_bool(cfg, "audit.include_content"),
                              inf_config_get_bool(cfg, "audit.required"),
                              (const char *const *)keys.v, keys.n);
        if (!audit) {
            inf_audit_close(log);
            inf_cli_errorf(cli, "out of memory");
            goto out;
        }
        INF_LOG_INFO("serve", "audit log: %s (fsync %s%s)", inf_config_get_str(cfg, "audit.dir"),
                     inf_config_get_str(cfg, "audit.fsync"),
                     inf_config_get_bool(cfg, "audit.include_content") ? ", with content" : "");
    }
    if (inf_config_get_bool(cfg, "queue.enabled")) {
        if (inf_cli_jobs_open(cli, audit ? srv_jobs_audit_event : NULL, audit, &jobs) !=
            INF_EXIT_OK)
            goto out;
        hp.jobs = jobs;
        hp.max_upload_bytes = (size_t)inf_config_get_int(cfg, "files.max_bytes");
    }
    hp.cache = cache;
    hp.audit = audit;
    struct inf_hub_params hub;
    inf_cli_hub_params(cli, &hub);
    hub_token = inf_cli_hf_token(NULL);
    hub.token = hub_token;
    hp.hub = inf_config_get_bool(cfg, "server.allow_pull") ? &hub : NULL;
    hp.models_db = models_db;
    raise_fd_limit(hp.max_connections);
    if (http_server_start(&hp, &http, &err) != INF_OK) {
        inf_cli_errorf(cli, "%s", inf_error_message(&err));
        goto out;
    }
    if (jobs && inf_config_get_bool(cfg, "queue.worker")) {
        int conc = (int)inf_config_get_int(cfg, "queue.batch_concurrency");
        struct srv_jobs_params jp = {
            .workers = (int)inf_config_get_int(cfg, "queue.max_concurrent"),
            .concurrency = conc > 0 ? conc : (int)inf_config_get_int(cfg, "server.parallel"),
            .lease_ms = (int)inf_config_get_int(cfg, "queue.lease_seconds") * 1000,
        };
        if (!(worker = srv_jobs_start(http, jobs, &jp))) {
            inf_cli_errorf(cli, "cannot start the queue worker");
            goto out;
        }
    }
    bool tls = hp.tls_cert && *hp.tls_cert;
    bool v6 = strchr(hp.host, ':') != NULL;
    INF_LOG_INFO("serve", "API keys: %s; rate limit: %s; CORS: %s",
                 keys.n ? "required (except /health)" : "none (open)",
                 hp.rate_limit_rpm ? "on" : "off", n_cors ? "on" : "off");
    printf("listening on %s://%s%s%s:%d\n", tls ? "https" : "http", v6 ? "[" : "", hp.host,
           v6 ? "]" : "", http_server_port(http));
    fflush(stdout);

    int sig = 0;
    sigwait(&sigs, &sig);
    int drain = (int)inf_config_get_int(cfg, "server.drain_seconds");
    INF_LOG_INFO("serve", "%s: stopping; running requests have %d s to finish",
                 sig == SIGINT ? "SIGINT" : "SIGTERM", drain);
    http_server_quiesce(http); /* no new requests from here on */
    srv_jobs_stop(worker);     /* its running batch is left to be taken up again */
    worker = NULL;
    http_server_stop(http, drain * 1000);
    http = NULL;
    rc = INF_EXIT_OK;
out:
    srv_jobs_stop(worker);
    if (http)
        http_server_stop(http, 0);
    if (m)
        srv_models_free(m, 0);
    srv_cache_free(cache);
    inf_jobs_close(jobs);
    srv_audit_free(audit); /* seals the log's head */
    srv_onnx_free(onnx);
    strlist_free(&onnx_names);
    strlist_free(&onnx_paths);
    strlist_free(&models);
    strlist_free(&keys);
    for (size_t i = 0; ids && i < n_req; i++)
        free(ids[i]);
    free(ids);
    free(hub_token);
    if (rc == INF_EXIT_OK)
        INF_LOG_INFO("serve", "stopped");
    return rc;
}
