/*
 * core/arena.h - a bump allocator for many small allocations freed at once: the model-file
 * readers' metadata (gguf/) and the template engine's trees and render values (template/).
 * Internal to the library and its tools.
 */
#ifndef INFERNO_CORE_ARENA_H
#define INFERNO_CORE_ARENA_H

#include <stddef.h>

struct inf__arena_chunk;

/* Zero-initialise; limit may be set before the first allocation. */
struct inf__arena {
    struct inf__arena_chunk *head; /* newest chunk first */
    size_t used;                   /* bytes handed out, all chunks */
    size_t limit;                  /* 0 = unlimited */
};

/*
 * size bytes aligned to 16, zeroed; NULL when out of memory or when used would pass the limit.
 * size 0 gives a valid pointer (16 bytes are counted).
 */
void *inf__arena_alloc(struct inf__arena *a, size_t size);
/* A NUL-terminated copy of s[0..len); NULL when out of memory. */
char *inf__arena_strndup(struct inf__arena *a, const char *s, size_t len);
/* Free every chunk; the arena is empty (its limit stays) and may be used again. */
void inf__arena_release(struct inf__arena *a);

#endif
