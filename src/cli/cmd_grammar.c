/*
 * cmd_grammar.c - `inferno grammar`: compile grammars and measure the matcher on real texts.
 *
 *   inferno grammar bench -m MODEL --cases CASES.jsonl [--json] [--timeout-ms N]
 *       [--whitespace N] [--any-order]
 *   inferno grammar compile (--schema FILE | --gbnf FILE | --regex RE) [--whitespace N]
 *
 * bench reads JSON lines {"id": str, "schema": <JSON Schema>, "texts": [str, ...]} (or
 * "grammar": <GBNF text>, or "regex": <str>, instead of "schema") and prints one JSON line per
 * case: {"id", "error": null | str, "ttfm_us": compile time, "results": [{"accepted": bool,
 * "n_tokens": int}, ...], "mask_us": [int, ...]}. Each text is tokenized with the model's
 * tokenizer (no BOS, no special tokens); before each token the mask is computed and the token
 * must be in it, then it is committed (mask_us is the time of the two); after the last token
 * one more mask is computed and the text is accepted when the grammar may end there (an end
 * token is allowed). n_tokens counts the tokens committed. Cases run in a worker process, one
 * at a time under a time limit; a case that crashes or hangs is reported, the worker is
 * replaced and the others go on. A summary
 * (mean and percentiles of mask times, compile times) goes to stderr.
 *
 * compile prints the GBNF a schema or regex compiles to, or the error (exit 1).
 */
#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/files.h"
#include "inferno/grammar.h"
#include "inferno/tokenizer.h"

int inf_cmd_grammar(struct inf_cli *cli, struct inf_cli_args *args);
extern const struct inf_cli_opt inf_cmd_grammar_opts[];

const struct inf_cli_opt inf_cmd_grammar_opts[] = {
    {"model", 'm', INF_OPT_VALUE, "MODEL", "GGUF file whose tokenizer is used (vocab-only is fine)",
     NULL},
    {"cases", 0, INF_OPT_VALUE, "FILE", "bench: the JSON lines of cases (- for stdin)", NULL},
    {"json", 0, INF_OPT_FLAG, NULL, "bench: JSON lines on stdout (the default; kept for scripts)",
     NULL},
    {"timeout-ms", 0, INF_OPT_VALUE, "N", "bench: time limit of one case (default 20000)", NULL},
    {"whitespace", 0, INF_OPT_VALUE, "N",
     "JSON whitespace: 0 the small default bound, -1 none, N at most N bytes", NULL},
    {"any-order", 0, INF_OPT_FLAG, NULL, "JSON objects: properties in any order", NULL},
    {"in-process", 0, INF_OPT_FLAG, NULL,
     "bench: run the cases in this process (for profiling; no crash isolation or time limit)",
     NULL},
    {"schema", 0, INF_OPT_VALUE, "FILE", "compile: a JSON Schema file", NULL},
    {"gbnf", 0, INF_OPT_VALUE, "FILE", "compile: a GBNF file", NULL},
    {"regex", 0, INF_OPT_VALUE, "RE", "compile: a regular expression", NULL},
    {NULL, 0, 0, NULL, NULL, NULL},
};

struct bench {
    struct inf_tokenizer *tok;
    struct inf_grammar_vocab *voc;
    struct inf_json_schema_opts jopts;
    long long timeout_ms;
    bool in_process;
    /* summary, gathered from the children's lines */
    double *mask_us, *ttfm_us;
    size_t n_mask, cap_mask, n_ttfm, cap_ttfm;
    size_t n_cases, n_compiled, n_texts, n_accepted, n_failed;
};

static inf_status compile_case(struct bench *b, json_t *c, struct inf_grammar **g,
                               struct inf_error *err)
{
    json_t *schema = json_object_get(c, "schema"), *gbnf = json_object_get(c, "grammar"),
           *re = json_object_get(c, "regex");
    if (schema) {
        char *text = json_dumps(schema, JSON_COMPACT | JSON_ENCODE_ANY);
        if (!text)
            return inf_error_set(err, INF_ENOMEM, "out of memory");
        inf_status rc = inf_grammar_from_json_schema(text, strlen(text), &b->jopts, g, err);
        free(text);
        return rc;
    }
    if (json_is_string(gbnf))
        return inf_grammar_from_gbnf(json_string_value(gbnf), json_string_length(gbnf), NULL, g,
                                     err);
    if (json_is_string(re))
        return inf_grammar_from_regex(json_string_value(re), json_string_length(re), g, err);
    return inf_error_set(err, INF_EINVAL, "the case has no \"schema\", \"grammar\" or \"regex\"");
}

