/* log.c - levelled, thread-safe logging to stderr in pretty, compact or json form. */
#include "inferno/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "core/escape.h"

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static enum inf_log_level log_level = INF_LOG_INFO;
static int log_format = -1; /* -1: decide on first use (pretty on a tty, else compact) */
static int log_color = -1;  /* -1: decide on first use */
static FILE *log_stream;

static const char *const level_names[] = {"trace", "debug", "info", "warn", "error", "off"};
static const char *const format_names[] = {"pretty", "compact", "json"};

/* The index of s in names[0..n) (ASCII case ignored), or -1. */
static int name_index(const char *const *names, int n, const char *s)
{
    for (int i = 0; s && i < n; i++)
        if (strcasecmp(s, names[i]) == 0)
            return i;
    return -1;
}

inf_status inf_log_level_parse(const char *s, enum inf_log_level *out)
{
    int i = name_index(level_names, INF_LOG_OFF + 1, s);
    if (i < 0 && s && strcasecmp(s, "warning") == 0)
        i = INF_LOG_WARN;
    if (i < 0)
        return INF_EINVAL;
    *out = (enum inf_log_level)i;
    return INF_OK;
}

inf_status inf_log_format_parse(const char *s, enum inf_log_format *out)
{
    int i = name_index(format_names, INF_LOG_JSON + 1, s);
    if (i < 0)
        return INF_EINVAL;
    *out = (enum inf_log_format)i;
    return INF_OK;
}

const char *inf_log_level_name(enum inf_log_level level)
{
    return (unsigned)level <= INF_LOG_OFF ? level_names[level] : "?";
}

const char *inf_log_format_name(enum inf_log_format format)
{
    return (unsigned)format <= INF_LOG_JSON ? format_names[format] : "?";
}

void inf_log_set_level(enum inf_log_level level)
{
    pthread_mutex_lock(&log_lock);
    log_level = level;
    pthread_mutex_unlock(&log_lock);
}

enum inf_log_level inf_log_get_level(void)
{
    pthread_mutex_lock(&log_lock);
    enum inf_log_level l = log_level;
    pthread_mutex_unlock(&log_lock);
    return l;
}

void inf_log_set_format(enum inf_log_format format)
{
    pthread_mutex_lock(&log_lock);
    log_format = (int)format;
    pthread_mutex_unlock(&log_lock);
}

void inf_log_set_color(bool on)
{
    pthread_mutex_lock(&log_lock);
    log_color = on;
    pthread_mutex_unlock(&log_lock);
}

void inf_log_set_stream(FILE *stream)
{
    pthread_mutex_lock(&log_lock);
    log_stream = stream;
    pthread_mutex_unlock(&log_lock);
}

bool inf_log_enabled(enum inf_log_level level)
{
    return level >= inf_log_get_level() && level < INF_LOG_OFF;
}

/* Write s as the inside of a JSON string. */
static void json_escape(FILE *f, const char *s)
{
    inf__escape_json_write(f, s, strlen(s));
}

/* Quote a field value for the text formats when it holds spaces, quotes or '='. */
static void text_value(FILE *f, const char *s)
{
    if (*s && !strpbrk(s, " \t\n\"=")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    json_escape(f, s);
    fputc('"', f);
}

static void log_write(enum inf_log_level level, const char *module, const char *const *fields,
                      const char *msg)
{
    struct timeval tv;
    struct tm tm;
    char ts[40];

    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    size_t n = strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + n, sizeof(ts) - n, ".%03dZ", (int)(tv.tv_usec / 1000));

    pthread_mutex_lock(&log_lock);
    FILE *f = log_stream ? log_stream : stderr;
    if (log_format < 0)
        log_format = isatty(fileno(stderr)) ? INF_LOG_PRETTY : INF_LOG_COMPACT;
    if (log_color < 0)
        log_color = isatty(fileno(stderr)) && !getenv("NO_COLOR");
    if (!module)
        module = "inferno";

    if (log_format == INF_LOG_JSON) {
        fprintf(f, "{\"ts\":\"%s\",\"level\":\"%s\",\"module\":\"", ts, level_names[level]);
        json_escape(f, module);
        fputs("\",\"msg\":\"", f);
        json_escape(f, msg);
        fputc('"', f);
        for (size_t i = 0; fields && fields[i] && fields[i + 1]; i += 2) {
            fputs(",\"", f);
            json_escape(f, fields[i]);
            fputs("\":\"", f);
            json_escape(f, fields[i + 1]);
            fputc('"', f);
        }
        fputs("}\n", f);
    } else {
        bool color = log_format == INF_LOG_PRETTY && log_color && !log_stream;
        static const char *const colors[] = {"\033[90m", "\033[36m", "\033[32m", "\033[33m",
                                             "\033[31m"};
        if (log_format == INF_LOG_PRETTY) {
            /* pretty: time of day only, aligned level, module dimmed */
            if (color)
                fprintf(f, "\033[2m%.12s\033[0m %s%-5s\033[0m \033[2m%s:\033[0m %s", ts + 11,
                        colors[level], level_names[level], module, msg);
            else
                fprintf(f, "%.12s %-5s %s: %s", ts + 11, level_names[level], module, msg);
        } else {
            fprintf(f, "%s %s %s: %s", ts, level_names[level], module, msg);
        }
        for (size_t i = 0; fields && fields[i] && fields[i + 1]; i += 2) {
            fprintf(f, " %s=", fields[i]);
            text_value(f, fields[i + 1]);
        }
        fputc('\n', f);
    }
    fflush(f);
    pthread_mutex_unlock(&log_lock);
}

__attribute__((format(printf, 4, 0))) static void log_v(enum inf_log_level level,
                                                        const char *module,
                                                        const char *const *fields, const char *fmt,
                                                        va_list ap)
{
    char stackbuf[1024];
    char *msg = stackbuf;
    va_list ap2;

    if (!inf_log_enabled(level))
        return;
    va_copy(ap2, ap);
    int n = vsnprintf(stackbuf, sizeof(stackbuf), fmt, ap);
    if (n >= (int)sizeof(stackbuf)) {
        char *big = malloc((size_t)n + 1);
        if (big) {
            vsnprintf(big, (size_t)n + 1, fmt, ap2);
            msg = big;
        }
    }
    va_end(ap2);
    log_write(level, module, fields, msg);
    if (msg != stackbuf)
        free(msg);
}

void inf_log_fields(enum inf_log_level level, const char *module, const char *const *fields,
                    const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_v(level, module, fields, fmt, ap);
    va_end(ap);
}

void inf_log(enum inf_log_level level, const char *module, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_v(level, module, NULL, fmt, ap);
    va_end(ap);
}
