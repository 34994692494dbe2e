/*
 * cmd_onnx.c - `inferno onnx`: the ONNX backend from the command line.
 *
 *   inferno onnx info -m MODEL.onnx [--json]
 *   inferno onnx run -m MODEL.onnx --input [NAME=]FILE ... --output-dir DIR [--threads N]
 *       [--format pb|npy]
 *   inferno onnx bench -m MODEL.onnx [--input [NAME=]FILE ...] [--threads N] [--reps R] [--json]
 *   inferno onnx test DIR... [--rtol X] [--atol X] [--threads N] [--json]
 *
 * run: FILE is a serialized TensorProto (.pb) or a NumPy .npy; without NAME= the files fill
 * the graph inputs that are not initializers, in order. Every graph output i is written to
 * DIR/output_<i>.pb (or .npy). bench: one warm-up run, then R timed runs; prints one JSON
 * object (median_ms, min_ms, mean_ms, ...); inputs not given are random (uniform [0, 1) for
 * floats, 0 for integers) of the declared shape, symbolic dims taken as 1. test: each DIR is an
 * ONNX test directory (model.onnx + test_data_set_N/input_<i>.pb, output_<i>.pb); prints
 * "PASS DIR" or "FAIL DIR: why" per directory (JSON lines with --json) and a summary on stderr;
 * exit 0 when every directory passed, 1 otherwise.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "core/clock.h"
#include "core/escape.h"
#include "inferno/onnx.h"
#include "inferno/threadpool.h"

const struct inf_cli_opt inf_cmd_onnx_opts[] = {
    {"model", 'm', INF_OPT_VALUE, "MODEL", "the .onnx file (info, run, bench)", NULL},
    {"input", 'i', INF_OPT_LIST, "[NAME=]FILE", "run/bench: an input tensor (.pb or .npy)", NULL},
    {"output-dir", 'o', INF_OPT_VALUE, "DIR", "run: where output_<i>.pb/.npy go", NULL},
    {"format", 0, INF_OPT_VALUE, "FMT", "run: pb (default) or npy", NULL},
    {"threads", 't', INF_OPT_VALUE, "N", "threads (default: physical cores)", NULL},
    {"reps", 'r', INF_OPT_VALUE, "R", "bench: timed runs (default 10)", NULL},
    {"json", 0, INF_OPT_FLAG, NULL, "info/test: JSON output (bench always prints JSON)", NULL},
    {"rtol", 0, INF_OPT_VALUE, "X", "test: relative tolerance (default 1e-3)", NULL},
    {"atol", 0, INF_OPT_VALUE, "X", "test: absolute tolerance (default 1e-7)", NULL},
    {NULL, 0, 0, NULL, NULL, NULL},
};

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

static void print_shape(FILE *f, const struct inf_onnx_value_info *v, bool json)
{
    fputc('[', f);
    for (int i = 0; i < v->ndim; i++) {
        if (i)
            fputs(json ? ", " : ",", f);
        if (v->dim_param[i]) {
            if (json)
                json_str(f, v->dim_param[i]);
            else
                fputs(v->dim_param[i], f);
        } else if (v->dims[i] < 0)
            fputs(json ? "null" : "?", f);
        else
            fprintf(f, "%" PRId64, v->dims[i]);
    }
    fputc(']', f);
}

static struct inf_threadpool *make_pool(struct inf_cli *cli, struct inf_cli_args *args, int *rc)
{
    long long n = 0;
    *rc = 0;
    if (inf_cli_has(args, "threads") &&
        !inf_cli_int(cli, args, "threads", 1, INF_THREADS_MAX, &n)) {
        *rc = INF_EXIT_USAGE;
        return NULL;
    }
    struct inf_threadpool_params p;
    inf_threadpool_params_init(&p);
    p.n_threads = (int)n;
    if (n == 1)
        return NULL;
    struct inf_threadpool *pool = NULL;
    struct inf_error err = {0};
    if (inf_threadpool_new(&p, &pool, &err)) {
        inf_cli_errorf(cli, "%s", err.msg);
        *rc = INF_EXIT_FAIL;
    }
    return pool;
}

static struct inf_onnx_model *load(struct inf_cli *cli, struct inf_cli_args *args)
{
    const char *path = inf_cli_value(args, "model");
    if (!path) {
        inf_cli_errorf(cli, "-m MODEL.onnx is required");
        return NULL;
    }
    struct inf_onnx_model *m = NULL;
    struct inf_error err = {0};
    if (inf_onnx_load_file(path, NULL, &m, &err)) {
        inf_cli_errorf(cli, "%s", err.msg);
        return NULL;
    }
    return m;
}

/* ---- info ---- */

