/*
 * toml.h - a TOML 1.0.0 parser reading from memory.
 *
 * Debian ships no C TOML library, so Inferno carries its own. The parser builds a tree of
 * tables whose keys keep their insertion order and the line/column where they were written,
 * so that the configuration loader can name file:line in its warnings and errors.
 *
 * Input is untrusted: every error is reported as INF_EPARSE with a message of the form
 * "line L, column C: <reason>" and the parser never crashes, hangs or reads out of bounds.
 * Nesting depth is capped (INF_TOML_MAX_DEPTH) so hostile input cannot exhaust the stack.
 */
#ifndef INFERNO_CONFIG_TOML_H
#define INFERNO_CONFIG_TOML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "inferno/status.h"

#define INF_TOML_MAX_DEPTH 128

enum inf_toml_type {
    INF_TOML_STRING,
    INF_TOML_INTEGER,
    INF_TOML_FLOAT,
    INF_TOML_BOOL,
    INF_TOML_DATETIME,       /* offset date-time: 1979-05-27T07:32:00Z / -07:00 */
    INF_TOML_DATETIME_LOCAL, /* 1979-05-27T07:32:00 */
    INF_TOML_DATE_LOCAL,     /* 1979-05-27 */
    INF_TOML_TIME_LOCAL,     /* 07:32:00 */
    INF_TOML_ARRAY,
    INF_TOML_TABLE,
};

struct inf_toml_datetime {
    int year, month, day;     /* date part (unused for TIME_LOCAL) */
    int hour, minute, second; /* time part (unused for DATE_LOCAL) */
    int32_t nanosecond;       /* fractional seconds, truncated to nanoseconds */
    int frac_digits;          /* digits written after '.', 0 when none (max 9 kept) */
    int offset_minutes;       /* DATETIME only: offset east of UTC; Z is 0 */
};

struct inf_toml_table;

struct inf_toml_value {
    enum inf_toml_type type;
    uint32_t line, column; /* 1-based position of the value's first character */
    union {
        struct {
            char *ptr; /* NUL-terminated; may contain embedded NULs (\u0000): use len */
            size_t len;
        } str;
        int64_t integer;
        double flt;
        bool boolean;
        struct inf_toml_datetime dt;
        struct {
            struct inf_toml_value **items;
            size_t n;
        } arr;
        struct inf_toml_table *table;
    } u;
};

struct inf_toml_kv {
    char *key; /* NUL-terminated, decoded (quotes and escapes removed) */
    size_t key_len;
    uint32_t line, column; /* where the key (last segment of a dotted key) was written */
    struct inf_toml_value *value;
};

struct inf_toml_table {
    struct inf_toml_kv *kvs; /* in insertion order */
    size_t n;
    size_t cap;
    uint32_t line, column; /* header position for [tables], 0 for the root/implicit */
    unsigned flags;        /* parser bookkeeping (implicit, defined, inline, dotted…) */
};

/*
 * Parse a TOML document of len bytes (need not be NUL-terminated). On success *out is a
 * root table the caller frees with inf_toml_free(). On failure *out is NULL and err holds
 * "line L, column C: reason".
 */
inf_status inf_toml_parse(const char *src, size_t len, struct inf_toml_table **out,
                          struct inf_error *err);

/* Free a tree returned by inf_toml_parse. NULL is a no-op. */
void inf_toml_free(struct inf_toml_table *root);

/* Look up a key (exact bytes) in one table; NULL when absent. Borrowed until the tree is freed. */
const struct inf_toml_kv *inf_toml_table_find(const struct inf_toml_table *t, const char *key,
                                              size_t key_len);

/* "string", "integer", "float", "bool", "datetime", "datetime-local", "date-local",
 * "time-local", "array", "table" (the toml-test tag names). */
const char *inf_toml_type_name(enum inf_toml_type type);

#endif
