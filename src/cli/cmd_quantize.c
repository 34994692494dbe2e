/*
 * cmd_quantize.c - `inferno quantize IN.gguf OUT.gguf --type TYPE` and its alias
 * `inferno convert IN OUT --quantize TYPE` (inf_cli_quantize_as_convert; cmd_convert.c).
 * SIGINT/SIGTERM stop the run between slabs; the library then removes its temporary file, so
 * nothing half-written is left behind.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/text.h"
#include "inferno/gguf.h"
#include "inferno/quantize.h"

#define QUANT_OPTS(type_name, type_help)                                                            \
    {type_name, 0, INF_OPT_VALUE, "TYPE", type_help, NULL},                                         \
        {"threads", 't', INF_OPT_VALUE, "N", "threads (default: physical cores)", NULL},            \
        {"force", 0, INF_OPT_FLAG, NULL, "overwrite OUT when it exists", NULL},                     \
        {"dry-run", 0, INF_OPT_FLAG, NULL, "print the plan (name, shape, from, to); write nothing", \
         NULL},                                                                                     \
        {"pure", 0, INF_OPT_FLAG, NULL, "every quantizable tensor gets exactly TYPE", NULL},        \
        {"output-tensor-type", 0, INF_OPT_VALUE, "TYPE", "type of output.weight", NULL},            \
        {"token-embedding-type", 0, INF_OPT_VALUE, "TYPE", "type of token_embd.weight", NULL},      \
        {"quiet", 'q', INF_OPT_FLAG, NULL, "no per-tensor progress", NULL},                         \
    {                                                                                               \
        NULL, 0, 0, NULL, NULL, NULL                                                                \
    }

const struct inf_cli_opt inf_cmd_quantize_opts[] = {
    QUANT_OPTS("type", "Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 Q2_K Q3_K_S/M/L Q4_K_S/M Q5_K_S/M Q6_K F16 BF16 "
                       "F32 (required)")};

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

struct progress {
    bool dry_run, quiet;
};

static void shape_str(char *buf, size_t size, uint32_t n_dims, const int64_t *ne)
{
    size_t len = 0;
    buf[0] = '\0';
    for (uint32_t d = 0; d < n_dims && len < size; d++)
        len += (size_t)snprintf(buf + len, size - len, "%s%lld", d ? " x " : "", (long long)ne[d]);
}

static void on_progress(void *arg, const struct inf_quant_event *ev)
{
    const struct progress *pg = arg;
    char shape[96];
    shape_str(shape, sizeof(shape), ev->n_dims, ev->ne);
    if (pg->dry_run) {
        printf("%-40s %-22s %-6s -> %-6s %10.3f MB -> %10.3f MB\n", ev->name, shape,
               inf_ggml_type_name(ev->from), inf_ggml_type_name(ev->to), ev->in_bytes / 1e6,
               ev->out_bytes / 1e6);
        return;
    }
    if (pg->quiet)
        return;
    double mbs = ev->seconds > 0 ? ev->in_bytes / 1e6 / ev->seconds : 0;
    fprintf(stderr, "[%zu/%zu] %-40s %-6s -> %-6s %8.1f MB/s\n", ev->index + 1, ev->count, ev->name,
            inf_ggml_type_name(ev->from), inf_ggml_type_name(ev->to), mbs);
}

static void list_types(FILE *f)
{
    const char *const *names = inf_quant_preset_names();
    fprintf(f, "valid types:");
    for (size_t i = 0; names[i]; i++)
        fprintf(f, " %s", names[i]);
    fprintf(f, "\n");
}

static bool unknown_type(const struct inf_cli *cli, const char *opt, const char *s)
{
    const char *const *names = inf_quant_preset_names();
    const char *best = NULL;
    size_t best_d = (size_t)-1;
    char up[32];
    size_t k = 0;
    for (; s[k] && k + 1 < sizeof(up); k++)
        up[k] = (char)(s[k] >= 'a' && s[k] <= 'z' ? s[k] - 32 : s[k]);
    up[k] = '\0';
    for (size_t i = 0; names[i]; i++) {
        size_t d = inf__edit_distance(up, names[i], false);
        if (d < best_d) {
            best_d = d;
            best = names[i];
        }
    }
    if (best && best_d <= 2)
        inf_cli_errorf(cli, "unknown type '%s' for --%s (did you mean '%s'?)", s, opt, best);
    else
        inf_cli_errorf(cli, "unknown type '%s' for --%s", s, opt);
    list_types(stderr);
    return false;
}

/* A tensor type for --output-tensor-type / --token-embedding-type, or -1 when absent. */
static bool tensor_type_opt(const struct inf_cli *cli, const struct inf_cli_args *a,
                            const char *name, int *out)
{
    const char *v = inf_cli_value(a, name);
    uint32_t id;
    *out = -1;
    if (!v)
        return true;
    if (!inf_ggml_type_from_name(v, &id)) {
        inf_cli_errorf(cli, "unknown tensor type '%s' for --%s", v, name);
        return false;
    }
    *out = (int)id;
    return true;
}

