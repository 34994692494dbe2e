/*
 * test_json_schema_suite.c - the JSON Schema Test Suite (draft 2020-12) against the JSON Schema
 * compiler: each schema is compiled to a grammar (or refused), and each instance, serialized
 * compactly by jansson with its keys in the file's order, is fed to a matcher. A valid instance
 * must be accepted to its end; an invalid one must be stopped.
 *
 * Data: $INFERNO_SHARED/testdata/json-schema-test-suite (tests/draft2020-12/ files, remotes/
 * served as http://localhost:1234/ through the document loader). Skips (77) without it.
 *
 * Asserted: no invalid instance accepted under a compiled schema (a compiled schema claims every
 * keyword it holds), and at least 95 % of the instances under compiled schemas pass.
 * Properties are compiled in any order (opts.any_order): the suite's objects list keys in any
 * order, and JSON Schema does not constrain it; INFERNO_SUITE_ORDERED=1 measures schema order.
 */
#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inferno/grammar.h"
#include "t.h"

static char remotes[4096];

/* http://localhost:1234/<path> -> remotes/<path> */
static inf_status load_remote(void *ctx, const char *uri, char **json, size_t *len)
{
    static const char prefix[] = "http://localhost:1234/";
    char path[8192];
    (void)ctx;
    if (strncmp(uri, prefix, sizeof prefix - 1))
        return INF_ENOTFOUND;
    snprintf(path, sizeof path, "%s/%s", remotes, uri + sizeof prefix - 1);
    FILE *f = fopen(path, "rb");
    if (!f)
        return INF_ENOTFOUND;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc(n > 0 ? (size_t)n : 1);
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        fclose(f);
        return INF_EIO;
    }
    fclose(f);
    *json = buf;
    *len = (size_t)n;
    return INF_OK;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

struct totals {
    int compiled, refused, passed, failed, bad_accepts, valid_rejected;
};

/* The keyword a refusal names: the first '...' of the message. */
static void refused_keyword(const char *msg, char *kw, size_t n)
{
    const char *a = strchr(msg, '\''), *b = a ? strchr(a + 1, '\'') : NULL;
    if (strstr(msg, "accepts no JSON value"))
        snprintf(kw, n, "(accepts nothing)");
    else if (!a || !b || (size_t)(b - a - 1) >= n)
        snprintf(kw, n, "?");
    else
        snprintf(kw, n, "%.*s", (int)(b - a - 1), a + 1);
}

static void add_keyword(json_t *set, const char *kw)
{
    json_t *v = json_object_get(set, kw);
    json_object_set_new(set, kw, json_integer(v ? json_integer_value(v) + 1 : 1));
}

static void run_file(const char *dir, const char *name, const struct inf_json_schema_opts *opts,
                     struct totals *all, bool verbose)
{
    char path[8192];
    json_error_t je;
    struct totals t = {0};
    json_t *kws = json_object();
    snprintf(path, sizeof path, "%s/%s", dir, name);
    json_t *groups = json_load_file(path, JSON_ALLOW_NUL, &je);
    T_OK(groups != NULL);
    if (!groups)
        return;
    size_t gi;
    json_t *group;
    json_array_foreach(groups, gi, group)
    {
        char *schema = json_dumps(json_object_get(group, "schema"), JSON_COMPACT | JSON_ENCODE_ANY);
        struct inf_grammar *g = NULL;
        struct inf_error err = {0};
        inf_status rc = inf_grammar_from_json_schema(schema, strlen(schema), opts, &g, &err);
        if (rc != INF_OK) {
            char kw[64];
            refused_keyword(err.msg, kw, sizeof kw);
            add_keyword(kws, kw);
            t.refused++;
            if (verbose)
                printf("  refused [%s] %s: %s\n", name,
                       json_string_value(json_object_get(group, "description")), err.msg);
            free(schema);
            continue;
        }
        t.compiled++;
        size_t ti;
        json_t *test;
        json_array_foreach(json_object_get(group, "tests"), ti, test)
        {
            char *data = json_dumps(json_object_get(test, "data"), JSON_COMPACT | JSON_ENCODE_ANY);
            bool valid = json_is_true(json_object_get(test, "valid"));
            struct inf_matcher *m = NULL;
            bool accepted = false;
            if (inf_matcher_new(g, NULL, &m, &err) == INF_OK) {
                accepted =
                    inf_matcher_accept_bytes(m, data, strlen(data)) && inf_matcher_can_end(m);
                inf_matcher_free(m);
            }
            if (accepted == valid) {
                t.passed++;
            } else {
                t.failed++;
                if (!valid)
                    t.bad_accepts++;
                else
                    t.valid_rejected++;
                if (!valid || verbose)
                    printf("  %s [%s] %s / %s: %s\n", valid ? "rejected valid" : "ACCEPTED INVALID",
                           name, json_string_value(json_object_get(group, "description")),
                           json_string_value(json_object_get(test, "description")), data);
                if (!valid && verbose)
                    printf("    schema: %s\n", schema);
            }
            free(data);
        }
        inf_grammar_free(g);
        free(schema);
    }
    printf("%-28s %4d %4d %5d %5d %4d  ", name, t.compiled, t.refused, t.passed, t.failed,
           t.bad_accepts);
    const char *k;
    json_t *v;
    json_object_foreach(kws, k, v) printf("%s(%lld) ", k, (long long)json_integer_value(v));
    printf("\n");
    all->compiled += t.compiled, all->refused += t.refused, all->passed += t.passed;
    all->failed += t.failed, all->bad_accepts += t.bad_accepts;
    all->valid_rejected += t.valid_rejected;
    json_decref(kws);
    json_decref(groups);
}

int main(int argc, char **argv)
{
    const char *shared = getenv("INFERNO_SHARED");
    char dir[4096];
    struct inf_json_schema_opts opts = {.whitespace = -1, .load_document = load_remote};
    struct totals all = {0};
    bool verbose = getenv("INFERNO_SUITE_VERBOSE") != NULL;

    if (!shared)
        shared = "../shared";
    snprintf(dir, sizeof dir, "%s/testdata/json-schema-test-suite/tests/draft2020-12", shared);
    snprintf(remotes, sizeof remotes, "%s/testdata/json-schema-test-suite/remotes", shared);
    DIR *d = opendir(dir);
    if (!d)
        T_SKIP_ALL("%s not found (../shared/testdata absent)", dir);
    opts.any_order = !getenv("INFERNO_SUITE_ORDERED");
    char **names = NULL;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l > 5 && !strcmp(e->d_name + l - 5, ".json") &&
            (argc < 2 || strstr(e->d_name, argv[1]))) {
            names = realloc(names, (n + 1) * sizeof *names);
            names[n++] = strdup(e->d_name);
        }
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmp_str);
    printf("%-28s %4s %4s %5s %5s %4s  %s\n", "file", "comp", "ref", "pass", "fail", "bad",
           "refused keywords");
    for (size_t i = 0; i < n; i++) {
        run_file(dir, names[i], &opts, &all, verbose);
        free(names[i]);
    }
    free(names);
    int total = all.passed + all.failed;
    printf("schemas: %d compiled, %d refused; instances under compiled schemas: %d passed, %d "
           "failed (%d valid rejected, %d invalid accepted), pass rate %.2f %%\n",
           all.compiled, all.refused, all.passed, all.failed, all.valid_rejected, all.bad_accepts,
           total ? 100.0 * all.passed / total : 0.0);
    T_EQ_INT(all.bad_accepts, 0);
    T_OK(total > 0 && all.passed * 100 >= total * 95);
    T_DONE();
}
