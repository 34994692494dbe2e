/*
 * internal.h - helpers shared by the model-file readers in src/gguf: core/arena.h's bump arena, a
 * string index for duplicate detection and lookup, read-only file mapping, byte-order helpers.
 */
#ifndef INFERNO_GGUF_INTERNAL_H
#define INFERNO_GGUF_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/arena.h" /* the bump arena (no limit here) */
#include "inferno/status.h"

/* ---- string index: (bytes, len) -> index, open addressing ---- */

struct inf__strmap_slot {
    const char *s;
    uint64_t len;
    uint64_t idx;
};

struct inf__strmap {
    struct inf__strmap_slot *slots; /* cap entries; s == NULL is empty */
    uint64_t cap;                   /* a power of two, > 2 x the entries it will hold */
};

/* Room for n entries. INF_ENOMEM. */
inf_status inf__strmap_init(struct inf__strmap *m, uint64_t n);
void inf__strmap_release(struct inf__strmap *m);
/* Room for n entries in all, keeping those present (rehashes when it must grow). INF_ENOMEM. */
inf_status inf__strmap_reserve(struct inf__strmap *m, uint64_t n);
/* Insert s -> idx; when s is already present returns false and sets *prev to its index. The
 * string is borrowed: it must outlive the map. */
bool inf__strmap_insert(struct inf__strmap *m, const char *s, uint64_t len, uint64_t idx,
                        uint64_t *prev);
/* The index of s, or false. */
bool inf__strmap_find(const struct inf__strmap *m, const char *s, uint64_t len, uint64_t *idx);

/* ---- read-only file mapping ---- */

struct inf__mapping {
    const uint8_t *data; /* size bytes ("" for an empty file) */
    uint64_t size;
    void *map; /* NULL when nothing is mapped */
    size_t map_len;
};

/*
 * Map path read-only (MAP_PRIVATE). sequential: advise MADV_SEQUENTIAL, for a header about to be
 * parsed front to back (call inf__map_random once it is); otherwise MADV_RANDOM. Messages name
 * the path ("cannot open 'x': ..."). INF_ENOTFOUND, INF_EIO (also for directories and other
 * non-regular files), INF_ELIMIT.
 */
inf_status inf__map_file(const char *path, bool sequential, struct inf__mapping *m,
                         struct inf_error *err);
/* Advise MADV_RANDOM over the whole mapping (no read-ahead into tensor data). */
void inf__map_random(const struct inf__mapping *m);
void inf__unmap(struct inf__mapping *m);

/* ---- messages ---- */

/*
 * Copy s[0..len) into dst (cap bytes, NUL-terminated) for quoting in a message: control bytes
 * become '?', and a string that does not fit is cut with "...".
 */
void inf__printable(char *dst, size_t cap, const char *s, uint64_t len);

/* ---- byte order ---- */

static inline uint16_t inf__bswap16(uint16_t v)
{
    return (uint16_t)((v >> 8) | (v << 8));
}

static inline uint32_t inf__bswap32(uint32_t v)
{
    return ((v & 0xffu) << 24) | ((v & 0xff00u) << 8) | ((v >> 8) & 0xff00u) | (v >> 24);
}

static inline uint64_t inf__bswap64(uint64_t v)
{
    return ((uint64_t)inf__bswap32((uint32_t)v) << 32) | inf__bswap32((uint32_t)(v >> 32));
}

static inline bool inf__host_is_le(void)
{
    const uint16_t one = 1;
    uint8_t b;
    memcpy(&b, &one, 1);
    return b == 1;
}

/* Little-endian loads from unaligned bytes. */
static inline uint32_t inf__le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t inf__le64(const uint8_t *p)
{
    return (uint64_t)inf__le32(p) | (uint64_t)inf__le32(p + 4) << 32;
}

/* Swap n elements of size bytes (1, 2, 4 or 8) in place. */
void inf__bswap_array(void *data, size_t size, uint64_t n);

/* ---- overflow-checked arithmetic ---- */

static inline bool inf__add_u64(uint64_t a, uint64_t b, uint64_t *out)
{
    return !__builtin_add_overflow(a, b, out);
}

static inline bool inf__mul_u64(uint64_t a, uint64_t b, uint64_t *out)
{
    return !__builtin_mul_overflow(a, b, out);
}

/* x rounded up to a multiple of align (a power of two); false on overflow. */
static inline bool inf__align_up(uint64_t x, uint64_t align, uint64_t *out)
{
    uint64_t t;
    if (!inf__add_u64(x, align - 1, &t))
        return false;
    *out = t & ~(align - 1);
    return true;
}

#endif
