/*
 * config.c - the configuration schema and the cascade defaults < files < env < flags.
 *
 * src/config/ owns configuration: the TOML 1.0 parser (toml.c; Debian has no C TOML library)
 * and every key Inferno reads, with its type, default and limits (schema[] here). Only the CLI
 * reads it; the library takes parameter structs.
 */
#include "inferno/config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "config/toml.h"
#include "core/escape.h"
#include "core/text.h"
#include "inferno/log.h"
#include "inferno/threadpool.h"

static const char *const kv_types[] = {"f16", "f32", "q8_0", NULL};
static const char *const det_modes[] = {"auto", "on", "off", NULL};
static const char *const audit_fsync_modes[] = {"always", "batch", "never", NULL};
static const char *const log_levels[] = {"trace", "debug", "info", "warn", "error", "off", NULL};
static const char *const log_formats[] = {"auto", "pretty", "compact", "json", NULL};

/*
 * The schema: every key Inferno reads, with its type, default and a one-line description.
 * Defaults that depend on the environment (XDG directories, HOME) are written with the
 * variable and resolved when the configuration is created (see resolve_default).
 */
static const struct inf_config_key schema[] = {
    {"models_dir", INF_CFG_PATH, "\"~/.inferno/models\"",
     "directory scanned (recursively) for model files", 0, 0, NULL},

    {"backend.threads", INF_CFG_INT, "0", "worker threads for inference; 0 = physical cores", 0,
     INF_THREADS_MAX, NULL},
    {"backend.context_size", INF_CFG_INT, "4096", "context length in tokens (KV cache cells)", 16,
     1 << 22, NULL},
    {"backend.batch_size", INF_CFG_INT, "512", "tokens per forward pass when processing prompts", 1,
     1 << 16, NULL},
    {"backend.kv_type", INF_CFG_STRING, "\"f16\"", "KV cache element type: f16, f32 or q8_0", 0, 0,
     kv_types},
    {"backend.deterministic", INF_CFG_STRING, "\"auto\"",
     "batch-invariant logits (costs prompt speed): on, off, or auto = on for the server's "
     "temperature-0 requests",
     0, 0, det_modes},
    {"backend.use_mmap", INF_CFG_BOOL, "true", "map model files instead of reading them", 0, 0,
     NULL},
    {"backend.use_mlock", INF_CFG_BOOL, "false", "lock model weights in RAM", 0, 0, NULL},
    {"backend.huge_pages", INF_CFG_BOOL, "true",
     "copy the weights into transparent huge pages (faster generation, slower load)", 0, 0, NULL},

    {"server.host", INF_CFG_STRING, "\"127.0.0.1\"", "address the HTTP server binds to", 0, 0,
     NULL},
    {"server.port", INF_CFG_INT, "8080", "TCP port of the HTTP server; 0 = any free port", 0, 65535,
     NULL},
    {"server.models", INF_CFG_STRING_LIST, "[]",
     "models served (paths or names under models_dir); the first is the default", 0, 0, NULL},
    {"server.api_keys", INF_CFG_STRING_LIST, "[]",
     "bearer tokens accepted by the API; empty = no authentication", 0, 0, NULL},
    {"server.max_body_bytes", INF_CFG_INT, "8388608", "largest request body accepted", 1024,
     1LL << 32, NULL},
    {"server.ws_max_pending_bytes", INF_CFG_INT, "4194304",
     "WebSocket: bytes waiting to be sent to a client that does not read before its request is "
     "cancelled",
     1024, 1LL << 32, NULL},
    {"server.parallel", INF_CFG_INT, "4", "concurrent generation slots sharing one context", 1,
     INF_SERVER_MAX_PARALLEL, NULL},
    {"server.max_loaded_models", INF_CFG_INT, "4",
     "models kept loaded at once while memory allows (else the least recently used idle one is "
     "replaced)",
     1, 64, NULL},
    {"server.queue_size", INF_CFG_INT, "64", "requests waiting for a slot before 503", 0, 100000,
     NULL},
    {"server.batch_wait_ms", INF_CFG_INT, "30",
     "ms a prompt-only step waits after the newest request for more to join (0 = none)", 0, 10000,
     NULL},
    {"server.timeout_seconds", INF_CFG_INT, "60",
     "seconds a client connection may stay silent (idle keep-alive, slow requests)", 1, 86400,
     NULL},
    {"server.tls_cert", INF_CFG_PATH, "\"\"", "PEM certificate file; empty = plain HTTP", 0, 0,
     NULL},
    {"server.tls_key", INF_CFG_PATH, "\"\"", "PEM private key file for tls_cert", 0, 0, NULL},
    {"server.api_key_file", INF_CFG_PATH, "\"\"",
     "file of bearer tokens, one per line (# comments); added to api_keys", 0, 0, NULL},
    {"server.rate_limit_rpm", INF_CFG_INT, "0",
     "requests per minute per API key (per client address without keys); 0 = off", 0, 1000000,
     NULL},
    {"server.cors_origins", INF_CFG_STRING_LIST, "[]",
     "origins allowed by CORS (\"*\" = any); empty = CORS off", 0, 0, NULL},
    {"server.drain_seconds", INF_CFG_INT, "30",
     "on SIGINT/SIGTERM, seconds running requests may finish before they are cancelled", 0, 3600,
     NULL},
    {"server.max_header_bytes", INF_CFG_INT, "32768",
     "memory for one connection's request line and headers (larger: 431)", 4096, 1 << 20, NULL},
    {"server.max_connections", INF_CFG_INT, "256", "open client connections at once", 1, 65536,
     NULL},
    {"server.allow_pull", INF_CFG_BOOL, "true",
     "Ollama's /api/pull may download models into models_dir (hub.* settings)", 0, 0, NULL},
    {"server.parse_special_in_content", INF_CFG_BOOL, "false",
     "chat: control tokens typed in messages (</s>, <|im_start|>...) act as control tokens "
     "(unsafe: users can forge turns)",
     0, 0, NULL},
    {"server.max_connections_per_ip", INF_CFG_INT, "32",
     "open connections per client address (except per_ip_exempt); 0 = no limit", 0, 65536, NULL},
    {"server.per_ip_exempt", INF_CFG_STRING_LIST, "[\"127.0.0.1\", \"::1\"]",
     "client addresses not counted by max_connections_per_ip (a local reverse proxy)", 0, 0, NULL},
    {"server.header_timeout_seconds", INF_CFG_INT, "15",
     "seconds a connection has to send a request's headers (idle keep-alive included)", 1, 3600,
     NULL},
    {"server.body_timeout_seconds", INF_CFG_INT, "120",
     "seconds a request has to send its whole body once its headers are in", 1, 86400, NULL},
    {"server.allowed_hosts", INF_CFG_STRING_LIST, "[]",
     "Host names accepted besides localhost and the bound address (\"*\" = any)", 0, 0, NULL},

    {"cache.models_db", INF_CFG_PATH, "\"$XDG_CACHE_HOME/inferno/models.db\"",
     "SQLite cache of model metadata for `models list`", 0, 0, NULL},
    {"cache.enabled", INF_CFG_BOOL, "false",
     "serve: answer repeated deterministic requests from the response cache (--cache)", 0, 0, NULL},
    {"cache.dir", INF_CFG_PATH, "\"$XDG_CACHE_HOME/inferno/responses\"",
     "directory of the response cache (default ~/.cache/inferno/responses)", 0, 0, NULL},
    {"cache.max_bytes", INF_CFG_INT, "1073741824",
     "response cache bound on disk (compressed bytes); least recently used entries go; 0 = none", 0,
     1LL << 50, NULL},
    {"cache.max_entry_bytes", INF_CFG_INT, "16777216",
     "larger answers are not cached (bytes before compression)", 1024, 1LL << 31, NULL},
    {"cache.ttl", INF_CFG_INT, "604800", "seconds a cached answer stays valid; 0 = forever", 0,
     100LL * 365 * 86400, NULL},
    {"cache.memory_bytes", INF_CFG_INT, "67108864",
     "the response cache's in-memory tier (decoded bytes); 0 = disk only", 0, 1LL << 40, NULL},

    {"audit.enabled", INF_CFG_BOOL, "false",
     "record API requests and state-changing commands in the audit log", 0, 0, NULL},
    {"audit.dir", INF_CFG_PATH, "\"$XDG_STATE_HOME/inferno/audit\"",
     "directory of the audit log (default ~/.local/state/inferno/audit)", 0, 0, NULL},
    {"audit.key_file", INF_CFG_PATH, "\"\"",
     "32-byte key (64 hex digits) encrypting every record (or INFERNO_AUDIT_KEY); empty = plain", 0,
     0, NULL},
    {"audit.include_content", INF_CFG_BOOL, "false",
     "also record prompts and completions (request and response bodies)", 0, 0, NULL},
    {"audit.fsync", INF_CFG_STRING, "\"batch\"",
     "always, batch (group commit every batch_ms) or never", 0, 0, audit_fsync_modes},
    {"audit.batch_ms", INF_CFG_INT, "10", "group-commit interval of audit.fsync = batch", 1, 1000,
     NULL},
    {"audit.required", INF_CFG_BOOL, "false",
     "fail a request (503) when its audit record cannot be written", 0, 0, NULL},
    {"audit.max_file_bytes", INF_CFG_INT, "67108864",
     "start a new audit file past this size (also at each UTC day); 0 = by day only", 0, 1LL << 40,
     NULL},

    {"queue.enabled", INF_CFG_BOOL, "true",
     "serve: the Files and Batch API and an in-process queue worker", 0, 0, NULL},
    {"queue.url", INF_CFG_STRING, "\"\"",
     "the jobs store: sqlite:PATH or postgresql://... (empty: sqlite:<queue.path>)", 0, 0, NULL},
    {"queue.path", INF_CFG_PATH, "\"$XDG_STATE_HOME/inferno/queue.db\"",
     "SQLite store of batch jobs (when queue.url is empty)", 0, 0, NULL},
    {"queue.worker", INF_CFG_BOOL, "true",
     "serve runs queued jobs itself (else: inferno queue worker)", 0, 0, NULL},
    {"queue.batch_concurrency", INF_CFG_INT, "0",
     "requests of a batch in flight at once (0: server.parallel)", 0, 256, NULL},
    {"queue.lease_seconds", INF_CFG_INT, "15",
     "a claimed job's lease; a worker that stops renewing it loses the job", 2, 3600, NULL},
    {"queue.max_concurrent", INF_CFG_INT, "1", "batch jobs run at once", 1, 256, NULL},
    {"queue.max_retries", INF_CFG_INT, "3",
     "retries before a failed job is dead (max attempts = this + 1)", 0, 100, NULL},

    {"files.dir", INF_CFG_PATH, "\"$XDG_DATA_HOME/inferno/files\"",
     "uploaded batch files and batch results", 0, 0, NULL},
    {"files.max_bytes", INF_CFG_INT, "209715200", "largest file upload (POST /v1/files)", 1024,
     209715200, NULL},

    {"hub.endpoint", INF_CFG_STRING, "\"https://huggingface.co\"",
     "Hugging Face Hub endpoint for pull (a mirror; HF_ENDPOINT when this is not set)", 0, 0, NULL},
    {"hub.ollama_endpoint", INF_CFG_STRING, "\"https://registry.ollama.ai\"",
     "Ollama registry endpoint for pull", 0, 0, NULL},
    {"hub.retries", INF_CFG_INT, "5",
     "pull: retries of a file after 5xx, 429, timeouts or dropped connections", 0, 100, NULL},
    {"hub.stall_seconds", INF_CFG_INT, "30",
     "pull: a transfer that receives nothing for this long is retried", 1, 3600, NULL},
    {"log.level", INF_CFG_STRING, "\"info\"", "trace, debug, info, warn, error or off", 0, 0,
     log_levels},
    {"log.format", INF_CFG_STRING, "\"auto\"",
     "pretty, compact, json, or auto (pretty on a terminal, else compact)", 0, 0, log_formats},
};

