/* files.c - file-system helpers (see core/files.h). */
#include "core/files.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

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
