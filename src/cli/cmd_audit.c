/*
 * cmd_audit.c - `inferno audit verify | query | export | tail` over the audit log in audit.dir
 * (inferno/audit.h), and the records of state-changing commands (inf_cli_audit_command, called
 * by main.c after such a command ran).
 */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "inferno/audit.h"

#define MAX_KEYS 16

const struct inf_cli_opt inf_cmd_audit_opts[] = {
    {"key-file", 'k', INF_OPT_LIST, "FILE",
     "audit key (repeatable: older keys for rotated logs); default audit.key_file or "
     "INFERNO_AUDIT_KEY",
     NULL},
    {"dir", 0, INF_OPT_VALUE, "DIR", "the audit directory", "audit.dir"},
    {"since", 0, INF_OPT_VALUE, "T",
     "query/export: records at or after T (2026-12-06T10:00:00Z, 2026-12-06, Unix seconds, or "
     "an age: 30m, 2h, 7d)",
     NULL},
    {"until", 0, INF_OPT_VALUE, "T", "query/export: records before T", NULL},
    {"key-id", 0, INF_OPT_VALUE, "K", "query/export: requests made with API key id K", NULL},
    {"route", 0, INF_OPT_VALUE, "R", "query/export: requests to route R (/v1/chat/completions)",
     NULL},
    {"status", 0, INF_OPT_VALUE, "S", "query/export: HTTP status S (or 2xx, 4xx, 5xx)", NULL},
    {"json", 0, INF_OPT_FLAG, NULL, "query/verify: print JSON", NULL},
    {"format", 0, INF_OPT_VALUE, "F", "export: jsonl (default) or csv", NULL},
    {"follow", 'f', INF_OPT_FLAG, NULL, "tail: wait for new records", NULL},
    {"lines", 'n', INF_OPT_VALUE, "N", "tail: records shown first (default 10)", NULL},
    {NULL, 0, 0, NULL, NULL, NULL},
};

/* ---- keys --------------------------------------------------------------------------------------
 */

/* The keys to read with: --key-file (repeatable), else audit.key_file, else INFERNO_AUDIT_KEY.
   Returns the count, or -1 after printing the error. */
static int load_keys(struct inf_cli *cli, struct inf_cli_args *args, struct inf_audit_key *keys)
{
    struct inf_error err = {0};
    int n_files = 0;
    const char *const *files = args ? inf_cli_values(args, "key-file", &n_files) : NULL;
    int n = 0;
    for (int i = 0; i < n_files && n < MAX_KEYS; i++) {
        if (inf_audit_key_from_file(files[i], &keys[n], &err)) {
            inf_cli_errorf(cli, "%s", inf_error_message(&err));
            return -1;
        }
        n++;
    }
    if (n)
        return n;
    const char *kf = inf_config_get_str(cli->config, "audit.key_file");
    if (kf && *kf) {
        if (inf_audit_key_from_file(kf, &keys[0], &err)) {
            inf_cli_errorf(cli, "%s", inf_error_message(&err));
            return -1;
        }
        return 1;
    }
    const char *env = getenv("INFERNO_AUDIT_KEY");
    if (env && *env) {
        if (inf_audit_key_from_text(env, strlen(env), &keys[0], &err)) {
            inf_cli_errorf(cli, "INFERNO_AUDIT_KEY: %s", inf_error_message(&err));
            return -1;
        }
        return 1;
    }
    return 0;
}