#define N_KEYS (sizeof(schema) / sizeof(schema[0]))

struct value {
    char *str;   /* STRING, PATH */
    int64_t i;   /* INT */
    double f;    /* FLOAT */
    bool b;      /* BOOL */
    char **list; /* STRING_LIST, NULL-terminated */
    size_t n_list;
};

struct slot {
    struct value v;
    enum inf_config_origin origin;
    char *origin_desc;
};

struct inf_config {
    struct slot slots[N_KEYS];
};

const struct inf_config_key *inf_config_schema(size_t *n)
{
    *n = N_KEYS;
    return schema;
}

static int key_index(const char *name)
{
    for (size_t i = 0; i < N_KEYS; i++)
        if (strcmp(schema[i].name, name) == 0)
            return (int)i;
    return -1;
}

const struct inf_config_key *inf_config_schema_find(const char *name)
{
    int i = key_index(name);
    return i < 0 ? NULL : &schema[i];
}

void inf_config_env_name(const char *key, char *buf, size_t size)
{
    size_t o = 0;
    const char *prefix = "INFERNO_";
    for (const char *p = prefix; *p && o + 1 < size; p++)
        buf[o++] = *p;
    for (const char *p = key; *p && o + 1 < size; p++)
        buf[o++] = (*p == '.') ? '_' : (char)toupper((unsigned char)*p);
    if (size)
        buf[o < size ? o : size - 1] = '\0';
}

