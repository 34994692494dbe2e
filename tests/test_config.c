/* test_config.c - the configuration schema and every level of the cascade. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "inferno/config.h"
#include "inferno/log.h"
#include "t.h"

static char tmpdir[256];

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        exit(1);
    }
    fputs(text, f);
    fclose(f);
}

static void test_defaults(void)
{
    struct inf_config *cfg;
    struct inf_error err = {0};
    size_t n;
    const struct inf_config_key *keys = inf_config_schema(&n);

    T_EQ_INT(inf_config_new(&cfg, &err), INF_OK);
    T_OK(n >= 20);
    T_EQ_INT(inf_config_get_int(cfg, "server.port"), 8080);
    T_EQ_STR(inf_config_get_str(cfg, "server.host"), "127.0.0.1");
    T_EQ_INT(inf_config_get_int(cfg, "backend.context_size"), 4096);
    T_EQ_STR(inf_config_origin_desc(cfg, "server.port"), "default");
    size_t nl = 99;
    inf_config_get_list(cfg, "server.api_keys", &nl);
    T_EQ_INT(nl, 0);
    /* issue #19: the response cache and the audit log are off by default */
    T_OK(!inf_config_get_bool(cfg, "cache.enabled"));
    T_OK(!inf_config_get_bool(cfg, "audit.enabled"));
    T_EQ_STR(inf_config_get_str(cfg, "audit.fsync"), "batch");
    T_EQ_INT(inf_config_get_int(cfg, "cache.max_bytes"), 1073741824);
    T_EQ_INT(inf_config_get_int(cfg, "cache.ttl"), 604800);
    T_EQ_STR(inf_config_get_str(cfg, "audit.key_file"), "");
    T_EQ_INT(inf_config_set(cfg, "audit.fsync", "sometimes", INF_ORIGIN_FLAG, "flag", &err),
             INF_ERANGE);
    T_EQ_INT(inf_config_set(cfg, "audit.batch_ms", "0", INF_ORIGIN_FLAG, "flag", &err), INF_ERANGE);
    /* the sections the foundation issue requires */
    const char *required[] = {"models_dir",
                              "backend.threads",
                              "backend.context_size",
                              "backend.batch_size",
                              "server.host",
                              "server.port",
                              "server.api_keys",
                              "server.max_body_bytes",
                              "server.parallel",
                              "log.level",
                              "log.format"};
    for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++)
        T_OK(inf_config_schema_find(required[i]) != NULL);
    bool has_cache = false, has_audit = false, has_queue = false;
    for (size_t i = 0; i < n; i++) {
        has_cache |= strncmp(keys[i].name, "cache.", 6) == 0;
        has_audit |= strncmp(keys[i].name, "audit.", 6) == 0;
        has_queue |= strncmp(keys[i].name, "queue.", 6) == 0;
        T_OK(keys[i].description && keys[i].description[0]);
    }
    T_OK(has_cache && has_audit && has_queue);
    char env[64];
    inf_config_env_name("server.max_body_bytes", env, sizeof(env));
    T_EQ_STR(env, "INFERNO_SERVER_MAX_BODY_BYTES");
    inf_config_env_name("models_dir", env, sizeof(env));
    T_EQ_STR(env, "INFERNO_MODELS_DIR");
    inf_config_free(cfg);
}

