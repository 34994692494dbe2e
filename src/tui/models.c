/*
 * models.c - the Models screen: the models under models_dir (inf_models_scan, with its SQLite
 * cache), a details pane for the selected one (metadata, tensor types, chat template), and the
 * actions validate, quick benchmark, open in chat and delete. Validation and the benchmark run
 * in a worker thread; the screen shows their result when they finish.
 */
#define NCURSES_WIDECHAR 1

#include "inferno/models.h"

#include <curses.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "inferno/gguf.h"
#include "inferno/log.h"
#include "tui/internal.h"

struct type_row {
    uint32_t type;
    uint64_t count, bytes;
};

struct details {
    char path[4096]; /* the model these are for */
    char lines[40][160];
    int n_lines;
    struct type_row types[40];
    int n_types;
    char tmpl[6][160];
    int n_tmpl;
};

struct tui_models {
    struct tui_app *app;
    struct inf_model_list list;
    bool scanned;
    char scan_err[512];
    int sel, top;
    struct details det;
    /* the worker (validate / bench) */
    pthread_t th;
    bool th_running;
    pthread_mutex_t mu;
    bool busy, done;
    char job[32], job_path[4096], result[512];
    bool result_err;
};

static void scan(struct tui_models *m)
{
    const struct inf_tui_options *o = tui_options(m->app);
    struct inf_error err = {0};
    inf_model_list_release(&m->list);
    memset(&m->list, 0, sizeof(m->list));
    m->scan_err[0] = '\0';
    enum inf_log_level lv = inf_log_get_level();
    inf_log_set_level(INF_LOG_ERROR);
    if (!o->models_dir || !*o->models_dir)
        snprintf(m->scan_err, sizeof(m->scan_err), "models_dir is not set");
    else if (inf_models_scan(o->models_dir, o->cache_db, &m->list, &err) != INF_OK)
        snprintf(m->scan_err, sizeof(m->scan_err), "%s", inf_error_message(&err));
    inf_log_set_level(lv);
    m->scanned = true;
    if (m->sel >= (int)m->list.n)
        m->sel = m->list.n ? (int)m->list.n - 1 : 0;
    m->det.path[0] = '\0';
}

struct tui_models *tui_models_new(struct tui_app *a)
{
    struct tui_models *m = calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    m->app = a;
    pthread_mutex_init(&m->mu, NULL);
    scan(m);
    return m;
}

void tui_models_free(struct tui_models *m)
{
    if (!m)
        return;
    if (m->th_running)
        pthread_join(m->th, NULL);
    inf_model_list_release(&m->list);
    pthread_mutex_destroy(&m->mu);
    free(m);
}

/* ---- details ---- */

static void add_line(struct details *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add_line(struct details *d, const char *fmt, ...)
{
    if (d->n_lines >= (int)(sizeof(d->lines) / sizeof(d->lines[0])))
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->lines[d->n_lines++], sizeof(d->lines[0]), fmt, ap);
    va_end(ap);
}

static void kv_line(struct details *d, const struct inf_gguf *g, const char *key, const char *label)
{
    const struct inf_gguf_kv *kv = inf_gguf_find_kv(g, key);
    if (!kv)
        return;
    const struct inf_gguf_value *v = &kv->value;
    if (v->type == INF_GGUF_TYPE_STRING) {
        add_line(d, "%-16s %.*s", label, (int)(v->str.len > 120 ? 120 : v->str.len), v->str.data);
    } else if (v->type == INF_GGUF_TYPE_ARRAY) {
        add_line(d, "%-16s %" PRIu64 " entries", label, v->arr.n);
    } else {
        double f;
        int64_t i;
        if (inf_gguf_value_as_i64(v, &i) == INF_OK)
            add_line(d, "%-16s %" PRId64, label, i);
        else if (inf_gguf_value_as_f64(v, &f) == INF_OK)
            add_line(d, "%-16s %g", label, f);
    }
}