int inf_cli_audit_open(struct inf_cli *cli, struct inf_audit **out)
{
    struct inf_audit_key key;
    int nk = load_keys(cli, NULL, &key);
    if (nk < 0)
        return INF_EXIT_FAIL;
    struct inf_audit_params p = {0};
    p.dir = inf_config_get_str(cli->config, "audit.dir");
    p.key = nk ? &key : NULL;
    const char *fs = inf_config_get_str(cli->config, "audit.fsync");
    p.fsync = strcmp(fs, "always") == 0  ? INF_AUDIT_FSYNC_ALWAYS
              : strcmp(fs, "never") == 0 ? INF_AUDIT_FSYNC_NEVER
                                         : INF_AUDIT_FSYNC_BATCH;
    p.batch_ms = (int)inf_config_get_int(cli->config, "audit.batch_ms");
    p.max_file_bytes = (uint64_t)inf_config_get_int(cli->config, "audit.max_file_bytes");
    struct inf_error err = {0};
    inf_status st = inf_audit_open(&p, out, &err);
    memset(&key, 0, sizeof(key));
    if (st) {
        inf_cli_errorf(cli, "audit log: %s", inf_error_message(&err));
        return INF_EXIT_FAIL;
    }
    return INF_EXIT_OK;
}

static void iso_now(char *out, size_t n)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char b[24];
    strftime(b, sizeof(b), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, n, "%.19s.%03dZ", b, (int)(ts.tv_nsec / 1000000) % 1000);
}

int inf_cli_audit_command(struct inf_cli *cli, const char *command, int argc, char **argv, int rc)
{
    if (!inf_config_get_bool(cli->config, "audit.enabled"))
        return rc;
    struct inf_audit *a = NULL;
    if (inf_cli_audit_open(cli, &a) != INF_EXIT_OK)
        return inf_config_get_bool(cli->config, "audit.required") && rc == 0 ? INF_EXIT_FAIL : rc;
    char ts[40];
    iso_now(ts, sizeof(ts));
    json_t *o = json_object();
    json_object_set_new(o, "type", json_string("command"));
    json_object_set_new(o, "ts", json_string(ts));
    json_object_set_new(o, "command", json_string(command));
    json_t *av = json_array();
    /* secrets given as options (pull --token) are not recorded: their values are redacted */
    static const char *const secret[] = {"--token", "--api-key"};
    for (int i = 0; i < argc; i++) {
        const char *v = argv[i];
        bool redact = false, inline_value = false;
        for (size_t k = 0; k < sizeof(secret) / sizeof(secret[0]); k++) {
            size_t n = strlen(secret[k]);
            if (strncmp(v, secret[k], n) == 0 && v[n] == '=')
                inline_value = true;
            if (i > 0 && strcmp(argv[i - 1], secret[k]) == 0)
                redact = true;
        }
        if (inline_value) {
            char b[64];
            snprintf(b, sizeof(b), "%.*s=[redacted]", (int)(strchr(v, '=') - v), v);
            json_array_append_new(av, json_string(b));
        } else {
            json_array_append_new(av, json_string(redact ? "[redacted]" : v));
        }
    }
    json_object_set_new(o, "args", av);
    json_object_set_new(o, "exit", json_integer(rc));
    const char *user = getenv("USER");
    json_object_set_new(o, "user", json_string(user ? user : ""));
    json_object_set_new(o, "uid", json_integer((json_int_t)getuid()));
    json_object_set_new(o, "pid", json_integer((json_int_t)getpid()));
    char *text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    struct inf_error err = {0};
    inf_status st = text ? inf_audit_append(a, text, strlen(text), &err)
                         : inf_error_set(&err, INF_ENOMEM, "out of memory");
    free(text);
    inf_audit_close(a);
    if (st) {
        inf_cli_errorf(cli, "audit record not written: %s", inf_error_message(&err));
        if (inf_config_get_bool(cli->config, "audit.required") && rc == 0)
            return INF_EXIT_FAIL;
    }
    return rc;
}

/* ---- time ----------------------------------------------------------------------------------- */

/* T -> Unix seconds: ISO 8601 UTC (date, or date and time, fraction and Z optional), Unix
   seconds, or an age before now (30s, 15m, 2h, 7d). */
