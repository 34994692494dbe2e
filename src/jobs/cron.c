/*
 * cron.c - cron expressions and their next fire time in a named time zone (inferno/jobs.h).
 *
 * Time zones come from the system's tz database through the C library: TZ is set and tzset()
 * called under one process-wide lock, local times computed with localtime_r/mktime, and TZ put
 * back. The expression is untrusted text: every number is range-checked, lengths are bounded.
 */
#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include "inferno/jobs.h"

static const char *const months[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                     "jul", "aug", "sep", "oct", "nov", "dec"};
static const char *const days[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

struct field {
    const char *name;
    int lo, hi;
    const char *const *names; /* NULL, or hi - lo + 1 names (months from 1, days from 0) */
};

static const struct field fields[5] = {
    {"minute", 0, 59, NULL},  {"hour", 0, 23, NULL},       {"day of month", 1, 31, NULL},
    {"month", 1, 12, months}, {"day of week", 0, 7, days},
};

/* A number or a name at *p; advances. -1 when there is none. */
static int value(const struct field *f, const char **p)
{
    const char *s = *p;
    if (isdigit((unsigned char)*s)) {
        int v = 0, n = 0;
        while (isdigit((unsigned char)*s) && n < 3) {
            v = v * 10 + (*s++ - '0');
            n++;
        }
        if (isdigit((unsigned char)*s))
            return -1;
        *p = s;
        return v;
    }
    if (f->names && isalpha((unsigned char)s[0]) && isalpha((unsigned char)s[1]) &&
        isalpha((unsigned char)s[2]) && !isalpha((unsigned char)s[3])) {
        int count = f->names == months ? 12 : 7;
        for (int i = 0; i < count; i++)
            if (strncasecmp(s, f->names[i], 3) == 0) {
                *p = s + 3;
                return f->names == months ? i + 1 : i;
            }
    }
    return -1;
}

static inf_status parse_field(const struct field *f, const char *s, size_t len, uint64_t *bits,
                              bool *any, struct inf_error *err)
{
    char buf[128];
    if (len == 0 || len >= sizeof(buf))
        return inf_error_set(err, INF_EPARSE, "the %s field is empty or too long", f->name);
    memcpy(buf, s, len);
    buf[len] = '\0';
    *bits = 0;
    *any = strcmp(buf, "*") == 0 || strcmp(buf, "?") == 0;
    if (buf[0] == ',' || buf[len - 1] == ',' || strstr(buf, ",,"))
        return inf_error_set(err, INF_EPARSE, "the %s field: an empty list item in '%s'", f->name,
                             buf);
    char *save = NULL;
    for (char *item = strtok_r(buf, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        const char *p = item;
        int a, b, step = 1;
        if (*p == '*') {
            a = f->lo;
            b = f->hi == 7 ? 6 : f->hi;
            p++;
        } else {
            if ((a = value(f, &p)) < 0)
                return inf_error_set(err, INF_EPARSE, "the %s field: '%s' is not a value", f->name,
                                     item);
            b = a;
            if (*p == '-') {
                p++;
                if ((b = value(f, &p)) < 0)
                    return inf_error_set(err, INF_EPARSE,
                                         "the %s field: '%s' has a range without an end", f->name,
                                         item);
            }
        }
        if (*p == '/') {
            p++;
            int v = value(&fields[0], &p);
            if (v < 1 || v > f->hi)
                return inf_error_set(err, INF_EPARSE, "the %s field: bad step in '%s'", f->name,
                                     item);
            step = v;
            if (b == a && item[0] != '*')
                b = f->hi == 7 ? 6 : f->hi; /* "5/15": from 5 to the end */
        }
        if (*p)
            return inf_error_set(err, INF_EPARSE, "the %s field: unexpected '%s'", f->name, p);
        if (a < f->lo || a > f->hi || b < f->lo || b > f->hi)
            return inf_error_set(err, INF_EPARSE, "the %s field: '%s' is outside %d-%d", f->name,
                                 item, f->lo, f->hi);
        if (a > b)
            return inf_error_set(err, INF_EPARSE, "the %s field: range '%s' runs backwards",
                                 f->name, item);
        for (int v = a; v <= b; v += step)
            *bits |= (uint64_t)1 << (f->hi == 7 && v == 7 ? 0 : v);
    }
    return INF_OK;
}

inf_status inf_cron_parse(const char *expr, struct inf_cron *out, struct inf_error *err)
{
    static const struct {
        const char *name, *expr;
    } macros[] = {{"@hourly", "0 * * * *"},  {"@daily", "0 0 * * *"},   {"@midnight", "0 0 * * *"},
                  {"@weekly", "0 0 * * 0"},  {"@monthly", "0 0 1 * *"}, {"@yearly", "0 0 1 1 *"},
                  {"@annually", "0 0 1 1 *"}};
    memset(out, 0, sizeof(*out));
    if (!expr)
        return inf_error_set(err, INF_EPARSE, "no cron expression");
    while (*expr == ' ' || *expr == '\t')
        expr++;
    size_t n = strnlen(expr, 256);
    if (n >= 256)
        return inf_error_set(err, INF_EPARSE, "the cron expression is too long");
    while (n && (expr[n - 1] == ' ' || expr[n - 1] == '\t'))
        n--;
    if (n && expr[0] == '@') {
        for (size_t i = 0; i < sizeof(macros) / sizeof(macros[0]); i++)
            if (strlen(macros[i].name) == n && strncasecmp(expr, macros[i].name, n) == 0)
                return inf_cron_parse(macros[i].expr, out, err);
        return inf_error_set(err, INF_EPARSE,
                             "unknown '%.*s': @hourly, @daily, @weekly, @monthly or @yearly",
                             (int)(n > 32 ? 32 : n), expr);
    }
    const char *p = expr, *end = expr + n;
    uint64_t bits[5];
    bool any[5];
    for (int f = 0; f < 5; f++) {
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        const char *s = p;
        while (p < end && *p != ' ' && *p != '\t')
            p++;
        if (p == s)
            return inf_error_set(err, INF_EPARSE,
                                 "a cron expression has 5 fields (minute hour day-of-month month "
                                 "day-of-week); %d given",
                                 f);
        inf_status st = parse_field(&fields[f], s, (size_t)(p - s), &bits[f], &any[f], err);
        if (st != INF_OK)
            return st;
    }
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    if (p < end)
        return inf_error_set(err, INF_EPARSE, "a cron expression has 5 fields; more were given");
    out->minute = bits[0];
    out->hour = (uint32_t)bits[1];
    out->mday = (uint32_t)bits[2];
    out->month = (uint16_t)bits[3];
    out->wday = (uint8_t)bits[4];
    out->mday_any = any[2];
    out->wday_any = any[4];
    return INF_OK;
}

/* ---- next fire time ------------------------------------------------------------------------- */

static pthread_mutex_t tz_lock = PTHREAD_MUTEX_INITIALIZER;

static bool day_matches(const struct inf_cron *c, const struct tm *tm)
{
    bool md = (c->mday >> tm->tm_mday) & 1, wd = (c->wday >> tm->tm_wday) & 1;
    if (c->mday_any || c->wday_any)
        return md && wd;
    return md || wd; /* both restricted: either (Vixie cron) */
}

static bool zone_known(const char *tz)
{
    if (!tz || !*tz || strcmp(tz, "UTC") == 0)
        return true;
    if (tz[0] == '/' || strstr(tz, "..") || strlen(tz) > 64)
        return false;
    const char *dirs[] = {getenv("TZDIR"), "/usr/share/zoneinfo"};
    for (size_t i = 0; i < 2; i++) {
        if (!dirs[i])
            continue;
        char path[512];
        struct stat st;
        snprintf(path, sizeof(path), "%s/%s", dirs[i], tz);
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode))
            return true;
    }
    return false;
}

