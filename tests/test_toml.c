/* test_toml.c - unit tests of the TOML parser's API (the toml-test suite runs in toml_suite). */
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/toml.h"
#include "t.h"

/* Parse a NUL-terminated document; NULL on failure (err holds the message). */
static struct inf_toml_table *parse(const char *doc, struct inf_error *err)
{
    struct inf_toml_table *root = NULL;

    inf_error_clear(err);
    if (inf_toml_parse(doc, strlen(doc), &root, err) != INF_OK)
        return NULL;
    return root;
}

static const struct inf_toml_value *get(const struct inf_toml_table *t, const char *key)
{
    const struct inf_toml_kv *kv = inf_toml_table_find(t, key, strlen(key));
    return kv ? kv->value : NULL;
}

/* Expect doc to fail with INF_EPARSE and a message containing want. */
static void expect_error(const char *doc, const char *want)
{
    struct inf_error err;
    struct inf_toml_table *root = (struct inf_toml_table *)1;
    inf_status rc;

    inf_error_clear(&err);
    rc = inf_toml_parse(doc, strlen(doc), &root, &err);
    T_EQ_INT(rc, INF_EPARSE);
    T_EQ_INT(err.code, INF_EPARSE);
    T_OK(root == NULL);
    T_CONTAINS(err.msg, want);
    if (rc == INF_OK)
        inf_toml_free(root);
}

static void expect_ok(const char *doc)
{
    struct inf_error err;
    struct inf_toml_table *root = parse(doc, &err);

    T_OK(root != NULL);
    if (!root)
        fprintf(stderr, "  unexpected error: %s\n  document: %s\n", err.msg, doc);
    inf_toml_free(root);
}

static void test_scalar_types(void)
{
    static const char doc[] = "s = \"hi\\tthere\"\n"
                              "lit = 'C:\\path'\n"
                              "i = -42\n"
                              "hex = 0xDEAD_beef\n"
                              "oct = 0o755\n"
                              "bin = 0b1010\n"
                              "f = 6.626e-34\n"
                              "finf = -inf\n"
                              "fnan = nan\n"
                              "b = true\n"
                              "odt = 1979-05-27T07:32:00.999999-07:30\n"
                              "ldt = 1979-05-27 07:32:00\n"
                              "ld = 2000-02-29\n"
                              "lt = 00:32:00.5\n";
    struct inf_error err;
    struct inf_toml_table *root = parse(doc, &err);
    const struct inf_toml_value *v;

    T_OK(root != NULL);
    if (!root)
        return;
    T_EQ_INT(root->n, 14);
    T_EQ_STR(root->kvs[0].key, "s"); /* insertion order */
    T_EQ_STR(root->kvs[13].key, "lt");

    v = get(root, "s");
    T_EQ_INT(v->type, INF_TOML_STRING);
    T_EQ_STR(v->u.str.ptr, "hi\tthere");
    T_EQ_INT(v->u.str.len, 8);
    T_EQ_STR(get(root, "lit")->u.str.ptr, "C:\\path");
    v = get(root, "i");
    T_EQ_INT(v->type, INF_TOML_INTEGER);
    T_EQ_INT(v->u.integer, -42);
    T_EQ_INT(get(root, "hex")->u.integer, 0xDEADBEEF);
    T_EQ_INT(get(root, "oct")->u.integer, 0755);
    T_EQ_INT(get(root, "bin")->u.integer, 10);
    v = get(root, "f");
    T_EQ_INT(v->type, INF_TOML_FLOAT);
    T_NEAR(v->u.flt / 6.626e-34, 1.0, 1e-12);
    T_OK(isinf(get(root, "finf")->u.flt) && get(root, "finf")->u.flt < 0);
    T_OK(isnan(get(root, "fnan")->u.flt));
    v = get(root, "b");
    T_EQ_INT(v->type, INF_TOML_BOOL);
    T_OK(v->u.boolean);

    v = get(root, "odt");
    T_EQ_INT(v->type, INF_TOML_DATETIME);
    T_EQ_INT(v->u.dt.year, 1979);
    T_EQ_INT(v->u.dt.month, 5);
    T_EQ_INT(v->u.dt.day, 27);
    T_EQ_INT(v->u.dt.hour, 7);
    T_EQ_INT(v->u.dt.minute, 32);
    T_EQ_INT(v->u.dt.second, 0);
    T_EQ_INT(v->u.dt.nanosecond, 999999000);
    T_EQ_INT(v->u.dt.frac_digits, 6);
    T_EQ_INT(v->u.dt.offset_minutes, -450);
    v = get(root, "ldt");
    T_EQ_INT(v->type, INF_TOML_DATETIME_LOCAL);
    T_EQ_INT(v->u.dt.frac_digits, 0);
    v = get(root, "ld");
    T_EQ_INT(v->type, INF_TOML_DATE_LOCAL);
    T_EQ_INT(v->u.dt.day, 29);
    v = get(root, "lt");
    T_EQ_INT(v->type, INF_TOML_TIME_LOCAL);
    T_EQ_INT(v->u.dt.nanosecond, 500000000);
    T_EQ_INT(v->u.dt.frac_digits, 1);
    inf_toml_free(root);
}

