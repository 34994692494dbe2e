/* files.c - file-system helpers (see core/files.h). */
#include "core/files.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

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

/* ---- output files put in place when complete (see core/files.h) ---- */

/* OUT must be a regular file when it exists (following links): never replace a device, FIFO,
 * directory or socket, --force or not. */
inf_status inf__outfile_check_target(const char *out_path, struct inf_error *err)
{
    struct stat sb;
    if (stat(out_path, &sb) == 0 && !S_ISREG(sb.st_mode))
        return inf_error_set(err, INF_EINVAL,
                             "'%s' exists and is not a regular file; refusing to replace it",
                             out_path);
    return INF_OK;
}

static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return strdup(".");
    if (slash == path)
        return strdup("/");
    return strndup(path, (size_t)(slash - path));
}

/* Remove OUT.tmp.XXXXXX files that no run holds locked: leftovers of killed runs. */
static void sweep_stale(const char *out_path)
{
    char *dir = dir_of(out_path);
    const char *slash = strrchr(out_path, '/');
    const char *base = slash ? slash + 1 : out_path;
    size_t blen = strlen(base);
    DIR *d = dir ? opendir(dir) : NULL;
    struct dirent *e;

    while (d && (e = readdir(d))) {
        if (strncmp(e->d_name, base, blen) != 0 || strncmp(e->d_name + blen, ".tmp.", 5) != 0 ||
            strlen(e->d_name + blen + 5) != 6)
            continue;
        int fd = openat(dirfd(d), e->d_name, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOFOLLOW);
        if (fd < 0)
            continue;
        struct stat sb;
        if (fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) && flock(fd, LOCK_EX | LOCK_NB) == 0)
            (void)unlinkat(dirfd(d), e->d_name, 0);
        close(fd);
    }
    if (d)
        closedir(d);
    free(dir);
}

static void tmp_name(char *tmp, size_t size, const char *out_path)
{
    static const char abc[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t x = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^ ((uint64_t)getpid() << 40);
    char suffix[7];
    for (int i = 0; i < 6; i++) {
        x = x * 6364136223846793005u + 1442695040888963407u;
        suffix[i] = abc[(x >> 33) % (sizeof(abc) - 1)];
    }
    suffix[6] = '\0';
    snprintf(tmp, size, "%s.tmp.%s", out_path, suffix);
}

inf_status inf__outfile_open(const char *out_path, struct inf__outfile *o, struct inf_error *err)
{
    /* mode 0666 everywhere: the kernel applies the umask (no process-wide umask() dance, which
       would race with other threads creating files) */
    size_t tlen = strlen(out_path) + 16;
    o->fd = -1;
    o->unnamed = false;
    o->tmp = malloc(tlen);
    if (!o->tmp)
        return inf_error_set(err, INF_ENOMEM, "out of memory");
    sweep_stale(out_path);
#ifdef O_TMPFILE
    char *dir = dir_of(out_path);
    o->fd = dir ? open(dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0666) : -1;
    free(dir);
    if (o->fd >= 0) {
        /* the file is linked at the end through /proc/self/fd: without /proc, use a name */
        char proc[64];
        struct stat sb;
        snprintf(proc, sizeof(proc), "/proc/self/fd/%d", o->fd);
        if (stat(proc, &sb) == 0) {
            o->unnamed = true;
            tmp_name(o->tmp, tlen, out_path);
        } else {
            close(o->fd);
            o->fd = -1;
        }
    }
#endif
    for (int tries = 0; o->fd < 0 && tries < 16; tries++) {
        tmp_name(o->tmp, tlen, out_path);
        o->fd = open(o->tmp, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0666);
        if (o->fd < 0 && errno != EEXIST)
            break;
    }
    if (o->fd < 0) {
        inf_status rc =
            inf_error_set(err, INF_EIO, "cannot create '%s': %s", o->tmp, strerror(errno));
        free(o->tmp);
        o->tmp = NULL;
        return rc;
    }
    (void)flock(o->fd, LOCK_EX | LOCK_NB); /* marks it live for sweep_stale */
    return INF_OK;
}

/* Give the finished (flushed, synced) file its name: link it as tmp if unnamed, then rename. */
inf_status inf__outfile_commit(struct inf__outfile *o, const char *out_path, struct inf_error *err)
{
    inf_status rc = inf__outfile_check_target(out_path, err);
    if (rc != INF_OK)
        return rc;
    if (o->unnamed) {
        char proc[64];
        int tries = 0, r;
        snprintf(proc, sizeof(proc), "/proc/self/fd/%d", o->fd);
        for (;;) {
            r = linkat(AT_FDCWD, proc, AT_FDCWD, o->tmp, AT_SYMLINK_FOLLOW);
            if (r == 0 || errno != EEXIST || ++tries == 16)
                break;
            tmp_name(o->tmp, strlen(out_path) + 16, out_path);
        }
        if (r != 0)
            return inf_error_set(err, INF_EIO, "cannot link the output as '%s': %s", o->tmp,
                                 strerror(errno));
        o->unnamed = false;
    }
    if (rename(o->tmp, out_path) != 0)
        return inf_error_set(err, INF_EIO, "cannot rename '%s' to '%s': %s", o->tmp, out_path,
                             strerror(errno));
    free(o->tmp);
    o->tmp = NULL;
    return INF_OK;
}

/* Remove what a failed run created (an unnamed file goes away with its descriptor). */
void inf__outfile_abandon(struct inf__outfile *o)
{
    if (o->tmp && !o->unnamed)
        unlink(o->tmp);
    free(o->tmp);
    o->tmp = NULL;
}