inf_status inf_cron_next(const struct inf_cron *c, const char *tz, int64_t after, int64_t *next,
                         struct inf_error *err)
{
    if (!zone_known(tz))
        return inf_error_set(err, INF_EINVAL, "unknown time zone '%.64s' (not in the tz database)",
                             tz);
    pthread_mutex_lock(&tz_lock);
    char *old = getenv("TZ") ? strdup(getenv("TZ")) : NULL;
    setenv("TZ", tz && *tz ? tz : "UTC", 1);
    tzset();
    inf_status st = INF_ENOTFOUND;
    time_t t = (time_t)(after - (after % 60 + 60) % 60) + 60; /* the next whole minute */
    const time_t limit = (time_t)after + (time_t)5 * 366 * 86400;
    while (t <= limit) {
        struct tm tm;
        localtime_r(&t, &tm);
        if (!((c->month >> (tm.tm_mon + 1)) & 1) || !day_matches(c, &tm)) {
            /* to the next local midnight */
            struct tm n = tm;
            n.tm_mday++;
            n.tm_hour = n.tm_min = n.tm_sec = 0;
            n.tm_isdst = -1;
            time_t nt = mktime(&n);
            t = nt > t ? nt : t + 60;
            continue;
        }
        if (!((c->hour >> tm.tm_hour) & 1)) {
            t += (time_t)(60 - tm.tm_min) * 60 - tm.tm_sec;
            continue;
        }
        if (!((c->minute >> tm.tm_min) & 1)) {
            t += 60 - tm.tm_sec;
            continue;
        }
        /* the second pass through a repeated local hour (autumn) does not fire again, unless
           the expression runs every hour (then each real hour fires) */
        time_t back = t - 3600;
        struct tm b;
        localtime_r(&back, &b);
        if (c->hour != 0xffffffu && b.tm_hour == tm.tm_hour && b.tm_min == tm.tm_min &&
            b.tm_mday == tm.tm_mday && b.tm_isdst != tm.tm_isdst) {
            t += 60;
            continue;
        }
        *next = (int64_t)t;
        st = INF_OK;
        break;
    }
    if (old) {
        setenv("TZ", old, 1);
        free(old);
    } else {
        unsetenv("TZ");
    }
    tzset();
    pthread_mutex_unlock(&tz_lock);
    if (st != INF_OK)
        inf_error_set(err, st, "the expression never fires within 5 years");
    return st;
}
