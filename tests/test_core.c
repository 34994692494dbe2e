/* test_core.c - status codes, error contexts, logging, CPU feature reporting. */
#include <errno.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/buf.h"
#include "core/escape.h"
#include "core/files.h"
#include "core/text.h"
#include "inferno/cpu.h"
#include "inferno/log.h"
#include "inferno/status.h"
#include "t.h"

static void test_status(void)
{
    T_EQ_INT(INF_OK, 0);
    T_OK(INF_ENOMEM < 0 && INF_EPARSE < 0 && INF_EINTERNAL < 0);
    T_EQ_STR(inf_strerror(INF_OK), "success");
    T_EQ_STR(inf_strerror(INF_ENOMEM), "out of memory");
    T_EQ_STR(inf_status_name(INF_EPARSE), "EPARSE");
    T_EQ_STR(inf_strerror((inf_status)12345), "unknown status");
    /* every code has a distinct description */
#define X(name, value, desc) INF_##name,
    inf_status all[] = {INF_STATUS_MAP(X)};
#undef X
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        for (size_t j = i + 1; j < sizeof(all) / sizeof(all[0]); j++)
            T_OK(strcmp(inf_strerror(all[i]), inf_strerror(all[j])) != 0);
}

static void test_error(void)
{
    struct inf_error err;
    inf_error_clear(&err);
    T_EQ_INT(err.code, INF_OK);
    T_EQ_STR(inf_error_message(&err), "success");
    T_EQ_INT(inf_error_set(&err, INF_EFORMAT, "bad magic %#x", 0x1234), INF_EFORMAT);
    T_EQ_STR(err.msg, "bad magic 0x1234");
    inf_error_prefix(&err, "'%s'", "model.gguf");
    T_EQ_STR(err.msg, "'model.gguf': bad magic 0x1234");
    T_EQ_INT(inf_error_set(NULL, INF_EIO, "ignored"), INF_EIO); /* NULL context is allowed */
    char big[2000];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    inf_error_set(&err, INF_EIO, "%s", big); /* truncated, never overflowed */
    T_EQ_INT(strlen(err.msg), INF_ERROR_MSG_MAX - 1);
}

static void read_all(FILE *f, char *buf, size_t size)
{
    rewind(f);
    size_t n = fread(buf, 1, size - 1, f);
    buf[n] = '\0';
}

static void test_log(void)
{
    char buf[4096];
    FILE *f = tmpfile();
    enum inf_log_level lvl;
    enum inf_log_format fmt;

    T_EQ_INT(inf_log_level_parse("WARNING", &lvl), INF_OK);
    T_EQ_INT(lvl, INF_LOG_WARN);
    T_EQ_INT(inf_log_level_parse("loud", &lvl), INF_EINVAL);
    T_EQ_INT(inf_log_format_parse("json", &fmt), INF_OK);
    T_EQ_INT(fmt, INF_LOG_JSON);

    inf_log_set_stream(f);
    inf_log_set_level(INF_LOG_INFO);
    inf_log_set_format(INF_LOG_JSON);
    inf_log(INF_LOG_DEBUG, "test", "hidden");
    const char *fields[] = {"path", "a \"b\"", NULL};
    inf_log_fields(INF_LOG_WARN, "gguf", fields, "bad %s\n", "tensor");
    read_all(f, buf, sizeof(buf));
    T_OK(strstr(buf, "hidden") == NULL);
    T_CONTAINS(buf, "\"level\":\"warn\"");
    T_CONTAINS(buf, "\"module\":\"gguf\"");
    T_CONTAINS(buf, "\"msg\":\"bad tensor\\n\"");
    T_CONTAINS(buf, "\"path\":\"a \\\"b\\\"\"");
    T_CONTAINS(buf, "\"ts\":\"");
    T_EQ_INT(buf[strlen(buf) - 1], '\n');

    fclose(f);
    f = tmpfile();
    inf_log_set_stream(f);
    inf_log_set_format(INF_LOG_COMPACT);
    inf_log_fields(INF_LOG_ERROR, "cli", fields, "oops");
    read_all(f, buf, sizeof(buf));
    T_CONTAINS(buf, "error cli: oops path=\"a \\\"b\\\"\"");
    T_OK(strchr(buf, '\033') == NULL);
    inf_log_set_stream(NULL);
    fclose(f);
}