static void value_release(struct value *v)
{
    free(v->str);
    if (v->list) {
        for (size_t i = 0; i < v->n_list; i++)
            free(v->list[i]);
        free(v->list);
    }
    memset(v, 0, sizeof(*v));
}

void inf_config_free(struct inf_config *cfg)
{
    if (!cfg)
        return;
    for (size_t i = 0; i < N_KEYS; i++) {
        value_release(&cfg->slots[i].v);
        free(cfg->slots[i].origin_desc);
    }
    free(cfg);
}

/* ~/x -> $HOME/x; $XDG_CACHE_HOME / $XDG_STATE_HOME / $XDG_CONFIG_HOME / $XDG_DATA_HOME with
   their defaults. */
static char *expand_path(const char *s)
{
    static const struct {
        const char *var, *fallback;
    } xdg[] = {
        {"$XDG_CACHE_HOME", "/.cache"},
        {"$XDG_STATE_HOME", "/.local/state"},
        {"$XDG_CONFIG_HOME", "/.config"},
        {"$XDG_DATA_HOME", "/.local/share"},
    };
    const char *home = getenv("HOME");
    char buf[4096];

    if (!home || !*home)
        home = "/";
    for (size_t i = 0; i < sizeof(xdg) / sizeof(xdg[0]); i++) {
        size_t n = strlen(xdg[i].var);
        if (strncmp(s, xdg[i].var, n) == 0 && (s[n] == '/' || s[n] == '\0')) {
            const char *val = getenv(xdg[i].var + 1);
            if (val && val[0] == '/')
                snprintf(buf, sizeof(buf), "%s%s", val, s + n);
            else
                snprintf(buf, sizeof(buf), "%s%s%s", strcmp(home, "/") ? home : "", xdg[i].fallback,
                         s + n);
            return strdup(buf);
        }
    }
    if (s[0] == '~' && (s[1] == '/' || s[1] == '\0')) {
        snprintf(buf, sizeof(buf), "%s%s", strcmp(home, "/") ? home : "", s + 1);
        return strdup(buf);
    }
    return strdup(s);
}