static void test_integer_limits(void)
{
    struct inf_error err;
    struct inf_toml_table *root =
        parse("max = 9_223_372_036_854_775_807\nmin = -9223372036854775808\n"
              "hmax = 0x7fffffffffffffff\n",
              &err);

    T_OK(root != NULL);
    if (root) {
        T_EQ_INT(get(root, "max")->u.integer, INT64_MAX);
        T_EQ_INT(get(root, "min")->u.integer, INT64_MIN);
        T_EQ_INT(get(root, "hmax")->u.integer, INT64_MAX);
    }
    inf_toml_free(root);
    expect_error("x = 9223372036854775808\n", "line 1, column 5: integer does not fit");
    expect_error("x = -9223372036854775809\n", "does not fit in 64 bits");
    expect_error("x = 0x8000000000000000\n", "does not fit in 64 bits");
    expect_error("x = 0b"
                 "11111111111111111111111111111111111111111111111111111111111111111\n",
                 "does not fit");
}

static void test_tables_and_positions(void)
{
    static const char doc[] = "# comment\n"
                              "title = \"x\"\n"
                              "\n"
                              "[server]\n"
                              "  port = 8080\n"
                              "  http.timeout = 30 # dotted\n"
                              "[[model]]\n"
                              "name = 'a'\n"
                              "[[model]]\n"
                              "name = 'b'\n"
                              "tags = [ 1, 'two', [3], {four = 4} ]\n"
                              "\"é\" = { x = 1, y.z = 2 }\n";
    struct inf_error err;
    struct inf_toml_table *root = parse(doc, &err);
    const struct inf_toml_kv *kv;
    const struct inf_toml_value *v, *models;
    const struct inf_toml_table *server, *m1;

    T_OK(root != NULL);
    if (!root) {
        fprintf(stderr, "  error: %s\n", err.msg);
        return;
    }
    kv = inf_toml_table_find(root, "title", 5);
    T_OK(kv != NULL);
    T_EQ_INT(kv->line, 2);
    T_EQ_INT(kv->column, 1);
    T_EQ_INT(kv->value->line, 2);
    T_EQ_INT(kv->value->column, 9);

    v = get(root, "server");
    T_OK(v && v->type == INF_TOML_TABLE);
    server = v->u.table;
    T_EQ_INT(server->line, 4);
    T_EQ_INT(server->column, 1);
    kv = inf_toml_table_find(server, "port", 4);
    T_EQ_INT(kv->line, 5);
    T_EQ_INT(kv->column, 3);
    T_EQ_INT(kv->value->column, 10);
    v = get(server, "http");
    T_OK(v && v->type == INF_TOML_TABLE);
    kv = inf_toml_table_find(v->u.table, "timeout", 7);
    T_EQ_INT(kv->value->u.integer, 30);
    T_EQ_INT(kv->line, 6);
    T_EQ_INT(kv->column, 8);

    models = get(root, "model");
    T_OK(models && models->type == INF_TOML_ARRAY);
    T_EQ_INT(models->u.arr.n, 2);
    m1 = models->u.arr.items[1]->u.table;
    T_EQ_INT(m1->line, 9);
    T_EQ_STR(get(m1, "name")->u.str.ptr, "b");
    v = get(m1, "tags");
    T_EQ_INT(v->u.arr.n, 4);
    T_EQ_INT(v->u.arr.items[0]->type, INF_TOML_INTEGER);
    T_EQ_INT(v->u.arr.items[1]->type, INF_TOML_STRING);
    T_EQ_INT(v->u.arr.items[1]->column, 13);
    T_EQ_INT(v->u.arr.items[2]->type, INF_TOML_ARRAY);
    T_EQ_INT(v->u.arr.items[3]->type, INF_TOML_TABLE);

    /* columns count characters: "é" is two bytes but one column */
    kv = inf_toml_table_find(m1, "\xC3\xA9", 2);
    T_OK(kv != NULL);
    if (kv) {
        T_EQ_INT(kv->line, 12);
        T_EQ_INT(kv->column, 1);
        T_EQ_INT(kv->value->column, 7);
        T_EQ_INT(kv->value->type, INF_TOML_TABLE);
        v = get(kv->value->u.table, "y");
        T_OK(v && v->type == INF_TOML_TABLE);
    }
    inf_toml_free(root);
}

