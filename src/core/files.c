/* files.c - file-system helpers (see core/files.h). */
#include "core/files.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/buf.h"

int inf__mkdir_parents(const char *path)
{
    char buf[4096];
    size_t n = strlen(path);
    if (n >= sizeof(buf)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(buf, path, n + 1);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return 0;
}

char *inf__read_stream(FILE *f, size_t max, size_t *len)
{
    char *buf = NULL;
    size_t n = 0, cap = 0;
    const size_t lim = max < SIZE_MAX - 2 ? max + 1 : SIZE_MAX - 2;
    for (;;) {
        /* room for one more byte than max, so that a stream of exactly max bytes ends cleanly
           and one byte more is seen */
        size_t want = lim - n > 4096 ? n + 4096 : lim; /* n <= max < lim here */
        if (!inf__grow(&buf, &cap, want + 1, 1, 4096)) {
            free(buf);
            errno = ENOMEM;
            return NULL;
        }
        size_t r = fread(buf + n, 1, want - n, f);
        n += r;
        if (n > max) {
            free(buf);
            errno = EFBIG;
            return NULL;
        }
        if (r == 0)
            break;
    }
    if (ferror(f)) {
        int e = errno ? errno : EIO;
        free(buf);
        errno = e;
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}