static void test_types_and_errors(void)
{
    struct inf_config *cfg;
    struct inf_error err = {0};
    int warn = 0;
    char val[256];

    inf_config_new(&cfg, &err);
    const char *good = "models_dir = \"/m\"\n"
                       "[server]\n"
                       "port = 9000\n"
                       "api_keys = [\"a\", \"b\\\"c\"]\n"
                       "prot = 1\n"
                       "[backend]\n"
                       "use_mmap = false\n"
                       "[nonsense]\n"
                       "x = 1\n";
    T_EQ_INT(inf_config_apply_toml(cfg, "mem.toml", good, strlen(good), &warn, &err), INF_OK);
    T_EQ_INT(warn, 2); /* server.prot and nonsense */
    T_EQ_INT(inf_config_get_int(cfg, "server.port"), 9000);
    T_EQ_STR(inf_config_origin_desc(cfg, "server.port"), "mem.toml:3");
    T_EQ_STR(inf_config_origin_desc(cfg, "models_dir"), "mem.toml:1");
    T_EQ_INT(inf_config_get_bool(cfg, "backend.use_mmap"), 0);
    size_t n;
    const char *const *keys = inf_config_get_list(cfg, "server.api_keys", &n);
    T_EQ_INT(n, 2);
    T_EQ_STR(keys[1], "b\"c");
    T_EQ_INT(inf_config_format_value(cfg, "server.api_keys", val, sizeof(val)), INF_OK);
    T_EQ_STR(val, "[\"a\", \"b\\\"c\"]");

    /* wrong type: an error naming file:line, and nothing applied */
    const char *bad = "[server]\nhost = \"0.0.0.0\"\nport = \"eighty\"\n";
    T_EQ_INT(inf_config_apply_toml(cfg, "bad.toml", bad, strlen(bad), NULL, &err), INF_ETYPE);
    T_CONTAINS(err.msg, "bad.toml:3");
    T_CONTAINS(err.msg, "server.port");
    T_EQ_STR(inf_config_get_str(cfg, "server.host"), "127.0.0.1");

    const char *range = "[server]\nport = 70000\n";
    T_EQ_INT(inf_config_apply_toml(cfg, "r.toml", range, strlen(range), NULL, &err), INF_ERANGE);
    T_CONTAINS(err.msg, "r.toml:2");
    T_CONTAINS(err.msg, "65535");

    const char *choice = "[log]\nlevel = \"loud\"\n";
    T_EQ_INT(inf_config_apply_toml(cfg, "c.toml", choice, strlen(choice), NULL, &err), INF_ERANGE);
    T_CONTAINS(err.msg, "c.toml:2");

    const char *syntax = "[server\nport = 1\n";
    T_EQ_INT(inf_config_apply_toml(cfg, "s.toml", syntax, strlen(syntax), NULL, &err), INF_EPARSE);
    T_CONTAINS(err.msg, "s.toml");
    T_CONTAINS(err.msg, "line 1");

    /* env/flag text parsing */
    T_EQ_INT(inf_config_set(cfg, "server.port", "abc", INF_ORIGIN_FLAG, "flag --port", &err),
             INF_ETYPE);
    T_EQ_INT(inf_config_set(cfg, "server.api_keys", " k1 , k2,", INF_ORIGIN_ENV, "env", &err),
             INF_OK);
    keys = inf_config_get_list(cfg, "server.api_keys", &n);
    T_EQ_INT(n, 2);
    T_EQ_STR(keys[0], "k1");
    T_EQ_STR(keys[1], "k2");
    /* a TOML array as text: commas inside the strings are kept */
    T_EQ_INT(
        inf_config_set(cfg, "server.api_keys", " [\"a,b\", 'c']", INF_ORIGIN_FLAG, "flag", &err),
        INF_OK);
    keys = inf_config_get_list(cfg, "server.api_keys", &n);
    T_EQ_INT(n, 2);
    T_EQ_STR(keys[0], "a,b");
    T_EQ_STR(keys[1], "c");
    T_EQ_INT(inf_config_set(cfg, "server.api_keys", "[\"a\", 3]", INF_ORIGIN_FLAG, "flag", &err),
             INF_ETYPE);
    T_EQ_INT(inf_config_set(cfg, "server.api_keys", "[\"a\"", INF_ORIGIN_FLAG, "flag", &err),
             INF_EPARSE);
    T_EQ_INT(inf_config_set(cfg, "backend.use_mlock", "yes", INF_ORIGIN_ENV, "env", &err), INF_OK);
    T_EQ_INT(inf_config_get_bool(cfg, "backend.use_mlock"), 1);
    T_EQ_INT(inf_config_set(cfg, "no.such", "1", INF_ORIGIN_ENV, "env", &err), INF_ENOTFOUND);
    inf_config_free(cfg);
}

/*
 * Every level of the cascade overrides the one below it: server.port is set at each level with
 * a different value, and each level also sets one key no higher level touches, so both
 * "overrides" and "shows through" are checked.
 */