struct hist_ctx {
    FILE *f;
    bool json, first;
};

static void hist_cb(void *ctx, const char *op, int count)
{
    struct hist_ctx *h = ctx;
    if (h->json) {
        fputs(h->first ? "" : ", ", h->f);
        json_str(h->f, op);
        fprintf(h->f, ": %d", count);
    } else {
        fprintf(h->f, "  %-24s %d\n", op, count);
    }
    h->first = false;
}

static int cmd_info(struct inf_cli *cli, struct inf_cli_args *args)
{
    struct inf_onnx_model *m = load(cli, args);
    if (!m)
        return INF_EXIT_FAIL;
    struct inf_onnx_model_info mi;
    inf_onnx_get_info(m, &mi);
    bool json = inf_cli_has(args, "json");
    FILE *f = stdout;
    if (json) {
        fprintf(f, "{\"ir_version\": %" PRId64 ", \"opset\": %" PRId64 ", \"producer\": ",
                mi.ir_version, mi.opset);
        json_str(f, mi.producer_name);
        fputs(", \"producer_version\": ", f);
        json_str(f, mi.producer_version);
        fputs(", \"graph\": ", f);
        json_str(f, mi.graph_name);
        fprintf(f,
                ", \"nodes\": %d, \"nodes_planned\": %d, \"parameters\": %" PRId64
                ", \"initializers\": %d",
                mi.n_nodes, mi.n_nodes_planned, mi.n_parameters, mi.n_initializers);
        for (int io = 0; io < 2; io++) {
            int cnt = io ? inf_onnx_n_outputs(m) : inf_onnx_n_inputs(m);
            fprintf(f, ", \"%s\": [", io ? "outputs" : "inputs");
            for (int i = 0; i < cnt; i++) {
                const struct inf_onnx_value_info *v =
                    io ? inf_onnx_output(m, i) : inf_onnx_input(m, i);
                fputs(i ? ", {\"name\": " : "{\"name\": ", f);
                json_str(f, v->name);
                fputs(", \"type\": ", f);
                json_str(f, inf_onnx_dtype_name(v->dtype));
                fputs(", \"shape\": ", f);
                if (v->ndim < 0)
                    fputs("null", f);
                else
                    print_shape(f, v, true);
                fputc('}', f);
            }
            fputc(']', f);
        }
        fputs(", \"ops\": {", f);
        struct hist_ctx h = {f, true, true};
        inf_onnx_op_histogram(m, hist_cb, &h);
        fputs("}}\n", f);
    } else {
        fprintf(f, "ONNX IR %" PRId64 ", opset %" PRId64 ", producer %s %s, graph '%s'\n",
                mi.ir_version, mi.opset, mi.producer_name, mi.producer_version, mi.graph_name);
        fprintf(f,
                "nodes: %d (%d after folding and fusion), parameters: %" PRId64
                " in %d initializers\n",
                mi.n_nodes, mi.n_nodes_planned, mi.n_parameters, mi.n_initializers);
        for (int io = 0; io < 2; io++) {
            int cnt = io ? inf_onnx_n_outputs(m) : inf_onnx_n_inputs(m);
            fprintf(f, "%s:\n", io ? "outputs" : "inputs");
            for (int i = 0; i < cnt; i++) {
                const struct inf_onnx_value_info *v =
                    io ? inf_onnx_output(m, i) : inf_onnx_input(m, i);
                fprintf(f, "  %s: %s", v->name, inf_onnx_dtype_name(v->dtype));
                if (v->ndim >= 0)
                    print_shape(f, v, false);
                fputc('\n', f);
            }
        }
        fprintf(f, "ops:\n");
        struct hist_ctx h = {f, false, true};
        inf_onnx_op_histogram(m, hist_cb, &h);
    }
    inf_onnx_free(m);
    return INF_EXIT_OK;
}

