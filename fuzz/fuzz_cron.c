/*
 * fuzz_cron.c - libFuzzer target for cron expressions (inf_cron_parse, inf_cron_next in UTC).
 *
 * The input (at most 300 bytes, NUL-terminated copy) is parsed; on success the next fire time
 * after a fixed moment must be later than it, fall on a whole minute and match the expression
 * field by field (checked here with gmtime, independently of the search), or be INF_ENOTFOUND.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fuzz.h"
#include "inferno/jobs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char buf[301];
    if (size > 300)
        size = 300;
    memcpy(buf, data, size);
    buf[size] = '\0';
    struct inf_cron c;
    struct inf_error err = {0};
    inf_status rc = inf_cron_parse(buf, &c, &err);
    if (rc != INF_OK) {
        CHECK(rc == INF_EPARSE && err.msg[0] != '\0');
        return 0;
    }
    CHECK(c.minute != 0 && c.hour != 0 && c.mday != 0 && c.month != 0 && c.wday != 0);
    const int64_t after = 1796546815; /* 2026-12-06 */
    int64_t next = 0;
    rc = inf_cron_next(&c, "UTC", after, &next, &err);
    if (rc == INF_ENOTFOUND)
        return 0;
    CHECK(rc == INF_OK);
    CHECK(next > after && next % 60 == 0);
    time_t t = (time_t)next;
    struct tm tm;
    CHECK(gmtime_r(&t, &tm) != NULL);
    CHECK((c.minute >> tm.tm_min) & 1);
    CHECK((c.hour >> tm.tm_hour) & 1);
    CHECK((c.month >> (tm.tm_mon + 1)) & 1);
    bool md = (c.mday >> tm.tm_mday) & 1, wd = (c.wday >> tm.tm_wday) & 1;
    CHECK(c.mday_any || c.wday_any ? (md && wd) : (md || wd));
    return 0;
}