static bool set_origin(struct slot *slot, enum inf_config_origin origin, const char *desc)
{
    char *d = strdup(desc ? desc : "default");
    if (!d)
        return false;
    free(slot->origin_desc);
    slot->origin_desc = d;
    slot->origin = origin;
    return true;
}

static const char *type_name(enum inf_config_type t)
{
    switch (t) {
    case INF_CFG_STRING:
        return "a string";
    case INF_CFG_PATH:
        return "a path string";
    case INF_CFG_INT:
        return "an integer";
    case INF_CFG_BOOL:
        return "a boolean";
    case INF_CFG_FLOAT:
        return "a number";
    case INF_CFG_STRING_LIST:
        return "an array of strings";
    }
    return "?";
}

static inf_status check_choice(const struct inf_config_key *k, const char *s, struct inf_error *err)
{
    if (!k->choices)
        return INF_OK;
    for (size_t i = 0; k->choices[i]; i++)
        if (strcasecmp(k->choices[i], s) == 0)
            return INF_OK;
    char allowed[256] = "";
    for (size_t i = 0; k->choices[i]; i++) {
        strncat(allowed, i ? ", " : "", sizeof(allowed) - strlen(allowed) - 1);
        strncat(allowed, k->choices[i], sizeof(allowed) - strlen(allowed) - 1);
    }
    return inf_error_set(err, INF_ERANGE, "key '%s' must be one of %s, got '%s'", k->name, allowed,
                         s);
}

static inf_status check_range(const struct inf_config_key *k, int64_t v, struct inf_error *err)
{
    if (v < k->min || v > k->max)
        return inf_error_set(err, INF_ERANGE, "key '%s' = %lld is out of range [%lld, %lld]",
                             k->name, (long long)v, (long long)k->min, (long long)k->max);
    return INF_OK;
}

/* Parse text as written in the environment or on the command line into a value. */
static inf_status from_toml(const struct inf_config_key *k, const struct inf_toml_value *tv,
                            struct value *out, struct inf_error *err);

/* A string-list value written as a TOML array on the command line or in the environment. */
static inf_status list_from_toml_text(const struct inf_config_key *k, const char *text,
                                      struct value *out, struct inf_error *err)
{
    const size_t n = strlen(text);
    char *src = malloc(n + 5);
    if (!src)
        return inf_error_set(err, INF_ENOMEM, "out of memory");
    memcpy(src, "v = ", 4);
    memcpy(src + 4, text, n + 1);
    struct inf_toml_table *root = NULL;
    inf_status st = inf_toml_parse(src, n + 4, &root, err);
    free(src);
    if (st != INF_OK) {
        inf_error_prefix(err, "key '%s' (a TOML array of strings)", k->name);
        return st;
    }
    const struct inf_toml_kv *kv = inf_toml_table_find(root, "v", 1);
    st = kv ? from_toml(k, kv->value, out, err)
            : inf_error_set(err, INF_EPARSE, "key '%s': expected an array of strings", k->name);
    inf_toml_free(root);
    return st;
}