static void test_find(void)
{
    struct inf_error err;
    struct inf_toml_table *root = parse("abc = 1\nab = 2\n\"\" = 3\n", &err);

    T_OK(root != NULL);
    if (!root)
        return;
    T_EQ_INT(inf_toml_table_find(root, "ab", 2)->value->u.integer, 2);
    T_EQ_INT(inf_toml_table_find(root, "abc", 3)->value->u.integer, 1);
    T_EQ_INT(inf_toml_table_find(root, "abcd", 2)->value->u.integer, 2); /* exact bytes */
    T_EQ_INT(inf_toml_table_find(root, "", 0)->value->u.integer, 3);
    T_OK(inf_toml_table_find(root, "a", 1) == NULL);
    T_OK(inf_toml_table_find(root, "ABC", 3) == NULL);
    T_OK(inf_toml_table_find(NULL, "abc", 3) == NULL);
    inf_toml_free(root);
    inf_toml_free(NULL);
}

static void test_strings(void)
{
    struct inf_error err;
    struct inf_toml_table *root;
    const struct inf_toml_value *v;

    root = parse("nul = \"a\\u0000b\"\n"
                 "\"key\\u0000x\" = 1\n"
                 "emoji = \"\\U0001F600\"\n"
                 "ml = \"\"\"\n  one \\\n    two\r\n\"\"\"\n"
                 "lit = '''\n'quoted' \\n'''\n"
                 "q = \"\"\"\"\"x\"\"\"\"\"\n",
                 &err);
    T_OK(root != NULL);
    if (!root) {
        fprintf(stderr, "  error: %s\n", err.msg);
        return;
    }
    v = get(root, "nul");
    T_EQ_INT(v->u.str.len, 3);
    T_OK(memcmp(v->u.str.ptr, "a\0b", 4) == 0);
    T_OK(inf_toml_table_find(root, "key\0x", 5) != NULL);
    T_OK(inf_toml_table_find(root, "key", 3) == NULL);
    T_EQ_STR(get(root, "emoji")->u.str.ptr, "\xF0\x9F\x98\x80");
    T_EQ_STR(get(root, "ml")->u.str.ptr, "  one two\n");
    T_EQ_STR(get(root, "lit")->u.str.ptr, "'quoted' \\n");
    T_EQ_STR(get(root, "q")->u.str.ptr, "\"\"x\"\"");
    inf_toml_free(root);
    /* a backslash is not a bare-key character */
    expect_error("nul = 1\nk\\u = 1\n", "line 2, column 2: expected '=' after a key");

    expect_error("s = \"\\uD800\"\n", "line 1, column 6: invalid unicode escape");
    expect_error("s = \"\\U00110000\"\n", "not a unicode scalar value");
    expect_error("s = \"\\e\"\n", "invalid escape sequence '\\e'");
    expect_error("s = \"abc\n", "line 1, column 9: unterminated string");
    expect_error("s = \"\"\"abc\n", "line 2, column 1: unterminated multi-line string");
    expect_error("s = 'a\x01'\n", "line 1, column 7: control character U+0001");
    expect_error("s = 1 # \x7f\n", "control character U+007F");
    expect_error("s = 1\r\nt = 2\r", "line 2, column 6: carriage return");
    expect_error("s = \"\xC3\x28\"\n", "line 1, column 6: invalid utf-8");
    expect_error("s = \"\xED\xA0\x80\"\n", "invalid utf-8");             /* surrogate */
    expect_error("s = \"\xC0\xAF\"\n", "invalid utf-8");                 /* overlong */
    expect_error("s = \"\xF4\x90\x80\x80\"\n", "invalid utf-8");         /* > U+10FFFF */
    expect_error("s = 1 # \xE2\x82", "line 1, column 9: invalid utf-8"); /* cut at the end */
    /* a syntax error before a bad byte is reported first */
    expect_error("a = = 1\nb = \"\xFF\"\n", "line 1, column 5: expected a value");
}