static void test_cpu(void)
{
    char buf[256];
    const struct inf_cpu_features *f = inf_cpu_features();
    inf_cpu_features_string(f, buf, sizeof(buf));
    T_OK(buf[0] != '\0');
    /* internal consistency of detection: AVX-512 implies AVX2, VNNI implies AVX-512F */
    if (f->avx512f)
        T_OK(f->avx2);
    if (f->avx512vnni)
        T_OK(f->avx512f);
    if (f->avx2)
        T_CONTAINS(buf, "avx2");
    T_OK(inf_cpu_physical_cores() >= 1);
    struct inf_cpu_features none = {0};
    inf_cpu_features_string(&none, buf, sizeof(buf));
    T_EQ_STR(buf, "(none)");
}

/* The shared JSON escaping, read back by jansson (an independent JSON parser). */
static void test_escape(void)
{
    char in[256];
    for (int i = 0; i < 255; i++)
        in[i] = (char)(i + 1); /* every byte but NUL; >= 0x80 must pass through untouched */
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    T_OK(f != NULL);
    fputc('"', f);
    inf__escape_json_write(f, in, 127); /* the ASCII range: jansson wants valid UTF-8 */
    fputc('"', f);
    fclose(f);
    json_error_t jerr;
    json_t *j = json_loadb(buf, len, JSON_DECODE_ANY, &jerr);
    T_OK(j != NULL);
    if (j) {
        T_EQ_INT((long long)json_string_length(j), 127);
        T_OK(memcmp(json_string_value(j), in, 127) == 0);
    }
    json_decref(j);
    T_OK(strstr(buf, "\\u007f") != NULL && strstr(buf, "\\b") && strstr(buf, "\\u0001"));
    free(buf);
    char tmp[8];
    T_OK(inf__escape_json_byte(0xc3, tmp) == NULL);
    T_OK(inf__escape_json_byte('a', tmp) == NULL);
    T_EQ_STR(inf__escape_json_byte('"', tmp), "\\\"");
}

static void test_mkdir_parents(void)
{
    char dir[] = "/tmp/inferno-core-XXXXXX";
    T_OK(mkdtemp(dir) != NULL);
    char path[256], check[256];
    snprintf(path, sizeof(path), "%s/a/b/c/file.db", dir);
    T_EQ_INT(inf__mkdir_parents(path), 0);
    struct stat st;
    snprintf(check, sizeof(check), "%s/a/b/c", dir);
    T_OK(stat(check, &st) == 0 && S_ISDIR(st.st_mode));
    snprintf(check, sizeof(check), "%s/a/b/c/file.db", dir);
    T_OK(stat(check, &st) != 0);           /* the last component is not made */
    T_EQ_INT(inf__mkdir_parents(path), 0); /* again: already there */
    char lng[5000];
    memset(lng, 'a', sizeof(lng) - 1);
    lng[0] = '/';
    lng[sizeof(lng) - 1] = 0;
    T_EQ_INT(inf__mkdir_parents(lng), -1);
    T_EQ_INT(errno, ENAMETOOLONG);
    /* read_stream: exact bytes, NUL-terminated, bounded */
    FILE *f = fopen("/dev/zero", "rb");
    size_t n = 12345;
    T_OK(f != NULL);
    errno = 0;
    T_OK(inf__read_stream(f, 100000, &n) == NULL);
    T_EQ_INT(errno, EFBIG);
    T_EQ_INT((long long)n, 12345); /* untouched on failure */
    fclose(f);
    snprintf(check, sizeof(check), "%s/a/b/c/data", dir);
    f = fopen(check, "wb");
    T_OK(f != NULL);
    for (int i = 0; i < 10000; i++)
        fputc('a' + i % 26, f);
    fclose(f);
    for (size_t max = 9999; max <= 10001; max++) {
        f = fopen(check, "rb");
        char *got = inf__read_stream(f, max, &n);
        fclose(f);
        if (max < 10000) {
            T_OK(got == NULL && errno == EFBIG);
        } else {
            T_OK(got != NULL && n == 10000 && got[n] == 0 && got[9999] == 'a' + 9999 % 26);
        }
        free(got);
    }
    f = fopen(check, "rb");
    char *got = inf__read_stream(f, 0, &n); /* max 0 with data: too big */
    T_OK(got == NULL && errno == EFBIG);
    fclose(f);
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    T_EQ_INT(system(cmd), 0);
}

