/* buf.c - growable arrays and byte strings (see core/buf.h). */
#include "core/buf.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

bool inf__grow(void *pp, size_t *cap, size_t need, size_t elem, size_t min_cap)
{
    if (need <= *cap)
        return true;
    size_t nc = *cap > min_cap ? *cap : (min_cap ? min_cap : 1);
    while (nc < need) {
        if (nc > SIZE_MAX / 2)
            return false;
        nc *= 2;
    }
    if (elem && nc > SIZE_MAX / elem)
        return false;
    void *np = realloc(*(void **)pp, nc * elem);
    if (!np)
        return false;
    *(void **)pp = np;
    *cap = nc;
    return true;
}

bool inf__append(char **p, size_t *len, size_t *cap, const void *s, size_t n, size_t min_cap)
{
    if (n > SIZE_MAX - *len - 1 || !inf__grow(p, cap, *len + n + 1, 1, min_cap))
        return false;
    if (n)
        memcpy(*p + *len, s, n);
    *len += n;
    (*p)[*len] = '\0';
    return true;
}