static void test_errors(void)
{
    expect_error("a = 1\nb = \n", "line 2, column 5: expected a value, found end of line");
    expect_error("a = 1\na = 2\n", "line 2, column 1: duplicate key 'a' (first defined on line 1)");
    expect_error("[t]\nx = 1\n[t]\n", "line 3, column 2: table 't' is already defined");
    expect_error("a = 1 2\n", "line 1, column 7: expected end of line, found '2'");
    expect_error("x = 1.\n", "line 1, column 7: expected a digit after the decimal point");
    expect_error("x = 1__0\n", "line 1, column 6: an underscore in a number");
    expect_error("x = 012\n", "leading zeros");
    expect_error("x = +0x1\n", "cannot have a sign");
    expect_error("d = 2023-02-29\n", "line 1, column 13: invalid date: day 29");
    expect_error("d = 2023-13-01\n", "month 13");
    expect_error("d = 24:00:00\n", "hour 24");
    expect_error("d = 1979-05-27T07:32\n", "invalid time: expected HH:MM:SS");
    expect_error("d = 1979-05-27T07:32:00+24:00\n", "invalid time offset");
    expect_error("t = {a = 1,}\n", "line 1, column 12: a trailing comma");
    expect_error("t = {a = 1\n}\n", "must be on a single line");
    expect_error("a = [1 2]\n", "expected ',' or ']'");
    expect_error("[a\n", "line 1, column 3: expected ']'");
    expect_error("\xEF\xBB\xBF"
                 "a = 1\r\nb == 2\r\n",
                 "line 2, column 4: expected a value");
    expect_ok("\xEF\xBB\xBF"
              "a = 1\r\nb = \"\"\"x\r\ny\"\"\"\r\n");
}