static void test_buf(void)
{
    char *p = NULL;
    size_t len = 0, cap = 0;
    T_OK(inf__append(&p, &len, &cap, NULL, 0, 8));
    T_OK(p != NULL && len == 0 && p[0] == 0 && cap == 8);
    char want[1000];
    for (int i = 0; i < 100; i++) {
        char piece[16];
        int k = snprintf(piece, sizeof(piece), "%d,", i);
        memcpy(want + len, piece, (size_t)k);
        T_OK(inf__append(&p, &len, &cap, piece, (size_t)k, 8));
    }
    want[len] = 0;
    T_EQ_STR(p, want);
    T_OK(cap >= len + 1 && (cap & (cap - 1)) == 0); /* doubled from 8 */
    size_t oldcap = cap;
    T_OK(!inf__append(&p, &len, &cap, "x", SIZE_MAX - 2, 8)); /* overflow: nothing changes */
    T_OK(cap == oldcap && strcmp(p, want) == 0);
    free(p);

    int *a = NULL;
    size_t acap = 0;
    T_OK(inf__grow(&a, &acap, 5, sizeof(int), 4));
    T_EQ_INT((long long)acap, 8);
    for (int i = 0; i < 5; i++)
        a[i] = i;
    T_OK(inf__grow(&a, &acap, 3, sizeof(int), 4) && acap == 8); /* enough room: unchanged */
    T_OK(!inf__grow(&a, &acap, SIZE_MAX / 2, sizeof(int), 4) && acap == 8);
    T_OK(a[4] == 4);
    free(a);

    T_EQ_INT(inf__hex_digit('0'), 0);
    T_EQ_INT(inf__hex_digit('f'), 15);
    T_EQ_INT(inf__hex_digit('B'), 11);
    T_EQ_INT(inf__hex_digit('g'), -1);
    T_EQ_INT(inf__hex_digit(0x80), -1);
}

static void test_edit_distance(void)
{
    T_EQ_INT((long long)inf__edit_distance("kitten", "sitting", false), 3); /* textbook */
    T_EQ_INT((long long)inf__edit_distance("", "abc", false), 3);
    T_EQ_INT((long long)inf__edit_distance("flaw", "lawn", false), 2);
    T_EQ_INT((long long)inf__edit_distance("Server.Port", "server.port", false), 2);
    T_EQ_INT((long long)inf__edit_distance("Server.Port", "server.port", true), 0);
    char lng[200];
    memset(lng, 'a', sizeof(lng) - 1);
    lng[sizeof(lng) - 1] = 0;
    T_OK(inf__edit_distance(lng, "a", false) == SIZE_MAX);
}

int main(void)
{
    T_RUN(test_status);
    T_RUN(test_error);
    T_RUN(test_log);
    T_RUN(test_cpu);
    T_RUN(test_escape);
    T_RUN(test_buf);
    T_RUN(test_edit_distance);
    T_RUN(test_mkdir_parents);
    T_DONE();
}
