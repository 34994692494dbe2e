/*
 * cmd_cache.c - `inferno cache stats | list | clear | prune | verify`: the response cache that
 * `inferno serve --cache` fills (inferno/cache.h), under cache.dir.
 */
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "inferno/cache.h"

const struct inf_cli_opt inf_cmd_cache_opts[] = {
    {"json", 0, INF_OPT_FLAG, NULL, "stats, list: print JSON", NULL},
    {"model", 'm', INF_OPT_VALUE, "M", "list, clear: only the entries of model M (its id)", NULL},
    {"dir", 0, INF_OPT_VALUE, "DIR", "the cache directory", "cache.dir"},
    {NULL, 0, 0, NULL, NULL, NULL},
};

void inf_cli_cache_params(const struct inf_cli *cli, struct inf_cache_params *p)
{
    memset(p, 0, sizeof(*p));
    p->dir = inf_config_get_str(cli->config, "cache.dir");
    p->max_bytes = (uint64_t)inf_config_get_int(cli->config, "cache.max_bytes");
    p->max_entry_bytes = (uint64_t)inf_config_get_int(cli->config, "cache.max_entry_bytes");
    p->ttl_seconds = inf_config_get_int(cli->config, "cache.ttl");
    p->memory_bytes = (uint64_t)inf_config_get_int(cli->config, "cache.memory_bytes");
}

