/*
 * fuzz_toml.c - libFuzzer target for the TOML parser.
 *
 * Parses the input (capped at 1 MiB); on success walks the whole tree, reading every string
 * and checking the invariants the configuration loader relies on, then frees it. On failure
 * checks that the error is INF_EPARSE (or INF_ENOMEM) with a "line L, column C: " message.
 * A broken invariant aborts, which the fuzzer reports as a crash.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/toml.h"
#include "fuzz.h"

#define FUZZ_MAX_INPUT (1u << 20)

static size_t walk_table(const struct inf_toml_table *t, int depth);

/* Returns a checksum of what it read so the compiler cannot drop the reads. */
static size_t walk_value(const struct inf_toml_value *v, int depth)
{
    size_t sum = 0;

    CHECK(v != NULL);
    /* containers nest at most INF_TOML_MAX_DEPTH deep below the root */
    CHECK(depth <= INF_TOML_MAX_DEPTH || (v->type != INF_TOML_ARRAY && v->type != INF_TOML_TABLE));
    CHECK(v->line >= 1 && v->column >= 1);
    CHECK(strcmp(inf_toml_type_name(v->type), "unknown") != 0);
    switch (v->type) {
    case INF_TOML_STRING:
        CHECK(v->u.str.ptr != NULL);
        CHECK(v->u.str.ptr[v->u.str.len] == '\0');
        for (size_t i = 0; i < v->u.str.len; i++)
            sum += (unsigned char)v->u.str.ptr[i];
        break;
    case INF_TOML_ARRAY:
        CHECK(v->u.arr.n == 0 || v->u.arr.items != NULL);
        for (size_t i = 0; i < v->u.arr.n; i++)
            sum += walk_value(v->u.arr.items[i], depth + 1);
        break;
    case INF_TOML_TABLE:
        sum += walk_table(v->u.table, depth);
        break;
    case INF_TOML_DATETIME:
    case INF_TOML_DATETIME_LOCAL:
    case INF_TOML_DATE_LOCAL:
    case INF_TOML_TIME_LOCAL:
        CHECK(v->u.dt.hour >= 0 && v->u.dt.hour <= 23);
        CHECK(v->u.dt.minute >= 0 && v->u.dt.minute <= 59);
        CHECK(v->u.dt.second >= 0 && v->u.dt.second <= 60);
        CHECK(v->u.dt.nanosecond >= 0 && v->u.dt.nanosecond < 1000000000);
        CHECK(v->u.dt.frac_digits >= 0 && v->u.dt.frac_digits <= 9);
        if (v->type != INF_TOML_TIME_LOCAL)
            CHECK(v->u.dt.month >= 1 && v->u.dt.month <= 12 && v->u.dt.day >= 1 &&
                  v->u.dt.day <= 31);
        sum += (size_t)v->u.dt.year;
        break;
    default:
        sum += (size_t)v->u.integer;
        break;
    }
    return sum;
}

static size_t walk_table(const struct inf_toml_table *t, int depth)
{
    size_t sum = 0;

    CHECK(t != NULL);
    CHECK(t->n <= t->cap);
    for (size_t i = 0; i < t->n; i++) {
        const struct inf_toml_kv *kv = &t->kvs[i];

        CHECK(kv->key != NULL && kv->key[kv->key_len] == '\0');
        CHECK(kv->line >= 1 && kv->column >= 1);
        /* keys are unique, so a lookup finds this very entry (linear: small tables only) */
        if (t->n <= 256)
            CHECK(inf_toml_table_find(t, kv->key, kv->key_len) == kv);
        sum += kv->key_len + walk_value(kv->value, depth + 1);
    }
    return sum;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct inf_toml_table *root = NULL;
    struct inf_error err = {0};
    static volatile size_t sink;
    inf_status rc;

    if (size > FUZZ_MAX_INPUT)
        size = FUZZ_MAX_INPUT;
    rc = inf_toml_parse((const char *)data, size, &root, &err);
    if (rc == INF_OK) {
        CHECK(root != NULL);
        sink = walk_table(root, 0);
        inf_toml_free(root);
    } else {
        CHECK(root == NULL);
        CHECK(rc == INF_EPARSE || rc == INF_ENOMEM);
        CHECK(err.code == rc);
        if (rc == INF_EPARSE)
            CHECK(strncmp(err.msg, "line ", 5) == 0 && strstr(err.msg, ", column ") != NULL);
    }
    (void)sink;
    return 0;
}
