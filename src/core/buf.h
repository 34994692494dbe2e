/*
 * core/buf.h - growable arrays and byte strings: the one doubling-realloc that the HTTP body,
 * the streamed text of a slot, the detokenizer and the vocabulary's string blob all need.
 * Internal to the library and its tools.
 */
#ifndef INFERNO_CORE_BUF_H
#define INFERNO_CORE_BUF_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Make the array *pp (items of elem bytes, room for *cap of them) hold at least need items,
 * growing by doubling from min_cap (or from *cap when larger). On success *pp and *cap may have
 * changed; on overflow or out of memory returns false and changes nothing.
 */
bool inf__grow(void *pp, size_t *cap, size_t need, size_t elem, size_t min_cap);

/*
 * Append s[0..n) to the byte string *p of length *len with room *cap, keeping it
 * NUL-terminated (the NUL is not counted in *len). Returns false, changing nothing, on overflow
 * or out of memory. n may be 0 (then s may be NULL): the string is still allocated and
 * terminated.
 */
bool inf__append(char **p, size_t *len, size_t *cap, const void *s, size_t n, size_t min_cap);

/* The value of one hexadecimal digit, or -1. */
static inline int inf__hex_digit(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

#endif