static bool parse_time(const char *s, double *out)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (end != s && errno == 0) {
        double mul = 0;
        if (*end == '\0' && !strchr(s, '-'))
            mul = -1;
        else if (strcmp(end, "s") == 0)
            mul = 1;
        else if (strcmp(end, "m") == 0)
            mul = 60;
        else if (strcmp(end, "h") == 0)
            mul = 3600;
        else if (strcmp(end, "d") == 0)
            mul = 86400;
        if (mul < 0) {
            *out = v;
            return true;
        }
        if (mul > 0 && v >= 0) {
            *out = (double)time(NULL) - v * mul;
            return true;
        }
    }
    struct tm tm = {0};
    int y, mo, d, h = 0, mi = 0;
    double sec = 0;
    int k = sscanf(s, "%4d-%2d-%2dT%2d:%2d:%lf", &y, &mo, &d, &h, &mi, &sec);
    if (k != 3 && k < 5)
        return false;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec < 0 || sec >= 61)
        return false;
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    *out = (double)timegm(&tm) + sec;
    return true;
}

/* ---- reading -------------------------------------------------------------------------------- */

struct filter {
    bool has_since, has_until;
    double since, until;
    const char *key_id, *route, *status;
};

static bool matches(const struct filter *f, json_t *rec)
{
    if (f->has_since || f->has_until) {
        json_t *ts = json_object_get(rec, "ts");
        double t;
        if (!json_is_string(ts) || !parse_time(json_string_value(ts), &t))
            return false;
        if ((f->has_since && t < f->since) || (f->has_until && t >= f->until))
            return false;
    }
    if (f->key_id) {
        json_t *k = json_object_get(rec, "key_id");
        if (!json_is_string(k) || strcmp(json_string_value(k), f->key_id) != 0)
            return false;
    }
    if (f->route) {
        json_t *r = json_object_get(rec, "route");
        if (!json_is_string(r) || strcmp(json_string_value(r), f->route) != 0)
            return false;
    }
    if (f->status) {
        json_t *s = json_object_get(rec, "status");
        if (!json_is_integer(s))
            return false;
        long long v = json_integer_value(s);
        size_t l = strlen(f->status);
        if (l == 3 && f->status[1] == 'x' && f->status[2] == 'x') {
            if (v / 100 != f->status[0] - '0')
                return false;
        } else if (v != strtoll(f->status, NULL, 10)) {
            return false;
        }
    }
    return true;
}

typedef bool (*record_fn)(uint64_t seq, json_t *rec, void *user);

/* Every record of the log in order (decrypted with keys). Stops at the first unreadable one. */
static int each_record(struct inf_cli *cli, const char *dir, const struct inf_audit_key *keys,
                       int nk, record_fn fn, void *user)
{
    char **names = NULL;
    size_t n = 0;
    struct inf_error err = {0};
    if (inf_audit_list_files(dir, &names, &n, &err)) {
        inf_cli_errorf(cli, "%s", inf_error_message(&err));
        return INF_EXIT_FAIL;
    }
    int rc = INF_EXIT_OK;
    char *line = NULL;
    size_t cap = 0;
    bool stop = false;
    for (size_t f = 0; f < n && rc == INF_EXIT_OK && !stop; f++) {
        char path[4400];
        snprintf(path, sizeof(path), "%s/%s", dir, names[f]);
        FILE *fp = fopen(path, "rb");
        if (!fp) {
            inf_cli_errorf(cli, "cannot open '%s': %s", path, strerror(errno));
            rc = INF_EXIT_FAIL;
            break;
        }
        ssize_t got;
        uint64_t ln = 0;
        while (!stop && (got = getline(&line, &cap, fp)) > 0) {
            ln++;
            if (line[got - 1] != '\n')
                break; /* being written */
            struct inf_audit_line al;
            if (inf_audit_parse_line(line, (size_t)got - 1, keys, (size_t)nk, &al, &err)) {
                inf_cli_errorf(cli, "%s:%" PRIu64 ": %s", names[f], ln, inf_error_message(&err));
                rc = INF_EXIT_FAIL;
                break;
            }
            if (!al.decrypted) {
                inf_cli_errorf(cli,
                               "%s:%" PRIu64 ": the record is encrypted (key id %s): give "
                               "its key with --key-file",
                               names[f], ln, al.kid);
                inf_audit_line_release(&al);
                rc = INF_EXIT_FAIL;
                break;
            }
            json_error_t je;
            json_t *rec = json_loadb(al.plain, al.plain_len, 0, &je);
            if (rec && !fn(al.seq, rec, user))
                stop = true;
            json_decref(rec);
            inf_audit_line_release(&al);
        }
        fclose(fp);
    }
    free(line);
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return rc;
}