/* ---- inputs ---- */

/* Fill ins (n_inputs entries) from --input values; missing ones stay zeroed (dtype 0). */
static int read_inputs(struct inf_cli *cli, struct inf_cli_args *args,
                       const struct inf_onnx_model *m, struct inf_onnx_tensor *ins)
{
    int nv, next = 0, ni = inf_onnx_n_inputs(m);
    const char *const *vals = inf_cli_values(args, "input", &nv);
    for (int k = 0; k < nv; k++) {
        const char *v = vals[k], *eq = strchr(v, '='), *file = v;
        int slot = -1;
        if (eq) {
            for (int i = 0; i < ni; i++)
                if (strlen(inf_onnx_input(m, i)->name) == (size_t)(eq - v) &&
                    !strncmp(inf_onnx_input(m, i)->name, v, (size_t)(eq - v)))
                    slot = i;
            if (slot < 0) {
                struct stat st;
                if (stat(v, &st)) {
                    inf_cli_errorf(cli, "the model has no input '%.*s'", (int)(eq - v), v);
                    return INF_EXIT_USAGE;
                }
                eq = NULL; /* a file name with '=' in it */
            } else {
                file = eq + 1;
            }
        }
        if (slot < 0) {
            while (next < ni && ins[next].dtype)
                next++;
            if (next >= ni) {
                inf_cli_errorf(cli, "more --input files than model inputs (%d)", ni);
                return INF_EXIT_USAGE;
            }
            slot = next;
        }
        struct inf_error err = {0};
        inf_onnx_tensor_release(&ins[slot]);
        if (inf_onnx_tensor_read_file(file, &ins[slot], &err)) {
            inf_cli_errorf(cli, "%s", err.msg);
            return INF_EXIT_FAIL;
        }
    }
    return INF_EXIT_OK;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static float rand01(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)(rng_state >> 40) / (float)(1u << 24);
}

static int random_input(struct inf_cli *cli, const struct inf_onnx_value_info *v,
                        struct inf_onnx_tensor *t)
{
    int64_t dims[INF_ONNX_MAX_DIMS];
    int nd = v->ndim < 0 ? 0 : v->ndim;
    for (int i = 0; i < nd; i++)
        dims[i] = v->dims[i] < 0 || v->dim_param[i] ? 1 : v->dims[i];
    struct inf_error err = {0};
    if (inf_onnx_tensor_alloc(t, v->dtype, nd, dims, 0, &err)) {
        inf_cli_errorf(cli, "input '%s': %s", v->name, err.msg);
        return INF_EXIT_FAIL;
    }
    if (v->dtype == INF_ONNX_FLOAT)
        for (int64_t i = 0; i < t->n; i++)
            ((float *)t->data)[i] = rand01();
    return INF_EXIT_OK;
}

static int write_file(struct inf_cli *cli, const char *path, const uint8_t *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n || fclose(f)) {
        inf_cli_errorf(cli, "cannot write '%s': %s", path, strerror(errno));
        if (f)
            fclose(f);
        return INF_EXIT_FAIL;
    }
    return INF_EXIT_OK;
}

