/*
 * status.c - status codes and error contexts.
 *
 * src/core/ owns what every layer may use and nothing that knows of models: status codes and
 * error contexts (status.c), logging (log.c), CPU features (cpu.c), and small shared helpers —
 * growable buffers (buf.c), the bump arena (arena.c), UTF-8 (utf8.c), the clock (clock.h), JSON
 * escaping (escape.c), files (files.c), edit distance (text.c).
 */
#include "inferno/status.h"

#include <stdio.h>
#include <string.h>

const char *inf_strerror(inf_status status)
{
    switch (status) {
#define INF__STATUS_DESC(name, value, desc)                                                        \
    case INF_##name:                                                                               \
        return desc;
        INF_STATUS_MAP(INF__STATUS_DESC)
#undef INF__STATUS_DESC
    }
    return "unknown status";
}

const char *inf_status_name(inf_status status)
{
    switch (status) {
#define INF__STATUS_NAME(name, value, desc)                                                        \
    case INF_##name:                                                                               \
        return #name;
        INF_STATUS_MAP(INF__STATUS_NAME)
#undef INF__STATUS_NAME
    }
    return "UNKNOWN";
}

void inf_error_clear(struct inf_error *err)
{
    if (!err)
        return;
    err->code = INF_OK;
    err->msg[0] = '\0';
}

inf_status inf_error_setv(struct inf_error *err, inf_status code, const char *fmt, va_list ap)
{
    if (!err)
        return code;
    err->code = code;
    if (fmt)
        vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    else
        snprintf(err->msg, sizeof(err->msg), "%s", inf_strerror(code));
    return code;
}

inf_status inf_error_setf(struct inf_error *err, inf_status code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    inf_error_setv(err, code, fmt, ap);
    va_end(ap);
    return code;
}

void inf_error_prefix(struct inf_error *err, const char *fmt, ...)
{
    char prefix[256];
    char old[INF_ERROR_MSG_MAX];
    va_list ap;

    if (!err)
        return;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof(prefix), fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof(old));
    /* truncation of an over-long message is acceptable; the return value says by how much */
    if (snprintf(err->msg, sizeof(err->msg), "%s: %s", prefix, old) < 0)
        err->msg[0] = '\0';
}

const char *inf_error_message(const struct inf_error *err)
{
    if (!err)
        return "";
    if (err->msg[0])
        return err->msg;
    return inf_strerror(err->code);
}