static inf_status parse_text(const struct inf_config_key *k, const char *text, struct value *out,
                             struct inf_error *err)
{
    memset(out, 0, sizeof(*out));
    switch (k->type) {
    case INF_CFG_STRING:
    case INF_CFG_PATH: {
        inf_status st = check_choice(k, text, err);
        if (st)
            return st;
        out->str = k->type == INF_CFG_PATH ? expand_path(text) : strdup(text);
        if (k->choices) /* normalise case of enumerated values */
            for (char *p = out->str; p && *p; p++)
                *p = (char)tolower((unsigned char)*p);
        return out->str ? INF_OK : inf_error_set(err, INF_ENOMEM, "out of memory");
    }
    case INF_CFG_INT: {
        char *end;
        errno = 0;
        long long v = strtoll(text, &end, 0);
        while (isspace((unsigned char)*end))
            end++;
        if (errno || end == text || *end)
            return inf_error_set(err, INF_ETYPE, "key '%s' expects an integer, got '%s'", k->name,
                                 text);
        out->i = v;
        return check_range(k, v, err);
    }
    case INF_CFG_FLOAT: {
        char *end;
        errno = 0;
        double v = strtod(text, &end);
        if (errno || end == text || *end || !isfinite(v))
            return inf_error_set(err, INF_ETYPE, "key '%s' expects a number, got '%s'", k->name,
                                 text);
        out->f = v;
        return INF_OK;
    }
    case INF_CFG_BOOL: {
        static const char *const yes[] = {"true", "1", "yes", "on"};
        static const char *const no[] = {"false", "0", "no", "off"};
        for (size_t i = 0; i < 4; i++) {
            if (strcasecmp(text, yes[i]) == 0) {
                out->b = true;
                return INF_OK;
            }
            if (strcasecmp(text, no[i]) == 0) {
                out->b = false;
                return INF_OK;
            }
        }
        return inf_error_set(err, INF_ETYPE, "key '%s' expects a boolean (true/false), got '%s'",
                             k->name, text);
    }
    case INF_CFG_STRING_LIST: {
        /* a TOML array (["a", "b"]) as in the file, else comma-separated values */
        const char *lb = text;
        while (isspace((unsigned char)*lb))
            lb++;
        if (*lb == '[')
            return list_from_toml_text(k, lb, out, err);
        size_t n = 0, cap = 4;
        char **list = calloc(cap + 1, sizeof(*list));
        if (!list)
            return inf_error_set(err, INF_ENOMEM, "out of memory");
        const char *p = text;
        while (*p) {
            const char *comma = strchr(p, ',');
            const char *e = comma ? comma : p + strlen(p);
            const char *b = p;
            while (b < e && isspace((unsigned char)*b))
                b++;
            const char *t = e;
            while (t > b && isspace((unsigned char)t[-1]))
                t--;
            if (t > b) {
                if (n == cap) {
                    char **nl = realloc(list, (cap * 2 + 1) * sizeof(*list));
                    if (!nl)
                        goto oom;
                    list = nl;
                    cap *= 2;
                }
                list[n] = strndup(b, (size_t)(t - b));
                if (!list[n])
                    goto oom;
                list[++n] = NULL;
            }
            p = comma ? comma + 1 : e;
        }
        out->list = list;
        out->n_list = n;
        return INF_OK;
    oom:
        for (size_t i = 0; i < n; i++)
            free(list[i]);
        free(list);
        return inf_error_set(err, INF_ENOMEM, "out of memory");
    }
    }
    return inf_error_set(err, INF_EINTERNAL, "bad schema type");
}

/* Defaults are written as TOML values; strip the quotes or brackets for parse_text. */
static inf_status parse_default(const struct inf_config_key *k, struct value *out,
                                struct inf_error *err)
{
    const char *d = k->default_str;
    char buf[512];
    size_t n = strlen(d);
    /* (a list keeps its brackets: parse_text reads it as a TOML array, quoted items and all) */
    if (n >= 2 && ((d[0] == '"' && d[n - 1] == '"') ||
                   (d[0] == '[' && d[n - 1] == ']' && k->type != INF_CFG_STRING_LIST))) {
        snprintf(buf, sizeof(buf), "%.*s", (int)(n - 2), d + 1);
        d = buf;
    }
    if (k->type == INF_CFG_PATH && d[0] == '\0') {
        memset(out, 0, sizeof(*out));
        out->str = strdup("");
        return out->str ? INF_OK : INF_ENOMEM;
    }
    return parse_text(k, d, out, err);
}

inf_status inf_config_new(struct inf_config **out, struct inf_error *err)
{
    struct inf_config *cfg = calloc(1, sizeof(*cfg));
    inf_status st;

    *out = NULL;
    if (!cfg)
        return inf_error_set(err, INF_ENOMEM, "out of memory");
    for (size_t i = 0; i < N_KEYS; i++) {
        st = parse_default(&schema[i], &cfg->slots[i].v, err);
        if (st) {
            inf_error_prefix(err, "default of '%s'", schema[i].name);
            inf_config_free(cfg);
            return st;
        }
        if (!set_origin(&cfg->slots[i], INF_ORIGIN_DEFAULT, "default")) {
            inf_config_free(cfg);
            return inf_error_set(err, INF_ENOMEM, "out of memory");
        }
    }
    *out = cfg;
    return INF_OK;
}

static void slot_assign(struct slot *s, struct value *v)
{
    value_release(&s->v);
    s->v = *v;
    memset(v, 0, sizeof(*v));
}

inf_status inf_config_set(struct inf_config *cfg, const char *key, const char *text,
                          enum inf_config_origin origin, const char *origin_desc,
                          struct inf_error *err)
{
    int i = key_index(key);
    struct value v;
    inf_status st;

    if (i < 0)
        return inf_error_set(err, INF_ENOTFOUND, "unknown configuration key '%s'", key);
    st = parse_text(&schema[i], text, &v, err);
    if (st)
        return st;
    slot_assign(&cfg->slots[i], &v);
    if (!set_origin(&cfg->slots[i], origin, origin_desc))
        return inf_error_set(err, INF_ENOMEM, "out of memory");
    return INF_OK;
}

/* The nearest schema key to name (edit distance <= 3), for "did you mean". */
static const char *nearest_key(const char *name)
{
    const char *best = NULL;
    size_t best_d = 4;
    for (size_t i = 0; i < N_KEYS; i++) {
        size_t d = inf__edit_distance(name, schema[i].name, true);
        if (d < best_d) {
            best_d = d;
            best = schema[i].name;
        }
    }
    return best;
}