static void when(int64_t ms, char *buf, size_t n)
{
    if (!ms) {
        snprintf(buf, n, "-");
        return;
    }
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void hexkey(const uint8_t *k, char out[65])
{
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", k[i]);
}

struct list_ctx {
    bool json;
    json_t *arr;
    uint64_t n;
};

static int list_one(const struct inf_cache_entry_info *e, void *user)
{
    struct list_ctx *l = user;
    char key[65], c[32], u[32];
    hexkey(e->key, key);
    when(e->created_ms, c, sizeof(c));
    when(e->last_used_ms, u, sizeof(u));
    if (l->json)
        json_array_append_new(l->arr, json_pack("{s:s,s:s,s:I,s:I,s:s,s:s,s:I}", "key", key,
                                                "model", e->model, "bytes", (json_int_t)e->bytes,
                                                "raw_bytes", (json_int_t)e->raw_bytes, "created", c,
                                                "last_used", u, "hits", (json_int_t)e->hits));
    else
        printf("%.16s  %-24s %10" PRIu64 " %10" PRIu64 "  %s  %s  %" PRIu64 "\n", key, e->model,
               e->bytes, e->raw_bytes, c, u, e->hits);
    l->n++;
    return 0;
}

static void print_problem(const char *line, void *user)
{
    (void)user;
    printf("  %s\n", line);
}

int inf_cmd_cache(struct inf_cli *cli, struct inf_cli_args *args)
{
    const char *sub = args->positional[0];
    bool json = inf_cli_has(args, "json");
    const char *model = inf_cli_value(args, "model");
    static const char *const subs[] = {"stats", "list", "clear", "prune", "verify"};
    bool known = false;
    for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++)
        known |= strcmp(sub, subs[i]) == 0;
    if (!known) {
        inf_cli_errorf(cli, "unknown subcommand '%s' (stats, list, clear, prune, verify)", sub);
        return INF_EXIT_USAGE;
    }
    struct inf_cache_params p;
    inf_cli_cache_params(cli, &p);
    struct inf_cache *c = NULL;
    struct inf_error err = {0};
    if (inf_cache_open(&p, &c, &err)) {
        inf_cli_errorf(cli, "%s", inf_error_message(&err));
        return INF_EXIT_FAIL;
    }
    int rc = INF_EXIT_OK;
    if (strcmp(sub, "stats") == 0) {
        struct inf_cache_stats st;
        if (inf_cache_stats(c, &st, &err)) {
            inf_cli_errorf(cli, "%s", inf_error_message(&err));
            rc = INF_EXIT_FAIL;
            goto out;
        }
        char o[32], nw[32];
        when(st.oldest_ms, o, sizeof(o));
        when(st.newest_ms, nw, sizeof(nw));
        if (json) {
            json_t *j =
                json_pack("{s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:s,s:s}", "dir", p.dir, "entries",
                          (json_int_t)st.entries, "bytes", (json_int_t)st.bytes, "raw_bytes",
                          (json_int_t)st.raw_bytes, "max_bytes", (json_int_t)p.max_bytes,
                          "max_entry_bytes", (json_int_t)p.max_entry_bytes, "ttl_seconds",
                          (json_int_t)p.ttl_seconds, "oldest", o, "newest", nw);
            char *s = json_dumps(j, JSON_INDENT(2));
            json_decref(j);
            printf("%s\n", s ? s : "{}");
            free(s);
        } else {
            printf("directory:   %s\n", p.dir);
            printf("entries:     %" PRIu64 "\n", st.entries);
            printf("size:        %" PRIu64 " bytes compressed (%" PRIu64 " decoded) of %" PRIu64
                   " allowed\n",
                   st.bytes, st.raw_bytes, p.max_bytes);
            printf("oldest:      %s\nnewest:      %s\n", o, nw);
            printf("ttl:         %" PRId64 " s\n", p.ttl_seconds);
        }
    } else if (strcmp(sub, "list") == 0) {
        struct list_ctx l = {.json = json, .arr = json ? json_array() : NULL};
        if (!json)
            printf("%-16s  %-24s %10s %10s  %-20s  %-20s  %s\n", "key", "model", "bytes", "decoded",
                   "created", "last used", "hits");
        if (inf_cache_list(c, model, list_one, &l, &err)) {
            inf_cli_errorf(cli, "%s", inf_error_message(&err));
            rc = INF_EXIT_FAIL;
        }
        if (json) {
            char *s = json_dumps(l.arr, JSON_INDENT(2));
            printf("%s\n", s ? s : "[]");
            free(s);
            json_decref(l.arr);
        }
    } else if (strcmp(sub, "clear") == 0) {
        uint64_t n = 0;
        if (inf_cache_clear(c, model, &n, &err)) {
            inf_cli_errorf(cli, "%s", inf_error_message(&err));
            rc = INF_EXIT_FAIL;
        } else {
            printf("removed %" PRIu64 " entr%s\n", n, n == 1 ? "y" : "ies");
        }
    } else if (strcmp(sub, "prune") == 0) {
        uint64_t n = 0;
        if (inf_cache_prune(c, &n, &err)) {
            inf_cli_errorf(cli, "%s", inf_error_message(&err));
            rc = INF_EXIT_FAIL;
        } else {
            printf("removed %" PRIu64 " entr%s (ttl %" PRId64 " s, bound %" PRIu64 " bytes)\n", n,
                   n == 1 ? "y" : "ies", p.ttl_seconds, p.max_bytes);
        }
    } else { /* verify */
        struct inf_cache_verify_report rep;
        printf("checking %s\n", p.dir);
        if (inf_cache_verify(c, &rep, print_problem, NULL, &err)) {
            inf_cli_errorf(cli, "%s", inf_error_message(&err));
            rc = INF_EXIT_FAIL;
            goto out;
        }
        bool ok = rep.index_ok && rep.bad == 0;
        printf("%s: %" PRIu64 " entries checked, %" PRIu64 " intact, %" PRIu64 " bad; %" PRIu64
               " partial and %" PRIu64 " unindexed files (interrupted writes)\n",
               ok ? "consistent" : "INCONSISTENT", rep.checked, rep.ok, rep.bad, rep.partial,
               rep.orphans);
        rc = ok ? INF_EXIT_OK : INF_EXIT_FAIL;
    }
out:
    inf_cache_free(c);
    return rc;
}