static void load_details(struct tui_models *m, const struct inf_model_summary *s)
{
    struct details *d = &m->det;
    memset(d, 0, sizeof(*d));
    snprintf(d->path, sizeof(d->path), "%s", s->path);
    char size[32];
    tui_human_bytes(s->size_bytes, size, sizeof(size));
    add_line(d, "%-16s %s", "path", s->path);
    add_line(d, "%-16s %s%s", "format", s->format, s->n_shards > 1 ? " (sharded)" : "");
    add_line(d, "%-16s %s in %d file%s", "size", size, s->n_shards, s->n_shards == 1 ? "" : "s");
    if (s->n_params)
        add_line(d, "%-16s %.2f B", "parameters", (double)s->n_params / 1e9);
    if (s->source[0]) /* a pulled (registered) model */
        add_line(d, "%-16s %s", "pulled from", s->source);
    if (s->digest[0])
        add_line(d, "%-16s %.30s...", "digest", s->digest);
    if (strcmp(s->format, "gguf") != 0)
        return;
    struct inf_gguf *g = NULL;
    struct inf_error err = {0};
    if (inf_gguf_open_file(s->path, &g, &err) != INF_OK) {
        add_line(d, "%-16s %s", "error", inf_error_message(&err));
        return;
    }
    const char *arch = NULL;
    inf_gguf_get_str(g, "general.architecture", &arch, NULL, NULL);
    kv_line(d, g, "general.name", "name");
    kv_line(d, g, "general.architecture", "architecture");
    if (s->file_type[0])
        add_line(d, "%-16s %s", "file type", s->file_type);
    if (arch) {
        static const char *keys[][2] = {
            {"context_length", "context"},
            {"embedding_length", "embedding"},
            {"block_count", "layers"},
            {"attention.head_count", "heads"},
            {"attention.head_count_kv", "kv heads"},
            {"expert_count", "experts"},
            {"expert_used_count", "experts used"},
            {"rope.freq_base", "rope base"},
        };
        for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
            char key[128];
            snprintf(key, sizeof(key), "%s.%s", arch, keys[i][0]);
            kv_line(d, g, key, keys[i][1]);
        }
    }
    kv_line(d, g, "tokenizer.ggml.model", "tokenizer");
    kv_line(d, g, "tokenizer.ggml.pre", "pre-tokenizer");
    kv_line(d, g, "tokenizer.ggml.tokens", "vocabulary");
    add_line(d, "%-16s %zu, GGUF v%u", "tensors", inf_gguf_n_tensors(g), inf_gguf_version(g));
    for (size_t i = 0; i < inf_gguf_n_tensors(g); i++) {
        const struct inf_gguf_tensor *t = inf_gguf_tensor_at(g, i);
        int k = 0;
        while (k < d->n_types && d->types[k].type != t->type)
            k++;
        if (k == d->n_types) {
            if (d->n_types == (int)(sizeof(d->types) / sizeof(d->types[0])))
                continue;
            d->types[d->n_types++] = (struct type_row){t->type, 0, 0};
        }
        d->types[k].count++;
        d->types[k].bytes += t->n_bytes;
    }
    /* most bytes first */
    for (int i = 1; i < d->n_types; i++)
        for (int j = i; j > 0 && d->types[j].bytes > d->types[j - 1].bytes; j--) {
            struct type_row t = d->types[j];
            d->types[j] = d->types[j - 1];
            d->types[j - 1] = t;
        }
    const char *tpl = NULL;
    size_t tlen = 0;
    if (inf_gguf_get_str(g, "tokenizer.chat_template", &tpl, &tlen, NULL) == INF_OK) {
        size_t off = 0;
        while (off < tlen && d->n_tmpl < 6) {
            const char *nl = memchr(tpl + off, '\n', tlen - off);
            size_t l = nl ? (size_t)(nl - (tpl + off)) : tlen - off;
            snprintf(d->tmpl[d->n_tmpl++], sizeof(d->tmpl[0]), "%.*s", (int)(l > 150 ? 150 : l),
                     tpl + off);
            off += l + 1;
        }
    }
    inf_gguf_free(g);
}

/* ---- the worker ---- */