static int cmd_run(struct inf_cli *cli, struct inf_cli_args *args)
{
    const char *dir = inf_cli_value(args, "output-dir");
    const char *fmt = inf_cli_value(args, "format");
    if (!dir) {
        inf_cli_errorf(cli, "--output-dir DIR is required");
        return INF_EXIT_USAGE;
    }
    if (fmt && strcmp(fmt, "pb") && strcmp(fmt, "npy")) {
        inf_cli_errorf(cli, "--format is pb or npy, not '%s'", fmt);
        return INF_EXIT_USAGE;
    }
    bool npy = fmt && !strcmp(fmt, "npy");
    int rc;
    struct inf_threadpool *pool = make_pool(cli, args, &rc);
    if (rc)
        return rc;
    struct inf_onnx_model *m = load(cli, args);
    if (!m) {
        inf_threadpool_free(pool);
        return INF_EXIT_FAIL;
    }
    int ni = inf_onnx_n_inputs(m), no = inf_onnx_n_outputs(m);
    struct inf_onnx_tensor *ins = calloc((size_t)ni + 1, sizeof(*ins)),
                           *outs = calloc((size_t)no + 1, sizeof(*outs));
    rc = ins && outs ? read_inputs(cli, args, m, ins) : INF_EXIT_FAIL;
    for (int i = 0; !rc && i < ni; i++)
        if (!ins[i].dtype) {
            inf_cli_errorf(cli, "no --input for '%s'", inf_onnx_input(m, i)->name);
            rc = INF_EXIT_USAGE;
        }
    struct inf_error err = {0};
    if (!rc && inf_onnx_run(m, pool, ins, outs, &err)) {
        inf_cli_errorf(cli, "%s", err.msg);
        rc = INF_EXIT_FAIL;
    }
    if (!rc && mkdir(dir, 0755) && errno != EEXIST) {
        inf_cli_errorf(cli, "cannot create '%s': %s", dir, strerror(errno));
        rc = INF_EXIT_FAIL;
    }
    for (int i = 0; !rc && i < no; i++) {
        uint8_t *buf = NULL;
        size_t len = 0;
        char path[4096];
        snprintf(path, sizeof(path), "%s/output_%d.%s", dir, i, npy ? "npy" : "pb");
        if ((npy ? inf_onnx_npy_encode(&outs[i], &buf, &len, &err)
                 : inf_onnx_tensor_encode(&outs[i], &buf, &len, &err))) {
            inf_cli_errorf(cli, "output %d: %s", i, err.msg);
            rc = INF_EXIT_FAIL;
        } else {
            rc = write_file(cli, path, buf, len);
        }
        free(buf);
    }
    for (int i = 0; ins && i < ni; i++)
        inf_onnx_tensor_release(&ins[i]);
    for (int i = 0; outs && i < no; i++)
        inf_onnx_tensor_release(&outs[i]);
    free(ins);
    free(outs);
    inf_onnx_free(m);
    inf_threadpool_free(pool);
    return rc;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int cmd_bench(struct inf_cli *cli, struct inf_cli_args *args)
{
    long long reps = 10;
    if (inf_cli_has(args, "reps") && !inf_cli_int(cli, args, "reps", 1, 1000000, &reps))
        return INF_EXIT_USAGE;
    int rc;
    struct inf_threadpool *pool = make_pool(cli, args, &rc);
    if (rc)
        return rc;
    double t0 = inf__now_ms();
    struct inf_onnx_model *m = load(cli, args);
    double load_ms = inf__now_ms() - t0;
    if (!m) {
        inf_threadpool_free(pool);
        return INF_EXIT_FAIL;
    }
    int ni = inf_onnx_n_inputs(m), no = inf_onnx_n_outputs(m);
    struct inf_onnx_tensor *ins = calloc((size_t)ni + 1, sizeof(*ins)),
                           *outs = calloc((size_t)no + 1, sizeof(*outs));
    double *times = calloc((size_t)reps + 1, sizeof(double));
    rc = ins && outs && times ? read_inputs(cli, args, m, ins) : INF_EXIT_FAIL;
    for (int i = 0; !rc && i < ni; i++)
        if (!ins[i].dtype)
            rc = random_input(cli, inf_onnx_input(m, i), &ins[i]);
    struct inf_error err = {0};
    for (long long r = -1; !rc && r < reps; r++) {
        double s = inf__now_ms();
        if (inf_onnx_run(m, pool, ins, outs, &err)) {
            inf_cli_errorf(cli, "%s", err.msg);
            rc = INF_EXIT_FAIL;
            break;
        }
        double e = inf__now_ms() - s;
        if (r >= 0)
            times[r] = e;
        for (int i = 0; i < no; i++)
            inf_onnx_tensor_release(&outs[i]);
    }
    if (!rc) {
        double sum = 0;
        for (long long r = 0; r < reps; r++)
            sum += times[r];
        qsort(times, (size_t)reps, sizeof(double), cmp_double);
        double med = reps % 2 ? times[reps / 2] : (times[reps / 2 - 1] + times[reps / 2]) / 2;
        printf("{\"model\": ");
        json_str(stdout, inf_cli_value(args, "model"));
        printf(", \"threads\": %d, \"reps\": %lld, \"median_ms\": %.4f, \"min_ms\": %.4f, "
               "\"max_ms\": %.4f, \"mean_ms\": %.4f, \"load_ms\": %.2f}\n",
               inf_threadpool_n_threads(pool), reps, med, times[0], times[reps - 1],
               sum / (double)reps, load_ms);
    }
    for (int i = 0; ins && i < ni; i++)
        inf_onnx_tensor_release(&ins[i]);
    free(ins);
    free(outs);
    free(times);
    inf_onnx_free(m);
    inf_threadpool_free(pool);
    return rc;
}

/* ---- test ---- */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Run one test directory; returns true on pass, why says what failed. */
static bool run_test_dir(const char *dir, struct inf_threadpool *pool, double rtol, double atol,
                         char *why, size_t why_size)
{
    char path[4096];
    struct inf_error err = {0};
    struct inf_onnx_model *m = NULL;
    snprintf(path, sizeof(path), "%s/model.onnx", dir);
    if (inf_onnx_load_file(path, NULL, &m, &err)) {
        snprintf(why, why_size, "%s", err.msg);
        return false;
    }
    DIR *d = opendir(dir);
    char *sets[256];
    int n_sets = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (!strncmp(e->d_name, "test_data_set_", 14) && n_sets < 256)
            sets[n_sets++] = strdup(e->d_name);
    if (d)
        closedir(d);
    qsort(sets, (size_t)n_sets, sizeof(char *), cmp_str);
    bool ok = n_sets > 0;
    if (!n_sets)
        snprintf(why, why_size, "no test_data_set_* directory");
    int ni = inf_onnx_n_inputs(m), no = inf_onnx_n_outputs(m);
    for (int s = 0; s < n_sets && ok; s++) {
        struct inf_onnx_tensor ins[64] = {0}, outs[64] = {0}, exp = {0};
        if (ni > 64 || no > 64) {
            snprintf(why, why_size, "too many inputs or outputs");
            ok = false;
            break;
        }
        for (int i = 0; i < ni && ok; i++) {
            snprintf(path, sizeof(path), "%s/%s/input_%d.pb", dir, sets[s], i);
            if (inf_onnx_tensor_read_file(path, &ins[i], &err)) {
                snprintf(why, why_size, "%s", err.msg);
                ok = false;
            } else if (ins[i].dtype == INF_ONNX_UINT16 &&
                       inf_onnx_input(m, i)->dtype == INF_ONNX_BFLOAT16) {
                ins[i].dtype = INF_ONNX_BFLOAT16; /* older test data stores bfloat16 as uint16 */
            }
        }
        if (ok && inf_onnx_run(m, pool, ins, outs, &err)) {
            snprintf(why, why_size, "%s: %s", sets[s], err.msg);
            ok = false;
        }
        for (int i = 0; i < no && ok; i++) {
            snprintf(path, sizeof(path), "%s/%s/output_%d.pb", dir, sets[s], i);
            if (inf_onnx_tensor_read_file(path, &exp, &err)) {
                snprintf(why, why_size, "%s", err.msg);
                ok = false;
                break;
            }
            char w[256];
            if (exp.dtype == INF_ONNX_UINT16 && outs[i].dtype == INF_ONNX_BFLOAT16)
                exp.dtype = INF_ONNX_BFLOAT16; /* as for the inputs */
            if (!inf_onnx_tensor_close(&outs[i], &exp, rtol, atol, w, sizeof(w))) {
                snprintf(why, why_size, "%s output %d ('%s'): %s", sets[s], i,
                         inf_onnx_output(m, i)->name, w);
                ok = false;
            }
            inf_onnx_tensor_release(&exp);
        }
        for (int i = 0; i < ni; i++)
            inf_onnx_tensor_release(&ins[i]);
        for (int i = 0; i < no; i++)
            inf_onnx_tensor_release(&outs[i]);
    }
    for (int s = 0; s < n_sets; s++)
        free(sets[s]);
    inf_onnx_free(m);
    return ok;
}

static int cmd_test(struct inf_cli *cli, struct inf_cli_args *args)
{
    double rtol = 1e-3, atol = 1e-7;
    if (inf_cli_value(args, "rtol"))
        rtol = strtod(inf_cli_value(args, "rtol"), NULL);
    if (inf_cli_value(args, "atol"))
        atol = strtod(inf_cli_value(args, "atol"), NULL);
    if (!(rtol >= 0) || !(atol >= 0)) {
        inf_cli_errorf(cli, "--rtol and --atol must be >= 0");
        return INF_EXIT_USAGE;
    }
    int rc;
    struct inf_threadpool *pool = make_pool(cli, args, &rc);
    if (rc)
        return rc;
    bool json = inf_cli_has(args, "json");
    int passed = 0, failed = 0;
    char **dirs = NULL;
    int n_dirs = 0;
    for (int i = 1; i < args->n_positional; i++) {
        char probe[4096];
        const char *arg = args->positional[i];
        snprintf(probe, sizeof(probe), "%s/model.onnx", arg);
        struct stat st;
        char **more = NULL;
        int n_more = 0;
        if (stat(probe, &st)) {
            DIR *d = opendir(arg);
            struct dirent *e;
            while (d && (e = readdir(d))) {
                snprintf(probe, sizeof(probe), "%s/%s/model.onnx", arg, e->d_name);
                if (e->d_name[0] != '.' && !stat(probe, &st)) {
                    char **q = realloc(more, sizeof(char *) * (size_t)(n_more + 1));
                    if (!q)
                        break;
                    more = q;
                    size_t len = strlen(arg) + strlen(e->d_name) + 2;
                    more[n_more] = malloc(len);
                    if (more[n_more])
                        snprintf(more[n_more++], len, "%s/%s", arg, e->d_name);
                }
            }
            if (d)
                closedir(d);
            qsort(more, (size_t)n_more, sizeof(char *), cmp_str);
        }
        if (!n_more) {
            more = malloc(sizeof(char *));
            if (more && (more[0] = strdup(arg)))
                n_more = 1;
        }
        char **q = realloc(dirs, sizeof(char *) * (size_t)(n_dirs + n_more + 1));
        if (q) {
            dirs = q;
            for (int k = 0; k < n_more; k++)
                dirs[n_dirs++] = more[k];
        } else {
            for (int k = 0; k < n_more; k++)
                free(more[k]);
        }
        free(more);
    }
    for (int i = 0; i < n_dirs; i++) {
        const char *dir = dirs[i];
        char why[640] = "";
        double t0 = inf__now_ms();
        bool ok = run_test_dir(dir, pool, rtol, atol, why, sizeof(why));
        double ms = inf__now_ms() - t0;
        const char *base = strrchr(dir, '/');
        base = base && base[1] ? base + 1 : dir;
        if (json) {
            printf("{\"test\": ");
            json_str(stdout, base);
            printf(", \"dir\": ");
            json_str(stdout, dir);
            printf(", \"pass\": %s, \"ms\": %.2f, \"error\": ", ok ? "true" : "false", ms);
            if (ok)
                printf("null");
            else
                json_str(stdout, why);
            printf("}\n");
        } else if (ok) {
            printf("PASS %s\n", dir);
        } else {
            printf("FAIL %s: %s\n", dir, why);
        }
        fflush(stdout);
        ok ? passed++ : failed++;
    }
    for (int i = 0; i < n_dirs; i++)
        free(dirs[i]);
    free(dirs);
    fprintf(stderr, "%d passed, %d failed\n", passed, failed);
    inf_threadpool_free(pool);
    return failed ? INF_EXIT_FAIL : INF_EXIT_OK;
}

int inf_cmd_onnx(struct inf_cli *cli, struct inf_cli_args *args)
{
    const char *sub = args->n_positional > 0 ? args->positional[0] : "";
    if (!strcmp(sub, "test")) {
        if (args->n_positional < 2) {
            inf_cli_errorf(cli, "test needs at least one DIR");
            return INF_EXIT_USAGE;
        }
        return cmd_test(cli, args);
    }
    if (args->n_positional != 1) {
        inf_cli_errorf(cli, "expected one of info, run, bench, test");
        return INF_EXIT_USAGE;
    }
    if (!strcmp(sub, "info"))
        return cmd_info(cli, args);
    if (!strcmp(sub, "run"))
        return cmd_run(cli, args);
    if (!strcmp(sub, "bench"))
        return cmd_bench(cli, args);
    inf_cli_errorf(cli, "unknown subcommand '%s' (info, run, bench, test)", sub);
    return INF_EXIT_USAGE;
}