static bool has_bit(const uint32_t *mask, inf_token t)
{
    return (mask[t >> 5] >> (t & 31)) & 1u;
}

/* Run one case; the result as a JSON object (never NULL unless out of memory). */
static json_t *run_case(struct bench *b, json_t *c)
{
    json_t *out = json_object();
    json_t *id = json_object_get(c, "id");
    json_object_set(out, "id", id ? id : json_null());
    struct inf_error err = {0};
    struct inf_grammar *g = NULL;
    struct inf_matcher *m = NULL;
    uint64_t t0 = inf__now_ns();
    inf_status rc = compile_case(b, c, &g, &err);
    if (rc == INF_OK)
        rc = inf_matcher_new(g, b->voc, &m, &err);
    uint64_t t1 = inf__now_ns();
    json_t *results = json_array(), *masks = json_array();
    if (rc != INF_OK) {
        json_object_set_new(out, "error", json_string(err.msg[0] ? err.msg : inf_strerror(rc)));
        json_object_set_new(out, "ttfm_us", json_integer((json_int_t)((t1 - t0) / 1000)));
        json_object_set_new(out, "results", results);
        json_object_set_new(out, "mask_us", masks);
        inf_grammar_free(g);
        return out;
    }
    json_object_set_new(out, "error", json_null());
    json_object_set_new(out, "ttfm_us", json_integer((json_int_t)((t1 - t0) / 1000)));
    int32_t nv = inf_grammar_vocab_size(b->voc);
    uint32_t *mask = malloc(((size_t)nv + 31) / 32 * sizeof(uint32_t));
    const struct inf_tok_info *info = inf_tok_info(b->tok);
    json_t *texts = json_object_get(c, "texts");
    size_t i;
    json_t *t;
    json_array_foreach(texts, i, t)
    {
        json_t *r = json_object();
        struct inf_tokens ids = {0};
        bool accepted = false;
        size_t n_ok = 0;
        if (json_is_string(t) && mask &&
            inf_tok_encode(b->tok, json_string_value(t), json_string_length(t), 0, &ids, &err) ==
                INF_OK) {
            inf_matcher_reset(m);
            accepted = true;
            for (size_t k = 0; k < ids.n; k++) {
                uint64_t a = inf__now_ns();
                inf_matcher_mask(m, mask);
                bool ok = has_bit(mask, ids.ids[k]) && inf_matcher_accept_token(m, ids.ids[k]);
                json_array_append_new(masks,
                                      json_integer((json_int_t)((inf__now_ns() - a) / 1000)));
                if (!ok) {
                    accepted = false;
                    break;
                }
                n_ok++;
            }
            if (accepted) {
                uint64_t a = inf__now_ns();
                inf_matcher_mask(m, mask);
                json_array_append_new(masks,
                                      json_integer((json_int_t)((inf__now_ns() - a) / 1000)));
                /* the end: an end token allowed (or, without one in the vocabulary, can_end) */
                accepted = info->eos >= 0 && info->eos < nv ? has_bit(mask, info->eos)
                                                            : inf_matcher_can_end(m);
            }
        }
        inf_tokens_release(&ids);
        json_object_set_new(r, "accepted", json_boolean(accepted));
        json_object_set_new(r, "n_tokens", json_integer((json_int_t)n_ok));
        json_array_append_new(results, r);
    }
    free(mask);
    json_object_set_new(out, "results", results);
    json_object_set_new(out, "mask_us", masks);
    inf_matcher_free(m);
    inf_grammar_free(g);
    return out;
}

