/* cmd_config.c - `inferno config show|get|path|init`. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/escape.h"
#include "core/files.h"
#include "core/text.h"
#include "inferno/config.h"

/* Print s as a JSON string. */
static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    inf__escape_json_write(f, s, strlen(s));
    fputc('"', f);
}

/* The section of a key ("server.port" -> "server", "models_dir" -> ""), into buf. */
static void section_of(const char *key, char *buf, size_t size)
{
    const char *dot = strchr(key, '.');
    snprintf(buf, size, "%.*s", dot ? (int)(dot - key) : 0, key);
}

static int config_show(struct inf_cli *cli, bool origin, bool json)
{
    size_t n;
    const struct inf_config_key *keys = inf_config_schema(&n);
    char section[64] = "", sec[64], val[8192];

    if (json)
        printf("{");
    for (size_t i = 0; i < n; i++) {
        if (inf_config_format_value(cli->config, keys[i].name, val, sizeof(val)) != INF_OK)
            snprintf(val, sizeof(val), "\"(value too long to show)\"");
        const char *org = inf_config_origin_desc(cli->config, keys[i].name);
        if (json) {
            /* TOML scalars and string arrays print as valid JSON values. */
            printf("%s\n  ", i ? "," : "");
            json_str(stdout, keys[i].name);
            if (origin) {
                printf(": {\"value\": %s, \"origin\": ", val);
                json_str(stdout, org);
                printf("}");
            } else {
                printf(": %s", val);
            }
            continue;
        }
        section_of(keys[i].name, sec, sizeof(sec));
        if (strcmp(sec, section) != 0) {
            printf("\n[%s]\n", sec);
            snprintf(section, sizeof(section), "%s", sec);
        }
        const char *leaf = sec[0] ? keys[i].name + strlen(sec) + 1 : keys[i].name;
        if (origin)
            printf("%s = %s  # %s\n", leaf, val, org);
        else
            printf("%s = %s\n", leaf, val);
    }
    if (json)
        printf("\n}\n");
    return INF_EXIT_OK;
}

static int config_get(struct inf_cli *cli, const char *key, bool json)
{
    const struct inf_config_key *k = inf_config_schema_find(key);
    char val[8192];

    if (!k) {
        size_t n, best_d = 4;
        const struct inf_config_key *keys = inf_config_schema(&n);
        const char *best = NULL;
        for (size_t i = 0; i < n; i++) {
            size_t d = inf__edit_distance(key, keys[i].name, false);
            if (d < best_d) {
                best_d = d;
                best = keys[i].name;
            }
        }
        if (best)
            inf_cli_errorf(cli, "unknown key '%s' (did you mean '%s'?)", key, best);
        else
            inf_cli_errorf(cli, "unknown key '%s'; 'inferno config show' lists them", key);
        return INF_EXIT_USAGE;
    }
    if (json) {
        if (inf_config_format_value(cli->config, key, val, sizeof(val)) != INF_OK) {
            inf_cli_errorf(cli, "value of '%s' is too long to show", key);
            return INF_EXIT_FAIL;
        }
        printf("%s\n", val);
        return INF_EXIT_OK;
    }
    switch (k->type) {
    case INF_CFG_STRING:
    case INF_CFG_PATH:
        printf("%s\n", inf_config_get_str(cli->config, key));
        break;
    case INF_CFG_INT:
        printf("%lld\n", (long long)inf_config_get_int(cli->config, key));
        break;
    case INF_CFG_BOOL:
        printf("%s\n", inf_config_get_bool(cli->config, key) ? "true" : "false");
        break;
    case INF_CFG_FLOAT:
        printf("%.17g\n", inf_config_get_float(cli->config, key));
        break;
    case INF_CFG_STRING_LIST: {
        const char *const *l = inf_config_get_list(cli->config, key, NULL);
        for (size_t i = 0; l[i]; i++)
            printf("%s\n", l[i]);
        break;
    }
    }
    return INF_EXIT_OK;
}

