/*
 * cmd_convert.c - `inferno convert HF_DIR -o OUT.gguf [--outtype TYPE]`: a Hugging Face
 * safetensors directory to GGUF (inf_convert_hf), and `inferno convert IN OUT --quantize TYPE`,
 * the quantize command under this name (cmd_quantize.c). SIGINT/SIGTERM stop the run between
 * tensors; the library then removes its temporary file.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "inferno/convert.h"
#include "inferno/gguf.h"

const struct inf_cli_opt inf_cmd_convert_opts[] = {
    {"output", 'o', INF_OPT_VALUE, "OUT.gguf", "the GGUF file to write (HF_DIR form)", NULL},
    {"outtype", 0, INF_OPT_VALUE, "TYPE",
     "f32, f16 (default), bf16, or a quantize type: q8_0, q4_k_m, ... (HF_DIR form)", NULL},
    {"name", 0, INF_OPT_VALUE, "NAME", "general.name (default: the directory's name)", NULL},
    {"quantize", 0, INF_OPT_VALUE, "TYPE",
     "re-quantize a GGUF model to TYPE instead (as 'inferno quantize --type')", NULL},
    {"threads", 't', INF_OPT_VALUE, "N", "threads for quantizing (default: physical cores)", NULL},
    {"force", 0, INF_OPT_FLAG, NULL, "overwrite OUT when it exists", NULL},
    {"dry-run", 0, INF_OPT_FLAG, NULL, "with --quantize: print the plan; write nothing", NULL},
    {"pure", 0, INF_OPT_FLAG, NULL, "with --quantize: every tensor gets exactly TYPE", NULL},
    {"output-tensor-type", 0, INF_OPT_VALUE, "TYPE", "with --quantize: type of output.weight",
     NULL},
    {"token-embedding-type", 0, INF_OPT_VALUE, "TYPE", "with --quantize: type of token_embd.weight",
     NULL},
    {"quiet", 'q', INF_OPT_FLAG, NULL, "no per-tensor progress", NULL},
    {NULL, 0, 0, NULL, NULL, NULL},
};

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

static void on_progress(void *arg, const struct inf_convert_event *ev)
{
    if (*(const bool *)arg)
        return;
    fprintf(stderr, "[%zu/%zu] %-40s %-9s -> %-6s %10.3f MB\n", ev->index + 1, ev->count, ev->name,
            ev->from, inf_ggml_type_name(ev->to), ev->bytes / 1e6);
}

int inf_cmd_convert(struct inf_cli *cli, struct inf_cli_args *args)
{
    if (inf_cli_has(args, "quantize"))
        return inf_cli_quantize_as_convert(cli, args);
    const char *out = inf_cli_value(args, "output");
    if (args->n_positional == 2 && !out)
        out = args->positional[1];
    if (args->n_positional < 1 || args->n_positional > (inf_cli_has(args, "output") ? 1 : 2) ||
        !out) {
        inf_cli_errorf(cli, "expected HF_DIR and -o OUT.gguf\nUsage: inferno convert HF_DIR -o "
                            "OUT.gguf [--outtype f32|f16|bf16|q8_0|...]");
        return INF_EXIT_USAGE;
    }
    struct stat sb;
    if (stat(args->positional[0], &sb) == 0 && S_ISREG(sb.st_mode)) {
        inf_cli_errorf(cli,
                       "'%s' is a file, not a Hugging Face model directory (to re-quantize a GGUF "
                       "file: inferno convert IN.gguf OUT.gguf --quantize TYPE)",
                       args->positional[0]);
        return INF_EXIT_USAGE;
    }
    struct inf_convert_params p;
    struct inf_convert_stats st;
    struct inf_error err = {0};
    long long threads = 0;
    bool quiet = inf_cli_has(args, "quiet");
    inf_convert_params_init(&p);
    p.outtype = inf_cli_value(args, "outtype");
    p.name = inf_cli_value(args, "name");
    if (inf_cli_has(args, "threads") && !inf_cli_int(cli, args, "threads", 1, 512, &threads))
        return INF_EXIT_USAGE;
    p.n_threads = (int)threads;
    p.force = inf_cli_has(args, "force");
    p.progress = on_progress;
    p.progress_arg = &quiet;
    p.cancel = &interrupted;

    struct sigaction sa, old_int, old_term;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    inf_status rc = inf_convert_hf(args->positional[0], out, &p, &st, &err);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    if (rc != INF_OK) {
        inf_cli_errorf(cli, "%s", inf_error_message(&err));
        if (rc == INF_EUSAGE)
            return INF_EXIT_USAGE;
        return rc == INF_ECANCELED ? 130 : INF_EXIT_FAIL;
    }
    fprintf(stderr,
            "converted %s (%s, %zu tensors): %.2f MB read, %.2f MB written to %s in %.2f s "
            "(%.1f MB/s)\n",
            args->positional[0], st.arch, st.n_tensors, st.in_bytes / 1e6, st.out_bytes / 1e6, out,
            st.seconds, st.seconds > 0 ? st.in_bytes / 1e6 / st.seconds : 0.0);
    return INF_EXIT_OK;
}