struct out_ctx {
    const struct filter *f;
    bool json, csv;
    uint64_t n;
};

static void csv_field(const char *s)
{
    bool quote = strpbrk(s, ",\"\n\r") != NULL;
    if (!quote) {
        fputs(s, stdout);
        return;
    }
    putchar('"');
    for (; *s; s++) {
        if (*s == '"')
            putchar('"');
        putchar(*s);
    }
    putchar('"');
}

static const char *const csv_cols[] = {"seq",
                                       "ts",
                                       "type",
                                       "request_id",
                                       "key_id",
                                       "client",
                                       "method",
                                       "route",
                                       "model",
                                       "status",
                                       "latency_ms",
                                       "prompt_tokens",
                                       "completion_tokens",
                                       "cache",
                                       "command",
                                       "exit",
                                       "user"};
#define N_CSV (sizeof(csv_cols) / sizeof(csv_cols[0]))

static const char *str_or(json_t *rec, const char *key, const char *dflt)
{
    const char *v = json_string_value(json_object_get(rec, key));
    return v ? v : dflt;
}

static bool print_record(uint64_t seq, json_t *rec, void *user)
{
    struct out_ctx *o = user;
    if (!matches(o->f, rec))
        return true;
    o->n++;
    if (o->csv) {
        for (size_t i = 0; i < N_CSV; i++) {
            if (i)
                putchar(',');
            if (i == 0) {
                printf("%" PRIu64, seq);
                continue;
            }
            json_t *v = json_object_get(rec, csv_cols[i]);
            if (json_is_string(v)) {
                csv_field(json_string_value(v));
            } else if (v && !json_is_null(v)) {
                char *t = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
                if (t)
                    csv_field(t);
                free(t);
            }
        }
        putchar('\n');
        return true;
    }
    if (o->json) {
        json_t *c = json_deep_copy(rec);
        json_object_set_new(c, "seq", json_integer((json_int_t)seq));
        char *t = json_dumps(c, JSON_COMPACT | JSON_PRESERVE_ORDER);
        json_decref(c);
        if (t)
            printf("%s\n", t);
        free(t);
        return true;
    }
    const char *type = json_string_value(json_object_get(rec, "type"));
    const char *ts = json_string_value(json_object_get(rec, "ts"));
    if (type && strcmp(type, "request") == 0) {
        const char *k = json_string_value(json_object_get(rec, "key_id"));
        const char *m = json_string_value(json_object_get(rec, "model"));
        const char *c = json_string_value(json_object_get(rec, "cache"));
        json_t *pt = json_object_get(rec, "prompt_tokens"),
               *ct = json_object_get(rec, "completion_tokens");
        printf("%6" PRIu64 " %s %-6s %-22s %3lld %8.1f ms %-14s %-16s in=%lld out=%lld %s %s\n",
               seq, ts ? ts : "?", str_or(rec, "method", "-"), str_or(rec, "route", "-"),
               (long long)json_integer_value(json_object_get(rec, "status")),
               json_number_value(json_object_get(rec, "latency_ms")), k ? k : "-", m ? m : "-",
               json_is_integer(pt) ? (long long)json_integer_value(pt) : -1,
               json_is_integer(ct) ? (long long)json_integer_value(ct) : -1, c ? c : "",
               str_or(rec, "request_id", ""));
    } else {
        char *t = json_dumps(rec, JSON_COMPACT | JSON_PRESERVE_ORDER);
        printf("%6" PRIu64 " %s %s\n", seq, ts ? ts : "?", t ? t : "");
        free(t);
    }
    return true;
}

