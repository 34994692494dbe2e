/* util.c - string index, file mapping and byte swapping for the model-file readers. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gguf/internal.h"

/* ---- string index ---- */

static uint64_t hash_bytes(const char *s, uint64_t len)
{
    uint64_t h = 0xcbf29ce484222325u; /* FNV-1a */
    for (uint64_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3u;
    }
    return h ^ (h >> 29);
}

inf_status inf__strmap_init(struct inf__strmap *m, uint64_t n)
{
    uint64_t cap = 16;
    while (cap / 2 <= n) {
        if (cap > SIZE_MAX / sizeof(*m->slots) / 4)
            return INF_ENOMEM;
        cap *= 2;
    }
    m->slots = calloc((size_t)cap, sizeof(*m->slots));
    if (!m->slots)
        return INF_ENOMEM;
    m->cap = cap;
    return INF_OK;
}

void inf__strmap_release(struct inf__strmap *m)
{
    free(m->slots);
    m->slots = NULL;
    m->cap = 0;
}

static struct inf__strmap_slot *probe(const struct inf__strmap *m, const char *s, uint64_t len);

inf_status inf__strmap_reserve(struct inf__strmap *m, uint64_t n)
{
    struct inf__strmap bigger;

    if (m->slots && n < m->cap / 2)
        return INF_OK;
    if (inf__strmap_init(&bigger, n < UINT64_MAX / 2 ? n * 2 : n) != INF_OK)
        return INF_ENOMEM;
    for (uint64_t i = 0; i < m->cap; i++) {
        const struct inf__strmap_slot *old = &m->slots[i];
        if (old->s)
            *probe(&bigger, old->s, old->len) = *old;
    }
    inf__strmap_release(m);
    *m = bigger;
    return INF_OK;
}

static struct inf__strmap_slot *probe(const struct inf__strmap *m, const char *s, uint64_t len)
{
    uint64_t mask = m->cap - 1;
    for (uint64_t i = hash_bytes(s, len) & mask;; i = (i + 1) & mask) {
        struct inf__strmap_slot *slot = &m->slots[i];
        if (!slot->s || (slot->len == len && memcmp(slot->s, s, (size_t)len) == 0))
            return slot;
    }
}

bool inf__strmap_insert(struct inf__strmap *m, const char *s, uint64_t len, uint64_t idx,
                        uint64_t *prev)
{
    struct inf__strmap_slot *slot = probe(m, s, len);
    if (slot->s) {
        *prev = slot->idx;
        return false;
    }
    slot->s = s;
    slot->len = len;
    slot->idx = idx;
    return true;
}

bool inf__strmap_find(const struct inf__strmap *m, const char *s, uint64_t len, uint64_t *idx)
{
    if (!m->slots)
        return false;
    const struct inf__strmap_slot *slot = probe(m, s, len);
    if (!slot->s)
        return false;
    *idx = slot->idx;
    return true;
}

/* ---- file mapping ---- */

inf_status inf__map_file(const char *path, bool sequential, struct inf__mapping *m,
                         struct inf_error *err)
{
    struct stat st;
    inf_status rc = INF_OK;
    int fd;

    memset(m, 0, sizeof(*m));
    m->data = (const uint8_t *)"";
    /* O_NONBLOCK: opening a FIFO (or a device such as a tape) must not wait for a writer; the
     * type is checked right after, on the descriptor, so nothing can swap the file between */
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return inf_error_set(err, errno == ENOENT ? INF_ENOTFOUND : INF_EIO, "cannot open '%s': %s",
                             path, strerror(errno));
    if (fstat(fd, &st) != 0) {
        rc = inf_error_set(err, INF_EIO, "cannot stat '%s': %s", path, strerror(errno));
        goto out_close;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = inf_error_set(err, INF_EIO, "'%s' is not a regular file", path);
        goto out_close;
    }
    if ((uint64_t)st.st_size > SIZE_MAX) {
        rc = inf_error_set(err, INF_ELIMIT, "'%s' is too large to map", path);
        goto out_close;
    }
    m->size = (uint64_t)st.st_size;
    if (m->size == 0)
        goto out_close;
    m->map = mmap(NULL, (size_t)m->size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m->map == MAP_FAILED) {
        m->map = NULL;
        rc = inf_error_set(err, INF_EIO, "cannot map '%s': %s", path, strerror(errno));
        goto out_close;
    }
    m->map_len = (size_t)m->size;
    m->data = m->map;
    /* Advice is a hint: failures change nothing we rely on. */
    (void)madvise(m->map, m->map_len, sequential ? MADV_SEQUENTIAL : MADV_RANDOM);
out_close:
    close(fd);
    return rc;
}

void inf__map_random(const struct inf__mapping *m)
{
    if (m->map)
        (void)madvise(m->map, m->map_len, MADV_RANDOM);
}

void inf__unmap(struct inf__mapping *m)
{
    if (m->map)
        munmap(m->map, m->map_len);
    memset(m, 0, sizeof(*m));
}

/* ---- messages ---- */

void inf__printable(char *dst, size_t cap, const char *s, uint64_t len)
{
    if (cap == 0)
        return;
    bool cut = len > cap - 1;
    size_t n = cut ? (cap > 4 ? cap - 4 : cap - 1) : (size_t)len;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        dst[i] = (ch < 0x20 || ch == 0x7f) ? '?' : (char)ch;
    }
    if (cut && cap > 4) {
        memcpy(dst + n, "...", 3);
        n += 3;
    }
    dst[n] = '\0';
}

/* ---- byte swapping ---- */

void inf__bswap_array(void *data, size_t size, uint64_t n)
{
    unsigned char *p = data;
    for (uint64_t i = 0; i < n; i++, p += size) {
        switch (size) {
        case 2: {
            uint16_t v;
            memcpy(&v, p, 2);
            v = inf__bswap16(v);
            memcpy(p, &v, 2);
            break;
        }
        case 4: {
            uint32_t v;
            memcpy(&v, p, 4);
            v = inf__bswap32(v);
            memcpy(p, &v, 4);
            break;
        }
        case 8: {
            uint64_t v;
            memcpy(&v, p, 8);
            v = inf__bswap64(v);
            memcpy(p, &v, 8);
            break;
        }
        default:
            return;
        }
    }
}
