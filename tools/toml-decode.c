/*
 * toml-decode - the toml-test decoder interface for Inferno's TOML parser.
 *
 * Reads a TOML document from stdin (any bytes, NULs included). On success prints the document
 * as toml-test's tagged JSON on stdout and exits 0: tables become objects, arrays arrays, and
 * every other value {"type": T, "value": "<text>"}. On a parse error prints the message on
 * stderr and exits 1. Other failures (reading stdin, memory) exit 2.
 *
 *   toml-decode < file.toml
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/toml.h"
#include "core/escape.h"

static void put_json_string(FILE *f, const char *s, size_t n)
{
    fputc('"', f);
    inf__escape_json_write(f, s, n);
    fputc('"', f);
}

/* The shortest %g spelling that reads back as the same double. */
static void format_float(char *buf, size_t n, double x)
{
    if (isnan(x)) {
        snprintf(buf, n, "nan");
        return;
    }
    if (isinf(x)) {
        snprintf(buf, n, x < 0 ? "-inf" : "inf");
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, n, "%.*g", prec, x);
        if (strtod(buf, NULL) == x)
            return;
    }
}

static void format_datetime(char *buf, size_t n, enum inf_toml_type type,
                            const struct inf_toml_datetime *dt)
{
    size_t o = 0;

    if (type != INF_TOML_TIME_LOCAL)
        o += (size_t)snprintf(buf + o, n - o, "%04d-%02d-%02d", dt->year, dt->month, dt->day);
    if (type == INF_TOML_DATE_LOCAL)
        return;
    if (o)
        buf[o++] = 'T';
    o += (size_t)snprintf(buf + o, n - o, "%02d:%02d:%02d", dt->hour, dt->minute, dt->second);
    if (dt->frac_digits > 0) {
        char frac[16];
        snprintf(frac, sizeof(frac), "%09d", (int)dt->nanosecond);
        o += (size_t)snprintf(buf + o, n - o, ".%.*s", dt->frac_digits, frac);
    }
    if (type == INF_TOML_DATETIME) {
        int off = dt->offset_minutes;
        if (off == 0)
            snprintf(buf + o, n - o, "Z");
        else
            snprintf(buf + o, n - o, "%c%02d:%02d", off < 0 ? '-' : '+', abs(off) / 60,
                     abs(off) % 60);
    }
}

static void put_table(FILE *f, const struct inf_toml_table *t);

/* Recursion is bounded by the parser's depth limit. */
static void put_value(FILE *f, const struct inf_toml_value *v)
{
    char buf[64];

    switch (v->type) {
    case INF_TOML_TABLE:
        put_table(f, v->u.table);
        return;
    case INF_TOML_ARRAY:
        fputc('[', f);
        for (size_t i = 0; i < v->u.arr.n; i++) {
            if (i)
                fputc(',', f);
            put_value(f, v->u.arr.items[i]);
        }
        fputc(']', f);
        return;
    case INF_TOML_STRING:
        fputs("{\"type\":\"string\",\"value\":", f);
        put_json_string(f, v->u.str.ptr, v->u.str.len);
        fputc('}', f);
        return;
    case INF_TOML_INTEGER:
        snprintf(buf, sizeof(buf), "%" PRId64, v->u.integer);
        break;
    case INF_TOML_FLOAT:
        format_float(buf, sizeof(buf), v->u.flt);
        break;
    case INF_TOML_BOOL:
        snprintf(buf, sizeof(buf), "%s", v->u.boolean ? "true" : "false");
        break;
    case INF_TOML_DATETIME:
    case INF_TOML_DATETIME_LOCAL:
    case INF_TOML_DATE_LOCAL:
    case INF_TOML_TIME_LOCAL:
        format_datetime(buf, sizeof(buf), v->type, &v->u.dt);
        break;
    }
    fprintf(f, "{\"type\":\"%s\",\"value\":\"%s\"}", inf_toml_type_name(v->type), buf);
}

static void put_table(FILE *f, const struct inf_toml_table *t)
{
    fputc('{', f);
    for (size_t i = 0; i < t->n; i++) {
        if (i)
            fputc(',', f);
        put_json_string(f, t->kvs[i].key, t->kvs[i].key_len);
        fputc(':', f);
        put_value(f, t->kvs[i].value);
    }
    fputc('}', f);
}

int main(void)
{
    struct inf_error err = {0};
    struct inf_toml_table *root = NULL;
    char *buf = NULL;
    size_t len = 0, cap = 0;
    int rc = 2;

    for (;;) {
        size_t got;

        if (cap - len < 65536) {
            size_t ncap = cap ? cap * 2 : 1 << 16;
            char *nb = realloc(buf, ncap);
            if (!nb) {
                fprintf(stderr, "toml-decode: out of memory\n");
                goto out;
            }
            buf = nb;
            cap = ncap;
        }
        got = fread(buf + len, 1, cap - len, stdin);
        len += got;
        if (got == 0)
            break;
    }
    if (ferror(stdin)) {
        fprintf(stderr, "toml-decode: cannot read stdin\n");
        goto out;
    }
    if (inf_toml_parse(buf, len, &root, &err) != INF_OK) {
        fprintf(stderr, "%s\n", inf_error_message(&err));
        rc = err.code == INF_EPARSE ? 1 : 2;
        goto out;
    }
    put_table(stdout, root);
    fputc('\n', stdout);
    rc = fflush(stdout) == 0 ? 0 : 2;
out:
    inf_toml_free(root);
    free(buf);
    return rc;
}
