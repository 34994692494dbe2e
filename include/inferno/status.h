/*
 * inferno/status.h - status codes and the error context shared by the whole library.
 *
 * Every function that can fail returns an inf_status (INF_OK == 0, errors are negative) and
 * writes a human-readable message into a caller-provided struct inf_error (which may be NULL
 * when the caller does not want the text). Messages are lower-case and quote their subject
 * as '%s', in the style of git.
 */
#ifndef INFERNO_STATUS_H
#define INFERNO_STATUS_H

#include <stdarg.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* X(name, value, description): the one list from which the enum and inf_strerror() come. */
#define INF_STATUS_MAP(X)                                                                          \
    X(OK, 0, "success")                                                                            \
    X(ENOMEM, -1, "out of memory")                                                                 \
    X(EINVAL, -2, "invalid argument")                                                              \
    X(EIO, -3, "input/output error")                                                               \
    X(EPARSE, -4, "parse error")                                                                   \
    X(EFORMAT, -5, "invalid file format")                                                          \
    X(EUNSUPPORTED, -6, "not supported")                                                           \
    X(ENOTFOUND, -7, "not found")                                                                  \
    X(ERANGE, -8, "value out of range")                                                            \
    X(ETYPE, -9, "wrong type")                                                                     \
    X(EEXIST, -10, "already exists")                                                               \
    X(ELIMIT, -11, "limit exceeded")                                                               \
    X(EUSAGE, -12, "usage error")                                                                  \
    X(ENOTIMPL, -13, "not available yet")                                                          \
    X(ECANCELED, -14, "canceled")                                                                  \
    X(EINTERNAL, -15, "internal error")

typedef enum inf_status {
#define INF__STATUS_ENUM(name, value, desc) INF_##name = (value),
    INF_STATUS_MAP(INF__STATUS_ENUM)
#undef INF__STATUS_ENUM
} inf_status;

/* A short description of a status code; never NULL ("unknown status" for foreign values). */
const char *inf_strerror(inf_status status);

/* The name of a status code ("EPARSE"); never NULL. */
const char *inf_status_name(inf_status status);

#define INF_ERROR_MSG_MAX 512

/* Caller-owned error context. Zero-initialise it (or call inf_error_clear) before use. */
struct inf_error {
    inf_status code;
    char msg[INF_ERROR_MSG_MAX];
};

/* Reset an error context to INF_OK with an empty message. err may be NULL. */
void inf_error_clear(struct inf_error *err);

/*
 * Record a failure: sets err->code and formats the message. err may be NULL, in which case
 * nothing is recorded. The value is code, so callers can write `return inf_error_set(err, ...)`
 * (a macro, so that static analysers see the code that is returned).
 */
inf_status inf_error_setf(struct inf_error *err, inf_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static inline inf_status inf__error_code(inf_status code, inf_status recorded)
{
    (void)recorded;
    return code;
}
#define inf_error_set(err, code, ...)                                                              \
    inf__error_code((code), inf_error_setf((err), (code), __VA_ARGS__))
inf_status inf_error_setv(struct inf_error *err, inf_status code, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

/* Prefix the existing message with "<prefix>: " (e.g. a file name). err may be NULL. */
void inf_error_prefix(struct inf_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The message, or the status description when no message was set. */
const char *inf_error_message(const struct inf_error *err);

#ifdef __cplusplus
}
#endif
#endif
