/*
 * inferno/log.h - levelled, thread-safe logging to stderr.
 *
 * Formats: pretty (coloured when stderr is a terminal, the default there), compact (one plain
 * line: "ts level module: msg key=value…"), json (one object per line with ts, level, module,
 * msg and the fields). Configure once at start-up; logging calls are safe from any thread.
 */
#ifndef INFERNO_LOG_H
#define INFERNO_LOG_H

#include <stdbool.h>
#include <stdio.h>

#include "inferno/status.h"

#ifdef __cplusplus
extern "C" {
#endif

enum inf_log_level {
    INF_LOG_TRACE,
    INF_LOG_DEBUG,
    INF_LOG_INFO,
    INF_LOG_WARN,
    INF_LOG_ERROR,
    INF_LOG_OFF,
};

enum inf_log_format {
    INF_LOG_PRETTY,
    INF_LOG_COMPACT,
    INF_LOG_JSON,
};

/* Parse "trace|debug|info|warn|error|off" (case-insensitive; "warning" accepted). */
inf_status inf_log_level_parse(const char *s, enum inf_log_level *out);
/* Parse "pretty|compact|json" (case-insensitive). */
inf_status inf_log_format_parse(const char *s, enum inf_log_format *out);
const char *inf_log_level_name(enum inf_log_level level);
const char *inf_log_format_name(enum inf_log_format format);

/* Set the threshold and format. Defaults: info, pretty on a terminal else compact. */
void inf_log_set_level(enum inf_log_level level);
void inf_log_set_format(enum inf_log_format format);
enum inf_log_level inf_log_get_level(void);
/* Force colours on/off for the pretty format (default: on when stderr is a tty and NO_COLOR unset).
 */
void inf_log_set_color(bool on);
/* Redirect output (tests); NULL restores stderr. The stream is not closed by the logger. */
void inf_log_set_stream(FILE *stream);

bool inf_log_enabled(enum inf_log_level level);

/*
 * Log one message. fields is NULL or a NULL-terminated list of alternating key and value
 * strings, printed as key=value (compact/pretty) or as extra JSON members (json).
 */
void inf_log_fields(enum inf_log_level level, const char *module, const char *const *fields,
                    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void inf_log(enum inf_log_level level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define INF_LOG_TRACE(mod, ...) inf_log(INF_LOG_TRACE, mod, __VA_ARGS__)
#define INF_LOG_DEBUG(mod, ...) inf_log(INF_LOG_DEBUG, mod, __VA_ARGS__)
#define INF_LOG_INFO(mod, ...)  inf_log(INF_LOG_INFO, mod, __VA_ARGS__)
#define INF_LOG_WARN(mod, ...)  inf_log(INF_LOG_WARN, mod, __VA_ARGS__)
#define INF_LOG_ERROR(mod, ...) inf_log(INF_LOG_ERROR, mod, __VA_ARGS__)

#ifdef __cplusplus
}
#endif
#endif