/* Convert one TOML value for key k, or explain the mismatch. */
static inf_status from_toml(const struct inf_config_key *k, const struct inf_toml_value *tv,
                            struct value *out, struct inf_error *err)
{
    memset(out, 0, sizeof(*out));
    switch (k->type) {
    case INF_CFG_STRING:
    case INF_CFG_PATH:
        if (tv->type != INF_TOML_STRING)
            break;
        if (memchr(tv->u.str.ptr, '\0', tv->u.str.len))
            return inf_error_set(err, INF_ETYPE, "key '%s' must not contain NUL characters",
                                 k->name);
        return parse_text(k, tv->u.str.ptr, out, err);
    case INF_CFG_INT:
        if (tv->type != INF_TOML_INTEGER)
            break;
        out->i = tv->u.integer;
        return check_range(k, tv->u.integer, err);
    case INF_CFG_FLOAT:
        if (tv->type == INF_TOML_INTEGER)
            out->f = (double)tv->u.integer;
        else if (tv->type == INF_TOML_FLOAT && isfinite(tv->u.flt))
            out->f = tv->u.flt;
        else
            break;
        return INF_OK;
    case INF_CFG_BOOL:
        if (tv->type != INF_TOML_BOOL)
            break;
        out->b = tv->u.boolean;
        return INF_OK;
    case INF_CFG_STRING_LIST: {
        if (tv->type != INF_TOML_ARRAY)
            break;
        size_t n = tv->u.arr.n;
        for (size_t j = 0; j < n; j++)
            if (tv->u.arr.items[j]->type != INF_TOML_STRING)
                return inf_error_set(err, INF_ETYPE,
                                     "key '%s' expects an array of strings, element %zu is %s",
                                     k->name, j + 1, inf_toml_type_name(tv->u.arr.items[j]->type));
        out->list = calloc(n + 1, sizeof(char *));
        if (!out->list)
            return inf_error_set(err, INF_ENOMEM, "out of memory");
        for (size_t j = 0; j < n; j++) {
            out->list[j] = strdup(tv->u.arr.items[j]->u.str.ptr);
            if (!out->list[j]) {
                out->n_list = j;
                value_release(out);
                return inf_error_set(err, INF_ENOMEM, "out of memory");
            }
        }
        out->n_list = n;
        return INF_OK;
    }
    }
    return inf_error_set(err, INF_ETYPE, "key '%s' expects %s, got %s", k->name, type_name(k->type),
                         inf_toml_type_name(tv->type));
}

struct pending {
    struct value v;
    int index;
    uint32_t line;
};

/* Walk one table whose keys are prefixed with prefix ("" or "server."). */
static inf_status walk_table(const struct inf_toml_table *t, const char *prefix, const char *path,
                             struct pending *pend, size_t *n_pend, int *n_warn,
                             struct inf_error *err)
{
    for (size_t i = 0; i < t->n; i++) {
        const struct inf_toml_kv *kv = &t->kvs[i];
        char name[256];
        snprintf(name, sizeof(name), "%s%s", prefix, kv->key);
        int idx = (strlen(kv->key) == kv->key_len) ? key_index(name) : -1;

        if (idx < 0 && prefix[0] == '\0') {
            /* a section: known when any key starts with "name." */
            size_t nl = strlen(name);
            bool known = false;
            for (size_t j = 0; j < N_KEYS && !known; j++)
                known = strncmp(schema[j].name, name, nl) == 0 && schema[j].name[nl] == '.';
            if (known && kv->value->type != INF_TOML_TABLE) {
                /* `server = 5` or `[[server]]`: a type error, not an unknown key */
                inf_error_set(err, INF_ETYPE,
                              "'%s' is a section of the configuration and must be a table "
                              "([%s]), got %s",
                              name, name,
                              kv->value->type == INF_TOML_ARRAY
                                  ? "an array of tables or values"
                                  : inf_toml_type_name(kv->value->type));
                inf_error_prefix(err, "%s:%u", path, kv->value->line ? kv->value->line : kv->line);
                return INF_ETYPE;
            }
            if (known) {
                char sub[sizeof(name) + 2];
                snprintf(sub, sizeof(sub), "%s.", name);
                inf_status st =
                    walk_table(kv->value->u.table, sub, path, pend, n_pend, n_warn, err);
                if (st)
                    return st;
                continue;
            }
        }
        if (idx < 0) {
            const char *near = nearest_key(name);
            if (near)
                inf_log(INF_LOG_WARN, "config", "%s:%u: unknown key '%s' (did you mean '%s'?)",
                        path, kv->line, name, near);
            else
                inf_log(INF_LOG_WARN, "config", "%s:%u: unknown key '%s'", path, kv->line, name);
            if (n_warn)
                (*n_warn)++;
            continue;
        }
        struct value v;
        inf_status st = from_toml(&schema[idx], kv->value, &v, err);
        if (st) {
            inf_error_prefix(err, "%s:%u", path, kv->value->line ? kv->value->line : kv->line);
            return st;
        }
        pend[*n_pend].index = idx;
        pend[*n_pend].v = v;
        pend[*n_pend].line = kv->line;
        (*n_pend)++;
    }
    return INF_OK;
}

