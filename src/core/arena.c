/* arena.c - the bump allocator (see core/arena.h). */
#include "core/arena.h"

#include <assert.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK_HDR  32 /* the payload starts this far into a chunk (16-aligned) */
#define CHUNK_SIZE (64u << 10)

struct inf__arena_chunk {
    struct inf__arena_chunk *next;
    size_t size, used;
};

static_assert(sizeof(struct inf__arena_chunk) <= CHUNK_HDR, "chunk header fits");

void *inf__arena_alloc(struct inf__arena *a, size_t size)
{
    if (size > SIZE_MAX / 2)
        return NULL;
    size = size ? (size + 15) & ~(size_t)15 : 16;
    if (a->limit && (size > a->limit || a->used > a->limit - size))
        return NULL;
    struct inf__arena_chunk *c = a->head;
    if (!c || c->size - c->used < size) {
        bool big = size > CHUNK_SIZE / 4;
        size_t csize = big ? size : CHUNK_SIZE;
        struct inf__arena_chunk *nc = calloc(1, CHUNK_HDR + csize);
        if (!nc)
            return NULL;
        nc->size = csize;
        if (big && c) {
            /* a dedicated chunk behind the current one, which keeps its room */
            nc->next = c->next;
            c->next = nc;
        } else {
            nc->next = c;
            a->head = nc;
        }
        c = nc;
    }
    void *p = (unsigned char *)c + CHUNK_HDR + c->used;
    c->used += size;
    a->used += size;
    return p;
}

char *inf__arena_strndup(struct inf__arena *a, const char *s, size_t len)
{
    if (len == SIZE_MAX)
        return NULL;
    char *p = inf__arena_alloc(a, len + 1);
    if (!p)
        return NULL;
    if (len)
        memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

void inf__arena_release(struct inf__arena *a)
{
    struct inf__arena_chunk *c = a->head;
    while (c) {
        struct inf__arena_chunk *next = c->next;
        free(c);
        c = next;
    }
    a->head = NULL;
    a->used = 0;
}