static void test_cascade(void)
{
    char home[512], xdg[512], work[512], path[1024], extra[1024];
    struct inf_config *cfg;
    struct inf_error err = {0};

    snprintf(home, sizeof(home), "%s/home", tmpdir);
    snprintf(xdg, sizeof(xdg), "%s/xdg", tmpdir);
    snprintf(work, sizeof(work), "%s/work", tmpdir);
    mkdir(home, 0755);
    mkdir(xdg, 0755);
    snprintf(path, sizeof(path), "%s/inferno", xdg);
    mkdir(path, 0755);
    mkdir(work, 0755);
    setenv("HOME", home, 1);
    setenv("XDG_CONFIG_HOME", xdg, 1);
    unsetenv("INFERNO_CONFIG");
    unsetenv("INFERNO_SERVER_PORT");
    unsetenv("INFERNO_MODELS_DIR");
    T_OK(chdir(work) == 0);

    /* level 0: defaults only */
    T_EQ_INT(inf_config_load(&cfg, NULL, NULL, &err), INF_OK);
    T_EQ_INT(inf_config_get_int(cfg, "server.port"), 8080);
    T_EQ_STR(inf_config_origin_desc(cfg, "server.port"), "default");
    inf_config_free(cfg);

    /* level 1: XDG file */
    snprintf(path, sizeof(path), "%s/inferno/config.toml", xdg);
    write_file(path, "[server]\nport = 1001\nparallel = 7\n");
    T_EQ_INT(inf_config_load(&cfg, NULL, NULL, &err), INF_OK);
    T_EQ_INT(inf_config_get_int(cfg, "server.port"), 1001);
    char want[1200];
    snprintf(want, sizeof(want), "%s:2", path);
    T_EQ_STR(inf_config_origin_desc(cfg, "server.port"), want);
    inf_config_free(cfg);

    /* level 2: ~/.inferno.toml overrides XDG */
    snprintf(path, sizeof(path), "%s/.inferno.toml", home);
    write_file(path, "[server]\nport = 1002\n[backend]\nbatch_size = 99\n");
    T_EQ_INT(inf_config_load(&cfg, NULL, NULL, &err), INF_OK);
    T_EQ_INT(inf_config_get_int(cfg, "server.port"), 1002);
    T_EQ_INT(inf_config_get_int(cfg, "server.parallel"), 7); /* from XDG, shows through */
    snprintf(want, sizeof(want), "%s:2", path);
    T_EQ_STR(inf_config_origin_desc(cfg, "server.port"), want);
    inf_config_free(cfg);

    /* level 3: ./.inferno.toml overrides ~/.inferno.toml */
    write_file(".inferno.toml", "\n\n[server]\nport = 1003\n");
    T_EQ_INT(inf_config_load(&cfg, NULL, NULL, &err), INF_OK);
    T_EQ_INT(inf_config_get_int(cfg, "server.port"), 1003);
    T_EQ_INT(inf_config_get_int(cfg, "backend.batch_size"), 99);
    T_EQ_STR(inf_config_origin_desc(cfg, "server.port"), "./.inferno.toml:4");
    inf_config_free(cfg);

    /* level 4: INFERNO_CONFIG names a file above the others */
    snprintf(extra, sizeof(extra), "%s/extra.toml", tmpdir);
    write_file(extra, "server.port = 1004\n");
    setenv("INFERNO_CONFIG", extra, 1);
    T_EQ_INT(inf_config_load(&cfg, NULL, NULL, &err), INF_OK);
    T_EQ_INT(inf_config_get_int(cfg, "server.port"), 1004);
    snprintf(want, sizeof(want), "%s:1", extra);
    T_EQ_STR(inf_config_origin_desc(cfg, "server.port"), want);
    inf_config_free(cfg);

    /* a named file that does not exist is an error, not silently skipped */
    setenv("INFERNO_CONFIG", "/nonexistent/inferno.toml", 1);
    T_EQ_INT(inf_config_load(&cfg, NULL, NULL, &err), INF_ENOTFOUND);
    T_CONTAINS(err.msg, "/nonexistent/inferno.toml");
    setenv("INFERNO_CONFIG", extra, 1);

    /* level 5: environment overrides every file */
    setenv("INFERNO_SERVER_PORT", "1005", 1);
    setenv("INFERNO_MODELS_DIR", "/models/env", 1);
    T_EQ_INT(inf_config_load(&cfg, NULL, NULL, &err), INF_OK);
    T_EQ_INT(inf_config_get_int(cfg, "server.port"), 1005);
    T_EQ_STR(inf_config_origin_desc(cfg, "server.port"), "env INFERNO_SERVER_PORT");
    T_EQ_STR(inf_config_get_str(cfg, "models_dir"), "/models/env");

    /* level 6: a flag overrides the environment */
    T_EQ_INT(inf_config_set(cfg, "server.port", "1006", INF_ORIGIN_FLAG, "flag --port", &err),
             INF_OK);
    T_EQ_INT(inf_config_get_int(cfg, "server.port"), 1006);
    T_EQ_STR(inf_config_origin_desc(cfg, "server.port"), "flag --port");
    T_EQ_INT(inf_config_origin_kind(cfg, "server.port"), INF_ORIGIN_FLAG);
    inf_config_free(cfg);

    /* a bad environment value is an error naming the variable */
    setenv("INFERNO_SERVER_PORT", "http", 1);
    T_EQ_INT(inf_config_load(&cfg, NULL, NULL, &err), INF_ETYPE);
    T_CONTAINS(err.msg, "INFERNO_SERVER_PORT");
    unsetenv("INFERNO_SERVER_PORT");
    unsetenv("INFERNO_CONFIG");
    unsetenv("INFERNO_MODELS_DIR");

    /* ~ expansion of paths */
    const char *tilde = "models_dir = \"~/m\"\n";
    inf_config_new(&cfg, &err);
    T_EQ_INT(inf_config_apply_toml(cfg, "t.toml", tilde, strlen(tilde), NULL, &err), INF_OK);
    snprintf(want, sizeof(want), "%s/m", home);
    T_EQ_STR(inf_config_get_str(cfg, "models_dir"), want);
    inf_config_free(cfg);
}

int main(void)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/inferno-test-config-XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    inf_log_set_level(INF_LOG_ERROR); /* the unknown-key warnings are expected here */
    T_RUN(test_defaults);
    T_RUN(test_types_and_errors);
    T_RUN(test_cascade);
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "warning: could not remove %s\n", tmpdir);
    T_DONE();
}
