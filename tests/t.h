/*
 * t.h - the test harness. One binary per module; each check prints file:line and both
 * values on failure; main() ends with T_DONE() which prints "N passed, N failed" and returns
 * non-zero when anything failed.
 *
 *   static void test_something(void) { T_EQ_INT(1 + 1, 2); }
 *   int main(void) { T_RUN(test_something); T_DONE(); }
 *
 * Tests that need ../shared data call T_SKIP_ALL("reason") when it is absent: CTest sees the
 * exit code 77 and reports the test as skipped (SKIP_RETURN_CODE), never as passed.
 */
#ifndef INFERNO_TESTS_T_H
#define INFERNO_TESTS_T_H

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int t__passed;
static int t__failed;
static const char *t__current = "";

#define T__FAIL(...)                                                                               \
    do {                                                                                           \
        t__failed++;                                                                               \
        fprintf(stderr, "FAIL %s:%d [%s]: ", __FILE__, __LINE__, t__current);                      \
        fprintf(stderr, __VA_ARGS__);                                                              \
        fputc('\n', stderr);                                                                       \
    } while (0)

#define T_OK(cond)                                                                                 \
    do {                                                                                           \
        if (cond)                                                                                  \
            t__passed++;                                                                           \
        else                                                                                       \
            T__FAIL("expected true: %s", #cond);                                                   \
    } while (0)

#define T_EQ_INT(a, b)                                                                             \
    do {                                                                                           \
        long long t__a = (long long)(a), t__b = (long long)(b);                                    \
        if (t__a == t__b)                                                                          \
            t__passed++;                                                                           \
        else                                                                                       \
            T__FAIL("%s == %s: %lld != %lld", #a, #b, t__a, t__b);                                 \
    } while (0)

#define T_EQ_U64(a, b)                                                                             \
    do {                                                                                           \
        uint64_t t__a = (uint64_t)(a), t__b = (uint64_t)(b);                                       \
        if (t__a == t__b)                                                                          \
            t__passed++;                                                                           \
        else                                                                                       \
            T__FAIL("%s == %s: %" PRIu64 " != %" PRIu64, #a, #b, t__a, t__b);                      \
    } while (0)

#define T_EQ_STR(a, b)                                                                             \
    do {                                                                                           \
        const char *t__a = (a), *t__b = (b);                                                       \
        if (t__a && t__b && strcmp(t__a, t__b) == 0)                                               \
            t__passed++;                                                                           \
        else                                                                                       \
            T__FAIL("%s == %s: \"%s\" != \"%s\"", #a, #b, t__a ? t__a : "(null)",                  \
                    t__b ? t__b : "(null)");                                                       \
    } while (0)

#define T_CONTAINS(hay, needle)                                                                    \
    do {                                                                                           \
        const char *t__h = (hay), *t__n = (needle);                                                \
        if (t__h && t__n && strstr(t__h, t__n))                                                    \
            t__passed++;                                                                           \
        else                                                                                       \
            T__FAIL("%s contains %s: \"%s\" lacks \"%s\"", #hay, #needle, t__h ? t__h : "(null)",  \
                    t__n ? t__n : "(null)");                                                       \
    } while (0)

#define T_NEAR(a, b, tol)                                                                          \
    do {                                                                                           \
        double t__a = (double)(a), t__b = (double)(b), t__t = (double)(tol);                       \
        if (fabs(t__a - t__b) <= t__t)                                                             \
            t__passed++;                                                                           \
        else                                                                                       \
            T__FAIL("%s ~= %s: %.9g vs %.9g (tol %.3g)", #a, #b, t__a, t__b, t__t);                \
    } while (0)

#define T_RUN(fn)                                                                                  \
    do {                                                                                           \
        t__current = #fn;                                                                          \
        fn();                                                                                      \
    } while (0)

#define T_SKIP_ALL(...)                                                                            \
    do {                                                                                           \
        printf("SKIP: ");                                                                          \
        printf(__VA_ARGS__);                                                                       \
        printf("\n");                                                                              \
        exit(77);                                                                                  \
    } while (0)

#define T_DONE()                                                                                   \
    do {                                                                                           \
        printf("%d passed, %d failed\n", t__passed, t__failed);                                    \
        return t__failed ? 1 : 0;                                                                  \
    } while (0)

/* Writes the path of testdata/REL under the shared directory ($INFERNO_SHARED, else ../shared)
 * into buf; skips every test (T_SKIP_ALL) when that file cannot be opened. */
static inline void t_shared_file(char *buf, size_t size, const char *rel)
{
    const char *shared = getenv("INFERNO_SHARED");
    if (!shared)
        shared = "../shared";
    snprintf(buf, size, "%s/testdata/%s", shared, rel);
    FILE *f = fopen(buf, "rb");
    if (!f)
        T_SKIP_ALL("%s not found (../shared/testdata absent)", buf);
    fclose(f);
}

/* The tests' deterministic pseudo-random numbers (xorshift64); set t_rng_state to reseed. */
static uint64_t t_rng_state = 0x9e3779b97f4a7c15ull;

static inline uint64_t t_rng(void)
{
    t_rng_state ^= t_rng_state << 13;
    t_rng_state ^= t_rng_state >> 7;
    t_rng_state ^= t_rng_state << 17;
    return t_rng_state;
}

#endif
