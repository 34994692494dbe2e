/*
 * inferno/config.h - the configuration schema and cascade.
 *
 * Precedence, highest first: command-line flags > environment (INFERNO_<SECTION>_<KEY>, plus
 * INFERNO_MODELS_DIR, INFERNO_LOG_LEVEL, INFERNO_LOG_FORMAT) > ./.inferno.toml >
 * ~/.inferno.toml > $XDG_CONFIG_HOME/inferno/config.toml > built-in defaults. INFERNO_CONFIG
 * (or --config) names one extra file that sits above the other files.
 *
 * Every key is described once in the schema table (inf_config_schema). Each value remembers
 * its origin: "default", "<path>:<line>", "env INFERNO_X", or "flag --x".
 */
#ifndef INFERNO_CONFIG_H
#define INFERNO_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "inferno/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The most generation slots one server engine runs (server.parallel). */
#define INF_SERVER_MAX_PARALLEL 64

enum inf_config_type {
    INF_CFG_STRING,
    INF_CFG_INT,
    INF_CFG_BOOL,
    INF_CFG_FLOAT,
    INF_CFG_STRING_LIST, /* TOML array of strings; comma-separated in env and flags */
    INF_CFG_PATH,        /* a string; a leading "~/" expands to $HOME */
};

enum inf_config_origin {
    INF_ORIGIN_DEFAULT,
    INF_ORIGIN_FILE,
    INF_ORIGIN_ENV,
    INF_ORIGIN_FLAG,
};

struct inf_config_key {
    const char *name; /* "server.port"; top-level keys have no dot */
    enum inf_config_type type;
    const char *default_str;    /* default value in TOML-ish text: "8080", "\"127.0.0.1\"", "[]" */
    const char *description;    /* one line */
    int64_t min, max;           /* INT range (inclusive) */
    const char *const *choices; /* STRING: allowed values (NULL-terminated) or NULL */
};

struct inf_config;

/* The schema: n keys, in display order. Borrowed, static. */
const struct inf_config_key *inf_config_schema(size_t *n);
const struct inf_config_key *inf_config_schema_find(const char *name);

/* The environment variable of a key: "server.port" -> "INFERNO_SERVER_PORT". */
void inf_config_env_name(const char *key, char *buf, size_t size);

/* A configuration holding every key at its default. */
inf_status inf_config_new(struct inf_config **out, struct inf_error *err);
void inf_config_free(struct inf_config *cfg);

/*
 * Apply a TOML file (or text) on top of the current values, origin "<path>:<line>".
 * Unknown keys are warnings (logged, and counted in *n_warnings when non-NULL); a value of the
 * wrong type or out of range is an error "<path>:<line>: ..." and leaves cfg unchanged.
 */
inf_status inf_config_apply_toml(struct inf_config *cfg, const char *path, const char *text,
                                 size_t len, int *n_warnings, struct inf_error *err);
inf_status inf_config_apply_file(struct inf_config *cfg, const char *path, int *n_warnings,
                                 struct inf_error *err);

/* Apply every INFERNO_* variable of the environment that names a key (getenv). */
inf_status inf_config_apply_env(struct inf_config *cfg, struct inf_error *err);

/* Set one key from text (as written in env/flags) with the given origin and its description. */
inf_status inf_config_set(struct inf_config *cfg, const char *key, const char *text,
                          enum inf_config_origin origin, const char *origin_desc,
                          struct inf_error *err);

/* The files of the cascade, lowest precedence first (some may not exist). */
struct inf_config_files {
    char paths[5][1024];
    size_t n;
};
void inf_config_cascade_files(const char *explicit_path, struct inf_config_files *out);

/*
 * Build the whole cascade except flags: defaults, the files (lowest first), then the
 * environment. explicit_path is --config (NULL: use $INFERNO_CONFIG when set).
 */
inf_status inf_config_load(struct inf_config **out, const char *explicit_path, int *n_warnings,
                           struct inf_error *err);

/* Typed getters; asking for a key not in the schema, or with the wrong type, aborts (a bug). */
const char *inf_config_get_str(const struct inf_config *cfg, const char *key);
int64_t inf_config_get_int(const struct inf_config *cfg, const char *key);
bool inf_config_get_bool(const struct inf_config *cfg, const char *key);
double inf_config_get_float(const struct inf_config *cfg, const char *key);
/* NULL-terminated list, *n its length. Borrowed until the key is set again or cfg is freed. */
const char *const *inf_config_get_list(const struct inf_config *cfg, const char *key, size_t *n);

/* The current value as TOML text ("8080", "\"x\"", "[\"a\", \"b\"]") into buf. */
inf_status inf_config_format_value(const struct inf_config *cfg, const char *key, char *buf,
                                   size_t size);
/* Where the current value came from: "default", "/path/file.toml:12", "env INFERNO_X", "flag --x".
 */
const char *inf_config_origin_desc(const struct inf_config *cfg, const char *key);
enum inf_config_origin inf_config_origin_kind(const struct inf_config *cfg, const char *key);

#ifdef __cplusplus
}
#endif
#endif
