/* cli.c - option access and small helpers shared by the command handlers. */
#include "cli/cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int opt_index(const struct inf_cli_args *a, const char *name)
{
    for (size_t i = 0; i < a->n_opts; i++)
        if (strcmp(a->opts[i].name, name) == 0)
            return (int)i;
    fprintf(stderr, "inferno: internal error: option '--%s' is not declared\n", name);
    abort();
}

bool inf_cli_has(const struct inf_cli_args *a, const char *name)
{
    return a->count[opt_index(a, name)] > 0;
}

const char *inf_cli_value(const struct inf_cli_args *a, const char *name)
{
    return a->value[opt_index(a, name)];
}

const char *const *inf_cli_values(const struct inf_cli_args *a, const char *name, int *n)
{
    static const char *const empty[] = {NULL};
    int i = opt_index(a, name);
    if (n)
        *n = a->list[i] ? a->count[i] : 0;
    return a->list[i] ? a->list[i] : empty;
}

void inf_cli_errorf(const struct inf_cli *cli, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "inferno%s%s: ", cli && cli->command ? " " : "",
            cli && cli->command ? cli->command->name : "");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

bool inf_cli_int(const struct inf_cli *cli, const struct inf_cli_args *a, const char *name,
                 long long lo, long long hi, long long *out)
{
    const char *s = inf_cli_value(a, name);
    char *end;
    errno = 0;
    long long v = s ? strtoll(s, &end, 10) : 0;
    if (!s || errno || end == s || *end || v < lo || v > hi) {
        inf_cli_errorf(cli, "option '--%s' expects an integer in [%lld, %lld], got '%s'", name, lo,
                       hi, s ? s : "");
        return false;
    }
    *out = v;
    return true;
}