/* ---- tail ------------------------------------------------------------------------------------ */

struct ring {
    uint64_t *seq;
    json_t **rec;
    size_t cap, n, head;
};

static bool ring_add(uint64_t seq, json_t *rec, void *user)
{
    struct ring *r = user;
    if (!r->cap)
        return true;
    size_t at = (r->head + r->n) % r->cap;
    if (r->n == r->cap) {
        json_decref(r->rec[r->head]);
        at = r->head;
        r->head = (r->head + 1) % r->cap;
    } else {
        r->n++;
    }
    r->seq[at] = seq;
    r->rec[at] = json_incref(rec);
    return true;
}

struct follow_ctx {
    struct out_ctx *o;
    uint64_t after;
};

static bool print_after(uint64_t seq, json_t *rec, void *user)
{
    struct follow_ctx *fc = user;
    if (seq > fc->after) {
        print_record(seq, rec, fc->o);
        fc->after = seq;
    }
    return true;
}

static int audit_tail(struct inf_cli *cli, struct inf_cli_args *args, const char *dir,
                      const struct inf_audit_key *keys, int nk, struct out_ctx *o)
{
    long long lines = 10;
    if (inf_cli_has(args, "lines") && !inf_cli_int(cli, args, "lines", 0, 1000000, &lines))
        return INF_EXIT_USAGE;
    struct ring r = {0};
    r.cap = (size_t)lines;
    r.seq = calloc(r.cap + 1, sizeof(*r.seq));
    r.rec = calloc(r.cap + 1, sizeof(*r.rec));
    if (!r.seq || !r.rec) {
        free(r.seq);
        free(r.rec);
        inf_cli_errorf(cli, "out of memory");
        return INF_EXIT_FAIL;
    }
    int rc = each_record(cli, dir, keys, nk, ring_add, &r);
    uint64_t last = 0;
    for (size_t i = 0; i < r.n; i++) {
        size_t at = (r.head + i) % r.cap;
        print_record(r.seq[at], r.rec[at], o);
        last = r.seq[at];
        json_decref(r.rec[at]);
    }
    free(r.seq);
    free(r.rec);
    fflush(stdout);
    if (rc || !inf_cli_has(args, "follow"))
        return rc;
    /* follow: re-read after each change of the directory (new records or a new file) */
    struct follow_ctx fc = {o, last};
    if (!last) { /* nothing shown: start after what is there now */
        struct ring none = {0};
        each_record(cli, dir, keys, nk, ring_add, &none);
    }
    struct stat prev = {0};
    for (;;) {
        char head[4200];
        snprintf(head, sizeof(head), "%s/LOCK", dir);
        struct stat sb;
        /* cheap change test: the newest file's size and the directory's mtime */
        char **names = NULL;
        size_t n = 0;
        struct inf_error err = {0};
        bool changed = false;
        if (inf_audit_list_files(dir, &names, &n, &err) == INF_OK && n) {
            char path[4400];
            snprintf(path, sizeof(path), "%s/%s", dir, names[n - 1]);
            if (stat(path, &sb) == 0 && (sb.st_size != prev.st_size || sb.st_ino != prev.st_ino)) {
                changed = true;
                prev = sb;
            }
        }
        for (size_t i = 0; i < n; i++)
            free(names[i]);
        free(names);
        if (changed) {
            if (each_record(cli, dir, keys, nk, print_after, &fc))
                return INF_EXIT_FAIL;
            fflush(stdout);
        }
        usleep(200 * 1000);
    }
}

/* ---- the command ---------------------------------------------------------------------------- */