static void test_redefinitions(void)
{
    /* implicit tables created by a header may be defined once later */
    expect_ok("[a.b.c]\nz = 1\n[a]\nx = 1\n");
    expect_error("[a.b.c]\n[a]\n[a]\n", "line 3, column 2: table 'a' is already defined");
    /* tables created by dotted keys cannot be [defined], but may get sub-tables */
    expect_ok("[fruit]\napple.color = 'red'\napple.taste.sweet = true\n"
              "[fruit.apple.texture]\nsmooth = true\n");
    expect_error("[fruit]\napple.color = 'red'\n[fruit.apple]\n", "table 'apple' is already");
    expect_error("[fruit]\napple.taste.sweet = true\n[fruit.apple.taste]\n",
                 "table 'taste' is already");
    /* dotted keys cannot add to a [table] defined earlier */
    expect_error("[a.b.c]\nz = 9\n[a]\nb.c.t = 1\n",
                 "line 4, column 3: cannot add keys to table 'c'");
    /* inline tables and static arrays are closed */
    expect_error("a = {x = 1}\na.y = 2\n", "line 2, column 1: cannot add keys to inline table 'a'");
    expect_error("a = {x = 1}\n[a.b]\n", "cannot add keys to inline table 'a'");
    expect_error("a = {x = 1}\n[a]\n", "table 'a' is already defined");
    expect_error("a = []\n[[a]]\n", "cannot define array of tables 'a'");
    expect_error("a = [{b = 1}]\n[a.c]\n", "already defined as an array");
    expect_error("[[a]]\n[a]\n", "already defined as an array of tables");
    expect_error("[a]\n[[a]]\n", "cannot define array of tables 'a'");
    expect_error("a.b = 1\na.b.c = 2\n", "key 'b' is already defined as an integer");
    expect_error("t = {a.b = 1, a = 2}\n", "duplicate key 'a'");
    expect_ok("t = {a.b = 1, a.c = 2}\n");
    /* [[a.b]] goes into the last element of [[a]] */
    {
        struct inf_error err;
        struct inf_toml_table *root =
            parse("[[a]]\nx = 1\n[[a]]\nx = 2\n[[a.b]]\ny = 3\n[a.c]\nz = 4\n", &err);
        const struct inf_toml_value *a;

        T_OK(root != NULL);
        if (!root)
            return;
        a = get(root, "a");
        T_EQ_INT(a->u.arr.n, 2);
        T_OK(get(a->u.arr.items[0]->u.table, "b") == NULL);
        T_OK(get(a->u.arr.items[1]->u.table, "b") != NULL);
        T_OK(get(a->u.arr.items[1]->u.table, "c") != NULL);
        inf_toml_free(root);
    }
}

/* The parser takes (pointer, length): the buffers below are deliberately not NUL-terminated. */
/* NOLINTBEGIN(bugprone-not-null-terminated-result) */
static void test_deep_nesting(void)
{
    size_t n = 100000;
    char *doc = malloc(n + 16);
    struct inf_error err;
    struct inf_toml_table *root = NULL;
    inf_status rc;
    size_t o;

    T_OK(doc != NULL);
    if (!doc)
        return;
    /* 100000 '[' at the top level: a header that never names a key */
    memset(doc, '[', n);
    rc = inf_toml_parse(doc, n, &root, &err);
    T_EQ_INT(rc, INF_EPARSE);
    T_OK(root == NULL);
    T_CONTAINS(err.msg, "line 1, column 3");

    /* the same as a value: an array nested 100000 deep */
    memcpy(doc, "a = ", 4);
    rc = inf_toml_parse(doc, n, &root, &err);
    T_EQ_INT(rc, INF_EPARSE);
    T_CONTAINS(err.msg, "nesting is deeper than 128 levels");

    /* inline tables nested deep */
    memcpy(doc, "a = ", 4);
    for (o = 4; o + 4 < n; o += 4)
        memcpy(doc + o, "{b= ", 4);
    rc = inf_toml_parse(doc, o, &root, &err);
    T_EQ_INT(rc, INF_EPARSE);
    T_CONTAINS(err.msg, "nesting is deeper than 128 levels");

    /* a dotted key with too many parts */
    for (o = 0; o + 2 < n; o += 2)
        memcpy(doc + o, "a.", 2);
    memcpy(doc + o, "a=1", 3);
    rc = inf_toml_parse(doc, o + 3, &root, &err);
    T_EQ_INT(rc, INF_EPARSE);
    T_CONTAINS(err.msg, "more than 128 parts");

    /* 128 nested arrays still fit below the root; 129 do not */
    for (int extra = 0; extra <= 1; extra++) {
        size_t levels = INF_TOML_MAX_DEPTH + (size_t)extra;

        memcpy(doc, "a = ", 4);
        memset(doc + 4, '[', levels);
        memset(doc + 4 + levels, ']', levels);
        rc = inf_toml_parse(doc, 4 + 2 * levels, &root, &err);
        T_EQ_INT(rc, extra ? INF_EPARSE : INF_OK);
        inf_toml_free(root);
        root = NULL;
    }

    /* headers and dotted keys count towards the same limit */
    o = 0;
    doc[o++] = '[';
    for (int i = 0; i < 100; i++) {
        memcpy(doc + o, "t.", 2);
        o += 2;
    }
    memcpy(doc + o, "t]\n", 3);
    o += 3;
    for (int i = 0; i < 40; i++) {
        memcpy(doc + o, "u.", 2);
        o += 2;
    }
    memcpy(doc + o, "u=1\n", 4);
    o += 4;
    rc = inf_toml_parse(doc, o, &root, &err);
    T_EQ_INT(rc, INF_EPARSE);
    T_CONTAINS(err.msg, "line 2");
    T_CONTAINS(err.msg, "nesting is deeper than 128 levels");
    free(doc);
}