inf_status inf_config_apply_toml(struct inf_config *cfg, const char *path, const char *text,
                                 size_t len, int *n_warnings, struct inf_error *err)
{
    struct inf_toml_table *root = NULL;
    struct pending pend[N_KEYS * 2];
    size_t n_pend = 0;
    inf_status st;

    st = inf_toml_parse(text, len, &root, err);
    if (st) {
        inf_error_prefix(err, "%s", path);
        return st;
    }
    /* A TOML key is defined once per document, so at most N_KEYS values can be pending. */
    st = walk_table(root, "", path, pend, &n_pend, n_warnings, err);
    if (st) {
        for (size_t i = 0; i < n_pend; i++)
            value_release(&pend[i].v);
        inf_toml_free(root);
        return st;
    }
    /* Everything validated: apply, so a bad file never leaves a half-applied configuration. */
    for (size_t i = 0; i < n_pend; i++) {
        char desc[1200];
        struct slot *s = &cfg->slots[pend[i].index];
        snprintf(desc, sizeof(desc), "%s:%u", path, pend[i].line);
        slot_assign(s, &pend[i].v);
        if (!set_origin(s, INF_ORIGIN_FILE, desc))
            st = inf_error_set(err, INF_ENOMEM, "out of memory");
    }
    inf_toml_free(root);
    return st;
}

#define CONFIG_FILE_MAX (16u << 20)

inf_status inf_config_apply_file(struct inf_config *cfg, const char *path, int *n_warnings,
                                 struct inf_error *err)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t len = 0;
    inf_status st;

    if (!f)
        return inf_error_set(err, errno == ENOENT ? INF_ENOTFOUND : INF_EIO, "cannot open '%s': %s",
                             path, strerror(errno));
    struct stat sb;
    if (fstat(fileno(f), &sb) == 0 && S_ISDIR(sb.st_mode)) {
        fclose(f);
        return inf_error_set(err, INF_EIO, "'%s' is a directory, not a configuration file", path);
    }
    buf = malloc(CONFIG_FILE_MAX + 1);
    if (!buf) {
        fclose(f);
        return inf_error_set(err, INF_ENOMEM, "out of memory");
    }
    len = fread(buf, 1, CONFIG_FILE_MAX + 1, f);
    if (ferror(f)) {
        st = inf_error_set(err, INF_EIO, "cannot read '%s': %s", path, strerror(errno));
        goto out;
    }
    if (len > CONFIG_FILE_MAX) {
        st = inf_error_set(err, INF_ELIMIT, "'%s' is larger than %u bytes", path, CONFIG_FILE_MAX);
        goto out;
    }
    st = inf_config_apply_toml(cfg, path, buf, len, n_warnings, err);
out:
    free(buf);
    fclose(f);
    return st;
}

inf_status inf_config_apply_env(struct inf_config *cfg, struct inf_error *err)
{
    for (size_t i = 0; i < N_KEYS; i++) {
        char env[128], desc[160];
        inf_config_env_name(schema[i].name, env, sizeof(env));
        const char *v = getenv(env);
        if (!v)
            continue;
        snprintf(desc, sizeof(desc), "env %s", env);
        inf_status st = inf_config_set(cfg, schema[i].name, v, INF_ORIGIN_ENV, desc, err);
        if (st) {
            inf_error_prefix(err, "environment variable %s", env);
            return st;
        }
    }
    return INF_OK;
}

void inf_config_cascade_files(const char *explicit_path, struct inf_config_files *out)
{
    const char *home = getenv("HOME");
    const char *xdg = getenv("XDG_CONFIG_HOME");

    out->n = 0;
    if (xdg && xdg[0] == '/')
        snprintf(out->paths[out->n++], sizeof(out->paths[0]), "%s/inferno/config.toml", xdg);
    else if (home && *home)
        snprintf(out->paths[out->n++], sizeof(out->paths[0]), "%s/.config/inferno/config.toml",
                 home);
    if (home && *home)
        snprintf(out->paths[out->n++], sizeof(out->paths[0]), "%s/.inferno.toml", home);
    snprintf(out->paths[out->n++], sizeof(out->paths[0]), "./.inferno.toml");
    if (!explicit_path || !*explicit_path)
        explicit_path = getenv("INFERNO_CONFIG");
    if (explicit_path && *explicit_path)
        snprintf(out->paths[out->n++], sizeof(out->paths[0]), "%s", explicit_path);
}

inf_status inf_config_load(struct inf_config **out, const char *explicit_path, int *n_warnings,
                           struct inf_error *err)
{
    struct inf_config *cfg;
    struct inf_config_files files;
    inf_status st;