int inf_cmd_audit(struct inf_cli *cli, struct inf_cli_args *args)
{
    const char *sub = args->positional[0];
    const char *dir = inf_config_get_str(cli->config, "audit.dir");
    struct inf_audit_key keys[MAX_KEYS];
    int nk = load_keys(cli, args, keys);
    if (nk < 0)
        return INF_EXIT_FAIL;
    int rc = INF_EXIT_OK;
    if (strcmp(sub, "verify") == 0) {
        struct inf_audit_verify_report rep;
        struct inf_error err = {0};
        if (inf_audit_verify(dir, keys, (size_t)nk, &rep, &err)) {
            inf_cli_errorf(cli, "%s", inf_error_message(&err));
            rc = INF_EXIT_FAIL;
            goto out;
        }
        if (inf_cli_has(args, "json")) {
            json_t *j =
                json_pack("{s:b,s:I,s:I,s:I,s:I,s:b,s:b}", "ok", rep.ok, "records",
                          (json_int_t)rep.records, "files", (json_int_t)rep.files, "undecrypted",
                          (json_int_t)rep.undecrypted, "head_seq", (json_int_t)rep.head_seq,
                          "head_signed", rep.head_signed, "head_checked", rep.head_checked);
            if (!rep.ok) {
                json_object_set_new(j, "file", json_string(rep.file));
                json_object_set_new(j, "line", json_integer((json_int_t)rep.line));
                json_object_set_new(j, "message", json_string(rep.message));
            }
            char *s = json_dumps(j, JSON_COMPACT);
            json_decref(j);
            printf("%s\n", s ? s : "{}");
            free(s);
        } else if (rep.ok) {
            printf("intact: %" PRIu64 " records in %" PRIu64 " files; sealed head seq %" PRIu64
                   " (%s)%s\n",
                   rep.records, rep.files, rep.head_seq,
                   rep.head_checked  ? "signature checked"
                   : rep.head_signed ? "signed; give the key to check it"
                                     : "unsigned",
                   rep.undecrypted ? "; encrypted contents not checked (no key)" : "");
        } else {
            printf("TAMPERED or damaged: %s:%" PRIu64 ": %s\n", rep.file, rep.line, rep.message);
        }
        rc = rep.ok ? INF_EXIT_OK : INF_EXIT_FAIL;
        goto out;
    }
    struct filter f = {0};
    const char *since = inf_cli_value(args, "since"), *until = inf_cli_value(args, "until");
    if (since && !(f.has_since = parse_time(since, &f.since))) {
        inf_cli_errorf(cli, "--since: cannot read the time '%s'", since);
        rc = INF_EXIT_USAGE;
        goto out;
    }
    if (until && !(f.has_until = parse_time(until, &f.until))) {
        inf_cli_errorf(cli, "--until: cannot read the time '%s'", until);
        rc = INF_EXIT_USAGE;
        goto out;
    }
    f.key_id = inf_cli_value(args, "key-id");
    f.route = inf_cli_value(args, "route");
    f.status = inf_cli_value(args, "status");
    struct out_ctx o = {.f = &f, .json = inf_cli_has(args, "json")};
    if (strcmp(sub, "query") == 0) {
        rc = each_record(cli, dir, keys, nk, print_record, &o);
    } else if (strcmp(sub, "export") == 0) {
        const char *fmt = inf_cli_value(args, "format");
        if (fmt && strcmp(fmt, "csv") != 0 && strcmp(fmt, "jsonl") != 0) {
            inf_cli_errorf(cli, "--format: jsonl or csv, not '%s'", fmt);
            rc = INF_EXIT_USAGE;
            goto out;
        }
        o.csv = fmt && strcmp(fmt, "csv") == 0;
        o.json = !o.csv;
        if (o.csv) {
            for (size_t i = 0; i < N_CSV; i++)
                printf("%s%s", i ? "," : "", csv_cols[i]);
            putchar('\n');
        }
        rc = each_record(cli, dir, keys, nk, print_record, &o);
    } else if (strcmp(sub, "tail") == 0) {
        rc = audit_tail(cli, args, dir, keys, nk, &o);
    } else {
        inf_cli_errorf(cli, "unknown subcommand '%s' (verify, query, export, tail)", sub);
        rc = INF_EXIT_USAGE;
    }
out:
    memset(keys, 0, sizeof(keys));
    return rc;
}