static void test_not_nul_terminated(void)
{
    static const char text[] = "a = 12345";
    struct inf_error err;
    struct inf_toml_table *root = NULL;
    char *buf;
    inf_status rc;

    /* an exact-size heap copy: any read past the end is caught by ASan */
    buf = malloc(5);
    T_OK(buf != NULL);
    if (!buf)
        return;
    memcpy(buf, text, 5); /* "a = 1" */
    rc = inf_toml_parse(buf, 5, &root, &err);
    T_EQ_INT(rc, INF_OK);
    if (rc == INF_OK)
        T_EQ_INT(get(root, "a")->u.integer, 1);
    inf_toml_free(root);
    free(buf);

    /* every prefix of a document that ends in each kind of token */
    {
        static const char doc[] = "s = \"\"\"x\\\n\"\"\" # c\n"
                                  "[t.\"u\"]\n"
                                  "[[v]]\n"
                                  "d = 1979-05-27T07:32:00.5+01:00\n"
                                  "f = -1.5e+3_0\n"
                                  "i = {a = [0x1F, 'l', '''m''']}\n";
        size_t len = sizeof(doc) - 1;
        int ok = 0;

        for (size_t k = 0; k <= len; k++) {
            char *b = malloc(k ? k : 1);
            if (!b)
                break;
            memcpy(b, doc, k);
            root = NULL;
            rc = inf_toml_parse(b, k, &root, &err);
            T_OK(rc == INF_OK || rc == INF_EPARSE);
            ok += rc == INF_OK;
            inf_toml_free(root);
            free(b);
        }
        T_OK(ok > 0);
        rc = inf_toml_parse(doc, len, &root, &err);
        T_EQ_INT(rc, INF_OK);
        inf_toml_free(root);
    }

    /* empty input, with and without a pointer */
    rc = inf_toml_parse(NULL, 0, &root, &err);
    T_EQ_INT(rc, INF_OK);
    T_EQ_INT(root->n, 0);
    inf_toml_free(root);
}

/* NOLINTEND(bugprone-not-null-terminated-result) */