static int quantize(struct inf_cli *cli, struct inf_cli_args *args, const char *type_opt)
{
    struct inf_quant_params p;
    struct inf_quant_stats st;
    struct inf_error err = {0};
    struct progress pg;
    long long threads = 0;
    const char *in = args->positional[0], *out = args->positional[1];

    inf_quant_params_init(&p);
    p.type = inf_cli_value(args, type_opt);
    if (!p.type) {
        inf_cli_errorf(cli, "--%s TYPE is required", type_opt);
        list_types(stderr);
        return INF_EXIT_USAGE;
    }
    if (!inf_quant_preset_find(p.type))
        return unknown_type(cli, type_opt, p.type), INF_EXIT_USAGE;
    if (inf_cli_has(args, "threads") && !inf_cli_int(cli, args, "threads", 1, 512, &threads))
        return INF_EXIT_USAGE;
    if (!tensor_type_opt(cli, args, "output-tensor-type", &p.output_tensor_type) ||
        !tensor_type_opt(cli, args, "token-embedding-type", &p.token_embedding_type))
        return INF_EXIT_USAGE;
    p.n_threads = (int)threads;
    p.force = inf_cli_has(args, "force");
    p.dry_run = inf_cli_has(args, "dry-run");
    p.pure = inf_cli_has(args, "pure");
    pg.dry_run = p.dry_run;
    pg.quiet = inf_cli_has(args, "quiet");
    p.progress = on_progress;
    p.progress_arg = &pg;
    p.cancel = &interrupted;

    struct sigaction sa, old_int, old_term;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    inf_status rc = inf_quantize_file(in, out, &p, &st, &err);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    if (rc != INF_OK) {
        inf_cli_errorf(cli, "%s", inf_error_message(&err));
        if (rc == INF_EUSAGE)
            return INF_EXIT_USAGE;
        return rc == INF_ECANCELED ? 130 : INF_EXIT_FAIL;
    }
    const char *ft = inf_llama_ftype_name(st.ftype);
    if (p.dry_run) {
        fprintf(stderr, "plan: %zu tensors, %zu converted, %s: %.2f MB -> %.2f MB\n", st.n_tensors,
                st.n_converted, ft ? ft : "?", st.in_bytes / 1e6, st.out_bytes / 1e6);
        return INF_EXIT_OK;
    }
    fprintf(stderr,
            "quantized %zu tensors (%zu converted) to %s with %d threads: %.2f MB -> %.2f MB "
            "in %.2f s (%.1f MB/s)\n",
            st.n_tensors, st.n_converted, ft ? ft : "?", st.n_threads, st.in_bytes / 1e6,
            st.out_bytes / 1e6, st.seconds, st.seconds > 0 ? st.in_bytes / 1e6 / st.seconds : 0.0);
    return INF_EXIT_OK;
}

int inf_cmd_quantize(struct inf_cli *cli, struct inf_cli_args *args)
{
    return quantize(cli, args, "type");
}

int inf_cli_quantize_as_convert(struct inf_cli *cli, struct inf_cli_args *args)
{
    if (args->n_positional != 2) {
        inf_cli_errorf(cli, "expected IN and OUT\nUsage: inferno convert IN OUT --quantize TYPE");
        return INF_EXIT_USAGE;
    }
    return quantize(cli, args, "quantize");
}