    *out = NULL;
    st = inf_config_new(&cfg, err);
    if (st)
        return st;
    if (!explicit_path || !*explicit_path)
        explicit_path = getenv("INFERNO_CONFIG");
    inf_config_cascade_files(explicit_path, &files);
    for (size_t i = 0; i < files.n; i++) {
        bool required = explicit_path && *explicit_path && i == files.n - 1;
        st = inf_config_apply_file(cfg, files.paths[i], n_warnings, err);
        if (st == INF_ENOTFOUND && !required)
            continue;
        if (st) {
            inf_config_free(cfg);
            return st;
        }
    }
    st = inf_config_apply_env(cfg, err);
    if (st) {
        inf_config_free(cfg);
        return st;
    }
    *out = cfg;
    return INF_OK;
}

static const struct slot *get_slot(const struct inf_config *cfg, const char *key,
                                   enum inf_config_type t1, enum inf_config_type t2)
{
    int i = key_index(key);
    if (i < 0 || (schema[i].type != t1 && schema[i].type != t2)) {
        fprintf(stderr, "inferno: internal error: configuration key '%s' read as the wrong type\n",
                key);
        abort();
    }
    return &cfg->slots[i];
}

const char *inf_config_get_str(const struct inf_config *cfg, const char *key)
{
    return get_slot(cfg, key, INF_CFG_STRING, INF_CFG_PATH)->v.str;
}

int64_t inf_config_get_int(const struct inf_config *cfg, const char *key)
{
    return get_slot(cfg, key, INF_CFG_INT, INF_CFG_INT)->v.i;
}

bool inf_config_get_bool(const struct inf_config *cfg, const char *key)
{
    return get_slot(cfg, key, INF_CFG_BOOL, INF_CFG_BOOL)->v.b;
}

double inf_config_get_float(const struct inf_config *cfg, const char *key)
{
    return get_slot(cfg, key, INF_CFG_FLOAT, INF_CFG_FLOAT)->v.f;
}

const char *const *inf_config_get_list(const struct inf_config *cfg, const char *key, size_t *n)
{
    const struct slot *s = get_slot(cfg, key, INF_CFG_STRING_LIST, INF_CFG_STRING_LIST);
    static const char *const empty[] = {NULL};
    if (n)
        *n = s->v.n_list;
    return s->v.list ? (const char *const *)s->v.list : empty;
}

/* Append s as a TOML basic string. Returns false when buf is too small. */
static bool put_toml_string(char *buf, size_t size, size_t *o, const char *s)
{
    char tmp[8];
    if (*o + 1 >= size)
        return false;
    buf[(*o)++] = '"';
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        const char *esc = inf__escape_json_byte(*p, tmp); /* TOML's escapes are JSON's */
        if (esc) {
            size_t l = strlen(esc);
            if (*o + l + 1 >= size)
                return false;
            memcpy(buf + *o, esc, l);
            *o += l;
        } else {
            if (*o + 2 >= size)
                return false;
            buf[(*o)++] = (char)*p;
        }
    }
    if (*o + 2 > size)
        return false;
    buf[(*o)++] = '"';
    buf[*o] = '\0';
    return true;
}

inf_status inf_config_format_value(const struct inf_config *cfg, const char *key, char *buf,
                                   size_t size)
{
    int i = key_index(key);
    size_t o = 0;
    if (i < 0)
        return INF_ENOTFOUND;
    if (size == 0)
        return INF_ELIMIT;
    const struct value *v = &cfg->slots[i].v;
    buf[0] = '\0';
    switch (schema[i].type) {
    case INF_CFG_STRING:
    case INF_CFG_PATH:
        return put_toml_string(buf, size, &o, v->str) ? INF_OK : INF_ELIMIT;
    case INF_CFG_INT:
        return (size_t)snprintf(buf, size, "%lld", (long long)v->i) < size ? INF_OK : INF_ELIMIT;
    case INF_CFG_FLOAT:
        return (size_t)snprintf(buf, size, "%.17g", v->f) < size ? INF_OK : INF_ELIMIT;
    case INF_CFG_BOOL:
        return (size_t)snprintf(buf, size, "%s", v->b ? "true" : "false") < size ? INF_OK
                                                                                 : INF_ELIMIT;
    case INF_CFG_STRING_LIST:
        if (size < 3)
            return INF_ELIMIT;
        buf[o++] = '[';
        for (size_t j = 0; j < v->n_list; j++) {
            if (j) {
                if (o + 3 >= size)
                    return INF_ELIMIT;
                buf[o++] = ',';
                buf[o++] = ' ';
            }
            if (!put_toml_string(buf, size, &o, v->list[j]))
                return INF_ELIMIT;
        }
        if (o + 2 > size)
            return INF_ELIMIT;
        buf[o++] = ']';
        buf[o] = '\0';
        return INF_OK;
    }
    return INF_EINTERNAL;
}

const char *inf_config_origin_desc(const struct inf_config *cfg, const char *key)
{
    int i = key_index(key);
    return i < 0 ? NULL : cfg->slots[i].origin_desc;
}

enum inf_config_origin inf_config_origin_kind(const struct inf_config *cfg, const char *key)
{
    int i = key_index(key);
    return i < 0 ? INF_ORIGIN_DEFAULT : cfg->slots[i].origin;
}