static void summarize_line(struct bench *b, const char *line)
{
    json_t *o = json_loads(line, 0, NULL);
    if (!o)
        return;
    b->n_cases++;
    if (json_is_null(json_object_get(o, "error"))) {
        b->n_compiled++;
        double v = (double)json_integer_value(json_object_get(o, "ttfm_us"));
        if (inf__grow(&b->ttfm_us, &b->cap_ttfm, b->n_ttfm + 1, sizeof(double), 64))
            b->ttfm_us[b->n_ttfm++] = v;
    } else if (json_string_value(json_object_get(o, "error")) &&
               strstr(json_string_value(json_object_get(o, "error")), "case failed")) {
        b->n_failed++;
    }
    size_t i;
    json_t *x;
    json_array_foreach(json_object_get(o, "results"), i, x)
    {
        b->n_texts++;
        b->n_accepted += json_is_true(json_object_get(x, "accepted"));
    }
    json_array_foreach(json_object_get(o, "mask_us"), i, x)
    {
        if (inf__grow(&b->mask_us, &b->cap_mask, b->n_mask + 1, sizeof(double), 1024))
            b->mask_us[b->n_mask++] = (double)json_integer_value(x);
    }
    json_decref(o);
}

/* The worker: a child process that runs cases one line at a time (requests on in, results on
   out), so that a crash or a hang costs one case and one restart, not the run. */
static void worker_main(struct bench *b, int in, int out)
{
    FILE *f = fdopen(in, "r");
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while (f && (n = getline(&line, &cap, f)) > 0) {
        json_t *c = json_loadb(line, (size_t)n, 0, NULL);
        json_t *r = c ? run_case(b, c) : NULL;
        char *s = r ? json_dumps(r, JSON_COMPACT) : NULL;
        json_decref(c);
        json_decref(r);
        if (!s)
            _exit(1);
        size_t len = strlen(s), off = 0;
        s[len++] = '\n'; /* json_dumps leaves room for the NUL, which this replaces */
        while (off < len) {
            ssize_t w = write(out, s + off, len - off);
            if (w <= 0)
                _exit(1);
            off += (size_t)w;
        }
        free(s);
    }
    _exit(0);
}

struct worker {
    pid_t pid;
    int to, from; /* pipe ends: requests, results */
    char *buf;    /* results read past the current line */
    size_t len, cap;
};

static void worker_stop(struct worker *w)
{
    if (w->pid <= 0)
        return;
    close(w->to);
    close(w->from);
    kill(w->pid, SIGKILL);
    waitpid(w->pid, NULL, 0);
    w->pid = 0;
    w->len = 0;
}

static bool worker_start(struct bench *b, struct worker *w)
{
    int req[2], res[2];
    if (pipe(req) != 0)
        return false;
    if (pipe(res) != 0) {
        close(req[0]);
        close(req[1]);
        return false;
    }
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        close(req[1]);
        close(res[0]);
        worker_main(b, req[0], res[1]);
    }
    close(req[0]);
    close(res[1]);
    if (pid < 0) {
        close(req[1]);
        close(res[0]);
        return false;
    }
    w->pid = pid;
    w->to = req[1];
    w->from = res[0];
    w->len = 0;
    return true;
}

/* Send one case, wait for its line under the time limit; NULL (worker stopped) on failure, with
   why in msg. */
static char *worker_run(struct bench *b, struct worker *w, const char *req, char *msg, size_t size)
{
    size_t n = strlen(req), off = 0;
    signal(SIGPIPE, SIG_IGN);
    while (off < n) {
        ssize_t k = write(w->to, req + off, n - off);
        if (k <= 0)
            break;
        off += (size_t)k;
    }
    if (off < n || write(w->to, "\n", 1) != 1) {
        snprintf(msg, size, "case failed: the worker is gone");
        worker_stop(w);
        return NULL;
    }
    uint64_t deadline = inf__now_ms() + (uint64_t)b->timeout_ms;
    for (;;) {
        char *nl = w->len ? memchr(w->buf, '\n', w->len) : NULL;
        if (nl) {
            size_t ln = (size_t)(nl - w->buf);
            char *line = malloc(ln + 1);
            if (!line)
                break;
            memcpy(line, w->buf, ln);
            line[ln] = '\0';
            memmove(w->buf, nl + 1, w->len - ln - 1);
            w->len -= ln + 1;
            return line;
        }
        uint64_t now = inf__now_ms();
        if (now >= deadline) {
            snprintf(msg, size, "case failed: time limit of %lld ms exceeded", b->timeout_ms);
            worker_stop(w);
            return NULL;
        }
        uint64_t left = deadline - now;
        struct timeval tv = {(time_t)(left / 1000), (suseconds_t)(left % 1000) * 1000};
        fd_set rs;
        FD_ZERO(&rs);
        FD_SET(w->from, &rs);
        int sel = select(w->from + 1, &rs, NULL, NULL, &tv);
        if (sel < 0 && errno == EINTR)
            continue;
        if (sel <= 0)
            continue;
        if (!inf__grow(&w->buf, &w->cap, w->len + 65536, 1, 65536))
            break;
        ssize_t k = read(w->from, w->buf + w->len, 65536);
        if (k <= 0) {
            int status = 0;
            close(w->to);
            close(w->from);
            waitpid(w->pid, &status, 0);
            w->pid = 0;
            w->len = 0;
            if (WIFSIGNALED(status))
                snprintf(msg, size, "case failed: the matcher died (signal %d)", WTERMSIG(status));
            else
                snprintf(msg, size, "case failed: the worker exited (status %d)",
                         WEXITSTATUS(status));
            return NULL;
        }
        w->len += (size_t)k;
    }
    snprintf(msg, size, "case failed: out of memory");
    worker_stop(w);
    return NULL;
}

