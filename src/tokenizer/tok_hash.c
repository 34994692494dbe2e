/* tok_hash.c - the string table and integer map behind vocabulary and merge lookups. */
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "tokenizer/tok_internal.h"

uint64_t inf__hash_bytes(const void *p, size_t n)
{
    const unsigned char *s = p;
    uint64_t h = 0x9E3779B97F4A7C15ULL ^ (n * 0xff51afd7ed558ccdULL);
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        h = (h ^ inf__hash_u64(w)) * 0x9E3779B97F4A7C15ULL;
        s += 8;
        n -= 8;
    }
    uint64_t w = 0;
    for (size_t i = 0; i < n; i++)
        w |= (uint64_t)s[i] << (8 * i);
    return inf__hash_u64(h ^ w ^ ((uint64_t)n << 56));
}

void inf__strtab_release(struct inf__strtab *t)
{
    free(t->blob);
    free(t->off);
    free(t->len);
    free(t->slots);
    memset(t, 0, sizeof(*t));
}

static bool strtab_eq(const struct inf__strtab *t, uint32_t i, const char *s, size_t n)
{
    return t->len[i] == n && memcmp(t->blob + t->off[i], s, n) == 0;
}

/* The slot holding s, or the empty slot where it would go. */
static size_t strtab_slot(const struct inf__strtab *t, const char *s, size_t n)
{
    size_t mask = t->n_slots - 1;
    size_t i = (size_t)inf__hash_bytes(s, n) & mask;
    while (t->slots[i] && !strtab_eq(t, t->slots[i] - 1, s, n))
        i = (i + 1) & mask;
    return i;
}

static inf_status strtab_grow_slots(struct inf__strtab *t)
{
    size_t ns = t->n_slots ? t->n_slots * 2 : 1024;
    uint32_t *old = t->slots;
    size_t old_n = t->n_slots;
    t->slots = calloc(ns, sizeof(*t->slots));
    if (!t->slots) {
        t->slots = old;
        return INF_ENOMEM;
    }
    t->n_slots = ns;
    for (size_t i = 0; i < old_n; i++) {
        if (!old[i])
            continue;
        uint32_t e = old[i] - 1;
        t->slots[strtab_slot(t, t->blob + t->off[e], t->len[e])] = old[i];
    }
    free(old);
    return INF_OK;
}

inf_status inf__strtab_reserve(struct inf__strtab *t, size_t n)
{
    while (n * 2 > t->n_slots)
        if (strtab_grow_slots(t) != INF_OK)
            return INF_ENOMEM;
    return INF_OK;
}

inf_status inf__strtab_add(struct inf__strtab *t, const char *s, size_t n, bool replace,
                           int32_t *idx)
{
    if (t->n >= INT32_MAX - 1 || n > UINT32_MAX || t->blob_len + n + 1 > UINT32_MAX)
        return INF_ELIMIT;
    if ((t->n + 1) * 2 > t->n_slots && strtab_grow_slots(t) != INF_OK)
        return INF_ENOMEM;
    if (t->n == t->cap) {
        /* off and len grow in step: len gets the capacity that off reached */
        size_t off_cap = t->cap, len_cap = t->cap;
        if (!inf__grow(&t->off, &off_cap, t->n + 1, sizeof(*t->off), 1024) ||
            !inf__grow(&t->len, &len_cap, off_cap, sizeof(*t->len), 1024))
            return INF_ENOMEM;
        t->cap = off_cap;
    }
    t->off[t->n] = (uint32_t)t->blob_len;
    t->len[t->n] = (uint32_t)n;
    /* each string keeps its NUL: handy for debugging and for NUL-terminated callers */
    if (!inf__append(&t->blob, &t->blob_len, &t->blob_cap, s, n, 4096))
        return INF_ENOMEM;
    t->blob_len++;
    size_t slot = strtab_slot(t, s, n);
    if (!t->slots[slot] || replace)
        t->slots[slot] = (uint32_t)t->n + 1;
    *idx = (int32_t)t->n;
    t->n++;
    return INF_OK;
}

int32_t inf__strtab_find(const struct inf__strtab *t, const char *s, size_t n)
{
    if (!t->n_slots)
        return -1;
    size_t slot = strtab_slot(t, s, n);
    return (int32_t)t->slots[slot] - 1;
}

inf_status inf__strtab_intern(struct inf__strtab *t, const char *s, size_t n, int32_t *idx)
{
    int32_t i = inf__strtab_find(t, s, n);
    if (i >= 0) {
        *idx = i;
        return INF_OK;
    }
    return inf__strtab_add(t, s, n, false, idx);
}

/* ---- u64 map ---------------------------------------------------------------------------- */

#define U64MAP_EMPTY UINT64_MAX

void inf__u64map_release(struct inf__u64map *m)
{
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof(*m));
}

static size_t u64map_slot(const struct inf__u64map *m, uint64_t key)
{
    size_t mask = m->n_slots - 1;
    size_t i = (size_t)inf__hash_u64(key) & mask;
    while (m->keys[i] != U64MAP_EMPTY && m->keys[i] != key)
        i = (i + 1) & mask;
    return i;
}

static inf_status u64map_grow(struct inf__u64map *m)
{
    size_t ns = m->n_slots ? m->n_slots * 2 : 1024;
    uint64_t *ok = m->keys;
    int64_t *ov = m->vals;
    size_t on = m->n_slots;
    uint64_t *nk = malloc(ns * sizeof(*nk));
    int64_t *nv = malloc(ns * sizeof(*nv));
    if (!nk || !nv) {
        free(nk);
        free(nv);
        return INF_ENOMEM;
    }
    memset(nk, 0xFF, ns * sizeof(*nk));
    m->keys = nk;
    m->vals = nv;
    m->n_slots = ns;
    for (size_t i = 0; i < on; i++) {
        if (ok[i] == U64MAP_EMPTY)
            continue;
        size_t s = u64map_slot(m, ok[i]);
        m->keys[s] = ok[i];
        m->vals[s] = ov[i];
    }
    free(ok);
    free(ov);
    return INF_OK;
}

inf_status inf__u64map_reserve(struct inf__u64map *m, size_t n)
{
    while (n * 2 > m->n_slots)
        if (u64map_grow(m) != INF_OK)
            return INF_ENOMEM;
    return INF_OK;
}

inf_status inf__u64map_put_first(struct inf__u64map *m, uint64_t key, int64_t val)
{
    if ((m->n + 1) * 2 > m->n_slots && u64map_grow(m) != INF_OK)
        return INF_ENOMEM;
    size_t s = u64map_slot(m, key);
    if (m->keys[s] == key)
        return INF_OK;
    m->keys[s] = key;
    m->vals[s] = val;
    m->n++;
    return INF_OK;
}

bool inf__u64map_get(const struct inf__u64map *m, uint64_t key, int64_t *val)
{
    if (!m->n_slots)
        return false;
    size_t s = u64map_slot(m, key);
    if (m->keys[s] != key)
        return false;
    *val = m->vals[s];
    return true;
}