static void set_result(struct tui_models *m, bool error, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_result(struct tui_models *m, bool error, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    pthread_mutex_lock(&m->mu);
    vsnprintf(m->result, sizeof(m->result), fmt, ap);
    m->result_err = error;
    m->busy = false;
    m->done = true;
    pthread_mutex_unlock(&m->mu);
    va_end(ap);
}

static void do_validate(struct tui_models *m, const char *path)
{
    struct inf_gguf *g = NULL;
    struct inf_error err = {0};
    if (inf_gguf_open_file(path, &g, &err) != INF_OK) {
        set_result(m, true, "invalid: %s", inf_error_message(&err));
        return;
    }
    if (inf_gguf_check_compute(g, &err) != INF_OK) {
        set_result(m, true, "not runnable: %s", inf_error_message(&err));
        inf_gguf_free(g);
        return;
    }
    size_t bad = 0, skipped = 0;
    if (inf_gguf_check_values(g, NULL, NULL, &bad, &skipped, &err) != INF_OK) {
        set_result(m, true, "values: %s", inf_error_message(&err));
    } else if (bad) {
        set_result(m, true, "%zu non-finite weight values", bad);
    } else {
        struct inf_model *mod = NULL;
        struct inf_model_params mp = tui_options(m->app)->model_params;
        if (inf_model_load(path, &mp, &mod, &err) != INF_OK)
            set_result(m, true, "the engine refuses it: %s", inf_error_message(&err));
        else
            set_result(m, false, "valid: %zu tensors, all values finite%s; the engine loads it",
                       inf_gguf_n_tensors(g), skipped ? " (some types not value-checked)" : "");
        inf_model_free(mod);
    }
    inf_gguf_free(g);
}

static void do_bench(struct tui_models *m, const char *path)
{
    const struct inf_tui_options *o = tui_options(m->app);
    struct inf_model *mod = NULL;
    struct inf_context *ctx = NULL;
    struct inf_error err = {0};
    struct inf_model_params mp = o->model_params;
    if (inf_model_load(path, &mp, &mod, &err) != INF_OK) {
        set_result(m, true, "bench: %s", inf_error_message(&err));
        return;
    }
    struct inf_model_info mi;
    inf_model_get_info(mod, &mi);
    struct inf_context_params cp = o->context_params;
    cp.n_ctx = 256;
    cp.n_seq_max = 1;
    cp.embeddings = inf_model_is_encoder(mod);
    if (cp.n_batch < 64)
        cp.n_batch = 64;
    if (inf_context_new(mod, &cp, &ctx, &err) != INF_OK) {
        set_result(m, true, "bench: %s", inf_error_message(&err));
        inf_model_free(mod);
        return;
    }
    enum { PP = 64, TG = 16 };
    inf_token tok[PP];
    int32_t pos[PP], seq[PP];
    int8_t lg[PP];
    for (int i = 0; i < PP; i++) {
        tok[i] = (inf_token)((i * 7919 + 13) % (mi.n_vocab > 1 ? mi.n_vocab : 1));
        pos[i] = i, seq[i] = 0, lg[i] = i == PP - 1;
    }
    double t0 = tui_now();
    struct inf_batch b = {PP, tok, pos, seq, lg};
    if (inf_decode(ctx, &b, &err) != INF_OK) {
        set_result(m, true, "bench: %s", inf_error_message(&err));
        goto out;
    }
    double t1 = tui_now();
    if (cp.embeddings) {
        set_result(m, false, "pp%d %.1f tok/s (encoder: no generation)", PP, PP / (t1 - t0));
        goto out;
    }
    for (int i = 0; i < TG; i++) {
        inf_token t = inf_argmax(inf_get_logits_ith(ctx, 0), mi.n_vocab);
        int32_t p = PP + i, s = 0;
        int8_t l = 1;
        struct inf_batch g1 = {1, &t, &p, &s, &l};
        if (inf_decode(ctx, &g1, &err) != INF_OK) {
            set_result(m, true, "bench: %s", inf_error_message(&err));
            goto out;
        }
    }
    double t2 = tui_now();
    set_result(m, false, "pp%d %.1f tok/s, tg%d %.1f tok/s (%d threads)", PP, PP / (t1 - t0), TG,
               TG / (t2 - t1), cp.n_threads);
out:
    inf_context_free(ctx);
    inf_model_free(mod);
}

static void *worker(void *arg)
{
    struct tui_models *m = arg;
    if (strcmp(m->job, "validate") == 0)
        do_validate(m, m->job_path);
    else
        do_bench(m, m->job_path);
    return NULL;
}

static void start_job(struct tui_models *m, const char *job, const char *path)
{
    pthread_mutex_lock(&m->mu);
    bool busy = m->busy;
    pthread_mutex_unlock(&m->mu);
    if (busy) {
        tui_flash(m->app, true, "%s is still running", m->job);
        return;
    }
    if (m->th_running)
        pthread_join(m->th, NULL);
    m->th_running = false;
    snprintf(m->job, sizeof(m->job), "%s", job);
    snprintf(m->job_path, sizeof(m->job_path), "%s", path);
    m->busy = true;
    m->done = false;
    m->result[0] = '\0';
    if (pthread_create(&m->th, NULL, worker, m) != 0) {
        m->busy = false;
        tui_flash(m->app, true, "cannot start a thread: %s", strerror(errno));
        return;
    }
    m->th_running = true;
}

/* ---- screen ---- */

static const struct inf_model_summary *selected(const struct tui_models *m)
{
    return m->list.n ? &m->list.items[m->sel] : NULL;
}

void tui_models_draw(struct tui_models *m, int y0, int rows, int cols)
{
    struct tui_app *a = m->app;
    pthread_mutex_lock(&m->mu);
    if (m->done) {
        m->done = false;
        tui_flash(a, m->result_err, "%s: %s", m->job, m->result);
    }
    pthread_mutex_unlock(&m->mu);
    int list_h = rows / 2 - 1;
    if (list_h < 3)
        list_h = 3;
    /* columns: name takes what is left */
    int wa = 12, wq = 10, ws = 10, wc = 8;
    int wn = cols - wa - wq - ws - wc - 5;
    if (wn < 12)
        wn = 12;
    attron(tui_attr(a, ST_ACCENT));
    int x = 1;
    tui_puts(y0, x, "NAME", wn), x += wn + 1;
    tui_puts(y0, x, "ARCH", wa), x += wa + 1;
    tui_puts(y0, x, "QUANT", wq), x += wq + 1;
    tui_puts(y0, x, "SIZE", ws), x += ws + 1;
    tui_puts(y0, x, "CONTEXT", wc);
    attroff(tui_attr(a, ST_ACCENT));
    if (!m->list.n) {
        attron(tui_attr(a, m->scan_err[0] ? ST_ERR : ST_DIM));
        if (m->scan_err[0])
            tui_putf(y0 + 2, 1, cols - 2, "cannot list models: %s", m->scan_err);
        else
            tui_putf(y0 + 2, 1, cols - 2, "no models in %s (r rescans)",
                     tui_options(a)->models_dir ? tui_options(a)->models_dir : "?");
        attroff(tui_attr(a, m->scan_err[0] ? ST_ERR : ST_DIM));
        return;
    }
    if (m->sel < m->top)
        m->top = m->sel;
    if (m->sel >= m->top + list_h)
        m->top = m->sel - list_h + 1;
    for (int r = 0; r < list_h && m->top + r < (int)m->list.n; r++) {
        const struct inf_model_summary *s = &m->list.items[m->top + r];
        bool sel = m->top + r == m->sel;
        if (sel) {
            attron(tui_attr(a, ST_SELECTED));
            tui_clear_row(y0 + 1 + r, 0, cols);
        }
        char size[32], ctx[32];
        tui_human_bytes(s->size_bytes, size, sizeof(size));
        if (s->context_length)
            snprintf(ctx, sizeof(ctx), "%llu", (unsigned long long)s->context_length);
        else
            snprintf(ctx, sizeof(ctx), "-");
        const char *q = s->dominant_type[0] ? s->dominant_type : "-";
        x = 1;
        char name[600];
        if (strcmp(s->format, "gguf") == 0)
            snprintf(name, sizeof(name), "%s", s->name);
        else
            snprintf(name, sizeof(name), "%s (%s)", s->name, s->format);
        tui_put(y0 + 1 + r, x, name, strlen(name), wn), x += wn + 1;
        tui_put(y0 + 1 + r, x, s->architecture[0] ? s->architecture : "-",
                s->architecture[0] ? strlen(s->architecture) : 1, wa),
            x += wa + 1;
        tui_put(y0 + 1 + r, x, q, strlen(q), wq), x += wq + 1;
        tui_put(y0 + 1 + r, x, size, strlen(size), ws), x += ws + 1;
        tui_put(y0 + 1 + r, x, ctx, strlen(ctx), wc);
        if (sel)
            attroff(tui_attr(a, ST_SELECTED));
    }
    /* details */
    const struct inf_model_summary *s = selected(m);
    if (strcmp(m->det.path, s->path) != 0)
        load_details(m, s);
    int dy = y0 + 1 + list_h;
    tui_rule(a, dy, 0, cols, s->name);
    int dh = rows - (dy - y0) - 1;
    int left_w = cols >= 100 ? cols / 2 : cols * 3 / 5;
    for (int i = 0; i < m->det.n_lines && i < dh; i++)
        tui_put(dy + 1 + i, 1, m->det.lines[i], strlen(m->det.lines[i]), left_w - 2);
    int rx = left_w + 1, rw = cols - rx - 1;
    int ry = dy + 1;
    if (m->det.n_types && rw > 16) {
        attron(tui_attr(a, ST_ACCENT));
        tui_puts(ry++, rx, "tensor types", rw);
        attroff(tui_attr(a, ST_ACCENT));
        for (int i = 0; i < m->det.n_types && ry < dy + 1 + dh; i++) {
            char b[32];
            tui_human_bytes(m->det.types[i].bytes, b, sizeof(b));
            tui_putf(ry++, rx, rw, "%-8s %5llu %10s", inf_ggml_type_name(m->det.types[i].type),
                     (unsigned long long)m->det.types[i].count, b);
        }
    }
    if (m->det.n_tmpl && rw > 16 && ry + 2 < dy + 1 + dh) {
        ry++;
        attron(tui_attr(a, ST_ACCENT));
        tui_puts(ry++, rx, "chat template", rw);
        attroff(tui_attr(a, ST_ACCENT));
        attron(tui_attr(a, ST_DIM));
        for (int i = 0; i < m->det.n_tmpl && ry < dy + 1 + dh; i++)
            tui_put(ry++, rx, m->det.tmpl[i], strlen(m->det.tmpl[i]), rw);
        attroff(tui_attr(a, ST_DIM));
    }
}

static void delete_model(struct tui_models *m, const struct inf_model_summary *s)
{
    if (s->n_shards > 1 || strcmp(s->format, "gguf") != 0) {
        /* several files or a directory: refuse rather than guess which files belong to it */
        tui_flash(m->app, true, "delete: only single-file GGUF models can be deleted here (%s)",
                  s->path);
        return;
    }
    if (unlink(s->path) != 0) {
        tui_flash(m->app, true, "cannot delete '%s': %s", s->path, strerror(errno));
        return;
    }
    /* a pulled model's name goes with its file (as `inferno models rm` does) */
    const struct inf_tui_options *o = tui_options(m->app);
    struct inf_error err = {0};
    if (s->source[0] && o->cache_db && *o->cache_db)
        inf_models_unregister(o->cache_db, s->name, &err);
    tui_flash(m->app, false, "deleted %s", s->path);
    scan(m);
}

bool tui_models_key(struct tui_models *m, int key, bool is_char)
{
    int page = LINES / 2 - 2;
    if (!is_char) {
        switch (key) {
        case KEY_UP:
            m->sel--;
            break;
        case KEY_DOWN:
            m->sel++;
            break;
        case KEY_PPAGE:
            m->sel -= page;
            break;
        case KEY_NPAGE:
            m->sel += page;
            break;
        case KEY_HOME:
            m->sel = 0;
            break;
        case KEY_END:
            m->sel = (int)m->list.n - 1;
            break;
        case KEY_ENTER:
            goto open;
        default:
            return false;
        }
        if (m->sel >= (int)m->list.n)
            m->sel = (int)m->list.n - 1;
        if (m->sel < 0)
            m->sel = 0;
        return true;
    }
    if (key == 'k')
        return tui_models_key(m, KEY_UP, false);
    if (key == 'j')
        return tui_models_key(m, KEY_DOWN, false);
    if (key == 'r') {
        scan(m);
        tui_flash(m->app, false, "%zu models", m->list.n);
        return true;
    }
    const struct inf_model_summary *s = selected(m);
    if (!s)
        return false;
    if (key == '\r' || key == 'c')
        goto open;
    if (key == 'v') {
        start_job(m, "validate", s->path);
        tui_flash(m->app, false, "validating %s ...", s->name);
        return true;
    }
    if (key == 'b') {
        start_job(m, "bench", s->path);
        tui_flash(m->app, false, "benchmarking %s ...", s->name);
        return true;
    }
    if (key == 'd') {
        tui_confirm(m->app, "delete", "delete %s from disk?", s->path);
        return true;
    }
    return false;
open:
    if (!selected(m))
        return false;
    tui_chat_open_from_models(m->app, selected(m)->path);
    return true;
}

void tui_models_answer(struct tui_models *m, const char *tag, const char *text)
{
    const struct inf_model_summary *s = selected(m);
    if (strcmp(tag, "delete") == 0 && strcmp(text, "y") == 0 && s)
        delete_model(m, s);
}

void tui_models_status(struct tui_models *m, char *buf, size_t cap)
{
    pthread_mutex_lock(&m->mu);
    bool busy = m->busy;
    pthread_mutex_unlock(&m->mu);
    snprintf(buf, cap, "%zu models in %s%s | Enter chat  v validate  b bench  d delete  r rescan",
             m->list.n, tui_options(m->app)->models_dir ? tui_options(m->app)->models_dir : "?",
             busy ? " | working..." : "");
}