static int config_path(struct inf_cli *cli, struct inf_cli_args *args, bool json)
{
    struct inf_config_files files;
    inf_config_cascade_files(inf_cli_value(args, "config"), &files);
    if (json)
        printf("[");
    for (size_t i = 0; i < files.n; i++) {
        struct stat sb;
        bool exists = stat(files.paths[i], &sb) == 0;
        if (json) {
            printf("%s{\"path\": ", i ? ", " : "");
            json_str(stdout, files.paths[i]);
            printf(", \"exists\": %s, \"precedence\": %zu}", exists ? "true" : "false", i + 1);
        } else {
            printf("%zu. %s (%s)\n", i + 1, files.paths[i], exists ? "exists" : "not found");
        }
    }
    if (json)
        printf("]\n");
    else
        printf("(lowest precedence first; INFERNO_* environment variables and flags override "
               "all files)\n");
    return INF_EXIT_OK;
}

static int config_init(struct inf_cli *cli, struct inf_cli_args *args)
{
    struct inf_config_files files;
    char path[1024];
    size_t n;
    const struct inf_config_key *keys = inf_config_schema(&n);

    if (inf_cli_has(args, "path"))
        snprintf(path, sizeof(path), "%s", inf_cli_value(args, "path"));
    else if (inf_cli_has(args, "local"))
        snprintf(path, sizeof(path), "./.inferno.toml");
    else {
        inf_config_cascade_files(NULL, &files);
        snprintf(path, sizeof(path), "%s", files.paths[0]);
    }
    if (inf__mkdir_parents(path) != 0) {
        inf_cli_errorf(cli, "cannot create the directory of '%s': %s", path, strerror(errno));
        return INF_EXIT_FAIL;
    }
    /* O_EXCL: an existing file is never overwritten, even in a race. */
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
    if (fd < 0) {
        if (errno == EEXIST)
            inf_cli_errorf(cli, "'%s' already exists; not overwriting it", path);
        else
            inf_cli_errorf(cli, "cannot create '%s': %s", path, strerror(errno));
        return INF_EXIT_FAIL;
    }
    FILE *f = fdopen(fd, "w");
    if (!f) {
        close(fd);
        unlink(path);
        inf_cli_errorf(cli, "cannot write '%s': %s", path, strerror(errno));
        return INF_EXIT_FAIL;
    }
    fprintf(f, "# Inferno configuration (TOML). Every key is shown with its default value,\n"
               "# commented out; uncomment a line to change it. Precedence, highest first:\n"
               "# flags > INFERNO_<SECTION>_<KEY> environment > this file and the others\n"
               "# listed by 'inferno config path' > built-in defaults.\n");
    char section[64] = "";
    for (size_t i = 0; i < n; i++) {
        const char *dot = strchr(keys[i].name, '.');
        char sec[64];
        snprintf(sec, sizeof(sec), "%.*s", dot ? (int)(dot - keys[i].name) : 0, keys[i].name);
        if (strcmp(sec, section) != 0) {
            fprintf(f, "\n[%s]\n", sec);
            snprintf(section, sizeof(section), "%s", sec);
        }
        char env[128];
        inf_config_env_name(keys[i].name, env, sizeof(env));
        fprintf(f, "\n# %s (env %s)\n# %s = %s\n", keys[i].description, env,
                dot ? dot + 1 : keys[i].name, keys[i].default_str);
    }
    if (fclose(f) != 0) {
        inf_cli_errorf(cli, "cannot write '%s': %s", path, strerror(errno));
        unlink(path);
        return INF_EXIT_FAIL;
    }
    printf("wrote %s\n", path);
    return INF_EXIT_OK;
}

int inf_cmd_config(struct inf_cli *cli, struct inf_cli_args *args)
{
    const char *sub = args->positional[0];
    bool json = inf_cli_has(args, "json");

    if (strcmp(sub, "show") == 0 && args->n_positional == 1)
        return config_show(cli, inf_cli_has(args, "origin"), json);
    if (strcmp(sub, "get") == 0 && args->n_positional == 2)
        return config_get(cli, args->positional[1], json);
    if (strcmp(sub, "path") == 0 && args->n_positional == 1)
        return config_path(cli, args, json);
    if (strcmp(sub, "init") == 0 && args->n_positional == 1)
        return config_init(cli, args);
    if (strcmp(sub, "get") == 0)
        inf_cli_errorf(cli, "usage: inferno config get KEY");
    else
        inf_cli_errorf(cli, "unknown subcommand '%s' (expected show, get, path or init)", sub);
    return INF_EXIT_USAGE;
}