static void emit(struct bench *b, const char *line)
{
    puts(line);
    summarize_line(b, line);
}

static void bench_case(struct bench *b, struct worker *w, json_t *c)
{
    if (b->in_process) {
        json_t *r = run_case(b, c);
        char *line = r ? json_dumps(r, JSON_COMPACT) : NULL;
        json_decref(r);
        if (line)
            emit(b, line);
        free(line);
        return;
    }
    char msg[160] = "case failed: cannot start a worker process";
    char *req = json_dumps(c, JSON_COMPACT);
    char *line = NULL;
    if (req && (w->pid > 0 || worker_start(b, w)))
        line = worker_run(b, w, req, msg, sizeof(msg));
    free(req);
    if (!line) {
        json_t *id = json_object_get(c, "id");
        json_t *o = json_pack("{s:O, s:s, s:i, s:[], s:[]}", "id", id ? id : json_null(), "error",
                              msg, "ttfm_us", 0, "results", "mask_us");
        line = o ? json_dumps(o, JSON_COMPACT) : NULL;
        json_decref(o);
    }
    if (line)
        emit(b, line);
    free(line);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(const double *v, size_t n, double p)
{
    if (!n)
        return 0;
    size_t i = (size_t)(p * (double)(n - 1) + 0.5);
    return v[i < n ? i : n - 1];
}

static int bench(struct inf_cli *cli, struct inf_cli_args *args, struct bench *b)
{
    const char *cases = inf_cli_value(args, "cases");
    if (!cases) {
        inf_cli_errorf(cli, "bench needs --cases FILE");
        return INF_EXIT_USAGE;
    }
    FILE *f = strcmp(cases, "-") == 0 ? stdin : fopen(cases, "r");
    if (!f) {
        inf_cli_errorf(cli, "cannot open '%s': %s", cases, strerror(errno));
        return INF_EXIT_FAIL;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    size_t lineno = 0;
    int rc = INF_EXIT_OK;
    struct worker w = {0};
    while ((n = getline(&line, &cap, f)) >= 0) {
        lineno++;
        if (n == 0 || line[0] == '\n')
            continue;
        json_error_t je;
        json_t *c = json_loadb(line, (size_t)n, 0, &je);
        if (!json_is_object(c)) {
            inf_cli_errorf(cli, "%s:%zu: not a JSON object: %s", cases, lineno,
                           c ? "another JSON value" : je.text);
            json_decref(c);
            rc = INF_EXIT_FAIL;
            continue;
        }
        bench_case(b, &w, c);
        fflush(stdout);
        json_decref(c);
    }
    free(line);
    worker_stop(&w);
    free(w.buf);
    if (f != stdin)
        fclose(f);
    qsort(b->mask_us, b->n_mask, sizeof(double), cmp_double);
    qsort(b->ttfm_us, b->n_ttfm, sizeof(double), cmp_double);
    double sum = 0;
    for (size_t i = 0; i < b->n_mask; i++)
        sum += b->mask_us[i];
    fprintf(stderr,
            "grammar bench: %zu cases, %zu compiled, %zu failed (crash/time limit); texts %zu, "
            "accepted %zu\n"
            "  mask+commit us: n %zu  mean %.1f  p50 %.0f  p99 %.0f  p99.9 %.0f  max %.0f\n"
            "  compile (ttfm) us: p50 %.0f  p99 %.0f  max %.0f\n",
            b->n_cases, b->n_compiled, b->n_failed, b->n_texts, b->n_accepted, b->n_mask,
            b->n_mask ? sum / (double)b->n_mask : 0.0, pct(b->mask_us, b->n_mask, 0.5),
            pct(b->mask_us, b->n_mask, 0.99), pct(b->mask_us, b->n_mask, 0.999),
            pct(b->mask_us, b->n_mask, 1.0), pct(b->ttfm_us, b->n_ttfm, 0.5),
            pct(b->ttfm_us, b->n_ttfm, 0.99), pct(b->ttfm_us, b->n_ttfm, 1.0));
    return rc;
}

static int compile_only(struct inf_cli *cli, struct inf_cli_args *args, struct bench *b)
{
    const char *sf = inf_cli_value(args, "schema"), *gf = inf_cli_value(args, "gbnf"),
               *re = inf_cli_value(args, "regex");
    if (!!sf + !!gf + !!re != 1) {
        inf_cli_errorf(cli, "compile needs exactly one of --schema FILE, --gbnf FILE, --regex RE");
        return INF_EXIT_USAGE;
    }
    struct inf_grammar *g = NULL;
    struct inf_error err = {0};
    inf_status rc;
    if (re) {
        rc = inf_grammar_from_regex(re, strlen(re), &g, &err);
    } else {
        const char *path = sf ? sf : gf;
        FILE *f = fopen(path, "rb");
        if (!f) {
            inf_cli_errorf(cli, "cannot open '%s': %s", path, strerror(errno));
            return INF_EXIT_FAIL;
        }
        size_t len;
        char *text = inf__read_stream(f, INF_GRAMMAR_MAX_SOURCE, &len);
        fclose(f);
        if (!text) {
            inf_cli_errorf(cli, "cannot read '%s': %s", path,
                           errno == EFBIG ? "larger than the 8 MiB limit" : strerror(errno));
            return INF_EXIT_FAIL;
        }
        rc = sf ? inf_grammar_from_json_schema(text, len, &b->jopts, &g, &err)
                : inf_grammar_from_gbnf(text, len, NULL, &g, &err);
        free(text);
    }
    if (rc != INF_OK) {
        inf_cli_errorf(cli, "%s", err.msg);
        return INF_EXIT_FAIL;
    }
    fputs(inf_grammar_gbnf(g), stdout);
    inf_grammar_free(g);
    return INF_EXIT_OK;
}

int inf_cmd_grammar(struct inf_cli *cli, struct inf_cli_args *args)
{
    struct bench b = {0};
    long long v = 0;
    const char *sub = args->n_positional ? args->positional[0] : "";
    if (inf_cli_has(args, "whitespace")) {
        if (!inf_cli_int(cli, args, "whitespace", -1, 1 << 20, &v))
            return INF_EXIT_USAGE;
        b.jopts.whitespace = (int32_t)v;
    }
    b.jopts.any_order = inf_cli_has(args, "any-order");
    b.in_process = inf_cli_has(args, "in-process");
    b.timeout_ms = 20000;
    if (inf_cli_has(args, "timeout-ms")) {
        if (!inf_cli_int(cli, args, "timeout-ms", 1, 3600000, &v))
            return INF_EXIT_USAGE;
        b.timeout_ms = v;
    }
    if (strcmp(sub, "compile") == 0)
        return compile_only(cli, args, &b);
    if (strcmp(sub, "bench") != 0) {
        inf_cli_errorf(cli, "unknown subcommand '%s' (bench, compile)", sub);
        return INF_EXIT_USAGE;
    }
    const char *model = inf_cli_value(args, "model");
    if (!model) {
        inf_cli_errorf(cli, "bench needs -m MODEL (its tokenizer is used)");
        return INF_EXIT_USAGE;
    }
    struct inf_error err = {0};
    if (inf_tokenizer_load_gguf(model, &b.tok, &err) != INF_OK ||
        inf_grammar_vocab_new(b.tok, &b.voc, &err) != INF_OK) {
        inf_cli_errorf(cli, "%s", err.msg);
        inf_tokenizer_free(b.tok);
        return INF_EXIT_FAIL;
    }
    int rc = bench(cli, args, &b);
    inf_grammar_vocab_free(b.voc);
    inf_tokenizer_free(b.tok);
    free(b.mask_us);
    free(b.ttfm_us);
    return rc;
}