static void test_big_tables(void)
{
    /* many keys in one table, and many tables: must stay fast (hash index) */
    size_t n = 200000, cap = n * 24;
    char *doc = malloc(cap);
    struct inf_error err;
    struct inf_toml_table *root = NULL;
    size_t o = 0;
    inf_status rc;

    T_OK(doc != NULL);
    if (!doc)
        return;
    for (size_t i = 0; i < n; i++)
        o += (size_t)snprintf(doc + o, cap - o, "k%zu = %zu\n", i, i);
    rc = inf_toml_parse(doc, o, &root, &err);
    T_EQ_INT(rc, INF_OK);
    if (rc == INF_OK) {
        T_EQ_INT(root->n, n);
        T_EQ_INT(inf_toml_table_find(root, "k199999", 7)->value->u.integer, 199999);
    }
    inf_toml_free(root);
    o += (size_t)snprintf(doc + o, cap - o, "k123 = 0\n");
    rc = inf_toml_parse(doc, o, &root, &err);
    T_EQ_INT(rc, INF_EPARSE);
    T_CONTAINS(err.msg, "line 200001, column 1: duplicate key 'k123' (first defined on line 124)");

    /* headers that create implicit parents, and arrays of tables: positions stay right (and
     * are computed in one forward pass: a quadratic rescan would make this test crawl) */
    o = 0;
    for (size_t i = 0; i < 20000; i++)
        o += (size_t)snprintf(doc + o, cap - o, "[a%zu.b.c]\nx = 1\n[[l%zu.m]]\n", i, i);
    rc = inf_toml_parse(doc, o, &root, &err);
    T_EQ_INT(rc, INF_OK);
    if (rc == INF_OK) {
        const struct inf_toml_kv *kv = inf_toml_table_find(root, "a19999", 6);
        const struct inf_toml_value *c;

        T_EQ_INT(root->n, 40000);
        T_OK(kv != NULL);
        if (kv) {
            T_EQ_INT(kv->line, 59998);
            T_EQ_INT(kv->column, 2);
            T_EQ_INT(kv->value->u.table->line, 0); /* implicit */
            c = get(get(kv->value->u.table, "b")->u.table, "c");
            T_EQ_INT(c->line, 59998);
            T_EQ_INT(c->column, 1);
            T_EQ_INT(c->u.table->line, 59998);
        }
        kv = inf_toml_table_find(root, "l19999", 6);
        T_OK(kv != NULL);
        if (kv) {
            const struct inf_toml_value *m = get(kv->value->u.table, "m");
            T_EQ_INT(m->type, INF_TOML_ARRAY);
            T_EQ_INT(m->u.arr.n, 1);
            T_EQ_INT(m->u.arr.items[0]->u.table->line, 60000);
            T_EQ_INT(m->u.arr.items[0]->u.table->column, 1);
        }
    }
    inf_toml_free(root);
    free(doc);
}

static void test_type_names(void)
{
    T_EQ_STR(inf_toml_type_name(INF_TOML_STRING), "string");
    T_EQ_STR(inf_toml_type_name(INF_TOML_DATETIME), "datetime");
    T_EQ_STR(inf_toml_type_name(INF_TOML_DATETIME_LOCAL), "datetime-local");
    T_EQ_STR(inf_toml_type_name(INF_TOML_DATE_LOCAL), "date-local");
    T_EQ_STR(inf_toml_type_name(INF_TOML_TIME_LOCAL), "time-local");
    T_EQ_STR(inf_toml_type_name(INF_TOML_TABLE), "table");
}

static void test_bad_arguments(void)
{
    struct inf_error err;
    struct inf_toml_table *root = NULL;

    inf_error_clear(&err);
    T_EQ_INT(inf_toml_parse("a = 1", 5, NULL, &err), INF_EINVAL);
    T_EQ_INT(inf_toml_parse(NULL, 3, &root, &err), INF_EINVAL);
    T_OK(root == NULL);
    /* err may be NULL */
    T_EQ_INT(inf_toml_parse("a = ", 4, &root, NULL), INF_EPARSE);
}

int main(void)
{
    T_RUN(test_scalar_types);
    T_RUN(test_integer_limits);
    T_RUN(test_tables_and_positions);
    T_RUN(test_find);
    T_RUN(test_strings);
    T_RUN(test_errors);
    T_RUN(test_redefinitions);
    T_RUN(test_deep_nesting);
    T_RUN(test_not_nul_terminated);
    T_RUN(test_big_tables);
    T_RUN(test_type_names);
    T_RUN(test_bad_arguments);
    T_DONE();
}
